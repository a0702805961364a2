"""Physical constants and unit conversions used throughout jaxhalo.

Internal units are kpc, km/s, Msun and Myr; angles are radians inside the
numerical code and degrees at the user-facing edges.
"""

from __future__ import annotations

import math

#: km/s per (kpc * mas/yr): v_t [km/s] = K_PM * d [kpc] * mu [mas/yr].
#: 1 au per Julian year in km/s, exactly as astropy converts it. The often quoted
#: 4.740470446 is this value rounded (they differ by 4e-9 relative).
K_PM: float = 4.740470463533349
#: The value of the same factor used by the reflexcalc / PP21 reference code.
K_PM_REFERENCE: float = 4.74057

#: Gravitational constant in kpc (km/s)^2 / Msun.
G: float = 4.300917270036279e-6

#: 1 km/s expressed in kpc/Myr.
KMS_TO_KPC_PER_MYR: float = 1.022712165045695e-3
#: 1 kpc/Myr expressed in km/s.
KPC_PER_MYR_TO_KMS: float = 1.0 / KMS_TO_KPC_PER_MYR
#: Gravitational constant in kpc^3 / (Msun Myr^2).
G_KPC_MYR: float = G * KMS_TO_KPC_PER_MYR**2

#: Hubble constant used by Brooks et al. for rho_crit, km/s/Mpc.
H0: float = 67.6
#: Critical density for H0 (Msun / kpc^3): 3 H^2 / (8 pi G).
RHO_CRIT: float = 3.0 * (H0 * 1e-3) ** 2 / (8.0 * math.pi * G)

DEG: float = math.pi / 180.0
