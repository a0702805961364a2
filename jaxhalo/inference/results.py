"""Derived quantities (travel velocity, apex) and arviz InferenceData / summary tables of reflex fits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from numpyro.infer import MCMC

from ..frames import MS_ROTATION
from ..likelihoods.reflex import ReflexData, ReflexModel
from .priors import prior_base_name
from .variables import SIGN_CONVENTIONS, describe_variable

if TYPE_CHECKING:
    from astropy.table import Table  # deferred: astropy.table loads only when a table is made

__all__ = [
    "derived_quantities",
    "sample_stats_from_mcmc",
    "samples_to_inference_data",
    "summary_table",
]


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
        base = prior_base_name(spec, n)
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


def summary_table(idata: az.InferenceData, var_names: list[str] | None = None) -> Table:
    """Posterior quantiles (16/50/84, Chandra et al. Table 1) with R-hat and bulk/tail ESS.

    Returns an astropy Table with columns: parameter, unit (the variable's ``units`` attribute,
    :func:`jaxhalo.inference.variables.describe_variable`), p16, p50, p84, minus, plus, r_hat,
    ess_bulk, ess_tail; the quantiles are in that unit.
    """
    from astropy.table import Table  # deferred: astropy loads only when this runs

    post = idata.posterior
    names = var_names or [v for v in post.data_vars]
    rows = []
    rhat = az.rhat(post, var_names=names)
    ess_b = az.ess(post, var_names=names, method="bulk")
    ess_t = az.ess(post, var_names=names, method="tail")
    for n in names:
        x = np.asarray(post[n]).reshape(-1)
        p16, p50, p84 = np.percentile(x, [16, 50, 84])
        unit = post[n].attrs.get("units")
        if unit is None:
            try:
                unit = describe_variable(n)[0]
            except KeyError:
                unit = ""
        rows.append((n, unit, p16, p50, p84, p50 - p16, p84 - p50, float(rhat[n]), float(ess_b[n]), float(ess_t[n])))
    return Table(rows=rows, names=["parameter", "unit", "p16", "p50", "p84", "minus", "plus", "r_hat", "ess_bulk",
                                   "ess_tail"])


def report_names(spec: ReflexModel, radii) -> list[str]:
    dummy = {n: jnp.zeros(()) for n in spec.param_names}
    phys = list(physical_parameters(spec, dummy))
    der = [f"v_travel_r{R:g}" for R in radii] + [f"apex_l_r{R:g}" for R in radii] + [f"apex_b_r{R:g}" for R in radii]
    if 100.0 in radii:
        der += ["v_x_r100", "v_y_r100", "v_z_r100"]
    return phys + der


#: numpyro extra field -> arviz ``sample_stats`` name (arviz's own convention, as ``az.from_numpyro``).
_SAMPLE_STAT_NAMES = {
    "diverging": "diverging", "num_steps": "n_steps", "energy": "energy", "potential_energy": "lp",
    "accept_prob": "acceptance_rate", "adapt_state.step_size": "step_size",
}


def sample_stats_from_mcmc(mcmc: MCMC) -> dict[str, np.ndarray]:
    """arviz ``sample_stats`` (chain, draw) from a numpyro MCMC's extra fields: diverging, n_steps,
    tree_depth, energy, lp (= -potential energy), acceptance_rate, step_size, as ``az.from_numpyro``
    names them, so that ``az.bfmi`` and ``az.plot_energy`` work."""
    stats = {}
    for field, value in mcmc.get_extra_fields(group_by_chain=True).items():
        if field not in _SAMPLE_STAT_NAMES:
            continue
        value = np.asarray(value)
        stats[_SAMPLE_STAT_NAMES[field]] = -value if field == "potential_energy" else value
        if field == "num_steps":
            stats["tree_depth"] = np.log2(np.maximum(value, 1)).astype(int) + 1
    return stats


def samples_to_inference_data(
    mcmc: MCMC | None, spec: ReflexModel, data: ReflexData, samples, radii, pointwise: bool = True
) -> az.InferenceData:
    """InferenceData of a reflex fit with named dimensions.

    Groups: ``posterior`` (raw parameters, physical and derived quantities; dims chain, draw),
    ``sample_stats`` (:func:`sample_stats_from_mcmc`), ``log_likelihood`` (variable ``star``, dims
    chain, draw, ``star_id``: one entry per star used, whose coordinate is its row in the catalogue;
    omitted with ``pointwise=False`` -- it is 8 bytes x chains x draws x stars, 27 MB for 850 stars
    and 4 x 1000 draws) and ``constant_data`` (``weight`` over every ``catalog_row``).
    """
    post = {k: np.asarray(v) for k, v in samples.items() if k != "u"}
    samples_j = {k: jnp.asarray(samples[k]) for k in spec.param_names}
    post.update({k: np.asarray(v) for k, v in _physical_jit(spec, samples_j).items()})
    post.update({k: np.asarray(v) for k, v in _derived_jit(spec, samples_j, tuple(radii)).items()})
    weight = np.asarray(data.weight)
    keep = np.flatnonzero(weight > 0)
    kwargs = dict(posterior=post, constant_data={"weight": weight},
                  dims={"star": ["star_id"], "weight": ["catalog_row"]},
                  coords={"star_id": keep, "catalog_row": np.arange(weight.shape[0])})
    if pointwise:
        ll = np.asarray(_loglike_per_star_samples(spec, data, samples))
        kwargs["log_likelihood"] = {"star": ll[..., keep]}
    if mcmc is not None:
        kwargs["sample_stats"] = sample_stats_from_mcmc(mcmc)
    idata = az.from_dict(**kwargs)
    for name, var in idata.posterior.data_vars.items():
        unit, description = describe_variable(name)
        var.attrs.update(units=unit, description=description)
    idata.posterior.attrs["sign_conventions"] = SIGN_CONVENTIONS
    if pointwise:
        idata.log_likelihood["star"].attrs.update(units="", description="per-star log-likelihood (natural log)")
    idata.constant_data["weight"].attrs.update(units="", description="1 for a star used in the fit, 0 if clipped or cut")
    return idata
