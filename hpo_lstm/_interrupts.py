"""Ctrl-C and SIGTERM as KeyboardInterrupt, not in the middle of a storage call.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside SQLAlchemy that
can be a connection being returned to its pool (SQLAlchemy then logs "Exception during reset"
with a traceback) or a weakref callback (Python prints "Exception ignored" and the interrupt is
lost: the run goes on). So while the main thread is in SQLAlchemy or an Optuna storage, the
handler holds the interrupt back: it sends the signal to the main thread again 20 ms later,
until it lands outside, where it raises KeyboardInterrupt as usual. A storage call takes
milliseconds; one that hangs (a database that stopped answering) is interrupted anyway after
``HOLD_AT_MOST`` seconds. An interrupt that still lands in a finalizer or a weakref callback
(``__del__`` of any library, or SQLAlchemy's after the hold: a slow start on a busy machine
imports it for seconds), where Python can only print "Exception ignored" and drop it, is caught
by ``sys.unraisablehook`` and sent again, so it is never lost. Code that must not be cut short
(starting a worker process: a start cut in half leaves a child that prints a traceback) holds
interrupts back the same way with :func:`held_back`. (Written by hand: neither Optuna nor
SQLAlchemy offers interrupt-safe calls, and blocking SIGINT in the main thread does not keep
Python from raising it there: the kernel then hands it to another thread, whose C handler still
has the main thread raise KeyboardInterrupt.)
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["HOLD_AT_MOST", "held_back", "interrupts_outside_storage", "raise_if_swallowed"]

# Modules whose frames an interrupt should not land in.
_HELD_IN = ("sqlalchemy", "optuna.storages")
_RETRY_SECONDS = 0.02
HOLD_AT_MOST = 2.0

_retries: list[threading.Timer] = []
_held_since: float | None = None  # when the interrupt now held back first arrived
_last_signum: int = signal.SIGINT  # of the interrupt raised last (sent again if it was dropped)
_holding = 0  # depth of held_back() blocks the main thread is in
_holding_to_the_end = 0  # of those, the ones with no time limit (held_back(to_the_end=True))
_raised = False  # an interrupt was raised as KeyboardInterrupt since the outermost block began


def _in_storage_code(frame: FrameType | None) -> bool:
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith(_HELD_IN):
            return True
        frame = frame.f_back
    return False


def _send_to_main_thread(signum: int) -> None:
    main = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and main is not None:
        signal.pthread_kill(main, signum)  # wakes a blocking wait in the main thread (EINTR)
    else:  # no pthread_kill (Windows)
        import _thread

        _thread.interrupt_main(signum)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _held_since, _last_signum, _raised
    now = time.monotonic()
    if _holding_to_the_end or (
        (_holding or _in_storage_code(frame)) and (_held_since is None or now - _held_since < HOLD_AT_MOST)
    ):
        _held_since = _held_since if _held_since is not None else now
        retry = threading.Timer(_RETRY_SECONDS, _send_to_main_thread, (signum,))
        retry.daemon = True
        _retries.append(retry)
        retry.start()
        return
    _held_since = None
    _last_signum = signum
    _raised = True
    raise KeyboardInterrupt


def raise_if_swallowed() -> None:
    """Raise KeyboardInterrupt again when one was raised in the outermost block and the command
    still goes on, in the main thread: code it landed in swallowed it (C code that clears any
    error, as ``PyObject_HasAttr`` does when it calls Python code that the interrupt cut short;
    a library's ``except BaseException``), and Python prints nothing then. Called where a
    command starts new work (after importing torch, before each batch of trainings): a Ctrl-C
    is never lost for longer than a batch."""
    if _raised and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt


def _send_again(signum: int) -> None:
    retry = threading.Timer(_RETRY_SECONDS, _send_to_main_thread, (signum,))
    retry.daemon = True
    _retries.append(retry)
    retry.start()


def _unraisable(previous: Callable[[Any], object]) -> Callable[[Any], None]:
    """A ``sys.unraisablehook`` that sends a dropped interrupt again and leaves the rest to
    ``previous``."""

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            _send_again(_last_signum)
            return
        previous(unraisable)

    return hook


def _stop_retries() -> None:
    for retry in _retries:
        retry.cancel()
    for retry in _retries:  # one may be sending right now
        retry.join()
    _retries.clear()


@contextlib.contextmanager
def held_back(*, to_the_end: bool = False) -> Iterator[None]:
    """Within this block (in the main thread), an interrupt that arrives is held back, as one in
    a storage call is, and raised once the block has ended (or after ``HOLD_AT_MOST`` seconds;
    ``to_the_end``: only when it ends, for work that always ends, such as an import).
    Only where :func:`interrupts_outside_storage` handles interrupts; elsewhere a no-op."""
    global _holding, _holding_to_the_end
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    unbounded = int(to_the_end)
    _holding += 1
    _holding_to_the_end += unbounded
    try:
        yield
    finally:
        _holding -= 1
        _holding_to_the_end -= unbounded


@contextlib.contextmanager
def interrupts_outside_storage() -> Iterator[None]:
    """Within this block (in the main thread), Ctrl-C and SIGTERM raise KeyboardInterrupt, but
    not inside a storage call. SIGTERM (``kill``, a batch system's time limit) then stops a run
    like Ctrl-C. Only default handlers are replaced: a SIGINT that is ignored (a background job)
    stays ignored, and a caller's own handlers stay in charge. They come back afterwards; an
    interrupt still held back when the block ends is raised then."""
    global _held_since, _raised
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {}
    unraisable_hook = sys.unraisablehook
    try:
        for signum, default in defaults.items():
            if signal.getsignal(signum) is default:
                previous[signum] = signal.signal(signum, _interrupt)
        if previous:
            _raised = False
            sys.unraisablehook = _unraisable(unraisable_hook)
        yield
    finally:
        try:
            if previous:  # the outermost block
                sys.unraisablehook = unraisable_hook
                _stop_retries()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        held = previous and _held_since is not None
        if previous:  # the outermost block: what it raised has been handled or goes out now
            _raised = False
        if held:
            _held_since = None
        if held and sys.exc_info()[0] is None:
            raise KeyboardInterrupt
