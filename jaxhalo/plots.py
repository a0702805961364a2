"""Figures: corner plots, v_travel(r) with its credible band, the apex on an all-sky map.

All functions return a :class:`matplotlib.figure.Figure` and never call ``plt.show``;
they use the non-interactive Agg backend when no display is available.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import matplotlib

if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo", "module://matplotlib_inline.backend_inline"):
    try:  # headless machines (CI, clusters): never try to open a window
        import os

        if not os.environ.get("DISPLAY"):
            matplotlib.use("Agg")
    except Exception:  # pragma: no cover
        pass

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from .inference.variables import describe_variable
from .likelihoods.reflex import ReflexModel

__all__ = ["OKABE_ITO", "apex_sky_plot", "corner_plot", "healpix_sky_plot", "profile_plot", "vtravel_profile_plot", "fisher_ellipse_plot",
           "save_figure"]

#: The Okabe & Ito (2008) colour-blind-safe palette (black first).
OKABE_ITO = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


def save_figure(fig, path, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` (format from the suffix) at ``dpi`` and close it, so that commands run one after
    another in one process (a notebook, a test session, a pipeline) keep no figure open."""
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def _label(name: str) -> str:
    """'name [unit]' for a reflex-fit variable (the name alone when its unit is unknown or dimensionless)."""
    try:
        unit = describe_variable(name)[0]
    except KeyError:
        return name
    return f"{name} [{unit}]" if unit else name

#: Velocity components of ``jaxhalo profiles`` (Li et al. signs), as labels and in TeX.
_VEL_LABELS = ("V_r", "V_phi", "V_theta")
_VEL_TEX = ("V_r", r"V_\phi", r"V_\theta")
_COMPONENT_NAMES = {1: ("all",), 2: ("MR", "MP")}

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
    from matplotlib.lines import Line2D  # deferred with corner: matplotlib loads only when a figure is drawn

    handles = [Line2D([], [], color=OKABE_ITO[1], label="posterior (dashed: 16, 50, 84 %)")]
    if tr is not None and any(t is not None for t in tr):
        handles.append(Line2D([], [], color=OKABE_ITO[2], marker="s", ms=4, label="truth"))
    fig.legend(handles=handles, loc="upper right", frameon=False, fontsize=max(9, len(names)))
    return fig


@functools.partial(jax.jit, static_argnums=0)
def _travel_speed(spec: ReflexModel, params: Mapping[str, jnp.ndarray], r: jnp.ndarray) -> jnp.ndarray:
    """|v_travel| (km/s) of ``params`` at radii ``r`` (broadcast): one compiled program instead of
    ~30 eager operations, each a dispatch (and a compilation-cache lookup) of its own."""
    return jnp.linalg.norm(spec.travel_at_radius(params, r), axis=-1)


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
    V = np.asarray(_travel_speed(spec, flat, jnp.asarray(r)[None, :]))
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
    truth : optional label -> (l_deg, b_deg) true apex, a star in the colour of its samples.
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
        drawn: list[tuple[float, float]] = []  # equal truths of merged entries are drawn once
        for label in labels:
            if truth is not None and label in truth and not any(np.allclose(truth[label], d) for d in drawn):
                tl, tb = truth[label]
                ax.plot(_moll_x(tl), np.radians(tb), marker="*", ms=14, mec="k", color=colour, ls="none",
                        label="truth" + ("" if len(labels) > 1 else f", {label}"))
                drawn.append(tuple(truth[label]))
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


