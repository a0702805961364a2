"""astropy Quantities in the simulator's configuration and parameters: converted once, equal to floats."""

from __future__ import annotations

import dataclasses
import math

import astropy.units as u
import jax
import numpy as np
import pytest

from jaxhalo.simulation.brooks import (
    FIDUCIAL_THETA,
    ObsConfig,
    SimConfig,
    SimulatorError,
    parameter_valid,
    simulate,
    theta_from_dict,
)
from jaxhalo.simulation.parameters import PARAMETER_NAMES, theta_to_internal

KMS = u.km / u.s
MASYR = u.mas / u.yr
#: FIDUCIAL_THETA as Quantities (log10_m200 as a mass, d_lmc in pc, v_los in m/s: conversions that round)
THETA_Q = {"log10_m200": 1e12 * u.Msun, "m_lmc": 1.5e11 * u.Msun, "log10_lambda_df": 0.0, "ra_lmc": 80.0 * u.deg,
           "dec_lmc": -70.0 * u.deg, "d_lmc": 49600.0 * u.pc, "vlos_lmc": 262200.0 * u.m / u.s,
           "pmra_lmc": 1.9 * MASYR, "pmdec_lmc": 0.33 * MASYR, "beta0": 0.5, "r_dens": 15.0 * u.kpc, "gamma": 4.0}


