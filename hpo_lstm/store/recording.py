"""The record: every evaluation is a trial in an Optuna storage (SQLite by default).

Each trial carries the decoded params, the fitness (validation RMSE) and user attributes
(``evaluation`` = its place in the optimizer's sequence, ``generation``, ``optimizer``,
``model``, ``seed``, ``epochs``, ``train_seconds``, ``duplicate_of``, ``failure``). The study's
own user attributes hold the config identity, so a resumed study is checked against the
command that resumes it, and the ``evaluation`` index lets a restarted optimizer replay its
path from stored values instead of retraining.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo_lstm._errors import ConfigError, StorageError, setting_text
from hpo_lstm._files import ensure_writable
from hpo_lstm._json import dumps
from hpo_lstm._logging import quiet_optuna
from hpo_lstm._urls import mask_url
from hpo_lstm.config import StudyConfig
from hpo_lstm.store.record import (
    BASELINES_ATTR,
    FINAL_ATTR,
    IDENTITY_ATTR,
    MODEL_ATTR,
    PREDICTIONS_ATTR,
    StudyRecord,
    counts_as_evaluation,
    open_storage,
    spelled_as_stored,
)

__all__ = ["Recorder", "StoredEvaluation"]


@dataclass(frozen=True)
class StoredEvaluation:
    number: int
    params: dict[str, Any]
    value: float  # NaN for a failed evaluation
    state: str
    curve: tuple[float, ...] = ()  # per-epoch validation RMSE of a trained (not memo) evaluation
    attrs: dict[str, Any] = field(default_factory=dict)  # the trial's user attributes (fold values, ...)


class Recorder:
    """Opens (or creates) the study in its storage and writes one trial per evaluation."""

    def __init__(self, config: StudyConfig, *, data_fingerprint: str | None = None) -> None:
        """Open the study and take its lease (:mod:`hpo_lstm.store.lease`: one driver per study);
        ``close()`` gives the lease back. ``data_fingerprint`` (:attr:`Dataset.fingerprint`) is
        part of the study's identity: a study is never resumed on other data."""
        import optuna
        from optuna.distributions import FloatDistribution, IntDistribution
        from optuna.study import StudyDirection

        from hpo_lstm.store.lease import StudyLease

        self.config = config
        self.data_fingerprint = data_fingerprint
        if config.storage is None:
            ensure_writable(Path(config.out))
        storage = open_storage(config.storage_url)
        with quiet_optuna():
            self.study = optuna.create_study(
                storage=storage, study_name=config.study_name, direction="minimize", load_if_exists=True
            )
        if self.study.direction != StudyDirection.MINIMIZE:
            raise StorageError(
                f"Study {config.study_name!r} in {mask_url(config.storage_url)!r} exists with direction "
                f"{self.study.direction.name.lower()}; hpo-lstm minimises validation RMSE. Choose another `name`."
            )
        self._storage = storage
        self._study_id = storage.get_study_id_from_name(config.study_name)
        self._check_identity()  # before the lease: a refused command writes nothing
        self._lease = StudyLease(storage, config.study_name).acquire()
        self.distributions = {
            p.name: (
                IntDistribution(int(p.low), int(p.high), log=p.log)
                if p.integer
                else FloatDistribution(p.low, p.high, log=p.log)
            )
            for p in config.space.params
        }
        self._stored = self._load_stored()
        self._written: set[int] = set()  # evaluation indices this run recorded

    # Reading ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Give the study's lease back (the next driver may start at once)."""
        self._lease.release()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_identity(self) -> None:
        identity = self.config.identity()
        if self.data_fingerprint is not None:
            identity["data_fingerprint"] = self.data_fingerprint
        stored = self.study_record().identity
        if stored is None:
            if self.study.trials:
                raise StorageError(
                    f"Study {self.config.study_name!r} in {mask_url(self.config.storage_url)!r} was not made by hpo-lstm; "
                    "choose another `name`."
                )
            self.study.set_user_attr(IDENTITY_ATTR, json.dumps(identity, sort_keys=True))
            self.study.set_user_attr("config", json.dumps(self.config.to_dict(), sort_keys=True))
            return
        if identity.get("targets") and "targets" not in stored and stored.get("horizon", 1) > 1:
            raise ConfigError(
                f"Study {self.config.study_name!r} in {mask_url(self.config.storage_url)!r} was recorded by an earlier hpo-lstm, "
                f"in which horizon {stored['horizon']} meant one value {stored['horizon']} steps ahead; it now means "
                f"steps 1..{stored['horizon']}. Give a new `name` to run it with the new meaning."
            )
        identity = spelled_as_stored(stored, identity)  # (before an earlier hpo-lstm's study adopts the fingerprint)
        if "data_fingerprint" in identity and "data_fingerprint" not in stored:  # recorded by an earlier hpo-lstm
            stored["data_fingerprint"] = identity["data_fingerprint"]
            self.study.set_user_attr(IDENTITY_ATTR, json.dumps(stored, sort_keys=True))
        # Settings that pick other columns change the fingerprint too: those are named, not the file.
        columns = [k for k in ("data", "target", "features", "time_column") if stored.get(k) != identity.get(k)]
        if not columns and stored.get("data_fingerprint", identity.get("data_fingerprint")) != identity.get(
            "data_fingerprint"
        ):
            raise ConfigError(
                f"The data of study {self.config.study_name!r} changed since it was recorded ({self.config.data_name!r}: "
                f"fingerprint {stored['data_fingerprint'][:12]} then, {identity['data_fingerprint'][:12]} now); its "
                "evaluations belong to the old data. Give a new `name` to run a study on the new data."
            )
        self._adopt_or_refuse_old_mealpy(stored, identity)
        differing = sorted(k for k in set(stored) | set(identity) if stored.get(k) != identity.get(k))
        if differing and not self.study.trials:  # nothing recorded under the old settings (a run refused later)
            self.study.set_user_attr(IDENTITY_ATTR, json.dumps(identity, sort_keys=True))
            self.study.set_user_attr("config", json.dumps(self.config.to_dict(), sort_keys=True))
            return
        if differing:
            shown = [k for k in differing if k != "data_fingerprint"] or differing
            details = "; ".join(
                f"{k}: stored {setting_text(stored.get(k))}, now {setting_text(identity.get(k))}" for k in shown[:4]
            )
            raise ConfigError(
                f"Study {self.config.study_name!r} already exists in {mask_url(self.config.storage_url)!r} with other settings "
                f"({details}); resume it with the same settings or give a new `name`."
            )

    def _adopt_or_refuse_old_mealpy(self, stored: dict[str, Any], identity: dict[str, Any]) -> None:
        """A study recorded before mealpy joined the identity was recorded with mealpy 3.0.3.
        Optimizers proven to propose the same candidates with today's mealpy adopt it (the stored
        identity gains today's implementation); any other is refused, naming both."""
        from hpo_lstm.optimizers._mealpy import SAME_PATH_AS_MEALPY_3_0_3

        now = identity.get("optimizer_impl")
        if now is None or "optimizer_impl" in stored or not self.study.trials:
            return
        if stored.get("optimizer") in SAME_PATH_AS_MEALPY_3_0_3:
            stored["optimizer_impl"] = now
            self.study.set_user_attr(IDENTITY_ATTR, json.dumps(stored, sort_keys=True))
            return
        raise ConfigError(
            f"Study {self.config.study_name!r} in {mask_url(self.config.storage_url)!r} was recorded with mealpy 3.0.3, "
            f"and optimizer {stored.get('optimizer')!r} proposes other candidates with {now} "
            "(docs/optimizers.md#which-mealpy), so its evaluations cannot be replayed. Give a new `name`."
        )

    def _load_stored(self) -> dict[int, StoredEvaluation]:
        """Finished evaluations by index; trials a crash left RUNNING are closed as FAIL."""
        from optuna.trial import TrialState

        stored: dict[int, StoredEvaluation] = {}
        for trial in self.study.get_trials(deepcopy=False):
            index = trial.user_attrs.get("evaluation")
            if index is None:
                continue
            if trial.state == TrialState.RUNNING:  # left by an earlier hpo-lstm (see close_open)
                self._close(trial.number, "interrupted")
                continue
            if trial.user_attrs.get("failure") == "interrupted":
                continue
            value = trial.value if trial.value is not None else math.nan
            curve = tuple(trial.intermediate_values[step] for step in sorted(trial.intermediate_values))
            stored[int(index)] = StoredEvaluation(
                trial.number, dict(trial.params), value, trial.state.name, curve, dict(trial.user_attrs)
            )
        return stored

    def stored(self, index: int) -> StoredEvaluation | None:
        """The finished evaluation recorded at ``index`` by an earlier run, if any."""
        return self._stored.get(index)

    @property
    def n_stored(self) -> int:
        return len(self._stored)

    # Writing ----------------------------------------------------------------------------------

    def record(
        self,
        index: int,
        params: dict[str, Any],
        value: float,
        attrs: dict[str, Any],
        *,
        curve: Sequence[float] = (),
        pruned: bool = False,
        started: float | None = None,
        ended: float | None = None,
        weights: Any = None,
    ) -> int:
        """Record evaluation ``index`` as one finished trial, in one write; returns its number.

        COMPLETE, PRUNED (with the value it reached) or FAIL (NaN ``value``). ``curve``
        (validation RMSE per epoch) becomes the trial's intermediate values: learning curves in
        optuna-dashboard, and the pruning reference of a resumed study. ``started`` and
        ``ended`` (seconds since the epoch) are the training's own start and end, so the
        trial's duration in trials.csv and the dashboard is its training's, not its batch's;
        an evaluation that trained nothing (a memo hit) starts and ends now.

        Trials are written when their training has ended, never before: a crash or Ctrl-C
        leaves no RUNNING trial behind, and no trial appears in the dashboard while it trains.
        ``weights`` (a state dict of arrays) are attached to the trial as the artifact
        ``weights.safetensors`` before it is finished (its end is then the moment they are stored).
        """
        from datetime import datetime

        from optuna.trial import TrialState, create_trial

        if index in self._stored or index in self._written:
            raise StorageError(
                f"Evaluation {index} of study {self.config.study_name!r} is recorded already; an evaluation is "
                "recorded once."
            )
        self._lease.check()  # another driver took the study over (this one was suspended): stop
        self._written.add(index)
        state = TrialState.FAIL if not math.isfinite(value) else TrialState.PRUNED if pruned else TrialState.COMPLETE
        template = create_trial(
            state=state,
            value=value if math.isfinite(value) else None,
            params=params,
            distributions={k: self.distributions[k] for k in params},
            user_attrs={"evaluation": index, **attrs},
            intermediate_values={e: v for e, v in enumerate(curve, start=1) if math.isfinite(v)},
        )
        now = time.time()
        ended = now if ended is None else ended
        template.datetime_start = datetime.fromtimestamp(ended if started is None else started)
        template.datetime_complete = datetime.fromtimestamp(ended)
        if weights is None:
            trial_id = self._storage.create_new_trial(self._study_id, template_trial=template)
            return self._storage.get_trial_number_from_id(trial_id)
        # Optuna attaches artifacts to unfinished trials only: create it RUNNING (with the
        # training's start), attach the weights, then finish it.
        from hpo_lstm.store.model_store import attach_weights

        finished_state, template.state, template.datetime_complete = template.state, TrialState.RUNNING, None
        values = template.values
        template.values = None
        trial_id = self._storage.create_new_trial(self._study_id, template_trial=template)
        attach_weights(self._storage, self._storage.get_trial(trial_id), weights)
        self._storage.set_trial_state_values(trial_id, finished_state, values)
        return self._storage.get_trial_number_from_id(trial_id)

    def attach_weights(self, number: int, weights: Any) -> None:
        """Attach weights to finished trial ``number``: Optuna takes artifacts only for unfinished
        trials, so they go to the study, named for the trial (see :func:`model_store.trial_weights`)."""
        from hpo_lstm.store.model_store import attach_study_weights

        attach_study_weights(self._storage, self.study, number, weights)

    def best_trial_weights(self, params: dict[str, Any]) -> tuple[int, Any] | None:
        """The trial that trained ``params`` (not a memo copy) and the weights attached to it
        (None when it has none: recorded by an earlier hpo-lstm, or stopped before they were
        stored); None when no trial trained them."""
        from hpo_lstm.store.model_store import trial_weights

        trained = [t for t in self.study_record().trainings() if t.params == params and t.value is not None]
        for trial in trained:
            weights = trial_weights(self._storage, trial, self.study)
            if weights is not None:
                return trial.number, weights
        return (trained[0].number, None) if trained else None

    def kept_trial_weights(self, k: int, *, exclude: int | None = None) -> list[tuple[int, dict[str, Any], Any]]:
        """Up to ``k`` trained (not memo) evaluations that completed, best validation RMSE first
        (earliest of equals), that have weights attached: (trial number, params, weights). Trial
        ``exclude`` (the final model, loaded already) is left out."""
        from hpo_lstm.store.model_store import trial_weights

        trained = [t for t in self.study_record().ranked_trainings() if t.number != exclude]
        kept = []
        for trial in trained:
            if len(kept) >= k:
                break
            weights = trial_weights(self._storage, trial, self.study)
            if weights is not None:
                kept.append((trial.number, dict(trial.params), weights))
        return kept

    def close_open(self, reason: str = "interrupted") -> int:
        """Mark every evaluation trial of the study still RUNNING as FAIL with ``reason``;
        returns how many.

        :meth:`record` writes finished trials only, so a RUNNING trial comes from an earlier
        hpo-lstm, which created each trial when its training started, and was interrupted.
        Used when a run is interrupted, and by a starting run (which closes every RUNNING trial
        it finds), so the storage holds none; the next run evaluates them again.
        """
        from optuna.trial import TrialState

        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        numbers = [t.number for t in running if "evaluation" in t.user_attrs]
        for number in numbers:
            self._close(number, reason)
        return len(numbers)

    def _close(self, number: int, reason: str) -> None:
        from optuna.trial import TrialState

        trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        self._storage.set_trial_user_attr(trial_id, "failure", reason)
        self._storage.set_trial_state_values(trial_id, TrialState.FAIL)

    @property
    def n_pruned_trainings(self) -> int:
        """Trainings of this study stopped by the pruner (memo copies not counted)."""
        from optuna.trial import TrialState

        return sum(1 for t in self.study_record().trainings() if t.state == TrialState.PRUNED)

    def common_failure(self) -> tuple[str, int, int] | None:
        """The most common kind of ``failure`` among this study's failed evaluations (what comes
        before its first colon, numbers aside: "diverged at epoch #", "RuntimeError"): (the first
        such reason in full, how many were of its kind, how many failed); None when none failed."""
        import re

        from optuna.trial import TrialState

        reasons = [
            str(t.user_attrs.get("failure", "no reason recorded"))
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if counts_as_evaluation(t)
        ]
        if not reasons:
            return None
        # A duplicate of a failed candidate repeats another's failure: counted with it.
        first = next((r for r in reasons if not r.startswith("duplicate")), reasons[0])
        reasons = [first if r.startswith("duplicate") else r for r in reasons]
        kinds = [re.sub(r"\d+", "#", reason.split(":")[0]) for reason in reasons]
        common = max(dict.fromkeys(kinds), key=kinds.count)  # (the first seen among equals)
        return reasons[kinds.index(common)], kinds.count(common), len(reasons)

    @property
    def n_finished(self) -> int:
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return sum(1 for t in self.study.get_trials(deepcopy=False, states=states) if counts_as_evaluation(t))

    def record_final(
        self, summary: dict[str, Any], predictions: Any, model_card: dict[str, Any] | None = None
    ) -> StudyRecord:
        """Store the final model's summary, test predictions and model card with the study;
        returns the study's record as it now stands.

        The storage then holds everything a report needs (``hpo-lstm report`` and comparisons
        read it back as a :class:`StudyRecord`), on whichever machine wrote it.
        """
        self._lease.check()
        columns = {c: predictions[c].tolist() for c in predictions.columns if c != "time"}
        times = predictions["time"]
        # Time stamps as ISO text, row numbers (series without a time column) as integers.
        columns["time"] = [str(t) for t in times] if times.dtype.kind == "M" else [int(t) for t in times]
        # Two writes: the predictions first, so that a run killed between them leaves no
        # summary of this run without its predictions (a record wants both; a resumed run
        # with a larger budget is told apart by the summary's budget).
        self.study.set_user_attr(PREDICTIONS_ATTR, dumps(columns))
        if model_card is not None:
            self.study.set_user_attr(MODEL_ATTR, dumps(model_card, sort_keys=True))
        self.study.set_user_attr(FINAL_ATTR, dumps(summary, sort_keys=True))
        return self.study_record()

    def record_baselines(self, record: dict[str, Any]) -> None:
        """Store the statistical baselines (:meth:`hpo_lstm.baselines.Baselines.to_record`) with the
        study, so that a resumed or extended study, and its reports, never fit them again."""
        self._lease.check()
        self.study.set_user_attr(BASELINES_ATTR, dumps(record, sort_keys=True))

    def stored_baselines(self) -> dict[str, Any] | None:
        return self.study_record().baselines

    def study_record(self) -> StudyRecord:
        """What the storage holds of the study now, read through the study this recorder holds
        open (the storage is not opened again)."""
        return StudyRecord(self.study, self._storage, self.config.storage_url)

    def trials_frame(self) -> Any:
        """All trials of the study as a pandas DataFrame (Optuna's layout)."""
        return self.study.trials_dataframe()
