"""Catalogue reading, validation, writing and cuts.

Peer-data checks reproduce the numbers of shared/data/peers/README.md; the rest
compare against independent NumPy / astropy computations written here.
"""

from __future__ import annotations

import re

import astropy.coordinates as coord
import astropy.units as u
import jax
import numpy as np
import pytest
from astropy.table import Table
from conftest import peer_file

from jaxhalo import catalog as C
from jaxhalo.catalog.structure import CatalogError, StarCatalog
from jaxhalo.constants import K_PM
from jaxhalo.frames import SolarParameters

YPP24_50 = "reflexcalc/processed_real/sgrtests/KGiant_YPP24sgr_50+.txt"
NOSGR_50 = "reflexcalc/processed_real/sgrtests/KGiant_nosgr_50+.txt"
PP21_KG = "ReflexMotion/processed/complete/KGiants_cartesian_heliocentric_sgr.txt"
EDR3_PARENT = "reflexcalc/processed_real/binned_sgr_4bin/KG/KGiant_edr3_metal_sgr_20.txt"
EDR3_BIN3 = "reflexcalc/processed_real/binned_sgr_4bin/KG/KGiant_edr3_metal_sgr_20_3.txt"
SATELLITES = "ReflexMotion/processed/complete/satellites_updated_cartesian_heliocentric.txt"


