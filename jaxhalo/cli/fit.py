"""``jaxhalo fit``: the reflex-motion (travel velocity) fit of one or more catalogues, written with plots,
diagnostics and provenance.

Several catalogues are combined into one with a ``survey`` label per star (the file name); the PP21,
YPP24 and Chandra et al. selections are options (``--selection``); ``--r-min/--r-max`` use the
catalogue's own Galactocentric positions under ``--reference`` (as the reflexcalc code did) and
(l, b, d) with the Chandra et al. Sun otherwise. Every output records its provenance (see
:mod:`._provenance`), and ``--from-diagnostics DIR/diagnostics.json`` re-runs a recorded fit.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass, field
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
from ..catalog.structure import REQUIRED_COLUMNS, StarCatalog
from ..constants import K_PM, K_PM_REFERENCE
from ._console import (
    EXIT_NOT_CONVERGED,
    add_verbosity,
    convergence_exit,
    convergence_problems,
    detail,
    info,
    verbosity,
    warn,
)
from ._output import StagedOutput, check_output, strict_json
from ._prefetch import prefetch_modules
from ._provenance import (
    WallClock,
    command_provenance,
    file_sha256,
    options_from_provenance,
)
from ._setup import EXAMPLE_CATALOG, load_catalog, markdown_table, setup_jax
from ._validate import SEED, InputError, check_order, float_range, int_range

__all__ = ["N_PARAMETERS", "SELECTIONS", "FitInput", "add_fit_parser", "cmd_fit", "combine_catalogs", "precheck_fit"]


#: Free parameters of each radial form (any apex parameterisation); the tests compare with ReflexModel.
N_PARAMETERS = {"constant": 9, "continuity": 18}

#: ``--selection`` choices and what each applies (see :mod:`jaxhalo.catalog.cuts`).
SELECTIONS = {
    "none": "no selection",
    "pp21": "PP21: 40 < |xyz| < 150 kpc from the catalogue positions, then the PP21 Sgr angular-momentum cut "
            "(|L - L_Sgr| < 3000 kpc km/s and |B_Sgr| < 20 deg) from the catalogue phase space",
    "ypp24": "as pp21 but the YPP24 Sgr cut (every star with |L - L_Sgr| < 3000 kpc km/s removed)",
    "chandra": "Chandra et al. 2025 §2.3: quality cuts (v_los_err, distance_err/distance, |v| < 1000 km/s) "
               "and 40 < r_gal < 160 kpc from (l, b, d)",
}

#: Options that --from-diagnostics does not take from the recorded run (where and how to write, not what).
_NOT_REPLAYED = ("out", "overwrite", "from_diagnostics", "no_progress", "no_cache", "debug", "command", "quiet", "verbose",
                 "strict", "no_pointwise")

#: The convergence checks of ``fit`` (see :func:`jaxhalo.cli._console.convergence_problems`).
R_HAT_LIMIT, ESS_PER_CHAIN = 1.01, 100.0


def add_fit_parser(sub) -> None:
    """Add the ``fit`` subcommand to the CLI's subparsers."""
    f = sub.add_parser("fit", help="fit the reflex-motion (travel velocity) model with NUTS",
                       description="Fit the reflex-motion (travel velocity) model to star catalogues: ML fit, 3-sigma "
                                   "clipping, then NUTS; writes posterior.nc, summary tables, plots and diagnostics.json "
                                   "into --out.")
    f.add_argument("catalog", nargs="*", default=[],
                   help="star catalogue(s) (ECSV, FITS, CSV, Parquet, or the peer layouts with --format; default: the "
                        "bundled example); several are combined, each star labelled with its file as 'survey'")
    f.add_argument("--format", default=None, help="file format: astropy format name, or 'peer-t' / 'peer-h' for the PP21/YPP24 layouts")
    f.add_argument("--model", choices=["constant", "continuity"], default="continuity",
                   help="radial form of the travel velocity: one vector, or a profile continuous between --anchors")
    f.add_argument("--apex", choices=["galactic", "ms", "cartesian"], default="ms",
                   help="parameterisation of the apex direction (Galactic l/b, Magellanic Stream frame, or v_x/v_y/v_z)")
    f.add_argument("--priors", choices=["chandra", "reference"], default="chandra",
                   help="prior ranges: Chandra et al. 2025, or the reflexcalc reference code's")
    f.add_argument("--anchors", type=float_range(0.0, lo_open=True), nargs=2, default=(40.0, 120.0), metavar=("R_IN", "R_OUT"),
                   help="radii [kpc] of the continuity model's two anchors")
    f.add_argument("--reference", action="store_true", help="reflexcalc conventions (Sun at -8.3 kpc untilted, k=4.74057, catalogue xyz, D' quirk)")
    f.add_argument("--selection", choices=list(SELECTIONS), default="none",
                   help="a published sample selection: " + "; ".join(f"{k}: {v}" for k, v in SELECTIONS.items() if k != "none"))
    f.add_argument("--r-min", type=float_range(0.0), default=None,
                   help="keep stars with r_gal above this (kpc); r_gal is |xyz| of the catalogue under --reference "
                        "(when it has xyz), else from (l, b, d) with the Chandra et al. Sun")
    f.add_argument("--r-max", type=float_range(0.0, lo_open=True), default=None, help="keep stars with r_gal below this (kpc; see --r-min)")
    f.add_argument("--no-clip", action="store_true",
                   help="no 3-sigma clipping (same as --n-clip 0); the ML fit still runs and starts the chains")
    f.add_argument("--n-clip", type=int_range(0, 100), default=5, help="rounds of 3-sigma clipping after the ML fit (0: none)")
    f.add_argument("--chains", type=int_range(1, 256), default=4, help="NUTS chains")
    f.add_argument("--warmup", type=int_range(1), default=300,
                   help="NUTS warm-up iterations per chain (a dense mass matrix is adapted)")
    f.add_argument("--samples", type=int_range(1), default=750, help="NUTS draws per chain")
    f.add_argument("--seed", type=SEED, default=0, help="random seed (ML starts, chain jitter, NUTS)")
    f.add_argument("--from-diagnostics", default=None, metavar="DIAGNOSTICS_JSON",
                   help="re-run the fit recorded in an earlier run's diagnostics.json (its catalogues, checked by "
                        "SHA-256, and every option except --out/--overwrite/--no-progress/--no-cache/--no-pointwise/"
                        "--strict/-q/-v)")
    f.add_argument("--out", default="jaxhalo_fit", metavar="DIR", help="output directory (written at the end; see --overwrite)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    f.add_argument("--force", action="store_true",
                   help="fit even with fewer stars than 2 per parameter or implausible values (a warning instead of an error)")
    f.add_argument("--strict", action="store_true",
                   help=f"exit with code {EXIT_NOT_CONVERGED} (results still written) when a convergence check fails: "
                        f"max R-hat >= {R_HAT_LIMIT}, any divergent transition, or min bulk ESS below "
                        f"{ESS_PER_CHAIN:g} per chain (without it: a warning and exit code 0)")
    f.add_argument("--no-pointwise", action="store_true",
                   help="leave the per-star log_likelihood group out of posterior.nc (8 bytes x chains x samples x "
                        "stars: 27 MB for the bundled 850 stars at 4 x 1000; needed only for PSIS-LOO / model comparison)")
    f.add_argument("--corner", choices=["reflex", "all", "none"], default="reflex",
                   help="parameters in corner.png: the travel velocity and apex ('reflex'), every fitted parameter "
                        "('all': 18 x 18 panels for the continuity model, about 10 s more on 2 cores), or no corner plot")
    f.add_argument("--no-plots", action="store_true", help="write no figures (corner.png, vtravel_profile.png, apex_sky.png)")
    f.add_argument("--no-progress", action="store_true", help="no NUTS progress bar")
    f.add_argument("--sequential-chains", dest="parallel_chains", action="store_false",
                   help="on a CPU, run the chains one after another instead of in parallel threads (one XLA host device per chain)")
    f.add_argument("--no-cache", action="store_true", help="do not use the persistent XLA compilation cache (see JAXHALO_CACHE_DIR)")
    add_verbosity(f)
    f.set_defaults(func=cmd_fit)


