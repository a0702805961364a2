"""Independent fits in many bins at once: padding, masks, vmapped likelihoods, profiles.

A *bin* is any subset of stars: a radial shell (Li et al. Table 1), a sky quadrant, a HEALPix
pixel (Han et al. Fig. 6). Bins may overlap (Li et al.'s first row, all stars, overlaps every
radial bin), so they are given as boolean membership masks (B, N) or as an index (N,).
:func:`pad_bins` gathers each bin's stars into a (B, N_max, ...) block padded to a common
length with a 0/1 mask; :func:`binned_log_likelihood` vmaps a per-bin, per-star
log-likelihood over the bins, so one compiled call evaluates every bin, and a numpyro model
puts a ``plate`` over bins (see :mod:`jaxhalo.inference.profiles`).

Bins with fewer than ``min_stars`` stars are flagged invalid (``PaddedBins.valid``); a
warning names them, their likelihood is identically zero (their parameters then follow the
prior) and :func:`summarize_profile` reports them as NaN, never crashing the fit.

Also here: the Monte Carlo estimator of Han et al. (2024, sect. 2) for sigma_r and beta per
bin -- resample each star's velocities within its errors, drop a random 10% of the stars,
take the sample dispersions; 1000 realisations, vectorised over realisations and bins.
"""

from __future__ import annotations

import warnings
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

__all__ = [
    "healpix_index",
    "LI2025_RADIAL_EDGES",
    "LI2025_TABLE1_BINS",
    "BinError",
    "EmptyBinWarning",
    "PaddedBins",
    "masks_from_edges",
    "quantile_edges",
    "masks_from_index",
    "li2025_table1_masks",
    "pad_bins",
    "RaggedBins",
    "ragged_bins",
    "binned_log_likelihood",
    "anisotropy",
    "summarize_profile",
    "han_mc_dispersions",
]

#: Radial bin edges of Li et al. (2025) Table 1 (kpc): 13 shells over 3-160 kpc.
LI2025_RADIAL_EDGES: tuple[float, ...] = (3.0, 9.0, 11.5, 13.7, 15.9, 18.2, 20.8, 24.2, 28.7, 35.8, 47.5, 60.0, 80.0, 160.0)
#: The 14 rows of Li et al. Table 1: all stars [3, 160] kpc, then the 13 shells.
LI2025_TABLE1_BINS: tuple[tuple[float, float], ...] = ((3.0, 160.0),) + tuple(
    zip(LI2025_RADIAL_EDGES[:-1], LI2025_RADIAL_EDGES[1:])
)


class BinError(ValueError):
    """Invalid binning input (shapes, edges); the message names the problem."""


class EmptyBinWarning(UserWarning):
    """Some bins hold fewer stars than the minimum; they are reported as NaN."""


class PaddedBins(NamedTuple):
    """Stars of B bins padded to a common length N_max.

    data : tuple of arrays, each (B, N_max, ...) -- the padded per-star columns, in the order
        given to :func:`pad_bins`; padded slots hold NaN (float) and are masked.
    mask : (B, N_max) float 0/1, 1 for real stars.
    counts : (B,) int, stars per bin.
    valid : (B,) bool, counts >= min_stars.
    index : (B, N_max) int, the row of each padded slot in the input arrays (-1 for padding).
    """

    data: tuple
    mask: Array
    counts: np.ndarray
    valid: np.ndarray
    index: np.ndarray


def warn_small_bins(counts: np.ndarray, valid: np.ndarray, min_stars: int) -> None:
    """Warn (:class:`EmptyBinWarning`) naming the bins with fewer than ``min_stars`` stars."""
    if not valid.all():
        bad = np.flatnonzero(~valid)
        warnings.warn(
            f"bins {bad.tolist()} have fewer than {min_stars} stars (counts {counts[bad].tolist()}); "
            "they are fitted to nothing and reported as NaN",
            EmptyBinWarning,
            stacklevel=3,
        )


