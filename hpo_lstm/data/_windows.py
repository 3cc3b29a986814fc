"""Chronological split, train-only scaling and windowing: a Series becomes a Dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from hpo_lstm._errors import ConfigError, DataError
from hpo_lstm.data._calendar import calendar_values
from hpo_lstm.data._season import Seasonality, infer_seasonality
from hpo_lstm.data._series import Series

__all__ = [
    "Dataset",
    "SPLITS",
    "TRANSFORMS",
    "check_log_domain",
    "check_season_transform",
    "check_transform",
    "input_lag",
    "make_dataset",
    "resolve_transform",
    "scale_inputs",
]
SPLITS = ("train", "val", "test")
# What a dataset and a saved model's card hold; a study's setting may also be "auto" (resolve_transform).
TRANSFORMS = ("diff", "level", "sdiff", "logdiff")
TRANSFORM_SETTINGS = (*TRANSFORMS, "auto")
# A split with fewer windows than this cannot train or judge a model.
MIN_WINDOWS = {"train": 16, "val": 4, "test": 4}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Windows of ``lookback`` inputs -> the target at each of the next ``horizon`` steps.

    Window ``i`` ends at row ``t`` of the series; its targets sit at rows ``t + 1 .. t + H``
    (``target_row[i]``). A window belongs to a split when all its targets lie in that split's
    rows, so every validation and test target lies strictly after every training target and
    no training window sees a validation value (with H > 1 the H - 1 windows that would
    straddle a boundary are left out). Inputs and targets are standardised with statistics of
    the training rows only, each forecast step with its own.

    With ``transform="diff"`` the inputs are the step-to-step changes of every feature and the
    target of step k is the change from the last input value (``y[t+k] - y[t]``); the forecast
    level is that change added back to the last value. A trending series (CO2) then never asks
    the network for a level outside what it saw in training.

    With ``transform="logdiff"`` the target column is taken as ``log y`` (its values must be
    above zero): its inputs are the step-to-step log changes, the other columns' the plain
    changes, and the target of step k is ``log y[t+k] - log y[t]``; the forecast level is the
    last value times ``exp`` of that change. A series whose swings scale with its level (counts,
    sales, prices, a level that falls tenfold) then asks the network for the same relative
    changes at every level.

    With ``transform="sdiff"`` (seasonal difference at lag ``season``) the inputs are the
    changes from one season before (``v[k] - v[k - season]``) and the target of step k is
    ``y[t+k] - y[t+k-season]``; the forecast level adds it back to the value one season before
    the target, which is known at the forecast origin because ``season >= horizon``.

    Calendar features (``calendar``: :mod:`hpo_lstm.data._calendar`) are extra input columns
    after the series' own, the sine and cosine of each row's own time: known at the input
    times, never differenced (a position in a cycle has no trend), standardised like the others.

    Per-window arrays with a step axis have shape ``(n_windows, horizon)``.
    """

    name: str
    feature_names: tuple[str, ...]
    target: str
    lookback: int
    horizon: int
    transform: Literal["diff", "level", "sdiff", "logdiff"]
    x: np.ndarray  # (n_windows, lookback, n_features) float32, scaled (the series' columns, then calendar ones)
    y: np.ndarray  # (n_windows, horizon) float32, scaled
    last_value: np.ndarray  # (n_windows,) target level at the last input step: the naive forecast
    actual: np.ndarray  # (n_windows, horizon) target level at each forecast step
    target_row: np.ndarray  # (n_windows, horizon) row of the series each target sits on
    times: np.ndarray  # (n_windows, horizon) time of each target (datetime64, or the row number)
    level: np.ndarray  # (n_points,) the whole target series, in its own units
    target_mean: np.ndarray  # (horizon,)
    target_scale: np.ndarray  # (horizon,)
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)  # split -> [start, stop) window index
    n_filled: int = 0  # missing values of the series filled by interpolation
    # What a saved model needs to window new data exactly as this dataset was windowed:
    input_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_inputs,) train-row statistics
    input_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n_points, n_features) raw series
    point_times: np.ndarray | None = None  # (n_points,) time stamps of the series' rows, when it has them
    fingerprint: str = ""  # SHA-256 of the loaded values, time stamps and column names: the data's identity
    notes: tuple[str, ...] = ()  # the loader's notes (values filled, irregular time steps)
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # split -> [start, stop) rows of the series
    time_column: str | None = None  # the column the time stamps came from, when there is one
    time_zone: str | None = None  # the zone the stamps were written in (they are held in UTC): Series.time_zone
    # Rolling-origin validation: the K - 1 earlier folds (hpo_lstm.data._folds); this dataset is the last.
    folds: tuple[Dataset, ...] = ()
    calendar: tuple[str, ...] = ()  # calendar features among the inputs (hpo_lstm.data._calendar)
    season: int | None = None  # the study's season (Series.season); the lag of transform "sdiff"

    def naive(self, split: str) -> np.ndarray:
        """The last-value naive forecast of every step of ``split``'s windows: (n, horizon)."""
        last = self.last_value[self.split(split)]
        return np.repeat(last[:, None], self.horizon, axis=1)

    @property
    def n_features(self) -> int:
        return self.x.shape[-1]

    def split(self, name: str) -> slice:
        start, stop = self.bounds[name]
        return slice(start, stop)

    def n_windows(self, name: str) -> int:
        start, stop = self.bounds[name]
        return stop - start

    def to_level(self, y_scaled: np.ndarray, split: str) -> np.ndarray:
        """Scaled model outputs ``(n, horizon)`` for ``split`` -> forecasts in the series' own units."""
        base = level_base(self.level, self.origins[self.split(split)], self.transform, self.season, self.horizon)
        return restore_level(y_scaled, base, self.transform, self.target_mean, self.target_scale, self.horizon)

    def seasonal_naive(self, season: int, split: str) -> np.ndarray:
        """The seasonal naive forecast of every step of ``split``'s windows: (n, horizon).

        Step k from the last input row t is the value at the same point of the last season
        known at t: row ``t + k - season * ceil(k / season)`` (one season back for k <= season,
        two for season < k <= 2 season, ...), so only known values are used for any horizon.
        """
        if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
            raise ConfigError(f"season must be an integer >= 1; got {season!r}.")
        steps = np.arange(1, self.horizon + 1)
        rows = self.target_row[self.split(split)] - season * -(-steps // season)  # (n, horizon)
        if rows.min() < 0:
            raise ConfigError(f"season {season} reaches before the start of the series.")
        return self.level[rows].astype(float)

    @property
    def seasonality(self) -> Seasonality:
        """The seasons the time stamps give (:func:`hpo_lstm.data.infer_seasonality`)."""
        return infer_seasonality(self.point_times)

    @property
    def origins(self) -> np.ndarray:
        """(n_windows,) the last input row of each window: the row its forecast is made from."""
        return self.target_row[:, 0] - 1


def level_base(level: np.ndarray, origins: Any, transform: str, season: int | None, horizon: int) -> np.ndarray:
    """What a forecast's change is added to, per window whose last input row is ``origins``
    (a row or an array of rows) of the target's ``level``: diff, the last value (batch,);
    logdiff too; sdiff, the value one season before each step (batch, horizon); level, nothing (zeros).
    The one rule for the study (:meth:`Dataset.to_level`) and the saved model's forecasts."""
    origins = np.asarray(origins)
    if transform in ("diff", "logdiff"):
        return np.asarray(level[origins], dtype=float)
    if transform == "sdiff":
        return np.asarray(level[origins[..., None] + np.arange(1, horizon + 1) - int(season)], dtype=float)
    return np.zeros(origins.shape)


def restore_level(
    y_scaled: np.ndarray, base: np.ndarray, transform: str, target_mean: float, target_scale: float, horizon: int
) -> np.ndarray:
    """Scaled model outputs (batch, horizon) -> forecasts in the series' units: unscaled, then
    added to ``base`` (:func:`level_base`) for the diff and sdiff transforms, or ``base`` times
    ``exp`` of it for logdiff."""
    change_or_level = np.asarray(y_scaled, dtype=float).reshape(-1, horizon) * target_scale + target_mean
    if transform == "logdiff":
        return np.asarray(base, dtype=float)[:, None] * np.exp(change_or_level)
    if transform == "diff":
        return np.asarray(base, dtype=float)[:, None] + change_or_level
    if transform == "sdiff":
        return np.asarray(base, dtype=float) + change_or_level
    return change_or_level


def check_transform(transform: str) -> None:
    """The rule for a study's ``transform`` setting (checked here only; :class:`hpo_lstm.StudyConfig` calls it)."""
    if transform not in TRANSFORM_SETTINGS:
        raise ConfigError(f"Unknown transform {transform!r}; choose from {', '.join(TRANSFORM_SETTINGS)}.")


def resolve_transform(transform: str, level: np.ndarray) -> str:
    """The transform a study's setting means for the target column ``level``: "auto" is
    ``logdiff`` when every value of the column is above zero (a quantity, a count, a price),
    else ``diff``; any other setting is itself."""
    if transform != "auto":
        return transform
    level = np.asarray(level, dtype=float)
    return "logdiff" if len(level) and bool(np.all(level > 0)) else "diff"


def input_lag(transform: str, season: int | None = None) -> int:
    """Rows a window reads before its first input: 1 for ``diff`` and ``logdiff``, ``season`` for ``sdiff``,
    0 for ``level``."""
    return {"diff": 1, "logdiff": 1, "level": 0}.get(transform, season or 0)


def check_season_transform(transform: str, season: int | None, horizon: int) -> None:
    """``sdiff`` needs a season of at least the horizon: the value one season before forecast
    step k (k <= horizon) must be known at the forecast origin."""
    if transform != "sdiff":
        return
    if season is None:
        raise ConfigError(
            "transform 'sdiff' (seasonal difference) needs a season, and the data gives none (no time column, or "
            "yearly or irregular time stamps); set one with `season`."
        )
    if season < horizon:
        raise ConfigError(
            f"transform 'sdiff' needs season >= horizon (the value one season before each forecast step must be "
            f"known when forecasting); got season {season}, horizon {horizon}."
        )


def scale_inputs(
    values: np.ndarray,
    transform: str,
    mean: np.ndarray,
    scale: np.ndarray,
    *,
    season: int | None = None,
    calendar: np.ndarray | None = None,
    target_column: int = 0,
) -> np.ndarray:
    """Raw rows (n, n_features) -> the network's scaled input rows (float32).

    ``diff``: row k holds ``v[k] - v[k-1]`` (row 0, which has no predecessor, holds zeros and is
    never read by a window); ``logdiff``: the same with ``log v`` in column ``target_column`` (the
    target's, whose values must be above zero); ``sdiff``: ``v[k] - v[k - season]`` (the first ``season`` rows hold
    zeros, never read); ``level``: the values themselves. ``calendar`` (n, C), the rows'
    calendar columns, follows undifferenced. Then standardised with the training rows' ``mean``
    and ``scale``. The one rule shared by training and forecasting.
    """
    inputs = _raw_inputs(values, input_lag(transform, season), calendar, _log_column(transform, target_column))
    return ((inputs - mean) / scale).astype(np.float32)


def make_dataset(
    series: Series,
    *,
    lookback: int,
    horizon: int = 1,
    split: tuple[float, float, float] = (0.7, 0.15, 0.15),
    transform: str = "diff",
) -> Dataset:
    """Window ``series`` into a :class:`Dataset` (see its docstring for the exact rules).

    The series' ``calendar`` features join the inputs; its ``season`` is the lag of ``sdiff``;
    ``transform`` "auto" is resolved by :func:`resolve_transform` on the target column."""
    check_transform(transform)
    transform = resolve_transform(transform, series.values[:, series.target_index])
    if lookback < 1 or horizon < 1:
        raise ConfigError(f"lookback and horizon must be >= 1; got lookback={lookback}, horizon={horizon}.")
    check_season_transform(transform, series.season, horizon)
    if series.calendar and series.times is None:
        raise ConfigError(f"Calendar features {list(series.calendar)} need time stamps; the series has none.")
    values = series.values
    n_points = len(values)
    n_train = int(round(n_points * split[0]))
    n_val = int(round(n_points * split[1]))
    lag = input_lag(transform, series.season)

    # Window i: inputs end at row t, targets at rows t + 1 .. t + horizon. "diff" needs one row
    # before the first input to take a change from, "sdiff" a season of rows. A window belongs
    # to the split holding all its targets; with horizon > 1 the windows straddling a boundary
    # are left out.
    first_t = lookback - 1 + lag
    t_all = np.arange(first_t, n_points - horizon)
    first_target, last_target = t_all + 1, t_all + horizon
    split_of = {
        "train": last_target < n_train,
        "val": (first_target >= n_train) & (last_target < n_train + n_val),
        "test": first_target >= n_train + n_val,
    }
    counts = {s: int(np.sum(split_of[s])) for s in SPLITS}
    t = t_all[split_of["train"] | split_of["val"] | split_of["test"]]
    target_row = t[:, None] + np.arange(1, horizon + 1)[None, :]  # (n_windows, horizon)
    short = [s for s in SPLITS if counts[s] < MIN_WINDOWS[s]]
    if short:
        needed = ", ".join(f"{s} >= {MIN_WINDOWS[s]}" for s in SPLITS)
        got = ", ".join(f"{s}={counts[s]}" for s in SPLITS)
        lag_text = f" (and transform sdiff's season {series.season})" if transform == "sdiff" else ""
        raise DataError(
            f"Too few rows: {n_points} rows with lookback={lookback}{lag_text}, horizon={horizon} and split "
            f"{tuple(split)} give windows {got}; need {needed}. Use a shorter lookback or more data."
        )

    target_col = series.target_index
    level = values[:, target_col]
    calendar = calendar_values(series.times, series.calendar) if series.calendar else None
    inputs = _raw_inputs(values, lag, calendar, _log_column(transform, target_col))  # as scale_inputs, unscaled
    fit_rows = slice(lag, n_train)
    if transform == "logdiff":
        target_raw = np.log(level[target_row]) - np.log(level[t])[:, None]
    elif transform == "diff":
        target_raw = level[target_row] - level[t][:, None]
    elif transform == "sdiff":
        target_raw = level[target_row] - level[target_row - lag]
    else:
        target_raw = level[target_row]
    in_train = target_row[:, -1] < n_train

    mean = inputs[fit_rows].mean(axis=0)
    scale = inputs[fit_rows].std(axis=0)
    n_own = values.shape[1]
    constant = [series.feature_names[j] for j in np.flatnonzero(scale[:n_own] == 0)]
    if constant:
        what = "changes" if lag else "values"
        raise DataError(
            f"Column(s) {constant} are constant over the training rows (their {what} have zero spread); "
            "a constant series cannot be scaled or learned."
        )
    # A calendar column the training rows hold constant (the sine of time of day at 12-hour
    # steps) carries nothing; scale 1 keeps it a harmless constant instead of a division by zero.
    scale[n_own:] = np.where(scale[n_own:] == 0, 1.0, scale[n_own:])
    target_mean = target_raw[in_train].mean(axis=0)
    target_scale = target_raw[in_train].std(axis=0)
    if np.any(target_scale == 0):
        raise DataError(f"Target {series.target!r} is constant over the training windows; nothing to learn.")

    scaled = ((inputs - mean) / scale).astype(np.float32)  # as scale_inputs
    windows = np.lib.stride_tricks.sliding_window_view(scaled, lookback, axis=0)  # (n - L + 1, F, L)
    x = np.ascontiguousarray(windows[t - lookback + 1].transpose(0, 2, 1))
    y = ((target_raw - target_mean) / target_scale).astype(np.float32)
    times = series.times[target_row] if series.times is not None else target_row.copy()  # (n_windows, horizon)

    bounds, start = {}, 0
    for s in SPLITS:
        bounds[s] = (start, start + counts[s])
        start += counts[s]
    return Dataset(
        name=series.name,
        feature_names=series.feature_names,
        target=series.target,
        lookback=lookback,
        horizon=horizon,
        transform=transform,  # type: ignore[arg-type]
        x=x,
        y=y,
        last_value=level[t].astype(float),
        actual=level[target_row].astype(float),
        target_row=target_row,
        times=times,
        target_mean=target_mean,
        target_scale=target_scale,
        bounds=bounds,
        level=level.astype(float),
        n_filled=series.n_filled,
        input_mean=mean,
        input_scale=scale,
        values=values,
        point_times=series.times,
        fingerprint=series_fingerprint(series),
        notes=series.notes,
        rows={"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n_points)},
        time_column=series.time_column,
        time_zone=series.time_zone,
        calendar=tuple(series.calendar),
        season=series.season,
    )


def check_log_domain(target: np.ndarray) -> None:
    """Transform logdiff reads the log of the target: every value of ``target`` (a column of
    the data, counted from its first row) must be above zero; else a one-line DataError."""
    target = np.asarray(target, dtype=float)
    bad = np.flatnonzero(~(target > 0))
    if len(bad):
        raise DataError(
            f"Transform logdiff needs target values above zero; row {int(bad[0])} of the data holds "
            f"{target[bad[0]]:g} (a series that reaches zero or below needs transform diff)."
        )


def _log_column(transform: str, target_column: int) -> int | None:
    """The column :func:`_raw_inputs` takes the log of: the target's under ``logdiff``, else none."""
    return target_column if transform == "logdiff" else None


def _raw_inputs(values: np.ndarray, lag: int, calendar: np.ndarray | None, log_column: int | None = None) -> np.ndarray:
    """The unscaled input rows of :func:`scale_inputs` (float64)."""
    values = np.asarray(values, dtype=float)
    if log_column is not None:
        check_log_domain(values[:, log_column])
        values = values.copy()
        values[:, log_column] = np.log(values[:, log_column])
    inputs = np.vstack([np.zeros((lag, values.shape[1])), values[lag:] - values[:-lag]]) if lag else values
    if calendar is not None and calendar.shape[1]:
        inputs = np.hstack([inputs, np.asarray(calendar, dtype=float)])
    return inputs


def series_fingerprint(series: Series) -> str:
    """SHA-256 of a loaded series: its values (as float64), time stamps and column names.

    The data is part of a study's identity: a CSV edited in place gives another fingerprint,
    and a study recorded on the old values is not resumed on the new ones."""
    import hashlib

    digest = hashlib.sha256()
    digest.update("\x1f".join((series.target, *series.feature_names)).encode())
    digest.update(np.ascontiguousarray(series.values, dtype=np.float64).tobytes())
    if series.times is not None:
        digest.update(np.ascontiguousarray(series.times).astype("datetime64[ns]").astype(np.int64).tobytes())
    return digest.hexdigest()
