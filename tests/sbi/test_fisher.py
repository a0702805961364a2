"""Fisher forecasts: the linear-Gaussian toy's Fisher matrix is known exactly."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.sbi.fisher import (
    FisherError,
    FisherForecast,
    fisher_covariance,
    fisher_forecast,
    fisher_matrix,
    jacobian_noise_fisher,
    ledoit_wolf_covariance,
    screen_summaries,
    summary_information,
)
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
        fisher_forecast(_noisy_linear(np.ones((4, 2))), np.zeros(2), jax.random.PRNGKey(0), n_covariance=5)


def _noisy_linear(A, noise=1.0):
    """simulate(theta, key) = A theta + noise * N(0, I): J = A, C = noise^2 I."""
    A = jnp.asarray(A, dtype=float)
    return lambda th, k: A @ th + noise * jax.random.normal(k, (A.shape[0],), dtype=A.dtype)


# --- the degenerate cases a real forecast meets: no information on a parameter, too few simulations, constant
# --- summaries, badly scaled parameters


def test_a_parameter_without_information_gets_exactly_its_prior_sigma():
    """J with a zero column (the summaries do not depend on theta_2): without a prior F is singular and the
    error names theta_2; with a prior (a uniform of width w: 12 / w^2) theta_2 gets exactly w / sqrt(12) and
    the others the analytic sigma of (A^T C^-1 A + F_prior)^-1 restricted to them."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((10, 4))
    A[:, 2] = 0.0
    noise = 0.5
    C = noise**2 * np.eye(10)
    widths = np.array([20.0, 40.0, 3.0, 10.0])
    prior = 12.0 / widths**2
    sim = _noisy_linear(A, noise)
    with pytest.raises(FisherError, match="no information at all on theta_2"):
        _ = fisher_forecast(sim, np.zeros(4), jax.random.PRNGKey(0), n_jacobian=2, summary_cov=C).sigma
    fc = fisher_forecast(sim, np.zeros(4), jax.random.PRNGKey(0), n_jacobian=2, summary_cov=C, prior_fisher=prior)
    assert fc.sigma[2] == pytest.approx(widths[2] / np.sqrt(12.0), rel=1e-12)
    keep = [0, 1, 3]
    F = A[:, keep].T @ A[:, keep] / noise**2 + np.diag(prior[keep])
    np.testing.assert_allclose(fc.sigma[keep], np.sqrt(np.diag(np.linalg.inv(F))), rtol=1e-10)
    assert fc.correlation[2, keep] == pytest.approx(0.0, abs=1e-12)
    assert list(fc.prior_dominated) == [False, False, True, False]
    np.testing.assert_allclose(fc.jacobian_noise[keep], 0.0, atol=1e-20)  # linear: the same J for every key
    assert np.isnan(fc.jacobian_noise[2])  # no data information to compare with


def test_too_few_simulations_are_refused_for_the_sample_covariance_and_shrunk_otherwise():
    A = np.random.default_rng(1).standard_normal((20, 3))
    sim = _noisy_linear(A)
    with pytest.raises(FisherError, match=r"Hartlap factor .* <= 0"):
        fisher_forecast(sim, np.zeros(3), jax.random.PRNGKey(0), n_jacobian=1, n_covariance=22)
    with pytest.warns(UserWarning, match="degrees of freedom"):  # h = 5 / 26 < 1/2
        fc = fisher_forecast(sim, np.zeros(3), jax.random.PRNGKey(0), n_jacobian=1, n_covariance=27)
    assert fc.covariance_estimator == "sample" and fc.hartlap == pytest.approx(5 / 26)
    for n in (10, 27):  # fewer simulations than summaries, and too few for h >= 1/2: auto shrinks
        fc = fisher_forecast(sim, np.zeros(3), jax.random.PRNGKey(0), n_jacobian=1, n_covariance=n, covariance="auto")
        assert fc.covariance_estimator == "ledoit-wolf" and fc.hartlap == 1.0 and 0 < fc.shrinkage <= 1
        assert np.all(np.linalg.eigvalsh(fc.summary_cov) > 0) and np.all(np.isfinite(fc.sigma))
    fc = fisher_forecast(sim, np.zeros(3), jax.random.PRNGKey(0), n_jacobian=1, n_covariance=43, covariance="auto")
    assert fc.covariance_estimator == "sample" and fc.hartlap == pytest.approx(21 / 42)


