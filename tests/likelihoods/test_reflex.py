"""The reflex likelihood against independent NumPy / astropy implementations of REFLEX_MODEL.md."""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from astropy_reference import astropy_galactocentric
from conftest import peer_file
from reflex_reference import YPP24_50, catalog_from_layout_t, load_layout_t, numpy_reference_loglike

from jaxhalo.constants import K_PM
from jaxhalo.frames import SolarParameters
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel

def _random_theta(rng, n):
    """Random reflexcalc parameter vectors spanning the prior ranges of interest."""
    th = np.column_stack(
        [
            rng.uniform(-np.pi, np.pi, n),
            rng.uniform(-1, 1, n),
            rng.uniform(0, 150, n),
            rng.uniform(-100, 100, n),
            rng.uniform(-100, 100, n),
            rng.uniform(-100, 100, n),
            1 / rng.uniform(40, 200, n) ** 2,
            1 / rng.uniform(40, 200, n) ** 2,
            1 / rng.uniform(40, 200, n) ** 2,
        ]
    )
    return th


def _params_from_theta(th) -> dict:
    return dict(
        apex_l=th[0], apex_sinb=th[1], v_travel=th[2], vr=th[3], vphi=th[4], vtheta=th[5],
        sigma_los=th[6] ** -0.5, sigma_l=th[7] ** -0.5, sigma_b=th[8] ** -0.5,
    )


@pytest.fixture(scope="module")
def ypp24():
    a = load_layout_t(peer_file(YPP24_50))
    assert a.shape == (253, 17)
    return a


@pytest.mark.parametrize("quirk", [True, False])
def test_reference_conventions_match_numpy(ypp24, quirk):
    cat = catalog_from_layout_t(ypp24)
    data = ReflexData.from_catalog(cat, reference=True, distance_quirk=quirk)
    model = ReflexModel("constant", "galactic")
    f = jax.jit(model.log_likelihood_per_star)
    rng = np.random.default_rng(1)
    for th in _random_theta(rng, 12):
        ref = numpy_reference_loglike(ypp24, th, quirk=quirk)
        got = np.asarray(f(_params_from_theta(th), data))
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=0)
        assert abs(got.sum() - ref.sum()) <= 1e-9 * abs(ref.sum())


def test_default_conventions_match_astropy(ypp24):
    """jaxhalo defaults (Chandra solar parameters, astropy tilt, IAU k, D'=D) against astropy.

    The mean model velocity is built at astropy's Galactocentric position of each star
    and transformed to (v_los, mu_l*, mu_b) by astropy; the likelihood is then the
    REFLEX_MODEL.md §5 Gaussian written out in NumPy.
    """
    cat = catalog_from_layout_t(ypp24)
    solar = SolarParameters()
    data = ReflexData.from_catalog(cat)  # defaults
    model = ReflexModel("constant", "galactic")
    frame = astropy_galactocentric(solar)
    sc = coord.SkyCoord(l=cat.l * u.rad, b=cat.b * u.rad, distance=cat.distance * u.kpc, frame="galactic")
    r = sc.transform_to(frame).cartesian.xyz.to_value(u.kpc).T
    rr = np.linalg.norm(r, axis=1)
    phi = np.arctan2(r[:, 1], r[:, 0])
    th_ = np.arccos(r[:, 2] / rr)
    er = np.stack([np.sin(th_) * np.cos(phi), np.sin(th_) * np.sin(phi), np.cos(th_)], 1)
    ephi = np.stack([-np.sin(phi), np.cos(phi), 0 * phi], 1)
    eth = np.stack([np.cos(th_) * np.cos(phi), np.cos(th_) * np.sin(phi), -np.sin(th_)], 1)
    rng = np.random.default_rng(2)
    for th in _random_theta(rng, 6):
        la, sa, V, vr, vphi, vth = th[:6]
        n = np.array([np.sqrt(1 - sa**2) * np.cos(la), np.sqrt(1 - sa**2) * np.sin(la), sa])
        vmean = -V * n + vr * er + vphi * ephi + vth * eth
        gal = coord.SkyCoord(
            x=r[:, 0] * u.kpc, y=r[:, 1] * u.kpc, z=r[:, 2] * u.kpc,
            v_x=vmean[:, 0] * u.km / u.s, v_y=vmean[:, 1] * u.km / u.s, v_z=vmean[:, 2] * u.km / u.s,
            frame=frame,
        ).transform_to(coord.Galactic())
        m = np.stack(
            [gal.radial_velocity.to_value(u.km / u.s), gal.pm_l_cosb.to_value(u.mas / u.yr), gal.pm_b.to_value(u.mas / u.yr)], 1
        )
        d, ed = cat.distance, cat.distance_err
        S2 = cat.v_los_err**2 + 1 / th[6]
        lpv = -0.5 * np.log(2 * np.pi * S2) - (cat.v_los - m[:, 0]) ** 2 / (2 * S2)
        f2 = (K_PM * d) ** 2
        c11 = cat.pm_l_err**2 + ed**2 * cat.pm_l**2 / d**2 + 1 / (th[7] * f2)
        c22 = cat.pm_b_err**2 + ed**2 * cat.pm_b**2 / d**2 + 1 / (th[8] * f2)
        c12 = cat.pm_corr * cat.pm_l_err * cat.pm_b_err
        C = np.stack([np.stack([c11, c12], -1), np.stack([c12, c22], -1)], -2)
        delta = np.stack([cat.pm_l - m[:, 1], cat.pm_b - m[:, 2]], 1)
        lpm = -0.5 * np.log((2 * np.pi) ** 2 * np.linalg.det(C)) - 0.5 * np.einsum(
            "ni,ni->n", delta, np.linalg.solve(C, delta[..., None])[..., 0]
        )
        got = np.asarray(model.log_likelihood_per_star(_params_from_theta(th), data))
        np.testing.assert_allclose(got, lpv + lpm, rtol=1e-9)