def _fields_close(a, b) -> None:
    """Every field equal, floats to 4 ulp (a unit conversion multiplies by a rounded factor)."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(y, float):
            assert isinstance(x, float) and math.isclose(x, y, rel_tol=1e-15), (f.name, x, y)
        elif isinstance(y, tuple):
            np.testing.assert_allclose(x, y, rtol=1e-15, err_msg=f.name)
        else:
            assert x == y, (f.name, x, y)


def test_simconfig_with_quantities_equals_simconfig_with_floats():
    x, v = (-1.1, -28.0, -21.5), (-87.1, -198.9, 135.4)
    q = SimConfig(n_particles=100, dt=500 * u.kyr, t_back=2.2 * u.Gyr, r_min=100 * u.pc, r_max=500 * u.kpc,
                  v_circ_sun=235e3 * u.m / u.s, c200=14.5 * u.dimensionless_unscaled, lmc_scale_radius=18.9 * u.kpc,
                  lmc_phase_space=(x * u.kpc, v * KMS), friction_sigma=120 * KMS, orbit_dt=1 * u.Myr)
    f = SimConfig(n_particles=100, dt=0.5, t_back=2200.0, r_min=0.1, r_max=500.0, v_circ_sun=235.0, c200=14.5,
                  lmc_scale_radius=18.9, lmc_phase_space=x + v, friction_sigma=120.0, orbit_dt=1.0)
    _fields_close(q, f)
    hash(q)  # still a static jit argument
    assert q.n_steps == f.n_steps == 4400
    # the six-entry form with Quantities, and plain (x, v) pairs
    six = SimConfig(lmc_phase_space=tuple(c * u.kpc for c in x) + tuple(c * KMS for c in v))
    assert six.lmc_phase_space == SimConfig(lmc_phase_space=(x, v)).lmc_phase_space == x + v
    _fields_close(ObsConfig(v_los_err=2000 * u.m / u.s, pm_l_err=150 * u.uas / u.yr, r_gal_range=(30, 160) * u.kpc),
                  ObsConfig(v_los_err=2.0, pm_l_err=0.15, r_gal_range=(30.0, 160.0)))


def test_simconfig_refuses_wrong_units():
    with pytest.raises(u.UnitConversionError, match=r"^t_back: .*kpc.*Myr"):
        SimConfig(t_back=2.2 * u.kpc)
    with pytest.raises(u.UnitConversionError, match=r"^lmc_phase_space velocity: "):
        SimConfig(lmc_phase_space=([1.0, 2.0, 3.0] * u.kpc, [1.0, 2.0, 3.0] * u.kpc))
    with pytest.raises(u.UnitConversionError, match=r"^lmc_phase_space: one Quantity"):
        SimConfig(lmc_phase_space=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0] * u.kpc)
    with pytest.raises(SimulatorError, match="dt must be a scalar"):
        SimConfig(dt=[1.0, 2.0] * u.Myr)


def test_theta_with_quantities():
    theta = theta_from_dict(THETA_Q)
    np.testing.assert_allclose(theta, FIDUCIAL_THETA, rtol=1e-15)
    seq = theta_to_internal([THETA_Q[n] for n in PARAMETER_NAMES])
    np.testing.assert_allclose(seq, FIDUCIAL_THETA, rtol=1e-15)
    assert theta_to_internal({"log10_m200": 11.5 * u.dex(u.Msun)})[0] == 11.5
    with pytest.raises(u.UnitConversionError, match=r"^d_lmc: "):
        theta_from_dict({"d_lmc": 49.6 * KMS})
    with pytest.raises(u.UnitConversionError, match=r"^theta: one Quantity"):
        theta_to_internal(FIDUCIAL_THETA * u.kpc)
    # the eager entry points take them; a wrong unit is refused before any work
    config = SimConfig(c200=14.5)  # no c200 solve: cheap
    assert bool(parameter_valid(THETA_Q, config)) and bool(parameter_valid(FIDUCIAL_THETA, config))
    assert not bool(parameter_valid({**THETA_Q, "m_lmc": 1e10 * u.Msun}, config))  # below M(<8.7 kpc)
    with pytest.raises(u.UnitConversionError, match=r"^beta0: "):
        simulate({**THETA_Q, "beta0": 0.5 * u.kpc}, jax.random.key(0), config)


@pytest.mark.slow
def test_simulate_with_quantities_equals_floats():
    config = SimConfig(n_particles=50, dt=2.0, t_back=200.0, c200=14.5)
    key = jax.random.key(1)
    a = simulate(THETA_Q, key, config).snapshot
    b = simulate(FIDUCIAL_THETA, key, config).snapshot
    # theta from Quantities is FIDUCIAL_THETA to an ulp; 200 Myr of leapfrog keeps that far below 1e-9
    np.testing.assert_allclose(a.positions, b.positions, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.velocities, b.velocities, rtol=1e-9, atol=1e-9)


def test_observe_integrate_orbits_and_df_take_quantities():
    """observe, integrate_orbits and constant_beta_df convert Quantities at the call: the same numbers as
    the internal floats (to the rounding of the conversion factors), and a wrong dimension is an error
    that names the argument."""
    import jax.numpy as jnp

    from jaxhalo.dynamics.densities import DehnenDensity
    from jaxhalo.dynamics.df import SphericalProfile, constant_beta_df
    from jaxhalo.dynamics.potentials import Hernquist
    from jaxhalo.simulation.observe import observe
    from jaxhalo.simulation.tracer_orbits import StaticTrack, integrate_orbits

    x = jnp.array([[30.0, 10.0, 5.0], [60.0, -20.0, 10.0], [-80.0, 5.0, 40.0]])
    v = jnp.array([[100.0, 50.0, -20.0], [-30.0, 80.0, 10.0], [5.0, -60.0, 90.0]])
    key = jax.random.PRNGKey(3)
    plain = observe(key, x, v, v_los_err=2.0, pm_l_err=0.15, r_gal_range=(30.0, 160.0))
    with_units = observe(key, np.asarray(x) * u.kpc, (np.asarray(v) * KMS).to(u.m / u.s), v_los_err=2000.0 * u.m / u.s,
                         pm_l_err=0.15 * MASYR, r_gal_range=(30.0, 160.0) * u.kpc)
    for name in plain._fields:
        np.testing.assert_allclose(np.asarray(getattr(with_units, name)), np.asarray(getattr(plain, name)), rtol=1e-12,
                                   err_msg=name)
    with pytest.raises(u.UnitConversionError, match="positions"):
        observe(key, np.asarray(x) * KMS, v)

    host = Hernquist(1.0e12, 20.0)
    a = integrate_orbits(x, v, host, None, StaticTrack(), t0=-100.0, t1=0.0, dt=1.0)
    b = integrate_orbits(np.asarray(x) * u.kpc, np.asarray(v) * KMS, host, None, StaticTrack(), t0=-0.1 * u.Gyr,
                         t1=0.0 * u.Myr, dt=1.0e6 * u.yr)
    for p, q in zip(a, b):
        np.testing.assert_allclose(np.asarray(q), np.asarray(p), rtol=1e-12)
    with pytest.raises(u.UnitConversionError, match="dt"):
        integrate_orbits(x, v, host, None, StaticTrack(), t0=-100.0, dt=1.0 * u.kpc)

    tracer, profile = DehnenDensity(1.0e12, 20.0, 1.0), SphericalProfile(host)
    grid = dict(n_energy=64, n_quad=32, n_rows=48, n_t=128, n_u=128, n_mass=512)
    df_plain = constant_beta_df(tracer, profile, 0.3, r_min=0.1, r_max=500.0, **grid)
    df_units = constant_beta_df(tracer, profile, 0.3, r_min=100.0 * u.pc, r_max=0.5 * u.Mpc, **grid)
    for p, q in zip(jax.tree.leaves(df_plain), jax.tree.leaves(df_units)):
        np.testing.assert_allclose(np.asarray(q), np.asarray(p), rtol=1e-10)
