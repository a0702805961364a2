"""Tracer integration: equilibrium in a static host, scipy reference orbits, Galilean invariance,
vmapped batches of simulations, determinism."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

from jaxhalo.constants import G, KMS_TO_KPC_PER_MYR
from jaxhalo.dynamics.densities import DoublePowerLawDensity
from jaxhalo.dynamics.df import SphericalProfile, constant_beta_df, sample_df
from jaxhalo.dynamics.potentials import NFW, Hernquist
from jaxhalo.simulation.tracer_orbits import StaticTrack, UniformTrack, integrate_orbits, simulate_halo

HOST = NFW(1.0e7, 16.0) + Hernquist(1.5e10, 0.7)
PROFILE = SphericalProfile(HOST)
TRACER = DoublePowerLawDensity(15.0, 4.0)
BETA = 0.3
LMC = Hernquist(1.5e11, 15.0)
#: MW drifting at 40 km/s, LMC passing by in uniform motion (t in Myr).
TRACK = UniformTrack(mw0=[0.0, 0.0, 0.0], mw_vel=[10.0, -30.0, 25.0], lmc0=[-1.0, -41.0, -27.0], lmc_vel=[-60.0, -210.0, 200.0])


@pytest.fixture(scope="module")
def df():
    return constant_beta_df(TRACER, PROFILE, BETA, r_min=1.0, r_max=500.0)


def _moments(x, v, edges):
    r = np.linalg.norm(x, axis=1)
    vr = np.sum(x * v, axis=1) / r
    vt2 = np.sum(v * v, axis=1) - vr**2
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (r > lo) & (r < hi)
        n = m.sum()
        a, b = vt2[m], vr[m] ** 2
        ma, mb = a.mean(), b.mean()
        # standard errors by the delta method: sigma_r = sqrt(<vr^2>), beta = 1 - <vt^2> / (2 <vr^2>)
        cov = np.cov(np.stack([a, b])) / n
        se_sig = np.sqrt(cov[1, 1]) / (2 * np.sqrt(mb))
        grad = np.array([-1 / (2 * mb), ma / (2 * mb**2)])
        se_beta = np.sqrt(grad @ cov @ grad)
        out.append((n, np.sqrt(mb), 1 - ma / (2 * mb), se_sig, se_beta))
    return np.array(out)


def _check_equilibrium(df, n, key):
    x0, v0 = sample_df(key, df, n)
    x1, v1 = jax.jit(lambda x, v: integrate_orbits(x, v, HOST, None, StaticTrack(), dt=1.0))(x0, v0)
    x0, v0, x1, v1 = (np.asarray(a) for a in (x0, v0, x1, v1))
    edges = np.array([3.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0])
    m0, m1 = _moments(x0, v0, edges), _moments(x1, v1, edges)
    n0, n1 = m0[:, 0], m1[:, 0]
    # counts: the final shells within Poisson noise of the initial (expected) ones
    assert np.all(np.abs(n1 - n0) < 4.0 * np.sqrt(n0)), (n0, n1)
    # sigma_r and beta per shell: within 4 sigma of the sampling noise of both estimates
    # (the same particles, but phase-mixed after 2.2 Gyr, so treated as independent)
    assert np.all(np.abs(m1[:, 1] - m0[:, 1]) < 4.0 * np.hypot(m0[:, 3], m1[:, 3])), (m0[:, 1], m1[:, 1])
    assert np.all(np.abs(m1[:, 2] - m0[:, 2]) < 4.0 * np.hypot(m0[:, 4], m1[:, 4])), (m0[:, 2], m1[:, 2])
    # zero mean velocity
    assert np.all(np.abs(v1.mean(axis=0)) < 4.0 * v1.std(axis=0) / np.sqrt(n))
    return m0, m1


def test_equilibrium_in_static_host(df):
    _check_equilibrium(df, 4000, jax.random.key(0))


@pytest.mark.slow
def test_equilibrium_in_static_host_large(df):
    m0, m1 = _check_equilibrium(df, 100_000, jax.random.key(2))
    np.set_printoptions(precision=4, suppress=True)
    print("n, sigma_r, beta, se(sigma_r), se(beta) at t0:\n", m0, "\nafter 2.2 Gyr:\n", m1)


def _np_acc(x, t):
    """Reference host + moving-LMC acceleration in numpy (closed forms), inertial frame."""
    def nfw(d, rho_s, rs):
        r = np.linalg.norm(d)
        m = 4 * np.pi * rho_s * rs**3 * (np.log1p(r / rs) - r / (r + rs))
        return -G * m / r**3 * d

    def hern(d, m, a):
        r = np.linalg.norm(d)
        return -G * m / (r * (r + a) ** 2) * d

    k = KMS_TO_KPC_PER_MYR
    mw = np.array([10.0, -30.0, 25.0]) * k * t
    lmc = np.array([-1.0, -41.0, -27.0]) + np.array([-60.0, -210.0, 200.0]) * k * t
    return nfw(x - mw, 1.0e7, 16.0) + hern(x - mw, 1.5e10, 0.7) + hern(x - lmc, 1.5e11, 15.0)


def test_adaptive_and_leapfrog_match_scipy_dop853():
    x0 = np.array([[30.0, 5.0, -10.0], [-60.0, 20.0, 40.0], [10.0, -80.0, 5.0]])
    v0 = np.array([[20.0, 150.0, 30.0], [-50.0, -40.0, 90.0], [100.0, 20.0, -60.0]])
    t0, t1 = -2200.0, 0.0
    k = KMS_TO_KPC_PER_MYR

    def rhs(t, y):
        x, v = y[:3], y[3:]
        return np.concatenate([k * v, k * _np_acc(x, t)])

    ref = np.array(
        [integrate.solve_ivp(rhs, (t0, t1), np.r_[a, b], method="DOP853", rtol=1e-12, atol=1e-12).y[:, -1] for a, b in zip(x0, v0)]
    )
    xd, vd = integrate_orbits(x0, v0, HOST, LMC, TRACK, solver="dopri8", rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(np.asarray(xd), ref[:, :3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(vd), ref[:, 3:], rtol=1e-6, atol=1e-6)
    # leapfrog at 0.1 Myr: second order, a few 1e-3 kpc over 2.2 Gyr on these outer orbits
    xl, _ = integrate_orbits(x0, v0, HOST, LMC, TRACK, solver="leapfrog", dt=0.1)
    assert np.max(np.abs(np.asarray(xl) - ref[:, :3])) < 0.02


def test_energy_conservation_static_host(df):
    x0, v0 = sample_df(jax.random.key(5), df, 300)
    r0 = np.linalg.norm(np.asarray(x0), axis=1)
    keep = r0 > 10.0
    energy = lambda x, v: 0.5 * jnp.sum(v * v, axis=1) + HOST.potential(x)  # noqa: E731
    e0 = np.asarray(energy(x0, v0))
    xl, vl = integrate_orbits(x0, v0, HOST, None, StaticTrack(), solver="leapfrog", dt=1.0)
    xd, vd = integrate_orbits(x0, v0, HOST, None, StaticTrack(), solver="dopri8", rtol=1e-10, atol=1e-10)
    de_l = np.abs(np.asarray(energy(xl, vl)) / e0 - 1)[keep]
    de_d = np.abs(np.asarray(energy(xd, vd)) / e0 - 1)[keep]
    assert np.median(de_l) < 1e-5
    assert np.max(de_d) < 1e-8


def test_uniformly_moving_host_is_galilean(df):
    """Without an LMC, a host in uniform motion gives the same MW-centred snapshot as a static one."""
    key = jax.random.key(9)
    moving = UniformTrack(mw0=[5.0, -3.0, 2.0], mw_vel=[80.0, -40.0, 120.0], lmc0=[0.0, 0.0, 0.0], lmc_vel=[0.0, 0.0, 0.0])
    run = jax.jit(lambda track: simulate_halo(key, df, HOST, None, track, 500, dt=2.0))
    a, b = run(moving), run(StaticTrack())
    # identical up to rounding of the ~300 kpc inertial coordinates, amplified only on the few
    # orbits that plunge through the bulge (fixed 2 Myr steps): check 90% of the particles.
    dx = np.linalg.norm(np.asarray(a.positions - b.positions), axis=1)
    dv = np.linalg.norm(np.asarray(a.velocities - b.velocities), axis=1)
    assert np.quantile(dx, 0.9) < 1e-7 and np.quantile(dv, 0.9) < 1e-6


def test_lmc_pulls_the_halo_towards_it(df):
    """A static LMC at 50 kpc on +x, MW pinned: the halo's mean position moves towards +x."""
    track = StaticTrack(mw=[0.0, 0.0, 0.0], lmc=[50.0, 0.0, 0.0])
    snap = simulate_halo(jax.random.key(2), df, HOST, LMC, track, 2000, t0=-500.0, dt=2.0)
    ref = simulate_halo(jax.random.key(2), df, HOST, None, track, 2000, t0=-500.0, dt=2.0)
    shift = np.asarray(snap.positions - ref.positions).mean(axis=0)
    assert shift[0] > 1.0 and abs(shift[1]) < 0.3 * shift[0] and abs(shift[2]) < 0.3 * shift[0]


