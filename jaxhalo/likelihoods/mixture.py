"""K-component Gaussian mixtures convolved with per-star errors (Li et al. 2025, eqs 1-4).

Each component k is a Gaussian in D chosen columns (e.g. V_r, V_phi, V_theta, [Fe/H]) with
mean ``means[k]`` and either a diagonal covariance (``scales[k]**2``) or a full covariance
``covariances[k]``. Every star i carries its own measurement error: standard deviations
``errors[i]`` of shape (D,) (diagonal) or a full error covariance ``errors[i]`` of shape (D, D).
The error-convolved density of star i under component k is

    N(x_i | mu_k, C_k + E_i),

the mixture likelihood is ``sum_k w_k N(...)`` evaluated with log-sum-exp, and the membership
probability of star i in component k is ``w_k N_ik / sum_j w_j N_ij`` (Li et al. eq. 4).

Everything here is pure JAX, vectorised over stars and components by broadcasting, and safe
under ``jit``, ``vmap`` and ``grad``. Padded stars (mask 0) contribute exactly zero and their
(possibly NaN) values are replaced before any arithmetic, so they never poison gradients.
Input validation that needs concrete values (missing / all-NaN columns) lives in
:func:`stack_columns`, which runs outside ``jit``.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.linalg import solve_triangular
from jax.typing import ArrayLike

from ..jax_utils import fused_row_sums

__all__ = [
    "MixtureInputError",
    "component_log_densities",
    "mixture_log_likelihood_per_star",
    "mixture_log_likelihood",
    "membership_probabilities",
    "weights_from_fractions",
    "relabel_by_column",
    "is_ordered",
    "stack_columns",
    "mixture_log_likelihood_star_parameters",
]

_LOG_2PI = math.log(2.0 * math.pi)


class MixtureInputError(ValueError):
    """Invalid mixture input: the message names the column, the shape or the problem."""


def _sanitize(x: Array, errors: Array | None, mask: Array | None) -> tuple[Array, Array | None]:
    """Replace the data (and errors) of masked-out stars by harmless finite values.

    Padded stars may hold NaN; ``where`` keeps them out of both the value and the gradient.
    """
    if mask is None:
        return x, errors
    keep = jnp.asarray(mask) > 0
    x = jnp.where(keep[:, None], x, 0.0)
    if errors is not None:
        if errors.ndim == 2:
            errors = jnp.where(keep[:, None], errors, 1.0)
        else:
            eye = jnp.eye(errors.shape[-1], dtype=errors.dtype)
            errors = jnp.where(keep[:, None, None], errors, eye)
    return x, errors


def _diag_log_density(columns: list[tuple[Array, Array]]) -> Array:
    """-0.5 (D ln 2 pi + sum_d ln var_d + sum_d r_d^2 / var_d) from per-column (r_d, var_d) pairs.

    The shared diagonal-Gaussian kernel of the mixture likelihoods: residuals and variances of
    each of the D (few, static) columns, broadcastable arrays such as (K, N) or (K, 1). The log
    determinant takes one log per group of <= 3 columns (no overflow even in float32).
    """
    D = len(columns)
    quad, logdet, prod = 0.0, 0.0, None
    for d, (r, var) in enumerate(columns):
        quad = quad + r * r / var
        prod = var if prod is None else prod * var
        if d % 3 == 2 or d == D - 1:
            logdet = logdet + jnp.log(prod)
            prod = None
    return -0.5 * (D * _LOG_2PI + logdet + quad)


def _diag_components(xt: Array, means: Array, scales: Array, log_weights: Array, e2t: Array):
    """(K, N) weighted log densities and per-column residuals / inverse variances (K, N) each.

    xt, e2t : (D, N) data and squared errors (columns on the major axis); means, scales (K, D);
    log_weights (K,).
    """
    D = xt.shape[0]
    quad, prod, res, inv = 0.0, None, [], []
    logdet = 0.0
    for d in range(D):
        var = scales[:, d, None] ** 2 + e2t[d][None, :]
        iv = 1.0 / var
        r = xt[d][None, :] - means[:, d, None]
        quad = quad + r * r * iv
        prod = var if prod is None else prod * var
        if d % 3 == 2 or d == D - 1:  # one log per <= 3 columns: no overflow in float32
            logdet = logdet + jnp.log(prod)
            prod = None
        res.append(r)
        inv.append(iv)
    return -0.5 * (D * _LOG_2PI + logdet + quad) + log_weights[:, None], res, inv


@jax.custom_vjp
def _diag_mixture_ll(x: Array, means: Array, scales: Array, log_weights: Array, errors: Array) -> Array:
    """Per-star ln sum_k w_k N(x_i | mu_k, diag(s_k^2 + e_i^2)), shape (N,); x, errors (N, D).

    Written with a hand-derived reverse-mode rule because XLA's CPU backend turns the
    automatic one into 2K D + K separate passes over the stars (4-5x the cost of the value);
    the rule below reduces every parameter's per-star terms in one pass and is about 1.8x
    faster at 1e4-1e5 stars (no faster at 1e6, where its (K, N) intermediates leave the cache;
    the total, :func:`mixture_log_likelihood`, uses the fused rule of :func:`_diag_mixture_total`).
    Its gradients are checked against the automatic ones in the tests. Reverse mode only:
    differentiate twice with ``jax.jacrev(jax.jacrev(f))``, not ``jax.hessian``.
    """
    c, _, _ = _diag_components(x.T, means, scales, log_weights, (errors * errors).T)
    return jax.nn.logsumexp(c, axis=0)


def _diag_mixture_ll_fwd(x, means, scales, log_weights, errors):
    return _diag_mixture_ll(x, means, scales, log_weights, errors), (x, means, scales, log_weights, errors)


def _diag_mixture_ll_bwd(res, g):
    x, means, scales, log_weights, errors = res
    D = x.shape[1]
    xt, et = x.T, errors.T
    c, r, iv = _diag_components(xt, means, scales, log_weights, et * et)
    w = jnp.exp(c - jnp.max(c, axis=0))
    gam = w / jnp.sum(w, axis=0) * g[None, :]  # (K, N): responsibilities x cotangent
    a = [gam * r[d] * iv[d] for d in range(D)]  # d lnL_i / d mu_kd
    q = [gam * (r[d] * r[d] * iv[d] * iv[d] - iv[d]) for d in range(D)]  # d lnL_i / d s_kd / s_kd
    tot = jnp.sum(jnp.stack(a + q + [gam]), axis=-1)  # (2D + 1, K): one pass over the stars
    dx = -jnp.stack([jnp.sum(ad, axis=0) for ad in a], axis=-1)  # (N, D)
    de = jnp.stack([jnp.sum(qd, axis=0) for qd in q], axis=-1) * errors  # (N, D)
    return dx, tot[:D].T, tot[D : 2 * D].T * scales, tot[2 * D], de


_diag_mixture_ll.defvjp(_diag_mixture_ll_fwd, _diag_mixture_ll_bwd)


def _component_logpdf_kn(
    x: Array,
    means: Array,
    scales: ArrayLike | None,
    covariances: ArrayLike | None,
    errors: Array | None,
    mask: ArrayLike | None,
) -> Array:
    """(K, N) log densities; see :func:`component_log_densities` (which returns the transpose)."""
    if (scales is None) == (covariances is None):
        raise MixtureInputError("give exactly one of `scales` (K, D) or `covariances` (K, D, D)")
    if x.ndim != 2 or means.ndim != 2 or x.shape[-1] != means.shape[-1]:
        raise MixtureInputError(f"x must be (N, D) and means (K, D); got {x.shape} and {means.shape}")
    D = x.shape[-1]
    if errors is not None and errors.shape[1:] not in ((D,), (D, D)):
        raise MixtureInputError(f"errors must be (N, {D}) or (N, {D}, {D}); got {errors.shape}")
    x, errors = _sanitize(x, errors, mask)
    full_errors = errors is not None and errors.ndim == 3

    if scales is not None and not full_errors:
        # Diagonal everything. Stars on the minor axis and a loop over the (few, static) columns
        # vectorise far better on CPU than (N, K, D) arrays with tiny minor axes, and the log
        # determinant takes one log per group of <= 3 columns (no overflow even in float32).
        scales = jnp.asarray(scales)
        xt = x.T  # (D, N)
        e2 = None if errors is None else (errors * errors).T
        cols = []
        for d in range(D):
            var = scales[:, d, None] ** 2  # (K, 1)
            if e2 is not None:
                var = var + e2[d][None, :]  # (K, N)
            cols.append((xt[d][None, :] - means[:, d, None], var))
        out = _diag_log_density(cols)
        out = jnp.broadcast_to(out, (means.shape[0], x.shape[0]))
    else:
        if covariances is None:
            covariances = jax.vmap(jnp.diag)(jnp.asarray(scales) ** 2)  # (K, D, D)
        cov = jnp.asarray(covariances)[:, None]  # (K, 1, D, D)
        if errors is not None:
            err_cov = errors if full_errors else jax.vmap(jnp.diag)(errors**2)
            cov = cov + err_cov[None]
        else:
            cov = jnp.broadcast_to(cov, (cov.shape[0], x.shape[0]) + cov.shape[2:])
        chol = jnp.linalg.cholesky(cov)  # (K, N, D, D)
        resid = x[None, :, :] - means[:, None, :]  # (K, N, D)
        z = solve_triangular(chol, resid[..., None], lower=True)[..., 0]
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        out = -0.5 * (D * _LOG_2PI + logdet + jnp.sum(z * z, axis=-1))
    if mask is not None:
        out = jnp.where(jnp.asarray(mask)[None, :] > 0, out, 0.0)
    return out


def component_log_densities(
    x: ArrayLike,
    means: ArrayLike,
    scales: ArrayLike | None = None,
    covariances: ArrayLike | None = None,
    errors: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Log of the error-convolved Gaussian density of every star under every component.

    Parameters
    ----------
    x : (N, D) data, in the units of each column (km/s for velocities, dex for [Fe/H]).
    means : (K, D) component means, same units.
    scales : (K, D) component standard deviations (diagonal covariance), or None.
    covariances : (K, D, D) full component covariances (units squared), or None.
        Exactly one of ``scales`` / ``covariances`` must be given.
    errors : per-star measurement errors: (N, D) standard deviations (independent errors) or
        (N, D, D) error covariance matrices; None for error-free data.
    mask : optional (N,) weights (0 for padded stars); masked rows are sanitised and their
        output set to 0.

    Returns
    -------
    (N, K) array of log N(x_i | mu_k, C_k + E_i).
    """
    x, means = jnp.asarray(x), jnp.asarray(means)
    errors = None if errors is None else jnp.asarray(errors)
    return _component_logpdf_kn(x, means, scales, covariances, errors, mask).T


