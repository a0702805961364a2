"""``jaxhalo fit``: the reflex-motion (travel velocity) fit of a catalogue, written with plots and diagnostics."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..catalog.checks import (
    SOLAR_GEOMETRY,
    DataWarning,
    InsufficientStarsError,
    check_enough_stars,
    check_plausible,
    galactocentric_radius,
)
from ._output import StagedOutput, check_output, strict_json
from ._setup import EXAMPLE_CATALOG, load_catalog, markdown_table, setup_jax
from ._validate import SEED, check_order, float_range, int_range

__all__ = ["N_PARAMETERS", "add_fit_parser", "cmd_fit", "precheck_fit"]


#: Free parameters of each radial form (any apex parameterisation); the tests compare with ReflexModel.
N_PARAMETERS = {"constant": 9, "continuity": 18}


def add_fit_parser(sub) -> None:
    """Add the ``fit`` subcommand to the CLI's subparsers."""
    f = sub.add_parser("fit", help="fit the reflex-motion (travel velocity) model with NUTS")
    f.add_argument("catalog", nargs="?", default=None, help="star catalogue (ECSV, FITS, CSV, Parquet; default: the bundled example)")
    f.add_argument("--format", default=None, help="file format: astropy format name, or 'peer-t' / 'peer-h' for the PP21/YPP24 layouts")
    f.add_argument("--model", choices=["constant", "continuity"], default="continuity")
    f.add_argument("--apex", choices=["galactic", "ms", "cartesian"], default="ms")
    f.add_argument("--priors", choices=["chandra", "reference"], default="chandra")
    f.add_argument("--anchors", type=float_range(0.0, lo_open=True), nargs=2, default=(40.0, 120.0), metavar=("R_IN", "R_OUT"))
    f.add_argument("--reference", action="store_true", help="reflexcalc conventions (Sun at -8.3 kpc untilted, k=4.74057, catalogue xyz, D' quirk)")
    f.add_argument("--r-min", type=float_range(0.0), default=None, help="keep stars with r_gal above this (kpc)")
    f.add_argument("--r-max", type=float_range(0.0, lo_open=True), default=None, help="keep stars with r_gal below this (kpc)")
    f.add_argument("--no-clip", action="store_true", help="skip the ML fit + 3-sigma clipping (same as --n-clip 0)")
    f.add_argument("--n-clip", type=int_range(0, 100), default=5, help="rounds of 3-sigma clipping (0: none)")
    f.add_argument("--chains", type=int_range(1, 256), default=4)
    f.add_argument("--warmup", type=int_range(1), default=500)
    f.add_argument("--samples", type=int_range(1), default=1000)
    f.add_argument("--seed", type=SEED, default=0)
    f.add_argument("--out", default="jaxhalo_fit", help="output directory (written at the end; see --overwrite)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    f.add_argument("--force", action="store_true",
                   help="fit even with fewer stars than 2 per parameter or implausible values (a warning instead of an error)")
    f.add_argument("--no-progress", action="store_true")
    f.add_argument("--sequential-chains", dest="parallel_chains", action="store_false",
                   help="on a CPU, run the chains one after another instead of in parallel threads (one XLA host device per chain)")
    f.add_argument("--no-cache", action="store_true", help="do not use the persistent XLA compilation cache (see JAXHALO_CACHE_DIR)")
    f.set_defaults(func=cmd_fit)


def _say_warnings(caught) -> None:
    for w in caught:
        print(f"[jaxhalo fit] WARNING: {w.message}", file=sys.stderr)


