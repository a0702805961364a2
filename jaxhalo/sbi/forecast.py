"""Survey forecasts for the MW-LMC simulator: what a halo survey will constrain, and with which summaries.

A survey is described by a star count, a radial selection in r_gal and per-star errors
(:class:`Survey`). The forecast is the Fisher matrix (:mod:`jaxhalo.sbi.fisher`) of the smooth
Brooks et al. summaries (:mod:`jaxhalo.simulation.smooth_summaries`) restricted to the survey's
radial range, with

* J = d mean summaries / d theta by forward-mode autodiff through the whole simulator (MW-LMC orbit,
  DF sampling, tracer orbits, mock observation with the survey's errors) with common random numbers,
  averaged over ``n_jacobian`` keys (``SimConfig(gradients="forward")``: no stored trajectory);
* C from ``n_covariance`` independent simulations at theta0 with the survey's errors drawn per star
  (Hartlap-debiased sample covariance, or the Ledoit-Wolf shrinkage estimate when there are fewer than
  2 S + 3 simulations; constant or duplicated summaries dropped with a warning: :mod:`jaxhalo.sbi.fisher`);
* the Table 1 priors' information added (:func:`prior_fisher_diagonal`: 1 / sd^2 for the normal priors,
  12 / w^2 for a uniform prior of width w), so that a parameter the summaries do not constrain comes out
  with its prior sigma and is flagged as prior-dominated instead of making F singular.

Gradients through long integrations of tracer orbits: tracers that pass within a few kpc of the centre
are not resolved by the leapfrog, their orbits are numerically chaotic and their tangents grow
exponentially (to 1e20-1e40 at dt = 1-2 Myr over 2.2 Gyr for tracers born inside ~5 kpc). The smooth
summaries' windows have compact support and mask zero-weight stars before every product
(:mod:`jaxhalo.simulation.smooth_summaries`), so a tracer *outside* every window cannot leak its tangent
into J (the earlier logistic windows gave it a weight ~1e-13, and 1e-13 x 1e40 swamped J). Tracers
*inside* the window on plunging orbits remain: at 500 Myr, dt = 1 Myr, DF from 5 kpc, 14 % of the
in-window tracers have pericentres below 3 kpc and one of them with a tangent ~1e6 km/s per prior width
carries 99 % of the sum of squared tangents, so ``FisherForecast.jacobian_noise`` of log10 M200 stays
~0.8 at 8 keys (benchmarks/results/forecast_chaos/). ``SimConfig(tangent_peri_min=r_c)`` (``jaxhalo
forecast --jacobian-peri-min``) cuts the derivatives of the tracers whose orbit reaches within r_c: at
r_c = 3 kpc the noise fraction of log10 M200 falls from 0.84 to 0.34 and the LMC parameters' information
changes by -4 % to -19 % (within their own Jacobian noise), but beta0, r_dens and gamma lose 80-99 % of
their information (it is carried by exactly those tracers): a biased J, opt-in, never the default.
At 2.2 Gyr J stays finite but is pure noise at 4 keys (in-window tangents to 1e17); with r_c = 5 kpc the
LMC directions come down to noise fractions ~0.5-0.8 and the MW and DF ones stay ~1.
The DF's inner radius ``SimConfig.r_min`` (``--df-r-min``) keeps the worst tracers out altogether.
``FisherForecast.jacobian_noise`` reports the fraction of each parameter's information that is still Monte
Carlo noise of J (near 1: that sigma is too small).

The number of simulated tracers is set so that the *expected* number inside the radial window equals
the survey's star count (:func:`particles_for_survey`, from the tracer density of theta0 between the
DF's r_min and r_max), so both the summaries' noise and C scale as the survey's.

Cost: one forward-mode Jacobian (the 12 tangents ride along one integration) costs ~40
simulations on 2 idle CPU cores (benchmarks/results/simulator_gradients_cpu2.json); ``n_covariance``
simulations for C. The default (8 keys + 200) is ~520 simulation equivalents, an hour or more on 2 CPU
cores at the Brooks et al. settings; reduce ``t_back``, ``dt`` or the star count for a quick look.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ..simulation.brooks import ObsConfig, SimConfig, simulate_observed, tracer_density
from ..simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES, PRIOR_TABLE1
from ..simulation.smooth_summaries import (
    SMOOTH_ANGLE_WIDTH,
    SMOOTH_R_WIDTH,
    smooth_brooks_summary_vector,
)
from ..simulation.summaries import BROOKS_VGSR_EDGES, BROOKS_VTB_EDGES, summary_labels
from .derived import lmc_enclosed_mass, mw_enclosed_mass
from .fisher import FisherError, FisherForecast, fisher_forecast, summary_information

#: Which priors :func:`survey_forecast` adds to F: all of Table 1, only its normal ones, or none.
PRIOR_CHOICES = ("table1", "normal", "none")

__all__ = ["Survey", "survey_edges", "survey_summary_labels", "particles_for_survey", "survey_simulator",
           "SurveyForecast", "PRIOR_CHOICES", "prior_fisher_diagonal", "survey_forecast"]


@dataclasses.dataclass(frozen=True)
class Survey:
    """A halo survey: ``n_stars`` expected stars in ``r_min`` <= r_gal <= ``r_max`` (kpc), each observed with
    a fractional distance error ``distance_frac_err``, a line-of-sight velocity error ``v_los_err`` (km/s)
    and proper-motion errors ``pm_err`` (mas/yr, both components). Defaults: the Brooks et al. (2026)
    window 30-160 kpc and their per-star errors (10 %, 2 km/s, 0.15 mas/yr), 4,500 stars."""

    n_stars: int = 4500
    r_min: float = 30.0
    r_max: float = 160.0
    distance_frac_err: float = 0.10
    v_los_err: float = 2.0
    pm_err: float = 0.15

    def __post_init__(self):
        if not (isinstance(self.n_stars, (int, np.integer)) and self.n_stars >= 10):
            raise FisherError(f"a survey needs at least 10 stars, got n_stars = {self.n_stars!r}")
        if not (math.isfinite(self.r_min) and math.isfinite(self.r_max) and 0.0 <= self.r_min < self.r_max):
            raise FisherError(f"need 0 <= r_min < r_max (kpc), got {self.r_min!r}, {self.r_max!r}")
        for name in ("distance_frac_err", "v_los_err", "pm_err"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise FisherError(f"{name} must be finite and >= 0, got {v!r}")

    def obs_config(self) -> ObsConfig:
        """The mock observation: the survey's errors drawn per star, no hard window (the soft bins select)."""
        return ObsConfig(add_errors=True, distance_frac_err=self.distance_frac_err, v_los_err=self.v_los_err,
                         pm_l_err=self.pm_err, pm_b_err=self.pm_err, r_gal_range=None)


