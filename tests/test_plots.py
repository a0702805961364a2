"""Figures follow the data: radial ranges, distinct apex clouds, unit-labelled axes."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PathCollection

from jaxhalo.likelihoods.reflex import ReflexModel
from jaxhalo.plots import apex_sky_plot, corner_plot, vtravel_profile_plot


def _samples(spec: ReflexModel, n: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for name in spec.param_names:
        base = 20.0 if name.startswith(("v_travel", "sigma")) else 0.3
        out[name] = base + 0.05 * base * rng.standard_normal(n)
    return out


def test_vtravel_profile_spans_the_stars_and_marks_the_anchors(tmp_path):
    spec = ReflexModel("continuity", "ms")
    r_data = np.random.default_rng(1).uniform(47.0, 131.0, 300)
    fig = vtravel_profile_plot(spec, _samples(spec), r_data=r_data)
    fig.savefig(tmp_path / "v.png")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.get_xlim(), (r_data.min(), r_data.max()))
    assert [c for c in ax.collections if c.get_label() == "68% credible interval"], "the credible band is drawn"
    anchors = [ln for ln in ax.lines if ln.get_label() == "continuity-model anchors"]
    assert len(anchors) == 1 and anchors[0].get_xdata()[0] == 120.0  # 40 kpc lies outside the stars
    assert "kpc" in ax.get_xlabel() and "km" in ax.get_ylabel()


def test_apex_plot_draws_identical_radii_once():
    l = np.random.default_rng(2).uniform(0, 360, 500)
    b = np.random.default_rng(3).uniform(-60, 60, 500)
    fig = apex_sky_plot({"r = 50 kpc": (l, b), "r = 100 kpc": (l.copy(), b.copy())})
    clouds = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert len(clouds) == 1 and clouds[0].get_label() == "r = 50 kpc, r = 100 kpc"
    fig = apex_sky_plot({"r = 50 kpc": (l, b), "r = 100 kpc": (l + 1.0, b)})
    assert len([c for c in fig.axes[0].collections if isinstance(c, PathCollection)]) == 2


def test_corner_labels_carry_units():
    spec = ReflexModel("constant", "galactic")
    s = _samples(spec)
    fig = corner_plot({"v_travel": s["v_travel"], "apex_l_deg": 10 * s["apex_l"]}, ["v_travel", "apex_l_deg"])
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert "v_travel [km/s]" in labels and "apex_l_deg [deg]" in labels
