"""Tests for jaxhalo.inference.per_bin: bucketing, and per-bin NUTS recovering known posteriors."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from jaxhalo.inference.profiles import MixturePrior, mixture_profile_model
from jaxhalo.likelihoods.binned import BinError, EmptyBinWarning, summarize_profile
from jaxhalo.mocks.populations import population_mock
from jaxhalo.inference.per_bin import (MAX_DRAWS_FACTOR, MIN_OVERHEAD_STARS, bucket_bins, bucket_draw_factors, nuts_per_bin,
                                       per_bin_inference_data)


def _cost(groups, counts, overhead):
    return sum(len(g) * max(counts[i] for i in g) + overhead for g in groups)


@pytest.mark.parametrize("seed", range(6))
def test_bucket_bins_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 5000, size=int(rng.integers(1, 8)))
    overhead = float(rng.uniform(0, 4000))
    got = bucket_bins(counts, overhead)
    assert sorted(i for g in got for i in g) == list(range(counts.size))
    order = list(np.argsort(-counts, kind="stable"))
    best = np.inf
    for cuts in itertools.product([0, 1], repeat=len(order) - 1):  # every run partition of the sorted bins
        groups, cur = [], [order[0]]
        for c, b in zip(cuts, order[1:]):
            if c:
                groups.append(cur)
                cur = []
            cur.append(b)
        groups.append(cur)
        best = min(best, _cost(groups, counts, overhead))
    assert _cost(got, counts, overhead) == pytest.approx(best, rel=1e-12)


def test_bucket_bins_li2025_layout_and_empty_bins():
    # Li et al. Table 1 counts at 64,000 stars: the all-stars row is bucketed alone
    counts = [64000, 6933, 6828, 6681, 6611, 6581, 6417, 6186, 5826, 5270, 4152, 1581, 772, 162]
    got = bucket_bins(counts)
    assert got[0] == [0] and 2 <= len(got) <= 3
    assert bucket_bins([10, 0, 5], 1e9) == [[0, 2]]  # empty bins are left out
    # a small catalogue's bins share one compiled program (MIN_OVERHEAD_STARS), ...
    assert bucket_bins([208, 87, 0]) == [[0, 1]]
    # ... unless padding costs more star slots than that floor
    assert bucket_bins([3 * MIN_OVERHEAD_STARS, 100]) == [[0], [1]]


@pytest.fixture(scope="module")
def two_bin_fit():
    """Two bins from different single-component populations (400 and 250 stars) plus a bin of
    4 stars; K = 1 model with wide uniform priors."""
    truths = [
        (np.array([[10.0, -20.0, 5.0]]), np.array([[120.0, 80.0, 70.0]])),
        (np.array([[-30.0, 15.0, 0.0]]), np.array([[90.0, 110.0, 60.0]])),
    ]
    sizes = (400, 250)
    xs, es = [], []
    for i, ((mu, sg), n) in enumerate(zip(truths, sizes)):
        m = population_mock(jax.random.PRNGKey(10 + i), n, [1.0], mu, sg, [15.0, 25.0, 25.0])
        xs.append(np.asarray(m["x"]))
        es.append(np.asarray(m["errors"]))
    x, e = np.concatenate(xs), np.concatenate(es)
    masks = np.zeros((3, len(x)), bool)
    masks[0, :400] = True
    masks[1, 400:] = True
    masks[2, 400:404] = True  # too few stars
    prior = MixturePrior(np.full(3, -200.0), np.full(3, 200.0), np.full(3, 5.0), np.full(3, 300.0))
    static = dict(n_components=1, prior=prior, order_column=2, beta_columns=(0, 2, 1))
    with pytest.warns(EmptyBinWarning):
        res = nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, static, key=jax.random.PRNGKey(3),
                           num_warmup=200, num_samples=300, num_chains=2, fill={"errors": 1.0}, vectorize=False)
    return res, truths, x, e, masks, static


def test_nuts_per_bin_recovers_truth_and_analytic_widths(two_bin_fit):
    res, truths, x, e, masks, _ = two_bin_fit
    s = res.flat_samples()
    assert s["mean"].shape == (600, 3, 1, 3) and s["sigma"].shape == (600, 3, 1, 3)
    assert res.valid.tolist() == [True, True, False] and res.counts.tolist() == [400, 250, 4]
    assert res.thin.tolist() == [1, 1, 0]  # default draws_per_bucket="equal": one iteration per draw
    assert np.all(np.isnan(s["mean"][:, 2])) and np.all(np.isnan(s["beta"][:, 2]))
    assert int(res.diverging.sum()) == 0
    for b, (mu, sg) in enumerate(truths):
        post_mu, post_s = s["mean"][:, b, 0], s["sigma"][:, b, 0]
        for post, truth in ((post_mu, mu[0]), (post_s, sg[0])):
            z = np.abs(np.median(post, 0) - truth) / post.std(0)
            assert np.all(z < 4.0), (b, z)
        # width of the mean's posterior: 1 / sd^2 = sum_i 1 / (sigma^2 + e_i^2) (Gaussian, flat prior)
        sel = masks[b]
        med_s = np.median(post_s, 0)
        sd_expected = 1.0 / np.sqrt(np.sum(1.0 / (med_s**2 + e[sel] ** 2), axis=0))
        np.testing.assert_allclose(post_mu.std(0), sd_expected, rtol=0.2)
    # per-bin adaptation: the larger bin's narrower posterior is reflected in its own step size
    assert np.all(np.isfinite(res.step_size[:, :2])) and np.all(np.isnan(res.step_size[:, 2]))


def test_per_bin_inference_data_names_dims_and_units(two_bin_fit, tmp_path):
    """The per-bin fit as arviz InferenceData: dims (chain, draw, bin, component, column), r_mid and the
    label along bin, the unfitted bin left out and listed, units on every variable; az.summary and a
    netCDF round trip work."""
    import json

    import arviz as az

    res = two_bin_fit[0]
    ranges = np.array([[40.0, 60.0], [60.0, 90.0], [90.0, 160.0]])
    idata = per_bin_inference_data(res, ranges, columns=("v_r", "v_phi", "v_theta"), components=("all",),
                                   order_column=2)
    post = idata.posterior
    assert post["sigma"].dims == ("chain", "draw", "bin", "component", "column")
    assert post["beta"].dims == ("chain", "draw", "bin", "component")
    assert post["order_frac_0"].dims == ("chain", "draw", "bin")
    assert post["mean_other"].dims == ("chain", "draw", "bin", "component", "column_other")
    assert post["bin"].values.tolist() == [0, 1] and json.loads(post.attrs["skipped_bins"]) == [2]
    assert post["r_mid"].values.tolist() == [50.0, 75.0] and post["label"].values.tolist() == ["40-60 kpc", "60-90 kpc"]
    assert post["n_stars"].values.tolist() == [400, 250]
    assert post["column"].values.tolist() == ["v_r", "v_phi", "v_theta"]
    assert post["column_other"].values.tolist() == ["v_r", "v_phi"]
    np.testing.assert_array_equal(post["sigma"].values, res.samples["sigma"][:, :, :2])
    assert post["sigma"].attrs["units"] == "km/s" and post["beta"].attrs["units"] == ""
    assert all(v.attrs.get("description") for v in post.data_vars.values())
    assert idata.sample_stats["diverging"].dims == ("chain", "draw", "bin")
    summ = az.summary(idata, var_names=["sigma"])
    assert len(summ) == 6 and "sigma[1, all, v_phi]" in summ.index
    np.testing.assert_allclose(summ.loc["sigma[1, all, v_phi]", "mean"], res.samples["sigma"][:, :, 1, 0, 1].mean(),
                               atol=1e-3)  # arviz rounds to 3 decimals
    assert np.all(summ["r_hat"] < 1.05)
    idata.to_netcdf(tmp_path / "profile.nc")
    back = az.from_netcdf(tmp_path / "profile.nc")
    assert back.posterior["sigma"].dims == post["sigma"].dims and back.posterior["sigma"].attrs["units"] == "km/s"
    assert back.posterior["r_mid"].values.tolist() == [50.0, 75.0]
    every = per_bin_inference_data(res, ranges, keep_empty=True)
    assert every.posterior["bin"].values.tolist() == [0, 1, 2] and np.all(np.isnan(every.posterior["sigma"][:, :, 2]))


@pytest.mark.slow  # > 30 s on 2 cores; keeps the default run under 12 min
def test_nuts_per_bin_vmapped_agrees_with_sequential(two_bin_fit):
    res, _, x, e, masks, static = two_bin_fit
    with pytest.warns(EmptyBinWarning):
        vec = nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, static, key=jax.random.PRNGKey(4),
                           num_warmup=200, num_samples=300, num_chains=1, fill={"errors": 1.0}, vectorize=True)
    a, b = res.flat_samples(), vec.flat_samples()
    for name in ("mean", "sigma"):
        sd = a[name][:, :2].std(0)
        z = np.abs(np.median(a[name][:, :2], 0) - np.median(b[name][:, :2], 0)) / sd
        assert np.all(z < 0.6), (name, z)


def test_nuts_per_bin_rejects_bad_input():
    x = np.zeros((20, 3))
    with pytest.raises(ValueError, match="masks must be"):
        nuts_per_bin(mixture_profile_model, np.ones(20, bool), {"x": x}, {})
    with pytest.raises(ValueError, match="mask"):
        nuts_per_bin(mixture_profile_model, np.ones((1, 20), bool), {"x": x, "mask": np.ones(20)}, {})
    with pytest.raises(ValueError, match="no bin"), pytest.warns(EmptyBinWarning):
        nuts_per_bin(mixture_profile_model, np.zeros((2, 20), bool), {"x": x}, {"n_components": 1})


def test_bucket_draw_factors_rule():
    counts = [64000, 6933, 6828, 6681, 6611, 6581, 6417, 6186, 5826, 5270, 4152, 1581, 772, 162]
    buckets = bucket_bins(counts)
    assert buckets[-1] == [11, 12, 13]
    # slots 64,000 / 69,330 / 4,743: round(sqrt(69330 / 4743)) = 4 for the small-bin bucket only
    assert bucket_draw_factors(counts, buckets) == [1, 1, 4]
    assert bucket_draw_factors([10**6, 10], [[0], [1]]) == [1, MAX_DRAWS_FACTOR]  # capped
    assert bucket_draw_factors([10**6, 10], [[0], [1]], max_factor=3) == [1, 3]
    assert bucket_draw_factors([500], [[0]]) == [1] and bucket_draw_factors([], []) == []


def test_nuts_per_bin_draws_per_bucket_thins_longer_runs():
    """Two bins with the same stars but one (so: two buckets, overhead 0); the second bucket runs 4
    iterations per returned draw. It returns as many draws, costs ~4x the leapfrog steps, and its ESS per
    returned draw is clearly higher than the first bin's. One leapfrog step per iteration
    (max_tree_depth=1) makes the chains autocorrelated, so thinning must show. With keep_every_iteration the
    same chains come back whole: bin 1's every 4th draw is the thinned run's, its ESS is not lower, bin 0 is
    NaN-padded, the quantiles skip the padding, and one InferenceData is refused."""
    import arviz as az

    rng = np.random.default_rng(0)
    x = rng.normal([0.0, 10.0, -5.0], [100.0, 80.0, 60.0], (200, 3))
    e = np.full_like(x, 10.0)
    masks = np.ones((2, len(x)), bool)
    masks[1, -1] = False
    prior = MixturePrior(np.full(3, -300.0), np.full(3, 300.0), np.full(3, 5.0), np.full(3, 300.0))
    static = dict(n_components=1, prior=prior, order_column=2, beta_columns=(0, 2, 1))
    kw = dict(key=jax.random.PRNGKey(7), num_warmup=60, num_samples=200, max_tree_depth=1, overhead_stars=0.0,
              fill={"errors": 1.0}, vectorize=False)
    with pytest.raises(ValueError, match="draws_per_bucket"):
        nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, static, draws_per_bucket=[1], **kw)
    with pytest.raises(ValueError, match="draws_per_bucket"):
        nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, static, draws_per_bucket="more", **kw)
    th = nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, static, draws_per_bucket=[1, 4], **kw)
    assert th.buckets == [[0], [1]] and th.thin.tolist() == [1, 4]
    assert th.samples["mean"].shape == (1, 200, 2, 1, 3)
    ratio = th.num_steps[:, :, 1].sum() / th.num_steps[:, :, 0].sum()
    assert 3.0 < ratio < 5.0, ratio  # 4x the iterations in bin 1
    assert np.all((th.accept_prob >= 0) & (th.accept_prob <= 1))

    def min_ess(b):
        v = np.concatenate([th.samples["mean"][:, :, b, 0], th.samples["sigma"][:, :, b, 0]], axis=-1)
        return float(np.asarray(az.ess(az.convert_to_dataset({"v": v}), method="bulk")["v"]).min())

    assert min_ess(1) > 1.8 * min_ess(0), (min_ess(1), min_ess(0))

    # keep_every_iteration: the same chains, every iteration returned; bin 0 padded to bin 1's length
    full = nuts_per_bin(mixture_profile_model, masks, {"x": x, "errors": e}, static, draws_per_bucket=[1, 4],
                        keep_every_iteration=True, **kw)
    assert full.samples["mean"].shape == (1, 800, 2, 1, 3) and full.n_draws.tolist() == [200, 800]
    assert full.thin.tolist() == [1, 1] and not full.equal_draws
    np.testing.assert_array_equal(full.samples["mean"][:, :200, 0], th.samples["mean"][:, :, 0])
    assert np.all(np.isnan(full.samples["mean"][:, 200:, 0])) and not full.diverging[:, 200:, 0].any()
    np.testing.assert_allclose(full.samples["mean"][:, 3::4, 1], th.samples["mean"][:, :, 1], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(full.bin_samples(0)["mean"], th.samples["mean"][:, :, 0])
    assert full.bin_samples(1)["mean"].shape == (1, 800, 1, 3)
    v = np.concatenate([full.bin_samples(1)["mean"][..., 0, :], full.bin_samples(1)["sigma"][..., 0, :]], axis=-1)
    # thinning a reversible chain never gains efficiency (Geyer 1992): the whole run holds at least the ESS
    assert float(np.asarray(az.ess(az.convert_to_dataset({"v": v}), method="bulk")["v"]).min()) > min_ess(1)
    q = summarize_profile(full.flat_samples(), full.valid)
    np.testing.assert_allclose(q["mean"][:, 0], np.quantile(th.samples["mean"][0, :, 0], (0.16, 0.5, 0.84), axis=0))
    with pytest.raises(BinError, match="different numbers of draws"):
        per_bin_inference_data(full)
