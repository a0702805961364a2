"""Throughput of the halo simulation: particle-steps per second, leapfrog vs adaptive, f64 vs f32.

One simulation = 20,000 particles integrated 2.2 Gyr in an NFW + Hernquist-bulge host with a
Hernquist LMC on a uniform track (the MW moving too). Also: a small vmapped batch, DF build +
sampling, and gala's leapfrog on the same problem (LMC on a TimeInterpolatedPotential, listed
first) when gala is importable. Energy conservation (static host) is recorded for each solver.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, timeit, write_results
from jaxhalo.dynamics.densities import DoublePowerLawDensity
from jaxhalo.dynamics.df import SphericalProfile, constant_beta_df, sample_df
from jaxhalo.dynamics.potentials import NFW, Hernquist
from jaxhalo.simulation.tracer_orbits import StaticTrack, UniformTrack, integrate_orbits

N = 20_000
T0 = -2200.0


def _setup(dtype, n):
    host = NFW(jnp.asarray(1.0e7, dtype), jnp.asarray(16.0, dtype)) + Hernquist(
        jnp.asarray(1.5e10, dtype), jnp.asarray(0.7, dtype)
    )
    lmc = Hernquist(jnp.asarray(1.5e11, dtype), jnp.asarray(15.0, dtype))
    track = UniformTrack(
        mw0=jnp.zeros(3, dtype),
        mw_vel=jnp.asarray([10.0, -30.0, 25.0], dtype),
        lmc0=jnp.asarray([-1.0, -41.0, -27.0], dtype),
        lmc_vel=jnp.asarray([-60.0, -210.0, 200.0], dtype),
    )
    return host, lmc, track


def run(quick: bool = False) -> list[dict]:
    n = 2000 if quick else N
    records: list[dict] = []
    host64, _, _ = _setup(jnp.float64, n)
    df = constant_beta_df(DoublePowerLawDensity(15.0, 4.0), SphericalProfile(host64), 0.3, r_min=1.0, r_max=500.0)
    sj = jax.jit(sample_df, static_argnums=2)
    t = timeit(lambda: sj(jax.random.key(0), df, n), repeats=3)
    records.append({"case": "sample_df", "n_particles": n, "dtype": "float64", **t})
    x0, v0 = sj(jax.random.key(0), df, n)

    configs = [("leapfrog", 1.0, None), ("dopri8", None, 1e-8), ("tsit5", None, 1e-6)]
    n_steps_adaptive = None
    for dtype in (jnp.float64, jnp.float32):
        host, lmc, track = _setup(dtype, n)
        xs, vs = x0.astype(dtype), v0.astype(dtype)
        energy = lambda x, v, h=host: 0.5 * jnp.sum(v * v, axis=1) + h.potential(x)  # noqa: E731
        for solver, dt, tol in configs:
            if dtype == jnp.float32 and solver != "leapfrog":
                tol = 1e-6  # float32 cannot reach 1e-8 relative
            kw = dict(solver=solver, dt=dt or 1.0, rtol=tol or 1e-8, atol=tol or 1e-8, t0=T0, t1=0.0)
            fn = jax.jit(lambda x, v, kw=kw, host=host, lmc=lmc, track=track: integrate_orbits(x, v, host, lmc, track, **kw))
            t0 = time.perf_counter()
            compiled = fn.lower(xs, vs).compile()
            compile_s = time.perf_counter() - t0
            if solver == "leapfrog":
                tm = timeit(lambda: compiled(xs, vs), repeats=2, min_time=0.0)
            else:  # adaptive solves are long: one timed call
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(xs, vs))
                tm = {"best_s": time.perf_counter() - t0, "n": 1}
            # accuracy: relative energy error in the static host (same solver settings) on the
            # first 2000 particles, r0 > 10 kpc
            st = jax.jit(lambda x, v, kw=kw, host=host: integrate_orbits(x, v, host, None, StaticTrack(), **kw))
            xe, ve = st(xs[:2000], vs[:2000])
            de = np.abs(np.asarray(energy(xe, ve), np.float64) / np.asarray(energy(xs[:2000], vs[:2000]), np.float64) - 1)
            outer = np.linalg.norm(np.asarray(x0[:2000]), axis=1) > 10.0
            n_steps = int(round(2200.0 / dt)) if solver == "leapfrog" else None
            rec = {
                "case": f"simulate_{solver}",
                "dtype": jnp.dtype(dtype).name,
                "n_particles": n,
                "dt_myr": dt,
                "tol": tol,
                "compile_s": compile_s,
                **tm,
                "energy_rel_err_median_r0_gt_10kpc": float(np.median(de[outer])),
                "energy_rel_err_p99_r0_gt_10kpc": float(np.quantile(de[outer], 0.99)),
                "energy_rel_err_median_all": float(np.median(de)),
            }
            if n_steps:
                rec["particle_steps_per_s"] = n * n_steps / tm["best_s"]
            records.append(rec)
            print(rec)

    # a small vmapped batch of leapfrog simulations (LMC mass varies)
    n_batch = 4
    host, lmc, track = _setup(jnp.float64, n)

    def one(m):
        return integrate_orbits(x0, v0, host, Hernquist(m, 15.0), track, solver="leapfrog", dt=1.0, t0=T0, t1=0.0)

    fb = jax.jit(jax.vmap(one))
    masses = jnp.linspace(5e10, 2.5e11, n_batch)
    jax.block_until_ready(fb(masses))
    tb = timeit(lambda: fb(masses), repeats=1, min_time=0.0)
    records.append(
        {"case": "batch_leapfrog", "dtype": "float64", "n_sims": n_batch, "n_particles": n, **tb,
         "particle_steps_per_s": n_batch * n * 2200 / tb["best_s"]}
    )
    print(records[-1])
    records.extend(_gala(x0, v0, n, records))
    return records


def _gala(x0, v0, n, records) -> list[dict]:
    try:
        import astropy.units as u
        import gala.dynamics as gd
        import gala.potential as gp
        from gala.units import galactic
    except ImportError:
        return []
    k = 1.022712165045695e-3
    times = np.linspace(T0, 0.0, 2201)
    mw_pos = np.array([10.0, -30.0, 25.0])[None] * k * times[:, None]
    lmc_pos = np.array([-1.0, -41.0, -27.0])[None] + np.array([-60.0, -210.0, 200.0])[None] * k * times[:, None]
    lmc = gp.TimeInterpolatedPotential(
        gp.HernquistPotential, times * u.Myr, m=1.5e11 * u.Msun, c=15.0 * u.kpc, origin=lmc_pos * u.kpc, units=galactic
    )
    m_nfw = 4 * np.pi * 1.0e7 * 16.0**3
    nfw = gp.TimeInterpolatedPotential(
        gp.NFWPotential, times * u.Myr, m=m_nfw * u.Msun, r_s=16.0 * u.kpc, origin=mw_pos * u.kpc, units=galactic
    )
    bulge = gp.TimeInterpolatedPotential(
        gp.HernquistPotential, times * u.Myr, m=1.5e10 * u.Msun, c=0.7 * u.kpc, origin=mw_pos * u.kpc, units=galactic
    )
    pot = gp.CCompositePotential(lmc=lmc, nfw=nfw, bulge=bulge)  # LMC first (see issue 5)
    w0 = gd.PhaseSpacePosition(pos=np.asarray(x0).T * u.kpc, vel=np.asarray(v0).T * u.km / u.s)
    H = gp.Hamiltonian(pot)
    t0 = time.perf_counter()
    H.integrate_orbit(w0, dt=1.0 * u.Myr, t1=T0 * u.Myr, t2=0.0 * u.Myr, Integrator="leapfrog", store_all=False)
    gala_s = time.perf_counter() - t0
    jax_s = next(r["best_s"] for r in records if r["case"] == "simulate_leapfrog" and r["dtype"] == "float64")
    rec = {
        "case": "gala_leapfrog",
        "n_particles": n,
        "dt_myr": 1.0,
        "gala_s": gala_s,
        "jaxhalo_leapfrog_f64_s": jax_s,
        "speedup_jaxhalo_over_gala": gala_s / jax_s,
    }
    print(rec)
    return [rec]


if __name__ == "__main__":
    import sys

    jax.config.update("jax_enable_x64", True)
    quick = "--quick" in sys.argv
    recs = run(quick=quick)
    meta = {
        "description": "20k-particle halo, 2.2 Gyr, NFW+Hernquist host + moving Hernquist LMC",
        "device": device_name(),
        "reference_agama_2threads_s": 11.8,
        "reference_gala_leapfrog_s": 3.4,
    }
    if not quick:
        print(write_results("simulate", recs, meta))
