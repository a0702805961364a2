"""`jaxhalo sbi nuts OBSERVED`: refuses a bad observation before any work, runs end to end on the linear-Gaussian
toy (files, units as `sbi infer`'s, the simulation budget as stated, --strict exit code 3), and -- slow -- a
closed loop on the toy and a smoke run of the MW-LMC simulator's path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxhalo.cli import main
from jaxhalo.cli._console import EXIT_NOT_CONVERGED
from jaxhalo.simulation.parameters import (
    FIDUCIAL_THETA,
    PARAMETER_NAMES,
    PARAMETER_UNITS,
)

TOY = ["--simulator", "linear-gaussian"]


def _toy_observation(theta, key: int) -> np.ndarray:
    """The linear-Gaussian toy's summaries (52,) at ``theta`` (12,) for one key."""
    import jax

    from jaxhalo.sbi.priors import brooks2026_prior
    from jaxhalo.sbi.simulators import linear_gaussian_simulator

    sim = linear_gaussian_simulator(brooks2026_prior())
    return np.asarray(sim.fn(jax.numpy.asarray(theta, dtype=float), jax.random.key(key)))


@pytest.mark.parametrize("values, message", [
    (list(range(51)), "has 51 entries; the linear-gaussian simulator gives 52 summaries"),
    ([1.0] * 7 + [float("nan")] + [1.0] * 44, "non-finite entries at [7]"),
])
def test_a_bad_observation_is_refused_before_any_work(tmp_path, capsys, values, message):
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps({"summaries": values}).replace("NaN", "NaN"))
    out = tmp_path / "out"
    assert main(["sbi", "nuts", str(obs), *TOY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "jaxhalo sbi nuts: error:" in err and message in err, err  # the subcommand named
    assert not out.exists()


def test_a_missing_observation_file_is_named(tmp_path, capsys):
    assert main(["sbi", "nuts", str(tmp_path / "none.json"), *TOY, "--out", str(tmp_path / "out")]) == 2
    assert "none.json" in capsys.readouterr().err


def test_toy_run_writes_everything_and_strict_exits_3(tmp_path, capsys):
    """2 chains x (1 warm-up + 10 draws) of 2 free parameters cannot converge: --strict exits 3 with the results
    written. posterior.nc has sbi infer's variables and units, the observed summaries and the per-draw
    divergences; diagnostics.json's budget adds up as it says it counts. (M_LMC stays fixed: the derived
    masses' c200 solve compiles for ~8 s; the closed loop below has them.)"""
    import arviz as az

    x = np.sin(np.arange(52.0))  # any finite vector: this run tests the plumbing, the closed loop the posterior
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps({"summaries": x.tolist()}))
    out = tmp_path / "out"
    rc = main(["sbi", "nuts", str(obs), *TOY, "--params", "log10_m200", "log10_lambda_df", "--chains", "2", "--warmup", "1",
               "--samples", "10", "--n-keys", "2", "--n-cov", "60", "--max-tree-depth", "3", "--strict", "--no-progress",
               "--out", str(out)])
    assert rc == EXIT_NOT_CONVERGED
    assert "convergence checks failed" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"posterior.nc", "summary.csv", "summary.md", "diagnostics.json", "corner.png"}

    idata = az.from_netcdf(out / "posterior.nc")
    post = idata.posterior
    assert post["log10_m200"].shape == (2, 10) and set(post.data_vars) == {"log10_m200", "log10_lambda_df"}
    for name in ("log10_m200", "log10_lambda_df"):
        assert post[name].attrs["units"] == PARAMETER_UNITS[PARAMETER_NAMES.index(name)]
    np.testing.assert_allclose(idata.observed_data["summaries"].values, x)
    assert idata.sample_stats["diverging"].shape == (2, 10)

    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["convergence"]["ok"] is False and diag["free_parameters"] == ["log10_m200", "log10_lambda_df"]
    assert diag["fixed_parameters"]["d_lmc"] == pytest.approx(49.6)
    b = diag["simulation_budget"]
    assert b["gradient_evaluations"] == b["leapfrog_steps_warmup"] + b["leapfrog_steps_sampling"] + 2 > 2
    assert b["simulation_equivalents_per_gradient"] == 2 * (1 + 2)
    assert b["total_simulation_equivalents"] == b["covariance_simulations"] + 6 * b["gradient_evaluations"]
    assert b["covariance_simulations"] >= 60
    assert {"covariance", "nuts compile", "nuts", "writing"} <= set(diag["timings_s"])
    assert diag["provenance"]["command"] == "sbi nuts"
    lines = (out / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("name,unit,mean,sd") and len(lines) == 1 + len(post.data_vars)


def _linear_toy_run(tmp_path, *extra: str) -> tuple[dict, dict[str, list[str]]]:
    """``jaxhalo sbi nuts --mean linear`` on a mock of the toy at theta0 (log10 M200 and log10 lambda_DF free, the
    reference 0.5 dex away, K = 4, C from 120 simulations, 2 chains x (200 + 300)) with ``extra`` options; asserts
    exit code 0 and returns (diagnostics.json, summary.csv rows by parameter name)."""
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps({"summaries": _toy_observation(np.asarray(FIDUCIAL_THETA, dtype=float), 7).tolist()}))
    out = tmp_path / "out"
    rc = main(["sbi", "nuts", str(obs), *TOY, "--params", "log10_m200", "log10_lambda_df", "--log10-m200", "11.5",
               "--mean", "linear", *extra, "--chains", "2", "--warmup", "200", "--samples", "300", "--n-keys", "4",
               "--n-cov", "120", "--no-plots", "--no-progress", "--out", str(out)])
    assert rc == 0
    rows = {r.split(",")[0]: r.split(",") for r in (out / "summary.csv").read_text().splitlines()[1:]}
    return json.loads((out / "diagnostics.json").read_text()), rows


