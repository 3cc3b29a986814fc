"""Run one study end to end: config -> data -> search -> evaluation -> record -> final model."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

from hpo_lstm import __version__
from hpo_lstm._errors import StudyFailedError
from hpo_lstm._interrupts import interrupts_outside_storage
from hpo_lstm.config import StudyConfig
from hpo_lstm.data import Dataset, load_series, make_dataset
from hpo_lstm.evaluation import Evaluator, ProgressSink
from hpo_lstm.executors import Executor
from hpo_lstm.metrics import forecast_metrics
from hpo_lstm.optimizers import OptimizeResult
from hpo_lstm.recording import Recorder

__all__ = ["FinalModel", "StudyInterrupted", "StudyResult", "final_model", "prepare_dataset", "run_study"]


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during the search, after the storage was left consistent."""

    def __init__(self, study_name: str, storage: str, n_finished: int) -> None:
        super().__init__(study_name, storage, n_finished)
        self.study_name, self.storage, self.n_finished = study_name, storage, n_finished


@dataclass(frozen=True)
class FinalModel:
    """The best params retrained once with the study seed, judged on the test split."""

    params: dict[str, Any]
    val_rmse: float
    test: dict[str, float | None]
    baselines: dict[str, dict[str, float | None]]
    predictions: Any  # pandas DataFrame: time, actual, predicted, naive_last
    epochs: int


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

    def summary(self) -> dict[str, Any]:
        """Everything ``summary.json`` holds: plain JSON values, also recorded in the storage."""
        config, dataset, final = self.config, self.dataset, self.final
        distinct = {tuple(sorted(e.params.items())) for e in self.search.evaluations}
        val = dataset.split("val")
        return {
            "study_name": config.study_name,
            "optimizer": config.optimizer,
            "model": config.model,
            "dataset": config.data,
            "target": dataset.target,
            "features": list(dataset.feature_names),
            "budget": config.budget,
            "pop_size": config.pop_size,
            "n_evaluations": self.search.n_evaluations,
            "n_trained": len(distinct),
            "n_duplicates": self.search.n_evaluations - len(distinct),
            "n_replayed": self.n_replayed,
            "n_pruned": self.n_pruned,
            "n_failed": sum(1 for e in self.search.evaluations if not math.isfinite(e.value)),
            "best_params": final.params,
            "best_val_rmse": self.search.best_value,
            "test": final.test,
            "baselines": final.baselines,
            "val_baselines": {"naive_last": forecast_metrics(dataset.actual[val], dataset.last_value[val])},
            "beats_naive": bool(final.test["rmse"] < final.baselines["naive_last"]["rmse"]),
            "protocol": {
                "split": list(config.split),
                "windows": {s: dataset.n_windows(s) for s in ("train", "val", "test")},
                "lookback": dataset.lookback,
                "horizon": dataset.horizon,
                "transform": dataset.transform,
                "max_epochs": config.max_epochs,
                "patience": config.patience,
                "batch_size": config.batch_size,
                "pruning": config.pruning,
                "space": config.space.to_dict(),
                "gaps_filled": dataset.n_filled,
            },
            "final_epochs": final.epochs,
            "seed": config.seed,
            "device": self.device,
            "storage": config.storage_url,
            "wall_seconds": round(self.wall_seconds, 2),
            "hpo_lstm_version": __version__,
        }


def prepare_dataset(config: StudyConfig) -> Dataset:
    """Load and window the study's data."""
    series = load_series(
        config.data, target=config.target, features=config.features, time_column=config.time_column
    )
    return make_dataset(
        series, lookback=config.window_lookback, horizon=config.horizon, split=config.split, transform=config.transform
    )


def _settings(config: StudyConfig, device: str) -> Any:
    from hpo_lstm.training import TrainSettings

    return TrainSettings(
        max_epochs=config.max_epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        dropout=config.dropout,
        device=device,
    )


