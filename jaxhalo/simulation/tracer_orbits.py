"""Tracer orbits of a stellar halo in the time-dependent MW + LMC potential.

The halo is sampled from a :class:`jaxhalo.dynamics.df.ConstantBetaDF` at t0 = -2200 Myr around the MW's
centre (positions + mw_position(t0), velocities + mw_velocity(t0)), every particle is integrated
forward to t1 = 0 in the inertial frame under

    a(x, t) = a_host(x - mw_position(t)) + a_LMC(x - lmc_position(t)),

with all particles as one batched state, and the present-day snapshot is returned relative to
the MW centre (x - mw_position(0), v - mw_velocity(0)).

``host`` and ``lmc`` are any :class:`jaxhalo.dynamics.potentials.Potential` defined in their own frame
(centred on the origin); the ``track`` moves them. A track is any object (ideally a pytree, e.g. an
``equinox.Module``; ``jaxhalo.dynamics.mwlmc``'s orbit is one) with methods ``mw_position(t)``,
``mw_velocity(t)``, ``lmc_position(t)`` (t scalar in Myr, returning (3,) kpc or km/s); see
:class:`Track`, :class:`StaticTrack`, :class:`UniformTrack`.

Solvers: ``"leapfrog"``: fixed-step kick-drift-kick (symplectic for a static potential, second
order, one force evaluation per step, ``lax.scan``); ``"dopri8"`` / ``"tsit5"`` / ``"dopri5"``:
diffrax adaptive Runge-Kutta with a PID controller on the whole batched state (the step is
set by the most demanding particle).

Units: kpc, km/s, Myr; accelerations (km/s)^2/kpc.
"""

from __future__ import annotations

from typing import Protocol

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ..constants import KMS_TO_KPC_PER_MYR
from ..dynamics.df import ConstantBetaDF, sample_df
from ..units import KM_S, KPC, MYR, to_internal
from .errors import SimulatorError

__all__ = [
    "Track",
    "StaticTrack",
    "UniformTrack",
    "Snapshot",
    "acceleration",
    "integrate_orbits",
    "simulate_halo",
    "reaches_radius",
    "freeze_tangents",
    "SOLVERS",
    "SimulatorError",
]

#: Solver names accepted by :func:`integrate_orbits`.
SOLVERS = ("leapfrog", "dopri8", "tsit5", "dopri5")




class Track(Protocol):
    """What the simulator needs of the MW-LMC orbit: centres (kpc) and MW velocity (km/s) at t (Myr)."""

    def mw_position(self, t: ArrayLike) -> Array: ...

    def mw_velocity(self, t: ArrayLike) -> Array: ...

    def lmc_position(self, t: ArrayLike) -> Array: ...


class StaticTrack(eqx.Module):
    """MW fixed at ``mw`` and LMC fixed at ``lmc`` (kpc, (3,)); the MW at rest."""

    mw: Array = eqx.field(converter=jnp.asarray, default=(0.0, 0.0, 0.0))
    lmc: Array = eqx.field(converter=jnp.asarray, default=(0.0, 0.0, 1.0e6))

    def mw_position(self, t: ArrayLike) -> Array:
        return self.mw + 0.0 * jnp.asarray(t)

    def mw_velocity(self, t: ArrayLike) -> Array:
        return jnp.zeros(3) + 0.0 * jnp.asarray(t)

    def lmc_position(self, t: ArrayLike) -> Array:
        return self.lmc + 0.0 * jnp.asarray(t)


class UniformTrack(eqx.Module):
    """MW and LMC in uniform motion: position(t) = position(0) + velocity * t (kpc, km/s, t in Myr)."""

    mw0: Array = eqx.field(converter=jnp.asarray)
    mw_vel: Array = eqx.field(converter=jnp.asarray)
    lmc0: Array = eqx.field(converter=jnp.asarray)
    lmc_vel: Array = eqx.field(converter=jnp.asarray)

    def mw_position(self, t: ArrayLike) -> Array:
        return self.mw0 + self.mw_vel * KMS_TO_KPC_PER_MYR * t

    def mw_velocity(self, t: ArrayLike) -> Array:
        return self.mw_vel + 0.0 * jnp.asarray(t)

    def lmc_position(self, t: ArrayLike) -> Array:
        return self.lmc0 + self.lmc_vel * KMS_TO_KPC_PER_MYR * t


