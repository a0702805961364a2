"""Finite values and bounded gradients of the likelihoods over the whole prior box (issue 14, item 5).

The grid covers the apex poles exactly (sin b = +-1) and just inside them (+-(1 - 1e-16), which rounds
to the last float64 before +-1), the longitude ends (-pi, 0, pi, 2 pi), V = 0 and V_max, the mean
velocities at +-v_mean_max, and the dispersions at the bounds of both reflex priors (5 and 500 km/s
for 'chandra', 10 and 1e4 km/s = tau^-1/2 at tau = 1e-2, 1e-8 for 'reference').

Bounds asserted, and why they hold:

* Every gradient component is below an analytic bound built from the data and the prior box
  (:func:`_reflex_bound`): each star's mean observables lie within R = |obs| + |sun_obs| +
  |proj| V_max |n| + |basis_proj| v_mean_max of the data; the total variances are at least
  S^2_min = err^2 + sigma_min^2 (v_los) and lambda_min(C_pm) + sigma_min^2 / (k d)^2 (proper
  motions). Then |d ll / d mean| <= R / S^2_min, |d ll / d sigma| <= sigma_max (1 / S^2 + R^2 / S^4),
  and the apex enters through |dn/dl| <= 1 and |dn/ds| <= sqrt(1 + 1 / APEX_COS_MIN^2) (the floor of
  :func:`jaxhalo.frames.cos_from_sin`). The continuity model on stars inside its anchors
  (40 <= r <= 120 kpc, interpolation weights in [0, 1]) keeps every interpolated parameter inside
  the box and multiplies the log-dispersion chain factor by at most sigma_max / sigma_min.
* Tighter, for the apex: |dlnL/ds| <= V |dlnL/dtravel| sqrt(1 + 1 / APEX_COS_MIN^2), with the
  travel-vector gradient taken from the likelihood of the travel vector itself (no pole there).
  Before the floor, d cos b / ds = -s / cos b was 6.7e7 at s = 1 - 1.1e-16 (likelihood gradients of
  4e9 on 200 stars): this assertion failed there by a factor 67.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.frames import APEX_COS_MIN, MS_ROTATION, apex_vector, cos_from_sin
from jaxhalo.inference.priors import PriorSet, from_unit_interval, unit_prior_table
from jaxhalo.likelihoods.dipole import dipole_log_likelihood
from jaxhalo.likelihoods.mixture import mixture_log_likelihood
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel, reflex_log_likelihood

S_EDGES = (-1.0, -(1.0 - 1e-16), 0.3, 1.0 - 1e-16, 1.0)
L_EDGES = (-math.pi, 0.0, math.pi, 2.0 * math.pi)
SIGMAS = (5.0, 500.0, 10.0, 1e4)  # chandra [5, 500]; reference tau in [1e-8, 1e-2] -> sigma in [10, 1e4]
V_MAX, V_MEAN_MAX = PriorSet().v_travel_max, PriorSet().v_mean_max
JAC_S = math.sqrt(1.0 + APEX_COS_MIN**-2)  # bound on |dn/ds|


def _grid(spec: ReflexModel, sigmas=SIGMAS) -> dict[str, np.ndarray]:
    """Points (P,) per parameter: every (s, l) edge pair x len(sigmas) corners of the other parameters."""
    lat, lon = [n for n in spec.base_names if n.startswith("apex_s")][0], [n for n in spec.base_names if n.startswith("apex_l") or n.startswith("apex_L")][0]
    rows = []
    m = len(sigmas)
    for (s, l), c in itertools.product(itertools.product(S_EDGES, L_EDGES), range(m)):
        base = {"v_travel": (0.0, V_MAX)[c % 2], lat: s, lon: l, "vr": (-1) ** c * V_MEAN_MAX,
                "vphi": (-1) ** (c // 2) * V_MEAN_MAX, "vtheta": -((-1) ** c) * V_MEAN_MAX,
                "sigma_los": sigmas[c], "sigma_l": sigmas[(c + 1) % m], "sigma_b": sigmas[(c + 2) % m]}
        if spec.form == "constant":
            rows.append(base)
        else:  # the outer anchor mirrors the inner one: opposite pole, other corner
            outer = {**base, lat: -s, lon: l - math.pi, "v_travel": V_MAX - base["v_travel"], "vr": -base["vr"],
                     "sigma_los": sigmas[(c + 3) % m], "sigma_l": sigmas[c], "sigma_b": sigmas[(c + 1) % m]}
            s0, s1 = spec.suffixes
            rows.append({**{k + s0: v for k, v in base.items()}, **{k + s1: v for k, v in outer.items()}})
    return {k: np.array([r[k] for r in rows]) for k in spec.param_names}


@pytest.fixture(scope="module")
def data():
    """80 stars at heliocentric distances 50-110 kpc (so 40 < r_gal < 120 kpc), 5% distance errors."""
    rng = np.random.default_rng(3)
    n = 80
    d = rng.uniform(50.0, 110.0, n)
    return ReflexData.from_arrays(
        rng.uniform(-np.pi, np.pi, n), np.arcsin(rng.uniform(-1, 1, n)), d, 0.05 * d,
        rng.normal(0.0, 120.0, n), rng.uniform(1.0, 10.0, n), rng.normal(0.0, 0.3, n), rng.normal(0.0, 0.3, n),
        rng.uniform(0.03, 0.2, n), rng.uniform(0.03, 0.2, n), rng.uniform(-0.3, 0.3, n))


def _reflex_bound(spec: ReflexModel, data: ReflexData, sigmas=SIGMAS) -> dict[str, float]:
    """Analytic bound on |d ln L / d p| over the prior box, per parameter (see the module docstring)."""
    smin, smax = min(sigmas), max(sigmas)
    obs, proj, bproj = np.asarray(data.obs), np.asarray(data.proj), np.asarray(data.basis_proj)
    n_max = math.sqrt(1.0 + APEX_COS_MIN**2)  # |n| with the floor
    R = (np.abs(obs) + np.abs(np.asarray(data.sun_obs)) + np.abs(proj).sum(-1) * V_MAX * n_max
         + np.abs(bproj).sum(-1) * V_MEAN_MAX)  # (N, 3)
    S2 = np.asarray(data.var_los) + smin**2
    pm = np.asarray(data.pm_cov)
    lam = np.linalg.eigvalsh(pm)[:, 0] + smin**2 * np.asarray(data.inv_f2)
    R_pm = np.hypot(R[:, 1], R[:, 2])
    g_los, g_pm = R[:, 0] / S2, R_pm / lam  # bounds on |d ll / d mean| per star

    def through(a_los, a_pm):  # sum over stars of the bound on |d ll / d p| given |dm/dp| per star
        return float(np.sum(g_los * a_los + g_pm * a_pm))

    p_los, p_pm = np.linalg.norm(proj[:, 0], axis=-1), np.linalg.norm(proj[:, 1:], axis=(-2, -1))
    out = {"v_travel": through(p_los * n_max, p_pm * n_max), "apex_l": through(p_los * V_MAX, p_pm * V_MAX),
           "apex_sinb": through(p_los * V_MAX * JAC_S, p_pm * V_MAX * JAC_S)}
    for j, n in enumerate(("vr", "vphi", "vtheta")):
        out[n] = through(np.abs(bproj[:, 0, j]), np.linalg.norm(bproj[:, 1:, j], axis=-1))
    out["sigma_los"] = float(np.sum(smax * (1 / S2 + R[:, 0] ** 2 / S2**2)))
    f = np.asarray(data.inv_f2)
    out["sigma_l"] = out["sigma_b"] = float(np.sum(smax * f * (1 / lam + R_pm**2 / lam**2)))
    out["apex_L"], out["apex_sinB"] = out["apex_l"], out["apex_sinb"]  # MS rotation: same norms
    if spec.form == "constant":
        return {n: out[n] for n in spec.param_names}
    ratio = smax / smin  # d sigma(r) / d sigma_anchor <= sigma(r) / sigma_anchor <= smax / smin
    return {n + s: out[n] * (ratio if n.startswith("sigma") else 1.0) for s in spec.suffixes for n in spec.base_names}


@pytest.mark.parametrize("spec", [ReflexModel("constant", "galactic"), ReflexModel("continuity", "ms")],
                         ids=["constant-galactic", "continuity-ms"])
def test_reflex_value_and_gradient_finite_and_bounded_on_prior_box(spec, data):
    """Value and gradient at 100-120 grid points; the constant model also at sigma = 0 (finite: the
    observational errors are part of the same variance) and against the travel-vector gradient."""
    r = np.asarray(data.r_gal)
    assert r.min() >= 40.0 and r.max() <= 120.0  # interpolation weights in [0, 1] (the bound needs it)
    const = spec.form == "constant"
    sigmas = (0.0,) + SIGMAS if const else SIGMAS
    grid = _grid(spec, sigmas)

    def point(p):
        val, g = jax.value_and_grad(lambda q: spec.log_likelihood(q, data))(p)
        if not const:
            return val, g, val
        travel = p["v_travel"] * apex_vector(p["apex_l"], p["apex_sinb"])
        rest = (p["vr"], p["vphi"], p["vtheta"], p["sigma_los"], p["sigma_l"], p["sigma_b"])
        gt = jax.grad(lambda t: jnp.sum(reflex_log_likelihood(data, t, *rest)))(travel)
        return val, g, jnp.linalg.norm(gt)

    val, grad, gt = jax.jit(jax.vmap(point))({k: jnp.asarray(v) for k, v in grid.items()})
    assert np.all(np.isfinite(np.asarray(val)))
    bound = _reflex_bound(spec, data, sigmas)
    for name, g in grad.items():
        g = np.asarray(g)
        assert np.all(np.isfinite(g)), name
        assert np.max(np.abs(g)) <= bound[name], (name, np.max(np.abs(g)), bound[name])
    if const:  # |dlnL/ds| <= V |dlnL/dtravel| sqrt(1 + 1/APEX_COS_MIN^2), |dlnL/dl| <= V |dlnL/dtravel|
        V, gt = grid["v_travel"], np.asarray(gt)
        assert np.all(np.abs(np.asarray(grad["apex_sinb"])) <= V * gt * JAC_S * (1 + 1e-9))
        assert np.all(np.abs(np.asarray(grad["apex_l"])) <= V * gt * (1 + 1e-9))
        # the value is continuous at the poles: s = +-(1 - 1.1e-16) and s = +-1 differ only through n_z = s
        v = np.asarray(val).reshape(len(S_EDGES), len(L_EDGES), -1)
        np.testing.assert_allclose(v[1], v[0], rtol=1e-12)
        np.testing.assert_allclose(v[-2], v[-1], rtol=1e-12)


def test_cos_from_sin_floor_and_jacobian():
    s = np.array([-1.0, -(1 - 1e-16), -(1 - 1e-12), -0.5, 0.0, 0.5, 1 - 1e-12, 1 - 1e-16, 1.0, 1.05])
    c, dc, n = jax.jit(lambda s: (cos_from_sin(s), jax.vmap(jax.grad(cos_from_sin))(s), apex_vector(0.3, s)))(s)
    c, dc, n = np.asarray(c), np.asarray(dc), np.asarray(n)
    assert np.all(np.isfinite(dc)) and np.max(np.abs(dc)) <= 1 / APEX_COS_MIN
    np.testing.assert_allclose(c[3:6], np.sqrt(1 - s[3:6] ** 2), rtol=1e-15)
    assert c[0] == c[1] == c[-2] == c[-1] == APEX_COS_MIN  # within 5e-13 of a pole (or beyond it): the floor
    np.testing.assert_allclose(c[6], math.sqrt(2e-12), rtol=1e-4)  # (1 - s)(1 + s), not 1 - s^2, keeps it accurate
    np.testing.assert_allclose(np.linalg.norm(n[:-1], axis=-1), 1.0, atol=1e-12)
    # the MS parameterisation rotates the same vector
    np.testing.assert_allclose(np.linalg.norm(n[:-1] @ np.asarray(MS_ROTATION), axis=-1), 1.0, atol=1e-12)


@pytest.mark.slow
def test_reflex_sampler_coordinates_finite_at_the_poles(data):
    """The NUTS / MAP coordinates z = logit(u) of the unit-cube model, out to u = 0 and 1 exactly (|z| = 40)."""
    spec, priors = ReflexModel("constant", "galactic"), PriorSet(kind="reference")
    table = unit_prior_table(spec, priors)

    def loglike(z):
        u = jax.nn.sigmoid(z)
        v = {site: from_unit_interval(kind, lo, hi, u[i]) for i, (site, kind, lo, hi) in enumerate(table)}
        p = {n: (v["tau" + n[5:]] ** -0.5 if n.startswith("sigma") else v[n]) for n in spec.param_names}
        return spec.log_likelihood(p, data)

    zs = np.array(list(itertools.product((-40.0, -36.0, 0.0, 36.0, 40.0), repeat=2)))  # (sin b, one other) corners
    idx = [site for site, *_ in table].index("apex_sinb")
    z = np.zeros((len(zs), len(table)))
    z[:, idx] = zs[:, 0]
    z[:, [i for i in range(len(table)) if i != idx]] = zs[:, 1:2]
    val, g = jax.jit(jax.vmap(jax.value_and_grad(loglike)))(jnp.asarray(z))
    assert np.all(np.isfinite(np.asarray(val))) and np.all(np.isfinite(np.asarray(g)))
    # ds/dz = 2 u (1 - u) <= 5e-16 at |z| >= 36: the pole is flat in the sampler's coordinates
    pole = np.abs(zs[:, 0]) >= 36
    assert np.max(np.abs(np.asarray(g)[pole, idx])) < 1e-6


def test_continuity_zero_dispersion_is_refused_with_a_message(data):
    """log sigma interpolation is undefined at sigma = 0: a clear error eagerly (NaN under jit/grad)."""
    spec = ReflexModel("continuity", "galactic")
    p = {k: jnp.asarray(v[0]) for k, v in _grid(spec).items()}
    p["sigma_l_120"] = jnp.asarray(0.0)
    with pytest.raises(ValueError, match="sigma_l_120 .*needs every dispersion > 0"):
        spec.log_likelihood(p, data)
    with pytest.raises(ValueError, match="sigma_l_120"):
        spec.log_likelihood_per_star(p, data)
    with pytest.raises(ValueError, match="0 < sigma_min"):
        PriorSet(sigma_min=0.0)  # no prior reaches sigma = 0


def test_dipole_finite_and_bounded_at_poles_and_sigma_edges():
    """Li et al.'s dipole model over its prior box (sigma_r in [10, 200], mu in [-100, 100], l in [0, 2 pi])."""
    rng = np.random.default_rng(0)
    n = 200
    l, b = rng.uniform(0, 2 * np.pi, n), np.arcsin(rng.uniform(-1, 1, n))
    v, e = rng.normal(0, 120, n), rng.uniform(1, 20, n)
    pts = np.array(list(itertools.product((-100.0, 100.0), (-100.0, 100.0), (0.0, math.pi, 2 * math.pi), S_EDGES, (10.0, 200.0))))
    f = jax.jit(jax.vmap(jax.value_and_grad(lambda q: dipole_log_likelihood(v, e, l, b, q[0], q[1], q[2], q[3], q[4]))))
    val, g = f(jnp.asarray(pts))
    val, g = np.asarray(val), np.asarray(g)
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(g))
    # |d ll / d mu| <= R / var_min with R = |v| + 200 (|mu_r| <= |mu_compr| + |mu_dipole|); mu_r = mu_c + mu_d cos:
    # |d cos / d l_apex| <= 1, |d cos / d s| <= 1 + 1 / APEX_COS_MIN; sigma: sigma_max (1/var + R^2/var^2)
    var = e**2 + 10.0**2
    gm = np.sum((np.abs(v) + 200.0) / var)
    bound = np.array([gm, gm, 100 * gm, 100 * gm * (1 + 1 / APEX_COS_MIN),
                      np.sum(200.0 * (1 / var + (np.abs(v) + 200.0) ** 2 / var**2))])
    assert np.all(np.abs(g) <= bound), (np.max(np.abs(g), 0), bound)


