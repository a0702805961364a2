"""The reflex-motion ("travel velocity") model and likelihood.

Implements ``shared/REFLEX_MODEL.md`` (Petersen & Penarrubia 2021; Yaaqib, Petersen &
Penarrubia 2024) and the continuity extension of Chandra et al. (2025).

Mean Galactocentric velocity of the halo at a star's position r (eq. 1 of Chandra et al.):

    <v>(r) = -v_travel + <v_r> e_r + <v_phi> e_phi + <v_theta> e_theta,

where v_travel = V n_hat is the velocity of the inner Galaxy relative to the distant
halo (the stars see the *reflex* -V n_hat). The mean is projected onto the heliocentric
observables (v_los, mu_l*, mu_b); intrinsic dispersions (sigma_los, sigma_l, sigma_b)
are added in the heliocentric observable frame; the distance error enters the
proper-motion covariance to first order through the *observed* proper motion
(REFLEX_MODEL.md §5).

Sign conventions follow :mod:`jaxhalo.frames`: v_phi > 0 is retrograde, v_theta > 0 is
southwards. Angles are radians; velocities km/s; proper motions mas/yr; distances kpc.

Everything that does not depend on the model parameters (sky bases, solar-motion
projections, error covariances) is computed once in :class:`ReflexData`; a likelihood
call is then a handful of fused array operations over stars.
"""

from __future__ import annotations

import functools
from typing import Callable, Literal, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..catalog.structure import StarCatalog
from ..constants import K_PM, K_PM_REFERENCE
from ..frames import (
    APEX_COS_MIN,
    MS_ROTATION,
    SolarParameters,
    apex_vector,
    galactic_to_cartesian,
    heliocentric_to_galactocentric,
    sky_basis,
    spherical_basis,
)
from ..jax_utils import blockwise_sum, fused_row_sums, is_concrete, sincos
from .outlier import mix_with_outliers, outlier_parameter_names, outlier_probability

__all__ = [
    "outlier_component_log_likelihood",
    "ReflexData",
    "ReflexModel",
    "reflex_log_likelihood",
    "reflex_mean_observables",
    "PARAMETERS",
]

ApexKind = Literal["galactic", "ms", "cartesian"]
FormKind = Literal["constant", "continuity"]

#: The nine physical parameters of the constant model, by apex parameterisation.
#: Angles in rad, velocities and dispersions in km/s.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "galactic": ("v_travel", "apex_l", "apex_sinb", "vr", "vphi", "vtheta", "sigma_los", "sigma_l", "sigma_b"),
    "ms": ("v_travel", "apex_L", "apex_sinB", "vr", "vphi", "vtheta", "sigma_los", "sigma_l", "sigma_b"),
    "cartesian": ("v_x", "v_y", "v_z", "vr", "vphi", "vtheta", "sigma_los", "sigma_l", "sigma_b"),
}


