# The public API of jaxhalo.inference, loaded lazily by __init__.py (lazy_loader); one sorted block.
from . import comparison, hierarchical, ml, models, nuts, nuts_programs, optim, outliers, per_bin, priors, profiles, reflex_fit, results, variables
from .comparison import ModelComparisonError, compare_models, numpyro_inference_data, reflex_inference_data
from .hierarchical import catalog_arrays, distance_log_likelihood, hierarchical_reflex_model, los_distance_bounds, reflex_data_at_distance, run_hierarchical_nuts
from .ml import CHI2_3SIGMA_3DOF, clip_outliers, constrained_params, fit_map, fit_map_traceable, negative_log_posterior, prepare_fit_map, unconstrained_params
from .models import reflex_numpyro_model, reflex_numpyro_model_unit
from .nuts import prepare_nuts, run_nuts, unit_model_postprocess, unit_model_potential
from .nuts_programs import NUTS_EXTRA_FIELDS, NUTSConfig, NUTSRun, compile_nuts, run_chains
from .optim import lbfgs_backtracking, lbfgs_converge, lbfgs_scan, lbfgs_starts_converge
from .outliers import fit_map_outliers, laplace_scales, run_nuts_outliers, star_galactocentric_velocities, truth_offsets
from .per_bin import MAX_DRAWS_FACTOR, MIN_OVERHEAD_STARS, PerBinNUTS, bucket_bins, bucket_draw_factors, nuts_per_bin, per_bin_inference_data
from .priors import PriorSet, params_to_unit, prior_base_name, sample_prior_site, sample_prior_sites, unit_prior_table
from .profiles import DipolePrior, LI2025_COLUMNS, MixturePrior, dipole_model, init_params, li2025_dipole_prior, li2025_mixture_prior, map_profile, mixture_profile_model, nuts_profile, per_bin_potential
from .reflex_fit import FitResult, fit_reflex
from .results import ANGLES_NOTE, derived_quantities, physical_parameters, precompile_outputs, radial_summary_qtable, reported_prior_table, sample_stats_from_mcmc, sampled_parameters, samples_to_inference_data, summary_qtable, summary_table
from .variables import LI2025_SIGN_CONVENTIONS, SIGN_CONVENTIONS, describe_profile_variable, describe_variable
