"""Search spaces: named parameters <-> a unit vector in [0, 1]^d.

Every optimizer works on the same unit cube, so metaheuristics (whose variables are plain
floats) and TPE see the same, well-scaled space. Log-scaled parameters are uniform in log
space; integers get equal-width bins of the unit interval, so that every integer is equally
likely under a uniform draw (plain rounding would give the two end values half a share).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo_lstm._errors import ConfigError

__all__ = [
    "DEFAULT_LOOKBACK",
    "MAX_SEASON_LOOKBACK",
    "Param",
    "SearchSpace",
    "MODEL_PARAMS",
    "default_space",
    "season_lookback",
    "space_for_model",
]
# The fixed lookback when neither a study nor its data gives a reason for another.
DEFAULT_LOOKBACK = 24
# The longest lookback the season-aware default searches: one week of hourly data. An LSTM's
# training time grows with its lookback, and the default budget must stay affordable on a CPU.
MAX_SEASON_LOOKBACK = 168


@dataclass(frozen=True, kw_only=True)
class Param:
    """One searched parameter: ``low <= value <= high``, optionally log-scaled or integer."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"A parameter name must be an identifier; got {self.name!r}.")
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(
                    f"The '{bound}' bound of parameter '{self.name}' must be a finite number; got {value!r}."
                )
        if not self.low <= self.high:
            raise ConfigError(
                f"`low <= high` must hold for parameter '{self.name}', but got (low={self.low}, high={self.high})."
            )
        if self.log and self.low <= 0:
            raise ConfigError(f"A log-scaled parameter needs `low > 0`; parameter '{self.name}' got low={self.low}.")
        if self.integer and (self.low != int(self.low) or self.high != int(self.high)):
            raise ConfigError(
                f"Integer parameter '{self.name}' needs whole-number bounds; got (low={self.low}, high={self.high})."
            )

    def decode(self, u: float) -> float | int:
        """Map ``u`` in [0, 1] (clipped) to a parameter value."""
        u = min(max(float(u), 0.0), 1.0)
        if self.integer:
            low, high = int(self.low), int(self.high)
            if self.log:
                x = math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low)))
            else:
                x = low + u * (high - low + 1)
            return min(max(int(math.floor(x)), low), high)  # exp(log(8)) may be 7.999...
        if u in (0.0, 1.0):
            return self.high if u else self.low  # exactly, not up to exp/log rounding
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return min(max(value, self.low), self.high)  # exp/log rounding must not leave the bounds

    def encode(self, value: float) -> float:
        """Map a value to ``u`` in [0, 1]; for integers, the middle of the value's bin."""
        if self.high == self.low:
            return 0.5
        if self.integer:
            low, high = int(self.low), int(self.high)
            if self.log:
                return (math.log(value + 0.5) - math.log(low)) / (math.log(high + 1) - math.log(low))
            return (value - low + 0.5) / (high - low + 1)
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high and (not self.integer or value == int(value))


class SearchSpace:
    """An ordered set of :class:`Param`; ``decode`` and ``encode`` convert unit vectors."""

    def __init__(self, params: Iterable[Param]) -> None:
        self._params = tuple(params)
        # Set by default_space: the [space] table it was built from, so that a study of another
        # model builds that model's default space from the same table (space_for_model).
        self._overrides: dict[str, dict[str, Any]] | None = None
        names = [p.name for p in self._params]
        if not names:
            raise ConfigError("A search space needs at least one parameter; got none.")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"Parameter names must be unique; got duplicates {duplicated}.")

    @property
    def params(self) -> tuple[Param, ...]:
        return self._params

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._params)

    @property
    def dim(self) -> int:
        return len(self._params)

    def __getitem__(self, name: str) -> Param:
        for p in self._params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._params == other._params

    def __hash__(self) -> int:
        return hash(self._params)

    def __repr__(self) -> str:
        return f"SearchSpace({list(self._params)!r})"

    def decode(self, u: Sequence[float]) -> dict[str, float | int]:
        """Unit vector -> ``{name: value}``. An optimizer's proposal that is not ``dim`` finite
        numbers (a user's optimizer: hpo_lstm.optimizers) is refused in one line."""
        try:
            values = [float(x) for x in u]
        except (TypeError, ValueError):
            values = None
        if values is None or len(values) != self.dim or not all(math.isfinite(v) for v in values):
            raise ConfigError(
                f"The optimizer proposed {u!r}; a candidate must be {self.dim} finite numbers, one for each of "
                f"{', '.join(self.names)} (in [0, 1]: a number outside is clipped to it)."
            )
        return {p.name: p.decode(x) for p, x in zip(self._params, values)}

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """``{name: value}`` -> unit vector."""
        return np.array([p.encode(params[p.name]) for p in self._params], dtype=float)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {p.name: {"low": p.low, "high": p.high, "log": p.log, "integer": p.integer} for p in self._params}


