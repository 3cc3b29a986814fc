"""The same fixed candidates trained the tutorial way and through hpo-lstm's evaluation path, side by side.

    python benchmarks/study_speed.py [--candidates 16] [--max-epochs 20] [--seed 0] [--load] [--pruning off] [--quick]
    python benchmarks/study_speed.py --quick     # 4 candidates, 2 epochs: checks that it runs

Identical work on both sides: one list of candidates, drawn once from the search space a default
study searches on this data (learning rate, hidden size, layers, and the lookback where the data
gives a season) with a fixed seed, in which the costliest draw is
moved to the space's largest corner (hidden_size 256, n_layers 4) so that large models are in
it for sure. Same data (built-in CO2, with the calendar features a default study adds), same
maximum epochs, same network class, the candidate's lookback cut from the same windows.

(a) tutorial: what the seed scripts do - torch DataLoader with shuffle, torch's default thread
    count, every candidate trained for the full max epochs (no early stopping, no pruning), one
    candidate after another, the model after its last epoch scored on validation; then the
    best candidate retrained once and scored on test.
(b) hpo-lstm: ``run_study`` with its defaults (local executor, one worker process per core
    with one torch thread each, early stopping, median pruning, a real Recorder on a temporary
    SQLite storage, the final model = the best candidate's kept weights). The only thing
    changed is the optimizer: a fixed-list "optimizer" registered here that proposes the list
    above in batches of pop_size (default 8), so the search cannot part ways from (a). This is
    the path a study takes (Evaluator -> executor.map -> workers -> Recorder -> final model),
    worker start-up included in its wall time.

``--load`` runs the same with a busy process (``python -c "while True: pass"``) competing for
one core, killed at the end. Prints both walls, (b)'s core utilisation (busy CPU seconds of
the driver and its worker processes / wall / cores), epochs trained and the test RMSE of each
side's final model. Ends with one key=value line, the headline (wall-time ratio) first.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hpo_lstm.config import StudyConfig
from hpo_lstm.models import build_model
from hpo_lstm.optimizers import Optimizer, registry
from hpo_lstm.space import SearchSpace
from hpo_lstm.study import prepare_dataset, run_study

DEFAULT_THREADS = torch.get_num_threads()  # before run_study sets one thread in this process


@contextlib.contextmanager
def competing_load(on: bool) -> Iterator[subprocess.Popen[bytes] | None]:
    """``--load``: when ``on``, a busy process (``python -c "while True: pass"``) competes for one
    core until the block ends; yields it (None when off)."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield busy
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


class FixedCandidates(Optimizer):
    """Proposes a given list of unit vectors, ``pop_size`` at a time, whatever their fitness."""

    name: ClassVar[str] = "fixed-list"
    summary: ClassVar[str] = "a fixed list of candidates (benchmarks/study_speed.py)"

    def __init__(self, *, pop_size: int = 8, units: Any = ()) -> None:
        super().__init__(pop_size=pop_size)
        self.units = [np.asarray(u, dtype=float) for u in units]

    def _run(self, objective: Any, space: SearchSpace, budget: int, seed: int) -> None:
        for start in range(0, len(self.units), self.pop_size):
            objective(self.units[start : start + self.pop_size])


def study_space(config: StudyConfig, dataset: Any) -> SearchSpace:
    """The space a study of ``config`` searches on this data: the default space, with the
    lookback searched when the data gives a season (as run_study settles it)."""
    if hasattr(config, "for_data"):
        return config.for_data(dataset.point_times, len(dataset.level)).space
    return config.space


def draw_candidates(space: SearchSpace, n: int, seed: int) -> list[list[float]]:
    """``n`` uniform draws from the unit cube; the costliest is moved to the largest corner."""
    units = np.random.default_rng(seed).random((n, space.dim))
    params = [space.decode(u) for u in units]
    costliest = max(range(n), key=lambda i: params[i]["hidden_size"] ** 2 * params[i]["n_layers"])
    for name in ("hidden_size", "n_layers"):
        units[costliest, space.names.index(name)] = 1.0
    return units.tolist()


