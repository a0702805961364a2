"""Tracer (stellar-halo) density profiles for the distribution functions of :mod:`jaxhalo.dynamics.df`.

Each profile is an equinox Module with ``density(r)`` (Msun/kpc^3 for radii r (...,) in kpc, up to
the normalisation; r and the attributes may also be astropy Quantities, converted to kpc / Msun,
see :mod:`jaxhalo.units`) and the ``inner_slope`` / ``outer_slope`` attributes the DF builder validates.

This module is the one home of the tracer / spherical density shapes (``jaxhalo.dynamics.df`` and
``jaxhalo.dynamics.potentials`` re-export them under their old names):

* :class:`DensityProfile` (base), :class:`DehnenDensity` (Brooks et al. 2025, §2.2) and
  :func:`dehnen_shape` (its unnormalised form),
* :class:`DoublePowerLawDensity` (Brooks et al. 2026, eq. 2),
* :class:`SteepenedCusp`: any of those with its cusp steepened inside a core radius, and
  :func:`steepen_cusp_for_beta`, which builds the one that admits a constant-beta DF (see below).

Why steepen: the cusp-slope theorem (An & Evans 2006)
-----------------------------------------------------
A constant-anisotropy DF f = L^(-2 beta) f_E(E) is non-negative only if the tracer's logarithmic
density slope is at least 2 beta where the orbits of the corresponding energies live; at the centre
this is the theorem gamma_0 >= 2 beta. Brooks et al. (2026) use an inner slope 1 with beta_0 up to
0.85, which no non-negative DF reaches (agama's quasi-spherical DF, which they used, is subject to
the same theorem: it is a property of the density, not of a code). jaxhalo never clips a negative DF
silently: :func:`jaxhalo.dynamics.df.constant_beta_df` raises :class:`~jaxhalo.dynamics.df.NegativeDFError`. The
simulator instead, by default, uses :func:`steepen_cusp_for_beta`: the tracer's log-slope is
raised to ``2 beta + margin`` inside the radius where the Brooks profile's own log-slope reaches
that value (at most 12 kpc over the Table 1 priors), with a C2 ramp, and left *exactly*
unchanged outside. Exactness matters: at radius r the constant-beta DF's velocity distribution
(and the Jeans sigma_r(r)) depends only on the density at radii >= r, so outside the core the
sampled density and kinematics are those of the Brooks profile, i.e. unchanged over the 30-160
kpc summary window. Only the shape inside r_core (a few per cent of the particles for the largest beta) changes.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ..jax_utils import unit_converter
from ..units import DIMENSIONLESS, KPC, MSUN, MSUN_KPC3, to_internal

__all__ = ["DensityProfile", "DehnenDensity", "DoublePowerLawDensity", "SteepenedCusp", "steepen_cusp_for_beta",
           "dehnen_shape"]


def _kpc(r: ArrayLike) -> Array:
    """Radii r in kpc (a Quantity converted) as a JAX array."""
    return jnp.asarray(to_internal(r, KPC, "r"))


class DensityProfile(eqx.Module):
    """A spherical density rho(r) (arbitrary normalisation unless stated): ``density(r)`` and
    ``__call__(r)`` take radii r (kpc, any shape) and return the density with the same shape.
    (:class:`jaxhalo.dynamics.potentials.SphericalFromDensity` calls it; :mod:`jaxhalo.dynamics.df` uses ``density``.)"""

    def __call__(self, r: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def density(self, r: ArrayLike) -> Array:
        return self(_kpc(r))


class DehnenDensity(DensityProfile):
    """Dehnen (1993) sphere rho = (3 - g) M a / (4 pi r^g (r + a)^(4 - g)).

    Attributes: ``mass`` (Msun; only the normalisation), ``scale_radius`` a (kpc),
    ``inner_slope`` g in [0, 3). The outer slope is 4. g = 1 is Hernquist.
    """

    mass: Array = eqx.field(converter=unit_converter(MSUN, "mass"))
    scale_radius: Array = eqx.field(converter=unit_converter(KPC, "scale_radius"))
    inner_slope: Array = eqx.field(converter=unit_converter(DIMENSIONLESS, "inner_slope"), default=1.0)

    @property
    def outer_slope(self) -> Array:
        return jnp.asarray(4.0)

    def density(self, r: ArrayLike) -> Array:
        """rho(r) in Msun/kpc^3 for r (...,) kpc."""
        r = _kpc(r)
        a, g = self.scale_radius, self.inner_slope
        return (3.0 - g) * self.mass * a / (4.0 * jnp.pi) / (r**g * (r + a) ** (4.0 - g))

    def __call__(self, r: ArrayLike) -> Array:
        return self.density(r)


class DoublePowerLawDensity(DensityProfile):
    """Brooks et al. (2026, eq. 2) tracer: rho = A (r/r_s)^(-alpha) (1 + r/r_s)^(alpha - gamma).

    Attributes: ``scale_radius`` r_s (kpc), ``outer_slope`` gamma (Brooks et al.: [3, 5]),
    ``inner_slope`` alpha (Brooks et al.: 1), ``amplitude`` A (Msun/kpc^3; only the normalisation).
    """

    scale_radius: Array = eqx.field(converter=unit_converter(KPC, "scale_radius"))
    outer_slope: Array = eqx.field(converter=unit_converter(DIMENSIONLESS, "outer_slope"))
    inner_slope: Array = eqx.field(converter=unit_converter(DIMENSIONLESS, "inner_slope"), default=1.0)
    amplitude: Array = eqx.field(converter=unit_converter(MSUN_KPC3, "amplitude"), default=1.0)

    def density(self, r: ArrayLike) -> Array:
        """rho(r) in Msun/kpc^3 for r (...,) kpc."""
        u = _kpc(r) / self.scale_radius
        return self.amplitude * u ** (-self.inner_slope) * (1.0 + u) ** (self.inner_slope - self.outer_slope)

    def __call__(self, r: ArrayLike) -> Array:
        return self.density(r)

    @property
    def r_s(self) -> Array:
        """Alias of ``scale_radius`` (the former ``jaxhalo.dynamics.potentials.DoublePowerLawDensity`` field)."""
        return self.scale_radius

    @property
    def gamma(self) -> Array:
        """Alias of ``outer_slope`` (the former ``jaxhalo.dynamics.potentials.DoublePowerLawDensity`` field)."""
        return self.outer_slope


class SteepenedCusp(DensityProfile):
    """``base`` density with its log-slope raised by ``extra_slope`` inside ``r_core``.

    rho(r) = base(r) exp(D [w P(t) + max(ln(r_core / r) - w, 0)]),  t = clip(ln(r_core / r) / w, 0, 1),

    with D = ``extra_slope``, w = ``width`` (in ln r) and P(t) = t^4 (5/2 - 3 t + t^2), the integral
    of the quintic smoothstep S(t) = 6t^5 - 15t^4 + 10t^3. So -dln rho/dln r = base slope + D S(t):
    unchanged (exactly) for r >= r_core, a C2 ramp over [r_core e^-w, r_core], and base slope + D
    inside r_core e^-w. Attributes are arrays (traceable); ``inner_slope`` is the base's plus D.
    """

    base: eqx.Module
    r_core: Array = eqx.field(converter=unit_converter(KPC, "r_core"))
    extra_slope: Array = eqx.field(converter=unit_converter(DIMENSIONLESS, "extra_slope"))
    width: Array = eqx.field(converter=unit_converter(DIMENSIONLESS, "width"), default=math.log(2.0))

    @property
    def inner_slope(self) -> Array:
        return self.base.inner_slope + self.extra_slope

    @property
    def outer_slope(self) -> Array:
        return self.base.outer_slope

    def log_factor(self, r: ArrayLike) -> Array:
        """ln(rho / base) at radii r (kpc): 0 for r >= r_core."""
        y = jnp.log(self.r_core / _kpc(r))  # > 0 inside the core
        t = jnp.clip(y / self.width, 0.0, 1.0)
        p = t**4 * (2.5 + t * (t - 3.0))
        return self.extra_slope * (self.width * p + jnp.maximum(y - self.width, 0.0))

    def density(self, r: ArrayLike) -> Array:
        """rho(r) in the base's units for r (...,) kpc."""
        r = _kpc(r)
        return self.base.density(r) * jnp.exp(self.log_factor(r))

    def __call__(self, r: ArrayLike) -> Array:
        return self.density(r)


