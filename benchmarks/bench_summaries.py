"""Throughput of mock observation + the 52 Brooks et al. summaries, and of the smoothed sky map.

Records (per configuration): wall time of one compiled call, time per simulation, and the
projected cost of this stage for the 128,000-simulation suite of Brooks et al. (2025)
(4,500 particles each) on the same device.

Run: ``PYTHONPATH=. python -m benchmarks.bench_summaries [--quick]``.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, timeit, write_results
from jaxhalo.frames import SolarParameters
from jaxhalo.simulation.observe import observe
from jaxhalo.simulation.summaries import brooks_summary_vector, sky_grid, vgsr_sky_map

SUITE_SIMS = 128_000


def _halo(n_sim: int, n: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_sim, n, 3))
    x *= (rng.uniform(20, 170, (n_sim, n)) / np.linalg.norm(x, axis=-1))[..., None]
    v = rng.normal(0, 110, (n_sim, n, 3))
    return jnp.asarray(x, dtype), jnp.asarray(v, dtype)


def _pipeline(solar, mode: str = "vmap"):
    """Compiled batch of simulations: 'vmap' (one wide program, the GPU choice) or 'map'
    (lax.map, one simulation after another inside one program, cache-friendly on CPU)."""

    def one(key, x, v):
        return brooks_summary_vector(observe(key, x, v, solar))

    if mode == "vmap":
        return jax.jit(jax.vmap(one))
    return jax.jit(lambda k, x, v: jax.lax.map(lambda a: one(*a), (k, x, v)))


def run(quick: bool = False) -> list[dict]:
    records = []
    configs = [(1, 20_000), (16, 4_500)] if quick else [(1, 20_000), (1, 4_500), (16, 4_500), (64, 4_500)]
    dtypes = [jnp.float64] if quick else [jnp.float64, jnp.float32]
    for dtype in dtypes:
        solar = SolarParameters.brooks()
        solar = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), solar)
        for mode, n_sim, n in [("vmap", *c) for c in configs] + [("map", c[0], c[1]) for c in configs if c[0] > 1]:
            f = _pipeline(solar, mode)
            x, v = _halo(n_sim, n, dtype)
            keys = jax.random.split(jax.random.key(0), n_sim)
            t = timeit(lambda: f(keys, x, v), repeats=3 if quick else 5)
            per_sim = t["best_s"] / n_sim
            records.append({
                "task": "observe+52 summaries", "batch": mode, "dtype": jnp.dtype(dtype).name, "n_sim": n_sim,
                "n_particles": n, "best_s": t["best_s"], "first_s_incl_compile": t["first_s"],
                "per_sim_s": per_sim, "particles_per_s": n * n_sim / t["best_s"],
                "projected_128k_suite_h": per_sim * SUITE_SIMS / 3600 if n == 4_500 else None,
            })
            print(records[-1])
    # the sky map (Chandra et al. Fig. 3): 20,000 stars on a 72 x 36 grid
    x, v = _halo(1, 20_000, jnp.float64)
    obs = observe(jax.random.key(1), x[0], v[0])
    gl, gb = sky_grid(72, 36)
    fmap = jax.jit(lambda o: vgsr_sky_map(o, gl, gb, r_gal_range=None)[0])
    t = timeit(lambda: fmap(obs), repeats=3)
    records.append({"task": "sky map 45 deg kernel", "dtype": "float64", "n_particles": 20_000,
                    "grid": "72x36", "best_s": t["best_s"], "first_s_incl_compile": t["first_s"]})
    print(records[-1])
    return records


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    quick = "--quick" in sys.argv
    recs = run(quick=quick)
    path = write_results("summaries", recs, {"quick": quick, "device": device_name(),
                                             "note": "machine shared with other jobs while timed"})
    print(path)
