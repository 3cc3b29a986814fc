"""hpo-lstm reports through its own progress display; the libraries under it stay quiet."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO messages ("A new study created ...") for the block, then restore.

    Counted across threads: a comparison opens its cells' studies in several threads at once,
    and the first block to end must not restore INFO while another is still inside its own."""
    import optuna

    global _saved_verbosity, _depth
    with _lock:
        if _depth == 0:
            _saved_verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                optuna.logging.set_verbosity(_saved_verbosity)


_lock = threading.Lock()
_depth = 0
_saved_verbosity = 0
