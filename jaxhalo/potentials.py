"""Gravitational potentials as immutable pytrees (equinox Modules).

Units: positions kpc, potential (km/s)^2, accelerations (km/s)^2 / kpc, masses Msun,
densities Msun / kpc^3. Every potential evaluates on a single position ``x`` of
shape (3,) and broadcasts over leading axes ``(..., 3)``; parameters are array
leaves, so ``jax.grad`` / ``jax.vmap`` over masses and scales work.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from .constants import G

__all__ = ["Potential", "NFW", "Hernquist", "Composite"]


def _radius(x: Array) -> Array:
    return jnp.sqrt(jnp.sum(x * x, axis=-1))


class Potential(eqx.Module):
    """Base class. Subclasses implement ``_phi(x)`` for one position x of shape (3,)."""

    def _phi(self, x: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def potential(self, x: ArrayLike) -> Array:
        """Potential (km/s)^2 at positions x (..., 3) kpc; returns (...,)."""
        x = jnp.asarray(x)
        f = self._phi
        for _ in range(x.ndim - 1):
            f = jax.vmap(f)
        return f(x)

    def acceleration(self, x: ArrayLike) -> Array:
        """Acceleration -grad Phi, (..., 3) in (km/s)^2 / kpc, by autodiff unless overridden."""
        x = jnp.asarray(x)
        f = lambda y: -jax.grad(self._phi)(y)  # noqa: E731
        for _ in range(x.ndim - 1):
            f = jax.vmap(f)
        return f(x)

    def density(self, x: ArrayLike) -> Array:
        """Density (Msun/kpc^3) from Poisson's equation, laplacian(Phi) / (4 pi G)."""
        x = jnp.asarray(x)

        def rho(y):
            return jnp.trace(jax.hessian(self._phi)(y)) / (4.0 * jnp.pi * G)

        f = rho
        for _ in range(x.ndim - 1):
            f = jax.vmap(f)
        return f(x)

    def circular_velocity(self, x: ArrayLike) -> Array:
        """Circular speed sqrt(R dPhi/dR) in km/s at positions (..., 3), in the plane of x."""
        x = jnp.asarray(x)
        a = self.acceleration(x)
        R2 = x[..., 0] ** 2 + x[..., 1] ** 2
        aR_R = -(a[..., 0] * x[..., 0] + a[..., 1] * x[..., 1])
        return jnp.sqrt(jnp.maximum(jnp.where(R2 > 0, aR_R, 0.0), 0.0))

    def __add__(self, other: "Potential") -> "Composite":
        left = self.components if isinstance(self, Composite) else (self,)
        right = other.components if isinstance(other, Composite) else (other,)
        return Composite(tuple(left) + tuple(right))


class Composite(Potential):
    """Sum of potentials."""

    components: tuple[Potential, ...]

    def _phi(self, x: Array) -> Array:
        return sum(c._phi(x) for c in self.components)

    def acceleration(self, x: ArrayLike) -> Array:
        return sum(c.acceleration(x) for c in self.components)

    def enclosed_mass(self, r: ArrayLike) -> Array:
        """Sum of the components' enclosed masses (spherical components only)."""
        return sum(c.enclosed_mass(r) for c in self.components)


class NFW(Potential):
    """Navarro-Frenk-White halo, Phi = -4 pi G rho_s r_s^3 ln(1 + r/r_s) / r.

    Attributes: ``rho_s`` (Msun/kpc^3), ``r_s`` (kpc), ``center`` (3,) kpc.
    """

    rho_s: Array = eqx.field(converter=jnp.asarray)
    r_s: Array = eqx.field(converter=jnp.asarray)
    center: Array = eqx.field(converter=jnp.asarray, default=(0.0, 0.0, 0.0))

    def _phi(self, x: Array) -> Array:
        r = _radius(x - self.center)
        u = r / self.r_s
        # ln(1+u)/u with a series near u = 0 for a finite gradient at the centre.
        small = u < 1e-6
        us = jnp.where(small, 1.0, u)
        g = jnp.where(small, 1.0 - u / 2.0, jnp.log1p(us) / us)
        return -4.0 * jnp.pi * G * self.rho_s * self.r_s**2 * g

    def enclosed_mass(self, r: ArrayLike) -> Array:
        """M(<r) in Msun for radii r (kpc)."""
        u = jnp.asarray(r) / self.r_s
        return 4.0 * jnp.pi * self.rho_s * self.r_s**3 * (jnp.log1p(u) - u / (1.0 + u))

    def density_profile(self, r: ArrayLike) -> Array:
        """rho(r) in Msun/kpc^3."""
        u = jnp.asarray(r) / self.r_s
        return self.rho_s / (u * (1.0 + u) ** 2)


class Hernquist(Potential):
    """Hernquist sphere, Phi = -G M / (r + a). Attributes ``mass`` (Msun), ``a`` (kpc), ``center`` (3,) kpc."""

    mass: Array = eqx.field(converter=jnp.asarray)
    a: Array = eqx.field(converter=jnp.asarray)
    center: Array = eqx.field(converter=jnp.asarray, default=(0.0, 0.0, 0.0))

    def _phi(self, x: Array) -> Array:
        return -G * self.mass / (_radius(x - self.center) + self.a)

    def enclosed_mass(self, r: ArrayLike) -> Array:
        """M(<r) = M r^2 / (r + a)^2 in Msun."""
        r = jnp.asarray(r)
        return self.mass * r**2 / (r + self.a) ** 2

    def density_profile(self, r: ArrayLike) -> Array:
        """rho(r) = M a / (2 pi r (r + a)^3) in Msun/kpc^3."""
        r = jnp.asarray(r)
        return self.mass * self.a / (2.0 * jnp.pi * r * (r + self.a) ** 3)