def profile_plot(model: str, K: int, q: dict, ranges: np.ndarray, valid: np.ndarray, rows: np.ndarray):
    """Li et al. Fig. 2 layout: means, dispersions and beta against r (error bars 16-84 %), as ``jaxhalo profiles``
    draws them.

    model : 'single', 'double' or 'dipole'; K : mixture components (1 or 2; ignored for the dipole).
    q : quantiles (3, B, ...) of :func:`jaxhalo.likelihoods.binned.summarize_profile` ('mean' and 'sigma'
        (3, B, K, D) km/s, 'beta' (3, B, K); or 'mu_compr', 'mu_dipole', 'sigma_r' (3, B) km/s).
    ranges : (B, 2) bin edges in kpc; valid : (B,) bool, bins fitted; rows : bins to draw (the
        drawn radial range is that of the valid ones among them).
    """
    rc = 0.5 * (ranges[:, 0] + ranges[:, 1])
    rows = rows[valid[rows]]
    r = rc[rows]

    def bar(ax, arr, label, color, shift=0.0, marker="o"):
        lo, mid, hi = arr[0][rows], arr[1][rows], arr[2][rows]
        ax.errorbar(r * (1 + shift), mid, yerr=[mid - lo, hi - mid], fmt=marker + "-", ms=3.5, capsize=2, label=label,
                    color=color)

    if model == "dipole":
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
        for ax, name, lab in zip(axes, ("mu_compr", "mu_dipole", "sigma_r"), (r"$\mu_{\rm compr}$", r"$\mu_{\rm dipole}$", r"$\sigma_r$")):
            bar(ax, q[name], lab, OKABE_ITO[0])
            ax.set_ylabel(lab + " [km/s]")
    else:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
        # Okabe & Ito colours: one per velocity component (one population) or per population (two, the
        # velocity components then told apart by marker), so that no two series share colour and marker
        colors = (OKABE_ITO[2], OKABE_ITO[1]) if K == 2 else (OKABE_ITO[0],)
        vel_colors, markers = (OKABE_ITO[5], OKABE_ITO[3], OKABE_ITO[4]), ("o", "s", "^")
        for kk in range(K):
            cname = _COMPONENT_NAMES[K][kk]
            for j, lab in enumerate(_VEL_LABELS):
                col, mk = (colors[kk], markers[j]) if K == 2 else (vel_colors[j], markers[j])
                ls_shift = 0.01 * (j - 1) + (0.004 * (2 * kk - 1) if K == 2 else 0.0)
                tex = _VEL_TEX[j]
                bar(axes[0], q["mean"][:, :, kk, j], rf"$\langle {tex} \rangle$" + (f" {cname}" if K == 2 else ""), col, ls_shift, mk)
                bar(axes[1], q["sigma"][:, :, kk, j], rf"$\sigma({tex})$" + (f" {cname}" if K == 2 else ""), col, ls_shift, mk)
            bar(axes[2], q["beta"][:, :, kk], r"$\beta$" + (f" {cname}" if K == 2 else ""), colors[kk])
        axes[0].set_ylabel("mean velocity [km/s]")
        axes[1].set_ylabel("dispersion [km/s]")
        axes[2].set_ylabel(r"$\beta$")
        axes[2].axhline(0, color="0.6", lw=0.8)
    wide = r.size > 1 and ranges[rows, 1].max() > 12 * max(ranges[rows, 0].min(), 1e-3)

    def minor_label(x, _):  # plain numbers; over more than a decade only 2 and 5 of each decade
        lead = x / 10 ** np.floor(np.log10(x) + 1e-9)
        return f"{x:g}" if not wide or round(lead) in (2, 5) else ""

    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(mticker.FuncFormatter(minor_label))
        ax.set_xlabel(r"$r_{\rm GC}$ [kpc] (bin centres; bars: 16-84 %)")
        ax.legend(fontsize=7, frameon=False)
    if r.size:  # the radial range of the fitted bins, not of the bin layout
        lo_edge, hi_edge = ranges[rows, 0].min(), ranges[rows, 1].max()
        for ax in axes:
            ax.set_xlim(max(lo_edge, 0.8 * r.min()), hi_edge)
    return fig


def healpix_sky_plot(sigma_r: np.ndarray, nside: int):
    """Mollweide map of per-pixel sigma_r [km/s] (``sigma_r`` (12 nside^2,), HEALPix ring order in Galactocentric
    longitude and latitude), empty (NaN) pixels blank, longitude increasing to the left."""
    import astropy.units as u  # deferred: astropy loads only when this runs
    from astropy_healpix import HEALPix

    lon = np.linspace(-np.pi, np.pi, 361)
    lat = np.linspace(-np.pi / 2, np.pi / 2, 181)
    LO, LA = np.meshgrid(0.5 * (lon[1:] + lon[:-1]), 0.5 * (lat[1:] + lat[:-1]))
    idx = np.asarray(HEALPix(nside=nside, order="ring").lonlat_to_healpix(LO * u.rad, LA * u.rad))
    img = np.ma.masked_invalid(sigma_r[idx])
    fig = plt.figure(figsize=(8, 4.5))
    ax = fig.add_subplot(111, projection="mollweide")
    m = ax.pcolormesh(-lon, lat, img, shading="flat", cmap="viridis")  # longitude increasing to the left
    ticks = np.arange(-150, 151, 60)
    ax.set_xticks(np.radians(-ticks))
    ax.set_xticklabels([f"{t:d}°" for t in ticks], fontsize=7)
    ax.set_xlabel("Galactocentric longitude [deg]", fontsize=8)
    ax.set_ylabel("Galactocentric latitude [deg]", fontsize=8)
    ax.grid(alpha=0.3)
    fig.colorbar(m, ax=ax, orientation="horizontal", fraction=0.05, pad=0.1,
                 label=r"$\sigma_r$ [km/s] (Han et al. MC; blank: too few stars)")
    ax.set_title(f"radial velocity dispersion, HEALPix nside={nside}")
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
