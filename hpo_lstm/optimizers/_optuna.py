"""Optuna samplers (TPE, CMA-ES, GP, random search) driven through ask/tell, a batch of asks at a time.

The sampler works on the same unit cube as the metaheuristics (one uniform [0, 1] variable per
searched parameter, decoded by the space), in a private in-memory study: the record of the run
is kept by the caller, not here, so these optimizers minimise any objective. A resumed study
replays the recorded values through the same asks and tells, so the sampler's state (TPE's
model, CMA-ES's mean and covariance, the GP's fitted kernel) is rebuilt exactly.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from hpo_lstm._errors import ConfigError
from hpo_lstm._logging import quiet_optuna
from hpo_lstm.optimizers._base import PENALTY, Optimizer, _Ledger
from hpo_lstm.space import SearchSpace

__all__ = ["CmaEs", "GP", "RandomSearch", "TPE"]


class _OptunaOptimizer(Optimizer):
    """Asks ``pop_size`` candidates at once (the batch evaluated together), then tells them."""

    # Penalised values (failed candidates) are told as failed trials, which the sampler ignores,
    # unless it ranks values (CMA-ES): there the penalty is simply the worst rank.
    _tell_penalty_as_value: ClassVar[bool] = False

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
                # Penalised values are told as failures: TPE and the GP then ignore them instead
                # of letting one huge number stretch their model of the bad region.
                failed = value >= PENALTY or not math.isfinite(value)
                if failed and not self._tell_penalty_as_value:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, PENALTY if failed else value)


def _check_startup(name: str, n_startup_trials: Any) -> int:
    if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int) or n_startup_trials < 0:
        raise ConfigError(
            f"The 'n_startup_trials' option of optimizer '{name}' must be an integer >= 0; got {n_startup_trials!r}."
        )
    return n_startup_trials


class TPE(_OptunaOptimizer):
    name = "tpe"
    summary = "Tree-structured Parzen estimator (Optuna TPESampler, multivariate, constant liar for batches)"

    def __init__(self, *, pop_size: int = 8, n_startup_trials: int = 10) -> None:
        super().__init__(pop_size=pop_size)
        self.n_startup_trials = _check_startup(self.name, n_startup_trials)

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, n_startup_trials=self.n_startup_trials
        )


class CmaEs(_OptunaOptimizer):
    """CMA-ES with one generation per batch: Optuna's sampler with ``popsize = pop_size``.

    Optuna samples the first batch at random (no trial is complete yet, so it knows no search
    space); from the second batch on, each batch is one CMA-ES generation started from the
    centre of the cube with sigma 1/6, and it is told once the whole generation is in.
    """

    name = "cmaes"
    summary = "CMA-ES (Optuna CmaEsSampler on the cmaes package; one generation per batch, popsize = pop_size)"
    min_pop_size: ClassVar[int] = 4  # cmaes' weights divide by zero for fewer than 4
    _tell_penalty_as_value = True  # CMA-ES uses ranks; a generation needs pop_size values

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        # The first batch is sampled at random by design (above): no warning about it.
        return optuna.samplers.CmaEsSampler(
            seed=seed, popsize=self.pop_size, n_startup_trials=0, warn_independent_sampling=False
        )


class GP(_OptunaOptimizer):
    """Gaussian-process Bayesian optimisation: Optuna's GPSampler (log expected improvement;
    for a batch, the asked but not yet evaluated candidates enter as running trials: qLogEI)."""

    name = "gp"
    summary = "Gaussian process, log expected improvement (Optuna GPSampler; batches by qLogEI over running trials)"

    def __init__(self, *, pop_size: int = 8, n_startup_trials: int = 10) -> None:
        super().__init__(pop_size=pop_size)
        self.n_startup_trials = _check_startup(self.name, n_startup_trials)

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials)


class RandomSearch(_OptunaOptimizer):
    name = "random"
    summary = "Random search, uniform on the unit cube (the baseline every comparison needs)"

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)
