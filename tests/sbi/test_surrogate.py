"""jaxhalo.sbi.surrogate: the Gauss-Newton linear surrogate of the mean summaries, and NUTS on it
(``synthetic_posterior(mean="linear")``) against the analytic posterior of the linear-Gaussian toy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jaxhalo.sbi.nuts_sl import SyntheticLikelihoodError, fix_parameters, synthetic_posterior
from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_simulator
from jaxhalo.sbi.surrogate import (
    LinearisationError,
    LinearMean,
    fit_linear_mean,
    gauss_newton_update,
    mean_keys,
    prior_moments,
    secant_design,
)
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES

FREE = ("log10_m200", "m_lmc", "log10_lambda_df")
IDX = [PARAMETER_NAMES.index(n) for n in FREE]


@pytest.fixture(scope="module")
def prior():
    return fix_parameters(brooks2026_prior(), FIDUCIAL_THETA, FREE)


def _runner(simulate):
    """The BatchSimulator of fit_linear_mean for a cheap simulator: one vmapped call."""
    batch = jax.jit(jax.vmap(simulate))
    return lambda thetas, keys: np.asarray(batch(jnp.asarray(thetas), keys))


def _reference():
    """A reference theta away from the fiducial point, so the fit has to move."""
    ref = np.array(FIDUCIAL_THETA, dtype=float)
    ref[IDX] = [11.3, 3.0e11, -1.0]
    return ref


def test_prior_moments_are_the_uniform_and_normal_moments(prior):
    m, v, free = prior_moments(brooks2026_prior())
    i = PARAMETER_NAMES.index("log10_m200")
    assert m[i] == pytest.approx(11.5) and v[i] == pytest.approx(2.0**2 / 12)
    j = PARAMETER_NAMES.index("d_lmc")
    assert m[j] == pytest.approx(49.6) and v[j] > 0 and free.all()
    m, v, free = prior_moments(prior)
    assert free.tolist() == [n in FREE for n in PARAMETER_NAMES]
    assert v[j] == 0.0 and m[j] == pytest.approx(49.6)


def test_secant_design_steps_one_free_parameter_at_a_time_inside_the_support(prior):
    lo, hi = prior.bounds
    _, _, free = prior_moments(prior)
    c = np.array(FIDUCIAL_THETA, dtype=float)
    w = np.zeros_like(c)
    w[IDX] = [0.8, 1e10, 0.2]  # M200 +- 0.8 crosses the upper bound 12.5
    pts = secant_design(c, w, free, lo, hi)
    assert pts.shape == (1 + 2 * len(FREE), c.size)
    np.testing.assert_array_equal(pts[0], c)
    moved = np.abs(pts - c) > 0
    assert moved[0].sum() == 0 and np.all(moved[1:].sum(axis=1) == 1)  # one parameter per design point
    assert np.all(pts[:, IDX[0]] < hi[IDX[0]]) and pts[2, IDX[0]] == pytest.approx(12.5 - 2.0e-3)
    assert pts[1, IDX[0]] == pytest.approx(12.0 - 0.8) and pts[4, IDX[1]] == pytest.approx(1.6e11)


def test_gauss_newton_update_is_the_mode_of_the_gaussian_approximation():
    """One update of a linear surrogate = the maximum of the linearised log-likelihood plus Gaussian priors, found
    here independently by scipy's BFGS on that objective (parameters of very different scales included)."""
    rng = np.random.default_rng(0)
    S, P = 7, 3
    B = rng.standard_normal((S, P)) * np.array([1.0, 1e-10, 3.0])
    C = np.diag(rng.uniform(0.5, 2.0, S)) + 0.1
    L = np.linalg.cholesky(C)
    c = np.array([0.2, 1.5e10, -0.3])
    lin = LinearMean(jnp.asarray(c), jnp.asarray(rng.standard_normal(S)), jnp.asarray(B))
    x = rng.standard_normal(S)
    m_p, v_p, K = np.array([0.0, 2e10, 0.5]), np.array([1.0, 1e20, 4.0]), 4
    new, cov = gauss_newton_update(lin, x, L, K, m_p, v_p, np.ones(P, bool))
    scale = np.sqrt(v_p)

    def neg_log_post(u):
        th = c + u * scale
        r = x - np.asarray(lin(jnp.asarray(th)))
        return 0.5 * r @ np.linalg.solve(C, r) / (1 + 1 / K) + 0.5 * np.sum((th - m_p) ** 2 / v_p)

    opt = scipy.optimize.minimize(neg_log_post, np.zeros(P), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose((new - c) / scale, opt.x, atol=1e-6)
    # the covariance is the inverse Hessian of that objective
    W = np.linalg.solve(L, B)
    np.testing.assert_allclose(cov, np.linalg.inv(W.T @ W / (1 + 1 / K) + np.diag(1 / v_p)), rtol=1e-10)


def test_surrogate_likelihood_with_slope_noise_is_the_dense_gaussian():
    """LinearMean.synthetic_log_likelihood (Woodbury, determinant lemma) - (S/2) ln 2 pi - (1/2) ln det C equals
    scipy's multivariate normal log-density with covariance (1 + 1/K) C + U^T U, U = deviations @ (theta - centre);
    without deviations it is jaxhalo.sbi.synthetic.synthetic_log_likelihood of the same mean."""
    import scipy.stats

    from jaxhalo.sbi.synthetic import synthetic_log_likelihood

    rng = np.random.default_rng(1)
    S, P, K = 9, 3, 4
    A = rng.standard_normal((S, S))
    C = A @ A.T + S * np.eye(S)
    L = np.linalg.cholesky(C)
    dev = rng.standard_normal((K, S, P)) * 0.3
    lin = LinearMean(jnp.asarray(rng.standard_normal(P)), jnp.asarray(rng.standard_normal(S)),
                     jnp.asarray(rng.standard_normal((S, P))), jnp.asarray(dev))
    x = rng.standard_normal(S)
    const = 0.5 * S * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(C)[1]
    for theta in (rng.standard_normal(P), 3 * rng.standard_normal(P), np.asarray(lin.centre)):
        U = dev @ (theta - np.asarray(lin.centre))
        dense = scipy.stats.multivariate_normal(np.asarray(lin(jnp.asarray(theta))), (1 + 1 / K) * C + U.T @ U).logpdf(x)
        got = float(lin.synthetic_log_likelihood(jnp.asarray(theta), jnp.asarray(x), K, jnp.asarray(L)))
        assert got - const == pytest.approx(dense, rel=1e-12, abs=1e-10)
    plain = LinearMean(lin.centre, lin.mean, lin.slopes)
    theta = jnp.asarray(rng.standard_normal(P))
    ref = synthetic_log_likelihood(plain, theta, x, jax.random.split(jax.random.key(0), K), L)
    assert float(plain.synthetic_log_likelihood(theta, jnp.asarray(x), K, jnp.asarray(L))) == pytest.approx(float(ref), rel=1e-13)
    g = jax.grad(lambda t: lin.synthetic_log_likelihood(t, jnp.asarray(x), K, jnp.asarray(L)))(theta)
    assert np.all(np.isfinite(np.asarray(g)))


def test_godambe_adjustment_calibrates_the_posterior_of_noisy_slopes():
    """LinearMean(slope_adjustment=True): equal to the plain likelihood (constant included) where the slopes carry no
    noise, fixed parameters (zero slope columns) drop out; and on a linear-Gaussian model with per-key slope noise
    (K = 8 keys, noise as large as the second parameter's slopes, centres off the truth) the Gaussian posterior's
    z of the truth over 4,000 replicates has sd 1.07 adjusted against 1.48 plain (measured; the sd of a
    4,000-replicate sd is 0.011): the adjustment removes >= 3/4 of the excess. What it leaves is second order (the
    noise of N itself)."""
    rng = np.random.default_rng(3)
    S, P, K = 30, 2, 8
    L = np.linalg.cholesky(np.eye(S) * 0.5 + 0.5 / S)  # C = L L^T, correlated summaries
    B = rng.standard_normal((S, P)) * np.array([1.0, 0.3])
    centre, x = jnp.asarray(rng.standard_normal(P)), jnp.asarray(rng.standard_normal(S))
    plain = LinearMean(centre, jnp.asarray(rng.standard_normal(S)), jnp.asarray(B))
    still = LinearMean(plain.centre, plain.mean, plain.slopes, jnp.zeros((K, S, P)), slope_adjustment=True)
    for theta in (centre, centre + 1.0, jnp.asarray(rng.standard_normal(P))):
        want = float(plain.synthetic_log_likelihood(theta, x, K, jnp.asarray(L)))
        assert float(still.synthetic_log_likelihood(theta, x, K, jnp.asarray(L))) == pytest.approx(want, rel=1e-12)
    fixed = LinearMean(centre, plain.mean, plain.slopes.at[:, 1].set(0.0), jnp.asarray(rng.standard_normal((K, S, P))).at[..., 1].set(0.0),
                       slope_adjustment=True)
    assert np.isfinite(float(fixed.synthetic_log_likelihood(centre + 1.0, x, K, jnp.asarray(L))))
    with pytest.raises(ValueError, match="slope_deviations"):
        LinearMean(centre, plain.mean, plain.slopes, slope_adjustment=True).synthetic_log_likelihood(centre, x, K, L)

    def z_of_truth(key, adjust):
        """(P,) z of theta0 = 0 under the Gaussian posterior (flat prior) of one replicate."""
        kc, kb, km, kx = jax.random.split(key, 4)
        C_half = jnp.asarray(L)
        c = jax.random.normal(kc, (P,)) * jnp.array([0.2, 0.6])
        per_key = jnp.asarray(B) + jax.random.normal(kb, (K, S, P))                   # slope noise sd 1 per key
        slopes = per_key.mean(0)
        mean = jnp.asarray(B) @ c + C_half @ jax.random.normal(km, (S,)) / np.sqrt(K)  # the centre's K-key mean
        obs = C_half @ jax.random.normal(kx, (S,))                                   # x at theta0 = 0
        dev = (per_key - slopes) / np.sqrt(K * (K - 1)) if adjust else None  # plain: the Gaussian with the mean slopes
        lin = LinearMean(c, mean, slopes, dev, slope_adjustment=adjust)

        def f(t):
            return lin.synthetic_log_likelihood(t, obs, K, C_half)

        prec = -jax.hessian(f)(c)
        mode = c + jnp.linalg.solve(prec, jax.grad(f)(c))  # exact: f is quadratic
        return mode / jnp.sqrt(jnp.diag(jnp.linalg.inv(prec)))

    keys = jax.random.split(jax.random.key(11), 4000)
    z_plain = np.asarray(jax.jit(jax.vmap(lambda k: z_of_truth(k, False)))(keys))
    z_adj = np.asarray(jax.jit(jax.vmap(lambda k: z_of_truth(k, True)))(keys))
    assert z_plain[:, 1].std() > 1.35  # the slopes' noise over-states the information
    # where the noise estimate exceeds J along a direction, that direction is left flat (improper under this flat
    # prior: no z); it happens in 0.75 % of the replicates
    ok = np.all(np.isfinite(z_adj), axis=1)
    assert 0.0 < 1.0 - ok.mean() < 0.02
    z_adj = z_adj[ok]
    assert np.all(z_adj.std(0) - 1.0 < 0.25 * (z_plain.std(0)[1] - 1.0)) and np.all(z_adj.std(0) > 0.95)
    np.testing.assert_allclose(z_adj.mean(0), 0.0, atol=0.06)


def test_on_the_linear_toy_the_secants_are_exact_and_two_linearisations_converge(prior):
    """The toy's mean is linear, so secants with common random numbers give its slopes to round-off, the first
    update lands on the mode and the second moves by ~0: converged after two linearisations."""
    sim = linear_gaussian_simulator(brooks2026_prior(), n_summaries=20)
    keys = jax.random.split(jax.random.key(2), 4)
    x = np.asarray(sim.fn(jnp.asarray(FIDUCIAL_THETA), jax.random.key(3)))
    L = np.linalg.cholesky(0.3**2 * np.eye(20))
    fit = fit_linear_mean(_runner(sim.fn), x, L, prior, _reference(), keys)
    exact = np.asarray(jax.jacfwd(lambda t: sim.fn(t, keys[0]))(jnp.asarray(FIDUCIAL_THETA)))
    np.testing.assert_allclose(np.asarray(fit.surrogate.slopes)[:, IDX], exact[:, IDX], rtol=1e-9, atol=1e-12 * np.abs(exact).max())
    assert np.all(np.asarray(fit.surrogate.slopes)[:, [i for i in range(12) if i not in IDX]] == 0)
    assert fit.converged and fit.steps.size == 2 and fit.steps[1] < 1e-9
    assert fit.simulations == 2 * 4 * (1 + 2 * len(FREE)) and fit.tangents == 0
    mu = np.asarray(jnp.mean(jax.vmap(lambda k: sim.fn(fit.surrogate.centre, k))(mean_keys(keys)), axis=0))
    np.testing.assert_allclose(np.asarray(fit.surrogate.mean), mu, rtol=1e-12)  # from keys independent of the slopes'
    same = fit_linear_mean(_runner(sim.fn), x, L, prior, _reference(), keys, independent_mean=False)
    mu_same = np.asarray(jnp.mean(jax.vmap(lambda k: sim.fn(same.surrogate.centre, k))(keys), axis=0))
    np.testing.assert_allclose(np.asarray(same.surrogate.mean), mu_same, rtol=1e-12)
    assert np.max(np.abs(mu - mu_same)) > 0.01 and same.simulations == fit.simulations
    tangent = fit_linear_mean(_runner(sim.fn), x, L, prior, _reference(), keys, slopes="tangent",
                              jacobian=lambda th, ks: jnp.mean(jax.vmap(lambda k: jax.jacfwd(sim.fn)(th, k))(ks), axis=0))
    np.testing.assert_allclose(tangent.surrogate.centre, fit.surrogate.centre, rtol=1e-9)
    assert tangent.tangents == 2 * 4 * len(FREE) and tangent.simulations == 2 * 4


def test_with_tangents_the_fixed_point_is_the_stationary_point_of_the_nonlinear_objective(prior):
    """A nonlinear toy (summaries A tanh(u) + noise): Gauss-Newton with exact tangents stops where the gradient of
    (1/2) r^T M r + the Gaussian prior term vanishes -- found independently by scipy's BFGS on the CRN mean."""
    sim = linear_gaussian_simulator(brooks2026_prior(), n_summaries=20)
    m, v, _ = prior_moments(brooks2026_prior())

    def simulate(theta, key):  # the toy's linear map applied to tanh of the standardised parameters
        u = (theta - m) / np.sqrt(v)
        return sim.fn(m + np.sqrt(v) * jnp.tanh(u), key)

    keys = jax.random.split(jax.random.key(5), 4)
    x = np.asarray(simulate(jnp.asarray(FIDUCIAL_THETA), jax.random.key(6)))
    L = np.linalg.cholesky(0.3**2 * np.eye(20))
    jac = jax.jit(lambda th, ks: jnp.mean(jax.vmap(lambda k: jax.jacfwd(simulate)(th, k))(ks), axis=0))
    fit = fit_linear_mean(_runner(simulate), x, L, prior, _reference(), keys, slopes="tangent", jacobian=jac,
                          n_linearisations=20, tol=1e-6, independent_mean=False)  # mean and tangents from one set of keys
    assert fit.converged and fit.steps.size > 2
    pm, pv, _ = prior_moments(prior)
    base = np.asarray(FIDUCIAL_THETA, dtype=float)
    sd = np.sqrt(pv[IDX])

    def objective(u):
        th = base.copy()
        th[IDX] = pm[IDX] + u * sd
        mu = np.asarray(jnp.mean(jax.vmap(lambda k: simulate(jnp.asarray(th), k))(keys), axis=0))
        r = x - mu
        return 0.5 * r @ r / 0.3**2 / (1 + 1 / 4) + 0.5 * np.sum(u**2)

    opt = scipy.optimize.minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-9})
    np.testing.assert_allclose((np.asarray(fit.surrogate.centre)[IDX] - pm[IDX]) / sd, opt.x, atol=1e-4)


