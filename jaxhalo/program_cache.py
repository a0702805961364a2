"""Traced programs kept on disk (``jax.export``), so that a repeated command skips tracing and lowering.

JAX's persistent compilation cache skips XLA compilation on a second run, but it is keyed by the
lowered program, so every run still traces the Python function and lowers it to StableHLO first: for
the ML fit of ``jaxhalo fit`` that was ~1.1 s of a 10 s run, all of it on the GIL. Here a program
is exported once (``jax.export``: its StableHLO, serialised) and later runs deserialise it (~1 ms)
and call it; XLA compilation of the deserialised module is then what the persistent cache holds.

Disabled by default (a plain ``jax.jit`` call); the command line enables it next to the compilation
cache (:func:`enable`). The key of a stored program is a SHA-256 of: the caller's key (the static
configuration, e.g. the model and priors), the pytree structure, shapes and dtypes of the arguments,
the versions of jax, jaxlib, numpyro, optax and equinox, the platform and device count, the float64
flag, and a hash of jaxhalo's own source files -- so an edited jaxhalo (an editable install) never
runs a stale program.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Hashable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["call", "enable", "enabled_directory", "prepare"]

_STATE: dict[str, Path | None] = {"dir": None}
_MEMORY: dict[str, Callable] = {}
_LOCK = threading.Lock()


def enable(directory: str | os.PathLike | None) -> None:
    """Keep exported programs in ``directory`` (created when needed); ``None`` turns it off."""
    _STATE["dir"] = None if directory is None else Path(directory)


def enabled_directory() -> Path | None:
    """The directory in use, or ``None`` when programs are not kept."""
    return _STATE["dir"]


@lru_cache(maxsize=1)
def _environment_key() -> str:
    """Versions of the numerical stack and a hash of jaxhalo's source (computed once per process)."""
    h = hashlib.sha256()
    for dist in ("jax", "jaxlib", "numpyro", "optax", "equinox"):
        try:
            h.update(f"{dist}={importlib.metadata.version(dist)};".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist}=?;".encode())
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _key(key: Hashable, treedef, avals) -> str:
    h = hashlib.sha256()
    h.update(_environment_key().encode())
    h.update(repr(key).encode())
    h.update(repr(treedef).encode())
    h.update(repr([(a.shape, str(a.dtype)) for a in avals]).encode())
    h.update(f"{jax.config.jax_enable_x64};{jax.default_backend()};{jax.device_count()}".encode())
    return h.hexdigest()


def call(fn: Callable, args: tuple, key: Hashable, compiler_options: dict | None = None) -> Any:
    """``jax.jit(fn)(*args)``, with ``fn`` (a pure function of array pytrees, not itself jitted, whose
    static configuration ``key`` describes completely) run from its stored export when one exists.

    Without a directory (:func:`enable`) this is ``jax.jit(fn, compiler_options=...)(*args)`` (the jitted
    function kept per ``fn``); when an argument is being traced it is ``fn(*args)``, inside the caller's
    program. The first call with a new key exports ``fn`` and
    stores it (written atomically: concurrent processes never read a partial file); later calls, in
    this process or another, load it instead of tracing ``fn``. A stored file that cannot be read is
    replaced. ``compiler_options`` (XLA options, e.g. ``{"xla_backend_optimization_level": 1}``) apply
    to every compilation of ``fn``.
    """
    options = dict(sorted((compiler_options or {}).items()))
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
        return fn(*args)  # inside the caller's program
    if _STATE["dir"] is None:
        return _jitted(fn, tuple(options.items()))(*args)
    leaves, treedef = _strong_leaves(args)
    return _runner(fn, treedef, leaves, key, options)(*leaves)


def prepare(fn: Callable, args: tuple, key: Hashable, compiler_options: dict | None = None) -> None:
    """Export (or load) the stored program that :func:`call` with these arguments will run, without
    running it; a no-op when programs are not kept. Its tracing then happens at a moment the caller
    chooses, e.g. before starting other work that would compete with it for the GIL."""
    if _STATE["dir"] is None:
        return
    leaves, treedef = _strong_leaves(args)
    _runner(fn, treedef, leaves, key, dict(sorted((compiler_options or {}).items())))


def _strong_leaves(args: tuple) -> tuple[list, Any]:
    """The leaves of ``args`` as strongly typed arrays, and the tree: a weak-typed scalar (a Python
    float) would otherwise be another jit signature of the same exported program, compiled once more."""
    leaves, treedef = jax.tree.flatten(args)
    return [jnp.asarray(x, dtype=jnp.asarray(x).dtype) for x in leaves], treedef


def _runner(fn: Callable, treedef, leaves: list, key: Hashable, options: dict) -> Callable:
    avals = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
    digest = _key((key, options), treedef, avals)
    with _LOCK:
        runner = _MEMORY.get(digest)
    if runner is None:
        runner = _load_or_export(fn, treedef, avals, _STATE["dir"] / f"{digest}.jaxexport", options)
        with _LOCK:
            _MEMORY[digest] = runner
    return runner


@lru_cache(maxsize=64)
def _jitted(fn: Callable, options: tuple) -> Callable:
    return jax.jit(fn, compiler_options=dict(options) or None)


def _load_or_export(fn: Callable, treedef, avals, path: Path, options: dict) -> Callable:
    from jax import export  # deferred: jax.export loads only when programs are kept

    exported = None
    if path.exists():
        try:
            exported = export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # noqa: BLE001 - a truncated or foreign file: export again below
            exported = None
    if exported is None:
        flat = jax.jit(lambda *leaves: fn(*jax.tree.unflatten(treedef, leaves)), compiler_options=options or None)
        exported = export.export(flat)(*avals)
        try:
            blob = exported.serialize()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        except (OSError, ImportError, ValueError):  # a read-only cache, no flatbuffers, an unserialisable tree
            return flat
    # one signature whether an argument is fresh (uncommitted) or the output of an earlier program
    # (committed to device 0): otherwise the same program compiles twice
    if exported.nr_devices == 1:
        device0 = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        return jax.jit(exported.call, in_shardings=device0, out_shardings=device0, compiler_options=options or None)
    return jax.jit(exported.call, compiler_options=options or None)
