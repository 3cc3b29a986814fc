"""Model specifications and the read-only registry of them; free of torch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpo_lstm._errors import UnknownNameError

__all__ = ["ModelSpec", "Registry"]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What a forecaster is, without building it.

    ``network`` names the class in :mod:`hpo_lstm.models._networks` that builds it and
    ``options`` are that class's fixed keyword arguments. ``params`` are the model's own
    hyperparameters (beyond the learning rate, hidden size, layers and dropout every model
    takes) with the value used when a space does not search them; their search bounds are
    rules in :data:`hpo_lstm.space.MODEL_PARAMS`.
    """

    name: str
    summary: str
    network: str
    options: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, int] = field(default_factory=dict)
    # A user's model (hpo_lstm.models.register, --model module:Class): the class itself, and the
    # search bounds of its own parameters, {name: {"low", "high", "log"}} (integers when both
    # bounds are). None for the built-in models, which hpo_lstm.models._networks builds.
    builder: Any = None
    search: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def complete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with the model's own parameters that are missing set to their fixed values."""
        return {**dict(self.params), **dict(params)}


class Registry(Mapping[str, ModelSpec]):
    """``registry["cnn-lstm"]`` is the spec; an unknown name raises an error listing valid ones."""

    def __init__(self, resolve: Any = None) -> None:
        self._specs: dict[str, ModelSpec] = {}
        # module:Class -> its spec, imported, checked and registered (hpo_lstm.models wires in
        # hpo_lstm.models._user.resolve): your own model, by name.
        self._resolve = resolve

    def register(self, spec: ModelSpec) -> ModelSpec:
        if spec.name != spec.name.lower() and ":" not in spec.name:  # (module:Class names keep their case)
            raise ValueError(f"Registry keys are lower-case; got {spec.name!r}.")
        if spec.name in self._specs:
            raise ValueError(f"A model named {spec.name!r} is already registered.")
        self._specs[spec.name] = spec
        return spec

    def replace(self, spec: ModelSpec) -> ModelSpec:
        """Register ``spec`` in place of the user's model of the same ``module:Class`` name (a class
        edited and registered again, as in a notebook); built-in models are never replaced."""
        if ":" not in spec.name:
            raise ValueError(f"Only a model named module:Class can be registered again; got {spec.name!r}.")
        self._specs[spec.name] = spec
        return spec

    def __getitem__(self, name: str) -> ModelSpec:
        if name in self._specs:
            return self._specs[name]
        if isinstance(name, str) and ":" in name and self._resolve is not None:  # a user's model
            return self._resolve(name)
        raise UnknownNameError(
            f"Unknown model {name!r}; choose from {', '.join(sorted(self._specs))}, or name your own as "
            "module:Class (docs/models.md)."
        ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def own_params(self) -> dict[str, tuple[str, ...]]:
        """Each model-specific parameter name -> the models that take it."""
        owners: dict[str, list[str]] = {}
        for name in self:
            for param in self._specs[name].params:
                owners.setdefault(param, []).append(name)
        return {param: tuple(models) for param, models in owners.items()}
