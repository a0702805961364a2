"""Binned fits: padding, one vmapped model over bins == separate single-bin fits, Han MC estimator."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import constrain_fn, potential_energy

from jaxhalo.inference.profiles import init_params, map_profile, mixture_profile_model, nuts_profile, per_bin_potential
from jaxhalo.likelihoods import binned
from jaxhalo.mocks.populations import li2025_profile_mock, population_mock


def test_pad_bins_gathers_members_and_flags_small_bins():
    rng = np.random.default_rng(0)
    r = rng.uniform(3, 160, 500)
    x = rng.normal(size=(500, 2))
    masks = binned.li2025_table1_masks(r)
    assert masks.shape == (14, 500) and masks[0].all()
    np.testing.assert_array_equal(masks[1:].sum(0), np.ones(500))  # shells partition the sample
    with pytest.warns(binned.EmptyBinWarning, match="fewer than 50 stars"):
        pb = binned.pad_bins(masks, x, r, min_stars=50)
    np.testing.assert_array_equal(pb.counts, masks.sum(1))
    np.testing.assert_array_equal(pb.valid, pb.counts >= 50)
    for j in (0, 5, 13):
        n = pb.counts[j]
        np.testing.assert_array_equal(np.asarray(pb.data[0][j, :n]), x[masks[j]])
        np.testing.assert_array_equal(np.asarray(pb.mask[j]), np.r_[np.ones(n), np.zeros(pb.mask.shape[1] - n)])
        assert np.isnan(np.asarray(pb.data[1][j, n:])).all()
    with pytest.raises(binned.BinError, match="strictly increasing"):
        binned.masks_from_edges(r, [10, 5])


@pytest.fixture(scope="module")
def table1_mock():
    m = li2025_profile_mock(jax.random.PRNGKey(2), 2800)
    masks = binned.li2025_table1_masks(m["r_gc"])
    with pytest.warns(binned.EmptyBinWarning):  # the outermost shell has 7 stars
        pb = binned.pad_bins(masks, np.asarray(m["x"]), np.asarray(m["errors"]), min_stars=10)
    data = dict(x=pb.data[0], errors=pb.data[1], mask=pb.mask)
    return m, masks, pb, data


@pytest.mark.slow  # > 30 s on 2 cores; keeps the default run under 12 min
def test_14_bin_log_density_equals_single_bin_models(table1_mock):
    """Per-bin potentials and gradients of the 14-bin model equal the single-bin models'."""
    m, masks, pb, data = table1_mock
    static = dict(n_components=2)
    p = init_params(mixture_profile_model, data, static, jax.random.PRNGKey(0))
    p = jax.tree_util.tree_map(lambda a: a + 0.1 * jnp.sin(jnp.arange(a.size).reshape(a.shape)), p)
    f = jax.jit(per_bin_potential(mixture_profile_model, data, static))
    per_bin = np.asarray(f(p))
    joint = potential_energy(mixture_profile_model, (), {**data, **static}, p)
    np.testing.assert_allclose(per_bin.sum(), float(joint), rtol=1e-12)
    g_joint = jax.jit(jax.grad(lambda q: potential_energy(mixture_profile_model, (), {**data, **static}, q)))(p)
    for j in (0, 12):
        sel = masks[j]
        dj = dict(x=jnp.asarray(m["x"])[sel][None], errors=jnp.asarray(m["errors"])[sel][None],
                  mask=jnp.ones((1, int(sel.sum()))))
        pj = {k: v[j : j + 1] for k, v in p.items()}
        uj, gj = jax.jit(jax.value_and_grad(lambda q: potential_energy(mixture_profile_model, (), {**dj, **static}, q)))(pj)
        np.testing.assert_allclose(per_bin[j], float(uj), rtol=1e-10)
        for k in gj:
            np.testing.assert_allclose(np.asarray(g_joint[k][j]), np.asarray(gj[k][0]), rtol=1e-9, atol=1e-9)


@pytest.mark.slow  # > 30 s on 2 cores; keeps the default run under 12 min
def test_14_bin_map_is_one_call_and_equals_separate_fits(table1_mock):
    """MAP (L-BFGS, fixed steps) of all 14 bins in one compiled call == single-bin MAP to 1e-8."""
    m, masks, pb, data = table1_mock
    static = dict(n_components=1)
    p0 = init_params(mixture_profile_model, data, static, jax.random.PRNGKey(0))
    params, u = map_profile(mixture_profile_model, data, static, init=p0, num_steps=40)
    c = constrain_fn(mixture_profile_model, (), {**data, **static}, params, return_deterministic=True)
    # converged: the gradient of each valid bin's potential is ~0
    g = jax.grad(lambda q: per_bin_potential(mixture_profile_model, data, static)(q).sum())(params)
    gmax = np.max(np.abs(np.concatenate([np.asarray(v)[pb.valid].reshape(int(pb.valid.sum()), -1) for v in g.values()], 1)))
    assert gmax < 1e-3
    for j in (7,):
        sel = masks[j]
        dj = dict(x=jnp.asarray(m["x"])[sel][None], errors=jnp.asarray(m["errors"])[sel][None],
                  mask=jnp.ones((1, int(sel.sum()))))
        pj0 = {k: v[j : j + 1] for k, v in p0.items()}
        qj, _ = map_profile(mixture_profile_model, dj, static, init=pj0, num_steps=40)
        cj = constrain_fn(mixture_profile_model, (), {**dj, **static}, qj, return_deterministic=True)
        for k in ("mean", "sigma", "beta"):
            np.testing.assert_allclose(np.asarray(c[k][j]), np.asarray(cj[k][0]), rtol=1e-8, atol=1e-8)
    # single-component MAP of the full sample ~ sample moments of the velocities
    assert abs(float(c["mean"][0, 0, 3]) - float(np.mean(m["x"][:, 3]))) < 0.01


