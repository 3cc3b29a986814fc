r"""A numpy reference LSTM: the equations hpo-lstm trains, forward and backward (backpropagation
through time), written out gate by gate. A test oracle only; nothing in ``hpo_lstm`` imports it.

Written by hand on purpose: the point is an implementation that shares no code with torch, so
that agreeing with torch's ``nn.LSTM`` to float64 round-off checks both the equations stated
here and the layout the tool relies on (gate order, two biases, layer stacking, which state of
the backward direction the head reads). ``tests/test_reference_lstm.py`` holds the checks.

The equations
=============

Shapes: ``x`` is (B, T, F), batch first as in the tool; H is the hidden size, L the number of
layers, D = 2 for a bidirectional LSTM, else 1; ``*`` is the elementwise product, ``s`` the
logistic function s(z) = 1 / (1 + exp(-z)), row vectors throughout (one row per window).

Parameters, under torch's names (``_reverse`` appended for the backward direction)::

    W_ih = weight_ih_l{k}   (4H, in_k)     in_0 = F, in_k = D*H for k >= 1
    W_hh = weight_hh_l{k}   (4H, H)
    b_ih = bias_ih_l{k}     (4H,)          two bias vectors, both trained; only their
    b_hh = bias_hh_l{k}     (4H,)          sum enters the equations

Their 4H rows are four blocks of H, in the order i, f, g, o.

One step of one direction of one layer, t = 1..T, starting from h_0 = c_0 = 0::

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          (B, 4H)
    i_t = s   (a_t[:, 0H:1H])       input gate
    f_t = s   (a_t[:, 1H:2H])       forget gate
    g_t = tanh(a_t[:, 2H:3H])       cell candidate
    o_t = s   (a_t[:, 3H:4H])       output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The backward direction (its own parameters) reads the sequence reversed, t = T..1, starting
from h'_{T+1} = c'_{T+1} = 0, with h'_{t+1}, c'_{t+1} in place of h_{t-1}, c_{t-1}.

A layer's output at step t is y_t = [h_t ; h'_t] (D*H columns: forward first), and y_t is the
next layer's input x_t. Between layers torch applies dropout while training; this reference is
the network without it (``model.eval()``, or dropout 0), which is what forecasts use.

h_n and c_n stack the final states, (L*D, B, H), in the order layer 0 forward, layer 0
backward, layer 1 forward, ...; the final state of the forward direction is h_T, that of the
backward direction h'_1 (it has read the whole window).

The forecaster (``hpo_lstm.models.build_model("lstm" | "bilstm", ...)``) puts a linear head
on the last layer's final hidden states, one output per forecast step::

    yhat = [h_T ; h'_1] W_head^T + b_head                     (B, horizon)

for the last layer (just h_T for one direction). Note h'_1, not h'_T: the backward output at
the last step would have seen one value only.

Backpropagation through time, per direction, in its processing order reversed (t = T..1 for
the forward direction). dh_next and dc_next come from the step processed after t (zero, or
dL/dh_n and dL/dc_n, at the last one); dL/dy_t is this direction's columns of the output's
gradient::

    dh      = dL/dy_t + dh_next
    dc      = dc_next + dh * o_t * (1 - tanh(c_t)^2)
    da_i    = dc * g_t     * i_t (1 - i_t)
    da_f    = dc * c_{t-1} * f_t (1 - f_t)
    da_g    = dc * i_t     * (1 - g_t^2)
    da_o    = dh * tanh(c_t) * o_t (1 - o_t)
    da      = [da_i, da_f, da_g, da_o]                         (B, 4H)
    dW_ih  += da^T x_t          dW_hh += da^T h_{t-1}
    db_ih  += sum over rows of da,  db_hh the same
    dx_t    = da W_ih           (summed over directions: the input is shared)
    dh_next = da W_hh           dc_next = dc * f_t

A layer's dx is the gradient of the layer below's output, down to the input x. For the
forecaster, dL/d[h_T ; h'_1] = dL/dyhat W_head feeds dL/dh_n of the last layer, and
dW_head = dL/dyhat^T [h_T ; h'_1], db_head = sum over rows of dL/dyhat.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GATES",
    "LstmPass",
    "forecaster_backward",
    "forecaster_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_layout",
]

Weights = Mapping[str, np.ndarray]

GATES = ("i", "f", "g", "o")  # the order of the four blocks of rows in torch's weights


def sigmoid(z: np.ndarray) -> np.ndarray:
    # The same function as 1 / (1 + exp(-z)), without exp's overflow warning for large -z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def lstm_layout(weights: Weights) -> tuple[int, int]:
    """(n_layers, n_directions) read from torch's parameter names in ``weights``."""
    names = set(weights)
    layers = {int(m.group(1)) for name in names if (m := re.fullmatch(r"weight_ih_l(\d+)(_reverse)?", name))}
    n_layers = len(layers)
    n_directions = 2 if "weight_ih_l0_reverse" in names else 1
    expected = {
        f"{kind}{_suffix(k, d)}"
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for k in range(n_layers)
        for d in range(n_directions)
    }
    if not n_layers or layers != set(range(n_layers)) or names != expected:
        raise ValueError(f"weights must be nn.LSTM's parameters (with both biases, no projection); got {sorted(names)}")
    return n_layers, n_directions


