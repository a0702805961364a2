"""jaxhalo.units: Quantities to internal units, bare values untouched, clear errors, no astropy at import."""

from __future__ import annotations

import subprocess
import sys

import astropy.units as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.units import (
    KPC,
    LOG10_MSUN,
    MYR,
    is_quantity,
    phase_space_to_internal,
    to_internal,
)


def test_quantities_convert_and_bare_values_pass_untouched():
    np.testing.assert_allclose(to_internal([8000.0, 0.0, 0.0] * u.pc, KPC, "x"), [8.0, 0.0, 0.0], rtol=1e-15)
    assert to_internal(1.0 * u.Gyr, MYR, "t") == pytest.approx(1000.0, rel=1e-15)
    np.testing.assert_allclose(to_internal([8 * u.kpc, 500 * u.pc, 0.0], KPC, "x"), [8.0, 0.5, 0.0], rtol=1e-15)
    assert to_internal(1e12 * u.Msun, LOG10_MSUN, "m") == pytest.approx(12.0, rel=1e-15)
    assert to_internal(12.0 * u.dex(u.Msun), LOG10_MSUN, "m") == pytest.approx(12.0, rel=1e-15)
    bare = np.array([1.0, 2.0])
    assert to_internal(bare, KPC, "x") is bare
    assert to_internal(3.0, KPC, "x") == 3.0
    assert to_internal(None, KPC, "x") is None
    assert type(to_internal(2 * u.kpc, KPC, "x")) is float  # a plain float: a static value for jit, like 2.0


def test_wrong_dimension_names_argument_and_unit():
    with pytest.raises(u.UnitConversionError, match=r"position.*km / s.*kpc") as info:
        to_internal([8.0, 0.0, 0.0] * u.km / u.s, KPC, "position")
    assert isinstance(info.value, ValueError)
    with pytest.raises(u.UnitConversionError, match=r"w0: one Quantity"):
        phase_space_to_internal([8.0, 0, 0, 0, 220, 0] * u.kpc, "w0")


def test_phase_space_pairs():
    x, v = phase_space_to_internal(([8000.0, 0, 0] * u.pc, [0.0, 220.0, 0.0] * u.km / u.s), "w0")
    np.testing.assert_allclose(x, [8.0, 0, 0], rtol=1e-15)
    np.testing.assert_allclose(v, [0.0, 220.0, 0.0], rtol=1e-15)
    assert phase_space_to_internal(np.zeros(6), "w0") is None
    assert phase_space_to_internal([[0.0] * 6, [1.0] * 6], "w0") is None  # two stars of 6, not a pair
    with pytest.raises(u.UnitConversionError, match="w0 velocity"):
        phase_space_to_internal(([8.0, 0, 0] * u.kpc, [0, 220.0, 0] * u.kpc), "w0")


def test_tracers_are_not_quantities():
    seen = []

    def f(x):
        seen.append(is_quantity(x))
        return jnp.sum(jnp.asarray(to_internal(x, KPC, "x")) ** 2)

    assert jax.jit(f)(jnp.ones(3)) == 3.0
    np.testing.assert_allclose(jax.grad(f)(jnp.ones(3)), 2.0)
    assert seen == [False, False]


def test_import_does_not_load_astropy():
    code = "import sys, jaxhalo.units, jaxhalo.simulation.parameters; print('astropy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
