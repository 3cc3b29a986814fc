"""Does a fitness over K rolling-origin folds pick candidates that do better on test?

    python benchmarks/fitness_fidelity.py [--candidates 12] [--ks 1,2,3,5] [--series co2,elnino,msft]

For each series, one fixed list of candidates (drawn once from the default search space with
a fixed seed) is trained on every fold of K = 1, 2, 3, 5 (hpo_lstm.data.with_folds; the last
fold, the study's own split, is shared by every K and trained once). For each K:

* fitness = the mean validation RMSE over the K folds (what ``--folds K`` optimises);
* rho = Spearman rank correlation between fitness and test RMSE over the candidates (the test
  RMSE is that of the candidate's last-fold model: what the study would deliver);
* chosen = test RMSE of the candidate the fitness ranks first, and regret = chosen / the best
  test RMSE of any candidate - 1;
* cost = training seconds of all K folds of all candidates, relative to K = 1.

No pruning, early stopping as in a study (patience 5, up to max epochs). Series: the built-in
CO2 (weekly), and two public series shipped in studies/data (monthly Niño 1+2 sea surface
temperature; daily MSFT closing prices). Ends with one key=value line: the K=3 vs K=1 rank
correlation first, then each K's mean rho, regret and cost over the series.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

SERIES = {
    "co2": {"data": "co2"},
    "elnino": {"data": "studies/data/elnino_sst_1950_2010.csv", "target": "sst"},
    "msft": {"data": "studies/data/msft_2010_2017.csv", "target": "close"},
    "sunspots": {"data": "studies/data/sunspots_1700_2008.csv", "target": "sunspots", "lookback": 12},
}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


@functools.cache
def _dataset(series: str, folds: int):
    from hpo_lstm.config import StudyConfig
    from hpo_lstm.study import prepare_dataset

    return prepare_dataset(StudyConfig(**SERIES[series], folds=folds))


def _train(series: str, folds: int, fold: int, params: dict, max_epochs: int, seed: int) -> tuple[float, float, float]:
    """(validation RMSE, seconds, test RMSE or NaN) of one candidate on one fold."""
    from hpo_lstm.data import fold_of
    from hpo_lstm.training import TrainSettings, predict, train_candidate

    dataset = _dataset(series, folds)
    data = fold_of(dataset, fold)
    settings = TrainSettings(max_epochs=max_epochs, device="cpu")
    last = fold == folds - 1
    result, model = train_candidate("lstm", params, data, settings, seed=seed, keep_model=last)
    test = math.nan
    if last and model is not None:
        test_rows = dataset.split("test")
        predicted = predict(model, dataset, "test")
        test = float(np.sqrt(np.mean((predicted - dataset.actual[test_rows]) ** 2)))
    return result.val_rmse, result.seconds, test


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--ks", default="1,2,3,5")
    parser.add_argument("--series", default="co2,elnino,msft")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    names = args.series.split(",")

    from hpo_lstm.space import default_space

    space = default_space()
    rng = np.random.default_rng(args.seed)
    candidates = [space.decode(rng.random(space.dim)) for _ in range(args.candidates)]

    # Every (series, K, fold, candidate) training; a last fold is the same for every K.
    tasks: dict[tuple, tuple] = {}
    for name in names:
        for k in ks:
            for fold in range(k):
                for c in range(len(candidates)):
                    key = (name, "last", c) if fold == k - 1 else (name, k, fold, c)
                    tasks.setdefault(key, (name, k, fold, candidates[c], args.max_epochs, args.seed))
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers, initializer=_init_worker) as pool:
        futures = {key: pool.submit(_train, *task) for key, task in tasks.items()}
        done = {key: future.result() for key, future in futures.items()}
    wall = time.perf_counter() - started
    print(f"{len(tasks)} trainings in {wall:.0f} s with {args.workers} workers, {len(candidates)} candidates\n")

    summary: dict[int, dict[str, list[float]]] = {k: {"rho": [], "regret": [], "cost": [], "chosen": []} for k in ks}
    for name in names:
        test = np.array([done[(name, "last", c)][2] for c in range(len(candidates))])
        base_cost = None
        print(f"{name}: best test RMSE of any candidate {np.nanmin(test):.4g}")
        print(f"  {'K':>2} {'rho':>7} {'chosen test':>12} {'regret':>8} {'train s':>8} {'cost':>6}")
        for k in ks:
            fold_val = np.array(
                [
                    [done[(name, "last", c) if f == k - 1 else (name, k, f, c)][0] for f in range(k)]
                    for c in range(len(candidates))
                ]
            )
            seconds = sum(
                done[(name, "last", c) if f == k - 1 else (name, k, f, c)][1]
                for f in range(k)
                for c in range(len(candidates))
            )
            fitness = fold_val.mean(axis=1)
            rho = _spearman(fitness, test)
            chosen = float(test[int(np.nanargmin(fitness))])
            regret = chosen / float(np.nanmin(test)) - 1
            base_cost = base_cost or seconds
            cost = seconds / base_cost
            for key, value in (("rho", rho), ("regret", regret), ("cost", cost), ("chosen", chosen)):
                summary[k][key].append(value)
            print(f"  {k:>2} {rho:>7.3f} {chosen:>12.5g} {regret:>8.2%} {seconds:>8.0f} {cost:>5.2f}x")
        print()
    mean = {k: {key: float(np.nanmean(v)) for key, v in summary[k].items()} for k in ks}
    first = []
    if 1 in mean and 3 in mean:
        first.append(f"rho_k3_minus_k1={mean[3]['rho'] - mean[1]['rho']:.3f}")
    rest = [f"rho_k{k}={mean[k]['rho']:.3f}" for k in ks]
    rest += [f"regret_k{k}={mean[k]['regret']:.4f}" for k in ks]
    rest += [f"cost_k{k}={mean[k]['cost']:.2f}" for k in ks]
    print(" ".join(first + rest + [f"series={','.join(names)}", f"candidates={len(candidates)}"]))


if __name__ == "__main__":
    main()