def _random_table(n: int = 40, seed: int = 1) -> dict[str, np.ndarray]:
    """Plain arrays in the documented default input units (degrees, kpc, km/s, mas/yr)."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(20, 150, n)
    return {
        "l": rng.uniform(0, 360, n),
        "b": np.rad2deg(np.arcsin(rng.uniform(-1, 1, n))),
        "distance": d,
        "distance_err": d * rng.uniform(0.02, 0.4, n),
        "v_los": rng.normal(0, 120, n),
        "v_los_err": rng.uniform(0.5, 25, n),
        "pm_l": rng.normal(0, 0.5, n),
        "pm_b": rng.normal(0, 0.5, n),
        "pm_l_err": rng.uniform(0.02, 0.5, n),
        "pm_b_err": rng.uniform(0.02, 0.5, n),
        "pm_corr": rng.uniform(-0.6, 0.6, n),
    }


def _catalog(n: int = 40, seed: int = 1, with_extras: bool = True) -> StarCatalog:
    data = _random_table(n, seed)
    cat = C.read_catalog(data)
    if not with_extras:
        return cat
    rng = np.random.default_rng(seed + 100)
    r, v = (np.asarray(a) for a in cat.galactocentric())
    extra = {"vxyz": v, "feh": rng.normal(-1.5, 0.4, n), "sgr_beta": rng.uniform(-1, 1, n)}
    return StarCatalog(**{k: getattr(cat, k) for k in C.REQUIRED_COLUMNS}, xyz=r, extra=extra)


def _assert_catalogs_equal(a: StarCatalog, b: StarCatalog, rtol: float = 1e-14) -> None:
    assert len(a) == len(b)
    for name in C.REQUIRED_COLUMNS:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=rtol, atol=1e-300, err_msg=name)
    if a.xyz is None:
        assert b.xyz is None
    else:
        np.testing.assert_allclose(b.xyz, a.xyz, rtol=rtol)
    assert set(a.extra) == set(b.extra)
    for k in a.extra:
        np.testing.assert_allclose(b.extra[k], a.extra[k], rtol=rtol, err_msg=k)


# ------------------------------------------------------------------------------------------
# Peer data (shared/data/peers/README.md)
# ------------------------------------------------------------------------------------------


def test_ypp24_50_reads_253_stars_and_frame_facts_hold():
    cat = C.read_peer_transposed(peer_file(YPP24_50))
    assert len(cat) == 253
    l, b, d = cat.l, cat.b, cat.distance
    # README: x = d cos b cos l - 8.3, y = d cos b sin l, z = d sin b + 0.03 (DR3), no tilt.
    expected = np.stack([d * np.cos(b) * np.cos(l) - 8.3, d * np.cos(b) * np.sin(l), d * np.sin(b) + 0.03], 1)
    np.testing.assert_allclose(cat.xyz, expected, rtol=0, atol=1e-9)
    # v = v_helio + (11.1, 244.24, 7.25) with k = 4.74057, in NumPy from the sky basis.
    e_los = np.stack([np.cos(b) * np.cos(l), np.cos(b) * np.sin(l), np.sin(b)], 1)
    e_l = np.stack([-np.sin(l), np.cos(l), 0 * l], 1)
    e_b = np.stack([-np.sin(b) * np.cos(l), -np.sin(b) * np.sin(l), np.cos(b)], 1)
    kd = (4.74057 * d)[:, None]
    v = cat.v_los[:, None] * e_los + kd * cat.pm_l[:, None] * e_l + kd * cat.pm_b[:, None] * e_b
    np.testing.assert_allclose(cat.extra["vxyz"], v + np.array([11.1, 244.24, 7.25]), rtol=0, atol=1e-9)
    # l in (-180, 180] deg for layout T sgrtests files; every star beyond 50 kpc.
    assert np.all(np.abs(cat.l) <= np.pi) and np.all(np.linalg.norm(cat.xyz, axis=1) > 50)


def test_pp21_kgiant_selection_gives_562():
    cat = C.read_peer_header(peer_file(PP21_KG))
    assert len(cat) == 6016
    assert {"sgr_beta", "sgr_lambda", "feh", "sgr_weak", "sgr_strong", "belokurov_flag", "vxyz"} <= set(cat.extra)
    sel, (rep_r, rep_s) = C.pp21_selection(cat)
    assert len(sel) == 562
    assert rep_r.n_after == rep_s.n_before and rep_s.n_after == 562
    assert rep_r.n_removed + rep_s.n_removed == 6016 - 562
    # Independent NumPy rebuild of the same selection.
    raw = np.genfromtxt(peer_file(PP21_KG), skip_header=1)
    r = np.linalg.norm(raw[:, :3], axis=1)
    L = np.cross(raw[:, :3], raw[:, 3:6])
    ball = np.linalg.norm(L - [605, -4515, -1267], axis=1) < 3000
    keep = (r > 40) & (r < 150) & ~(ball & (np.abs(raw[:, 20]) < 20))
    np.testing.assert_array_equal(np.sort(sel.distance), np.sort(raw[keep, 8]))
    # B_Sgr computed from (l, b) in the Law & Majewski frame selects the same stars.
    sel_computed, _ = C.cut_sgr_angular_momentum(C.cut_r_gal(cat, 40, 150, use_catalog_xyz=True)[0],
                                                  beta_source="computed")
    assert len(sel_computed) == 562


@pytest.mark.parametrize("source", ["catalog", "observables"])
def test_ypp24_cut_on_nosgr_50_gives_253(source):
    parent = C.read_peer_transposed(peer_file(NOSGR_50))
    assert len(parent) == 255
    cut, rep = C.cut_sgr_angular_momentum(parent, scheme="YPP24", source=source)
    assert len(cut) == 253 and rep.n_removed == 2 and len(rep.removed_indices) == 2
    ref = C.read_peer_transposed(peer_file(YPP24_50))
    order = lambda c: np.lexsort((c.l, c.distance))  # noqa: E731
    np.testing.assert_array_equal(cut.xyz[order(cut)], ref.xyz[order(ref)])
    assert "YPP24" in str(rep) and "removed 2 of 255" in str(rep)


def test_header_less_parent_and_bins():
    parent = C.read_peer_header(peer_file(EDR3_PARENT))
    assert len(parent) == 2830
    np.testing.assert_array_equal(parent.extra["feh"], parent.extra["feh_18"])  # README: 16 and 18 both [Fe/H]
    assert np.all(parent.extra["flag_17"] == 0) and np.all(parent.extra["flag_21"] == 0)
    assert np.abs(parent.pm_corr).max() < 1 and np.abs(parent.pm_corr).max() > 0.1  # rho is column 22
    bin3 = C.read_peer_transposed(peer_file(EDR3_BIN3))
    assert len(bin3) == 255 and {"sgr_lambda", "sgr_beta", "feh"} <= set(bin3.extra)
    nosgr = C.read_peer_transposed(peer_file(NOSGR_50))
    np.testing.assert_allclose(np.sort(bin3.distance), np.sort(nosgr.distance), rtol=1e-12)
    # the 20-row file's Sgr latitude follows the Law & Majewski frame
    beta = np.asarray(C.galactic_to_sagittarius(bin3.l, bin3.b)[1])
    assert np.max(np.abs(np.rad2deg(beta - bin3.extra["sgr_beta"]))) < 0.1


def test_satellites_names_and_zero_rho():
    sat = C.read_peer_header(peer_file(SATELLITES))
    assert len(sat) == 46 and sat.extra["name"][0] == "Aquarius2"
    assert np.all(sat.pm_corr == 0)


def test_mock_with_zero_errors_is_refused_not_dropped():
    path = peer_file("ReflexMotion/data/mocks/mock_live_s13_98_35k_heliocentric.txt")
    raw = np.genfromtxt(path, skip_header=1)
    with pytest.raises(CatalogError) as ei:
        C.read_peer_header(path)
    msg = str(ei.value)
    n_bad = int(np.sum(raw[:, 13] <= 0))
    first = np.flatnonzero(raw[:, 13] <= 0)[0]
    assert "v_los_err" in msg and "column 13" in msg and f"{n_bad} row(s)" in msg and f"[{first}," in msg


# ------------------------------------------------------------------------------------------
# Sagittarius coordinates
# ------------------------------------------------------------------------------------------


def test_sagittarius_frame_matches_gala():
    gala_coords = pytest.importorskip("gala.coordinates")
    rng = np.random.default_rng(3)
    l = rng.uniform(0, 2 * np.pi, 500)
    b = np.arcsin(rng.uniform(-1, 1, 500))
    lam, beta = (np.asarray(a) for a in C.galactic_to_sagittarius(l, b))
    s = coord.Galactic(l=l * u.rad, b=b * u.rad).transform_to(gala_coords.SagittariusLaw10())
    np.testing.assert_allclose(np.rad2deg(beta), s.Beta.deg, rtol=0, atol=1e-9)
    dlam = (np.rad2deg(lam) - s.Lambda.wrap_at(360 * u.deg).deg + 180) % 360 - 180
    assert np.max(np.abs(dlam)) < 1e-9


def test_sagittarius_b_of_pp21_column():
    cat = C.read_peer_header(peer_file(PP21_KG))
    beta = np.asarray(C.galactic_to_sagittarius(cat.l, cat.b)[1])
    assert np.max(np.abs(np.rad2deg(beta - cat.extra["sgr_beta"]))) < 0.1


# ------------------------------------------------------------------------------------------
# Reading, units, ICRS input, round trips
# ------------------------------------------------------------------------------------------


def test_dict_input_default_units_and_pm_corr_optional():
    data = _random_table()
    data.pop("pm_corr")
    cat = C.read_catalog(data)
    np.testing.assert_allclose(cat.l, np.deg2rad(data["l"]), rtol=1e-15)
    np.testing.assert_allclose(cat.b, np.deg2rad(data["b"]), rtol=1e-15)
    np.testing.assert_array_equal(cat.pm_corr, 0.0)
    np.testing.assert_array_equal(cat.distance, data["distance"])


def test_unit_conversion_from_quantities():
    data = _random_table()
    q = {
        "l": np.deg2rad(data["l"]) * u.rad,
        "b": (data["b"] * u.deg).to(u.arcmin),
        "distance": data["distance"] * 1e3 * u.pc,
        "distance_err": data["distance_err"] * u.kpc,
        "v_los": data["v_los"] * 1e3 * u.m / u.s,
        "v_los_err": data["v_los_err"] * u.km / u.s,
        "pm_l": data["pm_l"] * 1e-3 * u.arcsec / u.yr,
        "pm_b": data["pm_b"] * u.mas / u.yr,
        "pm_l_err": data["pm_l_err"] * u.mas / u.yr,
        "pm_b_err": data["pm_b_err"] * u.mas / u.yr,
        "pm_corr": data["pm_corr"] * 100 * u.percent,
    }
    cat = C.read_catalog(q)
    ref = C.read_catalog(data)
    _assert_catalogs_equal(ref, cat, rtol=1e-13)


def test_units_argument_for_unitless_columns():
    data = _random_table()
    data_rad = dict(data, l=np.deg2rad(data["l"]), b=np.deg2rad(data["b"]))
    cat = C.read_catalog(data_rad, units={"l": "rad", "b": "rad"})
    np.testing.assert_allclose(cat.b, np.deg2rad(data["b"]), rtol=1e-15)


def test_column_mapping():
    data = _random_table()
    renamed = {("dist" if k == "distance" else "vhel" if k == "v_los" else k): v for k, v in data.items()}
    renamed["x_gal"], renamed["y"], renamed["z"] = (np.arange(40.0) + i for i in range(3))
    cat = C.read_catalog(renamed, columns={"distance": "dist", "v_los": "vhel", "x": "x_gal"})
    np.testing.assert_array_equal(cat.distance, data["distance"])
    np.testing.assert_array_equal(cat.xyz[:, 0], np.arange(40.0))
    assert "dist" not in cat.extra and "x_gal" not in cat.extra
    with pytest.raises(CatalogError, match="unknown jaxhalo column"):
        C.read_catalog(renamed, columns={"dist": "distance"})


def test_icrs_input_rotates_proper_motions_and_covariance():
    rng = np.random.default_rng(7)
    n = 60
    ra, dec = rng.uniform(0, 360, n), np.rad2deg(np.arcsin(rng.uniform(-1, 1, n)))
    pmra, pmdec = rng.normal(0, 2, n), rng.normal(0, 2, n)
    sa, sd, rho = rng.uniform(0.01, 0.3, n), rng.uniform(0.01, 0.3, n), rng.uniform(-0.8, 0.8, n)
    base = _random_table(n, seed=8)
    data = {k: base[k] for k in ("distance", "distance_err", "v_los", "v_los_err")}
    data.update(ra=ra, dec=dec, pmra=pmra, pmdec=pmdec, pmra_error=sa, pmdec_error=sd, pmra_pmdec_corr=rho)
    cat = C.read_catalog(data)
    # Independent: J_ij = e_gal_i . e_icrs_j with the Galactic basis mapped into ICRS by
    # astropy's (position-only) Galactic -> ICRS rotation matrix.
    a, dl = np.deg2rad(ra), np.deg2rad(dec)
    e_a = np.stack([-np.sin(a), np.cos(a), 0 * a], 1)
    e_d = np.stack([-np.sin(dl) * np.cos(a), -np.sin(dl) * np.sin(a), np.cos(dl)], 1)
    M = coord.Galactic(coord.CartesianRepresentation(np.eye(3))).transform_to(coord.ICRS()).cartesian.xyz.value
    l, b = cat.l, cat.b
    e_l = np.stack([-np.sin(l), np.cos(l), 0 * l], 1) @ M.T
    e_b = np.stack([-np.sin(b) * np.cos(l), -np.sin(b) * np.sin(l), np.cos(b)], 1) @ M.T
    # positions: the Galactic unit vector of (l, b) maps onto the ICRS one of (ra, dec)
    u_icrs = np.stack([np.cos(dl) * np.cos(a), np.cos(dl) * np.sin(a), np.sin(dl)], 1)
    u_gal = np.stack([np.cos(b) * np.cos(l), np.cos(b) * np.sin(l), np.sin(b)], 1) @ M.T
    np.testing.assert_allclose(u_gal, u_icrs, atol=1e-12)
    J = np.stack([np.stack([np.sum(e_l * e_a, 1), np.sum(e_l * e_d, 1)], 1),
                  np.stack([np.sum(e_b * e_a, 1), np.sum(e_b * e_d, 1)], 1)], 1)
    pm = np.einsum("nij,nj->ni", J, np.stack([pmra, pmdec], 1))
    np.testing.assert_allclose(cat.pm_l, pm[:, 0], atol=1e-9)
    np.testing.assert_allclose(cat.pm_b, pm[:, 1], atol=1e-9)
    Ci = np.stack([np.stack([sa**2, rho * sa * sd], 1), np.stack([rho * sa * sd, sd**2], 1)], 1)
    Cg = J @ Ci @ np.swapaxes(J, 1, 2)
    np.testing.assert_allclose(cat.pm_l_err, np.sqrt(Cg[:, 0, 0]), rtol=1e-9)
    np.testing.assert_allclose(cat.pm_b_err, np.sqrt(Cg[:, 1, 1]), rtol=1e-9)
    np.testing.assert_allclose(cat.pm_corr, Cg[:, 0, 1] / np.sqrt(Cg[:, 0, 0] * Cg[:, 1, 1]), atol=1e-9)
    # invariants of a rotation: trace and determinant of the covariance
    np.testing.assert_allclose(cat.pm_l_err**2 + cat.pm_b_err**2, sa**2 + sd**2, rtol=1e-9)
    np.testing.assert_allclose(cat.pm_l_err**2 * cat.pm_b_err**2 * (1 - cat.pm_corr**2),
                               sa**2 * sd**2 * (1 - rho**2), rtol=1e-9)


@pytest.mark.parametrize("suffix", [".ecsv", ".fits", ".csv", ".parquet"])
def test_write_read_round_trip(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    cat = _catalog()
    path = tmp_path / f"cat{suffix}"
    C.write_catalog(cat, path)
    back = C.read_catalog(path)
    _assert_catalogs_equal(cat, back)
    if suffix != ".csv":
        t = Table.read(path)
        assert t["l"].unit == u.deg and t["distance"].unit == u.kpc and t["pm_l"].unit == u.mas / u.yr


def test_to_table_units():
    t = C.to_table(_catalog())
    assert t["v_los"].unit == u.km / u.s and t["x"].unit == u.kpc and t["vx"].unit == u.km / u.s
    assert t["sgr_beta"].unit == u.deg and t["pm_corr"].unit is None


# ------------------------------------------------------------------------------------------
# Bad input: every error names the column and the rows
# ------------------------------------------------------------------------------------------


def _rows_in(msg: str) -> list[int]:
    m = re.search(r"\[([0-9, ]+)", msg)
    assert m, msg
    return [int(s) for s in m.group(1).split(",") if s.strip()]


def test_missing_column():
    data = _random_table()
    data.pop("v_los_err")
    with pytest.raises(CatalogError, match=r"missing column.*'v_los_err'"):
        C.read_catalog(data)
    data = dict(_random_table())
    data["vhel"] = data.pop("v_los")
    with pytest.raises(CatalogError, match=r"'v_los' \(input column 'vh'\)"):
        C.read_catalog(data, columns={"v_los": "vh"})


@pytest.mark.parametrize(
    "column, value, problem",
    [
        ("v_los", np.nan, "NaN"),
        ("pm_b", np.inf, "inf"),
        ("l", -np.inf, "inf"),
        ("distance", 0.0, "non-positive distance"),
        ("distance", -3.0, "non-positive distance"),
        ("distance_err", 0.0, "non-positive error"),
        ("v_los_err", -1.0, "non-positive error"),
        ("pm_l_err", 0.0, "non-positive error"),
        ("pm_b_err", -0.1, "non-positive error"),
        ("pm_corr", 1.0, r"\|rho\| >= 1"),
        ("pm_corr", -1.5, r"\|rho\| >= 1"),
        ("b", 95.0, r"\|b\| > 90"),
    ],
)
def test_bad_values_name_column_and_rows(column, value, problem):
    rows = [3, 17, 29]
    data = _random_table()
    data[column] = data[column].copy()
    data[column][rows] = value
    # the same bad values given directly to StarCatalog (internal units: angles in rad)
    good = C.read_catalog(_random_table())
    internal = {k: np.array(getattr(good, k)) for k in C.REQUIRED_COLUMNS}
    internal[column][rows] = np.deg2rad(value) if column in ("l", "b") else value
    for build in (lambda: C.read_catalog(data), lambda: StarCatalog(**internal)):
        with pytest.raises(CatalogError, match=problem) as ei:
            build()
        msg = str(ei.value)
        assert f"'{column}'" in msg and "3 row(s)" in msg
        assert _rows_in(msg) == rows


def test_bad_value_message_names_input_column_and_truncates_long_lists():
    data = _random_table(n=40)
    data["dist"] = data.pop("distance")
    data["dist"][5:30] = np.nan
    with pytest.raises(CatalogError) as ei:
        C.read_catalog(data, columns={"distance": "dist"})
    msg = str(ei.value)
    assert "'distance' (input column 'dist')" in msg and "NaN" in msg and "25 row(s)" in msg
    assert _rows_in(msg) == list(range(5, 15)) and "(15 more)" in msg


def test_masked_entries_are_reported_as_nan(tmp_path):
    path = tmp_path / "holes.csv"
    t = Table(_random_table(n=8))
    t.write(path, format="ascii.csv")
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[list(t.colnames).index("pm_l_err")] = ""
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match=r"'pm_l_err' has NaN in 1 row\(s\) \[2\]"):
        C.read_catalog(path)


@pytest.mark.parametrize(
    "column, unit",
    [("distance", u.km / u.s), ("l", u.kpc), ("v_los", u.mas / u.yr), ("pm_b_err", u.deg), ("pm_corr", u.deg)],
)
def test_wrong_units(column, unit):
    data = _random_table()
    data[column] = data[column] * unit
    with pytest.raises(CatalogError, match=rf"column '{column}' has unit") as ei:
        C.read_catalog(data)
    assert str(unit.to_string()) in str(ei.value)


def test_wrong_unit_names_input_column_in_file(tmp_path):
    t = Table(_random_table())
    t["dist"] = t["distance"] * u.km / u.s
    del t["distance"]
    path = tmp_path / "w.ecsv"
    t.write(path)
    with pytest.raises(CatalogError, match=r"'distance' \(input column 'dist'\) has unit 'km / s'"):
        C.read_catalog(path, columns={"distance": "dist"})


def test_bad_icrs_errors_are_named():
    base = _random_table(10)
    data = {k: base[k] for k in ("distance", "distance_err", "v_los", "v_los_err")}
    data.update(ra=np.linspace(0, 300, 10), dec=np.zeros(10), pmra=np.zeros(10), pmdec=np.zeros(10),
                pmra_error=np.full(10, 0.1), pmdec_error=np.full(10, 0.1))
    data["pmdec_error"][4] = 0
    with pytest.raises(CatalogError, match=r"'pmdec_error' has non-positive error in 1 row\(s\) \[4\]"):
        C.read_catalog(data)
    del data["pmra"]
    with pytest.raises(CatalogError, match="missing column.*'pmra'"):
        C.read_catalog(data)


def test_shape_errors():
    cat = _catalog(with_extras=False)
    kw = {k: getattr(cat, k) for k in C.REQUIRED_COLUMNS}
    with pytest.raises(CatalogError, match="column 'pm_b' has 39 rows"):
        StarCatalog(**(kw | {"pm_b": kw["pm_b"][:-1]}))
    with pytest.raises(CatalogError, match=r"column 'xyz' must have shape \(40, 3\)"):
        StarCatalog(**kw, xyz=np.zeros((40, 2)))
    with pytest.raises(CatalogError, match="extra column 'feh'"):
        StarCatalog(**kw, extra={"feh": np.zeros(3)})
    with pytest.raises(CatalogError, match=r"mask must have shape \(40,\)"):
        cat.select(np.ones(5, bool))


def test_layout_t_wrong_row_count(tmp_path):
    path = tmp_path / "t.txt"
    np.savetxt(path, np.ones((18, 5)))
    with pytest.raises(CatalogError, match="17 or 20 rows"):
        C.read_peer_transposed(path)


def test_construction_under_jit_is_not_validated():
    cat = _catalog(with_extras=False)

    @jax.jit
    def mean_distance(d):
        c = StarCatalog(**{k: getattr(cat, k) for k in C.REQUIRED_COLUMNS} | {"distance": d})
        return c.distance.mean()

    np.testing.assert_allclose(mean_distance(cat.distance), cat.distance.mean(), rtol=1e-14)


# ------------------------------------------------------------------------------------------
# Cuts against independent NumPy masks
# ------------------------------------------------------------------------------------------


def _numpy_galactocentric(cat: StarCatalog, solar: SolarParameters, k: float):
    """Tilted astropy-like frame, written in NumPy for the test."""
    l, b, d = cat.l, cat.b, cat.distance
    e_los = np.stack([np.cos(b) * np.cos(l), np.cos(b) * np.sin(l), np.sin(b)], 1)
    e_l = np.stack([-np.sin(l), np.cos(l), 0 * l], 1)
    e_b = np.stack([-np.sin(b) * np.cos(l), -np.sin(b) * np.sin(l), np.cos(b)], 1)
    v = cat.v_los[:, None] * e_los + (k * d)[:, None] * (cat.pm_l[:, None] * e_l + cat.pm_b[:, None] * e_b)
    R0, z0 = float(solar.galcen_distance), float(solar.z_sun)
    s, c = z0 / R0, np.sqrt(1 - (z0 / R0) ** 2)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    r = (d[:, None] * e_los - [R0, 0, 0]) @ rot.T
    return r, v @ rot.T + np.asarray(solar.v_sun)


@pytest.mark.parametrize("frame", ["galactocentric", "heliocentric"])
def test_quality_cut_matches_numpy(frame):
    data = _random_table(n=400, seed=5)
    data["v_los"][:6] = 1500.0  # some unphysical velocities
    data["pm_l"][6:9] = 5.0
    cat = C.read_catalog(data)
    solar = SolarParameters()
    out, rep = C.cut_quality(cat, velocity_frame=frame)
    if frame == "galactocentric":
        r, v = _numpy_galactocentric(cat, solar, K_PM)
        rhat = r / np.linalg.norm(r, axis=1)[:, None]
        v_r = np.sum(v * rhat, 1)
        v_t = np.linalg.norm(v - v_r[:, None] * rhat, axis=1)
    else:
        v_r, v_t = cat.v_los, K_PM * cat.distance * np.hypot(cat.pm_l, cat.pm_b)
    bad = ((cat.v_los_err > 15) | (cat.distance_err / cat.distance > 0.25) | (np.abs(v_r) > 1000) | (v_t > 1000))
    assert np.sum((np.abs(v_r) > 1000) | (v_t > 1000)) >= 6
    np.testing.assert_array_equal(rep.removed_indices, np.flatnonzero(bad))
    assert len(out) == rep.n_after == 400 - bad.sum()
    assert rep.removed_by["v_los_err > 15 km/s"] == np.sum(cat.v_los_err > 15)
    assert rep.removed_by["distance_err/distance > 0.25"] == np.sum(cat.distance_err / cat.distance > 0.25)
    np.testing.assert_array_equal(out.v_los, cat.v_los[~bad])
    assert f"removed {bad.sum()} of 400" in str(rep)
    # disabling every criterion removes nothing
    same, rep0 = C.cut_quality(cat, None, None, None)
    assert len(same) == 400 and rep0.n_removed == 0 and rep0.removed_by == {}


def test_r_gal_cut_matches_numpy_and_catalog_xyz():
    cat = _catalog(n=300, seed=9)
    solar = SolarParameters()
    r, _ = _numpy_galactocentric(cat, solar, K_PM)
    rg = np.linalg.norm(r, axis=1)
    out, rep = C.cut_r_gal(cat, 40, 120, solar=solar)
    keep = (rg > 40) & (rg < 120)
    np.testing.assert_array_equal(out.distance, cat.distance[keep])
    assert rep.removed_by == {"r_gal <= 40 kpc": int(np.sum(rg <= 40)), "r_gal >= 120 kpc": int(np.sum(rg >= 120))}
    out2, _ = C.cut_r_gal(cat, 40, 120, use_catalog_xyz=True)  # xyz built with the same solar
    assert len(out2) == len(out)


def test_r_gal_reference_frame_reproduces_ypp24_file():
    cat = C.read_peer_transposed(peer_file(YPP24_50))
    # reflexcalc frame: Sun at (-8.3, 0, z0) with no tilt; z0 = 0.03 in these files.
    r = cat.r_gal(SolarParameters(8.3, 0.03, (11.1, 244.24, 7.25), tilt=False))
    np.testing.assert_allclose(r, np.linalg.norm(cat.xyz, axis=1), rtol=1e-12)


def test_sgr_cut_on_synthetic_stars():
    cat = _catalog(n=50, seed=11)
    # put 10 stars exactly on the Sgr angular momentum: r = 50 kpc along x, v solving r x v = L.
    L = np.array(C.L_SGR_PP21)
    r0 = np.cross(L, [0.0, 0.0, 1.0])
    r0 = 50 * r0 / np.linalg.norm(r0)
    v0 = np.cross(L, r0) / 50**2  # r0 x v0 = L since r0 is perpendicular to L
    np.testing.assert_allclose(np.cross(r0, v0), L, rtol=1e-12)
    xyz, vxyz = cat.xyz.copy(), cat.extra["vxyz"].copy()
    xyz[:10], vxyz[:10] = r0, v0
    beta = cat.extra["sgr_beta"].copy()
    beta[:10] = np.deg2rad(np.r_[np.full(6, 10.0), np.full(4, 30.0)])
    beta[10:] = 0.0
    cat = StarCatalog(**{k: getattr(cat, k) for k in C.REQUIRED_COLUMNS}, xyz=xyz,
                      extra=dict(cat.extra, vxyz=vxyz, sgr_beta=beta))
    L_all = np.cross(xyz, vxyz)
    ball = np.linalg.norm(L_all - L, axis=1) < 3000
    assert ball[:10].all()
    pp, rep_pp = C.cut_sgr_angular_momentum(cat, "PP21")
    np.testing.assert_array_equal(rep_pp.removed_indices, np.flatnonzero(ball & (np.abs(beta) < np.deg2rad(20))))
    yp, rep_yp = C.cut_sgr_angular_momentum(cat, "YPP24")
    np.testing.assert_array_equal(rep_yp.removed_indices, np.flatnonzero(ball))
    assert len(pp) - len(yp) == 4
    assert "catalogue xyz" in rep_pp.notes and "sgr_beta" in rep_pp.notes


def test_chandra_selection_chains_reports():
    cat = _catalog(n=300, seed=12, with_extras=False)
    out, reps = C.chandra_selection(cat)
    assert [r.n_before for r in reps] == [300, reps[0].n_after] and reps[1].n_after == len(out)
    q, _ = C.cut_quality(cat)
    w, _ = C.cut_r_gal(q, 40, 160)
    np.testing.assert_array_equal(out.distance, w.distance)


def test_qtable_input_and_catalog_xyz_requirements():
    from astropy.table import QTable

    data = _random_table()
    qt = QTable({k: (v * u.deg if k in ("l", "b") else v) for k, v in data.items()})
    qt["distance"] = qt["distance"] * u.kpc
    cat = C.read_catalog(qt)
    _assert_catalogs_equal(C.read_catalog(data), cat, rtol=1e-15)
    with pytest.raises(CatalogError, match="column 'xyz' is absent"):
        cat.r_gal(use_catalog_xyz=True)
    with pytest.raises(CatalogError, match="'vxyz'"):
        C.cut_sgr_angular_momentum(cat, source="catalog")


def test_layout_t_synthetic_round_trip_and_bad_rho(tmp_path):
    cat = _catalog(n=30, seed=21)
    rows = np.vstack([cat.xyz.T, cat.extra["vxyz"].T, np.rad2deg(cat.l), np.rad2deg(cat.b), cat.distance,
                      cat.v_los, cat.pm_l, cat.pm_b, cat.distance_err, cat.v_los_err, cat.pm_l_err, cat.pm_b_err,
                      cat.pm_corr])
    path = tmp_path / "t.txt"
    np.savetxt(path, rows, fmt="%.17g")
    back = C.read_peer_transposed(path)
    np.testing.assert_allclose(back.b, cat.b, rtol=1e-14)
    np.testing.assert_array_equal(back.pm_corr, cat.pm_corr)
    np.testing.assert_array_equal(back.extra["vxyz"], cat.extra["vxyz"])
    rows[16, [4, 7]] = [1.0, -1.0]
    np.savetxt(path, rows, fmt="%.17g")
    with pytest.raises(CatalogError, match=r"'pm_corr' \(input column 'layout-T row 16'\) has \|rho\| >= 1 "
                                           r"in 2 row\(s\) \[4, 7\]"):
        C.read_peer_transposed(path)


def test_astropy_tables_at_the_edge_are_converted_or_refused_by_unit():
    """Issue 13: a QTable's Quantity columns are converted by their units (distance in pc -> kpc, values
    x 1e-3; l, b in deg or rad give the same catalogue); a plain Table whose distance column carries
    'km/s' is refused with a CatalogError naming the column."""
    from astropy.table import QTable

    data = _random_table()
    ref = C.read_catalog(data)
    qt = QTable({k: v for k, v in data.items()})
    qt["distance"] = data["distance"] * 1e3 * u.pc
    qt["l"], qt["b"] = data["l"] * u.deg, data["b"] * u.deg
    cat_deg = C.read_catalog(qt)
    np.testing.assert_allclose(cat_deg.distance, np.asarray(qt["distance"].value) * 1e-3, rtol=1e-15)
    np.testing.assert_allclose(cat_deg.distance, data["distance"], rtol=1e-15)
    np.testing.assert_allclose(cat_deg.l, np.deg2rad(data["l"]), rtol=1e-15)
    qt["l"], qt["b"] = qt["l"].to(u.rad), qt["b"].to(u.rad)
    assert isinstance(qt["l"], u.Quantity) and qt["l"].unit == u.rad
    cat_rad = C.read_catalog(qt)
    _assert_catalogs_equal(cat_deg, cat_rad, rtol=1e-14)
    _assert_catalogs_equal(ref, cat_rad, rtol=1e-14)

    t = Table({k: v for k, v in data.items()})
    t["distance"].unit = u.km / u.s
    assert not isinstance(t["distance"], u.Quantity)  # a Column with a unit, as Table.read gives
    with pytest.raises(CatalogError, match=r"column 'distance' has unit 'km / s', which is not convertible to kpc"):
        C.read_catalog(t)
