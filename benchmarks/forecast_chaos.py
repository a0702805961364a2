"""Where the Jacobian noise of ``jaxhalo forecast`` comes from: per-tracer tangents, windows, pericentres.

For one survey configuration (the reduced forecast of benchmarks/results/forecast_cpu2 by default) and K
common-random-number keys, every tracer's tangents d(l, b, r_gal, v_GSR, v_t,b)/d theta (12 directions,
forward mode through the whole simulator) are computed once per key, and pushed through

* the compact-support smooth summaries (:func:`jaxhalo.simulation.smooth_summaries.smooth_brooks_summary_vector`,
  the current ones) and
* the logistic summaries of the earlier version (:func:`logistic_summary_vector`, copied here for the
  comparison: edges sigmoid((r - e) / 1 kpc), quadrants sigmoid(sin l / 1 deg)),

so both Jacobians come from the same simulations. With C from ``n_covariance`` simulations at theta0 (both
summary sets from the same ones), it reports per parameter the Fisher information h J^T C^-1 J and the
fraction of it that is Monte Carlo noise of J (:func:`jaxhalo.sbi.fisher.jacobian_noise_fisher`), and per
tracer the largest tangent (in km/s or kpc per prior width of the parameter, so that directions compare),
whether it is inside the summaries' windows (weight > 0) and its present-day pericentre in the spherically
averaged MW potential of theta0 (from E and L; the LMC's pull is ignored).

Optionally (``--peri-cut``) the same is done with the tangents of tracers whose pericentre is below the cut
frozen (:class:`~jaxhalo.simulation.brooks.SimConfig` ``tangent_peri_min``).

Run: ``python -m benchmarks.forecast_chaos --n-stars 1000 --t-back 500 --dt 1 --df-r-min 5 --keys 8
--n-covariance 120 --out benchmarks/results/forecast_chaos/<name>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxhalo.dynamics.df import SphericalProfile  # noqa: E402
from jaxhalo.dynamics.potentials import spherical_average  # noqa: E402
from jaxhalo.sbi.fisher import hartlap_factor, jacobian_noise_fisher, screen_summaries  # noqa: E402
from jaxhalo.sbi.forecast import Survey, particles_for_survey, survey_edges  # noqa: E402
from jaxhalo.simulation import brooks as S  # noqa: E402
from jaxhalo.simulation.observe import MockObservation, observe  # noqa: E402
from jaxhalo.simulation.parameters import PARAMETER_NAMES, PRIOR_TABLE1  # noqa: E402
from jaxhalo.simulation.smooth_summaries import (  # noqa: E402
    SMOOTH_R_WIDTH,
    smooth_brooks_summary_vector,
    soft_bin_weights,
    weighted_moments,
)
from jaxhalo.simulation.summaries import BROOKS_VGSR_EDGES, BROOKS_VTB_EDGES  # noqa: E402

#: The observables the summaries use, in this order.
FIELDS = ("l", "b", "r_gal", "v_gsr", "v_tb")


def prior_widths() -> np.ndarray:
    """Width (12,) of each Table 1 prior (uniform: b - a; normal: 6 sd), in the parameters' units."""
    out = []
    for n in PARAMETER_NAMES:
        kind, a, b = PRIOR_TABLE1[n]
        out.append(b - a if kind == "uniform" else 6.0 * b)
    return np.array(out)