def survey_edges(survey: Survey, edges: Sequence[float]) -> tuple[float, ...]:
    """The Brooks bin ``edges`` (kpc) restricted to the survey window: the inner edges that fall strictly
    inside (r_min, r_max), bracketed by r_min and r_max. Raises when the window misses 30-160 kpc entirely."""
    inner = [float(e) for e in edges if survey.r_min < e < survey.r_max]
    lo, hi = max(survey.r_min, float(edges[0])), min(survey.r_max, float(edges[-1]))
    if not lo < hi:
        raise FisherError(f"the survey window {survey.r_min:g}-{survey.r_max:g} kpc does not overlap the "
                          f"summaries' range {edges[0]:g}-{edges[-1]:g} kpc")
    return tuple([lo] + [e for e in inner if lo < e < hi] + [hi])


def survey_summary_labels(survey: Survey) -> tuple[str, ...]:
    """Names of the survey's smooth summaries (as :data:`~jaxhalo.simulation.summaries.BROOKS_SUMMARY_LABELS`,
    with the survey's bin edges)."""
    return summary_labels(survey_edges(survey, BROOKS_VGSR_EDGES), survey_edges(survey, BROOKS_VTB_EDGES))


def particles_for_survey(survey: Survey, theta0: ArrayLike = FIDUCIAL_THETA, config: SimConfig = SimConfig()) -> int:
    """Tracers to simulate so that the expected number with r_min <= r <= r_max is ``survey.n_stars``: the
    tracer mass fraction in the window (of the DF's range ``config.r_min``-``config.r_max``, at theta0;
    trapezoid in ln r on 4,096 nodes), N = ceil(n_stars / fraction)."""
    dens = tracer_density(jnp.asarray(theta0, dtype=float), config)
    ln_r = np.linspace(math.log(config.r_min), math.log(config.r_max), 4096)
    r = np.exp(ln_r)
    dm = 4.0 * np.pi * r**3 * np.asarray(dens.density(jnp.asarray(r)))
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dm[1:] + dm[:-1]) * np.diff(ln_r))])
    lo, hi = (np.interp(math.log(min(max(x, config.r_min), config.r_max)), ln_r, cum) for x in (survey.r_min, survey.r_max))
    frac = (hi - lo) / cum[-1]
    if not frac > 0:
        raise FisherError(f"no tracers between {survey.r_min:g} and {survey.r_max:g} kpc in the DF's range "
                          f"{config.r_min:g}-{config.r_max:g} kpc")
    return int(math.ceil(survey.n_stars / frac))


