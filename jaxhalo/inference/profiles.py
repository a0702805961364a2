"""numpyro models for the mixture, dipole and binned-profile likelihoods (Li et al. 2025).

Every model here is *binned*: its data carry a leading bin axis B (use B = 1 for a single
fit) and every parameter sits inside ``numpyro.plate("bins", B)``, so the 14 rows of Li et al.
Table 1 are one model, one compiled log-density and one NUTS run. Bins are independent: the
joint log-density is the sum of the per-bin ones (:func:`per_bin_potential` checks this).

Sign conventions (Li et al. footnote 7) and how they map onto :mod:`jaxhalo.frames`
-----------------------------------------------------------------------------------
* Li's V_r = jaxhalo's v_r (positive outwards).
* Li's V_phi < 0 is prograde (same sense as the disc's rotation). jaxhalo's default
  ``frames.spherical_velocity`` (phi = atan2(y, x) in a right-handed frame where the disc
  rotates towards +y at the Sun) also gives v_phi < 0 for prograde motion, so
  **Li's V_phi = jaxhalo's v_phi** (Li et al. Table 1's <V_phi> = -14 km/s is prograde).
* Li's V_theta > 0 points to the north Galactic pole; jaxhalo's theta is the colatitude, so
  v_theta > 0 points south: **Li's V_theta = -(jaxhalo's v_theta)**.
:func:`jaxhalo.frames.li_velocity_components` returns (V_r, V_phi, V_theta) in Li's convention. Note that
``frames.spherical_velocity(..., flip_li=True)`` gives the same (V_r, V_theta, V_phi) mapping.

Models
------
* :func:`mixture_profile_model` -- Li et al. eqs 1-3: K = 1 (single-component, 8 parameters
  per bin) or K = 2 (double-component, 17 per bin) Gaussians in (V_r, V_phi, V_theta, [Fe/H])
  with per-star errors, uniform priors of footnote 11, components ordered by [Fe/H] mean
  (component 0 = metal-rich), beta per component as a deterministic site.
* :func:`dipole_model` -- Li et al. eqs 5-6 with the priors of footnote 12.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jax import Array
from jax.typing import ArrayLike
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import initialize_model, potential_energy

from ..likelihoods import binned as _binned
from ..likelihoods.dipole import dipole_log_likelihood_per_star, polar_velocity_from_dipole
from ..likelihoods.mixture import mixture_log_likelihood, mixture_log_likelihood_star_parameters
from .optim import lbfgs_scan

__all__ = [
    "LI2025_COLUMNS",
    "MixturePrior",
    "DipolePrior",
    "li2025_mixture_prior",
    "li2025_dipole_prior",
    "mixture_profile_model",
    "dipole_model",
    "per_bin_potential",
    "init_params",
    "map_profile",
    "nuts_profile",
]

#: Li et al.'s columns, in the order of their eq. 1.
LI2025_COLUMNS: tuple[str, ...] = ("v_r", "v_phi", "v_theta", "feh")


class MixturePrior(NamedTuple):
    """Uniform priors per column: means in [mean_low, mean_high], dispersions in
    [sigma_low, sigma_high] (each (D,), column units); ``log_uniform_sigma`` switches the
    dispersion prior to log-uniform on the same range."""

    mean_low: Array
    mean_high: Array
    sigma_low: Array
    sigma_high: Array
    log_uniform_sigma: bool = False


class DipolePrior(NamedTuple):
    """Uniform priors of the dipole model (km/s): mu_compr, mu_dipole and sigma_r ranges."""

    mu_compr: tuple[float, float] = (-100.0, 100.0)
    mu_dipole: tuple[float, float] = (-100.0, 100.0)
    sigma_r: tuple[float, float] = (10.0, 200.0)


def li2025_mixture_prior(columns: Sequence[str] = LI2025_COLUMNS) -> MixturePrior:
    """Li et al. footnote 11: <V_x> in [-100, 100] km/s, sigma_x in [10, 200] km/s,
    mu_[Fe/H] in [-3, -0.85] dex, sigma_[Fe/H] in [0.05, 0.6] dex (x = r, phi, theta)."""
    lo, hi, slo, shi = [], [], [], []
    for c in columns:
        if c == "feh":
            lo.append(-3.0), hi.append(-0.85), slo.append(0.05), shi.append(0.6)
        elif c in ("v_r", "v_phi", "v_theta"):
            lo.append(-100.0), hi.append(100.0), slo.append(10.0), shi.append(200.0)
        else:
            raise ValueError(f"no Li et al. prior for column {c!r}; build a MixturePrior yourself")
    return MixturePrior(*(jnp.asarray(a) for a in (lo, hi, slo, shi)))


def li2025_dipole_prior(identifiable: bool = False) -> DipolePrior:
    """Li et al. footnote 12. ``identifiable=True`` restricts mu_dipole to [-100, 0]: the
    likelihood is invariant under (mu_dipole, apex) -> (-mu_dipole, antipode), so this keeps
    exactly one of the two mirror-image posterior modes (the one Li et al. report)."""
    return DipolePrior(mu_dipole=(-100.0, 0.0) if identifiable else (-100.0, 100.0))


def _ordered_column(name: str, K: int, low: Array, high: Array) -> Array:
    """K values uniform on {high > m_0 > m_1 > ... > m_{K-1} > low}, shape (..., K).

    Sequential construction without any Jacobian factor: the largest of K iid uniforms is
    low + (high - low) t_0 with t_0 ~ Beta(K, 1); given it, the rest are K - 1 iid uniforms
    on [low, m_0], and so on. Smooth in every t_k, so NUTS never meets a sorting kink.
    """
    ms = []
    top = high
    for k in range(K):
        t = numpyro.sample(f"{name}_{k}", dist.Beta(float(K - k), 1.0))
        top = low + (top - low) * t
        ms.append(top)
    return jnp.stack(ms, axis=-1)


def mixture_profile_model(
    x: ArrayLike,
    errors: ArrayLike | None,
    mask: ArrayLike,
    n_components: int = 2,
    prior: MixturePrior | None = None,
    order_column: int = 3,
    beta_columns: tuple[int, int, int] | None = (0, 2, 1),
    bin_index: ArrayLike | None = None,
    n_bins: int | None = None,
) -> None:
    """Li et al. single- (K=1) or double-component (K=2) model, fitted in B bins at once.

    x : (B, N, D) padded data per bin, columns e.g. (V_r, V_phi, V_theta, [Fe/H]) in Li's
        signs (km/s, dex). errors : (B, N, D) 1-sigma errors or (B, N, D, D) covariances.
    mask : (B, N) 0/1 (padding = 0).
    prior : per-column uniform priors (default :func:`li2025_mixture_prior`).
    order_column : column whose component means are ordered descending (identifiability;
        [Fe/H] by default, so component 0 is metal-rich and its weight is p_MR).
    beta_columns : indices of (V_r, V_theta, V_phi) for beta = 1 - (s_t^2 + s_p^2)/(2 s_r^2),
        or None.

    Sites (inside plate 'bins'): ``mean_other`` (B, K, D-1), ``order_frac_k`` (B,), ``sigma``
    (B, K, D), ``p_first`` (B,) for K = 2 (= p_MR) or ``weights`` Dirichlet for K > 2.
    Deterministic: ``mean`` (B, K, D), ``weights`` (B, K), ``beta`` (B, K). Observed factor
    ``obs`` (B, N): per-star log-likelihoods (0 for padding), for arviz LOO.

    Ragged layout (:func:`jaxhalo.likelihoods.binned.ragged_bins`): pass x (M, D), errors
    (M, D), mask (M,), ``bin_index`` (M,) and ``n_bins`` = B; the parameters are the same,
    gathered to the stars, and ``obs`` is (M,).
    """
    x = jnp.asarray(x)
    if bin_index is not None:
        if n_bins is None:
            raise ValueError("the ragged layout needs n_bins")
        B, D = int(n_bins), x.shape[-1]
    else:
        B, N, D = x.shape
    K = int(n_components)
    prior = li2025_mixture_prior() if prior is None else prior
    lo, hi = jnp.asarray(prior.mean_low), jnp.asarray(prior.mean_high)
    others = np.array([j for j in range(D) if j != order_column])
    with numpyro.plate("bins", B):
        mean_other = numpyro.sample(
            "mean_other", dist.Uniform(lo[others], hi[others]).expand([K, D - 1]).to_event(2)
        )
        mean_ord = _ordered_column("order_frac", K, lo[order_column], hi[order_column])  # (B, K)
        sdist = dist.LogUniform if prior.log_uniform_sigma else dist.Uniform
        sigma = numpyro.sample("sigma", sdist(prior.sigma_low, prior.sigma_high).expand([K, D]).to_event(2))
        if K == 1:
            weights = jnp.ones((B, 1), x.dtype)
        elif K == 2:
            p = numpyro.sample("p_first", dist.Uniform(0.0, 1.0))
            weights = jnp.stack([p, 1.0 - p], axis=-1)
        else:
            weights = numpyro.sample("weights_free", dist.Dirichlet(jnp.ones(K)))
    mean = jnp.concatenate(
        [mean_other[..., :order_column], mean_ord[..., None], mean_other[..., order_column:]], axis=-1
    )
    numpyro.deterministic("mean", mean)
    numpyro.deterministic("weights", weights)
    if beta_columns is not None:
        ir, it, ip = beta_columns
        numpyro.deterministic("beta", _binned.anisotropy(sigma[..., ir], sigma[..., it], sigma[..., ip]))

    if bin_index is not None:
        ll = mixture_log_likelihood_star_parameters(
            x, mean[bin_index], sigma[bin_index], jnp.log(weights)[bin_index], errors, mask)
        numpyro.factor("obs", ll)
        return

    def per_bin(mu, s, w, xb, eb, mb):  # the bin's total: one fused pass with its gradient
        return mixture_log_likelihood(xb, mu, scales=s, errors=eb, weights=w, mask=mb)

    if errors is None:
        ll = jax.vmap(lambda mu, s, w, xb, mb: per_bin(mu, s, w, xb, None, mb))(mean, sigma, weights, x, mask)
    else:
        ll = jax.vmap(per_bin)(mean, sigma, weights, x, jnp.asarray(errors), mask)
    numpyro.factor("obs", ll)


def dipole_model(
    v_r: ArrayLike,
    v_r_err: ArrayLike,
    l: ArrayLike,
    b: ArrayLike,
    mask: ArrayLike,
    prior: DipolePrior | None = None,
) -> None:
    """Li et al. eqs 5-6, independently in B bins: V_r ~ N(mu_compr + mu_dipole cos theta,
    sigma_r^2 + delta_r^2).

    v_r, v_r_err : (B, N) km/s; l, b : (B, N) Galactic coordinates in rad; mask (B, N) 0/1.
    Priors (footnote 12, or ``prior``): uniform mu_compr, mu_dipole in [-100, 100] km/s,
    sigma_r in [10, 200] km/s, l_apex in [0, 2 pi], and sin(b_apex) in [-1, 1] (isotropic apex;
    footnote 12 writes 'cos b_apex in [-1, 1]', i.e. the cosine of the apex's polar angle).
    Deterministic: ``b_apex`` (rad), ``l_apex_deg``, ``b_apex_deg``, and ``v_theta_eq7`` =
    (pi/4) mu_dipole sin b_apex (Li et al. eq. 7, V_theta in Li's convention).
    """
    v_r = jnp.asarray(v_r)
    B = v_r.shape[0]
    prior = DipolePrior() if prior is None else prior
    with numpyro.plate("bins", B):
        mu_compr = numpyro.sample("mu_compr", dist.Uniform(*prior.mu_compr))
        mu_dipole = numpyro.sample("mu_dipole", dist.Uniform(*prior.mu_dipole))
        sigma_r = numpyro.sample("sigma_r", dist.Uniform(*prior.sigma_r))
        l_apex = numpyro.sample("l_apex", dist.Uniform(0.0, 2.0 * math.pi))
        sin_b = numpyro.sample("sin_b_apex", dist.Uniform(-1.0, 1.0))
    b_apex = jnp.arcsin(sin_b)
    numpyro.deterministic("b_apex", b_apex)
    numpyro.deterministic("l_apex_deg", jnp.degrees(l_apex))
    numpyro.deterministic("b_apex_deg", jnp.degrees(b_apex))
    numpyro.deterministic("v_theta_eq7", polar_velocity_from_dipole(mu_dipole, b_apex))
    ll = jax.vmap(dipole_log_likelihood_per_star)(
        v_r, jnp.asarray(v_r_err), jnp.asarray(l), jnp.asarray(b), mu_compr, mu_dipole, l_apex, sin_b, sigma_r,
        jnp.asarray(mask),
    )
    numpyro.factor("obs", ll)


# --------------------------------------------------------------------------------------
# Fitting helpers
# --------------------------------------------------------------------------------------


def per_bin_potential(model: Callable, data: dict, static: dict | None = None) -> Callable:
    """Per-bin potential energies (negative log-densities) in unconstrained space.

    Returns ``f(params) -> (B,)`` where ``params`` is a dict of unconstrained site values with
    a leading bin axis (as produced by numpyro's ``initialize_model`` for the binned model) and
    entry b is the potential of the *single-bin* model run on bin b's data alone. Their sum is
    the binned model's potential (the bins are independent), which the tests verify.

    data : dict of the model's array keyword arguments, each with leading axis B.
    static : dict of non-array keyword arguments (n_components, prior, ...).
    """
    static = static or {}

    def one(p, d):
        d1 = {k: None if v is None else v[None] for k, v in d.items()}
        p1 = {k: v[None] for k, v in p.items()}
        return potential_energy(model, (), {**d1, **static}, p1)

    return lambda params: jax.vmap(one)(params, {k: v for k, v in data.items()})


def init_params(model: Callable, data: dict, static: dict | None, key: Array) -> dict:
    """Unconstrained initial values (each with leading bin axis) from numpyro's init_to_median.

    numpyro's ``initialize_model`` under one ``jax.jit``: eagerly it dispatches the model's every
    operation on its own (16 s for the 14-bin Li et al. model on 2,800 stars on a CPU; 7 s jitted,
    the same values to round-off). Under jit it cannot raise, so a non-finite potential or
    gradient at the returned point is refused here.
    """
    static = static or {}

    def find(k: Array, arrays: dict):
        return initialize_model(k, model, model_kwargs={**arrays, **static},
                                init_strategy=numpyro.infer.init_to_median(num_samples=15)).param_info

    info = jax.jit(find)(key, data)
    if not (np.isfinite(float(info.potential_energy))
            and all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(info.z_grad))):
        raise RuntimeError("init_params: no initial point with a finite log-density and gradient in 100 tries "
                           "of numpyro's init_to_median; check the data (NaN, empty bins) and the prior")
    return info.z


def map_profile(
    model: Callable,
    data: dict,
    static: dict | None = None,
    key: Array | None = None,
    init: dict | None = None,
    num_steps: int = 200,
) -> tuple[dict, Array]:
    """MAP in every bin at once: L-BFGS (optax, zoom line search), vmapped over bins.

    Every bin is optimised on its own per-bin potential (:func:`per_bin_potential`) with a
    fixed number of steps, all in one compiled call; a bin's result therefore does not depend
    on the other bins (it equals a single-bin fit to round-off). The objective is numpyro's
    potential in unconstrained space (it includes the log-Jacobian of the prior transforms),
    i.e. the mode of the posterior of the unconstrained parameters. Returns (unconstrained
    params with leading bin axis, final per-bin potential (B,)). Constrain the parameters
    with ``numpyro.infer.util.constrain_fn``.
    """
    if init is None:
        init = init_params(model, data, static, jax.random.PRNGKey(0) if key is None else key)
    f = per_bin_potential(model, data, static)
    static = static or {}

    def single(p0, d):
        def loss(p):
            d1 = {k: None if v is None else v[None] for k, v in d.items()}
            return potential_energy(model, (), {**d1, **static}, {k: v[None] for k, v in p.items()})

        return lbfgs_scan(loss, p0, num_steps, optax.lbfgs())

    run = jax.jit(jax.vmap(single))
    params = run(init, data)
    return params, f(params)


def nuts_profile(
    model: Callable,
    data: dict,
    static: dict | None = None,
    key: Array | None = None,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 1,
    chain_method: str = "sequential",
    progress_bar: bool = False,
    extra_fields: tuple = (),
    **nuts_kwargs,
) -> MCMC:
    """NUTS over all bins at once (one model, plate over bins). Returns the run numpyro MCMC.

    Summarise per-bin quantities with :func:`jaxhalo.likelihoods.binned.summarize_profile`
    using ``mcmc.get_samples()`` and the bins' ``valid`` flags.
    """
    kernel = NUTS(model, init_strategy=numpyro.infer.init_to_median(num_samples=15), **nuts_kwargs)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress_bar)
    mcmc.run(jax.random.PRNGKey(0) if key is None else key, **data, **(static or {}), extra_fields=extra_fields)
    return mcmc
