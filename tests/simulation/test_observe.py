"""Mock observation: frame round trips, error widths, selection, v_GSR and v_t,b definitions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo import frames
from jaxhalo.catalog.structure import StarCatalog
from jaxhalo.constants import K_PM
from jaxhalo.simulation.observe import (
    ObservationError,
    observe,
    observe_catalog,
    solar_velocity_heliocentric,
    to_catalog,
    v_gsr,
    v_tb,
    v_tl,
)

SOLARS = [frames.SolarParameters.brooks(), frames.SolarParameters.chandra(), frames.SolarParameters.reference()]


def _halo(n, seed=0, rmin=5.0, rmax=200.0, sigma=120.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x *= (rng.uniform(rmin, rmax, n) / np.linalg.norm(x, axis=1))[:, None]
    v = rng.normal(0.0, sigma, (n, 3))
    return x, v


@pytest.mark.parametrize("solar", SOLARS, ids=["brooks", "chandra", "reference"])
def test_roundtrip_without_errors(solar):
    """observe (errors off) -> observables -> frames inverse returns the particles."""
    x, v = _halo(2000)
    obs = jax.jit(observe, static_argnames=("footprint", "add_errors"))(
        jax.random.key(0), x, v, solar, add_errors=False, r_gal_range=None
    )
    r, vv = frames.observables_to_galactocentric(obs.l, obs.b, obs.distance, obs.v_los, obs.pm_l, obs.pm_b, solar)
    np.testing.assert_allclose(r, x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(vv, v, rtol=0, atol=1e-9)
    np.testing.assert_allclose(obs.r_gal, np.linalg.norm(x, axis=1), rtol=1e-12)
    assert bool(jnp.all(obs.selected))


@pytest.mark.parametrize("solar", SOLARS, ids=["brooks", "chandra", "reference"])
def test_gsr_velocities_are_components_of_the_galactocentric_velocity(solar):
    """(v_GSR, v_t,l, v_t,b) are the components of v_gal on the rotated (e_los, e_l, e_b) basis:
    zero for a star at rest in the Galactocentric frame, and they conserve |v_gal|."""
    x, v = _halo(500, seed=1)
    o = frames.galactocentric_to_observables(x, np.zeros_like(v), solar)
    for f in (v_gsr(o.l, o.b, o.v_los, solar), v_tb(o.l, o.b, o.d, o.pm_b, solar), v_tl(o.l, o.b, o.d, o.pm_l, solar)):
        np.testing.assert_allclose(f, 0.0, atol=1e-10)
    o = frames.galactocentric_to_observables(x, v, solar)
    comp = np.stack([v_gsr(o.l, o.b, o.v_los, solar), v_tl(o.l, o.b, o.d, o.pm_l, solar),
                     v_tb(o.l, o.b, o.d, o.pm_b, solar)], -1)
    np.testing.assert_allclose(np.linalg.norm(comp, axis=1), np.linalg.norm(v, axis=1), rtol=1e-12)
    # each component equals the projection of the rotated Galactocentric velocity
    e_los, e_l, e_b = frames.sky_basis(o.l, o.b)
    v_rot = v @ np.asarray(solar.rotation)  # R^T v_gal
    np.testing.assert_allclose(comp[:, 2], np.sum(v_rot * e_b, -1), atol=1e-10)


def test_vgsr_matches_gala():
    """v_GSR against gala's vhel_to_vgsr (untilted frame, the convention gala uses)."""
    gc = pytest.importorskip("gala.coordinates")
    import astropy.coordinates as coord
    import astropy.units as u

    solar = frames.SolarParameters(8.3, 0.0, (11.1, 244.24, 7.24), tilt=False)
    rng = np.random.default_rng(3)
    l, b = rng.uniform(0, 2 * np.pi, 300), np.arcsin(rng.uniform(-1, 1, 300))
    vhel = rng.normal(0, 150, 300)
    c = coord.SkyCoord(l=l * u.rad, b=b * u.rad, frame="galactic")
    ref = gc.vhel_to_vgsr(c, vhel * u.km / u.s, vsun=np.asarray(solar.v_sun) * u.km / u.s).to_value(u.km / u.s)
    np.testing.assert_allclose(v_gsr(l, b, vhel, solar), ref, rtol=0, atol=1e-9)


