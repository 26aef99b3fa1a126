"""The photo corpus: container readers, selection, downscale, manifest check, split, specs.

Everything is built from generated fixtures (tests/photo_fixtures.py): a .deb made with
dpkg-deb holding JPEGs, a Qt .rcc of WebPs and an Edje .edj of JPEGs. Nothing is downloaded.
"""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from denoise_jax import data
from denoise_jax.data import containers, photos
from denoise_jax.errors import UserError
from tests import photo_fixtures as fx

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None,
                                reason="dpkg-deb (Debian's package tool) is not installed")


def build_fixture(tmp_path, name="corpus", **kw):
    debs = fx.build_debs(str(tmp_path / f"debs-{name}"), **{k: kw.pop(k) for k in
                                                             ("changed", "version") if k in kw})
    return photos.build(str(tmp_path / name), sources=fx.SOURCES, debs=debs, val=fx.VAL,
                        progress=lambda _: None, **kw)


def test_rcc_reader_walks_the_tree_and_inflates_compressed_files():
    files = {"/a/b/one.bin": b"1" * 50, "/a/two.bin": b"22", "/top.txt": b"top"}
    blob = fx.rcc(files, compressed=("/a/b/one.bin",))
    assert dict(containers.rcc_files(blob)) == files
    with pytest.raises(ValueError, match="truncated"):
        list(containers.rcc_files(blob[:40]))
    with pytest.raises(ValueError, match="qres"):
        list(containers.rcc_files(b"nope" + blob[4:]))


def test_eet_reader_reads_plain_and_zlib_entries():
    entries = {"edje/images/0": b"\xff\xd8\xff" + b"x" * 30, "edje/file": b"y" * 100}
    blob = fx.eet(entries, compressed=("edje/file",))
    assert dict(containers.eet_entries(blob)) == entries
    with pytest.raises(ValueError, match="truncated"):
        list(containers.eet_entries(blob[:-20]))
    with pytest.raises(ValueError, match="magic"):
        list(containers.eet_entries(b"\0" * 12 + blob[12:]))


def test_box_downscale_averages_blocks_and_drops_the_remainder():
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    out = photos.box_downscale(image, 2)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[1, 2], np.rint(image[2:4, 4:6].mean(axis=(0, 1))))
    np.testing.assert_array_equal(photos.box_downscale(image, 1), image)


@needs_dpkg
def test_build_selects_downscales_splits_and_records_a_manifest(tmp_path):
    manifest = str(tmp_path / "manifest.tsv")
    report = build_fixture(tmp_path, update_manifest=True, manifest=manifest)
    root = tmp_path / "corpus"
    by_name = {p.name: p for p in report.photos}
    # drawing.jpg excluded; the .rcc's text file is not a picture; the .edj gives its largest
    assert sorted(by_name) == ["fix-a", "fix-big", "fix-res-w1", "fix-res-w2", "fix-scene"]
    assert {n for n, p in by_name.items() if p.split == "val"} == fx.VAL
    assert sorted(os.listdir(root / "val")) == ["fix-a.png", "fix-res-w1.png"]
    assert len(os.listdir(root / "train")) == 3
    sizes = {n: p.pixels.shape[:2] for n, p in by_name.items()}
    assert sizes == {"fix-a": (24, 32), "fix-big": (24, 32), "fix-res-w1": (24, 32),
                     "fix-res-w2": (24, 32), "fix-scene": (48, 64)}
    assert by_name["fix-big"].downscale == 4 and by_name["fix-scene"].downscale == 2
    assert by_name["fix-scene"].path.endswith("scene.edj:edje/images/1")
    assert by_name["fix-res-w2"].path == "usr/share/fixture/res.rcc:/res/pictures/w2.webp"
    assert by_name["fix-scene"].licence == "BSD-2-clause"
    assert by_name["fix-a"].licence == "GPL-2+"
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [r["name"] for r in rows] == ["fix-big", "fix-res-w2", "fix-scene", "fix-a",
                                         "fix-res-w1"]  # by split, then name
    assert all(len(r["sha256"]) == 64 and r["version"] == fx.VERSION for r in rows)
    assert (root / "val_contact_sheet.png").is_file()
    # the written PNG is the downscaled photo, bit for bit
    spec = f"photos:val@{root}"
    ds = data.load(spec)
    assert ds.names == ("fix-a", "fix-res-w1")
    np.testing.assert_array_equal(np.rint(ds[0].clean * 255).astype(np.uint8),
                                  by_name["fix-a"].pixels)
    gray = data.load(f"photos:val:gray@{root}")
    assert gray[0].clean.shape == (24, 32, 1)


@needs_dpkg
def test_rebuild_checks_the_manifest(tmp_path):
    manifest = str(tmp_path / "manifest.tsv")
    build_fixture(tmp_path, update_manifest=True, manifest=manifest)
    build_fixture(tmp_path, name="again", manifest=manifest)  # same bytes: passes the check
    with pytest.raises(UserError, match="already built"):
        build_fixture(tmp_path, name="again", manifest=manifest)
    with pytest.raises(UserError, match=r"a\.jpg has different bytes"):
        build_fixture(tmp_path, name="changed", manifest=manifest, changed=True)
    assert not (tmp_path / "changed").exists()  # nothing half-written
    with pytest.raises(UserError, match="version 2.0-1, but the corpus is defined on "
                       "version 1.0-1"):
        build_fixture(tmp_path, name="newer", manifest=manifest, version="2.0-1")


