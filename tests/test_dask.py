"""The Dask executor against a real cluster: ``dask scheduler`` and ``dask worker`` processes on
127.0.0.1, started and stopped by PID (see hpo_lstm.executors._loopback), driven by the real CLI."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE, completed_trials, start_cli, wait_cli, wait_for, write_study

from hpo_lstm.cli import main
from hpo_lstm.executors._loopback import LoopbackCluster

# Trainings of about a second each (batch 32, no early stop), so a kill lands mid-training.
RUN = ["--data", "sine", "--lookback", "8", "--max-epochs", "6", "--patience", "6", "--quiet"]
STUDY = 'name = "tiny"\nbatch_size = 32\npruning = "off"\n' + TINY_SPACE
SEARCH = ("--optimizer", "tpe", "--budget", "8", "--pop-size", "4", "--seed", "1")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LoopbackCluster(workdir=tmp_path_factory.mktemp("cluster")) as c:
        c.add_workers(2)
        yield c


def _args(study: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(study), *RUN, *SEARCH, "--out", str(out), *extra]


def _dask(cluster: LoopbackCluster) -> tuple[str, ...]:
    return ("--executor", "dask", "--scheduler", cluster.address)


def _trials(out: Path) -> dict[int, tuple]:
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'hpo-lstm.db'}")
    counted = [t for t in study.trials if t.user_attrs.get("failure") != "interrupted"]
    evaluations = [t.user_attrs["evaluation"] for t in counted]
    assert sorted(evaluations) == list(range(len(evaluations))), "every evaluation recorded exactly once"
    return {t.user_attrs["evaluation"]: (t.params, t.value, t.state.name) for t in counted}


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory) -> tuple[dict[int, tuple], dict]:
    """The same study on the local executor (2 processes): what every Dask run must reproduce."""
    tmp = tmp_path_factory.mktemp("local")
    study = write_study(tmp / "s.toml", STUDY)
    assert main(_args(study, tmp / "out", "--workers", "2")) == 0
    return _trials(tmp / "out"), json.loads((tmp / "out" / "tiny" / "summary.json").read_text())


def test_dask_records_the_same_trials_as_local(tmp_path: Path, cluster, local_reference):
    study = write_study(tmp_path / "s.toml", STUDY)
    assert main(_args(study, tmp_path, *_dask(cluster))) == 0
    trials, summary = _trials(tmp_path), json.loads((tmp_path / "tiny" / "summary.json").read_text())
    ref_trials, ref_summary = local_reference
    assert len(trials) == 8 and all(state == "COMPLETE" for _, _, state in trials.values())
    assert trials == ref_trials
    assert (summary["best_params"], summary["test"]) == (ref_summary["best_params"], ref_summary["test"])
    # Both workers trained: the candidates really went to the cluster, not to this process.
    started = cluster.client.run(_trainings_started_on_worker)
    assert len(started) == 2 and all(n > 0 for n in started.values()) and sum(started.values()) >= 8


# Run on each worker: how many training tasks its transition log shows it began executing.
# (A lambda travels by value; a function of this test module would not import on a worker.)
_trainings_started_on_worker = (  # noqa: E731
    lambda dask_worker: sum(
        1
        for entry in dask_worker.state.log
        if str(entry[0]).startswith("_train_on_worker-") and entry[1:3] == ("ready", "executing")
    )
)


def test_a_worker_killed_mid_training_is_retried_and_the_study_completes(tmp_path: Path, local_reference):
    study = write_study(tmp_path / "s.toml", STUDY)
    with LoopbackCluster(workdir=tmp_path / "cluster") as cluster:
        cluster.add_workers(2)
        proc = start_cli(_args(study, tmp_path, *_dask(cluster)))
        wait_for(lambda: completed_trials(tmp_path / "hpo-lstm.db") >= 1, proc, "the first trial")
        busy: dict[str, list] = {}
        wait_for(
            lambda: busy.update({w: k for w, k in cluster.client.processing().items() if k}) or busy,
            proc,
            "a training in flight",
        )
        victim = next(iter(busy))
        pid = cluster.worker_pids()[victim]
        os.kill(pid, signal.SIGKILL)  # the worker process; its nanny starts a fresh one
        code, err = wait_cli(proc, 300)
        assert code == 0, err
        assert pid not in cluster.worker_pids().values(), "the killed worker was replaced"
    # Every evaluation recorded once, none failed, and the retried training gave the same value.
    assert _trials(tmp_path) == local_reference[0]


def test_driver_killed_then_resumed_on_dask_matches_local(tmp_path: Path, cluster, local_reference):
    study = write_study(tmp_path / "s.toml", STUDY)
    proc = start_cli(_args(study, tmp_path, *_dask(cluster)))
    wait_for(lambda: completed_trials(tmp_path / "hpo-lstm.db") >= 3, proc, "three trials")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= completed_trials(tmp_path / "hpo-lstm.db") < 8
    assert main(_args(study, tmp_path, *_dask(cluster))) == 0
    assert _trials(tmp_path) == local_reference[0]


def test_a_lost_scheduler_stops_the_driver_in_one_line_and_the_study_resumes(tmp_path: Path, local_reference):
    study = write_study(tmp_path / "s.toml", STUDY)
    with LoopbackCluster(workdir=tmp_path / "lost") as cluster:
        cluster.add_workers(2)
        proc = start_cli(_args(study, tmp_path, *_dask(cluster)))
        wait_for(lambda: completed_trials(tmp_path / "hpo-lstm.db") >= 2, proc, "two trials")
        cluster.kill_scheduler()
        code, err = wait_cli(proc, 120)
    assert code == 2, err
    assert err.startswith("hpo-lstm: error: A training on the Dask cluster") and err.count("\n") == 1, err
    assert "run the same command again to resume" in err
    with LoopbackCluster(workdir=tmp_path / "new") as cluster:  # a new cluster, same study
        cluster.add_workers(2)
        assert main(_args(study, tmp_path, *_dask(cluster))) == 0
    assert _trials(tmp_path) == local_reference[0]


def test_a_candidate_that_kills_every_worker_becomes_a_failed_trial(tmp_path: Path):
    # Seed 31 of random search draws hidden sizes 11563, 22, 7 and 8: the first needs ~2 GB
    # for its weights alone, past the workers' 1.5 GB limit, so each worker's nanny kills it.
    space = TINY_SPACE.replace("{ low = 4, high = 12 }", "{ low = 4, high = 16384, log = true }")
    space = space.replace("n_layers = { low = 1, high = 2 }", "n_layers = { low = 1, high = 1 }")
    study = write_study(tmp_path / "s.toml", 'name = "tiny"\nmax_epochs = 1\n' + space)
    env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    with LoopbackCluster(workdir=tmp_path / "cluster", scheduler_env=env, memory_limit="1.5GB") as cluster:
        cluster.add_workers(2)
        args = [
            "run",
            str(study),
            "--data",
            "sine",
            "--lookback",
            "8",
            "--quiet",
            "--out",
            str(tmp_path),
            "--optimizer",
            "random",
            "--budget",
            "4",
            "--pop-size",
            "2",
            "--seed",
            "31",
            *_dask(cluster),
        ]
        assert main(args) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'hpo-lstm.db'}")
    huge = [t for t in study.trials if t.params["hidden_size"] >= 7000]
    small = [t for t in study.trials if t.params["hidden_size"] < 7000]
    assert len(huge) == 1 and len(small) == 3, "the seed no longer draws one huge candidate; pick another"
    assert huge[0].state.name == "FAIL"
    assert huge[0].user_attrs["failure"].startswith("KilledWorker: the training killed 2 Dask workers")
    assert all(t.state.name == "COMPLETE" for t in small)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--executor", "ray"), "Unknown executor 'ray'; choose from dask, local."),
        (("--executor", "dask"), "--executor dask needs --scheduler ADDRESS"),
        (("--scheduler", "tcp://127.0.0.1:8786"), "is only used with --executor dask"),
        (
            ("--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"),
            "Cannot reach the Dask scheduler 'tcp://127.0.0.1:9'",
        ),
        (("--executor", "dask", "--scheduler", "nonsense://x"), "Cannot reach the Dask scheduler 'nonsense://x'"),
    ],
)
def test_bad_executor_settings_give_one_line_and_record_nothing(tmp_path: Path, capsys, extra, message):
    study = write_study(tmp_path / "s.toml", STUDY)
    assert main(_args(study, tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpo-lstm: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "hpo-lstm.db").exists()


def test_compare_runs_its_tuned_cells_on_the_cluster(tmp_path: Path, cluster):
    compare = write_study(tmp_path / "cmp.toml", STUDY)
    args = [
        "compare",
        str(compare),
        *RUN,
        "--models",
        "lstm",
        "--optimizers",
        "random,tpe",
        "--seeds",
        "1",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--out",
        str(tmp_path),
        *_dask(cluster),
    ]
    before = sum(cluster.client.run(_trainings_started_on_worker).values())
    assert main(args) == 0
    cells = json.loads((tmp_path / "tiny" / "compare.json").read_text())["cells"]
    assert [c["kind"] for c in cells] == ["tuned", "tuned", "untuned"]
    assert "## 3. Optimizer ranking" in (tmp_path / "tiny" / "report.md").read_text()
    assert sum(cluster.client.run(_trainings_started_on_worker).values()) - before == 2 * 4


def test_compare_with_an_unreachable_scheduler_writes_nothing(tmp_path: Path, capsys):
    compare = write_study(tmp_path / "cmp.toml", STUDY)
    args = [
        "compare",
        str(compare),
        *RUN,
        "--models",
        "lstm",
        "--optimizers",
        "random",
        "--seeds",
        "1",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--executor",
        "dask",
        "--scheduler",
        "tcp://127.0.0.1:9",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Cannot reach the Dask scheduler 'tcp://127.0.0.1:9'" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
