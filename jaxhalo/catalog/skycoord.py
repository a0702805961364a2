"""Star catalogues from and to ``astropy.coordinates.SkyCoord``.

:func:`catalog_from_skycoord` takes the positions and velocities of a SkyCoord in any frame (ICRS,
Galactic, Galactocentric, ...), transforms them to Galactic with astropy and adds the per-star
errors, which a SkyCoord does not carry; :func:`catalog_to_skycoord` makes the Galactic SkyCoord of
a :class:`~jaxhalo.catalog.structure.StarCatalog` (optionally transformed to another frame, e.g.
the Galactocentric frame of a :class:`~jaxhalo.frames.SolarParameters`). NumPy and astropy only:
astropy loads when these are called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..units import DIMENSIONLESS, KM_S, KPC, MAS_YR, to_internal
from .structure import CatalogError, StarCatalog

__all__ = ["catalog_from_skycoord", "catalog_to_skycoord"]


def _per_star(value: Any, unit: str, name: str, n: int) -> np.ndarray:
    """A scalar or (n,) error (a Quantity, or a bare number in ``unit``) as a float64 array (n,)."""
    a = np.asarray(to_internal(value, unit, name), dtype=np.float64)
    try:
        return np.array(np.broadcast_to(a, (n,)), dtype=np.float64)
    except ValueError:
        raise CatalogError(f"column '{name}' must be a scalar or have shape ({n},), got shape {a.shape}") from None


def catalog_from_skycoord(
    coords: Any,
    distance_err: Any,
    v_los_err: Any,
    pm_l_err: Any,
    pm_b_err: Any,
    pm_corr: Any = 0.0,
    extra: Mapping[str, Any] | None = None,
) -> StarCatalog:
    """A validated :class:`~jaxhalo.catalog.structure.StarCatalog` from an astropy ``SkyCoord`` (or frame).

    Parameters
    ----------
    coords : N stars with distances, proper motions and radial velocities, in any astropy frame
        that transforms to Galactic (a scalar coordinate is one star). Converted to Galactic
        (l, b in rad, l in [0, 2 pi)), distance kpc, (mu_l*, mu_b) mas/yr, v_los km/s.
    distance_err, v_los_err : 1-sigma errors, scalars or (N,): Quantities, or bare numbers in
        kpc and km/s.
    pm_l_err, pm_b_err : 1-sigma errors of the *Galactic* proper motions (mu_l*, mu_b), scalars or
        (N,): Quantities or bare numbers in mas/yr (errors given in ICRS must be rotated first:
        :func:`~jaxhalo.catalog.readers.read_catalog` does it for Gaia columns).
    pm_corr : correlation of (mu_l*, mu_b) errors, scalar or (N,), default 0.
    extra : further per-star columns for ``StarCatalog.extra``.

    Raises
    ------
    CatalogError
        ``coords`` lacks distances or velocities, or an error is non-positive (the catalogue's
        validation, naming the column; :class:`~jaxhalo.catalog.structure.CatalogError`).
    astropy.units.UnitConversionError
        An error Quantity of the wrong dimension.
    """
    import astropy.coordinates as coord  # deferred: astropy loads only when this runs
    import astropy.units as u

    if isinstance(coords, coord.BaseCoordinateFrame):
        coords = coord.SkyCoord(coords)
    if not isinstance(coords, coord.SkyCoord):
        raise CatalogError(f"catalog_from_skycoord needs an astropy SkyCoord or frame, got {type(coords).__name__}")
    if coords.isscalar:
        coords = coords.reshape((1,))
    if coords.ndim != 1:
        raise CatalogError(f"catalog_from_skycoord needs a one-dimensional SkyCoord, got shape {coords.shape}")
    gal = coords.transform_to(coord.Galactic())
    if "s" not in gal.data.differentials:
        raise CatalogError("the SkyCoord has no velocities: give pm (and radial_velocity) so the catalogue has "
                           "proper motions and v_los")
    values: dict[str, np.ndarray] = {}
    for name, attr, unit in (("l", "l", u.rad), ("b", "b", u.rad), ("distance", "distance", u.kpc),
                             ("v_los", "radial_velocity", u.km / u.s), ("pm_l", "pm_l_cosb", u.mas / u.yr),
                             ("pm_b", "pm_b", u.mas / u.yr)):
        try:
            q = getattr(gal, attr)
            values[name] = np.asarray(q.to_value(unit), dtype=np.float64)
        except (AttributeError, ValueError, TypeError, u.UnitsError) as exc:
            raise CatalogError(f"the SkyCoord gives no {attr} for column '{name}' in {unit} "
                               f"(a SkyCoord needs distance, pm and radial_velocity): {exc}") from None
    n = values["l"].shape[0]
    for name, value, unit in (("distance_err", distance_err, KPC), ("v_los_err", v_los_err, KM_S),
                              ("pm_l_err", pm_l_err, MAS_YR), ("pm_b_err", pm_b_err, MAS_YR),
                              ("pm_corr", pm_corr, DIMENSIONLESS)):
        values[name] = _per_star(value, unit, name, n)
    return StarCatalog(**values, extra=dict(extra or {}))


def catalog_to_skycoord(catalog: StarCatalog, frame: Any = None):
    """The stars of ``catalog`` as an astropy ``SkyCoord`` with distances and velocities.

    Built in the Galactic frame (l, b, distance, pm_l_cosb, pm_b, radial_velocity: the heliocentric
    observables of the catalogue; errors are not carried), then transformed to ``frame`` when given:
    any astropy frame or frame name, or a :class:`~jaxhalo.frames.SolarParameters`, which stands for
    its :meth:`~jaxhalo.frames.SolarParameters.to_galactocentric` frame.
    """
    import astropy.coordinates as coord  # deferred: astropy loads only when this runs
    import astropy.units as u

    sc = coord.SkyCoord(
        l=np.asarray(catalog.l) * u.rad, b=np.asarray(catalog.b) * u.rad, distance=np.asarray(catalog.distance) * u.kpc,
        pm_l_cosb=np.asarray(catalog.pm_l) * u.mas / u.yr, pm_b=np.asarray(catalog.pm_b) * u.mas / u.yr,
        radial_velocity=np.asarray(catalog.v_los) * u.km / u.s, frame="galactic",
    )
    if frame is None:
        return sc
    if hasattr(frame, "to_galactocentric"):
        frame = frame.to_galactocentric()
    return sc.transform_to(frame)
