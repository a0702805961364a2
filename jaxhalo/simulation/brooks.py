"""The Brooks et al. rigid MW-LMC simulator as one jit / vmap-able function of the Table 1 parameters.

``theta`` (12,) holds the parameters of Brooks et al. (2026) Table 1 in :data:`PARAMETER_NAMES`
order and :data:`PARAMETER_UNITS` units::

    log10_m200 [log10 Msun], m_lmc [Msun], log10_lambda_df, ra_lmc [deg], dec_lmc [deg], d_lmc [kpc],
    vlos_lmc [km/s], pmra_lmc [mas/yr], pmdec_lmc [mas/yr], beta0, r_dens [kpc], gamma

One simulation (:func:`simulate`) chains, all in JAX:

1. the Milky Way (:func:`~jaxhalo.dynamics.potentials.milky_way`: NFW with c200 solved for v_c(R_sun) =
   235 km/s, the exact exponential sech^2 disc (``config.disc``; or its Miyamoto-Nagai-sum fit), bulge) and the Hernquist LMC
   (:func:`~jaxhalo.dynamics.potentials.lmc_hernquist`, M(<8.7 kpc) = 1.7e10 Msun);
2. the LMC today from its observables (theta[3:9]) and the MW-LMC two-body orbit with
   lambda_DF friction integrated back ``t_back`` Myr (:func:`~jaxhalo.dynamics.mwlmc.integrate_mw_lmc`,
   Dopri8, rtol = atol = 1e-10), resampled on a uniform time grid as a light
   :class:`TabulatedTrack` (cubic Hermite in t from the exact positions and velocities);
3. the tracer density of Brooks et al. (2026) eq. 2 (inner slope 1, scale r_dens, outer slope
   gamma), with its cusp steepened where a constant-beta DF needs it (``config.inner``, below);
4. the constant-beta DF (:func:`~jaxhalo.dynamics.df.constant_beta_df`) in the spherically averaged MW
   (:func:`~jaxhalo.dynamics.potentials.spherical_average`), sampled at t = -t_back on the MW centre;
5. every particle integrated to t = 0 in the moving MW + LMC (:func:`~jaxhalo.simulation.tracer_orbits.simulate_halo`);
   the snapshot is MW-centred (positions kpc, velocities km/s).

:func:`simulate_observed` adds the mock observation (:func:`~jaxhalo.simulation.observe.observe`) and
:func:`summary_vector` the 52 Brooks et al. summaries, so a suite is
``jax.vmap(summary_vector, in_axes=(0, 0, None))`` (with ``config`` static under ``jit``)::

    sim = jax.jit(jax.vmap(summary_vector, in_axes=(0, 0, None)), static_argnums=2)
    x = sim(thetas, jax.random.split(key, len(thetas)), SimConfig(n_particles=4500))

Decision on the cusp-slope theorem (``SimConfig.inner``)
--------------------------------------------------------
Brooks et al.'s tracer has inner slope 1 but beta0 goes to 0.85; a non-negative constant-beta DF
needs a log-slope >= 2 beta (An & Evans 2006), so for beta0 > 1/2 the DF of eq. 2 as written is
negative at high binding energies (agama's quasi-spherical DF, used by Brooks et al., obeys the same
theorem).
``inner="steepen"`` (default) replaces the tracer by
:func:`~jaxhalo.dynamics.densities.steepen_cusp_for_beta`: log-slope raised to 2 beta + 0.05 inside the radius
r_core where eq. 2's own slope reaches that value (r_core <= 12 kpc over the priors, 0 for
beta0 <= 0.475), a C2 ramp inside r_core, and the density *exactly* unchanged for r >= r_core.
Since the constant-beta DF's velocity distribution at radius r (and the Jeans sigma_r(r)) depends
only on the density at radii >= r, the sampled density and kinematics outside r_core, and so the
whole 30-160 kpc summary window, are exactly those of eq. 2 (tests/test_simulator.py checks the
DF is non-negative at the prior corners, that the sample's density and sigma_r over 20-160 kpc
follow eq. 2 (Poisson counts; the Jeans solution to 3%), and, slow, that f_E below Psi(r_core)
equals eq. 2's). Nothing is clipped: where even the steepened DF were negative the
builder still raises. ``inner="exact"`` keeps eq. 2 as is (and raises
:class:`~jaxhalo.dynamics.df.NegativeDFError` for beta0 beyond what it admits, ~0.5).

Invalid parameters (``SimConfig.on_invalid``)
--------------------------------------------
No c200 in [1, 100] gives v_c(R_sun) = 235 km/s for log10 M200 < ~11.13 (the disc and bulge give
176 km/s at R_sun, and a lighter halo cannot add the rest): ~31% of the Table 1 prior range of
log10_m200. ``on_invalid="raise"`` (default) raises (eagerly :class:`SimulatorError`, under
jit/vmap an equinox runtime error that aborts the whole batch); ``"nan"`` returns NaN positions /
velocities / summaries for those simulations (computed on a valid stand-in, then masked) so a
vmapped suite survives and the caller drops them. :func:`parameter_valid` tells in advance.

Determinism: the same (theta, key, config) gives bit-identical output on the same device and
XLA build (tests/test_simulator.py). Units: kpc, km/s, Msun, Myr.

astropy Quantities: :class:`SimConfig` and :class:`ObsConfig` fields with a unit (``dt``, ``t_back``,
``r_min``, ``v_circ_sun``, ``lmc_phase_space`` as 6 entries or a pair (x, v), ...) accept Quantities and
store plain floats in the units above (so the configs stay hashable static arguments), and theta may
be given to the eager entry points as a dict {name: Quantity} or a sequence of 12 entries with
Quantities (:func:`~jaxhalo.simulation.parameters.theta_to_internal`); a Quantity of the wrong
dimension raises ``astropy.units.UnitConversionError`` naming the field or parameter. Under ``jit``
pass plain arrays: convert first with ``theta_to_internal``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from .. import frames
from ..constants import KMS_TO_KPC_PER_MYR
from ..dynamics.densities import (
    DoublePowerLawDensity,
    SteepenedCusp,
    steepen_cusp_for_beta,
)
from ..dynamics.df import ConstantBetaDF, SphericalProfile, constant_beta_df
from ..dynamics.mwlmc import (
    LMCObservables,
    MWLMCOrbit,
    integrate_mw_lmc,
    lmc_present_day,
)
from ..dynamics.potentials import (
    BulgeDensity,
    Hernquist,
    MilkyWay,
    SphericalFromDensity,
    brooks_disc,
    lmc_hernquist,
    milky_way,
    solve_c200,
    spherical_average,
)
from ..jax_utils import is_concrete
from ..units import (
    DIMENSIONLESS,
    KM_S,
    KPC,
    MAS_YR,
    MYR,
    is_quantity,
    phase_space_to_internal,
    to_internal,
)
from .errors import SimulatorError
from .observe import BROOKS_R_GAL_RANGE, MockObservation, observe
from .parameters import (
    FIDUCIAL_THETA,
    PARAMETER_NAMES,
    PARAMETER_UNITS,
    PRIOR_TABLE1,
    theta_to_internal,
)
from .summaries import brooks_summary_vector
from .tracer_orbits import SOLVERS, Snapshot, freeze_tangents, reaches_radius, simulate_halo

__all__ = [
    "PARAMETER_NAMES",
    "PARAMETER_UNITS",
    "FIDUCIAL_THETA",
    "PRIOR_TABLE1",
    "SimConfig",
    "ObsConfig",
    "SimulatorError",
    "TabulatedTrack",
    "Simulation",
    "theta_from_dict",
    "theta_to_dict",
    "parameter_valid",
    "tracer_density",
    "simulate",
    "simulate_present_day",
    "simulate_observed",
    "summary_vector",
]


def _convert_fields(obj, units: dict[str, str]) -> None:
    """Replace the Quantity-valued fields of a frozen dataclass by floats in their internal units."""
    for name, unit in units.items():
        value = getattr(obj, name)
        if is_quantity(value):
            value = to_internal(value, unit, name)
            if np.ndim(value) != 0:
                raise SimulatorError(f"{name} must be a scalar, got a Quantity of shape {np.shape(value)}")
            object.__setattr__(obj, name, float(value))


#: Units of the :class:`SimConfig` fields that accept astropy Quantities.
_SIMCONFIG_UNITS: dict[str, str] = {
    "dt": MYR, "t_back": MYR, "r_min": KPC, "r_max": KPC, "steepen_margin": DIMENSIONLESS,
    "steepen_width": DIMENSIONLESS, "v_circ_sun": KM_S, "c200_max": DIMENSIONLESS, "c200": DIMENSIONLESS,
    "lmc_scale_radius": KPC, "coulomb_log": DIMENSIONLESS, "friction_sigma": KM_S, "orbit_dt": MYR,
    "tangent_peri_min": KPC,
}





@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Static settings of one simulation (frozen and hashable: pass it as a static jit argument).

    Attributes
    ----------
    n_particles : tracers per simulation (Brooks et al. 2026: 20,000; 2025: 4,500).
    dt : tracer step (Myr) of the leapfrog; also the spacing of the tabulated MW-LMC track.
    t_back : integration time (Myr): the halo is set up at t = -t_back.
    solver : tracer integrator, one of :data:`jaxhalo.simulation.tracer_orbits.SOLVERS` ("leapfrog" default).
    rtol, atol : tolerances of an adaptive tracer solver (kpc, km/s).
    r_min, r_max : radial range (kpc) of the sampled tracers (the profile is truncated there).
    inner : "steepen" (default) or "exact": the cusp-slope decision of the module docstring.
    steepen_margin, steepen_width : slope margin above 2 beta and ramp width (ln r) of the steepening.
    on_invalid : "raise" or "nan" (module docstring).
    solar : "default" (:class:`~jaxhalo.frames.SolarParameters`, as ``jaxhalo fit``) or "brooks"
        (d = 8.3 kpc, Brooks et al.): the frame of the LMC observables, the c200 solve at R_sun
        and the mock observation.
    v_circ_sun : circular speed at R_sun imposed by the c200 solve (km/s).
    c200_max : upper end of the c200 search range.
    orbit_rtol, orbit_atol, orbit_max_steps : the MW-LMC orbit integration (Dopri8).
    dtype : "float64" (default) or "float32": precision of the tracer integration (the MW-LMC
        orbit, potentials and DF are built in the ambient precision and cast).
    df_n_energy, df_n_quad : energy grid and quadrature nodes of the DF's Abel inversion.

    Brooks et al. (2025, 2026) settings (the defaults are the 2026 set-up; ``jaxhalo simulate`` records
    the whole config, the DF radial range ``r_min``/``r_max`` included, in params.json):

    c200 : None (default) solves c200 for v_c(R_sun) = ``v_circ_sun``; a number fixes it (2025 §4.1:
        14.5) and log10_m200 then only needs c200 > 0.
    lmc_scale_radius : None (default) takes the Hernquist a from M(<8.7 kpc) = 1.7e10 Msun; a number
        (kpc) fixes it (2025 §4.1: 18.9) and m_lmc then only needs to be positive.
    lmc_phase_space : None (default) builds the LMC today from its observables theta[3:9]; a tuple
        (x, y, z [kpc], v_x, v_y, v_z [km/s]) gives its Galactocentric state instead (2025 §4.1:
        (-1.1, -28.0, -21.5, -87.1, -198.9, 135.4)), and theta[3:9] are ignored.
    coulomb_log : ln Lambda of the friction; None (default) ln(100 kpc / (1.6 a_LMC)), floored at 0.
    friction_sigma : MW velocity dispersion in the friction term (km/s; 120 as both papers).
    df_potential : "mw" (default: the tracer DF in the spherically averaged MW, 2026) or "nfw"
        (the NFW halo alone, as 2025 §2.2).
    orbit_solver : "dopri8" (default: adaptive, ``orbit_rtol``/``orbit_atol``) or "leapfrog" (fixed
        step ``orbit_dt``, default ``dt``, :class:`~jaxhalo.dynamics.mwlmc.FrictionLeapfrog`:
        second order with the velocity-dependent friction; 1.9e-3 kpc off Dopri8 in the LMC 2.2 Gyr
        ago at 1 Myr, falling as dt^2). The track samples the orbit every ``dt``, linearly between
        leapfrog steps, so keep ``orbit_dt`` = ``dt`` or a divisor of it.
    disc : the Milky Way's disc, "exact" (default: the sech^2 exponential disc,
        :class:`~jaxhalo.dynamics.potentials.ExponentialDiscTable`) or "miyamoto-nagai" (its faster
        four-component fit, errors up to ~4 % off the plane inside 10 kpc; see
        :func:`~jaxhalo.dynamics.potentials.milky_way`); in the c200 solve, the MW-LMC orbit and the tracers.
    gradients : "reverse" (default; ``jax.grad`` / ``jacrev``, the MW-LMC solve checkpointed) or
        "forward" (``jax.jacfwd`` / ``jvp``: the solve is differentiated in forward mode, which needs
        no stored trajectory -- memory independent of the number of steps -- and suits the 12
        parameters against 52 summaries of a Fisher forecast).
    tangent_peri_min : None (default: every tracer is differentiated) or a radius r_c (kpc): the derivatives
        of the tracers whose present-day orbit in the spherically averaged MW of theta reaches within r_c of
        the centre (pericentre from E and L, :func:`~jaxhalo.simulation.tracer_orbits.reaches_radius`; the LMC's
        pull ignored) are cut (:func:`~jaxhalo.simulation.tracer_orbits.freeze_tangents`). The *values* are
        unchanged; only d(snapshot)/d theta of those tracers is set to 0. Meant for Fisher forecasts: the
        leapfrog does not resolve pericentres of a few kpc at dt ~ 1 Myr, and those tracers' tangents grow
        exponentially (numerical chaos) and dominate the Monte Carlo noise of the Jacobian. It is a *biased*
        estimate of d(mean summaries)/d theta: the cut tracers' share of the derivative is dropped (measured in
        benchmarks/results/forecast_chaos/README.md and ``jaxhalo.sbi.forecast``); never use it for inference.

    Fields with a unit accept astropy Quantities (``SimConfig(dt=0.5 * u.Myr, t_back=2.2 * u.Gyr)``),
    stored as floats in the units above; ``lmc_phase_space`` also as a pair (x, v) of (3,) Quantities.
    """

    n_particles: int = 20_000
    dt: float = 1.0
    t_back: float = 2200.0
    solver: str = "leapfrog"
    rtol: float = 1e-8
    atol: float = 1e-8
    r_min: float = 0.1
    r_max: float = 500.0
    inner: Literal["steepen", "exact"] = "steepen"
    steepen_margin: float = 0.05
    steepen_width: float = math.log(2.0)
    on_invalid: Literal["raise", "nan"] = "raise"
    solar: Literal["default", "brooks"] = "default"
    v_circ_sun: float = 235.0
    c200_max: float = 100.0
    orbit_rtol: float = 1e-10
    orbit_atol: float = 1e-10
    orbit_max_steps: int = 4096
    dtype: Literal["float64", "float32"] = "float64"
    df_n_energy: int = 256
    df_n_quad: int = 128
    c200: float | None = None
    lmc_scale_radius: float | None = None
    lmc_phase_space: tuple[float, float, float, float, float, float] | None = None
    coulomb_log: float | None = None
    friction_sigma: float = 120.0
    df_potential: Literal["mw", "nfw"] = "mw"
    orbit_solver: Literal["dopri8", "leapfrog"] = "dopri8"
    orbit_dt: float | None = None
    gradients: Literal["reverse", "forward"] = "reverse"
    disc: Literal["exact", "miyamoto-nagai"] = "exact"
    tangent_peri_min: float | None = None

    def __post_init__(self):
        _convert_fields(self, _SIMCONFIG_UNITS)
        if self.lmc_phase_space is not None:
            pair = phase_space_to_internal(self.lmc_phase_space, "lmc_phase_space")
            if pair is not None:
                w = np.concatenate([np.asarray(pair[0], float), np.asarray(pair[1], float)])
                object.__setattr__(self, "lmc_phase_space", tuple(float(c) for c in w))
            elif isinstance(self.lmc_phase_space, (list, tuple)) and len(self.lmc_phase_space) == 6:
                w = tuple(to_internal(c, KPC if i < 3 else KM_S, f"lmc_phase_space[{i}]")
                          for i, c in enumerate(self.lmc_phase_space))
                object.__setattr__(self, "lmc_phase_space", w)
        if self.n_particles < 1:
            raise SimulatorError(f"n_particles must be >= 1, got {self.n_particles}")
        if not (self.dt > 0 and self.t_back > 0 and self.dt <= self.t_back):
            raise SimulatorError(f"need 0 < dt <= t_back, got dt = {self.dt}, t_back = {self.t_back} Myr")
        if self.solver not in SOLVERS:
            raise SimulatorError(f"unknown solver {self.solver!r}; choose one of {SOLVERS}")
        if not 0 < self.r_min < self.r_max:
            raise SimulatorError(f"need 0 < r_min < r_max, got {self.r_min}, {self.r_max} kpc")
        for name, value, allowed in (("inner", self.inner, ("steepen", "exact")),
                                     ("on_invalid", self.on_invalid, ("raise", "nan")),
                                     ("solar", self.solar, ("default", "brooks")),
                                     ("dtype", self.dtype, ("float64", "float32")),
                                     ("df_potential", self.df_potential, ("mw", "nfw")),
                                     ("orbit_solver", self.orbit_solver, ("dopri8", "leapfrog")),
                                     ("gradients", self.gradients, ("reverse", "forward")),
                                     ("disc", self.disc, ("exact", "miyamoto-nagai"))):
            if value not in allowed:
                raise SimulatorError(f"{name} must be one of {allowed}, got {value!r}")
        for name in ("c200", "lmc_scale_radius", "orbit_dt", "tangent_peri_min"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise SimulatorError(f"{name} must be a positive number or None, got {value!r}")
        if self.coulomb_log is not None and not (math.isfinite(self.coulomb_log) and self.coulomb_log >= 0):
            raise SimulatorError(f"coulomb_log must be >= 0 or None, got {self.coulomb_log!r}")
        if not (math.isfinite(self.friction_sigma) and self.friction_sigma > 0):
            raise SimulatorError(f"friction_sigma must be positive (km/s), got {self.friction_sigma!r}")
        if self.lmc_phase_space is not None:
            w = tuple(self.lmc_phase_space)
            if len(w) != 6 or not all(math.isfinite(float(c)) for c in w):
                raise SimulatorError(
                    f"lmc_phase_space must be 6 finite numbers (x, y, z [kpc], vx, vy, vz [km/s]), got {w!r}")
            object.__setattr__(self, "lmc_phase_space", tuple(float(c) for c in w))

    def solar_parameters(self) -> frames.SolarParameters:
        """The :class:`~jaxhalo.frames.SolarParameters` named by ``solar``."""
        return frames.SolarParameters.brooks() if self.solar == "brooks" else frames.SolarParameters()

    @property
    def n_steps(self) -> int:
        """Leapfrog steps (and track intervals): round(t_back / dt)."""
        return int(round(self.t_back / self.dt))


@dataclasses.dataclass(frozen=True)
class ObsConfig:
    """Static settings of the mock observation used by :func:`simulate_observed` / :func:`summary_vector`.

    Defaults follow Brooks et al. (2026) §3.2: the per-star observables are exact
    (``add_errors=False``) and survey uncertainties are applied to the binned summaries instead
    (:func:`~jaxhalo.simulation.summaries.add_summary_noise`); the window is 30-160 kpc in r_gal. With
    ``add_errors=True`` the per-star errors of :func:`~jaxhalo.simulation.observe.observe` are drawn
    (fractional distance error, km/s, mas/yr).
    """

    add_errors: bool = False
    distance_frac_err: float = 0.10
    v_los_err: float = 2.0
    pm_l_err: float = 0.15
    pm_b_err: float = 0.15
    r_gal_range: tuple[float, float] | None = BROOKS_R_GAL_RANGE

    def __post_init__(self):
        _convert_fields(self, {"distance_frac_err": DIMENSIONLESS, "v_los_err": KM_S, "pm_l_err": MAS_YR,
                               "pm_b_err": MAS_YR})
        if self.r_gal_range is not None:
            lo_hi = to_internal(self.r_gal_range, KPC, "r_gal_range")
            if lo_hi is not self.r_gal_range:
                if np.shape(lo_hi) != (2,):
                    raise SimulatorError(f"r_gal_range must be (low, high) in kpc, got shape {np.shape(lo_hi)}")
                object.__setattr__(self, "r_gal_range", (float(lo_hi[0]), float(lo_hi[1])))


class TabulatedTrack(eqx.Module):
    """MW and LMC centres on a uniform time grid, cubic Hermite in t (a :class:`~jaxhalo.simulation.tracer_orbits.Track`).

    Attributes: ``t0`` (Myr, first node), ``h`` (Myr, spacing), ``mw_x``, ``mw_v``, ``lmc_x``,
    ``lmc_v`` (n, 3) positions (kpc) and velocities (km/s) at the nodes t0 + i h. Positions are
    interpolated with the velocities as slopes (exact at the nodes; O(h^4) between), velocities
    as the derivative of that interpolant. Evaluating costs O(1) (no search), and the table is a
    few hundred kB, unlike a diffrax dense solution sized by its ``max_steps``.
    """

    t0: Array
    h: Array
    mw_x: Array
    mw_v: Array
    lmc_x: Array
    lmc_v: Array

    @classmethod
    def from_orbit(cls, orbit: MWLMCOrbit, t_back: float, n_steps: int) -> "TabulatedTrack":
        """Sample ``orbit`` at n_steps + 1 equally spaced times on [-t_back, 0] (Myr)."""
        t = jnp.linspace(-float(t_back), 0.0, n_steps + 1)
        s = orbit.state(t)
        return cls(t[0], t[1] - t[0], s[:, 0:3], s[:, 3:6], s[:, 6:9], s[:, 9:12])

    @property
    def times(self) -> Array:
        """Node times (n,) in Myr."""
        return self.t0 + self.h * jnp.arange(self.mw_x.shape[0], dtype=self.mw_x.dtype)

    def _cell(self, t):
        t = jnp.asarray(t, self.mw_x.dtype)
        f = (t - self.t0) / self.h
        i = jnp.clip(jnp.floor(f).astype(jnp.int32), 0, self.mw_x.shape[0] - 2)
        return i, (f - i)[..., None]

    def _pos(self, x, v, t):
        i, s = self._cell(t)
        k = self.h * KMS_TO_KPC_PER_MYR
        s2, s3 = s * s, s * s * s
        return ((2 * s3 - 3 * s2 + 1) * x[i] + (s3 - 2 * s2 + s) * k * v[i]
                + (-2 * s3 + 3 * s2) * x[i + 1] + (s3 - s2) * k * v[i + 1])

    def _vel(self, x, v, t):
        i, s = self._cell(t)
        k = self.h * KMS_TO_KPC_PER_MYR
        s2 = s * s
        dx = ((6 * s2 - 6 * s) * x[i] + (3 * s2 - 4 * s + 1) * k * v[i]
              + (-6 * s2 + 6 * s) * x[i + 1] + (3 * s2 - 2 * s) * k * v[i + 1])
        return dx / k

    def mw_position(self, t: ArrayLike) -> Array:
        """MW centre (..., 3) kpc at t (Myr)."""
        return self._pos(self.mw_x, self.mw_v, t)

    def mw_velocity(self, t: ArrayLike) -> Array:
        """MW centre velocity (..., 3) km/s at t (Myr)."""
        return self._vel(self.mw_x, self.mw_v, t)

    def lmc_position(self, t: ArrayLike) -> Array:
        """LMC centre (..., 3) kpc at t (Myr)."""
        return self._pos(self.lmc_x, self.lmc_v, t)

    def lmc_velocity(self, t: ArrayLike) -> Array:
        """LMC centre velocity (..., 3) km/s at t (Myr)."""
        return self._vel(self.lmc_x, self.lmc_v, t)


class Simulation(eqx.Module):
    """Everything one :func:`simulate` call built (a pytree; batched under vmap).

    snapshot : present-day MW-centred :class:`~jaxhalo.simulation.tracer_orbits.Snapshot` (n, 3) kpc / km/s.
    track : the MW-LMC :class:`TabulatedTrack` (inertial frame = Galactocentric at t = 0).
    mw, lmc : the potentials (centred on the origin). tracer : the tracer density used.
    df : the :class:`~jaxhalo.dynamics.df.ConstantBetaDF`. valid : bool scalar (False only with
    ``on_invalid="nan"``, where every float of ``snapshot`` is NaN).
    """

    snapshot: Snapshot
    track: TabulatedTrack
    mw: MilkyWay
    lmc: Hernquist
    tracer: eqx.Module
    df: ConstantBetaDF
    valid: Array


def theta_from_dict(values: dict) -> np.ndarray:
    """theta (12,) from a dict keyed by :data:`PARAMETER_NAMES` (missing keys: :data:`FIDUCIAL_THETA`);
    values may be astropy Quantities (:func:`~jaxhalo.simulation.parameters.theta_to_internal`)."""
    if not isinstance(values, dict):
        values = dict(values)
    return theta_to_internal(values)


def theta_to_dict(theta: ArrayLike) -> dict[str, float]:
    """The (12,) theta as {name: float}."""
    th = np.asarray(theta, float)
    return {n: float(v) for n, v in zip(PARAMETER_NAMES, th)}


def _check_theta(theta: Array) -> None:
    if theta.shape != (len(PARAMETER_NAMES),):
        raise SimulatorError(
            f"theta must have shape ({len(PARAMETER_NAMES)},) in the order {PARAMETER_NAMES}, got {theta.shape}"
            " (vmap over a leading axis for a batch)"
        )


def _c200(log10_m200: Array, config: SimConfig) -> Array:
    """c200 giving v_c(R_sun) = config.v_circ_sun with the Brooks disc (``config.disc``) and bulge (NaN where
    none in [1, config.c200_max]); the baryons are those of :func:`~jaxhalo.dynamics.potentials.milky_way`'s defaults."""
    disc = brooks_disc(config.disc)
    bulge = SphericalFromDensity(BulgeDensity(), total_mass=1.2e10, r_min=1e-4, r_max=50.0, n=256)
    return solve_c200(10.0 ** log10_m200, config.v_circ_sun, config.solar_parameters().galcen_distance,
                      baryons=disc + bulge, c_range=(1.0, config.c200_max), check=False)


def parameter_valid(theta: ArrayLike, config: SimConfig = SimConfig()) -> Array:
    """Whether theta (..., 12) can be simulated: c200 solvable (unless ``config.c200`` is given),
    M_LMC > 1.7e10 Msun (> 0 with ``config.lmc_scale_radius``), 0 <= beta0 < 1, gamma > 2 beta0,
    r_dens > 0, d_lmc > 0 (unless ``config.lmc_phase_space``). Returns a bool array (...,). Cheap
    (no orbit, no DF)."""
    theta = jnp.asarray(theta_to_internal(theta), dtype=float)
    if theta.shape[-1:] != (len(PARAMETER_NAMES),):
        raise SimulatorError(f"theta must end in an axis of {len(PARAMETER_NAMES)}, got {theta.shape}")
    c = _c200(theta[..., 0], config) if config.c200 is None else jnp.full(theta.shape[:-1], config.c200)
    m_lmc_min = 1.7e10 if config.lmc_scale_radius is None else 0.0
    d_ok = theta[..., 5] > 0 if config.lmc_phase_space is None else True
    beta, gamma = theta[..., 9], theta[..., 11]
    return (jnp.isfinite(c) & (theta[..., 1] > m_lmc_min) & (beta >= 0) & (beta < 1) & (gamma > 2 * beta)
            & (gamma > 1.0) & (theta[..., 10] > 0) & d_ok & jnp.all(jnp.isfinite(theta), -1))


def tracer_density(theta: ArrayLike, config: SimConfig = SimConfig()) -> DoublePowerLawDensity | SteepenedCusp:
    """The tracer density of theta: Brooks et al. (2026) eq. 2 (inner slope 1, r_dens, gamma),
    steepened for beta0 when ``config.inner == "steepen"`` (module docstring)."""
    theta = jnp.asarray(theta_to_internal(theta), dtype=float)
    base = DoublePowerLawDensity(theta[10], theta[11], 1.0)
    if config.inner == "exact":
        return base
    return steepen_cusp_for_beta(base, theta[9], margin=config.steepen_margin, width=config.steepen_width)


def _require_x64() -> None:
    """Refuse to build a simulation with JAX in 32-bit mode, naming the fix.

    The set-up (c200 root, the Dopri8 MW-LMC orbit at rtol 1e-10, the DF tables) needs float64 even
    when ``SimConfig(dtype="float32")`` integrates the tracers in float32; in 32-bit mode the orbit
    solve runs out of steps with an opaque "maximum number of solver steps" error. jaxhalo does not
    switch x64 on at import (it would change the caller's other JAX code); the CLI does.
    """
    if not jax.config.jax_enable_x64:
        raise SimulatorError("the MW-LMC simulator needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) "
                             "before using it (SimConfig(dtype='float32') still integrates the tracers in float32)")


def _cast(tree, dtype):
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating) else a, tree
    )