def survey_simulator(survey: Survey, config: SimConfig) -> Callable[[Array, Array], Array]:
    """``simulate(theta (12,), key) -> (S,)``: the survey's smooth summaries (km/s) of one simulation with
    ``config`` (use ``gradients="forward"`` for the Jacobian), the survey's errors drawn with the key."""
    obs_config = survey.obs_config()
    ev = jnp.asarray(survey_edges(survey, BROOKS_VGSR_EDGES))
    et = jnp.asarray(survey_edges(survey, BROOKS_VTB_EDGES))

    def simulate(theta: Array, key: Array) -> Array:
        obs = simulate_observed(theta, key, config, obs_config)
        return smooth_brooks_summary_vector(obs, r_width=SMOOTH_R_WIDTH, angle_width=SMOOTH_ANGLE_WIDTH,
                                            vgsr_edges=ev, vtb_edges=et)

    return simulate


@dataclasses.dataclass(frozen=True)
class SurveyForecast:
    """A survey forecast: the :class:`~jaxhalo.sbi.fisher.FisherForecast` of the 12 parameters, the summary
    labels (S,) and their information (S,) in nats (:func:`~jaxhalo.sbi.fisher.summary_information`),
    the derived quantities' names, values, forecast sigma and prior sigma (M_MW(<50 kpc), M_LMC(<50 kpc) in
    Msun; the prior's sigma propagated linearly), and the survey and simulation settings; the sigma of the
    parameters and derived quantities with the Jacobian's Monte Carlo noise subtracted
    (:meth:`~jaxhalo.sbi.fisher.FisherForecast.noise_subtracted`; None with one key)."""

    fisher: FisherForecast
    summary_labels: tuple[str, ...]
    information: np.ndarray
    derived_names: tuple[str, ...]
    derived_values: np.ndarray
    derived_sigma: np.ndarray
    survey: Survey
    config: SimConfig
    derived_prior_sigma: np.ndarray | None = None
    priors: str = "table1"
    sigma_noise_subtracted: np.ndarray | None = None
    derived_sigma_noise_subtracted: np.ndarray | None = None

    def parameter_table(self) -> list[dict]:
        """One row per parameter and derived quantity: name, fiducial value ``theta0``, forecast ``sigma``, the
        prior's ``prior_sigma`` (inf without a prior), ``prior_dominated`` (sigma > 0.5 x prior sigma: the
        summaries add little to the prior) and ``jacobian_noise`` (the fraction of the parameter's information
        that is Monte Carlo noise of the Jacobian; NaN for derived quantities or with one key) and
        ``sigma_noise_subtracted`` (the sigma with that noise taken out of the information,
        :meth:`~jaxhalo.sbi.fisher.FisherForecast.noise_subtracted`: an estimate of the noise-free sigma, itself
        noisy where ``jacobian_noise`` is large; NaN with one key)."""
        fc = self.fisher
        dps = self.derived_prior_sigma if self.derived_prior_sigma is not None else np.full(len(self.derived_names), np.inf)
        sns = self.sigma_noise_subtracted
        sns = np.full(len(fc.names), np.nan) if sns is None else sns
        dns = self.derived_sigma_noise_subtracted
        dns = np.full(len(self.derived_names), np.nan) if dns is None else dns
        rows = []
        for n, v, s, ps, jn, sn in zip(fc.names, fc.theta0, fc.sigma, fc.prior_sigma, fc.jacobian_noise, sns):
            rows.append({"name": n, "theta0": float(v), "sigma": float(s), "prior_sigma": float(ps),
                         "prior_dominated": bool(s > 0.5 * ps), "jacobian_noise": float(jn),
                         "sigma_noise_subtracted": float(sn)})
        for n, v, s, ps, sn in zip(self.derived_names, self.derived_values, self.derived_sigma, dps, dns):
            rows.append({"name": n, "theta0": float(v), "sigma": float(s), "prior_sigma": float(ps),
                         "prior_dominated": bool(s > 0.5 * ps), "jacobian_noise": float("nan"),
                         "sigma_noise_subtracted": float(sn)})
        return rows

    def information_ranking(self) -> list[tuple[str, float]]:
        """(label, information in nats) of every summary, most informative first."""
        order = np.argsort(-self.information)
        return [(self.summary_labels[i], float(self.information[i])) for i in order]


