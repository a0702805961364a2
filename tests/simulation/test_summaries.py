"""Summary statistics: clipping against astropy, the 52 Brooks et al. summaries against a NumPy
reference, jit/vmap over simulations, the reflex dipole sign on the sky map, and the map's
smoothing against a brute-force computation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats as astropy_sigma_clipped_stats

from jaxhalo import frames
from jaxhalo.simulation.observe import observe
from jaxhalo.simulation.summaries import (
    BROOKS_SUMMARY_LABELS,
    add_summary_noise,
    plot_brooks_summaries,
    plot_sky_map,
    BROOKS_VGSR_EDGES,
    BROOKS_VTB_EDGES,
    SummaryError,
    angular_distance,
    bin_masks,
    bootstrap_resample,
    brooks_summaries,
    brooks_summary_vector,
    fibonacci_sky,
    grouped_sigma_clipped_stats,
    quadrant_masks,
    sigma_clipped_stats,
    sky_grid,
    smoothed_sky_map,
    vgsr_sky_map,
    vtb_profile,
)

SOLAR = frames.SolarParameters.brooks()


def _contaminated(rng, n, n_out):
    """Gaussian core plus heavy-tailed outliers, shuffled."""
    x = np.concatenate([rng.normal(10.0, 3.0, n), 40.0 * rng.standard_cauchy(n_out)])
    return rng.permutation(x)


def _halo(n, seed=0, rmin=20.0, rmax=180.0, sigma=110.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x *= (rng.uniform(rmin, rmax, n) / np.linalg.norm(x, axis=1))[:, None]
    return x, rng.normal(0.0, sigma, (n, 3))


@pytest.mark.parametrize("center", ["median", "mean"])
def test_sigma_clip_matches_astropy(center):
    """Clipped mean, median and std equal astropy.stats.sigma_clipped_stats to 1e-10."""
    rng = np.random.default_rng(0)
    size = 500  # one padded length, so that the 40 samples share one compilation
    for trial in range(40):
        n = int(rng.integers(2, 400))
        x = _contaminated(rng, n, int(rng.integers(0, n // 5 + 2)))
        m = rng.uniform(size=x.size) < 0.85
        if m.sum() == 0:
            continue
        ref = astropy_sigma_clipped_stats(x[m], sigma=3.0, maxiters=5, cenfunc=center)
        xp = np.concatenate([x, rng.normal(0, 1e3, size - x.size)])
        mp = np.concatenate([m, np.zeros(size - x.size, bool)])
        got = sigma_clipped_stats(xp, mp, center=center)
        np.testing.assert_allclose([got.mean, got.median, got.std], ref, rtol=0, atol=1e-10, err_msg=f"trial {trial}")


def test_sigma_clip_other_settings_and_counts():
    rng = np.random.default_rng(1)
    x = _contaminated(rng, 300, 40)
    for sigma, iters in ((2.0, 3), (2.5, 10), (4.0, 1)):
        ref = astropy_sigma_clipped_stats(x, sigma=sigma, maxiters=iters, std_ddof=1)
        got = sigma_clipped_stats(x, sigma=sigma, n_iter=iters, ddof=1)
        np.testing.assert_allclose([got.mean, got.median, got.std], ref, atol=1e-10)
    # count is the number astropy keeps; n_iter=0 is the plain mean / std
    clipped = __import__("astropy.stats", fromlist=["sigma_clip"]).sigma_clip(x, sigma=3, maxiters=5)
    assert int(sigma_clipped_stats(x).count) == int((~clipped.mask).sum())
    plain = sigma_clipped_stats(x, n_iter=0)
    np.testing.assert_allclose([plain.mean, plain.std, plain.median], [x.mean(), x.std(), np.median(x)], atol=1e-10)


def test_empty_and_single_groups():
    x = jnp.array([1.0, 2.0, 3.0, 100.0])
    groups = jnp.array([[False] * 4, [True, False, False, False], [True, True, True, True]])
    s = grouped_sigma_clipped_stats(x, groups)
    assert np.isnan(s.mean[0]) and np.isnan(s.std[0]) and int(s.count[0]) == 0
    assert float(s.mean[1]) == 1.0 and float(s.std[1]) == 0.0 and int(s.count[1]) == 1
    s2 = grouped_sigma_clipped_stats(x, groups, min_count=2)
    assert np.isnan(s2.mean[1]) and int(s2.count[1]) == 1
    # NaN values are ignored, as astropy does
    y = jnp.array([1.0, jnp.nan, 3.0])
    assert float(sigma_clipped_stats(y).mean) == 2.0


def test_quadrants_and_bins_follow_the_paper():
    rng = np.random.default_rng(2)
    l = rng.uniform(-2 * np.pi, 2 * np.pi, 5000)
    b = np.arcsin(rng.uniform(-1, 1, 5000))
    q = np.asarray(quadrant_masks(l, b))
    ldeg = np.rad2deg(np.mod(l, 2 * np.pi))  # [0, 360)
    east = ldeg <= 180.0  # l in [0, 180] ; (180, 360) == (-180, 0)
    north = b >= 0
    np.testing.assert_array_equal(q, np.stack([east & north, ~east & north, east & ~north, ~east & ~north]))
    assert np.all(q.sum(0) == 1)
    r = rng.uniform(20, 170, 5000)
    r[:3] = [30.0, 160.0, 56.0]
    bm = np.asarray(bin_masks(r, BROOKS_VGSR_EDGES))
    idx = np.digitize(r, BROOKS_VGSR_EDGES) - 1
    idx[r == 160.0] = 4  # numpy.histogram closes the last bin
    inside = (r >= 30) & (r <= 160)
    np.testing.assert_array_equal(bm.argmax(0)[inside], idx[inside])
    np.testing.assert_array_equal(bm.any(0), inside)
    np.testing.assert_array_equal(np.histogram(r, BROOKS_VGSR_EDGES)[0], bm.sum(1))
    np.testing.assert_allclose(BROOKS_VGSR_EDGES, [30, 56, 82, 108, 134, 160])
    assert len(BROOKS_VTB_EDGES) == 7 and len(BROOKS_SUMMARY_LABELS) == 52


def _reference_summaries(obs):
    """NumPy / astropy reference of the 52 summaries: an explicit loop over quadrants and bins."""
    l = np.rad2deg(np.mod(np.asarray(obs.l), 2 * np.pi))
    b = np.asarray(obs.b)
    r, sel = np.asarray(obs.r_gal), np.asarray(obs.selected)
    quads = [(l <= 180) & (b >= 0), (l > 180) & (b >= 0), (l <= 180) & (b < 0), (l > 180) & (b < 0)]

    def stats(vals, m):
        if m.sum() == 0:
            return np.nan, np.nan
        mean, _, std = astropy_sigma_clipped_stats(vals[m], sigma=3.0, maxiters=5)
        return mean, std

    def in_bin(edges, i):
        hi_ok = r <= edges[i + 1] if i == len(edges) - 2 else r < edges[i + 1]
        return (r >= edges[i]) & hi_ok

    vg = np.asarray(obs.v_gsr)
    vt = np.asarray(obs.v_tb)
    g = [stats(vg, sel & quads[qi] & in_bin(BROOKS_VGSR_EDGES, i)) for qi in range(4) for i in range(5)]
    t = [stats(vt, sel & in_bin(BROOKS_VTB_EDGES, i)) for i in range(6)]
    return np.array([a for a, _ in g] + [a for a, _ in t] + [s for _, s in g] + [s for _, s in t])


def test_brooks_summaries_match_numpy_reference():
    x, v = _halo(6000, seed=3)
    # a cold, fast-moving clump in one bin to make the clipping bite
    x[:60] = np.array([40.0, 30.0, 50.0]) + np.random.default_rng(4).normal(0, 1, (60, 3))
    v[:60] = np.array([400.0, -300.0, 200.0])
    obs = observe(jax.random.key(1), x, v, SOLAR)
    got = np.asarray(brooks_summary_vector(obs))
    ref = _reference_summaries(obs)
    assert got.shape == (52,)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)
    assert np.all(np.isfinite(ref))
    # an empty bin: remove the stars of Q2 beyond 134 kpc -> NaN at that entry, flagged by count 0
    s = brooks_summaries(obs._replace(selected=obs.selected & ~((obs.l < 0) & (obs.b >= 0) & (obs.r_gal >= 134))))
    assert int(s.vgsr.count[1, 4]) == 0 and np.isnan(s.vgsr.mean[1, 4]) and np.isnan(s.vgsr.std[1, 4])
    vec = np.asarray(s.vector())
    assert np.isnan(vec[BROOKS_SUMMARY_LABELS.index("mean_vgsr_Q2_134-160kpc")])
    assert np.isnan(vec[BROOKS_SUMMARY_LABELS.index("std_vgsr_Q2_134-160kpc")])
    assert np.sum(np.isnan(vec)) == 2


def test_summaries_jit_and_vmap_over_simulations():
    """A batch of simulations summarised in one vmapped, jitted call equals per-simulation calls."""
    n_sim, n = 3, 3000
    xs, vs = zip(*[_halo(n, seed=10 + i) for i in range(n_sim)])
    keys = jax.random.split(jax.random.key(5), n_sim)
    batch_obs = jax.vmap(lambda k, a, b: observe(k, a, b, SOLAR))(keys, jnp.stack(xs), jnp.stack(vs))
    batched = jax.jit(jax.vmap(brooks_summary_vector))(batch_obs)
    assert batched.shape == (n_sim, 52)
    for i in range(n_sim):
        one = brooks_summary_vector(jax.tree_util.tree_map(lambda a: a[i], batch_obs))
        np.testing.assert_allclose(batched[i], one, rtol=1e-12, atol=1e-12)
    # the per-simulation results are genuinely different simulations
    assert not np.allclose(batched[0], batched[1])


def _isotropic_halo_with_reflex(n, apex_l, apex_b, v_reflex, seed=0, rmin=30.0, rmax=160.0):
    x, v = _halo(n, seed=seed, rmin=rmin, rmax=rmax, sigma=100.0)
    n_hat = np.array([np.cos(apex_b) * np.cos(apex_l), np.cos(apex_b) * np.sin(apex_l), np.sin(apex_b)])
    return x, v - v_reflex * n_hat, n_hat


def test_reflex_dipole_sign_on_smoothed_map():
    """A uniform reflex velocity -V n_hat on an isotropic halo makes v_GSR most negative at the apex:
    the minimum of the 45-deg smoothed map lies within the kernel scale of n_hat (Galactocentric
    direction, seen from the Sun; at r >= 50 kpc the parallax is below ~10 deg)."""
    apex_l, apex_b = np.deg2rad(-80.0), np.deg2rad(-30.0)
    x, v, n_hat = _isotropic_halo_with_reflex(10000, apex_l, apex_b, 60.0, seed=6)
    obs = observe(jax.random.key(2), x, v, SOLAR)
    gl, gb = sky_grid(36, 18)
    smap, sky_mean = vgsr_sky_map(obs, gl, gb, r_gal_range=(50.0, 160.0))
    i = np.unravel_index(np.nanargmin(np.asarray(smap)), smap.shape)
    sep = float(angular_distance(gl[i], gb[i], apex_l, apex_b))
    assert np.rad2deg(sep) < 45.0
    j = np.unravel_index(np.nanargmax(np.asarray(smap)), smap.shape)
    assert np.rad2deg(float(angular_distance(gl[j], gb[j], apex_l + np.pi, -apex_b))) < 45.0
    assert float(smap[i]) < -15.0 < 15.0 < float(smap[j])
    # the quadrant summaries carry the same sign: the apex (l<0, b<0) quadrant Q4 is blueshifted,
    # the opposite one Q1 redshifted, in every distance bin
    s = brooks_summaries(obs)
    assert np.all(np.asarray(s.vgsr.mean[3]) < -10.0) and np.all(np.asarray(s.vgsr.mean[0]) > 10.0)


def test_reflex_vtb_positive_for_downward_mw():
    """A MW moving down (apex at the south pole) gives outer stars <v_t,b> > 0 (Chandra Fig. 5 sign)."""
    x, v, _ = _isotropic_halo_with_reflex(10000, 0.0, -np.pi / 2, 60.0, seed=7, rmin=60, rmax=160)
    obs = observe(jax.random.key(3), x, v, SOLAR, add_errors=False)
    prof = vtb_profile(obs)
    finite = np.isfinite(np.asarray(prof.mean))
    # v_t,b = e_b . (-V n_hat) = V cos b for n_hat = -z: its all-sky mean is V pi/4 = 47 km/s (isotropic
    # particles; the clipping and the Sun's offset shift it by a few km/s).
    assert np.all(np.abs(np.asarray(prof.mean)[finite] - 60.0 * np.pi / 4) < 8.0)


def test_smoothing_matches_brute_force():
    rng = np.random.default_rng(8)
    n = 700
    l = rng.uniform(-np.pi, np.pi, n)
    b = np.arcsin(rng.uniform(-1, 1, n))
    vals = rng.normal(0, 100, n) + 50 * np.sin(b)
    mask = rng.uniform(size=n) < 0.9
    gl, gb = fibonacci_sky(300)
    got, weight = smoothed_sky_map(l, b, vals, gl, gb, mask, kernel_deg=30.0, batch_size=64)
    # brute force: spherical law of cosines in a double loop over pixels
    ref = np.empty(gl.size)
    ref_w = np.empty(gl.size)
    sig = np.deg2rad(30.0)
    for p in range(gl.size):
        cosd = np.sin(gb[p]) * np.sin(b) + np.cos(gb[p]) * np.cos(b) * np.cos(l - gl[p])
        theta = np.arccos(np.clip(cosd, -1, 1))
        w = np.exp(-0.5 * (theta / sig) ** 2) * mask
        ref[p], ref_w[p] = np.sum(w * vals) / np.sum(w), np.sum(w)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(weight, ref_w, rtol=1e-9)
    # gridded output keeps the grid's shape
    gl2, gb2 = sky_grid(8, 4)
    m2, _ = smoothed_sky_map(l, b, vals, gl2, gb2)
    assert m2.shape == (4, 8)


def test_fibonacci_sky_is_nearly_equal_area():
    l, b = fibonacci_sky(2000)
    # equal-area: sin b uniform on [-1, 1]; each hemisphere and each l-quadrant holds ~1/4
    q = np.asarray(quadrant_masks(l, b)).sum(1)
    assert np.all(np.abs(q - 500) < 10)
    assert abs(np.mean(np.sin(b))) < 1e-12


def test_bootstrap_errors_of_a_mean():
    """Bootstrap std of the (unclipped) mean equals sigma / sqrt(n) within its sampling error."""
    rng = np.random.default_rng(9)
    x, v = _halo(4000, seed=9)
    obs = observe(jax.random.key(4), x, v, SOLAR)
    n_boot = 400
    boots = bootstrap_resample(jax.random.key(5), obs, n_boot)
    assert boots.l.shape == (n_boot, 4000)
    assert np.all(np.asarray(boots.selected.sum(1)) == int(obs.selected.sum()))
    means = jax.vmap(lambda o: vtb_profile(o, n_iter=0).mean)(boots)
    base = vtb_profile(obs, n_iter=0)
    expected = np.asarray(base.std) / np.sqrt(np.asarray(base.count))
    # the std of n_boot draws is known to ~1/sqrt(2 n_boot) = 3.5 % relative; allow 5 sigma
    np.testing.assert_allclose(np.asarray(means).std(0), expected, rtol=5 / np.sqrt(2 * n_boot))
    del rng


def test_gradient_of_clipped_mean():
    """grad of the clipped mean w.r.t. the values is 1/count on the kept stars, 0 on the clipped ones
    (the clipping bounds move, but the kept set is locally constant)."""
    rng = np.random.default_rng(11)
    x = jnp.asarray(_contaminated(rng, 200, 20))
    g = jax.grad(lambda a: sigma_clipped_stats(a).mean)(x)
    from astropy.stats import sigma_clip

    kept = ~sigma_clip(np.asarray(x), sigma=3, maxiters=5).mask
    np.testing.assert_allclose(g, kept / kept.sum(), atol=1e-12)


def test_summary_noise_widths():
    sigma = np.linspace(1.0, 20.0, 52)
    base = jnp.zeros((4000, 52))
    noisy = np.asarray(add_summary_noise(jax.random.key(6), base, sigma))
    z = noisy / sigma
    assert np.all(np.abs(z.std(0) - 1) < 5 / np.sqrt(2 * 4000))
    assert np.isnan(add_summary_noise(jax.random.key(6), jnp.full(52, jnp.nan), sigma)).all()


def test_plots_show_the_statistics():
    import matplotlib

    matplotlib.use("Agg")
    x, v = _halo(3000, seed=12)
    obs = observe(jax.random.key(7), x, v, SOLAR)
    s = brooks_summaries(obs)
    fig = plot_brooks_summaries(s)
    axes = fig.axes
    assert len(axes) == 6
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), s.vgsr.mean[1])  # Q2 mean, north panel
    np.testing.assert_allclose(axes[5].lines[0].get_ydata(), s.vtb.std)  # v_t,b dispersion
    gl, gb = sky_grid(12, 6)
    smap, _ = vgsr_sky_map(obs, gl, gb)
    fig2 = plot_sky_map(gl, gb, smap, apex=(0.5, -0.3))
    np.testing.assert_allclose(fig2.axes[0].collections[0].get_array().reshape(6, 12), smap)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_bad_inputs():
    with pytest.raises(SummaryError, match="center"):
        sigma_clipped_stats(jnp.ones(3), center="mode")
    with pytest.raises(SummaryError, match="groups"):
        grouped_sigma_clipped_stats(jnp.ones(3), jnp.ones((2, 4), bool))
    with pytest.raises(SummaryError, match="increase"):
        bin_masks(jnp.ones(3), [30.0, 20.0, 40.0])
    with pytest.raises(SummaryError, match="n_iter"):
        sigma_clipped_stats(jnp.ones(3), n_iter=-1)
