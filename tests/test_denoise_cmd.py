"""`denoise-jax denoise`, run in-process through `denoise_cmd.add_arguments` / `run`."""

import argparse
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image as PILImage

from denoise_jax import denoise_cmd, evaluate, images, methods, metrics, pretrained
from denoise_jax.errors import UserError
from denoise_jax.inference import Denoiser

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="denoise-jax denoise")
    denoise_cmd.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def denoise(*argv) -> int:
    return denoise_cmd.run(parse(*argv))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny trained run (3-layer colour DnCNN, 4 steps) of the shipped experiment config."""
    from denoise_jax import train_cmd

    folder = tmp_path_factory.mktemp("run")
    config = os.path.join(REPO, "experiments", "skimage_gauss.py") + ":tiny"
    assert train_cmd.main(["denoise-jax train", f"--config={config}", f"--workdir={folder}"]) == 0
    return folder


@pytest.fixture
def pair(tmp_path):
    """noisy.png / clean.png: a 64×64 colour photo crop with Gaussian noise σ = 25."""
    import skimage.data

    clean = skimage.data.astronaut()[120:184, 200:264]
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    PILImage.fromarray(clean).save(tmp_path / "clean.png")
    PILImage.fromarray(noisy).save(tmp_path / "noisy.png")
    return tmp_path / "noisy.png", tmp_path / "clean.png"


def test_one_file_to_one_file(pair, tmp_path, capsys):
    noisy, _ = pair
    out = tmp_path / "sub" / "out.png"
    assert denoise(noisy, "-o", out, "--method", "gaussian", "--sigma", "25") == 0
    result = images.read_image(str(out))
    assert result.pixels.shape == (64, 64, 3) and result.bit_depth == 8
    assert not np.array_equal(result.pixels, images.read_image(str(noisy)).pixels)
    assert "noisy.png -> " in capsys.readouterr().out


def test_a_folder_gives_a_folder_with_the_same_stems(photo_dir, tmp_path):
    out = tmp_path / "out"
    assert denoise(photo_dir, "-o", out, "--method", "median", "--sigma", "20") == 0
    assert sorted(os.listdir(out)) == sorted(os.listdir(photo_dir))
    assert images.read_image(str(out / "camera.png")).pixels.shape[2] == 1  # grey stays grey
    assert denoise(photo_dir / "coffee.png", "-o", f"{tmp_path}/one/", "--method", "median",
                   "--format", "jpg") == 0
    assert os.listdir(tmp_path / "one") == ["coffee.jpg"]


def test_rgba_and_16_bit_round_trip_keep_alpha_and_depth(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "in"
    alpha8 = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    alpha16 = rng.integers(0, 65536, (40, 48), dtype=np.uint16)
    colour = rng.random((40, 48, 3), dtype=np.float32)
    grey = rng.random((40, 48, 1), dtype=np.float32)
    images.write_image(str(src / "rgba8.png"), colour, alpha=alpha8)
    images.write_image(str(src / "rgb16.png"), colour, bit_depth=16)
    images.write_image(str(src / "rgba16.png"), colour, bit_depth=16, alpha=alpha16)
    images.write_image(str(src / "greya16.tif"), grey, bit_depth=16, alpha=alpha16)
    out = tmp_path / "out"
    assert denoise(src, "-o", out, "--method", "gaussian", "--sigma", "10") == 0
    for name, depth, channels, alpha in [("rgba8.png", 8, 3, alpha8), ("rgb16.png", 16, 3, None),
                                         ("rgba16.png", 16, 3, alpha16),
                                         ("greya16.tif", 16, 1, alpha16)]:
        result = images.read_image(str(out / name))
        assert result.bit_depth == depth and result.pixels.shape == (40, 48, channels), name
        if alpha is None:
            assert result.alpha is None
        else:
            assert result.alpha.dtype == alpha.dtype and np.array_equal(result.alpha, alpha), name
    # 16 bits into JPEG: written as 8 bits, with a note.
    assert denoise(src / "rgb16.png", "-o", tmp_path / "x.jpg", "--method", "gaussian") == 0
    assert images.read_image(str(tmp_path / "x.jpg")).bit_depth == 8


def test_bm3d_with_a_reference_improves_psnr_and_reports_it(pair, tmp_path, capsys):
    noisy, clean = pair
    out, report = tmp_path / "bm3d.png", tmp_path / "r.json"
    assert denoise(noisy, "-o", out, "--method", "bm3d", "--sigma", "25",
                   "--reference", clean, "--json", report) == 0
    assert "PSNR" in capsys.readouterr().out
    row = json.loads(report.read_text())["images"][0]
    assert row["psnr"] > row["input_psnr"] + 5 and row["ssim"] > row["input_ssim"]
    assert row["megapixels"] == pytest.approx(64 * 64 / 1e6) and row["seconds"] > 0
    # The score is that of the file as written, by the project's one scoring function.
    written = images.read_image(str(out)).pixels
    expected = evaluate.score(written, images.read_image(str(clean)).pixels)
    assert row["psnr"] == pytest.approx(expected[0], abs=1e-4)
    assert row["sigma"] == {"value_255": 25.0, "source": "given"}


def test_reference_folder_matches_by_stem_and_shapes_must_agree(photo_dir, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    for name in os.listdir(photo_dir):
        shutil.copy(photo_dir / name, refs / (os.path.splitext(name)[0] + ".tif"))
    report = tmp_path / "r.json"
    assert denoise(photo_dir, "-o", tmp_path / "out", "--method", "noisy",
                   "--reference", refs, "--json", report) == 0
    rows = json.loads(report.read_text())["images"]
    assert len(rows) == 3 and all(r["psnr"] is None for r in rows)  # identical: inf -> null
    with pytest.raises(UserError, match="one file but there are 3 inputs"):
        denoise(photo_dir, "-o", tmp_path / "o2", "--method", "noisy",
                "--reference", refs / "camera.tif")
    with pytest.raises(UserError, match="must match"):
        denoise(photo_dir / "coffee.png", "-o", tmp_path / "o3.png", "--method", "noisy",
                "--reference", refs / "camera.tif")


def test_writing_over_an_input_is_refused_and_the_input_untouched(pair, tmp_path):
    noisy, clean = pair
    before = noisy.read_bytes()
    with pytest.raises(UserError, match="refusing to write"):
        denoise(noisy, "-o", noisy, "--method", "gaussian")
    with pytest.raises(UserError, match="refusing to write"):
        denoise(noisy, clean, "-o", tmp_path, "--method", "gaussian")  # same folder, same names
    with pytest.raises(UserError, match="refusing to write"):
        denoise(noisy, "-o", clean, "--method", "gaussian", "--reference", clean)
    assert noisy.read_bytes() == before


def test_corrupt_and_missing_inputs_are_one_line_errors(pair, tmp_path, capsys):
    noisy, _ = pair
    bad = tmp_path / "bad.png"
    bad.write_bytes(noisy.read_bytes()[:300])
    with pytest.raises(UserError, match="bad.png"):
        denoise(bad, "-o", tmp_path / "o.png", "--method", "gaussian")
    assert not (tmp_path / "o.png").exists()
    with pytest.raises(UserError, match="no such file"):
        denoise(tmp_path / "missing.png", "-o", tmp_path / "o.png", "--method", "gaussian")
    with pytest.raises(UserError, match="image extension"):
        denoise(noisy, "-o", tmp_path / "o.txt", "--method", "gaussian")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="part of that path is a file"):
        denoise(noisy, "-o", blocker / "o.png", "--method", "gaussian")
    with pytest.raises(UserError, match="sigma"):
        denoise(noisy, "-o", tmp_path / "o.png", "--method", "gaussian", "--sigma", "-1")


def test_a_failure_in_a_batch_skips_that_image_and_exits_2_at_the_end(pair, tmp_path, capsys):
    noisy, clean = pair
    (tmp_path / "bad.png").write_bytes(b"not an image")
    report = tmp_path / "r.json"
    with pytest.raises(UserError, match="1 of 3 images failed"):
        denoise(noisy, tmp_path / "bad.png", clean, "-o", tmp_path / "out", "--method",
                "gaussian", "--json", report)
    assert "warning: skipped" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "out")) == ["clean.png", "noisy.png"]
    summary = json.loads(report.read_text())
    assert len(summary["images"]) == 2 and "bad.png" in summary["failed"][0]["input"]


def test_two_inputs_with_one_output_name_are_refused(pair, tmp_path):
    noisy, _ = pair
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(noisy, other / "noisy.png")
    with pytest.raises(UserError, match="would both be written"):
        denoise(noisy, other / "noisy.png", "-o", tmp_path / "out", "--method", "gaussian")


def test_workdir_model_denoises_like_its_checkpoint_method(workdir, pair, tmp_path):
    noisy, clean = pair
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    assert denoise(noisy, "-o", out, "--workdir", workdir, "--tile", "48", "--overlap", "16",
                   "--reference", clean, "--json", report) == 0
    summary = json.loads(report.read_text())
    assert "workdir" in summary["method"] and summary["images"][0]["psnr"] > 0
    # Tiled (48-px tiles on 64 px) equals the checkpoint's whole-image method.
    pixels = images.read_image(str(noisy)).pixels
    expected = methods.load_method(str(workdir))(pixels, None)
    got = images.read_image(str(out)).pixels
    assert np.abs(got - expected).max() <= 1 / 255 + 1e-6
    latest = Denoiser.from_workdir(str(workdir), "latest", tile=32, overlap=16)
    assert latest.step == 4 and latest.channels == 3
    assert np.abs(latest(pixels) - methods.load_method(str(workdir), "latest")(pixels, None)
                  ).max() < 1e-5


def test_pretrained_lookup(workdir, pair, tmp_path, monkeypatch):
    noisy, _ = pair
    with pytest.raises(UserError, match="no pretrained models are shipped"):
        pretrained.find("cdncnn", root=str(tmp_path))
    shipped = tmp_path / "shipped"
    shutil.copytree(workdir / "checkpoints", shipped / "tiny" / "checkpoints")
    shutil.copy(workdir / "config.json", shipped / "tiny" / "config.json")
    (shipped / "tiny" / "MODEL_CARD.md").write_text("# tiny\n")
    monkeypatch.setattr(pretrained, "ROOT", str(shipped))
    assert pretrained.names() == ["tiny"]
    assert pretrained.model_card("tiny") == "# tiny\n"
    with pytest.raises(UserError, match="choose one of tiny"):
        denoise(noisy, "-o", tmp_path / "o.png", "--model", "cdncnn")
    assert denoise(noisy, "-o", tmp_path / "o.png", "--model", "tiny", "--ensemble") == 0
    assert images.read_image(str(tmp_path / "o.png")).pixels.shape == (64, 64, 3)


def test_ensemble_takes_a_view_count_and_defaults_to_the_models_own(capsys):
    assert parse("x.png", "-o", "y.png").ensemble is None  # the model's config decides
    assert parse("x.png", "-o", "y.png", "--ensemble").ensemble == 8
    assert parse("x.png", "-o", "y.png", "--ensemble", "2").ensemble == 2
    with pytest.raises(SystemExit) as e:
        parse("x.png", "-o", "y.png", "--ensemble", "3")
    assert e.value.code == 2 and "invalid choice: 3" in capsys.readouterr().err


def test_help_has_examples_and_an_output_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        parse("--help")
    assert e.value.code == 0 and "examples:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        parse("x.png")
    assert e.value.code == 2


def test_without_a_method_the_best_shipped_model_for_the_channels_is_used(tmp_path, capsys):
    import skimage.data

    colour, grey = tmp_path / "colour.png", tmp_path / "grey.png"
    images.write_image(str(colour), skimage.data.astronaut()[:48, :40] / 255.0)
    images.write_image(str(grey), skimage.data.camera()[:48, :40, None] / 255.0)
    assert denoise(colour, grey, "-o", tmp_path / "out/") == 0
    said = capsys.readouterr().out
    assert re.search(rf"the shipped {pretrained.default_for(3)} \(colour(, x\d self-ensemble)?\) "
                     rf"/ {pretrained.default_for(1)} \(grey(, x\d self-ensemble)?\) models, "
                     "the default", said)
    for name, channels in (("colour", 3), ("grey", 1)):
        named = tmp_path / f"{name}_named.png"
        assert denoise(tmp_path / f"{name}.png", "-o", named, "--model",
                       pretrained.default_for(channels)) == 0
        np.testing.assert_array_equal(images.read_image(str(tmp_path / "out" / f"{name}.png"))
                                      .pixels, images.read_image(str(named)).pixels)


def test_eval_scores_the_shipped_default_by_default():
    """`eval`'s "shipped" (in its default methods) is `denoise`'s default: the best shipped
    model for each image's channels."""
    from denoise_jax import eval_cmd

    parser = argparse.ArgumentParser()
    eval_cmd.add_arguments(parser)
    assert "shipped" in parser.parse_args([]).methods.split(",")
    shipped = evaluate.resolve_method("shipped", ensemble=1)
    rng = np.random.default_rng(3)
    for channels in (3, 1):
        noisy = rng.random((24, 20, channels), dtype=np.float32)
        own = methods.resolve(f"pretrained:{pretrained.default_for(channels)}", ensemble=1)
        np.testing.assert_array_equal(shipped.fn(noisy, None), own.fn(noisy, None))
    assert shipped.blind


