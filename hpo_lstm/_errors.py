"""Exception hierarchy: every error inherits from HpoLstmError and from the matching built-in."""

from __future__ import annotations


class HpoLstmError(Exception):
    """Base of every error hpo-lstm raises on purpose."""


class ConfigError(HpoLstmError, ValueError):
    """A setting (flag, study file, search space, optimizer option) breaks a rule."""


class DataError(HpoLstmError, ValueError):
    """The data cannot be loaded or does not fit the study (columns, length, gaps)."""


class StorageError(HpoLstmError, RuntimeError):
    """The study storage cannot be opened or disagrees with the study being run."""


class UnknownNameError(HpoLstmError, KeyError):
    """A name (optimizer, model, dataset) is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes.
        return str(self.args[0]) if self.args else ""


class StudyFailedError(HpoLstmError, RuntimeError):
    """A study finished without a single usable evaluation."""


class ClusterError(HpoLstmError, RuntimeError):
    """The Dask cluster cannot be reached or cannot run hpo-lstm's trainings."""


class WorkerStartError(HpoLstmError, RuntimeError):
    """The local pool's worker processes die before they can train anything."""


def first_line(exc: BaseException) -> str:
    """An exception's message, first line only (or its type's name), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def setting_text(value: object) -> str:
    """A setting's value in a message that compares two runs' settings: an unset one (None, the
    default then) says "default", not None."""
    return "default" if value is None else repr(value)
