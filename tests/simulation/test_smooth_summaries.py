"""Smooth (differentiable) Brooks et al. summaries against the hard ones, and their derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.simulation.observe import observe
from jaxhalo.simulation.smooth_summaries import smooth_brooks_summary_vector
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
