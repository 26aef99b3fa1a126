"""benchmarks/: the PyTorch twins match the JAX models, rows and reports are right, and the
runner runs end to end on its quickest case with tiny sizes."""

import functools
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import cases, common, report, run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWINNED = ("dncnn", "rednet", "mwcnn", "nafnet_tiny", "pridnet", "drunet", "ffdnet",
           "nafnet_small")


def _torch():
    torch = pytest.importorskip("torch", reason="torch not installed "
                                "(pip install -r requirements-bench.txt)")
    # Tiny ops on a shared 2-core machine: one thread avoids OpenMP's barrier waits.
    torch.set_num_threads(1)
    return torch


@functools.cache
def _jax_summary(name: str, channels: int = 3) -> dict:
    from denoise_jax.models import summary

    return summary.summarize(name, (1, 32, 32, channels))


@pytest.mark.parametrize("name", TWINNED)
def test_twin_has_the_jax_models_parameter_count_and_macs(name):
    torch = _torch()
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks import torch_models

    info = _jax_summary(name)
    twin = torch_models.build(name).eval()
    assert torch_models.count_params(twin) == info["params"]
    # Same layers: the same multiply-accumulates (a MAC is 2 flops to PyTorch's counter).
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        out = twin(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32)
    assert counter.get_total_flops() == pytest.approx(2e9 * info["gmacs"], rel=1e-6)


@pytest.mark.parametrize("name, kwargs", [
    ("drunet", {"features": (4, 8, 16), "down": "unshuffle", "up": "transpose"}),
    ("drunet", {"features": (4, 8), "noise_map": True}),
    ("ffdnet", {"depth": 4, "features": 8, "use_bn": True}),
    ("nafnet_small", {"width": 4, "attention": "none"}),
    ("nafnet_small", {"width": 4, "attention": "global"}),
])
def test_twin_options_match_too(name, kwargs):
    torch = _torch()
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks import torch_models
    from denoise_jax.models import summary

    channels = 4 if kwargs.get("noise_map") else 3
    info = summary.summarize(name, (1, 32, 32, channels), **kwargs)
    twin = torch_models.build(name, **kwargs).eval()
    assert torch_models.count_params(twin) == info["params"]
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        out = twin(torch.rand(1, channels, 32, 32))
    assert out.shape == (1, 3, 32, 32)
    assert counter.get_total_flops() == pytest.approx(2e9 * info["gmacs"], rel=1e-6)


def test_torch_local_mean_matches_the_jax_one():
    torch = _torch()
    from benchmarks import torch_models
    from denoise_jax.models import nafnet

    y = np.random.default_rng(0).random((2, 24, 40, 5), dtype=np.float32)
    for cell, cells in ((1, 1), (2, 3), (4, 4), (8, 2)):
        ours = torch_models.local_mean(torch.from_numpy(y.transpose(0, 3, 1, 2)), cell, cells)
        np.testing.assert_allclose(ours.numpy().transpose(0, 2, 3, 1),
                                   np.asarray(nafnet.local_mean(y, cell, cells)), atol=1e-6)


def test_grey_twins_and_benchmark_configs_match_too():
    _torch()
    from benchmarks import torch_models
    from denoise_jax.models import summary

    assert torch_models.count_params(torch_models.build("dncnn", 1)) == \
        _jax_summary("dncnn", 1)["params"]
    # mwcnn and pridnet run at their defaults, which the test above covers.
    for spec in (s for s in cases.train_cases() if s["model"] not in ("mwcnn", "pridnet")):
        jax_params = summary.summarize(spec["model"], (1, 32, 32, 3), **spec["kwargs"])["params"]
        twin = torch_models.build(spec["model"], 3, **spec["kwargs"])
        assert torch_models.count_params(twin) == jax_params, spec["name"]


def test_twins_keep_odd_sizes():
    torch = _torch()
    from benchmarks import torch_models

    for name, kwargs in cases.TINY_MODELS.items():
        for channels in (1, 3):
            twin = torch_models.build(name, channels, **kwargs).eval()
            with torch.inference_mode():
                out = twin(torch.rand(2, channels, 37, 53))
            assert out.shape == (2, channels, 37, 53), name


