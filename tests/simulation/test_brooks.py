"""The chained Brooks et al. simulator: determinism, vmap = single calls, the cusp-steepening
decision (non-negative DF over the prior corners, outer density and sigma_r unchanged), invalid
parameters."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from jaxhalo.simulation import brooks as S
from jaxhalo.constants import G
from jaxhalo.dynamics.df import NegativeDFError, SphericalProfile, constant_beta_df, sample_df
from jaxhalo.dynamics.potentials import milky_way, spherical_average
from jaxhalo.dynamics.densities import DoublePowerLawDensity, steepen_cusp_for_beta

#: few particles, short integration: compile-dominated (~25 s per compiled function on 2 cores)
SMALL_CFG = S.SimConfig(n_particles=64, dt=2.0, t_back=300.0)
SMALL_DF = dict(n_energy=64, n_quad=48, n_rows=32, n_t=128, n_u=128, n_mass=1024)


@pytest.fixture(scope="module")
def run_small():
    return jax.jit(S.simulate_present_day, static_argnums=2)


def test_parameter_names_and_fiducial():
    assert S.PARAMETER_NAMES == ("log10_m200", "m_lmc", "log10_lambda_df", "ra_lmc", "dec_lmc", "d_lmc",
                                 "vlos_lmc", "pmra_lmc", "pmdec_lmc", "beta0", "r_dens", "gamma")
    assert len(S.PARAMETER_UNITS) == 12 and set(S.PRIOR_TABLE1) == set(S.PARAMETER_NAMES)
    d = S.theta_to_dict(S.FIDUCIAL_THETA)
    assert d["m_lmc"] == 1.5e11 and d["log10_m200"] == 12.0
    np.testing.assert_array_equal(S.theta_from_dict({"beta0": 0.3})[9], 0.3)
    with pytest.raises(S.SimulatorError, match="unknown"):
        S.theta_from_dict({"m200": 1.0})


def test_parameter_validity():
    th = np.tile(S.FIDUCIAL_THETA, (4, 1))
    th[1, 0] = 10.8  # log10 M200 too low for v_c(R_sun) = 235 km/s with c200 <= 100
    th[2, 1] = 1.0e10  # LMC lighter than its M(<8.7 kpc)
    th[3, 0] = 11.2  # just feasible
    np.testing.assert_array_equal(np.asarray(S.parameter_valid(th)), [True, False, False, True])
    with pytest.raises(S.SimulatorError, match="cannot be simulated"):
        S.simulate(th[1], jax.random.key(0), SMALL_CFG)
    with pytest.raises(S.SimulatorError, match="shape"):
        S.simulate(th[:, :5], jax.random.key(0), SMALL_CFG)


def test_same_key_is_bit_identical(run_small):
    """Determinism of the whole chain (c200 solve, orbit, DF, sampling, tracer orbits) on CPU."""
    th = jnp.asarray(S.FIDUCIAL_THETA)
    a = run_small(th, jax.random.key(3), SMALL_CFG)
    b = run_small(th, jax.random.key(3), SMALL_CFG)
    assert np.all(np.isfinite(np.asarray(a.positions)))
    assert np.array_equal(np.asarray(a.positions), np.asarray(b.positions))
    assert np.array_equal(np.asarray(a.velocities), np.asarray(b.velocities))
    c = run_small(th, jax.random.key(4), SMALL_CFG)
    assert not np.allclose(np.asarray(a.positions), np.asarray(c.positions))


@pytest.mark.slow  # > 30 s on 2 cores; keeps the default run under 12 min
def test_float32_path_samples_the_same_halo(run_small):
    """``SimConfig(dtype="float32")``: the tracers are sampled and integrated in float32 (the MW-LMC
    orbit and the DF tables are built in float64, then cast). float32 draws differ from float64 draws
    for the same key, so the check is distributional: 2,048 present-day particles of each precision
    (32 keys x 64, independent keys) have the same radii and speeds by two-sample KS (p > 0.01; the
    same test tells r_dens = 15 from 20 kpc at p ~ 5e-7 with half as many particles)."""
    from scipy import stats

    th = jnp.asarray(S.FIDUCIAL_THETA)
    cfg32 = dataclasses.replace(SMALL_CFG, dtype="float32")
    a = [run_small(th, jax.random.key(1000 + i), SMALL_CFG) for i in range(32)]
    b = [run_small(th, jax.random.key(1500 + i), cfg32) for i in range(32)]
    assert b[0].positions.dtype == jnp.float32 and b[0].velocities.dtype == jnp.float32
    for field in ("positions", "velocities"):
        xa = np.concatenate([np.linalg.norm(np.asarray(getattr(s, field), float), axis=1) for s in a])
        xb = np.concatenate([np.linalg.norm(np.asarray(getattr(s, field), float), axis=1) for s in b])
        assert np.all(np.isfinite(xb))
        assert stats.ks_2samp(xa, xb).pvalue > 0.01, field


@pytest.mark.slow
def test_vmap_over_thetas_equals_single_calls(run_small):
    """vmap over two thetas (different MW mass, beta0 = 0.85 steepened) and keys = two single calls.

    Equal up to rounding (vmapped kernels fuse differently; the adaptive MW-LMC orbit differs at
    1e-9 kpc): over 300 Myr the tracer orbits do not amplify that beyond 1e-6 kpc.
    """
    th = jnp.asarray(S.FIDUCIAL_THETA)
    thetas = jnp.stack([th, th.at[0].set(12.3).at[9].set(0.85).at[2].set(-1.0)])
    keys = jax.random.split(jax.random.key(1), 2)
    batch = jax.jit(jax.vmap(S.simulate_present_day, in_axes=(0, 0, None)), static_argnums=2)(thetas, keys, SMALL_CFG)
    assert batch.positions.shape == (2, 64, 3)
    for i in range(2):
        one = run_small(thetas[i], keys[i], SMALL_CFG)
        np.testing.assert_allclose(np.asarray(batch.positions[i]), np.asarray(one.positions), atol=1e-6, rtol=0)
        np.testing.assert_allclose(np.asarray(batch.velocities[i]), np.asarray(one.velocities), atol=1e-5, rtol=1e-6)
    assert not np.allclose(np.asarray(batch.positions[0]), np.asarray(batch.positions[1]))


# ------------------------------------------------------------------ Brooks et al. 2025 settings


#: Brooks et al. 2025 §4.1: c200 = 14.5, a_LMC = 18.9 kpc, the LMC's Galactocentric state, the DF in
#: the NFW halo; here with ln Lambda, sigma, the DF radial range and the fixed-step orbit set as well.
BROOKS25_W = (-1.1, -28.0, -21.5, -87.1, -198.9, 135.4)
BROOKS25_CFG = dataclasses.replace(
    SMALL_CFG, c200=14.5, lmc_scale_radius=18.9, lmc_phase_space=BROOKS25_W, coulomb_log=1.5,
    friction_sigma=150.0, df_potential="nfw", r_min=1.0, r_max=300.0, orbit_solver="leapfrog", orbit_dt=1.0)


def test_config_rejects_bad_settings():
    for bad in (dict(c200=-1.0), dict(lmc_scale_radius=0.0), dict(orbit_dt=float("nan")), dict(coulomb_log=-1.0),
                dict(friction_sigma=0.0), dict(df_potential="agama"), dict(orbit_solver="rk4"),
                dict(lmc_phase_space=(1.0, 2.0, 3.0)), dict(tangent_peri_min=0.0), dict(tangent_peri_min=float("inf"))):
        with pytest.raises(S.SimulatorError):
            dataclasses.replace(SMALL_CFG, **bad)
    assert dataclasses.replace(SMALL_CFG, lmc_phase_space=[1, 2, 3, 4, 5, 6]).lmc_phase_space == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    # a given c200 lifts the solvability limit on M200; a given a_LMC the M_LMC > M(<8.7 kpc) one
    th = np.array(S.FIDUCIAL_THETA)
    th[0], th[1] = 10.8, 1.0e10
    assert not bool(S.parameter_valid(th, SMALL_CFG))
    assert bool(S.parameter_valid(th, dataclasses.replace(SMALL_CFG, c200=10.0, lmc_scale_radius=5.0)))


@pytest.mark.slow  # > 20 s on 2 cores; keeps the default run under 12 min
def test_brooks2025_settings_reach_the_simulation():
    """Each Brooks et al. 2025 setting of SimConfig lands in the simulation (one compile)."""
    from jaxhalo.dynamics.mwlmc import integrate_mw_lmc
    from jaxhalo.dynamics.potentials import nfw_from_m200_c200

    th = S.theta_from_dict({"log10_m200": np.log10(9.1e11), "m_lmc": 2.3e11, "log10_lambda_df": np.log10(0.7),
                            "beta0": 0.3, "r_dens": 11.5})
    sim = eqx.filter_jit(S.simulate)(jnp.asarray(th), jax.random.key(0), BROOKS25_CFG)
    assert bool(sim.valid) and np.all(np.isfinite(np.asarray(sim.snapshot.positions)))
    np.testing.assert_allclose(sim.mw.c200, 14.5, rtol=0)
    np.testing.assert_allclose(sim.lmc.a, 18.9, rtol=0)
    np.testing.assert_allclose(np.concatenate([sim.track.lmc_x[-1], sim.track.lmc_v[-1]]), BROOKS25_W, atol=1e-12)
    np.testing.assert_allclose([sim.df.r_min, sim.df.r_max], [1.0, 300.0], rtol=1e-12)
    # the DF was built in the NFW halo alone: its Psi(r) is -Phi_NFW(r) of (M200, c200 = 14.5)
    nfw = nfw_from_m200_c200(9.1e11, 14.5)
    r = np.exp(np.asarray(sim.df.ln_r_cdf))
    np.testing.assert_allclose(sim.df.psi_cdf, -np.asarray(nfw.potential_r(r)), rtol=1e-12)
    # the track: ln Lambda = 1.5, sigma = 150 and the fixed step, against the adaptive Dopri8 orbit with
    # the friction rescaled (lambda ln Lambda = 0.7 x 1.5 = 1.05 x 1); leapfrog at 1 Myr over 300 Myr: < 1e-3 kpc
    ref = integrate_mw_lmc(sim.mw, sim.lmc, jnp.asarray(BROOKS25_W[:3]), jnp.asarray(BROOKS25_W[3:]), 1.05,
                           coulomb_log=1.0, sigma=150.0, t_back=300.0)
    lmc_ref = np.asarray(ref.lmc_position(sim.track.times))
    err = np.max(np.linalg.norm(np.asarray(sim.track.lmc_x) - lmc_ref, axis=1))
    assert err < 1e-3, err
    other = integrate_mw_lmc(sim.mw, sim.lmc, jnp.asarray(BROOKS25_W[:3]), jnp.asarray(BROOKS25_W[3:]), 0.7,
                             t_back=300.0)  # the default ln Lambda and sigma would give another orbit
    assert np.max(np.linalg.norm(np.asarray(other.lmc_position(sim.track.times)) - lmc_ref, axis=1)) > 100 * err


# ------------------------------------------------------------------ the cusp-steepening decision


@pytest.fixture(scope="module")
def mw_profiles():
    out = {}
    for m200 in (1.0e12, 10**12.5):
        table = eqx.filter_jit(spherical_average)(eqx.filter_jit(milky_way)(m200))
        out[m200] = (table, SphericalProfile(table))
    return out


@pytest.mark.parametrize("r_dens,gamma", [(10.0, 3.0), (20.0, 3.0), (10.0, 5.0), (20.0, 5.0)])
def test_steepened_df_is_nonnegative_at_prior_corners(mw_profiles, r_dens, gamma):
    """beta0 = 0.85 (the prior's maximum): eq. 2 as is has no DF; steepened it has, for light and heavy MWs."""
    base = DoublePowerLawDensity(r_dens, gamma)
    for _, prof in mw_profiles.values():
        with pytest.raises(NegativeDFError):
            constant_beta_df(base, prof, 0.85, r_min=0.1, r_max=500.0, **SMALL_DF)
        for beta in (0.6, 0.85):
            tracer = steepen_cusp_for_beta(base, beta)
            assert float(tracer.r_core) < 14.0
            df = constant_beta_df(tracer, prof, beta, r_min=0.1, r_max=500.0, **SMALL_DF)  # raises if f_E <= 0
            assert np.all(np.isfinite(np.asarray(df.ln_f)))


def test_steepening_is_exactly_outside_the_core_and_inert_for_small_beta():
    base = DoublePowerLawDensity(20.0, 3.0)
    tr = steepen_cusp_for_beta(base, 0.85)
    r = np.geomspace(float(tr.r_core), 500.0, 50)
    np.testing.assert_array_equal(np.asarray(tr.density(r)), np.asarray(base.density(r)))
    # log-slope inside the ramp: 2 beta + margin deep inside
    r_in = 1e-3
    slope = -float(jax.grad(lambda x: jnp.log(tr.density(jnp.exp(x))))(jnp.log(r_in)))
    assert slope == pytest.approx(1.75, abs=1e-3)
    low = steepen_cusp_for_beta(base, 0.3)
    np.testing.assert_array_equal(np.asarray(low.density(r / 100)), np.asarray(base.density(r / 100)))


def _jeans_sigma_r(r, beta, rho, mass):
    integrand = lambda y: rho(y) * y ** (2 * beta) * G * mass(y) / y**2  # noqa: E731
    val = integrate.quad(integrand, r, np.inf, limit=200, epsrel=1e-10)[0]
    return np.sqrt(val / (rho(r) * r ** (2 * beta)))


@pytest.mark.slow
def test_steepened_df_equals_eq2_df_outside_the_core(mw_profiles):
    """For eps < Psi(r_core) f_E depends only on the density beyond r_core, where the steepened
    profile is eq. 2 exactly: its f_E equals that of eq. 2 built on [r_core, r_max] (which exists)."""
    beta = 0.85
    _, prof = mw_profiles[1.0e12]
    base = DoublePowerLawDensity(20.0, 3.0)
    tr = steepen_cusp_for_beta(base, beta)
    r_core = float(tr.r_core)
    steep = constant_beta_df(tr, prof, beta, r_min=0.1, r_max=500.0, n_energy=1024)
    exact = constant_beta_df(base, prof, beta, r_min=r_core, r_max=500.0)
    # at the nodes of the exact table (its values are exact there; steep's interpolation is fine)
    ln_eps = np.asarray(exact.ln_eps)
    # energies of the radii 1.05 r_core - 160 kpc (the summary window; at lower energies the Abel
    # quadrature of either table is good to ~1% only, changing with n_quad)
    nodes = (ln_eps < np.log(-float(prof.potential_of_r(1.05 * r_core)))) & (
        ln_eps > np.log(-float(prof.potential_of_r(160.0))))
    eps = np.exp(ln_eps[nodes])
    np.testing.assert_allclose(np.asarray(steep.f_energy(eps)), np.exp(np.asarray(exact.ln_f))[nodes], rtol=3e-3)


@pytest.mark.slow
def test_steepened_sample_keeps_outer_density_and_sigma_r(mw_profiles):
    """beta0 = 0.85: over 20-160 kpc the sample follows eq. 2's density (Poisson) and the Jeans
    sigma_r(r) of eq. 2 in the spherically averaged MW (scipy quadrature) to 3%.

    (The DF's sigma_r exceeds Jeans by a few per cent beyond ~150 kpc for gamma = 3 at every beta,
    steepened or not: 1.1% at 157 kpc for beta = 0.3; a DF-table accuracy limit, not the steepening.)
    """
    beta, r_dens, gamma = 0.85, 20.0, 3.0
    table, prof = mw_profiles[1.0e12]
    base = DoublePowerLawDensity(r_dens, gamma)
    df = constant_beta_df(steepen_cusp_for_beta(base, beta), prof, beta, r_min=0.1, r_max=500.0)
    x, v = (np.asarray(a) for a in sample_df(jax.random.key(5), df, 200_000))
    r = np.linalg.norm(x, axis=1)
    vr = np.sum(x * v, axis=1) / r
    rho = lambda y: (y / r_dens) ** -1.0 * (1.0 + y / r_dens) ** (1.0 - gamma)  # noqa: E731
    lr, lm = np.log(np.asarray(table.r)), np.log(np.asarray(table.mass))
    mass = lambda y: np.exp(np.interp(np.log(y), lr, lm))  # noqa: E731  (point mass beyond the table)
    outer = (r > 20.0) & (r < 500.0)
    edges = np.geomspace(20.0, 160.0, 7)
    shell = lambda a, b: integrate.quad(lambda y: 4 * np.pi * y**2 * rho(y), a, b, limit=200)[0]  # noqa: E731
    expected = np.array([shell(a, b) for a, b in zip(edges[:-1], edges[1:])]) / shell(20.0, 500.0) * outer.sum()
    counts = np.histogram(r[outer], edges)[0]
    pulls = (counts - expected) / np.sqrt(expected)
    assert np.all(np.abs(pulls) < 4.0), pulls
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (r > lo) & (r < hi)
        rq = np.quantile(r[m], np.linspace(0.05, 0.95, 7))
        s2 = np.mean([_jeans_sigma_r(q, beta, rho, mass) ** 2 for q in rq])
        ratio = np.sqrt(np.mean(vr[m] ** 2) / s2)
        assert abs(ratio - 1.0) < 0.03, (lo, hi, ratio, m.sum())


@pytest.mark.slow
def test_on_invalid_nan_masks_only_the_invalid_simulation():
    cfg = S.SimConfig(n_particles=32, dt=5.0, t_back=200.0, on_invalid="nan")
    th = np.tile(S.FIDUCIAL_THETA, (2, 1))
    th[1, 0] = 10.8  # no c200
    keys = jax.random.split(jax.random.key(0), 2)
    out = jax.jit(jax.vmap(S.summary_vector, in_axes=(0, 0, None)), static_argnums=2)(jnp.asarray(th), keys, cfg)
    assert out.shape == (2, 52)
    assert np.all(np.isnan(np.asarray(out[1])))
    assert np.isfinite(np.asarray(out[0])).sum() > 0


# ------------------------------------------------------------------ the LMC's effect (fiducial system)


@pytest.fixture(scope="module")
def fiducial_halo():
    """The fiducial simulation (1.5e11 Msun LMC, M200 = 1e12, lambda_DF = 1, beta0 = 0.5) with 8,000 tracers."""
    cfg = S.SimConfig(n_particles=8000, dt=1.0)
    snap = jax.jit(S.simulate_present_day, static_argnums=2)(jnp.asarray(S.FIDUCIAL_THETA), jax.random.key(0), cfg)
    return np.asarray(snap.positions), np.asarray(snap.velocities)


@pytest.mark.slow
def test_fiducial_outer_halo_shows_the_reflex_dipole(fiducial_halo):
    """r > 50 kpc: northern mean v_GSR redshifted, southern blueshifted (Chandra et al. 2025 Fig. 3),
    each beyond 3 standard errors of its mean (Poisson noise of the ~1,400 particles per hemisphere)."""
    from jaxhalo.simulation.observe import observe

    x, v = fiducial_halo
    obs = observe(jax.random.key(1), x, v, None, add_errors=False, r_gal_range=(50.0, 1.0e4))
    sel, b, vg = np.asarray(obs.selected), np.asarray(obs.b), np.asarray(obs.v_gsr)
    stats = {}
    for name, m in (("north", sel & (b > 0)), ("south", sel & (b < 0))):
        stats[name] = (vg[m].mean(), vg[m].std() / np.sqrt(m.sum()), m.sum())
    (mn, en, nn), (ms, es, ns) = stats["north"], stats["south"]
    print(stats)
    assert nn > 1000 and ns > 1000
    assert mn > 3.0 * en and ms < -3.0 * es
    assert mn - ms > 5.0 * np.hypot(en, es)


@pytest.mark.slow
def test_reflex_fit_on_the_simulated_halo_gives_growing_travel_velocity(fiducial_halo):
    """The continuity reflex model (ML fit, jaxhalo.inference.ml.fit_map) on the mock-observed fiducial halo
    (30-160 kpc, default per-star errors): v_travel(120 kpc) exceeds v_travel(40 kpc) by more than
    12 km/s (the measured growth is ~27 km/s; ~3,500 stars give ~3-4 km/s errors per anchor)."""
    from jaxhalo.inference.results import derived_quantities
    from jaxhalo.inference.ml import fit_map
    from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel
    from jaxhalo.simulation.observe import observe, to_catalog

    x, v = fiducial_halo
    obs = observe(jax.random.key(2), x, v, None, add_errors=True)
    data = ReflexData.from_catalog(to_catalog(obs))
    spec = ReflexModel("continuity", "cartesian")
    p = fit_map(data, spec, key=jax.random.key(3))
    d = derived_quantities(spec, p, radii=(40.0, 120.0))
    v40, v120 = float(d["v_travel_r40"]), float(d["v_travel_r120"])
    print(f"stars {data.n_stars}: v_travel(40) = {v40:.1f}, v_travel(120) = {v120:.1f} km/s, "
          f"apex b(120) = {float(d['apex_b_r120']):.1f} deg")
    assert v120 - v40 > 12.0
    assert 15.0 < v120 < 80.0
    assert float(d["apex_b_r120"]) < 0.0  # towards the southern sky, where the LMC is


def test_simulator_refuses_32_bit_jax_naming_the_fix():
    """In 32-bit JAX the MW-LMC orbit solve would run out of steps with an opaque error: the
    simulator refuses up front and says how to switch x64 on (run in a fresh interpreter, since the
    test session has x64 on)."""
    import subprocess
    import sys

    code = ("import jax, jax.numpy as jnp\n"
            "from jaxhalo.simulation import brooks as S\n"
            "try:\n"
            "    S.simulate(jnp.asarray(S.FIDUCIAL_THETA), jax.random.key(0), S.SimConfig(n_particles=10))\n"
            "except S.SimulatorError as e:\n"
            "    print('REFUSED', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert "REFUSED" in r.stdout and "jax_enable_x64" in r.stdout, r.stdout + r.stderr[-2000:]


@pytest.mark.slow  # ~11 s of compilation; the default run is near its 12-minute budget
def test_simulate_with_theta_closed_over_by_jit():
    """A concrete theta captured by a jitted function (as in ``jax.jit(jax.vmap(lambda k: sim(theta, k)))``)
    makes the validity check a tracer: the simulator must take the traced path, not call bool() on it."""
    import jax.numpy as jnp

    from jaxhalo.simulation import brooks as S

    theta = jnp.asarray(S.FIDUCIAL_THETA)
    cfg = S.SimConfig(n_particles=8, t_back=20.0, disc="miyamoto-nagai")
    snap = jax.jit(lambda k: S.simulate_present_day(theta, k, cfg))(jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(jax.tree_util.tree_leaves(snap)[0])))


def _pv(snap):
    return snap.positions, snap.velocities


@pytest.mark.slow  # ~65 s on 2 cores (three compilations of the simulator)
def test_tangent_peri_min_cuts_the_derivatives_of_plunging_tracers_only():
    """``SimConfig(tangent_peri_min=r_c)``: the same snapshot; the tangents (d / d log10 M200) of the tracers
    whose orbit reaches within r_c are exactly 0, those of the others unchanged."""
    from jaxhalo.dynamics.df import SphericalProfile  # deferred: only this test
    from jaxhalo.dynamics.potentials import spherical_average  # deferred: only this test
    from jaxhalo.simulation.tracer_orbits import reaches_radius  # deferred: only this test

    cfg = dataclasses.replace(SMALL_CFG, t_back=100.0, gradients="forward", r_min=1.0)
    cut = dataclasses.replace(cfg, tangent_peri_min=8.0)
    theta, e, key = jnp.asarray(S.FIDUCIAL_THETA), jnp.zeros(12).at[0].set(1.0), jax.random.key(2)
    (x0, v0), (dx0, dv0) = jax.jvp(lambda t: _pv(S.simulate_present_day(t, key, cfg)), (theta,), (e,))
    (x1, v1), (dx1, dv1) = jax.jvp(lambda t: _pv(S.simulate_present_day(t, key, cut)), (theta,), (e,))
    np.testing.assert_array_equal(np.asarray(x1), np.asarray(x0))
    np.testing.assert_array_equal(np.asarray(v1), np.asarray(v0))
    mw = S.simulate(theta, key, cfg).mw
    plunging = np.asarray(reaches_radius(x0, v0, SphericalProfile(spherical_average(mw)).potential_of_r, 8.0))
    assert 0 < plunging.sum() < plunging.size
    assert np.all(np.asarray(dx1)[plunging] == 0) and np.all(np.asarray(dv1)[plunging] == 0)
    assert np.all(np.abs(np.asarray(dx0)[plunging]).max(axis=1) > 0)
    np.testing.assert_array_equal(np.asarray(dx1)[~plunging], np.asarray(dx0)[~plunging])
    np.testing.assert_array_equal(np.asarray(dv1)[~plunging], np.asarray(dv0)[~plunging])
