"""Experiment: outlier mixture vs 3-sigma clipping on reflex mocks with an injected cold stream.

For each mock (constant / galactic reflex model, ``N_HALO`` halo stars from
:func:`jaxhalo.mocks.reflex.make_reflex_mock` plus a cold stream of 5% of the final sample from
:func:`jaxhalo.mocks.substructure.add_stream`):

* **clipping** (Chandra et al.): ML fit + 5 rounds of 3-sigma clipping, then NUTS on the
  clipped stars;
* **outlier mixture**: the reflex model mixed with a cold Gaussian substructure component
  (``ReflexModel(..., outlier='gaussian')``), data-seeded ML fit, then NUTS on all stars with a
  Laplace-seeded mass matrix (:func:`jaxhalo.inference.outliers.run_nuts_outliers`);
* **no treatment**: NUTS on all stars without outlier component (for PSIS-LOO against the
  mixture, which is fitted to the same stars).

Reported per mock and per parameter: |posterior median - truth| / posterior std for both
methods, the stream stars' mean outlier probability (at the posterior median) and the
halo stars', f_out, the number of stream stars clipping kept, and LOO elpd differences.

``python -m benchmarks.bench_outliers [--quick]`` (quick: 2 mocks, shorter chains).
"""

from __future__ import annotations

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from benchmarks.common import write_results  # noqa: E402
from jaxhalo.inference.ml import clip_outliers, fit_map
from jaxhalo.inference.nuts import run_nuts  # noqa: E402
from jaxhalo.inference.outliers import fit_map_outliers, run_nuts_outliers, truth_offsets  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import make_reflex_mock  # noqa: E402
from jaxhalo.mocks.substructure import StreamSpec, add_stream  # noqa: E402
from jaxhalo.inference.comparison import compare_models, reflex_inference_data  # noqa: E402

N_HALO = 800


def one_mock(seed: int, warmup: int, samples: int, chains: int = 2) -> dict:
    spec = ReflexModel("constant", "galactic")
    spec_out = ReflexModel("constant", "galactic", outlier="gaussian")
    cat, info = make_reflex_mock(jax.random.PRNGKey(seed), N_HALO, spec)
    cat, info = add_stream(jax.random.PRNGKey(1000 + seed), cat, info, StreamSpec())
    truth = info["truth"]
    is_stream = cat.extra["is_stream"] > 0
    data = ReflexData.from_catalog(cat)
    rec = {"seed": seed, "n_halo": N_HALO, "n_stream": int(is_stream.sum())}
    names = list(spec.param_names)
    nuts = dict(num_chains=chains, num_warmup=warmup, num_samples=samples, progress_bar=False)

    t0 = time.perf_counter()
    dclip, pclip, removed = clip_outliers(data, spec, key=jax.random.PRNGKey(seed))
    m_clip = run_nuts(dclip, spec, key=jax.random.PRNGKey(seed + 1), init_params=pclip, **nuts)
    s_clip = {k: np.asarray(v) for k, v in m_clip.get_samples().items()}
    rec["clip_s"] = time.perf_counter() - t0
    w = np.asarray(dclip.weight)
    rec["clipped_per_round"] = removed
    rec["stream_kept_by_clipping"] = int(w[is_stream].sum())
    rec["offsets_clip"] = truth_offsets(s_clip, truth, names)

    t0 = time.perf_counter()
    pout = fit_map_outliers(data, spec_out, key=jax.random.PRNGKey(seed))
    m_out = run_nuts_outliers(data, spec_out, key=jax.random.PRNGKey(seed + 2), init_params=pout, **nuts)
    s_out = {k: np.asarray(v) for k, v in m_out.get_samples().items()}
    rec["outlier_s"] = time.perf_counter() - t0
    rec["offsets_outlier"] = truth_offsets(s_out, truth, names)
    med = {k: np.median(v) for k, v in s_out.items()}
    p_out = np.asarray(spec_out.outlier_probability(med, data))
    rec["p_out_stream_mean"] = float(p_out[is_stream].mean())
    rec["p_out_halo_mean"] = float(p_out[~is_stream].mean())
    rec["stream_recovered_p_gt_0.5"] = float((p_out[is_stream] > 0.5).mean())
    rec["f_out_median"] = float(med["f_out"])
    rec["sigma_out_median"] = float(med["sigma_out"])
    rec["max_r_hat_outlier"] = _max_rhat(m_out)
    rec["max_r_hat_clip"] = _max_rhat(m_clip)

    for k in ("clip", "outlier"):
        o = rec[f"offsets_{k}"]
        rec[f"mean_offset_{k}"] = float(np.mean(list(o.values())))
        rec[f"max_offset_{k}"] = float(np.max(list(o.values())))

    # LOO on identical stars: mixture vs no treatment (no clipping)
    t0 = time.perf_counter()
    p0 = fit_map(data, spec, key=jax.random.PRNGKey(seed))
    m_none = run_nuts(data, spec, key=jax.random.PRNGKey(seed + 3), init_params=p0, **nuts)
    rec["offsets_none"] = truth_offsets({k: np.asarray(v) for k, v in m_none.get_samples().items()}, truth, names)
    rec["mean_offset_none"] = float(np.mean(list(rec["offsets_none"].values())))
    cmp = compare_models({"with_outlier": reflex_inference_data(m_out, spec_out, data),
                          "without": reflex_inference_data(m_none, spec, data)})
    rec["loo_best"] = str(cmp.index[0])
    rec["loo_elpd_diff"] = float(cmp["elpd_diff"].iloc[1])
    rec["loo_dse"] = float(cmp["dse"].iloc[1])
    rec["none_s"] = time.perf_counter() - t0
    print({k: v for k, v in rec.items() if not k.startswith("offsets")}, flush=True)
    return rec


