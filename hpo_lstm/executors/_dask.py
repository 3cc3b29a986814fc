"""Fitness evaluation on a Dask cluster started with Dask's own commands.

The driver (the process running the study) connects to a scheduler, installs the dataset on
every worker once, submits one task per candidate and records each outcome as it arrives.
Workers only train: the driver alone talks to the study's storage.

Why the dataset travels as a worker plugin and not through ``client.scatter(..., broadcast=True)``:
the Active Memory Manager (on by default) drops broadcast replicas down to one, and a scattered
key whose last holder dies is gone for good (it has no task that could recompute it), so one
killed worker would fail every later candidate. A worker plugin is kept by the scheduler and
installed on every worker that joins, restarted ones included: the dataset reaches each worker
process once, and survives any worker's death.

Faults: a worker that dies mid-training is Dask's business (the scheduler re-runs the task on
another worker). A candidate that kills every worker it runs on (out of memory, say) ends,
after the scheduler's ``allowed-failures``, as :class:`distributed.KilledWorker`; that becomes
the candidate's failure message, a FAIL trial, and the study goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from distributed import Client, KilledWorker, WorkerPlugin, as_completed, get_worker

from hpo_lstm._errors import ClusterError, first_line
from hpo_lstm.data import Dataset
from hpo_lstm.jobs import TrainJob, dispatch_order, run_job
from hpo_lstm.training import TrainResult

__all__ = ["CONNECT_TIMEOUT_S", "WORKERS_TIMEOUT_S", "DaskExecutor"]


def _connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the scheduler broke (distributed's CommClosedError
    is an OSError), not a bug of ours."""
    return isinstance(exc, (OSError, TimeoutError, asyncio.CancelledError))


CONNECT_TIMEOUT_S = 10.0  # to reach the scheduler
WORKERS_TIMEOUT_S = 60.0  # for a scheduler without workers to get one
_CLOSE_TIMEOUT_S = 10.0
# The driver reports cluster trouble itself, in one line; Dask's client would also log each
# failed reconnect with a traceback. Worker and scheduler logs are untouched (their processes).
_QUIET_LOGGERS = ("distributed.client", "distributed.comm", "distributed.core", "distributed.batched")

# Trainings seed torch's global generator (fork_rng + manual_seed); two at once in one worker
# process (a worker started with --nthreads > 1) would interleave their draws. One at a time.
_TRAIN_LOCK = threading.Lock()


class _DatasetPlugin(WorkerPlugin):
    """Carries the dataset to every worker, current and future; tasks read it from here."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset


def _train_on_worker(job: TrainJob, plugin_name: str, threads: int) -> TrainResult | str:
    """The task: train one candidate on this worker's copy of the dataset."""
    import torch

    dataset = get_worker().plugins[plugin_name].dataset
    if job.settings.device.startswith("cuda"):
        # Each worker sees its GPU alone (CUDA_VISIBLE_DEVICES; several workers may share it): "cuda" is that GPU.
        job = replace(job, settings=replace(job.settings, device="cuda"))
    with _TRAIN_LOCK:
        # Workers started by the user never ran our initialiser: set the thread count here.
        torch.set_num_threads(threads)
        return run_job(job, dataset)


async def _probe(address: str, timeout: float) -> None:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    await comm.close()


