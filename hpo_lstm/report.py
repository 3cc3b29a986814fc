"""What a run writes: summary.json, trials.csv, predictions.csv, convergence.png, predictions.png.

Plot data is computed into plain tables first (``convergence_table``) and drawn second, so
tests check numbers, not pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpo_lstm.optimizers import Evaluation
from hpo_lstm._json import dumps
from hpo_lstm.study import StudyResult

__all__ = ["convergence_table", "plot_convergence", "plot_predictions", "write_run_outputs"]


def convergence_table(evaluations: Sequence[Evaluation]) -> Any:
    """One row per evaluation: its value and the best finite value so far."""
    import pandas as pd

    values = np.array([e.value for e in evaluations], dtype=float)
    finite = np.where(np.isfinite(values), values, np.inf)
    best = np.minimum.accumulate(finite) if len(finite) else finite
    return pd.DataFrame(
        {
            "evaluation": np.arange(1, len(values) + 1),
            "batch": [e.batch for e in evaluations],
            "value": values,
            "best_so_far": np.where(np.isfinite(best), best, np.nan),
        }
    )


def plot_convergence(table: Any, path: Path, *, title: str, naive_val_rmse: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.scatter(table["evaluation"], table["value"], s=12, alpha=0.5, label="evaluation")
    ax.step(table["evaluation"], table["best_so_far"], where="post", color="C3", label="best so far")
    if naive_val_rmse is not None:
        ax.axhline(naive_val_rmse, color="0.4", linestyle="--", linewidth=1, label="naive last value")
    finite = table["value"][np.isfinite(table["value"])]
    if len(finite):
        top = max(float(np.quantile(finite, 0.9)), naive_val_rmse or 0.0)
        ax.set_ylim(float(finite.min()) * 0.97, top * 1.05)
    ax.set_xlabel("evaluation")
    ax.set_ylabel("validation RMSE")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_predictions(predictions: Any, path: Path, *, title: str, unit_label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=120)
    ax.plot(predictions["time"], predictions["actual"], color="0.2", linewidth=1, label="actual")
    ax.plot(predictions["time"], predictions["predicted"], color="C3", linewidth=1, label="predicted")
    ax.set_xlabel("time")
    ax.set_ylabel(unit_label)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_run_outputs(result: StudyResult, folder: Path) -> dict[str, Any]:
    """Write the run's files into ``folder``; returns the summary written to summary.json."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    (folder / "summary.json").write_text(dumps(summary, indent=2) + "\n")
    result.trials.to_csv(folder / "trials.csv", index=False)
    result.final.predictions.to_csv(folder / "predictions.csv", index=False)
    table = convergence_table(result.search.evaluations)
    table.to_csv(folder / "convergence.csv", index=False)
    label = f"{result.config.model} + {result.config.optimizer} on {summary['dataset']}"
    plot_convergence(
        table,
        folder / "convergence.png",
        title=f"{label}: best-so-far validation RMSE",
        naive_val_rmse=summary["val_baselines"]["naive_last"]["rmse"],
    )
    test = summary["test"]["rmse"]
    naive = summary["baselines"]["naive_last"]["rmse"]
    plot_predictions(
        result.final.predictions,
        folder / "predictions.png",
        title=f"{label}: test RMSE {test:.4g} (naive {naive:.4g})",
        unit_label=result.dataset.target,
    )
    return summary
