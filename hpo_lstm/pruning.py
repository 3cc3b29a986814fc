"""Stopping hopeless candidates early, decided only from evaluations of earlier batches.

Rule "median" (Optuna's MedianPruner, applied to best-so-far values): after the warm-up
epochs, a candidate whose best validation RMSE so far is worse than the median of the earlier
trained candidates' best-so-far at the same epoch stops; it is recorded as PRUNED and the best
value it reached is its fitness. The thresholds are computed before a batch starts from
candidates of earlier batches only, so results never depend on worker timing or on which
candidate of a batch finishes first, and a resumed study recomputes the same thresholds.

With rolling-origin folds (``--folds K``) a batch trains fold by fold: every candidate of the
batch trains fold 1, then the survivors fold 2, and so on; the epoch rule above applies within
each fold against earlier batches' curves of the same fold. Between folds, at the barrier, a
candidate whose mean validation RMSE over its folds so far is more than ``FOLD_MARGIN`` worse
than the reference's mean over the same folds stops (:func:`stops_after_fold`); the reference
is the best candidate of earlier batches that completed every fold. A stopped candidate's
fitness is its partial mean scaled by the reference's full-over-partial ratio
(:func:`projected_value`): an estimate of its full mean that, by construction, is worse than
the reference, so a stopped candidate never becomes the study's best. Every input of these
decisions is fixed at the barrier, so they too are independent of workers and timing.

Rule "halving" (successive halving within each batch, ``--pruning halving``): the batch's
candidates train to the first rung (``halving_rungs``: max_epochs / 3^k, k = m..0, the
smallest at least ``HALVING_MIN_EPOCHS``); at the rung's barrier the best third (rounded up,
at least one) of those that reached it, by best validation RMSE so far, go on to the next rung
and the others stop as PRUNED with the value they reached; a candidate that stopped early by
itself (patience) is done. A candidate going on trains again from its start to the next rung
(the same seed gives the same first epochs, so the result equals a continued training). Only
the batch's own values at the barrier decide, so the decisions are independent of workers and
timing; a batch interrupted half-way is resumed with its recorded candidates' curves in the
ranking, so the same candidates go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "FOLD_MARGIN",
    "HALVING_FACTOR",
    "PRUNING_MODES",
    "halving_keep",
    "halving_rungs",
    "projected_value",
    "prune_thresholds",
    "stops_after_fold",
]

PRUNING_MODES = ("median", "halving", "off")
WARMUP_EPOCHS = 5  # never prune before this many epochs: early curves cross a lot
MIN_REFERENCE = 4  # earlier trained candidates needed before anything is pruned
# A candidate stops between folds when its mean so far is this much worse than the reference's
# over the same folds. Candidates of one study differ by a few percent in validation RMSE; a
# 10% gap after a fold is far outside that, so the rule stops only the clearly hopeless.
FOLD_MARGIN = 0.10
HALVING_FACTOR = 3  # successive halving keeps the best 1/3 at each rung
HALVING_MIN_EPOCHS = 5  # the first rung trains at least this long (as WARMUP_EPOCHS)


def prune_thresholds(curves: Iterable[Sequence[float]], *, mode: str, max_epochs: int) -> tuple[float, ...] | None:
    """Per-epoch limits on a candidate's best-so-far validation RMSE, or None (no pruning).

    ``curves`` are the per-epoch validation RMSEs of earlier trained candidates; a curve that
    stopped early (or was pruned) keeps its best value for the later epochs. Entry ``e - 1``
    is the limit after epoch ``e``; epochs within the warm-up get ``inf``.
    """
    if mode in ("off", "halving"):  # halving decides at rung barriers instead (halving_rungs)
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


def stops_after_fold(partial: Sequence[float], reference: Sequence[float] | None, *, mode: str) -> bool:
    """Whether a candidate with fold values ``partial`` (folds 1..j) stops before fold j + 1.

    ``reference`` holds every fold value of the best complete candidate of earlier batches
    (None: there is none yet, nothing stops)."""
    if mode == "off" or reference is None or not partial:
        return False
    j = len(partial)
    return float(np.mean(partial)) > (1.0 + FOLD_MARGIN) * float(np.mean(reference[:j]))


def projected_value(partial: Sequence[float], reference: Sequence[float] | None) -> float:
    """The fitness of a candidate stopped after folds 1..j: its partial mean, scaled by how the
    reference's mean over all folds relates to its mean over the same j folds."""
    mean = float(np.mean(partial))
    if reference is None:
        return mean
    return mean * float(np.mean(reference)) / float(np.mean(reference[: len(partial)]))


def halving_rungs(max_epochs: int) -> tuple[int, ...]:
    """The epochs at which successive halving ranks a batch: ``max_epochs / 3^k``, rounded,
    for k = m..0 with the smallest rung at least ``HALVING_MIN_EPOCHS``; always ends at
    ``max_epochs``. ``halving_rungs(30) == (10, 30)``, ``halving_rungs(100) == (11, 33, 100)``."""
    rungs = [max_epochs]
    while round(rungs[0] / HALVING_FACTOR) >= HALVING_MIN_EPOCHS:
        rungs.insert(0, round(rungs[0] / HALVING_FACTOR))
    return tuple(rungs)


def halving_keep(values: dict[int, float]) -> set[int]:
    """Of the candidates (batch position -> best value at the rung) that reached a rung, those
    that go on: the best third, rounded up; equal values in batch order."""
    ranked = sorted(values, key=lambda i: (values[i], i))
    return set(ranked[: max(1, -(-len(ranked) // HALVING_FACTOR))])
