"""Benchmark: Li et al. 14-bin double-component profile (jaxhalo NUTS vs emcee) and mixture throughput.

1. The 14 rows of Li et al. (2025) Table 1 (all stars + 13 radial shells) fitted with the
   17-parameter double-component model on a Li-like mock (:func:`li2025_profile_mock`):
   * jaxhalo: :func:`jaxhalo.inference.per_bin.nuts_per_bin` -- one NUTS chain per bin with
     its own step size and a dense mass matrix from the Laplace approximation at its mode
     (200 warmup + 500 draws), bins of similar size bucketed into a few compiled programs;
   * emcee: bin by bin, 100 walkers x 1000 steps (first 400 discarded, as Li et al.), same
     priors (uniform, footnote 11, MR/MP ordered in [Fe/H]), with two likelihoods: (a)
     jaxhalo's, jitted and vmapped over the walkers (``vectorize=True``), the strongest
     emcee baseline we can build; (b) a NumPy likelihood called per walker, what a
     hand-written emcee script does (timed over 100 steps per bin and extrapolated; its
     chains, hence its ESS, are those of (a)).
   Reported: wall time (jaxhalo including compilation, from an empty compilation cache; also
   the same fit rerun with a warm persistent cache), min bulk ESS (arviz) over every
   parameter of every bin with >= 10 stars, and min ESS per second (cold wall time).
2. Mixture log-likelihood value+gradient throughput (K = 2, D = 4, per-star diagonal
   errors) for 1e4 .. 1e7 stars in float64 and float32.

``python -m benchmarks.bench_profiles [--quick] [--draws-per-bucket equal|scaled|1,1,8] [--keep-every-iteration]
[--emcee-from-record] [--small-bins]``;
quick mode uses a 6,400-star mock (1/10 of Li et al.'s), 200 + 300 NUTS iterations, 20 timed
NumPy-emcee steps and throughput up to 1e6 stars.

``--draws-per-bucket`` is passed to :func:`nuts_per_bin` (default ``scaled``: the cheap bucket
of small bins runs several NUTS iterations per kept draw; ``equal`` is the pre-2026-12-02
setting; or one factor per bucket), and ``--keep-every-iteration`` returns those buckets' whole runs
instead of every m-th state (ESS per bin from each bin's own draws). ``--small-bins`` measures only the
ESS of the three smallest bins, thinned and whole (:func:`small_bins`). ``--emcee-from-record`` does not rerun emcee (~6.5 min on 2 cores): the two emcee
records are copied from the committed ``benchmarks/results/profiles_<device>.json`` (same mock,
same emcee settings; emcee does not depend on the NUTS fit except through its start, the NUTS
posterior medians), marked ``"from_record": "<that file's date>, <its device>"``, and the speedups
are computed against them. Not with ``--quick`` (the record is of the full run). The record may be
from another machine of the same name class (the "2-core CPU" of 2026-12-01 was an Intel Xeon, that
of 2026-12-02 an AMD EPYC): the script warns when the device string differs, and then the speedups
compare two machines -- rerun emcee for a figure to quote.
"""

from __future__ import annotations

import argparse
import json
import time

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, device_name, device_slug, timeit, write_results  # noqa: E402
from jaxhalo.inference.profiles import li2025_mixture_prior, mixture_profile_model  # noqa: E402
from jaxhalo.likelihoods import binned  # noqa: E402
from jaxhalo.likelihoods.mixture import mixture_log_likelihood  # noqa: E402
from jaxhalo.mocks.populations import li2025_profile_mock  # noqa: E402
from jaxhalo.inference.per_bin import nuts_per_bin  # noqa: E402


