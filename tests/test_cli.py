from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import TINY_SPACE, write_study

from hpo_lstm.cli import main

TINY_RUN = ["--data", "sine", "--lookback", "8", "--max-epochs", "2", "--patience", "2", "--workers", "1", "--quiet"]


def _study(tmp_path: Path, extra: str = "") -> Path:
    return write_study(tmp_path / "tiny.toml", 'name = "tiny"\nbatch_size = 128\n' + extra + TINY_SPACE)


def _trials(out: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'hpo-lstm.db'}")
    return sorted(study.trials, key=lambda t: t.user_attrs["evaluation"])


def _run(tmp_path: Path, out: str, *args: str, extra: str = "") -> int:
    return main(["run", str(_study(tmp_path, extra)), *TINY_RUN, "--out", str(tmp_path / out), *args])


def test_run_end_to_end_records_every_evaluation_and_writes_the_results(tmp_path: Path):
    assert _run(tmp_path, "out", "--optimizer", "woa", "--budget", "12", "--pop-size", "5") == 0
    out = tmp_path / "out"
    trials = _trials(out, "tiny")
    assert len(trials) == 12
    assert [t.user_attrs["evaluation"] for t in trials] == list(range(12))
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert {t.user_attrs["optimizer"] for t in trials} == {"woa"}
    assert [t.user_attrs["generation"] for t in trials] == [0] * 5 + [1] * 5 + [2] * 2
    trained = [t for t in trials if "duplicate_of" not in t.user_attrs]
    assert all(t.user_attrs["epochs"] >= 1 and t.user_attrs["train_seconds"] > 0 for t in trained)

    folder = out / "tiny"
    for name in ("summary.json", "trials.csv", "predictions.csv", "convergence.png", "predictions.png"):
        assert (folder / name).stat().st_size > 0, name
    summary = json.loads((folder / "summary.json").read_text())
    for key in (
        "optimizer",
        "model",
        "dataset",
        "budget",
        "n_evaluations",
        "n_trained",
        "best_params",
        "best_val_rmse",
        "test",
        "baselines",
        "wall_seconds",
        "seed",
    ):
        assert key in summary, key
    assert summary["n_evaluations"] == 12 and summary["budget"] == 12
    assert summary["n_trained"] == len(trained)
    assert summary["best_val_rmse"] == min(t.value for t in trials)
    # Test metrics are in the series' units and recomputable from predictions.csv.
    predictions = pd.read_csv(folder / "predictions.csv")
    error = predictions["predicted"] - predictions["actual"]
    assert summary["test"]["rmse"] == pytest.approx(math.sqrt(float(np.mean(error**2))), rel=1e-9)
    assert summary["test"]["mae"] == pytest.approx(float(np.mean(np.abs(error))), rel=1e-9)
    naive = predictions["naive_last"] - predictions["actual"]
    assert summary["baselines"]["naive_last"]["rmse"] == pytest.approx(math.sqrt(float(np.mean(naive**2))))
    assert summary["test"]["mape"] is None  # the sine crosses zero: MAPE means nothing there
    assert len(pd.read_csv(folder / "trials.csv")) == 12


def test_same_seed_gives_identical_trials_and_workers_do_not_change_them(tmp_path: Path):
    args = ("--optimizer", "pso", "--budget", "10", "--pop-size", "5", "--seed", "4")
    assert _run(tmp_path, "a", *args) == 0
    assert _run(tmp_path, "b", *args, "--workers", "2") == 0
    a, b = (_trials(tmp_path / d, "tiny") for d in ("a", "b"))
    assert [(t.params, t.value) for t in a] == [(t.params, t.value) for t in b]
    summaries = [json.loads((tmp_path / d / "tiny" / "summary.json").read_text()) for d in ("a", "b")]
    assert summaries[0]["test"] == summaries[1]["test"]


