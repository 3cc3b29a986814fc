"""Wall time until the best validation RMSE is within 1% of a reference: tutorial+WOA, Optuna, hpo-lstm.

    python benchmarks/time_to_target.py --seeds 5 --cap 900 --save ttt.jsonl   # the full run (at most 3 x 5 x 15 min)
    python benchmarks/time_to_target.py --seeds 2 --quick                      # a check that it runs (~4 min)
    python benchmarks/time_to_target.py --methods optuna --first-seed 3 --seeds 1 --save ttt.jsonl   # one piece
    python benchmarks/time_to_target.py --summarise ttt.jsonl                  # pieces together, nothing trained
    python benchmarks/time_to_target.py --load --seeds 5 --cap 150             # with a busy process on one core

Every method searches the same space on the same data: the space and data a default hpo-lstm
study settles on the built-in CO2 series (learning rate, hidden size, layers, and the lookback
where the data gives a season; the calendar input features), the same LSTM class, the same
maximum epochs (default 30, hpo-lstm's default):

(a) tutorial: mealpy's OriginalWOA (pop_size 8, mealpy's own single-agent mode: one candidate
    at a time) minimising the tutorial training of ``study_speed.py`` (DataLoader with shuffle,
    torch's default thread count, every candidate the full max epochs, the model after its last
    epoch scored on validation). The search variables are hpo-lstm's unit cube decoded by the
    study's space, so the space is identical. A diverged candidate (NaN) scores 1e12.
(b) optuna: the usual Optuna loop as Optuna's documentation writes it (its PyTorch example):
    ``objective(trial)`` with ``trial.suggest_float/suggest_int`` over the same names and
    bounds (log scale where hpo-lstm's space has it), the same tutorial training epoch by epoch
    with ``trial.report(val_rmse, epoch)`` / ``trial.should_prune()``, returning the last
    epoch's validation RMSE; ``TPESampler(seed=seed)``, ``MedianPruner()`` (its defaults),
    ``study.optimize``; torch's default thread count. Only completed trials count (Optuna's
    ``best_value``).
(c) hpo-lstm: ``run_study`` with its defaults (WOA, pop_size 8, early stopping, median pruning,
    one worker per core, one torch thread each, SQLite storage in a temporary folder); only the
    budget is raised so that the cap, not the budget, ends it. A value counts when the driver
    receives it (its progress sink), pruned candidates' values included (they are its fitness).

Each method's value is the validation RMSE (ppm) of the model it would hand over: (a) and (b)
the last epoch's model, (c) the best epoch's weights (early stopping keeps them). The clock
starts when the method starts (worker start-up included) and stops when its best value is
within ``--tolerance`` (1%) of the reference; a run that does not get there by ``--cap``
seconds counts as the cap (a median at the cap is a lower bound, marked ``>=``).

The reference (``--reference``): ``best-seen`` (default), the best validation RMSE that any run
of any method reached (every run then goes on to the cap, as the target is known only at the
end); or a number, when one is established, and runs then stop at the target. ``--save`` and
``--summarise`` let a long run be made in pieces (each within the machine's limits) and judged
together. ``--load`` runs everything with a busy process (``python -c "while True: pass"``)
competing for one core, as ``study_speed.py --load`` does. ``--quick``: 3 epochs, a 30 s cap.
Ends with one key=value line, the headline first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study_speed import DEFAULT_THREADS, competing_load, study_space, tutorial_rmse, tutorial_train, windows  # noqa: E402

from hpo_lstm.config import StudyConfig  # noqa: E402
from hpo_lstm.models import build_model  # noqa: E402
from hpo_lstm.study import prepare_dataset, run_study  # noqa: E402

METHODS = ("tutorial", "optuna", "hpo-lstm")
BAD = 1e12  # what the tutorial's mealpy loop scores a diverged candidate with


class TargetReached(Exception):
    """Raised inside a method's loop once its best value meets the target."""


class Trace:
    """Times (seconds since the method started) at which each value became known."""

    def __init__(self, target: float | None) -> None:
        self.target = target
        self.start = time.perf_counter()
        self.events: list[tuple[float, float]] = []

    def value(self, value: float) -> None:
        self.events.append((time.perf_counter() - self.start, value))
        if self.target is not None and math.isfinite(value) and value <= self.target:
            raise TargetReached

    def best(self) -> float:
        finite = [v for _, v in self.events if math.isfinite(v)]
        return min(finite) if finite else math.inf

    def time_to(self, target: float) -> float | None:
        best = math.inf
        for seconds, value in self.events:
            best = min(best, value) if math.isfinite(value) else best
            if best <= target:
                return seconds
        return None


