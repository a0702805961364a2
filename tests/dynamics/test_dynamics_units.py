"""astropy Quantities at the dynamics entries: converted to kpc, km/s, Msun, Myr; wrong units refused."""

from __future__ import annotations

import astropy.units as u
import diffrax
import numpy as np
import pytest

from jaxhalo.dynamics.densities import DoublePowerLawDensity
from jaxhalo.dynamics.mwlmc import LMCObservables, integrate_mw_lmc, lmc_present_day
from jaxhalo.dynamics.orbits import energy, integrate_orbit
from jaxhalo.dynamics.potentials import (
    NFW,
    Hernquist,
    MiyamotoNagai,
    lmc_hernquist,
    milky_way,
)

KMS = u.km / u.s


@pytest.fixture(scope="module")
def mw():
    """A cheap stand-in for the Milky Way (the unit handling is in the Potential base class and the
    field converters, shared by :func:`milky_way`, whose own test is slow)."""
    return NFW(8e6, 20.0) + MiyamotoNagai(5e10, 3.0, 0.3)


def test_potential_at_8000_pc_is_potential_at_8_kpc(mw):
    x_kpc = np.array([[8.0, 0.0, 0.0], [3.0, -4.0, 12.0]])
    for method in ("potential", "acceleration", "density", "circular_velocity"):
        bare = getattr(mw, method)(x_kpc)
        # the pc -> kpc factor is a rounded 1e-3: a few ulp
        np.testing.assert_allclose(getattr(mw, method)(x_kpc * 1000.0 * u.pc), bare, rtol=1e-13, err_msg=method)
    # bare numbers stay kpc: 8000 is 8 Mpc, where the potential is far shallower
    assert abs(float(mw.potential([8000.0, 0.0, 0.0]))) < 0.05 * abs(float(mw.potential([8.0, 0.0, 0.0])))


def test_wrong_dimension_names_the_argument(mw):
    with pytest.raises(u.UnitConversionError, match=r"^x: .*km / s.*kpc"):
        mw.potential([8.0, 0.0, 0.0] * KMS)
    with pytest.raises(ValueError, match=r"^r: .*solMass.*kpc"):
        mw.components[0].enclosed_mass(1e10 * u.Msun)
    with pytest.raises(u.UnitConversionError, match=r"^m200: "):
        milky_way(m200=200 * u.kpc)
    with pytest.raises(u.UnitConversionError, match=r"^a: "):
        Hernquist(1e11, 3.0 * u.Msun)


def test_spherical_methods_and_parameters_take_quantities(mw):
    r = np.array([1.0, 20.0, 150.0])
    halo = mw.components[0]
    np.testing.assert_allclose(halo.enclosed_mass(r * 1e3 * u.pc), halo.enclosed_mass(r), rtol=1e-13)
    np.testing.assert_allclose(halo.potential_r(r * u.kpc), halo.potential_r(r), rtol=0)
    np.testing.assert_allclose(halo.circular_velocity_r(r * u.kpc), halo.circular_velocity_r(r), rtol=0)
    h_q = Hernquist(1.5e11 * u.Msun, 18.9 * u.kpc, center=[1000.0, 0.0, 0.0] * u.pc)
    h_f = Hernquist(1.5e11, 18.9, center=[1.0, 0.0, 0.0])
    np.testing.assert_allclose(h_q.potential([[5.0, 1.0, 2.0]]), h_f.potential([[5.0, 1.0, 2.0]]), rtol=1e-13)
    nfw = NFW(1e7 * u.Msun / u.kpc**3, 20 * u.kpc)
    np.testing.assert_allclose(nfw.density([[10.0, 0.0, 0.0]] * u.kpc), NFW(1e7, 20.0).density([[10.0, 0.0, 0.0]]))
    np.testing.assert_allclose(lmc_hernquist(1.5e11 * u.Msun, radius=8700 * u.pc).a, lmc_hernquist(1.5e11).a,
                               rtol=1e-13)
    dpl = DoublePowerLawDensity(15 * u.kpc, 4.0)
    np.testing.assert_allclose(dpl.density(r * u.kpc), DoublePowerLawDensity(15.0, 4.0).density(r), rtol=0)


