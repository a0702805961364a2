"""Frames against astropy and gala, and internal round trips."""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo import frames
from jaxhalo.constants import K_PM

from astropy_reference import astropy_galactocentric as _astropy_frame

RNG = np.random.default_rng(42)
N = 200


def _random_stars(n=N):
    l = RNG.uniform(0, 2 * np.pi, n)
    b = np.arcsin(RNG.uniform(-1, 1, n))
    d = 10 ** RNG.uniform(-1, 2.3, n)
    vlos = RNG.normal(0, 150, n)
    pml = RNG.normal(0, 3, n)
    pmb = RNG.normal(0, 3, n)
    return l, b, d, vlos, pml, pmb


@pytest.mark.parametrize("solar", [frames.SolarParameters(), frames.SolarParameters.brooks()])
def test_forward_matches_astropy(solar):
    l, b, d, vlos, pml, pmb = _random_stars()
    sc = coord.SkyCoord(
        l=l * u.rad, b=b * u.rad, distance=d * u.kpc,
        pm_l_cosb=pml * u.mas / u.yr, pm_b=pmb * u.mas / u.yr, radial_velocity=vlos * u.km / u.s,
        frame="galactic",
    )
    gc = sc.transform_to(_astropy_frame(solar))
    r_ast = gc.cartesian.xyz.to_value(u.kpc).T
    v_ast = gc.velocity.d_xyz.to_value(u.km / u.s).T
    r, v = frames.observables_to_galactocentric(l, b, d, vlos, pml, pmb, solar, k=K_PM)
    np.testing.assert_allclose(r, r_ast, rtol=0, atol=1e-9)
    np.testing.assert_allclose(v, v_ast, rtol=0, atol=1e-9)


def test_inverse_matches_astropy():
    solar = frames.SolarParameters()
    r = RNG.normal(0, 60, (N, 3))
    v = RNG.normal(0, 150, (N, 3))
    gc = coord.SkyCoord(
        x=r[:, 0] * u.kpc, y=r[:, 1] * u.kpc, z=r[:, 2] * u.kpc,
        v_x=v[:, 0] * u.km / u.s, v_y=v[:, 1] * u.km / u.s, v_z=v[:, 2] * u.km / u.s,
        frame=_astropy_frame(solar),
    ).transform_to(coord.Galactic())
    obs = frames.galactocentric_to_observables(r, v, solar)
    np.testing.assert_allclose(np.mod(obs.l, 2 * np.pi), gc.l.to_value(u.rad), atol=1e-12)
    np.testing.assert_allclose(obs.b, gc.b.to_value(u.rad), atol=1e-12)
    np.testing.assert_allclose(obs.d, gc.distance.to_value(u.kpc), atol=1e-9)
    np.testing.assert_allclose(obs.v_los, gc.radial_velocity.to_value(u.km / u.s), atol=1e-9)
    np.testing.assert_allclose(obs.pm_l, gc.pm_l_cosb.to_value(u.mas / u.yr), atol=1e-9)
    np.testing.assert_allclose(obs.pm_b, gc.pm_b.to_value(u.mas / u.yr), atol=1e-9)


def test_sun_position_and_untilted_reference():
    s = frames.SolarParameters()
    r, _ = frames.heliocentric_to_galactocentric(jnp.zeros(3), None, s)
    np.testing.assert_allclose(r, s.position, atol=1e-14)
    np.testing.assert_allclose(s.position[2], 0.0208, atol=1e-15)
    ref = frames.SolarParameters.reference()
    xyz = RNG.normal(0, 30, (10, 3))
    r, _ = frames.heliocentric_to_galactocentric(xyz, None, ref)
    np.testing.assert_allclose(r, xyz + np.array([-8.3, 0, 0.02]), atol=1e-13)


@pytest.mark.parametrize("solar", [frames.SolarParameters(), frames.SolarParameters.reference()])
def test_round_trip(solar):
    l, b, d, vlos, pml, pmb = _random_stars()
    r, v = frames.observables_to_galactocentric(l, b, d, vlos, pml, pmb, solar)
    obs = frames.galactocentric_to_observables(r, v, solar)
    np.testing.assert_allclose(np.mod(obs.l, 2 * np.pi), l, atol=1e-10)
    for a, bb in zip((obs.b, obs.d, obs.v_los, obs.pm_l, obs.pm_b), (b, d, vlos, pml, pmb)):
        np.testing.assert_allclose(a, bb, rtol=1e-10, atol=1e-10)


def test_magellanic_stream_matches_gala():
    gala_coords = pytest.importorskip("gala.coordinates")
    l = RNG.uniform(0, 2 * np.pi, N)
    b = np.arcsin(RNG.uniform(-1, 1, N))
    ms = coord.Galactic(l=l * u.rad, b=b * u.rad).transform_to(gala_coords.MagellanicStreamNidever08())
    L, B = frames.galactic_to_magellanic(l, b)
    dL = np.angle(np.exp(1j * (np.asarray(L) - ms.L.to_value(u.rad))))
    assert np.max(np.abs(np.degrees(dL))) < 1e-9
    assert np.max(np.abs(np.degrees(np.asarray(B) - ms.B.to_value(u.rad)))) < 1e-9
    l2, b2 = frames.magellanic_to_galactic(L, B)
    np.testing.assert_allclose(np.mod(l2, 2 * np.pi), l, atol=1e-12)
    np.testing.assert_allclose(b2, b, atol=1e-12)


