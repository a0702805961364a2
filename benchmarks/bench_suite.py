"""Suite throughput (simulations per second, projected 32,000 / 128,000-simulation wall times) and
NPE training time on a 32,000-row suite.

* ``suite``: :func:`jaxhalo.sbi.suite.run_suite` with the MW-LMC simulator
  (:mod:`jaxhalo.simulation.brooks`, summaries only) into a temporary store, two chunks per setting:
  the first includes compilation, the second is the steady rate. Settings: particles per
  simulation and leapfrog step. The projections are n / steady rate on this device (all its
  devices; on CPU, one XLA device using every core).
* ``npe``: one ensemble member of Brooks et al.'s architecture (MAF, 5 layers x 50 units),
  batch 200, Adam 5e-4, early stopping with patience 20, trained on 32,000 *synthetic* rows
  (the linear-Gaussian toy simulator with 12 parameters and 52 summaries: the training cost
  depends on the row count and dimensions, not on where the numbers came from). The ensemble
  time is the member time x ensemble size (members train one after another).

Run: ``python -m benchmarks.bench_suite [--quick]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import h5py
import jax
import numpy as np

from benchmarks.common import device_name, write_results

SUITE_SIZES = (32_000, 128_000)


def suite_records(settings) -> list[dict]:
    from jaxhalo.sbi.priors import brooks2026_prior
    from jaxhalo.sbi.simulators import brooks_simulator
    from jaxhalo.sbi.store import SuiteStore
    from jaxhalo.sbi.suite import run_suite

    prior = brooks2026_prior()
    out = []
    for n_particles, dt, chunk in settings:
        sim = brooks_simulator(n_particles=n_particles, dt=dt)
        n_chunks = 3
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s")
            t0 = time.perf_counter()
            rep = run_suite(path, sim, prior, n_chunks * chunk, chunk_size=chunk, seed=0, progress=False)
            total = time.perf_counter() - t0
            store = SuiteStore.open(path)
            # each chunk records its own compute + write time; chunk 0 includes compilation
            walls = []
            for k in range(n_chunks):
                with h5py.File(store.chunk_path(k), "r") as f:
                    walls.append(float(f.attrs["wall_s"]))
            d = store.load()
        first, steady = walls[0], float(np.mean(walls[1:]))
        rate = chunk / steady
        finite = np.isfinite(d.summaries)
        out.append({
            "case": "suite", "simulator": "brooks (jaxhalo.simulation.brooks.summary_vector)", "n_particles": n_particles,
            "dt_myr": dt, "n_steps": int(round(2200 / dt)), "chunk": chunk, "n_devices": len(jax.devices()),
            "first_chunk_incl_compile_s": first, "steady_chunk_s": steady, "chunk_walls_s": walls, "run_total_s": total, "sims_per_s": rate,
            "particle_steps_per_s": rate * n_particles * 2200 / dt,
            **{f"projected_{n}_h": n / rate / 3600 for n in SUITE_SIZES},
            "frac_rows_all_finite": float(finite.all(axis=1).mean()), "frac_summaries_finite": float(finite.mean()),
        })
        print(out[-1], flush=True)
    return out


def _npe_record(max_epochs: int, n_rows: int = 32_000) -> dict:
    from jaxhalo.sbi.npe import NPEConfig, train_npe
    from jaxhalo.sbi.priors import brooks2026_prior
    from jaxhalo.sbi.simulators import linear_gaussian_simulator
    from jaxhalo.sbi.suite import simulate_indices

    prior = brooks2026_prior()
    sim = linear_gaussian_simulator(prior, n_summaries=52, noise=0.3)
    _, theta, outs = simulate_indices(sim, prior, 0, np.arange(n_rows))
    cfg = NPEConfig(n_ensemble=1, max_epochs=max_epochs, patience=20)
    t0 = time.perf_counter()
    _, rep = train_npe(theta, outs["summaries"], jax.random.PRNGKey(0), cfg, progress=True)
    wall = time.perf_counter() - t0
    epochs = rep.epochs[0]
    # per-epoch time from the 2nd epoch on (the first includes compilation): total minus one compile estimate
    rec = {
        "case": "npe_train", "rows": n_rows, "synthetic": "linear-gaussian toy, 12 parameters, 52 summaries",
        "flow_layers": cfg.flow_layers, "nn_width": cfg.nn_width, "batch_size": cfg.batch_size,
        "max_epochs": max_epochs, "patience": cfg.patience, "epochs_run": epochs,
        "stopped_early": epochs < max_epochs, "member_wall_s": wall, "s_per_epoch": wall / epochs,
        "best_val_loss": rep.best_val[0], "ensemble_5_projected_s": 5 * wall,
    }
    print(rec, flush=True)
    return rec


def run(quick: bool = False) -> list[dict]:
    if quick:
        settings = [(1000, 10.0, 4), (4500, 2.0, 2)]
        records = suite_records(settings)
        records.append(_npe_record(max_epochs=15))
    else:
        settings = [(1000, 10.0, 4), (4500, 2.0, 2), (20_000, 1.0, 2)]
        records = suite_records(settings)
        records.append(_npe_record(max_epochs=500))
    return records


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    quick = "--quick" in sys.argv
    load0 = os.getloadavg()
    recs = run(quick=quick)
    path = write_results("suite", recs, meta={
        "quick": quick, "device": device_name(), "load_average_before": load0, "load_average_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "note": "2-core CPU shared with other agents' jobs during the run (see the load averages): rates are lower "
                "bounds. NPE training uses synthetic 32,000-row summaries; one member timed, ensemble = 5 x member.",
        "goal": "128,000-simulation suite in under one hour on one H100 (not measurable here: no GPU lent)",
    })
    print(f"wrote {path}")
