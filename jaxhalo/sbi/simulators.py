"""Simulators a suite can run: a generic wrapper, a cheap linear-Gaussian toy, and the MW-LMC one.

A suite simulator is any pure JAX callable ``fn(theta (P,), key) -> outputs`` that ``vmap``
and ``jit`` go through, where ``outputs`` is either the summary vector (S,) or a dict of
fixed-shape arrays that contains ``"summaries"`` (e.g. reflex-fit parameters beside the 52
summaries). :class:`SuiteSimulator` bundles it with its name and a JSON-able config, which the
store records so that a resumed run can check it is running the same simulation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..simulation import brooks as sim
from ..simulation.errors import SimulatorError
from ..simulation.reflex_fit import reflex_fit_observed
from ..simulation.summaries import brooks_summary_vector
from .priors import SuitePrior

__all__ = [
    "SimulatorError",
    "SuiteSimulator",
    "linear_gaussian_simulator",
    "linear_gaussian_matrix",
    "brooks_simulator",
    "make_simulator",
    "SIMULATORS",
]




@dataclasses.dataclass(frozen=True)
class SuiteSimulator:
    """A named, configured suite simulator.

    Attributes
    ----------
    name : registry name (e.g. ``"brooks"``, ``"linear-gaussian"``).
    fn : ``fn(theta (P,), key) -> (S,) | dict`` (pure JAX, vmap-able).
    config : JSON-able settings that determine the outputs (stored and compared on resume).
    parameter_names : names of the P entries of theta.
    """

    name: str
    fn: Callable[[Array, Array], Any]
    config: Mapping[str, Any]
    parameter_names: tuple[str, ...]

    def outputs(self, theta: Array, key: Array) -> dict[str, Array]:
        """Run one simulation and return its outputs as a dict with ``"summaries"``."""
        out = self.fn(theta, key)
        if not isinstance(out, Mapping):
            out = {"summaries": out}
        if "summaries" not in out:
            raise SimulatorError(f"simulator {self.name!r} returned a dict without 'summaries': {list(out)}")
        return {k: jnp.asarray(v) for k, v in out.items()}

    def output_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Shapes and dtypes of one simulation's outputs (abstract evaluation, nothing runs)."""
        theta = jax.ShapeDtypeStruct((len(self.parameter_names),), jnp.result_type(float))
        key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
        shapes = jax.eval_shape(self.outputs, theta, key)
        return {k: (tuple(v.shape), str(v.dtype)) for k, v in shapes.items()}

    def identity(self) -> dict[str, Any]:
        """What a store records to recognise this simulator: name + config + a hash of both."""
        blob = json.dumps({"name": self.name, "config": dict(self.config)}, sort_keys=True, default=str)
        return {"name": self.name, "config": json.loads(blob)["config"],
                "hash": hashlib.sha256(blob.encode()).hexdigest()[:16]}


# -------------------------------------------------------------------------- linear-Gaussian toy


def linear_gaussian_matrix(n_params: int, n_summaries: int, matrix_seed: int = 1) -> np.ndarray:
    """The fixed (S, P) design matrix of the toy: standard normal entries / sqrt(P), seeded."""
    rng = np.random.default_rng(matrix_seed)
    return rng.standard_normal((n_summaries, n_params)) / math.sqrt(n_params)


def linear_gaussian_simulator(
    prior: SuitePrior,
    n_summaries: int = 52,
    noise: float = 0.3,
    n_particles: int = 1,
    matrix_seed: int = 1,
) -> SuiteSimulator:
    """A cheap stand-in for the MW-LMC simulator with a known likelihood.

    With u = (theta - m) / s the prior-standardised parameters (m, s the prior mean and standard
    deviation of each parameter, estimated once from 20,000 prior draws with a fixed key; fixed
    parameters get s = 1), the summaries are

        x = A u + noise * mean_{j <= n_particles}(eps_j),  eps_j ~ N(0, I_S) * sqrt(n_particles)

    i.e. x | theta ~ N(A u, noise^2 I): the average over ``n_particles`` "tracers" is only there
    to give the toy a cost that scales like a particle simulator's (n_particles x S normals per
    simulation), which the interruption tests use. ``A`` is :func:`linear_gaussian_matrix`.
    """
    if n_summaries < 1 or n_particles < 1 or not noise > 0:
        raise SimulatorError(f"need n_summaries >= 1, n_particles >= 1, noise > 0; got {n_summaries}, {n_particles}, {noise}")
    draws = np.asarray(prior.sample(jax.random.PRNGKey(12345), (20000,)))
    m = draws.mean(axis=0)
    s = draws.std(axis=0)
    s = np.where(s > 0, s, 1.0)
    A = linear_gaussian_matrix(prior.dim, n_summaries, matrix_seed)
    A_j, m_j, s_j = jnp.asarray(A), jnp.asarray(m), jnp.asarray(s)
    root_n = math.sqrt(n_particles)

    def fn(theta: Array, key: Array) -> Array:
        u = (theta - m_j) / s_j
        eps = jax.random.normal(key, (n_particles, n_summaries), dtype=theta.dtype)
        return jnp.sum(A_j * u, axis=-1) + noise * root_n * jnp.mean(eps, axis=0)

    cfg = {"n_summaries": n_summaries, "noise": noise, "n_particles": n_particles, "matrix_seed": matrix_seed,
           "prior": prior.name}
    return SuiteSimulator("linear-gaussian", fn, cfg, prior.names)


