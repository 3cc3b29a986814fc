"""Forecast errors in the series' own units. RMSE is the square root of the MSE."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INTERVAL_LEVELS", "conformal_halfwidth", "coverage", "forecast_metrics"]


def forecast_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """RMSE, MAE and MAPE (percent).

    MAPE is None unless every actual value is non-zero and of one sign: across zero (a sine, a
    change series) percentages explode and mean nothing.
    """
    actual = np.asarray(actual, dtype=float)
    error = np.asarray(predicted, dtype=float) - actual
    meaningful = bool(np.all(actual > 0) or np.all(actual < 0))
    mape = float(np.mean(np.abs(error / actual)) * 100.0) if meaningful else None
    return {
        "rmse": math.sqrt(float(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": mape,
    }


INTERVAL_LEVELS = (0.8, 0.95)


def conformal_halfwidth(residuals: np.ndarray, level: float) -> float:
    """Split conformal: the half-width that covers a new point with probability >= ``level``.

    ``residuals`` are a held-out split's errors (validation, never test); the half-width is the
    ``ceil((n + 1) * level)``-th smallest absolute residual (the largest when that exceeds n),
    the finite-sample rule of split conformal prediction for exchangeable errors.
    """
    scores = np.sort(np.abs(np.asarray(residuals, dtype=float)))
    n = len(scores)
    rank = min(n, math.ceil((n + 1) * level))
    return float(scores[rank - 1])


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The share of ``actual`` values inside ``[lower, upper]``."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= lower) & (actual <= upper)))
