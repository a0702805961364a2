"""Star catalogues: a validated structure of arrays, readers, quality and Sagittarius cuts.

The :class:`StarCatalog` container holds one array per quantity, in jaxhalo's
internal units (angles in radians, kpc, km/s, mas/yr). Readers accept astropy
Tables (ECSV, FITS, CSV, Parquet) and the two public layouts of the PP21/YPP24
reflex-motion data (see ``shared/data/peers/README.md``).

Validation
----------
Every catalogue is checked when it is built (and again by the readers, which can
name the file's own column): a missing column, NaN or inf, a non-positive
distance or error, |rho| >= 1, |b| > 90 deg, a shape mismatch or an incompatible
unit raises :class:`CatalogError`, whose message names the column and the first
offending row indices (0-based) with their total count. Nothing is dropped
silently: stars leave a catalogue only through the cut functions below, each of
which returns a :class:`CutReport` saying how many stars it removed and why.

Cuts
----
* :func:`cut_quality` -- Chandra et al. (2025) §2.3: RV error > 15 km/s, fractional
  distance error > 25 %, unphysical radial or tangential velocity > 1000 km/s.
* :func:`cut_r_gal` -- Galactocentric radius window (Chandra: 40 < r_gal < 160 kpc;
  PP21: 40 < r_gal < 150 kpc).
* :func:`cut_sgr_angular_momentum` -- the PP21 Sagittarius angular-momentum ball
  (|L - L_Sgr| < 3000 kpc km/s and |B_Sgr| < 20 deg) or the YPP24 variant (every
  star in the ball).
* :func:`chandra_selection`, :func:`pp21_selection` chain them.

Modules
-------
* :mod:`~jaxhalo.catalog.structure` -- :class:`StarCatalog`, :class:`CatalogError`, validation.
* :mod:`~jaxhalo.catalog.readers` -- :func:`read_catalog`, the peer layouts, :func:`write_catalog`.
* :mod:`~jaxhalo.catalog.cuts` -- the cuts and selections with their :class:`CutReport`.
* :mod:`~jaxhalo.catalog.checks` -- whether a catalogue can support a fit (2 stars per parameter),
  plausible units, duplicates; NumPy only, run by the command line before JAX loads.
* :mod:`~jaxhalo.catalog.kinematics` -- Galactocentric velocities with propagated errors.
* :mod:`~jaxhalo.catalog.skycoord` -- :func:`catalog_from_skycoord`, :func:`catalog_to_skycoord`: from and to
  astropy ``SkyCoord`` (any frame in; Galactic, or any frame, out).
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
