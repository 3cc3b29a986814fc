"""Issue 17, points 5 and 6: bad input and a failing environment are refused in one line (exit
status 2, no traceback), before the study exists and before anything trains wherever that can
be known; the worker processes of a driver that is killed exit with it.

Real things throughout: mealpy's own checks, a real corrupted SQLite file, a real full SQLite
database (its page limit), a real full file (the process's file-size limit, RLIMIT_FSIZE: a
plot's write fails as on a full disk), real processes killed with SIGKILL.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import TINY_ARGS, completed_trials, start_cli, wait_cli, wait_for, write_study

from hpo_lstm import ConfigError, StudyConfig
from hpo_lstm.cli import main

RANDOM = [*TINY_ARGS, "--optimizer", "random", "--workers", "1"]
STUDY = "sine-lstm-random-seed0"  # the default study name of RANDOM


def _refused(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run ``hpo-lstm ARGS`` in this process; it must end with status 2 and one error line."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("hpo-lstm: error: "), err
    assert "Traceback" not in err
    return err


def _one_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo-lstm: error: "), err
    return lines[0]


def _limited(file_size: int | None = None, memory: int | None = None):
    """A ``preexec_fn`` limiting the child's file size (a write past it fails as on a full disk,
    SIGXFSZ ignored) or address space (a huge allocation fails instead of the OOM killer)."""

    def apply() -> None:
        if file_size is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


def _run_limited(args: list[str], timeout: float = 300, **limits: int) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "hpo_lstm.cli", *args],
        preexec_fn=_limited(**limits),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stderr


# Optimizer options, budgets and seeds: refused when the config is made ------------------------


@pytest.mark.parametrize(
    ("optimizer", "option", "value", "rule"),
    [
        ("pso", "c1", "-5", "must be a float from 0 to 5.0, both excluded"),
        ("ga", "pc", "7", "must be a float from 0 to 1.0, both excluded"),
        ("ga", "selection", '"best"', "must be a string, one of ['tournament', 'random', 'roulette']"),
    ],
)
def test_a_bad_optimizer_option_is_refused_before_the_study_exists(tmp_path, capsys, optimizer, option, value, rule):
    study = write_study(tmp_path / "s.toml", f'optimizer = "{optimizer}"\n[optimizer_options]\n{option} = {value}\n')
    out = tmp_path / "out"
    err = _refused(capsys, ["run", str(study), *TINY_ARGS, "--budget", "6", "--pop-size", "6", "--out", str(out)])
    assert f"Option '{option}' of optimizer '{optimizer}' {rule}" in err
    assert f"got {value.strip(chr(34))!r}" in err or f"got {value}" in err
    # No study was created, so the corrected file is not refused as "other settings" later.
    assert not (out / "hpo-lstm.db").exists()


def test_mealpy_options_are_checked_through_the_registry_too():
    from hpo_lstm.optimizers import registry

    with pytest.raises(ConfigError, match="Option 'w' of optimizer 'pso' must be a float from 0 to 1.0"):
        registry["pso"](pop_size=8, w=3)
    with pytest.raises(ConfigError, match="Option 'pop_size' of optimizer 'woa' must be an integer from 5 to 10000"):
        registry["woa"](pop_size=20_000)
    assert registry["pso"](pop_size=8, c1=1.5, c2=1.5, w=0.7).options == {"c1": 1.5, "c2": 1.5, "w": 0.7}


def test_a_budget_past_mealpys_generation_limit_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    err = _refused(
        capsys,
        ["run", *TINY_ARGS, "--optimizer", "woa", "--budget", "700000", "--pop-size", "6", "--out", str(out)],
    )
    assert "--budget 700000 is more than optimizer 'woa' can spend with pop_size=6: at most 600006" in err
    assert not out.exists()


@pytest.mark.parametrize("key", ["pso", "gwo", "woa", "ga"])
def test_the_generation_limit_is_mealpys(key):
    """MAX_GENERATIONS is the bound mealpy's constructors check, and the largest budget a config
    accepts gives mealpy exactly that many generations."""
    from hpo_lstm.optimizers._mealpy import MAX_GENERATIONS, _batched_classes

    cls = _batched_classes()[key]
    cls(epoch=MAX_GENERATIONS, pop_size=8)
    with pytest.raises(ValueError, match="'epoch'"):
        cls(epoch=MAX_GENERATIONS + 1, pop_size=8)
    config = StudyConfig(optimizer=key, pop_size=8, budget=8 + 8 * MAX_GENERATIONS)
    with pytest.raises(ConfigError, match="at most 800008"):
        config.replace(budget=config.budget + 1)


@pytest.mark.parametrize("optimizer", ["tpe", "random", "woa"])
def test_a_seed_past_32_bits_is_refused(tmp_path, capsys, optimizer):
    out = tmp_path / "out"
    err = _refused(
        capsys,
        [
            "run",
            *TINY_ARGS,
            "--optimizer",
            optimizer,
            "--seed",
            "4294967296",
            "--budget",
            "6",
            "--pop-size",
            "6",
            "--out",
            str(out),
        ],
    )
    assert "seed must be an integer from 0 to 4294967295 (2**32 - 1); got 4294967296." in err
    assert not out.exists()
    StudyConfig(optimizer=optimizer, seed=2**32 - 1)  # the largest is fine


def test_an_optimizer_refuses_a_seed_past_32_bits_from_python():
    from hpo_lstm.optimizers import registry
    from hpo_lstm.space import default_space

    with pytest.raises(ConfigError, match="seed must be an integer from 0 to 4294967295"):
        registry["tpe"](pop_size=2).optimize(lambda batch: [0.0] * len(batch), default_space(), budget=2, seed=2**32)


def test_a_comparison_seed_past_32_bits_is_refused(tmp_path, capsys):
    err = _refused(
        capsys,
        [
            "compare",
            *TINY_ARGS,
            "--models",
            "lstm",
            "--optimizers",
            "random",
            "--seeds",
            "4294967296,",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert "got 4294967296" in err
    assert not (tmp_path / "out").exists()


def test_a_billion_comparison_seeds_are_refused_before_they_are_built(tmp_path):
    """seeds = 1000000000 once grew to 24 GB: refused in one line, in a child process whose
    address space is limited (an old hpo-lstm fails there with MemoryError, not the OOM killer)."""
    study = write_study(tmp_path / "c.toml", 'data = "sine"\nseeds = 1000000000\n')
    line = _one_line(
        *_run_limited(["compare", str(study), "--quiet", "--out", str(tmp_path / "out")], timeout=300, memory=6 * 2**30)
    )
    assert "The number of --seeds must be at most 10000 (cells of one comparison); got 1000000000." in line
    assert not (tmp_path / "out").exists()


def test_a_comparison_of_too_many_cells_is_refused(tmp_path, capsys):
    err = _refused(capsys, ["compare", *TINY_ARGS, "--seeds", "1000", "--out", str(tmp_path / "out")])
    assert "A comparison may hold at most 10000 cells (studies); 1000 --seeds x 2 models x 6 optimizers" in err
    assert not (tmp_path / "out").exists()


# Devices and study files ------------------------------------------------------------------------


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this torch has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_on_a_torch_without_it_is_refused_before_anything_is_written(tmp_path, capsys, device):
    out = tmp_path / "out"
    err = _refused(capsys, ["run", *RANDOM, "--device", device, "--budget", "2", "--pop-size", "2", "--out", str(out)])
    assert f"Device {device!r} is not available: this torch (" in err and "use --device cpu or auto." in err
    assert not (out / "hpo-lstm.db").exists()


@pytest.mark.parametrize("nested", ["a = " + "[" * 2000 + "]" * 2000, "a = " + "{ b = " * 2000 + "1" + " }" * 2000])
def test_a_study_file_nested_2000_deep_is_refused(tmp_path, capsys, nested):
    study = write_study(tmp_path / "deep.toml", nested + "\n")
    err = _refused(capsys, ["run", str(study), *RANDOM, "--out", str(tmp_path / "out")])
    assert f"Study file {str(study)!r} nests arrays or tables too deeply" in err
    assert not (tmp_path / "out").exists()


# Output folders: refused before the training, not after it ---------------------------------------


def test_an_out_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder\n")
    storage = tmp_path / "elsewhere.db"  # the storage is fine: only the result folder is not
    err = _refused(
        capsys,
        [
            "run",
            *RANDOM,
            "--budget",
            "2",
            "--pop-size",
            "2",
            "--out",
            str(tmp_path / "file"),
            "--storage",
            f"sqlite:///{storage}",
        ],
    )
    assert (
        f"Output folder {str(tmp_path / 'file' / STUDY)!r} cannot be made: {str(tmp_path / 'file')!r} is a file" in err
    )
    assert not storage.exists()


def test_a_result_folder_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / STUDY).write_text("not a folder\n")
    err = _refused(capsys, ["run", *RANDOM, "--budget", "2", "--pop-size", "2", "--out", str(out)])
    assert f"Output folder {str(out / STUDY)!r} cannot be made: {str(out / STUDY)!r} is a file, not a folder." in err
    assert not (out / "hpo-lstm.db").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir(mode=0o555)
    storage = tmp_path / "elsewhere.db"
    err = _refused(
        capsys,
        ["run", *RANDOM, "--budget", "2", "--pop-size", "2", "--out", str(out), "--storage", f"sqlite:///{storage}"],
    )
    assert f"Output folder {str(out / STUDY)!r} cannot be written: Permission denied." in err
    assert not storage.exists()


# A corrupted or full storage, a full disk --------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The output folder of a finished tiny study (its storage and its result folder)."""
    out = tmp_path_factory.mktemp("finished")
    assert main(["run", *RANDOM, "--budget", "2", "--pop-size", "2", "--max-epochs", "1", "--out", str(out)]) == 0
    return out


