"""jaxhalo: fast, differentiable, GPU-ready kinematics and dynamics of the Milky Way's outer halo.

The public API is re-exported here; see the submodules for details:

- :mod:`jaxhalo.frames` -- coordinate frames (heliocentric, Galactocentric, Magellanic Stream).
- :mod:`jaxhalo.catalog` -- reading, validating and cutting star catalogues.
- :mod:`jaxhalo.likelihoods` -- reflex-motion (and other) likelihoods.
- :mod:`jaxhalo.inference` -- numpyro models, MAP + clipping, NUTS, arviz output.
- :mod:`jaxhalo.mocks` -- mock catalogues from the reflex model.
- :mod:`jaxhalo.potentials` -- gravitational potentials.

jaxhalo never switches on ``jax_enable_x64`` itself (that would change its users'
other JAX code); enable it in your script for float64, as the CLI and tests do.
"""

from . import catalog, constants, frames, inference, likelihoods, mocks, potentials
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

__version__ = "0.1.0"

__all__ = [
    "catalog", "constants", "frames", "inference", "likelihoods", "mocks", "potentials",
    "StarCatalog", "CatalogError", "CutReport", "read_catalog", "read_peer_transposed", "read_peer_header",
    "write_catalog", "cut_quality", "cut_r_gal", "cut_sgr_angular_momentum", "chandra_selection", "pp21_selection",
    "SolarParameters", "ReflexData", "ReflexModel", "PriorSet", "FitResult", "fit_reflex", "fit_map",
    "clip_outliers", "run_nuts", "derived_quantities", "ErrorModel", "make_reflex_mock", "__version__",
]
