"""Coverage of the continuity-model posteriors on mock catalogues with known truth.

For each of ``n_mocks`` mock catalogues drawn from the 18-parameter continuity model
(Magellanic Stream apex, Chandra et al. priors) the posterior is sampled with NUTS and we
record whether each parameter's central 68% interval (16th-84th percentiles) contains the
truth. Calibrated posteriors give 68%.

Two ways of sampling the same posteriors:

- ``joint`` (default): the mocks are independent, so the posterior of all of them together is
  the product of the per-mock posteriors. One numpyro model with a ``plate`` over mocks and the
  reflex likelihood ``vmap``-ed over the stacked catalogues (M x N stars) is sampled by one NUTS
  run (diagonal mass matrix adapted per parameter of each mock); each mock's marginal is exactly
  its own posterior. This amortises NUTS's per-step overhead, which dominates for a single
  850-star catalogue on a CPU, over all mocks. Convergence is checked per mock (R-hat, ESS).
- ``separate``: one NUTS run per mock (the way a user fits one catalogue); slower.

Each mock starts from its own ML point (the L-BFGS solver of :func:`jaxhalo.fit_map`, vmapped
over mocks). Mocks use small distance errors (1-3%), where the first-order distance-error
propagation of the likelihood is accurate, so this checks the inference machinery; the bias that
larger distance errors cause is a separate study (issue 3, hierarchical distances).

    python -m benchmarks.bench_coverage [--quick] [--separate]
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from benchmarks.common import write_results  # noqa: E402
from jaxhalo.inference import PriorSet, _base_name, _map_solver, _sample_base, fit_map  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks import ErrorModel, make_reflex_mock  # noqa: E402

RESULT_NAME = "coverage"
SPEC = ReflexModel("continuity", "ms")
ERRORS = ErrorModel(frac_distance=(0.01, 0.03))


def _mocks(n_mocks: int, n_stars: int, seed: int):
    """The mock catalogues (as stacked ReflexData), their truths and per-mock keys."""
    datas, truths = [], []
    for i in range(n_mocks):
        k_mock = jax.random.split(jax.random.PRNGKey(seed + i), 3)[0]
        cat, info = make_reflex_mock(k_mock, n_stars, SPEC, errors=ERRORS)
        datas.append(ReflexData.from_catalog(cat))
        truths.append(info["truth"])
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *datas)
    return stacked, truths


def joint_model(data: ReflexData, spec: ReflexModel, priors: PriorSet) -> None:
    """numpyro model of M independent catalogues: ``data`` leaves have a leading (M,) axis."""
    import numpyro

    m = data.r_gal.shape[0]
    with numpyro.plate("mock", m):
        params = {n: _sample_base(n, _base_name(spec, n), priors) for n in spec.param_names}
    ll = jax.vmap(spec.log_likelihood)(params, data)
    numpyro.factor("reflex_loglike", jnp.sum(ll))


def _ml_starts(data: ReflexData, spec: ReflexModel, priors: PriorSet, key, n_starts: int = 4, n_steps: int = 200):
    """Per-mock ML parameters (constrained dict of (M,) arrays) by the vmapped L-BFGS of fit_map."""
    from numpyro.infer.util import constrain_fn, initialize_model

    from jaxhalo.inference import reflex_numpyro_model

    one = jax.tree_util.tree_map(lambda a: a[0], data)
    kw = dict(data=one, spec=spec, priors=priors)
    info = initialize_model(key, reflex_numpyro_model, model_kwargs=kw)
    sites = sorted(info.param_info.z)
    m = data.r_gal.shape[0]
    keys = jax.random.split(key, len(sites))
    inits = {n: jax.random.uniform(k, (m, n_starts), minval=-2, maxval=2) for n, k in zip(sites, keys)}
    solver = _map_solver(spec, priors, n_steps)
    u_all, val = jax.vmap(solver)(inits, data)  # (M, n_starts)
    best = jnp.nanargmin(val, axis=1)
    u = {n: jnp.take_along_axis(u_all[n], best[:, None], axis=1)[:, 0] for n in sites}
    return jax.vmap(lambda uu: constrain_fn(reflex_numpyro_model, (), kw, uu))(u)


def coverage_joint(n_mocks: int = 50, n_stars: int = 850, num_chains: int = 2, num_warmup: int = 500,
                   num_samples: int = 700, seed: int = 100, verbose: bool = True) -> dict:
    """Coverage of 68% intervals with all mocks in one NUTS run (see the module docstring)."""
    import arviz as az
    from numpyro.infer import MCMC, NUTS

    priors = PriorSet()
    t0 = time.perf_counter()
    data, truths = _mocks(n_mocks, n_stars, seed)
    t_mocks = time.perf_counter() - t0
    p0 = _ml_starts(data, SPEC, priors, jax.random.PRNGKey(seed + 10_000))
    jax.block_until_ready(p0)
    t_ml = time.perf_counter() - t0 - t_mocks
    init = {k: jnp.stack([p0[k]] * num_chains) for k in SPEC.param_names}
    mcmc = MCMC(NUTS(joint_model, target_accept_prob=0.85), num_warmup=num_warmup, num_samples=num_samples,
                num_chains=num_chains, chain_method="sequential", progress_bar=verbose)
    mcmc.run(jax.random.PRNGKey(seed + 20_000), data=data, spec=SPEC, priors=priors, init_params=init,
             extra_fields=("diverging", "num_steps"))
    s = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}  # (C, S, M)
    t_nuts = time.perf_counter() - t0 - t_mocks - t_ml
    extra = mcmc.get_extra_fields(group_by_chain=True)
    hits = {n: [] for n in SPEC.param_names}
    r_hat = np.zeros((n_mocks, len(SPEC.param_names)))
    ess = np.zeros_like(r_hat)
    for j, n in enumerate(SPEC.param_names):
        x = s[n]
        r_hat[:, j] = np.asarray(az.rhat(az.convert_to_dataset({n: x}))[n])
        ess[:, j] = np.asarray(az.ess(az.convert_to_dataset({n: x}), method="bulk")[n])
        lo, hi = np.percentile(x.reshape(-1, n_mocks), [16, 84], axis=0)
        truth = np.array([t[n] for t in truths])
        hits[n] = list((lo <= truth) & (truth <= hi))
    per = {n: float(np.mean(v)) for n, v in hits.items()}
    per_mock = np.mean(np.array([hits[n] for n in SPEC.param_names]), axis=0)
    return {
        "mode": "joint", "n_mocks": n_mocks, "n_stars": n_stars, "per_parameter": per,
        "pooled": float(np.mean(list(per.values()))), "min": float(min(per.values())), "max": float(max(per.values())),
        "per_mock_pooled": per_mock.tolist(), "max_r_hat": float(r_hat.max()), "min_ess_bulk": float(ess.min()),
        "divergences": int(np.asarray(extra["diverging"]).sum()),
        "mean_leapfrog_steps": float(np.asarray(extra["num_steps"]).mean()),
        "timings_s": {"mocks": t_mocks, "ml": t_ml, "nuts": t_nuts, "total": time.perf_counter() - t0},
        "sampler": f"NUTS, one joint run over the mocks, {num_chains} chains x ({num_warmup} warm-up + {num_samples} draws), init at per-mock ML",
    }


def coverage(n_mocks: int = 50, n_stars: int = 850, num_warmup: int = 300, num_samples: int = 600, seed: int = 100,
             verbose: bool = True) -> dict:
    """Coverage with one NUTS run per mock (2 chains each, one compiled MCMC reused)."""
    from numpyro.infer import MCMC, NUTS

    from jaxhalo.inference import reflex_numpyro_model

    priors = PriorSet()
    mcmc = MCMC(NUTS(reflex_numpyro_model, target_accept_prob=0.85), num_warmup=num_warmup, num_samples=num_samples,
                num_chains=2, chain_method="sequential", progress_bar=False)
    hits = {n: [] for n in SPEC.param_names}
    t0 = time.perf_counter()
    for i in range(n_mocks):
        key = jax.random.PRNGKey(seed + i)
        k_mock, k_map, k_nuts = jax.random.split(key, 3)
        cat, info = make_reflex_mock(k_mock, n_stars, SPEC, errors=ERRORS)
        data = ReflexData.from_catalog(cat)
        p0 = fit_map(data, SPEC, priors, k_map, n_starts=4)
        init = {k: np.stack([np.asarray(v)] * 2) for k, v in p0.items() if k in SPEC.param_names}
        mcmc.run(k_nuts, data=data, spec=SPEC, priors=priors, init_params=init)
        s = mcmc.get_samples()
        for n in SPEC.param_names:
            lo, hi = np.percentile(np.asarray(s[n]), [16, 84])
            hits[n].append(bool(lo <= info["truth"][n] <= hi))
        if verbose:
            pooled = np.mean([np.mean(v) for v in hits.values()])
            print(f"mock {i + 1}/{n_mocks}: pooled coverage so far {pooled:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    per = {n: float(np.mean(v)) for n, v in hits.items()}
    return {"mode": "separate", "n_mocks": n_mocks, "n_stars": n_stars, "per_parameter": per,
            "pooled": float(np.mean(list(per.values()))), "min": float(min(per.values())),
            "max": float(max(per.values())), "wall_s": time.perf_counter() - t0}


def run(quick: bool = False, separate: bool = False) -> tuple[list[dict], dict]:
    n = 5 if quick else 50
    res = coverage(n_mocks=n) if separate else coverage_joint(n_mocks=n)
    recs = [{"parameter": k, "coverage_68": c, "n_mocks": res["n_mocks"]} for k, c in res["per_parameter"].items()]
    recs.append({"parameter": "POOLED", "coverage_68": res["pooled"], "n_mocks": res["n_mocks"]})
    meta = {k: v for k, v in res.items() if k not in ("per_parameter", "per_mock_pooled")}
    return recs, meta


if __name__ == "__main__":
    recs, meta = run(quick="--quick" in sys.argv, separate="--separate" in sys.argv)
    print(meta)
    print(write_results(RESULT_NAME, recs, {"model": "continuity/ms, 18 parameters, Chandra et al. priors",
                                             "mock": "850 stars each, 1-3% distance errors, default_truth",
                                             "interval": "central 68% (16th-84th percentile)",
                                             "binomial_sd_pooled_if_calibrated": 0.0155, **meta}))