class _Cap:
    """SIGINT to the main thread after ``seconds``: a method's loop stops as at Ctrl-C
    (hpo-lstm's run_study holds it back while in storage code, then stops its workers)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def __enter__(self) -> _Cap:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background (`cmd &`): the cap needs it
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def run_tutorial_woa(dataset: Any, space: Any, seed: int, max_epochs: int, trace: Trace) -> None:
    from mealpy import FloatVar, Problem
    from mealpy.swarm_based.WOA import OriginalWOA

    torch.set_num_threads(DEFAULT_THREADS)

    def fitness(solution: np.ndarray) -> float:
        params = space.decode(solution)
        value = tutorial_rmse(tutorial_train(params, dataset, max_epochs, seed), dataset, "val", params)
        trace.value(value)
        return value if math.isfinite(value) else BAD

    problem = Problem(
        bounds=FloatVar(lb=[0.0] * space.dim, ub=[1.0] * space.dim), minmax="min", obj_func=fitness, log_to=None
    )
    OriginalWOA(epoch=10_000, pop_size=8).solve(problem, seed=seed)


def run_optuna(dataset: Any, space: Any, seed: int, max_epochs: int, trace: Trace) -> None:
    import optuna
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(DEFAULT_THREADS)
    torch.manual_seed(seed)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not a traceback per capped trial
    y_train = torch.from_numpy(dataset.y[dataset.split("train")])

    def objective(trial: optuna.Trial) -> float:
        params = {
            p.name: trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
            if p.integer
            else trial.suggest_float(p.name, p.low, p.high, log=p.log)
            for p in space.params
        }  # the same names and bounds as hpo-lstm's space (learning_rate, hidden_size, n_layers[, lookback])
        model = build_model("lstm", params, n_features=dataset.n_features)
        loader = DataLoader(
            TensorDataset(torch.from_numpy(windows(dataset, "train", params)), y_train), batch_size=64, shuffle=True
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
        loss_fn = nn.MSELoss()
        for epoch in range(max_epochs):
            model.train()
            for xb, yb in loader:
                optimizer.zero_grad()
                loss_fn(model(xb), yb).backward()
                optimizer.step()
            val_rmse = tutorial_rmse(model, dataset, "val", params)
            trial.report(val_rmse, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return val_rmse

    def completed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            try:
                trace.value(trial.value)
            except TargetReached:
                study.stop()

    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner()
    )
    study.optimize(objective, n_trials=100_000, callbacks=[completed])
    if trace.target is not None and trace.best() <= trace.target:
        raise TargetReached


class _Sink:
    """hpo-lstm's progress sink: each evaluation's value as the driver receives it."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def batch(self, trainings: int) -> None:
        pass

    def evaluated(self, *, value: float, kind: str) -> None:
        self.trace.value(value)

    def final(self, *, done: bool) -> None:
        pass


def run_hpo_lstm(dataset: Any, space: Any, seed: int, max_epochs: int, trace: Trace) -> None:
    with tempfile.TemporaryDirectory() as out:
        config = StudyConfig(
            seed=seed,
            max_epochs=max_epochs,
            budget=10_000,
            out=out,
            storage=f"sqlite:///{out}/ttt.db",
            name=f"ttt-{seed}",
        )
        run_study(config, dataset=dataset, progress=_Sink(trace))


RUNNERS: dict[str, Callable[..., None]] = {"tutorial": run_tutorial_woa, "optuna": run_optuna, "hpo-lstm": run_hpo_lstm}


def run_one(
    method: str, dataset: Any, space: Any, seed: int, max_epochs: int, target: float | None, cap: float
) -> Trace:
    trace = Trace(target)
    with _Cap(cap) as timer:
        try:
            RUNNERS[method](dataset, space, seed, max_epochs, trace)
        except TargetReached:
            pass
        except KeyboardInterrupt:
            if not timer.fired:
                raise
    return trace


def _median(times: list[float | None], cap: float) -> tuple[float, bool]:
    """Median with runs that did not reach the target counted as the cap; True when such a
    run is part of the median, which is then a lower bound."""
    n, censored = len(times), sum(t is None for t in times)
    return statistics.median(cap if t is None else t for t in times), censored >= n - n // 2


