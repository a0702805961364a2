"""jaxhalo: fast, differentiable, GPU-ready kinematics and dynamics of the Milky Way's outer halo.

The public API is re-exported here; see the submodules for details:

- :mod:`jaxhalo.frames` -- coordinate frames (heliocentric, Galactocentric, Magellanic Stream).
- :mod:`jaxhalo.catalog` -- reading, validating and cutting star catalogues.
- :mod:`jaxhalo.likelihoods` -- reflex-motion (and other) likelihoods.
- :mod:`jaxhalo.inference` -- numpyro models, MAP + clipping, NUTS, arviz output.
- :mod:`jaxhalo.mocks` -- mock catalogues from the reflex model.
- :mod:`jaxhalo.potentials`, :mod:`jaxhalo.orbits`, :mod:`jaxhalo.mwlmc` -- potentials, orbit
  integration (diffrax) and the MW-LMC two-body orbit with dynamical friction.
- :mod:`jaxhalo.observe`, :mod:`jaxhalo.summaries` -- mock observation and the Brooks et al.
  summary statistics, sky maps and profiles.
- :mod:`jaxhalo.simulator`, :mod:`jaxhalo.tracers` -- the chained Brooks et al. MW-LMC simulator
  (Table 1 parameters -> snapshot / mock observation / 52 summaries) and tracer densities.
- :mod:`jaxhalo.inference_profiles`, :mod:`jaxhalo.mocks_populations` -- Li et al. mixture and
  dipole models fitted in many bins at once, and their mocks; :mod:`jaxhalo.inference_per_bin` --
  NUTS run independently in every bin (own step size and dense mass matrix), vmapped.

jaxhalo never switches on ``jax_enable_x64`` itself (that would change its users'
other JAX code); enable it in your script for float64, as the CLI and tests do.
"""

from . import (
    catalog,
    constants,
    frames,
    inference,
    inference_profiles,
    likelihoods,
    mocks,
    mocks_populations,
    mwlmc,
    observe,
    orbits,
    potentials,
    summaries,
)
from .catalog import (
    CatalogError,
    CutReport,
    StarCatalog,
    chandra_selection,
    cut_quality,
    cut_r_gal,
    cut_sgr_angular_momentum,
    pp21_selection,
    read_catalog,
    read_peer_header,
    read_peer_transposed,
    write_catalog,
)
from .frames import SolarParameters
from .inference import FitResult, PriorSet, clip_outliers, derived_quantities, fit_map, fit_reflex, run_nuts
from .likelihoods.reflex import ReflexData, ReflexModel
from .mocks import ErrorModel, make_reflex_mock
from .mwlmc import LMCObservables, MWLMCOrbit, lmc_present_day, mw_lmc_orbit
from .observe import observe_catalog
from .orbits import integrate_orbit
from .potentials import NFW, Composite, Hernquist, MiyamotoNagai, Potential, SphericalFromDensity, lmc_hernquist, milky_way
from .summaries import brooks_summaries, brooks_summary_vector, vgsr_sky_map
from . import hierarchical, inference_outliers, mocks_substructure, model_comparison  # noqa: E402  (issue 3, items 5-8)
from .model_comparison import compare_models  # noqa: E402
from . import inference_per_bin  # noqa: E402
from .inference_per_bin import PerBinNUTS, bucket_bins, nuts_per_bin  # noqa: E402

from . import simulator, tracers  # noqa: E402  (the chained Brooks et al. simulator; tracer densities)
from .simulator import SimConfig, simulate_observed, simulate_present_day, summary_vector  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "catalog", "constants", "frames", "inference", "likelihoods", "mocks", "potentials",
    "StarCatalog", "CatalogError", "CutReport", "read_catalog", "read_peer_transposed", "read_peer_header",
    "write_catalog", "cut_quality", "cut_r_gal", "cut_sgr_angular_momentum", "chandra_selection", "pp21_selection",
    "SolarParameters", "ReflexData", "ReflexModel", "PriorSet", "FitResult", "fit_reflex", "fit_map",
    "clip_outliers", "run_nuts", "derived_quantities", "ErrorModel", "make_reflex_mock",
    "inference_profiles", "mocks_populations", "mwlmc", "observe", "orbits", "summaries",
    "LMCObservables", "MWLMCOrbit", "lmc_present_day", "mw_lmc_orbit", "observe_catalog", "integrate_orbit",
    "NFW", "Composite", "Hernquist", "MiyamotoNagai", "Potential", "SphericalFromDensity", "lmc_hernquist", "milky_way",
    "brooks_summaries", "brooks_summary_vector", "vgsr_sky_map", "__version__",
]
__all__ += ["simulator", "tracers", "SimConfig", "simulate_present_day", "simulate_observed", "summary_vector"]
__all__ += ["hierarchical", "inference_outliers", "mocks_substructure", "model_comparison", "compare_models"]
__all__ += ["inference_per_bin", "nuts_per_bin", "PerBinNUTS", "bucket_bins"]