def windows(dataset: Any, split: str, params: dict[str, Any]) -> np.ndarray:
    """``split``'s input windows, cut to the candidate's lookback when it is searched (the
    dataset's windows have the longest one), as hpo-lstm's training does."""
    lookback = int(params.get("lookback", dataset.lookback))
    return dataset.x[dataset.split(split)][:, -lookback:, :]


def tutorial_train(params: dict[str, Any], dataset: Any, max_epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model("lstm", params, n_features=dataset.n_features)
    optimizer = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    loader = DataLoader(
        TensorDataset(
            torch.from_numpy(windows(dataset, "train", params)), torch.from_numpy(dataset.y[dataset.split("train")])
        ),
        batch_size=64,
        shuffle=True,
    )
    loss_fn = nn.MSELoss()
    for _ in range(max_epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    return model


def tutorial_rmse(model: nn.Module, dataset: Any, split: str, params: dict[str, Any]) -> float:
    model.eval()
    with torch.no_grad():
        predicted = dataset.to_level(model(torch.from_numpy(windows(dataset, split, params))).numpy(), split)
    return math.sqrt(float(np.mean((predicted - dataset.actual[dataset.split(split)]) ** 2)))


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds (user + system) of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run_tutorial(candidates: list[dict[str, Any]], dataset: Any, max_epochs: int, seed: int) -> dict[str, Any]:
    torch.set_num_threads(DEFAULT_THREADS)
    cpu_before, start = sum(cpu_seconds()), time.perf_counter()
    rows = []
    for params in candidates:
        began = time.perf_counter()
        value = tutorial_rmse(tutorial_train(params, dataset, max_epochs, seed), dataset, "val", params)
        rows.append((value, time.perf_counter() - began))
        print(
            f"    (a) {len(rows)}/{len(candidates)} trained: {params} val {value:.4f} in {rows[-1][1]:.1f} s "
            f"(load average {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    best = min(range(len(candidates)), key=lambda i: rows[i][0] if math.isfinite(rows[i][0]) else math.inf)
    test = tutorial_rmse(tutorial_train(candidates[best], dataset, max_epochs, seed), dataset, "test", candidates[best])
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "cpu": sum(cpu_seconds()) - cpu_before,
        "rows": rows,
        "best": best,
        "test": test,
        "epochs": (len(candidates) + 1) * max_epochs,
        "threads": DEFAULT_THREADS,
    }


def run_hpo_lstm(config: StudyConfig, dataset: Any) -> dict[str, Any]:
    own_before, children_before = cpu_seconds()
    start, clock = time.perf_counter(), time.time()
    result = run_study(config, dataset=dataset)  # defaults: local executor, workers = cores, 1 thread each
    wall = time.perf_counter() - start
    own_after, children_after = cpu_seconds()  # the pool's workers were joined: their time is in
    trials = result.trials.sort_values("user_attrs_evaluation")
    # Trials carry their training's own start and end: where the wall time outside training went.
    first = min(t.timestamp() for t in trials["datetime_start"]) - clock
    last = max(t.timestamp() for t in trials["datetime_complete"]) - clock
    return {
        "wall": wall,
        "cpu": own_after - own_before + children_after - children_before,
        "result": result,
        "trials": trials,
        "epochs": int(trials["user_attrs_epochs"].sum()),
        "first": first,
        "last": last,
        "train_s": float(trials["user_attrs_train_seconds"].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--pop-size", type=int, default=8, help="hpo-lstm's batch size (its default: 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pruning", help="(b)'s pruning mode when not its default (e.g. off: what pruning saves)")
    parser.add_argument("--load", action="store_true", help="a busy process competes for one core")
    parser.add_argument("--quick", action="store_true", help="4 candidates, 2 epochs: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.candidates, args.max_epochs = 4, 2
    if "fixed-list" not in registry:
        registry.register(FixedCandidates)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with competing_load(args.load) as busy:
        load_start = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as out:
            base = StudyConfig(out=out, storage=f"sqlite:///{out}/speed.db", max_epochs=args.max_epochs, seed=args.seed)
            dataset = prepare_dataset(base)
            space = study_space(base, dataset)
            units = draw_candidates(space, args.candidates, args.seed)
            config = base.replace(
                name="study-speed",
                optimizer="fixed-list",
                optimizer_options={"units": units},
                pop_size=args.pop_size,
                budget=args.candidates,
                **({"pruning": args.pruning} if args.pruning else {}),
            )
            candidates = [space.decode(u) for u in units]
            naive = math.sqrt(float(np.mean((dataset.naive("test") - dataset.actual[dataset.split("test")]) ** 2)))

            a = run_tutorial(candidates, dataset, args.max_epochs, args.seed)
            b = run_hpo_lstm(config, dataset)
        load_end = os.getloadavg()[0]

    result, trials = b["result"], b["trials"]
    print(
        f"{len(candidates)} candidates from {space.names}, {dataset.n_features} input features, max {args.max_epochs} "
        f"epochs, seed {args.seed}, {cores} cores, "
        f"{'one busy process competing' if busy else 'no added load'}; load average {load_start:.2f} at start, "
        f"{load_end:.2f} at end"
    )
    print(
        f"{'#':>2} {'lr':>8} {'hidden':>6} {'layers':>6} {'lookback':>8} | {'(a) val':>8} {'s':>6} | {'(b) val':>8} "
        f"{'state':>8} {'epochs':>6} {'s':>6}"
    )
    for i, (params, (value, seconds), (_, trial)) in enumerate(zip(candidates, a["rows"], trials.iterrows())):
        print(
            f"{i:>2} {params['learning_rate']:8.5f} {params['hidden_size']:>6} {params['n_layers']:>6} "
            f"{params.get('lookback', dataset.lookback):>8} | "
            f"{value:8.4f} {seconds:6.1f} | {trial['value']:8.4f} {trial['state']:>8} "
            f"{int(trial['user_attrs_epochs']):>6} {trial['user_attrs_train_seconds']:6.1f}"
        )
    a_util = a["cpu"] / a["wall"] / cores
    b_util = b["cpu"] / b["wall"] / cores
    best_a = candidates[a["best"]]
    print(
        f"(a) tutorial: {a['wall']:7.1f} s  {a['epochs']} epochs ({a['threads']} torch threads)  core utilisation "
        f"{a_util:.2f}  best #{a['best']} val {a['rows'][a['best']][0]:.4f}  test RMSE {a['test']:.4f} "
        f"(retrained {best_a})"
    )
    print(
        f"(b) hpo-lstm: {b['wall']:7.1f} s  {b['epochs']} epochs ({result.n_pruned} pruned)  core utilisation "
        f"{b_util:.2f} ({b['cpu']:.0f} CPU s)  best val {result.search.best_value:.4f}  test RMSE "
        f"{result.final.test['rmse']:.4f} (final model: {result.final.source}, {result.final.params})"
    )
    print(
        f"    (b) in detail: first training started at {b['first']:.1f} s (worker start-up), the last ended at "
        f"{b['last']:.1f} s, then {b['wall'] - b['last']:.1f} s to the end (final model, records); "
        f"{b['train_s']:.0f} s of training in {b['last'] - b['first']:.0f} s on {min(cores, args.pop_size)} workers"
    )
    print(f"naive last value test RMSE {naive:.4f}")
    print(
        f"ratio={a['wall'] / b['wall']:.2f} load={int(busy is not None)} baseline_s={a['wall']:.0f} "
        f"ours_s={b['wall']:.0f} ours_core_util={b_util:.2f} baseline_core_util={a_util:.2f} "
        f"baseline_epochs={a['epochs']} ours_epochs={b['epochs']} ours_pruned={result.n_pruned} "
        f"baseline_test_rmse={a['test']:.4f} ours_test_rmse={result.final.test['rmse']:.4f} "
        f"test_rmse_change={result.final.test['rmse'] / a['test'] - 1:+.1%} naive_test_rmse={naive:.4f} "
        f"candidates={len(candidates)} max_epochs={args.max_epochs} pruning={config.pruning} loadavg_start={load_start:.2f} "
        f"loadavg_end={load_end:.2f}"
    )


if __name__ == "__main__":
    main()
