"""The read side of a study's storage: opening it, and one :class:`StudyRecord` per study.

A study's storage holds, beside Optuna's trials, what hpo-lstm recorded with the study: its
identity (the settings a resumed run must match), the statistical baselines, the final summary
and test predictions, and the final model's card (its weights are artifacts of trials,
:mod:`hpo_lstm.store.model_store`). Every command reads them through a :class:`StudyRecord`,
loaded once: a run (whether its study is complete already, and the files it writes at the end),
a comparison (which cells are finished), ``hpo-lstm report`` and ``hpo-lstm forecast``. The
rules of what a record means live here and only here: which trials count as evaluations, when
a study is complete, when a recorded result belongs to a config.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from hpo_lstm._errors import StorageError, first_line
from hpo_lstm._urls import mask_secrets, mask_url, remember_url

if TYPE_CHECKING:
    from hpo_lstm.config import StudyConfig

__all__ = [
    "BASELINES_ATTR",
    "IDENTITY_ATTR",
    "MODEL_ATTR",
    "StudyRecord",
    "counts_as_evaluation",
    "find_study",
    "is_complete",
    "is_training",
    "open_storage",
    "predictions_frame",
    "spelled_as_stored",
]

IDENTITY_ATTR = "hpo_lstm_identity"  # the settings a resumed run must match; marks an hpo-lstm study
FINAL_ATTR = "hpo_lstm_final"
PREDICTIONS_ATTR = "hpo_lstm_predictions"
MODEL_ATTR = "hpo_lstm_model"  # the final model's card (model.json); its weights are an artifact of a trial
BASELINES_ATTR = "hpo_lstm_baselines"  # the statistical baselines' test forecasts (hpo_lstm.baselines)


# Opening ----------------------------------------------------------------------------------------

_STORAGES: dict[str, Any] = {}
_OPEN_ATTEMPTS = 5


def open_storage(url: str) -> Any:
    """The Optuna RDB storage for ``url`` (SQLite file, PostgreSQL, any SQLAlchemy URL).

    One per URL and process: the cells of a comparison share its engine and connection pool
    (with PostgreSQL, one pool per cell would pile up server connections)."""
    import optuna

    if "://" not in url:
        raise StorageError(f"Storage {mask_url(url)!r} is not a database URL (e.g. sqlite:///results/hpo-lstm.db).")
    remember_url(url)  # a report this process writes finds it again from its masked form
    if url not in _STORAGES:
        # Opening an empty database creates Optuna's tables. Drivers started together race to
        # create them (PostgreSQL's CREATE TABLE is not atomic against a concurrent one: the
        # losers get a unique violation or "already exists"); once a winner has made them, a
        # second try finds them.
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                # SQLite: a comparison's cells write from several threads at once; wait for a
                # writer up to a minute rather than Python's 5 s before "database is locked".
                kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
                _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs or None)
                break
            except Exception as exc:  # sqlalchemy raises many kinds; all mean "cannot open it"
                if not _lost_creation_race(exc) or attempt + 1 == _OPEN_ATTEMPTS:
                    raise StorageError(f"Cannot open storage {mask_url(url)!r}: {_open_problem(url, exc)}") from None
                time.sleep(0.2 * (attempt + 1))
    return _STORAGES[url]


def _open_problem(url: str, exc: BaseException) -> str:
    """Why a storage did not open, in the user's terms: without SQLAlchemy's "(module.Error)"
    prefix; an unknown URL scheme and an SQLite file whose folder is missing said as such."""
    import os
    import re
    from pathlib import Path

    text = mask_secrets(first_line(exc))
    scheme = re.match(r"Can't load plugin: sqlalchemy\.dialects:(\S+)", text)
    if scheme:
        return f"no database kind {scheme.group(1)!r}; give sqlite:///FILE, postgresql://... or mysql://..."
    text = re.sub(r"^\([\w.]+\) ", "", text)
    if url.startswith("sqlite:///") and "unable to open database file" in text:
        folder = Path(url[len("sqlite:///") :]).parent
        if not folder.is_dir():
            return f"{text} (its folder {str(folder)!r} does not exist)"
        if not os.access(folder, os.W_OK):
            return f"{text} (its folder {str(folder)!r} is not writable)"
    return text


def _lost_creation_race(exc: BaseException) -> bool:
    """Whether opening a storage failed because another process was creating Optuna's tables:
    PostgreSQL's "already exists" or a unique violation in its catalog, SQLite's "already
    exists", a UNIQUE failure on the version table, or a lock held by the creator."""
    signs = ("already exists", "duplicate key", "unique constraint failed", "database is locked")
    cause: BaseException | None = exc
    while cause is not None:
        if any(sign in str(cause).lower() for sign in signs):
            return True
        cause = cause.__cause__
    return False


