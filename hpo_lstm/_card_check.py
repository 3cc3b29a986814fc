"""Is a model card (model.json) one a forecast can be made from? Field by field.

A result folder or a storage may come from someone else, so a card is untrusted input: every
field a forecast reads is checked for its type, range and finiteness before anything is built
(a huge ``hidden_size`` would allocate gigabytes; a NaN scale would give an all-NaN forecast with
exit 0; negative interval widths would give lower > upper), and the weights are checked against
the card's SHA-256 of them. Every problem is named in one line (:class:`ModelFileError`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from hpo_lstm._imports import USER_CODE_NAME
from hpo_lstm.space import MAX_SIZE
from hpo_lstm.store.model_store import ModelFileError

__all__ = ["check_card", "check_weights"]

LEVELS = ("80", "95")
_REQUIRED = (
    "model",
    "params",
    "target",
    "features",
    "lookback",
    "horizon",
    "transform",
    "input_mean",
    "input_scale",
    "target_mean",
    "target_scale",
    "time",
    "history",
    "intervals",
)
# Sizes a network of this tool can have, generously (MAX_SIZE: hpo_lstm.space, which caps a
# study's search at the same sizes): a card beyond them is refused before any tensor is allocated.
MAX_LOOKBACK = 100_000
MAX_HORIZON = 10_000
_INT_PARAMS = ("hidden_size", "n_layers", "lookback", "batch_size", "channels", "kernel_size", "heads")
_FLOAT_PARAMS = ("learning_rate", "dropout")
_STAT_KINDS = ("auto_ets", "auto_arima", "seasonal_naive")


def _int(value: Any, low: int = 1, high: int = MAX_SIZE) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(values: Any, n: int | None = None, *, positive: bool = False, nonnegative: bool = False) -> bool:
    if not isinstance(values, list) or (n is not None and len(values) != n):
        return False
    return all(_number(v) and (not positive or v > 0) and (not nonnegative or v >= 0) for v in values)


def check_card(card: Any, source: str) -> None:
    """Refuse, in one line naming every problem, a card that cannot drive a forecast."""
    if not isinstance(card, Mapping):
        raise ModelFileError(f"The model card of {source} is not a JSON object (it is {type(card).__name__}).")
    missing = [key for key in _REQUIRED if key not in card]
    if missing:
        raise ModelFileError(f"The model card of {source} lacks {missing}; it was not written by this hpo-lstm.")
    problems: list[str] = []
    try:
        _check(card, problems)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:  # a shape nothing above foresaw
        problems.append(f"{type(exc).__name__}: {exc}")
    if problems:
        raise ModelFileError(f"The model card of {source} is inconsistent: {'; '.join(problems)}.")


def _check(card: Mapping[str, Any], problems: list[str]) -> None:
    from hpo_lstm.data import CALENDAR_FEATURES, TRANSFORMS
    from hpo_lstm.models import registry

    model = card["model"]
    user = isinstance(model, str) and USER_CODE_NAME.fullmatch(model)
    if not isinstance(model, str) or (
        model not in registry and not user
    ):  # (a user's model: the forecaster asks for trust)
        problems.append(
            f"unknown model {model!r} (this hpo-lstm has {', '.join(registry)}, or module:Class of your own)"
        )
    features = card["features"]
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) for f in features)
        or len(set(features)) != len(features)
    ):
        problems.append(f"features {features!r} (a list of distinct column names)")
        features = []
    if card["target"] not in features:
        problems.append(f"target {card['target']!r} is not among the features {features!r}")
    if card["transform"] not in TRANSFORMS:
        problems.append(f"unknown transform {card['transform']!r}")
    calendar = card.get("calendar") or []
    if not isinstance(calendar, list) or any(name not in CALENDAR_FEATURES for name in calendar):
        problems.append(f"unknown calendar features {calendar!r} (this hpo-lstm has {', '.join(CALENDAR_FEATURES)})")
        calendar = []
    lookback, H = card["lookback"], card["horizon"]
    if not _int(lookback, 1, MAX_LOOKBACK):
        problems.append(f"lookback {lookback!r} (an integer from 1 to {MAX_LOOKBACK})")
        lookback = None
    if not _int(H, 1, MAX_HORIZON):
        problems.append(f"horizon {H!r} (an integer from 1 to {MAX_HORIZON})")
        H = None
    _check_params(card["params"], "params", lookback, problems)
    lag = 1
    if card["transform"] == "sdiff":
        season = card.get("season")
        if not _int(season, 1, MAX_LOOKBACK) or (H is not None and season < H):
            problems.append(f"transform sdiff with season {season!r} (an integer >= the horizon)")
        else:
            lag = season
    n_inputs = len(features) + 2 * len(calendar)
    if not _numbers(card["input_mean"], n_inputs) or not _numbers(card["input_scale"], n_inputs, positive=True):
        problems.append(f"the input scalers are not {n_inputs} finite numbers each (scales > 0), one per input")
    if H is not None:
        if not _numbers(card["target_mean"], H) or not _numbers(card["target_scale"], H, positive=True):
            problems.append(f"the target scalers are not {H} finite numbers each (scales > 0), one per forecast step")
        intervals = card["intervals"]
        if not isinstance(intervals, Mapping) or not all(
            _numbers(intervals.get(k), H, nonnegative=True) for k in LEVELS
        ):
            problems.append(f"the interval half-widths are not {H} finite numbers >= 0 per level {LEVELS}")
    _check_time(card.get("time"), card.get("time_zone"), problems)
    history = card["history"]
    if lookback is not None:
        rows = lookback + lag
        values = history.get("values") if isinstance(history, Mapping) else None
        times = history.get("time") if isinstance(history, Mapping) else None
        if not isinstance(values, list) or len(values) != rows or not all(_numbers(r, len(features)) for r in values):
            what = "lookback + 1" if lag == 1 else f"lookback + season {lag}"
            problems.append(f"the history is not {what} = {rows} rows of {len(features)} finite numbers")
        elif not isinstance(times, list) or len(times) != rows:
            problems.append(f"the history's time is not {rows} time stamps or row numbers")
    _check_final(card, lookback, problems)
    digest = card.get("weights_sha256")
    if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        problems.append(f"weights_sha256 {digest!r} (64 hexadecimal digits)")


def _check_params(params: Any, where: str, lookback: Any, problems: list[str]) -> None:
    if not isinstance(params, Mapping):
        problems.append(f"{where} {params!r} (a table of the network's parameters)")
        return
    for name, value in params.items():
        if name in _INT_PARAMS and not _int(value):
            problems.append(f"{where}.{name} {value!r} (an integer from 1 to {MAX_SIZE})")
        elif name in _FLOAT_PARAMS and not (_number(value) and value >= 0 and (name != "dropout" or value < 1)):
            problems.append(
                f"{where}.{name} {value!r} (a finite number" + (" in [0, 1))" if name == "dropout" else " >= 0)")
            )
        elif name not in _INT_PARAMS + _FLOAT_PARAMS and not isinstance(value, (int, float, str, bool, type(None))):
            problems.append(f"{where}.{name} {value!r} (a number or a word)")
    for name in ("hidden_size", "n_layers", "lookback"):
        if name not in params:
            problems.append(f"{where} lack {name!r}")
    if _int(params.get("lookback")) and lookback is not None and params["lookback"] > lookback:
        problems.append(f"{where}.lookback {params['lookback']} is longer than the card's lookback {lookback}")


def _check_time(time: Any, zone: Any, problems: list[str]) -> None:
    if not isinstance(time, Mapping):
        problems.append(f"time {time!r} (a table: freq, step_seconds, last)")
        return
    freq, step, last = time.get("freq"), time.get("step_seconds"), time.get("last")
    if freq is not None:
        try:
            import pandas as pd

            pd.tseries.frequencies.to_offset(freq)
        except (TypeError, ValueError):
            problems.append(f"time.freq {freq!r} (a pandas frequency such as 'D' or 'W-SAT')")
    if step is not None and not (_number(step) and step > 0):
        problems.append(f"time.step_seconds {step!r} (a positive number)")
    if time.get("weekdays_only") is not None and not isinstance(time["weekdays_only"], bool):
        problems.append(f"time.weekdays_only {time['weekdays_only']!r} (true or false)")
    if not (isinstance(last, str) or _int(last, 0, 2**62)):
        problems.append(f"time.last {last!r} (a time stamp or a row number)")
    elif isinstance(last, str):
        import pandas as pd

        try:
            pd.Timestamp(last)
        except (TypeError, ValueError):
            problems.append(f"time.last {last!r} (a time stamp or a row number)")
    if zone is not None:
        from hpo_lstm.data import zone_times

        try:
            zone_times(["2000-01-01"], zone) if isinstance(zone, str) else None
        except Exception:  # noqa: BLE001  (pandas or zoneinfo: any refusal of the name)
            problems.append(f"time_zone {zone!r} (a time zone such as 'UTC' or 'UTC+05:30')")
        if not isinstance(zone, str):
            problems.append(f"time_zone {zone!r} (a time zone such as 'UTC' or 'UTC+05:30')")


def _check_final(card: Mapping[str, Any], lookback: Any, problems: list[str]) -> None:
    final = card.get("final_forecast")
    if final is None:
        return
    members = final.get("members") if isinstance(final, Mapping) else None
    if not isinstance(members, list) or not members or not all(isinstance(m, Mapping) for m in members):
        problems.append("final_forecast.members (a list of the final forecast's members)")
        return
    names = [m.get("name") for m in members]
    if len(set(map(str, names))) != len(names) or not all(isinstance(n, str) for n in names):
        problems.append(f"final_forecast members {names!r} (distinct names)")
    weights = [m.get("weight") for m in members]
    if not all(_number(w) and w >= 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        problems.append(f"final_forecast weights {weights!r} (finite, >= 0, summing to 1)")
    stats = False
    for member in members:
        name = str(member.get("name"))
        if name == "network_1":
            continue
        if "params" in member:
            _check_params(member["params"], f"final_forecast.{name}.params", lookback, problems)
            if not _int(member.get("trial"), 0, 2**62):
                problems.append(f"final_forecast.{name}.trial {member.get('trial')!r} (a trial number)")
        else:
            state = member.get("state")
            if not isinstance(state, Mapping) or state.get("kind") not in _STAT_KINDS:
                problems.append(f"final_forecast.{name} is neither a network nor a statistical model's state")
            else:
                stats = True
                _check_state(name, state, problems)
    if stats:
        history = card.get("target_history")
        if not isinstance(history, list) or len(history) < 3 or not all(_number(v) for v in history):
            problems.append("target_history (the whole target series, finite numbers) for the statistical members")


def _check_state(name: str, state: Mapping[str, Any], problems: list[str]) -> None:
    kind = state["kind"]
    ok = True
    if kind == "seasonal_naive":
        ok = _int(state.get("season"), 1, MAX_LOOKBACK)
    elif kind == "auto_arima":
        coef = state.get("coef")
        arma = state.get("arma")
        ok = (
            isinstance(coef, Mapping)
            and all(isinstance(k, str) and _number(v) for k, v in coef.items())
            and _number(state.get("sigma2"))
            and isinstance(arma, list)
            and len(arma) >= 7
            and all(_int(v, 0, MAX_LOOKBACK) for v in arma)
        )
    elif kind == "auto_ets":
        components = state.get("components")
        par = state.get("par")
        ok = (
            isinstance(components, str)
            and _int(state.get("m"), 1, MAX_LOOKBACK)
            and isinstance(par, list)
            and all(v is None or _number(v) for v in par)
            and _int(state.get("n_params"), 0, MAX_SIZE)
        )
    if not ok:
        problems.append(f"final_forecast.{name}: a malformed {kind} state")


def check_weights(card: Mapping[str, Any], weights: Mapping[str, Any], source: str) -> None:
    """Refuse weights that are not the ones the card was written with (its ``weights_sha256``):
    weights of another study's model of the same shapes, say. A card without the digest (an
    earlier hpo-lstm) is not checked."""
    from hpo_lstm.store.model_store import weights_digest

    expected = card.get("weights_sha256")
    if expected is not None and weights_digest(weights) != expected:
        raise ModelFileError(
            f"The weights of {source} are not the ones its model card was written with (SHA-256 "
            f"{weights_digest(weights)[:12]}..., the card says {expected[:12]}...)."
        )
