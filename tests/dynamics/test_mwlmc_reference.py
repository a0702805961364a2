"""The MW-LMC orbit against an independent NumPy / SciPy reference (issue 16 item 2, for the model jaxhalo has).

The reference re-implements Brooks et al. 2025 eqs 3-7 in NumPy (NFW, the Miyamoto-Nagai-sum disc with
the component (mass, a, b) that jaxhalo uses, the bulge as the point mass it is beyond 15 kpc, the
Hernquist LMC, Chandrasekhar friction with erf from SciPy), takes G, rho_crit and the unit conversion
from astropy, the LMC's present-day state from astropy's Galactocentric frame, solves c200 with
``scipy.optimize.brentq`` (bulge mass by ``scipy.integrate.quad``) and integrates with DOP853 at
rtol = atol = 1e-11. Three cases: Brooks et al. 2025 §4.1 (c200 = 14.5, a_LMC = 18.9 kpc, the LMC's
Galactocentric state, lambda_DF = 0.7); the fiducial 1.5e11 Msun LMC with friction; without friction.

What this checks: jaxhalo's c200 solve, LMC set-up, friction and integrator (the goals of the issue:
the LMC 2.2 Gyr ago and the pericentre to 1e-2 kpc, c200 to 1e-6), for both disc models of
:func:`~jaxhalo.dynamics.potentials.milky_way`: the Miyamoto-Nagai sum (``disc="miyamoto-nagai"``; the
same closed form on both sides, whose error against the exact sech^2 disc moves the LMC 2.2 Gyr ago by
0.12-0.19 kpc) and the exact disc (the default, jaxhalo's table): there the reference sums the disc as
rings (Gauss-Laguerre x Gauss-Legendre in tanh(z'/2h), 128 x 64, scipy's K and E; good to ~1e-6 of the
disc's force away from the disc, and the fiducial LMC stays > 27 kpc from the plane inside 60 kpc) and
solves c200 with the disc's v_c(R_sun) from the scipy ring quadrature (tests/dynamics/disc_ring_reference.py).
"""

from __future__ import annotations

import astropy.constants as const
import astropy.coordinates as coord
import astropy.units as u
import equinox as eqx
import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM
from scipy import integrate, optimize, special

from disc_ring_reference import DATA as DISC_REFERENCE
from jaxhalo import frames
from jaxhalo.dynamics import mwlmc
from jaxhalo.dynamics import potentials as P
from astropy_reference import astropy_galactocentric

G = const.G.to_value(u.kpc * u.km**2 / u.s**2 / u.Msun)
K = (1 * u.km / u.s).to_value(u.kpc / u.Myr)
RHO_CRIT = FlatLambdaCDM(H0=67.6, Om0=0.3).critical_density0.to_value(u.Msun / u.kpc**3)
#: (mass fraction, a / R_d, b / h) of jaxhalo's disc, read through its public components
MN = [(float(c.mass), float(c.a), float(c.b)) for c in P.exponential_disc().components]
M_BULGE = 1.2e10
T_BACK = 2200.0


def _bulge_mass(r: float) -> float:
    """Bulge M(<r) normalised to 1.2e10 within 50 kpc (jaxhalo's truncation radius)."""
    shape = lambda s: 4 * np.pi * s**2 * (1 + s / 0.2) ** -1.8 * np.exp(-((s / 1.8) ** 2))  # noqa: E731
    q = lambda a, b: integrate.quad(shape, a, b, epsabs=0, epsrel=1e-13, limit=400)[0]  # noqa: E731
    return M_BULGE * q(0, r) / (q(0, 2.0) + q(2.0, 50.0))


def _mu(c):
    return np.log1p(c) - c / (1 + c)


def _nfw(m200, c200):
    r200 = (3 * m200 / (4 * np.pi * 200 * RHO_CRIT)) ** (1 / 3)
    rs = r200 / c200
    return m200 / _mu(c200), rs  # (4 pi rho_s rs^3, rs)


def _exact_disc_vc2_sun(r_sun):
    """v_c^2 of the exact disc at R_sun = 8.122 kpc from the committed scipy ring-quadrature values."""
    import json  # deferred: only the exact-disc cases read the reference

    rows = json.loads(DISC_REFERENCE.read_text())["rows"]
    (FR,) = [r[3] for r in rows if r[0] == r_sun and r[1] == 0.0]
    return -r_sun * FR * G / 4.300917270036279e-6  # the file's G -> astropy's


# the exact disc as rings: Gauss-Laguerre in R'/R_d (weight x e^-x) x Gauss-Legendre in u = tanh(z'/2h)
_XL, _WL = np.polynomial.laguerre.laggauss(128)
_UL, _WUL = np.polynomial.legendre.leggauss(64)
_RING_A = 3.0 * _XL[:, None] * np.ones_like(_UL)[None, :]
_RING_Z = 0.8 * np.arctanh(_UL)[None, :] * np.ones_like(_XL)[:, None]
_RING_M = 5e10 * (_WL * _XL)[:, None] * (0.5 * _WUL)[None, :]


