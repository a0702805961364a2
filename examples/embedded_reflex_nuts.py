"""Embedding the reflex likelihood in a larger differentiable model: NUTS on the MW-LMC simulator's parameters.

The reflex ("travel velocity") likelihood of a star catalogue (:class:`jaxhalo.ReflexModel`, the
continuity model with the Cartesian travel vector linear in r between 40 and 120 kpc) is usually
fitted with free travel-vector parameters. Here those parameters are not free: they are the
*prediction of the MW-LMC simulator* (:mod:`jaxhalo.simulation.brooks`) from the simulator's own
parameters theta, and NUTS samples theta itself. The chain, all in JAX and differentiated end to end::

    theta_sub = (M_LMC, log10 lambda_DF)                 Brooks et al. (2026) Table 1 priors
      -> LMC potential, MW-LMC orbit with friction       (jaxhalo.dynamics.mwlmc, leapfrog)
      -> N tracers integrated in the moving MW + LMC     (jaxhalo.simulation.tracer_orbits, leapfrog)
      -> travel vectors T_40, T_120 (km/s) at the anchors and their Monte Carlo errors
      -> continuity-model log-likelihood of the catalogue (jaxhalo.likelihoods.reflex)

**The predicted reflex.** The continuity model's mean velocity of the halo is
<v>(r) = -v_travel(r) + bulk spherical terms, with v_travel(r) = T_40 (1 - t) + T_120 t and
t = (r - 40 kpc) / 80 kpc. The simulator's prediction of (T_40, T_120) is the weighted least-squares
fit of exactly that line to the tracers' true MW-centred velocities, -v_i ~ T_40 (1 - t_i) + T_120 t_i,
over the tracers in a soft 40-120 kpc window (sigmoid edges, 1 kpc wide), i.e. the bulk velocity of
the halo relative to the MW centre as a linear function of radius (the bulk spherical terms average to
zero over the sphere and are left to the likelihood's nuisance parameters). Its standard errors come
from the regression residuals: with a finite number of tracers the prediction carries Monte Carlo
noise (~6-10 km/s per component with 1,500-3,000 tracers, comparable to what ~1,000 stars measure), so the travel vectors
enter the likelihood as latent parameters, T = prediction(theta) + se(theta) z, z ~ N(0, 1): the
simulator's noise is marginalised instead of being mistaken for signal. With common random numbers
(one fixed key) the prediction is a smooth function of theta.

**Gradients.** The simulator is differentiated in forward mode (two tangents, one per parameter of
theta_sub; the MW-LMC orbit with ``diffrax.ForwardMode``), wrapped in a ``jax.custom_vjp`` whose
backward pass is J^T g (:func:`forward_jacobian_vjp`), so that numpyro's NUTS differentiates the whole
posterior in reverse mode as usual and the 18 cheap parameters (latent travel vectors, nuisance means
and dispersions) cost nothing extra in the simulator. The Milky Way (M200 and everything else of
theta) is fixed, so the MW potential, the halo's DF and the tracers drawn from it are built once; each
evaluation rebuilds the LMC, its orbit and the tracer orbits. Only the tracers that end within 10 kpc
of the 40-120 kpc window at some point of a 3 x 2 grid spanning the prior are integrated
(:func:`preselect`; ~45% of them; the prediction at the truth changes by 1e-4 km/s). The tracers are
drawn from the DF with r_min = 10 kpc: tracers born further in have orbital periods the 1 Myr leapfrog
does not resolve, and their tangents blow up (tests/simulation/test_simulator_gradients.py). M200 is
*not* sampled: its per-tracer tangents are heavy-tailed (over the window's tracers the 99th percentile
of |dv/dlog10 M200| was ~9,000 km/s per dex and the largest ~50,000, against ~100 and ~1,200 km/s per
1e11 Msun for M_LMC), so with a few thousand tracers the predicted reflex is a rough function of M200.

**Cost.** One gradient of the posterior is one forward-mode simulation: ~0.3 s on 2 busy CPU cores for
~700 tracers over 300 Myr (quick mode), ~1 s for ~1,400 over 400 Myr (full mode). That sets the sizes:
integration times of 300-400 Myr (the simulator's own default is 2,200 Myr: the LMC's last few hundred
Myr make most of the reflex, and the mock is made with the same setting, so the loop is closed), a few
thousand tracers, one chain of a few hundred draws. The nuisance parameters are sampled in coordinates
centred and scaled by the catalogue's own maximum-likelihood fit (:class:`NuisanceFrame`; the priors
are unchanged), so that a short warm-up suffices.

**The mock catalogue.** A separate simulation at the true theta (a different key, so an independent
realisation of the halo, and more tracers), observed from the Sun with per-star errors (10% in
distance, 2 km/s in v_los, 0.15 mas/yr in proper motion; :func:`jaxhalo.simulation.observe.observe`),
40 <= r_gal <= 120 kpc on the observed distance, then ``n_stars`` drawn at random. The likelihood is
therefore misspecified in the way real data would make it: the halo is not a Gaussian with a linear
mean, and the simulator's realisation is not the data's.

Outputs: ``<out>/embedded_reflex_nuts_<device>.json`` (house format of benchmarks/common.py: device,
date, load average, wall times) and ``<out>/embedded_reflex_nuts.png`` (posterior of theta_sub with the
truth marked)::

    python examples/embedded_reflex_nuts.py                 # full: writes to benchmarks/results/
    python examples/embedded_reflex_nuts.py --quick OUT_DIR # small and short (the slow test)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array
from numpyro.infer import MCMC, NUTS, init_to_value

from jaxhalo.dynamics.df import sample_df
from jaxhalo.dynamics.mwlmc import LMCObservables, integrate_mw_lmc, lmc_present_day
from jaxhalo.dynamics.potentials import MilkyWay, lmc_hernquist
from jaxhalo.frames import spherical_basis
from jaxhalo.inference.ml import fit_map
from jaxhalo.inference.priors import PriorSet
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel
from jaxhalo.simulation import brooks as S
from jaxhalo.simulation.observe import observe_catalog
from jaxhalo.simulation.parameters import PRIOR_TABLE1
from jaxhalo.simulation.tracer_orbits import Snapshot, integrate_orbits

#: The sampled parameters (in the simulator's theta) and their scale in the sampler: the sampler's
#: value times the scale is theta's (M_LMC is sampled in units of 1e11 Msun).
FREE: tuple[str, ...] = ("m_lmc", "log10_lambda_df")
SCALE: dict[str, float] = {"m_lmc": 1e11, "log10_lambda_df": 1.0}
LABELS: dict[str, str] = {"m_lmc": r"$M_{\rm LMC}$ [$10^{11}\,M_\odot$]", "log10_lambda_df": r"$\log_{10}\lambda_{\rm DF}$"}
#: The true theta of the mock: the simulator's fiducial system (M200 = 1e12 Msun, M_LMC = 1.5e11 Msun,
#: lambda_DF = 1, beta0 = 0.5, r_dens = 15 kpc, gamma = 4, the LMC observables at their Table 1 centres).
THETA_TRUE: np.ndarray = np.asarray(S.FIDUCIAL_THETA, float)
#: The continuity model: Cartesian travel vector, linear in r between the anchors (kpc).
SPEC = ReflexModel("continuity", "cartesian", anchors=(40.0, 120.0), interpolate="vector")
#: Soft window of the predicted reflex: the anchors, with sigmoid edges of this width (kpc).
WINDOW_WIDTH = 1.0
NAME = "embedded_reflex_nuts"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one run. Particle counts are tracers per simulation; times in Myr, radii in kpc."""

    n_sim: int  # tracers of the simulator inside the model (per likelihood evaluation)
    n_mock: int  # tracers of the simulation the mock catalogue is drawn from
    n_stars: int  # stars in the catalogue (drawn from the mock's 40-120 kpc stars)
    t_back: float  # integration time (Myr)
    dt: float  # leapfrog step of the tracers and of the MW-LMC orbit (Myr)
    r_min: float  # inner radius of the tracers' DF (kpc)
    chains: int
    warmup: int
    samples: int


