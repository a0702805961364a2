"""Driver of ``benchmarks/device_run.sh``: check a device against committed CPU references, then benchmark it.

Two commands:

``python -m benchmarks.device_checks reference``
    Computes the CPU reference results (float64) and writes them into ``benchmarks/reference/``
    (committed): ``reflex.npz`` (the inputs, lnL and gradient of the 18-parameter continuity
    likelihood, with the per-star absolute gradient sums that set the rounding scale),
    ``simulator.npz`` (one 64-particle present-day snapshot of the chained Brooks simulator) and
    ``nuts.json`` (a short NUTS posterior summary with its Monte Carlo errors).

``python -m benchmarks.device_checks run --out DIR [--quick] [--budget-s S]``
    1. **Checks** on the default JAX device against those references:
       * reflex lnL to 1e-10 relative; each gradient component to 1e-10 relative to
         ``|g_i| + sum_n |d lnL_n / d theta_i|`` (the rounding scale of a sum over stars: a
         reordered reduction may move a component by ~1e-16 of that sum, never more);
       * the simulator snapshot to 1e-8 kpc (positions) and 1e-8 km/s (velocities), max over particles;
       * the NUTS posterior: every mean and standard deviation within 5 combined Monte Carlo
         standard errors of the reference (independent chains: the device draws other random numbers).
    2. **Benchmarks**, in order of importance; none starts once ``--budget-s`` seconds of
       benchmarks have passed (default 300, so that checks + benchmarks stay near 8 minutes on one
       GPU; a skipped one is recorded as such): reflex likelihood value+grad (1e4..1e8 stars on a GPU, f64/f32, reference and
       fast path), mixture likelihood, simulator single and batched, suite throughput, per-bin
       profile fit, ``jaxhalo fit`` on the bundled example.

    Writes only under DIR (never over tracked files): ``checks_<device>.json``,
    ``benchmarks_<device>.json`` (every benchmark's records under its name, each with the
    device name, date and load average). Exit code 1 when a check fails, 0 otherwise.
    ``--quick`` shrinks every size so that the run ends in a few minutes on 2 CPU cores
    (``JAX_PLATFORMS=cpu``); ``tests/test_device_run.py`` runs it end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import device_name, device_slug, result_payload  # noqa: E402

REFERENCE = Path(__file__).resolve().parent / "reference"
REFLEX_RTOL = 1e-10
SIM_ATOL = 1e-8  # kpc and km/s
NUTS_SIGMAS = 5.0

# ----------------------------------------------------------------------------- the three references

_REFLEX_N = 2000
_REFLEX_COLUMNS = ("l", "b", "distance", "distance_err", "v_los", "v_los_err", "pm_l", "pm_b", "pm_l_err",
                   "pm_b_err", "pm_corr")


def _reflex_problem():
    from jaxhalo.likelihoods.reflex import ReflexModel
    from jaxhalo.mocks.reflex import default_truth

    spec = ReflexModel("continuity", "ms")
    rng = np.random.default_rng(20261202)
    n = _REFLEX_N
    d = rng.uniform(40, 160, n)
    cols = {
        "l": rng.uniform(0, 2 * np.pi, n), "b": np.arcsin(rng.uniform(-1, 1, n)), "distance": d,
        "distance_err": 0.05 * d, "v_los": rng.normal(0, 100, n), "v_los_err": rng.uniform(2, 10, n),
        "pm_l": rng.normal(0, 0.3, n), "pm_b": rng.normal(0, 0.3, n), "pm_l_err": rng.uniform(0.02, 0.2, n),
        "pm_b_err": rng.uniform(0.02, 0.2, n), "pm_corr": rng.uniform(-0.3, 0.3, n),
    }
    weight = (rng.uniform(size=n) > 0.1).astype(float)  # 10% zero-weight (clipped) stars
    truth = default_truth(spec)
    # away from any optimum, so that every gradient component is large
    params = {k: v * (1.0 + 0.1 * rng.standard_normal()) for k, v in truth.items()}
    return spec, cols, weight, params


def _reflex_eval(spec, cols, weight, params):
    from jaxhalo.likelihoods.reflex import ReflexData

    data = ReflexData.from_arrays(*(jnp.asarray(cols[c]) for c in _REFLEX_COLUMNS),
                                  weight=jnp.asarray(weight))
    names = spec.param_names
    p = {k: jnp.asarray(params[k], jnp.float64) for k in names}
    value, grad = jax.jit(jax.value_and_grad(lambda p: spec.log_likelihood(p, data)))(p)
    per_star = jax.jit(jax.jacrev(lambda p: spec.log_likelihood_per_star(p, data)))(p)
    abs_sum = np.array([float(jnp.sum(jnp.abs(per_star[k]))) for k in names])
    return float(value), np.array([float(grad[k]) for k in names]), abs_sum, names


def make_reflex_reference(path: Path) -> None:
    spec, cols, weight, params = _reflex_problem()
    value, grad, abs_sum, names = _reflex_eval(spec, cols, weight, params)
    np.savez(path, **{f"col_{c}": cols[c] for c in cols}, weight=weight, names=np.array(names),
             params=np.array([params[k] for k in names]), lnL=value, grad=grad, grad_abs_sum=abs_sum)


def check_reflex(path: Path) -> dict:
    """lnL and gradient of the continuity likelihood on this device against the CPU reference."""
    from jaxhalo.likelihoods.reflex import ReflexModel

    ref = np.load(path)
    spec = ReflexModel("continuity", "ms")
    names = tuple(str(n) for n in ref["names"])
    cols = {c: ref[f"col_{c}"] for c in _REFLEX_COLUMNS}
    value, grad, _, names2 = _reflex_eval(spec, cols, ref["weight"], dict(zip(names, ref["params"])))
    assert names2 == names
    rel_v = abs(value - float(ref["lnL"])) / abs(float(ref["lnL"]))
    scale = np.abs(ref["grad"]) + ref["grad_abs_sum"]
    rel_g = np.abs(grad - ref["grad"]) / scale
    return {"check": "reflex_lnL_grad_float64", "n_stars": int(len(ref["weight"])), "rel_err_lnL": rel_v,
            "max_rel_err_grad": float(rel_g.max()), "worst_parameter": names[int(rel_g.argmax())],
            "tolerance": REFLEX_RTOL, "passed": bool(rel_v <= REFLEX_RTOL and rel_g.max() <= REFLEX_RTOL)}


_SIM_PARTICLES = 64


def _snapshot():
    from jaxhalo.simulation import brooks as S

    cfg = S.SimConfig(n_particles=_SIM_PARTICLES, dtype="float64")
    snap = jax.jit(S.simulate_present_day, static_argnums=2)(jnp.asarray(S.FIDUCIAL_THETA), jax.random.key(0), cfg)
    return np.asarray(snap.positions), np.asarray(snap.velocities)


def make_simulator_reference(path: Path) -> None:
    from jaxhalo.simulation import brooks as S

    x, v = _snapshot()
    np.savez(path, positions=x, velocities=v, theta=np.asarray(S.FIDUCIAL_THETA), seed=0)


def check_simulator(path: Path) -> dict:
    """One 64-particle present-day snapshot (fiducial theta, key 0, float64) against the CPU reference."""
    ref = np.load(path)
    x, v = _snapshot()
    dx, dv = float(np.abs(x - ref["positions"]).max()), float(np.abs(v - ref["velocities"]).max())
    return {"check": "simulator_snapshot_float64", "n_particles": int(len(x)), "max_abs_err_position_kpc": dx,
            "max_abs_err_velocity_kms": dv, "tolerance": SIM_ATOL,
            "passed": bool(dx <= SIM_ATOL and dv <= SIM_ATOL)}


def _nuts_summary(num_warmup: int, num_samples: int, seed: int) -> dict:
    import arviz as az

    from jaxhalo.inference.nuts import run_nuts
    from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel
    from jaxhalo.mocks.reflex import default_truth, make_reflex_mock

    spec = ReflexModel("constant", "galactic")
    cat, _ = make_reflex_mock(jax.random.PRNGKey(7), 400, spec)
    data = ReflexData.from_catalog(cat)
    mcmc = run_nuts(data, spec, key=jax.random.PRNGKey(seed), num_chains=2, num_warmup=num_warmup,
                    num_samples=num_samples, init_params=default_truth(spec), progress_bar=False)
    samples = mcmc.get_samples(group_by_chain=True)
    out = {}
    for k in spec.param_names:
        s = np.asarray(samples[k])
        out[k] = {"mean": float(s.mean()), "sd": float(s.std()),
                  "mcse_mean": float(az.mcse(s, method="mean")), "mcse_sd": float(az.mcse(s, method="sd"))}
    return out


def make_nuts_reference(path: Path) -> None:
    summ = _nuts_summary(500, 2000, seed=0)
    path.write_text(json.dumps({"model": "constant/galactic, 400-star mock (PRNGKey 7), default priors",
                                "nuts": "2 chains x (500 warm-up + 2000 draws)", "summary": summ}, indent=2))


def check_nuts(path: Path, quick: bool) -> dict:
    """A short NUTS posterior on this device: means and sds within NUTS_SIGMAS combined MC errors."""
    ref = json.loads(path.read_text())["summary"]
    summ = _nuts_summary(300 if quick else 500, 1000 if quick else 2000, seed=1)
    worst, worst_name, table = 0.0, "", {}
    for k, r in ref.items():
        s = summ[k]
        zm = abs(s["mean"] - r["mean"]) / np.hypot(s["mcse_mean"], r["mcse_mean"])
        zs = abs(s["sd"] - r["sd"]) / np.hypot(s["mcse_sd"], r["mcse_sd"])
        table[k] = {"mean": s["mean"], "ref_mean": r["mean"], "z_mean": zm, "sd": s["sd"], "ref_sd": r["sd"], "z_sd": zs}
        if max(zm, zs) > worst:
            worst, worst_name = max(zm, zs), k
    return {"check": "nuts_posterior_within_mc_error", "max_z": worst, "worst_parameter": worst_name,
            "tolerance_sigmas": NUTS_SIGMAS, "parameters": table, "passed": bool(worst <= NUTS_SIGMAS)}


def make_references() -> None:
    REFERENCE.mkdir(exist_ok=True)
    for name, fn in (("reflex.npz", make_reflex_reference), ("simulator.npz", make_simulator_reference),
                     ("nuts.json", make_nuts_reference)):
        t0 = time.perf_counter()
        fn(REFERENCE / name)
        print(f"wrote {REFERENCE / name} ({time.perf_counter() - t0:.1f} s)", flush=True)
    (REFERENCE / "meta.json").write_text(json.dumps({
        "device": device_name(), "jax_version": jax.__version__, "date": time.strftime("%Y-%m-%d"),
        "dtype": "float64", "made_by": "python -m benchmarks.device_checks reference"}, indent=2))


# ----------------------------------------------------------------------------- the benchmarks


def _benchmarks(quick: bool, gpu: bool) -> list[tuple[str, Callable[[], list[dict]]]]:
    """(name, thunk) in order of importance; every thunk returns records."""
    from benchmarks import (
        bench_fit_time,
        bench_profiles,
        bench_reflex_likelihood,
        bench_simulator,
        bench_simulator_gradients,
        bench_suite,
    )

    if quick:
        reflex_sizes, mix_sizes = [10**3, 10**4], [10**4]
        sim = (64, 64, 2, ("float64",))
        suite = [(200, 10.0, 2)]
        profile = (1600, 50, 50)
        fit_extra = ["--warmup", "50", "--samples", "50"]
    elif gpu:
        reflex_sizes, mix_sizes = [10**4, 10**5, 10**6, 10**7, 10**8], [10**4, 10**6, 10**7, 10**8]
        sim = (20_000, 4_500, 64, ("float64", "float32"))
        suite = [(4500, 2.0, 64), (20_000, 1.0, 16)]
        profile = (64_000, 200, 500)
        fit_extra = []
    else:
        reflex_sizes, mix_sizes = [10**4, 10**5, 10**6], [10**4, 10**5, 10**6]
        sim = (2000, 1000, 2, ("float64", "float32"))
        suite = [(1000, 10.0, 4)]
        profile = (6400, 200, 300)
        fit_extra = []

    def fit() -> list[dict]:
        with tempfile.TemporaryDirectory() as cache:
            cold = bench_fit_time.time_cli(cache, fit_extra, "cold (empty compilation cache)")
            if quick:
                return [cold]
            warm = bench_fit_time.time_cli(cache, fit_extra, "warm (cache filled by the cold run)")
        return [cold, warm]

    return [
        ("reflex_likelihood", lambda: bench_reflex_likelihood.run(sizes=reflex_sizes)),
        ("mixture_likelihood", lambda: bench_profiles.mixture_throughput(sizes=mix_sizes)),
        ("simulator", lambda: bench_simulator.single_and_batch(*sim)),
        ("suite", lambda: bench_suite.suite_records(suite)),
        ("simulator_gradients", lambda: bench_simulator_gradients.run(quick=quick or not gpu)),
        ("profile_fit", lambda: [bench_profiles.profile_fit(*profile)]),
        ("jaxhalo_fit", fit),
    ]


def run(out: Path, quick: bool, budget_s: float, skip: set[str] = frozenset()) -> bool:
    """Checks then benchmarks; writes two JSON files under ``out``; returns whether every check passed."""
    out.mkdir(parents=True, exist_ok=True)
    gpu = jax.devices()[0].platform != "cpu"
    slug = device_slug()
    print(f"device: {device_name()} ({len(jax.devices())} devices), jax {jax.__version__}, quick={quick}", flush=True)

    checks = []
    for name, fn in (("reflex", lambda: check_reflex(REFERENCE / "reflex.npz")),
                     ("simulator", lambda: check_simulator(REFERENCE / "simulator.npz")),
                     ("nuts", lambda: check_nuts(REFERENCE / "nuts.json", quick))):
        t0 = time.perf_counter()
        try:
            rec = fn()
        except Exception as exc:  # a broken check is a failed check, the run goes on
            rec = {"check": name, "passed": False, "error": "".join(traceback.format_exception_only(exc)).strip()}
        rec["wall_s"] = time.perf_counter() - t0
        checks.append(rec)
        print(("PASS " if rec["passed"] else "FAIL ") + json.dumps({k: v for k, v in rec.items() if k != "parameters"},
                                                                 default=float), flush=True)
    passed = all(c["passed"] for c in checks)
    (out / f"checks_{slug}.json").write_text(json.dumps(
        result_payload("device_checks", checks, {"references": str(REFERENCE.name), "all_passed": passed}),
        indent=2, default=float))

    results: dict[str, dict] = {}
    t_start = time.perf_counter()
    for name, fn in _benchmarks(quick, gpu):
        elapsed = time.perf_counter() - t_start
        if name in skip:
            continue
        if elapsed > budget_s:
            results[name] = result_payload(name, [], {"skipped": f"time budget {budget_s:.0f} s spent ({elapsed:.0f} s)"})
            print(f"skip {name}: budget spent", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            recs, meta = fn(), {}
        except Exception as exc:  # record and carry on: one failure must not lose the other benchmarks
            recs, meta = [], {"error": "".join(traceback.format_exception_only(exc)).strip()[-2000:]}
        meta.update({"wall_s": time.perf_counter() - t0, "quick": quick})
        results[name] = result_payload(name, recs, meta)
        print(f"{name}: {len(recs)} records in {meta['wall_s']:.1f} s" + (f" ERROR {meta['error']}" if "error" in meta else ""),
              flush=True)
        jax.clear_caches()  # drop the executables (and their device buffers) of the benchmark just run
        # rewritten after each benchmark, so that a run stopped at its time limit keeps what it measured
        (out / f"benchmarks_{slug}.json").write_text(json.dumps(results, indent=2, default=float))
    return passed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.device_checks", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("reference", help="write the CPU references into benchmarks/reference/")
    r = sub.add_parser("run", help="checks against the references, then benchmarks, records under --out")
    r.add_argument("--out", required=True, type=Path, help="directory for the JSON records (created)")
    r.add_argument("--quick", action="store_true", help="tiny sizes: end to end in minutes on a CPU")
    r.add_argument("--budget-s", type=float, default=300.0, help="wall-time budget of the benchmarks (s): none starts after it")
    r.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    a = ap.parse_args(argv)
    if a.cmd == "reference":
        if jax.devices()[0].platform != "cpu":
            print("references are CPU results: run with JAX_PLATFORMS=cpu", file=sys.stderr)
            return 2
        make_references()
        return 0
    ok = run(a.out, a.quick, a.budget_s, {s for s in a.skip.split(",") if s})
    print("all checks passed" if ok else "SOME CHECKS FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