def _say_warnings(caught) -> None:
    for w in caught:
        warn(f"[jaxhalo fit] WARNING: {w.message}")


def replay_options(args: argparse.Namespace) -> None:
    """Under ``--from-diagnostics``, set ``args`` to the recorded run's options (in place) and check that
    each recorded input file is unchanged (same SHA-256); raises :class:`InputError` otherwise."""
    options, inputs = options_from_provenance(args.from_diagnostics, "fit")
    for key, value in options.items():
        if key in _NOT_REPLAYED or not hasattr(args, key):
            continue
        setattr(args, key, tuple(value) if key == "anchors" else value)
    for rec in inputs:
        path = Path(rec["path"]) if Path(rec["path"]).is_file() else Path(rec.get("abspath", rec["path"]))
        if not path.is_file():
            raise InputError(f"--from-diagnostics: the recorded catalogue {rec['path']} no longer exists")
        if file_sha256(path) != rec["sha256"]:
            raise InputError(f"--from-diagnostics: catalogue {path} changed since the recorded run (SHA-256 differs)")
    if args.catalog:  # recorded relative paths are tried from here first, then as recorded absolute paths
        args.catalog = [c if Path(c).is_file() or i >= len(inputs) else inputs[i].get("abspath", c)
                        for i, c in enumerate(args.catalog)]