FULL = Settings(n_sim=3000, n_mock=6000, n_stars=1000, t_back=400.0, dt=1.0, r_min=10.0, chains=1, warmup=100,
                samples=150)
QUICK = Settings(n_sim=1500, n_mock=3000, n_stars=300, t_back=300.0, dt=1.0, r_min=10.0, chains=1, warmup=50,
                 samples=50)


def sim_config(s: Settings, n_particles: int) -> S.SimConfig:
    """The simulator configuration of a run (Miyamoto-Nagai disc, leapfrog orbit, forward-mode gradients)."""
    return S.SimConfig(n_particles=n_particles, t_back=s.t_back, dt=s.dt, r_min=s.r_min, orbit_solver="leapfrog",
                       gradients="forward", disc="miyamoto-nagai")


def theta_with(p: Array, theta: Array | None = None) -> Array:
    """The full theta (12,) (default :data:`THETA_TRUE`) with the FREE entries set from the sampler's values p."""
    theta = jnp.asarray(THETA_TRUE if theta is None else theta)
    for i, name in enumerate(FREE):
        theta = theta.at[S.PARAMETER_NAMES.index(name)].set(p[i] * SCALE[name])
    return theta


# ------------------------------------------------------------------------------------ predicted reflex


def travel_regression(x: Array, v: Array, anchors: tuple[float, float] = SPEC.anchors,
                      width: float = WINDOW_WIDTH, bulk: bool = True) -> tuple[Array, Array]:
    """The travel vectors at the two anchors from tracers: a soft-windowed least-squares fit of the
    continuity model's mean velocity field to the tracers' true velocities.

    Fits v_i = -[T_0 (1 - t_i) + T_1 t_i] + sum_k [a_k (1 - t_i) + b_k t_i] e_k(x_i), k = r, phi, theta
    (t_i = (r_i - r_0) / (r_1 - r_0)): the travel vectors T_0, T_1 and the bulk spherical means at both
    anchors, 12 coefficients, with weights w_i = sigmoid((r_i - r_0) / width) sigmoid((r_1 - r_i) / width).
    ``bulk=False`` drops the spherical terms, i.e. fits the plain mean velocity -T(r). The two differ: over
    the sphere e_r and e_phi average to zero but e_theta averages to (0, 0, -pi/4), so a bulk <v_theta>
    moves the plain mean's z component by -pi/4 <v_theta>, which the likelihood's v_z does not contain
    (the continuity model carries <v_theta> separately). Only the full fit predicts the likelihood's
    parameter.

    Args:
      x, v: (N, 3) MW-centred positions (kpc) and velocities (km/s).
      anchors: (r_0, r_1) in kpc. width: window edge width (kpc). bulk: fit the spherical terms too.
    Returns:
      travel (2, 3) km/s: T_0 and T_1 (Galactocentric Cartesian axes), and se (2, 3) km/s: their
      standard errors, s^2 (M^T W M)^-1 with s^2 the weighted residual variance per velocity component.
    """
    r0, r1 = anchors
    r = jnp.linalg.norm(x, axis=-1)
    w = jax.nn.sigmoid((r - r0) / width) * jax.nn.sigmoid((r1 - r) / width)  # (N,)
    t = ((r - r0) / (r1 - r0))[:, None, None]
    eye = jnp.broadcast_to(jnp.eye(3), (x.shape[0], 3, 3))
    cols = [-(1.0 - t) * eye, -t * eye]  # (N, 3 components, 3 coefficients) each
    if bulk:
        e_r, e_theta, e_phi = spherical_basis(x)
        sph = jnp.stack([e_r, e_phi, e_theta], axis=-1)  # (N, 3, 3): columns e_r, e_phi, e_theta
        cols += [(1.0 - t) * sph, t * sph]
    M = jnp.concatenate(cols, axis=-1)  # (N, 3, P)
    A = jnp.einsum("n,nci,ncj->ij", w, M, M)
    b = jnp.einsum("n,nci,nc->i", w, M, v)
    A_inv = jnp.linalg.inv(A)
    beta = A_inv @ b
    resid = v - jnp.einsum("nci,i->nc", M, beta)  # (N, 3)
    n_eff = jnp.sum(w) ** 2 / jnp.sum(w**2)  # effective number of tracers in the window
    s2 = jnp.sum(w * jnp.sum(resid**2, axis=-1)) / (3.0 * jnp.sum(w)) * n_eff / (n_eff - M.shape[-1] / 3.0)
    se = jnp.sqrt(s2 * jnp.diag(A_inv)[:6])
    return beta[:6].reshape(2, 3), se.reshape(2, 3)


