"""A run's outputs, written from the storage: the convergence table's kinds and batches, and
``hpo-lstm report RUNFOLDER`` rebuilding them byte for byte. A real tiny study, a real SQLite file."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import write_study

from hpo_lstm.cli import main
from hpo_lstm.report._run import KINDS, RUN_FILES, convergence_table

# Learning rates from 1e-4 (slow: pruned) to 1e3 (diverge: failed), and one parameter only, so
# the whales crowd the bounds and repeat candidates (memo). WOA seed 0 gives every kind.
MIXED = """name = "mixed"
batch_size = 256
[space]
learning_rate = { low = 1e-4, high = 1e3, log = true }
hidden_size = { low = 4, high = 4 }
n_layers = { low = 1, high = 1 }
"""
TEXT_FILES = ("summary.json", "report.md", "trials.csv", "predictions.csv", "convergence.csv")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Out folder of one finished 15-evaluation study (batches of 5), outputs as ``run`` wrote them."""
    tmp = tmp_path_factory.mktemp("run")
    study = write_study(tmp / "mixed.toml", MIXED)
    code = main(
        [
            "run",
            str(study),
            "--data",
            "sine",
            "--lookback",
            "8",
            "--max-epochs",
            "8",
            "--patience",
            "8",
            "--optimizer",
            "woa",
            "--budget",
            "15",
            "--pop-size",
            "5",
            "--workers",
            "1",
            "--quiet",
            "--precision",
            "fp32",  # the mix of kinds above is that of float32 steps' path
            "--out",
            str(tmp / "out"),
        ]
    )
    assert code == 0
    return tmp / "out"


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="mixed", storage=f"sqlite:///{out / 'hpo-lstm.db'}")


def _kind(trial: optuna.trial.FrozenTrial) -> str:
    if "duplicate_of" in trial.user_attrs:
        return "memo"
    return {"COMPLETE": "trained", "PRUNED": "pruned", "FAIL": "failed"}[trial.state.name]


def test_convergence_table_follows_the_trials_in_the_storage(run: Path):
    trials = sorted(_study(run).trials, key=lambda t: t.user_attrs["evaluation"])
    table = pd.read_csv(run / "mixed" / "convergence.csv", float_precision="round_trip")
    assert list(table.columns) == ["evaluation", "batch", "value", "best_so_far", "kind"]
    assert table["evaluation"].tolist() == [t.user_attrs["evaluation"] + 1 for t in trials] == list(range(1, 16))
    assert table["batch"].tolist() == [t.user_attrs["generation"] for t in trials] == [0] * 5 + [1] * 5 + [2] * 5
    assert table["kind"].tolist() == [_kind(t) for t in trials]
    assert set(table["kind"]) == set(KINDS), "this study should have trained, pruned, memo and failed evaluations"
    expected = [math.nan if t.state.name == "FAIL" else t.value for t in trials]
    np.testing.assert_array_equal(table["value"].to_numpy(), expected)
    np.testing.assert_array_equal(table["best_so_far"].to_numpy(), np.fmin.accumulate(expected))
    # The same table from the FrozenTrials, from trials.csv and from Optuna's frame.
    from_csv = convergence_table(pd.read_csv(run / "mixed" / "trials.csv", float_precision="round_trip"))
    pd.testing.assert_frame_equal(convergence_table(trials), from_csv)
    pd.testing.assert_frame_equal(convergence_table(_study(run).trials_dataframe()), from_csv)
    pd.testing.assert_frame_equal(from_csv, table)


def test_an_interrupted_attempt_is_not_an_evaluation(run: Path, tmp_path: Path):
    shutil.copy(run / "hpo-lstm.db", tmp_path / "copy.db")
    study = optuna.load_study(study_name="mixed", storage=f"sqlite:///{tmp_path / 'copy.db'}")
    before = convergence_table(study.trials_dataframe())
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            user_attrs={"evaluation": 3, "generation": 0, "failure": "interrupted"},
        )
    )
    assert len(study.trials) == 16
    pd.testing.assert_frame_equal(convergence_table(study.trials_dataframe()), before)
    pd.testing.assert_frame_equal(convergence_table(study.trials), before)


def test_report_on_a_run_folder_rewrites_its_files_from_the_storage(run: Path, tmp_path: Path, capsys):
    folder = run / "mixed"
    written = {name: (folder / name).read_bytes() for name in RUN_FILES}
    summary = json.loads(written["summary.json"])
    assert summary["target"] == "y" and summary["n_evaluations"] == 15
    db = (run / "hpo-lstm.db").read_bytes()
    # Every file gone but a summary.json that only names the study and its storage.
    for name in RUN_FILES:
        (folder / name).unlink()
    (folder / "summary.json").write_text(json.dumps({"study_name": "mixed", "storage": summary["storage"]}))
    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rewrote summary.json, report.md, trials.csv") and "'mixed'" in out
    assert "| AutoARIMA |" in written["report.md"].decode()  # the statistical baselines, from the storage
    for name in TEXT_FILES:
        assert (folder / name).read_bytes() == written[name], name
    for name in ("convergence.png", "predictions.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG", name
    assert (run / "hpo-lstm.db").read_bytes() == db  # read, not written
    assert main(["report", str(folder), "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_report_finds_a_relative_sqlite_storage_from_another_folder(run: Path, tmp_path: Path, monkeypatch):
    # A run started in tmp_path/work with --out results names sqlite:///results/hpo-lstm.db.
    results = tmp_path / "work" / "results"
    (results / "mixed").mkdir(parents=True)
    shutil.copy(run / "hpo-lstm.db", results / "hpo-lstm.db")
    summary = {"study_name": "mixed", "storage": "sqlite:///results/hpo-lstm.db"}
    (results / "mixed" / "summary.json").write_text(json.dumps(summary))
    monkeypatch.chdir(tmp_path)
    assert main(["report", "work/results/mixed", "--quiet"]) == 0
    assert (results / "mixed" / "convergence.csv").read_bytes() == (run / "mixed" / "convergence.csv").read_bytes()
    assert not (tmp_path / "results").exists()  # no empty database made beside the current folder


def _summary(folder: Path, **values: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(values))
    return folder


def test_report_errors_are_one_line_with_exit_2(run: Path, tmp_path: Path, capsys):
    storage = f"sqlite:///{tmp_path / 'copy.db'}"
    shutil.copy(run / "hpo-lstm.db", tmp_path / "copy.db")
    optuna.create_study(study_name="unfinished", storage=storage)  # a study with no final result
    missing = tmp_path / "nothing-here.db"
    cases = [
        (tmp_path / "empty", "holds no compare.json (a comparison's folder) and no summary.json (a run's folder)"),
        (_summary(tmp_path / "a", study_name="nope", storage=storage), "holds no study 'nope'"),
        (_summary(tmp_path / "b", study_name="unfinished", storage=storage), "has no final result"),
        (_summary(tmp_path / "c", study_name="mixed", storage=f"sqlite:///{missing}"), "does not exist"),
        (_summary(tmp_path / "d", study="mixed"), "names no study_name and storage"),
    ]
    (tmp_path / "empty").mkdir()
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "summary.json").write_text("{not json")
    cases.append((tmp_path / "e", "Cannot read"))
    capsys.readouterr()
    for folder, message in cases:
        assert main(["report", str(folder)]) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not missing.exists()