def test_non_finite_summaries_at_a_design_point_name_the_parameter(prior):
    def simulate(theta, key):
        return jnp.where(theta[0] > 11.4, jnp.nan, 1.0) + theta[0] * jnp.arange(5.0) + jax.random.normal(key, (5,))

    with pytest.raises(LinearisationError, match=r"non-finite summaries at log10_m200 \+"):
        fit_linear_mean(_runner(simulate), np.zeros(5), np.eye(5), prior, _reference(), jax.random.split(jax.random.key(0), 2))
    with pytest.raises(LinearisationError, match="n_linearisations must be >= 1"):
        fit_linear_mean(_runner(simulate), np.zeros(5), np.eye(5), prior, _reference(), jax.random.split(jax.random.key(0), 2),
                        n_linearisations=0)
    with pytest.raises(SyntheticLikelihoodError, match="mean must be 'simulator' or 'linear'"):
        synthetic_posterior(prior, simulate, np.zeros(5), jax.random.key(0), FIDUCIAL_THETA, mean="quadratic")
    with pytest.raises(SyntheticLikelihoodError, match="refine_keys=2 re-linearises a linear mean"):
        synthetic_posterior(prior, simulate, np.zeros(5), jax.random.key(0), FIDUCIAL_THETA, refine_keys=2)
    with pytest.raises(SyntheticLikelihoodError, match="covariance_noise must be 'percival' or 'none'"):
        synthetic_posterior(prior, simulate, np.zeros(5), jax.random.key(0), FIDUCIAL_THETA, covariance_noise="wishart")
    with pytest.raises(SyntheticLikelihoodError, match="refine_keys must be an integer >= 0"):
        synthetic_posterior(prior, simulate, np.zeros(5), jax.random.key(0), FIDUCIAL_THETA, mean="linear", refine_keys=-1)


