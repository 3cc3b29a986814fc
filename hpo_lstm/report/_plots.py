"""Drawing only: every function takes tables that were computed (and tested) elsewhere."""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SINGLE_BATCH_NOTE",
    "plot_best_predictions",
    "plot_convergence",
    "plot_convergence_bands",
    "plot_forecast",
    "plot_params",
    "plot_predictions",
]


@contextlib.contextmanager
def _figure(path: Path, **subplots: Any) -> Iterator[tuple[Any, Any]]:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    from hpo_lstm._files import replacing

    fig, axes = plt.subplots(**subplots)
    try:
        yield fig, axes
        fig.tight_layout()
        with replacing(path) as temporary:  # a whole file renamed into place; a link there replaced
            fig.savefig(temporary, format=Path(path).suffix.lstrip(".") or None)
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


# How each kind of evaluation is drawn in a run's convergence plot (see convergence_table).
_KIND_STYLE = {
    # "trained" counts every training that ran, as the screen and summary.json do: the legend
    # names the two kinds of it.
    "trained": {"marker": "o", "color": "C0", "s": 18, "alpha": 0.6, "label": "trained to the end"},
    "pruned": {"marker": "v", "color": "C1", "s": 26, "alpha": 0.9, "label": "trained, pruned (best value reached)"},
    "memo": {
        "marker": "s",
        "facecolors": "none",
        "edgecolors": "0.35",
        "s": 26,
        "linewidths": 0.8,
        "label": "memo (repeated candidate)",
    },
    "failed": {"marker": "x", "color": "k", "s": 30, "linewidths": 1.2, "label": "failed (no value; drawn at the top)"},
}
SINGLE_BATCH_NOTE = "one batch: the order within the batch, not convergence"


def plot_convergence(
    table: Any, path: Path, *, title: str, value_label: str = "validation RMSE", naive_val_rmse: float | None = None
) -> None:
    """One study: each evaluation's validation RMSE by kind (trained, pruned, memo, failed),
    the best so far, and the batch (generation) boundaries.

    Failed evaluations have no value and sit on the top edge (an x); values above the top
    (diverged outliers the y range leaves out) sit there too, as triangles pointing up."""
    from matplotlib.ticker import MaxNLocator

    with _figure(path, figsize=(9, 4.2), dpi=120) as (_, ax):
        x, values = np.asarray(table["evaluation"]), np.asarray(table["value"], dtype=float)
        kinds, batches = np.asarray(table["kind"]), np.asarray(table["batch"])
        limits = _value_limits(values, naive_val_rmse) or (0.0, 1.0)
        ax.set_ylim(*limits)
        top = limits[1]
        starts = x[1:][batches[1:] != batches[:-1]]
        for i, start in enumerate(starts):
            ax.axvline(start - 0.5, color="0.8", linewidth=0.8, zorder=0, label="batch boundary" if i == 0 else None)
        for kind, style in _KIND_STYLE.items():
            mine = kinds == kind
            if not mine.any():
                continue
            style = {**style, "label": f"{style['label']}: {int(mine.sum())}"}
            shown = mine & ~(values > top)  # NaN (failed, or a memo of a failed candidate) on the top edge
            ax.scatter(x[shown], np.where(np.isfinite(values), values, top)[shown], zorder=3, clip_on=False, **style)
            above = mine & (values > top)
            if above.any():
                label = f"{kind}, above the plot: {int(above.sum())}"
                ax.scatter(
                    x[above],
                    np.full(int(above.sum()), top),
                    zorder=3,
                    clip_on=False,
                    **{**style, "marker": "^", "label": label},
                )
        ax.step(x, table["best_so_far"], where="post", color="C3", linewidth=1.5, label="best so far", zorder=2)
        if naive_val_rmse is not None:
            ax.axhline(naive_val_rmse, color="0.4", linestyle="--", linewidth=1, label="naive last value")
        if len(x) > 1 and len(set(batches.tolist())) == 1:
            ax.text(
                1.01,
                0.0,
                textwrap.fill(SINGLE_BATCH_NOTE, 26),
                transform=ax.transAxes,
                va="bottom",
                fontsize=9,
                style="italic",
                color="0.2",
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("evaluation")
        ax.set_ylabel(value_label)
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)