@dataclass(frozen=True)
class _ParamRule:
    integer: bool
    minimum: float
    minimum_inclusive: bool
    maximum: float | None
    default: tuple[float, float, bool] | None  # searched by default: (low, high, log)


# Sizes are capped where a saved model's card is (hpo_lstm._card_check): a study must not train
# what it could not save; layers at 64, far past any use, so that a typo does not hang a study.
MAX_SIZE = 65_536
MAX_LAYERS = 64
# The parameters a forecaster understands; anything else in a study's space is refused. Those
# of one model only (hpo_lstm.models: ModelSpec.params) are searched by default for that model
# and refused for the others.
MODEL_PARAMS: dict[str, _ParamRule] = {
    "learning_rate": _ParamRule(False, 0.0, False, None, (1e-4, 1e-1, True)),
    # Log scale: 8 -> 16 matters as much as 128 -> 256, and it halves the mean training cost.
    "hidden_size": _ParamRule(True, 1, True, MAX_SIZE, (8, 256, True)),
    "n_layers": _ParamRule(True, 1, True, MAX_LAYERS, (1, 4, False)),
    "dropout": _ParamRule(False, 0.0, True, 0.95, None),
    "lookback": _ParamRule(True, 1, True, MAX_SIZE, None),
    "batch_size": _ParamRule(True, 1, True, MAX_SIZE, None),
    # cnn-lstm: filters of the convolution (log, as the hidden size) and their width in steps.
    "channels": _ParamRule(True, 1, True, MAX_SIZE, (8, 64, True)),
    "kernel_size": _ParamRule(True, 1, True, MAX_SIZE, (2, 7, False)),
    # attention-lstm: self-attention heads (the width is rounded up to a multiple of them).
    "heads": _ParamRule(True, 1, True, 16, (1, 4, False)),
}


def _user_rule(name: str, model: str | None) -> _ParamRule | None:
    """The rule of a user model's own parameter ``name`` (hpo_lstm.models._user): searched by
    default within its declared ``search`` bounds, an integer when its value and bounds are."""
    if model is None or ":" not in model:
        return None
    from hpo_lstm.models import registry

    spec = registry[model]
    if name not in spec.params:
        return None
    bounds = spec.search.get(name)
    values = [spec.params[name], *((bounds or {}).get(k) for k in ("low", "high"))]
    integer = all(isinstance(v, int) and not isinstance(v, bool) for v in values if v is not None)
    default = (bounds["low"], bounds["high"], bool(bounds.get("log", False))) if bounds else None
    return _ParamRule(integer, float("-inf"), True, None, default)


def _model_param(name: str, spec: Mapping[str, Any], *, model: str | None = None) -> Param:
    rule = _user_rule(name, model) if name not in MODEL_PARAMS else None
    if name not in MODEL_PARAMS and rule is None:
        raise ConfigError(
            f"Unknown search parameter '{name}'; choose from {', '.join(sorted(MODEL_PARAMS))}"
            + (f", or model '{model}''s own" if model and ":" in model else "")
            + "."
        )
    unknown = sorted(set(spec) - {"low", "high", "log"})
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} for search parameter '{name}'; allowed: high, log, low.")
    rule = rule or MODEL_PARAMS[name]
    default = rule.default or (None, None, False)
    low, high, log = spec.get("low", default[0]), spec.get("high", default[1]), spec.get("log", default[2])
    if low is None or high is None:
        raise ConfigError(f"Search parameter '{name}' needs both 'low' and 'high'; got {dict(spec)}.")
    if not isinstance(log, bool):
        raise ConfigError(f"The 'log' flag of search parameter '{name}' must be true or false; got {log!r}.")
    for bound, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"The '{bound}' bound of search parameter '{name}' must be a number; got {value!r}.")
        too_small = value < rule.minimum if rule.minimum_inclusive else value <= rule.minimum
        if too_small:
            relation = ">=" if rule.minimum_inclusive else ">"
            raise ConfigError(
                f"The '{bound}' bound of search parameter '{name}' must be {relation} {rule.minimum:g}; got {value!r}."
            )
        if rule.maximum is not None and value > rule.maximum:
            raise ConfigError(
                f"The '{bound}' bound of search parameter '{name}' must be <= {rule.maximum:g}; got {value!r}."
            )
    return Param(name=name, low=low, high=high, log=log, integer=rule.integer)


