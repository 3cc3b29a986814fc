"""hpo-lstm's `woa` (mealpy 3.0.3's moves) against mealpy-lts's own OriginalWOA, and random search.

    python benchmarks/woa_versions.py [--seeds 40]

On sphere, Rastrigin and Rosenbrock functions of 4 and 6 parameters (the unit cube, a centre
drawn per seed), population 8, budgets 24, 48 and 96: the median best value of each, and the
share of seeds where mealpy-lts's WOA found the lower one. The last line: ``lts_better_share=``
(over every function, size, budget and seed). docs/optimizers.md, "Which mealpy".
"""

from __future__ import annotations

import argparse

import numpy as np

from hpo_lstm.optimizers import registry
from hpo_lstm.space import Param, SearchSpace


def _function(kind: str, centre: np.ndarray):
    def f(params: dict[str, float]) -> float:
        u = np.array([params[f"x{i}"] for i in range(len(centre))]) - centre
        if kind == "sphere":
            return float(np.sum(u**2))
        if kind == "rastrigin":
            z = 4 * u
            return float(np.sum(z * z - np.cos(2 * np.pi * z) + 1))
        z = 4 * u + 1
        return float(np.sum(100 * (z[1:] - z[:-1] ** 2) ** 2 + (1 - z[:-1]) ** 2))

    return f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    methods = {"woa": "woa", "lts": "mealpy:OriginalWOA", "random": "random"}
    wins = []
    for dim in (4, 6):
        space = SearchSpace([Param(name=f"x{i}", low=0.0, high=1.0) for i in range(dim)])
        for kind in ("sphere", "rastrigin", "rosenbrock"):
            for budget in (24, 48, 96):
                best = {key: [] for key in methods}
                for seed in range(args.seeds):
                    f = _function(kind, np.random.default_rng(seed + 100).uniform(0.15, 0.85, dim))
                    for key, name in methods.items():
                        result = registry[name](pop_size=8).optimize(
                            lambda b: [f(p) for p in b], space, budget=budget, seed=seed
                        )
                        best[key].append(result.best_value)
                better = np.array(best["lts"]) < np.array(best["woa"])
                wins.extend(better)
                med = {k: np.median(v) for k, v in best.items()}
                print(
                    f"{kind:10s} dim {dim} budget {budget:3d}: median best woa {med['woa']:.4g}, mealpy-lts "
                    f"{med['lts']:.4g}, random {med['random']:.4g}; mealpy-lts lower in {better.mean():.0%}",
                    flush=True,
                )
    print(f"lts_better_share={np.mean(wins):.2f} seeds={args.seeds}")


if __name__ == "__main__":
    main()
