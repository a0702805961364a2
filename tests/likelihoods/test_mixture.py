"""Gaussian-mixture likelihood: scipy reference, gradients, masks, membership calibration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp as np_logsumexp
from scipy.stats import multivariate_normal

from jaxhalo.frames import li_velocity_components
from jaxhalo.likelihoods import mixture
from jaxhalo.mocks.populations import population_mock

RTOL = 1e-10


def _problem(seed=0, N=40, K=3, D=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 50, (N, D))
    means = rng.normal(0, 30, (K, D))
    scales = rng.uniform(20, 90, (K, D))
    w = rng.dirichlet(np.ones(K))
    err = rng.uniform(1, 30, (N, D))
    A = rng.normal(size=(K, D, D))
    covs = np.einsum("kij,klj->kil", A, A) * 300 + np.eye(D) * 100
    Ae = rng.normal(size=(N, D, D))
    ecov = np.einsum("nij,nlj->nil", Ae, Ae) * 20 + np.eye(D) * 5
    return x, means, scales, w, err, covs, ecov


def _scipy_per_star(x, means, comp_covs, w, err_covs):
    """Independent reference: scipy multivariate_normal with each star's own total covariance."""
    N, K = x.shape[0], means.shape[0]
    lp = np.empty((N, K))
    for i in range(N):
        for k in range(K):
            lp[i, k] = multivariate_normal(means[k], comp_covs[k] + err_covs[i]).logpdf(x[i])
    return np_logsumexp(lp + np.log(w), axis=1), lp


@pytest.mark.parametrize("comp_kind", ["diag", "full"])
@pytest.mark.parametrize("err_kind", ["diag", "full", "none"])
def test_matches_scipy(comp_kind, err_kind):
    x, means, scales, w, err, covs, ecov = _problem()
    N, D = x.shape
    comp_covs = np.stack([np.diag(s**2) for s in scales]) if comp_kind == "diag" else covs
    if err_kind == "diag":
        errors, err_covs = err, np.stack([np.diag(e**2) for e in err])
    elif err_kind == "full":
        errors, err_covs = ecov, ecov
    else:
        errors, err_covs = None, np.zeros((N, D, D))
    kw = dict(scales=scales) if comp_kind == "diag" else dict(covariances=covs)
    ref, ref_lp = _scipy_per_star(x, means, comp_covs, w, err_covs)
    got = mixture.mixture_log_likelihood_per_star(x, means, errors=errors, weights=w, **kw)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=RTOL)
    tot = mixture.mixture_log_likelihood(x, means, errors=errors, weights=w, **kw)
    np.testing.assert_allclose(float(tot), ref.sum(), rtol=RTOL)
    comp = mixture.component_log_densities(x, means, errors=errors, **kw)
    np.testing.assert_allclose(np.asarray(comp), ref_lp, rtol=RTOL)
    # membership probabilities, Li et al. eq. 4
    p = mixture.membership_probabilities(x, means, errors=errors, weights=w, **kw)
    ref_p = np.exp(ref_lp + np.log(w) - ref[:, None])
    np.testing.assert_allclose(np.asarray(p), ref_p, rtol=1e-9, atol=1e-13)


def test_mask_padding_is_exact_and_nan_safe():
    x, means, scales, w, err, *_ = _problem(1)
    xp = np.concatenate([x, np.full((7, 4), np.nan)])
    ep = np.concatenate([err, np.full((7, 4), np.nan)])
    mask = np.concatenate([np.ones(len(x)), np.zeros(7)])
    ref = mixture.mixture_log_likelihood(x, means, scales=scales, errors=err, weights=w)
    got = mixture.mixture_log_likelihood(xp, means, scales=scales, errors=ep, weights=w, mask=mask)
    np.testing.assert_allclose(float(got), float(ref), rtol=1e-13)
    g = jax.grad(lambda m: mixture.mixture_log_likelihood(xp, m, scales=scales, errors=ep, weights=w, mask=mask))(
        jnp.asarray(means)
    )
    g0 = jax.grad(lambda m: mixture.mixture_log_likelihood(x, m, scales=scales, errors=err, weights=w))(jnp.asarray(means))
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(np.asarray(g), np.asarray(g0), rtol=1e-12)


def _fd_grad(f, p, h=1e-5):
    p = np.asarray(p, float)
    g = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        e = np.zeros_like(p)
        e[idx] = h
        g[idx] = (f(p + e) - f(p - e)) / (2 * h)
    return g


