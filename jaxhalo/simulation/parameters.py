"""The 12 parameters of the Brooks et al. (2026) simulator: names, units, Table 1 priors, fiducial values.

NumPy only (no JAX), so that the command line can build its options without loading the simulator.
:func:`theta_to_internal` turns a theta given with astropy Quantities (a dict by name, or a sequence
of 12 entries) into the plain (12,) array of :data:`PARAMETER_UNITS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..units import (
    DEGREE,
    DIMENSIONLESS,
    KM_S,
    KPC,
    LOG10_MSUN,
    MAS_YR,
    MSUN,
    is_quantity,
    to_internal,
)
from .errors import SimulatorError

__all__ = ["PARAMETER_NAMES", "PARAMETER_UNITS", "PARAMETER_DESCRIPTIONS", "PARAMETER_ASTROPY_UNITS", "PRIOR_TABLE1", "FIDUCIAL_THETA",
           "theta_to_internal"]

#: Names of the 12 entries of theta (Brooks et al. 2026 Table 1 order).
PARAMETER_NAMES: tuple[str, ...] = (
    "log10_m200", "m_lmc", "log10_lambda_df", "ra_lmc", "dec_lmc", "d_lmc",
    "vlos_lmc", "pmra_lmc", "pmdec_lmc", "beta0", "r_dens", "gamma",
)
#: Units of the entries of theta.
PARAMETER_UNITS: tuple[str, ...] = (
    "log10 Msun", "Msun", "", "deg", "deg", "kpc", "km/s", "mas/yr", "mas/yr", "", "kpc", "",
)
#: The same units as astropy unit strings (:mod:`jaxhalo.units`), for converting Quantities:
#: log10_m200 takes ``12 * u.dex(u.Msun)`` or a mass Quantity (``1e12 * u.Msun``, its log10 taken).
PARAMETER_ASTROPY_UNITS: tuple[str, ...] = (
    LOG10_MSUN, MSUN, DIMENSIONLESS, DEGREE, DEGREE, KPC, KM_S, MAS_YR, MAS_YR, DIMENSIONLESS, KPC, DIMENSIONLESS,
)
#: One-line descriptions of the entries of theta.
PARAMETER_DESCRIPTIONS: tuple[str, ...] = (
    "log10 of the MW halo's M200", "total LMC mass (Hernquist, M(<8.7 kpc) = 1.7e10 Msun)",
    "log10 of the dynamical-friction strength lambda_DF", "LMC right ascension", "LMC declination",
    "LMC heliocentric distance", "LMC line-of-sight velocity", "LMC proper motion mu_alpha*",
    "LMC proper motion mu_delta", "constant velocity anisotropy of the halo tracers",
    "tracer density scale radius (Brooks et al. 2026 eq. 2)", "outer slope of the tracer density",
)
#: Brooks et al. (2026) Table 1 priors: name -> ("uniform", low, high) or ("normal", mean, sd).
PRIOR_TABLE1: dict[str, tuple[str, float, float]] = {
    "log10_m200": ("uniform", 10.5, 12.5),
    "m_lmc": ("uniform", 2.5e10, 5.0e11),
    "log10_lambda_df": ("uniform", -3.0, 1.0),
    "ra_lmc": ("uniform", 72.5, 87.5),
    "dec_lmc": ("uniform", -75.0, -65.0),
    "d_lmc": ("normal", 49.6, 2.0),
    "vlos_lmc": ("normal", 262.2, 5.0),
    "pmra_lmc": ("normal", 1.9, 0.25),
    "pmdec_lmc": ("normal", 0.33, 0.25),
    "beta0": ("uniform", 0.0, 0.85),
    "r_dens": ("uniform", 10.0, 20.0),
    "gamma": ("uniform", 3.0, 5.0),
}
#: The fiducial system: M200 = 1e12, a 1.5e11 Msun LMC, lambda_DF = 1, Table 1 centres for the
#: LMC observables, beta0 = 0.5, r_dens = 15 kpc, gamma = 4. A NumPy array (12,).
FIDUCIAL_THETA: np.ndarray = np.array([12.0, 1.5e11, 0.0, 80.0, -70.0, 49.6, 262.2, 1.9, 0.33, 0.5, 15.0, 4.0])


def theta_to_internal(theta: Any) -> Any:
    """theta with astropy Quantities as the plain (12,) float array in :data:`PARAMETER_UNITS`.

    * a dict {name: value}: keys from :data:`PARAMETER_NAMES` (unknown keys raise
      :class:`~jaxhalo.simulation.errors.SimulatorError`), missing ones :data:`FIDUCIAL_THETA`;
    * a list / tuple of 12 entries holding Quantities: each converted to its parameter's unit;
    * anything else (a NumPy / JAX array, a tracer, a list of numbers): returned unchanged.

    Values without a unit are taken in :data:`PARAMETER_UNITS`; a Quantity of the wrong dimension
    raises ``astropy.units.UnitConversionError`` naming the parameter. One Quantity for the whole
    vector cannot hold its mixed units and raises the same error.
    """
    if isinstance(theta, Mapping):
        unknown = set(theta) - set(PARAMETER_NAMES)
        if unknown:
            raise SimulatorError(f"unknown parameter(s) {sorted(unknown)}; known: {PARAMETER_NAMES}")
        return np.array([float(to_internal(theta[n], PARAMETER_ASTROPY_UNITS[i], n)) if n in theta
                         else FIDUCIAL_THETA[i] for i, n in enumerate(PARAMETER_NAMES)])
    if is_quantity(theta):
        import astropy.units as u  # deferred: astropy loads only when a Quantity was given

        raise u.UnitConversionError(
            f"theta: one Quantity (unit {theta.unit}) cannot hold the 12 parameters' mixed units "
            f"{PARAMETER_UNITS}; pass a dict {{name: Quantity}} or a sequence of 12 entries"
        )
    if isinstance(theta, (list, tuple)) and any(is_quantity(v) for v in theta):
        if len(theta) != len(PARAMETER_NAMES):
            raise SimulatorError(f"theta must have {len(PARAMETER_NAMES)} entries in the order {PARAMETER_NAMES}, "
                                 f"got {len(theta)}")
        return np.array([float(to_internal(v, PARAMETER_ASTROPY_UNITS[i], PARAMETER_NAMES[i]))
                         for i, v in enumerate(theta)])
    return theta