def _ledoit_wolf_by_the_definition(x):
    """Ledoit & Wolf (2004) Lemma 3.3 term by term on the standardised data (a loop over the samples)."""
    n, p = x.shape
    sd = x.std(axis=0, ddof=1)
    z = (x - x.mean(axis=0)) / sd
    E = z.T @ z / n
    mu = np.trace(E) / p
    d2 = np.linalg.norm(E - mu * np.eye(p), "fro") ** 2 / p
    b2 = sum(np.linalg.norm(np.outer(zk, zk) - E, "fro") ** 2 / p for zk in z) / n**2
    s = min(b2, d2) / d2
    R = E * n / (n - 1)
    return ((1 - s) * R + s * np.eye(p)) * np.outer(sd, sd), s


def test_ledoit_wolf_matches_its_definition_keeps_the_variances_and_vanishes_for_many_samples():
    rng = np.random.default_rng(5)
    L = rng.standard_normal((15, 15)) * 0.3 + np.eye(15)
    scales = np.logspace(-2, 3, 15)  # summaries in very different units
    for n in (8, 40, 200):
        x = (rng.standard_normal((n, 15)) @ L.T) * scales
        C, s = ledoit_wolf_covariance(x)
        C_ref, s_ref = _ledoit_wolf_by_the_definition(x)
        assert float(s) == pytest.approx(s_ref, rel=1e-10)
        np.testing.assert_allclose(np.asarray(C), C_ref, rtol=1e-10, atol=0)
        np.testing.assert_allclose(np.diag(np.asarray(C)), x.var(axis=0, ddof=1), rtol=1e-12)
        assert np.linalg.eigvalsh(np.asarray(C) / np.outer(scales, scales)).min() > 0
    x = (rng.standard_normal((20000, 15)) @ L.T) * scales
    assert float(ledoit_wolf_covariance(x)[1]) < 0.01


def test_constant_and_duplicated_summaries_are_dropped_with_a_warning_naming_them():
    A = np.random.default_rng(2).standard_normal((6, 2))

    def sim(th, k):
        s = A @ th + jax.random.normal(k, (6,))
        return jnp.concatenate([s, jnp.array([3.0]), 2.0 * s[:1] + 1.0])  # a constant and a duplicate of s_0

    labels = [f"s{i}" for i in range(6)] + ["empty_bin", "copy_of_s0"]
    with pytest.warns(UserWarning, match=r"2 summaries dropped.*empty_bin: constant.*copy_of_s0: duplicates s0"):
        fc = fisher_forecast(sim, np.zeros(2), jax.random.PRNGKey(0), n_jacobian=1, n_covariance=400,
                             summary_labels=labels)
    assert fc.summary_labels == tuple(labels[:6]) and [d[0] for d in fc.dropped] == ["empty_bin", "copy_of_s0"]
    ref = fisher_forecast(lambda th, k: sim(th, k)[:6], np.zeros(2), jax.random.PRNGKey(0), n_jacobian=1,
                          n_covariance=400)
    np.testing.assert_allclose(fc.fisher, ref.fisher, rtol=1e-12)
    keep, dropped = screen_summaries(np.ones((5, 3)) * np.arange(3))
    assert keep.size == 0 and len(dropped) == 3


def test_non_finite_jacobian_entries_are_refused_by_name():
    def sim(th, k):
        return jnp.stack([th[0] + jax.random.normal(k), jnp.sqrt(th[1]) + jax.random.normal(k)])  # d sqrt(0) = inf

    with pytest.raises(FisherError, match=r"d summary_1 / d theta_1"):
        fisher_forecast(sim, np.zeros(2), jax.random.PRNGKey(0), n_jacobian=1, n_covariance=50)


