"""The final forecast: the best network, the mean of the best K, or a combination of the networks
with the statistical models, chosen on validation only.

In forecasting, combinations win: 12 of the 17 most accurate methods of the M4 competition were
combinations (Makridakis et al., IJF 2018). A study trains dozens of candidates and fits the
statistical models on the same points anyway, so the final forecast is chosen among

* ``best``: the candidate with the lowest validation RMSE (what the search found);
* ``top_k_mean``: the mean of the best K distinct trained candidates;
* ``combination``: that network mean, AutoETS and AutoARIMA weighted by the inverse of their
  validation MSE (Bates and Granger, 1969): **the default**;
* ``combination_equal``: the mean of the network mean, AutoETS and AutoARIMA;
* ``combination_fitted``: convex weights (non-negative, summing to one) on the network mean,
  AutoETS, AutoARIMA and seasonal naive that minimise the validation MSE.

The default takes ``combination`` whatever the other candidates score: on the benchmark panel's
half that defaults were chosen on, choosing the candidate with the lowest validation RMSE
(``--final auto``) did worse on test than this fixed combination for every search setting tried
(docs/panel.md): the best network's validation RMSE is the best of dozens and flatters it, and
small validation sets make the pick noisy (the "forecast combination puzzle"). The statistical
models' validation forecasts come from fits on the training rows only
(:mod:`hpo_lstm.baselines`), so they never saw the validation data; the test split plays no part
in any weight or choice. ``--final best`` keeps the bare network.

Every candidate is a weighted sum of named forecasts ("members": ``network_1`` .. ``network_K``,
``auto_ets``, ``auto_arima``, ``seasonal_naive``), each a column of predictions.csv, so any
candidate's test forecast is recomputed from that file and its weights in summary.json.
Pure numpy (and scipy for the fitted weights): no torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_FINAL", "DEFAULT_TOP_K", "FINAL_RULES", "KINDS", "Candidate", "FinalForecast", "choose_final"]

KINDS = ("best", "top_k_mean", "combination", "combination_equal", "combination_fitted")
# --final: a kind takes that candidate (the best network where it cannot be built); "auto" the
# candidate with the lowest validation RMSE. "best" builds no other candidate.
FINAL_RULES = ("combination", "auto", "best", "top_k_mean", "combination_equal", "combination_fitted")
DEFAULT_FINAL = "combination"
DEFAULT_TOP_K = 5
NETWORK = "network"  # members network_1 (the best) .. network_K
EQUAL_MEMBERS = ("auto_ets", "auto_arima")  # joined with the network mean in combination_equal
FITTED_MEMBERS = ("auto_ets", "auto_arima", "seasonal_naive")  # candidates for fitted weights


def network_member(rank: int) -> str:
    """The member name of the ``rank``-th best network (1: the best)."""
    return f"{NETWORK}_{rank}"


@dataclass(frozen=True)
class Candidate:
    """One way to make the final forecast: ``weights`` over ``members`` (forecast names)."""

    kind: str
    members: tuple[str, ...]
    weights: tuple[float, ...]
    val_rmse: float
    test_rmse: float | None = None

    def combine(self, forecasts: Mapping[str, np.ndarray]) -> np.ndarray:
        """The weighted sum of the members' forecasts (all of one shape), in member order."""
        total = np.zeros_like(np.asarray(forecasts[self.members[0]], dtype=float))
        for name, weight in zip(self.members, self.weights):
            total = total + weight * np.asarray(forecasts[name], dtype=float)
        return total

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "members": list(self.members),
            "weights": list(self.weights),
            "val_rmse": self.val_rmse,
            "test_rmse": self.test_rmse,
        }


