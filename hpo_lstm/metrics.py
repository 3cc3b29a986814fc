"""Forecast errors in the series' own units. RMSE is the square root of the MSE."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["forecast_metrics"]


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
