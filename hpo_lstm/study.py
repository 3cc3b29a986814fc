"""Run one study end to end: config -> data -> search -> evaluation -> record -> final model."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpo_lstm import __version__
from hpo_lstm._errors import StudyFailedError
from hpo_lstm._interrupts import interrupts_outside_storage
from hpo_lstm._urls import mask_url
from hpo_lstm.config import StudyConfig
from hpo_lstm.data import Dataset, load_series, make_dataset, with_folds
from hpo_lstm.evaluation import Evaluator, ProgressSink
from hpo_lstm.executors import Executor
from hpo_lstm.metrics import forecast_metrics
from hpo_lstm.optimizers import OptimizeResult
from hpo_lstm.results import Protocol, RunSummary
from hpo_lstm.store.record import StudyRecord
from hpo_lstm.store.recording import Recorder

__all__ = [
    "FinalModel",
    "StudyInterrupted",
    "StudyResult",
    "final_model",
    "prepare_dataset",
    "run_study",
    "study_baselines",
]


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during the search, after the storage was left consistent."""

    def __init__(self, study_name: str, storage: str, n_finished: int) -> None:
        super().__init__(study_name, storage, n_finished)
        self.study_name, self.storage, self.n_finished = study_name, storage, n_finished


@dataclass(frozen=True)
class FinalModel:
    """The best candidate's own trained weights, judged once on the test split.

    ``source`` is "kept" (the weights the search trained, stored with trial ``trial``) or
    "retrained" (the best trial has no stored weights: recorded by an earlier hpo-lstm, or
    stopped before they were stored; then ``note`` gives both validation RMSEs).
    """

    params: dict[str, Any]
    val_rmse: float  # as recorded by the search
    test: dict[str, float | None]
    baselines: dict[str, dict[str, float | None]]
    predictions: Any  # pandas DataFrame: time, actual, predicted, naive_last, lower_80, upper_80, ...
    trial: int | None
    source: str
    note: str | None
    intervals: dict[str, dict[str, Any]]  # "80" -> half-width per step (series units), test coverage
    by_step: list[dict[str, Any]] = field(default_factory=list)  # test and naive metrics of each step 1..H
    weights: Any = field(repr=False, default=None)
    season: dict[str, Any] = field(default_factory=dict)  # hpo_lstm.data.resolve_season: the season and its source
    # The final forecast (hpo_lstm.ensemble.FinalForecast.record): which candidate, its members and
    # weights, and every candidate's validation and test RMSE. ``test`` and the predictions are its.
    final_forecast: dict[str, Any] = field(default_factory=dict)
    # The networks of the final forecast after the best: {"name", "trial", "params", "weights"}.
    members: list[dict[str, Any]] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class StudyResult:
    config: StudyConfig
    dataset: Dataset
    search: OptimizeResult
    final: FinalModel
    trials: Any  # pandas DataFrame of the study's trials
    n_trained: int
    n_replayed: int
    n_duplicates: int
    n_pruned: int
    device: str
    wall_seconds: float
    stored_summary: dict[str, Any] | None = None  # set when the study was complete before this call
    stopped_early: dict[str, Any] | None = None  # why the search ended before its budget (--timeout)
    precision: str = "fp32"  # the training steps' arithmetic, resolved ("fp32" or "bf16")
    # What the storage holds of the study once its final result is recorded (read through the
    # storage the run held open): the run's files are written from it (hpo_lstm.report).
    record: StudyRecord | None = field(default=None, repr=False, compare=False)

    @property
    def was_complete(self) -> bool:
        """Whether the study had finished before: nothing was trained, the result is the stored one."""
        return self.stored_summary is not None

    def _folds(self) -> dict[str, Any] | None:
        """With --folds K: K and the chosen candidate's validation RMSE on each fold."""
        if self.config.folds == 1:
            return None
        chosen = self.trials[self.trials["number"] == self.final.trial] if self.final.trial is not None else None
        column = "user_attrs_fold_rmse"
        values = list(chosen[column].iloc[0]) if chosen is not None and len(chosen) and column in chosen else []
        return {"k": self.config.folds, "chosen_fold_val_rmse": values}

    @property
    def run_summary(self) -> RunSummary:
        """The run's summary, typed (:class:`hpo_lstm.results.RunSummary`): built from this
        result's parts, or read back from the storage for a study that was complete before."""
        if self.stored_summary is not None:
            return RunSummary.from_dict(self.stored_summary)
        config, dataset, final = self.config, self.dataset, self.final
        distinct = {tuple(sorted(e.params.items())) for e in self.search.evaluations}
        val = dataset.split("val")
        versus = _versus_statistical(final.test["rmse"], final.baselines)
        return RunSummary(
            study_name=config.study_name,
            optimizer=config.optimizer,
            model=config.model,
            dataset=config.data_name,
            target=dataset.target,
            features=list(dataset.feature_names),
            budget=config.budget,
            pop_size=config.pop_size,
            n_evaluations=self.search.n_evaluations,
            n_trained=len(distinct),
            n_duplicates=self.search.n_evaluations - len(distinct),
            n_replayed=self.n_replayed,
            n_pruned=self.n_pruned,
            n_failed=sum(1 for e in self.search.evaluations if not math.isfinite(e.value)),
            best_params=final.params,
            best_val_rmse=self.search.best_value,
            final_forecast=final.final_forecast,
            test=final.test,
            baselines=final.baselines,
            val_baselines={"naive_last": forecast_metrics(dataset.actual[val], dataset.naive("val"))},
            by_step=final.by_step,
            beats_naive=bool(final.test["rmse"] < final.baselines["naive_last"]["rmse"]),
            best_statistical_baseline=versus["best_statistical_baseline"],
            beats_statistical_baselines=versus["beats_statistical_baselines"],
            season=final.season.get("season"),
            protocol=Protocol(
                split=list(config.split),
                windows={s: dataset.n_windows(s) for s in ("train", "val", "test")},
                lookback=dataset.lookback,
                horizon=dataset.horizon,
                transform=dataset.transform,
                calendar=list(dataset.calendar),
                max_epochs=config.max_epochs,
                patience=config.patience,
                batch_size=config.batch_size,
                pruning=config.pruning,
                space=config.space.to_dict(),
                gaps_filled=dataset.n_filled,
                data_notes=list(dataset.notes),
                season={k: v for k, v in final.season.items() if k != "text"},
                season_text=final.season.get("text"),
                baseline_timeout=config.baseline_timeout,
            ),
            final_model={"trial": final.trial, "weights": final.source, "note": final.note},
            intervals=final.intervals,
            seed=config.seed,
            device=self.device,
            precision=self.precision,
            storage=mask_url(config.storage_url),  # never a password in a file (hpo_lstm._urls)
            wall_seconds=round(self.wall_seconds, 2),
            stopped_early=self.stopped_early,
            folds=self._folds(),
            hpo_lstm_version=__version__,
        )

    def summary(self) -> dict[str, Any]:
        """Everything ``summary.json`` holds: plain JSON values, also recorded in the storage
        (:attr:`run_summary` as a dict, with the same keys)."""
        if self.stored_summary is not None:
            return dict(self.stored_summary)
        return self.run_summary.to_dict()


