"""The local executor: train in this process, or in a pool of worker processes on this machine.

Worker processes are started with "spawn" (safe with torch's OpenMP threads and with CUDA),
read the dataset once, from a file the pool's initializer names, run one torch thread each,
and start with glibc malloc settings that keep freed memory mapped (measured in docs/design.md:
up to 30% faster steps for small models).

A worker that dies (the kernel's out-of-memory killer, a signal) breaks the whole process
pool. The local executor then trains the batch's unfinished candidates one at a time in a fresh
pool, so the candidate that kills its worker is found: it gets a second try, alone, and if it
kills that worker too it becomes a failure message (a FAIL trial), like Dask's KilledWorker.
Every other candidate trains normally, so the trials are the same as without the crash.

Several threads may share one executor (a comparison runs a few cells at once, so that one
cell's last long training never leaves the other cores idle): submitting a batch, replacing a
broken pool and finding a culprit are done under one lock, and :meth:`LocalExecutor.interrupt`
stops every thread's batch at once (each ``map`` then raises KeyboardInterrupt in its thread).

A driver that dies (``kill -9``, the out-of-memory killer) takes its workers with it: each
worker asks the kernel for SIGKILL when its parent dies (Linux), and watches its parent's pid
from a thread (everywhere). The multiprocessing resource tracker then sees its pipe close and
exits too. The dead driver's temporary folder (the dataset file) is removed by the next local
executor that starts: each folder names its driver in ``driver.pid``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hpo_lstm._errors import WorkerStartError
from hpo_lstm._orphans import exit_with_parent
from hpo_lstm.data import Dataset
from hpo_lstm.jobs import TrainJob, dispatch_order

__all__ = ["KILLS_TO_FAIL", "LocalExecutor", "TEMP_PREFIX", "WORKER_MALLOC_ENV", "remove_stale_folders"]

# glibc reads these at process start: mmap only huge blocks, never trim the heap, and grow
# it in 256 MiB steps, so the allocator stops returning and re-faulting pages every step.
WORKER_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "68719476736",
    "MALLOC_TOP_PAD_": "268435456",
}

_worker_dataset: Dataset | None = None
_worker_device: str | None = None
_worker_started: Any = None

# A candidate that kills its worker this many times in a row, training alone, is a failure.
KILLS_TO_FAIL = 2

# The executor's temporary folders: tempfile.gettempdir()/hpo-lstm-XXXX/{driver.pid, dataset.pickle}.
TEMP_PREFIX = "hpo-lstm-"
_DRIVER_FILE = "driver.pid"
# How often a worker's watcher thread checks that its driver is alive (seconds).


def remove_stale_folders(folder: str | None = None) -> list[str]:
    """Remove the temporary folders of local executors whose driver died without cleaning up
    (``kill -9``): ``hpo-lstm-*`` folders in ``folder`` (default: the temporary folder) that
    are this user's, name a driver of this machine in ``driver.pid``, and whose driver is no
    longer running. A folder without ``driver.pid`` (being created, or made by an earlier
    hpo-lstm) is left alone. Returns the folders removed."""
    import shutil
    import tempfile

    removed = []
    try:
        entries = list(Path(folder or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"))
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.is_dir() or entry.is_symlink() or entry.stat().st_uid != os.getuid():
                continue
            pid_text, _, host = (entry / _DRIVER_FILE).read_text().partition("\n")
            pid = int(pid_text)
        except (OSError, ValueError):  # no driver.pid (yet), unreadable, or gone meanwhile
            continue
        if host.strip() != socket.gethostname() or pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(str(entry))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process (PermissionError): alive
        pass
    return True


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread for the block: a worker process started in it inherits the
    mask, so Ctrl-C cannot interrupt its start (the driver gets a pending Ctrl-C when the block
    ends). The driver's other threads do not block it, and a Ctrl-C the kernel hands to one of
    them still makes the main thread raise KeyboardInterrupt, which would cut a start in half
    (the child then prints an EOFError traceback): so the interrupt is also held back until the
    block ends (:func:`hpo_lstm._interrupts.held_back`); where signal masks do not exist, only that."""
    import signal

    from hpo_lstm._interrupts import held_back

    masks = hasattr(signal, "pthread_sigmask")
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if masks else None
    try:
        with held_back():
            yield
    finally:
        if masks:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _init_worker(
    dataset_file: str,
    threads: int,
    device: str,
    counter: Any,
    started: Any,
    driver_pid: int = 0,
    kernel_signal: bool = False,
) -> None:
    import pickle
    import signal

    # Ctrl-C reaches the whole process group; only the driver handles it (and stops us). The
    # driver started this process with SIGINT blocked (_sigint_blocked), so a Ctrl-C while it
    # imported torch stayed pending instead of printing a KeyboardInterrupt traceback: ignore
    # SIGINT, then unblock it (a pending one is dropped).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if driver_pid:
        exit_with_parent(driver_pid, kernel_signal)
    import torch

    global _worker_dataset, _worker_device, _worker_started
    torch.set_num_threads(threads)
    with open(dataset_file, "rb") as handle:  # written by this executor in its private folder
        _worker_dataset = pickle.load(handle)
    _worker_started = started
    if device == "cuda":
        with counter.get_lock():
            rank = counter.value
            counter.value += 1
        _worker_device = f"cuda:{rank % max(1, torch.cuda.device_count())}"
    else:
        _worker_device = None


