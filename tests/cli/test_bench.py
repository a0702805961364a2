"""``jaxhalo bench`` outside a source checkout: one clear line, exit code 2, nothing on sys.path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jaxhalo

from jaxhalo.cli.bench import render_markdown


def test_bench_outside_a_checkout_says_it_needs_one(tmp_path):
    """A copy of the package in a site directory (as a wheel installs it), run from an empty folder."""
    site = tmp_path / "site"
    shutil.copytree(Path(jaxhalo.__file__).parent, site / "jaxhalo", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-m", "jaxhalo", "bench", "--quick"], cwd=work, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxhalo: error: jaxhalo bench needs a source checkout")
    assert not any(work.iterdir())  # nothing written


def test_render_markdown_lists_every_record(tmp_path):
    (tmp_path / "x_cpu2.json").write_text(
        '{"benchmark": "x", "device": "CPU: test (2 cores)", "date": "2026-12-02", "jax_version": "0",'
        ' "meta": {"note": "n"}, "records": [{"a": 1.23456, "b": "s"}, {"a": 2}]}')
    md = render_markdown(tmp_path)
    assert "## x — CPU: test (2 cores) (2026-12-02, jax 0)" in md
    assert "| a | b |" in md and "| 1.235 | s |" in md and "| 2 |  |" in md
