"""Sampler comparison on the 18-parameter reflex continuity model: NUTS vs dynesty vs emcee.

One 850-star mock (``make_reflex_mock(PRNGKey(0), 850, ReflexModel('continuity', 'ms'))``),
one likelihood (``ReflexModel.log_likelihood``), one prior (``PriorSet()``, Chandra et al.
2025: uniform ranges, log-uniform dispersions on [5, 500] km/s). Only the sampler differs:

* **NUTS** -- :func:`jaxhalo.inference.nuts.run_nuts` (numpyro; 4 chains x 500 warm-up + 1000
  draws, dense mass matrix (run_nuts's default), started around :func:`jaxhalo.inference.ml.fit_map`) with
  ``chain_method='parallel'`` on 4 XLA host devices (``numpyro.set_host_device_count(4)``: the chains
  run in parallel threads, one program traced once), which is what ``jaxhalo fit`` does on a CPU;
  ``--sequential`` runs the chains one after another on one device instead (numpyro then traces
  the sampling loop once per chain). It runs twice: first with an empty persistent compilation
  cache (every program compiled: the first run on a fresh machine), then, after
  ``jax.clear_caches()``, with the cache that run filled (every later run; tracing and lowering
  still happen). The issue-15 goal (NUTS >= 20x dynesty in ESS/s including compilation) is
  measured on the second. run_nuts's CPU default, 'vectorized', takes the same ~9
  leapfrog steps per draw here but ~1.7x the wall time on 2 cores (``--vectorized`` adds that
  variant); in quick runs (200 warm-up) it adapted badly (700-830 steps per draw). Wall time = MAP + NUTS, both including their compilation; the
  compilation (JAX trace + lowering + XLA compile) is summed from ``jax.monitoring`` events
  and reported separately.
* **dynesty** -- static ``NestedSampler`` (nlive 500, bound 'multi', sample 'rwalk' which is
  dynesty's own 'auto' choice for 10 <= ndim <= 20, dlogz 0.5) calling ONE jitted
  log-likelihood of the 18-vector, one point per call, with the prior transform mapping the
  unit cube onto exactly the priors of ``PriorSet()``.
* **emcee** -- ``EnsembleSampler`` (64 walkers, stretch move) on the same jitted
  log-posterior (likelihood + the same prior), ``vectorize=True`` with ``jax.vmap`` of it
  so that the half-ensemble that emcee updates at once is one call (emcee's batch interface;
  this is the most favourable set-up for emcee). Started in a small ball around the MAP;
  the first ``burn`` steps are discarded.

ESS definitions: NUTS and emcee -- arviz bulk ESS (rank-normalised split-R-hat ESS, Vehtari
et al. 2021), chains = NUTS chains resp. emcee walkers, minimum over the 18 parameters;
emcee also reports N_kept / tau_max with emcee's integrated autocorrelation time.
dynesty -- the Kish effective sample size of the importance weights,
ESS = (sum w)^2 / sum w^2 (the same for every parameter); the posterior comparison uses
dynesty's equal-weight resampling (``results.samples_equal()``).

Agreement with NUTS, per parameter: |median_X - median_NUTS| / sigma_NUTS with sigma_NUTS
half the NUTS 16-84% width (pass: <= 0.1), and |w68_X / w68_NUTS - 1| with w68 the 16-84%
width (pass: <= 0.10).

    python -m benchmarks.bench_samplers [--quick] [--sequential] [--vectorized]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from contextlib import contextmanager

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, script_flags, write_results

FLAGS = script_flags(__doc__, ("--quick", "--sequential", "--vectorized")) if __name__ == "__main__" else set()
CHAIN_METHOD = "sequential" if "--sequential" in FLAGS else "parallel"
if CHAIN_METHOD == "parallel":
    import numpyro  # noqa: E402  (before JAX starts its backend: one XLA host device per chain)

    numpyro.set_host_device_count(4)

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402

from jaxhalo.inference.priors import PriorSet
from jaxhalo.inference.ml import fit_map
from jaxhalo.inference.nuts import run_nuts  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import make_reflex_mock  # noqa: E402

MEDIAN_TOL_SIGMA = 0.1
WIDTH_TOL = 0.10

SETTINGS = {
    False: dict(nuts_chains=4, nuts_warmup=500, nuts_samples=1000, nlive=500, dlogz=0.5, walks=None,
                emcee_walkers=64, emcee_steps=10000, emcee_burn=3000),
    True: dict(nuts_chains=2, nuts_warmup=200, nuts_samples=300, nlive=100, dlogz=5.0, walks=10,
               emcee_walkers=64, emcee_steps=1500, emcee_burn=500),
}


# --------------------------------------------------------------------------- compile timing
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compile_seconds = [0.0]


def _listener(event: str, duration: float, **kwargs) -> None:
    if event in _COMPILE_EVENTS:
        _compile_seconds[0] += duration


jax.monitoring.register_event_duration_secs_listener(_listener)


@contextmanager
def _stopwatch():
    """Yields a dict filled with 'wall_s' and 'compile_s' (JAX trace+lower+compile seconds inside)."""
    out = {}
    c0, t0 = _compile_seconds[0], time.perf_counter()
    try:
        yield out
    finally:
        out["wall_s"] = time.perf_counter() - t0
        out["compile_s"] = _compile_seconds[0] - c0


# --------------------------------------------------------------------------- the problem
def prior_bounds(spec: ReflexModel, priors: PriorSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, is_log_uniform) arrays over ``spec.param_names``, exactly the ranges of ``priors``.

    Mirrors :func:`jaxhalo.inference.priors.sample_prior_site` for the 'ms' apex and Chandra priors.
    """
    if priors.kind != "chandra" or spec.apex != "ms":
        raise ValueError("the sampler benchmark is set up for the 'ms' apex and the Chandra priors")
    lo, hi, logu = [], [], []
    for name in spec.param_names:
        if name.startswith("v_travel"):
            a, b, g = 0.0, priors.v_travel_max, False
        elif name.startswith("apex_L"):
            a, b, g = -math.pi, math.pi, False
        elif name.startswith("apex_sinB"):
            a, b, g = -1.0, 1.0, False
        elif name.startswith(("vr_", "vphi_", "vtheta_")):
            a, b, g = -priors.v_mean_max, priors.v_mean_max, False
        elif name.startswith("sigma_"):
            a, b, g = priors.sigma_min, priors.sigma_max, True
        else:
            raise ValueError(f"no prior for {name!r}")
        lo.append(a), hi.append(b), logu.append(g)
    return np.array(lo), np.array(hi), np.array(logu)


