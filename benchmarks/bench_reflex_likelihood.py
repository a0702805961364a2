"""Reflex likelihood value+gradient throughput (stars per second) versus catalogue size.

For each N the 18-parameter continuity likelihood and its gradient with respect to all
parameters are jitted and timed on the default JAX device, in float64 and float32. On a
CPU the sizes go to 1e6 stars; on a GPU to 1e8 (memory permitting).

    python -m benchmarks.bench_reflex_likelihood [--quick]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, timeit, write_results

jax.config.update("jax_enable_x64", True)

from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import default_truth  # noqa: E402


def _synthetic_data(n: int, dtype) -> ReflexData:
    """Random stars 40-160 kpc with errors; geometry precomputed (not timed)."""
    rng = np.random.default_rng(0)
    l = rng.uniform(0, 2 * np.pi, n)
    b = np.arcsin(rng.uniform(-1, 1, n))
    d = rng.uniform(40, 160, n)
    one = np.ones(n)
    data = ReflexData.from_arrays(
        l, b, d, 0.1 * d, rng.normal(0, 100, n), 5 * one, rng.normal(0, 0.5, n), rng.normal(0, 0.5, n),
        0.1 * one, 0.1 * one, 0.1 * one,
    )
    return jax.tree_util.tree_map(lambda a: a.astype(dtype), data)


def run(quick: bool = False, sizes: list[int] | None = None) -> list[dict]:
    gpu = jax.devices()[0].platform != "cpu"
    if sizes is None:
        sizes = [10**3, 10**4, 10**5, 10**6] + ([10**7, 10**8] if gpu else [])
        if quick:
            sizes = sizes[:3]
    spec = ReflexModel("continuity", "ms")
    truth = default_truth(spec)
    records = []
    for dtype in (jnp.float64, jnp.float32):
        params = {k: jnp.asarray(v, dtype) for k, v in truth.items()}
        f = jax.jit(jax.value_and_grad(lambda p, d: spec.log_likelihood(p, d)))
        for n in sizes:
            try:
                data = _synthetic_data(n, dtype)
                t = timeit(lambda: f(params, data), repeats=5)
            except Exception as exc:  # out of memory on large N
                records.append({"n_stars": n, "dtype": jnp.dtype(dtype).name, "error": repr(exc)[:200]})
                break
            records.append({
                "n_stars": n, "dtype": jnp.dtype(dtype).name, "best_s": t["best_s"], "first_call_s": t["first_s"],
                "stars_per_s": n / t["best_s"],
            })
            print(f"{device_name()} N={n:>9d} {jnp.dtype(dtype).name}: {n / t['best_s']:.3e} stars/s (value+grad)")
    return records


if __name__ == "__main__":
    recs = run(quick="--quick" in sys.argv)
    print(write_results("reflex_likelihood", recs, {"model": "continuity/ms, 18 parameters", "what": "value_and_grad"}))
