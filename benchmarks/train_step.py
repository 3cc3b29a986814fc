"""ms per training step and achieved GFLOP/s of nn.LSTM forecasters, against sgemm measured in the same run.

    python benchmarks/train_step.py [--batch 64] [--lookback 24] [--steps 30]

One torch thread (as every hpo-lstm worker runs). A training step is forward, backward,
gradient clipping and an Adam update on one mini-batch. FLOPs count the LSTM's matrix work:
per layer, direction, time step and sample, forward 2 * 4h * (input + h), training 3x that.
Ends with one key=value line, the headline first.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from hpo_lstm.models import build_model
from hpo_lstm.training import make_adam


def sgemm_gflops(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def lstm_flops(hidden: int, layers: int, directions: int, n_features: int, lookback: int, batch: int) -> float:
    total = 0.0
    for layer in range(layers):
        inputs = n_features if layer == 0 else hidden * directions
        total += directions * 2 * 4 * hidden * (inputs + hidden)
    return 3 * total * lookback * batch


def ms_per_step(model_name: str, hidden: int, layers: int, batch: int, lookback: int, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model(model_name, {"hidden_size": hidden, "n_layers": layers}, n_features=1)
    optimizer = make_adam(model, 1e-3, "cpu")  # the optimizer every hpo-lstm training uses
    x, y = torch.randn(batch, lookback, 1), torch.randn(batch)
    loss_fn = nn.MSELoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lookback", type=int, default=24)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    peak = sgemm_gflops()
    print(f"sgemm (1 thread, 1024^3): {peak:.1f} GFLOP/s")
    print(f"{'model':<7} {'hidden':>6} {'layers':>6} {'ms/step':>8} {'GFLOP/s':>8} {'of sgemm':>8}")
    fractions = []
    for model_name, directions in (("lstm", 1), ("bilstm", 2)):
        for hidden in (16, 64, 128, 256):
            for layers in (1, 2):
                ms = ms_per_step(model_name, hidden, layers, args.batch, args.lookback, args.steps)
                gflops = lstm_flops(hidden, layers, directions, 1, args.lookback, args.batch) / (ms / 1e3) / 1e9
                print(f"{model_name:<7} {hidden:>6} {layers:>6} {ms:>8.2f} {gflops:>8.1f} {gflops / peak:>8.0%}")
                if hidden >= 64:
                    fractions.append(gflops / peak)
    peak_after = sgemm_gflops()
    print(
        f"min_fraction_h64plus={min(fractions):.2f} mean_fraction_h64plus={sum(fractions) / len(fractions):.2f} "
        f"sgemm_gflops={peak:.1f} sgemm_gflops_after={peak_after:.1f}"
    )


if __name__ == "__main__":
    main()