def _exact_disc_acc_rho(d):
    """Acceleration (3,) of the exact sech^2 disc (5e10, 3, 0.4) at d (away from the disc) and its density."""
    R = np.hypot(d[0], d[1])
    Z = d[2] - _RING_Z
    D2 = (R + _RING_A) ** 2 + Z * Z
    d2 = (R - _RING_A) ** 2 + Z * Z
    m = 4 * R * _RING_A / D2
    K, E = special.ellipk(m), special.ellipe(m)
    D = np.sqrt(D2)
    FR = np.sum(_RING_M * 2 / (np.pi * D) * ((E * D2 / d2 - K) * (_RING_A**2 - R * R + Z * Z) / (2 * R * D2)
                                             - K * (R + _RING_A) / D2))
    Fz = -np.sum(_RING_M * 2 / np.pi * Z * E / (D * d2))
    rho = 5e10 / (8 * np.pi * 9.0 * 0.4) * np.exp(-R / 3.0) / np.cosh(d[2] / 0.8) ** 2
    return G * np.array([FR * d[0] / R, FR * d[1] / R, Fz]), rho


def _solve_c200(m200, r_sun, v_c=235.0, exact_disc=False):
    R = r_sun
    v_mn2 = _exact_disc_vc2_sun(R) if exact_disc else sum(G * m * R**2 / (R**2 + (a + b) ** 2) ** 1.5 for m, a, b in MN)
    v_b2 = G * _bulge_mass(R) / R

    def f(c):
        m0, rs = _nfw(m200, c)
        return G * m0 * _mu(R / rs) / R + v_mn2 + v_b2 - v_c**2

    return optimize.brentq(f, 1.0, 100.0, xtol=1e-15, rtol=1e-15)


def _mw_acc_rho(d, m200, c200, exact_disc=False):
    """Acceleration (3,) of the MW at offset d from its centre and its density there (d beyond 15 kpc)."""
    m0, rs = _nfw(m200, c200)
    r = np.linalg.norm(d)
    acc = -G * (m0 * _mu(r / rs) + M_BULGE) / r**3 * d
    rho = m0 / (4 * np.pi * rs**3) / ((r / rs) * (1 + r / rs) ** 2)
    if exact_disc:
        a_d, rho_d = _exact_disc_acc_rho(d)
        return acc + a_d, rho + rho_d
    R2, z = d[0] ** 2 + d[1] ** 2, d[2]
    for m, a, b in MN:
        sb = np.sqrt(z * z + b * b)
        s = a + sb
        D2 = R2 + s * s
        acc = acc - G * m / D2**1.5 * np.array([d[0], d[1], z * s / sb])
        rho += b * b * m / (4 * np.pi) * (a * R2 + (a + 3 * sb) * s * s) / (D2**2.5 * sb**3)
    return acc, rho


def _reference(m200, c200, m_lmc, a_lmc, lam, x0, v0, sigma=120.0, exact_disc=False):
    lnL = np.log(100.0 / (1.6 * a_lmc))

    def rhs(t, w):
        x_mw, v_mw, x_l, v_l = w[0:3], w[3:6], w[6:9], w[9:12]
        d = x_l - x_mw
        r = np.linalg.norm(d)
        a_mw = G * m_lmc / (r * (r + a_lmc) ** 2) * d  # Hernquist LMC pulling the MW
        a_l, rho = _mw_acc_rho(d, m200, c200, exact_disc)
        u_ = v_l - v_mw
        v = np.linalg.norm(u_)
        X = v / (np.sqrt(2) * sigma)
        a_df = -4 * np.pi * G**2 * m_lmc * rho * lnL / v**3 * (special.erf(X) - 2 * X / np.sqrt(np.pi) * np.exp(-X * X)) * u_
        return K * np.concatenate([v_mw, a_mw, v_l, a_l + lam * a_df])

    w0 = np.concatenate([np.zeros(6), x0, v0])
    return integrate.solve_ivp(rhs, (0.0, -T_BACK), w0, method="DOP853", rtol=1e-11, atol=1e-11, dense_output=True)


def _pericentre(sep, t_grid):
    """(t, r) of the minimum of sep(t) on [-T_BACK, 0]: grid, then bounded Brent around the grid minimum."""
    s = np.array([sep(t) for t in t_grid])
    i = int(np.argmin(s))
    lo, hi = t_grid[max(i - 1, 0)], t_grid[min(i + 1, len(t_grid) - 1)]
    res = optimize.minimize_scalar(sep, bounds=(lo, hi), method="bounded", options=dict(xatol=1e-8))
    return res.x, res.fun


