"""Catalogue cuts (quality, Galactocentric radius, Sagittarius) and the Chandra et al. / PP21 selections.

Every cut returns the kept catalogue and a :class:`CutReport` saying how many stars it removed and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ..constants import K_PM, K_PM_REFERENCE
from ..frames import SolarParameters, galactic_to_cartesian, spherical_velocity
from .structure import CatalogError, StarCatalog, describe_rows

__all__ = [
    "CutReport",
    "galactic_to_sagittarius",
    "SGR_ROTATION",
    "L_SGR_PP21",
    "cut_quality",
    "cut_r_gal",
    "cut_sgr_angular_momentum",
    "chandra_selection",
    "pp21_selection",
]


def _sgr_rotation() -> tuple[tuple[float, ...], ...]:
    """Galactic -> Sgr (Lambda, B) rotation of Majewski et al. (2003) as used by Law & Majewski
    (2010): Euler angles (phi, theta, psi) = (183.75, 76.54, 194.111534) deg (z-x-z, passive),
    then B flipped so that it is positive on the side of the stream's north pole. Hand-written
    (9 numbers) so the library does not need gala; the tests compare it with gala's
    ``SagittariusLaw10``."""

    def rz(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])

    def rx(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])

    d = math.pi / 180
    m = np.diag([1.0, 1.0, -1.0]) @ rz((180 + 14.111534) * d) @ rx((90 - 13.46) * d) @ rz((180 + 3.75) * d)
    return tuple(tuple(float(x) for x in row) for row in m)


#: Galactic -> Sagittarius (Law & Majewski 2010) rotation matrix (3, 3).
SGR_ROTATION: tuple[tuple[float, ...], ...] = _sgr_rotation()


def galactic_to_sagittarius(l: ArrayLike, b: ArrayLike) -> tuple[Array, Array]:
    """Sagittarius stream coordinates (Lambda in [0, 2 pi), B) [rad] of Galactic (l, b) [rad].

    The Law & Majewski (2010) / Majewski et al. (2003) frame, as in gala's
    ``SagittariusLaw10`` and the ``Sgr Lambda``/``Sgr Beta`` columns of the PP21 files.
    Pure JAX; broadcasts over (l, b).
    """
    v = galactic_to_cartesian(l, b) @ jnp.asarray(SGR_ROTATION).T
    lam = jnp.mod(jnp.arctan2(v[..., 1], v[..., 0]), 2 * jnp.pi)
    beta = jnp.arcsin(jnp.clip(v[..., 2], -1.0, 1.0))
    return lam, beta


@dataclass(frozen=True)
class CutReport:
    """What a cut did.

    Attributes
    ----------
    name : the cut.
    n_before, n_after : numbers of stars going in and out.
    removed_by : criterion -> number of stars failing it (a star can fail several).
    removed_indices : (n_before - n_after,) indices of the removed stars in the input catalogue.
    notes : where the quantities came from (catalogue columns or recomputed, solar parameters).
    """

    name: str
    n_before: int
    n_after: int
    removed_by: dict[str, int]
    removed_indices: np.ndarray
    notes: str = ""

    @property
    def n_removed(self) -> int:
        """Number of stars removed."""
        return self.n_before - self.n_after

    def __str__(self) -> str:
        parts = "; ".join(f"{k}: {v}" for k, v in self.removed_by.items())
        s = f"{self.name}: removed {self.n_removed} of {self.n_before} stars, {self.n_after} left ({parts})"
        return s + (f" [{self.notes}]" if self.notes else "")


def _apply(cat: StarCatalog, name: str, failures: dict[str, np.ndarray], notes: str = "",
           remove: np.ndarray | None = None) -> tuple[StarCatalog, CutReport]:
    """Remove the stars in ``remove`` (default: failing any criterion) and report."""
    n = len(cat)
    if remove is None:
        remove = np.zeros(n, bool)
        for f in failures.values():
            remove |= np.asarray(f, bool)
    report = CutReport(
        name=name,
        n_before=n,
        n_after=int(n - remove.sum()),
        removed_by={k: int(np.sum(v)) for k, v in failures.items()},
        removed_indices=np.flatnonzero(remove),
        notes=notes,
    )
    return cat.select(~remove), report


def cut_quality(
    cat: StarCatalog,
    max_v_los_err: float | None = 15.0,
    max_frac_distance_err: float | None = 0.25,
    max_velocity: float | None = 1000.0,
    velocity_frame: str = "galactocentric",
    solar: SolarParameters | None = None,
    k: float = K_PM,
) -> tuple[StarCatalog, CutReport]:
    """Quality cuts of Chandra et al. (2025) §2.3 (each disabled by passing None).

    Removes stars with v_los_err > ``max_v_los_err`` (15 km/s), distance_err / distance
    > ``max_frac_distance_err`` (0.25), or an "unphysical" radial or tangential velocity
    > ``max_velocity`` (1000 km/s) in absolute value. The paper does not say in which
    frame; by default (``velocity_frame="galactocentric"``) these are the
    Galactocentric v_r and v_t = sqrt(v_theta^2 + v_phi^2) computed with ``solar``
    (default Chandra et al.) and ``k``; ``"heliocentric"`` uses v_los and
    k d sqrt(mu_l*^2 + mu_b^2).

    Returns (new catalogue, :class:`CutReport`).
    """
    failures: dict[str, np.ndarray] = {}
    if max_v_los_err is not None:
        failures[f"v_los_err > {max_v_los_err:g} km/s"] = cat.v_los_err > max_v_los_err
    if max_frac_distance_err is not None:
        failures[f"distance_err/distance > {max_frac_distance_err:g}"] = (
            cat.distance_err / cat.distance > max_frac_distance_err
        )
    notes = ""
    if max_velocity is not None:
        if velocity_frame == "galactocentric":
            solar = SolarParameters() if solar is None else solar
            r, v = cat.galactocentric(solar, k)
            v_r, v_th, v_ph = (np.asarray(a) for a in spherical_velocity(r, v))
            v_t = np.hypot(v_th, v_ph)
            notes = f"velocities Galactocentric, solar={_solar_str(solar)}, k={k}"
        elif velocity_frame == "heliocentric":
            v_r = cat.v_los
            v_t = k * cat.distance * np.hypot(cat.pm_l, cat.pm_b)
            notes = f"velocities heliocentric, k={k}"
        else:
            raise ValueError(f"velocity_frame must be 'galactocentric' or 'heliocentric', got {velocity_frame!r}")
        failures[f"|v_r| > {max_velocity:g} km/s"] = np.abs(v_r) > max_velocity
        failures[f"v_t > {max_velocity:g} km/s"] = v_t > max_velocity
    return _apply(cat, "quality (Chandra+25 §2.3)", failures, notes)


def _solar_str(solar: SolarParameters) -> str:
    v = np.asarray(solar.v_sun)
    return (f"(d={float(solar.galcen_distance):g} kpc, z={float(solar.z_sun):g} kpc, "
            f"v=({v[0]:g}, {v[1]:g}, {v[2]:g}) km/s, tilt={solar.tilt})")


def cut_r_gal(
    cat: StarCatalog,
    r_min: float | None = 40.0,
    r_max: float | None = 160.0,
    solar: SolarParameters | None = None,
    use_catalog_xyz: bool = False,
) -> tuple[StarCatalog, CutReport]:
    """Keep r_min < r_gal < r_max (strict; either bound None to disable).

    r_gal is |cat.xyz| when ``use_catalog_xyz`` (as PP21/YPP24 did), otherwise it is
    recomputed from (l, b, distance) with ``solar`` (default Chandra et al.: the
    Chandra window is 40-160 kpc, PP21's 40-150 kpc).
    """
    r = cat.r_gal(solar, use_catalog_xyz)
    failures = {}
    if r_min is not None:
        failures[f"r_gal <= {r_min:g} kpc"] = r <= r_min
    if r_max is not None:
        failures[f"r_gal >= {r_max:g} kpc"] = r >= r_max
    notes = "r_gal from catalogue xyz" if use_catalog_xyz else (
        f"r_gal from (l, b, d), solar={_solar_str(SolarParameters() if solar is None else solar)}")
    return _apply(cat, "r_gal window", failures, notes)


#: Sagittarius angular momentum (kpc km/s) of the PP21 cut.
L_SGR_PP21: tuple[float, float, float] = (605.0, -4515.0, -1267.0)


def cut_sgr_angular_momentum(
    cat: StarCatalog,
    scheme: str = "PP21",
    l_sgr: Sequence[float] = L_SGR_PP21,
    radius: float = 3000.0,
    max_abs_beta_deg: float = 20.0,
    source: str = "auto",
    solar: SolarParameters | None = None,
    k: float | None = None,
    beta_source: str = "auto",
) -> tuple[StarCatalog, CutReport]:
    """Sagittarius angular-momentum cut (REFLEX_MODEL.md §7).

    A star is *in the ball* when |L - l_sgr| < ``radius`` (kpc km/s), L = r x v
    (Galactocentric). ``scheme="PP21"`` removes in-ball stars with |B_Sgr| <
    ``max_abs_beta_deg``; ``scheme="YPP24"`` removes every in-ball star.

    Parameters
    ----------
    source : where (r, v) come from. ``"catalog"``: ``cat.xyz`` and
        ``cat.extra['vxyz']`` (what PP21/YPP24 did); ``"observables"``: recomputed from
        (l, b, d, v_los, mu) with ``solar`` (default ``SolarParameters.reference()``, the
        reflexcalc Sun) and ``k`` (default ``K_PM_REFERENCE``); ``"auto"``: the catalogue's
        when both are present, else recomputed.
    beta_source : B_Sgr for PP21. ``"catalog"``: ``cat.extra['sgr_beta']`` (rad; the
        PP21 files' ``Sgr Beta`` column); ``"computed"``: :func:`galactic_to_sagittarius`
        (Law & Majewski 2010 frame, which the PP21 column follows to < 0.1 deg);
        ``"auto"``: the column when present, else computed.

    Returns
    -------
    (new catalogue, :class:`CutReport` whose notes name both sources).
    """
    scheme_u = scheme.upper()
    if scheme_u not in ("PP21", "YPP24"):
        raise ValueError(f"scheme must be 'PP21' or 'YPP24', got {scheme!r}")
    if source not in ("auto", "catalog", "observables"):
        raise ValueError(f"source must be 'auto', 'catalog' or 'observables', got {source!r}")
    have_cat = cat.xyz is not None and "vxyz" in cat.extra
    if source == "catalog" and not have_cat:
        raise CatalogError("source='catalog' needs column 'xyz' and extra column 'vxyz'")
    if source == "catalog" or (source == "auto" and have_cat):
        r, v = np.asarray(cat.xyz), np.asarray(cat.extra["vxyz"], dtype=np.float64)
        notes = ["L from catalogue xyz, vxyz"]
    else:
        solar = SolarParameters.reference() if solar is None else solar
        k = K_PM_REFERENCE if k is None else k
        r, v = (np.asarray(a) for a in cat.galactocentric(solar, k))
        notes = [f"L from observables, solar={_solar_str(solar)}, k={k}"]
    L = np.cross(r, v)
    bad = ~np.all(np.isfinite(L), axis=1)
    if bad.any():
        raise CatalogError(f"column 'vxyz' (or 'xyz') gives a non-finite angular momentum in {describe_rows(bad)}")
    in_ball = np.linalg.norm(L - np.asarray(l_sgr, dtype=np.float64), axis=1) < radius
    failures = {f"|L - L_Sgr| < {radius:g}": in_ball}
    if scheme_u == "PP21":
        if beta_source not in ("auto", "catalog", "computed"):
            raise ValueError(f"beta_source must be 'auto', 'catalog' or 'computed', got {beta_source!r}")
        if beta_source == "catalog" and "sgr_beta" not in cat.extra:
            raise CatalogError("beta_source='catalog' needs extra column 'sgr_beta'")
        if beta_source == "catalog" or (beta_source == "auto" and "sgr_beta" in cat.extra):
            beta = np.asarray(cat.extra["sgr_beta"], dtype=np.float64)
            notes.append("B_Sgr from catalogue column sgr_beta")
        else:
            beta = np.asarray(galactic_to_sagittarius(cat.l, cat.b)[1])
            notes.append("B_Sgr computed (Law & Majewski 2010 frame)")
        near_plane = np.abs(beta) < np.deg2rad(max_abs_beta_deg)
        failures[f"|B_Sgr| < {max_abs_beta_deg:g} deg"] = near_plane
        remove = in_ball & near_plane
    else:
        remove = in_ball
    return _apply(cat, f"Sgr angular-momentum cut ({scheme_u})", failures, "; ".join(notes), remove=remove)


def chandra_selection(
    cat: StarCatalog,
    r_min: float = 40.0,
    r_max: float = 160.0,
    solar: SolarParameters | None = None,
    **quality_kwargs: Any,
) -> tuple[StarCatalog, list[CutReport]]:
    """Chandra et al. (2025) §2.3 quality cuts (:func:`cut_quality`) then the r_gal window
    40 < r_gal < 160 kpc, both with ``solar`` (default Chandra et al.). Their Sgr and
    substructure excisions need external models and are not applied here.

    Returns (catalogue, [quality report, r_gal report])."""
    cat, rep_q = cut_quality(cat, solar=solar, **quality_kwargs)
    cat, rep_r = cut_r_gal(cat, r_min, r_max, solar=solar)
    return cat, [rep_q, rep_r]


def pp21_selection(
    cat: StarCatalog, r_min: float = 40.0, r_max: float = 150.0, scheme: str = "PP21"
) -> tuple[StarCatalog, list[CutReport]]:
    """The PP21 sample selection: r_min < |xyz| < r_max from the catalogue positions, then
    the PP21 (or YPP24) Sgr angular-momentum cut from the catalogue phase space.

    Returns (catalogue, [r_gal report, Sgr report])."""
    cat, rep_r = cut_r_gal(cat, r_min, r_max, use_catalog_xyz=True)
    cat, rep_s = cut_sgr_angular_momentum(cat, scheme=scheme, source="catalog")
    return cat, [rep_r, rep_s]
