"""Synthetic-likelihood NUTS: the likelihood equals the Gaussian it states; on the linear-Gaussian toy NUTS
reproduces the analytic synthetic-likelihood posterior (default run) and is calibrated over 20 mocks (slow)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy.stats import multivariate_normal

from jaxhalo.sbi.fisher import FisherError
from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_simulator
from jaxhalo.sbi.synthetic import (
    percival_factor,
    reference_covariance,
    run_synthetic_nuts,
    run_synthetic_nuts_batch,
    synthetic_log_likelihood,
)
from jaxhalo.sbi.tarp import tarp_coverage
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES

NOISE = 0.3
S = 20
FREE = ("log10_m200", "m_lmc", "log10_lambda_df")


@pytest.fixture(scope="module")
def toy():
    prior = brooks2026_prior()
    return prior, linear_gaussian_simulator(prior, n_summaries=S, noise=NOISE)


@pytest.fixture(scope="module")
def toy3():
    """The toy with 9 of the 12 parameters fixed at the fiducial values: 3 free (M200, M_LMC, lambda_DF)."""
    prior = brooks2026_prior().with_overrides(
        {n: dist.Delta(float(v)) for n, v in zip(PARAMETER_NAMES, FIDUCIAL_THETA) if n not in FREE})
    return prior, linear_gaussian_simulator(prior, n_summaries=S, noise=NOISE)


def test_synthetic_likelihood_is_the_stated_gaussian(toy):
    """ln L differences equal scipy's ln N(x; mu_K, (1 + 1/K) C) differences between two thetas to 1e-10."""
    prior, sim = toy
    keys = jax.random.split(jax.random.key(0), 5)
    C = NOISE**2 * np.eye(S) + 0.01 * np.ones((S, S))
    L = np.linalg.cholesky(C)
    x = np.asarray(sim.fn(prior.sample(jax.random.key(1)), jax.random.key(2)))
    th = [prior.sample(jax.random.key(i)) for i in (3, 4)]
    ours = [float(synthetic_log_likelihood(sim.fn, t, x, keys, L)) for t in th]
    mus = [np.mean([np.asarray(sim.fn(t, k)) for k in keys], axis=0) for t in th]
    ref = [multivariate_normal(m, (1 + 1 / 5) * C).logpdf(x) for m in mus]
    assert ours[0] - ours[1] == pytest.approx(ref[0] - ref[1], rel=1e-10)


def test_reference_covariance_refuses_too_few_simulations(toy):
    prior, sim = toy
    with pytest.raises(FisherError, match="more than S"):
        reference_covariance(sim.fn, prior.sample(jax.random.key(0)), jax.random.key(1), n=10)


def test_percival_factor_is_the_extra_scatter_from_an_estimated_covariance():
    """Percival et al. (2014) m1 against a numpy Monte Carlo: a linear model with S = 20 summaries and P = 3
    parameters, C estimated from n = 60 simulations (Hartlap factor on its inverse), the generalised-least-squares
    estimate with that C; over 4,000 trials, E[(estimate - truth)^2] / E[the likelihood's variance] of each
    parameter equals m1 (1.316) to 6 % (the Monte Carlo's standard error: ~2.2 %, sqrt(2 / 4000) from the squared
    errors plus the spread of the variances), and m1 -> 1 for many simulations."""
    rng = np.random.default_rng(7)
    S, P, n, T = 20, 3, 60, 4000
    B = rng.standard_normal((S, P))
    sims = rng.standard_normal((T, n, S))
    C = np.einsum("tni,tnj->tij", sims - sims.mean(1, keepdims=True), sims - sims.mean(1, keepdims=True)) / (n - 1)
    M = (n - S - 2) / (n - 1) * np.linalg.inv(C)                   # Hartlap
    F = np.einsum("ia,tij,jb->tab", B, M, B)
    cov = np.linalg.inv(F)
    x = rng.standard_normal((T, S))                                  # the truth is theta = 0, C = I
    est = np.einsum("tab,ib,tij,tj->ta", cov, B, M, x)
    ratio = np.mean(est**2, axis=0) / np.mean(np.diagonal(cov, axis1=1, axis2=2), axis=0)
    m1 = percival_factor(n, S, P)
    assert m1 == pytest.approx(1.3158, abs=1e-4)
    np.testing.assert_allclose(ratio, m1, rtol=0.06)
    assert abs(percival_factor(10**8, 52, 12) - 1) < 1e-5
    with pytest.raises(FisherError, match="more than S \\+ 4 = 24"):
        percival_factor(24, 20, 3)


