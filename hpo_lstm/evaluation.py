"""The fitness function the optimizers call: replay, memo, train, record.

For each candidate of a batch, in order:
1. replay: an earlier run of this study recorded this evaluation -> its stored value;
2. memo: the same decoded params were already trained with this seed -> their value, recorded
   as a new trial marked ``duplicate_of``;
3. otherwise it is trained (the distinct candidates of a batch together) and recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from hpo_lstm._errors import StorageError
from hpo_lstm.config import StudyConfig
from hpo_lstm.data import Dataset
from hpo_lstm.pruning import prune_thresholds
from hpo_lstm.recording import Recorder
from hpo_lstm.jobs import TrainJob, run_job
from hpo_lstm.training import TrainResult, TrainSettings

__all__ = ["Evaluator", "ProgressSink"]


class ProgressSink(Protocol):
    """What a study tells its progress display (:mod:`hpo_lstm.progress` draws it)."""

    def batch(self, trainings: int) -> None:
        """``trainings`` candidates of a new batch start training now (0: all replayed or memo)."""

    def evaluated(self, *, value: float, kind: str) -> None:
        """One evaluation is in; ``kind`` is "trained", "pruned", "failed", "duplicate" (a memo
        hit) or "replayed" (recorded by an earlier run). Trainings report as each one ends."""

    def final(self, *, done: bool) -> None:
        """The final model is being made (``done=False``), or is made (``done=True``)."""


def _memo_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


class Evaluator:
    """``evaluate_batch`` for a study: ``Evaluator(...)(list_of_params) -> list_of_fitness``."""

    def __init__(
        self,
        *,
        config: StudyConfig,
        dataset: Dataset,
        recorder: Recorder,
        settings: TrainSettings,
        progress: ProgressSink | None = None,
        map_jobs: Callable[[Sequence[TrainJob]], Iterable[tuple[int, TrainResult | str]]] | None = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.recorder = recorder
        self.settings = settings
        self.progress = progress
        # map_jobs yields (job index, outcome) as each training ends; default: here, in order.
        self._map_jobs = map_jobs or (lambda jobs: ((i, run_job(job, dataset)) for i, job in enumerate(jobs)))
        self._memo: dict[tuple, tuple[float, int, bool]] = {}  # key -> (value, trial number, pruned)
        self._curves: dict[int, tuple[float, ...]] = {}  # evaluation index -> val curve of a training
        self.best_value = math.inf  # the study's best so far, replays included
        self.n_pruned = 0
        self.n_evaluations = 0
        self.n_batches = 0
        self.n_trained = 0
        self.n_replayed = 0
        self.n_duplicates = 0

    def _attrs(self, generation: int) -> dict[str, Any]:
        return {
            "generation": generation,
            "optimizer": self.config.optimizer,
            "model": self.config.model,
            "seed": self.config.seed,
        }

    def _report(self, value: float, kind: str) -> None:
        if self.progress is not None:
            self.progress.evaluated(value=value, kind=kind)

    def __call__(self, batch: list[dict[str, Any]]) -> list[float]:
        generation = self.n_batches
        self.n_batches += 1
        # Pruning limits come from earlier batches only: fixed before anything of this batch runs.
        prune_above = prune_thresholds(
            self._curves.values(), mode=self.config.pruning, max_epochs=self.settings.max_epochs
        )
        values: list[float] = [math.nan] * len(batch)
        waiting: list[tuple[int, int, dict[str, Any]]] = []  # (position, evaluation index, params)
        for position, params in enumerate(batch):
            index = self.n_evaluations
            self.n_evaluations += 1
            stored = self.recorder.stored(index)
            if stored is not None:
                if stored.params != params:
                    raise StorageError(
                        f"Stored evaluation {index} of study {self.config.study_name!r} has params {stored.params}, "
                        f"but the optimizer now proposes {params}; the record does not belong to this run. "
                        "Give a new `study_name`."
                    )
                self._memo.setdefault(_memo_key(params), (stored.value, stored.number, stored.state == "PRUNED"))
                if stored.curve:
                    self._curves[index] = stored.curve
                values[position] = stored.value
                if stored.value < self.best_value:  # NaN compares False
                    self.best_value = stored.value
                self.n_replayed += 1
                self._report(stored.value, "replayed")
            else:
                waiting.append((position, index, params))

        # Train each distinct new candidate once, recording each as its training ends; then
        # record the memo hits among the waiting evaluations, in order.
        new: dict[tuple, tuple[int, dict[str, Any]]] = {}  # key -> (evaluation index, params)
        for _, index, params in waiting:
            key = _memo_key(params)
            if key not in self._memo and key not in new:
                new[key] = (index, params)
        keys = list(new)
        # Only a candidate that beats the best of earlier batches can become the final model:
        # only those send their weights back.
        jobs = [
            TrainJob(self.config.model, params, self.settings, self.config.seed, prune_above, self.best_value)
            for _, params in new.values()
        ]
        if self.progress is not None:
            self.progress.batch(len(jobs))
        for job_index, outcome in self._map_jobs(jobs):
            key = keys[job_index]
            index, params = new[key]
            value, attrs = self._outcome_attrs(outcome)
            trained = isinstance(outcome, TrainResult)
            pruned = trained and outcome.status == "pruned"
            curve = outcome.val_curve if trained else ()
            times = {"started": outcome.started_at, "ended": outcome.started_at + outcome.seconds} if trained else {}
            # The study's best so far: its weights are kept with its trial (the final model, should
            # it stay the best).
            weights = outcome.weights if trained and value < self.best_value else None
            number = self.recorder.record(
                index, params, value, {**self._attrs(generation), **attrs}, curve=curve, pruned=pruned,
                weights=weights, **times,
            )  # fmt: skip
            if value < self.best_value:
                self.best_value = value
            self._memo[key] = (value, number, pruned)
            if curve:
                self._curves[index] = curve
            self.n_trained += 1
            self.n_pruned += pruned
            self._report(value, "pruned" if pruned else "trained" if math.isfinite(value) else "failed")
        for position, index, params in waiting:
            key = _memo_key(params)
            value, number, pruned = self._memo[key]
            values[position] = value
            if key in new and new[key][0] == index:
                continue
            attrs = {**self._attrs(generation), "duplicate_of": number}
            if not math.isfinite(value):
                attrs["failure"] = "duplicate of a failed candidate"
            self.recorder.record(index, params, value, attrs, pruned=pruned)
            self.n_duplicates += 1
            self._report(value, "duplicate")
        return values

    @staticmethod
    def _outcome_attrs(outcome: TrainResult | str) -> tuple[float, dict[str, Any]]:
        if isinstance(outcome, str):
            return math.nan, {"failure": outcome}
        attrs: dict[str, Any] = {
            "epochs": outcome.epochs,
            "best_epoch": outcome.best_epoch,
            "train_seconds": round(outcome.seconds, 3),
        }
        if outcome.status == "pruned":
            attrs["pruned_at_epoch"] = outcome.epochs
        elif outcome.status != "ok":
            attrs["failure"] = (
                f"{outcome.status} at epoch {outcome.epochs}: validation RMSE {outcome.val_curve[-1]:.4g} is "
                "non-finite or over 10x that of forecasting the training mean"
            )
        return outcome.val_rmse, attrs
