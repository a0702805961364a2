"""Provenance of the other commands' outputs (issue 13 item 2): suite run, sbi train, sbi infer.

(``fit``, ``profiles`` and ``simulate`` are checked in their own end-to-end tests.)
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from jaxhalo.cli import main


def _check_block(prov: dict, command: str) -> None:
    assert prov["command"] == command and prov["command_line"].startswith(f"jaxhalo {command}")
    for pkg in ("jaxhalo", "jax", "numpyro"):
        assert prov["software"][pkg]
    assert prov["device"]["dtype"] == "float64" and prov["device"]["devices"]


def test_suite_and_sbi_outputs_record_their_provenance(tmp_path):
    from jaxhalo.sbi.npe import load_npe
    from jaxhalo.sbi.store import SuiteStore

    st, model, out = tmp_path / "st", tmp_path / "m.npe", tmp_path / "post"
    assert main(["suite", "run", "--n", "120", "--chunk", "60", "--out", str(st), "--simulator", "linear-gaussian",
                 "--n-summaries", "4", "--seed", "5", "--no-progress"]) == 0
    runs = sorted((st / "provenance").glob("run-*.json"))
    assert len(runs) == 1
    prov = json.loads(runs[0].read_text())["provenance"]
    _check_block(prov, "suite run")
    assert prov["options"]["n"] == 120 and prov["options"]["seed"] == 5 and prov["simulator"]

    assert main(["sbi", "train", str(st), "--out", str(model), "--layers", "1", "--width", "8", "--ensemble", "1",
                 "--max-epochs", "2", "--batch", "50", "--no-progress"]) == 0
    _, header = load_npe(model)
    prov = header["metadata"]["provenance"]
    _check_block(prov, "sbi train")
    assert prov["inputs"][0]["sha256"] == hashlib.sha256((st / "suite.json").read_bytes()).hexdigest()

    x = SuiteStore.open(st).load().summaries[0]
    (tmp_path / "x.json").write_text(json.dumps({"summaries": np.asarray(x).tolist()}))
    assert main(["sbi", "infer", str(model), str(tmp_path / "x.json"), "--out", str(out), "--n-samples", "50",
                 "--no-coverage"]) == 0
    prov = json.loads((out / "summary.json").read_text())["provenance"]
    _check_block(prov, "sbi infer")
    assert [i["path"] for i in prov["inputs"]] == [str(model), str(tmp_path / "x.json")]