def test_a_cut_out_with_transparency_is_refused():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:8, :, 3] = 0
    with pytest.raises(UserError, match="transparency"):
        photos._photo(fx.SOURCES[0], "x", "x.png", fx.encode(rgba, "PNG"), "-", frozenset())
    rgba[:8, :, 3] = 255  # an opaque alpha channel is fine
    photo = photos._photo(fx.SOURCES[0], "x", "x.png", fx.encode(rgba, "PNG"), "-", frozenset())
    assert photo.pixels.shape == (8, 8, 3)


def test_missing_corpus_and_bad_specs_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="denoise-jax data build photos.*folder:"):
        data.load(f"photos:val@{tmp_path}")
    for spec in ("photos:test", "photos:val:sepia", "photos:train:gray:x"):
        with pytest.raises(UserError, match="bad data spec"):
            data.load(spec)


def test_without_apt_get_the_cli_says_to_use_a_folder(tmp_path):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no apt-get on it
    done = subprocess.run([sys.executable, "-m", "denoise_jax", "data", "build", "photos",
                           "--data-dir", str(tmp_path / "p")], capture_output=True, text=True,
                          env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get is not available" in lines[0]
    assert "--config.data.train=folder:" in lines[0]
    assert not (tmp_path / "p").exists()


def test_the_shipped_manifest_is_a_fixed_broad_split():
    rows = list(photos.read_manifest().values())
    packages = {s.package for s in photos.SOURCES}
    val = [r for r in rows if r["split"] == "val"]
    assert len(rows) >= 250 and len(val) == len(photos.VAL) == 24
    assert {r["name"] for r in val} == photos.VAL
    assert {r["package"] for r in val} == packages  # every package is represented
    assert {(r["package"], r["version"]) for r in rows} == {(s.package, s.version)
                                                            for s in photos.SOURCES}
    assert len({r["sha256"] for r in rows}) == len(rows)  # no photo twice
    split = {r["name"]: r["split"] for r in rows}
    # scenes shot more than once stay on one side
    for group in (["scratch-city-with-water", "scratch-city-with-water2"],
                  ["scratch-train-tracks1", "scratch-train-tracks2"],
                  ["scratch-basketball-court1-a", "scratch-basketball-court1-b"],
                  ["opencv-aero1", "opencv-aero3"],
                  [f"gcompris-clickgame-sea{i}" for i in range(1, 7)]):
        assert len({split[n] for n in group}) == 1, group
    megapixels = sum(np.prod([int(v) for v in r["size"].split("x")]) for r in rows) / 1e6
    assert 70 < megapixels < 90


@pytest.mark.parametrize("net", ["drunet", "ffdnet", "nafnet_small", "dncnn", "nafnet_tiny"])
def test_every_photos_gauss_variant_builds_its_model(net):
    import jax

    from denoise_jax import configs, models

    for arg in (net, f"{net},gray,l1", f"{net},tiny"):
        config = configs.load(f"photos_gauss:{arg}")
        model = models.get_model(**dict(config.model))
        shape = jax.eval_shape(lambda m=model: m.init(jax.random.PRNGKey(0),
                                                      np.zeros((1, 32, 32, 3), np.float32)))
        assert shape["params"]
    assert config.data.train == "photos:train" and config.eval.data == "photos:val"
    with pytest.raises(ValueError, match="photos_gauss"):
        configs.load(f"photos_gauss:{net},sepia")


def test_photos_gauss_trains_on_the_corpus(photo_corpus, tmp_path):
    from denoise_jax import configs, train, writers

    config = configs.load("photos_gauss:drunet,tiny")
    train.train_and_evaluate(config, str(tmp_path / "run"))
    val = writers.read_metrics(str(tmp_path / "run"), "val")
    assert val and val[-1]["step"] == config.num_steps and val[-1]["cpu_hours"] > 0


def test_a_campaign_cycle_starts_from_the_shipped_model_and_decays_within_the_cycle():
    import json

    from denoise_jax import configs, optim, pretrained

    config = configs.load("photos_gauss:nafnet_small,charbonnier,cycle")
    assert config.init_from == "pretrained:gauss_rgb"
    with open(os.path.join(pretrained.ROOT, "gauss_rgb", "config.json"), encoding="utf-8") as f:
        shipped = json.load(f)
    # Same net as the shipped weights, or init_from could not copy them.
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in config.model.items()} == \
        shipped["model"]
    # The recipe is the shipped model's last cycle, crops included.
    assert (config.data.patch, config.data.batch) == (shipped["data"]["patch"],
                                                      shipped["data"]["batch"])
    schedule = optim.learning_rate(config.optimizer, config.num_steps)
    peak = config.optimizer.lr
    assert float(schedule(config.optimizer.warmup)) == pytest.approx(peak, rel=1e-3)
    assert float(schedule(config.num_steps)) == pytest.approx(
        peak * config.optimizer.end_factor, rel=1e-3)
    assert configs.load("photos_gauss:nafnet_small,cycle,tiny").init_from is None
