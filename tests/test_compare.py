"""hpo-lstm compare and report: real studies on tiny data, a real SQLite storage, real processes."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import TINY_ARGS, TINY_SPACE, start_cli, wait_for, write_study
from scipy.stats import wilcoxon

from hpo_lstm.cli import main
from hpo_lstm.report._compare import fmt

TINY = TINY_ARGS
FILES = (
    "report.md",
    "cells.csv",
    "test_metrics.csv",
    "model_comparison.csv",
    "optimizer_ranking.csv",
    "against_statistical.csv",
    "baselines.csv",
    "convergence.csv",
    "convergence_bands.csv",
    "trials.csv",
    "predictions.csv",
    "convergence.png",
    "predictions.png",
    "params.png",
    "compare.json",
)


def _compare_file(tmp_path: Path, extra: str = "") -> Path:
    return write_study(tmp_path / "cmp.toml", 'name = "tiny"\nbatch_size = 256\n' + extra + TINY_SPACE)


@pytest.fixture(scope="module")
def tiny_comparison(tmp_path_factory) -> Path:
    """2 models x 2 optimizers x 2 seeds (+ untuned rows), budget 10 in batches of 5."""
    tmp_path = tmp_path_factory.mktemp("compare")
    args = [
        "compare",
        str(_compare_file(tmp_path)),
        *TINY,
        "--models",
        "lstm,bilstm",
        "--optimizers",
        "woa,random",
        "--seeds",
        "2",
        "--budget",
        "10",
        "--pop-size",
        "5",
        "--season",
        "63",
        "--workers",
        "2",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    return tmp_path / "out" / "tiny"


def test_compare_writes_every_section_table_and_plot(tiny_comparison: Path):
    for name in FILES:
        assert (tiny_comparison / name).stat().st_size > 0, name
    report = (tiny_comparison / "report.md").read_text()
    for heading in (
        "## 1. Test metrics",
        "## 2. LSTM vs BiLSTM",
        "## 3. Optimizer ranking",
        "## 4. Plots",
        "**Verdict.**",
        "- **Data**",
        "- **Training**",
        "device cpu",
        "seeds 0, 1",
    ):
        assert heading in report, heading
    assert "too few seeds" in report  # 2 seeds cannot carry a signed-rank test, and the report says so
    cells = pd.read_csv(tiny_comparison / "cells.csv")
    assert len(cells) == 2 * 2 * 2 + 2 * 2  # tuned cells + untuned (model x seed)
    assert set(cells["optimizer"]) == {"woa", "random", "untuned"}
    tuned = cells[cells["kind"] == "tuned"]
    assert (tuned["n_evaluations"] == 10).all() and (cells[cells["kind"] == "untuned"]["n_evaluations"] == 1).all()
    untuned = cells[cells["kind"] == "untuned"]
    assert (untuned["param_hidden_size"] == 50).all() and (untuned["param_n_layers"] == 2).all()
    assert np.allclose(untuned["param_learning_rate"], 1e-3)
    baselines = pd.read_csv(tiny_comparison / "baselines.csv").set_index("baseline")
    assert set(baselines.index) == {"naive_last", "seasonal_naive", "auto_ets", "auto_arima"}
    assert baselines.loc["seasonal_naive", "season"] == 63 and (baselines["status"].dropna() == "ok").all()


def test_every_cell_is_a_study_in_one_storage_with_its_trials(tiny_comparison: Path):
    manifest = json.loads((tiny_comparison / "compare.json").read_text())
    storage = manifest["storage"]
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert {c["study"] for c in manifest["cells"]} <= names
    study = optuna.load_study(study_name="tiny.bilstm.woa.seed1", storage=storage)
    assert len(study.trials) == 10
    assert {t.user_attrs["optimizer"] for t in study.trials} == {"woa"}
    assert {t.user_attrs["seed"] for t in study.trials} == {1}


def test_report_numbers_are_recomputable_from_the_csv_files(tiny_comparison: Path):
    cells = pd.read_csv(tiny_comparison / "cells.csv")
    metrics = pd.read_csv(tiny_comparison / "test_metrics.csv")
    report = (tiny_comparison / "report.md").read_text()
    for _, row in metrics[metrics["model"] != "-"].iterrows():
        group = cells[(cells["model"] == row["model"]) & (cells["optimizer"] == row["method"])]
        assert row["n_seeds"] == len(group) == 2
        assert row["test_rmse_mean"] == pytest.approx(group["test_rmse"].mean(), rel=1e-12)
        assert row["test_rmse_std"] == pytest.approx(group["test_rmse"].std(ddof=1), rel=1e-9)
        assert row["best_val_rmse_mean"] == pytest.approx(group["best_val_rmse"].mean(), rel=1e-12)
        line = (
            f"| {row['model']} | {row['method']} | 2 | {fmt(row['test_rmse_mean'])} ± {fmt(row['test_rmse_std'], 2)} |"
        )
        assert line in report, line
    naive = metrics[metrics["method"] == "naive_last"].iloc[0]
    predictions = pd.read_csv(tiny_comparison / "predictions.csv")
    one_model = predictions[predictions["model"] == "lstm"]
    error = one_model["naive_last"] - one_model["actual"]
    assert naive["test_rmse_mean"] == pytest.approx(math.sqrt(float(np.mean(error**2))), rel=1e-9)

    pairs = pd.read_csv(tiny_comparison / "model_comparison.csv")
    row = pairs[pairs["method"] == "woa"].iloc[0]
    a = cells[(cells["model"] == "lstm") & (cells["optimizer"] == "woa")].sort_values("seed")["test_rmse"]
    b = cells[(cells["model"] == "bilstm") & (cells["optimizer"] == "woa")].sort_values("seed")["test_rmse"]
    assert row["test_rmse_a"] == pytest.approx(a.mean()) and row["test_rmse_b"] == pytest.approx(b.mean())
    assert row["relative_difference"] == pytest.approx((b.mean() - a.mean()) / a.mean())
    assert row["p_value"] == pytest.approx(wilcoxon(a.to_numpy(), b.to_numpy()).pvalue)
    assert f"{row['relative_difference']:+.1%}" in report

    ranking = pd.read_csv(tiny_comparison / "optimizer_ranking.csv").set_index("optimizer")
    tuned = cells[cells["kind"] == "tuned"]
    wide = tuned.pivot_table(index=["model", "seed"], columns="optimizer", values="best_val_rmse")
    expected_rank = wide.rank(axis=1).mean()
    for optimizer in ("woa", "random"):
        assert ranking.loc[optimizer, "mean_rank"] == pytest.approx(expected_rank[optimizer])
    assert ranking.loc["woa", "vs_baseline_wins"] == int((wide["woa"] < wide["random"]).sum())

    # The convergence bands are the median over seeds of each cell's best-so-far curve.
    curves = pd.read_csv(tiny_comparison / "convergence.csv")
    bands = pd.read_csv(tiny_comparison / "convergence_bands.csv")
    last = curves[(curves["model"] == "lstm") & (curves["optimizer"] == "random") & (curves["evaluation"] == 10)]
    band = bands[(bands["model"] == "lstm") & (bands["optimizer"] == "random") & (bands["evaluation"] == 10)]
    assert band["median"].iloc[0] == pytest.approx(last["best_so_far"].median())
    assert last["best_so_far"].min() == pytest.approx(
        tuned[(tuned["model"] == "lstm") & (tuned["optimizer"] == "random")]["best_val_rmse"].min()
    )


def test_report_rebuilds_identical_tables_without_training(tiny_comparison: Path, tmp_path: Path):
    tables = (
        "report.md",
        "cells.csv",
        "test_metrics.csv",
        "model_comparison.csv",
        "optimizer_ranking.csv",
        "convergence_bands.csv",
        "trials.csv",
        "predictions.csv",
    )
    before = {name: (tiny_comparison / name).read_bytes() for name in tables}
    for name in tables:
        (tiny_comparison / name).unlink()
    db = tiny_comparison.parent / "hpo-lstm.db"
    db_before = db.read_bytes()
    assert main(["report", str(tiny_comparison), "--quiet"]) == 0
    assert {name: (tiny_comparison / name).read_bytes() for name in tables} == before
    assert db.read_bytes() == db_before  # nothing trained, nothing recorded


def test_against_statistical_models_is_recomputable_from_the_csv_files(tiny_comparison: Path):
    report = (tiny_comparison / "report.md").read_text()
    assert "### Against statistical models" in report
    cells = pd.read_csv(tiny_comparison / "cells.csv")
    baselines = pd.read_csv(tiny_comparison / "baselines.csv").set_index("baseline")
    table = pd.read_csv(tiny_comparison / "against_statistical.csv")
    statistical = baselines.loc[["seasonal_naive", "auto_ets", "auto_arima"], "rmse"]
    best = statistical.idxmin()
    assert len(table) == 2 * 3  # models x (woa, random, untuned)
    for _, row in table.iterrows():
        rmse = cells[(cells["model"] == row["model"]) & (cells["optimizer"] == row["method"])]["test_rmse"]
        assert row["n_seeds"] == len(rmse) == 2 and row["best_baseline"] == best
        for name in ("best", *statistical.index):
            target = statistical[best] if name == "best" else statistical[name]
            assert row[f"relative_to_{name}"] == pytest.approx(rmse.mean() / target - 1.0, rel=1e-9)
            assert row[f"seeds_better_than_{name}"] == int((rmse < target).sum())
        cell = f"{row['relative_to_best']:+.1%}, {row['seeds_better_than_best']}/2 seeds better"
        assert f"| {row['model']} | {row['method']} | 2 | {fmt(row['test_rmse_mean'])} | {cell} |" in report
    label = {"seasonal_naive": "seasonal naive", "auto_ets": "AutoETS", "auto_arima": "AutoARIMA"}[best]
    verdict = next(line for line in report.splitlines() if line.startswith("**Verdict.**"))
    assert label in verdict and ("beats the best statistical baseline" in verdict or "worse than" in verdict)
    # Every cell's study carries the same baselines: fitted once for the comparison, not per cell.
    storage = json.loads((tiny_comparison / "compare.json").read_text())["storage"]
    records = {
        optuna.load_study(study_name=name, storage=storage).user_attrs["hpo_lstm_baselines"] for name in cells["study"]
    }
    assert len(records) == 1


def _finished_cells(db: Path) -> int:
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM study_user_attributes WHERE key = 'hpo_lstm_final'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_interrupted_compare_resumes_without_retraining_finished_cells(tmp_path: Path):
    out = tmp_path / "out"
    args = [
        "compare",
        str(_compare_file(tmp_path)),
        *TINY,
        "--models",
        "lstm",
        "--optimizers",
        "random,tpe",
        "--seeds",
        "2",
        "--budget",
        "6",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    proc = start_cli(args)
    wait_for(lambda: _finished_cells(out / "hpo-lstm.db") >= 2, proc, "two finished cells")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    storage = f"sqlite:///{out / 'hpo-lstm.db'}"
    finished = [s.study_name for s in optuna.get_all_study_summaries(storage) if "hpo_lstm_final" in s.user_attrs]
    assert 2 <= len(finished) < 6
    stamps = {
        name: [t.datetime_complete for t in optuna.load_study(study_name=name, storage=storage).trials]
        for name in finished
    }
    assert main(args) == 0
    for name, before in stamps.items():  # finished cells were skipped: not one trial touched
        assert [t.datetime_complete for t in optuna.load_study(study_name=name, storage=storage).trials] == before
    cells = pd.read_csv(out / "tiny" / "cells.csv")
    assert len(cells) == 2 * 2 + 2 and (cells[cells["kind"] == "tuned"]["n_evaluations"] == 6).all()
    for name in cells["study"]:
        trials = optuna.load_study(study_name=name, storage=storage).trials
        counted = [t for t in trials if t.user_attrs.get("failure") != "interrupted"]
        assert sorted(t.user_attrs["evaluation"] for t in counted) == list(range(len(counted)))


def test_shards_split_the_cells_between_drivers_sharing_one_storage(tmp_path: Path):
    out = tmp_path / "out"
    args = [
        "compare",
        str(_compare_file(tmp_path)),
        *TINY,
        "--models",
        "lstm",
        "--optimizers",
        "random,tpe",
        "--seeds",
        "2",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    storage = f"sqlite:///{out / 'hpo-lstm.db'}"
    assert main([*args, "--shard", "1/2"]) == 0
    first = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    manifest = json.loads((out / "tiny" / "compare.json").read_text())
    names = [c["study"] for c in manifest["cells"]]
    assert first == set(names[0::2])  # this driver ran its cells only
    assert "unfinished" in (out / "tiny" / "report.md").read_text().lower()
    assert main([*args, "--shard", "2/2"]) == 0
    assert {s.study_name for s in optuna.get_all_study_summaries(storage)} == set(names)
    assert len(pd.read_csv(out / "tiny" / "cells.csv")) == len(names) == 6


BAD_COMPARE = [
    (["--shard", "3/2"], "--shard K/N needs 1 <= K <= N; got '3/2'."),
    (["--shard", "half"], "--shard must look like K/N (e.g. 1/3); got 'half'."),
    (
        ["--optimizers", "woa,wao"],
        "Unknown optimizer 'wao'; choose from cmaes, ga, gp, gwo, pso, random, tpe, woa, or mealpy:<ClassName>",
    ),
    (["--models", "lstm,cnn"], "Unknown model 'cnn'; choose from "),  # the list grows with hpo_lstm.models
    (["--models", "lstm,lstm"], "Each model may appear once in a comparison; got ['lstm', 'lstm']."),
    (["--seeds", "0"], "The number of seeds must be >= 1; got 0."),
    (["--seeds", "a,b"], "seeds must be a count like 5 or a list like 0,1,2; got 'a,b'."),
    (["--season", "0"], "argument --season: expected an integer >= 1, got '0'"),
    (["--baseline-timeout", "0"], "baseline_timeout must be a positive number of seconds; got 0.0."),
    (["--optimizers", "ga", "--pop-size", "5", "--budget", "10"], "GA's 'pop_size' must be even"),
    (["--data", "co3"], "Unknown dataset 'co3'"),
    (["--seed", "3"], "unrecognized arguments: --seed"),  # not an abbreviation of --seeds
]


@pytest.mark.parametrize(("args", "message"), BAD_COMPARE)
def test_bad_compare_input_gives_one_line_and_exit_2(tmp_path: Path, capsys, args, message):
    code = main(["compare", *args, "--out", str(tmp_path), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("hpo-lstm: error: ") and message in err
    assert not any(tmp_path.iterdir())  # nothing written before the settings are known to be good


def test_rerunning_a_comparison_with_other_settings_is_refused_and_keeps_its_manifest(tiny_comparison: Path, capsys):
    before = (tiny_comparison / "compare.json").read_text()
    args = [
        "compare",
        str(tiny_comparison.parent.parent / "cmp.toml"),
        *TINY,
        "--max-epochs",
        "3",
        "--models",
        "lstm,bilstm",
        "--optimizers",
        "woa,random",
        "--seeds",
        "2",
        "--budget",
        "10",
        "--pop-size",
        "5",
        "--season",
        "63",
        "--out",
        str(tiny_comparison.parent),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Comparison 'tiny'" in err and "max_epochs: 2 -> 3" in err and err.count("\n") == 1
    assert (tiny_comparison / "compare.json").read_text() == before


def test_rerunning_a_comparison_with_fewer_cells_needs_replace_report(tiny_comparison: Path, capsys):
    args = [
        "compare",
        str(tiny_comparison.parent.parent / "cmp.toml"),
        *TINY,
        "--models",
        "bilstm,lstm",
        "--optimizers",
        "random",
        "--seeds",
        "1",
        "--budget",
        "10",
        "--pop-size",
        "5",
        "--season",
        "63",
        "--out",
        str(tiny_comparison.parent),
    ]
    report = (tiny_comparison / "report.md").read_text()
    assert main(args) == 2  # the report would silently lose the woa cells and seed 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optimizers woa; seeds 1" in err and "--replace-report" in err, err
    assert (tiny_comparison / "report.md").read_text() == report
    try:
        assert main([*args, "--replace-report"]) == 0  # every cell finished already: nothing trains
        cells = pd.read_csv(tiny_comparison / "cells.csv")
        assert set(cells["optimizer"]) == {"random", "untuned"} and set(cells["seed"]) == {0}
    finally:  # the module's other tests read the full comparison; a larger set of cells extends it
        full = ["--models", "lstm,bilstm", "--optimizers", "woa,random", "--seeds", "2"]
        assert (
            main(
                [
                    *args[:2],
                    *TINY,
                    *full,
                    "--budget",
                    "10",
                    "--pop-size",
                    "5",
                    "--season",
                    "63",
                    "--out",
                    str(tiny_comparison.parent),
                ]
            )
            == 0
        )
    assert len(pd.read_csv(tiny_comparison / "cells.csv")) == 2 * 2 * 2 + 2 * 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('optimizer = "woa"\n', "A comparison sets ['optimizer'] per cell; use models, optimizers and seeds"),
        ("optimisers = ['woa']\n", "Unknown comparison setting(s) ['optimisers']"),
        ("optimizers = ['woa']\n[optimizer_options.pso]\nw = 0.5\n", "optimizer_options names optimizer(s) ['pso']"),
        ("[untuned]\nunits = 50\n", "Unknown untuned setting(s) ['units']"),
    ],
)
def test_bad_compare_files(tmp_path: Path, capsys, text, message):
    path = write_study(tmp_path / "bad.toml", text)
    assert main(["compare", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_report_on_a_folder_without_a_comparison(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no compare.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parent.parent.joinpath("studies").glob("compare_*.toml")), ids=lambda p: p.name
)
def test_shipped_comparison_files_are_valid(path: Path):
    from hpo_lstm.compare import CompareConfig, load_compare_file

    config = CompareConfig.from_mapping(load_compare_file(path))
    assert config.name and config.cells()


def test_paired_test_says_when_seeds_are_too_few_to_mean_anything():
    from hpo_lstm.report._tables import paired_test

    assert paired_test([1.0], [2.0]) == (None, "n=1: no test")
    assert paired_test([1.0, 2.0], [1.0, 2.0]) == (1.0, "n=2: identical")
    five = paired_test([1, 2, 3, 4, 5], [2, 3, 4, 5, 6])  # every pair agrees, still p = 2/32
    assert five.p_value == pytest.approx(0.0625) and "too few seeds" in five.note
    six = paired_test([1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 7.5])
    assert six.p_value == pytest.approx(2 / 64) and six.note == "n=6"
    assert paired_test([1, 2, float("nan")], [2, 3, 4]).note.startswith("n=2")  # unpaired values drop out


@pytest.mark.parametrize(("text", "seeds"), [("3", (0, 1, 2)), ("0,3,7", (0, 3, 7)), ("2,", (2,)), (" 4 , 1 ", (4, 1))])
def test_seeds_are_a_count_or_a_list(text: str, seeds: tuple):
    from hpo_lstm.compare import CompareConfig

    assert CompareConfig.from_mapping({"seeds": text}).seeds == seeds


def test_progress_goes_to_a_log_as_plain_lines(tmp_path: Path, capsys, monkeypatch):
    """With stderr redirected (``nohup ... > log``), progress is plain lines: one per finished
    training (or every 30 s), the final model's start and end, and one per finished cell, without terminal escape codes, even where
    FORCE_COLOR asks for colour (as many CI systems set it)."""
    from hpo_lstm.progress import Progress

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(Progress, "LINE_EVERY", 1e9)  # only the end-of-study lines, however slow the machine
    args = [
        "compare",
        str(_compare_file(tmp_path)),
        *(a for a in TINY if a != "--quiet"),
        "--models",
        "lstm",
        "--optimizers",
        "random",
        "--seeds",
        "1",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    lines = capsys.readouterr().err.splitlines()
    assert "\x1b" not in "".join(lines)
    studies = [line.split(":")[1].strip() for line in lines if ", best " in line]
    assert list(dict.fromkeys(studies)) == ["lstm/random seed 0", "lstm/untuned seed 0"]
    assert studies.count("lstm/random seed 0") == 4  # a line per finished training (4 distinct candidates)
    assert any(line.startswith("hpo-lstm: lstm/random seed 0: 4/4, best ") for line in lines)
    assert "hpo-lstm: lstm/random seed 0: final forecast ready" in "\n".join(lines)
    assert lines[-1] == "hpo-lstm: cell lstm/untuned seed 0 done; cells 2/2"
    # A rerun finds both cells finished and trains nothing, so it prints no progress lines.
    assert main(args) == 0
    assert capsys.readouterr().err == ""


def _cell_trials(storage: str) -> dict[str, list[tuple]]:
    """Every study's trials as (evaluation, state, value, params), in evaluation order."""
    out = {}
    for summary in optuna.get_all_study_summaries(storage):
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        out[summary.study_name] = sorted(
            (t.user_attrs["evaluation"], t.state.name, t.value, tuple(sorted(t.params.items()))) for t in trials
        )
    return out


