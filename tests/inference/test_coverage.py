"""Slow: calibration of the continuity-model posteriors over 50 mocks (benchmarks/bench_coverage.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


@pytest.mark.slow
def test_continuity_model_coverage():
    from benchmarks.bench_coverage import coverage

    res = coverage(n_mocks=50, verbose=False)
    print(res)
    # 18 x 50 intervals: the pooled rate has a binomial sd of ~1.6% if calibrated (68%).
    assert 0.60 <= res["pooled"] <= 0.76
    # Individual parameters have sd ~6.6% with 50 mocks: flag only gross miscalibration.
    assert 0.45 <= res["min"] and res["max"] <= 0.90
