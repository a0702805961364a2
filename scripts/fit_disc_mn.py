"""Offline fit of a sum of three Miyamoto-Nagai discs to the Brooks et al. exponential disc.

The disc is rho(R, z) = Sigma0 exp(-R/R_d) sech^2(z / 2h) / (4h), Sigma0 = M / (2 pi R_d^2),
with R_d = 3 kpc and h = 0.4 kpc (h / R_d = 0.1333). Its exact forces are computed here by
Hankel-transform quadrature (Binney & Tremaine 2008 eq. 2.170 with a thick vertical profile):

    F_R(R, z) = -G M int_0^inf k J1(kR) I(k, z) / (1 + k^2 R_d^2)^{3/2} dk
    F_z(R, z) = +G M int_0^inf J0(kR) dI/dz(k, z) / (1 + k^2 R_d^2)^{3/2} dk
    I(k, z)   = int zeta(z') exp(-k |z - z'|) dz',   zeta = sech^2(z / 2h) / 4h,

and three MN discs (masses m_i, scales a_i, b_i; total mass fixed to M) are fitted by
scipy.optimize.least_squares to the relative force errors on a grid of 2 <= R <= 100 kpc,
0 <= z <= 8 kpc (in-plane points weighted double). The coefficients printed at the end
(m_i / M, a_i / R_d, b_i / h) are pasted into jaxhalo/potentials.py (``_MN3_COEFFS``).

Run: ``PYTHONPATH=. /work/venv/bin/python scripts/fit_disc_mn.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

G = 4.300917270036279e-6
M_DISC, R_D, H = 5e10, 3.0, 0.4

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


def _k_nodes(R: float, n_zeros: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights in k on the intervals between zeros of J1(kR) and J0(kR)."""
    z = np.sort(np.concatenate([[0.0], special.jn_zeros(1, n_zeros), special.jn_zeros(0, n_zeros)])) / R
    lo, hi = z[:-1], z[1:]
    k = 0.5 * (hi - lo)[:, None] * _GL_X[None, :] + 0.5 * (hi + lo)[:, None]
    w = 0.5 * (hi - lo)[:, None] * _GL_W[None, :]
    return k.ravel(), w.ravel()


def vertical_kernel(k: np.ndarray, z: float, h: float = H) -> tuple[np.ndarray, np.ndarray]:
    """I(k, z) and dI/dz for the sech^2(z/2h)/(4h) profile, by quadrature in t = |z - z'|."""
    if z == 0.0:
        s = 2.0 * h * k
        safe = np.where(s > 1e-8, s, 1.0)
        i0 = np.where(s > 1e-8, safe / 2 * (special.digamma((safe + 2) / 4) - special.digamma(safe / 4)) - 1, 1.0)
        return i0, np.zeros_like(k)
    # t = T x^4 concentrates nodes at small t where exp(-k t) is sharp for large k.
    x, w = np.polynomial.legendre.leggauss(600)
    x, w = 0.5 * (x + 1.0), 0.5 * w
    T = abs(z) + 60.0 * h
    t = T * x**4
    dt = 4.0 * T * x**3 * w
    zeta = lambda u: 1.0 / np.cosh(u / (2 * h)) ** 2 / (4 * h)  # noqa: E731
    e = np.exp(-np.outer(k, t))
    up, down = zeta(z + t), zeta(z - t)
    I = e @ ((up + down) * dt)
    dI = -k * (e @ ((down - up) * dt))
    return I, dI


def exact_disc_force(R: float, z: float, mass: float = M_DISC, Rd: float = R_D, h: float = H) -> tuple[float, float]:
    """(F_R, F_z) in (km/s)^2/kpc of the exponential disc at (R, z) kpc."""
    k, w = _k_nodes(R)
    I, dI = vertical_kernel(k, z, h)
    S = 1.0 / (1.0 + (k * Rd) ** 2) ** 1.5
    FR = -G * mass * np.sum(w * k * special.j1(k * R) * I * S)
    Fz = G * mass * np.sum(w * special.j0(k * R) * dI * S)
    return FR, Fz


def mn_force(params: np.ndarray, R: np.ndarray, z: np.ndarray, mass: float = M_DISC) -> tuple[np.ndarray, np.ndarray]:
    """Forces of the MN sum, params = (f1, f2, a1, a2, a3, b1, b2, b3) with f3 = 1 - f1 - f2 (units of M, R_d, h)."""
    f = np.array([params[0], params[1], 1.0 - params[0] - params[1]])
    a, b = params[2:5] * R_D, params[5:8] * H
    FR = np.zeros_like(R)
    Fz = np.zeros_like(R)
    for fi, ai, bi in zip(f, a, b):
        sb = np.sqrt(z**2 + bi**2)
        D = (R**2 + (ai + sb) ** 2) ** 1.5
        FR -= G * mass * fi * R / D
        Fz -= G * mass * fi * z * (ai + sb) / (sb * D)
    return FR, Fz


def main() -> None:
    Rs = np.geomspace(2.0, 100.0, 28)
    zs = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
    pts = [(R, z) for R in Rs for z in zs]
    ref = np.array([exact_disc_force(R, z) for R, z in pts])
    R = np.array([p[0] for p in pts])
    z = np.array([p[1] for p in pts])
    FR_ref, Fz_ref = ref[:, 0], ref[:, 1]
    Fmag = np.hypot(FR_ref, Fz_ref)
    wts = np.where(z == 0.0, 2.0, 1.0)

    def resid(p):
        FR, Fz = mn_force(p, R, z)
        return np.concatenate([wts * (FR - FR_ref) / Fmag, wts * (Fz - Fz_ref) / Fmag])

    best = None
    for p0 in ([2.0, -1.5, 1.0, 2.0, 4.0, 1.0, 1.0, 1.0], [1.9, -1.2, 0.7, 1.5, 3.0, 0.8, 0.8, 0.8],
               [0.5, 0.4, 0.5, 1.5, 4.0, 0.7, 0.7, 0.7]):
        lb = [-10, -10, 0.01, 0.01, 0.01, 0.05, 0.05, 0.05]
        ub = [10, 10, 20, 20, 20, 10, 10, 10]
        sol = optimize.least_squares(resid, p0, bounds=(lb, ub), x_scale="jac", xtol=1e-14, ftol=1e-14)
        if best is None or sol.cost < best.cost:
            best = sol
    p = best.x
    FR, Fz = mn_force(p, R, z)
    rel = np.hypot(FR - FR_ref, Fz - Fz_ref) / Fmag
    print("params (f1, f2, a1/Rd, a2/Rd, a3/Rd, b1/h, b2/h, b3/h):", repr(p))
    print("f3 =", 1 - p[0] - p[1])
    for Rv in Rs:
        m = R == Rv
        print(f"R={Rv:7.2f}  max rel force err over z: {rel[m].max():.2e}   in-plane F_R err: "
              f"{abs(FR[m & (z == 0)] - FR_ref[m & (z == 0)])[0] / abs(FR_ref[m & (z == 0)])[0]:.2e}")


if __name__ == "__main__":
    main()