def masks_from_edges(values: ArrayLike, edges: Sequence[float], right_closed_last: bool = True) -> np.ndarray:
    """Membership masks (B, N) for bins [edges[j], edges[j+1]) of ``values`` (N,).

    The last bin includes its upper edge when ``right_closed_last`` (as Li et al.'s [80, 160]).
    """
    v = np.asarray(values, float)
    e = np.asarray(edges, float)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise BinError(f"bin edges must be a strictly increasing 1-D sequence, got {edges}")
    lo, hi = e[:-1, None], e[1:, None]
    m = (v[None, :] >= lo) & (v[None, :] < hi)
    if right_closed_last:
        m[-1] |= v == e[-1]
    return m


def quantile_edges(values: ArrayLike, n_bins: int | None = None, stars_per_bin: int = 100, max_bins: int = 10,
                   decimals: int = 1) -> np.ndarray:
    """Bin edges (B + 1,) at quantiles of ``values`` (N,): bins of about equal counts inside the data range.

    n_bins : default ``clip(N // stars_per_bin, 1, max_bins)`` over the finite values. The inner edges
    are rounded to ``decimals`` decimals, the outer ones outwards (floor / ceil), so every value
    lies in a bin of :func:`masks_from_edges`; edges that round together are merged.
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise BinError("no finite values to place bin edges on")
    if n_bins is None:
        n_bins = int(np.clip(v.size // max(int(stars_per_bin), 1), 1, max_bins))
    if n_bins < 1:
        raise BinError(f"n_bins must be >= 1, got {n_bins}")
    scale = 10.0 ** decimals
    e = np.round(np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1)) * scale) / scale
    e[0], e[-1] = np.floor(v.min() * scale) / scale, np.ceil(v.max() * scale) / scale
    e = np.unique(e)
    if e.size < 2:  # every value the same (after rounding)
        e = np.array([e[0], e[0] + 1.0 / scale])
    return e


def masks_from_index(index: ArrayLike, n_bins: int) -> np.ndarray:
    """Membership masks (B, N) from a bin index per star (N,) (e.g. a HEALPix pixel); -1 = none."""
    idx = np.asarray(index)
    return idx[None, :] == np.arange(n_bins)[:, None]


def li2025_table1_masks(r_gc: ArrayLike) -> np.ndarray:
    """The 14 (overlapping) bins of Li et al. Table 1 as masks (14, N) from r_GC (kpc)."""
    r = np.asarray(r_gc, float)
    full = ((r >= 3.0) & (r <= 160.0))[None]
    return np.concatenate([full, masks_from_edges(r, LI2025_RADIAL_EDGES)], axis=0)


def pad_bins(
    masks: ArrayLike, *columns: ArrayLike, min_stars: int = 10, pad_to: int | None = None, warn: bool = True
) -> PaddedBins:
    """Gather each bin's stars into a padded (B, N_max, ...) block (vectorised, no loop over bins).

    masks : (B, N) boolean membership (bins may overlap).
    columns : arrays with leading dimension N (e.g. x (N, D), errors (N, D), l (N,)).
    min_stars : bins with fewer stars are flagged invalid and warned about (not an error).
    pad_to : optional common length >= the largest bin (e.g. to reuse a compiled function).
    """
    m = np.asarray(masks, bool)
    if m.ndim != 2:
        raise BinError(f"masks must be (B, N), got shape {m.shape}")
    B, N = m.shape
    for j, c in enumerate(columns):
        if np.shape(c)[0] != N:
            raise BinError(f"column {j} has {np.shape(c)[0]} rows but the masks have {N}")
    counts = m.sum(axis=1)
    n_max = int(max(counts.max(initial=0), 1)) if pad_to is None else int(pad_to)
    if n_max < counts.max(initial=0):
        raise BinError(f"pad_to={pad_to} is smaller than the largest bin ({counts.max()} stars)")
    # Stable sort puts each bin's members first, in input order: the first n_max columns.
    order = np.argsort(~m, axis=1, kind="stable")
    if n_max > N:
        order = np.concatenate([order, np.zeros((B, n_max - N), int)], axis=1)
    order = order[:, :n_max]
    slot = np.arange(n_max)[None, :] < counts[:, None]
    index = np.where(slot, order, -1)
    data = []
    for c in columns:
        c = np.asarray(c)
        g = c[np.where(slot, order, 0)]
        fill = np.nan if np.issubdtype(c.dtype, np.floating) else 0
        g = np.where(slot.reshape(slot.shape + (1,) * (c.ndim - 1)), g, fill)
        data.append(jnp.asarray(g))
    valid = counts >= min_stars
    if warn:
        warn_small_bins(counts, valid, min_stars)
    return PaddedBins(tuple(data), jnp.asarray(slot, dtype=float), counts, valid, index)


class RaggedBins(NamedTuple):
    """Stars of B (possibly overlapping) bins concatenated without padding.

    data : tuple of arrays (M, ...) with M = sum of the bin counts (a star in two bins appears
        twice); bin_index : (M,) int bin of each entry, sorted; star_index : (M,) row in the
        input; counts : (B,); valid : (B,) counts >= min_stars.

    The ragged layout gathers per-bin parameters to the stars (``params[bin_index]``) instead of
    vmapping over padded bins; it does the same arithmetic with no padded slots, which matters
    when bin sizes differ a lot (Li et al. Table 1: the all-stars row is 10x the others).
    """

    data: tuple
    bin_index: Array
    star_index: np.ndarray
    counts: np.ndarray
    valid: np.ndarray


def ragged_bins(masks: ArrayLike, *columns: ArrayLike, min_stars: int = 10, warn: bool = True) -> RaggedBins:
    """Concatenate each bin's stars (masks (B, N)) into a :class:`RaggedBins` (no loop over bins)."""
    m = np.asarray(masks, bool)
    if m.ndim != 2:
        raise BinError(f"masks must be (B, N), got shape {m.shape}")
    b_idx, s_idx = np.nonzero(m)  # row-major: sorted by bin
    counts = m.sum(axis=1)
    valid = counts >= min_stars
    if warn:
        warn_small_bins(counts, valid, min_stars)
    data = tuple(jnp.asarray(np.asarray(c)[s_idx]) for c in columns)
    return RaggedBins(data, jnp.asarray(b_idx), s_idx, counts, valid)


