"""JSON for records and summaries: numpy scalars become plain numbers."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that also writes numpy scalars (``np.float64``, ``np.int64``, ...)."""
    return json.dumps(value, default=_default, **kwargs)


def _default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Cannot write {type(value).__name__} to JSON")
