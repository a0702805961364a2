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
    assert "empty" in capsys.readouterr().out


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
    rc = main(["profiles", str(path), "--bins", "40", "160", "--model", "dipole", "--warmup", "80", "--samples", "80",
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
