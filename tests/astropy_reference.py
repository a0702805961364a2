"""Independent reference helpers built on astropy, shared by the tests."""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import numpy as np

from jaxhalo import frames


def astropy_galactocentric(solar: frames.SolarParameters) -> coord.Galactocentric:
    """astropy Galactocentric with axes aligned to Galactic (l, b) = (0, 0) and the NGP.

    astropy's default galcen_coord is Sgr A*, which is not at (l, b) = (0, 0); we
    put it there and solve the roll angle that makes +z the NGP exactly.
    """
    gc = coord.Galactic(l=0 * u.deg, b=0 * u.deg).transform_to(coord.ICRS())
    kw = dict(
        galcen_coord=gc,
        galcen_distance=float(solar.galcen_distance) * u.kpc,
        z_sun=float(solar.z_sun) * u.kpc,
        galcen_v_sun=coord.CartesianDifferential(np.asarray(solar.v_sun) * u.km / u.s),
    )
    probe = coord.Galactocentric(roll=0 * u.rad, **{**kw, "z_sun": 0 * u.kpc})
    ngp = coord.SkyCoord(l=0 * u.deg, b=90 * u.deg, distance=1 * u.kpc, frame="galactic").transform_to(probe)
    v = ngp.cartesian.xyz.to_value(u.kpc) + np.array([float(solar.galcen_distance), 0, 0])
    roll = np.arctan2(v[1], v[2])
    return coord.Galactocentric(roll=roll * u.rad, **kw)


