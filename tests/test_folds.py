"""Rolling-origin folds (--folds K): boundaries, fitness, pruning between folds, replay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import write_study

from hpo_lstm._errors import ConfigError, DataError
from hpo_lstm.cli import main
from hpo_lstm.config import StudyConfig
from hpo_lstm.data import fold_of, fold_rows, load_series, make_dataset, with_folds
from hpo_lstm.pruning import FOLD_MARGIN, projected_value, stops_after_fold

SPLIT = (0.7, 0.15, 0.15)


@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("folds", [2, 3, 5])
def test_no_fold_trains_on_its_own_validation_or_sees_the_test_split(folds: int, horizon: int):
    series = load_series("sine")
    dataset = with_folds(
        make_dataset(series, lookback=8, horizon=horizon, split=SPLIT), series, folds=folds, split=SPLIT
    )
    n = len(series.values)
    test_start = int(round(n * SPLIT[0])) + int(round(n * SPLIT[1]))
    rows = fold_rows(n, SPLIT, folds)
    assert len(dataset.folds) == folds - 1
    for k, (n_train, val_start, val_stop) in enumerate(rows):
        fold = fold_of(dataset, k)
        train_rows = fold.target_row[fold.split("train")]
        val_rows = fold.target_row[fold.split("val")]
        # Training targets end before the fold's validation starts; inputs end before targets.
        assert train_rows.max() < val_start == n_train
        assert val_rows.min() >= val_start and val_rows.max() < val_stop <= test_start
        # Each fold's scaling comes from its own training rows only (diff: rows 1..n_train-1).
        changes = np.diff(series.values, axis=0)[: n_train - 1]
        np.testing.assert_allclose(fold.input_mean, changes.mean(axis=0))
        if k:  # validation windows follow one another: fold k starts where fold k-1's ended
            assert val_start == rows[k - 1][2]
    # The last fold is the study's own split, exactly as without folds.
    plain = make_dataset(series, lookback=8, horizon=horizon, split=SPLIT)
    assert fold_of(dataset, folds - 1) is dataset
    assert dataset.bounds == plain.bounds
    np.testing.assert_array_equal(dataset.x, plain.x)


def test_too_many_folds_and_bad_values_are_refused_in_one_line():
    series = load_series("sine")
    with pytest.raises(DataError, match=r"--folds 9 leaves fold 1 too little training data"):
        with_folds(make_dataset(series, lookback=8, split=SPLIT), series, folds=9, split=SPLIT)
    for bad in (0, 21, 2.5, True):
        with pytest.raises(ConfigError, match="folds must be an integer"):
            StudyConfig(folds=bad)


def test_folds_change_the_study_identity_only_when_more_than_one():
    assert "folds" not in StudyConfig().identity()  # studies recorded before --folds still resume
    assert StudyConfig(folds=3).identity()["folds"] == 3


def test_between_folds_rule_and_projection():
    reference = (1.0, 2.0, 3.0)  # a complete candidate: mean 2
    assert not stops_after_fold([1.0], None, mode="median")  # no reference yet
    assert not stops_after_fold([1.0 * (1 + FOLD_MARGIN)], reference, mode="median")  # at the margin: goes on
    assert stops_after_fold([1.0 * (1 + FOLD_MARGIN) + 1e-9], reference, mode="median")
    assert not stops_after_fold([5.0, 5.0], reference, mode="off")
    # A stopped candidate's estimate scales its partial mean by the reference's full/partial ratio,
    # so a candidate that stopped is worse than the reference by more than the margin.
    assert projected_value([1.2], reference) == pytest.approx(1.2 * 2.0 / 1.0)
    assert projected_value([1.2, 2.4], reference) == pytest.approx(1.8 * 2.0 / 1.5)
    assert projected_value([1.2], None) == 1.2


FOLD_STUDY = """name = "folds"
batch_size = 256
[space]
learning_rate = { low = 1e-4, high = 5e-2, log = true }
hidden_size = { low = 4, high = 12 }
n_layers = { low = 1, high = 2 }
"""


def _run(tmp_path: Path, out: str, *extra: str) -> list[optuna.trial.FrozenTrial]:
    study = write_study(tmp_path / "f.toml", FOLD_STUDY)
    args = [
        "run",
        str(study),
        "--data",
        "sine",
        "--lookback",
        "8",
        "--max-epochs",
        "10",
        "--patience",
        "10",
        "--optimizer",
        "random",
        "--pop-size",
        "4",
        "--folds",
        "3",
        "--quiet",
        "--out",
        str(tmp_path / out),
    ]
    assert main([*args, *extra]) == 0
    storage = f"sqlite:///{tmp_path / out / 'hpo-lstm.db'}"
    return sorted(optuna.load_study(study_name="folds", storage=storage).trials, key=lambda t: t.number)


def _key(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    return sorted(
        (
            t.user_attrs["evaluation"],
            t.state.name,
            t.value,
            tuple(t.params.items()),
            tuple(t.user_attrs["fold_rmse"]),
            t.user_attrs.get("stopped_after_fold"),
        )
        for t in trials
    )


def test_fold_fitness_stopping_and_replay_are_independent_of_workers_and_resume(tmp_path: Path):
    serial = _run(tmp_path, "serial", "--budget", "16", "--workers", "1")
    assert len(serial) == 16
    complete = [t for t in serial if t.state.name == "COMPLETE"]
    stopped = [t for t in serial if t.user_attrs.get("stopped_after_fold") or t.user_attrs.get("pruned_in_fold")]
    assert complete and stopped, "this study's slow learning rates should stop between or within folds"
    for trial in complete:  # fitness = the mean over the three folds
        assert len(trial.user_attrs["fold_rmse"]) == 3
        assert trial.value == pytest.approx(sum(trial.user_attrs["fold_rmse"]) / 3, rel=1e-12)
        assert len(trial.user_attrs["fold_curves"]) == 3
    best = min(complete, key=lambda t: t.value)
    for trial in stopped:  # a stopped candidate never looks better than the study's best
        assert trial.state.name == "PRUNED"
        assert trial.value > best.value and math.isfinite(trial.value)
    assert all(t.state.name == "COMPLETE" for t in serial if t.user_attrs["generation"] == 0)

    parallel = _run(tmp_path, "parallel", "--budget", "16", "--workers", "2")
    assert _key(serial) == _key(parallel)

    # Resume: 8 evaluations, then extended to 16: the first two batches are replayed (their fold
    # curves and the fold reference rebuilt from the record), the rest trained as before.
    _run(tmp_path, "resumed", "--budget", "8", "--workers", "1")
    resumed = _run(tmp_path, "resumed", "--budget", "16", "--workers", "2")
    assert _key(resumed) == _key(serial)


def test_final_model_is_the_best_candidates_last_fold_weights(tmp_path: Path):
    import json

    trials = _run(tmp_path, "final", "--budget", "8", "--workers", "1")
    best = min((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    summary = json.loads(next((tmp_path / "final").glob("*/summary.json")).read_text())
    assert summary["final_model"]["trial"] == best.number and summary["final_model"]["weights"] == "kept"
    assert summary["best_val_rmse"] == best.value