def study_baselines(
    config: StudyConfig, dataset: Dataset, *, stored: Any = None, recorder: Recorder | None = None
) -> tuple[dict[str, Any], Any]:
    """The study's season (:func:`hpo_lstm.data.resolve_season`) and its statistical baselines
    (:func:`hpo_lstm.baselines.compute_baselines`): ``stored`` ones, or those ``recorder``'s
    study holds, are reused while they belong to this data and season; others are fitted
    (under ``config.baseline_timeout`` seconds each) and stored with the recorder's study."""
    from hpo_lstm.baselines import StudyBaselines

    return StudyBaselines(config, dataset, stored=stored, recorder=recorder).result()


def _step_rmse(actual: np.ndarray, columns: dict[str, np.ndarray], k: int) -> dict[str, float]:
    """Each baseline's test RMSE at forecast step ``k + 1`` (``columns``: window-major forecasts)."""
    return {
        f"{name}_rmse": forecast_metrics(actual[:, k], values.reshape(actual.shape)[:, k])["rmse"]
        for name, values in columns.items()
    }


def _baselines_outdated(summary: dict[str, Any], config: StudyConfig, dataset: Dataset) -> bool:
    """Whether a complete study's recorded baselines should be fitted again: it has none
    (recorded by an earlier hpo-lstm), another season is asked for, or one ran out of a shorter
    time limit than ``config.baseline_timeout``."""
    from hpo_lstm.baselines import BASELINES
    from hpo_lstm.data import resolve_season

    entries = summary.get("baselines") or {}
    if not any(name in entries for name in BASELINES):
        return True
    if summary.get("season") != resolve_season(config.season, dataset.point_times)["season"]:
        return True
    return any(
        entries[n].get("status") == "timeout" and (entries[n].get("limit_seconds") or 0) < config.baseline_timeout
        for n in BASELINES
        if n in entries
    )


