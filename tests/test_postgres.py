"""A PostgreSQL storage shared by concurrent drivers: a throw-away server on 127.0.0.1.

The server is PostgreSQL's own ``initdb`` + ``pg_ctl`` (Debian package ``postgresql``; .ci/run
installs it when it is missing), started in a temporary folder, listening on the loopback
interface only, and stopped at the end. As root, the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root). Skipped, saying why, where no server binaries exist.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from conftest import TINY_ARGS, TINY_SPACE, open_storage_together, start_cli, throwaway_postgres, wait_cli, write_study

from hpo_lstm.cli import main

TINY = TINY_ARGS


@pytest.fixture(scope="module")
def postgres_url():
    with throwaway_postgres() as url:
        yield url


def test_a_study_records_and_resumes_in_postgresql(tmp_path: Path, postgres_url: str):
    study = write_study(tmp_path / "s.toml", 'name = "pg-tiny"\nbatch_size = 256\n' + TINY_SPACE)
    args = [
        "run",
        str(study),
        *TINY,
        "--optimizer",
        "tpe",
        "--budget",
        "6",
        "--pop-size",
        "3",
        "--workers",
        "1",
        "--storage",
        postgres_url,
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    trials = optuna.load_study(study_name="pg-tiny", storage=postgres_url).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert not list(tmp_path.glob("*.db")), "nothing written to a SQLite file"
    summary = (tmp_path / "pg-tiny" / "summary.json").read_text()
    assert main(args) == 0  # the complete study is recognised: nothing trained, its result as stored
    assert (tmp_path / "pg-tiny" / "summary.json").read_text() == summary
    assert len(optuna.load_study(study_name="pg-tiny", storage=postgres_url).trials) == 6
    # A larger budget resumes it: the 6 recorded evaluations are replayed, 3 more trained.
    assert main([*args, "--budget", "9"]) == 0
    assert json.loads((tmp_path / "pg-tiny" / "summary.json").read_text())["n_replayed"] == 6
    assert len(optuna.load_study(study_name="pg-tiny", storage=postgres_url).trials) == 9


def test_concurrent_compare_shards_share_one_postgresql_database(tmp_path: Path, postgres_url: str):
    compare = write_study(tmp_path / "cmp.toml", 'name = "pg-cmp"\nbatch_size = 256\n' + TINY_SPACE)
    args = [
        "compare",
        str(compare),
        *TINY,
        "--models",
        "lstm",
        "--optimizers",
        "random,tpe",
        "--seeds",
        "2",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--storage",
        postgres_url,
        "--out",
        str(tmp_path),
    ]
    drivers = [start_cli([*args, "--shard", f"{k}/2"]) for k in (1, 2)]
    for proc in drivers:  # both at once, on one database
        code, err = wait_cli(proc, 300)
        assert code == 0, err
    assert main(["report", str(tmp_path / "pg-cmp"), "--quiet"]) == 0
    cells = pd.read_csv(tmp_path / "pg-cmp" / "cells.csv")
    assert len(cells) == 2 * 2 + 2 and cells["n_evaluations"].notna().all()
    names = {s.study_name for s in optuna.get_all_study_summaries(postgres_url)}
    assert set(cells["study"]) <= names


def test_drivers_starting_together_on_an_empty_database_all_open_it(postgres_url: str):
    # Optuna creates its tables when a storage is first opened; on an empty database, drivers
    # started at the same moment race to create them (PostgreSQL's CREATE TABLE is not atomic
    # against a concurrent one), and the losers must still open the storage.
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.execute(sqlalchemy.text("CREATE DATABASE fresh"))
    engine.dispose()
    fresh = postgres_url.rsplit("/", 1)[0] + "/fresh"
    open_storage_together(fresh)
    assert optuna.get_all_study_summaries(fresh) == []
