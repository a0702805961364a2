"""Whether a catalogue can support a fit: enough stars, plausible units, no duplicates (NumPy only).

These checks run before the JAX stack loads (the command line calls them right after reading the
file), so they use NumPy alone; :func:`galactocentric_radius` repeats the geometry of
:func:`jaxhalo.frames.heliocentric_to_galactocentric` for that reason (the tests compare the two).

The minimum-data rule
---------------------
A fit needs at least :data:`MIN_STARS_PER_PARAMETER` (= 2) stars per free model parameter: 18 for the
constant reflex model (9 parameters), 36 for the continuity model (18). Each star gives three
velocity components, so that is six measurements per parameter, the least with which the ML fit and
its 3-sigma clipping are defined and the posterior differs from the prior. The rule is checked after
every cut and after clipping; ``--force`` (``force=True``) turns the refusal into a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from ..constants import K_PM
from .structure import CatalogError, StarCatalog, describe_rows

__all__ = [
    "DataWarning",
    "InsufficientStarsError",
    "MIN_STARS_PER_PARAMETER",
    "PlausibilityError",
    "SOLAR_GEOMETRY",
    "check_enough_stars",
    "check_plausible",
    "galactocentric_radius",
    "minimum_stars",
]

#: Stars needed per free model parameter (see the module docstring).
MIN_STARS_PER_PARAMETER: int = 2

#: (galcen_distance [kpc], z_sun [kpc], tilt) of ``SolarParameters()`` and ``SolarParameters.reference()``.
SOLAR_GEOMETRY: Mapping[str, tuple[float, float, bool]] = {
    "default": (8.122, 0.0208, True),
    "reference": (8.3, 0.02, False),
}

#: Medians beyond which a column is taken to be in the wrong unit.
_MAX_MEDIAN_DISTANCE_KPC = 1000.0
_MAX_MEDIAN_SPEED_KMS = 1500.0


class InsufficientStarsError(CatalogError):
    """Too few stars remain (after a cut or clipping) for the model's parameters."""


class PlausibilityError(CatalogError):
    """The values look like the wrong unit, or the catalogue repeats stars."""


class DataWarning(UserWarning):
    """A data check that was overridden (``force=True``)."""


def minimum_stars(n_params: int) -> int:
    """Least number of stars for a model with ``n_params`` free parameters (the rule above)."""
    return MIN_STARS_PER_PARAMETER * int(n_params)


def check_enough_stars(n: int, n_params: int, stage: str, force: bool = False) -> None:
    """Raise :class:`InsufficientStarsError` when ``n`` stars are fewer than :func:`minimum_stars`.

    ``stage`` says what left them (e.g. ``"after the cut r_gal > 500 kpc (850 of 850 removed)"``) and is
    put in the message. With ``force`` a :class:`DataWarning` is issued instead (except for 0 stars,
    which nothing can fit).
    """
    need = minimum_stars(n_params)
    if n >= need:
        return
    msg = (f"{n} star(s) {stage}; a model with {n_params} parameters needs at least {need} "
           f"({MIN_STARS_PER_PARAMETER} per parameter)")
    if force and n > 0:
        warnings.warn(msg + "; fitting anyway (--force): the posterior is dominated by the prior", DataWarning,
                      stacklevel=2)
        return
    raise InsufficientStarsError(msg + ("" if n == 0 else "; widen the cuts, use a smaller model, or give --force"))


def galactocentric_radius(cat: StarCatalog, galcen_distance: float = 8.122, z_sun: float = 0.0208,
                          tilt: bool = True) -> np.ndarray:
    """Galactocentric radius (N,) [kpc] of each star from (l, b, distance), in NumPy.

    The same geometry as :meth:`StarCatalog.r_gal` with ``SolarParameters(galcen_distance, z_sun,
    tilt=tilt)``: tilted, the Galactic centre lies at (galcen_distance, 0, 0) in heliocentric
    Galactic Cartesian axes and the rotation does not change lengths; untilted, the Sun is at
    (-galcen_distance, 0, z_sun).
    """
    l, b, d = np.asarray(cat.l), np.asarray(cat.b), np.asarray(cat.distance)
    cb = np.cos(b)
    x, y, z = d * cb * np.cos(l), d * cb * np.sin(l), d * np.sin(b)
    if tilt:
        return np.sqrt((x - galcen_distance) ** 2 + y**2 + z**2)
    return np.sqrt((x - galcen_distance) ** 2 + y**2 + (z + z_sun) ** 2)


def check_plausible(cat: StarCatalog, force: bool = False) -> None:
    """Raise :class:`PlausibilityError` for values that look like a wrong unit or repeated stars.

    * median distance above 1000 kpc: parsecs labelled (or read as) kpc;
    * median |v_los| above 1500 km/s: m/s read as km/s;
    * median tangential speed K d |mu| above 1500 km/s: proper motions not in mas/yr;
    * rows with identical (l, b, distance, v_los, pm_l, pm_b): duplicated stars.

    With ``force`` each problem becomes a :class:`DataWarning`. An empty catalogue passes.
    """
    if len(cat) == 0:
        return
    problems = []
    d = np.asarray(cat.distance)
    med_d = float(np.median(d))
    if med_d > _MAX_MEDIAN_DISTANCE_KPC:
        problems.append(f"column 'distance' has median {med_d:.4g} kpc (max {d.max():.4g}): these look like pc read "
                        "as kpc (a column without a unit is taken in kpc); give the column the unit 'pc' or divide by 1000")
    else:
        vlos = np.abs(np.asarray(cat.v_los))
        if float(np.median(vlos)) > _MAX_MEDIAN_SPEED_KMS:
            problems.append(f"column 'v_los' has median |v_los| {np.median(vlos):.4g} km/s: these look like m/s read "
                            "as km/s; give the column the unit 'm/s' or divide by 1000")
        vt = K_PM * d * np.hypot(np.asarray(cat.pm_l), np.asarray(cat.pm_b))
        if float(np.median(vt)) > _MAX_MEDIAN_SPEED_KMS:
            problems.append(f"columns 'pm_l', 'pm_b' give a median tangential speed of {np.median(vt):.4g} km/s: the "
                            "proper motions do not look like mas/yr; give their unit (e.g. 'uas/yr') in the file")
    obs = np.column_stack([np.asarray(getattr(cat, c)) for c in ("l", "b", "distance", "v_los", "pm_l", "pm_b")])
    _, first, inverse = np.unique(obs, axis=0, return_index=True, return_inverse=True)
    dup = np.arange(len(cat)) != first[np.ravel(inverse)]
    if dup.any():
        j = int(np.flatnonzero(dup)[0])
        problems.append(f"{describe_rows(dup)} repeat earlier stars (row {j} = row {int(first[np.ravel(inverse)[j]])}); "
                        "remove the duplicates")
    for p in problems:
        if force:
            warnings.warn(p + " (--force: fitting anyway)", DataWarning, stacklevel=2)
        else:
            raise PlausibilityError(p + "; --force fits anyway")
