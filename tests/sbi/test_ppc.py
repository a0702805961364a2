"""Posterior predictive checks on the linear-Gaussian toy: predictive spread = the known noise."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxhalo.sbi.ppc import complete_theta, posterior_predictive, ppc_table
from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.simulation.errors import SimulatorError
from jaxhalo.sbi.simulators import linear_gaussian_simulator


def test_ppc_linear_gaussian():
    prior = brooks2026_prior()
    sim = linear_gaussian_simulator(prior, n_summaries=6, noise=0.3)
    theta0 = np.asarray(prior.sample(jax.random.PRNGKey(0)))
    names = ["log10_m200", "m_lmc"]
    fixed = {n: float(v) for n, v in zip(prior.names, theta0) if n not in names}
    draws = np.tile(theta0[:2], (400, 1))  # a posterior concentrated on the truth
    pred = posterior_predictive(sim, draws, names, jax.random.PRNGKey(1), fixed=fixed)
    assert pred.shape == (400, 6)
    x_obs = np.asarray(sim.fn(jax.numpy.asarray(theta0), jax.random.PRNGKey(2)))
    tab = ppc_table(pred, x_obs)
    # predictive sd = noise (400 draws: 3.5% sd error, 5 sigma)
    np.testing.assert_allclose(tab["std"], 0.3, rtol=0.18)
    assert np.all(np.abs(tab["z"]) < 5) and tab["flagged"].dtype == bool
    far = x_obs + 10 * 0.3
    assert ppc_table(pred, far)["flagged"].all()
    with pytest.raises(SimulatorError, match=r"needs values for \['gamma'\]"):
        complete_theta(draws, names, prior.names, {k: v for k, v in fixed.items() if k != "gamma"})
    with pytest.raises(SimulatorError, match="do not match"):
        ppc_table(pred, x_obs[:5])
