"""Observed summary vectors for ``jaxhalo sbi infer`` and ``jaxhalo sbi nuts``: reading the files and
putting the summaries into a simulator's order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._validate import InputError, check_input_file

__all__ = ["order_summaries", "read_summary_file"]


def read_summary_file(path: str) -> tuple[np.ndarray, list[str] | None]:
    """An observed summary vector and its labels (None where the file names none).

    Formats: ``.npy``; ``.json`` (a list, or ``{"summaries": [...]}`` with optional ``"labels"``); a
    table with a ``value`` column and optional ``label`` column -- the ``summaries.ecsv`` that
    ``jaxhalo simulate`` writes, or a ``.csv`` / ``.txt`` with that header -- or a single-column
    table; plain text (``.txt``, ``.csv``) of numbers. Raises :class:`InputError`.
    """
    p = check_input_file(path, "summary file")
    labels = None
    try:
        if p.suffix == ".npy":
            x = np.load(p)
        elif p.suffix == ".json":
            obj = json.loads(p.read_text())
            if isinstance(obj, dict):
                if "summaries" not in obj:
                    raise InputError(f"summary file {p}: the JSON object has no key 'summaries' (keys: "
                                     f"{sorted(obj)[:8]}); write {{\"summaries\": [...]}} or a plain list")
                labels = obj.get("labels")
                obj = obj["summaries"]
            x = obj
        elif p.suffix == ".ecsv" or _has_header(p):
            x, labels = _read_summary_table(p)
        else:
            x = np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None)
        x = np.asarray(x, dtype=float).reshape(-1)
    except InputError:
        raise
    except (ValueError, TypeError) as exc:
        raise InputError(f"summary file {p} is not a list of numbers ({exc})") from exc
    if x.size == 0:
        raise InputError(f"summary file {p} holds no numbers")
    if labels is not None:
        labels = [str(v) for v in labels]
        if len(labels) != x.size:
            raise InputError(f"summary file {p} has {len(labels)} labels for {x.size} values")
    return x, labels


def _has_header(p: Path) -> bool:
    """Whether the first non-comment line of a text file holds a word that is not a number (a table header)."""
    with open(p, errors="replace") as fh:
        for line in fh:
            if line.strip() and not line.lstrip().startswith("#"):
                for tok in line.replace(",", " ").split():
                    try:
                        float(tok)
                    except ValueError:
                        return True
                return False
    return False


def _read_summary_table(p: Path) -> tuple[np.ndarray, list[str] | None]:
    """(values, labels) of a summary table: the ``value`` column (or the only numeric column) and ``label``."""
    from astropy.table import Table  # deferred: astropy loads only when a table is read

    try:
        tab = Table.read(p, format="ascii.ecsv" if p.suffix == ".ecsv" else "ascii.csv")
    except Exception as exc:  # astropy raises many types on malformed tables
        raise InputError(f"summary file {p} is not a readable table ({exc})") from exc
    names = list(tab.colnames)
    if "value" in names:
        col = "value"
    else:
        numeric = [n for n in names if tab[n].dtype.kind in "fiu"]
        if len(numeric) != 1:
            raise InputError(f"summary file {p}: give the summaries in a column 'value' (columns: {names})")
        col = numeric[0]
    labels = [str(v) for v in tab["label"]] if "label" in names else None
    return np.asarray(tab[col], dtype=float), labels


def order_summaries(x: np.ndarray, labels: list[str] | None, reference: Sequence[str]) -> np.ndarray:
    """``x`` in the order of ``reference`` (e.g. the 52 Brooks et al. summaries a suite stores) when ``labels``
    name exactly those summaries; unchanged when the file has no labels or none of them is in ``reference``
    (another simulator's summaries). Raises :class:`InputError` when the labels name some of the reference
    summaries but not exactly all of them once each."""
    if labels is None:
        return x
    ref = list(reference)
    if sorted(labels) == sorted(ref) and len(set(labels)) == len(labels):
        return x[[labels.index(name) for name in ref]]
    known = set(labels) & set(ref)
    if known:
        missing = [name for name in ref if name not in labels][:4]
        extra = [name for name in labels if name not in ref][:4]
        raise InputError(f"the summary labels name {len(known)} of the {len(ref)} simulator summaries but not exactly "
                         f"all of them once (missing e.g. {missing}, unknown e.g. {extra})")
    return x
