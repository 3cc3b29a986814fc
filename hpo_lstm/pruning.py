"""Stopping hopeless candidates early, decided only from evaluations of earlier batches.

Rule "median" (Optuna's MedianPruner, applied to best-so-far values): after the warm-up
epochs, a candidate whose best validation RMSE so far is worse than the median of the earlier
trained candidates' best-so-far at the same epoch stops; it is recorded as PRUNED and the best
value it reached is its fitness. The thresholds are computed before a batch starts from
candidates of earlier batches only, so results never depend on worker timing or on which
candidate of a batch finishes first, and a resumed study recomputes the same thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["PRUNING_MODES", "prune_thresholds"]

PRUNING_MODES = ("median", "off")
WARMUP_EPOCHS = 5  # never prune before this many epochs: early curves cross a lot
MIN_REFERENCE = 4  # earlier trained candidates needed before anything is pruned


def prune_thresholds(
    curves: Iterable[Sequence[float]], *, mode: str, max_epochs: int
) -> tuple[float, ...] | None:
    """Per-epoch limits on a candidate's best-so-far validation RMSE, or None (no pruning).

    ``curves`` are the per-epoch validation RMSEs of earlier trained candidates; a curve that
    stopped early (or was pruned) keeps its best value for the later epochs. Entry ``e - 1``
    is the limit after epoch ``e``; epochs within the warm-up get ``inf``.
    """
    if mode == "off":
        return None
    if mode not in PRUNING_MODES:
        raise ValueError(f"Unknown pruning mode {mode!r}; choose from {', '.join(PRUNING_MODES)}.")
    finite = [np.asarray(c, dtype=float) for c in curves if len(c) and np.isfinite(c).all()]
    if len(finite) < MIN_REFERENCE:
        return None
    best = np.full((len(finite), max_epochs), np.nan)
    for row, curve in enumerate(finite):
        running = np.minimum.accumulate(curve[:max_epochs])
        best[row, : len(running)] = running
        best[row, len(running) :] = running[-1]
    limits = np.median(best, axis=0)
    limits[:WARMUP_EPOCHS] = np.inf
    return tuple(float(x) for x in limits)