def test_a_corrupted_storage_gives_one_line_and_trains_nothing(finished, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    db = out / "hpo-lstm.db"
    shutil.copy(finished / "hpo-lstm.db", db)
    with sqlite3.connect(db) as con:
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        roots = [
            root
            for name, root in con.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table'")
            if name not in ("version_info", "alembic_version")
        ]
    con.close()
    with db.open("r+b") as handle:  # every table's root page but the schema version's: garbage
        for root in roots:
            handle.seek((root - 1) * page_size)
            handle.write(b"\xff" * page_size)
    err = _refused(capsys, ["run", *RANDOM, "--budget", "2", "--pop-size", "2", "--max-epochs", "1", "--out", str(out)])
    assert "The study storage failed: (sqlite3.DatabaseError) database disk image is malformed." in err
    assert not (out / STUDY).exists()


def test_a_storage_that_is_not_a_database_gives_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "hpo-lstm.db").write_bytes(b"\xff" * 20_000)
    err = _refused(capsys, ["run", *RANDOM, "--budget", "2", "--pop-size", "2", "--out", str(out)])
    assert "file is not a database" in err
    assert not (out / STUDY).exists()


def test_a_full_storage_during_the_search_gives_one_line(tmp_path, capsys):
    """SQLite's "database or disk is full" while a trial's weights are stored: a real SQLite
    limit (``PRAGMA max_page_count`` on every connection) lets the storage grow by less than one
    model's weights past its empty size."""
    import sqlalchemy
    from sqlalchemy.engine import Engine

    out = tmp_path / "out"
    out.mkdir()
    url = f"sqlite:///{out / 'hpo-lstm.db'}"
    subprocess.run(
        [sys.executable, "-c", f"from hpo_lstm.store.record import open_storage; open_storage({url!r})"], check=True
    )
    with sqlite3.connect(out / "hpo-lstm.db") as con:
        pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    # hidden 64, 2 layers: about 50,000 parameters, 200 kB of weights; 16 more pages hold 64 kB
    study = write_study(
        tmp_path / "s.toml", "[space]\nhidden_size = { low = 64, high = 64 }\nn_layers = { low = 2, high = 2 }\n"
    )

    def limit(connection, record):
        connection.execute(f"PRAGMA max_page_count = {pages + 16}")

    sqlalchemy.event.listen(Engine, "connect", limit)
    try:
        err = _refused(
            capsys,
            ["run", str(study), *RANDOM, "--budget", "2", "--pop-size", "2", "--max-epochs", "1", "--out", str(out)],
        )
    finally:
        sqlalchemy.event.remove(Engine, "connect", limit)
    assert err == "hpo-lstm: error: The study storage failed: (sqlite3.OperationalError) database or disk is full.\n"