def test_badly_scaled_parameters_are_inverted_accurately():
    """Parameters in Msun next to parameters of order 1 (F_ii from 1e-22 to 1e3): the covariance equals the
    analytic one to 1e-10, and the per-summary information is scale free."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((8, 3))
    C = np.eye(8)
    scale = np.array([1e-11, 1.0, 30.0])  # theta_0 in Msun
    J = A * scale
    F = J.T @ J
    cov = np.asarray(fisher_covariance(F))
    ref = np.linalg.inv(A.T @ A) / np.outer(scale, scale)
    np.testing.assert_allclose(cov, ref, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(summary_information(J, C)), np.asarray(summary_information(A, C)), rtol=1e-9)


def test_summary_information_with_a_prior_equals_brute_force_removal():
    rng = np.random.default_rng(8)
    J = rng.standard_normal((7, 3))
    J[:, 1] = 0.0  # no summary informs theta_1: only the prior does
    B = rng.standard_normal((7, 7))
    C = B @ B.T + 7 * np.eye(7)
    prior = np.diag([0.1, 2.0, 0.5])
    h = 0.7
    info = np.asarray(summary_information(J, C, prior_fisher=prior, precision_scale=h))
    F = h * J.T @ np.linalg.solve(C, J) + prior
    for i in range(7):
        keep = np.arange(7) != i
        Fi = h * J[keep].T @ np.linalg.solve(C[np.ix_(keep, keep)], J[keep]) + prior
        assert info[i] == pytest.approx(np.linalg.slogdet(F)[1] - np.linalg.slogdet(Fi)[1], rel=1e-10, abs=1e-12)


def test_jacobian_noise_estimate_is_unbiased():
    """Per-key Jacobians J + noise: the estimate B of E[dJ^T C^-1 dJ] for the mean of K keys averages to
    the exact tr-weighted value, sigma_J^2 S / K I for white noise of sd sigma_J and C = I."""
    rng = np.random.default_rng(9)
    S, P, K, sj = 30, 2, 4, 0.2
    J = rng.standard_normal((S, P))
    Bs = [np.asarray(jacobian_noise_fisher(J + sj * rng.standard_normal((K, S, P)), np.eye(S))) for _ in range(400)]
    np.testing.assert_allclose(np.mean(Bs, axis=0), sj**2 * S / K * np.eye(P), atol=0.02)
    assert np.all(np.isnan(np.asarray(jacobian_noise_fisher(J[None], np.eye(S)))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        screen_summaries(rng.standard_normal((10, 3)))


def test_a_jacobian_dominated_by_monte_carlo_noise_is_flagged():
    """Per-key Jacobians that disagree wildly (the exploding tangents of chaotic tracers): almost all of F is
    Jacobian noise, and jacobian_noise says so (~1 - 1/K-ish, here > 0.5), where a clean J gives 0."""
    A = jnp.asarray(np.random.default_rng(3).standard_normal((12, 3)))

    def sim(th, k):
        k1, k2 = jax.random.split(k)
        wild = 1e6 * jax.random.normal(k1, (12, 3))
        return (A + wild) @ th + jax.random.normal(k2, (12,))

    fc = fisher_forecast(sim, np.zeros(3), jax.random.PRNGKey(0), n_jacobian=4, summary_cov=np.eye(12))
    assert np.all(fc.jacobian_noise > 0.5)
    clean = fisher_forecast(_noisy_linear(A), np.zeros(3), jax.random.PRNGKey(0), n_jacobian=4, summary_cov=np.eye(12))
    np.testing.assert_allclose(clean.jacobian_noise, 0.0, atol=1e-12)


def test_noise_subtracted_information_is_unbiased_and_needs_a_noise_estimate():
    """F - B (B the Jacobian-noise estimate) averages to the noise-free J^T C^-1 J, where the plain F is biased
    high by sigma_J^2 S / K per diagonal entry; the clipping at 0 does not act when the information is well
    above the noise (checked), and the result keeps the prior and drops the noise estimate."""
    rng = np.random.default_rng(11)
    S, P, K, sj = 30, 2, 4, 0.2
    A = rng.standard_normal((S, P))
    raw, sub = [], []
    for _ in range(400):
        Jk = A + sj * rng.standard_normal((K, S, P))
        J = Jk.mean(axis=0)
        fc = FisherForecast(names=("a", "b"), theta0=np.zeros(P), jacobian=J, summary_cov=np.eye(S),
                            data_fisher=J.T @ J, prior_fisher=np.eye(P),
                            jacobian_noise_fisher=np.asarray(jacobian_noise_fisher(Jk, np.eye(S))))
        ns = fc.noise_subtracted()
        np.testing.assert_allclose(ns.data_fisher, fc.data_fisher - fc.jacobian_noise_fisher, rtol=1e-12, atol=1e-12)
        raw.append(fc.data_fisher)
        sub.append(ns.data_fisher)
    truth = A.T @ A
    bias = sj**2 * S / K  # 0.3, against a standard error of the mean of ~0.1 on entries ~30
    np.testing.assert_allclose(np.mean(raw, axis=0) - truth, bias * np.eye(P), atol=0.1)
    np.testing.assert_allclose(np.mean(sub, axis=0), truth, atol=0.1)
    assert ns.jacobian_noise_fisher is None and np.array_equal(ns.prior_fisher, np.eye(P))
    assert np.all(ns.sigma >= fc.sigma)
    one_key = FisherForecast(names=("a", "b"), theta0=np.zeros(P), jacobian=A, summary_cov=np.eye(S),
                             data_fisher=A.T @ A, jacobian_noise_fisher=np.full((P, P), np.nan))
    with pytest.raises(FisherError, match="n_jacobian >= 2"):
        one_key.noise_subtracted()
