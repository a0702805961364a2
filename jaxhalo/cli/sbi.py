"""``jaxhalo sbi train`` / ``jaxhalo sbi infer``: neural posterior estimation on a suite."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ._console import add_verbosity, info
from ._corner import write_corner
from ._output import StagedOutput, check_output, strict_json
from ._provenance import add_provenance, command_provenance
from ._setup import enable_x64, fail
from ._summary_files import order_summaries, read_summary_file
from ._validate import SEED, InputError, check_input_file, float_range, int_range
from .sbi_nuts import add_sbi_nuts_parser

__all__ = ["add_sbi_parser", "cmd_sbi_infer", "cmd_sbi_train", "order_summaries", "read_summary_file", "write_corner"]


def _read_summary(path: str) -> np.ndarray:
    """The observed summary vector of :func:`read_summary_file` (in the file's order)."""
    return read_summary_file(path)[0]


def _model_header(path: str) -> dict:
    """Before JAX loads: ``path`` is a readable file whose first line is a JSON header with a ``format``
    (the full check, against the format tag and version, is :func:`jaxhalo.sbi.npe.load_npe`'s)."""
    p = check_input_file(path, "model file")
    try:
        with open(p, "rb") as fh:
            header = json.loads(fh.readline(1 << 20))
    except ValueError:
        header = None
    if not isinstance(header, dict) or "format" not in header:
        raise InputError(f"model file {p} is not a jaxhalo NPE model (no JSON header line); give the --out file of "
                         "`jaxhalo sbi train`")
    return header


def _check_store_path(path: str) -> None:
    """Before JAX loads: ``path`` is a directory holding a suite manifest (``suite.json``)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"suite store {p} does not exist; give the --out directory of `jaxhalo suite run`")
    if not p.is_dir():
        raise InputError(f"suite store {p} is a file; give the store directory written by `jaxhalo suite run`")
    if not (p / "suite.json").is_file():
        raise InputError(f"{p} is not a jaxhalo suite store (no suite.json manifest)")


#: Extra NPE targets from a suite's per-simulation reflex fits (``jaxhalo sbi train --with-reflex``).
REFLEX_TARGETS = ["v_travel_r40", "v_travel_r100", "v_travel_r120", "v_x_r100", "v_y_r100", "v_z_r100"]


def cmd_sbi_train(args: argparse.Namespace) -> int:
    """Train an NPE ensemble on a suite store and save it."""
    check_output(args.out, args.overwrite, kind="file")
    _check_store_path(args.store)
    if args.summary_sigma:
        _read_summary(args.summary_sigma)
    enable_x64()
    import jax  # deferred: the JAX stack loads only when the command runs

    from ..sbi.npe import NPEConfig, NPEError, save_npe, train_npe
    from ..sbi.priors import PRIORS, get_prior
    from ..sbi.store import SuiteStore, SuiteStoreError

    try:
        store = SuiteStore.open(args.store)
        data = store.load()
        if len(data) == 0:
            raise SuiteStoreError(f"suite {args.store} holds no finished simulations yet")
        names = list(data.parameter_names)
        prior_name = store.manifest["prior"]["name"]
        prior = get_prior(prior_name) if prior_name in PRIORS else None
        lo, hi = (prior.bounds if prior is not None else (np.full(len(names), -np.inf), np.full(len(names), np.inf)))
        if args.params:
            unknown = [n for n in args.params if n not in names]
            if unknown:
                raise NPEError(f"unknown parameter(s) {unknown}; the suite has {names}")
            use = args.params
        else:  # every parameter that varies (a Delta prior, e.g. gamma of brooks2025, is left out)
            use = [n for i, n in enumerate(names) if lo[i] != hi[i]]
        cols = [names.index(n) for n in use]
        theta, x = data.theta[:, cols], data.summaries.reshape(len(data), -1)
        lo_use, hi_use = np.asarray(lo)[cols], np.asarray(hi)[cols]
        if args.with_reflex:  # the per-simulation reflex fit as extra NPE targets (Brooks et al. 2026 Figs. 4-6)
            if "v_travel" not in data.outputs:
                raise NPEError(f"suite {args.store} has no reflex fits: run `jaxhalo suite run --reflex-fit`")
            extra = np.concatenate([data.outputs["v_travel"], data.outputs["v_travel_xyz"][:, 1, :]], axis=1)
            use = list(use) + REFLEX_TARGETS
            theta = np.concatenate([theta, extra], axis=1)
            lo_use = np.concatenate([lo_use, [0.0, 0.0, 0.0, -np.inf, -np.inf, -np.inf]])
            hi_use = np.concatenate([hi_use, np.full(6, np.inf)])
        if data.missing.size:
            info(f"[jaxhalo sbi] note: the suite is incomplete ({data.missing.size} of {store.n_total} missing); "
                  "training on the finished rows")
        rng = np.random.default_rng(args.seed)
        perm = rng.permutation(len(data))
        n_test = round(args.test_frac * len(data))
        test_rows, train_rows = np.sort(perm[:n_test]), perm[n_test:]
        sigma = None
        if args.summary_sigma:
            sigma = _read_summary(args.summary_sigma)
            if sigma.size != x.shape[1]:
                raise NPEError(f"--summary-sigma has {sigma.size} entries, the summaries have {x.shape[1]}")
        cfg = NPEConfig(flow_layers=args.layers, nn_width=args.width, nn_depth=args.depth, n_ensemble=args.ensemble,
                        learning_rate=args.lr, batch_size=args.batch, max_epochs=args.max_epochs, patience=args.patience,
                        val_fraction=args.val_frac)
        info(f"[jaxhalo sbi] training {cfg.n_ensemble} x MAF({cfg.flow_layers} layers x {cfg.nn_width} units) on "
              f"{train_rows.size} simulations ({n_test} held out for coverage), {x.shape[1]} summaries -> {len(use)} "
              f"parameters: {', '.join(use)}")
        t0 = time.perf_counter()
        model, rep = train_npe(theta[train_rows], x[train_rows], jax.random.PRNGKey(args.seed), cfg, parameter_names=use,
                               prior_bounds=(lo_use, hi_use), summary_sigma=sigma, impute_missing=args.impute_missing,
                               progress=not args.no_progress)
        wall = time.perf_counter() - t0
    except (SuiteStoreError, NPEError, FileNotFoundError, ValueError) as exc:
        return fail(str(exc), "sbi train")
    meta = {"store": str(Path(args.store).resolve()), "store_suite_hash": store.suite_hash, "prior": prior_name,
            "test_index": data.index[test_rows].tolist(), "summary_sigma": None if sigma is None else sigma.tolist(),
            "training": {**rep.as_dict(), "total_wall_s": wall}, "seed": args.seed,
            "provenance": command_provenance("sbi train", args, [Path(args.store) / "suite.json",
                                                                 *([args.summary_sigma] if args.summary_sigma else [])],
                                             store_suite_hash=store.suite_hash)}
    save_npe(model, args.out, meta)
    info(f"[jaxhalo sbi] {rep.n_train} train / {rep.n_val} validation rows ({rep.n_dropped} non-finite dropped); "
          f"epochs {rep.epochs}; best validation loss {[round(v, 4) for v in rep.best_val]}; {wall:.1f} s")
    info(f"[jaxhalo sbi] wrote {args.out}")
    return 0


def cmd_sbi_infer(args: argparse.Namespace) -> int:
    """Posterior samples, derived masses, corner plot and TARP coverage for an observed summary vector."""
    check_output(args.out, args.overwrite)
    header = _model_header(args.model)
    x, labels = read_summary_file(args.summary)
    if isinstance(header.get("cond_dim"), int) and x.size != header["cond_dim"]:
        raise InputError(f"the summary vector in {args.summary} has {x.size} entries; the model {args.model} was trained "
                         f"on {header['cond_dim']} summaries")
    enable_x64()
    import jax  # deferred: the JAX stack loads only when the command runs

    from ..sbi.npe import NPEError, load_npe
    from ..simulation.summaries import BROOKS_SUMMARY_LABELS

    try:
        model, header = load_npe(args.model)
        # a labelled file (summaries.ecsv of `jaxhalo simulate`) is put into the suite's summary order
        x_obs = order_summaries(x, labels, BROOKS_SUMMARY_LABELS)
        if labels is not None and x_obs is not x:
            labels = list(BROOKS_SUMMARY_LABELS)
        if x_obs.size != model.cond_dim:
            raise NPEError(f"the summary vector in {args.summary} has {x_obs.size} entries; the model was trained on "
                           f"{model.cond_dim} summaries")
        imputes = bool(np.all(np.isfinite(np.asarray(model.x_fill))))
        if not np.all(np.isfinite(x_obs)) and not (imputes and not np.any(np.isinf(x_obs))):
            raise NPEError(f"the summary vector has non-finite entries at {np.flatnonzero(~np.isfinite(x_obs)).tolist()}; "
                           "the estimator needs every summary (drop those entries and train on the same subset)")
        key = jax.random.PRNGKey(args.seed)
        k_post, k_cov, k_ref = jax.random.split(key, 3)
        t0 = time.perf_counter()
        samples = model.sample(k_post, x_obs, args.n_samples)
        t_sample = time.perf_counter() - t0
    except (NPEError, FileNotFoundError, ValueError) as exc:
        return fail(str(exc), "sbi infer")
    with StagedOutput(args.out) as out:
        _infer_products(out, args, model, header, samples, t_sample, k_cov, k_ref, imputes, x_obs, labels)
        add_provenance(out / "summary.json", command_provenance("sbi infer", args, [args.model, args.summary]))
    return 0


def _infer_products(out: Path, args: argparse.Namespace, model, header: dict, samples, t_sample: float, k_cov, k_ref,
                    imputes: bool, x_obs: np.ndarray, labels: list[str] | None) -> None:
    """Write the posterior samples, corner plot, TARP coverage and summary.json of ``sbi infer`` into ``out``."""
    import jax  # deferred: loaded by cmd_sbi_infer already

    from ..plots import save_figure
    from ..sbi.derived import derived_masses
    from ..sbi.npe import posterior_inference_data
    from ..sbi.store import SuiteStore, SuiteStoreError
    from ..sbi.tarp import plot_tarp, tarp_coverage

    names = list(model.parameter_names)
    post = {n: samples[:, i] for i, n in enumerate(names)}
    derived = {}
    if "log10_m200" in names and "m_lmc" in names:
        derived = derived_masses(samples, names)
        post.update(derived)
    np.savez(out / "posterior_samples.npz", **post)
    idata = posterior_inference_data(samples, names, derived=derived, x_obs=x_obs, summary_labels=labels)
    idata.posterior.attrs.update(model_file=str(args.model), summary_file=str(args.summary))
    idata.to_netcdf(out / "posterior.nc")
    q = {k: dict(zip(("p16", "p50", "p84"), np.nanpercentile(v, [16, 50, 84]).tolist())) for k, v in post.items()}
    summary = {"model": str(args.model), "summary_file": str(args.summary), "n_samples": args.n_samples,
               "sampling_s": t_sample, "quantiles": q}
    write_corner(out / "corner.png", post, names, derived)
    info(f"[jaxhalo sbi] {args.n_samples} posterior samples in {t_sample:.1f} s")
    for k, v in q.items():
        info(f"  {k:>20s}: {v['p50']:.4g}  (-{v['p50'] - v['p16']:.3g} / +{v['p84'] - v['p50']:.3g})")
    if not args.no_coverage:
        store_path = args.store or header["metadata"].get("store")
        test_index = np.asarray(header["metadata"].get("test_index", []), dtype=int)
        try:
            store = SuiteStore.open(store_path)
            data = store.load()
        except (SuiteStoreError, TypeError) as exc:
            raise InputError(f"coverage needs the training suite (--store, or --no-coverage): {exc}") from exc
        rows = np.searchsorted(data.index, test_index)
        if args.store and header["metadata"].get("store_suite_hash") != store.suite_hash:
            rows = np.arange(len(data))  # another suite: every row is held out
        cols = [list(data.parameter_names).index(n) for n in names]
        th, xs = data.theta[rows][:, cols], data.summaries[rows].reshape(rows.size, -1)
        ok = np.all(np.isfinite(th), 1) & (np.any(np.isfinite(xs), 1) if imputes else np.all(np.isfinite(xs), 1))
        th, xs = th[ok][: args.n_coverage], xs[ok][: args.n_coverage]
        if th.shape[0] < 10:
            info(f"[jaxhalo sbi] coverage skipped: only {th.shape[0]} held-out simulations")
        else:
            sigma = header["metadata"].get("summary_sigma")
            if sigma is not None:  # the held-out summaries get the same survey errors as the training ones
                xs = xs + np.asarray(sigma) * np.asarray(jax.random.normal(k_ref, xs.shape))
            t0 = time.perf_counter()
            cs = model.sample(k_cov, xs, args.coverage_samples)  # (M, N, P)
            res = tarp_coverage(cs, th, key=k_ref)
            fig = plot_tarp(res)
            save_figure(fig, out / "coverage.png", 100)
            summary["coverage"] = {**res.as_dict(), "n_samples_per_sim": args.coverage_samples,
                                   "wall_s": time.perf_counter() - t0}
            info(f"[jaxhalo sbi] TARP on {th.shape[0]} held-out simulations: ATC {res.atc:+.3f}, KS p {res.ks_pvalue:.3f}, "
                  f"KS(f ~ U) p {res.ks_uniform_pvalue:.3f}")
    (out / "summary.json").write_text(strict_json(summary, indent=2))
    info(f"[jaxhalo sbi] wrote {args.out}/: posterior.nc posterior_samples.npz corner.png" + (" coverage.png" if "coverage" in summary else "")
          + " summary.json")


def add_sbi_parser(sub) -> None:
    s = sub.add_parser("sbi", help="simulation-based inference: train, infer (neural posterior estimation on a suite); "
                                   "nuts (synthetic-likelihood NUTS through the differentiable simulator)")
    ss = s.add_subparsers(dest="sbi_command", required=True)
    t = ss.add_parser("train", help="train an ensemble of masked autoregressive flows on a suite store")
    t.add_argument("store", help="suite store directory (the --out of `jaxhalo suite run`)")
    t.add_argument("--out", required=True, metavar="FILE", help="model file to write (see --overwrite)")
    t.add_argument("--params", nargs="*", default=None, help="parameters to infer (default: all that vary)")
    t.add_argument("--with-reflex", action="store_true",
                   help="also infer the reflex motion: v_travel at 40/100/120 kpc and (v_x, v_y, v_z) at 100 kpc, "
                        "from a suite run with --reflex-fit")
    t.add_argument("--layers", type=int_range(1), default=5, help="MAF transformation layers (Brooks et al.: 5)")
    t.add_argument("--width", type=int_range(1), default=50, help="hidden units per layer (Brooks et al.: 50)")
    t.add_argument("--depth", type=int_range(1), default=1, help="hidden layers in each MADE")
    t.add_argument("--ensemble", type=int_range(1), default=5, help="ensemble members")
    t.add_argument("--batch", type=int_range(1), default=200, help="training batch size")
    t.add_argument("--lr", type=float_range(0.0, lo_open=True), default=5e-4, help="learning rate (Adam)")
    t.add_argument("--max-epochs", type=int_range(1), default=500, help="upper limit on the training epochs")
    t.add_argument("--patience", type=int_range(1), default=20, help="epochs without validation improvement before stopping")
    t.add_argument("--val-frac", type=float_range(0.0, 1.0, lo_open=True, hi_open=True), default=0.1,
                   help="fraction of the training simulations used for validation (early stopping)")
    t.add_argument("--test-frac", type=float_range(0.0, 1.0, hi_open=True), default=0.05, help="simulations held out for the coverage test")
    t.add_argument("--summary-sigma", default=None, help="file with per-summary survey errors added in training")
    t.add_argument("--impute-missing", action="store_true",
                   help="replace NaN summaries (empty bins) by training means instead of dropping those simulations")
    t.add_argument("--seed", type=SEED, default=0, help="random seed (split, initialisation, batches)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out model file")
    t.add_argument("--no-progress", action="store_true", help="no training progress")
    add_verbosity(t)
    t.set_defaults(func=cmd_sbi_train, command_label="sbi train")
    i = ss.add_parser("infer", help="posterior for an observed summary vector + corner and coverage plots")
    i.add_argument("model", help="model file of `jaxhalo sbi train`")
    i.add_argument("summary", help="observed summaries: .npy, .json, text, or a table with a 'value' column (the "
                                   "summaries.ecsv of `jaxhalo simulate`, put into the suite's order by its labels)")
    i.add_argument("--out", required=True, metavar="DIR", help="output directory (written at the end; see --overwrite)")
    i.add_argument("--n-samples", type=int_range(1), default=10000, help="posterior samples to draw")
    i.add_argument("--store", default=None, help="suite for the coverage test (default: the training suite)")
    i.add_argument("--n-coverage", type=int_range(1), default=200, help="held-out simulations in the TARP test")
    i.add_argument("--coverage-samples", type=int_range(1), default=500, help="posterior draws per held-out simulation")
    i.add_argument("--no-coverage", action="store_true", help="skip the TARP coverage test")
    i.add_argument("--seed", type=SEED, default=0, help="random seed (posterior and coverage draws)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    add_verbosity(i)
    i.set_defaults(func=cmd_sbi_infer, command_label="sbi infer")
    add_sbi_nuts_parser(ss)
