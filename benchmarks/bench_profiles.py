"""Benchmark: Li et al. 14-bin double-component profile (jaxhalo NUTS vs emcee) and mixture throughput.

1. The 14 rows of Li et al. (2025) Table 1 (all stars + 13 radial shells) fitted with the
   17-parameter double-component model on a Li-like mock (:func:`li2025_profile_mock`):
   * jaxhalo: ONE numpyro model with a plate over the 14 bins, NUTS (1 chain);
   * emcee: bin by bin, 100 walkers x 1000 steps (first 400 discarded, as Li et al.),
     each step one call of a jitted log-prob vmapped over the walkers (``vectorize=True``),
     same likelihood, same priors (uniform, footnote 11, MR/MP ordered in [Fe/H]).
   Reported: wall time (jaxhalo including compilation), min bulk ESS (arviz) over every
   parameter of every bin with >= 10 stars, and min ESS per second.
2. Mixture log-likelihood value+gradient throughput (K = 2, D = 4, per-star diagonal
   errors) for 1e4 .. 1e7 stars in float64 and float32.

``python -m benchmarks.bench_profiles [--quick]``; quick mode uses a 6,400-star mock (1/10 of
Li et al.'s), 200 + 200 NUTS iterations and throughput up to 1e6 stars.
"""

from __future__ import annotations

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import timeit, write_results  # noqa: E402
from jaxhalo.inference_profiles import li2025_mixture_prior, mixture_profile_model, nuts_profile  # noqa: E402
from jaxhalo.likelihoods import binned  # noqa: E402
from jaxhalo.likelihoods.mixture import mixture_log_likelihood, mixture_log_likelihood_per_star  # noqa: E402
from jaxhalo.mocks_populations import li2025_profile_mock  # noqa: E402


def _throughput(quick: bool) -> list[dict]:
    recs = []
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
                lambda mu, s, lw: mixture_log_likelihood(x, mu, scales=s, errors=e, log_weights=lw), argnums=(0, 1, 2)))
            t = timeit(lambda: f(mu, s, lw), repeats=3 if n >= 10**6 else 5)
            recs.append({"kind": "mixture_value_and_grad", "n_stars": n, "dtype": jnp.dtype(dtype).name,
                         "K": 2, "D": 4, **t, "stars_per_s": n / t["best_s"]})
            print(recs[-1], flush=True)
    return recs


def _emcee_bin(x, e, key_seed, init_center, n_walkers=100, n_steps=1000, burn=400):
    """emcee on one bin: 17 parameters (means 2x4, sigmas 2x4, p_MR) in constrained space."""
    import emcee

    pr = li2025_mixture_prior()
    lo = np.r_[np.tile(np.asarray(pr.mean_low), 2), np.tile(np.asarray(pr.sigma_low), 2), 0.0]
    hi = np.r_[np.tile(np.asarray(pr.mean_high), 2), np.tile(np.asarray(pr.sigma_high), 2), 1.0]
    xj, ej = jnp.asarray(x), jnp.asarray(e)

    def logp(theta):
        mu = theta[:8].reshape(2, 4)
        s = theta[8:16].reshape(2, 4)
        p = theta[16]
        inside = jnp.all((theta > lo) & (theta < hi)) & (mu[0, 3] > mu[1, 3])
        ll = mixture_log_likelihood(xj, mu, scales=jnp.where(inside, s, 1.0),
                                    weights=jnp.where(inside, jnp.stack([p, 1 - p]), 0.5), errors=ej)
        return jnp.where(inside, ll, -jnp.inf)

    logp_v = jax.jit(jax.vmap(logp))
    rng = np.random.default_rng(key_seed)
    p0 = init_center + 1e-3 * np.abs(init_center + 1) * rng.normal(size=(n_walkers, 17))
    sampler = emcee.EnsembleSampler(n_walkers, 17, lambda th: np.asarray(logp_v(jnp.asarray(th))), vectorize=True)
    sampler.run_mcmc(p0, n_steps, progress=False)
    chain = sampler.get_chain()[burn:]  # (steps, walkers, 17)
    return np.transpose(chain, (1, 0, 2))  # (chains=walkers, draws, 17)