def test_duplicate_candidates_are_not_retrained(tmp_path: Path):
    # Two possible candidates only: every further evaluation must come from the memo.
    narrow = "[space]\nlearning_rate = { low = 0.01, high = 0.01 }\nhidden_size = { low = 4, high = 5 }\nn_layers = { low = 1, high = 1 }\n"
    study = write_study(tmp_path / "narrow.toml", 'name = "narrow"\n' + narrow)
    code = main(["run", str(study), *TINY_RUN, "--optimizer", "random", "--budget", "8", "--out", str(tmp_path / "o")])
    assert code == 0
    trials = _trials(tmp_path / "o", "narrow")
    trained = [t for t in trials if "duplicate_of" not in t.user_attrs]
    duplicates = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert len(trials) == 8
    assert len(trained) == len({t.params["hidden_size"] for t in trials}) == 2
    assert len(duplicates) == 6
    by_number = {t.number: t for t in trials}
    for dup in duplicates:
        original = by_number[dup.user_attrs["duplicate_of"]]
        assert dup.params == original.params and dup.value == original.value
        assert "epochs" not in dup.user_attrs
    summary = json.loads((tmp_path / "o" / "narrow" / "summary.json").read_text())
    assert summary["n_trained"] == 2 and summary["n_duplicates"] == 6


def test_a_complete_study_run_again_trains_nothing_and_keeps_its_result(tmp_path: Path, capsys, monkeypatch):
    args = ("--optimizer", "tpe", "--budget", "6", "--pop-size", "3")
    assert _run(tmp_path, "r", *args) == 0
    first = _trials(tmp_path / "r", "tiny")
    summary = (tmp_path / "r" / "tiny" / "summary.json").read_text()
    (tmp_path / "r" / "tiny" / "summary.json").unlink()
    loud = [a for a in TINY_RUN if a != "--quiet"]
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["run", str(_study(tmp_path, "")), *loud, "--out", str(tmp_path / "r"), *args]) == 0
    out = capsys.readouterr().out
    assert "Study 'tiny' is complete (6 evaluations" in out and "nothing was trained" in out
    # The summary fits 80 columns (but for a path longer than that, on a line of its own), each
    # candidate's name on one line, no trailing spaces.
    lines = out.splitlines()
    assert [line for line in lines if len(line) > 80 and len(line.split()) > 2] == []
    assert [line for line in lines if line != line.rstrip()] == []
    assert any("  mean of " in line and " best lstm " in line for line in lines), out
    again = _trials(tmp_path / "r", "tiny")
    assert [(t.number, t.datetime_complete) for t in again] == [(t.number, t.datetime_complete) for t in first]
    # The stored result, wall time included: not a replay's few seconds.
    assert (tmp_path / "r" / "tiny" / "summary.json").read_text() == summary
    # A larger budget continues the same study where it stopped.
    assert _run(tmp_path, "r", "--optimizer", "tpe", "--budget", "9", "--pop-size", "3") == 0
    assert len(_trials(tmp_path / "r", "tiny")) == 9
    # Other settings under the same name are refused, not mixed in.
    capsys.readouterr()
    assert _run(tmp_path, "r", *args, "--seed", "5") == 2
    err = capsys.readouterr().err
    assert "Study 'tiny' already exists" in err and "seed: stored 0, now 5" in err


def test_csv_with_features(tmp_path: Path, tiny_csv: Path):
    code = main(
        [
            "run",
            "--data",
            str(tiny_csv),
            "--target",
            "close",
            "--features",
            "close,volume",
            "--optimizer",
            "random",
            "--budget",
            "4",
            "--pop-size",
            "2",
            "--lookback",
            "7",
            "--max-epochs",
            "2",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "c" / "prices-lstm-random-seed0" / "summary.json").read_text())
    assert summary["features"] == ["close", "volume"]
    assert summary["test"]["mape"] is not None and math.isfinite(summary["test"]["rmse"])


