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

__all__ = [
    "ClusterError",
    "ConfigError",
    "DataError",
    "HpoLstmError",
    "StorageError",
    "StudyFailedError",
    "UnknownNameError",
    "__version__",
    "load_forecaster",
]


def __getattr__(name: str):  # PEP 562: load_forecaster imports its modules only when first used
    if name == "load_forecaster":
        from hpo_lstm.forecaster import load_forecaster

        return load_forecaster
    raise AttributeError(f"module 'hpo_lstm' has no attribute {name!r}")
