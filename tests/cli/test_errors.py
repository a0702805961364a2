"""Errors in the input end a command with one line and exit code 2; ``--debug`` shows the traceback."""

from __future__ import annotations

import pytest
from astropy.table import Table

from jaxhalo.catalog.structure import CatalogError
from jaxhalo.cli import main
from jaxhalo.example_data import EXAMPLE_CATALOG


def _stderr_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_missing_file_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "no_such_catalogue.ecsv"
    assert main(["fit", str(path), "--out", str(tmp_path / "out"), "--no-cache"]) == 2
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("jaxhalo fit: error:") and "no_such_catalogue.ecsv" in lines[0]


def test_missing_column_names_the_column(tmp_path, capsys):
    t = Table.read(EXAMPLE_CATALOG)
    t.remove_column("v_los")
    path = tmp_path / "no_vlos.ecsv"
    t.write(path)
    assert main(["fit", str(path), "--out", str(tmp_path / "out"), "--no-cache"]) == 2
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and "column 'v_los'" in lines[0] and lines[0].startswith("jaxhalo fit: error:")


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    t = Table.read(EXAMPLE_CATALOG)
    t.remove_column("v_los")
    path = tmp_path / "no_vlos.ecsv"
    t.write(path)
    with pytest.raises(CatalogError, match="v_los"):
        main(["--debug", "fit", str(path), "--out", str(tmp_path / "out"), "--no-cache"])
    monkeypatch.setenv("JAXHALO_DEBUG", "1")
    with pytest.raises(CatalogError, match="v_los"):
        main(["fit", str(path), "--out", str(tmp_path / "out"), "--no-cache"])