def mixture_throughput(quick: bool = False, sizes: list[int] | None = None) -> list[dict]:
    """Mixture (K=2, D=4) value+gradient throughput at each catalogue size, float64 and float32."""
    recs = []
    if sizes is None:
        sizes = [10**4, 10**5, 10**6] + ([] if quick else [10**7])
    for dtype in (jnp.float64, jnp.float32):
        for n in sizes:
            k1, k2 = jax.random.split(jax.random.PRNGKey(n))
            x = (jax.random.normal(k1, (n, 4)) * jnp.array([130.0, 80.0, 80.0, 0.4])).astype(dtype)
            e = (jax.random.uniform(k2, (n, 4), minval=0.5, maxval=1.5) * jnp.array([7.0, 31, 29, 0.05])).astype(dtype)
            mu = jnp.array([[1.0, -7, 3.6, -1.15], [-2.3, -22.8, 4.4, -1.58]], dtype)
            s = jnp.array([[131.0, 31, 35, 0.17], [131.0, 103, 92, 0.43]], dtype)
            lw = jnp.log(jnp.array([0.55, 0.45], dtype))
            f = jax.jit(jax.value_and_grad(
                lambda mu, s, lw, x, e: mixture_log_likelihood(x, mu, scales=s, errors=e, log_weights=lw),
                argnums=(0, 1, 2)))
            t = timeit(lambda: f(mu, s, lw, x, e), repeats=3 if n >= 10**6 else 5)
            recs.append({"kind": "mixture_value_and_grad", "n_stars": n, "dtype": jnp.dtype(dtype).name,
                         "K": 2, "D": 4, **t, "stars_per_s": n / t["best_s"]})
            print(recs[-1], flush=True)
    return recs


def _bounds():
    pr = li2025_mixture_prior()
    lo = np.r_[np.tile(np.asarray(pr.mean_low), 2), np.tile(np.asarray(pr.sigma_low), 2), 0.0]
    hi = np.r_[np.tile(np.asarray(pr.mean_high), 2), np.tile(np.asarray(pr.sigma_high), 2), 1.0]
    return lo, hi


def _jax_logp(x, e):
    """Walker-vectorised log posterior (W, 17) -> (W,) of one bin with jaxhalo's jitted likelihood."""
    lo, hi = _bounds()
    xj, ej = jnp.asarray(x), jnp.asarray(e)

    def logp(theta):
        mu = theta[:8].reshape(2, 4)
        s = theta[8:16].reshape(2, 4)
        p = theta[16]
        inside = jnp.all((theta > lo) & (theta < hi)) & (mu[0, 3] > mu[1, 3])
        ll = mixture_log_likelihood(xj, mu, scales=jnp.where(inside, s, 1.0),
                                    weights=jnp.where(inside, jnp.stack([p, 1 - p]), 0.5), errors=ej)
        return jnp.where(inside, ll, -jnp.inf)

    f = jax.jit(jax.vmap(logp))
    return lambda th: np.asarray(f(jnp.asarray(th)))


def _numpy_logp(x, e):
    """One walker's log posterior (17,) -> float in plain NumPy, vectorised over the stars: the
    likelihood an emcee user writes by hand (Li et al. eqs 1-3, footnote 11 priors)."""
    lo, hi = _bounds()
    x, e2 = np.asarray(x), np.asarray(e) ** 2

    def logp(theta):
        mu = theta[:8].reshape(2, 4)
        s = theta[8:16].reshape(2, 4)
        p = theta[16]
        if np.any(theta <= lo) or np.any(theta >= hi) or mu[0, 3] <= mu[1, 3]:
            return -np.inf
        var = s[:, None, :] ** 2 + e2[None]  # (2, N, 4)
        lc = -0.5 * np.sum(np.log(2 * np.pi * var) + (x[None] - mu[:, None, :]) ** 2 / var, axis=-1)
        lc += np.log([p, 1.0 - p])[:, None]
        return float(np.sum(np.logaddexp(lc[0], lc[1])))

    return logp


