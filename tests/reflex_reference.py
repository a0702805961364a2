"""Test helpers: the YPP24 peer file's layout T and a star-by-star NumPy implementation of REFLEX_MODEL.md."""

from __future__ import annotations

import numpy as np

from jaxhalo.catalog.structure import StarCatalog

YPP24_50 = "reflexcalc/processed_real/sgrtests/KGiant_YPP24sgr_50+.txt"


def load_layout_t(path) -> np.ndarray:
    """The reflexcalc fitting input: quantities x stars, read transposed to (N, 17+)."""
    return np.loadtxt(path).T


def catalog_from_layout_t(a: np.ndarray) -> StarCatalog:
    return StarCatalog(
        l=np.radians(a[:, 6]), b=np.radians(a[:, 7]), distance=a[:, 8], distance_err=a[:, 12],
        v_los=a[:, 9], v_los_err=a[:, 13], pm_l=a[:, 10], pm_b=a[:, 11],
        pm_l_err=a[:, 14], pm_b_err=a[:, 15], pm_corr=a[:, 16], xyz=a[:, 0:3],
    )


def numpy_reference_loglike(a: np.ndarray, theta: np.ndarray, quirk: bool = True, k: float = 4.74057) -> np.ndarray:
    """REFLEX_MODEL.md §1–5 written out star by star in plain NumPy (reference-code conventions).

    theta in reflexcalc order: (l_a, s_a, V, vr, vphi, vtheta, tau_los, tau_l, tau_b).
    Returns the per-star log-likelihood.
    """
    la, sa, V, vr, vphi, vth, tlos, tl, tb = theta
    rsun = np.array([-8.3, 0.0, 0.02])
    vsun = np.array([11.1, 244.24, 7.25])
    ca = np.sqrt(1 - sa**2)
    n = np.array([ca * np.cos(la), ca * np.sin(la), sa])
    out = np.empty(len(a))
    for i, row in enumerate(a):
        r = row[0:3]
        rr = np.linalg.norm(r)
        phi = np.arctan2(r[1], r[0])
        th = np.arccos(r[2] / rr)
        er = np.array([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi), np.cos(th)])
        ephi = np.array([-np.sin(phi), np.cos(phi), 0.0])
        eth = np.array([np.cos(th) * np.cos(phi), np.cos(th) * np.sin(phi), -np.sin(th)])
        vmean = -V * n + vr * er + vphi * ephi + vth * eth
        uu = vmean - vsun
        h = r - rsun
        D = np.linalg.norm(h)
        ell = np.arctan2(h[1], h[0])
        beta = np.arcsin(h[2] / D)
        elos = h / D
        el = np.array([-np.sin(ell), np.cos(ell), 0.0])
        eb = np.array([-np.sin(beta) * np.cos(ell), -np.sin(beta) * np.sin(ell), np.cos(beta)])
        Dp = np.sqrt(D**2 + ell**2 + (np.pi / 2 - beta) ** 2) if quirk else D
        vlos_m = uu @ elos
        mul_m = (uu @ el) / (k * Dp)
        mub_m = (uu @ eb) / (k * Dp)
        d, v, ml, mb, ed, ev, eml, emb, rho = row[[8, 9, 10, 11, 12, 13, 14, 15, 16]]
        S2 = ev**2 + 1 / tlos
        lpv = -0.5 * np.log(2 * np.pi * S2) - (v - vlos_m) ** 2 / (2 * S2)
        f = k * d
        C = np.array(
            [
                [eml**2 + ed**2 * ml**2 / d**2 + 1 / (tl * f**2), rho * eml * emb],
                [rho * eml * emb, emb**2 + ed**2 * mb**2 / d**2 + 1 / (tb * f**2)],
            ]
        )
        delta = np.array([ml - mul_m, mb - mub_m])
        lpm = -0.5 * np.log((2 * np.pi) ** 2 * np.linalg.det(C)) - 0.5 * delta @ np.linalg.solve(C, delta)
        out[i] = lpv + lpm
    return out


