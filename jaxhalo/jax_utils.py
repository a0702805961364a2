"""Small helpers shared by the numerical modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .units import to_internal

__all__ = ["CPU_SUM_BLOCK", "CPU_SUM_MIN_GROUP", "CPU_SUM_SPLIT", "RUN_ONCE_COMPILER_OPTIONS", "blockwise_sum",
           "fused_row_sums", "is_concrete", "sincos", "unit_converter"]

#: XLA options for a program that runs once per command on a handful of arrays (a sampler's
#: initialisation, the postprocessing of the draws, derived quantities): backend optimisation level 0
#: compiles it in well under half the time (NUTS init 1.8 -> 1.1 s, derived quantities 0.7 -> 0.2 s on
#: 2 CPU cores) and the run stays milliseconds. Never for a hot program (the ML fit at level 0 ran 3.5x slower).
RUN_ONCE_COMPILER_OPTIONS: dict = {"xla_backend_optimization_level": 0}


#: Rows (stars) per block of :func:`fused_row_sums` on a CPU: the few per-row intermediates XLA still
#: writes to memory (an expensive producer, such as a divide or log, used more than once) stay in cache.
#: 2 AMD EPYC cores, 1e6 stars: 8,192-32,768 equally fast; unblocked, the mixture likelihood ran 1.8x slower.
CPU_SUM_BLOCK = 16384

#: Groups :func:`fused_row_sums` splits each block into on a CPU (a free reshape and ``vmap``): XLA gives
#: each group its own thread. 8 covers 2-8 cores; on 2 AMD EPYC cores 2, 4 and 8 are equally fast.
CPU_SUM_SPLIT = 8

#: Fewest rows per group: a smaller block is split into fewer groups (none below 2 x this), since a thread's
#: start costs more than a few hundred rows of arithmetic.
CPU_SUM_MIN_GROUP = 1024


def fused_row_sums(terms: Callable[[Any], tuple[jax.Array, ...]], data: Any) -> jax.Array:
    """(P,) sums over the rows of ``data`` (a pytree whose leaves share a leading axis of n rows) of the
    P per-row terms ``terms(rows) -> tuple of P (m,) arrays``, in one pass over the rows.

    Why by hand: XLA's CPU backend gives every separate reduction (or a stack of the terms) its own loop
    and copies the shared per-row intermediates into each: 20-30 loops that recompute a likelihood's
    per-star arithmetic 2-3 times. Here the P sums are one variadic ``lax.reduce``, so XLA fuses the
    computation that feeds them into a single loop whose accumulators hold every sum, each row computed
    once. On a CPU the rows go :data:`CPU_SUM_BLOCK` at a time (:func:`blockwise_sum`), and each block is
    split into up to :data:`CPU_SUM_SPLIT` groups of at least :data:`CPU_SUM_MIN_GROUP` rows (the last
    rows that do not fill a group as one more) that XLA runs on separate threads. Elsewhere (GPU) all rows
    form one reduction. ``jit``, ``vmap`` and every order of differentiation go through.
    """

    def reduce(d: Any) -> jax.Array:
        ops = tuple(terms(d))
        zeros = tuple(jnp.zeros((), o.dtype) for o in ops)
        return jnp.stack(jax.lax.reduce(ops, zeros, lambda a, b: tuple(x + y for x, y in zip(a, b)), (0,)))

    def grouped(d: Any) -> jax.Array:
        m = int(jax.tree_util.tree_leaves(d)[0].shape[0])
        split = max(1, min(CPU_SUM_SPLIT, m // CPU_SUM_MIN_GROUP))
        k = m // split * split
        if split == 1:
            return reduce(d)
        groups = jax.tree_util.tree_map(lambda a: a[:k].reshape(split, k // split, *a.shape[1:]), d)
        total = jnp.sum(jax.vmap(reduce)(groups), axis=0)
        if k < m:
            total = total + reduce(jax.tree_util.tree_map(lambda a: a[k:], d))
        return total

    if jax.default_backend() != "cpu":
        return reduce(data)
    return blockwise_sum(grouped, data, CPU_SUM_BLOCK)


def blockwise_sum(fn: Callable[[Any], jax.Array], data: Any, block: int) -> jax.Array:
    """``fn`` summed over consecutive blocks of rows of ``data`` (a pytree whose leaves share a leading
    axis of n rows): ``fn(rows) -> (P,)`` partial sums.

    On a CPU the rows are taken ``block`` at a time in a ``fori_loop`` (sliced in place, no copy), the
    remainder as one last block, so that one block's intermediates never leave the cache and the data
    are read once; up to ``2 * block`` rows, and elsewhere (GPU), all rows form one block.
    """
    n = int(jax.tree_util.tree_leaves(data)[0].shape[0])
    if jax.default_backend() != "cpu" or n <= 2 * block:
        return fn(data)
    q = n // block

    def body(i, acc):
        return acc + fn(jax.tree_util.tree_map(lambda a: jax.lax.dynamic_slice_in_dim(a, i * block, block), data))

    acc = jax.lax.fori_loop(1, q, body, fn(jax.tree_util.tree_map(lambda a: a[:block], data)))
    if q * block < n:
        acc = acc + fn(jax.tree_util.tree_map(lambda a: a[q * block :], data))
    return acc


def is_concrete(*xs: Any) -> bool:
    """True when no leaf of the arguments is a JAX tracer, so that Python-side checks may raise.

    Under ``jit``/``vmap``/``grad`` values are tracers and eager validation must be skipped (or
    deferred to ``equinox.error_if``); outside them the same call validates eagerly.
    """
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def unit_converter(unit: str, name: str):
    """An equinox field converter: an astropy Quantity to a JAX array in the internal ``unit`` (named
    ``name`` in the error for a wrong dimension, :func:`jaxhalo.units.to_internal`); anything else
    through ``jnp.asarray`` as before."""

    def convert(x: Any) -> jax.Array:
        return jnp.asarray(to_internal(x, unit, name))

    convert.__qualname__ = f"unit_converter({unit!r}, {name!r})"
    return convert


# fdlibm's minimax coefficients (k_sin.c, k_cos.c): |error| < 1 ulp on |r| <= pi/4.
_SIN_COEFFS = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
               2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_COS_COEFFS = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
               -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)


def sincos(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sin x, cos x) of a float array (radians), elementwise, as arithmetic XLA can vectorise.

    Why by hand: on a CPU, XLA lowers ``jnp.sin`` and ``jnp.cos`` to scalar calls into the C
    library, which also keep the rest of the fused loop around them from being vectorised
    (measured on 2 AMD EPYC cores: 9.8 ns per element for ``sin + cos`` against 1.2 ns here; the
    18-parameter reflex likelihood runs twice as fast with this). The argument is reduced by
    Cody-Waite to |r| <= pi/4 (pi/2 in two parts: exact for |x| < 2**20 in float64) and fdlibm's
    polynomials are evaluated on r. Accuracy: within 2 ulp of ``numpy.sin``/``numpy.cos`` for
    |x| < 1e5 in float64 (tests/test_jax_utils.py); in float32 about 1e-7 absolute for |x| < 1e3.
    Use it on hot per-element paths; elsewhere ``jnp.sin``/``jnp.cos`` are clearer.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if jnp.dtype(x.dtype) == jnp.float64:
        hi, lo = 1.57079632673412561417e+00, 6.07710050650619224932e-11
    else:  # the split of pi/2 in the working precision
        hi = float(np.float32(np.pi / 2))
        lo = float(np.pi / 2 - hi)
    k = jnp.round(x * (2.0 / np.pi))
    r = (x - k * hi) - k * lo
    z = r * r
    ps = _SIN_COEFFS[-1]
    for c in _SIN_COEFFS[-2::-1]:
        ps = ps * z + c
    s = r + r * z * ps
    pc = _COS_COEFFS[-1]
    for c in _COS_COEFFS[-2::-1]:
        pc = pc * z + c
    co = 1.0 - 0.5 * z + z * z * pc
    q = k.astype(jnp.int32) & 3  # quadrant
    sin = jnp.where(q == 0, s, jnp.where(q == 1, co, jnp.where(q == 2, -s, -co)))
    cos = jnp.where(q == 0, co, jnp.where(q == 1, -s, jnp.where(q == 2, -co, s)))
    return sin, cos
