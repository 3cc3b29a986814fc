"""Season-aware defaults (issue 14, point 3): a searched lookback whose bounds reach the season,
calendar features from the time column, the seasonal-difference transform, and the identity of
studies recorded before them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SPACE, write_study

from hpo_lstm import ConfigError, StudyConfig, load_forecaster
from hpo_lstm.cli import main
from hpo_lstm.data import Series, calendar_features, calendar_values, load_series, make_dataset
from hpo_lstm.space import season_lookback
from hpo_lstm.study import prepare_dataset

TINY_RUN = [
    "--max-epochs",
    "2",
    "--patience",
    "2",
    "--workers",
    "1",
    "--quiet",
    "--optimizer",
    "random",
    "--budget",
    "2",
    "--pop-size",
    "2",
    "--final",
    "best",
]  # (the network's own forecasts, exactly)


def _times(start: str, step: str, n: int) -> np.ndarray:
    return pd.date_range(start, periods=n, freq=step).to_numpy()


def _series(times: np.ndarray | None, *, n: int | None = None, seed: int = 0) -> Series:
    n = len(times) if times is not None else n
    rng = np.random.default_rng(seed)
    y = 10 + np.sin(2 * np.pi * np.arange(n) / 12) + rng.normal(0, 0.1, n)
    return Series(name="s", values=y[:, None], feature_names=("y",), target="y", times=times)


# The searched lookback -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "season", "bounds"),
    [
        ("W-SAT", 52, (12, 76)),  # weekly: one year and 24 weeks more
        ("MS", 12, (6, 24)),  # monthly: two years
        ("B", 5, (2, 24)),  # business days: never shorter than the fixed 24
        ("D", 7, (3, 24)),
        ("h", 24, (12, 48)),  # hourly: two days
        ("30min", 48, (12, 72)),  # half-hourly: the day (48) and a half, not the week (336)
        ("QS", 4, (2, 24)),
    ],
)
def test_the_default_space_searches_a_lookback_that_reaches_the_inferred_season(step, season, bounds):
    times = _times("1900-01-01", step, 1000)
    config = StudyConfig().for_data(times, len(times))
    assert config.space["lookback"].low == bounds[0] and config.space["lookback"].high == bounds[1]
    assert config.space["lookback"].high >= min(season, 168) and config.window_lookback == bounds[1]
    assert season_lookback(season, 10_000) == bounds
    assert config.identity()["space"]["lookback"] == {
        "low": bounds[0],
        "high": bounds[1],
        "log": False,
        "integer": True,
    }
    assert config.for_data(times, len(times)) == config  # applying it again changes nothing


def test_long_seasons_are_capped_and_short_series_keep_their_windows():
    assert season_lookback(336, 10_000) == (12, 168)  # a week of half-hours is beyond what training affords
    assert season_lookback(168, 10_000) == (12, 168)
    assert season_lookback(52, 200) == (12, 50)  # a quarter of the 200 training rows
    assert season_lookback(None, 10_000) is None
    times = _times("2001-01-01", "W-SAT", 300)
    config = StudyConfig(season=12).for_data(times, len(times))  # --season wins over the weekly 52
    assert (config.space["lookback"].low, config.space["lookback"].high) == (6, 24)


def test_no_season_keeps_the_fixed_lookback_of_24():
    for times in (None, _times("1700-01-01", "YS", 300)):  # no time column; yearly
        config = StudyConfig().for_data(times, 300)
        assert "lookback" not in config.space and config.window_lookback == 24 and config.lookback == 24
        assert "calendar" not in config.identity() and config.calendar is False


def test_an_explicit_lookback_or_space_is_honoured_unchanged():
    times = _times("2001-01-01", "W-SAT", 1000)
    fixed = StudyConfig(lookback=30).for_data(times, 1000)
    assert "lookback" not in fixed.space and fixed.window_lookback == 30
    given = StudyConfig.from_mapping({"space": {"n_layers": {"low": 1, "high": 2}}}).for_data(times, 1000)
    assert "lookback" not in given.space and given.window_lookback == 24
    searched = StudyConfig.from_mapping({"space": {"lookback": {"low": 4, "high": 9}}}).for_data(times, 1000)
    assert (searched.space["lookback"].low, searched.space["lookback"].high) == (4, 9)


# As hpo-lstm recorded them before season-aware defaults (the code of that version printed these).
OLD_STYLE_IDENTITY = {
    "optimizer": "random",
    "pop_size": 2,
    "model": "lstm",
    "data": "prices.csv",
    "target": "close",
    "features": None,
    "time_column": None,
    "split": [0.7, 0.15, 0.15],
    "lookback": 12,
    "horizon": 1,
    "transform": "diff",
    "seed": 0,
    "max_epochs": 30,
    "patience": 5,
    "batch_size": 64,
    "dropout": 0.0,
    "pruning": "median",
    "optimizer_options": {},
    "space": {
        "learning_rate": {"low": 0.001, "high": 0.03, "log": True, "integer": False},
        "hidden_size": {"low": 4, "high": 12, "log": True, "integer": True},
        "n_layers": {"low": 1, "high": 2, "log": False, "integer": True},
    },
}
OLD_SINE_IDENTITY = {
    "optimizer": "woa",
    "pop_size": 8,
    "model": "lstm",
    "data": "sine",
    "target": None,
    "features": None,
    "time_column": None,
    "split": [0.7, 0.15, 0.15],
    "lookback": 8,
    "horizon": 1,
    "transform": "diff",
    "seed": 0,
    "max_epochs": 30,
    "patience": 5,
    "batch_size": 64,
    "dropout": 0.0,
    "pruning": "median",
    "optimizer_options": {},
    "space": {
        "learning_rate": {"low": 0.0001, "high": 0.1, "log": True, "integer": False},
        "hidden_size": {"low": 8, "high": 256, "log": True, "integer": True},
        "n_layers": {"low": 1, "high": 4, "log": False, "integer": True},
    },
}


def test_an_old_style_study_keeps_its_identity(tiny_csv: Path, tmp_path: Path):
    text = (
        'name = "old-style"\noptimizer = "random"\ndata = "prices.csv"\ntarget = "close"\nlookback = 12\n'
        "budget = 4\npop_size = 2\ncalendar = false\n" + TINY_SPACE
    )
    config = StudyConfig.from_file(write_study(tmp_path / "old.toml", text))
    series = load_series(str(tiny_csv), target="close")
    assert config.for_data(series.times, len(series)).identity() == OLD_STYLE_IDENTITY
    sine = StudyConfig(data="sine", lookback=8)  # no time column: nothing season-aware applies
    # woa's identity names its mealpy now; a study recorded without it resumes and takes the name
    # (tests/test_mealpy_sequences.py), so only that key is new.
    from hpo_lstm.optimizers._mealpy import mealpy_distribution

    assert sine.for_data(None, 3000).identity() == {**OLD_SINE_IDENTITY, "optimizer_impl": mealpy_distribution()}
    # Without `calendar = false`, a series with a time column gets calendar features: another study.
    assert StudyConfig.from_file(write_study(tmp_path / "new.toml", text.replace("calendar = false\n", ""))).for_data(
        series.times, len(series)
    ).identity() == {**OLD_STYLE_IDENTITY, "calendar": True}


# Calendar features ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "features"),
    [
        ("YS", ()),
        ("QS", ("day_of_year",)),
        ("MS", ("day_of_year",)),
        ("W-SUN", ("day_of_year",)),
        ("D", ("day_of_week", "day_of_year")),
        ("B", ("day_of_week", "day_of_year")),
        ("h", ("time_of_day", "day_of_week", "day_of_year")),
        ("15min", ("time_of_day", "day_of_week", "day_of_year")),
    ],
)
def test_calendar_features_follow_the_time_step(step, features):
    assert calendar_features(_times("2001-01-01", step, 50)) == features


def test_calendar_values_are_the_sine_and_cosine_of_the_position_in_each_cycle():
    # 2024-01-03 18:00 is a Wednesday (day 2 of the week from Monday 0), day 3 of a leap year.
    times = np.array(["2024-01-03T18:00"], dtype="datetime64[ns]")
    values = calendar_values(times, ("time_of_day", "day_of_week", "day_of_year"))[0]
    expected = [
        np.sin(2 * np.pi * 0.75),
        np.cos(2 * np.pi * 0.75),
        np.sin(2 * np.pi * 2 / 7),
        np.cos(2 * np.pi * 2 / 7),
        np.sin(2 * np.pi * 2 / 366),
        np.cos(2 * np.pi * 2 / 366),
    ]
    np.testing.assert_allclose(values, expected, atol=1e-12)
    assert calendar_features(None) == ()


def test_calendar_features_are_extra_inputs_scaled_on_the_training_rows():
    times = _times("2020-01-01", "D", 400)
    series = replace(_series(times), calendar=("day_of_week", "day_of_year"))
    dataset = make_dataset(series, lookback=10)
    plain = make_dataset(_series(times), lookback=10)
    assert dataset.x.shape[-1] == 5 and plain.x.shape[-1] == 1 and dataset.calendar == ("day_of_week", "day_of_year")
    np.testing.assert_array_equal(dataset.x[..., :1], plain.x)  # the series' own column is untouched
    raw = calendar_values(times, series.calendar)
    n_train = dataset.rows["train"][1]
    mean, scale = raw[1:n_train].mean(axis=0), raw[1:n_train].std(axis=0)
    np.testing.assert_allclose(dataset.input_mean[1:], mean)
    # Window 0 ends at row 10 (diff reads row 0 first): its inputs are rows 1..10, never differenced.
    np.testing.assert_allclose(dataset.x[0, :, 1:], ((raw[1:11] - mean) / scale), rtol=1e-6, atol=1e-6)
    with pytest.raises(ConfigError, match="need time stamps"):
        make_dataset(replace(_series(None, n=400), calendar=("day_of_week",)), lookback=10)


def test_calendar_true_without_a_time_column_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="calendar = true needs time stamps") as info:
        StudyConfig(data="sine", calendar=True).for_data(None, 3000)
    assert "\n" not in str(info.value)


# The seasonal difference -----------------------------------------------------------------------


def test_sdiff_targets_and_levels_equal_a_hand_computation():
    times = _times("2000-01-01", "MS", 300)
    series = replace(_series(times), season=12)
    dataset = make_dataset(series, lookback=6, horizon=3, transform="sdiff")
    level = series.values[:, 0]
    rows = dataset.target_row
    assert rows[0, 0] == 6 - 1 + 12 + 1  # the first window ends at row lookback - 1 + season
    change = level[rows] - level[rows - 12]  # by hand: the change from one season before
    np.testing.assert_allclose(dataset.y * dataset.target_scale + dataset.target_mean, change, rtol=1e-5, atol=1e-5)
    for split in ("train", "val", "test"):  # the model's exact outputs give back the levels
        part = dataset.split(split)
        restored = dataset.to_level(dataset.y[part], split)
        np.testing.assert_allclose(restored, level[rows[part]], atol=1e-5)
        np.testing.assert_allclose(restored - change[part], level[rows[part] - 12], atol=1e-5)
    # Inputs: v[k] - v[k - 12], scaled with the training rows' statistics.
    t = rows[0, 0] - 1
    raw = level[t - 5 : t + 1] - level[t - 17 : t - 11]
    np.testing.assert_allclose(dataset.x[0, :, 0], (raw - dataset.input_mean[0]) / dataset.input_scale[0], rtol=1e-5)


def test_sdiff_is_refused_when_the_season_is_shorter_than_the_horizon_or_unknown():
    times = _times("2000-01-01", "MS", 300)
    with pytest.raises(ConfigError, match=r"needs season >= horizon .*got season 12, horizon 13") as info:
        make_dataset(replace(_series(times), season=12), lookback=6, horizon=13, transform="sdiff")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="got season 4, horizon 6"):
        StudyConfig(transform="sdiff", season=4, horizon=6)
    with pytest.raises(ConfigError, match="needs a season"):
        prepare_dataset(StudyConfig(data="sine", transform="sdiff"))


# Saved models ----------------------------------------------------------------------------------


def _recorded(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "predictions.csv", parse_dates=["time"], float_precision="round_trip")


@pytest.mark.parametrize("transform", ["diff", "sdiff", "logdiff"])
def test_a_saved_model_with_calendar_features_reproduces_its_predictions_and_forecasts(
    tiny_csv: Path, tmp_path: Path, transform: str
):
    study = write_study(
        tmp_path / "s.toml",
        'name = "cal"\nbatch_size = 128\n'
        + TINY_SPACE.replace("[space]\n", "[space]\nlookback = { low = 4, high = 9 }\n"),
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "run",
                str(study),
                "--data",
                str(tiny_csv),
                "--target",
                "close",
                "--transform",
                transform,
                *TINY_RUN,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "cal" / "summary.json").read_text())
    assert summary["protocol"]["calendar"] == ["day_of_week", "day_of_year"] and summary["season"] == 7
    forecaster = load_forecaster(out / "cal")
    assert forecaster.calendar == ("day_of_week", "day_of_year")
    assert forecaster.card["season"] == (7 if transform == "sdiff" else None)

    recorded = _recorded(out / "cal")
    frame = pd.read_csv(tiny_csv, parse_dates=["date"])
    again = forecaster.predict(frame)
    again = again[again["time"] >= recorded["time"].iloc[0]].reset_index(drop=True)
    np.testing.assert_array_equal(again["predicted"].to_numpy(), recorded["predicted"].to_numpy())

    forecast = forecaster.forecast(10)  # past the data, its calendar continued day by day
    assert list(forecast["time"]) == list(pd.date_range(frame["date"].iloc[-1] + pd.Timedelta(days=1), periods=10))
    assert np.isfinite(forecast["forecast"]).all()
    # From a frame whose last rows are the card's history: the same forecast.
    same = forecaster.forecast(10, frame)
    np.testing.assert_allclose(same["forecast"], forecast["forecast"])
    with pytest.raises(Exception, match="needs its time column"):
        forecaster.forecast(3, frame.drop(columns=["date"]))


def test_the_cli_turns_calendar_features_off(tiny_csv: Path, tmp_path: Path):
    out = tmp_path / "out"
    study = write_study(tmp_path / "s.toml", 'name = "nocal"\nbatch_size = 128\nlookback = 6\n' + TINY_SPACE)
    assert (
        main(
            [
                "run",
                str(study),
                "--data",
                str(tiny_csv),
                "--target",
                "close",
                "--no-calendar",
                *TINY_RUN,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "nocal" / "summary.json").read_text())
    assert summary["protocol"]["calendar"] == [] and "lookback" not in summary["protocol"]["space"]
    assert load_forecaster(out / "nocal").calendar == ()
