"""The run behind ``jaxhalo sbi nuts``: a posterior of the simulator parameters from one observed summary
vector by NUTS on the Gaussian synthetic likelihood of :mod:`jaxhalo.sbi.synthetic`.

Three stages, each timed:

1. **Covariance** (the stated approximation): ``n_cov`` independent simulations at a reference theta_ref,
   their sample covariance C with the Hartlap factor (:func:`~jaxhalo.sbi.synthetic.covariance_cholesky`),
   held fixed over the whole posterior, times the Percival et al. (2014) factor m1 for the noise of C itself
   (:func:`~jaxhalo.sbi.synthetic.percival_factor`, ``covariance_noise``).
2. **NUTS** over the free parameters with the prior's densities (Brooks et al. 2026 Table 1 by default),
   the mean of the summaries averaged over ``n_keys`` common-random-number keys at every theta, the gradient
   by forward-mode autodiff (numpyro's ``forward_mode_differentiation``; with the MW-LMC simulator also
   ``SimConfig(gradients="forward")``: no stored trajectory). The chains run side by side (``vmap``) in one
   compiled program of a few hundred iterations, called in chunks so that a progress bar can follow them.
   With ``mean="linear"`` the mean is first replaced by a local-linear surrogate placed by Gauss-Newton
   from theta_ref (:mod:`jaxhalo.sbi.surrogate`; C is estimated again at its centre), and NUTS runs on
   that: its gradients then cost no simulations.
3. **Diagnostics**: split R-hat, bulk and tail ESS per parameter, divergent transitions after warm-up, and
   the simulation budget (:meth:`SyntheticPosterior.budget`).

Counting the budget in simulation equivalents (one simulation of one parameter vector = 1):
the covariance costs its ``n_cov`` simulations; one NUTS gradient costs ``n_keys x (1 + P_free)`` -- each of
the K simulations of the mean carries P_free forward-mode tangents, each costed as one more simulation.
That convention *under*-counts on a CPU: ``benchmarks/bench_simulator_gradients.py`` measured one
synthetic-likelihood value + gradient in all 12 directions at 39.8 simulations per key (4,500 tracers,
2.2 Gyr, float64, 2 idle cores), i.e. ~3.2 simulations per tangent (:data:`FORWARD_TANGENT_COST_CPU`), and the budget also
reports the count at that measured cost;
the gradient evaluations are the leapfrog steps of every chain over warm-up and sampling (NUTS'
``num_steps``) plus one per chain at its start. numpyro's step-size search at the ends of the warm-up
adaptation windows (a few evaluations per window) is not counted.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import Array, lax
from jax.typing import ArrayLike

from .priors import SuitePrior
from .synthetic import covariance_cholesky, percival_factor, synthetic_likelihood_model

#: Cost of one forward-mode tangent through the MW-LMC simulator, in simulations: (39.84 - 1) / 12 from
#: one synthetic-likelihood value + gradient in 12 directions = 39.84 simulations per key (4,500 tracers, 2.2 Gyr, float64,
#: 2 CPU cores; benchmarks/results/simulator_gradients_cpu2.json).
FORWARD_TANGENT_COST_CPU: float = (39.84 - 1.0) / 12.0

__all__ = ["SyntheticLikelihoodError", "SyntheticPosterior", "batch_runner", "check_observed", "fix_parameters",
           "smooth_simulator", "synthetic_posterior"]

Simulator = Callable[[Array, Array], Array]


class SyntheticLikelihoodError(ValueError):
    """Bad input to :func:`synthetic_posterior` (observation, reference theta, settings)."""


def smooth_simulator(config: Any = None) -> Simulator:
    """``simulate(theta (12,), key) -> (52,)``: the smooth Brooks et al. summaries (km/s,
    :func:`~jaxhalo.simulation.smooth_summaries.smooth_summary_vector`) of one MW-LMC simulation with
    ``config`` (a :class:`~jaxhalo.simulation.brooks.SimConfig`, default the 2026 set-up), switched to
    forward-mode gradients and to NaN summaries (instead of an error) for parameters the model cannot realise."""
    # deferred: the simulator stack loads only when asked for
    from ..simulation.brooks import SimConfig
    from ..simulation.smooth_summaries import smooth_summary_vector

    cfg = dataclasses.replace(SimConfig() if config is None else config, gradients="forward", on_invalid="nan")

    def simulate(theta: Array, key: Array) -> Array:
        return smooth_summary_vector(theta, key, cfg)

    return simulate


def fix_parameters(prior: SuitePrior, theta_ref: ArrayLike, free: Sequence[str] | None = None) -> SuitePrior:
    """``prior`` with every parameter not in ``free`` fixed (a Delta) at its value in ``theta_ref`` (P,);
    ``free=None`` keeps the prior as it is. Raises :class:`SyntheticLikelihoodError` for an unknown name."""
    if free is None:
        return prior
    unknown = [n for n in free if n not in prior.names]
    if unknown:
        raise SyntheticLikelihoodError(f"unknown parameter(s) {unknown}; the prior has {list(prior.names)}")
    ref = np.asarray(theta_ref, dtype=float)
    return prior.with_overrides({n: dist.Delta(float(ref[i])) for i, n in enumerate(prior.names) if n not in free},
                                name=f"{prior.name}, free: {', '.join(free)}")


def check_observed(observed: ArrayLike, n_summaries: int, what: str = "the observed summary vector") -> np.ndarray:
    """``observed`` as a float (S,) vector; raises :class:`SyntheticLikelihoodError` naming the problem when it
    does not have ``n_summaries`` entries or has non-finite ones."""
    x = np.asarray(observed, dtype=float).reshape(-1)
    if x.size != n_summaries:
        raise SyntheticLikelihoodError(f"{what} has {x.size} entries; the simulator gives {n_summaries} summaries")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise SyntheticLikelihoodError(
            f"{what} has non-finite entries at {bad[:8].tolist()}{' ...' if bad.size > 8 else ''} (e.g. empty bins); "
            "the synthetic likelihood needs every summary")
    return x


def _raw_key(key: Array) -> Array:
    """A uint32 (2,) key for numpyro from a typed (``jax.random.key``) or raw (``PRNGKey``) key."""
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def _chunks(total: int, n_max: int) -> tuple[int, int]:
    """(number of calls, items per call) covering ``total`` items with calls of at most ``n_max`` each, as
    evenly as possible (the last call runs at most n_calls - 1 items more than needed)."""
    n = max(1, math.ceil(total / max(1, n_max)))
    return n, math.ceil(total / n)


@dataclasses.dataclass(frozen=True)
class SyntheticPosterior:
    """The result of :func:`synthetic_posterior`.

    theta : (chains, draws, P) posterior draws of all P parameters in the prior's units (fixed ones constant).
    names : the P parameter names; ``free`` the sampled ones (in the same order).
    theta_ref : (P,) the reference theta of the covariance.
    r_hat, ess_bulk, ess_tail : split R-hat (NaN for one chain) and ESS per free parameter.
    diverging : (chains, draws) whether each kept transition diverged; ``divergences`` their number.
    num_steps : (chains, iterations run) leapfrog steps (gradient evaluations) of every NUTS iteration,
        warm-up first; a few iterations past ``num_warmup + num_samples`` may have run (chunking) and count.
    n_cov_run : simulations run for the covariance (>= the ``n_cov`` asked for, chunking).
    n_keys, hartlap, num_warmup, num_samples : the settings used (``hartlap`` the factor on C^-1).
    covariance_factor : the factor C was multiplied by for its own noise (Percival m1; 1 with
        ``covariance_noise="none"``).
    timings_s : wall seconds per stage (``covariance_compile``, ``covariance``, ``nuts_compile``, ``nuts``; with a
        surrogate also ``surrogate`` and ``covariance_recentred``).
    surrogate : None for NUTS through the simulator; for ``mean="linear"`` the record of the linearisation
        (:meth:`~jaxhalo.sbi.surrogate.SurrogateFit.record`) and ``recentred_covariance_simulations``.
    """

    theta: np.ndarray
    names: tuple[str, ...]
    free: tuple[str, ...]
    theta_ref: np.ndarray
    r_hat: dict[str, float]
    ess_bulk: dict[str, float]
    ess_tail: dict[str, float]
    diverging: np.ndarray
    num_steps: np.ndarray
    n_cov_run: int
    n_keys: int
    hartlap: float
    num_warmup: int
    num_samples: int
    timings_s: dict[str, float]
    surrogate: dict[str, Any] | None = None
    covariance_factor: float = 1.0

    @property
    def free_draws(self) -> np.ndarray:
        """(chains, draws, P_free) draws of the free parameters."""
        return self.theta[..., [self.names.index(n) for n in self.free]]

    @property
    def divergences(self) -> int:
        """Divergent transitions after warm-up, all chains."""
        return int(np.sum(self.diverging))

    @property
    def max_r_hat(self) -> float:
        """Max split R-hat over the free parameters (NaN with one chain)."""
        vals = list(self.r_hat.values())
        return float(max(vals)) if vals and all(math.isfinite(v) for v in vals) else float("nan")

    @property
    def min_ess_bulk(self) -> float:
        """Min bulk ESS over the free parameters."""
        return float(min(self.ess_bulk.values()))

    def budget(self) -> dict[str, Any]:
        """The simulation budget in simulation equivalents (module docstring): covariance simulations,
        gradient evaluations, the cost of one gradient, and the totals."""
        n_chains = self.num_steps.shape[0]
        grads = int(np.sum(self.num_steps)) + n_chains
        if self.surrogate is None:
            per_grad = self.n_keys * (1 + len(self.free))
            per_grad_measured = self.n_keys * (1 + FORWARD_TANGENT_COST_CPU * len(self.free))
            fit, fit_measured = 0, 0.0
        else:  # NUTS runs on the linear surrogate: its gradients cost no simulations, its fit does
            per_grad = per_grad_measured = 0
            fit = self.surrogate["simulations"] + self.surrogate["tangents"]
            fit_measured = self.surrogate["simulations"] + FORWARD_TANGENT_COST_CPU * self.surrogate["tangents"]
        return {
            "covariance_simulations": int(self.n_cov_run),
            "surrogate_simulation_equivalents": int(fit),
            "gradient_evaluations": grads,
            "leapfrog_steps_warmup": int(np.sum(self.num_steps[:, :self.num_warmup])),
            "leapfrog_steps_sampling": int(np.sum(self.num_steps[:, self.num_warmup:])),
            "simulation_equivalents_per_gradient": per_grad,
            "nuts_simulation_equivalents": grads * per_grad,
            "total_simulation_equivalents": int(self.n_cov_run + fit + grads * per_grad),
            "simulation_equivalents_per_gradient_measured_cpu": per_grad_measured,
            "total_simulation_equivalents_measured_cpu": int(self.n_cov_run + fit_measured + grads * per_grad_measured),
            "counting": "covariance simulations (at theta_ref, and again at the surrogate's centre when recentred) + "
                        "the surrogate's simulations and tangents (mean='linear': one simulation per design point "
                        "and key, one equivalent per tangent) + gradient evaluations x n_keys x (1 + free "
                        "parameters) (mean='simulator': each of the n_keys simulations of the mean carries one "
                        "forward-mode tangent per free parameter, each costed as a simulation; 0 on the surrogate); "
                        "gradient evaluations = NUTS leapfrog steps of every chain (warm-up and sampling) + 1 per "
                        "chain at its start (numpyro's step-size searches at the ends of the adaptation windows not "
                        "counted); *_measured_cpu: each tangent costed at the "
                        f"{FORWARD_TANGENT_COST_CPU:.2f} simulations measured on 2 CPU cores "
                        "(benchmarks/results/simulator_gradients_cpu2.json)",
        }


def synthetic_posterior(
    prior: SuitePrior,
    simulate: Simulator,
    observed: ArrayLike,
    key: Array,
    theta_ref: ArrayLike,
    *,
    n_keys: int = 8,
    n_cov: int = 200,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    target_accept_prob: float = 0.85,
    max_tree_depth: int = 10,
    init: Literal["prior", "reference"] = "prior",
    mean: Literal["simulator", "linear"] = "simulator",
    slopes: Literal["secant", "tangent"] = "secant",
    n_linearisations: int = 4,
    recentre_covariance: bool = True,
    refine_keys: int = 0,
    compression: Literal["none", "score"] = "none",
    covariance_noise: Literal["percival", "none"] = "percival",
    slope_noise: bool = False,
    slope_adjustment: Literal["none", "godambe"] = "none",
    independent_mean: bool = True,
    cov_batch: int = 50,
    n_progress_chunks: int = 20,
    progress: bool = False,
) -> SyntheticPosterior:
    """NUTS on the synthetic likelihood of ``observed`` (S,) under ``prior`` (module docstring).

    Parameters
    ----------
    prior : the prior; parameters it fixes (Delta) are not sampled (see :func:`fix_parameters`).
    simulate : ``simulate(theta (P,), key) -> (S,)``, pure JAX, differentiable in theta with the key fixed.
    observed : (S,) the observed summaries, in the simulator's order and units; every entry finite.
    key : seeds the covariance simulations, the K common-random-number keys and the chains.
    theta_ref : (P,) the reference theta of the covariance (inside the prior's support).
    n_keys : K, common-random-number keys of the mean.
    n_cov : simulations for the covariance (more than S + 2).
    num_warmup, num_samples, num_chains : NUTS iterations per chain and chains (dense mass matrix adapted).
    target_accept_prob, max_tree_depth : NUTS settings.
    init : "prior" (default: a uniform start in [-2, 2] of the unconstrained space, one per chain, as numpyro's,
        re-drawn where the likelihood is not finite) or "reference" (every chain at theta_ref).
    mean : "simulator" (default: the mean of the K simulations at every theta NUTS visits) or "linear" (a
        local-linear surrogate of it placed by Gauss-Newton from theta_ref, :mod:`jaxhalo.sbi.surrogate`: the
        simulations go into the linearisations, NUTS then costs none).
    slopes, n_linearisations : with ``mean="linear"``, how the slopes are estimated ("secant" or "tangent") and
        at most how many linearisations (:func:`~jaxhalo.sbi.surrogate.fit_linear_mean`).
    recentre_covariance : with ``mean="linear"``, estimate C again (``n_cov`` simulations) at the surrogate's
        centre when it is not theta_ref; the posterior is then sampled with that C.
    refine_keys : with ``mean="linear"``, 0 (default) or K' > 0: after the Gauss-Newton placement, estimate C
        at its last mode (``n_cov`` simulations, instead of at the last centre) and linearise once more there,
        with K' fresh common-random-number keys and the placement's posterior sigma as design half-widths; NUTS
        samples that linearisation (its slopes' and mean's noise with K'). Costs n_cov + (1 + 2 P) K'
        simulations; the final surrogate is then centred on the mode whatever the placement's convergence.
    compression : with ``refine_keys``, "none" (default) or "score": NUTS samples the synthetic likelihood of the
        F compressed summaries t = W x, one per free parameter, with W from the placement's last slopes and C
        (independent of the refinement's simulations), the covariance W C W^T from the refinement's covariance
        simulations with the Hartlap and Percival factors for F summaries (:mod:`jaxhalo.sbi.compression`): the
        refinement's slope noise then adds up over F summaries instead of S; no extra simulations.
    covariance_noise : "percival" (default): C times m1 of Percival et al. (2014) for n_cov simulations, S
        summaries and the free parameters (:func:`~jaxhalo.sbi.synthetic.percival_factor`; 1.17 for 200, 52, 12),
        so that the posterior is as wide as the scatter that the noise of C adds; "none": C with the Hartlap
        factor only.
    slope_noise : with ``mean="linear"``, add the secants' Monte Carlo covariance along theta - centre to the
        likelihood's (:class:`~jaxhalo.sbi.surrogate.LinearMean` ``slope_deviations``); off by default, since its
        determinant over-states the information (:mod:`jaxhalo.sbi.surrogate`, "The surrogate's own error").
    slope_adjustment : with ``mean="linear"`` and secant slopes from K >= 2 keys, "none" (default) or "godambe":
        sample the Godambe-adjusted likelihood, whose information H J^-1 H (H = J less the slopes' Monte Carlo
        noise estimated from the per-key secants) replaces B^T C^-1 B, so that the slopes' noise does not pass for
        information (:class:`~jaxhalo.sbi.surrogate.LinearMean` ``slope_adjustment``); applies to the compressed
        summaries too. Not with ``slope_noise``.
    independent_mean : with ``mean="linear"``, each linearisation's centre mean from keys independent of its
        slopes' (default; :func:`~jaxhalo.sbi.surrogate.fit_linear_mean`).
    cov_batch, n_progress_chunks : simulations per compiled call, and calls the NUTS iterations are
        split into (each a progress step; the programs are compiled once).
    progress : tqdm bars for the covariance simulations and the NUTS iterations.

    Returns
    -------
    SyntheticPosterior
        The draws, diagnostics, budget and timings.

    Raises
    ------
    SyntheticLikelihoodError
        A wrong-length or non-finite observation, a reference theta outside the prior, bad settings.
    FisherError
        The covariance cannot be estimated (:class:`~jaxhalo.sbi.fisher.FisherError`).
    """
    from numpyro.infer.hmc import hmc  # deferred: only when sampling
    from numpyro.infer.util import potential_energy
    from tqdm.auto import tqdm

    for name, v, lo in (("n_keys", n_keys, 1), ("num_warmup", num_warmup, 0), ("num_samples", num_samples, 1),
                        ("num_chains", num_chains, 1), ("max_tree_depth", max_tree_depth, 1), ("cov_batch", cov_batch, 1),
                        ("n_progress_chunks", n_progress_chunks, 1), ("refine_keys", refine_keys, 0)):
        if not (isinstance(v, (int, np.integer)) and v >= lo):
            raise SyntheticLikelihoodError(f"{name} must be an integer >= {lo}, got {v!r}")
    if init not in ("prior", "reference"):
        raise SyntheticLikelihoodError(f"init must be 'prior' or 'reference', got {init!r}")
    if mean not in ("simulator", "linear"):
        raise SyntheticLikelihoodError(f"mean must be 'simulator' or 'linear', got {mean!r}")
    if slopes not in ("secant", "tangent"):
        raise SyntheticLikelihoodError(f"slopes must be 'secant' or 'tangent', got {slopes!r}")
    if refine_keys and mean != "linear":
        raise SyntheticLikelihoodError(f"refine_keys={refine_keys} re-linearises a linear mean; it needs mean='linear'")
    if compression not in ("none", "score"):
        raise SyntheticLikelihoodError(f"compression must be 'none' or 'score', got {compression!r}")
    if compression == "score" and not (mean == "linear" and refine_keys):
        raise SyntheticLikelihoodError("compression='score' compresses onto the placement's slopes before the "
                                       "refinement: it needs mean='linear' and refine_keys > 0")
    if slope_adjustment not in ("none", "godambe"):
        raise SyntheticLikelihoodError(f"slope_adjustment must be 'none' or 'godambe', got {slope_adjustment!r}")
    if slope_adjustment == "godambe" and not (mean == "linear" and slopes == "secant" and not slope_noise):
        raise SyntheticLikelihoodError("slope_adjustment='godambe' adjusts for the noise of the secant slopes of a "
                                       "linear mean: it needs mean='linear', slopes='secant' and slope_noise=False")
    if slope_adjustment == "godambe" and (refine_keys or n_keys) < 2:
        raise SyntheticLikelihoodError("slope_adjustment='godambe' estimates the slopes' noise from their scatter "
                                       "over keys: the sampled linearisation needs at least 2 keys")
    if covariance_noise not in ("percival", "none"):
        raise SyntheticLikelihoodError(f"covariance_noise must be 'percival' or 'none', got {covariance_noise!r}")
    if not (isinstance(n_linearisations, (int, np.integer)) and n_linearisations >= 1):
        raise SyntheticLikelihoodError(f"n_linearisations must be an integer >= 1, got {n_linearisations!r}")
    theta_ref = jnp.asarray(theta_ref, dtype=jnp.result_type(float))
    try:
        prior.check_theta(theta_ref)
    except ValueError as exc:
        raise SyntheticLikelihoodError(f"the reference theta: {exc}") from exc
    free = tuple(n for n in prior.names if not isinstance(prior.dists[n], dist.Delta))
    if not free:
        raise SyntheticLikelihoodError("the prior fixes every parameter: nothing to sample")
    key = jax.random.key(key) if isinstance(key, (int, np.integer)) else key
    k_cov, k_sim, k_run = jax.random.split(key, 3)
    S = jax.eval_shape(simulate, theta_ref, k_sim).shape[0]
    x = jnp.asarray(check_observed(observed, S), dtype=theta_ref.dtype)
    timings: dict[str, float] = {}

    def noise_factor(n: int) -> float:
        """Percival's m1 for a covariance from n simulations (1 with covariance_noise='none')."""
        return percival_factor(n, S, len(free)) if covariance_noise == "percival" else 1.0

    # 1. the covariance at theta_ref, in chunks of simulations (one compiled program)
    t0 = time.perf_counter()
    run_batch = batch_runner(simulate, theta_ref, k_cov, cov_batch)
    timings["covariance_compile"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    L, h, n_cov_run, c_factor = _covariance(run_batch, theta_ref, k_cov, n_cov, cov_batch, noise_factor, progress,
                                            "covariance simulations")
    timings["covariance"] = time.perf_counter() - t0

    # 1b. the linear surrogate of the mean (mean="linear"), and C again at its centre
    sim_keys = jax.random.split(k_sim, n_keys)
    record = None
    if mean == "linear":
        from .compression import (  # deferred: only for the surrogate
            compress_linear_mean,
            compressed_covariance_cholesky,
            score_compression,
        )
        from .surrogate import fit_linear_mean  # deferred: only for the surrogate

        jac = None
        if slopes == "tangent":
            jac = jax.jit(lambda th, ks: jnp.mean(jax.vmap(lambda k: jax.jacfwd(simulate)(th, k))(ks), axis=0))
        t0 = time.perf_counter()
        with tqdm(unit="sim", desc="surrogate simulations", disable=not progress, mininterval=0.5) as bar:
            fit = fit_linear_mean(run_batch, x, L, prior, theta_ref, sim_keys, n_linearisations=n_linearisations,
                                  slopes=slopes, jacobian=jac, independent_mean=independent_mean, progress=bar.update)
        timings["surrogate"] = time.perf_counter() - t0
        record = {**fit.record(), "recentred_covariance_simulations": 0}
        centre = jnp.asarray(fit.mode if refine_keys else fit.surrogate.centre, dtype=theta_ref.dtype)
        L_placement = L
        if (recentre_covariance or refine_keys) and not np.array_equal(np.asarray(centre), np.asarray(theta_ref)):
            t0 = time.perf_counter()
            L, h, n_re, c_factor = _covariance(run_batch, centre, jax.random.fold_in(k_cov, 1), n_cov, cov_batch,
                                               noise_factor, progress, "covariance at the surrogate's centre")
            timings["covariance_recentred"] = time.perf_counter() - t0
            n_cov_run += n_re
            record["recentred_covariance_simulations"] = n_re
        if refine_keys:  # one more linearisation at the placement's mode, with K' fresh keys and the new C
            sim_keys = jax.random.split(jax.random.fold_in(k_sim, 1), refine_keys)
            t0 = time.perf_counter()
            with tqdm(unit="sim", desc="refinement simulations", disable=not progress, mininterval=0.5) as bar:
                sigma = np.sqrt(np.clip(np.diag(fit.posterior_cov), 0.0, None))
                final = fit_linear_mean(run_batch, x, L, prior, centre, sim_keys, n_linearisations=1, slopes=slopes,
                                        jacobian=jac, widths=sigma, independent_mean=independent_mean,
                                        progress=bar.update)
            timings["refinement"] = time.perf_counter() - t0
            record["refinement"] = final.record()
            record["simulations"] += final.simulations
            record["tangents"] += final.tangents
            if compression == "score":  # onto the placement's slopes (module jaxhalo.sbi.compression)
                W = score_compression(fit.surrogate.slopes, L_placement, [n in free for n in prior.names])
                C_mode = np.asarray(L) @ np.asarray(L).T * (h / c_factor)  # the sample covariance at the mode
                n_mode = record["recentred_covariance_simulations"] or n_cov_run  # (0: the mode is theta_ref itself)
                L, h, c_factor = compressed_covariance_cholesky(W, C_mode, n_mode, len(free),
                                                                covariance_noise == "percival")
                L = jnp.asarray(L, dtype=theta_ref.dtype)
                x = jnp.asarray(W, dtype=theta_ref.dtype) @ x
                final = dataclasses.replace(final, surrogate=compress_linear_mean(final.surrogate, W))
                record["compression"] = {"summaries": int(W.shape[0]), "hartlap": h, "percival_factor": c_factor,
                                         "slopes": "the placement's last linearisation"}
            fit = final
        if slope_adjustment == "godambe":
            simulate = dataclasses.replace(fit.surrogate, slope_adjustment=True)
        else:
            simulate = fit.surrogate if slope_noise else dataclasses.replace(fit.surrogate, slope_deviations=None)
        record["slope_noise"], record["independent_mean"] = bool(slope_noise), bool(independent_mean)
        record["slope_adjustment"] = slope_adjustment

    # 2. NUTS: every chain vmapped, iterations in chunks of one compiled scan
    k_chain = _raw_key(k_run)
    model = functools.partial(synthetic_likelihood_model, prior, simulate)
    potential = functools.partial(potential_energy, model, (x, sim_keys, L), {})  # of the unconstrained params
    to_free = {n: dist.biject_to(prior.dists[n].support) for n in free}
    z_ref = {n: to_free[n].inv(theta_ref[prior.names.index(n)]) for n in free}
    init_kernel, sample_kernel = hmc(potential, algo="NUTS")

    def start(k: Array) -> dict[str, Array]:
        """The unconstrained start of one chain: theta_ref, or uniform in [-2, 2] re-drawn (up to 100 times)
        where the likelihood is not finite (parameters the simulator cannot realise)."""
        if init == "reference":
            return z_ref

        def draw(k):
            return {n: jax.random.uniform(kn, (), theta_ref.dtype, -2.0, 2.0) for n, kn in zip(free, jax.random.split(k, len(free)))}

        def retry(c):
            i, _, k = c
            k, sub = jax.random.split(k)
            return i + 1, draw(sub), k

        k0, k1 = jax.random.split(k)
        return lax.while_loop(lambda c: (c[0] < 100) & ~jnp.isfinite(potential(c[1])), retry, (0, draw(k0), k1))[1]

    def init_one(k: Array):
        k_z, k_hmc = jax.random.split(k)
        return init_kernel(start(k_z), num_warmup, dense_mass=True, target_accept_prob=target_accept_prob,
                           max_tree_depth=max_tree_depth, forward_mode_differentiation=True, rng_key=k_hmc)

    t0 = time.perf_counter()
    state = jax.jit(jax.vmap(init_one))(jax.random.split(k_chain, num_chains))
    if not np.all(np.isfinite(np.asarray(state.potential_energy))):
        raise SyntheticLikelihoodError("no chain start with a finite synthetic likelihood (100 draws per chain; the "
                                       "simulator gives NaN summaries there?); try init='reference'")
    total = num_warmup + num_samples
    n_calls, per_call = _chunks(total, math.ceil(total / n_progress_chunks))

    def iterations(state):
        def step(s, _):
            s = sample_kernel(s)
            return s, (s.z, s.diverging, s.num_steps)

        return lax.scan(step, state, None, length=per_call)

    run = jax.jit(jax.vmap(iterations)).lower(state).compile()
    timings["nuts_compile"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    zs, divs, steps = [], [], []
    with tqdm(total=n_calls * per_call, unit="it", desc=f"NUTS {num_chains} chains (warm-up + draws)",
              disable=not progress, mininterval=0.5) as bar:
        for _ in range(n_calls):
            state, (z, d, n) = run(state)
            zs.append(jax.tree_util.tree_map(np.asarray, z))
            divs.append(np.asarray(d))
            steps.append(np.asarray(n))
            bar.update(per_call)
    timings["nuts"] = time.perf_counter() - t0

    # 3. draws in the prior's units, diagnostics
    keep = slice(num_warmup, num_warmup + num_samples)
    z = {n: np.concatenate([c[n] for c in zs], axis=1)[:, keep] for n in free}
    cols = []
    for i, n in enumerate(prior.names):
        d = prior.dists[n]
        if n in free:
            cols.append(np.asarray(dist.biject_to(d.support)(jnp.asarray(z[n]))))
        else:
            cols.append(np.full((num_chains, num_samples), float(np.asarray(d.v))))
    theta = np.stack(cols, axis=-1)
    div = np.concatenate(divs, axis=1)[:, keep].astype(bool)
    import arviz as az  # deferred: diagnostics only

    ds = az.convert_to_dataset({n: theta[..., prior.names.index(n)] for n in free})
    r_hat = ({n: float(v) for n, v in az.rhat(ds).items()} if num_chains > 1 else {n: float("nan") for n in free})
    ess_b = {n: float(v) for n, v in az.ess(ds, method="bulk").items()}
    ess_t = {n: float(v) for n, v in az.ess(ds, method="tail").items()}
    return SyntheticPosterior(theta=theta, names=tuple(prior.names), free=free, theta_ref=np.asarray(theta_ref),
                              r_hat=r_hat, ess_bulk=ess_b, ess_tail=ess_t, diverging=div,
                              num_steps=np.concatenate(steps, axis=1), n_cov_run=n_cov_run, n_keys=int(sim_keys.shape[0]), hartlap=h,
                              num_warmup=num_warmup, num_samples=num_samples, timings_s=timings, surrogate=record,
                              covariance_factor=c_factor)


def batch_runner(simulate: Simulator, theta: Array, key: Array, batch: int) -> Callable[[Any, Array], np.ndarray]:
    """``run(thetas (n, P), keys (n,)) -> (n, S)`` numpy: ``simulate`` over (theta, key) pairs in compiled calls of
    ``batch`` pairs (one program; the last call padded with its final pair). ``theta`` (P,) and ``key`` only
    give the shapes and dtypes the program is compiled for. The ``run`` of
    :func:`~jaxhalo.sbi.surrogate.fit_linear_mean` and of the covariance simulations."""
    keys0 = jax.random.split(key, batch)
    program = jax.jit(jax.vmap(simulate)).lower(jnp.broadcast_to(theta, (batch,) + theta.shape), keys0).compile()

    def run(thetas: Any, keys: Array) -> np.ndarray:
        thetas = jnp.asarray(thetas, dtype=theta.dtype)
        n = thetas.shape[0]
        out = []
        for i in range(0, n, batch):
            th, ks = thetas[i:i + batch], keys[i:i + batch]
            pad = batch - th.shape[0]
            if pad:
                th = jnp.concatenate([th, jnp.repeat(th[-1:], pad, axis=0)])
                ks = jnp.concatenate([ks, jnp.repeat(ks[-1:], pad, axis=0)])
            out.append(np.asarray(program(th, ks))[:batch - pad])
        return np.concatenate(out)

    return run


def _covariance(run: Callable[[Any, Array], np.ndarray], theta: Array, key: Array, n_cov: int, batch: int,
                noise_factor: Callable[[int], float], progress: bool, desc: str) -> tuple[Array, float, int, float]:
    """(Cholesky factor of f C / h, Hartlap factor h, simulations run n, f = ``noise_factor(n)``) from ``n_cov``
    (rounded up to whole calls of about ``batch``) independent simulations at ``theta``, with a progress bar."""
    from tqdm.auto import tqdm  # deferred: progress bars only

    n_calls, per_call = _chunks(n_cov, batch)
    n_run = n_calls * per_call
    keys = jax.random.split(key, n_run)
    thetas = jnp.broadcast_to(theta, (per_call,) + theta.shape)
    sims = []
    with tqdm(total=n_run, unit="sim", desc=desc, disable=not progress, mininterval=0.5) as bar:
        for i in range(n_calls):
            sims.append(run(thetas, keys[i * per_call:(i + 1) * per_call]))
            bar.update(per_call)
    L, h = covariance_cholesky(np.concatenate(sims))
    f = noise_factor(n_run)
    return L * math.sqrt(f), h, n_run, f
