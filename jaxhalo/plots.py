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

from .likelihoods.reflex import ReflexModel

__all__ = ["corner_plot", "vtravel_profile_plot", "apex_sky_plot"]

#: Present-day LMC in Galactic coordinates (deg), for reference marks.
LMC_GALACTIC_DEG = (280.4652, -32.8884)


def corner_plot(samples: Mapping[str, np.ndarray], names: Sequence[str], truths: Mapping[str, float] | None = None,
                labels: Sequence[str] | None = None):
    """Corner plot of ``names`` from a dict of sample arrays (any shape; flattened).

    Uses the ``corner`` package (Foreman-Mackey 2016) with 16/50/84 quantiles.
    """
    import corner  # deferred: matplotlib loads only when a figure is drawn

    x = np.column_stack([np.asarray(samples[n]).reshape(-1) for n in names])
    tr = None if truths is None else [truths.get(n, None) for n in names]
    fig = corner.corner(
        x, labels=list(labels or names), truths=tr, quantiles=[0.16, 0.5, 0.84], show_titles=True,
        title_fmt=".1f", label_kwargs={"fontsize": 9}, title_kwargs={"fontsize": 8}, truth_color="C3",
    )
    return fig


def vtravel_profile_plot(spec: ReflexModel, samples: Mapping[str, np.ndarray], r: np.ndarray | None = None,
                         truth: Mapping[str, float] | None = None, r_data: np.ndarray | None = None):
    """v_travel(r) posterior median and 1-sigma band (Chandra et al. 2025 Fig. 6, bottom).

    Parameters
    ----------
    spec : the fitted model.
    samples : posterior samples of ``spec.param_names`` (any leading shape).
    r : radii (kpc) to evaluate; default 30–160 kpc.
    truth : optional true parameters, drawn as a dashed line.
    r_data : optional star radii, shown as a rug.
    """
    r = np.linspace(30.0, 160.0, 131) if r is None else np.asarray(r)
    flat = {n: jnp.reshape(jnp.asarray(samples[n]), (-1, 1)) for n in spec.param_names}
    V = np.asarray(jnp.linalg.norm(spec.travel_at_radius(flat, jnp.asarray(r)[None, :]), axis=-1))
    V = np.broadcast_to(V, (V.shape[0], r.size))  # constant model: same speed at every radius
    lo, med, hi = np.percentile(V, [16, 50, 84], axis=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(r, lo, hi, color="C0", alpha=0.3, label="68% credible interval")
    ax.plot(r, med, color="C0", label="posterior median")
    if truth is not None:
        t = {n: jnp.asarray(truth[n]) for n in spec.param_names}
        Vt = np.linalg.norm(np.asarray(spec.travel_at_radius(t, jnp.asarray(r))), axis=-1)
        ax.plot(r, np.broadcast_to(Vt, r.shape), "k--", label="truth")
    if r_data is not None:
        ax.plot(r_data, np.zeros_like(r_data) + 0.5, "|", color="0.4", ms=6, alpha=0.4)
    ax.set_xlabel(r"$r_{\rm gal}$ [kpc]")
    ax.set_ylabel(r"$v_{\rm travel}$ [km s$^{-1}$]")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def _moll_x(l_deg: np.ndarray) -> np.ndarray:
    """Galactic longitude (deg) to Mollweide x in radians, l increasing to the left (astronomical)."""
    return -np.radians(((np.asarray(l_deg) + 180.0) % 360.0) - 180.0)


def apex_sky_plot(apex_samples: Mapping[str, tuple[np.ndarray, np.ndarray]], truth: Mapping[str, tuple[float, float]] | None = None):
    """Posterior apex directions on an all-sky Galactic Mollweide map.

    Parameters
    ----------
    apex_samples : label -> (l_deg, b_deg) arrays of apex samples (e.g. per radius).
    truth : optional label -> (l_deg, b_deg) true apex.
    """
    fig = plt.figure(figsize=(8, 4.5))
    ax = fig.add_subplot(111, projection="mollweide")
    for i, (label, (l, b)) in enumerate(apex_samples.items()):
        l, b = np.asarray(l).reshape(-1), np.asarray(b).reshape(-1)
        sel = slice(None, None, max(1, l.size // 3000))
        ax.scatter(_moll_x(l[sel]), np.radians(b[sel]), s=2, alpha=0.25, color=f"C{i}", label=label, rasterized=True)
        if truth is not None and label in truth:
            tl, tb = truth[label]
            ax.plot(_moll_x(tl), np.radians(tb), marker="*", ms=14, mec="k", color=f"C{i}")
    ax.plot(_moll_x(LMC_GALACTIC_DEG[0]), np.radians(LMC_GALACTIC_DEG[1]), "ko", ms=8, mfc="none", label="LMC today")
    ticks = np.array([150, 120, 90, 60, 30, 0, 330, 300, 270, 240, 210])
    ax.set_xticks(_moll_x(ticks))
    ax.set_xticklabels([f"{t}°" for t in ticks], fontsize=7)
    ax.grid(True, alpha=0.3)
    ax.set_title("travel-velocity apex (Galactic)")
    leg = ax.legend(loc="lower right", fontsize=7, frameon=False)
    for h in getattr(leg, "legend_handles", getattr(leg, "legendHandles", [])):
        if hasattr(h, "set_sizes"):  # enlarge the scatter dots in the legend only
            h.set_sizes([20.0])
            h.set_alpha(0.8)
    fig.tight_layout()
    return fig
