import math
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds

from denoise_jax import data
from denoise_jax.data import build, fixtures, realnoise, scan, tfds_builders
from denoise_jax.errors import UserError
from denoise_jax.images import read_image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every builder built once from its fixture folder into one data dir."""
    root = tmp_path_factory.mktemp("builders")
    manual = {
        "sidd": fixtures.make_sidd(str(root / "sidd")),
        "renoir": fixtures.make_renoir(str(root / "renoir")),
        "nind": fixtures.make_nind(str(root / "nind_download")),
        "paired_folder": fixtures.make_pairs(str(root / "pairs"), 6),
    }
    data_dir = str(root / "tfds")
    reports = {name: tfds_builders.build(name, folder, data_dir) for name, folder in manual.items()}
    return SimpleNamespace(root=root, manual=manual, data_dir=data_dir, reports=reports)


def records(data_dir: str, name: str, split: str) -> list[dict]:
    """The stored records, decoded by tfds itself (so plain tfds readers work too)."""
    source = tfds.builder_from_directory(os.path.join(data_dir, name, "1.0.0")).as_data_source(
        split=split)
    out = []
    for i in range(len(source)):
        record = dict(source[i])
        for key in ("name", "camera", "iso", "scene", "source"):
            record[key] = record[key].decode()
        out.append(record)
    return out


def test_counts_per_split(built):
    # sidd: 5 scenes + (2, 3) validation blocks; renoir: 3 cameras x batches of 2, 1, 2
    # noisy shots, 9 batches -> 2 test batches; nind: 4 sets -> 1 test set; pairs: 6 -> 1.
    counts = {name: report.counts for name, report in built.reports.items()}
    assert counts["sidd"] == {"train": 5, "validation": 6}
    assert sum(counts["renoir"].values()) == 15 and counts["renoir"]["test"] in (2, 3, 4)
    assert sum(counts["nind"].values()) == 9  # droid 3 + Bobo 2 + whistle 3 (not 200-2) + gnome 1
    assert counts["paired_folder"] == {"train": 5, "test": 1}
    for name, report in built.reports.items():
        assert report.path == os.path.join(built.data_dir, name, "1.0.0") and not report.reused


@pytest.mark.parametrize("spec", ["sidd:train", "sidd:validation", "renoir:train",
                                  "renoir:test", "nind:train", "nind:test",
                                  "paired_folder:train"])
def test_loaded_pairs_really_correspond(built, spec):
    ds = data.load(f"tfds:{spec}@{built.data_dir}")
    assert len(ds) >= 1
    examples = list(ds)
    for example in examples:
        assert example.clean.dtype == np.float32 and example.clean.shape[-1] == 3
        assert example.noisy.shape == example.clean.shape
        assert 15 < psnr(example.noisy, example.clean) < 40
    wrong = [e for e in examples if e.clean.shape == examples[0].clean.shape
             and not np.array_equal(e.clean, examples[0].clean)]
    for other in wrong:  # a noisy image is far closer to its own clean image
        assert psnr(examples[0].noisy, examples[0].clean) > psnr(examples[0].noisy,
                                                                   other.clean) + 5


def test_sidd_metadata_parsed_from_scene_folders(built):
    by_name = {r["name"]: r for r in records(built.data_dir, "sidd", "train")}
    assert set(by_name) == {f"{s}_010" for s in fixtures.SIDD_SCENES}
    r = by_name["0052_002_S6_01600_01000_5500_N_010"]
    assert (r["camera"], r["iso"], r["scene"], r["source"]) == ("S6", "1600", "002", "sidd")
    assert by_name["0087_004_GP_00800_00350_5500_N_010"]["iso"] == "800"
    assert r["noisy"].dtype == np.uint8 and r["noisy"].shape == (32, 48, 3)
    # SIDD's 8-bit PNGs are stored byte for byte and decode to the file's pixels.
    folder = os.path.join(built.manual["sidd"], "SIDD_Small_sRGB_Only", "Data",
                          "0052_002_S6_01600_01000_5500_N")
    loaded = data.load(f"tfds:sidd:train@{built.data_dir}")
    example = loaded[loaded.names.index("0052_002_S6_01600_01000_5500_N_010")]
    assert np.array_equal(example.clean, read_image(os.path.join(folder, "GT_SRGB_010.PNG")).pixels)
    assert np.array_equal(example.noisy,
                          read_image(os.path.join(folder, "NOISY_SRGB_010.PNG")).pixels)


def test_sidd_validation_split_holds_the_mat_blocks(built):
    ds = data.load(f"tfds:sidd:validation@{built.data_dir}")
    gt = scipy.io.loadmat(os.path.join(built.manual["sidd"], "ValidationGtBlocksSrgb.mat"))
    noisy = scipy.io.loadmat(os.path.join(built.manual["sidd"], "ValidationNoisyBlocksSrgb.mat"))
    gt, noisy = gt["ValidationGtBlocksSrgb"], noisy["ValidationNoisyBlocksSrgb"]
    assert gt.shape == (2, 3, 16, 16, 3) and len(ds) == 6
    assert ds.names[:4] == ("validation_00_00", "validation_00_01", "validation_00_02",
                            "validation_01_00")
    for i, (a, b) in enumerate(np.ndindex(2, 3)):
        assert np.array_equal(np.rint(ds[i].clean * 255), gt[a, b])
        assert np.array_equal(np.rint(ds[i].noisy * 255), noisy[a, b])


def test_sidd_medium_layout_and_default_data_dir(tmp_path, monkeypatch):
    manual = fixtures.make_sidd(str(tmp_path / "m"), scenes=fixtures.SIDD_SCENES[:3],
                                medium=True, with_mat=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "env_tfds"))
    report = tfds_builders.build("sidd", manual)
    assert report.counts == {"train": 6}
    assert report.path.startswith(str(tmp_path / "env_tfds"))
    ds = data.load("tfds:sidd")  # split defaults to train, data dir to $TFDS_DATA_DIR
    assert ds.names[:2] == ("0001_001_S6_00100_00060_3200_L_010",
                            "0001_001_S6_00100_00060_3200_L_011")
    assert all(15 < psnr(e.noisy, e.clean) < 40 for e in ds)


def test_renoir_metadata_and_scene_level_split(built):
    train = records(built.data_dir, "renoir", "train")
    test = records(built.data_dir, "renoir", "test")
    assert {r["camera"] for r in train + test} == {"Mi3", "S90", "T3i"}
    assert all(r["iso"] == "" and r["name"].endswith("Noisy") for r in train + test)
    assert not {r["scene"] for r in train} & {r["scene"] for r in test}
    assert {r["scene"] for r in test} == scan.scene_split(
        [r["scene"] for r in train + test], "renoir")
    assert len({r["scene"] for r in test}) == 2  # round(0.2 * 9 batches)
    # the BMPs are re-encoded losslessly as PNG
    assert all(r["noisy"].dtype == np.uint8 for r in train)
    ds = data.load(f"tfds:renoir:train@{built.data_dir}")
    name = ds.names[0]
    camera, _, batch, shot = name.split("_", 3)
    folder = os.path.join(built.manual["renoir"], f"{camera}_Aligned", f"Batch_{batch}")
    assert np.array_equal(ds[0].noisy, read_image(os.path.join(folder, f"{shot}.bmp")).pixels)
    reference = [f for f in os.listdir(folder) if f.endswith("Reference.bmp")][0]
    assert np.array_equal(ds[0].clean, read_image(os.path.join(folder, reference)).pixels)


def test_renoir_camera_from_nested_or_direct_camera_folder(tmp_path):
    fixtures.make_renoir(str(tmp_path / "r"), cameras=("Mi3",), batches=2)
    nested = tmp_path / "nested" / "Mi3_Aligned"
    shutil.copytree(tmp_path / "r" / "Mi3_Aligned", nested / "Mi3_Aligned")
    for folder in (tmp_path / "r" / "Mi3_Aligned", tmp_path / "nested"):
        plan = scan.scan_renoir(str(folder))
        pairs = [p for split in plan.values() for p in split]
        assert len(pairs) == 3 and {p.camera for p in pairs} == {"Mi3"}
        assert {p.scene for p in pairs} == {"Mi3/Batch_001", "Mi3/Batch_002"}


def test_splits_are_deterministic_and_scene_level(built, tmp_path):
    copy = tmp_path / "renoir_copy"
    shutil.copytree(built.manual["renoir"], copy)
    again = tfds_builders.build("renoir", str(copy), str(tmp_path / "tfds2"))
    assert again.counts == built.reports["renoir"].counts
    for split in ("train", "test"):
        first = data.load(f"tfds:renoir:{split}@{built.data_dir}").names
        assert data.load(f"tfds:renoir:{split}@{tmp_path / 'tfds2'}").names == first
    scenes = [f"scene{i:03d}" for i in range(100)]
    held_out = scan.scene_split(scenes, "x")
    assert len(held_out) == 20
    assert scan.scene_split(list(reversed(scenes)) + scenes[:5], "x") == held_out
    assert scan.scene_split(scenes[:1], "x") == frozenset()
    assert len(scan.scene_split(scenes[:2], "x")) == 1


def test_nind_lowest_iso_is_clean_and_isoh_ranks_above_numbers(built):
    labels = ["H2", "6400", "200-2", "H1", "800", "200", "6400-2"]
    assert sorted(labels, key=scan.nind_rank) == [
        "200", "200-2", "800", "6400", "6400-2", "H1", "H2"]
    rows = records(built.data_dir, "nind", "train") + records(built.data_dir, "nind", "test")
    by_set: dict[str, list[dict]] = {}
    for r in rows:
        by_set.setdefault(r["scene"], []).append(r)
    assert sorted(r["iso"] for r in by_set["whistle"]) == ["6400", "H1", "H2"]
    assert sorted(r["iso"] for r in by_set["MuseeL-Bobo-C500D"]) == ["200", "H1"]
    assert {r["camera"] for r in by_set["MuseeL-Bobo-C500D"]} == {"C500D"}
    assert {r["camera"] for r in by_set["droid"]} == {"XT1"}
    nind = built.manual["nind"]
    for set_name, lowest in (("whistle", "200"), ("MuseeL-Bobo-C500D", "100")):
        clean = read_image(os.path.join(nind, set_name, f"NIND_{set_name}_ISO{lowest}.png"))
        for r in by_set[set_name]:
            assert np.array_equal(r["clean"], np.rint(clean.pixels * 255).astype(np.uint8))
    # the fixture's noise grows with ISO rank: ISOH2 is the noisiest whistle shot
    examples = [e for split in ("train", "test")
                for e in data.load(f"tfds:nind:{split}@{built.data_dir}")]
    whistle = {e.name: psnr(e.noisy, e.clean) for e in examples if "whistle" in e.name}
    assert whistle["NIND_whistle_ISO6400"] > whistle["NIND_whistle_ISOH1"] > whistle[
        "NIND_whistle_ISOH2"]


def test_paired_folder_suffix_layout_and_split_subfolders(tmp_path):
    fixtures.make_pairs(str(tmp_path / "flat"), 4, layout="suffix")
    plan = scan.scan_paired_folder(str(tmp_path / "flat"))
    assert sum(len(v) for v in plan.values()) == 4 and len(plan["test"]) == 1
    fixtures.make_pairs(str(tmp_path / "split" / "train"), 3)
    fixtures.make_pairs(str(tmp_path / "split" / "val"), 2, layout="suffix")
    report = tfds_builders.build("paired_folder", str(tmp_path / "split"), str(tmp_path / "tfds"))
    assert report.counts == {"train": 3, "validation": 2}
    ds = data.load(f"tfds:paired_folder:validation@{tmp_path / 'tfds'}")
    assert ds.names == ("pair_00", "pair_01")
    clean = read_image(str(tmp_path / "split" / "val" / "pair_01_clean.png")).pixels
    assert np.array_equal(ds[1].clean, clean)


def _touch_v73(path):
    header = b"MATLAB 7.3 MAT-file".ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
    with open(path, "wb") as f:
        f.write(header.ljust(1024, b"\x00"))


def _sidd_without_gt(root):
    fixtures.make_sidd(root, scenes=fixtures.SIDD_SCENES[:2], with_mat=False)
    os.remove(os.path.join(root, "SIDD_Small_sRGB_Only", "Data", fixtures.SIDD_SCENES[1],
                           "GT_SRGB_010.PNG"))


def _sidd_one_mat(root):
    fixtures.make_sidd(root, scenes=fixtures.SIDD_SCENES[:1])
    os.remove(os.path.join(root, "ValidationGtBlocksSrgb.mat"))


def _renoir_without_reference(root):
    fixtures.make_renoir(root, cameras=("S90",), batches=2)
    folder = os.path.join(root, "S90_Aligned", "Batch_002")
    for f in os.listdir(folder):
        if f.endswith("Reference.bmp"):
            os.remove(os.path.join(folder, f))


def _nind_single_iso(root):
    fixtures.make_nind(root, sets={"droid": ("200", "800"), "gnome": ("200",)})


def _pairs_unmatched(root):
    fixtures.make_pairs(root, 2)
    os.remove(os.path.join(root, "clean", "pair_01.png"))


@pytest.mark.parametrize("name, make, expected", [
    ("sidd", None, "no scene folders like 0052_002_S6_01600_01000_5500_N"),
    ("sidd", _sidd_without_gt, "has no GT_SRGB_010 partner"),
    ("sidd", _sidd_one_mat, "not ValidationGtBlocksSrgb.mat"),
    ("renoir", None, "no Batch_NNN folders"),
    ("renoir", _renoir_without_reference, r"Batch_002' has 0 \*Reference files"),
    ("nind", None, "no files like NIND_<set>_ISO<value>.png"),
    ("nind", _nind_single_iso, "set 'gnome' has no image above ISO200"),
    ("paired_folder", _pairs_unmatched, "unmatched files"),
])
def test_missing_or_incomplete_folders_are_user_errors(tmp_path, name, make, expected):
    folder = tmp_path / "manual"
    folder.mkdir()
    if make is not None:
        make(str(folder))
    with pytest.raises(UserError, match=expected):
        tfds_builders.build(name, str(folder), str(tmp_path / "tfds"))
    with pytest.raises(UserError, match="does not exist; expected a folder holding"):
        tfds_builders.build(name, str(tmp_path / "nowhere"), str(tmp_path / "tfds"))


def test_mat_v73_needs_h5py_or_reads_with_it(tmp_path):
    try:
        import h5py  # noqa: F401
    except ImportError:
        fixtures.make_sidd(str(tmp_path), scenes=())
        for key in scan.SIDD_MAT_KEYS.values():
            _touch_v73(str(tmp_path / f"{key}.mat"))
        with pytest.raises(UserError, match="MATLAB v7.3 .* needs h5py"):
            scan.scan_sidd(str(tmp_path))
        return
    fixtures.make_sidd(str(tmp_path / "m"), scenes=(), mat_version="7.3", mat_shape=(3, 2, 8))
    report = tfds_builders.build("sidd", str(tmp_path / "m"), str(tmp_path / "tfds"))
    assert report.counts == {"validation": 6}


def test_load_spec_errors(built, tmp_path):
    with pytest.raises(UserError, match="run `denoise-jax data build sidd --manual-dir PATH`"):
        data.load(f"tfds:sidd:train@{tmp_path}")
    with pytest.raises(UserError, match="no split 'test'; sidd has train, validation"):
        data.load(f"tfds:sidd:test@{built.data_dir}")
    for spec in ("tfds:", "tfds:sidd:train:x", "tfds:sidd@"):
        with pytest.raises(UserError, match="bad data spec"):
            data.load(spec)


def test_build_main_prints_counts_and_reuses(built, tmp_path, capsys):
    args = ["build", "paired_folder", "--manual-dir", built.manual["paired_folder"],
            "--data-dir", str(tmp_path)]
    assert build.main(args) == 0
    out = capsys.readouterr().out
    assert "paired_folder: built at" in out and "train 5, test 1" in out
    assert f"tfds:paired_folder:train@{tmp_path}" in out
    assert build.main(args) == 0
    assert "already built, reused" in capsys.readouterr().out
    assert build.main(args + ["--overwrite"]) == 0
    assert "paired_folder: built at" in capsys.readouterr().out
    assert build.main(["list", "--data-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "paired_folder" in listing and "built: train 5, test 1" in listing
    assert "sidd" in listing and "not built" in listing


@pytest.mark.parametrize("argv, expected", [
    (["build", "sid", "--manual-dir", "."], "unknown data set 'sid'; buildable: sidd"),
    (["build", "sidd"], "--manual-dir"),
    ([], "required"),
])
def test_build_main_errors_are_user_errors(argv, expected):
    with pytest.raises(UserError, match=expected):
        build.main(argv)


def test_realnoise_protocol_split(built):
    train, test = realnoise.realnoise_pairs(built.manual["sidd"], built.manual["renoir"],
                                             built.manual["nind"], size=64)
    # SIDD 5 + RENOIR Mi3 only (2 + 1 + 2) + NIND X-T1 sets only (droid 3, whistle 3, gnome 1)
    total = 5 + 5 + 7
    assert len(test) == math.ceil(0.2 * total) and len(train) + len(test) == total
    assert not set(train.names) & set(test.names)
    names = set(train.names) | set(test.names)
    assert not any(n.startswith(("S90", "T3i", "NIND_MuseeL-Bobo-C500D")) for n in names)
    again, _ = realnoise.realnoise_pairs(built.manual["sidd"], built.manual["renoir"],
                                          built.manual["nind"], size=64)
    assert again.names == train.names
    example = test[0]
    assert example.clean.shape == example.noisy.shape == (64, 64, 3)
    assert example.clean.dtype == np.float32 and 15 < psnr(example.noisy, example.clean) < 45
    from sklearn.model_selection import train_test_split

    _, expected = train_test_split(np.arange(total), test_size=0.2, random_state=42)
    assert len(expected) == len(test)
    assert train_test_split(np.arange(302), test_size=0.2, random_state=42)[1].shape == (61,)
