"""A throw-away Dask cluster on 127.0.0.1 made of Dask's own commands, for tests and benchmarks.

``dask scheduler`` and ``dask worker`` run as separate processes of this Python (the same
environment, so workers can import hpo-lstm), listen on the loopback interface only, and are
stopped by PID. Not a public API: real clusters are started by hand (see docs/distributed.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LoopbackCluster"]

_START_TIMEOUT_S = 60.0


class LoopbackCluster:
    """``with LoopbackCluster(workdir=...) as cluster: cluster.add_workers(2); cluster.address``.

    ``scheduler_env`` / ``worker_env`` add environment variables (Dask settings such as
    ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES``); ``memory_limit`` is each worker's
    ``--memory-limit`` (its nanny restarts a worker that exceeds 95% of it).
    """

    def __init__(
        self,
        *,
        workdir: Path,
        scheduler_env: Mapping[str, str] | None = None,
        worker_env: Mapping[str, str] | None = None,
        memory_limit: str = "0",
    ) -> None:
        self.workdir = Path(workdir)
        self.scheduler_env = dict(scheduler_env or {})
        self.worker_env = dict(worker_env or {})
        self.memory_limit = memory_limit
        self.address = ""
        self.client: Any = None  # for inspection (who runs what, worker PIDs), not for trainings
        self._scheduler: subprocess.Popen | None = None
        self._workers: dict[str, subprocess.Popen] = {}

    # Processes --------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "dask", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl-C meant for the driver never reaches the cluster
            )
        finally:
            log.close()

    def __enter__(self) -> LoopbackCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        scheduler_file = self.workdir / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        self._scheduler = self._spawn(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(scheduler_file),
                "--idle-timeout",
                "600",
            ],
            self.scheduler_env,
        )
        try:
            deadline = time.monotonic() + _START_TIMEOUT_S
            while not scheduler_file.exists() or not scheduler_file.read_text().strip():
                if self._scheduler.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dask scheduler did not start; see {self.workdir / 'scheduler.log'}")
                time.sleep(0.1)
            self.address = json.loads(scheduler_file.read_text())["address"]
            from distributed import Client

            self.client = Client(self.address, timeout=_START_TIMEOUT_S, set_as_default=False)
        except BaseException:
            self.__exit__(None)
            raise
        return self

    def add_workers(self, n: int, *, wait: bool = True) -> list[str]:
        """Start ``n`` more ``dask worker`` processes (each under its nanny); returns their names."""
        names = []
        for _ in range(n):
            name = f"worker-{len(self._workers)}"
            self._workers[name] = self._spawn(
                name,
                [
                    "worker",
                    self.address,
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--nthreads",
                    "1",
                    "--name",
                    name,
                    "--memory-limit",
                    self.memory_limit,
                    "--local-directory",
                    str(self.workdir / name),
                    "--death-timeout",
                    "60",
                ],
                self.worker_env,
            )
            names.append(name)
        if wait:
            self.wait_for_workers(len(self.running_workers()))
        return names

    def running_workers(self) -> list[str]:
        return [name for name, proc in self._workers.items() if proc.poll() is None]

    def wait_for_workers(self, n: int) -> None:
        """Block until the scheduler has ``n`` workers."""
        self.client.wait_for_workers(n, timeout=_START_TIMEOUT_S)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> PID of the worker process itself (its nanny's child)."""
        return self.client.run(os.getpid)

    def stop_worker(self, name: str) -> None:
        """Stop one ``dask worker`` (its nanny and the worker process) by PID."""
        _stop(self._workers.pop(name))

    def kill_scheduler(self) -> None:
        """SIGKILL the scheduler (a lost scheduler, as far as drivers and workers can tell)."""
        if self._scheduler is not None:
            self._scheduler.kill()
            self._scheduler.wait()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self.client is not None:
            try:
                self.client.close(timeout=10)
            except Exception:  # a cluster being torn down may not answer; the processes go anyway
                pass
            self.client = None
        for name in list(self._workers):
            self.stop_worker(name)
        if self._scheduler is not None:
            _stop(self._scheduler)
            self._scheduler = None


def _stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM (a nanny then closes its worker), then SIGKILL for whatever is left, by PID."""
    import psutil

    family = []
    if proc.poll() is None:  # a reaped PID may belong to someone else by now
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for process in family[1:]:
        try:
            process.wait(5)
        except psutil.TimeoutExpired:
            process.kill()
        except psutil.NoSuchProcess:
            pass