def summarise(runs: list[dict[str, Any]], methods: list[str], fixed: float | None, tolerance: float) -> None:
    """Print each method's times to the target and the key=value line, from recorded runs
    (``{"method", "seed", "cap", "events": [[seconds, value], ...], ...}``)."""
    traces = {}
    for run in runs:
        trace = Trace(None)
        trace.events = [(float(t), float(v)) for t, v in run["events"]]
        traces[run["method"], run["seed"]] = (trace, float(run["cap"]))
    methods = [m for m in methods if any(m == k[0] for k in traces)]
    seeds = sorted({seed for _, seed in traces})
    reference = fixed if fixed is not None else min(t.best() for t, _ in traces.values())
    target = reference * (1 + tolerance)
    caps = {cap for _, cap in traces.values()}
    medians, reached, counts = {}, {}, {}
    for method in methods:
        runs_of = [traces[key] for key in sorted(traces) if key[0] == method]
        times = [trace.time_to(target) for trace, _ in runs_of]
        medians[method] = _median(times, max(cap for _, cap in runs_of))
        reached[method], counts[method] = sum(t is not None for t in times), len(times)
        shown = " ".join("-" if t is None else f"{t:.0f}" for t in times)
        print(
            f"{method:>8}: seconds to within {tolerance:.0%} of {reference:.5f} ({target:.5f}), seed by seed: "
            f"{shown}; median {'>=' if medians[method][1] else ''}{medians[method][0]:.0f} s, "
            f"reached {reached[method]}/{counts[method]}"
        )

    def ratio(method: str) -> str:
        if method not in medians or "hpo-lstm" not in medians:
            return "nan"
        (num, num_low), (den, den_low) = medians[method], medians["hpo-lstm"]
        # A median at the cap is a lower bound: the ratio is then one too, an upper one, or unknown.
        bound = {(False, False): "", (True, False): ">=", (False, True): "<=", (True, True): "~"}[num_low, den_low]
        return f"{bound}{num / den:.2f}"

    keys = {"tutorial": "tutorial", "optuna": "optuna", "hpo-lstm": "ours"}
    summary = " ".join(f"{keys[m]}_s={'>=' if medians[m][1] else ''}{medians[m][0]:.0f}" for m in methods)
    reach = " ".join(f"{keys[m]}_reached={reached[m]}/{counts[m]}" for m in methods)
    loads = [run.get("loadavg") for run in runs if run.get("loadavg") is not None]
    added = "/".join(str(n) for n in sorted({int(run.get("load", 0)) for run in runs}))
    print(
        f"ratio={ratio('tutorial')} optuna_ratio={ratio('optuna')} load={added} {summary} {reach} reference={reference:.5f} "
        f"reference_kind={'fixed' if fixed is not None else 'best-seen'} tolerance={tolerance} "
        f"cap_s={'/'.join(f'{c:.0f}' for c in sorted(caps))} seeds={len(seeds)} "
        f"max_epochs={'/'.join(str(e) for e in sorted({run.get('max_epochs') for run in runs}))} "
        f"loadavg_min={min(loads, default=math.nan):.2f} loadavg_max={max(loads, default=math.nan):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--cap", type=float, default=900.0, help="seconds per method and seed")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--reference", default="best-seen", help="best-seen (default), or a validation RMSE")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--save", metavar="FILE", help="append each run (its values over time) to FILE, JSON lines")
    parser.add_argument(
        "--summarise", metavar="FILE", nargs="+", help="train nothing: summarise runs saved with --save"
    )
    parser.add_argument("--load", action="store_true", help="a busy process competes for one core")
    parser.add_argument("--quick", action="store_true", help="3 epochs, 30 s cap")
    args = parser.parse_args()
    if args.quick:
        args.max_epochs, args.cap = 3, 30.0
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    fixed = None if args.reference == "best-seen" else float(args.reference)
    if args.summarise:
        runs = []
        for name in args.summarise:
            with open(name) as handle:
                runs.extend(json.loads(line) for line in handle if line.strip())
        summarise(runs, methods, fixed, args.tolerance)
        return
    target = None if fixed is None else fixed * (1 + args.tolerance)

    config = StudyConfig()
    dataset = prepare_dataset(config)
    space = study_space(config, dataset)
    print(
        f"space {space.names}, {dataset.n_features} input features, max {args.max_epochs} epochs, cap {args.cap:.0f} s",
        flush=True,
    )
    runs = []
    with competing_load(args.load) as busy:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for method in methods:
                load = os.getloadavg()[0]
                trace = run_one(method, dataset, space, seed, args.max_epochs, target, args.cap)
                run = {
                    "method": method,
                    "seed": seed,
                    "cap": args.cap,
                    "max_epochs": args.max_epochs,
                    "load": int(busy is not None),
                    "loadavg": load,
                    "loadavg_end": os.getloadavg()[0],
                    "events": trace.events,
                }
                runs.append(run)
                if args.save:
                    with open(args.save, "a") as handle:
                        handle.write(json.dumps(run) + "\n")
                reached = trace.time_to(target) if target is not None else None
                ran = trace.events[-1][0] if trace.events else 0.0
                outcome = f"target at {reached:.1f} s" if reached is not None else f"last value at {ran:.0f} s"
                print(
                    f"{method:>8} seed {seed}: {len(trace.events):4d} values, best {trace.best():.4f}, {outcome} "
                    f"(load average {load:.2f} at its start, {run['loadavg_end']:.2f} at its end)",
                    flush=True,
                )
    summarise(runs, methods, fixed, args.tolerance)


if __name__ == "__main__":
    main()
