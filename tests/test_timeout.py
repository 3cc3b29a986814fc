"""--timeout: no batch that trains starts after the limit; the study ends with its best so far,
says so, and resumes when run again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_ARGS, TINY_SPACE, write_study

from hpo_lstm.cli import main


def _summary(out: Path) -> dict:
    return json.loads(next(out.glob("*/summary.json")).read_text())


def test_a_timed_out_study_keeps_its_first_batch_says_so_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture):
    study = write_study(tmp_path / "s.toml", TINY_SPACE)
    args = [
        "run",
        str(study),
        *TINY_ARGS,
        "--optimizer",
        "random",
        "--budget",
        "6",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--out",
        str(tmp_path / "out"),
    ]
    # A limit shorter than any training: the first batch always runs (a study needs a result),
    # the second would start after the limit and does not.
    assert main([a for a in args if a != "--quiet"] + ["--timeout", "0.001"]) == 0  # with the printed table
    summary = _summary(tmp_path / "out")
    assert summary["n_evaluations"] == 2 and summary["budget"] == 6
    assert summary["stopped_early"] == {"reason": "timeout", "timeout_seconds": 0.001, "evaluations": 2, "budget": 6}
    assert "Stopped at the time limit" in capsys.readouterr().out
    report = next((tmp_path / "out").glob("*/report.md")).read_text()
    assert "**Stopped early** at the time limit" in report

    # The same command with a larger limit resumes: the first batch replayed, the rest trained.
    assert main([*args, "--timeout", "600"]) == 0
    summary = _summary(tmp_path / "out")
    assert (summary["n_evaluations"], summary["n_replayed"], summary["stopped_early"]) == (6, 2, None)
    # Complete now: a third run trains nothing.
    assert main([*args]) == 0
    assert _summary(tmp_path / "out")["n_replayed"] == 2


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_bad_timeouts_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, value: str):
    assert main(["run", *TINY_ARGS, "--timeout", value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "timeout must be a positive number of seconds" in err
    assert not (tmp_path / "hpo-lstm.db").exists()


def test_a_comparison_timeout_stops_the_running_cell_and_starts_no_other(tmp_path: Path):
    out = tmp_path / "cmp"
    args = [
        "compare",
        *TINY_ARGS,
        "--models",
        "lstm",
        "--optimizers",
        "random",
        "--seeds",
        "2",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--no-untuned",
        "--out",
        str(out),
    ]
    assert main([*args, "--timeout", "0.001"]) == 0  # no cell spent its budget: said, not an error
    manifest = json.loads(next(out.rglob("compare.json")).read_text())
    storage = manifest["storage"]
    import optuna

    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert len(names) == 1  # the first cell started (one batch of 2), the second did not
    trials = optuna.load_study(study_name=names[0], storage=storage).trials
    assert len(trials) == 2
    assert main([*args]) == 0  # no limit: the first cell resumes, the second runs
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert len(names) == 2 and all(len(optuna.load_study(study_name=n, storage=storage).trials) == 4 for n in names)
