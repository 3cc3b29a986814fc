from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Tests whose numbers pass through the CPU's math kernels and are compared across two paths (a
# saved model against its study's predictions, a reloaded model, a forecast from a frame against
# one from the card): .ci/run runs them again under each setting that makes oneDNN, MKL or
# torch take other kernels (DNNL_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, ATEN_CPU_CAPABILITY), so
# that a CPU unlike the developers' is covered (docs/reliability.md). The tests that set such a
# variable themselves ("another instruction set") are left out of those runs.
NUMERICS_MODULES = {
    "test_forecast",
    "test_models",
    "test_precision",
    "test_reference_lstm",
    "test_saved_model",
    "test_season_defaults",
    "test_training",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module.__name__ in NUMERICS_MODULES and "instruction_set" not in item.name:
            item.add_marker(pytest.mark.numerics)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The machine has 2 cores; torch's default thread count makes small LSTMs far slower.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    """A 240-row daily CSV with a trend, a season, noise and a second feature."""
    rng = np.random.default_rng(7)
    n = 240
    t = np.arange(n)
    price = 100 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.3, n)
    volume = 1000 + 50 * np.cos(2 * np.pi * t / 7) + rng.normal(0, 5, n)
    dates = np.datetime64("2024-01-01") + t
    path = tmp_path / "prices.csv"
    lines = ["date,close,volume"] + [f"{d},{p:.4f},{v:.2f}" for d, p, v in zip(dates, price, volume)]
    path.write_text("\n".join(lines) + "\n")
    return path


class CountingObjective:
    """A batch fitness function that remembers the size of every batch it was given."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.batches: list[int] = []

    def __call__(self, batch: list[dict[str, Any]]) -> list[float]:
        self.batches.append(len(batch))
        return self.fn(batch)


def write_study(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TINY_SPACE = """
[space]
learning_rate = { low = 1e-3, high = 3e-2, log = true }
hidden_size = { low = 4, high = 12 }
n_layers = { low = 1, high = 2 }
"""


# The smallest real settings: the noisy sine, 8-step windows, 2 epochs.
TINY_ARGS = ["--data", "sine", "--lookback", "8", "--max-epochs", "2", "--patience", "2", "--quiet"]


def wait_for(condition: Any, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    """Poll ``condition()`` until true while ``proc`` (a :func:`start_cli` process) runs; fail
    with its stderr if it ends first, or after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the process ended before {what}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def start_cli(args: list[str], **popen: Any) -> subprocess.Popen:
    """``hpo-lstm ARGS`` as a real process of its own (to be killed, signalled or run beside
    another), its stderr captured as text."""
    return subprocess.Popen([sys.executable, "-m", "hpo_lstm.cli", *args], stderr=subprocess.PIPE, text=True, **popen)


def wait_cli(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Wait for a process of :func:`start_cli` to end; its exit status and whole stderr.

    Read together (``communicate``), so that an assertion on the status can always show what
    the process said, and a chatty process cannot block on a full pipe."""
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def open_storage_together(url: str, drivers: int = 6) -> None:
    """Open the storage at ``url`` from ``drivers`` processes started at the same moment; fail
    with their error messages unless every one succeeds."""
    code = f"from hpo_lstm.store.record import open_storage; open_storage({url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(drivers)]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * drivers, "\n".join(errors)


def completed_trials(db: Path) -> int:
    """COMPLETE trials in the SQLite storage ``db`` while a driver writes it; 0 before it exists.

    A plain SQLite query: opening the file as an Optuna storage would create its tables while
    the driver starts, racing it. Not read-only: after a SIGKILL the journal may need a rollback.
    """
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=rw", uri=True) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


@pytest.fixture(autouse=True)
def _sigint_raises_keyboard_interrupt():
    """Python's own SIGINT handler during every test, as in an interactive shell: a shell script
    that starts pytest in the background (a CI step, a test loop) gives it SIGINT ignored, and
    the Ctrl-C tests would then test nothing."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, before)


def _postgres_bin(name: str) -> str | None:
    import glob
    import shutil

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return shutil.which(name) or (candidates[-1] if candidates else None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(password: str | None = None) -> Iterator[str]:
    """A PostgreSQL server of its own on 127.0.0.1 (``initdb`` + ``pg_ctl`` in a temporary
    folder; as root it runs as the ``postgres`` user, since PostgreSQL refuses root), stopped on
    exit; yields its URL (user ``hpo``; with ``password``, scram-sha-256 authentication). Skips
    the test, saying why, where no server binaries exist (.ci/run installs them)."""
    import os
    import pwd
    import shutil
    import tempfile

    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install the Debian package 'postgresql'")
    folder = Path(tempfile.mkdtemp(prefix="hpo-lstm-pg-"))
    auth = ["--auth=trust"]
    if password is not None:
        (folder / "pw").write_text(password + "\n")
        auth = ["--auth=scram-sha-256", f"--pwfile={folder / 'pw'}"]
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (folder, *folder.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)

    run(initdb, "-D", str(data), "-U", "hpo", *auth, "--no-sync")
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "-t", "60", "start")
    try:
        credentials = f"hpo:{password}" if password is not None else "hpo"
        yield f"postgresql+psycopg://{credentials}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
