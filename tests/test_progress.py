"""Progress display: what a study reports, how the log lines and the terminal bar show it."""

from __future__ import annotations

import io
import math
from pathlib import Path

import optuna
import pytest

from hpo_lstm.cli import main
from hpo_lstm.progress import Progress, StudyState, _rich_progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_eta_counts_this_runs_evaluations_from_the_first_batch_start():
    clock = FakeClock()
    state = StudyState("woa/lstm", 10, clock=clock)
    for _ in range(4):  # resumed evaluations took no time and do not set the pace
        state.evaluated(value=1.0, kind="replayed")
    clock.now += 5  # start-up
    state.batch(2)
    assert state.eta() is None and state.eta_text() == "eta -"
    clock.now += 30
    state.evaluated(value=0.5, kind="trained")
    assert state.in_flight == 1 and state.best == 0.5
    assert state.eta() == pytest.approx(30 * 5)  # 30 s per evaluation, 5 left
    state.evaluated(value=math.nan, kind="failed")  # NaN never becomes the best
    state.evaluated(value=0.7, kind="duplicate")
    assert state.best == 0.5 and state.done == 7
    assert state.eta() == pytest.approx(30 / 3 * 3)
    assert state.counts_text(", ") == "1 trained, 1 memo, 1 failed, 4 resumed"
    state.evaluated(value=0.9, kind="pruned")  # a pruned training ran too: one of the trained
    assert state.counts_text(", ") == "2 trained (1 pruned), 1 memo, 1 failed, 4 resumed"


def test_the_log_gets_a_line_from_the_timer_when_trainings_run_long(capsys):
    progress = Progress(enabled=True)  # stderr is not a terminal under pytest: log lines
    assert progress._lines
    sink = progress.study("woa/lstm", 8)
    start = progress._last_line
    sink.batch(8)
    assert not progress.tick(start + progress.LINE_EVERY - 1)  # not yet
    assert progress.tick(start + progress.LINE_EVERY + 1)
    assert not progress.tick(start + progress.LINE_EVERY + 2)  # a line was just printed
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("hpo-lstm: woa/lstm: 0/8, best -, 0 trained, 8 running, 0:")


def test_the_terminal_bar_fits_80_columns():
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    bars = _rich_progress(console)
    bars.add_task("compare-my-long-dataset-name", total=37, text="12/37 cells (11 finished earlier)")
    state = StudyState("bilstm/woa seed 12", 240)
    for kind, n in (("trained", 123), ("pruned", 45), ("duplicate", 30), ("failed", 7), ("replayed", 20)):
        for _ in range(n):
            state.evaluated(value=0.123456, kind=kind)
    bars.add_task(state.label, total=240, state=state, completed=state.done)
    console.print(bars.get_renderable())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]
    assert "225/240 best 0.1235" in lines[1]


def test_a_run_reports_each_training_as_it_ends_and_trials_last_as_long_as_their_training(tmp_path: Path, capsys):
    args = [
        "run",
        "--data",
        "sine",
        "--lookback",
        "8",
        "--max-epochs",
        "3",
        "--optimizer",
        "random",
        "--budget",
        "4",
        "--pop-size",
        "4",
        "--workers",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hpo-lstm: random/lstm")]
    # One batch of 4 on 2 workers: a line per training as it ends, not one at the batch's end.
    done = [line.split(": ")[2].split("/")[0] for line in lines if "/4, best" in line]
    assert done[:4] == ["1", "2", "3", "4"], lines
    assert "scoring the final forecast on test" in lines[-2] and "final forecast ready" in lines[-1]
    # The last step says what it waits for: the statistical baselines, when they are still fitting.
    waiting = [line for line in lines if "fitting AutoETS and AutoARIMA" in line]
    assert len(waiting) <= 1 and all(lines.index(w) < len(lines) - 2 for w in waiting)
    assert max(len(line) for line in lines) <= 80
    study = optuna.load_study(study_name="sine-lstm-random-seed0", storage=f"sqlite:///{tmp_path / 'hpo-lstm.db'}")
    assert len(study.trials) == 4
    for trial in study.trials:
        duration, train_seconds = trial.duration.total_seconds(), trial.user_attrs["train_seconds"]
        if any(key.startswith("artifacts:") for key in trial.system_attrs):
            # A new best keeps its weights: the trial ends once they are stored, after its training.
            assert duration >= train_seconds - 0.002
        else:
            assert duration == pytest.approx(train_seconds, abs=0.002)
    # Trainings of one batch overlap on two workers: no trial spans the whole batch.
    starts = sorted(t.datetime_start for t in study.trials)
    assert starts[0] != starts[-1]
