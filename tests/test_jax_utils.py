"""jaxhalo.jax_utils: the vectorisable sincos against NumPy's libm."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.jax_utils import sincos


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