def _refresh_baselines(result: StudyResult) -> StudyResult:
    """A complete study's recorded result, its statistical baselines brought up to date when
    :func:`_baselines_outdated` (nothing else changes: the model, its test metrics, its trials)."""
    import pandas as pd

    from hpo_lstm.baselines import BASELINES

    config, dataset, summary = result.config, result.dataset, dict(result.stored_summary or {})
    if not _baselines_outdated(summary, config, dataset):
        return result
    with Recorder(config, data_fingerprint=dataset.fingerprint) as recorder:
        season, baselines = study_baselines(config, dataset, recorder=recorder)
        actual = dataset.actual[dataset.split("test")]
        columns = baselines.columns()
        summary["baselines"] = {"naive_last": summary["baselines"]["naive_last"], **baselines.entries(actual)}
        summary.update(_versus_statistical(summary["test"]["rmse"], summary["baselines"]), season=season["season"])
        summary["protocol"] = {
            **summary.get("protocol", {}),
            "season": {k: v for k, v in season.items() if k != "text"},
            "season_text": season.get("text"),
            "baseline_timeout": config.baseline_timeout,
        }
        summary["by_step"] = [
            {
                **{k: v for k, v in row.items() if k.removesuffix("_rmse") not in BASELINES},
                **_step_rmse(actual, columns, int(row["step"]) - 1),
            }
            for row in summary.get("by_step") or []
        ]
        predictions = result.final.predictions
        predictions = pd.concat(
            [
                predictions.drop(columns=[c for c in BASELINES if c in predictions]),
                pd.DataFrame(columns, index=predictions.index),
            ],
            axis=1,
        )
        record = recorder.record_final(summary, predictions)
    final = dataclasses.replace(result.final, baselines=summary["baselines"], predictions=predictions, season=season)
    return dataclasses.replace(result, final=final, stored_summary=summary, record=record)


