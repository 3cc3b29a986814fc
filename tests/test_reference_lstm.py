"""The numpy reference LSTM (tests/reference_lstm.py) is an oracle: in float64 its outputs and
gradients match torch's nn.LSTM and the tool's forecaster to 1e-8, and its gradients match
central finite differences of its own forward pass."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from reference_lstm import forecaster_backward, forecaster_forward, lstm_backward, lstm_forward
from torch import nn

from hpo_lstm.models import build_model

N_FEATURES, HIDDEN = 3, 4
# Float64 round-off in these small networks is ~1e-15; 1e-8 leaves room for other kernels while
# a wrong equation (gate order, a bias, a direction) is off by far more (see the last test).
ATOL = 1e-8
LAYOUTS = [(n_layers, bidirectional) for n_layers in (1, 2) for bidirectional in (False, True)]
SIZES = [(1, 1), (3, 5)]  # (batch, sequence length); length 1: both directions read one step


def _layout_id(layout: tuple[int, bool]) -> str:
    return f"{layout[0]}layer-{'bi' if layout[1] else 'uni'}"


def _torch_lstm(n_layers: int, bidirectional: bool, seed: int = 0) -> nn.LSTM:
    # torch's own initialisation, seeded without touching the global generator afterwards
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.LSTM(
            N_FEATURES, HIDDEN, num_layers=n_layers, bidirectional=bidirectional, batch_first=True, dtype=torch.float64
        )


def _numpy(module: nn.Module) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy().copy() for name, p in module.named_parameters()}


def _max_diff(a: np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)))


def _problem(n_layers: int, bidirectional: bool, batch: int, length: int, seed: int = 1):
    """An input and the coefficients of the loss L = sum(R_out*output) + sum(R_h*h_n) + sum(R_c*c_n)."""
    rng = np.random.default_rng(seed)
    n_states = n_layers * (2 if bidirectional else 1)
    x = rng.standard_normal((batch, length, N_FEATURES))
    r_out = rng.standard_normal((batch, length, HIDDEN * (2 if bidirectional else 1)))
    r_h = rng.standard_normal((n_states, batch, HIDDEN))
    r_c = rng.standard_normal((n_states, batch, HIDDEN))
    return x, r_out, r_h, r_c


def compare_with_torch(n_layers: int, bidirectional: bool, batch: int, length: int) -> dict[str, float]:
    """Max |numpy - torch| for each output and each gradient."""
    lstm = _torch_lstm(n_layers, bidirectional)
    x, r_out, r_h, r_c = _problem(n_layers, bidirectional, batch, length)
    x_t = torch.tensor(x, requires_grad=True)
    out, (h_n, c_n) = lstm(x_t)
    loss = (
        (torch.from_numpy(r_out) * out).sum()
        + (torch.from_numpy(r_h) * h_n).sum()
        + (torch.from_numpy(r_c) * c_n).sum()
    )
    loss.backward()

    ref = lstm_forward(x, _numpy(lstm))
    grads, d_x = lstm_backward(ref, r_out, r_h, r_c)
    diffs = {"output": _max_diff(ref.output, out), "h_n": _max_diff(ref.h_n, h_n), "c_n": _max_diff(ref.c_n, c_n)}
    assert set(grads) == {name for name, _ in lstm.named_parameters()}
    diffs.update({f"d {name}": _max_diff(grads[name], p.grad) for name, p in lstm.named_parameters()})
    diffs["d x"] = _max_diff(d_x, x_t.grad)
    return diffs


@pytest.mark.parametrize("batch, length", SIZES)
@pytest.mark.parametrize("layout", LAYOUTS, ids=_layout_id)
def test_outputs_and_gradients_match_torch_nn_lstm(layout, batch, length):
    diffs = compare_with_torch(*layout, batch, length)
    assert max(diffs.values()) <= ATOL, {k: v for k, v in diffs.items() if v > ATOL}


def finite_difference_errors(n_layers: int, bidirectional: bool, per_tensor: int = 4, eps: float = 1e-6) -> list[float]:
    """Relative errors of the reference's gradients against central differences of its own
    loss, at ``per_tensor`` random coordinates of every parameter and of the input."""
    weights = _numpy(_torch_lstm(n_layers, bidirectional))
    x, r_out, r_h, r_c = _problem(n_layers, bidirectional, batch=2, length=4)

    def loss(w: dict[str, np.ndarray], x: np.ndarray) -> float:
        p = lstm_forward(x, w)
        return float((r_out * p.output).sum() + (r_h * p.h_n).sum() + (r_c * p.c_n).sum())

    grads, d_x = lstm_backward(lstm_forward(x, weights), r_out, r_h, r_c)
    rng = np.random.default_rng(2)
    errors = []
    for name in [*weights, "x"]:
        value, grad = (x, d_x) if name == "x" else (weights[name], grads[name])
        for flat in rng.choice(value.size, size=min(per_tensor, value.size), replace=False):
            index = np.unravel_index(flat, value.shape)

            def shifted(delta: float) -> float:
                moved = value.copy()
                moved[index] += delta
                return loss(weights, moved) if name == "x" else loss({**weights, name: moved}, x)

            numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
            # The difference quotient's error: truncation eps^2/6 |L'''| ~ 1e-11 plus round-off
            # ~ 1e-16 |L| / eps ~ 1e-9 here (|L| ~ 1-10). Dividing by max(|grad|, 1e-2) keeps
            # near-zero gradients from inflating the ratio; the tolerance 1e-5 then admits an
            # absolute error of >= 1e-7, 100x the expected one, while a wrong term in the
            # backward pass errs by 1e-2 or more relative. Measured over every coordinate of the
            # 2-layer BiLSTM here: at most 9e-10 absolute, 9e-8 relative.
            errors.append(abs(numeric - grad[index]) / max(abs(numeric), abs(grad[index]), 1e-2))
    return errors


@pytest.mark.parametrize("layout", LAYOUTS, ids=_layout_id)
def test_gradients_match_central_finite_differences(layout):
    errors = finite_difference_errors(*layout)
    assert max(errors) <= 1e-5


def _forecaster(model_name: str, n_layers: int, horizon: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        # dropout between layers is off in eval mode, as when the tool forecasts
        model = build_model(
            model_name,
            {"hidden_size": HIDDEN, "n_layers": n_layers, "dropout": 0.3},
            n_features=N_FEATURES,
            horizon=horizon,
        )
    return model.double().eval()


def compare_forecaster_with_torch(
    model_name: str, n_layers: int, batch: int, length: int, horizon: int = 2
) -> dict[str, float]:
    """Max |numpy - torch| for the forecasts of build_model(model_name) and their gradients."""
    model = _forecaster(model_name, n_layers, horizon)
    rng = np.random.default_rng(4)
    x, r = rng.standard_normal((batch, length, N_FEATURES)), rng.standard_normal((batch, horizon))
    x_t = torch.tensor(x, requires_grad=True)
    forecast = model(x_t)
    (torch.from_numpy(r) * forecast).sum().backward()

    head_weight, head_bias = model.head.weight.detach().numpy(), model.head.bias.detach().numpy()
    ref_forecast, ref = forecaster_forward(x, _numpy(model.rnn), head_weight, head_bias)
    grads, d_head_weight, d_head_bias, d_x = forecaster_backward(ref, head_weight, r)
    diffs = {
        "forecast": _max_diff(ref_forecast, forecast),
        "d head.weight": _max_diff(d_head_weight, model.head.weight.grad),
    }
    diffs["d head.bias"] = _max_diff(d_head_bias, model.head.bias.grad)
    diffs.update({f"d rnn.{name}": _max_diff(grads[name], p.grad) for name, p in model.rnn.named_parameters()})
    diffs["d x"] = _max_diff(d_x, x_t.grad)
    return diffs


@pytest.mark.parametrize("batch, length", SIZES)
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("model_name", ["lstm", "bilstm"])
def test_the_tools_forecaster_matches_the_reference(model_name, n_layers, batch, length):
    diffs = compare_forecaster_with_torch(model_name, n_layers, batch, length)
    assert max(diffs.values()) <= ATOL, {k: v for k, v in diffs.items() if v > ATOL}


def _gates_i_g_f_o(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # TensorFlow's LSTMCell order (i, j, f, o) read as torch's (i, f, g, o)
    return {
        name: np.concatenate([v[:HIDDEN], v[2 * HIDDEN : 3 * HIDDEN], v[HIDDEN : 2 * HIDDEN], v[3 * HIDDEN :]])
        for name, v in w.items()
    }


def _one_bias(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.zeros_like(v) if name.startswith("bias_hh") else v for name, v in w.items()}


def _directions_swapped(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: w[name.removesuffix("_reverse") if name.endswith("_reverse") else name + "_reverse"] for name in w}


MISTAKES: dict[str, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]] = {
    "gate order i, g, f, o": _gates_i_g_f_o,
    "b_hh left out": _one_bias,
    "directions swapped": _directions_swapped,
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_comparison_catches_a_wrong_layout(mistake):
    """The 1e-8 checks can fail: each plausible layout mistake moves the outputs by far more."""
    lstm = _torch_lstm(2, True)
    x = _problem(2, True, batch=3, length=5)[0]
    out, (h_n, c_n) = lstm(torch.from_numpy(x))
    right, wrong = lstm_forward(x, _numpy(lstm)), lstm_forward(x, MISTAKES[mistake](_numpy(lstm)))
    assert max(_max_diff(right.output, out), _max_diff(right.h_n, h_n), _max_diff(right.c_n, c_n)) <= ATOL
    assert min(_max_diff(wrong.output, out), _max_diff(wrong.h_n, h_n), _max_diff(wrong.c_n, c_n)) > 1e-3
