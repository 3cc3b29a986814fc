from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hpo_lstm import DataError, UnknownNameError
from hpo_lstm.data import SINE_SEED, Series, load_series, make_dataset


def _ramp(n: int = 200, features: int = 1) -> Series:
    t = np.arange(n, dtype=float)
    values = np.stack([t**1.5 + 10 * k for k in range(features)], axis=1)
    return Series(
        name="ramp", values=values, feature_names=tuple(f"f{k}" for k in range(features)), target="f0", times=None
    )


def test_co2_ships_with_the_package_and_has_no_gaps_left():
    series = load_series("co2")
    assert len(series) == 2284
    assert series.n_filled == 59
    assert np.isfinite(series.values).all()
    assert str(series.times[0])[:10] == "1958-03-29" and str(series.times[-1])[:10] == "2001-12-29"
    # Interpolated in time: a filled week lies between its neighbours.
    assert 300 < series.values.min() and series.values.max() < 380


def test_sine_is_one_fixed_series():
    # The noise belongs to the dataset: every study and seed sees the same series.
    a, b = load_series("sine"), load_series("sine")
    assert len(a) == 3000
    np.testing.assert_array_equal(a.values, b.values)
    expected = np.sin(0.1 * np.arange(3000)) + np.random.default_rng(SINE_SEED).normal(0.0, 0.1, 3000)
    np.testing.assert_array_equal(a.values[:, 0], expected)
    residual = a.values[:, 0] - np.sin(0.1 * np.arange(3000))
    assert residual.std() == pytest.approx(0.1, rel=0.1)


@pytest.mark.parametrize("transform", ["diff", "level"])
def test_windows_are_chronological_and_targets_match_the_series(transform):
    series = _ramp(200)
    ds = make_dataset(series, lookback=5, horizon=3, split=(0.6, 0.2, 0.2), transform=transform)
    level = series.values[:, 0]
    # Targets sit at the 3 rows after the last input; splits follow time.
    assert ds.y.shape == ds.actual.shape == ds.target_row.shape == (len(ds.x), 3)
    np.testing.assert_array_equal(ds.actual, level[ds.target_row])
    np.testing.assert_array_equal(ds.target_row - ds.target_row[:, :1], np.tile([0, 1, 2], (len(ds.x), 1)))
    np.testing.assert_array_equal(ds.last_value, level[ds.target_row[:, 0] - 1])
    np.testing.assert_array_equal(ds.naive("test"), np.repeat(ds.last_value[ds.split("test"), None], 3, axis=1))
    # Every target of a window lies in its split's rows: no training window sees a validation value.
    train, val, test = (ds.target_row[ds.split(s)] for s in ("train", "val", "test"))
    assert train.max() < 120 <= val.min() and val.max() < 160 <= test.min()
    # The H - 1 windows that would straddle each boundary are left out, no others.
    first = 5 if transform == "diff" else 4
    assert len(ds.x) == (200 - 3 - first) - 2 * 2
    # The model's target, restored to levels, is the actual value.
    for s in ("train", "val", "test"):
        np.testing.assert_allclose(ds.to_level(ds.y[ds.split(s)], s), ds.actual[ds.split(s)], rtol=1e-5)


def test_scaler_is_fitted_on_train_rows_only():
    series = _ramp(200)
    ds = make_dataset(series, lookback=5, horizon=1, split=(0.6, 0.2, 0.2), transform="level")
    train_rows = series.values[:120, 0]
    assert ds.target_mean == pytest.approx(train_rows[5:].mean(), rel=1e-9)  # targets of train windows
    # Changing the test rows must not change how train windows are scaled.
    altered = series.values.copy()
    altered[160:] *= 100
    ds2 = make_dataset(
        Series("ramp", altered, series.feature_names, "f0", None),
        lookback=5,
        horizon=1,
        split=(0.6, 0.2, 0.2),
        transform="level",
    )
    np.testing.assert_array_equal(ds.x[ds.split("train")], ds2.x[ds2.split("train")])
    assert ds.target_scale == ds2.target_scale


def test_diff_transform_feeds_changes_and_targets_the_change_from_the_last_value():
    series = _ramp(100)
    ds = make_dataset(series, lookback=4, horizon=2, split=(0.6, 0.2, 0.2), transform="diff")
    level = series.values[:, 0]
    raw_target = ds.y * ds.target_scale + ds.target_mean  # each step scaled on its own
    assert ds.target_scale.shape == (2,) and ds.target_scale[1] > ds.target_scale[0]
    last = level[ds.target_row[:, 0] - 1][:, None]
    np.testing.assert_allclose(raw_target, level[ds.target_row] - last, rtol=1e-5, atol=1e-4)


