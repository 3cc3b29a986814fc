"""Drawing only: every function takes tables that were computed (and tested) elsewhere."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_best_predictions", "plot_convergence", "plot_convergence_bands", "plot_params", "plot_predictions"]


@contextlib.contextmanager
def _figure(path: Path, **subplots: Any) -> Iterator[tuple[Any, Any]]:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(**subplots)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _value_limits(values: Any, reference: float | None = None) -> tuple[float, float] | None:
    """y limits that keep the interesting range readable: diverged outliers are cut off."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return None
    top = max(float(np.quantile(finite, 0.9)), reference or 0.0)
    return float(finite.min()) * 0.97, top * 1.05


def plot_convergence(table: Any, path: Path, *, title: str, naive_val_rmse: float | None = None) -> None:
    """One study: each evaluation's validation RMSE and the best so far."""
    with _figure(path, figsize=(7, 4), dpi=120) as (_, ax):
        ax.scatter(table["evaluation"], table["value"], s=12, alpha=0.5, label="evaluation")
        ax.step(table["evaluation"], table["best_so_far"], where="post", color="C3", label="best so far")
        if naive_val_rmse is not None:
            ax.axhline(naive_val_rmse, color="0.4", linestyle="--", linewidth=1, label="naive last value")
        limits = _value_limits(table["value"], naive_val_rmse)
        if limits:
            ax.set_ylim(*limits)
        ax.set_xlabel("evaluation")
        ax.set_ylabel("validation RMSE")
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize=8)


def plot_predictions(predictions: Any, path: Path, *, title: str, unit_label: str) -> None:
    """One study: actual vs predicted on the test split."""
    with _figure(path, figsize=(9, 4), dpi=120) as (_, ax):
        ax.plot(predictions["time"], predictions["actual"], color="0.2", linewidth=1, label="actual")
        ax.plot(predictions["time"], predictions["predicted"], color="C3", linewidth=1, label="predicted")
        ax.set_xlabel("time")
        ax.set_ylabel(unit_label)
        ax.set_title(title)
        ax.legend(fontsize=8)


def plot_convergence_bands(bands: Any, path: Path, *, models: Sequence[str], optimizers: Sequence[str],
                           naive_val_rmse: float | None = None) -> None:  # fmt: skip
    """Median and inter-quartile band of best-so-far validation RMSE over seeds; a panel per model."""
    with _figure(path, ncols=len(models), figsize=(5.5 * len(models), 4), dpi=120, sharey=True, squeeze=False) as (
        _,
        axes,
    ):
        for ax, model in zip(axes[0], models):
            rows = bands[bands["model"] == model]
            for i, optimizer in enumerate(optimizers):
                line = rows[rows["optimizer"] == optimizer]
                if line.empty:
                    continue
                color = f"C{i}"
                ax.plot(line["evaluation"], line["median"], color=color, linewidth=1.5, label=optimizer)
                ax.fill_between(line["evaluation"], line["q25"], line["q75"], color=color, alpha=0.15, linewidth=0)
            if naive_val_rmse is not None:
                ax.axhline(naive_val_rmse, color="0.4", linestyle="--", linewidth=1, label="naive last value")
            limits = _value_limits(rows["q75"], naive_val_rmse)
            if limits:
                ax.set_ylim(float(np.nanmin(rows["median"])) * 0.97, limits[1])
            ax.set_title(model)
            ax.set_xlabel("evaluation")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("best-so-far validation RMSE\n(median, IQR band over seeds)")
        axes[0][-1].legend(fontsize=8, loc="upper right")


def plot_best_predictions(predictions: Any, path: Path, *, unit_label: str) -> None:
    """Actual vs predicted on test for each model's best cell (chosen by validation RMSE)."""
    labels = list(dict.fromkeys(predictions["label"]))
    with _figure(path, nrows=len(labels), figsize=(10, 3 * len(labels)), dpi=120, squeeze=False, sharex=True) as (
        _,
        axes,
    ):
        for ax, label in zip(axes[:, 0], labels):
            rows = predictions[predictions["label"] == label]
            ax.plot(rows["time"], rows["actual"], color="0.2", linewidth=1, label="actual")
            ax.plot(rows["time"], rows["naive_last"], color="0.6", linewidth=0.8, linestyle=":", label="naive last value")
            ax.plot(rows["time"], rows["predicted"], color="C3", linewidth=1, label="predicted")
            ax.set_title(label, fontsize=10)
            ax.set_ylabel(unit_label)
            ax.legend(fontsize=8, loc="upper left")
        axes[-1][0].set_xlabel("time")


def plot_params(trials: Any, path: Path, *, params: Sequence[tuple[str, bool, bool]],
                optimizers: Sequence[str]) -> None:  # fmt: skip
    """Each searched parameter against validation RMSE, every evaluation of every tuned cell.

    ``params`` are (name, log-scaled, integer) triples; log-scaled parameters get a log axis.
    """
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    n = len(params)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    limits = _value_limits(trials["value"])
    with _figure(path, nrows=nrows, ncols=ncols, figsize=(4.5 * ncols, 3.6 * nrows), dpi=120, squeeze=False) as (
        _,
        axes,
    ):
        flat = axes.ravel()
        for ax, (name, log, integer) in zip(flat, params):
            for i, optimizer in enumerate(optimizers):
                rows = trials[trials["optimizer"] == optimizer]
                ax.scatter(rows[f"param_{name}"], rows["value"], s=9, alpha=0.5, color=f"C{i}", label=optimizer)
            if log:
                ax.set_xscale("log")
                if integer:  # plain numbers (8, 16, 32, ...) read better than powers of ten
                    ax.xaxis.set_major_locator(LogLocator(base=2))
                    ax.xaxis.set_major_formatter("{x:.0f}")
                ax.xaxis.set_minor_formatter(NullFormatter())
            elif integer:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if limits:
                ax.set_ylim(*limits)
            ax.set_xlabel(name)
            ax.set_ylabel("validation RMSE")
            ax.grid(alpha=0.3)
        for ax in flat[n:]:
            ax.set_visible(False)
        flat[0].legend(fontsize=7, loc="upper right")
