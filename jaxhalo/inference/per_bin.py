"""NUTS run independently in every bin, vmapped: one sampler per bin, each with its own
step size and (dense) mass matrix.

:func:`jaxhalo.inference.profiles.nuts_profile` samples all bins as one joint model, so a
single step size and one trajectory length serve every bin and numpyro adapts a diagonal mass
matrix over all B x P parameters. That is the wrong geometry for a profile: the bins are
independent, their posteriors differ in width by ``sqrt(N_max / N_min)`` (a factor of 20 in
Li et al. Table 1), and the mixture parameters within a bin are correlated (weights with
dispersions). Here every bin gets its own NUTS chain (numpyro's kernel, through its
functional ``hmc`` interface) on the single-bin model with a dense mass matrix, and the B
chains advance together under ``jax.vmap`` -- one compiled program per *bucket* of bins.

Buckets: bins are padded to a common length inside a bucket, and the all-stars row of Li et
al. Table 1 is as large as the 13 shells together, so padding every bin to it would cost 7x
the arithmetic. :func:`bucket_bins` groups bins of similar size (an exact dynamic programme
over the sorted counts that minimises padded star slots plus a fixed cost per bucket); the
Li et al. layout gives 2-3 buckets.

The per-bin models are the binned models of :mod:`jaxhalo.inference.profiles` called with
B = 1, so priors, deterministic sites and sign conventions are exactly theirs.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Mapping, NamedTuple, Sequence

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax import Array
from jax.typing import ArrayLike
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc import hmc
from numpyro.infer.util import constrain_fn, initialize_model, potential_energy

from ..likelihoods.binned import BinError, pad_bins, warn_small_bins
from .optim import lbfgs_backtracking, lbfgs_scan
from .variables import LI2025_SIGN_CONVENTIONS, describe_profile_variable

__all__ = ["MAX_DRAWS_FACTOR", "MIN_OVERHEAD_STARS", "PerBinNUTS", "bucket_bins", "bucket_draw_factors", "nuts_per_bin",
           "per_bin_inference_data"]


class PerBinNUTS(NamedTuple):
    """Result of :func:`nuts_per_bin`.

    samples : dict site -> (chains, draws, B, ...) constrained and deterministic sites of the
        single-bin model (its leading bin axis of length 1 replaced by the B bins); NaN in
        invalid bins.
    diverging, num_steps, accept_prob : (chains, draws, B) per-draw NUTS diagnostics. Where a
        bin's bucket ran ``thin > 1`` NUTS iterations per returned draw (``draws_per_bucket``),
        they cover those iterations: diverging if any of them diverged, num_steps the sum of
        their leapfrog steps, accept_prob their mean.
    step_size : (chains, B) adapted step sizes.
    counts : (B,) stars per bin; valid : (B,) counts >= min_stars.
    buckets : the bins of each compiled bucket (lists of bin indices).
    wall_s : seconds from the start until each bucket's draws were in hand (cumulative: the
        buckets run asynchronously, concurrently when there are several devices).
    thin : (B,) NUTS iterations after warmup per returned draw in each bin (1 everywhere with
        ``draws_per_bucket="equal"`` or ``keep_every_iteration``; 0 in bins that were not
        sampled). The bin ran ``thin x draws`` iterations and every ``thin``-th state was kept.
    n_draws : (B,) draws per chain each bin holds (``num_samples`` x its bucket's factor with
        ``keep_every_iteration``, else ``num_samples``; 0 in bins that were not sampled). Where
        they differ, the draw axis is the longest and a bin's draws past its own ``n_draws``
        are NaN (diverging False, num_steps 0, accept_prob NaN): take one bin's whole run with
        :meth:`bin_samples`.
    """

    samples: dict
    diverging: np.ndarray
    num_steps: np.ndarray
    accept_prob: np.ndarray
    step_size: np.ndarray
    counts: np.ndarray
    valid: np.ndarray
    buckets: list
    wall_s: list
    thin: np.ndarray
    n_draws: np.ndarray

    @property
    def equal_draws(self) -> bool:
        """Whether every sampled bin holds the same number of draws (no NaN padding)."""
        n = np.asarray(self.n_draws)[np.asarray(self.valid)]
        return bool(n.size == 0 or np.all(n == n[0]))

    def bin_samples(self, b: int) -> dict:
        """Bin ``b``'s draws: site -> (chains, n_draws[b], ...), without the padding of shorter bins."""
        return {k: v[:, : int(self.n_draws[b]), b] for k, v in self.samples.items()}

    def flat_samples(self) -> dict:
        """Samples with chains merged: site -> (chains * draws, B, ...), the layout of
        :func:`jaxhalo.likelihoods.binned.summarize_profile` (which ignores the NaN padding of
        bins with fewer draws, :attr:`n_draws`)."""
        return {k: v.reshape((-1,) + v.shape[2:]) for k, v in self.samples.items()}


