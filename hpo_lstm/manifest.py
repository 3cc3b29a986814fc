"""The comparison manifest (``compare.json``): part of the record, beside the Optuna storage.

A comparison's folder holds its manifest: the settings, the storage (SQLite paths made
absolute, so that ``hpo-lstm report`` finds it from any folder) and the cells, each a study in
that storage. The comparison writes it; the report layer and the forecaster only read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpo_lstm._errors import ConfigError
from hpo_lstm._json import dumps

__all__ = ["MANIFEST", "absolute_sqlite", "read_manifest", "write_manifest"]

MANIFEST = "compare.json"


def absolute_sqlite(url: str) -> str:
    """A relative SQLite path made absolute, so ``hpo-lstm report`` finds it from any folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    from hpo_lstm.recording import ensure_writable

    ensure_writable(folder)
    (folder / MANIFEST).write_text(dumps(manifest, indent=2) + "\n")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest in ``folder``; a one-line error when there is none or it is unreadable."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{str(folder)!r} holds no {MANIFEST}; give the folder a comparison wrote (e.g. results/compare-co2)."
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read {str(path)!r}: {exc}.") from None
