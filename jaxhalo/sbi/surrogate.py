"""A local-linear surrogate of the mean summaries, so that NUTS on the synthetic likelihood costs no simulations.

NUTS on the synthetic likelihood of :mod:`jaxhalo.sbi.synthetic` runs the simulator K times (with P tangents)
for every leapfrog step: ~10^5 steps x K (1 + P) simulation equivalents per observation, hundreds of times an
NPE suite (README, "Simulation budget"). Where the posterior is narrow compared with the scale on which the
mean summaries bend, the mean is linear across it,

    mu(theta) ~ mu_c + B (theta - theta_c),

and the synthetic likelihood with that mean (and a fixed covariance C) can be sampled by NUTS for free. The
simulations go into *placing* the linearisation: a Gauss-Newton iteration from a reference theta,

1. at the centre theta_c, estimate mu_c and the slopes B from K common-random-number keys;
2. solve for the maximum of the Gaussian approximation of the posterior -- the linearised likelihood times
   a Gaussian with each prior's mean and variance (a uniform prior's moments: only to place the centre; NUTS
   samples the exact prior): with M = C^-1 / (1 + 1/K) and F_p = diag(1 / prior variance),

       A = B^T M B + F_p,     theta_new = theta_c + A^-1 [B^T M (x - mu_c) - F_p (theta_c - m_p)],

   kept inside the prior's support, and take sqrt(diag A^-1), the width of that approximation, but at least
   ``min_scale`` (1/4) of the prior's sigma, as the design half-width of the next linearisation;
3. re-linearise at the new centre, until an update moves by less than ``tol`` (1/4) of the design width
   (the last linearisation is then kept) or ``n_linearisations`` ran.

**The mean's keys.** The centre's mean mu_c comes from K keys *independent* of the slopes' keys
(:func:`mean_keys`: each slope key folded with 1; ``independent_mean``), at no extra cost (the secants do not
use the centre's simulations). With the same keys, the noise of mu_c and of the slopes is correlated -- with
common random numbers a summary's Monte Carlo error moves with theta -- so the residual x - mu_c is not
independent of B and the posterior can be over-confident even at the truth: for log10 M200 of the MW-LMC
closed loop's survey, at theta0 with K = 4, the z scatter over 40 observations falls from 1.35 to 1.27 with
independent keys (``benchmarks/bench_linear_sl_at_truth.py --independent-mean``, record
``linear_sl_at_truth_noise_budget_cpu2.json``). Independent of B, the residual leaves the Gaussian posterior at
the truth calibrated however noisy B is, for a known C (its mode scatters by Cov B^T M B Cov <= Cov); most of
what remains is the noise of C from 200 simulations (1.15 with C from 1,380), which the Percival factor of
:func:`~jaxhalo.sbi.synthetic.percival_factor` offsets (1.18).

**The surrogate's own error.** The K per-key secants scatter about their mean; that scatter gives the Monte
Carlo covariance of the mean slope, and along an offset d from the centre a covariance of the mean summaries
that grows like d^2: ln N(x; mu_c + B d, (1 + 1/K) C + U(d)^T U(d)) with U(d) the per-key deviations times
d / sqrt(K (K - 1)) (:meth:`LinearMean.synthetic_log_likelihood`; ``slope_deviations``). That is the
likelihood with a flat prior on the slopes, but it is *not* the better-calibrated one: its determinant grows
like d^2 and acts as a second helping of the slopes' noise as information (at theta0 the log10 M200 z scatter
rises from 1.35 to 1.53 with it; same benchmark). :func:`~jaxhalo.sbi.nuts_sl.synthetic_posterior` therefore
samples without it unless asked (``slope_noise=True``). (Zero on the linear toy, whose secants are the same
for every key.)

**The slopes' noise in the information.** Even with the likelihood above, B^T C^-1 B from K keys over-states the
information: the slopes' Monte Carlo noise adds to it once per summary (at theta0 the 4-key log10 M200 sigma is
0.031 dex against 0.046 with 32 keys' slopes). Score compression onto slopes from independent keys (the
placement's, before a refinement: :mod:`jaxhalo.sbi.compression`, ``synthetic_posterior(compression="score")``)
lets that noise add up over one summary per parameter instead. ``LinearMean(slope_adjustment=True)``
(``synthetic_posterior(slope_adjustment="godambe")``) corrects for what is left: with the whitened slopes A, the
slopes' noise N estimated from the per-key secants (``slope_deviations``: N = sum_k A_k^T A_k, unbiased for the
noise term of E[A^T A]), J = A^T A and H = J - N, the score g - H d (g = A^T r) is an unbiased estimating equation
(Nakamura 1990, Biometrika 77, 127: the corrected score of errors in variables) whose variance from the data is
J; its Godambe (sandwich) information H J^-1 H replaces J (Godambe 1960; as the curvature adjustment of
composite likelihoods, Ribatet, Cooley & Davison 2012, Stat. Sinica 22, 813), so the posterior is as wide as
the estimate's scatter that the slopes' noise causes. Where the noise estimate exceeds J in a direction, that
direction carries no information (H is J - N with its eigenvalues relative to J clipped at 0: unclipped, a
sign-flipped H would count the noise as information again). On a linear-Gaussian toy with 8 keys' noisy slopes the z
scatter falls from 1.48 to 1.07 (``tests/sbi/test_surrogate.py``); what is left is second order (the noise of N).

**Slopes.** ``"secant"`` (default): B_j = (mu(theta_c + d_j e_j) - mu(theta_c - d_j e_j)) / (2 d_j) with the
same K keys at every design point and d_j the design half-width -- 1 + 2 P simulations per key, and a slope
*across the posterior*. The floor on d_j matters for the MW-LMC simulator: with common random numbers its
mean summaries are rough on small scales (below), so a secant over a too-narrow width picks up that
roughness as slope, which over-states the information, narrows the next width, and so on; over 1/4 of
the prior's sigma (0.14 dex in log10 M200) the roughness averages out. ``"tangent"``: B = d mu / d theta at theta_c by forward mode (``jax.jacfwd``), 1 + P
tangents per key. With the MW-LMC simulator the tangent is the worse choice for the halo mass: tracers born
in the inner halo are not resolved by the leapfrog and their tangents grow exponentially (numerical chaos,
:mod:`jaxhalo.sbi.forecast`), so the mean tangent over K keys is noise-dominated (``jacobian_noise`` ~ 1 at
K = 8) and B^T M B over-states the information; a secant over the posterior's own width averages that
small-scale roughness out, and a forward-mode tangent costs ~3.2 simulations on a CPU
(``FORWARD_TANGENT_COST_CPU``) against 2 for a central difference.

The surrogate is exact for a simulator whose mean is linear (the linear-Gaussian toy: one iteration lands on
the posterior mode and the NUTS posterior is the analytic one) and an approximation otherwise; a closed loop
(``benchmarks/bench_linear_sl.py``) says how good. It is not amortised: every observation pays its own
iterations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import Array
from jax.typing import ArrayLike

from .fisher import FisherError, fisher_covariance
from .priors import SuitePrior

__all__ = ["LinearMean", "LinearisationError", "SurrogateFit", "fit_linear_mean", "gauss_newton_update",
           "mean_keys", "prior_moments", "secant_design"]

#: How far inside a bounded support (as a fraction of its width) the centre and the design points are kept.
SUPPORT_MARGIN: float = 1e-3

BatchSimulator = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``run(thetas (n, P), keys (n, ...)) -> summaries (n, S)``: many simulations at once (see
:func:`fit_linear_mean`)."""