def make_problem():
    """The model, the mock data and the prior of the comparison."""
    spec = ReflexModel("continuity", "ms")
    cat, info = make_reflex_mock(jax.random.PRNGKey(0), 850, spec)
    data = ReflexData.from_catalog(cat)
    return spec, data, PriorSet(), info


def make_functions(spec: ReflexModel, data: ReflexData, priors: PriorSet):
    """Jitted log-likelihood and log-posterior of the (18,) vector, and the unit-cube prior transform."""
    names = spec.param_names
    lo, hi, logu = prior_bounds(spec, priors)
    log_lo, log_hi = np.log(np.where(logu, lo, 1.0)), np.log(np.where(logu, hi, 1.0))

    def loglike(x):
        return spec.log_likelihood(dict(zip(names, x)), data)

    # log prior density: uniform -> -log(hi-lo); log-uniform -> -log(x) - log(log(hi/lo)).
    log_range = np.where(logu, log_hi - log_lo, 1.0)
    norm = float(np.sum(np.where(logu, -np.log(log_range), -np.log(hi - lo))))
    logu_j, lo_j, hi_j = jnp.asarray(logu), jnp.asarray(lo), jnp.asarray(hi)

    def logpost(x):
        inside = jnp.all((x >= lo_j) & (x <= hi_j))
        x_safe = jnp.where(inside, x, 0.5 * (lo_j + hi_j))
        lp = norm - jnp.sum(jnp.where(logu_j, jnp.log(x_safe), 0.0)) + loglike(x_safe)
        return jnp.where(inside, lp, -jnp.inf)

    def prior_transform(u):
        u = np.asarray(u)
        return np.where(logu, np.exp(log_lo + (log_hi - log_lo) * u), lo + (hi - lo) * u)

    return jax.jit(loglike), jax.jit(logpost), prior_transform


