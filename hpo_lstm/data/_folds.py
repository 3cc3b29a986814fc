"""Rolling-origin validation folds: K expanding training windows before the test split.

The last fold is the study's own split (train, validation, test as configured). Fold ``k``
(0-based, of K) moves the validation window back by ``K - 1 - k`` validation lengths:

    rows:   [ train of fold 0        | val 0 | val 1 | ... | val K-1 | test ]
            [ train of fold 1                | val 1 | ... ]
            [ train of the last fold (the study's own train)   | val K-1 | test ]

Each fold is an ordinary :class:`Dataset` made by :func:`make_dataset` on the whole series
with its own split fractions, so each has its own scaling fitted on its own training rows, and
no fold's training sees its own validation rows or anything after them. The test split of an
earlier fold (everything after its validation window) is never read: only "train" and "val"
of a fold are trained on and scored.
"""

from __future__ import annotations

from dataclasses import replace

from hpo_lstm._errors import DataError
from hpo_lstm.data._series import Series
from hpo_lstm.data._windows import Dataset, make_dataset

__all__ = ["MAX_FOLDS", "fold_of", "fold_rows", "with_folds"]

MAX_FOLDS = 20  # each fold is one training per candidate


def fold_rows(n_points: int, split: tuple[float, float, float], folds: int) -> list[tuple[int, int, int]]:
    """``(train_rows, val_start, val_stop)`` of each fold, first fold first; the same rounding
    as :func:`make_dataset` (the last fold is exactly the study's own split)."""
    n_train = int(round(n_points * split[0]))
    n_val = int(round(n_points * split[1]))
    rows = []
    for k in range(folds):
        shift = (folds - 1 - k) * n_val
        rows.append((n_train - shift, n_train - shift, n_train - shift + n_val))
    return rows


def with_folds(dataset: Dataset, series: Series, *, folds: int, split: tuple[float, float, float]) -> Dataset:
    """``dataset`` (the study's own split, the last fold) carrying its K - 1 earlier folds."""
    if folds == 1:
        return dataset
    n_points = len(series.values)
    earlier = []
    for k, (n_train, _, val_stop) in enumerate(fold_rows(n_points, split, folds)[:-1]):
        # Fractions that make_dataset rounds back to exactly these row counts.
        fractions = (n_train / n_points, (val_stop - n_train) / n_points, (n_points - val_stop) / n_points)
        try:
            if n_train <= 0:
                raise DataError("no training rows left")
            fold = make_dataset(
                series, lookback=dataset.lookback, horizon=dataset.horizon, split=fractions, transform=dataset.transform
            )
        except DataError as exc:
            raise DataError(
                f"--folds {folds} leaves fold {k + 1} too little training data ({max(n_train, 0)} of {n_points} rows, "
                f"validation windows of {val_stop - n_train} rows each): {str(exc).rstrip('.')}. Use fewer folds."
            ) from None
        earlier.append(fold)
    return replace(dataset, folds=tuple(earlier))


def fold_of(dataset: Dataset, fold: int) -> Dataset:
    """Fold ``fold`` (0-based) of a dataset made by :func:`with_folds`; the last is ``dataset``."""
    return dataset.folds[fold] if fold < len(dataset.folds) else dataset