def precheck_fit(args: argparse.Namespace):
    """Everything ``fit`` checks before the JAX stack loads: options, ``--out``, the catalogue, the
    plausibility of its values and the minimum-data rule after the r_gal cut. Returns the catalogue,
    the truth path (bundled example) and the (N,) mask of the cut (None without a cut)."""
    check_order(args.r_min, args.r_max, "--r-min", "--r-max")
    check_order(args.anchors[0], args.anchors[1], "--anchors R_IN", "R_OUT")
    check_output(args.out, args.overwrite)
    cat, truth_path = load_catalog(args.catalog, args.format)
    source = args.catalog or EXAMPLE_CATALOG.name
    n_params = N_PARAMETERS[args.model]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        if len(cat) == 0:
            raise InsufficientStarsError(f"catalogue {source} holds no stars (a header only?)")
        check_plausible(cat, force=args.force)
        check_enough_stars(len(cat), n_params, f"in catalogue {source}", force=args.force)
        keep = None
        if args.r_min is not None or args.r_max is not None:
            r = galactocentric_radius(cat, *SOLAR_GEOMETRY["reference" if args.reference else "default"])
            keep = np.ones(len(cat), bool)
            parts = []
            if args.r_min is not None:
                keep &= r > args.r_min
                parts.append(f"--r-min {args.r_min:g}")
            if args.r_max is not None:
                keep &= r < args.r_max
                parts.append(f"--r-max {args.r_max:g}")
            check_enough_stars(int(keep.sum()), n_params,
                               f"remain after the r_gal cut {' '.join(parts)} ({len(cat) - int(keep.sum())} of {len(cat)} "
                               f"removed; r_gal spans {r.min():.1f}-{r.max():.1f} kpc)", force=args.force)
    _say_warnings(caught)
    return cat, truth_path, keep


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the reflex model to a catalogue with NUTS and write results into ``--out``."""
    t_start = time.perf_counter()
    cat, truth_path, _ = precheck_fit(args)
    jax_setup = setup_jax(host_devices=args.chains if args.parallel_chains else 1, cache=not args.no_cache)
    import jax  # deferred: the JAX stack loads only when the command runs

    from ..catalog.cuts import cut_r_gal
    from ..frames import SolarParameters
    from ..inference.priors import PriorSet
    from ..inference.reflex_fit import fit_reflex
    from ..likelihoods.reflex import ReflexData, ReflexModel

    print(f"[jaxhalo fit] catalogue: {args.catalog or EXAMPLE_CATALOG.name + ' (bundled example)'}: {len(cat)} stars")
    solar = SolarParameters.reference() if args.reference else SolarParameters()
    if args.r_min is not None or args.r_max is not None:
        cat, report = cut_r_gal(cat, args.r_min, args.r_max, solar=solar)
        print(f"[jaxhalo fit] {report}")
    spec = ReflexModel(args.model, args.apex, anchors=(args.anchors[0], args.anchors[1]))
    data = ReflexData.from_catalog(cat, reference=args.reference)
    priors = PriorSet(kind=args.priors)
    clip = not args.no_clip and args.n_clip > 0
    print(f"[jaxhalo fit] model: {args.model} ({len(spec.param_names)} parameters), apex: {args.apex}, priors: {args.priors}")
    print(f"[jaxhalo fit] ML fit + {args.n_clip if clip else 0} rounds of 3-sigma clipping, then NUTS "
          f"({args.chains} chains x {args.warmup} warm-up + {args.samples} draws), seed {args.seed}")
    radii = (40.0, 50.0, 100.0, 120.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        res = fit_reflex(
            data, spec, priors, key=jax.random.PRNGKey(args.seed), clip=clip, n_clip=args.n_clip,
            num_chains=args.chains, num_warmup=args.warmup, num_samples=args.samples, radii=radii,
            progress_bar=not args.no_progress, verbose=True, force=args.force,
        )
    _say_warnings(caught)
    total = time.perf_counter() - t_start
    table = res.table
    for c in ("p16", "p50", "p84", "minus", "plus", "r_hat", "ess_bulk", "ess_tail"):
        table[c].info.format = ".3f" if c == "r_hat" else ".1f"
    print()
    table.pprint(max_lines=-1, max_width=-1)
    print()
    print(f"[jaxhalo fit] stars used: {int(res.weight.sum())} of {len(cat)} (clipped per round: {res.n_clipped})")
    print(f"[jaxhalo fit] max R-hat {res.max_r_hat:.4f}, min bulk ESS {res.min_ess_bulk:.0f}, divergences {res.n_divergent}")
    print(f"[jaxhalo fit] time: ML+clipping {res.timings['map_clip_s']:.1f} s, NUTS {res.timings['nuts_s']:.1f} s, total {total:.1f} s")

    with StagedOutput(args.out) as out:
        _write_products(out, args, res, spec, data, cat, truth_path, jax_setup, total)
    print(f"[jaxhalo fit] wrote {args.out}/: posterior.nc summary.csv summary.md corner.png vtravel_profile.png apex_sky.png diagnostics.json")
    ok = res.max_r_hat < 1.01 and res.n_divergent == 0
    if not ok:
        print("[jaxhalo fit] WARNING: R-hat >= 1.01 or divergent transitions; run longer chains or check the model.")
    return 0


def _write_products(out: Path, args: argparse.Namespace, res, spec, data, cat, truth_path, jax_setup: dict,
                    total: float) -> None:
    """Write posterior.nc, the summary tables, the figures and diagnostics.json into ``out``."""
    import jax  # deferred: loaded by cmd_fit already
    import jax.numpy as jnp

    from ..inference.results import physical_parameters
    from ..plots import apex_sky_plot, corner_plot, vtravel_profile_plot

    table = res.table
    res.idata.to_netcdf(str(out / "posterior.nc"))
    table.write(out / "summary.csv", format="ascii.csv", overwrite=True)
    (out / "summary.md").write_text(markdown_table(table))
    truth = None
    if truth_path is not None and Path(truth_path).exists():
        info = json.loads(Path(truth_path).read_text())
        if info["spec"]["form"] == spec.form and info["spec"]["apex"] == spec.apex:
            truth = info["truth"]
    post = {k: np.asarray(res.idata.posterior[k]) for k in res.idata.posterior.data_vars}
    phys_names = list(physical_parameters(spec, {n: np.zeros(()) for n in spec.param_names}))
    phys_truth = None
    if truth is not None:
        phys_truth = {k: float(v) for k, v in physical_parameters(spec, {k: jnp.asarray(v) for k, v in truth.items()}).items()}
    fig = corner_plot(post, phys_names, truths=phys_truth)
    fig.savefig(out / "corner.png", dpi=80)
    r_data = np.asarray(data.r_gal)[np.asarray(data.weight) > 0]
    fig = vtravel_profile_plot(spec, post, truth=truth, r_data=r_data)
    fig.savefig(out / "vtravel_profile.png", dpi=120)
    apex = {f"r = {R:g} kpc": (post[f"apex_l_r{R:g}"], post[f"apex_b_r{R:g}"]) for R in (50.0, 100.0)}
    fig = apex_sky_plot(apex)
    fig.savefig(out / "apex_sky.png", dpi=120)
    diag = {
        "n_stars": len(cat), "n_used": int(res.weight.sum()), "n_clipped": res.n_clipped,
        "max_r_hat": res.max_r_hat, "min_ess_bulk": res.min_ess_bulk, "divergences": res.n_divergent,
        "timings_s": {**res.timings, "total": total}, "model": args.model, "apex": args.apex, "priors": args.priors,
        "seed": args.seed, "chains": args.chains, "warmup": args.warmup, "samples": args.samples,
        "jax_setup": jax_setup, "devices": [str(d) for d in jax.devices()],
    }
    (out / "diagnostics.json").write_text(strict_json(diag, indent=2))
