"""Derived quantities of posterior draws: enclosed masses within 50 kpc and the LMC/MW mass ratio.

Brooks et al. (2026 §5) quote M_MW(< 50 kpc) and M_LMC(< 50 kpc) rather than M200 and the
total LMC mass. For each draw:

* M_MW(< r) = M_NFW(< r) + M_bulge(< r) + M_disc(< r): the NFW of M200 with c200 solved for
  v_c(R_sun) = 235 km/s with the baryons (:func:`jaxhalo.dynamics.potentials.milky_way`, exactly the
  simulator's halo), the bulge's tabulated mass, and for the exponential disc (5e10 Msun,
  R_d = 3 kpc) the mass within cylindrical radius r, M_d [1 - (1 + r/R_d) e^(-r/R_d)]
  (at r = 50 kpc the disc is complete to 1e-6, so sphere and cylinder agree);
* M_LMC(< r) = M r^2 / (r + a)^2 with a from M(< 8.7 kpc) = 1.7e10 Msun.

Draws for which the c200 solve has no solution (log10 M200 below ~11.13) give NaN.
All vectorised with ``vmap``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ..dynamics.potentials import hernquist_scale_from_enclosed_mass, milky_way

__all__ = ["mw_enclosed_mass", "lmc_enclosed_mass", "derived_masses"]


def mw_enclosed_mass(log10_m200: ArrayLike, r: float = 50.0, r_sun: float = 8.122, v_circ_sun: float = 235.0,
                     disc_mass: float = 5e10, disc_scale_radius: float = 3.0) -> jax.Array:
    """M_MW(< r) (Msun) for log10 M200 (...,) (NaN where no c200 gives v_c(R_sun) = v_circ_sun)."""
    lm = jnp.asarray(log10_m200, dtype=float)

    def one(l):
        mw = milky_way(10.0**l, r_sun=r_sun, v_circ_sun=v_circ_sun, disc_mass=disc_mass,
                       disc_scale_radius=disc_scale_radius, check=False)
        x = r / disc_scale_radius
        disc = disc_mass * (1.0 - (1.0 + x) * jnp.exp(-x))
        return mw.halo.enclosed_mass(r) + mw.bulge.enclosed_mass(r) + disc

    flat = lm.reshape(-1)
    return jax.jit(jax.vmap(one))(flat).reshape(lm.shape)  # one program: eager vmap dispatches op by op


def lmc_enclosed_mass(m_lmc: ArrayLike, r: float = 50.0) -> jax.Array:
    """M_LMC(< r) (Msun) of the Hernquist LMC of total mass m_lmc (Msun), M(< 8.7 kpc) = 1.7e10."""
    m = jnp.asarray(m_lmc, dtype=float)
    a = hernquist_scale_from_enclosed_mass(m, check=False)
    return m * r**2 / (r + a) ** 2


def derived_masses(samples: ArrayLike, parameter_names: Sequence[str], r: float = 50.0) -> dict[str, np.ndarray]:
    """From draws (n, P) named by ``parameter_names``: M200, M_MW(<r), M_LMC(<r) (Msun) and their ratio,
    lambda_DF; NumPy arrays (n,). Needs ``log10_m200`` and ``m_lmc``."""
    samples = np.asarray(samples, dtype=float)
    names = list(parameter_names)
    for need in ("log10_m200", "m_lmc"):
        if need not in names:
            raise ValueError(f"derived quantities need parameter {need!r}; have {names}")
    lm, ml = samples[..., names.index("log10_m200")], samples[..., names.index("m_lmc")]
    m_mw = np.asarray(mw_enclosed_mass(lm, r))
    m_lmc = np.asarray(lmc_enclosed_mass(ml, r))
    tag = f"{r:g}"
    out = {"m200_mw": 10.0**lm, f"m_mw_lt{tag}": m_mw, f"m_lmc_lt{tag}": m_lmc, f"mass_ratio_lt{tag}": m_lmc / m_mw,
           "m_lmc_over_m200": ml / 10.0**lm}
    if "log10_lambda_df" in names:
        out["lambda_df"] = 10.0 ** samples[..., names.index("log10_lambda_df")]
    return out