def _log_weights(weights: ArrayLike | None, log_weights: ArrayLike | None) -> Array:
    if (weights is None) == (log_weights is None):
        raise MixtureInputError("give exactly one of `weights` or `log_weights` (K,)")
    if log_weights is not None:
        return jnp.asarray(log_weights)
    return jnp.log(jnp.asarray(weights))


def _diagonal_arguments(x: Array, means: Array, scales: ArrayLike | None, covariances: ArrayLike | None,
                        errors: Array | None, log_weights: Array, mask: ArrayLike | None) -> tuple[Array, ...] | None:
    """(x, means, scales, log_weights, errors) sanitised, broadcast and in x's dtype for the diagonal path
    (:func:`_diag_mixture_ll`, :func:`_diag_mixture_total`), or None when the input needs the general path;
    a diagonal input of the wrong shape raises MixtureInputError naming it."""
    if scales is None or covariances is not None or (errors is not None and errors.ndim != 2) or x.ndim != 2:
        return None
    if means.ndim != 2 or x.shape[-1] != means.shape[-1]:
        raise MixtureInputError(f"x must be (N, D) and means (K, D); got {x.shape} and {means.shape}")
    if errors is not None and errors.shape != x.shape:
        raise MixtureInputError(f"errors must be (N, {x.shape[-1]}) or (N, D, D); got {errors.shape}")
    xs, es = _sanitize(x, jnp.zeros_like(x) if errors is None else errors, mask)
    scales = jnp.broadcast_to(jnp.asarray(scales, xs.dtype), means.shape)
    return xs, means.astype(xs.dtype), scales, jnp.broadcast_to(log_weights, means.shape[:1]).astype(xs.dtype), es


