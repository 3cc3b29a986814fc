"""StudyConfig: every setting of a study, frozen and validated; study files (TOML) and overrides.

Precedence: built-in defaults < study file < command-line flags.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo_lstm._errors import ConfigError
from hpo_lstm.models import registry as model_registry
from hpo_lstm.space import DEFAULT_LOOKBACK, SearchSpace, default_space, space_for_model

__all__ = ["LR_SCHEDULES", "MODELS", "StudyConfig", "load_study_file", "read_toml"]

# Forecaster name -> its ModelSpec (hpo_lstm.models): free of torch, so that the CLI can
# validate a model name without importing torch.
MODELS = model_registry

# constant: Adam's learning rate throughout; plateau: halved when validation RMSE stalls
# (torch's ReduceLROnPlateau, hpo_lstm.training).
LR_SCHEDULES = ("constant", "plateau")

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
_PRECISIONS = ("auto", "fp32", "bf16")  # hpo_lstm.training.PRECISIONS, without importing torch here


DIRECT_STEPS = "steps 1..horizon, one output each"


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """All settings of one study. Validated on construction; use ``replace`` to derive."""

    name: str | None = None
    optimizer: str = "woa"
    optimizer_options: Mapping[str, Any] = field(default_factory=dict)
    pop_size: int = 8
    model: str = "lstm"
    data: str = "co2"
    target: str | None = None
    features: tuple[str, ...] | None = None
    time_column: str | None = None
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    # None: from the data (for_data): searched within bounds that reach the season when the
    # space is the default one and a season is known (hpo_lstm.space.season_lookback), else 24.
    lookback: int | None = None
    horizon: int = 1
    transform: str = "diff"
    budget: int = 24
    seed: int = 0
    max_epochs: int = 30
    patience: int = 5
    batch_size: int = 64
    dropout: float = 0.0
    pruning: str = "median"
    lr_schedule: str = "constant"
    folds: int = 1  # rolling-origin validation folds (hpo_lstm.data._folds)
    timeout: float | None = None  # seconds: no new batch starts after them (not part of the identity)
    device: str = "auto"
    # Training arithmetic (hpo_lstm.training.PRECISIONS): how, not what, like the device, so
    # not part of the identity; the resolved value is recorded in the study's summary.
    precision: str = "auto"
    space: SearchSpace = field(default_factory=default_space)
    storage: str | None = None
    out: str = "results"
    # Statistical baselines (hpo_lstm.baselines): neither changes the search, so neither is part
    # of identity(). season None: inferred from the time column (hpo_lstm.data.infer_seasonality).
    season: int | None = None
    baseline_timeout: float = 120.0  # seconds of CPU time each of AutoETS and AutoARIMA may take to fit and forecast
    # Calendar features of the time column as extra inputs (hpo_lstm.data._calendar). None: on
    # when the time stamps give any (for_data decides).
    calendar: bool | None = None
    # The final forecast (hpo_lstm.ensemble): "combination", the mean of the best top_k networks,
    # AutoETS and AutoARIMA weighted by inverse validation MSE; "auto" the candidate with the
    # lowest validation RMSE; "best" the best network alone. top_k: how many trained candidates
    # keep their weights for that.
    final: str = "combination"  # hpo_lstm.ensemble.DEFAULT_FINAL
    top_k: int = 5

    def __post_init__(self) -> None:
        from hpo_lstm.data import check_data_name, check_season_transform, check_transform
        from hpo_lstm.ensemble import FINAL_RULES
        from hpo_lstm.pruning import PRUNING_MODES

        if not isinstance(self.final, str) or self.final not in FINAL_RULES:
            raise ConfigError(f"final must be one of {', '.join(FINAL_RULES)}; got {self.final!r}.")
        for name in ("pop_size", "horizon", "budget", "max_epochs", "patience", "batch_size", "folds", "top_k"):
            _require_int(name, getattr(self, name), minimum=1, maximum=_MAXIMA.get(name))
        if self.lookback is not None:
            _require_int("lookback", self.lookback, minimum=1, maximum=_MAXIMA["lookback"])
        for key in ("target", "time_column"):  # a DataFrame's integer column name (target=0) is a name too
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
                raise ConfigError(f"Setting '{key}' must be one column name; got {value!r}.")
        if self.features is not None:
            object.__setattr__(self, "features", _as_names("features", self.features))
        if self.calendar is not None and not isinstance(self.calendar, bool):
            raise ConfigError(f"calendar must be true or false; got {self.calendar!r}.")
        from hpo_lstm.data import MAX_FOLDS

        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, (int, float))
            or not math.isfinite(self.timeout)
            or self.timeout <= 0
        ):
            raise ConfigError(f"timeout must be a positive number of seconds; got {self.timeout!r}.")

        if self.folds > MAX_FOLDS:
            raise ConfigError(f"folds must be an integer from 1 to {MAX_FOLDS}; got {self.folds!r}.")
        if self.top_k > 100:
            raise ConfigError(
                f"top_k must be an integer from 1 to 100 (each keeps a trained model); got {self.top_k!r}."
            )
        if self.season is not None:
            _require_int("season", self.season, minimum=1)
            check_season_transform(self.transform, self.season, self.horizon)  # else when the data gives one
        if (
            isinstance(self.baseline_timeout, bool)
            or not isinstance(self.baseline_timeout, (int, float))
            or not 0 < self.baseline_timeout < math.inf
        ):
            raise ConfigError(f"baseline_timeout must be a positive number of seconds; got {self.baseline_timeout!r}.")
        from hpo_lstm.optimizers import Optimizer  # numpy only: mealpy and optuna load on first use

        Optimizer.check_seed(self.seed)  # the optimizers own the rule (Optuna's samplers take 32 bits)
        if not isinstance(self.model, str):
            raise ConfigError(f"Setting 'model' must be a string; got {self.model!r}.")
        MODELS[self.model]  # a built-in name, or module:Class imported and checked (hpo_lstm.models._user)
        # The model's own parameters join a default space; those of other models are refused.
        object.__setattr__(self, "space", space_for_model(self.space, self.model))
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"Unknown `lr_schedule` {self.lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}.")
        check_transform(self.transform)
        if self.pruning not in PRUNING_MODES:
            raise ConfigError(f"Unknown pruning mode {self.pruning!r}; choose from {', '.join(PRUNING_MODES)}.")
        if not _DEVICE.match(str(self.device)):
            raise ConfigError(f"Unknown device {self.device!r}; use auto, cpu, cuda, cuda:N or mps.")
        if self.precision not in _PRECISIONS:
            raise ConfigError(f"Unknown `precision` {self.precision!r}; choose from {', '.join(_PRECISIONS)}.")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {self.dropout!r}.")
        if len(self.split) != 3 or any(not isinstance(s, (int, float)) or s <= 0 for s in self.split):
            raise ConfigError(f"split must be three positive fractions (train, val, test); got {self.split!r}.")
        if not math.isclose(sum(self.split), 1.0, abs_tol=1e-6):
            raise ConfigError(f"split fractions must sum to 1; got {self.split!r} (sum {sum(self.split):g}).")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ConfigError(
                f"Study name {self.name!r} must start with a letter or digit and use only letters, digits, '.', '_', '-'."
            )
        check_data_name(self.data)
        optimizer = self.make_optimizer()  # validates the name and the options (mealpy's rules too)
        if self.budget < optimizer.min_budget:
            raise ConfigError(
                f"budget must be at least one population (pop_size={self.pop_size}) for optimizer "
                f"'{self.optimizer}'; got budget={self.budget}."
            )
        optimizer.check_budget(self.budget)  # and at most what it can spend (mealpy's generation limit)
        optimizer.check_search(self.space, self.budget)  # mealpy:<Class>: a trial run with this space's size
        if "lookback" in self.space and self.space["lookback"].low < 1:
            raise ConfigError(f"A searched lookback must be >= 1; got low={self.space['lookback'].low}.")

    # Derived values ---------------------------------------------------------------------------

    @property
    def study_name(self) -> str:
        """The given name, or one made from the data, model, optimizer and seed."""
        if self.name:
            return self.name
        data = self.data_name
        data = Path(data).stem if data.lower().endswith(".csv") else data
        # (mealpy:X, my_model:TinyNet: no ':' in folder names; a module path's dots stay)
        return f"{data}-{self.model.replace(':', '-')}-{self.optimizer.replace(':', '-')}-seed{self.seed}"

    @property
    def data_name(self) -> str:
        """``data`` as text: the name or path given, or "frame" for a pandas DataFrame (whose
        content is in the study's data fingerprint, not in its settings)."""
        from hpo_lstm.data import FRAME_NAME, is_frame

        return FRAME_NAME if is_frame(self.data) else self.data

    @property
    def storage_url(self) -> str:
        """The given storage (flag or study file), else ``HPO_LSTM_STORAGE``, else an SQLite file
        in the output folder. An in-memory database is refused: its studies would be lost."""
        from hpo_lstm._urls import ENV_VAR, check_persistent, env_storage

        if self.storage:
            return check_persistent(self.storage)
        if env_storage() is not None:
            return check_persistent(env_storage(), source=ENV_VAR)
        return f"sqlite:///{Path(self.out) / 'hpo-lstm.db'}"

    @property
    def window_lookback(self) -> int:
        """Lookback the windows are built with: the longest one a candidate may ask for."""
        return int(self.space["lookback"].high) if "lookback" in self.space else self.fixed_lookback

    @property
    def fixed_lookback(self) -> int:
        """The lookback of every candidate when it is not searched (24 when not set)."""
        return self.lookback if self.lookback is not None else DEFAULT_LOOKBACK

    def for_data(self, times: Any, n_points: int) -> StudyConfig:
        """These settings once the data is known: ``times`` (the series' time stamps, or None)
        and ``n_points`` rows. What is left to the data is decided here, and the result is what
        the study records (its ``identity()``), so a study on other data is not resumed:

        * ``lookback`` not set: searched within :func:`hpo_lstm.space.season_lookback`'s bounds
          when the space is the default one (no ``space`` table given) and the season (set, or
          inferred from the time stamps) is known; else fixed at 24, as before.
        * ``calendar`` not set: on when the time stamps give calendar features
          (:func:`hpo_lstm.data.calendar_features`); ``calendar = true`` without any is refused.

        Applying it again changes nothing."""
        from hpo_lstm.data import calendar_features, fold_rows, resolve_season
        from hpo_lstm.space import season_lookback

        changes: dict[str, Any] = {}
        if self.lookback is None:
            changes["lookback"] = DEFAULT_LOOKBACK
            overrides = self.space._overrides  # {} for the default space; None for one built by hand
            if overrides is not None and not overrides and "lookback" not in self.space:
                season = resolve_season(self.season, times)["season"]
                first_train_rows = fold_rows(n_points, self.split, self.folds)[0][0]
                bounds = season_lookback(season, first_train_rows)
                if bounds is not None:
                    changes["space"] = default_space({"lookback": {"low": bounds[0], "high": bounds[1]}})
        features = calendar_features(times)
        if self.calendar is None:
            changes["calendar"] = bool(features)
        elif self.calendar and not features:
            raise ConfigError(
                "calendar = true needs time stamps with a step of at most a quarter (sub-daily to quarterly); "
                f"the data has {'none' if times is None else 'none that give calendar features'}. Use --no-calendar."
            )
        return self.replace(**changes) if changes else self

    def make_optimizer(self) -> Any:
        from hpo_lstm.optimizers import registry

        try:
            return registry[self.optimizer](pop_size=self.pop_size, **dict(self.optimizer_options))
        except TypeError as exc:  # an option the optimizer's constructor does not take
            import inspect

            parameters = inspect.signature(registry[self.optimizer]).parameters
            takes = [
                name
                for name, p in parameters.items()
                if name != "pop_size" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            unknown = sorted(set(self.optimizer_options) - set(takes))
            if unknown and not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
                raise ConfigError(
                    f"Optimizer '{self.optimizer}' takes no option {unknown[0]!r}; its options: "
                    f"{', '.join(takes) if takes else 'none (pop_size aside)'}."
                ) from None
            raise ConfigError(f"Invalid option for optimizer '{self.optimizer}': {exc}.") from None

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)

    def identity(self) -> dict[str, Any]:
        """The settings that decide which candidates are proposed and what they score.

        A stored study is only resumed by a config with the same identity. The budget is not
        part of it (a study may be extended), nor are the device and output locations.
        """
        keys = (
            "optimizer",
            "pop_size",
            "model",
            "data",
            "target",
            "features",
            "time_column",
            "split",
            "lookback",
            "horizon",
            "transform",
            "seed",
            "max_epochs",
            "patience",
            "batch_size",
            "dropout",
            "pruning",
        )
        identity = {k: _jsonable(getattr(self, k)) for k in keys}
        identity["data"] = self.data_name
        identity["lookback"] = self.fixed_lookback  # before for_data: 24, the value studies always recorded
        identity["optimizer_options"] = {k: _jsonable(v) for k, v in sorted(dict(self.optimizer_options).items())}
        identity["space"] = self.space.to_dict()
        if self.horizon > 1:
            # Before hpo-lstm 0.2, --horizon H meant one value H steps ahead; now steps 1..H. A
            # study recorded with the old meaning must not be replayed under the new one.
            identity["targets"] = DIRECT_STEPS
        if self.lr_schedule != "constant":  # absent when constant: studies recorded before it keep their identity
            identity["lr_schedule"] = self.lr_schedule
        if self.folds > 1:  # absent for one fold: studies recorded before --folds keep their identity
            identity["folds"] = self.folds
        if self.calendar:  # absent without calendar features: studies recorded before them keep their identity
            identity["calendar"] = True
        if self.transform == "sdiff":  # the season is the transform's lag (None: the data's, by its fingerprint)
            identity["season"] = self.season
        if self.final != "combination":  # absent for the default: studies recorded before --final keep their identity
            identity["final"] = self.final
        if self.top_k != 5:  # (hpo_lstm.ensemble.DEFAULT_TOP_K)
            identity["top_k"] = self.top_k
        from hpo_lstm.optimizers import optimizer_implementation

        implementation = optimizer_implementation(self.optimizer)
        if implementation is not None:  # "mealpy-lts 3.0.4.1": another mealpy may propose other candidates
            identity["optimizer_impl"] = implementation
        return identity

    def to_dict(self) -> dict[str, Any]:
        out = self.identity()
        from hpo_lstm._urls import mask_url  # recorded and written: never a password (hpo_lstm._urls)

        out.update(
            name=self.study_name,
            budget=self.budget,
            device=self.device,
            precision=self.precision,
            storage=mask_url(self.storage_url),
            out=self.out,
            season=self.season,
            baseline_timeout=self.baseline_timeout,
            calendar=self.calendar,
        )
        return out

    # Construction -----------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path | None = None, **overrides: Any) -> StudyConfig:
        """A study file (TOML) merged with ``overrides``, which win.

        Parameters
        ----------
        path:
            A study file such as ``studies/woa_bilstm_co2.toml``, or None for the defaults.
        **overrides:
            Settings by name (``budget=40``, ``model="bilstm"``, ``space={...}``); the same
            names as the file's keys and the CLI's long flags with ``_``.

        Returns
        -------
        StudyConfig
            Validated; a bad value raises :class:`~hpo_lstm.ConfigError` naming it and the rule.
        """
        values: dict[str, Any] = dict(load_study_file(path)) if path is not None else {}
        values.update(overrides)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: StudyConfig | None = None) -> StudyConfig:
        """Build from plain values (a study file's or the CLI's); unknown keys are refused."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"Unknown setting(s) {unknown}; valid settings: {', '.join(sorted(fields))}.")
        kwargs = dict(values)
        if "space" in kwargs and not isinstance(kwargs["space"], SearchSpace):
            # A user's model (module:Class) names its own parameters: its bounds are read with it.
            model = kwargs.get("model")
            user_model = model if isinstance(model, str) and ":" in model else None
            kwargs["space"] = default_space(_require_table("space", kwargs["space"]), model=user_model)
        if "optimizer_options" in kwargs:
            kwargs["optimizer_options"] = dict(_require_table("optimizer_options", kwargs["optimizer_options"]))
        if "split" in kwargs:
            kwargs["split"] = _as_split(kwargs["split"])
        for key in (
            "name",
            "optimizer",
            "model",
            "target",
            "time_column",
            "transform",
            "pruning",
            "device",
            "precision",
            "storage",
            "out",
            "lr_schedule",
            "final",
        ):  # (data: a name, a path or a DataFrame)
            if key in kwargs and kwargs[key] is not None and not isinstance(kwargs[key], str):
                raise ConfigError(f"Setting '{key}' must be a string; got {kwargs[key]!r}.")
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a study file (TOML, with ``tomllib``: no code runs); errors name the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"Study file {str(path)!r} does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read study file {str(path)!r}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 text
        raise ConfigError(
            f"Study file {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start}); "
            "TOML files are UTF-8."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Study file {str(path)!r} is not valid TOML: {exc}.") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(
            f"Study file {str(path)!r} nests arrays or tables too deeply for the TOML parser (hundreds of levels); "
            "a study file needs two or three."
        ) from None


def load_study_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML study file into plain values for :meth:`StudyConfig.from_mapping`."""
    values = read_toml(path)
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    unknown = sorted(set(values) - fields)
    if unknown and {"models", "optimizers", "seeds"} & set(unknown):
        raise ConfigError(
            f"{str(path)!r} is a comparison file (it sets {unknown}); run it with: hpo-lstm compare {path}"
        )
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {unknown} in study file {str(path)!r}; valid keys: {', '.join(sorted(fields))}."
        )
    return values


