"""What ``hpo-lstm run`` writes: summary.json, trials.csv, predictions.csv, convergence.csv/.png,
predictions.png.

Plot data is computed into plain tables first (``convergence_table``) and drawn second, so
tests check numbers, not pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpo_lstm._json import dumps
from hpo_lstm.optimizers import Evaluation
from hpo_lstm.report._plots import plot_convergence, plot_predictions
from hpo_lstm.report._tables import best_so_far
from hpo_lstm.study import StudyResult

__all__ = ["convergence_table", "write_run_outputs"]


def convergence_table(evaluations: Sequence[Evaluation]) -> Any:
    """One row per evaluation: its value and the best finite value so far."""
    import pandas as pd

    values = np.array([e.value for e in evaluations], dtype=float)
    return pd.DataFrame(
        {
            "evaluation": np.arange(1, len(values) + 1),
            "batch": [e.batch for e in evaluations],
            "value": values,
            "best_so_far": best_so_far(values),
        }
    )


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
