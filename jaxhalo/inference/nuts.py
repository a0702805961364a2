"""NUTS sampling of the reflex model, several chains started around the ML point."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
from jax import Array

from ..likelihoods.reflex import ReflexData, ReflexModel
from .nuts_programs import (
    NUTS_EXTRA_FIELDS,  # noqa: F401 - still importable from here (it lived in this module)
    NUTSConfig,
    NUTSRun,
    compile_nuts,
    run_chains,
)
from .priors import PriorSet, from_unit_interval, params_to_unit, unit_prior_table

__all__ = [
    "prepare_nuts",
    "run_nuts",
    "unit_model_postprocess",
    "unit_model_potential",
]


def unit_model_potential(data: ReflexData, spec: ReflexModel, priors: PriorSet = PriorSet()) -> Callable[[Array], Array]:
    """The potential energy ``z -> -ln p(z | data)`` that NUTS samples, in plain JAX.

    ``z`` (P,) is numpyro's unconstrained value of the unit-cube site ``u = sigmoid(z)`` of
    :func:`~jaxhalo.inference.models.reflex_numpyro_model_unit`; the potential is
    ``-[ln L(x(u)) + sum_i ln sigmoid'(z_i)]`` with x(u) the prior inverse CDFs
    (:func:`~jaxhalo.inference.priors.unit_prior_table`) and ``ln sigmoid'(z) = -softplus(-z) -
    softplus(z)`` the Jacobian of the logistic map (the uniform density of u is 1). Equal to numpyro's
    ``potential_energy`` of that model (tests/inference/test_nuts.py), but it skips numpyro's
    model tracing (handlers, ``initialize_model``), which cost ~1 s of every warm ``jaxhalo fit``.
    """
    table = unit_prior_table(spec, priors)

    def potential(z: Array) -> Array:
        x = unit_model_postprocess(spec, priors, table)(z)
        log_jac = -jnp.sum(jax.nn.softplus(-z) + jax.nn.softplus(z))
        return -(spec.log_likelihood({n: x[n] for n in spec.param_names}, data) + log_jac)

    return potential


def unit_model_postprocess(spec: ReflexModel, priors: PriorSet = PriorSet(),
                           table: tuple | None = None) -> Callable[[Array], dict[str, Array]]:
    """``z (..., P) -> {"u": sigmoid(z), site: value, ...}``: what numpyro's ``constrain_fn`` with
    ``return_deterministic=True`` returns for :func:`~jaxhalo.inference.models.reflex_numpyro_model_unit`
    (the unit-cube site, every prior site, and ``sigma_* = tau_*^-1/2`` under the reference priors)."""
    table = unit_prior_table(spec, priors) if table is None else table

    def postprocess(z: Array) -> dict[str, Array]:
        u = jax.nn.sigmoid(z)
        out = {"u": u}
        for i, (site, kind, lo, hi) in enumerate(table):
            out[site] = from_unit_interval(kind, lo, hi, u[..., i])
            if site.startswith("tau_"):
                out["sigma" + site[3:]] = out[site] ** -0.5
        return out

    return postprocess


@dataclass(frozen=True)
class _UnitPotential:
    """``data -> potential`` of :func:`unit_model_potential` for one (spec, priors): hashable and equal
    for equal arguments, so that the compiled NUTS programs are found again (:class:`NUTSConfig`)."""

    spec: ReflexModel
    priors: PriorSet

    def __call__(self, data: ReflexData) -> Callable[[Array], Array]:
        return unit_model_potential(data, self.spec, self.priors)


def _default_chain_method(num_chains: int) -> str:
    """'parallel' with at least ``num_chains`` JAX devices, 'vectorized' on an accelerator, else
    'sequential' (measured 1.8x faster than 'vectorized' on 2 CPU cores, benchmarks/results/samplers_cpu2.json)."""
    if jax.local_device_count() >= num_chains:
        return "parallel"
    return "sequential" if jax.devices()[0].platform == "cpu" else "vectorized"


def _config(spec: ReflexModel, priors: PriorSet, num_chains: int, num_warmup: int, num_samples: int,
            chain_method: str | None, target_accept_prob: float, dense_mass: bool, has_mass: bool) -> NUTSConfig:
    return NUTSConfig(_UnitPotential(spec, priors), len(unit_prior_table(spec, priors)), num_chains, num_warmup, num_samples,
                      chain_method or _default_chain_method(num_chains), target_accept_prob, dense_mass,
                      has_inverse_mass_matrix=has_mass)


def prepare_nuts(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    num_chains: int = 4,
    num_warmup: int = 300,
    num_samples: int = 750,
    chain_method: str | None = None,
    target_accept_prob: float = 0.85,
    dense_mass: bool = True,
    background: bool = True,
) -> Future:
    """Compile the NUTS programs that :func:`run_nuts` with the same arguments will use, for ``data``'s
    shapes (its values, e.g. the clipping weights, may still change); by default in a background thread.

    :func:`~jaxhalo.inference.reflex_fit.fit_reflex` calls it before the ML fit, so that the NUTS
    compilation (or, with a warm persistent cache, its tracing and loading) overlaps the ML fit.
    """
    cfg = _config(spec, priors, num_chains, num_warmup, num_samples, chain_method, target_accept_prob, dense_mass, False)
    return compile_nuts(cfg, data, background=background)


def run_nuts(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    num_chains: int = 4,
    num_warmup: int = 300,
    num_samples: int = 750,
    init_params: Mapping[str, Array] | None = None,
    init_jitter: float = 0.05,
    chain_method: str | None = None,
    progress_bar: bool = True,
    target_accept_prob: float = 0.85,
    inverse_mass_matrix: Array | None = None,
    dense_mass: bool = True,
) -> NUTSRun:
    """Run NUTS on the reflex model; returns a :class:`~jaxhalo.inference.nuts_programs.NUTSRun`
    (``get_samples`` / ``get_extra_fields`` as numpyro's ``MCMC``).

    The sampled density is that of :func:`~jaxhalo.inference.models.reflex_numpyro_model_unit` (the
    same posterior, all parameters in one unit-cube site ``u``) as a potential function
    (:func:`unit_model_potential`), sampled by numpyro's NUTS kernel with the catalogue as an argument
    of the compiled program (:mod:`jaxhalo.inference.nuts_programs`): compiled once per data shape
    (not per catalogue, as ``MCMC`` would) and cached on disk by JAX's persistent cache.
    ``get_samples()`` holds ``u`` and every parameter under its name (:func:`unit_model_postprocess`).

    ``init_params`` (constrained values, e.g. from :func:`fit_map`) start every chain
    at that point plus ``init_jitter`` Gaussian noise in the unconstrained space.
    ``chain_method`` defaults to 'parallel' when there are at least ``num_chains`` JAX
    devices, 'vectorized' on an accelerator, and 'sequential' on a CPU (measured 1.8x
    faster than 'vectorized' on 2 cores, benchmarks/results/samplers_cpu2.json).
    ``dense_mass`` adapts a dense (P, P) mass matrix (default) instead of a diagonal one: on the
    850-star, 18-parameter continuity fit (4 chains x (500 + 1000)) it took 7.5 leapfrog steps per
    draw instead of 10.6 and gave a min bulk ESS of 4,796 instead of 2,626, because the anchor
    velocities and apex coordinates are correlated; the (P, P) products cost nothing next to the
    likelihood. ``inverse_mass_matrix`` (optional, (P,) or (P, P) over logit(u), in
    :func:`unit_prior_table` order) seeds the adapted mass matrix, e.g. from a Laplace
    approximation (:func:`jaxhalo.inference.outliers.run_nuts_outliers`); a (P,) seed of a dense
    matrix is taken as its diagonal.
    ``progress_bar`` draws one bar for all chains (updated between chunks of iterations, so the
    compiled program holds no host callback and is the same with or without the bar).
    """
    key = jax.random.PRNGKey(1) if key is None else key
    if inverse_mass_matrix is not None and dense_mass and jnp.ndim(inverse_mass_matrix) == 1:
        inverse_mass_matrix = jnp.diag(jnp.asarray(inverse_mass_matrix))
    cfg = _config(spec, priors, num_chains, num_warmup, num_samples, chain_method, target_accept_prob, dense_mass,
                  inverse_mass_matrix is not None)
    run_key, init_key = jax.random.split(key)
    if init_params is not None:
        # jitter around the given point in the unconstrained space of u (logit u)
        z0 = jax.scipy.special.logit(params_to_unit(spec, priors, init_params))
        z = z0 + init_jitter * jax.random.normal(init_key, (num_chains,) + z0.shape)
    else:
        # numpyro's default for a model (init_to_uniform): U(-2, 2) in the unconstrained space
        z = jax.random.uniform(init_key, (num_chains, cfg.n_params), minval=-2.0, maxval=2.0)
    return run_chains(cfg, data, jax.random.split(run_key, num_chains), z, inverse_mass_matrix,
                      postprocess=unit_model_postprocess(spec, priors), progress_bar=progress_bar)
