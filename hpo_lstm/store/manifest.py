"""The comparison manifest (``compare.json``): part of the record, beside the Optuna storage.

A comparison's folder holds its manifest: the settings, the storage and the cells, each a
study in that storage. An SQLite file inside the folder is named relative to it, so that the
folder can be moved, copied or committed with its storage (results/examples); any other SQLite
path is made absolute, so that ``hpo-lstm report`` finds it from any folder. The comparison writes it; the report layer and the forecaster only read it.

A result folder may come from someone else, so what it names is untrusted input:
:func:`read_manifest` checks every key the report reads (a one-line error names the file and
the key), and :func:`open_recorded` opens the storage a folder (or ``--storage``) names for
reading only, after checking, without writing to it, that it is an hpo-lstm storage: an
Optuna database holding a study hpo-lstm recorded. Files are written whole
(:mod:`hpo_lstm._files`) and URLs with their password masked (:mod:`hpo_lstm._urls`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hpo_lstm._errors import ConfigError, StorageError, first_line
from hpo_lstm._json import dumps

__all__ = [
    "MANIFEST",
    "absolute_sqlite",
    "cell_study_name",
    "open_recorded",
    "portable_sqlite",
    "read_manifest",
    "write_manifest",
]

MANIFEST = "compare.json"


def absolute_sqlite(url: str) -> str:
    """A relative SQLite path made absolute, so ``hpo-lstm report`` finds it from any folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def portable_sqlite(url: str, folder: Path) -> str:
    """``url`` as a manifest in ``folder`` names it: an SQLite file inside ``folder`` relative
    to it ("sqlite:///hpo-lstm.db"), any other SQLite path absolute, other URLs as they are."""
    url = absolute_sqlite(url)
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix) :].startswith("/"):
        path = Path(url[len(prefix) :])
        try:
            return prefix + path.relative_to(Path(folder).resolve()).as_posix()
        except ValueError:  # not inside the folder
            return url
    return url


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    from hpo_lstm._files import ensure_writable, write_text
    from hpo_lstm._urls import mask_url

    ensure_writable(folder)
    manifest = dict(manifest)
    if isinstance(manifest.get("storage"), str):  # never a password in a file: see hpo_lstm._urls
        manifest["storage"] = mask_url(portable_sqlite(manifest["storage"], folder))
    if isinstance(manifest.get("base"), dict) and isinstance(manifest["base"].get("storage"), str):
        manifest["base"] = {**manifest["base"], "storage": mask_url(manifest["base"]["storage"])}
    write_text(folder / MANIFEST, dumps(manifest, indent=2) + "\n")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest in ``folder``; a one-line error when there is none, it is unreadable, or a
    key the report reads is missing or of the wrong type (naming the file and the key)."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{str(folder)!r} holds no {MANIFEST}; give the folder a comparison wrote (e.g. results/compare-co2)."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read {str(path)!r}: {first_line(exc)}.") from None
    problem = _problem(manifest, _SCHEMA, "") or _cell_names_problem(manifest)
    if problem is not None:
        raise ConfigError(f"{str(path)!r} is not a manifest hpo-lstm compare wrote: {problem}.")
    return manifest


def cell_study_name(comparison: str, model: str, method: str, seed: int) -> str:
    """The study of a comparison's cell: NAME.MODEL.OPTIMIZER.seedN (``method`` "untuned" for
    the untuned baseline), with '-' for ':' (mealpy:X, module:Class), which study names refuse."""
    return f"{comparison}.{model.replace(':', '-')}.{method.replace(':', '-')}.seed{seed}"


def _cell_names_problem(manifest: dict[str, Any]) -> str | None:
    """A cell must name the study its comparison made for it (NAME.MODEL.OPTIMIZER.seedN): a
    hand-edited manifest could otherwise point a cell at any study of the storage."""
    for index, cell in enumerate(manifest["cells"]):
        method = "untuned" if cell["kind"] == "untuned" else cell["optimizer"]
        expected = cell_study_name(manifest["name"], cell["model"], method, cell["seed"])
        if cell["study"] != expected:
            return f"cells[{index}].study is {cell['study']!r}, not {expected!r} (the study its comparison made for it)"
    return None


