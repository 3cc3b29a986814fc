"""Your own optimizer by import path: ``--optimizer my_optimizer:MyOptimizer``.

The class is either a subclass of :class:`hpo_lstm.optimizers.Optimizer` (implement ``_run``:
docs/optimizers.md) or a subclass of a mealpy optimizer (``mealpy.optimizer.Optimizer``), which
runs as any ``mealpy:<ClassName>`` does: batched by mealpy's hooks, probed before the study
starts. Anything else is refused in one line.
"""

from __future__ import annotations

import inspect

from hpo_lstm._errors import ConfigError
from hpo_lstm._imports import import_user_code

__all__ = ["resolve"]

_RESOLVED: dict[str, type] = {}


def resolve(name: str) -> type:
    """The optimizer class ``module:Class`` names, imported and checked."""
    if name in _RESOLVED:
        return _RESOLVED[name]
    target = import_user_code(name, "optimizer", "my_optimizer:MyOptimizer")
    from hpo_lstm.optimizers._base import Optimizer

    if inspect.isclass(target) and issubclass(target, Optimizer):
        if inspect.isabstract(target):
            raise ConfigError(f"Optimizer {name!r} does not implement `_run` (docs/optimizers.md: your own optimizer).")
        resolved = target
    elif inspect.isclass(target) and _is_mealpy_optimizer(target):
        from hpo_lstm.optimizers._any_mealpy import user_adapter

        resolved = user_adapter(name, target)
    else:
        raise ConfigError(
            f"Optimizer {name!r} is neither a subclass of hpo_lstm.optimizers.Optimizer nor of a mealpy optimizer."
        )
    _RESOLVED[name] = resolved
    return resolved


def _is_mealpy_optimizer(cls: type) -> bool:
    try:
        from mealpy.optimizer import Optimizer as MealpyOptimizer
    except ImportError:
        return False
    return issubclass(cls, MealpyOptimizer)
