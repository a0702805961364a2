"""The L-BFGS loops of jaxhalo.inference.optim against scipy's minimiser on a known problem."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jaxhalo.inference.optim import lbfgs_backtracking, lbfgs_converge, lbfgs_scan, lbfgs_starts_converge


def _rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def test_converge_stops_early_at_scipys_minimum():
    x0 = jnp.array([-1.2, 1.0, -0.5, 0.8])
    ref = scipy.optimize.minimize(lambda x: float(_rosenbrock(jnp.asarray(x))), np.asarray(x0),
                                  jac=lambda x: np.asarray(jax.grad(_rosenbrock)(jnp.asarray(x))), method="BFGS",
                                  options={"gtol": 1e-8})
    np.testing.assert_allclose(ref.x, 1.0, atol=1e-6)  # the known minimum (1, 1, 1, 1)
    x, k = jax.jit(lambda x: lbfgs_converge(_rosenbrock, x, 500, 1e-8, lbfgs_backtracking()))(x0)
    np.testing.assert_allclose(np.asarray(x), ref.x, atol=1e-6)
    assert 10 < int(k) < 500  # stopped when converged, not at the cap
    # the fixed-step loop with the same number of steps lands on the same point
    xs = jax.jit(lambda x: lbfgs_scan(_rosenbrock, x, int(k), lbfgs_backtracking()))(x0)
    np.testing.assert_allclose(np.asarray(xs), np.asarray(x), atol=1e-12)


def test_converge_under_vmap_and_cap():
    starts = jnp.array([[-1.2, 1.0, -0.5, 0.8], [0.9, 0.8, 0.7, 0.6], [2.0, 2.0, 2.0, 2.0]])
    x, k = jax.jit(jax.vmap(lambda x: lbfgs_converge(_rosenbrock, x, 500, 1e-8, lbfgs_backtracking())))(starts)
    np.testing.assert_allclose(np.asarray(x), 1.0, atol=1e-6)
    assert len(set(np.asarray(k).tolist())) > 1  # each start stops on its own
    _, k3 = lbfgs_converge(_rosenbrock, starts[0], 3, 1e-8, lbfgs_backtracking())
    assert int(k3) == 3
    _, kb = lbfgs_converge(lambda x: jnp.sum(jnp.sqrt(x)), jnp.array([-1.0, 2.0]), 50, 1e-8)
    assert int(kb) == 1  # a non-finite gradient stops at once


def test_starts_converge_stops_when_the_best_start_agrees():
    """Multi-start: the slowest start no longer keeps the batch running once two starts agree at
    the best value; the best start lands on the known minimum (as scipy's, above)."""
    def f(x):
        return _rosenbrock(x)

    starts = jnp.array([[-1.2, 1.0, -0.5, 0.8], [0.9, 0.8, 0.7, 0.6], [2.0, 2.0, 2.0, 2.0], [1.1, 1.2, 1.3, 1.5]])
    x, val, k = jax.jit(lambda s: lbfgs_starts_converge(f, s, 500, 1e-8, lbfgs_backtracking()))(starts)
    best = int(jnp.argmin(val))
    np.testing.assert_allclose(np.asarray(x[best]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(val), np.asarray(jax.vmap(f)(x)))
    # it stops once two starts agree at the best value, before the slowest of the four has converged
    _, k_each = jax.vmap(lambda s: lbfgs_converge(f, s, 500, 1e-8, lbfgs_backtracking()))(starts)
    assert int(k) < int(jnp.max(k_each))
    assert int(k) >= int(jnp.sort(k_each)[1]) - 1
    # a single start: stops when it has converged
    _, _, k1 = lbfgs_starts_converge(f, starts[:1], 500, 1e-8, lbfgs_backtracking())
    assert int(k1) == int(k_each[0])
