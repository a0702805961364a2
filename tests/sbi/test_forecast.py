"""Survey forecasts: the survey's bins, the tracer count for a star count, and the forecast's 1/sqrt(N) scaling."""

from __future__ import annotations

import math
import subprocess
import sys

import jax.numpy as jnp
import pytest
from scipy.integrate import quad

from jaxhalo.sbi.fisher import FisherError
from jaxhalo.sbi.forecast import (
    Survey,
    particles_for_survey,
    prior_fisher_diagonal,
    survey_edges,
    survey_summary_labels,
)
from jaxhalo.simulation.brooks import SimConfig, tracer_density
from jaxhalo.simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES
from jaxhalo.simulation.summaries import (
    BROOKS_SUMMARY_LABELS,
    BROOKS_VGSR_EDGES,
    BROOKS_VTB_EDGES,
)


def test_the_default_survey_has_the_52_brooks_summaries():
    assert survey_summary_labels(Survey()) == BROOKS_SUMMARY_LABELS


def test_a_narrower_window_keeps_the_inner_edges_inside_it():
    s = Survey(r_min=40.0, r_max=120.0)
    assert survey_edges(s, BROOKS_VGSR_EDGES) == (40.0, 56.0, 82.0, 108.0, 120.0)
    ev, et = survey_edges(s, BROOKS_VGSR_EDGES), survey_edges(s, BROOKS_VTB_EDGES)
    assert len(survey_summary_labels(s)) == 2 * (4 * (len(ev) - 1) + len(et) - 1)
    wide = Survey(r_min=10.0, r_max=300.0)  # beyond the summaries' range: clipped to 30-160
    assert survey_edges(wide, BROOKS_VGSR_EDGES) == tuple(BROOKS_VGSR_EDGES)


def test_particles_for_survey_matches_the_tracer_mass_fraction_by_scipy():
    """N = n_stars / (M(30-160) / M(0.1-500)) with the fractions from scipy.quad of 4 pi r^2 rho (rtol 1e-10):
    the 4,096-node trapezoid in ln r agrees to well under one tracer in 1e4."""
    cfg = SimConfig()
    dens = tracer_density(jnp.asarray(FIDUCIAL_THETA), cfg)

    def dm(r):
        return 4.0 * math.pi * r * r * float(dens.density(jnp.asarray(r)))

    def mass(a, b):
        pts = [p for p in (1.0, 10.0, 15.0, 50.0) if a < p < b]
        return quad(dm, a, b, points=pts or None, limit=400, epsrel=1e-10)[0]

    frac = mass(30.0, 160.0) / mass(cfg.r_min, cfg.r_max)
    n = particles_for_survey(Survey(n_stars=10_000), FIDUCIAL_THETA, cfg)
    assert abs(n - 10_000 / frac) <= 1e-3 * n


def test_bad_surveys_are_named():
    with pytest.raises(FisherError, match="at least 10 stars"):
        Survey(n_stars=3)
    with pytest.raises(FisherError, match="r_min < r_max"):
        Survey(r_min=100.0, r_max=50.0)
    with pytest.raises(FisherError, match="v_los_err"):
        Survey(v_los_err=float("nan"))
    with pytest.raises(FisherError, match="does not overlap"):
        survey_edges(Survey(r_min=200.0, r_max=300.0), BROOKS_VGSR_EDGES)


def test_prior_information_of_the_normal_and_uniform_priors():
    """A normal prior adds 1 / sd^2, a uniform one of width w 1 / (w^2 / 12) (its variance): Table 1's
    log10 M200 in [10.5, 12.5] gives sigma 2 / sqrt(12) = 0.577, beta0 in [0, 0.85] 0.245."""
    d = prior_fisher_diagonal()
    assert d[PARAMETER_NAMES.index("d_lmc")] == pytest.approx(1 / 2.0**2)
    assert d[PARAMETER_NAMES.index("pmra_lmc")] == pytest.approx(1 / 0.25**2)
    assert 1 / math.sqrt(d[PARAMETER_NAMES.index("log10_m200")]) == pytest.approx(2.0 / math.sqrt(12.0))
    assert 1 / math.sqrt(d[PARAMETER_NAMES.index("beta0")]) == pytest.approx(0.85 / math.sqrt(12.0))
    assert 1 / math.sqrt(d[PARAMETER_NAMES.index("m_lmc")]) == pytest.approx(4.75e11 / math.sqrt(12.0))
    normal = prior_fisher_diagonal("normal")
    assert normal[PARAMETER_NAMES.index("log10_m200")] == 0.0 and normal[PARAMETER_NAMES.index("d_lmc")] == d[5]
    assert not prior_fisher_diagonal("none").any()
    with pytest.raises(FisherError, match="priors must be one of"):
        prior_fisher_diagonal("flat")


def test_forecast_cli_refuses_a_window_outside_the_summaries_fast(tmp_path):
    r = subprocess.run([sys.executable, "-m", "jaxhalo", "forecast", "--r-min", "200", "--r-max", "300",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "misses the summaries' 30-160 kpc range" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_forecast_sigma_falls_as_one_over_sqrt_n_stars(tmp_path):
    """Four times the stars (same window, errors, seed): the sigma of the well-constrained halo parameters
    (log10 M200, beta0) falls by ~2. The Jacobian of a mean over tracers does not depend on N (common random
    numbers), C falls as 1/N, so sigma scales as 1/sqrt(N). The band [1.3, 3.0] allows for the estimate:
    C from 80 simulations of 52 summaries leaves n - S = 28 degrees of freedom (~20 % scatter in each
    forecast width, so ~30 % in a ratio of two), and J is averaged over only 2 keys. Measured: 2.49 (M200)
    and 2.06 (beta0). gamma and r_dens are left out: they are nearly degenerate (correlation ~0.99), so their
    marginal widths are set by the Monte Carlo noise of J along the degenerate direction (measured ratio
    0.67 for gamma), not by C."""
    import json

    from jaxhalo.cli import main

    sig = {}
    for n in (400, 1600):
        out = tmp_path / f"n{n}"
        assert main(["forecast", "--n-stars", str(n), "--t-back", "50", "--dt", "5", "--n-jacobian", "2",
                     "--n-covariance", "80", "--covariance", "sample", "--no-plots", "--out", str(out)]) == 0
        info = json.loads((out / "forecast.json").read_text())
        sig[n] = {k: v["sigma"] for k, v in info["parameters"].items()}
        assert set(info["summaries_by_information_nats"]) == set(BROOKS_SUMMARY_LABELS)
    for name in ("log10_m200", "beta0"):
        ratio = sig[400][name] / sig[1600][name]
        assert 1.3 < ratio < 3.0, (name, ratio)