# -------------------------------------------------------------------------- the MW-LMC simulator


def brooks_simulator(reflex_fit: bool = False, **config_overrides: Any) -> SuiteSimulator:
    """The rigid MW-LMC simulator of :mod:`jaxhalo.simulation.brooks` (Brooks et al. 2026 summaries).

    ``config_overrides`` are fields of ``jaxhalo.simulation.brooks.SimConfig`` (e.g. ``n_particles``,
    ``dt``); unset ones keep the simulator's defaults, except ``on_invalid``, which defaults to
    ``"nan"`` here: parameters the model cannot realise (e.g. log10 M200 below ~11.13, where no
    c200 gives v_c(R_sun) = 235 km/s, ~31% of the Brooks et al. 2026 prior) give NaN summaries
    instead of aborting the whole vmapped chunk; they stay in the store (so that indices are
    complete) and :func:`jaxhalo.sbi.npe.train_npe` drops non-finite rows.
    Outputs ``summary_vector(theta, key, config)`` (52,). With ``reflex_fit`` also the
    maximum-likelihood reflex fit of each simulated halo (Brooks et al. 2026 §3.2.1;
    :func:`jaxhalo.simulation.brooks.reflex_fit_observed`): ``reflex_params`` (18,) of the continuity
    model with the Cartesian apex, ``v_travel`` (3,) and ``v_travel_xyz`` (3, 3) at 40, 100, 120 kpc.
    """
    config_overrides.setdefault("on_invalid", "nan")
    fields = {f.name for f in dataclasses.fields(sim.SimConfig)} if dataclasses.is_dataclass(sim.SimConfig) else None
    if fields is not None:
        unknown = [k for k in config_overrides if k not in fields]
        if unknown:
            raise SimulatorError(f"unknown SimConfig field(s) {unknown}; known: {sorted(fields)}")
    config = sim.SimConfig(**{k: v for k, v in config_overrides.items() if v is not None})

    def fn(theta: Array, key: Array):
        if not reflex_fit:
            return sim.summary_vector(theta, key, config)
        obs = sim.simulate_observed(theta, key, config)
        out = {"summaries": brooks_summary_vector(obs)}
        out.update(reflex_fit_observed(obs, jax.random.fold_in(key, 2), solar=config.solar_parameters()))
        return out

    cfg = _config_dict(config)
    if reflex_fit:
        cfg["reflex_fit"] = "continuity/cartesian ML, v_travel at 40, 100, 120 kpc"
    return SuiteSimulator("brooks", fn, cfg, tuple(sim.PARAMETER_NAMES))


def _config_dict(config: Any) -> dict[str, Any]:
    """A JSON-able dict of a config object (dataclass, equinox Module, NamedTuple or plain object)."""
    if dataclasses.is_dataclass(config):
        d = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    elif hasattr(config, "_asdict"):
        d = config._asdict()
    else:
        d = dict(vars(config))
    return json.loads(json.dumps(d, default=lambda v: np.asarray(v).tolist() if hasattr(v, "shape") else str(v)))


SIMULATORS: dict[str, Callable[..., SuiteSimulator]] = {
    "brooks": brooks_simulator,
    "linear-gaussian": linear_gaussian_simulator,
}


def make_simulator(name: str, prior: SuitePrior, **options: Any) -> SuiteSimulator:
    """Build a registered simulator by name; ``options`` are its keyword settings (None = default)."""
    options = {k: v for k, v in options.items() if v is not None}
    if name == "linear-gaussian":
        return linear_gaussian_simulator(prior, **options)
    if name == "brooks":
        return brooks_simulator(**options)
    raise SimulatorError(f"unknown simulator {name!r}; choose one of {sorted(SIMULATORS)}")