# Largest values that still make sense, so that a typo (a TOML budget of 2**70) is refused in
# one line instead of running until killed. The optimizers bound the budget further by what
# they can spend (mealpy's generations).
_MAXIMA = {
    "budget": 1_000_000,
    "pop_size": 10_000,
    "max_epochs": 100_000,
    "patience": 100_000,
    "batch_size": 1_000_000,
    "horizon": 10_000,
    "lookback": 100_000,
    "folds": None,
    "top_k": None,
}


def _require_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be an integer from {minimum} to {maximum:,}; got {value:,}.")


def _require_table(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"Setting '{name}' must be a table; got {value!r}.")
    return value


def _as_names(name: str, value: Any) -> tuple[Any, ...]:
    """Column names: a list, or one text of names separated by commas (as the flag takes them); a
    DataFrame's integer column names (features=[1]) stay names."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(
        (isinstance(i, str) and i.strip()) or (isinstance(i, int) and not isinstance(i, bool)) for i in items
    ):
        raise ConfigError(f"Setting '{name}' must be a list of column names; got {value!r}.")
    return tuple(i.strip() if isinstance(i, str) else i for i in items)


def _as_split(value: Any) -> tuple[float, float, float]:
    items = value.split(",") if isinstance(value, str) else value
    try:
        fractions = tuple(float(i) for i in items)
    except (TypeError, ValueError):
        raise ConfigError(f"split must be three fractions like 0.7,0.15,0.15; got {value!r}.") from None
    if len(fractions) != 3:
        raise ConfigError(f"split must be three fractions like 0.7,0.15,0.15; got {value!r}.")
    return fractions  # type: ignore[return-value]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value
