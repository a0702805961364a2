"""The exact exponential sech^2 disc (ExponentialDiscTable) against an independent scipy ring quadrature.

The table (jaxhalo/data/exp_disc_table.npz) was built by the Hankel transform (scripts/build_disc_table.py);
the reference values (tests/dynamics/data/exact_disc_ring_reference.json) come from a different method,
nested scipy ``quad`` over rings with the singular point split out (tests/dynamics/disc_ring_reference.py;
a slow test recomputes some of them). The issue asks for the force to 1e-5 relative over R <= 300 kpc,
|z| <= 300 kpc; measured 7e-8 at worst (the table's own check, ``build_disc_table.py``, at two points per
cell and direction: 7e-8 near the centre, 1.6e-9 for 99.9 % of the points).
"""

from __future__ import annotations

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from disc_ring_reference import DATA, POINTS, ring_disc

from jaxhalo.constants import G
from jaxhalo.dynamics import potentials as P

REF = np.array(json.loads(DATA.read_text())["rows"])  # R, z, Phi, F_R, F_z
#: one jitted evaluation (eager use would compile primitive by primitive under vmap / grad)
_EVAL = eqx.filter_jit(lambda d, x: (d.potential(x), d.acceleration(x)))


def _cyl(R, z, phi=0.0):
    return np.stack([R * np.cos(phi), R * np.sin(phi), z], -1)


_EPS = 1e-8
_BLEND_DIRS = np.array([[np.sin(t), 0.0, np.cos(t)] for t in (0.0, 0.7, 1.5)])
_BLEND_PTS = np.concatenate([(np.array([270.0, 300.0])[:, None, None] + s * _EPS) * _BLEND_DIRS[None]
                             for s in (-1, 1)]).reshape(2, -1, 3)
_FAR_PT = np.array([[600.0, 200.0, -700.0]])
_PHIS = (0.0, 2.1)


@pytest.fixture(scope="module")
def evaluated():
    """Potential and acceleration of the default disc, in one jitted call: the reference points at two
    azimuths, the blend test points and a far-field point."""
    R, z = REF[:, 0], REF[:, 1]
    x = np.concatenate([_cyl(R, z, phi) for phi in _PHIS] + [_BLEND_PTS.reshape(-1, 3), _FAR_PT])
    pot, acc = _EVAL(P.ExponentialDiscTable(), jnp.asarray(x))
    pot, acc = np.asarray(pot), np.asarray(acc)
    n = len(REF)
    ref = []
    for k, phi in enumerate(_PHIS):
        p, a = pot[k * n:(k + 1) * n], acc[k * n:(k + 1) * n]
        ref.append((p, a[:, 0] * np.cos(phi) + a[:, 1] * np.sin(phi), a[:, 2], -a[:, 0] * np.sin(phi) + a[:, 1] * np.cos(phi)))
    m = 2 * n + _BLEND_PTS.size // 3
    return {"ref": ref, "blend": (pot[2 * n:m].reshape(2, -1), acc[2 * n:m].reshape(2, -1, 3)), "far": acc[m:]}


def test_reference_covers_the_asked_region():
    R, z = REF[:, 0], REF[:, 1]
    assert len(REF) == len(POINTS) and R.max() == 300.0 and np.abs(z).max() == 300.0
    assert np.sum((R <= 20) & (np.abs(z) <= 1.0)) >= 24  # inside the disc


def test_force_and_potential_vs_ring_quadrature(evaluated):
    """Force < 1e-8 relative (issue: 1e-5; measured 4.6e-10 here, 7e-8 at the table's worst points, the
    reference itself ~1e-10), potential < 1e-10 (measured 1e-11); both azimuths, the tangential force zero."""
    F_ref = np.hypot(REF[:, 3], REF[:, 4])
    for pot, FR, Fz, Fphi in evaluated["ref"]:
        err_F = np.hypot(FR - REF[:, 3], Fz - REF[:, 4]) / F_ref
        err_phi = np.abs(pot / REF[:, 2] - 1)
        worst = int(np.argmax(err_F))
        assert err_F.max() < 1e-8, (err_F.max(), REF[worst, :2])
        assert err_phi.max() < 1e-10, (err_phi.max(), REF[int(np.argmax(err_phi)), :2])
        np.testing.assert_array_less(np.abs(Fphi), 1e-12 * F_ref + 1e-12)


