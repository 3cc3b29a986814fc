"""The comparison's numbers, computed from plain tables (the CSV files the report writes).

Every table here is a pure function of ``cells`` (one row per finished study, as in
``cells.csv``) or of the per-evaluation ``convergence`` table, so anything in report.md can be
recomputed from the CSV files beside it.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "ALPHA",
    "PairedTest",
    "best_so_far",
    "convergence_bands",
    "model_comparison_table",
    "optimizer_ranking_table",
    "paired_test",
    "statistical_comparison_table",
    "test_metrics_table",
]

ALPHA = 0.05
METRICS = ("test_rmse", "test_mae", "test_mape")


def best_so_far(values: Sequence[float]) -> np.ndarray:
    """The lowest finite value up to each position; NaN before the first finite one (a failed
    or diverged evaluation never improves the best)."""
    values = np.asarray(values, dtype=float)
    best = np.minimum.accumulate(np.where(np.isfinite(values), values, np.inf)) if len(values) else values
    return np.where(np.isfinite(best), best, np.nan)


class PairedTest(NamedTuple):
    """A Wilcoxon signed-rank test over paired seeds; ``p_value`` is None when there is no test."""

    p_value: float | None
    note: str


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of paired samples ``a`` and ``b``.

    With n pairs the exact test cannot give p below 2 / 2**n: under six pairs it can never
    reach 5%, and the note says so instead of letting a p-value look like evidence.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 2:
        return PairedTest(None, f"n={n}: no test")
    if np.all(a == b):
        return PairedTest(1.0, f"n={n}: identical")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ties and zeros: scipy falls back to the normal approximation
        p = float(wilcoxon(a, b).pvalue)
    smallest = 2.0 / 2**n
    if smallest > ALPHA:
        return PairedTest(p, f"n={n}: too few seeds (p >= {smallest:.3g} whatever the data)")
    return PairedTest(p, f"n={n}")


def _ordered(frame: pd.DataFrame, column: str, order: Sequence[str]) -> pd.DataFrame:
    rank = {name: i for i, name in enumerate(order)}
    return frame.assign(_order=frame[column].map(rank)).sort_values(["_order"], kind="stable").drop(columns="_order")


def test_metrics_table(
    cells: pd.DataFrame,
    baselines: Mapping[str, Mapping[str, float | None]],
    *,
    models: Sequence[str],
    optimizers: Sequence[str],
) -> pd.DataFrame:
    """Test metrics per model x optimizer as mean and sample std over seeds, then untuned
    models and the naive baselines on the same test windows."""
    rows: list[dict[str, Any]] = []
    methods = [*optimizers, "untuned"]
    for model in models:
        for method in methods:
            group = cells[(cells["model"] == model) & (cells["optimizer"] == method)]
            if group.empty:
                continue
            row: dict[str, Any] = {"model": model, "method": method, "n_seeds": len(group)}
            for metric in (*METRICS, "best_val_rmse"):
                values = group[metric].astype(float)
                row[f"{metric}_mean"] = values.mean() if values.notna().all() else math.nan
                row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 and values.notna().all() else math.nan
            for column in ("n_evaluations", "n_trained", "wall_seconds"):
                row[f"{column}_mean"] = group[column].astype(float).mean()
            rows.append(row)
    for name, metrics in baselines.items():
        row = {"model": "-", "method": name, "n_seeds": 0}
        for metric in METRICS:
            value = metrics.get(metric.removeprefix("test_"))
            row[f"{metric}_mean"] = math.nan if value is None else float(value)
        rows.append(row)
    return pd.DataFrame(rows)


def model_comparison_table(cells: pd.DataFrame, *, models: Sequence[str], optimizers: Sequence[str]) -> pd.DataFrame:
    """Each pair of models (LSTM vs BiLSTM, ...) per optimizer: mean test RMSE over the seeds both
    have, the relative difference and a paired Wilcoxon test over those seeds."""
    rows = []
    for method in [*optimizers, "untuned"]:
        for model_a, model_b in itertools.combinations(models, 2):
            a = cells[(cells["model"] == model_a) & (cells["optimizer"] == method)].set_index("seed")["test_rmse"]
            b = cells[(cells["model"] == model_b) & (cells["optimizer"] == method)].set_index("seed")["test_rmse"]
            seeds = sorted(set(a.index) & set(b.index))
            if not seeds:
                continue
            a, b = a.loc[seeds].astype(float), b.loc[seeds].astype(float)
            test = paired_test(a.to_numpy(), b.to_numpy())
            rows.append(
                {
                    "method": method,
                    "model_a": model_a,
                    "model_b": model_b,
                    "n_pairs": len(seeds),
                    "test_rmse_a": a.mean(),
                    "test_rmse_b": b.mean(),
                    "relative_difference": (b.mean() - a.mean()) / a.mean(),
                    "b_better_in": int((b < a).sum()),
                    "p_value": test.p_value,
                    "note": test.note,
                }
            )
    return pd.DataFrame(rows)


def optimizer_ranking_table(
    cells: pd.DataFrame, *, optimizers: Sequence[str], baseline: str = "random"
) -> pd.DataFrame:
    """Mean rank by best validation RMSE (equal budgets) within each model x seed, and each
    optimizer paired with ``baseline`` (random search) over the same model x seed blocks."""
    tuned = cells[cells["kind"] == "tuned"]
    wide = tuned.pivot_table(index=["model", "seed"], columns="optimizer", values="best_val_rmse", aggfunc="first")
    present = [o for o in optimizers if o in wide.columns]
    complete = wide[present].dropna()
    ranks = complete.rank(axis=1, method="average")
    test = tuned.pivot_table(index=["model", "seed"], columns="optimizer", values="test_rmse", aggfunc="first")
    rows = []
    for optimizer in present:
        row: dict[str, Any] = {
            "optimizer": optimizer,
            "n_blocks": len(complete),
            "mean_rank": ranks[optimizer].mean() if len(complete) else math.nan,
            "best_val_rmse_mean": wide[optimizer].mean(),
            "test_rmse_mean": test[optimizer].mean(),
        }
        if baseline in present and optimizer != baseline:
            pair = wide[[optimizer, baseline]].dropna()
            result = paired_test(pair[optimizer].to_numpy(), pair[baseline].to_numpy())
            row.update(
                vs_baseline_pairs=len(pair),
                vs_baseline_wins=int((pair[optimizer] < pair[baseline]).sum()),
                vs_baseline_relative=((pair[optimizer] - pair[baseline]) / pair[baseline]).mean(),
                vs_baseline_p_value=result.p_value,
                vs_baseline_note=result.note,
            )
        rows.append(row)
    if not rows:  # no tuned cell finished yet
        return pd.DataFrame(columns=["optimizer", "mean_rank"])
    return pd.DataFrame(rows).sort_values("mean_rank", kind="stable").reset_index(drop=True)


def convergence_bands(convergence: pd.DataFrame) -> pd.DataFrame:
    """Median and quartiles over seeds of the best-so-far validation RMSE, per model, optimizer
    and evaluation number (the data of the convergence plot)."""
    grouped = convergence.groupby(["model", "optimizer", "evaluation"], sort=False)["best_so_far"]
    return pd.DataFrame(
        {
            "median": grouped.median(),
            "q25": grouped.quantile(0.25),
            "q75": grouped.quantile(0.75),
            "n_seeds": grouped.count(),
        }
    ).reset_index()


def statistical_comparison_table(
    cells: pd.DataFrame,
    baselines: Mapping[str, Mapping[str, Any]],
    *,
    models: Sequence[str],
    optimizers: Sequence[str],
) -> pd.DataFrame:
    """Each model x optimizer (and untuned model) against the statistical baselines scored on the
    same test points: mean test RMSE over seeds, then for each scored baseline (best first) the
    relative difference of that mean to its RMSE and the seeds whose test RMSE is below it.

    Columns: model, method, n_seeds, test_rmse_mean, best_baseline, best_baseline_rmse,
    relative_to_best, seeds_better_than_best, and ``relative_to_<name>`` /
    ``seeds_better_than_<name>`` per scored statistical baseline. Empty when none was scored."""
    from hpo_lstm.baselines import BASELINES, best_statistical

    best = best_statistical(baselines)
    if best is None or cells.empty:
        return pd.DataFrame(
            columns=[
                "model",
                "method",
                "n_seeds",
                "test_rmse_mean",
                "best_baseline",
                "best_baseline_rmse",
                "relative_to_best",
                "seeds_better_than_best",
            ]
        )
    scored = sorted(
        (
            (n, float(baselines[n]["rmse"]))
            for n in BASELINES
            if n in baselines and baselines[n].get("rmse") is not None
        ),
        key=lambda item: item[1],
    )
    rows = []
    for model in models:
        for method in [*optimizers, "untuned"]:
            values = cells[(cells["model"] == model) & (cells["optimizer"] == method)]["test_rmse"].astype(float)
            if values.empty:
                continue
            mean = values.mean()
            row: dict[str, Any] = {
                "model": model,
                "method": method,
                "n_seeds": len(values),
                "test_rmse_mean": mean,
                "best_baseline": best[0],
                "best_baseline_rmse": best[1],
                "relative_to_best": mean / best[1] - 1.0,
                "seeds_better_than_best": int((values < best[1]).sum()),
            }
            for name, rmse in scored:
                row[f"relative_to_{name}"] = mean / rmse - 1.0
                row[f"seeds_better_than_{name}"] = int((values < rmse).sum())
            rows.append(row)
    return pd.DataFrame(rows)


def fmt(value: Any, digits: int = 4) -> str:
    """A number as every table and line of hpo-lstm prints it: an integer whole, anything else to
    ``digits`` significant digits; missing and non-finite values as '-'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.{digits}g}"
