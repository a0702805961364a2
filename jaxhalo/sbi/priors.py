"""Priors of the Brooks et al. MW-LMC simulation suites, as numpyro distributions.

The parameter vector theta (12,) follows :data:`PARAMETER_NAMES` (the order of
``jaxhalo.simulation.brooks.PARAMETER_NAMES``), in these units:

=================  ====================================================  =====================
name               meaning                                               unit
=================  ====================================================  =====================
log10_m200         log10 of the MW halo mass M200                        log10(Msun)
m_lmc              LMC total (Hernquist) mass                            Msun
log10_lambda_df    log10 of the dynamical-friction multiplier            --
ra_lmc, dec_lmc    LMC centre (ICRS)                                     deg
d_lmc              LMC heliocentric distance                             kpc
vlos_lmc           LMC line-of-sight velocity                            km/s
pmra_lmc           LMC mu_alpha* (includes cos dec)                      mas/yr
pmdec_lmc          LMC mu_delta                                          mas/yr
beta0              constant velocity anisotropy of the stellar halo      --
r_dens             tracer-density scale radius                           kpc
gamma              outer slope of rho ~ r^-1 (1 + r/r_dens)^(1-gamma)    --
=================  ====================================================  =====================

Two tables are provided:

* :func:`brooks2026_prior` -- Brooks et al. (2026) Table 1 (the default).
* :func:`brooks2025_prior` -- Brooks et al. (2025) Table 1. That paper's M200 and M_LMC priors
  are Gaussians in the masses, N(15, 5) x 1e11 and N(15, 10) x 1e10 Msun; here they are
  truncated to the model's valid range (M200 >= 10^10.5 Msun, the lower edge of the 2026
  prior; M_LMC >= 2.5e10 Msun, the lower edge of the 2026 prior and of their §6.2 flat prior,
  "a truncated Gaussian", §4.2) and M200 is expressed in log10 (a transformed distribution, so
  log densities include the Jacobian). Its tracer was a Dehnen profile; ``gamma`` is fixed to 4
  (rho ~ r^-1 (1 + r/r_s)^-3, the inner-slope-1 Dehnen / Hernquist profile) by a Delta
  distribution.

Validation (:meth:`SuitePrior.validate`, run at construction) raises :class:`PriorError`
naming the parameter when a prior's support leaves the model's valid range, e.g. an LMC mass
that can go below the M(< 8.7 kpc) = 1.7e10 Msun constraint of van der Marel & Kallivayalil
(2014), for which no Hernquist scale radius exists.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import Array
from jax.typing import ArrayLike
from numpyro.distributions import transforms as T

from ..simulation.parameters import PARAMETER_NAMES, PRIOR_TABLE1
from ..simulation.parameters import PARAMETER_UNITS as _SIM_UNITS

__all__ = [
    "PARAMETER_NAMES",
    "PARAMETER_UNITS",
    "LMC_ENCLOSED_MASS",
    "PriorError",
    "SuitePrior",
    "brooks2026_prior",
    "brooks2025_prior",
    "get_prior",
    "PRIORS",
]

#: Units of each parameter, by name (from :data:`jaxhalo.simulation.brooks.PARAMETER_UNITS`).
PARAMETER_UNITS: dict[str, str] = dict(zip(PARAMETER_NAMES, _SIM_UNITS))

#: M_LMC(< 8.7 kpc) = 1.7e10 Msun (van der Marel & Kallivayalil 2014).
LMC_ENCLOSED_MASS = 1.7e10

#: Hard validity limits of the model per parameter: (lower, upper, reason). A prior whose support
#: reaches beyond them is rejected. Open bounds are exclusive.
_VALID_RANGE: dict[str, tuple[float, float, str]] = {
    "m_lmc": (LMC_ENCLOSED_MASS, math.inf,
              "the LMC total mass must exceed its enclosed mass M(<8.7 kpc) = 1.7e10 Msun, "
              "else no Hernquist scale radius satisfies the constraint"),
    "beta0": (-math.inf, 1.0, "the anisotropy must be below 1 (constant-beta distribution function)"),
    "r_dens": (0.0, math.inf, "the tracer scale radius must be positive"),
    "d_lmc": (0.0, math.inf, "the LMC distance must be positive"),
    "dec_lmc": (-90.0, 90.0, "declination must lie in (-90, 90) deg"),
    "gamma": (1.0, math.inf, "the outer slope gamma must exceed 1 (finite tracer density profile)"),
}


class PriorError(ValueError):
    """A prior (or a parameter vector) outside the model's valid range."""


