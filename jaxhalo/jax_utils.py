"""Small helpers shared by the numerical modules."""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["is_concrete"]


def is_concrete(*xs: Any) -> bool:
    """True when no leaf of the arguments is a JAX tracer, so that Python-side checks may raise.

    Under ``jit``/``vmap``/``grad`` values are tracers and eager validation must be skipped (or
    deferred to ``equinox.error_if``); outside them the same call validates eagerly.
    """
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))
