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

__all__ = ["TrainJob", "largest_first", "run_job"]


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
        """A rough per-epoch cost, only for ordering jobs (largest first balances workers).

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


def largest_first(jobs: Sequence[TrainJob]) -> list[int]:
    """Job indices, most expensive first: a batch's slowest training starts at once instead
    of last, so no worker sits idle at the end waiting for it (longest-processing-time first).
    Outcomes are keyed by index, so the order never changes what is recorded."""
    return sorted(range(len(jobs)), key=lambda i: -jobs[i].relative_cost())
