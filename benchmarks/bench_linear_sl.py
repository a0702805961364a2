"""Closed loop of NUTS on the linearised synthetic likelihood (issue 12, item 3's simulation budget).

``jaxhalo sbi nuts --mean linear`` (:mod:`jaxhalo.sbi.surrogate`): the mean summaries are linearised by
Gauss-Newton from a reference theta (secant slopes over the posterior's own width, K common-random-number
keys), the covariance is estimated at the reference and again at the linearisation's centre, and NUTS
samples the synthetic likelihood with that linear mean over the Table 1 prior (all twelve parameters free)
at no further simulation cost.

The survey, the simulator and the ``n_obs`` mock observations at the fiducial theta0 are exactly those of
``benchmarks/bench_fisher_vs_npe.py`` (same settings, same mock keys), so the posterior widths here compare
directly with the NPE posteriors of ``benchmarks/results/fisher_vs_npe_large_cpu2.json`` (5-flow ensembles on a
12,000-simulation suite, 8,247 simulable). The reference theta is the prior's centre (uniform priors' midpoints,
the normal priors' means: log10 M200 = 11.5, M_LMC = 2.6e11 Msun, log10 lambda_DF = -1, ...), not theta0, so
each fit has to find the posterior.

Reported per target (log10 M200, M_LMC, log10 lambda_DF, and the derived M_MW(<50 kpc), M_LMC(<50 kpc)): the mean
posterior sigma over the mocks against the NPE's, the fraction of mocks whose 68 % / 95 % central interval holds
theta0 (for calibrated posteriors 0.68 / 0.95, binomial sd 0.10 / 0.05 for 20 mocks), the mean z of the
posterior median and its scatter over the mocks (1 for calibrated widths); per mock the convergence of the linearisation, R-hat, divergences and the simulation budget.

    python -m benchmarks.bench_linear_sl [--quick] [--refine] [--corrected] [--compressed] [--adjusted] [--resume]

Full: 20 mocks, K = 4, C from 200 simulations (twice), 4 chains x (500 + 1000); ~1 h on 2 CPU cores.
``--quick``: 2 mocks of a tiny survey (600 stars, 60 Myr), K = 2, C from 60 simulations (minutes; the slow
test of the plumbing). ``--refine``: after the same placement, C again at its last mode and one more
linearisation there with K' = 8 fresh keys (``synthetic_posterior(refine_keys=8)``), which NUTS samples; +400
simulations per observation; record ``linear_sl_refined_cpu2.json`` (fits in ``linear_sl/fits_refined_cpu2.json``).

The records ``full`` and ``refined`` were made before three corrections of the likelihood
(``benchmarks/bench_linear_sl_at_truth.py --independent-mean``) and pin the settings of then: the centre's mean
from the slopes' own keys, the secants' noise added to the covariance, C with the Hartlap factor only.
``--corrected``: the same closed loop with the defaults of now -- the centre's mean from independent keys, no
secant-noise term, C times Percival's m1 (1.17) for its own noise; the same simulation budget; record
``linear_sl_corrected_cpu2.json``.

``--compressed``: the corrected likelihood, then C at the placement's mode and one more linearisation there with 8
fresh keys (as ``--refine``), and NUTS on the 12 score-compressed summaries (onto the placement's last slopes;
:mod:`jaxhalo.sbi.compression`): the 8 keys' slope noise then adds up over 12 summaries instead of 52; 900
simulations per observation; record ``linear_sl_compressed_cpu2.json``. The slow test runs its quick version.

``--adjusted``: ``--compressed`` with the same keys (so the same simulations, mock by mock), NUTS on the
Godambe-adjusted likelihood (``synthetic_posterior(slope_adjustment="godambe")``): the 8 refinement keys' slope
noise, estimated from their scatter, is taken out of the information (:mod:`jaxhalo.sbi.surrogate`); record
``linear_sl_adjusted_cpu2.json`` (a run stopped early leaves a record of the mocks done, ``partial``).

``--resume`` (with any full setting): continue a run stopped early from its record of the mocks done (each mock's
fit is deterministic, so the record equals an uninterrupted run's but for the wall times). Records written before
``--resume`` existed keep no per-mock percentiles and cannot be resumed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.bench_fisher_vs_npe import SETTINGS as NPE_SETTINGS  # noqa: E402
from benchmarks.bench_fisher_vs_npe import TARGETS  # noqa: E402
from benchmarks.common import device_name, script_flags, write_results  # noqa: E402
from jaxhalo.sbi.derived import derived_masses  # noqa: E402
from jaxhalo.sbi.forecast import Survey, particles_for_survey, survey_simulator  # noqa: E402
from jaxhalo.sbi.nuts_sl import synthetic_posterior  # noqa: E402
from jaxhalo.sbi.priors import brooks2026_prior  # noqa: E402
from jaxhalo.sbi.surrogate import prior_moments  # noqa: E402
from jaxhalo.simulation.brooks import SimConfig  # noqa: E402
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES  # noqa: E402

RESULT_NAME = "linear_sl"
NPE_RECORD = Path(__file__).parent / "results" / "fisher_vs_npe_large_cpu2.json"

#: the likelihood of the first records (module docstring); ``corrected`` uses synthetic_posterior's defaults
AS_BEFORE = dict(independent_mean=False, slope_noise=True, covariance_noise="none")
CORRECTED = dict(independent_mean=True, slope_noise=False, covariance_noise="percival")
SETTINGS = {
    "full": dict(survey="large", n_keys=4, n_cov=200, n_linearisations=3, num_warmup=500, num_samples=1000,
                 num_chains=4, n_obs=20, seed=0, refine_keys=0, **AS_BEFORE),
    "quick": dict(survey="quick", n_keys=2, n_cov=60, n_linearisations=2, num_warmup=100, num_samples=100,
                  num_chains=2, n_obs=2, seed=0, refine_keys=0, **CORRECTED),
}
# --refine: the same placement, then C at its mode and one more linearisation there with 8 fresh keys
SETTINGS["refined"] = {**SETTINGS["full"], "refine_keys": 8}
SETTINGS["quick_refined"] = {**SETTINGS["quick"], "refine_keys": 2}
SETTINGS["corrected"] = {**SETTINGS["full"], **CORRECTED}
# --compressed: the corrected likelihood, the refinement with 8 fresh keys at the placement's mode, and NUTS on the
# 12 score-compressed summaries (jaxhalo.sbi.compression)
SETTINGS["compressed"] = {**SETTINGS["corrected"], "refine_keys": 8, "compression": "score"}
SETTINGS["quick_compressed"] = {**SETTINGS["quick_refined"], "compression": "score"}
# --adjusted: as --compressed (the same simulations: same keys), NUTS on the Godambe-adjusted likelihood
SETTINGS["adjusted"] = {**SETTINGS["compressed"], "slope_adjustment": "godambe"}
SETTINGS["quick_adjusted"] = {**SETTINGS["quick_compressed"], "slope_adjustment": "godambe"}


def mock_observations(survey_name: str, n_obs: int) -> tuple[np.ndarray, Survey, int, object, np.ndarray]:
    """(theta0 (12,), survey, tracer particles, ``simulate(theta, key) -> (S,)``, the first ``n_obs`` mock
    observations (n_obs, S) at theta0): those of ``benchmarks/bench_fisher_vs_npe.py`` (same keys, same simulator)."""
    sv = NPE_SETTINGS[survey_name]
    theta0 = np.asarray(FIDUCIAL_THETA, dtype=float)
    survey = Survey(n_stars=sv["n_stars"])
    config = SimConfig(dt=sv["dt"], t_back=sv["t_back"], r_min=sv["df_r_min"], on_invalid="nan")
    n_part = particles_for_survey(survey, theta0, config)
    simulate = survey_simulator(survey, dataclasses.replace(config, n_particles=n_part))
    keys = jax.random.split(jax.random.key(sv["seed"] + 1000), n_obs)
    x_obs = np.asarray(jax.jit(jax.vmap(simulate, in_axes=(None, 0)))(jnp.asarray(theta0), keys))
    return theta0, survey, n_part, simulate, x_obs


#: the percentiles of each target's draws kept per mock (the coverage needs the 68 % and 95 % central intervals)
PERCENTILES = (2.5, 16.0, 50.0, 84.0, 97.5)


def closed_loop(setting: str = "full", checkpoint=None, done: list[dict] | None = None) -> dict:
    """Fit every mock (module docstring) with ``SETTINGS[setting]`` and return one record; ``checkpoint(record)`` is
    called with the record of the mocks done so far after each one. ``done``: the ``fits`` of a record of the same
    setting stopped early (``--resume``); those mocks are not fitted again (every fit is deterministic: the same
    keys give bit-identical draws)."""
    s = SETTINGS[setting]
    names = [n for n in PARAMETER_NAMES if n in TARGETS] + ["m_mw_50", "m_lmc_50"]
    fits = [dict(f) for f in (done or [])]
    for i, f in enumerate(fits):
        if f["mock"] != i or i >= s["n_obs"] or any("percentiles" not in f["targets"].get(n, {}) for n in names):
            raise ValueError(f"cannot resume from mock {f['mock']}: the record must list mocks 0, 1, ... (fewer than "
                             f"{s['n_obs']}) in order, each with the percentiles of {names} (records written before "
                             "--resume lack them)")
    quick = setting.startswith("quick")
    sv = NPE_SETTINGS[s["survey"]]
    theta0, survey, n_part, simulate, x_obs = mock_observations(s["survey"], s["n_obs"])
    prior = brooks2026_prior()
    theta_ref = prior_moments(prior)[0]
    true = dict(zip(PARAMETER_NAMES, theta0))
    der0 = derived_masses(theta0[None, :3], list(TARGETS))
    true["m_mw_50"], true["m_lmc_50"] = float(der0["m_mw_lt50"][0]), float(der0["m_lmc_lt50"][0])

    for m in range(len(fits), s["n_obs"]):
        draws = {}
        t0 = time.perf_counter()
        res = synthetic_posterior(prior, simulate, x_obs[m], jax.random.key(s["seed"] + 2000 + m), theta_ref,
                                  n_keys=s["n_keys"], n_cov=s["n_cov"], n_linearisations=s["n_linearisations"],
                                  num_warmup=s["num_warmup"],
                                  num_samples=s["num_samples"], num_chains=s["num_chains"], mean="linear",
                                  refine_keys=s["refine_keys"], independent_mean=s["independent_mean"],
                                  slope_noise=s["slope_noise"], covariance_noise=s["covariance_noise"],
                                  compression=s.get("compression", "none"),
                                  slope_adjustment=s.get("slope_adjustment", "none"))
        wall = time.perf_counter() - t0
        th = res.theta.reshape(-1, res.theta.shape[-1])
        tcols = [PARAMETER_NAMES.index(n) for n in TARGETS]
        der = derived_masses(th[:, tcols], list(TARGETS))
        for i, n in enumerate(TARGETS):
            draws[n] = th[:, tcols[i]]
        draws["m_mw_50"], draws["m_lmc_50"] = der["m_mw_lt50"], der["m_lmc_lt50"]
        b = res.budget()
        fits.append({"mock": m, "wall_s": wall, "timings_s": res.timings_s, "max_r_hat": res.max_r_hat,
                     "min_ess_bulk": res.min_ess_bulk, "divergences": res.divergences,
                     "linearisations": res.surrogate["linearisations"], "converged": res.surrogate["converged"],
                     "steps_in_widths": res.surrogate["steps_in_widths"],
                     "final_centre": (res.surrogate["refinement"]["centres"][-1] if "refinement" in res.surrogate
                                      else res.surrogate["centres"][-1]),
                     "placement_mode": res.surrogate["mode"],
                     "compression": res.surrogate.get("compression"),
                     "total_simulation_equivalents": b["total_simulation_equivalents"],
                     "total_simulation_equivalents_measured_cpu": b["total_simulation_equivalents_measured_cpu"]})
        print(f"mock {m}: {wall:.0f} s, {res.surrogate['linearisations']} linearisations "
              f"(steps {np.round(res.surrogate['steps_in_widths'], 2).tolist()}), R-hat {res.max_r_hat:.3f}, "
              f"div {res.divergences}, budget {b['total_simulation_equivalents']}, "
              f"M200 {np.median(draws['log10_m200']):.3f}+-{np.std(draws['log10_m200']):.3f}, "
              f"M_LMC {np.median(draws['m_lmc']):.3g}+-{np.std(draws['m_lmc']):.2g}", flush=True)
        fits[-1]["targets"] = {n: {"median": float(np.nanmedian(d)), "sd": float(np.nanstd(d)),
                                   "percentiles": np.nanpercentile(d, PERCENTILES).tolist(),
                                   "undefined_fraction": float(np.mean(~np.isfinite(d)))}
                               for n, d in draws.items()}
        if checkpoint is not None:
            checkpoint(_summary(quick, s, sv, survey, n_part, theta_ref, true, names, fits))
    return _summary(quick, s, sv, survey, n_part, theta_ref, true, names, fits, verbose=True)


def _summary(quick, s, sv, survey, n_part, theta_ref, true, names, fits, verbose=False) -> dict:
    """The record of the mocks done so far (module docstring), from each fit's sd and ``PERCENTILES``."""
    npe = json.loads(NPE_RECORD.read_text())["records"][0]["targets"] if not quick else {}
    per = {}
    for n in names:
        sd = np.array([f["targets"][n]["sd"] for f in fits])
        q = np.array([f["targets"][n]["percentiles"] for f in fits]).T  # (5, mocks)
        row = {"truth": true[n], "sigma_mean": float(sd.mean()), "sigma_sd_over_mocks": float(sd.std()),
               "truth_in_68": float(np.mean((q[1] <= true[n]) & (true[n] <= q[3]))),
               "truth_in_95": float(np.mean((q[0] <= true[n]) & (true[n] <= q[4]))),
               "median_mean_z": float(np.mean((q[2] - true[n]) / sd)),
               "half_68_over_sd": float(np.median((q[3] - q[1]) / 2 / sd)),
               "draws_undefined_fraction": float(np.mean([f["targets"][n]["undefined_fraction"] for f in fits]))}
        if n in npe:
            row["npe_sigma_mean"] = npe[n]["npe_sigma_mean"]
            row["npe_truth_in_68"] = npe[n]["truth_in_npe_68"]
            row["sigma_over_npe"] = row["sigma_mean"] / npe[n]["npe_sigma_mean"]
        per[n] = row
        if verbose:
            print(f"{n:>16s}: sigma {row['sigma_mean']:.4g} (NPE {row.get('npe_sigma_mean', float('nan')):.4g}, ratio "
                  f"{row.get('sigma_over_npe', float('nan')):.2f})  truth in 68 % {row['truth_in_68']:.2f}, in 95 % "
                  f"{row['truth_in_95']:.2f}, mean z {row['median_mean_z']:+.2f}", flush=True)
    budgets = np.array([f["total_simulation_equivalents"] for f in fits])
    measured = np.array([f["total_simulation_equivalents_measured_cpu"] for f in fits])
    npe_sims = NPE_SETTINGS["large"]["n_sims"]
    return {
        "n_mocks_done": len(fits),
        "settings": {**s, "survey_settings": {k: sv[k] for k in ("n_stars", "t_back", "dt", "df_r_min")},
                     "n_particles": n_part, "theta_ref": theta_ref.tolist(), "survey": dataclasses.asdict(survey)},
        "targets": per, "fits": fits,
        "max_r_hat": float(max(f["max_r_hat"] for f in fits)), "divergences": int(sum(f["divergences"] for f in fits)),
        "all_converged": bool(all(f["converged"] for f in fits)),
        "budget": {"per_observation_median": float(np.median(budgets)), "per_observation_max": int(budgets.max()),
                   "per_observation_median_measured_cpu": float(np.median(measured)),
                   "npe_suite_simulations": npe_sims,
                   "npe_over_linear_sl_median": float(npe_sims / np.median(budgets))},
    }