def _support_bounds(d: dist.Distribution) -> tuple[float, float]:
    """(lower, upper) of a univariate numpyro distribution's support (inf when unbounded)."""
    if isinstance(d, dist.Delta):
        v = float(np.asarray(d.v))
        return v, v
    s = d.support
    lo = getattr(s, "lower_bound", None)
    hi = getattr(s, "upper_bound", None)
    if s is dist.constraints.positive or isinstance(s, type(dist.constraints.positive)):
        lo = 0.0
    lo = -math.inf if lo is None else float(np.asarray(lo))
    hi = math.inf if hi is None else float(np.asarray(hi))
    if isinstance(d, dist.TransformedDistribution):  # push the base support through monotone transforms
        blo, bhi = _support_bounds(d.base_dist)
        for t in d.transforms:
            with np.errstate(divide="ignore"):
                a, b = float(t(jnp.asarray(blo))), float(t(jnp.asarray(bhi)))
            blo, bhi = min(a, b), max(a, b)
        lo, hi = blo, bhi
    return lo, hi


class SuitePrior:
    """A product prior over the named simulator parameters.

    Parameters
    ----------
    name : label stored with a suite (e.g. ``"brooks2026"``).
    dists : mapping parameter name -> univariate numpyro distribution (every name of
        ``names`` must be present).
    names : the parameter order (default :data:`PARAMETER_NAMES`).
    validate : check every support against the model's valid range (default True).

    Notes
    -----
    ``sample(key, shape)`` gives (*shape, P); ``log_prob(theta)`` for theta (..., P) gives (...);
    ``in_support(theta)`` a boolean (...); ``bounds`` (lower (P,), upper (P,)) as NumPy arrays.
    Everything is pure JAX: sampling and log densities jit and vmap.
    """

    def __init__(self, name: str, dists: Mapping[str, dist.Distribution], names: Sequence[str] = PARAMETER_NAMES,
                 validate: bool = True, description: str = ""):
        missing = [n for n in names if n not in dists]
        extra = [n for n in dists if n not in names]
        if missing or extra:
            raise PriorError(f"prior {name!r}: missing parameters {missing}, unknown parameters {extra}")
        for n in names:
            d = dists[n]
            if not isinstance(d, dist.Distribution) or d.event_shape != () or d.batch_shape != ():
                raise PriorError(f"prior {name!r}: parameter {n!r} needs a scalar numpyro distribution, got {d!r}")
        self.name = name
        self.names = tuple(names)
        self.dists = {n: dists[n] for n in self.names}
        self.description = description
        if validate:
            self.validate()
        #: one point inside every support (a fixed-key draw): stands in for out-of-support values
        #: inside log_prob, whose result there is -inf anyway
        self._inside = np.asarray(self.sample(jax.random.PRNGKey(0)))

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Support bounds per parameter: (lower (P,), upper (P,)), +-inf when unbounded."""
        b = np.array([_support_bounds(self.dists[n]) for n in self.names], dtype=float)
        return b[:, 0], b[:, 1]

    def validate(self, tol: float = 1e-9) -> None:
        """Raise :class:`PriorError` naming the parameter whose prior puts mass outside the valid range.

        A prior passes when its probability outside the model's valid range (from the cdf, or from
        the support bounds for distributions without one) is below ``tol``: Gaussian tails such
        as d_lmc ~ N(49.6, 2) kpc (P(d < 0) ~ 1e-130) pass, U(1e10, 5e11) Msun for m_lmc does not.
        """
        for n in self.names:
            if n not in _VALID_RANGE:
                continue
            vlo, vhi, why = _VALID_RANGE[n]
            d = self.dists[n]
            lo, hi = _support_bounds(d)
            if isinstance(d, dist.Delta):
                p_out = 0.0 if vlo < lo < vhi else 1.0
            else:
                try:
                    p_out = 0.0
                    if math.isfinite(vlo):
                        p_out += float(d.cdf(jnp.asarray(vlo))) if lo < vlo else 0.0
                    if math.isfinite(vhi):
                        p_out += 1.0 - float(d.cdf(jnp.asarray(vhi))) if hi > vhi else 0.0
                except (NotImplementedError, AttributeError):
                    p_out = 0.0 if (lo > vlo or (lo == vlo == -math.inf)) and (hi < vhi or (hi == vhi == math.inf)) else 1.0
                if (math.isfinite(vlo) and lo == vlo) or (math.isfinite(vhi) and hi == vhi):
                    # a support touching an exclusive limit (e.g. m_lmc from exactly 1.7e10) is invalid
                    p_out = 1.0
            if not p_out < tol:
                raise PriorError(
                    f"prior {self.name!r}: parameter {n!r} has support [{lo:g}, {hi:g}] "
                    f"{PARAMETER_UNITS.get(n, '')} with probability {p_out:.3g} outside the model's valid "
                    f"range ({vlo:g}, {vhi:g}): {why}"
                )

    def describe(self) -> dict[str, str]:
        """Parameter name -> a short text form of its distribution (stored in suite manifests)."""
        out = {}
        for n in self.names:
            d = self.dists[n]
            lo, hi = _support_bounds(d)
            out[n] = f"{type(d).__name__} on [{lo:g}, {hi:g}] {PARAMETER_UNITS.get(n, '')}".strip()
        return out

    # ------------------------------------------------------------------ numerics
    def sample(self, key: Array, shape: tuple[int, ...] = ()) -> Array:
        """Draw parameters: (*shape, P) in the units of :data:`PARAMETER_UNITS`."""
        keys = jax.random.split(key, self.dim)
        cols = [self.dists[n].sample(k, shape) for n, k in zip(self.names, keys)]
        return jnp.stack([jnp.asarray(c, dtype=jnp.result_type(float)) for c in cols], axis=-1)

    def log_prob(self, theta: ArrayLike) -> Array:
        """Log prior density of theta (..., P) -> (...); -inf outside the support."""
        theta = jnp.asarray(theta)
        self._check_shape(theta)
        lp = 0.0
        for i, n in enumerate(self.names):
            d = self.dists[n]
            x = theta[..., i]
            if isinstance(d, dist.Delta):
                continue  # a fixed parameter contributes no density
            ok = d.support(x)
            lp = lp + jnp.where(ok, d.log_prob(jnp.where(ok, x, self._inside[i])), -jnp.inf)
        return lp

    def in_support(self, theta: ArrayLike) -> Array:
        """Whether theta (..., P) lies inside every parameter's support (fixed ones ignored)."""
        theta = jnp.asarray(theta)
        self._check_shape(theta)
        lo, hi = self.bounds
        fixed = lo == hi
        ok = (theta >= lo) & (theta <= hi)
        return jnp.all(ok | fixed, axis=-1)

    def check_theta(self, theta: ArrayLike) -> None:
        """Raise :class:`PriorError` naming the first parameter of a concrete theta (..., P) outside the prior."""
        theta = np.asarray(theta, dtype=float)
        self._check_shape(theta)
        lo, hi = self.bounds
        for i, n in enumerate(self.names):
            x = theta[..., i]
            if lo[i] == hi[i]:
                continue
            if not np.all(np.isfinite(x)) or np.any(x < lo[i]) or np.any(x > hi[i]):
                bad = x[~(np.isfinite(x) & (x >= lo[i]) & (x <= hi[i]))]
                raise PriorError(f"parameter {n!r} = {bad.ravel()[:3]} outside the prior {self.name!r} support "
                                 f"[{lo[i]:g}, {hi[i]:g}] {PARAMETER_UNITS.get(n, '')}")

    def _check_shape(self, theta) -> None:
        if theta.ndim < 1 or theta.shape[-1] != self.dim:
            raise PriorError(f"theta must have shape (..., {self.dim}) ({', '.join(self.names)}), got {theta.shape}")

    def with_overrides(self, overrides: Mapping[str, dist.Distribution], name: str | None = None) -> "SuitePrior":
        """A copy with some parameters' distributions replaced (validated)."""
        unknown = [n for n in overrides if n not in self.names]
        if unknown:
            raise PriorError(f"unknown parameter(s) {unknown}; known: {list(self.names)}")
        return SuitePrior(name or f"{self.name}+custom", {**self.dists, **overrides}, self.names,
                          description=self.description)

    def __repr__(self) -> str:
        return f"SuitePrior({self.name!r}, {len(self.names)} parameters)"


