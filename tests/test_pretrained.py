"""Shipping a run as a pretrained model: export, model card, and loading it by name."""

import json
import os

import jax
import numpy as np
import pytest

from denoise_jax import checkpoints, configs, curves, evaluate, methods, pretrained, ship, train
from denoise_jax.configs import EXPERIMENTS
from denoise_jax.errors import UserError


def load_config_file(path, arg):
    return configs.load(f"{path}:{arg}")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, _built_photo_corpus):
    workdir = str(tmp_path_factory.mktemp("run"))
    config = load_config_file(str(EXPERIMENTS / "pretrained.py"), "gauss_gray,tiny")
    with pytest.MonkeyPatch.context() as patch:  # gauss_gray trains on photos:train:gray
        patch.setenv("DENOISE_JAX_PHOTOS", _built_photo_corpus)
        train.train_and_evaluate(config, workdir)
    return workdir


def _sizes(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def test_variants_are_checked():
    for variant in ship_variants():
        config = load_config_file(str(EXPERIMENTS / "pretrained.py"), variant)
        assert config.ema and "test" not in config.eval.data  # never pick on the test set
    with pytest.raises(ValueError, match="gauss_rgb"):
        load_config_file(str(EXPERIMENTS / "pretrained.py"), "gauss")


def ship_variants():
    return ("gauss_rgb", "gauss_gray", "camera")


def test_export_keeps_only_the_evaluation_weights(tiny_run, tmp_path):
    dest = str(tmp_path / "shipped")
    step = methods.export(tiny_run, dest)
    assert step == 4
    run_vars = methods.load_run(tiny_run, "latest").variables
    shipped = methods.load_run(dest)
    shipped_vars = shipped.variables
    assert shipped.step == 4 and shipped.config.to_dict() == checkpoints.load_config(
        tiny_run).to_dict()
    for a, b in zip(jax.tree.leaves(run_vars), jax.tree.leaves(shipped_vars), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # No Adam moments, no pipeline state: well under the run's own checkpoint.
    run_ckpt = os.path.join(tiny_run, "checkpoints", "4")
    assert _sizes(dest) < _sizes(run_ckpt)
    with pytest.raises(UserError, match="already exists"):
        methods.export(tiny_run, dest)


def test_ship_writes_a_card_and_loads_by_name(tiny_run, tmp_path, monkeypatch, photo_corpus):
    root = tmp_path / "zoo"
    root.mkdir()
    monkeypatch.setenv("DENOISE_JAX_SCORES", str(tmp_path / "scores"))
    rc = ship.main([tiny_run, "gauss_gray", "--root", str(root), "--seeds", "0", "--crop", "24"])
    assert rc == 0
    text = pretrained.model_card("gauss_gray", root=str(root))
    for needle in ("## Held-out scores", "noise `gaussian:25`", "| BM3D |", "| NLM |",
                   "denoise-jax eval --methods noisy,nlm,bm3d,pretrained:gauss_gray",
                   "skimage:test:gray", "Steps**: 4", "CPU", "| gauss_gray ×8 ensemble |",
                   ship.PHOTOS_HEADING, "### `photos:val:gray`, noise `gaussian:50`",
                   "--input 8bit --worst-vs bm3d", f"]({ship.CURVE})"):
        assert needle in text, needle
    assert "views of each tile" not in text  # the grey config's denoiser runs one view
    assert text.count("### ") == 2 * len(ship.GAUSS_LEVELS)  # photos:val, then skimage
    row = next(line for line in text.splitlines() if line.startswith("| gauss_gray |"))
    assert " / " in row.split("|")[2] and "dB (" in row.split("|")[5]  # float / 8-bit; worst
    assert (root / "gauss_gray" / ship.CURVE).stat().st_size > 1000
    history = (root / "gauss_gray" / ship.HISTORY).read_text().splitlines()
    assert len(history) == len(curves.val_curve(tiny_run)) > 0
    # classical scores cached: photos:val at 3 noise levels × 2 inputs, the test photos at
    # 3 noise levels (seed 0), and the validation references; a re-score reuses them exactly
    assert len(os.listdir(tmp_path / "scores")) == 10
    again = ship.rescore("gauss_gray", str(root), (0,), crop=24, ensemble=4)
    assert "over 4 views" in again
    assert checkpoints.load_config(str(root / "gauss_gray")).ensemble == 4
    for heading in (ship.PHOTOS_HEADING, ship.SKIMAGE_HEADING, "## Config", ship.STEPS):
        assert again.count(heading) == 1, heading
    assert again.count("### ") == 2 * len(ship.GAUSS_LEVELS) and ship.KEEPS_MEANS in again
    assert len(os.listdir(tmp_path / "scores")) == 10
    # BM3D's scores are the cached ones; its s/MP is timed anew in each run (this machine's)
    bm3d = [next(line for line in card.splitlines() if line.startswith("| BM3D |")).split("|")
            for card in (text, again)]
    assert bm3d[0][:5] == bm3d[1][:5] and float(bm3d[1][6]) > 0
    assert "NLM's and BM3D's timed in the same run" in again
    card = root / "gauss_gray" / pretrained.CARD
    card.write_text("# gauss_gray\n\nA card with no score sections.\n")
    with pytest.raises(UserError, match="no '## Held-out"):
        ship.rescore("gauss_gray", str(root), (0,), crop=24)
    assert ship.main(["--rescore", "gauss_gray", "--root", str(root), "--seeds", "0"]) == 2
    with pytest.raises(SystemExit) as bad_seeds:  # argparse's one-line usage error
        ship.main(["--rescore", "gauss_gray", "--root", str(root), "--seeds", "0,a"])
    assert bad_seeds.value.code == 2
    assert card.read_text() == "# gauss_gray\n\nA card with no score sections.\n"
    monkeypatch.setattr(pretrained, "ROOT", str(root))
    assert pretrained.names() == ["gauss_gray"]
    method = evaluate.resolve_method("pretrained:gauss_gray")
    noisy = np.full((20, 20, 1), 0.5, np.float32)
    assert method(noisy, None).shape == (20, 20, 1)
    with pytest.raises(UserError, match="choose one of gauss_gray"):
        evaluate.resolve_method("pretrained:nope")


def test_a_warm_started_card_carries_the_training_of_the_model_it_started_from(tmp_path):
    run, source = tmp_path / "run", tmp_path / "source"
    run.mkdir()
    source.mkdir()
    (run / train.INIT_FROM).write_text(f"starting from {source} (its step 7): parameters\n")
    assert ship.started_from(str(run), str(source)) == [
        f"- **Warm start**: starting from {source} (its step 7): parameters."]  # no card there
    (source / pretrained.CARD).write_text(
        "# m\n- **Steps**: 7 (EMA weights).\n- **Hardware**: CPU; 2.00 CPU-hours.\n"
        "- **Earlier training**: pretrained:m, as it was then: 5 steps on GPU.\n")
    lines = ship.started_from(str(run), str(source))
    assert lines[1:] == [f"- **Earlier training**: {source}, as it was then: 7 steps on CPU; "
                         "2.00 CPU-hours.",
                         "- **Earlier training**: pretrained:m, as it was then: 5 steps on GPU."]
    # The campaign's curve: the source's shipped curve, then this run's evaluations after the
    # earlier CPU-hours.
    (source / ship.HISTORY).write_text(json.dumps(
        {"run": "cycle1", "cpu_hours": 2.0, "step": 7, "psnr": 30.0}) + "\n")
    with open(run / "metrics.jsonl", "w") as f:
        for step, hours, psnr in ((3, 0.25, 30.5), (6, 0.5, 30.75)):
            f.write(json.dumps({"split": "val", "step": step, "cpu_hours": hours,
                                "psnr": psnr}) + "\n")
        f.write(json.dumps({"split": "train", "step": 6, "cpu_hours": 0.5, "loss": 1.0}) + "\n")
    history = ship.campaign_curve(str(run), lines, str(source))
    assert [(r["run"], r["cpu_hours"], r["psnr"]) for r in history] == [
        ("cycle1", 2.0, 30.0), ("run", 2.25, 30.5), ("run", 2.5, 30.75)]
    assert ship.campaign_curve(str(run), [], None)[0]["cpu_hours"] == 0.25


def test_card_scores_match_a_direct_evaluation(tiny_run, tmp_path):
    dest = str(tmp_path / "m")
    methods.export(tiny_run, dest)
    table, means = ship.score_table(dest, dest, "m", "skimage:test:gray", "gaussian:25", [0, 1],
                                    crop=24)
    from denoise_jax import data

    reports = [evaluate.evaluate(["nlm", "bm3d"], data.load("skimage:test:gray"), "gaussian:25",
                                 s, crop=24, progress=False) for s in (0, 1)]
    nlm = np.mean([r.methods["nlm"].psnr for r in reports])
    direct = [r.methods["bm3d"].psnr for r in reports]
    assert means["NLM"][0] == pytest.approx(nlm, abs=1e-6)
    # The bm3d binary is not bit-reproducible (six calls on one input differed by up to 5e-7
    # per pixel), so two runs agree to about 1e-4 dB, not exactly.
    assert means["BM3D"][0] == pytest.approx(np.mean(direct), abs=2e-3)
    row = next(line for line in table.splitlines() if line.startswith("| BM3D |"))
    assert float(row.split("|")[2]) == pytest.approx(np.mean(direct), abs=0.01)
