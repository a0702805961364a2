"""The bad-input table: every case runs the real command line and must end with exit code 2, one line
``jaxhalo COMMAND: error: ...`` naming the problem, no output created or changed, and no JAX loaded.

Each case is ``(id, argv, expected substrings of the message)``; argv may use ``{cat}`` (a good
catalogue), ``{bad}`` (the case's broken catalogue, built by :func:`_make_bad`), ``{tmp}`` and ``{out}``
(the output path, absent before the run unless the case prepares it). The cases run in-process through
:func:`jaxhalo.cli.main` (fast); :func:`test_every_case_fails_before_jax_loads` runs the whole table again
in one fresh interpreter and checks that none of them imported JAX (the fail-fast budget), printing the
time of each case.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from jaxhalo.cli import main
from jaxhalo.example_data import EXAMPLE_CATALOG

ROOT = Path(__file__).resolve().parents[2]
NUMERIC = ("l", "b", "distance", "distance_err", "v_los", "v_los_err", "pm_l", "pm_b", "pm_l_err", "pm_b_err", "pm_corr")


def _example() -> Table:
    return Table.read(EXAMPLE_CATALOG)


def _set(col: str, row: int, value):
    def f(t: Table) -> Table:
        t[col] = np.asarray(t[col], float)
        t[col][row] = value
        return t
    return f


def _scale(cols, factor):
    def f(t: Table) -> Table:
        for c in cols:
            t[c] = np.asarray(t[c], float) * factor
        return t
    return f


def _strings(t: Table) -> Table:
    t["v_los"] = np.array([f"{v:.1f} km/s" for v in t["v_los"]])
    return t


def _duplicate(t: Table) -> Table:
    from astropy.table import vstack

    return vstack([t, t[5:6]])


#: Catalogue faults: id -> (edit of the bundled example, expected message parts).
CATALOG_FAULTS = {
    "header-only": (lambda t: t[:0], ["holds no stars"]),
    "one-star": (lambda t: t[:1], ["1 star(s)", "needs at least 36"]),
    "missing-column": (lambda t: (t.remove_column("v_los"), t)[1], ["missing column", "'v_los'"]),
    **{f"nan-{c}": (_set(c, 3, np.nan), [f"column '{c}'", "NaN", "[3]"]) for c in NUMERIC},
    **{f"inf-{c}": (_set(c, 7, np.inf), [f"column '{c}'", "inf", "[7]"]) for c in NUMERIC},
    "zero-distance": (_set("distance", 2, 0.0), ["column 'distance'", "non-positive distance", "[2]"]),
    "negative-distance": (_set("distance", 4, -10.0), ["column 'distance'", "non-positive distance", "[4]"]),
    **{f"zero-{c}": (_set(c, 1, 0.0), [f"column '{c}'", "non-positive error", "[1]"])
       for c in ("distance_err", "v_los_err", "pm_l_err", "pm_b_err")},
    **{f"negative-{c}": (_set(c, 6, -1.0), [f"column '{c}'", "non-positive error", "[6]"])
       for c in ("distance_err", "v_los_err", "pm_l_err", "pm_b_err")},
    "corr-1": (_set("pm_corr", 8, 1.0), ["column 'pm_corr'", "|rho| >= 1", "[8]"]),
    "b-above-90": (_set("b", 9, 95.0), ["column 'b'", "|b| > 90 deg", "[9]"]),
    "pc-as-kpc": (_scale(["distance", "distance_err"], 1000.0), ["column 'distance'", "look like pc", "--force"]),
    "vlos-in-m/s": (_scale(["v_los", "v_los_err"], 1000.0), ["column 'v_los'", "m/s", "--force"]),
    "pm-wrong-unit": (_scale(["pm_l", "pm_b", "pm_l_err", "pm_b_err"], 1000.0), ["'pm_l', 'pm_b'", "mas/yr"]),
    "duplicated-star": (_duplicate, ["1 row(s) [850]", "repeat earlier stars", "row 850 = row 5"]),
    "strings": (_strings, ["column 'v_los'", "not real-valued numeric"]),
}


def _make_bad(name: str, tmp: Path) -> Path:
    edit, _ = CATALOG_FAULTS[name]
    t = edit(_example())
    path = tmp / "bad.ecsv"
    t.write(path, overwrite=True)
    return path


#: Every other case: id -> (argv, expected message parts, setup(tmp) or None).
def _mkfile(rel: str, content: bytes = b""):
    def setup(tmp: Path) -> None:
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return setup


def _mkdir_nonempty(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "summary.csv").write_text("seed 3 result\n")


FIT = ["fit", "{cat}", "--out", "{out}", "--no-cache"]
CASES = {
    # inputs
    "empty-file": (["fit", "{tmp}/empty.ecsv", "--out", "{out}"], ["empty.ecsv", "is empty"], _mkfile("empty.ecsv")),
    "unknown-format": (["fit", "{tmp}/cat.xyz", "--out", "{out}"], ["cat.xyz", "unknown format", "--format"],
                       _mkfile("cat.xyz", b"\x00\x01 not a table")),
    "text-no-format-fits": (["fit", "{tmp}/cat.txt", "--out", "{out}"],
                            ["cat.txt", "no format fits", "peer-t:", "peer-h:", "ascii:", "--format peer-t, peer-h"],
                            _mkfile("cat.txt", b"a b c\n1 2 3\n")),
    "from-diagnostics-missing": (FIT + ["--from-diagnostics", "{tmp}/nope/diagnostics.json"],
                                 ["--from-diagnostics", "no such file"], None),
    "from-diagnostics-not-json": (FIT + ["--from-diagnostics", "{tmp}/d.json"], ["--from-diagnostics", "not a readable JSON"],
                                  _mkfile("d.json", b"{not json")),
    "selection-needs-phase-space": (FIT + ["--selection", "pp21"], ["--selection pp21 needs", "xyz, vxyz"], None),
    "garbage-ecsv": (["fit", "{tmp}/junk.ecsv", "--out", "{out}"], ["junk.ecsv", "cannot be read"],
                     _mkfile("junk.ecsv", b"\x89PNG\r\n\x1a\n garbage")),
    "directory-input": (["fit", "{tmp}", "--out", "{out}"], ["is a directory"], None),
    "nonexistent-input": (["fit", "{tmp}/nope.ecsv", "--out", "{out}"], ["nope.ecsv", "does not exist"], None),
    "zero-after-cut": (FIT + ["--r-min", "500"], ["0 star(s) remain after the r_gal cut --r-min 500", "850 of 850 removed"], None),
    "too-few-after-cut": (FIT + ["--model", "constant", "--r-min", "163"], ["remain after the r_gal cut --r-min 163",
                                                                            "needs at least 18", "--force"], None),
    # outputs
    "out-is-a-file": (FIT, ["--out", "is a file"], _mkfile("out", b"keep me")),
    "out-exists": (FIT, ["--out", "exists and is not empty", "--overwrite"], _mkdir_nonempty),
    "out-unwritable": (["fit", "{cat}", "--out", "/proc/jaxhalo_no_such_dir/out"], ["cannot be written"], None),
    "out-is-cwd": (["fit", "{cat}", "--out", ".", "--overwrite"], ["current directory or one above it"], None),
    "out-is-root": (["fit", "{cat}", "--out", "/", "--overwrite"], ["current directory or one above it"], None),
    "out-parent-is-file": (["fit", "{cat}", "--out", "{tmp}/afile/out"], ["afile", "is a file"], _mkfile("afile", b"x")),
    # options
    "chains-0": (FIT + ["--chains", "0"], ["argument --chains", "below the minimum 1"], None),
    "samples-0": (FIT + ["--samples", "0"], ["argument --samples", "below the minimum 1"], None),
    "warmup-0": (FIT + ["--warmup", "0"], ["argument --warmup", "below the minimum 1"], None),
    "n-clip-negative": (FIT + ["--n-clip", "-1"], ["argument --n-clip", "below the minimum 0"], None),
    "seed-1e20": (FIT + ["--seed", "1e20"], ["argument --seed", "above the maximum"], None),
    "seed-negative": (FIT + ["--seed", "-1"], ["argument --seed", "below the minimum 0"], None),
    "seed-text": (FIT + ["--seed", "abc"], ["argument --seed", "'abc' is not an integer"], None),
    "r-min-negative": (FIT + ["--r-min", "-5"], ["argument --r-min", "must be >= 0"], None),
    "r-max-nan": (FIT + ["--r-max", "nan"], ["argument --r-max", "not a finite number"], None),
    "r-min-above-r-max": (FIT + ["--r-min", "200", "--r-max", "100"], ["--r-min 200 is not below --r-max 100"], None),
    "anchors-reversed": (FIT + ["--anchors", "120", "40"], ["--anchors R_IN 120 is not below R_OUT 40"], None),
    "model-unknown": (FIT + ["--model", "quadratic"], ["argument --model", "invalid choice"], None),
    "profiles-bins-reversed": (["profiles", "{cat}", "--out", "{out}", "--bins", "100", "50"],
                               ["--bins", "strictly increasing"], None),
    "profiles-min-stars-0": (["profiles", "{cat}", "--out", "{out}", "--min-stars", "0"], ["argument --min-stars"], None),
    "profiles-double-no-feh": (["profiles", "{cat}", "--out", "{out}", "--model", "double"], ["needs a finite 'feh' column"],
                               None),
    "profiles-pc-as-kpc": (["profiles", "{tmp}/pc.ecsv", "--out", "{out}"], ["look like pc", "--force"],
                           lambda tmp: _scale(["distance", "distance_err"], 1000.0)(_example()).write(tmp / "pc.ecsv")),
    "profiles-out-exists": (["profiles", "{cat}", "--out", "{out}"], ["exists and is not empty"], _mkdir_nonempty),
    "simulate-n-particles-0": (["simulate", "--n-particles", "0", "--out", "{out}"], ["argument --n-particles"], None),
    "simulate-dt-negative": (["simulate", "--dt", "-1", "--out", "{out}"], ["argument --dt", "must be > 0"], None),
    "simulate-window-reversed": (["simulate", "--r-min", "160", "--r-max", "30", "--out", "{out}"],
                                 ["--r-min 160 is not below --r-max 30"], None),
    "simulate-window-reversed-old-spelling": (["simulate", "--r-gal-min", "160", "--r-gal-max", "30", "--out", "{out}"],
                                              ["--r-min 160 is not below --r-max 30"], None),
    "bench-record-quick": (["bench", "--record", "--quick", "--only", "startup"], ["--quick results are never recorded"],
                           None),
    "bench-record-and-out": (["bench", "--record", "--out", "{out}", "--only", "startup"], ["--record or --out, not both"],
                             None),
    "bench-out-exists": (["bench", "--out", "{out}", "--only", "startup"], ["exists and is not empty", "--overwrite"],
                         _mkdir_nonempty),
    "simulate-out-exists": (["simulate", "--out", "{out}"], ["exists and is not empty"], _mkdir_nonempty),
    "suite-n-0": (["suite", "run", "--n", "0", "--out", "{out}"], ["argument --n", "below the minimum 1"], None),
    "suite-chunk-0": (["suite", "run", "--n", "8", "--chunk", "0", "--out", "{out}"], ["argument --chunk"], None),
    "suite-out-is-a-file": (["suite", "run", "--n", "8", "--out", "{out}"], ["--out", "is a file"], _mkfile("out", b"x")),
    "suite-start-off-chunk": (["suite", "run", "--n", "8", "--chunk", "4", "--start", "3", "--out", "{out}"],
                              ["multiples of the chunk size 4"], None),
    "suite-stop-beyond-n": (["suite", "run", "--n", "8", "--stop", "16", "--out", "{out}"], ["stop <= --n 8"], None),
    "suite-resume-other-settings": (["suite", "run", "--n", "8", "--chunk", "4", "--seed", "1", "--out", "{out}"],
                                    ["was made with --n 800 (this run 8)", "--seed 5 (this run 1)"],
                                    lambda tmp: _mkfile("out/suite.json", json.dumps(
                                        {"n_total": 800, "chunk_size": 4, "seed": 5}).encode())(tmp)),
    "sbi-train-no-store": (["sbi", "train", "{tmp}/nostore", "--out", "{out}"], ["nostore", "does not exist"], None),
    "sbi-train-not-a-store": (["sbi", "train", "{tmp}", "--out", "{out}"], ["not a jaxhalo suite store"], None),
    "sbi-train-out-unwritable": (["sbi", "train", "{tmp}", "--out", "/proc/jaxhalo_no_such_dir/m.npe"],
                                 ["cannot be written"], None),
    "sbi-train-out-exists": (["sbi", "train", "{tmp}", "--out", "{tmp}/m.npe"], ["m.npe exists; give --overwrite"],
                             _mkfile("m.npe", b"an earlier model")),
    "sbi-train-batch-0": (["sbi", "train", "{tmp}", "--out", "{out}", "--batch", "0"], ["argument --batch"], None),
    "sbi-train-val-frac-1": (["sbi", "train", "{tmp}", "--out", "{out}", "--val-frac", "1"], ["argument --val-frac"], None),
    "sbi-infer-n-samples-0": (["sbi", "infer", "{tmp}/m.npe", "{tmp}/x.json", "--out", "{out}", "--n-samples", "0"],
                              ["argument --n-samples"], None),
    "sbi-infer-no-summaries-key": (["sbi", "infer", "{tmp}/m.npe", "{tmp}/x.json", "--out", "{out}"],
                                   ["x.json", "no key 'summaries'"],
                                   lambda tmp: (_mkfile("m.npe", b'{"format": "jaxhalo-npe", "cond_dim": 2}\n')(tmp),
                                                _mkfile("x.json", b'{"x": [1, 2]}')(tmp))),
    "sbi-infer-not-a-model": (["sbi", "infer", "{tmp}/m.npe", "{tmp}/x.json", "--out", "{out}"],
                              ["m.npe", "not a jaxhalo NPE model"],
                              lambda tmp: (_mkfile("m.npe", b"\x00garbage\n")(tmp), _mkfile("x.json", b"[1, 2]")(tmp))),
    "sbi-infer-summary-length": (["sbi", "infer", "{tmp}/m.npe", "{tmp}/x.json", "--out", "{out}"],
                                 ["has 3 entries", "trained on 52 summaries"],
                                 lambda tmp: (_mkfile("m.npe", b'{"format": "jaxhalo-npe", "cond_dim": 52}\n')(tmp),
                                              _mkfile("x.json", b"[1, 2, 3]")(tmp))),
    "sbi-infer-model-missing": (["sbi", "infer", "{tmp}/none.npe", "{tmp}/x.json", "--out", "{out}"],
                                ["model file", "none.npe", "does not exist"], _mkfile("x.json", b"[1, 2]")),
}


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``root`` with its size, mtime and (for files) content."""
    snap = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        snap[str(p.relative_to(root))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns,
                                          p.read_bytes() if p.is_file() else b"")
    return snap


