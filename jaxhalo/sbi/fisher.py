"""Fisher forecasts from a differentiable simulator: what a survey will constrain, and which summaries carry it.

For summaries s(theta) with mean mu(theta) and covariance C (both at a fiducial theta0), the Fisher
matrix of a Gaussian likelihood with a parameter-independent covariance is

    F = J^T C^-1 J,        J = d mu / d theta  (S x P),

and F^-1 bounds the posterior covariance (Cramer-Rao). J comes from forward-mode autodiff through the
simulator (``jax.jacfwd``, P directions) with *common random numbers* -- the same keys at every theta --
averaged over several keys; C from independent simulations at theta0, whose inverse is debiased by the
Hartlap et al. (2007) factor (n - S - 2) / (n - 1).

:func:`summary_information` ranks the summaries: the information of summary i is the loss in
ln det F when it is removed, computed for all summaries at once from the matrix determinant lemma
(no refit per summary).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    "summary_jacobian",
    "summary_covariance",
    "summary_information",
    "fisher_forecast",
]


class FisherError(ValueError):
    """Invalid input to a Fisher forecast (shapes, a covariance that is not positive definite, too few simulations)."""


def _cholesky(matrix: Array, what: str) -> Array:
    L = jnp.linalg.cholesky(matrix)
    if is_concrete(L) and not bool(jnp.all(jnp.isfinite(L))):
        raise FisherError(f"the {what} is not positive definite (Cholesky failed); check for constant or duplicated summaries")
    return L


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


def summary_jacobian(simulate: Callable[[Array, Array], Array], theta0: ArrayLike, keys: Array) -> Array:
    """Mean over ``keys`` of d simulate(theta, key) / d theta at ``theta0``: (S, P).

    ``simulate(theta (P,), key) -> (S,)`` must be differentiable in theta with the key held fixed
    (common random numbers). Forward mode (``jax.jacfwd``, P directions), vmapped over the keys.
    """
    theta0 = jnp.asarray(theta0, dtype=jnp.result_type(float))
    jac = jax.vmap(lambda k: jax.jacfwd(simulate)(theta0, k))(keys)
    return jnp.mean(jac, axis=0)


def summary_covariance(simulate: Callable[[Array, Array], Array], theta0: ArrayLike, keys: Array) -> tuple[Array, Array]:
    """(mean (S,), covariance (S, S)) of the summaries over independent simulations at ``theta0``
    (one per key, vmapped; covariance with ddof = 1)."""
    theta0 = jnp.asarray(theta0, dtype=jnp.result_type(float))
    s = jax.vmap(lambda k: simulate(theta0, k))(keys)
    return jnp.mean(s, axis=0), jnp.cov(s, rowvar=False, ddof=1)


def summary_information(jacobian: ArrayLike, covariance: ArrayLike) -> Array:
    """Information carried by each summary (S,): ln det F - ln det F_without_i, in nats.

    With P = C^-1, removing summary i changes the precision to P - p_i p_i^T / P_ii (Schur complement),
    so F_without_i = F - u_i u_i^T / P_ii with u_i = J^T p_i, and by the matrix determinant lemma
    ln det F - ln det F_without_i = -ln(1 - u_i^T F^-1 u_i / P_ii). Large: the forecast volume grows
    most without that summary. Zero: it adds nothing.
    """
    J = jnp.asarray(jacobian)
    C = jnp.asarray(covariance)
    L = _cholesky(C, "summary covariance")
    P = jax.scipy.linalg.cho_solve((L, True), jnp.eye(C.shape[0], dtype=C.dtype))
    F = J.T @ P @ J
    U = J.T @ P  # (P, S): column i is u_i
    Lf = _cholesky(F, "Fisher matrix")
    V = jax.scipy.linalg.solve_triangular(Lf, U, lower=True)
    q = jnp.sum(V * V, axis=0) / jnp.diag(P)
    return -jnp.log1p(-q)


@dataclass(frozen=True)
class FisherForecast:
    """A Fisher forecast at ``theta0``.

    Attributes
    ----------
    names : parameter names (P,).
    theta0 : the fiducial parameters (P,).
    jacobian : d mean summaries / d theta (S, P).
    summary_cov : the summaries' covariance (S, S) (with the survey's errors, as simulated).
    fisher : F (P, P), already including the Hartlap factor when ``summary_cov`` was estimated.
    """

    names: tuple[str, ...]
    theta0: np.ndarray
    jacobian: np.ndarray
    summary_cov: np.ndarray
    fisher: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        """The forecast parameter covariance F^-1 (P, P)."""
        return np.linalg.inv(self.fisher)

    @property
    def sigma(self) -> np.ndarray:
        """Forecast 1-sigma of each parameter (P,), marginalised over the others."""
        return np.sqrt(np.diag(self.covariance))

    @property
    def correlation(self) -> np.ndarray:
        """Forecast correlation matrix (P, P)."""
        s = self.sigma
        return self.covariance / np.outer(s, s)

    def derived_sigma(self, fn: Callable[[Array], Array]) -> np.ndarray:
        """Forecast sigma of derived quantities g(theta) (..., from ``fn(theta (P,))``) by linear
        propagation: var g = grad g^T F^-1 grad g."""
        G = np.asarray(jax.jacfwd(fn)(jnp.asarray(self.theta0))).reshape(-1, self.theta0.size)
        return np.sqrt(np.einsum("ip,pq,iq->i", G, self.covariance, G))


def fisher_forecast(
    simulate: Callable[[Array, Array], Array],
    theta0: ArrayLike,
    key: Array,
    names: Sequence[str] | None = None,
    n_jacobian: int = 8,
    n_covariance: int = 200,
    summary_cov: ArrayLike | None = None,
) -> FisherForecast:
    """Fisher forecast of ``simulate(theta, key) -> (S,)`` at ``theta0``.

    J is averaged over ``n_jacobian`` common-random-number keys; C is the covariance of
    ``n_covariance`` independent simulations (or the given ``summary_cov``), and F = h J^T C^-1 J with
    the Hartlap factor h = (n - S - 2) / (n - 1) for an estimated C (h = 1 for a given one).
    """
    theta0 = np.asarray(theta0, dtype=float)
    k_jac, k_cov = jax.random.split(key)
    J = summary_jacobian(simulate, theta0, jax.random.split(k_jac, n_jacobian))
    S = J.shape[0]
    if summary_cov is None:
        if n_covariance < S + 3:
            raise FisherError(f"need more than S + 2 = {S + 2} simulations for the covariance of {S} summaries, got {n_covariance}")
        _, C = summary_covariance(simulate, theta0, jax.random.split(k_cov, n_covariance))
        hartlap = (n_covariance - S - 2) / (n_covariance - 1)
    else:
        C, hartlap = jnp.asarray(summary_cov), 1.0
    F = hartlap * fisher_matrix(J, C)
    names = tuple(names) if names is not None else tuple(f"theta_{i}" for i in range(theta0.size))
    if len(names) != theta0.size:
        raise FisherError(f"{len(names)} names for {theta0.size} parameters")
    return FisherForecast(names, theta0, np.asarray(J), np.asarray(C), np.asarray(F))
