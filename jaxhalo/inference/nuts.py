"""NUTS sampling of the reflex model (numpyro), several chains started around the ML point."""

from __future__ import annotations

import contextlib
import inspect
from threading import Lock
from typing import Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpyro.util
from jax import Array, lax
from jax.experimental import io_callback
from numpyro.infer import MCMC, NUTS
from tqdm.auto import tqdm

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


def _one_bar_factory(num_samples: int, num_chains: int, progress_rate: int) -> Callable:
    """numpyro's ``progress_bar_factory`` (numpyro.util) with one bar for all chains.

    numpyro draws one tqdm bar per chain when the chains run in parallel (``chain_method='parallel'``):
    with 4 chains on a terminal that is 4 bars redrawn in place, in a log file ~200 interleaved lines.
    This bar counts the iterations of every chain (``num_chains x (warm-up + draws)``); the chains'
    callbacks come from several threads, hence the lock. Same signature and loop decorator as numpyro's.
    """
    remainder = num_samples % progress_rate
    lock = Lock()
    bar = tqdm(total=num_samples * num_chains, desc=f"NUTS {num_chains} chains: compiling", mininterval=0.5,
               unit="it", dynamic_ncols=True)
    state = {"next_chain": 0, "closed": 0}

    def _update(increment, chain):
        increment, chain = int(increment), int(chain)
        with lock:
            if chain == -1:  # first call of a chain: give it an id
                chain, state["next_chain"] = state["next_chain"], state["next_chain"] + 1
                bar.set_description(f"NUTS {num_chains} chains (warm-up + draws)", refresh=False)
            bar.update(increment)
        return chain

    def _close(increment, chain):
        with lock:
            bar.update(int(increment))
            state["closed"] += 1
            if state["closed"] == num_chains:
                bar.close()

    def _update_progress_bar(iter_num, chain):
        chain = lax.cond(iter_num == 1, lambda _: io_callback(_update, jnp.array(0), 0, chain), lambda _: chain,
                         operand=None)
        chain = lax.cond(iter_num % progress_rate == 0, lambda _: io_callback(_update, jnp.array(0), progress_rate, chain),
                         lambda _: chain, operand=None)
        lax.cond(iter_num == num_samples, lambda _: io_callback(_close, None, remainder, chain), lambda _: None,
                 operand=None)
        return chain

    def progress_bar_fori_loop(func: Callable) -> Callable:
        def wrapper_progress_bar(i, vals):
            subvals, chain = vals
            result = func(i, subvals)
            return result, _update_progress_bar(i + 1, chain)

        return wrapper_progress_bar

    return progress_bar_fori_loop


@contextlib.contextmanager
def _one_progress_bar() -> Iterator[None]:
    """While active, numpyro draws one progress bar for parallel chains (see :func:`_one_bar_factory`).

    Left as numpyro's own when its factory has another signature (another numpyro version)."""
    original = getattr(numpyro.util, "progress_bar_factory", None)
    if original is None or list(inspect.signature(original).parameters) != ["num_samples", "num_chains", "progress_rate"]:
        yield
        return
    numpyro.util.progress_bar_factory = _one_bar_factory
    try:
        yield
    finally:
        numpyro.util.progress_bar_factory = original


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
) -> MCMC:
    """Run NUTS on the reflex model; returns the numpyro ``MCMC`` object.

    The sampled model is :func:`reflex_numpyro_model_unit` (the same posterior, all parameters
    in one unit-cube site ``u``); ``mcmc.get_samples()`` holds every parameter under its name.

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
    ``progress_bar`` draws one bar for all chains, also for parallel chains (where numpyro draws one
    per chain).
    """
    key = jax.random.PRNGKey(1) if key is None else key
    if chain_method is None:
        if jax.local_device_count() >= num_chains:
            chain_method = "parallel"
        else:
            chain_method = "sequential" if jax.devices()[0].platform == "cpu" else "vectorized"
    if inverse_mass_matrix is not None and dense_mass and jnp.ndim(inverse_mass_matrix) == 1:
        inverse_mass_matrix = jnp.diag(jnp.asarray(inverse_mass_matrix))
    kernel = NUTS(reflex_numpyro_model_unit, target_accept_prob=target_accept_prob, inverse_mass_matrix=inverse_mass_matrix,
                  dense_mass=dense_mass)
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
    with _one_progress_bar() if progress_bar and mcmc.chain_method == "parallel" else contextlib.nullcontext():
        mcmc.run(run_key, data=data, spec=spec, priors=priors, init_params=init_params, extra_fields=NUTS_EXTRA_FIELDS)
    return mcmc
