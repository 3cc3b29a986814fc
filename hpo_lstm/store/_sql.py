"""Tables of hpo-lstm's own beside Optuna's in a study's database (saved weights, leases)."""

from __future__ import annotations

import time
from typing import Any

from hpo_lstm._errors import StorageError, first_line

__all__ = ["create_table"]


def create_table(table: Any, engine: Any) -> None:
    """``CREATE TABLE`` if missing. Drivers opening a new database together race to create it
    (PostgreSQL's CREATE TABLE is not atomic against a concurrent one): the losers try again."""
    import sqlalchemy as sa

    for attempt in range(5):
        try:
            table.create(engine, checkfirst=True)
            return
        except sa.exc.SQLAlchemyError as exc:
            text = str(exc).lower()
            if attempt == 4 or not any(s in text for s in ("already exists", "duplicate key", "locked")):
                raise StorageError(f"Cannot create the table {table.name}: {first_line(exc)}") from None
            time.sleep(0.2 * (attempt + 1))
