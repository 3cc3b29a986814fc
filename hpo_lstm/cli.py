"""The ``hpo-lstm`` command. ``main(argv) -> int`` is callable in-process (tests do).

Heavy libraries are imported inside the commands that need them, so ``--help``, listings and
bad-input errors return quickly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hpo_lstm import __version__
from hpo_lstm._errors import ConfigError, HpoLstmError

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _build_parser() -> _Parser:
    parser = _Parser(prog="hpo-lstm", description="Tune LSTM-family forecasters with metaheuristics, honestly.")
    parser.add_argument("--version", action="version", version=f"hpo-lstm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="tune one model with one optimizer, then test the best once",
        description="Tune one forecaster with one optimizer; fitness is validation RMSE; the best "
        "params are retrained and scored once on the test split next to a naive baseline. "
        "Flags override the study file; a study already in the storage is resumed.",
        argument_default=argparse.SUPPRESS,
    )
    run.add_argument("study_file", nargs="?", help="TOML study file (see studies/)")
    g = run.add_argument_group("search")
    g.add_argument("--optimizer", help="pso, gwo, woa, ga, tpe or random (default woa)")
    g.add_argument("--model", help="lstm, bilstm or gru (default lstm)")
    g.add_argument("--budget", type=_positive_int, help="number of fitness evaluations (default 24)")
    g.add_argument("--pop-size", dest="pop_size", type=_positive_int,
                   help="population size; for tpe/random, candidates asked per batch (default 8)")  # fmt: skip
    g.add_argument("--seed", type=_positive_int, help="seed of the optimizer and of every training (default 0)")
    d = run.add_argument_group("data")
    d.add_argument("--data", help="built-in dataset name (co2, sine) or a CSV path (default co2)")
    d.add_argument("--target", help="CSV column to forecast")
    d.add_argument("--features", help="comma-separated CSV input columns (the target is always one)")
    d.add_argument("--time-column", dest="time_column", help="CSV time column (default: date/time/timestamp if present)")
    d.add_argument("--lookback", type=_positive_int, help="input window length (default 24)")
    d.add_argument("--horizon", type=_positive_int, help="forecast the value this many steps ahead (default 1)")
    d.add_argument("--split", help="train,val,test fractions (default 0.7,0.15,0.15)")
    d.add_argument("--transform", help="diff (forecast the change from the last value; default) or level")
    t = run.add_argument_group("training")
    t.add_argument("--max-epochs", dest="max_epochs", type=_positive_int, help="default 30")
    t.add_argument("--patience", type=_positive_int, help="early-stopping patience in epochs (default 5)")
    t.add_argument("--batch-size", dest="batch_size", type=_positive_int, help="default 64")
    t.add_argument("--dropout", type=float, help="dropout between stacked layers when not searched (default 0)")
    t.add_argument("--pruning", help="median (stop candidates worse than the median of earlier ones at the "
                   "same epoch; default) or off")  # fmt: skip
    t.add_argument("--device", help="auto (CUDA if present), cpu, cuda, cuda:N (default auto)")
    t.add_argument("--workers", type=_positive_int,
                   help="processes training candidates at once (default: one per CPU core, or per GPU)")  # fmt: skip
    t.add_argument("--executor", help="local (processes on this machine; default) or dask (a Dask cluster)")
    t.add_argument("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://HOST:8786")
    o = run.add_argument_group("record and output")
    o.add_argument("--study-name", dest="name", help="default: <data>-<model>-<optimizer>-seed<seed>")
    o.add_argument("--storage", help="Optuna storage URL (default sqlite:///<out>/hpo-lstm.db)")
    o.add_argument("--out", help="output folder (default results)")
    o.add_argument("--quiet", action="store_true", help="no progress bar or table")

    commands.add_parser("optimizers", help="list the registered optimizers")
    commands.add_parser("datasets", help="list the built-in datasets")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hpo-lstm``; returns the process exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "optimizers":
            return _list_optimizers()
        if args.command == "datasets":
            return _list_datasets()
        return _run(vars(args))
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except HpoLstmError as exc:
        print(f"hpo-lstm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        from hpo_lstm.study import StudyInterrupted

        if isinstance(exc, StudyInterrupted):
            print(
                f"hpo-lstm: interrupted; {exc.n_finished} evaluations of study {exc.study_name!r} are recorded in "
                f"{exc.storage}. Run the same command again to resume.",
                file=sys.stderr,
            )
        else:
            print("hpo-lstm: interrupted; run the same command again to resume the study.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _list_optimizers() -> int:
    from hpo_lstm.optimizers import registry

    width = max(map(len, registry))
    for name in registry:
        print(f"{name:<{width}}  {registry[name].summary}")
    return 0


def _list_datasets() -> int:
    from hpo_lstm.data import describe_builtin

    rows = describe_builtin()
    width = max(len(name) for name, _ in rows)
    for name, summary in rows:
        print(f"{name:<{width}}  {summary}")
    print(f"{'<path>.csv':<{width}}  any CSV: --data PATH --target COL [--features A,B] [--time-column T]")
    return 0


def _make_config(options: dict[str, Any]) -> Any:
    from hpo_lstm.config import StudyConfig, load_study_file

    values: dict[str, Any] = {}
    study_file = options.pop("study_file", None)
    if study_file is not None:
        values.update(load_study_file(study_file))
    values.update(options)
    return StudyConfig.from_mapping(values)


def _run(options: dict[str, Any]) -> int:
    options.pop("command", None)
    quiet = options.pop("quiet", False)
    workers = options.pop("workers", None)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1; got {workers}.")
    executor = options.pop("executor", "local")
    scheduler = options.pop("scheduler", None)
    from hpo_lstm.executors import check_executor

    check_executor(executor, scheduler)
    config = _make_config(options)

    from hpo_lstm.report import write_run_outputs
    from hpo_lstm.study import run_study

    progress = None if quiet else _Progress(config.budget, f"{config.optimizer}/{config.model}")
    try:
        if progress is not None:
            progress.start()
        result = run_study(config, progress=progress, workers=workers, executor_kind=executor, scheduler=scheduler)
    finally:
        if progress is not None:
            progress.stop()
    folder = Path(config.out) / config.study_name
    summary = write_run_outputs(result, folder)
    if not quiet:
        _print_summary(summary, folder)
    return 0


class _Progress:
    """A rich progress bar: evaluations done, best so far, elapsed and ETA."""

    def __init__(self, total: int, label: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.progress import TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best val RMSE {task.fields[best]}"),
            TextColumn("[dim]{task.fields[note]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(label, total=total, best="-", note="")
        self._best = float("inf")
        self._counts = {"trained": 0, "pruned": 0, "duplicate": 0, "replayed": 0}

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def __call__(self, *, value: float, kind: str) -> None:
        self._counts[kind] += 1
        if kind == "pruned":
            self._counts["trained"] += 1
        if value == value and value < self._best:  # NaN never improves
            self._best = value
        note = f"{self._counts['trained']} trained"
        if self._counts["duplicate"]:
            note += f", {self._counts['duplicate']} memo"
        if self._counts["pruned"]:
            note += f" ({self._counts['pruned']} pruned)"
        if self._counts["replayed"]:
            note += f", {self._counts['replayed']} resumed"
        best = f"{self._best:.4g}" if self._best != float("inf") else "-"
        self._progress.update(self._task, advance=1, best=best, note=note)


def _print_summary(summary: dict[str, Any], folder: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in summary["best_params"].items())
    table = Table(title=f"{summary['study_name']}  ({summary['n_evaluations']} evaluations, "
                        f"{summary['n_trained']} trained, {summary['wall_seconds']:.0f} s)")  # fmt: skip
    table.add_column("")
    for column in ("val RMSE", "test RMSE", "test MAE", "test MAPE %"):
        table.add_column(column, justify="right")
    test, naive = summary["test"], summary["baselines"]["naive_last"]
    table.add_row(f"tuned {summary['model']}", _fmt(summary["best_val_rmse"]), _fmt(test["rmse"]),
                  _fmt(test["mae"]), _fmt(test["mape"]))  # fmt: skip
    table.add_row("naive last value", _fmt(summary["val_baselines"]["naive_last"]["rmse"]), _fmt(naive["rmse"]),
                  _fmt(naive["mae"]), _fmt(naive["mape"]))  # fmt: skip
    console.print(table)
    console.print(f"best params: {params}")
    ratio = test["rmse"] / naive["rmse"]
    if summary["beats_naive"]:
        console.print(f"The tuned model beats the naive forecast on test: RMSE {ratio:.1%} of naive.")
    else:
        console.print(f"[bold]The tuned model does NOT beat the naive forecast on test[/] (RMSE {ratio:.1%} of naive).")
    console.print(f"results: {folder}/  storage: {summary['storage']}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