class LinearisationError(ValueError):
    """The surrogate cannot be fitted (non-finite summaries at a design point, a singular system)."""


@dataclass(frozen=True)
class LinearMean:
    """mu(theta) = ``mean`` + ``slopes`` @ (theta - ``centre``): ``centre`` (P,), ``mean`` (S,), ``slopes`` (S, P)
    (zero columns for fixed parameters). Called as a simulator, ``surrogate(theta (P,), key) -> (S,)``: the key
    is ignored.

    ``slope_deviations`` (K, S, P), optional: the per-key slopes minus their mean, over sqrt(K (K - 1)), so that
    the Monte Carlo covariance of the mean slope along d = theta - centre is U^T U with U = slope_deviations @ d
    (K, S) (rank <= K - 1). :meth:`synthetic_log_likelihood` adds it to the likelihood's covariance: far from the
    centre, where the slopes' noise matters, the surrogate says it knows less.
    """

    centre: Array
    mean: Array
    slopes: Array
    slope_deviations: Array | None = None
    slope_adjustment: bool = False
    """Sample the Godambe-adjusted likelihood instead (:meth:`synthetic_log_likelihood`; needs ``slope_deviations``)."""

    def __call__(self, theta: Array, key: Array | None = None) -> Array:
        return self.mean + self.slopes @ (jnp.asarray(theta) - self.centre)

    def synthetic_log_likelihood(self, theta: Array, observed: Array, n_keys: int, precision_cholesky: Array) -> Array:
        """ln N(observed; mu(theta), (1 + 1/K) C + U^T U) up to the same constant as
        :func:`~jaxhalo.sbi.synthetic.synthetic_log_likelihood` (which it equals without ``slope_deviations``):
        the low-rank term by the Woodbury identity and the matrix determinant lemma. Pure JAX."""
        inflate = 1.0 + 1.0 / n_keys
        L = jnp.asarray(precision_cholesky)
        if self.slope_adjustment:
            return self._adjusted_log_likelihood(theta, observed, inflate, L)
        z = jax.scipy.linalg.solve_triangular(L, jnp.asarray(observed) - self(theta), lower=True)
        out = -0.5 * jnp.sum(z * z) / inflate - 0.5 * z.shape[0] * jnp.log1p(1.0 / n_keys)
        if self.slope_deviations is None:
            return out
        U = self.slope_deviations @ (jnp.asarray(theta) - self.centre)                      # (K, S)
        W = jax.scipy.linalg.solve_triangular(L, U.T, lower=True) / jnp.sqrt(inflate)       # (S, K)
        G = jnp.eye(W.shape[1], dtype=W.dtype) + W.T @ W
        Lg = jnp.linalg.cholesky(G)
        v = jax.scipy.linalg.solve_triangular(Lg, W.T @ z / jnp.sqrt(inflate), lower=True)
        return out + 0.5 * jnp.sum(v * v) - jnp.sum(jnp.log(jnp.diag(Lg)))

    def _adjusted_log_likelihood(self, theta: Array, observed: Array, inflate: float, L: Array) -> Array:
        """The Godambe-adjusted log-likelihood of ``slope_adjustment`` (module docstring, "The slopes' noise in
        the information"): with whitened slopes A = L^-1 B / sqrt(1 + 1/K) (S, P), residual
        r = L^-1 (x - mean) / sqrt(1 + 1/K), J = A^T A = R R^T, the slopes' noise N = sum_k A_k^T A_k of the
        whitened ``slope_deviations`` and its eigen-decomposition relative to J, R^-1 N R^-T = V diag(m) V^T,
        H = R V diag(f) V^T R^T with f = max(1 - m, 0) (= J - N where N < J: a direction whose information the
        noise estimate exceeds carries none, instead of a sign-flipped one), g = A^T r, d = theta - centre,

            ln L = -1/2 [(H d - g)^T J^-1 (H d - g) + r^T r - g^T J^-1 g] - S/2 ln(1 + 1/K),

        whose information is H J^-1 H = R V diag(f^2) V^T R^T, and which equals the plain Gaussian log-likelihood
        where N = 0. Pure JAX; fixed parameters (zero slope columns) drop out."""
        if self.slope_deviations is None:
            raise ValueError("slope_adjustment needs the per-key slope_deviations")
        scale = jnp.sqrt(inflate)
        A = jax.scipy.linalg.solve_triangular(L, self.slopes, lower=True) / scale                      # (S, P)
        r = jax.scipy.linalg.solve_triangular(L, jnp.asarray(observed) - self.mean, lower=True) / scale  # (S,)
        Ak = jax.vmap(lambda D: jax.scipy.linalg.solve_triangular(L, D, lower=True))(self.slope_deviations) / scale
        J = A.T @ A
        J = J + jnp.diag((jnp.diag(J) == 0.0).astype(J.dtype))  # fixed parameters: a unit row (N, g, d are 0 there)
        R = jnp.linalg.cholesky(J)
        RiN = jax.scipy.linalg.solve_triangular(R, jnp.einsum("ksp,ksq->pq", Ak, Ak), lower=True)    # R^-1 N
        m, V = jnp.linalg.eigh(jax.scipy.linalg.solve_triangular(R, RiN.T, lower=True))            # R^-1 N R^-T
        f = jnp.clip(1.0 - m, 0.0, None)
        gamma = jax.scipy.linalg.solve_triangular(R, A.T @ r, lower=True)                          # R^-1 g
        e = R.T @ (jnp.asarray(theta) - self.centre)
        u = V @ (f * (V.T @ e)) - gamma                                                          # R^-1 (H d - g)
        return -0.5 * (u @ u + r @ r - gamma @ gamma) - 0.5 * r.shape[0] * jnp.log(inflate)