#: Least default price of one more compiled bucket, in star slots (:func:`bucket_bins`).
MIN_OVERHEAD_STARS = 2_000


def bucket_bins(counts: Sequence[int], overhead_stars: float | None = None) -> list[list[int]]:
    """Group bins into buckets of similar size for padded, vmapped evaluation.

    Minimises ``sum over buckets of (bins in bucket) x (largest count in bucket) +
    overhead_stars x (number of buckets)`` exactly (dynamic programme over the bins sorted by
    count; buckets are runs of that order). ``overhead_stars`` prices one extra compiled
    program in star slots; default 10% of all star slots (sum of counts), but at least
    :data:`MIN_OVERHEAD_STARS`: tracing and compiling one more NUTS program costs 10-20 s on a CPU
    (``jaxhalo profiles`` on 300 stars, bins of 208 and 87 fitted, 60 + 60 iterations: 56 s in two
    buckets, 32 s in one), more than padding a small catalogue's bins costs, so those share one
    program. Returns lists of bin indices, largest bins first. Bins with count 0 are left out.
    """
    c = np.asarray(counts, int)
    order = [int(i) for i in np.argsort(-c, kind="stable") if c[i] > 0]
    if not order:
        return []
    if overhead_stars is None:
        overhead_stars = max(0.1 * float(c.sum()), MIN_OVERHEAD_STARS)
    s = c[order].astype(float)
    n = len(order)
    best = np.full(n + 1, np.inf)
    best[0], cut = 0.0, np.zeros(n + 1, int)
    for j in range(1, n + 1):  # best[j]: cost of the first j bins; last bucket = order[i:j]
        for i in range(j):
            cost = best[i] + (j - i) * s[i] + overhead_stars
            if cost < best[j]:
                best[j], cut[j] = cost, i
    out, j = [], n
    while j > 0:
        out.append(order[cut[j] : j])
        j = cut[j]
    return out[::-1]


#: Largest ``draws_per_bucket="scaled"`` multiplier.
MAX_DRAWS_FACTOR = 8


def bucket_draw_factors(counts: Sequence[int], buckets: Sequence[Sequence[int]],
                        max_factor: int = MAX_DRAWS_FACTOR) -> list[int]:
    """``draws_per_bucket="scaled"``: NUTS iterations per returned draw for each bucket.

    A bucket's cost per iteration is its padded star slots, ``S_b = (bins in bucket) x
    (largest count in bucket)`` (what :func:`bucket_bins` minimises). Bucket b gets
    ``m_b = clip(round(sqrt(S_max / S_b)), 1, max_factor)`` iterations per draw, S_max the most
    expensive bucket's slots: the costliest bucket(s) keep one iteration per draw, and the extra
    cost of bucket b, ``(m_b - 1) S_b``, stays below ``sqrt(S_max S_b)`` -- at most about one
    S_max per bucket, and much less for cheap buckets. Cheap buckets are the ones of small bins,
    whose posteriors are the least Gaussian and mix the worst per draw (on the 64,000-star Li
    et al. layout the 162-star bin gave 0.49 bulk ESS per draw, every bin of >= 772 stars
    1.3-2.6), so the rule spends the extra iterations where they are cheap and most needed. On
    that layout (buckets of 64,000 / 10 x 6,933 / 3 x 1,581 slots) it gives [1, 1, 4].
    """
    slots = np.array([len(b) * max(int(counts[i]) for i in b) for b in buckets], float)
    if slots.size == 0:
        return []
    m = np.rint(np.sqrt(slots.max() / slots))
    return [int(v) for v in np.clip(m, 1, max(int(max_factor), 1))]


