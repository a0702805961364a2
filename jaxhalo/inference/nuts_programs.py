"""NUTS chains as compiled programs whose data is an argument: compiled once per data shape,
ahead of time if wanted, run in chunks so that a progress bar needs no host callback.

numpyro's :class:`~numpyro.infer.MCMC` closes over the model's arguments, so every new catalogue
(or clipping mask) gives a new XLA program -- ~3-5 s of compilation on a CPU for every fit, even with
a warm persistent cache -- and its progress bar is a host callback inside the program, which JAX's
persistent cache does not store. This module drives numpyro's own NUTS kernel (``numpyro.infer.hmc.hmc``
with ``potential_fn_gen``: the same integrator, tree building, step-size and dense mass-matrix
adaptation as ``MCMC(NUTS(...))``) with the data as a traced argument:

* ``init``: ``(keys (C, 2), z0 (C, P), data, inverse_mass_matrix) -> states``, one NUTS state per chain;
* ``chunk``: ``(states, data, n) -> (states, records)``: ``n <= chunk`` iterations of every chain,
  recording ``z`` and the extra fields of each iteration.

Chains run in parallel threads with one XLA host device each (``'parallel'``: ``jax.shard_map`` over a
``chain`` mesh), one after another in one program (``'sequential'``: ``lax.map``) or batched
(``'vectorized'``: ``vmap``). :func:`compile_nuts` compiles both programs ahead of time (e.g. in a thread
while the ML fit runs); :func:`run_chains` runs warm-up + draws chunk by chunk.
"""

from __future__ import annotations

import functools
import math
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.sharding import Mesh, PartitionSpec
from numpyro.infer.hmc import hmc
from tqdm.auto import tqdm

from ..jax_utils import RUN_ONCE_COMPILER_OPTIONS

__all__ = [
    "NUTS_EXTRA_FIELDS",
    "NUTSConfig",
    "NUTSRun",
    "compile_nuts",
    "run_chains",
]

#: Per-draw NUTS statistics recorded with every draw (numpyro's names, as ``MCMC.get_extra_fields``):
#: energy for BFMI and ``az.plot_energy``, tree size, step size, acceptance, divergences, potential energy.
NUTS_EXTRA_FIELDS: tuple[str, ...] = (
    "diverging", "num_steps", "energy", "potential_energy", "accept_prob", "adapt_state.step_size",
)

#: Compiled (config, data shape) pairs kept in memory, least recently used dropped first.
MAX_COMPILED: int = 16

#: Number of chunks a run is cut into (one progress-bar update each; ~1 ms of dispatch each).
N_CHUNKS: int = 20


@dataclass(frozen=True)
class NUTSConfig:
    """What fixes the compiled NUTS programs (hashable; the cache key with the data's shapes).

    ``potential_gen(data) -> (z (P,) -> potential energy)`` must be a hashable callable that always
    builds the same function (e.g. a module-level function of hashable arguments via
    ``functools.partial``). ``chain_method``: 'parallel' (needs ``num_chains`` JAX devices),
    'sequential' or 'vectorized'. The NUTS settings are numpyro's (``NUTS(...)`` arguments).
    """

    potential_gen: Callable[[Any], Callable[[Array], Array]]
    n_params: int
    num_chains: int
    num_warmup: int
    num_samples: int
    chain_method: str
    target_accept_prob: float = 0.8
    dense_mass: bool = True
    max_tree_depth: int = 10
    has_inverse_mass_matrix: bool = False

    @property
    def chunk(self) -> int:
        """Iterations per chunk: the whole run (warm-up + draws) in at most :data:`N_CHUNKS` chunks."""
        return max(1, math.ceil((self.num_warmup + self.num_samples) / N_CHUNKS))


