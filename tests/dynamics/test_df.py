"""Constant-beta DFs: analytic Hernquist DFs, the forward Abel integral, Jeans dispersions, sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

from jaxhalo.constants import G
from jaxhalo.dynamics.densities import DehnenDensity, DoublePowerLawDensity
from jaxhalo.dynamics.df import DFError, NegativeDFError, RadialProfile, SphericalProfile, constant_beta_df, sample_df
from jaxhalo.dynamics.potentials import NFW, Hernquist

M_H, A_H = 1.0e12, 20.0
HERNQUIST = SphericalProfile(Hernquist(M_H, A_H))
GRID = dict(r_min=0.01, r_max=1000.0)

#: A Milky-Way-like spherical host (NFW halo + Hernquist bulge) and a Brooks et al. tracer.
HOST = NFW(1.0e7, 16.0) + Hernquist(1.5e10, 0.7)
TRACER = DoublePowerLawDensity(15.0, 4.0)
SMALL = dict(n_energy=48, n_quad=32, n_rows=16, n_t=64, n_u=64, n_mass=256)


def _np_tracer_density(r):
    """Closed form of TRACER in numpy (reference)."""
    u = r / 15.0
    return u**-1.0 * (1.0 + u) ** (1.0 - 4.0)


def _np_host_mass(r):
    """Closed-form M(<r) of HOST in numpy (reference): NFW + Hernquist."""
    u = r / 16.0
    return 4 * np.pi * 1.0e7 * 16.0**3 * (np.log1p(u) - u / (1 + u)) + 1.5e10 * r**2 / (r + 0.7) ** 2


def _hernquist_isotropic(eps):
    """Hernquist (1990) eq. 17: isotropic DF of a self-consistent Hernquist sphere."""
    vg = np.sqrt(G * M_H / A_H)
    q = np.sqrt(A_H * eps / (G * M_H))
    pre = M_H / (8.0 * np.sqrt(2.0) * np.pi**3 * A_H**3 * vg**3) / (1.0 - q**2) ** 2.5
    return pre * (3.0 * np.arcsin(q) + q * np.sqrt(1.0 - q**2) * (1.0 - 2.0 * q**2) * (8.0 * q**4 - 8.0 * q**2 - 3.0))


def _jeans_sigma_r(r, beta, rho, mass):
    """sigma_r(r) of the spherical Jeans equation with constant beta (scipy quadrature)."""
    integrand = lambda y: rho(y) * y ** (2 * beta) * G * mass(y) / y**2  # noqa: E731
    val = integrate.quad(integrand, r, np.inf, limit=200, epsrel=1e-10)[0]
    return np.sqrt(val / (rho(r) * r ** (2 * beta)))


@pytest.fixture(scope="module")
def mw_sample():
    beta = 0.3
    df = constant_beta_df(TRACER, SphericalProfile(HOST), beta, r_min=0.1, r_max=500.0)
    x, v = sample_df(jax.random.key(7), df, 200_000)
    return beta, df, np.asarray(x), np.asarray(v)


def test_isotropic_hernquist_matches_analytic():
    df = constant_beta_df(DehnenDensity(M_H, A_H, 1.0), HERNQUIST, 0.0, **GRID)
    eps = np.exp(np.asarray(df.ln_eps))
    f = np.exp(np.asarray(df.ln_f))
    np.testing.assert_allclose(f, _hernquist_isotropic(eps), rtol=1e-6)
    # between grid nodes (log-log linear interpolation)
    e_mid = np.sqrt(eps[1:] * eps[:-1])[10:-10]
    np.testing.assert_allclose(np.asarray(df.f_energy(e_mid)), _hernquist_isotropic(e_mid), rtol=2e-3)


def test_beta_half_hernquist_matches_analytic():
    """beta = 1/2 (the other branch of Cuddeford's inversion): f_E = 3 a eps^2 / (4 pi^3 G^3 M^2)."""
    df = constant_beta_df(DehnenDensity(M_H, A_H, 1.0), HERNQUIST, 0.5, **GRID)
    eps = np.exp(np.asarray(df.ln_eps))
    ref = 3.0 * A_H * eps**2 / (4.0 * np.pi**3 * G**3 * M_H**2)
    np.testing.assert_allclose(np.exp(np.asarray(df.ln_f)), ref, rtol=1e-9)


@pytest.mark.parametrize("beta", [0.25, 0.7])
def test_forward_abel_integral_reproduces_density(beta):
    """rho r^(2b) = lambda(b) int_0^Psi f_E(eps) (Psi - eps)^(1/2 - b) deps, by scipy quadrature."""
    tracer = DehnenDensity(1.0, 10.0, 2.0)  # inner slope 2 >= 2 beta: a valid DF for both betas
    df = constant_beta_df(tracer, HERNQUIST, beta, **GRID)
    lam = 2 ** (1.5 - beta) * np.pi**1.5 * special.gamma(1 - beta) / special.gamma(1.5 - beta)
    ln_e, ln_f = np.asarray(df.ln_eps), np.asarray(df.ln_f)
    f_e = lambda e: np.exp(np.interp(np.log(e), ln_e, ln_f))  # noqa: E731  (same log-log interpolation)
    for r in [0.3, 3.0, 30.0, 300.0]:
        psi = G * M_H / (r + A_H)
        lhs = float(tracer.density(r)) * r ** (2 * beta)
        rhs = lam * integrate.quad(f_e, 0.0, psi, weight="alg", wvar=(0.0, 0.5 - beta), limit=400)[0]
        assert rhs == pytest.approx(lhs, rel=2e-3), r


def test_negative_df_raises_eagerly():
    # Hernquist tracer (cusp slope 1) with beta = 0.7 > 1/2 violates the cusp-slope theorem.
    with pytest.raises(NegativeDFError, match="beta = 0.700"):
        constant_beta_df(DehnenDensity(M_H, A_H, 1.0), HERNQUIST, 0.7, **GRID)
    with pytest.raises(DFError, match="outside"):
        constant_beta_df(DehnenDensity(M_H, A_H, 1.0), HERNQUIST, 1.0, **GRID)


def test_negative_df_raises_when_traced():
    build = jax.vmap(lambda b: constant_beta_df(DehnenDensity(M_H, A_H, 1.0), HERNQUIST, b, **GRID, **SMALL).ln_f)
    ok = build(jnp.array([0.1, 0.4]))
    assert np.all(np.isfinite(np.asarray(ok)))
    with pytest.raises(Exception, match="negative or undefined"):
        jax.block_until_ready(build(jnp.array([0.1, 0.7])))


def test_inconsistent_profile_raises():
    phi = lambda r: -G * M_H / (r + A_H)  # noqa: E731
    twice_the_mass = lambda r: 2.0 * M_H * r**2 / (r + A_H) ** 2  # noqa: E731
    prof = RadialProfile(phi, twice_the_mass)
    with pytest.raises(DFError, match="inconsistent"):
        constant_beta_df(DehnenDensity(M_H, A_H, 1.0), prof, 0.0, **SMALL)


def _bins(r, edges):
    return [(lo, hi, (r > lo) & (r < hi)) for lo, hi in zip(edges[:-1], edges[1:])]


def test_sampled_sigma_r_matches_jeans(mw_sample):
    beta, _, x, v = mw_sample
    r = np.linalg.norm(x, axis=1)
    vr = np.sum(x * v, axis=1) / r
    rho, mass = _np_tracer_density, _np_host_mass
    for lo, hi, m in _bins(r, np.geomspace(3.0, 150.0, 8)):
        # the model's mean sigma_r^2 over the stars of the bin (quadrature at bin quantiles)
        rq = np.quantile(r[m], np.linspace(0.05, 0.95, 7))
        s2 = np.mean([_jeans_sigma_r(q, beta, rho, mass) ** 2 for q in rq])
        ratio = np.sqrt(np.mean(vr[m] ** 2) / s2)
        assert abs(ratio - 1.0) < 0.02, (lo, hi, ratio)


def test_sampled_density_matches_input(mw_sample):
    _, df, x, _ = mw_sample
    r = np.linalg.norm(x, axis=1)
    r_min, r_max = float(df.r_min), float(df.r_max)
    shell = lambda a, b: integrate.quad(lambda y: 4 * np.pi * y**2 * _np_tracer_density(y), a, b, limit=200)[0]  # noqa: E731
    total = shell(r_min, r_max)
    edges = np.geomspace(0.5, 400.0, 15)
    expected = np.array([shell(a, b) / total * r.size for a, b in zip(edges[:-1], edges[1:])])
    counts = np.histogram(r, edges)[0]
    pulls = (counts - expected) / np.sqrt(expected)
    assert np.all(np.abs(pulls) < 4.0), pulls
    assert np.mean(pulls**2) < 2.5


def test_sampled_anisotropy_and_zero_mean_velocity(mw_sample):
    beta, _, x, v = mw_sample
    r = np.linalg.norm(x, axis=1)
    vr = np.sum(x * v, axis=1) / r
    vt2 = np.sum(v * v, axis=1) - vr**2
    for lo, hi, m in _bins(r, np.geomspace(2.0, 200.0, 7)):
        b = 1.0 - np.mean(vt2[m]) / (2.0 * np.mean(vr[m] ** 2))
        assert abs(b - beta) < 4.0 * 1.5 / np.sqrt(m.sum()) + 0.005, (lo, hi, b)
    sig = v.std(axis=0) / np.sqrt(len(v))
    assert np.all(np.abs(v.mean(axis=0)) < 4.0 * sig)
    # no net rotation either
    lz = x[:, 0] * v[:, 1] - x[:, 1] * v[:, 0]
    assert abs(lz.mean()) < 4.0 * lz.std() / np.sqrt(len(lz))


def test_df_vmaps_over_beta():
    betas = jnp.array([0.1, 0.4])
    prof = SphericalProfile(HOST)

    def draw(b):
        df = constant_beta_df(TRACER, prof, b, r_min=0.1, r_max=500.0, **SMALL)
        return sample_df(jax.random.key(3), df, 1000)

    xb, vb = jax.vmap(draw)(betas)
    draw = jax.jit(draw)
    for k, b in enumerate([0.1, 0.4]):
        x1, v1 = draw(b)
        np.testing.assert_allclose(np.asarray(xb[k]), np.asarray(x1), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(vb[k]), np.asarray(v1), rtol=1e-10, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5])
def test_sampled_sigma_r_matches_jeans_large(beta):
    df = constant_beta_df(TRACER, SphericalProfile(HOST), beta, r_min=0.1, r_max=500.0)
    x, v = (np.asarray(a) for a in sample_df(jax.random.key(11), df, 2_000_000))
    r = np.linalg.norm(x, axis=1)
    vr = np.sum(x * v, axis=1) / r
    rho, mass = _np_tracer_density, _np_host_mass
    worst = 0.0
    for lo, hi, m in _bins(r, np.geomspace(1.0, 200.0, 12)):
        rq = np.quantile(r[m], np.linspace(0.05, 0.95, 9))
        s2 = np.mean([_jeans_sigma_r(q, beta, rho, mass) ** 2 for q in rq])
        ratio = np.sqrt(np.mean(vr[m] ** 2) / s2)
        worst = max(worst, abs(ratio - 1.0))
        print(f"beta={beta} r={np.sqrt(lo * hi):7.2f} n={m.sum():7d} sigma_r/Jeans={ratio:.4f}")
    assert worst < 0.02
