"""``jaxhalo fit``: the reflex-motion (travel velocity) fit of a catalogue, written with plots and diagnostics."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ._setup import EXAMPLE_CATALOG, load_catalog, markdown_table, setup_jax

__all__ = ["add_fit_parser", "cmd_fit"]


def add_fit_parser(sub) -> None:
    """Add the ``fit`` subcommand to the CLI's subparsers."""
    f = sub.add_parser("fit", help="fit the reflex-motion (travel velocity) model with NUTS")
    f.add_argument("catalog", nargs="?", default=None, help="star catalogue (ECSV, FITS, CSV, Parquet; default: the bundled example)")
    f.add_argument("--format", default=None, help="file format: astropy format name, or 'peer-t' / 'peer-h' for the PP21/YPP24 layouts")
    f.add_argument("--model", choices=["constant", "continuity"], default="continuity")
    f.add_argument("--apex", choices=["galactic", "ms", "cartesian"], default="ms")
    f.add_argument("--priors", choices=["chandra", "reference"], default="chandra")
    f.add_argument("--anchors", type=float, nargs=2, default=(40.0, 120.0), metavar=("R_IN", "R_OUT"))
    f.add_argument("--reference", action="store_true", help="reflexcalc conventions (Sun at -8.3 kpc untilted, k=4.74057, catalogue xyz, D' quirk)")
    f.add_argument("--r-min", type=float, default=None, help="keep stars with r_gal above this (kpc)")
    f.add_argument("--r-max", type=float, default=None, help="keep stars with r_gal below this (kpc)")
    f.add_argument("--no-clip", action="store_true", help="skip the ML fit + 3-sigma clipping")
    f.add_argument("--n-clip", type=int, default=5)
    f.add_argument("--chains", type=int, default=4)
    f.add_argument("--warmup", type=int, default=500)
    f.add_argument("--samples", type=int, default=1000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", default="jaxhalo_fit")
    f.add_argument("--no-progress", action="store_true")
    f.add_argument("--sequential-chains", dest="parallel_chains", action="store_false",
                   help="on a CPU, run the chains one after another instead of in parallel threads (one XLA host device per chain)")
    f.add_argument("--no-cache", action="store_true", help="do not use the persistent XLA compilation cache (see JAXHALO_CACHE_DIR)")
    f.set_defaults(func=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the reflex model to a catalogue with NUTS and write results into ``--out``."""
    jax_setup = setup_jax(host_devices=args.chains if args.parallel_chains else 1, cache=not args.no_cache)
    import jax  # deferred: the JAX stack loads only when the command runs
    import numpy as np

    from ..catalog.cuts import cut_r_gal
    from ..frames import SolarParameters
    from ..inference.priors import PriorSet
    from ..inference.reflex_fit import fit_reflex
    from ..inference.results import physical_parameters
    from ..likelihoods.reflex import ReflexData, ReflexModel
    from ..plots import apex_sky_plot, corner_plot, vtravel_profile_plot

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    cat, truth_path = load_catalog(args.catalog, args.format)
    print(f"[jaxhalo fit] catalogue: {args.catalog or EXAMPLE_CATALOG.name + ' (bundled example)'}: {len(cat)} stars")
    solar = SolarParameters.reference() if args.reference else SolarParameters()
    if args.r_min is not None or args.r_max is not None:
        cat, report = cut_r_gal(cat, args.r_min or 0.0, args.r_max or np.inf, solar=solar)
        print(f"[jaxhalo fit] {report}")
    spec = ReflexModel(args.model, args.apex, anchors=(args.anchors[0], args.anchors[1]))
    data = ReflexData.from_catalog(cat, reference=args.reference)
    priors = PriorSet(kind=args.priors)
    print(f"[jaxhalo fit] model: {args.model} ({len(spec.param_names)} parameters), apex: {args.apex}, priors: {args.priors}")
    print(f"[jaxhalo fit] ML fit + {0 if args.no_clip else args.n_clip} rounds of 3-sigma clipping, then NUTS "
          f"({args.chains} chains x {args.warmup} warm-up + {args.samples} draws), seed {args.seed}")
    radii = (40.0, 50.0, 100.0, 120.0)
    res = fit_reflex(
        data, spec, priors, key=jax.random.PRNGKey(args.seed), clip=not args.no_clip, n_clip=args.n_clip,
        num_chains=args.chains, num_warmup=args.warmup, num_samples=args.samples, radii=radii,
        progress_bar=not args.no_progress, verbose=True,
    )
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
        import jax.numpy as jnp

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
    (out / "diagnostics.json").write_text(json.dumps(diag, indent=2))
    print(f"[jaxhalo fit] wrote {out}/: posterior.nc summary.csv summary.md corner.png vtravel_profile.png apex_sky.png diagnostics.json")
    ok = res.max_r_hat < 1.01 and res.n_divergent == 0
    if not ok:
        print("[jaxhalo fit] WARNING: R-hat >= 1.01 or divergent transitions; run longer chains or check the model.")
    return 0
