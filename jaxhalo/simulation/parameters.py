"""The 12 parameters of the Brooks et al. (2026) simulator: names, units, Table 1 priors, fiducial values.

NumPy only (no JAX), so that the command line can build its options without loading the simulator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PARAMETER_NAMES", "PARAMETER_UNITS", "PARAMETER_DESCRIPTIONS", "PRIOR_TABLE1", "FIDUCIAL_THETA"]

#: Names of the 12 entries of theta (Brooks et al. 2026 Table 1 order).
PARAMETER_NAMES: tuple[str, ...] = (
    "log10_m200", "m_lmc", "log10_lambda_df", "ra_lmc", "dec_lmc", "d_lmc",
    "vlos_lmc", "pmra_lmc", "pmdec_lmc", "beta0", "r_dens", "gamma",
)
#: Units of the entries of theta.
PARAMETER_UNITS: tuple[str, ...] = (
    "log10 Msun", "Msun", "", "deg", "deg", "kpc", "km/s", "mas/yr", "mas/yr", "", "kpc", "",
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
