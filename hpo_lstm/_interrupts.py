"""Ctrl-C and SIGTERM as KeyboardInterrupt, never in the middle of a storage call.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside SQLAlchemy that
can be a connection being returned to its pool (SQLAlchemy then logs "Exception during reset"
with a traceback) or a weakref callback (Python prints "Exception ignored" and the interrupt is
lost: the run goes on). So while the main thread is in SQLAlchemy or an Optuna storage, the
handler leaves the interrupt for a moment later: it sends the signal to the main thread again
shortly, until it lands outside, where it raises KeyboardInterrupt as usual. A storage call
takes milliseconds, so a stop is not noticeably later. (Written by hand: neither Optuna nor
SQLAlchemy offers interrupt-safe calls.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["interrupts_outside_storage"]

# Modules whose frames an interrupt must not land in.
_HELD_IN = ("sqlalchemy", "optuna.storages")
_RETRY_SECONDS = 0.02
_retries: list[threading.Timer] = []


def _in_storage_code(frame: FrameType | None) -> bool:
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith(_HELD_IN):
            return True
        frame = frame.f_back
    return False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _in_storage_code(frame):
        main = threading.main_thread().ident
        assert main is not None  # handlers run in the main thread, which has started
        retry = threading.Timer(_RETRY_SECONDS, signal.pthread_kill, (main, signum))
        retry.daemon = True
        _retries.append(retry)
        retry.start()
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_outside_storage() -> Iterator[None]:
    """Within this block (in the main thread), Ctrl-C and SIGTERM raise KeyboardInterrupt,
    but never inside a storage call. SIGTERM (``kill``, a batch system's time limit) then stops
    a run like Ctrl-C. A SIGINT that is ignored (a background job) stays ignored. The previous
    handlers come back afterwards; an interrupt still waiting for a storage call to end when
    the block ends is dropped (the work it would have stopped is done)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if current is _interrupt or (signum == signal.SIGINT and current is not signal.default_int_handler):
            continue  # already ours (nested), or SIGINT ignored or handled by the caller
        previous[signum] = signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        if previous:  # the outermost block
            for retry in _retries:
                retry.cancel()
            _retries.clear()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