def _argv(argv: list[str], tmp: Path, bad: Path | None) -> list[str]:
    fill = {"cat": str(EXAMPLE_CATALOG), "bad": str(bad), "tmp": str(tmp), "out": str(tmp / "out")}
    return [a.format(**fill) for a in argv]


def _prepare(case: str, tmp: Path) -> tuple[list[str], list[str]]:
    """Build the files of ``case`` in ``tmp``; return its argv and the expected message parts."""
    if case in CATALOG_FAULTS:
        bad = _make_bad(case, tmp)
        return ["fit", str(bad), "--out", str(tmp / "out"), "--no-cache"], CATALOG_FAULTS[case][1]
    argv, expect, setup = CASES[case]
    if setup is not None:
        setup(tmp)
    return _argv(argv, tmp, None), expect


ALL_CASES = sorted(CATALOG_FAULTS) + sorted(CASES)


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_input_fails_with_one_line(case, tmp_path, capsys):
    argv, expect = _prepare(case, tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(SystemExit) if _is_option_case(case) else contextlib.nullcontext() as exc:
        rc = main(argv)
    rc = exc.value.code if _is_option_case(case) else rc
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2
    assert len(err) == 1, err
    command = " ".join(a for a in argv[:2] if a in ("fit", "profiles", "simulate", "suite", "sbi", "run", "train", "infer"))
    assert err[0].startswith(f"jaxhalo {argv[0]}"), err[0]
    assert "error:" in err[0], err[0]
    for part in expect:
        assert part in err[0], (part, err[0])
    assert _snapshot(tmp_path) == before, f"{command}: the output directory changed"


def _is_option_case(case: str) -> bool:
    """Cases that argparse rejects (it exits through SystemExit(2))."""
    if case in CATALOG_FAULTS:
        return False
    return any(p.startswith("argument ") or p.startswith("invalid choice") for p in CASES[case][1])


def test_the_table_covers_the_issue():
    """The kinds of bad input the issue lists all have a case."""
    for kind in ("empty-file", "header-only", "one-star", "zero-after-cut", "missing-column", "pc-as-kpc",
                 "b-above-90", "strings", "unknown-format", "directory-input", "nonexistent-input", "out-is-a-file",
                 "out-unwritable", "out-exists", "duplicated-star", "chains-0", "samples-0", "seed-1e20"):
        assert kind in ALL_CASES
    for c in NUMERIC:
        assert f"nan-{c}" in ALL_CASES and f"inf-{c}" in ALL_CASES


def test_every_case_fails_before_jax_loads(tmp_path):
    """All cases again in one fresh interpreter: each fails with code 2 and none imports JAX (printed: the
    wall time of each case, the first one including the start-up of NumPy and astropy)."""
    script = textwrap.dedent(f"""
        import sys, time, json, contextlib, io
        from pathlib import Path
        sys.path.insert(0, {str(ROOT / 'tests' / 'cli')!r})
        import test_bad_input as T
        from jaxhalo.cli import main
        base = Path({str(tmp_path)!r})
        out = {{}}
        for i, case in enumerate(T.ALL_CASES):
            tmp = base / str(i)
            tmp.mkdir()
            argv, _ = T._prepare(case, tmp)
            t0 = time.perf_counter()
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    rc = main(argv)
                except SystemExit as e:
                    rc = e.code
            out[case] = (rc, time.perf_counter() - t0, [m for m in ('jax', 'numpyro', 'arviz', 'matplotlib') if m in sys.modules])
        print(json.dumps(out))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert sorted(res) == sorted(ALL_CASES)
    bad = {c: v for c, v in res.items() if v[0] != 2 or v[2]}
    assert not bad, bad
    slowest = sorted(res.items(), key=lambda kv: -kv[1][1])[:3]
    print("first case (with start-up):", ALL_CASES[0], round(res[ALL_CASES[0]][1], 3), "s; slowest (s):",
          [(c, round(v[1], 3)) for c, v in slowest])


def test_fit_parameter_counts_match_the_model():
    """The pre-JAX minimum-star rule of `fit` uses N_PARAMETERS; it must equal the model's own count."""
    from jaxhalo.cli.fit import N_PARAMETERS
    from jaxhalo.likelihoods.reflex import ReflexModel

    for form, n in N_PARAMETERS.items():
        for apex in ("galactic", "ms", "cartesian"):
            assert len(ReflexModel(form, apex).param_names) == n, (form, apex)
