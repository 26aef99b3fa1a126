import json

import numpy as np
import pytest

from denoise_jax import data, evaluate, methods
from denoise_jax.errors import UserError


def test_bm3d_beats_noisy_and_json_has_every_method(photo_dir):
    report = evaluate.evaluate(["noisy", "bm3d"], data.load(f"folder:{photo_dir}"), "gaussian:25")
    assert report.methods["bm3d"].psnr > report.methods["noisy"].psnr + 5
    assert report.methods["bm3d"].ssim > report.methods["noisy"].ssim
    parsed = json.loads(report.to_json())
    assert set(parsed["methods"]) == {"noisy", "bm3d"}
    assert len(parsed["methods"]["bm3d"]["per_image"]) == 3
    assert "SSIM" in parsed["metrics"]["ssim"]
    assert parsed["methods"]["bm3d"]["sigma"] == "given"


def test_noise_is_identical_across_runs_and_methods(photo_dir):
    ds = data.load(f"folder:{photo_dir}")
    a = evaluate.evaluate(["noisy"], ds, "gaussian:25", seed=3)
    b = evaluate.evaluate(["noisy", "gaussian"], ds, "gaussian:25", seed=3)
    c = evaluate.evaluate(["noisy"], ds, "gaussian:25", seed=4)
    assert a.methods["noisy"].per_image == [
        {**r, "seconds": a.methods["noisy"].per_image[i]["seconds"]}
        for i, r in enumerate(b.methods["noisy"].per_image)
    ]
    assert a.methods["noisy"].psnr != c.methods["noisy"].psnr


def test_blind_noise_makes_baselines_estimate_sigma(photo_dir):
    report = evaluate.evaluate(["wavelet"], data.load(f"folder:{photo_dir}"), "gaussian:10-30")
    assert report.methods["wavelet"].sigma == "estimated"


def test_markdown_and_csv_render(photo_dir):
    report = evaluate.evaluate(["noisy", "median"], data.load(f"folder:{photo_dir}"), "gaussian:15")
    md = report.to_markdown()
    assert "| median |" in md and "PSNR" in md
    rows = report.to_csv().strip().splitlines()
    assert rows[0].startswith("method,image,psnr")
    assert len(rows) == 1 + 2 * 3


def test_figure_is_written(photo_dir, tmp_path):
    from PIL import Image

    report = evaluate.evaluate(
        ["noisy", "gaussian"], data.load(f"folder:{photo_dir}"), "gaussian:25", keep_samples=2
    )
    out = tmp_path / "fig.png"
    evaluate.figure(report, str(out))
    with Image.open(out) as im:
        assert im.size[0] > 300 and im.size[1] > 300


def test_real_pairs_need_no_noise_spec(tmp_path):
    import skimage.data
    from PIL import Image

    from tests.conftest import crop

    clean = crop(skimage.data.astronaut(), 48)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    (tmp_path / "clean").mkdir()
    (tmp_path / "noisy").mkdir()
    Image.fromarray(clean).save(tmp_path / "clean" / "a.png")
    Image.fromarray(noisy).save(tmp_path / "noisy" / "a.png")
    report = evaluate.evaluate(["noisy", "nlm"], data.load(f"pairs:{tmp_path}"), None)
    assert report.noise == "real"
    assert 18 < report.methods["noisy"].psnr < 25
    assert report.methods["nlm"].psnr > report.methods["noisy"].psnr


def test_unknown_method_and_missing_noise_are_user_errors(photo_dir):
    ds = data.load(f"folder:{photo_dir}")
    with pytest.raises(UserError, match="unknown method"):
        evaluate.evaluate(["nope"], ds, "gaussian:25")
    with pytest.raises(UserError, match="--noise"):
        evaluate.evaluate(["noisy"], ds, None)


def test_compiled_methods_are_timed_after_a_warm_up_call(photo_dir):
    import time

    calls = []

    def slow_first_call(noisy, sigma):
        if not calls:
            time.sleep(1.0)  # stands in for JIT compilation
        calls.append(noisy.shape)
        return noisy

    jitted = methods.Method("jitted", slow_first_call, compiles_per_shape=True)
    ds = data.load(f"folder:{photo_dir}")
    report = evaluate.evaluate({"jitted": jitted}, ds[:1], "gaussian:25")
    assert len(calls) == 2  # one warm-up, one timed
    assert report.methods["jitted"].per_image[0]["seconds"] < 0.5


def test_8bit_input_is_clipped_and_rounded_like_a_photo_file(photo_dir):
    ds = data.load(f"folder:{photo_dir}")
    seen = {}

    def spy(kind):
        def method(noisy, sigma):
            seen[kind] = noisy
            return noisy
        return method

    for kind in evaluate.INPUTS:
        evaluate.evaluate({"spy": spy(kind)}, ds[:1], "gaussian:50", input=kind, progress=False)
    assert seen["float"].min() < 0 and seen["float"].max() > 1  # σ 50 strays out of range
    q = seen["8bit"]
    assert q.min() >= 0 and q.max() <= 1
    np.testing.assert_array_equal(q * 255, np.rint(q * 255))
    np.testing.assert_allclose(q, np.clip(seen["float"], 0, 1), atol=0.5 / 255 + 1e-6)
    with pytest.raises(UserError, match="unknown input"):
        evaluate.evaluate(["noisy"], ds, "gaussian:5", input="16bit")


def test_colour_bias_and_worst_margin():
    rng = np.random.default_rng(0)
    cleans = {f"img{i}": rng.uniform(0.2, 0.8, (16 + i, 20, 3)).astype(np.float32)
              for i in range(3)}
    ds = data.Dataset.from_examples("t", "three images", [data.Example(n, c)
                                                         for n, c in cleans.items()])
    by_height = {c.shape[0]: c for c in cleans.values()}

    def tinted(noisy, sigma):  # the clean image with its red channel 3 levels too bright
        return by_height[noisy.shape[0]] + np.float32([3 / 255, 0, 0])

    methods = {"noisy": evaluate.resolve_method("noisy"), "tinted": tinted}
    report = evaluate.evaluate(methods, ds, "gaussian:10", reference="noisy", progress=False)
    rows = report.methods["tinted"].per_image
    assert all(r["colour_bias"] == pytest.approx(3.0, abs=1e-3) for r in rows)
    assert report.methods["tinted"].colour_bias == pytest.approx(3.0, abs=1e-3)
    assert report.methods["noisy"].colour_bias < 1.0
    worst = report.methods["tinted"].worst
    margins = {r["image"]: r["psnr"] - n["psnr"]
               for r, n in zip(rows, report.methods["noisy"].per_image, strict=True)}
    assert worst == {"image": min(margins, key=margins.get), "margin": min(margins.values())}
    assert report.methods["noisy"].worst is None
    md = report.to_markdown()
    assert "| colour bias | worst vs noisy |" in md
    assert f"{worst['margin']:+.2f} dB on {worst['image']}" in md
    with pytest.raises(UserError, match="reference method 'bm3d'"):
        evaluate.evaluate(methods, ds, "gaussian:10", reference="bm3d", progress=False)
