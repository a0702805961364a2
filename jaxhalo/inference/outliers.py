"""Fitting the reflex model with an outlier / substructure component, and scoring fits against truth.

* :func:`fit_map_outliers` -- the ML fit of a reflex model with ``outlier != 'none'``. A cold
  substructure component has a multimodal likelihood (its mean can sit on any clump of
  stars), so random starts rarely find a 5% stream. The starts are seeded from the data
  instead: fit the model without outliers, take the stars it fits worst (largest chi^2), and
  start the outlier component's mean at each one's Galactocentric velocity (reconstructed
  from its observables), all optimised at once (vmapped L-BFGS, the solver of
  :func:`jaxhalo.inference.ml.fit_map`).
* :func:`star_galactocentric_velocities` -- (N, 3) velocities from (v_los, mu_l*, mu_b, d).
* :func:`truth_offsets` -- per-parameter |posterior median - truth| / posterior sigma.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from numpyro.infer.util import potential_energy, unconstrain_fn

from ..likelihoods.reflex import ReflexData, ReflexModel
from .ml import best_of_starts, fit_map
from .models import reflex_numpyro_model, reflex_numpyro_model_unit
from .nuts import run_nuts
from .priors import PriorSet, params_to_unit

__all__ = ["star_galactocentric_velocities", "fit_map_outliers", "laplace_scales", "run_nuts_outliers", "truth_offsets"]


def star_galactocentric_velocities(data: ReflexData) -> Array:
    """Galactocentric velocity (N, 3) in km/s of every star from its observables.

    Inverts the per-star projection of :class:`ReflexData` (model observables =
    proj @ v - sun_obs), i.e. uses the catalogue distance for the tangential velocity.
    """
    return jnp.linalg.solve(data.proj, (data.obs + data.sun_obs)[..., None])[..., 0]


def fit_map_outliers(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    n_seeds: int = 16,
    n_steps: int = 300,
    kernel_kms: float = 40.0,
    f_init: float = 0.05,
    sigma_init: float | None = None,
) -> dict[str, Array]:
    """ML parameters of a reflex model with an outlier component, from data-seeded starts.

    1. ``fit_map`` of the same model without the outlier component;
    2. ``n_seeds`` starts: the reflex parameters at that fit, f_out = ``f_init``, sigma_out =
       ``sigma_init`` (default: the geometric middle of its prior range) and, for
       ``outlier='gaussian'``, the mean at the Galactocentric velocity of one seed star
       (:func:`_seed_stars`: half the worst-fitted stars, largest chi^2, half the stars in the
       strongest velocity-space overdensities relative to that fit); for 'broad' the seeds
       differ in f_out;
    3. all starts optimised at once; the best (highest likelihood) is returned as a dict of
       constrained values.
    """
    if spec.outlier == "none":
        return fit_map(data, spec, priors, key)
    key = jax.random.PRNGKey(0) if key is None else key
    base = ReflexModel(spec.form, spec.apex, spec.anchors, spec.interpolate, spec.log_dispersion)
    p0 = fit_map(data, base, priors, key)
    worst = _seed_stars(data, base, p0, n_seeds, kernel_kms)
    v_star = np.asarray(star_galactocentric_velocities(data))[worst]
    if spec.outlier == "gaussian":
        lo, hi = priors.sigma_out_min_gaussian, priors.sigma_out_max_gaussian
    else:
        lo, hi = priors.sigma_out_min, priors.sigma_out_max
    s0 = float(np.sqrt(lo * hi)) if sigma_init is None else float(sigma_init)
    lim = 0.99 * priors.out_v_max
    kw = dict(data=data, spec=spec, priors=priors)
    starts = []
    for j in range(len(worst)):
        site = {k: v for k, v in p0.items() if k in spec.param_names or k.startswith("tau")}
        site["f_out"] = f_init if spec.outlier == "gaussian" else min(f_init * (1 + j), 0.9 * priors.f_out_max)
        site["sigma_out"] = s0
        if spec.outlier == "gaussian":
            for i, c in enumerate("xyz"):
                site[f"out_v{c}"] = float(np.clip(v_star[j, i], -lim, lim))
        if priors.kind == "reference":
            site = {k: v for k, v in site.items() if not (k.startswith("sigma_") and k != "sigma_out")}
        starts.append(unconstrain_fn(reflex_numpyro_model, (), kw, site))
    inits = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *starts)
    return best_of_starts(inits, data, spec, priors, n_steps)


def _seed_stars(data: ReflexData, base: ReflexModel, p0, n_seeds: int, kernel_kms: float) -> np.ndarray:
    """Indices of candidate stars for the outlier component's mean (see :func:`fit_map_outliers`).

    Half are the stars with the largest chi^2 under the fit without outliers; half maximise
    log KDE_i + chi2_i / 2, where KDE_i = sum_{j != i} exp(-|v_i - v_j|^2 / 2h^2) over the
    stars' Galactocentric velocities (h = ``kernel_kms``): a kernel density estimate over the
    model density ~ exp(-chi2 / 2), i.e. a clump of stars the reflex fit does not expect.
    """
    w = np.asarray(data.weight) > 0
    chi2 = np.where(w, np.asarray(base.chi2_per_star(p0, data)), -np.inf)
    v = star_galactocentric_velocities(data)
    d2 = jnp.sum((v[:, None, :] - v[None, :, :]) ** 2, axis=-1)
    kern = jnp.exp(-0.5 * d2 / kernel_kms**2) * (1.0 - jnp.eye(v.shape[0])) * jnp.asarray(w, float)[None, :]
    with np.errstate(divide="ignore"):
        score = np.log(np.asarray(jnp.sum(kern, axis=1))) + 0.5 * np.where(np.isfinite(chi2), chi2, 0.0)
    score = np.where(w, score, -np.inf)
    n_a = n_seeds // 2
    by_chi2 = list(np.argsort(-chi2)[:n_a])
    by_density = [i for i in np.argsort(-score) if i not in by_chi2][: n_seeds - n_a]
    return np.asarray(by_chi2 + by_density, int)


def laplace_scales(data: ReflexData, spec: ReflexModel, priors: PriorSet, params: Mapping[str, Array]) -> Array:
    """Posterior standard deviations (P,) in the unconstrained space NUTS samples, from the Hessian diagonal.

    That space is logit(u) of :func:`jaxhalo.inference.models.reflex_numpyro_model_unit` (one site,
    ordered as :func:`jaxhalo.inference.priors.unit_prior_table`), i.e. as NUTS' mass matrix.
    Non-positive curvatures fall back to 1.
    """
    kw = dict(data=data, spec=spec, priors=priors)
    z0 = jax.scipy.special.logit(params_to_unit(spec, priors, params))
    h = jnp.diag(jax.hessian(lambda z: potential_energy(reflex_numpyro_model_unit, (), kw, {"u": z}))(z0))
    return jnp.where(h > 0, 1.0 / jnp.sqrt(jnp.where(h > 0, h, 1.0)), 1.0)


def run_nuts_outliers(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    init_params: Mapping[str, Array] | None = None,
    **kwargs,
):
    """NUTS for a reflex model with an outlier component, started safely inside the MAP's mode.

    A cold component's posterior mode is narrow (its mean is known to a few km/s) while the
    region f_out -> 0 is wide and flat in the component's mean; chains started with
    :func:`jaxhalo.inference.nuts.run_nuts`' default jitter, or early warm-up steps with a unit
    mass matrix, can fall out of the mode and never return. Here the mass matrix is seeded
    with the Laplace variances at the MAP (:func:`laplace_scales`) and the start jitter is
    half the smallest Laplace scale. ``init_params`` default: :func:`fit_map_outliers`.
    Other keyword arguments go to :func:`jaxhalo.inference.nuts.run_nuts`.
    """
    key = jax.random.PRNGKey(1) if key is None else key
    if init_params is None:
        init_params = fit_map_outliers(data, spec, priors, key)
    scales = laplace_scales(data, spec, priors, init_params)
    kwargs.setdefault("init_jitter", float(0.5 * jnp.min(scales)))
    kwargs.setdefault("target_accept_prob", 0.9)
    return run_nuts(data, spec, priors, key, init_params=init_params, inverse_mass_matrix=scales**2, **kwargs)


def truth_offsets(posterior: Mapping[str, np.ndarray], truth: Mapping[str, float], names) -> dict[str, float]:
    """|median - truth| / std of the posterior samples, per parameter name in ``names``."""
    out = {}
    for n in names:
        x = np.asarray(posterior[n]).reshape(-1)
        out[n] = float(abs(np.median(x) - truth[n]) / np.std(x))
    return out