def run(setting: str = "full", checkpoint=None, done: list[dict] | None = None) -> list[dict]:
    print(device_name(), flush=True)
    return [closed_loop(setting, checkpoint, done)]


def fits_path(name: str = RESULT_NAME) -> Path:
    """Where :func:`write_record` writes the whole record of result ``name`` (every mock's fit)."""
    from benchmarks.common import device_slug, results_dir  # the same folder write_results uses

    return results_dir(None) / "linear_sl" / f"fits{name[len(RESULT_NAME):]}_{device_slug()}.json"


def resumable_fits(setting: str, path: Path) -> list[dict]:
    """The fits of the record at ``path`` (a run of ``setting`` stopped early) if it was made with the same
    settings; a ``ValueError`` naming the difference otherwise."""
    rec = json.loads(path.read_text())
    was = {k: v for k, v in rec["settings"].items() if k in SETTINGS[setting]}
    if was != SETTINGS[setting]:
        diff = sorted(k for k in set(was) | set(SETTINGS[setting]) if was.get(k) != SETTINGS[setting].get(k))
        raise ValueError(f"{path} was made with other settings ({', '.join(diff)}); cannot resume from it")
    return rec["fits"]


def write_record(rec: dict, wall_s: float, partial: bool = False, name: str = RESULT_NAME) -> Path:
    """Write the closed loop: one flat row per target (the table of ``benchmarks/results/README.md``) with the
    budget and diagnostics in ``meta``, and the whole record (settings, every mock's fit) beside it in
    ``benchmarks/results/linear_sl/fits_<device>.json``."""
    fits = fits_path(name)
    fits.parent.mkdir(parents=True, exist_ok=True)
    fits.write_text(json.dumps(rec, indent=1, default=float))
    rows = []
    for n, t in rec["targets"].items():
        # the scatter of z = (median - truth) / sd over the mocks: 1 for calibrated widths
        z = [(f["targets"][n]["median"] - t["truth"]) / f["targets"][n]["sd"] for f in rec["fits"]]
        rows.append({"target": n, **{k: v for k, v in t.items() if k != "draws_undefined_fraction"},
                     "median_z_scatter": float(np.std(z, ddof=1)) if len(z) > 1 else float("nan")})
    b = rec["budget"]
    meta = {"wall_s": wall_s, "partial": partial, "n_mocks": rec["n_mocks_done"],
            "simulations_per_observation": b["per_observation_median"],
            "npe_suite_simulations": b["npe_suite_simulations"], "npe_over_linear_sl": b["npe_over_linear_sl_median"],
            "max_r_hat": rec["max_r_hat"], "divergences": rec["divergences"],
            "gauss_newton_converged_all": rec["all_converged"],
            "settings": {k: v for k, v in rec["settings"].items() if k not in ("theta_ref", "survey")},
            "every_fit": f"linear_sl/{fits.name} (beside this record)",
            "note": "2 CPU cores; see the module docstring"}
    return write_results(name, rows, meta=meta)