def _emcee_bin(logp, vectorize, init_center, seed, n_walkers=100, n_steps=1000, burn=400):
    """emcee on one bin: 17 parameters (means 2x4, sigmas 2x4, p_MR) in constrained space.
    Returns draws (walkers, steps - burn, 17) and the wall time."""
    import emcee

    rng = np.random.default_rng(seed)
    p0 = init_center + 1e-3 * np.abs(init_center + 1) * rng.normal(size=(n_walkers, 17))
    sampler = emcee.EnsembleSampler(n_walkers, 17, logp, vectorize=vectorize)
    t0 = time.perf_counter()
    sampler.run_mcmc(p0, n_steps, progress=False)
    wall = time.perf_counter() - t0
    chain = sampler.get_chain()[burn:] if n_steps > burn else sampler.get_chain()
    return np.transpose(chain, (1, 0, 2)), wall


def _ess(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS (arviz) of every column of draws (chains, draws, P)."""
    ds = az.convert_to_dataset({"theta": draws})
    return np.asarray(az.ess(ds, method="bulk")["theta"]).ravel()


def _theta(samples: dict) -> np.ndarray:
    """(chains, draws, B, 17) from per-bin NUTS samples: means (2x4), sigmas (2x4), p_MR."""
    c, d, B = samples["mean"].shape[:3]
    return np.concatenate([samples["mean"].reshape(c, d, B, 8), samples["sigma"].reshape(c, d, B, 8),
                           samples["weights"][..., :1]], axis=-1)


def profile_fit(n_total: int, num_warmup: int, num_samples: int) -> dict:
    """One timed 14-bin per-bin NUTS profile fit (double mixture) of an ``n_total``-star mock, compilation
    included (no persistent cache games, no emcee): wall time, min bulk ESS and min ESS/s."""
    m = li2025_profile_mock(jax.random.PRNGKey(0), n_total)
    masks = binned.li2025_table1_masks(m["r_gc"])
    x, e = np.asarray(m["x"]), np.asarray(m["errors"])
    t0 = time.perf_counter()
    res = nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, dict(n_components=2),
                       key=jax.random.PRNGKey(1), num_warmup=num_warmup, num_samples=num_samples,
                       fill={"errors": 1.0}, progress=False, warn=False)
    wall = time.perf_counter() - t0
    valid = res.valid
    theta = _theta(res.samples)[:, :, valid]
    ess = np.stack([_ess(theta[:, :, j]) for j in range(theta.shape[2])])
    return {"kind": "profile_14bin_double_nuts", "n_stars": n_total, "n_bins_valid": int(valid.sum()),
            "num_warmup": num_warmup, "num_samples": num_samples, "wall_s_incl_compile": wall,
            "bucket_wall_s": res.wall_s, "min_bulk_ess": float(ess.min()), "min_ess_per_s": float(ess.min() / wall),
            "divergences": int(res.diverging.sum())}


def _emcee_records_from_file(path) -> tuple[list[dict], str]:
    """The jitted- and NumPy-likelihood emcee records of a committed profiles result file, marked
    as copied (``from_record``), and that file's date."""
    doc = json.loads(path.read_text())
    recs = [dict(r) for r in doc["records"]
            if r.get("kind") == "profile_14bin_double" and str(r.get("sampler", "")).startswith("emcee")]
    if len(recs) != 2 or doc.get("meta", {}).get("quick"):
        raise SystemExit(f"{path}: no full-run emcee records to reuse")
    if doc.get("device") != device_name():
        print(f"WARNING: the emcee records were measured on {doc.get('device')!r}, this is {device_name()!r}: "
              "the speedups compare two machines", flush=True)
    for r in recs:
        r["from_record"] = f"{doc.get('date', '?')}, {doc.get('device', '?')}"
        r.pop("median_ess_per_s", None)  # recomputed below, as for a fresh run
    return recs, doc.get("date", "?")


def _profile(quick: bool, draws_per_bucket: str | list[int] = "scaled", emcee_from_record: bool = False,
             keep_every_iteration: bool = False) -> list[dict]:
    n_total = 6400 if quick else 64000
    warm, samp = (200, 300) if quick else (200, 500)
    n_numpy_steps = 20 if quick else 100
    m = li2025_profile_mock(jax.random.PRNGKey(0), n_total)
    masks = binned.li2025_table1_masks(m["r_gc"])
    x, e = np.asarray(m["x"]), np.asarray(m["errors"])

    # Cold run with an empty persistent compilation cache, then the same run again warm (what
    # a user's second `jaxhalo profiles` costs: the CLI keeps the cache in ~/.cache/jaxhalo/xla).
    import tempfile

    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="jaxhalo-bench-xla-"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

    def fit():
        return nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, dict(n_components=2),
                            key=jax.random.PRNGKey(1), num_warmup=warm, num_samples=samp, fill={"errors": 1.0},
                            progress=True, warn=False, draws_per_bucket=draws_per_bucket,
                            keep_every_iteration=keep_every_iteration)

    t0 = time.perf_counter()
    res = fit()
    t_nuts = time.perf_counter() - t0
    jax.clear_caches()  # drop in-memory executables so the second run reads the persistent cache
    t0 = time.perf_counter()
    res_warm = fit()
    t_warm = time.perf_counter() - t0
    same = all(np.array_equal(res.samples[k], res_warm.samples[k], equal_nan=True) for k in res.samples)
    valid = res.valid
    theta = _theta(res.samples)  # (1, S, B, 17); bins with fewer draws (keep_every_iteration) NaN-padded
    ess_nuts = np.stack([_ess(theta[:, :res.n_draws[j], j]) for j in np.flatnonzero(valid)])  # (Bvalid, 17)
    counts = res.counts[valid]
    big = counts >= 100  # Li et al.'s smallest bin has 164 stars; quick-mode mocks have tinier ones
    rec_nuts = {"kind": "profile_14bin_double",
                "sampler": "jaxhalo NUTS per bin (nuts_per_bin: Laplace init + dense mass, bins bucketed by size, lax.map on CPU)",
                "n_stars": n_total, "n_bins": 14, "n_bins_valid": int(valid.sum()), "num_warmup": warm,
                "num_samples": samp, "num_chains": 1, "draws_per_bucket": draws_per_bucket,
                "keep_every_iteration": keep_every_iteration,
                "iterations_per_draw_per_bucket": [int(res.thin[b[0]]) for b in res.buckets],
                "returned_draws_per_bucket": [int(res.n_draws[b[0]]) for b in res.buckets],
                "wall_s": t_nuts, "bucket_wall_s": res.wall_s,
                "wall_s_warm_cache": t_warm, "bucket_wall_s_warm_cache": res_warm.wall_s,
                "warm_run_identical_draws": bool(same),
                "buckets": res.buckets, "bin_counts": counts.tolist(),
                "min_bulk_ess_per_bin": ess_nuts.min(1).tolist(), "min_bulk_ess": float(ess_nuts.min()),
                "median_bulk_ess": float(np.median(ess_nuts)), "min_ess_per_s": float(ess_nuts.min() / t_nuts),
                "min_bulk_ess_bins_ge100": float(ess_nuts[big].min()),
                "min_ess_per_s_bins_ge100": float(ess_nuts[big].min() / t_nuts),
                "mean_num_steps_per_bin": [float(res.num_steps[:, :res.n_draws[j], j].mean()) for j in np.flatnonzero(valid)],
                "divergences": int(res.diverging.sum())}
    print(rec_nuts, flush=True)

    # emcee, bin by bin (as Li et al.), initialised at the NUTS posterior medians (favourable to emcee)
    med = np.nanmedian(_theta(res.samples)[0], axis=0)  # (B, 17)
    recs = [rec_nuts]
    if emcee_from_record:
        old, date = _emcee_records_from_file(RESULTS / f"profiles_{device_slug()}.json")
        recs += old
        rec_nuts["emcee_note"] = f"emcee records copied from the {date} run (--emcee-from-record), not rerun"
    for label, vectorize in () if emcee_from_record else (("jax", True), ("numpy", False)):
        steps = 1000 if label == "jax" else n_numpy_steps
        ess_e, t_e = [], 0.0
        for j in np.flatnonzero(valid):
            sel = masks[j]
            logp = _jax_logp(x[sel], e[sel]) if vectorize else _numpy_logp(x[sel], e[sel])
            if vectorize:
                logp(np.tile(med[j], (100, 1)))  # compile outside the timing
            ch, wall = _emcee_bin(logp, vectorize, med[j], int(j), n_steps=steps)
            t_e += wall
            if label == "jax":
                ess_e.append(_ess(ch))
        if label == "jax":
            ess_e = np.stack(ess_e)  # (Bvalid, 17)
            ess_jax = ess_e
            rec = {"kind": "profile_14bin_double",
                   "sampler": "emcee 100 walkers x 1000 steps, bin by bin (burn 400), jaxhalo's jitted likelihood "
                              "vmapped over walkers (vectorize=True)",
                   "n_stars": n_total, "n_bins_valid": int(valid.sum()), "wall_s": t_e,
                   "min_bulk_ess_per_bin": ess_e.min(1).tolist(), "min_bulk_ess": float(ess_e.min()),
                   "median_bulk_ess": float(np.median(ess_e)), "min_ess_per_s": float(ess_e.min() / t_e),
                   "min_bulk_ess_bins_ge100": float(ess_e[big].min()),
                   "min_ess_per_s_bins_ge100": float(ess_e[big].min() / t_e)}
        else:
            # Same algorithm, seeds and start, likelihood equal to round-off: the chains (and
            # their ESS) are those of the run above; only the cost per step differs, and emcee's
            # cost per step is constant, so the 1,000-step wall time is extrapolated.
            t_full = t_e * 1000 / steps
            rec = {"kind": "profile_14bin_double",
                   "sampler": "emcee 100 walkers x 1000 steps, bin by bin (burn 400), NumPy likelihood per walker "
                              "(vectorize=False), as in a hand-written emcee script",
                   "n_stars": n_total, "n_bins_valid": int(valid.sum()), "timed_steps": steps,
                   "timed_wall_s": t_e, "wall_s": t_full, "wall_s_note": f"extrapolated from {steps} steps per bin; "
                   "ESS taken from the jitted-likelihood emcee run (same chains)",
                   "min_bulk_ess": float(ess_jax.min()), "min_ess_per_s": float(ess_jax.min() / t_full),
                   "min_bulk_ess_bins_ge100": float(ess_jax[big].min()),
                   "min_ess_per_s_bins_ge100": float(ess_jax[big].min() / t_full)}
        print(rec, flush=True)
        recs.append(rec)
    recs[2].setdefault("median_bulk_ess", recs[1]["median_bulk_ess"])
    for rec in recs:
        rec["median_ess_per_s"] = rec["median_bulk_ess"] / rec["wall_s"]
    for rec, tag in ((recs[1], "jax_emcee"), (recs[2], "numpy_emcee")):
        rec_nuts[f"speedup_median_ess_per_s_vs_{tag}"] = rec_nuts["median_ess_per_s"] / rec["median_ess_per_s"]
        rec_nuts[f"speedup_min_ess_per_s_vs_{tag}"] = rec_nuts["min_ess_per_s"] / max(rec["min_ess_per_s"], 1e-300)
        rec_nuts[f"speedup_bins_ge100_vs_{tag}"] = (rec_nuts["min_ess_per_s_bins_ge100"]
                                                    / max(rec["min_ess_per_s_bins_ge100"], 1e-300))
    return recs


