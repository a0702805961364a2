"""Run a simulation suite: draw parameters, simulate in vmapped chunks sharded over every
visible device, append each finished chunk to a :class:`~jaxhalo.sbi.store.SuiteStore`.

Determinism
-----------
Simulation i uses the key ``k_i = fold_in(PRNGKey(seed), i)``: its parameters are
``prior.sample(fold_in(k_i, 0))`` and its simulator key is ``fold_in(k_i, 1)``. No random draw
depends on the chunk a simulation falls in, on the number of devices or on which process runs
it, and every device runs the same compiled single-device program on groups of ``micro_batch``
simulations, so a resumed, range-split or differently sharded run reproduces an uninterrupted
one bit for bit on the same platform (tested with the MW-LMC simulator on 4 vs 1 CPU devices).
The one setting that changes the rounding is the micro-batch (another vmap width is another
XLA program, and the tracer orbits amplify last-bit differences into different summaries):
keep it fixed within one store (it is recorded in each chunk's attributes).

Sharding
--------
A chunk's index vector is split over a 1-D :class:`jax.sharding.Mesh` of all visible devices
(axis ``"sims"``); each device runs its slice (see :func:`make_batch_fn`) and the results come
back as ``NamedSharding``-sharded arrays (GPUs, or CPU "devices" with
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
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from .. import __version__
from ..simulation.errors import SimulatorError
from .priors import SuitePrior
from .simulators import SuiteSimulator
from .store import SuiteConfigError, SuiteStore, code_version, package_version

__all__ = ["SuiteRunReport", "simulation_keys", "make_batch_fn", "suite_manifest", "run_suite", "simulate_indices", "DEFAULT_MICRO_BATCH"]


def simulation_keys(seed: int, index: jax.Array) -> jax.Array:
    """Per-simulation keys fold_in(PRNGKey(seed), i) for a vector of global indices (N,) -> (N, 2)."""
    root = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.asarray(index, dtype=jnp.uint32))


_BATCH_FN_CACHE: dict[tuple, tuple] = {}

#: Simulations vmapped at once on a device when no micro-batch is given. Results depend on this
#: group size (XLA vectorises a different program for another size), never on the device count,
#: the chunk size or the index range.
DEFAULT_MICRO_BATCH = 4


def make_batch_fn(simulator: SuiteSimulator, prior: SuitePrior, seed: int, mesh: Mesh | None = None,
                  micro_batch: int | None = None) -> Callable:
    """A function index (B,) -> (key_data (B, 2), theta (B, P), outputs) run over ``mesh``'s devices.

    B must be a multiple of (devices x micro-batch). The index vector is cut into groups of
    ``micro_batch`` simulations; every group is one call of the *same* compiled program (a
    ``vmap`` of the simulator over the group), dealt round-robin to the devices and dispatched
    asynchronously so that all devices work at once; each device's groups are concatenated
    there and the results assembled into global ``jax.Array``s sharded over the mesh
    (``NamedSharding``, axis ``"sims"``). The loop is over groups (compiled batches), not over
    simulations.

    Why not one SPMD ``jit``/``shard_map`` over the mesh, or a ``lax.map`` over groups: both
    compile programs whose rounding depends on the device count or the number of groups per
    device (XLA fuses a one-trip loop differently), and the MW-LMC tracer orbits amplify
    last-bit differences into different summaries (measured: 4 vs 1 CPU devices, 200
    particles, 20 Myr steps -> ~60% of the 52 summaries differ, by up to 170 km/s). One program
    per group makes a suite bit-for-bit independent of the device count and of chunking.
    Compiled functions are cached per (simulator, prior, micro_batch); JAX compiles the program
    once per device it runs on.
    """
    if tuple(prior.names) != tuple(simulator.parameter_names):
        raise SimulatorError(f"the prior's parameters {prior.names} differ from the simulator's "
                             f"{simulator.parameter_names}")
    m = DEFAULT_MICRO_BATCH if micro_batch is None else int(micro_batch)
    if m < 1:
        raise ValueError(f"micro_batch must be >= 1, got {m}")
    devices = list(jax.devices()[:1] if mesh is None else mesh.devices.flat)
    mesh = Mesh(np.array(devices), ("sims",)) if mesh is None else mesh
    cache_key = (id(simulator), id(prior), m)
    if cache_key not in _BATCH_FN_CACHE:
        def one(i, root):
            k = jax.random.fold_in(root, i)
            theta = prior.sample(jax.random.fold_in(k, 0))
            out = simulator.outputs(theta, jax.random.fold_in(k, 1))
            return k, theta, out

        group = jax.jit(jax.vmap(one, in_axes=(0, None)))
        if len(_BATCH_FN_CACHE) > 16:
            _BATCH_FN_CACHE.clear()
        _BATCH_FN_CACHE[cache_key] = (simulator, prior, group)  # keeps the objects alive: ids stay unique
    group = _BATCH_FN_CACHE[cache_key][2]
    root = jax.random.PRNGKey(seed)
    roots = [jax.device_put(root, d) for d in devices]
    sharding = NamedSharding(mesh, PartitionSpec("sims"))

    def run(index: np.ndarray):
        index = np.asarray(index, dtype=np.uint32)
        n_dev = len(devices)
        if index.shape[0] % (n_dev * m):
            raise ValueError(f"batch of {index.shape[0]} is not a multiple of {n_dev} devices x micro-batch {m}")
        per_dev = np.split(index, n_dev)  # contiguous slice per device, as the sharding lays it out
        # asynchronous dispatch: every device computes at once
        results = [[group(jax.device_put(g, d), r) for g in np.split(sl, sl.shape[0] // m)]
                   for sl, d, r in zip(per_dev, devices, roots)]

        def on_device(*leaves):  # concatenate one device's groups on that device
            return jnp.concatenate(leaves) if len(leaves) > 1 else leaves[0]

        local = [jax.tree_util.tree_map(on_device, *res) for res in results]

        def assemble(*leaves):
            shape = (index.shape[0],) + leaves[0].shape[1:]
            return jax.make_array_from_single_device_arrays(shape, sharding, list(leaves))

        return jax.tree_util.tree_map(assemble, *local)

    run.sharding = sharding  # type: ignore[attr-defined]
    run.micro_batch = m  # type: ignore[attr-defined]
    return run


def simulate_indices(simulator: SuiteSimulator, prior: SuitePrior, seed: int, index: np.ndarray,
                     devices: list | None = None, micro_batch: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Simulate the given global indices over ``devices`` (no store): NumPy (key_data, theta, outputs)."""
    devices = list(devices or jax.devices())
    mesh = Mesh(np.array(devices), ("sims",))
    fn = make_batch_fn(simulator, prior, seed, mesh, micro_batch)
    return _run_padded(fn, np.asarray(index, np.int64), len(devices) * fn.micro_batch)


