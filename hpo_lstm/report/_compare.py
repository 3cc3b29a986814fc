"""The comparison report: read every cell back from the storage, tabulate, write, draw.

``write_comparison_report(folder)`` is what ``hpo-lstm compare`` ends with and what
``hpo-lstm report`` runs on its own: the storage is the only source, so both write the same
tables. No model is trained here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hpo_lstm._files import write_csv, write_text
from hpo_lstm._urls import mask_url
from hpo_lstm.report._plots import SINGLE_BATCH_NOTE, plot_best_predictions, plot_convergence_bands, plot_params
from hpo_lstm.report._run import lookback_text
from hpo_lstm.report._tables import (
    best_so_far,
    convergence_bands,
    fmt,
    model_comparison_table,
    optimizer_ranking_table,
    statistical_comparison_table,
    test_metrics_table,
)
from hpo_lstm.results import RunSummary

__all__ = ["Comparison", "load_comparison", "write_comparison_report"]


@dataclass(frozen=True)
class Comparison:
    """Everything recorded for a comparison, as plain tables."""

    manifest: dict[str, Any]
    cells: pd.DataFrame  # one row per finished cell
    convergence: pd.DataFrame  # one row per evaluation of a tuned cell
    trials: pd.DataFrame  # one row per evaluation of a tuned cell, with its params
    predictions: pd.DataFrame  # test predictions of each model's best tuned cell (by validation RMSE)
    unfinished: tuple[str, ...]  # cells of the manifest with no final result yet
    device: str


def load_comparison(folder: str | Path) -> Comparison:
    """Read the manifest in ``folder`` and every cell it names from the storage (checked, then
    opened read-only: :func:`hpo_lstm.store.manifest.open_recorded`)."""

    from hpo_lstm.store.manifest import MANIFEST, open_recorded, read_manifest
    from hpo_lstm.store.record import StudyRecord

    manifest = read_manifest(folder)
    storage = open_recorded(manifest["storage"], folder=Path(folder), named_in=Path(folder) / MANIFEST)
    budget = manifest["base"]["budget"]
    cell_rows, curve_rows, trial_rows, unfinished, devices = [], [], [], [], set()
    predictions: dict[str, dict[str, list]] = {}
    for cell in manifest["cells"]:
        record = StudyRecord.load(storage, cell["study"], manifest["storage"])
        if record is None or not record.is_complete(budget if cell["kind"] == "tuned" else 1):
            unfinished.append(cell["study"])
            continue
        summary, predicted = RunSummary.from_dict(record.summary), record.final[1]
        device = (
            summary.device if summary.precision == "fp32" else f"{summary.device} ({summary.precision} training steps)"
        )
        devices.add(device)
        predictions[cell["study"]] = predicted
        cell_rows.append(
            {
                **{k: cell[k] for k in ("study", "kind", "model", "optimizer", "seed")},
                "best_val_rmse": summary.best_val_rmse,
                **{f"test_{k}": summary.test[k] for k in ("rmse", "mae", "mape")},
                **_final_columns(summary.final_forecast),
                "n_evaluations": summary.n_evaluations,
                "n_trained": summary.n_trained,
                "n_pruned": summary.n_pruned,
                "n_failed": summary.n_failed,
                "wall_seconds": summary.wall_seconds,
                **{f"test_coverage_{level}": v["test_coverage"] for level, v in summary.intervals.items()},
                **_by_step_columns(summary.by_step),
                **{f"param_{k}": v for k, v in summary.best_params.items()},
                **_fold_columns(summary.folds),
            }
        )
        if cell["kind"] != "tuned":
            continue
        labels = {k: cell[k] for k in ("model", "optimizer", "seed")}
        evaluations = record.evaluations()
        values = [t.value if t.state.name in ("COMPLETE", "PRUNED") else math.nan for t in evaluations]
        for trial, value, best in zip(evaluations, values, best_so_far(values)):
            position = trial.user_attrs["evaluation"] + 1
            curve_rows.append({**labels, "evaluation": position, "value": value, "best_so_far": best})
            trial_rows.append(
                {
                    **labels,
                    "evaluation": position,
                    "value": value,
                    "state": trial.state.name,
                    "duplicate": "duplicate_of" in trial.user_attrs,
                    **{f"param_{k}": v for k, v in trial.params.items()},
                }
            )
    cells = pd.DataFrame(cell_rows)
    return Comparison(
        manifest=manifest,
        cells=cells,
        convergence=pd.DataFrame(curve_rows),
        trials=pd.DataFrame(trial_rows),
        predictions=_best_predictions(cells, predictions, manifest["models"]),
        unfinished=tuple(unfinished),
        device=", ".join(sorted(devices)) or "-",
    )


def _fold_columns(folds: dict[str, Any] | None) -> dict[str, Any]:
    """With --folds K: the chosen candidate's validation RMSE on each fold, and their spread."""
    values = (folds or {}).get("chosen_fold_val_rmse") or []
    if not values:
        return {}
    return {
        **{f"fold{k + 1}_val_rmse": v for k, v in enumerate(values)},
        "fold_val_rmse_spread": max(values) - min(values),
    }