def small_bins(iterations: tuple[int, ...] = (500, 2000, 4000), thin_at: int = 2000, num_warmup: int = 200) -> list[dict]:
    """Do the smallest bins' long runs hold more ESS than their thinned draws keep? (``--small-bins``)

    The three smallest bins of the 64,000-star benchmark (772, 1,581 and 162 stars; the bucket that
    ``draws_per_bucket="scaled"`` thins 4x), fitted alone in one bucket with the benchmark's settings (one chain,
    200 warm-up): ``thin_at`` iterations returned every 4th (what the benchmark keeps), and 500, 2,000 and 4,000
    iterations returned whole. Min bulk ESS over the 17 parameters per bin, and the wall time (compilation
    included; these bins are 2 % of the benchmark's per-iteration cost)."""
    m = li2025_profile_mock(jax.random.PRNGKey(0), 64000)
    masks = np.asarray(binned.li2025_table1_masks(m["r_gc"])).copy()
    counts = masks.sum(axis=1)
    small = [int(i) for i in np.argsort(counts)[:3]]
    masks[[i for i in range(masks.shape[0]) if i not in small]] = False
    x, e = np.asarray(m["x"]), np.asarray(m["errors"])
    out = []
    for n_iter, thin in [(thin_at, 4)] + [(n, 1) for n in iterations]:
        t0 = time.perf_counter()
        res = nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, dict(n_components=2),
                           key=jax.random.PRNGKey(1), num_warmup=num_warmup, num_samples=n_iter // thin,
                           fill={"errors": 1.0}, progress=False, warn=False, draws_per_bucket=[thin],
                           overhead_stars=1e9)  # one bucket, as in the benchmark
        wall = time.perf_counter() - t0
        theta = _theta(res.samples)[:, :, small]
        ess = [float(_ess(theta[:, :, j]).min()) for j in range(len(small))]
        out.append({"kind": "profile_small_bins_ess", "bins": small, "bin_counts": counts[small].tolist(),
                    "iterations": n_iter, "iterations_per_returned_draw": thin, "returned_draws": n_iter // thin,
                    "min_bulk_ess_per_bin": ess, "wall_s_incl_compile": wall,
                    "divergences": int(res.diverging[:, :, small].sum())})
        print(f"{n_iter} iterations, every {thin}: min ESS per bin {np.round(ess).tolist()} ({wall:.1f} s)", flush=True)
    return out