@dataclass
class FitInput:
    """What :func:`precheck_fit` found, before JAX loads.

    Attributes
    ----------
    cat : the combined catalogue (all stars; extras ``survey`` (str) and ``row`` (row in its file)).
    truth_path : the bundled example's truth file, or None.
    paths : the input files (the bundled example's when no catalogue was given).
    keep : (N,) bool mask of the --r-min/--r-max cut, or None without one.
    r_note : where r_gal came from for that cut.
    surveys : survey label -> number of stars read.
    """

    cat: StarCatalog
    truth_path: Path | None
    paths: list[str]
    keep: np.ndarray | None = None
    r_note: str = ""
    surveys: dict[str, int] = field(default_factory=dict)


def _survey_names(paths: list[str]) -> list[str]:
    """One label per file: its name without suffixes, made unique with ``#2``, ``#3`` ... when repeated."""
    names: list[str] = []
    for p in paths:
        stem = Path(p).name.split(".")[0] or Path(p).name
        name, i = stem, 1
        while name in names:
            i += 1
            name = f"{stem}#{i}"
        names.append(name)
    return names


def combine_catalogs(cats: list[StarCatalog], surveys: list[str]) -> StarCatalog:
    """One catalogue of the stars of ``cats`` in order, with extras ``survey`` (the label of each star's
    catalogue) and ``row`` (its row in that catalogue). ``xyz`` is kept when every catalogue has it;
    other extras when every catalogue has them (with matching trailing shapes)."""
    cols = {name: np.concatenate([np.asarray(getattr(c, name)) for c in cats]) for name in REQUIRED_COLUMNS}
    xyz = np.concatenate([c.xyz for c in cats]) if all(c.xyz is not None for c in cats) else None
    extra = {}
    for key in set.intersection(*(set(c.extra) for c in cats)) - {"survey", "row"}:
        parts = [np.asarray(c.extra[key]) for c in cats]
        if len({p.shape[1:] for p in parts}) == 1:
            extra[key] = np.concatenate(parts)
    extra["survey"] = np.concatenate([np.full(len(c), s) for c, s in zip(cats, surveys)])
    extra["row"] = np.concatenate([np.arange(len(c)) for c in cats])
    return StarCatalog(**cols, xyz=xyz, extra=extra)


