"""Optuna samplers (TPE, random search) driven through ask/tell, a batch of asks at a time.

The sampler works on the same unit cube as the metaheuristics (one uniform [0, 1] variable per
searched parameter, decoded by the space), in a private in-memory study: the record of the run
is kept by the caller, not here, so these optimizers minimise any objective.
"""

from __future__ import annotations

import math
from typing import Any

from hpo_lstm._logging import quiet_optuna
from hpo_lstm.optimizers._base import PENALTY, Optimizer, _Ledger
from hpo_lstm.space import SearchSpace

__all__ = ["RandomSearch", "TPE"]


class _OptunaOptimizer(Optimizer):
    """Asks ``pop_size`` candidates at once (the batch evaluated together), then tells them."""

    def _make_sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def _run(self, objective: _Ledger, space: SearchSpace, budget: int, seed: int) -> None:
        import optuna
        from optuna.distributions import FloatDistribution

        with quiet_optuna():  # a private in-memory study: nothing to announce
            study = optuna.create_study(direction="minimize", sampler=self._make_sampler(seed))
        distributions = {name: FloatDistribution(0.0, 1.0) for name in space.names}
        while objective.remaining > 0:
            trials = [study.ask(distributions) for _ in range(min(self.pop_size, objective.remaining))]
            units = [[trial.params[name] for name in space.names] for trial in trials]
            for trial, value in zip(trials, objective(units)):
                # Penalised values are told as failures: TPE then ignores them instead of
                # letting one huge number stretch its model of the bad region.
                if value >= PENALTY or not math.isfinite(value):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, value)


class TPE(_OptunaOptimizer):
    name = "tpe"
    summary = "Tree-structured Parzen estimator (Optuna TPESampler, multivariate, constant liar for batches)"

    def __init__(self, *, pop_size: int = 8, n_startup_trials: int = 10) -> None:
        super().__init__(pop_size=pop_size)
        self.n_startup_trials = n_startup_trials

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, n_startup_trials=self.n_startup_trials
        )


class RandomSearch(_OptunaOptimizer):
    name = "random"
    summary = "Random search, uniform on the unit cube (the baseline every comparison needs)"

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)
