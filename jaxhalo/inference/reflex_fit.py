"""The reflex fit end to end (Chandra et al. 2025 §4): ML, clipping, NUTS, InferenceData."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jax
import numpy as np
from jax import Array

from ..catalog.checks import check_enough_stars
from ..likelihoods.reflex import ReflexData, ReflexModel
from .ml import CHI2_3SIGMA_3DOF, clip_outliers, fit_map, prepare_fit_map
from .nuts import prepare_nuts, run_nuts
from .priors import PriorSet
from .results import precompile_outputs, report_names, samples_to_inference_data, summary_qtable, summary_table

if TYPE_CHECKING:
    import arviz as az  # deferred: annotations only (arviz loads when an InferenceData is made)

__all__ = [
    "fit_reflex",
    "FitResult",
]


@dataclass
class FitResult:
    """The outcome of :func:`fit_reflex`.

    Attributes
    ----------
    idata : arviz InferenceData with groups posterior (the parameters in reporting units, every
        angle in degrees, and derived quantities), sample_stats, log_likelihood (per star, for
        PSIS-LOO; absent with pointwise=False), constant_data (the clipping weights).
    spec : the model specification.
    map_params : ML parameters after clipping.
    n_clipped : stars removed at each clipping iteration.
    weight : (N,) final 0/1 weights (0 = clipped).
    table : astropy Table of quantiles and diagnostics.
    n_divergent : number of divergent transitions after warm-up.
    timings : seconds spent in ML + clipping (``map_clip_s``) and NUTS (``nuts_s``).
    samples : the draws of ``spec.param_names`` in the model's internal units (apex longitude in
        radians, sine of the apex latitude), each (chains, draws): what ``spec.log_likelihood`` takes.
    """

    idata: az.InferenceData
    spec: ReflexModel
    map_params: dict
    n_clipped: list
    weight: np.ndarray
    table: object
    n_divergent: int
    timings: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)

    @property
    def max_r_hat(self) -> float:
        """The largest R-hat over the reported variables; NaN when undefined (a single chain)."""
        r = np.asarray(self.table["r_hat"], dtype=float)
        return float(np.nanmax(r)) if np.isfinite(r).any() else float("nan")

    @property
    def min_ess_bulk(self) -> float:
        return float(np.nanmin(np.asarray(self.table["ess_bulk"])))

    def to_qtable(self, var_names: list[str] | None = None):
        """The posterior quantiles as an astropy QTable with units (:func:`~jaxhalo.inference.results.summary_qtable`):
        one row per quantile (16, 50, 84 %), one Quantity column per variable of :attr:`table` (or ``var_names``)."""
        return summary_qtable(self.idata, list(var_names) if var_names is not None else [str(n) for n in self.table["parameter"]])


def fit_reflex(
    data: ReflexData,
    spec: ReflexModel = ReflexModel("continuity", "ms"),
    priors: PriorSet = PriorSet(),
    key: Array | None = None,
    clip: bool = True,
    n_clip: int = 5,
    clip_threshold: float = CHI2_3SIGMA_3DOF,
    num_chains: int = 4,
    num_warmup: int = 300,
    num_samples: int = 750,
    radii=(40.0, 50.0, 100.0, 120.0),
    progress_bar: bool = True,
    verbose: bool = True,
    force: bool = False,
    pointwise: bool = True,
) -> FitResult:
    """Full fit: ML + clipping (optional) then NUTS; returns a :class:`FitResult`.

    ``clip=False`` or ``n_clip=0`` fits without clipping. The fit refuses
    (:class:`~jaxhalo.catalog.checks.InsufficientStarsError`) when fewer stars than
    :func:`~jaxhalo.catalog.checks.minimum_stars` (2 per parameter) have non-zero weight, before the
    ML fit and again after clipping; ``force=True`` turns that into a
    :class:`~jaxhalo.catalog.checks.DataWarning` (an empty data set is always refused).
    ``pointwise=False`` leaves out the per-star ``log_likelihood`` group of ``idata`` (8 bytes x chains x
    draws x stars used; PSIS-LOO and model comparison need it).
    """
    if n_clip < 0:
        raise ValueError(f"n_clip must be >= 0 (0: no clipping), got {n_clip}")
    if num_chains < 1 or num_samples < 1 or num_warmup < 0:
        raise ValueError(f"need num_chains >= 1, num_samples >= 1 and num_warmup >= 0; got {num_chains}, "
                         f"{num_samples}, {num_warmup}")
    n_params = len(spec.param_names)
    n_in = int(np.sum(np.asarray(data.weight) > 0))
    check_enough_stars(n_in, n_params, "in the data", force=force)
    key = jax.random.PRNGKey(0) if key is None else key
    k_map, k_nuts = jax.random.split(key)
    t0 = time.perf_counter()
    # The ML program is traced first (alone on the GIL); then NUTS compiles (or, with a warm persistent
    # cache, traces and loads) in a thread while the ML fit compiles and runs -- the data's shape is fixed
    # now, only its clipping weights change -- and after it the programs that make the InferenceData.
    prepare_fit_map(data, spec, priors)
    nuts_ready = prepare_nuts(data, spec, priors, num_chains, num_warmup, num_samples)
    threading.Thread(target=lambda: (nuts_ready.exception(), precompile_outputs(spec, data, num_chains, num_samples, radii,
                                                                               pointwise)),
                     name="jaxhalo-output-compile", daemon=True).start()
    if clip and n_clip > 0:
        data, map_params, removed = clip_outliers(data, spec, priors, k_map, n_iter=n_clip, threshold=clip_threshold, verbose=verbose)
        n_left = int(np.sum(np.asarray(data.weight) > 0))
        check_enough_stars(n_left, n_params, f"remain after {n_clip} round(s) of 3-sigma clipping ({n_in - n_left} of "
                           f"{n_in} removed, per round {removed}); check the units of the catalogue or fit with "
                           "--n-clip 0", force=force)
    else:
        map_params, removed = fit_map(data, spec, priors, k_map), []
    t_map = time.perf_counter() - t0
    t0 = time.perf_counter()
    mcmc = run_nuts(data, spec, priors, k_nuts, num_chains, num_warmup, num_samples, init_params=map_params, progress_bar=progress_bar)
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    t_nuts = time.perf_counter() - t0
    idata = samples_to_inference_data(mcmc, spec, data, samples, radii, pointwise=pointwise)
    n_div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    table = summary_table(idata, var_names=report_names(spec, radii))
    return FitResult(idata, spec, {k: np.asarray(v) for k, v in map_params.items()}, removed,
                     np.asarray(data.weight), table, n_div, {"map_clip_s": t_map, "nuts_s": t_nuts},
                     {k: np.asarray(samples[k]) for k in spec.param_names})
