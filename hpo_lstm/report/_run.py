"""What ``hpo-lstm run`` writes, and ``hpo-lstm report RUNFOLDER`` writes again: summary.json,
report.md, trials.csv, predictions.csv, convergence.csv/.png, predictions.png.

Every file is written from what the study's storage recorded (its final summary and test
predictions, and its trials), by one function (``write_run_files``), so the report of a run
rebuilds the files the run wrote, byte for byte where they are text. Plot data is computed
into plain tables first (``convergence_table``) and drawn second, so tests check numbers, not
pixels. Nothing here imports torch or the study runner.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpo_lstm._errors import ConfigError
from hpo_lstm._files import check_real_folder, ensure_writable, write_csv, write_text
from hpo_lstm._json import dumps
from hpo_lstm._urls import mask_url
from hpo_lstm.report._plots import plot_convergence, plot_predictions
from hpo_lstm.report._tables import best_so_far, fmt
from hpo_lstm.results import RunSummary
from hpo_lstm.store.model_store import write_model_folder
from hpo_lstm.store.record import predictions_frame

if TYPE_CHECKING:
    from hpo_lstm.store.record import StudyRecord
    from hpo_lstm.study import StudyResult

__all__ = [
    "KINDS",
    "RUN_FILES",
    "check_run_folder",
    "convergence_table",
    "predictions_frame",
    "rebuild_run_outputs",
    "run_report_markdown",
    "target_label",
    "write_record",
    "write_run_files",
    "write_run_outputs",
]

RUN_FILES = (
    "summary.json",
    "report.md",
    "trials.csv",
    "predictions.csv",
    "convergence.csv",
    "convergence.png",
    "predictions.png",
)
MODEL_FOLDER = "model"  # the final model: model.json and weights.safetensors
KINDS = ("trained", "pruned", "memo", "failed")

# Units of built-in datasets' targets, keyed by (dataset, target); a CSV's unit is unknown.
_UNITS = {("co2", "co2"): "ppmv"}
# summary.json lists these first (the storage keeps the summary with sorted keys).
_SUMMARY_FIRST = (
    "study_name",
    "optimizer",
    "model",
    "dataset",
    "target",
    "features",
    "budget",
    "pop_size",
    "n_evaluations",
    "n_trained",
    "n_duplicates",
    "n_replayed",
    "n_pruned",
    "n_failed",
    "best_params",
    "best_val_rmse",
    "test",
    "baselines",
    "val_baselines",
    "beats_naive",
)
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")


# Tables -----------------------------------------------------------------------------------------


def convergence_table(trials: Any) -> pd.DataFrame:
    """One row per evaluation of a study, in the optimizer's order.

    ``trials`` is the study's trials as Optuna's ``trials_dataframe()`` lays them out (the
    layout of trials.csv) or a sequence of FrozenTrials. An evaluation is a finished trial
    hpo-lstm recorded (user attr ``evaluation``) that is not an attempt a crash interrupted
    (``failure`` "interrupted"). Columns: ``evaluation`` (1-based), ``batch`` (the generation
    it was asked in), ``value`` (validation RMSE; NaN when it failed), ``best_so_far`` and
    ``kind``: memo (a repeated candidate, answered from the record: ``duplicate_of``), failed,
    pruned (a training the pruner stopped; its value is the best it reached) or trained.
    """
    frame = trials if isinstance(trials, pd.DataFrame) else _trials_frame(trials)
    empty = pd.Series(np.nan, index=frame.index, dtype=object)
    attrs = ("evaluation", "generation", "duplicate_of", "failure")
    col = {name: frame.get(f"user_attrs_{name}", empty) for name in attrs}
    state = frame.get("state", empty).astype(str)
    keep = col["evaluation"].notna() & (col["failure"] != "interrupted") & state.isin(_FINISHED)
    rows = pd.DataFrame(
        {
            "evaluation": col["evaluation"][keep].astype(int) + 1,
            "batch": col["generation"][keep].astype(int),
            "value": frame.get("value", empty)[keep].astype(float).where(state[keep] != "FAIL"),
            "kind": np.select(
                [col["duplicate_of"][keep].notna(), state[keep] == "FAIL", state[keep] == "PRUNED"],
                ["memo", "failed", "pruned"],
                "trained",
            ),
        }
    ).sort_values("evaluation", kind="stable")
    rows.insert(3, "best_so_far", best_so_far(rows["value"].to_numpy()))
    return rows.reset_index(drop=True)


def _trials_frame(trials: Iterable[Any]) -> pd.DataFrame:
    """FrozenTrials as the columns of ``trials_dataframe()`` that ``convergence_table`` reads."""
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        rows.append(
            {
                "value": trial.value if trial.value is not None else math.nan,
                "state": trial.state.name,
                **{f"user_attrs_{k}": attrs.get(k) for k in ("evaluation", "generation", "duplicate_of", "failure")},
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "value",
            "state",
            "user_attrs_evaluation",
            "user_attrs_generation",
            "user_attrs_duplicate_of",
            "user_attrs_failure",
        ],
    )


def lookback_text(lookback: Any, space: Mapping[str, Any] | None) -> str:
    """``24``, or ``"6..24 (searched)"`` when the search space holds the lookback."""
    spec = (space or {}).get("lookback")
    if isinstance(spec, Mapping) and "low" in spec and "high" in spec:
        return f"{int(spec['low'])}..{int(spec['high'])} (searched)"
    return str(lookback)


def target_label(summary: Mapping[str, Any]) -> str:
    """The target's name for axis labels, with its unit where known ("co2, ppmv")."""
    target = str(summary.get("target") or "target")
    unit = summary.get("unit") or _UNITS.get((str(summary.get("dataset")), target))
    return f"{target}, {unit}" if unit else target


