"""Catalogue readers and writers: astropy Tables (ECSV, FITS, CSV, Parquet) and the PP21/YPP24 peer layouts."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .structure import (
    DEFAULT_INPUT_UNITS,
    KNOWN_EXTRAS,
    REQUIRED_COLUMNS,
    CatalogError,
    StarCatalog,
    column_label,
    describe_rows,
    to_table,
    validate_arrays,
)

__all__ = [
    "FORMATS_BY_SUFFIX",
    "KNOWN_SUFFIXES",
    "read_catalog",
    "read_peer_transposed",
    "read_peer_header",
    "write_catalog",
]


#: File suffix -> astropy format name (the format of a file read without ``format=``).
FORMATS_BY_SUFFIX = {
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


#: Every suffix :func:`read_catalog` reads without ``format=`` (.txt / .dat: astropy guesses the ASCII layout).
KNOWN_SUFFIXES: tuple[str, ...] = (*FORMATS_BY_SUFFIX, ".txt", ".dat")


def _guess_format(path: str | os.PathLike) -> str | None:
    name = os.fspath(path).lower()
    for suffix in sorted(FORMATS_BY_SUFFIX, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS_BY_SUFFIX[suffix]
    return None


def _column_values(col: Any, name: str, target_unit: str, default_unit: str, src: str) -> np.ndarray:
    """Float64 values of a table column in ``target_unit``.

    A column with an astropy unit is converted (incompatible unit -> CatalogError);
    a unitless one is taken in ``default_unit``. Masked entries become NaN.
    """
    import astropy.units as u  # deferred: astropy loads only when this runs

    label = column_label(name, {name: src})
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
    from astropy.table import QTable, Table  # deferred: astropy loads only when this runs

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
    import astropy.coordinates as coord  # deferred: astropy loads only when this runs
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
    from astropy.table import Table  # deferred: astropy loads only when this runs

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
                "missing column(s) for ICRS input: " + ", ".join(column_label(n, names) for n in need)
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
                raise CatalogError(f"{column_label(n, radec_src)} has NaN or inf in {describe_rows(bad)}")
        for n in ("pmra_error", "pmdec_error"):
            bad = rd[n] <= 0
            if bad.any():
                raise CatalogError(f"{column_label(n, radec_src)} has non-positive error in {describe_rows(bad)}")
        bad = np.abs(rd["pmra_pmdec_corr"]) >= 1
        if bad.any():
            raise CatalogError(f"{column_label('pmra_pmdec_corr', radec_src)} has |rho| >= 1 in {describe_rows(bad)}")
        values.update(
            _radec_to_galactic(rd["ra"], rd["dec"], rd["pmra"], rd["pmdec"], rd["pmra_error"], rd["pmdec_error"],
                               rd["pmra_pmdec_corr"])
        )
    wanted = [n for n in REQUIRED_COLUMNS if n not in values]
    missing = [n for n in wanted if names[n] not in present and n != "pm_corr"]
    if missing:
        raise CatalogError(
            "missing column(s): " + ", ".join(column_label(n, names) for n in missing)
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


def write_catalog(cat: StarCatalog, path: str | os.PathLike, format: str | None = None, overwrite: bool = False) -> None:
    """Write ``cat`` with units (ECSV, FITS, Parquet; CSV without units, in the default
    units that :func:`read_catalog` assumes) so that ``read_catalog(path)`` round-trips it.
    The format is guessed from the suffix when None."""
    fmt = format or _guess_format(path)
    if fmt is None:
        raise CatalogError(f"cannot guess the format of {os.fspath(path)!r}; give format=")
    flatten = fmt.startswith("ascii") and fmt != "ascii.ecsv"
    to_table(cat, flatten=flatten).write(path, format=fmt, overwrite=overwrite)