def _analytic_posterior(sim, x, key, centre, K, keys, n_cov=4000):
    """(mean, sd) over FREE of the posterior NUTS samples on the toy: the exact linear mean at ``centre`` with
    the noise of the mean's keys (:func:`mean_keys` of ``keys``), and the covariance synthetic_posterior estimated
    there (same keys, Hartlap factor, Percival factor for 20 summaries and 3 parameters)."""
    from jaxhalo.sbi.synthetic import percival_factor

    k_cov = jax.random.split(key, 3)[0]
    sims = jax.vmap(lambda k: sim.fn(centre, k))(jax.random.split(jax.random.fold_in(k_cov, 1), n_cov))
    h = (n_cov - 20 - 2) / (n_cov - 1)
    M = h * np.linalg.inv(np.cov(np.asarray(sims), rowvar=False)) / (1 + 1 / K) / percival_factor(n_cov, 20, 3)
    mu_c = np.asarray(jnp.mean(jax.vmap(lambda k: sim.fn(centre, k))(mean_keys(keys)), axis=0))
    J = np.asarray(jax.jacfwd(lambda t: sim.fn(t, keys[0]))(jnp.asarray(FIDUCIAL_THETA)))[:, IDX]
    cov = np.linalg.inv(J.T @ M @ J)
    return np.asarray(centre)[IDX] + cov @ J.T @ M @ (np.asarray(x) - mu_c), np.sqrt(np.diag(cov))


