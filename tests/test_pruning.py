from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from conftest import write_study

from hpo_lstm.cli import main
from hpo_lstm.pruning import MIN_REFERENCE, WARMUP_EPOCHS, prune_thresholds


def test_no_pruning_without_enough_reference_or_when_off():
    curves = [[1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]] * MIN_REFERENCE
    assert prune_thresholds(curves[:-1], mode="median", max_epochs=7) is None
    assert prune_thresholds(curves, mode="off", max_epochs=7) is None


def test_thresholds_are_medians_of_best_so_far_with_carry_forward_and_warmup():
    curves = [
        [5, 4, 3, 2, 1, 0.5, 0.4, 0.3],
        [5, 4, 3, 2, 2, 2, 2, 2],
        [9, 9, 9, 9, 9, 8.0],  # stopped early: its best (8) carries forward
        [7, 3, 4, 5, 6, 7, 1.0, 0.9],  # best-so-far, not the raw value
        [float("nan"), 1.0],  # a diverged curve is no reference
    ]
    limits = prune_thresholds(curves, mode="median", max_epochs=8)
    assert limits[:WARMUP_EPOCHS] == (math.inf,) * WARMUP_EPOCHS
    # epoch 6: best-so-far 0.5, 2, 8, 3 -> median 2.5; epoch 7: 0.4, 2, 8, 1 -> 1.5; epoch 8: 0.3, 2, 8, 0.9 -> 1.45
    assert limits[5:] == pytest.approx((2.5, 1.5, 1.45))


PRUNE_STUDY = """name = "prune"
batch_size = 256
[space]
learning_rate = { low = 1e-4, high = 3e-2, log = true }
hidden_size = { low = 4, high = 12 }
n_layers = { low = 1, high = 2 }
"""


def _run(tmp_path: Path, out: str, *extra: str) -> list[optuna.trial.FrozenTrial]:
    study = write_study(tmp_path / "p.toml", PRUNE_STUDY)
    args = [
        "run",
        str(study),
        "--data",
        "sine",
        "--lookback",
        "8",
        "--max-epochs",
        "12",
        "--patience",
        "12",
        "--optimizer",
        "random",
        "--budget",
        "16",
        "--pop-size",
        "4",
        "--quiet",
        "--out",
        str(tmp_path / out),
    ]
    assert main([*args, *extra]) == 0
    storage = f"sqlite:///{tmp_path / out / 'hpo-lstm.db'}"
    return sorted(optuna.load_study(study_name="prune", storage=storage).trials, key=lambda t: t.number)


def test_pruned_candidates_are_recorded_with_the_value_they_reached_and_workers_agree(tmp_path: Path):
    serial = _run(tmp_path, "serial", "--workers", "1")
    pruned = [t for t in serial if t.state.name == "PRUNED"]
    assert pruned, "the slow learning rates of this study should be pruned"
    for trial in pruned:
        curve = [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)]
        assert trial.value == min(curve)
        assert trial.user_attrs["pruned_at_epoch"] == len(curve) > WARMUP_EPOCHS
        assert len(curve) < 12
    # The first batch has no reference and is never pruned.
    assert all(t.state.name == "COMPLETE" for t in serial if t.user_attrs["generation"] == 0)
    parallel = _run(tmp_path, "parallel", "--workers", "2")

    def key(trials):
        return sorted((t.user_attrs["evaluation"], t.state.name, t.value, tuple(t.params.items())) for t in trials)

    assert key(serial) == key(parallel)


def test_pruning_off_trains_every_candidate_to_its_own_stop(tmp_path: Path):
    trials = _run(tmp_path, "off", "--workers", "1", "--pruning", "off")
    assert all(t.state.name == "COMPLETE" for t in trials)


def test_halving_rungs_and_keep_rule():
    from hpo_lstm.pruning import halving_keep, halving_rungs

    assert halving_rungs(30) == (10, 30) and halving_rungs(100) == (11, 33, 100) and halving_rungs(4) == (4,)
    assert halving_keep({3: 0.5, 1: 0.2, 2: 0.9, 0: 0.3}) == {1, 0}  # the best third, rounded up
    assert halving_keep({5: 1.0, 4: 1.0}) == {4}  # equal values: the earlier evaluation


def _halving_key(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    return sorted(
        (t.user_attrs["evaluation"], t.state.name, t.value, tuple(t.params.items()), t.user_attrs.get("epochs"))
        for t in trials
        if t.user_attrs.get("failure") != "interrupted"
    )


def test_halving_decisions_are_independent_of_workers_and_replay_after_a_crash(tmp_path: Path):
    import shutil
    import sqlite3

    from hpo_lstm.pruning import halving_rungs

    extra = ("--pruning", "halving", "--max-epochs", "15", "--patience", "15")
    serial = _run(tmp_path, "serial", "--workers", "1", *extra)
    assert halving_rungs(15) == (5, 15)
    for generation in range(4):  # per batch of 4: the best 2 of those reaching epoch 5 go on to 15
        batch = [t for t in serial if t.user_attrs["generation"] == generation]
        pruned = [t for t in batch if t.state.name == "PRUNED"]
        assert len(pruned) == 2 and all(t.user_attrs["epochs"] == 5 for t in pruned)
        at_rung = lambda t: min(t.intermediate_values[e] for e in range(1, 6))  # noqa: E731
        going_on = [t for t in batch if t.state.name == "COMPLETE" and t.user_attrs["epochs"] > 5]
        assert max(map(at_rung, going_on), default=0) <= min(map(at_rung, pruned))  # ranked at epoch 5
    parallel = _run(tmp_path, "parallel", "--workers", "2", *extra)
    assert _halving_key(serial) == _halving_key(parallel)

    # A crash half-way through the last batch: two of its trials never written (marked as an
    # interrupted run leaves them). The resumed run retrains them and ranks them with the
    # recorded two, so the same candidates go on and the record equals the uninterrupted one.
    shutil.copytree(tmp_path / "serial", tmp_path / "crashed")
    db = sqlite3.connect(tmp_path / "crashed" / "hpo-lstm.db")
    lost = [t._trial_id for t in serial if t.user_attrs["evaluation"] in (13, 14)]
    db.executemany(
        "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, 'failure', '\"interrupted\"')",
        [(trial_id,) for trial_id in lost],
    )
    db.execute("DELETE FROM study_user_attributes WHERE key LIKE 'hpo_lstm_final%' OR key LIKE 'hpo_lstm_pred%'")
    db.commit()
    db.close()
    resumed = _run(tmp_path, "crashed", "--workers", "2", *extra)
    assert len(resumed) == 18  # the two lost trials stay as they were, two new ones recorded
    assert _halving_key(resumed) == _halving_key(serial)
