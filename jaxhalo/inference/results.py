"""Derived quantities (travel velocity, apex) and arviz InferenceData / summary tables of reflex fits."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..frames import MS_ROTATION
from ..jax_utils import RUN_ONCE_COMPILER_OPTIONS
from ..likelihoods.reflex import ReflexData, ReflexModel
from .priors import prior_base_name, unit_prior_table
from .variables import SIGN_CONVENTIONS, describe_variable

if TYPE_CHECKING:
    import arviz as az  # deferred: annotations only (arviz loads when an InferenceData is made)
    from astropy.table import (  # deferred: astropy.table loads only when a table is made
        QTable,
        Table,
    )
    from numpyro.infer import MCMC  # deferred: annotations only

    from .nuts_programs import NUTSRun  # deferred: annotations only

__all__ = [
    "ANGLES_NOTE",
    "derived_quantities",
    "physical_parameters",
    "precompile_outputs",
    "radial_summary_qtable",
    "reported_prior_table",
    "sample_stats_from_mcmc",
    "sampled_parameters",
    "samples_to_inference_data",
    "summary_qtable",
    "summary_table",
]

#: What every reflex-fit output says about its angles (the InferenceData's ``angles`` attribute, summary.md).
ANGLES_NOTE: str = (
    "every angle in degrees (apex longitudes and latitudes, sampled and derived); the sampler's internal "
    "parameters (apex longitude in radians, sine of the apex latitude) are not written out: "
    "jaxhalo.inference.results.sampled_parameters(spec, posterior) recovers them"
)

#: sampled apex angle (base name) -> (reported base name, conversion): longitude rad -> deg, sine of latitude -> deg.
_ANGLE_SITES = {"apex_l": ("apex_l_deg", "rad"), "apex_L": ("apex_L_deg", "rad"),
                "apex_sinb": ("apex_b_deg", "sin"), "apex_sinB": ("apex_B_deg", "sin")}


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


def _reported_name(spec: ReflexModel, name: str) -> tuple[str, str | None]:
    """(reported name, conversion) of a model parameter: ``apex_l`` -> ``apex_l_deg``, ``apex_sinB_40`` ->
    ``apex_B_deg_40``; conversion 'rad' (radians to degrees), 'sin' (sine to latitude in degrees) or None."""
    base = prior_base_name(spec, name)
    if base not in _ANGLE_SITES:
        return name, None
    new, kind = _ANGLE_SITES[base]
    return new + name[len(base):], kind


def physical_parameters(spec: ReflexModel, samples: Mapping[str, Array]) -> dict[str, Array]:
    """The fitted parameters in reporting units, as every output holds them.

    ``samples`` maps ``spec.param_names`` to arrays (any shape) in the model's internal units
    (apex longitude in radians, sine of the apex latitude). Returns the same parameters with the
    apex longitude in degrees (``apex_l_deg``, ``apex_L_deg[_40]``) and the sine of the latitude
    replaced by the latitude in degrees (``apex_b_deg``, ``apex_B_deg[_40]``); every other
    parameter unchanged (km/s). :func:`sampled_parameters` is the inverse.
    """
    out = {}
    for n in spec.param_names:
        v = jnp.asarray(samples[n])
        new, kind = _reported_name(spec, n)
        out[new] = jnp.degrees(v) if kind == "rad" else jnp.degrees(jnp.arcsin(v)) if kind == "sin" else v
    return out


def sampled_parameters(spec: ReflexModel, physical: Mapping[str, Array]) -> dict[str, Array]:
    """Inverse of :func:`physical_parameters`: the model's parameters in its internal units (apex
    longitude in radians, sine of the apex latitude) from the reported ones (degrees), e.g. the
    ``posterior`` group of a ``posterior.nc`` (arrays of any shape; xarray variables work).

    Returns ``{name: array}`` for ``spec.param_names``, ready for ``spec.log_likelihood``; equal to the
    sampled values to a few units in the last place (one degree conversion and back).
    """
    out = {}
    for n in spec.param_names:
        new, kind = _reported_name(spec, n)
        v = jnp.asarray(np.asarray(physical[new]))
        out[n] = jnp.radians(v) if kind == "rad" else jnp.sin(jnp.radians(v)) if kind == "sin" else v
    return out


def reported_prior_table(spec: ReflexModel, priors) -> list[dict]:
    """The priors of a fit as its outputs report them (``diagnostics.json``): one dict per sample site of
    :func:`jaxhalo.inference.priors.unit_prior_table`, in model order, with ``name`` (the reported
    variable), ``site`` (the sampled one), ``kind`` ('linear', 'log', or 'linear in sin' for the apex
    latitude, uniform in its sine), ``low``, ``high`` and ``unit`` (angles in degrees).
    """
    rows = []
    for site, kind, lo, hi in unit_prior_table(spec, priors):
        new, conv = _reported_name(spec, site) if site in spec.param_names else (site, None)
        if conv == "rad":
            lo, hi = float(np.degrees(lo)), float(np.degrees(hi))
        elif conv == "sin":
            kind, lo, hi = "linear in sin", float(np.degrees(np.arcsin(lo))), float(np.degrees(np.arcsin(hi)))
        try:
            unit = describe_variable(new)[0]
        except KeyError:
            unit = ""
        rows.append({"name": new, "site": site, "kind": kind, "low": lo, "high": hi, "unit": unit})
    return rows


_physical_jit = jax.jit(physical_parameters, static_argnums=0)


#: Run once per fit on (chains, draws) arrays, in microseconds: compiled at XLA optimisation level 0
#: (RUN_ONCE_COMPILER_OPTIONS), 0.2 s instead of 0.7 s on 2 CPU cores.
_derived_jit = jax.jit(derived_quantities, static_argnums=(0, 2), compiler_options=RUN_ONCE_COMPILER_OPTIONS)


@functools.partial(jax.jit, static_argnums=0)
def _loglike_per_star_flat(spec: ReflexModel, flat: Mapping[str, Array], data: ReflexData) -> Array:
    """(S, N) per-star log-likelihoods of S parameter draws (data an argument: compiled once per shape)."""
    return jax.vmap(lambda p: spec.log_likelihood_per_star(p, data))(flat)


def _loglike_per_star_samples(spec: ReflexModel, data: ReflexData, samples: Mapping[str, Array]) -> Array:
    """Per-star log-likelihood for every sample: (chains, draws, N)."""
    names = spec.param_names
    flat = {n: jnp.reshape(jnp.asarray(samples[n]), (-1,)) for n in names}
    ll = _loglike_per_star_flat(spec, flat, data)
    shape = jnp.shape(samples[names[0]])
    return ll.reshape(shape + (data.n_stars,))


def precompile_outputs(spec: ReflexModel, data: ReflexData, num_chains: int, num_draws: int, radii,
                       pointwise: bool = True) -> None:
    """Compile the programs of :func:`samples_to_inference_data` for (``num_chains``, ``num_draws``) draws
    into JAX's persistent compilation cache; a no-op without one (nothing would keep the result).

    :func:`~jaxhalo.inference.reflex_fit.fit_reflex` runs it in a background thread while it samples, so
    that a first run (empty cache) does not compile them after sampling, on the critical path.
    """
    if not jax.config.jax_compilation_cache_dir:
        return
    f = jnp.result_type(float)
    draws = {n: jax.ShapeDtypeStruct((num_chains, num_draws), f) for n in spec.param_names}
    _physical_jit.lower(spec, draws).compile()
    _derived_jit.lower(spec, draws, tuple(radii)).compile()
    if pointwise:
        flat = {n: jax.ShapeDtypeStruct((num_chains * num_draws,), f) for n in spec.param_names}
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), data)
        _loglike_per_star_flat.lower(spec, flat, abstract).compile()


def _arviz():
    """The arviz module, imported on first use: it takes ~1 s to import (xarray, pandas, its plotting
    stack), which ``jaxhalo fit`` hides by importing it in a background thread while it samples
    (:func:`jaxhalo.cli._prefetch.prefetch_modules`)."""
    import arviz  # deferred: ~1 s of imports, loaded when the first InferenceData or summary is made

    return arviz


def _rhat(post, names: list[str]):
    """arviz's R-hat of ``names``; with one chain it is undefined: NaN, not computed (arviz would log a
    shape warning)."""
    if post.sizes.get("chain", 1) > 1:
        return _arviz().rhat(post, var_names=names)
    return {n: np.nan for n in names}


def summary_table(idata: az.InferenceData, var_names: list[str] | None = None) -> Table:
    """Posterior quantiles (16/50/84, Chandra et al. Table 1) with R-hat and bulk/tail ESS.

    Returns an astropy Table with columns: parameter, unit (the variable's ``units`` attribute,
    :func:`jaxhalo.inference.variables.describe_variable`), p16, p50, p84, minus, plus, r_hat,
    ess_bulk, ess_tail; the quantiles are in that unit. With one chain r_hat is NaN (undefined).
    """
    from astropy.table import Table  # deferred: astropy loads only when this runs

    post = idata.posterior
    names = var_names or [v for v in post.data_vars]
    rows = []
    az = _arviz()
    rhat = _rhat(post, names)
    ess_b = az.ess(post, var_names=names, method="bulk")
    ess_t = az.ess(post, var_names=names, method="tail")
    for n in names:
        x = np.asarray(post[n]).reshape(-1)
        p16, p50, p84 = np.percentile(x, [16, 50, 84])
        unit = _unit_of(idata, n)
        rows.append((n, unit, p16, p50, p84, p50 - p16, p84 - p50, float(rhat[n]), float(ess_b[n]), float(ess_t[n])))
    return Table(rows=rows, names=["parameter", "unit", "p16", "p50", "p84", "minus", "plus", "r_hat", "ess_bulk",
                                   "ess_tail"])


def _unit_of(idata: az.InferenceData, name: str) -> str:
    unit = idata.posterior[name].attrs.get("units")
    if unit is None:
        try:
            unit = describe_variable(name)[0]
        except KeyError:
            unit = ""
    return unit


def summary_qtable(idata: az.InferenceData, var_names: list[str] | None = None) -> QTable:
    """Posterior quantiles with units, as an astropy QTable.

    One row per quantile: column ``quantile`` (0.16, 0.50, 0.84), then one column per variable of
    the ``posterior`` group (default: all), an ``astropy.units.Quantity`` in the variable's ``units``
    attribute (km/s, deg, s2 / km2; dimensionless for fractions). ``meta`` holds, per variable,
    ``description``, ``r_hat``, ``ess_bulk`` and ``ess_tail`` (under ``meta['variables'][name]``) and the
    sign and angle conventions. ``t['v_travel'][1]`` is the median travel velocity as a Quantity.
    """
    import astropy.units as u  # deferred: astropy loads only when this runs
    from astropy.table import QTable

    post = idata.posterior
    names = list(var_names or [str(v) for v in post.data_vars])
    levels = np.array([0.16, 0.5, 0.84])
    az = _arviz()
    rhat = _rhat(post, names)
    ess_b = az.ess(post, var_names=names, method="bulk")
    ess_t = az.ess(post, var_names=names, method="tail")
    t = QTable()
    t["quantile"] = levels
    meta = {}
    for n in names:
        unit = _unit_of(idata, n)
        t[n] = np.percentile(np.asarray(post[n]).reshape(-1), 100 * levels) * u.Unit(unit)
        meta[n] = {"unit": unit, "description": post[n].attrs.get("description", ""), "r_hat": float(rhat[n]),
                   "ess_bulk": float(ess_b[n]), "ess_tail": float(ess_t[n])}
    t.meta.update(variables=meta, sign_conventions=post.attrs.get("sign_conventions", SIGN_CONVENTIONS),
                  angles=post.attrs.get("angles", ANGLES_NOTE))
    return t


_RADIAL = ("v_travel", "apex_l", "apex_b", "apex_L_MS", "apex_B_MS", "v_x", "v_y", "v_z")


def radial_summary_qtable(idata: az.InferenceData) -> QTable:
    """The derived quantities of a reflex fit against radius, as an astropy QTable with units.

    One row per radius R at which the posterior holds derived quantities (``v_travel_r{R}`` ...,
    :func:`derived_quantities`), sorted; columns ``r`` (kpc) and, for each of v_travel, apex_l,
    apex_b, apex_L_MS, apex_B_MS, v_x, v_y, v_z present, ``{q}_p16``, ``{q}_p50``, ``{q}_p84``
    (Quantities in km/s or deg; NaN where a radius lacks it).
    """
    import astropy.units as u  # deferred: astropy loads only when this runs
    from astropy.table import QTable

    post = idata.posterior
    found: dict[float, dict[str, str]] = {}
    for name in post.data_vars:
        m = re.fullmatch(r"(%s)_r(\d+(?:\.\d+)?)" % "|".join(_RADIAL), str(name))
        if m:
            found.setdefault(float(m.group(2)), {})[m.group(1)] = str(name)
    radii = sorted(found)
    t = QTable()
    t["r"] = np.asarray(radii, float) * u.kpc
    for q in _RADIAL:
        if not any(q in found[R] for R in radii):
            continue
        unit = next(_unit_of(idata, found[R][q]) for R in radii if q in found[R])
        vals = np.array([np.percentile(np.asarray(post[found[R][q]]).reshape(-1), [16, 50, 84]) if q in found[R]
                         else np.full(3, np.nan) for R in radii]).reshape(len(radii), 3)
        for i, p in enumerate(("p16", "p50", "p84")):
            t[f"{q}_{p}"] = vals[:, i] * u.Unit(unit)
    t.meta.update(sign_conventions=post.attrs.get("sign_conventions", SIGN_CONVENTIONS),
                  angles=post.attrs.get("angles", ANGLES_NOTE))
    return t


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


def sample_stats_from_mcmc(mcmc: MCMC | NUTSRun) -> dict[str, np.ndarray]:
    """arviz ``sample_stats`` (chain, draw) from the extra fields of a numpyro MCMC or a :class:`NUTSRun`: diverging, n_steps,
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
    mcmc: MCMC | NUTSRun | None, spec: ReflexModel, data: ReflexData, samples, radii, pointwise: bool = True
) -> az.InferenceData:
    """InferenceData of a reflex fit with named dimensions.

    Groups: ``posterior`` (the parameters in reporting units (:func:`physical_parameters`: every angle
    in degrees, latitudes rather than their sines), any other sampled site (``tau_*`` of the reference
    priors) and the derived quantities; dims chain, draw; each variable has ``units`` and
    ``description`` attributes; the sampler's internal apex parameters are recovered by
    :func:`sampled_parameters`),
    ``sample_stats`` (:func:`sample_stats_from_mcmc`), ``log_likelihood`` (variable ``star``, dims
    chain, draw, ``star_id``: one entry per star used, whose coordinate is its row in the catalogue;
    omitted with ``pointwise=False`` -- it is 8 bytes x chains x draws x stars, 27 MB for 850 stars
    and 4 x 1000 draws) and ``constant_data`` (``weight`` over every ``catalog_row``).
    """
    samples_j = {k: jnp.asarray(samples[k]) for k in spec.param_names}
    post = {k: np.asarray(v) for k, v in _physical_jit(spec, samples_j).items()}
    post.update({k: np.asarray(v) for k, v in samples.items() if k != "u" and k not in spec.param_names})
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
    idata = _arviz().from_dict(**kwargs)
    for name, var in idata.posterior.data_vars.items():
        unit, description = describe_variable(name)
        var.attrs.update(units=unit, description=description)
    idata.posterior.attrs["sign_conventions"] = SIGN_CONVENTIONS
    idata.posterior.attrs["angles"] = ANGLES_NOTE
    if pointwise:
        idata.log_likelihood["star"].attrs.update(units="", description="per-star log-likelihood (natural log)")
    idata.constant_data["weight"].attrs.update(units="", description="1 for a star used in the fit, 0 if clipped or cut")
    return idata