def test_mixture_finite_at_dispersion_edges():
    """Li et al.'s mixture priors: sigma in [10, 200] km/s and [0.05, 0.6] dex, means at their bounds."""
    rng = np.random.default_rng(1)
    n = 300
    x = np.column_stack([rng.normal(0, 150, n), rng.normal(0, 100, n), rng.normal(0, 100, n), rng.normal(-1.8, 0.5, n)])
    err = np.column_stack([rng.uniform(1, 20, (n, 3)), rng.uniform(0.01, 0.2, n)])
    lo, hi = np.array([10.0, 10.0, 10.0, 0.05]), np.array([200.0, 200.0, 200.0, 0.6])
    mlo, mhi = np.array([-100.0, -100.0, -100.0, -3.0]), np.array([100.0, 100.0, 100.0, -0.85])

    def ll(means, scales, w):
        return mixture_log_likelihood(x, means, scales, weights=jnp.stack([w, 1.0 - w]), errors=err)

    combos = list(itertools.product((lo, hi), (lo, hi), (mlo, mhi), (mlo, mhi), (1e-3, 0.5)))
    means = jnp.asarray([np.stack([m1, m2]) for _, _, m1, m2, _ in combos])
    scales = jnp.asarray([np.stack([s1, s2]) for s1, s2, *_ in combos])
    w = jnp.asarray([c[-1] for c in combos])
    val, (gm, gs) = jax.jit(jax.vmap(jax.value_and_grad(ll, argnums=(0, 1))))(means, scales, w)
    assert np.all(np.isfinite(np.asarray(val)))
    assert np.all(np.isfinite(np.asarray(gm))) and np.all(np.isfinite(np.asarray(gs)))
    # per star |d ll / d mu_kd| <= max_k r / var_min and |d ll / d s_kd| <= s_max (1/var + r^2/var^2) (the
    # responsibilities are <= 1): r <= |x| + |mean bound|, var >= s_min^2 + err^2
    r = np.abs(x) + np.maximum(np.abs(mlo), np.abs(mhi))
    var = lo**2 + err**2
    assert np.all(np.abs(np.asarray(gm)) <= np.sum(r / var, 0))
    assert np.all(np.abs(np.asarray(gs)) <= np.sum(hi * (1 / var + r**2 / var**2), 0))