def _r_gal_for_cut(cat: StarCatalog, reference: bool) -> tuple[np.ndarray, str]:
    """r_gal (N,) [kpc] for --r-min/--r-max and where it came from: the catalogue's |xyz| under
    ``--reference`` when present (what the reflexcalc fit uses), else (l, b, d) and the option's Sun."""
    if reference and cat.xyz is not None:
        return np.linalg.norm(cat.xyz, axis=1), "r_gal = |xyz| of the catalogue (--reference)"
    geometry = SOLAR_GEOMETRY["reference" if reference else "default"]
    return galactocentric_radius(cat, *geometry), (f"r_gal from (l, b, d), Sun at {geometry[0]:g} kpc, "
                                                   f"z_sun {geometry[1]:g} kpc, {'tilted' if geometry[2] else 'untilted'}")


def _check_selection(args: argparse.Namespace, cat: StarCatalog, source: str) -> None:
    """--selection pp21/ypp24 need the catalogue's phase space (xyz, vxyz), as the PP21 files give."""
    if args.selection in ("pp21", "ypp24") and (cat.xyz is None or "vxyz" not in cat.extra):
        raise InputError(f"--selection {args.selection} needs the catalogue's Galactocentric positions and velocities "
                         f"(xyz, vxyz; the peer layouts --format peer-t/peer-h have them), which {source} lacks; "
                         "use --selection chandra or none")


def precheck_fit(args: argparse.Namespace) -> FitInput:
    """Everything ``fit`` checks before the JAX stack loads: the replayed options (--from-diagnostics),
    options, ``--out``, each catalogue, the plausibility of its values and the minimum-data rule after
    the r_gal cut. Returns a :class:`FitInput`."""
    if args.from_diagnostics:
        replay_options(args)
    check_order(args.r_min, args.r_max, "--r-min", "--r-max")
    check_order(args.anchors[0], args.anchors[1], "--anchors R_IN", "R_OUT")
    check_output(args.out, args.overwrite)
    n_params = N_PARAMETERS[args.model]
    paths = list(args.catalog) or [None]
    cats, truth_path = [], None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        for path in paths:
            cat, truth_path = load_catalog(path, args.format)
            source = path or EXAMPLE_CATALOG.name
            if len(cat) == 0:
                raise InsufficientStarsError(f"catalogue {source} holds no stars (a header only?)")
            check_plausible(cat, force=args.force)
            _check_selection(args, cat, source)
            cats.append(cat)
        names = _survey_names([p or EXAMPLE_CATALOG.name for p in paths])
        cat = combine_catalogs(cats, names)
        what = f"in catalogue {paths[0] or EXAMPLE_CATALOG.name}" if len(paths) == 1 else f"in the {len(paths)} catalogues"
        check_enough_stars(len(cat), n_params, what, force=args.force)
        keep, note = None, ""
        if args.r_min is not None or args.r_max is not None:
            r, note = _r_gal_for_cut(cat, args.reference)
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
    inputs = [str(p) for p in args.catalog] or [str(EXAMPLE_CATALOG)]
    return FitInput(cat, truth_path if not args.catalog else None, inputs, keep, note,
                    {s: int(np.sum(cat.extra["survey"] == s)) for s in names})


def _star_ids(cat: StarCatalog, index: np.ndarray) -> list[list]:
    """``[survey, row]`` of the stars at ``index`` of ``cat`` (row: 0-based row in its input file)."""
    return [[str(cat.extra["survey"][i]), int(cat.extra["row"][i])] for i in np.asarray(index, int)]


def _cut_record(cat_in: StarCatalog, name: str, n_after: int, removed_by: dict, removed: np.ndarray, notes: str) -> dict:
    """A cut as recorded in the provenance (removed stars as [survey, row])."""
    return {"name": name, "n_before": len(cat_in), "n_after": n_after, "removed_by": dict(removed_by), "notes": notes,
            "removed": _star_ids(cat_in, removed)}


