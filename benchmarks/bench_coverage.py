"""Coverage of the continuity-model posteriors on mock catalogues with known truth.

For each of ``n_mocks`` mock catalogues drawn from the 18-parameter continuity model
(Magellanic Stream apex) the posterior is sampled with NUTS and we record whether each
parameter's central 68% interval contains the truth. Calibrated posteriors give 68%.
Mocks use small distance errors (1-3%), where the first-order distance-error propagation
of the likelihood is accurate, so this checks the inference machinery; the bias that
larger distance errors cause is a separate study.

    python -m benchmarks.bench_coverage [--quick]
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from benchmarks.common import write_results  # noqa: E402
from jaxhalo.inference.priors import PriorSet
from jaxhalo.inference.ml import fit_map  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import ErrorModel, make_reflex_mock  # noqa: E402

RESULT_NAME = "coverage"


def coverage(n_mocks: int = 50, n_stars: int = 850, num_warmup: int = 300, num_samples: int = 600, seed: int = 100,
             verbose: bool = True) -> dict:
    """Run the coverage experiment; returns per-parameter and pooled coverage of 68% intervals."""
    from numpyro.infer import MCMC, NUTS

    from jaxhalo.inference.priors import params_to_unit
    from jaxhalo.inference.models import reflex_numpyro_model_unit

    spec = ReflexModel("continuity", "ms")
    priors = PriorSet()
    # One MCMC object reused for every mock (same shapes).
    # the model run_nuts samples (one unit-cube site; same posterior as reflex_numpyro_model)
    mcmc = MCMC(NUTS(reflex_numpyro_model_unit, target_accept_prob=0.85), num_warmup=num_warmup, num_samples=num_samples,
                num_chains=2, chain_method="sequential", progress_bar=False)
    hits = {n: [] for n in spec.param_names}
    t0 = time.perf_counter()
    for i in range(n_mocks):
        key = jax.random.PRNGKey(seed + i)
        k_mock, k_map, k_nuts = jax.random.split(key, 3)
        cat, info = make_reflex_mock(k_mock, n_stars, spec, errors=ErrorModel(frac_distance=(0.01, 0.03)))
        data = ReflexData.from_catalog(cat)
        p0 = fit_map(data, spec, priors, k_map, n_starts=4)
        init = {"u": np.stack([np.asarray(params_to_unit(spec, priors, p0))] * 2)}
        mcmc.run(k_nuts, data=data, spec=spec, priors=priors, init_params=init)
        s = mcmc.get_samples()
        for n in spec.param_names:
            lo, hi = np.percentile(np.asarray(s[n]), [16, 84])
            hits[n].append(bool(lo <= info["truth"][n] <= hi))
        if verbose:
            pooled = np.mean([np.mean(v) for v in hits.values()])
            print(f"mock {i + 1}/{n_mocks}: pooled coverage so far {pooled:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    per = {n: float(np.mean(v)) for n, v in hits.items()}
    return {"n_mocks": n_mocks, "n_stars": n_stars, "per_parameter": per, "pooled": float(np.mean(list(per.values()))),
            "min": float(min(per.values())), "max": float(max(per.values())), "wall_s": time.perf_counter() - t0}


def run(quick: bool = False) -> list[dict]:
    res = coverage(n_mocks=5 if quick else 50)
    recs = [{"parameter": n, "coverage_68": c, "n_mocks": res["n_mocks"]} for n, c in res["per_parameter"].items()]
    recs.append({"parameter": "POOLED", "coverage_68": res["pooled"], "n_mocks": res["n_mocks"]})
    return recs


if __name__ == "__main__":
    recs = run(quick="--quick" in sys.argv)
    print(write_results(RESULT_NAME, recs, {"model": "continuity/ms, 18 parameters", "mock": "850 stars, 1-3% distance errors",
                                             "sampler": "NUTS 2 chains x (300 warm-up + 600 draws), init at ML"}))
