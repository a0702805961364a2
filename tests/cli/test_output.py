"""Output safety: --out checked before work, staged writes that never leave a half output, strict JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxhalo.cli import StagedOutput, build_parser, check_output, strict_json


def test_staged_output_commits_and_rolls_back(tmp_path):
    final = tmp_path / "res"
    with StagedOutput(final) as d:
        (d / "a.txt").write_text("1")
        assert not final.exists()  # nothing visible until the end
    assert (final / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with StagedOutput(final) as d:
            (d / "a.txt").write_text("2")
            raise RuntimeError("killed half-way")
    assert (final / "a.txt").read_text() == "1"  # the old result is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # no partial directory left
    with StagedOutput(final) as d:
        (d / "b.txt").write_text("3")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]  # replaced as a whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_strict_json_writes_null():
    text = strict_json({"r_hat": float("nan"), "x": [np.float64(np.inf), 1.0], "n": np.int64(3)})
    assert json.loads(text) == {"r_hat": None, "x": [None, 1.0], "n": 3}
    assert "NaN" not in text and "Infinity" not in text


def test_check_output_creates_nothing(tmp_path):
    check_output(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")  # an empty directory may be used
    (tmp_path / "model.npe").write_text("x")
    with pytest.raises(ValueError, match="exists; give --overwrite"):
        check_output(tmp_path / "model.npe", kind="file")
    check_output(tmp_path / "model.npe", overwrite=True, kind="file")


def test_overwrite_is_accepted_by_the_parser(tmp_path):
    for argv in (["fit", "--overwrite"], ["profiles", "--overwrite"], ["simulate", "--overwrite"],
                 ["sbi", "infer", "m", "s", "--out", "o", "--overwrite"], ["sbi", "train", "s", "--out", "o", "--overwrite"]):
        assert build_parser().parse_args(argv).overwrite


def test_partial_directory_of_a_killed_run_is_removed(tmp_path):
    import subprocess
    import sys

    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True).stdout)
    left = tmp_path / f".res.partial-{pid}-abc123"  # what a run killed by SIGKILL leaves
    left.mkdir()
    (left / "posterior.nc").write_text("half")
    with StagedOutput(tmp_path / "res") as d:
        (d / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
