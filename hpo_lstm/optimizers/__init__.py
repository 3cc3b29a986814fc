"""Swappable optimizers behind one registry.

>>> from hpo_lstm.optimizers import registry
>>> opt = registry["woa"](pop_size=8)
>>> result = opt.optimize(evaluate_batch, space, budget=40, seed=0)  # doctest: +SKIP

Importing this package does not import mealpy or optuna; each optimizer does on first use.
"""

from __future__ import annotations

from typing import Any

from hpo_lstm.optimizers._base import PENALTY, EvaluateBatch, Evaluation, OptimizeResult, Optimizer
from hpo_lstm.optimizers._mealpy import GA, GWO, PSO, WOA
from hpo_lstm.optimizers._optuna import TPE, RandomSearch
from hpo_lstm.optimizers._registry import Registry

__all__ = [
    "GA",
    "GWO",
    "PENALTY",
    "PSO",
    "TPE",
    "WOA",
    "EvaluateBatch",
    "Evaluation",
    "OptimizeResult",
    "Optimizer",
    "RandomSearch",
    "Registry",
    "get_optimizer",
    "registry",
]

registry = Registry()
for _cls in (PSO, GWO, WOA, GA, TPE, RandomSearch):
    registry.register(_cls)


def get_optimizer(name: str, **options: Any) -> Optimizer:
    """``registry[name](**options)``: an unknown name lists the valid ones."""
    return registry.create(name, **options)
