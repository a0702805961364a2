"""Experiment: the package's NUTS reflex fit on mocks whose true apex sits within 2 deg of a Galactic pole.

The (apex_l, apex_sinb) parameterisation is singular at the poles: l is undefined there and
d cos b / d sin b diverges (issue 14, item 5; :data:`jaxhalo.frames.APEX_COS_MIN` bounds it). A
posterior that straddles a pole is where divergences and a biased apex would show. For each mock
(constant / galactic model, ``N`` stars from :func:`jaxhalo.mocks.reflex.make_reflex_mock`, the
halo parameters of :func:`jaxhalo.mocks.reflex.default_truth`, the apex moved to within 2 deg of
a pole) :func:`jaxhalo.inference.reflex_fit.fit_reflex` runs ML + 5 rounds of 3-sigma clipping +
NUTS (Chandra priors, 4 chains). Recorded per mock: divergences, max R-hat, min bulk ESS, how
much of the posterior lies within 2 deg of the pole and how widely l spreads (the posterior does
cross the pole), and per quantity the posterior quantiles against the truth. The quantities
compared are those defined at the pole: V, the Cartesian travel vector (v_x, v_y, v_z), the mean
velocities and dispersions, and the apex as a direction (row ``apex_angle_deg``: the angle between
the truth and the posterior mean direction, against the distribution of the samples' angles from
that mean; its "quantile" is the credible level of the smallest cap around the mean that
contains the truth). apex_l itself is not compared: at the pole it is not identified.

``python -m benchmarks.bench_pole_apex_nuts [--quick]`` writes
``benchmarks/results/pole_apex_nuts_<device>.json``.
"""

from __future__ import annotations

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from benchmarks.common import write_results  # noqa: E402
from jaxhalo.frames import apex_vector  # noqa: E402
from jaxhalo.inference.priors import PriorSet  # noqa: E402
from jaxhalo.inference.reflex_fit import fit_reflex  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import default_truth, make_reflex_mock  # noqa: E402

#: (name, apex longitude deg, apex latitude deg, seed): 1.5 deg from the south pole, 1 deg from the north.
MOCKS = (("south", 56.0, -88.5, 11), ("north", 200.0, 89.0, 12))
N_STARS = 1500
V_TRAVEL = 40.0


def _travel(l, s, V):
    return np.asarray(V)[..., None] * np.asarray(apex_vector(np.asarray(l), np.asarray(s)))


def pole_mock_fit(name: str, lon_deg: float, lat_deg: float, seed: int, n: int = N_STARS, chains: int = 4,
                  warmup: int = 500, samples: int = 1000) -> tuple[dict, list[dict]]:
    """Fit one pole mock; returns (summary, per-quantity rows)."""
    spec = ReflexModel("constant", "galactic")
    truth = {**default_truth(spec), "v_travel": V_TRAVEL, "apex_l": float(np.radians(lon_deg)),
             "apex_sinb": float(np.sin(np.radians(lat_deg)))}
    cat, info = make_reflex_mock(jax.random.PRNGKey(seed), n, spec, truth=truth)
    data = ReflexData.from_catalog(cat)
    t0 = time.perf_counter()
    fit = fit_reflex(data, spec, PriorSet(), key=jax.random.PRNGKey(seed + 100), num_chains=chains,
                     num_warmup=warmup, num_samples=samples, radii=(100.0,), progress_bar=False, verbose=False)
    wall = time.perf_counter() - t0
    post = fit.idata.posterior
    draws = {k: np.asarray(post[k]).reshape(-1) for k in spec.param_names}
    vec = _travel(draws["apex_l"], draws["apex_sinb"], draws["v_travel"])  # (S, 3)
    t_vec = _travel(truth["apex_l"], truth["apex_sinb"], truth["v_travel"])
    n_hat = vec / np.linalg.norm(vec, axis=-1, keepdims=True)
    t_hat = t_vec / np.linalg.norm(t_vec)
    mean_dir = n_hat.mean(0) / np.linalg.norm(n_hat.mean(0))
    ang = np.degrees(np.arccos(np.clip(n_hat @ mean_dir, -1, 1)))
    t_ang = float(np.degrees(np.arccos(np.clip(t_hat @ mean_dir, -1, 1))))
    pole = np.array([0.0, 0.0, np.sign(lat_deg)])
    b_from_pole = np.degrees(np.arccos(np.clip(n_hat @ pole, -1, 1)))
    l_resultant = float(np.abs(np.mean(np.exp(1j * draws["apex_l"]))))  # 1: l concentrated; 0: spread round

    quantities = {"v_travel": (draws["v_travel"], truth["v_travel"])}
    for i, c in enumerate("xyz"):
        quantities[f"v_{c}"] = (vec[:, i], float(t_vec[i]))
    for k in ("vr", "vphi", "vtheta", "sigma_los", "sigma_l", "sigma_b"):
        quantities[k] = (draws[k], truth[k])
    rows = []
    for k, (x, t) in quantities.items():
        q = np.percentile(x, [2.5, 16, 50, 84, 97.5])
        frac = float(np.mean(x < t))
        rows.append({"mock": name, "quantity": k, "truth": float(t), "p2.5": q[0], "p16": q[1], "p50": q[2],
                     "p84": q[3], "p97.5": q[4], "truth_quantile": frac,
                     "in_68": bool(q[1] <= t <= q[3]), "in_95": bool(q[0] <= t <= q[4])})
    level = float(np.mean(ang < t_ang))
    a = np.percentile(ang, [68, 95])
    rows.append({"mock": name, "quantity": "apex_angle_deg", "truth": t_ang, "p50": float(np.median(ang)),
                 "p84": float(a[0]), "p97.5": float(a[1]), "truth_quantile": level,
                 "in_68": bool(level <= 0.68), "in_95": bool(level <= 0.95)})
    summary = {
        "mock": name, "truth_apex_l_deg": lon_deg, "truth_apex_b_deg": lat_deg, "truth_v_travel": V_TRAVEL,
        "n_stars": n, "n_used": int(np.sum(fit.weight > 0)), "chains": chains, "warmup": warmup, "draws": samples,
        "divergences": fit.n_divergent, "max_r_hat": fit.max_r_hat, "min_ess_bulk": fit.min_ess_bulk,
        "posterior_within_2deg_of_pole": float(np.mean(b_from_pole < 2.0)),
        "min_deg_from_pole": float(b_from_pole.min()), "apex_l_resultant_length": l_resultant,
        "apex_68_cap_deg": float(a[0]), "truth_deg_from_posterior_mean_apex": t_ang,
        "all_in_95": all(r["in_95"] for r in rows), "n_in_68": sum(r["in_68"] for r in rows), "n_quantities": len(rows),
        "wall_s": wall, **{f"{k}_s": v for k, v in fit.timings.items()},
    }
    return summary, rows


def run(quick: bool = False) -> tuple[list[dict], dict]:
    kw = dict(n=600, warmup=200, samples=300, chains=2) if quick else {}
    records, meta = [], {"model": "constant/galactic, Chandra priors, ML + 5x 3-sigma clipping + NUTS (fit_reflex)"}
    for name, lon, lat, seed in MOCKS:
        summary, rows = pole_mock_fit(name, lon, lat, seed, **kw)
        print(summary, flush=True)
        records.extend(rows)
        meta.update({f"{name}: {k}": v for k, v in summary.items() if k != "mock"})
    return records, meta


if __name__ == "__main__":
    records, meta = run(quick="--quick" in sys.argv)
    print(write_results("pole_apex_nuts", records, meta))