def test_cells_run_at_once_record_the_same_trials_as_one_at_a_time(tmp_path: Path):
    """With 2 workers a comparison runs 2 cells at once on the shared pool (no core idles while
    one cell waits for its batch's last training); every cell records exactly the trials it
    records when the cells run one after another in one process."""
    args = [
        "compare",
        str(_compare_file(tmp_path)),
        *TINY,
        "--models",
        "lstm,bilstm",
        "--optimizers",
        "woa",
        "--seeds",
        "1",
        "--budget",
        "10",
        "--pop-size",
        "5",
        "--no-untuned",
    ]
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    assert main([*args, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    together = _cell_trials(f"sqlite:///{tmp_path / 'two' / 'hpo-lstm.db'}")
    alone = _cell_trials(f"sqlite:///{tmp_path / 'one' / 'hpo-lstm.db'}")
    assert len(together) == 2 and together == alone
    # They did run at once: the second cell's study began before the first one's ended.
    storage = f"sqlite:///{tmp_path / 'two' / 'hpo-lstm.db'}"
    spans = []
    for name in sorted(together):
        trials = optuna.load_study(study_name=name, storage=storage).trials
        spans.append((min(t.datetime_start for t in trials), max(t.datetime_complete for t in trials)))
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a


def test_ctrl_c_stops_every_cell_running_at_once_and_the_rerun_completes_them(tmp_path: Path):
    # Batches of 6 on 2 workers: most of a batch waits in the pool's queue when Ctrl-C comes, and
    # every waiting cell thread must wake up (a future cancelled by the pool's shutdown would not).
    out = tmp_path / "out"
    args = [
        "compare",
        str(_compare_file(tmp_path)),
        *TINY,
        "--models",
        "lstm,bilstm",
        "--optimizers",
        "random,tpe",
        "--seeds",
        "2",
        "--budget",
        "12",
        "--pop-size",
        "6",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    proc = start_cli(args)
    wait_for(lambda: _finished_cells(out / "hpo-lstm.db") >= 1, proc, "a finished cell")
    proc.send_signal(signal.SIGINT)
    code, err = proc.wait(timeout=120), proc.stderr.read()
    assert code == 130, err
    assert "Traceback" not in err and "interrupted" in err
    storage = f"sqlite:///{out / 'hpo-lstm.db'}"
    before = _cell_trials(storage)
    assert 1 <= _finished_cells(out / "hpo-lstm.db") < 10
    assert main(args) == 0
    after = _cell_trials(storage)
    for name, trials in after.items():  # every cell complete, its evaluations numbered 0..n-1
        counted = [t for t in trials if t[1] != "FAIL"]
        assert [t[0] for t in counted] == list(range(len(counted))), name
        kept = [t for t in before.get(name, []) if t[1] != "FAIL"]
        assert set(kept) <= set(counted)  # what the interrupted run recorded stays as it was
    cells = pd.read_csv(out / "tiny" / "cells.csv")
    assert len(cells) == 2 * 2 * 2 + 4 and (cells[cells["kind"] == "tuned"]["n_evaluations"] == 12).all()


def test_a_comparison_with_transform_auto_reports_the_transform_each_cell_used(tiny_csv: Path, tmp_path: Path):
    # "auto" is resolved on the data (a price above zero: logdiff); the report says both.
    args = ["compare", str(_compare_file(tmp_path)), "--data", str(tiny_csv), "--target", "close"]
    args += ["--lookback", "8", "--max-epochs", "2", "--patience", "2", "--quiet", "--transform", "auto"]
    args += ["--models", "lstm", "--optimizers", "random", "--seeds", "1", "--budget", "4", "--pop-size", "2"]
    assert main([*args, "--workers", "1", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "tiny"
    assert "transform `auto` (`logdiff` on this data);" in (folder / "report.md").read_text()
    manifest = json.loads((folder / "compare.json").read_text())
    assert (manifest["base"]["transform"], manifest["data"]["transform"]) == ("auto", "logdiff")