def test_spherical_velocity_conventions():
    # The Sun moves prograde: v_phi < 0 in this convention, > 0 in Li et al.'s.
    s = frames.SolarParameters()
    vr, vt, vp = frames.spherical_velocity(s.position, s.v_sun)
    assert vp < -240
    _, vt_li, vp_li = frames.spherical_velocity(s.position, s.v_sun, flip_li=True)
    assert vp_li == vp and vt_li == -vt  # Li et al. footnote 7: V_phi < 0 prograde, V_theta > 0 north
    # A star moving in -z above the plane has v_theta > 0 (southwards).
    _, vt, _ = frames.spherical_velocity(jnp.array([10.0, 0, 10.0]), jnp.array([0.0, 0, -100.0]))
    assert vt > 0
    # Velocity magnitude is preserved.
    r = RNG.normal(0, 50, (N, 3))
    v = RNG.normal(0, 100, (N, 3))
    comps = jnp.stack(frames.spherical_velocity(r, v), -1)
    np.testing.assert_allclose(jnp.linalg.norm(comps, axis=-1), np.linalg.norm(v, axis=-1), rtol=1e-12)


def test_differentiable_and_jittable():
    l, b, d, vlos, pml, pmb = (jnp.asarray(a) for a in _random_stars(5))

    def f(dist):
        r, v = frames.observables_to_galactocentric(l, b, dist, vlos, pml, pmb)
        return jnp.sum(frames.spherical_velocity(r, v)[0])

    g = jax.jit(jax.grad(f))(d)
    eps = 1e-5 * d
    fd = np.array([(f(d.at[i].add(eps[i])) - f(d.at[i].add(-eps[i]))) / (2 * eps[i]) for i in range(5)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


def test_tangential_velocity_covariance():
    d, de = 50.0, 5.0
    pm = jnp.array([0.3, -0.2])
    cov = frames.proper_motion_covariance(0.05, 0.04, -0.3)
    C = frames.tangential_velocity_covariance(d, de, pm, cov)
    # Monte Carlo check of the first-order formula.
    rng = np.random.default_rng(0)
    n = 400_000
    dd = d + de * rng.standard_normal(n) * 1e-2  # small errors: linear regime
    pms = rng.multivariate_normal(np.asarray(pm), np.asarray(cov) * 1e-4, n)
    vt = K_PM * dd[:, None] * pms
    C_small = frames.tangential_velocity_covariance(d, de * 1e-2, pm, cov * 1e-4)
    np.testing.assert_allclose(np.cov(vt.T), C_small, rtol=2e-2)
    assert C.shape == (2, 2) and np.all(np.linalg.eigvalsh(np.asarray(C)) > 0)


@pytest.mark.parametrize("solar", [frames.SolarParameters(), frames.SolarParameters.brooks()])
def test_solar_parameters_to_and_from_astropy_galactocentric(solar):
    frame = solar.to_galactocentric()
    back = frames.SolarParameters.from_galactocentric(frame, strict=True)
    np.testing.assert_allclose(back.galcen_distance, solar.galcen_distance, rtol=1e-15)
    np.testing.assert_allclose(back.z_sun, solar.z_sun, rtol=1e-15)
    np.testing.assert_allclose(back.v_sun, solar.v_sun, rtol=1e-15)
    assert back.tilt
    # jaxhalo's transform with the converted parameters against astropy's with the frame, random stars
    l, b, d, vlos, pml, pmb = _random_stars()
    gc = coord.SkyCoord(l=l * u.rad, b=b * u.rad, distance=d * u.kpc, pm_l_cosb=pml * u.mas / u.yr,
                        pm_b=pmb * u.mas / u.yr, radial_velocity=vlos * u.km / u.s, frame="galactic").transform_to(frame)
    r_ast, v_ast = gc.cartesian.xyz.to_value(u.kpc).T, gc.velocity.d_xyz.to_value(u.km / u.s).T
    r, v = frames.observables_to_galactocentric(l, b, d, vlos, pml, pmb, back, k=K_PM)
    assert np.max(np.linalg.norm(r - r_ast, axis=1) / np.linalg.norm(r_ast, axis=1)) < 1e-10
    assert np.max(np.linalg.norm(v - v_ast, axis=1) / np.linalg.norm(v_ast, axis=1)) < 1e-10


def test_from_galactocentric_units_and_misaligned_axes():
    frame = coord.Galactocentric(galcen_distance=8300 * u.pc, z_sun=25 * u.pc,
                                 galcen_v_sun=[11.1, 244.24, 7.24] * u.km / u.s)  # astropy's Sgr A*, roll 0
    with pytest.warns(UserWarning, match=r"turned by 2\.\d+e-06 rad"):
        s = frames.SolarParameters.from_galactocentric(frame)
    np.testing.assert_allclose([s.galcen_distance, s.z_sun], [8.3, 0.025], rtol=1e-14)
    np.testing.assert_allclose(s.v_sun, [11.1, 244.24, 7.24], rtol=1e-15)
    with pytest.raises(ValueError, match="turned by"):
        frames.SolarParameters.from_galactocentric(frame, strict=True)
    with pytest.raises(ValueError, match="tilt=False"):
        frames.SolarParameters.reference().to_galactocentric()
    q = frames.SolarParameters(8300 * u.pc, 25 * u.pc, [11.1, 244.24, 7.24] * u.km / u.s)
    np.testing.assert_allclose(q.position, s.position, rtol=1e-14)
    with pytest.raises(u.UnitConversionError, match="^v_sun: "):
        frames.SolarParameters(v_sun=[11.1, 244.24, 7.24] * u.kpc)
