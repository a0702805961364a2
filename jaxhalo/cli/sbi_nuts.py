"""``jaxhalo sbi nuts OBSERVED``: the posterior of the simulator parameters from an observed summary vector by NUTS
on a Gaussian synthetic likelihood of the smooth summaries (:mod:`jaxhalo.sbi.nuts_sl` does the work).

Writes into ``--out``:

* ``posterior.nc``: arviz InferenceData with the same variables, units and descriptions as ``sbi infer``'s
  (the free parameters, the derived masses when M200 and M_LMC are free, the observed summaries by label),
  ``sample_stats.diverging``, and the provenance as the attribute ``jaxhalo_provenance``;
* ``summary.csv`` / ``summary.md``: mean, sd, 2.5/16/50/84/97.5 % quantiles, R-hat, bulk/tail ESS per variable;
* ``diagnostics.json``: R-hat, ESS, divergences, the convergence verdict, wall time per stage, the simulation
  budget in simulation equivalents (and how it is counted), the settings and the provenance;
* ``corner.png`` (unless ``--no-plots``).
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path

import numpy as np

from ..simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES
from ._console import (
    EXIT_NOT_CONVERGED,
    add_verbosity,
    convergence_exit,
    convergence_problems,
    detail,
    info,
)
from ._corner import write_corner
from ._output import StagedOutput, check_output, strict_json
from ._provenance import WallClock, command_provenance
from ._setup import setup_jax
from ._summary_files import order_summaries, read_summary_file
from ._validate import SEED, InputError, float_range, int_range
from .simulate import PARAM_OPTIONS

__all__ = ["R_HAT_LIMIT", "add_sbi_nuts_parser", "cmd_sbi_nuts"]

#: ``--strict``: max split R-hat below this and no divergent transition (the issue's convergence criteria).
R_HAT_LIMIT = 1.01

#: Summaries of both simulators (the 52 Brooks et al. 2026 summaries; the toy's default length).
N_SUMMARIES = 52


def add_sbi_nuts_parser(ss) -> argparse.ArgumentParser:
    """Add ``nuts`` to the ``sbi`` subparsers."""
    n = ss.add_parser(
        "nuts", help="posterior for an observed summary vector by NUTS on a synthetic likelihood (gradients through "
                     "the simulator)",
        description="Posterior of the simulator parameters from an observed summary vector: NUTS over the Table 1 "
                    "priors on the Gaussian synthetic likelihood N(x; mu_K(theta), (1 + 1/K) C) of the smooth "
                    "summaries, mu_K the mean of K simulations with fixed keys (common random numbers, so that mu_K "
                    "is differentiable; forward-mode gradients), C from --n-cov simulations at the reference theta "
                    "(the --log10-m200 ... --gamma options; Hartlap-debiased) and held fixed: a stated approximation. "
                    "Cost: --n-cov simulations + (gradient evaluations) x K x (1 + free parameters) simulation "
                    "equivalents, written to diagnostics.json (measured on the linear-Gaussian toy with every parameter "
                    "free and these defaults: 8e6, against the 32,000 simulations of an NPE suite; free fewer "
                    "parameters with --params).")
    n.add_argument("observed", help="observed summaries: .npy, .json, text, or a table with a 'value' column (the "
                                    "summaries.ecsv of `jaxhalo simulate`, put into the simulator's order by its labels)")
    n.add_argument("--simulator", default="brooks", choices=["brooks", "linear-gaussian"],
                   help="'brooks': the smooth summaries of the MW-LMC simulator; 'linear-gaussian': the suite's cheap "
                        "toy with a known likelihood (52 summaries)")
    n.add_argument("--prior", default="brooks2026", choices=["brooks2026", "brooks2025"],
                   help="parameter priors: Brooks et al. 2026 or 2025 Table 1")
    n.add_argument("--params", nargs="+", default=None, metavar="NAME",
                   help="parameters to sample (default: every parameter the prior varies); the others are fixed at "
                        "the reference theta")
    s = n.add_argument_group("simulation (brooks simulator)")
    s.add_argument("--n-particles", type=int_range(1), default=20_000, help="halo tracer particles per simulation")
    s.add_argument("--dt", type=float_range(0.0, lo_open=True), default=1.0, help="leapfrog step [Myr]")
    s.add_argument("--t-back", type=float_range(0.0, lo_open=True), default=2200.0, help="integration time [Myr]")
    s.add_argument("--disc", default="exact", choices=["exact", "miyamoto-nagai"],
                   help="Milky Way disc: the exact sech^2 exponential disc or its faster Miyamoto-Nagai-sum fit")
    t = n.add_argument_group("reference theta (the covariance; parameters left out of --params are fixed here; "
                             "a parameter the prior fixes takes the prior's value)")
    for opt, name, text in PARAM_OPTIONS:
        t.add_argument(opt, type=float, default=float(FIDUCIAL_THETA[PARAMETER_NAMES.index(name)]), help=text)
    g = n.add_argument_group("synthetic likelihood")
    g.add_argument("--n-keys", type=int_range(1), default=8,
                   help="K: common-random-number keys (simulations) averaged in the mean at every theta")
    g.add_argument("--n-cov", type=int_range(3), default=200,
                   help="simulations at the reference theta for the covariance (more than the 52 summaries + 4; "
                        "C is widened for its own noise by Percival et al. 2014's factor m1)")
    g.add_argument("--mean", default="simulator", choices=["simulator", "linear"],
                   help="'simulator': the mean of K simulations at every theta NUTS visits (K (1 + free parameters) "
                        "simulation equivalents per gradient); 'linear': a local-linear surrogate of it placed by "
                        "Gauss-Newton from the reference theta (jaxhalo.sbi.surrogate; ~K (1 + 2 x free) simulations "
                        "per linearisation, C estimated again at its centre, NUTS then costs none): an approximation "
                        "for posteriors narrow compared with the scale on which the summaries bend")
    g.add_argument("--slopes", default="secant", choices=["secant", "tangent"],
                   help="with --mean linear: central secants over the posterior's width (default; robust to the "
                        "simulator's noisy tangents) or forward-mode tangents")
    g.add_argument("--n-linearisations", type=int_range(1), default=4,
                   help="with --mean linear: at most this many Gauss-Newton linearisations")
    g.add_argument("--refine-keys", type=int_range(0), default=0,
                   help="with --mean linear: K' > 0 linearises once more at the placement's mode with K' fresh keys "
                        "(C estimated there; K' (1 + 2 x free) more simulations), and NUTS samples that")
    g.add_argument("--compression", default="none", choices=["none", "score"],
                   help="with --refine-keys: 'score' samples the likelihood of one compressed summary per free "
                        "parameter (onto the placement's slopes; jaxhalo.sbi.compression), so the refinement's "
                        "slope noise does not add up over every summary; no extra simulations")
    g.add_argument("--slope-adjustment", default="none", choices=["none", "godambe"],
                   help="with --mean linear (secants, K >= 2): 'godambe' samples the likelihood whose information "
                        "is corrected for the slopes' Monte Carlo noise, estimated from their scatter over keys "
                        "(jaxhalo.sbi.surrogate); no extra simulations")
    m = n.add_argument_group("NUTS")
    m.add_argument("--chains", type=int_range(1, 256), default=4, help="NUTS chains (run side by side, vmapped)")
    m.add_argument("--warmup", type=int_range(0), default=500, help="NUTS warm-up iterations per chain")
    m.add_argument("--samples", type=int_range(1), default=500, help="NUTS draws per chain")
    m.add_argument("--target-accept", type=float_range(0.0, 1.0, lo_open=True, hi_open=True), default=0.85,
                   help="target acceptance probability of the step-size adaptation")
    m.add_argument("--max-tree-depth", type=int_range(1, 15), default=10, help="NUTS maximum tree depth")
    m.add_argument("--init", default="prior", choices=["prior", "reference"],
                   help="chain starts: numpyro's uniform draws in the unconstrained space (dispersed, what R-hat "
                        "needs) or every chain at the reference theta")
    n.add_argument("--seed", type=SEED, default=0, help="random seed (covariance simulations, common random numbers, chains)")
    n.add_argument("--out", default="jaxhalo_sbi_nuts", metavar="DIR", help="output directory (written at the end; see --overwrite)")
    n.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    n.add_argument("--strict", action="store_true",
                   help=f"exit with code {EXIT_NOT_CONVERGED} (results still written) when max R-hat >= {R_HAT_LIMIT} (2 chains or more) "
                        "or any transition after warm-up diverged (without it: a warning and exit code 0)")
    n.add_argument("--no-plots", action="store_true", help="write no corner.png")
    n.add_argument("--no-progress", action="store_true", help="no progress bars (covariance simulations, NUTS iterations)")
    add_verbosity(n)
    n.set_defaults(func=cmd_sbi_nuts, command_label="sbi nuts")
    return n


def _log(msg: str) -> None:
    info(f"[jaxhalo sbi nuts] {msg}")


def cmd_sbi_nuts(args: argparse.Namespace) -> int:
    """Run ``jaxhalo sbi nuts`` (module docstring); returns the exit code."""
    clock = WallClock()
    if args.dt > args.t_back:
        raise InputError(f"--dt {args.dt:g} Myr is longer than --t-back {args.t_back:g} Myr; give a smaller --dt")
    check_output(args.out, args.overwrite)
    x, labels = read_summary_file(args.observed)
    if x.size != N_SUMMARIES:
        raise InputError(f"the summary vector in {args.observed} has {x.size} entries; the {args.simulator} simulator "
                         f"gives {N_SUMMARIES} summaries")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise InputError(f"the summary vector in {args.observed} has non-finite entries at {bad[:8].tolist()} (e.g. empty "
                         "bins); the synthetic likelihood needs every summary")
    clock.mark("start-up + input checks")
    jax_setup = setup_jax()
    import jax  # deferred: the JAX stack loads only when the command runs

    from ..sbi.fisher import FisherError
    from ..sbi.nuts_sl import (
        SyntheticLikelihoodError,
        fix_parameters,
        smooth_simulator,
        synthetic_posterior,
    )
    from ..sbi.priors import get_prior
    from ..sbi.simulators import linear_gaussian_simulator
    from ..simulation.summaries import BROOKS_SUMMARY_LABELS

    x = order_summaries(x, labels, BROOKS_SUMMARY_LABELS)  # a labelled file (summaries.ecsv) into the simulator's order
    if labels is not None and sorted(labels) == sorted(BROOKS_SUMMARY_LABELS) or args.simulator == "brooks":
        labels = list(BROOKS_SUMMARY_LABELS)
    base = get_prior(args.prior)
    theta_ref = np.array([getattr(args, opt[2:].replace("-", "_")) for opt, _, _ in PARAM_OPTIONS], dtype=float)
    lo, hi = base.bounds
    theta_ref = np.where(lo == hi, lo, theta_ref)  # a parameter the prior fixes (brooks2025's gamma) takes its value
    base.check_theta(theta_ref)
    if args.params is not None:
        fixed_by_prior = [p for p in args.params if p in base.names and lo[base.names.index(p)] == hi[base.names.index(p)]]
        if fixed_by_prior:
            raise InputError(f"--params {' '.join(fixed_by_prior)}: fixed by the prior {args.prior}")
    prior = fix_parameters(base, theta_ref, args.params)
    config = None
    if args.simulator == "brooks":
        from ..simulation.brooks import SimConfig, parameter_valid

        config = SimConfig(n_particles=args.n_particles, dt=args.dt, t_back=args.t_back, disc=args.disc)
        if not bool(parameter_valid(jax.numpy.asarray(theta_ref), config)):
            raise InputError("the reference theta cannot be simulated (e.g. no c200 <= 100 gives v_c(R_sun) = 235 km/s "
                             "for log10 M200 below ~11.13); change --log10-m200")
        simulate, sim_record = smooth_simulator(config), {"name": "brooks (smooth summaries)",
                                                          "config": _config_record(config)}
    else:
        toy = linear_gaussian_simulator(base)
        simulate, sim_record = toy.fn, {"name": toy.name, "config": dict(toy.config)}
    free = [nm for nm, a, b in zip(prior.names, *prior.bounds) if a != b]
    clock.mark("JAX start-up + set-up")
    detail(f"[jaxhalo sbi nuts] JAX {jax.__version__}, devices {jax.devices()}, setup {jax_setup}")
    _log(f"{args.simulator} simulator, prior {args.prior}; sampling {len(free)} parameters: {', '.join(free)}")
    _log(f"covariance from {args.n_cov} simulations at the reference theta; mean over K = {args.n_keys} fixed keys; "
         f"NUTS {args.chains} chains x ({args.warmup} warm-up + {args.samples} draws), seed {args.seed}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # arviz's R-hat of very short chains divides by zero
            res = synthetic_posterior(
                prior, simulate, x, jax.random.key(args.seed), theta_ref, n_keys=args.n_keys, n_cov=args.n_cov,
                num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains,
                target_accept_prob=args.target_accept, max_tree_depth=args.max_tree_depth, init=args.init,
                mean=args.mean, slopes=args.slopes, n_linearisations=args.n_linearisations,
                refine_keys=args.refine_keys, compression=args.compression, slope_adjustment=args.slope_adjustment,
                progress=not args.no_progress)
    except (SyntheticLikelihoodError, FisherError) as exc:
        raise InputError(str(exc)) from exc
    for stage in ("covariance_compile", "covariance", "surrogate", "covariance_recentred", "nuts_compile", "nuts"):
        if stage in res.timings_s:
            clock.parts[stage.replace("_", " ")] = res.timings_s[stage]
    clock.mark("sampling")
    del clock.parts["sampling"]  # = the stages above (and the diagnostics)
    budget = res.budget()
    problems = convergence_problems(res.max_r_hat if args.chains > 1 else None, res.divergences, r_hat_limit=R_HAT_LIMIT)
    _log(f"max R-hat {res.max_r_hat:.4f}, min bulk ESS {res.min_ess_bulk:.0f}, divergences {res.divergences}; "
         f"{budget['gradient_evaluations']} gradient evaluations, {budget['total_simulation_equivalents']:.4g} simulation "
         f"equivalents in all ({budget['covariance_simulations']} for the covariance)")
    if res.surrogate is not None:
        sg = res.surrogate
        _log(f"linear surrogate: {sg['linearisations']} linearisations ({sg['slopes']} slopes), "
             f"{'converged' if sg['converged'] else 'NOT converged (raise --n-linearisations)'}, "
             f"{sg['simulations']} simulations + {sg['tangents']} tangents")
        if not sg["converged"]:
            problems.append(f"the linear surrogate did not converge in {sg['linearisations']} linearisations")
    provenance = command_provenance("sbi nuts", args, [args.observed], simulator=sim_record, prior=prior.describe())
    with StagedOutput(args.out) as out:
        rows = _write_posterior(out, args, res, x, labels, provenance)
        for r in rows:
            _log(f"  {r['name']:>20s}: {r['p50']:.4g}  (-{r['p50'] - r['p16']:.3g} / +{r['p84'] - r['p50']:.3g}) {r['unit']}")
        clock.mark("writing")
        diag = {
            "method": "NUTS on a Gaussian synthetic likelihood of the smooth summaries (jaxhalo.sbi.nuts_sl)"
                      + ("; the mean linearised by Gauss-Newton (jaxhalo.sbi.surrogate)" if res.surrogate else ""),
            "mean": args.mean, "surrogate": res.surrogate,
            "observed_file": str(args.observed), "simulator": sim_record, "prior": args.prior,
            "free_parameters": list(res.free),
            "fixed_parameters": {nm: float(res.theta_ref[i]) for i, nm in enumerate(res.names) if nm not in res.free},
            "theta_ref": dict(zip(res.names, res.theta_ref.tolist())),
            "covariance": {"n_simulations": res.n_cov_run, "hartlap_factor": res.hartlap,
                           "percival_factor": res.covariance_factor,
                           "approximation": "C estimated once at theta_ref and held fixed over the posterior"
                           if res.surrogate is None or not res.surrogate["recentred_covariance_simulations"] else
                           "C estimated at theta_ref, again at the linear surrogate's centre, and held fixed"},
            "n_keys": args.n_keys, "seed": args.seed,
            "nuts": {"chains": args.chains, "warmup": args.warmup, "samples": args.samples,
                     "target_accept": args.target_accept, "max_tree_depth": args.max_tree_depth, "init": args.init,
                     "dense_mass": True, "forward_mode_differentiation": True},
            "max_r_hat": res.max_r_hat, "min_ess_bulk": res.min_ess_bulk, "divergences": res.divergences,
            "r_hat": res.r_hat, "ess_bulk": res.ess_bulk, "ess_tail": res.ess_tail,
            "convergence": {"ok": not problems, "problems": problems, "r_hat_limit": R_HAT_LIMIT,
                            "divergences_allowed": 0},
            "simulation_budget": budget,
            "timings_s": {**clock.parts, "total_wall_until_diagnostics": clock.total()},
            "jax_setup": jax_setup, "provenance": provenance,
        }
        (out / "diagnostics.json").write_text(strict_json(diag, indent=2))
    _log(f"wrote {args.out}/: posterior.nc summary.csv summary.md diagnostics.json" + ("" if args.no_plots else " corner.png"))
    _log(f"time: {clock.line()}")
    return convergence_exit(problems, args.strict, "sbi nuts",
                            "run longer chains (--warmup/--samples) or use more keys (--n-keys)")


def _config_record(config) -> dict:
    """Every field of a SimConfig, as written to diagnostics.json."""
    return dataclasses.asdict(config)


def _write_posterior(out: Path, args: argparse.Namespace, res, x: np.ndarray, labels, provenance: dict) -> list[dict]:
    """posterior.nc, summary.csv, summary.md and corner.png into ``out``; returns the summary rows."""
    import arviz as az  # deferred: loaded with the JAX stack
    from astropy.table import Table

    from ..sbi.derived import derived_masses
    from ..sbi.npe import posterior_inference_data
    from ._setup import markdown_table

    names = list(res.free)
    draws = res.free_draws  # (chains, draws, P_free)
    derived = derived_masses(draws, names) if {"log10_m200", "m_lmc"} <= set(names) else {}
    idata = posterior_inference_data(draws, names, derived=derived, x_obs=x, summary_labels=labels)
    idata.add_groups({"sample_stats": {"diverging": res.diverging}})
    idata.posterior.attrs.update(method="sbi nuts: NUTS on a Gaussian synthetic likelihood", summary_file=str(args.observed),
                                 jaxhalo_provenance=strict_json(provenance), command_line=provenance["command_line"])
    idata.to_netcdf(str(out / "posterior.nc"))
    post = {k: np.asarray(idata.posterior[k]) for k in idata.posterior.data_vars}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ds = az.convert_to_dataset(post)
        r_hat, ess_b, ess_t = (az.rhat(ds) if draws.shape[0] > 1 else None), az.ess(ds, method="bulk"), az.ess(ds, method="tail")
    rows = []
    for k, v in post.items():
        q = np.nanpercentile(v, [2.5, 16, 50, 84, 97.5])
        rows.append({"name": k, "unit": idata.posterior[k].attrs.get("units", ""), "mean": float(np.nanmean(v)), "sd": float(np.nanstd(v)),
                     "p2.5": q[0], "p16": q[1], "p50": q[2], "p84": q[3], "p97.5": q[4],
                     "r_hat": float(r_hat[k]) if r_hat is not None else float("nan"),
                     "ess_bulk": float(ess_b[k]), "ess_tail": float(ess_t[k])})
    table = Table(rows=rows, names=list(rows[0]))
    table.write(out / "summary.csv", format="ascii.csv", overwrite=True)
    for c in table.colnames[2:]:
        table[c].info.format = ".3f" if c == "r_hat" else ".0f" if c.startswith("ess") else ".4g"
    (out / "summary.md").write_text(
        "Posterior of `jaxhalo sbi nuts` (NUTS on a Gaussian synthetic likelihood): mean, sd and 2.5/16/50/84/97.5 % "
        "quantiles in the unit of each row, split R-hat and bulk/tail ESS.\n\n" + markdown_table(table))
    if not args.no_plots:
        write_corner(out / "corner.png", post, names, derived)
    return rows