@dataclass(frozen=True)
class SurrogateFit:
    """The Gauss-Newton record of :func:`fit_linear_mean`.

    surrogate : the final :class:`LinearMean`.
    centres : (linearisations, P) the centre of each linearisation, the reference theta first (the surrogate's
        is the last).
    widths : (linearisations, P) the design half-width used at each centre (the Gaussian approximation's
        sigma from the previous one, at least ``min_scale`` x the prior sigma); 0 for fixed ones.
    steps : (linearisations,) the Gauss-Newton update after each linearisation, its largest component in
        units of the next design width.
    simulations : simulations run (one per design point and key; with ``"tangent"`` slopes, the simulations
        of the mean); ``tangents`` the forward-mode tangents carried (0 for secants).
    converged : whether the last step was below ``tol``.
    """

    surrogate: LinearMean
    centres: np.ndarray
    widths: np.ndarray
    steps: np.ndarray
    simulations: int
    tangents: int
    converged: bool
    slopes: str
    posterior_cov: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    """(P, P) the covariance of the last Gaussian approximation (a Laplace-type check on the NUTS posterior)."""
    mode: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    """(P,) the mode of the last Gaussian approximation (the last Gauss-Newton update, inside the support): where
    a further linearisation would be centred."""

    def record(self) -> dict[str, Any]:
        """JSON-ready summary (centres, widths, steps, counts)."""
        return {"slopes": self.slopes, "linearisations": int(self.steps.size), "converged": bool(self.converged),
                "steps_in_widths": self.steps.tolist(), "centres": self.centres.tolist(),
                "widths": self.widths.tolist(), "mode": self.mode.tolist(), "simulations": int(self.simulations),
                "tangents": int(self.tangents)}


