"""Your own model: a torch module class named ``module:Class`` (``--model my_model:TinyNet``,
``model = "my_model:TinyNet"`` in a study file) or registered from Python
(:func:`hpo_lstm.models.register`).

The class must take keyword arguments ``n_features`` (input columns), ``horizon`` (forecast
steps) and ``params`` (the candidate's parameters: learning_rate, hidden_size, n_layers, dropout,
lookback, batch_size and the model's own), and map a window ``(batch, lookback, n_features)`` to
``(batch, horizon)``. Optional class attributes: ``summary`` (one line), ``params`` (its own
parameters and their values when not searched) and ``search`` (their default search bounds,
``{"width": {"low": 8, "high": 64, "log": True}}``; integer bounds give an integer parameter).

Importing is running code, so it happens only where the user asked for the model (a study's
settings) or, for a saved model, when the user says so (``trust_model_code``): a card that names
a user model is refused otherwise, and a built-in model never imports anything a card names.
A class that cannot be imported, or does not build and run on a tiny window, is refused in one
line when the study is set up, before anything is written.
"""

from __future__ import annotations

import inspect
from typing import Any

from hpo_lstm._errors import ConfigError
from hpo_lstm._imports import import_user_code

__all__ = ["import_path", "register", "resolve"]


def import_path(cls: type) -> str:
    """``module:QualifiedName`` of a class: how studies, workers and model cards name it."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve(name: str, registry: Any) -> Any:
    """Import ``module:Class``, check it, register it under that name; its spec."""
    target = import_user_code(name, "model", "my_model:TinyNet")
    return register(target, registry=registry, name=name)


def register(cls: type, *, registry: Any, name: str | None = None) -> Any:
    """Register the model class ``cls`` (see the module doc) in ``registry`` and return its
    spec; its name is ``module:Class``, which studies and saved models use."""
    from hpo_lstm.models._registry import ModelSpec

    name = name or import_path(cls)
    if name in registry and registry[name].builder is cls:
        return registry[name]
    _check_interface(cls, name)
    params = dict(getattr(cls, "params", {}) or {})
    search = {k: dict(v) for k, v in dict(getattr(cls, "search", {}) or {}).items()}
    for param, value in params.items():
        if not param.isidentifier() or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"Model {name!r}: its own parameter {param!r} = {value!r} must be a named number.")
    unknown = sorted(set(search) - set(params))
    if unknown:
        raise ConfigError(f"Model {name!r}: `search` bounds {unknown} are not among its `params` {sorted(params)}.")
    spec = ModelSpec(
        name=name,
        summary=str(getattr(cls, "summary", "") or f"your own model {name}"),
        network="",
        params=params,
        builder=cls,
        search=search,
    )
    _smoke(spec)
    # The same name for another class: the class was edited and registered again (a notebook's
    # cell run twice); studies from now on build the new one.
    return registry.replace(spec) if name in registry else registry.register(spec)


def _check_interface(cls: Any, name: str) -> None:
    import torch

    if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)):
        raise ConfigError(f"Model {name!r} is not a torch.nn.Module class (docs/models.md: your own model).")
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    accepted = signature.parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
    missing = [arg for arg in ("n_features", "horizon", "params") if arg not in accepted and not takes_any]
    if missing:
        raise ConfigError(
            f"Model {name!r} must take the keyword arguments n_features, horizon and params; it lacks {missing}."
        )


def _smoke(spec: Any) -> None:
    """Build the model small and run it on a tiny window: (2, 8, 2) -> (2, 3)."""
    import torch

    params = {
        "learning_rate": 1e-3,
        "hidden_size": 4,
        "n_layers": 1,
        "dropout": 0.0,
        "lookback": 8,
        "batch_size": 2,
        **dict(spec.params),
    }
    try:
        # Torch's random state as it was after: the check must not move the draws of the first
        # network a process builds (the same trials with 1 worker or 2).
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            net = spec.builder(n_features=2, horizon=3, params=params)
            out = net(torch.zeros(2, 8, 2))
    except Exception as exc:  # noqa: BLE001  (the user's code: any failure is the answer)
        raise ConfigError(
            f"Model {spec.name!r} does not build and run on a tiny window (2 windows of 8 steps, 2 inputs, horizon 3): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if tuple(getattr(out, "shape", ())) != (2, 3):  # (2, 3, 1) too would broadcast in the loss
        raise ConfigError(
            f"Model {spec.name!r} maps windows (2, 8, 2) to {tuple(getattr(out, 'shape', ()))}; it must give "
            "(batch, horizon) = (2, 3)."
        )