def mixture_log_likelihood_per_star(
    x: ArrayLike,
    means: ArrayLike,
    scales: ArrayLike | None = None,
    covariances: ArrayLike | None = None,
    errors: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    log_weights: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Per-star log-likelihood ln sum_k w_k N(x_i | mu_k, C_k + E_i), shape (N,).

    ``weights`` (K,) on the simplex (or ``log_weights``); other arguments as in
    :func:`component_log_densities`. Masked stars get ``mask_i * ln L_i`` (0 for padding).
    """
    return _per_star(*_prepared(x, means, scales, covariances, errors, weights, log_weights, mask))


def _prepared(x, means, scales, covariances, errors, weights, log_weights, mask) -> tuple:
    """The arguments of :func:`mixture_log_likelihood_per_star` as arrays, with the log-weights (K,) and the
    diagonal case's prepared input (:func:`_diagonal_arguments`; None otherwise) appended."""
    x, means = jnp.asarray(x), jnp.asarray(means)
    errors = None if errors is None else jnp.asarray(errors)
    lw = _log_weights(weights, log_weights)
    return x, means, scales, covariances, errors, lw, mask, _diagonal_arguments(x, means, scales, covariances,
                                                                                 errors, lw, mask)


def _per_star(x, means, scales, covariances, errors, lw, mask, diag) -> Array:
    """Per-star log-likelihood (N,) from :func:`_prepared`'s output."""
    if diag is not None:
        ll = _diag_mixture_ll(*diag)
    else:
        comp = _component_logpdf_kn(x, means, scales, covariances, errors, mask)  # (K, N)
        ll = jax.nn.logsumexp(comp + lw[:, None], axis=0)
    if mask is not None:
        m = jnp.asarray(mask)
        ll = jnp.where(m > 0, ll * m, 0.0)
    return ll


def mixture_log_likelihood(
    x: ArrayLike,
    means: ArrayLike,
    scales: ArrayLike | None = None,
    covariances: ArrayLike | None = None,
    errors: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    log_weights: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Total log-likelihood (scalar): the sum of :func:`mixture_log_likelihood_per_star`, same arguments.

    With diagonal component covariances (``scales``) and diagonal errors (N, D) it is computed in one
    fused pass over the stars with its gradient (:func:`_diag_mixture_total`): value+grad 1.1x, 1.6x and 6x
    the speed of summing the per-star values at 1e4, 1e5 and 1e6 stars (2 CPU cores;
    ``benchmarks/results/profiles_cpu2.json``).
    """
    args = _prepared(x, means, scales, covariances, errors, weights, log_weights, mask)
    diag = args[-1]
    if diag is not None:
        xs = diag[0]
        m = jnp.ones(xs.shape[:1], xs.dtype) if mask is None else jnp.asarray(mask, xs.dtype)
        return _diag_mixture_total(*diag, m)
    return jnp.sum(_per_star(*args))


def _diag_star_terms(x: Array, errors: Array, mask: Array, means: Array, scales: Array, log_weights: Array,
                     data_gradients: bool = False) -> tuple[Array, ...]:
    """Per-star terms of the diagonal mixture's total and gradient, each (n,), for :func:`fused_row_sums`:
    m ln L, then m gamma_k (K; = d/d ln w_k), m d ln L / d mu_kd (K D), m d ln L / d s_kd / s_kd (K D).
    With ``data_gradients`` instead the per-star gradients with respect to the data: (d/dx (n, D),
    d/d errors (n, D), d/d mask (n,)).

    x, errors (n, D) sanitised; mask (n,) star weights (0 drops a star); means, scales (K, D);
    log_weights (K,). Written out per component and column (D, K small and static) so that the whole of
    it is elementwise arithmetic on (n,) arrays, one fused loop: the same densities as
    :func:`_diag_components`, whose (K, N) arrays sliced per component ran 1.7x slower here (1e4-1e5 stars).
    """
    K, D = means.shape
    comp, res, inv = [], [], []
    for k in range(K):
        quad, logdet, prod, r_k, iv_k = 0.0, 0.0, None, [], []
        for d in range(D):
            var = scales[k, d] ** 2 + errors[:, d] ** 2
            iv = 1.0 / var
            r = x[:, d] - means[k, d]
            quad = quad + r * r * iv
            prod = var if prod is None else prod * var
            if d % 3 == 2 or d == D - 1:  # one log per <= 3 columns: no overflow in float32
                logdet = logdet + jnp.log(prod)
                prod = None
            r_k.append(r)
            iv_k.append(iv)
        comp.append(-0.5 * (D * _LOG_2PI + logdet + quad) + log_weights[k])
        res.append(r_k)
        inv.append(iv_k)
    top = comp[0]
    for c in comp[1:]:
        top = jnp.maximum(top, c)
    e = [jnp.exp(c - top) for c in comp]
    total = sum(e[1:], e[0])
    lse = top + jnp.log(total)
    keep = mask > 0
    wm = jnp.where(keep, mask, 0.0) / total
    gam = [ek * wm for ek in e]
    a = [gam[k] * res[k][d] * inv[k][d] for k in range(K) for d in range(D)]
    q = [gam[k] * (res[k][d] * res[k][d] * inv[k][d] - 1.0) * inv[k][d] for k in range(K) for d in range(D)]
    if data_gradients:
        dx = jnp.stack([-sum(a[k * D + d] for k in range(K)) for d in range(D)], axis=-1)
        de = jnp.stack([sum(q[k * D + d] for k in range(K)) for d in range(D)], axis=-1) * errors
        return dx, de, jnp.where(keep, lse, 0.0)
    return (jnp.where(keep, lse * mask, 0.0), *gam, *a, *q)


@jax.custom_jvp
def _diag_mixture_total(x: Array, means: Array, scales: Array, log_weights: Array, errors: Array, mask: Array) -> Array:
    """sum_i m_i ln sum_k w_k N(x_i | mu_k, diag(s_k^2 + e_i^2)) (scalar), with a JVP rule that takes the
    value and every parameter's gradient from one fused pass over the stars (:func:`_diag_star_terms`,
    :func:`jaxhalo.jax_utils.fused_row_sums`). The value alone, undifferentiated, is the plain sum of the
    per-star values: a single reduction, which XLA already runs in one loop. Why by hand: summing the per-star values made XLA
    write the (K, N) intermediates of the reverse pass to memory and recompute the shared ones in ~20
    separate loops (8e6 stars/s at 1e6 stars against 3.3e7 here, float64, 2 CPU cores). The rule's
    tangent is linear in the input tangents, so ``grad``, ``jacfwd``, ``vmap`` and ``jax.hessian`` work;
    tangents of the data (x, errors, mask), only when asked for, take a second pass. Checked against
    autodiff of the plain sum in tests/likelihoods/test_mixture.py.
    """
    ll = _diag_mixture_ll(x, means, scales, log_weights, errors)  # the value alone: one plain reduction
    return jnp.sum(jnp.where(mask > 0, ll * mask, 0.0))


def _diag_mixture_total_jvp(primals, tangents):
    x, means, scales, log_weights, errors, mask = primals
    tx, tmu, ts, tlw, te, tm = tangents
    K, D = means.shape
    zero = jax.custom_derivatives.SymbolicZero
    sums = fused_row_sums(lambda d: _diag_star_terms(*d, means, scales, log_weights), (x, errors, mask))
    value = sums[0]
    g_lw = sums[1 : 1 + K]
    g_mu = sums[1 + K : 1 + K + K * D].reshape(K, D)
    g_s = sums[1 + K + K * D : 1 + K + 2 * K * D].reshape(K, D) * scales
    tangent = jnp.zeros_like(value)
    if not all(isinstance(t, zero) for t in (tx, te, tm)):  # a second, per-star pass, only when asked for
        per_star = _diag_star_terms(x, errors, mask, means, scales, log_weights, data_gradients=True)
        for g, t in zip(per_star, (tx, te, tm)):
            if not isinstance(t, zero):
                tangent = tangent + jnp.sum(g * t)
    for g, t in ((g_mu, tmu), (g_s, ts), (g_lw, tlw)):
        if not isinstance(t, zero):
            tangent = tangent + jnp.sum(g * t)
    return value, tangent


_diag_mixture_total.defjvp(_diag_mixture_total_jvp, symbolic_zeros=True)


def membership_probabilities(
    x: ArrayLike,
    means: ArrayLike,
    scales: ArrayLike | None = None,
    covariances: ArrayLike | None = None,
    errors: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    log_weights: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Posterior membership P_ik = w_k L_ik / sum_j w_j L_ij (Li et al. eq. 4), shape (N, K).

    Rows sum to 1; masked rows are returned as 0.
    """
    comp = component_log_densities(x, means, scales, covariances, errors, mask)
    lw = _log_weights(weights, log_weights)
    p = jax.nn.softmax(comp + lw[None, :], axis=-1)
    if mask is not None:
        p = jnp.where(jnp.asarray(mask)[:, None] > 0, p, 0.0)
    return p


def weights_from_fractions(fractions: ArrayLike) -> Array:
    """Simplex weights (..., K) from K-1 free fractions (..., K-1) by stick breaking.

    Each fraction is in [0, 1]; for K = 2 this is (p, 1 - p) as in Li et al. eq. 3.
    """
    f = jnp.asarray(fractions)
    rest = jnp.cumprod(1.0 - f, axis=-1)
    head = f * jnp.concatenate([jnp.ones_like(f[..., :1]), rest[..., :-1]], axis=-1)
    return jnp.concatenate([head, rest[..., -1:]], axis=-1)


def is_ordered(means: ArrayLike, column: int, descending: bool = True) -> Array:
    """Whether the component means (..., K, D) are ordered in ``column`` (bool (...,)).

    The identifiability convention of jaxhalo's mixtures: components sorted by the mean of one
    column, by default descending (e.g. component 0 = metal-rich, highest [Fe/H]).
    """
    m = jnp.asarray(means)[..., column]
    d = jnp.diff(m, axis=-1)
    return jnp.all(d <= 0, axis=-1) if descending else jnp.all(d >= 0, axis=-1)


def relabel_by_column(
    means: ArrayLike, column: int, *others: ArrayLike, descending: bool = True
) -> tuple[Array, ...]:
    """Sort components by the mean of ``column`` to undo label switching.

    ``means`` is (..., K, D); every array in ``others`` has the component axis at the same
    position as ``means``' axis -2 (e.g. scales (..., K, D), weights (..., K)). Returns the
    permuted (means, *others). Use on posterior samples from unconstrained fits; the numpyro
    models in :mod:`jaxhalo.inference.profiles` enforce the order in the prior instead.
    """
    means = jnp.asarray(means)
    key = means[..., column]
    order = jnp.argsort(-key if descending else key, axis=-1)  # (..., K)
    out = [jnp.take_along_axis(means, order[..., None], axis=-2)]
    for a in others:
        a = jnp.asarray(a)
        idx = order.reshape(order.shape + (1,) * (a.ndim - order.ndim))
        out.append(jnp.take_along_axis(a, idx, axis=order.ndim - 1))
    return tuple(out)


def stack_columns(
    table: Mapping[str, ArrayLike],
    columns: Sequence[str],
    error_columns: Sequence[str] | None = None,
    min_finite_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Build (x (N, D), errors (N, D) or None, mask (N,)) from a mapping of named columns.

    Runs outside jit (it inspects values). Raises :class:`MixtureInputError` naming the column
    when a column is missing, has the wrong length, or is entirely NaN; rows with any NaN in
    the chosen columns (or their errors) get mask 0, and negative errors raise.
    """
    if len(columns) == 0:
        raise MixtureInputError("no columns chosen")
    cols = []
    names = list(columns) + list(error_columns or [])
    n = None
    for name in names:
        if name not in table:
            raise MixtureInputError(f"column {name!r} is missing; available: {sorted(table)}")
        a = np.asarray(table[name], dtype=float)
        if a.ndim != 1:
            raise MixtureInputError(f"column {name!r} must be 1-D, got shape {a.shape}")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise MixtureInputError(f"column {name!r} has {a.shape[0]} rows, expected {n}")
        finite = np.isfinite(a)
        if not finite.any():
            raise MixtureInputError(f"column {name!r} is all NaN / non-finite")
        if finite.mean() < min_finite_fraction:
            raise MixtureInputError(
                f"column {name!r} is finite for only {finite.mean():.1%} of rows (< {min_finite_fraction:.0%})"
            )
        cols.append(a)
    x = np.stack(cols[: len(columns)], axis=-1)
    err = np.stack(cols[len(columns) :], axis=-1) if error_columns else None
    if err is not None:
        if err.shape[1] != x.shape[1]:
            raise MixtureInputError(f"{len(error_columns)} error columns for {len(columns)} data columns")
        if np.any(err[np.isfinite(err)] < 0):
            raise MixtureInputError("negative measurement errors")
    good = np.all(np.isfinite(x), axis=1)
    if err is not None:
        good &= np.all(np.isfinite(err), axis=1)
    return x, err, good.astype(float)


def mixture_log_likelihood_star_parameters(
    x: ArrayLike,
    means: ArrayLike,
    scales: ArrayLike,
    log_weights: ArrayLike,
    errors: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Per-star log-likelihood (N,) when every star has its own mixture parameters.

    The diagonal-covariance likelihood of :func:`mixture_log_likelihood_per_star` with
    means (N, K, D), scales (N, K, D) and log_weights (N, K) given per star -- e.g. gathered
    from per-bin parameters by a bin index, which is how the ragged layout of
    :mod:`jaxhalo.likelihoods.binned` fits overlapping bins without padding.
    errors : (N, D) 1-sigma per-star errors or None; mask : (N,) 0/1 or None.
    """
    x = jnp.asarray(x)
    errors = None if errors is None else jnp.asarray(errors)
    if errors is not None and errors.ndim != 2:
        raise MixtureInputError("per-star parameters support diagonal errors (N, D) only")
    x, errors = _sanitize(x, errors, mask)
    means, scales = jnp.asarray(means), jnp.asarray(scales)
    D = x.shape[-1]
    cols = []
    for d in range(D):
        var = scales[..., d].T ** 2  # (K, N)
        if errors is not None:
            var = var + (errors[:, d] ** 2)[None, :]
        cols.append((x[:, d][None, :] - means[..., d].T, var))
    comp = _diag_log_density(cols) + jnp.asarray(log_weights).T
    ll = jax.nn.logsumexp(comp, axis=0)
    if mask is not None:
        m = jnp.asarray(mask)
        ll = jnp.where(m > 0, ll * m, 0.0)
    return ll
