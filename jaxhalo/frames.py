"""Coordinate frames: heliocentric <-> Galactocentric, sky bases, Magellanic Stream.

All functions are pure JAX, broadcast over leading axes and are differentiable.

Conventions
-----------
* Angles are **radians**; positions kpc; velocities km/s; proper motions mas/yr.
* Heliocentric Cartesian vectors use Galactic axes: +x towards (l, b) = (0, 0),
  +y towards l = 90 deg, +z towards the north Galactic pole.
* The Galactocentric frame is right-handed: +x from the Sun towards the Galactic
  centre, +y in the direction of Galactic rotation at the Sun, +z towards the NGP.
  The Sun sits at negative x.
* Spherical velocity components (``spherical_velocity``): colatitude ``theta`` is
  measured from +z, so **v_theta > 0 points south** (towards increasing theta), and
  ``phi = atan2(y, x)`` so **v_phi > 0 is retrograde** (the Sun has v_phi < 0).
  Li et al. (2025) define V_theta > 0 towards the north (flipped) and V_phi < 0 as
  prograde (the same as here); use ``flip_li=True`` to get theirs.
* Proper motions are (mu_l*, mu_b) with mu_l* = mu_l cos b.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from .constants import K_PM
from .jax_utils import unit_converter
from .units import KM_S, KPC

__all__ = [
    "SolarParameters",
    "galactic_to_cartesian",
    "cartesian_to_galactic",
    "sky_basis",
    "heliocentric_to_galactocentric",
    "galactocentric_to_heliocentric",
    "observables_to_galactocentric",
    "galactocentric_to_observables",
    "velocity_to_observables",
    "observables_to_velocity",
    "spherical_basis",
    "spherical_velocity",
    "li_velocity_components",
    "galactic_to_magellanic",
    "magellanic_to_galactic",
    "MS_ROTATION",
    "proper_motion_covariance",
    "tangential_velocity_covariance",
    "apex_vector",
    "cos_from_sin",
    "APEX_COS_MIN",
    "Observables",
]


class SolarParameters(eqx.Module):
    """Position and velocity of the Sun relative to the Galactic centre.

    Attributes
    ----------
    galcen_distance : float
        Sun - Galactic-centre distance d (kpc).
    z_sun : float
        Height of the Sun above the Galactic mid-plane (kpc).
    v_sun : Array, shape (3,)
        Solar velocity in the Galactocentric frame (km/s).
    tilt : bool (static)
        If True (default) the frame follows ``astropy.coordinates.Galactocentric``:
        the heliocentric vector is translated by d along the Galactic centre
        direction and then rotated about y by asin(z_sun / d), so the Sun ends at
        (-sqrt(d^2 - z_sun^2), 0, z_sun). If False (the reflexcalc / PP21 reference
        convention) the transformation is a pure translation, with the Sun at
        (-d, 0, z_sun).

    The default values are those of Chandra et al. (2025): d = 8.122 kpc,
    z_sun = 20.8 pc, v_sun = (12.9, 245.6, 7.78) km/s, tilted. Each may be given as an astropy
    Quantity (converted to kpc, km/s). :meth:`from_galactocentric` and :meth:`to_galactocentric`
    convert from and to an ``astropy.coordinates.Galactocentric`` frame.
    """

    galcen_distance: Array = eqx.field(converter=unit_converter(KPC, "galcen_distance"), default=8.122)
    z_sun: Array = eqx.field(converter=unit_converter(KPC, "z_sun"), default=0.0208)
    v_sun: Array = eqx.field(converter=unit_converter(KM_S, "v_sun"), default=(12.9, 245.6, 7.78))
    tilt: bool = eqx.field(static=True, default=True)

    #: Largest angle (rad) between the axes of a given astropy frame and jaxhalo's for
    #: :meth:`from_galactocentric` to accept it silently (1e-10 rad = 1e-9 kpc at 10 kpc).
    AXES_TOLERANCE: ClassVar[float] = 1e-10

    def to_galactocentric(self):
        """This frame as an ``astropy.coordinates.Galactocentric`` frame.

        jaxhalo's Galactocentric axes have the Galactic centre exactly at (l, b) = (0, 0) and +z
        towards the north Galactic pole, so the astropy frame gets ``galcen_coord`` = Galactic
        (0, 0) (in ICRS) and the ``roll`` that puts its +z on the NGP (astropy's default Sgr A*
        centre and zero roll turn the axes by ~2e-6 rad); ``galcen_distance``, ``z_sun`` and
        ``galcen_v_sun`` are this object's. jaxhalo's transforms with these parameters then agree
        with astropy's to rounding (tests/test_frames.py). Needs concrete (not traced) values and
        ``tilt=True``: the untilted reference frame (a pure translation) has no astropy equivalent
        (``ValueError``).
        """
        import astropy.coordinates as coord  # deferred: astropy loads only when a frame is converted
        import astropy.units as u
        import numpy as np

        if not self.tilt:
            raise ValueError("SolarParameters(tilt=False) is a pure translation (the reflexcalc convention), which "
                             "astropy's Galactocentric frame (always rotated by z_sun) cannot represent")
        d = float(self.galcen_distance)
        kw = dict(
            galcen_coord=coord.Galactic(l=0 * u.deg, b=0 * u.deg).transform_to(coord.ICRS()),
            galcen_distance=d * u.kpc,
            z_sun=float(self.z_sun) * u.kpc,
            galcen_v_sun=coord.CartesianDifferential(np.asarray(self.v_sun, dtype=float) * u.km / u.s),
        )
        # The roll about x that takes the NGP to +z, found with z_sun = 0 (the tilt about y comes after it).
        probe = coord.Galactocentric(roll=0 * u.rad, **{**kw, "z_sun": 0 * u.kpc})
        ngp = coord.SkyCoord(l=0 * u.deg, b=90 * u.deg, distance=1 * u.kpc, frame="galactic").transform_to(probe)
        v = ngp.cartesian.xyz.to_value(u.kpc) + np.array([d, 0.0, 0.0])
        return coord.Galactocentric(roll=math.atan2(v[1], v[2]) * u.rad, **kw)

    @classmethod
    def from_galactocentric(cls, frame=None, strict: bool = False) -> "SolarParameters":
        """Solar parameters from an ``astropy.coordinates.Galactocentric`` frame (default: astropy's
        current defaults, ``Galactocentric()``).

        Takes ``galcen_distance`` (kpc), ``z_sun`` (kpc) and ``galcen_v_sun`` (km/s); the result is
        tilted (astropy's convention). jaxhalo's axes put the Galactic centre at (l, b) = (0, 0) with
        +z on the NGP (:meth:`to_galactocentric`); a frame whose ``galcen_coord`` or ``roll`` turns its
        axes by more than :data:`AXES_TOLERANCE` rad from those (astropy's default Sgr A* centre and
        zero roll do, by 2e-6 rad, i.e. ~2e-5 kpc at 10 kpc) gives a ``UserWarning`` stating the angle, or, with
        ``strict=True``, a ``ValueError``: jaxhalo's transforms then differ from that frame's by that
        rotation.
        """
        import warnings  # deferred: astropy loads only when a frame is converted

        import astropy.coordinates as coord
        import astropy.units as u
        import numpy as np

        frame = coord.Galactocentric() if frame is None else frame
        if isinstance(frame, coord.SkyCoord):
            frame = frame.frame
        if not isinstance(frame, coord.Galactocentric):
            raise TypeError(f"from_galactocentric needs an astropy Galactocentric frame, got {type(frame).__name__}")
        v_sun = frame.galcen_v_sun  # a CartesianDifferential, or a CartesianRepresentation as astropy stores it
        v_sun = v_sun.d_xyz if hasattr(v_sun, "d_xyz") else v_sun.xyz
        out = cls(frame.galcen_distance.to_value(u.kpc), frame.z_sun.to_value(u.kpc), v_sun.to_value(u.km / u.s),
                  tilt=True)
        # Angle between the two frames' axes: heliocentric probes along the Galactic axes, in both.
        d = float(out.galcen_distance)
        probe = coord.SkyCoord(l=[0.0, 90.0, 0.0] * u.deg, b=[0.0, 0.0, 90.0] * u.deg, distance=d * u.kpc,
                               frame="galactic")
        a = probe.transform_to(frame).cartesian.xyz.to_value(u.kpc)
        b = probe.transform_to(out.to_galactocentric()).cartesian.xyz.to_value(u.kpc)
        angle = float(np.max(np.linalg.norm(a - b, axis=0)) / d)
        if angle > cls.AXES_TOLERANCE:
            msg = (f"the Galactocentric frame's axes (galcen_coord {frame.galcen_coord}, roll {frame.roll}) are turned by "
                   f"{angle:.3g} rad from jaxhalo's (Galactic centre at (l, b) = (0, 0), +z on the NGP); "
                   "jaxhalo's transforms with these SolarParameters differ from this frame's by that rotation "
                   "(SolarParameters.to_galactocentric() gives the matching astropy frame)")
            if strict:
                raise ValueError(msg)
            warnings.warn(msg, UserWarning, stacklevel=2)
        return out

    @classmethod
    def chandra(cls) -> "SolarParameters":
        """Chandra et al. (2025) / DESIGN defaults (astropy-like tilted frame)."""
        return cls()

    @classmethod
    def reference(cls) -> "SolarParameters":
        """The reflexcalc (YPP24) / PP21 likelihood code: Sun at (-8.3, 0, 0.02) kpc,
        v_sun = (11.1, 244.24, 7.25) km/s, no tilt."""
        return cls(8.3, 0.02, (11.1, 244.24, 7.25), tilt=False)

    @classmethod
    def brooks(cls) -> "SolarParameters":
        """Brooks et al. (2025, 2026): d = 8.3 kpc, v_sun = (11.1, 244.24, 7.24) km/s."""
        return cls(8.3, 0.0208, (11.1, 244.24, 7.24), tilt=True)

    @property
    def rotation(self) -> Array:
        """Rotation (3, 3) applied after the translation (identity when untilted)."""
        if not self.tilt:
            return jnp.eye(3, dtype=jnp.result_type(self.z_sun, float))
        s = self.z_sun / self.galcen_distance
        c = jnp.sqrt(1.0 - s * s)
        zero, one = jnp.zeros_like(s), jnp.ones_like(s)
        return jnp.array([[c, zero, s], [zero, one, zero], [-s, zero, c]])

    @property
    def position(self) -> Array:
        """Galactocentric position of the Sun (kpc), shape (3,)."""
        d, z = self.galcen_distance, self.z_sun
        if not self.tilt:
            return jnp.stack([-d, jnp.zeros_like(d), z])
        return jnp.stack([-jnp.sqrt(d * d - z * z), jnp.zeros_like(d), z])


def galactic_to_cartesian(l: ArrayLike, b: ArrayLike, d: ArrayLike = 1.0) -> Array:
    """Heliocentric Cartesian vector (..., 3) in kpc from Galactic (l, b) [rad] and distance d [kpc]."""
    l, b, d = jnp.asarray(l), jnp.asarray(b), jnp.asarray(d)
    cb = jnp.cos(b)
    return jnp.stack([d * cb * jnp.cos(l), d * cb * jnp.sin(l), d * jnp.sin(b)], axis=-1)


def cartesian_to_galactic(xyz: ArrayLike) -> tuple[Array, Array, Array]:
    """Inverse of :func:`galactic_to_cartesian`: returns (l in (-pi, pi], b, d) for xyz (..., 3)."""
    xyz = jnp.asarray(xyz)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    R = jnp.hypot(x, y)
    return jnp.arctan2(y, x), jnp.arctan2(z, R), jnp.sqrt(R * R + z * z)


def sky_basis(l: ArrayLike, b: ArrayLike) -> tuple[Array, Array, Array]:
    """Unit vectors (e_los, e_l, e_b), each (..., 3), at Galactic (l, b) [rad].

    e_l points towards increasing l and e_b towards increasing b (north).
    """
    l, b = jnp.asarray(l), jnp.asarray(b)
    cl, sl, cb, sb = jnp.cos(l), jnp.sin(l), jnp.cos(b), jnp.sin(b)
    e_los = jnp.stack([cb * cl, cb * sl, sb], axis=-1)
    e_l = jnp.stack([-sl, cl, jnp.zeros_like(cl)], axis=-1)
    e_b = jnp.stack([-sb * cl, -sb * sl, cb], axis=-1)
    return e_los, e_l, e_b


def heliocentric_to_galactocentric(
    xyz: ArrayLike, v_xyz: ArrayLike | None = None, solar: SolarParameters | None = None
) -> tuple[Array, Array | None]:
    """Heliocentric Cartesian (Galactic axes) to Galactocentric.

    Parameters
    ----------
    xyz : (..., 3) heliocentric position, kpc.
    v_xyz : (..., 3) heliocentric velocity relative to the Sun, km/s, or None.
    solar : solar parameters (default :class:`SolarParameters`).

    Returns
    -------
    (r_gal, v_gal): (..., 3) kpc and (..., 3) km/s (``None`` if ``v_xyz`` is None).
    """
    solar = SolarParameters() if solar is None else solar
    xyz = jnp.asarray(xyz)
    R = solar.rotation
    if solar.tilt:
        shifted = xyz - jnp.stack([solar.galcen_distance, 0.0 * solar.galcen_distance, 0.0 * solar.galcen_distance])
        r_gal = shifted @ R.T
    else:
        r_gal = xyz + solar.position
    if v_xyz is None:
        return r_gal, None
    v_gal = jnp.asarray(v_xyz) @ R.T + solar.v_sun
    return r_gal, v_gal


def galactocentric_to_heliocentric(
    r_gal: ArrayLike, v_gal: ArrayLike | None = None, solar: SolarParameters | None = None
) -> tuple[Array, Array | None]:
    """Inverse of :func:`heliocentric_to_galactocentric` (same units and shapes)."""
    solar = SolarParameters() if solar is None else solar
    r_gal = jnp.asarray(r_gal)
    R = solar.rotation
    if solar.tilt:
        xyz = r_gal @ R + jnp.stack([solar.galcen_distance, 0.0 * solar.galcen_distance, 0.0 * solar.galcen_distance])
    else:
        xyz = r_gal - solar.position
    if v_gal is None:
        return xyz, None
    v_xyz = (jnp.asarray(v_gal) - solar.v_sun) @ R
    return xyz, v_xyz


class Observables(NamedTuple):
    """Heliocentric observables: l, b [rad], d [kpc], v_los [km/s], pm_l* and pm_b [mas/yr]."""

    l: Array
    b: Array
    d: Array
    v_los: Array
    pm_l: Array
    pm_b: Array


def velocity_to_observables(
    v_xyz: ArrayLike, l: ArrayLike, b: ArrayLike, d: ArrayLike, k: float = K_PM
) -> tuple[Array, Array, Array]:
    """Project heliocentric Cartesian velocity (..., 3) [km/s] onto (v_los [km/s], mu_l* , mu_b [mas/yr])."""
    v_xyz = jnp.asarray(v_xyz)
    e_los, e_l, e_b = sky_basis(l, b)
    kd = k * jnp.asarray(d)
    return (
        jnp.sum(v_xyz * e_los, -1),
        jnp.sum(v_xyz * e_l, -1) / kd,
        jnp.sum(v_xyz * e_b, -1) / kd,
    )


def observables_to_velocity(
    l: ArrayLike, b: ArrayLike, d: ArrayLike, v_los: ArrayLike, pm_l: ArrayLike, pm_b: ArrayLike, k: float = K_PM
) -> Array:
    """Heliocentric Cartesian velocity (..., 3) [km/s] from the observables (inverse of the above)."""
    e_los, e_l, e_b = sky_basis(l, b)
    kd = k * jnp.asarray(d)
    return (
        jnp.asarray(v_los)[..., None] * e_los
        + (kd * jnp.asarray(pm_l))[..., None] * e_l
        + (kd * jnp.asarray(pm_b))[..., None] * e_b
    )


def observables_to_galactocentric(
    l: ArrayLike,
    b: ArrayLike,
    d: ArrayLike,
    v_los: ArrayLike,
    pm_l: ArrayLike,
    pm_b: ArrayLike,
    solar: SolarParameters | None = None,
    k: float = K_PM,
) -> tuple[Array, Array]:
    """Galactocentric position (..., 3) [kpc] and velocity (..., 3) [km/s] from heliocentric observables."""
    xyz = galactic_to_cartesian(l, b, d)
    v = observables_to_velocity(l, b, d, v_los, pm_l, pm_b, k)
    return heliocentric_to_galactocentric(xyz, v, solar)


def galactocentric_to_observables(
    r_gal: ArrayLike, v_gal: ArrayLike, solar: SolarParameters | None = None, k: float = K_PM
) -> Observables:
    """Heliocentric observables of Galactocentric phase-space points (l in (-pi, pi])."""
    xyz, v = galactocentric_to_heliocentric(r_gal, v_gal, solar)
    l, b, d = cartesian_to_galactic(xyz)
    v_los, pm_l, pm_b = velocity_to_observables(v, l, b, d, k)
    return Observables(l, b, d, v_los, pm_l, pm_b)


def spherical_basis(r_gal: ArrayLike) -> tuple[Array, Array, Array]:
    """Galactocentric spherical unit vectors (e_r, e_theta, e_phi), each (..., 3).

    theta is the colatitude from +z (e_theta points south), phi = atan2(y, x).
    """
    r_gal = jnp.asarray(r_gal)
    x, y, z = r_gal[..., 0], r_gal[..., 1], r_gal[..., 2]
    R = jnp.hypot(x, y)
    r = jnp.sqrt(R * R + z * z)
    phi = jnp.arctan2(y, x)
    ct, st = z / r, R / r
    cp, sp = jnp.cos(phi), jnp.sin(phi)
    e_r = jnp.stack([st * cp, st * sp, ct], -1)
    e_theta = jnp.stack([ct * cp, ct * sp, -st], -1)
    e_phi = jnp.stack([-sp, cp, jnp.zeros_like(cp)], -1)
    return e_r, e_theta, e_phi


def spherical_velocity(r_gal: ArrayLike, v_gal: ArrayLike, flip_li: bool = False) -> tuple[Array, Array, Array]:
    """Galactocentric spherical velocity components (v_r, v_theta, v_phi) in km/s, each (...,).

    Signs as in the module docstring (v_theta > 0 southwards, v_phi > 0 retrograde).
    ``flip_li=True`` returns Li et al. (2025)'s convention (their footnote 7): V_theta > 0
    northwards (flipped), V_phi < 0 prograde (the same sign as jaxhalo's v_phi).
    """
    v_gal = jnp.asarray(v_gal)
    e_r, e_t, e_p = spherical_basis(r_gal)
    v_r = jnp.sum(v_gal * e_r, -1)
    v_t = jnp.sum(v_gal * e_t, -1)
    v_p = jnp.sum(v_gal * e_p, -1)
    if flip_li:
        return v_r, -v_t, v_p
    return v_r, v_t, v_p


def _rot(angle: float, axis: int) -> "list[list[float]]":
    """Passive rotation matrix about a coordinate axis (astropy's ``rotation_matrix`` convention)."""
    c, s = math.cos(angle), math.sin(angle)
    if axis == 2:  # z
        return [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]
    if axis == 1:  # y
        return [[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]]
    raise ValueError(axis)


def _matmul(a, b):
    return [[sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


def _ms_rotation() -> "list[list[float]]":
    """Galactic -> Magellanic Stream (Nidever et al. 2008) rotation matrix.

    The MS pole is at Galactic (l, b) = (188.5, -7.5) deg; the longitude origin
    L_MS = 0 is placed at the LMC-centred point (l, b) = (280.47, -32.75) deg. The
    third Euler angle is solved here from that origin, not hard-coded.
    """
    lp, bp = 188.5 * math.pi / 180, -7.5 * math.pi / 180
    m = _matmul(_rot(math.pi / 2 - bp, 1), _rot(lp, 2))
    l0, b0 = 280.47 * math.pi / 180, -32.75 * math.pi / 180
    v = [math.cos(b0) * math.cos(l0), math.cos(b0) * math.sin(l0), math.sin(b0)]
    w = [sum(m[i][k] * v[k] for k in range(3)) for i in range(3)]
    psi = math.atan2(w[1], w[0])
    return _matmul(_rot(psi, 2), m)


#: Galactic -> Magellanic Stream rotation matrix (3, 3), as a nested tuple of floats.
MS_ROTATION: tuple[tuple[float, ...], ...] = tuple(tuple(row) for row in _ms_rotation())


def galactic_to_magellanic(l: ArrayLike, b: ArrayLike) -> tuple[Array, Array]:
    """Galactic (l, b) [rad] to Magellanic Stream (L_MS in (-pi, pi], B_MS) [rad]."""
    v = galactic_to_cartesian(l, b) @ jnp.asarray(MS_ROTATION).T
    L, B, _ = cartesian_to_galactic(v)
    return L, B


def magellanic_to_galactic(L: ArrayLike, B: ArrayLike) -> tuple[Array, Array]:
    """Magellanic Stream (L_MS, B_MS) [rad] to Galactic (l in (-pi, pi], b) [rad]."""
    v = galactic_to_cartesian(L, B) @ jnp.asarray(MS_ROTATION)
    l, b, _ = cartesian_to_galactic(v)
    return l, b


#: Floor on cos(latitude) in :func:`cos_from_sin` and hence :func:`apex_vector` (rad: 0.2 arcsec).
#: cos(lat) = sqrt(1 - s^2) has derivative -s / cos(lat) in s = sin(lat), which is unbounded at the
#: poles (1.5e-8 at s = 1 - 1.1e-16, the last float64 below 1, gave likelihood gradients of 4e9). With
#: the floor |d cos / d s| <= 1 / APEX_COS_MIN = 1e6 everywhere, and the value moves only where
#: |s| > 1 - 5e-13, by at most 1e-6 in cos(lat): an apex <= 0.2 arcsec off the pole, a travel
#: vector off by <= 1e-6 V (1.5e-4 km/s at V = 150 km/s).
APEX_COS_MIN = 1e-6


def cos_from_sin(sin_lat: ArrayLike) -> Array:
    """cos(lat) >= :data:`APEX_COS_MIN` from s = sin(lat) (shapes as ``sin_lat``), pole-safe.

    Computed as sqrt(max((1 - s)(1 + s), APEX_COS_MIN^2)): the product form keeps full relative
    accuracy next to the poles, and the floor keeps the value and every derivative finite and the
    first derivative bounded (|d/ds| <= 1 / APEX_COS_MIN) on all of s in [-1, 1] and beyond
    (|s| > 1, e.g. a continuity model extrapolating sin(lat) past an anchor, gives the floor).
    """
    s = jnp.asarray(sin_lat)
    return jnp.sqrt(jnp.maximum((1.0 - s) * (1.0 + s), APEX_COS_MIN**2))


def apex_vector(lon: ArrayLike, sin_lat: ArrayLike) -> Array:
    """Unit vector (..., 3) towards (lon, lat) given lon [rad] and sin(lat).

    cos(lat) comes from :func:`cos_from_sin`: finite, with bounded gradient, at and next to the
    poles (within 0.2 arcsec of a pole the vector is tilted by at most 1e-6 rad; see
    :data:`APEX_COS_MIN`).
    """
    lon, s = jnp.asarray(lon), jnp.asarray(sin_lat)
    c = cos_from_sin(s)
    return jnp.stack([c * jnp.cos(lon), c * jnp.sin(lon), s], axis=-1)


def proper_motion_covariance(pm_l_err: ArrayLike, pm_b_err: ArrayLike, rho: ArrayLike = 0.0) -> Array:
    """2x2 covariance (..., 2, 2) of (mu_l*, mu_b) from their 1-sigma errors and correlation rho."""
    el, eb, rho = jnp.asarray(pm_l_err), jnp.asarray(pm_b_err), jnp.asarray(rho)
    off = rho * el * eb
    return jnp.stack([jnp.stack([el * el, off], -1), jnp.stack([off, eb * eb], -1)], -2)


def tangential_velocity_covariance(
    d: ArrayLike, d_err: ArrayLike, pm: ArrayLike, pm_cov: ArrayLike, k: float = K_PM
) -> Array:
    """Covariance (..., 2, 2) [km^2/s^2] of v_t = k d mu, to first order in the errors.

    C_vt = k^2 (d^2 C_mu + sigma_d^2 mu mu^T): the distance error is fully
    correlated between the two components.

    Parameters
    ----------
    d, d_err : (...,) distance and its 1-sigma error, kpc.
    pm : (..., 2) proper motion (mu_l*, mu_b), mas/yr.
    pm_cov : (..., 2, 2) proper-motion covariance, (mas/yr)^2.
    """
    d, d_err, pm = jnp.asarray(d), jnp.asarray(d_err), jnp.asarray(pm)
    outer = pm[..., :, None] * pm[..., None, :]
    return k**2 * (d[..., None, None] ** 2 * jnp.asarray(pm_cov) + d_err[..., None, None] ** 2 * outer)


def li_velocity_components(r_gal: ArrayLike, v_gal: ArrayLike) -> tuple[Array, Array, Array]:
    """(V_r, V_phi, V_theta) in km/s in Li et al.'s convention from Galactocentric (..., 3).

    V_r > 0 outwards, V_phi < 0 prograde, V_theta > 0 towards the north Galactic pole
    (Li et al. footnote 7); see the module docstring for the mapping.
    """
    v_r, v_theta, v_phi = spherical_velocity(r_gal, v_gal)
    return v_r, v_phi, -v_theta
