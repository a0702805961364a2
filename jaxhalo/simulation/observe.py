"""Mock observation of simulated halo particles, as a spectroscopic + astrometric survey sees them.

A simulation returns Galactocentric phase-space coordinates in the MW-centred frame
(positions (N, 3) kpc, velocities (N, 3) km/s). :func:`observe` turns them into the
heliocentric observables of a survey, with per-star Gaussian errors, a distance window
and an optional sky footprint, and derives the two velocities on which the summary
statistics of Brooks et al. (2026) are built:

* ``v_GSR``: the line-of-sight velocity corrected for the solar motion,
  ``v_GSR = v_los + v_sun . e_los`` (Brooks et al. 2026 §2.2.1; Chandra et al. 2025 §3.1);
* ``v_t,b``: the tangential velocity along Galactic latitude corrected for the solar
  motion, ``v_t,b = k d mu_b + v_sun . e_b`` (Brooks et al. 2026 §2.2.2; the
  ``v*_t,b`` of Chandra et al. 2025 §3.2, positive towards the north).

Here ``v_sun`` is the solar velocity expressed on the heliocentric Galactic axes
(``R^T v_sun`` for the small z_sun tilt of :class:`~jaxhalo.frames.SolarParameters`),
so both are exact projections of the star's velocity relative to the Galactic centre
at rest: ``v_GSR = e_los . R^T v_gal`` and ``v_t,b = e_b . R^T v_gal``.

JAX needs static shapes, so :func:`observe` returns full-length (N,) arrays and a boolean
``selected`` mask rather than a compacted catalogue; it is jit-able and vmaps over keys
and particle sets. :func:`observe_catalog` is the non-jit convenience that returns a
:class:`~jaxhalo.catalog.structure.StarCatalog` of the selected stars.

Error model (defaults)
----------------------
Brooks et al. (2026) §3.2 forward-model "survey-specific uncertainties" of the
H3+SEGUE+MagE sample but give no per-star numbers. The defaults here are stated
assumptions built from what the papers do give, and every one is an argument:

* ``distance_frac_err = 0.10``: the 10 % distance-uncertainty floor of the MINESweeper
  distances (Brooks et al. 2026 §2.1.4; their sample keeps fractional errors < 25 %).
* ``v_los_err = 2 km/s``: a typical H3 / MagE radial-velocity error (the sample cut
  is 15 km/s, Chandra et al. 2025 §2.3); tangential-velocity errors are "more than a
  factor of ten larger" (Chandra et al. §3.2), which the proper-motion default gives.
* ``pm_l_err = pm_b_err = 0.15 mas/yr``: Gaia DR3 for G ~ 17-18.5 giants (~ 40 km/s at
  60 kpc), uncorrelated (``pm_corr = 0``).
* distance window ``30 <= r_gal <= 160 kpc`` on the *observed* Galactocentric
  distance (Brooks et al. 2026 §2.1.4, §2.2).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ..catalog.structure import StarCatalog
from ..constants import K_PM
from ..units import DIMENSIONLESS, KM_S, KPC, MAS_YR, is_quantity, to_internal
from ..frames import (
    SolarParameters,
    galactic_to_cartesian,
    galactocentric_to_observables,
    heliocentric_to_galactocentric,
    sky_basis,
)

__all__ = [
    "MockObservation",
    "ObservationError",
    "observe",
    "observe_catalog",
    "to_catalog",
    "solar_velocity_heliocentric",
    "v_gsr",
    "v_tb",
    "v_tl",
    "BROOKS_R_GAL_RANGE",
]

#: Galactocentric distance window of the Brooks et al. (2026) sample and summaries (kpc).
BROOKS_R_GAL_RANGE: tuple[float, float] = (30.0, 160.0)

#: A sky footprint: maps Galactic (l, b) in radians, each (N,), to a boolean (N,) array
#: (True = inside the survey). It must be traceable by JAX when used under ``jit``.
Footprint = Callable[[Array, Array], Array]


class ObservationError(ValueError):
    """Invalid input to the mock observation (shapes, error widths, windows)."""


class MockObservation(NamedTuple):
    """A mock survey of N particles: full-length arrays plus the ``selected`` mask.

    Every field is an array of shape (N,) (or (..., N) under ``vmap``), float unless noted.

    Attributes
    ----------
    l, b : Galactic longitude in (-pi, pi] and latitude (rad), exact (no astrometric error).
    distance, distance_err : observed heliocentric distance and its reported 1-sigma
        error ``distance_frac_err * distance`` (kpc).
    v_los, v_los_err : observed heliocentric line-of-sight velocity and its error (km/s).
    pm_l, pm_b : observed proper motions mu_l* = mu_l cos b and mu_b (mas/yr).
    pm_l_err, pm_b_err, pm_corr : their 1-sigma errors (mas/yr) and correlation.
    r_gal : Galactocentric distance from the observed (l, b, distance) (kpc).
    v_gsr : solar-motion corrected line-of-sight velocity from the observed v_los (km/s).
    v_tb : solar-motion corrected latitude tangential velocity k d mu_b + v_sun.e_b
        from the observed distance and mu_b (km/s).
    selected : bool, True for stars inside the distance window and footprint with a
        positive observed distance.
    """

    l: Array
    b: Array
    distance: Array
    distance_err: Array
    v_los: Array
    v_los_err: Array
    pm_l: Array
    pm_b: Array
    pm_l_err: Array
    pm_b_err: Array
    pm_corr: Array
    r_gal: Array
    v_gsr: Array
    v_tb: Array
    selected: Array


def solar_velocity_heliocentric(solar: SolarParameters | None = None) -> Array:
    """The solar velocity relative to the Galactic centre on the heliocentric Galactic axes.

    Returns ``R^T v_sun`` (3,) in km/s, where R is the frame's z_sun tilt
    (:attr:`SolarParameters.rotation`); equals ``v_sun`` for an untilted frame.
    """
    solar = SolarParameters() if solar is None else solar
    return solar.v_sun @ solar.rotation


def v_gsr(l: ArrayLike, b: ArrayLike, v_los: ArrayLike, solar: SolarParameters | None = None) -> Array:
    """Line-of-sight velocity in the Galactic standard of rest, ``v_los + v_sun . e_los``.

    Parameters
    ----------
    l, b : (...,) Galactic longitude and latitude (rad).
    v_los : (...,) heliocentric line-of-sight velocity (km/s).
    solar : solar parameters (default :class:`SolarParameters`; Brooks et al. use
        ``SolarParameters.brooks()``).

    Returns
    -------
    (...,) km/s: the star's Galactocentric velocity projected on the heliocentric line of sight.
    """
    e_los, _, _ = sky_basis(l, b)
    return jnp.asarray(v_los) + e_los @ solar_velocity_heliocentric(solar)


def v_tb(
    l: ArrayLike, b: ArrayLike, distance: ArrayLike, pm_b: ArrayLike,
    solar: SolarParameters | None = None, k: float = K_PM,
) -> Array:
    """Latitude tangential velocity corrected for the solar motion, ``k d mu_b + v_sun . e_b``.

    Parameters
    ----------
    l, b : (...,) Galactic coordinates (rad).
    distance : (...,) heliocentric distance (kpc).
    pm_b : (...,) proper motion mu_b (mas/yr).
    solar : solar parameters; ``k``: km/s per (kpc mas/yr).

    Returns
    -------
    (...,) km/s, positive towards the north Galactic pole along e_b (Chandra et al. 2025 v*_t,b).
    """
    _, _, e_b = sky_basis(l, b)
    return k * jnp.asarray(distance) * jnp.asarray(pm_b) + e_b @ solar_velocity_heliocentric(solar)


def v_tl(
    l: ArrayLike, b: ArrayLike, distance: ArrayLike, pm_l: ArrayLike,
    solar: SolarParameters | None = None, k: float = K_PM,
) -> Array:
    """Longitude tangential velocity corrected for the solar motion, ``k d mu_l* + v_sun . e_l`` (km/s).

    Same arguments as :func:`v_tb` with ``pm_l`` = mu_l* (mas/yr).
    """
    _, e_l, _ = sky_basis(l, b)
    return k * jnp.asarray(distance) * jnp.asarray(pm_l) + e_l @ solar_velocity_heliocentric(solar)


def _check_shapes(positions: Array, velocities: Array) -> None:
    if positions.ndim != 2 or positions.shape[-1] != 3:
        raise ObservationError(f"positions must have shape (N, 3) in kpc, got {positions.shape}")
    if velocities.shape != positions.shape:
        raise ObservationError(
            f"velocities must have the shape of positions {positions.shape} (km/s), got {velocities.shape}"
        )


def _check_range(name: str, window) -> None:
    if window is None:
        return
    if len(window) != 2:
        raise ObservationError(f"{name} must be a pair (low, high) in kpc, got {window!r}")
    try:
        lo, hi = float(window[0]), float(window[1])
    except (TypeError, jax.errors.ConcretizationTypeError):  # traced values: cannot check here
        return
    if not lo < hi:
        raise ObservationError(f"{name} must have low < high, got {window!r}")


def _window_kpc(name: str, window):
    """A (low, high) window with Quantities (``(30, 160) * u.kpc`` or ``(30 * u.kpc, 1.6e5 * u.pc)``) as
    a pair of floats in kpc; plain numbers and None unchanged."""
    if window is None or not (is_quantity(window) or any(is_quantity(v) for v in window)):
        return window
    lo, hi = np.asarray(to_internal(window if is_quantity(window) else list(window), KPC, name), dtype=float)
    return (float(lo), float(hi))


def _check_error(name: str, value) -> None:
    try:
        v = np.asarray(value, float)
    except (TypeError, jax.errors.TracerArrayConversionError):  # traced: checked by the caller
        return
    if np.any(v < 0) or not np.all(np.isfinite(v)):
        raise ObservationError(f"{name} must be finite and >= 0, got {value!r}")


def observe(
    key: Array,
    positions: ArrayLike,
    velocities: ArrayLike,
    solar: SolarParameters | None = None,
    *,
    distance_frac_err: ArrayLike = 0.10,
    v_los_err: ArrayLike = 2.0,
    pm_l_err: ArrayLike = 0.15,
    pm_b_err: ArrayLike = 0.15,
    pm_corr: ArrayLike = 0.0,
    r_gal_range: tuple[float, float] | None = BROOKS_R_GAL_RANGE,
    distance_range: tuple[float, float] | None = None,
    footprint: Footprint | None = None,
    add_errors: bool = True,
) -> MockObservation:
    """Observe simulated particles from the Sun with Gaussian survey errors.

    Pure JAX and compiled (one compilation per footprint / add_errors setting); it can be
    wrapped in ``jit`` (with ``footprint`` and ``add_errors`` static) and ``vmap``-ped over
    keys and particle sets (e.g. a batch of simulations).

    Parameters
    ----------
    key : jax.random key for the errors.
    positions : (N, 3) Galactocentric positions in the MW-centred frame (kpc).
    velocities : (N, 3) Galactocentric velocities relative to the MW centre (km/s).
    solar : solar parameters (default :class:`SolarParameters`, Chandra et al.);
        Brooks et al. use ``SolarParameters.brooks()``.
    distance_frac_err : scalar or (N,): fractional 1-sigma distance error. The observed
        distance is ``d (1 + f eps)``, eps ~ N(0, 1); the reported error is ``f`` times the
        *observed* distance, as a survey would quote it.
    v_los_err : scalar or (N,): 1-sigma line-of-sight velocity error (km/s).
    pm_l_err, pm_b_err : scalar or (N,): 1-sigma errors of mu_l* and mu_b (mas/yr).
    pm_corr : scalar or (N,) in (-1, 1): correlation of the two proper-motion errors.
    r_gal_range : (low, high) window in observed Galactocentric distance (kpc), inclusive
        at both ends, or None for no cut. Default (30, 160) kpc (Brooks et al. 2026).
    distance_range : optional (low, high) window in observed heliocentric distance (kpc).
    footprint : optional callable ``footprint(l, b) -> bool (N,)`` with l, b in radians;
        stars where it is False are not selected.
    add_errors : if False the observables are exact (errors still reported) — for tests
        and noiseless summaries.

    Positions, velocities, the errors and the windows may be astropy Quantities (converted at the call).

    Returns
    -------
    :class:`MockObservation` with (N,) arrays and the boolean ``selected`` mask. Stars with
    a non-positive observed distance (a > 1/f sigma draw) are never selected.
    """
    positions = jnp.asarray(to_internal(positions, KPC, "positions"))
    velocities = jnp.asarray(to_internal(velocities, KM_S, "velocities"))
    distance_frac_err = to_internal(distance_frac_err, DIMENSIONLESS, "distance_frac_err")
    v_los_err = to_internal(v_los_err, KM_S, "v_los_err")
    pm_l_err, pm_b_err = to_internal(pm_l_err, MAS_YR, "pm_l_err"), to_internal(pm_b_err, MAS_YR, "pm_b_err")
    r_gal_range, distance_range = _window_kpc("r_gal_range", r_gal_range), _window_kpc("distance_range", distance_range)
    _check_shapes(positions, velocities)
    for name, val in (("distance_frac_err", distance_frac_err), ("v_los_err", v_los_err),
                      ("pm_l_err", pm_l_err), ("pm_b_err", pm_b_err)):
        _check_error(name, val)
    _check_range("r_gal_range", r_gal_range)
    _check_range("distance_range", distance_range)
    solar = SolarParameters() if solar is None else solar
    return _observe_jit(
        key, positions, velocities, solar, distance_frac_err, v_los_err, pm_l_err, pm_b_err, pm_corr,
        r_gal_range, distance_range, footprint=footprint, add_errors=add_errors,
    )


@partial(jax.jit, static_argnames=("footprint", "add_errors"))
def _observe_jit(
    key, positions, velocities, solar, distance_frac_err, v_los_err, pm_l_err, pm_b_err, pm_corr,
    r_gal_range, distance_range, *, footprint, add_errors,
) -> MockObservation:
    """The numerical core of :func:`observe` (compiled once per static configuration)."""
    n = positions.shape[0]
    dtype = jnp.result_type(positions.dtype, velocities.dtype, float)

    true = galactocentric_to_observables(positions, velocities, solar)
    shape = (n,)
    f_d = jnp.broadcast_to(jnp.asarray(distance_frac_err, dtype), shape)
    e_v = jnp.broadcast_to(jnp.asarray(v_los_err, dtype), shape)
    e_l = jnp.broadcast_to(jnp.asarray(pm_l_err, dtype), shape)
    e_b = jnp.broadcast_to(jnp.asarray(pm_b_err, dtype), shape)
    rho = jnp.broadcast_to(jnp.asarray(pm_corr, dtype), shape)

    if add_errors:
        eps = jax.random.normal(key, (4, n), dtype)
        d_obs = true.d * (1.0 + f_d * eps[0])
        vlos_obs = true.v_los + e_v * eps[1]
        pml_obs = true.pm_l + e_l * eps[2]
        # Correlated pair: (eps2, rho eps2 + sqrt(1 - rho^2) eps3) has correlation rho.
        pmb_obs = true.pm_b + e_b * (rho * eps[2] + jnp.sqrt(1.0 - rho * rho) * eps[3])
    else:
        d_obs, vlos_obs, pml_obs, pmb_obs = true.d, true.v_los, true.pm_l, true.pm_b

    positive = d_obs > 0
    d_safe = jnp.where(positive, d_obs, true.d)  # keeps r_gal and v_tb finite for unselected stars
    r_obs, _ = heliocentric_to_galactocentric(galactic_to_cartesian(true.l, true.b, d_safe), None, solar)
    r_gal = jnp.sqrt(jnp.sum(r_obs * r_obs, axis=-1))

    selected = positive
    if r_gal_range is not None:
        selected = selected & (r_gal >= r_gal_range[0]) & (r_gal <= r_gal_range[1])
    if distance_range is not None:
        selected = selected & (d_obs >= distance_range[0]) & (d_obs <= distance_range[1])
    if footprint is not None:
        inside = jnp.asarray(footprint(true.l, true.b))
        if inside.shape != shape:
            raise ObservationError(f"footprint(l, b) must return a boolean array of shape {shape}, got {inside.shape}")
        selected = selected & inside.astype(bool)

    return MockObservation(
        l=true.l,
        b=true.b,
        distance=d_obs,
        distance_err=f_d * jnp.abs(d_obs),
        v_los=vlos_obs,
        v_los_err=e_v,
        pm_l=pml_obs,
        pm_b=pmb_obs,
        pm_l_err=e_l,
        pm_b_err=e_b,
        pm_corr=rho,
        r_gal=r_gal,
        v_gsr=v_gsr(true.l, true.b, vlos_obs, solar),
        v_tb=v_tb(true.l, true.b, d_safe, pmb_obs, solar),
        selected=selected,
    )


def to_catalog(
    obs: MockObservation,
    solar: SolarParameters | None = None,
    extra: dict[str, ArrayLike] | None = None,
) -> StarCatalog:
    """The selected stars of one :class:`MockObservation` as a :class:`StarCatalog` (NumPy, not jit).

    Parameters
    ----------
    obs : an unbatched observation (fields of shape (N,)).
    solar : the solar parameters used by :func:`observe` (for the catalogue's ``xyz``, the
        Galactocentric positions from the observed distances).
    extra : further per-particle (N, ...) arrays to carry (selected rows are kept).

    Returns
    -------
    StarCatalog with l, b (rad) and the observed quantities; ``extra`` holds 'r_gal',
    'v_gsr', 'v_tb' and the given arrays.
    """
    if np.ndim(obs.l) != 1:
        raise ObservationError(f"to_catalog needs one unbatched observation, got fields of shape {np.shape(obs.l)}")
    sel = np.asarray(obs.selected, bool)
    solar = SolarParameters() if solar is None else solar
    col = {name: np.asarray(getattr(obs, name), float)[sel] for name in (
        "l", "b", "distance", "distance_err", "v_los", "v_los_err",
        "pm_l", "pm_b", "pm_l_err", "pm_b_err", "pm_corr")}
    xyz, _ = heliocentric_to_galactocentric(galactic_to_cartesian(col["l"], col["b"], col["distance"]), None, solar)
    ext = {name: np.asarray(getattr(obs, name), float)[sel] for name in ("r_gal", "v_gsr", "v_tb")}
    for name, arr in (extra or {}).items():
        arr = np.asarray(arr)
        if arr.shape[:1] != sel.shape:
            raise ObservationError(f"extra column {name!r} must have first dimension {sel.shape[0]}, got {arr.shape}")
        ext[name] = arr[sel]
    return StarCatalog(**col, xyz=np.asarray(xyz), extra=ext)


def observe_catalog(
    key: Array,
    positions: ArrayLike,
    velocities: ArrayLike,
    solar: SolarParameters | None = None,
    **kwargs,
) -> StarCatalog:
    """Convenience (not jit): :func:`observe` then :func:`to_catalog` of the selected stars.

    The true Galactocentric positions and velocities of the selected particles are kept in
    ``extra['xyz_true']`` and ``extra['vxyz_true']`` (N_sel, 3), for validating fits.
    Keyword arguments are those of :func:`observe`.
    """
    obs = observe(key, positions, velocities, solar, **kwargs)
    return to_catalog(obs, solar, extra={"xyz_true": positions, "vxyz_true": velocities})
