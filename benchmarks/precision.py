"""bf16 autocast against float32: training step time and validation RMSE, side by side.

    python benchmarks/precision.py [--sizes 16x1,64x1,64x2,128x2,256x4] [--epochs 30] [--seeds 1] [--device auto]
    python benchmarks/precision.py --quick      # two small sizes, 3 epochs: checks that it runs

For each LSTM size (hidden x layers) on the built-in CO2 series (with the input features a
default study uses), lookback 24, learning rate 3e-3, one torch thread:

1. step time: one training step (forward, MSE loss, backward, gradient clipping, fused Adam) on
   a mini-batch of 64 windows of lookback 24, in float32 and with ``torch.autocast(device,
   dtype=torch.bfloat16)`` around the forward pass and the loss (as PyTorch documents autocast:
   backward and the optimizer step outside). Medians of repeated steps after a warm-up, the
   two precisions timed in alternation.
2. accuracy: whole trainings (``--seeds`` of them per size and precision) as hpo-lstm trains a candidate (seeded, shuffled index slices,
   fused Adam, clipping, early stopping with patience 5, the best epoch's validation RMSE in
   ppm), once in float32 and once with autocast around the forward passes (training and
   validation). The float32 loop is checked against ``hpo_lstm.training.train_candidate``: it
   must give the same value, so the comparison is with what hpo-lstm really trains.

Device: ``auto`` runs the CPU, and CUDA too when torch sees a GPU (timed with synchronisation).
The CPU's bf16 support (/proc/cpuinfo: avx512_bf16, amx_bf16) and the dtype the LSTM layers
computed in under autocast (on CPU, nn.LSTM is oneDNN's RNN kernel, which autocast runs in
bf16) are printed. A ``--precision`` option is only
worth adding where bf16 is faster at the same accuracy: every size's mean validation RMSE over
the seeds within 1% of float32's (``val_rmse_change_max``).
Ends with one key=value line, the headline first.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo_lstm._cpu import cpu_flags
from hpo_lstm.config import StudyConfig
from hpo_lstm.models import build_model
from hpo_lstm.study import prepare_dataset
from hpo_lstm.training import TrainSettings, make_adam, train_candidate

LEARNING_RATE = 3e-3
BATCH = 64
LOOKBACK = 24  # the windows may be longer (a searched lookback): candidates use their last steps


def cpu_bf16_flags() -> str:
    flags = cpu_flags()
    if flags is None:
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16") if f in flags]
    return ",".join(found) or "none"


def autocast(device: str, enabled: bool) -> Any:
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=enabled)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_ms(params: dict[str, Any], dataset: Any, device: str, repeats: int) -> tuple[float, float, torch.dtype]:
    """Median milliseconds of one training step in float32 and in bf16 autocast, timed in
    alternation (a load change on a shared machine hits both alike), and the dtype the LSTM
    layers computed in under autocast."""
    train = dataset.split("train")
    x = torch.from_numpy(dataset.x[train][:BATCH, -LOOKBACK:, :]).to(device)
    y = torch.from_numpy(dataset.y[train][:BATCH]).to(device)
    loss_fn = nn.MSELoss()
    steps = []
    for bf16 in (False, True):
        torch.manual_seed(0)
        model = build_model("lstm", params, n_features=dataset.n_features).to(device)
        optimizer = make_adam(model, LEARNING_RATE, device)

        def step(model: nn.Module = model, optimizer: Any = optimizer, bf16: bool = bf16) -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, bf16):
                loss = loss_fn(model(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        for _ in range(5):
            step()
        steps.append(step)
    lstm = next(m for m in model.modules() if isinstance(m, nn.LSTM))
    with torch.no_grad(), autocast(device, True):
        dtype = lstm(x)[0].dtype
    times: list[list[float]] = [[], []]
    for _ in range(repeats):
        for which, step in enumerate(steps):
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[which].append(time.perf_counter() - start)
    return 1000 * statistics.median(times[0]), 1000 * statistics.median(times[1]), dtype


def train(
    params: dict[str, Any], dataset: Any, device: str, bf16: bool, epochs: int, seed: int
) -> tuple[float, int, float]:
    """train_candidate's loop (no pruning, constant rate) with autocast around the forward
    passes: (best validation RMSE in series units, epochs run, seconds per epoch)."""
    full = TrainSettings(device=device).candidate(params, dataset)
    x_all = torch.from_numpy(dataset.x[:, -int(full["lookback"]) :, :]).to(device)
    y_all = torch.from_numpy(dataset.y).to(device)
    train_idx, val_idx = dataset.split("train"), dataset.split("val")
    x_train, y_train, x_val, y_val = x_all[train_idx], y_all[train_idx], x_all[val_idx], y_all[val_idx]
    scale = float(dataset.target_scale[0])
    rng_devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
    started = time.perf_counter()
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        model = build_model("lstm", full, n_features=dataset.n_features, horizon=dataset.horizon).to(device)
        optimizer = make_adam(model, float(full["learning_rate"]), device)
        loss_fn = nn.MSELoss()
        shuffle = torch.Generator().manual_seed(seed)
        best, since_best, n = math.inf, 0, 0
        for _ in range(epochs):
            n += 1
            model.train()
            order = torch.randperm(x_train.shape[0], generator=shuffle).to(device)
            for start in range(0, x_train.shape[0], BATCH):
                idx = order[start : start + BATCH]
                optimizer.zero_grad(set_to_none=True)
                with autocast(device, bf16):
                    loss = loss_fn(model(x_train[idx]), y_train[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            model.eval()
            with torch.inference_mode(), autocast(device, bf16):
                val_mse = loss_fn(model(x_val).float(), y_val).item()
            rmse = math.sqrt(val_mse) * scale if math.isfinite(val_mse) else math.inf
            if rmse < best:
                best, since_best = rmse, 0
            else:
                since_best += 1
                if since_best >= 5:
                    break
    sync(device)
    return best, n, (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16x1,64x1,64x2,128x2,256x4", help="hidden x layers, comma-separated")
    parser.add_argument(
        "--accuracy-sizes",
        default="16x1,64x1,64x2,128x2",
        help="sizes also trained to compare validation RMSE (whole trainings: the costly part)",
    )
    parser.add_argument("--epochs", type=int, default=30, help="max epochs of each accuracy training (patience 5)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per size and precision")
    parser.add_argument("--device", default="auto", help="auto (CPU, and CUDA when present), cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="sizes 16x1,64x1, 3 epochs, 10 repeats")
    args = parser.parse_args()
    if args.quick:
        args.sizes = args.accuracy_sizes = "16x1,64x1"
        args.epochs, args.repeats = 3, 10
    torch.set_num_threads(1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    accuracy_sizes = (
        {tuple(int(v) for v in s.split("x")) for s in args.accuracy_sizes.split(",")} if args.accuracy_sizes else set()
    )
    dataset = prepare_dataset(StudyConfig())
    load_start = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, CPU bf16 flags: "
        f"{cpu_bf16_flags()}, 1 thread; devices {devices}; load average {load_start:.2f}"
    )
    speedups: dict[str, list[float]] = {d: [] for d in devices}
    changes: dict[str, list[float]] = {d: [] for d in devices}
    checked = None
    for device in devices:
        for hidden, layers in sizes:
            params = {"learning_rate": LEARNING_RATE, "hidden_size": hidden, "n_layers": layers, "lookback": LOOKBACK}
            ms32, ms16, dtype = step_ms(params, dataset, device, args.repeats)
            speedups[device].append(ms32 / ms16)
            line = (
                f"{device} {hidden:>3}x{layers}: step {ms32:7.2f} ms fp32, {ms16:7.2f} ms bf16 "
                f"(x{ms32 / ms16:.2f}; LSTM computed in {str(dtype).removeprefix('torch.')})"
            )
            if (hidden, layers) in accuracy_sizes:
                values: list[tuple[float, float]] = []
                for seed in range(args.seeds):
                    v32, n32, e32 = train(params, dataset, device, False, args.epochs, seed)
                    v16, n16, e16 = train(params, dataset, device, True, args.epochs, seed)
                    if checked is None and device == "cpu":  # once: our float32 loop is hpo-lstm's
                        settings = TrainSettings(max_epochs=args.epochs, patience=5, device="cpu")
                        ref, _ = train_candidate("lstm", params, dataset, settings, seed=seed)
                        checked = ref.val_rmse == v32
                        line += f"\n    float32 loop == train_candidate: {checked} ({ref.val_rmse!r} vs {v32!r})"
                    values.append((v32, v16))
                    line += (
                        f"\n    seed {seed}: val RMSE {v32:.4f} fp32 ({n32} epochs, {e32:.2f} s/epoch), "
                        f"{v16:.4f} bf16 ({n16} epochs, {e16:.2f} s/epoch): {v16 / v32 - 1:+.3%}"
                    )
                mean32, mean16 = (float(np.mean(v)) for v in zip(*values))
                changes[device].append(mean16 / mean32 - 1)
                line += f"\n    mean over {args.seeds} seed(s): {mean32:.4f} fp32, {mean16:.4f} bf16: {mean16 / mean32 - 1:+.3%}"
            print(line, flush=True)

    parts = []
    for device in devices:
        geo = math.exp(float(np.mean(np.log(speedups[device]))))
        worst = max((abs(c) for c in changes[device]), default=math.nan)
        same = bool(changes[device]) and worst <= 0.01
        parts.append(
            f"{device}_speedup={geo:.2f} {device}_val_rmse_change_max={worst:.2%} "
            f"{device}_faster_at_same_accuracy={'yes' if geo > 1 and same else 'no'}"
        )
    print(
        " ".join(parts) + f" float32_matches_train_candidate={checked} cpu_bf16_flags={cpu_bf16_flags()} "
        f"sizes={args.sizes} epochs={args.epochs} seeds={args.seeds} loadavg_start={load_start:.2f} "
        f"loadavg_end={os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