def binned_log_likelihood(per_star_fn: Callable[..., Array], params, data: Sequence[Array], mask: Array) -> Array:
    """Per-bin, per-star log-likelihoods (B, N_max) by vmapping ``per_star_fn`` over bins.

    per_star_fn(params_b, *data_b, mask=mask_b) -> (N_max,) for one bin, where ``params_b`` is
    the b-th slice (leading axis) of every leaf of the pytree ``params`` and ``data_b`` the
    b-th slices of the padded columns. Padded stars must give 0 (the jaxhalo likelihoods do).
    """
    return jax.vmap(lambda p, m, *d: per_star_fn(p, *d, mask=m))(params, mask, *data)


def anisotropy(sigma_r: ArrayLike, sigma_theta: ArrayLike, sigma_phi: ArrayLike) -> Array:
    """Velocity anisotropy beta = 1 - (sigma_theta^2 + sigma_phi^2) / (2 sigma_r^2)."""
    sigma_r, sigma_theta, sigma_phi = map(jnp.asarray, (sigma_r, sigma_theta, sigma_phi))
    return 1.0 - (sigma_theta**2 + sigma_phi**2) / (2.0 * sigma_r**2)


def summarize_profile(samples: dict, valid: ArrayLike, quantiles: Sequence[float] = (0.16, 0.5, 0.84)) -> dict:
    """Quantiles over posterior samples of every per-bin quantity, NaN for invalid bins.

    samples : dict name -> array (S, B, ...) (draws first, bins second); NaN draws are left out
        (the padding of bins that hold fewer draws, :attr:`jaxhalo.inference.per_bin.PerBinNUTS.n_draws`).
    valid : (B,) bool. Returns dict name -> array (len(quantiles), B, ...).
    """
    valid = np.asarray(valid, bool)
    out = {}
    for k, v in samples.items():
        v = np.asarray(v)
        if v.ndim < 2 or v.shape[1] != valid.size:
            continue
        q = np.full((len(quantiles),) + v.shape[1:], np.nan)
        if valid.any():
            q[:, valid] = np.nanquantile(v[:, valid], quantiles, axis=0)
        out[k] = q
    return out


