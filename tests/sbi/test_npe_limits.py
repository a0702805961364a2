"""`sbi train` refuses a training set too small for its batch and validation split, and writes no model."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxhalo.cli import main
from jaxhalo.sbi.npe import MIN_TRAINING_ROWS, MIN_VALIDATION_ROWS, NPEConfig, NPEError, train_npe


def test_rule_is_stated_and_enforced():
    rng = np.random.default_rng(0)
    theta, x = rng.normal(size=(60, 2)), rng.normal(size=(60, 3))
    with pytest.raises(NPEError, match=r"54 training and 6 validation rows; training needs at least max\(batch 100"):
        train_npe(theta, x, jax.random.PRNGKey(0), NPEConfig(batch_size=100, val_fraction=0.1))
    with pytest.raises(NPEError, match=f"{MIN_VALIDATION_ROWS} validation rows"):
        train_npe(theta[:30], x[:30], jax.random.PRNGKey(0), NPEConfig(batch_size=1, val_fraction=0.1))
    assert MIN_TRAINING_ROWS >= 2 and MIN_VALIDATION_ROWS >= 2


def test_cli_batch_1_on_two_rows_is_refused(tmp_path, capsys):
    st, model = tmp_path / "st", tmp_path / "m.npe"
    assert main(["suite", "run", "--n", "2", "--chunk", "2", "--out", str(st), "--simulator", "linear-gaussian",
                 "--n-summaries", "4", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["sbi", "train", str(st), "--out", str(model), "--batch", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxhalo sbi train: error:") and "validation rows" in err[0], err
    assert not model.exists()
