"""The Brooks et al. (2025) §4.1 closed loop: simulate their rigid MW-LMC system, select, fit the reflex motion.

Brooks et al. (2025, "A simulation based inference approach to the dynamics of the MW-LMC system --
validation", ../shared/papers/brooks2025_sbi_rigid_sims_validation.txt) quote for their §4.1 rigid
simulation "the MW reflex parameters as measured from the stellar halo": v_travel = 64.5 km/s,
(l_apex, b_apex) = (39.1 deg, -67.8 deg). This script rebuilds that simulation with
:mod:`jaxhalo.simulation.brooks` and measures the same quantities:

1. **Simulate** with every setting the paper lists: M200 = 9.1e11 Msun with c200 = 14.5 fixed, a
   Hernquist LMC of 2.3e11 Msun with a = 18.9 kpc, lambda_DF = 0.7 (ln Lambda = ln(100 kpc / 1.6 a),
   sigma = 120 km/s), the LMC today at x = (-1.1, -28.0, -21.5) kpc, v = (-87.1, -198.9, 135.4) km/s
   (Galactocentric), the Sun of §2 (8.3 kpc, (11.1, 244.24, 7.24) km/s), 4,500 halo tracers from a
   constant-beta DF (beta0 = 0.76) for a Dehnen tracer (inner slope 1, outer 4, r_s = 11.5 kpc) in the
   NFW halo (§2.2), sampled 2.2 Gyr ago and integrated to today in the moving MW + LMC (1 Myr leapfrog).
2. **Select** as the paper describes: its §2.2 does not state a cut for the rigid haloes; its Fig. 1
   map shows "all stellar halo particles beyond 50 kpc" and §4.2 applies "the same particle selection
   criteria as in Sec. 2.2 ... stars beyond 50 kpc". The baseline is therefore r_gal > 50 kpc over the
   whole sky, with exact (noise-free) observables as for a simulated halo; the other readings
   (all particles, the DESI footprint, 30-160 kpc, ...) are hypotheses below.
3. **Fit** the 9-parameter reflex model with the Cartesian travel vector (v_x, v_y, v_z) as the paper
   does (:class:`jaxhalo.ReflexModel` ("constant", "cartesian")): maximum likelihood, then NUTS for
   the posterior (no clipping: the paper's rigid haloes have no outliers to clip).
4. **Compare** with the simulation's own true reflex motion -- the MW centre's velocity relative to
   the selected halo, -<v> of the selected particles' true MW-centred velocities -- and with the
   published numbers.
5. **Hypotheses** (full mode; ML fits): each reading of the paper that could move the answer --
   selection, footprint, apex convention (the paper's eqs. 10-11 as printed), DF potential, c200,
   observational errors, sampling noise (other seeds) -- with its numbers.

Writes ``<out>/brooks2025_closed_loop.json`` (and nothing else, nowhere else)::

    python examples/brooks2025_closed_loop.py OUT_DIR            # paper size, ~6 min on 2 busy cores
    python examples/brooks2025_closed_loop.py OUT_DIR --small    # 1,500 tracers, no hypotheses (~1.5 min)

``JAXHALO_EXAMPLE_SMALL=1`` in the environment is the same as ``--small``. The benchmark
``benchmarks/bench_brooks2025_closed_loop.py`` runs this and records the result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxhalo.dynamics.mwlmc import ICRS_TO_GALACTIC  # noqa: E402
from jaxhalo.frames import SolarParameters  # noqa: E402
from jaxhalo.inference.ml import fit_map  # noqa: E402
from jaxhalo.inference.priors import PriorSet  # noqa: E402
from jaxhalo.inference.reflex_fit import fit_reflex  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.simulation import brooks as S  # noqa: E402
from jaxhalo.simulation.observe import observe  # noqa: E402

#: Brooks et al. (2025) §4.1 published reflex parameters of their rigid simulation.
PUBLISHED = {"v_travel": 64.5, "apex_l": 39.1, "apex_b": -67.8}
#: The LMC's present-day Galactocentric phase space of §4.1: (x, y, z) kpc, (v_x, v_y, v_z) km/s.
LMC_PHASE_SPACE = (-1.1, -28.0, -21.5, -87.1, -198.9, 135.4)
#: The paper's simulation parameters (§4.1; gamma = 4: the Dehnen profile with inner slope 1).
PAPER_PARAMETERS = {"log10_m200": math.log10(9.1e11), "m_lmc": 23e10, "log10_lambda_df": math.log10(0.7),
                    "beta0": 0.76, "r_dens": 11.5, "gamma": 4.0}
SMALL_ENV = "JAXHALO_EXAMPLE_SMALL"
SPEC = ReflexModel("constant", "cartesian")
#: Radius (kpc) at which the travel vector is reported (the constant model: the same at every radius).
R_REPORT = 50.0


def paper_theta() -> np.ndarray:
    """theta (12,) of the §4.1 simulation (the LMC observables are unused: its phase space is given)."""
    return S.theta_from_dict(PAPER_PARAMETERS)


def paper_config(n_particles: int = 4500, dt: float = 1.0, **changes) -> S.SimConfig:
    """The §2 / §4.1 simulation settings as a :class:`~jaxhalo.simulation.brooks.SimConfig`."""
    kw = {"n_particles": n_particles, "dt": dt, "t_back": 2200.0, "c200": 14.5, "lmc_scale_radius": 18.9,
          "lmc_phase_space": LMC_PHASE_SPACE, "df_potential": "nfw", "solar": "brooks", "friction_sigma": 120.0}
    kw.update(changes)
    return S.SimConfig(**kw)


def desi_like_footprint(l, b):
    """An approximate DESI footprint (an assumption: Byström et al. 2024 eq. 11 is not in the papers):
    Dec > -20 deg and |b| > 20 deg. l, b in radians; returns a bool array."""
    g = jnp.stack([jnp.cos(b) * jnp.cos(l), jnp.cos(b) * jnp.sin(l), jnp.sin(b)], axis=-1)
    sin_dec = g @ jnp.asarray(ICRS_TO_GALACTIC)[:, 2]  # ICRS z = (M^T g)_z
    return (sin_dec > math.sin(math.radians(-20.0))) & (jnp.abs(b) > math.radians(20.0))


#: Selections: name -> (r_gal window kpc, heliocentric distance window kpc, footprint).
SELECTIONS = {
    "r_gal>50": ((50.0, 1e4), None, None),
    "all": (None, None, None),
    "r_gal>50+desi": ((50.0, 1e4), None, desi_like_footprint),
    "r_gal_30-160": ((30.0, 160.0), None, None),
    "d_helio>50": (None, (50.0, 1e4), None),
    "r_gal_50-100": ((50.0, 100.0), None, None),
    "r_gal>100": ((100.0, 1e4), None, None),
}
BASELINE = "r_gal>50"
#: Per-star errors of the "with errors" hypothesis (jaxhalo.simulation.observe defaults).
ERRORS = {"distance_frac_err": 0.10, "v_los_err": 2.0, "pm_l_err": 0.15, "pm_b_err": 0.15}


def apex(vec) -> dict:
    """Travel speed (km/s) and apex (deg) of a Cartesian travel vector (..., 3), Galactic convention
    (l = atan2(v_y, v_x) in [0, 360), b = arcsin(v_z / v))."""
    vec = np.asarray(vec, float)
    V = np.linalg.norm(vec, axis=-1)
    return {"v_travel": V, "apex_l": np.degrees(np.arctan2(vec[..., 1], vec[..., 0])) % 360.0,
            "apex_b": np.degrees(np.arcsin(vec[..., 2] / V))}


def apex_eq10_11(vec) -> dict:
    """The apex as Brooks et al. (2025) eqs. 10-11 print it: l = arccos(v_z / v), b = arctan(v_y / v_x) (deg)."""
    vec = np.asarray(vec, float)
    V = np.linalg.norm(vec, axis=-1)
    return {"v_travel": V, "apex_l": np.degrees(np.arccos(vec[..., 2] / V)),
            "apex_b": np.degrees(np.arctan(vec[..., 1] / vec[..., 0]))}


def angle_deg(a, b) -> float:
    """Angle (deg) between two 3-vectors."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1.0, 1.0))))


