"""Data: load a series (built-in or CSV), split it chronologically, scale on train, window it;
its season and calendar features from its time stamps."""

from __future__ import annotations

from hpo_lstm.data._calendar import CALENDAR_FEATURES, calendar_columns, calendar_features, calendar_values
from hpo_lstm.data._folds import MAX_FOLDS, fold_of, fold_rows, with_folds
from hpo_lstm.data._season import Seasonality, infer_seasonality, resolve_season
from hpo_lstm.data._series import (
    BUILTIN_DATASETS,
    FRAME_NAME,
    MAX_GAP,
    SINE_SEED,
    Series,
    check_data_name,
    describe_builtin,
    from_wall_times,
    is_frame,
    load_series,
    step_text,
    wall_times,
    zone_times,
)
from hpo_lstm.data._windows import (
    SPLITS,
    TRANSFORMS,
    Dataset,
    check_log_domain,
    check_season_transform,
    check_transform,
    input_lag,
    level_base,
    make_dataset,
    resolve_transform,
    restore_level,
    scale_inputs,
)

__all__ = [
    "BUILTIN_DATASETS",
    "CALENDAR_FEATURES",
    "FRAME_NAME",
    "MAX_FOLDS",
    "MAX_GAP",
    "SINE_SEED",
    "SPLITS",
    "TRANSFORMS",
    "Dataset",
    "Seasonality",
    "Series",
    "calendar_columns",
    "calendar_features",
    "calendar_values",
    "check_data_name",
    "check_log_domain",
    "check_season_transform",
    "check_transform",
    "describe_builtin",
    "fold_of",
    "fold_rows",
    "infer_seasonality",
    "input_lag",
    "is_frame",
    "level_base",
    "load_series",
    "make_dataset",
    "restore_level",
    "resolve_season",
    "resolve_transform",
    "scale_inputs",
    "step_text",
    "with_folds",
    "from_wall_times",
    "wall_times",
    "zone_times",
]
