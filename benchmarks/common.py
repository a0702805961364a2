"""Shared helpers for the benchmark scripts: device naming, timing, result files.

Every benchmark script exposes ``run(quick: bool = False) -> list[dict]`` and, when run
as a script, writes ``benchmarks/results/<name>_<device-slug>.json`` through
:func:`write_results`. ``jaxhalo bench`` collects them and renders the Markdown table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax

RESULTS = Path(__file__).resolve().parent / "results"


def device_name() -> str:
    """Human-readable name of the default JAX device, with the CPU model and core count on CPU."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        cpu = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"CPU: {cpu} ({os.cpu_count()} cores)"
    return f"{dev.platform.upper()}: {getattr(dev, 'device_kind', str(dev))}"


def device_slug() -> str:
    """Short file-name-safe device tag: 'cpu' or the GPU kind, e.g. 'nvidia-h100'."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"cpu{os.cpu_count()}"
    return re.sub(r"[^a-z0-9]+", "-", getattr(dev, "device_kind", dev.platform).lower()).strip("-")


def block(x: Any) -> Any:
    """Block until every array in a pytree is computed."""
    return jax.block_until_ready(x)


def timeit(fn: Callable[[], Any], repeats: int = 5, min_time: float = 0.2) -> dict:
    """Time ``fn()`` (already compiled): first call separately, then the best of ``repeats``.

    Returns {'first_s', 'best_s', 'median_s', 'n'}.
    """
    t0 = time.perf_counter()
    block(fn())
    first = time.perf_counter() - t0
    times = []
    t_start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - t_start) < min_time and len(times) < 100:
        t0 = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"first_s": first, "best_s": times[0], "median_s": times[len(times) // 2], "n": len(times)}


def result_payload(name: str, records: list[dict], meta: dict | None = None) -> dict:
    """The JSON document of one benchmark: name, device, jax version, date, load average, meta, records."""
    return {
        "benchmark": name,
        "device": device_name(),
        "jax_version": jax.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "meta": meta or {},
        "records": records,
    }


#: Set by ``jaxhalo bench`` to the folder the records go to (its ``--out``, or ``benchmarks/results/``
#: under ``--record``).
OUT_ENV = "JAXHALO_BENCH_OUT"


def results_dir(out_dir: str | Path | None = None, argv: list[str] | None = None) -> Path:
    """Where :func:`write_results` writes: ``out_dir`` if given, else ``$JAXHALO_BENCH_OUT`` (set by
    ``jaxhalo bench``), else ``benchmarks/results/`` (the committed records) -- except for a script run
    with ``--quick`` (in ``argv``, default ``sys.argv``), whose smaller problems go to
    ``benchmarks/results/quick/`` (ignored by git and by the README table) and never over a record."""
    if out_dir is not None:
        return Path(out_dir)
    if os.environ.get(OUT_ENV):
        return Path(os.environ[OUT_ENV])
    return RESULTS / "quick" if "--quick" in (sys.argv if argv is None else argv) else RESULTS


def write_results(name: str, records: list[dict], meta: dict | None = None, out_dir: str | Path | None = None) -> Path:
    """Write benchmark records to ``<folder>/<name>_<device>.json`` and return the path.

    The folder is :func:`results_dir`: ``out_dir``, or ``jaxhalo bench``'s ``--out`` / ``--record``
    folder, or ``benchmarks/results/`` (the committed records) for a full run of the script and
    ``benchmarks/results/quick/`` for a ``--quick`` one; the device driver
    (``benchmarks/device_checks.py``) passes its own directory so that it never writes over them.
    """
    folder = results_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}_{device_slug()}.json"
    out.write_text(json.dumps(result_payload(name, records, meta), indent=2, default=float))
    return out


def script_flags(doc: str | None, known: tuple[str, ...] = ("--quick",), argv: list[str] | None = None) -> set[str]:
    """The flags a benchmark script was started with, checked before it runs anything.

    ``-h``/``--help`` prints the script's docstring and exits 0; a flag not in ``known`` exits 2
    naming it, so a typo never starts a full run that overwrites the committed records.
    """
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(doc or "")
        raise SystemExit(0)
    unknown = [a for a in argv if a not in known]
    if unknown:
        print(f"unknown option(s) {unknown}; known: {', '.join(known)}", file=sys.stderr)
        raise SystemExit(2)
    return set(argv)