def test_linear_mean_runs_on_the_surrogate_and_reports_it(tmp_path):
    """--mean linear on the toy (2 free parameters, a mock at theta0, the reference 0.5 dex away): the linearisation
    converges, NUTS costs no simulations (the budget is the two covariances and the linearisations), and the
    posterior median of log10 M200 lies within 3 posterior sd of the truth."""
    diag, rows = _linear_toy_run(tmp_path)
    sg, b = diag["surrogate"], diag["simulation_budget"]
    assert diag["mean"] == "linear" and sg["converged"] and sg["slopes"] == "secant"
    assert sg["simulations"] == sg["linearisations"] * 4 * (1 + 2 * 2) and sg["recentred_covariance_simulations"] >= 120
    assert b["nuts_simulation_equivalents"] == 0
    assert b["total_simulation_equivalents"] == b["covariance_simulations"] + sg["simulations"]
    assert {"surrogate", "covariance recentred"} <= set(diag["timings_s"])
    mean, sd = float(rows["log10_m200"][2]), float(rows["log10_m200"][3])
    assert abs(mean - 12.0) < 3 * sd


def test_refinement_with_score_compression_is_reported_and_costs_only_the_refinement(tmp_path):
    """--refine-keys 3 --compression score --slope-adjustment godambe on the same toy: one more linearisation at
    the placement's mode (3 x (1 + 2 x 2) simulations more) and NUTS on 2 compressed summaries with the
    Godambe-adjusted likelihood (the toy's secants are the same for every key: no adjustment), all in
    diagnostics.json; the posterior median of log10 M200 within 3 posterior sd of the truth."""
    diag, rows = _linear_toy_run(tmp_path, "--refine-keys", "3", "--compression", "score", "--slope-adjustment",
                                 "godambe")
    sg = diag["surrogate"]
    assert sg["compression"]["summaries"] == 2 and sg["refinement"]["linearisations"] == 1
    assert sg["slope_adjustment"] == "godambe"
    assert sg["simulations"] == (sg["linearisations"] * 4 + 3) * (1 + 2 * 2)
    mean, sd = float(rows["log10_m200"][2]), float(rows["log10_m200"][3])
    assert abs(mean - 12.0) < 3 * sd