def test_a_full_disk_while_drawing_a_plot_gives_one_line(finished, tmp_path):
    """``hpo-lstm report`` rewrites a run's files; the predictions plot, the largest of them,
    hits the file-size limit as it would a full disk."""
    folder = tmp_path / STUDY
    shutil.copytree(finished / STUDY, folder)
    plot = folder / "predictions.png"
    line = _one_line(*_run_limited(["report", str(folder), "--quiet"], file_size=plot.stat().st_size - 1))
    assert line.endswith("File too large.")


# Workers outlive a killed driver -----------------------------------------------------------------

# Trainings of about a second, several batches: the driver is killed while its workers train
# (or wait for the next batch), after they have been set up.
LONG = [
    "--data",
    "sine",
    "--lookback",
    "8",
    "--max-epochs",
    "4",
    "--patience",
    "4",
    "--pruning",
    "off",
    "--optimizer",
    "random",
    "--quiet",
]


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _workers(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()) and _running(child):
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_workers_exit_when_their_driver_is_killed_and_its_folder_is_removed_next_time(tmp_path):
    temp = tmp_path / "tmp"  # the drivers' temporary folder: only theirs in it
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    out = tmp_path / "out"
    proc = start_cli(["run", *LONG, "--budget", "8", "--pop-size", "2", "--workers", "2", "--out", str(out)], env=env)
    children: list[psutil.Process] = []
    try:
        # Killed once a first training has been recorded: the workers are set up and training.
        wait_for(lambda: completed_trials(out / "hpo-lstm.db") >= 1, proc, "a first trial", timeout=240)
        children = psutil.Process(proc.pid).children(recursive=True)  # two workers, the resource tracker
        assert len(_workers(proc.pid)) == 2
        folders = list(temp.glob("hpo-lstm-*"))
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 20
        while any(_running(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [(c.pid, c.cmdline()) for c in children if _running(c)]
        assert not left, f"still running 20 s after their driver was killed: {left}"
    finally:
        proc.kill()
        for child in children:
            if _running(child):
                child.kill()
    # A SIGKILL leaves the driver's folder; the next driver that starts removes it.
    assert [sorted(p.name for p in f.iterdir()) for f in folders] == [["dataset.pickle", "driver.pid"]]
    nothing = ["run", *RANDOM, "--budget", "1", "--pop-size", "1", "--max-epochs", "1", "--out", str(tmp_path / "next")]
    code, err = wait_cli(start_cli(nothing, env=env))
    assert code == 0, err
    assert not folders[0].exists()


def test_stale_folders_of_dead_drivers_only_are_removed(tmp_path):
    import socket

    from hpo_lstm.executors._local import remove_stale_folders

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    folders = {}
    for name, text in [
        ("dead", f"{dead_pid}\n{host}\n"),
        ("alive", f"{os.getppid()}\n{host}\n"),
        ("other-host", f"{dead_pid}\nanother-{host}\n"),
        ("no-pid", None),
    ]:
        folders[name] = Path(tempfile.mkdtemp(prefix="hpo-lstm-", dir=tmp_path))
        (folders[name] / "dataset.pickle").write_bytes(b"x")
        if text is not None:
            (folders[name] / "driver.pid").write_text(text)
    unrelated = tmp_path / "other-folder"
    unrelated.mkdir()
    assert remove_stale_folders(str(tmp_path)) == [str(folders["dead"])]
    assert not folders["dead"].exists()
    assert all(folders[name].exists() for name in ("alive", "other-host", "no-pid")) and unrelated.exists()


def test_an_empty_study_left_by_a_refused_run_is_not_stuck(tmp_path):
    # An earlier hpo-lstm created the study before it found a bad setting, so the study holds
    # settings and no trial; the corrected command takes it over instead of being refused.
    from hpo_lstm.config import StudyConfig
    from hpo_lstm.store.recording import Recorder

    Recorder(
        StudyConfig(
            optimizer="random", data="sine", budget=2, pop_size=2, max_epochs=5, name="stuck", out=str(tmp_path)
        )
    ).close()
    args = [
        "run",
        "--optimizer",
        "random",
        "--data",
        "sine",
        "--budget",
        "2",
        "--pop-size",
        "2",
        "--max-epochs",
        "1",
        "--lookback",
        "8",
        "--workers",
        "1",
        "--study-name",
        "stuck",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
