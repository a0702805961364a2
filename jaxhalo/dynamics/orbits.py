"""Orbit integration in a static potential with diffrax.

State w = (x, v): positions kpc, velocities km/s; time in Myr. The equations of motion are
dx/dt = k v, dv/dt = k a(x) with k = KMS_TO_KPC_PER_MYR ((km/s) -> kpc/Myr) and a in
(km/s)^2/kpc, so velocities stay in km/s.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ..constants import KMS_TO_KPC_PER_MYR
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
        t = jnp.asarray(t, dtype=float)
        w = jnp.vectorize(self.solution.evaluate, signature="()->(n)")(t)
        return w[..., :3], w[..., 3:]


def _vector_field(potential: Potential):
    def f(t, w, args):
        x, v = w[:3], w[3:]
        a = potential._acc(x)
        return jnp.concatenate([KMS_TO_KPC_PER_MYR * v, KMS_TO_KPC_PER_MYR * a])

    return f


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
    w0 : (..., 6) initial (x [kpc], v [km/s]); leading axes are vmapped.
    ts : (n_t,) output times in [t0, t1] (default: just t1).
    dense : keep the dense interpolation (``Orbit.evaluate``) — one orbit at a time is cheapest.
    solver : diffrax solver (default Dopri8); adaptive PID step control with ``rtol``, ``atol``.
    dt0 : first step (Myr; default chosen by diffrax); max_steps : step budget.

    Returns
    -------
    An :class:`Orbit` (positions / velocities (..., n_t, 3)).
    """
    w0 = jnp.asarray(w0, dtype=float)
    solver = diffrax.Dopri8() if solver is None else solver
    ts_arr = jnp.atleast_1d(jnp.asarray(t1 if ts is None else ts, dtype=float))
    term = diffrax.ODETerm(_vector_field(potential))
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    saveat = diffrax.SaveAt(ts=ts_arr, dense=dense)

    def one(w):
        sol = diffrax.diffeqsolve(
            term, solver, t0, t1, dt0, w, saveat=saveat, stepsize_controller=controller, max_steps=max_steps
        )
        return sol

    f = one
    for _ in range(w0.ndim - 1):
        f = jax.vmap(f)
    sol = f(w0)
    ys = sol.ys
    return Orbit(ts_arr, ys[..., :3], ys[..., 3:], sol if dense else None, sol.stats["num_accepted_steps"])


def energy(potential: Potential, x: ArrayLike, v: ArrayLike) -> Array:
    """Specific energy v^2/2 + Phi(x) in (km/s)^2 for x (..., 3) kpc and v (..., 3) km/s."""
    v = jnp.asarray(v)
    return 0.5 * jnp.sum(v * v, axis=-1) + potential.potential(x)
