"""Is the linearised synthetic likelihood itself calibrated? The linear-Gaussian model centred at the truth.

The closed loop of ``benchmarks/bench_linear_sl.py`` gives log10 M200 posteriors that are too narrow (z scatter
1.6 over 20 mocks). This separates the model from its placement: the same survey, simulator and 20 mock
observations at theta0, but the linearisation is put *at theta0* (no Gauss-Newton placement):

* C from ``n_cov`` = 200 simulations at theta0 (Hartlap factor), as in the closed loop;
* the mean and secant slopes from one linearisation at theta0 (:func:`~jaxhalo.sbi.surrogate.fit_linear_mean`,
  ``n_linearisations=1``, K = 16 common-random-number keys, half-widths 1/4 of each prior's sigma);
* for every observation, the mode and covariance of that linear-Gaussian likelihood times Gaussians with the
  Table 1 priors' moments (:func:`~jaxhalo.sbi.surrogate.gauss_newton_update`: exact for a linear mean), and
  z = (mode - theta0) / sigma per parameter.

Observations: 200 further independent simulations at theta0 (held out from C) and the 20 mocks. For calibrated
widths the scatter of z is 1. With one set of keys for every observation, the keys' noise is a common offset
(in the mean of z, not its scatter), so this checks C and the observation noise only. The keys' own noise is
checked by a third run: each mock linearised at theta0 with its own K = 4 keys (``n_keys_per_mock``; the closed
loop's K; ``own_4_keys_*``), and again with 8 (``own_8_keys_*``). Also recorded: per mock, the truth-centred log10 M200 mode beside the closed loop's posterior median
(``benchmarks/results/linear_sl/fits_cpu2.json``), and their RMS difference in units of the truth-centred sigma:
the part of the closed loop's error that comes from where the linearisation was placed.

    python -m benchmarks.bench_linear_sl_at_truth        (~25 min on 2 CPU cores; record linear_sl_at_truth_cpu2.json)
    python -m benchmarks.bench_linear_sl_at_truth --own-mean   (~5 min; linear_sl_at_truth_own_mean_cpu2.json)
    python -m benchmarks.bench_linear_sl_at_truth --independent-mean   (~35 min; ..._independent_mean_cpu2.json
                                                                         and ..._noise_budget_cpu2.json)

``--independent-mean`` separates the K = 4 keys' noise from its correlation with the mean and from the noise of C
(:func:`independent_mean`, then :func:`noise_budget` on its arrays; 40 observations).

    python -m benchmarks.bench_linear_sl_at_truth --slope-bias   (~7 min; linear_sl_at_truth_slope_bias_cpu2.json)

``--slope-bias``: the posterior width at theta0 from 4 keys' slopes against 32 keys', over all 52 summaries and
score-compressed (:func:`slope_bias`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.bench_linear_sl import mock_observations  # noqa: E402
from benchmarks.common import device_name, script_flags, write_results  # noqa: E402
from jaxhalo.sbi.nuts_sl import batch_runner  # noqa: E402
from jaxhalo.sbi.priors import brooks2026_prior  # noqa: E402
from jaxhalo.sbi.surrogate import LinearMean, fit_linear_mean, gauss_newton_update, prior_moments  # noqa: E402
from jaxhalo.sbi.synthetic import covariance_cholesky, percival_factor  # noqa: E402
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES  # noqa: E402

RESULT_NAME = "linear_sl_at_truth"
CLOSED_LOOP_FITS = Path(__file__).parent / "results" / "linear_sl" / "fits_cpu2.json"
SETTINGS = {"n_obs": 20, "n_cov": 200, "n_held_out": 200, "n_keys": 16, "batch": 16, "n_keys_per_mock": (4, 8)}


def _gaussian_z(lin: LinearMean, x: np.ndarray, L, K: int, moments, theta0: np.ndarray):
    """(mode (P,), sigma (P,), z = (mode - theta0) / sigma (P,), NaN for fixed parameters) of the Gaussian posterior
    of one observation ``x`` under the linear mean ``lin`` with K keys (:func:`gauss_newton_update`: exact for a
    linear mean)."""
    mode, cov = gauss_newton_update(lin, x, L, K, *moments)
    free = moments[2]
    sd = np.sqrt(np.diag(cov))
    return mode, sd, np.where(free, (mode - theta0) / np.where(free, sd, 1.0), np.nan)


def _mean_at(run, theta: np.ndarray, key: jax.Array, K: int) -> np.ndarray:
    """(S,) the mean of K simulations at ``theta`` with the keys split from ``key``."""
    return run(np.repeat(theta[None], K, axis=0), jax.random.split(key, K)).mean(axis=0)


def _setup():
    """(theta0, n_part, x_obs, run, sims, L, h, prior moments, the K = 16 linearisation at theta0)."""
    s = SETTINGS
    theta0, _, n_part, simulate, x_obs = mock_observations("large", s["n_obs"])
    run = batch_runner(simulate, jnp.asarray(theta0), jax.random.key(0), s["batch"])
    sims = run(np.repeat(theta0[None], s["n_cov"] + s["n_held_out"], axis=0),
               jax.random.split(jax.random.key(77), s["n_cov"] + s["n_held_out"]))
    L, h = covariance_cholesky(sims[:s["n_cov"]])
    prior = brooks2026_prior()
    m_p, v_p, free = prior_moments(prior)
    keys = jax.random.split(jax.random.key(99), s["n_keys"])
    fit = fit_linear_mean(run, x_obs[0], L, prior, theta0, keys, n_linearisations=1)
    return theta0, n_part, x_obs, run, sims, L, h, prior, (m_p, v_p, free), fit


def at_truth() -> tuple[list[dict], dict]:
    """(one row per parameter, meta) of the truth-centred calibration (module docstring)."""
    s = SETTINGS
    t0 = time.perf_counter()
    theta0, n_part, x_obs, run, sims, L, h, prior, (m_p, v_p, free), fit = _setup()

    moments = (m_p, v_p, free)
    mocks = [_gaussian_z(fit.surrogate, x, L, s["n_keys"], moments, theta0) for x in x_obs]
    modes_mock, sd, z_mock = np.stack([o[0] for o in mocks]), mocks[0][1], np.stack([o[2] for o in mocks])
    z_held = np.stack([_gaussian_z(fit.surrogate, x, L, s["n_keys"], moments, theta0)[2] for x in sims[s["n_cov"]:]])
    n_sims = int(sims.shape[0] + fit.simulations)

    # the same at the truth, but each mock with its own K keys (as in the closed loop): the keys' noise in
    # the mean and the slopes then varies between observations instead of being one common offset
    own_keys = {}
    for Kp in s["n_keys_per_mock"]:
        z_own, sd_own = [], []
        for m in range(s["n_obs"]):
            own = fit_linear_mean(run, x_obs[m], L, prior, theta0, jax.random.split(jax.random.key(5000 + m), Kp),
                                  n_linearisations=1)
            n_sims += own.simulations
            _, sd_m, z_m = _gaussian_z(own.surrogate, x_obs[m], L, Kp, moments, theta0)
            sd_own.append(sd_m)
            z_own.append(z_m)
        own_keys[Kp] = (np.array(z_own), np.array(sd_own))
    wall = time.perf_counter() - t0
    rows = []
    for j, n in enumerate(PARAMETER_NAMES):
        if not free[j]:
            continue
        rows.append({"parameter": n, "truth": float(theta0[j]), "sigma": float(sd[j]),
                     "held_out_z_mean": float(z_held[:, j].mean()), "held_out_z_scatter": float(z_held[:, j].std(ddof=1)),
                     "mocks_z_mean": float(z_mock[:, j].mean()), "mocks_z_scatter": float(z_mock[:, j].std(ddof=1)),
                     **{f"own_{Kp}_keys_{k}": v for Kp, (z_own, sd_own) in own_keys.items()
                        for k, v in (("sigma_mean", float(sd_own[:, j].mean())), ("z_mean", float(z_own[:, j].mean())),
                                     ("z_scatter", float(z_own[:, j].std(ddof=1))))}})
    meta = {"settings": {**s, "n_particles": n_part, "survey": "bench_fisher_vs_npe 'large' (1,000 stars, 500 Myr)"},
            "hartlap": float(h), "simulations": n_sims,
            "wall_s": wall,
            "note": "2 CPU cores; see the module docstring"}
    if CLOSED_LOOP_FITS.exists():
        loop = json.loads(CLOSED_LOOP_FITS.read_text())["fits"]
        i = PARAMETER_NAMES.index("log10_m200")
        med = np.array([f["targets"]["log10_m200"]["median"] for f in loop[:s["n_obs"]]])
        diff = (med - modes_mock[:len(med), i]) / sd[i]
        meta["closed_loop_vs_truth_centred_log10_m200"] = {
            "truth_centred_mode": modes_mock[:len(med), i].tolist(), "closed_loop_median": med.tolist(),
            "rms_difference_in_sigma": float(np.sqrt(np.mean(diff**2))),
            "closed_loop_fits": str(CLOSED_LOOP_FITS.relative_to(Path(__file__).parent.parent))}
    return rows, meta


def own_mean_common_slopes(n_keys: tuple[int, ...] = (4, 8), n_held_out: int = 100) -> tuple[list[dict], dict]:
    """Which half of the K keys' noise is mis-modelled, the mean's or the slopes'? (``--own-mean``)

    At theta0, each observation gets its own K-key mean (the keys of the ``own_K_keys`` run) but every one shares
    the slopes of the K = 16 linearisation (key 99); z of log10 M200 and M_LMC over the 20 mocks (K = 4 and 8) and
    over ``n_held_out`` of the held-out simulations (K = 4, keys 9000 + i). If the scatter is ~1 here but not in
    ``own_K_keys``, the (1 + 1/K) C model of the mean's noise is right and the slopes' noise is what it misses."""
    s = SETTINGS
    theta0, n_part, x_obs, run, sims, L, h, prior, (m_p, v_p, free), fit = _setup()
    cols = [PARAMETER_NAMES.index("log10_m200"), PARAMETER_NAMES.index("m_lmc")]

    def z_of(x: np.ndarray, key: jax.Array, K: int) -> np.ndarray:
        lin = LinearMean(jnp.asarray(theta0), jnp.asarray(_mean_at(run, theta0, key, K)), fit.surrogate.slopes)
        return _gaussian_z(lin, x, L, K, (m_p, v_p, free), theta0)[2][cols]

    rows = []
    for K in n_keys:
        z = np.array([z_of(x_obs[m], jax.random.key(5000 + m), K) for m in range(s["n_obs"])])
        rows.append({"observations": f"{s['n_obs']} mocks", "K": K, "z_mean_log10_m200": float(z[:, 0].mean()),
                     "z_scatter_log10_m200": float(z[:, 0].std(ddof=1)), "z_mean_m_lmc": float(z[:, 1].mean()),
                     "z_scatter_m_lmc": float(z[:, 1].std(ddof=1))})
    z = np.array([z_of(sims[s["n_cov"] + i], jax.random.key(9000 + i), 4) for i in range(n_held_out)])
    rows.append({"observations": f"{n_held_out} held-out simulations", "K": 4, "z_mean_log10_m200": float(z[:, 0].mean()),
                 "z_scatter_log10_m200": float(z[:, 0].std(ddof=1)), "z_mean_m_lmc": float(z[:, 1].mean()),
                 "z_scatter_m_lmc": float(z[:, 1].std(ddof=1))})
    meta = {"settings": {**s, "n_particles": n_part, "n_held_out_used": n_held_out}, "hartlap": float(h),
            "note": "2 CPU cores; see own_mean_common_slopes() in the module"}
    return rows, meta


def independent_mean(K: int = 4, n_held_out: int = 20, n_extra_cov: int = 1000) -> tuple[list[dict], dict, dict]:
    """Is it the slopes' noise, or its correlation with the mean's noise? (``--independent-mean``)

    Each observation (the 20 mocks, then ``n_held_out`` held-out simulations) is linearised at theta0 with its own
    K keys (mocks: keys 5000 + m, those of ``own_K_keys``; held-out i: keys 9000 + i), and its z computed twice
    with the *same* K-key secant slopes: with the mean of the centre simulations of those keys (as
    :func:`fit_linear_mean` does; the mocks reproduce ``own_K_keys``), and with the mean of K simulations at theta0
    with independent keys (7000 + observation). Conditional on the slopes, a mean independent of them leaves the
    residual x - mu_c independent of the slopes, so the Gaussian posterior at the truth cannot be over-confident
    (its mode scatters by Cov B^T M B Cov <= Cov); if the same-key z scatter is > 1 and the independent one is not,
    the over-confidence is the correlation of the mean's noise with the slopes' through the common keys.

    Returns (rows, meta, arrays): ``arrays`` holds every observation's x, same-key and independent means, slopes and
    slope deviations, the covariance factor L used (200 simulations), the 400 simulations of :func:`_setup` (C and
    held-out) and ``n_extra_cov`` further simulations at theta0 (key 88) for :func:`noise_budget`."""
    s = SETTINGS
    theta0, n_part, x_obs, run, sims, L, h, prior, (m_p, v_p, free), _ = _setup()
    moments = (m_p, v_p, free)
    cols = [PARAMETER_NAMES.index(n) for n in ("log10_m200", "m_lmc", "r_dens", "gamma")]
    obs = [(f"mock {m}", x_obs[m], 5000 + m) for m in range(s["n_obs"])] + [
        (f"held-out {i}", sims[s["n_cov"] + i], 9000 + i) for i in range(n_held_out)]
    per_obs, n_sims, arrays = [], 0, []
    for o, (label, x, seed) in enumerate(obs):
        own = fit_linear_mean(run, x, L, prior, theta0, jax.random.split(jax.random.key(seed), K), n_linearisations=1)
        mu_ind = _mean_at(run, theta0, jax.random.key(7000 + o), K)
        n_sims += own.simulations + K
        lin_ind = LinearMean(jnp.asarray(theta0), jnp.asarray(mu_ind), own.surrogate.slopes)
        _, sd_same, z_same = _gaussian_z(own.surrogate, x, L, K, moments, theta0)
        _, sd_ind, z_ind = _gaussian_z(lin_ind, x, L, K, moments, theta0)
        arrays.append((x, np.asarray(own.surrogate.mean), mu_ind, np.asarray(own.surrogate.slopes),
                       np.asarray(own.surrogate.slope_deviations)))
        per_obs.append({"observation": label, "sigma": sd_same[cols].tolist(), "z_same_keys": z_same[cols].tolist(),
                        "sigma_independent": sd_ind[cols].tolist(), "z_independent_mean": z_ind[cols].tolist()})
        print(label, "z M200 same keys %+.2f independent mean %+.2f" % (z_same[cols[0]], z_ind[cols[0]]), flush=True)
    rows = []
    for group, sel in (("20 mocks", slice(0, s["n_obs"])), (f"{n_held_out} held-out simulations", slice(s["n_obs"], None)),
                       ("all", slice(None))):
        zs = np.array([p["z_same_keys"] for p in per_obs[sel]])
        zi = np.array([p["z_independent_mean"] for p in per_obs[sel]])
        for c, n in enumerate(("log10_m200", "m_lmc", "r_dens", "gamma")):
            rows.append({"observations": group, "K": K, "parameter": n,
                         "z_mean_same_keys": float(zs[:, c].mean()), "z_scatter_same_keys": float(zs[:, c].std(ddof=1)),
                         "z_rms_same_keys": float(np.sqrt(np.mean(zs[:, c] ** 2))),
                         "z_mean_independent_mean": float(zi[:, c].mean()),
                         "z_scatter_independent_mean": float(zi[:, c].std(ddof=1)),
                         "z_rms_independent_mean": float(np.sqrt(np.mean(zi[:, c] ** 2)))})
    meta = {"settings": {**s, "n_particles": n_part, "K": K, "n_held_out_used": n_held_out}, "hartlap": float(h),
            "simulations_per_observation": n_sims // len(obs), "per_observation": per_obs,
            "note": "2 CPU cores; see independent_mean() in the module"}
    extra = run(np.repeat(theta0[None], n_extra_cov, axis=0), jax.random.split(jax.random.key(88), n_extra_cov))
    out = dict(zip(("x", "mu_same", "mu_independent", "slopes", "slope_deviations"), (np.stack(a) for a in zip(*arrays))))
    out.update(L=np.asarray(L), sims=np.asarray(sims), extra=np.asarray(extra), n_obs=s["n_obs"])
    return rows, meta, out


def _laplace_z(lin: LinearMean, x: np.ndarray, L: np.ndarray, K: int, moments, theta0: np.ndarray,
               cols: list[int]) -> np.ndarray:
    """z (len(cols),) of the parameters ``cols`` at the mode of ln L(theta) + the Gaussian prior of the moments, for a likelihood that
    is not Gaussian in theta (:meth:`LinearMean.synthetic_log_likelihood` with ``slope_deviations``): Newton's
    method from theta0 in prior-sigma units, sigma from the Hessian there (autodiff); NaN where that variance is
    not positive."""
    m_p, v_p, free = moments
    idx = np.flatnonzero(free)
    sd = np.sqrt(v_p)

    def log_post(u):
        th = jnp.asarray(theta0).at[idx].add(u * sd[idx])
        return (lin.synthetic_log_likelihood(th, jnp.asarray(x), K, jnp.asarray(L))
                - 0.5 * jnp.sum(((th[idx] - m_p[idx]) / sd[idx]) ** 2))

    grad, hess = jax.jit(jax.grad(log_post)), jax.jit(jax.hessian(log_post))
    u = np.zeros(idx.size)
    for _ in range(30):
        step = np.linalg.solve(np.asarray(hess(u)), -np.asarray(grad(u)))
        u = u + step
        if np.max(np.abs(step)) < 1e-9:
            break
    var = np.diag(np.linalg.inv(-np.asarray(hess(u))))
    j = [list(idx).index(c) for c in cols]
    return np.where(var[j] > 0, u[j] / np.sqrt(np.where(var[j] > 0, var[j], 1.0)), np.nan)


#: (name, covariance simulations, centre mean, secant-noise term, Percival factor) of :func:`noise_budget`
NOISE_BUDGET_VARIANTS = (
    ("as the first closed loop (linear_sl_cpu2.json)", 200, "same keys", True, False),
    ("without the secant-noise term", 200, "same keys", False, False),
    ("mean from independent keys", 200, "independent", False, False),
    ("C from 1,380 simulations", 1380, "same keys", False, False),
    ("independent mean, C from 1,380", 1380, "independent", False, False),
    ("independent mean, C x Percival m1 (synthetic_posterior's defaults)", 200, "independent", False, True),
    ("same keys, C x Percival m1", 200, "same keys", False, True),
)


def noise_budget(arrays: dict, K: int = 4) -> tuple[list[dict], dict]:
    """Which part of the K-key linearisation's over-confidence at theta0 comes from what (``--independent-mean``).

    For the 40 observations of :func:`independent_mean`, z of log10 M200, M_LMC, r_dens and gamma under each of
    :data:`NOISE_BUDGET_VARIANTS`: the covariance from the closed loop's 200 simulations, or from 1,380 (those 200,
    the 180 held-out simulations not used as observations, and the 1,000 extra ones), with the Hartlap factor; the
    centre's mean from the slopes' own keys or independent ones; the secant-noise term of
    :meth:`LinearMean.synthetic_log_likelihood` or not (then the posterior is Gaussian and its mode exact:
    :func:`gauss_newton_update`; with it, :func:`_laplace_z`); C times Percival's m1 (200 simulations, 52 summaries,
    12 parameters) or not."""
    theta0 = np.asarray(FIDUCIAL_THETA, dtype=float)
    moments = prior_moments(brooks2026_prior())
    n_obs, n_cov = int(arrays["n_obs"]), SETTINGS["n_cov"]
    sims, n_used = arrays["sims"], arrays["x"].shape[0] - int(arrays["n_obs"])
    L_of = {200: np.asarray(arrays["L"]),
            1380: np.asarray(covariance_cholesky(np.concatenate([sims[:n_cov], sims[n_cov + n_used:], arrays["extra"]]))[0])}
    names = ("log10_m200", "m_lmc", "r_dens", "gamma")
    cols = [PARAMETER_NAMES.index(n) for n in names]
    m1 = percival_factor(n_cov, L_of[200].shape[0], int(np.sum(moments[2])))
    rows = []
    for label, n_c, mean, slope_noise, percival in NOISE_BUDGET_VARIANTS:
        L = L_of[n_c] * (np.sqrt(m1) if percival else 1.0)
        mu = arrays["mu_same"] if mean == "same keys" else arrays["mu_independent"]
        z = np.full((arrays["x"].shape[0], len(cols)), np.nan)
        for o in range(z.shape[0]):
            lin = LinearMean(jnp.asarray(theta0), jnp.asarray(mu[o]), jnp.asarray(arrays["slopes"][o]),
                             jnp.asarray(arrays["slope_deviations"][o]) if slope_noise else None)
            if slope_noise:
                z[o] = _laplace_z(lin, arrays["x"][o], L, K, moments, theta0, cols)
            else:
                z[o] = _gaussian_z(lin, arrays["x"][o], L, K, moments, theta0)[2][cols]
        row = {"variant": label, "covariance_simulations": n_c, "centre_mean": mean, "secant_noise_term": slope_noise,
               "percival_factor": m1 if percival else 1.0}
        for c, n in enumerate(names):
            for group, sel in (("mocks", slice(0, n_obs)), ("held_out", slice(n_obs, None)), ("all", slice(None))):
                zz = z[sel, c][np.isfinite(z[sel, c])]
                row[f"{n}_z_scatter_{group}"] = float(np.std(zz, ddof=1))
            row[f"{n}_z_rms_all"] = float(np.sqrt(np.nanmean(z[:, c] ** 2)))
            row[f"{n}_z_undefined"] = int(np.sum(~np.isfinite(z[:, c])))
        rows.append(row)
        print(f"{label:>68s}: log10 M200 z scatter {row['log10_m200_z_scatter_all']:.2f} (mocks "
              f"{row['log10_m200_z_scatter_mocks']:.2f}, held-out {row['log10_m200_z_scatter_held_out']:.2f}), M_LMC "
              f"{row['m_lmc_z_scatter_all']:.2f}, gamma {row['gamma_z_scatter_all']:.2f}", flush=True)
    meta = {"settings": {**SETTINGS, "K": K, "observations": f"{n_obs} mocks + {n_used} held-out simulations"},
            "percival_m1": m1, "hartlap_200": (n_cov - L_of[200].shape[0] - 2) / (n_cov - 1),
            "sampling_sd_of_a_z_scatter_near_1": 1 / np.sqrt(2 * (arrays["x"].shape[0] - 1)),
            "note": "2 CPU cores; see noise_budget() in the module"}
    return rows, meta


def slope_bias(n_keys: int = 32, group: int = 4) -> tuple[list[dict], dict]:
    """How much do the noisy slopes of K = 4 keys over-state the information, and does score compression undo it?
    (``--slope-bias``)

    At theta0, one secant linearisation with ``n_keys`` = 32 keys (key 99, as :func:`_setup`'s) is split into 8
    groups of ``group`` = 4. With C from :func:`_setup`'s 200 simulations, the Gaussian posterior sigma (prior
    moments, the (1 + 1/4) inflation of 4 keys) of log10 M200, M_LMC, r_dens and gamma is computed with each
    group's slopes over all 52 summaries ("full"), and over the 12 summaries compressed onto the next group's slopes
    (:mod:`jaxhalo.sbi.compression`; independent keys, as the closed loop's placement is of its refinement), beside
    the same with all 32 keys' slopes (the least noisy reference, still with the 4-key inflation)."""
    from jaxhalo.sbi.compression import compress_linear_mean, score_compression  # deferred: this run only

    s = SETTINGS
    theta0, n_part, x_obs, run, sims, L, h, prior, (m_p, v_p, free), _ = _setup()
    moments = (m_p, v_p, free)
    fit = fit_linear_mean(run, x_obs[0], L, prior, theta0, jax.random.split(jax.random.key(99), n_keys),
                          n_linearisations=1)
    B, dev = np.asarray(fit.surrogate.slopes), np.asarray(fit.surrogate.slope_deviations)
    per_key = B[None] + dev * np.sqrt(n_keys * (n_keys - 1))                  # (K, S, P) each key's secants
    groups = per_key.reshape(n_keys // group, group, *B.shape).mean(axis=1)    # (G, S, P)
    names = ("log10_m200", "m_lmc", "r_dens", "gamma")
    cols = [PARAMETER_NAMES.index(n) for n in names]
    mu = np.asarray(fit.surrogate.mean)
    L_np = np.asarray(L)

    def sigma(slopes: np.ndarray, W: np.ndarray | None) -> np.ndarray:
        lin = LinearMean(jnp.asarray(theta0), jnp.asarray(mu), jnp.asarray(slopes))
        if W is None:
            return np.sqrt(np.diag(gauss_newton_update(lin, mu, L_np, group, *moments)[1]))[cols]
        Lc = np.linalg.cholesky(W @ L_np @ L_np.T @ W.T)
        return np.sqrt(np.diag(gauss_newton_update(compress_linear_mean(lin, W), W @ mu, Lc, group, *moments)[1]))[cols]

    rows = [{"slopes": f"all {n_keys} keys", "summaries": "all 52", **dict(zip(names, sigma(B, None).tolist()))}]
    for g in range(groups.shape[0]):
        W = score_compression(groups[(g + 1) % groups.shape[0]], L_np, free)
        rows.append({"slopes": f"keys {g * group}-{g * group + group - 1}", "summaries": "all 52",
                     **dict(zip(names, sigma(groups[g], None).tolist()))})
        rows.append({"slopes": f"keys {g * group}-{g * group + group - 1}", "summaries": "12 compressed (next group)",
                     **dict(zip(names, sigma(groups[g], W).tolist()))})
    for kind in ("all 52", "12 compressed (next group)"):
        sel = [r for r in rows[1:] if r["summaries"] == kind]
        print(f"{kind:>28s}: sigma log10 M200 {np.mean([r['log10_m200'] for r in sel]):.4f} (32 keys, all 52: "
              f"{rows[0]['log10_m200']:.4f}), M_LMC {np.mean([r['m_lmc'] for r in sel]):.3g} "
              f"({rows[0]['m_lmc']:.3g})", flush=True)
    meta = {"settings": {**s, "n_particles": n_part, "n_keys": n_keys, "group": group},
            "simulations": int(sims.shape[0] + fit.simulations),
            "sigma_mean_over_groups": {kind: {n: float(np.mean([r[n] for r in rows[1:] if r["summaries"] == kind]))
                                              for n in names} for kind in ("all 52", "12 compressed (next group)")},
            "note": "2 CPU cores; see slope_bias() in the module"}
    return rows, meta


if __name__ == "__main__":
    flags = script_flags(__doc__, ("--own-mean", "--independent-mean", "--slope-bias"))
    print(device_name(), flush=True)
    if "--slope-bias" in flags:
        rows, meta = slope_bias()
        print(f"wrote {write_results(RESULT_NAME + '_slope_bias', rows, meta=meta)}")
        raise SystemExit(0)
    if "--own-mean" in flags:
        rows, meta = own_mean_common_slopes()
        for r in rows:
            print(r, flush=True)
        print(f"wrote {write_results(RESULT_NAME + '_own_mean', rows, meta=meta)}")
        raise SystemExit(0)
    if "--independent-mean" in flags:
        rows, meta, arrays = independent_mean()
        for r in rows:
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
        print(f"wrote {write_results(RESULT_NAME + '_independent_mean', rows, meta=meta)}")
        rows, meta = noise_budget(arrays)
        print(f"wrote {write_results(RESULT_NAME + '_noise_budget', rows, meta=meta)}")
        raise SystemExit(0)
    rows, meta = at_truth()
    for r in rows:
        print(f"{r['parameter']:>16s}: sigma {r['sigma']:.3g}  z held-out {r['held_out_z_mean']:+.2f} +- "
              f"{r['held_out_z_scatter']:.2f}   mocks {r['mocks_z_mean']:+.2f} +- {r['mocks_z_scatter']:.2f}" + "".join(
                  f"   own {K} keys: sigma {r[f'own_{K}_keys_sigma_mean']:.3g}, z {r[f'own_{K}_keys_z_mean']:+.2f} +- "
                  f"{r[f'own_{K}_keys_z_scatter']:.2f}" for K in SETTINGS["n_keys_per_mock"]))
    if "closed_loop_vs_truth_centred_log10_m200" in meta:
        print("closed loop vs truth-centred M200, RMS difference in sigma:",
              round(meta["closed_loop_vs_truth_centred_log10_m200"]["rms_difference_in_sigma"], 2))
    print(f"wrote {write_results(RESULT_NAME, rows, meta=meta)}")
