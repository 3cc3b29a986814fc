"""Does lowering the learning rate on a validation plateau beat a constant rate on CO2?

    python benchmarks/lr_schedule.py [--candidates 8] [--seed 0]

Draws a fixed list of candidates once (uniform on the unit cube of the default LSTM space,
numpy generator seeded with --seed) and trains each on the built-in CO2 series twice, with
``lr_schedule`` "constant" (Adam's searched rate throughout) and "plateau" (torch's
ReduceLROnPlateau on the validation RMSE: halved after ``plateau_patience(patience)`` epochs
without a new best), under the study defaults: max_epochs 30, patience 5, batch size 64,
lookback 24, horizon 1, one torch thread. Same seed, same data, same epoch limit: only the
schedule differs. The test RMSE is each training's best-epoch model scored on the test split
(reported here only; no study ever chooses by it).

Prints one row per candidate and schedule, the mean and median validation and test RMSE and
epochs per schedule, and ends with one key=value line: the headline (the mean validation RMSE
of plateau relative to constant) first, then the mean paired difference (plateau - constant)
with its standard error, the best candidate's validation RMSE either way (what a search
keeps), the means and medians, and how many candidates plateau trained to a lower one.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from hpo_lstm.config import StudyConfig
from hpo_lstm.space import default_space
from hpo_lstm.study import prepare_dataset
from hpo_lstm.training import TrainSettings, predict, train_candidate

SCHEDULES = ("constant", "plateau")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="seeds the draw of candidates and every training")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as every study trains (docs/design.md: one torch thread per worker)

    config = StudyConfig(optimizer="random", name="lr-schedule", device="cpu")  # the defaults: co2, lstm
    dataset = prepare_dataset(config)
    space = default_space(model=config.model)
    rng = np.random.default_rng(args.seed)
    candidates = [space.decode(u) for u in rng.random((args.candidates, space.dim))]
    test = dataset.split("test")
    actual = dataset.actual[test]

    rows: dict[str, list[tuple[float, float, int]]] = {s: [] for s in SCHEDULES}
    started = time.perf_counter()
    for i, params in enumerate(candidates):
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        for schedule in SCHEDULES:
            settings = TrainSettings.from_config(config.replace(lr_schedule=schedule), "cpu")
            result, model = train_candidate(config.model, params, dataset, settings, seed=args.seed, keep_model=True)
            test_rmse = math.sqrt(float(np.mean((predict(model, dataset, "test") - actual) ** 2)))
            rows[schedule].append((result.val_rmse, test_rmse, result.epochs))
            print(
                f"{i} {shown} {schedule:>8}: val {result.val_rmse:.4f} test {test_rmse:.4f} "
                f"epochs {result.epochs} final lr {result.final_learning_rate:.3g} ({result.seconds:.1f} s)"
            )
    summary: dict[str, dict[str, float]] = {}
    for schedule in SCHEDULES:
        val, tst, epochs = (list(column) for column in zip(*rows[schedule]))
        summary[schedule] = {
            "val_mean": statistics.fmean(val),
            "val_median": statistics.median(val),
            "test_mean": statistics.fmean(tst),
            "test_median": statistics.median(tst),
            "epochs_mean": statistics.fmean(epochs),
            "epochs_median": statistics.median(epochs),
        }
        s = summary[schedule]
        print(
            f"{schedule:>8}: val RMSE mean {s['val_mean']:.4f} median {s['val_median']:.4f} | test RMSE mean "
            f"{s['test_mean']:.4f} median {s['test_median']:.4f} | epochs mean {s['epochs_mean']:.1f} "
            f"median {s['epochs_median']:g}"
        )
    pairs = list(zip(rows["plateau"], rows["constant"]))
    wins = sum(p[0] < c[0] for p, c in pairs)
    ties = sum(p[0] == c[0] for p, c in pairs)
    # Paired: each candidate trained both ways; the spread of the differences says what a
    # difference of the means is worth.
    diffs = [p[0] - c[0] for p, c in pairs]
    diff_se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    c, p = summary["constant"], summary["plateau"]
    print(
        f"val_ratio={p['val_mean'] / c['val_mean']:.4f} "
        f"val_diff_mean={statistics.fmean(diffs):+.4f} val_diff_se={diff_se:.4f} "
        f"val_best_constant={min(r[0] for r in rows['constant']):.4f} "
        f"val_best_plateau={min(r[0] for r in rows['plateau']):.4f} "
        f"val_mean_constant={c['val_mean']:.4f} val_mean_plateau={p['val_mean']:.4f} "
        f"val_median_constant={c['val_median']:.4f} val_median_plateau={p['val_median']:.4f} "
        f"test_mean_constant={c['test_mean']:.4f} test_mean_plateau={p['test_mean']:.4f} "
        f"test_median_constant={c['test_median']:.4f} test_median_plateau={p['test_median']:.4f} "
        f"epochs_mean_constant={c['epochs_mean']:.1f} epochs_mean_plateau={p['epochs_mean']:.1f} "
        f"plateau_better={wins} ties={ties} candidates={len(candidates)} seconds={time.perf_counter() - started:.0f}"
    )


if __name__ == "__main__":
    main()
