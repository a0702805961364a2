"""The Milky Way - LMC two-body orbit with dynamical friction (Brooks et al. 2025 eqs 3-7).

State (x_MW, v_MW, x_LMC, v_LMC) in an inertial frame, positions kpc, velocities km/s, time Myr:

    dx_MW/dt  = v_MW
    dv_MW/dt  = -grad Phi_LMC(x_MW - x_LMC)                       (the LMC's Hernquist)
    dx_LMC/dt = v_LMC
    dv_LMC/dt = -grad Phi_MW(x_LMC - x_MW) + lambda_DF a_DF       (the full MW centred on x_MW)
    a_DF = -4 pi G^2 M_LMC rho_MW(x_LMC - x_MW) ln(Lambda) / |u|^3 [erf(X) - 2X/sqrt(pi) e^(-X^2)] u,
    u = v_LMC - v_MW, X = |u| / (sqrt(2) sigma), sigma = 120 km/s, ln Lambda = ln(100 kpc / 1.6 a_LMC).

The present day (t = 0) is the Galactocentric frame of :mod:`jaxhalo.frames`: the MW centre at the
origin at rest, the LMC at its observed position and velocity. The system is integrated back
2.2 Gyr with diffrax (Dopri8, adaptive PID, dense output; or a fixed-step leapfrog,
:class:`FrictionLeapfrog`, for comparison with the papers' integrator), and :class:`MWLMCOrbit` evaluates
both tracks at any t in [t_min, 0]. Everything is differentiable with respect to the masses,
lambda_DF and the LMC observables. Arguments and :class:`LMCObservables` fields may be astropy
Quantities (masses, lengths, velocities, times, angles, proper motions), converted once at the call
to the units above (:mod:`jaxhalo.units`); bare numbers mean those units.
"""

from __future__ import annotations

import math
from typing import ClassVar

import diffrax
import equinox as eqx
import jax.numpy as jnp
import jax.scipy.special as jsp
from jax import Array
from jax.typing import ArrayLike

from .. import frames
from ..constants import DEG, K_PM, KMS_TO_KPC_PER_MYR, G
from ..jax_utils import unit_converter
from ..units import (
    DEGREE,
    DIMENSIONLESS,
    KM_S,
    KPC,
    MAS_YR,
    MSUN,
    MYR,
    RADIAN,
    phase_space_to_internal,
    to_internal,
)
from .potentials import Potential, lmc_hernquist, milky_way

__all__ = [
    "ICRS_TO_GALACTIC",
    "LMCObservables",
    "icrs_to_galactic",
    "lmc_present_day",
    "chandrasekhar_friction",
    "FrictionLeapfrog",
    "MWLMCOrbit",
    "integrate_mw_lmc",
    "mw_lmc_orbit",
]

#: Rotation matrix (3, 3) taking ICRS Cartesian vectors to Galactic (l, b) Cartesian vectors,
#: v_gal = ICRS_TO_GALACTIC @ v_icrs. Copied from astropy 8 (ICRS -> Galactic of unit vectors);
#: tests/test_mwlmc.py checks it against astropy to 1e-12.
ICRS_TO_GALACTIC: tuple[tuple[float, float, float], ...] = (
    (-0.05487565771259163, -0.8734370519556159, -0.48383507361671546),
    (0.4941094371927268, -0.4448297212232952, 0.7469821839866676),
    (-0.8676661375596576, -0.19807633727300053, 0.4559838136873016),
)


class LMCObservables(eqx.Module):
    """Heliocentric observables of the LMC centre (degrees at this user-facing edge).

    Defaults: the centres of the Brooks et al. (2026) Table 1 priors: RA = 80 deg
    (U(72.5, 87.5)), Dec = -70 deg (U(-75, -65)), d = 49.6 kpc, v_los = 262.2 km/s,
    mu_alpha* = 1.9 mas/yr, mu_delta = 0.33 mas/yr. Each may be given as an astropy Quantity
    (an angle, length, velocity, proper motion), stored in deg, kpc, km/s, mas/yr.
    """

    ra: Array = eqx.field(converter=unit_converter(DEGREE, "ra"), default=80.0)
    dec: Array = eqx.field(converter=unit_converter(DEGREE, "dec"), default=-70.0)
    distance: Array = eqx.field(converter=unit_converter(KPC, "distance"), default=49.6)
    v_los: Array = eqx.field(converter=unit_converter(KM_S, "v_los"), default=262.2)
    pm_ra_cosdec: Array = eqx.field(converter=unit_converter(MAS_YR, "pm_ra_cosdec"), default=1.9)
    pm_dec: Array = eqx.field(converter=unit_converter(MAS_YR, "pm_dec"), default=0.33)


