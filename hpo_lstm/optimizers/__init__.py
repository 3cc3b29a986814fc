"""Swappable optimizers behind one registry.

>>> from hpo_lstm.optimizers import registry
>>> opt = registry["woa"](pop_size=8)
>>> result = opt.optimize(evaluate_batch, space, budget=40, seed=0)  # doctest: +SKIP

``registry["mealpy:OriginalHHO"]`` resolves any mealpy class by name (``mealpy:<ClassName>``);
iterating the registry gives the registered names only.

Importing this package does not import mealpy or optuna; each optimizer does on first use.
"""

from __future__ import annotations

from typing import Any

from hpo_lstm.optimizers._base import (
    MEALPY_PREFIX,
    PENALTY,
    EvaluateBatch,
    Evaluation,
    Optimizer,
    OptimizeResult,
    SearchStopped,
)
from hpo_lstm.optimizers._mealpy import GA, GWO, PSO, WOA
from hpo_lstm.optimizers._optuna import GP, TPE, CmaEs, RandomSearch
from hpo_lstm.optimizers._registry import Registry

__all__ = [
    "GA",
    "GP",
    "GWO",
    "MEALPY_PREFIX",
    "PENALTY",
    "PSO",
    "TPE",
    "WOA",
    "CmaEs",
    "EvaluateBatch",
    "Evaluation",
    "OptimizeResult",
    "Optimizer",
    "RandomSearch",
    "Registry",
    "SearchStopped",
    "get_optimizer",
    "mealpy_listing",
    "optimizer_implementation",
    "registry",
]

registry = Registry()
for _cls in (PSO, GWO, WOA, GA, TPE, CmaEs, GP, RandomSearch):
    registry.register(_cls)


def get_optimizer(name: str, **options: Any) -> Optimizer:
    """``registry[name](**options)``: an unknown name lists the valid ones (an unknown
    ``mealpy:<ClassName>`` the close class names)."""
    return registry.create(name, **options)


def optimizer_implementation(name: str) -> str | None:
    """``Optimizer.implementation()`` of the optimizer called ``name`` (None for an unknown
    name); ``mealpy:<ClassName>`` is answered without importing mealpy."""
    if isinstance(name, str) and name.startswith(MEALPY_PREFIX):
        from hpo_lstm.optimizers._mealpy import mealpy_distribution

        return mealpy_distribution()
    try:
        return registry[name].implementation()
    except KeyError:
        return None


def mealpy_listing() -> tuple[Any, Any, Any]:
    """(header, rows, footer) of every mealpy class usable as ``mealpy:<ClassName>``: batched,
    one agent at a time, or why it cannot run (``hpo-lstm optimizers --all``; imports mealpy)."""
    from hpo_lstm.optimizers._any_mealpy import listing_rows

    return listing_rows()