def default_space(overrides: Mapping[str, Mapping[str, Any]] | None = None, *, model: str | None = None) -> SearchSpace:
    """The forecaster space: learning rate (log), hidden size and layers, the own parameters of
    ``model`` (cnn-lstm: channels, kernel_size; attention-lstm: heads), plus any overrides.

    ``overrides`` maps a parameter name to ``{"low": .., "high": .., "log": ..}``; it changes the
    bounds of a default parameter or adds dropout, lookback or batch_size to the search. With
    ``model``, a parameter that only other models take is refused; without it, any known
    parameter is accepted and the model's own ones join later (:func:`space_for_model`).

    A space whose parameters are all fixed (``low == high``: one configuration, such as a
    comparison's untuned cells) gets the model's own parameters fixed at their textbook values
    (``hpo_lstm.models.registry[model].params``), not searched.
    """
    overrides = dict(overrides or {})
    specs: dict[str, Mapping[str, Any]] = {
        name: {} for name, rule in MODEL_PARAMS.items() if rule.default is not None and name not in _own_params()
    }
    user = model is not None and ":" in model
    for name, spec in overrides.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"Search parameter '{name}' must be a table like {{ low = 1, high = 4 }}; got {spec!r}.")
        specs[name] = spec
    params = [_model_param(name, spec, model=model) for name, spec in specs.items()]
    if model is not None:
        from hpo_lstm.models import registry

        own = registry[model].params
        shared = sorted(set(own) & set(MODEL_PARAMS)) if user else []
        if shared:  # (they would replace the searched value in every candidate, silently)
            raise ConfigError(
                f"Model {model!r}: its own `params` {shared} reuse the names of the search's parameters; set their "
                "bounds in the study's [space] instead, or give your own ones other names."
            )
        for param in params:
            owners = _own_params().get(param.name)
            if owners and model not in owners:
                raise ConfigError(
                    f"Search parameter '{param.name}' is taken by {', '.join(owners)} only, not by model "
                    f"'{model}'; remove it from the space."
                )
        fixed = all(p.low == p.high for p in params)
        for name, value in own.items():
            if name not in specs:
                searched = not fixed and (not user or name in registry[model].search)
                params.append(
                    _model_param(name, {} if searched else {"low": value, "high": value, "log": False}, model=model)
                )
    space = SearchSpace(params)
    space._overrides = {name: dict(spec) for name, spec in overrides.items()}
    return space


def season_lookback(season: int | None, train_rows: int) -> tuple[int, int] | None:
    """The default bounds of a searched lookback for a series of season ``season`` whose
    (first fold's) training split has ``train_rows`` rows; None without a season.

    * high: ``min(2 * season, season + 24, 168)``, and at least 24: a window reaches one season
      back (the value a seasonal forecast starts from) and a little more; short seasons get two,
      and never less than the fixed default of 24. Capped at 168 (one week of hourly data):
      seasons over 168 (the 336 half-hours of a week) are not reached.
    * low: ``max(2, min(season, 24) // 2)``: half a season, for short-memory series.
    * Both at most a quarter of the training rows, so that short series keep their windows.

    Weekly 52 -> 12..76, monthly 12 -> 6..24, business-daily 5 -> 2..24, hourly 24 -> 12..48,
    half-hourly 48 -> 12..72.
    """
    if season is None:
        return None
    high = max(DEFAULT_LOOKBACK, min(2 * season, season + 24, MAX_SEASON_LOOKBACK))
    low = max(2, min(season, DEFAULT_LOOKBACK) // 2)
    high = min(high, max(1, train_rows // 4))
    return min(low, high), high


def space_for_model(space: SearchSpace, model: str) -> SearchSpace:
    """``space`` as a study of ``model`` searches it.

    A space :func:`default_space` built is built again for ``model`` from the same overrides
    (adding the model's own parameters); any other space is kept as it is, once checked that
    it searches no parameter that only other models take."""
    overrides = getattr(space, "_overrides", None)  # absent from a space pickled by an older hpo-lstm
    if overrides is not None:
        return default_space(overrides, model=model)
    for param in space.params:
        owners = _own_params().get(param.name)
        if owners and model not in owners:
            raise ConfigError(
                f"Search parameter '{param.name}' is taken by {', '.join(owners)} only, not by model "
                f"'{model}'; remove it from the space."
            )
    return space


def _own_params() -> dict[str, tuple[str, ...]]:
    """Model-specific parameter name -> the models that take it (hpo_lstm.models, torch-free)."""
    from hpo_lstm.models import registry

    return registry.own_params()