@dataclass(frozen=True)
class FinalForecast:
    """The chosen candidate and every candidate considered, with the rule that chose."""

    chosen: Candidate
    candidates: tuple[Candidate, ...]
    rule: str

    def record(self) -> dict[str, Any]:
        """summary.json's ``final_forecast``."""
        return {
            "kind": self.chosen.kind,
            "members": list(self.chosen.members),
            "weights": list(self.chosen.weights),
            "rule": self.rule,
            "chosen_on": "validation",
            "candidates": {c.kind: c.record() for c in self.candidates},
        }


def _rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)) ** 2)))


def _convex_weights(columns: list[np.ndarray], actual: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one that minimise the squared error of the weighted sum
    of ``columns`` against ``actual`` (all flattened); SLSQP from equal weights."""
    from scipy.optimize import minimize

    x = np.stack([np.ravel(c) for c in columns], axis=1)
    y = np.ravel(actual)
    scale = float(np.mean(y**2)) or 1.0

    def loss(w: np.ndarray) -> float:
        return float(np.mean((x @ w - y) ** 2)) / scale

    n = x.shape[1]
    result = minimize(
        loss,
        np.full(n, 1.0 / n),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda w: np.sum(w) - 1.0}],
        options={"ftol": 1e-12},
    )
    weights = np.clip(result.x, 0.0, None)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(n, 1.0 / n)
    return np.round(weights, 12)


def choose_final(
    networks_val: Sequence[np.ndarray],
    networks_test: Sequence[np.ndarray],
    statistical_val: Mapping[str, np.ndarray],
    statistical_test: Mapping[str, np.ndarray],
    val_actual: np.ndarray,
    test_actual: np.ndarray | None = None,
    *,
    rule: str = DEFAULT_FINAL,
) -> FinalForecast:
    """Build the candidates from the networks' forecasts (best first; validation and test, each
    (n_windows, horizon)) and the statistical models' (by name), then choose by ``rule``:
    a kind, that candidate (the best network when it cannot be built: no statistical model
    scored, or one network for top_k_mean); "auto", the lowest validation RMSE (ties: the
    simpler kind, in KINDS order); "best", the best network alone (no other candidate is built). ``test_actual`` only
    fills each candidate's test RMSE, for the report: it is read after the choice is made."""
    if rule not in FINAL_RULES:
        raise ValueError(f"final must be one of {', '.join(FINAL_RULES)}; got {rule!r}")
    k = len(networks_val)
    if k == 0:
        raise ValueError("the final forecast needs at least one network")
    val: dict[str, np.ndarray] = {network_member(i + 1): np.asarray(f, dtype=float) for i, f in enumerate(networks_val)}
    test: dict[str, np.ndarray] = {
        network_member(i + 1): np.asarray(f, dtype=float) for i, f in enumerate(networks_test)
    }
    usable = [n for n in statistical_val if n in statistical_test and np.all(np.isfinite(statistical_val[n]))]
    val.update({n: np.asarray(statistical_val[n], dtype=float) for n in usable})
    test.update({n: np.asarray(statistical_test[n], dtype=float) for n in usable})

    nets = tuple(network_member(i + 1) for i in range(k))
    specs: list[tuple[str, tuple[str, ...], tuple[float, ...]]] = [("best", (nets[0],), (1.0,))]
    if rule != "best":
        if k > 1:
            specs.append(("top_k_mean", nets, (1.0 / k,) * k))
        equal = [n for n in EQUAL_MEMBERS if n in usable]
        if equal:
            mean = sum(val[n] for n in nets) / k
            inverse = np.array([1.0 / max(_rmse(val_actual, f) ** 2, 1e-300) for f in [mean] + [val[n] for n in equal]])
            inverse = inverse / inverse.sum()
            specs.append(
                (
                    "combination",
                    nets + tuple(equal),
                    tuple(float(inverse[0]) / k for _ in nets) + tuple(float(v) for v in inverse[1:]),
                )
            )
            parts = 1 + len(equal)
            specs.append(
                ("combination_equal", nets + tuple(equal), (1.0 / (parts * k),) * k + (1.0 / parts,) * len(equal))
            )
        fitted = [n for n in FITTED_MEMBERS if n in usable]
        if fitted:
            mean = sum(val[n] for n in nets) / k
            w = _convex_weights([mean] + [val[n] for n in fitted], val_actual)
            specs.append(
                (
                    "combination_fitted",
                    nets + tuple(fitted),
                    tuple(float(w[0]) / k for _ in nets) + tuple(float(v) for v in w[1:]),
                )
            )
    candidates = []
    for kind, members, weights in specs:
        keep = [(m, w) for m, w in zip(members, weights) if w > 0]
        members, weights = tuple(m for m, _ in keep), tuple(w for _, w in keep)
        candidate = Candidate(
            kind, members, weights, _rmse(val_actual, Candidate(kind, members, weights, 0.0).combine(val))
        )
        candidates.append(candidate)
    if rule == "auto":
        chosen = min(candidates, key=lambda c: (c.val_rmse, KINDS.index(c.kind)))
    else:
        chosen = next((c for c in candidates if c.kind == rule), candidates[0])
    if test_actual is not None:
        candidates = [
            Candidate(c.kind, c.members, c.weights, c.val_rmse, _rmse(test_actual, c.combine(test))) for c in candidates
        ]
        chosen = next(c for c in candidates if c.kind == chosen.kind)
    return FinalForecast(chosen=chosen, candidates=tuple(candidates), rule=rule)


