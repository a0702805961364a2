"""Run a simulation suite: draw parameters, simulate in vmapped chunks sharded over every
visible device, append each finished chunk to a :class:`~jaxhalo.sbi.store.SuiteStore`.

Determinism
-----------
Simulation i uses the key ``k_i = fold_in(PRNGKey(seed), i)``: its parameters are
``prior.sample(fold_in(k_i, 0))`` and its simulator key is ``fold_in(k_i, 1)``. No random draw
depends on the chunk a simulation falls in, on the number of devices or on which process runs
it, so a resumed or range-split run with the same chunk size and device count reproduces an
uninterrupted one bit for bit (the same compiled program on the same inputs). With a different
device count or chunk size XLA compiles a differently shaped program whose floating-point
rounding can differ in the last bits: for a well-conditioned simulator (the linear-Gaussian toy)
the rows are still bit-identical, but the MW-LMC simulator's tracer orbits amplify such
differences (measured: 200 particles, 10-20 Myr leapfrog steps, batch of 4 vs batch of 1 -> some
particles end up tens of kpc apart, and ~60 % of the 52 summaries change), so there a suite run
on 4 devices and one on 1 device are equally valid draws, not identical ones. Keep the chunk
size and device count fixed within one store if bit-for-bit reproducibility matters.

Sharding
--------
A chunk's index vector is placed on a 1-D :class:`jax.sharding.Mesh` over all visible devices
(axis ``"sims"``) with a ``NamedSharding``; the vmapped, jitted simulator then runs each
device's slice on that device (GPUs, or CPU "devices" with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``). A chunk whose length is not a multiple
of the device count (e.g. the last one) is padded with extra indices whose results are
dropped. Choose the chunk size as a multiple of the device count to avoid that waste. Across
machines, run disjoint ``start``/``stop`` ranges into one store (or use ``jax.distributed``
with the same code: the mesh then spans every process's devices).

Resumption
----------
Chunks already in the store are skipped; rerunning the same command after an interruption
finishes the rest. The store's manifest records the settings and a run with other settings
into the same store is refused (:class:`~jaxhalo.sbi.store.SuiteConfigError`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .priors import SuitePrior
from .simulators import SimulatorError, SuiteSimulator
from .store import SuiteStore, code_version

__all__ = ["SuiteRunReport", "simulation_keys", "make_batch_fn", "suite_manifest", "run_suite", "simulate_indices"]


def simulation_keys(seed: int, index: jax.Array) -> jax.Array:
    """Per-simulation keys fold_in(PRNGKey(seed), i) for a vector of global indices (N,) -> (N, 2)."""
    root = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.asarray(index, dtype=jnp.uint32))


_BATCH_FN_CACHE: dict[tuple, tuple] = {}


def make_batch_fn(simulator: SuiteSimulator, prior: SuitePrior, seed: int, mesh: Mesh | None = None,
                  micro_batch: int | None = None) -> Callable:
    """A jitted function index (B,) -> (key_data (B, 2), theta (B, P), outputs) sharded over ``mesh``.

    B must be a multiple of the mesh size. Pure JAX: vmap over simulations, no Python loop. The
    seed is a traced argument and compiled functions are cached per (simulator, prior, mesh),
    so several runs with one simulator object compile once per chunk shape.

    ``micro_batch`` = m: each device runs its slice as ``lax.map(..., batch_size=m)`` inside
    ``shard_map`` -- a loop over vmapped groups of m simulations -- instead of one vmap over the
    whole slice, which bounds device memory (B / n_devices is padded to a multiple of m).
    """
    if tuple(prior.names) != tuple(simulator.parameter_names):
        raise SimulatorError(f"the prior's parameters {prior.names} differ from the simulator's "
                             f"{simulator.parameter_names}")
    cache_key = (id(simulator), id(prior), None if mesh is None else tuple(d.id for d in mesh.devices.flat), micro_batch)
    if cache_key not in _BATCH_FN_CACHE:
        def one(i, root):
            k = jax.random.fold_in(root, i)
            theta = prior.sample(jax.random.fold_in(k, 0))
            out = simulator.outputs(theta, jax.random.fold_in(k, 1))
            return k, theta, out

        batched = jax.vmap(one, in_axes=(0, None))
        if micro_batch is not None:
            if mesh is None:
                mesh = Mesh(np.array(jax.devices()[:1]), ("sims",))
            local = lambda idx, root: jax.lax.map(lambda i: one(i, root), idx, batch_size=micro_batch)  # noqa: E731
            batched = jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec("sims"), PartitionSpec()),
                                    out_specs=PartitionSpec("sims"), check_vma=False)
        if mesh is None:
            jitted = jax.jit(batched)
        else:
            sharding = NamedSharding(mesh, PartitionSpec("sims"))
            jitted = jax.jit(batched, in_shardings=(sharding, NamedSharding(mesh, PartitionSpec())),
                             out_shardings=sharding)
        if len(_BATCH_FN_CACHE) > 16:
            _BATCH_FN_CACHE.clear()
        _BATCH_FN_CACHE[cache_key] = (simulator, prior, jitted)  # keeps the objects alive: ids stay unique
    jitted = _BATCH_FN_CACHE[cache_key][2]
    root = jax.random.PRNGKey(seed)
    return lambda index: jitted(index, root)


def simulate_indices(simulator: SuiteSimulator, prior: SuitePrior, seed: int, index: np.ndarray,
                     devices: list | None = None, micro_batch: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Simulate the given global indices in one sharded batch (no store): NumPy (key_data, theta, outputs)."""
    devices = list(devices or jax.devices())
    mesh = Mesh(np.array(devices), ("sims",))
    fn = make_batch_fn(simulator, prior, seed, mesh, micro_batch)
    return _run_padded(fn, np.asarray(index, np.int64), len(devices) * (micro_batch or 1), mesh)


