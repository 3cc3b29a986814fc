"""Calendar features: where each row sits in the day, the week and the year, from its time stamp.

Each feature is a pair of columns, the sine and cosine of the position in its cycle (so that
23:30 sits next to 00:00 and December next to January). Which features a series gets follows
its median step, as the seasons do (:mod:`hpo_lstm.data._season`): a feature is meaningful
only when the step is shorter than its cycle.

* sub-daily steps: time of day, day of week, day of year;
* steps of a day up to under a week (daily, business-daily, every 3 days): day of week, day of year;
* weekly up to quarterly steps: day of year;
* longer steps (yearly), irregular stamps or no time column: none.

Positions: time of day = seconds since midnight / 86400; day of week = Monday 0 .. Sunday 6,
over 7; day of year = (day of the year - 1) / the year's length (365 or 366).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CALENDAR_FEATURES", "calendar_columns", "calendar_features", "calendar_values"]

CALENDAR_FEATURES = ("time_of_day", "day_of_week", "day_of_year")
_DAY = 86400.0
_WEEK_DAYS = 6.5  # a median step of this many days or more is weekly or longer: no day of week
_QUARTER_DAYS = 92.5  # longer than a quarter: no day of year either (yearly data)


def calendar_features(times: np.ndarray | None) -> tuple[str, ...]:
    """The calendar features the time stamps ``times`` make meaningful (see the module)."""
    import pandas as pd

    if times is None or len(times) < 3:
        return ()
    steps = np.diff(pd.DatetimeIndex(times).asi8) / 1e9
    if not np.all(steps > 0):
        return ()
    days = float(np.median(steps)) / _DAY
    if days < 1:
        return CALENDAR_FEATURES
    if days < _WEEK_DAYS:
        return ("day_of_week", "day_of_year")
    if days <= _QUARTER_DAYS:
        return ("day_of_year",)
    return ()


def calendar_columns(names: tuple[str, ...] | list[str]) -> list[str]:
    """The input columns of ``names``: ``<feature>_sin``, ``<feature>_cos`` each."""
    return [f"{name}_{part}" for name in names for part in ("sin", "cos")]


def calendar_values(times: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(n, 2 * len(names)) float64: the sine and cosine of each feature's position, in the
    order of :func:`calendar_columns`."""
    import pandas as pd

    unknown = [n for n in names if n not in CALENDAR_FEATURES]
    if unknown:
        raise ValueError(f"Unknown calendar feature(s) {unknown}; known: {', '.join(CALENDAR_FEATURES)}.")
    index = pd.DatetimeIndex(times)
    seconds = (index - index.normalize()).total_seconds().to_numpy(dtype=float)
    position = {
        "time_of_day": seconds / _DAY,
        "day_of_week": index.dayofweek.to_numpy(dtype=float) / 7.0,
        "day_of_year": (index.dayofyear.to_numpy(dtype=float) - 1.0) / np.where(index.is_leap_year, 366.0, 365.0),
    }
    columns = []
    for name in names:
        angle = 2.0 * np.pi * position[name]
        columns += [np.sin(angle), np.cos(angle)]
    return np.column_stack(columns) if columns else np.zeros((len(index), 0))
