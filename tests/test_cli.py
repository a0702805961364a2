"""End-to-end: `jaxhalo fit` on a small catalogue writes every product."""

from __future__ import annotations

import json

import jax
import numpy as np

from jaxhalo.catalog import write_catalog
from jaxhalo.cli import EXAMPLE_CATALOG, EXAMPLE_TRUTH, main
from jaxhalo.likelihoods.reflex import ReflexModel
from jaxhalo.mocks import make_reflex_mock


def test_fit_end_to_end(tmp_path, capsys):
    spec = ReflexModel("constant", "galactic")
    cat, info = make_reflex_mock(jax.random.PRNGKey(3), 300, spec)
    path = tmp_path / "small.ecsv"
    write_catalog(cat, path)
    out = tmp_path / "fit"
    rc = main(["fit", str(path), "--model", "constant", "--apex", "galactic", "--chains", "2", "--warmup", "150",
               "--samples", "150", "--n-clip", "2", "--no-progress", "--out", str(out)])
    assert rc == 0
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


def test_bundled_example_is_consistent():
    from jaxhalo.catalog import read_catalog

    cat = read_catalog(EXAMPLE_CATALOG)
    info = json.loads(EXAMPLE_TRUTH.read_text())
    assert len(cat) == info["n"] == 850
    r = cat.r_gal()
    assert r.min() > 30 and r.max() < 190  # 40-160 kpc true radii, scattered by distance errors
    assert set(ReflexModel(info["spec"]["form"], info["spec"]["apex"]).param_names) == set(info["truth"])