def _han_one_bin(key: Array, v: Array, err: Array, mask: Array, n_mc: int, exclude_fraction: float) -> Array:
    """(n_mc, 4) MC realisations of (sigma_r, sigma_theta, sigma_phi, beta) for one padded bin."""
    n_valid = jnp.sum(mask)
    n_drop = jnp.floor(exclude_fraction * n_valid)

    def one(k):
        k1, k2 = jax.random.split(k)
        draw = v + err * jax.random.normal(k1, v.shape, v.dtype)
        # Random exclusion of exactly floor(f N) real stars: rank real stars by a uniform key.
        u = jnp.where(mask > 0, jax.random.uniform(k2, mask.shape, v.dtype), 2.0)
        rank = jnp.argsort(jnp.argsort(u))
        w = jnp.where((mask > 0) & (rank >= n_drop), 1.0, 0.0)
        n = jnp.sum(w)
        mean = jnp.sum(w[:, None] * draw, 0) / n
        var = jnp.sum(w[:, None] * (draw - mean) ** 2, 0) / (n - 1.0)
        sig = jnp.sqrt(var)
        return jnp.concatenate([sig, anisotropy(sig[0], sig[1], sig[2])[None]])

    return jax.vmap(one)(jax.random.split(key, n_mc))


def han_mc_dispersions(
    key: Array,
    velocities: ArrayLike,
    errors: ArrayLike,
    mask: ArrayLike,
    n_mc: int = 1000,
    exclude_fraction: float = 0.1,
    min_stars: int = 10,
    quantiles: Sequence[float] = (0.025, 0.16, 0.5, 0.84, 0.975),
) -> dict:
    """Han et al. (2024) Monte Carlo sigma_r, sigma_theta, sigma_phi and beta in every bin.

    For each of ``n_mc`` realisations: draw each star's (V_r, V_theta, V_phi) from a Gaussian
    around the measurement with its errors, drop a random ``exclude_fraction`` of the bin's
    stars, and take the sample standard deviations and beta. Note that, as in Han et al., the
    dispersions are not deconvolved from the errors (resampling adds the error variance once
    more); use the mixture/NUTS fit for error-deconvolved values.

    velocities, errors : (B, N_max, 3) padded (V_r, V_theta, V_phi) and 1-sigma errors (km/s).
    mask : (B, N_max) 0/1. Bins with < ``min_stars`` (Han et al.: 10) are returned as NaN.

    Returns dict with 'draws' (B, n_mc, 4) and 'quantiles' (len(quantiles), B, 4), the last
    axis being (sigma_r, sigma_theta, sigma_phi, beta), and 'valid' (B,).
    """
    v = jnp.asarray(velocities)
    e = jnp.asarray(errors)
    m = jnp.asarray(mask, dtype=v.dtype)
    if v.ndim != 3 or v.shape[-1] != 3 or e.shape != v.shape or m.shape != v.shape[:2]:
        raise BinError(f"velocities/errors must be (B, N, 3) and mask (B, N); got {v.shape}, {e.shape}, {m.shape}")
    keep = m[..., None] > 0
    v, e = jnp.where(keep, v, 0.0), jnp.where(keep, e, 0.0)
    keys = jax.random.split(key, v.shape[0])
    draws = jax.jit(jax.vmap(_han_one_bin, in_axes=(0, 0, 0, 0, None, None)), static_argnums=(4,))(
        keys, v, e, m, n_mc, exclude_fraction
    )
    valid = np.asarray(jnp.sum(m, axis=1)) >= min_stars
    draws = np.where(valid[:, None, None], np.asarray(draws), np.nan)
    q = np.quantile(draws, quantiles, axis=1)
    return {"draws": draws, "quantiles": q, "valid": valid}


def healpix_index(lon: np.ndarray, lat: np.ndarray, nside: int = 4) -> np.ndarray:
    """HEALPix (ring order) pixel of each (lon, lat) in rad, via astropy-healpix."""
    import astropy.units as u  # deferred: astropy and astropy-healpix load only when a sky map is made
    from astropy_healpix import HEALPix

    return np.asarray(HEALPix(nside=nside, order="ring").lonlat_to_healpix(lon * u.rad, lat * u.rad))
