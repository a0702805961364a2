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


def _colours(fig) -> set[str]:
    """Hex colours of every line and error bar drawn in ``fig``."""
    from matplotlib.colors import to_hex

    return {to_hex(ln.get_color()) for ax in fig.axes for ln in ax.lines}


def test_cli_figures_use_the_colour_blind_safe_palette_and_label_their_axes():
    """Issue 13: the Brooks summaries (simulate), the profile and HEALPix figures (profiles) use only
    Okabe & Ito colours, no two series share colour and marker, and sky maps label both axes in deg."""
    from jaxhalo.plots import OKABE_ITO, healpix_sky_plot, profile_plot
    from jaxhalo.simulation.summaries import BrooksSummaries, ClippedStats, plot_brooks_summaries

    palette = {c.lower() for c in OKABE_ITO} | {"#999999"}  # plus the grey of the beta = 0 guide line
    rng = np.random.default_rng(0)
    stats = lambda shape: ClippedStats(*(rng.normal(size=shape) for _ in range(3)), np.ones(shape, int), np.ones(shape, int))  # noqa: E731
    fig = plot_brooks_summaries(BrooksSummaries(stats((4, 5)), stats((6,))))
    assert _colours(fig) <= palette
    top = fig.axes[0]
    assert [t.get_text() for t in top.get_legend().get_texts()][0].startswith("Q1: $0 \\leq l")
    assert len({(ln.get_color(), ln.get_marker()) for ln in top.lines}) == 2

    B = 4
    q = {k: np.sort(rng.normal(size=shape), axis=0) for k, shape in (("mean", (3, B, 2, 3)), ("sigma", (3, B, 2, 3)),
                                                                     ("beta", (3, B, 2)))}  # p16 <= p50 <= p84
    ranges = np.array([[10.0, 20.0], [20.0, 40.0], [40.0, 80.0], [80.0, 160.0]])
    fig = profile_plot("double", 2, q, ranges, np.array([False, True, True, True]), np.arange(B))
    assert _colours(fig) <= palette
    series = [(ln.get_color(), ln.get_marker()) for ln in fig.axes[0].lines if ln.get_marker() not in ("None", "_")]
    assert len(series) == len(set(series)) == 6  # 2 populations x 3 velocity components, all distinct
    assert fig.axes[0].get_xlim()[0] >= 20.0 * 0.99 and fig.axes[0].get_xlim()[1] <= 160.0  # the fitted bins' range
    fig = healpix_sky_plot(rng.uniform(50, 100, 192), 4)
    ax = fig.axes[0]
    assert "[deg]" in ax.get_xlabel() and "[deg]" in ax.get_ylabel() and ax.get_xticklabels()[0].get_text().endswith("°")


def test_apex_truth_and_corner_legend():
    l = np.random.default_rng(2).uniform(280, 300, 300)
    b = np.random.default_rng(3).uniform(-40, -20, 300)
    fig = apex_sky_plot({"r = 50 kpc": (l, b), "r = 100 kpc": (l, b)},
                        truth={"r = 50 kpc": (290.0, -30.0), "r = 100 kpc": (290.0, -30.0)})
    stars = [ln for ln in fig.axes[0].lines if ln.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_label() == "truth"  # one cloud, one truth
    fig = corner_plot({"v_travel": l, "vr": b}, ["v_travel", "vr"], truths={"v_travel": 290.0, "vr": -30.0})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["posterior (dashed: 16, 50, 84 %)", "truth"]


def test_save_figure_writes_and_closes(tmp_path):
    import matplotlib.pyplot as plt

    from jaxhalo.plots import save_figure

    fig = corner_plot({"a": np.arange(50.0), "b": np.arange(50.0) ** 0.5}, ["a", "b"])
    save_figure(fig, tmp_path / "c.png", 50)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