def prior_moments(prior: SuitePrior) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (P,), variance (P,), free (P,) bool) of each parameter's prior: a uniform prior's moments,
    a normal's; fixed (Delta) parameters get their value, variance 0 and ``free`` False."""
    mean, var, free = [], [], []
    for n in prior.names:
        d = prior.dists[n]
        fixed = isinstance(d, dist.Delta)
        mean.append(float(np.asarray(d.v if fixed else d.mean)))
        var.append(0.0 if fixed else float(np.asarray(d.variance)))
        free.append(not fixed)
    mean_a, var_a = np.array(mean), np.array(var)
    bad = [n for n, v, f in zip(prior.names, var_a, free) if f and not (math.isfinite(v) and v > 0)]
    if bad:
        raise LinearisationError(f"the prior of {bad} has no finite variance; the linearisation needs one per free parameter")
    return mean_a, var_a, np.array(free)


def mean_keys(keys: Array) -> Array:
    """The keys (K, ...) of the centre's mean when it is independent of the slopes' ``keys``: each folded with 1
    (``jax.random.fold_in``)."""
    return jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)


def _inside(theta: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``theta`` clipped to [lo + m, hi - m] with m = SUPPORT_MARGIN x the width, where the bounds are finite."""
    width = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    return np.clip(theta, np.where(np.isfinite(lo), lo + SUPPORT_MARGIN * width, -np.inf),
                   np.where(np.isfinite(hi), hi - SUPPORT_MARGIN * width, np.inf))


def secant_design(centre: ArrayLike, width: ArrayLike, free: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
    """Design points (1 + 2 F, P) of a central secant: the centre, then centre - width_j e_j and centre +
    width_j e_j for each of the F free parameters j (in order), kept inside [lo, hi] (:data:`SUPPORT_MARGIN`)."""
    c = np.asarray(centre, dtype=float)
    w = np.asarray(width, dtype=float)
    idx = np.flatnonzero(np.asarray(free))
    pts = [c]
    for j in idx:
        for sign in (-1.0, 1.0):
            p = c.copy()
            p[j] = c[j] + sign * w[j]
            pts.append(p)
    return _inside(np.stack(pts), np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))


def gauss_newton_update(surrogate: LinearMean, observed: ArrayLike, precision_cholesky: ArrayLike, n_keys: int,
                        prior_mean: ArrayLike, prior_variance: ArrayLike, free: ArrayLike
                        ) -> tuple[np.ndarray, np.ndarray]:
    """One Gauss-Newton step (module docstring, step 2) -> (new centre (P,), covariance (P, P) of the Gaussian
    approximation, zero rows and columns for fixed parameters). ``precision_cholesky`` is the L of
    :func:`~jaxhalo.sbi.synthetic.reference_covariance` (C = L L^T, Hartlap factor included); the centre is
    not yet clipped to the prior's support."""
    idx = np.flatnonzero(np.asarray(free))
    L = np.asarray(precision_cholesky, dtype=float)
    B = np.asarray(surrogate.slopes, dtype=float)[:, idx]
    r = np.asarray(observed, dtype=float) - np.asarray(surrogate.mean, dtype=float)
    inflate = 1.0 + 1.0 / n_keys
    import scipy.linalg  # deferred: only when a surrogate is fitted

    W = scipy.linalg.solve_triangular(L, B, lower=True)          # L^-1 B
    w = scipy.linalg.solve_triangular(L, r, lower=True)          # L^-1 r
    c = np.asarray(surrogate.centre, dtype=float)
    Fp = 1.0 / np.asarray(prior_variance, dtype=float)[idx]
    A = W.T @ W / inflate + np.diag(Fp)
    g = W.T @ w / inflate - Fp * (c[idx] - np.asarray(prior_mean, dtype=float)[idx])
    try:  # inverted in parameters scaled to unit information (Msun and degrees differ by ~1e20 in A)
        cov_free = np.asarray(fisher_covariance(A, [f"theta_{j}" for j in idx]))
    except FisherError as exc:
        raise LinearisationError(f"the linearised posterior precision: {exc}") from exc
    new = c.copy()
    new[idx] = c[idx] + cov_free @ g
    cov = np.zeros((c.size, c.size))
    cov[np.ix_(idx, idx)] = cov_free
    return new, cov


def fit_linear_mean(
    run: BatchSimulator,
    observed: ArrayLike,
    precision_cholesky: ArrayLike,
    prior: SuitePrior,
    theta_ref: ArrayLike,
    keys: Array,
    *,
    n_linearisations: int = 4,
    slopes: Literal["secant", "tangent"] = "secant",
    jacobian: Callable[[Array, Array], Array] | None = None,
    min_scale: float = 0.25,
    tol: float = 0.25,
    widths: ArrayLike | None = None,
    independent_mean: bool = True,
    progress: Callable[[int], None] | None = None,
) -> SurrogateFit:
    """Place a :class:`LinearMean` by Gauss-Newton from ``theta_ref`` (module docstring).

    Parameters
    ----------
    run : ``run(thetas (n, P), keys (n, ...)) -> (n, S)``, simulations of many (theta, key) pairs (numpy in and out;
        e.g. a jitted ``vmap`` of the simulator called in batches).
    observed : (S,) the observed summaries.
    precision_cholesky : (S, S) the L of the covariance (Hartlap factor included), held fixed.
    prior : the prior (its moments place the centre; fixed parameters stay fixed).
    theta_ref : (P,) the first centre, inside the prior's support.
    keys : (K, ...) the common-random-number keys of the mean.
    n_linearisations : at most this many linearisations (>= 1), each followed by a Gauss-Newton update; the
        surrogate is the last one (``converged`` False if its update still moved by more than ``tol``).
    slopes : "secant" or "tangent" (module docstring).
    jacobian : with ``slopes="tangent"``, ``jacobian(theta (P,), keys (K,)) -> (S, P)`` the mean forward-mode
        Jacobian over the keys.
    min_scale : the smallest secant half-width, as a fraction of each prior's sigma (also the first one).
    tol : stop when no parameter moved by more than ``tol`` of its design width.
    widths : (P,) the first linearisation's design half-widths (default, and at least: ``min_scale`` x each
        prior's sigma), e.g. the posterior sigma of an earlier fit when re-linearising at its mode.
    independent_mean : the centre's mean from :func:`mean_keys` (default), not from ``keys`` themselves (module
        docstring, "The mean's keys"); the same number of simulations either way.
    progress : called with the number of simulations after each batch (a progress bar's ``update``).

    Returns
    -------
    SurrogateFit
    """
    if n_linearisations < 1:
        raise LinearisationError(f"n_linearisations must be >= 1, got {n_linearisations}")
    if slopes not in ("secant", "tangent"):
        raise LinearisationError(f"slopes must be 'secant' or 'tangent', got {slopes!r}")
    if slopes == "tangent" and jacobian is None:
        raise LinearisationError("slopes='tangent' needs the mean Jacobian function")
    m_p, v_p, free = prior_moments(prior)
    lo, hi = prior.bounds
    K = int(keys.shape[0])
    x = np.asarray(observed, dtype=float)
    centre = _inside(np.asarray(theta_ref, dtype=float), lo, hi)
    floor = np.where(free, min_scale * np.sqrt(v_p), 0.0)
    width = floor if widths is None else np.where(free, np.maximum(np.asarray(widths, dtype=float), floor), 0.0)
    centres, widths, steps = [centre], [width], []
    n_sims = n_tangents = 0
    idx = np.flatnonzero(free)
    centre_keys = mean_keys(keys) if independent_mean else keys

    def linearise(c: np.ndarray, w: np.ndarray) -> LinearMean:
        nonlocal n_sims, n_tangents
        pts = secant_design(c, w, free, lo, hi) if slopes == "secant" else c[None, :]
        n_pts = pts.shape[0]
        th = np.repeat(pts, K, axis=0)
        row_keys = keys[np.tile(np.arange(K), n_pts)]
        if independent_mean:  # the centre's K rows come first
            row_keys = jnp.concatenate([centre_keys, row_keys[K:]])
        s = np.asarray(run(th, row_keys)).reshape(n_pts, K, -1)
        n_sims += n_pts * K
        if progress is not None:
            progress(n_pts * K)
        bad = ~np.all(np.isfinite(s), axis=(1, 2))
        if np.any(bad):
            where = "the centre" if bad[0] else ", ".join(
                f"{prior.names[idx[(i - 1) // 2]]} {'-+'[(i - 1) % 2]} {w[idx[(i - 1) // 2]]:.3g}" for i in np.flatnonzero(bad))
            raise LinearisationError(f"the simulator gave non-finite summaries at {where} around theta = "
                                     f"{np.array2string(c, precision=4)} (a parameter the model cannot realise?); "
                                     "try a smaller min_scale or another reference theta")
        mu = s.mean(axis=1)
        B = np.zeros((mu.shape[1], c.size))
        dev = None
        if slopes == "secant":
            Dk = np.zeros((K, mu.shape[1], c.size))  # per-key secants
            for a, j in enumerate(idx):
                Dk[:, :, j] = (s[2 + 2 * a] - s[1 + 2 * a]) / (pts[2 + 2 * a, j] - pts[1 + 2 * a, j])
            B = Dk.mean(axis=0)
            if K > 1:
                dev = jnp.asarray((Dk - B) / math.sqrt(K * (K - 1)))
        else:
            Jm = np.asarray(jacobian(jnp.asarray(c), keys))
            n_tangents += K * idx.size
            B[:, idx] = Jm[:, idx]
        return LinearMean(jnp.asarray(c), jnp.asarray(mu[0]), jnp.asarray(B), dev)

    cov = np.zeros((centre.size, centre.size))
    converged = False
    for i in range(n_linearisations):
        if i:
            centres.append(centre)
            widths.append(width)
        lin = linearise(centre, width)
        new, cov = gauss_newton_update(lin, x, precision_cholesky, K, m_p, v_p, free)
        new = _inside(new, lo, hi)
        width = np.maximum(np.where(free, np.sqrt(np.clip(np.diag(cov), 0.0, None)), 0.0), floor)
        steps.append(float(np.max(np.abs(new[idx] - centre[idx]) / width[idx])))
        if steps[-1] < tol:  # the mode is within tol widths of this centre: keep this linearisation
            converged = True
            break
        centre = new
    return SurrogateFit(surrogate=lin, centres=np.stack(centres), widths=np.stack(widths), steps=np.array(steps),
                        simulations=n_sims, tangents=n_tangents, converged=converged, slopes=slopes, posterior_cov=cov,
                        mode=new)
