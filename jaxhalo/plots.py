"""Figures: corner plots, v_travel(r) with its credible band, the apex on an all-sky map.

All functions return a :class:`matplotlib.figure.Figure` and never call ``plt.show``;
they use the non-interactive Agg backend when no display is available.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo", "module://matplotlib_inline.backend_inline"):
    try:  # headless machines (CI, clusters): never try to open a window
        import os

        if not os.environ.get("DISPLAY"):
            matplotlib.use("Agg")
    except Exception:  # pragma: no cover
        pass

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .inference.variables import describe_variable
from .likelihoods.reflex import ReflexModel

__all__ = ["OKABE_ITO", "corner_plot", "vtravel_profile_plot", "apex_sky_plot", "fisher_ellipse_plot"]

#: The Okabe & Ito (2008) colour-blind-safe palette (black first).
OKABE_ITO = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


def _label(name: str) -> str:
    """'name [unit]' for a reflex-fit variable (the name alone when its unit is unknown or dimensionless)."""
    try:
        unit = describe_variable(name)[0]
    except KeyError:
        return name
    return f"{name} [{unit}]" if unit else name

#: Present-day LMC in Galactic coordinates (deg), for reference marks.
LMC_GALACTIC_DEG = (280.4652, -32.8884)


def corner_plot(samples: Mapping[str, np.ndarray], names: Sequence[str], truths: Mapping[str, float] | None = None,
                labels: Sequence[str] | None = None):
    """Corner plot of ``names`` from a dict of sample arrays (any shape; flattened).

    Uses the ``corner`` package (Foreman-Mackey 2016) with 16/50/84 quantiles. Axis labels default
    to the names with their units (:func:`jaxhalo.inference.variables.describe_variable`).
    """
    import corner  # deferred: matplotlib loads only when a figure is drawn

    x = np.column_stack([np.asarray(samples[n]).reshape(-1) for n in names])
    tr = None if truths is None else [truths.get(n, None) for n in names]
    fig = corner.corner(
        x, labels=list(labels or [_label(n) for n in names]), truths=tr, quantiles=[0.16, 0.5, 0.84], show_titles=True,
        title_fmt=".1f", label_kwargs={"fontsize": 9}, title_kwargs={"fontsize": 8}, truth_color=OKABE_ITO[2],
        color=OKABE_ITO[1],
    )
    return fig


def vtravel_profile_plot(spec: ReflexModel, samples: Mapping[str, np.ndarray], r: np.ndarray | None = None,
                         truth: Mapping[str, float] | None = None, r_data: np.ndarray | None = None):
    """v_travel(r) posterior median and 1-sigma band (Chandra et al. 2025 Fig. 6, bottom).

    Parameters
    ----------
    spec : the fitted model.
    samples : posterior samples of ``spec.param_names`` (any leading shape).
    r : radii (kpc) to evaluate; default: the range of ``r_data`` (the model is not drawn beyond
        the stars), or 30-160 kpc without data.
    truth : optional true parameters, drawn as a dashed line.
    r_data : optional star radii (kpc), shown as a rug; they set the default radial range.

    Notes
    -----
    The continuity model's anchor radii are marked where they fall inside the range.
    """
    if r is None:
        lo_r, hi_r = (30.0, 160.0) if r_data is None or np.size(r_data) == 0 else (float(np.min(r_data)), float(np.max(r_data)))
        r = np.linspace(lo_r, hi_r, 131)
    r = np.asarray(r)
    flat = {n: jnp.reshape(jnp.asarray(samples[n]), (-1, 1)) for n in spec.param_names}
    V = np.asarray(jnp.linalg.norm(spec.travel_at_radius(flat, jnp.asarray(r)[None, :]), axis=-1))
    V = np.broadcast_to(V, (V.shape[0], r.size))  # constant model: same speed at every radius
    lo, med, hi = np.percentile(V, [16, 50, 84], axis=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(r, lo, hi, color=OKABE_ITO[1], alpha=0.3, lw=0, label="68% credible interval")
    ax.plot(r, med, color=OKABE_ITO[1], label="posterior median")
    if truth is not None:
        t = {n: jnp.asarray(truth[n]) for n in spec.param_names}
        Vt = np.linalg.norm(np.asarray(spec.travel_at_radius(t, jnp.asarray(r))), axis=-1)
        ax.plot(r, np.broadcast_to(Vt, r.shape), "--", color=OKABE_ITO[0], label="truth")
    if spec.form == "continuity":
        inside = [a for a in spec.anchors if r.min() <= a <= r.max()]
        for i, a in enumerate(inside):
            ax.axvline(a, color=OKABE_ITO[2], ls=":", lw=1, label="continuity-model anchors" if i == 0 else None)
    if r_data is not None:
        ax.plot(r_data, np.zeros_like(r_data) + 0.5, "|", color="0.4", ms=6, alpha=0.4, label="stars")
    ax.set_xlim(r.min(), r.max())
    ax.set_xlabel(r"$r_{\rm gal}$ [kpc]")
    ax.set_ylabel(r"$v_{\rm travel}$ [km s$^{-1}$]")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def _moll_x(l_deg: np.ndarray) -> np.ndarray:
    """Galactic longitude (deg) to Mollweide x in radians, l increasing to the left (astronomical)."""
    return -np.radians(((np.asarray(l_deg) + 180.0) % 360.0) - 180.0)


def apex_sky_plot(apex_samples: Mapping[str, tuple[np.ndarray, np.ndarray]], truth: Mapping[str, tuple[float, float]] | None = None):
    """Posterior apex directions on an all-sky Galactic Mollweide map.

    Parameters
    ----------
    apex_samples : label -> (l_deg, b_deg) arrays of apex samples (e.g. per radius). Entries with
        identical samples (every radius of the constant model) are drawn once, their labels joined.
    truth : optional label -> (l_deg, b_deg) true apex.
    """
    distinct: list[tuple[list[str], np.ndarray, np.ndarray]] = []
    for label, (l, b) in apex_samples.items():
        l, b = np.asarray(l).reshape(-1), np.asarray(b).reshape(-1)
        for labels, l0, b0 in distinct:
            if l0.shape == l.shape and np.array_equal(l0, l) and np.array_equal(b0, b):
                labels.append(label)
                break
        else:
            distinct.append(([label], l, b))
    fig = plt.figure(figsize=(8, 4.5))
    ax = fig.add_subplot(111, projection="mollweide")
    for i, (labels, l, b) in enumerate(distinct):
        colour = OKABE_ITO[1 + i % (len(OKABE_ITO) - 1)]
        sel = slice(None, None, max(1, l.size // 3000))
        ax.scatter(_moll_x(l[sel]), np.radians(b[sel]), s=2, alpha=0.25, color=colour, label=", ".join(labels),
                   rasterized=True)
        for label in labels:
            if truth is not None and label in truth:
                tl, tb = truth[label]
                ax.plot(_moll_x(tl), np.radians(tb), marker="*", ms=14, mec="k", color=colour)
    ax.plot(_moll_x(LMC_GALACTIC_DEG[0]), np.radians(LMC_GALACTIC_DEG[1]), "ko", ms=8, mfc="none", label="LMC today")
    ticks = np.array([150, 120, 90, 60, 30, 0, 330, 300, 270, 240, 210])
    ax.set_xticks(_moll_x(ticks))
    ax.set_xticklabels([f"{t}°" for t in ticks], fontsize=7)
    ax.grid(True, alpha=0.3)
    ax.set_title("travel-velocity apex (Galactic)")
    ax.set_xlabel("Galactic longitude l [deg]", fontsize=8)
    ax.set_ylabel("Galactic latitude b [deg]", fontsize=8)
    leg = ax.legend(loc="lower right", fontsize=7, frameon=False)
    for h in getattr(leg, "legend_handles", getattr(leg, "legendHandles", [])):
        if hasattr(h, "set_sizes"):  # enlarge the scatter dots in the legend only
            h.set_sizes([20.0])
            h.set_alpha(0.8)
    fig.tight_layout()
    return fig


def fisher_ellipse_plot(mean: np.ndarray, covariance: np.ndarray, labels: Sequence[str], n_sigma: Sequence[float] = (1.0, 2.0)):
    """Corner-style plot of a Gaussian forecast: 1- and 2-sigma ellipses of every pair of parameters and
    the marginal Gaussians on the diagonal.

    Parameters
    ----------
    mean : (P,) fiducial values.
    covariance : (P, P) forecast covariance (e.g. the inverse Fisher matrix).
    labels : P axis labels (with units).
    n_sigma : contour levels in sigma of the 2-D Gaussian (1 and 2 sigma enclose 39% and 86%).
    """
    mean, cov = np.asarray(mean, dtype=float), np.asarray(covariance, dtype=float)
    P = mean.size
    sig = np.sqrt(np.diag(cov))
    fig, axes = plt.subplots(P, P, figsize=(1.6 * P + 1, 1.6 * P + 1), squeeze=False)
    t = np.linspace(0.0, 2.0 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    for i in range(P):
        for j in range(P):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                x = np.linspace(mean[i] - 4 * sig[i], mean[i] + 4 * sig[i], 200)
                ax.plot(x, np.exp(-0.5 * ((x - mean[i]) / sig[i]) ** 2), color=OKABE_ITO[1])
                ax.set_yticks([])
                ax.set_title(f"σ = {sig[i]:.3g}", fontsize=7)
            else:
                sub = cov[np.ix_([j, i], [j, i])]
                L = np.linalg.cholesky(sub)
                for k, ns in enumerate(n_sigma):
                    xy = mean[[j, i]][:, None] + ns * (L @ circle)
                    ax.plot(xy[0], xy[1], color=OKABE_ITO[1 + k])
                ax.plot(mean[j], mean[i], "+", color=OKABE_ITO[0])
                ax.set_ylim(mean[i] - 3 * sig[i], mean[i] + 3 * sig[i])
            ax.set_xlim(mean[j] - 3 * sig[j], mean[j] + 3 * sig[j])
            ax.tick_params(labelsize=6)
            if i == P - 1:
                ax.set_xlabel(labels[j], fontsize=7)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i], fontsize=7)
            elif j > 0:
                ax.set_yticklabels([])
    fig.suptitle("Fisher forecast: " + ", ".join(f"{n:g}σ" for n in n_sigma) + " ellipses")
    fig.tight_layout()
    return fig
