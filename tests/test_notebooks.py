"""Every notebook in notebooks/ runs end to end in its smoke mode, as a reader would run it.

Each notebook is executed by papermill with `smoke=True`, its `out_dir` and every `workdir*`
parameter it declares pointed into a temporary folder (so nothing in the checkout is read or
written), in a kernel that runs this interpreter: a kernelspec written to a temporary folder
and put first on `JUPYTER_PATH`, so no user- or system-wide kernel can be picked instead.
Each notebook must declare `smoke` and `out_dir` in its `parameters` cell and write
`out_dir/table.md`; notebooks with known tables get their numbers checked too.
"""

import glob
import json
import math
import os
import sys

import nbformat
import papermill
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
KERNEL = "denoise-jax-tests"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """The name of a kernelspec that runs `sys.executable` (this venv's Python)."""
    folder = tmp_path / "jupyter" / "kernels" / KERNEL
    folder.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "denoise_jax tests", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # another test's fake device count
    return KERNEL


def _outputs(path) -> list[dict]:
    """Every output of every code cell of an executed notebook."""
    nb = nbformat.read(str(path), as_version=4)
    return [out for cell in nb.cells for out in cell.get("outputs", [])]


def _outputs_text(path) -> str:
    """All stream and text/plain outputs of an executed notebook, joined."""
    return "\n".join(out.get("text", "") or out.get("data", {}).get("text/plain", "")
                     for out in _outputs(path))


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


def _check_mnist_dae(out_dir, executed) -> None:
    """The Keras MNIST autoencoder: three rows, sane noisy baseline, both smoke-trained models
    beat the input."""
    for name in ("digits.png", "curves.png"):
        assert _is_png(out_dir / name), name
    table = json.loads((out_dir / "table.json").read_text())
    rows = table["rows"]
    assert list(rows) == ["noisy", "dense", "conv"]
    for name, row in rows.items():
        assert set(row) == {"bce", "psnr", "ssim"}, name
        assert all(math.isfinite(v) for v in row.values()), (name, row)
    assert table["smoke"] is True and table["images"] == 100
    assert table["noise"] == "keras:0.5"
    # keras:0.5 noise on MNIST digits is about 9.4 dB; far off means the noise or metric moved.
    assert 8.5 < rows["noisy"]["psnr"] < 10.5, rows["noisy"]
    assert rows["dense"]["psnr"] > rows["noisy"]["psnr"] + 1.0, rows
    assert rows["conv"]["psnr"] > rows["noisy"]["psnr"], rows
    for model in ("dense", "conv"):
        assert rows[model]["bce"] < rows["noisy"]["bce"], rows
        assert table["checkpoints"][model]["step"] > 0
    markdown = (out_dir / "table.md").read_text()
    for name in rows:
        assert f"| {name} |" in markdown
    shown = [out for out in _outputs(executed) if "image/png" in out.get("data", {})]
    assert len(shown) == 2, "the digits and curves figures are not shown in the notebook"
    # The setup cell prints the kernel's interpreter: it must be this one.
    assert f"python {sys.executable} " in _outputs_text(executed)


CHECKS = {"mnist_dae": _check_mnist_dae}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs_in_smoke_mode(path, tmp_path, kernel):
    declared = papermill.inspect_notebook(path)
    assert {"smoke", "out_dir"} <= set(declared), f"{path}: parameters cell lacks smoke/out_dir"
    out_dir = tmp_path / "out"
    parameters = {"smoke": True, "out_dir": str(out_dir)}
    parameters.update({name: str(tmp_path / name) for name in declared
                       if name.startswith("workdir")})
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(path, str(executed), parameters=parameters, kernel_name=kernel,
                               cwd=ROOT, progress_bar=False, execution_timeout=300)

    table = out_dir / "table.md"
    assert table.exists() and table.read_text().strip(), f"{path} wrote no {table}"
    if (out_dir / "table.json").exists():
        json.loads((out_dir / "table.json").read_text())
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in CHECKS:
        CHECKS[stem](out_dir, executed)
