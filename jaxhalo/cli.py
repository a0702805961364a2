"""The ``jaxhalo`` command line: ``fit``, ``bench`` (and the simulator / SBI commands as they land).

The CLI enables float64 (``jax_enable_x64``) before any computation; the library
itself never flips that switch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]

EXAMPLE_CATALOG = Path(__file__).resolve().parent / "data" / "example_reflex.ecsv"
EXAMPLE_TRUTH = Path(__file__).resolve().parent / "data" / "example_reflex_truth.json"


def _enable_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


def default_cache_dir() -> Path:
    """Where the CLI keeps JAX's persistent compilation cache: ``$JAXHALO_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/jaxhalo/xla`` (``~/.cache/jaxhalo/xla``)."""
    if os.environ.get("JAXHALO_CACHE_DIR"):
        return Path(os.environ["JAXHALO_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "jaxhalo" / "xla"


def _setup_jax(host_devices: int = 1, cache: bool = True) -> dict:
    """Configure JAX for a CLI run, before any computation: float64, host devices, compile cache.

    ``host_devices`` > 1 splits the CPU into that many XLA host devices (numpyro's
    ``set_host_device_count``) so that NUTS chains run in parallel threads (``chain_method
    'parallel'``) instead of one after another; it has no effect on GPUs and is skipped when
    ``XLA_FLAGS`` already sets a count or a JAX backend is already running (e.g. when
    :func:`main` is called from Python). ``cache`` turns on JAX's persistent compilation cache
    in :func:`default_cache_dir`, so a second run skips XLA compilation.
    Returns what was set (for the diagnostics).
    """
    import jax
    from jax._src import xla_bridge

    done: dict = {}
    _enable_x64()
    flags = os.environ.get("XLA_FLAGS", "")
    if host_devices > 1 and "xla_force_host_platform_device_count" not in flags and not xla_bridge.backends_are_initialized():
        import numpyro

        numpyro.set_host_device_count(host_devices)
        done["host_devices"] = host_devices
    if cache and not os.environ.get("JAXHALO_NO_CACHE"):
        d = default_cache_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(d))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
            done["compilation_cache"] = str(d)
        except OSError as e:  # read-only home: run without the cache
            print(f"[jaxhalo] compilation cache disabled ({e})", file=sys.stderr)
    return done


def _load_catalog(path: str | None, fmt: str | None):
    from .catalog import read_catalog, read_peer_header, read_peer_transposed

    if path is None:
        return read_catalog(EXAMPLE_CATALOG), EXAMPLE_TRUTH
    if fmt == "peer-t":
        return read_peer_transposed(path), None
    if fmt == "peer-h":
        return read_peer_header(path), None
    return read_catalog(path, format=fmt), None


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the reflex model to a catalogue with NUTS and write results into ``--out``."""
    jax_setup = _setup_jax(host_devices=args.chains if args.parallel_chains else 1, cache=not args.no_cache)
    import jax
    import numpy as np

    from .catalog import cut_r_gal
    from .inference import PriorSet, fit_reflex
    from .likelihoods.reflex import ReflexData, ReflexModel
    from .plots import apex_sky_plot, corner_plot, vtravel_profile_plot
    from .frames import SolarParameters

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    cat, truth_path = _load_catalog(args.catalog, args.format)
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
    (out / "summary.md").write_text(_markdown_table(table))
    truth = None
    if truth_path is not None and Path(truth_path).exists():
        info = json.loads(Path(truth_path).read_text())
        if info["spec"]["form"] == spec.form and info["spec"]["apex"] == spec.apex:
            truth = info["truth"]
    post = {k: np.asarray(res.idata.posterior[k]) for k in res.idata.posterior.data_vars}
    from .inference import physical_parameters

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


def _markdown_table(table) -> str:
    """A GitHub-flavoured Markdown rendering of an astropy Table (floats with their formats)."""
    cols = table.colnames
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table:
        cells = []
        for c in cols:
            v = row[c]
            fmt = table[c].info.format
            cells.append(format(v, fmt) if (fmt and not isinstance(v, str)) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark scripts on the current JAX device and write JSON + a Markdown table."""
    _enable_x64()
    from .bench import run_benchmarks

    run_benchmarks(args.only, quick=args.quick, out_markdown=args.markdown)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxhalo", description="Fast, differentiable kinematics and dynamics of the Milky Way's outer halo.")
    sub = p.add_subparsers(dest="command", required=True)

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

    b = sub.add_parser("bench", help="run the benchmarks on the visible JAX device")
    b.add_argument("--only", nargs="*", default=None, help="benchmark names (default: all)")
    b.add_argument("--quick", action="store_true", help="smaller problem sizes")
    b.add_argument("--markdown", default="benchmarks/results/README.md")
    b.set_defaults(func=cmd_bench)

    from .simulate_cli import add_simulate_parser

    add_simulate_parser(sub)

    from .sbi.cli import add_sbi_parser, add_suite_parser

    add_suite_parser(sub)
    add_sbi_parser(sub)

    from .profiles_cli import add_profiles_parser

    add_profiles_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
