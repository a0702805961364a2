"""Suite stores under faults: a truncated chunk, a flipped bit, a resume with other result-changing settings.

Each chunk carries a SHA-256 of its arrays; ``info`` counts a bad chunk as missing, ``load`` (``sbi
train``) refuses it, and ``run_suite`` recomputes it (bit-identical to the original) and says so.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_simulator
from jaxhalo.sbi.store import SuiteConfigError, SuiteStore, SuiteStoreError
from jaxhalo.sbi.suite import run_suite

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prior():
    return brooks2026_prior()


@pytest.fixture()
def store(tmp_path, prior):
    sim = linear_gaussian_simulator(prior, n_summaries=4)
    path = tmp_path / "s"
    run_suite(str(path), sim, prior, 12, chunk_size=4, seed=3, progress=False)
    return path, sim


def _flip_bit(path, dataset="theta"):
    with h5py.File(path, "r+") as f:
        a = f[dataset][()]
        raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8).copy()
        raw[5] ^= 0x10  # one bit of the first value
        f[dataset][...] = raw.view(a.dtype).reshape(a.shape)


@pytest.mark.parametrize("fault", ["truncate", "bitflip"])
def test_bad_chunk_is_found_refused_and_recomputed(store, prior, fault, capsys):
    path, sim = store
    s = SuiteStore.open(path)
    ref = s.load()
    chunk = s.chunk_path(1)
    if fault == "truncate":
        data = chunk.read_bytes()
        chunk.write_bytes(data[: len(data) // 2])
    else:
        _flip_bit(chunk)
    info = s.info()
    assert list(info["corrupt_chunks"]) == [1]
    assert info["simulations_done"] == 8 and info["missing_ranges"] == [[4, 8]]
    if fault == "bitflip":
        assert "checksum" in info["corrupt_chunks"][1]
    with pytest.raises(SuiteStoreError, match="corrupt chunk file"):
        s.load()  # what `sbi train` reads
    rep = run_suite(str(path), sim, prior, 12, chunk_size=4, seed=3, progress=False)
    assert rep.chunks_written == [1]
    assert "chunk 1 is corrupt and is recomputed" in capsys.readouterr().out
    again = SuiteStore.open(path).load(require_complete=True)
    assert np.array_equal(again.theta, ref.theta) and np.array_equal(again.summaries, ref.summaries)
    assert SuiteStore.open(path).info()["corrupt_chunks"] == {}


def test_resume_with_another_micro_batch_is_refused(store, prior):
    path, sim = store
    with pytest.raises(SuiteConfigError, match="--micro-batch 4"):
        run_suite(str(path), sim, prior, 12, chunk_size=4, seed=3, progress=False, micro_batch=2)
    run_suite(str(path), sim, prior, 12, chunk_size=4, seed=3, progress=False, micro_batch=4)  # the same: fine


def test_claims_are_exclusive_and_stale_ones_are_reclaimed(store):
    path, _ = store
    s = SuiteStore.open(path)
    s.chunk_path(2).unlink()  # chunk 2 to do
    assert s.claim_chunk(2)
    assert not SuiteStore.open(path).claim_chunk(2)  # a second writer (same live pid here) is refused
    assert s.locked_chunks() == [2]
    s.release_chunk(2)
    assert not s.claim_chunk(1)  # a finished chunk is never claimed
    # a lock and a temporary file left by a dead process are stale and removed
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    pid = int(dead)
    lock = s.chunk_dir / ".c00000002.h5.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "time": 0}))
    tmp = s.chunk_dir / f".c00000002.h5.{pid}.abcd1234.tmp"
    tmp.write_bytes(b"half a chunk")
    assert s.claim_chunk(2)  # the stale lock is reclaimed
    s.release_chunk(2)
    assert sorted(s.clean_stale()) == [tmp.name]
    assert s.stray_files() == [] and s.locked_chunks() == []


def test_row_status_is_stored_and_counted(tmp_path, prior):
    sim = linear_gaussian_simulator(prior, n_summaries=4)
    path = tmp_path / "st"
    run_suite(str(path), sim, prior, 8, chunk_size=4, seed=1, progress=False)
    s = SuiteStore.open(path)
    assert s.info()["row_status"] == {"valid": 8, "infeasible theta (no finite summary)": 0, "some NaN summaries": 0}
    rec = s.read_chunk(0)
    x = rec["outputs"]["summaries"].copy()
    x[0] = np.nan
    x[1, 2] = np.nan
    s.chunk_path(0).unlink()
    s.write_chunk(0, rec["index"], rec["key_data"], rec["theta"], {"summaries": x})
    counts = s.info()["row_status"]
    assert counts == {"valid": 6, "infeasible theta (no finite summary)": 1, "some NaN summaries": 1}
    assert s.load().row_status.tolist() == [1, 2, 0, 0, 0, 0, 0, 0]


def test_overlapping_writers_compute_each_chunk_once(tmp_path):
    """Two `jaxhalo suite run` processes on one store at the same time: every chunk is written by exactly one."""
    out = tmp_path / "both"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "jaxhalo", "suite", "run", "--simulator", "linear-gaussian", "--no-progress",
           "--n", "800", "--chunk", "4", "--seed", "5", "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    wrote = [int(re.search(r"wrote (\d+) chunk", o[0]).group(1)) for o in outs]
    # no chunk computed twice: 200 writes for 200 chunks (with the claims disabled the same run made 400)
    assert sum(wrote) == 200, (wrote, [o[0] for o in outs])
    assert SuiteStore.open(out).load(require_complete=True).theta.shape[0] == 800
    print("chunks written by each writer:", wrote)


def test_resume_in_another_precision_is_refused(store, prior):
    path, sim = store
    s = SuiteStore.open(path)
    assert s.chunk_settings(0, ["x64"]) == {"x64": True}  # the tests run in float64
    with h5py.File(s.chunk_path(0), "r+") as f:  # pretend the store was computed in float32
        f.attrs["x64"] = False
    s.chunk_path(2).unlink()
    with pytest.raises(SuiteConfigError, match="computed in float32"):
        run_suite(str(path), sim, prior, 12, chunk_size=4, seed=3, progress=False)


def test_resume_with_another_jaxhalo_version_is_refused(store, prior):
    """The chunks record ``jaxhalo <version> git <commit>``; another version refuses the resume, another
    commit of the same version does not (the version is the contract, as with --micro-batch and x64)."""
    from jaxhalo import __version__
    from jaxhalo.sbi.store import package_version

    path, sim = store
    s = SuiteStore.open(path)
    have = s.chunk_settings(0, ["code_version"])["code_version"]
    assert package_version(have) == __version__
    with h5py.File(s.chunk_path(0), "r+") as f:  # another commit of this version: resumes
        f.attrs["code_version"] = f"jaxhalo {__version__} git 000000000000+dirty"
    s.chunk_path(2).unlink()
    assert run_suite(str(path), sim, prior, 12, chunk_size=4, seed=3, progress=False).chunks_written == [2]
    with h5py.File(s.chunk_path(0), "r+") as f:  # pretend an older release computed the store
        f.attrs["code_version"] = "jaxhalo 0.0.1 git 0123456789ab"
    s.chunk_path(2).unlink()
    with pytest.raises(SuiteConfigError, match=r"computed by jaxhalo 0\.0\.1 .*this is jaxhalo .*resume it with jaxhalo 0\.0\.1"):
        run_suite(str(path), sim, prior, 12, chunk_size=4, seed=3, progress=False)
    assert not s.chunk_path(2).exists()  # refused before computing anything