# Writing ----------------------------------------------------------------------------------------


def write_run_files(
    folder: Path, *, summary: Mapping[str, Any], predictions: pd.DataFrame, trials: pd.DataFrame, target: str
) -> dict[str, Any]:
    """Write a run's files (``RUN_FILES``) into ``folder`` from its recorded data: the final
    ``summary``, the test ``predictions`` (time, actual, predicted, naive_last), the study's
    ``trials`` (Optuna's ``trials_dataframe()``) and the ``target`` label of the axes.
    Returns the summary as written to summary.json.

    Each file is written whole and renamed into place (:mod:`hpo_lstm._files`): a kill leaves
    the old file or the new one, and a symbolic link in ``folder`` is replaced, not followed.
    The storage URL is written with its password masked."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = _ordered(summary)
    if isinstance(summary.get("storage"), str):  # recorded unmasked by an earlier hpo-lstm
        summary["storage"] = mask_url(summary["storage"])
    write_text(folder / "summary.json", dumps(summary, indent=2) + "\n")
    write_text(folder / "report.md", run_report_markdown(summary))
    table = convergence_table(trials)
    for name, frame in (("trials.csv", trials), ("predictions.csv", predictions), ("convergence.csv", table)):
        write_csv(folder / name, frame)
    label = f"{summary['model']} + {summary['optimizer']} on {summary['dataset']}"
    plot_convergence(
        table,
        folder / "convergence.png",
        title=f"{label}: validation RMSE per evaluation",
        value_label=f"validation RMSE ({target})",
        naive_val_rmse=summary["val_baselines"]["naive_last"]["rmse"],
    )
    test = summary["test"]["rmse"]
    naive = summary["baselines"]["naive_last"]["rmse"]
    plot_predictions(
        predictions,
        folder / "predictions.png",
        title=f"{label}: test RMSE {test:.4g} (naive last value {naive:.4g})",
        unit_label=target,
    )
    return summary


def check_run_folder(folder: Path) -> None:
    """Refuse, before a run trains anything, a result folder its files could not be written to
    (:func:`hpo_lstm._files.ensure_writable`; the folder is not made here)."""
    ensure_writable(Path(folder), create=False)


def write_run_outputs(result: StudyResult, folder: Path) -> dict[str, Any]:
    """Write the run's files into ``folder`` from what its storage recorded (``result.record``,
    read through the storage the run held open; as ``hpo-lstm report FOLDER`` does later from
    the storage it opens); returns the summary written to summary.json."""
    record = result.record
    if record is None:  # a result made by hand, not by run_study: read the storage it names
        from hpo_lstm.store.record import StudyRecord, open_storage

        url = result.config.storage_url
        record = StudyRecord.load(open_storage(url), result.config.study_name, url)
        if record is None:
            raise ConfigError(f"Storage {mask_url(url)!r} holds no study {result.config.study_name!r}.")
    return write_record(Path(folder), record)


def rebuild_run_outputs(folder: str | Path) -> dict[str, Any]:
    """Write a run's files in ``folder`` again from the storage its summary.json names (the
    study is only read; SQLite files are opened read-only); returns the summary written.

    Refused (:class:`ConfigError`) when summary.json is missing or unreadable, the storage is
    not an hpo-lstm storage (:func:`hpo_lstm.store.manifest.open_recorded`: checked before it is
    opened, never written), or it holds no such study or no final result of it."""
    from hpo_lstm.store.manifest import open_recorded
    from hpo_lstm.store.record import StudyRecord

    folder = Path(folder)
    path = folder / "summary.json"
    try:
        written = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{str(folder)!r} holds no summary.json; give the folder a run wrote.") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read {str(path)!r}: {exc}.") from None
    name = written.get("study_name") if isinstance(written, dict) else None
    url = written.get("storage") if isinstance(written, dict) else None
    if not isinstance(name, str) or not isinstance(url, str):
        raise ConfigError(f"{str(path)!r} names no study_name and storage; it was not written by hpo-lstm run.")
    record = StudyRecord.load(open_recorded(url, folder=folder, named_in=path), name, url)
    if record is None:
        raise ConfigError(f"Storage {mask_url(url)!r} holds no study {name!r}.")
    return write_record(folder, record)


def write_record(folder: Path, record: StudyRecord) -> dict[str, Any]:
    """Write a run's files (``RUN_FILES``, and the model folder when the study has a model)
    into ``folder`` from ``record``; returns the summary written to summary.json. Refused when
    the study has no final result."""
    model_folder = check_real_folder(folder / MODEL_FOLDER, folder)  # before anything is written
    if record.final is None:
        raise ConfigError(
            f"Study {record.name!r} in {mask_url(record.url)!r} has no final result (its run has not finished); "
            "run the same command again to finish it."
        )
    summary = record.summary
    written = write_run_files(
        folder,
        summary=summary,
        predictions=record.predictions(),
        trials=record.trials_frame,
        target=target_label(summary),
    )
    model = record.model()
    if model is not None:
        card, weights = model
        if isinstance(card.get("storage"), str):  # recorded unmasked by an earlier hpo-lstm
            card = {**card, "storage": mask_url(card["storage"])}
        write_model_folder(model_folder, card, weights)
    return written


def run_report_markdown(summary: Mapping[str, Any] | RunSummary) -> str:
    """report.md of a run, from its summary alone: the protocol, the verdicts, and the tuned
    model's test metrics next to every baseline's (those not scored with their status and why)."""
    from hpo_lstm.baselines import BASELINES, LABELS, statistical_verdict
    from hpo_lstm.ensemble import candidate_label, choice_text, final_description, weights_text

    run = summary if isinstance(summary, RunSummary) else RunSummary.from_dict(summary)
    protocol, windows = run.protocol, run.protocol.windows
    test, naive, final = run.test, run.naive, run.final_forecast
    model = final_description(final, run.model)
    split = "/".join(f"{round(100 * s)}" for s in protocol.split)
    lines = [
        f"# Run `{run.study_name}`",
        "",
        f"- **Data**: `{run.dataset}`, target `{run.target}`"
        + (f", inputs {', '.join(f'`{f}`' for f in run.features)}" if len(run.features) > 1 else "")
        + (f"; chronological split {split} % -> test windows {windows.get('test')}" if windows else "")
        + ".",
        f"- **Windows**: lookback {lookback_text(protocol.lookback, protocol.space)} -> horizon {protocol.horizon}, "
        f"transform `{protocol.transform}`.",
        f"- **Season**: {protocol.season_text or 'not recorded (a run of an earlier hpo-lstm)'}.",
        f"- **Search**: {run.model} tuned by {run.optimizer}, {run.n_evaluations} evaluations "
        f"({run.n_trained} trained), seed {run.seed}; fitness = "
        + (f"mean validation RMSE over {run.folds['k']} rolling-origin folds." if run.folds else "validation RMSE."),
        f"- **Training**: device {run.device}, "
        + (
            "training steps in bf16 autocast (weights and every score in float32)."
            if run.precision == "bf16"
            else "float32."
        ),
        "- **Test**: the networks keep the weights the search trained (no retraining); the final forecast is scored "
        "once on the test windows. The statistical baselines are "
        "fitted on the training and validation rows only and forecast every test point from the same origin as the "
        "network, with every observation up to it and no refit.",
    ]
    if final:
        lines.append(
            f"- **Final forecast**: {choice_text(final, run.model)}. Every candidate (the best network, the "
            "mean of the best ones, their combinations with the statistical models, whose validation forecasts come "
            "from fits on the training rows only) is scored on validation and test below."
        )
    lines.append("")
    ratio = test["rmse"] / naive["rmse"]
    verdict = f"The {model}'s test RMSE is {ratio:.1%} of the last-value naive forecast's."
    statistical = {k: v for k, v in run.baselines.items() if k in BASELINES}
    if statistical:
        verdict += " " + statistical_verdict(test["rmse"], statistical, model=model)
        if run.combined:
            alone = final["candidates"]["best"].get("test_rmse")
            verdict += " " + statistical_verdict(alone, statistical, model=f"best {run.model} alone")
    lines += [f"**Verdict.** {verdict}", ""]
    stopped = run.stopped_early
    if stopped:
        lines += [
            f"**Stopped early** at the time limit of {fmt(stopped['timeout_seconds'], 6)} s after "
            f"{stopped['evaluations']} of {stopped['budget']} evaluations; running the same command again "
            "continues the study.",
            "",
        ]
    elif run.ended_by_optimizer:
        lines += [
            f"**Ended by the optimizer** after {run.n_evaluations} of the budget's {run.budget} evaluations "
            f"(its own stopping rule); the study is complete as it is.",
            "",
        ]
    folds = (run.folds or {}).get("chosen_fold_val_rmse")
    if folds:
        lines += [
            f"**Folds.** The chosen candidate's validation RMSE on each fold, oldest first: "
            f"{', '.join(fmt(v) for v in folds)} (spread {fmt(max(folds) - min(folds))}); the final model is "
            "its weights on the last fold.",
            "",
        ]
    lines += ["## Test metrics", ""]
    header = "| forecast | test RMSE | test MAE | test MAPE % | status | fit s | model |"
    lines += [header, "|---|---|---|---|---|---|---|"]
    params = ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in run.best_params.items())
    lines.append(f"| {model} | {fmt(test['rmse'])} | {fmt(test['mae'])} | {fmt(test['mape'])} | ok | - | {params} |")
    for kind, candidate in (final.get("candidates") or {}).items():
        if kind != final.get("kind"):
            lines.append(
                f"| {candidate_label(candidate, run.model)} (not chosen; validation RMSE "
                f"{fmt(candidate['val_rmse'])}) | {fmt(candidate.get('test_rmse'))} | - | - | ok | - | "
                f"{weights_text(candidate, run.model)} |"
            )
    lines.append(
        f"| naive last value | {fmt(naive['rmse'])} | {fmt(naive['mae'])} | {fmt(naive['mape'])} | ok | - | "
        "the last input value |"
    )
    for name in (n for n in BASELINES if n in statistical):
        e = statistical[name]
        label = LABELS[name] + (f" ({e['season']})" if name == "seasonal_naive" and e.get("season") else "")
        detail = e.get("model") if e.get("status") == "ok" else e.get("reason")
        lines.append(
            f"| {label} | {fmt(e.get('rmse'))} | {fmt(e.get('mae'))} | {fmt(e.get('mape'))} | "
            f"{e.get('status')} | {fmt(e.get('fit_seconds'), 3)} | {(detail or '-').replace('|', '/')} |"
        )
    lines += [
        "",
        "MAPE is left out (-) where the actual values cross zero. fit s: seconds to fit on train + "
        "validation (in a child process under the time limit of "
        f"{fmt(protocol.baseline_timeout, 3)} s each).",
        "",
    ]
    by_step = run.by_step
    if len(by_step) > 1:
        scored = [n for n in BASELINES if f"{n}_rmse" in by_step[0]]
        lines += [
            "## Test RMSE per forecast step",
            "",
            "| step | " + " | ".join([model, "naive last value", *(LABELS[n] for n in scored)]) + " |",
            "|---|" + "---|" * (2 + len(scored)),
        ]
        for row in by_step:
            values = [row["rmse"], row["naive_rmse"], *(row[f"{n}_rmse"] for n in scored)]
            lines.append(f"| {row['step']} | " + " | ".join(fmt(v) for v in values) + " |")
        lines.append("")
    if protocol.data_notes:
        lines += ["## Data notes", "", *(f"- {note}" for note in protocol.data_notes), ""]
    lines += [
        "## Files",
        "",
        "`summary.json` (every number here), `predictions.csv` (one row per test window and "
        "step: actual, the tuned model, its intervals, and a column per scored baseline), `trials.csv`, "
        "`convergence.csv`, `convergence.png`, `predictions.png`, `model/`. Rebuild with `hpo-lstm report "
        "<this folder>`.",
        "",
    ]
    return "\n".join(lines)


def _ordered(summary: Mapping[str, Any]) -> dict[str, Any]:
    first = [k for k in _SUMMARY_FIRST if k in summary]
    return {**{k: summary[k] for k in first}, **{k: v for k, v in summary.items() if k not in first}}