def _run_padded(fn, index: np.ndarray, n_dev: int, width: int | None = None):
    """Run ``fn`` on ``index`` padded to ``width`` rounded up to a multiple of ``n_dev``
    (devices x micro-batch); the extra results are dropped."""
    n = index.shape[0]
    width = max(n, width or 0)
    pad = width - n + (-width) % n_dev
    padded = np.concatenate([index, index[-1] + 1 + np.arange(pad)]) if pad else index
    key_data, theta, outputs = fn(padded)
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
    chunks_elsewhere: list[int] = field(default_factory=list)  # claimed by another writer, left to it

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
    A resume is refused (:class:`SuiteConfigError`, before anything is computed) when the finished
    chunks were computed with another micro-batch, another precision (x64) or another jaxhalo
    version (``jaxhalo.__version__``; another git commit of the same version is accepted).
    A tqdm bar shows simulations per second. Returns a :class:`SuiteRunReport`.
    """
    store = SuiteStore.create(path, suite_manifest(simulator, prior, n_total, chunk_size, seed))
    stop = store.n_total if stop is None else int(stop)
    wanted = store.chunks_for_range(int(start), stop)
    for name in store.clean_stale():
        print(f"[jaxhalo suite] removed {name} (left by a writer that no longer runs)")
    done = set(store.done_chunks())
    corrupt = store.verify_chunks(sorted(done & set(wanted)))
    for k, why in corrupt.items():  # recomputed below (the rewrite replaces the file atomically)
        print(f"[jaxhalo suite] chunk {k} is corrupt and is recomputed: {why}")
        done.discard(k)
    m = DEFAULT_MICRO_BATCH if micro_batch is None else int(micro_batch)
    x64 = bool(jax.config.jax_enable_x64)
    if done:  # the settings that change results must match those of the finished chunks
        k0 = min(done)
        have = store.chunk_settings(k0, ["micro_batch", "x64", "code_version"])
        was = package_version(str(have.get("code_version", "")))
        if was is not None and was != __version__:
            raise SuiteConfigError(f"suite {store.path} was computed by jaxhalo {was} (chunk {k0}: "
                                   f"{have['code_version']}); this is jaxhalo {__version__}, whose simulator may give "
                                   f"other numbers: resume it with jaxhalo {was}, or write to a new store")
        if "micro_batch" in have and int(have["micro_batch"]) != m:
            raise SuiteConfigError(f"suite {store.path} was computed with --micro-batch {int(have['micro_batch'])} "
                                   f"(chunk {k0}); this run has {m}, which changes the results in the last digits: "
                                   f"rerun with --micro-batch {int(have['micro_batch'])}")
        if "x64" in have and bool(have["x64"]) != x64:
            raise SuiteConfigError(f"suite {store.path} was computed in {'float64' if have['x64'] else 'float32'} "
                                   f"(chunk {k0}); this run computes in {'float64' if x64 else 'float32'}: set "
                                   f"jax_enable_x64 to {bool(have['x64'])} to resume it")
    todo = [k for k in wanted if k not in done]
    if max_chunks is not None:
        todo = todo[:max_chunks]
    devices = list(devices or jax.devices())
    mesh = Mesh(np.array(devices), ("sims",))
    fn = make_batch_fn(simulator, prior, seed, mesh, micro_batch)
    n_sims = sum(store.chunk_range(k)[1] - store.chunk_range(k)[0] for k in todo)
    written: list[int] = []
    elsewhere: list[int] = []
    first_s = None
    t0 = time.perf_counter()
    bar = tqdm(total=n_sims, unit="sim", disable=not progress, desc=f"suite {store.path.name}", smoothing=0.1)
    try:
        for k in todo:
            tc = time.perf_counter()
            a, b = store.chunk_range(k)
            if k in corrupt:
                store.chunk_path(k).unlink(missing_ok=True)  # so that the claim below does not see it as finished
            if not store.claim_chunk(k):  # another writer has it (or has just finished it)
                elsewhere.append(k)
                bar.update(b - a)
                continue
            try:
                key_data, theta, outputs = _run_padded(fn, np.arange(a, b, dtype=np.int64), len(devices) * fn.micro_batch,
                                                       width=store.chunk_size)  # one compiled shape
                store.write_chunk(k, np.arange(a, b), key_data, theta, outputs,
                                  attrs={"n_devices": len(devices), "platform": devices[0].platform,
                                         "micro_batch": fn.micro_batch, "x64": x64,
                                         "wall_s": time.perf_counter() - tc})
            finally:
                store.release_chunk(k)
            written.append(k)
            if first_s is None:
                first_s = time.perf_counter() - t0
            bar.update(b - a)
            bar.set_postfix(chunk=k, refresh=False)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    n_done = sum(store.chunk_range(k)[1] - store.chunk_range(k)[0] for k in written)
    return SuiteRunReport(store, written, sorted(set(wanted) & done), n_done, wall, first_s, len(devices), elsewhere)