# --------------------------------------------------------------------------- samplers
def run_nuts_sampler(spec, data, priors, s, map_params, map_timing, chain_method: str) -> tuple[dict, np.ndarray]:
    with _stopwatch() as t_run:
        mcmc = run_nuts(data, spec, priors, jax.random.PRNGKey(1), s["nuts_chains"], s["nuts_warmup"],
                        s["nuts_samples"], init_params=map_params, chain_method=chain_method, progress_bar=False)
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    names = spec.param_names
    chains = np.stack([np.asarray(samples[n]) for n in names], -1)  # (chains, draws, 18)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    n_leapfrog = int(np.asarray(extra["num_steps"]).sum())
    n_div = int(np.asarray(extra["diverging"]).sum())
    ess = _arviz_ess(chains, names)
    wall = map_timing["wall_s"] + t_run["wall_s"]
    rec = {
        "sampler": f"NUTS (numpyro via jaxhalo.inference.nuts.run_nuts), chain_method '{chain_method}'",
        "settings": f"{s['nuts_chains']} chains ({chain_method}), {s['nuts_warmup']} warm-up + {s['nuts_samples']} draws, "
                    "dense mass matrix, target accept 0.85, init around fit_map (8 L-BFGS starts)",
        "chain_method": chain_method,
        "wall_s": wall,
        "map_wall_s": map_timing["wall_s"], "map_compile_s": map_timing["compile_s"],
        "nuts_wall_s": t_run["wall_s"], "nuts_compile_s": t_run["compile_s"],
        "compile_s": map_timing["compile_s"] + t_run["compile_s"],
        "n_gradient_evals_sampling": n_leapfrog,
        "mean_leapfrog_steps_per_draw": n_leapfrog / (s["nuts_chains"] * s["nuts_samples"]),
        "divergences": n_div,
        "max_r_hat": float(np.nanmax(np.asarray(az.rhat(_to_idata(chains, names)).to_array()))),
        "ess_bulk": ess, "min_ess_bulk": min(ess.values()),
    }
    rec["ess_per_s"] = rec["min_ess_bulk"] / wall
    rec["ess_per_s_excluding_compile"] = rec["min_ess_bulk"] / (wall - rec["compile_s"])
    print(f"[NUTS {chain_method}] wall {wall:.1f} s (MAP {map_timing['wall_s']:.1f} s; compile {rec['compile_s']:.1f} s), "
          f"{rec['mean_leapfrog_steps_per_draw']:.0f} leapfrog/draw, min ESS {rec['min_ess_bulk']:.0f}, "
          f"{rec['ess_per_s']:.2f} ESS/s, {n_div} divergences, max R-hat {rec['max_r_hat']:.3f}", flush=True)
    return rec, chains.reshape(-1, len(names))


def run_dynesty_sampler(loglike_jit, prior_transform, ndim, s) -> tuple[dict, np.ndarray]:
    import dynesty

    calls = [0]

    def loglike(x):
        calls[0] += 1
        return float(loglike_jit(x))

    with _stopwatch() as t_all:
        with _stopwatch() as t_first:
            loglike(prior_transform(np.full(ndim, 0.5)))
        sampler = dynesty.NestedSampler(loglike, prior_transform, ndim, nlive=s["nlive"], bound="multi",
                                        sample="rwalk", walks=s["walks"], rstate=np.random.default_rng(0))
        sampler.run_nested(dlogz=s["dlogz"], print_progress=False)
    res = sampler.results
    logw = res.logwt - res.logz[-1]
    w = np.exp(logw - logw.max())
    kish = float(w.sum() ** 2 / np.sum(w**2))
    equal = res.samples_equal(rstate=np.random.default_rng(1))
    wall = t_all["wall_s"]
    rec = {
        "sampler": "dynesty (static NestedSampler)",
        "settings": f"nlive {s['nlive']}, bound 'multi', sample 'rwalk', walks {s['walks'] or ndim + 20} "
                    f"(dynesty default), dlogz {s['dlogz']}",
        "wall_s": wall, "compile_s": t_all["compile_s"], "first_call_s": t_first["wall_s"],
        "n_loglike_calls": calls[0], "n_loglike_calls_dynesty": int(np.sum(res.ncall)),
        "n_iterations": int(res.niter), "logz": float(res.logz[-1]), "logz_err": float(res.logzerr[-1]),
        "ess_definition": "Kish ESS of the importance weights, (sum w)^2 / sum w^2",
        "min_ess_bulk": kish,
        "ess_per_s": kish / wall,
        "ess_per_s_excluding_compile": kish / (wall - t_all["compile_s"]),
        "seconds_per_loglike_call": wall / calls[0],
    }
    print(f"[dynesty] wall {wall:.1f} s, {calls[0]} calls, Kish ESS {kish:.0f}, {rec['ess_per_s']:.2f} ESS/s, "
          f"logZ {rec['logz']:.2f} +- {rec['logz_err']:.2f}")
    return rec, equal


