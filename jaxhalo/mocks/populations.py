"""Mock catalogues with known truth for the mixture, dipole and binned-profile likelihoods.

* :func:`population_mock` -- K Gaussian populations in D columns (e.g. V_r, V_phi, V_theta,
  [Fe/H]) with known fractions, means and dispersions, observed with per-star errors.
* :func:`li2025_profile_mock` -- a Li et al. (2025) Table 1/2-like halo: 13 radial shells
  with their star counts, each a metal-rich + metal-poor mixture with the Table 2 parameters.
* :func:`dipole_mock` -- radial velocities from the compression + dipole field of Li et al.
  eqs 5-6 on an isotropic (or user-given) sky.

All draws come from an explicit ``jax.random`` key; outputs are dicts of NumPy/JAX arrays.
Velocities are in km/s in Li et al.'s sign convention (V_phi < 0 prograde, V_theta > 0
towards the north pole); see :mod:`jaxhalo.inference.profiles` for the mapping.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ..likelihoods.binned import LI2025_RADIAL_EDGES

__all__ = ["population_mock", "li2025_profile_mock", "dipole_mock", "LI2025_TABLE2", "LI2025_TABLE1_COUNTS"]

#: Star counts of Li et al. Table 1's 13 radial shells (total 64,572).
LI2025_TABLE1_COUNTS = np.array([6987, 6890, 6741, 6671, 6640, 6475, 6242, 5879, 5318, 4190, 1596, 779, 164])

# Li et al. (2025) Table 2, the 13 radial shells (the [3,160] row omitted).
# Columns: <V_r>, <V_phi>, <V_theta>, mu_[Fe/H], sigma_r, sigma_phi, sigma_theta, sigma_[Fe/H].
_MR = np.array([
    [0.3, -51.1, -0.9, -1.075, 153.5, 88.4, 60.5, 0.146],
    [4.4, -9.6, 1.9, -1.148, 164.9, 40.3, 43.4, 0.182],
    [0.6, -6.6, 4.0, -1.152, 146.9, 30.0, 38.1, 0.175],
    [-2.9, -8.4, 1.3, -1.154, 140.2, 29.0, 33.6, 0.174],
    [3.8, -8.2, 3.7, -1.146, 132.8, 25.5, 31.2, 0.169],
    [0.3, -7.7, 6.4, -1.161, 121.8, 25.3, 30.0, 0.177],
    [0.9, -6.3, 4.8, -1.156, 114.5, 24.0, 28.4, 0.173],
    [3.8, -4.1, 4.6, -1.152, 107.3, 25.7, 25.1, 0.165],
    [1.4, -1.9, 4.1, -1.146, 106.8, 28.0, 29.6, 0.150],
    [-0.7, -4.2, 3.8, -1.145, 105.8, 33.6, 35.1, 0.143],
    [-0.5, -5.4, 0.5, -1.117, 101.9, 37.2, 44.1, 0.123],
    [-0.4, -3.3, 15.1, -1.141, 105.6, 28.4, 46.8, 0.135],
    [9.8, 14.1, 17.9, -1.345, 99.8, 51.1, 45.3, 0.280],
])
_MP = np.array([
    [7.6, -16.6, 2.8, -1.615, 145.5, 104.2, 94.3, 0.387],
    [1.9, -20.9, 5.0, -1.617, 145.1, 106.0, 93.4, 0.439],
    [-3.5, -16.4, 8.0, -1.646, 142.1, 100.4, 90.3, 0.436],
    [-2.9, -23.0, 9.9, -1.605, 135.4, 96.5, 89.6, 0.407],
    [-3.1, -26.3, 5.7, -1.586, 126.9, 98.7, 82.1, 0.415],
    [-4.6, -28.8, 2.9, -1.599, 127.1, 99.1, 90.8, 0.451],
    [-4.6, -20.2, 3.4, -1.598, 129.5, 99.8, 93.3, 0.438],
    [-7.7, -17.9, 0.7, -1.592, 124.8, 98.5, 92.6, 0.412],
    [-12.4, -11.1, 2.9, -1.636, 121.8, 100.9, 104.7, 0.418],
    [-2.6, -8.6, 4.4, -1.628, 115.5, 107.7, 112.1, 0.408],
    [-9.1, 6.5, 7.1, -1.625, 109.8, 106.9, 115.3, 0.395],
    [-14.5, 2.4, 15.3, -1.625, 105.3, 102.0, 125.6, 0.384],
    [0.6, 17.0, 12.8, -1.600, 108.2, 130.5, 141.1, 0.443],
])
_P_MR = np.array([0.517, 0.524, 0.568, 0.581, 0.592, 0.663, 0.644, 0.618, 0.565, 0.499, 0.401, 0.435, 0.653])

#: Li et al. Table 2 per shell: means (13, 2, 4) and sigmas (13, 2, 4) for components
#: [MR, MP] in columns (V_r, V_phi, V_theta, [Fe/H]), and p_MR (13,).
LI2025_TABLE2 = {
    "means": np.stack([_MR[:, :4], _MP[:, :4]], axis=1),
    "sigmas": np.stack([_MR[:, 4:], _MP[:, 4:]], axis=1),
    "p_mr": _P_MR,
}

#: Typical per-star errors of Li et al. (footnotes 3 and 8): V_r, V_phi, V_theta (km/s), [Fe/H] (dex).
LI2025_TYPICAL_ERRORS = np.array([7.0, 31.0, 29.0, 0.05])


def population_mock(
    key: Array,
    n: int,
    fractions: ArrayLike,
    means: ArrayLike,
    sigmas: ArrayLike,
    error_scales: ArrayLike,
    error_spread: float = 0.5,
) -> dict:
    """N stars from K Gaussian populations in D columns, observed with per-star errors.

    fractions : (K,) population fractions (sum to 1).
    means, sigmas : (K, D) true means and intrinsic dispersions.
    error_scales : (D,) typical 1-sigma error of each column; each star's error is
        error_scales * U(1 - error_spread, 1 + error_spread) (heteroscedastic).

    Returns dict with 'x' (N, D) observed values, 'errors' (N, D), 'x_true' (N, D),
    'labels' (N,) int population index, and the truth 'fractions', 'means', 'sigmas'.
    """
    fractions, means, sigmas, error_scales = map(jnp.asarray, (fractions, means, sigmas, error_scales))
    K, D = means.shape
    k1, k2, k3, k4 = jax.random.split(key, 4)
    labels = jax.random.choice(k1, K, (n,), p=fractions)
    x_true = means[labels] + sigmas[labels] * jax.random.normal(k2, (n, D), means.dtype)
    errors = error_scales * jax.random.uniform(k3, (n, D), means.dtype, 1.0 - error_spread, 1.0 + error_spread)
    x = x_true + errors * jax.random.normal(k4, (n, D), means.dtype)
    return {"x": x, "errors": errors, "x_true": x_true, "labels": labels,
            "fractions": fractions, "means": means, "sigmas": sigmas}


def li2025_profile_mock(key: Array, n_total: int = 64000, error_scales: ArrayLike = LI2025_TYPICAL_ERRORS) -> dict:
    """A Li et al.-like halo catalogue: 13 radial shells, MR + MP populations per shell.

    Shell star counts are Li et al. Table 1's scaled to ``n_total``; in each shell r_GC is
    uniform between the edges and (V_r, V_phi, V_theta, [Fe/H]) come from the two-component
    mixture with that shell's Table 2 parameters. Returns dict with 'r_gc' (N,) kpc,
    'x', 'errors', 'x_true', 'labels' (0 = MR, 1 = MP), 'shell' (N,) and the truth
    'means' (13, 2, 4), 'sigmas' (13, 2, 4), 'p_mr' (13,).
    """
    counts = np.floor(LI2025_TABLE1_COUNTS / LI2025_TABLE1_COUNTS.sum() * n_total).astype(int)
    counts[0] += n_total - counts.sum()
    shell = np.repeat(np.arange(counts.size), counts)
    edges = np.asarray(LI2025_RADIAL_EDGES)
    k1, k2 = jax.random.split(key)
    u = jax.random.uniform(k1, (n_total,))
    r = edges[shell] + np.asarray(u) * (edges[shell + 1] - edges[shell])
    means = jnp.asarray(LI2025_TABLE2["means"])[shell]  # (N, 2, 4)
    sigmas = jnp.asarray(LI2025_TABLE2["sigmas"])[shell]
    p = jnp.asarray(LI2025_TABLE2["p_mr"])[shell]
    ka, kb, kc, kd = jax.random.split(k2, 4)
    labels = jnp.where(jax.random.uniform(ka, (n_total,)) < p, 0, 1)
    idx = labels[:, None, None]
    mu = jnp.take_along_axis(means, idx, axis=1)[:, 0]
    sg = jnp.take_along_axis(sigmas, idx, axis=1)[:, 0]
    x_true = mu + sg * jax.random.normal(kb, mu.shape)
    errors = jnp.asarray(error_scales) * jax.random.uniform(kc, mu.shape, minval=0.5, maxval=1.5)
    x = x_true + errors * jax.random.normal(kd, mu.shape)
    return {"r_gc": r, "x": x, "errors": errors, "x_true": x_true, "labels": labels, "shell": shell,
            "means": LI2025_TABLE2["means"], "sigmas": LI2025_TABLE2["sigmas"], "p_mr": LI2025_TABLE2["p_mr"]}


def dipole_mock(
    key: Array,
    n: int,
    mu_compr: float = -18.0,
    mu_dipole: float = -24.0,
    l_apex_deg: float = 325.0,
    b_apex_deg: float = -38.0,
    sigma_r: float = 149.0,
    error_range: tuple[float, float] = (2.0, 20.0),
    l: ArrayLike | None = None,
    b: ArrayLike | None = None,
) -> dict:
    """Radial velocities from mu_r = mu_compr + mu_dipole cos(theta) (Li et al. eqs 5-6).

    Defaults are Li et al. Table 3's [50, 120] kpc row. Positions are isotropic on the sky
    unless ``l``, ``b`` (rad, shape (n,)) are given. Per-star errors are uniform in
    ``error_range`` (km/s). Returns dict with 'l', 'b' (rad), 'v_r', 'v_r_err', 'v_r_true'
    (km/s) and the truth (apex in degrees and radians).
    """
    k1, k2, k3, k4 = jax.random.split(key, 4)
    if l is None or b is None:
        l = jax.random.uniform(k1, (n,), maxval=2.0 * math.pi)
        b = jnp.arcsin(jax.random.uniform(k2, (n,), minval=-1.0, maxval=1.0))
    l, b = jnp.asarray(l), jnp.asarray(b)
    la, ba = math.radians(l_apex_deg), math.radians(b_apex_deg)
    cos_t = jnp.sin(b) * math.sin(ba) + jnp.cos(b) * math.cos(ba) * jnp.cos(l - la)
    v_true = mu_compr + mu_dipole * cos_t + sigma_r * jax.random.normal(k3, (n,))
    k5, k6 = jax.random.split(k4)
    err = jax.random.uniform(k5, (n,), minval=error_range[0], maxval=error_range[1])
    v = v_true + err * jax.random.normal(k6, (n,))
    return {"l": l, "b": b, "v_r": v, "v_r_err": err, "v_r_true": v_true,
            "mu_compr": mu_compr, "mu_dipole": mu_dipole, "sigma_r": sigma_r,
            "l_apex_deg": l_apex_deg, "b_apex_deg": b_apex_deg, "l_apex": la, "b_apex": ba}
