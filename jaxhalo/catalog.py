"""Star catalogues: a validated structure of arrays, readers, quality and Sagittarius cuts.

The :class:`StarCatalog` container holds one array per quantity, in jaxhalo's
internal units (angles in radians, kpc, km/s, mas/yr). Readers accept astropy
Tables (ECSV, FITS, CSV, Parquet) and the two public layouts of the PP21/YPP24
reflex-motion data (see ``shared/data/peers/README.md``).

Validation
----------
Every catalogue is checked when it is built (and again by the readers, which can
name the file's own column): a missing column, NaN or inf, a non-positive
distance or error, |rho| >= 1, |b| > 90 deg, a shape mismatch or an incompatible
unit raises :class:`CatalogError`, whose message names the column and the first
offending row indices (0-based) with their total count. Nothing is dropped
silently: stars leave a catalogue only through the cut functions below, each of
which returns a :class:`CutReport` saying how many stars it removed and why.

Cuts
----
* :func:`cut_quality` -- Chandra et al. (2025) §2.3: RV error > 15 km/s, fractional
  distance error > 25 %, unphysical radial or tangential velocity > 1000 km/s.
* :func:`cut_r_gal` -- Galactocentric radius window (Chandra: 40 < r_gal < 160 kpc;
  PP21: 40 < r_gal < 150 kpc).
* :func:`cut_sgr_angular_momentum` -- the PP21 Sagittarius angular-momentum ball
  (|L - L_Sgr| < 3000 kpc km/s and |B_Sgr| < 20 deg) or the YPP24 variant (every
  star in the ball).
* :func:`chandra_selection`, :func:`pp21_selection` chain them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from .constants import K_PM, K_PM_REFERENCE
from .frames import SolarParameters, galactic_to_cartesian, observables_to_galactocentric, spherical_velocity

__all__ = [
    "StarCatalog",
    "CatalogError",
    "CutReport",
    "REQUIRED_COLUMNS",
    "read_catalog",
    "read_peer_transposed",
    "read_peer_header",
    "write_catalog",
    "to_table",
    "galactic_to_sagittarius",
    "SGR_ROTATION",
    "L_SGR_PP21",
    "cut_quality",
    "cut_r_gal",
    "cut_sgr_angular_momentum",
    "chandra_selection",
    "pp21_selection",
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


def _describe_rows(bad: np.ndarray) -> str:
    """'N row(s): [i0, i1, ...]' listing the first few indices of the True entries of ``bad``."""
    idx = np.flatnonzero(bad)
    shown = ", ".join(str(i) for i in idx[:_MAX_LISTED])
    more = f", ... ({len(idx) - _MAX_LISTED} more)" if len(idx) > _MAX_LISTED else ""
    return f"{len(idx)} row(s) [{shown}{more}]"


def _label(name: str, source_names: Mapping[str, str] | None) -> str:
    src = None if source_names is None else source_names.get(name)
    if src is None or src == name:
        return f"column '{name}'"
    return f"column '{name}' (input column {src!r})"


def _is_tracer(a: Any) -> bool:
    return isinstance(a, jax.core.Tracer)


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
        raise CatalogError(f"missing column(s): {', '.join(_label(m, source_names) for m in missing)}")
    n = None
    for name in REQUIRED_COLUMNS:
        a = np.asarray(arrays[name])
        if a.ndim != 1:
            raise CatalogError(f"{_label(name, source_names)} must be one-dimensional, got shape {a.shape}")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise CatalogError(f"{_label(name, source_names)} has {a.shape[0]} rows, expected {n} (as column 'l')")
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise CatalogError(f"{_label(name, source_names)} is not real-valued numeric (dtype {a.dtype})")
        a = a.astype(np.float64, copy=False)
        bad = ~np.isfinite(a)
        if bad.any():
            kinds = []
            if np.isnan(a).any():
                kinds.append("NaN")
            if np.isinf(a).any():
                kinds.append("inf")
            raise CatalogError(f"{_label(name, source_names)} has {' and '.join(kinds)} in {_describe_rows(bad)}")
        if name == "distance":
            bad = a <= 0
            if bad.any():
                raise CatalogError(f"{_label(name, source_names)} has non-positive distance in {_describe_rows(bad)}")
        if name in _ERROR_COLUMNS:
            bad = a <= 0
            if bad.any():
                raise CatalogError(f"{_label(name, source_names)} has non-positive error in {_describe_rows(bad)}")
        if name == "pm_corr":
            bad = np.abs(a) >= 1
            if bad.any():
                raise CatalogError(f"{_label(name, source_names)} has |rho| >= 1 in {_describe_rows(bad)}")
        if name == "b":
            bad = np.abs(a) > 0.5 * np.pi * (1 + 1e-12)
            if bad.any():
                raise CatalogError(
                    f"{_label(name, source_names)} has |b| > 90 deg (b is in radians inside StarCatalog; "
                    f"degrees given without a unit?) in {_describe_rows(bad)}"
                )
    if xyz is not None:
        p = np.asarray(xyz)
        if p.shape != (n, 3):
            raise CatalogError(f"column 'xyz' must have shape ({n}, 3), got {p.shape}")
        bad = ~np.all(np.isfinite(p), axis=1)
        if bad.any():
            raise CatalogError(f"column 'xyz' has NaN or inf in {_describe_rows(bad)}")
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
        if any(_is_tracer(v) for v in values.values()) or _is_tracer(self.xyz):
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

    def galactocentric(self, solar: SolarParameters | None = None, k: float = K_PM) -> tuple[Array, Array]:
        """Galactocentric position (N, 3) [kpc] and velocity (N, 3) [km/s] from the observables.

        ``solar`` defaults to :class:`SolarParameters` (Chandra et al.); ``k`` is the
        km/s per (kpc mas/yr) factor (``constants.K_PM_REFERENCE`` for reflexcalc).
        """
        return observables_to_galactocentric(
            self.l, self.b, self.distance, self.v_los, self.pm_l, self.pm_b, solar=solar, k=k
        )

    def r_gal(self, solar: SolarParameters | None = None, use_catalog_xyz: bool = False) -> np.ndarray:
        """Galactocentric radius (N,) [kpc]: |xyz| from the catalogue when ``use_catalog_xyz``,
        otherwise recomputed from (l, b, distance) with ``solar`` (default Chandra et al.)."""
        if use_catalog_xyz:
            if self.xyz is None:
                raise CatalogError("column 'xyz' is absent: cannot use catalogue Galactocentric positions")
            return np.linalg.norm(self.xyz, axis=1)
        solar = SolarParameters() if solar is None else solar
        from .frames import heliocentric_to_galactocentric

        r, _ = heliocentric_to_galactocentric(galactic_to_cartesian(self.l, self.b, self.distance), None, solar)
        return np.asarray(jnp.linalg.norm(r, axis=-1))

    def to_table(self):
        """This catalogue as an astropy Table with units (see :func:`to_table`)."""
        return to_table(self)


# ----------------------------------------------------------------------------------------------
# Reading astropy tables and files
# ----------------------------------------------------------------------------------------------

_FORMATS_BY_SUFFIX = {
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".csv": "ascii.csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
}


def _guess_format(path: str | os.PathLike) -> str | None:
    name = os.fspath(path).lower()
    for suffix in sorted(_FORMATS_BY_SUFFIX, key=len, reverse=True):
        if name.endswith(suffix):
            return _FORMATS_BY_SUFFIX[suffix]
    return None


def _column_values(col: Any, name: str, target_unit: str, default_unit: str, src: str) -> np.ndarray:
    """Float64 values of a table column in ``target_unit``.

    A column with an astropy unit is converted (incompatible unit -> CatalogError);
    a unitless one is taken in ``default_unit``. Masked entries become NaN.
    """
    import astropy.units as u

    label = _label(name, {name: src})
    unit = getattr(col, "unit", None)
    data = col.value if isinstance(col, u.Quantity) else col
    if isinstance(data, np.ma.MaskedArray) or hasattr(data, "mask"):
        if not np.issubdtype(np.asarray(data).dtype, np.number):
            raise CatalogError(f"{label} is not numeric (dtype {np.asarray(data).dtype})")
        data = np.ma.filled(np.ma.asarray(data).astype(np.float64), np.nan)
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise CatalogError(f"{label} is not real-valued numeric (dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    source_unit = u.Unit(default_unit) if unit is None else unit
    try:
        factor = (1.0 * u.Unit(source_unit)).to_value(u.Unit(target_unit))
    except (u.UnitsError, ValueError, TypeError) as exc:
        want = "dimensionless" if target_unit == "" else f"convertible to {target_unit}"
        raise CatalogError(f"{label} has unit '{source_unit}', which is not {want}") from exc
    return arr if factor == 1.0 else arr * factor


def _as_table(data: Any):
    from astropy.table import QTable, Table

    if isinstance(data, (Table, QTable)):
        return data
    if isinstance(data, Mapping):
        return Table({k: v for k, v in data.items()})
    raise CatalogError(f"cannot read a catalogue from {type(data).__name__}: give a path, an astropy Table or a dict")


def _radec_to_galactic(
    ra: np.ndarray,
    dec: np.ndarray,
    pmra: np.ndarray,
    pmdec: np.ndarray,
    pmra_err: np.ndarray,
    pmdec_err: np.ndarray,
    corr: np.ndarray,
) -> dict[str, np.ndarray]:
    """ICRS (ra, dec [rad], pm_ra* , pm_dec and their errors [mas/yr], corr) -> Galactic.

    The proper motion and its covariance are rotated by the local 2x2 rotation J
    between the ICRS and Galactic sky bases, C_gal = J C_icrs J^T, with J taken from
    astropy by transforming the unit proper motions (1, 0) and (0, 1).
    """
    import astropy.coordinates as coord
    import astropy.units as u

    def to_gal(pa, pd):
        c = coord.SkyCoord(
            ra=ra * u.rad, dec=dec * u.rad, pm_ra_cosdec=pa * u.mas / u.yr, pm_dec=pd * u.mas / u.yr, frame="icrs"
        ).galactic
        return c, c.pm_l_cosb.to_value(u.mas / u.yr), c.pm_b.to_value(u.mas / u.yr)

    g, pml, pmb = to_gal(pmra, pmdec)
    one, zero = np.ones_like(ra), np.zeros_like(ra)
    _, j00, j10 = to_gal(one, zero)
    _, j01, j11 = to_gal(zero, one)
    J = np.stack([np.stack([j00, j01], -1), np.stack([j10, j11], -1)], -2)
    off = corr * pmra_err * pmdec_err
    C = np.stack([np.stack([pmra_err**2, off], -1), np.stack([off, pmdec_err**2], -1)], -2)
    Cg = J @ C @ np.swapaxes(J, -1, -2)
    sl, sb = np.sqrt(Cg[:, 0, 0]), np.sqrt(Cg[:, 1, 1])
    return {
        "l": g.l.to_value(u.rad),
        "b": g.b.to_value(u.rad),
        "pm_l": pml,
        "pm_b": pmb,
        "pm_l_err": sl,
        "pm_b_err": sb,
        "pm_corr": Cg[:, 0, 1] / (sl * sb),
    }


_RADEC_NAMES = ("ra", "dec", "pmra", "pmdec", "pmra_error", "pmdec_error", "pmra_pmdec_corr")
_RADEC_TARGET = {"ra": "rad", "dec": "rad", "pmra": "mas/yr", "pmdec": "mas/yr", "pmra_error": "mas/yr",
                 "pmdec_error": "mas/yr", "pmra_pmdec_corr": ""}


def read_catalog(
    path_or_table: Any,
    format: str | None = None,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    extra_columns: Sequence[str] | None = None,
    **read_kwargs: Any,
) -> StarCatalog:
    """Read and validate a star catalogue.

    Parameters
    ----------
    path_or_table : a file path (ECSV, FITS, CSV, Parquet, HDF5: anything
        ``astropy.table.Table.read`` reads), an astropy ``Table``/``QTable``, or a dict
        of equal-length arrays / Quantities.
    format : astropy format name; guessed from the file suffix when None.
    columns : map from jaxhalo names to the input's column names, for those that
        differ from the defaults. jaxhalo names: the 11 of ``REQUIRED_COLUMNS``
        (``pm_corr`` is optional and 0 when absent), ``x``, ``y``, ``z`` (catalogue
        Galactocentric position -> ``xyz``), ``vx``, ``vy``, ``vz`` (-> ``extra['vxyz']``),
        and, as an alternative to (l, b, pm_l, pm_b, pm_l_err, pm_b_err, pm_corr), the ICRS
        ``ra``, ``dec``, ``pmra`` (mu_alpha*), ``pmdec``, ``pmra_error``, ``pmdec_error``,
        ``pmra_pmdec_corr`` (Gaia archive names), converted to Galactic with astropy,
        the proper-motion covariance rotated.
    units : units for *unitless* input columns, by jaxhalo name (e.g. ``{"l": "rad"}``).
        Defaults: degrees for angles, kpc, km/s, mas/yr. Columns that carry an astropy
        unit are converted from it (deg -> rad, pc -> kpc, ...); an incompatible unit
        raises :class:`CatalogError` naming the column.
    extra_columns : input columns to keep in ``extra`` (default: every remaining
        column). Known extras are converted: ``sgr_lambda``, ``sgr_beta`` -> rad
        (unitless taken as deg), ``vxyz`` -> km/s; other extras keep their stored values.
    **read_kwargs : passed to ``Table.read``.

    Returns
    -------
    StarCatalog in internal units.

    Raises
    ------
    CatalogError : missing column, NaN/inf, non-positive distance or error,
        |rho| >= 1, incompatible unit; the message names the column and rows.
    """
    from astropy.table import Table

    if isinstance(path_or_table, (str, os.PathLike)):
        fmt = format or _guess_format(path_or_table)
        table = Table.read(path_or_table, format=fmt, **read_kwargs) if fmt else Table.read(path_or_table, **read_kwargs)
    else:
        table = _as_table(path_or_table)
    names = {k: k for k in list(REQUIRED_COLUMNS) + ["x", "y", "z", "vx", "vy", "vz", *_RADEC_NAMES]}
    unknown = set(columns or {}) - set(names)
    if unknown:
        raise CatalogError(f"unknown jaxhalo column name(s) in columns=: {sorted(unknown)}; known: {sorted(names)}")
    names.update(columns or {})
    in_units = dict(DEFAULT_INPUT_UNITS)
    in_units.update(units or {})
    present = set(table.colnames)

    def get(name: str, target: str) -> np.ndarray:
        return _column_values(table[names[name]], name, target, in_units[name], names[name])

    used: set[str] = set()
    values: dict[str, np.ndarray] = {}
    galactic = ("l", "b", "pm_l", "pm_b", "pm_l_err", "pm_b_err")
    use_radec = names["l"] not in present and names["b"] not in present and names["ra"] in present
    if use_radec:
        need = [n for n in _RADEC_NAMES[:-1] if names[n] not in present]
        if need:
            raise CatalogError(
                "missing column(s) for ICRS input: " + ", ".join(_label(n, names) for n in need)
            )
        rd = {n: get(n, _RADEC_TARGET[n]) for n in _RADEC_NAMES[:-1]}
        used |= {names[n] for n in _RADEC_NAMES[:-1]}
        if names["pmra_pmdec_corr"] in present:
            rd["pmra_pmdec_corr"] = get("pmra_pmdec_corr", "")
            used.add(names["pmra_pmdec_corr"])
        else:
            rd["pmra_pmdec_corr"] = np.zeros_like(rd["ra"])
        radec_src = {"ra": names["ra"], "dec": names["dec"], "pmra": names["pmra"], "pmdec": names["pmdec"],
                     "pmra_error": names["pmra_error"], "pmdec_error": names["pmdec_error"],
                     "pmra_pmdec_corr": names["pmra_pmdec_corr"]}
        # Validate the ICRS inputs before converting, so that messages name the input columns.
        for n, a in rd.items():
            bad = ~np.isfinite(a)
            if bad.any():
                raise CatalogError(f"{_label(n, radec_src)} has NaN or inf in {_describe_rows(bad)}")
        for n in ("pmra_error", "pmdec_error"):
            bad = rd[n] <= 0
            if bad.any():
                raise CatalogError(f"{_label(n, radec_src)} has non-positive error in {_describe_rows(bad)}")
        bad = np.abs(rd["pmra_pmdec_corr"]) >= 1
        if bad.any():
            raise CatalogError(f"{_label('pmra_pmdec_corr', radec_src)} has |rho| >= 1 in {_describe_rows(bad)}")
        values.update(
            _radec_to_galactic(rd["ra"], rd["dec"], rd["pmra"], rd["pmdec"], rd["pmra_error"], rd["pmdec_error"],
                               rd["pmra_pmdec_corr"])
        )
    wanted = [n for n in REQUIRED_COLUMNS if n not in values]
    missing = [n for n in wanted if names[n] not in present and n != "pm_corr"]
    if missing:
        raise CatalogError(
            "missing column(s): " + ", ".join(_label(n, names) for n in missing)
            + f"; the input has {sorted(present)} (use columns={{jaxhalo_name: input_name}})"
        )
    for n in wanted:
        if n == "pm_corr" and names[n] not in present:
            continue
        values[n] = get(n, REQUIRED_COLUMNS[n][0])
        used.add(names[n])
    if "pm_corr" not in values:
        values["pm_corr"] = np.zeros_like(values["distance"])

    xyz = None
    if all(names[c] in present for c in ("x", "y", "z")):
        xyz = np.stack([get(c, "kpc") for c in ("x", "y", "z")], axis=1)
        used |= {names[c] for c in ("x", "y", "z")}
    extra: dict[str, np.ndarray] = {}
    if all(names[c] in present for c in ("vx", "vy", "vz")):
        extra["vxyz"] = np.stack([get(c, "km/s") for c in ("vx", "vy", "vz")], axis=1)
        used |= {names[c] for c in ("vx", "vy", "vz")}
    keep = [c for c in table.colnames if c not in used] if extra_columns is None else list(extra_columns)
    for c in keep:
        if c not in present:
            raise CatalogError(f"extra column '{c}' is not in the input; it has {sorted(present)}")
        col = table[c]
        if c in KNOWN_EXTRAS:
            internal, _ = KNOWN_EXTRAS[c]
            default = "deg" if internal == "rad" else internal
            extra[c] = _column_values(col, c, internal, default, c)
        else:
            data = getattr(col, "value", col)
            extra[c] = np.ma.filled(data, np.nan) if np.ma.isMaskedArray(data) and np.issubdtype(
                np.asarray(data).dtype, np.floating) else np.asarray(data)

    src = {n: names[n] for n in REQUIRED_COLUMNS if not (use_radec and n in galactic + ("pm_corr",))}
    validate_arrays(values, xyz, extra, source_names=src)
    return StarCatalog(**values, xyz=xyz, extra=extra)


# ----------------------------------------------------------------------------------------------
# The two public PP21 / YPP24 layouts
# ----------------------------------------------------------------------------------------------

#: Layout T / H columns 0-15 -> jaxhalo names (see shared/data/peers/README.md).
_PEER_CORE = ("x", "y", "z", "vx", "vy", "vz", "l", "b", "distance", "v_los", "pm_l", "pm_b",
              "distance_err", "v_los_err", "pm_l_err", "pm_b_err")
_PEER_DESCR = {i: n for i, n in enumerate(_PEER_CORE)}


def _from_peer_matrix(data: np.ndarray, extras: Mapping[str, np.ndarray], rho_index: int | None,
                      where: str) -> StarCatalog:
    """Build a StarCatalog from an (N, >=16) array in the peer column order (l, b in degrees)."""
    deg = math.pi / 180.0
    values = {
        "l": data[:, 6] * deg,
        "b": data[:, 7] * deg,
        "distance": data[:, 8],
        "distance_err": data[:, 12],
        "v_los": data[:, 9],
        "v_los_err": data[:, 13],
        "pm_l": data[:, 10],
        "pm_b": data[:, 11],
        "pm_l_err": data[:, 14],
        "pm_b_err": data[:, 15],
        "pm_corr": np.zeros(data.shape[0]) if rho_index is None else data[:, rho_index],
    }
    src = {n: f"{where} {i}" for i, n in _PEER_DESCR.items()}
    src["pm_corr"] = "none (set to 0)" if rho_index is None else f"{where} {rho_index}"
    extra = {"vxyz": np.ascontiguousarray(data[:, 3:6]), **extras}
    xyz = np.ascontiguousarray(data[:, 0:3])
    validate_arrays(values, xyz, extra, source_names=src)
    return StarCatalog(**values, xyz=xyz, extra=extra)


def read_peer_transposed(path: str | os.PathLike) -> StarCatalog:
    """Read a layout-T file (reflexcalc fitting input: one row per quantity, one column per star).

    ``np.loadtxt(path).T`` gives (N, 17) or (N, 20). Rows 0-2 fill ``xyz`` (kpc),
    rows 3-5 ``extra['vxyz']`` (km/s), rows 6-16 the observables (l, b in degrees in
    the file, radians in the catalogue) and ``pm_corr``. 20-row files add
    ``extra['sgr_lambda']``, ``extra['sgr_beta']`` (rad) and ``extra['feh']`` (dex).

    Raises CatalogError for another number of rows or invalid values (the message
    names the jaxhalo column, the file row, and the star indices, i.e. file columns).
    """
    data = np.loadtxt(path, ndmin=2).T
    nq = data.shape[1]
    if nq not in (17, 20):
        raise CatalogError(f"{os.fspath(path)}: layout T needs 17 or 20 rows (quantities), found {nq}")
    extras: dict[str, np.ndarray] = {}
    if nq == 20:
        extras = {"sgr_lambda": np.deg2rad(data[:, 17]), "sgr_beta": np.deg2rad(data[:, 18]), "feh": data[:, 19]}
    return _from_peer_matrix(data, extras, 16, "layout-T row")


#: Header field (as written in the PP21 files) -> (extra name, file unit of an angle or None).
_PEER_HEADER_EXTRAS = {
    "sgrweak": ("sgr_weak", None),
    "sgrstrong": ("sgr_strong", None),
    "feh": ("feh", None),
    "sgr lambda": ("sgr_lambda", "deg"),
    "sgr beta": ("sgr_beta", "deg"),
    "belokurov flag": ("belokurov_flag", None),
    "rapo": ("r_apo", None),
    "rapo quality": ("r_apo_quality", None),
    "sdss?": ("sdss", None),
    "name": ("name", None),
    "corrcoef": ("pm_corr", None),
}

#: The header-less 23-column YPP24 parent (KGiant_edr3_metal_sgr_20.txt), columns 16-22.
EDR3_METAL_EXTRA_NAMES = ("feh", "flag_17", "feh_18", "sgr lambda", "sgr beta", "flag_21", "corrcoef")


def _all_numbers(line: str) -> bool:
    """Whether every whitespace-separated token of ``line`` parses as a float."""
    try:
        [float(t) for t in line.split()]
    except ValueError:
        return False
    return True


def _header_field_name(raw: str) -> str:
    base = raw.split("[")[0].strip().lower()
    return base


def read_peer_header(
    path: str | os.PathLike, header: bool | None = None, extra_names: Sequence[str] | None = None
) -> StarCatalog:
    """Read a layout-H file (PP21 catalogues: one header line of ``name [unit];`` fields, one row per star).

    Columns 0-15 are always (x, y, z, vx, vy, vz, l, b, d, v_los, mu_l*, mu_b, and the
    errors of d, v_los, mu_l*, mu_b): ``xyz``, ``extra['vxyz']`` and the observables.
    Further columns are named by the header: ``corrcoef`` -> ``pm_corr`` (0 when absent),
    ``Sgr Lambda``/``Sgr Beta`` -> ``extra['sgr_lambda'/'sgr_beta']`` in rad, ``FeH`` ->
    ``feh``, ``sgrweak``/``sgrstrong``/``Belokurov Flag`` -> flags, ``rapo`` ... , ``name``
    -> a string array.

    Parameters
    ----------
    path : the file.
    header : whether the first line is a header; detected (a token that is not a
        number) when None.
    extra_names : header-style names of the columns after 15 for a header-less file.
        The 23-column header-less YPP24 parent ``KGiant_edr3_metal_sgr_20.txt`` is
        recognised by its width: 16 [Fe/H], 17 0, 18 [Fe/H], 19 Lambda, 20 B, 21 0, 22 rho.
    """
    with open(path) as fh:
        first = fh.readline()
    if header is None:
        header = not _all_numbers(first)
    if header:
        fields_ = [f for f in (s.strip() for s in first.split(";")) if f]
        names = [_header_field_name(f) for f in fields_]
    else:
        names = None
    skip = 1 if header else 0
    data = np.genfromtxt(path, skip_header=skip, ndmin=2)
    ncol = data.shape[1]
    if ncol < 16:
        raise CatalogError(f"{os.fspath(path)}: layout H needs at least 16 columns, found {ncol}")
    if names is None:
        if extra_names is None:
            if ncol == 16:
                extra_names = ()
            elif ncol == 23:
                extra_names = EDR3_METAL_EXTRA_NAMES
            else:
                raise CatalogError(
                    f"{os.fspath(path)}: header-less layout H with {ncol} columns; give extra_names for columns 16.."
                )
        names = [""] * 16 + [_header_field_name(n) for n in extra_names]
    if len(names) != ncol:
        raise CatalogError(f"{os.fspath(path)}: header names {len(names)} columns but the rows have {ncol}")
    rho_index = None
    extras: dict[str, np.ndarray] = {}
    for j in range(16, ncol):
        key = names[j]
        target, angle_unit = _PEER_HEADER_EXTRAS.get(key, (key.replace(" ", "_").replace("?", ""), None))
        if target == "pm_corr":
            rho_index = j
        elif target == "name":
            with open(path) as fh:
                lines = [ln.split() for ln in fh.read().splitlines()[skip:] if ln.strip()]
            extras["name"] = np.array([ln[j] if len(ln) > j else "" for ln in lines])
        elif angle_unit == "deg":
            extras[target] = np.deg2rad(data[:, j])
        else:
            extras[target] = data[:, j]
    return _from_peer_matrix(data, extras, rho_index, "layout-H column")


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def to_table(cat: StarCatalog, flatten: bool = False):
    """An astropy Table with units: l, b in deg; kpc; km/s; mas/yr; pm_corr unitless.

    ``xyz`` becomes columns x, y, z (kpc); ``extra['vxyz']`` vx, vy, vz (km/s);
    ``sgr_lambda``/``sgr_beta`` are written in deg; other extras as stored.
    ``flatten=True`` splits any other multi-dimensional extra into ``name_0``,
    ``name_1``, ... (for formats such as CSV that have no array columns).
    """
    import astropy.units as u
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


def write_catalog(cat: StarCatalog, path: str | os.PathLike, format: str | None = None, overwrite: bool = False) -> None:
    """Write ``cat`` with units (ECSV, FITS, Parquet; CSV without units, in the default
    units that :func:`read_catalog` assumes) so that ``read_catalog(path)`` round-trips it.
    The format is guessed from the suffix when None."""
    fmt = format or _guess_format(path)
    if fmt is None:
        raise CatalogError(f"cannot guess the format of {os.fspath(path)!r}; give format=")
    flatten = fmt.startswith("ascii") and fmt != "ascii.ecsv"
    to_table(cat, flatten=flatten).write(path, format=fmt, overwrite=overwrite)


# ----------------------------------------------------------------------------------------------
# Sagittarius coordinates (Majewski et al. 2003 / Law & Majewski 2010)
# ----------------------------------------------------------------------------------------------


def _sgr_rotation() -> tuple[tuple[float, ...], ...]:
    """Galactic -> Sgr (Lambda, B) rotation of Majewski et al. (2003) as used by Law & Majewski
    (2010): Euler angles (phi, theta, psi) = (183.75, 76.54, 194.111534) deg (z-x-z, passive),
    then B flipped so that it is positive on the side of the stream's north pole. Hand-written
    (9 numbers) so the library does not need gala; the tests compare it with gala's
    ``SagittariusLaw10``."""

    def rz(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])

    def rx(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])

    d = math.pi / 180
    m = np.diag([1.0, 1.0, -1.0]) @ rz((180 + 14.111534) * d) @ rx((90 - 13.46) * d) @ rz((180 + 3.75) * d)
    return tuple(tuple(float(x) for x in row) for row in m)


#: Galactic -> Sagittarius (Law & Majewski 2010) rotation matrix (3, 3).
SGR_ROTATION: tuple[tuple[float, ...], ...] = _sgr_rotation()


def galactic_to_sagittarius(l: ArrayLike, b: ArrayLike) -> tuple[Array, Array]:
    """Sagittarius stream coordinates (Lambda in [0, 2 pi), B) [rad] of Galactic (l, b) [rad].

    The Law & Majewski (2010) / Majewski et al. (2003) frame, as in gala's
    ``SagittariusLaw10`` and the ``Sgr Lambda``/``Sgr Beta`` columns of the PP21 files.
    Pure JAX; broadcasts over (l, b).
    """
    v = galactic_to_cartesian(l, b) @ jnp.asarray(SGR_ROTATION).T
    lam = jnp.mod(jnp.arctan2(v[..., 1], v[..., 0]), 2 * jnp.pi)
    beta = jnp.arcsin(jnp.clip(v[..., 2], -1.0, 1.0))
    return lam, beta


# ----------------------------------------------------------------------------------------------
# Cuts
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CutReport:
    """What a cut did.

    Attributes
    ----------
    name : the cut.
    n_before, n_after : numbers of stars going in and out.
    removed_by : criterion -> number of stars failing it (a star can fail several).
    removed_indices : (n_before - n_after,) indices of the removed stars in the input catalogue.
    notes : where the quantities came from (catalogue columns or recomputed, solar parameters).
    """

    name: str
    n_before: int
    n_after: int
    removed_by: dict[str, int]
    removed_indices: np.ndarray
    notes: str = ""

    @property
    def n_removed(self) -> int:
        """Number of stars removed."""
        return self.n_before - self.n_after

    def __str__(self) -> str:
        parts = "; ".join(f"{k}: {v}" for k, v in self.removed_by.items())
        s = f"{self.name}: removed {self.n_removed} of {self.n_before} stars, {self.n_after} left ({parts})"
        return s + (f" [{self.notes}]" if self.notes else "")


def _apply(cat: StarCatalog, name: str, failures: dict[str, np.ndarray], notes: str = "",
           remove: np.ndarray | None = None) -> tuple[StarCatalog, CutReport]:
    """Remove the stars in ``remove`` (default: failing any criterion) and report."""
    n = len(cat)
    if remove is None:
        remove = np.zeros(n, bool)
        for f in failures.values():
            remove |= np.asarray(f, bool)
    report = CutReport(
        name=name,
        n_before=n,
        n_after=int(n - remove.sum()),
        removed_by={k: int(np.sum(v)) for k, v in failures.items()},
        removed_indices=np.flatnonzero(remove),
        notes=notes,
    )
    return cat.select(~remove), report


def cut_quality(
    cat: StarCatalog,
    max_v_los_err: float | None = 15.0,
    max_frac_distance_err: float | None = 0.25,
    max_velocity: float | None = 1000.0,
    velocity_frame: str = "galactocentric",
    solar: SolarParameters | None = None,
    k: float = K_PM,
) -> tuple[StarCatalog, CutReport]:
    """Quality cuts of Chandra et al. (2025) §2.3 (each disabled by passing None).

    Removes stars with v_los_err > ``max_v_los_err`` (15 km/s), distance_err / distance
    > ``max_frac_distance_err`` (0.25), or an "unphysical" radial or tangential velocity
    > ``max_velocity`` (1000 km/s) in absolute value. The paper does not say in which
    frame; by default (``velocity_frame="galactocentric"``) these are the
    Galactocentric v_r and v_t = sqrt(v_theta^2 + v_phi^2) computed with ``solar``
    (default Chandra et al.) and ``k``; ``"heliocentric"`` uses v_los and
    k d sqrt(mu_l*^2 + mu_b^2).

    Returns (new catalogue, :class:`CutReport`).
    """
    failures: dict[str, np.ndarray] = {}
    if max_v_los_err is not None:
        failures[f"v_los_err > {max_v_los_err:g} km/s"] = cat.v_los_err > max_v_los_err
    if max_frac_distance_err is not None:
        failures[f"distance_err/distance > {max_frac_distance_err:g}"] = (
            cat.distance_err / cat.distance > max_frac_distance_err
        )
    notes = ""
    if max_velocity is not None:
        if velocity_frame == "galactocentric":
            solar = SolarParameters() if solar is None else solar
            r, v = cat.galactocentric(solar, k)
            v_r, v_th, v_ph = (np.asarray(a) for a in spherical_velocity(r, v))
            v_t = np.hypot(v_th, v_ph)
            notes = f"velocities Galactocentric, solar={_solar_str(solar)}, k={k}"
        elif velocity_frame == "heliocentric":
            v_r = cat.v_los
            v_t = k * cat.distance * np.hypot(cat.pm_l, cat.pm_b)
            notes = f"velocities heliocentric, k={k}"
        else:
            raise ValueError(f"velocity_frame must be 'galactocentric' or 'heliocentric', got {velocity_frame!r}")
        failures[f"|v_r| > {max_velocity:g} km/s"] = np.abs(v_r) > max_velocity
        failures[f"v_t > {max_velocity:g} km/s"] = v_t > max_velocity
    return _apply(cat, "quality (Chandra+25 §2.3)", failures, notes)


def _solar_str(solar: SolarParameters) -> str:
    v = np.asarray(solar.v_sun)
    return (f"(d={float(solar.galcen_distance):g} kpc, z={float(solar.z_sun):g} kpc, "
            f"v=({v[0]:g}, {v[1]:g}, {v[2]:g}) km/s, tilt={solar.tilt})")


def cut_r_gal(
    cat: StarCatalog,
    r_min: float | None = 40.0,
    r_max: float | None = 160.0,
    solar: SolarParameters | None = None,
    use_catalog_xyz: bool = False,
) -> tuple[StarCatalog, CutReport]:
    """Keep r_min < r_gal < r_max (strict; either bound None to disable).

    r_gal is |cat.xyz| when ``use_catalog_xyz`` (as PP21/YPP24 did), otherwise it is
    recomputed from (l, b, distance) with ``solar`` (default Chandra et al.: the
    Chandra window is 40-160 kpc, PP21's 40-150 kpc).
    """
    r = cat.r_gal(solar, use_catalog_xyz)
    failures = {}
    if r_min is not None:
        failures[f"r_gal <= {r_min:g} kpc"] = r <= r_min
    if r_max is not None:
        failures[f"r_gal >= {r_max:g} kpc"] = r >= r_max
    notes = "r_gal from catalogue xyz" if use_catalog_xyz else (
        f"r_gal from (l, b, d), solar={_solar_str(SolarParameters() if solar is None else solar)}")
    return _apply(cat, "r_gal window", failures, notes)


#: Sagittarius angular momentum (kpc km/s) of the PP21 cut.
L_SGR_PP21: tuple[float, float, float] = (605.0, -4515.0, -1267.0)


def cut_sgr_angular_momentum(
    cat: StarCatalog,
    scheme: str = "PP21",
    l_sgr: Sequence[float] = L_SGR_PP21,
    radius: float = 3000.0,
    max_abs_beta_deg: float = 20.0,
    source: str = "auto",
    solar: SolarParameters | None = None,
    k: float | None = None,
    beta_source: str = "auto",
) -> tuple[StarCatalog, CutReport]:
    """Sagittarius angular-momentum cut (REFLEX_MODEL.md §7).

    A star is *in the ball* when |L - l_sgr| < ``radius`` (kpc km/s), L = r x v
    (Galactocentric). ``scheme="PP21"`` removes in-ball stars with |B_Sgr| <
    ``max_abs_beta_deg``; ``scheme="YPP24"`` removes every in-ball star.

    Parameters
    ----------
    source : where (r, v) come from. ``"catalog"``: ``cat.xyz`` and
        ``cat.extra['vxyz']`` (what PP21/YPP24 did); ``"observables"``: recomputed from
        (l, b, d, v_los, mu) with ``solar`` (default ``SolarParameters.reference()``, the
        reflexcalc Sun) and ``k`` (default ``K_PM_REFERENCE``); ``"auto"``: the catalogue's
        when both are present, else recomputed.
    beta_source : B_Sgr for PP21. ``"catalog"``: ``cat.extra['sgr_beta']`` (rad; the
        PP21 files' ``Sgr Beta`` column); ``"computed"``: :func:`galactic_to_sagittarius`
        (Law & Majewski 2010 frame, which the PP21 column follows to < 0.1 deg);
        ``"auto"``: the column when present, else computed.

    Returns (new catalogue, :class:`CutReport` whose notes name both sources).
    """
    scheme_u = scheme.upper()
    if scheme_u not in ("PP21", "YPP24"):
        raise ValueError(f"scheme must be 'PP21' or 'YPP24', got {scheme!r}")
    if source not in ("auto", "catalog", "observables"):
        raise ValueError(f"source must be 'auto', 'catalog' or 'observables', got {source!r}")
    have_cat = cat.xyz is not None and "vxyz" in cat.extra
    if source == "catalog" and not have_cat:
        raise CatalogError("source='catalog' needs column 'xyz' and extra column 'vxyz'")
    if source == "catalog" or (source == "auto" and have_cat):
        r, v = np.asarray(cat.xyz), np.asarray(cat.extra["vxyz"], dtype=np.float64)
        notes = ["L from catalogue xyz, vxyz"]
    else:
        solar = SolarParameters.reference() if solar is None else solar
        k = K_PM_REFERENCE if k is None else k
        r, v = (np.asarray(a) for a in cat.galactocentric(solar, k))
        notes = [f"L from observables, solar={_solar_str(solar)}, k={k}"]
    L = np.cross(r, v)
    bad = ~np.all(np.isfinite(L), axis=1)
    if bad.any():
        raise CatalogError(f"column 'vxyz' (or 'xyz') gives a non-finite angular momentum in {_describe_rows(bad)}")
    in_ball = np.linalg.norm(L - np.asarray(l_sgr, dtype=np.float64), axis=1) < radius
    failures = {f"|L - L_Sgr| < {radius:g}": in_ball}
    if scheme_u == "PP21":
        if beta_source not in ("auto", "catalog", "computed"):
            raise ValueError(f"beta_source must be 'auto', 'catalog' or 'computed', got {beta_source!r}")
        if beta_source == "catalog" and "sgr_beta" not in cat.extra:
            raise CatalogError("beta_source='catalog' needs extra column 'sgr_beta'")
        if beta_source == "catalog" or (beta_source == "auto" and "sgr_beta" in cat.extra):
            beta = np.asarray(cat.extra["sgr_beta"], dtype=np.float64)
            notes.append("B_Sgr from catalogue column sgr_beta")
        else:
            beta = np.asarray(galactic_to_sagittarius(cat.l, cat.b)[1])
            notes.append("B_Sgr computed (Law & Majewski 2010 frame)")
        near_plane = np.abs(beta) < np.deg2rad(max_abs_beta_deg)
        failures[f"|B_Sgr| < {max_abs_beta_deg:g} deg"] = near_plane
        remove = in_ball & near_plane
    else:
        remove = in_ball
    return _apply(cat, f"Sgr angular-momentum cut ({scheme_u})", failures, "; ".join(notes), remove=remove)


def chandra_selection(
    cat: StarCatalog,
    r_min: float = 40.0,
    r_max: float = 160.0,
    solar: SolarParameters | None = None,
    **quality_kwargs: Any,
) -> tuple[StarCatalog, list[CutReport]]:
    """Chandra et al. (2025) §2.3 quality cuts (:func:`cut_quality`) then the r_gal window
    40 < r_gal < 160 kpc, both with ``solar`` (default Chandra et al.). Their Sgr and
    substructure excisions need external models and are not applied here.

    Returns (catalogue, [quality report, r_gal report])."""
    cat, rep_q = cut_quality(cat, solar=solar, **quality_kwargs)
    cat, rep_r = cut_r_gal(cat, r_min, r_max, solar=solar)
    return cat, [rep_q, rep_r]


def pp21_selection(
    cat: StarCatalog, r_min: float = 40.0, r_max: float = 150.0, scheme: str = "PP21"
) -> tuple[StarCatalog, list[CutReport]]:
    """The PP21 sample selection: r_min < |xyz| < r_max from the catalogue positions, then
    the PP21 (or YPP24) Sgr angular-momentum cut from the catalogue phase space.

    Returns (catalogue, [r_gal report, Sgr report])."""
    cat, rep_r = cut_r_gal(cat, r_min, r_max, use_catalog_xyz=True)
    cat, rep_s = cut_sgr_angular_momentum(cat, scheme=scheme, source="catalog")
    return cat, [rep_r, rep_s]