class Snapshot(eqx.Module):
    """Particles relative to the MW centre: ``positions`` (n, 3) kpc, ``velocities`` (n, 3) km/s."""

    positions: Array
    velocities: Array


def acceleration(x: Array, t: ArrayLike, host, lmc, track: Track) -> Array:
    """Inertial-frame acceleration (km/s)^2/kpc at positions x (n, 3) kpc and time t (Myr).

    ``lmc`` may be None (host only).
    """
    a = host.acceleration(x - track.mw_position(t))
    if lmc is not None:
        a = a + lmc.acceleration(x - track.lmc_position(t))
    return a


def _leapfrog(x0, v0, t0, t1, dt, host, lmc, track):
    n_steps = int(round(abs(t1 - t0) / dt))
    if n_steps < 1:
        raise SimulatorError(f"dt = {dt} Myr is larger than the integration span {abs(t1 - t0)} Myr.")
    h = (t1 - t0) / n_steps  # signed step in Myr, adjusted to land on t1
    k = KMS_TO_KPC_PER_MYR
    dtype = x0.dtype
    # the state keeps the particles' dtype (float32 opt-in) whatever the potential's dtype
    a0 = acceleration(x0, jnp.asarray(t0, dtype), host, lmc, track).astype(dtype)

    def step(carry, i):
        x, v, a = carry
        t_next = (t0 + (i + 1) * h).astype(dtype)
        v_half = v + (0.5 * h * k) * a
        x_new = x + (h * k) * v_half
        a_new = acceleration(x_new, t_next, host, lmc, track).astype(dtype)
        v_new = v_half + (0.5 * h * k) * a_new
        return (x_new, v_new, a_new), None

    (x, v, _), _ = jax.lax.scan(step, (x0, v0, a0), jnp.arange(n_steps, dtype=jnp.int32))
    return x, v


def _adaptive(x0, v0, t0, t1, solver, rtol, atol, max_steps, host, lmc, track):
    k = KMS_TO_KPC_PER_MYR

    def rhs(t, y, args):
        x, v = y
        return (k * v, (k * acceleration(x, t, host, lmc, track)).astype(v.dtype))

    solvers = {"dopri8": diffrax.Dopri8, "tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5}
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        solvers[solver](),
        t0=t0,
        t1=t1,
        dt0=None,
        y0=(x0, v0),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=diffrax.SaveAt(t1=True),
        max_steps=max_steps,
    )
    x, v = sol.ys
    return x[-1], v[-1]


def integrate_orbits(
    positions: ArrayLike,
    velocities: ArrayLike,
    host,
    lmc,
    track: Track,
    *,
    t0: float = -2200.0,
    t1: float = 0.0,
    solver: str = "leapfrog",
    dt: float = 1.0,
    rtol: float = 1e-8,
    atol: float = 1e-8,
    max_steps: int = 100_000,
) -> tuple[Array, Array]:
    """Integrate particles (inertial frame) from t0 to t1 (Myr) in host + LMC moved by ``track``.

    Args:
      positions, velocities: (n, 3) kpc and km/s at t0, inertial frame.
      host, lmc: Potentials in their own frames (``lmc`` may be None).
      track: centres of the host (``mw_position``) and the LMC (``lmc_position``) at t (Myr).
      solver: "leapfrog" (fixed step ``dt`` Myr, rounded to land on t1) or "dopri8" / "tsit5" /
        "dopri5" (adaptive, ``rtol``/``atol`` on (kpc, km/s), at most ``max_steps`` steps).
    Returns: positions (n, 3) kpc and velocities (n, 3) km/s at t1, inertial frame.

    Positions, velocities and the times may be astropy Quantities (converted at the call).
    """
    if solver not in SOLVERS:
        raise SimulatorError(f"unknown solver {solver!r}; choose one of {SOLVERS}.")
    positions, velocities = to_internal(positions, KPC, "positions"), to_internal(velocities, KM_S, "velocities")
    t0, t1, dt = to_internal(t0, MYR, "t0"), to_internal(t1, MYR, "t1"), to_internal(dt, MYR, "dt")
    x0, v0 = jnp.asarray(positions), jnp.asarray(velocities)
    if solver == "leapfrog":
        return _leapfrog(x0, v0, float(t0), float(t1), float(dt), host, lmc, track)
    return _adaptive(x0, v0, t0, t1, solver, rtol, atol, max_steps, host, lmc, track)