def _fitness_text(base: dict[str, Any], cells: pd.DataFrame) -> str:
    folds = base.get("folds", 1)
    if folds == 1:
        return "fitness = validation RMSE."
    spread = cells["fold_val_rmse_spread"].mean() if "fold_val_rmse_spread" in cells else math.nan
    return (
        f"fitness = mean validation RMSE over {folds} rolling-origin folds (docs/backtesting.md); the chosen "
        f"candidates' RMSE differs by {fmt(spread)} between their best and worst fold on average (per cell in "
        "cells.csv)."
    )


def _final_columns(final: Any) -> dict[str, Any]:
    """A cell's final forecast: its kind and the best network's own test RMSE (absent for
    studies recorded before final forecasts)."""
    if not isinstance(final, dict) or not final:
        return {}
    best = (final.get("candidates") or {}).get("best") or {}
    return {"final_forecast": final.get("kind"), "network_test_rmse": best.get("test_rmse")}


def _by_step_columns(by_step: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """A multi-step cell's test RMSE and MAE per forecast step, and the naive forecast's."""
    if len(by_step) < 2:
        return {}
    return {
        f"{prefix}{metric}_step{row['step']}": row[f"{'naive_' if prefix == 'naive_' else ''}{metric}"]
        for row in by_step
        for prefix in ("test_", "naive_")
        for metric in ("rmse", "mae")
    }


def _best_predictions(
    cells: pd.DataFrame, predictions: Mapping[str, Mapping[str, list]], models: Sequence[str]
) -> pd.DataFrame:
    frames = []
    if cells.empty:
        return pd.DataFrame()
    tuned = cells[cells["kind"] == "tuned"]
    for model in models:
        rows = tuned[tuned["model"] == model]
        if rows.empty:
            continue
        best = rows.loc[rows["best_val_rmse"].idxmin()]
        frame = pd.DataFrame(predictions[best["study"]])
        if not pd.api.types.is_numeric_dtype(frame["time"]):  # ISO time stamps (str or object dtype)
            frame["time"] = pd.to_datetime(frame["time"])
        label = (
            f"{model} + {best['optimizer']}, seed {best['seed']} (best validation RMSE of {model}): "
            f"test RMSE {best['test_rmse']:.4g}"
        )
        frames.append(frame.assign(label=label, model=model, optimizer=best["optimizer"], seed=best["seed"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_comparison_report(folder: str | Path) -> dict[str, Any]:
    """Write report.md, the CSV tables and the PNG plots into ``folder``; returns the tables."""
    folder = Path(folder)
    comparison = load_comparison(folder)
    manifest, cells = comparison.manifest, comparison.cells
    models, optimizers = manifest["models"], manifest["optimizers"]
    if cells.empty:
        from hpo_lstm._errors import StudyFailedError

        raise StudyFailedError(f"No cell of comparison {manifest['name']!r} has finished yet; nothing to report.")
    baselines = manifest["data"]["baselines"]
    tables = {
        "test_metrics": test_metrics_table(cells, baselines, models=models, optimizers=optimizers),
        "against_statistical": statistical_comparison_table(cells, baselines, models=models, optimizers=optimizers),
        "model_comparison": model_comparison_table(cells, models=models, optimizers=optimizers),
        "optimizer_ranking": optimizer_ranking_table(cells, optimizers=optimizers),
        "convergence_bands": convergence_bands(comparison.convergence) if len(comparison.convergence) else None,
    }
    csv = {
        "cells": cells,
        "trials": comparison.trials,
        "convergence": comparison.convergence,
        "predictions": comparison.predictions,
        **{k: v for k, v in tables.items() if v is not None},
    }
    csv["baselines"] = pd.DataFrame([{"baseline": k, **v} for k, v in {**baselines, **_unscored(manifest)}.items()])
    for name, frame in csv.items():  # each file whole, renamed into place; a link there is replaced
        write_csv(folder / f"{name}.csv", frame)

    naive_val = manifest["data"]["val_baselines"]["naive_last"]["rmse"]
    plots = []
    single_batch = manifest["base"]["budget"] <= manifest["base"]["pop_size"]
    target = manifest["data"]["target"]
    if tables["convergence_bands"] is not None:
        plot_convergence_bands(
            tables["convergence_bands"],
            folder / "convergence.png",
            models=models,
            optimizers=optimizers,
            naive_val_rmse=naive_val,
            note=SINGLE_BATCH_NOTE if single_batch else None,
        )
        caption = "Convergence: best-so-far validation RMSE over evaluations, median and IQR over seeds"
        if single_batch:
            caption += " (the budget is one batch: 'convergence' is only the order within that batch)"
        plots.append((caption, "convergence.png"))
    if not comparison.predictions.empty:
        plot_best_predictions(comparison.predictions, folder / "predictions.png", unit_label=manifest["data"]["target"])
        plots.append(
            ("Predicted vs actual on the test split, each model's best cell by validation RMSE", "predictions.png")
        )
    if not comparison.trials.empty:
        space = manifest["base"]["space"]
        searched = [(name, spec["log"], spec["integer"]) for name, spec in space.items() if spec["low"] != spec["high"]]
        if searched:
            plot_params(
                comparison.trials,
                folder / "params.png",
                params=searched,
                optimizers=optimizers,
                models=models,
                value_label=f"validation RMSE ({target})",
            )
            plots.append(
                ("Searched parameters against validation RMSE (every evaluation of every tuned cell)", "params.png")
            )
    text = render_markdown(comparison, tables, plots)
    write_text(folder / "report.md", text)
    return {"folder": folder, "comparison": comparison, **tables}


# Markdown ---------------------------------------------------------------------------------------


def mean_std(row: Mapping[str, Any], metric: str) -> str:
    """``metric``'s mean over seeds with its sample std ("0.402 ± 0.012"), or the mean alone."""
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None or not math.isfinite(mean):
        return "-"
    return fmt(mean) if std is None or not math.isfinite(std) else f"{fmt(mean)} ± {fmt(std, 2)}"


def _display(model: str) -> str:
    return {"lstm": "LSTM", "bilstm": "BiLSTM", "gru": "GRU"}.get(model, model)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _protocol(comparison: Comparison) -> str:
    manifest = comparison.manifest
    base, data = manifest["base"], manifest["data"]
    windows = data["windows"]
    space = ", ".join(
        f"{name} {fmt(spec['low'])}..{fmt(spec['high'])}{' (log)' if spec['log'] else ''}"
        for name, spec in base["space"].items()
    )
    split = "/".join(f"{round(100 * s)}" for s in base["split"])
    untuned = manifest.get("untuned")
    transform = f"`{base['transform']}`"
    if isinstance(data.get("transform"), str) and data["transform"] != base["transform"]:  # "auto", resolved
        transform += f" (`{data['transform']}` on this data)"
    lines = [
        f"- **Data**: `{base['data']}`, target `{data['target']}` ({data['points']:,} points); chronological split "
        f"{split} % -> windows train {windows['train']:,} / validation {windows['val']:,} / test {windows['test']:,}.",
        f"- **Windows**: lookback {lookback_text(base.get('lookback'), base.get('space'))} -> horizon {base['horizon']}, transform {transform}; "
        "scaler fitted on the training rows only.",
        *(
            [f"- **Season**: {data['season']['text']}."]
            if isinstance(data.get("season"), dict) and isinstance(data["season"].get("text"), str)
            else []
        ),
        f"- **Search**: {space}; budget {base['budget']} evaluations per study (batches of {base['pop_size']}); "
        + _fitness_text(base, comparison.cells),
        *(
            [
                "- **One batch**: the budget fits in a single batch, so every candidate is chosen before any result is "
                "known; the convergence plot shows only the order within that batch, not convergence."
            ]
            if base["budget"] <= base["pop_size"]
            else []
        ),
        f"- **Training**: Adam, at most {base['max_epochs']} epochs, early stopping patience {base['patience']}, "
        f"batch {base['batch_size']}, pruning `{base['pruning']}`; device {comparison.device}.",
        f"- **Cells**: models {', '.join(manifest['models'])} x optimizers {', '.join(manifest['optimizers'])} x "
        f"seeds {', '.join(str(s) for s in manifest['seeds'])}"
        + (f"; untuned rows: {', '.join(f'{k} {fmt(v)}' for k, v in untuned.items())}" if untuned else "")
        + ".",
        "- **Test**: each study's best candidate, with the weights its search trained (nothing is retrained), scored "
        "once on the test split, "
        f"in the series' own units (`{data['target']}`); RMSE = sqrt(MSE). Mean ± sample std over seeds.",
    ]
    kinds = sorted(set(comparison.cells["final_forecast"].dropna())) if "final_forecast" in comparison.cells else []
    if kinds and kinds != ["best"]:
        lines.append(
            f"- **Final forecasts**: each cell's test metrics are those of its final forecast ({', '.join(kinds)}: "
            "docs/panel.md), which combines its networks with AutoETS and AutoARIMA; `cells.csv` also gives "
            "`network_test_rmse`, the best network alone."
        )
    if comparison.unfinished:
        lines.append(
            f"- **Unfinished**: {len(comparison.unfinished)} cell(s) have no result yet and are left out; "
            "run the same compare command again to finish them."
        )
    return "\n".join(lines)


def _unscored(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The statistical baselines that were not scored (failed, timed out, skipped), as recorded."""
    unscored = manifest["data"].get("unscored_baselines")
    if not isinstance(unscored, Mapping):  # a manifest of an earlier hpo-lstm
        return {}
    return {str(k): dict(v) for k, v in unscored.items() if isinstance(v, Mapping)}


def _baseline_label(name: str, entry: Mapping[str, Any]) -> str:
    from hpo_lstm.baselines import LABELS

    if name == "seasonal_naive" and entry.get("season"):
        return f"seasonal naive ({entry['season']})"
    return LABELS.get(name, name.replace("_", " "))  # seasonal_naive_52 of an earlier hpo-lstm


def _statistical_verdict(
    metrics: pd.DataFrame, baselines: Mapping[str, Mapping[str, Any]], unscored: Mapping[str, Mapping[str, Any]]
) -> str:
    from hpo_lstm.baselines import BASELINES, statistical_verdict

    tuned = metrics[(metrics["model"] != "-") & (metrics["method"] != "untuned")]
    entries = {k: v for k, v in {**baselines, **unscored}.items() if k in BASELINES}
    if tuned.empty or not entries:
        return ""
    best = tuned.loc[tuned["test_rmse_mean"].idxmin()]
    return " " + statistical_verdict(
        float(best["test_rmse_mean"]),
        entries,
        model=f"best tuned row ({best['model']} + {best['method']}, mean over seeds)",
    )


def _statistical_section(
    table: pd.DataFrame, baselines: Mapping[str, Mapping[str, Any]], unscored: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """### Against statistical models: each row's mean test RMSE relative to each scored
    statistical baseline, and the seeds that beat it; the baselines not scored, and why."""
    from hpo_lstm.baselines import BASELINES

    parts = ["### Against statistical models", ""]
    statistical = {k: v for k, v in baselines.items() if k in BASELINES}
    if table.empty or not statistical:
        parts += [
            "No statistical baseline was scored on this comparison's test points."
            if not statistical
            else "No cell has finished yet.",
            "",
        ]
    else:
        order = sorted(statistical, key=lambda n: float(statistical[n]["rmse"]))
        header = [
            "model",
            "optimizer",
            "seeds",
            "mean test RMSE",
            *(
                f"vs {_baseline_label(n, statistical[n])}, RMSE {fmt(statistical[n]['rmse'])}"
                + (" (best)" if i == 0 else "")
                for i, n in enumerate(order)
            ),
        ]
        rows = []
        for _, row in table.iterrows():
            rows.append(
                [
                    row["model"],
                    row["method"],
                    str(int(row["n_seeds"])),
                    fmt(row["test_rmse_mean"]),
                    *(
                        f"{row[f'relative_to_{n}']:+.1%}, {int(row[f'seeds_better_than_{n}'])}/{int(row['n_seeds'])} "
                        "seeds better"
                        for n in order
                    ),
                ]
            )
        parts += [_table(header, rows), ""]
        described = [
            f"{_baseline_label(n, statistical[n])}: {statistical[n].get('model') or '-'}"
            + (f", fitted in {fmt(statistical[n]['fit_seconds'], 3)} s" if statistical[n].get("fit_seconds") else "")
            for n in order
        ]
        parts += [
            "Relative: the row's mean test RMSE over seeds against the baseline's (negative: the network is "
            "better); seeds better: cells whose own test RMSE is below the baseline's. The baselines are "
            "fitted once on the training and validation rows and forecast every test point from the same "
            "origin as the networks, with every observation up to it and no refit "
            f"({'; '.join(described)}).",
            "",
        ]
    for name, entry in unscored.items():
        parts += [f"- **{_baseline_label(name, entry)} not scored** ({entry.get('status')}): {entry.get('reason')}"]
    if unscored:
        parts.append("")
    return parts


def _verdict(metrics: pd.DataFrame, baselines: Mapping[str, Mapping[str, Any]]) -> str:
    naive = baselines["naive_last"]["rmse"]
    tuned = metrics[(metrics["model"] != "-") & (metrics["method"] != "untuned")]
    if tuned.empty:
        return "No tuned cell has finished yet."
    beat = tuned[tuned["test_rmse_mean"] < naive]
    best = tuned.loc[tuned["test_rmse_mean"].idxmin()]
    ratio = best["test_rmse_mean"] / naive
    text = (
        f"{len(beat)} of {len(tuned)} tuned model x optimizer rows beat the last-value naive forecast "
        f"(test RMSE {fmt(naive)}) on mean test RMSE; "
    )
    if best["test_rmse_mean"] < naive:
        text += f"the lowest, {best['model']} + {best['method']}, is {ratio:.1%} of naive."
    else:
        text += (
            f"none does: the lowest, {best['model']} + {best['method']}, is {ratio:.1%} of naive. "
            "A tuned network is not worth having on this series with this protocol."
        )
    return text


def _by_step_section(cells: pd.DataFrame) -> list[str]:
    """Test RMSE and MAE per forecast step of a multi-step comparison: model x optimizer means
    over seeds, with the naive forecast of the same steps."""
    steps = sorted(int(c.rsplit("step", 1)[1]) for c in cells.columns if c.startswith("test_rmse_step"))
    if not steps:
        return []
    header = ["model", "optimizer", *(f"step {k} RMSE / MAE" for k in steps)]
    rows = []
    for (model, optimizer), group in cells.groupby(["model", "optimizer"], sort=False):
        rows.append(
            [
                model,
                optimizer,
                *(
                    f"{fmt(group[f'test_rmse_step{k}'].mean())} / {fmt(group[f'test_mae_step{k}'].mean())}"
                    for k in steps
                ),
            ]
        )
    first = cells.iloc[0]
    rows.append(
        [
            "naive: last value",
            "",
            *(f"{fmt(first[f'naive_rmse_step{k}'])} / {fmt(first[f'naive_mae_step{k}'])}" for k in steps),
        ]
    )
    return [
        "**Per forecast step** (test, mean over seeds; every model forecasts steps 1.."
        f"{steps[-1]} at once from the same windows)",
        "",
        _table(header, rows),
        "",
    ]


def _coverage_line(cells: pd.DataFrame) -> list[str]:
    levels = sorted(c.removeprefix("test_coverage_") for c in cells.columns if c.startswith("test_coverage_"))
    if not levels:
        return []
    text = ", ".join(f"{level}% intervals covered {cells[f'test_coverage_{level}'].mean():.1%}" for level in levels)
    return [
        f"**Prediction intervals** (split conformal, from validation residuals): on test, {text} of the actual "
        "values (mean over cells).",
        "",
    ]


def render_markdown(comparison: Comparison, tables: Mapping[str, Any], plots: Sequence[tuple[str, str]]) -> str:
    manifest = comparison.manifest
    metrics = tables["test_metrics"]
    baselines = manifest["data"]["baselines"]
    unscored = _unscored(manifest)
    verdict = _verdict(metrics, baselines) + _statistical_verdict(metrics, baselines, unscored)
    parts = [f"# Comparison `{manifest['name']}`", "", _protocol(comparison), "", f"**Verdict.** {verdict}", ""]

    parts += ["## 1. Test metrics", ""]
    rows = []
    for _, row in metrics.iterrows():
        if row["model"] == "-":
            label = (
                "naive: last value"
                if row["method"] == "naive_last"
                else _baseline_label(row["method"], baselines.get(row["method"], {}))
            )
            rows.append(
                [
                    label,
                    "",
                    "-",
                    fmt(row["test_rmse_mean"]),
                    fmt(row["test_mae_mean"]),
                    fmt(row["test_mape_mean"]),
                    "-",
                    "-",
                    "-",
                    "-",
                ]
            )
            continue
        rows.append(
            [
                row["model"],
                row["method"],
                str(int(row["n_seeds"])),
                mean_std(row, "test_rmse"),
                mean_std(row, "test_mae"),
                mean_std(row, "test_mape"),
                mean_std(row, "best_val_rmse"),
                fmt(row["n_evaluations_mean"], 3),
                fmt(row["n_trained_mean"], 3),
                fmt(row["wall_seconds_mean"], 3),
            ]
        )
    parts.append(
        _table(
            [
                "model",
                "optimizer",
                "seeds",
                "test RMSE",
                "test MAE",
                "test MAPE %",
                "best val RMSE",
                "evaluations",
                "distinct trainings",
                "wall s / cell",
            ],
            rows,
        )
    )
    parts += [
        "",
        "MAPE is left out (-) where the actual values cross zero. Untuned: fixed textbook settings, "
        "same epochs and early stopping. Wall s / cell: each cell's own wall time; a comparison runs "
        "as many cells at once as it has local workers, so these overlap and add up to more than "
        "the comparison took.",
        "",
    ]
    parts += _statistical_section(tables["against_statistical"], baselines, unscored)
    parts += _by_step_section(comparison.cells)
    parts += _coverage_line(comparison.cells)

    comparison_table = tables["model_comparison"]
    if len(comparison_table):
        pairs = comparison_table[["model_a", "model_b"]].drop_duplicates().itertuples(index=False)
        for model_a, model_b in pairs:
            parts += [f"## 2. {_display(model_a)} vs {_display(model_b)}", ""]
            rows = []
            part = comparison_table[(comparison_table["model_a"] == model_a) & (comparison_table["model_b"] == model_b)]
            for _, row in part.iterrows():
                rows.append(
                    [
                        row["method"],
                        fmt(row["test_rmse_a"]),
                        fmt(row["test_rmse_b"]),
                        f"{row['relative_difference']:+.1%}",
                        f"{row['b_better_in']}/{row['n_pairs']}",
                        fmt(row["p_value"], 3),
                        row["note"],
                    ]
                )
            parts.append(
                _table(
                    [
                        "optimizer",
                        f"{model_a} test RMSE",
                        f"{model_b} test RMSE",
                        f"{model_b} vs {model_a}",
                        f"seeds {model_b} better",
                        "Wilcoxon p",
                        "note",
                    ],
                    rows,
                )
            )
            parts.append("")
        parts += [
            "Paired over seeds (the same seed trains both models). With fewer than 6 seeds no "
            "two-sided signed-rank test can reach p < 0.05.",
            "",
        ]
    ranking = tables["optimizer_ranking"]
    parts += ["## 3. Optimizer ranking", ""]
    rows = []
    for _, row in ranking.iterrows():
        versus = "-"
        if isinstance(row.get("vs_baseline_note"), str):
            versus = (
                f"{int(row['vs_baseline_wins'])}/{int(row['vs_baseline_pairs'])} wins, "
                f"{row['vs_baseline_relative']:+.1%}, p {fmt(row['vs_baseline_p_value'], 3)}"
            )
        rows.append(
            [
                row["optimizer"],
                fmt(row["mean_rank"], 3),
                fmt(row["best_val_rmse_mean"]),
                fmt(row["test_rmse_mean"]),
                versus,
            ]
        )
    parts.append(
        _table(
            ["optimizer", "mean rank", "mean best val RMSE", "mean test RMSE", "vs random search (best val RMSE)"], rows
        )
    )
    parts += [
        "",
        f"Rank 1 = lowest best validation RMSE within a model x seed block, at equal budget "
        f"({int(ranking['n_blocks'].max()) if len(ranking) else 0} blocks); ties share ranks. "
        "'vs random search': blocks where the optimizer found a lower validation RMSE than random search, the "
        "mean relative difference, and a paired Wilcoxon test.",
        "",
    ]
    if plots:
        parts += ["## 4. Plots", ""]
        for caption, path in plots:
            parts += [f"**{caption}**", "", f"![{caption}]({path})", ""]
    parts += [
        "## Files",
        "",
        "`cells.csv` (one row per study: the numbers every table is computed from), `test_metrics.csv`, "
        "`model_comparison.csv`, `optimizer_ranking.csv`, `against_statistical.csv`, `baselines.csv`, `convergence.csv` and "
        "`convergence_bands.csv`, `trials.csv`, `predictions.csv`; every trial is in the Optuna storage "
        f"`{mask_url(manifest['storage'])}`. Rebuild this report with `hpo-lstm report <this folder>`.",
        "",
    ]
    return "\n".join(parts)