def final_model(config: StudyConfig, dataset: Dataset, params: dict[str, Any], device: str) -> FinalModel:
    """Retrain ``params`` with the study seed; the test split is used here and only here."""
    import pandas as pd

    from hpo_lstm.training import predict, train_candidate

    settings = _settings(config, device)
    result, model = train_candidate(config.model, params, dataset, settings, seed=config.seed, keep_model=True)
    full = settings.candidate(params, dataset)
    test = dataset.split("test")
    actual, naive = dataset.actual[test], dataset.last_value[test]
    predicted = predict(model, dataset, "test", lookback=int(full["lookback"]))
    times = dataset.times[test]
    predictions = pd.DataFrame({"time": times, "actual": actual, "predicted": predicted, "naive_last": naive})
    return FinalModel(
        params=full,
        val_rmse=result.val_rmse,
        test=forecast_metrics(actual, predicted),
        baselines={"naive_last": forecast_metrics(actual, naive)},
        predictions=predictions,
        epochs=result.epochs,
    )


@interrupts_outside_storage()
def run_study(
    config: StudyConfig,
    *,
    progress: ProgressSink | None = None,
    workers: int | None = None,
    threads: int = 1,
    dataset: Dataset | None = None,
    executor: Executor | None = None,
    executor_kind: str = "local",
    scheduler: str | None = None,
) -> StudyResult:
    """Search ``config.budget`` candidates, record every one, then build and test the final model.

    Resumes the study if its storage already holds evaluations of the same configuration.
    ``workers`` processes train a batch's candidates concurrently (default: one per core, or
    per GPU); ``threads`` is torch's intra-op thread count in each (1: see DESIGN.md).
    ``executor_kind="dask"`` trains them on the Dask cluster at ``scheduler`` instead (same
    trials). Several studies on the same data (a comparison) may share one ``dataset`` and
    one ``executor`` made for it (:func:`hpo_lstm.executors.make_executor`), so that worker
    processes start, or the dataset reaches the cluster, once.
    """
    import torch

    from hpo_lstm.executors import default_workers, make_executor
    from hpo_lstm.training import resolve_device

    started = time.perf_counter()
    dataset = dataset if dataset is not None else prepare_dataset(config)
    device = resolve_device(config.device)
    torch.set_num_threads(threads)
    with contextlib.ExitStack() as stack:
        if executor is None:  # made (and a cluster reached) before the storage is touched
            n_workers = min(workers or default_workers(device), config.pop_size)
            executor = stack.enter_context(
                make_executor(
                    executor_kind, dataset=dataset, device=device, workers=n_workers, threads=threads, scheduler=scheduler
                )
            )
        recorder = Recorder(config)
        evaluator = Evaluator(
            config=config,
            dataset=dataset,
            recorder=recorder,
            settings=_settings(config, device),
            progress=progress,
            map_jobs=executor.map,
        )
        try:
            search = config.make_optimizer().optimize(evaluator, config.space, budget=config.budget, seed=config.seed)
        except KeyboardInterrupt:
            recorder.close_open("interrupted")
            raise StudyInterrupted(config.study_name, config.storage_url, recorder.n_finished) from None
    if search.best_params is None:
        raise StudyFailedError(
            f"All {search.n_evaluations} evaluations of study {config.study_name!r} failed (diverged or raised); "
            "see the 'failure' attribute of its trials. Try a lower learning-rate bound."
        )
    if progress is not None:
        progress.final(done=False)
    final = final_model(config, dataset, search.best_params, device)
    if progress is not None:
        progress.final(done=True)
    if not math.isclose(final.val_rmse, search.best_value, rel_tol=1e-6) and device == "cpu":
        # CPU training is deterministic; a mismatch would mean the record and the model disagree.
        raise StudyFailedError(
            f"The best params of study {config.study_name!r} retrained to validation RMSE {final.val_rmse:.6g}, "
            f"not the recorded {search.best_value:.6g}: the study was recorded by a different hpo-lstm or torch "
            "version; give a new --study-name to run it again."
        )
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
        wall_seconds=time.perf_counter() - started,
    )
    recorder.record_final(result.summary(), final.predictions)
    return result
