"""--precision: bf16 training steps where the CPU trains an LSTM in bfloat16, float32 scores always."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import start_cli, wait_cli

from hpo_lstm._errors import ConfigError
from hpo_lstm.config import StudyConfig
from hpo_lstm.data import load_series, make_dataset
from hpo_lstm.training import TrainSettings, bf16_trains, resolve_precision, train_candidate

PARAMS = {"learning_rate": 0.01, "hidden_size": 8, "n_layers": 1}
# oneDNN capped below AVX-512 has no bf16 LSTM, on any CPU: the same machine without bf16.
NO_BF16 = {"DNNL_MAX_CPU_ISA": "AVX2"}
TINY = [
    "--data",
    "sine",
    "--lookback",
    "8",
    "--max-epochs",
    "2",
    "--patience",
    "2",
    "--optimizer",
    "random",
    "--budget",
    "2",
    "--pop-size",
    "2",
    "--workers",
    "1",
    "--quiet",
]


@pytest.fixture(scope="module")
def sine():
    return make_dataset(load_series("sine"), lookback=8)


def test_bf16_steps_train_the_same_network_in_float32_weights_or_are_refused(sine):
    settings = TrainSettings(max_epochs=3, patience=3)
    if not bf16_trains("cpu"):  # this CPU's oneDNN has no bf16 LSTM: refused in one line, before training
        with pytest.raises(ConfigError, match="cannot train an LSTM in bfloat16"):
            resolve_precision("bf16", "cpu")
        return
    fp32, _ = train_candidate("lstm", PARAMS, sine, settings, seed=0)
    bf16, model = train_candidate(
        "lstm", PARAMS, sine, TrainSettings(max_epochs=3, patience=3, precision="bf16"), seed=0, keep_model=True
    )
    again, _ = train_candidate("lstm", PARAMS, sine, TrainSettings(max_epochs=3, patience=3, precision="bf16"), seed=0)
    assert math.isfinite(bf16.val_rmse) and bf16.val_rmse != fp32.val_rmse  # other arithmetic ...
    assert bf16.val_rmse == pytest.approx(fp32.val_rmse, rel=0.05)  # ... the same network
    assert again.val_curve == bf16.val_curve  # deterministic on one machine
    assert all(p.dtype == np.float32 or str(p.dtype) == "torch.float32" for p in model.parameters())


def test_precision_names_are_checked_and_not_part_of_a_studys_identity():
    with pytest.raises(ConfigError, match="Unknown `precision` 'fp16'; choose from auto, fp32, bf16."):
        StudyConfig(precision="fp16")
    assert StudyConfig(precision="bf16").identity() == StudyConfig(precision="fp32").identity()
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda") == "fp32"  # measured slower on an H200 (docs/speed.md)
    with pytest.raises(ConfigError, match="bf16 trains on cpu or cuda"):
        resolve_precision("bf16", "mps")


def test_without_a_bf16_lstm_auto_trains_in_fp32_and_bf16_is_refused(tmp_path: Path):
    env = {**os.environ, **NO_BF16}
    code, err = wait_cli(start_cli(["run", *TINY, "--out", str(tmp_path / "auto")], env=env))
    assert code == 0, err
    summary = json.loads(next((tmp_path / "auto").glob("*/summary.json")).read_text())
    assert summary["precision"] == "fp32"
    code, err = wait_cli(start_cli(["run", *TINY, "--precision", "bf16", "--out", str(tmp_path / "bf16")], env=env))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "hpo-lstm: error: --precision bf16: torch cannot train an LSTM in bfloat16 on this cpu "
        "(oneDNN has no bf16 LSTM for its instruction set); use --precision fp32 or auto."
    )
    assert not (tmp_path / "bf16").exists() or not any((tmp_path / "bf16").glob("*/summary.json"))
