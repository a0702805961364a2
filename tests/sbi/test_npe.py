"""Neural posterior estimation: persistence, prior rejection, bad input (fast), and the closed loop on a
linear-Gaussian problem with a known posterior (slow: exact-posterior moments and TARP calibration)."""

from __future__ import annotations

import numpy as np
import pytest

import jax

from jaxhalo.sbi.npe import NPEConfig, NPEError, load_npe, save_npe, train_npe
from jaxhalo.sbi.tarp import tarp_coverage

D, S, NOISE = 3, 5, 0.5
A = np.random.default_rng(0).standard_normal((S, D)) / np.sqrt(D)


def _simulate(theta, seed):
    """x = A theta + N(0, NOISE^2 I)."""
    return theta @ A.T + NOISE * np.random.default_rng(seed).standard_normal(theta.shape[:-1] + (S,))


def _exact_posterior(x):
    """theta ~ N(0, I): posterior N(C A^T x / s^2, C), C = (I + A^T A / s^2)^-1."""
    cov = np.linalg.inv(np.eye(D) + A.T @ A / NOISE**2)
    return x @ (cov @ A.T / NOISE**2).T, cov


@pytest.fixture(scope="module")
def tiny_model():
    theta = np.random.default_rng(1).standard_normal((600, D))
    x = _simulate(theta, 2)
    x[:7, 1] = np.nan  # dropped rows
    cfg = NPEConfig(flow_layers=1, nn_width=8, n_ensemble=2, max_epochs=4, patience=10, batch_size=100,
                    learning_rate=3e-3)
    return train_npe(theta, x, jax.random.PRNGKey(0), cfg, parameter_names=["a", "b", "c"],
                     prior_bounds=(np.array([-1.0, -np.inf, -np.inf]), np.array([1.0, np.inf, np.inf])))


def test_training_report_and_rejection(tiny_model):
    model, rep = tiny_model
    assert rep.n_dropped == 7 and rep.n_train + rep.n_val == 593
    assert len(rep.epochs) == 2 and all(e == 4 for e in rep.epochs)
    assert all(rep.train_loss[m][-1] < rep.train_loss[m][0] for m in range(2))  # it learns
    s = model.sample(jax.random.PRNGKey(1), np.zeros(S), 500)
    assert s.shape == (500, D) and np.all(np.abs(s[:, 0]) <= 1.0)  # prior box enforced on "a"
    sb = model.sample(jax.random.PRNGKey(1), np.zeros((4, S)), 50)
    assert sb.shape == (50, 4, D)
    lp = np.asarray(model.log_prob(s[:3], np.zeros(S)))
    assert lp.shape == (3,) and np.all(np.isfinite(lp))


def test_save_load_roundtrip(tiny_model, tmp_path):
    model, _ = tiny_model
    path = save_npe(model, tmp_path / "m.npe", metadata={"note": "x"})
    model2, header = load_npe(path)
    assert header["metadata"]["note"] == "x" and model2.parameter_names == ("a", "b", "c")
    th, x = np.random.default_rng(3).standard_normal((5, D)), np.random.default_rng(4).standard_normal((5, S))
    np.testing.assert_array_equal(np.asarray(model.log_prob(th, x)), np.asarray(model2.log_prob(th, x)))
    np.testing.assert_array_equal(model.sample(jax.random.PRNGKey(2), x[0], 20), model2.sample(jax.random.PRNGKey(2), x[0], 20))


def test_bad_input(tiny_model, tmp_path):
    model, _ = tiny_model
    with pytest.raises(NPEError, match="summary vector must have length 5"):
        model.sample(jax.random.PRNGKey(0), np.zeros(52), 10)
    with pytest.raises(NPEError, match="same N"):
        train_npe(np.zeros((10, 2)), np.zeros((11, 3)), jax.random.PRNGKey(0))
    with pytest.raises(NPEError, match=r"training needs at least max\(batch 200, 20\) training"):
        train_npe(np.zeros((50, 2)), np.zeros((50, 3)), jax.random.PRNGKey(0))
    with pytest.raises(NPEError, match="n_ensemble must be >= 1"):
        NPEConfig(n_ensemble=0)
    bad = tmp_path / "foreign.npe"
    bad.write_bytes(b"\x89PNG not a model")
    with pytest.raises(NPEError, match="not a jaxhalo NPE model file"):
        load_npe(bad)
    # the CLI names a wrong-length observed summary vector
    from jaxhalo.cli import main

    path = save_npe(model, tmp_path / "m.npe")
    obs = tmp_path / "obs.json"
    obs.write_text("[1, 2, 3]")
    assert main(["sbi", "infer", str(path), str(obs), "--out", str(tmp_path / "o"), "--no-coverage"]) == 2


