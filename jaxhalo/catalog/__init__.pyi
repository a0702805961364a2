# The public API of jaxhalo.catalog, loaded lazily by __init__.py (lazy_loader); one sorted block.
from . import cuts, kinematics, readers, structure
from .cuts import CutReport, L_SGR_PP21, SGR_ROTATION, chandra_selection, cut_quality, cut_r_gal, cut_sgr_angular_momentum, galactic_to_sagittarius, pp21_selection
from .kinematics import catalog_velocities
from .readers import read_catalog, read_peer_header, read_peer_transposed, write_catalog
from .structure import CatalogError, REQUIRED_COLUMNS, StarCatalog, to_table
