"""`hpo-lstm forecast --data NEW.csv` reports what `run` would: the data's time step is checked
against the model's (refused in one line when it differs), and the data notes (values filled, a
jump in time inside the input window) are printed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpo_lstm import DataError, load_forecaster
from hpo_lstm.cli import main

RUN = [
    "--target",
    "y",
    "--optimizer",
    "random",
    "--budget",
    "3",
    "--pop-size",
    "3",
    "--max-epochs",
    "2",
    "--lookback",
    "10",
    "--workers",
    "1",
    "--quiet",
    "--final",
    "best",
]


@pytest.fixture(scope="module")
def daily_model(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("daily")
    t = pd.date_range("2020-01-01", periods=400, freq="D")
    pd.DataFrame({"date": t.strftime("%Y-%m-%d"), "y": np.sin(np.arange(400) * 0.2)}).to_csv(
        tmp / "daily.csv", index=False
    )
    assert main(["run", "--data", str(tmp / "daily.csv"), *RUN, "--out", str(tmp / "out")]) == 0
    return tmp / "out" / "daily-lstm-random-seed0"


def test_hourly_data_for_a_daily_model_is_refused_in_one_line(daily_model: Path, tmp_path: Path, capsys):
    h = pd.date_range("2021-01-01", periods=300, freq="h")
    data = tmp_path / "hourly.csv"
    pd.DataFrame({"date": h.strftime("%Y-%m-%d %H:%M"), "y": np.sin(np.arange(300) * 0.2)}).to_csv(data, index=False)
    assert main(["forecast", str(daily_model), "--steps", "3", "--data", str(data), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "hpo-lstm: error: The data's time step is 1 hour ('h'); this model was trained on steps of 1 day "
        "('D'), and forecasts at that step only. Give data at the model's step.\n"
    )
    assert not (daily_model / "forecast").exists()
    with pytest.raises(DataError, match="The data's time step is 1 hour"):  # predict() as forecast()
        load_forecaster(daily_model).predict(str(data))


def test_a_gap_and_a_missing_value_in_the_input_window_are_said(daily_model: Path, tmp_path: Path, capsys):
    t = pd.date_range("2020-01-01", periods=400, freq="D")
    stamps = list(t[:390]) + list(t[390:] + pd.Timedelta(days=6))  # a 6-day jump 10 rows before the end
    y = np.sin(np.arange(400) * 0.2)
    y[395] = np.nan
    data = tmp_path / "gap.csv"
    pd.DataFrame({"date": pd.DatetimeIndex(stamps).strftime("%Y-%m-%d"), "y": y}).to_csv(data, index=False)
    assert main(["forecast", str(daily_model), "--steps", "3", "--data", str(data), "--quiet"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "data: column 'y': 1 missing value(s) filled by interpolation in time" in err
    assert "has a step of 7 days (ending 2021-01-31 00:00:00) where the model's step is 1 day" in err
    forecaster = load_forecaster(daily_model)
    forecaster.forecast(3, data=data)
    assert len(forecaster.data_notes) == 3