class DaskExecutor:
    """Train jobs as tasks on the Dask cluster whose scheduler listens at ``scheduler``.

    ``device`` is the study's resolved device: with CUDA, and workers that advertise a ``GPU``
    resource (``dask worker ... --resources GPU=1``), each task asks for one GPU.
    ``threads`` is torch's thread count inside each task.
    """

    def __init__(self, *, dataset: Dataset, scheduler: str, device: str = "cpu", threads: int = 1) -> None:
        self.dataset = dataset
        self.scheduler = scheduler
        self.device = device
        self.threads = threads
        self.resources: dict[str, float] | None = None
        self._client: Any = None
        self._plugin_name = ""
        self._pending: set[Any] = set()

    def __enter__(self) -> DaskExecutor:
        self._log_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            return self._connect()
        except BaseException:
            self._restore_logging()
            raise

    def _restore_logging(self) -> None:
        for name, level in getattr(self, "_log_levels", {}).items():
            logging.getLogger(name).setLevel(level)

    def _connect(self) -> DaskExecutor:
        address = self.scheduler
        # Probe first: a Client that fails to connect leaves a half-built object whose
        # destructor prints a traceback at exit.
        try:
            with ThreadPoolExecutor(1) as thread:  # its own event loop, even inside a running one
                thread.submit(asyncio.run, _probe(address, CONNECT_TIMEOUT_S)).result()
        except (OSError, ValueError, TypeError) as exc:
            raise ClusterError(f"Cannot reach the Dask scheduler {address!r}: {first_line(exc)}.") from None
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        try:
            try:
                client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
            except TimeoutError:
                raise ClusterError(
                    f"The Dask scheduler {address!r} has no workers after {WORKERS_TIMEOUT_S:g} s; start them with "
                    f"'dask worker {address} --nthreads 1'."
                ) from None
            import uuid

            self._plugin_name = f"hpo-lstm-dataset-{uuid.uuid4().hex}"
            try:
                client.register_plugin(_DatasetPlugin(self.dataset), name=self._plugin_name)
            except Exception as exc:  # whatever a worker raised while unpickling or installing it
                raise ClusterError(
                    f"Dask workers of {address!r} cannot take the dataset ({type(exc).__name__}: {first_line(exc)}); "
                    "every worker needs hpo-lstm installed, the same version as the driver."
                ) from None
            if self.device.startswith("cuda"):
                workers = client.scheduler_info(n_workers=-1)["workers"].values()
                if any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers):
                    self.resources = {"GPU": 1}
        except BaseException:
            client.close(timeout=_CLOSE_TIMEOUT_S)
            raise
        self._client = client
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        client, self._client = self._client, None
        if client is None:
            self._restore_logging()
            return
        try:
            # Cleanup must never hide the error or interrupt that brought us here.
            with contextlib.suppress(Exception):
                if self._pending:
                    client.cancel(list(self._pending), force=True)
                if client.status == "running":
                    client.unregister_worker_plugin(self._plugin_name)
        finally:
            self._pending.clear()
            with contextlib.suppress(Exception):
                client.close(timeout=_CLOSE_TIMEOUT_S)
            self._restore_logging()

    def map(self, jobs: Sequence[TrainJob]) -> Iterator[tuple[int, TrainResult | str]]:
        """Yield ``(index into jobs, outcome)`` as each job's task finishes on the cluster.

        At most one task per free slot of the cluster (worker thread, or GPU) is in flight.
        The scheduler counts a worker's death against every task assigned to it, queued ones
        included; without this, a candidate that kills its worker would take the candidates
        queued behind it down to KilledWorker with it.
        """
        if self._client is None:
            raise RuntimeError("DaskExecutor.map() outside 'with DaskExecutor(...)'")
        if not jobs:  # (a batch all replayed or memo: nothing to ask the cluster)
            return
        client = self._client
        first_slots = self._guarded(self._slots)
        waiting = [(index, jobs[index]) for index in dispatch_order(jobs, first_slots)][::-1]  # pop() takes the next
        indices: dict[Any, int] = {}
        running = as_completed(loop=client.loop)

        def submit_more(slots: int | None = None) -> None:
            if slots is None:  # (the first call has them already)
                slots = self._slots() if waiting else 0
            while waiting and len(self._pending) < slots:
                index, job = waiting.pop()
                # pure=False: every job is its own task, even one that looks like another.
                future = client.submit(
                    _train_on_worker, job, self._plugin_name, self.threads, pure=False, resources=self.resources
                )
                indices[future] = index
                self._pending.add(future)
                running.add(future)

        try:
            self._guarded(submit_more, first_slots)
            for future in running:
                self._pending.discard(future)
                outcome = self._guarded(self._outcome, future)
                yield indices[future], outcome
                self._guarded(submit_more)
        finally:
            # Interrupted or abandoned: do not leave our trainings running on the cluster.
            if self._pending:
                with contextlib.suppress(Exception):
                    client.cancel(list(self._pending), force=True)
                self._pending.clear()

    def _guarded(self, call: Any, *args: Any) -> Any:
        """``call(*args)``, with any error of the cluster's connection as one ClusterError.

        The scheduler can vanish at any moment: between a task finishing and its result being
        fetched, while asking for the cluster's slots, while submitting. Each of those raises
        something else from deep inside distributed (OSError, CommClosedError, TimeoutError,
        CancelledError); the driver says one thing for all of them."""
        try:
            return call(*args)
        except ClusterError:
            raise
        except Exception as exc:
            if self._client is not None and self._client.status == "running" and not _connection_error(exc):
                raise
            raise ClusterError(
                f"A training on the Dask cluster {self.scheduler!r} could not be completed: the scheduler was lost "
                f"({type(exc).__name__}: {first_line(exc) or 'no message'}); run the same command again to resume "
                "the study."
            ) from None

    def _slots(self) -> int:
        """Trainings the cluster can run at once now (at least 1: workers may be restarting)."""
        workers = list(self._client.scheduler_info(n_workers=-1)["workers"].values())
        if self.resources:
            return max(1, int(sum(w.get("resources", {}).get("GPU", 0) for w in workers)))
        # One per worker process, whatever its --nthreads: _TRAIN_LOCK runs its trainings one by one.
        return max(1, len(workers))

    def _outcome(self, future: Any) -> TrainResult | str:
        if future.status == "finished":
            return future.result()
        if future.status == "cancelled":
            raise ClusterError(
                f"A training on the Dask cluster {self.scheduler!r} was cancelled (scheduler lost?); run the same "
                "command again to resume the study."
            )
        error = future.exception()
        if isinstance(error, KilledWorker):
            last = getattr(error.last_worker, "address", error.last_worker)
            return (
                f"KilledWorker: the training killed {error.allowed_failures + 1} Dask workers in a row "
                f"(out of memory?); the last was {last}"
            )
        raise ClusterError(
            f"A training failed on the Dask cluster {self.scheduler!r} ({type(error).__name__}: {first_line(error)}); "
            "every worker needs hpo-lstm installed, the same version as the driver."
        )
