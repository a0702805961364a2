"""``jaxhalo profiles``: binned kinematic profiles of a catalogue (Li et al. 2025 Fig. 2, Han et al. 2024 Fig. 6).

From a 6D star catalogue (positions, distances, line-of-sight velocities, proper motions and
their errors) this command

1. computes Galactocentric (V_r, V_phi, V_theta) in Li et al.'s signs (V_phi < 0 prograde,
   V_theta > 0 northwards; :func:`jaxhalo.inference.profiles.li_velocity_components`) and
   propagates the distance, v_los and (correlated) proper-motion errors to their full 3x3
   error covariance by the Jacobian of the transformation (first order, ``jax.jacfwd``);
2. bins the stars in Galactocentric radius (``--bins`` edges in kpc; ``auto``, the default, for
   up to 10 bins of ~100 stars between quantiles of r_GC; or ``li2025`` for the 14 rows of Li et
   al. Table 1, bins outside the data's range then being skipped with a message) and fits
   every bin at once with NUTS: the single- or double-component Gaussian mixture of Li et al.
   eqs 1-3 (``--model single|double``, with the full per-star error covariance; the double
   model needs a ``feh`` column) or the compression + dipole field of eqs 5-6 (``--model dipole``);
3. writes ``profile.csv`` / ``profile.md`` (posterior 16/50/84 per bin and quantity; bins
   with fewer than ``--min-stars`` stars are listed with status ``empty`` and NaN values),
   ``profile.nc`` (the fitted bins' posterior draws as an arviz InferenceData: dims chain, draw,
   bin (coordinates r_lo, r_hi, r_mid in kpc, label, n_stars), component, column; units and
   descriptions as variable attributes;
   :func:`jaxhalo.inference.per_bin.per_bin_inference_data`),
   ``profiles.png`` (means, dispersions and beta against r with error bars, as Li et al.
   Fig. 2; mu_compr, mu_dipole, sigma_r for the dipole model), ``sky_sigma_r.csv`` and
   ``sky_sigma_r.png`` (sigma_r in HEALPix nside 4 pixels of Galactocentric longitude and
   latitude by the Monte Carlo estimator of Han et al. 2024, as their Fig. 6) and
   ``diagnostics.json``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from ..catalog.checks import DataWarning, InsufficientStarsError, check_plausible
from ..example_data import EXAMPLE_CATALOG
from ._console import (
    add_verbosity,
    convergence_exit,
    convergence_problems,
    info,
    verbosity,
    warn,
)
from ._output import StagedOutput, check_output, strict_json
from ._provenance import add_provenance, command_provenance
from ._setup import enable_x64, load_catalog, markdown_table
from ._validate import SEED, InputError, int_range

__all__ = ["R_HAT_LIMIT", "add_profiles_parser", "cmd_profiles", "run_profiles"]

#: The per-bin R-hat limit of ``profiles`` (each bin's chains are short and few; see --strict).
R_HAT_LIMIT = 1.05

_COMPONENT_NAMES = {1: ("all",), 2: ("MR", "MP")}


def _bins(spec: list[str], r: np.ndarray):
    # deferred: the JAX stack loads only when the command runs
    from ..likelihoods.binned import BinError, LI2025_TABLE1_BINS, li2025_table1_masks, masks_from_edges, quantile_edges

    if len(spec) == 1 and spec[0].lower() == "li2025":
        return li2025_table1_masks(r), np.array(LI2025_TABLE1_BINS, float), True
    if len(spec) == 1 and spec[0].lower() == "auto":
        edges = quantile_edges(r)
        return masks_from_edges(r, edges), np.stack([edges[:-1], edges[1:]], -1), False
    try:
        edges = np.array([float(x) for x in spec])
    except ValueError as exc:
        raise BinError(f"--bins takes radial edges in kpc, 'auto' or 'li2025', got {spec}") from exc
    masks = masks_from_edges(r, edges)
    return masks, np.stack([edges[:-1], edges[1:]], -1), False


def skipped_bins_message(ranges: np.ndarray, counts: np.ndarray, min_stars: int) -> str | None:
    """One line naming every bin with fewer than ``min_stars`` stars (not fitted), or None if there is none."""
    bad = np.flatnonzero(np.asarray(counts) < min_stars)
    if bad.size == 0:
        return None
    items = ", ".join(f"#{i} {ranges[i, 0]:g}-{ranges[i, 1]:g} kpc ({int(counts[i])} stars)" for i in bad)
    return (f"skipping {bad.size} of {len(counts)} bins with fewer than --min-stars {min_stars} stars: {items}; "
            "they are listed as 'empty' with NaN values (choose --bins inside the data's radial range, or 'auto')")


def run_profiles(
    cat,
    out: Path,
    bins: list[str] = ("auto",),
    model: str = "single",
    warmup: int = 200,
    samples: int = 500,
    chains: int = 2,
    seed: int = 0,
    min_stars: int = 10,
    nside: int = 4,
    n_mc: int = 200,
    solar=None,
    verbose: bool = True,
    progress: bool | None = None,
) -> dict:
    """Fit the profiles of ``cat`` and write the products into ``out``; returns the diagnostics dict.

    ``verbose`` prints information lines, ``progress`` (default: ``verbose``) one line per NUTS bucket.
    The diagnostics' ``convergence`` lists the failed checks (R-hat >= :data:`R_HAT_LIMIT` in a fitted bin,
    divergent transitions; ``jaxhalo profiles`` warns about them and exits 3 under ``--strict``)."""
    import jax  # deferred: the JAX stack loads only when the command runs
    import jax.numpy as jnp

    from ..inference.profiles import dipole_model, li2025_dipole_prior, li2025_mixture_prior, mixture_profile_model
    from ..catalog.kinematics import catalog_velocities
    from ..inference.per_bin import nuts_per_bin, per_bin_inference_data
    from ..likelihoods.binned import EmptyBinWarning, han_mc_dispersions, healpix_index, masks_from_index, pad_bins, summarize_profile

    if model not in ("single", "double", "dipole"):
        raise ValueError(f"--model must be single, double or dipole, got {model!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = info if verbose else (lambda *a, **k: None)
    t0 = time.perf_counter()
    has_feh = "feh" in cat.extra and np.isfinite(np.asarray(cat.extra["feh"], float)).any()
    if model == "double" and not has_feh:
        raise ValueError("--model double needs a finite 'feh' column (the components are ordered by [Fe/H])")
    kin = catalog_velocities(cat, solar)
    masks, ranges, li_layout = _bins(list(bins), kin["r_gc"])
    good = np.all(np.isfinite(kin["v"]), axis=1) & np.all(np.isfinite(kin["cov"].reshape(len(cat), -1)), axis=1)
    masks = masks & good[None]
    n_bins = masks.shape[0]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmptyBinWarning)
        if model == "dipole":
            sig_r = np.sqrt(kin["cov"][:, 0, 0])
            columns = {"v_r": kin["v"][:, 0], "v_r_err": sig_r, "l": np.asarray(cat.l), "b": np.asarray(cat.b)}
            fill = {"v_r_err": 1.0}
            static = {"prior": li2025_dipole_prior(identifiable=True)}
            fit_model = dipole_model
            K = 0
        else:
            cols = ["v_r", "v_phi", "v_theta"] + (["feh"] if has_feh else [])
            D = len(cols)
            x = kin["v"]
            cov = kin["cov"]
            if has_feh:
                feh = np.asarray(cat.extra["feh"], float)
                feh_err = np.asarray(cat.extra.get("feh_err", np.zeros(len(cat))), float)
                x = np.concatenate([x, feh[:, None]], axis=1)
                c4 = np.zeros((len(cat), 4, 4))
                c4[:, :3, :3] = cov
                c4[:, 3, 3] = np.nan_to_num(feh_err) ** 2
                cov = c4
                masks = masks & np.isfinite(feh)[None]
            columns = {"x": x, "errors": cov}  # full per-star error covariances (padded slots are masked)
            fill = {"errors": 1.0}
            K = 1 if model == "single" else 2
            static = {"n_components": K, "prior": li2025_mixture_prior(cols), "order_column": D - 1,
                      "beta_columns": (0, 2, 1)}
            fit_model = mixture_profile_model
        counts = masks.sum(axis=1)
        valid = counts >= min_stars
        empty = [int(i) for i in np.flatnonzero(~valid)]
        skipped = skipped_bins_message(ranges, counts, min_stars)
        if skipped:
            say(f"[jaxhalo profiles] {skipped}")
        if not valid.any():
            raise InsufficientStarsError(f"no bin holds --min-stars {min_stars} stars; nothing to fit")
        say(f"[jaxhalo profiles] {len(cat)} stars, {n_bins} bins ({int(valid.sum())} fitted"
            + (f", {len(empty)} skipped" if empty else "") + f"); model {model}; NUTS per bin, {chains} chain(s) x "
            f"({warmup} + {samples}), seed {seed}")
        t_fit = time.perf_counter()
        res = nuts_per_bin(fit_model, masks, columns, static, key=jax.random.PRNGKey(seed), num_warmup=warmup,
                           num_samples=samples, num_chains=chains, min_stars=min_stars, fill=fill,
                           progress=verbose if progress is None else progress)
        t_fit = time.perf_counter() - t_fit
    for w in caught:
        say(f"[jaxhalo profiles] note: {w.message}")
    post = res.flat_samples()
    n_div = int(res.diverging.sum())
    rhat = _max_rhat_per_bin(res) if chains > 1 else None
    max_rhat = None if rhat is None or not np.isfinite(rhat).any() else float(np.nanmax(rhat))
    bad_bins = [] if max_rhat is None else np.flatnonzero(~(rhat < R_HAT_LIMIT) & np.isfinite(rhat)).tolist()
    div_bins = np.flatnonzero(np.asarray(res.diverging).sum(axis=(0, 1))).tolist() if n_div else []
    problems = convergence_problems(max_rhat, n_div, r_hat_limit=R_HAT_LIMIT)
    problems = [p + (f" (bins {bad_bins})" if p.startswith("max R-hat") else f" (bins {div_bins})") for p in problems]
    q = summarize_profile(post, valid)

    # ---- table -------------------------------------------------------------------------
    from astropy.table import Table

    tab = Table()
    tab["bin"] = np.arange(n_bins)
    tab["r_lo"], tab["r_hi"] = ranges[:, 0], ranges[:, 1]
    tab["n_stars"] = counts
    tab["status"] = np.where(valid, "ok", "empty")
    if rhat is not None:
        tab["max_rhat"] = rhat
        tab["max_rhat"].info.format = ".3f"
    quantities = []
    if model == "dipole":
        for name in ("mu_compr", "mu_dipole", "sigma_r", "l_apex_deg", "b_apex_deg", "v_theta_eq7"):
            quantities.append((name, q[name]))
    else:
        comps = _COMPONENT_NAMES[K]
        for kk, cname in enumerate(comps):
            for j, c in enumerate(cols):
                quantities.append((f"mean_{c}_{cname}", q["mean"][:, :, kk, j]))
            for j, c in enumerate(cols):
                quantities.append((f"sigma_{c}_{cname}", q["sigma"][:, :, kk, j]))
            quantities.append((f"beta_{cname}", q["beta"][:, :, kk]))
            if K > 1:
                quantities.append((f"weight_{cname}", q["weights"][:, :, kk]))
    for name, arr in quantities:
        for i, p in enumerate(("p16", "p50", "p84")):
            tab[f"{name}_{p}"] = arr[i]
            tab[f"{name}_{p}"].info.format = ".3f"
    tab.write(out / "profile.csv", format="ascii.csv", overwrite=True)
    (out / "profile.md").write_text(markdown_table(tab))
    labels = [f"{a:g}-{b:g} kpc" for a, b in ranges]
    if li_layout:
        labels[0] = f"all stars {labels[0]}"
    idata = per_bin_inference_data(res, ranges, columns=None if model == "dipole" else cols,
                                   components=None if model == "dipole" else _COMPONENT_NAMES[K],
                                   order_column=None if model == "dipole" else D - 1, labels=labels)
    idata.posterior.attrs["model"] = model
    idata.to_netcdf(out / "profile.nc")

    # ---- figures -------------------------------------------------------------------------
    from ..plots import healpix_sky_plot, profile_plot, save_figure  # deferred: matplotlib loads only when a figure is drawn

    plot_rows = np.arange(n_bins)[1:] if (li_layout and n_bins > 1) else np.arange(n_bins)
    save_figure(profile_plot(model, K, q, ranges, valid, plot_rows), out / "profiles.png", 110)

    # ---- HEALPix sigma_r map (Han et al. Fig. 6) ---------------------------------------
    in_range = good & (kin["r_gc"] >= ranges[:, 0].min()) & (kin["r_gc"] <= ranges[:, 1].max())
    pix = np.where(in_range, healpix_index(kin["lon_gc"], kin["lat_gc"], nside), -1)
    n_pix = 12 * nside**2
    pm = masks_from_index(pix, n_pix)
    errs = np.sqrt(np.stack([kin["cov"][:, 0, 0], kin["cov"][:, 2, 2], kin["cov"][:, 1, 1]], -1))
    vel = np.stack([kin["v"][:, 0], kin["v"][:, 2], kin["v"][:, 1]], -1)  # (V_r, V_theta, V_phi)
    pp = pad_bins(pm, vel, errs, min_stars=min_stars, warn=False)
    han = han_mc_dispersions(jax.random.PRNGKey(seed + 1), jnp.nan_to_num(pp.data[0]), jnp.nan_to_num(pp.data[1]),
                             pp.mask, n_mc=n_mc, min_stars=min_stars, quantiles=(0.16, 0.5, 0.84))
    import astropy.units as u  # deferred: astropy loads only when this runs
    from astropy_healpix import HEALPix

    lon_p, lat_p = HEALPix(nside=nside, order="ring").healpix_to_lonlat(np.arange(n_pix))
    sky = Table({"pixel": np.arange(n_pix), "lon_deg": lon_p.to_value(u.deg), "lat_deg": lat_p.to_value(u.deg),
                 "n_stars": pp.counts, "status": np.where(han["valid"], "ok", "empty"),
                 "sigma_r_p16": han["quantiles"][0, :, 0], "sigma_r_p50": han["quantiles"][1, :, 0],
                 "sigma_r_p84": han["quantiles"][2, :, 0], "beta_p50": han["quantiles"][1, :, 3]})
    sky.write(out / "sky_sigma_r.csv", format="ascii.csv", overwrite=True)
    save_figure(healpix_sky_plot(han["quantiles"][1, :, 0], nside), out / "sky_sigma_r.png", 110)

    diag = {"n_stars": len(cat), "n_bins": n_bins, "bins": ranges.tolist(), "counts": counts.tolist(),
            "empty_bins": empty, "model": model, "warmup": warmup, "samples": samples, "seed": seed,
            "divergences": n_div, "chains": chains,
            "max_rhat": max_rhat, "min_stars": min_stars, "nside": nside,
            "convergence": {"ok": not problems, "problems": problems, "r_hat_limit": R_HAT_LIMIT},
            "sky_pixels_fitted": int(han["valid"].sum()), "fit_s": t_fit, "total_s": time.perf_counter() - t0}
    (out / "diagnostics.json").write_text(strict_json(diag, indent=2))
    say(f"[jaxhalo profiles] wrote {out}/: profile.csv profile.md profile.nc profiles.png sky_sigma_r.csv sky_sigma_r.png diagnostics.json "
        f"({diag['total_s']:.1f} s)")
    return diag

def _max_rhat_per_bin(res) -> np.ndarray:
    """(B,) largest split R-hat (arviz, rank-normalised) over every sampled quantity of each bin."""
    import arviz as az  # deferred: arviz loads only when this runs

    with warnings.catch_warnings():  # empty bins hold NaN draws: their R-hat is NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        r = az.rhat(az.convert_to_dataset({k: v for k, v in res.samples.items()}))  # each (B, ...)
    per_bin = np.concatenate([np.asarray(r[k].values).reshape(res.counts.size, -1) for k in r.data_vars], axis=1)
    with np.errstate(all="ignore"):
        out = np.nanmax(np.where(np.isfinite(per_bin), per_bin, -np.inf), axis=1)
    return np.where(res.valid & np.isfinite(out), out, np.nan)


def check_bins(spec: list[str]) -> None:
    """Check ``--bins`` before any work: ``li2025``, ``auto`` or at least two strictly increasing, finite, non-negative
    edges in kpc; raises :class:`~jaxhalo.cli._validate.InputError`."""
    if len(spec) == 1 and spec[0].lower() in ("li2025", "auto"):
        return
    try:
        edges = [float(x) for x in spec]
    except ValueError:
        raise InputError(f"--bins takes radial edges in kpc, 'auto' or 'li2025', got {' '.join(spec)}") from None
    if len(edges) < 2:
        raise InputError(f"--bins needs at least two edges (one bin), got {' '.join(spec)}")
    if not all(np.isfinite(edges)) or min(edges) < 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise InputError(f"--bins edges must be finite, >= 0 and strictly increasing, got {' '.join(spec)}")


def cmd_profiles(args: argparse.Namespace) -> int:
    """Entry point of ``jaxhalo profiles``: checks the options, ``--out`` and the catalogue before JAX loads,
    then fits into a temporary directory that replaces ``--out`` at the end."""
    check_bins(list(args.bins))
    check_output(args.out, args.overwrite)
    cat, _ = load_catalog(args.catalog, args.format)
    if args.model == "double" and not ("feh" in cat.extra and np.isfinite(np.asarray(cat.extra["feh"], float)).any()):
        raise InputError(f"--model double needs a finite 'feh' column in catalogue {args.catalog} (the components are "
                         "ordered by [Fe/H]); use --model single or dipole")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        check_plausible(cat, force=args.force)
    for w in caught:
        warn(f"[jaxhalo profiles] WARNING: {w.message}")
    if len(cat) < args.min_stars:
        raise InsufficientStarsError(f"catalogue {args.catalog} holds {len(cat)} star(s), fewer than --min-stars "
                                     f"{args.min_stars}: every bin would be empty")
    enable_x64()
    with StagedOutput(args.out) as out:
        diag = run_profiles(cat, out, bins=args.bins, model=args.model, warmup=args.warmup, samples=args.samples,
                            chains=args.chains, seed=args.seed, min_stars=args.min_stars, nside=args.nside,
                            n_mc=args.n_mc, verbose=verbosity() >= 0, progress=not args.no_progress)
        add_provenance(out / "diagnostics.json",
                       command_provenance("profiles", args, [args.catalog or EXAMPLE_CATALOG]))
    info(f"[jaxhalo profiles] moved the results into {args.out}/")
    return convergence_exit(diag["convergence"]["problems"], args.strict, "profiles",
                            "run longer (--warmup/--samples) before trusting those rows")


def add_profiles_parser(sub) -> None:
    """Add the ``profiles`` subcommand to the CLI's subparsers."""
    p = sub.add_parser("profiles", help="binned mean/dispersion/beta profiles and a HEALPix sigma_r map (Li et al., Han et al.)",
                       description="Binned kinematic profiles of a 6D catalogue (Li et al. 2025 Fig. 2) fitted with NUTS "
                                   "per bin, and a HEALPix sigma_r sky map (Han et al. 2024 Fig. 6); writes profile.csv/.md, "
                                   "profiles.png, sky_sigma_r.csv/.png and diagnostics.json into --out.")
    p.add_argument("catalog", nargs="?", default=None, help="6D star catalogue (default: the bundled example)")
    p.add_argument("--format", default=None, help="file format (astropy name, or 'peer-t' / 'peer-h')")
    p.add_argument("--bins", nargs="+", default=["auto"],
                   help="radial bin edges in kpc, 'auto' (default: up to 10 bins of ~100 stars at quantiles of r_GC) "
                        "or 'li2025' (Li et al. Table 1's 14 rows)")
    p.add_argument("--model", choices=["single", "double", "dipole"], default="single",
                   help="one Gaussian per bin, two components ordered by [Fe/H] (needs 'feh'), or compression + dipole "
                        "(Li et al. eqs 1-3, 5-6)")
    p.add_argument("--warmup", type=int_range(1), default=200, help="NUTS warmup iterations per chain and bin")
    p.add_argument("--samples", type=int_range(1), default=500, help="NUTS draws per chain and bin")
    p.add_argument("--chains", type=int_range(1, 256), default=2, help="NUTS chains per bin (R-hat per bin needs >= 2)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (NUTS, the Han et al. Monte Carlo)")
    p.add_argument("--min-stars", type=int_range(2), default=10, help="bins / pixels with fewer stars are reported empty")
    p.add_argument("--nside", type=int_range(1, 1024), default=4, help="HEALPix nside of the sigma_r sky map")
    p.add_argument("--n-mc", type=int_range(1), default=200, help="Monte Carlo realisations of the Han et al. estimator")
    p.add_argument("--out", default="jaxhalo_profiles", metavar="DIR", help="output directory (written at the end; see --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.add_argument("--force", action="store_true", help="fit even when the values look like a wrong unit or repeat stars")
    p.add_argument("--strict", action="store_true",
                   help=f"exit with code 3 (results still written) when a convergence check fails: R-hat >= {R_HAT_LIMIT} "
                        "in a fitted bin (with --chains >= 2) or any divergent transition (without it: a warning and "
                        "exit code 0)")
    p.add_argument("--no-progress", action="store_true", help="no per-bucket progress lines of the NUTS fits")
    add_verbosity(p)
    p.set_defaults(func=cmd_profiles)
