"""Forecasters: LSTM, BiLSTM and GRU with a linear head. Sizes from the data, the rest from params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hpo_lstm.config import MODELS

__all__ = ["MODELS", "Forecaster", "build_model"]


class Forecaster(nn.Module):
    """A stack of recurrent layers (dropout between them) and a linear head with one output
    per forecast step.

    The head reads the final hidden state of the last layer: for one direction that is the
    output at the last step; for BiLSTM it joins the forward state at the last step with the
    backward state, which has read the whole window (the backward *output* at the last step
    would have seen one value only).
    """

    def __init__(
        self,
        *,
        cell: str,
        n_features: int,
        hidden_size: int,
        n_layers: int,
        dropout: float,
        bidirectional: bool,
        horizon: int = 1,
    ) -> None:
        super().__init__()
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_class(
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=n_layers,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.n_directions = 2 if bidirectional else 1
        self.head = nn.Linear(hidden_size * self.n_directions, horizon)  # one output per forecast step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        last = torch.cat(list(h_n[-self.n_directions :]), dim=-1)
        return self.head(last)  # (batch, horizon)


def build_model(model: str, params: Mapping[str, Any], *, n_features: int, horizon: int = 1) -> Forecaster:
    """Build ``model`` ("lstm", "bilstm", "gru") for inputs with ``n_features`` columns that
    forecasts steps 1..``horizon`` at once (a direct multi-output head)."""
    cell, bidirectional = MODELS[model]  # a known name: StudyConfig checks it (the one place)
    return Forecaster(
        cell=cell,
        n_features=n_features,
        hidden_size=int(params["hidden_size"]),
        n_layers=int(params["n_layers"]),
        dropout=float(params.get("dropout", 0.0)),
        bidirectional=bidirectional,
        horizon=horizon,
    )