def _assert_matches(res, mean, sd):
    """NUTS draws against the analytic posterior: 4 Monte Carlo standard errors on the mean, 10 % on the sd."""
    draws = res.free_draws.reshape(-1, 3)
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * sd / np.sqrt(res.min_ess_bulk)), (draws.mean(0), mean, sd)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)


def test_nuts_on_the_surrogate_matches_the_analytic_posterior_of_the_toy_and_costs_no_simulations(prior):
    """Mean "linear" on the toy, from a reference theta 0.7 dex and 2e11 Msun away: the surrogate is exact, so NUTS
    (4 chains x (400 + 800)) must give the analytic posterior of that likelihood (the toy's exact linear mean, the covariance it
    estimated; 4 Monte Carlo standard errors on the mean, 10 % on the sd), with R-hat < 1.01,
    no divergences, and a budget of the covariance (twice) and the linearisations only."""
    sim = linear_gaussian_simulator(brooks2026_prior(), n_summaries=20)
    x = sim.fn(jnp.asarray(FIDUCIAL_THETA), jax.random.key(3))
    key, K = jax.random.key(4), 8
    res = synthetic_posterior(prior, sim.fn, x, key, _reference(), n_keys=K, n_cov=4000, num_warmup=400,
                              num_samples=800, num_chains=4, mean="linear")
    assert res.divergences == 0 and res.max_r_hat < 1.01
    assert res.surrogate["converged"] and res.surrogate["recentred_covariance_simulations"] == 4000
    b = res.budget()
    assert b["nuts_simulation_equivalents"] == 0 and b["surrogate_simulation_equivalents"] == 2 * K * 7
    assert b["total_simulation_equivalents"] == 8000 + 2 * K * 7 == res.n_cov_run + 2 * K * 7
    from jaxhalo.sbi.synthetic import percival_factor

    assert res.covariance_factor == percival_factor(4000, 20, 3) and not res.surrogate["slope_noise"]
    keys = jax.random.split(jax.random.split(key, 3)[1], K)
    _assert_matches(res, *_analytic_posterior(sim, x, key, jnp.asarray(res.surrogate["centres"][-1]), K, keys))


