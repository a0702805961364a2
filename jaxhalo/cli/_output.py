"""Output safety for the commands that write a directory (``fit``, ``profiles``, ``simulate``, ``sbi infer``)
or one file (``sbi train``): standard library only.

* :func:`check_output` runs before any work: ``--out`` must not be a file (or a directory, for a file
  output), an existing non-empty output is refused unless ``--overwrite``, and its parent directory must
  accept a new entry (tried for real with a probe directory, removed at once: permission bits do not
  tell the truth for root or on read-only mounts).
* :class:`StagedOutput` writes the results into a temporary directory beside ``--out`` and renames it
  into place only when the command finished, so that an interrupted run leaves no half-written
  output that looks complete (the temporary ``.NAME.partial-*`` directory is removed on an error).
* :func:`strict_json` writes JSON with ``null`` for NaN and infinities (``json.dumps`` would write the
  non-standard ``NaN``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..process_utils import pid_alive
from ._validate import InputError

__all__ = ["StagedOutput", "check_output", "strict_json"]


def _nearest_existing_parent(p: Path) -> Path:
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    return parent


def check_output(path: str | os.PathLike, overwrite: bool = False, kind: str = "directory",
                 option: str = "--out") -> Path:
    """Check before any work that ``path`` can be written as a ``kind`` ("directory" or "file").

    Raises :class:`InputError` when it is the wrong kind of thing, exists (a non-empty directory, or a
    file) without ``overwrite``, or its parent does not accept new entries. Creates nothing.
    """
    p = Path(path)
    here = Path.cwd().resolve()
    if kind == "directory" and (p.resolve() == here or p.resolve() in here.parents):
        raise InputError(f"{option} {path} is the current directory or one above it, which the results would replace; "
                         f"give a new directory name")
    if p.exists() or p.is_symlink():
        if kind == "directory":
            if not p.is_dir():
                raise InputError(f"{option} {p} is a file; give a directory name (it is created)")
            entries = sorted(os.listdir(p))
            if entries and not overwrite:
                shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
                raise InputError(f"{option} {p} exists and is not empty ({shown}); give --overwrite to replace it "
                                 f"or choose another {option}")
        else:
            if p.is_dir():
                raise InputError(f"{option} {p} is a directory; give a file name")
            if not overwrite:
                raise InputError(f"{option} {p} exists; give --overwrite to replace it or choose another {option}")
    parent = _nearest_existing_parent(p)
    if not parent.is_dir():
        raise InputError(f"{option} {p}: {parent} is a file, not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=f".{p.name}.probe-", dir=parent)
    except OSError as exc:
        raise InputError(f"{option} {p} cannot be written: {parent} does not accept new files "
                         f"({exc.strerror or exc}); choose another {option}") from exc
    os.rmdir(probe)
    return p



def _remove_stale_partials(parent: Path, name: str) -> list[str]:
    """Remove ``.NAME.partial-PID-*`` directories of processes that no longer run (a run killed with
    SIGKILL cannot clean up after itself); returns their names."""
    removed = []
    for d in parent.glob(f".{name}.partial-*"):
        pid = d.name[len(f".{name}.partial-"):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
    return removed


class StagedOutput:
    """A temporary directory beside ``final`` that replaces it when the block ends without an error.

    Use as ``with StagedOutput(out) as tmp: ...write into tmp...``. On success an existing ``final``
    (allowed by :func:`check_output` with ``--overwrite``) is moved aside, the staging directory is
    renamed to ``final`` (``os.replace``, atomic on one file system) and the old one removed. On any
    exception (including KeyboardInterrupt) the staging directory is removed and ``final`` is untouched.
    The staging directory is named ``.NAME.partial-PID-*``; one left by a killed process (SIGKILL) is
    removed by the next run that writes the same output.
    """

    def __init__(self, final: str | os.PathLike) -> None:
        self.final = Path(final)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        parent = self.final.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        self.removed_stale = _remove_stale_partials(parent, self.final.name)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.partial-{os.getpid()}-", dir=parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        old = None
        if self.final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.old-", dir=self.tmp.parent))
            os.replace(self.final, old / "previous")
        os.replace(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:  # NumPy / JAX scalars
        return _nan_to_none(obj.item())
    return obj


def strict_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``obj`` with every NaN / inf (Python or NumPy scalar) written as ``null``; the
    result is standard JSON (``allow_nan=False`` guarantees it)."""
    return json.dumps(_nan_to_none(obj), allow_nan=False, **kwargs)
