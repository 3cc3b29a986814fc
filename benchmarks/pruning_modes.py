"""Median pruning against successive halving (and no pruning) on the default study.

    python benchmarks/pruning_modes.py [--seeds 0,1] [--modes median,halving,off] [--data co2]

Each mode runs the default study (WOA, LSTM, budget 24, the season-aware defaults) with the
same seeds, one after another in this process's storage under a temporary folder. Printed per
run: epochs trained (the sum over every training; halving counts the epochs a candidate
repeats when it goes on to the next rung), driver wall time, best validation RMSE and the
final model's test RMSE. Epochs are the machine-independent cost; wall times are noisy on a
shared machine. Ends with one key=value line: the halving/median epoch ratio first, then
each mode's mean test RMSE and wall.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--modes", default="median,halving,off")
    parser.add_argument("--data", default="co2")
    parser.add_argument("--target", default=None)
    parser.add_argument("--budget", type=int, default=24)
    args = parser.parse_args()
    from hpo_lstm import StudyConfig, run_study

    seeds = [int(s) for s in args.seeds.split(",")]
    modes = args.modes.split(",")
    rows = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for mode in modes:
                config = StudyConfig(
                    data=args.data,
                    target=args.target,
                    optimizer="woa",
                    budget=args.budget,
                    seed=seed,
                    pruning=mode,
                    out=str(Path(tmp) / mode),
                )
                started = time.perf_counter()
                result = run_study(config)
                wall = time.perf_counter() - started
                summary = result.summary()
                trials = result.trials
                trained = (
                    trials[trials["user_attrs_duplicate_of"].isna()] if "user_attrs_duplicate_of" in trials else trials
                )
                # Halving retrains a promoted candidate from its start: its rung epochs count twice.
                epochs = float(trained["user_attrs_epochs"].fillna(0).sum())
                if mode == "halving":
                    from hpo_lstm.pruning import halving_rungs

                    rungs = halving_rungs(config.max_epochs)
                    for value in trained["user_attrs_epochs"].fillna(0):
                        epochs += sum(r for r in rungs[:-1] if value > r)
                rows[mode].append((epochs, wall, summary["best_val_rmse"], summary["test"]["rmse"]))
                print(
                    json.dumps(
                        {
                            "mode": mode,
                            "seed": seed,
                            "epochs": epochs,
                            "wall_s": round(wall, 1),
                            "best_val_rmse": summary["best_val_rmse"],
                            "test_rmse": summary["test"]["rmse"],
                        }
                    ),
                    flush=True,
                )
    mean = {m: np.mean(np.array(v), axis=0) for m, v in rows.items()}
    parts = []
    if "halving" in mean and "median" in mean:
        parts.append(f"epochs_halving_over_median={mean['halving'][0] / mean['median'][0]:.3f}")
    for m in modes:
        parts += [
            f"test_rmse_{m}={mean[m][3]:.4f}",
            f"val_rmse_{m}={mean[m][2]:.4f}",
            f"epochs_{m}={mean[m][0]:.0f}",
            f"wall_{m}={mean[m][1]:.0f}",
        ]
    print(" ".join(parts + [f"seeds={args.seeds}", f"data={args.data}"]))


if __name__ == "__main__":
    main()