@dataclass(frozen=True)
class _Step:
    """What one step keeps for backpropagation."""

    x: np.ndarray  # x_t (B, in)
    h_prev: np.ndarray
    c_prev: np.ndarray
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    tanh_c: np.ndarray


@dataclass(frozen=True)
class LstmPass:
    """A forward pass: torch's three outputs and what the backward pass needs."""

    output: np.ndarray  # (B, T, D*H), the last layer's y_t
    h_n: np.ndarray  # (L*D, B, H)
    c_n: np.ndarray  # (L*D, B, H)
    weights: Weights
    steps: dict[tuple[int, int], list[_Step]]  # (layer, direction) -> steps in processing order
    input_sizes: list[int]


def _cell(
    x_t: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, _Step]:
    """One step: h_t, c_t and what backpropagation needs."""
    hidden = w_hh.shape[1]
    a = x_t @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
    i = sigmoid(a[:, 0 * hidden : 1 * hidden])
    f = sigmoid(a[:, 1 * hidden : 2 * hidden])
    g = np.tanh(a[:, 2 * hidden : 3 * hidden])
    o = sigmoid(a[:, 3 * hidden : 4 * hidden])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c, _Step(x=x_t, h_prev=h_prev, c_prev=c_prev, i=i, f=f, g=g, o=o, tanh_c=np.tanh(c))


def _params(weights: Weights, layer: int, direction: int) -> tuple[np.ndarray, ...]:
    s = _suffix(layer, direction)
    return weights[f"weight_ih{s}"], weights[f"weight_hh{s}"], weights[f"bias_ih{s}"], weights[f"bias_hh{s}"]


def lstm_forward(x: np.ndarray, weights: Weights) -> LstmPass:
    """``nn.LSTM(batch_first=True)`` with the parameters ``weights`` (name -> array, torch's
    names) on ``x`` (B, T, F), zero initial states, no dropout."""
    n_layers, n_directions = lstm_layout(weights)
    batch, length, _ = x.shape
    hidden = weights["weight_hh_l0"].shape[1]
    h_n = np.zeros((n_layers * n_directions, batch, hidden))
    c_n = np.zeros_like(h_n)
    steps: dict[tuple[int, int], list[_Step]] = {}
    layer_input, input_sizes = np.asarray(x, dtype=np.float64), []
    for layer in range(n_layers):
        input_sizes.append(layer_input.shape[2])
        layer_output = np.zeros((batch, length, n_directions * hidden))
        for direction in range(n_directions):
            order = range(length) if direction == 0 else range(length - 1, -1, -1)
            h, c = np.zeros((batch, hidden)), np.zeros((batch, hidden))
            kept = []
            for t in order:
                h, c, step = _cell(layer_input[:, t], h, c, *_params(weights, layer, direction))
                layer_output[:, t, direction * hidden : (direction + 1) * hidden] = h
                kept.append(step)
            steps[layer, direction] = kept
            h_n[layer * n_directions + direction], c_n[layer * n_directions + direction] = h, c
        layer_input = layer_output
    return LstmPass(output=layer_input, h_n=h_n, c_n=c_n, weights=weights, steps=steps, input_sizes=input_sizes)