# What the report and the forecaster read from a manifest, and of which type. A dict lists its
# required keys; {_ANY: schema} is a table whose every value follows ``schema``; [schema] a list.
_ANY = "*"
_NUMBER = "number"
_OPTIONAL_NUMBER = "number or null"
_SPEC = {"low": _NUMBER, "high": _NUMBER, "log": bool, "integer": bool}
_METRICS = {"rmse": _NUMBER, "mae": _OPTIONAL_NUMBER, "mape": _OPTIONAL_NUMBER}
_SCHEMA: dict[str, Any] = {
    "name": str,
    "storage": str,
    "models": [str],
    "optimizers": [str],
    "seeds": [int],
    "cells": [{"study": str, "kind": ("tuned", "untuned"), "model": str, "optimizer": str, "seed": int}],
    "base": {
        "data": str,
        "split": [_NUMBER],
        "lookback": int,
        "horizon": int,
        "transform": str,
        "budget": int,
        "pop_size": int,
        "max_epochs": int,
        "patience": int,
        "batch_size": int,
        "pruning": str,
        "space": {_ANY: _SPEC},
    },
    "data": {
        "target": str,
        "points": int,
        "windows": {"train": int, "val": int, "test": int},
        "baselines": {_ANY: _METRICS},
        "val_baselines": {"naive_last": {"rmse": _NUMBER}},
    },
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}


def _problem(value: Any, schema: Any, key: str) -> str | None:
    """What is wrong with ``value`` at ``key`` (dotted) against ``schema``; None when nothing."""

    def wrong(expected: str) -> str:
        shown = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
        return f"{key or 'the file'} must be {expected}, not {shown[:40]}"

    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return wrong("a JSON object")
        if _ANY in schema:
            entries = [(k, v, schema[_ANY]) for k, v in value.items()]
        else:
            missing = [k for k in schema if k not in value]
            if missing:
                return f"key {'.'.join(filter(None, (key, missing[0])))!r} is missing"
            entries = [(k, value[k], schema[k]) for k in schema]
        for name, item, sub in entries:
            problem = _problem(item, sub, f"{key}.{name}" if key else name)
            if problem is not None:
                return problem
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return wrong("a list")
        for index, item in enumerate(value):
            problem = _problem(item, schema[0], f"{key}[{index}]")
            if problem is not None:
                return problem
        return None
    if isinstance(schema, tuple):
        return None if value in schema else wrong(" or ".join(map(repr, schema)))
    if schema in (_NUMBER, _OPTIONAL_NUMBER):
        if value is None and schema == _OPTIONAL_NUMBER:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isinf(value)
        return None if ok else wrong(f"a {schema}")
    if schema is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, schema)
    return None if ok else wrong(_TYPE_NAMES[schema])


# The storage a result names -----------------------------------------------------------------


def open_recorded(url: str, *, folder: str | Path, named_in: str | Path | None) -> Any:
    """The Optuna storage at ``url``, named in the file ``named_in`` of a result ``folder``
    (None: given as ``--storage``), opened to be read only.

    * A masked password (``***``, as files hold URLs) comes from ``HPO_LSTM_STORAGE``
      (:func:`hpo_lstm._urls.resolve_url`); an in-memory database is refused.
    * A relative SQLite path is looked for from ``folder`` (where a manifest names a file inside
      its folder), then from the current folder, then from each folder above ``folder``; a
      missing file is refused, not created. It is opened as a read-only URI.
    * Before Optuna sees it (Optuna creates its tables in a database that lacks them), a plain
      read-only query checks that it is an hpo-lstm storage: Optuna's tables, filled in, and a
      study with hpo-lstm's identity attribute. A file that is not SQLite, another
      application's database or an Optuna database of other studies is refused in one line,
      untouched. A PostgreSQL session is read-only as well (``default_transaction_read_only``).
    """
    from hpo_lstm._urls import check_persistent, mask_url, resolve_url, sqlite_path

    where = repr(str(named_in)) if named_in is not None else "--storage"
    full = resolve_url(url, named_in=where)
    check_persistent(full, source=f"The storage named in {where}")
    shown = mask_url(url)
    path = sqlite_path(full)
    if path is not None:
        found = _find_file(Path(path), Path(folder) if named_in is not None else None, shown, where)
        reason = _sqlite_problem(found)
        read_only = f"sqlite:///file:{quote(str(found))}?mode=ro&uri=true"
    else:
        reason = _server_problem(full, shown)
        read_only = _read_only_session(full)
    if reason is not None:
        raise ConfigError(
            f"The storage {shown!r} named in {where} is not an hpo-lstm storage ({reason}); nothing was written to it."
        )
    from hpo_lstm.store.record import open_storage

    return open_storage(read_only)