class ReflexData(eqx.Module):
    """Parameter-independent per-star geometry and data for the reflex likelihood.

    All arrays have leading dimension N (stars). Build with :meth:`from_catalog`
    or :meth:`from_arrays`.

    Attributes
    ----------
    r_gal : (N,) Galactocentric radius used by the continuity model (kpc).
    proj : (N, 3, 3) rows map a Galactocentric velocity (km/s) to the model
        observables (v_los [km/s], mu_l* [mas/yr], mu_b [mas/yr]).
    basis_proj : (N, 3, 3) ``proj`` applied to (e_r, e_phi, e_theta): column j is
        the observable response to a unit mean velocity along spherical axis j.
    sun_obs : (N, 3) projection of the solar velocity, subtracted from the model.
    obs : (N, 3) observed (v_los, mu_l*, mu_b).
    var_los : (N,) v_los error variance (km/s)^2.
    pm_cov : (N, 2, 2) proper-motion error covariance incl. distance-error term.
    inv_f2 : (N,) 1 / (k d)^2, converting tangential dispersions to PM variances.
    weight : (N,) 1 for stars that count, 0 for padding / clipped stars.
    """

    r_gal: Array
    proj: Array
    basis_proj: Array
    sun_obs: Array
    obs: Array
    var_los: Array
    pm_cov: Array
    inv_f2: Array
    weight: Array

    @property
    def n_stars(self) -> int:
        return int(self.r_gal.shape[0])

    @classmethod
    def from_arrays(cls, *args, **kwargs) -> "ReflexData":
        """Precompute the geometry from per-star arrays; see :meth:`from_arrays_traceable` (its un-jitted form, for use inside ``jit``/``vmap``).

        The computation is compiled once per catalogue size (``equinox.filter_jit``).
        """
        return _reflex_data_from_arrays(*args, **kwargs)

    @staticmethod
    def from_arrays_traceable(
        l: np.ndarray,
        b: np.ndarray,
        distance: np.ndarray,
        distance_err: np.ndarray,
        v_los: np.ndarray,
        v_los_err: np.ndarray,
        pm_l: np.ndarray,
        pm_b: np.ndarray,
        pm_l_err: np.ndarray,
        pm_b_err: np.ndarray,
        pm_corr: np.ndarray | float = 0.0,
        *,
        xyz: np.ndarray | None = None,
        solar: SolarParameters | None = None,
        k: float = K_PM,
        distance_quirk: bool = False,
        weight: np.ndarray | None = None,
    ) -> "ReflexData":
        """Precompute the geometry from per-star arrays (angles in rad; shapes (N,)).

        Parameters
        ----------
        xyz : optional (N, 3) catalogue Galactocentric positions (kpc). When given,
            the model uses them (as the reference code does): the heliocentric
            vector, l, b and D are recomputed as ``xyz - solar.position`` in an
            untilted frame. When None, positions follow from (l, b, distance).
        solar : solar parameters (default :class:`SolarParameters`).
        k : km/s per kpc mas/yr (4.74057 in the reference code).
        distance_quirk : reproduce the reference code's D' = sqrt(D^2 + l^2 + theta^2)
            in the model proper motions (REFLEX_MODEL.md §4.3); False gives D' = D.
        weight : optional (N,) 0/1 weights (default all 1).
        """
        solar = SolarParameters() if solar is None else solar
        d = jnp.asarray(distance, float)
        if xyz is not None:
            r = jnp.asarray(xyz, float)
            h = r - solar.position  # reference code: pure translation
            rot = solar.rotation if solar.tilt else jnp.eye(3)
            if solar.tilt:
                # express the heliocentric vector with heliocentric (Galactic) axes
                h = h @ rot
            D = jnp.linalg.norm(h, axis=-1)
            ll = jnp.arctan2(h[:, 1], h[:, 0])
            bb = jnp.arcsin(h[:, 2] / D)
        else:
            ll, bb, D = jnp.asarray(l, float), jnp.asarray(b, float), d
            r, _ = heliocentric_to_galactocentric(galactic_to_cartesian(ll, bb, D), None, solar)
            rot = solar.rotation
        e_los, e_l, e_b = sky_basis(ll, bb)
        if distance_quirk:
            Dp = jnp.sqrt(D**2 + ll**2 + (jnp.pi / 2 - bb) ** 2)
        else:
            Dp = D
        kD = k * Dp
        # Heliocentric basis vectors expressed in Galactocentric axes (rotation R of the frame).
        rows = jnp.stack([e_los, e_l / kD[:, None], e_b / kD[:, None]], axis=1)  # (N, 3, 3)
        proj = rows @ jnp.asarray(rot).T
        e_r, e_theta, e_phi = spherical_basis(r)
        basis = jnp.stack([e_r, e_phi, e_theta], axis=-1)  # (N, 3, 3) columns
        basis_proj = proj @ basis
        sun_obs = proj @ jnp.asarray(solar.v_sun)
        obs = jnp.stack([jnp.asarray(v_los, float), jnp.asarray(pm_l, float), jnp.asarray(pm_b, float)], -1)
        ed = jnp.asarray(distance_err, float)
        el, eb = jnp.asarray(pm_l_err, float), jnp.asarray(pm_b_err, float)
        rho = jnp.broadcast_to(jnp.asarray(pm_corr, float), d.shape)
        ml, mb = obs[:, 1], obs[:, 2]
        c11 = el**2 + ed**2 * ml**2 / d**2
        c22 = eb**2 + ed**2 * mb**2 / d**2
        c12 = rho * el * eb
        pm_cov = jnp.stack([jnp.stack([c11, c12], -1), jnp.stack([c12, c22], -1)], -2)
        w = jnp.ones_like(d) if weight is None else jnp.asarray(weight, float)
        return ReflexData(
            r_gal=jnp.linalg.norm(r, axis=-1),
            proj=proj,
            basis_proj=basis_proj,
            sun_obs=sun_obs,
            obs=obs,
            var_los=jnp.asarray(v_los_err, float) ** 2,
            pm_cov=pm_cov,
            inv_f2=1.0 / (k * d) ** 2,
            weight=w,
        )

    @classmethod
    def from_catalog(
        cls,
        cat: StarCatalog,
        *,
        solar: SolarParameters | None = None,
        k: float | None = None,
        reference: bool = False,
        distance_quirk: bool | None = None,
        use_catalog_xyz: bool | None = None,
    ) -> "ReflexData":
        """Build from a :class:`~jaxhalo.catalog.structure.StarCatalog`.

        ``reference=True`` switches every default to the reflexcalc reference code:
        ``SolarParameters.reference()``, k = 4.74057, the catalogue's Cartesian
        positions, and the D' quirk. Each can still be overridden individually.
        """
        if reference:
            solar = SolarParameters.reference() if solar is None else solar
            k = K_PM_REFERENCE if k is None else k
            distance_quirk = True if distance_quirk is None else distance_quirk
            use_catalog_xyz = True if use_catalog_xyz is None else use_catalog_xyz
        k = K_PM if k is None else k
        use_xyz = bool(use_catalog_xyz) and cat.xyz is not None
        if use_catalog_xyz and cat.xyz is None:
            raise ValueError("use_catalog_xyz=True but the catalogue has no Galactocentric positions (xyz)")
        return cls.from_arrays(
            cat.l, cat.b, cat.distance, cat.distance_err, cat.v_los, cat.v_los_err,
            cat.pm_l, cat.pm_b, cat.pm_l_err, cat.pm_b_err, cat.pm_corr,
            xyz=cat.xyz if use_xyz else None, solar=solar, k=k,
            distance_quirk=bool(distance_quirk), weight=None,
        )

    def with_weight(self, weight: Array) -> "ReflexData":
        """Same data with new (N,) star weights (e.g. a clipping mask)."""
        return eqx.tree_at(lambda d: d.weight, self, jnp.asarray(weight, float))


