"""Time to first result of ``jaxhalo fit`` on the bundled example, compile time shown separately.

On one CPU device On one CPU device ``run_nuts`` (and so ``jaxhalo fit``) runs its 4 chains with numpyro's
``chain_method='vectorized'``; on 2 cores ``'sequential'`` is ~1.7x faster for the same
number of leapfrog steps (see ``bench_samplers``). ``fit_reflex`` has no switch for it, so
the CLI is timed as shipped and once more with the module's ``run_nuts`` wrapped to use
``chain_method='sequential'`` (nothing else changed).

Note: ``fit_reflex``'s ``timings['nuts_s']`` stops the clock when ``mcmc.run`` returns,
which with vectorized chains is before the asynchronously dispatched computation has
finished; the rest shows up between the NUTS timing and the CLI's total
(``total_minus_map_and_nuts_s``), and is included in all wall times reported here.

1. **CLI, cold process** -- ``python -m jaxhalo.cli fit --out <tmp> --no-progress`` run as a
   subprocess (float64; the CLI switches it on, ``JAX_ENABLE_X64=1`` is also set). Reported:
   the subprocess wall time (Python start-up, imports, fit, plots, files), the CLI's own
   timings from ``diagnostics.json`` (ML + clipping, NUTS, total) and the summary line it
   prints.
2. **Python API, same process** -- :func:`jaxhalo.inference.fit_reflex` on the same
   catalogue with the CLI's settings, called twice (same shapes). The second call reuses
   what is cached in the process (the jitted L-BFGS solver is ``lru_cache``-d; numpyro builds
   a new NUTS program per ``MCMC`` object, so NUTS traces and compiles again).
   ``first - second`` is the compile overhead saved by warm caches; in addition every JAX
   trace / lowering / XLA compile is timed through ``jax.monitoring`` events, giving the
   compile time contained in each call directly.

    python -m benchmarks.bench_fit_time [--quick] [--skip-sequential]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import jax

from benchmarks.common import device_name, write_results

jax.config.update("jax_enable_x64", True)

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 60.0

_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compile_seconds = {e: 0.0 for e in _COMPILE_EVENTS}


def _listener(event: str, duration: float, **kwargs) -> None:
    if event in _compile_seconds:
        _compile_seconds[event] += duration


jax.monitoring.register_event_duration_secs_listener(_listener)


@contextmanager
def _stopwatch():
    """Yields a dict filled with 'wall_s', 'compile_s' and the trace / lower / XLA split."""
    out = {}
    c0, t0 = dict(_compile_seconds), time.perf_counter()
    try:
        yield out
    finally:
        out["wall_s"] = time.perf_counter() - t0
        d = {e.rsplit("/", 1)[1]: _compile_seconds[e] - c0[e] for e in _COMPILE_EVENTS}
        out["compile_s"] = sum(d.values())
        out["compile_split_s"] = d


_TIME_LINE = re.compile(r"time: ML\+clipping ([\d.]+) s, NUTS ([\d.]+) s, total ([\d.]+) s")


_SEQUENTIAL_CLI = (
    "import sys, functools, jax; jax.config.update('jax_enable_x64', True); "
    "import jaxhalo.inference as inf; inf.run_nuts = functools.partial(inf.run_nuts, chain_method='sequential'); "
    "from jaxhalo.cli import main; sys.exit(main(sys.argv[1:]))"
)


@contextmanager
def _sequential_chains(on: bool = True):
    """Make :func:`jaxhalo.inference.fit_reflex` call ``run_nuts(..., chain_method='sequential')``."""
    import functools

    import jaxhalo.inference as inf

    original = inf.run_nuts
    if on:
        inf.run_nuts = functools.partial(original, chain_method="sequential")
    try:
        yield
    finally:
        inf.run_nuts = original


def time_cli(extra_args: list[str], sequential: bool = False, timeout_s: float | None = None) -> dict:
    """Run the CLI on the bundled example in a fresh process and collect its timings.

    ``sequential=True`` runs the same ``jaxhalo.cli.main`` with ``run_nuts`` wrapped to use
    ``chain_method='sequential'`` (``fit_reflex`` has no switch for it yet).
    """
    with tempfile.TemporaryDirectory() as tmp:
        args = ["fit", "--out", tmp, "--no-progress", *extra_args]
        cmd = [sys.executable, "-c", _SEQUENTIAL_CLI, *args] if sequential else [sys.executable, "-m", "jaxhalo.cli", *args]
        env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        what = ("CLI subprocess as shipped (vectorized chains): python -m jaxhalo.cli " if not sequential else
                "CLI subprocess, run_nuts with chain_method='sequential': jaxhalo.cli.main ") + " ".join(
                    ["fit --no-progress", *extra_args])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            wall = time.perf_counter() - t0
            print(f"[cli] {what}: timed out after {wall:.0f} s")
            return {"what": what, "sequential_chains": sequential, "timed_out": True, "subprocess_wall_s": wall,
                    "goal_s": GOAL_S, "goal_met": False}
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"jaxhalo fit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        diag = json.loads((Path(tmp) / "diagnostics.json").read_text())
    m = _TIME_LINE.search(proc.stdout)
    printed = dict(zip(("map_clip_s", "nuts_s", "total_s"), map(float, m.groups()))) if m else None
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("[jaxhalo fit] max R-hat")]
    rec = {
        "what": what, "sequential_chains": sequential, "timed_out": False,
        "subprocess_wall_s": wall,
        "cli_timings_s": diag["timings_s"],
        "printed_timings_s": printed,
        "startup_imports_io_plots_s": wall - diag["timings_s"]["total"],
        "total_minus_map_and_nuts_s": diag["timings_s"]["total"] - diag["timings_s"]["map_clip_s"] - diag["timings_s"]["nuts_s"],
        "n_stars": diag["n_stars"], "n_used": diag["n_used"], "n_clipped": diag["n_clipped"],
        "max_r_hat": diag["max_r_hat"], "min_ess_bulk": diag["min_ess_bulk"], "divergences": diag["divergences"],
        "summary_line": summary[0] if summary else None,
        "goal_s": GOAL_S, "goal_met": bool(wall < GOAL_S),
    }
    print(f"[cli] {what}: subprocess {wall:.1f} s; fit {diag['timings_s']}; {rec['summary_line']}", flush=True)
    return rec


def time_api(num_warmup: int, num_samples: int, sequential: bool = False) -> dict:
    """fit_reflex twice in this process on the bundled example; compile overhead = first - second."""
    from jaxhalo.catalog import read_catalog
    from jaxhalo.cli import EXAMPLE_CATALOG
    from jaxhalo.inference import PriorSet, fit_reflex
    from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel

    data = ReflexData.from_catalog(read_catalog(EXAMPLE_CATALOG))
    spec, priors = ReflexModel("continuity", "ms"), PriorSet()
    calls = []
    for i in range(2):
        with _stopwatch() as t, _sequential_chains(sequential):
            res = fit_reflex(data, spec, priors, key=jax.random.PRNGKey(0), num_chains=4, num_warmup=num_warmup,
                             num_samples=num_samples, progress_bar=False, verbose=False)
        calls.append({**t, "fit_timings_s": res.timings, "min_ess_bulk": res.min_ess_bulk, "max_r_hat": res.max_r_hat})
        print(f"[api] call {i + 1}: {t['wall_s']:.1f} s (JAX compile inside: {t['compile_s']:.1f} s), {res.timings}")
    first, second = calls
    return {
        "what": f"Python API: fit_reflex twice in one process (4 chains x {num_warmup} + {num_samples}), "
                f"chain_method {'sequential' if sequential else 'vectorized (as shipped)'}",
        "sequential_chains": sequential,
        "first_call": first, "second_call": second,
        "compile_overhead_first_minus_second_s": first["wall_s"] - second["wall_s"],
        "compile_s_first_call_monitoring": first["compile_s"],
        "compile_s_second_call_monitoring": second["compile_s"],
        "first_call_without_compile_s": first["wall_s"] - first["compile_s"],
    }


def run(quick: bool = False, sequential_variant: bool = True, as_shipped_timeout_s: float = 600.0) -> list[dict]:
    """The CLI as shipped, the Python API twice (as shipped), and the CLI with sequential chains."""
    extra = ["--warmup", "100", "--samples", "100"] if quick else []
    records = [time_cli(extra, sequential=False, timeout_s=as_shipped_timeout_s)]
    records.append(time_api(100 if quick else 500, 100 if quick else 1000, sequential=False))
    if sequential_variant:
        records.append(time_cli(extra, sequential=True, timeout_s=as_shipped_timeout_s))
    return records


if __name__ == "__main__":
    q = "--quick" in sys.argv
    load0 = list(os.getloadavg())
    recs = run(quick=q, sequential_variant="--skip-sequential" not in sys.argv)
    meta = {
        "example": "jaxhalo/data/example_reflex.ecsv (bundled), continuity/ms model, Chandra priors, 5 clipping rounds",
        "quick": q, "goal": f"time to first result < {GOAL_S:.0f} s on 2 CPU cores",
        "compile_definition": "JAX trace + MLIR lowering + XLA backend compile, summed from jax.monitoring events",
        "load_average_before": load0, "load_average_after": list(os.getloadavg()),
        "cpu_count": os.cpu_count(), "device": device_name(),
        "timing_note": "fit_reflex's nuts_s misses the asynchronously dispatched NUTS work with vectorized chains; "
                       "see total_minus_map_and_nuts_s",
        "note": "machine shared with other jobs during the run; see the load averages",
    }
    print(write_results("fit_time", recs, meta))