def test_apex_parameterisations_agree(ypp24):
    """The same travel vector written in galactic, MS and Cartesian parameters gives the same likelihood."""
    from jaxhalo.frames import galactic_to_magellanic

    data = ReflexData.from_catalog(catalog_from_layout_t(ypp24))
    common = dict(vr=-10.0, vphi=-20.0, vtheta=15.0, sigma_los=90.0, sigma_l=70.0, sigma_b=70.0)
    l, b, V = np.radians(56.0), np.radians(-34.0), 32.0
    L, B = galactic_to_magellanic(l, b)
    n = np.array([np.cos(b) * np.cos(l), np.cos(b) * np.sin(l), np.sin(b)])
    lls = [
        ReflexModel("constant", "galactic").log_likelihood(dict(v_travel=V, apex_l=l, apex_sinb=np.sin(b), **common), data),
        ReflexModel("constant", "ms").log_likelihood(dict(v_travel=V, apex_L=L, apex_sinB=jnp.sin(B), **common), data),
        ReflexModel("constant", "cartesian").log_likelihood(dict(v_x=V * n[0], v_y=V * n[1], v_z=V * n[2], **common), data),
    ]
    np.testing.assert_allclose(lls, lls[0], rtol=1e-12)


def test_continuity_reduces_to_constant(ypp24):
    data = ReflexData.from_catalog(catalog_from_layout_t(ypp24))
    p9 = dict(v_travel=35.0, apex_L=-0.4, apex_sinB=-0.1, vr=-10.0, vphi=5.0, vtheta=3.0, sigma_los=90.0, sigma_l=70.0, sigma_b=60.0)
    p18 = {k + s: v for k, v in p9.items() for s in ("_40", "_120")}
    for interp in ("angles", "vector"):
        cont = ReflexModel("continuity", "ms", interpolate=interp)
        np.testing.assert_allclose(
            cont.log_likelihood_per_star(p18, data), ReflexModel("constant", "ms").log_likelihood_per_star(p9, data), rtol=1e-12
        )
    # Linear interpolation: at r = 80 kpc the values are the anchor means.
    cont = ReflexModel("continuity", "ms", log_dispersion=False)
    p18["v_travel_120"] = 55.0
    p18["sigma_los_120"] = 50.0
    mid = cont.at_radius(p18, jnp.asarray(80.0))
    assert float(mid["v_travel"]) == pytest.approx(45.0) and float(mid["sigma_los"]) == pytest.approx(70.0)
    mid_log = ReflexModel("continuity", "ms").at_radius(p18, jnp.asarray(80.0))
    assert float(mid_log["sigma_los"]) == pytest.approx(np.sqrt(90.0 * 50.0))


