"""benchmarks/device_run.sh end to end on a CPU (``--quick``, ``JAX_PLATFORMS=cpu``): slow.

The GPU script must run unattended on the first lent device: here its quick mode runs the three
checks against the committed CPU references (which must pass on the machine that made them) and
every benchmark at tiny sizes, and must write only under ``$OUT``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("reflex_likelihood", "mixture_likelihood", "simulator", "suite", "profile_fit", "jaxhalo_fit")


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "benchmarks"], cwd=REPO,
                          capture_output=True, text=True).stdout


@pytest.mark.slow
def test_device_run_quick_on_cpu(tmp_path):
    before = _git_status()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "OUT": str(tmp_path)}
    env.pop("XLA_FLAGS", None)
    r = subprocess.run(["bash", "benchmarks/device_run.sh", "--quick", "--budget-s", "3000"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    checks = json.loads(next(tmp_path.glob("checks_*.json")).read_text())
    assert [c["check"] for c in checks["records"]] == [
        "reflex_lnL_grad_float64", "simulator_snapshot_float64", "nuts_posterior_within_mc_error"]
    assert all(c["passed"] for c in checks["records"]), checks
    assert checks["device"].startswith("CPU")
    bench = json.loads(next(tmp_path.glob("benchmarks_*.json")).read_text())
    for name in BENCHMARKS:
        assert name in bench, name
        assert "error" not in bench[name]["meta"] and "skipped" not in bench[name]["meta"], bench[name]["meta"]
        assert bench[name]["records"], name
        assert bench[name]["device"].startswith("CPU")
    assert (tmp_path / "device_run.log").exists()
    assert _git_status() == before  # nothing written over the committed records and references
