"""Evaluations per minute with 1 and 2 worker processes on the same candidates, side by side.

    python benchmarks/workers.py [--candidates 8] [--max-epochs 15]

The candidates are a fixed, mixed set (learning rates, sizes, layers) trained on the built-in
CO2 data through hpo-lstm's LocalExecutor, exactly as a study's batch is; both runs must
return identical fitness values. The machine's load average is printed next to the figures:
on a busy shared machine the second worker has no core of its own.
Ends with one key=value line, the headline first.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hpo_lstm.data import load_series, make_dataset
from hpo_lstm.executors._local import LocalExecutor
from hpo_lstm.jobs import TrainJob
from hpo_lstm.training import TrainSettings


def candidates(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "learning_rate": float(10 ** rng.uniform(-3.5, -2)),
            "hidden_size": int(rng.choice([16, 32, 48, 64])),
            "n_layers": int(rng.integers(1, 3)),
        }
        for _ in range(n)
    ]


def timed(dataset, jobs, workers: int) -> tuple[float, list[float]]:
    with LocalExecutor(dataset=dataset, workers=workers, device="cpu") as pool:
        list(pool.map(jobs[:workers]))  # start the workers (spawn + import torch) outside the clock
        start = time.perf_counter()
        outcomes = dict(pool.map(jobs))
        seconds = time.perf_counter() - start
    return seconds, [outcomes[i].val_rmse for i in range(len(jobs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=15)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    dataset = make_dataset(load_series("co2"), lookback=24)
    settings = TrainSettings(max_epochs=args.max_epochs, patience=args.max_epochs)
    jobs = [TrainJob("lstm", p, settings, seed=0) for p in candidates(args.candidates)]
    load_before = os.getloadavg()[0]
    one, values_one = timed(dataset, jobs, 1)
    two, values_two = timed(dataset, jobs, 2)
    assert values_one == values_two, "1 and 2 workers must give identical fitness values"
    per_min_one, per_min_two = 60 * len(jobs) / one, 60 * len(jobs) / two
    print(f"1 worker : {one:6.1f} s  {per_min_one:5.1f} evaluations/min")
    print(f"2 workers: {two:6.1f} s  {per_min_two:5.1f} evaluations/min")
    print(
        f"speedup={per_min_two / per_min_one:.2f} evals_per_min_1={per_min_one:.1f} evals_per_min_2={per_min_two:.1f} "
        f"cores={os.cpu_count()} load_before={load_before:.2f} load_after={os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