def _published_vector() -> np.ndarray:
    l, b = math.radians(PUBLISHED["apex_l"]), math.radians(PUBLISHED["apex_b"])
    return PUBLISHED["v_travel"] * np.array([math.cos(b) * math.cos(l), math.cos(b) * math.sin(l), math.sin(b)])


def simulate_snapshot(config: S.SimConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run the simulation; returns MW-centred positions (n, 3) kpc, velocities (n, 3) km/s and a few
    facts about the MW-LMC orbit (the MW centre's inertial velocity change over t_back, km/s)."""
    sim = S.simulate(paper_theta(), jax.random.PRNGKey(seed), config)
    tr = sim.track
    dv = np.asarray(tr.mw_velocity(0.0)) - np.asarray(tr.mw_velocity(-config.t_back))
    lmc_back = np.asarray(tr.lmc_position(-config.t_back)) - np.asarray(tr.mw_position(-config.t_back))
    t = np.asarray(tr.times)
    sep = np.linalg.norm(np.asarray(tr.lmc_position(t)) - np.asarray(tr.mw_position(t)), axis=-1)
    inner = np.flatnonzero((sep[1:-1] < sep[:-2]) & (sep[1:-1] < sep[2:])) + 1  # pericentres before today
    outer = np.flatnonzero((sep[1:-1] > sep[:-2]) & (sep[1:-1] > sep[2:])) + 1  # apocentres
    info = {"mw_velocity_change_kms": dv.tolist(), "lmc_distance_at_t_back_kpc": float(np.linalg.norm(lmc_back)),
            "lmc_pericentres_myr_kpc": [[float(t[i]), float(sep[i])] for i in inner],
            "lmc_apocentres_myr_kpc": [[float(t[i]), float(sep[i])] for i in outer],
            "nfw_r_s_kpc": float(sim.mw.halo.r_s)}
    return np.asarray(sim.snapshot.positions), np.asarray(sim.snapshot.velocities), info


def select(x, v, selection: str, errors: bool = False, seed: int = 1):
    """Mock-observe the snapshot from the Brooks Sun with one of :data:`SELECTIONS`: returns the
    :class:`~jaxhalo.likelihoods.reflex.ReflexData` of the selected stars (zero errors unless ``errors``)
    and the boolean selection mask (n,)."""
    r_gal, d_helio, footprint = SELECTIONS[selection]
    err = ERRORS if errors else {k: 0.0 for k in ERRORS}
    solar = SolarParameters.brooks()
    obs = observe(jax.random.PRNGKey(seed), x, v, solar, r_gal_range=r_gal, distance_range=d_helio,
                  footprint=footprint, add_errors=errors, **err)
    m = np.asarray(obs.selected)
    col = [np.asarray(getattr(obs, n), float)[m] for n in ("l", "b", "distance", "distance_err", "v_los", "v_los_err",
                                                          "pm_l", "pm_b", "pm_l_err", "pm_b_err", "pm_corr")]
    return ReflexData.from_arrays(*col, solar=solar), m


def true_travel(v: np.ndarray, mask: np.ndarray) -> dict:
    """The simulation's true reflex: the MW centre's velocity relative to the selected halo particles,
    -<v> (km/s), with the standard error of each component and, propagated, of v_travel."""
    vs = v[mask]
    vec = -vs.mean(axis=0)
    se = vs.std(axis=0, ddof=1) / math.sqrt(len(vs))
    V = float(np.linalg.norm(vec))
    return {"vector": vec.tolist(), "vector_se": se.tolist(), "v_travel_se": float(np.sqrt(np.sum((vec / V) ** 2 * se**2))),
            **{k: float(val) for k, val in apex(vec).items()}, "n": int(mask.sum())}


def ml_travel(data: ReflexData, seed: int = 2) -> dict:
    """Maximum-likelihood travel vector (km/s) and the other ML parameters."""
    p = fit_map(data, SPEC, PriorSet(), jax.random.PRNGKey(seed))
    vec = np.asarray(SPEC.travel_at_radius(p, jnp.asarray(R_REPORT)), float)
    return {"vector": vec.tolist(), **{k: float(val) for k, val in apex(vec).items()},
            "params": {n: float(p[n]) for n in SPEC.param_names}}


def _quantiles(a) -> dict:
    q16, q50, q84 = np.percentile(np.asarray(a).ravel(), [16, 50, 84])
    return {"median": float(q50), "q16": float(q16), "q84": float(q84)}


def nuts_travel(data: ReflexData, chains: int, warmup: int, samples: int, seed: int = 3) -> dict:
    """NUTS posterior (no clipping) of the travel speed, apex and vector: median and 16-84 % interval."""
    fit = fit_reflex(data, SPEC, PriorSet(), key=jax.random.PRNGKey(seed), clip=False, num_chains=chains,
                     num_warmup=warmup, num_samples=samples, radii=(R_REPORT,), progress_bar=False, verbose=False,
                     pointwise=False)
    vec = np.stack([fit.samples[n] for n in ("v_x", "v_y", "v_z")], axis=-1).reshape(-1, 3)
    a = apex(vec)
    mean_vec = vec.mean(axis=0)
    spread = np.array([angle_deg(s, mean_vec) for s in vec])
    return {"v_travel": _quantiles(a["v_travel"]), "apex_l": _quantiles(a["apex_l"]), "apex_b": _quantiles(a["apex_b"]),
            "vector_mean": mean_vec.tolist(), "vector_sd": vec.std(axis=0, ddof=1).tolist(),
            "apex_angle_68_deg": float(np.percentile(spread, 68)),
            "max_r_hat": float(fit.max_r_hat), "divergences": int(fit.n_divergent),
            "chains": chains, "warmup": warmup, "samples": samples, "timings_s": fit.timings}


def _closest_flip(vec) -> tuple[dict, None, str]:
    """Of the 8 axis-sign flips of ``vec`` in both conventions (:func:`apex`, :func:`apex_eq10_11`), the one whose
    (l, b) is closest to the published apex (largest of |dl|, |db|, deg)."""
    best = None
    for sx in (1, -1):
        for sy in (1, -1):
            for sz in (1, -1):
                u = np.asarray(vec, float) * np.array([sx, sy, sz])
                for name, fn in (("galactic", apex), ("eqs10-11", apex_eq10_11)):
                    a = fn(u)
                    dl = abs((float(a["apex_l"]) - PUBLISHED["apex_l"] + 180.0) % 360.0 - 180.0)
                    d = max(dl, abs(float(a["apex_b"]) - PUBLISHED["apex_b"]))
                    if best is None or d < best[0]:
                        best = (d, {k: float(val) for k, val in a.items()}, f"signs ({sx:+d}, {sy:+d}, {sz:+d}), {name}")
    return best[1], None, f"{best[2]}: max(|dl|, |db|) = {best[0]:.1f} deg"


def _row(hid: str, what: str, fit: dict, truth: dict | None = None, note: str = "") -> dict:
    pub = _published_vector()
    row = {"id": hid, "hypothesis": what, "v_travel": round(fit["v_travel"], 2), "apex_l": round(fit["apex_l"], 2),
           "apex_b": round(fit["apex_b"], 2)}
    if "vector" in fit:
        row["angle_to_published_deg"] = round(angle_deg(fit["vector"], pub), 2)
    if truth is not None:
        row["truth"] = {k: round(truth[k], 2) for k in ("v_travel", "apex_l", "apex_b")}
        row["n_stars"] = truth["n"]
    if note:
        row["note"] = note
    return row


def hypotheses(x, v, info, config: S.SimConfig, base_fit: dict, seeds=(1, 2, 3)) -> list[dict]:
    """ML fits of every alternative reading of the paper (module docstring, step 5)."""
    rows = [_row("H0", f"baseline: paper settings, {BASELINE}, all-sky, exact observables", base_fit,
                 true_travel(v, select(x, v, BASELINE)[1]))]
    k = 1
    for sel in [s for s in SELECTIONS if s != BASELINE]:
        data, mask = select(x, v, sel)
        rows.append(_row(f"H{k}", f"selection {sel}", ml_travel(data), true_travel(v, mask)))
        k += 1
    eq = apex_eq10_11(base_fit["vector"])
    rows.append(_row(f"H{k}", "apex convention of eqs. 10-11 as printed (l = arccos(v_z/v), b = arctan(v_y/v_x)) "
                     "on the baseline travel vector", {**{kk: float(vv) for kk, vv in eq.items()}}))
    k += 1
    eq = apex_eq10_11(-np.asarray(base_fit["vector"]))
    rows.append(_row(f"H{k}", "eqs. 10-11 on the reflex (halo) vector -v_travel", {kk: float(vv) for kk, vv in eq.items()}))
    k += 1
    rows.append(_row(f"H{k}", "apex of the reflex (halo) vector -v_travel, Galactic convention",
                     {kk: float(vv) for kk, vv in apex(-np.asarray(base_fit["vector"])).items()}))
    k += 1
    rows.append(_row(f"H{k}", "axis-sign scan: the 8 sign flips of (v_x, v_y, v_z) of the baseline vector in both apex "
                     "conventions; the combination closest to the published (l, b) (look-elsewhere: 16 tries)",
                     *_closest_flip(base_fit["vector"])))
    k += 1
    data, mask = select(x, v, BASELINE, errors=True)
    rows.append(_row(f"H{k}", "per-star errors (10% distance, 2 km/s, 0.15 mas/yr), baseline selection",
                     ml_travel(data), true_travel(v, mask)))
    k += 1
    dv = np.asarray(info["mw_velocity_change_kms"])
    rows.append(_row(f"H{k}", "MW centre's inertial velocity change over t_back (the reflex of a halo at rest)",
                     {"vector": dv.tolist(), **{kk: float(vv) for kk, vv in apex(dv).items()}}))
    k += 1
    variants = [("df_potential='mw' (DF in the spherically averaged MW, as 2026)", {"df_potential": "mw"}),
                ("c200 solved for v_c(R_sun) = 235 km/s instead of 14.5", {"c200": None})]
    for what, change in variants:
        cfg = paper_config(config.n_particles, config.dt, **change)
        xs, vs, inf = simulate_snapshot(cfg, seed=0)
        data, mask = select(xs, vs, BASELINE)
        # same M200, so the same r200: c200 scales as 1 / r_s
        note = f"c200 = {config.c200 * info['nfw_r_s_kpc'] / inf['nfw_r_s_kpc']:.3g}"
        rows.append(_row(f"H{k}", what, ml_travel(data), true_travel(vs, mask), note))
        k += 1
    for seed in seeds:
        xs, vs, _ = simulate_snapshot(config, seed=seed)
        data, mask = select(xs, vs, BASELINE)
        rows.append(_row(f"H{k}", f"sampling noise: tracer seed {seed}", ml_travel(data), true_travel(vs, mask)))
        k += 1
    return rows


def run(out_dir: str | Path, small: bool = False, n_particles: int | None = None, dt: float | None = None,
        seed: int = 0, chains: int | None = None, warmup: int | None = None, samples: int | None = None,
        with_hypotheses: bool | None = None) -> dict:
    """The closed loop (module docstring); writes ``<out_dir>/brooks2025_closed_loop.json`` and returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_particles = n_particles or (1500 if small else 4500)
    dt = dt or (2.0 if small else 1.0)
    chains, warmup, samples = chains or 2, warmup or (300 if small else 500), samples or (300 if small else 1000)
    with_hypotheses = (not small) if with_hypotheses is None else with_hypotheses
    config = paper_config(n_particles, dt)
    timings = {}

    t0 = time.perf_counter()
    x, v, info = simulate_snapshot(config, seed)
    timings["simulate_s"] = time.perf_counter() - t0
    data, mask = select(x, v, BASELINE)
    truth = true_travel(v, mask)
    t0 = time.perf_counter()
    ml = ml_travel(data)
    timings["ml_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    post = nuts_travel(data, chains, warmup, samples)
    timings["nuts_s"] = time.perf_counter() - t0

    sd = np.asarray(post["vector_sd"])
    se = np.asarray(truth["vector_se"])
    diff = np.asarray(post["vector_mean"]) - np.asarray(truth["vector"])
    result = {
        "settings": {"paper_parameters": PAPER_PARAMETERS, "lmc_phase_space": LMC_PHASE_SPACE, "c200": config.c200,
                     "lmc_scale_radius_kpc": config.lmc_scale_radius, "df_potential": config.df_potential,
                     "t_back_myr": config.t_back, "dt_myr": config.dt, "n_particles": config.n_particles,
                     "solar": "brooks (8.3 kpc, (11.1, 244.24, 7.24) km/s)", "selection": BASELINE,
                     "observables": "exact (noise-free), zero reported errors", "model": "constant / cartesian, 9 parameters",
                     "seed": seed, "small": small},
        "published": PUBLISHED,
        "truth_minus_mean_v": truth,
        "ml": ml,
        "nuts": post,
        "fit_minus_truth": {"vector_kms": diff.tolist(), "z": (diff / sd).tolist(),
                            "v_travel_kms": post["v_travel"]["median"] - truth["v_travel"],
                            "angle_deg": angle_deg(post["vector_mean"], truth["vector"]),
                            "note": "the truth -<v> and the fit use the same particles, so their noise is shared: "
                                    "z = difference / posterior sd overstates nothing"},
        "fit_minus_published": {"v_travel_kms": post["v_travel"]["median"] - PUBLISHED["v_travel"],
                                "angle_deg": angle_deg(post["vector_mean"], _published_vector()),
                                "v_travel_z": (post["v_travel"]["median"] - PUBLISHED["v_travel"])
                                / (0.5 * (post["v_travel"]["q84"] - post["v_travel"]["q16"]))},
        "orbit": info,
        "mock_sizes": {"n_selected": int(mask.sum())},
        "truth_standard_error_kms": se.tolist(),
    }
    if with_hypotheses:
        t0 = time.perf_counter()
        result["hypotheses"] = hypotheses(x, v, info, config, ml)
        timings["hypotheses_s"] = time.perf_counter() - t0
    result["timings_s"] = timings
    (out / "brooks2025_closed_loop.json").write_text(json.dumps(result, indent=2, default=float))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help="folder for brooks2025_closed_loop.json (created; nothing is written elsewhere)")
    ap.add_argument("--small", action="store_true", default=os.environ.get(SMALL_ENV, "") not in ("", "0"),
                    help=f"1,500 tracers, 2 Myr steps, short NUTS, no hypotheses (also ${SMALL_ENV}=1)")
    ap.add_argument("--n-particles", type=int, default=None)
    ap.add_argument("--dt", type=float, default=None, help="leapfrog step (Myr)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hypotheses", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.out_dir, small=args.small, n_particles=args.n_particles, dt=args.dt, seed=args.seed,
              with_hypotheses=False if args.no_hypotheses else None)
    p, t = res["nuts"], res["truth_minus_mean_v"]
    print(f"fit   v_travel = {p['v_travel']['median']:.1f} [{p['v_travel']['q16']:.1f}, {p['v_travel']['q84']:.1f}] km/s, "
          f"apex (l, b) = ({p['apex_l']['median']:.1f}, {p['apex_b']['median']:.1f}) deg")
    print(f"truth v_travel = {t['v_travel']:.1f} +- {t['v_travel_se']:.1f} km/s, apex ({t['apex_l']:.1f}, {t['apex_b']:.1f}) deg "
          f"(-<v> of {t['n']} selected particles)")
    print(f"paper v_travel = {PUBLISHED['v_travel']} km/s, apex ({PUBLISHED['apex_l']}, {PUBLISHED['apex_b']}) deg")
    for row in res.get("hypotheses", []):
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
