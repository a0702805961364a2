"""Small helpers shared by the numerical modules."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .units import to_internal

__all__ = ["is_concrete", "unit_converter"]


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