def test_batch_of_simulations_is_one_vmapped_call():
    def one(key, m_lmc, beta):
        df = constant_beta_df(TRACER, PROFILE, beta, r_min=1.0, r_max=300.0, n_energy=64, n_quad=48)
        lmc = Hernquist(m_lmc, 15.0)
        return simulate_halo(key, df, HOST, lmc, TRACK, 64, t0=-300.0, dt=5.0)

    keys = jax.random.split(jax.random.key(4), 3)
    masses = jnp.array([5e10, 1e11, 2e11])
    betas = jnp.array([0.0, 0.2, 0.4])
    batch = jax.jit(jax.vmap(one))(keys, masses, betas)
    assert batch.positions.shape == (3, 64, 3)
    single = jax.jit(one)
    for i in range(3):
        s = single(keys[i], masses[i], betas[i])
        # equal up to rounding (vmapped kernels fuse differently), amplified on plunging orbits
        dx = np.linalg.norm(np.asarray(batch.positions[i] - s.positions), axis=1)
        dv = np.linalg.norm(np.asarray(batch.velocities[i] - s.velocities), axis=1)
        assert np.quantile(dx, 0.9) < 1e-8 and np.quantile(dv, 0.9) < 1e-7 and dx.max() < 0.01


def test_same_key_is_bit_identical(df):
    run = jax.jit(lambda key: simulate_halo(key, df, HOST, LMC, TRACK, 300, t0=-400.0, dt=2.0))
    a, b = run(jax.random.key(8)), run(jax.random.key(8))
    assert np.array_equal(np.asarray(a.positions), np.asarray(b.positions))
    assert np.array_equal(np.asarray(a.velocities), np.asarray(b.velocities))
    c = run(jax.random.key(9))
    assert not np.allclose(np.asarray(a.positions), np.asarray(c.positions))
    # the eager (un-jitted) sampler draws the same particles bit for bit too
    x1, _ = sample_df(jax.random.key(8), df, 300)
    x2, _ = sample_df(jax.random.key(8), df, 300)
    assert np.array_equal(np.asarray(x1), np.asarray(x2))


