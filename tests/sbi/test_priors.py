"""Suite priors: Brooks et al. Table 1 as stated independently in jaxhalo.simulation.brooks, densities vs scipy,
validation of the model's valid range, and the derived enclosed masses."""

from __future__ import annotations

import jax
import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.stats

from jaxhalo.sbi.derived import derived_masses, mw_enclosed_mass
from jaxhalo.sbi.priors import PriorError, brooks2025_prior, brooks2026_prior, get_prior


def test_brooks2026_matches_simulator_table():
    """brooks2026_prior is built from the simulator's Table 1 (the one transcription): same names,
    order, distribution families and numbers."""
    from jaxhalo.simulation import brooks as simulator

    p = brooks2026_prior()
    assert p.names == tuple(simulator.PARAMETER_NAMES)
    for name, (kind, a, b) in simulator.PRIOR_TABLE1.items():
        d = p.dists[name]
        if kind == "uniform":
            assert isinstance(d, dist.Uniform) and float(d.low) == a and float(d.high) == b, name
        else:
            assert isinstance(d, dist.Normal) and float(d.loc) == a and float(d.scale) == b, name


def test_sampling_and_log_prob_against_scipy():
    p = brooks2026_prior()
    th = np.asarray(p.sample(jax.random.PRNGKey(0), (4000,)))
    assert th.shape == (4000, 12)
    lo, hi = p.bounds
    assert np.all((th >= lo) & (th <= hi))
    # sample moments of U(2.5e10, 5e11) and N(262.2, 5): 5 sigma
    i, j = p.names.index("m_lmc"), p.names.index("vlos_lmc")
    assert abs(th[:, i].mean() - 2.625e11) < 5 * (4.75e11 / np.sqrt(12)) / np.sqrt(4000)
    assert abs(th[:, j].std() - 5.0) < 5 * 5.0 / np.sqrt(2 * 4000)
    ref = sum(
        scipy.stats.uniform(float(d.low), float(d.high) - float(d.low)).logpdf(th[:10, k]) if isinstance(d, dist.Uniform)
        else scipy.stats.norm(float(d.loc), float(d.scale)).logpdf(th[:10, k])
        for k, d in enumerate(p.dists.values())
    )
    np.testing.assert_allclose(np.asarray(p.log_prob(th[:10])), ref, rtol=1e-12)
    bad = th[:1].copy()
    bad[0, i] = 1e10
    assert np.isneginf(np.asarray(p.log_prob(bad))[0]) and not bool(p.in_support(bad)[0])
    with pytest.raises(PriorError, match="'m_lmc'"):
        p.check_theta(bad)


def test_brooks2025_log10_m200_density():
    """log10(M200) of a truncated N(15, 5) x 1e11: density = N(10^y) 10^y ln 10 / Z."""
    p = brooks2025_prior()
    y = np.array([11.0, 11.8, 12.2, 12.6])
    m = 10.0**y
    trunc = scipy.stats.truncnorm((10**10.5 - 15e11) / 5e11, np.inf, loc=15e11, scale=5e11)
    want = trunc.logpdf(m) + np.log(m * np.log(10.0))
    np.testing.assert_allclose(np.asarray(p.dists["log10_m200"].log_prob(y)), want, rtol=1e-10)
    th = np.asarray(p.sample(jax.random.PRNGKey(1), (2000,)))
    assert np.all(th[:, p.names.index("gamma")] == 4.0)
    assert th[:, p.names.index("m_lmc")].min() >= 2.5e10
    assert np.all(np.asarray(p.in_support(th)))


def test_validation_names_the_parameter():
    p = brooks2026_prior()
    with pytest.raises(PriorError, match=r"'m_lmc'.*1\.7e10 Msun"):
        p.with_overrides({"m_lmc": dist.Uniform(1e10, 5e11)})  # below M(<8.7 kpc)
    with pytest.raises(PriorError, match="'m_lmc'"):
        p.with_overrides({"m_lmc": dist.Normal(1.5e11, 1e11)})  # Gaussian tail below 1.7e10
    with pytest.raises(PriorError, match="'beta0'"):
        p.with_overrides({"beta0": dist.Uniform(0.0, 1.2)})
    with pytest.raises(PriorError, match="unknown parameter"):
        p.with_overrides({"mass": dist.Uniform(0, 1)})
    with pytest.raises(PriorError, match="unknown prior"):
        get_prior("brooks2099")
    ok = p.with_overrides({"m_lmc": dist.TruncatedNormal(1.5e11, 1e11, low=2e10)})
    assert ok.bounds[0][1] == 2e10
    with pytest.raises(PriorError, match=r"shape \(\.\.\., 12\)"):
        p.log_prob(np.zeros(11))


def test_derived_masses_against_independent_forms():
    """M_MW(<50) = M200 mu(c r / R200) / mu(c) + bulge + disc, with c200 from the simulator's solve;
    M_LMC(<50) vs the Hernquist formula with a = 8.7 (sqrt(M / 1.7e10) - 1); NaN where no c200 exists."""
    from jaxhalo.dynamics.potentials import milky_way, r200_from_m200

    d = derived_masses(np.array([[12.2, 1.5e11, 0.0], [10.6, 1e11, -1.0]]), ["log10_m200", "m_lmc", "log10_lambda_df"])
    mw = milky_way(10.0**12.2)
    c, r200 = float(mw.c200), float(r200_from_m200(10.0**12.2))
    mu = lambda y: np.log1p(y) - y / (1 + y)  # noqa: E731
    disc = 5e10 * (1 - (1 + 50 / 3) * np.exp(-50 / 3))
    want = 10.0**12.2 * mu(c * 50 / r200) / mu(c) + float(mw.bulge.enclosed_mass(50.0)) + disc
    np.testing.assert_allclose(d["m_mw_lt50"][0], want, rtol=1e-9)
    assert np.isnan(d["m_mw_lt50"][1])  # no c200 gives 235 km/s at R_sun for M200 = 10^10.6
    m = np.array([1.5e11, 1e11])
    a = 8.7 * (np.sqrt(m / 1.7e10) - 1)
    np.testing.assert_allclose(d["m_lmc_lt50"], m * 2500 / (50 + a) ** 2, rtol=1e-12)
    np.testing.assert_allclose(d["mass_ratio_lt50"][0], d["m_lmc_lt50"][0] / d["m_mw_lt50"][0])
    np.testing.assert_allclose(d["lambda_df"], [1.0, 0.1])


@pytest.mark.slow
def test_derived_mw_mass_vs_monopole_of_full_potential():
    """The exponential-disc shortcut vs Gauss's theorem on the simulator's disc (the exact disc; spherical_average)."""
    from jaxhalo.dynamics.potentials import milky_way, spherical_average

    got = float(mw_enclosed_mass(np.array([12.2]))[0])
    ref = float(spherical_average(milky_way(10.0**12.2), r_min=40.0, r_max=60.0, n=5).enclosed_mass(50.0))
    np.testing.assert_allclose(got, ref, rtol=2e-3)