class ReflexPredictor(eqx.Module):
    """The simulator's predicted travel vectors as a function of the free parameters.

    Everything that does not depend on the free parameters -- the Milky Way potential, the halo's DF
    and the tracers drawn from it (common random numbers: one key), the LMC's present-day phase space --
    is fixed when the predictor is built (:meth:`build`); each call rebuilds the LMC (Hernquist,
    M(<8.7 kpc) = 1.7e10 Msun), the MW-LMC orbit with friction, and the tracer orbits, as
    :func:`jaxhalo.simulation.brooks.simulate` does. With every tracer kept, the snapshot equals the
    simulator's for the same key and theta.

    Attributes: ``mw`` the Milky Way potential; ``x_halo``, ``v_halo`` (M, 3) the tracers' positions (kpc)
    and velocities (km/s) relative to the MW centre at t = -t_back; ``x_lmc``, ``v_lmc`` (3,) the LMC
    today (kpc, km/s); ``config`` the simulator settings (static).
    """

    mw: MilkyWay
    x_halo: Array
    v_halo: Array
    x_lmc: Array
    v_lmc: Array
    config: S.SimConfig = eqx.field(static=True)

    @classmethod
    def build(cls, theta: Array, key: Array, config: S.SimConfig) -> tuple[ReflexPredictor, S.Simulation]:
        """The predictor with every tracer, and the full simulation at ``theta`` (12,) it was built from.

        Only theta's fixed entries matter (the MW, the DF's beta0 / r_dens / gamma, the LMC observables).
        """
        sim = jax.jit(S.simulate, static_argnums=2)(jnp.asarray(theta), key, config)
        x_halo, v_halo = sample_df(key, sim.df, config.n_particles)  # the simulator's own draw
        obs = LMCObservables(*[jnp.asarray(theta[i]) for i in range(3, 9)])
        x_lmc, v_lmc = lmc_present_day(obs, config.solar_parameters())
        return cls(sim.mw, x_halo, v_halo, x_lmc, v_lmc, config), sim

    def select(self, keep: np.ndarray) -> ReflexPredictor:
        """The same predictor integrating only the tracers where ``keep`` (N,) is True."""
        idx = np.flatnonzero(np.asarray(keep))
        return eqx.tree_at(lambda m: (m.x_halo, m.v_halo), self, (self.x_halo[idx], self.v_halo[idx]))

    def snapshot(self, p: Array) -> Snapshot:
        """Present-day MW-centred tracers (M, 3) kpc and km/s at the sampler's values p (len(FREE),)."""
        c = self.config
        theta = theta_with(p)
        lmc = lmc_hernquist(theta[1], check=False)
        orbit = integrate_mw_lmc(self.mw, lmc, self.x_lmc, self.v_lmc, 10.0 ** theta[2], sigma=c.friction_sigma,
                                 t_back=c.t_back, dt=c.dt, forward_mode=True)
        track = S.TabulatedTrack.from_orbit(orbit, c.t_back, c.n_steps)
        t0 = -c.t_back
        x0 = self.x_halo + track.mw_position(t0)
        v0 = self.v_halo + track.mw_velocity(t0)
        x, v = integrate_orbits(x0, v0, self.mw, lmc, track, t0=t0, t1=0.0, solver=c.solver, dt=c.dt)
        t_end = jnp.asarray(0.0, x.dtype)
        return Snapshot(x - track.mw_position(t_end), v - track.mw_velocity(t_end))

    def __call__(self, p: Array) -> Array:
        """(2, 2, 3) km/s: the predicted travel vectors at the anchors and their Monte Carlo standard errors."""
        snap = self.snapshot(p)
        return jnp.stack(travel_regression(snap.positions, snap.velocities))