def test_reaches_radius_agrees_with_the_pericentre_by_root_finding():
    """The pericentre of each orbit in HOST by brentq on 2 (E - Phi(r)) r^2 - L^2 = 0 below |x|; the flag
    must be True exactly for the orbits whose pericentre is below the radius (none within 1e-6 of it)."""
    from jaxhalo.simulation.tracer_orbits import reaches_radius  # deferred: only this test

    rng = np.random.default_rng(3)
    n = 400
    x = rng.standard_normal((n, 3)) * 30.0
    v = rng.standard_normal((n, 3)) * 120.0
    radial = x / np.linalg.norm(x, axis=1)[:, None]
    # a random velocity shrunk by U(0, 0.5) plus a radial N(0, 150 km/s): many plunging orbits
    v = rng.uniform(0.0, 0.5, n)[:, None] * v + rng.normal(0.0, 150.0, n)[:, None] * radial
    phi = lambda r: np.asarray(PROFILE.potential_of_r(jnp.asarray(r)))  # noqa: E731
    r0 = np.linalg.norm(x, axis=1)
    e = 0.5 * np.sum(v * v, axis=1) + phi(r0)
    l2 = np.sum(np.cross(x, v) ** 2, axis=1)
    peri = []
    for ei, li, ri in zip(e, l2, r0):
        g = lambda r: 2.0 * (ei - float(phi(r))) * r * r - li  # noqa: E731
        peri.append(0.0 if g(1e-9) > 0 else optimize.brentq(g, 1e-9, ri, xtol=1e-12) if g(ri) > 0 else ri)
    peri = np.array(peri)
    for rc in (0.5, 2.0, 5.0, 20.0):
        flag = np.asarray(reaches_radius(jnp.asarray(x), jnp.asarray(v), PROFILE.potential_of_r, rc))
        clear = np.abs(peri - rc) > 1e-6
        assert 0 < flag.sum() < n
        np.testing.assert_array_equal(flag[clear], (peri < rc)[clear])


def test_freeze_tangents_cuts_only_the_frozen_particles_even_inf():
    from jaxhalo.simulation.tracer_orbits import Snapshot, freeze_tangents  # deferred: only this test

    x, v = jnp.arange(12.0).reshape(4, 3), -jnp.arange(12.0).reshape(4, 3)
    frozen = jnp.array([False, True, False, True])
    dx = jnp.ones((4, 3)).at[1].set(jnp.inf).at[3].set(jnp.nan)
    out, dout = jax.jvp(lambda a, b: freeze_tangents(Snapshot(a, b), frozen), (x, v), (dx, dx))
    np.testing.assert_array_equal(np.asarray(out.positions), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(dout.positions), np.asarray(jnp.ones((4, 3)).at[1].set(0.0).at[3].set(0.0)))
    np.testing.assert_array_equal(np.asarray(dout.velocities), np.asarray(dout.positions))
    g = jax.grad(lambda a: jnp.sum(freeze_tangents(Snapshot(a, v), frozen).positions ** 2))(x)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(jnp.where(frozen[:, None], 0.0, 2 * x)))