def _run_padded(fn, index: np.ndarray, n_dev: int, mesh: Mesh, width: int | None = None):
    """Run ``fn`` on ``index`` padded to ``width`` rounded up to a multiple of ``n_dev``
    (devices x micro-batch); the extra results are dropped."""
    n = index.shape[0]
    width = max(n, width or 0)
    pad = width - n + (-width) % n_dev
    padded = np.concatenate([index, index[-1] + 1 + np.arange(pad)]) if pad else index
    x = jax.device_put(jnp.asarray(padded, dtype=jnp.uint32), NamedSharding(mesh, PartitionSpec("sims")))
    key_data, theta, outputs = fn(x)
    return (np.asarray(key_data)[:n], np.asarray(theta)[:n], {k: np.asarray(v)[:n] for k, v in outputs.items()})


def suite_manifest(simulator: SuiteSimulator, prior: SuitePrior, n_total: int, chunk_size: int, seed: int) -> dict[str, Any]:
    """The settings a store records (and checks on resume) for this suite."""
    if n_total < 1 or chunk_size < 1:
        raise ValueError(f"need n >= 1 and chunk size >= 1, got n={n_total}, chunk={chunk_size}")
    shapes = simulator.output_shapes()
    return {
        "n_total": int(n_total), "chunk_size": int(chunk_size), "seed": int(seed),
        "parameter_names": list(prior.names),
        "outputs": {k: {"shape": list(s), "dtype": d} for k, (s, d) in shapes.items()},
        "simulator": simulator.identity(),
        "prior": {"name": prior.name, "description": prior.description, "parameters": prior.describe()},
        "key_derivation": "k_i = fold_in(PRNGKey(seed), i); theta_i = prior.sample(fold_in(k_i, 0)); "
                          "outputs_i = simulator(theta_i, fold_in(k_i, 1))",
        "code_version": code_version(),
    }


@dataclass
class SuiteRunReport:
    """What :func:`run_suite` did: chunks written / skipped, simulations, wall time, rate."""

    store: SuiteStore
    chunks_written: list[int]
    chunks_skipped: list[int]
    n_simulated: int
    wall_s: float
    first_chunk_s: float | None
    n_devices: int

    @property
    def sims_per_s(self) -> float:
        """Throughput excluding the first chunk (which includes compilation)."""
        if len(self.chunks_written) < 2 or self.first_chunk_s is None:
            return self.n_simulated / self.wall_s if self.wall_s > 0 else float("nan")
        per_chunk = self.n_simulated / len(self.chunks_written)
        return (self.n_simulated - per_chunk) / (self.wall_s - self.first_chunk_s)


def run_suite(
    path: str,
    simulator: SuiteSimulator,
    prior: SuitePrior,
    n_total: int,
    chunk_size: int = 64,
    seed: int = 0,
    start: int = 0,
    stop: int | None = None,
    devices: list | None = None,
    progress: bool = True,
    max_chunks: int | None = None,
    micro_batch: int | None = None,
) -> SuiteRunReport:
    """Simulate indices [start, stop) of an ``n_total``-simulation suite into the store at ``path``.

    Creates the store (or checks the existing one's settings), skips finished chunks, and writes
    each new chunk as soon as it is done. ``start``/``stop`` must fall on chunk boundaries.
    ``max_chunks`` stops after that many new chunks (useful to spread a suite over time-limited
    jobs). ``micro_batch``: see :func:`make_batch_fn` (recorded in each chunk's attributes).
    A tqdm bar shows simulations per second. Returns a :class:`SuiteRunReport`.
    """
    from tqdm.auto import tqdm

    store = SuiteStore.create(path, suite_manifest(simulator, prior, n_total, chunk_size, seed))
    stop = store.n_total if stop is None else int(stop)
    wanted = store.chunks_for_range(int(start), stop)
    done = set(store.done_chunks())
    todo = [k for k in wanted if k not in done]
    if max_chunks is not None:
        todo = todo[:max_chunks]
    devices = list(devices or jax.devices())
    mesh = Mesh(np.array(devices), ("sims",))
    if micro_batch is not None and micro_batch < 1:
        raise ValueError(f"micro_batch must be >= 1, got {micro_batch}")
    fn = make_batch_fn(simulator, prior, seed, mesh, micro_batch)
    n_sims = sum(store.chunk_range(k)[1] - store.chunk_range(k)[0] for k in todo)
    written: list[int] = []
    first_s = None
    t0 = time.perf_counter()
    bar = tqdm(total=n_sims, unit="sim", disable=not progress, desc=f"suite {store.path.name}", smoothing=0.1)
    try:
        for k in todo:
            tc = time.perf_counter()
            a, b = store.chunk_range(k)
            key_data, theta, outputs = _run_padded(fn, np.arange(a, b, dtype=np.int64), len(devices) * (micro_batch or 1), mesh,
                                                   width=store.chunk_size)  # one compiled shape
            store.write_chunk(k, np.arange(a, b), key_data, theta, outputs,
                              attrs={"n_devices": len(devices), "platform": devices[0].platform,
                                     "micro_batch": micro_batch or 0,
                                     "wall_s": time.perf_counter() - tc})
            written.append(k)
            if first_s is None:
                first_s = time.perf_counter() - t0
            bar.update(b - a)
            bar.set_postfix(chunk=k, refresh=False)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    return SuiteRunReport(store, written, sorted(set(wanted) & done), n_sims, wall, first_s, len(devices))
