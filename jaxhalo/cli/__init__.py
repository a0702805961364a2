"""The ``jaxhalo`` command line: ``fit``, ``profiles``, ``simulate``, ``suite``, ``sbi``, ``forecast``, ``bench``.

Each subcommand lives in its own module with an ``add_<command>_parser`` and a ``cmd_<command>``;
building the parser imports no JAX, so ``jaxhalo --help`` prints at once and the JAX stack loads
only in the command that runs. :mod:`jaxhalo.cli._setup` is the one place that configures JAX
(float64, host devices, the persistent compilation cache); the library itself never flips
``jax_enable_x64``.

Errors in the input (a bad catalogue, option, file or store: ``ValueError``, ``OSError`` and jaxhalo's
own error types) end the command with one line ``jaxhalo COMMAND: error: ...`` on stderr and exit
code 2; ``jaxhalo --debug COMMAND`` (or ``JAXHALO_DEBUG=1``) shows the traceback instead.

Fail fast, lose nothing: every command checks its options (argparse ranges, :mod:`._validate`), its
input files, its catalogue (read with NumPy/astropy only; :mod:`jaxhalo.catalog.checks`) and its
``--out`` (:mod:`._output`) before the JAX stack loads, so bad input ends it in about a second with
nothing written; results go to a staging directory renamed into ``--out`` at the end, and an
existing non-empty ``--out`` is replaced only with ``--overwrite``.

One grammar (:mod:`._console`): every command takes ``-q/--quiet`` (nothing on stdout, no progress bars)
and ``-v/--verbose`` (timings, devices, DEBUG logging), its ``--help`` shows the defaults, and the same
thing has the same option name everywhere (``--out``, ``--overwrite``, ``--seed``, ``--no-progress``,
``--r-min/--r-max``; renamed spellings stay as hidden aliases). Exit codes: 0 done, 2 bad input,
3 a convergence check failed under ``--strict`` (``fit``, ``profiles``, ``sbi nuts``; the results are written), 130
interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .. import __version__
from ._console import (
    EXIT_BAD_INPUT,
    EXIT_CODES_EPILOG,
    EXIT_INTERRUPTED,
    HelpFormatter,
    quiet_stdout,
    set_verbosity,
)
from ._output import StagedOutput, check_output, strict_json
from ._provenance import WallClock, command_provenance, record_command_line
from ._setup import setup_jax
from ._validate import InputError
from .bench import add_bench_parser
from .fit import add_fit_parser
from .forecast import add_forecast_parser
from .profiles import add_profiles_parser
from .sbi import add_sbi_parser
from .simulate import add_simulate_parser
from .suite import add_suite_parser

__all__ = ["InputError", "StagedOutput", "WallClock", "build_parser", "check_output", "command_provenance", "entry", "main",
           "setup_jax", "strict_json"]


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ``jaxhalo COMMAND: error: ...`` (exit code 2), pointing
    to ``--help`` instead of printing the usage block; subcommand parsers inherit the class, and with it
    the help layout (:class:`~jaxhalo.cli._console.HelpFormatter`: defaults shown) and the exit codes."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("epilog", EXIT_CODES_EPILOG)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxhalo`` argument parser with every subcommand."""
    p = _OneLineParser(prog="jaxhalo", description="Fast, differentiable kinematics and dynamics of the Milky Way's outer halo.")
    p.add_argument("--version", action="version", version=f"jaxhalo {__version__}")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error (also JAXHALO_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True)
    add_fit_parser(sub)
    add_bench_parser(sub)
    add_simulate_parser(sub)
    add_suite_parser(sub)
    add_sbi_parser(sub)
    add_profiles_parser(sub)
    add_forecast_parser(sub)
    return p


def _is_input_error(exc: BaseException) -> bool:
    """An error the user can fix (bad input, option, file, store), as opposed to a bug."""
    if isinstance(exc, (ValueError, OSError)):
        return True
    return type(exc).__module__.startswith("jaxhalo.") or type(exc).__name__ == "IORegistryError"


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()] or [type(exc).__name__]
    return lines[0] if len(lines) == 1 else f"{lines[0]} [...]"


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code
    (0 success, 2 an error in the input, 3 a failed convergence check under ``--strict``, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    record_command_line(["jaxhalo", *argv])
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("JAXHALO_DEBUG", "") not in ("", "0")
    level = set_verbosity(args)
    label = getattr(args, "command_label", None) or args.command  # "sbi nuts", not "sbi"
    try:
        with quiet_stdout(level < 0):
            rc = int(args.func(args) or 0)
        for note in getattr(args, "deprecated_options", None) or []:
            print(f"jaxhalo {label}: note: {note}", file=sys.stderr)
        return rc
    except KeyboardInterrupt:
        print(f"jaxhalo {label}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug or not _is_input_error(exc):
            raise
        print(f"jaxhalo {label}: error: {_one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_BAD_INPUT


def entry() -> None:
    """The ``jaxhalo`` console script (and ``python -m jaxhalo[.cli]``): :func:`main`, then a hard exit.

    After a command has written and closed its files, the interpreter's own teardown (freeing the XLA
    client, the compiled programs and every module) took ~1.3 s of a 10 s ``jaxhalo fit`` on 2 CPU
    cores. On a normal return the streams and logging handlers are flushed and the process exits with
    ``os._exit``; an exception (``--debug``, an unexpected error) takes the normal path and traceback.
    In-process callers (tests, notebooks) use :func:`main`, which returns.
    """
    rc = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to flush into
            pass
    logging.shutdown()
    os._exit(rc)


if __name__ == "__main__":  # pragma: no cover
    entry()
