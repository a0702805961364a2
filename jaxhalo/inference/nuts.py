"""NUTS sampling of the reflex model (numpyro), several chains started around the ML point."""

from __future__ import annotations

from typing import Mapping

import jax
from jax import Array
from numpyro.infer import MCMC, NUTS

from ..likelihoods.reflex import ReflexData, ReflexModel
from .models import reflex_numpyro_model_unit
from .priors import PriorSet, params_to_unit

__all__ = [
    "NUTS_EXTRA_FIELDS",
    "run_nuts",
]

#: Per-draw NUTS statistics collected for arviz's ``sample_stats`` (energy for BFMI and
#: ``az.plot_energy``, tree size, step size, acceptance, divergences, log density).
NUTS_EXTRA_FIELDS: tuple[str, ...] = (
    "diverging", "num_steps", "energy", "potential_energy", "accept_prob", "adapt_state.step_size",
)


def run_nuts(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 1000,
    init_params: Mapping[str, Array] | None = None,
    init_jitter: float = 0.05,
    chain_method: str | None = None,
    progress_bar: bool = True,
    target_accept_prob: float = 0.85,
    inverse_mass_matrix: Array | None = None,
) -> MCMC:
    """Run NUTS on the reflex model; returns the numpyro ``MCMC`` object.

    The sampled model is :func:`reflex_numpyro_model_unit` (the same posterior, all parameters
    in one unit-cube site ``u``); ``mcmc.get_samples()`` holds every parameter under its name.

    ``init_params`` (constrained values, e.g. from :func:`fit_map`) start every chain
    at that point plus ``init_jitter`` Gaussian noise in the unconstrained space.
    ``chain_method`` defaults to 'parallel' when there are at least ``num_chains`` JAX
    devices, 'vectorized' on an accelerator, and 'sequential' on a CPU (measured 1.8x
    faster than 'vectorized' on 2 cores, benchmarks/results/samplers_cpu2.json).
    ``inverse_mass_matrix`` (optional, (P,) over logit(u), in :func:`unit_prior_table` order)
    seeds the adapted mass matrix, e.g. from a Laplace approximation
    (:func:`jaxhalo.inference.outliers.run_nuts_outliers`).
    """
    key = jax.random.PRNGKey(1) if key is None else key
    if chain_method is None:
        if jax.local_device_count() >= num_chains:
            chain_method = "parallel"
        else:
            chain_method = "sequential" if jax.devices()[0].platform == "cpu" else "vectorized"
    kernel = NUTS(reflex_numpyro_model_unit, target_accept_prob=target_accept_prob, inverse_mass_matrix=inverse_mass_matrix)
    mcmc = MCMC(
        kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
        chain_method=chain_method, progress_bar=progress_bar,
    )
    run_key, init_key = jax.random.split(key)
    if init_params is not None:
        # jitter around the given point in the unconstrained space of u (logit u)
        z0 = jax.scipy.special.logit(params_to_unit(spec, priors, init_params))
        z = z0 + init_jitter * jax.random.normal(init_key, (num_chains,) + z0.shape)
        init_params = {"u": jax.nn.sigmoid(z[0] if num_chains == 1 else z)}
    mcmc.run(run_key, data=data, spec=spec, priors=priors, init_params=init_params, extra_fields=NUTS_EXTRA_FIELDS)
    return mcmc
