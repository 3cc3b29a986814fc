"""The forecasters as torch modules: a window ``(batch, lookback, n_features)`` -> ``(batch, horizon)``.

Sizes come from the data (``n_features``, ``horizon``), the rest from the candidate's params.
Dropout acts between stacked recurrent layers, as in torch's own ``dropout`` argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["NETWORKS", "AttentionLstm", "CnnLstm", "RecurrentForecaster", "Seq2Seq"]


def _stack(cell: str, *, input_size: int, params: Mapping[str, Any], bidirectional: bool = False) -> nn.RNNBase:
    n_layers = int(params["n_layers"])
    rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
    return rnn_class(
        input_size=input_size,
        hidden_size=int(params["hidden_size"]),
        num_layers=n_layers,
        batch_first=True,
        dropout=float(params.get("dropout", 0.0)) if n_layers > 1 else 0.0,
        bidirectional=bidirectional,
    )


def _final_hidden(state: Any, n_directions: int) -> torch.Tensor:
    """The last layer's final hidden state(s), directions joined: (batch, hidden * directions)."""
    h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
    return torch.cat(list(h_n[-n_directions:]), dim=-1)


class RecurrentForecaster(nn.Module):
    """``lstm``, ``bilstm``, ``gru``: a recurrent stack and a linear head on its final state.

    For BiLSTM the head joins the forward state at the last step with the backward state, which
    has read the whole window (the backward *output* at the last step would have seen one value).
    """

    def __init__(self, *, cell: str, bidirectional: bool, n_features: int, horizon: int, params: Mapping[str, Any]):
        super().__init__()
        self.rnn = _stack(cell, input_size=n_features, params=params, bidirectional=bidirectional)
        self.n_directions = 2 if bidirectional else 1
        self.head = nn.Linear(self.rnn.hidden_size * self.n_directions, horizon)  # one output per forecast step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(x)
        return self.head(_final_hidden(state, self.n_directions))


class CnnLstm(nn.Module):
    """``cnn-lstm``: a causal 1-D convolution (``channels`` filters of ``kernel_size`` steps,
    ReLU) over the window, an LSTM stack over the convolved sequence, a head on its last state.

    The window is padded on the left only, so the sequence keeps its length and step t sees
    steps t - kernel_size + 1 .. t: no value from after a step leaks into it.
    """

    def __init__(self, *, n_features: int, horizon: int, params: Mapping[str, Any]):
        super().__init__()
        self.kernel_size = int(params["kernel_size"])
        self.conv = nn.Conv1d(n_features, int(params["channels"]), self.kernel_size)
        self.rnn = _stack("lstm", input_size=int(params["channels"]), params=params)
        self.head = nn.Linear(self.rnn.hidden_size, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.relu(self.conv(F.pad(x.transpose(1, 2), (self.kernel_size - 1, 0))))  # (batch, channels, lookback)
        _, state = self.rnn(z.transpose(1, 2))
        return self.head(_final_hidden(state, 1))


class AttentionLstm(nn.Module):
    """``attention-lstm``: an LSTM stack, then multi-head self-attention (``heads``) over its
    outputs at every step; the forecast reads the attended output of the last step: an
    attention-weighted pool of the outputs at every step, plus the last output (the residual
    of a self-attention block).

    Only the last step's query is computed: with one attention layer, the other steps'
    attended outputs would not reach the forecast, so a full self-attention layer read at its
    last step gives the same numbers at a fraction of the cost. Attention needs a width
    divisible by ``heads``; when the hidden size is not, the outputs are first projected to the
    next multiple. (Pooling every step's attended output instead, by mean or by learned
    weights, without the residual, trained to a worse validation RMSE on CO2: docs/models.md.)
    """

    def __init__(self, *, n_features: int, horizon: int, params: Mapping[str, Any]):
        super().__init__()
        heads = int(params["heads"])
        self.rnn = _stack("lstm", input_size=n_features, params=params)
        hidden = self.rnn.hidden_size
        width = heads * math.ceil(hidden / heads)
        self.project = nn.Linear(hidden, width) if width != hidden else nn.Identity()
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.head = nn.Linear(width, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(x)
        z = self.project(outputs)  # (batch, lookback, width)
        last = z[:, -1:]
        pooled, _ = self.attention(last, z, z, need_weights=False)  # (batch, 1, width)
        return self.head((last + pooled)[:, 0])


class Seq2Seq(nn.Module):
    """``seq2seq``: an LSTM encoder reads the window; an LSTM decoder, started from the
    encoder's final states, emits steps 1..horizon one at a time, each from its own previous
    output (zero before the first step), through one linear head shared by all steps.

    The decoder is fed its own outputs in training too (no teacher forcing), so training and
    forecasting run the same computation.
    """

    def __init__(self, *, n_features: int, horizon: int, params: Mapping[str, Any]):
        super().__init__()
        self.horizon = horizon
        self.encoder = _stack("lstm", input_size=n_features, params=params)
        self.decoder = _stack("lstm", input_size=1, params=params)
        self.head = nn.Linear(self.decoder.hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(x)
        step = x.new_zeros(x.shape[0], 1, 1)
        outputs = []
        for _ in range(self.horizon):
            out, state = self.decoder(step, state)
            step = self.head(out)  # (batch, 1, 1)
            outputs.append(step)
        return torch.cat(outputs, dim=1).squeeze(-1)  # (batch, horizon)


NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "recurrent": RecurrentForecaster,
    "cnn_lstm": CnnLstm,
    "attention_lstm": AttentionLstm,
    "seq2seq": Seq2Seq,
}
