"""``jaxhalo forecast``: what a halo survey will constrain -- a Fisher forecast through the differentiable simulator.

Writes into ``--out``:

* ``forecast.json``: the survey, the simulation settings, theta0, the forecast sigma and correlation
  matrix of the 12 parameters, sigma of M_MW(<50 kpc) and M_LMC(<50 kpc), the summaries ranked by
  information, timings and provenance;
* ``parameters.csv``: name, unit, fiducial value, forecast sigma, prior sigma, whether the parameter is
  prior-dominated (sigma > 0.5 x prior sigma) and the fraction of its information that is Monte Carlo
  noise of the Jacobian (full precision);
* ``summaries.csv``: the smooth summaries ranked by their information (nats lost without each);
* ``fisher.npz``: F, the Jacobian J (S x 12), the summaries' covariance C and their labels;
* ``forecast.png``: the 1- and 2-sigma ellipses of the physical parameters (unless ``--no-plots``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from pathlib import Path

from ..simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES, PARAMETER_UNITS
from ._console import add_verbosity
from ._console import info as say
from ._output import StagedOutput, check_output, strict_json
from ._provenance import command_provenance
from ._setup import setup_jax
from ._validate import SEED, InputError, check_order, float_range, int_range
from .simulate import PARAM_OPTIONS

__all__ = ["add_forecast_parser", "cmd_forecast"]

#: The parameters drawn in forecast.png (the LMC's sky position and velocity are measured, not forecast).
PLOTTED = ("log10_m200", "m_lmc", "log10_lambda_df", "beta0", "r_dens", "gamma")


def add_forecast_parser(sub) -> argparse.ArgumentParser:
    """Add the ``forecast`` subcommand to an argparse subparsers object."""
    s = sub.add_parser(
        "forecast",
        help="Fisher forecast of the MW and LMC masses, lambda_DF and the halo for a survey (gradients "
             "through the simulator)",
        description="Forecast what a halo survey constrains: F = J^T C^-1 J of the smooth Brooks et al. "
                    "summaries, J by forward-mode autodiff through the MW-LMC simulator (common random "
                    "numbers), C from independent simulations with the survey's errors. Cost: about "
                    "40 x --n-jacobian + --n-covariance simulations on a CPU (a 12-direction forward-mode "
                    "Jacobian costs ~40 simulations; the defaults: ~520, an hour or more on 2 CPU cores "
                    "at 4,500 stars and 2.2 Gyr; seconds per simulation on a GPU).",
    )
    g = s.add_argument_group("survey")
    g.add_argument("--n-stars", type=int_range(10), default=4500,
                   help="expected number of stars in the radial window (default 4500)")
    g.add_argument("--r-min", type=float_range(0.0), default=30.0, help="inner edge of the window in r_gal [kpc] (default 30)")
    g.add_argument("--r-max", type=float_range(0.0, lo_open=True), default=160.0,
                   help="outer edge of the window in r_gal [kpc] (default 160)")
    g.add_argument("--distance-error", type=float_range(0.0), default=0.10,
                   help="fractional distance error per star (default 0.10)")
    g.add_argument("--v-los-error", type=float_range(0.0), default=2.0, help="line-of-sight velocity error [km/s] (default 2)")
    g.add_argument("--pm-error", type=float_range(0.0), default=0.15,
                   help="proper-motion error per component [mas/yr] (default 0.15)")
    t = s.add_argument_group("fiducial parameters (Brooks et al. 2026 Table 1 names)")
    for opt, name, text in PARAM_OPTIONS:
        default = float(FIDUCIAL_THETA[PARAMETER_NAMES.index(name)])
        t.add_argument(opt, type=float, default=default, help=f"{text} (default {default:g})")
    m = s.add_argument_group("simulation and estimate")
    m.add_argument("--dt", type=float_range(0.0, lo_open=True), default=1.0, help="leapfrog step [Myr] (default 1)")
    m.add_argument("--t-back", type=float_range(0.0, lo_open=True), default=2200.0,
                   help="integration time [Myr] (default 2200)")
    m.add_argument("--n-jacobian", type=int_range(1), default=8,
                   help="common-random-number keys averaged in the Jacobian (default 8)")
    m.add_argument("--n-covariance", type=int_range(3), default=200,
                   help="independent simulations for the summaries' covariance; must exceed the number of "
                        "summaries + 2 (default 200)")
    m.add_argument("--df-r-min", type=float_range(0.0, lo_open=True), default=0.1,
                   help="inner radius [kpc] of the sampled tracer DF (default 0.1, the Brooks et al. model); tracers "
                        "born within a few kpc are not resolved by the leapfrog and their gradients blow up")
    m.add_argument("--jacobian-peri-min", type=float_range(0.0, lo_open=True), default=None, metavar="KPC",
                   help="cut the derivatives (not the values) of tracers whose orbit reaches within KPC of the centre "
                        "(SimConfig.tangent_peri_min): less Jacobian noise from unresolved plunging orbits, but a "
                        "biased J -- the DF shape parameters (beta0, r_dens, gamma) lose most of their information "
                        "(benchmarks/results/forecast_chaos/README.md); default off")
    m.add_argument("--covariance", choices=("auto", "sample", "ledoit-wolf"), default="auto",
                   help="estimator of the summaries' covariance: the Hartlap-debiased sample covariance (refused "
                        "for --n-covariance <= summaries + 2), Ledoit-Wolf shrinkage, or auto: sample when "
                        "--n-covariance >= 2 x summaries + 3, else shrinkage (default auto)")
    m.add_argument("--priors", choices=("table1", "normal", "none"), default="table1",
                   help="prior information added to F: every Table 1 prior (a uniform of width w as 12 / w^2), "
                        "only the normal priors of the LMC's distance, v_los and proper motions, or none "
                        "(default table1)")
    m.add_argument("--no-priors", action="store_true", help="the same as --priors none")
    s.add_argument("--seed", type=SEED, default=0, help="seeds the common random numbers and the covariance simulations")
    s.add_argument("--out", default="jaxhalo_forecast", help="output directory (written at the end; see --overwrite)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    s.add_argument("--no-plots", action="store_true", help="write no forecast.png")
    add_verbosity(s)
    s.set_defaults(func=cmd_forecast)
    return s


def _log(msg: str) -> None:
    say(f"[jaxhalo forecast] {msg}")


def cmd_forecast(args: argparse.Namespace) -> int:
    """Run the forecast described by ``args`` into ``args.out`` (options and ``--out`` checked before JAX loads)."""
    check_order(args.r_min, args.r_max, "--r-min", "--r-max")
    if args.dt > args.t_back:
        raise InputError(f"--dt {args.dt:g} Myr is longer than --t-back {args.t_back:g} Myr; give a smaller --dt")
    if args.r_max <= 30.0 or args.r_min >= 160.0:
        raise InputError(f"the window --r-min {args.r_min:g} --r-max {args.r_max:g} kpc misses the summaries' "
                         "30-160 kpc range")
    check_output(args.out, args.overwrite)
    with StagedOutput(args.out) as out:
        return _forecast(args, out)


def _forecast(args: argparse.Namespace, out: Path) -> int:
    """The body of :func:`cmd_forecast`, writing into the staging directory ``out``."""
    t_start = time.perf_counter()
    import jax  # deferred: the JAX stack loads only when the command runs

    setup_jax()
    import numpy as np  # deferred: with the JAX stack

    from ..sbi.fisher import FisherError
    from ..sbi.forecast import (
        Survey,
        particles_for_survey,
        survey_edges,
        survey_forecast,
    )
    from ..simulation import brooks as S
    from ..simulation.summaries import BROOKS_VGSR_EDGES

    theta = S.theta_from_dict({name: getattr(args, opt[2:].replace("-", "_")) for opt, name, _ in PARAM_OPTIONS})
    survey = Survey(n_stars=args.n_stars, r_min=args.r_min, r_max=args.r_max, distance_frac_err=args.distance_error,
                    v_los_err=args.v_los_error, pm_err=args.pm_error)
    config = S.SimConfig(dt=args.dt, t_back=args.t_back, r_min=args.df_r_min, tangent_peri_min=args.jacobian_peri_min)
    priors = "none" if args.no_priors else args.priors
    if not bool(S.parameter_valid(theta, config)):
        raise InputError("these parameters cannot be simulated (e.g. no c200 <= 100 gives v_c(R_sun) = 235 km/s "
                         "for log10 M200 below ~11.13); change --log10-m200")
    n_part = particles_for_survey(survey, theta, config)
    n_bins = len(survey_edges(survey, BROOKS_VGSR_EDGES)) - 1
    _log(f"survey: {survey.n_stars} stars in {survey.r_min:g}-{survey.r_max:g} kpc ({n_part} tracers simulated), "
         f"errors {survey.distance_frac_err:g} in distance, {survey.v_los_err:g} km/s, {survey.pm_err:g} mas/yr; "
         f"{n_bins} v_GSR bins")
    _log(f"Jacobian over {args.n_jacobian} keys (forward mode, 12 directions) and covariance from "
         f"{args.n_covariance} simulations of {args.t_back:g} Myr; compiling and running ...")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            fc = survey_forecast(survey, theta, jax.random.key(args.seed), config, n_jacobian=args.n_jacobian,
                                 n_covariance=args.n_covariance, priors=priors, covariance=args.covariance)
            F = fc.fisher
            rows = fc.parameter_table()
    except FisherError as exc:
        raise InputError(str(exc)) from exc
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    for n in notes:
        _log(f"warning: {n}")
    t_run = time.perf_counter() - t0
    _log(f"done in {t_run:.1f} s; C: {F.covariance_estimator} from {F.n_covariance} simulations of "
         f"{len(F.summary_labels)} summaries (Hartlap {F.hartlap:.3g}, shrinkage {F.shrinkage:.3g}); priors: {priors}")
    units = dict(zip(PARAMETER_NAMES, PARAMETER_UNITS)) | {"m_mw_50": "Msun", "m_lmc_50": "Msun"}
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        flag = "  prior-dominated" if r["prior_dominated"] else ""
        _log(f"  {r['name']:{width}s} = {r['theta0']:.6g} +- {r['sigma']:.3g} {units[r['name']]} "
             f"(prior sigma {r['prior_sigma']:.3g}){flag}")
    noisy = [r["name"] for r in rows if r["jacobian_noise"] > 0.5]
    if noisy:
        _log("warning: over half the information on " + ", ".join(noisy) + " is Monte Carlo noise of the Jacobian "
             "(per-key Jacobians disagree), so its sigma is too small (sigma_noise_subtracted in parameters.csv "
             "estimates it without that noise): use more --n-jacobian keys, a shorter --t-back or a larger --df-r-min")
    ranking = fc.information_ranking()
    _log("most informative summaries: " + ", ".join(f"{lab} ({nats:.2f} nats)" for lab, nats in ranking[:5]))

    lines = ["name,unit,theta0,sigma,prior_sigma,prior_dominated,jacobian_noise,sigma_noise_subtracted"] + [
        f"{r['name']},{units[r['name']]},{r['theta0']!r},{r['sigma']!r},{r['prior_sigma']!r},{r['prior_dominated']},"
        f"{r['jacobian_noise']!r},{r['sigma_noise_subtracted']!r}" for r in rows]
    (out / "parameters.csv").write_text("\n".join(lines) + "\n")
    (out / "summaries.csv").write_text("label,information_nats\n" + "".join(f"{lab},{v!r}\n" for lab, v in ranking))
    np.savez(out / "fisher.npz", fisher=F.fisher, jacobian=F.jacobian, summary_cov=F.summary_cov,
             labels=np.asarray(fc.summary_labels), names=np.asarray(F.names), theta0=F.theta0)
    if not args.no_plots:
        from ..plots import (
            fisher_ellipse_plot,  # deferred: matplotlib loads only when a figure is drawn
            save_figure,
        )

        idx = [PARAMETER_NAMES.index(n) for n in PLOTTED]
        scale = np.array([1e-11 if n == "m_lmc" else 1.0 for n in PLOTTED])  # M_LMC drawn in 1e11 Msun
        labels = [("m_lmc [1e11 Msun]" if n == "m_lmc" else f"{n} [{units[n]}]") if units[n] else n for n in PLOTTED]
        fig = fisher_ellipse_plot(F.theta0[idx] * scale, F.covariance[np.ix_(idx, idx)] * np.outer(scale, scale), labels)
        save_figure(fig, out / "forecast.png", 90)
        _log(f"plot: {Path(args.out) / 'forecast.png'}")
    info = {
        "survey": dataclasses.asdict(survey),
        "config": dataclasses.asdict(fc.config),
        "priors": priors,
        "n_jacobian": args.n_jacobian, "n_covariance": args.n_covariance, "seed": args.seed,
        "covariance": {"estimator": F.covariance_estimator, "hartlap": F.hartlap, "shrinkage": F.shrinkage,
                       "n_summaries": len(F.summary_labels), "dropped": [list(d) for d in F.dropped]},
        "parameters": {r["name"]: {"unit": units[r["name"]], **{k: v for k, v in r.items() if k != "name"}}
                       for r in rows},
        "prior_dominated": [r["name"] for r in rows if r["prior_dominated"]],
        "warnings": notes,
        "correlation": {"names": list(F.names), "matrix": F.correlation.tolist()},
        "summaries_by_information_nats": dict(ranking),
        "timings_s": {"forecast": t_run, "total": time.perf_counter() - t_start},
        "provenance": command_provenance("forecast", args),
    }
    (out / "forecast.json").write_text(strict_json(info, indent=2, default=float))
    _log(f"wrote {args.out}/: forecast.json parameters.csv summaries.csv fisher.npz"
         + ("" if args.no_plots else " forecast.png") + f" in {info['timings_s']['total']:.1f} s")
    return 0

