"""The one place that configures JAX for the command line: float64, host devices, compilation cache.

Also the shared command-line helpers: the catalogue loader (with the bundled example), Markdown
tables and the one-line error exit. Importing this module imports no JAX: each function imports
what it needs when a command runs, so that ``jaxhalo --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..catalog.structure import CatalogError
from ..example_data import EXAMPLE_CATALOG, EXAMPLE_TRUTH
from ._console import info, verbosity
from ._validate import InputError, check_input_file

__all__ = ["TEXT_FORMATS", "default_cache_dir", "detect_text_format", "enable_x64", "fail", "load_catalog", "markdown_table",
           "setup_jax"]


def enable_x64() -> None:
    """Switch JAX to float64 (the CLI's default; the library never flips it); under ``-vv`` also log
    every XLA compilation (``jax_log_compiles``)."""
    import jax  # deferred: JAX loads only when a command computes

    jax.config.update("jax_enable_x64", True)
    if verbosity() >= 2:
        jax.config.update("jax_log_compiles", True)


def fail(msg: str, command: str | None = None) -> int:
    """Print ``jaxhalo COMMAND: error: MSG`` (``jaxhalo: error: MSG`` without a command) to stderr and
    return the exit code 2."""
    print(f"jaxhalo{' ' + command if command else ''}: error: {msg}", file=sys.stderr)
    return 2


def default_cache_dir() -> Path:
    """Where the CLI keeps JAX's persistent compilation cache: ``$JAXHALO_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/jaxhalo/xla`` (``~/.cache/jaxhalo/xla``)."""
    if os.environ.get("JAXHALO_CACHE_DIR"):
        return Path(os.environ["JAXHALO_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "jaxhalo" / "xla"


def setup_jax(host_devices: int = 1, cache: bool = True) -> dict:
    """Configure JAX for a CLI run, before any computation: float64, host devices, compile cache.

    ``host_devices`` > 1 splits the CPU into that many XLA host devices (numpyro's
    ``set_host_device_count``) so that NUTS chains run in parallel threads (``chain_method
    'parallel'``) instead of one after another; it has no effect on GPUs and is skipped when
    ``XLA_FLAGS`` already sets a count or a JAX backend is already running (e.g. when
    :func:`main` is called from Python). ``cache`` turns on JAX's persistent compilation cache
    in :func:`default_cache_dir`, so a second run skips XLA compilation, and keeps traced programs
    next to it (:mod:`jaxhalo.program_cache`), so a second run also skips tracing them.
    Returns what was set (for the diagnostics).
    """
    import jax  # deferred: JAX loads only when a command computes
    from jax._src import xla_bridge

    done: dict = {}
    enable_x64()
    flags = os.environ.get("XLA_FLAGS", "")
    if host_devices > 1 and "xla_force_host_platform_device_count" not in flags and not xla_bridge.backends_are_initialized():
        import numpyro  # deferred with JAX

        numpyro.set_host_device_count(host_devices)
        done["host_devices"] = host_devices
    if cache and not os.environ.get("JAXHALO_NO_CACHE"):
        d = default_cache_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(d))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            done["compilation_cache"] = str(d)
            from .. import program_cache  # deferred with JAX

            program_cache.enable(d / "exported")
            done["program_cache"] = str(d / "exported")
        except OSError as e:  # read-only home: run without the cache
            print(f"[jaxhalo] compilation cache disabled ({e})", file=sys.stderr)
    return done


#: What each --format tried on a text file (.txt, .dat) without --format reads.
TEXT_FORMATS = {
    "peer-t": "the PP21/YPP24 reflexcalc layout (one row per quantity)",
    "peer-h": "the PP21 ReflexMotion layout (a header line, one row per star)",
    "ascii": "an astropy ASCII table with jaxhalo's column names",
}


def _read_as(path: str, fmt: str | None):
    """Read ``path`` as ``fmt`` ('peer-t', 'peer-h', an astropy format, or None: by suffix)."""
    from ..catalog.readers import (  # deferred: astropy
        read_catalog,
        read_peer_header,
        read_peer_transposed,
    )

    if fmt == "peer-t":
        return read_peer_transposed(path)
    if fmt == "peer-h":
        return read_peer_header(path)
    return read_catalog(path, format=fmt)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def detect_text_format(path: str) -> tuple[str, object]:
    """Read a text catalogue given without --format by trying each of :data:`TEXT_FORMATS`.

    Returns ``(format, catalogue)`` when exactly one reads the file into a valid catalogue; raises
    :class:`InputError` in one line naming the format(s) that fit (several) or why each failed (none).
    """
    fits, why = {}, {}
    for fmt in TEXT_FORMATS:
        try:
            fits[fmt] = _read_as(path, fmt)
        except Exception as exc:  # noqa: BLE001 (each reader fails in its own way on another layout)
            why[fmt] = _first_line(exc).replace(os.fspath(path) + ": ", "")
    if len(fits) == 1:
        return next(iter(fits.items()))
    if fits:
        raise InputError(f"catalogue {path} reads as several formats ({', '.join(fits)}); give one with --format "
                         + " or ".join(f"--format {f}" for f in fits))
    tried = "; ".join(f"{f}: {why[f]}" for f in TEXT_FORMATS)
    raise InputError(f"catalogue {path}: no format fits a text file (tried {tried}); give --format peer-t, peer-h or an "
                     "astropy format (ascii.csv, ascii.basic, ...) and check the file")


def load_catalog(path: str | None, fmt: str | None):
    """Read and validate the catalogue of a command (``None``: the bundled example) before JAX loads.

    The file is checked (exists, is a readable non-empty file, a known format; see
    :func:`jaxhalo.cli._validate.check_input_file`) and read with NumPy / astropy only, so that a bad
    catalogue fails in about a second. A text file (.txt, .dat) without ``fmt`` is read with the one
    of :data:`TEXT_FORMATS` that fits (see :func:`detect_text_format`; a note on stderr names it).
    Returns ``(catalog, truth_path or None)``.
    """
    from ..catalog.readers import (  # deferred: astropy
        FORMATS_BY_SUFFIX,
        KNOWN_SUFFIXES,
        read_catalog,
    )

    if path is None:
        return read_catalog(EXAMPLE_CATALOG), EXAMPLE_TRUTH
    check_input_file(path, "catalogue", formats=KNOWN_SUFFIXES, fmt=fmt)
    if fmt is None and not any(str(path).lower().endswith(s) for s in FORMATS_BY_SUFFIX):
        found, cat = detect_text_format(str(path))
        info(f"[jaxhalo] catalogue {path}: read as --format {found} ({TEXT_FORMATS[found]})", file=sys.stderr)
        return cat, None
    try:
        return _read_as(path, fmt), None
    except CatalogError as exc:
        if fmt in ("peer-t", "peer-h"):
            raise
        raise CatalogError(f"catalogue {path}: {exc}") from exc
    except Exception as exc:  # astropy's readers raise many types for a file they cannot parse
        if type(exc).__module__.startswith("jaxhalo."):
            raise
        raise InputError(f"catalogue {path} cannot be read as {fmt or 'its suffix says'} ({_first_line(exc)}); check the "
                         "file or give --format") from exc


def markdown_table(table) -> str:
    """A GitHub-flavoured Markdown rendering of an astropy Table (floats with their formats)."""
    cols = table.colnames
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table:
        cells = []
        for c in cols:
            v = row[c]
            fmt = table[c].info.format
            cells.append(format(v, fmt) if (fmt and not isinstance(v, str)) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
