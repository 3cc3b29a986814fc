"""The season of a series, read from its time stamps: how many steps make a day, a week, a year.

The rules are the usual calendar ones (Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice*, section "Time series patterns"): half-hourly data repeats every 48 steps (a day) and
336 (a week), hourly every 24 and 168, daily every 7, business-daily every 5, weekly every 52,
monthly every 12, quarterly every 4; yearly data has no season. The step is the median step, so
a series with a few gaps (or weekends left out: business days, season 5) is still classified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Seasonality", "infer_seasonality", "resolve_season"]

_DAY = 86400.0


@dataclass(frozen=True)
class Seasonality:
    """What the time stamps say: the seasons (shortest first) and the step in words."""

    seasons: tuple[int, ...]  # e.g. (48, 336) for half-hourly data; () when none is known
    frequency: str  # "half-hourly", "monthly", "every 7 minutes", "irregular", ...

    @property
    def season(self) -> int | None:
        """The shortest season (the daily cycle of sub-daily data), or None."""
        return self.seasons[0] if self.seasons else None

    def describe(self) -> str:
        """ "monthly: season 12", "half-hourly: seasons 48 and 336", "yearly: no season"."""
        if not self.seasons:
            return f"{self.frequency}: no season"
        if len(self.seasons) == 1:
            return f"{self.frequency}: season {self.seasons[0]}"
        return f"{self.frequency}: seasons {' and '.join(map(str, self.seasons))}"


def infer_seasonality(times: np.ndarray | None) -> Seasonality:
    """The seasons of a series whose rows have the time stamps ``times`` (datetime64).

    ``None`` (no time column: the rows are only numbered) or fewer than 3 stamps give no season.
    """
    import pandas as pd

    if times is None or len(times) < 3:
        return Seasonality((), "no time column")
    index = pd.DatetimeIndex(times)
    steps = np.diff(index.asi8) / 1e9  # seconds
    if len(steps) == 0 or not np.all(steps > 0):
        return Seasonality((), "irregular")
    step = float(np.median(steps))
    if step < _DAY:
        if _DAY % step == 0:
            per_day = int(_DAY // step)
            seasons = (per_day, 7 * per_day) if per_day > 1 else ()
            return Seasonality(seasons, _sub_daily_name(step))
        return Seasonality((), f"every {_seconds_text(step)}")
    days = step / _DAY
    if days == 1:
        weekends = np.isin(index.dayofweek, (5, 6)).any()
        return Seasonality((7,), "daily") if weekends else Seasonality((5,), "business-daily")
    for low, high, seasons, name in _LONG_STEPS:
        if low <= days <= high:
            return Seasonality(seasons, name)
    return Seasonality((), f"every {days:g} days")


# Median step in days -> seasons. Months are 28-31 days, quarters 89-92, years 365-366.
_LONG_STEPS = (
    (6.5, 7.5, (52,), "weekly"),
    (27.5, 31.5, (12,), "monthly"),
    (88.5, 92.5, (4,), "quarterly"),
    (364.5, 366.5, (), "yearly"),
)


def _sub_daily_name(step: float) -> str:
    return {1800.0: "half-hourly", 3600.0: "hourly"}.get(step, f"every {_seconds_text(step)}")


def _seconds_text(seconds: float) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"


def resolve_season(season: int | None, times: np.ndarray | None, *, time_column: str | None = None) -> dict:
    """The season a study uses and where it came from, as summary.json records it.

    ``season`` (the setting) wins; otherwise the shortest season the time stamps give. Returns
    ``{"season": int or None, "source": "setting" | "time column" | "none", "frequency": ...,
    "inferred": [all seasons the time stamps give], "text": one line for headers}``.
    """
    seasonality = infer_seasonality(times)
    inferred = list(seasonality.seasons)
    where = f"time column {time_column!r}" if time_column else "the time column"
    if season is not None:
        text = f"season {season} (set)" + (f"; {where} says {seasonality.describe()}" if times is not None else "")
        return {
            "season": int(season),
            "source": "setting",
            "frequency": seasonality.frequency,
            "inferred": inferred,
            "text": text,
        }
    if seasonality.season is not None:
        return {
            "season": seasonality.season,
            "source": "time column",
            "frequency": seasonality.frequency,
            "inferred": inferred,
            "text": f"season {seasonality.season}, inferred from {where} ({seasonality.describe()})",
        }
    reason = "no time column" if times is None else f"{where} says {seasonality.describe()}"
    return {
        "season": None,
        "source": "none",
        "frequency": seasonality.frequency,
        "inferred": inferred,
        "text": f"no season ({reason}; set one with --season N)",
    }
