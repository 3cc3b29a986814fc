"""How many worker processes should share one CUDA GPU: candidates/min for 1, 2, 4, 8 workers.

    python benchmarks/gpu_workers.py [--workers 1,2,4,8] [--precision fp32,bf16] [--candidates 16]
                                     [--max-epochs 10] [--model lstm] [--budget-seconds 270]
    python benchmarks/gpu_workers.py --device cpu --quick   # 4 candidates, 2 epochs, workers 1,2: checks that it runs

A small LSTM leaves most of a GPU idle (its time goes to kernel launches and Python), so
several processes training at once on the same GPU may finish a batch sooner. A fixed list of
candidates (seeded: learning rate 1e-4..1e-1 log, hidden size 8..256 log, 1..4 layers,
lookback 24) is trained on the built-in CO2 data through hpo-lstm's LocalExecutor, as a
study's batch is (one torch thread per worker; every worker on cuda:0 with one GPU).

For each worker count the pool is started and warmed first, outside the clock: every
candidate of every precision trained for 1 epoch (at least two such jobs per worker), so worker
start-up (spawn, import torch, CUDA context, lazily loaded kernels) is not timed. Then each
precision's list is timed on that same warm pool. Printed per count and precision: wall seconds, candidates/min, speed-up
against the first count, and whether every candidate's val RMSE equals the first count's
(``identical``; on a GPU it may differ only where cuDNN is nondeterministic: reported, not
asserted). With both precisions, bf16 against fp32 at equal work: speed-up and mean val RMSE
change. ``best_workers`` is the smallest count within 5% of the highest fp32 candidates/min.
Without MPS, processes time-slice the GPU; the gain comes from overlapping their CPU work.
``--budget-seconds`` bounds the whole run: a count that would not fit is skipped, a run that
overruns is cut short (and left out). Ends with one key=value line, the headline first.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import replace

import numpy as np
import torch

from hpo_lstm.config import StudyConfig
from hpo_lstm.executors._local import LocalExecutor
from hpo_lstm.jobs import TrainJob
from hpo_lstm.study import prepare_dataset
from hpo_lstm.training import TrainSettings


def candidates(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "learning_rate": float(10 ** rng.uniform(-4, -1)),
            "hidden_size": int(round(2 ** rng.uniform(3, 8))),
            "n_layers": int(rng.integers(1, 5)),
            "lookback": 24,
        }
        for _ in range(n)
    ]


def value(outcome: object) -> float | str:
    return getattr(outcome, "val_rmse", str(outcome))  # a failure message stays a string


def same(a: list, b: list) -> bool:
    return all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b)
    )


def timed(pool: LocalExecutor, jobs: list[TrainJob], deadline: float) -> tuple[float, list] | None:
    """Wall seconds and values of training ``jobs`` on ``pool``; None when cut at the deadline."""
    start, outcomes = time.perf_counter(), {}
    for index, outcome in pool.map(jobs):
        outcomes[index] = value(outcome)
        if time.perf_counter() > deadline and len(outcomes) < len(jobs):
            return None
    return time.perf_counter() - start, [outcomes[i] for i in range(len(jobs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, comma-separated")
    parser.add_argument("--precision", default="fp32,bf16", help="fp32, bf16 or both")
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--model", default="lstm", choices=("lstm", "bilstm"))
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run without a GPU")
    parser.add_argument("--budget-seconds", type=float, default=270.0, help="cap on the whole run's wall time")
    parser.add_argument("--quick", action="store_true", help="4 candidates, 2 epochs, workers 1,2")
    args = parser.parse_args()
    started = time.perf_counter()
    deadline = started + args.budget_seconds
    if args.quick:
        args.candidates, args.max_epochs, args.workers = 4, 2, "1,2"
    counts = [int(n) for n in args.workers.split(",")]
    precisions = args.precision.split(",")
    torch.set_num_threads(1)  # workers=1 trains in this process: one thread, like each worker
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("No CUDA device: run with --device cpu --quick for a dry run.")
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "none"
    dataset = prepare_dataset(StudyConfig(lookback=24, calendar=False))
    params = candidates(args.candidates)
    jobs = {
        p: [
            TrainJob(
                args.model,
                c,
                TrainSettings(max_epochs=args.max_epochs, patience=5, device=args.device, precision=p),
                seed=0,
            )
            for c in params
        ]
        for p in precisions
    }
    print(
        f"torch {torch.__version__}, device {args.device} ({gpu}), {os.cpu_count()} cores, model {args.model}, "
        f"{args.candidates} candidates x {args.max_epochs} epochs, load average {os.getloadavg()[0]:.2f}"
    )
    seconds: dict[tuple[str, int], float] = {}
    values: dict[tuple[str, int], list] = {}
    identical, truncated, last_block = True, False, 0.0
    for n in counts:
        block_start = time.perf_counter()
        if block_start + last_block > deadline:
            print(f"{n} workers: skipped (would pass --budget-seconds {args.budget_seconds:g})")
            truncated = True
            continue
        with LocalExecutor(dataset=dataset, workers=n, device=args.device, threads=1) as pool:
            warm = [replace(j, settings=replace(j.settings, max_epochs=1)) for p in precisions for j in jobs[p]]
            list(pool.map((warm * (2 * n // len(warm) + 1))[: max(2 * n, len(warm))]))  # outside the clock
            for p in precisions:
                run = timed(pool, jobs[p], deadline)
                if run is None:
                    print(f"{n} workers {p}: cut short at --budget-seconds {args.budget_seconds:g}, left out")
                    truncated = True
                    break
                seconds[p, n], values[p, n] = run
                base = next(k for k in seconds if k[0] == p)  # the first count measured
                same_values = same(values[p, n], values[base])
                identical &= same_values
                print(
                    f"{n} workers {p}: {run[0]:6.1f} s  {60 * len(params) / run[0]:6.1f} candidates/min  "
                    f"speed-up x{seconds[base] / run[0]:.2f}  identical={'yes' if same_values else 'no'}",
                    flush=True,
                )
        last_block = time.perf_counter() - block_start

    first = precisions[0]
    done = [n for n in counts if (first, n) in seconds]
    if not done:
        raise SystemExit("Nothing was measured within --budget-seconds.")
    speedups = {n: seconds[first, done[0]] / seconds[first, n] for n in done}
    best = min(n for n in done if speedups[n] >= 0.95 * max(speedups.values()))
    parts = [
        f"best_workers={best} speedup_at_best={speedups[best]:.2f}",
        "speedups=" + ",".join(f"{n}:{s:.2f}" for n, s in speedups.items()),
    ]
    if {"fp32", "bf16"} <= set(precisions):
        both = [n for n in done if ("bf16", n) in seconds]
        at = best if best in both else (both[0] if both else None)
        if at is not None:
            pairs = [
                (a, b)
                for a, b in zip(values["fp32", at], values["bf16", at])
                if isinstance(a, float) and isinstance(b, float) and math.isfinite(a) and math.isfinite(b)
            ]
            change = float(np.mean([b for _, b in pairs]) / np.mean([a for a, _ in pairs]) - 1) if pairs else math.nan
            bf16_line = ", ".join(f"{n} workers x{seconds['fp32', n] / seconds['bf16', n]:.2f}" for n in both)
            print(f"bf16 vs fp32: {bf16_line}; val RMSE mean {change:+.2%} over {len(pairs)} finite candidates")
            parts.append(
                f"bf16_speedup={seconds['fp32', at] / seconds['bf16', at]:.2f} bf16_at_workers={at} "
                f"bf16_val_rmse_change={change:.2%}"
            )
    parts.append(
        f"identical={'yes' if identical else 'no'} device={args.device} gpu={gpu.replace(' ', '_')} "
        f"model={args.model} candidates={args.candidates} epochs={args.max_epochs} "
        f"truncated={'yes' if truncated else 'no'} wall_s={time.perf_counter() - started:.0f}"
    )
    print(" ".join(parts))


if __name__ == "__main__":
    main()
