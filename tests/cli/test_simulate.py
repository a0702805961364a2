"""End-to-end: `jaxhalo simulate` with few particles writes every product, and `jaxhalo fit` reads its catalogue."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from jaxhalo.catalog.readers import read_catalog
from jaxhalo.cli import main
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES
from jaxhalo.cli.simulate import PARAM_OPTIONS


def test_simulate_options_cover_table1():
    assert [name for _, name, _ in PARAM_OPTIONS] == list(PARAMETER_NAMES)


@pytest.mark.slow
def test_simulate_then_fit(tmp_path, capsys):
    out = tmp_path / "sim"
    rc = main(["simulate", "--n-particles", "600", "--dt", "5", "--m-lmc", "2e11", "--beta0", "0.7",
               "--seed", "3", "--out", str(out)])
    assert rc == 0
    for f in ("catalog.ecsv", "snapshot.ecsv", "orbit.ecsv", "summaries.ecsv", "params.json",
              "lmc_orbit.png", "vgsr_sky_map.png", "brooks_summaries.png"):
        assert (out / f).stat().st_size > 0, f
    info = json.loads((out / "params.json").read_text())
    assert info["theta"]["m_lmc"] == 2e11 and info["theta"]["beta0"] == 0.7
    assert info["theta"]["log10_m200"] == FIDUCIAL_THETA[0]
    assert 0.0 < info["tracer_r_core_kpc"] < 14.0  # beta0 = 0.7 is steepened
    prov = info["provenance"]
    assert prov["command"] == "simulate" and prov["options"]["m_lmc"] == 2e11 and prov["options"]["seed"] == 3
    assert prov["solar_parameters"]["galcen_distance_kpc"] > 8 and prov["software"]["jax"]
    snap = Table.read(out / "snapshot.ecsv")
    assert len(snap) == 600 and np.all(np.isfinite(snap["x"]))
    orbit = Table.read(out / "orbit.ecsv")
    assert len(orbit) == 441 and orbit["t"][0] == -2200.0 and orbit["t"][-1] == 0.0
    np.testing.assert_allclose([orbit["x_mw"][-1], orbit["y_mw"][-1], orbit["z_mw"][-1]], 0.0, atol=1e-9)
    cat = read_catalog(out / "catalog.ecsv")
    r = cat.r_gal()
    assert len(cat) == info["n_catalog"] > 100 and r.min() >= 30.0 and r.max() <= 160.0
    text = capsys.readouterr().out
    assert "compiled in" in text and "catalogue:" in text
    fit = tmp_path / "fit"
    rc = main(["fit", str(out / "catalog.ecsv"), "--model", "constant", "--chains", "1", "--warmup", "100",
               "--samples", "100", "--n-clip", "1", "--no-progress", "--out", str(fit)])
    assert rc == 0 and (fit / "summary.csv").stat().st_size > 0


#: (option, SimConfig field) of the Brooks et al. 2025/2026 model settings
MODEL_OPTIONS = (("c200", "c200"), ("a_lmc", "lmc_scale_radius"), ("lmc_galactocentric", "lmc_phase_space"),
                 ("coulomb_log", "coulomb_log"), ("friction_sigma", "friction_sigma"),
                 ("df_potential", "df_potential"), ("df_r_min", "r_min"), ("df_r_max", "r_max"),
                 ("orbit_solver", "orbit_solver"), ("orbit_dt", "orbit_dt"), ("disc", "disc"))


def test_model_option_defaults_are_the_simconfig_defaults():
    """Without the new options `jaxhalo simulate` runs the SimConfig defaults (so its results are unchanged),
    and each option parses into the value SimConfig takes."""
    import dataclasses

    from jaxhalo.cli import build_parser
    from jaxhalo.simulation.brooks import SimConfig

    defaults = {f.name: f.default for f in dataclasses.fields(SimConfig)}
    args = build_parser().parse_args(["simulate"])
    for opt, field in MODEL_OPTIONS:
        assert getattr(args, opt) == defaults[field], opt
    args = build_parser().parse_args(
        ["simulate", "--c200", "14.5", "--a-lmc", "18.9", "--lmc-galactocentric", "-1.1", "-28", "-21.5", "-87.1",
         "-198.9", "135.4", "--coulomb-log", "1.5", "--friction-sigma", "150", "--df-potential", "nfw",
         "--df-r-min", "1", "--df-r-max", "300", "--orbit-solver", "leapfrog", "--orbit-dt", "0.5",
         "--disc", "miyamoto-nagai"])
    assert (args.c200, args.a_lmc, args.coulomb_log, args.friction_sigma) == (14.5, 18.9, 1.5, 150.0)
    assert args.lmc_galactocentric == [-1.1, -28.0, -21.5, -87.1, -198.9, 135.4]
    assert (args.df_potential, args.df_r_min, args.df_r_max, args.orbit_solver, args.orbit_dt) == (
        "nfw", 1.0, 300.0, "leapfrog", 0.5)
    assert args.disc == "miyamoto-nagai" and defaults["disc"] == "exact"


@pytest.mark.slow
def test_simulate_brooks2025_settings(tmp_path):
    """The Brooks et al. 2025 §4.1 settings from the command line reach the run and params.json (~40 s)."""
    out = tmp_path / "sim25"
    w = ["-1.1", "-28", "-21.5", "-87.1", "-198.9", "135.4"]
    rc = main(["simulate", "--n-particles", "64", "--dt", "5", "--t-back", "200", "--no-plots", "--log10-m200",
               str(np.log10(9.1e11)), "--m-lmc", "2.3e11", "--log10-lambda-df", str(np.log10(0.7)), "--beta0", "0.3",
               "--c200", "14.5", "--a-lmc", "18.9", "--lmc-galactocentric", *w, "--coulomb-log", "1.5",
               "--df-potential", "nfw", "--df-r-min", "1", "--df-r-max", "300", "--orbit-solver", "leapfrog",
               "--disc", "miyamoto-nagai", "--out", str(out)])
    assert rc == 0
    info = json.loads((out / "params.json").read_text())
    assert info["c200"] == 14.5 and info["a_lmc_kpc"] == 18.9
    cfg = info["config"]
    assert (cfg["r_min"], cfg["r_max"], cfg["df_potential"], cfg["orbit_solver"], cfg["coulomb_log"], cfg["disc"]) == (
        1.0, 300.0, "nfw", "leapfrog", 1.5, "miyamoto-nagai")
    orbit = Table.read(out / "orbit.ecsv")
    np.testing.assert_allclose([orbit[c][-1] for c in ("x_lmc", "y_lmc", "z_lmc", "vx_lmc", "vy_lmc", "vz_lmc")],
                               np.array(w, float), atol=1e-9)