def _run_in_worker(job: TrainJob) -> Any:
    from hpo_lstm.jobs import run_job

    assert _worker_dataset is not None, "worker was not initialised"
    with _worker_started.get_lock():
        _worker_started.value += 1
    if _worker_device is not None:
        from dataclasses import replace

        job = replace(job, settings=replace(job.settings, device=_worker_device))
    return run_job(job, _worker_dataset)


class LocalExecutor:
    """Train jobs in this process (``workers=1``) or in a pool of ``workers`` processes."""

    def __init__(self, *, dataset: Dataset, workers: int, device: str, threads: int = 1) -> None:
        self.dataset = dataset
        self.workers = workers
        self.device = device
        self.threads = threads
        self._pool: Any = None
        self._folder: Any = None
        self._lock = threading.RLock()  # submission, pool replacement and crash recovery
        self._stopping = False

    def __enter__(self) -> LocalExecutor:
        remove_stale_folders()  # left by drivers that were killed (kill -9) before removing theirs
        if self.workers > 1:
            import multiprocessing
            import pickle
            import tempfile

            # Workers inherit the environment when they start (and restart); taken back on exit.
            self._added_env = {k: v for k, v in WORKER_MALLOC_ENV.items() if k not in os.environ}
            os.environ.update(self._added_env)
            self._context = multiprocessing.get_context("spawn")
            # The dataset reaches the workers as a file, not inside the spawn arguments: the
            # parent writes those into a pipe, and blocks for good if a worker dies before
            # reading more than the pipe holds (a script without ``if __name__ == "__main__"``).
            self._folder = tempfile.TemporaryDirectory(prefix=TEMP_PREFIX)
            with open(os.path.join(self._folder.name, _DRIVER_FILE), "w") as handle:  # see remove_stale_folders
                handle.write(f"{os.getpid()}\n{socket.gethostname()}\n")
            self._dataset_file = os.path.join(self._folder.name, "dataset.pickle")
            with open(self._dataset_file, "wb") as handle:
                pickle.dump(self.dataset, handle, protocol=pickle.HIGHEST_PROTOCOL)
            self._rank = self._context.Value("i", 0)
            self._started = self._context.Value("q", 0)
            self._pool = self._new_pool(self.workers)
        return self

    def _new_pool(self, workers: int) -> Any:
        from concurrent.futures import ProcessPoolExecutor

        # PR_SET_PDEATHSIG (hpo_lstm._orphans) ties a worker to the thread that started it: only
        # the main thread lives as long as the process. A pool made in another thread (replacing
        # a broken one in a cell thread) uses the watcher thread alone.
        main_thread = threading.current_thread() is threading.main_thread()
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(
                self._dataset_file,
                self.threads,
                self.device,
                self._rank,
                self._started,
                os.getpid(),
                main_thread,
            ),
        )
        if main_thread:
            # Start every worker now, from this thread: the pool starts one per submit while
            # none is idle, and a comparison's cell threads submit too; a worker they started
            # would die with its thread. (Each submit starts one at once; a worker needs far
            # longer to come up and go idle than these submits take.)
            with _sigint_blocked():
                for _ in range(workers):
                    pool.submit(os.getpid)
        return pool

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._pool is None:
            return
        if exc_type is not None:
            self._stop_pool()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        self._folder.cleanup()
        for key in self._added_env:
            os.environ.pop(key, None)

    def _stop_pool(self) -> None:
        """Stop the pool without waiting for trainings still running. The pool has no public
        way to stop busy workers before Python 3.14 (terminate_workers)."""
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.terminate()
        # Not cancel_futures: a future cancelled by shutdown never wakes a thread waiting on it in
        # as_completed (CPython gh-87893), which a comparison's cell thread may be; the pool fails
        # every pending future with BrokenProcessPool instead, which does.
        self._pool.shutdown(wait=False, cancel_futures=False)

    def interrupt(self) -> None:
        """Stop every batch in flight, from any thread: the trainings are abandoned (their
        workers terminated) and each ``map`` raises KeyboardInterrupt in the thread that
        called it, as Ctrl-C does in a single study. The executor trains nothing afterwards."""
        self._stopping = True
        if self._pool is not None:
            self._stop_pool()

    def _check_stopping(self) -> None:
        if self._stopping:
            raise KeyboardInterrupt

    def map(self, jobs: Sequence[TrainJob]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index into jobs, outcome)`` as each job finishes."""
        self._check_stopping()
        if self._pool is None:
            from hpo_lstm.jobs import run_job

            for index in dispatch_order(jobs, 1):
                yield index, run_job(jobs[index], self.dataset)
            return
        from concurrent.futures import CancelledError, as_completed
        from concurrent.futures.process import BrokenProcessPool

        def submit_all() -> dict[Any, int]:
            order = dispatch_order(jobs, self.workers)
            with _sigint_blocked():  # (a submit may start a worker)
                return {self._pool.submit(_run_in_worker, jobs[index]): index for index in order}

        with self._lock:
            self._check_stopping()
            try:
                futures = submit_all()
            except (BrokenProcessPool, RuntimeError):  # a worker died between batches (or the pool was stopped)
                self._check_stopping()
                self._replace_pool(self.workers)
                futures = submit_all()
        done: set[int] = set()
        try:
            for future in as_completed(futures):
                outcome = future.result()
                done.add(futures[future])
                yield futures[future], outcome
            return
        except (BrokenProcessPool, CancelledError):
            self._check_stopping()
        # A worker died and took the pool with it (and the batches of other threads sharing it:
        # each trains its unfinished candidates again one at a time, under the lock; slow, but
        # a crash is rare and every trial stays the same). Keep what finished; find the culprit
        # by training the rest one at a time.
        with self._lock:
            for future, index in futures.items():
                if index not in done and future.done() and not future.cancelled() and future.exception() is None:
                    done.add(index)
                    yield index, future.result()
            for index in dispatch_order(jobs, 1):
                if index not in done:
                    self._check_stopping()
                    yield index, self._run_alone(jobs[index])
            self._check_stopping()
            self._replace_pool(self.workers)

    def _replace_pool(self, workers: int) -> None:
        self._stop_pool()
        self._pool = self._new_pool(workers)
        if self._stopping:  # interrupt() ran meanwhile, and may have stopped the old pool only
            self._stop_pool()
            raise KeyboardInterrupt

    def _run_alone(self, job: TrainJob) -> Any:
        """Train ``job`` in a fresh one-worker pool; a failure message if it kills its worker
        ``KILLS_TO_FAIL`` times."""
        from concurrent.futures import CancelledError
        from concurrent.futures.process import BrokenProcessPool

        for _ in range(KILLS_TO_FAIL):
            self._replace_pool(1)
            started = self._started.value
            try:
                with _sigint_blocked():
                    future = self._pool.submit(_run_in_worker, job)
                return future.result()
            except BrokenProcessPool:  # (a RuntimeError too: caught first)
                self._check_stopping()
                if self._started.value == started:
                    raise WorkerStartError(
                        "hpo-lstm's worker processes die before they can train (an error above this line, if "
                        "any, says why). From a Python script, put the code that starts a study under "
                        '`if __name__ == "__main__":` (workers are started with spawn and import the script again).'
                    ) from None
            except (CancelledError, RuntimeError):
                self._check_stopping()  # interrupted: the pool was stopped under us
                raise
        return (
            f"WorkerDied: the training killed its worker process {KILLS_TO_FAIL} times in a row, alone "
            "(the kernel kills a process that runs out of memory; try a smaller hidden_size or n_layers bound)"
        )