def apply_cuts(fin: FitInput, args: argparse.Namespace, solar, k: float) -> tuple[StarCatalog, list[dict]]:
    """The r_gal window of --r-min/--r-max (precomputed mask) and the --selection, each printed and recorded."""
    from ..catalog.cuts import (  # deferred: JAX is loaded by now
        chandra_selection,
        pp21_selection,
    )

    cat, records = fin.cat, []
    if fin.keep is not None:
        removed = np.flatnonzero(~fin.keep)
        bounds = " and ".join(f"{op} {v:g} kpc" for op, v in (("r_gal >", args.r_min), ("r_gal <", args.r_max)) if v is not None)
        records.append(_cut_record(cat, f"r_gal window ({bounds})", int(fin.keep.sum()), {"outside": len(removed)},
                                   removed, fin.r_note))
        cat = cat.select(fin.keep)
    if args.selection != "none":
        if args.selection == "chandra":
            new, reports = chandra_selection(cat, solar=solar, k=k)
        else:
            new, reports = pp21_selection(cat, scheme=args.selection.upper())
        for rep in reports:  # each report's indices refer to the catalogue going into that cut
            records.append(_cut_record(cat, rep.name, rep.n_after, rep.removed_by, rep.removed_indices, rep.notes))
            cat = cat.select(~np.isin(np.arange(len(cat)), rep.removed_indices))
        assert len(cat) == len(new)
    for rec in records:
        info(f"[jaxhalo fit] {rec['name']}: removed {rec['n_before'] - rec['n_after']} of {rec['n_before']} stars, "
              f"{rec['n_after']} left [{rec['notes']}]")
    if args.selection != "none":
        check_enough_stars(len(cat), N_PARAMETERS[args.model], f"remain after --selection {args.selection}", force=args.force)
    return cat, records


