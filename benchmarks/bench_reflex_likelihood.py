"""Reflex likelihood value+gradient throughput (stars per second) versus catalogue size, with the roofline.

For each N the 18-parameter continuity likelihood (MS apex, per-star errors) and its gradient
with respect to all parameters are jitted and timed on the default JAX device, in float64 and
float32, on two paths:

* ``fast``: ``ReflexModel.log_likelihood`` (default), the blocked one-pass rule of
  :mod:`jaxhalo.likelihoods.reflex` (``_fast_total``);
* ``reference``: ``log_likelihood(..., fast=False)``, plain autodiff of the per-star sum;
* ``fast+legacy-emitters`` (CPU only): the fast path in a program compiled with the XLA option
  ``xla_cpu_use_fusion_emitters=False`` (``jax.jit(f, compiler_options=...)``), whose older loop
  emitters run the one fused loop of the fast path ~2x faster per core on the CPU measured here (but
  on one thread). An option of the program that contains the likelihood, so it is a separate row,
  not the default.

Each record has the best wall time, the CPU time per call (process time: less sensitive to
other jobs on a shared machine than the wall time), the bytes of catalogue read per star
(the leaves of ``ReflexData``) and the memory-bandwidth bound on this device: stars/s at which
reading the catalogue once would take all the time, from a measured streaming read (``jnp.sum``
over a 256 MiB array on a CPU, 4 GiB on a GPU). On a CPU the sizes go to 1e6 stars; on a GPU to 1e8 (memory permitting).

    python -m benchmarks.bench_reflex_likelihood [--quick]
"""

from __future__ import annotations

import os

import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, script_flags, write_results

jax.config.update("jax_enable_x64", True)

from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import default_truth  # noqa: E402


#: XLA CPU option of the ``fast+legacy-emitters`` row.
LEGACY_EMITTERS = {"xla_cpu_use_fusion_emitters": False}


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


def bytes_per_star(data: ReflexData) -> int:
    """Bytes of catalogue one likelihood evaluation reads per star (every leaf of ReflexData)."""
    return int(sum(a.dtype.itemsize * int(np.prod(a.shape[1:])) for a in jax.tree_util.tree_leaves(data)))


def stream_bandwidth(nbytes: int | None = None) -> float:
    """Measured read bandwidth of the default device (bytes/s): best of ``jnp.sum`` over ``nbytes``
    (default 256 MiB on a CPU, 4 GiB on an accelerator)."""
    if nbytes is None:
        nbytes = 256 * 2**20 if jax.devices()[0].platform == "cpu" else 4 * 2**30
    x = jnp.ones(nbytes // 8, jnp.float64)
    f = jax.jit(jnp.sum)
    jax.block_until_ready(f(x))
    best = np.inf
    for _ in range(10):
        t0 = time.perf_counter()
        jax.block_until_ready(f(x))
        best = min(best, time.perf_counter() - t0)
    return nbytes / best


def _time(f, *args, min_time: float = 1.0, max_reps: int = 200) -> dict:
    """Best wall time and mean CPU (process) time per call of a compiled ``f``."""
    jax.block_until_ready(f(*args))
    walls = []
    c0, t_start = time.process_time(), time.perf_counter()
    while len(walls) < 3 or (time.perf_counter() - t_start < min_time and len(walls) < max_reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        walls.append(time.perf_counter() - t0)
    cpu = (time.process_time() - c0) / len(walls)
    return {"best_s": min(walls), "median_s": float(np.median(walls)), "cpu_s_per_call": cpu, "n": len(walls)}


def run(quick: bool = False, sizes: list[int] | None = None) -> list[dict]:
    gpu = jax.devices()[0].platform != "cpu"
    if sizes is None:
        sizes = [10**3, 10**4, 10**5, 10**6] + ([10**7, 10**8] if gpu else [])
        if quick:
            sizes = sizes[:3]
    spec = ReflexModel("continuity", "ms")
    truth = default_truth(spec)
    bw = stream_bandwidth()
    print(f"{device_name()}: streaming read {bw / 1e9:.1f} GB/s", flush=True)
    records = []
    for dtype in (jnp.float64, jnp.float32):
        params = {k: jnp.asarray(v, dtype) for k, v in truth.items()}
        paths = {
            "fast": jax.jit(jax.value_and_grad(lambda p, d: spec.log_likelihood(p, d))),
            "reference": jax.jit(jax.value_and_grad(lambda p, d: spec.log_likelihood(p, d, fast=False))),
        }
        if not gpu:
            paths["fast+legacy-emitters"] = jax.jit(jax.value_and_grad(lambda p, d: spec.log_likelihood(p, d)),
                                                    compiler_options=LEGACY_EMITTERS)
        for n in sizes:
            try:
                data = _synthetic_data(n, dtype)
            except Exception as exc:  # out of memory on large N
                records.append({"n_stars": n, "dtype": jnp.dtype(dtype).name, "error": repr(exc)[:200]})
                break
            bps = bytes_per_star(data)
            for path, f in paths.items():
                try:
                    t0 = time.perf_counter()
                    jax.block_until_ready(f(params, data))
                    first = time.perf_counter() - t0
                    t = _time(f, params, data)
                except Exception as exc:  # out of memory on large N
                    records.append({"n_stars": n, "dtype": jnp.dtype(dtype).name, "path": path, "error": repr(exc)[:200]})
                    continue
                rate = n / t["best_s"]
                rec = {"n_stars": n, "dtype": jnp.dtype(dtype).name, "path": path, "first_call_s": first, **t,
                       "stars_per_s": rate, "stars_per_cpu_s": n / t["cpu_s_per_call"],
                       "bytes_per_star": bps, "stream_read_GB_per_s": bw / 1e9,
                       "bandwidth_bound_stars_per_s": bw / bps, "fraction_of_bound": rate / (bw / bps),
                       "load_average": list(os.getloadavg())}
                records.append(rec)
                print(f"{device_name()} N={n:>9d} {jnp.dtype(dtype).name} {path:20s}: {rate:.3e} stars/s "
                      f"({n / t['cpu_s_per_call']:.3e} per CPU-s; bound {bw / bps:.3e}) load {os.getloadavg()[0]:.1f}",
                      flush=True)
            del data
    return records


if __name__ == "__main__":
    recs = run(quick="--quick" in script_flags(__doc__))
    print(write_results("reflex_likelihood", recs, {
        "model": "continuity/ms, 18 parameters, per-star errors", "what": "value_and_grad w.r.t. all parameters",
        "paths": "fast = ReflexModel.log_likelihood (blocked one-pass rule); reference = fast=False (autodiff of the sum); "
                 "fast+legacy-emitters = fast in a program compiled with xla_cpu_use_fusion_emitters=False (CPU only)",
        "roofline": "bandwidth_bound_stars_per_s = measured streaming read (jnp.sum, 256 MiB) / bytes_per_star",
        "goal": ">= 3e7 stars/s at 1e6 stars in float64 on 2 CPU cores (issue 15)",
    }))
