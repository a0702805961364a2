"""One command-line grammar (issue 17): -q/-v everywhere, defaults in --help, the same option names for the
same things (old spellings as hidden aliases), --strict exit codes, --no-pointwise, one progress bar, and
``bench`` writing into benchmarks/results/ only with --record."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jaxhalo.cli import build_parser, main
from jaxhalo.cli._console import (
    EXIT_NOT_CONVERGED,
    HelpFormatter,
    convergence_exit,
    convergence_problems,
    set_verbosity,
)

ROOT = Path(__file__).resolve().parents[2]


def _commands(parser: argparse.ArgumentParser, name: str = "jaxhalo"):
    """(name, parser) of every leaf command ('jaxhalo fit', 'jaxhalo suite run', ...)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield name, parser
    for a in subs:
        for n, sp in a.choices.items():
            yield from _commands(sp, f"{name} {n}")


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_every_command_takes_quiet_and_verbose_and_shows_defaults():
    for name, p in _commands(build_parser()):
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= opts, name
        assert p.formatter_class is HelpFormatter, name
        # an option with a value and a default worth showing has a help line (argparse prints no default without one)
        for a in p._actions:
            if a.option_strings and a.nargs != 0 and a.default not in (None, False, argparse.SUPPRESS):
                assert a.help, (name, a.option_strings)
        assert "--r-gal-min" not in " ".join(a.help or "" for a in p._actions)


def test_fit_help_shows_defaults_without_none_noise(capsys):
    text = " ".join(_help(["fit"], capsys).split())  # unwrap the columns
    for shown in ("NUTS chains (default: 4)", "(default: 300)", "(default: 750)", "(default: continuity)",
                  "(default: 40 120)", "(default: jaxhalo_fit)", "--strict", "--no-pointwise", "27 MB", "exit codes:"):
        assert shown in text, shown
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text


def test_subcommand_help_has_defaults_too(capsys):
    assert "(default: 64)" in " ".join(_help(["suite", "run"], capsys).split())
    text = " ".join(_help(["simulate"], capsys).split())
    assert "(default: 30)" in text and "(default: 160)" in text and "--r-gal-min" not in text
    assert "(default: None)" not in text


def test_simulate_r_min_and_the_old_spelling():
    p = build_parser()
    new = p.parse_args(["simulate", "--r-min", "50", "--r-max", "120"])
    old = p.parse_args(["simulate", "--r-gal-min", "50", "--r-gal-max", "120"])
    assert (new.r_min, new.r_max) == (old.r_min, old.r_max) == (50.0, 120.0)
    assert not hasattr(new, "r_gal_min") and not getattr(new, "deprecated_options", None)
    assert old.deprecated_options == ["--r-gal-min is deprecated; use --r-min", "--r-gal-max is deprecated; use --r-max"]
    default = p.parse_args(["simulate"])
    assert (default.r_min, default.r_max) == (30.0, 160.0)
    with pytest.raises(SystemExit):  # the old spelling keeps its range check
        p.parse_args(["simulate", "--r-gal-min", "-1"])


def test_quiet_turns_progress_off_and_verbose_counts():
    p = build_parser()
    for argv in (["fit", "-q"], ["suite", "run", "--n", "8", "--out", "x", "--quiet"], ["sbi", "train", "s", "--out", "m", "-q"]):
        args = p.parse_args(argv)
        assert set_verbosity(args) == -1 and args.no_progress, argv
    assert set_verbosity(p.parse_args(["fit", "-vv"])) == 2
    assert set_verbosity(p.parse_args(["profiles"])) == 0
    with pytest.raises(SystemExit):
        p.parse_args(["fit", "-q", "-v"])


def test_convergence_decision():
    assert convergence_problems(1.003, 0, 1884.0, 4) == []
    assert convergence_problems(1.02, 0, 1884.0, 4) == ["max R-hat 1.0200 >= 1.01"]
    assert convergence_problems(float("nan"), 0, None) == ["max R-hat nan >= 1.01"]
    assert convergence_problems(None, 3) == ["3 divergent transition(s)"]
    assert convergence_problems(1.0, 0, 350.0, 4) == ["min bulk ESS 350 < 400 (100 per chain)"]
    assert convergence_problems(1.04, 0, r_hat_limit=1.05) == []


def test_convergence_exit_code(capsys):
    assert convergence_exit([], True, "fit", "advice") == 0
    assert convergence_exit(["max R-hat 1.5 >= 1.01"], False, "fit", "run longer") == 0
    err = capsys.readouterr().err
    assert "convergence checks failed: max R-hat 1.5 >= 1.01; run longer" in err and "--strict makes this exit code 3" in err
    assert convergence_exit(["1 divergent transition(s)"], True, "profiles", "x") == EXIT_NOT_CONVERGED == 3


def _fake_checkout(tmp: Path) -> Path:
    """A checkout with the real benchmarks/common.py and one tiny benchmark that writes one record."""
    bdir = tmp / "checkout" / "benchmarks"
    (bdir / "results").mkdir(parents=True)
    shutil.copy(ROOT / "benchmarks" / "common.py", bdir / "common.py")
    (bdir / "__init__.py").write_text("")
    (bdir / "bench_tiny.py").write_text(
        "import sys\nfrom benchmarks.common import write_results\n"
        "print('tiny benchmark running')\n"
        "print(write_results('tiny', [{'quick': '--quick' in sys.argv}]))\n")
    (bdir / "results" / "tiny_recorded.json").write_text(json.dumps(
        {"benchmark": "tiny", "device": "recorded", "date": "2026-01-01", "jax_version": "0", "records": [{"a": 1}]}))
    return bdir


