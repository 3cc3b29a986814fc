"""hpo-lstm: tune LSTM-family forecasters with metaheuristics, with honest evaluation.

Heavy modules (torch, mealpy, optuna) are imported lazily, so that ``hpo-lstm --help`` and
error paths stay fast.
"""

from __future__ import annotations

from hpo_lstm._errors import (
    ClusterError,
    ConfigError,
    DataError,
    HpoLstmError,
    StorageError,
    StudyFailedError,
    UnknownNameError,
)

__version__ = "0.1.0"

# The public API, imported on first use (PEP 562) so that ``import hpo_lstm`` and the CLI's
# --help stay fast: name -> module.
_LAZY = {
    "StudyConfig": "hpo_lstm.config",
    "run_study": "hpo_lstm.study",
    "StudyResult": "hpo_lstm.study",
    "CompareConfig": "hpo_lstm.compare",
    "run_compare": "hpo_lstm.compare",
    "CompareResult": "hpo_lstm.compare",
    "load_forecaster": "hpo_lstm.forecaster",
    "Forecaster": "hpo_lstm.forecaster",
    "write_run_outputs": "hpo_lstm.report",
    "rebuild_run_outputs": "hpo_lstm.report",
    "write_comparison_report": "hpo_lstm.report",
}

__all__ = [
    "ClusterError",
    "CompareConfig",
    "CompareResult",
    "ConfigError",
    "DataError",
    "Forecaster",
    "HpoLstmError",
    "StorageError",
    "StudyConfig",
    "StudyFailedError",
    "StudyResult",
    "UnknownNameError",
    "__version__",
    "load_forecaster",
    "rebuild_run_outputs",
    "run_compare",
    "run_study",
    "write_comparison_report",
    "write_run_outputs",
]


def __getattr__(name: str):  # PEP 562
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpo_lstm' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
