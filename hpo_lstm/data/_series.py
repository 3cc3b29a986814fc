"""Loading a series: built-in datasets (shipped in the package) and user CSV files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hpo_lstm._errors import ConfigError, DataError, UnknownNameError

__all__ = [
    "BUILTIN_DATASETS",
    "FRAME_NAME",
    "MAX_GAP",
    "Series",
    "check_data_name",
    "is_frame",
    "load_series",
    "step_text",
    "from_wall_times",
    "wall_times",
    "zone_times",
]

# Longest run of missing values that is filled by interpolation; longer gaps are refused,
# since a straight line across them would be invented data.
MAX_GAP = 10
# Largest magnitude a value may have: the scaler squares them (a variance), and 1e154 squared
# overflows float64.
MAX_ABS_VALUE = 1e150


@dataclass(frozen=True)
class Series:
    """A loaded series: ``values[:, target_index]`` is forecast from all ``values`` columns."""

    name: str
    values: np.ndarray  # (n_points, n_features), float64, no NaN
    feature_names: tuple[str, ...]
    target: str
    times: np.ndarray | None  # datetime64 or None (then the row number is the time)
    n_filled: int = 0  # missing values filled by interpolation
    notes: tuple[str, ...] = ()  # what loading changed or found: values filled, irregular time steps
    time_column: str | None = None  # the column the time stamps came from
    # The time zone the time stamps were written in ("UTC+05:30", "UTC", ...): they are held in
    # UTC without a zone, and forecasts are written back in this zone. None: no zone given.
    time_zone: str | None = None
    # Set by the study once the data is known (hpo_lstm.study.prepare_dataset), read by make_dataset:
    calendar: tuple[str, ...] = ()  # calendar features the windows add (hpo_lstm.data._calendar)
    season: int | None = None  # the study's season (setting or inferred): the lag of transform "sdiff"

    @property
    def target_index(self) -> int:
        return self.feature_names.index(self.target)

    @property
    def target_values(self) -> np.ndarray:
        return self.values[:, self.target_index]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class _Builtin:
    summary: str
    load: Callable[[], Series]


# The sine's noise is part of the dataset, not of a study: every study (and every seed of a
# comparison) sees the same series, so seeds vary the search and the training only.
SINE_SEED = 0


def _load_co2() -> Series:
    import pandas as pd

    with resources.files("hpo_lstm.data").joinpath("co2.csv").open("r") as fh:
        frame = pd.read_csv(fh, comment="#", parse_dates=["date"])
    # The record has one 18-week gap (1964); the built-in data is known, so it is filled.
    return _from_frame(frame, name="co2", target="co2", features=None, time_column="date", max_gap=18)


def _make_sine() -> Series:
    # The noisy sine of the R tutorials: sin(0.1 t) + N(0, 0.1), t = 0..2999.
    rng = np.random.default_rng(SINE_SEED)
    t = np.arange(3000, dtype=float)
    y = np.sin(0.1 * t) + rng.normal(0.0, 0.1, size=t.shape)
    return Series(name="sine", values=y[:, None], feature_names=("y",), target="y", times=None)


BUILTIN_DATASETS: dict[str, _Builtin] = {
    "co2": _Builtin(
        "Mauna Loa weekly atmospheric CO2 (ppmv), 1958-2001, 2,284 weeks; 59 gaps filled by time interpolation",
        _load_co2,
    ),
    "sine": _Builtin("Noisy sine sin(0.1 t) + N(0, 0.1), 3,000 points (fixed noise seed 0)", _make_sine),
}


# How a study names data given as a pandas DataFrame (its content is in the data fingerprint).
FRAME_NAME = "frame"


def is_frame(data: object) -> bool:
    """Whether ``data`` is a pandas DataFrame (without importing pandas when it is not loaded)."""
    import sys

    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def load_series(
    data: Any,
    *,
    target: str | None = None,
    features: Sequence[str] | None = None,
    time_column: str | None = None,
) -> Series:
    """Load a built-in dataset by name, a CSV file by path, or a pandas DataFrame (the same
    columns a CSV would have; a DatetimeIndex, or an index of dates as text, serves as its time
    column when it has none).

    For a CSV, ``target`` names the forecast column (default: the only numeric column),
    ``features`` the input columns (the target is always an input too), and ``time_column``
    the time stamps (default: a column named date/time/timestamp/datetime/ds, else the one text
    column whose every value is a distinct date or time, such as ``month`` holding ``1949-01``).
    Rows are sorted by time; gaps of up to ``MAX_GAP`` rows are filled by (time) interpolation.
    """
    if is_frame(data):
        import pandas as pd

        frame = data.copy()
        if isinstance(frame.columns, pd.MultiIndex):
            raise DataError(
                f"The DataFrame's columns have {frame.columns.nlevels} levels; give it one level of column names "
                "(frame.columns = ['_'.join(map(str, c)) for c in frame.columns])."
            )
        if isinstance(frame.index, pd.PeriodIndex):  # monthly or quarterly periods: their start times
            frame.index = frame.index.to_timestamp()
        # Column names are read as text, as a CSV's are: target=0 names the column 0.
        text = [str(c) for c in frame.columns]
        time_column = None if time_column is None else str(time_column)
        has_time = time_column in text if time_column else any(t.strip().lower() in _TIME_NAMES for t in text)
        if not has_time and _index_is_time(frame.index, time_column):
            # Named as the index is (errors and notes then name it), "time" when it has no name.
            name = time_column or (str(frame.index.name) if frame.index.name is not None else "time")
            time_column = name if name not in text else "time"
            frame = frame.rename_axis(time_column).reset_index()
        target = None if target is None else str(target)
        features = None if features is None else [str(f) for f in features]
        return _from_frame(frame, name=FRAME_NAME, target=target, features=features, time_column=time_column)
    if data in BUILTIN_DATASETS:
        if target is not None or features is not None or time_column is not None:
            raise DataError(
                f"`target`, `features` and `time_column` apply to CSV files; the built-in dataset {data!r} "
                "has its own columns."
            )
        return BUILTIN_DATASETS[data].load()
    check_data_name(data)
    return _load_csv(Path(data), target=target, features=features, time_column=time_column)


def check_data_name(data: Any) -> None:
    """The rule for ``data``: a built-in dataset's name, a CSV file's path (``.csv``, or any
    existing file), or a pandas DataFrame. Checked here only; :class:`hpo_lstm.StudyConfig`
    calls it before loading."""
    if is_frame(data):
        if data.empty:
            raise DataError("The DataFrame given as data has no rows.")
        return
    if not isinstance(data, str):
        raise ConfigError(
            f"data must be a built-in dataset's name, a CSV path or a pandas DataFrame; got {type(data).__name__}."
        )
    if data in BUILTIN_DATASETS:
        return
    if Path(data).suffix.lower() != ".csv" and not Path(data).exists():
        raise UnknownNameError(
            f"Unknown dataset {data!r}; choose from {', '.join(sorted(BUILTIN_DATASETS))}, or give a path to a CSV file."
        )


def _load_csv(path: Path, *, target: str | None, features: Sequence[str] | None, time_column: str | None) -> Series:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"Data file {str(path)!r} does not exist or is not a file.")
    try:
        frame = pd.read_csv(path)
        # pandas renames a repeated column name ("y", "y.1"): read the names as written.
        header = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].dropna().tolist()
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"Cannot read data file {str(path)!r} as CSV: {first_line}") from None
    _check_unique_names(header, f"data file {str(path)!r}")
    if len(frame.columns) == 1:
        other = next((sep for sep in (";", "\t", "|") if sep in str(frame.columns[0])), None)
        if other is not None:
            raise DataError(
                f"Data file {str(path)!r} separates its columns with {other!r}, not commas (its header reads "
                f"{str(frame.columns[0])!r}); save it as comma-separated CSV."
            )
    return _from_frame(frame, name=path.stem, target=target, features=features, time_column=time_column)


def _check_unique_names(names: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"Column name {name!r} appears more than once in {where}; each column needs a name of its own."
            )
        seen.add(name)


_TIME_NAMES = ("date", "time", "timestamp", "datetime", "ds")


def _from_frame(
    frame,
    *,
    name: str,
    target: str | None,
    features: Sequence[str] | None,
    time_column: str | None,
    max_gap: int = MAX_GAP,
) -> Series:
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    _check_unique_names(columns, "the data")
    frame.columns = columns
    notes: list[str] = []
    if time_column is None:
        time_column = next((c for c in columns if c.strip().lower() in _TIME_NAMES), None)
        if time_column is None:
            time_column = _time_column_by_values(frame, columns)
            if time_column is not None:
                first = str(frame[time_column].iloc[0])
                notes.append(f"time column {time_column!r} recognised by its values ({first!r}, ...)")
    elif time_column not in columns:
        raise DataError(f"Time column {time_column!r} is not in the data; columns are {columns}.")

    times = None
    time_zone = None
    if time_column is not None:
        parsed, time_zone, zone_note = _parse_times(frame[time_column], time_column)
        if zone_note:
            notes.append(zone_note)
        if parsed.isna().any():
            bad = frame[time_column][parsed.isna()].iloc[0]
            raise DataError(_unreadable_time(frame[time_column], time_column, bad))
        frame = frame.assign(**{time_column: parsed}).sort_values(time_column, kind="stable")
        if frame[time_column].duplicated().any():
            dup = frame[time_column][frame[time_column].duplicated()].iloc[0]
            raise DataError(
                f"Time column {time_column!r} repeats the time stamp {dup}; each row must be one time step."
            )
        frame = frame.reset_index(drop=True)
        times = frame[time_column].to_numpy()
        notes += _spacing_notes(frame[time_column])

    candidates = [c for c in columns if c != time_column]
    if target is None:
        numeric = [c for c in candidates if pd.api.types.is_numeric_dtype(frame[c])]
        if len(numeric) != 1:
            raise DataError(
                f"Name the column to forecast with `target`; the data has {len(numeric)} numeric columns {numeric}."
            )
        target = numeric[0]
    wanted = [target] + [f for f in (features or ()) if f != target]
    for column in wanted:
        if column not in columns:
            raise DataError(f"Column {column!r} is not in the data; columns are {columns}.")
        if column == time_column:
            raise DataError(f"Column {column!r} is the time column; it cannot be a target or feature.")

    values = np.empty((len(frame), len(wanted)), dtype=float)
    for j, column in enumerate(wanted):
        kind = frame[column].dtype
        if pd.api.types.is_timedelta64_dtype(kind) or pd.api.types.is_complex_dtype(kind) or kind.kind == "M":
            # pandas would give durations as nanoseconds and drop an imaginary part without a word
            hint = " (durations: convert them to a unit first, e.g. .dt.total_seconds())" if kind.kind == "m" else ""
            raise DataError(f"Column {column!r} holds {kind} values; a target or feature must be real numbers{hint}.")
        numeric_col = pd.to_numeric(frame[column], errors="coerce")
        text_values = frame[column][numeric_col.isna() & frame[column].notna()]
        if len(text_values):
            raise DataError(f"Column {column!r} must be numeric; it holds {str(text_values.iloc[0])!r}.")
        if numeric_col.isna().all():
            raise DataError(f"Column {column!r} has no values (all empty or NaN).")
        values[:, j] = numeric_col.to_numpy(dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        row, j = (int(v[0]) for v in np.nonzero(infinite))
        raise DataError(
            f"Column {wanted[j]!r} holds an infinite value ({values[row, j]:g}, data row {row}); replace it or leave "
            "the cell empty."
        )
    largest = np.nanmax(np.abs(values), axis=0)
    if (largest > MAX_ABS_VALUE).any():  # their squares (a variance) overflow float64
        j = int(np.argmax(largest))
        raise DataError(
            f"Column {wanted[j]!r} holds values as large as {largest[j]:.3g}; above {MAX_ABS_VALUE:.0e} their "
            "scaling overflows. Divide the column by a power of ten first."
        )

    n_filled = int(np.isnan(values).sum())
    if n_filled:
        for j, column in enumerate(wanted):
            rows = np.flatnonzero(np.isnan(values[:, j]))
            if len(rows):
                where = str(times[rows[0]])[:19] if times is not None else f"row {rows[0]}"
                notes.append(
                    f"column {column!r}: {len(rows)} missing value(s) filled by interpolation "
                    f"{'in time' if times is not None else 'between rows'}, the first at {where}"
                )
        values = _fill_gaps(values, times, wanted, max_gap)
    return Series(
        name=name,
        values=values,
        feature_names=tuple(wanted),
        target=target,
        times=times,
        n_filled=n_filled,
        notes=tuple(notes),
        time_column=time_column,
        time_zone=time_zone,
    )


def _index_is_time(index, time_column: str | None) -> bool:
    """Whether a DataFrame's index holds its time stamps: a DatetimeIndex, or (unnamed, or named
    as ``time_column``) an index of dates written as text, as ``pd.read_csv(path, index_col=0)``
    gives without ``parse_dates``."""
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex):
        return True
    named_so = time_column is None or index.name is None or str(index.name) == time_column
    return named_so and _dates_as_text(index)


def _dates_as_text(index) -> bool:
    """Whether a DataFrame's index holds text that reads as distinct dates or times (the rule
    of :func:`_time_column_by_values`); a RangeIndex or numbers never do."""
    import pandas as pd

    if isinstance(index, pd.MultiIndex) or pd.api.types.is_numeric_dtype(index) or len(index) == 0:
        return False
    probe = pd.DataFrame({"index": index.to_numpy()})
    return _time_column_by_values(probe, ["index"]) is not None


def _time_column_by_values(frame, columns: Sequence[str]) -> str | None:
    """The first text column whose every value is a date or time with a digit in it ("1949-01",
    "2024-03-01 12:30") and whose time stamps are all distinct; None when there is none.

    Only text columns: a column of numbers is data, never time (pandas would read 1949 or 3.5 as
    nanoseconds since 1970). The digit keeps out words that dateutil reads as dates ("Mon",
    "March"); distinct stamps keep out a text column of repeated dates (a category), which was
    data, not the time of each row, before this rule existed."""
    import warnings

    import pandas as pd

    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or values.isna().any():
            continue
        text = values.astype(str)
        if not text.str.contains(r"\d", regex=True).all():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format": each value is parsed on its own then
            try:
                parsed = pd.to_datetime(text, errors="coerce")
            except (ValueError, TypeError):  # stamps with several UTC offsets
                parsed = pd.to_datetime(text, errors="coerce", utc=True)
        if parsed.notna().all() and not parsed.duplicated().any():
            return column
    return None


def _unreadable_time(column, name: str, bad: object) -> str:
    """Why ``bad``, a value of time column ``name``, was not read: not a date/time at all, or
    one written otherwise than the column's others (pandas reads a column in one format, and
    with a zone or offset throughout or nowhere)."""
    import warnings

    import pandas as pd

    def alone(value: object):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return pd.Timestamp(str(value))
            except (ValueError, TypeError, OverflowError):
                return None

    stamp = alone(bad)
    if stamp is None or pd.isna(stamp):
        return f"Time column {name!r} has a value that is not a date/time: {bad!r}."
    others = [(v, alone(v)) for v in column.dropna().head(1000) if str(v) != str(bad)]
    other = next(
        (v for v, t in others if t is not None and not pd.isna(t) and (t.tz is None) != (stamp.tz is None)), None
    )
    if other is not None:
        zoned, plain = (bad, other) if stamp.tz is not None else (other, bad)
        return (
            f"Time column {name!r} mixes stamps with a zone or UTC offset ({zoned!r}) and stamps without ({plain!r}); "
            "write every stamp with one, or none."
        )
    return (
        f"Time column {name!r} has {bad!r}, a date/time written otherwise than its first value "
        f"({column.dropna().iloc[0]!r}); write every stamp the same way."
    )


def _parse_times(column, name: str) -> tuple[object, str | None, str | None]:
    """Time stamps from a column of dates/times, or of whole years (1949, 1950, ...); a column of
    other numbers is refused (pandas would read them as nanoseconds since 1970 and re-sort the
    rows by them). Returns the stamps (without a zone), the zone they were written in, and a
    note when there was one.

    Stamps with a zone or UTC offset ("2020-01-01T00:00:00Z", "...+05:30") are converted to UTC
    and held without a zone (forecasts are written back in the zone); stamps with several
    offsets (an export that crosses a daylight-saving change) are read as UTC, and forecasts are
    written in UTC."""
    import warnings

    import pandas as pd

    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.notna().all() and (numbers % 1 == 0).all() and numbers.between(1000, 3000).all():
            return pd.to_datetime(numbers.astype(int).astype(str), format="%Y"), None, None
        raise DataError(
            f"Time column {name!r} holds numbers ({column.iloc[0]!r}, ...), not dates or times; name a column of "
            "dates with `time_column`, or leave it out to number the rows."
        )
    if isinstance(getattr(column, "dtype", None), pd.DatetimeTZDtype):  # a DataFrame's zoned column
        parsed = column
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "mixed time zones": handled below
            try:
                parsed = pd.to_datetime(column, errors="coerce")
            except (ValueError, TypeError):  # mixed offsets (pandas >= 2.2 refuses them without utc=True)
                parsed = None
            if parsed is None or parsed.dtype == object:  # several offsets: read as UTC
                utc = pd.to_datetime(column, errors="coerce", utc=True)
                offsets = sorted({_offset_text(t) for t in _zoned_stamps(column)})
                note = (
                    f"time column {name!r}: stamps with several UTC offsets ({', '.join(offsets[:4])}: a "
                    "daylight-saving change?) were read as UTC; forecasts are written in UTC"
                )
                return utc.dt.tz_localize(None), "UTC", note
    zone = getattr(parsed.dt, "tz", None)
    if zone is None:
        return parsed, None, None
    label = _zone_label(parsed)
    note = (
        f"time column {name!r}: stamps in {label} were converted to UTC; forecasts are written in {label}"
        if label != "UTC"
        else None
    )
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None), label, note


def _zone_label(parsed) -> str:
    """A zone as text pandas reads back: "UTC", "UTC+05:30" (a fixed offset), or an IANA name."""
    import datetime as dt

    zone = parsed.dt.tz
    name = str(zone)
    if name in ("UTC", "utc", "Z"):
        return "UTC"
    if isinstance(zone, dt.timezone):
        return _offset_text(parsed.iloc[0])
    return name


def _offset_text(stamp) -> str:
    offset = stamp.utcoffset()
    if offset is None or not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _zoned_stamps(column) -> list:
    import pandas as pd

    stamps = []
    for value in column.astype(str).head(10_000):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            continue
        if stamp.tzinfo is not None:
            stamps.append(stamp)
    return stamps


def zone_times(times, zone: str | None):
    """UTC time stamps without a zone (as a Series holds them) -> the same instants in ``zone``
    (None: unchanged)."""
    import pandas as pd

    index = pd.DatetimeIndex(times)
    if not zone:
        return index
    return index.tz_localize("UTC").tz_convert(_pandas_zone(zone))


def wall_times(times, zone: str | None):
    """UTC time stamps without a zone -> the times the clocks of ``zone`` showed, without a zone
    (None: unchanged): the days, weekdays and months a forecast continues in."""
    index = zone_times(times, zone)
    return index.tz_localize(None) if zone else index


def from_wall_times(wall, zone: str | None):
    """The inverse of :func:`wall_times`: clock times of ``zone`` -> UTC without a zone. A clock
    time that daylight saving skips moves forward; one it repeats is read as summer time."""
    import pandas as pd

    index = pd.DatetimeIndex(wall)
    if not zone:
        return index
    local = index.tz_localize(
        _pandas_zone(zone), ambiguous=np.ones(len(index), dtype=bool), nonexistent="shift_forward"
    )
    return local.tz_convert("UTC").tz_localize(None)


def _pandas_zone(zone: str):
    import datetime as dt

    if zone.startswith("UTC") and len(zone) == 9:  # "UTC+05:30"
        sign = 1 if zone[3] == "+" else -1
        hours, minutes = int(zone[4:6]), int(zone[7:9])
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    return zone


def _spacing_notes(times) -> list[str]:
    """A note when the time stamps are not evenly spaced (pandas infers no frequency): rows are
    consecutive observations to the model, so a jump of many steps is said, not hidden."""
    import pandas as pd

    index = pd.DatetimeIndex(times)
    if len(index) < 3 or pd.infer_freq(index) is not None:
        return []
    steps = pd.Series(index[1:] - index[:-1])
    usual = steps.median()
    long = steps[steps > 1.5 * usual]
    if long.empty:
        return []
    at = index[1:][long.idxmax()]
    return [
        f"time steps are irregular: {len(long)} step(s) longer than 1.5x the usual {step_text(usual)}, the longest "
        f"{step_text(long.max())} (ending {str(at)[:19]}); rows are treated as consecutive observations, nothing was "
        "filled"
    ]


def step_text(delta) -> str:
    """A time step in words: "1 day", "52 days", "30 minutes"."""
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0 or unit == "second":
            count = seconds / size
            count = int(count) if count == int(count) else round(count, 3)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return str(delta)


def _fill_gaps(values: np.ndarray, times: np.ndarray | None, names: Sequence[str], max_gap: int) -> np.ndarray:
    """Interpolate interior gaps linearly in time; refuse leading, trailing or long gaps."""
    x = (
        times.astype("datetime64[ns]").astype(np.int64).astype(float)
        if times is not None
        else np.arange(len(values), dtype=float)
    )
    out = values.copy()
    for j, name in enumerate(names):
        missing = np.isnan(out[:, j])
        if not missing.any():
            continue
        longest = _longest_run(missing)
        if longest > max_gap:
            raise DataError(
                f"Column {name!r} has a gap of {longest} consecutive missing values; at most {max_gap} are "
                "interpolated. Fill or cut the data first."
            )
        if missing[0] or missing[-1]:
            raise DataError(f"Column {name!r} starts or ends with missing values; trim those rows first.")
        out[missing, j] = np.interp(x[missing], x[~missing], out[~missing, j])
    return out


def _longest_run(mask: np.ndarray) -> int:
    longest = run = 0
    for m in mask:
        run = run + 1 if m else 0
        longest = max(longest, run)
    return longest


def describe_builtin() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every built-in dataset."""
    return [(name, BUILTIN_DATASETS[name].summary) for name in sorted(BUILTIN_DATASETS)]
