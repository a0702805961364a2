"""The star catalogue: a validated structure of arrays in jaxhalo's internal units.

See :mod:`jaxhalo.catalog` for the validation rules. Building and validating a catalogue imports
NumPy only (no JAX), so that the command line can check its input before it loads the JAX stack;
the methods that transform coordinates load :mod:`jaxhalo.frames` when called.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..constants import K_PM

if TYPE_CHECKING:  # annotations only: building and validating a catalogue needs no JAX
    from jax import Array

    from ..frames import SolarParameters

__all__ = [
    "to_table",
    "StarCatalog",
    "CatalogError",
    "REQUIRED_COLUMNS",
]


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


#: Units in which a *unitless* table column is read (the user-facing edge: degrees for angles).
DEFAULT_INPUT_UNITS: dict[str, str] = {
    "l": "deg",
    "b": "deg",
    "distance": "kpc",
    "distance_err": "kpc",
    "v_los": "km/s",
    "v_los_err": "km/s",
    "pm_l": "mas/yr",
    "pm_b": "mas/yr",
    "pm_l_err": "mas/yr",
    "pm_b_err": "mas/yr",
    "pm_corr": "",
    "x": "kpc",
    "y": "kpc",
    "z": "kpc",
    "vx": "km/s",
    "vy": "km/s",
    "vz": "km/s",
    "ra": "deg",
    "dec": "deg",
    "pmra": "mas/yr",
    "pmdec": "mas/yr",
    "pmra_error": "mas/yr",
    "pmdec_error": "mas/yr",
    "pmra_pmdec_corr": "",
}


#: Known ``extra`` columns: internal unit (converted on read) and the unit written to files.
KNOWN_EXTRAS: dict[str, tuple[str, str]] = {
    "sgr_lambda": ("rad", "deg"),
    "sgr_beta": ("rad", "deg"),
    "vxyz": ("km/s", "km/s"),
}


_ERROR_COLUMNS = ("distance_err", "v_los_err", "pm_l_err", "pm_b_err")


_MAX_LISTED = 10


def describe_rows(bad: np.ndarray) -> str:
    """'N row(s): [i0, i1, ...]' listing the first few indices of the True entries of ``bad``."""
    idx = np.flatnonzero(bad)
    shown = ", ".join(str(i) for i in idx[:_MAX_LISTED])
    more = f", ... ({len(idx) - _MAX_LISTED} more)" if len(idx) > _MAX_LISTED else ""
    return f"{len(idx)} row(s) [{shown}{more}]"


def column_label(name: str, source_names: Mapping[str, str] | None) -> str:
    src = None if source_names is None else source_names.get(name)
    if src is None or src == name:
        return f"column '{name}'"
    return f"column '{name}' (input column {src!r})"


def validate_arrays(
    arrays: Mapping[str, Any],
    xyz: Any = None,
    extra: Mapping[str, Any] | None = None,
    source_names: Mapping[str, str] | None = None,
) -> None:
    """Check catalogue arrays; raise :class:`CatalogError` naming the column and rows.

    Parameters
    ----------
    arrays : the 11 required columns (internal units), each shape (N,).
    xyz : optional (N, 3) Galactocentric positions (kpc).
    extra : optional per-star arrays with first dimension N.
    source_names : optional map from jaxhalo name to the input's column name (for messages).
    """
    missing = [k for k in REQUIRED_COLUMNS if k not in arrays or arrays[k] is None]
    if missing:
        raise CatalogError(f"missing column(s): {', '.join(column_label(m, source_names) for m in missing)}")
    n = None
    for name in REQUIRED_COLUMNS:
        a = np.asarray(arrays[name])
        if a.ndim != 1:
            raise CatalogError(f"{column_label(name, source_names)} must be one-dimensional, got shape {a.shape}")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise CatalogError(f"{column_label(name, source_names)} has {a.shape[0]} rows, expected {n} (as column 'l')")
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise CatalogError(f"{column_label(name, source_names)} is not real-valued numeric (dtype {a.dtype})")
        a = a.astype(np.float64, copy=False)
        bad = ~np.isfinite(a)
        if bad.any():
            kinds = []
            if np.isnan(a).any():
                kinds.append("NaN")
            if np.isinf(a).any():
                kinds.append("inf")
            raise CatalogError(f"{column_label(name, source_names)} has {' and '.join(kinds)} in {describe_rows(bad)}")
        if name == "distance":
            bad = a <= 0
            if bad.any():
                raise CatalogError(f"{column_label(name, source_names)} has non-positive distance in {describe_rows(bad)}")
        if name in _ERROR_COLUMNS:
            bad = a <= 0
            if bad.any():
                raise CatalogError(f"{column_label(name, source_names)} has non-positive error in {describe_rows(bad)}")
        if name == "pm_corr":
            bad = np.abs(a) >= 1
            if bad.any():
                raise CatalogError(f"{column_label(name, source_names)} has |rho| >= 1 in {describe_rows(bad)}")
        if name == "b":
            bad = np.abs(a) > 0.5 * np.pi * (1 + 1e-12)
            if bad.any():
                raise CatalogError(
                    f"{column_label(name, source_names)} has |b| > 90 deg (b is in radians inside StarCatalog; "
                    f"degrees given without a unit?) in {describe_rows(bad)}"
                )
    if xyz is not None:
        p = np.asarray(xyz)
        if p.shape != (n, 3):
            raise CatalogError(f"column 'xyz' must have shape ({n}, 3), got {p.shape}")
        bad = ~np.all(np.isfinite(p), axis=1)
        if bad.any():
            raise CatalogError(f"column 'xyz' has NaN or inf in {describe_rows(bad)}")
    for k, v in (extra or {}).items():
        shape = np.shape(v)
        if len(shape) == 0 or shape[0] != n:
            raise CatalogError(f"extra column '{k}' must have first dimension {n}, got shape {shape}")


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
    extra : further per-star columns (e.g. 'feh', 'sgr_lambda', 'sgr_beta' [rad],
        'vxyz' (N, 3) [km/s]), each an array with first dimension N.

    Construction validates the arrays (see the module docstring) and raises
    :class:`CatalogError` on bad input. Arrays are converted to float64 NumPy
    arrays (without a copy when they already are); under a JAX trace they are kept
    as given and not validated.
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

    def __post_init__(self) -> None:
        values = {k: getattr(self, k) for k in REQUIRED_COLUMNS}
        if "jax" in sys.modules:  # a tracer exists only once JAX is loaded
            from ..jax_utils import is_concrete  # deferred: JAX (already loaded here)

            if any((not is_concrete(v)) for v in values.values()) or (not is_concrete(self.xyz)):
                return
        validate_arrays(values, self.xyz, self.extra)
        for k, v in values.items():
            object.__setattr__(self, k, np.asarray(v, dtype=np.float64))
        if self.xyz is not None:
            object.__setattr__(self, "xyz", np.asarray(self.xyz, dtype=np.float64))
        object.__setattr__(self, "extra", {k: np.asarray(v) for k, v in self.extra.items()})

    def __len__(self) -> int:
        return int(np.shape(self.l)[0])

    @property
    def n_stars(self) -> int:
        """Number of stars N."""
        return len(self)

    def select(self, mask: np.ndarray) -> "StarCatalog":
        """A new catalogue with the stars where the boolean ``mask`` (N,) is True."""
        mask = np.asarray(mask, bool)
        if mask.shape != (len(self),):
            raise CatalogError(f"selection mask must have shape ({len(self)},), got {mask.shape}")
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

    def galactocentric(self, solar: "SolarParameters | None" = None, k: float = K_PM) -> "tuple[Array, Array]":
        """Galactocentric position (N, 3) [kpc] and velocity (N, 3) [km/s] from the observables.

        ``solar`` defaults to :class:`SolarParameters` (Chandra et al.); ``k`` is the
        km/s per (kpc mas/yr) factor (``constants.K_PM_REFERENCE`` for reflexcalc).
        """
        from ..frames import observables_to_galactocentric  # deferred: JAX loads only when coordinates are transformed

        return observables_to_galactocentric(
            self.l, self.b, self.distance, self.v_los, self.pm_l, self.pm_b, solar=solar, k=k
        )

    def r_gal(self, solar: "SolarParameters | None" = None, use_catalog_xyz: bool = False) -> np.ndarray:
        """Galactocentric radius (N,) [kpc]: |xyz| from the catalogue when ``use_catalog_xyz``,
        otherwise recomputed from (l, b, distance) with ``solar`` (default Chandra et al.)."""
        if use_catalog_xyz:
            if self.xyz is None:
                raise CatalogError("column 'xyz' is absent: cannot use catalogue Galactocentric positions")
            return np.linalg.norm(self.xyz, axis=1)
        import jax.numpy as jnp  # deferred: JAX loads only when coordinates are transformed

        from ..frames import SolarParameters, galactic_to_cartesian, heliocentric_to_galactocentric

        solar = SolarParameters() if solar is None else solar
        r, _ = heliocentric_to_galactocentric(galactic_to_cartesian(self.l, self.b, self.distance), None, solar)
        return np.asarray(jnp.linalg.norm(r, axis=-1))

    def to_table(self):
        """This catalogue as an astropy Table with units (see :func:`to_table`)."""
        return to_table(self)


def to_table(cat: StarCatalog, flatten: bool = False):
    """An astropy Table with units: l, b in deg; kpc; km/s; mas/yr; pm_corr unitless.

    ``xyz`` becomes columns x, y, z (kpc); ``extra['vxyz']`` vx, vy, vz (km/s);
    ``sgr_lambda``/``sgr_beta`` are written in deg; other extras as stored.
    ``flatten=True`` splits any other multi-dimensional extra into ``name_0``,
    ``name_1``, ... (for formats such as CSV that have no array columns).
    """
    import astropy.units as u  # deferred: astropy.table / units load only when a table is made
    from astropy.table import Table

    t = Table()
    for name, (unit, _) in REQUIRED_COLUMNS.items():
        v = np.asarray(getattr(cat, name))
        if name in ("l", "b"):
            t[name] = np.rad2deg(v) * u.deg
        elif unit:
            t[name] = v * u.Unit(unit)
        else:
            t[name] = v
    if cat.xyz is not None:
        for i, c in enumerate("xyz"):
            t[c] = np.asarray(cat.xyz)[:, i] * u.kpc
    for k, v in cat.extra.items():
        v = np.asarray(v)
        if k == "vxyz" and v.ndim == 2 and v.shape[1] == 3:
            for i, c in enumerate(("vx", "vy", "vz")):
                t[c] = v[:, i] * u.km / u.s
        elif k in KNOWN_EXTRAS:
            internal, written = KNOWN_EXTRAS[k]
            t[k] = (v * u.Unit(internal)).to(written)
        elif flatten and v.ndim > 1:
            flat = v.reshape(v.shape[0], -1)
            for i in range(flat.shape[1]):
                t[f"{k}_{i}"] = flat[:, i]
        else:
            t[k] = v
    return t
