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