def run(quick: bool = False, draws_per_bucket: str | list[int] = "scaled", emcee_from_record: bool = False,
        keep_every_iteration: bool = False) -> list[dict]:
    """Run both benchmarks; returns the records (see module docstring)."""
    return _profile(quick, draws_per_bucket, emcee_from_record, keep_every_iteration) + mixture_throughput(quick)


def _draws_per_bucket(text: str) -> str | list[int]:
    """``equal``, ``scaled`` or comma-separated ints (one per bucket), for ``--draws-per-bucket``."""
    if text in ("equal", "scaled"):
        return text
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"need equal, scaled or ints like 1,1,8; got {text!r}") from None


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="6,400-star mock, shorter chains")
    ap.add_argument("--draws-per-bucket", type=_draws_per_bucket, default="scaled",
                    help="nuts_per_bin's draws_per_bucket: equal, scaled (default) or one int per bucket (1,1,8)")
    ap.add_argument("--keep-every-iteration", action="store_true",
                    help="nuts_per_bin(keep_every_iteration=True): the cheap buckets' whole runs, not every m-th state")
    ap.add_argument("--emcee-from-record", action="store_true",
                    help="copy the emcee records from the committed result file instead of rerunning emcee")
    ap.add_argument("--no-write", action="store_true", help="print the records, do not write the result file")
    ap.add_argument("--small-bins", action="store_true",
                    help="only the ESS of the three smallest bins, thinned and whole (profiles_small_bins_<device>.json)")
    a = ap.parse_args()
    if a.small_bins:
        recs = small_bins()
        if not a.no_write:
            print(write_results("profiles_small_bins", recs, {"note": "2-core CPU; see small_bins()"}))
        raise SystemExit(0)
    if a.emcee_from_record and a.quick:
        ap.error("--emcee-from-record needs the full run")
    recs = run(a.quick, a.draws_per_bucket, a.emcee_from_record, a.keep_every_iteration)
    meta = {"quick": a.quick, "note": "2-core CPU, no other benchmark running", "draws_per_bucket": a.draws_per_bucket,
            "keep_every_iteration": a.keep_every_iteration, "emcee_from_record": a.emcee_from_record}
    if not a.no_write:
        print(write_results("profiles", recs, meta))
