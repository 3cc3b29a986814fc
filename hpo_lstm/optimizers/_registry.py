"""A read-only mapping of optimizer names to classes that refuses duplicates.

Iterating gives the registered names; ``registry["mealpy:<ClassName>"]`` also resolves any
mealpy class (made on first use, importing mealpy then).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hpo_lstm._errors import UnknownNameError
from hpo_lstm.optimizers._base import MEALPY_PREFIX, Optimizer

__all__ = ["Registry"]


class Registry(Mapping[str, type[Optimizer]]):
    """``registry["woa"]`` is the class; an unknown name raises an error listing valid ones."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Optimizer]] = {}

    def register(self, cls: type[Optimizer]) -> type[Optimizer]:
        import inspect

        if not (inspect.isclass(cls) and issubclass(cls, Optimizer)):
            raise ValueError(f"Only a subclass of hpo_lstm.optimizers.Optimizer can be registered; got {cls!r}.")
        if inspect.isabstract(cls):
            raise ValueError(f"{cls.__name__} does not implement `_run` (docs/optimizers.md: your own optimizer).")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"{cls.__name__} needs a class attribute `name`, the name studies give it; got {name!r}.")
        if name != name.lower():
            raise ValueError(f"Registry keys are lower-case; got {name!r}.")
        if ":" in name:
            raise ValueError(f"A registered name has no ':' (kept for mealpy:<Class> and module:Class); got {name!r}.")
        if name in self._classes:
            raise ValueError(f"An optimizer named {name!r} is already registered.")
        self._classes[name] = cls
        return cls

    def __getitem__(self, name: str) -> type[Optimizer]:
        if name in self._classes:
            return self._classes[name]
        if isinstance(name, str) and name.startswith(MEALPY_PREFIX):
            from hpo_lstm.optimizers._any_mealpy import resolve  # imports mealpy

            return resolve(name)
        if isinstance(name, str) and ":" in name:  # your own: module:Class (hpo_lstm.optimizers._user)
            from hpo_lstm.optimizers._user import resolve as resolve_user

            return resolve_user(name)
        raise UnknownNameError(
            f"Unknown optimizer {name!r}; choose from {', '.join(sorted(self._classes))}, "
            f"or {MEALPY_PREFIX}<ClassName> for any mealpy class (hpo-lstm optimizers --all)."
        )

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._classes))

    def __len__(self) -> int:
        return len(self._classes)

    def create(self, name: str, **options: Any) -> Optimizer:
        return self[name](**options)