def simulate(theta: ArrayLike, key: Array, config: SimConfig = SimConfig()) -> Simulation:
    """Run one Brooks et al. MW-LMC simulation (module docstring) and return everything it built.

    Args:
      theta: (12,) parameters in :data:`PARAMETER_NAMES` order and :data:`PARAMETER_UNITS`; eagerly also
        a dict {name: value} or a sequence of 12 entries with astropy Quantities (module docstring).
      key: ``jax.random`` key (the tracer sample).
      config: :class:`SimConfig` (static under jit).
    Returns: :class:`Simulation` (snapshot at t = 0 MW-centred, the track, potentials, DF).
    Raises: :class:`SimulatorError` for a bad theta shape or (eagerly, ``on_invalid="raise"``)
      infeasible parameters; under jit the same as an equinox runtime error.
    """
    _require_x64()
    theta = jnp.asarray(theta_to_internal(theta), dtype=jnp.result_type(float))
    _check_theta(theta)
    valid = parameter_valid(theta, config)
    if config.on_invalid == "raise":
        if is_concrete(valid):  # not theta: a concrete theta closed over by jit gives a traced check
            if not bool(valid):
                raise SimulatorError(
                    f"theta cannot be simulated: {theta_to_dict(theta)} (no c200 in [1, {config.c200_max}] gives "
                    f"v_c(R_sun) = {config.v_circ_sun} km/s for log10 M200 below ~11.13, or M_LMC <= 1.7e10 Msun, "
                    "or beta0 / gamma / r_dens / d_lmc out of range); see simulator.parameter_valid"
                )
        else:
            theta = eqx.error_if(theta, ~valid, "simulator: theta cannot be simulated (see simulator.parameter_valid)")
    else:
        theta = jnp.where(valid, theta, jnp.asarray(FIDUCIAL_THETA, theta.dtype))
    check = config.on_invalid == "raise"
    solar = config.solar_parameters()

    c200 = _c200(theta[0], config) if config.c200 is None else jnp.asarray(config.c200, theta.dtype)
    mw = milky_way(10.0 ** theta[0], c200=c200, disc=config.disc)
    lmc = lmc_hernquist(theta[1], check=False, scale_radius=config.lmc_scale_radius)
    if config.lmc_phase_space is None:
        obs = LMCObservables(theta[3], theta[4], theta[5], theta[6], theta[7], theta[8])
        x_lmc, v_lmc = lmc_present_day(obs, solar)
    else:
        w = jnp.asarray(config.lmc_phase_space, theta.dtype)
        x_lmc, v_lmc = w[:3], w[3:]
    orbit_dt = None if config.orbit_solver == "dopri8" else (config.dt if config.orbit_dt is None else config.orbit_dt)
    orbit = integrate_mw_lmc(mw, lmc, x_lmc, v_lmc, 10.0 ** theta[2], coulomb_log=config.coulomb_log,
                             sigma=config.friction_sigma, t_back=config.t_back, rtol=config.orbit_rtol,
                             atol=config.orbit_atol, max_steps=config.orbit_max_steps, dt=orbit_dt,
                             forward_mode=config.gradients == "forward")
    track = TabulatedTrack.from_orbit(orbit, config.t_back, config.n_steps)

    tracer = tracer_density(theta, config)
    profile = SphericalProfile(spherical_average(mw) if config.df_potential == "mw" else mw.halo)
    df = constant_beta_df(tracer, profile, theta[9], r_min=config.r_min, r_max=config.r_max,
                          n_energy=config.df_n_energy, n_quad=config.df_n_quad, check=check)
    if not check:  # the builder's negativity test, as a flag instead of an error
        tiny = jnp.log(jnp.finfo(df.ln_f.dtype).tiny)
        valid = valid & jnp.all(jnp.isfinite(df.ln_f) & (df.ln_f > tiny + 1.0))

    dtype = jnp.dtype(config.dtype)
    host_i, lmc_i, track_i, df_i = (mw, lmc, track, df) if dtype == theta.dtype else _cast((mw, lmc, track, df), dtype)
    snap = simulate_halo(key, df_i, host_i, lmc_i, track_i, config.n_particles, t0=-config.t_back,
                         solver=config.solver, dt=config.dt, rtol=config.rtol, atol=config.atol)
    if config.tangent_peri_min is not None:
        peri_profile = profile if config.df_potential == "mw" else SphericalProfile(spherical_average(mw))
        plunging = reaches_radius(snap.positions, snap.velocities, peri_profile.potential_of_r,
                                  config.tangent_peri_min)
        snap = freeze_tangents(snap, plunging)
    if not check:
        nan = jnp.asarray(jnp.nan, snap.positions.dtype)
        snap = Snapshot(jnp.where(valid, snap.positions, nan), jnp.where(valid, snap.velocities, nan))
    return Simulation(snap, track, mw, lmc, tracer, df, valid)