@dataclass
class NUTSRun:
    """Draws and per-draw statistics of a NUTS run, with ``MCMC``'s accessors.

    ``samples`` maps each site to (chains, draws, ...); ``extra_fields`` maps each of
    :data:`NUTS_EXTRA_FIELDS` to (chains, draws).
    """

    samples: dict[str, Array]
    extra_fields: dict[str, Array]
    num_chains: int
    chain_method: str

    def get_samples(self, group_by_chain: bool = False) -> dict[str, Array]:
        """The draws of every site: (chains, draws, ...) with ``group_by_chain``, else (chains x draws, ...)."""
        return self.samples if group_by_chain else {k: _flat(v) for k, v in self.samples.items()}

    def get_extra_fields(self, group_by_chain: bool = False) -> dict[str, Array]:
        """The per-draw statistics, shaped as :meth:`get_samples`."""
        return self.extra_fields if group_by_chain else {k: _flat(v) for k, v in self.extra_fields.items()}


def _flat(x: Array) -> Array:
    return jnp.reshape(x, (-1,) + tuple(jnp.shape(x)[2:]))


def _kernels(cfg: NUTSConfig) -> tuple[Callable, Callable]:
    """Per-chain ``init(key, z0, data, inv_mass)`` and ``chunk(state, data, n)`` of numpyro's NUTS kernel.

    numpyro's ``hmc`` keeps the warm-up schedule in closure variables set by ``init_kernel``, so both
    come from one ``hmc`` call and ``init`` must be traced before ``chunk`` (:func:`_compile` does)."""
    init_kernel, sample_kernel = hmc(potential_fn_gen=cfg.potential_gen, algo="NUTS")

    def init(key, z0, data, inv_mass):
        return init_kernel(
            z0, cfg.num_warmup, step_size=1.0, inverse_mass_matrix=inv_mass, adapt_step_size=True,
            adapt_mass_matrix=True, dense_mass=cfg.dense_mass, target_accept_prob=cfg.target_accept_prob,
            trajectory_length=None, max_tree_depth=cfg.max_tree_depth, find_heuristic_step_size=False,
            regularize_mass_matrix=True, model_args=(data,), rng_key=key,
        )

    def record(s):
        return {"z": s.z, "diverging": s.diverging, "num_steps": s.num_steps, "energy": s.energy,
                "potential_energy": s.potential_energy, "accept_prob": s.accept_prob,
                "adapt_state.step_size": s.adapt_state.step_size}

    def chunk(state, data, n):
        empty = jax.tree.map(lambda r: jnp.zeros((cfg.chunk,) + jnp.shape(r), jnp.result_type(r)), record(state))

        def body(i, carry):
            s, buf = carry
            s = sample_kernel(s, model_args=(data,))
            buf = jax.tree.map(lambda b, r: b.at[i].set(r), buf, record(s))
            return s, buf

        return lax.fori_loop(0, n, body, (state, empty))

    return init, chunk


def _over_chains(cfg: NUTSConfig, fn: Callable, n_batched: int) -> Callable:
    """``fn`` over the chains: its first ``n_batched`` arguments carry a leading chain axis, the rest are
    shared; jitted, as set by ``cfg.chain_method``."""
    n_shared = fn.__code__.co_argcount - n_batched
    if cfg.chain_method == "vectorized":
        return jax.jit(jax.vmap(fn, in_axes=(0,) * n_batched + (None,) * n_shared))
    if cfg.chain_method == "sequential":
        def seq(*args):
            batched, shared = args[:n_batched], args[n_batched:]
            return lax.map(lambda b: fn(*b, *shared), batched)

        return jax.jit(seq)
    if cfg.chain_method == "parallel":
        mesh = _chain_mesh(cfg.num_chains)

        def local(*args):
            # one chain per device: drop its length-1 chain axis rather than vmap over it, since vmap
            # turns the conds of NUTS's tree building into selects that evaluate both branches (3x slower)
            one = [jax.tree.map(lambda x: x[0], a) for a in args[:n_batched]]
            return jax.tree.map(lambda x: x[None], fn(*one, *args[n_batched:]))

        mapped = jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec("chain"),) * n_batched + (PartitionSpec(),) * n_shared,
                               out_specs=PartitionSpec("chain"), check_vma=False)
        return jax.jit(mapped)
    raise ValueError(f"chain_method must be 'parallel', 'sequential' or 'vectorized', got {cfg.chain_method!r}")