def plot_predictions(predictions: Any, path: Path, *, title: str, unit_label: str, zoom: float = 0.1) -> None:
    """One study on the test split: actual, predicted and the naive last-value forecast, over
    the whole split and zoomed on its last ``zoom`` share (at least 20 points), where the
    naive forecast's one-step lag can be seen. With several forecast steps (a ``step``
    column), step 1 is drawn, and the last step's forecast of the same times beside it."""
    steps = sorted(set(predictions["step"])) if "step" in predictions.columns else [1]
    far = predictions[predictions["step"] == steps[-1]] if len(steps) > 1 else None
    if len(steps) > 1:
        predictions = predictions[predictions["step"] == steps[0]]
    n = len(predictions)
    last = predictions.iloc[max(0, n - max(20, math.ceil(zoom * n))) :]
    with _figure(path, nrows=2, figsize=(9, 6), dpi=120, gridspec_kw={"height_ratios": [3, 2]}) as (_, axes):
        for ax, rows in zip(axes, (predictions, last)):
            ax.plot(rows["time"], rows["actual"], color="0.15", linewidth=1.1, label="actual")
            ax.plot(
                rows["time"], rows["naive_last"], color="C0", linewidth=0.9, linestyle="--", label="naive: last value"
            )
            ax.plot(
                rows["time"],
                rows["predicted"],
                color="C3",
                linewidth=1.1,
                label="predicted" if far is None else f"predicted, step {steps[0]}",
            )
            if far is not None:
                span = far[(far["time"] >= rows["time"].iloc[0]) & (far["time"] <= rows["time"].iloc[-1])]
                ax.plot(
                    span["time"], span["predicted"], color="C2", linewidth=0.9, label=f"predicted, step {steps[-1]}"
                )
            ax.set_ylabel(unit_label)
            ax.grid(alpha=0.3)
        if len(last) < n:
            axes[0].axvspan(last["time"].iloc[0], last["time"].iloc[-1], color="0.9", zorder=0, label="zoomed below")
        axes[0].set_title(title, fontsize=10)
        axes[0].legend(fontsize=8, loc="upper left", ncol=4)
        axes[1].set_title(f"last {len(last)} of {n} test points", fontsize=9)
        axes[1].set_xlabel("time")


