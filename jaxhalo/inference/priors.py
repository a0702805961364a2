"""Priors of the reflex model (Chandra et al. 2025; reflexcalc) and their unit-cube map."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Literal, Mapping

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import Array
from jax.typing import ArrayLike
from numpyro import handlers

from ..likelihoods.outlier import outlier_parameter_names
from ..likelihoods.reflex import ReflexModel

__all__ = [
    "sample_prior_sites",
    "sample_prior_site",
    "prior_base_name",
    "PriorSet",
    "params_to_unit",
    "unit_prior_table",
]


PriorName = Literal["chandra", "reference"]


_OUTLIER_NAMES = frozenset(outlier_parameter_names("gaussian"))


@dataclass(frozen=True)
class PriorSet:
    """Prior ranges of the reflex model (velocities km/s, dispersions km/s).

    ``kind='chandra'`` (Chandra et al. 2025): uniform in the apex longitude and in the
    sine of the apex latitude (an isotropic apex; the paper's "uniform in cos B" read as
    the cosine of the colatitude), log-uniform dispersions on [sigma_min, sigma_max],
    uniform elsewhere.
    ``kind='reference'`` (reflexcalc, REFLEX_MODEL.md §2): as above but uniform in the
    precisions tau = sigma^-2 on [1e-8, 1e-2] (km/s)^-2, i.e. p(sigma) ∝ sigma^-3.

    Outlier component (models with ``outlier`` != 'none'): f_out uniform on [0, f_out_max]
    (<= 0.5 keeps the reflex component the majority, so the two cannot swap labels);
    sigma_out log-uniform on [sigma_out_min, sigma_out_max] ('broad', a hot component, default
    [150, 1000] km/s: broader than any halo dispersion, so it cannot take over half the halo)
    or on [sigma_out_min_gaussian, sigma_out_max_gaussian] ('gaussian', a cold substructure
    component, default [5, 50] km/s); the 'gaussian' mean velocity components uniform on
    [-out_v_max, out_v_max] km/s.
    """

    kind: str = "chandra"
    v_travel_max: float = 150.0
    v_mean_max: float = 250.0
    sigma_min: float = 5.0
    sigma_max: float = 500.0
    tau_min: float = 1e-8
    tau_max: float = 1e-2
    f_out_max: float = 0.5
    sigma_out_min: float = 150.0
    sigma_out_max: float = 1000.0
    sigma_out_min_gaussian: float = 5.0
    sigma_out_max_gaussian: float = 50.0
    out_v_max: float = 600.0

    def __post_init__(self):
        """Validate at construction: every bound a finite number, maxima positive, each (min, max) pair
        ordered and positive where it is log-uniform, f_out_max in (0, 0.5]; ``ValueError`` names the field."""
        if self.kind not in ("chandra", "reference"):
            raise ValueError(f"prior kind must be 'chandra' or 'reference', got {self.kind!r}")
        for f in fields(self):
            if f.name == "kind":
                continue
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"PriorSet.{f.name} must be a finite number, got {v!r}")
        for name in ("v_travel_max", "v_mean_max", "out_v_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PriorSet.{name} must be > 0 (the prior is uniform on [-max, max] or [0, max]), "
                                 f"got {getattr(self, name)!r}")
        for lo, hi in (("sigma_min", "sigma_max"), ("tau_min", "tau_max"), ("sigma_out_min", "sigma_out_max"),
                       ("sigma_out_min_gaussian", "sigma_out_max_gaussian")):
            a, b = getattr(self, lo), getattr(self, hi)
            if not 0 < a < b:
                raise ValueError(f"PriorSet needs 0 < {lo} < {hi} (a log-uniform range), got {lo}={a!r}, {hi}={b!r}")
        if not 0 < self.f_out_max <= 0.5:
            raise ValueError(f"PriorSet.f_out_max must be in (0, 0.5] (the reflex component stays the majority), "
                             f"got {self.f_out_max!r}")


def sample_prior_site(name: str, base: str, priors: PriorSet) -> Array:
    """Sample one parameter called ``name`` whose base (radius-free) name is ``base``."""
    if base == "f_out":
        return numpyro.sample(name, dist.Uniform(0.0, priors.f_out_max))
    if base in ("sigma_out", "sigma_out_gaussian"):
        if base == "sigma_out":
            lo, hi = priors.sigma_out_min, priors.sigma_out_max
        else:
            lo, hi = priors.sigma_out_min_gaussian, priors.sigma_out_max_gaussian
        return numpyro.sample("sigma_out", dist.LogUniform(lo, hi))
    if base in ("out_vx", "out_vy", "out_vz"):
        return numpyro.sample(name, dist.Uniform(-priors.out_v_max, priors.out_v_max))
    if base == "v_travel":
        return numpyro.sample(name, dist.Uniform(0.0, priors.v_travel_max))
    if base in ("apex_l", "apex_L"):
        return numpyro.sample(name, dist.Uniform(-math.pi, math.pi))
    if base in ("apex_sinb", "apex_sinB"):
        return numpyro.sample(name, dist.Uniform(-1.0, 1.0))
    if base in ("v_x", "v_y", "v_z"):
        return numpyro.sample(name, dist.Uniform(-priors.v_travel_max, priors.v_travel_max))
    if base in ("vr", "vphi", "vtheta"):
        return numpyro.sample(name, dist.Uniform(-priors.v_mean_max, priors.v_mean_max))
    if base.startswith("sigma_"):
        if priors.kind == "reference":
            tau = numpyro.sample("tau" + name[5:], dist.Uniform(priors.tau_min, priors.tau_max))
            return numpyro.deterministic(name, tau**-0.5)
        return numpyro.sample(name, dist.LogUniform(priors.sigma_min, priors.sigma_max))
    raise ValueError(f"no prior for parameter {name!r}")


def prior_base_name(spec: ReflexModel, name: str) -> str:
    if spec.form == "constant" or name in _OUTLIER_NAMES:
        return name
    for s in spec.suffixes:
        if name.endswith(s):
            return name[: -len(s)]
    raise ValueError(name)


def sample_prior_sites(spec: ReflexModel, priors: PriorSet) -> dict[str, Array]:
    """Sample every parameter of ``spec`` from ``priors`` (one numpyro site each)."""
    return {
        n: sample_prior_site(n, "sigma_out_gaussian" if (n == "sigma_out" and spec.outlier == "gaussian") else prior_base_name(spec, n), priors)
        for n in spec.param_names
    }


@functools.lru_cache(maxsize=64)
def unit_prior_table(spec: ReflexModel, priors: PriorSet) -> tuple[tuple[str, str, float, float], ...]:
    """The prior sample sites of :func:`reflex_numpyro_model` as inverse CDFs of U(0, 1).

    Returns one ``(site, kind, low, high)`` per sample site, in model order: ``kind`` 'linear'
    (Uniform(low, high): x = low + (high - low) u) or 'log' (LogUniform: ln x = ln low +
    u ln(high / low)). Read off the distributions the model itself uses (one source of truth).
    """
    # every site substituted by 1.0 (only its distribution is read): no random key, so no PRNG programs
    # to compile (numpyro's seed handler cost ~0.15 s of every CLI run)
    tr = handlers.trace(handlers.substitute(lambda: sample_prior_sites(spec, priors), substitute_fn=lambda site: 1.0)).get_trace()
    table = []
    for name, site in tr.items():
        if site["type"] != "sample":
            continue
        d = site["fn"]
        if isinstance(d, dist.LogUniform):
            table.append((name, "log", float(d.low), float(d.high)))
        elif isinstance(d, dist.Uniform):
            table.append((name, "linear", float(d.low), float(d.high)))
        else:  # pragma: no cover - every prior of PriorSet is (log-)uniform
            raise NotImplementedError(f"prior of {name!r} is {type(d).__name__}, not (log-)uniform")
    return tuple(table)


def from_unit_interval(kind: str, low: float, high: float, u: Array) -> Array:
    if kind == "log":
        return jnp.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + (high - low) * u


def to_unit_interval(kind: str, low: float, high: float, x: Array) -> Array:
    if kind == "log":
        return (jnp.log(x) - math.log(low)) / (math.log(high) - math.log(low))
    return (x - low) / (high - low)


def params_to_unit(spec: ReflexModel, priors: PriorSet, params: Mapping[str, ArrayLike]) -> Array:
    """The ``u`` (..., P) of :func:`reflex_numpyro_model_unit` for physical parameters ``params``.

    ``params`` holds the model's sample sites or, for the reference priors, ``sigma_*`` in
    place of ``tau_*`` (tau = sigma^-2). Values are clipped into the open unit interval.
    """
    cols = []
    for site, kind, lo, hi in unit_prior_table(spec, priors):
        if site in params:
            x = jnp.asarray(params[site])
        elif site.startswith("tau") and "sigma" + site[3:] in params:
            x = jnp.asarray(params["sigma" + site[3:]]) ** -2
        else:
            raise KeyError(f"no value for parameter {site!r}")
        cols.append(to_unit_interval(kind, lo, hi, x))
    eps = 1e-9
    return jnp.clip(jnp.stack(cols, -1), eps, 1.0 - eps)
