"""Forecasting with a study's saved model (hpo_lstm.forecaster, ``hpo-lstm forecast``): a
reloaded model reproduces the study's own predictions, forecasts continue the series' time
stamps, and every bad input is one line with exit status 2."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import TINY_SPACE, write_study

from hpo_lstm import ConfigError, load_forecaster
from hpo_lstm.cli import main
from hpo_lstm.data import load_series
from hpo_lstm.store import StudyRecord
from hpo_lstm.store.model_store import ModelFileError, time_step

LOOKBACK = 8
# --final best: these tests check the network's own forecasting exactly (the final forecast of
# several members: tests/test_ensemble.py).
RUN = [
    "--lookback",
    str(LOOKBACK),
    "--max-epochs",
    "2",
    "--patience",
    "2",
    "--workers",
    "1",
    "--quiet",
    "--final",
    "best",
]
WEEK = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def co2_run(tmp_path_factory) -> Path:
    """One tiny finished study on the built-in weekly CO2 series (horizon 1)."""
    tmp = tmp_path_factory.mktemp("forecast")
    study = write_study(tmp / "fc.toml", 'name = "fc"\nbatch_size = 128\n' + TINY_SPACE)
    args = [
        "run",
        str(study),
        "--data",
        "co2",
        *RUN,
        "--optimizer",
        "random",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--out",
        str(tmp / "out"),
    ]
    assert main(args) == 0
    return tmp / "out" / "fc"


@pytest.fixture(scope="module")
def sine_comparison(tmp_path_factory) -> Path:
    """A tiny comparison on the sine (no time column: rows are numbered), horizon 2: the cells
    lstm.random.0 and lstm.untuned.0."""
    tmp = tmp_path_factory.mktemp("forecast-compare")
    study = write_study(tmp / "cmp.toml", 'name = "tiny"\nbatch_size = 256\n' + TINY_SPACE)
    args = [
        "compare",
        str(study),
        "--data",
        "sine",
        "--horizon",
        "2",
        *RUN,
        "--models",
        "lstm",
        "--optimizers",
        "random",
        "--seeds",
        "1",
        "--budget",
        "2",
        "--pop-size",
        "2",
        "--out",
        str(tmp / "out"),
    ]
    assert main(args) == 0
    return tmp / "out" / "tiny"


def _co2_frame() -> pd.DataFrame:
    series = load_series("co2")  # the study's data as it saw it (its 1964 gap filled)
    return pd.DataFrame({"date": series.times, "co2": series.values[:, 0]})


def _recorded(folder: Path) -> pd.DataFrame:
    # round_trip: pandas' default float parser can be one ulp off what to_csv wrote.
    return pd.read_csv(folder / "predictions.csv", parse_dates=["time"], float_precision="round_trip")


def _storage(folder: Path) -> tuple[str, str]:
    summary = json.loads((folder / "summary.json").read_text())
    return summary["storage"], summary["study_name"]


def test_a_reloaded_model_reproduces_the_studys_predictions_bit_for_bit(co2_run: Path):
    forecaster = load_forecaster(co2_run)
    assert forecaster.card["study_name"] == "fc" and forecaster.lookback == LOOKBACK and forecaster.horizon == 1
    recorded = _recorded(co2_run)
    frame = _co2_frame()

    # The same windows in one batch, as the study predicted its test split: the same bits. The
    # first test window ends the row before its target and (diff) reads one row before its
    # first input.
    row = int(np.flatnonzero(frame["date"] == recorded["time"].iloc[0])[0])
    test_rows = frame.iloc[row - 1 - LOOKBACK :]
    again = forecaster.predict(test_rows)
    assert list(again.columns) == ["time", "step", "predicted"]  # one network: no member columns
    assert len(again) == len(recorded)
    assert (again["time"].to_numpy() == recorded["time"].to_numpy()).all()
    assert np.array_equal(again["predicted"].to_numpy(), recorded["predicted"].to_numpy())

    # Every window of the whole series: each window goes through the network alone
    # (hpo_lstm.training.forward_windows), so the other windows change none of its bits. (In
    # one batch, MKL's and oneDNN's kernels rounded some windows differently for another batch
    # size: 1 of 342 by 1.4e-8 ppm here, 1 of 36 by 5.7e-9 on an Intel Xeon.)
    whole = forecaster.predict(frame)
    assert len(whole) == len(frame) - LOOKBACK - 1
    joined = recorded.merge(whole, on=["time", "step"], suffixes=("_recorded", ""))
    assert len(joined) == len(recorded)
    np.testing.assert_array_equal(joined["predicted"], joined["predicted_recorded"])
    assert not np.allclose(joined["predicted"], joined["naive_last"])  # a real model, not the last value


def test_the_same_model_loads_from_the_folder_and_from_the_storage_without_writing_it(co2_run: Path, tmp_path: Path):
    url, name = _storage(co2_run)
    db = Path(url[len("sqlite:///") :])
    before = (hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns, sorted(db.parent.iterdir()))
    from_storage = load_forecaster(storage=url, study_name=name)
    from_folder = load_forecaster(co2_run)
    assert from_storage.card == from_folder.card
    frame = _co2_frame()
    pd.testing.assert_frame_equal(from_storage.predict(frame), from_folder.predict(frame), check_exact=True)
    pd.testing.assert_frame_equal(from_storage.forecast(steps=5), from_folder.forecast(steps=5), check_exact=True)
    # Only read: the database is unchanged, and no journal or other file appeared beside it.
    assert (hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns, sorted(db.parent.iterdir())) == before
    missing = tmp_path / "none.db"
    with pytest.raises(ConfigError, match="does not exist"):
        load_forecaster(storage=f"sqlite:///{missing}", study_name=name)
    assert not missing.exists()


def test_a_forecast_past_the_end_of_co2_continues_its_weeks_inside_its_bands(co2_run: Path):
    forecaster = load_forecaster(co2_run)
    frame = _co2_frame()
    last = frame["date"].iloc[-1]
    forecast = forecaster.forecast(steps=10)
    assert list(forecast.columns) == ["time", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"]
    assert len(forecast) == 10
    assert forecast["time"].iloc[0] == last + WEEK
    assert (forecast["time"].diff().iloc[1:] == WEEK).all()
    values = forecast.drop(columns="time").to_numpy()
    assert np.isfinite(values).all()
    f = forecast
    assert (
        (f.lower_95 <= f.lower_80) & (f.lower_80 < f.forecast) & (f.forecast < f.upper_80) & (f.upper_80 <= f.upper_95)
    ).all()
    # Step 1 is the model's forecast for the last window of the data: predict() on the data
    # with one more (any) row gives that window's prediction (a batch of one, both times).
    tail = pd.concat([frame.tail(LOOKBACK + 1), pd.DataFrame({"date": [last + WEEK], "co2": [0.0]})])
    assert forecaster.predict(tail)["predicted"].tolist() == [forecast["forecast"].iloc[0]]
    # Step 2 feeds step 1 back as the newest value: the same as forecasting one step from the
    # data extended by it.
    step1 = pd.DataFrame({"date": [forecast["time"].iloc[0]], "co2": [forecast["forecast"].iloc[0]]})
    extended = pd.concat([frame, step1])
    assert forecaster.forecast(steps=1, data=extended)["forecast"].iloc[0] == forecast["forecast"].iloc[1]

    # Half-widths: the card's conformal one at step 1 (= H), then grown by sqrt(k / H).
    for level in ("80", "95"):
        half = (f[f"upper_{level}"] - f["forecast"]).to_numpy()
        card = forecaster.card["intervals"][level][0]
        np.testing.assert_allclose(half, card * np.sqrt(np.arange(1, 11)), rtol=1e-12)
        np.testing.assert_allclose((f["forecast"] - f[f"lower_{level}"]).to_numpy(), half, rtol=1e-12)


def test_a_forecast_from_a_new_csv_starts_after_its_last_row(co2_run: Path, tmp_path: Path):
    forecaster = load_forecaster(co2_run)
    first = _co2_frame().iloc[:1000]
    csv = tmp_path / "new.csv"
    first.to_csv(csv, index=False)
    forecast = forecaster.forecast(steps=4, data=csv)
    last = first["date"].iloc[-1]
    assert forecast["time"].tolist() == [last + k * WEEK for k in range(1, 5)]
    # The CSV's own last values drive it: about the level of week 1000, far below the 2001 end.
    assert abs(forecast["forecast"].iloc[0] - first["co2"].iloc[-1]) < 3
    assert forecast["forecast"].iloc[0] < forecaster.forecast(steps=1)["forecast"].iloc[0] - 20
    pd.testing.assert_frame_equal(forecaster.forecast(steps=4, data=first), forecast, check_exact=True)
    # A DataFrame indexed by its dates works the same.
    indexed = first.set_index("date")
    pd.testing.assert_frame_equal(forecaster.forecast(steps=4, data=indexed), forecast, check_exact=True)

    out = tmp_path / "cli"
    assert main(["forecast", str(co2_run), "--steps", "4", "--data", str(csv), "--out", str(out), "--quiet"]) == 0
    written = pd.read_csv(out / "forecast.csv", parse_dates=["time"], float_precision="round_trip")
    pd.testing.assert_frame_equal(written, forecast, check_exact=True, check_dtype=False)


def test_a_multivariate_model_holds_the_other_features_at_their_last_value(tiny_csv: Path, tmp_path: Path):
    study = write_study(tmp_path / "mv.toml", 'name = "mv"\nbatch_size = 128\n' + TINY_SPACE)
    args = [
        "run",
        str(study),
        "--data",
        str(tiny_csv),
        "--target",
        "close",
        "--features",
        "close,volume",
        *RUN,
        "--optimizer",
        "random",
        "--budget",
        "2",
        "--pop-size",
        "2",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    forecaster = load_forecaster(tmp_path / "out" / "mv")
    assert forecaster.features == ("close", "volume")
    forecast = forecaster.forecast(steps=3)
    frame = pd.read_csv(tiny_csv, parse_dates=["date"])
    assert forecast["time"].tolist() == [frame["date"].iloc[-1] + pd.Timedelta(days=k) for k in (1, 2, 3)]
    # Step 2 reads step 1 as the newest close and the last observed volume, unchanged.
    held = pd.DataFrame(
        {
            "date": [forecast["time"].iloc[0]],
            "close": [forecast["forecast"].iloc[0]],
            "volume": [frame["volume"].iloc[-1]],
        }
    )
    again = forecaster.forecast(steps=1, data=pd.concat([frame, held]))
    assert again["forecast"].iloc[0] == forecast["forecast"].iloc[1]
    moved = held.assign(volume=frame["volume"].iloc[-1] + 50.0)  # another volume gives another forecast
    other = forecaster.forecast(steps=1, data=pd.concat([frame, moved]))
    assert other["forecast"].iloc[0] != forecast["forecast"].iloc[1]


def test_the_cli_writes_forecast_csv_and_png_and_prints_a_table(co2_run: Path, tmp_path: Path, capsys, monkeypatch):
    assert main(["forecast", str(co2_run), "--steps", "30"]) == 0
    printed = capsys.readouterr().out
    folder = co2_run / "forecast"
    written = pd.read_csv(folder / "forecast.csv", parse_dates=["time"], float_precision="round_trip")
    expected = load_forecaster(co2_run).forecast(steps=30)
    pd.testing.assert_frame_equal(written, expected, check_exact=True, check_dtype=False)
    assert (folder / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "forecast.png").stat().st_size > 10_000
    # The table shows the first and last steps of a long forecast, not all 30.
    for time in (expected["time"].iloc[0], expected["time"].iloc[-1]):
        assert time.strftime("%Y-%m-%d") in printed
    assert expected["time"].iloc[15].strftime("%Y-%m-%d") not in printed
    assert "forecast.csv" in printed
    # It names what forecasts: the study's final forecast (here the best network alone: --final best).
    assert json.loads((co2_run / "summary.json").read_text())["final_forecast"]["kind"] == "best"
    assert "model: lstm, horizon 1" in printed

    # From --storage/--study-name: written to results/<study>/forecast under the current folder.
    url, name = _storage(co2_run)
    monkeypatch.chdir(tmp_path)
    assert main(["forecast", "--storage", url, "--study-name", name, "--steps", "30", "--quiet"]) == 0
    again = pd.read_csv(
        tmp_path / "results" / name / "forecast" / "forecast.csv", parse_dates=["time"], float_precision="round_trip"
    )
    pd.testing.assert_frame_equal(again, written, check_exact=True)


def _bad_inputs(co2_run: Path, comparison: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (hpo-lstm arguments, a phrase of the one-line error)."""
    frame = _co2_frame()
    (tmp / "empty").mkdir()
    no_model = tmp / "old-run"
    no_model.mkdir()
    shutil.copy(co2_run / "summary.json", no_model / "summary.json")
    old = f"sqlite:///{tmp / 'old.db'}"
    old_study = optuna.create_study(study_name="old", storage=old)  # as an hpo-lstm older than saved models left it
    old_study.set_user_attr("hpo_lstm_identity", "{}")
    old_study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    wrong_column = tmp / "wrong.csv"
    frame.rename(columns={"co2": "ppm"}).to_csv(wrong_column, index=False)
    short = tmp / "short.csv"
    frame.iloc[:LOOKBACK].to_csv(short, index=False)  # lookback rows: one fewer than needed
    pickled, garbage, not_json = (
        shutil.copytree(co2_run / "model", tmp / name / "model").parent for name in ("pickled", "garbage", "not-json")
    )
    import torch

    torch.save({"head.weight": torch.zeros(1, 4)}, pickled / "model" / "weights.safetensors")  # a pickle
    weights = garbage / "model" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    (not_json / "model" / "model.json").write_text("{ not json")
    run = str(co2_run)
    return {
        "no model folder": ([str(tmp / "empty"), "--steps", "3"], "holds no model/"),
        "a run without a saved model": ([str(no_model), "--steps", "3"], "holds no saved model"),
        "a study recorded without a model": (
            ["--storage", old, "--study-name", "old", "--steps", "3"],
            "has no saved model",
        ),
        "a missing column": ([run, "--steps", "3", "--data", str(wrong_column)], "Column 'co2' is not in the data"),
        "too few rows": ([run, "--steps", "3", "--data", str(short)], "needs at least lookback + 1 = 9"),
        "a missing csv": ([run, "--steps", "3", "--data", str(tmp / "nope.csv")], "does not exist"),
        "zero steps": ([run, "--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
        "steps past pandas' last date": ([run, "--steps", "100000"], "go past the last time stamp pandas can hold"),
        "no steps": ([run], "--steps"),
        "pickled weights": ([str(pickled), "--steps", "3"], "is not a readable weights file"),
        "truncated weights": ([str(garbage), "--steps", "3"], "is not a readable weights file"),
        "a card that is not json": ([str(not_json), "--steps", "3"], "is not readable JSON"),
        "an unknown cell": ([str(comparison), "--steps", "3", "--cell", "gru.woa.0"], "Unknown cell 'gru.woa.0'"),
        "a cell of a run": ([run, "--steps", "3", "--cell", "lstm.random.0"], "--cell picks a cell"),
        "both result and storage": ([run, "--storage", old, "--study-name", "old", "--steps", "3"], "not both"),
        "neither result nor storage": (["--steps", "3"], "not both, not neither"),
        "storage without study name": (["--storage", old, "--steps", "3"], "needs --study-name"),
        "an unknown study": (["--storage", old, "--study-name", "nope", "--steps", "3"], "holds no study 'nope'"),
    }


def test_every_bad_input_is_one_line_and_exit_status_2(co2_run: Path, sine_comparison: Path, tmp_path: Path, capsys):
    cases = _bad_inputs(co2_run, sine_comparison, tmp_path)
    capsys.readouterr()
    for name, (args, phrase) in cases.items():
        code = main(["forecast", *args])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, f"{name}: exit {code}, stderr {captured.err!r}"
        assert len(lines) == 1 and lines[0].startswith("hpo-lstm: error: "), f"{name}: {captured.err!r}"
        assert phrase in lines[0], f"{name}: {lines[0]!r}"
        assert "Traceback" not in captured.err and captured.out == "", name
    # Nothing was written where the bad inputs pointed.
    assert not any((tmp_path / name / "forecast").exists() for name in ("empty", "pickled", "garbage", "not-json"))
    with pytest.raises(ModelFileError):  # the same refusals from Python
        load_forecaster(tmp_path / "pickled")
    with pytest.raises(ConfigError, match="`steps` must be an integer from 1 to 100,000; got 0"):
        load_forecaster(co2_run).forecast(steps=0)


def test_a_comparison_folder_gives_its_best_cell_or_the_one_named(sine_comparison: Path):
    cells = pd.read_csv(sine_comparison / "cells.csv")
    assert sorted(cells["study"]) == ["tiny.lstm.random.seed0", "tiny.lstm.untuned.seed0"]
    best = cells.loc[cells["best_val_rmse"].idxmin(), "study"]
    assert load_forecaster(sine_comparison).card["study_name"] == best
    untuned = load_forecaster(sine_comparison, cell="lstm.untuned.0")
    assert untuned.card["study_name"] == "tiny.lstm.untuned.seed0"
    assert untuned.card["params"]["hidden_size"] == 50
    assert load_forecaster(sine_comparison, cell="lstm.random.0").card["study_name"] == "tiny.lstm.random.seed0"

    # Horizon 2, row-numbered: steps 1..2 come from the model, later ones recursively; times
    # continue the row numbers of the 3,000-point sine.
    assert untuned.horizon == 2
    forecast = untuned.forecast(steps=5)
    assert forecast["time"].tolist() == [3000, 3001, 3002, 3003, 3004]
    for level in ("80", "95"):
        card = untuned.card["intervals"][level]
        expected = [card[0], card[1], *(card[1] * math.sqrt(k / 2) for k in (3, 4, 5))]
        np.testing.assert_allclose((forecast[f"upper_{level}"] - forecast["forecast"]).to_numpy(), expected, rtol=1e-12)
    # Its predictions of the test windows are the cell's recorded ones, bit for bit, both steps.
    url = json.loads((sine_comparison / "compare.json").read_text())["storage"]
    study = optuna.load_study(study_name="tiny.lstm.untuned.seed0", storage=url)
    recorded = pd.DataFrame(StudyRecord(study, study._storage, url).final[1])
    series = load_series("sine")
    frame = pd.DataFrame({"y": series.values[:, 0]})
    first = int(recorded["time"].iloc[0])  # row numbers are the times
    again = untuned.predict(frame.iloc[first - 1 - untuned.lookback :].reset_index(drop=True))
    again["time"] += first - 1 - untuned.lookback  # rows of the cut frame -> rows of the series
    assert again["step"].tolist() == recorded["step"].tolist() == [1, 2] * (len(recorded) // 2)
    assert again["time"].tolist() == recorded["time"].tolist()
    assert np.array_equal(again["predicted"].to_numpy(), np.asarray(recorded["predicted"], dtype=float))

    assert main(["forecast", str(sine_comparison), "--cell", "lstm.untuned.0", "--steps", "5", "--quiet"]) == 0
    written = pd.read_csv(sine_comparison / "forecast" / "forecast.csv", float_precision="round_trip")
    pd.testing.assert_frame_equal(written, forecast, check_exact=True, check_dtype=False)


def test_daily_data_that_never_falls_on_a_weekend_is_continued_on_business_days():
    from hpo_lstm.forecaster import _future_times

    trading = pd.bdate_range("2017-10-02", "2017-11-10").delete(5)  # business days, one holiday: no frequency
    assert pd.infer_freq(trading) is None
    future = _future_times(trading.values, {"freq": None, "step_seconds": 86400.0}, 3)
    assert [str(t.date()) for t in future] == ["2017-11-13", "2017-11-14", "2017-11-15"]  # Friday -> Monday
    every_day = pd.date_range("2017-10-02", "2017-11-10").delete(5)
    future = _future_times(every_day.values, {"freq": None, "step_seconds": 86400.0}, 2)
    assert [str(t.date()) for t in future] == ["2017-11-11", "2017-11-12"]
    # A saved model keeps only its window's stamps (lookback + 1): too few to tell business days
    # by; its card records what the whole series showed.
    assert time_step(trading.values)["weekdays_only"] and not time_step(every_day.values)["weekdays_only"]
    short = trading[-6:].values
    card = {"freq": None, "step_seconds": 86400.0, "weekdays_only": True}
    assert [t.day_name() for t in _future_times(short, card, 2)] == ["Monday", "Tuesday"]
    old_card = {"freq": None, "step_seconds": 86400.0}  # written before the card recorded it
    assert [t.day_name() for t in _future_times(short, old_card, 2)] == ["Saturday", "Sunday"]


def test_daily_stamps_of_a_zone_with_summer_time_continue_at_its_midnight():
    """Local midnights are 23 or 25 hours apart where the clocks change; a forecast continues on
    the zone's clock (held in UTC like the data), not in steps of 24 hours."""
    from hpo_lstm.data import zone_times
    from hpo_lstm.forecaster import _future_times

    local = pd.date_range("2020-09-01", "2020-10-23", freq="D", tz="Europe/Berlin")
    utc = local.tz_convert("UTC").tz_localize(None).values
    info = time_step(utc, "Europe/Berlin") | {"zone": "Europe/Berlin"}
    future = zone_times(_future_times(utc, info, 4), "Europe/Berlin")
    assert [str(t) for t in future] == [
        "2020-10-24 00:00:00+02:00",
        "2020-10-25 00:00:00+02:00",
        "2020-10-26 00:00:00+01:00",  # after the change back to winter time
        "2020-10-27 00:00:00+01:00",
    ]
    hourly = pd.date_range("2020-10-24 22:00", periods=48, freq="h", tz="Europe/Berlin").tz_convert("UTC")
    hours = hourly.tz_localize(None).values
    ahead = _future_times(hours, time_step(hours, "Europe/Berlin") | {"zone": "Europe/Berlin"}, 2)
    assert list(ahead) == list(
        hourly.tz_localize(None)[-1] + pd.Timedelta(hours=1) * np.arange(1, 3)
    )  # hours stay hours


def test_a_card_from_before_clock_time_continues_its_utc_frequency():
    """A card written before time.weekdays_only read its frequency off the UTC stamps: Sundays at
    midnight in Tokyo are Saturdays at 15:00 UTC ("W-SAT"). Its forecast continues in UTC, as
    when it was written; a card of today reads the steps on Tokyo's clock. Either way: Sundays."""
    from hpo_lstm.data import zone_times
    from hpo_lstm.forecaster import _future_times

    sundays = pd.date_range("2020-01-05", periods=30, freq="W-SUN", tz="Asia/Tokyo")
    utc = sundays.tz_convert("UTC").tz_localize(None).values
    old = {k: v for k, v in time_step(utc).items() if k != "weekdays_only"}  # as an older card holds it
    assert old["freq"] == "W-SAT"
    for info in (old | {"zone": "Asia/Tokyo", "clock": False}, time_step(utc, "Asia/Tokyo") | {"zone": "Asia/Tokyo"}):
        future = zone_times(_future_times(utc, info, 2), "Asia/Tokyo")
        assert [t.day_name() for t in future] == ["Sunday", "Sunday"] and future[0] == sundays[-1] + pd.Timedelta(
            weeks=1
        )
