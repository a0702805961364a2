"""Independent reference for the exact exponential sech^2 disc: nested scipy ``quad`` over rings.

Not the Hankel transform that built ``jaxhalo/data/exp_disc_table.npz``: here the disc is summed as
rings (radius a, height z'), with scipy's complete elliptic integrals, the outer integral over a split at
the point's R and the inner one (in u = tanh(z' / 2h), zeta dz' = du / 2) at its z, where the ring
kernel is singular (log for the potential, 1/distance for the force; integrable, and QUADPACK's
extrapolation handles the end-point singularities).

Run as a script to regenerate tests/dynamics/data/exact_disc_ring_reference.json (about 3 minutes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import integrate, special

G = 4.300917270036279e-6  # jaxhalo.constants.G, (km/s)^2 kpc / Msun
M, RD, H = 5e10, 3.0, 0.4
DATA = Path(__file__).resolve().parent / "data" / "exact_disc_ring_reference.json"

#: (R, z) in kpc: inside the disc (z = 0 ... 1 kpc at R = 0.5 ... 20), off it, and out to 300 kpc.
POINTS = [(R, z) for R in (0.5, 2.0, 5.0, 8.122, 12.0, 20.0) for z in (0.0, 0.1, 0.4, 1.0)] + [
    (0.0, 0.2), (0.0, 5.0), (3.0, 3.0), (8.122, -0.4), (30.0, 5.0), (50.0, 8.0), (20.0, 30.0), (0.5, 25.0),
    (100.0, 0.0), (150.0, 2.0), (60.0, 60.0), (250.0, 40.0), (10.0, 300.0), (300.0, 0.0), (300.0, 300.0)]


def ring_disc(R: float, z: float, epsrel: float = 1e-10) -> tuple[float, float, float]:
    """(Phi [(km/s)^2], F_R, F_z [(km/s)^2/kpc]) of the disc (M, R_d, h above) at cylindrical (R, z) kpc.

    Unit ring of radius a at height z': Phi = -(2/pi) K(m) / D, D^2 = (R + a)^2 + Z^2, Z = z - z',
    m = 4 R a / D^2, d^2 = (R - a)^2 + Z^2; F_R = (2 / pi D) [(E D^2/d^2 - K)(a^2 - R^2 + Z^2)/(2 R D^2)
    - K (R + a) / D^2], F_z = -(2/pi) Z E / (D d^2)."""
    beta = H / RD
    x, y = R / RD, z / RD
    u0 = np.tanh(y / (2 * beta))

    def ring(a, zp, c):
        Z = y - zp
        D2 = (x + a) ** 2 + Z * Z
        d2 = (x - a) ** 2 + Z * Z
        m = 4 * x * a / D2
        K = special.ellipk(m)
        if c == 0:
            return -2 / np.pi * K / np.sqrt(D2)
        E = special.ellipe(m)
        if c == 1:
            if x == 0:
                return 0.0
            return 2 / (np.pi * np.sqrt(D2)) * ((E * D2 / d2 - K) * (a * a - x * x + Z * Z) / (2 * x * D2) - K * (x + a) / D2)
        return -2 / np.pi * Z * E / (np.sqrt(D2) * d2)

    def inner(a, c):
        f = lambda u: 0.5 * ring(a, 2 * beta * np.arctanh(u), c)  # noqa: E731
        pts = [-1.0, u0, 1.0] if -1 < u0 < 1 else [-1.0, 1.0]
        return sum(integrate.quad(f, lo, hi, epsabs=0, epsrel=epsrel, limit=400)[0] for lo, hi in zip(pts[:-1], pts[1:]))

    def outer(c):
        f = lambda a: a * np.exp(-a) * inner(a, c)  # noqa: E731
        pts = [0.0, x, 60.0] if 0 < x < 60 else [0.0, 60.0]
        return sum(integrate.quad(f, lo, hi, epsabs=0, epsrel=epsrel, limit=400)[0] for lo, hi in zip(pts[:-1], pts[1:]))

    s = G * M / RD
    return s * outer(0), s / RD * outer(1), s / RD * outer(2)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    rows = []
    for R, z in POINTS:
        rows.append([R, z, *ring_disc(R, z)])
        print(rows[-1], flush=True)
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps({"source": "tests/dynamics/disc_ring_reference.py (scipy ring quadrature, epsrel 1e-10)",
                                "columns": ["R_kpc", "z_kpc", "phi_km2_s2", "F_R", "F_z"], "rows": rows}, indent=1))
    sys.exit(0)
