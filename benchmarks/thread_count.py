"""Why every training runs with a fixed number of torch threads: the count changes the result.

    python benchmarks/thread_count.py [--max-epochs 3]

Trains the same candidates on the built-in CO2 data with 1 and with 2 torch threads and
compares the validation RMSE bit for bit, with the seconds each took. If any differs, giving
a batch's last (slowest) candidate the cores of idle workers would make a study's trials
depend on ``--workers`` and on timing, so hpo-lstm keeps one thread per training.
Ends with one key=value line, the headline first.
"""

from __future__ import annotations

import argparse
import time

import torch

from hpo_lstm.config import StudyConfig
from hpo_lstm.study import prepare_dataset
from hpo_lstm.training import TrainSettings, train_candidate

CANDIDATES = [
    ("lstm", {"learning_rate": 1e-3, "hidden_size": 32, "n_layers": 1}),
    ("lstm", {"learning_rate": 3e-3, "hidden_size": 128, "n_layers": 2}),
    ("bilstm", {"learning_rate": 3e-3, "hidden_size": 128, "n_layers": 2}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=3)
    args = parser.parse_args()
    dataset = prepare_dataset(StudyConfig(optimizer="random", name="threads", out="results"))
    settings = TrainSettings(max_epochs=args.max_epochs, patience=args.max_epochs, device="cpu")
    for threads in (1, 2):  # warm-up: torch's first training pays one-time set-up costs
        torch.set_num_threads(threads)
        train_candidate(*CANDIDATES[0], dataset, settings, seed=0)
    differ = 0
    for model, params in CANDIDATES:
        values = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            result, _ = train_candidate(model, params, dataset, settings, seed=0)
            values.append((result.val_rmse, time.perf_counter() - start))
        (one, s1), (two, s2) = values
        differ += one != two
        print(
            f"{model} {params}: 1 thread {one!r} ({s1:.1f} s), 2 threads {two!r} ({s2:.1f} s), "
            f"{'identical' if one == two else 'DIFFERENT'}"
        )
    print(f"differ={differ} candidates={len(CANDIDATES)} max_epochs={args.max_epochs}")


if __name__ == "__main__":
    main()
