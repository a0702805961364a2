"""Maximum likelihood of the reflex model (optax L-BFGS, vmapped starts) and Chandra et al.'s 3-sigma clipping."""

from __future__ import annotations

import functools
import math
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from .. import program_cache
from ..likelihoods.reflex import ReflexData, ReflexModel
from .optim import lbfgs_backtracking, lbfgs_starts_converge
from .priors import PriorSet, unit_prior_table

__all__ = [
    "CHI2_3SIGMA_3DOF",
    "clip_outliers",
    "constrained_params",
    "fit_map",
    "fit_map_traceable",
    "negative_log_posterior",
    "prepare_fit_map",
    "unconstrained_params",
]


#: Convergence of the ML L-BFGS: L2 norm of the gradient of -ln L (unconstrained parameters).
#: Near the optimum the remaining offset is about |g| times the posterior variance, far below
#: the posterior width (and the 0.05 jitter NUTS starts with) for any catalogue of >~ 10 stars.
MAP_GTOL: float = 1e-3

#: chi^2 with 3 dof at the two-sided 3-sigma Gaussian probability erf(3/sqrt2) = 0.99730.
CHI2_3SIGMA_3DOF: float = 14.156413609126677


def fit_map(
    data: ReflexData,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    n_starts: int = 8,
    n_steps: int = 200,
    init: Mapping[str, Array] | None = None,
) -> dict[str, Array]:
    """Maximum-likelihood (= MAP under flat priors, no Jacobian) parameters by optax L-BFGS.

    ``n_starts`` random starts (uniform in [-2, 2] in numpyro's unconstrained space) are
    optimised at once (vmapped steps) until the best has converged (gradient norm <
    :data:`MAP_GTOL`) and another start agrees with it, or for at most ``n_steps`` L-BFGS steps;
    the best is returned as a dict of constrained values
    (including deterministic sites such as ``sigma_*`` under the reference priors).

    ``init`` (constrained values, e.g. the previous clipping round's optimum) replaces the random
    starts by ``n_starts`` copies of that point, jittered by :data:`WARM_JITTER` in the
    unconstrained space: a warm start converges in a fraction of the time of random starts, whose
    first steps spend most of the run in the line search.
    The whole call (starts, solver, constrained output) is one program compiled once per
    (spec, priors, n_starts, n_steps, data shape), so repeated calls (e.g. clipping iterations,
    with or without ``init``) do not recompile.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    sites = _prior_sites(spec, priors)
    if init is not None:
        u0, warm = unconstrained_params(spec, priors, init), True
    else:
        u0, warm = {n: jnp.zeros(()) for n in sites}, False
    return program_cache.call(_fit_map_function(spec, priors, n_starts, n_steps), (key, data, u0, warm),
                              ("fit_map", spec, priors, n_starts, n_steps), compiler_options=ML_COMPILER_OPTIONS)


def prepare_fit_map(data: ReflexData, spec: ReflexModel, priors: PriorSet = PriorSet(), n_starts: int = 8,
                    n_steps: int = 200) -> None:
    """Trace (or load from :mod:`jaxhalo.program_cache`) the program :func:`fit_map` will run for
    ``data``'s shape, without running it; a no-op unless programs are kept on disk (the command line).
    :func:`~jaxhalo.inference.reflex_fit.fit_reflex` calls it before it starts compiling NUTS in a
    thread, so that the two tracings do not share the GIL."""
    args = (jax.random.PRNGKey(0), data, {n: jnp.zeros(()) for n in _prior_sites(spec, priors)}, False)
    program_cache.prepare(_fit_map_function(spec, priors, n_starts, n_steps), args,
                          ("fit_map", spec, priors, n_starts, n_steps), compiler_options=ML_COMPILER_OPTIONS)


#: Gaussian jitter (in numpyro's unconstrained space) of the warm starts of :func:`fit_map`: small
#: against any posterior width, large enough that the starts are distinct and the agreement test of
#: :func:`~jaxhalo.inference.optim.lbfgs_starts_converge` means something.
WARM_JITTER: float = 1e-2


@functools.lru_cache(maxsize=32)
def _fit_map_function(spec: ReflexModel, priors: PriorSet, n_starts: int, n_steps: int) -> Callable:
    """The pure ``(key, data, u0, warm) -> constrained ML parameters`` of :func:`fit_map`: random
    starts (``warm`` False) or warm starts around ``u0`` (site -> scalar), L-BFGS, best start,
    constrained values incl. deterministic sites. ``warm`` is traced, so both kinds of start share
    one compiled program (tracing it costs ~1.5 s on a CPU, more than the warm run itself)."""
    sites = _prior_sites(spec, priors)

    def program(key, data, u0, warm):
        keys = jax.random.split(key, n_starts)
        cold = jax.vmap(
            lambda k: {n: jax.random.uniform(kk, (), minval=-2, maxval=2)
                       for n, kk in zip(sites, jax.random.split(k, len(sites)))}
        )(keys)
        wkeys = jax.random.split(key, len(sites))
        near = {n: u0[n] + WARM_JITTER * jax.random.normal(k, (n_starts,)) for n, k in zip(sites, wkeys)}
        inits = {n: jnp.where(warm, near[n], cold[n]) for n in sites}
        return best_of_starts(inits, data, spec, priors, n_steps)

    return program


#: XLA options of the ML program: backend optimisation level 1 compiles the 850-star continuity fit in
#: 4.8 s instead of 5.7 s on 2 CPU cores and runs it 5% slower (0.225 vs 0.214 s), a good trade for a
#: program that runs a few times per fit; the optimum is the same to round-off.
ML_COMPILER_OPTIONS: dict = {"xla_backend_optimization_level": 1}


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
    return best_of_starts(inits, data, spec, priors, n_steps)


def _prior_sites(spec: ReflexModel, priors: PriorSet) -> list[str]:
    """Sorted names of the (scalar) sample sites of :func:`reflex_numpyro_model`."""
    return sorted(site for site, *_ in unit_prior_table(spec, priors))


def best_of_starts(inits: Mapping[str, Array], data: ReflexData, spec: ReflexModel, priors: PriorSet,
                    n_steps: int) -> dict[str, Array]:
    """Run the L-BFGS of :func:`_map_solver` from a batch of unconstrained starts (site -> (S,)) and
    return the best finite one as a dict of constrained values (incl. deterministic sites).
    Pure JAX (jit / vmap over catalogues)."""
    u_all, val = _map_solver(spec, priors, n_steps)(inits, data)
    best = jnp.argmin(jnp.where(jnp.isfinite(val), val, jnp.inf))
    return constrained_params(spec, priors, {n: v[best] for n, v in u_all.items()})


def constrained_params(spec: ReflexModel, priors: PriorSet, u: Mapping[str, Array]) -> dict[str, Array]:
    """Physical values of the prior sites from numpyro's unconstrained values ``u`` (site -> array).

    Every prior of :class:`PriorSet` is Uniform or LogUniform on [low, high], whose numpyro
    bijection is x = low + (high - low) sigmoid(u); for the reference priors the dispersions
    sigma = tau^-1/2 are added (the deterministic sites of :func:`reflex_numpyro_model`).
    Equals numpyro's ``constrain_fn(..., return_deterministic=True)`` (tests/inference/test_ml.py).
    """
    out = {}
    for site, _kind, lo, hi in unit_prior_table(spec, priors):
        out[site] = lo + (hi - lo) * jax.nn.sigmoid(u[site])
        if site.startswith("tau_"):
            out["sigma" + site[3:]] = out[site] ** -0.5
    return out


def unconstrained_params(spec: ReflexModel, priors: PriorSet, x: Mapping[str, ArrayLike]) -> dict[str, Array]:
    """The inverse of :func:`constrained_params`: numpyro's unconstrained value logit((x - low) /
    (high - low)) of every prior site (clipped 1e-12 inside the prior box, so a value on its edge
    stays finite). ``x`` may give a reference prior's precision tau_* as its dispersion sigma_*;
    a missing parameter is a ``KeyError`` naming it."""
    out = {}
    for site, _kind, lo, hi in unit_prior_table(spec, priors):
        if site not in x and site.startswith("tau_") and "sigma" + site[3:] in x:
            v = jnp.asarray(x["sigma" + site[3:]], float) ** -2
        elif site in x:
            v = jnp.asarray(x[site], float)
        else:
            raise KeyError(f"no value for the parameter {site!r} of the {spec.form}/{spec.apex} model")
        t = (v - lo) / (hi - lo)
        out[site] = jax.scipy.special.logit(jnp.clip(t, 1e-12, 1.0 - 1e-12))
    return out


def negative_log_posterior(spec: ReflexModel, priors: PriorSet) -> Callable[[Mapping[str, Array], ReflexData], Array]:
    """``(u, data) -> -ln[L(x) p(x)]`` at x = the constrained values of ``u`` (no Jacobian: the
    maximum is the MAP in the physical parameters), the objective of :func:`fit_map`.

    Written in plain JAX rather than through numpyro's ``constrain_fn`` + ``log_density``: the
    same number (tests/inference/test_ml.py), but numpyro's handlers cost ~0.3 s per trace and
    L-BFGS with a line search traces the objective ~8 times, which was most of the ML stage of a
    warm ``jaxhalo fit``. Uniform priors add the constant -ln(high - low), LogUniform ones
    -ln x - ln ln(high / low).
    """
    table = unit_prior_table(spec, priors)

    def neg_log_post(u: Mapping[str, Array], data: ReflexData) -> Array:
        x = constrained_params(spec, priors, u)
        log_prior = 0.0
        for site, kind, lo, hi in table:
            if kind == "log":
                log_prior = log_prior - jnp.log(x[site]) - math.log(math.log(hi / lo))
            else:
                log_prior = log_prior - math.log(hi - lo)
        params = {n: x[n] for n in spec.param_names}
        return -(spec.log_likelihood(params, data) + log_prior)

    return neg_log_post


@functools.lru_cache(maxsize=32)
def _map_solver(spec: ReflexModel, priors: PriorSet, n_steps: int) -> Callable:
    """A jitted L-BFGS run of a batch of unconstrained starts (vmapped steps) until the best start
    has converged (gradient norm < :data:`MAP_GTOL`) and a second start agrees with it
    (:func:`lbfgs_starts_converge`), or after at most ``n_steps`` steps."""
    opt = lbfgs_backtracking()
    neg_log_post = negative_log_posterior(spec, priors)

    def run_starts(u0s, data):
        fd = lambda u: neg_log_post(u, data)
        u, val, _ = lbfgs_starts_converge(fd, u0s, n_steps, MAP_GTOL, opt)
        return u, val

    return jax.jit(run_starts)


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
    re-admitted). The first ML fit starts from ``n_starts`` random points, each later one from the
    previous optimum (:func:`fit_map` ``init``). Returns the data with the final weights, the last
    ML parameters and the number of stars clipped at each iteration.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.random.split(key, n_iter + 1)
    # on device 0 from the start, as the later rounds' weights (outputs of a program) are: one signature
    data = jax.device_put(data, jax.devices()[0])
    removed = []
    params = None
    for i in range(n_iter):
        # round 1 from random starts; later rounds start at the previous optimum (a few stars fewer)
        params = fit_map(data, spec, priors, keys[i], n_starts=n_starts, init=params)
        weight, n_removed = _clip_round(spec, params, data, threshold)
        n_removed = int(n_removed)
        removed.append(n_removed)
        if verbose:
            print(f"  clip iteration {i + 1}: removed {n_removed} stars")
        data = data.with_weight(weight)
        if n_removed == 0:
            break
    if removed and removed[-1] != 0:
        params = fit_map(data, spec, priors, keys[n_iter], n_starts=n_starts, init=params)
    return data, params, removed


@functools.partial(jax.jit, static_argnums=0)
def _clip_round(spec: ReflexModel, params: Mapping[str, Array], data: ReflexData, threshold: float) -> tuple[Array, Array]:
    """The new 0/1 weights of one clipping round (stars in use with chi^2 < ``threshold``) and the number
    of stars it removes: one compiled program rather than a dozen eager operations per round."""
    keep = (data.weight > 0) & (spec.chi2_per_star(params, data) < threshold)
    return keep.astype(data.weight.dtype), jnp.sum(data.weight > 0) - jnp.sum(keep)