def run_emcee_sampler(logpost_jit, map_vec, names, s) -> tuple[dict, np.ndarray]:
    import emcee

    batch = jax.jit(jax.vmap(logpost_jit))
    evals = [0]

    def logpost_batch(xs):
        evals[0] += len(xs)
        return np.asarray(batch(jnp.asarray(xs)))

    ndim, nw = len(names), s["emcee_walkers"]
    rng = np.random.default_rng(0)
    scale = 1e-3 * np.maximum(np.abs(map_vec), 1.0)
    p0 = map_vec + scale * rng.normal(size=(nw, ndim))
    with _stopwatch() as t_all:
        with _stopwatch() as t_first:
            logpost_batch(p0[: nw // 2])
        sampler = emcee.EnsembleSampler(nw, ndim, logpost_batch, vectorize=True)
        sampler.run_mcmc(p0, s["emcee_steps"], progress=False)
    wall = t_all["wall_s"]
    chain = sampler.get_chain(discard=s["emcee_burn"])  # (steps, walkers, ndim)
    by_walker = np.swapaxes(chain, 0, 1)
    ess = _arviz_ess(by_walker, names)
    tau = sampler.get_autocorr_time(discard=s["emcee_burn"], quiet=True)
    n_kept = chain.shape[0] * chain.shape[1]
    rec = {
        "sampler": "emcee (EnsembleSampler, stretch move)",
        "settings": f"{nw} walkers x {s['emcee_steps']} steps, first {s['emcee_burn']} discarded, "
                    "vectorize=True (jax.vmap of the jitted log-posterior), ball of 1e-3 relative around the MAP",
        "wall_s": wall, "compile_s": t_all["compile_s"], "first_call_s": t_first["wall_s"],
        "n_logpost_evals": evals[0],
        "acceptance_fraction": float(np.mean(sampler.acceptance_fraction)),
        "tau_max_steps": float(np.max(tau)), "tau_over_steps_kept": float(np.max(tau) / chain.shape[0]),
        "ess_autocorr_min": float(n_kept / np.max(tau)),
        "ess_bulk": ess, "min_ess_bulk": min(ess.values()),
        "max_r_hat_walkers": float(np.nanmax(np.asarray(az.rhat(_to_idata(by_walker, names)).to_array()))),
    }
    rec["ess_per_s"] = rec["min_ess_bulk"] / wall
    rec["ess_per_s_excluding_compile"] = rec["min_ess_bulk"] / (wall - t_all["compile_s"])
    print(f"[emcee] wall {wall:.1f} s, {evals[0]} evals, min ESS {rec['min_ess_bulk']:.0f} "
          f"(autocorr: {rec['ess_autocorr_min']:.0f}, tau_max {rec['tau_max_steps']:.0f} steps), {rec['ess_per_s']:.2f} ESS/s")
    return rec, chain.reshape(-1, ndim)


# --------------------------------------------------------------------------- diagnostics
def _to_idata(chains: np.ndarray, names) -> az.InferenceData:
    return az.from_dict(posterior={n: chains[..., i] for i, n in enumerate(names)})


def _arviz_ess(chains: np.ndarray, names) -> dict[str, float]:
    """Bulk ESS per parameter for samples shaped (chains, draws, n_params)."""
    ess = az.ess(_to_idata(chains, names), method="bulk")
    return {n: float(ess[n]) for n in names}


def compare(reference: np.ndarray, other: np.ndarray, names) -> dict:
    """Per-parameter median shift (in reference sigma) and 68% width ratio - 1 against ``reference``."""
    q_ref = np.percentile(reference, [16, 50, 84], axis=0)
    q_oth = np.percentile(other, [16, 50, 84], axis=0)
    w_ref, w_oth = q_ref[2] - q_ref[0], q_oth[2] - q_oth[0]
    med = (q_oth[1] - q_ref[1]) / (0.5 * w_ref)
    width = w_oth / w_ref - 1.0
    i_med, i_w = int(np.argmax(np.abs(med))), int(np.argmax(np.abs(width)))
    return {
        "median_shift_sigma": {n: float(v) for n, v in zip(names, med)},
        "width_ratio_minus_1": {n: float(v) for n, v in zip(names, width)},
        "max_abs_median_shift_sigma": float(abs(med[i_med])), "worst_median_param": names[i_med],
        "max_abs_width_dev": float(abs(width[i_w])), "worst_width_param": names[i_w],
        "medians_pass": bool(np.all(np.abs(med) <= MEDIAN_TOL_SIGMA)),
        "widths_pass": bool(np.all(np.abs(width) <= WIDTH_TOL)),
        "agree": bool(np.all(np.abs(med) <= MEDIAN_TOL_SIGMA) and np.all(np.abs(width) <= WIDTH_TOL)),
    }


def check_same_posterior(spec, data, priors, logpost_jit, prior_transform, points: np.ndarray) -> float:
    """Max |logpost - numpyro log density| over ``points`` (n, 18), and the prior-transform edges.

    The log-posterior given to emcee (and the prior transform given to dynesty) must be the
    density NUTS samples: ``numpyro.infer.util.log_density`` of ``reflex_numpyro_model`` at the
    same constrained values (log prior + log likelihood, no Jacobian).
    """
    from numpyro.infer.util import log_density

    from jaxhalo.inference.models import reflex_numpyro_model

    from numpyro import handlers

    names = spec.param_names
    kw = dict(data=data, spec=spec, priors=priors)
    ref = jax.jit(lambda x: log_density(reflex_numpyro_model, (), kw, dict(zip(names, x)))[0])
    prior_only = handlers.block(reflex_numpyro_model, hide=["reflex_loglike"])
    ref_prior = jax.jit(lambda x: log_density(prior_only, (), kw, dict(zip(names, x)))[0])
    loglike = jax.jit(lambda x: spec.log_likelihood(dict(zip(names, x)), data))
    dev = 0.0
    for x in map(jnp.asarray, points):
        dev = max(dev, abs(float(logpost_jit(x)) - float(ref(x))),
                  abs(float(logpost_jit(x) - loglike(x)) - float(ref_prior(x))))  # the prior part alone
    lo, hi, _ = prior_bounds(spec, priors)
    if not (np.allclose(prior_transform(np.zeros(len(names))), lo) and np.allclose(prior_transform(np.ones(len(names))), hi)):
        raise AssertionError("prior transform does not map the unit cube's corners onto the prior bounds")
    if dev > 1e-8:
        raise AssertionError(f"emcee/dynesty log-posterior differs from numpyro's by {dev}")
    return dev


def run(quick: bool = False, samplers: tuple[str, ...] = ("dynesty", "emcee"), vectorized: bool = False,
        chain_method: str = "parallel") -> list[dict]:
    """Run the comparison; NUTS with ``chain_method`` ('parallel' needs as many JAX devices as chains);
    ``vectorized`` adds NUTS with chain_method 'vectorized' (slow on a CPU)."""
    if chain_method == "parallel" and jax.local_device_count() < SETTINGS[bool(quick)]["nuts_chains"]:
        raise RuntimeError(f"chain_method 'parallel' needs {SETTINGS[bool(quick)]['nuts_chains']} JAX devices, "
                           f"found {jax.local_device_count()} (run as a script, or --sequential)")
    s = SETTINGS[bool(quick)]
    spec, data, priors, info = make_problem()
    names = list(spec.param_names)
    loglike_jit, logpost_jit, prior_transform = make_functions(spec, data, priors)
    truth = np.array([info["truth"][n] for n in names])

    cache_dir = tempfile.mkdtemp(prefix="jaxhalo-bench-cache-")
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    with _stopwatch() as t_map:
        map_params = jax.block_until_ready(fit_map(data, spec, priors, jax.random.PRNGKey(0)))
    map_vec = np.array([float(map_params[n]) for n in names])
    rng = np.random.default_rng(3)
    check_points = np.vstack([truth, map_vec, prior_transform(rng.uniform(size=len(names))),
                              prior_transform(rng.uniform(size=len(names)))])
    dev = check_same_posterior(spec, data, priors, logpost_jit, prior_transform, check_points)
    print(f"[check] emcee/dynesty log-posterior == numpyro log density to {dev:.1e}", flush=True)

    records = []
    cold_rec, _ = run_nuts_sampler(spec, data, priors, s, map_params, t_map, chain_method)
    cold_rec["run"] = "cold: empty persistent compilation cache"
    records.append(cold_rec)
    # again, as every later run: in-memory caches dropped, the persistent cache warm
    jax.clear_caches()
    with _stopwatch() as t_map:
        map_params = jax.block_until_ready(fit_map(data, spec, priors, jax.random.PRNGKey(0)))
    nuts_rec, nuts_draws = run_nuts_sampler(spec, data, priors, s, map_params, t_map, chain_method)
    nuts_rec["run"] = "warm: persistent compilation cache filled by the cold run"
    sd = np.std(nuts_draws, axis=0)
    nuts_rec["max_abs_truth_offset_sigma"] = float(np.max(np.abs((np.median(nuts_draws, 0) - truth) / sd)))
    nuts_rec["logpost_check_max_abs_dev"] = dev
    records.append(nuts_rec)
    if vectorized:
        vec_rec, vec_draws = run_nuts_sampler(spec, data, priors, s, map_params, t_map, "vectorized")
        vec_rec["agreement_with_nuts"] = compare(nuts_draws, vec_draws, names)
        records.append(vec_rec)
    by_name = {}
    if "dynesty" in samplers:
        dyn_rec, dyn_draws = run_dynesty_sampler(loglike_jit, prior_transform, len(names), s)
        dyn_rec["agreement_with_nuts"] = compare(nuts_draws, dyn_draws, names)
        records.append(dyn_rec)
        by_name["dynesty"] = dyn_rec
    if "emcee" in samplers:
        emc_rec, emc_draws = run_emcee_sampler(logpost_jit, map_vec, names, s)
        emc_rec["agreement_with_nuts"] = compare(nuts_draws, emc_draws, names)
        records.append(emc_rec)
        by_name["emcee"] = emc_rec

    for r in records[2:]:
        a = r["agreement_with_nuts"]
        print(f"  {r['sampler']}: max |median shift| {a['max_abs_median_shift_sigma']:.3f} sigma ({a['worst_median_param']}), "
              f"max |width dev| {a['max_abs_width_dev']:.3f} ({a['worst_width_param']}) -> {'PASS' if a['agree'] else 'FAIL'}")
    summary = {"sampler": "summary", "goal_nuts_over_dynesty": 20.0}
    for k, r in by_name.items():
        summary[f"nuts_over_{k}_ess_per_s"] = nuts_rec["ess_per_s"] / r["ess_per_s"]
        summary[f"nuts_over_{k}_ess_per_s_excluding_compile"] = (
            nuts_rec["ess_per_s_excluding_compile"] / r["ess_per_s_excluding_compile"])
    for k, r in by_name.items():
        summary[f"nuts_cold_cache_over_{k}_ess_per_s"] = cold_rec["ess_per_s"] / r["ess_per_s"]
    if "dynesty" in by_name:
        summary["goal"] = "NUTS >= 20x dynesty ESS/s including compilation, warm compilation cache, same posterior"
        summary["goal_met"] = bool(summary["nuts_over_dynesty_ess_per_s"] >= 20.0 and by_name["dynesty"]["agreement_with_nuts"]["agree"])
    records.append(summary)
    print(f"[summary] {summary}", flush=True)
    return records


def _meta(quick: bool, load_before, load_after) -> dict:
    return {
        "model": "reflex continuity, apex 'ms', 18 parameters; priors PriorSet() (Chandra et al. 2025)",
        "mock": "make_reflex_mock(PRNGKey(0), 850, ReflexModel('continuity', 'ms'))",
        "quick": quick, "settings": SETTINGS[bool(quick)],
        "ess_definitions": {
            "NUTS/emcee": "arviz bulk ESS, minimum over the 18 parameters (emcee: walkers as chains)",
            "dynesty": "Kish ESS of the importance weights (sum w)^2/sum w^2; posterior from samples_equal()",
        },
        "agreement_criteria": f"|median - median_NUTS| <= {MEDIAN_TOL_SIGMA} sigma_NUTS and |w68/w68_NUTS - 1| <= {WIDTH_TOL}",
        "wall_time": "includes compilation; compile_s = JAX trace + lower + backend compile (jax.monitoring)",
        "load_average_before": load_before, "load_average_after": load_after,
        "cpu_count": os.cpu_count(), "device": device_name(),
        "nuts_chain_method_note": "run_nuts default chain_method on 1 CPU device is 'vectorized': at these settings 9 leapfrog "
                              "steps/draw, min ESS 2456, 132.8 s wall (18.5 ESS/s) in a separate run (load ~1) vs 'sequential' "
                              "78 s; the benchmark uses 'parallel' (4 XLA host devices, as jaxhalo fit) unless --sequential",
        "note": "machine shared with other jobs during the run; see the load averages",
    }


if __name__ == "__main__":
    q = "--quick" in FLAGS
    load0 = list(os.getloadavg())
    recs = run(quick=q, vectorized="--vectorized" in FLAGS, chain_method=CHAIN_METHOD)
    print(write_results("samplers", recs, _meta(q, load0, list(os.getloadavg()))))
