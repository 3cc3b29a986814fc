"""hpo-lstm's child processes: they die with their parent instead of running on as orphans,
and never start a study of their own while they start."""

from __future__ import annotations

import os

__all__ = ["SCRIPT_RERUN_EXIT", "SCRIPT_RERUN_MESSAGE", "exit_if_starting_child", "exit_with_parent"]

# A child process that found itself starting a study while it imported its parent's script.
SCRIPT_RERUN_EXIT = 87
SCRIPT_RERUN_MESSAGE = (
    "This script starts a study at its top level, and the processes hpo-lstm starts (to fit the "
    "statistical models; workers) import the script again: put the code that starts the study under "
    '`if __name__ == "__main__":`.'
)


def exit_if_starting_child() -> None:
    """End this process at once, with :data:`SCRIPT_RERUN_EXIT`, when it is a child process still
    importing its parent's main script: spawn and forkserver children do that before they run
    their task, and a script that starts a study at its top level (no
    ``if __name__ == "__main__":``) would start a second study there, on the same storage, instead
    of the child's task. Its parent reports :data:`SCRIPT_RERUN_MESSAGE` (hpo_lstm.baselines) or
    its workers' death (hpo_lstm.executors). ``_inheriting`` is multiprocessing's own flag for this
    phase, the one its ``_check_not_importing_main`` reads."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        os._exit(SCRIPT_RERUN_EXIT)  # (no clean-up: nothing of this process has started)


_WATCH_SECONDS = 1.0


def exit_with_parent(parent_pid: int, kernel_signal: bool) -> None:
    """Make this process die with its parent, ``parent_pid`` (a training worker with its
    driver; a baseline's fitting process with the driver's fork server, which ends with the
    driver): after a ``kill -9`` of the driver it would otherwise wait on a queue for good, or
    finish a long fit nobody reads, holding its memory and the driver's stderr.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``). The kernel
    means the parent *thread* that started this process, so the caller asks for it only when
    that thread lives as long as the parent (its main thread; a fork server's only thread).
    Everywhere, a daemon thread polls the parent's pid, which changes when the parent dies (the
    process is handed to init or a subreaper); a thread needs the GIL, which a long compiled
    call may hold, so the kernel signal is the prompt one.
    """
    import sys
    import threading
    import time

    if kernel_signal and sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # no prctl in this libc: the thread below does it
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_WATCH_SECONDS)
        os._exit(1)  # no cleanup: the parent that would receive our results is gone

    if os.getppid() != parent_pid:  # the parent died before this process got here
        os._exit(1)
    threading.Thread(target=watch, name="hpo-lstm-parent-watch", daemon=True).start()
