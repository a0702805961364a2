"""Suite stores under faults: a truncated chunk, a flipped bit, a resume with other result-changing settings.

Each chunk carries a SHA-256 of its arrays; ``info`` counts a bad chunk as missing, ``load`` (``sbi
train``) refuses it, and ``run_suite`` recomputes it (bit-identical to the original) and says so.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from jaxhalo.sbi.priors import brooks2026_prior
from jaxhalo.sbi.simulators import linear_gaussian_simulator
from jaxhalo.sbi.store import SuiteConfigError, SuiteStore, SuiteStoreError
from jaxhalo.sbi.suite import run_suite


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