_reflex_data_from_arrays = eqx.filter_jit(ReflexData.from_arrays_traceable)


def reflex_mean_observables(
    data: ReflexData, travel: Array, vr: Array, vphi: Array, vtheta: Array
) -> Array:
    """Model mean observables (N, 3): (v_los [km/s], mu_l* [mas/yr], mu_b [mas/yr]).

    Parameters
    ----------
    travel : (3,) or (N, 3) travel velocity vector V n_hat (km/s), Galactocentric axes.
    vr, vphi, vtheta : scalars or (N,) bulk spherical velocities (km/s).
    """
    travel = jnp.broadcast_to(travel, data.obs.shape)
    sph = jnp.stack(jnp.broadcast_arrays(vr, vphi, vtheta, data.r_gal)[:3], -1)
    # written as products and sums over the last axis (not einsum / dot_general): XLA fuses these
    # with the rest of the likelihood instead of calling a batched 3x3 matrix product
    return jnp.sum(data.basis_proj * sph[:, None, :] - data.proj * travel[:, None, :], axis=-1) - data.sun_obs


def reflex_log_likelihood(
    data: ReflexData,
    travel: Array,
    vr: Array,
    vphi: Array,
    vtheta: Array,
    sigma_los: Array,
    sigma_l: Array,
    sigma_b: Array,
) -> Array:
    """Per-star log-likelihood (N,) of the reflex model (REFLEX_MODEL.md §5), times ``data.weight``.

    Parameters are scalars or per-star arrays (N,) (the continuity model evaluates
    them at each star's r_gal); ``travel`` is (3,) or (N, 3) in km/s; dispersions
    in km/s (tangential ones are converted to proper-motion variances with the
    catalogue distance).
    """
    mean = reflex_mean_observables(data, travel, vr, vphi, vtheta)
    resid = data.obs - mean
    S2 = data.var_los + sigma_los**2
    ll_v = -0.5 * (jnp.log(2 * jnp.pi * S2) + resid[:, 0] ** 2 / S2)
    a = data.pm_cov[:, 0, 0] + sigma_l**2 * data.inv_f2
    c = data.pm_cov[:, 1, 1] + sigma_b**2 * data.inv_f2
    bc = data.pm_cov[:, 0, 1]
    det = a * c - bc * bc
    dl, db = resid[:, 1], resid[:, 2]
    quad = (c * dl * dl - 2 * bc * dl * db + a * db * db) / det
    ll_pm = -0.5 * (jnp.log((2 * jnp.pi) ** 2 * det) + quad)
    return data.weight * (ll_v + ll_pm)


def reflex_chi2(
    data: ReflexData, travel, vr, vphi, vtheta, sigma_los, sigma_l, sigma_b
) -> Array:
    """Per-star chi^2 (N,) of the three observables under the full model covariance (3 dof)."""
    mean = reflex_mean_observables(data, travel, vr, vphi, vtheta)
    resid = data.obs - mean
    S2 = data.var_los + sigma_los**2
    a = data.pm_cov[:, 0, 0] + sigma_l**2 * data.inv_f2
    c = data.pm_cov[:, 1, 1] + sigma_b**2 * data.inv_f2
    bc = data.pm_cov[:, 0, 1]
    det = a * c - bc * bc
    dl, db = resid[:, 1], resid[:, 2]
    return resid[:, 0] ** 2 / S2 + (c * dl * dl - 2 * bc * dl * db + a * db * db) / det


def _travel_vector(apex: str, p: Mapping[str, Array]) -> Array:
    """Travel velocity (..., 3) in km/s from one apex parameterisation."""
    if apex == "cartesian":
        return jnp.stack(jnp.broadcast_arrays(p["v_x"], p["v_y"], p["v_z"]), -1)
    if apex == "galactic":
        n = apex_vector(p["apex_l"], p["apex_sinb"])
    elif apex == "ms":
        n = apex_vector(p["apex_L"], p["apex_sinB"]) @ jnp.asarray(MS_ROTATION)
    else:
        raise ValueError(f"unknown apex parameterisation {apex!r}; use 'galactic', 'ms' or 'cartesian'")
    return jnp.asarray(p["v_travel"])[..., None] * n


