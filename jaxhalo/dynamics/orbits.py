"""Orbit integration in a static potential with diffrax.

State w = (x, v): positions kpc, velocities km/s; time in Myr. The equations of motion are
dx/dt = k v, dv/dt = k a(x) with k = KMS_TO_KPC_PER_MYR ((km/s) -> kpc/Myr) and a in
(km/s)^2/kpc, so velocities stay in km/s. Arguments may be astropy Quantities (positions and
velocities as a pair ``(x, v)``, times in any time unit), converted once at the call
(:mod:`jaxhalo.units`); results are plain arrays in kpc, km/s and Myr.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ..constants import KMS_TO_KPC_PER_MYR
from ..units import KM_S, KPC, MYR, phase_space_to_internal, to_internal
from .potentials import Potential

__all__ = ["Orbit", "integrate_orbit", "energy", "DEFAULT_RTOL", "DEFAULT_ATOL"]

#: Default relative / absolute tolerances of the adaptive integrators (state in kpc, km/s).
DEFAULT_RTOL: float = 1e-10
DEFAULT_ATOL: float = 1e-10


class Orbit(eqx.Module):
    """Integrated orbit(s).

    Attributes
    ----------
    ts : (n_t,) output times (Myr).
    positions : (..., n_t, 3) kpc.
    velocities : (..., n_t, 3) km/s.
    solution : the diffrax Solution (dense interpolation when ``dense=True``) or None.
    stats : number of accepted / rejected steps (from diffrax), arrays.
    """

    ts: Array
    positions: Array
    velocities: Array
    solution: diffrax.Solution | None
    num_steps: Array

    def evaluate(self, t: ArrayLike) -> tuple[Array, Array]:
        """(x, v) at time(s) t (Myr) from the dense solution; shapes (..., 3) for one orbit."""
        if self.solution is None:
            raise ValueError("Orbit.evaluate needs integrate_orbit(..., dense=True)")
        t = jnp.asarray(to_internal(t, MYR, "t"), dtype=float)
        w = jnp.vectorize(self.solution.evaluate, signature="()->(n)")(t)
        return w[..., :3], w[..., 3:]


def _vector_field(t, w, potential: Potential):
    """dw/dt for w = (x [kpc], v [km/s]) in ``potential`` (passed as diffrax's ``args``: one module-level
    function, so repeated :func:`integrate_orbit` calls with the same settings reuse diffrax's compilation)."""
    x, v = w[:3], w[3:]
    a = potential._acc(x)
    return jnp.concatenate([KMS_TO_KPC_PER_MYR * v, KMS_TO_KPC_PER_MYR * a])


def integrate_orbit(
    potential: Potential,
    w0: ArrayLike,
    t0: float,
    t1: float,
    ts: ArrayLike | None = None,
    dense: bool = False,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    dt0: float | None = None,
    max_steps: int = 100_000,
) -> Orbit:
    """Integrate orbit(s) from t0 to t1 (Myr; t1 < t0 integrates backwards) in a static potential.

    Parameters
    ----------
    potential : any :class:`~jaxhalo.dynamics.potentials.Potential`.
    w0 : (..., 6) initial (x [kpc], v [km/s]); leading axes are vmapped. Or a pair ``(x, v)`` of
        (..., 3) positions and velocities, each possibly an astropy Quantity
        (``([8, 0, 0] * u.kpc, [0, 220, 0] * u.km / u.s)``); one Quantity for all six raises.
    t0, t1 : start and end times (Myr, or time Quantities).
    ts : (n_t,) output times in [t0, t1] (default: just t1).
    dense : keep the dense interpolation (``Orbit.evaluate``) — one orbit at a time is cheapest.
    solver : diffrax solver (default Dopri8); adaptive PID step control with ``rtol``, ``atol``.
    dt0 : first step (Myr; default chosen by diffrax); max_steps : step budget.

    Returns
    -------
    An :class:`Orbit` (positions / velocities (..., n_t, 3)).
    """
    pair = phase_space_to_internal(w0, "w0")
    if pair is not None:
        w0 = jnp.concatenate(jnp.broadcast_arrays(jnp.asarray(pair[0], dtype=float), jnp.asarray(pair[1], dtype=float)),
                             axis=-1)
    w0 = jnp.asarray(w0, dtype=float)
    t0, t1 = to_internal(t0, MYR, "t0"), to_internal(t1, MYR, "t1")
    ts, dt0 = to_internal(ts, MYR, "ts"), to_internal(dt0, MYR, "dt0")
    solver = diffrax.Dopri8() if solver is None else solver
    ts_arr = jnp.atleast_1d(jnp.asarray(t1 if ts is None else ts, dtype=float))
    term = diffrax.ODETerm(_vector_field)
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    saveat = diffrax.SaveAt(ts=ts_arr, dense=dense)

    def one(w):
        sol = diffrax.diffeqsolve(
            term, solver, t0, t1, dt0, w, args=potential, saveat=saveat, stepsize_controller=controller,
            max_steps=max_steps,
        )
        return sol

    f = one
    for _ in range(w0.ndim - 1):
        f = jax.vmap(f)
    sol = f(w0)
    ys = sol.ys
    return Orbit(ts_arr, ys[..., :3], ys[..., 3:], sol if dense else None, sol.stats["num_accepted_steps"])


def energy(potential: Potential, x: ArrayLike, v: ArrayLike) -> Array:
    """Specific energy v^2/2 + Phi(x) in (km/s)^2 for x (..., 3) kpc and v (..., 3) km/s (or Quantities)."""
    x, v = to_internal(x, KPC, "x"), jnp.asarray(to_internal(v, KM_S, "v"))
    return 0.5 * jnp.sum(v * v, axis=-1) + potential.potential(x)
