"""One driver per study: a second driver is refused while the first is alive, a dead or silent
one is taken over, and no evaluation is ever recorded twice."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY_ARGS, TINY_SPACE, start_cli, wait_cli, write_study

from hpo_lstm._errors import StorageError
from hpo_lstm.store.lease import StudyLease
from hpo_lstm.store.record import open_storage


def _evaluations(db: Path, name: str) -> list[int]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return sorted(t.user_attrs["evaluation"] for t in study.trials if t.user_attrs.get("failure") != "interrupted")


@pytest.mark.parametrize("apart", [0.0, 0.15])
def test_two_drivers_on_one_study_record_every_evaluation_once(tmp_path: Path, apart: float):
    study = write_study(tmp_path / "s.toml", 'name = "same"\n' + TINY_SPACE)
    args = [
        "run",
        str(study),
        *TINY_ARGS,
        "--optimizer",
        "random",
        "--budget",
        "12",
        "--pop-size",
        "6",
        "--workers",
        "1",
        "--out",
        str(tmp_path),
    ]
    first = start_cli(args)
    time.sleep(apart)
    second = start_cli(args)
    outcomes = sorted([wait_cli(first), wait_cli(second)])
    (ok, _), (refused, err) = outcomes
    assert (ok, refused) == (0, 2), outcomes
    assert err.count("\n") == 1 and "is being run by another driver" in err, err
    assert _evaluations(tmp_path / "hpo-lstm.db", "same") == list(range(12))


def test_two_comparisons_of_one_name_do_not_run_a_cell_twice(tmp_path: Path):
    study = write_study(tmp_path / "c.toml", 'name = "cmp"\n' + TINY_SPACE)
    args = [
        "compare",
        str(study),
        *TINY_ARGS,
        "--models",
        "lstm",
        "--optimizers",
        "random",
        "--seeds",
        "1",
        "--budget",
        "12",
        "--pop-size",
        "6",
        "--workers",
        "1",
        "--no-untuned",
        "--out",
        str(tmp_path),
    ]
    first, second = start_cli(args), start_cli(args)
    outcomes = sorted([wait_cli(first), wait_cli(second)])
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert "is being run by another driver" in outcomes[1][1]
    assert _evaluations(tmp_path / "hpo-lstm.db", "cmp.lstm.random.seed0") == list(range(12))


def _storage(tmp_path: Path):
    storage = open_storage(f"sqlite:///{tmp_path / 'lease.db'}")
    optuna.create_study(storage=storage, study_name="s")
    return storage


def test_a_live_holder_is_refused_a_stale_or_dead_one_is_taken_over(tmp_path: Path):
    storage = _storage(tmp_path)
    first = StudyLease(storage, "s").acquire()
    other_process = StudyLease(storage, "s")
    other_process.pid = first.pid + 1_000_000  # alive for all this test knows: another host
    other_process.host = "elsewhere"
    with pytest.raises(StorageError, match="is being run by another driver"):
        other_process.acquire()
    # A holder silent for longer than the stale limit is taken over, and learns it.
    patient = StudyLease(storage, "s", stale_after=0.0)
    patient.host, patient.pid = "elsewhere", first.pid + 1_000_000
    patient.acquire()
    with pytest.raises(StorageError, match="taken over by another driver"):
        first.check()
    patient.check()
    patient.release()
    first.release()


def test_a_dead_process_of_this_host_is_taken_over_at_once(tmp_path: Path):
    import subprocess
    import sys

    storage = _storage(tmp_path)
    url = f"sqlite:///{tmp_path / 'lease.db'}"
    code = (
        "from hpo_lstm.store.record import open_storage; from hpo_lstm.store.lease import StudyLease; import os; "
        f"StudyLease(open_storage({url!r}), 's').acquire(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # took the lease and died holding it
    StudyLease(storage, "s").acquire().release()  # no wait for the heartbeat to go stale


def test_an_evaluation_is_never_recorded_twice(tmp_path: Path):
    from hpo_lstm.config import StudyConfig
    from hpo_lstm.store.recording import Recorder

    with Recorder(StudyConfig(optimizer="random", data="sine", budget=2, pop_size=2, out=str(tmp_path))) as recorder:
        params = {"learning_rate": 1e-3, "hidden_size": 8, "n_layers": 1}
        recorder.record(0, params, 0.5, {})
        with pytest.raises(StorageError, match="Evaluation 0 .* is recorded already"):
            recorder.record(0, params, 0.4, {})


def test_a_holder_in_another_pid_namespace_of_this_host_is_alive_until_its_heartbeat_goes_stale(tmp_path: Path):
    from hpo_lstm.store.lease import machine_key

    storage = _storage(tmp_path)
    name, boot, _ = machine_key().split("|")
    first = StudyLease(storage, "s")
    first.host, first.pid = f"{name}|{boot}|pid:[1]", 999_999_999  # that pid does not exist here: it may there
    first.acquire()
    with pytest.raises(StorageError, match=rf"is being run by another driver \(process 999999999 on {name},"):
        StudyLease(storage, "s").acquire()
    assert "|" not in str(StudyLease(storage, "s").host.split("|")[0])
    first.release()
    # The same kernel and namespace: a dead pid is proof, taken over at once.
    gone = StudyLease(storage, "s")
    gone.pid = 999_999_999
    gone.acquire()
    gone._stop.set()  # (its heartbeat thread; the row stays, as after a kill -9)
    StudyLease(storage, "s").acquire().release()


def test_a_driver_in_another_pid_namespace_does_not_take_over_a_running_one(tmp_path: Path):
    import shutil
    import subprocess
    import sys

    from conftest import completed_trials, wait_for

    unshare = shutil.which("unshare")
    if (
        unshare is None
        or subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode != 0
    ):
        pytest.skip("unshare --pid --fork --mount-proc is not available (needs util-linux and root or user namespaces)")
    study = write_study(tmp_path / "s.toml", 'name = "ns"\n' + TINY_SPACE)
    args = [
        "run",
        str(study),
        *TINY_ARGS,
        "--optimizer",
        "random",
        "--budget",
        "40",
        "--pop-size",
        "4",
        "--workers",
        "1",
        "--out",
        str(tmp_path),
    ]
    first = start_cli(args)
    wait_for(lambda: completed_trials(tmp_path / "hpo-lstm.db") >= 1, first, "the first driver's first trial")
    second = subprocess.run(
        [unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-m", "hpo_lstm.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 2, second.stderr
    assert "is being run by another driver" in second.stderr
    code, err = wait_cli(first)
    assert code == 0, err  # not taken over
    assert _evaluations(tmp_path / "hpo-lstm.db", "ns") == list(range(40))
