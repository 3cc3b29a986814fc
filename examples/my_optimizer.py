"""An optimizer of your own for hpo-lstm: `hpo-lstm run --optimizer my_optimizer:MyOptimizer`
(docs/optimizers.md).

Subclass ``hpo_lstm.optimizers.Optimizer`` and implement ``_run(objective, space, budget,
seed)``: ``objective`` takes a list of points of the unit cube ``[0, 1]^space.dim`` (one batch,
trained in parallel) and returns their validation RMSEs (a failed training comes back as a
large finite penalty); hpo-lstm decodes the points into parameters, records every evaluation
and stops the loop when the budget is spent. The path must depend on ``seed`` and the values
alone, so that a study resumes by replaying it.

(A subclass of a mealpy optimizer works too: it runs as any ``mealpy:<ClassName>`` does.)
"""

from __future__ import annotations

import numpy as np

from hpo_lstm.optimizers import Optimizer


class MyOptimizer(Optimizer):
    """Random restarts around the best point so far: a batch of ``pop_size`` points, half drawn
    uniformly, half a Gaussian step (scale 0.1) from the best point."""

    name = "my-optimizer"
    summary = "uniform draws and Gaussian steps around the best point so far"

    def _run(self, objective, space, budget: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        best, best_value = None, np.inf
        while True:  # hpo-lstm ends the loop when the budget is spent
            batch = []
            for i in range(self.pop_size):
                if best is None or i % 2 == 0:
                    batch.append(rng.random(space.dim))
                else:
                    batch.append(np.clip(best + rng.normal(0.0, 0.1, space.dim), 0.0, 1.0))
            for point, value in zip(batch, objective(batch)):
                if value < best_value:
                    best, best_value = point, value