def _chain_mesh(num_chains: int) -> Mesh:
    devices = jax.devices()
    if len(devices) < num_chains:
        raise ValueError(f"chain_method 'parallel' needs {num_chains} JAX devices, found {len(devices)}")
    return Mesh(np.asarray(devices[:num_chains]), ("chain",))


@dataclass
class _Programs:
    init: Any
    chunk: Any


_COMPILED: dict[Hashable, Future] = {}
_LOCK = threading.Lock()


#: XLA options of the init program (numpyro's HMC init: one gradient and a short step-size search per
#: chain, run once per fit in milliseconds): :data:`jaxhalo.jax_utils.RUN_ONCE_COMPILER_OPTIONS`, 1.1 s
#: to compile instead of 1.8 s on 2 CPU cores (the 850-star continuity fit), CPU time that a first
#: ``jaxhalo fit`` spends beside the ML program's compilation. The chunk program, which runs every draw,
#: keeps the default.
INIT_COMPILER_OPTIONS: dict = RUN_ONCE_COMPILER_OPTIONS


def _signature(cfg: NUTSConfig, data) -> Hashable:
    leaves, treedef = jax.tree.flatten(data)
    return cfg, treedef, tuple((jnp.shape(x), str(jnp.result_type(x))) for x in leaves)


def _compile(cfg: NUTSConfig, data) -> _Programs:
    """Lower and compile the init and chunk programs for ``data``'s shapes (values unused)."""
    init, chunk = _kernels(cfg)
    init_p = _over_chains(cfg, init, 2)
    chunk_p = _over_chains(cfg, chunk, 1)
    f = jnp.result_type(float)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), data)
    keys = jax.ShapeDtypeStruct((cfg.num_chains, 2), jnp.uint32)
    z0 = jax.ShapeDtypeStruct((cfg.num_chains, cfg.n_params), f)
    if cfg.has_inverse_mass_matrix:
        shape_m = (cfg.n_params, cfg.n_params) if cfg.dense_mass else (cfg.n_params,)
        init_c = init_p.lower(keys, z0, abstract, jax.ShapeDtypeStruct(shape_m, f)).compile(INIT_COMPILER_OPTIONS)
    else:
        init_c = jax.jit(lambda k, z, d: init_p(k, z, d, None)).lower(keys, z0, abstract).compile(INIT_COMPILER_OPTIONS)
    # the chain states' shapes (and placement) are the init program's outputs: no second trace of it
    chunk_c = chunk_p.lower(init_c.out_info, abstract, jax.ShapeDtypeStruct((), jnp.int32)).compile()
    return _Programs(init_c, chunk_c)


def compile_nuts(cfg: NUTSConfig, data, background: bool = False) -> Future:
    """The compiled programs of ``cfg`` for ``data``'s shapes, as a ``Future`` (cached per config and
    shapes: a later call, or :func:`run_chains`, reuses them).

    ``background=True`` compiles in a daemon thread and returns at once: XLA compilation (and most of
    the execution of whatever the caller runs meanwhile) releases the GIL, so e.g. the ML fit and the
    NUTS compilation of ``jaxhalo fit`` overlap on two cores.
    """
    sig = _signature(cfg, data)
    with _LOCK:
        fut = _COMPILED.get(sig)
        if fut is not None:
            _COMPILED[sig] = _COMPILED.pop(sig)  # most recently used last
            return fut
        fut = Future()
        _COMPILED[sig] = fut
        while len(_COMPILED) > MAX_COMPILED:  # e.g. a fit per catalogue of many shapes: keep the newest
            _COMPILED.pop(next(iter(_COMPILED)))

    def work():
        try:
            fut.set_result(_compile(cfg, data))
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
            with _LOCK:
                _COMPILED.pop(sig, None)
            fut.set_exception(e)

    if background:
        threading.Thread(target=work, name="jaxhalo-nuts-compile", daemon=True).start()
    else:
        work()
    return fut


