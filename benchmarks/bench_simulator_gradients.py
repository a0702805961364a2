"""Cost of gradients through the MW-LMC simulator (issue 12 item 5).

Cases (Brooks et al. 2025 size: 4,500 tracers, 1 Myr leapfrog over 2.2 Gyr, the fiducial theta):

* ``simulation``: one simulation and its 52 smooth summaries (the unit of "simulation equivalents");
* ``jacfwd_12``: the same plus ``jax.jacfwd`` in all 12 parameters (forward mode, ``SimConfig(gradients=
  "forward")``: the 12 tangents ride along one integration, so memory does not grow with the number
  of steps; reverse mode would have to store or recompute the 2,200-step trajectory of every tracer);
* ``synthetic_likelihood_value_and_grad``: value and gradient of a Gaussian synthetic log-likelihood
  -0.5 r^T C^-1 r of the smooth summaries averaged over N_KEYS = 2 common-random-number keys (C fixed), by
  forward mode -- the cost of one NUTS gradient of ``jaxhalo sbi nuts``-style inference.

float64 and float32 (the tracer integration; set-up in float64). Each record: compile time, best run
time, its ratio to one simulation (simulation equivalents), and the process's peak resident memory
after the case (CPU; on a GPU the device's peak bytes in use).

Run: ``python -m benchmarks.bench_simulator_gradients [--quick]`` (writes results/simulator_gradients_<device>.json;
``--quick`` into results/quick/).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, script_flags, write_results
from jaxhalo.simulation import brooks as S
from jaxhalo.simulation.smooth_summaries import smooth_summary_vector

RESULT_NAME = "simulator_gradients"
#: Common-random-number keys of the synthetic-likelihood case (its cost is ~N_KEYS x the jacfwd case).
N_KEYS = 2


def _peak_memory_gb() -> float:
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        return stats.get("peak_bytes_in_use", float("nan")) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def _time(fn, *args) -> tuple[float, float]:
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    best = np.inf
    for _ in range(2):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - t0)
        if best > 20.0:  # one run of a long case is enough (the 2-core machine has no time for two)
            break
    return compile_s, best


def run(quick: bool = False, on_record=None) -> list[dict]:
    """The cases above; ``on_record(records)`` after each (the script writes the file as it goes)."""
    n, t_back = (500, 200.0) if quick else (4500, 2200.0)
    theta = jnp.asarray(S.FIDUCIAL_THETA)
    key = jax.random.key(0)
    records = []
    for dtype in ("float64", "float32"):
        cfg = S.SimConfig(n_particles=n, t_back=t_back, dtype=dtype, gradients="forward")

        def sim(th, k, cfg=cfg):
            return smooth_summary_vector(th, k, cfg)

        c0, t_sim = _time(sim, theta, key)
        records.append({"case": "simulation", "dtype": dtype, "n_particles": n, "t_back_myr": t_back,
                        "compile_s": c0, "run_s": t_sim, "simulation_equivalents": 1.0,
                        "peak_memory_gb": _peak_memory_gb()})
        print(records[-1], flush=True)
        if on_record is not None:
            on_record(records)
        c1, t_jac = _time(jax.jacfwd(sim), theta, key)
        records.append({"case": "jacfwd_12", "dtype": dtype, "n_particles": n, "t_back_myr": t_back,
                        "compile_s": c1, "run_s": t_jac, "simulation_equivalents": t_jac / t_sim,
                        "peak_memory_gb": _peak_memory_gb()})
        print(records[-1], flush=True)
        if on_record is not None:
            on_record(records)
        keys = jax.random.split(jax.random.key(1), N_KEYS)
        s0 = jax.jit(jax.vmap(lambda k: sim(theta, k)))(keys)
        mu_obs = jnp.mean(s0, axis=0)
        cov = jnp.diag(jnp.var(s0, axis=0, ddof=1) + 1e-6)

        def lnl(th):
            mu = jnp.mean(jax.vmap(lambda k: sim(th, k))(keys), axis=0)
            r = mu - mu_obs
            return -0.5 * r @ jnp.linalg.solve(cov, r)

        def value_and_grad(th):
            return lnl(th), jax.jacfwd(lnl)(th)

        c2, t_vg = _time(value_and_grad, theta)
        records.append({"case": "synthetic_likelihood_value_and_grad", "dtype": dtype, "n_particles": n,
                        "t_back_myr": t_back, "n_keys": N_KEYS, "compile_s": c2, "run_s": t_vg,
                        "simulation_equivalents": t_vg / t_sim, "peak_memory_gb": _peak_memory_gb()})
        print(records[-1], flush=True)
        if on_record is not None:
            on_record(records)
    return records


if __name__ == "__main__":
    quick = "--quick" in script_flags(__doc__)
    meta = {"device": device_name(), "config": dataclasses.asdict(S.SimConfig(gradients="forward")),
            "note": "peak_memory_gb is the process's peak RSS so far (CPU) or the device peak (GPU)"}
    recs = run(quick=quick, on_record=lambda r: write_results(RESULT_NAME, r, {**meta, "load_average": os.getloadavg()}))
    print(write_results(RESULT_NAME, recs, {**meta, "load_average": os.getloadavg()}))
