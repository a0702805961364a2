"""The on-disk store of a simulation suite: a directory of per-chunk HDF5 files.

Layout::

    STORE/
      suite.json              manifest: format tag, n_total, chunk_size, seed, parameter names,
                              output shapes, simulator identity and config, prior, code version
      chunks/c00000012.h5     one finished chunk: datasets ``index`` (C,) int64, ``key_data``
                              (C, 2) uint32 (the per-simulation PRNG keys), ``theta`` (C, P) and
                              one dataset per simulator output (``summaries`` (C, S), ...);
                              attributes chunk, start, stop, code_version, suite_hash

Chunk k holds the global simulation indices [k C, min((k + 1) C, n_total)). A chunk is written
to a temporary file in ``chunks/`` (``.c00000012.h5.<pid>.<random>.tmp``), flushed and
fsynced, and only then renamed to its final name (``os.replace``, atomic on POSIX): the final
name *is* the "done" mark, so a process killed at any moment leaves either a complete chunk or
none (a stray temporary file, ignored by readers and listed by ``suite info``). Because every
chunk is its own file, separate processes (or machines sharing a file system) can fill
disjoint index ranges of one store at the same time; two writers of the same chunk write
identical bytes and the last rename wins, so nothing is duplicated.

HDF5 through h5py is the format: every language reads it, and per-chunk files avoid HDF5's
single-writer limitation.

Integrity: each chunk records the SHA-256 of its arrays (attribute ``sha256``), checked by every
read; :meth:`SuiteStore.info` counts a chunk that fails as missing and ``run_suite`` recomputes it.
Writers claim a chunk before computing it with an exclusive lock file ``chunks/.c00000012.h5.lock``
(``O_CREAT | O_EXCL``, holding host and pid), so that concurrent writers of one store never compute
the same chunk; a lock (or temporary file) left by a dead process of this host is stale and is
removed by the next writer. Each chunk also stores ``row_status`` (C,) uint8, the validity of each
row: 0 valid, 1 no finite summary (an infeasible theta), 2 some NaN summaries (empty bins);
:data:`ROW_STATUS` names the codes and ``info`` counts them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from .. import __version__
from ..process_utils import pid_alive

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SuiteStoreError",
    "SuiteConfigError",
    "SuiteStore",
    "SuiteData",
    "code_version",
    "package_version",
    "chunk_checksum",
    "row_status",
    "ROW_STATUS",
]

#: Meaning of the per-row validity codes stored with each chunk.
ROW_STATUS = {0: "valid", 1: "infeasible theta (no finite summary)", 2: "some NaN summaries"}


def row_status(summaries: np.ndarray) -> np.ndarray:
    """(C,) uint8 validity of each row of ``summaries`` (C, ...): see :data:`ROW_STATUS`."""
    x = np.asarray(summaries, dtype=float).reshape(len(summaries), -1)
    finite = np.isfinite(x)
    return np.where(finite.all(axis=1), 0, np.where(finite.any(axis=1), 2, 1)).astype(np.uint8)


FORMAT = "jaxhalo-suite"
FORMAT_VERSION = 1
_CHUNK_RE = re.compile(r"^c(\d{8})\.h5$")
#: Manifest fields that must agree between a store and a run that writes into it.
IDENTITY_FIELDS = ("n_total", "chunk_size", "seed", "parameter_names", "outputs", "simulator", "prior")


class SuiteStoreError(RuntimeError):
    """A store that is missing, corrupt, foreign (not a jaxhalo suite) or incomplete."""


class SuiteConfigError(SuiteStoreError):
    """A run whose settings differ from those recorded in the store it would write into."""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``jaxhalo <version>`` plus the git commit of the source tree (``+dirty`` if modified), when known."""
    pkg = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(pkg), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if rev.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(pkg), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5)
            suffix = "+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
            return f"jaxhalo {__version__} git {rev.stdout.strip()}{suffix}"
    except (OSError, subprocess.SubprocessError):
        pass
    return f"jaxhalo {__version__}"