def _versus_statistical(test_rmse: float, baselines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The tuned model against the best scored statistical baseline (None when none was scored)."""
    from hpo_lstm.baselines import best_statistical

    best = best_statistical(baselines)
    if best is None:
        return {"best_statistical_baseline": None, "beats_statistical_baselines": None}
    name, rmse = best
    return {
        "best_statistical_baseline": {
            "name": name,
            "model": baselines[name].get("model"),
            "rmse": rmse,
            "relative_difference": test_rmse / rmse - 1.0,
        },
        "beats_statistical_baselines": bool(test_rmse < rmse),
    }


def prepare_dataset(config: StudyConfig) -> Dataset:
    """Load and window the study's data as ``config.for_data`` settles it once the data is
    known: the lookback the windows need (the longest searched one), the calendar features, and
    the season (set or inferred; the lag of transform sdiff)."""
    from hpo_lstm.data import calendar_features, resolve_season

    series = load_series(config.data, target=config.target, features=config.features, time_column=config.time_column)
    config = config.for_data(series.times, len(series))
    series = dataclasses.replace(
        series,
        calendar=calendar_features(series.times) if config.calendar else (),
        season=resolve_season(config.season, series.times)["season"],
    )
    dataset = make_dataset(
        series, lookback=config.window_lookback, horizon=config.horizon, split=config.split, transform=config.transform
    )
    return with_folds(dataset, series, folds=config.folds, split=config.split)


def _settings(config: StudyConfig, device: str) -> Any:
    from hpo_lstm.training import TrainSettings

    return TrainSettings.from_config(config, device)


def final_model(
    config: StudyConfig,
    dataset: Dataset,
    params: dict[str, Any],
    device: str,
    *,
    kept: tuple[int, Any] | None = None,
    members: list[tuple[int, dict[str, Any], Any]] = (),
    recorded_val_rmse: float = math.nan,
    baselines: Any = None,
    season: dict[str, Any] | None = None,
) -> FinalModel:
    """The final forecast: trial ``kept[0]``'s own weights ``kept[1]`` when stored, otherwise
    ``params`` retrained with the study seed, and the other kept networks ``members`` (trial,
    params, weights; the next best, best first) with the statistical ``baselines``, combined as
    :func:`hpo_lstm.ensemble.choose_final` chooses on validation (``config.final``). The
    validation residuals of the chosen forecast give the split-conformal intervals; the test
    split is used here and only here, after the choice. ``baselines``
    (:class:`hpo_lstm.baselines.Baselines` of this dataset) join the last-value naive forecast:
    an entry each in ``baselines``, a column each (when scored) in the predictions, and their
    RMSE in ``by_step``; ``season`` (:func:`hpo_lstm.data.resolve_season`) is recorded."""
    import pandas as pd

    from hpo_lstm.ensemble import choose_final, network_member
    from hpo_lstm.metrics import INTERVAL_LEVELS, conformal_halfwidth, coverage
    from hpo_lstm.training import model_from_weights, predict, train_candidate

    settings = _settings(config, device)
    full = settings.candidate(params, dataset)
    trial, weights = kept if kept is not None else (None, None)
    note = None
    if weights is not None:
        model = model_from_weights(
            config.model, full, weights, n_features=dataset.n_features, device=device, horizon=dataset.horizon
        )
        source = "kept"
    else:
        result, model = train_candidate(config.model, params, dataset, settings, seed=config.seed, keep_model=True)
        weights = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
        source = "retrained"
        note = (
            f"the best trial has no stored weights (recorded by an earlier hpo-lstm, or stopped before they were "
            f"stored), so its params were retrained: validation RMSE {result.val_rmse:.6g} against the recorded "
            f"{recorded_val_rmse:.6g} (difference {result.val_rmse - recorded_val_rmse:+.3g})"
        )
    val, test = dataset.split("val"), dataset.split("test")
    networks = [(model, int(full["lookback"]))]
    others: list[dict[str, Any]] = []
    for rank, (number, member_params, member_weights) in enumerate(members if config.final != "best" else (), start=2):
        member_full = settings.candidate(member_params, dataset)
        networks.append(
            (
                model_from_weights(
                    config.model,
                    member_full,
                    member_weights,
                    n_features=dataset.n_features,
                    device=device,
                    horizon=dataset.horizon,
                ),
                int(member_full["lookback"]),
            )
        )
        others.append({"name": network_member(rank), "trial": number, "params": member_full, "weights": member_weights})
    networks_val = [predict(m, dataset, "val", lookback=lookback) for m, lookback in networks]
    networks_test = [predict(m, dataset, "test", lookback=lookback) for m, lookback in networks]
    statistical_test = (
        {name: r.forecast for name, r in baselines.results.items() if r.status == "ok" and r.forecast is not None}
        if baselines is not None
        else {}
    )
    statistical_val = baselines.val_forecasts() if baselines is not None else {}
    actual, naive = dataset.actual[test], dataset.naive("test")
    chosen = choose_final(
        networks_val, networks_test, statistical_val, statistical_test, dataset.actual[val], actual, rule=config.final
    )
    val_forecasts = {network_member(i + 1): f for i, f in enumerate(networks_val)} | statistical_val
    test_forecasts = {network_member(i + 1): f for i, f in enumerate(networks_test)} | statistical_test
    val_residuals = dataset.actual[val] - chosen.chosen.combine(val_forecasts)  # (n, H)
    predicted = chosen.chosen.combine(test_forecasts)
    steps = np.arange(1, dataset.horizon + 1)
    # One row per test window and step (window-major): the target's time, its step, the values.
    columns: dict[str, Any] = {
        "time": dataset.times[test].ravel(),
        "step": np.tile(steps, len(actual)),
        "actual": actual.ravel(),
        "predicted": predicted.ravel(),
        "naive_last": naive.ravel(),
    }
    intervals: dict[str, dict[str, Any]] = {}
    for level in INTERVAL_LEVELS:
        name = f"{round(level * 100)}"
        halfwidth = np.array([conformal_halfwidth(val_residuals[:, k], level) for k in range(dataset.horizon)])
        lower, upper = predicted - halfwidth, predicted + halfwidth
        columns[f"lower_{name}"], columns[f"upper_{name}"] = lower.ravel(), upper.ravel()
        intervals[name] = {
            "halfwidth": halfwidth.tolist(),
            "test_coverage": coverage(actual, lower, upper),
            "test_coverage_by_step": [coverage(actual[:, k], lower[:, k], upper[:, k]) for k in range(dataset.horizon)],
        }
    statistical = baselines.columns() if baselines is not None else {}
    columns.update(statistical)  # after the intervals: the earlier columns keep their places
    # Each network's own test forecasts, best first: every candidate recomputes from these columns.
    columns.update({network_member(i + 1): f.ravel() for i, f in enumerate(networks_test)})
    by_step = [
        {
            "step": int(k + 1),
            **forecast_metrics(actual[:, k], predicted[:, k]),
            **{f"naive_{m}": v for m, v in forecast_metrics(actual[:, k], naive[:, k]).items()},
            **_step_rmse(actual, statistical, k),
        }
        for k in range(dataset.horizon)
    ]
    return FinalModel(
        params=full,
        val_rmse=recorded_val_rmse,
        test=forecast_metrics(actual, predicted),
        baselines={
            "naive_last": forecast_metrics(actual, naive),
            **(baselines.entries(actual) if baselines is not None else {}),
        },
        predictions=pd.DataFrame(columns),
        trial=trial,
        source=source,
        note=note,
        intervals=intervals,
        by_step=by_step,
        weights=weights,
        season=dict(season or {}),
        final_forecast=chosen.record(),
        members=others,
    )


def _all_failed(config: StudyConfig, n: int, common: tuple[str, int, int] | None) -> str:
    """The one line of a study none of whose evaluations trained: the most common reason, and a
    lower learning rate as the remedy only where they diverged."""
    message = f"All {n} evaluations of study {config.study_name!r} failed"
    if common is None:
        return message + "; see the 'failure' attribute of its trials."
    reason, count, failed = common
    reason = " ".join(reason.split()).rstrip(".")
    if len(reason) > 300:
        reason = reason[:297] + "..."
    how_many = "all" if count == failed else f"{count} of {failed}"
    message += f"; the most common reason ({how_many}): {reason}"
    if reason.startswith("diverged"):
        return message + ". Try a lower learning-rate bound."
    return message + (" (the 'failure' attribute of its trials has each one's)." if count < failed else ".")


@interrupts_outside_storage()
def run_study(
    config: StudyConfig,
    *,
    executor: str | Executor = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: ProgressSink | bool | None = None,
    threads: int = 1,
    dataset: Dataset | None = None,
    baselines: Any = None,
) -> StudyResult:
    """Search ``config.budget`` candidates, record every one, then test the final model once.

    A study its storage already holds with the same settings is resumed (its recorded
    evaluations replayed, not retrained); a complete one is returned as recorded, training
    nothing.

    Parameters
    ----------
    config:
        The study (see :meth:`StudyConfig.from_file`).
    executor:
        Where candidates train: ``"local"`` (``workers`` processes on this machine; default one
        per core, on CUDA at most 12 per GPU; 1 trains in this process), ``"dask"`` (the Dask cluster whose
        scheduler listens at ``scheduler``, e.g. ``"tcp://HOST:8786"``), or an executor already
        entered (:func:`hpo_lstm.executors.make_executor`) that several studies on the same data
        share, so that workers start, or the dataset reaches the cluster, once. Every choice
        records the same trials.
    workers, scheduler:
        See ``executor``.
    progress:
        ``True``: the progress bar ``hpo-lstm run`` draws (plain lines when stderr is not a
        terminal, as in a log or a notebook's captured output). Or a sink that receives each
        evaluation as it ends (:class:`hpo_lstm.evaluation.ProgressSink`;
        :class:`hpo_lstm.progress.Progress` draws one).
    threads:
        torch's intra-op threads per training (1: see docs/design.md).
    dataset:
        The prepared data, when the caller has it already (a comparison's cells share it).
    baselines:
        The statistical baselines of this data (:func:`study_baselines`), when the caller has
        them already (a comparison fits them once for all its cells); otherwise those stored
        with the study are used, or they are fitted (in child processes) from the start of the
        search's last batch on, beside its trainings, and stored.

    Returns
    -------
    StudyResult
        The search, the final model (its test metrics, predictions, intervals) and
        ``summary()``, the plain values that summary.json holds. Write a run's files with
        :func:`hpo_lstm.report.write_run_outputs`.

    From a script, run it under ``if __name__ == "__main__":``: the processes that fit the
    statistical models, and workers, import the script again (a study started at its top level
    stops with an error that says so).
    """
    from hpo_lstm._orphans import exit_if_starting_child

    exit_if_starting_child()  # a script without `if __name__ == "__main__":`, re-run in a child
    if progress is True:  # the display the command draws, around this very call
        from hpo_lstm.progress import Progress

        with Progress(enabled=True) as display:
            sink = display.study(f"{config.optimizer}/{config.model}", config.budget)
            return run_study(
                config,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
                progress=sink,
                threads=threads,
                dataset=dataset,
                baselines=baselines,
            )
    progress = progress or None
    import torch

    from hpo_lstm.executors import default_workers, make_executor
    from hpo_lstm.training import resolve_device, resolve_precision

    started = time.perf_counter()
    deadline = time.time() + config.timeout if config.timeout is not None else None
    dataset = dataset if dataset is not None else prepare_dataset(config)
    # What the data decides (a searched lookback's bounds, calendar features) is part of the
    # study's identity from here on: config.for_data, as prepare_dataset applied it.
    config = config.for_data(dataset.point_times, len(dataset.level))
    device = resolve_device(config.device)
    settings = _settings(config, device)  # a bad precision for the device is refused here, before anything is written
    torch.set_num_threads(threads)
    if isinstance(executor, str):  # checked (and a cluster's address read) before any storage is opened
        n_workers = min(workers or default_workers(device), config.pop_size)
        executor = make_executor(
            executor, dataset=dataset, device=device, workers=n_workers, threads=threads, scheduler=scheduler
        )
        owned = True
    else:
        owned = False
    stored = _stored_result(config, dataset)
    if stored is not None:  # complete already: its result as recorded, nothing trained or rewritten
        return _refresh_baselines(stored)  # (but baselines it lacks, or that a longer limit may now fit)
    with contextlib.ExitStack() as stack:
        if owned:  # started (and a cluster reached) before the storage is written
            executor = stack.enter_context(executor)
        # The study's lease is held until its final result is recorded: one driver per study.
        recorder = stack.enter_context(Recorder(config, data_fingerprint=dataset.fingerprint))
        # The statistical baselines are fitted from the start of the search's last batch on: the
        # fits share the cores with its trainings and take those its end leaves idle (started
        # with the search, they delayed every batch's values; after it, AutoARIMA kept one core
        # busy for 10-13 s on CO2 while the other idled). Stopped if the search does not end.
        from hpo_lstm.baselines import StudyBaselines

        fitting = StudyBaselines(config, dataset, stored=baselines, recorder=recorder)
        stack.callback(fitting.cancel)
        evaluator = Evaluator(
            config=config,
            dataset=dataset,
            recorder=recorder,
            settings=settings,
            progress=progress,
            map_jobs=executor.map,
            deadline=deadline,
            on_last_batch=fitting.start,
        )
        try:  # an interrupt in the search, or while the baselines fit or the final forecast is scored
            search = config.make_optimizer().optimize(evaluator, config.space, budget=config.budget, seed=config.seed)
            if search.best_params is None:
                raise StudyFailedError(_all_failed(config, search.n_evaluations, recorder.common_failure()))
            fitting.start()  # (a search stopped by --timeout before its last batch)
            if progress is not None and fitting.running():
                progress.final(done=False, stage="fitting AutoETS and AutoARIMA, then the final forecast")
            season, baselines = fitting.result()
            if progress is not None:
                progress.final(done=False, stage="scoring the final forecast on test")
            best = recorder.best_trial_weights(search.best_params)
            members = recorder.kept_trial_weights(config.top_k - 1, exclude=best[0] if best is not None else None)
            final = final_model(
                config,
                dataset,
                search.best_params,
                device,
                kept=best if best is not None and best[1] is not None else None,
                members=members,
                recorded_val_rmse=search.best_value,
                baselines=baselines,
                season=season,
            )
            if final.source == "retrained" and best is not None:  # so that the storage holds the model from now on
                recorder.attach_weights(best[0], final.weights)
                final = dataclasses.replace(final, trial=best[0])
            if progress is not None:
                progress.final(done=True)
            result = StudyResult(
                config=config,
                dataset=dataset,
                search=search,
                final=final,
                trials=recorder.trials_frame(),
                n_trained=evaluator.n_trained,
                n_replayed=evaluator.n_replayed,
                n_duplicates=evaluator.n_duplicates,
                n_pruned=recorder.n_pruned_trainings,
                device=device,
                precision=resolve_precision(config.precision, device),
                wall_seconds=time.perf_counter() - started,
                stopped_early=(
                    {
                        "reason": "timeout",
                        "timeout_seconds": config.timeout,
                        "evaluations": search.n_evaluations,
                        "budget": config.budget,
                    }
                    if evaluator.stopped_at is not None
                    else None
                ),
            )
            record = recorder.record_final(
                result.summary(), final.predictions, _card(config, dataset, final, baselines)
            )
        except KeyboardInterrupt:
            recorder.close_open("interrupted")  # (trials the search left running; none after it)
            raise StudyInterrupted(config.study_name, mask_url(config.storage_url), recorder.n_finished) from None
    return dataclasses.replace(result, record=record)


def _stored_result(config: StudyConfig, dataset: Dataset) -> StudyResult | None:
    """The recorded result of ``config``'s study when it is complete with this budget, else None."""
    from pathlib import Path

    from hpo_lstm._urls import sqlite_path
    from hpo_lstm.optimizers import Evaluation
    from hpo_lstm.store.record import open_storage

    url = config.storage_url
    path = sqlite_path(url)
    if path is not None and not Path(path).is_file():
        return None  # a new study: nothing is created here (a cluster is reached first)
    record = StudyRecord.load(open_storage(url), config.study_name, url)
    if record is None or not record.matches(config, data_fingerprint=dataset.fingerprint):
        return None
    summary = record.summary
    if summary.get("stopped_early"):  # ended by --timeout: it resumes
        return None
    evaluations = tuple(
        Evaluation(
            index=t.user_attrs["evaluation"],
            batch=t.user_attrs.get("generation", 0),
            params=dict(t.params),
            value=t.value if t.value is not None and t.state.name != "FAIL" else math.nan,
        )
        for t in record.evaluations()
    )
    searched = {p.name for p in config.space.params}
    best_params = {k: v for k, v in summary["best_params"].items() if k in searched}
    model = summary.get("final_model") or {}
    final = FinalModel(
        params=summary["best_params"],
        val_rmse=summary["best_val_rmse"],
        test=summary["test"],
        baselines=summary["baselines"],
        predictions=record.predictions(),
        trial=model.get("trial"),
        source=model.get("weights", "retrained"),
        note=model.get("note"),
        intervals=summary.get("intervals", {}),
        by_step=summary.get("by_step", []),
        season=dict((summary.get("protocol") or {}).get("season") or {}),
        final_forecast=dict(summary.get("final_forecast") or {}),
    )
    return StudyResult(
        config=config,
        dataset=dataset,
        search=OptimizeResult(best_params=best_params, best_value=summary["best_val_rmse"], evaluations=evaluations),
        final=final,
        trials=record.trials_frame,
        n_trained=0,
        n_replayed=summary.get("n_evaluations", len(evaluations)),
        n_duplicates=summary.get("n_duplicates", 0),
        n_pruned=summary.get("n_pruned", 0),
        device=summary.get("device", "cpu"),
        wall_seconds=float(summary.get("wall_seconds", 0.0)),
        stored_summary=summary,
        precision=summary.get("precision", "fp32"),
        record=record,
    )


def _card(config: StudyConfig, dataset: Dataset, final: FinalModel, baselines: Any = None) -> dict[str, Any]:
    import torch

    from hpo_lstm.store.model_store import model_card, weights_digest

    return model_card(
        config=config,
        dataset=dataset,
        params=final.params,
        trial=final.trial,
        weights_source=final.source,
        val_rmse=final.val_rmse,
        intervals={level: list(values["halfwidth"]) for level, values in final.intervals.items()},
        versions={"hpo_lstm_version": __version__, "torch_version": torch.__version__},
        final_forecast=final.final_forecast,
        members=final.members,
        statistical={name: r.state for name, r in baselines.results.items() if r.state is not None}
        if baselines
        else None,
        weights_sha256=weights_digest(_model_weights(final)),
    )


def _model_weights(final: FinalModel) -> dict[str, Any]:
    """The saved model's weights: the best network's, and those of the other networks of the
    final forecast (as :meth:`hpo_lstm.store.StudyRecord.model` gives them back)."""
    from hpo_lstm.store.model_store import merge_member_weights

    included = (
        set(final.final_forecast.get("members") or ()) if final.final_forecast.get("kind", "best") != "best" else set()
    )
    return merge_member_weights(
        final.weights, {m["name"]: m["weights"] for m in final.members if m["name"] in included}
    )
