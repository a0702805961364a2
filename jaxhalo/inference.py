"""Inference for the reflex model: numpyro priors, MAP with optax + 3-sigma clipping, NUTS, arviz.

The main entry point is :func:`fit_reflex`, which does what Chandra et al. (2025, §4)
did with scipy + dynesty, in one differentiable stack:

1. a maximum-likelihood fit (optax L-BFGS, several random starts vmapped at once),
2. ``n_clip`` rounds of clipping stars whose chi^2 (3 observables, full model
   covariance including the intrinsic dispersion) exceeds the 3-sigma equivalent of
   a chi^2 with 3 degrees of freedom,
3. NUTS (numpyro) on the clipped sample with several chains started around the MAP,
4. an :class:`arviz.InferenceData` with the per-star ``log_likelihood`` group
   (for PSIS-LOO), diagnostics (R-hat, bulk/tail ESS, divergences) and derived
   quantities (travel velocity, apex and Cartesian components at chosen radii).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array
from jax.typing import ArrayLike
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import constrain_fn, log_density

from .frames import MS_ROTATION
from .likelihoods.outlier import outlier_parameter_names
from .optim import lbfgs_backtracking, lbfgs_scan
from .likelihoods.reflex import ReflexData, ReflexModel

__all__ = [
    "PriorSet",
    "reflex_numpyro_model",
    "reflex_numpyro_model_unit",
    "params_to_unit",
    "unit_prior_table",
    "fit_map",
    "fit_map_traceable",
    "clip_outliers",
    "run_nuts",
    "fit_reflex",
    "FitResult",
    "derived_quantities",
    "summary_table",
    "CHI2_3SIGMA_3DOF",
]

PriorName = Literal["chandra", "reference"]

_OUTLIER_NAMES = frozenset(outlier_parameter_names("gaussian"))

#: chi^2 with 3 dof at the two-sided 3-sigma Gaussian probability erf(3/sqrt2) = 0.99730.
CHI2_3SIGMA_3DOF: float = 14.156413609126677


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
        if self.kind not in ("chandra", "reference"):
            raise ValueError(f"prior kind must be 'chandra' or 'reference', got {self.kind!r}")


def _sample_base(name: str, base: str, priors: PriorSet) -> Array:
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


def _base_name(spec: ReflexModel, name: str) -> str:
    if spec.form == "constant" or name in _OUTLIER_NAMES:
        return name
    for s in spec.suffixes:
        if name.endswith(s):
            return name[: -len(s)]
    raise ValueError(name)


def reflex_numpyro_model(data: ReflexData, spec: ReflexModel, priors: PriorSet = PriorSet()) -> None:
    """numpyro model: the reflex likelihood of ``spec`` on ``data`` with ``priors``.

    Sample sites are ``spec.param_names`` (plus ``tau_*`` for the reference priors).
    The per-star log-likelihood enters through one ``numpyro.factor``.
    """
    params = _sample_params(spec, priors)
    numpyro.factor("reflex_loglike", spec.log_likelihood(params, data))


def _sample_params(spec: ReflexModel, priors: PriorSet) -> dict[str, Array]:
    """Sample every parameter of ``spec`` from ``priors`` (one numpyro site each)."""
    return {
        n: _sample_base(n, "sigma_out_gaussian" if (n == "sigma_out" and spec.outlier == "gaussian") else _base_name(spec, n), priors)
        for n in spec.param_names
    }


@functools.lru_cache(maxsize=64)
def unit_prior_table(spec: ReflexModel, priors: PriorSet) -> tuple[tuple[str, str, float, float], ...]:
    """The prior sample sites of :func:`reflex_numpyro_model` as inverse CDFs of U(0, 1).

    Returns one ``(site, kind, low, high)`` per sample site, in model order: ``kind`` 'linear'
    (Uniform(low, high): x = low + (high - low) u) or 'log' (LogUniform: ln x = ln low +
    u ln(high / low)). Read off the distributions the model itself uses (one source of truth).
    """
    from numpyro import handlers

    tr = handlers.trace(handlers.seed(lambda: _sample_params(spec, priors), 0)).get_trace()
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


def _from_unit(kind: str, low: float, high: float, u: Array) -> Array:
    if kind == "log":
        return jnp.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + (high - low) * u


def _to_unit(kind: str, low: float, high: float, x: Array) -> Array:
    if kind == "log":
        return (jnp.log(x) - math.log(low)) / (math.log(high) - math.log(low))
    return (x - low) / (high - low)


def reflex_numpyro_model_unit(data: ReflexData, spec: ReflexModel, priors: PriorSet = PriorSet()) -> None:
    """The same posterior as :func:`reflex_numpyro_model`, with all parameters in one site.

    One sample site ``u`` ~ U(0, 1)^P is mapped through each prior's inverse CDF
    (:func:`unit_prior_table`), so the pushforward of ``u`` is exactly the prior and the
    posterior of the physical parameters is unchanged. The parameters (and, for the reference
    priors, ``sigma_*`` = tau^-1/2) are recorded as deterministic sites under their usual names.
    Why: NUTS on one (P,) site costs about a third per step of NUTS on P scalar sites on a CPU,
    where numpyro's per-leaf tree-building overhead, not the likelihood, dominates (measured
    on the 850-star continuity fit, benchmarks/results/samplers_*.json).
    """
    from numpyro import handlers

    table = unit_prior_table(spec, priors)
    u = numpyro.sample("u", dist.Uniform(0.0, 1.0).expand([len(table)]).to_event(1))
    values = {site: _from_unit(kind, lo, hi, u[i]) for i, (site, kind, lo, hi) in enumerate(table)}
    for site, v in values.items():
        numpyro.deterministic(site, v)
    # Run the scalar model with its prior sites fixed to these values and hidden from the
    # density (their prior is the uniform density of u): only the likelihood factor counts.
    handlers.block(handlers.substitute(reflex_numpyro_model, data=values), hide=list(values))(data, spec, priors)


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
        cols.append(_to_unit(kind, lo, hi, x))
    eps = 1e-9
    return jnp.clip(jnp.stack(cols, -1), eps, 1.0 - eps)


def fit_map(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    n_starts: int = 8,
    n_steps: int = 200,
) -> dict[str, Array]:
    """Maximum-likelihood (= MAP under flat priors, no Jacobian) parameters by optax L-BFGS.

    ``n_starts`` random starts (uniform in [-2, 2] in numpyro's unconstrained space) are
    optimised at once with ``vmap``; the best is returned as a dict of constrained values
    (including deterministic sites such as ``sigma_*`` under the reference priors).
    The compiled solver is cached per (spec, priors, n_steps, data shape), so repeated
    calls (e.g. clipping iterations) do not recompile.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    sites = _prior_sites(spec, priors)
    keys = jax.random.split(key, n_starts)
    inits = jax.vmap(
        lambda k: {n: jax.random.uniform(kk, (), minval=-2, maxval=2) for n, kk in zip(sites, jax.random.split(k, len(sites)))}
    )(keys)
    return _best_of_starts(inits, data, spec, priors, n_steps)


def fit_map_traceable(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    n_starts: int = 8,
    n_steps: int = 200,
) -> dict[str, Array]:
    """:func:`fit_map` as a pure JAX function: usable inside ``jit`` and ``vmap`` (e.g. a reflex
    fit per simulation in a suite), with ``data`` traced.

    The starts are uniform in [-2, 2] in the unconstrained space of each prior site (the
    sites of :func:`unit_prior_table`, all scalars); the best of the ``n_starts`` L-BFGS runs is
    returned as a dict of constrained values (incl. deterministic sites), as :func:`fit_map`.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    sites = _prior_sites(spec, priors)
    keys = jax.random.split(key, len(sites))
    inits = {n: jax.random.uniform(k, (n_starts,), minval=-2.0, maxval=2.0) for n, k in zip(sites, keys)}
    return _best_of_starts(inits, data, spec, priors, n_steps)


def _prior_sites(spec: ReflexModel, priors: PriorSet) -> list[str]:
    """Sorted names of the (scalar) sample sites of :func:`reflex_numpyro_model`."""
    return sorted(site for site, *_ in unit_prior_table(spec, priors))


def _best_of_starts(inits: Mapping[str, Array], data: ReflexData, spec: ReflexModel, priors: PriorSet,
                    n_steps: int) -> dict[str, Array]:
    """Run the L-BFGS of :func:`_map_solver` from a batch of unconstrained starts (site -> (S,)) and
    return the best finite one as a dict of constrained values (incl. deterministic sites).
    Pure JAX (jit / vmap over catalogues)."""
    u_all, val = _map_solver(spec, priors, n_steps)(inits, data)
    best = jnp.argmin(jnp.where(jnp.isfinite(val), val, jnp.inf))
    u = {n: v[best] for n, v in u_all.items()}
    kw = dict(data=data, spec=spec, priors=priors)
    return dict(constrain_fn(reflex_numpyro_model, (), kw, u, return_deterministic=True))


@functools.lru_cache(maxsize=32)
def _map_solver(spec: ReflexModel, priors: PriorSet, n_steps: int) -> Callable:
    """A jitted, vmapped L-BFGS run of ``n_steps`` from a batch of unconstrained starts."""
    opt = lbfgs_backtracking()

    def neg_log_like(u, data):
        kw = dict(data=data, spec=spec, priors=priors)
        z = constrain_fn(reflex_numpyro_model, (), kw, u)
        lp, _ = log_density(reflex_numpyro_model, (), kw, z)
        return -lp

    def run_one(u0, data):
        fd = lambda u: neg_log_like(u, data)  # noqa: E731
        u = lbfgs_scan(fd, u0, n_steps, opt)
        return u, fd(u)

    return jax.jit(jax.vmap(run_one, in_axes=(0, None)))


def clip_outliers(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    n_iter: int = 5,
    threshold: float = CHI2_3SIGMA_3DOF,
    n_starts: int = 8,
    verbose: bool = False,
) -> tuple[ReflexData, dict[str, Array], list[int]]:
    """Chandra et al.'s clipping: ML fit, drop stars with chi^2 > ``threshold``, repeat ``n_iter`` times.

    The statistic is the per-star chi^2 of (v_los, mu_l*, mu_b) under the model
    covariance including the intrinsic dispersion (3 dof); the default threshold is its
    3-sigma-equivalent quantile, 14.16. Clipping is cumulative (a clipped star is not
    re-admitted). Returns the data with the final weights, the last ML parameters and
    the number of stars clipped at each iteration.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    chi2_fn = jax.jit(spec.chi2_per_star)
    removed = []
    params = None
    for i in range(n_iter):
        key, sub = jax.random.split(key)
        params = fit_map(data, spec, priors, sub, n_starts=n_starts)
        chi2 = chi2_fn(params, data)
        keep = (data.weight > 0) & (chi2 < threshold)
        n_removed = int(jnp.sum(data.weight > 0) - jnp.sum(keep))
        removed.append(n_removed)
        if verbose:
            print(f"  clip iteration {i + 1}: removed {n_removed} stars")
        data = data.with_weight(keep.astype(float))
        if n_removed == 0:
            break
    if removed and removed[-1] != 0:
        key, sub = jax.random.split(key)
        params = fit_map(data, spec, priors, sub, n_starts=n_starts)
    return data, params, removed


def run_nuts(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 1000,
    init_params: Mapping[str, Array] | None = None,
    init_jitter: float = 0.05,
    chain_method: str | None = None,
    progress_bar: bool = True,
    target_accept_prob: float = 0.85,
    inverse_mass_matrix: Array | None = None,
) -> MCMC:
    """Run NUTS on the reflex model; returns the numpyro ``MCMC`` object.

    The sampled model is :func:`reflex_numpyro_model_unit` (the same posterior, all parameters
    in one unit-cube site ``u``); ``mcmc.get_samples()`` holds every parameter under its name.

    ``init_params`` (constrained values, e.g. from :func:`fit_map`) start every chain
    at that point plus ``init_jitter`` Gaussian noise in the unconstrained space.
    ``chain_method`` defaults to 'parallel' when there are at least ``num_chains`` JAX
    devices, 'vectorized' on an accelerator, and 'sequential' on a CPU (measured 1.8x
    faster than 'vectorized' on 2 cores, benchmarks/results/samplers_cpu2.json).
    ``inverse_mass_matrix`` (optional, (P,) over logit(u), in :func:`unit_prior_table` order)
    seeds the adapted mass matrix, e.g. from a Laplace approximation
    (:func:`jaxhalo.inference_outliers.run_nuts_outliers`).
    """
    key = jax.random.PRNGKey(1) if key is None else key
    if chain_method is None:
        if jax.local_device_count() >= num_chains:
            chain_method = "parallel"
        else:
            chain_method = "sequential" if jax.devices()[0].platform == "cpu" else "vectorized"
    kernel = NUTS(reflex_numpyro_model_unit, target_accept_prob=target_accept_prob, inverse_mass_matrix=inverse_mass_matrix)
    mcmc = MCMC(
        kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
        chain_method=chain_method, progress_bar=progress_bar,
    )
    run_key, init_key = jax.random.split(key)
    if init_params is not None:
        # jitter around the given point in the unconstrained space of u (logit u)
        z0 = jax.scipy.special.logit(params_to_unit(spec, priors, init_params))
        z = z0 + init_jitter * jax.random.normal(init_key, (num_chains,) + z0.shape)
        init_params = {"u": jax.nn.sigmoid(z[0] if num_chains == 1 else z)}
    mcmc.run(run_key, data=data, spec=spec, priors=priors, init_params=init_params,
             extra_fields=("diverging", "num_steps"))
    return mcmc


def derived_quantities(spec: ReflexModel, samples: Mapping[str, Array], radii=(40.0, 100.0, 120.0)) -> dict[str, Array]:
    """Travel speed, apex and Cartesian travel vector at the given radii (kpc).

    Returns arrays shaped like the samples for ``v_travel_r{R}`` (km/s),
    ``apex_l_r{R}``, ``apex_b_r{R}`` (deg, l in [0, 360)), ``apex_L_MS_r{R}``,
    ``apex_B_MS_r{R}`` (deg) and ``v_x_r{R}``, ``v_y_r{R}``, ``v_z_r{R}`` (km/s).
    """
    out = {}
    rot = jnp.asarray(MS_ROTATION)
    for R in radii:
        vec = spec.travel_at_radius(samples, jnp.asarray(R))
        V = jnp.linalg.norm(vec, axis=-1)
        n = vec / jnp.where(V > 0, V, 1.0)[..., None]
        tag = f"r{R:g}"
        out[f"v_travel_{tag}"] = V
        out[f"apex_l_{tag}"] = jnp.degrees(jnp.arctan2(n[..., 1], n[..., 0])) % 360.0
        out[f"apex_b_{tag}"] = jnp.degrees(jnp.arcsin(jnp.clip(n[..., 2], -1, 1)))
        ms = n @ rot.T
        out[f"apex_L_MS_{tag}"] = jnp.degrees(jnp.arctan2(ms[..., 1], ms[..., 0]))
        out[f"apex_B_MS_{tag}"] = jnp.degrees(jnp.arcsin(jnp.clip(ms[..., 2], -1, 1)))
        for i, c in enumerate("xyz"):
            out[f"v_{c}_{tag}"] = vec[..., i]
    return out


def physical_parameters(spec: ReflexModel, samples: Mapping[str, Array]) -> dict[str, Array]:
    """The fitted parameters in reporting units: angles in degrees, sines turned into latitudes."""
    out = {}
    for n in spec.param_names:
        v = jnp.asarray(samples[n])
        base = _base_name(spec, n)
        suffix = n[len(base):]
        if base in ("apex_l", "apex_L"):
            out[n.replace("apex_l", "apex_l_deg").replace("apex_L", "apex_L_deg")] = jnp.degrees(v)
        elif base in ("apex_sinb", "apex_sinB"):
            out[("apex_b_deg" if base == "apex_sinb" else "apex_B_deg") + suffix] = jnp.degrees(jnp.arcsin(v))
        else:
            out[n] = v
    return out


_physical_jit = jax.jit(physical_parameters, static_argnums=0)
_derived_jit = jax.jit(derived_quantities, static_argnums=(0, 2))


def _loglike_per_star_samples(spec: ReflexModel, data: ReflexData, samples: Mapping[str, Array]) -> Array:
    """Per-star log-likelihood for every sample: (chains, draws, N)."""
    names = spec.param_names
    flat = {n: jnp.reshape(samples[n], (-1,)) for n in names}
    ll = jax.jit(jax.vmap(lambda p: spec.log_likelihood_per_star(p, data)))(flat)
    shape = jnp.shape(samples[names[0]])
    return ll.reshape(shape + (data.n_stars,))


def summary_table(idata: az.InferenceData, var_names: list[str] | None = None) -> "Table":
    """Posterior quantiles (16/50/84, Chandra et al. Table 1) with R-hat and bulk/tail ESS.

    Returns an astropy Table with columns: parameter, p16, p50, p84, minus, plus, r_hat,
    ess_bulk, ess_tail.
    """
    from astropy.table import Table

    post = idata.posterior
    names = var_names or [v for v in post.data_vars]
    rows = []
    rhat = az.rhat(post, var_names=names)
    ess_b = az.ess(post, var_names=names, method="bulk")
    ess_t = az.ess(post, var_names=names, method="tail")
    for n in names:
        x = np.asarray(post[n]).reshape(-1)
        p16, p50, p84 = np.percentile(x, [16, 50, 84])
        rows.append((n, p16, p50, p84, p50 - p16, p84 - p50, float(rhat[n]), float(ess_b[n]), float(ess_t[n])))
    return Table(rows=rows, names=["parameter", "p16", "p50", "p84", "minus", "plus", "r_hat", "ess_bulk", "ess_tail"])


@dataclass
class FitResult:
    """The outcome of :func:`fit_reflex`.

    Attributes
    ----------
    idata : arviz InferenceData with groups posterior (fitted + physical + derived
        quantities), sample_stats, log_likelihood (per star, for PSIS-LOO),
        constant_data (the clipping weights).
    spec : the model specification.
    map_params : ML parameters after clipping.
    n_clipped : stars removed at each clipping iteration.
    weight : (N,) final 0/1 weights (0 = clipped).
    table : astropy Table of quantiles and diagnostics.
    n_divergent : number of divergent transitions after warm-up.
    """

    idata: az.InferenceData
    spec: ReflexModel
    map_params: dict
    n_clipped: list
    weight: np.ndarray
    table: object
    n_divergent: int
    timings: dict = field(default_factory=dict)

    @property
    def max_r_hat(self) -> float:
        return float(np.nanmax(np.asarray(self.table["r_hat"])))

    @property
    def min_ess_bulk(self) -> float:
        return float(np.nanmin(np.asarray(self.table["ess_bulk"])))


def fit_reflex(
    data: ReflexData,
    spec: ReflexModel = ReflexModel("continuity", "ms"),
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    clip: bool = True,
    n_clip: int = 5,
    clip_threshold: float = CHI2_3SIGMA_3DOF,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 1000,
    radii=(40.0, 50.0, 100.0, 120.0),
    progress_bar: bool = True,
    verbose: bool = True,
) -> FitResult:
    """Full fit: ML + clipping (optional) then NUTS; returns a :class:`FitResult`."""
    import time

    key = jax.random.PRNGKey(0) if key is None else key
    k_map, k_nuts = jax.random.split(key)
    t0 = time.perf_counter()
    if clip:
        data, map_params, removed = clip_outliers(data, spec, priors, k_map, n_iter=n_clip, threshold=clip_threshold, verbose=verbose)
    else:
        map_params, removed = fit_map(data, spec, priors, k_map), []
    t_map = time.perf_counter() - t0
    t0 = time.perf_counter()
    mcmc = run_nuts(data, spec, priors, k_nuts, num_chains, num_warmup, num_samples, init_params=map_params, progress_bar=progress_bar)
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    t_nuts = time.perf_counter() - t0
    idata = samples_to_inference_data(mcmc, spec, data, samples, radii)
    n_div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    table = summary_table(idata, var_names=_report_names(spec, radii))
    return FitResult(idata, spec, {k: np.asarray(v) for k, v in map_params.items()}, removed,
                     np.asarray(data.weight), table, n_div, {"map_clip_s": t_map, "nuts_s": t_nuts})


def _report_names(spec: ReflexModel, radii) -> list[str]:
    dummy = {n: jnp.zeros(()) for n in spec.param_names}
    phys = list(physical_parameters(spec, dummy))
    der = [f"v_travel_r{R:g}" for R in radii] + [f"apex_l_r{R:g}" for R in radii] + [f"apex_b_r{R:g}" for R in radii]
    if 100.0 in radii:
        der += ["v_x_r100", "v_y_r100", "v_z_r100"]
    return phys + der


def samples_to_inference_data(mcmc: MCMC | None, spec: ReflexModel, data: ReflexData, samples, radii) -> az.InferenceData:
    """Build InferenceData: posterior (raw + physical + derived), sample_stats, per-star log_likelihood."""
    post = {k: np.asarray(v) for k, v in samples.items() if k != "u"}
    samples_j = {k: jnp.asarray(samples[k]) for k in spec.param_names}
    post.update({k: np.asarray(v) for k, v in _physical_jit(spec, samples_j).items()})
    post.update({k: np.asarray(v) for k, v in _derived_jit(spec, samples_j, tuple(radii)).items()})
    ll = np.asarray(_loglike_per_star_samples(spec, data, samples))
    keep = np.asarray(data.weight) > 0
    kwargs = dict(posterior=post, log_likelihood={"star": ll[..., keep]}, constant_data={"weight": np.asarray(data.weight)})
    if mcmc is not None:
        extra = mcmc.get_extra_fields(group_by_chain=True)
        kwargs["sample_stats"] = {
            "diverging": np.asarray(extra["diverging"]),
            **({"n_steps": np.asarray(extra["num_steps"])} if "num_steps" in extra else {}),
        }
    return az.from_dict(**kwargs)
