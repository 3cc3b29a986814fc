"""Small hostile inputs, each with its one-line error or its sensible behaviour: flags out of
range, a budget of 2**70, values too large to scale, bad arguments to the Python API, a closed
pipe, an interrupted forecast, a full disk under forecast, a hand-edited comparison manifest."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import start_cli

from hpo_lstm import ConfigError, DataError, load_forecaster
from hpo_lstm.cli import main

RUN = [
    "--data",
    "sine",
    "--lookback",
    "8",
    "--max-epochs",
    "2",
    "--patience",
    "2",
    "--optimizer",
    "random",
    "--budget",
    "2",
    "--pop-size",
    "2",
    "--workers",
    "1",
    "--quiet",
    "--final",
    "best",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    assert main(["run", *RUN, "--out", str(out)]) == 0
    return out / "sine-lstm-random-seed0"


def _one_line(capsys, starts: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"hpo-lstm: error: {starts}"), err
    return err


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (["run", "--workers", "0"], "argument --workers: expected an integer >= 1, got '0'"),
        (["run", "--max-epochs", "-3"], "argument --max-epochs: expected an integer >= 1"),
        (["forecast", "x", "--steps", str(10**23)], "--steps must be an integer from 1 to 100,000"),
    ],
)
def test_flags_out_of_range_are_one_line(args, starts, capsys):
    assert main(args) == 2
    _one_line(capsys, starts)


def test_a_budget_of_2_to_the_70_is_refused(tmp_path: Path, capsys):
    (tmp_path / "s.toml").write_text(f"budget = {2**70}\n")
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path)]) == 2
    _one_line(capsys, "budget must be an integer from 1 to 1,000,000; got 1,180,591,620,717,411,303,424.")


def test_values_too_large_to_scale_are_refused_before_anything_trains(tmp_path: Path, capsys):
    t = pd.date_range("2020-01-01", periods=300, freq="D")
    y = 1e300 * (1 + np.sin(np.arange(300) * 0.2))
    pd.DataFrame({"date": t.strftime("%Y-%m-%d"), "y": y}).to_csv(tmp_path / "huge.csv", index=False)
    assert main(["run", "--data", str(tmp_path / "huge.csv"), "--target", "y", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "Column 'y' holds values as large as 2e+300; above 1e+150 their scaling overflows.")
    assert not (tmp_path / "o" / "hpo-lstm.db").exists()


def test_the_python_api_refuses_bad_arguments_with_its_own_errors(model: Path):
    with pytest.raises(ConfigError, match=r"`result` must be str or Path; got 5"):
        load_forecaster(5)
    forecaster = load_forecaster(model)
    with pytest.raises(ConfigError, match=r"Interval level must be one of '80', '95'; got '99'"):
        forecaster.halfwidths("99", 3)
    for points in (0, -1, 2.5):
        with pytest.raises(ConfigError, match="recent points must be an integer >= 1"):
            forecaster.recent(points)
    assert len(forecaster.recent(3)) == 3
    with pytest.raises(DataError, match="does not exist"):
        forecaster.forecast(2, data="no-such.csv")


def test_a_closed_pipe_ends_a_listing_quietly():
    run = subprocess.run(
        f"{sys.executable} -m hpo_lstm.cli optimizers --all | head -2; echo rc=${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
    )
    assert run.stderr == "", run.stderr
    assert run.stdout.splitlines()[-1] == "rc=141"


def test_an_interrupted_forecast_says_nothing_of_resuming_and_writes_nothing(model: Path, tmp_path: Path):
    out = tmp_path / "f"
    proc = start_cli(["forecast", str(model), "--steps", "90000", "--out", str(out), "--quiet"])
    time.sleep(4)  # started, forecasting step by step
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "hpo-lstm: interrupted; no file was left half-written.\n"
    assert not (out / "forecast.csv").exists() and not (out / "forecast.png").exists()


def test_a_ctrl_c_that_python_wraps_in_another_error_is_still_an_interrupt(tmp_path: Path, monkeypatch, capsys):
    # Ctrl-C while a class body is made (as when torch is imported) lands in __set_name__, and
    # Python 3.11 turns it into "RuntimeError: Error calling __set_name__" with the
    # KeyboardInterrupt as its cause: a traceback and exit 1 before. Here a model module of the
    # user's raises it the same way while it is imported.
    (tmp_path / "ctrl_c_model.py").write_text(
        "class Pressed:\n"
        "    def __set_name__(self, owner, name):\n"
        "        raise KeyboardInterrupt\n\n\n"
        "class Net:\n"
        "    field = Pressed()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["run", "--data", "sine", "--model", "ctrl_c_model:Net", "--budget", "2", "--out", str(tmp_path / "out")]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert err == "hpo-lstm: interrupted; run the same command again to resume the study.\n", err


def test_a_full_disk_under_forecast_leaves_the_old_pair_of_files(model: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "f"
    assert main(["forecast", str(model), "--steps", "3", "--out", str(out), "--quiet"]) == 0
    before = {name: (out / name).read_bytes() for name in ("forecast.csv", "forecast.png")}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    import hpo_lstm.report._plots

    monkeypatch.setattr(hpo_lstm.report._plots, "plot_forecast", full)  # what the command draws with
    assert main(["forecast", str(model), "--steps", "5", "--out", str(out), "--quiet"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["forecast.csv", "forecast.png"]  # no temporary left


def test_a_manifest_pointing_a_cell_at_another_study_is_refused(tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "compare",
                "--data",
                "sine",
                "--lookback",
                "8",
                "--max-epochs",
                "1",
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
                "--workers",
                "1",
                "--no-untuned",
                "--name",
                "cmp",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    manifest = json.loads((out / "cmp" / "compare.json").read_text())
    manifest["cells"][0]["study"] = "someone-elses-study"
    (out / "cmp" / "compare.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["forecast", str(out / "cmp"), "--steps", "2", "--quiet"]) == 2
    _one_line(
        capsys,
        f"'{out / 'cmp' / 'compare.json'}' is not a manifest hpo-lstm compare wrote: cells[0].study is "
        "'someone-elses-study', not 'cmp.lstm.random.seed0'",
    )
