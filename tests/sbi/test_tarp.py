"""TARP coverage: exact Gaussian posteriors are calibrated, mis-scaled ones are detected, and the
curve matches the independent ``tarp`` package (Lemos et al.'s reference implementation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.sbi.tarp import tarp_coverage, tarp_credibility

N_SIMS, N_SAMPLES, DIM, NOISE = 600, 400, 3, 0.5


def _conjugate_case(key, width_factor=1.0):
    """theta ~ N(0, I), x = theta + N(0, NOISE^2): exact posterior N(x / (1 + s^2), s^2 / (1 + s^2))."""
    k1, k2, k3 = jax.random.split(key, 3)
    theta = jax.random.normal(k1, (N_SIMS, DIM))
    x = theta + NOISE * jax.random.normal(k2, (N_SIMS, DIM))
    s2 = NOISE**2
    mean = x / (1 + s2)
    sd = jnp.sqrt(s2 / (1 + s2)) * width_factor
    samples = mean[None] + sd * jax.random.normal(k3, (N_SAMPLES, N_SIMS, DIM))
    return samples, theta


def test_exact_posterior_is_calibrated():
    samples, theta = _conjugate_case(jax.random.PRNGKey(0))
    res = tarp_coverage(samples, theta, key=jax.random.PRNGKey(1))
    assert res.ks_pvalue > 0.05 and res.ks_uniform_pvalue > 0.05
    # |ECP - alpha| within ~3.5 binomial sigma at every alpha (sigma <= 0.5 / sqrt(N))
    assert np.max(np.abs(res.ecp - res.alpha)) < 3.5 * 0.5 / np.sqrt(N_SIMS)
    assert abs(res.atc) < 0.5  # 30 upper-half grid points, each within ~0.07


@pytest.mark.parametrize("factor, sign", [(2.0, +1), (0.5, -1), (4.0, +1), (0.25, -1)])
def test_miscalibrated_posteriors_detected(factor, sign):
    """Too wide: ECP above the diagonal, ATC > 0; too narrow: ATC < 0; the KS test of f ~ U(0, 1)
    rejects both at x2 / x0.5; sbi's curve-vs-diagonal KS (the weak one Brooks et al. quote)
    only rejects gross miscalibration (x4 / x0.25)."""
    samples, theta = _conjugate_case(jax.random.PRNGKey(0), width_factor=factor)
    res = tarp_coverage(samples, theta, key=jax.random.PRNGKey(1))
    assert np.sign(res.atc) == sign and abs(res.atc) > 2.0
    assert res.ks_uniform_pvalue < 1e-6
    if factor in (4.0, 0.25):
        assert res.ks_pvalue < 0.05


def test_matches_tarp_package():
    tarp = pytest.importorskip("tarp")
    samples, theta = _conjugate_case(jax.random.PRNGKey(4), width_factor=1.3)
    refs = np.asarray(jax.random.uniform(jax.random.PRNGKey(5), (N_SIMS, DIM)))
    f, _ = tarp_credibility(samples, theta, references=refs)
    f = np.asarray(f)
    for metric in ("euclidean", "manhattan"):
        f_m, _ = tarp_credibility(samples, theta, references=refs, metric=metric)
        ecp_ref, alpha_ref = tarp.get_tarp_coverage(np.asarray(samples), np.asarray(theta), references=refs,
                                                    metric=metric, norm=True, num_alpha_bins=50)
        ecp_ours = np.mean(np.asarray(f_m)[None, :] < alpha_ref[:, None], axis=1)
        ecp_ours[-1] = 1.0
        # identical up to a tie of one f value with one histogram edge
        assert np.max(np.abs(ecp_ours - ecp_ref)) <= 1.0 / N_SIMS + 1e-12
    assert f.shape == (N_SIMS,) and 0 <= f.min() and f.max() <= 1


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"samples \(M, N, D\)"):
        tarp_coverage(np.zeros((10, 5)), np.zeros((5, 2)), key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="references or a key|either references"):
        tarp_coverage(np.zeros((10, 5, 2)), np.zeros((5, 2)))