if __name__ == "__main__":
    flags = script_flags(__doc__, ("--quick", "--refine", "--corrected", "--compressed", "--adjusted", "--resume"))
    resume = "--resume" in flags
    flags = [f for f in flags if f != "--resume"]
    quick, refine = "--quick" in flags, "--refine" in flags
    alone = [f for f in ("--corrected", "--compressed", "--adjusted") if f in flags]
    if alone and (len(flags) > 1):
        raise SystemExit(f"{alone[0]} runs the full closed loop alone")
    if resume and quick:
        raise SystemExit("--quick writes no record to resume from")
    setting = (alone[0][2:] if alone else ("quick" if quick else "full") if not refine
               else ("quick_refined" if quick else "refined"))
    name = RESULT_NAME + ("" if setting == "full" else f"_{setting}")  # (quick runs write no record)
    t_start = time.perf_counter()

    def checkpoint(rec: dict) -> None:
        """Write the mocks done so far (a long run that stops early keeps them)."""
        write_record(rec, time.perf_counter() - t_start, partial=True, name=name)

    done = None
    if resume:
        if not fits_path(name).exists():
            raise SystemExit(f"--resume: no record at {fits_path(name)}")
        try:
            done = resumable_fits(setting, fits_path(name))
        except ValueError as err:
            raise SystemExit(f"--resume: {err}") from None
        print(f"resuming after {len(done)} mocks of {fits_path(name)}", flush=True)
    recs = run(setting, None if quick else checkpoint, done)
    if quick:
        print(json.dumps(recs[0]["budget"]))
    else:
        print(f"wrote {write_record(recs[0], time.perf_counter() - t_start, name=name)}")