#: exact disc, jaxhalo's table against the reference's rings: c200 through v_c(R_sun) (table 1e-9 of the
#: disc force in the plane, rings file 1e-10) and the orbit (rings ~1e-6 of the disc force, which is ~1-5 %
#: of the MW's along the path). Measured (CPU): c200 14.1627069860 vs 14.1627069861, the LMC 2.2 Gyr ago
#: 1.3e-5 / 8.8e-6 kpc apart (fiducial / no friction), pericentres 46.938987 / 46.922038 kpc equal to 1e-6.
#: (The reference's rings take ~20 s per orbit: both exact-disc cases are slow tests.)
EXACT_TOL = {"c200": 1e-9, "x": 1e-4, "peri": 1e-4}
W25 = (-1.1, -28.0, -21.5, -87.1, -198.9, 135.4)
CASES = {
    "brooks2025": dict(m200=9.1e11, c200=14.5, m_lmc=2.3e11, a_lmc=18.9, lam=0.7, state=W25),
    "fiducial": dict(m200=1e12, c200=None, m_lmc=1.5e11, a_lmc=None, lam=1.0, state=None),
    "no_friction": dict(m200=1e12, c200=None, m_lmc=1.5e11, a_lmc=None, lam=0.0, state=None),
}


@pytest.mark.parametrize("case,disc", [pytest.param("brooks2025", "miyamoto-nagai", marks=pytest.mark.slow),
                                       ("fiducial", "miyamoto-nagai"),
                                       pytest.param("no_friction", "miyamoto-nagai", marks=pytest.mark.slow),
                                       pytest.param("fiducial", "exact", marks=pytest.mark.slow),
                                       pytest.param("no_friction", "exact", marks=pytest.mark.slow)])
def test_mw_lmc_orbit_matches_scipy_reference(case, disc):
    """Goals of the issue: 1e-2 kpc and 1e-6 in c200. Miyamoto-Nagai disc: asserted 1e-5 kpc and 1e-9 (both
    integrations run at tolerances near 1e-10); measured (CPU) LMC 2.2 Gyr ago 4e-8 / 8e-9 / 7e-9 kpc apart,
    pericentres 30.308444 / 46.939435 / 46.922498 kpc equal to 1e-6 kpc, c200 = 14.131627931 in both codes.
    Exact disc (jaxhalo's table against the reference's rings): see EXACT_TOL."""
    c = CASES[case]
    exact = disc == "exact"
    solar = frames.SolarParameters()
    c200 = c["c200"] if c["c200"] is not None else _solve_c200(c["m200"], float(solar.galcen_distance), exact_disc=exact)
    a_lmc = c["a_lmc"] if c["a_lmc"] is not None else 8.7 * (np.sqrt(c["m_lmc"] / 1.7e10) - 1)
    if c["state"] is None:
        sc = coord.SkyCoord(ra=80 * u.deg, dec=-70 * u.deg, distance=49.6 * u.kpc, pm_ra_cosdec=1.9 * u.mas / u.yr,
                            pm_dec=0.33 * u.mas / u.yr, radial_velocity=262.2 * u.km / u.s
                            ).transform_to(astropy_galactocentric(solar))
        x0, v0 = sc.cartesian.xyz.to_value(u.kpc), sc.velocity.d_xyz.to_value(u.km / u.s)
    else:
        x0, v0 = np.array(c["state"][:3]), np.array(c["state"][3:])
    ref = _reference(c["m200"], c200, c["m_lmc"], a_lmc, c["lam"], x0, v0, exact_disc=exact)
    assert ref.success
    tol = EXACT_TOL if exact else {"c200": 1e-9, "x": 1e-5, "peri": 1e-5}

    orbit = eqx.filter_jit(lambda *a, **k: mwlmc.mw_lmc_orbit(*a, disc=disc, **k))(
        c["m200"], c["m_lmc"], c["lam"], c200=c["c200"], lmc_scale_radius=c["a_lmc"],
        lmc_phase_space=None if c["state"] is None else np.array(c["state"]), solar=solar)
    if c["c200"] is None:
        np.testing.assert_allclose(float(orbit.mw.c200), c200, rtol=tol["c200"])
    np.testing.assert_allclose(float(orbit.lmc.a), a_lmc, rtol=1e-12)

    x_ref = ref.sol(-T_BACK)[6:9]
    err = np.linalg.norm(np.asarray(orbit.lmc_position(-T_BACK)) - x_ref)
    print(f"{case}/{disc}: c200 {float(orbit.mw.c200):.10f} vs {c200:.10f}; LMC at -2.2 Gyr off by {err:.2e} kpc")
    assert err < tol["x"], err

    t_grid = np.linspace(-T_BACK, 0.0, 2201)
    sep_ref = lambda t: float(np.linalg.norm(ref.sol(t)[6:9] - ref.sol(t)[0:3]))  # noqa: E731
    sep_jh = lambda t: float(np.linalg.norm(np.asarray(orbit.separation(t))))  # noqa: E731
    s_ref = np.array([sep_ref(t) for t in t_grid])
    assert s_ref.min() > 15.0  # the reference's bulge is a point mass there
    _, peri_ref = _pericentre(sep_ref, t_grid)
    _, peri_jh = _pericentre(sep_jh, t_grid[::20])
    assert abs(peri_jh - peri_ref) < tol["peri"], (peri_jh, peri_ref)
    print(f"{case}/{disc}: c200 {float(orbit.mw.c200):.9f} vs {c200:.9f}; LMC at -2.2 Gyr off by {err:.2e} kpc; "
          f"pericentre {peri_jh:.6f} vs {peri_ref:.6f} kpc")
