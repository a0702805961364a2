"""jaxhalo.jax_utils: the vectorisable sincos against NumPy's libm."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxhalo.jax_utils as jax_utils
from jaxhalo.jax_utils import fused_row_sums, sincos


@pytest.mark.parametrize("scale", [1.0, 10.0, 1e5])
def test_sincos_float64_within_two_ulp(scale):
    """float64: within 2 ulp of numpy (fdlibm polynomials after Cody-Waite reduction), every quadrant."""
    x = np.random.default_rng(1).uniform(-scale, scale, 200_000)
    x = np.concatenate([x, [0.0, -0.0, np.pi / 4, np.pi / 2, np.pi, -np.pi / 2, 3 * np.pi / 4]])
    s, c = jax.jit(sincos)(jnp.asarray(x))
    for got, ref in ((np.asarray(s), np.sin(x)), (np.asarray(c), np.cos(x))):
        err = np.abs(got - ref)
        big = np.abs(ref) > 1e-3  # near a zero of sin/cos the argument's own rounding sets the error
        assert np.all(err[big] <= 2 * np.spacing(np.abs(ref[big])))
        assert np.max(err) <= 2 * np.spacing(1.0)


def test_sincos_float32():
    """float32 (pi/2 split in float32): 1e-6 absolute for |x| < 100."""
    x = np.random.default_rng(2).uniform(-100, 100, 100_000).astype(np.float32)
    s, c = jax.jit(sincos)(jnp.asarray(x))
    assert s.dtype == jnp.float32 and c.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(s), np.sin(x.astype(float)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(c), np.cos(x.astype(float)), atol=1e-6)


def test_sincos_differentiates_like_sin_cos():
    """Autodiff through the polynomial: d sin = cos, d cos = -sin (to the polynomial's accuracy)."""
    x = jnp.linspace(-7.0, 7.0, 101)
    ds = jax.vmap(jax.grad(lambda v: sincos(v)[0]))(x)
    dc = jax.vmap(jax.grad(lambda v: sincos(v)[1]))(x)
    np.testing.assert_allclose(np.asarray(ds), np.cos(np.asarray(x)), atol=1e-14)
    np.testing.assert_allclose(np.asarray(dc), -np.sin(np.asarray(x)), atol=1e-14)


def _terms(d):
    x, w = d
    return (jnp.sum(w[:, None] * x, axis=1), jnp.log1p(x[:, 0] ** 2) * w, jnp.exp(-x[:, 1]))


@pytest.mark.parametrize("n", [1, 7, 255, 1000, 2049])
@pytest.mark.parametrize("block, split", [(256, 3), (64, 8), (10**6, 1)])
def test_fused_row_sums_equal_numpy(n, block, split, monkeypatch):
    """Every path (one group, groups + remainder, blocks in the loop + remainder) sums every row once."""
    monkeypatch.setattr(jax_utils, "CPU_SUM_BLOCK", block)
    monkeypatch.setattr(jax_utils, "CPU_SUM_SPLIT", split)
    monkeypatch.setattr(jax_utils, "CPU_SUM_MIN_GROUP", 16)
    rng = np.random.default_rng(n)
    x, w = rng.normal(size=(n, 3)), rng.uniform(size=n)
    got = np.asarray(jax.jit(lambda d: fused_row_sums(_terms, d))((x, w)))
    want = [np.sum(w[:, None] * x), np.sum(np.log1p(x[:, 0] ** 2) * w), np.sum(np.exp(-x[:, 1]))]
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_fused_row_sums_vmap_and_derivatives(monkeypatch):
    """vmap over a parameter, reverse mode and forward-over-reverse equal the plain jnp.sum version."""
    monkeypatch.setattr(jax_utils, "CPU_SUM_BLOCK", 64)
    monkeypatch.setattr(jax_utils, "CPU_SUM_SPLIT", 3)
    monkeypatch.setattr(jax_utils, "CPU_SUM_MIN_GROUP", 16)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(500, 2)))

    def fused(a):
        return fused_row_sums(lambda r: (jnp.sin(a[0] * r[:, 0]) * r[:, 1], jnp.exp(a[1] * r[:, 1])), x) @ jnp.array([1.0, 0.5])

    def plain(a):
        return jnp.sum(jnp.sin(a[0] * x[:, 0]) * x[:, 1]) + 0.5 * jnp.sum(jnp.exp(a[1] * x[:, 1]))

    a = jnp.array([0.7, -0.3])
    batch = jnp.stack([a, 2 * a, -a])
    np.testing.assert_allclose(jax.jit(jax.vmap(fused))(batch), jax.vmap(plain)(batch), rtol=1e-13)
    np.testing.assert_allclose(jax.jit(jax.grad(fused))(a), jax.grad(plain)(a), rtol=1e-12)
    np.testing.assert_allclose(jax.jit(jax.hessian(fused))(a), jax.hessian(plain)(a), rtol=1e-12, atol=1e-12)