def _max_rhat(mcmc) -> float:
    import arviz as az

    idata = az.from_numpyro(mcmc)
    return float(np.nanmax(az.rhat(idata).to_array().values))


def run(quick: bool = False) -> list[dict]:
    n_mocks = 2 if quick else 3
    warmup, samples = (200, 300) if quick else (300, 400)
    return [one_mock(seed, warmup, samples) for seed in range(n_mocks)]


def summarise(recs: list[dict]) -> dict:
    names = list(recs[0]["offsets_clip"])
    per_param = {n: {"clip": float(np.mean([r["offsets_clip"][n] for r in recs])),
                     "outlier": float(np.mean([r["offsets_outlier"][n] for r in recs])),
                     "none": float(np.mean([r["offsets_none"][n] for r in recs]))} for n in names}
    return {
        "n_mocks": len(recs),
        "mean_offset_clip": float(np.mean([r["mean_offset_clip"] for r in recs])),
        "mean_offset_outlier": float(np.mean([r["mean_offset_outlier"] for r in recs])),
        "mean_offset_none": float(np.mean([r["mean_offset_none"] for r in recs])),
        "mocks_where_outlier_at_least_as_close": int(sum(r["mean_offset_outlier"] <= r["mean_offset_clip"] for r in recs)),
        "per_parameter_mean_offset": per_param,
        "loo_prefers_outlier": int(sum(r["loo_best"] == "with_outlier" for r in recs)),
    }


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    recs = run(quick)
    meta = {"quick": quick, "summary": summarise(recs), "wall_s": time.perf_counter() - t0,
            "model": "constant/galactic reflex, default_truth; stream: StreamSpec() defaults (5%, cold, 60 kpc)",
            "metric": "|posterior median - truth| / posterior std per parameter (internal units)",
            "note": "CPU, 2 cores, shared with other jobs"}
    print(meta["summary"])
    out = write_results("outliers", recs, meta)
    print("wrote", out)
