# The public API of jaxhalo.catalog, loaded lazily by __init__.py (lazy_loader); one sorted block.
from . import checks, cuts, kinematics, readers, skycoord, structure
from .checks import DataWarning, InsufficientStarsError, MIN_STARS_PER_PARAMETER, PlausibilityError, SOLAR_GEOMETRY, check_enough_stars, check_plausible, galactocentric_radius, minimum_stars
from .cuts import CutReport, L_SGR_PP21, SGR_ROTATION, chandra_selection, cut_quality, cut_r_gal, cut_sgr_angular_momentum, galactic_to_sagittarius, pp21_selection
from .kinematics import catalog_velocities
from .readers import FORMATS_BY_SUFFIX, KNOWN_SUFFIXES, read_catalog, read_peer_header, read_peer_transposed, write_catalog
from .skycoord import catalog_from_skycoord, catalog_to_skycoord
from .structure import CatalogError, REQUIRED_COLUMNS, StarCatalog, to_table
