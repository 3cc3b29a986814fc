"""The fitness function the optimizers call: replay, memo, train, record.

For each candidate of a batch, in order:
1. replay: an earlier run of this study recorded this evaluation -> its stored value;
2. memo: the same decoded params were already trained with this seed -> their value, recorded
   as a new trial marked ``duplicate_of``;
3. otherwise it is trained (the distinct candidates of a batch together) and recorded.

With K rolling-origin folds (``--folds``, :mod:`hpo_lstm.data._folds`) a candidate is one
training per fold and its fitness is the mean validation RMSE over its folds; the batch trains
fold by fold, and between folds hopeless candidates stop (:mod:`hpo_lstm.pruning`). The
final model is the best candidate's weights on the last fold (the study's own split).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from hpo_lstm._errors import StorageError
from hpo_lstm._interrupts import raise_if_swallowed
from hpo_lstm.config import StudyConfig
from hpo_lstm.data import Dataset
from hpo_lstm.jobs import TrainJob, run_job
from hpo_lstm.optimizers import SearchStopped
from hpo_lstm.pruning import halving_keep, halving_rungs, projected_value, prune_thresholds, stops_after_fold
from hpo_lstm.store.recording import Recorder
from hpo_lstm.training import TrainResult, TrainSettings

__all__ = ["Evaluator", "ProgressSink"]


class ProgressSink(Protocol):
    """What a study tells its progress display (:mod:`hpo_lstm.progress` draws it)."""

    def batch(self, trainings: int) -> None:
        """``trainings`` candidates of a new batch start training now (0: all replayed or memo)."""

    def evaluated(self, *, value: float, kind: str) -> None:
        """One evaluation is in; ``kind`` is "trained", "pruned", "failed", "duplicate" (a memo
        hit) or "replayed" (recorded by an earlier run). Trainings report as each one ends."""

    def final(self, *, done: bool, stage: str = "") -> None:
        """The final forecast is being made (``done=False``; ``stage`` says what the study does
        or waits for, in words), or is made (``done=True``)."""


def _memo_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


# How close a replayed candidate's float params must be to the recorded ones. An optimizer's
# arithmetic (exp and cos in WOA, the samplers' numpy) may round the last bits differently on
# another CPU or numpy, so a resume on another machine proposes the recorded candidates to about
# 1e-16, not bit for bit; another record, or another path, differs far more.
REPLAY_RTOL = 1e-9


def same_candidate(recorded: dict[str, Any], proposed: dict[str, Any]) -> bool:
    """Whether ``proposed`` is the ``recorded`` candidate: the same names, integers and other
    values equal, floats within :data:`REPLAY_RTOL`."""
    if recorded.keys() != proposed.keys():
        return False
    for name, value in recorded.items():
        other = proposed[name]
        if isinstance(value, float) and isinstance(other, float):
            if not math.isclose(value, other, rel_tol=REPLAY_RTOL, abs_tol=1e-300):
                return False
        elif value != other or type(value) is not type(other):
            return False
    return True


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
        deadline: float | None = None,
        on_last_batch: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        # Called once, as the batch that reaches the budget starts (a study fits its
        # statistical baselines from then on, beside that batch: they are needed at the end).
        self.on_last_batch = on_last_batch
        self.dataset = dataset
        self.recorder = recorder
        self.settings = settings
        self.progress = progress
        # map_jobs yields (job index, outcome) as each training ends; default: here, in order.
        self._map_jobs = map_jobs or (lambda jobs: ((i, run_job(job, dataset)) for i, job in enumerate(jobs)))
        self._memo: dict[tuple, tuple[float, int, bool]] = {}  # key -> (value, trial number, pruned)
        self.n_folds = config.folds
        # fold -> {evaluation index -> val curve of that fold's training}
        self._curves: list[dict[int, tuple[float, ...]]] = [{} for _ in range(self.n_folds)]
        # Every fold value of the best candidate of earlier batches that completed every fold:
        # the reference of the between-folds rule (None until there is one).
        self._reference: tuple[float, tuple[float, ...]] | None = None
        self.best_value = math.inf  # the study's best so far, replays included
        # Validation RMSEs of the best ``top_k`` distinct candidates trained to the end so far
        # (replays included): a candidate that enters them has its weights kept with its trial,
        # so that the final forecast may average the best K (hpo_lstm.ensemble).
        self.top_k = config.top_k
        self._top_values: list[float] = []
        self.n_pruned = 0
        self.n_evaluations = 0
        self.n_batches = 0
        self.n_trained = 0
        self.n_replayed = 0
        self.n_duplicates = 0
        # --timeout: no batch that trains starts after this wall-clock time (seconds since the
        # epoch); the search then ends with what it has (``stopped_at`` says when).
        self.deadline = deadline
        self.stopped_at: float | None = None

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
        raise_if_swallowed()  # a Ctrl-C some library swallowed stops the run here
        if self._past_deadline(len(batch)):
            self.stopped_at = time.time()
            raise SearchStopped
        if self.on_last_batch is not None and self.n_evaluations + len(batch) >= self.config.budget:
            self.on_last_batch()
            self.on_last_batch = None
        generation = self.n_batches
        self.n_batches += 1
        # Pruning limits and the fold reference come from earlier batches only: fixed before
        # anything of this batch runs (replays of this batch included).
        prune_above = [
            prune_thresholds(curves.values(), mode=self.config.pruning, max_epochs=self.settings.max_epochs)
            for curves in self._curves
        ]
        reference = self._reference[1] if self._reference is not None else None
        complete: list[tuple[float, tuple[float, ...]]] = []  # this batch's candidates with every fold
        # Each fold's curves of this batch's trainings recorded by an earlier run (halving ranks them too).
        replayed: list[list[tuple[int, tuple[float, ...]]]] = [[] for _ in range(self.n_folds)]
        values: list[float] = [math.nan] * len(batch)
        waiting: list[tuple[int, int, dict[str, Any]]] = []  # (position, evaluation index, params)
        for position, params in enumerate(batch):
            index = self.n_evaluations
            self.n_evaluations += 1
            stored = self.recorder.stored(index)
            if stored is not None:
                if not same_candidate(stored.params, params):
                    raise StorageError(self._mismatch(index, stored.params, params))
                self._memo.setdefault(_memo_key(stored.params), (stored.value, stored.number, stored.state == "PRUNED"))
                for fold, curve in enumerate(self._stored_curves(stored)):
                    if curve:
                        self._curves[fold][index] = curve
                        if "duplicate_of" not in stored.attrs:
                            replayed[fold].append((index, curve))
                fold_values = self._stored_folds(stored)
                if stored.state == "COMPLETE" and len(fold_values) == self.n_folds:
                    complete.append((stored.value, fold_values))
                values[position] = stored.value
                if stored.value < self.best_value:  # NaN compares False
                    self.best_value = stored.value
                if stored.state == "COMPLETE" and "duplicate_of" not in stored.attrs:
                    self._note_kept(stored.value)
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
        self._train(new, generation, prune_above, reference, complete, replayed)
        self._update_reference(complete)
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

    def _train(
        self,
        new: dict[tuple, tuple[int, dict[str, Any]]],
        generation: int,
        prune_above: list[tuple[float, ...] | None],
        reference: tuple[float, ...] | None,
        complete: list[tuple[float, tuple[float, ...]]],
        replayed: list[list[tuple[int, tuple[float, ...]]]],
    ) -> None:
        """Train the batch's new candidates, fold by fold, recording each as it finishes: after
        its last fold, or when it stops (pruned within a fold, between folds, or failed)."""
        keys = list(new)
        runs: dict[tuple, list[TrainResult]] = {key: [] for key in keys}  # each fold's training so far
        if self.progress is not None:
            self.progress.batch(len(keys))
        alive = keys
        for fold in range(self.n_folds):
            last = fold == self.n_folds - 1
            # Only a candidate whose mean can beat the best of earlier batches can become the
            # final model: only those send their last fold's weights back.
            jobs = [
                TrainJob(
                    self.config.model,
                    new[key][1],
                    self.settings,
                    self.config.seed,
                    prune_above[fold],
                    self.n_folds * self.keep_below - sum(r.val_rmse for r in runs[key]) if last else None,
                    fold,
                )
                for key in alive
            ]
            going_on: list[tuple] = []
            order = [new[key][0] for key in alive]
            for job_index, outcome in self._trainings(jobs, order, replayed[fold]):
                key = alive[job_index]
                if isinstance(outcome, TrainResult):
                    runs[key].append(outcome)
                    if outcome.status == "ok" and not last:
                        going_on.append(key)
                        continue
                self._finish(key, new[key], runs[key], outcome, generation, reference, complete)
            survivors = []
            for key in sorted(going_on, key=keys.index):  # batch order: the record does not depend on timing
                fold_values = [r.val_rmse for r in runs[key]]
                if stops_after_fold(fold_values, reference, mode=self.config.pruning):
                    self._finish(key, new[key], runs[key], None, generation, reference, complete)
                else:
                    survivors.append(key)
            alive = survivors

    def _mismatch(self, index: int, stored: dict[str, Any], proposed: dict[str, Any]) -> str:
        """Why a replay cannot go on: the record is another run's, or (most often) the budget
        changed under an optimizer whose moves depend on how many generations it allows."""
        import json

        recorded = json.loads(self.recorder.study.user_attrs.get("hpo_lstm_final", "{}")).get("budget")
        if recorded is not None and recorded != self.config.budget:
            return (
                f"Study {self.config.study_name!r} was recorded with budget {recorded}, and optimizer "
                f"{self.config.optimizer!r} moves differently with budget {self.config.budget} (it spreads its schedule "
                f"over the generations the budget allows: woa, gwo and many mealpy classes do), so evaluation {index} "
                f"cannot be replayed. Keep budget {recorded}, or give a new `name` for budget {self.config.budget}."
            )
        return (
            f"Stored evaluation {index} of study {self.config.study_name!r} has params {stored}, but the optimizer "
            f"now proposes {proposed}; the record does not belong to this run. Give a new `name`."
        )

    def _past_deadline(self, size: int) -> bool:
        """Whether the time limit forbids this batch: past the deadline, the study has a first
        evaluation, and the batch would train (a batch recorded by an earlier run replays)."""
        if self.deadline is None or self.n_evaluations == 0 or time.time() < self.deadline:
            return False
        return any(self.recorder.stored(self.n_evaluations + i) is None for i in range(size))

    def _trainings(
        self, jobs: list[TrainJob], order: list[int], replayed: list[tuple[int, tuple[float, ...]]]
    ) -> Iterator[tuple[int, TrainResult | str]]:
        """(job index, outcome) of each job as it ends: one training each, or with successive
        halving (:func:`hpo_lstm.pruning.halving_rungs`) rung by rung, the candidates that do
        not go on yielded as pruned at each rung's barrier. ``order``: each job's evaluation
        index; ``replayed``: (evaluation index, curve) of this batch's candidates recorded by an
        earlier run, ranked with the others as they were when they trained."""
        if self.config.pruning != "halving":
            yield from self._map_jobs(jobs)
            return
        patience = self.settings.patience
        alive = list(range(len(jobs)))
        rungs = halving_rungs(self.settings.max_epochs)
        for k, rung in enumerate(rungs):
            settings = dataclasses.replace(self.settings, max_epochs=rung)
            rung_jobs = [dataclasses.replace(jobs[i], settings=settings) for i in alive]
            reached: dict[int, TrainResult] = {}
            for j, outcome in self._map_jobs(rung_jobs):
                i = alive[j]
                going = (
                    k < len(rungs) - 1
                    and isinstance(outcome, TrainResult)
                    and outcome.status == "ok"
                    and outcome.epochs == rung
                    and outcome.epochs - outcome.best_epoch < patience
                )
                if going:
                    reached[i] = outcome
                else:  # failed, diverged, stopped by its own patience, or at the last rung: done
                    yield i, outcome
            if not reached:
                return
            values = {order[i]: r.val_rmse for i, r in reached.items()}  # by evaluation index
            for index, curve in replayed:  # recorded candidates of this batch that went on from this rung
                if len(curve) >= rung and rung - (1 + min(range(rung), key=curve.__getitem__)) < patience:
                    values[index] = min(curve[:rung])
            keep = halving_keep(values)
            for i in sorted(reached):
                if order[i] not in keep:
                    yield i, dataclasses.replace(reached[i], status="pruned")
            alive = sorted(i for i in reached if order[i] in keep)

    def _finish(
        self,
        key: tuple,
        candidate: tuple[int, dict[str, Any]],
        runs: list[TrainResult],
        outcome: TrainResult | str | None,
        generation: int,
        reference: tuple[float, ...] | None,
        complete: list[tuple[float, tuple[float, ...]]],
    ) -> None:
        """Record a candidate that is done. ``runs`` are its trainings, one per fold so far;
        ``outcome`` is how the last one ended: a result (also the last of ``runs``), a failure
        message, or None when the candidate stopped between folds."""
        index, params = candidate
        failed = isinstance(outcome, str) or (isinstance(outcome, TrainResult) and outcome.status == "diverged")
        pruned = not failed and (outcome is None or outcome.status == "pruned")
        attrs = {"failure": outcome} if isinstance(outcome, str) else self._outcome_attrs(runs[-1])
        fold_values = [r.val_rmse for r in runs if r.status != "diverged"]
        if failed:
            value = math.nan
        elif self.n_folds == 1:
            value = fold_values[0]
        elif len(fold_values) == self.n_folds and not pruned:
            value = sum(fold_values) / self.n_folds
        else:
            value = projected_value(fold_values, reference)
        if self.n_folds > 1:
            attrs["epochs"] = sum(r.epochs for r in runs)
            attrs["train_seconds"] = round(sum(r.seconds for r in runs), 3)
            attrs["fold_rmse"] = fold_values
            attrs["fold_curves"] = [list(r.val_curve) for r in runs]
            if outcome is None:
                attrs["stopped_after_fold"] = len(runs)
            elif pruned:
                attrs["pruned_in_fold"] = len(runs)
        times = {"started": runs[0].started_at, "ended": runs[-1].started_at + runs[-1].seconds} if runs else {}
        # Among the best top_k so far: its weights are kept with its trial (the final model, or a
        # member of the final ensemble, should it stay there).
        kept = isinstance(outcome, TrainResult) and not pruned and value < self.keep_below
        weights = outcome.weights if kept else None
        curve = runs[-1].val_curve if runs else ()
        number = self.recorder.record(
            index,
            params,
            value,
            {**self._attrs(generation), **attrs},
            curve=curve,
            pruned=pruned,
            weights=weights,
            **times,
        )
        if value < self.best_value:
            self.best_value = value
        if not failed and not pruned:
            self._note_kept(value)
        self._memo[key] = (value, number, pruned)
        for fold, run in enumerate(runs):
            if run.val_curve:
                self._curves[fold][index] = run.val_curve
        if not failed and not pruned and len(fold_values) == self.n_folds:
            complete.append((value, tuple(fold_values)))
        self.n_trained += 1
        self.n_pruned += pruned
        self._report(value, "pruned" if pruned else "trained" if math.isfinite(value) else "failed")

    @property
    def keep_below(self) -> float:
        """A candidate trained to a validation RMSE below this enters the best ``top_k``."""
        return self._top_values[-1] if len(self._top_values) >= self.top_k else math.inf

    def _note_kept(self, value: float) -> None:
        if math.isfinite(value) and value < self.keep_below:
            self._top_values = sorted([*self._top_values, value])[: self.top_k]

    def _update_reference(self, complete: list[tuple[float, tuple[float, ...]]]) -> None:
        """After a batch: the best candidate that completed every fold so far (first of equals)."""
        for value, fold_values in complete:
            if math.isfinite(value) and (self._reference is None or value < self._reference[0]):
                self._reference = (value, fold_values)

    def _stored_curves(self, stored: Any) -> list[tuple[float, ...]]:
        """Each fold's validation curve of a recorded evaluation (one fold: its intermediate values)."""
        if self.n_folds == 1:
            return [stored.curve]
        return [tuple(c) for c in stored.attrs.get("fold_curves", [])]

    def _stored_folds(self, stored: Any) -> tuple[float, ...]:
        if self.n_folds == 1:
            return (stored.value,)
        return tuple(stored.attrs.get("fold_rmse", []))

    @staticmethod
    def _outcome_attrs(outcome: TrainResult) -> dict[str, Any]:
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
        return attrs
