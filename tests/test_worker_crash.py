"""A local worker process that dies (the kernel's out-of-memory killer, a signal): real driver,
real worker processes, real SIGKILLs, a real SQLite storage."""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from conftest import TINY_SPACE, start_cli, wait_cli, write_study

from hpo_lstm.cli import main

# Long enough trainings (25 epochs of 125 steps, about 5 s) that a kill lands mid-training.
RUN = [
    "--data",
    "sine",
    "--lookback",
    "8",
    "--max-epochs",
    "25",
    "--patience",
    "25",
    "--pruning",
    "off",
    "--optimizer",
    "random",
    "--workers",
    "2",
    "--quiet",
]


@functools.cache
def _started_cpu_seconds() -> float:
    """CPU time past which a worker has started training: the CPU time a fresh process spends
    importing what a worker imports (1.5-2.5 s here), with a wide margin, measured on this
    machine so that a slow one does not see a starting worker as training."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    imports = "import pickle, torch, hpo_lstm.cli, hpo_lstm.evaluation, hpo_lstm.training"
    subprocess.run([sys.executable, "-c", imports], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return 1.5 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) + 1.0


def _args(tmp_path: Path, out: str, budget: int) -> list[str]:
    study = write_study(tmp_path / "s.toml", 'name = "tiny"\nbatch_size = 16\n' + TINY_SPACE)
    return ["run", str(study), *RUN, "--budget", str(budget), "--pop-size", "2", "--out", str(tmp_path / out)]


def _trials(out: Path) -> dict[int, tuple]:
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'hpo-lstm.db'}")
    return {t.user_attrs["evaluation"]: (t.params, t.value, t.state.name) for t in study.trials}


def _workers(pid: int) -> list[psutil.Process]:
    alive = []
    for child in psutil.Process(pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.Error:  # gone meanwhile
            pass
    return alive


def _kill_a_training_worker(proc: subprocess.Popen, seen: set[int]) -> None:
    """Wait until a worker not seen before is training (its CPU time is past start-up), SIGKILL it."""
    threshold = _started_cpu_seconds()
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, f"driver ended first: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no worker started training"
        for worker in _workers(proc.pid):
            try:
                training = worker.pid not in seen and sum(worker.cpu_times()[:2]) >= threshold
            except psutil.Error:
                continue
            if training:
                seen.update(w.pid for w in _workers(proc.pid))
                worker.kill()
                return
        time.sleep(0.05)


def test_a_worker_killed_mid_training_changes_no_trial(tmp_path: Path):
    _started_cpu_seconds()  # measured before the driver and its workers compete for the cores
    proc = start_cli(_args(tmp_path, "killed", budget=4))
    _kill_a_training_worker(proc, set())
    code, err = wait_cli(proc, 300)
    assert code == 0, err
    assert main(_args(tmp_path, "reference", budget=4)) == 0
    killed, reference = _trials(tmp_path / "killed"), _trials(tmp_path / "reference")
    assert len(killed) == 4 and {state for _, _, state in killed.values()} == {"COMPLETE"}
    assert killed == reference  # the candidates in flight trained again, to the same values


def test_a_candidate_that_kills_its_worker_every_time_fails_and_the_study_goes_on(tmp_path: Path):
    _started_cpu_seconds()  # measured before the driver and its workers compete for the cores
    proc = start_cli(_args(tmp_path, "out", budget=2))
    seen: set[int] = set()
    # Once in the pool; then the first candidate trains alone, and is killed both times.
    for _ in range(3):
        _kill_a_training_worker(proc, seen)
    code, err = wait_cli(proc, 300)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'out' / 'hpo-lstm.db'}")
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL"]
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert failed.user_attrs["failure"].startswith("WorkerDied: the training killed its worker process 2 times")
    assert (tmp_path / "out" / "tiny" / "summary.json").exists()


@pytest.mark.parametrize("workers", [2, 1])
def test_a_script_without_a_main_guard_gets_a_clear_error_not_a_hang(tmp_path: Path, workers: int):
    """Child processes re-run an unguarded script: spawned workers die before training, and with
    one worker, which trains in the driver, the processes that fit the statistical models re-run
    it too. The study must stop and say so (not hang, not go on without the statistical models,
    whose fits ended 'failed'), and keep what it recorded."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from hpo_lstm.config import StudyConfig\n"
        "from hpo_lstm.study import run_study\n"
        f"run_study(StudyConfig(optimizer='random', data='sine', lookback=8, budget=2, pop_size=2, max_epochs=1,"
        f" name='u', out={str(tmp_path / 'out')!r}), workers={workers})\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert 'under `if __name__ == "__main__":`' in done.stderr, done.stderr[-2000:]
    if workers == 1:
        assert "ConfigError: This script starts a study at its top level" in done.stderr, done.stderr[-2000:]
        study = optuna.load_study(study_name="u", storage=f"sqlite:///{tmp_path / 'out' / 'hpo-lstm.db'}")
        assert len(study.trials) == 2 and not (tmp_path / "out" / "u" / "summary.json").exists()


def _compare_args(tmp_path: Path, out: str) -> list[str]:
    study = write_study(tmp_path / "c.toml", 'name = "tiny"\nbatch_size = 16\n' + TINY_SPACE)
    run = [a for a in RUN if a not in ("--optimizer", "random")]
    return [
        "compare",
        str(study),
        *run,
        "--models",
        "lstm,bilstm",
        "--optimizers",
        "random",
        "--seeds",
        "1",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--no-untuned",
        "--out",
        str(tmp_path / out),
    ]


def _all_trials(out: Path) -> dict[str, dict[int, tuple]]:
    storage = f"sqlite:///{out / 'hpo-lstm.db'}"
    return {
        s.study_name: {
            t.user_attrs["evaluation"]: (t.params, t.value, t.state.name)
            for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
        }
        for s in optuna.get_all_study_summaries(storage)
    }


def test_a_worker_killed_while_two_cells_share_the_pool_changes_no_trial(tmp_path: Path):
    """Two cells at once on one pool: a dead worker breaks both cells' batches; each trains its
    unfinished candidates again, and every trial is the one a run without the kill records."""
    _started_cpu_seconds()
    proc = start_cli(_compare_args(tmp_path, "killed"))
    _kill_a_training_worker(proc, set())
    code, err = wait_cli(proc, 300)
    assert code == 0, err
    assert main([*_compare_args(tmp_path, "reference"), "--workers", "1"]) == 0
    killed, reference = _all_trials(tmp_path / "killed"), _all_trials(tmp_path / "reference")
    assert len(killed) == 2 and all(len(t) == 4 for t in killed.values())
    assert killed == reference
