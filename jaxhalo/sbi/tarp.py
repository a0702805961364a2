"""TARP coverage test (Lemos et al. 2023), as used by Brooks et al. (2025 §5.1, 2026 App. A).

For each of N test simulations with true parameters theta_i and M posterior samples
theta_ij, draw a random reference point r_i, and let

    f_i = (1/M) #{j : d(theta_ij, r_i) < d(theta_i, r_i)}

(the posterior mass of the ball around r_i that just reaches the truth). For a correct posterior
f_i ~ U(0, 1), so the expected coverage probability ECP(alpha) = P(f < alpha) equals the
credibility alpha. Parameters are first rescaled to [0, 1] by the minimum and maximum of the
true values (as the ``tarp`` package and ``sbi`` do, ``norm=True``), and reference points are
uniform in that unit box.

Statistics
----------
* ``atc`` -- "area to curve": sum over the upper half of the alpha grid of ECP - alpha
  (``sbi.diagnostics.check_tarp``); ~0 when calibrated, > 0 for too-wide (under-confident)
  posteriors, < 0 for too-narrow (over-confident) ones.
* ``ks_pvalue`` -- the p-value of ``scipy.stats.kstest(ecp, alpha)`` between the ECP curve and
  the diagonal, as ``sbi.diagnostics.check_tarp`` (the statistic Brooks et al. quote). It is a
  weak test (it compares two grids of curve values); small only for gross miscalibration.
* ``ks_uniform_pvalue`` -- a one-sample KS test of f_i against U(0, 1), the sharper test of the
  same null hypothesis (ECP(alpha) = alpha for all alpha).

Everything numerical is JAX (the distance counts vectorise over simulations and samples);
scipy computes the KS p-values.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from jax import Array
from jax.typing import ArrayLike

__all__ = ["TarpResult", "tarp_credibility", "tarp_coverage", "plot_tarp"]


@dataclass
class TarpResult:
    """TARP output: ``alpha`` (K+1,) credibility grid, ``ecp`` (K+1,) expected coverage,
    ``f`` (N,) per-simulation credibility of the truth, and the statistics of the module docstring."""

    alpha: np.ndarray
    ecp: np.ndarray
    f: np.ndarray
    atc: float
    ks_pvalue: float
    ks_uniform_pvalue: float

    def as_dict(self) -> dict:
        return {"atc": self.atc, "ks_pvalue": self.ks_pvalue, "ks_uniform_pvalue": self.ks_uniform_pvalue,
                "n_sims": int(self.f.size), "alpha": self.alpha.tolist(), "ecp": self.ecp.tolist()}


def tarp_credibility(samples: ArrayLike, theta: ArrayLike, references: ArrayLike | None = None,
                     key: Array | None = None, norm: bool = True, metric: str = "euclidean") -> tuple[Array, Array]:
    """Per-simulation TARP credibilities f (N,) and the reference points used (N, D).

    samples (M, N, D) posterior draws for N simulations; theta (N, D) true values; references
    (N, D) in the normalised unit box, or drawn uniformly with ``key``. ``metric``:
    "euclidean" or "manhattan".
    """
    samples = jnp.asarray(samples)
    theta = jnp.asarray(theta)
    if samples.ndim != 3 or theta.ndim != 2 or samples.shape[1:] != theta.shape:
        raise ValueError(f"need samples (M, N, D) and theta (N, D); got {samples.shape} and {theta.shape}")
    if norm:
        lo = jnp.min(theta, axis=0)
        hi = jnp.max(theta, axis=0)
        scale = hi - lo + 1e-10
        samples = (samples - lo) / scale
        theta = (theta - lo) / scale
    if references is None:
        if key is None:
            raise ValueError("give either references (N, D) or a key to draw them")
        references = jax.random.uniform(key, theta.shape, dtype=theta.dtype)
    references = jnp.asarray(references, dtype=theta.dtype)
    if references.shape != theta.shape:
        raise ValueError(f"references must have shape {theta.shape}, got {references.shape}")
    if metric == "euclidean":
        d_s = jnp.sqrt(jnp.sum((samples - references) ** 2, axis=-1))
        d_t = jnp.sqrt(jnp.sum((theta - references) ** 2, axis=-1))
    elif metric == "manhattan":
        d_s = jnp.sum(jnp.abs(samples - references), axis=-1)
        d_t = jnp.sum(jnp.abs(theta - references), axis=-1)
    else:
        raise ValueError(f"metric must be 'euclidean' or 'manhattan', got {metric!r}")
    f = jnp.mean(d_s < d_t[None, :], axis=0, dtype=theta.dtype)
    return f, references


def tarp_coverage(samples: ArrayLike, theta: ArrayLike, key: Array | None = None, references: ArrayLike | None = None,
                  n_alpha: int | None = None, norm: bool = True, metric: str = "euclidean") -> TarpResult:
    """The TARP expected-coverage curve and its statistics (see the module docstring).

    ``n_alpha`` bins on [0, 1] (default N // 10, as the ``tarp`` package); ECP(alpha_k) is the
    fraction of simulations with f < alpha_k (and 1 at alpha = 1).
    """
    f, _ = tarp_credibility(samples, theta, references=references, key=key, norm=norm, metric=metric)
    f = np.asarray(f)
    n = f.size
    n_alpha = max(n // 10, 2) if n_alpha is None else int(n_alpha)
    alpha = np.linspace(0.0, 1.0, n_alpha + 1)
    ecp = np.mean(f[None, :] < alpha[:, None], axis=1)
    ecp[-1] = 1.0
    mid = alpha.size // 2
    atc = float(np.sum(ecp[mid:] - alpha[mid:]))
    ks_p = float(scipy.stats.kstest(ecp, alpha).pvalue)
    ks_u = float(scipy.stats.kstest(f, "uniform").pvalue)
    return TarpResult(alpha, ecp, f, atc, ks_p, ks_u)


def plot_tarp(result: TarpResult, ax=None, label: str | None = None):
    """Plot ECP against credibility with the diagonal; returns the matplotlib figure."""
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
    else:
        fig = ax.figure
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
    ax.plot(result.alpha, result.ecp, lw=2,
            label=label or f"TARP (ATC {result.atc:+.2f}, KS p {result.ks_pvalue:.2f}, "
                           f"KS-U p {result.ks_uniform_pvalue:.2f})")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return fig
