"""Star catalogues: a validated structure of arrays, readers, quality and Sagittarius cuts.

The :class:`StarCatalog` container holds one array per quantity, in jaxhalo's
internal units (angles in radians, kpc, km/s, mas/yr). Readers accept astropy
Tables (ECSV, FITS, CSV, Parquet) and the two public layouts of the PP21/YPP24
reflex-motion data (see ``shared/data/peers/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

__all__ = ["StarCatalog", "CatalogError"]


class CatalogError(ValueError):
    """Raised for invalid catalogue input; the message names the column and the offending rows."""


#: Required per-star quantities, their internal unit, and what they are.
REQUIRED_COLUMNS: dict[str, tuple[str, str]] = {
    "l": ("rad", "Galactic longitude"),
    "b": ("rad", "Galactic latitude"),
    "distance": ("kpc", "heliocentric distance"),
    "distance_err": ("kpc", "1-sigma distance error"),
    "v_los": ("km/s", "heliocentric line-of-sight velocity"),
    "v_los_err": ("km/s", "1-sigma v_los error"),
    "pm_l": ("mas/yr", "proper motion mu_l* = mu_l cos b"),
    "pm_b": ("mas/yr", "proper motion mu_b"),
    "pm_l_err": ("mas/yr", "1-sigma mu_l* error"),
    "pm_b_err": ("mas/yr", "1-sigma mu_b error"),
    "pm_corr": ("", "correlation coefficient of (mu_l*, mu_b)"),
}


@dataclass(frozen=True)
class StarCatalog:
    """A catalogue of N stars as NumPy float64 arrays of shape (N,), internal units.

    Attributes
    ----------
    l, b : Galactic longitude and latitude (rad).
    distance, distance_err : heliocentric distance and its 1-sigma error (kpc).
    v_los, v_los_err : line-of-sight velocity and error (km/s).
    pm_l, pm_b, pm_l_err, pm_b_err : proper motions (mu_l*, mu_b) and errors (mas/yr).
    pm_corr : correlation coefficient of the proper-motion errors, in (-1, 1).
    xyz : optional (N, 3) Galactocentric positions as given by the catalogue (kpc).
        The reflexcalc reference likelihood uses these instead of recomputing them.
    extra : further per-star columns (e.g. 'feh', 'sgr_lambda', 'sgr_beta', 'vxyz'),
        each an array with first dimension N.
    """

    l: np.ndarray
    b: np.ndarray
    distance: np.ndarray
    distance_err: np.ndarray
    v_los: np.ndarray
    v_los_err: np.ndarray
    pm_l: np.ndarray
    pm_b: np.ndarray
    pm_l_err: np.ndarray
    pm_b_err: np.ndarray
    pm_corr: np.ndarray
    xyz: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(np.shape(self.l)[0])

    def select(self, mask: np.ndarray) -> "StarCatalog":
        """A new catalogue with the stars where the boolean ``mask`` (N,) is True."""
        mask = np.asarray(mask, bool)
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "extra":
                kw["extra"] = {k: np.asarray(a)[mask] for k, a in v.items()}
            elif v is None:
                kw[f.name] = None
            else:
                kw[f.name] = np.asarray(v)[mask]
        return replace(self, **kw)