def test_a_colour_model_denoises_a_grey_photo_almost_as_well_as_the_grey_model(tmp_path,
                                                                               capsys):
    """Given R = G = B, a colour net keeps the noise (it is the same in every channel); the
    completed colour input (`methods.colour_from_grey`) is denoised like a colour photo."""
    import skimage.data

    clean = skimage.data.camera()[..., None] / 255.0
    noisy = tmp_path / "noisy.png"
    images.write_image(str(noisy), clean + np.random.default_rng(0).normal(0, 25 / 255,
                                                                           clean.shape))
    psnr = {}
    for name in (pretrained.default_for(3), pretrained.default_for(1)):
        out = tmp_path / f"{name}.png"
        assert denoise(noisy, "-o", out, "--model", name, "--ensemble", "1") == 0
        psnr[name] = metrics.psnr(images.read_image(str(out)).pixels, clean)
    assert "a colour model on a grey image" in capsys.readouterr().err
    noisy_psnr = metrics.psnr(images.read_image(str(noisy)).pixels, clean)
    assert psnr[pretrained.default_for(3)] > noisy_psnr + 6, (noisy_psnr, psnr)
    assert psnr[pretrained.default_for(3)] > psnr[pretrained.default_for(1)] - 0.5, psnr


def test_entry_point_prints_one_error_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert denoise_cmd.main([str(bad), "-o", str(tmp_path / "o.png"), "--method", "tv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "bad.png" in err[0]