def icrs_to_galactic(
    ra: ArrayLike, dec: ArrayLike, pm_ra_cosdec: ArrayLike, pm_dec: ArrayLike
) -> tuple[Array, Array, Array, Array]:
    """(ra, dec) [rad] and (mu_alpha*, mu_delta) [mas/yr] to (l, b) [rad] and (mu_l*, mu_b) [mas/yr].

    Rotates the position and the tangential proper-motion vector with :data:`ICRS_TO_GALACTIC`;
    broadcasts over leading axes. Angle and proper-motion Quantities are converted.
    """
    ra, dec = jnp.asarray(to_internal(ra, RADIAN, "ra"), dtype=float), jnp.asarray(to_internal(dec, RADIAN, "dec"), dtype=float)
    pm_ra_cosdec, pm_dec = to_internal(pm_ra_cosdec, MAS_YR, "pm_ra_cosdec"), to_internal(pm_dec, MAS_YR, "pm_dec")
    M = jnp.asarray(ICRS_TO_GALACTIC)
    ca, sa, cd, sd = jnp.cos(ra), jnp.sin(ra), jnp.cos(dec), jnp.sin(dec)
    p = jnp.stack([cd * ca, cd * sa, sd], -1)
    e_ra = jnp.stack([-sa, ca, jnp.zeros_like(ca)], -1)
    e_dec = jnp.stack([-sd * ca, -sd * sa, cd], -1)
    pm_vec = jnp.asarray(pm_ra_cosdec)[..., None] * e_ra + jnp.asarray(pm_dec)[..., None] * e_dec
    p_gal, pm_gal = p @ M.T, pm_vec @ M.T
    l, b, _ = frames.cartesian_to_galactic(p_gal)
    _, e_l, e_b = frames.sky_basis(l, b)
    return l, b, jnp.sum(pm_gal * e_l, -1), jnp.sum(pm_gal * e_b, -1)


def lmc_present_day(
    observables: LMCObservables | None = None, solar: frames.SolarParameters | None = None
) -> tuple[Array, Array]:
    """Galactocentric position (3,) [kpc] and velocity (3,) [km/s] of the LMC today.

    ``observables`` default :class:`LMCObservables` (Brooks et al. 2026 Table 1 centres);
    ``solar`` default :class:`~jaxhalo.frames.SolarParameters` (the package's frame).
    """
    obs = LMCObservables() if observables is None else observables
    l, b, pm_l, pm_b = icrs_to_galactic(obs.ra * DEG, obs.dec * DEG, obs.pm_ra_cosdec, obs.pm_dec)
    return frames.observables_to_galactocentric(l, b, obs.distance, obs.v_los, pm_l, pm_b, solar, K_PM)


def chandrasekhar_friction(
    v_rel: Array, rho: Array, satellite_mass: Array, coulomb_log: Array, sigma: ArrayLike = 120.0
) -> Array:
    """Chandrasekhar dynamical-friction acceleration (3,) in (km/s)^2/kpc (Brooks et al. eq. 7).

    v_rel (3,) km/s: the satellite's velocity relative to the host; rho (Msun/kpc^3) the host's
    density at the satellite; satellite_mass (Msun); coulomb_log ln(Lambda); sigma (km/s) the
    host's velocity dispersion. Uses the small-X series of the bracket for a finite limit at v = 0.
    """
    v_rel, sigma = jnp.asarray(to_internal(v_rel, KM_S, "v_rel")), to_internal(sigma, KM_S, "sigma")
    satellite_mass = to_internal(satellite_mass, MSUN, "satellite_mass")
    v = jnp.sqrt(jnp.sum(v_rel * v_rel) + 1e-300)
    X = v / (jnp.sqrt(2.0) * sigma)
    bracket = jsp.erf(X) - 2.0 * X / jnp.sqrt(jnp.pi) * jnp.exp(-X * X)
    # bracket / v^3 -> (4 / 3 sqrt(pi)) / (sqrt(2) sigma)^3 (1 - 3X^2/5) as X -> 0.
    small = X < 1e-3
    v_safe = jnp.where(small, 1.0, v)
    ratio = jnp.where(
        small,
        4.0 / (3.0 * jnp.sqrt(jnp.pi)) / (jnp.sqrt(2.0) * sigma) ** 3 * (1.0 - 0.6 * X * X),
        bracket / v_safe**3,
    )
    return -4.0 * jnp.pi * G**2 * satellite_mass * rho * coulomb_log * ratio * v_rel