def _log10_of(base: dist.Distribution) -> dist.Distribution:
    """The distribution of log10(X) for X ~ base (Jacobian included)."""
    return dist.TransformedDistribution(base, [T.ExpTransform().inv, T.AffineTransform(0.0, 1.0 / math.log(10.0))])


def brooks2026_prior() -> SuitePrior:
    """Brooks et al. (2026) Table 1 (units of :data:`PARAMETER_UNITS`), as transcribed once in
    :data:`jaxhalo.simulation.brooks.PRIOR_TABLE1`."""
    family = {"uniform": dist.Uniform, "normal": dist.Normal}
    return SuitePrior("brooks2026", {n: family[kind](a, b) for n, (kind, a, b) in PRIOR_TABLE1.items()},
                      description="Brooks et al. (2026) Table 1")


def brooks2025_prior(m200_min: float = 10**10.5, m_lmc_min: float = 2.5e10) -> SuitePrior:
    """Brooks et al. (2025) Table 1, truncated to the model's valid range (see the module docstring).

    ``m200_min`` and ``m_lmc_min`` (Msun) are the truncation points of the mass Gaussians.
    """
    U, N = dist.Uniform, dist.Normal
    return SuitePrior("brooks2025", {
        "log10_m200": _log10_of(dist.TruncatedNormal(15e11, 5e11, low=m200_min)),
        "m_lmc": dist.TruncatedNormal(15e10, 10e10, low=m_lmc_min),
        "log10_lambda_df": U(-3.0, 1.0),
        "ra_lmc": U(60.0, 90.0),
        "dec_lmc": U(-80.0, -50.0),
        "d_lmc": N(49.6, 5.0),
        "vlos_lmc": N(262.2, 10.0),
        "pmra_lmc": N(1.9, 0.25),
        "pmdec_lmc": N(0.33, 0.25),
        "beta0": U(0.0, 0.9),
        "r_dens": U(10.0, 15.0),
        "gamma": dist.Delta(4.0),
    }, description="Brooks et al. (2025) Table 1 (mass Gaussians truncated; gamma = 4 fixed)")


PRIORS = {"brooks2026": brooks2026_prior, "brooks2025": brooks2025_prior}


def get_prior(name: str) -> SuitePrior:
    """The named prior (``"brooks2026"`` or ``"brooks2025"``)."""
    if name not in PRIORS:
        raise PriorError(f"unknown prior {name!r}; choose one of {sorted(PRIORS)}")
    return PRIORS[name]()
