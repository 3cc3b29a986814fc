"""A model card is untrusted input: every field a forecast reads is checked (type, range,
finiteness) before anything is built, the weights are checked against the card's SHA-256, and
each problem is one line with exit status 2, never a traceback, an all-NaN forecast or a
finite garbage one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from hpo_lstm import load_forecaster
from hpo_lstm.cli import main
from hpo_lstm.store.model_store import ModelFileError, read_model_folder, write_model_folder

RUN = [
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
    "3",
    "--pop-size",
    "3",
    "--workers",
    "1",
    "--quiet",
    "--final",
    "best",
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("card")
    assert main(["run", *RUN, "--study-name", "a", "--out", str(out)]) == 0
    assert main(["run", *RUN, "--study-name", "b", "--seed", "1", "--out", str(out)]) == 0  # same shapes, other weights
    return out


def _tampered(saved: Path, tmp_path: Path, change) -> Path:
    card, weights = read_model_folder(saved / "a" / "model")
    folder = tmp_path / "model"
    card = change(card)
    write_model_folder(folder, card, weights) if isinstance(card, dict) else None
    if not isinstance(card, dict):
        shutil.copytree(saved / "a" / "model", folder, dirs_exist_ok=True)
        (folder / "model.json").write_text(json.dumps(card))
    return folder


def _set(path: str, value):
    def change(card):
        target = card
        *parents, last = path.split(".")
        for key in parents:
            target = target[key]
        target[last] = value
        return card

    return change


CASES = {
    "huge hidden_size": (_set("params.hidden_size", 10**12), r"params.hidden_size 1000000000000 \(an integer from 1"),
    "negative hidden_size": (_set("params.hidden_size", -4), "params.hidden_size -4"),
    "text hidden_size": (_set("params.hidden_size", "many"), "params.hidden_size 'many'"),
    "no layers": (_set("params.n_layers", 0), "params.n_layers 0"),
    "a list": (_set("params.n_layers", [1, 2]), r"params.n_layers \[1, 2\]"),
    "text interval widths": (_set("intervals.80", "wide"), "interval half-widths are not 1 finite numbers >= 0"),
    "negative interval widths": (_set("intervals.95", [-0.5]), "interval half-widths are not 1 finite numbers >= 0"),
    "garbage freq": (_set("time.freq", "every now and then"), "time.freq 'every now and then'"),
    "null time": (_set("time", None), r"time None \(a table"),
    "text weekdays_only": (_set("time.weekdays_only", "yes"), r"time.weekdays_only 'yes' \(true or false\)"),
    "NaN history": (
        lambda c: {**c, "history": {**c["history"], "values": [[float("nan")]] * len(c["history"]["values"])}},
        "the history is not lookback . 1 = 9 rows of 1 finite numbers",
    ),
    "NaN target scale": (_set("target_scale", [float("nan")]), "the target scalers are not 1 finite numbers"),
    "zero input scale": (_set("input_scale", [0.0]), r"the input scalers are not 1 finite numbers each \(scales > 0\)"),
    "fractional lookback": (_set("lookback", 10.7), r"lookback 10.7 \(an integer"),
    "a list card": (lambda c: [c], "is not an hpo-lstm model card"),
    "a null card": (lambda c: None, "is not an hpo-lstm model card"),
    "a number card": (lambda c: 7, "is not an hpo-lstm model card"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_card_is_one_line_and_exit_2(saved: Path, tmp_path: Path, capsys, case: str):
    change, message = CASES[case]
    folder = _tampered(saved, tmp_path, change)
    with pytest.raises(ModelFileError, match=message):
        load_forecaster(folder)
    assert main(["forecast", str(folder), "--steps", "3", "--out", str(tmp_path / "f"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hpo-lstm: error: ") and "Traceback" not in err
    assert not (tmp_path / "f").exists()


def test_weights_of_another_study_of_the_same_shapes_are_refused(saved: Path, tmp_path: Path):
    card, _ = read_model_folder(saved / "a" / "model")
    _, other = read_model_folder(saved / "b" / "model")
    assert card["weights_sha256"] and load_forecaster(saved / "a")  # its own weights load
    write_model_folder(tmp_path / "model", card, other)
    with pytest.raises(ModelFileError, match="are not the ones its model card was written with"):
        load_forecaster(tmp_path / "model")


@pytest.mark.parametrize("stored", ["[1, 2]", "null", "7"])
def test_a_stored_card_that_is_not_an_object_is_one_line(saved: Path, tmp_path: Path, stored: str):
    db = tmp_path / "copy.db"
    shutil.copy(saved / "hpo-lstm.db", db)
    study = optuna.load_study(study_name="a", storage=f"sqlite:///{db}")
    study.set_user_attr("hpo_lstm_model", stored)
    with pytest.raises(ModelFileError, match="is not a JSON object"):
        load_forecaster(storage=f"sqlite:///{db}", study_name="a")