def package_version(code_version_string: str) -> str | None:
    """The jaxhalo version in a :func:`code_version` string ('jaxhalo 0.4.0 git abc+dirty' -> '0.4.0'), or None."""
    m = re.match(r"jaxhalo (\S+)", code_version_string or "")
    return m.group(1) if m else None


def chunk_checksum(index: np.ndarray, key_data: np.ndarray, theta: np.ndarray,
                   outputs: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of a chunk's arrays: dtype, shape and bytes of index, key_data, theta and each output
    (sorted by name). Stored as the chunk attribute ``sha256`` and verified on every read."""
    h = hashlib.sha256()
    items = [("index", index), ("key_data", key_data), ("theta", theta)]
    items += [(f"outputs/{k}", outputs[k]) for k in sorted(outputs)]
    for name, arr in items:
        a = np.ascontiguousarray(arr)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _suite_hash(manifest: Mapping[str, Any]) -> str:
    blob = json.dumps({k: manifest[k] for k in IDENTITY_FIELDS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class SuiteData:
    """Rows of a suite loaded from its store, sorted by global index.

    ``index`` (N,) int64, ``key_data`` (N, 2) uint32, ``theta`` (N, P), ``outputs`` name ->
    (N, ...) (``summaries`` (N, S) among them), ``parameter_names`` (P,), ``missing`` the
    indices of [0, n_total) not yet simulated.
    """

    index: np.ndarray
    key_data: np.ndarray
    theta: np.ndarray
    outputs: dict[str, np.ndarray]
    parameter_names: tuple[str, ...]
    missing: np.ndarray
    row_status: np.ndarray | None = None  # (N,) uint8 codes of ROW_STATUS

    @property
    def summaries(self) -> np.ndarray:
        return self.outputs["summaries"]

    def __len__(self) -> int:
        return int(self.index.shape[0])


class SuiteStore:
    """A suite store on disk (see the module docstring). Open with :meth:`open` or :meth:`create`."""

    def __init__(self, path: str | os.PathLike, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest
        self.suite_hash = _suite_hash(manifest)

    # ------------------------------------------------------------------ opening
    @property
    def chunk_dir(self) -> Path:
        return self.path / "chunks"

    @classmethod
    def open(cls, path: str | os.PathLike) -> "SuiteStore":
        """Open an existing store; :class:`SuiteStoreError` if it is missing, corrupt or foreign."""
        path = Path(path)
        mpath = path / "suite.json"
        if not path.exists():
            raise SuiteStoreError(f"no suite store at {path}")
        if not path.is_dir() or not mpath.is_file():
            raise SuiteStoreError(f"{path} is not a jaxhalo suite store (no suite.json manifest)")
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SuiteStoreError(f"corrupt suite manifest {mpath}: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise SuiteStoreError(f"{mpath} is not a jaxhalo suite manifest (format tag "
                                  f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT!r})")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise SuiteStoreError(f"{mpath}: store format version {manifest.get('format_version')!r}, "
                                  f"this jaxhalo reads version {FORMAT_VERSION}")
        missing = [k for k in IDENTITY_FIELDS if k not in manifest]
        if missing:
            raise SuiteStoreError(f"corrupt suite manifest {mpath}: missing fields {missing}")
        return cls(path, manifest)

    @classmethod
    def create(cls, path: str | os.PathLike, manifest: Mapping[str, Any]) -> "SuiteStore":
        """Create a store, or open an existing one after checking that its settings match.

        Several processes may call this at once on the same path: the manifest is written to a
        temporary file and hard-linked into place, which fails for all but the first; the others
        then compare. Raises :class:`SuiteConfigError` listing every differing setting.
        """
        path = Path(path)
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, **dict(manifest)}
        full.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        full.setdefault("code_version", code_version())
        missing = [k for k in IDENTITY_FIELDS if k not in full]
        if missing:
            raise ValueError(f"suite manifest lacks {missing}")
        full = json.loads(json.dumps(full))  # normalise tuples -> lists, as read back from disk
        if path.exists() and not path.is_dir():
            raise SuiteStoreError(f"{path} exists and is not a directory")
        if path.is_dir() and any(path.iterdir()) and not (path / "suite.json").exists():
            raise SuiteStoreError(f"{path} is a non-empty directory without a suite manifest: not a jaxhalo suite "
                                  "store; choose a new path")
        (path / "chunks").mkdir(parents=True, exist_ok=True)
        mpath = path / "suite.json"
        if not mpath.exists():
            tmp = path / f".suite.json.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            tmp.write_text(json.dumps(full, indent=2))
            try:
                os.link(tmp, mpath)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        store = cls.open(path)
        store.check_compatible(full)
        return store

    def check_compatible(self, manifest: Mapping[str, Any]) -> None:
        """Raise :class:`SuiteConfigError` if ``manifest``'s identity fields differ from the store's."""
        want = json.loads(json.dumps({k: manifest[k] for k in IDENTITY_FIELDS}))
        diffs = [f"{k}: store has {self.manifest[k]!r}, this run has {want[k]!r}"
                 for k in IDENTITY_FIELDS if self.manifest[k] != want[k]]
        if diffs:
            raise SuiteConfigError(
                f"the suite store {self.path} was made with different settings; rerun with the store's settings "
                "or write to a new store: " + "; ".join(diffs)
            )

    # ------------------------------------------------------------------ geometry
    @property
    def n_total(self) -> int:
        return int(self.manifest["n_total"])

    @property
    def chunk_size(self) -> int:
        return int(self.manifest["chunk_size"])

    @property
    def n_chunks(self) -> int:
        return -(-self.n_total // self.chunk_size)

    def chunk_range(self, k: int) -> tuple[int, int]:
        """Global index range [start, stop) of chunk k."""
        if not 0 <= k < self.n_chunks:
            raise IndexError(f"chunk {k} outside [0, {self.n_chunks})")
        return k * self.chunk_size, min((k + 1) * self.chunk_size, self.n_total)

    def chunks_for_range(self, start: int, stop: int) -> list[int]:
        """Chunks covering [start, stop); both must be chunk boundaries (or stop = n_total)."""
        c = self.chunk_size
        if not (0 <= start <= stop <= self.n_total):
            raise ValueError(f"index range [{start}, {stop}) outside [0, {self.n_total})")
        if start % c or (stop % c and stop != self.n_total):
            raise ValueError(f"--start/--stop must be multiples of the chunk size {c} (or stop = n = {self.n_total}); "
                             f"got [{start}, {stop})")
        return list(range(start // c, -(-stop // c)))

    def chunk_path(self, k: int) -> Path:
        return self.chunk_dir / f"c{k:08d}.h5"

    def done_chunks(self) -> list[int]:
        """Indices of the finished chunks (files under their final names), sorted."""
        if not self.chunk_dir.is_dir():
            raise SuiteStoreError(f"corrupt suite store {self.path}: no chunks/ directory")
        out = []
        for p in self.chunk_dir.iterdir():
            m = _CHUNK_RE.match(p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def stray_files(self) -> list[Path]:
        """Temporary files left by interrupted writers (safe to delete when no writer is running)."""
        return sorted(p for p in self.chunk_dir.iterdir() if p.name.endswith(".tmp"))

    # ------------------------------------------------------------------ claims (concurrent writers)
    def _lock_path(self, k: int) -> Path:
        return self.chunk_dir / f".{self.chunk_path(k).name}.lock"

    def _lock_is_stale(self, lock: Path) -> bool:
        """A lock of a process of this host that no longer runs (a lock of another host is never stale)."""
        try:
            owner = json.loads(lock.read_text())
            return owner.get("host") == socket.gethostname() and not pid_alive(int(owner["pid"]))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError):  # half-written by a writer killed in open(): stale
            return time.time() - lock.stat().st_mtime > 60 if lock.exists() else False

    def claim_chunk(self, k: int) -> bool:
        """Claim chunk ``k`` for this process with an exclusive lock file; False if another live writer
        holds it or the chunk is already finished. Release with :meth:`release_chunk`."""
        lock = self._lock_path(k)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._lock_is_stale(lock):
                    grave = lock.with_name(lock.name + f".stale.{secrets.token_hex(4)}")
                    try:  # rename first: of two reclaimers only one moves the stale lock
                        os.replace(lock, grave)
                        grave.unlink()
                    except FileNotFoundError:
                        pass
                    continue
                return False
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}))
            if self.chunk_path(k).exists():  # finished by another writer since this one listed the store
                self.release_chunk(k)
                return False
            return True
        return False

    def release_chunk(self, k: int) -> None:
        """Remove this process's lock of chunk ``k``."""
        self._lock_path(k).unlink(missing_ok=True)

    def locked_chunks(self) -> list[int]:
        """Chunks that some writer holds a lock for (stale ones included), sorted."""
        out = []
        for p in self.chunk_dir.iterdir():
            m = re.match(r"^\.c(\d{8})\.h5\.lock$", p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def clean_stale(self) -> list[str]:
        """Remove the temporary files and locks left by dead writers of this host; returns their names.
        A temporary file is ``.cNNNNNNNN.h5.<pid>.<random>.tmp``: stale when that pid no longer runs."""
        removed = []
        for p in self.stray_files():
            parts = p.name.split(".")
            try:
                pid = int(parts[-3])
            except (IndexError, ValueError):
                continue
            if not pid_alive(pid):
                p.unlink(missing_ok=True)
                removed.append(p.name)
        for k in self.locked_chunks():
            lock = self._lock_path(k)
            if self._lock_is_stale(lock):
                lock.unlink(missing_ok=True)
                removed.append(lock.name)
        return removed

    # ------------------------------------------------------------------ writing
    def write_chunk(self, k: int, index: np.ndarray, key_data: np.ndarray, theta: np.ndarray,
                    outputs: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None = None) -> Path:
        """Write chunk k atomically (data to a temporary file, fsync, then rename into place)."""
        start, stop = self.chunk_range(k)
        n = stop - start
        index = np.asarray(index, dtype=np.int64)
        if index.shape != (n,) or not np.array_equal(index, np.arange(start, stop)):
            raise ValueError(f"chunk {k} must hold indices [{start}, {stop}), got {index[:3]}... shape {index.shape}")
        self._check_outputs(outputs, n)
        final = self.chunk_path(k)
        tmp = self.chunk_dir / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            key_data = np.asarray(key_data, dtype=np.uint32)
            theta = np.asarray(theta)
            outputs = {name: np.asarray(arr) for name, arr in outputs.items()}
            with h5py.File(tmp, "w") as f:
                f.create_dataset("index", data=index)
                f.create_dataset("key_data", data=key_data)
                f.create_dataset("theta", data=theta)
                for name, arr in outputs.items():
                    f.create_dataset(f"outputs/{name}", data=arr)
                if "summaries" in outputs:
                    f.create_dataset("row_status", data=row_status(outputs["summaries"]))
                f.attrs.update({"format": FORMAT, "chunk": k, "start": start, "stop": stop,
                                "suite_hash": self.suite_hash, "code_version": code_version(),
                                "sha256": chunk_checksum(index, key_data, theta, outputs),
                                **{kk: v for kk, v in (attrs or {}).items()}})
            fd = os.open(tmp, os.O_RDONLY)  # data on disk before the rename marks the chunk done
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        try:  # make the rename durable
            fd = os.open(self.chunk_dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:  # pragma: no cover - platforms without directory fsync
            pass
        return final

    def _check_outputs(self, outputs: Mapping[str, np.ndarray], n: int) -> None:
        want = self.manifest["outputs"]
        if set(outputs) != set(want):
            raise SuiteStoreError(f"outputs {sorted(outputs)} differ from the store's {sorted(want)}")
        for name, spec in want.items():
            shape = tuple(np.shape(outputs[name]))
            if shape != (n, *spec["shape"]):
                raise SuiteStoreError(f"output {name!r} has shape {shape}, the store expects {(n, *spec['shape'])}")

    # ------------------------------------------------------------------ reading
    def read_chunk(self, k: int) -> dict[str, Any]:
        """Read and check one finished chunk; :class:`SuiteStoreError` names a corrupt or foreign file."""
        p = self.chunk_path(k)
        start, stop = self.chunk_range(k)
        try:
            with h5py.File(p, "r") as f:
                if f.attrs.get("format") != FORMAT or int(f.attrs.get("chunk", -1)) != k:
                    raise SuiteStoreError(f"{p} is not chunk {k} of a jaxhalo suite")
                if f.attrs.get("suite_hash") != self.suite_hash:
                    raise SuiteStoreError(f"{p} belongs to a different suite (settings hash {f.attrs.get('suite_hash')!r}, "
                                          f"this store {self.suite_hash!r}); remove it")
                rec = {"index": f["index"][()], "key_data": f["key_data"][()], "theta": f["theta"][()],
                       "outputs": {name: f[f"outputs/{name}"][()] for name in self.manifest["outputs"]},
                       "attrs": dict(f.attrs)}
                rec["row_status"] = (f["row_status"][()] if "row_status" in f else
                                     row_status(rec["outputs"]["summaries"]) if "summaries" in rec["outputs"] else
                                     np.zeros(len(rec["index"]), np.uint8))
        except SuiteStoreError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise SuiteStoreError(f"corrupt chunk file {p} ({exc}); delete it and rerun `jaxhalo suite run` "
                                  "to recompute that chunk") from exc
        if not np.array_equal(rec["index"], np.arange(start, stop)):
            raise SuiteStoreError(f"corrupt chunk file {p}: indices are not [{start}, {stop})")
        try:
            self._check_outputs(rec["outputs"], stop - start)
        except SuiteStoreError as exc:
            raise SuiteStoreError(f"corrupt chunk file {p}: {exc}") from exc
        if rec["theta"].shape != (stop - start, len(self.manifest["parameter_names"])):
            raise SuiteStoreError(f"corrupt chunk file {p}: theta has shape {rec['theta'].shape}")
        want = rec["attrs"].get("sha256")
        if want is not None:
            got = chunk_checksum(rec["index"], rec["key_data"], rec["theta"], rec["outputs"])
            if got != str(want):
                raise SuiteStoreError(f"corrupt chunk file {p}: its arrays do not match their SHA-256 checksum "
                                      "(changed on disk); delete it and rerun `jaxhalo suite run` to recompute it")
        return rec

    def verify_chunks(self, chunks: Iterable[int] | None = None) -> dict[int, str]:
        """Read every finished chunk (or those of ``chunks``) and return {chunk: reason} for each corrupt one
        (unreadable, truncated, wrong shape, checksum mismatch); empty when all are sound."""
        bad = {}
        for k in (self.done_chunks() if chunks is None else chunks):
            try:
                self.read_chunk(k)
            except SuiteStoreError as exc:
                bad[k] = str(exc)
        return bad

    def chunk_settings(self, k: int, names: Iterable[str]) -> dict[str, Any]:
        """The attributes ``names`` (e.g. ``micro_batch``) recorded in chunk ``k`` (absent ones left out)."""
        with h5py.File(self.chunk_path(k), "r") as f:
            return {n: f.attrs[n].item() if hasattr(f.attrs[n], "item") else f.attrs[n] for n in names if n in f.attrs}

    def load(self, chunks: Iterable[int] | None = None, require_complete: bool = False) -> SuiteData:
        """All finished rows (or those of ``chunks``), sorted by index."""
        done = self.done_chunks()
        ks = done if chunks is None else sorted(set(chunks) & set(done))
        recs = [self.read_chunk(k) for k in ks]
        names = tuple(self.manifest["parameter_names"])
        P = len(names)
        if recs:
            index = np.concatenate([r["index"] for r in recs])
            key_data = np.concatenate([r["key_data"] for r in recs])
            theta = np.concatenate([r["theta"] for r in recs])
            outputs = {n: np.concatenate([r["outputs"][n] for r in recs]) for n in self.manifest["outputs"]}
            status = np.concatenate([r["row_status"] for r in recs])
        else:
            status = np.zeros(0, np.uint8)
            index = np.zeros(0, np.int64)
            key_data = np.zeros((0, 2), np.uint32)
            theta = np.zeros((0, P))
            outputs = {n: np.zeros((0, *s["shape"]), s["dtype"]) for n, s in self.manifest["outputs"].items()}
        if np.unique(index).size != index.size:  # cannot happen with one file per chunk; checked anyway
            raise SuiteStoreError(f"corrupt suite store {self.path}: duplicated simulation indices")
        have = np.zeros(self.n_total, bool)
        have[index] = True
        missing = np.flatnonzero(~have)
        if require_complete and missing.size:
            raise SuiteStoreError(f"suite {self.path} is incomplete: {missing.size} of {self.n_total} simulations missing "
                                  f"(first {missing[:5].tolist()}); finish it with `jaxhalo suite run`")
        return SuiteData(index, key_data, theta, outputs, names, missing, status)

    def info(self) -> dict[str, Any]:
        """A summary: settings, chunks done / total, simulations done, missing index ranges, stray files."""
        done = self.done_chunks()
        corrupt: dict[int, str] = {}
        status = np.zeros(len(ROW_STATUS), np.int64)
        for k in done:  # every chunk is read and checked; a corrupt one counts as missing
            try:
                status += np.bincount(self.read_chunk(k)["row_status"], minlength=len(ROW_STATUS))[: len(ROW_STATUS)]
            except SuiteStoreError as exc:
                corrupt[k] = str(exc)
        done = [k for k in done if k not in corrupt]
        n_done = sum(self.chunk_range(k)[1] - self.chunk_range(k)[0] for k in done if k < self.n_chunks)
        todo = sorted(set(range(self.n_chunks)) - set(done))
        ranges = []
        for k in todo:
            a, b = self.chunk_range(k)
            if ranges and ranges[-1][1] == a:
                ranges[-1][1] = b
            else:
                ranges.append([a, b])
        versions = {}
        for k in done:
            try:
                with h5py.File(self.chunk_path(k), "r") as f:
                    v = str(f.attrs.get("code_version", "?"))
            except OSError:
                v = "unreadable"
            versions[v] = versions.get(v, 0) + 1
        return {
            "path": str(self.path), "n_total": self.n_total, "chunk_size": self.chunk_size, "n_chunks": self.n_chunks,
            "chunks_done": len(done), "simulations_done": n_done, "missing_ranges": ranges,
            "corrupt_chunks": {int(k): v for k, v in corrupt.items()},
            "row_status": {ROW_STATUS[i]: int(c) for i, c in enumerate(status)},
            "locked_chunks": self.locked_chunks(),
            "stray_temporary_files": [p.name for p in self.stray_files()], "chunk_code_versions": versions,
            **{k: self.manifest[k] for k in ("seed", "parameter_names", "outputs", "simulator", "prior")},
            "code_version": self.manifest.get("code_version"), "created": self.manifest.get("created"),
        }
