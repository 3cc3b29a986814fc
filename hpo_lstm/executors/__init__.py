"""Where candidates train: in this process, in a local pool of worker processes, or on a Dask cluster.

Every executor is a context manager (workers start on enter, stop on exit) with one method
that matters, ``map(jobs) -> iterator of (job index, outcome)``, yielding each outcome as soon
as it is ready. Results do not depend on which worker trained what: every training is seeded
by the study seed alone. An executor is made for one dataset, which reaches each worker once.

:func:`make_executor` builds either kind from plain settings (``run_study`` and comparisons
use it): :class:`~hpo_lstm.executors._local.LocalExecutor` (this machine) or
:class:`~hpo_lstm.executors._dask.DaskExecutor` (a Dask cluster started with Dask's own
commands); :mod:`hpo_lstm.executors._loopback` starts a real Dask cluster on 127.0.0.1 for tests
and benchmarks. This module imports nothing heavy, so settings are checked before torch loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from hpo_lstm._errors import ClusterError, ConfigError, UnknownNameError, WorkerStartError
from hpo_lstm.data import Dataset

if TYPE_CHECKING:
    from hpo_lstm.jobs import TrainJob

__all__ = [
    "EXECUTORS",
    "Executor",
    "WorkerStartError",
    "check_executor",
    "default_workers",
    "make_executor",
]

# Executor kinds: not part of a study's identity (a study gives the same trials on either).
EXECUTORS = ("local", "dask")


class Executor(Protocol):
    """Trains :class:`TrainJob` s on the dataset it was made for."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None: ...

    def map(self, jobs: Sequence[TrainJob]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index into jobs, TrainResult or failure message)`` as each job finishes."""
        ...


# Workers sharing one GPU at most: small LSTMs leave most of a GPU idle and each worker's
# training loop needs a CPU core of its own. Measured with benchmarks/gpu_workers.py on one H200
# with 16 cores (32 LSTM candidates, 10 epochs): 1 worker 55.6 candidates/min, 8 workers 5.85x,
# 12 workers 6.61x, 16 workers 6.54x (docs/speed.md).
WORKERS_PER_GPU = 12


def default_workers(device: str) -> int:
    """One worker per CPU core; on CUDA, as many (at most ``WORKERS_PER_GPU`` per GPU, and at
    least one per GPU), spread over the GPUs."""
    cores = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if device.startswith("cuda"):
        import torch

        gpus = max(1, torch.cuda.device_count()) if device == "cuda" else 1
        return max(gpus, min(cores, WORKERS_PER_GPU * gpus))
    return cores


def check_executor(kind: str, scheduler: str | None) -> None:
    """Refuse an unknown executor kind, or a scheduler address that does not fit the kind."""
    if kind not in EXECUTORS:
        raise UnknownNameError(f"Unknown executor {kind!r}; choose from {', '.join(sorted(EXECUTORS))}.")
    if kind == "dask" and not scheduler:
        raise ConfigError("`executor` dask needs `scheduler` ADDRESS (e.g. tcp://HOST:8786); got none.")
    if kind != "dask" and scheduler:
        raise ConfigError(f"`scheduler` {scheduler!r} is only used with `executor` dask; got `executor` {kind}.")


def make_executor(
    kind: str = "local",
    *,
    dataset: Dataset,
    device: str,
    workers: int | None = None,
    threads: int = 1,
    scheduler: str | None = None,
) -> Executor:
    """An executor of ``kind`` for ``dataset``; enter it (``with``) to start or connect.

    ``kind="local"``: ``workers`` processes on this machine (default: one per core, or per
    GPU; 1 trains in this process). ``kind="dask"``: the Dask cluster whose scheduler listens
    at ``scheduler`` (e.g. ``tcp://HOST:8786``); ``workers`` is ignored (the cluster has its
    own). ``device`` is the resolved training device ("cpu", "cuda", "cuda:N"); ``threads`` is
    torch's thread count per training. Raises ``UnknownNameError`` or ``ConfigError`` for bad
    settings, ``ClusterError`` when Dask is not installed; an unreachable scheduler raises
    ``ClusterError`` on enter.
    """
    check_executor(kind, scheduler)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"`workers` must be an integer >= 1; got {workers!r}.")
    if kind == "local":
        from hpo_lstm.executors._local import LocalExecutor

        return LocalExecutor(
            dataset=dataset, workers=workers or default_workers(device), device=device, threads=threads
        )
    try:
        from hpo_lstm.executors._dask import DaskExecutor
    except ModuleNotFoundError as exc:
        if exc.name not in ("dask", "distributed"):
            raise
        raise ClusterError(
            f"`executor` dask needs the package {exc.name!r}; install it with: pip install 'hpo-lstm[dask]'."
        ) from None
    return DaskExecutor(dataset=dataset, scheduler=str(scheduler), device=device, threads=threads)