# Words for reports ------------------------------------------------------------------------------

_STAT_LABELS = {"auto_ets": "AutoETS", "auto_arima": "AutoARIMA", "seasonal_naive": "seasonal naive"}


def candidate_label(candidate: Mapping[str, Any], model: str) -> str:
    """A short name of a candidate ("best lstm", "mean of 5 best lstm", "equal combination",
    "fitted combination") for tables; ``model`` is the network's name."""
    kind = candidate.get("kind", "best")
    networks = sum(1 for m in candidate.get("members", ()) if m.startswith(NETWORK))
    return {
        "best": f"best {model}",
        "top_k_mean": f"mean of {networks} best {model}",
        "combination": "combination",
        "combination_equal": "equal combination",
        "combination_fitted": "fitted combination",
    }.get(kind, kind)


def weights_text(candidate: Mapping[str, Any], model: str) -> str:
    """What a candidate combines, with weights: "5 lstm 0.33, AutoETS 0.33, AutoARIMA 0.33"
    (the networks' weights summed)."""
    parts: dict[str, float] = {}
    networks = 0
    for name, weight in zip(candidate.get("members", ()), candidate.get("weights", ())):
        if name.startswith(NETWORK):
            networks += 1
            parts["networks"] = parts.get("networks", 0.0) + float(weight)
        else:
            parts[_STAT_LABELS.get(name, name)] = float(weight)
    words = []
    for name, weight in parts.items():
        label = (f"{networks} {model}" if networks > 1 else model) if name == "networks" else name
        words.append(f"{label} {weight:.2f}")
    return ", ".join(words)


def choice_text(final: Mapping[str, Any], model: str) -> str:
    """How the final forecast was chosen, in words: "chosen on validation among 5 candidates:
    ..." under ``--final auto``, else the rule that named it ("--final combination: ...")."""
    what = f"{candidate_label(final, model)} ({weights_text(final, model)})"
    if final.get("rule") == "auto":
        return f"chosen on validation among {len(final.get('candidates') or {})} candidates: {what}"
    return f"--final {final.get('rule', final.get('kind'))}: {what}"


def final_description(final: Mapping[str, Any] | None, model: str) -> str:
    """The final forecast in words for verdicts: "the tuned lstm" when it is the best network,
    else e.g. "the final forecast (fitted combination: lstm 0.42, AutoETS 0.58)"."""
    if not final or final.get("kind", "best") == "best":
        return f"tuned {model}"
    return f"final forecast ({candidate_label(final, model)}: {weights_text(final, model)})"