def test_miyamoto_nagai_option_error_is_as_documented():
    """The faster option's disc force error against the same reference (milky_way / exponential_disc
    docstrings): 20 % at R = 0.5 kpc in the plane, < 4 % for 2 <= R <= 20 kpc, |z| <= 1 kpc, < 1.5 % beyond."""
    R, z = REF[:, 0], REF[:, 1]
    acc = np.asarray(_EVAL(P.brooks_disc("miyamoto-nagai"), jnp.asarray(_cyl(R, z)))[1])
    err = np.hypot(acc[:, 0] - REF[:, 3], acc[:, 2] - REF[:, 4]) / np.hypot(REF[:, 3], REF[:, 4])
    assert 0.15 < err[POINTS.index((0.5, 0.0))] < 0.25
    assert err[(R >= 2) & (R <= 20) & (np.abs(z) <= 1)].max() < 0.04
    assert err[(R > 20) | (np.abs(z) > 1)].max() < 0.016


def test_density_is_analytic_and_matches_poisson():
    disc = P.ExponentialDiscTable()
    x = jnp.array([3.0, 4.0, 0.3])  # R = 5 kpc
    rho = 5e10 / (8 * np.pi * 9.0 * 0.4) * np.exp(-5.0 / 3.0) / np.cosh(0.3 / 0.8) ** 2
    np.testing.assert_allclose(disc.density(x), rho, rtol=1e-13)


@pytest.mark.slow
def test_tabulated_potential_obeys_poisson():
    disc = P.ExponentialDiscTable()
    # the tabulated potential's Laplacian is the density (second derivatives of the quintic
    # interpolant: measured 1e-6 relative, asserted 1e-4)
    y = jnp.array([[8.0, 0.0, 0.1], [2.0, 1.0, -0.5], [15.0, 3.0, 1.2]])
    lap, rho = eqx.filter_jit(lambda d, y: (jax.vmap(lambda p: jnp.trace(jax.hessian(d._phi)(p)))(y), d.density(y)))(disc, y)
    np.testing.assert_allclose(lap / (4 * np.pi * G), rho, rtol=1e-4)


def test_continuous_across_the_far_field_blend(evaluated):
    """The table blends into the l <= 6 multipole field between r = 90 and 100 R_d (270 - 300 kpc):
    potential and force continuous at both ends (no jump beyond the change over 2e-8 kpc)."""
    pot, acc = evaluated["blend"]
    x = _BLEND_PTS
    dphi_expected = -np.sum(0.5 * (acc[0] + acc[1]) * (x[1] - x[0]), -1)
    np.testing.assert_array_less(np.abs(pot[1] - pot[0] - dphi_expected), 1e-13 * np.abs(pot[0]))
    np.testing.assert_array_less(np.linalg.norm(acc[1] - acc[0], axis=-1), 1e-9 * np.linalg.norm(acc[0], axis=-1))


def test_far_field_is_the_multipole_expansion(evaluated):
    # monopole + quadrupole, q = <z^2> - <R^2>/2 = pi^2 h^2 / 3 - 3 R_d^2 (l = 4 is ~1e-7 here)
    q = np.pi**2 * 0.16 / 3 - 27.0

    def far(x):
        r = jnp.linalg.norm(x)
        return -G * 5e10 / r - G * 5e10 * q * 0.5 * (3 * (x[2] / r) ** 2 - 1) / r**3

    np.testing.assert_allclose(evaluated["far"][0], -jax.jit(jax.grad(far))(jnp.asarray(_FAR_PT[0])), rtol=2e-7)