def lstm_backward(
    lstm_pass: LstmPass, d_output: np.ndarray, d_h_n: np.ndarray | None = None, d_c_n: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Gradients of a loss L by backpropagation through time, given dL/d``output``, dL/d``h_n``
    and dL/d``c_n`` (None: zero): dL/d(every parameter), under torch's names, and dL/dx."""
    weights = lstm_pass.weights
    n_layers, n_directions = lstm_layout(weights)
    batch, length, _ = d_output.shape
    hidden = weights["weight_hh_l0"].shape[1]
    d_h_n = np.zeros_like(lstm_pass.h_n) if d_h_n is None else d_h_n
    d_c_n = np.zeros_like(lstm_pass.c_n) if d_c_n is None else d_c_n
    grads: dict[str, np.ndarray] = {}
    d_layer_output = d_output
    for layer in range(n_layers - 1, -1, -1):
        d_layer_input = np.zeros((batch, length, lstm_pass.input_sizes[layer]))
        for direction in range(n_directions):
            w_ih, w_hh, _, _ = _params(weights, layer, direction)
            order = range(length) if direction == 0 else range(length - 1, -1, -1)
            d_w_ih, d_w_hh, d_b = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(4 * hidden)
            dh_next = d_h_n[layer * n_directions + direction].copy()
            dc_next = d_c_n[layer * n_directions + direction].copy()
            for t, step in reversed(list(zip(order, lstm_pass.steps[layer, direction]))):
                dh = d_layer_output[:, t, direction * hidden : (direction + 1) * hidden] + dh_next
                dc = dc_next + dh * step.o * (1.0 - step.tanh_c**2)
                da = np.concatenate(
                    [
                        dc * step.g * step.i * (1.0 - step.i),
                        dc * step.c_prev * step.f * (1.0 - step.f),
                        dc * step.i * (1.0 - step.g**2),
                        dh * step.tanh_c * step.o * (1.0 - step.o),
                    ],
                    axis=1,
                )
                d_w_ih += da.T @ step.x
                d_w_hh += da.T @ step.h_prev
                d_b += da.sum(axis=0)
                d_layer_input[:, t] += da @ w_ih
                dh_next = da @ w_hh
                dc_next = dc * step.f
            s = _suffix(layer, direction)
            grads[f"weight_ih{s}"], grads[f"weight_hh{s}"] = d_w_ih, d_w_hh
            grads[f"bias_ih{s}"], grads[f"bias_hh{s}"] = d_b, d_b.copy()
        d_layer_output = d_layer_input
    return grads, d_layer_output


def _last_states(lstm_pass: LstmPass) -> tuple[np.ndarray, int]:
    n_directions = lstm_layout(lstm_pass.weights)[1]
    return np.concatenate(list(lstm_pass.h_n[-n_directions:]), axis=-1), n_directions


def forecaster_forward(
    x: np.ndarray, rnn_weights: Weights, head_weight: np.ndarray, head_bias: np.ndarray
) -> tuple[np.ndarray, LstmPass]:
    """The forecaster: the LSTM, then the linear head on the last layer's final hidden states
    (forward, then backward direction). The forecasts (B, horizon) and the LSTM's pass."""
    lstm_pass = lstm_forward(x, rnn_weights)
    last, _ = _last_states(lstm_pass)
    return last @ head_weight.T + head_bias, lstm_pass


def forecaster_backward(
    lstm_pass: LstmPass, head_weight: np.ndarray, d_forecast: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Given dL/d(forecasts): dL/d(LSTM parameters), dL/dW_head, dL/db_head and dL/dx."""
    last, n_directions = _last_states(lstm_pass)
    d_last = d_forecast @ head_weight
    d_h_n = np.zeros_like(lstm_pass.h_n)
    hidden = lstm_pass.h_n.shape[2]
    for direction in range(n_directions):
        d_h_n[len(d_h_n) - n_directions + direction] = d_last[:, direction * hidden : (direction + 1) * hidden]
    grads, d_x = lstm_backward(lstm_pass, np.zeros_like(lstm_pass.output), d_h_n)
    return grads, d_forecast.T @ last, d_forecast.sum(axis=0), d_x
