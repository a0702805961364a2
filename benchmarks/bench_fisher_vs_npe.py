"""Closed loop of the Fisher forecast against NPE on the same survey (issue 12, item 2).

At the fiducial theta0 (Brooks et al. 2026 Table 1 centre) and for one survey (star count, 30-160 kpc,
per-star errors), the forecast sigma of ``jaxhalo.sbi.forecast.survey_forecast`` (J by forward-mode
autodiff with common random numbers over ``n_jacobian`` keys, C from ``n_covariance`` simulations, the
Table 1 priors' information added) is set against the posterior sigma of an NPE ensemble trained on a suite
of the *same* simulator: the survey's smooth summaries (``survey_simulator``, same particle count, same
errors drawn per star), parameters drawn from the Table 1 prior (all twelve vary; the NPE learns the
marginal posterior of its targets, as the forecast's inverse F marginalises over the other nine).

The NPE posterior is evaluated on ``n_obs`` mock observations at theta0 (independent keys, not in the
suite). Reported per target (log10 M200, M_LMC, log10 lambda_DF) and for M_MW(<50 kpc), M_LMC(<50 kpc)
(derived from the draws): the Fisher sigma, the mean NPE sigma over the mocks (and its spread), their
ratio, the prior sigma, the forecast's ``jacobian_noise`` and how Gaussian the NPE posterior is
((q84 - q16) / 2 over sigma, 1 for a Gaussian). Issue 12's check: Fisher sigma within a factor 1.5 of the
NPE sigma where the NPE posterior is near Gaussian.

Two bounds frame the comparison (neither is a tolerance in a test): the Fisher sigma with priors is a
Cramer-Rao-type lower bound for the posterior width of these summaries (an NPE posterior narrower than it
by more than its noise would be over-confident), and an NPE trained on a finite suite is wider than the
information allows (its width falls as the suite grows).

    python -m benchmarks.bench_fisher_vs_npe [--quick | --large]

Full settings (``SETTINGS``): 1,000 stars, 500 Myr at dt = 1 Myr with the DF from 5 kpc (the reduced forecast
of the README), J over 8 keys, C from 200 simulations, a 4,000-simulation NPE suite (and an NPE on its first half), 20 mocks; ~20 min on
2 CPU cores. ``--large`` (record ``fisher_vs_npe_large``): the learning curve, J over 32 keys and a
12,000-simulation suite with NPEs on its first 1/8, 1/4, 1/2 and all of it (~50 min). ``--quick``: a tiny version (minutes) that tests the plumbing (``tests/sbi/test_fisher_vs_npe.py``,
slow set).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import device_name, script_flags, write_results  # noqa: E402
from jaxhalo.sbi.derived import derived_masses  # noqa: E402
from jaxhalo.sbi.forecast import Survey, particles_for_survey, survey_forecast, survey_simulator  # noqa: E402
from jaxhalo.sbi.npe import NPEConfig, train_npe  # noqa: E402
from jaxhalo.sbi.priors import brooks2026_prior  # noqa: E402
from jaxhalo.sbi.simulators import SuiteSimulator  # noqa: E402
from jaxhalo.sbi.store import SuiteStore  # noqa: E402
from jaxhalo.sbi.suite import run_suite  # noqa: E402
from jaxhalo.simulation.brooks import SimConfig  # noqa: E402
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES  # noqa: E402

RESULT_NAME = "fisher_vs_npe"
#: NPE targets: the parameters of issue 12's check (M_MW through log10 M200).
TARGETS = ("log10_m200", "m_lmc", "log10_lambda_df")
#: Issue 12: the Fisher sigma within this factor of the NPE posterior sigma.
FACTOR = 1.5

SETTINGS = {
    "full": dict(n_stars=1000, t_back=500.0, dt=1.0, df_r_min=5.0, n_jacobian=8, n_covariance=200, n_sims=4000,
                 n_obs=20, chunk=16, npe=dict(n_ensemble=5, max_epochs=500, patience=20, batch_size=100),
                 n_draws=4000, seed=0),
    # the learning curve: J over 32 keys (less Monte Carlo noise), a 12,000-simulation suite, NPEs on its
    # first 1/8, 1/4, 1/2 and all of it (~50 min on 2 CPU cores)
    "large": dict(n_stars=1000, t_back=500.0, dt=1.0, df_r_min=5.0, n_jacobian=32, n_covariance=200, n_sims=12000,
                  n_obs=20, chunk=16, npe=dict(n_ensemble=5, max_epochs=500, patience=20, batch_size=100),
                  n_draws=4000, seed=0, suite_fractions=(0.125, 0.25, 0.5)),
    "quick": dict(n_stars=600, t_back=60.0, dt=2.0, df_r_min=5.0, n_jacobian=2, n_covariance=40, n_sims=160,
                  n_obs=4, chunk=16, npe=dict(n_ensemble=1, max_epochs=30, patience=5, batch_size=16, flow_layers=2,
                                              nn_width=16),
                  n_draws=500, seed=0),
}


def _survey_suite_simulator(survey: Survey, config: SimConfig) -> SuiteSimulator:
    """The survey's smooth summaries as a suite simulator (invalid theta -> NaN rows, dropped by train_npe)."""
    cfg = {"survey": dataclasses.asdict(survey),
           "config": {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}}
    return SuiteSimulator("survey-smooth", survey_simulator(survey, config), cfg, tuple(PARAMETER_NAMES))