@pytest.mark.parametrize("err_kind", ["diag", "full"])
def test_gradients_match_finite_differences(err_kind):
    x, means, scales, w, err, covs, ecov = _problem(2, N=25, K=2, D=3)
    errors = err if err_kind == "diag" else ecov
    logits = np.log(w)

    def f(mu, s, lw, L):
        return mixture.mixture_log_likelihood(x, mu, scales=s, errors=errors, log_weights=jax.nn.log_softmax(lw))

    g = jax.grad(f, argnums=(0, 1, 2))(jnp.asarray(means), jnp.asarray(scales), jnp.asarray(logits), None)
    fd_mu = _fd_grad(lambda m: float(f(m, scales, logits, None)), means)
    fd_s = _fd_grad(lambda s: float(f(means, s, logits, None)), scales)
    fd_w = _fd_grad(lambda lw: float(f(means, scales, lw, None)), logits)
    for a, b in zip(g, (fd_mu, fd_s, fd_w)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6, atol=1e-7)

    # full component covariance, differentiated through its Cholesky factor
    Lc = np.linalg.cholesky(covs)

    def fc(L):
        C = jnp.einsum("kij,klj->kil", L, L)
        return mixture.mixture_log_likelihood(x, means, covariances=C, errors=errors, weights=w)

    gL = np.tril(np.asarray(jax.grad(fc)(jnp.asarray(Lc))))
    fdL = np.tril(_fd_grad(lambda L: float(fc(L)), Lc, h=1e-4))
    np.testing.assert_allclose(gL, fdL, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("with_errors", [True, False])
def test_diagonal_reverse_rule_matches_autodiff_of_the_covariance_path(with_errors):
    """The diagonal path's hand-written VJP (mixture._diag_mixture_ll) against jax.grad of the
    general path (Cholesky of diag(s^2) + diag(e^2)), for every input: means, scales, weights,
    and the data and errors themselves; also under vmap, and with padded (masked, NaN) stars."""
    x, means, scales, w, err, *_ = _problem(4, N=60, K=3, D=4)
    errors = err if with_errors else None
    lw = np.log(w)
    rng = np.random.default_rng(5)
    g_star = rng.normal(size=len(x))  # a generic cotangent, not just ones

    def fast(x_, mu, s, lw_, e_):
        return jnp.sum(g_star * mixture.mixture_log_likelihood_per_star(x_, mu, scales=s, errors=e_, log_weights=lw_))

    def slow(x_, mu, s, lw_, e_):
        cov = jax.vmap(jnp.diag)(s**2)
        err_cov = None if e_ is None else jax.vmap(jnp.diag)(e_**2)
        ll = mixture.mixture_log_likelihood_per_star(x_, mu, covariances=cov, errors=err_cov, log_weights=lw_)
        return jnp.sum(g_star * ll)

    args = tuple(jnp.asarray(a) if a is not None else None for a in (x, means, scales, lw, errors))
    argnums = (0, 1, 2, 3, 4) if with_errors else (0, 1, 2, 3)
    ga = jax.grad(fast, argnums=argnums)(*args)
    gb = jax.grad(slow, argnums=argnums)(*args)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12 * np.abs(np.asarray(b)).max())
    # vmap over parameter sets
    batch = jnp.stack([args[1] + i for i in range(3)])
    gv = jax.vmap(jax.grad(fast, argnums=1), in_axes=(None, 0, None, None, None))(args[0], batch, *args[2:])
    gs = [jax.grad(slow, argnums=1)(args[0], m, *args[2:]) for m in batch]
    np.testing.assert_allclose(np.asarray(gv), np.asarray(gs), rtol=1e-10)
    # padded stars: NaN data with mask 0 leave value and gradients unchanged
    xp = jnp.concatenate([args[0], jnp.full((5, 4), jnp.nan)])
    ep = None if errors is None else jnp.concatenate([args[4], jnp.full((5, 4), jnp.nan)])
    mask = jnp.concatenate([jnp.ones(len(x)), jnp.zeros(5)])

    def padded(mu, s):
        return mixture.mixture_log_likelihood(xp, mu, scales=s, errors=ep, log_weights=args[3], mask=mask)

    def plain(mu, s):
        return mixture.mixture_log_likelihood(args[0], mu, scales=s, errors=args[4], log_weights=args[3])

    for a, b in zip(jax.grad(padded, argnums=(0, 1))(args[1], args[2]), jax.grad(plain, argnums=(0, 1))(args[1], args[2])):
        assert np.all(np.isfinite(np.asarray(a)))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)