def test_solar_velocity_heliocentric_is_rotated():
    s = frames.SolarParameters.brooks()
    np.testing.assert_allclose(solar_velocity_heliocentric(s), np.asarray(s.rotation).T @ np.asarray(s.v_sun), atol=1e-12)
    r = frames.SolarParameters.reference()
    np.testing.assert_allclose(solar_velocity_heliocentric(r), r.v_sun, atol=0)


def test_error_distributions_have_requested_widths():
    """Normalised residuals are N(0, 1) (and the proper-motion pair has correlation rho)."""
    n = 200_000
    x, v = _halo(n, seed=4, rmin=20, rmax=150)
    solar = frames.SolarParameters.brooks()
    f, ev, el, eb, rho = 0.1, 5.0, 0.2, 0.3, 0.5
    obs = observe(jax.random.key(7), x, v, solar, distance_frac_err=f, v_los_err=ev,
                  pm_l_err=el, pm_b_err=eb, pm_corr=rho, r_gal_range=None)
    t = frames.galactocentric_to_observables(x, v, solar)
    z = {
        "d": (np.asarray(obs.distance) - t.d) / (f * t.d),
        "vlos": (np.asarray(obs.v_los) - t.v_los) / ev,
        "pml": (np.asarray(obs.pm_l) - t.pm_l) / el,
        "pmb": (np.asarray(obs.pm_b) - t.pm_b) / eb,
    }
    # 5-sigma tolerances of the sample mean (1/sqrt n) and std (1/sqrt(2n)).
    for name, zz in z.items():
        assert abs(zz.mean()) < 5 / np.sqrt(n), name
        assert abs(zz.std() - 1) < 5 / np.sqrt(2 * n), name
    corr = np.corrcoef(z["pml"], z["pmb"])[0, 1]
    assert abs(corr - rho) < 5 * (1 - rho**2) / np.sqrt(n)
    # reported errors: f * observed distance, and the requested constant errors
    np.testing.assert_allclose(obs.distance_err, f * np.asarray(obs.distance), rtol=1e-14)
    np.testing.assert_allclose(obs.pm_b_err, eb)
    # observed v_GSR / v_t,b are built from the observed v_los / distance / mu_b
    np.testing.assert_allclose(obs.v_gsr, v_gsr(obs.l, obs.b, obs.v_los, solar), atol=1e-10)
    np.testing.assert_allclose(obs.v_tb, v_tb(obs.l, obs.b, obs.distance, obs.pm_b, solar), atol=1e-9)


def test_per_star_errors():
    """Per-star (N,) error arrays: residual / error is N(0, 1) across stars of very different errors."""
    n = 100_000
    x, v = _halo(n, seed=5, rmin=20, rmax=150)
    ev = np.linspace(0.5, 20.0, n)
    obs = observe(jax.random.key(8), x, v, v_los_err=ev, r_gal_range=None)
    t = frames.galactocentric_to_observables(x, v)
    zz = (np.asarray(obs.v_los) - t.v_los) / ev
    assert abs(zz.std() - 1) < 5 / np.sqrt(2 * n)
    np.testing.assert_allclose(obs.v_los_err, ev)


def test_selection_window_and_footprint():
    """selected = positive distance & observed r_gal window & heliocentric window & footprint."""
    x, v = _halo(20_000, seed=6)
    solar = frames.SolarParameters.brooks()

    def north_of_minus_20(l, b):
        return b > jnp.deg2rad(-20.0)

    obs = observe(jax.random.key(2), x, v, solar, distance_frac_err=0.3, r_gal_range=(30.0, 160.0),
                  distance_range=(20.0, 150.0), footprint=north_of_minus_20)
    d = np.asarray(obs.distance)
    l, b = np.asarray(obs.l), np.asarray(obs.b)
    xyz = np.stack([d * np.cos(b) * np.cos(l), d * np.cos(b) * np.sin(l), d * np.sin(b)], -1)
    rg, _ = frames.heliocentric_to_galactocentric(xyz, None, solar)
    rg = np.linalg.norm(np.asarray(rg), axis=1)
    expect = (d > 0) & (rg >= 30) & (rg <= 160) & (d >= 20) & (d <= 150) & (b > np.deg2rad(-20))
    np.testing.assert_array_equal(np.asarray(obs.selected), expect)
    np.testing.assert_allclose(np.asarray(obs.r_gal)[d > 0], rg[d > 0], rtol=1e-12)
    assert 0 < expect.sum() < len(d)


