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

from hpo_lstm import ConfigError, HpoLstmError, StudyFailedError, __version__
from hpo_lstm._errors import first_line
from hpo_lstm._interrupts import held_back, interrupts_outside_storage, raise_if_swallowed
from hpo_lstm.store import mask_secrets, mask_url

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a tool killed by the closed pipe would report


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line.

    No abbreviated flags: ``compare --seed 3`` must be refused, not read as ``--seeds 3``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:  # (--workers 0 meant the default)
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _add_study_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``run`` and ``compare``: data, budget, training, record and output."""
    g = parser.add_argument_group("search")
    g.add_argument("--budget", type=_positive_int, help="number of fitness evaluations per study (default 24)")
    g.add_argument(
        "--pop-size",
        dest="pop_size",
        type=_positive_int,
        help="population size; for tpe/cmaes/gp/random, candidates asked per batch (default 8)",
    )
    d = parser.add_argument_group("data")
    d.add_argument("--data", help="built-in dataset name (co2, sine) or a CSV path (default co2)")
    d.add_argument("--target", help="CSV column to forecast")
    d.add_argument("--features", help="comma-separated CSV input columns (the target is always one)")
    d.add_argument(
        "--time-column",
        dest="time_column",
        help="CSV time column (default: a column named date, time, "
        "timestamp, datetime or ds, else the text column whose values are distinct dates)",
    )
    d.add_argument(
        "--lookback",
        type=_positive_int,
        help="input window length, fixed (default: searched within "
        "bounds that reach the season, e.g. 12..76 for weekly data; 24 when no season is known or a "
        "[space] table is given)",
    )
    d.add_argument("--horizon", type=_positive_int, help="forecast steps 1..H at once, one output each (default 1)")
    d.add_argument("--split", help="train,val,test fractions (default 0.7,0.15,0.15)")
    d.add_argument(
        "--transform",
        help="diff (forecast the change from the last value), logdiff (the change of the log, for a target "
        "above zero), auto (logdiff when every target value is above zero, else diff), level, or sdiff (the "
        "change from one season before; needs season >= horizon) (default diff)",
    )
    d.add_argument(
        "--calendar",
        action=argparse.BooleanOptionalAction,
        help="sine and cosine of time of day, day of week and day of year (those the time step makes "
        "meaningful) as extra inputs (default: on when the data has a time column)",
    )
    b = parser.add_argument_group("statistical baselines")
    b.add_argument(
        "--baseline-timeout",
        dest="baseline_timeout",
        type=float,
        metavar="SECONDS",
        help="limit of each of AutoETS and AutoARIMA in seconds of CPU time, so the same on a busy machine "
        "as on an idle one; one that runs past it is reported as such (default 120)",
    )
    f = parser.add_argument_group("final forecast")
    f.add_argument(
        "--final",
        help="combination (default: the mean of the best --top-k networks, AutoETS and "
        "AutoARIMA, weighted by inverse validation MSE), auto (the candidate with the lowest validation "
        "RMSE), best (the best network alone), top_k_mean, combination_equal or combination_fitted",
    )
    f.add_argument(
        "--top-k",
        dest="top_k",
        type=_positive_int,
        help="trained candidates whose weights are kept for the final forecast (default 5)",
    )
    t = parser.add_argument_group("training")
    t.add_argument("--max-epochs", dest="max_epochs", type=_positive_int, help="default 30")
    t.add_argument("--patience", type=_positive_int, help="early-stopping patience in epochs (default 5)")
    t.add_argument("--batch-size", dest="batch_size", type=_positive_int, help="default 64")
    t.add_argument("--dropout", type=float, help="dropout between stacked layers when not searched (default 0)")
    t.add_argument(
        "--pruning",
        help="median (stop candidates worse than the median of earlier ones at the "
        "same epoch; default), halving (successive halving within each batch: the best third goes "
        "on at each rung) or off",
    )
    t.add_argument(
        "--lr-schedule",
        dest="lr_schedule",
        help="constant (default) or plateau (halve the learning rate when validation RMSE stalls)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        help="seconds: no new batch starts after them; the study ends with its best so far and "
        "resumes when run again (a comparison: for all its cells together)",
    )
    t.add_argument(
        "--folds",
        type=_positive_int,
        help="rolling-origin validation folds before the test split; fitness = mean validation RMSE "
        "over them (default 1)",
    )
    t.add_argument("--device", help="auto (CUDA if present), cpu, cuda, cuda:N or mps (default auto)")
    t.add_argument(
        "--precision",
        help="training arithmetic: auto (default: bf16 on a CPU with native bfloat16, else fp32), fp32, or bf16 (training steps in bfloat16 autocast; scores "
        "stay float32)",
    )
    t.add_argument(
        "--workers",
        type=_positive_int,
        help="processes training candidates at once (default: one per CPU core; CUDA: as many, at most 12 per GPU)",
    )
    t.add_argument("--executor", help="local (processes on this machine; default) or dask (a Dask cluster)")
    t.add_argument("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://HOST:8786")
    o = parser.add_argument_group("record and output")
    o.add_argument(
        "--storage", help="Optuna storage URL (default: $HPO_LSTM_STORAGE, else sqlite:///<out>/hpo-lstm.db)"
    )
    o.add_argument("--out", help="output folder (default results)")
    o.add_argument("--quiet", action="store_true", help="no progress bar or table")


def _build_parser() -> _Parser:
    parser = _Parser(prog="hpo-lstm", description="Tune LSTM-family forecasters with metaheuristics, honestly.")
    parser.add_argument("--version", action="version", version=f"hpo-lstm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="tune one model with one optimizer, then test the best once",
        description="Tune one forecaster with one optimizer; fitness is validation RMSE; the final "
        "forecast (by default the best networks' saved weights combined with AutoETS and AutoARIMA) is "
        "scored once on the test split next to naive and statistical baselines "
        "(seasonal naive, AutoETS, AutoARIMA). "
        "Flags override the study file; a study already in the storage is resumed.",
        argument_default=argparse.SUPPRESS,
    )
    run.add_argument("study_file", nargs="?", help="TOML study file (see studies/)")
    run.add_argument(
        "--optimizer",
        help="pso, gwo, woa, ga, tpe, cmaes, gp, random or mealpy:<ClassName> (default woa; hpo-lstm optimizers --all)",
    )
    run.add_argument(
        "--model",
        help="a forecaster of 'hpo-lstm models': lstm, bilstm, gru, cnn-lstm, attention-lstm, seq2seq, or your own "
        "as module:Class (docs/models.md) (default lstm)",
    )
    run.add_argument("--seed", type=_int, help="seed of the optimizer and of every training (default 0)")
    run.add_argument("--study-name", dest="name", help="default: <data>-<model>-<optimizer>-seed<seed>")
    run.add_argument(
        "--season",
        type=_positive_int,
        help="season length in steps, for the seasonal baselines "
        "(default: from the time column: hourly 24, daily 7, weekly 52, monthly 12, ...)",
    )
    _add_study_flags(run)

    compare = commands.add_parser(
        "compare",
        help="models x optimizers x seeds at equal budget, with baselines: report.md, CSV, PNG",
        description="Run one study per model x optimizer x seed (plus untuned models) in one storage, then "
        "write a report: test metrics over seeds next to naive baselines, model vs model with a paired "
        "test, optimizer ranking, convergence and prediction plots. Re-running skips finished cells "
        "and resumes the others.",
        argument_default=argparse.SUPPRESS,
    )
    compare.add_argument("study_file", nargs="?", help="TOML comparison file (see studies/compare_*.toml)")
    compare.add_argument("--models", help="comma-separated models (default lstm,bilstm)")
    compare.add_argument(
        "--optimizers", help="comma-separated optimizers, mealpy:<ClassName> too (default pso,gwo,woa,ga,tpe,random)"
    )
    compare.add_argument("--seeds", help="number of seeds (0..N-1), or a list like 0,3,7 (one seed: 3,) (default 3)")
    compare.add_argument(
        "--season",
        type=_positive_int,
        help="season length in steps, for the seasonal baselines "
        "(default: from the time column: hourly 24, daily 7, weekly 52, monthly 12, ...)",
    )
    compare.add_argument("--name", help="comparison name: output folder and study-name prefix (default compare-<data>)")
    compare.add_argument(
        "--shard",
        help="K/N: run only every N-th cell from the K-th, so that N drivers sharing one storage split the comparison",
    )
    compare.add_argument(
        "--no-untuned",
        dest="untuned",
        action="store_false",
        help="leave out the untuned rows (hidden 50, 2 layers, learning rate 1e-3)",
    )
    compare.add_argument(
        "--replace-report",
        dest="replace_report",
        action="store_true",
        help="rewrite the folder's report for these cells even if it showed others (their studies stay in the storage)",
    )
    _add_study_flags(compare)

    report = commands.add_parser(
        "report",
        help="rebuild a comparison's or a run's tables and plots from its recorded trials (no training)",
        description="Read the comparison in FOLDER (its compare.json) or the run (its summary.json) and the Optuna "
        "storage it names, and write the outputs again from what the storage recorded: a comparison's report.md, "
        "CSV tables and PNG plots; a run's summary.json, trials.csv, predictions.csv, convergence.csv/.png and "
        "predictions.png. The recorded trials are only read; nothing is trained.",
    )
    report.add_argument(
        "folder", help="a comparison's or a run's output folder, e.g. results/compare-co2 or results/co2-lstm-woa-seed0"
    )
    report.add_argument("--quiet", action="store_true", help="print nothing (no summary table, no list of files)")

    forecast = commands.add_parser(
        "forecast",
        help="forecast past the end of the data with a study's saved model: forecast.csv, forecast.png",
        description="Load the final model a study saved (a run's folder, a comparison's folder with --cell, or "
        "--storage with --study-name) and forecast N steps past the last observation of the study's data, or of "
        "--data NEW.csv. Steps past the model's horizon are forecast recursively; other input features are held "
        "at their last value. Writes forecast.csv (time, forecast, lower_80, upper_80, lower_95, upper_95) and "
        "forecast.png. Nothing is trained; the storage is only read.",
    )
    forecast.add_argument("result", nargs="?", help="a run's folder (results/<study>) or a comparison's folder")
    forecast.add_argument(
        "--steps", type=_positive_int, required=True, metavar="N", help="number of steps to forecast (>= 1)"
    )
    forecast.add_argument(
        "--trust-model-code",
        dest="trust_model_code",
        action="store_true",
        help="load a model of your own (module:Class), which imports and runs its code",
    )
    forecast.add_argument(
        "--data", metavar="NEW.csv", help="CSV with the study's columns: forecast from its last row instead"
    )
    forecast.add_argument(
        "--out", metavar="DIR", help="output folder (default RESULT/forecast, or results/<study>/forecast)"
    )
    forecast.add_argument(
        "--cell",
        metavar="MODEL.OPTIMIZER.SEED",
        help="a comparison's cell MODEL.OPTIMIZER.SEED, e.g. bilstm.woa.0 or "
        "lstm.untuned.0 (default: the finished cell with the lowest best validation RMSE)",
    )
    forecast.add_argument("--storage", metavar="URL", help="Optuna storage URL holding the study (instead of RESULT)")
    forecast.add_argument("--study-name", dest="study_name", metavar="NAME", help="the study in --storage")
    forecast.add_argument("--quiet", action="store_true", help="print nothing")

    optimizers = commands.add_parser("optimizers", help="list the registered optimizers")
    optimizers.add_argument(
        "--all",
        action="store_true",
        help="also every mealpy class usable as mealpy:<ClassName>: "
        "batched or one agent at a time, or why it cannot run (tries each; a few seconds)",
    )
    commands.add_parser("datasets", help="list the built-in datasets")
    commands.add_parser("models", help="list the forecasters (--model) and their own searchable parameters")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hpo-lstm``; returns the process exit status."""
    try:
        with interrupts_outside_storage():
            return _main(argv)
    except KeyboardInterrupt:  # held back during the last storage call, which ended the command
        print("hpo-lstm: interrupted as the command finished; its results are recorded.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = _build_parser()
    command = None  # (the handlers below take vars(args) and pop what they use)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        command = args.command
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "optimizers":
            return _list_optimizers(every_mealpy_class=args.all)
        if args.command == "datasets":
            return _list_datasets()
        if args.command == "models":
            return _list_models()
        if args.command == "compare":
            return _compare(vars(args))
        if args.command == "report":
            return _report(args.folder, quiet=args.quiet)
        if args.command == "forecast":
            return _forecast(args)
        return _run(vars(args))
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except BrokenPipeError:  # `hpo-lstm optimizers --all | head -2`: the reader has gone; say nothing
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # (Python would complain again when flushing stdout at exit)
        return EXIT_BROKEN_PIPE
    except HpoLstmError as exc:
        print(f"hpo-lstm: error: {mask_secrets(_as_flags(str(exc), parser, command))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the storage or the disk failing under the command: one line too
        interrupt = _wrapped_interrupt(exc)
        if interrupt is not None:
            return _interrupted(interrupt, command)
        message = _environment_failure(exc)
        if message is None:
            raise
        print(f"hpo-lstm: error: {mask_secrets(message)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        return _interrupted(exc, command)


def _wrapped_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C behind ``exc``, when Python wrapped one in another error: raised in a class's
    ``__set_name__`` while a library is imported, it becomes a RuntimeError with the
    KeyboardInterrupt as its cause (Python 3.11)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _interrupted(exc: KeyboardInterrupt, command: str | None) -> int:
    """The one line of an interrupted command, and its exit status."""
    # Not imported here: Ctrl-C may have stopped the import of torch half-way, and importing
    # hpo_lstm.study again would fail on the half-made module (a traceback, exit 1).
    study = sys.modules.get("hpo_lstm.study")
    if study is not None and isinstance(exc, getattr(study, "StudyInterrupted", ())):
        print(
            f"hpo-lstm: interrupted; {exc.n_finished} evaluations of study {exc.study_name!r} are recorded in "
            f"{mask_url(exc.storage)}. Run the same command again to resume.",
            file=sys.stderr,
        )
    elif command in ("run", "compare", None):
        print("hpo-lstm: interrupted; run the same command again to resume the study.", file=sys.stderr)
    else:  # forecast, report, listings: nothing to resume; files are written whole or not at all
        print("hpo-lstm: interrupted; no file was left half-written.", file=sys.stderr)
    return EXIT_INTERRUPTED


def _environment_failure(exc: BaseException) -> str | None:
    """One line for a failure of the study storage (a corrupted database, a full disk under
    SQLite, a lost server) or of the file system (no space, read-only) that escaped a command;
    None for anything else. Storage errors are recognised without importing Optuna or
    SQLAlchemy: a command that has not loaded them cannot have failed in them."""
    optuna_exceptions, sqlalchemy_exc = sys.modules.get("optuna.exceptions"), sys.modules.get("sqlalchemy.exc")
    kinds = tuple(
        kind
        for kind in (
            getattr(optuna_exceptions, "StorageInternalError", None),
            getattr(sqlalchemy_exc, "SQLAlchemyError", None),
        )
        if kind is not None
    )
    if kinds and isinstance(exc, kinds):
        # Optuna wraps the database's error in a misleading "exception during the commit"; the
        # database's own words are in SQLAlchemy's DBAPIError: "(sqlite3.DatabaseError) database
        # disk image is malformed", "(sqlite3.OperationalError) database or disk is full".
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, getattr(sqlalchemy_exc, "DBAPIError", ())):
            cause = cause.__cause__ or cause.__context__
        return f"The study storage failed: {first_line(cause if cause is not None else exc).rstrip('.')}."
    if isinstance(exc, OSError):
        what = exc.strerror or first_line(exc)
        return f"File system error: {what}" + (f": {str(exc.filename)!r}" if exc.filename else "") + "."
    return None


def _as_flags(message: str, parser: argparse.ArgumentParser, command: str | None = None) -> str:
    """A library error names settings as `name` (``budget``, ``study_name``); here they become
    the flags of ``command`` that set them (``--budget``; `name` is ``--study-name`` for run,
    ``--name`` for compare). Other `quoted` text stays."""
    import re

    subparsers = parser._subparsers._group_actions[0].choices if parser._subparsers else {}  # noqa: SLF001
    flags = {"study_name": "--study-name"}
    for sub in [subparsers[command]] if command in subparsers else subparsers.values():
        for action in sub._actions:  # noqa: SLF001
            longest = max(action.option_strings, key=len, default="")
            if longest.startswith("--") and action.dest != "help":
                flags.setdefault(action.dest, longest)
    return re.sub(r"`([a-z_]+)`", lambda m: flags.get(m.group(1), m.group(0)), message)


def _list_optimizers(every_mealpy_class: bool = False) -> int:
    from hpo_lstm._terminal import print_rows
    from hpo_lstm.optimizers import registry

    rows = [(name, registry[name].summary) for name in registry]
    if not every_mealpy_class:
        print_rows(rows + [("mealpy:<ClassName>", "any mealpy class by name (hpo-lstm optimizers --all lists them)")])
        return 0
    from hpo_lstm.optimizers import mealpy_listing

    print_rows(rows)
    print()
    header, classes, footer = mealpy_listing()
    print_rows(classes, header=header, footer=[footer])
    return 0


def _list_datasets() -> int:
    from hpo_lstm._terminal import print_rows
    from hpo_lstm.data import describe_builtin

    print_rows(
        list(describe_builtin())
        + [("<path>.csv", "any CSV: --data PATH --target COL [--features A,B] [--time-column T]")]
    )
    return 0


def _list_models() -> int:
    from hpo_lstm._terminal import print_rows
    from hpo_lstm.models import registry
    from hpo_lstm.space import MODEL_PARAMS

    rows = []
    for name in registry:
        spec = registry[name]
        own = ", ".join(
            f"{param} {MODEL_PARAMS[param].default[0]:g}..{MODEL_PARAMS[param].default[1]:g} ({value} when not searched)"
            for param, value in spec.params.items()
        )
        rows.append((name, spec.summary + (f"; own params: {own}" if own else "")))
    print_rows(rows)
    return 0


def _make_config(options: dict[str, Any]) -> Any:
    from hpo_lstm.config import StudyConfig

    return StudyConfig.from_file(options.pop("study_file", None), **options)


def _pop_execution(options: dict[str, Any]) -> dict[str, Any]:
    """Where candidates train (not part of a study's identity): workers, executor, scheduler.
    Checked where executors are made (hpo_lstm.executors.make_executor)."""
    return {
        "workers": options.pop("workers", None),
        "executor": options.pop("executor", "local"),
        "scheduler": options.pop("scheduler", None),
    }


def _import_torch() -> None:
    """Import torch with Ctrl-C held back until it is done: a Ctrl-C inside torch's C++
    start-up, which calls back into Python through pybind11, aborts the process ("terminate
    called after throwing an instance of 'pybind11::error_already_set'", seen once in 80 Ctrl-Cs
    at start-up on a busy machine) instead of ending it in one line."""
    with held_back(to_the_end=True):
        import torch  # noqa: F401
    raise_if_swallowed()  # a Ctrl-C some import swallowed (the held one is raised right after)


def _run(options: dict[str, Any]) -> int:
    options.pop("command", None)
    quiet = options.pop("quiet", False)
    execution = _pop_execution(options)
    config = _make_config(options)
    from hpo_lstm.report import check_run_folder, write_run_outputs

    check_run_folder(Path(config.out) / config.study_name)  # written after the training: checked before it
    _import_torch()
    from hpo_lstm.study import run_study

    result = run_study(config, progress=not quiet, **execution)  # the progress display, unless --quiet
    folder = Path(config.out) / config.study_name
    summary = write_run_outputs(result, folder)
    if not quiet:
        if result.was_complete:
            from hpo_lstm._terminal import wrap

            print(
                wrap(
                    f"Study {config.study_name!r} is complete ({summary['n_evaluations']} evaluations); nothing "
                    "was trained. Its stored result (storage on the last line):"
                )
            )
        _print_summary(summary, folder)
    return 0


def _compare(options: dict[str, Any]) -> int:
    from hpo_lstm.compare import CompareConfig, parse_shard, run_compare

    options.pop("command", None)
    quiet = options.pop("quiet", False)
    execution = _pop_execution(options)
    if options.pop("untuned", True) is False:
        options["untuned"] = False
    shard = options.pop("shard", None)
    shard = parse_shard(shard) if shard is not None else None
    replace_report = options.pop("replace_report", False)
    config = CompareConfig.from_file(options.pop("study_file", None), **options)
    _import_torch()  # after the settings are checked: a bad one is refused without it
    # The progress display (cells, then each cell's study), unless --quiet.
    result = run_compare(config, shard=shard, replace_report=replace_report, progress=not quiet, **execution)
    from hpo_lstm.report import write_comparison_report

    try:
        report = write_comparison_report(result.folder)
    except StudyFailedError:
        if config.base.timeout is None:
            raise
        print(
            f"hpo-lstm: the time limit (--timeout {config.base.timeout:g} s) passed before any cell spent its budget; "
            "nothing is lost: run the same command again to continue.",
            file=sys.stderr,
        )
        return 0
    if not quiet:
        _print_comparison(report)
    return 0


def _report(folder: str, *, quiet: bool) -> int:
    from hpo_lstm.store import MANIFEST, read_manifest

    # A wrong folder is refused before pandas, optuna and torch load.
    if (Path(folder) / MANIFEST).exists():
        read_manifest(folder)
        from hpo_lstm.report import write_comparison_report

        result = write_comparison_report(folder)
        if not quiet:
            _print_comparison(result)
        return 0
    if not (Path(folder) / "summary.json").exists():
        raise ConfigError(
            f"{folder!r} holds no {MANIFEST} (a comparison's folder) and no summary.json (a run's folder); give a "
            "folder that hpo-lstm compare or run wrote, e.g. results/compare-co2 or results/<study name>."
        )
    from hpo_lstm.report import RUN_FILES, rebuild_run_outputs

    summary = rebuild_run_outputs(folder)
    if not quiet:
        from hpo_lstm._terminal import wrap

        print(
            wrap(
                f"rewrote {', '.join(RUN_FILES)} and model/ in {folder} from study {summary['study_name']!r} "
                f"({mask_url(summary['storage'])})",
                indent="  ",
            )
        )
    return 0


def _forecast(args: argparse.Namespace) -> int:
    """``hpo-lstm forecast``: forecast.csv, forecast.png and a short table."""
    from hpo_lstm.forecaster import check_steps, load_forecaster

    check_steps(args.steps, "--steps")  # before anything is read; the rest load_forecaster and the data check
    _import_torch()  # load_forecaster builds the networks
    forecaster = load_forecaster(
        args.result,
        storage=args.storage,
        study_name=args.study_name,
        cell=args.cell,
        trust_model_code=args.trust_model_code,
    )
    data = forecaster.read_data(args.data) if args.data is not None else None  # read once, used twice
    frame = forecaster.forecast(steps=args.steps, data=data)
    if args.out is not None:
        out = Path(args.out)
    elif args.result is not None:
        out = Path(args.result) / "forecast"
    else:
        out = Path("results") / args.study_name / "forecast"
    from hpo_lstm.report import target_label, write_forecast_files

    card = forecaster.card
    source = args.data if args.data is not None else card.get("data")
    write_forecast_files(
        out,
        frame,
        forecaster.recent(max(3 * forecaster.lookback, 100), data=data),
        title=f"{card['model']} ({card.get('study_name')}): {args.steps} steps past the end of {source}",
        unit_label=target_label({"target": card["target"], "dataset": card.get("data")}),
        horizon=forecaster.horizon,
        inside=args.result if args.out is None and args.result is not None else None,  # RESULT/forecast -> elsewhere
    )
    for note in forecaster.data_notes:  # as a run prints its data notes; also with --quiet: they qualify the numbers
        from hpo_lstm._terminal import wrap

        print(wrap(f"data: {note}", indent="  "), file=sys.stderr)
    if not args.quiet:
        _print_forecast(frame, forecaster, out)
    return 0


def _print_forecast(frame: Any, forecaster: Any, out: Path) -> None:
    import math

    from rich.markup import escape
    from rich.table import Table

    from hpo_lstm._terminal import console as terminal_console
    from hpo_lstm.ensemble import candidate_label, weights_text

    card = forecaster.card
    what = card["model"]
    if forecaster.final_kind != "best":  # "combination (5 lstm 0.43, AutoETS 0.26, AutoARIMA 0.31)"
        final = {"kind": forecaster.final_kind, "members": list(forecaster.weights)}
        final["weights"] = list(forecaster.weights.values())
        what = f"{candidate_label(final, what)} ({weights_text(final, what)})"
    table = Table(title=f"{card['target']}: {len(frame)}-step forecast of {card.get('study_name')}")
    for column in ("step", "time", "forecast", "80% interval", "95% interval"):
        table.add_column(column, justify="left" if column == "time" else "right")
    times = frame["time"]
    if hasattr(times, "dt") and (times.dt.normalize() == times).all():  # dates only: no 00:00:00
        times = times.dt.strftime("%Y-%m-%d")
    # One number of decimals for the whole table: about 6 significant digits of its largest value.
    largest = float(frame[["lower_95", "upper_95"]].abs().to_numpy().max())
    decimals = max(0, 5 - math.floor(math.log10(largest))) if largest > 0 and math.isfinite(largest) else 4
    num = f"{{:.{decimals}f}}".format
    shown = list(range(len(frame))) if len(frame) <= 12 else [*range(5), -1, *range(len(frame) - 5, len(frame))]
    for i in shown:
        if i < 0:
            table.add_row("...", "", "", "", "")
            continue
        row = frame.iloc[i]
        table.add_row(
            str(i + 1),
            str(times.iloc[i]),
            num(row["forecast"]),
            f"{num(row['lower_80'])} .. {num(row['upper_80'])}",
            f"{num(row['lower_95'])} .. {num(row['upper_95'])}",
        )
    console = terminal_console()
    console.print(escape(f"model: {what}, horizon {forecaster.horizon}"))
    console.print(table)
    if len(frame) > forecaster.horizon:
        console.print(
            f"Steps past {forecaster.horizon} are recursive; their intervals are approximate "
            "(the last step's conformal half-width times sqrt(k/H), coverage not checked)."
        )
    console.print(f"forecast: {out / 'forecast.csv'}, {out / 'forecast.png'}")
    console.file.flush()


def _print_summary(summary: dict[str, Any], folder: Path) -> None:
    """The run's table and verdicts, from its summary as recorded (typed: hpo_lstm.results.RunSummary)."""
    from rich.markup import escape
    from rich.table import Table

    from hpo_lstm._terminal import console as terminal_console
    from hpo_lstm.baselines import BASELINES, LABELS, statistical_verdict
    from hpo_lstm.ensemble import candidate_label, choice_text, final_description
    from hpo_lstm.report import fmt, lookback_text
    from hpo_lstm.results import RunSummary

    console = terminal_console()
    run = RunSummary.from_dict(summary)
    protocol, windows = run.protocol, run.protocol.windows
    if windows:  # the protocol header: what was scored, and the season the seasonal baselines used
        console.print(
            f"protocol: {run.dataset}, target {run.target}; test windows "
            f"{windows.get('test')}, lookback {lookback_text(protocol.lookback, protocol.space)} -> horizon "
            f"{protocol.horizon}"
            + (f", transform {protocol.transform}" if protocol.transform else "")
            + escape(f"; {protocol.season_text}" if protocol.season_text else "")
        )
    params = ", ".join(f"{k}={fmt(v)}" for k, v in run.best_params.items())
    table = Table(
        title=f"{run.study_name}  ({run.n_evaluations} evaluations, {run.n_trained} trained, {run.wall_seconds:.0f} s)"
    )
    table.add_column("", no_wrap=True)  # "  mean of 5 best lstm" stays whole; the headers give way
    for column in ("val RMSE", "test RMSE", "test MAE", "test MAPE%", "fit s"):
        table.add_column(column, justify="right")
    test, naive, final, model = run.test, run.naive, run.final_forecast, run.model
    if not run.combined:
        table.add_row(
            f"tuned {model}",
            fmt(run.best_val_rmse),
            fmt(test["rmse"]),
            fmt(test["mae"]),
            fmt(test["mape"]),
            "",
        )
    else:
        chosen = final["candidates"][final["kind"]]
        table.add_row(
            escape(f"final: {candidate_label(final, model)}"),
            fmt(chosen["val_rmse"]),
            fmt(test["rmse"]),
            fmt(test["mae"]),
            fmt(test["mape"]),
            "",
        )
    for kind, candidate in (final.get("candidates") or {}).items():  # the others considered, chosen on validation
        if kind != final.get("kind"):
            table.add_row(
                escape(f"  {candidate_label(candidate, model)}"),
                fmt(candidate["val_rmse"]),
                fmt(candidate.get("test_rmse")),
                "",
                "",
                "",
            )
    table.add_row(
        "naive last value",
        fmt(run.val_baselines["naive_last"]["rmse"]),
        fmt(naive["rmse"]),
        fmt(naive["mae"]),
        fmt(naive["mape"]),
        "",
    )
    statistical = {k: v for k, v in run.baselines.items() if k in BASELINES}
    for name in (n for n in BASELINES if n in statistical):  # one row per statistical baseline, scored or not
        entry = statistical[name]
        label = escape(
            LABELS[name] + (f" ({entry['season']})" if name == "seasonal_naive" and entry.get("season") else "")
        )
        if entry.get("status") == "ok":
            table.add_row(
                label, "", fmt(entry["rmse"]), fmt(entry["mae"]), fmt(entry["mape"]), fmt(entry.get("fit_seconds"))
            )
        else:
            table.add_row(label, "", entry.get("status", "-"), "", "", fmt(entry.get("fit_seconds")))
    console.print(table)
    fitted = [
        f"{LABELS[n]} {statistical[n]['model']}"
        for n in ("auto_ets", "auto_arima")
        if statistical.get(n, {}).get("model")
    ]
    if fitted:
        console.print(escape("fitted on train + validation: " + "; ".join(fitted)))
    for name in (n for n in BASELINES if n in statistical and statistical[n].get("status") != "ok"):
        console.print(escape(f"{LABELS[name]}: {statistical[name].get('status')}: {statistical[name].get('reason')}"))
    by_step = run.by_step
    if len(by_step) > 1:  # a multi-step model: each step's error next to the naive forecast's
        steps = Table(title="test RMSE and MAE per forecast step")
        for column in ("step", "RMSE", "naive RMSE", "% of naive", "MAE", "naive MAE"):
            steps.add_column(column, justify="right")
        for row in by_step:
            steps.add_row(
                str(row["step"]),
                fmt(row["rmse"]),
                fmt(row["naive_rmse"]),
                f"{row['rmse'] / row['naive_rmse']:.1%}",
                fmt(row["mae"]),
                fmt(row["naive_mae"]),
            )
        console.print(steps)
    if run.intervals:
        console.print(
            "intervals, test coverage: "
            + ", ".join(f"{level}% -> {values['test_coverage']:.1%}" for level, values in run.intervals.items())
        )
    for note in protocol.data_notes:
        console.print(f"data: {note}")
    console.print(f"best params: {params}")
    folds = run.folds or {}
    if folds.get("chosen_fold_val_rmse"):
        values = folds["chosen_fold_val_rmse"]
        console.print(
            f"validation RMSE on each of the {folds['k']} folds: {', '.join(fmt(v) for v in values)} "
            f"(spread {fmt(max(values) - min(values))})"
        )
    stopped = run.stopped_early
    if stopped:
        console.print(
            f"[bold]Stopped at the time limit[/] (--timeout {fmt(stopped['timeout_seconds'])} s) after "
            f"{stopped['evaluations']} of {stopped['budget']} evaluations: the best so far is reported. Run the "
            "same command again (with a larger --timeout if you like) to continue the study."
        )
    elif run.ended_by_optimizer:
        console.print(
            f"Optimizer {escape(repr(run.optimizer))} ended its search by its own rule after {run.n_evaluations} of "
            f"the budget's {run.budget} evaluations; the study is complete as it is."
        )
    if run.combined:
        console.print(escape(f"final forecast, {choice_text(final, model)}"))
    ratio = test["rmse"] / naive["rmse"]
    who = "final forecast" if run.combined else "tuned model"
    if run.beats_naive and ratio > 0.98:
        console.print(
            f"The {who} is only marginally better than the naive forecast on test: RMSE {ratio:.1%} of naive."
        )
    elif run.beats_naive:
        console.print(f"The {who} beats the naive forecast on test: RMSE {ratio:.1%} of naive.")
    else:
        console.print(f"[bold]The {who} does NOT beat the naive forecast on test[/] (RMSE {ratio:.1%} of naive).")
    if statistical:
        verdict = statistical_verdict(test["rmse"], statistical, model=final_description(final, model))
        console.print(escape(verdict) if run.beats_statistical_baselines else f"[bold]{escape(verdict)}[/]")
        if run.combined:  # the network alone, plainly
            alone = final["candidates"]["best"].get("test_rmse")
            console.print(escape(statistical_verdict(alone, statistical, model=f"best {model} alone")))
    console.print(f"results: {folder}/")
    console.print(f"storage: {mask_url(run.storage)}")
    console.file.flush()


def _print_comparison(result: dict[str, Any]) -> None:
    from rich.table import Table

    from hpo_lstm._terminal import console as terminal_console
    from hpo_lstm.baselines import LABELS
    from hpo_lstm.report import fmt, mean_std

    comparison = result["comparison"]
    console = terminal_console()
    table = Table(title=f"{comparison.manifest['name']}: test RMSE over seeds (mean ± std)")
    for column in ("model", "optimizer", "seeds", "test RMSE", "val RMSE", "trainings"):
        # "0.3749 ± 0.0065" stays on one line; the other columns give way.
        table.add_column(
            column, justify="left" if column in ("model", "optimizer") else "right", no_wrap=column == "test RMSE"
        )
    for _, row in result["test_metrics"].iterrows():
        if row["model"] == "-":
            method = str(row["method"])
            table.add_row(LABELS.get(method, method.replace("_", " ")), "", "", fmt(row["test_rmse_mean"]), "", "")
            continue
        table.add_row(
            row["model"],
            row["method"],
            str(int(row["n_seeds"])),
            mean_std(row, "test_rmse"),
            fmt(row["best_val_rmse_mean"]),
            fmt(row["n_trained_mean"], 3),
        )
    console.print(table)
    if comparison.unfinished:
        console.print(f"[bold]{len(comparison.unfinished)} cell(s) unfinished[/]; run the same command again.")
    console.print(f"report: {result['folder'] / 'report.md'}")
    console.print(f"storage: {mask_url(comparison.manifest['storage'])}")
    console.file.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