@pytest.mark.slow  # > 20 s on 2 cores; keeps the default run under 12 min
def test_nuts_profile_reports_small_bins_as_nan(table1_mock):
    m, masks, pb, data = table1_mock
    sub = {k: v[-3:] for k, v in data.items()}  # shells [47.5,60), [60,80), [80,160] (7 stars)
    mcmc = nuts_profile(mixture_profile_model, sub, dict(n_components=1), key=jax.random.PRNGKey(3),
                        num_warmup=100, num_samples=100)
    s = mcmc.get_samples()
    summ = binned.summarize_profile(s, pb.valid[-3:])
    assert np.isnan(summ["beta"][:, 2]).all() and np.isfinite(summ["beta"][:, :2]).all()
    # sigma_r of the 60-80 kpc shell within 4 posterior sigma of its truth (105.6 / 105.3 km/s mix)
    draws = np.asarray(s["sigma"][:, 1, 0, 0])
    assert abs(draws.mean() - 105.5) < 4 * draws.std() + 3.0


def _han_numpy(rng, v, e, n_mc, frac):
    out = []
    n = len(v)
    for _ in range(n_mc):
        d = v + e * rng.normal(size=v.shape)
        keep = rng.permutation(n)[int(np.floor(frac * n)) :]
        s = d[keep].std(0, ddof=1)
        out.append(np.r_[s, 1 - (s[1] ** 2 + s[2] ** 2) / (2 * s[0] ** 2)])
    return np.array(out)


def test_han_mc_estimator_matches_numpy_reference():
    fr = np.array([1.0])
    m = population_mock(jax.random.PRNGKey(4), 3000, fr, np.zeros((1, 3)), np.array([[140.0, 80.0, 90.0]]),
                        np.array([5.0, 30.0, 30.0]))
    v, e = np.asarray(m["x"]), np.asarray(m["errors"])
    masks = np.stack([np.ones(3000, bool), np.r_[np.ones(8, bool), np.zeros(2992, bool)]])
    with pytest.warns(binned.EmptyBinWarning):
        pb = binned.pad_bins(masks, v, e)
    res = binned.han_mc_dispersions(jax.random.PRNGKey(0), pb.data[0], pb.data[1], pb.mask, n_mc=1000)
    ref = _han_numpy(np.random.default_rng(1), v, e, 1000, 0.1)
    med, ref_med = res["quantiles"][2, 0], np.median(ref, 0)
    # MC medians agree to a fraction of the MC spread; the spreads agree to 15%
    spread, ref_spread = res["draws"][0].std(0), ref.std(0)
    assert np.all(np.abs(med - ref_med) < 0.2 * ref_spread), (med, ref_med, ref_spread)
    np.testing.assert_allclose(spread, ref_spread, rtol=0.15)
    # undeconvolved: the dispersion is ~ sqrt(sigma^2 + 2 <err^2>) as stated in the docstring
    expect = np.sqrt(np.array([140.0, 80.0, 90.0]) ** 2 + 2 * np.mean(e**2, 0))
    np.testing.assert_allclose(med[:3], expect, rtol=0.04)
    assert np.isnan(res["quantiles"][:, 1]).all() and not res["valid"][1]


def test_ragged_layout_equals_padded_layout(table1_mock):
    """The no-padding (ragged) layout gives the padded model's log-density and gradient."""
    m, masks, pb, data = table1_mock
    static = dict(n_components=2)
    with pytest.warns(binned.EmptyBinWarning):
        rb = binned.ragged_bins(masks, np.asarray(m["x"]), np.asarray(m["errors"]))
    assert rb.data[0].shape[0] == masks.sum()
    rdata = dict(x=rb.data[0], errors=rb.data[1], mask=jnp.ones(rb.data[0].shape[0]), bin_index=rb.bin_index)
    p = init_params(mixture_profile_model, data, static, jax.random.PRNGKey(1))
    up, gp = jax.jit(jax.value_and_grad(lambda q: potential_energy(mixture_profile_model, (), {**data, **static}, q)))(p)
    ur, gr = jax.jit(jax.value_and_grad(
        lambda q: potential_energy(mixture_profile_model, (), {**rdata, **static, "n_bins": 14}, q)))(p)
    np.testing.assert_allclose(float(ur), float(up), rtol=1e-11)
    for k in gp:
        np.testing.assert_allclose(np.asarray(gr[k]), np.asarray(gp[k]), rtol=1e-9, atol=1e-9)


def test_init_params_refuses_a_start_with_a_non_finite_log_density():
    """init_params runs numpyro's initialize_model under jit, where it cannot raise: it refuses a non-finite
    log-density itself (a NaN datum), and returns the start otherwise."""
    import numpyro
    import numpyro.distributions as dist

    def model(x, mask):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        numpyro.factor("obs", jnp.sum(mask * dist.Normal(mu, 1.0).log_prob(x)))

    x = jnp.array([0.5, -0.2, 1.1])
    z = init_params(model, dict(x=x, mask=jnp.ones(3)), None, jax.random.PRNGKey(0))
    assert np.isfinite(float(z["mu"]))
    with pytest.raises(RuntimeError, match="finite log-density and gradient"):
        init_params(model, dict(x=x.at[1].set(jnp.nan), mask=jnp.ones(3)), None, jax.random.PRNGKey(0))