def simulate_present_day(theta: ArrayLike, key: Array, config: SimConfig = SimConfig()) -> Snapshot:
    """The present-day (t = 0) MW-centred snapshot of :func:`simulate`: positions (n, 3) kpc,
    velocities (n, 3) km/s. jit with ``static_argnums=2`` (config) and vmap over theta (..., 12)
    and keys (module docstring)."""
    return simulate(theta, key, config).snapshot


def simulate_observed(
    theta: ArrayLike, key: Array, config: SimConfig = SimConfig(), obs_config: ObsConfig = ObsConfig()
) -> MockObservation:
    """:func:`simulate_present_day` then :func:`~jaxhalo.simulation.observe.observe` from the Sun of
    ``config.solar`` with ``obs_config``. ``key`` is split into (simulation, observation) keys.
    Returns a :class:`~jaxhalo.simulation.observe.MockObservation` of (n,) arrays with its ``selected`` mask."""
    k_sim, k_obs = jax.random.split(key)
    snap = simulate_present_day(theta, k_sim, config)
    return observe(
        k_obs, snap.positions, snap.velocities, config.solar_parameters(),
        distance_frac_err=obs_config.distance_frac_err, v_los_err=obs_config.v_los_err,
        pm_l_err=obs_config.pm_l_err, pm_b_err=obs_config.pm_b_err, r_gal_range=obs_config.r_gal_range,
        add_errors=obs_config.add_errors,
    )


def summary_vector(
    theta: ArrayLike, key: Array, config: SimConfig = SimConfig(), obs_config: ObsConfig = ObsConfig()
) -> Array:
    """The 52 Brooks et al. (2026) summaries (km/s; order :data:`jaxhalo.simulation.summaries.BROOKS_SUMMARY_LABELS`)
    of one simulation: :func:`simulate_observed` then :func:`~jaxhalo.simulation.summaries.brooks_summary_vector`.
    NaN for empty bins and (``on_invalid="nan"``) for invalid theta."""
    return brooks_summary_vector(simulate_observed(theta, key, config, obs_config))
