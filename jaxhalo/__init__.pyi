# The public API of jaxhalo, one sorted block. jaxhalo/__init__.py loads these names lazily (SPEC 1,
# lazy_loader) from this stub, so `import jaxhalo` and the command line start without loading JAX.
from . import catalog, constants, dynamics, example_data, frames, inference, likelihoods, mocks, plots, sbi, simulation
from .catalog.cuts import CutReport, chandra_selection, cut_quality, cut_r_gal, cut_sgr_angular_momentum, pp21_selection
from .catalog.kinematics import catalog_velocities
from .catalog.readers import read_catalog, read_peer_header, read_peer_transposed, write_catalog
from .catalog.structure import CatalogError, StarCatalog
from .dynamics.mwlmc import LMCObservables, MWLMCOrbit, lmc_present_day, mw_lmc_orbit
from .dynamics.orbits import integrate_orbit
from .dynamics.potentials import NFW, Composite, Hernquist, MiyamotoNagai, Potential, SphericalFromDensity, lmc_hernquist, milky_way
from .example_data import example_catalog, example_truth
from .frames import SolarParameters
from .inference.comparison import compare_models
from .inference.ml import clip_outliers, fit_map
from .inference.nuts import run_nuts
from .inference.per_bin import PerBinNUTS, bucket_bins, nuts_per_bin
from .inference.priors import PriorSet
from .inference.reflex_fit import FitResult, fit_reflex
from .inference.results import derived_quantities, sampled_parameters, summary_qtable
from .likelihoods.reflex import ReflexData, ReflexModel
from .mocks.reflex import ErrorModel, make_reflex_mock
from .simulation.brooks import SimConfig, simulate_observed, simulate_present_day, summary_vector
from .simulation.errors import SimulatorError
from .simulation.observe import observe_catalog
from .simulation.summaries import brooks_summaries, brooks_summary_vector, vgsr_sky_map