def _outlier_kind(value) -> str:
    """Normalise the ``outlier`` option: False/None -> 'none', True -> 'gaussian'."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "gaussian"
    return str(value)


class ReflexModel(eqx.Module):
    """A reflex-motion model specification: radial form and apex parameterisation.

    Attributes
    ----------
    form : 'constant' (9 parameters) or 'continuity' (18: each parameter at the two
        anchor radii, linear in r_gal between and beyond, Chandra et al. 2025).
    apex : 'galactic' (V, l, sin b), 'ms' (V, L_MS, sin B_MS; Nidever et al. 2008
        Magellanic Stream frame) or 'cartesian' (v_x, v_y, v_z; Brooks et al.).
    anchors : the two anchor radii (kpc) of the continuity model (default 40, 120).
    interpolate : continuity model only. 'angles' (default, as Chandra et al.: V and
        the two apex coordinates each linear in r) or 'vector' (the Cartesian travel
        vector linear in r, no wrap at all). Mean velocities are always linear.
    log_dispersion : continuity model only. If True (default; Chandra et al. §5:
        "the continuity model assumed a linear trend of the log-dispersion") log sigma
        is linear in r; else sigma itself.
    outlier : outlier / substructure component (:mod:`jaxhalo.likelihoods.outlier`): 'none'
        (default, or False), 'broad' (rest-frame mean, parameters f_out, sigma_out) or
        'gaussian' (True; free Galactocentric mean out_vx, out_vy, out_vz as well). The
        likelihood becomes (1 - f_out) L_reflex + f_out L_out per star; the outlier
        parameters are radius-independent, also in the continuity model.
    """

    form: str = eqx.field(static=True, default="constant")
    apex: str = eqx.field(static=True, default="galactic")
    anchors: tuple[float, float] = eqx.field(static=True, default=(40.0, 120.0))
    interpolate: str = eqx.field(static=True, default="angles")
    log_dispersion: bool = eqx.field(static=True, default=True)
    outlier: str = eqx.field(static=True, default="none", converter=_outlier_kind)

    def __check_init__(self):
        if self.form not in ("constant", "continuity"):
            raise ValueError(f"form must be 'constant' or 'continuity', got {self.form!r}")
        if self.apex not in PARAMETERS:
            raise ValueError(f"apex must be one of {sorted(PARAMETERS)}, got {self.apex!r}")
        if self.interpolate not in ("angles", "vector"):
            raise ValueError(f"interpolate must be 'angles' or 'vector', got {self.interpolate!r}")
        if not self.anchors[1] > self.anchors[0]:
            raise ValueError(f"anchors must be increasing radii, got {self.anchors}")
        if self.outlier not in ("none", "broad", "gaussian"):
            raise ValueError(f"outlier must be 'none', 'broad' or 'gaussian' (or a bool), got {self.outlier!r}")

    @property
    def base_names(self) -> tuple[str, ...]:
        """The nine base parameter names of this apex parameterisation."""
        return PARAMETERS[self.apex]

    @property
    def suffixes(self) -> tuple[str, ...]:
        return tuple(f"_{a:g}" for a in self.anchors)

    @property
    def param_names(self) -> tuple[str, ...]:
        """All parameter names (9 or 18, plus the outlier component's), in order."""

        extra = outlier_parameter_names(self.outlier)
        if self.form == "constant":
            return self.base_names + extra
        return tuple(n + s for s in self.suffixes for n in self.base_names) + extra

    def at_radius(self, params: Mapping[str, Array], r: Array) -> dict[str, Array]:
        """The nine base parameters evaluated at radius r (kpc; scalar or (N,)).

        For the constant model this returns the parameters unchanged. Parameters absent
        from ``params`` are left out (so the travel velocity alone can be evaluated).

        With ``log_dispersion`` (the default) log sigma is interpolated, which needs sigma > 0 at
        both anchors: a dispersion <= 0 raises ``ValueError`` when the values are concrete, and
        gives NaN under ``jit``/``grad`` (no check can raise there). Every prior of
        :class:`~jaxhalo.inference.priors.PriorSet` keeps sigma >= sigma_min > 0. (The constant
        model and ``log_dispersion=False`` are finite at sigma = 0 wherever the observational
        errors are non-zero: they enter the same total variance.)
        """
        if self.form == "constant":
            return {n: jnp.asarray(params[n]) for n in self.base_names if n in params}
        self.check_dispersions(params)
        r0, r1 = self.anchors
        t = (jnp.asarray(r) - r0) / (r1 - r0)
        s0, s1 = self.suffixes
        out = {}
        for n in self.base_names:
            if n + s0 not in params:  # e.g. only the travel-velocity parameters were given
                continue
            a, b = jnp.asarray(params[n + s0]), jnp.asarray(params[n + s1])
            if n.startswith("sigma") and self.log_dispersion:
                out[n] = jnp.exp(jnp.log(a) + (jnp.log(b) - jnp.log(a)) * t)
            else:
                out[n] = a + (b - a) * t
        return out

    def check_dispersions(self, params: Mapping[str, Array]) -> None:
        """Raise ``ValueError`` for a dispersion <= 0 at an anchor of the log-dispersion continuity model.

        Only concrete values are checked (under ``jit``/``grad`` nothing can raise; such values give NaN).
        """
        if self.form != "continuity" or not self.log_dispersion:
            return
        for n in self.base_names:
            if not n.startswith("sigma"):
                continue
            for suffix in self.suffixes:
                v = params.get(n + suffix)
                if v is not None and is_concrete(v) and not np.all(np.asarray(v) > 0):
                    raise ValueError(
                        f"{n}{suffix} = {np.asarray(v)!r}: the continuity model with log_dispersion=True interpolates "
                        "log sigma between the anchors and needs every dispersion > 0 (use ReflexModel(..., "
                        "log_dispersion=False) for sigma linear in r, which is finite at sigma = 0)")

    def travel_at_radius(self, params: Mapping[str, Array], r: Array) -> Array:
        """Travel velocity vector (..., 3) in km/s (Galactocentric axes) at radius r (kpc)."""
        if self.form == "continuity" and self.interpolate == "vector" and self.apex != "cartesian":
            r0, r1 = self.anchors
            t = (jnp.asarray(r) - r0) / (r1 - r0)
            s0, s1 = self.suffixes
            v0 = _travel_vector(self.apex, {n: params[n + s0] for n in self.base_names[:3]})
            v1 = _travel_vector(self.apex, {n: params[n + s1] for n in self.base_names[:3]})
            return v0 + (v1 - v0) * jnp.asarray(t)[..., None]
        return _travel_vector(self.apex, self.at_radius(params, r))

    def _star_params(self, params: Mapping[str, Array], data: ReflexData):
        p = self.at_radius(params, data.r_gal)
        travel = self.travel_at_radius(params, data.r_gal)
        return travel, p["vr"], p["vphi"], p["vtheta"], p["sigma_los"], p["sigma_l"], p["sigma_b"]

    def log_likelihood_per_star(self, params: Mapping[str, Array], data: ReflexData) -> Array:
        """Per-star log-likelihood (N,) for a dict of parameters (see :attr:`param_names`).

        With an outlier component this is ln[(1 - f_out) L_reflex + f_out L_out] per star.
        """
        if self.outlier == "none":
            return reflex_log_likelihood(data, *self._star_params(params, data))

        ll_main, ll_out = self.component_log_likelihoods(params, data)
        return mix_with_outliers(ll_main, ll_out, params["f_out"], data.weight)

    def component_log_likelihoods(self, params: Mapping[str, Array], data: ReflexData) -> tuple[Array, Array]:
        """Unweighted per-star log-likelihoods (N,), (N,) of the reflex and outlier components."""

        if self.outlier == "none":
            raise ValueError("this ReflexModel has no outlier component (outlier='none')")
        ll_main = reflex_log_likelihood(unit_weight(data), *self._star_params(params, data))
        u = None
        if self.outlier == "gaussian":
            u = jnp.stack(jnp.broadcast_arrays(params["out_vx"], params["out_vy"], params["out_vz"]), -1)
        return ll_main, outlier_component_log_likelihood(data, params["sigma_out"], u)

    def outlier_probability(self, params: Mapping[str, Array], data: ReflexData) -> Array:
        """Per-star posterior probability (N,) of belonging to the outlier component (0 where weight 0)."""

        ll_main, ll_out = self.component_log_likelihoods(params, data)
        return outlier_probability(ll_main, ll_out, params["f_out"]) * (data.weight > 0)

    def log_likelihood(self, params: Mapping[str, Array], data: ReflexData, fast: bool = True) -> Array:
        """Total log-likelihood (scalar): the sum of :meth:`log_likelihood_per_star`.

        ``fast=True`` (default) differentiates through :func:`_fast_total` (one pass over the stars for
        the value and every parameter's gradient; :func:`_blocked_autodiff_total` for a model with an
        outlier component; same numbers as ``fast=False``, the plain sum of the per-star values, to
        rounding). It needs scalar parameters; per-star (N,) parameters
        fall back to the plain sum.
        """
        self.check_dispersions(params)
        if fast and all(jnp.ndim(v) == 0 for v in jax.tree_util.tree_leaves(dict(params))):
            rule = _fast_total if self.outlier == "none" else _blocked_autodiff_total
            return rule(self)(dict(params), data)
        return jnp.sum(self.log_likelihood_per_star(params, data))

    def chi2_per_star(self, params: Mapping[str, Array], data: ReflexData) -> Array:
        """Per-star chi^2 (N,) with 3 degrees of freedom, for outlier clipping."""
        return reflex_chi2(data, *self._star_params(params, data))


def unit_weight(data: ReflexData) -> ReflexData:
    return eqx.tree_at(lambda d: d.weight, data, jnp.ones_like(data.weight))


def outlier_component_log_likelihood(data: ReflexData, sigma_out: Array, mean_velocity: Array | None = None) -> Array:
    """Per-star log density (N,) of the outlier Gaussian (unweighted).

    sigma_out : scalar intrinsic dispersion (km/s), the same along los, l and b.
    mean_velocity : (3,) Galactocentric mean velocity u of the component (km/s), None for 0.
    """
    u = jnp.zeros(3) if mean_velocity is None else jnp.asarray(mean_velocity)
    # reflex mean = -travel + spherical terms; travel = -u and zero spherical means give mean u.
    return reflex_log_likelihood(unit_weight(data), -u, 0.0, 0.0, 0.0, sigma_out, sigma_out, sigma_out)


def _one_star(data: ReflexData) -> ReflexData:
    """One star's data (leaves without the star axis) as a 1-star :class:`ReflexData`."""
    return jax.tree_util.tree_map(lambda a: a[None], data)


def _is_zero(t) -> bool:
    return isinstance(t, jax.custom_derivatives.SymbolicZero)


#: Stars per block of the outlier model's blocked autodiff on a CPU (:func:`_blocked_autodiff_total`): the
#: per-star intermediates of one block stay in cache (measured on the fast path before it used
#: :func:`jaxhalo.jax_utils.fused_row_sums`: 2 AMD EPYC cores, 1e6 stars, float64, 32768 gave ~15% more
#: stars/s than 8192; 131072 fell out of cache and halved it).
CPU_BLOCK = 32768


def _anchor_coordinates(model: ReflexModel, p: Mapping[str, Array]) -> tuple[Array, Array, bool]:
    """The per-star coordinates q (K = 9) of the likelihood at the two anchors, (K,) each, and
    whether the travel velocity enters q as its Cartesian vector (else as the apex parameters).

    q at a star is interpolated between the anchors exactly as :meth:`ReflexModel.at_radius` and
    :meth:`ReflexModel.travel_at_radius` do (the constant model: both anchors equal the parameters).
    """
    base = model.base_names
    if model.form == "constant":
        a = jnp.stack([jnp.asarray(p[n]) for n in base])
        return a, a, model.apex == "cartesian"
    s0, s1 = model.suffixes
    if model.interpolate == "vector" and model.apex != "cartesian":
        v0 = _travel_vector(model.apex, {n: p[n + s0] for n in base[:3]})
        v1 = _travel_vector(model.apex, {n: p[n + s1] for n in base[:3]})
        rest0 = jnp.stack([jnp.asarray(p[n + s0]) for n in base[3:]])
        rest1 = jnp.stack([jnp.asarray(p[n + s1]) for n in base[3:]])
        return jnp.concatenate([v0, rest0]), jnp.concatenate([v1, rest1]), True
    a = jnp.stack([jnp.asarray(p[n + s0]) for n in base])
    b = jnp.stack([jnp.asarray(p[n + s1]) for n in base])
    return a, b, model.apex == "cartesian"


def _log_interpolated(model: ReflexModel) -> np.ndarray:
    """(K,) bool: which coordinates of q are interpolated in log (the dispersions, if log_dispersion)."""
    return np.array([model.form == "continuity" and model.log_dispersion and n.startswith("sigma")
                     for n in model.base_names])


def _star_value_and_gradient(apex: str, cartesian_travel: bool, d: ReflexData,
                             q: tuple[Array, ...]) -> tuple[Array, tuple[Array, ...]]:
    """Each star's w ln L (n,) and its gradient with respect to the star's coordinates q (nine (n,)
    arrays: travel (v_x, v_y, v_z) or (V, apex lon, apex sin lat), v_r, v_phi, v_theta, sigma_los,
    sigma_l, sigma_b), written out by hand (REFLEX_MODEL.md §5) as elementwise arithmetic on (n,)
    arrays, so that XLA fuses the whole of it into a few loops over the stars.

    Why by hand: autodiff of the same expressions keeps ~50 intermediate arrays (its residuals)
    alive between the forward and backward passes, and XLA then runs ~50 kernels per call; the
    closed form needs none of them. Checked against autodiff to 1e-10 (tests/likelihoods/test_reflex.py).
    """
    w = d.weight
    if cartesian_travel:
        T = q[:3]
    else:
        V, lon, s = q[:3]
        u = (1.0 - s) * (1.0 + s)
        c = jnp.sqrt(jnp.maximum(u, APEX_COS_MIN**2))  # frames.cos_from_sin
        dc = jnp.where(u > APEX_COS_MIN**2, -s / c, 0.0)
        sl, cl = sincos(lon)
        n0 = (c * cl, c * sl, s)  # frames.apex_vector, in the apex frame
        dn_dlon = (-c * sl, c * cl, jnp.zeros_like(s))
        dn_ds = (dc * cl, dc * sl, jnp.ones_like(s))
        if apex == "ms":  # Galactic vector = (apex-frame vector) @ MS_ROTATION
            R = [[float(x) for x in row] for row in np.asarray(MS_ROTATION)]  # Python floats: keep float32 float32
            n = tuple(sum(n0[i] * R[i][j] for i in range(3)) for j in range(3))
        else:
            n = n0
        T = tuple(V * n[j] for j in range(3))
    sph = q[3:6]
    P, B = d.proj, d.basis_proj
    resid = [d.obs[:, k] + d.sun_obs[:, k]
             - sum(B[:, k, j] * sph[j] for j in range(3)) + sum(P[:, k, j] * T[j] for j in range(3))
             for k in range(3)]
    sig_los, sig_l, sig_b = q[6:9]
    S2 = d.var_los + sig_los**2
    r0, dl, db = resid
    f = d.inv_f2
    a = d.pm_cov[:, 0, 0] + sig_l**2 * f
    cc = d.pm_cov[:, 1, 1] + sig_b**2 * f
    bc = d.pm_cov[:, 0, 1]
    det = a * cc - bc * bc
    i_s2, i_det = 1.0 / S2, 1.0 / det
    m0 = r0 * i_s2
    chi_v = r0 * m0
    m1 = (cc * dl - bc * db) * i_det  # the PM block's inverse covariance times (dl, db)
    m2 = (a * db - bc * dl) * i_det
    quad = dl * m1 + db * m2
    ll = -0.5 * (jnp.log((2 * jnp.pi) ** 3 * S2 * det) + chi_v + quad)
    # d lnL / d mean_k (= - d lnL / d resid_k)
    m = (m0, m1, m2)
    g_sph = tuple(w * sum(m[k] * B[:, k, j] for k in range(3)) for j in range(3))
    g_T = tuple(-w * sum(m[k] * P[:, k, j] for k in range(3)) for j in range(3))
    g_sig_los = -w * sig_los * (1.0 - chi_v) * i_s2
    g_sig_l = -w * sig_l * f * (cc * i_det - m1 * m1)  # d/d C_00 of -(ln det + quad)/2, times dC_00/dsig_l / 2
    g_sig_b = -w * sig_b * f * (a * i_det - m2 * m2)
    if cartesian_travel:
        g_travel = g_T
    else:
        g_V = sum(g_T[j] * n[j] for j in range(3))
        g_n = tuple(V * g_T[j] for j in range(3))
        if apex == "ms":
            g_n = tuple(sum(R[i][j] * g_n[j] for j in range(3)) for i in range(3))
        g_lon = sum(g_n[i] * dn_dlon[i] for i in range(3))
        g_s = sum(g_n[i] * dn_ds[i] for i in range(3))
        g_travel = (g_V, g_lon, g_s)
    return w * ll, (*g_travel, *g_sph, g_sig_los, g_sig_l, g_sig_b)


@functools.lru_cache(maxsize=None)
def _fast_total(model: ReflexModel) -> Callable[[dict, ReflexData], Array]:
    """The total log-likelihood of ``model`` with a one-pass derivative rule (a ``jax.custom_jvp``).

    The automatic reverse pass of ``sum(log_likelihood_per_star)`` turns every per-star
    intermediate into an array and every parameter's gradient into its own reduction over the stars
    (83 XLA kernels for the 18-parameter continuity model): at small N the kernel launches, at
    large N the passes over memory, set the speed. The rule here uses the structure of the model:
    each star's likelihood depends on the parameters only through its K = 9 coordinates q (travel
    velocity or apex, mean velocities, dispersions at its radius), each a linear (or, for the
    dispersions, log-linear) interpolation in t = (r - r0) / (r1 - r0) between two anchor values.
    So the per-star gradient h = d(w ln L)/dq is computed elementwise (written out by hand in
    :func:`_star_value_and_gradient`: no reduction over stars), and the gradient with respect to the
    anchors is two weighted sums, sum (1 - t) h and sum t h (times q / anchor for a log-interpolated
    dispersion); the map from the parameters to the anchors (the apex vector for the 'vector'
    interpolation) is differentiated by ordinary autodiff on scalars. All 1 + 2K sums over the stars
    are one variadic reduction (:func:`jaxhalo.jax_utils.fused_row_sums`), so XLA computes each star's
    intermediates once.

    It is a JVP whose tangent is linear in the input tangents, so reverse mode (``grad``), forward
    mode, ``vmap`` and ``jax.hessian`` all work; tangents of the data (derivatives with respect to
    the catalogue) take a second, per-star pass, only when asked for. The numbers equal autodiff of
    the plain sum to rounding (tests/likelihoods/test_reflex.py); benchmarks/results/
    reflex_likelihood_cpu2.json has the speed.
    """
    log_idx = _log_interpolated(model)  # numpy: a constant in every trace

    def value_and_grads(p: dict, d: ReflexData) -> tuple[Array, dict]:
        qa, qb, cartesian_travel = _anchor_coordinates(model, p)

        def star_terms(db: ReflexData) -> tuple[Array, ...]:
            n = db.r_gal.shape[0]
            if model.form == "constant":
                qs = tuple(jnp.broadcast_to(qa[k], (n,)) for k in range(qa.shape[0]))
            else:
                r0, r1 = model.anchors
                t = (db.r_gal - r0) / (r1 - r0)
                qs = tuple(jnp.exp(jnp.log(qa[k]) + (jnp.log(qb[k]) - jnp.log(qa[k])) * t) if log_idx[k]
                           else qa[k] + (qb[k] - qa[k]) * t for k in range(qa.shape[0]))
            val, h = _star_value_and_gradient(model.apex, cartesian_travel, db, qs)
            c = tuple(h[k] * qs[k] if log_idx[k] else h[k] for k in range(len(qs)))
            if model.form == "constant":
                return (val, *c)
            return (val, *(ck * (1.0 - t) for ck in c), *(ck * t for ck in c))  # then sum (1 - t) c, sum t c

        sums = fused_row_sums(star_terms, d)
        value = sums[0]
        if model.form == "constant":
            ga, gb = sums[1:], jnp.zeros_like(sums[1:])
        else:
            k = qa.shape[0]
            ga, gb = sums[1 : 1 + k], sums[1 + k :]
            ga = jnp.where(log_idx, ga / jnp.where(log_idx, qa, 1.0), ga)
            gb = jnp.where(log_idx, gb / jnp.where(log_idx, qb, 1.0), gb)
        # chain from the anchor coordinates to the named parameters (scalars: ordinary autodiff)
        _, pull = jax.vjp(lambda q: _anchor_coordinates(model, q)[:2], p)
        (gp,) = pull((ga.astype(qa.dtype), gb.astype(qb.dtype)))
        return value, gp

    return _total_with_gradient_rule(model, value_and_grads)


@functools.lru_cache(maxsize=None)
def _blocked_autodiff_total(model: ReflexModel) -> Callable[[dict, ReflexData], Array]:
    """The total log-likelihood with a blocked derivative rule by ordinary autodiff (a ``jax.custom_jvp``),
    for the models :func:`_fast_total` does not cover (an outlier component mixes the per-star
    likelihoods nonlinearly): value and every parameter's gradient block by block
    (:func:`jaxhalo.jax_utils.blockwise_sum`), so the catalogue is read once and the intermediates stay in cache.
    Same JVP contract as :func:`_fast_total`."""

    def value_and_grads(p: dict, d: ReflexData) -> tuple[Array, dict]:
        names = sorted(p)

        def block_sums(db: ReflexData) -> Array:
            val, g = jax.value_and_grad(lambda q: jnp.sum(model.log_likelihood_per_star(q, db)))(p)
            return jnp.stack([val] + [jnp.asarray(g[k], val.dtype) for k in names])

        sums = blockwise_sum(block_sums, d, CPU_BLOCK)
        return sums[0], {k: sums[i + 1] for i, k in enumerate(names)}

    return _total_with_gradient_rule(model, value_and_grads)


def _total_with_gradient_rule(model: ReflexModel,
                              value_and_grads: Callable[[dict, ReflexData], tuple[Array, dict]]) -> Callable:
    """``sum(model.log_likelihood_per_star)`` as a ``jax.custom_jvp`` whose rule takes the value and every
    parameter's gradient from ``value_and_grads(p, data) -> (value, {name: d value / d p[name]})`` (the
    shared frame of :func:`_fast_total` and :func:`_blocked_autodiff_total`); tangents of the data go
    through :func:`_data_tangent`."""

    def per_star(p: dict, d: ReflexData) -> Array:
        return model.log_likelihood_per_star(p, _one_star(d))[0]

    @jax.custom_jvp
    def total(p: dict, d: ReflexData) -> Array:
        return jnp.sum(model.log_likelihood_per_star(p, d))

    def total_jvp(primals, tangents):
        p, d = primals
        tp, td = tangents
        value, grads = value_and_grads(p, d)
        tangent = jnp.zeros_like(value)
        for name in sorted(p):
            if not _is_zero(tp[name]):
                tangent = tangent + grads[name] * tp[name]
        return value, tangent + _data_tangent(per_star, p, d, td).astype(value.dtype)

    total.defjvp(total_jvp, symbolic_zeros=True)
    return total


def _data_tangent(per_star: Callable, p: dict, d: ReflexData, td) -> Array:
    """The part of the JVP from tangents of the data (derivatives with respect to the catalogue): a
    second, per-star pass, only when some data tangent is not a symbolic zero."""
    td_leaves = jax.tree_util.tree_leaves(td, is_leaf=_is_zero)
    tangent = jnp.zeros(())
    if all(_is_zero(t) for t in td_leaves):
        return tangent
    gd = jax.vmap(jax.grad(per_star, argnums=1), in_axes=(None, 0))(p, d)
    for gl, tl in zip(jax.tree_util.tree_leaves(gd), td_leaves):
        if not _is_zero(tl):
            tangent = tangent + jnp.sum(gl * tl)
    return tangent
