"""Provenance of a command's outputs: what was run, on what, with which software (standard library only).

:func:`command_provenance` builds the block every command writes into its ``diagnostics.json`` (and,
for ``fit``, as an attribute of ``posterior.nc``): the command line, every option after parsing, the
input files with their SHA-256, the jaxhalo / JAX / numpyro / NumPy / Python versions, the devices
and the floating-point dtype. :func:`options_from_provenance` reads the options back so that
``jaxhalo fit --from-diagnostics DIR/diagnostics.json`` re-runs the same fit.

:class:`WallClock` times a command from the moment the command line module was imported, so that the
printed total is the wall time of the command (imports and start-up included) with its parts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ._output import strict_json
from ._validate import InputError

__all__ = [
    "PROVENANCE_VERSION",
    "WallClock",
    "add_provenance",
    "command_provenance",
    "file_sha256",
    "options_from_provenance",
    "record_command_line",
    "software_versions",
    "write_run_provenance",
]

#: Version of the provenance block's layout (bumped when a key changes meaning).
PROVENANCE_VERSION = 1

def _process_start() -> float:
    """perf_counter() at the start of this process (Linux: /proc, to 10 ms), else now."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of proc(5), counted after the "(comm)" field
        btime = next(int(ln.split()[1]) for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("btime"))
        age = time.time() - (btime + ticks / os.sysconf("SC_CLK_TCK"))
        if 0.0 <= age < 3600.0:
            return time.perf_counter() - age
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return time.perf_counter()


#: perf_counter() at the start of the process (Python's own start-up and imports included).
_T_IMPORT = _process_start()

#: The command line of the running command, set by :func:`jaxhalo.cli.main` (``sys.argv`` otherwise).
_COMMAND_LINE: list[str] | None = None

#: perf_counter() at the start of the running command (the import for the first command of a process).
_T_START = _T_IMPORT


def record_command_line(argv: list[str]) -> None:
    """Remember ``argv`` (program name first) as the command line of the running command, and its start:
    the start of the process for its first command, now for a later one (a second
    :func:`jaxhalo.cli.main` call in the same interpreter)."""
    global _COMMAND_LINE, _T_START
    if _COMMAND_LINE is not None:
        _T_START = time.perf_counter()
    _COMMAND_LINE = list(argv)


class WallClock:
    """Named wall-clock parts of one command, from its start (see :func:`record_command_line`) to now.

    ``mark(name)`` closes the part that ran since the previous mark (for the first command of a
    process the first part starts with the process, so it holds Python's start-up and imports); ``parts``
    maps each name to seconds and ``total()`` is the wall time so far. The parts add up to the
    total at the last mark.
    """

    def __init__(self, start: float | None = None) -> None:
        self.start = _T_START if start is None else start
        self._last = self.start
        self.parts: dict[str, float] = {}

    def mark(self, name: str) -> float:
        """Close the part ``name`` (added to any earlier part of that name); returns its seconds."""
        now = time.perf_counter()
        dt = now - self._last
        self.parts[name] = self.parts.get(name, 0.0) + dt
        self._last = now
        return dt

    def total(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start

    def line(self) -> str:
        """``total T s (part a s, part b s, ...)`` for the console."""
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.parts.items())
        return f"total {self.total():.1f} s wall ({parts})"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def software_versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    """Versions of Python, jaxhalo, jax, jaxlib, numpyro, numpy (and ``extra`` distributions)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for d in ("jaxhalo", "jax", "jaxlib", "numpyro", "numpy", *extra):
        out[d] = _version(d)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Every parsed option of ``args`` as JSON values (the handler function left out)."""
    return {k: _jsonable(v) for k, v in sorted(vars(args).items()) if k != "func" and not callable(v)}


def _device_info() -> dict[str, Any]:
    """The JAX backend, its devices and the default float dtype (JAX must already be configured)."""
    import jax  # deferred: called only after the command configured JAX
    import jax.numpy as jnp

    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "dtype": str(jnp.zeros(()).dtype),
        "x64": bool(jax.config.jax_enable_x64),
    }


def command_provenance(command: str, args: argparse.Namespace, inputs: Iterable[str | os.PathLike] = (),
                       argv: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """The provenance block of one run of ``jaxhalo COMMAND``.

    Parameters
    ----------
    command : the subcommand (``"fit"``, ``"simulate"``, ...).
    args : the parsed options (every one is recorded, defaults included).
    inputs : input files; each is recorded with its absolute path, size and SHA-256.
    argv : the command line (default: the one given to :func:`jaxhalo.cli.main`, else ``sys.argv``).
    extra : command-specific entries (e.g. solar parameters, prior table), recorded as given.

    Notes
    -----
    Call after JAX is configured: it records the devices and dtype in use.
    """
    argv = list(argv if argv is not None else (_COMMAND_LINE or sys.argv))
    files = []
    for p in inputs:
        path = Path(p)
        files.append({"path": str(path), "abspath": str(path.resolve()), "bytes": path.stat().st_size,
                      "sha256": file_sha256(path)})
    return {
        "provenance_version": PROVENANCE_VERSION,
        "command": command,
        "command_line": shlex.join(argv),
        "argv": argv,
        "cwd": os.getcwd(),
        "options": _options(args),
        "inputs": files,
        "software": software_versions(),
        "device": _device_info(),
        "host": platform.node(),
        "platform": platform.platform(),
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **{k: _jsonable(v) for k, v in extra.items()},
    }


def options_from_provenance(path: str | os.PathLike, command: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The recorded options and input files of a ``diagnostics.json`` written by ``jaxhalo COMMAND``.

    Raises :class:`InputError` (one line) when the file is missing, not JSON, written by another
    command or without a provenance block.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "diagnostics.json"
    if not p.is_file():
        raise InputError(f"--from-diagnostics {path}: no such file; give DIR/diagnostics.json of an earlier run")
    try:
        diag = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--from-diagnostics {p} is not a readable JSON file ({exc})") from exc
    prov = diag.get("provenance") if isinstance(diag, dict) else None
    if not isinstance(prov, dict) or "options" not in prov:
        raise InputError(f"--from-diagnostics {p} holds no provenance block (written by an older jaxhalo?)")
    if prov.get("command") != command:
        raise InputError(f"--from-diagnostics {p} was written by 'jaxhalo {prov.get('command')}', not 'jaxhalo {command}'")
    return dict(prov["options"]), list(prov.get("inputs", []))


def add_provenance(json_path: str | os.PathLike, block: Mapping[str, Any]) -> None:
    """Add ``block`` as the key ``"provenance"`` of the JSON object in ``json_path`` (rewritten in place)."""
    p = Path(json_path)
    obj = json.loads(p.read_text())
    obj["provenance"] = dict(block)
    p.write_text(strict_json(obj, indent=2))


def write_run_provenance(directory: str | os.PathLike, block: Mapping[str, Any]) -> Path:
    """Write ``block`` as ``DIRECTORY/provenance/run-<UTC time>-<pid>.json`` (one file per run, for outputs
    that many runs add to, such as a suite store); returns the file."""
    d = Path(directory) / "provenance"
    d.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = d / f"run-{stamp}-{os.getpid()}.json"
    path.write_text(strict_json({"provenance": dict(block)}, indent=2))
    return path