def test_torch_haar_matches_the_jax_one_and_inverts():
    torch = _torch()
    from benchmarks import torch_models
    from denoise_jax.models import haar

    x = np.random.default_rng(0).random((2, 8, 6, 3), dtype=np.float32)
    ours = torch_models.dwt(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(ours.numpy().transpose(0, 2, 3, 1), np.asarray(haar.dwt(x)),
                               atol=1e-6)
    back = torch_models.iwt(ours).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(back, x, atol=1e-6)


def test_unknown_twin_is_an_error():
    _torch()
    from benchmarks import torch_models

    with pytest.raises(KeyError, match="no PyTorch twin"):
        torch_models.build("mwcnn_realnoise")


def test_rows_put_ratio_above_one_when_jax_is_faster():
    train = cases.train_cases()[0]
    (row,) = run.build_rows(train, {"seconds": 1.0}, {"seconds": 3.0}, threads=2)
    assert (row["unit"], row["jax"], row["torch"], row["ratio"]) == ("s/step", 1.0, 3.0, 3.0)
    assert row["config"]["batch"] == 16 and row["config"]["threads"] == 2

    infer = cases.infer_spec("dncnn", "dncnn", {}, 512, tiled=True)
    (row,) = run.build_rows(infer, {"seconds": 0.5, "channels": 3}, {"seconds": 2.0}, 2)
    mp = 512 * 512 / 1e6
    assert row["unit"] == "MP/s" and row["jax"] == pytest.approx(mp / 0.5, rel=1e-5)
    assert row["ratio"] == pytest.approx(4.0)
    assert row["config"]["tile"] == 256

    # The faster torch layout is the row's torch value, named in torch_layout.
    layouts = {"nchw": 3.0, "channels_last": 2.0}
    (row,) = run.build_rows(train, {"seconds": 1.0},
                            {"seconds": 2.0, "layout": "channels_last", "layouts": layouts}, 2)
    assert (row["torch"], row["ratio"], row["torch_layout"]) == (2.0, 2.0, "channels_last")
    assert row["config"]["torch_layouts"] == layouts
    assert "| train/dncnn | s/step | 1 | 2 (channels_last) | 2.00 |" in report.table([row])

    (row,) = run.build_rows(train, {"seconds": 1.0}, {"error": "boom"}, 2)
    assert row["torch"] is None and row["ratio"] is None
    assert row["config"]["errors"] == {"torch": "boom"}


def test_classical_rows_name_their_peer_and_have_no_ratio():
    nlm, bm3d = (next(s for s in cases.baseline_cases() if s["method"] == m)
                 for m in ("nlm", "bm3d"))
    (row,) = run.build_rows(nlm, {"seconds": 1.0}, {"seconds": 0.5}, 2, other_name="peer")
    assert row["torch"] is None and row["ratio"] is None
    assert "OpenCV" in row["peer"] and row["peer_value"] == pytest.approx(2 * row["jax"])
    (row,) = run.build_rows(bm3d, {"seconds": 10.0}, None, 2, other_name="peer")
    assert row["peer"] is None and row["peer_value"] is None


def test_gpu_rows_report_images_and_tflops():
    spec = next(s for s in cases.gpu_cases() if s["name"] == "train/dncnn/gpu-bfloat16")
    images, tflops = run.build_rows(spec, {"seconds": 0.5, "gmacs_per_image": 2.0}, None, 2)
    assert images["unit"] == "images/s" and images["jax"] == pytest.approx(32.0)
    # 32 images/s × 2 GMACs × 2 flops × 3 (forward + backward) = 384 GFLOP/s.
    assert tflops["unit"] == "TFLOP/s" and tflops["jax"] == pytest.approx(0.384)


def test_case_selection_quick_glob_and_tiny():
    names = [s["name"] for s in cases.select()]
    assert {"train/dncnn", "train/pridnet", "infer/mwcnn/2048/tiled",
            "infer/nlm/512/whole", "infer/bm3d/512/whole"} <= set(names)
    quick = [s["name"] for s in cases.select(quick=True)]
    assert "train/dncnn" in quick and "train/pridnet" not in quick
    assert [s["name"] for s in cases.select(patterns="infer/rednet/512/*")] == \
        ["infer/rednet/512/whole", "infer/rednet/512/tiled"]
    (tiny,) = cases.select(patterns="train/mwcnn", tiny=True)
    assert tiny["tiny"] and tiny["patch"] == cases.TINY_PATCH
    assert tiny["kwargs"]["widths"] == (8, 8, 8)
    assert any(s["kind"] == "train_gpu" for s in cases.select(gpu=True))


def test_system_cases_outside_the_globs_are_not_run(monkeypatch):
    from benchmarks import system

    ran = []
    fake = {name: (lambda quick, name=name: ran.append(name) or [
        {"name": name, "unit": "MB", "jax": 1.0, "peer": None, "peer_value": None,
         "config": {}}]) for name in ("memory/a", "data/b")}
    monkeypatch.setattr(system, "CASES", fake)
    rows = run.system_rows(True, "memory/*")
    assert ran == ["memory/a"] and [r["name"] for r in rows] == ["memory/a"]


def test_pretrained_models_become_cases(tmp_path):
    model = tmp_path / "gauss_rgb"
    (model / "checkpoints").mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model": {"name": "nafnet", "width": 24}}))
    specs = cases.pretrained_cases(str(tmp_path))
    assert [s["name"] for s in specs][:2] == ["infer/pretrained-gauss_rgb/512/whole",
                                              "infer/pretrained-gauss_rgb/512/tiled"]
    assert specs[0]["model"] == "nafnet" and specs[0]["kwargs"] == {"width": 24}
    assert specs[0]["pretrained"] == "gauss_rgb"


def test_measure_takes_the_median_and_respects_the_budget():
    calls = []
    result = common.measure(lambda: calls.append(1), warmup=2, repeats=4, budget_s=60.0,
                            min_repeat_s=0.0)
    assert result["repeats"] == 4 and len(calls) == 6 and result["seconds"] >= 0
    result = common.measure(lambda: calls.append(1), warmup=0, repeats=100, budget_s=0.0)
    assert result["repeats"] == 1


def test_photo_is_deterministic_and_in_range():
    a, b = common.photo(600, 3), common.photo(600, 3)
    assert a.shape == (600, 600, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and 0.0 <= a.min() and a.max() <= 1.0
    assert common.photo(40, 1).shape == (40, 40, 1)


def test_report_rewrites_only_the_marked_section(tmp_path):
    doc = {"machine": {"cpu": "Test CPU", "cores": 2, "threads": 2, "device": "cpu",
                       "jax": "0.1", "torch": None},
           "date": "2026-01-02T03:04:05", "quick": True,
           "cases": [{"name": "train/dncnn", "unit": "s/step", "jax": 1.0, "torch": 2.5,
                      "ratio": 2.5, "config": {}},
                     {"name": "infer/nlm/512/whole", "unit": "MP/s", "jax": 0.5,
                      "torch": None, "peer": "OpenCV", "peer_value": 0.25, "ratio": None,
                      "config": {}}]}
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\nbefore\n{report.START}\nold\n{report.END}\nafter\n")
    report.update_readme(str(readme), doc)
    text = readme.read_text()
    assert text.startswith("# T\n\nbefore\n") and text.endswith(f"{report.END}\nafter\n")
    assert "old" not in text and "Test CPU" in text and "2026-01-02" in text
    assert "| train/dncnn | s/step | 1 | 2.5 | 2.50 |" in text
    assert "0.25 (OpenCV)" in text
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(ValueError):
        report.update_readme(str(tmp_path / "bare.md"), doc)
    # a named section is a second table; the main one is left as it was
    first, last = report.markers("extra")
    readme.write_text(text + f"{first}\nold\n{last}\n")
    report.update_readme(str(readme), doc, "extra")
    again = readme.read_text()
    assert again.startswith(text) and again.count("| train/dncnn | s/step |") == 2
    assert "old" not in again


def test_rounds_pair_each_twin_measurement_with_the_jax_one_before_it():
    jax_rounds = [{"seconds": 1.0}, {"seconds": 2.0}, {"seconds": 1.2}]
    torch_rounds = [{"seconds": 1.5, "layout": "nchw", "layouts": {"nchw": 1.5, "cl": 1.8}},
                    {"error": "boom"},
                    {"seconds": 1.2, "layout": "cl", "layouts": {"nchw": 1.3, "cl": 1.2}}]
    jax, twin = run.combine_rounds(jax_rounds, torch_rounds)
    assert jax["rounds"] == [1.0, 1.2] and jax["seconds"] == pytest.approx(1.1)
    assert jax["round_ratios"] == pytest.approx([1.5, 1.0])
    assert twin["layouts"] == pytest.approx({"nchw": 1.4, "cl": 1.5})
    assert (twin["layout"], twin["seconds"]) == ("nchw", pytest.approx(1.4))
    (row,) = run.build_rows(cases.train_cases()[0], jax, twin, 2)
    # The paired median, not the ratio of the two medians (1.4 / 1.1).
    assert row["ratio"] == pytest.approx(1.25) and row["config"]["round_ratios"] == [1.5, 1.0]
    assert run.combine_rounds([{"error": "x"}], [{"seconds": 1.0}]) == (
        {"error": "x"}, {"seconds": 1.0})


def test_runner_smoke_on_the_quickest_case(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tiny", "--rounds", "2", "--cases",
         "train/dncnn", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "[1/1] train/dncnn" in out.stdout and "| train/dncnn | s/step |" in out.stdout
    doc = json.loads((tmp_path / "latest.json").read_text())
    dated = [p.name for p in tmp_path.iterdir() if p.name != "latest.json"]
    assert len(dated) == 1 and dated[0].endswith("-cpu-tiny.json")
    assert {"cpu", "cores", "device", "jax", "torch"} <= set(doc["machine"])
    (row,) = doc["cases"]
    assert row["name"] == "train/dncnn" and row["unit"] == "s/step" and row["jax"] > 0
    assert row["config"]["tiny"] and row["config"]["patch"] == cases.TINY_PATCH
    if doc["machine"]["torch"]:
        assert row["torch"] > 0 and len(row["config"]["round_ratios"]) == 2
        assert row["ratio"] == pytest.approx(statistics.median(row["config"]["round_ratios"]),
                                             rel=1e-3)
        # Both torch layouts were timed; the row carries the faster.
        layouts = row["config"]["torch_layouts"]
        assert set(layouts) == {"nchw", "channels_last"}
        assert row["torch"] == min(layouts.values()) == layouts[row["torch_layout"]]
    else:
        assert row["torch"] is None and row["ratio"] is None
