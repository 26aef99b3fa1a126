"""The command line as a user runs it: a real subprocess, real exit codes."""

import json
import subprocess
import sys

from PIL import Image


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "denoise_jax", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_eval_on_a_folder_writes_json_and_bm3d_wins(photo_dir, tmp_path):
    out = tmp_path / "out.json"
    fig = tmp_path / "fig.png"
    r = run(
        "eval",
        "--methods",
        "noisy,nlm,bm3d",
        "--data",
        f"folder:{photo_dir}",
        "--noise",
        "gaussian:25",
        "--json",
        str(out),
        "--figure",
        str(fig),
    )
    assert r.returncode == 0, r.stderr
    results = json.loads(out.read_text())
    psnr = {k: v["psnr"] for k, v in results["methods"].items()}
    assert psnr["bm3d"] >= psnr["noisy"] + 5
    assert all(0 < v["ssim"] <= 1 for v in results["methods"].values())
    assert "| bm3d |" in r.stdout
    assert fig.stat().st_size > 10_000


def test_corrupt_png_is_one_line_exit_2(photo_dir):
    (photo_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    r = run("eval", "--methods", "noisy", "--data", f"folder:{photo_dir}", "--noise", "gaussian:25")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "broken.png" in lines[0]
    assert "Traceback" not in r.stderr


def test_bad_specs_are_one_line_exit_2(photo_dir, tmp_path):
    for args in (
        ["--data", f"folder:{tmp_path / 'missing'}"],
        ["--data", f"folder:{photo_dir}", "--noise", "gaussian:abc"],
        ["--data", f"folder:{photo_dir}", "--methods", "noisy,nope"],
    ):
        r = run("eval", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_eval_ensemble_overrides_a_models_own_views(tmp_path):
    import skimage.data

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skimage.data.astronaut()[:64, :80]).save(photos / "astronaut.png")
    scores = {}
    for views in ("1", "2"):
        out = tmp_path / f"x{views}.json"
        r = run("eval", "--methods", "pretrained:gauss_rgb", "--data", f"folder:{photos}",
                "--ensemble", views, "--json", str(out))
        assert r.returncode == 0, r.stderr
        scores[views] = json.loads(out.read_text())["methods"]["pretrained:gauss_rgb"]["psnr"]
    assert scores["1"] != scores["2"]
    r = run("eval", "--methods", "pretrained:gauss_rgb", "--ensemble", "3")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_help_teaches():
    r = run("--help")
    assert r.returncode == 0 and "eval" in r.stdout and "examples:" in r.stdout
    r = run("eval", "--help")
    assert r.returncode == 0 and "gaussian:0-55" in r.stdout and "--figure" in r.stdout


def test_output_never_overwrites_an_input(photo_dir):
    target = photo_dir / "astronaut.png"
    before = target.read_bytes()
    r = run("eval", "--methods", "noisy", "--data", f"folder:{photo_dir}", "--figure", str(target))
    assert r.returncode == 2 and "input" in r.stderr
    assert target.read_bytes() == before
    with Image.open(target) as im:
        assert im.size == (64, 64)