def test_logdiff_models_the_log_change_of_the_target_and_plain_changes_of_the_other_columns():
    t = np.arange(150, dtype=float)
    values = np.stack([50 + t**1.2 + 5 * np.sin(t), 3 * np.cos(t / 4) - 1], axis=1)  # target > 0, other crosses 0
    series = Series(name="pos", values=values, feature_names=("y", "x"), target="y", times=None)
    ds = make_dataset(series, lookback=4, horizon=2, split=(0.6, 0.2, 0.2), transform="logdiff")
    level, rows = values[:, 0], ds.target_row
    last = level[rows[:, 0] - 1][:, None]
    np.testing.assert_allclose(ds.y * ds.target_scale + ds.target_mean, np.log(level[rows] / last), atol=1e-6)
    t0 = rows[0, 0] - 1  # inputs of window 0: log changes of y, plain changes of x, scaled on the train rows
    raw = np.stack([np.diff(np.log(level[t0 - 4 : t0 + 1])), np.diff(values[t0 - 4 : t0 + 1, 1])], axis=1)
    np.testing.assert_allclose(ds.x[0], (raw - ds.input_mean) / ds.input_scale, rtol=1e-5, atol=1e-5)
    assert ds.input_mean[0] == pytest.approx(np.diff(np.log(level[:90])).mean(), rel=1e-9)  # the train rows only
    for s in ("train", "val", "test"):  # the exact outputs give back the levels: last value times exp(change)
        np.testing.assert_allclose(ds.to_level(ds.y[ds.split(s)], s), ds.actual[ds.split(s)], rtol=1e-5)
    assert ds.naive("test").shape == ds.actual[ds.split("test")].shape


def test_auto_transform_is_logdiff_for_a_target_above_zero_else_diff_and_logdiff_refuses_zero():
    t = np.arange(120, dtype=float)
    positive = Series("p", (5 + np.sin(t / 3))[:, None], ("y",), "y", None)
    assert make_dataset(positive, lookback=4, transform="auto").transform == "logdiff"
    touching = Series("z", np.where(t == 100, 0.0, 5 + np.sin(t / 3))[:, None], ("y",), "y", None)  # a 0 at row 100
    assert make_dataset(touching, lookback=4, transform="auto").transform == "diff"
    with pytest.raises(
        DataError, match=r"logdiff needs target values above zero; row 100 of the data holds 0 "
    ) as info:
        make_dataset(touching, lookback=4, transform="logdiff")
    assert "\n" not in str(info.value)


def test_csv_with_features_and_time_column(tiny_csv: Path):
    series = load_series(str(tiny_csv), target="close", features=["volume", "close"])
    assert series.feature_names == ("close", "volume")
    assert series.target_index == 0
    assert series.times.dtype.kind == "M"
    ds = make_dataset(series, lookback=7, split=(0.7, 0.15, 0.15))
    assert ds.x.shape[1:] == (7, 2)


