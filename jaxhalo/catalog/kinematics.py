"""Galactocentric kinematics of a catalogue with propagated errors (Li et al. 2025 conventions).

:func:`catalog_velocities` turns heliocentric observables into Galactocentric positions and
(V_r, V_phi, V_theta) in Li et al.'s signs, and propagates the distance, v_los and (correlated)
proper-motion errors to a full 3x3 covariance by the Jacobian of the transformation (first order,
``jax.jacfwd``). One jitted program per catalogue shape.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..constants import K_PM
from ..frames import (
    SolarParameters,
    li_velocity_components,
    observables_to_galactocentric,
)
from .structure import StarCatalog

__all__ = ["catalog_velocities"]


def catalog_velocities(cat: StarCatalog, solar: SolarParameters | None = None, k: float | None = None) -> dict:
    """Galactocentric positions, (V_r, V_phi, V_theta) in Li's signs and their error covariance.

    Returns dict with 'r_gc' (N,) kpc, 'lon_gc', 'lat_gc' (N,) Galactocentric longitude and
    latitude of the star positions (rad), 'v' (N, 3) km/s and 'cov' (N, 3, 3) (km/s)^2, the
    first-order propagation of the distance, v_los and proper-motion error covariance.
    """

    solar = SolarParameters() if solar is None else solar
    k = K_PM if k is None else k
    cols = [jnp.asarray(getattr(cat, n), float) for n in
            ("distance", "v_los", "pm_l", "pm_b", "l", "b", "distance_err", "v_los_err", "pm_l_err", "pm_b_err", "pm_corr")]
    v, r, cov = _kinematics_jit(*cols, solar=solar, k=float(k))
    rr = jnp.linalg.norm(r, axis=-1)
    return {"r_gc": np.asarray(rr), "lon_gc": np.asarray(jnp.arctan2(r[:, 1], r[:, 0])),
            "lat_gc": np.asarray(jnp.arcsin(r[:, 2] / rr)), "v": np.asarray(v), "cov": np.asarray(cov)}


def _kinematics(d, v_los, pm_l, pm_b, l, b, ed, ev, el, eb, rho, *, solar, k):
    """(v (N, 3), r_gal (N, 3), cov (N, 3, 3)); see :func:`catalog_velocities`."""

    def one(obs, li, bi):
        r, v = observables_to_galactocentric(li, bi, obs[0], obs[1], obs[2], obs[3], solar, k)
        return jnp.stack(li_velocity_components(r, v)), r

    obs = jnp.stack([d, v_los, pm_l, pm_b], -1)
    v, r = jax.vmap(one)(obs, l, b)
    J = jax.vmap(jax.jacfwd(lambda o, li, bi: one(o, li, bi)[0]))(obs, l, b)  # (N, 3, 4)
    z = jnp.zeros_like(el)
    C = jnp.stack([
        jnp.stack([ed**2, z, z, z], -1),
        jnp.stack([z, ev**2, z, z], -1),
        jnp.stack([z, z, el**2, rho * el * eb], -1),
        jnp.stack([z, z, rho * el * eb, eb**2], -1),
    ], -2)
    return v, r, J @ C @ jnp.swapaxes(J, -1, -2)


_kinematics_jit = eqx.filter_jit(_kinematics)
