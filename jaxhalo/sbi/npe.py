"""Neural posterior estimation: an ensemble of masked autoregressive flows (flowjax) for p(theta | x).

Brooks et al. (2025 §3, 2026 §4) train ``sbi``'s MAF (5 transformation layers, 50 hidden units)
on their suites and average an ensemble. Here:

* inputs and outputs are standardised (z-scores from the training rows); the flow models
  z_theta | z_x, and densities in theta carry the Jacobian -sum(log std_theta);
* each member is a :func:`flowjax.flows.masked_autoregressive_flow` (``flow_layers`` MADE layers,
  ``nn_width`` hidden units, ``nn_depth`` hidden layers each, affine transformers), trained by
  maximum likelihood with Adam (gradient norm clipped at 5, as ``sbi``), minibatches of
  ``batch_size``, a held-out validation split of ``val_fraction`` and early stopping after
  ``patience`` epochs without improvement (best parameters kept); a whole epoch is one jitted
  ``lax.scan`` over minibatches;
* the ensemble is the equal-weight mixture of its members;
* optionally, Gaussian survey errors ``summary_sigma`` (S,) are added to the summaries afresh in
  every minibatch (Brooks et al. 2026 §3.2 forward-model survey uncertainties onto the binned
  summaries);
* samples outside the prior's support are rejected (as ``sbi``'s default), so the posterior is
  truncated to the prior box.

:func:`save_npe` / :func:`load_npe` store a model as one file: a JSON header line (settings,
names, standardisation) followed by the equinox-serialised leaves.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import arviz as az
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax
from flowjax.distributions import Normal
from flowjax.flows import masked_autoregressive_flow
from jax import Array
from jax.typing import ArrayLike

from ..inference.variables import describe_variable
from ..simulation.parameters import PARAMETER_DESCRIPTIONS, PARAMETER_NAMES, PARAMETER_UNITS

__all__ = ["MIN_TRAINING_ROWS", "MIN_VALIDATION_ROWS", "NPEConfig", "NPEError", "NPEnsemble", "TrainingReport", "train_npe",
           "save_npe", "load_npe", "make_flow", "posterior_inference_data"]

_MAGIC = "jaxhalo-npe"
_VERSION = 1


class NPEError(ValueError):
    """Bad input to the posterior estimator (shapes, non-finite data, a foreign model file)."""


@dataclasses.dataclass(frozen=True)
class NPEConfig:
    """Architecture and training settings (defaults: Brooks et al.'s 5 x 50 MAF; ``sbi``'s training defaults)."""

    flow_layers: int = 5
    nn_width: int = 50
    nn_depth: int = 1
    n_ensemble: int = 5
    learning_rate: float = 5e-4
    batch_size: int = 200
    max_epochs: int = 500
    patience: int = 20
    val_fraction: float = 0.1
    clip_norm: float = 5.0

    def __post_init__(self):
        for name in ("flow_layers", "nn_width", "nn_depth", "n_ensemble", "batch_size", "max_epochs", "patience"):
            if int(getattr(self, name)) < 1:
                raise NPEError(f"NPEConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise NPEError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


def _typed_key(key: Array) -> Array:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(jnp.asarray(key, dtype=jnp.uint32))


def make_flow(key: Array, dim: int, cond_dim: int, config: NPEConfig):
    """One conditional MAF on R^dim given R^cond_dim (flowjax, standard-normal base)."""
    return masked_autoregressive_flow(
        _typed_key(key), base_dist=Normal(jnp.zeros(dim)), cond_dim=cond_dim, flow_layers=config.flow_layers,
        nn_width=config.nn_width, nn_depth=config.nn_depth, invert=True,
    )


class NPEnsemble(eqx.Module):
    """A trained posterior estimator q(theta | x): an equal-weight ensemble of flows.

    ``flows`` model the standardised z_theta | z_x; ``theta_mean``/``theta_std`` (P,),
    ``x_mean``/``x_std`` (S,) are the standardisation; ``x_fill`` (S,) the values that replace
    NaN summaries (NaN, i.e. no imputation, unless trained with ``impute_missing``); ``lower``/``upper`` (P,) the prior
    support used to reject samples (+-inf where unbounded); names label theta and x.
    """

    flows: tuple
    theta_mean: Array
    theta_std: Array
    x_mean: Array
    x_std: Array
    x_fill: Array
    lower: Array
    upper: Array
    parameter_names: tuple[str, ...] = eqx.field(static=True)
    config: NPEConfig = eqx.field(static=True)

    @property
    def dim(self) -> int:
        return int(self.theta_mean.shape[0])

    @property
    def cond_dim(self) -> int:
        return int(self.x_mean.shape[0])

    def _check_x(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x, dtype=self.x_mean.dtype)
        if x.ndim < 1 or x.shape[-1] != self.cond_dim:
            raise NPEError(f"the summary vector must have length {self.cond_dim} (the model was trained on "
                           f"{self.cond_dim} summaries), got shape {x.shape}")
        return x

    def _zx(self, x: Array) -> Array:
        x = jnp.where(jnp.isnan(x), self.x_fill, x)  # x_fill is NaN unless trained with impute_missing
        return (x - self.x_mean) / self.x_std

    def log_prob(self, theta: ArrayLike, x: ArrayLike) -> Array:
        """log q(theta | x) in the original units; theta (..., P), x (..., S) broadcast."""
        x = self._check_x(x)
        theta = jnp.asarray(theta, dtype=self.theta_mean.dtype)
        if theta.shape[-1] != self.dim:
            raise NPEError(f"theta must have length {self.dim}, got shape {theta.shape}")
        return _log_prob(self, theta, x)

    def sample_raw(self, key: Array, x: ArrayLike, n: int) -> Array:
        """n draws of the ensemble mixture without prior rejection: (n, *batch(x), P)."""
        x = self._check_x(x)
        zx = self._zx(x)
        key = _typed_key(key)
        k_m, *k_f = jax.random.split(key, len(self.flows) + 1)
        zs = jnp.stack([f.sample(k, (n,), condition=zx) for f, k in zip(self.flows, k_f)])  # (K, n, ..., P)
        member = jax.random.randint(k_m, (n,) + zx.shape[:-1], 0, len(self.flows))
        z = jnp.take_along_axis(zs, member[None, ..., None], axis=0)[0]
        return self.theta_mean + self.theta_std * z

    def sample(self, key: Array, x: ArrayLike, n: int, reject: bool = True, max_rounds: int = 50) -> np.ndarray:
        """n posterior draws for x (S,) or a batch x (N, S): NumPy (n, P) or (n, N, P).

        With ``reject`` (default) draws outside the prior support are discarded and topped up;
        raises :class:`NPEError` if the acceptance is so low that ``max_rounds`` rounds do not
        suffice (the observation is then far outside what the suite covers).
        """
        x = self._check_x(x)
        single = x.ndim == 1
        xb = x[None] if single else x.reshape(-1, self.cond_dim)
        N = xb.shape[0]
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        fixed = lo == hi
        out = np.full((n, N, self.dim), np.nan)
        filled = np.zeros(N, dtype=int)
        key = _typed_key(key)
        for r in range(max_rounds):
            key, sub = jax.random.split(key)
            s = np.array(_draw(self, sub, xb, n))  # (n, N, P), writable
            if not reject:
                return s[:, 0] if single else s.reshape((n,) + x.shape[:-1] + (self.dim,))
            s[..., fixed] = lo[fixed]
            ok = np.all((s >= lo) & (s <= hi), axis=-1) & np.all(np.isfinite(s), axis=-1)  # (n, N)
            for i in np.flatnonzero(filled < n):
                good = s[ok[:, i], i]
                take = min(n - filled[i], good.shape[0])
                out[filled[i]:filled[i] + take, i] = good[:take]
                filled[i] += take
            if np.all(filled >= n):
                break
        else:
            worst = int(np.argmin(filled))
            raise NPEError(f"prior rejection kept only {filled[worst]} of {n} draws for observation {worst} after "
                           f"{max_rounds} rounds: the summaries lie outside what the training suite covers")
        return out[:, 0] if single else out.reshape((n,) + x.shape[:-1] + (self.dim,))


@eqx.filter_jit
def _log_prob(model: NPEnsemble, theta, x):
    zt = (theta - model.theta_mean) / model.theta_std
    zx = model._zx(x)
    lps = jnp.stack([f.log_prob(zt, zx) for f in model.flows])
    return jax.nn.logsumexp(lps, axis=0) - math.log(len(model.flows)) - jnp.sum(jnp.log(model.theta_std))


@eqx.filter_jit
def _draw(model: NPEnsemble, key, x, n: int):
    return model.sample_raw(key, x, n)


@dataclasses.dataclass
class TrainingReport:
    """Per-member training curves and timings of :func:`train_npe`."""

    train_loss: list[list[float]]
    val_loss: list[list[float]]
    best_val: list[float]
    epochs: list[int]
    wall_s: list[float]
    n_train: int
    n_val: int
    n_dropped: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _loss(params, static, zt, zx):
    flow = paramax.unwrap(eqx.combine(params, static))
    return -jnp.mean(flow.log_prob(zt, zx))


@eqx.filter_jit
def _epoch(params, static, opt_state, optimizer, zt, x, x_mean, x_std, sigma, key, batch_size: int):
    n = zt.shape[0]
    nb = n // batch_size
    k_perm, k_noise = jax.random.split(key)
    idx = jax.random.permutation(k_perm, n)[: nb * batch_size].reshape(nb, batch_size)
    noise_keys = jax.random.split(k_noise, nb)

    def step(carry, inp):
        params, opt_state = carry
        ib, kn = inp
        xb = x[ib] + sigma * jax.random.normal(kn, (batch_size, x.shape[1]), x.dtype)
        loss, grads = eqx.filter_value_and_grad(_loss)(params, static, zt[ib], (xb - x_mean) / x_std)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (eqx.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (idx, noise_keys))
    return params, opt_state, jnp.mean(losses)


@functools.lru_cache(maxsize=8)
def _optimizer(clip_norm: float, learning_rate: float) -> optax.GradientTransformation:
    """Adam with global-norm clipping; cached so that repeated trainings reuse the compiled epoch."""
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(learning_rate))


@eqx.filter_jit
def _val_loss(params, static, zt, zx):
    return _loss(params, static, zt, zx)


#: Least training rows (besides one full batch) and validation rows :func:`train_npe` accepts.
MIN_TRAINING_ROWS = 20
MIN_VALIDATION_ROWS = 5


def train_npe(
    theta: ArrayLike,
    x: ArrayLike,
    key: Array,
    config: NPEConfig = NPEConfig(),
    parameter_names: Sequence[str] | None = None,
    prior_bounds: tuple[ArrayLike, ArrayLike] | None = None,
    summary_sigma: ArrayLike | None = None,
    impute_missing: bool = False,
    progress: bool = False,
) -> tuple[NPEnsemble, TrainingReport]:
    """Train an ensemble posterior estimator on a suite's rows.

    theta (N, P) parameters and x (N, S) summaries (rows with any non-finite entry are dropped
    and counted); ``prior_bounds`` (lower (P,), upper (P,)) for sample rejection;
    ``summary_sigma`` (S,) Gaussian errors added to x in every minibatch (and once, with a fixed
    key, to the validation rows). ``impute_missing``: replace NaN summaries (empty bins of
    low-particle simulations) by the column mean of the training rows, here and whenever the model
    is conditioned later, instead of dropping those rows. Returns the model and a
    :class:`TrainingReport`.
    """
    theta = np.asarray(theta, dtype=float)
    x = np.asarray(x, dtype=float)
    if theta.ndim != 2 or x.ndim != 2 or theta.shape[0] != x.shape[0]:
        raise NPEError(f"need theta (N, P) and x (N, S) with the same N; got {theta.shape} and {x.shape}")
    if impute_missing:  # NaN entries (empty bins) -> the column mean; rows with no finite summary are dropped
        ok = np.all(np.isfinite(theta), axis=1) & np.any(np.isfinite(x), axis=1) & ~np.any(np.isinf(x), axis=1)
    else:
        ok = np.all(np.isfinite(theta), axis=1) & np.all(np.isfinite(x), axis=1)
    n_dropped = int((~ok).sum())
    theta, x = theta[ok], x[ok]
    if impute_missing:
        with np.errstate(invalid="ignore"):
            x_fill = np.nanmean(x, axis=0)
        if np.any(np.isnan(x_fill)):
            raise NPEError(f"summaries {np.flatnonzero(np.isnan(x_fill)).tolist()} are NaN in every row")
        x = np.where(np.isnan(x), x_fill, x)
    else:
        x_fill = np.full(x.shape[1], np.nan)
    N, P = theta.shape
    S = x.shape[1]
    n_val = max(1, int(round(config.val_fraction * N)))
    if n_val < MIN_VALIDATION_ROWS or N - n_val < max(config.batch_size, MIN_TRAINING_ROWS):
        raise NPEError(f"{N} usable rows ({n_dropped} non-finite dropped) split into {N - n_val} training and {n_val} "
                       f"validation rows; training needs at least max(batch {config.batch_size}, {MIN_TRAINING_ROWS}) "
                       f"training and {MIN_VALIDATION_ROWS} validation rows (early stopping on fewer is noise): "
                       "simulate more, lower --batch or raise --val-frac")
    names = tuple(parameter_names) if parameter_names is not None else tuple(f"theta_{i}" for i in range(P))
    if len(names) != P:
        raise NPEError(f"{len(names)} parameter names for {P} parameters")
    sigma = np.zeros(S) if summary_sigma is None else np.broadcast_to(np.asarray(summary_sigma, float), (S,)).copy()
    if np.any(~np.isfinite(sigma)) or np.any(sigma < 0):
        raise NPEError("summary_sigma must be finite and >= 0")

    key = _typed_key(key)
    k_split, k_valnoise, key = jax.random.split(key, 3)
    perm = np.asarray(jax.random.permutation(k_split, N))
    val, tr = perm[:n_val], perm[n_val:]
    t_mean, t_std = theta[tr].mean(0), theta[tr].std(0)
    t_std = np.where(t_std > 0, t_std, 1.0)
    x_noisy_tr = x[tr] + 0.0
    x_mean, x_std = x_noisy_tr.mean(0), np.sqrt(x_noisy_tr.var(0) + sigma**2)
    x_std = np.where(x_std > 0, x_std, 1.0)
    zt_tr = jnp.asarray((theta[tr] - t_mean) / t_std)
    zt_val = jnp.asarray((theta[val] - t_mean) / t_std)
    x_tr = jnp.asarray(x[tr])
    x_val = x[val] + sigma * np.asarray(jax.random.normal(k_valnoise, (n_val, S)))
    zx_val = jnp.asarray((x_val - x_mean) / x_std)
    xm, xs, sg = jnp.asarray(x_mean), jnp.asarray(x_std), jnp.asarray(sigma)

    optimizer = _optimizer(float(config.clip_norm), float(config.learning_rate))
    flows, report = [], TrainingReport([], [], [], [], [], int(tr.size), int(n_val), n_dropped)
    for m in range(config.n_ensemble):
        t0 = time.perf_counter()
        key, k_init, k_train = jax.random.split(key, 3)
        flow = make_flow(k_init, P, S, config)
        params, static = eqx.partition(flow, eqx.is_inexact_array, is_leaf=lambda l: isinstance(l, paramax.NonTrainable))
        opt_state = optimizer.init(params)
        best, best_params, since = np.inf, params, 0
        tl, vl = [], []
        for epoch in range(config.max_epochs):
            k_train, k_ep = jax.random.split(k_train)
            params, opt_state, l_tr = _epoch(params, static, opt_state, optimizer, zt_tr, x_tr, xm, xs, sg, k_ep,
                                             config.batch_size)
            l_val = float(_val_loss(params, static, zt_val, zx_val))
            tl.append(float(l_tr))
            vl.append(l_val)
            if l_val < best:
                best, best_params, since = l_val, params, 0
            else:
                since += 1
                if since >= config.patience:
                    break
            if progress and epoch % 10 == 0:
                print(f"  member {m + 1}/{config.n_ensemble} epoch {epoch}: train {tl[-1]:.4f} val {l_val:.4f} "
                      f"(best {best:.4f})", flush=True)
        flows.append(eqx.combine(best_params, static))
        report.train_loss.append(tl)
        report.val_loss.append(vl)
        report.best_val.append(best)
        report.epochs.append(len(tl))
        report.wall_s.append(time.perf_counter() - t0)
        if progress:
            print(f"  member {m + 1}/{config.n_ensemble}: {len(tl)} epochs, best val loss {best:.4f}, "
                  f"{report.wall_s[-1]:.1f} s", flush=True)
    if prior_bounds is None:
        lower, upper = np.full(P, -np.inf), np.full(P, np.inf)
    else:
        lower, upper = (np.broadcast_to(np.asarray(b, float), (P,)) for b in prior_bounds)
    model = NPEnsemble(tuple(flows), jnp.asarray(t_mean), jnp.asarray(t_std), xm, xs, jnp.asarray(x_fill), jnp.asarray(lower),
                       jnp.asarray(upper), names, config)
    return model, report


# ---------------------------------------------------------------------------- persistence


def save_npe(model: NPEnsemble, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the model to one file: a JSON header line, then the equinox-serialised leaves."""
    path = Path(path)
    header = {
        "format": _MAGIC, "version": _VERSION, "config": dataclasses.asdict(model.config),
        "parameter_names": list(model.parameter_names), "dim": model.dim, "cond_dim": model.cond_dim,
        "metadata": metadata or {},
    }
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(header).encode() + b"\n")
        fh.write(buf.getvalue())
    tmp.replace(path)
    return path


