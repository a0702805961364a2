"""The linearised synthetic-likelihood closed loop (benchmarks/bench_linear_sl.py) in its quick mode (slow set).

The quick loop (2 mocks of a 600-star, 60 Myr survey, K = 2, C from 60 simulations) is too small to say anything
about calibration; the full run records that in benchmarks/results/linear_sl_cpu2.json. Asserted is what holds
at any size: the budget is the two covariances and the linearisations and nothing for NUTS (here 2 x 60 +
linearisations x K x (1 + 2 x 12)), every posterior sigma is finite, positive and no wider than the prior allows
(NUTS samples the Table 1 prior times a likelihood), and the coverage fractions are fractions of the mocks.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_quick_closed_loop_counts_its_budget_and_is_bounded_by_the_prior():
    from benchmarks.bench_linear_sl import closed_loop

    from jaxhalo.sbi.priors import brooks2026_prior
    from jaxhalo.sbi.surrogate import prior_moments

    rec = closed_loop("quick")
    assert rec["n_mocks_done"] == 2 and len(rec["fits"]) == 2
    for f in rec["fits"]:
        assert f["total_simulation_equivalents"] == 2 * 60 + f["linearisations"] * 2 * (1 + 2 * 12)
    _, var, _ = prior_moments(brooks2026_prior())
    prior_sd = dict(zip(brooks2026_prior().names, np.sqrt(var)))
    for name, t in rec["targets"].items():
        assert math.isfinite(t["sigma_mean"]) and t["sigma_mean"] > 0, (name, t)
        if name in prior_sd:
            assert t["sigma_mean"] <= 1.1 * prior_sd[name], (name, t)
        assert t["truth_in_68"] in (0.0, 0.5, 1.0) and t["truth_in_68"] <= t["truth_in_95"]

    # --resume: from the record of the first mock, the second is fitted again and the record is the same
    resumed = closed_loop("quick", done=json.loads(json.dumps(rec["fits"][:1])))
    assert [f["mock"] for f in resumed["fits"]] == [0, 1]
    assert resumed["targets"] == rec["targets"]
    assert resumed["fits"][1]["targets"] == rec["fits"][1]["targets"]


def test_resume_refuses_a_record_of_other_settings_or_without_percentiles(tmp_path):
    from benchmarks.bench_linear_sl import SETTINGS, closed_loop, resumable_fits

    path = tmp_path / "fits.json"
    path.write_text(json.dumps({"settings": {**SETTINGS["compressed"], "n_particles": 1}, "fits": []}))
    with pytest.raises(ValueError, match="slope_adjustment"):
        resumable_fits("adjusted", path)
    assert resumable_fits("compressed", path) == []
    old = [{"mock": 0, "targets": {"log10_m200": {"median": 12.0, "sd": 0.1}}}]  # a record from before --resume
    with pytest.raises(ValueError, match="percentiles"):
        closed_loop("quick", done=old)


def test_quick_refined_closed_loop_adds_the_refinement_to_its_budget():
    """``--refine`` (quick): C again at the placement's mode and one more linearisation there with K' = 2 fresh
    keys: the budget adds K' x (1 + 2 x 12) simulations to the covariances and the placement, and the
    surrogate's centre is that mode."""
    from benchmarks.bench_linear_sl import closed_loop

    rec = closed_loop("quick_refined")
    assert rec["settings"]["refine_keys"] == 2
    for f in rec["fits"]:
        assert f["total_simulation_equivalents"] == 2 * 60 + f["linearisations"] * 2 * (1 + 2 * 12) + 2 * (1 + 2 * 12)
        np.testing.assert_array_equal(f["final_centre"], f["placement_mode"])


def test_quick_compressed_closed_loop_samples_the_compressed_likelihood_at_no_extra_cost():
    """``--compressed`` (quick): as the refined loop, with NUTS on the 12 score-compressed summaries: the same
    budget as ``quick_refined``, the refinement's centre the placement's mode, finite bounded posteriors."""
    from benchmarks.bench_linear_sl import closed_loop

    rec = closed_loop("quick_compressed")
    assert rec["settings"]["compression"] == "score"
    for f in rec["fits"]:
        assert f["total_simulation_equivalents"] == 2 * 60 + f["linearisations"] * 2 * (1 + 2 * 12) + 2 * (1 + 2 * 12)
        np.testing.assert_array_equal(f["final_centre"], f["placement_mode"])
    for name, t in rec["targets"].items():
        assert math.isfinite(t["sigma_mean"]) and t["sigma_mean"] > 0, (name, t)


def test_quick_adjusted_closed_loop_samples_the_godambe_adjusted_likelihood_at_no_extra_cost():
    """``--adjusted`` (quick): the compressed loop with the same keys and the Godambe-adjusted likelihood: the same
    budget, finite bounded posteriors, and no narrower than the compressed loop's on the same simulations (the
    adjustment takes the slopes' noise out of the information, it adds none) beyond NUTS's Monte Carlo error."""
    from benchmarks.bench_linear_sl import closed_loop

    rec = closed_loop("quick_adjusted")
    ref = closed_loop("quick_compressed")
    assert rec["settings"]["slope_adjustment"] == "godambe"
    for f, g in zip(rec["fits"], ref["fits"]):
        assert f["total_simulation_equivalents"] == g["total_simulation_equivalents"]
    for name, t in rec["targets"].items():
        assert math.isfinite(t["sigma_mean"]) and t["sigma_mean"] > 0, (name, t)
        assert t["sigma_mean"] > 0.9 * ref["targets"][name]["sigma_mean"], name
