"""Compression + dipole model of the outer halo's radial velocities (Li et al. 2025, eqs 5-7).

Each star i at Galactic (l_i, b_i) has Galactocentric radial velocity V_r,i with error
delta_r,i. The model (Li et al. eq. 5-6, after Bystrom et al. 2025) is

    V_r,i ~ N(mu_r,i, sigma_r^2 + delta_r,i^2),   mu_r,i = mu_compr + mu_dipole cos(theta_i),

with theta_i the angle between the star's direction (l_i, b_i) and the apex (l_apex, b_apex).
mu_compr < 0 is contraction. The likelihood is invariant under
(mu_dipole, apex) -> (-mu_dipole, antipode): with Li et al.'s symmetric priors the posterior
has two mirror modes; see :func:`jaxhalo.inference.profiles.dipole_model` (``identifiable``).

Angles are radians here; the numpyro model and user-facing helpers take degrees where stated.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ..frames import cos_from_sin
from ..jax_utils import sincos

__all__ = [
    "cos_angle_to_apex",
    "dipole_mean_radial_velocity",
    "dipole_log_likelihood_per_star",
    "dipole_log_likelihood",
    "polar_velocity_from_dipole",
]

_LOG_2PI = math.log(2.0 * math.pi)


def cos_angle_to_apex(l: ArrayLike, b: ArrayLike, l_apex: ArrayLike, sin_b_apex: ArrayLike) -> Array:
    """cos(theta) between directions (l, b) and the apex (l_apex, asin(sin_b_apex)); radians.

    Shapes broadcast; returns (...,). Uses sin(b_apex) directly (the isotropic prior's
    variable) and cos(b_apex) from :func:`jaxhalo.frames.cos_from_sin`: finite, with a bounded
    gradient, at and next to the poles. cos(l - l_apex) is expanded, so that the per-star sines and
    cosines depend on the data only (:func:`jaxhalo.jax_utils.sincos`: vectorisable on a CPU, and
    loop-invariant in a sampler's loop) and only the apex's are evaluated per parameter value.
    """
    l, b, l_apex, s = map(jnp.asarray, (l, b, l_apex, sin_b_apex))
    c_apex = cos_from_sin(s)
    sin_l, cos_l = sincos(l)
    sin_b, cos_b = sincos(b)
    return sin_b * s + cos_b * c_apex * (cos_l * jnp.cos(l_apex) + sin_l * jnp.sin(l_apex))


def dipole_mean_radial_velocity(
    l: ArrayLike, b: ArrayLike, mu_compr: ArrayLike, mu_dipole: ArrayLike, l_apex: ArrayLike, sin_b_apex: ArrayLike
) -> Array:
    """mu_r = mu_compr + mu_dipole cos(theta) in km/s (Li et al. eq. 6); l, b, l_apex in rad."""
    return jnp.asarray(mu_compr) + jnp.asarray(mu_dipole) * cos_angle_to_apex(l, b, l_apex, sin_b_apex)


def dipole_log_likelihood_per_star(
    v_r: ArrayLike,
    v_r_err: ArrayLike,
    l: ArrayLike,
    b: ArrayLike,
    mu_compr: ArrayLike,
    mu_dipole: ArrayLike,
    l_apex: ArrayLike,
    sin_b_apex: ArrayLike,
    sigma_r: ArrayLike,
    mask: ArrayLike | None = None,
) -> Array:
    """Per-star ln N(V_r | mu_r(l, b), sigma_r^2 + delta_r^2) (Li et al. eq. 5), shape (N,).

    v_r, v_r_err : (N,) Galactocentric radial velocity and its 1-sigma error (km/s).
    l, b : (N,) Galactic coordinates of the stars (rad).
    mu_compr, mu_dipole, sigma_r : km/s (scalars or broadcastable); l_apex (rad); sin_b_apex.
    mask : optional (N,) 0/1 weights; masked (padded) stars contribute exactly 0.
    """
    v_r, v_r_err, l, b = map(jnp.asarray, (v_r, v_r_err, l, b))
    if mask is not None:
        keep = jnp.asarray(mask) > 0
        v_r, v_r_err = jnp.where(keep, v_r, 0.0), jnp.where(keep, v_r_err, 1.0)
        l, b = jnp.where(keep, l, 0.0), jnp.where(keep, b, 0.0)
    mu = dipole_mean_radial_velocity(l, b, mu_compr, mu_dipole, l_apex, sin_b_apex)
    var = jnp.asarray(sigma_r) ** 2 + v_r_err**2
    ll = -0.5 * (_LOG_2PI + jnp.log(var) + (v_r - mu) ** 2 / var)
    if mask is not None:
        m = jnp.asarray(mask)
        ll = jnp.where(m > 0, ll * m, 0.0)
    return ll


def dipole_log_likelihood(*args, **kwargs) -> Array:
    """Sum over stars of :func:`dipole_log_likelihood_per_star` (scalar)."""
    return jnp.sum(dipole_log_likelihood_per_star(*args, **kwargs))


def polar_velocity_from_dipole(mu_dipole: ArrayLike, b_apex: ArrayLike) -> Array:
    """Mean polar velocity <V_theta> = (pi/4) mu_dipole sin(b_apex) (Li et al. eq. 7), km/s.

    b_apex in radians. V_theta in Li et al.'s convention (positive towards the north pole),
    i.e. minus jaxhalo's default v_theta (see :mod:`jaxhalo.inference.profiles`).
    """
    return 0.25 * math.pi * jnp.asarray(mu_dipole) * jnp.sin(jnp.asarray(b_apex))
