"""Fisher forecasts from a differentiable simulator: what a survey will constrain, and which summaries carry it.

For summaries s(theta) with mean mu(theta) and covariance C (both at a fiducial theta0), the Fisher
matrix of a Gaussian likelihood with a parameter-independent covariance is

    F = J^T C^-1 J,        J = d mu / d theta  (S x P),

and (F + F_prior)^-1 approximates the posterior covariance (Cramer-Rao). J comes from forward-mode
autodiff through the simulator (``jax.jacfwd``, P directions) with *common random numbers* -- the same
keys at every theta -- averaged over several keys; C from independent simulations at theta0.

How the pieces are estimated, and what is refused (:func:`fisher_forecast`):

* **C, sample estimate** (``covariance="sample"``): the ddof = 1 sample covariance of n simulations,
  whose inverse is debiased by the Hartlap et al. (2007, A&A 464, 399) factor h = (n - S - 2) / (n - 1).
  For n <= S + 2 the sample covariance is singular or its inverse has no finite mean (h <= 0): refused
  with a :class:`FisherError` that says so. For h < 1/2 (n < 2 S + 3) it is allowed with a warning: the
  inverse from n - S - 2 degrees of freedom is noisy (Taylor, Joachimi & Kitching 2013, MNRAS 432, 1928).
* **C, shrinkage estimate** (``covariance="ledoit-wolf"``): :func:`ledoit_wolf_covariance` -- the
  sample variances kept, the sample correlations shrunk towards zero by the Ledoit & Wolf (2004, J.
  Multivariate Anal. 88, 365) intensity computed on the standardised summaries. Positive definite for
  any n >= 2, also n <= S. No Hartlap factor: it debiases the inverse of a Wishart matrix only, and no
  closed-form debiasing of the shrunk inverse exists. ``covariance="auto"`` takes the sample estimate
  when h >= 1/2 and the shrinkage estimate otherwise.
* **Constant and duplicated summaries** (:func:`screen_summaries`): a summary whose scatter over the
  covariance simulations is <= 1e-9 of the largest one (e.g. an empty bin filled with a constant), or
  whose correlation with an earlier summary is +-1 to 1e-9, makes C singular and carries no information
  of its own: it is dropped, with a warning naming it (``FisherForecast.dropped``). Non-finite summaries
  or Jacobian entries are refused, naming the summary and parameter.
* **Priors** (``prior_fisher``): the prior's information is added, F_total = F + F_prior. A Gaussian
  prior of standard deviation sd adds 1 / sd^2 to its diagonal entry, a uniform prior of width w adds
  1 / (w^2 / 12), the inverse variance of the uniform distribution (a Gaussian with the prior's variance:
  exact for the prior's sigma, approximate in shape). A direction that the summaries do not constrain
  then gets the prior's sigma instead of an infinite one, and ``FisherForecast.prior_dominated`` flags
  the parameters whose forecast sigma exceeds half their prior sigma (the data add less than ~3 times
  the prior's information).
* **Jacobian noise**: J averages per-key Jacobians; their scatter gives the Monte Carlo error of J and
  the bias it adds to F, B = E[dJ^T C^-1 dJ] = (1 / K) x (the key-to-key covariance of J contracted with
  C^-1), which F = J^T C^-1 J contains on top of the noise-free information. ``FisherForecast.jacobian_noise``
  is diag(B) / diag(F) per parameter (NaN with one key): near 1 the forecast of that parameter measures
  the Monte Carlo noise of the gradients, not the survey, and its sigma is too small (for the MW-LMC
  simulator: tracers whose orbits the leapfrog does not resolve have tangents that grow exponentially;
  see :mod:`jaxhalo.sbi.forecast`).

The parameter covariance (F + F_prior)^-1 is computed in the scaled parameters theta_i / sqrt(F_ii)
(parameters in Msun and in degrees differ by 1e20 in F), by Cholesky; when that fails the error names the
least constrained direction.

:func:`summary_information` ranks the summaries: the information of summary i is the loss in
ln det (F + F_prior) when it is removed, computed for all summaries at once from the matrix
determinant lemma (no refit per summary).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ..jax_utils import is_concrete

__all__ = [
    "FisherError",
    "FisherForecast",
    "fisher_matrix",
    "fisher_covariance",
    "hartlap_factor",
    "ledoit_wolf_covariance",
    "screen_summaries",
    "summary_jacobian",
    "summary_jacobians",
    "summary_samples",
    "summary_covariance",
    "summary_information",
    "jacobian_noise_fisher",
    "fisher_forecast",
]

#: Relative scatter below which a summary counts as constant, and 1 - |correlation| below which two
#: summaries count as duplicates (:func:`screen_summaries`).
SCREEN_RTOL = 1e-9


class FisherError(ValueError):
    """Invalid input to a Fisher forecast (shapes, a covariance that is not positive definite, too few simulations)."""


def _cholesky(matrix: Array, what: str) -> Array:
    L = jnp.linalg.cholesky(matrix)
    if is_concrete(L) and not bool(jnp.all(jnp.isfinite(L))):
        raise FisherError(f"the {what} is not positive definite (Cholesky failed); check for constant or duplicated summaries")
    return L


def hartlap_factor(n: int, n_summaries: int) -> float:
    """The Hartlap et al. (2007) factor h = (n - S - 2) / (n - 1) that debiases the inverse of a sample
    covariance of S summaries from n simulations. Raises :class:`FisherError` for n <= S + 2 (h <= 0:
    the sample covariance is singular, or its inverse has no finite mean)."""
    if n <= n_summaries + 2:
        raise FisherError(
            f"the sample covariance of {n_summaries} summaries from {n} simulations cannot be inverted without "
            f"bias: the Hartlap factor (n - S - 2) / (n - 1) = {(n - n_summaries - 2) / max(n - 1, 1):.3g} <= 0; "
            f"run more than S + 2 = {n_summaries + 2} simulations (2 S + 3 = {2 * n_summaries + 3} for h >= 1/2), "
            f"or use the shrinkage estimate (covariance='ledoit-wolf')")
    return (n - n_summaries - 2) / (n - 1)


def ledoit_wolf_covariance(samples: ArrayLike) -> tuple[Array, Array]:
    """Ledoit-Wolf shrinkage covariance (S, S) of ``samples`` (n, S) and its shrinkage intensity in [0, 1].

    The summaries are standardised by their sample standard deviations (ddof = 1), z = (x - mean) / sd,
    and the Ledoit & Wolf (2004, J. Multivariate Anal. 88, 365, Lemma 3.3 / Theorem 3.1; the
    estimator of ``sklearn.covariance.ledoit_wolf``) optimal convex combination of their empirical
    covariance E = z^T z / n and the scaled identity mu I (mu = tr E / S) is taken,

        E* = (1 - s) E + s mu I,    s = min(b^2, d^2) / d^2,
        d^2 = ||E - mu I||_F^2 / S,  b^2 = (1 / n^2) sum_k ||z_k z_k^T - E||_F^2 / S.

    Rescaled to unit diagonal and back by the standard deviations, the result keeps every sample
    variance and shrinks every sample correlation by (1 - s): C = D ((1 - s) R + s I) D with R the sample
    correlation. Its eigenvalues in the correlation scale are >= s, so it is positive definite for any
    n >= 2 when s > 0 (and s -> 0 as n / S -> infinity, giving back the sample covariance). Summaries with
    zero scatter must be removed first (:func:`screen_summaries`). Pure JAX (jit).
    """
    x = jnp.asarray(samples)
    n, S = x.shape
    xc = x - jnp.mean(x, axis=0)
    sd = jnp.sqrt(jnp.sum(xc * xc, axis=0) / (n - 1))
    z = xc / sd
    E = z.T @ z / n
    mu = jnp.trace(E) / S
    d2 = jnp.sum((E - mu * jnp.eye(S, dtype=E.dtype)) ** 2) / S
    z2 = z * z
    # sum_k ||z_k z_k^T - E||_F^2 = sum_k ||z_k||^4 - n ||E||_F^2
    b2_bar = (jnp.sum(jnp.sum(z2, axis=1) ** 2) - n * jnp.sum(E * E)) / (n * n * S)
    b2 = jnp.minimum(b2_bar, d2)
    s = jnp.where(d2 > 0, b2 / jnp.where(d2 > 0, d2, 1.0), 0.0)
    R = E * (n / (n - 1.0))  # the sample correlation (unit diagonal)
    shrunk = (1.0 - s) * R + s * jnp.eye(S, dtype=R.dtype)
    return shrunk * jnp.outer(sd, sd), s


def screen_summaries(samples: ArrayLike, labels: Sequence[str] | None = None,
                     rtol: float = SCREEN_RTOL) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """The summaries to keep, and the dropped ones with the reason, from covariance simulations (n, S).

    Dropped: a summary whose standard deviation is <= ``rtol`` x the largest one (constant: it makes C
    singular, and a constant carries no information that a Gaussian likelihood could use), and a summary
    whose correlation with an earlier kept one is +-1 to ``rtol`` (a duplicate: the earlier one carries
    the same information). Returns (indices kept (S',), [(label, reason), ...]). Raises
    :class:`FisherError` naming summaries that are not finite in some simulation (empty bins: too few
    particles?). Works on concrete values (the selection decides array shapes), not under jit.
    """
    x = np.asarray(samples, dtype=float)
    S = x.shape[1]
    labels = list(labels) if labels is not None else [f"summary_{i}" for i in range(S)]
    bad = np.flatnonzero(~np.all(np.isfinite(x), axis=0))
    if bad.size:
        raise FisherError(f"{bad.size} summaries are not finite in some covariance simulations (empty bins? too few "
                          f"particles?): " + ", ".join(labels[i] for i in bad[:10]))
    sd = x.std(axis=0, ddof=1)
    dropped: list[tuple[str, str]] = []
    keep: list[int] = []
    constant = sd <= rtol * sd.max() if sd.max() > 0 else np.ones(S, bool)
    xc = (x - x.mean(axis=0)) / np.where(constant, 1.0, sd)
    corr = xc.T @ xc / (x.shape[0] - 1)
    for i in range(S):
        if constant[i]:
            dropped.append((labels[i], f"constant over the {x.shape[0]} covariance simulations (sd {sd[i]:.3g})"))
            continue
        dup = [j for j in keep if abs(abs(corr[i, j]) - 1.0) <= rtol]
        if dup:
            dropped.append((labels[i], f"duplicates {labels[dup[0]]} (correlation {corr[i, dup[0]]:+.12f})"))
            continue
        keep.append(i)
    return np.asarray(keep, dtype=int), dropped


def fisher_matrix(jacobian: ArrayLike, covariance: ArrayLike) -> Array:
    """F = J^T C^-1 J (P, P) from the Jacobian J (S, P) of the mean summaries and their covariance C (S, S).

    Solved by Cholesky (no explicit inverse); pure JAX (jit / grad).
    """
    J = jnp.asarray(jacobian)
    C = jnp.asarray(covariance)
    if J.ndim != 2 or C.shape != (J.shape[0], J.shape[0]):
        raise FisherError(f"need J (S, P) and C (S, S); got {J.shape} and {C.shape}")
    L = _cholesky(C, "summary covariance")
    W = jax.scipy.linalg.solve_triangular(L, J, lower=True)  # L^-1 J
    return W.T @ W


def _scaled(F: Array) -> tuple[Array, Array]:
    """(D F D, D) with D = diag(1 / sqrt(F_ii)) (1 where F_ii <= 0): F in parameters of unit information."""
    d = jnp.diag(F)
    D = jnp.where(d > 0, 1.0 / jnp.sqrt(jnp.where(d > 0, d, 1.0)), 1.0)
    return F * jnp.outer(D, D), D


def _not_pd_message(F: Array, names: Sequence[str] | None, what: str) -> str:
    Fs, _ = _scaled(F)
    P = F.shape[0]
    names = list(names) if names is not None else [f"theta_{i}" for i in range(P)]
    zero = [names[i] for i in range(P) if not float(F[i, i]) > 0]
    if zero:
        return (f"the {what} is not positive definite: no information at all on {', '.join(zero)} (a zero column of "
                "the Jacobian and no prior); add the prior's information (prior_fisher) or fix these parameters")
    w, v = np.linalg.eigh(np.asarray(Fs))
    vec = v[:, 0]
    top = np.argsort(-np.abs(vec))[:3]
    combo = " ".join(f"{vec[i]:+.2f} {names[i]}" for i in top)
    return (f"the {what} is not positive definite: the direction {combo} (in parameters scaled to unit "
            f"information) has eigenvalue {w[0]:.3g} of {w[-1]:.3g} -- the summaries do not constrain it, or the "
            "Jacobian is dominated by a few huge entries (check FisherForecast.jacobian_noise; for the MW-LMC "
            "simulator: exploding tangents of chaotic tracers, see jaxhalo.sbi.forecast); add the prior's "
            "information (prior_fisher) or more Jacobian keys")


def fisher_covariance(fisher: ArrayLike, names: Sequence[str] | None = None) -> Array:
    """F^-1 (P, P) for a Fisher matrix F, inverted in the scaled parameters theta_i sqrt(F_ii) (so that
    parameters of very different units do not lose precision) by Cholesky. Raises :class:`FisherError`
    naming the least constrained direction (``names``) when F is not positive definite (concrete input)."""
    F = jnp.asarray(fisher)
    Fs, D = _scaled(F)
    L = jnp.linalg.cholesky(Fs)
    if is_concrete(L) and not bool(jnp.all(jnp.isfinite(L))):
        raise FisherError(_not_pd_message(F, names, "Fisher matrix"))
    inv = jax.scipy.linalg.cho_solve((L, True), jnp.eye(F.shape[0], dtype=F.dtype))
    return inv * jnp.outer(D, D)


def summary_jacobians(simulate: Callable[[Array, Array], Array], theta0: ArrayLike, keys: Array) -> Array:
    """d simulate(theta, key) / d theta at ``theta0`` for each key: (K, S, P).

    ``simulate(theta (P,), key) -> (S,)`` must be differentiable in theta with the key held fixed
    (common random numbers). Forward mode (``jax.jacfwd``, P directions), vmapped over the keys.
    """
    theta0 = jnp.asarray(theta0, dtype=jnp.result_type(float))
    return jax.vmap(lambda k: jax.jacfwd(simulate)(theta0, k))(keys)


def summary_jacobian(simulate: Callable[[Array, Array], Array], theta0: ArrayLike, keys: Array) -> Array:
    """Mean over ``keys`` of d simulate(theta, key) / d theta at ``theta0``: (S, P) (see :func:`summary_jacobians`)."""
    return jnp.mean(summary_jacobians(simulate, theta0, keys), axis=0)


def summary_samples(simulate: Callable[[Array, Array], Array], theta0: ArrayLike, keys: Array) -> Array:
    """The summaries (n, S) of independent simulations at ``theta0``, one per key (vmapped)."""
    theta0 = jnp.asarray(theta0, dtype=jnp.result_type(float))
    return jax.vmap(lambda k: simulate(theta0, k))(keys)


def summary_covariance(simulate: Callable[[Array, Array], Array], theta0: ArrayLike, keys: Array) -> tuple[Array, Array]:
    """(mean (S,), covariance (S, S)) of the summaries over independent simulations at ``theta0``
    (one per key, vmapped; covariance with ddof = 1)."""
    s = summary_samples(simulate, theta0, keys)
    return jnp.mean(s, axis=0), jnp.cov(s, rowvar=False, ddof=1)


def jacobian_noise_fisher(jacobians: ArrayLike, covariance: ArrayLike, precision_scale: float = 1.0) -> Array:
    """The bias (P, P) that Monte Carlo noise in the mean Jacobian adds to F = J^T (h C^-1) J.

    With per-key Jacobians J_k (K, S, P) and their mean J, E[J^T M J] = J_true^T M J_true + E[dJ^T M dJ]
    (M = h C^-1), and the second term is estimated without bias by (1 / (K (K - 1))) sum_k
    (J_k - J)^T M (J_k - J). NaN for K = 1. Pure JAX.
    """
    Jk = jnp.asarray(jacobians)
    K = Jk.shape[0]
    if K < 2:
        return jnp.full((Jk.shape[2], Jk.shape[2]), jnp.nan, dtype=Jk.dtype)
    L = _cholesky(jnp.asarray(covariance), "summary covariance")
    dev = Jk - jnp.mean(Jk, axis=0)
    W = jax.vmap(lambda d: jax.scipy.linalg.solve_triangular(L, d, lower=True))(dev)  # (K, S, P)
    return precision_scale * jnp.einsum("ksp,ksq->pq", W, W) / (K * (K - 1))


def summary_information(jacobian: ArrayLike, covariance: ArrayLike, prior_fisher: ArrayLike | None = None,
                        precision_scale: float = 1.0) -> Array:
    """Information carried by each summary (S,): ln det F_tot - ln det F_tot_without_i, in nats.

    F_tot = h J^T C^-1 J + F_prior (``precision_scale`` h, e.g. the Hartlap factor, default 1; ``prior_fisher``
    (P, P), default 0). With M = h C^-1, removing summary i changes the precision to M - m_i m_i^T / M_ii
    (Schur complement), so F_without_i = F_tot - u_i u_i^T / M_ii with u_i = J^T m_i, and by the matrix
    determinant lemma ln det F_tot - ln det F_without_i = -ln(1 - u_i^T F_tot^-1 u_i / M_ii) (h is held at
    its value for S summaries). Large: the forecast volume grows most without that summary. Zero: it adds
    nothing. With a prior, a summary's information is what it adds beyond the prior and the other summaries.
    Computed in parameters scaled to unit information; pure JAX.
    """
    J = jnp.asarray(jacobian)
    C = jnp.asarray(covariance)
    L = _cholesky(C, "summary covariance")
    M = precision_scale * jax.scipy.linalg.cho_solve((L, True), jnp.eye(C.shape[0], dtype=C.dtype))
    F = J.T @ M @ J
    if prior_fisher is not None:
        F = F + jnp.asarray(prior_fisher)
    Fs, D = _scaled(F)
    U = (J * D).T @ M  # (P, S): column i is u_i in the scaled parameters
    Lf = jnp.linalg.cholesky(Fs)
    if is_concrete(Lf) and not bool(jnp.all(jnp.isfinite(Lf))):
        raise FisherError(_not_pd_message(F, None, "Fisher matrix (data + prior)"))
    V = jax.scipy.linalg.solve_triangular(Lf, U, lower=True)
    q = jnp.sum(V * V, axis=0) / jnp.diag(M)
    return -jnp.log1p(-q)


@dataclass(frozen=True)
class FisherForecast:
    """A Fisher forecast at ``theta0``.

    Attributes
    ----------
    names : parameter names (P,).
    theta0 : the fiducial parameters (P,).
    jacobian : d mean summaries / d theta (S, P) of the summaries kept.
    summary_cov : the summaries' covariance (S, S) (with the survey's errors, as simulated).
    data_fisher : the summaries' information h J^T C^-1 J (P, P), h the Hartlap factor (1 for a given or a
        shrunk C).
    prior_fisher : the prior's information (P, P) (zeros: no prior).
    summary_labels : labels of the summaries kept (S,).
    dropped : (label, reason) of the summaries dropped by :func:`screen_summaries`.
    covariance_estimator : "given", "sample" (Hartlap-debiased) or "ledoit-wolf".
    hartlap : the factor h applied to C^-1.
    shrinkage : the Ledoit-Wolf intensity (0 for the other estimators).
    n_covariance : simulations behind C (0: given).
    jacobian_noise_fisher : the bias that the Jacobian's Monte Carlo noise adds to ``data_fisher`` (P, P)
        (:func:`jacobian_noise_fisher`; NaN with one key).
    """

    names: tuple[str, ...]
    theta0: np.ndarray
    jacobian: np.ndarray
    summary_cov: np.ndarray
    data_fisher: np.ndarray
    prior_fisher: np.ndarray | None = None
    summary_labels: tuple[str, ...] = ()
    dropped: tuple[tuple[str, str], ...] = ()
    covariance_estimator: str = "given"
    hartlap: float = 1.0
    shrinkage: float = 0.0
    n_covariance: int = 0
    jacobian_noise_fisher: np.ndarray | None = field(default=None, repr=False)

    @property
    def fisher(self) -> np.ndarray:
        """F_total = ``data_fisher`` + ``prior_fisher`` (P, P)."""
        return self.data_fisher if self.prior_fisher is None else self.data_fisher + self.prior_fisher

    @property
    def covariance(self) -> np.ndarray:
        """The forecast parameter covariance F_total^-1 (P, P) (:func:`fisher_covariance`); the error for a
        singular F_total names the parameters whose information is mostly Jacobian noise, if any."""
        try:
            return np.asarray(fisher_covariance(self.fisher, self.names))
        except FisherError as exc:
            noisy = [f"{n} ({f:.2f})" for n, f in zip(self.names, self.jacobian_noise) if f > 0.5]
            if not noisy:
                raise
            raise FisherError(f"{exc}. Over half the information on {', '.join(noisy)} is Monte Carlo noise of the "
                              "Jacobian (its per-key estimates disagree)") from None

    @property
    def sigma(self) -> np.ndarray:
        """Forecast 1-sigma of each parameter (P,), marginalised over the others."""
        return np.sqrt(np.diag(self.covariance))

    @property
    def correlation(self) -> np.ndarray:
        """Forecast correlation matrix (P, P)."""
        s = self.sigma
        return self.covariance / np.outer(s, s)

    @property
    def prior_sigma(self) -> np.ndarray:
        """The prior's sigma of each parameter (P,), 1 / sqrt(prior_fisher_ii) (inf without a prior)."""
        d = np.zeros(len(self.names)) if self.prior_fisher is None else np.diag(self.prior_fisher)
        with np.errstate(divide="ignore"):
            return np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), np.inf)

    @property
    def prior_dominated(self) -> np.ndarray:
        """bool (P,): forecast sigma > 0.5 x prior sigma -- the summaries add less than ~3 times the prior's
        information, so the forecast of that parameter is mostly the prior."""
        return self.sigma > 0.5 * self.prior_sigma

    @property
    def jacobian_noise(self) -> np.ndarray:
        """Fraction (P,) of each diagonal entry of ``data_fisher`` that is Monte Carlo noise of the Jacobian,
        diag(B) / diag(F) (:func:`jacobian_noise_fisher`; NaN with one key or no estimate)."""
        if self.jacobian_noise_fisher is None:
            return np.full(len(self.names), np.nan)
        d = np.diag(self.data_fisher)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 0, np.diag(self.jacobian_noise_fisher) / np.where(d > 0, d, 1.0), np.nan)

    def noise_subtracted(self) -> "FisherForecast":
        """This forecast with the Jacobian's Monte Carlo noise taken out of the information.

        ``data_fisher`` averages E[F] = F_true + E[dJ^T M dJ], and ``jacobian_noise_fisher`` B estimates the
        second term without bias, so F - B is an unbiased estimate of the noise-free information. It can have
        negative eigenvalues (directions where the per-key Jacobians disagree more than their mean says); they
        are set to 0 (no information detectable above the noise), after scaling the parameters to unit
        ``data_fisher`` diagonal so that units (Msun next to degrees) do not set the threshold. The result is
        a forecast whose sigma is an estimate of the noise-free sigma, larger than ``sigma`` wherever
        ``jacobian_noise`` is large; where it is ~1 the parameter falls back to about its prior sigma
        (without a prior F may then be singular). ``jacobian_noise_fisher`` of the result is None.
        Raises :class:`FisherError` without a noise estimate (one key)."""
        B = self.jacobian_noise_fisher
        if B is None or not np.all(np.isfinite(B)):
            raise FisherError("no estimate of the Jacobian's Monte Carlo noise (one key?): use n_jacobian >= 2")
        d = np.diag(self.data_fisher)
        scale = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 1.0)
        D = (self.data_fisher - B) * np.outer(scale, scale)
        w, V = np.linalg.eigh(0.5 * (D + D.T))
        D = (V * np.clip(w, 0.0, None)) @ V.T / np.outer(scale, scale)
        return replace(self, data_fisher=0.5 * (D + D.T), jacobian_noise_fisher=None)

    def derived_sigma(self, fn: Callable[[Array], Array]) -> np.ndarray:
        """Forecast sigma of derived quantities g(theta) (..., from ``fn(theta (P,))``) by linear
        propagation: var g = grad g^T F^-1 grad g."""
        return self._propagate(fn, self.covariance)

    def derived_prior_sigma(self, fn: Callable[[Array], Array]) -> np.ndarray:
        """The prior's sigma of derived quantities, propagated linearly from the prior's (diagonal) information
        (inf where a parameter they depend on has no prior)."""
        G = np.asarray(jax.jacfwd(fn)(jnp.asarray(self.theta0))).reshape(-1, self.theta0.size)
        ps2 = self.prior_sigma ** 2
        return np.array([math.sqrt(float(np.sum(g[g != 0] ** 2 * ps2[g != 0]))) for g in G])

    def _propagate(self, fn: Callable[[Array], Array], cov: np.ndarray) -> np.ndarray:
        G = np.asarray(jax.jacfwd(fn)(jnp.asarray(self.theta0))).reshape(-1, self.theta0.size)
        return np.sqrt(np.einsum("ip,pq,iq->i", G, cov, G))


