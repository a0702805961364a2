"""Shared optimiser loop: a fixed number of optax L-BFGS steps as one ``lax.scan`` (jit/vmap-able)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import optax

__all__ = ["lbfgs_backtracking", "lbfgs_scan"]


def lbfgs_backtracking() -> optax.GradientTransformationExtraArgs:
    """optax L-BFGS with a backtracking (Armijo) line search.

    On jaxhalo's reflex and mixture posteriors it converges as well as optax's default zoom
    search and compiles about 5x faster, which dominates the time to first result.
    """
    return optax.lbfgs(linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True))


def lbfgs_scan(fun: Callable[[Any], jax.Array], x0: Any, n_steps: int,
               opt: optax.GradientTransformationExtraArgs | None = None) -> Any:
    """Minimise the scalar ``fun`` over the pytree ``x0`` with ``n_steps`` L-BFGS iterations.

    ``opt`` defaults to ``optax.lbfgs()`` (zoom line search). A fixed step count (no early
    stop) keeps the loop a ``lax.scan``, so the whole run can be vmapped over starts or bins
    and compiled once. Returns the final parameters (same pytree structure as ``x0``).
    """
    opt = optax.lbfgs() if opt is None else opt
    vg = optax.value_and_grad_from_state(fun)

    def step(carry, _):
        x, state = carry
        value, grad = vg(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=fun)
        return (optax.apply_updates(x, updates), state), None

    (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=n_steps)
    return x
