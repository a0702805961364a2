"""Bayesian model comparison by PSIS-LOO (arviz): reflex forms, mixtures, outlier components.

* :func:`compare_models` -- ``arviz.compare`` over a dict {name: InferenceData}, after checking
  that every model was fitted to the *same* stars (same number of pointwise log-likelihoods),
  which LOO needs and which clipping silently breaks.
* :func:`numpyro_inference_data` -- InferenceData with a per-star ``log_likelihood`` group from
  any numpyro MCMC whose model puts the per-star log-likelihoods into one ``numpyro.factor``
  site (the mixture / dipole / binned models of :mod:`jaxhalo.inference.profiles`), padding
  removed.
* :func:`reflex_inference_data` -- the same for the reflex model (:func:`jaxhalo.inference.nuts.run_nuts`).

The reflex InferenceData of :func:`jaxhalo.inference.reflex_fit.fit_reflex` already carries the
per-star log-likelihood; compare only fits that used the same stars (``clip=False``, or the
same clipping weights for every model).
"""

from __future__ import annotations

from typing import Callable, Mapping

import arviz as az
import jax
import numpy as np
from numpyro.infer import MCMC
from numpyro.infer.util import log_likelihood

from ..likelihoods.reflex import ReflexData, ReflexModel
from .results import samples_to_inference_data

__all__ = ["compare_models", "numpyro_inference_data", "reflex_inference_data", "ModelComparisonError"]


class ModelComparisonError(ValueError):
    """The models cannot be compared (missing log_likelihood, different stars)."""


def _n_obs(idata: az.InferenceData, var_name: str | None) -> int:
    if "log_likelihood" not in idata.groups():
        raise ModelComparisonError("InferenceData has no log_likelihood group (per-star log-likelihoods are needed)")
    ll = idata.log_likelihood
    names = list(ll.data_vars)
    name = var_name or (names[0] if len(names) == 1 else None)
    if name is None:
        raise ModelComparisonError(f"several log_likelihood variables {names}; pass var_name")
    arr = ll[name]
    return int(np.prod(arr.shape[2:]))


def compare_models(
    idatas: Mapping[str, az.InferenceData],
    ic: str = "loo",
    var_name: str | None = None,
    scale: str = "log",
    **kwargs,
):
    """PSIS-LOO (default) comparison of fitted models; returns arviz' comparison DataFrame.

    idatas : {model name: InferenceData with a per-star log_likelihood group}, at least two,
        all fitted to the same stars (checked: the same number of pointwise terms).
    ic : 'loo' (Pareto-smoothed importance-sampling leave-one-out) or 'waic'.
    The DataFrame is ranked best first: column ``elpd_loo`` (log scale: higher is better),
    ``elpd_diff`` to the best model and its standard error ``dse``, ``weight`` (stacking),
    ``warning`` (True if some Pareto k > 0.7, i.e. LOO is unreliable for that model).
    """
    if len(idatas) < 2:
        raise ModelComparisonError(f"need at least two models to compare, got {len(idatas)}")
    sizes = {name: _n_obs(idata, var_name) for name, idata in idatas.items()}
    if len(set(sizes.values())) != 1:
        raise ModelComparisonError(
            f"models were fitted to different numbers of stars {sizes}; LOO compares fits to the same data "
            "(fit without clipping, or with the same weights)"
        )
    return az.compare(dict(idatas), ic=ic, var_name=var_name, scale=scale, **kwargs)


def numpyro_inference_data(
    mcmc: MCMC,
    model: Callable,
    model_kwargs: Mapping,
    site: str = "obs",
    mask=None,
) -> az.InferenceData:
    """InferenceData (posterior + per-star log_likelihood 'star') from a numpyro MCMC.

    The per-star log-likelihoods are the values of the factor ``site`` recomputed for every
    draw (shape (..., N) or (..., B, N) for binned models); entries where ``mask`` (same
    trailing shape) is 0 -- padding -- are dropped and the rest flattened to one 'star' axis.
    """
    samples = mcmc.get_samples(group_by_chain=True)
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items()}
    ll = log_likelihood(model, flat, **dict(model_kwargs))[site]
    n_chain, n_draw = next(iter(samples.values())).shape[:2]
    ll = np.asarray(ll).reshape((n_chain, n_draw) + ll.shape[1:])
    if mask is not None:
        keep = np.asarray(mask) > 0
        ll = ll[..., keep]
    else:
        ll = ll.reshape(n_chain, n_draw, -1)
    post = {k: np.asarray(v) for k, v in samples.items()}
    return az.from_dict(posterior=post, log_likelihood={"star": ll})


def reflex_inference_data(mcmc: MCMC, spec: ReflexModel, data: ReflexData, radii=(40.0, 120.0)) -> az.InferenceData:
    """InferenceData of a reflex NUTS run (:func:`jaxhalo.inference.nuts.run_nuts`), per-star log_likelihood."""
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    return samples_to_inference_data(mcmc, spec, data, samples, radii)