def run_chains(cfg: NUTSConfig, data, keys: Array, z0: Array, inverse_mass_matrix: Array | None = None,
               postprocess: Callable[[Array], dict[str, Array]] | None = None, progress_bar: bool = True,
               desc: str = "NUTS") -> NUTSRun:
    """Warm-up + draws of ``cfg.num_chains`` chains from ``z0`` (C, P) with ``keys`` (C, 2).

    Runs :attr:`NUTSConfig.chunk` iterations of every chain per call of the compiled chunk program,
    keeping the iterations after warm-up; ``postprocess`` maps the draws ``z`` (C, S, P) to the named
    sites (default ``{"z": z}``). The progress bar counts iterations of all chains.
    """
    if (inverse_mass_matrix is not None) != cfg.has_inverse_mass_matrix:
        raise ValueError("inverse_mass_matrix given but cfg.has_inverse_mass_matrix is False, or the reverse")
    progs = compile_nuts(cfg, data).result()
    args = (keys, z0, data) + ((inverse_mass_matrix,) if cfg.has_inverse_mass_matrix else ())
    # an ahead-of-time program takes its arguments where it was compiled to find them (e.g. the chain
    # axis split over the devices, the data replicated); wherever they come from, put them there
    args = jax.device_put(args, progs.init.input_shardings[0])
    data = args[2]
    states = progs.init(*args)
    total, first = cfg.num_warmup + cfg.num_samples, cfg.num_warmup
    pieces: list[dict] = []
    bar = tqdm(total=total * cfg.num_chains, desc=f"{desc} {cfg.num_chains} chains (warm-up + draws)",
               disable=not progress_bar, unit="it", mininterval=0.5, dynamic_ncols=True)
    # every chunk is dispatched before the previous one is read back (one in flight), so that no chain
    # waits for the slowest at a chunk boundary: each device runs its chain's chunks back to back
    spans = [(start, min(cfg.chunk, total - start)) for start in range(0, total, cfg.chunk)]
    n_arg = {n: jax.device_put(jnp.int32(n), progs.chunk.input_shardings[0][2]) for _, n in spans}
    pending = None
    with bar:
        for span in spans + [None]:
            if span is not None:
                start, n = span
                states, rec = progs.chunk(states, data, n_arg[n])
            if pending is not None:
                (p_start, p_n), p_rec = pending
                lo = max(first - p_start, 0)  # iterations [p_start, p_start + p_n); draws from `first` on
                if p_n > lo:  # sliced on the host: a device slice per chunk would be an XLA program each
                    pieces.append({k: np.asarray(a)[:, lo:p_n] for k, a in p_rec.items()})
                else:
                    jax.block_until_ready(p_rec)
                bar.update(p_n * cfg.num_chains)
            pending = None if span is None else (span, rec)
    draws = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in pieces[0]}
    z = draws.pop("z")
    samples = _postprocess_jit(postprocess)(z) if postprocess is not None else {"z": z}
    return NUTSRun(samples, {k: draws[k] for k in NUTS_EXTRA_FIELDS}, cfg.num_chains, cfg.chain_method)


@functools.lru_cache(maxsize=32)
def _postprocess_jit(postprocess: Callable) -> Callable:
    """The postprocessing (unit cube to named parameters) of all draws: run once per fit, elementwise
    over (chains, draws), so it is compiled fast (:data:`INIT_COMPILER_OPTIONS`)."""
    return jax.jit(postprocess, compiler_options=INIT_COMPILER_OPTIONS)