def _one_bin_kwargs(data: Mapping[str, Array], b) -> dict:
    return {k: v[b][None] for k, v in data.items()}


def nuts_per_bin(
    model: Callable,
    masks: np.ndarray,
    columns: Mapping[str, np.ndarray],
    static: Mapping | None = None,
    *,
    key: Array | None = None,
    num_warmup: int = 200,
    num_samples: int = 500,
    num_chains: int = 1,
    dense_mass: bool = True,
    adapt_mass_matrix: bool | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    min_stars: int = 10,
    fill: Mapping[str, float] | None = None,
    overhead_stars: float | None = None,
    init: str = "laplace",
    map_steps: int = 100,
    init_jitter: float = 0.2,
    progress: bool = False,
    warn: bool = True,
    vectorize: bool | None = None,
    devices: Sequence | None = None,
    draws_per_bucket: str | Sequence[int] = "equal",
    keep_every_iteration: bool = False,
) -> PerBinNUTS:
    """Sample a binned model's posterior bin by bin, every bin's NUTS chain vmapped.

    model : a binned numpyro model of :mod:`jaxhalo.inference.profiles` (padded layout), e.g.
        ``mixture_profile_model`` or ``dipole_model``; it is called with one bin at a time.
    masks : (B, N) boolean bin membership (bins may overlap).
    columns : model keyword -> per-star array with leading axis N (e.g. ``x`` (N, D),
        ``errors`` (N, D)); padded into (1, N_max, ...) per bin; the model's ``mask`` keyword
        is supplied here.
    static : the model's non-array keywords (``n_components``, ``prior``, ...).
    num_warmup, num_samples : NUTS iterations per chain (warmup adapts the step size, and the
        mass matrix where ``adapt_mass_matrix``).
    dense_mass : dense (default) or diagonal mass matrix.
    adapt_mass_matrix : re-estimate the mass matrix during warmup (numpyro's windowed
        adaptation). Default: not with ``init="laplace"``, whose inverse Hessian at the mode is
        kept (only the step size is adapted); yes with ``init="prior"``. On the 64,000-star
        Li et al. layout the Laplace mass matrix gave every bin of >= 772 stars a min bulk ESS
        of 630-1070 per 500 draws, against 280-550 when it was re-estimated over 300 warmup
        iterations (benchmarks/bench_profiles.py).
    num_chains : chains per bin, vmapped alongside the bins (R-hat per bin needs >= 2).
    min_stars : bins with fewer stars are not sampled (reported NaN, with a warning).
    fill : value for padded slots per column (default 0). The jaxhalo likelihoods mask padded
        stars before any arithmetic, so it only matters for models that do not.
    overhead_stars : see :func:`bucket_bins`.
    init : ``"laplace"`` (default): per bin, ``map_steps`` L-BFGS steps from the prior median
        to the posterior mode, then each chain starts at a draw from the Laplace approximation
        there, with its inverse Hessian as the inverse mass matrix -- exact for a Gaussian
        posterior, which a bin of thousands of stars nearly has. ``"prior"``: start at the
        prior median (unconstrained) plus U(-init_jitter, init_jitter) per coordinate, unit
        initial mass matrix.
    progress : print one line per bucket (bins, padded length, seconds).
    vectorize : advance the bins of a bucket together under ``jax.vmap`` (True) or one after
        another under ``jax.lax.map`` (False). vmap keeps an accelerator busy, but every
        iteration then costs the longest of the bins' trajectories; on CPU, where one bin's
        stars already fill the cores, ``lax.map`` is faster. Default: vmap unless the default
        JAX backend is the CPU. Both use the same keys per bin; the draws agree in
        distribution, not bit for bit (round-off differs between the vectorised programs).
    devices : devices to spread the buckets over (default: every local device of the default
        backend). On a CPU, give the process several XLA host devices *before* JAX starts
        (``numpyro.set_host_device_count(2)``) and the buckets run concurrently (on a 2-core
        CPU this gained nothing: one bucket already keeps both cores busy). The draws do not
        depend on the devices.

    draws_per_bucket : NUTS iterations per returned draw, per bucket. ``"equal"`` (default):
        one in every bucket, as before. ``"scaled"``: :func:`bucket_draw_factors` -- buckets
        whose iterations are cheap (small bins) run up to ``MAX_DRAWS_FACTOR`` (8) times more
        iterations. A sequence of ints: one factor per bucket, in the order of
        :func:`bucket_bins` (``res.buckets``). Every bin still returns ``num_samples`` draws:
        a bucket with factor m runs ``m x num_samples`` iterations after the same
        ``num_warmup`` and keeps every m-th state (thinning inside the scan, so memory does
        not grow). ESS computed from ``res.samples`` is then that of the thinned draws; with
        autocorrelated chains it is up to m times that of ``num_samples`` unthinned ones (on
        the 64,000-star Li et al. benchmark, ``"scaled"`` = [1, 1, 4]: see
        benchmarks/results/profiles_cpu2.json). ``res.thin`` gives the factor per bin, and the
        per-draw diagnostics sum (num_steps), any (diverging) or average (accept_prob) over
        the m iterations. Buckets with factor 1 run the same program, with the same keys, as
        under ``"equal"``, so their draws are identical.
    keep_every_iteration : return all ``m x num_samples`` iterations of a bucket with factor m
        instead of every m-th (``res.n_draws`` per bin; shorter bins NaN-padded on the draw
        axis, :class:`PerBinNUTS`). Thinning discards ESS that NUTS paid for: on the 64,000-star
        benchmark's three smallest bins, 2,000 iterations gave a min bulk ESS of 265-333 kept
        every 4th and 397-3,709 kept whole (``benchmarks/results/profiles_small_bins_cpu2.json``).
        The chains are the same as with thinning (same keys, same iterations); memory grows m-fold
        for those bins.

    Runs one compiled program per bucket of similar-sized bins (a handful); no Python loop
    runs over bins or draws.
    """
    static = dict(static or {})
    if init not in ("laplace", "prior"):
        raise ValueError(f"init must be 'laplace' or 'prior', got {init!r}")
    if adapt_mass_matrix is None:
        adapt_mass_matrix = init != "laplace"
    masks = np.asarray(masks, bool)
    if masks.ndim != 2:
        raise BinError(f"masks must be (B, N), got shape {masks.shape}")
    B = masks.shape[0]
    names = list(columns)
    if "mask" in names:
        raise BinError("the `mask` keyword is built from `masks`; do not pass it in `columns`")
    fill = dict(fill or {})
    counts = masks.sum(axis=1)
    valid = counts >= min_stars
    if warn:
        warn_small_bins(counts, valid, min_stars)
    key = jax.random.PRNGKey(0) if key is None else key
    if vectorize is None:
        vectorize = jax.default_backend() != "cpu"
    buckets = bucket_bins(np.where(valid, counts, 0), overhead_stars)
    if isinstance(draws_per_bucket, str):
        if draws_per_bucket == "equal":
            factors = [1] * len(buckets)
        elif draws_per_bucket == "scaled":
            factors = bucket_draw_factors(counts, buckets)
        else:
            raise ValueError(f"draws_per_bucket must be 'equal', 'scaled' or one int per bucket, got {draws_per_bucket!r}")
    else:
        factors = [int(f) for f in draws_per_bucket]
        if len(factors) != len(buckets) or min(factors, default=1) < 1:
            raise ValueError(f"draws_per_bucket: need {len(buckets)} ints >= 1 (one per bucket {buckets}), "
                             f"got {list(draws_per_bucket)}")

    # Buckets go round-robin to the local devices (on CPU: the XLA host devices, see
    # numpyro.set_host_device_count) and are all dispatched before any is awaited, so with
    # two or more devices they can sample concurrently; on one device they run in turn.
    devices = list(jax.local_devices()) if devices is None else list(devices)
    t0 = time.perf_counter()
    z_init = None
    futures = []
    for bi, bins in enumerate(buckets):
        dev = devices[bi % len(devices)]
        with jax.default_device(dev):
            pb = pad_bins(masks[bins], *(columns[k] for k in names), min_stars=0, warn=False)
            data = {k: jnp.nan_to_num(v, nan=fill.get(k, 0.0)) for k, v in zip(names, pb.data)}
            data["mask"] = pb.mask
            data = jax.device_put(data, dev)
            if z_init is None:
                z_init = _prior_median_init(model, data, static)
            futures.append(_run_bucket(model, data, static, jax.device_put(jax.random.fold_in(key, bi), dev),
                                       num_warmup, num_samples, num_chains, dense_mass, target_accept_prob,
                                       max_tree_depth, init_jitter, vectorize, init, map_steps, adapt_mass_matrix,
                                       jax.device_put(z_init, dev), factors[bi], keep_every_iteration))
    pieces, walls = [], []
    for bi, (bins, fut) in enumerate(zip(buckets, futures)):
        pieces.append((bins, jax.tree_util.tree_map(np.asarray, fut)))
        walls.append(time.perf_counter() - t0)
        if progress:
            print(f"[jaxhalo] NUTS bucket {bi + 1}/{len(buckets)} ({len(bins)} bins, up to {int(counts[bins].max())} "
                  f"stars, {factors[bi]} iteration(s) per draw) done at {walls[-1]:.1f} s", flush=True)
    res = _assemble(pieces, B, num_chains, counts, valid, buckets, walls)
    thin = np.zeros(B, int)
    for bins, f in zip(buckets, factors):
        thin[bins] = 1 if keep_every_iteration else f
    return res._replace(thin=thin)


