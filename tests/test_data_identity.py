"""The data is part of a study's identity: a CSV edited in place is never mixed into a study
or a comparison recorded on the old values."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE, write_study

from hpo_lstm import ConfigError
from hpo_lstm.cli import main
from hpo_lstm.store.record import FINAL_ATTR, IDENTITY_ATTR


def _edit(csv: Path) -> None:
    lines = csv.read_text().splitlines()
    date, close, volume = lines[100].split(",")
    lines[100] = f"{date},{float(close) + 5:.4f},{volume}"  # one value changed, in place
    csv.write_text("\n".join(lines) + "\n")


def _args(command: str, study: Path, csv: Path, out: Path, *extra: str) -> list[str]:
    return [
        command,
        str(study),
        "--data",
        str(csv),
        "--target",
        "close",
        "--lookback",
        "7",
        "--max-epochs",
        "2",
        "--patience",
        "2",
        "--optimizer" if command == "run" else "--optimizers",
        "random",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def test_a_study_is_not_resumed_on_edited_data(tmp_path: Path, tiny_csv: Path, capsys):
    study = write_study(tmp_path / "s.toml", 'name = "mut"\n' + TINY_SPACE)
    assert main(_args("run", study, tiny_csv, tmp_path, "--budget", "2")) == 0
    _edit(tiny_csv)
    capsys.readouterr()
    assert main(_args("run", study, tiny_csv, tmp_path, "--budget", "4")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "The data of study 'mut' changed since it was recorded" in err, err
    assert "--study-name" in err  # the CLI names its flag
    # From Python the message names the keyword that gives the study a new name.
    from hpo_lstm import StudyConfig, run_study

    settings = {"data": str(tiny_csv), "target": "close", "lookback": 7, "max_epochs": 2, "patience": 2}
    settings |= {"optimizer": "random", "pop_size": 2, "budget": 4, "out": str(tmp_path)}
    with pytest.raises(ConfigError, match="Give a new `name` to run a study on the new data"):
        run_study(StudyConfig.from_file(study, **settings), workers=1)
    assert StudyConfig.from_file(study, name="mut-new", **settings).study_name == "mut-new"
    trials = optuna.load_study(study_name="mut", storage=f"sqlite:///{tmp_path / 'hpo-lstm.db'}").trials
    assert len(trials) == 2  # nothing trained on the new data was mixed in


def test_other_columns_on_resume_are_named_as_the_setting_not_as_changed_data(tmp_path: Path, tiny_csv: Path, capsys):
    study = write_study(tmp_path / "s.toml", 'name = "cols"\n' + TINY_SPACE)
    assert main(_args("run", study, tiny_csv, tmp_path, "--budget", "2")) == 0
    capsys.readouterr()
    assert main(_args("run", study, tiny_csv, tmp_path, "--budget", "4", "--features", "close,volume")) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "already exists in" in err
        and "features: stored default, now ['close', 'volume']" in err
    )
    assert "changed since it was recorded" not in err and "data_fingerprint" not in err, err


def test_settings_that_spell_out_the_same_columns_resume_the_study(tmp_path: Path, tiny_csv: Path, capsys):
    """`--time-column date` for the column found by its name, and `--features close` for the
    target alone (the default inputs), pick the same data the study was recorded on: it resumes, and keeps its spelling."""
    study = write_study(tmp_path / "s.toml", 'name = "spelled"\n' + TINY_SPACE)
    assert main(_args("run", study, tiny_csv, tmp_path, "--budget", "2")) == 0
    spelled = ("--time-column", "date", "--features", "close")
    capsys.readouterr()
    assert main(_args("run", study, tiny_csv, tmp_path, "--budget", "3", *spelled)) == 0, capsys.readouterr().err
    storage = f"sqlite:///{tmp_path / 'hpo-lstm.db'}"
    loaded = optuna.load_study(study_name="spelled", storage=storage)
    assert len([t for t in loaded.trials if t.state.is_finished()]) == 3
    identity = json.loads(loaded.user_attrs[IDENTITY_ATTR])
    assert identity["time_column"] is None and identity["features"] is None
    capsys.readouterr()
    quiet = [a for a in _args("run", study, tiny_csv, tmp_path, "--budget", "3", *spelled) if a != "--quiet"]
    assert main(quiet) == 0  # complete, either way it is spelled: its stored result, nothing trained
    assert "is complete (3 evaluations)" in " ".join(capsys.readouterr().out.split())


def test_a_comparison_with_the_same_columns_spelled_out_goes_on_without_running_its_cells(
    tmp_path: Path, tiny_csv: Path, capsys
):
    study = write_study(tmp_path / "c.toml", 'name = "spelt"\n' + TINY_SPACE)
    args = _args(
        "compare", study, tiny_csv, tmp_path, "--models", "lstm", "--seeds", "1", "--budget", "2", "--no-untuned"
    )
    assert main(args) == 0
    storage = f"sqlite:///{tmp_path / 'hpo-lstm.db'}"
    cell = optuna.load_study(study_name="spelt.lstm.random.seed0", storage=storage)
    before = cell.user_attrs[FINAL_ATTR]
    capsys.readouterr()
    assert main([*args, "--time-column", "date", "--features", "close"]) == 0, capsys.readouterr().err
    assert optuna.load_study(study_name="spelt.lstm.random.seed0", storage=storage).user_attrs[FINAL_ATTR] == before
    assert main([*args, "--features", "close,volume"]) == 2  # other inputs: refused, naming the setting
    assert "features: ['close'] -> ['close', 'volume']" in capsys.readouterr().err


def test_a_comparison_is_not_continued_on_edited_data(tmp_path: Path, tiny_csv: Path, capsys):
    study = write_study(tmp_path / "c.toml", 'name = "cmp"\n' + TINY_SPACE)
    args = _args(
        "compare", study, tiny_csv, tmp_path, "--models", "lstm", "--seeds", "1", "--budget", "2", "--no-untuned"
    )
    assert main(args) == 0
    manifest = (tmp_path / "cmp" / "compare.json").read_text()
    _edit(tiny_csv)
    capsys.readouterr()
    assert main(args) == 2  # before: every finished cell skipped, the baselines recomputed on the new file
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "The data of comparison" in err and "--name" in err, err
    assert (tmp_path / "cmp" / "compare.json").read_text() == manifest
