"""The ``jaxhalo`` command line: ``fit``, ``profiles``, ``simulate``, ``suite``, ``sbi``, ``bench``.

Each subcommand lives in its own module with an ``add_<command>_parser`` and a ``cmd_<command>``;
building the parser imports no JAX, so ``jaxhalo --help`` prints at once and the JAX stack loads
only in the command that runs. :mod:`jaxhalo.cli._setup` is the one place that configures JAX
(float64, host devices, the persistent compilation cache); the library itself never flips
``jax_enable_x64``.
"""

from __future__ import annotations

import argparse
import sys

from ._setup import setup_jax
from .bench import add_bench_parser
from .fit import add_fit_parser
from .profiles import add_profiles_parser
from .sbi import add_sbi_parser
from .simulate import add_simulate_parser
from .suite import add_suite_parser

__all__ = ["build_parser", "main", "setup_jax"]


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxhalo`` argument parser with every subcommand."""
    p = argparse.ArgumentParser(prog="jaxhalo", description="Fast, differentiable kinematics and dynamics of the Milky Way's outer halo.")
    sub = p.add_subparsers(dest="command", required=True)
    add_fit_parser(sub)
    add_bench_parser(sub)
    add_simulate_parser(sub)
    add_suite_parser(sub)
    add_sbi_parser(sub)
    add_profiles_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