def _prior_median_init(model: Callable, data: Mapping[str, Array], static: Mapping) -> dict:
    """Unconstrained prior medians of the single-bin model's sample sites (numpyro's
    ``init_to_median``), each with its leading bin axis of length 1.

    The site structure and the medians do not depend on the data, so this runs on one star,
    and under jit: run eagerly, numpyro's initialize_model took 15 s for the mixture model
    whatever the number of stars; jitted, 4 s.
    """
    kw0 = {**{k: v[:1, :1] for k, v in data.items()}, **static}
    return jax.jit(lambda k: initialize_model(
        k, model, model_kwargs=kw0, init_strategy=numpyro.infer.init_to_median(num_samples=15)).param_info.z
    )(jax.random.PRNGKey(0))


def _run_bucket(model, data, static, key, num_warmup, num_samples, num_chains, dense_mass, target_accept_prob,
                max_tree_depth, init_jitter, vectorize, init, map_steps, adapt_mass_matrix, z_init, thin=1,
                keep_every_iteration=False):
    """(samples dict (Bb, chains, draws, 1, ...), diverging, num_steps, accept_prob (Bb, chains, draws),
    step_size (Bb, chains)) for one bucket: ``thin x num_samples`` NUTS iterations after warmup, every
    ``thin``-th kept (draws = num_samples), or all of them with ``keep_every_iteration``."""
    Bb = data["mask"].shape[0]
    z_center, unravel = ravel_pytree(z_init)

    def potential_gen(**kw):
        return lambda z: potential_energy(model, (), {**kw, **static}, unravel(z))

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def laplace(kw):
        """Posterior mode (L-BFGS from the prior median) and the inverse Hessian there."""
        pot = potential_gen(**kw)
        z_map = lbfgs_scan(pot, z_center, map_steps, lbfgs_backtracking())
        # Hessian by central differences of the gradient (2P gradients, vmapped): it compiles
        # to the gradient program again, where jacrev(jacrev(.)) (the mixture's gradient is a
        # custom VJP, so no forward mode) doubled the bucket's compile time.
        g = jax.grad(pot)
        h = 1e-4 * (1.0 + jnp.abs(z_map))
        E = jnp.diag(h)
        G = jax.vmap(g)(jnp.concatenate([z_map + E, z_map - E]))
        H = (G[: z_map.size] - G[z_map.size :]) / (2.0 * h[:, None])
        w, V = jnp.linalg.eigh(0.5 * (H + H.T))
        w = jnp.clip(w, 1e-6 * jnp.max(jnp.abs(w)) + 1e-12)  # a saddle or flat direction: keep it wide
        cov = (V / w) @ V.T
        return z_map, cov

    def one_chain(k, kw, z_map, cov):
        k_init, k_jit = jax.random.split(k)
        if init == "laplace":
            z0 = z_map + jnp.linalg.cholesky(cov) @ jax.random.normal(k_jit, z_map.shape, z_map.dtype)
            inv_mass = cov if dense_mass else jnp.diag(cov)
        else:
            z0 = z_center + jax.random.uniform(k_jit, z_center.shape, z_center.dtype, -init_jitter, init_jitter)
            inv_mass = None
        state = init_kernel(z0, num_warmup, dense_mass=dense_mass, target_accept_prob=target_accept_prob,
                            inverse_mass_matrix=inv_mass, adapt_mass_matrix=adapt_mass_matrix,
                            max_tree_depth=max_tree_depth, model_kwargs=kw, rng_key=k_init)
        state = jax.lax.fori_loop(0, num_warmup, lambda i, s: sample_kernel(s, model_kwargs=kw), state)

        def body(s, _):
            s = sample_kernel(s, model_kwargs=kw)
            return s, (s.z, s.diverging, s.num_steps, s.accept_prob)

        if thin > 1 and not keep_every_iteration:
            def body(s, _):  # noqa: F811 -- thin iterations per kept state, diagnostics pooled over them
                def inner(_, c):
                    s, div, nst, acc = c
                    s = sample_kernel(s, model_kwargs=kw)
                    return s, div | s.diverging, nst + s.num_steps, acc + s.accept_prob

                zero = jnp.zeros((), s.accept_prob.dtype)
                s, div, nst, acc = jax.lax.fori_loop(
                    0, thin, inner, (s, jnp.zeros((), bool), jnp.zeros((), s.num_steps.dtype), zero))
                return s, (s.z, div, nst, acc / thin)

        length = num_samples * thin if keep_every_iteration else num_samples
        state, (zs, div, nst, acc) = jax.lax.scan(body, state, None, length=length)
        full = kw | static
        draws = jax.vmap(lambda z: constrain_fn(model, (), full, unravel(z), return_deterministic=True))(zs)
        return draws, div, nst, acc, state.adapt_state.step_size

    def one_bin(kb, b):
        kw = _one_bin_kwargs(data, b)
        z_map, cov = laplace(kw) if init == "laplace" else (z_center, None)
        return jax.vmap(lambda k: one_chain(k, kw, z_map, cov))(jax.random.split(kb, num_chains))

    keys, idx = jax.random.split(key, Bb), jnp.arange(Bb)
    if vectorize:
        return jax.jit(jax.vmap(one_bin))(keys, idx)
    return jax.jit(lambda ks, ix: jax.lax.map(lambda a: one_bin(*a), (ks, ix)))(keys, idx)