def test_jit_vmap_and_determinism():
    x, v = _halo(1000, seed=7)
    keys = jax.random.split(jax.random.key(3), 4)
    xs = jnp.stack([x, 1.1 * x, 0.9 * x, x])
    vs = jnp.stack([v, v, -v, 0.5 * v])
    f = jax.jit(jax.vmap(lambda k, a, b: observe(k, a, b, frames.SolarParameters.brooks())))
    batch = f(keys, xs, vs)
    for i in range(4):
        one = observe(keys[i], xs[i], vs[i], frames.SolarParameters.brooks())
        for name in one._fields:
            np.testing.assert_allclose(getattr(batch, name)[i], getattr(one, name), rtol=1e-13, atol=1e-12)
    again = f(keys, xs, vs)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(batch), jax.tree_util.tree_leaves(again)))


def test_catalog_of_selected_stars():
    x, v = _halo(3000, seed=8)
    solar = frames.SolarParameters.brooks()
    key = jax.random.key(4)
    obs = observe(key, x, v, solar)
    cat = observe_catalog(key, x, v, solar)
    sel = np.asarray(obs.selected)
    assert isinstance(cat, StarCatalog) and len(cat) == sel.sum()
    np.testing.assert_array_equal(cat.v_los, np.asarray(obs.v_los)[sel])
    np.testing.assert_array_equal(cat.extra["xyz_true"], x[sel])
    r, _ = frames.observables_to_galactocentric(cat.l, cat.b, cat.distance, cat.v_los, cat.pm_l, cat.pm_b, solar)
    np.testing.assert_allclose(cat.xyz, r, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(cat.xyz, axis=1), cat.extra["r_gal"], rtol=1e-12)
    # the converted catalogue reproduces the true velocities when observed without errors
    cat0 = observe_catalog(key, x, v, solar, add_errors=False)
    _, vv = frames.observables_to_galactocentric(cat0.l, cat0.b, cat0.distance, cat0.v_los, cat0.pm_l, cat0.pm_b, solar)
    np.testing.assert_allclose(vv, cat0.extra["vxyz_true"], atol=1e-9)
    with pytest.raises(ObservationError, match="unbatched"):
        to_catalog(jax.tree_util.tree_map(lambda a: a[None], obs))


def test_bad_inputs():
    x, v = _halo(10)
    k = jax.random.key(0)
    with pytest.raises(ObservationError, match="positions"):
        observe(k, x[:, :2], v[:, :2])
    with pytest.raises(ObservationError, match="velocities"):
        observe(k, x, v[:5])
    with pytest.raises(ObservationError, match="v_los_err"):
        observe(k, x, v, v_los_err=-1.0)
    with pytest.raises(ObservationError, match="r_gal_range"):
        observe(k, x, v, r_gal_range=(160.0, 30.0))
    with pytest.raises(ObservationError, match="footprint"):
        observe(k, x, v, footprint=lambda l, b: jnp.ones(3, bool))


def test_vtb_uses_k_pm():
    """v_t,b = k d mu_b + v_sun.e_b with the astropy value of k."""
    s = frames.SolarParameters.reference()
    l, b, d, mub = 0.3, 0.4, 50.0, 0.2
    e_b = np.array([-np.sin(b) * np.cos(l), -np.sin(b) * np.sin(l), np.cos(b)])
    assert float(v_tb(l, b, d, mub, s)) == pytest.approx(K_PM * d * mub + e_b @ np.asarray(s.v_sun), abs=1e-12)
