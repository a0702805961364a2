"""Start-up cost of the package and the command line: wall time and ``python -X importtime``.

Measures, for a source tree (default: this checkout; ``--source DIR`` for another, e.g. a
``git worktree`` of an older commit), each in a fresh interpreter with ``PYTHONPATH=DIR``:

* ``python -c "import jaxhalo"``, and with a first use (``jaxhalo.fit_reflex``, which loads the JAX stack)
* ``python -m jaxhalo.cli --help`` and ``python -m jaxhalo.cli fit --help`` (what the ``jaxhalo``
  console script runs)

as the median wall time of ``repeats`` runs after one warm-up, and from ``-X importtime`` the
cumulative import time of the entry module, the number of modules imported and the heaviest
top-level packages. Run: ``python -m benchmarks.bench_startup [--quick] [--source DIR --label before]``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULT_NAME = "startup"
REPO = Path(__file__).resolve().parents[1]

CASES = {
    "import jaxhalo": ["-c", "import jaxhalo"],
    "import jaxhalo + first use (jaxhalo.fit_reflex)": ["-c", "import jaxhalo; jaxhalo.fit_reflex"],
    "jaxhalo --help": ["-m", "jaxhalo.cli", "--help"],
    "jaxhalo fit --help": ["-m", "jaxhalo.cli", "fit", "--help"],
}


def _env(source: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(source)
    return env


def _wall(args: list[str], source: Path, repeats: int) -> list[float]:
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], env=_env(source), cwd=source, check=True, capture_output=True)
        if i:  # the first run warms the file cache and .pyc files
            times.append(time.perf_counter() - t0)
    return times


def _importtime(args: list[str], source: Path) -> dict:
    """Parse ``-X importtime`` (stderr lines 'import time: self | cumulative | name')."""
    out = subprocess.run([sys.executable, "-X", "importtime", *args], env=_env(source), cwd=source,
                         check=True, capture_output=True, text=True).stderr
    rows = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|")
        rows.append((name.rstrip(), int(self_us), int(cum_us)))
    top = {}
    for name, self_us, _ in rows:
        pkg = name.strip().split(".")[0]
        top[pkg] = top.get(pkg, 0) + self_us
    heaviest = sorted(top.items(), key=lambda kv: -kv[1])[:6]
    total_self_s = sum(s for _, s, _ in rows) / 1e6
    return {"modules_imported": len(rows), "import_self_total_s": round(total_self_s, 3),
            "heaviest_packages_s": {k: round(v / 1e6, 3) for k, v in heaviest},
            "jax_imported": any(n.strip() == "jax" for n, _, _ in rows)}


def run(quick: bool = False, source: Path = REPO, label: str = "this checkout") -> list[dict]:
    repeats = 3 if quick else 7
    where = subprocess.run([sys.executable, "-c", "import jaxhalo; print(jaxhalo.__file__)"], env=_env(source), cwd=source,
                           check=True, capture_output=True, text=True).stdout.strip()
    recs = []
    for case, args in CASES.items():
        walls = _wall(args, source, repeats)
        rec = {"tree": label, "package": where, "case": case, "wall_median_s": round(statistics.median(walls), 3),
               "wall_min_s": round(min(walls), 3), "runs": len(walls)}
        rec.update(_importtime(args, source))
        recs.append(rec)
        print(rec, flush=True)
    return recs


if __name__ == "__main__":
    import json

    argv = sys.argv[1:]
    quick = "--quick" in argv
    source = Path(argv[argv.index("--source") + 1]).resolve() if "--source" in argv else REPO
    label = argv[argv.index("--label") + 1] if "--label" in argv else "this checkout"
    recs = run(quick, source, label)
    if "--append" in argv:  # add to an existing record file (before / after in one file)
        out = Path(argv[argv.index("--append") + 1])
        payload = json.loads(out.read_text())
        payload["records"] += recs
        out.write_text(json.dumps(payload, indent=2))
        print(out)
    else:
        from benchmarks.common import write_results

        print(write_results(RESULT_NAME, recs, {"what": "fresh-interpreter start-up, median wall of N runs after a warm-up; "
                                                        "-X importtime parsed", "load_avg": os.getloadavg()}))
