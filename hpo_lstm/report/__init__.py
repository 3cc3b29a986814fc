"""Reports: what a run writes, and the comparison report (tables computed first, drawn second)."""

from __future__ import annotations

from hpo_lstm.report._compare import Comparison, load_comparison, write_comparison_report
from hpo_lstm.report._run import convergence_table, rebuild_run_outputs, write_run_outputs

__all__ = [
    "Comparison",
    "convergence_table",
    "load_comparison",
    "rebuild_run_outputs",
    "write_comparison_report",
    "write_run_outputs",
]
