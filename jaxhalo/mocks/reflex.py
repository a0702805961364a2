"""Mock catalogues drawn from the reflex model itself, with realistic sky, distances and errors.

Used for the bundled example catalogue, for coverage tests and for benchmarks. The
generative process is exactly the model of :mod:`jaxhalo.likelihoods.reflex` evaluated at
each star's *true* position, with the intrinsic dispersions applied in the heliocentric
(los, l, b) frame and Gaussian measurement errors added afterwards (distance, v_los, and
correlated proper motions). The catalogue distance is the noisy one, so the first-order
distance-error treatment of the likelihood is tested as it is used on real data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..catalog.structure import StarCatalog
from ..constants import K_PM
from ..frames import SolarParameters, cartesian_to_galactic, galactic_to_magellanic, galactocentric_to_heliocentric
from ..likelihoods.reflex import ReflexData, ReflexModel, reflex_mean_observables

__all__ = ["ErrorModel", "make_reflex_mock", "default_truth", "sample_halo_positions"]


@dataclass(frozen=True)
class ErrorModel:
    """Per-star measurement errors, each drawn uniformly in its range.

    frac_distance : fractional distance error sigma_d / d.
    v_los : v_los error (km/s).
    pm : proper-motion errors for mu_l* and mu_b (mas/yr), drawn independently.
    rho : correlation coefficient of the proper-motion errors.
    """

    frac_distance: tuple[float, float] = (0.02, 0.08)
    v_los: tuple[float, float] = (1.0, 10.0)
    pm: tuple[float, float] = (0.03, 0.20)
    rho: tuple[float, float] = (-0.3, 0.3)


def default_truth(spec: ReflexModel) -> dict[str, float]:
    """A physically motivated truth for ``spec`` (internal units: rad, sin, km/s).

    Loosely follows Chandra et al. (2025) Table 1 for the continuity model (travel
    velocity growing from 15 km/s at 40 kpc to 55 km/s at 120 kpc towards the LMC's
    past orbit, contracting and slowly rotating halo, falling dispersions) and PP21 /
    YPP24 for the constant model.
    """
    def apex(lon_deg, lat_deg, V):
        l, b = np.radians(lon_deg), np.radians(lat_deg)
        n = np.array([np.cos(b) * np.cos(l), np.cos(b) * np.sin(l), np.sin(b)])
        if spec.apex == "galactic":
            return {"v_travel": V, "apex_l": float(l), "apex_sinb": float(np.sin(b))}
        if spec.apex == "ms":
            L, B = galactic_to_magellanic(l, b)
            return {"v_travel": V, "apex_L": float(L), "apex_sinB": float(np.sin(B))}
        return {"v_x": V * n[0], "v_y": V * n[1], "v_z": V * n[2]}

    inner = {**apex(-70.0, -15.0, 15.0), "vr": -10.0, "vphi": 10.0, "vtheta": 0.0, "sigma_los": 105.0, "sigma_l": 70.0, "sigma_b": 55.0}
    outer = {**apex(-80.0, -35.0, 55.0), "vr": -20.0, "vphi": -10.0, "vtheta": 5.0, "sigma_los": 70.0, "sigma_l": 40.0, "sigma_b": 45.0}
    if spec.form == "constant":
        return {**apex(56.0, -34.0, 32.0), "vr": -18.0, "vphi": -20.0, "vtheta": 14.0, "sigma_los": 93.0, "sigma_l": 81.0, "sigma_b": 76.0}
    s0, s1 = spec.suffixes
    return {**{k + s0: float(v) for k, v in inner.items()}, **{k + s1: float(v) for k, v in outer.items()}}


def sample_halo_positions(
    key: Array, n: int, r_range: tuple[float, float] = (40.0, 160.0), slope: float = 2.5,
    min_abs_b_deg: float = 20.0, solar: SolarParameters | None = None,
) -> Array:
    """Galactocentric positions (n, 3) kpc of a spherical power-law tracer, rho ∝ r^-slope.

    Radii follow dN/dr ∝ r^(2 - slope) in ``r_range``, directions are isotropic about the
    Galactic centre, and stars with heliocentric |b| < ``min_abs_b_deg`` (the disc) are
    rejected and redrawn (oversampling by 2x then keeping the first n accepted).
    """
    solar = SolarParameters() if solar is None else solar
    r0, r1 = r_range
    m = 4 * n + 64
    k1, k2, k3 = jax.random.split(key, 3)
    u = jax.random.uniform(k1, (m,))
    p = 3.0 - slope
    if abs(p) < 1e-12:
        r = r0 * (r1 / r0) ** u
    else:
        r = (r0**p + u * (r1**p - r0**p)) ** (1.0 / p)
    cos_t = jax.random.uniform(k2, (m,), minval=-1.0, maxval=1.0)
    phi = jax.random.uniform(k3, (m,), minval=-jnp.pi, maxval=jnp.pi)
    sin_t = jnp.sqrt(1 - cos_t**2)
    xyz = r[:, None] * jnp.stack([sin_t * jnp.cos(phi), sin_t * jnp.sin(phi), cos_t], -1)
    h, _ = galactocentric_to_heliocentric(xyz, None, solar)
    _, b, _ = cartesian_to_galactic(h)
    ok = np.asarray(jnp.abs(b) >= np.radians(min_abs_b_deg))
    idx = np.flatnonzero(ok)
    if idx.size < n:
        raise RuntimeError("too few stars survived the |b| cut; lower min_abs_b_deg")
    return xyz[idx[:n]]


def make_reflex_mock(
    key: Array,
    n: int = 850,
    spec: ReflexModel = ReflexModel("continuity", "ms"),
    truth: Mapping[str, float] | None = None,
    r_range: tuple[float, float] = (40.0, 160.0),
    slope: float = 2.5,
    errors: ErrorModel = ErrorModel(),
    solar: SolarParameters | None = None,
    k: float = K_PM,
    min_abs_b_deg: float = 20.0,
) -> tuple[StarCatalog, dict]:
    """Draw a mock catalogue of ``n`` stars from the reflex model ``spec`` with parameters ``truth``.

    Returns (catalogue, info) where info records the truth, the spec and the settings
    (JSON-serialisable). The catalogue's ``extra['r_gal_true']`` holds true radii (kpc).
    """
    solar = SolarParameters() if solar is None else solar
    truth = dict(default_truth(spec) if truth is None else truth)
    missing = set(spec.param_names) - set(truth)
    if missing:
        raise ValueError(f"truth lacks parameters {sorted(missing)} of the {spec.form}/{spec.apex} model")
    kpos, kd, kv, kl, kb, kerr, kn1, kn2, kn3 = jax.random.split(key, 9)
    xyz = sample_halo_positions(kpos, n, r_range, slope, min_abs_b_deg, solar)
    h, _ = galactocentric_to_heliocentric(xyz, None, solar)
    l, b, d_true = cartesian_to_galactic(h)
    zeros = jnp.zeros(n)
    geo = ReflexData.from_arrays(l, b, d_true, zeros, zeros, zeros, zeros, zeros, zeros + 1, zeros + 1, solar=solar, k=k)
    p = spec.at_radius(truth, geo.r_gal)
    mean = reflex_mean_observables(geo, spec.travel_at_radius(truth, geo.r_gal), p["vr"], p["vphi"], p["vtheta"])
    kdist = k * d_true
    v_los = mean[:, 0] + p["sigma_los"] * jax.random.normal(kv, (n,))
    pm_l = mean[:, 1] + p["sigma_l"] * jax.random.normal(kl, (n,)) / kdist
    pm_b = mean[:, 2] + p["sigma_b"] * jax.random.normal(kb, (n,)) / kdist
    ke = jax.random.split(kerr, 5)
    uni = lambda kk, lohi: jax.random.uniform(kk, (n,), minval=lohi[0], maxval=lohi[1])  # noqa: E731
    f_d, e_v = uni(ke[0], errors.frac_distance), uni(ke[1], errors.v_los)
    e_l, e_b, rho = uni(ke[2], errors.pm), uni(ke[3], errors.pm), uni(ke[4], errors.rho)
    d_obs = d_true * (1.0 + f_d * jax.random.normal(kd, (n,)))
    d_obs = jnp.abs(d_obs)
    z1, z2 = jax.random.normal(kn1, (n,)), jax.random.normal(kn2, (n,))
    v_obs = v_los + e_v * jax.random.normal(kn3, (n,))
    pml_obs = pm_l + e_l * z1
    pmb_obs = pm_b + e_b * (rho * z1 + jnp.sqrt(1 - rho**2) * z2)
    as_np = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    cat = StarCatalog(
        l=as_np(jnp.mod(l, 2 * jnp.pi)), b=as_np(b), distance=as_np(d_obs), distance_err=as_np(f_d * d_obs),
        v_los=as_np(v_obs), v_los_err=as_np(e_v), pm_l=as_np(pml_obs), pm_b=as_np(pmb_obs),
        pm_l_err=as_np(e_l), pm_b_err=as_np(e_b), pm_corr=as_np(rho), xyz=None,
        extra={"r_gal_true": as_np(geo.r_gal), "distance_true": as_np(d_true)},
    )
    info = {
        "truth": {k_: float(v) for k_, v in truth.items()},
        "spec": {"form": spec.form, "apex": spec.apex, "anchors": list(spec.anchors),
                 "interpolate": spec.interpolate, "log_dispersion": spec.log_dispersion},
        "n": n, "r_range": list(r_range), "slope": slope, "min_abs_b_deg": min_abs_b_deg,
        "errors": asdict(errors), "k": k,
        "solar": {"galcen_distance": float(solar.galcen_distance), "z_sun": float(solar.z_sun),
                  "v_sun": [float(x) for x in solar.v_sun], "tilt": solar.tilt},
    }
    return cat, info