def test_traced_mass_and_scale_radius_and_vmap():
    x = jnp.array([[8.0, 1.0, 0.3], [30.0, -4.0, 12.0]])

    def pot(m, a, y):
        return P.ExponentialDiscTable(mass=m, scale_radius=a, scale_height=a * (0.4 / 3)).potential(y)

    @jax.jit
    def run(m, a):
        acc = P.ExponentialDiscTable(mass=m).acceleration(x)
        return (acc, jax.jacfwd(lambda mm: P.ExponentialDiscTable(mass=mm).acceleration(x))(m),
                jax.jacfwd(pot, argnums=1)(m, a, x), jax.vmap(lambda mm: pot(mm, a, x))(jnp.array([1e10, m])),
                pot(m, a, x), pot(m, a + 1e-4, x), pot(m, a - 1e-4, x), pot(m, 4.0, x * 4 / 3))

    acc, dm, da, vm, p0, p_hi, p_lo, p_big = run(5e10, 3.0)
    np.testing.assert_allclose(dm * 5e10, acc, rtol=1e-10)  # linear in the mass
    np.testing.assert_allclose(da, (p_hi - p_lo) / 2e-4, rtol=1e-6)  # d/d R_d (h = 0.4/3 R_d with it)
    np.testing.assert_allclose(vm[1], 5 * vm[0], rtol=1e-12)
    np.testing.assert_allclose(vm[1], p0, rtol=1e-14)
    np.testing.assert_allclose(p_big, p0 * 3 / 4, rtol=1e-12)  # R_d = 4: the same table, scaled


def test_batched_and_per_point_evaluations_agree():
    """potential / acceleration (batched, also through a Composite) equal _phi / _acc mapped per point."""
    mw = P.NFW(3e6, 15.0) + P.ExponentialDiscTable()
    x = jnp.asarray(_cyl(REF[:, 0], REF[:, 1], 0.4))

    @jax.jit
    def run(x):
        return mw.potential(x), mw.acceleration(x), jax.vmap(mw._phi)(x), jax.vmap(mw._acc)(x)

    pot, acc, pot1, acc1 = run(x)
    np.testing.assert_allclose(pot, pot1, rtol=1e-13)
    np.testing.assert_allclose(acc, acc1, rtol=1e-12, atol=1e-12 * float(jnp.abs(acc1).max()))


def test_shape_ratio_is_checked():
    with pytest.raises(P.PotentialError, match="h/R_d"):
        P.ExponentialDiscTable(scale_height=0.3)


@pytest.mark.slow
def test_float32_runs():
    # float32: the table is rounded to float32 too; 2e-4 measured in the vertical force near the plane
    disc32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), P.ExponentialDiscTable())
    x = jnp.array([[8.0, 0.0, 0.1], [20.0, 3.0, 5.0]])
    a32 = _EVAL(disc32, x.astype(jnp.float32))[1]
    a64 = _EVAL(P.ExponentialDiscTable(), x)[1]
    assert a32.dtype == jnp.float32
    np.testing.assert_array_less(np.linalg.norm(a32 - a64, axis=-1), 1e-3 * np.linalg.norm(a64, axis=-1))


def test_disc_models():
    """milky_way's disc options (its default, the exact disc, is checked in test_potentials)."""
    assert isinstance(P.brooks_disc("exact"), P.ExponentialDiscTable) and P.DISC_MODELS == ("exact", "miyamoto-nagai")
    mn = P.brooks_disc("miyamoto-nagai")
    assert isinstance(mn, P.Composite) and all(isinstance(c, P.MiyamotoNagai) for c in mn.components)
    with pytest.raises(P.PotentialError, match="disc model"):
        P.brooks_disc("kuzmin")


def test_disc_circular_speed_at_the_sun(evaluated):
    """v_c(8.122 kpc) of the exact disc alone: 156.437 km/s, as the ring quadrature (the MN sum: 156.612),
    which moves the c200 that :func:`milky_way` solves for by 0.22 % (test_potentials checks v_c = 235 km/s)."""
    i = POINTS.index((8.122, 0.0))
    vc = math.sqrt(-8.122 * evaluated["ref"][0][1][i])
    np.testing.assert_allclose(vc, math.sqrt(-8.122 * REF[i, 3]), rtol=1e-8)
    assert abs(vc - 156.437) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("i", [0, 13, 27, 35])
def test_reference_values_are_the_ring_quadrature(i):
    """The committed reference values are what disc_ring_reference.ring_disc gives (a few seconds each)."""
    R, z = POINTS[i]
    phi, FR, Fz = ring_disc(R, z)
    np.testing.assert_allclose(phi, REF[i, 2], rtol=1e-9)
    assert math.hypot(FR - REF[i, 3], Fz - REF[i, 4]) <= 1e-9 * math.hypot(REF[i, 3], REF[i, 4])