def closed_loop(quick: bool = False, workdir: str | None = None, case: str | None = None) -> dict:
    """Run the forecast, the suite, the NPE and the mocks; return one record (see the module docstring).
    ``case``: a key of :data:`SETTINGS` (default "quick" or "full" by ``quick``)."""
    case = case or ("quick" if quick else "full")
    s = SETTINGS[case]
    theta0 = np.asarray(FIDUCIAL_THETA, dtype=float)
    survey = Survey(n_stars=s["n_stars"])
    config = SimConfig(dt=s["dt"], t_back=s["t_back"], r_min=s["df_r_min"], on_invalid="nan")
    timings = {}

    t0 = time.perf_counter()
    fc = survey_forecast(survey, theta0, jax.random.key(s["seed"]), config, n_jacobian=s["n_jacobian"],
                         n_covariance=s["n_covariance"])
    timings["forecast_s"] = time.perf_counter() - t0
    rows = {r["name"]: r for r in fc.parameter_table()}
    print(f"forecast: {timings['forecast_s']:.0f} s", flush=True)

    n_part = particles_for_survey(survey, theta0, config)
    sim_cfg = dataclasses.replace(config, n_particles=n_part)
    sim = _survey_suite_simulator(survey, sim_cfg)
    prior = brooks2026_prior()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        t0 = time.perf_counter()
        run_suite(os.path.join(tmp, "suite"), sim, prior, s["n_sims"], chunk_size=s["chunk"], seed=s["seed"] + 1,
                  progress=True)
        timings["suite_s"] = time.perf_counter() - t0
        data = SuiteStore.open(os.path.join(tmp, "suite")).load(require_complete=True)
    names = list(data.parameter_names)
    tcols = [names.index(n) for n in TARGETS]
    valid = np.all(np.isfinite(data.summaries), axis=1)
    print(f"suite: {valid.sum()} of {len(valid)} valid in {timings['suite_s']:.0f} s", flush=True)

    # mocks at theta0 with keys outside the suite's and the forecast's
    keys = jax.random.split(jax.random.key(s["seed"] + 1000), s["n_obs"])
    simulate = jax.jit(jax.vmap(survey_simulator(survey, sim_cfg), in_axes=(None, 0)))
    x_obs = np.asarray(simulate(jnp.asarray(theta0), keys))

    lo, hi = prior.bounds
    bounds = (np.asarray(lo)[tcols], np.asarray(hi)[tcols])
    cfg = NPEConfig(**s["npe"])
    th_valid, x_valid = data.theta[valid][:, tcols], data.summaries[valid]

    def npe_posterior(n_rows: int, seed: int) -> tuple[dict, object]:
        """Train on the first n_rows valid simulations; draws for the mocks, with derived masses."""
        model, rep = train_npe(th_valid[:n_rows], x_valid[:n_rows], jax.random.key(seed), cfg,
                               parameter_names=TARGETS, prior_bounds=bounds, progress=True)
        draws = model.sample(jax.random.key(seed + 1), x_obs, s["n_draws"])  # (M, n_obs, 3)
        der = derived_masses(draws, list(TARGETS))
        post = {n: draws[..., i] for i, n in enumerate(TARGETS)}
        post["m_mw_50"], post["m_lmc_50"] = der["m_mw_lt50"], der["m_lmc_lt50"]
        return post, rep

    t0 = time.perf_counter()
    post, rep = npe_posterior(th_valid.shape[0], s["seed"] + 2)
    timings["train_s"] = time.perf_counter() - t0
    # how the width depends on the suite's size: NPEs on the suite's first fractions
    fractions = s.get("suite_fractions", (0.5,))
    smaller = {int(th_valid.shape[0] * f): npe_posterior(int(th_valid.shape[0] * f), s["seed"] + 4 + 2 * i)[0]
               for i, f in enumerate(fractions)}
    half = smaller[int(th_valid.shape[0] * 0.5)]
    true = dict(zip(PARAMETER_NAMES, theta0))
    der0 = derived_masses(theta0[None, :3], list(TARGETS))
    true["m_mw_50"], true["m_lmc_50"] = float(der0["m_mw_lt50"][0]), float(der0["m_lmc_lt50"][0])

    per = {}
    for n, d in post.items():
        # NaN: a draw of log10 M200 below the simulable range (~11.13) has no M_MW(<50 kpc); left out, counted
        sd = np.nanstd(d, axis=0)  # (n_obs,)
        q16, q50, q84 = np.nanpercentile(d, [16, 50, 84], axis=0)
        f_sigma = rows[n]["sigma"]
        npe_sigma = float(sd.mean())
        gauss = float(np.median((q84 - q16) / 2 / sd))
        ratio = f_sigma / npe_sigma
        per[n] = {
            "fisher_sigma": f_sigma, "fisher_sigma_noise_subtracted": rows[n]["sigma_noise_subtracted"],
            "npe_sigma_mean": npe_sigma, "npe_sigma_sd_over_mocks": float(sd.std()),
            "npe_sigma_mean_half_suite": float(np.nanstd(half[n], axis=0).mean()),
            "npe_sigma_mean_by_valid_rows": {**{str(k): float(np.nanstd(v[n], axis=0).mean()) for k, v in smaller.items()},
                                             str(th_valid.shape[0]): npe_sigma},
            "fisher_over_npe": ratio, "within_factor": bool(1 / FACTOR <= ratio <= FACTOR),
            "prior_sigma": rows[n]["prior_sigma"], "jacobian_noise": rows[n]["jacobian_noise"],
            "npe_half_68_over_sd": gauss, "truth": true[n],
            "npe_median_mean_z": float(np.mean((q50 - true[n]) / sd)),
            "truth_in_npe_68": float(np.mean((true[n] >= q16) & (true[n] <= q84))),
            "npe_draws_undefined_fraction": float(np.mean(~np.isfinite(d))),
        }
        print(f"{n:>16s}: Fisher {f_sigma:.4g} (noise subtracted {rows[n]['sigma_noise_subtracted']:.4g})  "
              f"NPE {npe_sigma:.4g} (+-{sd.std():.2g}; half suite {per[n]['npe_sigma_mean_half_suite']:.4g})  ratio {ratio:.2f}  "
              f"prior {rows[n]['prior_sigma']:.4g}  J-noise {rows[n]['jacobian_noise']:.2f}  "
              f"(q84-q16)/2sd {gauss:.2f}", flush=True)
    return {
        "case": case, "settings": {**s, "n_particles": n_part, "survey": dataclasses.asdict(survey)},
        "n_valid_sims": int(valid.sum()), "training_epochs": rep.epochs, "best_val_loss": rep.best_val,
        "timings_s": timings, "targets": per,
        "simulation_equivalents": {"fisher": s["n_jacobian"] * 40 + s["n_covariance"], "npe_suite": s["n_sims"]},
    }


def run(quick: bool = False, case: str | None = None) -> list[dict]:
    print(device_name(), flush=True)
    return [closed_loop(quick, case=case)]


if __name__ == "__main__":
    flags = script_flags(__doc__, known=("--quick", "--large"))
    quick = "--quick" in flags
    case = "large" if "--large" in flags else None
    t_start = time.perf_counter()
    recs = run(quick, case)
    path = write_results(RESULT_NAME + ("_large" if case == "large" else ""), recs, meta={"wall_s": time.perf_counter() - t_start,
                                                  "note": "2 CPU cores; see the module docstring"})
    print(f"wrote {path}")