class MWLMCOrbit(eqx.Module):
    """The MW and LMC tracks of one integration (a pytree: vmap over parameters batches it).

    Attributes
    ----------
    solution : diffrax Solution with dense output; state (x_MW, v_MW, x_LMC, v_LMC), (12,).
    mw, lmc : the potentials used (MW centred on the origin, LMC a Hernquist at the origin).
    lambda_df : friction strength; coulomb_log : ln(Lambda) used; t_min : earliest time (Myr).

    Methods take t in Myr (t_min <= t <= 0), a scalar or any array, and return (..., 3).
    """

    solution: diffrax.Solution
    mw: Potential
    lmc: Potential
    lambda_df: Array
    coulomb_log: Array
    t_min: float = eqx.field(static=True)

    def state(self, t: ArrayLike) -> Array:
        """Full state (..., 12) at time(s) t (Myr, or a time Quantity)."""
        t = jnp.asarray(to_internal(t, MYR, "t"), dtype=float)
        return jnp.vectorize(self.solution.evaluate, signature="()->(n)")(t)

    def mw_position(self, t: ArrayLike) -> Array:
        """MW centre position (..., 3) kpc at t (Myr)."""
        return self.state(t)[..., 0:3]

    def mw_velocity(self, t: ArrayLike) -> Array:
        """MW centre velocity (..., 3) km/s."""
        return self.state(t)[..., 3:6]

    def lmc_position(self, t: ArrayLike) -> Array:
        """LMC centre position (..., 3) kpc (inertial frame = Galactocentric at t = 0)."""
        return self.state(t)[..., 6:9]

    def lmc_velocity(self, t: ArrayLike) -> Array:
        """LMC centre velocity (..., 3) km/s."""
        return self.state(t)[..., 9:12]

    def separation(self, t: ArrayLike) -> Array:
        """x_LMC - x_MW (..., 3) kpc."""
        s = self.state(t)
        return s[..., 6:9] - s[..., 0:3]


class _MWLMCField(eqx.Module):
    """The (12,) MW-LMC vector field of :func:`integrate_mw_lmc`: an equinox module rather than a closure,
    so that diffrax's compiled solve is found again for new parameter values (they are array leaves;
    a new closure per call was a new static function, i.e. a new trace and compilation every call)."""

    mw: Potential
    lmc: Potential
    m_lmc: Array
    lambda_df: Array
    coulomb_log: Array
    sigma: Array

    def __call__(self, t, w, args):
        k = KMS_TO_KPC_PER_MYR
        x_mw, v_mw, x_lmc, v_lmc = w[0:3], w[3:6], w[6:9], w[9:12]
        d = x_lmc - x_mw
        a_mw = self.lmc._acc(-d)
        a_lmc = self.mw._acc(d)
        rho = self.mw._rho(d)
        a_df = chandrasekhar_friction(v_lmc - v_mw, rho, self.m_lmc, self.coulomb_log, self.sigma)
        a_lmc = a_lmc + self.lambda_df * a_df
        return k * jnp.concatenate([v_mw, a_mw, v_lmc, a_lmc])


def _mw_lmc_field(mw: Potential, lmc: Potential, m_lmc, lambda_df, coulomb_log, sigma) -> _MWLMCField:
    return _MWLMCField(mw, lmc, jnp.asarray(m_lmc, dtype=float), jnp.asarray(lambda_df, dtype=float),
                       jnp.asarray(coulomb_log, dtype=float), jnp.asarray(sigma, dtype=float))


_POS = jnp.array([0, 1, 2, 6, 7, 8])
_VEL = jnp.array([3, 4, 5, 9, 10, 11])