def test_refinement_relinearises_at_the_placement_mode_with_fresh_keys(prior):
    """``refine_keys=K'``: after one (unconverged) Gauss-Newton linearisation from the far reference, C is
    estimated at its mode and the mean linearised once more there with K' fresh keys (``fold_in(k_sim, 1)``) and
    the placement's posterior sigma as design half-widths; NUTS samples that, so it must match the analytic
    posterior with K' keys at the mode; the budget adds the refinement's (1 + 2 P) K' simulations."""
    sim = linear_gaussian_simulator(brooks2026_prior(), n_summaries=20)
    x = sim.fn(jnp.asarray(FIDUCIAL_THETA), jax.random.key(3))
    key, K, K2 = jax.random.key(4), 4, 6
    res = synthetic_posterior(prior, sim.fn, x, key, _reference(), n_keys=K, n_cov=4000, num_warmup=300,
                              num_samples=600, num_chains=2, mean="linear", n_linearisations=1, refine_keys=K2)
    rec, ref = res.surrogate, res.surrogate["refinement"]
    assert not rec["converged"] and rec["linearisations"] == 1 and res.n_keys == K2
    np.testing.assert_array_equal(ref["centres"][0], rec["mode"])
    _, var, free = prior_moments(prior)
    assert np.all(np.asarray(ref["widths"][0])[IDX] >= 0.25 * np.sqrt(var[IDX]) * (1 - 1e-12))
    assert rec["simulations"] == K * 7 + K2 * 7 and res.budget()["total_simulation_equivalents"] == 8000 + K * 7 + K2 * 7
    assert res.divergences == 0 and res.max_r_hat < 1.01
    keys = jax.random.split(jax.random.fold_in(jax.random.split(key, 3)[1], 1), K2)
    _assert_matches(res, *_analytic_posterior(sim, x, key, jnp.asarray(rec["mode"]), K2, keys))


