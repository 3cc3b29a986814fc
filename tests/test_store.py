"""The study's record (hpo_lstm.store.StudyRecord): what run, compare, report and forecast read of
a storage, loaded once; the run writes its files from the record it ends with, without opening
the storage again, and they are the bytes `hpo-lstm report` writes from the storage later."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpo_lstm import ConfigError, StudyConfig, rebuild_run_outputs, run_study, write_run_outputs
from hpo_lstm.report import RUN_FILES
from hpo_lstm.store import StudyRecord, open_storage


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    config = StudyConfig.from_file(
        data="sine",
        optimizer="random",
        budget=4,
        pop_size=2,
        lookback=8,
        max_epochs=2,
        patience=2,
        out=str(out),
    )
    return run_study(config, workers=1)


def test_the_run_ends_with_the_record_of_what_it_stored(finished):
    record = finished.record
    config = finished.config
    assert record is not None and record.name == config.study_name
    assert set(record.summary) == set(finished.summary())  # the summary, as stored (JSON)
    assert record.summary["test"]["rmse"] == pytest.approx(finished.final.test["rmse"], rel=1e-12)
    assert [t.user_attrs["evaluation"] for t in record.evaluations()] == list(range(config.budget))
    assert record.is_complete(config.budget) and not record.is_complete(config.budget + 1)
    assert record.matches(config, data_fingerprint=finished.dataset.fingerprint)
    assert not record.matches(config, data_fingerprint="another-data")
    assert not record.matches(config.replace(budget=config.budget + 2))
    assert not record.matches(config.replace(max_epochs=3))
    assert record.baselines is not None and set(record.baselines["results"]) >= {"auto_ets", "auto_arima"}
    card, weights = record.model()
    assert card["trial"] == finished.final.trial
    best = finished.final.weights
    assert all(np.array_equal(weights[k], best[k]) for k in best)
    np.testing.assert_array_equal(record.predictions()["predicted"], finished.final.predictions["predicted"])


def test_loaded_again_the_record_answers_the_same(finished):
    url = finished.config.storage_url
    again = StudyRecord.load(open_storage(url), finished.config.study_name, url)
    assert again.final == finished.record.final and again.identity == finished.record.identity
    assert [t.number for t in again.evaluations()] == [t.number for t in finished.record.evaluations()]
    assert StudyRecord.load(open_storage(url), "no-such-study", url) is None


def test_the_run_writes_its_files_from_its_record_and_report_rebuilds_them(finished, tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("the storage was opened or its study loaded again")

    with monkeypatch.context() as patch:  # while the run's files are written from its record
        patch.setattr(optuna, "load_study", refused)
        patch.setattr("hpo_lstm.store.record.open_storage", refused)
        patch.setattr("hpo_lstm.store.record.find_study", refused)
        write_run_outputs(finished, tmp_path / "run")
    shutil.copytree(tmp_path / "run", tmp_path / "report")
    rebuild_run_outputs(tmp_path / "report")  # from the storage, opened read-only
    for name in [n for n in RUN_FILES if not n.endswith(".png")] + ["model/model.json", "model/weights.safetensors"]:
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "report" / name).read_bytes(), name


def test_a_study_that_is_not_final_has_no_final_record(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(study_name="open", storage=url)
    record = StudyRecord.load(open_storage(url), "open", url)
    assert record.final is None and record.summary is None and record.model() is None
    assert not record.is_complete(4) and record.identity is None and record.baselines is None
    with pytest.raises(Exception, match="has no final result"):
        record.predictions()


def test_the_summary_is_typed_and_written_with_the_keys_summary_json_has(finished):
    from hpo_lstm.results import Protocol, RunSummary

    typed = finished.run_summary
    assert isinstance(typed, RunSummary) and isinstance(typed.protocol, Protocol)
    assert typed.n_evaluations == finished.config.budget and typed.protocol.horizon == finished.dataset.horizon
    assert typed.best_params == finished.final.params and typed.test == finished.final.test
    summary = finished.summary()
    assert list(summary) == list(RunSummary._ORDER) and list(summary["protocol"]) == [
        f.name for f in dataclasses.fields(Protocol)
    ]
    assert RunSummary.from_dict(summary) == typed and RunSummary.from_dict(finished.record.summary) == typed


def test_a_summary_of_an_earlier_hpo_lstm_reads_with_what_its_missing_keys_meant(finished):
    from hpo_lstm.report._run import run_report_markdown
    from hpo_lstm.results import RunSummary

    old = {k: v for k, v in finished.summary().items() if k not in ("precision", "device", "folds", "final_forecast")}
    old["protocol"] = {k: v for k, v in old["protocol"].items() if k != "season_text"}
    old["unit"] = "ppmv"  # a key this hpo-lstm does not know is kept, not dropped
    typed = RunSummary.from_dict(old)
    assert (typed.precision, typed.device, typed.folds, typed.final_forecast) == ("fp32", "cpu", None, {})
    assert typed.protocol.season_text is None and typed.extra == {"unit": "ppmv"}
    assert typed.to_dict()["unit"] == "ppmv"
    text = run_report_markdown(old)
    assert "not recorded (a run of an earlier hpo-lstm)" in text and "device cpu, float32." in text
    with pytest.raises(ConfigError, match="lacks best_val_rmse, test: it was not written by hpo-lstm run"):
        RunSummary.from_dict({k: v for k, v in old.items() if k not in ("best_val_rmse", "test")})


def test_trainings_leave_out_memo_copies_and_rank_by_validation_rmse(tmp_path: Path):
    """One candidate proposed three times (the space is one point): one training, two memo copies
    that trained nothing; the ranked trainings are what a final forecast may keep."""
    from hpo_lstm.space import default_space

    point = {"learning_rate": 1e-2, "hidden_size": 4, "n_layers": 1}
    config = StudyConfig.from_file(
        data="sine",
        optimizer="random",
        budget=3,
        pop_size=3,
        lookback=8,
        max_epochs=1,
        patience=1,
        final="best",
        space=default_space({k: {"low": v, "high": v, "log": False} for k, v in point.items()}),
        out=str(tmp_path),
    )
    record = run_study(config, workers=1).record
    assert len(record.evaluations()) == 3
    (trained,) = record.trainings()
    memos = [t for t in record.evaluations() if t.number != trained.number]
    assert all(t.user_attrs["duplicate_of"] == trained.number for t in memos)
    assert [t.number for t in record.ranked_trainings()] == [trained.number]


def test_ranked_trainings_are_best_first(finished):
    ranked = finished.record.ranked_trainings()
    assert ranked and ranked[0].number == finished.final.trial
    assert [t.value for t in ranked] == sorted(t.value for t in ranked)
    assert {t.number for t in ranked} <= {t.number for t in finished.record.trainings()}


def test_optuna_stays_quiet_until_the_last_of_overlapping_blocks_ends():
    """A comparison opens its cells' studies in several threads: when one thread's quiet block
    ended while another's was still inside it, Optuna's INFO came back and printed 'A new study
    created in RDB' in the middle of the progress display."""
    import threading

    from hpo_lstm._logging import quiet_optuna

    before = optuna.logging.get_verbosity()
    first, second = quiet_optuna(), quiet_optuna()
    inside, leave = threading.Event(), threading.Event()

    def other_thread() -> None:
        with second:
            inside.set()
            leave.wait(30)

    worker = threading.Thread(target=other_thread)
    first.__enter__()
    worker.start()
    assert inside.wait(30)
    first.__exit__(None, None, None)  # this block ends while the other thread's goes on
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    leave.set()
    worker.join(30)
    assert optuna.logging.get_verbosity() == before