def logistic_summary_vector(obs: MockObservation, vgsr_edges, vtb_edges, r_width: float = 1.0,
                            angle_width: float = float(np.deg2rad(1.0))) -> jax.Array:
    """The earlier smooth summaries (52,) km/s: logistic edges and quadrants, products unmasked."""
    sel = jnp.asarray(obs.selected)
    r = jnp.where(sel, obs.r_gal, -1e3)
    vg, vt = jnp.where(sel, obs.v_gsr, 0.0), jnp.where(sel, obs.v_tb, 0.0)

    def bins(x, edges):
        s = jax.nn.sigmoid((x[None, :] - jnp.asarray(edges)[:, None]) / r_width)
        return s[:-1] - s[1:]

    east, north = jax.nn.sigmoid(jnp.sin(obs.l) / angle_width), jax.nn.sigmoid(jnp.sin(obs.b) / angle_width)
    wq = jnp.stack([east * north, (1 - east) * north, east * (1 - north), (1 - east) * (1 - north)])

    def moments(v, w):
        n = jnp.sum(w, axis=-1)
        mean = jnp.sum(w * v, axis=-1) / n
        var = jnp.sum(w * (v - mean[..., None]) ** 2, axis=-1) / n
        return mean, jnp.sqrt(jnp.maximum(var, 0.0))

    mg, sg = moments(vg, wq[:, None, :] * bins(r, vgsr_edges)[None] * sel)
    mt, st = moments(vt, bins(r, vtb_edges) * sel)
    return jnp.concatenate([mg.reshape(-1), mt, sg.reshape(-1), st])


def pericentre(x: np.ndarray, v: np.ndarray, phi) -> np.ndarray:
    """Pericentre (N,) kpc of MW-centred states x (N, 3) kpc, v (N, 3) km/s in the spherical potential
    ``phi(r)`` ((km/s)^2): the smallest r on a log grid (1e-3 kpc ... r_now, 2,000 nodes) where
    E - Phi(r) - L^2 / (2 r^2) >= 0."""
    r_now = np.linalg.norm(x, axis=1)
    E = 0.5 * np.sum(v * v, axis=1) + np.asarray(phi(jnp.asarray(r_now)))
    L2 = np.sum(np.cross(x, v) ** 2, axis=1)
    u = np.linspace(0.0, 1.0, 2000)
    grid = 1e-3 * (r_now[:, None] / 1e-3) ** u[None, :]  # (N, 2000)
    ok = E[:, None] - np.asarray(phi(jnp.asarray(grid))) - L2[:, None] / (2 * grid**2) >= 0
    first = np.argmax(ok, axis=1)
    return np.where(ok.any(axis=1), grid[np.arange(len(x)), first], r_now)


def build(survey: Survey, cfg: S.SimConfig, theta0):
    """(per_key (key -> primal and 12 tangents), summaries of one simulation (key -> (2, S)))."""
    obs_cfg = survey.obs_config()
    ev, et = jnp.asarray(survey_edges(survey, BROOKS_VGSR_EDGES)), jnp.asarray(survey_edges(survey, BROOKS_VTB_EDGES))
    sol = cfg.solar_parameters()

    def observed(th, key):
        k_sim, k_obs = jax.random.split(key)
        snap = S.simulate_present_day(th, k_sim, cfg)
        o = observe(k_obs, snap.positions, snap.velocities, sol, distance_frac_err=obs_cfg.distance_frac_err,
                    v_los_err=obs_cfg.v_los_err, pm_l_err=obs_cfg.pm_l_err, pm_b_err=obs_cfg.pm_b_err,
                    r_gal_range=None, add_errors=True)
        return o, snap

    def summaries(o):
        return jnp.stack([smooth_brooks_summary_vector(o, vgsr_edges=ev, vtb_edges=et),
                          logistic_summary_vector(o, ev, et)])

    @jax.jit
    def per_key(key):
        def f(th):
            o, snap = observed(th, key)
            return tuple(getattr(o, n) for n in FIELDS) + (snap.positions, snap.velocities)

        th0 = jnp.asarray(theta0)
        primal, tangents = jax.vmap(lambda e: jax.jvp(f, (th0,), (e,)), out_axes=(None, 0))(jnp.eye(12))
        o, _ = observed(th0, key)
        zero = jnp.zeros_like(o.l)

        def summ_tangent(tan):
            t_obs = o._replace(**dict(zip(FIELDS, tan)), **{n: zero for n in o._fields
                                                             if n not in FIELDS and n != "selected"})
            t_obs = t_obs._replace(selected=np.zeros(o.selected.shape, jax.dtypes.float0))
            return jax.jvp(summaries, (o,), (t_obs,))[1]

        J = jax.vmap(summ_tangent)(tangents[:len(FIELDS)])  # (12, 2, S)
        w = soft_bin_weights(jnp.where(o.selected, o.r_gal, -1e3), jnp.asarray([ev[0], ev[-1]]), SMOOTH_R_WIDTH)[0]
        return {"J": jnp.moveaxis(J, 0, -1), "primal": primal[:len(FIELDS)], "x": primal[-2], "v": primal[-1],
                "tangents": tangents[:len(FIELDS)], "in_window": w > 0, "summaries": summaries(o)}

    @jax.jit
    def sim_summaries(key):
        return summaries(observed(jnp.asarray(theta0), key)[0])

    return per_key, sim_summaries


