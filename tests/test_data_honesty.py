"""Data honesty: what loading filled or found is said, a time column must hold time, and a
study of another direction is not adopted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpo_lstm.cli import main
from hpo_lstm.data import load_series


def _csv(path: Path, dates, values) -> Path:
    lines = ["date,close,volume"] + [f"{d},{v},{1000 + i}" for i, (d, v) in enumerate(zip(dates, values))]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(csv: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--data",
        str(csv),
        "--target",
        "close",
        "--lookback",
        "7",
        "--max-epochs",
        "1",
        "--optimizer",
        "random",
        "--budget",
        "2",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def test_fifty_missing_days_are_said_not_hidden(tmp_path: Path, capsys):
    rng = np.random.default_rng(0)
    days = np.datetime64("2024-01-01") + np.r_[np.arange(100), np.arange(151, 300)]  # a 51-day jump
    csv = _csv(tmp_path / "jump.csv", days, np.round(100 + rng.normal(0, 1, len(days)).cumsum(), 3))
    assert main(_run(csv, tmp_path)) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "jump-lstm-random-seed0" / "summary.json").read_text())
    notes = summary["protocol"]["data_notes"]
    assert (
        len(notes) == 1
        and "time steps are irregular: 1 step(s)" in notes[0]
        and "the usual 1 day, the longest 52 days" in notes[0]
    )
    assert "data: time steps are irregular" in " ".join(out.split())  # rich folds long lines


def test_filled_values_are_printed(tmp_path: Path, capsys):
    rng = np.random.default_rng(1)
    days = np.datetime64("2024-01-01") + np.arange(240)
    values = [f"{v:.3f}" for v in 100 + rng.normal(0, 1, 240).cumsum()]
    values[50] = values[51] = ""
    csv = _csv(tmp_path / "gappy.csv", days, values)
    assert main(_run(csv, tmp_path)) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich folds long lines
    assert "data: column 'close': 2 missing value(s) filled by interpolation in time, the first at 2024-02-20" in out


def test_a_time_column_of_plain_numbers_is_refused(tmp_path: Path, tiny_csv: Path, capsys):
    assert main(_run(tiny_csv, tmp_path, "--time-column", "volume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Time column 'volume' holds numbers" in err and "--time-column" in err, err
    assert not (tmp_path / "hpo-lstm.db").exists()


def test_a_time_column_of_whole_years_is_read_as_years(tmp_path: Path):
    path = tmp_path / "years.csv"
    path.write_text("year,y\n" + "".join(f"{1800 + i},{np.sin(i / 5):.4f}\n" for i in range(200)))
    series = load_series(str(path), target="y", time_column="year")
    assert str(series.times[0])[:10] == "1800-01-01" and str(series.times[-1])[:4] == "1999"
    assert series.notes == ()


def test_a_study_of_another_direction_is_not_adopted(tmp_path: Path, capsys):
    optuna.create_study(storage=f"sqlite:///{tmp_path / 'hpo-lstm.db'}", study_name="max", direction="maximize")
    args = [
        "run",
        "--data",
        "sine",
        "--optimizer",
        "random",
        "--budget",
        "2",
        "--pop-size",
        "2",
        "--max-epochs",
        "1",
        "--study-name",
        "max",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists with direction maximize" in err and "--study-name" in err, err
    assert optuna.load_study(study_name="max", storage=f"sqlite:///{tmp_path / 'hpo-lstm.db'}").trials == []


def _dates(n: int) -> list[str]:
    import pandas as pd

    return pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d").tolist()


def _mixed_zones(n: int) -> list[str]:
    return [d + "T00:00:00+01:00" if i % 3 == 0 else d for i, d in enumerate(_dates(n))]


def _other_format(n: int) -> list[str]:
    dates = _dates(n)
    dates[7] = "01/08/2020"
    return dates


@pytest.mark.parametrize(
    ("dates", "phrase"),
    [
        (
            _mixed_zones,
            "Time column 'date' mixes stamps with a zone or UTC offset ('2020-01-01T00:00:00+01:00') and stamps "
            "without ('2020-01-02'); write every stamp with one, or none.",
        ),
        (
            _other_format,
            "Time column 'date' has '01/08/2020', a date/time written otherwise than its first value ('2020-01-01')",
        ),
        (
            lambda n: _dates(n)[:7] + ["soon"] + _dates(n)[8:],
            "Time column 'date' has a value that is not a date/time: 'soon'.",
        ),
    ],
)
def test_a_time_stamp_that_cannot_be_read_says_why(tmp_path: Path, capsys, dates, phrase):
    csv = _csv(tmp_path / "d.csv", dates(60), np.arange(60.0))
    assert main(_run(csv, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and phrase in err, err


def test_a_repeated_column_name_is_refused_not_renamed(tmp_path: Path, capsys):
    import pandas as pd

    csv = tmp_path / "dup.csv"
    csv.write_text("date,close,close\n" + "".join(f"{d},{i},{2 * i}\n" for i, d in enumerate(_dates(60))))
    assert main(_run(csv, tmp_path)) == 2  # pandas alone would read the second as 'close.1'
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Column name 'close' appears more than once in data file" in err, err
    frame = pd.DataFrame([[d, i, 2 * i] for i, d in enumerate(_dates(60))], columns=["date", "close", "close"])
    with pytest.raises(Exception, match="Column name 'close' appears more than once in the data"):
        load_series(frame, target="close")


def test_an_infinite_value_is_named_by_its_column_and_row(tmp_path: Path, capsys):
    values = np.arange(60.0)
    values[5] = -np.inf
    assert main(_run(_csv(tmp_path / "d.csv", _dates(60), values), tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Column 'close' holds an infinite value (-inf, data row 5)" in err, err


def test_a_file_separated_by_semicolons_is_named_as_such(tmp_path: Path, capsys):
    csv = tmp_path / "semi.csv"
    csv.write_text("date;close\n" + "".join(f"{d};{i}\n" for i, d in enumerate(_dates(60))))
    assert main(_run(csv, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "separates its columns with ';', not commas" in err, err