def dehnen_shape(a: ArrayLike, gamma: ArrayLike = 1.0) -> DehnenDensity:
    """The unnormalised Dehnen shape (r/a)^-gamma (1 + r/a)^(gamma - 4) (peak-free, value a^0 units) as a
    :class:`DehnenDensity` of mass 4 pi a^3 / (3 - gamma); the signature of the former
    ``jaxhalo.dynamics.potentials.DehnenDensity(a, gamma)``, which is now this function."""
    a, gamma = jnp.asarray(to_internal(a, KPC, "a")), jnp.asarray(to_internal(gamma, DIMENSIONLESS, "gamma"))
    return DehnenDensity(4.0 * jnp.pi * a**3 / (3.0 - gamma), a, gamma)


def steepen_cusp_for_beta(
    base: DoublePowerLawDensity | DehnenDensity,
    beta: ArrayLike,
    margin: float = 0.05,
    width: float = math.log(2.0),
) -> SteepenedCusp:
    """The tracer ``base`` with a cusp steep enough for a constant-``beta`` DF (see module docstring).

    Target inner slope s* = 2 beta + ``margin``; D = max(s* - alpha, 0) (alpha the base's inner
    slope). r_core is where the base's own log-slope alpha + (gamma - alpha) u / (1 + u), u = r / r_s,
    equals s*: u* = (s* - alpha) / (gamma - s*). For 2 beta + margin <= alpha nothing changes
    (D = 0). Over the Brooks et al. (2026) priors (beta <= 0.85, gamma in [3, 5], r_dens in
    [10, 20] kpc) r_core <= 12 kpc (gamma = 3, r_dens = 20 kpc, beta = 0.85). ``width`` is the ramp width in ln r, inside r_core.
    Traceable in beta and the base's parameters (jit / vmap / grad).
    """
    alpha, gamma = base.inner_slope, base.outer_slope
    s = 2.0 * jnp.asarray(beta) + margin
    extra = jnp.maximum(s - alpha, 0.0)
    u = jnp.maximum(s - alpha, 0.0) / jnp.maximum(gamma - s, 1e-6)
    r_core = jnp.maximum(base.scale_radius * u, 1e-6)
    return SteepenedCusp(base, r_core, extra, width)