@pytest.mark.parametrize("with_errors", [True, False])
def test_fused_total_matches_autodiff_of_the_covariance_path(with_errors, monkeypatch):
    """The diagonal total's one-pass rule (mixture._diag_mixture_total, fused row sums in blocks of 32
    stars split 3 ways, so the loop, the groups and both remainders run) against jax.grad of the general
    path's per-star sum, for every input including the data, the errors and fractional star weights
    (mask), with NaN-padded stars; forward-over-reverse (jax.hessian, in the means) against
    reverse-over-reverse."""
    import jaxhalo.jax_utils as jax_utils

    monkeypatch.setattr(jax_utils, "CPU_SUM_BLOCK", 32)
    monkeypatch.setattr(jax_utils, "CPU_SUM_SPLIT", 3)
    monkeypatch.setattr(jax_utils, "CPU_SUM_MIN_GROUP", 4)
    x, means, scales, w, err, *_ = _problem(6, N=110, K=2, D=4)
    rng = np.random.default_rng(6)
    weight = rng.uniform(0.2, 1.0, len(x)) * (rng.uniform(size=len(x)) > 0.1)
    x = np.where(weight[:, None] > 0, x, np.nan)  # dropped stars carry NaN data
    args = tuple(jnp.asarray(a) for a in (x, means, scales, np.log(w), err if with_errors else np.zeros_like(err), weight))

    def fast(x_, mu, s, lw_, e_, m_):
        return mixture.mixture_log_likelihood(x_, mu, scales=s, errors=e_ if with_errors else None, log_weights=lw_, mask=m_)

    def slow(x_, mu, s, lw_, e_, m_):
        cov = jax.vmap(jnp.diag)(s**2)
        err_cov = jax.vmap(jnp.diag)(e_**2) if with_errors else None
        return jnp.sum(mixture.mixture_log_likelihood_per_star(x_, mu, covariances=cov, errors=err_cov, log_weights=lw_, mask=m_))

    assert float(jax.jit(fast)(*args)) == pytest.approx(float(slow(*args)), rel=1e-13)
    argnums = (0, 1, 2, 3, 4, 5) if with_errors else (0, 1, 2, 3, 5)
    ga = jax.jit(jax.grad(fast, argnums=argnums))(*args)
    gb = jax.jit(jax.grad(slow, argnums=argnums))(*args)
    for a, b in zip(ga, gb):
        a, b = np.nan_to_num(np.asarray(a)), np.nan_to_num(np.asarray(b))
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())
    if with_errors:
        ha = jax.jit(jax.hessian(fast, argnums=1))(*args)
        hb = jax.jit(jax.jacrev(jax.jacrev(slow, argnums=1), argnums=1))(*args)
        np.testing.assert_allclose(np.asarray(ha), np.asarray(hb), rtol=1e-9, atol=1e-11 * np.abs(np.asarray(hb)).max())


def test_jit_and_vmap_over_parameter_sets():
    x, means, scales, w, err, *_ = _problem(3)
    batch = np.stack([means + i for i in range(4)])
    f = jax.jit(jax.vmap(lambda m: mixture.mixture_log_likelihood(x, m, scales=scales, errors=err, weights=w)))
    ref = [float(mixture.mixture_log_likelihood(x, m, scales=scales, errors=err, weights=w)) for m in batch]
    np.testing.assert_allclose(np.asarray(f(batch)), ref, rtol=1e-12)


def test_membership_calibration_on_large_mock():
    """Stars assigned P ~ 0.8 are members 80 +/- 5% of the time (true parameters, 400k stars)."""
    fr = np.array([0.55, 0.45])
    means = np.array([[0.0, -8.0, 4.0, -1.15], [-3.0, -20.0, 5.0, -1.6]])
    sig = np.array([[130.0, 30.0, 35.0, 0.17], [130.0, 103.0, 92.0, 0.43]])
    m = population_mock(jax.random.PRNGKey(11), 400_000, fr, means, sig, np.array([7.0, 31.0, 29.0, 0.05]))
    p = np.asarray(mixture.membership_probabilities(m["x"], means, scales=sig, errors=m["errors"], weights=fr))[:, 0]
    is_mr = np.asarray(m["labels"]) == 0
    for lo, hi in [(0.75, 0.85), (0.15, 0.25), (0.45, 0.55)]:
        sel = (p >= lo) & (p < hi)
        assert sel.sum() > 3000
        frac = is_mr[sel].mean()
        assert abs(frac - p[sel].mean()) < 0.05, (lo, hi, frac, p[sel].mean())


def test_weights_ordering_and_relabel():
    f = jnp.array([0.3, 0.5])
    w = mixture.weights_from_fractions(f)
    np.testing.assert_allclose(np.asarray(w), [0.3, 0.35, 0.35], rtol=1e-14)
    means = jnp.array([[[0.0, -1.6], [1.0, -1.1]]])  # (S=1, K=2, D=2), not ordered in column 1
    scales = jnp.array([[[1.0, 0.4], [2.0, 0.2]]])
    weights = jnp.array([[0.4, 0.6]])
    assert not bool(mixture.is_ordered(means, 1)[0])
    m2, s2, w2 = mixture.relabel_by_column(means, 1, scales, weights)
    assert bool(mixture.is_ordered(m2, 1)[0])
    np.testing.assert_array_equal(np.asarray(s2[0, 0]), [2.0, 0.2])
    np.testing.assert_array_equal(np.asarray(w2[0]), [0.6, 0.4])


