"""Checks of the command line's options and input files that run before the JAX stack loads.

Everything here uses the standard library only, so that a bad option or file ends a command in
well under two seconds with one line naming the option or file and the fix:

* argparse ``type=`` converters with ranges (:func:`int_range`, :func:`float_range`, :data:`SEED`),
  which make argparse itself print ``jaxhalo fit: error: argument --chains: ...`` and exit 2;
* :func:`check_input_file`: the path exists, is a regular file, is readable and not empty, and its
  format is known (from ``--format`` or the suffix).

Errors raise :class:`InputError` (a ``ValueError``), which :func:`jaxhalo.cli.main` prints as one line
``jaxhalo COMMAND: error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "InputError",
    "SEED",
    "check_input_file",
    "check_order",
    "float_range",
    "int_range",
]


class InputError(ValueError):
    """A bad option or input file, found before any computation; the message names it and the fix."""


#: Largest seed the commands accept: JAX keys take a 32-bit seed without x64, a 64-bit one with it.
_SEED_MAX = 2**32 - 1


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for an integer in [lo, hi] (either bound None for none).

    Accepts ``1e3``-style integers written as floats when they are whole numbers.
    """

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
            if not math.isfinite(f) or f != int(f):
                raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
            value = int(f)
        if lo is not None and value < lo:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {lo}" + (f" (allowed: {lo} to {hi})" if hi is not None else ""))
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"{value} is above the maximum {hi}" + (f" (allowed: {lo} to {hi})" if lo is not None else ""))
        return value

    convert.__name__ = "integer"
    return convert


def float_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                hi_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` for a finite float in [lo, hi] (``lo_open``/``hi_open`` exclude the bound)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise argparse.ArgumentTypeError(f"{value:g} must be {'>' if lo_open else '>='} {lo:g}")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise argparse.ArgumentTypeError(f"{value:g} must be {'<' if hi_open else '<='} {hi:g}")
        return value

    convert.__name__ = "number"
    return convert


#: The ``--seed`` type of every command: an integer in [0, 2**32 - 1].
SEED = int_range(0, _SEED_MAX)


def check_order(lo: float | None, hi: float | None, lo_name: str, hi_name: str) -> None:
    """Raise :class:`InputError` unless ``lo < hi`` (when both are given)."""
    if lo is not None and hi is not None and not lo < hi:
        raise InputError(f"{lo_name} {lo:g} is not below {hi_name} {hi:g}: no star could pass; "
                         f"give {lo_name} < {hi_name}")


def check_input_file(path: str | os.PathLike, what: str = "input", formats: Iterable[str] | None = None,
                     fmt: str | None = None) -> Path:
    """Check that ``path`` is an existing, readable, non-empty regular file in a known format.

    Parameters
    ----------
    path : the file.
    what : how the messages call it (e.g. ``"catalogue"``).
    formats : file suffixes (lower case, with the dot, e.g. ``".ecsv"``) that are known; ``None``
        skips the format check. The check is also skipped when ``fmt`` (an explicit ``--format``) is given.
    fmt : the explicit format, if any.

    Returns the path; raises :class:`InputError` naming the file and the fix.
    """
    p = Path(path)
    if not p.exists():
        hint = ""
        if p.parent != Path("") and not p.parent.exists():
            hint = f" (its directory {p.parent} does not exist either)"
        raise InputError(f"{what} {p} does not exist{hint}; check the path")
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory, not a file; give the file inside it")
    if not p.is_file():
        raise InputError(f"{what} {p} is not a regular file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} {p} is not readable (permissions); check its mode")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise InputError(f"{what} {p} cannot be read: {exc.strerror or exc}") from exc
    if p.stat().st_size == 0:
        raise InputError(f"{what} {p} is empty (0 bytes)")
    if formats is not None and fmt is None:
        known = sorted(set(formats), key=len, reverse=True)
        name = p.name.lower()
        if not any(name.endswith(s) for s in known):
            raise InputError(f"{what} {p}: unknown format (suffix {''.join(p.suffixes) or 'none'}); use one of "
                             f"{', '.join(sorted(set(formats)))} or give --format")
    return p
