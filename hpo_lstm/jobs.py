"""A training job: what an executor sends to a worker, and how a worker runs it.

Below both :mod:`hpo_lstm.evaluation` (which makes jobs) and :mod:`hpo_lstm.executors` (which
run them), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpo_lstm.data import Dataset, fold_of
from hpo_lstm.training import TrainResult, TrainSettings, train_candidate

__all__ = ["TrainJob", "dispatch_order", "run_job"]


@dataclass(frozen=True)
class TrainJob:
    model: str
    params: dict[str, Any]
    settings: TrainSettings
    seed: int
    prune_above: tuple[float, ...] | None = None
    weights_below: float | None = None  # send the weights back when val RMSE is below this
    fold: int = 0  # which rolling-origin fold to train on (hpo_lstm.data.fold_of); 0 without folds

    def relative_cost(self) -> float:
        """A rough per-epoch cost, only for ordering jobs (:func:`dispatch_order`).

        Per sample and time step each layer and direction does ~4h(h + inputs) multiply-adds
        plus a fixed overhead of small kernels; mini-batches share that overhead.
        """
        hidden = int(self.params.get("hidden_size", 64))
        layers = int(self.params.get("n_layers", 1))
        lookback = int(self.params.get("lookback", 24))
        batch = int(self.params.get("batch_size", self.settings.batch_size))
        directions = 2 if self.model == "bilstm" else 1
        per_step = layers * directions * lookback * (4 * hidden * (2 * hidden) + 20_000 / batch)
        return float(per_step)


def run_job(job: TrainJob, dataset: Dataset) -> TrainResult | str:
    """Train one candidate; a training that raises becomes a failure message, not a crash."""
    try:
        result, _ = train_candidate(
            job.model,
            job.params,
            fold_of(dataset, job.fold),
            job.settings,
            seed=job.seed,
            prune_above=job.prune_above,
            weights_below=job.weights_below,
        )
    except (RuntimeError, ValueError, MemoryError) as exc:  # e.g. out of memory, bad shapes
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0] if text else ''}"
    return result


# A job estimated under this share of its batch's mean cost is "cheap": it starts first.
CHEAP_SHARE = 0.1


def dispatch_order(jobs: Sequence[TrainJob], workers: int) -> list[int]:
    """Job indices in the order to start them on ``workers`` parallel slots.

    One slot: cheapest first. The batch takes as long in any order, and values arrive soonest.
    Several: the cheap jobs (estimated under ``CHEAP_SHARE`` of the batch's mean cost)
    cheapest first, then the rest most expensive first. Largest-first (longest processing
    time first) keeps the batch short: the slowest training starts early, not last, and the
    small ones fill the gaps at the end. Starting the cheap ones before it costs the batch
    little time (together they are a small share of the work), and their values arrive
    within seconds instead of after the largest trainings; small candidates are also often
    among the best of a batch. ``benchmarks/batch_order.py`` replays recorded batches under
    each order (docs/speed.md). Outcomes are keyed by index, so the order never changes what
    is recorded (trial numbers and times follow the order in which trainings end, as ever).
    """
    costs = [job.relative_cost() for job in jobs]
    cheapest_first = sorted(range(len(jobs)), key=lambda i: costs[i])
    if workers <= 1 or not jobs:
        return cheapest_first
    cheap = CHEAP_SHARE * sum(costs) / len(costs)
    largest_first = sorted(range(len(jobs)), key=lambda i: -costs[i])
    return [i for i in cheapest_first if costs[i] < cheap] + [i for i in largest_first if costs[i] >= cheap]