def test_fit_linear_mean_starts_from_the_given_widths_but_not_below_the_floor(prior):
    """``widths``: the first design's half-widths are max(widths, min_scale x prior sigma) for free parameters;
    ``mode`` is the last Gauss-Newton update (inside the support)."""
    sim = linear_gaussian_simulator(brooks2026_prior(), n_summaries=20)
    keys = jax.random.split(jax.random.key(2), 2)
    x = np.asarray(sim.fn(jnp.asarray(FIDUCIAL_THETA), jax.random.key(3)))
    L = np.linalg.cholesky(0.3**2 * np.eye(20))
    _, var, free = prior_moments(prior)
    asked = np.where(free, 0.5 * np.sqrt(var), 0.0)
    asked[IDX[0]] = 1e-6  # below the floor
    fit = fit_linear_mean(_runner(sim.fn), x, L, prior, _reference(), keys, n_linearisations=1, widths=asked)
    want = np.where(free, np.maximum(asked, 0.25 * np.sqrt(var)), 0.0)
    np.testing.assert_allclose(fit.widths[0], want, rtol=1e-12)
    new, _ = gauss_newton_update(fit.surrogate, x, L, 2, *prior_moments(prior))
    np.testing.assert_allclose(fit.mode, new, rtol=1e-12)