def test_synthetic_nuts_matches_the_analytic_posterior_on_the_toy(toy3):
    """With C = noise^2 I given exactly, the toy's synthetic likelihood is Gaussian in the free parameters:
    mu_K(theta) = A (theta - m) / s + noise * ebar (ebar the mean of the K keys' normals, a fixed offset), so
    the posterior (the uniform prior box is > 10 sigma wide here) has precision A_f^T A_f / (s_f^2 sigma^2
    (1 + 1/K)) and a mean solved in closed form. NUTS (2 chains x 600): means within 4 Monte Carlo
    standard errors (ESS-based), standard deviations within 10%, no divergences."""
    prior, sim = toy3
    K = 8
    truth = jnp.asarray(FIDUCIAL_THETA)
    x = sim.fn(truth, jax.random.key(3))
    L = NOISE * jnp.eye(S)
    key = jax.random.key(4)
    res = run_synthetic_nuts(prior, sim.fn, x, key, L, n_keys=K, num_warmup=300, num_samples=600, num_chains=2)
    assert res.divergences == 0 and res.max_r_hat < 1.01
    # the analytic posterior with the same CRN keys as run_synthetic_nuts
    keys = jax.random.split(jax.random.split(key)[0], K)
    idx = [PARAMETER_NAMES.index(n) for n in FREE]
    base = np.asarray(jnp.mean(jax.vmap(lambda k: sim.fn(truth, k))(keys), axis=0))  # mu_K at the truth
    J = np.asarray(jax.jacfwd(lambda t: sim.fn(t, keys[0]))(truth))[:, idx]  # d mu / d theta_free (linear toy)
    var = NOISE**2 * (1 + 1 / K)
    cov = np.linalg.inv(J.T @ J / var)
    mean = np.asarray(truth)[idx] + cov @ J.T @ (np.asarray(x) - base) / var
    draws = res.theta.reshape(-1, 12)[:, idx]
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * sd / np.sqrt(res.min_ess_bulk)), (draws.mean(0), mean, sd)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)


@pytest.mark.slow
def test_synthetic_nuts_is_calibrated_on_the_toy(toy3):
    """20 mock observations at prior draws, all fitted in one vmapped NUTS program (2 chains x 300 after 300
    warm-up, 8 CRN keys, C from 200 simulations at one reference theta): TARP credibilities uniform
    (KS p > 0.01, a 1% false-alarm rate) and no divergences. (~1 min on 2 loaded cores.)"""
    prior, sim = toy3
    L, _ = reference_covariance(sim.fn, prior.sample(jax.random.key(99)), jax.random.key(98), n=200)
    M = 20
    truth = prior.sample(jax.random.key(5), (M,))
    xs = jax.vmap(sim.fn)(truth, jax.random.split(jax.random.key(6), M))
    th, div, r_hat = run_synthetic_nuts_batch(prior, sim.fn, xs, jax.random.key(7), L, n_keys=8, num_warmup=300,
                                              num_samples=300, num_chains=2)
    assert div.sum() == 0
    idx = [PARAMETER_NAMES.index(n) for n in FREE]
    tarp = tarp_coverage(np.moveaxis(th.reshape(M, -1, 12)[..., idx], 1, 0), np.asarray(truth)[:, idx],
                         key=jax.random.key(8))
    assert tarp.ks_uniform_pvalue > 0.01, tarp.as_dict()
