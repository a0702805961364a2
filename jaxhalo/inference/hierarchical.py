"""The reflex likelihood inside a hierarchical model: every star's true distance as a latent parameter.

What nested sampling cannot do: the reflex-motion likelihood sits inside a larger numpyro
model with one latent true distance d_i per star, sampled jointly with the reflex
parameters by NUTS (hundreds of parameters). For star i with catalogue distance
d_obs,i +- sigma_d,i (kpc) and sky position (l_i, b_i):

* prior along the line of sight: the tracer density rho ∝ r_gal^-alpha times the volume
  element d^2 (the Jacobian of the cone), truncated to ``r_range`` in Galactocentric radius:
  p(d_i) ∝ d_i^2 r_gal(d_i)^-alpha on [d_lo,i, d_hi,i], where the bounds are where the line
  of sight crosses r_gal = r_min and r_max (:func:`los_distance_bounds`);
* measurement (``distance_error``): ``"fractional"`` (default), d_obs,i ~ N(d_i, (f_i d_i)^2) with the
  catalogue's fractional error f_i = sigma_d,i / d_obs,i -- the error scales with the true distance,
  as for a photometric distance (and as :func:`jaxhalo.mocks.reflex.make_reflex_mock` draws it);
  ``"absolute"``, d_obs,i ~ N(d_i, sigma_d,i^2) with the catalogue's sigma_d,i. The two differ
  where errors are large: with f = 10-25 % the absolute form ties a star that scattered low to its
  low d_obs with a too-small sigma, biasing the latent distances low on average by a few per cent,
  and the travel velocity, through the solar reflex (|v_sun| = 250 km/s sets the proper motions'
  distance scale), by ~2.5 km/s per per cent (benchmarks/hierarchical_coverage.py);
* kinematics: the reflex likelihood of (v_los, mu_l*, mu_b) with the geometry (Galactocentric
  position, projection to the observables, r_gal of the continuity model, the conversion of
  tangential dispersions to proper motions) rebuilt at the latent distance and *no*
  distance-error term (:func:`reflex_data_at_distance`; REFLEX_MODEL.md §5's first-order
  term is the approximation this model replaces).

Latent distances are sampled as ``Uniform(d_lo, d_hi)`` sites (so the truncation is exact and
unconstrained sampling is smooth) with the density above added as a factor.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import Array
from numpyro.infer import MCMC, NUTS, init_to_value

from ..catalog.structure import StarCatalog
from ..constants import K_PM
from ..frames import SolarParameters, galactic_to_cartesian, heliocentric_to_galactocentric
from ..likelihoods.reflex import ReflexData, ReflexModel
from .ml import fit_map
from .priors import PriorSet, prior_base_name, sample_prior_site

__all__ = ["los_distance_bounds", "reflex_data_at_distance", "distance_log_likelihood", "hierarchical_reflex_model",
           "catalog_arrays", "run_hierarchical_nuts"]


def los_distance_bounds(l: Array, b: Array, r_range: tuple[float, float], solar: SolarParameters | None = None) -> tuple[Array, Array]:
    """Heliocentric distances (kpc) where each line of sight (l, b in rad) crosses r_gal = r_min, r_max.

    Both radii must exceed the Sun's Galactocentric distance, so each is crossed exactly once.
    """
    solar = SolarParameters() if solar is None else solar
    r0, _ = heliocentric_to_galactocentric(jnp.zeros(3), None, solar)
    r1, _ = heliocentric_to_galactocentric(galactic_to_cartesian(l, b, 1.0), None, solar)
    n = r1 - r0  # unit line-of-sight direction in Galactocentric axes, (N, 3)
    sn = n @ r0
    s2 = jnp.sum(r0 * r0)
    if not isinstance(s2, jax.core.Tracer) and min(r_range) ** 2 <= float(s2):
        raise ValueError(f"r_range {r_range} must lie outside the solar circle (|r_sun| = {float(jnp.sqrt(s2)):.2f} kpc)")
    root = lambda R: -sn + jnp.sqrt(sn**2 - s2 + R**2)  # noqa: E731
    return root(r_range[0]), root(r_range[1])


def catalog_arrays(cat: StarCatalog) -> dict[str, Array]:
    """The per-star arrays of ``cat`` the hierarchical model needs, as a dict of (N,) arrays."""
    names = ("l", "b", "distance", "distance_err", "v_los", "v_los_err", "pm_l", "pm_b", "pm_l_err", "pm_b_err", "pm_corr")
    return {n: jnp.asarray(getattr(cat, n), float) for n in names}


def reflex_data_at_distance(arrays: Mapping[str, Array], distance: Array, solar: SolarParameters | None = None,
                            k: float = K_PM) -> ReflexData:
    """:class:`ReflexData` geometry at trial distances (N,) kpc with zero distance error (pure JAX, traceable)."""
    a = arrays
    return ReflexData.from_arrays_traceable(
        a["l"], a["b"], distance, jnp.zeros_like(distance), a["v_los"], a["v_los_err"], a["pm_l"], a["pm_b"],
        a["pm_l_err"], a["pm_b_err"], a["pm_corr"], solar=solar, k=k,
    )


def distance_log_likelihood(d: Array, d_obs: Array, sigma_obs: Array, distance_error: str = "fractional") -> Array:
    """log p(d_obs | d) per star: ``"fractional"``, N(d_obs; d, (f d)^2) with f = sigma_obs / d_obs;
    ``"absolute"``, N(d_obs; d, sigma_obs^2) (kpc; see the module docstring)."""
    if distance_error == "fractional":
        sigma = d * (sigma_obs / d_obs)
    elif distance_error == "absolute":
        sigma = sigma_obs
    else:
        raise ValueError(f"distance_error must be 'fractional' or 'absolute', got {distance_error!r}")
    return dist.Normal(d, sigma).log_prob(d_obs)


def hierarchical_reflex_model(
    arrays: Mapping[str, Array],
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    alpha: float = 2.5,
    r_range: tuple[float, float] = (40.0, 160.0),
    solar: SolarParameters | None = None,
    k: float = K_PM,
    distance_error: str = "fractional",
) -> None:
    """numpyro model: reflex parameters of ``spec`` + one latent true distance per star.

    arrays : :func:`catalog_arrays` of the catalogue (angles rad, kpc, km/s, mas/yr).
    alpha, r_range : the power-law tracer density rho ∝ r_gal^-alpha on r_range (kpc).
    distance_error : ``"fractional"`` (sigma = f_i d_i) or ``"absolute"`` (sigma = sigma_d,i); see the
        module docstring.
    Sites: the reflex parameters (as :func:`jaxhalo.inference.models.reflex_numpyro_model`) and
    ``distance`` (N,) kpc; factors ``reflex`` (per-star log-likelihoods, (N,)), ``d_obs``
    (measurement) and ``d_prior`` (density along the line of sight).
    """
    solar = SolarParameters() if solar is None else solar
    params = {n: sample_prior_site(n, prior_base_name(spec, n), priors) for n in spec.param_names}
    d_lo, d_hi = los_distance_bounds(arrays["l"], arrays["b"], r_range, solar)
    with numpyro.plate("stars", arrays["l"].shape[0]):
        d = numpyro.sample("distance", dist.Uniform(d_lo, d_hi))
    data = reflex_data_at_distance(arrays, d, solar, k)
    numpyro.factor("reflex", spec.log_likelihood_per_star(params, data))
    numpyro.factor("d_obs", distance_log_likelihood(d, arrays["distance"], arrays["distance_err"], distance_error))
    numpyro.factor("d_prior", 2.0 * jnp.log(d) - alpha * jnp.log(data.r_gal))


def run_hierarchical_nuts(
    cat: StarCatalog,
    spec: ReflexModel,
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    alpha: float = 2.5,
    r_range: tuple[float, float] = (40.0, 160.0),
    init_params: Mapping[str, Array] | None = None,
    num_chains: int = 2,
    num_warmup: int = 300,
    num_samples: int = 300,
    solar: SolarParameters | None = None,
    k: float = K_PM,
    progress_bar: bool = False,
    distance_error: str = "fractional",
    **nuts_kwargs,
):
    """NUTS on :func:`hierarchical_reflex_model`; returns the numpyro MCMC.

    Chains start at ``init_params`` (reflex parameters, e.g. :func:`jaxhalo.inference.ml.fit_map`
    of the first-order model; default: the first-order ML fit) and at the catalogue distances
    (clipped into each star's prior range). Chains run sequentially on CPU, vectorised on
    an accelerator. ``distance_error``: see :func:`hierarchical_reflex_model`.
    """
    solar = SolarParameters() if solar is None else solar
    key = jax.random.PRNGKey(0) if key is None else key
    arrays = catalog_arrays(cat)
    if init_params is None:
        init_params = fit_map(ReflexData.from_catalog(cat, solar=solar, k=k), spec, priors, key)
    d_lo, d_hi = los_distance_bounds(arrays["l"], arrays["b"], r_range, solar)
    eps = 1e-3 * (d_hi - d_lo)
    values = {n: jnp.asarray(init_params[n]) for n in spec.param_names}
    values["distance"] = jnp.clip(arrays["distance"], d_lo + eps, d_hi - eps)
    kernel = NUTS(hierarchical_reflex_model, init_strategy=init_to_value(values=values), **nuts_kwargs)
    method = "sequential" if jax.devices()[0].platform == "cpu" else "vectorized"
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=method, progress_bar=progress_bar)
    if distance_error not in ("fractional", "absolute"):
        raise ValueError(f"distance_error must be 'fractional' or 'absolute', got {distance_error!r}")
    mcmc.run(key, arrays=arrays, spec=spec, priors=priors, alpha=alpha, r_range=r_range, solar=solar, k=k,
             distance_error=distance_error, extra_fields=("diverging",))
    return mcmc