def _find_file(name: Path, folder: Path | None, shown: str, where: str) -> Path:
    """The SQLite file ``name``: as given when absolute; a relative one from ``folder``, then
    from the current folder, then from each folder above ``folder`` (the run may have been
    started elsewhere)."""
    candidates = [name]
    if folder is not None and not name.is_absolute():
        here = folder.resolve()
        candidates = [here / name, name, *(d / name for d in here.parents)]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise ConfigError(f"The storage {shown!r} named in {where} does not exist (no such SQLite file).")
    return found.resolve()


# Optuna's tables that must hold rows, or Optuna writes them when it opens the database.
_FILLED = ("version_info", "alembic_version")


def _optuna_tables() -> set[str]:
    from optuna.storages._rdb import models

    return set(models.BaseModel.metadata.tables)


def _missing_tables(tables: set[str]) -> str | None:
    required = _optuna_tables()
    missing = sorted(required - tables)
    if not missing:
        return None
    if len(missing) == len(required):
        return "no Optuna tables"
    return f"Optuna tables missing: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"


def _sqlite_problem(path: Path) -> str | None:
    """Why the SQLite file ``path`` is not an hpo-lstm storage (None: it is); read-only."""
    import sqlalchemy as sa

    # SQLite's own URI, read-only; SQLAlchemy hands it to sqlite3 as it is (uri=true).
    url = f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true"
    try:
        return _read_problem(url)
    except sa.exc.DBAPIError as exc:  # "file is not a database", a damaged file
        return f"not an SQLite database: {first_line(exc.orig)}"


def _server_problem(url: str, shown: str) -> str | None:
    """Why the database at ``url`` (PostgreSQL, MySQL, ...) is not an hpo-lstm storage (None:
    it is); only reads. One that cannot be reached: a one-line StorageError."""
    from hpo_lstm._urls import mask_secrets

    try:
        return _read_problem(url)
    except Exception as exc:  # sqlalchemy and its drivers raise many kinds; all mean "cannot read it"
        raise StorageError(f"Cannot open storage {shown!r}: {mask_secrets(first_line(exc))}") from None


def _read_problem(url: str) -> str | None:
    """Why the database at ``url`` is not an hpo-lstm storage (None: it is), for SQLite files
    and servers alike: Optuna's tables, filled, with a study hpo-lstm recorded. Only reads."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from hpo_lstm.store.record import IDENTITY_ATTR

    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            problem = _missing_tables(set(sa.inspect(connection).get_table_names()))
            if problem is not None:
                return problem
            for table in _FILLED:
                if connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() == 0:  # noqa: S608
                    return f"Optuna's {table} table is empty"
            count = sa.text("SELECT COUNT(*) FROM study_user_attributes WHERE key = :key")
            if connection.execute(count, {"key": IDENTITY_ATTR}).scalar() == 0:
                return "an Optuna database without a study hpo-lstm recorded"
    finally:
        engine.dispose()
    return None


def _read_only_session(url: str) -> str:
    """``url`` with PostgreSQL's read-only sessions asked for (psycopg and psycopg2 pass the
    ``options`` query parameter to the server); other URLs as they are."""
    scheme = url.partition("://")[0].lower()
    if scheme not in ("postgresql", "postgresql+psycopg", "postgresql+psycopg2") or "options=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "options=-c%20default_transaction_read_only%3Don"
