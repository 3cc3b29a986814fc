"""Time stamps with a zone or a UTC offset: read (held in UTC), said in a data note, and written
back in their zone in forecasts; stamps with several offsets (a daylight-saving change) read as
UTC. Before, a zoned time column made every study fail at its very end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpo_lstm import load_forecaster
from hpo_lstm.cli import main
from hpo_lstm.data import load_series

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
]


def _csv(path: Path, stamps: list[str]) -> Path:
    pd.DataFrame({"date": stamps, "y": np.sin(np.arange(len(stamps)) * 0.2)}).to_csv(path, index=False)
    return path


def _daily(n: int = 400) -> pd.DatetimeIndex:
    return pd.date_range("2020-01-01", periods=n, freq="D")


@pytest.mark.parametrize(("suffix", "zone", "noted"), [("Z", "UTC", False), ("+05:30", "UTC+05:30", True)])
@pytest.mark.parametrize("calendar", ["--calendar", "--no-calendar"])
def test_a_zoned_time_column_runs_to_the_end_and_forecasts_in_its_zone(tmp_path: Path, suffix, zone, noted, calendar):
    stamps = [t + suffix for t in _daily().strftime("%Y-%m-%dT%H:%M:%S")]
    data = _csv(tmp_path / "zoned.csv", stamps)
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), *RUN, calendar, "--out", str(out)]) == 0
    folder = out / "zoned-lstm-random-seed0"
    summary = json.loads((folder / "summary.json").read_text())
    notes = " ".join(summary["protocol"]["data_notes"])
    assert (f"stamps in {zone} were converted to UTC; forecasts are written in {zone}" in notes) == noted
    card = json.loads((folder / "model" / "model.json").read_text())
    assert card["time_zone"] == zone
    forecast = load_forecaster(folder).forecast(3)
    last = pd.Timestamp(stamps[-1])
    assert list(forecast["time"]) == [last + pd.Timedelta(days=k) for k in (1, 2, 3)]
    assert str(forecast["time"].iloc[0].utcoffset()) == ("0:00:00" if zone == "UTC" else "5:30:00")
    assert main(["forecast", str(folder), "--steps", "2", "--quiet"]) == 0
    written = (folder / "forecast" / "forecast.csv").read_text().splitlines()[1]
    assert written.startswith((last + pd.Timedelta(days=1)).isoformat(sep=" "))


def test_stamps_with_several_offsets_are_read_as_utc_with_a_note(tmp_path: Path):
    local = pd.date_range("2021-03-20", periods=400, freq="h", tz="Europe/Berlin")  # crosses 2021-03-28
    data = _csv(tmp_path / "dst.csv", [t.isoformat() for t in local])
    series = load_series(str(data), target="y")
    assert series.time_zone == "UTC"
    assert (pd.DatetimeIndex(series.times) == local.tz_convert("UTC").tz_localize(None)).all()
    assert any("several UTC offsets (UTC+01:00, UTC+02:00" in note for note in series.notes)
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), *RUN, "--out", str(out)]) == 0
    forecast = load_forecaster(out / "dst-lstm-random-seed0").forecast(2)
    assert forecast["time"].iloc[0] == local[-1].tz_convert("UTC") + pd.Timedelta(hours=1)


def test_a_saved_model_of_zoned_business_days_continues_at_their_midnight_on_weekdays(tmp_path: Path):
    """A DataFrame of business days (with holidays) at midnight in Europe/Berlin, and a lookback
    short enough that the saved model keeps under two weeks of stamps: its forecast past the data
    continues on weekdays, at local midnight across the change to summer time."""
    from hpo_lstm import StudyConfig, run_study, write_run_outputs

    days = pd.bdate_range("2020-01-01", "2020-03-26", tz="Europe/Berlin").delete([10, 30])  # Thursday 26 March
    frame = pd.DataFrame({"y": np.sin(np.arange(len(days)) * 0.3) + 5}, index=days)
    config = StudyConfig(
        data=frame, target="y", optimizer="random", budget=2, pop_size=2, max_epochs=1, lookback=5, out=str(tmp_path)
    )
    result = run_study(config, workers=1)
    write_run_outputs(result, tmp_path / "run")
    forecast = load_forecaster(tmp_path / "run").forecast(4)
    assert [str(t) for t in forecast["time"]] == [
        "2020-03-27 00:00:00+01:00",  # Friday
        "2020-03-30 00:00:00+02:00",  # Monday, after the clocks moved on Sunday
        "2020-03-31 00:00:00+02:00",
        "2020-04-01 00:00:00+02:00",
    ]


def test_a_model_card_from_before_clock_time_still_forecasts_its_own_weekdays(tmp_path: Path):
    """Weekly data on Sundays at midnight in Tokyo: a card of today reads the steps on Tokyo's
    clock; a card written before time.weekdays_only holds the frequency of the UTC stamps
    (Saturdays, "W-SAT") and must go on continuing it in UTC, not a day early on Tokyo's clock."""
    from hpo_lstm import StudyConfig, run_study, write_run_outputs

    sundays = pd.date_range("2015-01-04", periods=200, freq="W-SUN", tz="Asia/Tokyo")
    frame = pd.DataFrame({"y": np.sin(np.arange(200) * 0.4) + 5}, index=sundays)
    config = StudyConfig(
        data=frame, target="y", optimizer="random", budget=2, pop_size=2, max_epochs=1, lookback=5, out=str(tmp_path)
    )
    write_run_outputs(run_study(config, workers=1), tmp_path / "run")
    expected = [str(sundays[-1] + pd.Timedelta(weeks=k)) for k in (1, 2)]
    assert [str(t) for t in load_forecaster(tmp_path / "run").forecast(2)["time"]] == expected
    card_path = tmp_path / "run" / "model" / "model.json"
    card = json.loads(card_path.read_text())
    card["time"] = {k: v for k, v in card["time"].items() if k != "weekdays_only"} | {"freq": "W-SAT"}
    card_path.write_text(json.dumps(card))
    assert [str(t) for t in load_forecaster(tmp_path / "run").forecast(2)["time"]] == expected
