"""``corner.png`` of an SBI posterior (``jaxhalo sbi infer`` and ``jaxhalo sbi nuts``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_corner"]


def write_corner(path: Path, post: dict[str, np.ndarray], names: Sequence[str], derived: dict[str, np.ndarray],
                 dpi: int = 70) -> None:
    """corner.png of the parameters ``names`` and, where ``derived`` holds them, log10 M_MW(<50 kpc) and
    log10 M_LMC(<50 kpc) (draws with a non-finite value left out); ``post`` maps every name to its draws."""
    # deferred: matplotlib loads only when a figure is drawn
    from ..plots import corner_plot, save_figure

    plot_post = {n: np.asarray(post[n]).reshape(-1) for n in names}
    plot_names = list(names)
    for k in ("m_mw_lt50", "m_lmc_lt50"):
        if k in derived:
            plot_post["log10_" + k] = np.log10(np.asarray(derived[k]).reshape(-1))
            plot_names.append("log10_" + k)
    finite = np.all(np.isfinite(np.column_stack([plot_post[n] for n in plot_names])), axis=1)
    fig = corner_plot({n: plot_post[n][finite] for n in plot_names}, plot_names)
    save_figure(fig, path, dpi)
