"""The one interface every optimizer implements, and the budget ledger they all share."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hpo_lstm._errors import ConfigError
from hpo_lstm.space import SearchSpace

__all__ = ["EvaluateBatch", "Evaluation", "MAX_SEED", "OptimizeResult", "Optimizer", "PENALTY", "SearchStopped"]

EvaluateBatch = Callable[[list[dict[str, Any]]], Sequence[float]]
"""Takes a batch of candidates (decoded params) and returns one fitness per candidate."""

# Given to an optimizer in place of a non-finite fitness (a diverged or failed candidate):
# worse than any finite fitness a forecaster produces, yet finite so that the arithmetic of
# roulette wheels and TPE stays defined.
PENALTY = 1e12

# `mealpy:<ClassName>` names any mealpy optimizer class (hpo_lstm.optimizers._any_mealpy).
MEALPY_PREFIX = "mealpy:"

# Seeds reach numpy's legacy generator (Optuna's samplers) and mealpy's, which take 32 bits.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Evaluation:
    """One fitness evaluation: which batch it belonged to, its params and its raw value."""

    index: int
    batch: int
    params: dict[str, Any]
    value: float


@dataclass(frozen=True)
class OptimizeResult:
    """What ``optimize`` returns: the best finite evaluation and the whole ordered history."""

    best_params: dict[str, Any] | None
    best_value: float
    evaluations: tuple[Evaluation, ...]

    @property
    def n_evaluations(self) -> int:
        return len(self.evaluations)


class _BudgetExhausted(Exception):
    """Raised inside an optimizer's loop once the budget is spent; caught by ``optimize``."""


class SearchStopped(_BudgetExhausted):
    """Raised by an ``evaluate_batch`` before a batch starts to end the search early (a time
    limit); ``optimize`` then returns the evaluations made so far, like a spent budget."""


class _Ledger:
    """Decodes unit vectors, calls ``evaluate_batch`` and never lets it exceed the budget.

    A batch that would overrun the budget is cut to what is left; after that, the optimizer's
    own loop is stopped by ``_BudgetExhausted``. This keeps budgets exact for population
    methods whose generations do not divide the budget.
    """

    def __init__(self, evaluate_batch: EvaluateBatch, space: SearchSpace, budget: int) -> None:
        self._evaluate_batch = evaluate_batch
        self._space = space
        self._budget = budget
        self.evaluations: list[Evaluation] = []
        self._n_batches = 0

    @property
    def remaining(self) -> int:
        return self._budget - len(self.evaluations)

    def __call__(self, units: Sequence[np.ndarray]) -> list[float]:
        """Evaluate unit vectors; returns fitness values with non-finite ones penalised."""
        if self.remaining <= 0:
            raise _BudgetExhausted
        take = list(units)[: self.remaining]
        params = [self._space.decode(u) for u in take]
        values = [float(v) for v in self._evaluate_batch(params)]
        if len(values) != len(params):
            raise RuntimeError(f"evaluate_batch returned {len(values)} values for {len(params)} candidates.")
        for p, v in zip(params, values):
            self.evaluations.append(Evaluation(len(self.evaluations), self._n_batches, p, v))
        self._n_batches += 1
        if len(take) < len(units):
            raise _BudgetExhausted
        return [v if math.isfinite(v) else PENALTY for v in values]

    def result(self) -> OptimizeResult:
        finite = [e for e in self.evaluations if math.isfinite(e.value)]
        if not finite:
            return OptimizeResult(None, math.inf, tuple(self.evaluations))
        best = min(finite, key=lambda e: e.value)  # first of equals: earliest evaluation wins
        return OptimizeResult(dict(best.params), best.value, tuple(self.evaluations))


class Optimizer(abc.ABC):
    """Base class: ``optimize(evaluate_batch, space, budget=, seed=)`` for every method.

    Subclasses implement ``_run(objective, space, budget, seed)``, where ``objective`` takes a
    list of unit vectors and returns their fitness values (see :class:`_Ledger`).
    """

    name: ClassVar[str]
    summary: ClassVar[str]

    def __init__(self, *, pop_size: int = 8) -> None:
        if isinstance(pop_size, bool) or not isinstance(pop_size, int) or pop_size < self.min_pop_size:
            raise ConfigError(
                f"The 'pop_size' option of optimizer '{self.name}' must be an integer >= {self.min_pop_size}; "
                f"got {pop_size!r}."
            )
        self.pop_size = pop_size

    min_pop_size: ClassVar[int] = 1

    @classmethod
    def implementation(cls) -> str | None:
        """The library and version whose code proposes the candidates, when another version could
        propose others for the same seed ("mealpy-lts 3.0.4.1"); None when that is not tracked.
        Part of a study's identity: a study is resumed only by the implementation that recorded it."""
        return None

    @property
    def min_budget(self) -> int:
        """Smallest budget this optimizer accepts."""
        return 1

    @property
    def max_budget(self) -> int | None:
        """Largest budget this optimizer can spend exactly (None: no limit)."""
        return None

    def check_budget(self, budget: Any) -> None:
        """Refuse a budget this optimizer cannot spend exactly, naming the rule."""
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < self.min_budget:
            raise ConfigError(
                f"The budget of optimizer '{self.name}' must be an integer >= {self.min_budget} "
                f"(one population of pop_size={self.pop_size}); got {budget!r}."
            )
        if self.max_budget is not None and budget > self.max_budget:
            raise ConfigError(
                f"`budget` {budget} is more than optimizer '{self.name}' can spend with pop_size={self.pop_size}: "
                f"at most {self.max_budget} ({self._max_budget_reason()})."
            )

    def _max_budget_reason(self) -> str:
        return "its limit"

    def check_search(self, space: SearchSpace, budget: int) -> None:
        """Refuse, before a study exists, a space or budget this optimizer cannot search with
        (default: none). ``mealpy:<Class>`` runs the class on a test function of this many
        parameters and checks its options with the generations the budget gives."""

    @staticmethod
    def check_seed(seed: Any) -> None:
        """Refuse a seed outside [0, 2**32 - 1], the range numpy's and Optuna's samplers take."""
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED} (2**32 - 1); got {seed!r}.")

    def optimize(self, evaluate_batch: EvaluateBatch, space: SearchSpace, *, budget: int, seed: int) -> OptimizeResult:
        """Minimise ``evaluate_batch`` over ``space`` with exactly ``budget`` evaluations."""
        self.check_budget(budget)
        self.check_seed(seed)
        ledger = _Ledger(evaluate_batch, space, budget)
        try:
            self._run(ledger, space, budget, seed)
        except _BudgetExhausted:
            pass
        return ledger.result()

    @abc.abstractmethod
    def _run(self, objective: _Ledger, space: SearchSpace, budget: int, seed: int) -> None:
        """Drive ``objective`` until the budget is spent (or the method ends by itself)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pop_size={self.pop_size})"