class FrictionLeapfrog(diffrax.AbstractSolver):
    """Fixed-step kick-drift-kick leapfrog for the MW-LMC state (12,) with a velocity-dependent force.

    For one step h: v_1/2 = v_0 + h/2 a(x_0, v_0); x_1 = x_0 + h v_1/2; then the closing half kick
    v_1 = v_1/2 + h/2 a(x_1, v_1), implicit in v_1 through the friction, is taken with a(x_1, v*),
    v* = v_1/2 + h/2 a(x_1, v_1/2) (one predictor pass). The composition is symmetric up to the
    O(h^2) predictor error in v*, so the method is second order with friction (tests check the
    order); without friction it is the ordinary symplectic leapfrog. Three force evaluations per
    step; linear dense output between steps. Use with ``diffrax.ConstantStepSize``.

    The vector field is the 12-vector one of :func:`integrate_mw_lmc`: entries 0:3, 6:9 are
    positions (d/dt = k v), 3:6, 9:12 velocities.
    """

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        h = terms.contr(t0, t1)  # the signed step (diffrax runs reverse time through the control)
        f = lambda t, y: terms.vf(t, y, args)  # noqa: E731
        a0 = f(t0, y0)[_VEL]
        y = y0.at[_VEL].add(0.5 * h * a0)  # v_1/2
        y = y.at[_POS].add(h * f(t0, y)[_POS])  # drift with v_1/2 (f's position part is k v)
        v_half = y[_VEL]
        v_star = v_half + 0.5 * h * f(t1, y)[_VEL]
        y1 = y.at[_VEL].set(v_half + 0.5 * h * f(t1, y.at[_VEL].set(v_star))[_VEL])
        return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def integrate_mw_lmc(
    mw: Potential,
    lmc: Potential,
    x_lmc: ArrayLike,
    v_lmc: ArrayLike,
    lambda_df: ArrayLike = 1.0,
    lmc_mass: ArrayLike | None = None,
    coulomb_log: ArrayLike | None = None,
    sigma: ArrayLike = 120.0,
    t_back: float = 2200.0,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int = 100_000,
    dt: float | None = None,
    forward_mode: bool = False,
) -> MWLMCOrbit:
    """Integrate the MW-LMC system back from t = 0 to t = -t_back (Myr).

    Parameters
    ----------
    mw : MW potential centred on the origin (its density sets the friction).
    lmc : LMC potential centred on the origin (e.g. :func:`~jaxhalo.dynamics.potentials.lmc_hernquist`).
    x_lmc, v_lmc : (3,) present-day Galactocentric LMC position (kpc) and velocity (km/s);
        the MW starts at the origin at rest.
    lambda_df : friction strength (0 switches friction off).
    lmc_mass : LMC mass in the friction term (default ``lmc.mass``).
    coulomb_log : ln(Lambda) (default ln(100 kpc / (1.6 lmc.a)), floored at 0).
    sigma : MW velocity dispersion in the friction term (km/s).
    rtol, atol, solver, max_steps : diffrax settings (Dopri8, PID controller).
    dt : if given (Myr), a fixed step of ``dt`` with ``solver`` (default :class:`FrictionLeapfrog`)
        instead of the adaptive controller; t_back should be a multiple of it.
    forward_mode : differentiate the solve in forward mode (``diffrax.ForwardMode``: ``jax.jvp`` and
        ``jax.jacfwd`` go through, reverse mode does not); default: diffrax's recursive checkpointing
        (reverse mode only).

    Notes
    -----
    Every physical argument may be an astropy Quantity (positions, velocities, masses, ``t_back`` and
    ``dt`` in any time unit), converted at the call.
    """
    x_lmc = jnp.asarray(to_internal(x_lmc, KPC, "x_lmc"), dtype=float)
    v_lmc = jnp.asarray(to_internal(v_lmc, KM_S, "v_lmc"), dtype=float)
    lambda_df, lmc_mass = to_internal(lambda_df, DIMENSIONLESS, "lambda_df"), to_internal(lmc_mass, MSUN, "lmc_mass")
    coulomb_log, sigma = to_internal(coulomb_log, DIMENSIONLESS, "coulomb_log"), to_internal(sigma, KM_S, "sigma")
    t_back, dt = to_internal(t_back, MYR, "t_back"), to_internal(dt, MYR, "dt")
    m_lmc = lmc.mass if lmc_mass is None else jnp.asarray(lmc_mass, dtype=float)
    if coulomb_log is None:
        coulomb_log = jnp.maximum(jnp.log(100.0 / (1.6 * lmc.a)), 0.0)
    coulomb_log = jnp.asarray(coulomb_log, dtype=float)
    lambda_df = jnp.asarray(lambda_df, dtype=float)
    w0 = jnp.concatenate([jnp.zeros(6, dtype=x_lmc.dtype), x_lmc, v_lmc])
    term = diffrax.ODETerm(_mw_lmc_field(mw, lmc, m_lmc, lambda_df, coulomb_log, sigma))
    if dt is None:
        solver = diffrax.Dopri8() if solver is None else solver
        controller, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), None
    else:
        if not dt > 0:
            raise ValueError(f"integrate_mw_lmc: the fixed step dt must be positive, got {dt} Myr")
        solver = FrictionLeapfrog() if solver is None else solver
        controller, dt0 = diffrax.ConstantStepSize(), -float(dt)
        max_steps = max(max_steps, int(math.ceil(float(t_back) / float(dt))) + 1)
    sol = diffrax.diffeqsolve(
        term,
        solver,
        0.0,
        -float(t_back),
        dt0,
        w0,
        saveat=diffrax.SaveAt(t1=True, dense=True),
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=diffrax.ForwardMode() if forward_mode else diffrax.RecursiveCheckpointAdjoint(),
    )
    return MWLMCOrbit(sol, mw, lmc, lambda_df, coulomb_log, -float(t_back))


