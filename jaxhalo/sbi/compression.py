"""Score compression of the summaries for the linearised synthetic likelihood: one number per free parameter.

With a linear mean mu(theta) = mu_c + B (theta - theta_c) fitted from K common-random-number keys, the slopes B
carry Monte Carlo noise, and in the likelihood's information B^T C^-1 B that noise adds up over all S summaries:
E[B^T C^-1 B] = B_true^T C^-1 B_true + sum over the S summaries of the slopes' noise variance. For the MW-LMC
closed loop's log10 M200 (S = 52, K = 4 keys), the posterior sigma of a 4-key linearisation at theta0 is
0.031 dex against 0.046 dex with 32 keys' slopes -- the information over-stated ~2x; compressed as below, 0.040
(``benchmarks/bench_linear_sl_at_truth.py --slope-bias``). Projecting the summaries onto one direction per free parameter first,

    t = W x,   W_j = B'_j^T C'^-1 / |L'^-1 B'_j|      (F, S),

with slopes B' and covariance C' from simulations *independent* of the ones the likelihood then uses (the
Gauss-Newton placement's, :mod:`jaxhalo.sbi.surrogate`), leaves the slopes' noise F dimensions to add up in
instead of S, and since W is fixed before the likelihood's simulations are run, a poorer W only loses
information (the compressed posterior is wider, never narrower). For a linear-Gaussian model with the exact
slopes the compression loses nothing (W x is sufficient: Alsing & Wandelt 2018, MNRAS 476, L60; the "compressed
Fisher" of Coulton & Wandelt 2023 is the same construction used to bound the Fisher matrix from below).

The compressed likelihood is the synthetic likelihood of t: mean W mu(theta) (linear again), covariance
W C W^T from the covariance simulations, with the Hartlap and Percival factors for F summaries
(:func:`compressed_covariance_cholesky`). The row normalisation fixes each row's scale (parameters in Msun and
degrees differ by ~1e20); any invertible rescaling of the rows gives the same likelihood up to a constant.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax.typing import ArrayLike

from .surrogate import LinearisationError, LinearMean
from .synthetic import hartlap_cholesky, percival_factor

__all__ = ["compress_linear_mean", "compressed_covariance_cholesky", "score_compression"]


def score_compression(slopes: ArrayLike, precision_cholesky: ArrayLike, free: ArrayLike) -> np.ndarray:
    """W (F, S): for each of the F free parameters j (in order), B_j^T C^-1 / |L^-1 B_j| from ``slopes`` B (S, P)
    and the Cholesky factor L (S, S) of C (module docstring). Raises :class:`LinearisationError` for a free
    parameter whose slopes are all zero (nothing to compress onto)."""
    idx = np.flatnonzero(np.asarray(free))
    L = np.asarray(precision_cholesky, dtype=float)
    white = scipy.linalg.solve_triangular(L, np.asarray(slopes, dtype=float)[:, idx], lower=True)  # L^-1 B (S, F)
    norm = np.linalg.norm(white, axis=0)
    if not np.all(np.isfinite(norm) & (norm > 0)):
        raise LinearisationError(f"the compression slopes of free parameter(s) {idx[~(norm > 0)].tolist()} are "
                                 "zero or not finite: no summary responds to them")
    return scipy.linalg.solve_triangular(L.T, white / norm, lower=False).T  # (L^-T L^-1 B / |.|)^T = B^T C^-1 / |.|


def compress_linear_mean(linear: LinearMean, compression: ArrayLike) -> LinearMean:
    """The linear mean of the compressed summaries t = W x: mean W mu_c (F,), slopes W B (F, P), the slopes'
    per-key deviations (if any) compressed likewise; same centre. ``compression`` is W (F, S)."""
    W = jnp.asarray(compression)
    dev = linear.slope_deviations
    return LinearMean(linear.centre, W @ linear.mean, W @ linear.slopes,
                      None if dev is None else jnp.einsum("fs,ksp->kfp", W, dev))


def compressed_covariance_cholesky(compression: ArrayLike, covariance: ArrayLike, n_sims: int, n_parameters: int,
                                   percival: bool = True) -> tuple[np.ndarray, float, float]:
    """(Cholesky factor of f W C W^T / h (F, F), Hartlap factor h, Percival factor f) for the compressed summaries:
    ``covariance`` C (S, S) the sample covariance of ``n_sims`` independent simulations (no factor applied), W (F, S)
    fixed independently of them, h and f for F summaries and ``n_parameters`` free parameters (f = 1 unless
    ``percival``; :func:`~jaxhalo.sbi.synthetic.percival_factor`). :func:`~jaxhalo.sbi.synthetic.hartlap_cholesky`
    raises :class:`~jaxhalo.sbi.fisher.FisherError` when W C W^T is singular (two parameters with the same slopes)."""
    W = np.asarray(compression, dtype=float)
    Cc = W @ np.asarray(covariance, dtype=float) @ W.T
    L, h = hartlap_cholesky(jnp.asarray(0.5 * (Cc + Cc.T)), int(n_sims))
    f = percival_factor(n_sims, W.shape[0], n_parameters) if percival else 1.0
    return np.asarray(L) * np.sqrt(f), float(h), float(f)