@eqx.filter_jit
def evaluate(predictor: ReflexPredictor, p: Array) -> Array:
    """``predictor(p)`` compiled (the predictor's arrays are arguments, not constants)."""
    return predictor(p)


@eqx.filter_jit
def present_day(predictor: ReflexPredictor, p: Array) -> Snapshot:
    """``predictor.snapshot(p)`` compiled."""
    return predictor.snapshot(p)


def preselect(predictor: ReflexPredictor, grid: np.ndarray, pad: float = 10.0) -> tuple[np.ndarray, dict]:
    """Tracers that can matter: those inside the anchors' window widened by ``pad`` kpc today at any
    point of ``grid`` (G, len(FREE)) of free-parameter values (sampler units) spanning the prior.

    Tracers that end far from the window at every grid point get zero weight there (their sigmoid
    weight at 10 kpc outside an edge of width 1 kpc is 5e-5) and are not integrated inside the model:
    with a 40-120 kpc window that is most of them. Returns the (N,) mask and a record of its size.
    """
    r0, r1 = SPEC.anchors
    keep = np.zeros(predictor.x_halo.shape[0], bool)
    for p in grid:
        r = np.linalg.norm(np.asarray(present_day(predictor, jnp.asarray(p)).positions), axis=-1)
        keep |= (r > r0 - pad) & (r < r1 + pad)
    return keep, {"n_tracers": int(keep.size), "n_kept": int(keep.sum()), "pad_kpc": pad,
                  "grid": np.asarray(grid).tolist()}