def _ess(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS (arviz) of every column of draws (chains, draws, P)."""
    ds = az.convert_to_dataset({"theta": draws})
    return np.asarray(az.ess(ds, method="bulk")["theta"]).ravel()


def _profile(quick: bool) -> list[dict]:
    n_total = 6400 if quick else 64000
    warm, samp = (300, 300) if quick else (500, 500)
    m = li2025_profile_mock(jax.random.PRNGKey(0), n_total)
    masks = binned.li2025_table1_masks(m["r_gc"])
    # Ragged layout: the all-stars row is 10x any shell, so padding would waste ~6/7 of the work.
    rb = binned.ragged_bins(masks, np.asarray(m["x"]), np.asarray(m["errors"]), min_stars=10, warn=False)
    data = dict(x=rb.data[0], errors=rb.data[1], mask=jnp.ones(rb.data[0].shape[0]), bin_index=rb.bin_index)
    valid = rb.valid

    t0 = time.perf_counter()
    mcmc = nuts_profile(mixture_profile_model, data, dict(n_components=2, n_bins=14), key=jax.random.PRNGKey(1),
                        num_warmup=warm, num_samples=samp, extra_fields=("num_steps", "diverging"))
    s = mcmc.get_samples()
    jax.block_until_ready(s)
    t_nuts = time.perf_counter() - t0
    ex = mcmc.get_extra_fields()
    theta = np.concatenate([np.asarray(s["mean"]).reshape(samp, 14, 8), np.asarray(s["sigma"]).reshape(samp, 14, 8),
                            np.asarray(s["weights"])[..., :1]], axis=-1)[:, valid]  # (S, Bvalid, 17)
    ess_nuts = _ess(theta.reshape(1, samp, -1)).reshape(-1, 17)  # (Bvalid, 17)
    counts = rb.counts[valid]
    big = counts >= 100  # Li et al.'s smallest bin has 164 stars; quick-mode mocks have tinier ones
    rec_nuts = {"kind": "profile_14bin_double", "sampler": "jaxhalo NUTS (one model, plate over 14 bins, ragged layout)",
                "n_stars": n_total, "n_bins": 14, "n_bins_valid": int(valid.sum()), "num_warmup": warm,
                "num_samples": samp, "wall_s": t_nuts, "bin_counts": counts.tolist(),
                "min_bulk_ess_per_bin": ess_nuts.min(1).tolist(), "min_bulk_ess": float(ess_nuts.min()),
                "median_bulk_ess": float(np.median(ess_nuts)), "min_ess_per_s": float(ess_nuts.min() / t_nuts),
                "min_bulk_ess_bins_ge100": float(ess_nuts[big].min()),
                "min_ess_per_s_bins_ge100": float(ess_nuts[big].min() / t_nuts),
                "mean_num_steps": float(np.mean(ex["num_steps"])), "divergences": int(np.sum(ex["diverging"]))}
    print(rec_nuts, flush=True)

    # emcee, bin by bin, initialised at the NUTS posterior medians (favourable to emcee)
    med = np.median(np.concatenate([np.asarray(s["mean"]).reshape(samp, 14, 8),
                                    np.asarray(s["sigma"]).reshape(samp, 14, 8),
                                    np.asarray(s["weights"])[..., :1]], axis=-1), axis=0)
    t0 = time.perf_counter()
    ess_e = []
    for j in np.flatnonzero(valid):  # bin by bin, as Li et al. (the comparison being benchmarked)
        sel = masks[j]
        ch = _emcee_bin(np.asarray(m["x"])[sel], np.asarray(m["errors"])[sel], int(j), med[j])
        ess_e.append(_ess(ch))
    t_emcee = time.perf_counter() - t0
    ess_e = np.stack(ess_e)  # (Bvalid, 17)
    rec_emcee = {"kind": "profile_14bin_double", "sampler": "emcee 100 walkers x 1000 steps, bin by bin (burn 400)",
                 "n_stars": n_total, "n_bins": 14, "n_bins_valid": int(valid.sum()), "wall_s": t_emcee,
                 "min_bulk_ess_per_bin": ess_e.min(1).tolist(),
                 "min_bulk_ess": float(ess_e.min()), "median_bulk_ess": float(np.median(ess_e)),
                 "min_ess_per_s": float(ess_e.min() / t_emcee),
                 "min_bulk_ess_bins_ge100": float(ess_e[big].min()),
                 "min_ess_per_s_bins_ge100": float(ess_e[big].min() / t_emcee)}
    print(rec_emcee, flush=True)
    rec_nuts["speedup_min_ess_per_s_vs_emcee"] = rec_nuts["min_ess_per_s"] / max(rec_emcee["min_ess_per_s"], 1e-300)
    rec_nuts["speedup_bins_ge100"] = rec_nuts["min_ess_per_s_bins_ge100"] / max(rec_emcee["min_ess_per_s_bins_ge100"], 1e-300)
    return [rec_nuts, rec_emcee]


def run(quick: bool = False) -> list[dict]:
    """Run both benchmarks; returns the records (see module docstring)."""
    return _profile(quick) + _throughput(quick)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    recs = run(quick)
    out = write_results("profiles", recs, {"quick": quick, "note": "2-core CPU shared with other jobs"})
    print(out)
