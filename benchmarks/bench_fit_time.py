"""Time to first result of ``jaxhalo fit`` on the bundled example, compile time shown separately.

``jaxhalo fit`` (no arguments: the bundled 850-star example, continuity model, MS apex,
Chandra et al. priors, ML + 5 rounds of 3-sigma clipping, NUTS 4 chains x (500 warm-up + 1000
draws)) is run as a user runs it, in a fresh Python process (start-up, imports, fit, plots and
files all included), twice:

1. **cold**: with an empty persistent compilation cache (``JAXHALO_CACHE_DIR`` pointing at a
   new directory): the first run on a fresh machine, every XLA program compiled;
2. **warm**: the same command again, the cache now filled by run 1: every later run.

The difference between the two is the XLA compile time that the cache saves (tracing and
lowering still happen in run 2). The CLI's own timings (ML + clipping, NUTS, total) come from
its ``diagnostics.json``. On a CPU the CLI gives each chain an XLA host device, so the chains
run in parallel threads (``--sequential-chains`` to compare).

    python -m benchmarks.bench_fit_time [--quick] [--sequential]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import device_name, write_results

REPO = Path(__file__).resolve().parents[1]
RESULT_NAME = "fit_time"
GOAL_S = 60.0


def time_cli(cache_dir: str, extra: list[str], label: str) -> dict:
    """One ``jaxhalo fit`` in a fresh process; returns its wall time and the CLI's diagnostics."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "JAXHALO_CACHE_DIR": cache_dir}
        env.pop("XLA_FLAGS", None)
        cmd = [sys.executable, "-m", "jaxhalo.cli", "fit", "--out", out, "--no-progress", *extra]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO, timeout=1800)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-3000:])
        diag = json.loads((Path(out) / "diagnostics.json").read_text())
    t = diag["timings_s"]
    return {
        "run": label, "command": "jaxhalo fit " + " ".join(extra + ["--no-progress"]), "wall_s": wall,
        "ml_clip_s": t["map_clip_s"], "nuts_s": t["nuts_s"], "fit_total_s": t["total"],
        "startup_imports_plots_s": wall - t["total"], "max_r_hat": diag["max_r_hat"],
        "min_ess_bulk": diag["min_ess_bulk"], "divergences": diag["divergences"], "n_used": diag["n_used"],
        "devices": len(diag.get("devices", [])), "goal_s": GOAL_S, "goal_met": wall < GOAL_S,
    }


def run(quick: bool = False, sequential: bool = False) -> list[dict]:
    extra = ["--warmup", "100", "--samples", "100"] if quick else []
    if sequential:
        extra.append("--sequential-chains")
    with tempfile.TemporaryDirectory() as cache:
        cold = time_cli(cache, extra, "cold (empty compilation cache)")
        warm = time_cli(cache, extra, "warm (cache filled by the cold run)")
    warm["compile_saved_by_cache_s"] = cold["wall_s"] - warm["wall_s"]
    return [cold, warm]


if __name__ == "__main__":
    q, seq = "--quick" in sys.argv, "--sequential" in sys.argv
    recs = run(quick=q, sequential=seq)
    for r in recs:
        print(r)
    load = os.getloadavg()
    print(write_results(RESULT_NAME, recs, {
        "example": "jaxhalo/data/example_reflex.ecsv (bundled), continuity/ms model, Chandra priors, 5 clipping rounds",
        "nuts": "4 chains x (500 warm-up + 1000 draws)" + (" (quick: 100 + 100)" if q else ""),
        "chains": "sequential" if seq else "parallel (one XLA host device per chain)",
        "goal": f"time to first result < {GOAL_S:.0f} s on 2 CPU cores", "device": device_name(),
        "load_average_after": list(load), "cpu_count": os.cpu_count(),
    }))
