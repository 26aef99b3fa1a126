"""Outputs of `eval` and `denoise` on a full disk or in an unwritable folder: one line naming
the path and what to do, exit code 2, nothing left behind. (Checkpoint saves: see
test_checkpoints.py and test_train.py.)"""

import os

import pytest

from denoise_jax import cli


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("flag, name", [("--json", "results.json"), ("--figure", "grid.png")])
def test_eval_outputs_on_a_full_disk(photo_dir, tmp_path, full_disk, capsys, flag, name):
    out = tmp_path / "out"
    full_disk(str(out))
    code = cli.main(["eval", "--methods", "noisy", "--data", f"folder:{photo_dir}", "--crop",
                     "16", flag, str(out / name)])
    assert code == 2
    assert _one_error_line(capsys) == (
        f"error: cannot write '{out / name}': the disk is full; nothing was written; free some "
        "space or write to another disk")
    assert os.listdir(out) == []  # no partial file, no temporary file


def test_denoise_output_on_a_full_disk(photo_dir, tmp_path, full_disk, capsys):
    out = tmp_path / "out"
    full_disk(str(out))
    code = cli.main(["denoise", str(photo_dir / "camera.png"), "-o", str(out / "camera.png"),
                     "--method", "gaussian", "--sigma", "10"])
    assert code == 2
    assert _one_error_line(capsys) == (
        f"error: cannot write '{out / 'camera.png'}': the disk is full; nothing was written; "
        "free some space or write to another disk")
    assert os.listdir(out) == []


def test_an_unwritable_output_folder_stops_eval_before_evaluating(
        photo_dir, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    access = os.access  # root may write anyway: it is told it may not
    monkeypatch.setattr(os, "access", lambda p, mode: p != str(locked) and access(p, mode))
    code = cli.main(["eval", "--methods", "bm3d", "--data", f"folder:{photo_dir}", "--json",
                     str(locked / "results.json")])
    assert code == 2
    assert _one_error_line(capsys) == (f"error: cannot write into '{locked}': permission "
                                       "denied; write to a folder you can write to")
    assert capsys.readouterr().out == ""  # refused before any (slow) BM3D
