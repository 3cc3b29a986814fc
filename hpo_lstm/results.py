"""A run's summary, typed: what summary.json holds, as attributes instead of string keys.

:class:`RunSummary` is made by :meth:`hpo_lstm.study.StudyResult.run_summary` from the result's
typed parts, written (``to_dict``, the keys summary.json has always had) into the study's
storage and summary.json, and read back (``from_dict``) by everything that shows a run: the
command's printout, report.md, a comparison's tables. ``from_dict`` is the one place that knows
which keys a summary recorded by an earlier hpo-lstm may lack, and what they meant then
(``precision`` "fp32" before bf16 training, ``device`` "cpu", no folds, no final forecast).

Nested parts whose keys are open (the metrics, the baselines by name, the final forecast's
candidates, the intervals by level) stay plain mappings of JSON values. Torch-free, like the
report layer that reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from hpo_lstm._errors import ConfigError

__all__ = ["Protocol", "RunSummary"]


@dataclass(frozen=True)
class Protocol:
    """How the run was made: the split, the windows, the training settings, the season."""

    split: list[float] = field(default_factory=list)
    windows: dict[str, int] = field(default_factory=dict)  # "train", "val", "test" -> windows
    lookback: int | None = None
    horizon: int | None = None
    transform: str | None = None
    calendar: list[str] = field(default_factory=list)
    max_epochs: int | None = None
    patience: int | None = None
    batch_size: int | None = None
    pruning: str | None = None
    space: dict[str, Any] = field(default_factory=dict)
    gaps_filled: int = 0
    data_notes: list[str] = field(default_factory=list)
    season: dict[str, Any] = field(default_factory=dict)
    season_text: str | None = None  # None: recorded by an hpo-lstm before seasons were
    baseline_timeout: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> Protocol:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (value or {}).items() if k in known and v is not None})


# Keys every summary has held since the first hpo-lstm; the others have defaults.
_REQUIRED = (
    "study_name",
    "optimizer",
    "model",
    "dataset",
    "target",
    "n_evaluations",
    "n_trained",
    "best_params",
    "best_val_rmse",
    "test",
    "baselines",
    "seed",
)


@dataclass(frozen=True)
class RunSummary:
    """summary.json of a run. ``test`` and the baselines' entries hold ``rmse``, ``mae`` and
    ``mape`` (None where the actual values cross zero); ``final_forecast`` is
    :meth:`hpo_lstm.ensemble.FinalForecast.record` ({} for a run before final forecasts)."""

    study_name: str
    optimizer: str
    model: str
    dataset: str
    target: str
    n_evaluations: int
    n_trained: int
    best_params: dict[str, Any]
    best_val_rmse: float
    test: dict[str, float | None]
    baselines: dict[str, dict[str, Any]]  # "naive_last" and each statistical baseline by name
    seed: int
    features: list[str] = field(default_factory=list)
    budget: int | None = None
    pop_size: int | None = None
    n_duplicates: int = 0
    n_replayed: int = 0
    n_pruned: int = 0
    n_failed: int = 0
    final_forecast: dict[str, Any] = field(default_factory=dict)
    val_baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_step: list[dict[str, Any]] = field(default_factory=list)  # test metrics of each step 1..H
    beats_naive: bool = False
    best_statistical_baseline: dict[str, Any] | None = None  # name, model, rmse, relative_difference
    beats_statistical_baselines: bool | None = None  # None: no statistical baseline was scored
    season: int | None = None
    protocol: Protocol = field(default_factory=Protocol)
    final_model: dict[str, Any] = field(default_factory=dict)  # trial, weights ("kept"/"retrained"), note
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)  # "80" -> halfwidth, test_coverage, ...
    device: str = "cpu"
    precision: str = "fp32"  # the training steps' arithmetic ("fp32" or "bf16")
    storage: str = ""  # masked
    wall_seconds: float = 0.0
    stopped_early: dict[str, Any] | None = None  # reason, timeout_seconds, evaluations, budget
    folds: dict[str, Any] | None = None  # k, chosen_fold_val_rmse (None with one validation window)
    hpo_lstm_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of another hpo-lstm's summary, kept as they were

    # summary.json's key order (the storage keeps it with sorted keys; report/_run orders it).
    _ORDER = tuple(
        (
            "study_name optimizer model dataset target features budget pop_size n_evaluations n_trained n_duplicates "
            "n_replayed n_pruned n_failed best_params best_val_rmse final_forecast test baselines val_baselines by_step "
            "beats_naive best_statistical_baseline beats_statistical_baselines season protocol final_model intervals "
            "seed device precision storage wall_seconds stopped_early folds hpo_lstm_version"
        ).split()
    )

    @property
    def ended_by_optimizer(self) -> bool:
        """Whether the optimizer ended its search by its own rule before the budget was spent
        (a user's optimizer may; a time limit is ``stopped_early`` instead)."""
        return not self.stopped_early and self.budget is not None and 0 < self.n_evaluations < self.budget

    @property
    def combined(self) -> bool:
        """Whether the final forecast is more than the best network alone."""
        return self.final_forecast.get("kind", "best") != "best"

    @property
    def naive(self) -> dict[str, Any]:
        """The last-value naive forecast's test metrics."""
        return self.baselines["naive_last"]

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON values, with the keys summary.json has."""
        values = {name: getattr(self, name) for name in self._ORDER}
        values["protocol"] = self.protocol.to_dict()
        return {**values, **self.extra}

    @classmethod
    def from_dict(cls, summary: Mapping[str, Any]) -> RunSummary:
        """A summary as recorded (by this hpo-lstm or an earlier one): keys an earlier one did
        not write take the values they stood for then; keys it wrote that this one does not
        know are kept in ``extra``. Refused in one line when a key every summary has is missing."""
        missing = [k for k in _REQUIRED if k not in summary]
        if missing:
            raise ConfigError(f"A recorded summary lacks {', '.join(missing)}: it was not written by hpo-lstm run.")
        known = {f.name for f in fields(cls)} - {"extra", "protocol"}
        values = {k: v for k, v in summary.items() if k in known and v is not None}
        return cls(
            **values,
            protocol=Protocol.from_dict(summary.get("protocol")),
            extra={k: v for k, v in summary.items() if k not in known and k != "protocol"},
        )