def plot_convergence_bands(
    bands: Any,
    path: Path,
    *,
    models: Sequence[str],
    optimizers: Sequence[str],
    naive_val_rmse: float | None = None,
    note: str | None = None,
) -> None:
    """Median and inter-quartile band of best-so-far validation RMSE over seeds; a panel per model.
    ``note`` (e.g. ``SINGLE_BATCH_NOTE``) is written in the first panel's lower left corner."""
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
        if note:
            axes[0][0].text(
                0.02,
                0.03,
                note,
                transform=axes[0][0].transAxes,
                fontsize=8,
                style="italic",
                color="0.2",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
        axes[0][-1].legend(fontsize=8, loc="upper right")


def plot_best_predictions(predictions: Any, path: Path, *, unit_label: str, zoom: float = 0.1) -> None:
    """Actual vs predicted on test for each model's best cell (chosen by validation RMSE): the
    whole test split on the left, its last ``zoom`` share (at least 20 points) on the right."""
    labels = list(dict.fromkeys(predictions["label"]))
    if "step" in predictions.columns:  # several forecast steps: the first step's forecasts
        predictions = predictions[predictions["step"] == predictions["step"].min()]
    with _figure(
        path,
        nrows=len(labels),
        ncols=2,
        figsize=(13, 3 * len(labels)),
        dpi=120,
        squeeze=False,
        gridspec_kw={"width_ratios": [3, 1]},
    ) as (_, axes):
        for (whole, near), label in zip(axes, labels):
            rows = predictions[predictions["label"] == label]
            last = rows.iloc[max(0, len(rows) - max(20, math.ceil(zoom * len(rows)))) :]
            for ax, part in ((whole, rows), (near, last)):
                ax.plot(part["time"], part["actual"], color="0.2", linewidth=1, label="actual")
                ax.plot(
                    part["time"],
                    part["naive_last"],
                    color="0.6",
                    linewidth=0.8,
                    linestyle=":",
                    label="naive last value",
                )
                ax.plot(part["time"], part["predicted"], color="C3", linewidth=1, label="predicted")
                ax.tick_params(axis="x", labelrotation=30, labelsize=8)
            whole.set_title(label, fontsize=10)
            near.set_title(f"the last {len(last)} test points", fontsize=9)
            whole.set_ylabel(unit_label)
            whole.legend(fontsize=8, loc="upper left")
        axes[-1][0].set_xlabel("time")


def plot_params(
    trials: Any,
    path: Path,
    *,
    params: Sequence[tuple[str, bool, bool]],
    optimizers: Sequence[str],
    models: Sequence[str] | None = None,
    value_label: str = "validation RMSE",
) -> None:
    """Each searched parameter against validation RMSE, every evaluation of every tuned cell:
    a row of panels per model (``models``; by default those of the ``model`` column, in order
    of appearance), a colour per optimizer.

    ``params`` are (name, log-scaled, integer) triples; log-scaled parameters get a log axis.
    """
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    if models is None:
        models = list(dict.fromkeys(trials["model"])) if "model" in trials.columns else []
    rows_of = [(m, trials[trials["model"] == m]) for m in models] or [(None, trials)]
    n = len(params)
    limits = _value_limits(trials["value"])
    with _figure(
        path,
        nrows=len(rows_of),
        ncols=n,
        figsize=(4.2 * n + 1.2, 3.3 * len(rows_of)),
        dpi=120,
        squeeze=False,
        sharey=True,
    ) as (_, axes):
        for axes_row, (model, of_model) in zip(axes, rows_of):
            for ax, (name, log, integer) in zip(axes_row, params):
                for i, optimizer in enumerate(optimizers):
                    rows = of_model[of_model["optimizer"] == optimizer]
                    ax.scatter(
                        rows[f"param_{name}"],
                        rows["value"],
                        s=10,
                        alpha=0.55,
                        color=f"C{i}",
                        linewidths=0,
                        label=optimizer,
                    )
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
                ax.grid(alpha=0.3)
                if model is not None:
                    ax.set_title(f"{model}: {name}", fontsize=10)
            axes_row[0].set_ylabel(value_label if model is None else f"{model}\n{value_label}")
        axes[0][-1].legend(
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=8,
            title="optimizer",
            title_fontsize=8,
            markerscale=1.5,
        )


def _wall_clock(frame: Any) -> Any:
    """``frame`` with a zoned ``time`` column as wall-clock times without the zone (matplotlib
    draws numpy datetimes, which hold no zone)."""
    import pandas as pd

    times = frame["time"]
    if isinstance(getattr(times, "dtype", None), pd.DatetimeTZDtype):
        return frame.assign(time=times.dt.tz_localize(None))
    return frame


def plot_forecast(history: Any, forecast: Any, path: Path, *, title: str, unit_label: str, horizon: int = 1) -> None:
    """A forecast past the end of the data: the recent ``history`` (time, value), then the
    ``forecast`` (time, forecast, lower_80, upper_80, lower_95, upper_95) with its 95% and 80%
    bands. Steps past the model's ``horizon`` are recursive, their bands approximate: a dotted
    line marks where they start. Zoned time stamps are drawn at their wall-clock time."""
    history, forecast = _wall_clock(history), _wall_clock(forecast)
    with _figure(path, figsize=(9, 4.2), dpi=120) as (_, ax):
        ax.plot(history["time"], history["value"], color="0.15", linewidth=1.1, label="observed")
        ax.fill_between(
            forecast["time"],
            forecast["lower_95"],
            forecast["upper_95"],
            color="C3",
            alpha=0.15,
            linewidth=0,
            label="95% interval",
        )
        ax.fill_between(
            forecast["time"],
            forecast["lower_80"],
            forecast["upper_80"],
            color="C3",
            alpha=0.3,
            linewidth=0,
            label="80% interval",
        )
        # Joined to the last observation, so the forecast reads as its continuation.
        times = [history["time"].iloc[-1], *forecast["time"]]
        values = [history["value"].iloc[-1], *forecast["forecast"]]
        ax.plot(
            times,
            values,
            color="C3",
            linewidth=1.3,
            marker="o" if len(forecast) <= 30 else None,
            markersize=3,
            markevery=list(range(1, len(values))),
            label="forecast",
        )
        ax.axvline(
            history["time"].iloc[-1], color="0.5", linewidth=0.8, linestyle="--", zorder=0, label="last observation"
        )
        if len(forecast) > horizon:
            ax.axvline(
                forecast["time"].iloc[horizon - 1],
                color="0.5",
                linewidth=0.8,
                linestyle=":",
                zorder=0,
                label=f"past step {horizon}: recursive, approximate bands",
            )
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit_label)
        ax.set_xlabel("time")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
