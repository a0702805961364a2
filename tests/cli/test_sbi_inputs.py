"""`jaxhalo sbi infer` reads what `jaxhalo simulate` writes: summaries.ecsv into the suite's summary order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from jaxhalo.cli._validate import InputError
from jaxhalo.cli.sbi import order_summaries, read_summary_file
from jaxhalo.simulation.summaries import BROOKS_SUMMARY_LABELS


def _simulate_style(path, values, labels=BROOKS_SUMMARY_LABELS):
    # exactly how `jaxhalo simulate` writes summaries.ecsv (jaxhalo/cli/simulate.py)
    Table({"label": list(labels), "value": values}).write(path, overwrite=True)


def test_simulate_summaries_table_is_read_in_suite_order(tmp_path):
    """The label/value table parses (NaN entries kept), in file order, and a shuffled file is put back
    into the order of BrooksSummaries.vector() (the order a suite stores and NPE trains on)."""
    vec = np.arange(52.0) + 0.25
    vec[7] = np.nan  # an empty bin
    _simulate_style(tmp_path / "summaries.ecsv", vec)
    x, labels = read_summary_file(str(tmp_path / "summaries.ecsv"))
    np.testing.assert_array_equal(x, vec)  # NaN == NaN under assert_array_equal
    assert labels == list(BROOKS_SUMMARY_LABELS)
    np.testing.assert_array_equal(order_summaries(x, labels, BROOKS_SUMMARY_LABELS), vec)

    perm = np.random.default_rng(1).permutation(52)
    _simulate_style(tmp_path / "shuffled.ecsv", vec[perm], np.asarray(BROOKS_SUMMARY_LABELS)[perm])
    x, labels = read_summary_file(str(tmp_path / "shuffled.ecsv"))
    assert not np.array_equal(x, vec, equal_nan=True)
    np.testing.assert_array_equal(order_summaries(x, labels, BROOKS_SUMMARY_LABELS), vec)

    # the same table as CSV with a header, and JSON with labels
    Table({"label": list(BROOKS_SUMMARY_LABELS), "value": vec}).write(tmp_path / "s.csv", format="ascii.csv")
    x, labels = read_summary_file(str(tmp_path / "s.csv"))
    np.testing.assert_array_equal(x, vec)
    assert labels == list(BROOKS_SUMMARY_LABELS)
    (tmp_path / "s.json").write_text(json.dumps({"summaries": [1.0, 2.0], "labels": ["a", "b"]}))
    assert read_summary_file(str(tmp_path / "s.json"))[1] == ["a", "b"]


def test_summary_reader_plain_formats_and_errors(tmp_path):
    np.savetxt(tmp_path / "x.txt", [1.5, 2.5, 3.5])
    x, labels = read_summary_file(str(tmp_path / "x.txt"))
    np.testing.assert_array_equal(x, [1.5, 2.5, 3.5])
    assert labels is None
    (tmp_path / "x.csv").write_text("1,2,3\n")
    np.testing.assert_array_equal(read_summary_file(str(tmp_path / "x.csv"))[0], [1, 2, 3])
    # unlabelled or foreign labels: file order kept
    assert order_summaries(np.array([3.0, 1.0]), None, BROOKS_SUMMARY_LABELS).tolist() == [3.0, 1.0]
    assert order_summaries(np.array([3.0, 1.0]), ["s1", "s0"], BROOKS_SUMMARY_LABELS).tolist() == [3.0, 1.0]
    # some of the Brooks labels, not all of them: refused, naming what is missing
    with pytest.raises(InputError, match="missing"):
        order_summaries(np.zeros(52), list(BROOKS_SUMMARY_LABELS[:51]) + ["x"], BROOKS_SUMMARY_LABELS)
    Table({"a": [1.0], "b": [2.0]}).write(tmp_path / "two.ecsv")
    with pytest.raises(InputError, match="column 'value'"):
        read_summary_file(str(tmp_path / "two.ecsv"))


@pytest.mark.slow
def test_simulate_writes_what_sbi_infer_reads(tmp_path):
    """A tiny `jaxhalo simulate`: its summaries.ecsv parses into the vector brooks_summaries gives for the
    same observation, in BROOKS_SUMMARY_LABELS order."""
    from jaxhalo.cli import main

    out = tmp_path / "sim"
    assert main(["simulate", "--n-particles", "300", "--dt", "10", "--seed", "2", "--no-plots", "--out", str(out)]) == 0
    x, labels = read_summary_file(str(out / "summaries.ecsv"))
    assert x.shape == (52,) and labels == list(BROOKS_SUMMARY_LABELS)
    assert np.isfinite(x).sum() >= 10
    tab = Table.read(out / "summaries.ecsv")
    np.testing.assert_array_equal(order_summaries(x, labels, BROOKS_SUMMARY_LABELS), np.asarray(tab["value"], float))