def test_listings(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per entry
    assert main(["optimizers"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == [
        "cmaes",
        "ga",
        "gp",
        "gwo",
        "pso",
        "random",
        "tpe",
        "woa",
        "mealpy:<ClassName>",
    ]
    assert main(["datasets"]) == 0
    assert "co2" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["models"], ["optimizers"], ["optimizers", "--all"], ["datasets"]])
def test_every_listing_fits_80_columns_and_wraps_under_its_descriptions(command):
    import os
    import subprocess
    import sys

    def listing(columns: int) -> list[str]:
        env = {**os.environ, "COLUMNS": str(columns)}
        run = subprocess.run([sys.executable, "-m", "hpo_lstm.cli", *command], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout.splitlines()

    narrow, wide = listing(80), listing(400)
    assert max(map(len, narrow)) <= 80
    assert not [line for line in narrow if line != line.rstrip()]  # no trailing spaces
    # The same words: the narrow listing is the wide one wrapped.
    assert " ".join(" ".join(narrow).split()) == " ".join(" ".join(wide).split())
    assert len(narrow) > len(wide)  # something did wrap at 80


def test_listing_and_errors_do_not_import_heavy_libraries():
    code = (
        "import sys; from hpo_lstm.cli import main; "
        "main(['optimizers']); main(['run', '--optimizer', 'wao']); main(['--help']); "
        "main(['compare', '--optimizers', 'wao']); main(['report', 'no-such-folder']); "
        "heavy = [m for m in ('torch', 'mealpy', 'optuna', 'pandas', 'matplotlib') if m in sys.modules]; "
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


BAD_INPUTS = [
    (
        ["--optimizer", "wao"],
        "Unknown optimizer 'wao'; choose from cmaes, ga, gp, gwo, pso, random, tpe, woa, or mealpy:<ClassName>",
    ),
    (
        ["--model", "transformer"],
        "Unknown model 'transformer'; choose from attention-lstm, bilstm, cnn-lstm, gru, lstm, seq2seq, or name your own as module:Class (docs/models.md).",
    ),
    (["--data", "co3"], "Unknown dataset 'co3'; choose from co2, sine, or give a path to a CSV file."),
    (["--data", "missing.csv", "--target", "y"], "Data file 'missing.csv' does not exist or is not a file."),
    (["--budget", "3", "--pop-size", "8"], "budget must be at least one population (pop_size=8)"),
    (["--budget", "zero"], "argument --budget: expected an integer, got 'zero'"),
    (["--split", "0.7,0.2,0.2"], "split fractions must sum to 1; got (0.7, 0.2, 0.2)"),
    (["--lookback", "0"], "argument --lookback: expected an integer >= 1, got '0'"),
    (["--seed", "-5"], "seed must be an integer from 0 to 4294967295 (2**32 - 1); got -5."),
    (["--storage", "nosuchdb://x"], "Cannot open storage 'nosuchdb://x'"),
    (["--storage", "http://x"], "Cannot open storage 'http://x': no database kind 'http'; give sqlite:///FILE"),
    (
        ["--storage", "sqlite:///no/such/folder/x.db"],
        "unable to open database file (its folder 'no/such/folder' does not exist)",
    ),
    (["--device", "tpu"], "Unknown device 'tpu'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--data", "sine", "--lookback", "2990"], "Too few rows: 3000 rows with lookback=2990"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_input_gives_one_line_and_exit_2(tmp_path: Path, capsys, args, message):
    code = main(["run", *args, "--out", str(tmp_path), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("hpo-lstm: error: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optimiser = 'woa'\n", "Unknown key(s) ['optimiser'] in study file"),
        ("budget = \n", "is not valid TOML"),
        (
            "models = ['lstm']\nseeds = 2\n",
            "is a comparison file (it sets ['models', 'seeds']); run it with: hpo-lstm compare",
        ),
        (
            "[space]\nlearning_rate = { low = 0, high = 0.1, log = true }\n",
            "The 'low' bound of search parameter 'learning_rate' must be > 0; got 0.",
        ),
        (
            "[space]\nhidden_size = { low = 64, high = 8 }\n",
            "`low <= high` must hold for parameter 'hidden_size', but got (low=64, high=8).",
        ),
        ("[space]\nn_layers = { low = 0, high = 2 }\n", "search parameter 'n_layers' must be >= 1; got 0."),
        (
            "[space]\nn_layers = { low = 1, high = 1000000 }\n",
            "search parameter 'n_layers' must be <= 64; got 1000000.",
        ),
        (
            "optimizer = 'tpe'\n[optimizer_options]\nbogus = 1\n",
            "Optimizer 'tpe' takes no option 'bogus'; its options: n_startup_trials.",
        ),
        (
            "[space]\nhidden_size = { low = 1000000000, high = 1000000000 }\n",
            "The 'low' bound of search parameter 'hidden_size' must be <= 65536; got 1000000000.",
        ),
    ],
)
def test_bad_study_files(tmp_path: Path, capsys, text, message):
    study = write_study(tmp_path / "bad.toml", text)
    assert main(["run", str(study), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_study_file_that_is_not_utf8_is_one_line(tmp_path: Path, capsys):
    study = tmp_path / "latin.toml"
    study.write_bytes('data = "co2"\n# café\n'.encode("latin-1"))
    assert main(["run", str(study), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not UTF-8 text (byte 0xe9 at position 18); TOML files are UTF-8." in err, err


def test_seed_0_the_default_can_be_given():
    from hpo_lstm.cli import _build_parser

    assert _build_parser().parse_args(["run", "--seed", "0"]).seed == 0


def test_unwritable_output_folder(tmp_path: Path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", *TINY_RUN, "--out", str(blocker / "sub")]) == 2
    assert "Output folder" in capsys.readouterr().err


RUN_STUDY_FILES = sorted(
    p for p in Path(__file__).parent.parent.joinpath("studies").glob("*.toml") if not p.name.startswith("compare_")
)


@pytest.mark.parametrize("path", RUN_STUDY_FILES, ids=lambda p: p.name)
def test_shipped_study_files_are_valid(path: Path):
    from hpo_lstm.config import StudyConfig, load_study_file

    config = StudyConfig.from_mapping(load_study_file(path))
    assert config.name, "a shipped study names itself, so re-running it resumes the same study"
    assert config.budget >= config.make_optimizer().min_budget


def test_every_optimizer_has_a_bilstm_co2_study():
    studies = Path(__file__).parent.parent / "studies"
    from hpo_lstm.optimizers import registry

    for name in registry:
        assert (studies / f"{name}_bilstm_co2.toml").is_file(), name


def _csv(tmp_path: Path, body: str | bytes) -> str:
    path = tmp_path / "data.csv"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return str(path)


def _rows(values) -> str:
    return "".join(f"{i},{v}\n" for i, v in enumerate(values))


CSV_BAD_INPUTS = [
    (
        "t,price\n" + _rows(range(300)),
        ["--target", "close"],
        "Column 'close' is not in the data; columns are ['t', 'price'].",
    ),
    (
        "t,price,note\n" + "".join(f"{i},{i},x\n" for i in range(300)),
        ["--target", "price", "--features", "note"],
        "Column 'note' must be numeric; it holds 'x'.",
    ),
    (
        "t,price,empty\n" + "".join(f"{i},{i},\n" for i in range(300)),
        ["--target", "price", "--features", "empty"],
        "Column 'empty' has no values (all empty or NaN).",
    ),
    ("t,price\n" + _rows(range(30)), ["--target", "price"], "Too few rows: 30 rows with lookback=24"),
    ("t,price\n" + _rows([5.0] * 300), ["--target", "price"], "constant over the training rows"),
    (
        "t,price\n" + _rows([float(i) if not 100 <= i < 130 else "" for i in range(300)]),
        ["--target", "price"],
        "Column 'price' has a gap of 30 consecutive missing values; at most 10 are interpolated.",
    ),
    (b"t,price\n1,\xff\xfe\xfa\n", ["--target", "price"], "Cannot read data file"),
]


@pytest.mark.parametrize(("body", "args", "message"), CSV_BAD_INPUTS)
def test_bad_csv_input_gives_one_line_and_exit_2(tmp_path: Path, capsys, body, args, message):
    data = _csv(tmp_path, body)
    code = main(["run", "--data", data, *args, "--out", str(tmp_path / "o"), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_bad_input_leaves_existing_results_untouched(tmp_path: Path, capsys):
    out = tmp_path / "o"
    args = [
        "run",
        *TINY_RUN,
        "--optimizer",
        "random",
        "--budget",
        "2",
        "--pop-size",
        "2",
        "--study-name",
        "keep",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    db = out / "hpo-lstm.db"
    before = (db.read_bytes(), (out / "keep" / "summary.json").read_text())
    assert main([*args, "--max-epochs", "3"]) == 2  # other settings, same study name: refused
    assert main([*args, "--model", "cnn"]) == 2
    assert (db.read_bytes(), (out / "keep" / "summary.json").read_text()) == before
    assert "resume it with the same settings or give a new --study-name" in capsys.readouterr().err


def test_unreachable_storage(tmp_path: Path, capsys):
    code = main(["run", *TINY_RUN, "--storage", "postgresql://nobody@127.0.0.1:1/nothing", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("hpo-lstm: error: Cannot open storage 'postgresql://") and err.count("\n") == 1
