"""astropy Quantities at the public physics entries, converted once to jaxhalo's internal units.

Internal units: positions kpc, velocities km/s, masses Msun, times Myr, proper motions mas/yr,
angles as each function documents (radians inside the numerical code, degrees at the few
user-facing edges such as :class:`~jaxhalo.dynamics.mwlmc.LMCObservables`). A bare number or array
always means the internal unit; a Quantity is converted with :func:`to_internal`, and one of the
wrong dimension raises ``astropy.units.UnitConversionError`` (a ``UnitsError`` and a ``ValueError``)
naming the argument and the unit expected. Return values are plain arrays in the internal units.

Quantities are not JAX types, so the conversion happens at the Python entry, before any tracing:
under ``jit`` / ``vmap`` / ``grad`` the values are tracers (never Quantities) and pass untouched.
Pass Quantities to the eager entry points (or convert them with :func:`to_internal` before calling
a jitted function); ``jax.numpy.asarray`` of a Quantity silently drops its unit.

NumPy only: astropy is imported only when a Quantity is given, so ``import jaxhalo`` stays light.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "KPC",
    "KM_S",
    "MSUN",
    "MYR",
    "DEGREE",
    "RADIAN",
    "MAS_YR",
    "DIMENSIONLESS",
    "LOG10_MSUN",
    "MSUN_KPC3",
    "is_quantity",
    "to_internal",
    "phase_space_to_internal",
]

#: Internal units, as astropy unit strings.
KPC = "kpc"
KM_S = "km/s"
MSUN = "Msun"
MYR = "Myr"
DEGREE = "deg"
RADIAN = "rad"
MAS_YR = "mas/yr"
MSUN_KPC3 = "Msun / kpc3"
DIMENSIONLESS = ""
#: log10 of a mass in Msun: accepts ``12 * u.dex(u.Msun)`` or a mass Quantity (its log10 is taken).
LOG10_MSUN = "dex(Msun)"


def is_quantity(x: Any) -> bool:
    """True for an astropy Quantity (or ``TimeDelta``); checks attributes only, so it never imports astropy
    and is False for NumPy / JAX arrays and tracers."""
    if hasattr(x, "unit") and hasattr(x, "to_value"):
        return True
    return type(x).__name__ == "TimeDelta" and type(x).__module__.startswith("astropy.")


def _has_quantity(x: Any) -> bool:
    if is_quantity(x):
        return True
    return isinstance(x, (list, tuple)) and any(_has_quantity(v) for v in x)


def _astropy_unit(unit: str):
    import astropy.units as u  # deferred: astropy loads only when a Quantity was given

    if unit.startswith("dex(") and unit.endswith(")"):
        return u.dex(u.Unit(unit[4:-1]))
    return u.Unit(unit)


def _describe(unit: str) -> str:
    if unit == DIMENSIONLESS:
        return "dimensionless"
    if unit == LOG10_MSUN:
        return "log10 Msun (a dex(Msun) or mass Quantity)"
    return unit


def to_internal(value: Any, unit: str, name: str) -> Any:
    """``value`` in the internal ``unit`` (an astropy unit string, e.g. :data:`KPC`) for the argument ``name``.

    * an astropy Quantity: converted, returned as a plain NumPy array (a Python float for a scalar);
    * a list or tuple holding Quantities (``[8 * u.kpc, 0 * u.kpc, 0 * u.kpc]``): each entry converted
      (bare entries taken in ``unit``), returned as a NumPy array;
    * anything else (floats, NumPy / JAX arrays, tracers): returned unchanged, in ``unit`` by convention.

    Raises ``astropy.units.UnitConversionError`` (a ``ValueError``) when the Quantity's unit is not
    convertible to ``unit``, naming ``name`` and the expected unit.
    """
    if is_quantity(value):
        import astropy.units as u  # deferred: astropy loads only when a Quantity was given

        target = _astropy_unit(unit)
        try:
            out = value.to_value(target)
        except (u.UnitsError, TypeError, ValueError) as exc:
            given = getattr(value, "unit", None)
            raise u.UnitConversionError(
                f"{name}: got a Quantity in {given if given is not None else type(value).__name__!s}, "
                f"which is not convertible to {_describe(unit)} (the unit {name} is expected in)"
            ) from exc
        return float(out) if np.ndim(out) == 0 else np.asarray(out)
    if isinstance(value, (list, tuple)) and _has_quantity(value):
        return np.asarray([to_internal(v, unit, f"{name}[{i}]") for i, v in enumerate(value)], dtype=float)
    return value


def phase_space_to_internal(w: Any, name: str) -> tuple[Any, Any] | None:
    """Split a phase-space argument given as a pair ``(x, v)`` into (x in kpc, v in km/s).

    ``w`` is a pair when it is a list / tuple of two entries whose last axes have length 3 (each
    entry may be a Quantity, e.g. ``([8, 0, 0] * u.kpc, [0, 220, 0] * u.km / u.s)``); then the pair
    of converted entries is returned. Otherwise ``None`` (``w`` is a plain (..., 6) array in
    (kpc, km/s), to be used as it is). A single Quantity cannot hold both kpc and km/s and raises
    ``astropy.units.UnitConversionError`` naming ``name``.
    """
    if is_quantity(w):
        import astropy.units as u  # deferred: astropy loads only when a Quantity was given

        raise u.UnitConversionError(
            f"{name}: one Quantity (unit {w.unit}) cannot hold positions in kpc and velocities in km/s; "
            f"pass {name} as a pair (x, v) of Quantities, or as a bare (..., 6) array in (kpc, km/s)"
        )
    if isinstance(w, (list, tuple)) and len(w) == 2:
        if _has_quantity(w):
            x, v = to_internal(w[0], KPC, f"{name} position"), to_internal(w[1], KM_S, f"{name} velocity")
            if np.shape(x)[-1:] != (3,) or np.shape(v)[-1:] != (3,):
                raise ValueError(f"{name}: a pair (x, v) needs a last axis of 3 in both, got shapes "
                                 f"{np.shape(x)} and {np.shape(v)}")
            return x, v
        try:
            shapes = [np.shape(e) for e in w]
        except ValueError:  # ragged nested lists: not a pair
            return None
        if all(s[-1:] == (3,) for s in shapes):
            return w[0], w[1]
    return None