def test_bench_writes_to_out_not_to_the_records_and_quiet_prints_nothing(tmp_path):
    """`jaxhalo bench` without --record leaves benchmarks/results/ as it was (also with --quick); -q: no stdout."""
    bdir = _fake_checkout(tmp_path)
    before = sorted(p.name for p in (bdir / "results").iterdir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("JAXHALO_BENCH_OUT", None)
    r = subprocess.run([sys.executable, "-m", "jaxhalo", "bench", "--only", "tiny", "--quick", "--out", "bout", "-q"],
                       cwd=bdir.parent, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == "", r.stdout
    assert sorted(p.name for p in (bdir / "results").iterdir()) == before
    written = sorted(p.name for p in (bdir.parent / "bout").iterdir())
    assert written[0] == "README.md" and written[1].startswith("tiny_") and len(written) == 2
    assert json.loads((bdir.parent / "bout" / written[1]).read_text())["records"] == [{"quick": True}]
    # --record --quick is refused before anything runs
    r = subprocess.run([sys.executable, "-m", "jaxhalo", "bench", "--only", "tiny", "--quick", "--record"],
                       cwd=bdir.parent, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 2 and "never recorded" in r.stderr
    assert sorted(p.name for p in (bdir / "results").iterdir()) == before


def test_a_quick_benchmark_script_never_writes_over_a_record(monkeypatch, tmp_path):
    """Run as a script with --quick (not through `jaxhalo bench`), the records go to results/quick/."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import common
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.delenv("JAXHALO_BENCH_OUT", raising=False)
    assert common.results_dir(argv=["bench_x.py", "--quick"]) == tmp_path / "results" / "quick"
    assert common.results_dir(argv=["bench_x.py"]) == tmp_path / "results"
    monkeypatch.setenv("JAXHALO_BENCH_OUT", str(tmp_path / "elsewhere"))
    assert common.results_dir(argv=["bench_x.py", "--quick"]) == tmp_path / "elsewhere"
    assert common.results_dir(tmp_path / "given") == tmp_path / "given"


@pytest.mark.slow
def test_quiet_strict_no_pointwise_fit(tmp_path, capfd):
    """A fit far too short to converge (2 chains x 20 draws): -q prints nothing on stdout and no progress bar,
    --strict exits 3 with one warning naming the failed checks, the results are written, and --no-pointwise
    leaves out the log_likelihood group (about 90 s on 2 loaded cores)."""
    import jax

    from jaxhalo.catalog.readers import write_catalog
    from jaxhalo.likelihoods.reflex import ReflexModel
    from jaxhalo.mocks.reflex import make_reflex_mock

    cat, _ = make_reflex_mock(jax.random.PRNGKey(3), 300, ReflexModel("constant", "galactic"))
    write_catalog(cat, tmp_path / "small.ecsv")
    out = tmp_path / "fit"
    capfd.readouterr()
    rc = main(["fit", str(tmp_path / "small.ecsv"), "--model", "constant", "--apex", "galactic", "--chains", "2",
               "--warmup", "20", "--samples", "20", "--n-clip", "0", "--no-cache", "--strict", "--no-pointwise", "-q",
               "--out", str(out)])
    cap = capfd.readouterr()
    assert rc == EXIT_NOT_CONVERGED
    assert cap.out == ""
    assert "NUTS" not in cap.err and "it/s" not in cap.err  # no progress bar
    warnings = [ln for ln in cap.err.splitlines() if ln.startswith("[jaxhalo fit]")]
    assert len(warnings) == 1 and "convergence checks failed" in warnings[0] and "min bulk ESS" in warnings[0]
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["convergence"]["ok"] is False and diag["pointwise_log_likelihood"] is False
    import arviz as az

    idata = az.from_netcdf(out / "posterior.nc")
    assert "log_likelihood" not in idata.groups() and "posterior" in idata.groups()


@pytest.mark.slow
def test_parallel_chains_draw_one_progress_bar(tmp_path):
    """4 chains in parallel (one XLA host device each): one bar on stderr, not one per chain (numpyro's)."""
    code = (
        "import numpyro; numpyro.set_host_device_count(4)\n"
        "import jax; jax.config.update('jax_enable_x64', True)\n"
        "from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel\n"
        "from jaxhalo.mocks.reflex import make_reflex_mock\n"
        "from jaxhalo.inference.reflex_fit import fit_reflex\n"
        "spec = ReflexModel('constant', 'galactic')\n"
        "cat, _ = make_reflex_mock(jax.random.PRNGKey(3), 100, spec)\n"
        "r = fit_reflex(ReflexData.from_catalog(cat), spec, clip=False, num_chains=4, num_warmup=50, num_samples=50,"
        " progress_bar=True, verbose=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=600, check=False)
    err = r.stderr.decode()  # bytes: text mode would turn the bar's carriage returns into newlines
    assert r.returncode == 0, err[-2000:]
    assert "Running chain" not in err  # numpyro's per-chain bars
    assert err.count("NUTS 4 chains") >= 1
    # one bar redrawn in place (carriage returns): one line, no cursor movements between bars
    assert err.strip().count("\n") == 0 and "\x1b[A" not in err, repr(err)