def _assemble(pieces, B, num_chains, counts, valid, buckets, walls) -> PerBinNUTS:
    """One PerBinNUTS from the buckets' pieces; the draw axis is the longest bucket's, shorter ones NaN-padded."""
    if not pieces:
        raise BinError("no bin has enough stars to fit")
    D = max(int(p[1][1].shape[2]) for p in pieces)
    samples, diag = {}, {}
    n_draws = np.zeros(B, int)
    for bins, (draws, div, nst, acc, step) in pieces:
        n = int(div.shape[2])
        n_draws[bins] = n
        for name, v in draws.items():  # v: (Bb, chains, draws, 1, ...)
            v = np.moveaxis(v[:, :, :, 0], 0, 2)  # (chains, draws, Bb, ...)
            if name not in samples:
                samples[name] = np.full((num_chains, D, B) + v.shape[3:], np.nan)
            samples[name][:, :n, bins] = v
        for name, v in (("diverging", div), ("num_steps", nst), ("accept_prob", acc)):
            if name not in diag:
                diag[name] = np.full((num_chains, D, B), np.nan if name == "accept_prob" else 0, v.dtype)
            diag[name][:, :n, bins] = np.moveaxis(v, 0, 2)
        if "step_size" not in diag:
            diag["step_size"] = np.full((num_chains, B), np.nan)
        diag["step_size"][:, bins] = np.moveaxis(step, 0, 1)
    return PerBinNUTS(samples, diag["diverging"], diag["num_steps"], diag["accept_prob"], diag["step_size"],
                      np.asarray(counts), np.asarray(valid), buckets, walls, np.ones(B, int), n_draws)