def test_gradient_matches_finite_differences(ypp24):
    data = ReflexData.from_catalog(catalog_from_layout_t(ypp24))
    model = ReflexModel("continuity", "galactic")
    names = model.param_names
    base = dict(v_travel=30.0, apex_l=0.9, apex_sinb=-0.5, vr=-10.0, vphi=-20.0, vtheta=15.0, sigma_los=90.0, sigma_l=70.0, sigma_b=70.0)
    x0 = jnp.array([base[n.rsplit("_", 1)[0]] * (1.1 if n.endswith("_120") else 1.0) for n in names])

    def f(x):
        return model.log_likelihood(dict(zip(names, x)), data)

    g = jax.grad(f)(x0)
    for i in range(len(names)):
        h = 1e-5 * max(1.0, abs(float(x0[i])))
        fd = (f(x0.at[i].add(h)) - f(x0.at[i].add(-h))) / (2 * h)
        assert float(g[i]) == pytest.approx(float(fd), rel=2e-5, abs=1e-5), names[i]


@pytest.mark.parametrize("sinb", [-1.0, 1.0])
def test_gradient_finite_at_poles(ypp24, sinb):
    data = ReflexData.from_catalog(catalog_from_layout_t(ypp24))
    model = ReflexModel("constant", "galactic")
    p = dict(v_travel=30.0, apex_l=0.9, apex_sinb=sinb, vr=-10.0, vphi=-20.0, vtheta=15.0, sigma_los=90.0, sigma_l=70.0, sigma_b=70.0)
    g = jax.grad(lambda q: model.log_likelihood(q, data))(p)
    assert all(np.isfinite(float(v)) for v in g.values())


def test_reflex_sign_convention():
    """Stars towards the apex show the most negative mean v_los once the solar motion is removed."""
    rng = np.random.default_rng(3)
    n = 2000
    l = rng.uniform(-np.pi, np.pi, n)
    b = np.arcsin(rng.uniform(-1, 1, n))
    d = np.full(n, 80.0)
    ones = np.ones(n)
    data = ReflexData.from_arrays(l, b, d, 0.1 * ones, 0 * ones, ones, 0 * ones, 0 * ones, 0.1 * ones, 0.1 * ones)
    model = ReflexModel("constant", "galactic")
    from jaxhalo.likelihoods.reflex import reflex_mean_observables

    apex = np.array([0.0, 0.0, -1.0])  # travel towards the south Galactic pole
    mean0 = reflex_mean_observables(data, jnp.zeros(3), 0.0, 0.0, 0.0)
    mean = reflex_mean_observables(data, 50.0 * apex, 0.0, 0.0, 0.0)
    dv = np.asarray(mean[:, 0] - mean0[:, 0])
    south = b < -np.radians(60)
    north = b > np.radians(60)
    assert dv[south].mean() < -35 and dv[north].mean() > 35
    assert model.param_names[0] == "v_travel"


# ----------------------------------------------------------------------------- the fast value+gradient path
# ReflexModel.log_likelihood (fast=True) differentiates through a blocked one-pass rule; its numbers
# must be those of autodiff of the plain per-star sum (fast=False) to rounding. A reordered sum
# over N stars moves a component by ~1e-16 x sum_n |term_n|: the tolerance 1e-10 is relative to
# that scale (|g| + sum_n |d lnL_n / d theta|), which keeps it meaningful near a zero gradient.

FAST_CASES = [
    ReflexModel("continuity", "ms"),
    ReflexModel("constant", "cartesian"),
    pytest.param(ReflexModel("continuity", "galactic", interpolate="vector", log_dispersion=False),
                 marks=pytest.mark.slow),
    pytest.param(ReflexModel("continuity", "ms", outlier="gaussian"), marks=pytest.mark.slow),
]


