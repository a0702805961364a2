"""Injected substructure for reflex-model mocks: a cold stream added to a halo catalogue.

:func:`add_stream` appends a kinematically cold, spatially narrow group of stars (a stream: an
arc on the sky at one distance, all sharing one Galactocentric velocity) to a catalogue from
:func:`jaxhalo.mocks.reflex.make_reflex_mock`, observed with the same error model. It is the test
bed for the outlier component of the reflex fit (:mod:`jaxhalo.likelihoods.outlier`) against
3-sigma clipping.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..catalog.structure import StarCatalog
from ..constants import K_PM
from ..frames import (
    SolarParameters,
    galactic_to_cartesian,
    galactocentric_to_observables,
    heliocentric_to_galactocentric,
    sky_basis,
)
from .reflex import ErrorModel

__all__ = ["StreamSpec", "add_stream", "stream_positions"]


@dataclass(frozen=True)
class StreamSpec:
    """A cold stream (angles in degrees, distances kpc, velocities km/s).

    fraction : fraction of the *final* catalogue that belongs to the stream.
    l, b : sky position of the stream's centre; pa : position angle of the arc (deg from
        the +l direction towards +b); length, width : extent along the arc (uniform) and
        Gaussian 1-sigma width across it.
    distance, distance_spread : heliocentric distance of the centre and the fractional
        Gaussian spread of the stars' distances.
    velocity : (v_x, v_y, v_z) Galactocentric velocity shared by every stream star.
    sigma_v : isotropic intrinsic velocity dispersion (km/s) about it.
    """

    fraction: float = 0.05
    l: float = 30.0
    b: float = 50.0
    pa: float = 30.0
    length: float = 40.0
    width: float = 1.5
    distance: float = 60.0
    distance_spread: float = 0.05
    velocity: tuple[float, float, float] = (150.0, -200.0, 100.0)
    sigma_v: float = 10.0


def stream_positions(key: Array, n: int, stream: StreamSpec) -> tuple[Array, Array, Array]:
    """Sky positions and true distances of n stream stars: (l, b) rad and d kpc, each (n,)."""
    k1, k2, k3 = jax.random.split(key, 3)
    l0, b0, pa = (math.radians(a) for a in (stream.l, stream.b, stream.pa))
    c = galactic_to_cartesian(l0, b0)
    _, e_l, e_b = sky_basis(l0, b0)
    along = jnp.cos(pa) * e_l + jnp.sin(pa) * e_b
    across = -jnp.sin(pa) * e_l + jnp.cos(pa) * e_b
    t = jnp.radians(stream.length) * (jax.random.uniform(k1, (n,)) - 0.5)
    w = jnp.radians(stream.width) * jax.random.normal(k2, (n,))
    u = (jnp.cos(t) * jnp.cos(w))[:, None] * c + (jnp.sin(t) * jnp.cos(w))[:, None] * along + jnp.sin(w)[:, None] * across
    l = jnp.arctan2(u[:, 1], u[:, 0])
    b = jnp.arcsin(jnp.clip(u[:, 2], -1.0, 1.0))
    d = stream.distance * (1.0 + stream.distance_spread * jax.random.normal(k3, (n,)))
    return l, b, d


def add_stream(
    key: Array,
    cat: StarCatalog,
    info: dict | None = None,
    stream: StreamSpec = StreamSpec(),
    errors: ErrorModel = ErrorModel(),
    solar: SolarParameters | None = None,
    k: float = K_PM,
) -> tuple[StarCatalog, dict]:
    """Append a cold stream to ``cat`` so that it makes up ``stream.fraction`` of the result.

    The stream stars are observed with ``errors`` exactly as :func:`jaxhalo.mocks.reflex.make_reflex_mock`
    observes the halo (noisy distance as the catalogue distance). Returns the new catalogue
    (halo stars first, then the stream; ``extra['is_stream']`` is 1.0 for stream stars, and
    ``extra['r_gal_true']`` / ``extra['distance_true']`` are extended when present) and a copy
    of ``info`` with a 'stream' entry.
    """
    if not 0.0 < stream.fraction < 1.0:
        raise ValueError(f"stream fraction must be in (0, 1), got {stream.fraction}")
    solar = SolarParameters() if solar is None else solar
    n_halo = len(cat)
    n = int(round(stream.fraction * n_halo / (1.0 - stream.fraction)))
    kp, kv, kerr, kd, kn1, kn2, kn3 = jax.random.split(key, 7)
    l, b, d_true = stream_positions(kp, n, stream)
    r_gal, _ = heliocentric_to_galactocentric(galactic_to_cartesian(l, b, d_true), None, solar)
    v_gal = jnp.asarray(stream.velocity) + stream.sigma_v * jax.random.normal(kv, (n, 3))
    obs = galactocentric_to_observables(r_gal, v_gal, solar, k)
    ke = jax.random.split(kerr, 5)
    uni = lambda kk, lohi: jax.random.uniform(kk, (n,), minval=lohi[0], maxval=lohi[1])  # noqa: E731
    f_d, e_v = uni(ke[0], errors.frac_distance), uni(ke[1], errors.v_los)
    e_l, e_b, rho = uni(ke[2], errors.pm), uni(ke[3], errors.pm), uni(ke[4], errors.rho)
    d_obs = jnp.abs(obs.d * (1.0 + f_d * jax.random.normal(kd, (n,))))
    z1, z2 = jax.random.normal(kn1, (n,)), jax.random.normal(kn2, (n,))
    new = {
        "l": jnp.mod(obs.l, 2 * jnp.pi), "b": obs.b, "distance": d_obs, "distance_err": f_d * d_obs,
        "v_los": obs.v_los + e_v * jax.random.normal(kn3, (n,)), "v_los_err": e_v,
        "pm_l": obs.pm_l + e_l * z1, "pm_b": obs.pm_b + e_b * (rho * z1 + jnp.sqrt(1 - rho**2) * z2),
        "pm_l_err": e_l, "pm_b_err": e_b, "pm_corr": rho,
    }
    cols = {name: np.concatenate([np.asarray(getattr(cat, name)), np.asarray(v, np.float64)]) for name, v in new.items()}
    extra = {}
    stream_extra = {"r_gal_true": np.asarray(jnp.linalg.norm(r_gal, axis=-1)), "distance_true": np.asarray(obs.d)}
    for name, v in cat.extra.items():
        if name in stream_extra:
            extra[name] = np.concatenate([np.asarray(v), stream_extra[name]])
        elif np.ndim(v) >= 1 and np.shape(v)[0] == n_halo:
            fill = np.full((n,) + np.shape(v)[1:], np.nan)
            extra[name] = np.concatenate([np.asarray(v, float), fill])
    extra["is_stream"] = np.concatenate([np.zeros(n_halo), np.ones(n)])
    out = StarCatalog(**cols, xyz=None, extra=extra)
    info = dict(info or {})
    info["stream"] = {**asdict(stream), "n_stream": n, "n_halo": n_halo}
    return out, info