COVARIANCE_ESTIMATORS = ("sample", "ledoit-wolf", "auto")


def fisher_forecast(
    simulate: Callable[[Array, Array], Array],
    theta0: ArrayLike,
    key: Array,
    names: Sequence[str] | None = None,
    n_jacobian: int = 8,
    n_covariance: int = 200,
    summary_cov: ArrayLike | None = None,
    covariance: str = "sample",
    prior_fisher: ArrayLike | None = None,
    summary_labels: Sequence[str] | None = None,
) -> FisherForecast:
    """Fisher forecast of ``simulate(theta, key) -> (S,)`` at ``theta0`` (see the module docstring).

    J is averaged over ``n_jacobian`` common-random-number keys (their scatter gives
    ``FisherForecast.jacobian_noise``). C is estimated from ``n_covariance`` independent simulations by
    ``covariance``: "sample" (Hartlap-debiased; refused for n <= S + 2, a warning for n < 2 S + 3),
    "ledoit-wolf" (:func:`ledoit_wolf_covariance`, no Hartlap factor) or "auto" (sample when n >= 2 S + 3,
    else Ledoit-Wolf); summaries that are constant or duplicated in those simulations are dropped with a
    warning (:func:`screen_summaries`). A given ``summary_cov`` is used as is (h = 1, nothing dropped).
    ``prior_fisher`` (P, P) (or (P,) for a diagonal) is the prior's information, added to F (module
    docstring: a uniform prior of width w adds 12 / w^2). Non-finite Jacobian entries are refused.
    """
    if covariance not in COVARIANCE_ESTIMATORS:
        raise FisherError(f"covariance must be one of {COVARIANCE_ESTIMATORS}, got {covariance!r}")
    theta0 = np.asarray(theta0, dtype=float)
    P = theta0.size
    names = tuple(names) if names is not None else tuple(f"theta_{i}" for i in range(P))
    if len(names) != P:
        raise FisherError(f"{len(names)} names for {P} parameters")
    F_prior = None
    if prior_fisher is not None:
        F_prior = np.asarray(prior_fisher, dtype=float)
        F_prior = np.diag(F_prior) if F_prior.ndim == 1 else F_prior
        if F_prior.shape != (P, P) or not np.all(np.isfinite(F_prior)):
            raise FisherError(f"prior_fisher must be finite, (P,) or (P, P) with P = {P}; got shape {F_prior.shape}")
    k_jac, k_cov = jax.random.split(key)
    Jk = np.asarray(summary_jacobians(simulate, theta0, jax.random.split(k_jac, n_jacobian)))
    S = Jk.shape[1]
    labels = list(summary_labels) if summary_labels is not None else [f"summary_{i}" for i in range(S)]
    if len(labels) != S:
        raise FisherError(f"{len(labels)} summary labels for {S} summaries")
    bad = np.argwhere(~np.all(np.isfinite(Jk), axis=0))
    if bad.size:
        pairs = ", ".join(f"d {labels[i]} / d {names[j]}" for i, j in bad[:6])
        raise FisherError(f"{len(bad)} Jacobian entries are not finite ({pairs}{', ...' if len(bad) > 6 else ''}): "
                          "the simulator's tangents overflowed (for the MW-LMC simulator: orbits the leapfrog step does "
                          "not resolve -- a shorter t_back or a larger DF r_min) or a summary is empty")
    if summary_cov is None:
        if n_covariance < 2:
            raise FisherError(f"need at least 2 simulations for a covariance, got {n_covariance}")
        x = np.asarray(summary_samples(simulate, theta0, jax.random.split(k_cov, n_covariance)))
        keep, dropped = screen_summaries(x, labels)
        if keep.size == 0:
            raise FisherError(f"all {S} summaries are constant over the {n_covariance} covariance simulations")
        if dropped:
            warnings.warn(f"{len(dropped)} summaries dropped from the forecast: "
                          + "; ".join(f"{lab}: {why}" for lab, why in dropped), UserWarning, stacklevel=2)
        x, Jk, labels = x[:, keep], Jk[:, keep, :], [labels[i] for i in keep]
        S = keep.size
        method = covariance
        if method == "auto":
            method = "sample" if n_covariance >= 2 * S + 3 else "ledoit-wolf"
        if method == "sample":
            hartlap = hartlap_factor(n_covariance, S)
            if hartlap < 0.5:
                warnings.warn(f"the covariance of {S} summaries from {n_covariance} simulations has only "
                              f"n - S - 2 = {n_covariance - S - 2} degrees of freedom (Hartlap factor {hartlap:.2f}): "
                              "the forecast widths are noisy; run more simulations or use covariance='ledoit-wolf'",
                              UserWarning, stacklevel=2)
            C, shrink = jnp.cov(jnp.asarray(x), rowvar=False, ddof=1), 0.0
        else:
            C, s = ledoit_wolf_covariance(jnp.asarray(x))
            hartlap, shrink = 1.0, float(s)
    else:
        C = jnp.asarray(summary_cov)
        hartlap, shrink, method, dropped = 1.0, 0.0, "given", []
    J = np.mean(Jk, axis=0)
    F = hartlap * np.asarray(fisher_matrix(J, C))
    B = np.asarray(jacobian_noise_fisher(Jk, C, hartlap))
    return FisherForecast(names, theta0, J, np.asarray(C), F, F_prior, tuple(labels), tuple(dropped), method,
                          float(hartlap), shrink, int(n_covariance) if summary_cov is None else 0, B)
