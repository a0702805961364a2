"""Optional cross-check against gala (an independent C integrator): the same leapfrog orbits in a
static MW-like host with the LMC moving on a tabulated track agree to 1e-6 kpc after 2.2 Gyr."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.constants import KMS_TO_KPC_PER_MYR
from jaxhalo.dynamics.potentials import NFW, Composite, Hernquist, exponential_disc
from jaxhalo.simulation.tracer_orbits import integrate_orbits
from jaxhalo.simulation.brooks import TabulatedTrack

gp = pytest.importorskip("gala.potential")


@pytest.mark.slow
def test_leapfrog_matches_gala_with_lmc_on_a_track():
    import astropy.units as u
    import gala.dynamics as gd
    import gala.integrate as gi
    from gala.units import galactic

    t = np.linspace(-2200.0, 0.0, 2201)
    # an LMC-like track: a decelerating, curving path ending at (-1, -41, -28) kpc
    lmc_x = np.stack([-1.0 + 0.02 * t, -41.0 + 0.12 * t + 2e-5 * t**2, -28.0 - 0.1 * t], axis=1)
    lmc_v = np.stack([0.02 + 0 * t, 0.12 + 4e-5 * t, -0.1 + 0 * t], axis=1) / KMS_TO_KPC_PER_MYR
    zeros = np.zeros_like(lmc_x)
    track = TabulatedTrack(jnp.asarray(t[0]), jnp.asarray(t[1] - t[0]), jnp.asarray(zeros), jnp.asarray(zeros),
                           jnp.asarray(lmc_x), jnp.asarray(lmc_v))
    halo, bulge, lmc = NFW(8.0e6, 18.0), Hernquist(1.2e10, 0.7), Hernquist(1.5e11, 17.0)
    disc = exponential_disc()
    host = Composite((halo,) + tuple(disc.components) + (bulge,))
    x0 = np.array([[30.0, 5.0, -10.0], [-60.0, 20.0, 40.0], [10.0, -80.0, 5.0]])
    v0 = np.array([[20.0, 150.0, 30.0], [-50.0, -40.0, 90.0], [100.0, 20.0, -60.0]])
    xj, vj = integrate_orbits(x0, v0, host, lmc, track, t0=-2200.0, t1=0.0, dt=1.0)

    comps = {"lmc": gp.TimeInterpolatedPotential(gp.HernquistPotential, t * u.Myr, m=1.5e11 * u.Msun, c=17.0 * u.kpc,
                                                 origin=lmc_x * u.kpc, units=galactic),  # first: see bench_simulator
             "halo": gp.NFWPotential(m=4 * np.pi * 8.0e6 * 18.0**3 * u.Msun, r_s=18.0 * u.kpc, units=galactic),
             "bulge": gp.HernquistPotential(m=1.2e10 * u.Msun, c=0.7 * u.kpc, units=galactic)}
    for i, d in enumerate(disc.components):
        comps[f"disc{i}"] = gp.MiyamotoNagaiPotential(m=float(d.mass) * u.Msun, a=float(d.a) * u.kpc,
                                                      b=float(d.b) * u.kpc, units=galactic)
    w0 = gd.PhaseSpacePosition(pos=x0.T * u.kpc, vel=v0.T * u.km / u.s)
    orbit = gp.Hamiltonian(gp.CCompositePotential(**comps)).integrate_orbit(
        w0, t=t * u.Myr, Integrator=gi.LeapfrogIntegrator, store_all=False)
    xg = orbit.pos.xyz.to_value(u.kpc).reshape(3, -1).T
    vg = orbit.vel.d_xyz.to_value(u.km / u.s).reshape(3, -1).T
    np.testing.assert_allclose(np.asarray(xj), xg, atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(vj), vg, atol=1e-5, rtol=0)
