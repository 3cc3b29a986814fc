"""Data: load a series (built-in or CSV), split it chronologically, scale on train, window it."""

from __future__ import annotations

from hpo_lstm.data._series import (
    BUILTIN_DATASETS,
    MAX_GAP,
    SINE_SEED,
    Series,
    check_data_name,
    describe_builtin,
    load_series,
)
from hpo_lstm.data._windows import SPLITS, TRANSFORMS, Dataset, check_transform, make_dataset

__all__ = [
    "BUILTIN_DATASETS",
    "MAX_GAP",
    "SINE_SEED",
    "SPLITS",
    "TRANSFORMS",
    "Dataset",
    "Series",
    "check_data_name",
    "check_transform",
    "describe_builtin",
    "load_series",
    "make_dataset",
]
