"""Closed-loop test of the SBI pipeline on rigid MW-LMC simulations (Brooks et al. 2025 §4.1).

1. Run (or resume) a small suite with the jaxhalo MW-LMC simulator: parameters from the Brooks
   et al. (2026) Table 1 prior, fewer particles and a coarser step than the paper's
   (20,000 particles) so that it fits on a laptop. Rerunning the script resumes the suite.
2. Train an NPE ensemble (masked autoregressive flows) for the masses, lambda_DF and beta0,
   conditioned -- as in Brooks et al. 2025 §4.1 -- on the simulation's summaries *and* the LMC's
   present-day observables (RA, Dec, distance, v_los, proper motions), which are "data" there.
3. For held-out simulations, sample the posterior, check that the true values lie within the
   16-84 % intervals about 68 % of the time, and run TARP over all held-out simulations.

Outputs in ``--out``: the suite store, the model, ``closed_loop.json`` (per-simulation truths and
intervals, TARP statistics), ``corner_heldout.png``, ``coverage.png``.

    python examples/sbi_closed_loop.py --n 1000 --n-particles 2000 --dt 5   # ~1 h on 2 CPU cores
    python examples/sbi_closed_loop.py --n 200 --n-particles 500 --dt 10 --ensemble 2 --max-epochs 100  # minutes

Caveat: ~30 % of the Table 1 log10 M200 range (below ~11.13) has no c200 with
v_c(R_sun) = 235 km/s; those simulations give NaN and are left out, so the effective prior is
truncated there. With few particles the outermost distance bins can be empty (NaN); the model
imputes them (``impute_missing``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from jaxhalo.plots import corner_plot  # noqa: E402
from jaxhalo.sbi.derived import derived_masses  # noqa: E402
from jaxhalo.sbi.npe import NPEConfig, save_npe, train_npe  # noqa: E402
from jaxhalo.sbi.priors import brooks2026_prior  # noqa: E402
from jaxhalo.sbi.simulators import brooks_simulator  # noqa: E402
from jaxhalo.sbi.store import SuiteStore  # noqa: E402
from jaxhalo.sbi.suite import run_suite  # noqa: E402
from jaxhalo.sbi.tarp import plot_tarp, tarp_coverage  # noqa: E402

TARGETS = ("log10_m200", "m_lmc", "log10_lambda_df", "beta0")
LMC_DATA = ("ra_lmc", "dec_lmc", "d_lmc", "vlos_lmc", "pmra_lmc", "pmdec_lmc")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="simulations in the suite")
    ap.add_argument("--n-particles", type=int, default=2000)
    ap.add_argument("--dt", type=float, default=5.0, help="leapfrog step (Myr)")
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout", type=float, default=0.1, help="fraction of valid simulations held out")
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--width", type=int, default=50)
    ap.add_argument("--ensemble", type=int, default=5)
    ap.add_argument("--max-epochs", type=int, default=500)
    ap.add_argument("--patience", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--samples", type=int, default=2000, help="posterior draws per held-out simulation")
    ap.add_argument("--out", default="sbi_closed_loop")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    # 1. the suite (resumable)
    prior = brooks2026_prior()
    sim = brooks_simulator(n_particles=args.n_particles, dt=args.dt)
    t0 = time.perf_counter()
    rep = run_suite(str(out / "suite"), sim, prior, args.n, chunk_size=args.chunk, seed=args.seed)
    timings["suite_s"] = time.perf_counter() - t0
    print(f"suite: {len(rep.chunks_written)} new chunks in {timings['suite_s']:.0f} s ({rep.sims_per_s:.2f} sims/s)")
    data = SuiteStore.open(out / "suite").load(require_complete=True)
    names = list(data.parameter_names)
    valid = np.any(np.isfinite(data.summaries), axis=1)
    print(f"{valid.sum()} of {len(data)} simulations valid (the rest: no c200 for their M200); "
          f"{np.isnan(data.summaries[valid]).mean():.1%} of their summaries are empty bins")

    # 2. NPE on [summaries, LMC observables] -> targets
    tcols = [names.index(n) for n in TARGETS]
    dcols = [names.index(n) for n in LMC_DATA]
    x_all = np.concatenate([data.summaries, data.theta[:, dcols]], axis=1)[valid]
    th_all = data.theta[:, tcols][valid]
    idx_all = data.index[valid]
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(th_all.shape[0])
    n_test = max(10, int(round(args.holdout * perm.size)))
    test, train = perm[:n_test], perm[n_test:]
    lo, hi = prior.bounds
    cfg = NPEConfig(flow_layers=args.layers, nn_width=args.width, n_ensemble=args.ensemble, max_epochs=args.max_epochs,
                    patience=args.patience, batch_size=args.batch)
    t0 = time.perf_counter()
    model, trep = train_npe(th_all[train], x_all[train], jax.random.PRNGKey(args.seed), cfg, parameter_names=TARGETS,
                            prior_bounds=(lo[tcols], hi[tcols]), impute_missing=True, progress=True)
    timings["train_s"] = time.perf_counter() - t0
    save_npe(model, out / "model.npe", {"targets": TARGETS, "conditioning": "52 summaries + LMC observables"})
    print(f"trained {cfg.n_ensemble} members in {timings['train_s']:.0f} s; epochs {trep.epochs}")

    # 3. closed loop on the held-out simulations
    t0 = time.perf_counter()
    samples = model.sample(jax.random.PRNGKey(args.seed + 1), x_all[test], args.samples)  # (M, N_test, P)
    timings["sample_s"] = time.perf_counter() - t0
    truth = th_all[test]
    q16, q50, q84 = np.percentile(samples, [16, 50, 84], axis=0)
    inside = (truth >= q16) & (truth <= q84)
    tarp = tarp_coverage(samples, truth, key=jax.random.PRNGKey(args.seed + 2))
    plot_tarp(tarp).savefig(out / "coverage.png", dpi=100)
    # the first held-out simulation, as Brooks et al. 2025 Fig. 1: masses and lambda_DF with derived masses
    s0 = samples[:, 0]
    full = np.zeros((s0.shape[0], 3))
    full[:, 0], full[:, 1], full[:, 2] = s0[:, 0], s0[:, 1], s0[:, 2]
    der = derived_masses(full, ["log10_m200", "m_lmc", "log10_lambda_df"])
    der_true = derived_masses(truth[:1, :3], ["log10_m200", "m_lmc", "log10_lambda_df"])
    post = {"log10_m200": s0[:, 0], "m_lmc_1e10": s0[:, 1] / 1e10, "log10_lambda_df": s0[:, 2], "beta0": s0[:, 3],
            "m_mw_lt50_1e11": der["m_mw_lt50"] / 1e11, "m_lmc_lt50_1e10": der["m_lmc_lt50"] / 1e10}
    tr = {"log10_m200": truth[0, 0], "m_lmc_1e10": truth[0, 1] / 1e10, "log10_lambda_df": truth[0, 2],
          "beta0": truth[0, 3], "m_mw_lt50_1e11": der_true["m_mw_lt50"][0] / 1e11,
          "m_lmc_lt50_1e10": der_true["m_lmc_lt50"][0] / 1e10}
    fin = np.all(np.isfinite(np.column_stack(list(post.values()))), axis=1)
    corner_plot({k: v[fin] for k, v in post.items()}, list(post), truths=tr).savefig(out / "corner_heldout.png", dpi=70)

    result = {
        "settings": vars(args), "n_valid": int(valid.sum()), "n_train": int(train.size), "n_test": int(n_test),
        "timings_s": timings, "training_epochs": trep.epochs, "best_val_loss": trep.best_val,
        "frac_truth_in_16_84": dict(zip(TARGETS, inside.mean(axis=0).tolist())),
        "tarp": {"atc": tarp.atc, "ks_pvalue": tarp.ks_pvalue, "ks_uniform_pvalue": tarp.ks_uniform_pvalue},
        "heldout_0": {"index": int(idx_all[test[0]]), "truth": tr,
                      "p16_p50_p84": {k: np.nanpercentile(v, [16, 50, 84]).tolist() for k, v in post.items()}},
        "posterior_sd_over_prior_sd": dict(zip(TARGETS, (samples.std(axis=0).mean(axis=0) / th_all.std(axis=0)).tolist())),
    }
    (out / "closed_loop.json").write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps({k: result[k] for k in ("frac_truth_in_16_84", "tarp", "posterior_sd_over_prior_sd")}, indent=2))
    print(f"held-out simulation {result['heldout_0']['index']}: truth vs 16/50/84%:")
    for k, v in result["heldout_0"]["p16_p50_p84"].items():
        print(f"  {k:>18s}: true {tr[k]:.3f}   posterior {v[1]:.3f} [{v[0]:.3f}, {v[2]:.3f}]")
    print(f"wrote {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
