"""Your own optimizer by import path: ``--optimizer my_optimizer:MyOptimizer``.

The class is either a subclass of :class:`hpo_lstm.optimizers.Optimizer` (implement ``_run``:
docs/optimizers.md) or a subclass of a mealpy optimizer (``mealpy.optimizer.Optimizer``), which
runs as any ``mealpy:<ClassName>`` does: batched by mealpy's hooks, probed before the study
starts. Anything else is refused in one line.
"""

from __future__ import annotations

import importlib
import inspect
import re

from hpo_lstm._errors import ConfigError

__all__ = ["resolve"]

_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_RESOLVED: dict[str, type] = {}


def resolve(name: str) -> type:
    """The optimizer class ``module:Class`` names, imported and checked."""
    if name in _RESOLVED:
        return _RESOLVED[name]
    if not _PATH.fullmatch(name):
        raise ConfigError(
            f"An optimizer of your own is named module:Class (e.g. my_optimizer:MyOptimizer); got {name!r}."
        )
    module_name, _, qualname = name.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except ImportError as exc:
        raise ConfigError(
            f"Optimizer {name!r} cannot be imported: {type(exc).__name__}: {exc} (is it on PYTHONPATH?)."
        ) from None
    except AttributeError:
        raise ConfigError(f"Optimizer {name!r}: module {module_name!r} has no {qualname!r}.") from None
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
