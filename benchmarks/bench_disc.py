"""The Milky Way's disc model in the simulator: the exact sech^2 disc (table, default) vs the Miyamoto-Nagai sum.

Cases
-----
* ``disc_acceleration``: throughput of the disc's acceleration alone (jit, float64 and float32) at
  ``N_POINTS`` points spread like halo tracers (log-uniform 0.1 - 300 kpc, isotropic), for
  :class:`~jaxhalo.dynamics.potentials.ExponentialDiscTable` and :func:`~jaxhalo.dynamics.potentials.exponential_disc`;
* ``simulation``: one Brooks et al. simulation (:func:`~jaxhalo.simulation.brooks.simulate_present_day`,
  fiducial theta, ``N_PARTICLES`` tracers, leapfrog 1 Myr over 2.2 Gyr) with ``SimConfig(disc=...)`` each way:
  compile and run times (best of ``REPEATS``), and how far the two present-day snapshots (same key) are
  apart: c200, the tracers' median / 90 % / max position difference and that of tracers now beyond 30 kpc.

The machine is shared: the JSON records the load average before and after (see ``meta``); the ratio of the
two disc models is what carries over, the absolute times scale with the load.

Run: ``python -m benchmarks.bench_disc [--quick]`` (writes results/disc_<device>.json).
"""

from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, write_results
from jaxhalo.dynamics import potentials as P
from jaxhalo.simulation import brooks as S

RESULT_NAME = "disc"
N_POINTS = 100_000
N_PARTICLES = 2_000
REPEATS = 2


def _points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = np.exp(rng.uniform(np.log(0.1), np.log(300.0), n))
    v = rng.normal(size=(n, 3))
    return r[:, None] * v / np.linalg.norm(v, axis=1, keepdims=True)


def _best(fn, *args, repeats=5):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def bench_acceleration(n: int) -> list[dict]:
    x64 = jnp.asarray(_points(n))
    out = []
    for model in P.DISC_MODELS:
        for dtype in ("float64", "float32"):
            disc = P.brooks_disc(model)
            x = x64.astype(dtype)
            disc = jax.tree_util.tree_map(lambda a, dt=dtype: a.astype(dt) if jnp.issubdtype(a.dtype, jnp.floating) else a, disc)
            f = jax.jit(lambda d, y: d.acceleration(y))
            t0 = time.perf_counter()
            jax.block_until_ready(f(disc, x))
            compile_s = time.perf_counter() - t0
            run_s = _best(f, disc, x)
            out.append({"case": "disc_acceleration", "disc": model, "dtype": dtype, "n_points": n,
                        "compile_and_first_s": compile_s, "run_s": run_s, "points_per_s": n / run_s})
            print(out[-1], flush=True)
    return out


def bench_simulation(n_particles: int, repeats: int) -> list[dict]:
    theta = jnp.asarray(S.FIDUCIAL_THETA)
    key = jax.random.key(1)
    snaps, out = {}, []
    for model in P.DISC_MODELS:
        cfg = S.SimConfig(n_particles=n_particles, disc=model)
        t0 = time.perf_counter()
        compiled = jax.jit(S.simulate_present_day, static_argnums=2).lower(theta, key, cfg).compile()
        compile_s = time.perf_counter() - t0
        run_s = _best(compiled, theta, key, repeats=repeats)
        snaps[model] = np.asarray(compiled(theta, key).positions)
        c200 = float(S._c200(theta[0], cfg))
        out.append({"case": "simulation", "disc": model, "n_particles": n_particles, "dt_myr": cfg.dt,
                    "n_steps": cfg.n_steps, "compile_s": compile_s, "run_s": run_s, "c200": c200,
                    "particle_steps_per_s": n_particles * cfg.n_steps / run_s})
        print(out[-1], flush=True)
    d = np.linalg.norm(snaps["exact"] - snaps["miyamoto-nagai"], axis=1)
    far = np.linalg.norm(snaps["exact"], axis=1) > 30.0
    out.append({"case": "simulation_difference", "n_particles": n_particles,
                "run_time_ratio_exact_over_mn": out[0]["run_s"] / out[1]["run_s"],
                "c200_rel_diff_exact_minus_mn": out[0]["c200"] / out[1]["c200"] - 1,
                "dpos_median_kpc": float(np.median(d)), "dpos_p90_kpc": float(np.quantile(d, 0.9)),
                "dpos_max_kpc": float(d.max()), "dpos_median_beyond_30kpc_kpc": float(np.median(d[far])),
                "n_beyond_30kpc": int(far.sum())})
    print(out[-1], flush=True)
    return out


def run(quick: bool = False) -> list[dict]:
    jax.config.update("jax_enable_x64", True)
    records = bench_acceleration(10_000 if quick else N_POINTS)
    records += bench_simulation(500 if quick else N_PARTICLES, 1 if quick else REPEATS)
    return records


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    load_before = list(os.getloadavg())
    t0 = time.time()
    records = run(quick)
    meta = {"description": "exact sech^2 disc (ExponentialDiscTable, default) vs Miyamoto-Nagai sum in the simulator",
            "device": device_name(), "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
            "cpu_count": os.cpu_count(), "wall_s": time.time() - t0, "quick": quick,
            "note": "shared 2-core machine (other sessions running): compare the two discs, not absolute times"}
    if not quick:
        print(write_results(RESULT_NAME, records, meta))