def test_orbit_with_quantity_initial_conditions_equals_bare_floats():
    pot = Hernquist(1e11, 5.0)
    x0, v0 = np.array([10.0, 0.0, 1.0]), np.array([0.0, 150.0, 20.0])
    kw = dict(solver=diffrax.Tsit5(), rtol=1e-9, atol=1e-9)  # cheaper to compile than the default Dopri8
    bare = integrate_orbit(pot, np.concatenate([x0, v0]), 0.0, 100.0, ts=[50.0, 100.0], **kw)
    # t0, t1 convert exactly (diffrax compiles once per value of these Python floats), ts and w0 to an ulp
    q = integrate_orbit(pot, (x0 * 1e3 * u.pc, v0 * KMS), 0.0 * u.Gyr, 100.0 * u.Myr, ts=[5e4, 1e5] * u.kyr, **kw)
    # the adaptive solve from inputs an ulp apart agrees to far below its tolerance and any unit slip
    np.testing.assert_allclose(q.positions, bare.positions, rtol=1e-9)
    np.testing.assert_allclose(q.velocities, bare.velocities, rtol=1e-9)
    np.testing.assert_allclose(q.ts, bare.ts, rtol=1e-15)
    e = energy(pot, x0 * 1e3 * u.pc, v0 * 1e3 * u.m / u.s)
    np.testing.assert_allclose(e, energy(pot, x0, v0), rtol=1e-13)
    with pytest.raises(u.UnitConversionError, match="^w0: one Quantity"):
        integrate_orbit(pot, np.concatenate([x0, v0]) * u.kpc, 0.0, 100.0)
    with pytest.raises(u.UnitConversionError, match="^t1: "):
        integrate_orbit(pot, np.concatenate([x0, v0]), 0.0, 100.0 * u.kpc)


@pytest.mark.slow
def test_milky_way_builder_takes_quantities():
    mw = milky_way()
    mw_q = milky_way(m200=1e12 * u.Msun, v_circ_sun=235e3 * u.m / u.s, r_sun=8122 * u.pc)
    np.testing.assert_allclose(mw_q.c200, mw.c200, rtol=1e-12)  # c200 bisection to 1e-14
    np.testing.assert_allclose(mw.potential([8000.0, 0.0, 0.0] * u.pc), mw.potential([8.0, 0.0, 0.0]), rtol=1e-13)


def test_lmc_observables_take_quantities():
    bare = LMCObservables(80.0, -70.0, 49.6, 262.2, 1.9, 0.33)
    q = LMCObservables(80.0 * u.deg, -70.0 * u.deg, 49600.0 * u.pc, 262.2 * KMS, 1.9 * u.mas / u.yr,
                       0.33 * u.mas / u.yr)
    for a, b in zip(lmc_present_day(q), lmc_present_day(bare)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    with pytest.raises(u.UnitConversionError, match="^ra: "):
        LMCObservables(ra=80.0 * u.kpc)
    with pytest.raises(u.UnitConversionError, match="^v_lmc: "):  # refused before any integration
        integrate_mw_lmc(Hernquist(1e12, 30.0), Hernquist(1e11, 10.0), [1.0, -40.0, -28.0],
                         [-57.0, -226.0, 221.0] * u.kpc)


@pytest.mark.slow
def test_mw_lmc_orbit_takes_quantities():
    mw, lmc = milky_way(), lmc_hernquist(1.5e11)
    x, v = lmc_present_day()
    kw = dict(rtol=1e-8, atol=1e-8)
    o_bare = integrate_mw_lmc(mw, lmc, x, v, t_back=200.0, **kw)
    o_q = integrate_mw_lmc(mw, lmc, np.asarray(x) * u.kpc, np.asarray(v) * KMS, t_back=0.2 * u.Gyr,
                           sigma=120 * KMS, **kw)
    # t_back = 0.2 Gyr is 200 Myr to an ulp: the same solve to its tolerance
    np.testing.assert_allclose(o_q.lmc_position(-150.0 * u.Myr), o_bare.lmc_position(-150.0), rtol=1e-9)
