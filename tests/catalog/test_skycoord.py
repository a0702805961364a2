"""Catalogues from and to astropy SkyCoord: round trip, and positions / velocities as astropy has them."""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import numpy as np
import pytest

from jaxhalo.catalog.skycoord import catalog_from_skycoord, catalog_to_skycoord
from jaxhalo.catalog.structure import CatalogError, StarCatalog
from jaxhalo.frames import SolarParameters

MASYR = u.mas / u.yr
KMS = u.km / u.s


def _catalog(n: int = 50, seed: int = 3) -> StarCatalog:
    rng = np.random.default_rng(seed)
    d = 10 ** rng.uniform(0.5, 2.3, n)
    return StarCatalog(
        l=rng.uniform(0, 2 * np.pi, n), b=np.arcsin(rng.uniform(-1, 1, n)), distance=d, distance_err=0.1 * d,
        v_los=rng.normal(0, 150, n), v_los_err=rng.uniform(1, 10, n), pm_l=rng.normal(0, 2, n),
        pm_b=rng.normal(0, 2, n), pm_l_err=rng.uniform(0.05, 0.3, n), pm_b_err=rng.uniform(0.05, 0.3, n),
        pm_corr=rng.uniform(-0.5, 0.5, n),
    )


def test_round_trip_through_skycoord_in_icrs():
    cat = _catalog()
    sc = catalog_to_skycoord(cat, frame="icrs")
    assert isinstance(sc.frame, coord.ICRS)
    back = catalog_from_skycoord(sc, distance_err=cat.distance_err * u.kpc, v_los_err=cat.v_los_err * 1e3 * u.m / u.s,
                                 pm_l_err=cat.pm_l_err, pm_b_err=cat.pm_b_err * MASYR, pm_corr=cat.pm_corr)
    # ICRS -> Galactic and back: rotations of unit vectors, rounding at 1e-15 rad; velocities to ~1e-12 relative
    np.testing.assert_allclose(np.angle(np.exp(1j * (back.l - cat.l))), 0.0, atol=1e-13)
    np.testing.assert_allclose(back.b, cat.b, atol=1e-13)
    np.testing.assert_allclose(back.distance, cat.distance, rtol=1e-13)
    for name in ("v_los", "pm_l", "pm_b"):
        np.testing.assert_allclose(getattr(back, name), getattr(cat, name), rtol=1e-10, atol=1e-10, err_msg=name)
    for name in ("distance_err", "v_los_err", "pm_l_err", "pm_b_err", "pm_corr"):
        np.testing.assert_allclose(getattr(back, name), getattr(cat, name), rtol=1e-14, err_msg=name)


@pytest.mark.parametrize("solar", [SolarParameters(), SolarParameters.brooks()])
def test_galactocentric_positions_and_velocities_match_astropy(solar):
    cat = _catalog()
    gc = catalog_to_skycoord(cat, frame=solar)  # astropy's transform into solar.to_galactocentric()
    r_ast = gc.cartesian.xyz.to_value(u.kpc).T
    v_ast = gc.velocity.d_xyz.to_value(KMS).T
    r, v = cat.galactocentric(solar)
    # DESIGN: jaxhalo's frame agrees with astropy's to 1e-9 kpc and km/s (stars out to 200 kpc)
    np.testing.assert_allclose(r, r_ast, rtol=0, atol=1e-9)
    np.testing.assert_allclose(v, v_ast, rtol=0, atol=1e-9)
    # and back: a Galactocentric SkyCoord gives the catalogue's observables
    back = catalog_from_skycoord(gc, 1.0, 1.0, 0.1, 0.1)
    np.testing.assert_allclose(back.v_los, cat.v_los, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.pm_l, cat.pm_l, rtol=0, atol=1e-9)


def test_skycoord_without_velocities_or_with_bad_errors_is_refused():
    sc = coord.SkyCoord(l=[10, 20] * u.deg, b=[5, -5] * u.deg, distance=[30, 40] * u.kpc, frame="galactic")
    with pytest.raises(CatalogError, match="no velocities"):
        catalog_from_skycoord(sc, 1.0, 1.0, 0.1, 0.1)
    sc = coord.SkyCoord(l=[10, 20] * u.deg, b=[5, -5] * u.deg, distance=[30, 40] * u.kpc, pm_l_cosb=[1, 2] * MASYR,
                        pm_b=[0, 1] * MASYR, radial_velocity=[10, 20] * KMS, frame="galactic")
    with pytest.raises(u.UnitConversionError, match="^v_los_err: "):
        catalog_from_skycoord(sc, 1.0, 1.0 * u.kpc, 0.1, 0.1)
    with pytest.raises(CatalogError, match="pm_b_err"):
        catalog_from_skycoord(sc, 1.0, 1.0, 0.1, [0.1, 0.0])
    one = catalog_from_skycoord(sc[0], 1.0, 1.0, 0.1, 0.1)
    assert len(one) == 1 and one.distance[0] == pytest.approx(30.0, rel=1e-15)
