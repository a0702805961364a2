"""numpyro models of the reflex fit: one site per parameter, or one unit-cube site (faster NUTS)."""

from __future__ import annotations

import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from ..likelihoods.reflex import ReflexData, ReflexModel
from .priors import PriorSet, from_unit_interval, sample_prior_sites, unit_prior_table

__all__ = [
    "reflex_numpyro_model",
    "reflex_numpyro_model_unit",
]


def reflex_numpyro_model(data: ReflexData, spec: ReflexModel, priors: PriorSet = PriorSet()) -> None:
    """numpyro model: the reflex likelihood of ``spec`` on ``data`` with ``priors``.

    Sample sites are ``spec.param_names`` (plus ``tau_*`` for the reference priors).
    The per-star log-likelihood enters through one ``numpyro.factor``.
    """
    params = sample_prior_sites(spec, priors)
    numpyro.factor("reflex_loglike", spec.log_likelihood(params, data))


def reflex_numpyro_model_unit(data: ReflexData, spec: ReflexModel, priors: PriorSet = PriorSet()) -> None:
    """The same posterior as :func:`reflex_numpyro_model`, with all parameters in one site.

    One sample site ``u`` ~ U(0, 1)^P is mapped through each prior's inverse CDF
    (:func:`unit_prior_table`), so the pushforward of ``u`` is exactly the prior and the
    posterior of the physical parameters is unchanged. The parameters (and, for the reference
    priors, ``sigma_*`` = tau^-1/2) are recorded as deterministic sites under their usual names.
    Why: NUTS on one (P,) site costs about a third per step of NUTS on P scalar sites on a CPU,
    where numpyro's per-leaf tree-building overhead, not the likelihood, dominates (measured
    on the 850-star continuity fit, benchmarks/results/samplers_*.json).
    """
    table = unit_prior_table(spec, priors)
    u = numpyro.sample("u", dist.Uniform(0.0, 1.0).expand([len(table)]).to_event(1))
    values = {site: from_unit_interval(kind, lo, hi, u[i]) for i, (site, kind, lo, hi) in enumerate(table)}
    for site, v in values.items():
        numpyro.deterministic(site, v)
    # Run the scalar model with its prior sites fixed to these values and hidden from the
    # density (their prior is the uniform density of u): only the likelihood factor counts.
    handlers.block(handlers.substitute(reflex_numpyro_model, data=values), hide=list(values))(data, spec, priors)