#: Dimensions after ``bin`` of the profile models' sites (:mod:`jaxhalo.inference.profiles`).
_PROFILE_DIMS = {"mean": ["component", "column"], "sigma": ["component", "column"],
                 "mean_other": ["component", "column_other"], "beta": ["component"], "weights": ["component"],
                 "weights_free": ["component"]}


def per_bin_inference_data(
    res: PerBinNUTS,
    ranges: ArrayLike | None = None,
    columns: Sequence[str] | None = None,
    components: Sequence[str] | None = None,
    order_column: int | None = None,
    labels: Sequence[str] | None = None,
    keep_empty: bool = False,
) -> az.InferenceData:
    """arviz InferenceData of a per-bin profile fit (:func:`nuts_per_bin`) with named dimensions.

    res : the fit. ranges : (B, 2) radial bin edges (kpc) -> coordinates ``r_lo``, ``r_hi``,
        ``r_mid`` on ``bin`` (default: none). columns : names of the mixture model's data columns
        (e.g. ``("v_r", "v_phi", "v_theta")``) -> coordinate of dim ``column`` (with a ``column_unit``
        coordinate: dex for ``feh``, else km/s); components : names of the mixture components
        (e.g. ``("MR", "MP")``) -> coordinate of ``component``. order_column : the ordered column
        (its name is left out of ``column_other``, the coordinate of the sampled ``mean_other``).
    labels : (B,) bin labels (default ``"{r_lo:g}-{r_hi:g} kpc"`` when ranges are given).
    keep_empty : keep the bins that were not fitted (all-NaN draws); by default they are left out
        and listed, by index, in the posterior's ``skipped_bins`` attribute (a JSON list).

    Groups: ``posterior`` (every sampled and deterministic site; dims chain, draw, bin, then
    component / column for the mixture's vector sites), ``sample_stats`` (diverging, n_steps,
    acceptance_rate, step_size; dims chain, draw, bin) and ``constant_data`` (``n_stars`` per bin).
    The ``bin`` coordinate is the bin's index in ``res``; ``n_stars``, ``label`` and the radii are
    coordinates along it. Each posterior variable carries ``units`` and ``description``
    attributes (:func:`jaxhalo.inference.variables.describe_profile_variable`).
    """
    B = int(res.counts.size)
    if not res.equal_draws:
        raise BinError(f"the bins hold different numbers of draws ({sorted(set(np.asarray(res.n_draws)[res.valid].tolist()))}, "
                       "keep_every_iteration=True): one InferenceData needs one draw axis; take each bin's run with "
                       "res.bin_samples(b), or fit with keep_every_iteration=False")
    keep = np.arange(B) if keep_empty else np.flatnonzero(res.valid)
    if keep.size == 0:
        raise BinError("no bin was fitted: nothing to put in an InferenceData")
    coords: dict = {"bin": keep}
    dims: dict = {}
    post = {}
    for name, v in res.samples.items():
        v = np.asarray(v)[:, :, keep]
        extra = _PROFILE_DIMS.get(name, [])
        if len(extra) != v.ndim - 3:
            extra = [f"{name}_dim_{i}" for i in range(v.ndim - 3)]
        post[name] = v
        dims[name] = ["bin"] + extra
    if columns is not None:
        columns = [str(c) for c in columns]
        coords["column"] = columns
        if order_column is not None:
            coords["column_other"] = [c for i, c in enumerate(columns) if i != order_column % len(columns)]
    if components is not None:
        coords["component"] = [str(c) for c in components]
    # only coordinates whose dimension is used (a dipole fit has no components)
    used = {d for ds in dims.values() for d in ds}
    coords = {k: v for k, v in coords.items() if k in used}
    step = np.broadcast_to(np.asarray(res.step_size)[:, None, keep], np.asarray(res.diverging)[:, :, keep].shape)
    stats = {"diverging": np.asarray(res.diverging)[:, :, keep], "n_steps": np.asarray(res.num_steps)[:, :, keep],
             "acceptance_rate": np.asarray(res.accept_prob)[:, :, keep], "step_size": np.array(step)}
    idata = az.from_dict(posterior=post, sample_stats=stats, constant_data={"n_stars": np.asarray(res.counts)[keep]},
                         coords=coords, dims={**dims, **{k: ["bin"] for k in stats}, "n_stars": ["bin"]})
    bin_coords = {"n_stars": ("bin", np.asarray(res.counts)[keep])}
    if ranges is not None:
        r = np.asarray(ranges, float)[keep]
        bin_coords.update(r_lo=("bin", r[:, 0]), r_hi=("bin", r[:, 1]), r_mid=("bin", 0.5 * (r[:, 0] + r[:, 1])))
        if labels is None:
            labels = [f"{a:g}-{b:g} kpc" for a, b in np.asarray(ranges, float)]
    if labels is not None:
        bin_coords["label"] = ("bin", np.asarray([str(x) for x in labels])[keep])
    if columns is not None and "column" in used:
        units = ["dex" if c.lower().startswith("feh") else "km/s" for c in columns]
    for group in idata.groups():
        ds = getattr(idata, group)
        ds = ds.assign_coords(bin_coords)
        if columns is not None and "column" in ds.dims:
            ds = ds.assign_coords(column_unit=("column", units))
        setattr(idata, group, ds)
    for name, var in idata.posterior.data_vars.items():
        try:
            unit, description = describe_profile_variable(name)
        except KeyError:
            unit, description = "", name
        var.attrs.update(units=unit, description=description)
    for name, (unit, description) in {
        "diverging": ("", "NUTS transition diverged"), "n_steps": ("", "leapfrog steps of the NUTS transition"),
        "acceptance_rate": ("", "mean Metropolis acceptance probability of the NUTS transition"),
        "step_size": ("", "adapted step size of the bin's chain (unconstrained space)"),
    }.items():
        idata.sample_stats[name].attrs.update(units=unit, description=description)
    idata.constant_data["n_stars"].attrs.update(units="", description="stars in the bin")
    idata.posterior.attrs["sign_conventions"] = LI2025_SIGN_CONVENTIONS
    idata.posterior.attrs["skipped_bins"] = json.dumps([int(i) for i in np.flatnonzero(~np.asarray(res.valid))])
    idata.posterior.attrs["description"] = ("independent NUTS chains per radial bin (jaxhalo.inference.per_bin); "
                                            "r_lo/r_hi/r_mid in kpc")
    return idata
