"""End-to-end: `jaxhalo fit` on a small catalogue writes every product."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxhalo.catalog.readers import write_catalog
from jaxhalo.cli import main
from jaxhalo.example_data import EXAMPLE_CATALOG, EXAMPLE_TRUTH
from jaxhalo.likelihoods.reflex import ReflexModel
from jaxhalo.mocks.reflex import make_reflex_mock


def test_fit_end_to_end(tmp_path, capsys):
    spec = ReflexModel("constant", "galactic")
    cat, info = make_reflex_mock(jax.random.PRNGKey(3), 300, spec)
    path = tmp_path / "small.ecsv"
    write_catalog(cat, path)
    out = tmp_path / "fit"
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    rc = main(["fit", str(path), "--model", "constant", "--apex", "galactic", "--chains", "2", "--warmup", "150",
               "--samples", "150", "--n-clip", "2", "--no-progress", "--no-cache", "--out", str(out)])
    assert rc == 0
    assert plt.get_fignums() == open_before  # its three figures written and closed
    for f in ("posterior.nc", "summary.csv", "summary.md", "corner.png", "vtravel_profile.png", "apex_sky.png", "diagnostics.json"):
        assert (out / f).stat().st_size > 0, f
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["n_stars"] == 300 and diag["n_used"] <= 300
    text = capsys.readouterr().out
    assert "v_travel" in text and "r_hat" in text
    import arviz as az

    idata = az.from_netcdf(out / "posterior.nc")
    assert idata.log_likelihood["star"].shape[-1] == diag["n_used"]
    # the posterior of the true speed is sensible for 300 stars (generous: 4 sigma ~ 25 km/s)
    assert abs(float(np.median(idata.posterior["v_travel"])) - info["truth"]["v_travel"]) < 25
    # summary.csv: full precision and a unit per row; summary.md states the units and sign conventions
    from astropy.table import Table

    csv = Table.read(out / "summary.csv", format="ascii.csv")
    row = csv[list(csv["parameter"]).index("v_travel")]
    assert row["unit"] == "km/s"
    assert row["p50"] == pytest.approx(float(np.percentile(np.asarray(idata.posterior["v_travel"]), 50)), rel=1e-12)
    md = (out / "summary.md").read_text()
    assert "retrograde" in md and "| unit |" in md
    # one angle unit in every output: degrees (issue 13)
    units = {str(n): v.attrs["units"] for n, v in idata.posterior.data_vars.items()}
    assert "rad" not in units.values() and "rad" not in set(csv["unit"])
    assert {n for n in units if n.startswith("apex_")} == {"apex_l_deg", "apex_b_deg"} | {
        f"apex_{a}_r{R}" for a in ("l", "b", "L_MS", "B_MS") for R in (40, 50, 100, 120)}
    assert all(units[n] == "deg" for n in units if n.startswith("apex_"))
    assert {p["unit"] for p in diag["provenance"]["priors"] if p["name"].startswith("apex_")} == {"deg"}
    assert "`deg`" in md and "`rad`" not in md


def test_bundled_example_is_consistent():
    from jaxhalo.catalog.readers import read_catalog

    cat = read_catalog(EXAMPLE_CATALOG)
    info = json.loads(EXAMPLE_TRUTH.read_text())
    assert len(cat) == info["n"] == 850
    r = cat.r_gal()
    assert r.min() > 30 and r.max() < 190  # 40-160 kpc true radii, scattered by distance errors
    assert set(ReflexModel(info["spec"]["form"], info["spec"]["apex"]).param_names) == set(info["truth"])


def test_setup_jax_host_devices_and_cache(tmp_path):
    """The CLI splits the CPU into one XLA host device per chain and turns on the compile cache.

    Run in a fresh interpreter: the host device count can only be set before JAX starts.
    """
    import os
    import subprocess
    import sys

    code = (
        "import jaxhalo; from jaxhalo.cli import setup_jax; import jax, jax.numpy as jnp;"
        "d = setup_jax(host_devices=3, cache=True); print(d);"
        "assert jax.device_count() == 3, jax.devices();"
        "assert jnp.ones(2).dtype == jnp.float64;"
        "f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T); f(jnp.ones((300, 300))).block_until_ready()"
    )
    env = {**os.environ, "JAXHALO_CACHE_DIR": str(tmp_path / "xla"), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "host_devices" in r.stdout and "compilation_cache" in r.stdout
    assert (tmp_path / "xla").is_dir()


# --- provenance (issue 13 item 2), catalogues and cuts (item 3), timings (item 6) ---------------------------

SMALL_FIT = ["--model", "constant", "--chains", "2", "--warmup", "40", "--samples", "30", "--n-clip", "2",
             "--seed", "11", "--no-progress", "--no-cache"]


def _small_example(tmp_path, n=70):
    """The first ``n`` stars of the bundled example, written as ECSV."""
    from jaxhalo import example_catalog

    cat = example_catalog()
    path = tmp_path / "small.ecsv"
    write_catalog(cat.select(np.arange(len(cat)) < n), path)
    return path


def test_provenance_recorded_and_from_diagnostics_gives_identical_draws(tmp_path, capsys):
    """diagnostics.json and posterior.nc record the run; --from-diagnostics re-runs it draw for draw."""
    import hashlib

    import arviz as az

    path = _small_example(tmp_path)
    out1, out2 = tmp_path / "fit1", tmp_path / "fit2"
    assert main(["fit", str(path), *SMALL_FIT, "--out", str(out1)]) == 0
    diag = json.loads((out1 / "diagnostics.json").read_text())
    prov = diag["provenance"]
    assert prov["command"] == "fit" and prov["command_line"].startswith("jaxhalo fit ") and "--seed 11" in prov["command_line"]
    assert prov["inputs"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    opts = prov["options"]
    assert opts["model"] == "constant" and opts["seed"] == 11 and opts["n_clip"] == 2 and opts["reference"] is False
    assert opts["catalog"] == [str(path)] and opts["selection"] == "none" and opts["anchors"] == [40.0, 120.0]
    sol = prov["solar_parameters"]
    assert sol["galcen_distance_kpc"] == 8.122 and sol["v_sun_kms"] == [12.9, 245.6, 7.78]
    assert sol["k_kms_per_kpc_masyr"] == 4.740470463533349
    assert prov["priors"][0]["name"] == "v_travel" and len(prov["priors"]) == 9
    assert all(p["low"] < p["high"] for p in prov["priors"])
    assert {p["unit"] for p in prov["priors"]} == {"km/s", "deg"}  # the MS apex in degrees, its latitude not its sine
    for pkg in ("jaxhalo", "jax", "numpyro"):
        assert prov["software"][pkg]
    assert prov["device"]["dtype"] == "float64" and prov["device"]["devices"]
    # the clipped stars' ids are the catalogue rows whose weight in posterior.nc is 0
    idata = az.from_netcdf(out1 / "posterior.nc")
    weight = np.asarray(idata.constant_data["weight"])
    clip = prov["clipping"]
    assert clip["rounds"] == 2 and sum(clip["removed_per_round"]) == len(clip["removed"])
    assert sorted(r for _, r in clip["removed"]) == list(np.flatnonzero(weight == 0))
    assert json.loads(idata.posterior.attrs["jaxhalo_provenance"]) == prov
    # the printed total is the wall time of the command and its parts add up to it
    t = diag["timings_s"]
    parts = sum(v for k, v in t.items() if not k.startswith("total"))
    assert abs(parts - t["total_wall_until_diagnostics"]) < 0.5
    assert {"start-up + input checks", "JAX start-up", "ML + clipping", "NUTS", "plots", "writing"} <= set(t)
    assert "total" in capsys.readouterr().out

    assert main(["fit", "--from-diagnostics", str(out1 / "diagnostics.json"), "--no-progress", "--no-cache",
                 "--out", str(out2)]) == 0
    again = az.from_netcdf(out2 / "posterior.nc")
    for name in idata.posterior.data_vars:
        np.testing.assert_array_equal(np.asarray(again.posterior[name]), np.asarray(idata.posterior[name]), err_msg=name)
    prov2 = json.loads((out2 / "diagnostics.json").read_text())["provenance"]
    assert prov2["options"]["from_diagnostics"] == str(out1 / "diagnostics.json")
    assert {k: v for k, v in prov2["options"].items() if k not in ("out", "from_diagnostics")} == \
        {k: v for k, v in opts.items() if k not in ("out", "from_diagnostics")}


def test_from_diagnostics_refuses_a_changed_catalogue(tmp_path, capsys):
    """The replay checks the recorded SHA-256 of each input before any work."""
    path = _small_example(tmp_path)
    prov = {"command": "fit", "options": {"catalog": [str(path)], "model": "constant"},
            "inputs": [{"path": str(path), "abspath": str(path), "sha256": "0" * 64}]}
    (tmp_path / "diagnostics.json").write_text(json.dumps({"provenance": prov}))
    rc = main(["fit", "--from-diagnostics", str(tmp_path / "diagnostics.json"), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed since the recorded run" in err[0]
    (tmp_path / "sim.json").write_text(json.dumps({"provenance": {**prov, "command": "simulate"}}))
    assert main(["fit", "--from-diagnostics", str(tmp_path / "sim.json"), "--out", str(tmp_path / "o")]) == 2
    assert "written by 'jaxhalo simulate'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_several_catalogues_are_combined_with_a_survey_label(tmp_path):
    from jaxhalo import example_catalog
    from jaxhalo.cli import build_parser
    from jaxhalo.cli.fit import precheck_fit

    cat = example_catalog()
    a, b = tmp_path / "kg.ecsv", tmp_path / "bhb.ecsv"
    write_catalog(cat.select(np.arange(len(cat)) < 40), a)
    write_catalog(cat.select(np.arange(len(cat)) >= 800), b)
    args = build_parser().parse_args(["fit", str(a), str(b), "--model", "constant", "--out", str(tmp_path / "o")])
    fin = precheck_fit(args)
    assert fin.surveys == {"kg": 40, "bhb": 50} and len(fin.cat) == 90
    assert list(fin.cat.extra["survey"][38:42]) == ["kg", "kg", "bhb", "bhb"]
    assert list(fin.cat.extra["row"][38:42]) == [38, 39, 0, 1]
    np.testing.assert_array_equal(fin.cat.v_los[40:], cat.v_los[800:])


def test_r_cut_uses_the_catalogue_positions_under_reference(tmp_path):
    """YPP24 40+ file cut at 50 kpc keeps the reference's 253 stars under --reference (|xyz| of the
    file); recomputed from (l, b, d) with the Chandra et al. Sun it keeps 251."""
    from conftest import peer_file

    from jaxhalo.cli import build_parser
    from jaxhalo.cli.fit import precheck_fit

    path = peer_file("reflexcalc/processed_real/sgrtests/KGiant_YPP24sgr_40+.txt")
    for extra, n in ((["--reference"], 253), ([], 251)):
        args = build_parser().parse_args(["fit", str(path), "--format", "peer-t", "--r-min", "50", *extra,
                                          "--out", str(tmp_path / "o")])
        fin = precheck_fit(args)
        assert len(fin.cat) == 531 and int(fin.keep.sum()) == n, extra
    assert "xyz" in precheck_fit(build_parser().parse_args(
        ["fit", str(path), "--format", "peer-t", "--r-min", "50", "--reference", "--out", str(tmp_path / "o")])).r_note


@pytest.mark.slow
def test_pp21_combined_fit_from_one_cli_call_equals_the_api_fit(tmp_path):
    """PP21 K giants + BHBs, PP21 selection (40 < |xyz| < 150 kpc, Sgr cut), reference conventions and
    priors, in one CLI call: the same stars, ML point and NUTS draws as the Python API (same seed)."""
    import arviz as az
    from conftest import peer_file

    from jaxhalo.catalog.cuts import pp21_selection
    from jaxhalo.catalog.readers import read_peer_header
    from jaxhalo.inference.priors import PriorSet
    from jaxhalo.inference.reflex_fit import fit_reflex
    from jaxhalo.likelihoods.reflex import ReflexData

    files = [peer_file("ReflexMotion/processed/complete/KGiants_cartesian_heliocentric_sgr.txt"),
             peer_file("ReflexMotion/processed/complete/BHBs_cartesian_heliocentric_lancasterremoved.txt")]
    runs = {"chains": 2, "warmup": 150, "samples": 100, "seed": 7}
    out = tmp_path / "pp21"
    rc = main(["fit", *map(str, files), "--format", "peer-h", "--reference", "--selection", "pp21",
               "--model", "constant", "--apex", "galactic", "--priors", "reference",
               "--chains", str(runs["chains"]), "--warmup", str(runs["warmup"]), "--samples", str(runs["samples"]),
               "--seed", str(runs["seed"]), "--no-progress", "--no-cache", "--out", str(out)])
    assert rc == 0
    cli = az.from_netcdf(out / "posterior.nc")
    prov = json.loads((out / "diagnostics.json").read_text())["provenance"]
    assert [c["name"].split(" (")[0] for c in prov["cuts"]] == ["r_gal window", "Sgr angular-momentum cut"]

    cats = [pp21_selection(read_peer_header(f))[0] for f in files]
    datas = [ReflexData.from_catalog(c, reference=True) for c in cats]
    data = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), *datas)
    assert prov["cuts"][-1]["n_after"] == sum(len(c) for c in cats)
    res = fit_reflex(data, ReflexModel("constant", "galactic"), PriorSet(kind="reference"),
                     key=jax.random.PRNGKey(runs["seed"]), num_chains=runs["chains"], num_warmup=runs["warmup"],
                     num_samples=runs["samples"], progress_bar=False, verbose=False)
    np.testing.assert_array_equal(np.asarray(cli.constant_data["weight"]), res.weight)
    for name in ("v_travel", "apex_l_deg", "apex_b_deg", "vr", "vphi", "vtheta", "sigma_los", "sigma_l", "sigma_b"):
        np.testing.assert_allclose(np.asarray(cli.posterior[name]), np.asarray(res.idata.posterior[name]),
                                   rtol=1e-12, atol=0, err_msg=name)
    assert abs(float(np.median(cli.posterior["v_travel"])) - 31.7) < 5  # PP21's headline, loosely (short chains)


@pytest.mark.parametrize("rel,fmt,n", [("reflexcalc/processed_real/sgrtests/KGiant_YPP24sgr_40+.txt", "peer-t", 531),
                                       ("ReflexMotion/processed/complete/BHBs_cartesian_heliocentric_lancasterremoved.txt",
                                        "peer-h", None)])
def test_text_catalogue_format_is_detected(rel, fmt, n, tmp_path, capsys):
    """A peer file given without --format is read with the one layout that fits, and says which; the
    catalogue equals the one read with the explicit --format."""
    from conftest import peer_file

    from jaxhalo.cli import build_parser
    from jaxhalo.cli.fit import precheck_fit

    path = str(peer_file(rel))
    fin = precheck_fit(build_parser().parse_args(["fit", path, "--out", str(tmp_path / "o")]))
    assert f"read as --format {fmt}" in capsys.readouterr().err
    ref = precheck_fit(build_parser().parse_args(["fit", path, "--format", fmt, "--out", str(tmp_path / "o")]))
    assert n is None or len(fin.cat) == n
    np.testing.assert_array_equal(fin.cat.v_los, ref.cat.v_los)
    np.testing.assert_array_equal(fin.cat.xyz, ref.cat.xyz)


@pytest.mark.parametrize("selection", ["chandra", "pp21", "ypp24"])
def test_selection_option_equals_the_catalog_cuts(selection, tmp_path, capsys):
    """--selection applies the same cuts as jaxhalo.catalog.cuts (same stars kept), and records the removed
    stars as [survey, row] of the input file."""
    from conftest import peer_file

    from jaxhalo.catalog.cuts import chandra_selection, pp21_selection
    from jaxhalo.catalog.readers import read_peer_header
    from jaxhalo.cli import build_parser
    from jaxhalo.cli.fit import apply_cuts, precheck_fit
    from jaxhalo.constants import K_PM
    from jaxhalo.frames import SolarParameters

    path = peer_file("ReflexMotion/processed/complete/BHBs_cartesian_heliocentric_lancasterremoved.txt")
    args = build_parser().parse_args(["fit", str(path), "--format", "peer-h", "--selection", selection, "--model",
                                      "constant", "--out", str(tmp_path / "o")])
    fin = precheck_fit(args)
    got, records = apply_cuts(fin, args, SolarParameters(), K_PM)
    raw = read_peer_header(path)
    want = (chandra_selection(raw)[0] if selection == "chandra" else pp21_selection(raw, scheme=selection.upper())[0])
    assert len(got) == len(want) < len(raw)
    np.testing.assert_array_equal(got.v_los, want.v_los)
    removed = sorted(r for rec in records for _, r in rec["removed"])
    assert len(removed) == len(raw) - len(got)
    np.testing.assert_array_equal(np.delete(raw.v_los, removed), got.v_los)
    assert "removed" in capsys.readouterr().out
