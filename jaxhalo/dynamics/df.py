"""Constant-anisotropy equilibrium distribution functions of spherical tracer populations.

A tracer density rho(r) in a spherical potential Phi(r) (not necessarily its own) with a
constant velocity anisotropy beta = 1 - sigma_t^2 / (2 sigma_r^2) in [0, 1) has the
distribution function (Cuddeford 1991; Binney & Tremaine 2008, eq. 4.67ff)

    f(E, L) = L^(-2 beta) f_E(eps),      eps = Psi - v^2 / 2 (relative energy), Psi = -Phi,

where f_E follows from an Abel-type (fractional-derivative) inversion of
h(Psi) = rho r^(2 beta) viewed as a function of Psi:

    rho r^(2 beta) = lambda(beta) * int_0^Psi f_E(eps) (Psi - eps)^(1/2 - beta) d eps,
    lambda(beta) = 2^(3/2 - beta) pi^(3/2) Gamma(1 - beta) / Gamma(3/2 - beta),

so f_E = D^mu h / (2^(3/2-beta) pi^(3/2) Gamma(1-beta)), a fractional derivative of order
mu = 3/2 - beta in (1/2, 3/2]. Cuddeford's formula splits into the cases beta < 1/2 (mu > 1,
two derivatives) and beta >= 1/2 (mu <= 1, one derivative). With h(0) = 0 (the tracer falls
faster than r^(-2 beta)) both cases reduce, after one integration by parts in the second, to
ONE formula that is smooth in beta and needs only h' and h'':

    f_E(eps) = C(beta) / Gamma(beta + 1/2) * [ h'(0) eps^q + int_0^eps h''(Psi) (eps - Psi)^q dPsi ],
    q = beta - 1/2 in [-1/2, 1/2),   C(beta) = 1 / (2^(3/2 - beta) pi^(3/2) Gamma(1 - beta)).

For beta = 0 this is Eddington's formula, for beta = 1/2 it is f_E = C h'(eps). This is the
"numerically robust general approach" used here for every beta in [0, 1); it is traceable
in beta (no branch), so the DF can be built inside ``vmap`` over beta.

Numerics (hand-written because no library does fractional Abel inversions in JAX):
- h'(Psi) = (dh/dr) / (dPsi/dr) and h''(Psi) by autodiff in r, with dPsi/dr = -G M(<r) / r^2,
  so only Phi(r), M(<r) (and, through autodiff, dM/dr) of the potential are needed.
- The Psi-integral is done in x = ln r from r(eps) outwards, with x = x_eps + (x_far - x_eps) w^p,
  p = 1 / (q + 1), which removes the endpoint singularity (eps - Psi)^q exactly to leading
  order; Gauss-Legendre in w. The lower limit Psi(r_far) (r_far = 1e6 r_max) replaces 0,
  with the boundary term h'(Psi_far) (eps - Psi_far)^q; the error is O(h(Psi_far)).
- f_E is tabulated on a log-radius grid of energies eps_i = Psi(r_i) and interpolated
  linearly in (ln eps, ln f_E), power-law extrapolated below the grid.

Sampling (all vectorised, one ``jax.random`` key):
- radii from the tracer mass profile restricted to [r_min, r_max] (inverse CDF on a grid);
- speeds from p(v) ∝ v^(2-2beta) f_E(Psi - v^2/2): with t = (v / v_esc)^(3-2beta) the density in
  t is f_E(Psi (1 - s^2)) (bounded), whose quantile function is tabulated on a (radius x u)
  grid once and interpolated bilinearly per star (O(1) per star);
- the angle eta between v and r-hat from p(eta) ∝ sin^(1-2beta) eta, by a tabulated inverse CDF of
  z = (1 - |cos eta|)^(1-beta) (bounded density) and a random sign (cheaper to compile and run than
  ``jax.random.beta`` for cos^2 eta ~ Beta(1/2, 1-beta)); the azimuth of v around r-hat and the direction of r uniform.

Negativity: f_E < 0 anywhere on the energy range of the sampled radii means no equilibrium
with this (density, potential, beta); the builder raises :class:`NegativeDFError` (eagerly) or
fails through ``eqx.error_if`` when traced. Note the cusp-slope theorem (An & Evans 2006): a
tracer with central slope rho ∝ r^(-g) needs g >= 2 beta near the centre, so an inner slope of 1
(the Brooks et al. double power law) admits beta <= 1/2 only if r_min is small; see
``tests/test_df.py`` for the radii at which it fails.

Units: r, r_s in kpc, Psi, eps in (km/s)^2, velocities km/s, masses Msun, densities Msun/kpc^3.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.special import gammaln
from jax.typing import ArrayLike

from ..constants import G
from ..jax_utils import is_concrete
from ..units import DIMENSIONLESS, KPC, to_internal

__all__ = [
    "ConstantBetaDF",
    "constant_beta_df",
    "SphericalProfile",
    "RadialProfile",
    "sample_df",
    "DFError",
    "NegativeDFError",
]

RadialFunction = Callable[[Array], Array]


class DFError(ValueError):
    """Invalid input for a distribution function (parameters out of range, inconsistent potential)."""


class NegativeDFError(DFError):
    """The requested (tracer density, potential, beta) has no non-negative equilibrium DF."""


def _interp(x: Array, xp: Array, fp: Array) -> Array:
    """Linear interpolation of (xp ascending, fp) at x, clamped at the ends (like ``jnp.interp``).

    Hand-written with an unrolled binary search: on CPU it compiles about three times faster
    than ``jnp.interp`` (which dominated the DF's compile time) and runs as fast.
    """
    i = jnp.clip(jnp.searchsorted(xp, x, side="right", method="scan_unrolled") - 1, 0, xp.shape[0] - 2)
    x0, x1 = xp[i], xp[i + 1]
    a = jnp.clip((x - x0) / jnp.where(x1 > x0, x1 - x0, 1.0), 0.0, 1.0)
    return fp[i] + a * (fp[i + 1] - fp[i])


class SphericalProfile(eqx.Module):
    """Radial profile Phi(r), M(<r) of a spherical :class:`jaxhalo.dynamics.potentials.Potential`.

    ``potential`` must have ``potential(x)`` and ``enclosed_mass(r)`` (NFW, Hernquist, Composite
    of those) and be centred on the origin. A pytree, so the DF builder compiles once per structure.
    """

    potential: eqx.Module

    def potential_of_r(self, r: ArrayLike) -> Array:
        """Phi(r) in (km/s)^2 for r (...,) kpc, along +z."""
        r = jnp.asarray(r)
        return self.potential.potential(r[..., None] * jnp.array([0.0, 0.0, 1.0], r.dtype))

    def mass_of_r(self, r: ArrayLike) -> Array:
        """M(<r) in Msun for r (...,) kpc."""
        return self.potential.enclosed_mass(r)


class RadialProfile(eqx.Module):
    """Radial profile from two jnp callables Phi(r) [(km/s)^2] and M(<r) [Msun] of r [kpc].

    The callables are static (compiled per function object); prefer a pytree profile such as
    :class:`SphericalProfile` inside loops.
    """

    phi: RadialFunction = eqx.field(static=True)
    mass: RadialFunction = eqx.field(static=True)

    def potential_of_r(self, r: ArrayLike) -> Array:
        return self.phi(jnp.asarray(r))

    def mass_of_r(self, r: ArrayLike) -> Array:
        return self.mass(jnp.asarray(r))


# --------------------------------------------------------------------------- the DF


class ConstantBetaDF(eqx.Module):
    """Tabulated constant-beta DF of a tracer in a spherical potential (build with :func:`constant_beta_df`).

    Attributes (all arrays, so the DF is a pytree that ``vmap`` batches):
      beta: anisotropy (scalar).
      ln_eps, ln_f: (n_energy,) ascending ln eps [(km/s)^2] and ln f_E at those energies
        (f_E in units of tracer-mass / (kpc^3 (km/s)^3) * (kpc km/s)^(2 beta)).
      ln_r_rows, psi_rows: (n_rows,) ln r [kpc] and Psi [(km/s)^2] of the speed-quantile rows.
      t_quantile: (n_rows, n_u) quantile function of t = (v / v_esc)^(3 - 2 beta) at u = linspace(0, 1).
      ln_r_cdf, psi_cdf, mass_cdf: (n_mass,) uniform ln r grid on [r_min, r_max], Psi there and the
        tracer's normalised M(<r).
      ln_r_quantile: (n_mass,) ln r at normalised tracer mass u = linspace(0, 1) (inverse of mass_cdf).
      z_quantile: (n_u,) quantile function at u = linspace(0, 1) of z = (1 - |cos eta|)^(1 - beta),
        whose density (2 - z^(1/(1-beta)))^(-beta) is bounded, for the angle eta between v and r-hat.
    """

    beta: Array
    ln_eps: Array
    ln_f: Array
    ln_r_rows: Array
    psi_rows: Array
    t_quantile: Array
    ln_r_cdf: Array
    psi_cdf: Array
    mass_cdf: Array
    ln_r_quantile: Array
    z_quantile: Array

    def f_energy(self, eps: ArrayLike) -> Array:
        """f_E(eps) for relative energies eps (...,) (km/s)^2; 0 for eps <= 0."""
        eps = jnp.asarray(eps)
        le = jnp.log(jnp.where(eps > 0, eps, 1.0))
        slope = (self.ln_f[1] - self.ln_f[0]) / (self.ln_eps[1] - self.ln_eps[0])
        low = self.ln_f[0] + slope * (le - self.ln_eps[0])
        lf = jnp.where(le < self.ln_eps[0], low, _interp(le, self.ln_eps, self.ln_f))
        return jnp.where(eps > 0, jnp.exp(lf), 0.0)

    def __call__(self, eps: ArrayLike, L: ArrayLike) -> Array:
        """f(E, L) = L^(-2 beta) f_E(eps) for eps (km/s)^2 and L (kpc km/s), broadcast."""
        return jnp.asarray(L) ** (-2.0 * self.beta) * self.f_energy(eps)

    @property
    def r_min(self) -> Array:
        return jnp.exp(self.ln_r_cdf[0])

    @property
    def r_max(self) -> Array:
        return jnp.exp(self.ln_r_cdf[-1])


def _validate(tracer, beta, r_min, r_max) -> None:
    """Parameter-range checks on concrete values (traced values are checked via eqx.error_if)."""
    if not is_concrete(tracer, beta):
        return
    b = float(beta)
    if not (0.0 <= b < 1.0):
        raise DFError(f"beta = {b} is outside [0, 1); constant-anisotropy DFs need 0 <= beta < 1 here.")
    g_out = float(tracer.outer_slope)
    g_in = float(tracer.inner_slope)
    if not g_out > 2.0 * b:
        raise DFError(
            f"outer slope {g_out} <= 2 beta = {2 * b}: rho r^(2 beta) does not vanish at large r, "
            "so the DF is undefined."
        )
    if not (0.0 <= g_in < 3.0):
        raise DFError(f"inner slope {g_in} outside [0, 3): the tracer mass diverges at the centre.")
    if not (0.0 < float(r_min) < float(r_max)):
        raise DFError(f"need 0 < r_min < r_max, got r_min = {float(r_min)}, r_max = {float(r_max)}.")


def constant_beta_df(
    tracer,
    profile,
    beta: ArrayLike,
    *,
    r_min: float = 0.1,
    r_max: float = 500.0,
    n_energy: int = 256,
    n_quad: int = 128,
    n_rows: int = 192,
    n_t: int = 512,
    n_u: int = 512,
    n_mass: int = 4096,
    check: bool = True,
) -> ConstantBetaDF:
    """Build the constant-beta DF of ``tracer`` in the spherical potential ``profile``.

    Args:
      tracer: pytree with ``density(r)`` (Msun/kpc^3, r in kpc, broadcasting) and ``inner_slope``,
        ``outer_slope`` attributes (e.g. :class:`DehnenDensity`, :class:`DoublePowerLawDensity`).
      profile: pytree with ``potential_of_r(r)`` (Phi in (km/s)^2, Phi(inf) = 0) and
        ``mass_of_r(r)`` (M(<r) in Msun), jnp functions of r (...,) kpc; M must be differentiable
        (its derivative 4 pi r^2 rho_total enters h''(Psi)) and consistent with Phi
        (dPhi/dr = G M / r^2). E.g. :class:`SphericalProfile` or :class:`RadialProfile`.
      beta: constant anisotropy in [0, 1) (may be traced).
      r_min, r_max: radial range (kpc, or length Quantities) of the sample; f_E is tabulated (and checked
        for positivity) from Psi(r_min) down to Psi(1e3 r_max).
      n_energy, n_quad: energy-grid size and Gauss-Legendre nodes of the Abel integral.
      n_rows, n_t, n_u: speed-quantile table: radii rows, t-grid for the CDF, u-grid of the quantile.
      n_mass: log-radius grid of the tracer's cumulative mass.
      check: raise on negative / non-finite f_E and on an inconsistent profile (eagerly), or fail
        through ``eqx.error_if`` when traced (negativity only).

    Returns: a :class:`ConstantBetaDF`.
    Raises: :class:`DFError` for parameters out of range or an inconsistent (Phi, M);
      :class:`NegativeDFError` if f_E <= 0 somewhere in the tabulated energy range.
    """
    r_min, r_max = to_internal(r_min, KPC, "r_min"), to_internal(r_max, KPC, "r_max")
    beta = to_internal(beta, DIMENSIONLESS, "beta")
    _validate(tracer, beta, r_min, r_max)
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    config = (float(r_min), float(r_max), n_energy, n_quad, n_rows, n_t, n_u, n_mass)
    df, r_grid, f_grid, consistency = _build(tracer, profile, beta, config)
    if not check:
        return df
    bad = ~jnp.all(jnp.isfinite(f_grid) & (f_grid > 0))
    if is_concrete(f_grid, consistency):
        if not float(consistency) < 1e-5:
            raise DFError(
                "the profile's potential_of_r and mass_of_r are inconsistent: dPhi/dr differs from "
                f"G M/r^2 by {float(consistency):.2e} (relative) within [r_min, r_max]."
            )
        if bool(bad):
            f_np, r_np = np.asarray(f_grid), np.asarray(r_grid)
            neg = ~(np.isfinite(f_np) & (f_np > 0))
            raise NegativeDFError(
                f"f_E(eps) <= 0 (or undefined) for beta = {float(beta):.3f} at the energies of circular "
                f"radii {r_np[neg].min():.3g}-{r_np[neg].max():.3g} kpc ({neg.sum()} of {neg.size} grid "
                "energies): this tracer density has no non-negative constant-beta DF in this potential "
                "over the requested radii (cusp-slope theorem: the tracer's log-slope must be >= 2 beta "
                "where it matters). Lower beta, steepen the inner slope or raise r_min."
            )
        return df
    return eqx.error_if(df, bad, "negative or undefined constant-beta DF f_E for this (density, potential, beta)")


@eqx.filter_jit
def _build(tracer, profile, beta: Array, config: tuple) -> tuple[ConstantBetaDF, Array, Array, Array]:
    """Jitted core of :func:`constant_beta_df`: (df, r_grid, f_grid, consistency error)."""
    r_min, r_max, n_energy, n_quad, n_rows, n_t, n_u, n_mass = config
    dtype = beta.dtype
    q = beta - 0.5
    p = 1.0 / (q + 1.0)
    phi = profile.potential_of_r

    def dpsi_dr(r):  # dPsi/dr = -G M(<r) / r^2
        return -G * profile.mass_of_r(r) / r**2

    def h_of_r(r):
        return tracer.density(r) * r ** (2.0 * beta)

    def h1(r):  # dh/dPsi at radius r
        return jax.grad(h_of_r)(r) / dpsi_dr(r)

    def h2(r):  # d2h/dPsi2 at radius r
        return jax.grad(h1)(r) / dpsi_dr(r)

    # consistency of the supplied profile: dPhi/dr = G M / r^2
    r_test = jnp.geomspace(r_min, r_max, 7, dtype=dtype)
    dphi = jax.vmap(jax.grad(lambda r: phi(r)))(r_test)
    consistency = jnp.max(jnp.abs(dphi / (-dpsi_dr(r_test)) - 1.0))

    # energy grid and the Abel-type integral
    x_lo, x_hi, x_far = np.log(r_min), np.log(r_max * 1e3), np.log(r_max * 1e6)
    x_grid = jnp.linspace(x_lo, x_hi, n_energy, dtype=dtype)
    r_grid = jnp.exp(x_grid)
    eps_grid = -phi(r_grid)
    r_far = jnp.asarray(np.exp(x_far), dtype)
    psi_far = -phi(r_far)

    nodes, weights = np.polynomial.legendre.leggauss(n_quad)
    w = jnp.asarray(0.5 * (nodes + 1.0), dtype)
    ww = jnp.asarray(0.5 * weights, dtype)

    def abel(x_i, eps_i):
        span = x_far - x_i
        x = x_i + span * w**p
        r = jnp.exp(x)
        gap = eps_i + phi(r)  # eps - Psi(r) >= 0
        # (eps - Psi)^q * w^(p-1) combined in logs: finite at w -> 0 for every q.
        weight = jnp.exp(q * jnp.log(gap) + (p - 1.0) * jnp.log(w))
        integrand = jax.vmap(h2)(r) * (-dpsi_dr(r)) * r * span * p * weight
        return jnp.sum(ww * integrand)

    integral = jax.vmap(abel)(x_grid, eps_grid)
    boundary = h1(r_far) * (eps_grid - psi_far) ** q
    log_c = -((1.5 - beta) * jnp.log(2.0) + 1.5 * jnp.log(jnp.pi) + gammaln(1.0 - beta) + gammaln(beta + 0.5))
    f_grid = jnp.exp(log_c) * (boundary + integral)

    ln_eps = jnp.log(eps_grid)[::-1]
    ln_f = jnp.log(jnp.where(f_grid > 0, f_grid, jnp.finfo(dtype).tiny))[::-1]

    # speed-quantile table: rows of radius, quantile of t = (v/v_esc)^(3 - 2 beta)
    ln_r_rows = jnp.linspace(np.log(r_min), np.log(r_max), n_rows, dtype=dtype)
    psi_rows = -phi(jnp.exp(ln_r_rows))
    partial = ConstantBetaDF(beta, ln_eps, ln_f, ln_r_rows, psi_rows, *([None] * 6))
    t = jnp.linspace(0.0, 1.0, n_t, dtype=dtype)
    s2 = t ** (2.0 / (3.0 - 2.0 * beta))
    pdf = partial.f_energy(psi_rows[:, None] * (1.0 - s2[None, :]))  # (n_rows, n_t)
    cdf = jnp.concatenate(
        [jnp.zeros((n_rows, 1), dtype), jnp.cumsum(0.5 * (pdf[:, 1:] + pdf[:, :-1]), axis=1)], axis=1
    )
    cdf = cdf / cdf[:, -1:]
    u = jnp.linspace(0.0, 1.0, n_u, dtype=dtype)
    t_quantile = jax.vmap(lambda c: _interp(u, c, t))(cdf)

    # tracer cumulative mass on [r_min, r_max] (trapezoid in ln r of 4 pi r^3 rho)
    ln_r_cdf = jnp.linspace(np.log(r_min), np.log(r_max), n_mass, dtype=dtype)
    rc = jnp.exp(ln_r_cdf)
    dm = 4.0 * jnp.pi * rc**3 * tracer.density(rc)
    dx = ln_r_cdf[1] - ln_r_cdf[0]
    mass = jnp.concatenate([jnp.zeros(1, dtype), jnp.cumsum(0.5 * (dm[1:] + dm[:-1]) * dx)])
    mass_cdf = mass / mass[-1]

    # angle to r-hat: |cos eta| = mu has p(mu) ∝ (1 - mu^2)^(-beta); mu = 1 - z^(1/(1-beta)) makes the
    # density in z bounded, (2 - z^(1/(1-beta)))^(-beta); tabulate its quantile function.
    z = jnp.linspace(0.0, 1.0, n_t, dtype=dtype)
    pz = (2.0 - z ** (1.0 / (1.0 - beta))) ** (-beta)
    cz = jnp.concatenate([jnp.zeros(1, dtype), jnp.cumsum(0.5 * (pz[1:] + pz[:-1]))])
    z_quantile = _interp(u, cz / cz[-1], z)

    psi_cdf = -phi(rc)
    ln_r_quantile = _interp(jnp.linspace(0.0, 1.0, n_mass, dtype=dtype), mass_cdf, ln_r_cdf)
    df = ConstantBetaDF(
        beta, ln_eps, ln_f, ln_r_rows, psi_rows, t_quantile, ln_r_cdf, psi_cdf, mass_cdf, ln_r_quantile, z_quantile
    )
    return df, r_grid, f_grid, consistency


# --------------------------------------------------------------------------- sampling


def sample_df(key: Array, df: ConstantBetaDF, n: int) -> tuple[Array, Array]:
    """Draw n phase-space points from ``df`` (halo-centred frame).

    Args:
      key: a ``jax.random`` key.
      df: a :class:`ConstantBetaDF`.
      n: number of particles (static).
    Returns: positions (n, 3) kpc and velocities (n, 3) km/s.
    """
    dtype = df.ln_eps.dtype
    # one draw of all uniforms (one threefry call compiles and runs fastest); the columns are
    # independent: radius, cos(theta), phi, speed, angle eta, sign of cos(eta), azimuth of v.
    uni = jax.random.uniform(key, (7, n), dtype)

    def lookup(table: Array, u: Array) -> tuple[Array, Array]:
        """Cell index and weight of u in [0, 1] on the uniform grid of the table's last axis."""
        m = table.shape[-1]
        f = u * (m - 1)
        i = jnp.clip(jnp.floor(f).astype(jnp.int32), 0, m - 2)
        return i, f - i

    # radii: tabulated quantile of the tracer mass on [r_min, r_max]
    i_r, a_r = lookup(df.ln_r_quantile, uni[0])
    ln_r = df.ln_r_quantile[i_r] + a_r * (df.ln_r_quantile[i_r + 1] - df.ln_r_quantile[i_r])
    r = jnp.exp(ln_r)
    # isotropic direction
    cos_th = 2.0 * uni[1] - 1.0
    sin_th = jnp.sqrt(jnp.clip(1.0 - cos_th**2, 0.0, 1.0))
    ph = 2.0 * jnp.pi * uni[2]
    r_hat = jnp.stack([sin_th * jnp.cos(ph), sin_th * jnp.sin(ph), cos_th], axis=-1)
    th_hat = jnp.stack([cos_th * jnp.cos(ph), cos_th * jnp.sin(ph), -sin_th], axis=-1)
    ph_hat = jnp.stack([-jnp.sin(ph), jnp.cos(ph), jnp.zeros_like(ph)], axis=-1)
    # Psi(r) on the fine uniform ln r grid
    span = df.ln_r_cdf[-1] - df.ln_r_cdf[0]
    i_p, a_p = lookup(df.ln_r_cdf, jnp.clip((ln_r - df.ln_r_cdf[0]) / span, 0.0, 1.0))
    psi = df.psi_cdf[i_p] + a_p * (df.psi_cdf[i_p + 1] - df.psi_cdf[i_p])
    # speeds: bilinear interpolation of the quantile table in (ln r, u)
    rows = df.ln_r_rows
    i, a = lookup(rows, jnp.clip((ln_r - rows[0]) / (rows[-1] - rows[0]), 0.0, 1.0))
    j, b = lookup(df.t_quantile, uni[3])
    tq = df.t_quantile
    t = (1 - a) * ((1 - b) * tq[i, j] + b * tq[i, j + 1]) + a * ((1 - b) * tq[i + 1, j] + b * tq[i + 1, j + 1])
    v = jnp.sqrt(2.0 * psi) * t ** (1.0 / (3.0 - 2.0 * df.beta))
    # angle to the radial direction: p(eta) ∝ sin^(1-2 beta) eta via the tabulated z quantile, random sign
    zq = df.z_quantile
    jz, bz = lookup(zq, uni[4])
    z = zq[jz] + bz * (zq[jz + 1] - zq[jz])
    mu = 1.0 - z ** (1.0 / (1.0 - df.beta))
    cos_eta = jnp.where(uni[5] < 0.5, mu, -mu)
    sin_eta = jnp.sqrt(jnp.clip(1.0 - mu * mu, 0.0, 1.0))
    az = 2.0 * jnp.pi * uni[6]
    v_r = v * cos_eta
    v_th = v * sin_eta * jnp.cos(az)
    v_ph = v * sin_eta * jnp.sin(az)
    pos = r[:, None] * r_hat
    vel = v_r[:, None] * r_hat + v_th[:, None] * th_hat + v_ph[:, None] * ph_hat
    return pos, vel