def simulate_halo(
    key: Array,
    df: ConstantBetaDF,
    host,
    lmc,
    track: Track,
    n_particles: int,
    *,
    t0: float = -2200.0,
    solver: str = "leapfrog",
    dt: float = 1.0,
    rtol: float = 1e-8,
    atol: float = 1e-8,
    max_steps: int = 100_000,
) -> Snapshot:
    """Sample a halo from ``df`` at t0 on the MW, integrate it to t = 0, return it MW-centred.

    Args:
      key: ``jax.random`` key (same key -> bit-identical snapshot on the same device).
      df: the halo's DF (e.g. built with :func:`jaxhalo.dynamics.df.constant_beta_df` in the spherically
        averaged MW potential); may be built inside a ``vmap`` over its parameters.
      host, lmc, track: see :func:`integrate_orbits`.
      n_particles: number of tracers (static).
      t0: start time in Myr (default -2200; a time Quantity is converted); the end time is 0.
      solver, dt, rtol, atol, max_steps: see :func:`integrate_orbits`.
    Returns: :class:`Snapshot` at t = 0 relative to mw_position(0), mw_velocity(0).

    All arguments but ``n_particles`` and the solver settings are pytrees, so ``jax.vmap`` over
    keys, masses (inside host / lmc / track) or beta (inside df) runs a batch of simulations as
    one compiled call.
    """
    t0, dt = to_internal(t0, MYR, "t0"), to_internal(dt, MYR, "dt")
    x_halo, v_halo = sample_df(key, df, n_particles)
    x0 = x_halo + track.mw_position(t0)
    v0 = v_halo + track.mw_velocity(t0)
    x, v = integrate_orbits(
        x0, v0, host, lmc, track, t0=t0, t1=0.0, solver=solver, dt=dt, rtol=rtol, atol=atol, max_steps=max_steps
    )
    t_end = jnp.asarray(0.0, x.dtype)
    return Snapshot(x - track.mw_position(t_end), v - track.mw_velocity(t_end))


def reaches_radius(positions: ArrayLike, velocities: ArrayLike, potential_of_r, radius: float) -> Array:
    """bool (n,): whether each orbit, in a *spherical* potential ``potential_of_r(r)`` ((km/s)^2 for r in
    kpc), comes within ``radius`` (kpc) of the centre, i.e. its pericentre is below ``radius``.

    From the energy E = v^2 / 2 + Phi(|x|) and angular momentum L = |x x v| of ``positions`` (n, 3) kpc and
    ``velocities`` (n, 3) km/s (centred on the potential): True where |x| <= radius or
    2 (E - Phi(radius)) radius^2 > L^2 (the radial motion is allowed at ``radius``; for a spherical potential
    the allowed radii form one interval [r_peri, r_apo] containing |x|). One potential evaluation per orbit.
    A flag on the values: no derivative flows through it.
    """
    x = jax.lax.stop_gradient(jnp.asarray(positions))
    v = jax.lax.stop_gradient(jnp.asarray(velocities))
    r = jnp.linalg.norm(x, axis=-1)
    e = 0.5 * jnp.sum(v * v, axis=-1) + potential_of_r(r)
    l2 = jnp.sum(jnp.cross(x, v) ** 2, axis=-1)
    rc = jnp.asarray(radius, x.dtype)
    return (r <= rc) | (2.0 * (e - potential_of_r(rc)) * rc * rc > l2)


def freeze_tangents(snapshot: Snapshot, frozen: ArrayLike) -> Snapshot:
    """``snapshot`` with the derivatives of the ``frozen`` particles (bool (n,)) cut: the same values, but
    ``jnp.where(frozen, stop_gradient(x), x)``, so their tangents (forward mode) and cotangents (reverse
    mode) are exactly 0, also where they were inf or NaN."""
    f = jnp.asarray(frozen)[:, None]
    x, v = snapshot.positions, snapshot.velocities
    return Snapshot(jnp.where(f, jax.lax.stop_gradient(x), x), jnp.where(f, jax.lax.stop_gradient(v), v))
