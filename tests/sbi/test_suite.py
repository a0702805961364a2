"""Suite machinery: resumption after a kill, sharding over 4 CPU devices, index ranges, bad stores.

The toy linear-Gaussian simulator stands in for the MW-LMC one (same interface, known answer,
cost scaling with its particle count), so these tests check the store and the runner, not
the physics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_simulator
from jaxhalo.sbi.store import SuiteConfigError, SuiteStore, SuiteStoreError
from jaxhalo.sbi.suite import run_suite, simulate_indices

REPO = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _cli(*args):
    return [sys.executable, "-m", "jaxhalo.cli", "suite", "run", "--simulator", "linear-gaussian", "--no-progress", *args]


@pytest.fixture(scope="module")
def prior():
    return brooks2026_prior()


def _assert_same_rows(a, b):
    assert np.array_equal(a.index, b.index)
    assert np.array_equal(a.key_data, b.key_data)
    assert np.array_equal(a.theta, b.theta)
    assert np.array_equal(a.summaries, b.summaries)  # bit for bit


def test_resume_after_sigkill(tmp_path, prior):
    """Kill a CLI run with SIGKILL after its first finished chunk, rerun: every index once, bit-identical."""
    n, chunk, npart = 240, 8, 2000
    store = tmp_path / "killed"
    proc = subprocess.Popen(_cli("--n", str(n), "--chunk", str(chunk), "--n-particles", str(npart), "--seed", "7",
                                 "--out", str(store)), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = store / "chunks"
    t0 = time.time()
    while time.time() - t0 < 120:
        if chunks.is_dir() and any(p.name.endswith(".h5") and not p.name.startswith(".") for p in chunks.iterdir()):
            break
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = SuiteStore.open(store).done_chunks()
    n_chunks = n // chunk
    assert 1 <= len(done_at_kill) < n_chunks, f"kill landed outside the run ({len(done_at_kill)} chunks done)"
    # rerun the same suite (in-process, to save a second interpreter start-up): finishes the rest
    sim = linear_gaussian_simulator(prior, n_particles=npart)
    rep = run_suite(str(store), sim, prior, n, chunk_size=chunk, seed=7, progress=False)
    assert rep.chunks_skipped == done_at_kill
    assert sorted(rep.chunks_written + rep.chunks_skipped) == list(range(n_chunks))
    s = SuiteStore.open(store)
    resumed = s.load(require_complete=True)
    assert resumed.index.tolist() == list(range(n))  # every index exactly once
    # uninterrupted reference run (same settings)
    run_suite(str(tmp_path / "ref"), sim, prior, n, chunk_size=chunk, seed=7, progress=False)
    _assert_same_rows(resumed, SuiteStore.open(tmp_path / "ref").load())


def test_sharded_over_4_devices_matches_1(tmp_path, prior):
    """XLA_FLAGS=--xla_force_host_platform_device_count=4: same rows as one device; chunk 6 pads to 8."""
    n, chunk = 30, 6
    store = tmp_path / "sharded"
    out = subprocess.run(_cli("--n", str(n), "--chunk", str(chunk), "--n-particles", "50", "--seed", "11",
                              "--out", str(store)), capture_output=True, text=True, timeout=300,
                         env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"))
    assert out.returncode == 0, out.stderr
    assert "over 4 cpu device(s)" in out.stdout
    s4 = SuiteStore.open(store)
    with h5py.File(s4.chunk_path(0), "r") as f:
        assert int(f.attrs["n_devices"]) == 4
    sim = linear_gaussian_simulator(prior, n_particles=50)
    run_suite(str(tmp_path / "one"), sim, prior, n, chunk_size=chunk, seed=11, progress=False)
    _assert_same_rows(s4.load(require_complete=True), SuiteStore.open(tmp_path / "one").load())


def test_independent_ranges_combine(tmp_path, prior):
    """Two index ranges written separately into one store equal a single run; chunking does not matter."""
    sim = linear_gaussian_simulator(prior, n_summaries=7, n_particles=3)
    n = 37
    path = str(tmp_path / "split")
    r1 = run_suite(path, sim, prior, n, chunk_size=5, seed=2, start=20, progress=False)
    assert r1.chunks_written == [4, 5, 6, 7]
    mid = SuiteStore.open(path).load()
    assert mid.missing.tolist() == list(range(20))
    run_suite(path, sim, prior, n, chunk_size=5, seed=2, start=0, stop=20, progress=False)
    split = SuiteStore.open(path).load(require_complete=True)
    # equal to an uninterrupted run in one batch: no dependence on ranges or chunking
    kd, th, out = simulate_indices(sim, prior, 2, np.arange(n))
    assert np.array_equal(th, split.theta) and np.array_equal(out["summaries"], split.summaries)
    assert np.array_equal(kd, split.key_data)
    # micro-batched (lax.map over vmapped groups inside shard_map): the same rows; 37 is padded to 40
    _, th_m, out_m = simulate_indices(sim, prior, 2, np.arange(n), micro_batch=4)
    assert np.array_equal(th_m, split.theta) and np.array_equal(out_m["summaries"], split.summaries)
    # the prior draws lie in the prior's support
    assert bool(np.all(prior.in_support(split.theta)))
    with pytest.raises(ValueError, match="multiples of the chunk size"):
        run_suite(path, sim, prior, n, chunk_size=5, seed=2, start=3, progress=False)


def test_bad_stores(tmp_path, prior):
    sim = linear_gaussian_simulator(prior, n_summaries=4)
    path = tmp_path / "s"
    run_suite(str(path), sim, prior, 10, chunk_size=5, seed=0, progress=False)
    store = SuiteStore.open(path)
    # config mismatch on resume names every differing setting
    with pytest.raises(SuiteConfigError, match=r"seed: store has 0, this run has 1"):
        run_suite(str(path), sim, prior, 10, chunk_size=5, seed=1, progress=False)
    with pytest.raises(SuiteConfigError, match="chunk_size"):
        run_suite(str(path), sim, prior, 10, chunk_size=2, seed=0, progress=False)
    other = linear_gaussian_simulator(prior, n_summaries=5)
    with pytest.raises(SuiteConfigError, match="outputs"):
        run_suite(str(path), other, prior, 10, chunk_size=5, seed=0, progress=False)
    # wrong summary length on write
    with pytest.raises(SuiteStoreError, match=r"shape \(5, 3\).*expects \(5, 4\)"):
        store.write_chunk(0, np.arange(5), np.zeros((5, 2)), np.zeros((5, 12)), {"summaries": np.zeros((5, 3))})
    # a corrupt chunk file is named
    store.chunk_path(1).write_bytes(b"not hdf5 at all")
    with pytest.raises(SuiteStoreError, match=r"corrupt chunk file .*c00000001\.h5"):
        store.load()
    # a chunk of another suite is refused
    other_path = tmp_path / "other"
    run_suite(str(other_path), sim, prior, 10, chunk_size=5, seed=5, progress=False)
    store.chunk_path(1).write_bytes(SuiteStore.open(other_path).chunk_path(1).read_bytes())
    with pytest.raises(SuiteStoreError, match="belongs to a different suite"):
        store.load()
    # foreign / corrupt manifests
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.txt").write_text("hello")
    with pytest.raises(SuiteStoreError, match="not a jaxhalo suite store"):
        SuiteStore.open(foreign)
    with pytest.raises(SuiteStoreError, match="non-empty directory without a suite manifest"):
        run_suite(str(foreign), sim, prior, 10, chunk_size=5, progress=False)
    (foreign / "suite.json").write_text(json.dumps({"format": "zarr", "x": 1}))
    with pytest.raises(SuiteStoreError, match="not a jaxhalo suite manifest"):
        SuiteStore.open(foreign)
    (foreign / "suite.json").write_text("{ truncated")
    with pytest.raises(SuiteStoreError, match="corrupt suite manifest"):
        SuiteStore.open(foreign)
    with pytest.raises(SuiteStoreError, match="no suite store"):
        SuiteStore.open(tmp_path / "nowhere")


@pytest.mark.slow
def test_real_simulator_suite_matches_direct_calls(tmp_path, prior):
    """The MW-LMC simulator through the suite: rows equal direct summary_vector calls with the documented
    key derivation (fold_in(PRNGKey(seed), i) -> theta from fold_in(k, 0), simulation key fold_in(k, 1))."""
    import jax

    from jaxhalo.simulation import brooks as simmod
    from jaxhalo.sbi.simulators import brooks_simulator

    sim = brooks_simulator(n_particles=200, dt=20.0)
    run_suite(str(tmp_path / "real"), sim, prior, 4, chunk_size=2, seed=3, progress=False)
    d = SuiteStore.open(tmp_path / "real").load(require_complete=True)
    cfg = simmod.SimConfig(n_particles=200, dt=20.0, on_invalid="nan")
    # the suite's chunks are vmapped batches of 2: recompute chunk 1 the same way from the documented keys.
    # (Single eager calls differ: 2.2 Gyr orbits amplify last-ulp differences between compilations and
    # the 3-sigma clipping turns them into different kept stars, so only equal programs compare exactly.)
    ks = [jax.random.fold_in(jax.random.PRNGKey(3), i) for i in (2, 3)]
    thetas = jax.numpy.stack([prior.sample(jax.random.fold_in(k, 0)) for k in ks])
    np.testing.assert_allclose(np.asarray(thetas), d.theta[2:4], rtol=1e-14)  # eager vs jit: last-ulp differences
    sim_keys = jax.numpy.stack([jax.random.fold_in(k, 1) for k in ks])
    x = jax.jit(jax.vmap(lambda t, k: simmod.summary_vector(t, k, cfg)))(jax.numpy.asarray(d.theta[2:4]), sim_keys)
    np.testing.assert_array_equal(np.asarray(x), d.summaries[2:4])
    np.testing.assert_array_equal(d.key_data[2:4], np.asarray(jax.numpy.stack(ks)))


@pytest.mark.slow
def test_real_simulator_sharded_over_4_devices_matches_1(tmp_path, prior):
    """The MW-LMC simulator (chaotic tracer orbits amplify any last-bit difference) gives the same
    summaries bit for bit on 4 CPU devices as on 1: every device runs the same program."""
    code = (
        "import sys, numpy as np, jax; jax.config.update('jax_enable_x64', True);"
        "from jaxhalo.sbi.priors import brooks2026_prior; from jaxhalo.sbi.simulators import brooks_simulator;"
        "from jaxhalo.sbi.suite import simulate_indices;"
        "_, th, out = simulate_indices(brooks_simulator(n_particles=200, dt=20.0), brooks2026_prior(), 3, np.arange(8));"
        "assert len(jax.devices()) == 4; np.save(sys.argv[1], out['summaries'])"
    )
    path = tmp_path / "four.npy"
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=900,
                       env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"))
    assert r.returncode == 0, r.stderr[-3000:]
    from jaxhalo.sbi.simulators import brooks_simulator

    _, _, out1 = simulate_indices(brooks_simulator(n_particles=200, dt=20.0), prior, 3, np.arange(8))
    four = np.load(path)
    assert np.isfinite(four).any()
    assert np.array_equal(four, out1["summaries"], equal_nan=True)


def test_brooks_simulator_with_reflex_fit_outputs():
    """With reflex_fit the suite stores the per-simulation reflex fit next to the summaries."""
    from jaxhalo.sbi.simulators import brooks_simulator

    shapes = brooks_simulator(reflex_fit=True, n_particles=100, dt=50.0).output_shapes()
    assert shapes["summaries"][0] == (52,)
    assert shapes["reflex_params"][0] == (18,) and shapes["v_travel"][0] == (3,) and shapes["v_travel_xyz"][0] == (3, 3)
    assert "reflex_fit" in brooks_simulator(reflex_fit=True, n_particles=100).identity()["config"]


@pytest.mark.slow
def test_real_simulator_suite_with_reflex_fit(tmp_path, prior):
    """A small real suite with per-simulation reflex fits: finite travel velocities for valid theta,
    |v_travel| equal to the norm of the stored Cartesian components."""
    from jaxhalo.sbi.simulators import brooks_simulator

    sim = brooks_simulator(reflex_fit=True, n_particles=2000, dt=10.0)
    run_suite(str(tmp_path / "rf"), sim, prior, 4, chunk_size=4, seed=5, progress=False)
    rows = SuiteStore.open(tmp_path / "rf").load(require_complete=True)
    ok = np.isfinite(rows.summaries).any(axis=1)
    vt = rows.outputs["v_travel"]
    assert ok.any() and np.isfinite(vt[ok]).all() and (vt[ok] >= 0).all()
    np.testing.assert_allclose(vt[ok], np.linalg.norm(rows.outputs["v_travel_xyz"][ok], axis=-1), rtol=1e-12)


def test_train_with_reflex_needs_reflex_fits(tmp_path, prior, capsys):
    """`jaxhalo sbi train --with-reflex` on a suite without per-simulation reflex fits: a clear error."""
    from jaxhalo.cli import main

    sim = linear_gaussian_simulator(prior, n_particles=50)
    run_suite(str(tmp_path / "toy"), sim, prior, 8, chunk_size=8, seed=1, progress=False)
    rc = main(["sbi", "train", str(tmp_path / "toy"), "--out", str(tmp_path / "m.npe"), "--with-reflex", "--no-progress"])
    assert rc != 0
    assert "--reflex-fit" in capsys.readouterr().err


def test_suite_run_disc_option(tmp_path):
    """`jaxhalo suite run --disc` reaches the brooks simulator's configuration (and so the store's
    manifest); with the toy simulator, which has no disc, it is refused before anything runs."""
    from jaxhalo.cli import main
    from jaxhalo.sbi.priors import get_prior
    from jaxhalo.sbi.simulators import make_simulator

    assert make_simulator("brooks", get_prior("brooks2026"), disc="miyamoto-nagai").config["disc"] == "miyamoto-nagai"
    assert make_simulator("brooks", get_prior("brooks2026")).config["disc"] == "exact"
    rc = main(["suite", "run", "--n", "2", "--chunk", "2", "--out", str(tmp_path / "s"), "--simulator", "linear-gaussian",
               "--disc", "exact"])
    assert rc == 2 and not (tmp_path / "s").exists()
