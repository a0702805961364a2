"""`jaxhalo profiles` end to end on a small mock: tables, figures, empty bins, error propagation."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxhalo.catalog.readers import write_catalog
from jaxhalo.cli import main
from jaxhalo.likelihoods.reflex import ReflexModel
from jaxhalo.mocks.reflex import make_reflex_mock


def test_velocity_error_propagation_matches_monte_carlo():
    """The Jacobian covariance of (V_r, V_phi, V_theta) against a 20000-draw Monte Carlo of the errors."""
    from dataclasses import replace

    from jaxhalo.catalog.kinematics import catalog_velocities

    cat, _ = make_reflex_mock(jax.random.PRNGKey(4), 3, ReflexModel("constant", "galactic"))
    cat = replace(cat, distance_err=0.01 * cat.distance)  # small errors: first order is accurate
    kin = catalog_velocities(cat)
    rng = np.random.default_rng(0)
    M = 20000
    for i in range(3):
        z = rng.normal(size=(M, 4))
        rho = cat.pm_corr[i]
        draws = replace(
            cat.__class__(**{f: np.full(M, getattr(cat, f)[i]) for f in
                             ("l", "b", "distance", "distance_err", "v_los", "v_los_err", "pm_l", "pm_b", "pm_l_err", "pm_b_err", "pm_corr")}),
        )
        draws = replace(draws, distance=draws.distance + cat.distance_err[i] * z[:, 0],
                        v_los=draws.v_los + cat.v_los_err[i] * z[:, 1],
                        pm_l=draws.pm_l + cat.pm_l_err[i] * z[:, 2],
                        pm_b=draws.pm_b + cat.pm_b_err[i] * (rho * z[:, 2] + np.sqrt(1 - rho**2) * z[:, 3]))
        mc = np.cov(catalog_velocities(draws)["v"].T)
        # Monte Carlo covariance has relative standard error sqrt(2/M) ~ 1% on the diagonal
        np.testing.assert_allclose(np.diag(kin["cov"][i]), np.diag(mc), rtol=0.05)


def test_profiles_cli_end_to_end(tmp_path, capsys):
    cat, _ = make_reflex_mock(jax.random.PRNGKey(3), 300, ReflexModel("constant", "galactic"))
    path = tmp_path / "small.ecsv"
    write_catalog(cat, path)
    out = tmp_path / "prof"
    # the last bin (300-1000 kpc) holds no star: it must be reported empty, not crash the fit
    rc = main(["profiles", str(path), "--bins", "40", "70", "160", "300", "1000", "--model", "single",
               "--warmup", "60", "--samples", "60", "--n-mc", "30", "--out", str(out)])
    assert rc == 0
    for f in ("profile.csv", "profile.md", "profiles.png", "sky_sigma_r.csv", "sky_sigma_r.png", "diagnostics.json"):
        assert (out / f).stat().st_size > 0, f
    from astropy.table import Table

    tab = Table.read(out / "profile.csv", format="ascii.csv")
    assert len(tab) == 4
    assert list(tab["status"]) == ["ok", "ok", "ok" if tab["n_stars"][2] >= 10 else "empty", "empty"]
    assert tab["n_stars"][3] == 0 and np.isnan(tab["sigma_v_r_all_p50"][3])
    # the mock's heliocentric los dispersion is 93 km/s; at 40-160 kpc sigma_r ~ sigma_los (generous 25%)
    assert abs(tab["sigma_v_r_all_p50"][0] / 93.0 - 1) < 0.25
    sky = Table.read(out / "sky_sigma_r.csv", format="ascii.csv")
    assert len(sky) == 192 and np.all(np.isnan(sky["sigma_r_p50"][sky["n_stars"] < 10]))
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["empty_bins"][-1] == 3
    prov = diag["provenance"]
    assert prov["command"] == "profiles" and prov["options"]["bins"] == ["40", "70", "160", "300", "1000"]
    assert prov["inputs"][0]["path"] == str(path) and len(prov["inputs"][0]["sha256"]) == 64
    assert prov["device"]["dtype"] == "float64"
    text = capsys.readouterr().out
    n_empty = int(np.sum(tab["status"] == "empty"))
    assert "empty" in text and f"skipping {n_empty} of 4 bins" in text and "#3 300-1000 kpc (0 stars)" in text
    # profile.nc: the fitted bins' draws, named dims, radii along bin, units
    import arviz as az

    idata = az.from_netcdf(out / "profile.nc")
    post = idata.posterior
    fitted = [i for i in range(4) if tab["status"][i] == "ok"]
    assert post["bin"].values.tolist() == fitted and json.loads(post.attrs["skipped_bins"]) == diag["empty_bins"]
    assert post["sigma"].dims == ("chain", "draw", "bin", "component", "column")
    assert post["column"].values.tolist() == ["v_r", "v_phi", "v_theta"] and post["component"].values.tolist() == ["all"]
    assert post["r_mid"].values[0] == 55.0 and post["sigma"].attrs["units"] == "km/s"
    np.testing.assert_allclose(np.median(post["sigma"].sel(bin=0, column="v_r").values), tab["sigma_v_r_all_p50"][0],
                               rtol=1e-6)
    assert len(az.summary(idata, var_names=["beta"])) == len(fitted)


def test_profiles_double_needs_feh(tmp_path, capsys):
    cat, _ = make_reflex_mock(jax.random.PRNGKey(3), 50, ReflexModel("constant", "galactic"))
    path = tmp_path / "small.ecsv"
    write_catalog(cat, path)
    assert main(["profiles", str(path), "--model", "double", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxhalo profiles: error: --model double needs a finite 'feh' column")
    assert not (tmp_path / "x").exists()


def test_profiles_cli_dipole_model(tmp_path):
    """--model dipole runs per-bin NUTS on V_r alone and tabulates the dipole parameters with R-hat."""
    cat, _ = make_reflex_mock(jax.random.PRNGKey(5), 300, ReflexModel("constant", "galactic"))
    path = tmp_path / "small.ecsv"
    write_catalog(cat, path)
    out = tmp_path / "dip"
    rc = main(["profiles", str(path), "--bins", "40", "160", "--model", "dipole", "--warmup", "500", "--samples", "300",
               "--n-mc", "20", "--out", str(out)])
    assert rc == 0
    from astropy.table import Table

    tab = Table.read(out / "profile.csv", format="ascii.csv")
    assert list(tab["status"]) == ["ok"]
    for name in ("mu_compr", "mu_dipole", "sigma_r", "l_apex_deg", "b_apex_deg", "v_theta_eq7"):
        assert np.isfinite(tab[f"{name}_p50"][0]), name
    # the identifiable prior keeps mu_dipole <= 0; sigma_r within the prior and near the mock's ~93 km/s
    assert tab["mu_dipole_p84"][0] <= 0.0 and 10.0 < tab["sigma_r_p50"][0] < 200.0
    assert 1.0 <= tab["max_rhat"][0] < 1.2
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["chains"] == 2 and diag["max_rhat"] == pytest.approx(tab["max_rhat"][0], rel=1e-3)
    # the convergence record behind --strict (exit code 3): R-hat < 1.05 per bin, no divergences
    conv = diag["convergence"]
    assert conv["r_hat_limit"] == 1.05
    assert conv["ok"] == (diag["max_rhat"] < 1.05 and diag["divergences"] == 0) == (not conv["problems"])
    import arviz as az

    post = az.from_netcdf(out / "profile.nc").posterior
    assert post["mu_dipole"].dims == ("chain", "draw", "bin") and post["mu_dipole"].attrs["units"] == "km/s"
    assert post["l_apex_deg"].attrs["units"] == "deg" and "component" not in post.dims


def test_default_bins_suit_the_bundled_catalogue():
    """`--bins auto` (the default) on the bundled catalogue: every bin holds ~100 stars inside the data's
    range, none is skipped; Li et al.'s layout there leaves its 9 inner shells empty, and the message
    names each of them."""
    from jaxhalo import example_catalog
    from jaxhalo.cli import build_parser
    from jaxhalo.cli.profiles import skipped_bins_message
    from jaxhalo.likelihoods.binned import LI2025_TABLE1_BINS, li2025_table1_masks, masks_from_edges, quantile_edges

    assert build_parser().parse_args(["profiles"]).bins == ["auto"]
    r = example_catalog().r_gal()  # the r_gc that `jaxhalo profiles` bins
    edges = quantile_edges(r)
    counts = masks_from_edges(r, edges).sum(1)
    assert edges.size == 9 and counts.sum() == r.size and counts.min() >= 100  # 850 stars in 8 bins
    assert edges[0] <= r.min() and edges[-1] >= r.max()
    ranges = np.stack([edges[:-1], edges[1:]], -1)
    assert skipped_bins_message(ranges, counts, 10) is None
    li = li2025_table1_masks(r).sum(1)
    msg = skipped_bins_message(np.array(LI2025_TABLE1_BINS), li, 10)
    assert msg.startswith("skipping 9 of 14 bins") and "#1 3-9 kpc (0 stars)" in msg and "#9 28.7-35.8 kpc" in msg


@pytest.mark.slow
def test_default_profiles_on_the_bundled_catalogue(tmp_path, capsys):
    """`jaxhalo profiles` with its defaults on the bundled catalogue fits every bin (none empty)."""
    out = tmp_path / "prof"
    assert main(["profiles", "--warmup", "50", "--samples", "50", "--chains", "1", "--n-mc", "10", "--out", str(out)]) == 0
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["empty_bins"] == [] and diag["n_bins"] == 8 and min(diag["counts"]) >= 100
    assert "skipping" not in capsys.readouterr().out
