"""A model of your own for hpo-lstm: `hpo-lstm run --model my_model:TinyNet` (docs/models.md).

Copy this file into a folder on PYTHONPATH (or run from the folder that holds it). hpo-lstm
builds the class with keyword arguments ``n_features`` (input columns), ``horizon`` (forecast
steps) and ``params`` (the candidate's parameters: learning_rate, hidden_size, n_layers,
dropout, lookback, batch_size and the model's own); ``forward`` maps a window
``(batch, lookback, n_features)`` to ``(batch, horizon)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TinyNet(nn.Module):
    """A GRU of ``hidden_size`` units, then a hidden layer of ``width`` units and the head."""

    summary = "GRU, then a hidden layer of `width` units and a linear head"
    # Its own parameter, and its value when a space does not search it ...
    params = {"width": 16}
    # ... and the bounds a default space searches it within (integers: an integer parameter).
    search = {"width": {"low": 4, "high": 64, "log": True}}

    def __init__(self, *, n_features: int, horizon: int, params: dict[str, Any]) -> None:
        super().__init__()
        hidden, width = int(params["hidden_size"]), int(params["width"])
        self.rnn = nn.GRU(n_features, hidden, num_layers=int(params["n_layers"]), batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, width), nn.ReLU(), nn.Linear(width, horizon))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])