def _fast_problem(spec: ReflexModel, n: int = 1000, seed: int = 5):
    """Random stars (10% with weight 0) and parameters away from any optimum."""
    from jaxhalo.mocks.reflex import default_truth

    rng = np.random.default_rng(seed)
    d = rng.uniform(30, 170, n)
    data = ReflexData.from_arrays(
        rng.uniform(0, 2 * np.pi, n), np.arcsin(rng.uniform(-1, 1, n)), d, 0.05 * d, rng.normal(0, 100, n),
        rng.uniform(2, 10, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), rng.uniform(0.02, 0.2, n),
        rng.uniform(0.02, 0.2, n), rng.uniform(-0.3, 0.3, n), weight=(rng.uniform(size=n) > 0.1).astype(float),
    )
    truth = dict(default_truth(spec))
    extra = {"f_out": 0.1, "sigma_out": 250.0, "out_vx": 10.0, "out_vy": -20.0, "out_vz": 5.0}
    p = {k: jnp.asarray(truth[k] if k in truth else extra[k]) for k in spec.param_names}
    return data, {k: v * (1.0 + 0.1 * rng.standard_normal()) + 0.01 for k, v in p.items()}


def _scale(spec, p, data):
    """|g| + sum_n |d lnL_n / d theta| per parameter: the rounding scale of the gradient."""
    @jax.jit
    def scale(q):
        jac = jax.jacfwd(lambda q: spec.log_likelihood_per_star(q, data))(q)
        g = jax.grad(lambda q: spec.log_likelihood(q, data, fast=False))(q)
        return {k: jnp.abs(g[k]) + jnp.sum(jnp.abs(jac[k])) for k in q}

    return {k: float(v) for k, v in scale(p).items()}


@pytest.fixture()
def small_blocks(monkeypatch):
    """Blocks of 256 stars, so that 1000 stars take the loop, a first block and a remainder (the outlier
    model's blocked autodiff and the fast path's fused sums); and 3 groups per block in the fused sums,
    3 x 85 stars and a remainder of 1."""
    import jaxhalo.jax_utils as jax_utils
    import jaxhalo.likelihoods.reflex as reflex_module

    monkeypatch.setattr(reflex_module, "CPU_BLOCK", 256)
    monkeypatch.setattr(jax_utils, "CPU_SUM_BLOCK", 256)
    monkeypatch.setattr(jax_utils, "CPU_SUM_SPLIT", 3)
    monkeypatch.setattr(jax_utils, "CPU_SUM_MIN_GROUP", 16)


@pytest.fixture(scope="module")
def ms_problem():
    """(spec, data, params, gradient scale) of the 18-parameter continuity / MS model, shared."""
    spec = ReflexModel("continuity", "ms")
    data, p = _fast_problem(spec)
    return spec, data, p, _scale(spec, p, data)


@pytest.mark.parametrize("spec", FAST_CASES, ids=["continuity-ms", "constant-cartesian", "vector-linear", "outlier"])
def test_fast_path_equals_autodiff_for_every_parameter(spec, small_blocks, ms_problem):
    if spec == ms_problem[0]:
        _, data, p, scale = ms_problem
    else:
        data, p = _fast_problem(spec)
        scale = _scale(spec, p, data)
    vf, gf = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, data)))(p)
    vr, gr = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, data, fast=False)))(p)
    assert float(vf) == pytest.approx(float(vr), rel=1e-12)
    bad = {k: float(abs(gf[k] - gr[k])) / scale[k] for k in p if float(abs(gf[k] - gr[k])) > 1e-10 * scale[k]}
    assert not bad, bad
    assert set(gf) == set(spec.param_names)


def test_fast_path_equals_autodiff_for_every_data_input(small_blocks, ms_problem):
    spec, data, p, _ = ms_problem
    gf = jax.jit(jax.grad(lambda d: spec.log_likelihood(p, d)))(data)
    gr = jax.jit(jax.grad(lambda d: spec.log_likelihood(p, d, fast=False)))(data)
    for name in ("r_gal", "proj", "basis_proj", "sun_obs", "obs", "var_los", "pm_cov", "inv_f2", "weight"):
        a, b = np.asarray(getattr(gf, name)), np.asarray(getattr(gr, name))
        assert np.any(b != 0), name
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max(), err_msg=name)
    # and both at once (parameters and data)
    gp, gd = jax.jit(jax.grad(lambda q, d: spec.log_likelihood(q, d), argnums=(0, 1)))(p, data)
    np.testing.assert_allclose(np.asarray(gd.obs), np.asarray(gr.obs), rtol=1e-10, atol=1e-12 * np.abs(gr.obs).max())