def find_study(storage: Any, study_name: str) -> Any:
    """The Optuna study of this name in ``storage``, or None when there is none (Optuna's own
    log lines kept quiet)."""
    import optuna

    from hpo_lstm._logging import quiet_optuna

    try:
        with quiet_optuna():
            return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None


# Rules ------------------------------------------------------------------------------------------


def counts_as_evaluation(trial: Any) -> bool:
    """Whether an Optuna trial stands for one evaluation of the optimizer's path: recorded by
    hpo-lstm, and not an attempt a crash interrupted (that evaluation was made again)."""
    return "evaluation" in trial.user_attrs and trial.user_attrs.get("failure") != "interrupted"


def is_training(trial: Any) -> bool:
    """Whether an evaluation trained a network: it counts as an evaluation and is not a memo
    copy of an earlier candidate (``duplicate_of``)."""
    return counts_as_evaluation(trial) and "duplicate_of" not in trial.user_attrs


def spelled_as_stored(stored: Mapping[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` with its ``features`` and ``time_column`` as ``stored`` spells them, when they
    are the only column settings that differ and both name the same data fingerprint: settings
    that only spell out what the data resolved to before (the time column found by its name,
    the target alone as input) reach the network with the same values, times and columns, so the
    study is the same one. Otherwise ``identity`` unchanged."""
    columns = {k for k in ("data", "target", "features", "time_column") if stored.get(k) != identity.get(k)}
    fingerprint = identity.get("data_fingerprint")
    if (
        columns
        and columns <= {"features", "time_column"}
        and fingerprint
        and stored.get("data_fingerprint") == fingerprint
    ):
        return identity | {k: stored.get(k) for k in columns}
    return identity


def is_complete(summary: Mapping[str, Any], budget: int) -> bool:
    """Whether a recorded final summary is a finished study's: its whole budget spent, or fewer
    evaluations when its optimizer ended the search by its own rule (recorded with this budget:
    a summary is recorded when the search has ended), not ended early by ``timeout`` with its best
    so far. The one rule for a run, a comparison's cells, its report and ``hpo-lstm forecast``."""
    if summary.get("stopped_early"):
        return False
    n = summary.get("n_evaluations")
    return n == budget or (summary.get("budget") == budget and isinstance(n, int) and 0 < n < budget)


def predictions_frame(columns: Mapping[str, list]) -> Any:
    """The test predictions as recorded with the study (columns of plain values; time stamps as
    ISO text) -> a frame: time (datetime64 or row number), then the recorded columns."""
    import pandas as pd

    frame = pd.DataFrame({"time": columns["time"], **{k: v for k, v in columns.items() if k != "time"}})
    if not pd.api.types.is_numeric_dtype(frame["time"]):
        frame["time"] = pd.to_datetime(frame["time"])
    return frame


def _json_attr(attrs: Mapping[str, Any], key: str) -> Any:
    """A study attribute hpo-lstm wrote as JSON text, decoded; None when missing or unreadable."""
    text = attrs.get(key)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


# The record -------------------------------------------------------------------------------------


class StudyRecord:
    """What the storage holds of one study, read once (its attributes, its trials) and answered
    from memory: the evaluations, the final summary and predictions, the model card and weights,
    the baselines, whether it is complete and whether it belongs to a config.

    Made with :meth:`load` (None when the storage holds no such study) or, by the process that
    holds the study open already, from its Optuna ``study`` (:meth:`hpo_lstm.store.recording.Recorder.study_record`).
    A record is a snapshot: a study written to after it was made needs a new one.
    """

    def __init__(self, study: Any, storage: Any, url: str) -> None:
        self.study, self.storage, self.url = study, storage, url
        self.name: str = study.study_name
        self.attrs: dict[str, Any] = dict(study.user_attrs)

    @classmethod
    def load(cls, storage: Any, study_name: str, url: str) -> StudyRecord | None:
        """The record of ``study_name`` in ``storage`` (opened from ``url``), or None."""
        study = find_study(storage, study_name)
        return cls(study, storage, url) if study is not None else None

    # Trials ---------------------------------------------------------------------------------

    @cached_property
    def trials(self) -> list[Any]:
        """Every trial of the study (Optuna's FrozenTrials), in number order."""
        return list(self.study.get_trials(deepcopy=False))

    @cached_property
    def trials_frame(self) -> Any:
        """The trials as Optuna's ``trials_dataframe()`` lays them out (trials.csv)."""
        return self.study.trials_dataframe()

    def evaluations(self) -> list[Any]:
        """The finished trials that count as evaluations (:func:`counts_as_evaluation`), in the
        optimizer's order."""
        finished = (t for t in self.trials if counts_as_evaluation(t) and t.state.is_finished())
        return sorted(finished, key=lambda t: t.user_attrs["evaluation"])

    def trainings(self) -> list[Any]:
        """The evaluations that trained a network (any state, in number order): not a memo copy
        of an earlier candidate (``duplicate_of``), which trained nothing and holds no weights."""
        return [t for t in self.trials if is_training(t)]

    def ranked_trainings(self) -> list[Any]:
        """The trainings that completed with a finite validation RMSE, best first (the earliest
        evaluation of equals): the candidates whose weights a final forecast may keep."""
        completed = (
            t for t in self.trainings() if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)
        )
        return sorted(completed, key=lambda t: (t.value, t.user_attrs["evaluation"]))

    # What hpo-lstm recorded with the study --------------------------------------------------

    @property
    def identity(self) -> dict[str, Any] | None:
        """The settings the study was recorded with (``StudyConfig.identity()`` and the data's
        fingerprint); None for a study hpo-lstm did not make."""
        value = _json_attr(self.attrs, IDENTITY_ATTR)
        return value if isinstance(value, dict) else None

    @cached_property
    def final(self) -> tuple[dict[str, Any], dict[str, list]] | None:
        """The final summary and test prediction columns, or None (not finished, or written by
        an older hpo-lstm half-way)."""
        summary, columns = self.attrs.get(FINAL_ATTR), self.attrs.get(PREDICTIONS_ATTR)
        if summary is None or columns is None:
            return None
        return json.loads(summary), json.loads(columns)

    @property
    def summary(self) -> dict[str, Any] | None:
        """The final summary (summary.json's content), or None."""
        return self.final[0] if self.final is not None else None

    def predictions(self) -> Any:
        """The final test predictions as a frame (predictions.csv); the study must be final."""
        if self.final is None:
            raise StorageError(f"Study {self.name!r} in {mask_url(self.url)!r} has no final result.")
        return predictions_frame(self.final[1])

    def is_complete(self, budget: int) -> bool:
        """Whether the study is final with its whole ``budget`` spent (:func:`is_complete`)."""
        return self.summary is not None and is_complete(self.summary, budget)

    def matches(self, config: StudyConfig, *, data_fingerprint: str | None = None) -> bool:
        """Whether the recorded final result is ``config``'s: recorded with exactly its settings
        and budget (and, given ``data_fingerprint``, on this data). Otherwise running ``config``
        again extends, resumes or refuses the study."""
        identity = self.identity
        if self.summary is None or identity is None:
            return False
        now = spelled_as_stored(identity, config.identity() | {"data_fingerprint": data_fingerprint})
        recorded_on = identity.pop("data_fingerprint", None)
        now.pop("data_fingerprint")
        if identity != now or self.summary.get("budget") != config.budget:
            return False
        return data_fingerprint is None or recorded_on in (None, data_fingerprint)

    @property
    def baselines(self) -> dict[str, Any] | None:
        """The statistical baselines' record (:meth:`hpo_lstm.baselines.Baselines.to_record`), or None."""
        value = _json_attr(self.attrs, BASELINES_ATTR)
        return value if isinstance(value, dict) else None

    @property
    def has_model(self) -> bool:
        return self.attrs.get(MODEL_ATTR) is not None

    def model(self) -> tuple[dict[str, Any], Any] | None:
        """The final model: its card (model.json) and the weights attached to the trials it
        names (the best network's, merged with the other members' of its final forecast); None
        for a study without one (unfinished, or recorded by an earlier hpo-lstm)."""
        from hpo_lstm.store.model_store import ModelFileError, merge_member_weights, trial_weights

        card_json = self.attrs.get(MODEL_ATTR)
        if card_json is None:
            return None
        card = json.loads(card_json)
        if not isinstance(card, dict):
            return card, {}  # refused by the forecaster, naming what it is
        trials = {t.number: t for t in self.trials}

        def weights_of(number: Any) -> Any:
            trial = trials.get(number) if isinstance(number, int) else None
            weights = trial_weights(self.storage, trial, self.study) if trial is not None else None
            if weights is None:
                raise ModelFileError(
                    f"Study {self.name!r} names trial {number} as its model, but no weights are attached to it."
                )
            return weights

        final = card.get("final_forecast")
        members = final.get("members") if isinstance(final, dict) else None
        others = {m["name"]: weights_of(m.get("trial")) for m in members or () if isinstance(m, dict) and "params" in m}
        return card, merge_member_weights(weights_of(card.get("trial")), others)
