"""Brooks et al. (2025) §4.1 closed loop: simulate their rigid MW-LMC system, select, fit, compare.

Runs ``examples/brooks2025_closed_loop.py`` (see its docstring for every setting and the hypotheses)
in a temporary folder and records the fitted travel speed and apex (NUTS median and 16-84 %
interval), the simulation's true reflex (-<v> of the selected particles), the published
64.5 km/s at (39.1 deg, -67.8 deg), the settings, and the hypotheses tested with their numbers.

``python -m benchmarks.bench_brooks2025_closed_loop [--quick]`` writes
``benchmarks/results/brooks2025_closed_loop_<device>.json`` (``--quick``: the example's small mode,
to ``results/quick/``).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from benchmarks.common import write_results  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "brooks2025_closed_loop.py"


def load_example():
    """The example script as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("brooks2025_closed_loop", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(quick: bool = False) -> tuple[list[dict], dict]:
    ex = load_example()
    with tempfile.TemporaryDirectory() as tmp:
        res = ex.run(tmp, small=quick)
    p, t = res["nuts"], res["truth_minus_mean_v"]
    record = {
        "case": "brooks2025_4.1" + ("_small" if quick else ""),
        "n_particles": res["settings"]["n_particles"],
        "n_selected": t["n"],
        "selection": res["settings"]["selection"],
        **{f"fit_{k}_{q}": p[k][q] for k in ("v_travel", "apex_l", "apex_b") for q in ("median", "q16", "q84")},
        "truth_v_travel": t["v_travel"], "truth_v_travel_se": t["v_travel_se"],
        "truth_apex_l": t["apex_l"], "truth_apex_b": t["apex_b"],
        "fit_minus_truth_angle_deg": res["fit_minus_truth"]["angle_deg"],
        "fit_minus_truth_z": res["fit_minus_truth"]["z"],
        **{f"published_{k}": v for k, v in res["published"].items()},
        "fit_minus_published_v_travel": res["fit_minus_published"]["v_travel_kms"],
        "fit_minus_published_angle_deg": res["fit_minus_published"]["angle_deg"],
        "max_r_hat": p["max_r_hat"], "divergences": p["divergences"],
        **{k: v for k, v in res["timings_s"].items()},
    }
    meta = {k: res[k] for k in ("settings", "published", "truth_minus_mean_v", "ml", "nuts", "fit_minus_truth",
                                "fit_minus_published", "orbit")}
    meta["hypotheses"] = res.get("hypotheses", [])
    return [record], meta


if __name__ == "__main__":
    records, meta = run(quick="--quick" in sys.argv)
    print(write_results("brooks2025_closed_loop", records, meta))