def test_fast_path_under_vmap(small_blocks, ms_problem):
    spec, data, p, scale = ms_problem
    batch = {k: v * jnp.array([1.0, 0.95, 1.07]) for k, v in p.items()}
    vf, gf = jax.jit(jax.vmap(jax.value_and_grad(lambda q: spec.log_likelihood(q, data))))(batch)
    vr, gr = jax.jit(jax.vmap(jax.value_and_grad(lambda q: spec.log_likelihood(q, data, fast=False))))(batch)
    np.testing.assert_allclose(np.asarray(vf), np.asarray(vr), rtol=1e-12)
    # (the scale at p: it moves little over a 7% change of the parameters)
    for k in p:
        assert np.all(np.abs(np.asarray(gf[k] - gr[k])) <= 1e-10 * scale[k]), k


def test_fast_path_zero_weight_stars_contribute_nothing(small_blocks, ms_problem):
    """Stars of weight 0 (padding, clipped stars) change neither the value nor the gradient."""
    spec, data, p, scale = ms_problem
    keep = np.asarray(data.weight) > 0
    sub = jax.tree_util.tree_map(lambda a: a[keep], data)
    vf, gf = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, data)))(p)
    vs, gs = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, sub, fast=False)))(p)
    assert float(vf) == pytest.approx(float(vs), rel=1e-12)
    assert all(abs(float(gf[k] - gs[k])) <= 1e-10 * scale[k] for k in p)


@pytest.mark.parametrize("sin_lat", [1.0, 1.0 - 1e-13, -1.0 + 1e-3, 0.0])
def test_fast_path_at_and_near_the_apex_poles(sin_lat):
    """The hand-written gradient follows frames.cos_from_sin through its floor: at a pole, within
    the floor, just outside it and at the equator it equals autodiff of the plain sum."""
    spec = ReflexModel("continuity", "galactic")
    data, p = _fast_problem(spec, n=200)
    p = {**p, "apex_sinb_40": jnp.asarray(sin_lat), "apex_sinb_120": jnp.asarray(-0.3)}
    vf, gf = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, data)))(p)
    vr, gr = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, data, fast=False)))(p)
    assert float(vf) == pytest.approx(float(vr), rel=1e-12)
    for k in p:
        assert float(gf[k]) == pytest.approx(float(gr[k]), rel=1e-9, abs=1e-9 * (1 + abs(float(gr[k])))), k


def test_fast_path_in_float32():
    """float32 parameters and data stay float32 through the hand-written rule (no float64 constant
    promotes them) and agree with the float64 gradient to float32 precision."""
    spec = ReflexModel("continuity", "ms")
    data, p = _fast_problem(spec, n=300)
    d32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), data)
    p32 = {k: v.astype(jnp.float32) for k, v in p.items()}
    v32, g32 = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, d32)))(p32)
    v64, g64 = jax.jit(jax.value_and_grad(lambda q: spec.log_likelihood(q, data)))(p)
    assert v32.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in g32.values())
    assert float(v32) == pytest.approx(float(v64), rel=1e-4)
    scale = max(abs(float(g)) for g in g64.values())
    for k in p:
        assert abs(float(g32[k]) - float(g64[k])) <= 1e-3 * scale, k


def test_fast_path_second_derivatives():
    """The rule is a JVP, so forward-over-reverse (jax.hessian, used by the Laplace scales) works."""
    spec = ReflexModel("constant", "galactic")
    data, p = _fast_problem(spec, n=300)
    names = spec.param_names
    x0 = jnp.array([p[k] for k in names])
    hf = jax.jit(jax.hessian(lambda x: spec.log_likelihood(dict(zip(names, x)), data)))(x0)
    hr = jax.jit(jax.hessian(lambda x: spec.log_likelihood(dict(zip(names, x)), data, fast=False)))(x0)
    np.testing.assert_allclose(np.asarray(hf), np.asarray(hr), rtol=1e-9, atol=1e-12 * float(jnp.abs(hr).max()))
