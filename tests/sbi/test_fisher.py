"""Fisher forecasts: the linear-Gaussian toy's Fisher matrix is known exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.sbi.fisher import FisherError, fisher_forecast, fisher_matrix, summary_information
from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_matrix, linear_gaussian_simulator

NOISE = 0.3


@pytest.fixture(scope="module")
def toy():
    prior = brooks2026_prior()
    sim = linear_gaussian_simulator(prior, n_summaries=20, noise=NOISE)
    draws = np.asarray(prior.sample(jax.random.PRNGKey(12345), (20000,)))  # the toy's own standardisation
    s = np.where(draws.std(axis=0) > 0, draws.std(axis=0), 1.0)
    J_true = linear_gaussian_matrix(prior.dim, 20) / s  # d mean / d theta
    theta0 = np.asarray(prior.sample(jax.random.PRNGKey(0), ()))
    return sim, prior, theta0, J_true, NOISE**2 * np.eye(20)


def test_fisher_of_the_linear_gaussian_toy_is_exact(toy):
    sim, prior, theta0, J_true, C = toy
    fc = fisher_forecast(sim.fn, theta0, jax.random.PRNGKey(1), names=prior.names, summary_cov=C)
    F_true = J_true.T @ np.linalg.solve(C, J_true)
    np.testing.assert_allclose(fc.jacobian, J_true, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fc.fisher, F_true, rtol=1e-8, atol=1e-8 * np.abs(F_true).max())


def test_estimated_covariance_gives_the_right_widths(toy):
    """With C from 4,000 simulations (Hartlap-debiased) the forecast widths match the exact ones to 5%
    (the sampling error of a 20 x 20 covariance from 4,000 draws is ~ 1-2% on each width)."""
    sim, prior, theta0, J_true, C = toy
    fc = fisher_forecast(sim.fn, theta0, jax.random.PRNGKey(2), names=prior.names, n_covariance=4000)
    sigma_true = np.sqrt(np.diag(np.linalg.inv(J_true.T @ np.linalg.solve(C, J_true))))
    np.testing.assert_allclose(fc.sigma, sigma_true, rtol=0.05)
    assert np.allclose(np.diag(fc.correlation), 1.0)


def test_summary_information_equals_brute_force_removal():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((9, 4))
    A = rng.standard_normal((9, 9))
    C = A @ A.T + 9 * np.eye(9)
    info = np.asarray(summary_information(J, C))
    F = J.T @ np.linalg.solve(C, J)
    for i in range(9):
        keep = np.arange(9) != i
        Fi = J[keep].T @ np.linalg.solve(C[np.ix_(keep, keep)], J[keep])
        assert info[i] == pytest.approx(np.linalg.slogdet(F)[1] - np.linalg.slogdet(Fi)[1], rel=1e-10, abs=1e-12)
    assert np.all(info >= 0)


def test_derived_sigma_is_linear_propagation(toy):
    sim, prior, theta0, J_true, C = toy
    fc = fisher_forecast(sim.fn, theta0, jax.random.PRNGKey(1), names=prior.names, summary_cov=C)
    w = np.arange(1.0, prior.dim + 1)
    got = fc.derived_sigma(lambda th: jnp.dot(jnp.asarray(w), th))
    assert got[0] == pytest.approx(np.sqrt(w @ fc.covariance @ w), rel=1e-12)


def test_bad_inputs_are_named():
    with pytest.raises(FisherError, match="positive definite"):
        fisher_matrix(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(FisherError, match=r"need J \(S, P\)"):
        fisher_matrix(np.ones((3, 2)), np.eye(2))
    with pytest.raises(FisherError, match="more than S"):
        fisher_forecast(lambda th, k: jnp.concatenate([th, th]), np.zeros(2), jax.random.PRNGKey(0), n_covariance=5)