def forward_jacobian_vjp(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``f`` (P,) -> (...) with a reverse-mode rule computed in forward mode.

    The forward pass evaluates f and its Jacobian with ``jax.jacfwd`` (P tangents, pushed through
    f together with its value); the backward pass is the contraction J^T g. Suits a costly f of few
    inputs whose solver only supports forward differentiation (the MW-LMC orbit with
    ``diffrax.ForwardMode``) inside a model that the sampler differentiates in reverse mode.
    """

    def value_and_jac(p: Array) -> tuple[Array, Array]:
        def twice(q: Array) -> tuple[Array, Array]:
            y = f(q)
            return y, y  # the value rides along as jacfwd's aux output: f runs once per tangent batch

        jac, val = jax.jacfwd(twice, has_aux=True)(p)
        return val, jac

    @jax.custom_vjp
    def g(p: Array) -> Array:
        return f(p)

    def g_fwd(p: Array):
        val, jac = value_and_jac(p)
        return val, jac

    def g_bwd(jac: Array, ct: Array):
        return (jnp.tensordot(ct, jac, axes=ct.ndim),)

    g.defvjp(g_fwd, g_bwd)
    return g


# ------------------------------------------------------------------------------------ the model


def table1_prior(name: str) -> dist.Distribution:
    """Brooks et al. (2026) Table 1 prior of a free parameter, in the sampler's units (value / SCALE)."""
    kind, a, b = PRIOR_TABLE1[name]
    s = SCALE[name]
    return dist.Uniform(a / s, b / s) if kind == "uniform" else dist.Normal(a / s, b / s)


#: The continuity model's nuisance parameters: bulk means (km/s) and dispersions (km/s) at both anchors.
NUISANCE: tuple[str, ...] = tuple(base + sfx for sfx in SPEC.suffixes
                                  for base in ("vr", "vphi", "vtheta", "sigma_los", "sigma_l", "sigma_b"))


class NuisanceFrame(eqx.Module):
    """Where the sampler's nuisance coordinates e (len(NUISANCE),) live: y = centre + scale e, with y the
    bulk means (km/s) and the log dispersions (ln km/s). Centre and scale are the catalogue's own
    maximum-likelihood values and Laplace standard deviations (reflex model with free travel vectors; no
    simulator), so that e is O(1) under the posterior and NUTS needs no long warm-up to learn 12 scales
    spanning two decades. This is a change of coordinates only: the priors stay those of
    :class:`~jaxhalo.inference.priors.PriorSet` (uniform means on +-v_mean_max, log-uniform dispersions on
    [sigma_min, sigma_max]), both flat in y, hence flat in e inside the bounds ``low``, ``high``.
    """

    centre: Array
    scale: Array
    low: Array
    high: Array

    @classmethod
    def from_fit(cls, data: ReflexData, ml: dict, priors: PriorSet | None = None) -> NuisanceFrame:
        """From the ML fit ``ml`` (every parameter of :data:`SPEC`) of ``data``."""
        priors = PriorSet() if priors is None else priors
        names = SPEC.param_names
        is_sigma = np.array([n.startswith("sigma") for n in names])

        def to_params(y: Array) -> dict:
            return {n: (jnp.exp(y[i]) if is_sigma[i] else y[i]) for i, n in enumerate(names)}

        y0 = jnp.array([float(np.log(ml[n])) if is_sigma[i] else float(ml[n]) for i, n in enumerate(names)])
        hess = jax.hessian(lambda y: -SPEC.log_likelihood(to_params(y), data, fast=False))(y0)
        sd = np.sqrt(np.diag(np.linalg.inv(np.asarray(hess))))
        idx = [names.index(n) for n in NUISANCE]
        sig = np.array([n.startswith("sigma") for n in NUISANCE])
        low = np.where(sig, np.log(priors.sigma_min), -priors.v_mean_max)
        high = np.where(sig, np.log(priors.sigma_max), priors.v_mean_max)
        return cls(y0[jnp.asarray(idx)], jnp.asarray(sd[idx]), jnp.asarray(low), jnp.asarray(high))

    def params(self, e: Array) -> dict[str, Array]:
        """The nuisance parameters (km/s) by name at sampler coordinates e."""
        y = self.centre + self.scale * e
        return {n: (jnp.exp(y[i]) if n.startswith("sigma") else y[i]) for i, n in enumerate(NUISANCE)}

    def log_prior(self, e: Array) -> Array:
        """0 inside the prior bounds, -inf outside (the prior is flat in e)."""
        y = self.centre + self.scale * e
        return jnp.where(jnp.all((y >= self.low) & (y <= self.high)), 0.0, -jnp.inf)


def embedded_model(data: ReflexData, predict: Callable[[Array], Array], nuisance: NuisanceFrame) -> None:
    """numpyro model: theta_sub -> simulator -> travel vectors -> continuity-model likelihood of ``data``.

    ``predict(p)`` returns (2, 2, 3): the predicted travel vectors and their standard errors (km/s).
    Sites: the FREE parameters (sampler units, Table 1 priors), ``z_travel`` (2, 3) standard normal (the
    Monte Carlo noise of the prediction), and ``e_nuisance`` (12,) the continuity model's bulk means and
    dispersions at the anchors in the coordinates of :class:`NuisanceFrame`.
    """
    p = jnp.stack([numpyro.sample(n, table1_prior(n)) for n in FREE])
    pred = predict(p)
    z = numpyro.sample("z_travel", dist.Normal(jnp.zeros((2, 3)), 1.0).to_event(2))
    travel = numpyro.deterministic("travel", pred[0] + pred[1] * z)  # (2, 3) km/s at the anchors
    numpyro.deterministic("travel_predicted", pred[0])
    e = numpyro.sample("e_nuisance", dist.ImproperUniform(dist.constraints.real, (), (len(NUISANCE),)))
    numpyro.factor("nuisance_prior", nuisance.log_prior(e))
    params = nuisance.params(e)
    for j, suffix in enumerate(SPEC.suffixes):
        for c, name in enumerate(("v_x", "v_y", "v_z")):
            params[name + suffix] = travel[j, c]
    numpyro.factor("reflex_log_likelihood", SPEC.log_likelihood(params, data))


# ------------------------------------------------------------------------------------ mock, run, report


def make_mock(s: Settings, key: Array) -> tuple[ReflexData, dict]:
    """The mock catalogue: a simulation at :data:`THETA_TRUE` with its own key and ``s.n_mock`` tracers,
    observed with per-star errors, 40 <= observed r_gal <= 120 kpc, ``s.n_stars`` of them drawn at random.

    Returns the likelihood data and a record: star counts and the travel vectors of the mock's own
    tracers (:func:`travel_regression` on every tracer of that simulation, true positions and velocities).
    """
    k_sim, k_obs, k_pick = jax.random.split(key, 3)
    cfg = sim_config(s, s.n_mock)
    snap = jax.jit(S.simulate_present_day, static_argnums=2)(jnp.asarray(THETA_TRUE), k_sim, cfg)
    x, v = np.asarray(snap.positions), np.asarray(snap.velocities)
    cat = observe_catalog(k_obs, x, v, cfg.solar_parameters(), r_gal_range=SPEC.anchors, add_errors=True)
    n_window = len(cat.l)
    if n_window < s.n_stars:
        raise RuntimeError(f"the mock has {n_window} stars in 40-120 kpc, fewer than n_stars = {s.n_stars}")
    pick = np.zeros(n_window, bool)
    pick[np.asarray(jax.random.choice(k_pick, n_window, (s.n_stars,), replace=False))] = True
    cat = cat.select(pick)
    travel, se = travel_regression(jnp.asarray(x), jnp.asarray(v))
    mean_only = travel_regression(jnp.asarray(x), jnp.asarray(v), bulk=False)[0]
    return ReflexData.from_catalog(cat), {
        "travel_of_mock_tracers_without_bulk_terms_kms": np.asarray(mean_only).tolist(),
        "n_tracers": s.n_mock, "n_in_window": n_window, "n_stars": s.n_stars,
        "errors": "10% distance, 2 km/s v_los, 0.15 mas/yr proper motions (jaxhalo.simulation.observe defaults)",
        "travel_of_mock_tracers_kms": np.asarray(travel).tolist(), "travel_of_mock_tracers_se_kms": np.asarray(se).tolist(),
    }


def run(s: Settings, seed: int = 0, progress_bar: bool = False) -> tuple[dict, dict]:
    """Build the model, draw the mock, run NUTS; returns (result record, posterior samples of FREE in theta units)."""
    timings: dict[str, float] = {}
    k_model, k_mock, k_nuts, k_ml = jax.random.split(jax.random.key(seed), 4)

    t = time.perf_counter()
    predictor_all, sim = ReflexPredictor.build(jnp.asarray(THETA_TRUE), k_model, sim_config(s, s.n_sim))
    p_true = jnp.asarray([THETA_TRUE[S.PARAMETER_NAMES.index(n)] / SCALE[n] for n in FREE])
    snap_true = present_day(predictor_all, p_true)
    same = {"max_abs_position_kpc": float(jnp.max(jnp.abs(snap_true.positions - sim.snapshot.positions))),
            "max_abs_velocity_kms": float(jnp.max(jnp.abs(snap_true.velocities - sim.snapshot.velocities)))}
    lo = np.array([table1_prior(n).low for n in FREE])
    hi = np.array([table1_prior(n).high for n in FREE])
    grid = np.array([[a, b] for a in (lo[0], 0.5 * (lo[0] + hi[0]), hi[0]) for b in (lo[1], hi[1])])
    keep, selection = preselect(predictor_all, grid)
    predictor = predictor_all.select(keep)
    pred_true_all = np.asarray(evaluate(predictor_all, p_true))
    pred_true = np.asarray(evaluate(predictor, p_true))
    selection["prediction_at_truth_change_kms"] = float(np.max(np.abs(pred_true - pred_true_all)))
    timings["build_s"] = time.perf_counter() - t

    t = time.perf_counter()
    data, mock = make_mock(s, k_mock)
    ml = fit_map(data, SPEC, key=k_ml)
    timings["mock_and_ml_s"] = time.perf_counter() - t

    predict = forward_jacobian_vjp(predictor)
    t = time.perf_counter()
    vg = jax.jit(jax.value_and_grad(lambda p: jnp.sum(predict(p))))
    jax.block_until_ready(vg(p_true))
    timings["gradient_compile_s"] = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(vg(p_true * 1.01))
    timings["gradient_s"] = time.perf_counter() - t

    init = {n: jnp.asarray(float(np.mean([table1_prior(n).low, table1_prior(n).high]))) for n in FREE}
    init["z_travel"] = jnp.zeros((2, 3))
    nuisance = NuisanceFrame.from_fit(data, ml)
    init["e_nuisance"] = jnp.zeros(len(NUISANCE))  # the catalogue's ML values
    kernel = NUTS(embedded_model, init_strategy=init_to_value(values=init), max_tree_depth=6, target_accept_prob=0.8)
    mcmc = MCMC(kernel, num_warmup=s.warmup, num_samples=s.samples, num_chains=s.chains,
                chain_method="vectorized", progress_bar=progress_bar)
    t = time.perf_counter()
    mcmc.run(k_nuts, data=data, predict=predict, nuisance=nuisance, extra_fields=("diverging", "num_steps"))
    timings["nuts_s"] = time.perf_counter() - t

    samples = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    diag = numpyro.diagnostics.summary({n: samples[n] for n in (*FREE, "travel")}, group_by_chain=True)
    post_theta = {n: np.asarray(samples[n]).reshape(-1) * SCALE[n] for n in FREE}
    params = {}
    for n in FREE:
        q16, q50, q84 = np.percentile(post_theta[n], [16, 50, 84])
        q2, q97 = np.percentile(post_theta[n], [2.5, 97.5])
        truth = float(THETA_TRUE[S.PARAMETER_NAMES.index(n)])
        kind, a, b = PRIOR_TABLE1[n]
        params[n] = {"truth": truth, "median": float(q50), "q16": float(q16), "q84": float(q84), "q2.5": float(q2),
                     "q97.5": float(q97), "truth_in_68": bool(q16 <= truth <= q84), "truth_in_95": bool(q2 <= truth <= q97),
                     "z": float((q50 - truth) / (0.5 * (q84 - q16))), "r_hat": float(diag[n]["r_hat"]),
                     "n_eff": float(diag[n]["n_eff"]), "prior": f"{kind}({a:g}, {b:g})",
                     "posterior_68_width_over_prior_68_width": float((q84 - q16) / (0.68 * (b - a)))}
    travel = np.asarray(samples["travel"]).reshape(-1, 2, 3)
    result = {
        "free_parameters": params,
        "max_r_hat": float(max(np.max(np.asarray(diag[n]["r_hat"])) for n in (*FREE, "travel"))),
        "divergences": int(np.sum(np.asarray(extra["diverging"]))),
        "mean_leapfrog_steps": float(np.mean(np.asarray(extra["num_steps"]))),
        "travel_kms": {
            "posterior_mean": travel.mean(0).tolist(), "posterior_sd": travel.std(0).tolist(),
            "predicted_at_truth": pred_true[0].tolist(), "predicted_se_at_truth": pred_true[1].tolist(),
            "catalogue_ml_fit": [[float(ml[f"{c}{sfx}"]) for c in ("v_x", "v_y", "v_z")] for sfx in SPEC.suffixes],
            "catalogue_ml_fit_all_parameters": {k: float(v) for k, v in ml.items()},
            "mock_tracers": mock["travel_of_mock_tracers_kms"], "mock_tracers_se": mock["travel_of_mock_tracers_se_kms"],
        },
        "mock": mock,
        "model_simulator": {"n_tracers": s.n_sim, **selection, "predictor_vs_simulate_at_truth": same},
        "timings_s": timings,
    }
    return result, post_theta


def plot(post: dict, result: dict, path: Path) -> None:
    """Marginal posteriors of the free parameters and their joint scatter, truth marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    scaled = {n: post[n] / SCALE[n] for n in FREE}
    for ax, n in zip(axes[:2], FREE):
        r = result["free_parameters"][n]
        ax.hist(scaled[n], bins=30, color="C0", alpha=0.7, density=True)
        ax.axvspan(r["q16"] / SCALE[n], r["q84"] / SCALE[n], color="C0", alpha=0.15, label="68% interval")
        ax.axvline(r["truth"] / SCALE[n], color="k", lw=2, label="truth")
        lo, hi = table1_prior(n).low, table1_prior(n).high
        ax.set_xlim(lo, hi)
        ax.set_xlabel(LABELS[n] + " (x-range: prior)")
        ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(scaled[FREE[0]], scaled[FREE[1]], ".", ms=2, alpha=0.5)
    truth = [result["free_parameters"][n]["truth"] / SCALE[n] for n in FREE]
    ax.plot(truth[0], truth[1], "k*", ms=12, label="truth")
    ax.set_xlabel(LABELS[FREE[0]])
    ax.set_ylabel(LABELS[FREE[1]])
    ax.legend(fontsize=8)
    fig.suptitle("NUTS on the MW-LMC simulator through the reflex likelihood of a mock catalogue", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    """Run the example; returns the result record. See the module docstring for the arguments."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=None,
                    help="folder for the JSON (default: benchmarks/results/) and, with --quick, the PNG")
    ap.add_argument("--quick", action="store_true", help="the small, short run of the slow test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default=None, help="figure path (default: examples/embedded_reflex_nuts.png, with "
                    "--quick <out>/embedded_reflex_nuts.png)")
    ap.add_argument("--progress-bar", action="store_true")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from benchmarks.common import write_results

    s = QUICK if args.quick else FULL
    out = Path(args.out) if args.out else repo / "benchmarks" / "results"
    if args.quick and args.out is None:
        out = repo / "benchmarks" / "results" / "quick"
    png = Path(args.png) if args.png else (out / f"{NAME}.png" if args.quick else repo / "examples" / f"{NAME}.png")
    t0 = time.perf_counter()
    load_start = list(os.getloadavg())
    result, post = run(s, seed=args.seed, progress_bar=args.progress_bar)
    result["timings_s"]["total_s"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    plot(post, result, png)
    meta = {"settings": dataclasses.asdict(s), "quick": args.quick, "seed": args.seed, "free": list(FREE),
            "theta_true": dict(zip(S.PARAMETER_NAMES, THETA_TRUE.tolist())), "model": "continuity/cartesian, "
            "travel vectors at 40 and 120 kpc from the simulator (+ Monte Carlo error), bulk means and dispersions "
            "free", "sampler": f"numpyro NUTS {s.chains} chain(s) x ({s.warmup} warm-up + {s.samples} draws), "
            "max tree depth 6", "load_average_start": load_start, "png": str(png)}
    records = [{"parameter": n, **{k: v for k, v in r.items()}} for n, r in result["free_parameters"].items()]
    meta["result"] = result
    path = write_results(NAME, records, meta, out_dir=out)
    for n, r in result["free_parameters"].items():
        print(f"{n}: truth {r['truth']:.4g}, median {r['median']:.4g} [{r['q16']:.4g}, {r['q84']:.4g}] "
              f"(68%; truth inside: {r['truth_in_68']}), r_hat {r['r_hat']:.3f}")
    print(f"divergences {result['divergences']}, max r_hat {result['max_r_hat']:.3f}, "
          f"timings {json.dumps({k: round(v, 1) for k, v in result['timings_s'].items()})}")
    print(f"wrote {path} and {png}")
    return result


if __name__ == "__main__":
    main()
