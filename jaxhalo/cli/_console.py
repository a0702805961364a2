"""The command line's one grammar: help layout, shared options, verbosity and exit codes (standard library only).

* :class:`HelpFormatter`: every parser's help shows each option's default (``(default: 500)``) unless the
  default is None/False/empty (nothing to show) or the help text already states it; descriptions and
  epilogues keep their line breaks.
* :func:`add_verbosity`: ``-q/--quiet`` and ``-v/--verbose`` on every command. ``-q``: nothing on stdout
  and no progress bars (warnings and errors still go to stderr); ``-v``: detail lines (per-stage timings,
  devices) and the ``jaxhalo`` logger at DEBUG; ``-vv`` also logs every XLA compilation.
* :func:`add_deprecated_alias`: an old option spelling kept working (hidden from ``--help``, same ``dest``),
  with a one-line note on stderr.
* :func:`convergence_problems`: the convergence checks behind ``--strict`` (exit code :data:`EXIT_NOT_CONVERGED`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import sys
from collections.abc import Iterator

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_CONVERGED",
    "EXIT_OK",
    "HelpFormatter",
    "add_deprecated_alias",
    "add_verbosity",
    "convergence_exit",
    "convergence_problems",
    "detail",
    "info",
    "quiet_stdout",
    "set_verbosity",
    "verbosity",
    "warn",
]

EXIT_OK = 0
#: A bad option, input file or output path (nothing was computed or written).
EXIT_BAD_INPUT = 2
#: ``--strict``: the run finished and wrote its results, but a convergence check failed.
EXIT_NOT_CONVERGED = 3
EXIT_INTERRUPTED = 130

#: The exit codes as the commands' ``--help`` lists them.
EXIT_CODES_EPILOG = ("exit codes: 0 done; 2 bad input (nothing written); 3 a convergence check failed under --strict "
                     "(results written); 130 interrupted")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` with each option's default, without ``(default: None)`` / ``(default: False)`` noise.

    The default is shown when it is a value (not None, False, an empty list or suppressed), the option
    takes a value, and the help text does not already say ``default``. Lists are shown space-separated, as
    they are typed. Descriptions and epilogues with line breaks are printed as written, others wrapped.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default" in text.lower() or default is None or default is False
                or default is argparse.SUPPRESS or action.nargs == 0 or (isinstance(default, (list, tuple)) and not default)):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        shown = " ".join(_fmt(v) for v in default) if isinstance(default, (list, tuple)) else _fmt(default)
        return (text + " " if text else "") + f"(default: {shown})".replace("%", "%%")

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """A description or epilogue with line breaks is printed as written; one without is wrapped."""
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---- verbosity ---------------------------------------------------------------------------------------

_VERBOSITY = 0  # -1 quiet, 0 normal, 1 -v, 2 -vv


def add_verbosity(p: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` and ``-v/--verbose`` (mutually exclusive) on a command's parser."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true",
                   help="nothing on stdout and no progress bars; warnings and errors still go to stderr")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more detail (per-stage timings, devices; the jaxhalo logger at DEBUG); -vv also logs "
                        "every XLA compilation")


def set_verbosity(args: argparse.Namespace) -> int:
    """Set the process's verbosity from ``args`` (-1 quiet, 0, 1, 2), turn progress off under ``-q``
    (``args.no_progress``) and configure the ``jaxhalo`` logger; returns the verbosity."""
    global _VERBOSITY
    quiet, verbose = bool(getattr(args, "quiet", False)), int(getattr(args, "verbose", 0) or 0)
    _VERBOSITY = -1 if quiet else min(verbose, 2)
    if quiet and hasattr(args, "no_progress"):
        args.no_progress = True
    log = logging.getLogger("jaxhalo")
    log.setLevel(logging.DEBUG if _VERBOSITY >= 1 else logging.WARNING)
    if _VERBOSITY >= 1 and not any(getattr(h, "_jaxhalo_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s %(message)s"))
        handler._jaxhalo_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    return _VERBOSITY


def verbosity() -> int:
    """-1 under ``-q``, 0 by default, 1 with ``-v``, 2 with ``-vv``."""
    return _VERBOSITY


def info(msg: str = "", file=None) -> None:
    """An information line (stdout unless ``file``), silent under ``-q``."""
    if _VERBOSITY >= 0:
        print(msg, file=sys.stdout if file is None else file, flush=True)


def detail(msg: str) -> None:
    """A detail line (stdout), shown only with ``-v``."""
    if _VERBOSITY >= 1:
        print(msg, flush=True)


def warn(msg: str) -> None:
    """A warning line on stderr, shown at every verbosity."""
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_stdout(active: bool) -> Iterator[None]:
    """Under ``-q``, swallow whatever the command or a library prints on stdout (stderr is kept)."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# ---- deprecated spellings ----------------------------------------------------------------------------