def _solar_record(solar, k: float, reference: bool) -> dict:
    v = np.asarray(solar.v_sun)
    return {"galcen_distance_kpc": float(solar.galcen_distance), "z_sun_kpc": float(solar.z_sun),
            "v_sun_kms": [float(x) for x in v], "tilt": bool(solar.tilt), "k_kms_per_kpc_masyr": k,
            "conventions": "reference (reflexcalc: catalogue xyz, D' quirk)" if reference else "default (Chandra et al.)"}


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the reflex model to the catalogue(s) with NUTS and write results into ``--out``."""
    clock = WallClock()
    fin = precheck_fit(args)
    clock.mark("start-up + input checks")
    jax_setup = setup_jax(host_devices=args.chains if args.parallel_chains else 1, cache=not args.no_cache)
    import jax  # deferred: the JAX stack loads only when the command runs

    from ..frames import SolarParameters
    from ..inference.priors import PriorSet
    from ..inference.results import reported_prior_table
    from ..inference.reflex_fit import fit_reflex
    from ..likelihoods.reflex import ReflexData, ReflexModel

    clock.mark("JAX start-up")
    detail(f"[jaxhalo fit] JAX {jax.__version__}, devices {jax.devices()}, setup {jax_setup}; "
           f"start-up + input checks {clock.parts['start-up + input checks']:.1f} s, JAX start-up {clock.parts['JAX start-up']:.1f} s")
    shown = ", ".join(f"{s} ({n})" for s, n in fin.surveys.items())
    info(f"[jaxhalo fit] catalogue{'s' if len(fin.surveys) > 1 else ''}: {shown}{' (bundled example)' if not args.catalog else ''}: "
          f"{len(fin.cat)} stars")
    solar = SolarParameters.reference() if args.reference else SolarParameters()
    k = K_PM_REFERENCE if args.reference else K_PM
    cat, cuts = apply_cuts(fin, args, solar, k)
    spec = ReflexModel(args.model, args.apex, anchors=(args.anchors[0], args.anchors[1]))
    data = ReflexData.from_catalog(cat, reference=args.reference)
    priors = PriorSet(kind=args.priors)
    clip = not args.no_clip and args.n_clip > 0
    info(f"[jaxhalo fit] model: {args.model} ({len(spec.param_names)} parameters), apex: {args.apex}, priors: {args.priors}")
    info(f"[jaxhalo fit] ML fit + {args.n_clip if clip else 0} rounds of 3-sigma clipping, then NUTS "
          f"({args.chains} chains x {args.warmup} warm-up + {args.samples} draws), seed {args.seed}")
    radii = (40.0, 50.0, 100.0, 120.0)
    # arviz and the plotting stack load while ML and NUTS run in XLA (off the critical path)
    prefetch_modules("arviz", *(() if args.no_plots else ("jaxhalo.plots", "corner")))
    clock.mark("cuts + data")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        res = fit_reflex(
            data, spec, priors, key=jax.random.PRNGKey(args.seed), clip=clip, n_clip=args.n_clip,
            num_chains=args.chains, num_warmup=args.warmup, num_samples=args.samples, radii=radii,
            progress_bar=not args.no_progress, verbose=verbosity() >= 0, force=args.force,
            pointwise=not args.no_pointwise,
        )
    _say_warnings(caught)
    t_fit = clock.mark("fit")
    del clock.parts["fit"]
    clock.parts["ML + clipping"] = res.timings["map_clip_s"]
    clock.parts["NUTS"] = res.timings["nuts_s"]
    clock.parts["InferenceData + summary"] = t_fit - res.timings["map_clip_s"] - res.timings["nuts_s"]
    detail(f"[jaxhalo fit] ML + clipping {res.timings['map_clip_s']:.1f} s, NUTS {res.timings['nuts_s']:.1f} s, "
           f"InferenceData + summary {clock.parts['InferenceData + summary']:.1f} s")
    table = res.table
    for c in ("p16", "p50", "p84", "minus", "plus", "r_hat", "ess_bulk", "ess_tail"):
        if c in table.colnames:
            table[c].info.format = ".3f" if c == "r_hat" else ".1f"
    if verbosity() >= 0:
        print()
        table.pprint(max_lines=-1, max_width=-1)
        print()
    info(f"[jaxhalo fit] stars used: {int(res.weight.sum())} of {len(cat)} (clipped per round: {res.n_clipped})")
    r_hat_text = f"{res.max_r_hat:.4f}" if args.chains > 1 else "not defined for one chain (--chains >= 2 to check it)"
    info(f"[jaxhalo fit] max R-hat {r_hat_text}, min bulk ESS {res.min_ess_bulk:.0f}, divergences {res.n_divergent}")
    problems = convergence_problems(res.max_r_hat if args.chains > 1 else None, res.n_divergent, res.min_ess_bulk,
                                    args.chains, R_HAT_LIMIT, ESS_PER_CHAIN)

    clipped = np.flatnonzero(np.asarray(res.weight) == 0)
    provenance = command_provenance(
        "fit", args, fin.paths,
        surveys=fin.surveys,
        solar_parameters=_solar_record(solar, k, args.reference),
        priors=reported_prior_table(spec, priors),
        cuts=cuts,
        clipping={"enabled": clip, "rounds": args.n_clip if clip else 0, "removed_per_round": list(res.n_clipped),
                  "removed": _star_ids(cat, clipped)},
        jax_setup=jax_setup,
    )
    with StagedOutput(args.out) as out:
        if not args.no_plots:
            _write_plots(out, res, spec, data, fin.truth_path, corner=args.corner)
            clock.mark("plots")
        _write_results(out, res, provenance)
        clock.mark("writing")
        diag = {
            "n_stars": len(fin.cat), "n_after_cuts": len(cat), "n_used": int(res.weight.sum()), "n_clipped": res.n_clipped,
            "max_r_hat": res.max_r_hat, "min_ess_bulk": res.min_ess_bulk, "divergences": res.n_divergent,
            "timings_s": {**clock.parts, "total_wall_until_diagnostics": clock.total()},
            "model": args.model, "apex": args.apex, "priors": args.priors,
            "seed": args.seed, "chains": args.chains, "warmup": args.warmup, "samples": args.samples,
            "convergence": {"ok": not problems, "problems": problems, "r_hat_limit": R_HAT_LIMIT,
                            "ess_bulk_per_chain": ESS_PER_CHAIN},
            "pointwise_log_likelihood": not args.no_pointwise,
            "jax_setup": jax_setup, "devices": provenance["device"]["devices"], "provenance": provenance,
        }
        (out / "diagnostics.json").write_text(strict_json(diag, indent=2))
    clock.mark("writing")
    info(f"[jaxhalo fit] wrote {args.out}/: posterior.nc{'' if args.no_pointwise else ' (with per-star log_likelihood)'} "
         "summary.csv summary.md diagnostics.json"
         + ("" if args.no_plots else (" corner.png" if args.corner != "none" else "") + " vtravel_profile.png apex_sky.png"))
    info(f"[jaxhalo fit] time: {clock.line() if verbosity() >= 1 else f'total {clock.total():.1f} s wall (-v: per stage)'}")
    return convergence_exit(problems, args.strict, "fit", "run longer chains (--warmup/--samples) or check the model")



def _write_results(out: Path, res, provenance: dict) -> None:
    """posterior.nc (with the provenance as the JSON attribute ``jaxhalo_provenance`` of its posterior group)
    and the summary tables."""
    text = strict_json(provenance)
    res.idata.posterior.attrs["jaxhalo_provenance"] = text
    res.idata.posterior.attrs["command_line"] = provenance["command_line"]
    res.idata.to_netcdf(str(out / "posterior.nc"))
    full = res.table.copy()
    for c in full.colnames:  # the CSV keeps full precision; the printed and Markdown tables are rounded
        full[c].info.format = None
    full.write(out / "summary.csv", format="ascii.csv", overwrite=True)
    conventions = res.idata.posterior.attrs.get("sign_conventions", "")
    (out / "summary.md").write_text(
        "Posterior 16/50/84% quantiles in the unit of each row (every angle in `deg`: apex longitudes and "
        "latitudes, sampled and derived; the apex latitude, not its sine), R-hat and bulk/tail ESS. Sign conventions: "
        f"{conventions}\n\n" + markdown_table(res.table))


def _write_plots(out: Path, res, spec, data, truth_path, corner: str = "reflex") -> None:
    """corner.png (``corner``: 'reflex' -- travel velocity and apex --, 'all' or 'none'), vtravel_profile.png
    and apex_sky.png into ``out``."""
    import jax  # deferred: loaded by cmd_fit already
    import jax.numpy as jnp  # deferred: loaded by cmd_fit already

    from ..inference.results import derived_quantities, physical_parameters
    from ..jax_utils import RUN_ONCE_COMPILER_OPTIONS
    from ..plots import apex_sky_plot, corner_plot, save_figure, vtravel_profile_plot

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
    if corner == "reflex":
        phys_names = [n for n in phys_names if n.startswith(("v_travel", "apex_"))]
    if corner != "none":
        fig = corner_plot(post, phys_names, truths=phys_truth)
        save_figure(fig, out / "corner.png", 80)
    r_data = np.asarray(data.r_gal)[np.asarray(data.weight) > 0]
    fig = vtravel_profile_plot(spec, res.samples, truth=truth, r_data=r_data)
    save_figure(fig, out / "vtravel_profile.png", 120)
    apex = {f"r = {R:g} kpc": (post[f"apex_l_r{R:g}"], post[f"apex_b_r{R:g}"]) for R in (50.0, 100.0)}
    apex_truth = None
    if truth is not None:
        derived = jax.jit(derived_quantities, static_argnums=(0, 2),  # one program, not ~40 eager operations
                          compiler_options=RUN_ONCE_COMPILER_OPTIONS)  # runs once: compile fast
        d = derived(spec, {k: jnp.asarray(v) for k, v in truth.items()}, (50.0, 100.0))
        apex_truth = {f"r = {R:g} kpc": (float(d[f"apex_l_r{R:g}"]), float(d[f"apex_b_r{R:g}"])) for R in (50.0, 100.0)}
    fig = apex_sky_plot(apex, truth=apex_truth)
    save_figure(fig, out / "apex_sky.png", 120)