def test_compression_without_refinement_is_refused(tmp_path, capsys):
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps({"summaries": _toy_observation(np.asarray(FIDUCIAL_THETA, dtype=float), 7).tolist()}))
    rc = main(["sbi", "nuts", str(obs), *TOY, "--params", "log10_m200", "--mean", "linear", "--compression", "score",
               "--no-progress", "--out", str(tmp_path / "out")])
    assert rc == 2 and "needs mean='linear' and refine_keys > 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    rc = main(["sbi", "nuts", str(obs), *TOY, "--params", "log10_m200", "--slope-adjustment", "godambe",
               "--no-progress", "--out", str(tmp_path / "out")])
    assert rc == 2 and "needs mean='linear', slopes='secant'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_closed_loop_on_the_toy(tmp_path):
    """A mock of the toy at a prior draw, all 12 parameters free, 4 chains x (500 + 1000), K = 8, C from 200
    simulations: R-hat < 1.01, no divergences, and every parameter's truth within 3.5 posterior sd of the
    posterior mean (each fails with probability 5e-4 for a calibrated Gaussian posterior); the derived
    masses and corner.png are written."""
    import jax

    from jaxhalo.sbi.priors import brooks2026_prior

    truth = np.asarray(brooks2026_prior().sample(jax.random.key(5)))
    obs = tmp_path / "obs.npy"
    np.save(obs, _toy_observation(truth, 1005))
    out = tmp_path / "out"
    assert main(["sbi", "nuts", str(obs), *TOY, "--chains", "4", "--warmup", "500", "--samples", "1000", "--strict",
                 "--no-progress", "--out", str(out)]) == 0
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["max_r_hat"] < 1.01 and diag["divergences"] == 0
    import arviz as az

    post = az.from_netcdf(out / "posterior.nc").posterior
    assert "m_mw_lt50" in post and post["m_mw_lt50"].attrs["units"] == "Msun" and (out / "corner.png").is_file()
    z = {n: float((post[n].mean() - truth[i]) / post[n].std()) for i, n in enumerate(PARAMETER_NAMES)}
    assert all(abs(v) < 3.5 for v in z.values()), z


@pytest.mark.slow
def test_the_mw_lmc_simulator_path_runs(tmp_path):
    """A smoke run of the real simulator's path (smooth summaries, forward-mode gradients through the MW-LMC
    simulator): 200 tracers over 200 Myr, M200 free, 2 chains x (5 + 5) iterations. The observation is a
    labelled summaries table (the layout `jaxhalo simulate` writes) of the same simulator at the fiducial theta,
    shuffled: the command puts it back into the simulator's order. Checks the run finishes with finite draws
    inside the prior, the budget's per-gradient cost K (1 + 1) and the simulator config recorded."""
    import jax
    from astropy.table import Table

    from jaxhalo.sbi.nuts_sl import smooth_simulator
    from jaxhalo.simulation.brooks import SimConfig
    from jaxhalo.simulation.summaries import BROOKS_SUMMARY_LABELS

    cfg = SimConfig(n_particles=200, t_back=200.0, dt=10.0, disc="miyamoto-nagai")
    x = np.asarray(jax.jit(smooth_simulator(cfg))(jax.numpy.asarray(FIDUCIAL_THETA), jax.random.key(11)))
    perm = np.random.default_rng(0).permutation(52)
    Table({"label": np.asarray(BROOKS_SUMMARY_LABELS)[perm], "value": x[perm]}).write(tmp_path / "summaries.ecsv")
    out = tmp_path / "out"
    rc = main(["sbi", "nuts", str(tmp_path / "summaries.ecsv"), "--params", "log10_m200", "--n-particles", "200",
               "--t-back", "200", "--dt", "10", "--disc", "miyamoto-nagai", "--n-keys", "2", "--n-cov", "60",
               "--chains", "2", "--warmup", "5", "--samples", "5", "--max-tree-depth", "3", "--no-progress",
               "--no-plots", "--out", str(out)])
    assert rc == 0
    import arviz as az

    idata = az.from_netcdf(out / "posterior.nc")
    np.testing.assert_allclose(idata.observed_data["summaries"].values, x)
    m = idata.posterior["log10_m200"].values
    assert m.shape == (2, 5) and np.all((m > 10.5) & (m < 12.5))
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["simulation_budget"]["simulation_equivalents_per_gradient"] == 2 * 2
    assert diag["simulator"]["config"]["disc"] == "miyamoto-nagai" and diag["simulator"]["config"]["n_particles"] == 200