def read_npe_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a saved model (settings, names, metadata); :class:`NPEError` for a foreign file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            line = fh.readline(1 << 20)
        header = json.loads(line)
    except (OSError, ValueError) as exc:
        raise NPEError(f"{path} is not a jaxhalo NPE model file ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != _MAGIC:
        raise NPEError(f"{path} is not a jaxhalo NPE model file")
    if header.get("version") != _VERSION:
        raise NPEError(f"{path}: model file version {header.get('version')}, this jaxhalo reads {_VERSION}")
    return header


def load_npe(path: str | Path) -> tuple[NPEnsemble, dict[str, Any]]:
    """Read a model written by :func:`save_npe`; returns (model, header)."""
    path = Path(path)
    header = read_npe_header(path)
    config = NPEConfig(**header["config"])
    P, S = int(header["dim"]), int(header["cond_dim"])
    keys = jax.random.split(jax.random.key(0), config.n_ensemble)
    flows = tuple(make_flow(k, P, S, config) for k in keys)
    z = jnp.zeros
    skeleton = NPEnsemble(flows, z(P), z(P), z(S), z(S), z(S), z(P), z(P), tuple(header["parameter_names"]), config)
    with open(path, "rb") as fh:
        fh.readline(1 << 20)
        try:
            model = eqx.tree_deserialise_leaves(fh, skeleton)
        except Exception as exc:  # equinox raises several types on a truncated / mismatched file
            raise NPEError(f"corrupt NPE model file {path}: {exc}") from exc
    return model, header


#: Units and descriptions of :func:`jaxhalo.sbi.derived.derived_masses`' outputs (at r = 50 kpc).
_DERIVED = {
    "m200_mw": ("Msun", "M200 of the MW halo"),
    "m_mw_lt50": ("Msun", "MW mass within 50 kpc (halo, bulge and disc)"),
    "m_lmc_lt50": ("Msun", "LMC mass within 50 kpc of its centre"),
    "mass_ratio_lt50": ("", "M_LMC(< 50 kpc) / M_MW(< 50 kpc)"),
    "m_lmc_over_m200": ("", "total LMC mass / M200 of the MW"),
    "lambda_df": ("", "dynamical-friction strength lambda_DF"),
}


def _describe(name: str) -> tuple[str, str]:
    if name in PARAMETER_NAMES:
        i = PARAMETER_NAMES.index(name)
        return PARAMETER_UNITS[i], PARAMETER_DESCRIPTIONS[i]
    if name in _DERIVED:
        return _DERIVED[name]
    try:
        return describe_variable(name)  # the reflex targets of ``sbi train --with-reflex``
    except KeyError:
        return "", name


def posterior_inference_data(
    samples: ArrayLike,
    parameter_names: Sequence[str],
    derived: dict[str, ArrayLike] | None = None,
    x_obs: ArrayLike | None = None,
    summary_labels: Sequence[str] | None = None,
) -> az.InferenceData:
    """arviz InferenceData of NPE posterior draws, e.g. :meth:`NPEnsemble.sample`'s (n, P).

    samples : (n, P) independent draws, split in order into 4 (or 2) pseudo-chains where n allows (so
        that arviz's R-hat and ESS apply: ~1 and ~n for independent draws), or (chains, draws, P).
    parameter_names : the P names (one posterior variable each).
    derived : extra posterior variables shaped like one column of ``samples`` (e.g.
        :func:`jaxhalo.sbi.derived.derived_masses`).
    x_obs : the observed summary vector (S,), stored as ``observed_data.summaries`` with dim
        ``summary`` whose coordinate is ``summary_labels`` (default 0..S-1).

    Every posterior variable carries ``units`` and ``description`` attributes (the simulator's
    Table 1 parameters, the derived masses, the reflex targets of ``sbi train --with-reflex``).
    """
    s = np.asarray(samples, dtype=float)
    names = list(parameter_names)
    if s.ndim == 2:  # independent draws: split into pseudo-chains so that arviz's diagnostics apply
        chains = next(c for c in (4, 2, 1) if s.shape[0] % c == 0 and s.shape[0] >= 4 * c)
        s = s.reshape((chains, -1) + s.shape[1:])
    if s.ndim != 3 or s.shape[-1] != len(names):
        raise NPEError(f"samples must be (n, {len(names)}) or (chains, n, {len(names)}), got shape {np.shape(samples)}")
    post = {n: s[..., i] for i, n in enumerate(names)}
    for k, v in (derived or {}).items():
        post[k] = np.asarray(v, dtype=float).reshape(s.shape[:2])  # in the order of ``samples``' rows
    kwargs: dict[str, Any] = {"posterior": post}
    if x_obs is not None:
        x = np.asarray(x_obs, dtype=float).reshape(-1)
        labels = np.arange(x.size) if summary_labels is None else np.asarray([str(v) for v in summary_labels])
        if labels.size != x.size:
            raise NPEError(f"{labels.size} summary labels for {x.size} summaries")
        kwargs.update(observed_data={"summaries": x}, dims={"summaries": ["summary"]}, coords={"summary": labels})
    idata = az.from_dict(**kwargs)
    for name, var in idata.posterior.data_vars.items():
        unit, description = _describe(name)
        var.attrs.update(units=unit, description=description)
    idata.posterior.attrs["description"] = ("neural posterior estimate (jaxhalo.sbi.npe): independent draws of the "
                                            "ensemble q(theta | x_obs), truncated to the prior's support")
    if x_obs is not None:
        idata.observed_data["summaries"].attrs.update(
            units="km/s" if summary_labels is not None and str(labels[0]).startswith("mean_vgsr") else "",
            description="observed summary vector x_obs")
    return idata
