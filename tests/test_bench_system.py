"""benchmarks/system.py: every case in its smallest form, its rows' schema and sanity."""

import math
import sys

import numpy as np
import pytest

from benchmarks import system

KEYS = {"name", "unit", "jax", "peer", "peer_value", "ratio", "config"}


def check_row(row: dict, name: str, unit: str, peer: bool, positive: bool = True) -> None:
    assert set(row) == KEYS
    assert row["name"] == name and row["unit"] == unit
    assert isinstance(row["config"], dict) and row["config"]
    assert math.isfinite(row["jax"]) and (row["jax"] > 0 or not positive)
    if peer:
        assert isinstance(row["peer"], str) and row["peer"]
        assert math.isfinite(row["peer_value"]) and row["peer_value"] > 0
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0
    else:
        assert row["peer"] is None and row["peer_value"] is None and row["ratio"] is None


def test_linear_fit_recovers_a_line_and_scores_scatter_lower():
    x = [1.0, 4.0, 16.0, 24.0]
    exact = system.linear_fit(x, [300 + 80 * v for v in x])
    assert exact["slope"] == pytest.approx(80) and exact["intercept"] == pytest.approx(300)
    assert exact["r2"] == pytest.approx(1.0)
    bent = system.linear_fit(x, [v**2 for v in x])
    assert 0.0 < bent["r2"] < 0.99
    with pytest.raises(ValueError):
        system.linear_fit([1.0], [2.0])


def test_sizes_are_three_by_two_photos():
    assert system.size_for(24) == (6000, 4000)
    width, height = system.size_for(1)
    assert abs(width * height - 1e6) < 5e3 and width / height == pytest.approx(1.5, abs=0.01)


def test_memory_cases_measure_the_cli_and_write_the_plot(tmp_path):
    plot = tmp_path / "plots" / "scaling.png"
    mps = (0.1, 0.3)
    rss, seconds = system.memory_scaling(mps, spec=system.TINY_MODEL, prefer_shipped=False,
                                         plot=str(plot))
    # Between 0.1 and 0.3 MP the RSS slope is within page-allocation noise (it can be ~0), and
    # the time slope within timing noise on a busy machine (a tiny model; seen at -0.03 s/MP).
    check_row(rss, "memory/denoise_scaling", "MB/MP", peer=False, positive=False)
    assert abs(rss["jax"]) < 1000
    check_row(seconds, "memory/denoise_scaling_time", "s/MP", peer=False, positive=False)
    points = rss["config"]["points"]
    assert [round(p["megapixels"], 1) for p in points] == list(mps)
    # A JAX process holds well over 100 MB; each point is its own fresh CLI process.
    assert all(100 < p["peak_rss_mb"] < system.LIMIT_MB and p["seconds"] > 0
               for p in points), points
    for fit in (rss["config"]["rss_fit"], seconds["config"]["seconds_fit"]):
        assert 0.0 <= fit["r2"] <= 1.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in plot.parent.iterdir() if p.name != plot.name]  # no temp file left

    width, height = system.size_for(0.3)
    one = system.memory_denoise(width, height, spec=system.TINY_MODEL, prefer_shipped=False)
    check_row(one, "memory/denoise_24mp", "MB", peer=False)
    assert one["config"]["limit_mb"] == 3072 and one["config"]["under_limit"] is True
    assert "--workdir" in one["config"]["command"]


def test_a_childs_peak_rss_is_its_own_not_its_large_parents():
    ballast = np.ones(200_000_000)  # 1.6 GB touched here, in the parent
    small = system.run_measured([sys.executable, "-c", "pass"])
    big = system.run_measured([sys.executable, "-c", "import numpy; a = numpy.ones(50_000_000)"])
    del ballast
    assert small["rc"] == 0 and big["rc"] == 0
    assert 1 < small["peak_rss_mb"] < 200, small["peak_rss_mb"]
    assert 400 < big["peak_rss_mb"] < 1000, big["peak_rss_mb"]


def test_data_case_compares_the_pipeline_with_the_train_step():
    row = system.data_throughput("realnoise_rednet:tiny", steps=1, batches=2)
    check_row(row, "data/realnoise_rednet", "images/s", peer=True)
    config = row["config"]
    assert config["image_shape"] == [32, 32, 3] and config["batch"] == 4
    assert row["ratio"] == pytest.approx(config["pipeline_images_per_s"]
                                         / config["train_images_per_s"])


def test_ssim_case_agrees_with_skimage():
    row = system.ssim_speed(48, repeats=1)
    check_row(row, "metrics/ssim_48", "MP/s", peer=True)
    assert row["config"]["abs_diff"] < 1e-4
    assert row["ratio"] == pytest.approx(row["jax"] / row["peer_value"])


def test_mesh_case_runs_the_train_step_on_fake_devices():
    row = system.mesh_overhead(system.TINY_MODEL, 4, batch=4, steps=1)
    check_row(row, "mesh/4dev", "s/step", peer=True)
    assert row["config"]["global_batch"] == 4
    assert row["ratio"] == pytest.approx(row["peer_value"] / row["jax"])


def test_case_selection_and_table(capsys):
    assert system.selected(None) == list(system.CASES)
    assert system.selected("memory/*") == ["memory/denoise_scaling", "memory/denoise_24mp"]
    assert system.selected("metrics/ssim, mesh/*") == ["metrics/ssim", "mesh/4dev"]
    assert system.selected("nothing/*") == []
    with pytest.raises(SystemExit):
        system.main(["--cases", "nothing/*"])
    row = system.row("x/y", "MP/s", 2.0, {"a": 1}, peer="p", peer_value=1.0, ratio=2.0)
    table = system.markdown([row])
    assert "| x/y | MP/s | 2 | p | 1 | 2 |" in table
    assert np.isfinite(row["jax"])