def fisher_numbers(Jk: np.ndarray, samples: np.ndarray) -> dict:
    """F_ii, noise fraction diag(B) / diag(F) and the key-to-key coefficient of variation of ||J[:, p]||
    (sqrt(sum_s var_k J_ksp / K) / ||mean_k J_sp||: the relative standard error of the mean J, per parameter)."""
    finite = np.flatnonzero(np.all(np.isfinite(samples), axis=0))  # empty bins (few stars) out
    samples, Jk = samples[:, finite], Jk[:, finite]
    keep, _ = screen_summaries(samples)  # constant summaries out
    samples, Jk = samples[:, keep], Jk[:, keep]
    n, S_ = samples.shape
    h = hartlap_factor(n, S_)
    C = np.cov(samples, rowvar=False, ddof=1)
    J = Jk.mean(axis=0)
    Ci = np.linalg.inv(C)
    F = h * J.T @ Ci @ J
    B = np.asarray(jacobian_noise_fisher(jnp.asarray(Jk), jnp.asarray(C), h))
    K = Jk.shape[0]
    se = np.sqrt(np.sum(Jk.var(axis=0, ddof=1), axis=0) / K)
    return {"fisher_diag": np.diag(F), "noise_fraction": np.diag(B) / np.diag(F),
            "rel_se_J": se / np.linalg.norm(J, axis=0), "finite": bool(np.all(np.isfinite(Jk))), "n_summaries": int(S_)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-stars", type=int, default=1000)
    p.add_argument("--t-back", type=float, default=500.0)
    p.add_argument("--dt", type=float, default=1.0)
    p.add_argument("--df-r-min", type=float, default=5.0)
    p.add_argument("--keys", type=int, default=8)
    p.add_argument("--n-covariance", type=int, default=120)
    p.add_argument("--peri-cut", type=float, default=None, help="SimConfig.tangent_peri_min (kpc) for a second pass")
    p.add_argument("--no-baseline", action="store_true", help="only the --peri-cut pass (no uncut, no logistic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    t_start = time.time()
    theta0 = np.asarray(S.FIDUCIAL_THETA, dtype=float)
    survey = Survey(n_stars=a.n_stars)
    base = S.SimConfig(dt=a.dt, t_back=a.t_back, r_min=a.df_r_min)
    cfg = dataclasses.replace(base, n_particles=particles_for_survey(survey, theta0, base), gradients="forward")
    widths = prior_widths()
    mw = S.simulate(jnp.asarray(theta0), jax.random.key(0), dataclasses.replace(cfg, n_particles=1)).mw
    phi = SphericalProfile(spherical_average(mw)).potential_of_r
    k_jac, k_cov = jax.random.split(jax.random.key(a.seed))
    passes = {} if a.no_baseline else {"compact": cfg}
    if a.peri_cut is not None:
        passes[f"compact_peri_cut_{a.peri_cut:g}"] = dataclasses.replace(cfg, tangent_peri_min=a.peri_cut)
    out = {"configuration": {"n_stars": a.n_stars, "n_particles": cfg.n_particles, "t_back_myr": a.t_back,
                             "dt_myr": a.dt, "df_r_min_kpc": a.df_r_min, "keys": a.keys,
                             "n_covariance": a.n_covariance, "seed": a.seed},
           "device": "CPU: AMD EPYC (2 cores, shared)", "jax_version": jax.__version__, "dtype": "float64",
           "date": time.strftime("%Y-%m-%d"), "parameters": list(PARAMETER_NAMES)}
    t0 = time.time()
    _, sim_summaries = build(survey, cfg, theta0)
    samples = np.stack([np.asarray(sim_summaries(k)) for k in jax.random.split(k_cov, a.n_covariance)])  # (n, 2, S)
    out["covariance_s"] = time.time() - t0
    for name, c in passes.items():
        t0 = time.time()
        per_key, _ = build(survey, c, theta0)
        Jk, tracers = [], []
        for k in jax.random.split(k_jac, a.keys):
            res = jax.tree_util.tree_map(np.asarray, per_key(k))
            Jk.append(res["J"])
            tan = res["tangents"]  # (5 fields, 12, N)
            vel = np.max(np.abs(tan[3:5]) * widths[None, :, None], axis=(0, 1))  # km/s per prior width
            pos = np.max(np.abs(tan[2]) * widths[:, None], axis=0)  # kpc per prior width
            peri = pericentre(res["x"], res["v"], phi)
            tracers.append(np.stack([res["primal"][2], peri, vel, pos, res["in_window"]], axis=1))
        Jk = np.stack(Jk)  # (K, 2, S, 12)
        tr = np.concatenate(tracers)  # (K N, 5)
        rec = {"jacobian_s": time.time() - t0}
        for i, summ in enumerate(("compact", "logistic")):
            if name != "compact" and summ == "logistic":
                continue
            num = fisher_numbers(Jk[:, i], samples[:, i])
            rec[summ] = {"finite": num["finite"], "n_summaries": num["n_summaries"],
                         **{k: dict(zip(PARAMETER_NAMES, map(float, num[k])))
                            for k in ("fisher_diag", "noise_fraction", "rel_se_J")}}
        inw = tr[:, 4] > 0
        big = tr[:, 2] > 1e4  # a tangent above 1e4 km/s per prior width: chaotic
        rec["tracers"] = {
            "n": int(len(tr)), "in_window": int(inw.sum()),
            "max_vel_tangent_in_window": float(tr[inw, 2].max()),
            "max_vel_tangent_outside": float(tr[~inw, 2].max()) if (~inw).any() else None,
            "quantiles_vel_tangent_in_window": dict(zip(("50", "90", "99", "99.9"),
                                                        map(float, np.quantile(tr[inw, 2], [0.5, 0.9, 0.99, 0.999])))),
            "in_window_above_1e4": int((big & inw).sum()), "outside_above_1e4": int((big & ~inw).sum()),
            "peri_of_in_window_above_1e4": sorted(map(float, np.round(tr[big & inw, 1], 2)))[:50],
            "fraction_in_window_with_peri_below": {str(rc): float(np.mean(tr[inw, 1] < rc)) for rc in (1, 2, 3, 5)},
            "max_vel_tangent_in_window_by_peri": {
                f"{lo}-{hi}": (float(tr[inw & (tr[:, 1] >= lo) & (tr[:, 1] < hi), 2].max())
                               if (inw & (tr[:, 1] >= lo) & (tr[:, 1] < hi)).any() else None)
                for lo, hi in ((0, 1), (1, 2), (2, 3), (3, 5), (5, 10), (10, 1e9))},
        }
        out[name] = rec
        np.savez_compressed(os.path.splitext(a.out)[0] + f"_{name}_tracers.npz", tracers=tr.astype(np.float32))
    out["wall_s"] = time.time() - t_start
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
