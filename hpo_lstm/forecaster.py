"""Forecasting with a study's saved model: ``load_forecaster(...)`` -> :class:`Forecaster`.

A finished study saves its final model twice: as files in the run's folder (``model/model.json``
and ``model/weights.safetensors``) and in its storage (the card as the study attribute
``hpo_lstm_model``, the weights as an artifact of the trial the card names); see
:mod:`hpo_lstm.store.model_store`. Either loads here, without unpickling anything (JSON and
safetensors only) and without writing anything: SQLite storages are opened read-only.

The network and the rules it was trained under come from the card: columns, lookback, the
input transform (``diff``, ``logdiff``, ``level`` or ``sdiff`` with its season), the calendar features it
reads (built again from the time stamps, past the data too) and the scalers fitted on the
training rows. New data
is scaled with the same function training used (:func:`hpo_lstm.data._windows.scale_inputs`),
so a reloaded model reproduces the study's own predictions.

torch is imported only when a model is built, so ``import hpo_lstm`` stays light.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo_lstm._errors import ConfigError, DataError
from hpo_lstm.baselines import LABELS, forecast_from_state, forecasts_from_state, state_min_rows
from hpo_lstm.data import zone_times
from hpo_lstm.store.model_store import META_FILE, ModelFileError, shorter_than_a_day, time_step

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LEVELS", "MAX_STEPS", "Forecaster", "check_steps", "load_forecaster"]

LEVELS = ("80", "95")  # interval levels a card holds, in percent
# The longest forecast: a year of hourly steps ten times over; recursive steps take about a
# millisecond each on a CPU, so this bound keeps a typo from running for hours.
MAX_STEPS = 100_000


class Forecaster:
    """A study's final model, ready to forecast.

    ``card`` is the model card (``model.json``, documented in
    :func:`hpo_lstm.store.model_store.model_card`); ``source`` says where it was loaded from.

    * :meth:`forecast` continues a series past its last observation: steps 1..H (the model's
      horizon) come from the model directly; past H it forecasts recursively, feeding its own
      forecasts back as the target's newest values. **Other input features** (multivariate
      models) are unknown beyond the data, so they are held at their last observed value;
      calendar features are computed from the continued time stamps.
      Interval half-widths are the card's split-conformal ones (from validation residuals)
      for steps 1..H; past H the step-H half-width grows as ``sqrt(k / H)`` at step k: an
      approximation whose coverage nobody has checked.
    * :meth:`predict` gives the model's prediction for every window of a frame (a backtest).

    Inference runs on the CPU with one torch thread, as the study scored its final model; on
    the same machine it reproduces the study's predictions of the same windows bit for bit.
    """

    def __init__(
        self, card: Mapping[str, Any], weights: Mapping[str, np.ndarray], *, source: str, trust_model_code: bool = False
    ) -> None:
        from hpo_lstm._card_check import check_card, check_weights

        check_card(card, source)  # untrusted input: every field, before anything is built
        check_weights(card, weights, source)
        if ":" in card["model"] and not trust_model_code:  # a user's model: loading it imports (runs) its code
            raise ModelFileError(
                f"The model in {source} is your own code, {card['model']!r}; loading it imports and runs that code. "
                "If you trust it, pass --trust-model-code (trust_model_code=True)."
            )
        self.card: dict[str, Any] = dict(card)
        self.source = source
        from hpo_lstm.training import model_from_weights

        self.features: tuple[str, ...] = tuple(self.card["features"])
        self.target: str = self.card["target"]
        self.lookback = int(self.card["lookback"])
        self.horizon = int(self.card["horizon"])
        self.transform: str = self.card["transform"]
        self.calendar: tuple[str, ...] = tuple(self.card.get("calendar") or ())  # absent from older cards
        self.season: int | None = self.card.get("season")  # the lag of transform sdiff
        self._input_mean = np.asarray(self.card["input_mean"], dtype=float)
        self._input_scale = np.asarray(self.card["input_scale"], dtype=float)
        self._target_mean = np.asarray(self.card["target_mean"], dtype=float)
        self._target_scale = np.asarray(self.card["target_scale"], dtype=float)
        self._history_values = np.asarray(self.card["history"]["values"], dtype=float)
        # The final forecast's members (hpo_lstm.ensemble): networks, each with its own lookback
        # within the card's, and statistical models; one network with weight 1 for a card of the
        # best network alone (and every card written before combinations).
        from hpo_lstm.store.model_store import split_member_weights

        by_member = split_member_weights(weights)
        final = self.card.get("final_forecast") or {}
        listed = final.get("members") or [{"name": "network_1", "weight": 1.0}]
        self.final_kind: str = final.get("kind", "best")
        self.weights: dict[str, float] = {m["name"]: float(m["weight"]) for m in listed}
        n_inputs = len(self.features) + 2 * len(self.calendar)
        self._networks: list[tuple[str, Any, int]] = []
        self._states: dict[str, dict[str, Any]] = {}
        for member in listed:
            name = member["name"]
            if name == "network_1" or "params" in member:
                params = self.card["params"] if name == "network_1" else member["params"]
                model = model_from_weights(
                    self.card["model"],
                    params,
                    by_member.get(name, {}),
                    n_features=n_inputs,
                    device="cpu",
                    horizon=self.horizon,
                )
                self._networks.append((name, model, int(params["lookback"])))
            else:
                self._states[name] = dict(member["state"])
        self._target_history = np.asarray(self.card.get("target_history") or (), dtype=float)
        # What reading the last data given to forecast() found (filled values, a jump in time).
        self.data_notes: list[str] = []

    def __repr__(self) -> str:
        return (
            f"Forecaster({self.card['model']} on {self.target!r}, lookback {self.lookback}, "
            f"horizon {self.horizon}, from {self.source})"
        )

    @property
    def study_name(self) -> str | None:
        return self.card.get("study_name")

    # Forecasting ------------------------------------------------------------------------------

    def forecast(self, steps: int, data: Any = None) -> pd.DataFrame:
        """``steps`` forecasts past the last observation of the study's data (the card's
        history), or of ``data``: a CSV path, a built-in dataset name, or a DataFrame holding
        the study's columns (the target and every feature; its time column named as the card's
        ``time_column`` or found by :func:`hpo_lstm.data.load_series`' rules, or a
        DatetimeIndex), at least ``lookback + 1`` rows.

        Returns a DataFrame with columns ``time, forecast, lower_80, upper_80, lower_95,
        upper_95``. Time stamps continue the series' frequency (the data's own when it has a
        regular one, else the card's ``time.freq``, else its step in seconds); a series without
        time stamps continues its row numbers. See the class docstring for the recursion past
        the horizon, the held features and the intervals."""
        import pandas as pd

        steps = check_steps(steps)
        values, times, time_info = self._history(data)
        H, target = self.horizon, self.features.index(self.target)
        rows = values.copy()
        row_times = None
        total = -(-steps // H) * H
        future = _future_times(times, time_info, total)  # first: it refuses steps past pandas' last date
        if self.calendar:  # the calendar of the rows forecast too
            if times is None:
                raise DataError(
                    f"This model reads calendar features {list(self.calendar)}; the data needs its time column."
                )
            row_times = np.concatenate(
                [np.asarray(times, dtype="datetime64[ns]"), np.asarray(future, dtype="datetime64[ns]")]
            )
        y = self._target_series(values, data)
        self._check_enough_for_members(len(y))
        statistical = {name: forecast_from_state(state, y, total) for name, state in self._states.items()}
        levels: list[float] = []
        while len(levels) < steps:
            now = None if row_times is None else row_times[: len(rows)]
            window = self._window(rows, now)
            base = self._base(rows[:, target], len(rows) - 1)[None]
            members = {
                name: self._levels(self._outputs(model, window[-lookback:][None]), base)[0]
                for name, model, lookback in self._networks
            }
            members.update({name: f[len(levels) : len(levels) + H] for name, f in statistical.items()})
            block = self._combine(members)
            if self.transform == "logdiff" and len(levels) + H < steps and np.any(block <= 0):
                step = len(levels) + 1 + int(np.argmax(block <= 0))
                raise DataError(
                    f"The forecast reaches {float(block[step - len(levels) - 1]):g} at step {step}, at or below "
                    f"zero, and this model's transform logdiff cannot read it back to forecast further (its "
                    f"statistical members go below zero); forecast at most {len(levels) + H} step(s), or train with "
                    "--transform diff or --final best."
                )
            new = np.repeat(rows[-1:], H, axis=0)  # other features held at their last value
            new[:, target] = block
            rows = np.vstack([rows, new])
            levels.extend(float(v) for v in block)
        forecast = np.asarray(levels[:steps])
        future = future[:steps]
        if times is not None:  # written in the zone the data's stamps were written in (held in UTC)
            future = zone_times(future, time_info.get("zone"))
        frame = pd.DataFrame({"time": future, "forecast": forecast})
        for level in LEVELS:
            half = self.halfwidths(level, steps)
            frame[f"lower_{level}"], frame[f"upper_{level}"] = forecast - half, forecast + half
        return frame[["time", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"]]

    def halfwidths(self, level: str, steps: int) -> np.ndarray:
        """Interval half-widths at ``level`` ("80" or "95") for steps 1..``steps``: the card's
        conformal half-widths for steps 1..H, then ``halfwidth[H] * sqrt(k / H)`` (approximate)."""
        if level not in LEVELS:
            raise ConfigError(f"Interval level must be one of {', '.join(map(repr, LEVELS))}; got {level!r}.")
        steps = check_steps(steps)
        card = np.asarray(self.card["intervals"][level], dtype=float)
        k = np.arange(1, steps + 1)
        grown = card[-1] * np.sqrt(k / self.horizon)
        return np.where(k <= self.horizon, card[np.minimum(k, self.horizon) - 1], grown)

    def predict(self, frame: Any) -> pd.DataFrame:
        """The model's predictions for every window of ``frame`` (a DataFrame with the study's
        columns, a CSV path or a built-in dataset name) whose forecast steps 1..H all lie inside
        it. Laid out as predictions.csv: one row per window and step (window-major), ``time``
        (the time or row number the forecast is for), ``step``, ``predicted`` (the final
        forecast), then each member of the final forecast when it has more than the best network
        (``network_1`` .. and the statistical models, as predictions.csv names them). For the
        study's own data these are the study's predictions (predictions.csv holds the test
        split's): the networks' bit for bit, the statistical models' to about 1e-15 (they run in
        this process, whose BLAS kernels the study's fit processes had pinned)."""
        import pandas as pd

        series = self._series(frame)
        values = series.values
        self._check_domain(values)
        self._check_step(series)  # as forecast() does
        lag = self._lag
        first = self.lookback - 1 + lag  # the last input row of window 0
        ends = np.arange(first, len(values) - self.horizon)
        if not len(ends):
            extra = {0: "", 1: " + 1"}.get(lag, f" + season {lag}")
            raise DataError(
                f"The data has {len(values)} rows; a prediction needs at least {first + 1 + self.horizon} "
                f"(lookback {self.lookback}{extra}, then horizon {self.horizon})."
            )
        target = values[:, self.features.index(self.target)]
        if self._states:  # windows whose history is too short for a statistical member are left out
            y, offset = self._aligned_target(target)
            needs = {name: state_min_rows(s, one_pass=self.horizon == 1) for name, s in self._states.items()}
            ends = ends[ends + offset + 1 >= max(needs.values())]
            if not len(ends):
                self._check_enough_for_members(len(values) - self.horizon + offset, needs)
        scaled = self._scale(values, series.times)
        base = self._base(target, ends)
        members = {}
        for name, model, lookback in self._networks:
            windows = np.lib.stride_tricks.sliding_window_view(scaled, lookback, axis=0)  # (n - L + 1, F, L)
            x = np.ascontiguousarray(windows[ends - lookback + 1].transpose(0, 2, 1))
            members[name] = self._levels(self._outputs(model, x), base)
        if self._states:
            members.update(
                {
                    name: forecasts_from_state(state, y, ends + offset, self.horizon)
                    for name, state in self._states.items()
                }
            )
        predicted = self._combine(members)
        rows = ends[:, None] + np.arange(1, self.horizon + 1)[None, :]  # (n_windows, H) rows forecast
        times = zone_times(series.times[rows].ravel(), series.time_zone) if series.times is not None else rows.ravel()
        steps = np.tile(np.arange(1, self.horizon + 1), len(ends))
        frame = {"time": times, "step": steps, "predicted": predicted.ravel()}
        if len(self.weights) > 1 or self._states:
            frame.update({name: np.asarray(f).ravel() for name, f in members.items() if name in self.weights})
        return pd.DataFrame(frame)

    def read_data(self, data: Any) -> Any:
        """``data`` (a CSV path, a built-in dataset name or a DataFrame) read with the study's
        columns, as :class:`hpo_lstm.data.Series`: pass it to :meth:`forecast`, :meth:`recent`
        or :meth:`predict` as ``data`` to read a file once for several calls. Refused in one line
        (:class:`~hpo_lstm.DataError`) when a column is missing or the file does not exist."""
        return self._series(data)

    def recent(self, points: int, data: Any = None) -> pd.DataFrame:
        """The last ``points`` observations of the target (time, value): of ``data`` when given;
        else of the study's data when it can still be loaded as it was (a built-in dataset, or
        its CSV file, ending with the card's history), else the card's history (lookback + 1
        rows)."""
        import pandas as pd

        if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 1:
            raise ConfigError(f"The number of recent points must be an integer >= 1; got {points!r}.")
        zone = self.card.get("time_zone")
        if data is None:
            values, times = self._study_data()
        else:
            series = self._series(data)
            values, times, zone = series.values, series.times, series.time_zone
        times = np.arange(len(values)) if times is None else zone_times(times, zone)
        return pd.DataFrame({"time": times[-points:], "value": values[-points:, self.features.index(self.target)]})

    # Internals --------------------------------------------------------------------------------

    def _card_times(self) -> np.ndarray:
        """The card's history times: datetime64, or row numbers for a series without time stamps."""
        times = self.card["history"]["time"]
        if isinstance(self.card["time"].get("last"), str):
            return np.asarray(times, dtype="datetime64[ns]")
        return np.asarray(times, dtype=np.int64)

    def _study_data(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The study's whole series when it loads again and ends with the card's history; else
        the card's history."""
        from hpo_lstm._errors import HpoLstmError

        history = self._history_values
        try:
            series = self._series(self.card.get("data"))
        except (HpoLstmError, OSError, ValueError):  # moved, changed or unreadable: the card's history is what is known
            series = None
        if series is not None and len(series.values) >= len(history):
            if np.array_equal(series.values[-len(history) :], history):
                return series.values, series.times
        return history, self._card_times()

    def _history(self, data: Any) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        """Rows to forecast from (raw values, times or None) and how time advances past them."""
        # A card written before time.weekdays_only read its frequency off the UTC stamps ("W-SAT"
        # for Sundays at midnight east of Greenwich): applied on the zone's clock it would land a
        # day early, so such a card's steps continue in UTC, as they did when it was written.
        card_time = {
            **dict(self.card["time"]),
            "zone": self.card.get("time_zone"),
            "clock": "weekdays_only" in self.card["time"],
        }
        self.data_notes = []
        if data is None:
            times = self._card_times()
            return self._history_values, (times if times.dtype.kind == "M" else None), card_time
        series = self._series(data)
        self._check_domain(series.values)
        if len(series.values) < self._rows:
            what = "lookback + 1" if self._lag <= 1 else f"lookback + season {self._lag}"
            raise DataError(
                f"The data has {len(series.values)} rows; forecasting needs at least {what} = {self._rows} rows."
            )
        self._check_step(series)
        self.data_notes = [*series.notes, *self._window_notes(series)]
        if series.times is None:
            return series.values, None, {"freq": None, "step_seconds": None, "last": len(series.values) - 1}
        own = time_step(series.times, series.time_zone)  # the data's own frequency first, then the study's
        return (
            series.values,
            series.times,
            {
                "freq": own["freq"] or card_time.get("freq"),
                "step_seconds": own["step_seconds"] or card_time.get("step_seconds"),
                "last": own["last"],
                "zone": series.time_zone,
                "weekdays_only": own["weekdays_only"],
                "clock": bool(own["freq"]) or not card_time.get("freq") or card_time["clock"],
            },
        )

    def _check_enough_for_members(self, n: int, needs: Mapping[str, int] | None = None) -> None:
        """Refuse, in one line, target values too few for a statistical member to forecast from
        (``n``: those it would read, with the study's series behind data that repeats it;
        ``needs``: each member's :func:`state_min_rows`, by default those of a forecast past the data)."""
        if needs is None:
            needs = {name: state_min_rows(state) for name, state in self._states.items()}
        for name, need in needs.items():
            if n < need:
                raise DataError(
                    f"The data gives {n} target values to this model's {LABELS.get(name, name)} member, which needs "
                    f"at least {need}; give more rows (data that repeats the end of the study's series is read "
                    "behind it)."
                )

    def _check_domain(self, values: np.ndarray) -> None:
        """A logdiff model refuses data whose target reaches zero or below anywhere (its networks
        read the log; its statistical members the whole column), naming the data's row."""
        if self.transform == "logdiff":
            from hpo_lstm.data import check_log_domain

            check_log_domain(values[:, self.features.index(self.target)])

    def _check_step(self, series: Any) -> None:
        """Refuse data whose time step is not the model's (hourly data for a daily model): a
        model forecasts at the step it was trained on, and its time stamps would continue the
        data's step."""
        card_step = (self.card.get("time") or {}).get("step_seconds")
        if series.times is None or not card_step or len(series.times) < 3:
            return
        own = time_step(series.times, series.time_zone)
        if own["step_seconds"] and abs(math.log(own["step_seconds"] / float(card_step))) > math.log(1.25):
            import pandas as pd

            from hpo_lstm.data import step_text

            raise DataError(
                f"The data's time step is {step_text(pd.Timedelta(seconds=own['step_seconds']))}"
                + (f" ({own['freq']!r})" if own["freq"] else "")
                + f"; this model was trained on steps of {step_text(pd.Timedelta(seconds=float(card_step)))}"
                + (f" ({self.card['time']['freq']!r})" if self.card["time"].get("freq") else "")
                + ", and forecasts at that step only. Give data at the model's step."
            )

    def _window_notes(self, series: Any) -> list[str]:
        """A note when the rows a forecast reads (its input window) hold a jump in time: they
        are read as consecutive observations."""
        card_step = (self.card.get("time") or {}).get("step_seconds")
        if series.times is None or not card_step:
            return []
        import pandas as pd

        from hpo_lstm.data import step_text

        window = pd.DatetimeIndex(series.times[-self._rows :])
        steps = np.diff(window.asi8) / 1e9
        long = np.flatnonzero(steps > 1.5 * float(card_step))
        if not len(long):
            return []
        k = long[np.argmax(steps[long])]
        return [
            f"the input window (the last {self._rows} rows, {str(window[0])[:19]} to {str(window[-1])[:19]}) has "
            f"a step of {step_text(pd.Timedelta(seconds=float(steps[k])))} (ending {str(window[k + 1])[:19]}) where "
            f"the model's step is {step_text(pd.Timedelta(seconds=float(card_step)))}: its rows are read as "
            "consecutive observations"
        ]

    def _series(self, data: Any) -> Any:
        """``data`` (CSV path, built-in name, DataFrame) loaded with the study's columns; a
        Series :meth:`read_data` gave, as it is."""
        import pandas as pd

        from hpo_lstm.data import BUILTIN_DATASETS, Series, load_series

        if isinstance(data, Series):
            return data
        target, features, time_column = self.target, list(self.features), self.card.get("time_column")
        if isinstance(data, pd.DataFrame):  # as a study reads one (a DatetimeIndex as its time column)
            return load_series(data, target=target, features=features, time_column=time_column)
        if isinstance(data, (str, Path)):
            text = str(data)
            if text in BUILTIN_DATASETS and not Path(text).is_file():
                series = load_series(text)
                if tuple(series.feature_names) != self.features:
                    raise DataError(
                        f"The built-in dataset {text!r} has columns {list(series.feature_names)}; this model reads "
                        f"{features}."
                    )
                return series
            if not Path(text).is_file():
                raise DataError(f"Data file {text!r} does not exist or is not a file.")
            return load_series(text, target=target, features=features, time_column=time_column)
        raise DataError(f"Give data as a CSV path or a pandas DataFrame; got {type(data).__name__}.")

    @property
    def _lag(self) -> int:
        """Rows a window reads before its first input (hpo_lstm.data.input_lag)."""
        from hpo_lstm.data import input_lag

        return input_lag(self.transform, self.season)

    @property
    def _rows(self) -> int:
        """Rows of history one forecast needs: the card's history."""
        return self.lookback + max(1, self._lag)

    def _scale(self, values: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        from hpo_lstm.data import calendar_values, scale_inputs

        calendar = None
        if self.calendar:
            if times is None:
                raise DataError(
                    f"This model reads calendar features {list(self.calendar)}; the data needs its time column."
                )
            calendar = calendar_values(times, self.calendar)
        return scale_inputs(
            values,
            self.transform,
            self._input_mean,
            self._input_scale,
            season=self.season,
            calendar=calendar,
            target_column=self.features.index(self.target),
        )

    def _window(self, rows: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        """The input (lookback, F) for the window ending at the last of ``rows`` (``times``: their
        time stamps, needed for calendar features); a network of a shorter lookback reads its end."""
        need = self._rows
        return self._scale(rows[-need:], None if times is None else times[-need:])[-self.lookback :]

    def _base(self, target: np.ndarray, ends: Any) -> np.ndarray:
        """What a forecast's change is added to, per window ending at row(s) ``ends`` of the
        target column ``target`` (:func:`hpo_lstm.data.level_base`)."""
        from hpo_lstm.data import level_base

        return level_base(target, ends, self.transform, self.season, self.horizon)

    def _combine(self, members: Mapping[str, np.ndarray]) -> np.ndarray:
        """The final forecast: the members' forecasts weighted as the card says, in its order
        (as :meth:`hpo_lstm.ensemble.Candidate.combine`)."""
        total = np.zeros_like(np.asarray(next(iter(members.values())), dtype=float))
        for name, weight in self.weights.items():
            total = total + weight * np.asarray(members[name], dtype=float)
        return total

    def _target_series(self, values: np.ndarray, data: Any) -> np.ndarray:
        """The target series the statistical members filter from its first row: the study's
        whole series (the card's ``target_history``) when forecasting from the study's data,
        else the data given, behind the part of the study's series before it (see
        :meth:`_aligned_target`)."""
        if data is None:
            return self._target_history
        return self._aligned_target(values[:, self.features.index(self.target)])[0]

    def _aligned_target(self, target: np.ndarray) -> tuple[np.ndarray, int]:
        """``target`` behind the study's series up to where ``target`` starts, when ``target``
        starts inside the study's series (a later part of the same data, or newer data that
        repeats its end): the statistical members' parameters were fitted from the study's first
        row, and their filter needs that start. Returns the series and the row of ``target``'s
        first value in it (0 when ``target`` does not start inside the study's series: then the
        filter starts at its first row, an approximation that settles after a few seasons)."""
        history = self._target_history
        target = np.asarray(target, dtype=float)
        if not len(history) or not len(target):
            return target, 0
        for start in np.flatnonzero(history == target[0]):
            overlap = min(len(history) - start, len(target))
            if np.array_equal(history[start : start + overlap], target[:overlap]):
                return np.concatenate([history[:start], target]), int(start)
        return target, 0

    def _outputs(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Scaled outputs (batch, H) of network ``model`` for windows ``x`` (batch, lookback, F) float32."""
        import torch

        from hpo_lstm.training import forward_windows

        with _one_thread():
            out = forward_windows(model, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        out = out.reshape(len(x), -1)
        if out.shape[1] != self.horizon:
            raise ModelFileError(
                f"The model in {self.source} gives {out.shape[1]} output(s) per window; its card says horizon "
                f"{self.horizon}."
            )
        return out

    def _levels(self, out: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Scaled outputs (batch, H) -> levels in the series' units, by the study's own rule
        (:func:`hpo_lstm.data.restore_level`; ``base``: :meth:`_base`)."""
        from hpo_lstm.data import restore_level

        return restore_level(out, base, self.transform, self._target_mean, self._target_scale, self.horizon)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch thread for the block (as the study scored its final model), then as before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_steps(steps: Any, name: str = "`steps`") -> int:
    """``steps`` as an int, or a one-line ConfigError naming it as ``name``: 1 to MAX_STEPS
    forecast steps."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"{name} must be an integer from 1 to {MAX_STEPS:,}; got {steps!r}.")
    return int(steps)


def _future_times(times: np.ndarray | None, info: Mapping[str, Any], steps: int) -> Any:
    """The time stamps (UTC, as a Series holds them) or row numbers of forecast steps 1..``steps``.

    Steps of a day or longer continue on the clock of the zone the data was written in
    (``info["zone"]``): midnight stays midnight across daylight saving time, and weekdays and
    months are the zone's. Daily data with no regular frequency (business days with holidays)
    whose stamps never fall on a Saturday or a Sunday continues on business days: ``info``'s
    ``weekdays_only`` (the whole series' stamps, from the model card), else these ``times``."""
    import pandas as pd

    from hpo_lstm.data import from_wall_times, wall_times

    if times is None:
        return np.arange(int(info["last"]) + 1, int(info["last"]) + 1 + steps)
    zone = info.get("zone")
    if info.get("freq"):
        offset = pd.tseries.frequencies.to_offset(info["freq"])
    elif info.get("step_seconds"):
        offset = pd.Timedelta(seconds=float(info["step_seconds"]))
        weekdays = info.get("weekdays_only")
        if weekdays is None:  # a card written before the whole series' weekdays were recorded
            weekdays = time_step(times, zone)["weekdays_only"]
        if offset == pd.Timedelta(days=1) and weekdays:
            offset = pd.offsets.BDay()
    else:
        raise DataError("The series' time stamps have no step to continue (fewer than two of them).")
    by_clock = zone is not None and info.get("clock", True) and not shorter_than_a_day(offset)
    last = pd.Timestamp(wall_times(times[-1:], zone)[0] if by_clock else times[-1])
    try:
        future = pd.date_range(start=last + offset, periods=steps, freq=offset)
        return from_wall_times(future, zone) if by_clock else future
    except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
        raise DataError(
            f"{steps:,} steps after {last} go past the last time stamp pandas can hold ({pd.Timestamp.max:%Y-%m-%d}); "
            "ask for fewer steps."
        ) from None


# Loading ----------------------------------------------------------------------------------------


def load_forecaster(
    result: str | Path | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    cell: str | None = None,
    trust_model_code: bool = False,
) -> Forecaster:
    """The saved model of a finished study, as a :class:`Forecaster`.

    * ``result``: a run's folder (``results/<study>``, holding ``model/``), its ``model/``
      folder itself, or a comparison's folder (holding ``compare.json``). For a comparison,
      ``cell="MODEL.OPTIMIZER.SEED"`` (e.g. ``"bilstm.woa.0"``, ``"lstm.untuned.0"``) picks a
      cell; by default the finished cell with the lowest best validation RMSE.
    * or ``storage=URL, study_name=NAME``: the study in an Optuna storage; with
      ``study_name`` alone, the storage in ``HPO_LSTM_STORAGE``.

    A model of your own (a card naming ``module:Class``) is imported, which runs its code, only
    with ``trust_model_code=True``; otherwise it is refused (:class:`ModelFileError`), as
    transformers' ``trust_remote_code``. Built-in models never import anything a card names.

    Storages are only read (SQLite files are opened read-only), after a check that they are
    hpo-lstm storages (:func:`hpo_lstm.store.manifest.open_recorded`); a URL whose password files
    mask (``***``) takes it from ``HPO_LSTM_STORAGE``. Refused with a one-line
    :class:`~hpo_lstm.ConfigError` (or its subclass ``ModelFileError``) when there is no saved
    model, e.g. a study recorded by an hpo-lstm older than saved models.
    """
    from hpo_lstm._urls import env_storage

    for name, value, kinds in (
        ("result", result, (str, Path)),
        ("storage", storage, (str,)),
        ("study_name", study_name, (str,)),
        ("cell", cell, (str,)),
    ):
        if value is not None and not isinstance(value, kinds):
            raise ConfigError(f"`{name}` must be {' or '.join(k.__name__ for k in kinds)}; got {value!r}.")
    if result is None and storage is None and study_name:
        storage = env_storage()
    if (result is None) == (storage is None):
        raise ConfigError(
            "Give either a result folder or `storage` URL with `study_name` NAME (not both, not neither)."
        )
    if storage is not None:
        if not study_name:
            raise ConfigError("`storage` needs `study_name`: the study whose model to load.")
        if cell is not None:
            raise ConfigError(
                "`cell` picks a cell of a comparison folder; with `storage`, name the study with `study_name`."
            )
        return _from_storage(
            _open(storage, Path.cwd(), None), study_name, shown=storage, trust_model_code=trust_model_code
        )
    if study_name is not None:
        raise ConfigError("`study_name` goes with `storage`; a result folder names its own study.")
    folder = Path(result)
    if not folder.is_dir():
        raise ConfigError(f"{str(folder)!r} is not a folder; give a run's or a comparison's result folder.")
    from hpo_lstm.store.manifest import MANIFEST

    if (folder / MANIFEST).is_file():
        return _from_comparison(folder, cell, trust_model_code)
    if cell is not None:
        raise ConfigError(f"`cell` picks a cell of a comparison folder; {str(folder)!r} holds no {MANIFEST}.")
    from hpo_lstm.store.model_store import read_model_folder

    for candidate in (folder / "model", folder):
        if (candidate / META_FILE).is_file():
            card, weights = read_model_folder(candidate)
            return Forecaster(card, weights, source=repr(str(candidate)), trust_model_code=trust_model_code)
    if (folder / "summary.json").is_file():
        raise ModelFileError(
            f"{str(folder)!r} holds no saved model (model/): the run was made by an hpo-lstm that did not save "
            "models, or model/ was removed. `hpo-lstm report FOLDER` writes it again when the storage has it."
        )
    raise ConfigError(
        f"{str(folder)!r} holds no model/ (a run's folder) and no {MANIFEST} (a comparison's folder); give a folder "
        "that hpo-lstm run or compare wrote, e.g. results/co2-lstm-woa-seed0."
    )


def _open(url: str, folder: Path, named_in: Path | None) -> Any:
    """The storage at ``url``, checked and opened read-only (:func:`hpo_lstm.store.manifest.open_recorded`):
    a missing SQLite file, or a database hpo-lstm did not record, is refused without a write."""
    from hpo_lstm.store.manifest import open_recorded

    return open_recorded(url, folder=folder, named_in=named_in)


def _read_model(record: Any, shown: str, trust_model_code: bool = False) -> Forecaster:
    """The forecaster of a study's record (:class:`hpo_lstm.store.StudyRecord`)."""
    from hpo_lstm._urls import mask_url

    source = f"study {record.name!r} in {mask_url(shown)!r}"
    try:
        model = record.model()
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"The model card of {source} is not readable JSON ({exc}).") from None
    if model is None:
        raise ModelFileError(
            f"{source[0].upper()}{source[1:]} has no saved model: it has not finished, or it was recorded by an "
            "hpo-lstm that did not save models (run the same command with the current hpo-lstm to make one)."
        )
    return Forecaster(*model, source=source, trust_model_code=trust_model_code)


def _from_storage(storage: Any, study_name: str, *, shown: str, trust_model_code: bool = False) -> Forecaster:
    from hpo_lstm._urls import mask_url
    from hpo_lstm.store.record import StudyRecord

    record = StudyRecord.load(storage, study_name, shown)
    if record is None:
        raise ConfigError(f"Storage {mask_url(shown)!r} holds no study {study_name!r}.")
    return _read_model(record, shown, trust_model_code)


def _cell_label(cell: Mapping[str, Any]) -> str:
    return f"{cell['model']}.{cell['optimizer']}.{cell['seed']}"


def _from_comparison(folder: Path, cell: str | None, trust_model_code: bool = False) -> Forecaster:
    """A cell's model from the comparison in ``folder``: ``cell`` or the best finished one."""

    from hpo_lstm.store.manifest import MANIFEST, read_manifest
    from hpo_lstm.store.record import StudyRecord

    manifest = read_manifest(folder)  # checked: storage and cells present, of the right types
    cells, shown = manifest["cells"], manifest["storage"]
    if cell is not None:
        chosen = [c for c in cells if _cell_label(c) == cell]
        if not chosen:
            labels = ", ".join(_cell_label(c) for c in cells)
            raise ConfigError(f"Unknown cell {cell!r}; the comparison in {str(folder)!r} has cells {labels}.")
    storage = _open(shown, folder, folder / MANIFEST)
    if cell is not None:
        return _from_storage(storage, chosen[0]["study"], shown=shown, trust_model_code=trust_model_code)
    best: tuple[float, Any] | None = None
    stopped: list[str] = []
    for entry in cells:
        record = StudyRecord.load(storage, entry["study"], shown)
        if record is None or record.summary is None or not record.has_model:  # not started, or not finished
            continue
        if not record.is_complete(manifest["base"]["budget"] if entry.get("kind", "tuned") == "tuned" else 1):
            if record.summary.get(
                "stopped_early"
            ):  # stopped at its time limit with its best so far: not chosen unasked
                stopped.append(_cell_label(entry))
            continue
        value = record.summary.get("best_val_rmse")
        if isinstance(value, (int, float)) and math.isfinite(value) and (best is None or value < best[0]):
            best = (float(value), record)
    if best is None:
        if stopped:
            raise ModelFileError(
                f"No cell of the comparison in {str(folder)!r} has finished; {len(stopped)} stopped at the time limit "
                f"with a model of their best so far ({', '.join(stopped[:3])}): run the comparison again to finish "
                "them, or name one with --cell."
            )
        raise ModelFileError(
            f"No cell of the comparison in {str(folder)!r} has a saved model yet (none finished, or they were "
            "recorded by an hpo-lstm that did not save models)."
        )
    return _read_model(best[1], shown, trust_model_code)