def test_csv_gaps_are_interpolated_in_time(tmp_path: Path):
    path = tmp_path / "gappy.csv"
    path.write_text("time,y\n2024-01-01,1\n2024-01-02,\n2024-01-04,4\n2024-01-05,5\n")
    series = load_series(str(path), target="y")
    # 2024-01-02 lies one third of the way from day 1 (1.0) to day 4 (4.0).
    assert series.values[1, 0] == pytest.approx(2.0)
    assert series.n_filled == 1


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("t,y\n1,2\n", {"target": "z"}, "Column 'z' is not in the data; columns are ['t', 'y']."),
        ("y,name\n1,a\n2,b\n", {"target": "name"}, "Column 'name' must be numeric; it holds 'a'."),
        ("y,x\n,1\n,2\n", {"target": "y"}, "Column 'y' has no values (all empty or NaN)."),
        ("a,b\n1,2\n", {}, "Name the column to forecast with `target`; the data has 2 numeric columns ['a', 'b']."),
        (
            "t,y\n0,1\n" + "".join(f"{i},\n" for i in range(1, 13)) + "13,2\n",
            {"target": "y"},
            "Column 'y' has a gap of 12 consecutive missing values; at most 10 are interpolated.",
        ),
    ],
)
def test_bad_csv_content_is_refused(tmp_path: Path, content, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as info:
        load_series(str(path), **kwargs)
    assert message in str(info.value)


def test_missing_file_and_unknown_dataset():
    with pytest.raises(DataError, match="Data file 'nope.csv' does not exist"):
        load_series("nope.csv", target="y")
    with pytest.raises(UnknownNameError, match="Unknown dataset 'co3'; choose from co2, sine"):
        load_series("co3")


def test_too_few_rows_and_constant_series_are_refused():
    with pytest.raises(DataError, match=r"Too few rows: 40 rows with lookback=24"):
        make_dataset(_ramp(40), lookback=24)
    constant = Series("c", np.ones((100, 1)), ("y",), "y", None)
    with pytest.raises(DataError, match="constant"):
        make_dataset(constant, lookback=5)


def test_a_dataframe_with_a_period_index_integer_names_or_two_levels_of_names():
    import pandas as pd

    monthly = pd.DataFrame({"y": np.arange(60.0)}, index=pd.period_range("2000-01", periods=60, freq="M"))
    series = load_series(monthly, target="y")
    assert str(pd.Timestamp(series.times[1]).date()) == "2000-02-01"  # periods read as their start times
    numbered = pd.DataFrame(np.random.default_rng(0).random((60, 2)))
    assert load_series(numbered, target=0, features=[1]).feature_names == ("0", "1")
    levels = pd.DataFrame(np.ones((5, 2)), columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    with pytest.raises(DataError, match="The DataFrame's columns have 2 levels; give it one level of column names"):
        load_series(levels, target="a")


def test_a_dataframe_whose_index_is_dates_as_text_has_times():
    """A frame read without parse_dates keeps its dates as text in the index: they are its time
    stamps, as a text column of dates is in a CSV; an index of labels or numbers is not."""
    import pandas as pd

    days = [str(d.date()) for d in pd.date_range("2024-01-01", periods=60)]
    frame = pd.DataFrame({"y": np.arange(60.0) % 7}, index=pd.Index(days, name="day"))
    series = load_series(frame, target="y")
    assert series.time_column == "day" and str(pd.Timestamp(series.times[-1]).date()) == "2024-02-29"
    unnamed = load_series(frame.rename_axis(None), target="y")
    assert unnamed.time_column == "time" and (unnamed.times == series.times).all()
    named = load_series(frame, target="y", time_column="day")  # as a saved model's card names it
    assert (named.times == series.times).all()
    numbered = pd.DataFrame({0: days, 1: np.arange(60.0) % 7})  # integer column names: time_column=0 too
    assert (load_series(numbered, target=1, time_column=0).times == series.times).all()
    for index in ([f"row{i}" for i in range(60)], list(range(100, 160)), days[:59] + days[:1]):
        assert load_series(frame.set_axis(index), target="y").times is None  # labels, numbers, a repeated date


def test_column_settings_from_python_are_names_and_a_named_index_keeps_its_name():
    """features="temp" (one text, as the flag takes it) is a list of names, not of letters; a
    list as the target is refused in one line; an index named 'date' is named so in errors."""
    import pandas as pd

    from hpo_lstm import ConfigError, StudyConfig

    days = pd.date_range("2020-01-01", periods=60, name="date")
    frame = pd.DataFrame({"y": np.arange(60.0) % 7, "temp": np.cos(np.arange(60.0))}, index=days)
    assert StudyConfig(data=frame, target="y", features="temp").features == ("temp",)
    assert StudyConfig(data=frame, target="y", features=["temp", "y"]).features == ("temp", "y")
    for setting, shown in (
        (dict(target=["y"]), "Setting 'target' must be one column name; got ['y']"),
        (dict(features=5), "Setting 'features' must be a list of column names; got 5"),
    ):
        with pytest.raises(ConfigError, match=re.escape(shown)):
            StudyConfig(data=frame, **setting)
    with pytest.raises(DataError, match=re.escape("columns are ['date', 'y', 'temp']")):
        load_series(frame, target="y", features=["nope"])


def test_durations_complex_numbers_and_dates_are_not_read_as_numbers():
    """pandas would give a duration as nanoseconds and drop an imaginary part without a word."""
    import pandas as pd

    n = 40
    frame = pd.DataFrame(
        {
            "y": np.arange(n, dtype=float) % 5,
            "wait": pd.to_timedelta(np.arange(n), unit="h"),
            "z": np.arange(n) + 1j,
            "due": pd.date_range("2000-01-01", periods=n, freq="D"),
            "time": pd.date_range("2000-01-01", periods=n, freq="h"),
        }
    )
    for column, shown in (
        ("wait", r"timedelta64\[ns\] values; .*durations"),
        ("z", "complex128"),
        ("due", "datetime64"),
    ):
        with pytest.raises(DataError, match=f"Column '{column}' holds {shown}"):
            load_series(frame, target="y", features=[column])
    assert load_series(frame, target="y").feature_names == ("y",)
