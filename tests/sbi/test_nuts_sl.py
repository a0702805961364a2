"""jaxhalo.sbi.nuts_sl, the run behind `jaxhalo sbi nuts`: its checks and budget arithmetic (default run, no NUTS
compiled), and -- slow -- its NUTS reproducing the analytic synthetic-likelihood posterior of the linear toy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.sbi.fisher import FisherError
from jaxhalo.sbi.nuts_sl import (
    SyntheticLikelihoodError,
    SyntheticPosterior,
    check_observed,
    fix_parameters,
    synthetic_posterior,
)
from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_simulator
from jaxhalo.sbi.synthetic import covariance_cholesky, percival_factor, reference_covariance
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES

FREE = ("log10_m200", "m_lmc", "log10_lambda_df")


def _simulate(theta, key, n_summaries: int = 5):
    """A trivial simulator (S,): theta[0] plus unit normals (cheaper to build than the suite's toy)."""
    return theta[0] + jax.random.normal(key, (n_summaries,), dtype=jnp.asarray(theta).dtype)


@pytest.fixture(scope="module")
def prior():
    return brooks2026_prior()


def test_observation_checks_name_the_problem():
    assert check_observed([1.0, 2.0], 2).tolist() == [1.0, 2.0]
    with pytest.raises(SyntheticLikelihoodError, match="has 3 entries; the simulator gives 2"):
        check_observed([1.0, 2.0, 3.0], 2)
    with pytest.raises(SyntheticLikelihoodError, match=r"non-finite entries at \[1\]"):
        check_observed([1.0, np.inf], 2)


def test_fix_parameters_keeps_the_free_ones_and_refuses_unknown_names(prior):
    fixed = fix_parameters(prior, FIDUCIAL_THETA, ["m_lmc", "beta0"])
    lo, hi = fixed.bounds
    varies = [n for n, a, b in zip(fixed.names, lo, hi) if a != b]
    assert varies == ["m_lmc", "beta0"]
    assert lo[PARAMETER_NAMES.index("d_lmc")] == hi[PARAMETER_NAMES.index("d_lmc")] == 49.6
    with pytest.raises(SyntheticLikelihoodError, match="unknown parameter"):
        fix_parameters(prior, FIDUCIAL_THETA, ["m200"])


def test_covariance_from_simulations_matches_reference_covariance_and_names_nan_summaries():
    key = jax.random.key(1)
    L_ref, h_ref = reference_covariance(_simulate, FIDUCIAL_THETA, key, n=40)
    s = jax.vmap(lambda k: _simulate(jnp.asarray(FIDUCIAL_THETA), k))(jax.random.split(key, 40))
    L, h = covariance_cholesky(s)
    assert h == h_ref == pytest.approx((40 - 5 - 2) / 39)
    np.testing.assert_allclose(L, L_ref, rtol=1e-12)
    bad = np.asarray(s).copy()
    bad[3, 2] = np.nan
    with pytest.raises(FisherError, match=r"summaries \[2\] are not finite in 1 of the 40"):
        covariance_cholesky(bad)


def test_budget_counts_as_stated():
    """Gradient evaluations = leapfrog steps (warm-up + sampling) + one per chain; each costs K (1 + P_free)."""
    steps = np.array([[3, 7, 1, 1, 3], [1, 3, 3, 7, 7]])  # 2 chains, 2 warm-up + 3 sampling iterations
    res = SyntheticPosterior(
        theta=np.zeros((2, 3, 12)), names=tuple(PARAMETER_NAMES), free=FREE, theta_ref=np.asarray(FIDUCIAL_THETA),
        r_hat={n: 1.0 for n in FREE}, ess_bulk={n: 10.0 for n in FREE}, ess_tail={n: 10.0 for n in FREE},
        diverging=np.array([[False, True, False], [False, False, False]]), num_steps=steps, n_cov_run=60, n_keys=4,
        hartlap=0.1, num_warmup=2, num_samples=3, timings_s={})
    b = res.budget()
    assert b["leapfrog_steps_warmup"] == 3 + 7 + 1 + 3 and b["leapfrog_steps_sampling"] == 5 + 17
    assert b["gradient_evaluations"] == 36 + 2
    assert b["simulation_equivalents_per_gradient"] == 4 * (1 + 3)
    assert b["total_simulation_equivalents"] == 60 + 38 * 16
    assert res.divergences == 1 and res.free_draws.shape == (2, 3, 3) and res.max_r_hat == 1.0


def test_bad_settings_are_refused_before_any_simulation(prior):
    with pytest.raises(SyntheticLikelihoodError, match="n_keys must be an integer >= 1"):
        synthetic_posterior(prior, _simulate, np.zeros(5), jax.random.key(0), FIDUCIAL_THETA, n_keys=0)
    outside = np.array(FIDUCIAL_THETA)
    outside[0] = 13.0
    with pytest.raises(SyntheticLikelihoodError, match="reference theta.*log10_m200"):
        synthetic_posterior(prior, _simulate, np.zeros(5), jax.random.key(0), outside)
    with pytest.raises(SyntheticLikelihoodError, match="has 4 entries; the simulator gives 5"):
        synthetic_posterior(prior, _simulate, np.zeros(4), jax.random.key(0), FIDUCIAL_THETA)


@pytest.mark.slow
def test_nuts_matches_the_analytic_posterior_on_the_toy(prior):
    """3 free parameters of the toy (20 summaries, noise 0.3), C from 4,000 simulations: the synthetic likelihood
    is Gaussian in theta with precision J^T J / (sigma^2 (1 + 1/K)) (C -> sigma^2 I), so NUTS (4 chains x
    (300 + 500)) must give its mean within 4 Monte Carlo standard errors and its sd within 10 %, with R-hat
    < 1.01 and no divergences; as in tests/sbi/test_synthetic.py for run_synthetic_nuts."""
    sim = linear_gaussian_simulator(prior, n_summaries=20)
    prior = fix_parameters(prior, FIDUCIAL_THETA, FREE)
    truth = jnp.asarray(FIDUCIAL_THETA)
    x = sim.fn(truth, jax.random.key(3))
    key, K = jax.random.key(4), 8
    res = synthetic_posterior(prior, sim.fn, x, key, FIDUCIAL_THETA, n_keys=K, n_cov=4000, num_warmup=300,
                              num_samples=500, num_chains=4)
    assert res.divergences == 0 and res.max_r_hat < 1.01
    keys = jax.random.split(jax.random.split(key, 3)[1], K)  # the CRN keys synthetic_posterior uses
    idx = [PARAMETER_NAMES.index(n) for n in FREE]
    base_mu = np.asarray(jnp.mean(jax.vmap(lambda k: sim.fn(truth, k))(keys), axis=0))
    J = np.asarray(jax.jacfwd(lambda t: sim.fn(t, keys[0]))(truth))[:, idx]
    var = 0.3**2 * (1 + 1 / K) * percival_factor(4000, 20, 3)   # C's noise (Percival m1 = 1.003 here)
    assert res.covariance_factor == percival_factor(4000, 20, 3)
    cov = np.linalg.inv(J.T @ J / var)
    mean = np.asarray(truth)[idx] + cov @ J.T @ (np.asarray(x) - base_mu) / var
    draws = res.free_draws.reshape(-1, 3)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * sd / np.sqrt(res.min_ess_bulk)), (draws.mean(0), mean, sd)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)
