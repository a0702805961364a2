"""jaxhalo.sbi.compression: score compression of the linearised synthetic likelihood -- lossless for exact slopes,
the slopes' noise no longer adding up over every summary, and NUTS on the compressed toy against its analytic
posterior."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.sbi.compression import compress_linear_mean, compressed_covariance_cholesky, score_compression
from jaxhalo.sbi.nuts_sl import SyntheticLikelihoodError, fix_parameters, synthetic_posterior
from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_simulator
from jaxhalo.sbi.surrogate import LinearisationError, LinearMean, gauss_newton_update, mean_keys, prior_moments
from jaxhalo.sbi.synthetic import covariance_cholesky, percival_factor
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES

FREE = ("log10_m200", "m_lmc", "log10_lambda_df")
IDX = [PARAMETER_NAMES.index(n) for n in FREE]


@pytest.fixture(scope="module")
def prior():
    return fix_parameters(brooks2026_prior(), FIDUCIAL_THETA, FREE)


def _linear_model(rng, S=20):
    """(slopes B (S, 12) with the three FREE columns non-zero, C (S, S) SPD, free mask) of a random linear model;
    the slopes scaled to each parameter's units (M_LMC in Msun) so that the compression's row scaling matters."""
    scale = np.array([0.1, 1e11, 1.0])
    B = np.zeros((S, 12))
    B[:, IDX] = rng.normal(size=(S, 3)) / scale
    A = rng.normal(size=(S, S))
    C = A @ A.T / S + 0.5 * np.eye(S)
    free = np.zeros(12, dtype=bool)
    free[IDX] = True
    return B, C, free


def test_with_exact_slopes_the_compressed_gaussian_posterior_is_the_full_one(prior):
    """Sufficiency: for a linear mean with the exact slopes and W from them, the Gauss-Newton posterior (mode and
    covariance) of the F = 3 compressed summaries equals that of the S = 20 summaries (1e-8 relative), with any
    observation and centre."""
    rng = np.random.default_rng(0)
    B, C, free = _linear_model(rng)
    L = np.linalg.cholesky(C)
    centre = np.array(FIDUCIAL_THETA, dtype=float)
    lin = LinearMean(jnp.asarray(centre), jnp.asarray(rng.normal(size=20)), jnp.asarray(B))
    x = rng.normal(size=20) * 2.0
    W = score_compression(B, L, free)
    assert W.shape == (3, 20)
    moments = prior_moments(prior)
    full = gauss_newton_update(lin, x, L, 4, *moments)
    Lc = np.linalg.cholesky(W @ C @ W.T)
    comp = gauss_newton_update(compress_linear_mean(lin, W), W @ x, Lc, 4, *moments)
    np.testing.assert_allclose(comp[0][IDX], full[0][IDX], rtol=1e-8)
    np.testing.assert_allclose(comp[1][np.ix_(IDX, IDX)], full[1][np.ix_(IDX, IDX)], rtol=1e-8)


def test_noisy_slopes_over_state_the_information_and_compression_does_not():
    """The module's claim, by Monte Carlo: slopes from K = 4 noisy keys over S = 50 summaries give an information
    B^T C^-1 B whose mean over 2,000 replicates exceeds the true one by the noise summed over the summaries
    (trace of C^-1 Var B, predicted to 3 %), while the compressed information (W from independent noisy slopes)
    is on average no larger than the true one (the compression can only lose information)."""
    rng = np.random.default_rng(1)
    S, K, n_rep = 50, 4, 2000
    b = rng.normal(size=S) * 0.15              # a weak true slope: per-summary noise comparable to the signal
    C = np.eye(S)
    noise_sd = 0.3                             # per-key slope noise (per summary)
    true_info = b @ b
    full, comp = [], []
    for _ in range(n_rep):
        bk = b + noise_sd * rng.normal(size=(K, S))          # the likelihood's slopes (K keys)
        bw = b + noise_sd * rng.normal(size=(K, S))          # independent slopes for W
        bh, w = bk.mean(0), bw.mean(0)
        full.append(bh @ bh)
        comp.append((w @ bh) ** 2 / (w @ C @ w))
    predicted = true_info + S * noise_sd**2 / K
    assert abs(np.mean(full) / predicted - 1) < 0.03
    assert np.mean(full) > 2 * true_info         # here 2.3x: the noise dominates
    sem = np.std(comp) / np.sqrt(n_rep)
    assert np.mean(comp) < true_info + 3 * sem


def test_compressed_covariance_factors_are_those_of_f_summaries():
    """With W the identity (F = S) the compressed factor is the plain one: Hartlap for S summaries and Percival
    m1 for (n, S, P); with F = 3 rows the factors are those of 3 summaries."""
    rng = np.random.default_rng(2)
    sims = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 10))
    C = np.cov(sims, rowvar=False)
    L, h, f = compressed_covariance_cholesky(np.eye(10), C, 300, 4)
    L0, h0 = covariance_cholesky(sims)
    assert h == pytest.approx(h0) and f == pytest.approx(percival_factor(300, 10, 4))
    np.testing.assert_allclose(L, np.asarray(L0) * np.sqrt(f), rtol=1e-10)
    _, h3, f3 = compressed_covariance_cholesky(rng.normal(size=(3, 10)), C, 300, 4, percival=True)
    assert h3 == pytest.approx((300 - 3 - 2) / 299) and f3 == pytest.approx(percival_factor(300, 3, 4))


def test_a_parameter_no_summary_responds_to_is_refused():
    B = np.zeros((5, 12))
    B[:, IDX[0]] = 1.0
    free = np.zeros(12, dtype=bool)
    free[IDX] = True
    with pytest.raises(LinearisationError, match=r"free parameter\(s\) \[1, 2\]"):
        score_compression(B, np.eye(5), free)


def test_compression_needs_the_refinement(prior):
    sim = linear_gaussian_simulator(brooks2026_prior(), n_summaries=20)
    with pytest.raises(SyntheticLikelihoodError, match="needs mean='linear' and refine_keys > 0"):
        synthetic_posterior(prior, sim.fn, np.zeros(20), jax.random.key(0), FIDUCIAL_THETA, mean="linear",
                            compression="score")
    with pytest.raises(SyntheticLikelihoodError, match="compression must be 'none' or 'score'"):
        synthetic_posterior(prior, sim.fn, np.zeros(20), jax.random.key(0), FIDUCIAL_THETA, compression="pca")


def test_nuts_on_the_compressed_toy_matches_its_analytic_posterior(prior):
    """``compression="score"`` on the linear toy after one Gauss-Newton linearisation and a K' = 6 refinement:
    NUTS samples the likelihood of the 3 compressed summaries -- W from the placement's slopes (exact on the toy)
    and C at theta_ref, covariance W C_mode W^T with the Hartlap and Percival factors of 3 summaries -- so it must
    match that Gaussian posterior (4 Monte Carlo standard errors on the mean, 10 % on the sd), which for exact
    slopes is the uncompressed posterior up to the noise of the covariances."""
    sim = linear_gaussian_simulator(brooks2026_prior(), n_summaries=20)
    x = sim.fn(jnp.asarray(FIDUCIAL_THETA), jax.random.key(3))
    key, K, K2, n_cov = jax.random.key(4), 4, 6, 4000
    ref = np.array(FIDUCIAL_THETA, dtype=float)
    ref[IDX] = [11.3, 3.0e11, -1.0]
    res = synthetic_posterior(prior, sim.fn, x, key, ref, n_keys=K, n_cov=n_cov, num_warmup=300, num_samples=600,
                              num_chains=2, mean="linear", n_linearisations=1, refine_keys=K2, compression="score")
    rec = res.surrogate
    assert rec["compression"]["summaries"] == 3 and res.divergences == 0 and res.max_r_hat < 1.01
    assert res.covariance_factor == pytest.approx(percival_factor(n_cov, 3, 3))
    assert res.budget()["total_simulation_equivalents"] == 2 * n_cov + K * 7 + K2 * 7  # no extra simulations

    k_cov, k_sim, _ = jax.random.split(key, 3)
    mode = jnp.asarray(rec["mode"])
    cov_at = {}
    for name, theta, kc in (("ref", jnp.asarray(ref), k_cov), ("mode", mode, jax.random.fold_in(k_cov, 1))):
        cov_at[name] = np.cov(np.asarray(jax.vmap(lambda k: sim.fn(theta, k))(jax.random.split(kc, n_cov))), rowvar=False)
    J = np.zeros((20, 12))
    J[:, IDX] = np.asarray(jax.jacfwd(lambda t: sim.fn(t, k_sim))(jnp.asarray(FIDUCIAL_THETA)))[:, IDX]
    h20 = (n_cov - 22) / (n_cov - 1)
    L_ref = np.linalg.cholesky(cov_at["ref"] / h20 * percival_factor(n_cov, 20, 3))
    W = score_compression(J, L_ref, np.isin(np.arange(12), IDX))
    keys = jax.random.split(jax.random.fold_in(k_sim, 1), K2)
    mu_c = np.asarray(jnp.mean(jax.vmap(lambda k: sim.fn(mode, k))(mean_keys(keys)), axis=0))
    h3 = (n_cov - 5) / (n_cov - 1)
    M = h3 * np.linalg.inv(W @ cov_at["mode"] @ W.T) / (1 + 1 / K2) / percival_factor(n_cov, 3, 3)
    Jc = W @ J[:, IDX]
    post_cov = np.linalg.inv(Jc.T @ M @ Jc)
    mean = np.asarray(mode)[IDX] + post_cov @ Jc.T @ M @ (W @ (np.asarray(x) - mu_c))
    sd = np.sqrt(np.diag(post_cov))
    draws = res.free_draws.reshape(-1, 3)
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * sd / np.sqrt(res.min_ess_bulk)), (draws.mean(0), mean, sd)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)