def mw_lmc_orbit(
    m200: ArrayLike = 1.0e12,
    lmc_mass: ArrayLike = 1.5e11,
    lambda_df: ArrayLike = 1.0,
    observables: LMCObservables | None = None,
    solar: frames.SolarParameters | None = None,
    t_back: float = 2200.0,
    v_circ_sun: ArrayLike = 235.0,
    r_sun: ArrayLike | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    check: bool = True,
    c200: ArrayLike | None = None,
    lmc_scale_radius: ArrayLike | None = None,
    lmc_phase_space: ArrayLike | None = None,
    coulomb_log: ArrayLike | None = None,
    sigma: ArrayLike = 120.0,
    dt: float | None = None,
    disc: str = "exact",
) -> MWLMCOrbit:
    """Brooks et al. MW-LMC orbit from the simulation parameters.

    m200 (Msun) and v_circ_sun (km/s) define the MW (:func:`~jaxhalo.dynamics.potentials.milky_way`, c200
    solved at R_sun = the solar Galactocentric distance unless ``r_sun`` is given, or ``c200`` as given);
    lmc_mass (Msun) the Hernquist LMC (scale from M(<8.7 kpc) = 1.7e10, or ``lmc_scale_radius`` kpc);
    lambda_df the friction strength, ``coulomb_log`` its ln Lambda (default ln(100 kpc / 1.6 a)) and
    ``sigma`` (km/s) its dispersion; observables the LMC today (default Table 1 centres), or
    ``lmc_phase_space`` (6,) its Galactocentric (x, y, z) kpc and (v_x, v_y, v_z) km/s instead (or a
    pair (x, v) of (3,) Quantities);
    solar the frame; ``dt`` (Myr) a fixed-step :class:`FrictionLeapfrog` instead of adaptive Dopri8;
    ``disc`` the MW's disc model (``"exact"`` or ``"miyamoto-nagai"``, see :func:`~jaxhalo.dynamics.potentials.milky_way`).
    Differentiable in every array argument; ``check`` as in :func:`~jaxhalo.dynamics.potentials.solve_c200`.
    Masses, lengths, speeds and times may be astropy Quantities (module docstring).
    """
    m200, lmc_mass = to_internal(m200, MSUN, "m200"), to_internal(lmc_mass, MSUN, "lmc_mass")
    lambda_df, c200 = to_internal(lambda_df, DIMENSIONLESS, "lambda_df"), to_internal(c200, DIMENSIONLESS, "c200")
    t_back, dt = to_internal(t_back, MYR, "t_back"), to_internal(dt, MYR, "dt")
    v_circ_sun, sigma = to_internal(v_circ_sun, KM_S, "v_circ_sun"), to_internal(sigma, KM_S, "sigma")
    r_sun, lmc_scale_radius = to_internal(r_sun, KPC, "r_sun"), to_internal(lmc_scale_radius, KPC, "lmc_scale_radius")
    coulomb_log = to_internal(coulomb_log, DIMENSIONLESS, "coulomb_log")
    pair = None if lmc_phase_space is None else phase_space_to_internal(lmc_phase_space, "lmc_phase_space")
    if pair is not None:
        lmc_phase_space = jnp.concatenate([jnp.asarray(pair[0], dtype=float), jnp.asarray(pair[1], dtype=float)])
    solar = frames.SolarParameters() if solar is None else solar
    r_sun = solar.galcen_distance if r_sun is None else r_sun
    mw = milky_way(m200, c200=c200, v_circ_sun=v_circ_sun, r_sun=r_sun, check=check, disc=disc)
    lmc = lmc_hernquist(lmc_mass, check=check, scale_radius=lmc_scale_radius)
    if lmc_phase_space is None:
        x, v = lmc_present_day(observables, solar)
    else:
        w = jnp.asarray(lmc_phase_space, dtype=float)
        if w.shape != (6,):
            raise ValueError(f"lmc_phase_space must have shape (6,) (x, y, z [kpc], vx, vy, vz [km/s]), got {w.shape}")
        x, v = w[:3], w[3:]
    return integrate_mw_lmc(mw, lmc, x, v, lambda_df, coulomb_log=coulomb_log, sigma=sigma, t_back=t_back,
                            rtol=rtol, atol=atol, dt=dt)