def test_bad_input_missing_or_all_nan_column():
    t = {"v_r": np.array([1.0, 2.0, np.nan]), "feh": np.full(3, np.nan), "e": np.ones(3)}
    with pytest.raises(mixture.MixtureInputError, match="'v_phi' is missing"):
        mixture.stack_columns(t, ["v_r", "v_phi"])
    with pytest.raises(mixture.MixtureInputError, match="'feh' is all NaN"):
        mixture.stack_columns(t, ["v_r", "feh"])
    x, e, mask = mixture.stack_columns(t, ["v_r"], ["e"])
    np.testing.assert_array_equal(mask, [1.0, 1.0, 0.0])
    with pytest.raises(mixture.MixtureInputError, match="exactly one"):
        mixture.mixture_log_likelihood(np.zeros((3, 1)), np.zeros((1, 1)), weights=np.ones(1))


def test_li_sign_convention():
    """Li et al. footnote 7: V_phi < 0 prograde (disc sense), V_theta > 0 towards the NGP."""
    r = jnp.array([[-8.0, 0.0, 3.0], [5.0, 5.0, 10.0]])
    # disc-like rotation: v = Omega x r with Omega along -z gives +y at the Sun (x < 0)
    v_rot = jnp.cross(jnp.array([0.0, 0.0, -1.0]), r) * 20.0
    v_up = jnp.array([[0.0, 0.0, 100.0], [0.0, 0.0, 100.0]])
    _, vphi, _ = li_velocity_components(r, v_rot)
    _, _, vth = li_velocity_components(r, v_up)
    assert np.all(np.asarray(vphi) < 0)
    # northward motion: V_theta = |v| sin(colatitude) > 0
    R = np.hypot(r[:, 0], r[:, 1])
    np.testing.assert_allclose(np.asarray(vth), 100.0 * R / np.linalg.norm(r, axis=1), rtol=1e-12)


@pytest.mark.slow
def test_double_component_coverage_over_30_mocks():
    """68% intervals of the double-component fit cover the truth ~68% of the time.

    30 independent mocks (1,500 stars each, Li et al.-like MR/MP populations with per-star
    errors) are fitted at once as 30 'bins' of one NUTS run; coverage is counted over the 17
    parameters and both betas of every mock (570 intervals).
    """
    from jaxhalo.inference.profiles import mixture_profile_model, nuts_profile
    from jaxhalo.likelihoods.binned import anisotropy

    n_mock, n = 30, 1500
    fr = np.array([0.55, 0.45])
    means = np.array([[1.0, -7.0, 3.6, -1.15], [-2.3, -22.8, 4.4, -1.58]])
    sig = np.array([[131.0, 31.0, 35.0, 0.17], [131.0, 103.0, 92.0, 0.43]])
    xs, es = [], []
    for i, k in enumerate(jax.random.split(jax.random.PRNGKey(100), n_mock)):
        m = population_mock(k, n, fr, means, sig, np.array([7.0, 31.0, 29.0, 0.05]))
        xs.append(np.asarray(m["x"])), es.append(np.asarray(m["errors"]))
    data = dict(x=jnp.asarray(np.stack(xs)), errors=jnp.asarray(np.stack(es)), mask=jnp.ones((n_mock, n)))
    mcmc = nuts_profile(mixture_profile_model, data, dict(n_components=2), key=jax.random.PRNGKey(7),
                        num_warmup=400, num_samples=400)
    s = mcmc.get_samples()
    beta = np.asarray(anisotropy(sig[:, 0], sig[:, 2], sig[:, 1]))
    checks = {
        "mean": (np.asarray(s["mean"]), means),
        "sigma": (np.asarray(s["sigma"]), sig),
        "p_mr": (np.asarray(s["weights"])[..., 0], np.float64(fr[0])),
        "beta": (np.asarray(s["beta"]), beta),
    }
    hits = {}
    for name, (d, t) in checks.items():
        lo, hi = np.quantile(d, [0.16, 0.84], axis=0)
        hits[name] = ((lo <= t) & (t <= hi)).reshape(n_mock, -1)
    allhits = np.concatenate([h for h in hits.values()], axis=1)
    cov = allhits.mean()
    print({k: round(float(v.mean()), 3) for k, v in hits.items()}, "overall", round(float(cov), 3), allhits.size)
    assert abs(cov - 0.68) < 0.08
