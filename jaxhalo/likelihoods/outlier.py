"""An outlier / substructure component for the reflex fit: the probabilistic alternative to clipping.

The per-star likelihood of the reflex model is mixed with one extra Gaussian component,

    L_i = (1 - f_out) L_reflex,i + f_out L_out,i,

evaluated with log-sum-exp; f_out is the (free) outlier fraction and the posterior probability
that star i belongs to the outlier component is

    P_out,i = f_out L_out,i / L_i.

The outlier component is a Gaussian in the heliocentric observables (v_los, mu_l*, mu_b) whose
mean is the projection of one Galactocentric velocity vector ``u`` (km/s, Galactocentric axes;
``u = 0`` is the Galactic rest frame) and whose intrinsic dispersion ``sigma_out`` (km/s) is
isotropic in the heliocentric (los, l, b) frame, convolved with every star's measurement errors
exactly as the reflex component is (:func:`jaxhalo.likelihoods.reflex.outlier_component_log_likelihood`: the reflex likelihood
with zero travel velocity, zero spherical means and three equal dispersions). This module is a
leaf: the mixing arithmetic only, imported by :mod:`jaxhalo.likelihoods.reflex`. Two kinds:

* ``'broad'``: u = 0 and a broad sigma_out (a hot halo / contaminant population; default
  prior 150-1000 km/s, :class:`jaxhalo.inference.priors.PriorSet`);
* ``'gaussian'``: u free as well, so the component can sit on a *cold* kinematic
  substructure -- a stream whose stars share one Galactocentric velocity projects onto the
  observables exactly as this mean does, with a small sigma_out (default prior 5-50 km/s).
  Its likelihood is multimodal (the mean can sit on any clump): fit it with
  :func:`jaxhalo.inference.outliers.fit_map_outliers` (data-seeded starts) before NUTS.

On mocks with a cold 5% stream, 'gaussian' finds the stream and beats clipping, while 'broad'
changes almost nothing (a cold stream inside the halo's velocity range is not an outlier of a
broad distribution): see ``benchmarks/results/outliers_cpu2.json``.

Everything is pure JAX (jit / vmap / grad). Stars with ``data.weight == 0`` contribute 0.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

__all__ = [
    "OUTLIER_KINDS",
    "outlier_parameter_names",
    "mix_with_outliers",
    "outlier_probability",
]

#: Outlier-component kinds accepted by :class:`~jaxhalo.likelihoods.reflex.ReflexModel`.
OUTLIER_KINDS = ("none", "broad", "gaussian")


def outlier_parameter_names(kind: str) -> tuple[str, ...]:
    """Parameter names the outlier component adds to a reflex model of this ``kind``."""
    if kind == "none":
        return ()
    if kind == "broad":
        return ("f_out", "sigma_out")
    if kind == "gaussian":
        return ("f_out", "sigma_out", "out_vx", "out_vy", "out_vz")
    raise ValueError(f"outlier kind must be one of {OUTLIER_KINDS}, got {kind!r}")


def mix_with_outliers(ll_main: Array, ll_out: Array, f_out: Array, weight: Array | None = None) -> Array:
    """Per-star ln[(1 - f) exp(ll_main) + f exp(ll_out)] (N,), times ``weight``.

    ll_main, ll_out : (N,) unweighted per-star log-likelihoods of the two components.
    f_out : scalar outlier fraction in [0, 1].
    """
    f = jnp.asarray(f_out)
    ll = jnp.logaddexp(jnp.log1p(-f) + ll_main, jnp.log(f) + ll_out)
    return ll if weight is None else weight * ll


def outlier_probability(ll_main: Array, ll_out: Array, f_out: Array) -> Array:
    """Posterior probability (N,) that each star belongs to the outlier component."""
    f = jnp.asarray(f_out)
    a = jnp.log1p(-f) + ll_main
    b = jnp.log(f) + ll_out
    return jnp.exp(b - jnp.logaddexp(a, b))
