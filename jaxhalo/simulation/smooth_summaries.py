"""Differentiable Brooks et al. summaries: soft bin membership instead of hard bins and clipping.

The 52 summaries of :mod:`jaxhalo.simulation.summaries` use hard radial bins, hard sky quadrants
and 3-sigma clipping, so their derivative with respect to the simulator parameters is zero almost
everywhere and undefined where a star crosses a bin edge. Here every star enters each bin with a
smooth weight,

    w_k(r) = sigmoid((r - e_k) / delta_r) - sigmoid((r - e_{k+1}) / delta_r),

whose sum over the bins of one set of edges is sigmoid((r - e_0)/delta_r) - sigmoid((r - e_K)/delta_r)
(a partition of unity inside the window), and each quadrant with sigmoid(+-sin l / delta_a) x
sigmoid(+-sin b / delta_a) (sin l changes sign at l = 0 and 180 deg, so the wrap at 180 deg is as
smooth as the boundary at 0). The statistics are the weighted mean and (ddof = 0) dispersion, without
clipping. As delta -> 0 they tend to the hard, unclipped summaries; at the default widths (1 kpc,
1 deg) they agree with the clipped hard summaries within Monte Carlo noise
(tests/simulation/test_smooth_summaries.py).

Observe with no radial window (``r_gal_range=None``): the soft radial weights do the 30-160 kpc
selection, so a star leaving the window fades out instead of dropping.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from .brooks import ObsConfig, SimConfig, simulate_observed
from .observe import MockObservation
from .summaries import BROOKS_VGSR_EDGES, BROOKS_VTB_EDGES

__all__ = [
    "SMOOTH_R_WIDTH",
    "SMOOTH_ANGLE_WIDTH",
    "soft_bin_weights",
    "soft_quadrant_weights",
    "weighted_moments",
    "smooth_brooks_summary_vector",
    "SMOOTH_OBS_CONFIG",
    "smooth_summary_vector",
]

#: Default width of the radial bin edges (kpc).
SMOOTH_R_WIDTH: float = 1.0
#: Default width of the quadrant boundaries (rad; applied to sin l and sin b, i.e. ~1 deg at the edges).
SMOOTH_ANGLE_WIDTH: float = float(np.deg2rad(1.0))


def soft_bin_weights(x: ArrayLike, edges: ArrayLike, width: float) -> Array:
    """Soft membership (B, N) of values x (N,) in the B bins between ``edges`` (B + 1,)."""
    x = jnp.asarray(x)
    s = jax.nn.sigmoid((x[None, :] - jnp.asarray(edges, dtype=x.dtype)[:, None]) / width)  # (B + 1, N)
    return s[:-1] - s[1:]


def soft_quadrant_weights(l: ArrayLike, b: ArrayLike, width: float) -> Array:
    """Soft membership (4, N) in the Brooks et al. quadrants Q1..Q4 (l, b in rad; see
    :func:`jaxhalo.simulation.summaries.quadrant_masks` for the hard ones)."""
    east = jax.nn.sigmoid(jnp.sin(jnp.asarray(l)) / width)
    north = jax.nn.sigmoid(jnp.sin(jnp.asarray(b)) / width)
    return jnp.stack([east * north, (1 - east) * north, east * (1 - north), (1 - east) * (1 - north)])


def weighted_moments(values: ArrayLike, weights: ArrayLike) -> tuple[Array, Array]:
    """Weighted mean and dispersion (ddof = 0) over the last axis; NaN where the weights sum to 0."""
    v, w = jnp.asarray(values), jnp.asarray(weights)
    n = jnp.sum(w, axis=-1)
    safe_n = jnp.where(n > 0, n, 1.0)
    mean = jnp.sum(w * v, axis=-1) / safe_n
    var = jnp.sum(w * (v - mean[..., None]) ** 2, axis=-1) / safe_n
    std = jnp.sqrt(jnp.maximum(var, 0.0))
    nan = jnp.asarray(jnp.nan, mean.dtype)
    return jnp.where(n > 0, mean, nan), jnp.where(n > 0, std, nan)


def smooth_brooks_summary_vector(
    obs: MockObservation,
    r_width: float = SMOOTH_R_WIDTH,
    angle_width: float = SMOOTH_ANGLE_WIDTH,
    vgsr_edges: ArrayLike = BROOKS_VGSR_EDGES,
    vtb_edges: ArrayLike = BROOKS_VTB_EDGES,
) -> Array:
    """The 52 Brooks et al. (2026) summaries (km/s) with soft bins and no clipping, in the order of
    :data:`jaxhalo.simulation.summaries.BROOKS_SUMMARY_LABELS`: <v_GSR> in 4 quadrants x 5 bins,
    <v_t,b> in 6 bins, then the dispersions. Stars outside ``obs.selected`` get weight 0.
    Differentiable in every field of ``obs``; jit / vmap / jacfwd go through."""
    sel = jnp.asarray(obs.selected)
    r = jnp.where(sel, obs.r_gal, -1e3)  # far below every edge: weight 0 without NaN
    vg = jnp.where(sel, obs.v_gsr, 0.0)
    vt = jnp.where(sel, obs.v_tb, 0.0)
    wr_g = soft_bin_weights(r, vgsr_edges, r_width)  # (5, N)
    wq = soft_quadrant_weights(obs.l, obs.b, angle_width)  # (4, N)
    w_g = wq[:, None, :] * wr_g[None, :, :] * sel  # (4, 5, N)
    w_t = soft_bin_weights(r, vtb_edges, r_width) * sel  # (6, N)
    mg, sg = weighted_moments(vg, w_g)
    mt, st = weighted_moments(vt, w_t)
    return jnp.concatenate([mg.reshape(-1), mt, sg.reshape(-1), st])


#: The mock observation of :func:`smooth_summary_vector`: Brooks et al.'s exact observables, no hard
#: radial window (the soft bins select 30-160 kpc).
SMOOTH_OBS_CONFIG = ObsConfig(r_gal_range=None)


def smooth_summary_vector(
    theta: ArrayLike, key: Array, config: SimConfig = SimConfig(), obs_config: ObsConfig = SMOOTH_OBS_CONFIG,
    r_width: float = SMOOTH_R_WIDTH, angle_width: float = SMOOTH_ANGLE_WIDTH,
) -> Array:
    """The 52 smooth summaries (km/s) of one simulation: :func:`~jaxhalo.simulation.brooks.simulate_observed`
    then :func:`smooth_brooks_summary_vector`. With ``key`` fixed (common random numbers) it is a smooth
    function of theta (12,): ``jax.jacfwd(smooth_summary_vector)(theta, key, config)`` is (52, 12)
    (``config`` static under ``jit``)."""
    obs = simulate_observed(theta, key, config, obs_config)
    return smooth_brooks_summary_vector(obs, r_width=r_width, angle_width=angle_width)
