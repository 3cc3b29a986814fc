"""Reports: what a run writes, and the comparison report (tables computed first, drawn second)."""

from __future__ import annotations

from hpo_lstm.report._compare import Comparison, load_comparison, mean_std, write_comparison_report
from hpo_lstm.report._forecast import FORECAST_FILES, write_forecast_files
from hpo_lstm.report._plots import plot_forecast
from hpo_lstm.report._run import (
    RUN_FILES,
    check_run_folder,
    convergence_table,
    lookback_text,
    rebuild_run_outputs,
    target_label,
    write_run_outputs,
)
from hpo_lstm.report._tables import fmt

__all__ = [
    "FORECAST_FILES",
    "RUN_FILES",
    "Comparison",
    "check_run_folder",
    "convergence_table",
    "fmt",
    "load_comparison",
    "lookback_text",
    "mean_std",
    "plot_forecast",
    "rebuild_run_outputs",
    "target_label",
    "write_comparison_report",
    "write_forecast_files",
    "write_run_outputs",
]
