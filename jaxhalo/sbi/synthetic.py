"""Gradient-based posteriors from a differentiable simulator: a Gaussian synthetic likelihood sampled with NUTS.

For summaries s(theta, key) of a simulator that is differentiable in theta with the key held fixed, the
synthetic likelihood (Wood 2010; Price et al. 2018) of observed summaries x is

    ln L(theta) = ln N(x; mu_K(theta), (1 + 1/K) C),    mu_K(theta) = (1/K) sum_k s(theta, key_k),

with the same K keys at every theta (common random numbers: mu_K is a smooth function of theta, so NUTS
can use its gradient) and C the covariance of one simulation's summaries. The factor 1 + 1/K accounts for
the Monte Carlo error of mu_K, which is a fixed offset for a fixed set of keys. C is a *stated
approximation*: estimated once from simulations at a reference theta (for example the fiducial point or a
first estimate) and held fixed, with the Hartlap et al. (2007) factor on its inverse -- the covariance
changes slowly across the posterior compared with the mean.

The Hartlap factor makes C^-1 unbiased, but the noise of C from n simulations still reaches the parameters:
the estimate scatters more than the likelihood's width says, by the factor m1 of Percival et al. (2014,
MNRAS 439, 2531, eq. 18) in variance (:func:`percival_factor`: 1.17 for S = 52 summaries, P = 12 parameters
and n = 200). :func:`~jaxhalo.sbi.nuts_sl.synthetic_posterior` multiplies C by it (``covariance_noise``).

Cost of one NUTS gradient: K simulations with P forward-mode tangents each (about K (1 + P) simulation
equivalents; :mod:`benchmarks.bench_simulator_gradients` measures it).

:func:`synthetic_log_likelihood` is the likelihood, :func:`synthetic_likelihood_model` the numpyro model
with a :class:`~jaxhalo.sbi.priors.SuitePrior`, and :func:`run_synthetic_nuts` samples it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array
from jax.typing import ArrayLike
from numpyro.infer import MCMC, NUTS

from .fisher import FisherError, summary_covariance
from .priors import SuitePrior

__all__ = [
    "SyntheticNutsResult",
    "hartlap_cholesky",
    "percival_factor",
    "reference_covariance",
    "run_synthetic_nuts",
    "run_synthetic_nuts_batch",
    "synthetic_likelihood_model",
    "synthetic_log_likelihood",
]

Simulator = Callable[[Array, Array], Array]


def synthetic_log_likelihood(simulate: Simulator, theta: ArrayLike, observed: ArrayLike, keys: Array,
                             precision_cholesky: ArrayLike) -> Array:
    """ln N(observed; mu_K(theta), (1 + 1/K) C) up to the constant -(S/2) ln 2 pi - (1/2) ln det C.

    ``simulate(theta (P,), key) -> (S,)``; ``keys`` (K,) the common random numbers; ``precision_cholesky``
    the lower Cholesky factor L of C (S, S) (so C = L L^T; see :func:`reference_covariance`). Pure JAX:
    jit, grad and jacfwd go through ``simulate``.
    """
    theta = jnp.asarray(theta)
    mu = jnp.mean(jax.vmap(lambda k: simulate(theta, k))(keys), axis=0)
    K = keys.shape[0]
    r = jax.scipy.linalg.solve_triangular(jnp.asarray(precision_cholesky), jnp.asarray(observed) - mu, lower=True)
    return -0.5 * jnp.sum(r * r) / (1.0 + 1.0 / K) - 0.5 * mu.shape[0] * jnp.log1p(1.0 / K)


def reference_covariance(simulate: Simulator, theta_ref: ArrayLike, key: Array, n: int) -> tuple[Array, float]:
    """(Cholesky factor of C / h (S, S), Hartlap factor h) from ``n`` independent simulations at ``theta_ref``:
    C the sample covariance, h = (n - S - 2) / (n - 1) debiasing its inverse, so that the returned factor
    L satisfies (L L^T)^-1 = h C^-1."""
    _, C = summary_covariance(simulate, theta_ref, jax.random.split(key, n))
    return hartlap_cholesky(C, n)


def covariance_cholesky(simulations: ArrayLike) -> tuple[Array, float]:
    """:func:`reference_covariance` from simulations already run: ``simulations`` (n, S) summaries of n
    independent simulations at one theta -> (Cholesky factor of C / h (S, S), Hartlap factor h). Raises
    :class:`~jaxhalo.sbi.fisher.FisherError` naming the non-finite summaries (empty bins: too few particles?)."""
    s = jnp.asarray(simulations)
    bad = np.flatnonzero(~np.all(np.isfinite(np.asarray(s)), axis=0))
    if bad.size:
        raise FisherError(f"summaries {bad[:8].tolist()}{' ...' if bad.size > 8 else ''} are not finite in "
                          f"{int(np.sum(~np.all(np.isfinite(np.asarray(s)), axis=1)))} of the {s.shape[0]} covariance "
                          "simulations (empty bins: more particles, or a reference theta the simulator can realise)")
    return hartlap_cholesky(jnp.cov(s, rowvar=False, ddof=1), s.shape[0])


def percival_factor(n_sims: int, n_summaries: int, n_parameters: int) -> float:
    """m1 of Percival et al. (2014, eq. 18): the factor by which the noise of a covariance estimated from
    ``n_sims`` simulations (Hartlap factor applied) widens the scatter of ``n_parameters`` parameters fitted to
    ``n_summaries`` summaries beyond the width the likelihood gives them. Multiplying C by m1 gives that
    width. With D = n_sims - n_summaries,

        A = 2 / ((D - 1)(D - 4)),   B = (D - 2) / ((D - 1)(D - 4)),   m1 = (1 + B (S - P)) / (1 + A + B (P + 1)).

    1 as n_sims -> infinity. Raises :class:`~jaxhalo.sbi.fisher.FisherError` for n_sims <= n_summaries + 4
    (undefined)."""
    S, P = int(n_summaries), int(n_parameters)
    D = int(n_sims) - S
    if D <= 4:
        raise FisherError(f"the Percival factor needs more than S + 4 = {S + 4} covariance simulations, got {n_sims}")
    A = 2.0 / ((D - 1) * (D - 4))
    B = (D - 2.0) / ((D - 1) * (D - 4))
    return (1.0 + B * (S - P)) / (1.0 + A + B * (P + 1))


def hartlap_cholesky(C: Array, n: int) -> tuple[Array, float]:
    """(Cholesky factor of C / h (S, S), Hartlap et al. (2007) factor h = (n - S - 2) / (n - 1)) of a sample
    covariance ``C`` (S, S) from ``n`` independent simulations. Raises :class:`~jaxhalo.sbi.fisher.FisherError`
    for n <= S + 2 or a C that is not positive definite."""
    S = C.shape[0]
    if n < S + 3:
        raise FisherError(f"need more than S + 2 = {S + 2} simulations for the covariance of {S} summaries, got {n}")
    h = (n - S - 2) / (n - 1)
    L = jnp.linalg.cholesky(C / h)
    if not bool(jnp.all(jnp.isfinite(L))):
        raise FisherError("the summaries' covariance is not positive definite (constant or duplicated summaries?)")
    return L, h


def synthetic_likelihood_model(prior: SuitePrior, simulate: Simulator, observed: Array, keys: Array,
                               precision_cholesky: Array) -> None:
    """numpyro model: theta from ``prior`` (one site per parameter, fixed (Delta) parameters as deterministic
    sites), the synthetic log-likelihood as a factor (a ``simulate`` with a ``synthetic_log_likelihood(theta,
    observed, K, precision_cholesky)`` method, such as :class:`~jaxhalo.sbi.surrogate.LinearMean`, supplies its own)."""
    cols = []
    for n in prior.names:
        d = prior.dists[n]
        if isinstance(d, dist.Delta):
            cols.append(numpyro.deterministic(n, d.v))
        else:
            cols.append(numpyro.sample(n, d))
    theta = jnp.stack([jnp.asarray(c, dtype=jnp.result_type(float)) for c in cols])
    numpyro.deterministic("theta", theta)
    own = getattr(simulate, "synthetic_log_likelihood", None)  # a surrogate with its own error model
    ll = (own(theta, observed, keys.shape[0], precision_cholesky) if own is not None
          else synthetic_log_likelihood(simulate, theta, observed, keys, precision_cholesky))
    numpyro.factor("synthetic_likelihood", ll)


def _free_indices(prior: SuitePrior) -> list[int]:
    """Indices of the sampled (not fixed by a Delta) parameters."""
    return [i for i, n in enumerate(prior.names) if not isinstance(prior.dists[n], dist.Delta)]


def _max_r_hat(theta: np.ndarray, free: list[int]) -> float:
    """Max split R-hat over the ``free`` parameters of draws (chains, draws, P); NaN for one chain."""
    import arviz as az  # deferred: diagnostics only

    return float(max(az.rhat(theta[..., i]) for i in free)) if theta.shape[0] > 1 else float("nan")


@dataclass(frozen=True)
class SyntheticNutsResult:
    """Draws ``theta`` (chains, draws, P) named by ``names``, the numpyro ``mcmc``, max split R-hat, min bulk ESS
    and the number of divergent transitions after warm-up."""

    theta: np.ndarray
    names: tuple[str, ...]
    mcmc: MCMC
    max_r_hat: float
    min_ess_bulk: float
    divergences: int

    def to_inference_data(self):
        """arviz InferenceData: one posterior variable per parameter (dims chain, draw), sample_stats."""
        import arviz as az  # deferred: arviz loads only when results are converted

        return az.from_numpyro(self.mcmc)


def run_synthetic_nuts(
    prior: SuitePrior,
    simulate: Simulator,
    observed: ArrayLike,
    key: Array,
    precision_cholesky: ArrayLike,
    n_keys: int = 8,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 2,
    chain_method: str = "sequential",
    progress_bar: bool = False,
    target_accept_prob: float = 0.85,
    init_theta: ArrayLike | None = None,
    dense_mass: bool = True,
    mcmc: MCMC | None = None,
) -> SyntheticNutsResult:
    """NUTS on the synthetic likelihood of ``observed`` (S,) with ``n_keys`` common-random-number keys.

    ``key`` is split into the simulation keys (fixed for the whole run) and the sampler's key.
    ``dense_mass`` (default) adapts a full mass matrix: the summaries constrain combinations of the
    parameters (e.g. M200 with lambda_DF), whose correlations a diagonal one leaves to deep trees.
    ``init_theta`` (P,) starts every chain there (default: numpyro's uniform init in the unconstrained
    space). Pass a previous result's ``mcmc`` to reuse its compilation for another observation of the
    same shape, prior and simulator (the observation, keys and covariance are traced model arguments).
    """
    k_sim, k_run = jax.random.split(key)
    keys = jax.random.split(k_sim, n_keys)
    if mcmc is None:
        kw = {}
        if init_theta is not None:
            from numpyro.infer import (
                init_to_value,  # deferred: only with a starting point
            )

            kw["init_strategy"] = init_to_value(values={n: float(v) for n, v in zip(prior.names, np.asarray(init_theta))
                                                        if not isinstance(prior.dists[n], dist.Delta)})
        model = functools.partial(synthetic_likelihood_model, prior, simulate)  # arrays stay traced model args
        kernel = NUTS(model, target_accept_prob=target_accept_prob, dense_mass=dense_mass, **kw)
        mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                    chain_method=chain_method, progress_bar=progress_bar, jit_model_args=True)
    mcmc.run(k_run, jnp.asarray(observed), keys, jnp.asarray(precision_cholesky),
             extra_fields=("diverging",))
    theta = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"])
    import arviz as az  # deferred: diagnostics only

    free = _free_indices(prior)
    r_hat = _max_r_hat(theta, free)
    ess = float(np.min([az.ess(theta[..., i]) for i in free]))
    div = int(np.sum(np.asarray(mcmc.get_extra_fields()["diverging"])))
    return SyntheticNutsResult(theta, tuple(prior.names), mcmc, r_hat, ess, div)


def run_synthetic_nuts_batch(
    prior: SuitePrior,
    simulate: Simulator,
    observed: ArrayLike,
    key: Array,
    precision_cholesky: ArrayLike,
    n_keys: int = 8,
    num_warmup: int = 300,
    num_samples: int = 300,
    num_chains: int = 2,
    target_accept_prob: float = 0.85,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NUTS on the synthetic likelihoods of M observations at once: one compiled program ``vmap``-ped over the
    observations and chains (numpyro's functional ``hmc`` kernel with a dense mass matrix, warm-up adaptation
    included, in a ``lax.scan``), for coverage studies of many mocks -- on a GPU the mocks run side by side.

    ``observed`` (M, S). Returns (theta (M, chains, draws, P), divergences (M,), max split R-hat (M,)).
    Each observation gets its own keys (split from ``key``): CRN keys for its simulations, sampler keys
    for its chains; chains start from uniform draws in [-2, 2] of the unconstrained space (numpyro's default).
    """
    from numpyro.infer.hmc import hmc  # deferred: the functional kernel only here
    from numpyro.infer.util import initialize_model

    observed = jnp.asarray(observed)
    L = jnp.asarray(precision_cholesky)
    M = observed.shape[0]
    model = functools.partial(synthetic_likelihood_model, prior, simulate)
    k0 = jax.random.split(key, M + 1)
    keys0 = jax.random.split(k0[0], n_keys)
    info, potential_gen, postprocess_gen, _ = initialize_model(
        k0[0], model, model_args=(observed[0], keys0, L), dynamic_args=True)
    template = info.z

    def one_chain(x, sim_keys, rng):
        pot = potential_gen(x, sim_keys, L)
        init_kernel, sample_kernel = hmc(pot, algo="NUTS")
        leaves, tree = jax.tree_util.tree_flatten(template)
        ks = jax.random.split(rng, len(leaves) + 1)
        z0 = jax.tree_util.tree_unflatten(
            tree, [jax.random.uniform(k, jnp.shape(v), minval=-2.0, maxval=2.0) for k, v in zip(ks[1:], leaves)])
        state = init_kernel(z0, num_warmup, dense_mass=True, target_accept_prob=target_accept_prob, rng_key=ks[0])

        def step(s, _):
            s = sample_kernel(s)
            return s, (s.z, s.diverging)

        _, (zs, div) = jax.lax.scan(step, state, None, length=num_warmup + num_samples)
        post = jax.vmap(postprocess_gen(x, sim_keys, L))(jax.tree_util.tree_map(lambda a: a[num_warmup:], zs))
        return post["theta"], jnp.sum(div[num_warmup:])

    def one_observation(x, k):
        k_sim, k_run = jax.random.split(k)
        return jax.vmap(one_chain, in_axes=(None, None, 0))(x, jax.random.split(k_sim, n_keys),
                                                           jax.random.split(k_run, num_chains))

    theta, div = jax.jit(jax.vmap(one_observation))(observed, k0[1:])
    theta = np.asarray(theta)
    free = _free_indices(prior)
    r_hat = np.array([_max_r_hat(theta[m], free) for m in range(M)])
    return theta, np.asarray(div).sum(axis=1), r_hat
