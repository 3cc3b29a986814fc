"""Forecasters behind one registry.

>>> from hpo_lstm.models import build_model, registry
>>> list(registry)
['attention-lstm', 'bilstm', 'cnn-lstm', 'gru', 'lstm', 'seq2seq']
>>> registry["cnn-lstm"].params  # its own searchable parameters, and their values when not searched
{'channels': 32, 'kernel_size': 3}
>>> net = build_model("cnn-lstm", {"hidden_size": 32, "n_layers": 1}, n_features=1, horizon=3)  # doctest: +SKIP

Every network maps a window ``(batch, lookback, n_features)`` to ``(batch, horizon)``: one
scaled output per forecast step. Importing this package does not import torch; building a
model does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpo_lstm.models._registry import ModelSpec, Registry

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ModelSpec", "Registry", "build_model", "register", "registry"]


def _resolve_user(name: str) -> ModelSpec:
    from hpo_lstm.models import _user

    return _user.resolve(name, registry)


registry = Registry(resolve=_resolve_user)
for _spec in (
    ModelSpec(
        name="lstm",
        summary="LSTM stack; linear head on the last state",
        network="recurrent",
        options={"cell": "lstm", "bidirectional": False},
    ),
    ModelSpec(
        name="bilstm",
        summary="bidirectional LSTM stack; head on both directions' final states",
        network="recurrent",
        options={"cell": "lstm", "bidirectional": True},
    ),
    ModelSpec(
        name="gru",
        summary="GRU stack; linear head on the last state",
        network="recurrent",
        options={"cell": "gru", "bidirectional": False},
    ),
    ModelSpec(
        name="cnn-lstm",
        summary="causal 1-D convolution (ReLU) over the window, then an LSTM stack; linear head",
        network="cnn_lstm",
        params={"channels": 32, "kernel_size": 3},
    ),
    ModelSpec(
        name="attention-lstm",
        summary="LSTM stack, multi-head self-attention over its outputs at every step; "
        "head on the last step's attended output",
        network="attention_lstm",
        params={"heads": 2},
    ),
    ModelSpec(
        name="seq2seq",
        summary="LSTM encoder; LSTM decoder emits steps 1..horizon one by one from its own previous output",
        network="seq2seq",
    ),
):
    registry.register(_spec)


def build_model(model: str, params: Mapping[str, Any], *, n_features: int, horizon: int = 1) -> nn.Module:
    """Build ``model`` (a :data:`registry` name) for inputs with ``n_features`` columns that
    forecasts steps 1..``horizon``: sizes from the data, the rest from ``params``
    (``hidden_size``, ``n_layers``, optional ``dropout`` and the model's own parameters, which
    take their fixed values when absent)."""
    spec = registry[model]
    if spec.builder is not None:  # a user's model (hpo_lstm.models._user)
        return spec.builder(n_features=n_features, horizon=horizon, params=spec.complete(params))
    from hpo_lstm.models import _networks

    return _networks.NETWORKS[spec.network](
        n_features=n_features, horizon=horizon, params=spec.complete(params), **dict(spec.options)
    )


def register(cls: type) -> str:
    """Register a model class of your own (docs/models.md: a torch module taking ``n_features``,
    ``horizon`` and ``params``) and return its name, ``module:Class``, to give as a study's
    ``model``. Checked now: a class that does not build and run on a tiny window is refused."""
    from hpo_lstm.models._user import register as _register

    return _register(cls, registry=registry).name