def prior_fisher_diagonal(priors: str = "table1") -> np.ndarray:
    """The Fisher information (12,) of the Brooks et al. (2026) Table 1 priors taken alone.

    A normal prior of standard deviation sd (the LMC's distance, v_los and proper motions) gives 1 / sd^2;
    a uniform prior on [a, b] gives 1 / ((b - a)^2 / 12), the inverse of its variance (the Gaussian with the
    prior's variance: a parameter the summaries do not constrain gets sigma = (b - a) / sqrt(12), the
    uniform prior's own sigma). ``priors``: "table1" (all), "normal" (the normal ones, 0 for the uniform
    ones) or "none" (zeros)."""
    if priors not in PRIOR_CHOICES:
        raise FisherError(f"priors must be one of {PRIOR_CHOICES}, got {priors!r}")
    out = []
    for n in PARAMETER_NAMES:
        kind, a, b = PRIOR_TABLE1[n]
        if priors == "none" or (kind == "uniform" and priors == "normal"):
            out.append(0.0)
        else:
            out.append(1.0 / b**2 if kind == "normal" else 12.0 / (b - a) ** 2)
    return np.array(out)


def _derived(theta: Array) -> Array:
    return jnp.stack([mw_enclosed_mass(theta[0], 50.0), lmc_enclosed_mass(theta[1], 50.0)])


def survey_forecast(
    survey: Survey = Survey(),
    theta0: ArrayLike = FIDUCIAL_THETA,
    key: Array | None = None,
    config: SimConfig | None = None,
    n_jacobian: int = 8,
    n_covariance: int = 200,
    priors: str = "table1",
    covariance: str = "auto",
) -> SurveyForecast:
    """Fisher forecast of the 12 Brooks et al. parameters and M_MW(<50 kpc), M_LMC(<50 kpc) for ``survey``.

    ``config`` (default the Brooks et al. 2026 set-up) sets everything but ``n_particles`` (from
    :func:`particles_for_survey`) and ``gradients`` ("forward" for the Jacobian). ``key`` (default
    ``jax.random.key(0)``) seeds both the common random numbers of J and the covariance simulations.
    ``priors`` (:func:`prior_fisher_diagonal`): "table1" (default) adds the information of every Table 1
    prior (uniform of width w: 12 / w^2), so that parameters the summaries barely constrain come out with
    about their prior sigma (flagged ``prior_dominated`` in :meth:`SurveyForecast.parameter_table`);
    "normal" only the LMC observables' normal priors; "none" the survey alone (F may then be singular:
    the error names the unconstrained direction). ``covariance``: the estimator of C
    (:func:`~jaxhalo.sbi.fisher.fisher_forecast`; "auto": the Hartlap-debiased sample covariance when
    ``n_covariance`` >= 2 S + 3, else Ledoit-Wolf shrinkage). The summaries' information is what each adds
    to the prior and the other summaries.
    """
    config = SimConfig() if config is None else config
    key = jax.random.key(0) if key is None else key
    theta0 = np.asarray(theta0, dtype=float)
    n = particles_for_survey(survey, theta0, config)
    cfg = dataclasses.replace(config, n_particles=n, gradients="forward")
    prior = np.diag(prior_fisher_diagonal(priors))
    fc = fisher_forecast(survey_simulator(survey, cfg), theta0, key, names=PARAMETER_NAMES,
                         n_jacobian=n_jacobian, n_covariance=n_covariance, covariance=covariance,
                         prior_fisher=prior, summary_labels=survey_summary_labels(survey))
    info = np.asarray(summary_information(fc.jacobian, fc.summary_cov, prior_fisher=prior, precision_scale=fc.hartlap))
    try:
        ns = fc.noise_subtracted()
        sns, dns = ns.sigma, ns.derived_sigma(_derived)
    except FisherError:  # one key, or no information left on a parameter without a prior
        sns = dns = None
    return SurveyForecast(
        fisher=fc, summary_labels=fc.summary_labels, information=info,
        derived_names=("m_mw_50", "m_lmc_50"), derived_values=np.asarray(_derived(jnp.asarray(theta0))),
        derived_sigma=fc.derived_sigma(_derived), survey=survey, config=cfg,
        derived_prior_sigma=fc.derived_prior_sigma(_derived), priors=priors,
        sigma_noise_subtracted=sns, derived_sigma_noise_subtracted=dns,
    )
