"""The metrics writer: JSON lines, truncation on resume, CPU hours carried across chunks."""

import pytest

from denoise_jax import writers
from denoise_jax.errors import UserError


def test_cpu_hours_grow_and_carry_over_a_resume(tmp_path):
    first = writers.MetricWriter(str(tmp_path))
    first.write_scalars(1, "train", {"loss": 1.0})
    sum(i * i for i in range(2_000_000))  # spend some CPU time
    first.write_scalars(2, "train", {"loss": 0.5})
    first.write_scalars(3, "train", {"loss": 0.4})  # lost: the run is resumed from step 2
    first.close()
    rows = writers.read_metrics(str(tmp_path))
    assert 0 <= rows[0]["cpu_hours"] < rows[1]["cpu_hours"] <= rows[2]["cpu_hours"]
    resumed = writers.MetricWriter(str(tmp_path), resume_step=2)
    resumed.write_scalars(3, "train", {"loss": 0.4})
    resumed.close()
    rows = writers.read_metrics(str(tmp_path))
    assert [r["step"] for r in rows] == [1, 2, 3]
    # the new chunk continues from what step 2 had used, not from zero
    assert rows[2]["cpu_hours"] >= rows[1]["cpu_hours"]


def test_curves_compare_runs_at_equal_cpu_hours(tmp_path, capsys):
    import json

    from denoise_jax import curves

    def run(name, points):
        folder = tmp_path / name
        folder.mkdir()
        with open(folder / "metrics.jsonl", "w") as f:
            for hours, step, psnr in points:
                f.write(json.dumps({"step": step, "split": "val", "cpu_hours": hours,
                                    "psnr": psnr}) + "\n")
        return str(folder)

    a = run("a", [(0.1, 100, 20.0), (0.2, 200, 22.0), (0.3, 300, 23.0), (0.4, 400, 24.0)])
    b = run("b", [(0.1, 50, 21.0), (0.5, 250, 25.0)])
    assert curves.at_hours(curves.val_curve(a), 0.25) == 22.5
    assert curves.at_hours(curves.val_curve(a), 0.45) is None  # beyond what it reached
    assert abs(curves.slope(curves.val_curve(a)) - 10.0) < 1e-9
    text = curves.table({"a": a, "b": b})
    assert "at 0.40 CPU-h" in text  # the shortest run's end
    assert "| a | 24.00 |" in text and "| b | 24.00 |" in text
    out = tmp_path / "c.png"
    curves.plot({"a": curves.val_curve(a), "b": curves.val_curve(b)}, str(out),
                references={"BM3D": 23.5})
    assert out.stat().st_size > 1000
    # a run just started (no evaluation yet) is listed, and does not set the comparison point
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "metrics.jsonl").write_text(json.dumps({"step": 10, "split": "train",
                                                     "cpu_hours": 0.01, "loss": 1.0}) + "\n")
    text = curves.table({"a": a, "b": b, "fresh": str(fresh)})
    assert "at 0.40 CPU-h" in text and "| fresh | - | no evaluation yet | - |" in text
    with pytest.raises(UserError, match="no validation records"):
        curves.table({"fresh": str(fresh)})
    capsys.readouterr()
    assert curves.main([str(fresh)]) == 2  # the CLI: one line, no traceback
    assert capsys.readouterr().err.startswith("error: no validation records")