class _DeprecatedAlias(argparse.Action):
    """Stores like the option it stands for and notes the new spelling on stderr."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        notes = getattr(namespace, "deprecated_options", None) or []
        namespace.deprecated_options = [*notes, f"{option_string} is deprecated; use {self.new}"]


def add_deprecated_alias(p, old: str, new_action: argparse.Action) -> None:
    """Keep ``old`` working as a hidden alias of ``new_action`` (same ``dest`` and ``type``; not shown in
    ``--help``). Its use is listed in ``args.deprecated_options``, which :func:`jaxhalo.cli.main` prints as
    one note on stderr after the command ran (so that an error stays one line)."""
    p.add_argument(old, dest=new_action.dest, type=new_action.type, metavar=new_action.metavar,
                   nargs=new_action.nargs, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                   action=_DeprecatedAlias, new=new_action.option_strings[-1])


# ---- convergence -------------------------------------------------------------------------------------

def convergence_problems(max_r_hat: float | None, n_divergent: int, min_ess_bulk: float | None = None,
                         n_chains: int = 1, r_hat_limit: float = 1.01, ess_per_chain: float = 100.0,
                         where: str = "") -> list[str]:
    """The convergence checks that failed, one phrase each (empty: all passed).

    * R-hat (rank-normalised split R-hat) below ``r_hat_limit`` (1.01, Vehtari et al. 2021); NaN fails;
      None skips the check;
    * no divergent transitions after warm-up;
    * bulk ESS at least ``ess_per_chain`` per chain (100, Vehtari et al.'s minimum; None skips it).
    """
    problems = []
    if max_r_hat is not None and not (math.isfinite(max_r_hat) and max_r_hat < r_hat_limit):
        problems.append(f"max R-hat {max_r_hat:.4f} >= {r_hat_limit:g}{where}")
    if n_divergent:
        problems.append(f"{n_divergent} divergent transition(s){where}")
    if min_ess_bulk is not None and not (math.isfinite(min_ess_bulk) and min_ess_bulk >= ess_per_chain * n_chains):
        problems.append(f"min bulk ESS {min_ess_bulk:.0f} < {ess_per_chain * n_chains:g} ({ess_per_chain:g} per chain)")
    return problems


def convergence_exit(problems: list[str], strict: bool, command: str, advice: str) -> int:
    """Warn about failed convergence checks (one line on stderr) and return the exit code: 0, or
    :data:`EXIT_NOT_CONVERGED` under ``--strict`` (the results are written either way)."""
    if not problems:
        return EXIT_OK
    warn(f"[jaxhalo {command}] WARNING: convergence checks failed: {'; '.join(problems)}; {advice}"
         + (f" (exit code {EXIT_NOT_CONVERGED}: --strict)" if strict else
            f" (--strict makes this exit code {EXIT_NOT_CONVERGED})"))
    return EXIT_NOT_CONVERGED if strict else EXIT_OK
