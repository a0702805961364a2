"""Smooth (differentiable) Brooks et al. summaries against the hard ones, and their derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.simulation.observe import observe
from jaxhalo.simulation.smooth_summaries import smooth_brooks_summary_vector, smooth_step, weighted_moments
from jaxhalo.simulation.summaries import brooks_summaries, brooks_summary_vector

#: Gaussian 3-sigma clipping lowers a dispersion by 1 - sqrt(1 - 6 phi(3) / (2 Phi(3) - 1)) = 1.34%.
CLIP_BIAS = 0.0134


@pytest.fixture(scope="module")
def halo():
    """20,000 stars, r ~ 30 (1 + Pareto(1.5)) kpc isotropic on the sky, Gaussian velocities (100 km/s)."""
    rng = np.random.default_rng(0)
    n = 20_000
    r = 30.0 * (1.0 + rng.pareto(1.5, n))
    d = rng.standard_normal((n, 3))
    d /= np.linalg.norm(d, axis=1)[:, None]
    v = 100.0 * rng.standard_normal((n, 3)) + np.array([10.0, -20.0, 30.0])
    return r[:, None] * d, v


def test_narrow_windows_give_the_hard_unclipped_summaries(halo):
    x, v = halo
    hard = np.asarray(brooks_summary_vector(observe(jax.random.key(0), x, v, None), n_iter=0))
    soft = np.asarray(smooth_brooks_summary_vector(observe(jax.random.key(0), x, v, None, r_gal_range=None),
                                                   r_width=1e-7, angle_width=1e-9))
    np.testing.assert_allclose(soft, hard, rtol=1e-10, atol=1e-10)


def test_default_windows_agree_with_the_clipped_summaries_within_noise(halo):
    """|smooth - hard| < 3 standard errors (sigma / sqrt(n) for means, sigma / sqrt(2n) for dispersions),
    plus the known 1.34% clipping bias of the hard dispersions."""
    x, v = halo
    bs = brooks_summaries(observe(jax.random.key(0), x, v, None))
    hard = np.asarray(bs.vector())
    count = np.concatenate([np.asarray(bs.vgsr.count).reshape(-1), np.asarray(bs.vtb.count)])
    sd = np.concatenate([np.asarray(bs.vgsr.std).reshape(-1), np.asarray(bs.vtb.std)])
    assert count.min() >= 100
    tol = np.concatenate([3 * sd / np.sqrt(count), 3 * sd / np.sqrt(2 * count) + CLIP_BIAS * sd])
    soft = np.asarray(smooth_brooks_summary_vector(observe(jax.random.key(0), x, v, None, r_gal_range=None)))
    assert np.all(np.abs(soft - hard) < tol), np.round((soft - hard) / tol, 2)


def test_derivative_through_bin_edges_matches_finite_differences(halo):
    """Stretching every radius by (1 + a) moves stars across the bin edges: the hard summaries have
    zero derivative there, the smooth ones a finite one that central differences reproduce. The step:
    central differences converge as h^2 here (measured max error 1.3e-3, 1.3e-5, 1.3e-7, 1.4e-9 of the
    largest derivative at h = 1e-3 ... 1e-6), so h = 1e-5 is in the stable range; checked by h vs h/2."""
    x, v = halo
    x, v = jnp.asarray(x[:4000]), jnp.asarray(v[:4000])

    def summaries(a):
        return smooth_brooks_summary_vector(observe(jax.random.key(0), x * (1 + a), v, None, r_gal_range=None))

    grad = np.asarray(jax.jacfwd(summaries)(0.0))
    fd = lambda h: (np.asarray(summaries(h)) - np.asarray(summaries(-h))) / (2 * h)  # noqa: E731
    f1, f2 = fd(1e-5), fd(5e-6)
    scale = np.abs(grad).max()
    assert scale > 1.0  # radii matter
    assert np.max(np.abs(f1 - f2)) < 1e-6 * scale  # stable
    rel = np.abs(grad - f2) / np.maximum(np.abs(grad), 1e-3 * scale)
    assert rel.max() < 1e-3


def test_smooth_step_has_compact_support_and_is_c2():
    w = 4.0
    x = jnp.array([-1e300, -10.0, -4.0, -4.0 + 1e-12, 0.0, 4.0 - 1e-12, 4.0, 10.0, 1e300, jnp.inf, -jnp.inf])
    s = np.asarray(smooth_step(x, w))
    np.testing.assert_array_equal(s[[0, 1, 2, 6, 7, 8, 9, 10]], [0, 0, 0, 1, 1, 1, 1, 0])
    assert s[4] == 0.5 and 0 < s[3] < 1e-30 and 0 <= 1 - s[5] <= 1e-15  # (1 - s: round-off of the polynomial)
    d1 = jax.vmap(jax.grad(lambda t: smooth_step(t, w)))
    d2 = jax.vmap(jax.grad(jax.grad(lambda t: smooth_step(t, w))))
    edge = jnp.array([-w - 1e-9, -w + 1e-9, w - 1e-9, w + 1e-9])
    assert np.all(np.abs(np.asarray(d1(edge))) < 1e-15)  # C^1 at the ends of the ramp
    assert np.all(np.abs(np.asarray(d2(edge))) < 1e-7)  # C^2 (the second derivative ~ |x -+ w|)
    assert float(d1(jnp.array([0.0]))[0]) == pytest.approx(15.0 / (16.0 * w))


def _obs_tangent(obs, rng, scale):
    """A random tangent of every float field of a MockObservation (the bool ``selected`` gets float0)."""
    fields = {}
    for name, val in obs._asdict().items():
        if name == "selected":
            fields[name] = np.zeros(np.shape(val), dtype=jax.dtypes.float0)
        else:
            fields[name] = jnp.asarray(scale * rng.standard_normal(np.shape(val)))
    return type(obs)(**fields)


@pytest.mark.parametrize("huge", [1e40, np.inf, -np.inf, np.nan])
def test_a_star_outside_every_window_cannot_leak_its_tangent(halo, huge):
    """Stars at r = 5 and 20 kpc (below the first edge at 30 kpc minus the 4 kpc ramp) and at 400 kpc get
    tangents of 1e40 / inf / NaN in every field (the chaotic tracers near the centre): the jvp of the summaries
    must be finite and exactly the jvp with those tangents set to 0. With the logistic windows of the earlier
    version (weight ~1e-11 at 5 kpc) the 1e40 case changed J and the inf and NaN cases gave NaN (checked)."""
    x, v = halo
    x, v = np.array(x[:3000]), np.array(v[:3000])
    for i, r in enumerate((5.0, 20.0, 400.0)):
        x[i] *= r / np.linalg.norm(x[i])
    obs = observe(jax.random.key(0), jnp.asarray(x), jnp.asarray(v), None, r_gal_range=None)
    r_gal = np.asarray(obs.r_gal[:3])
    assert r_gal[0] < 25.0 and r_gal[1] < 25.0 and r_gal[2] > 170.0
    tan = _obs_tangent(obs, np.random.default_rng(1), 10.0)
    bad = type(obs)(**{k: (t if k == "selected" else t.at[:3].set(huge)) for k, t in tan._asdict().items()})
    f = jax.jit(lambda o: smooth_brooks_summary_vector(o))
    y0, dy0 = jax.jvp(f, (obs,), (tan,))
    y1, dy1 = jax.jvp(f, (obs,), (bad,))
    zero = type(obs)(**{k: (t if k == "selected" else t.at[:3].set(0.0)) for k, t in tan._asdict().items()})
    _, dyz = jax.jvp(f, (obs,), (zero,))
    assert np.all(np.isfinite(np.asarray(dy1)))
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y0))
    np.testing.assert_array_equal(np.asarray(dy1), np.asarray(dyz))
    # the tangents of stars inside the window do reach J (the test can fail: the mask is not everything)
    assert np.max(np.abs(np.asarray(dyz))) > 1.0


def test_weighted_moments_ignore_zero_weight_values_and_tangents():
    v = jnp.array([1.0, 2.0, 3.0, 1e300])
    w = jnp.array([1.0, 1.0, 2.0, 0.0])
    m, s = weighted_moments(v, w)
    assert float(m) == pytest.approx(9.0 / 4.0) and float(s) == pytest.approx(np.sqrt(0.6875))
    for huge in (1e40, np.inf, np.nan):
        dv = jnp.array([0.1, -0.2, 0.3, huge])
        _, (dm, ds) = jax.jvp(weighted_moments, (v, w), (dv, jnp.zeros(4)))
        _, (dm0, ds0) = jax.jvp(weighted_moments, (v, w), (dv.at[3].set(0.0), jnp.zeros(4)))
        assert float(dm) == float(dm0) and float(ds) == float(ds0) and np.isfinite(float(ds))
    # one star in a bin: dispersion 0 and a finite (zero) derivative, not sqrt's inf at 0
    _, (_, ds1) = jax.jvp(weighted_moments, (v, jnp.array([0.0, 1.0, 0.0, 0.0])), (jnp.ones(4), jnp.zeros(4)))
    assert float(ds1) == 0.0