@pytest.mark.slow
def test_closed_loop_linear_gaussian_calibrated():
    """Train on 4000 simulations; on 300 held-out ones the NPE is calibrated (TARP KS p > 0.05, ATC ~ 0)
    and matches the exact posterior's mean and width."""
    rng = np.random.default_rng(5)
    theta = rng.standard_normal((4000, D))
    x = _simulate(theta, 6)
    cfg = NPEConfig(flow_layers=3, nn_width=32, n_ensemble=2, max_epochs=80, patience=8, batch_size=100,
                    learning_rate=2e-3)
    model, rep = train_npe(theta, x, jax.random.PRNGKey(7), cfg)
    th_test = rng.standard_normal((300, D))
    x_test = _simulate(th_test, 8)
    samples = model.sample(jax.random.PRNGKey(9), x_test, 400)
    res = tarp_coverage(samples, th_test, key=jax.random.PRNGKey(10))
    print(f"closed loop: ATC {res.atc:+.3f}, KS p {res.ks_pvalue:.3f}, KS-U p {res.ks_uniform_pvalue:.3f}, "
          f"epochs {rep.epochs}")
    assert res.ks_pvalue > 0.05 and res.ks_uniform_pvalue > 0.05
    assert abs(res.atc) < 1.5
    mean, cov = _exact_posterior(x_test[:20])
    sd = np.sqrt(np.diag(cov))
    # posterior means: RMS error < 0.15 posterior sd, worst of the 60 < 0.4 sd (400 draws alone give
    # 0.05 sd MC error; the rest is the flow's approximation at 4000 training simulations);
    # widths within 15% (MC error 3.5%)
    err = (samples[:, :20].mean(0) - mean) / sd
    print(f"mean error / sd: rms {np.sqrt(np.mean(err**2)):.3f}, max {np.max(np.abs(err)):.3f}")
    assert np.sqrt(np.mean(err**2)) < 0.15 and np.max(np.abs(err)) < 0.4
    np.testing.assert_allclose(samples[:, :20].std(0).mean(0), sd, rtol=0.15)


@pytest.mark.slow
def test_cli_train_infer_end_to_end(tmp_path):
    """`jaxhalo suite run` (toy) -> `jaxhalo sbi train` -> `jaxhalo sbi infer`: every product written."""
    import json

    from jaxhalo.cli import main
    from jaxhalo.sbi.store import SuiteStore

    st, model, out = tmp_path / "st", tmp_path / "m.npe", tmp_path / "post"
    assert main(["suite", "run", "--n", "800", "--chunk", "200", "--out", str(st), "--simulator", "linear-gaussian",
                 "--n-summaries", "8", "--noise", "0.2", "--no-progress"]) == 0
    assert main(["sbi", "train", str(st), "--out", str(model), "--layers", "2", "--width", "16", "--ensemble", "2",
                 "--max-epochs", "15", "--batch", "100", "--lr", "2e-3", "--test-frac", "0.1", "--no-progress"]) == 0
    x = SuiteStore.open(st).load().summaries[0]
    (tmp_path / "x.json").write_text(json.dumps({"summaries": x.tolist()}))
    assert main(["sbi", "infer", str(model), str(tmp_path / "x.json"), "--out", str(out), "--n-samples", "500",
                 "--coverage-samples", "100"]) == 0
    for f in ("posterior.nc", "posterior_samples.npz", "corner.png", "coverage.png", "summary.json"):
        assert (out / f).stat().st_size > 0, f
    summ = json.loads((out / "summary.json").read_text())
    assert summ["coverage"]["n_sims"] == 80 and "m_mw_lt50" in summ["quantiles"]
    post = np.load(out / "posterior_samples.npz")
    assert post["m_lmc"].shape == (500,) and np.all(post["m_lmc"] >= 2.5e10)  # prior rejection
    import arviz as az

    idata = az.from_netcdf(out / "posterior.nc")
    assert idata.posterior["m_lmc"].dims == ("chain", "draw") and idata.posterior["m_lmc"].size == 500
    np.testing.assert_array_equal(np.sort(idata.posterior["m_lmc"].values.ravel()), np.sort(post["m_lmc"]))
    assert idata.posterior["m_lmc"].attrs["units"] == "Msun" and idata.posterior["m_mw_lt50"].attrs["units"] == "Msun"
    np.testing.assert_array_equal(idata.observed_data["summaries"].values, x)


def test_posterior_inference_data_names_and_units():
    """NPE draws (n, P) as InferenceData: 4 pseudo-chains of independent draws in order, units and descriptions
    from the parameter table, the observed summaries under their labels; az.summary works."""
    import arviz as az

    from jaxhalo.sbi.npe import posterior_inference_data
    from jaxhalo.simulation.summaries import BROOKS_SUMMARY_LABELS

    rng = np.random.default_rng(0)
    s = rng.normal(size=(400, 3)) * [0.1, 1e10, 5.0] + [12.0, 1.5e11, 30.0]
    x = rng.normal(size=52)
    idata = posterior_inference_data(s, ["log10_m200", "m_lmc", "v_travel_r40"], derived={"m_mw_lt50": s[:, 0] * 1e10},
                                     x_obs=x, summary_labels=BROOKS_SUMMARY_LABELS)
    post = idata.posterior
    assert post["m_lmc"].dims == ("chain", "draw") and post["m_lmc"].shape == (4, 100)
    np.testing.assert_array_equal(post["m_lmc"].values.ravel(), s[:, 1])  # row order kept
    np.testing.assert_array_equal(post["m_mw_lt50"].values.ravel(), s[:, 0] * 1e10)
    assert post["log10_m200"].attrs["units"] == "log10 Msun" and post["m_lmc"].attrs["units"] == "Msun"
    assert post["v_travel_r40"].attrs["units"] == "km/s" and post["m_mw_lt50"].attrs["units"] == "Msun"
    assert idata.observed_data["summaries"].dims == ("summary",)
    assert idata.observed_data["summary"].values[0] == BROOKS_SUMMARY_LABELS[0]
    summ = az.summary(idata, var_names=["log10_m200", "m_lmc"])
    np.testing.assert_allclose(summ.loc["log10_m200", "mean"], s[:, 0].mean(), atol=1e-3)  # arviz rounds to 3 decimals
    assert np.all(summ["r_hat"] < 1.05)  # independent draws
    assert posterior_inference_data(s[:10], ["a", "b", "c"]).posterior["a"].shape == (2, 5)
    assert posterior_inference_data(s[:7], ["a", "b", "c"]).posterior["a"].shape == (1, 7)
    with pytest.raises(NPEError, match="samples must be"):
        posterior_inference_data(s, ["a", "b"])
