"""A result folder from someone else is untrusted input, and a storage URL's password is a secret.

Real files, real SQLite databases, real tiny studies and (where PostgreSQL's server binaries
exist) a real PostgreSQL server that asks for a password. Each test fails on an hpo-lstm that
opens a named storage read-write, follows symbolic links, writes files in place, trains before
refusing an in-memory storage, or prints or writes a password.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import optuna
import pandas as pd
import pytest
from conftest import TINY_ARGS, TINY_SPACE, free_port, start_cli, throwaway_postgres, wait_cli, write_study

from hpo_lstm._urls import mask_secrets, mask_url, resolve_url
from hpo_lstm.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_MANIFEST = REPO / "results" / "examples" / "compare-sine" / "compare.json"
SMALL = [*TINY_ARGS, "--budget", "2", "--pop-size", "2", "--workers", "1"]  # run and compare
TINY = [*SMALL, "--optimizer", "random"]  # run
COMPARE = ["--models", "lstm", "--optimizers", "random", "--seeds", "1", "--no-untuned"]
PASSWORD = "s3cret-Pw_417"


def _one_line_error(capsys, code: int) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, f"exit {code}, stderr {captured.err!r}"
    assert len(lines) == 1 and lines[0].startswith("hpo-lstm: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict[str, Path]:
    """A tiny finished run and a tiny finished comparison (one cell), each in its own SQLite file."""
    tmp = tmp_path_factory.mktemp("untrusted")
    study = write_study(tmp / "s.toml", 'name = "tiny-run"\nbatch_size = 256\n' + TINY_SPACE)
    assert main(["run", str(study), *TINY, "--out", str(tmp / "runs")]) == 0
    cmp = write_study(tmp / "c.toml", 'name = "tiny"\nbatch_size = 256\n' + TINY_SPACE)
    assert main(["compare", str(cmp), *SMALL, *COMPARE, "--out", str(tmp / "cmp")]) == 0
    return {"run": tmp / "runs" / "tiny-run", "comparison": tmp / "cmp" / "tiny"}


def _copy(folder: Path, tmp_path: Path) -> Path:
    """A copy of a result folder (naming the same storage) that a test may change."""
    return Path(shutil.copytree(folder, tmp_path / folder.name, symlinks=True))


# Masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://alice:s3cret@db.example:5432/hpo", "postgresql+psycopg://alice:***@db.example:5432/hpo"),
        ("postgresql://:s3cret@db/hpo", "postgresql://:***@db/hpo"),
        ("mysql+pymysql://bob:pa/ss@db/hpo?charset=utf8", "mysql+pymysql://bob:***@db/hpo?charset=utf8"),
        ("postgresql://alice:p@s3cret@db/hpo", "postgresql://alice:***@db/hpo"),  # a raw "@" inside the password
        ("postgresql://db/hpo?user=alice&password=s3cret", "postgresql://db/hpo?user=alice&password=***"),
        # No password: exactly as given (a manifest keeps its usable URL).
        ("postgresql://alice@db/hpo", "postgresql://alice@db/hpo"),
        ("sqlite:///results/hpo-lstm.db", "sqlite:///results/hpo-lstm.db"),
        ("sqlite:////tmp/odd:name@x.db", "sqlite:////tmp/odd:name@x.db"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url_hides_passwords_and_leaves_other_urls_alone(url: str, masked: str):
    assert mask_url(url) == masked
    assert "s3cret" not in mask_secrets(f"Cannot open storage {url!r}: refused ({url})")


def test_a_masked_url_is_resolved_from_the_environment_variable_only_when_it_matches(monkeypatch):
    full = f"postgresql+psycopg://alice:{PASSWORD}@db.example/hpo"
    masked = mask_url(full)
    monkeypatch.delenv("HPO_LSTM_STORAGE", raising=False)
    with pytest.raises(ValueError, match="set HPO_LSTM_STORAGE"):
        resolve_url(masked, named_in="'x/compare.json'")
    monkeypatch.setenv("HPO_LSTM_STORAGE", "postgresql+psycopg://alice:other@elsewhere/hpo")
    with pytest.raises(ValueError, match="holds another storage") as refused:
        resolve_url(masked, named_in="'x/compare.json'")
    assert "other" not in str(refused.value).replace("another", "")
    monkeypatch.setenv("HPO_LSTM_STORAGE", full)
    assert resolve_url(masked, named_in="'x/compare.json'") == full
    assert resolve_url("sqlite:///a.db", named_in="'x'") == "sqlite:///a.db"


# Storages that are not hpo-lstm's --------------------------------------------------------------


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('alice')")
    connection.close()


def _optuna_of_others(path: Path) -> None:
    study = optuna.create_study(study_name="someone-else", storage=f"sqlite:///{path}")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)


FOREIGN = {
    "another application's SQLite database": (_foreign_sqlite, "no Optuna tables"),
    "an Optuna database of other studies": (_optuna_of_others, "without a study hpo-lstm recorded"),
    "a text file": (lambda path: path.write_text("name,value\nalice,1\n" * 20), "not an SQLite database"),
    "an empty file": (lambda path: path.write_bytes(b""), "no Optuna tables"),
}


def _tables(path: Path) -> set[str] | None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError:
        return None


def _naming(kind: str, folder: Path, url: str) -> list[str]:
    """hpo-lstm arguments that open the storage ``url`` as a result folder of ``kind`` names it."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind in ("report compare.json", "forecast compare.json"):
        manifest = json.loads(EXAMPLE_MANIFEST.read_text())
        manifest["storage"] = url
        (folder / "compare.json").write_text(json.dumps(manifest))
        return ["report", str(folder)] if kind.startswith("report") else ["forecast", str(folder), "--steps", "2"]
    if kind == "report summary.json":
        (folder / "summary.json").write_text(json.dumps({"study_name": "someone-else", "storage": url}))
        return ["report", str(folder)]
    return ["forecast", "--storage", url, "--study-name", "someone-else", "--steps", "2"]


KINDS = ("report compare.json", "report summary.json", "forecast compare.json", "forecast --storage")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("database", list(FOREIGN))
def test_a_database_that_is_not_an_hpo_lstm_storage_is_refused_untouched(tmp_path: Path, capsys, database, kind):
    path = tmp_path / "app.sqlite"
    FOREIGN[database][0](path)
    tables, content, mtime = _tables(path), path.read_bytes(), path.stat().st_mtime_ns
    args = _naming(kind, tmp_path / "result", f"sqlite:///{path}")
    line = _one_line_error(capsys, main(args))
    assert "is not an hpo-lstm storage" in line and FOREIGN[database][1] in line, line
    assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
    assert _tables(path) == tables  # Optuna's 13 tables were not added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite", "result"]  # no journal or new file


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_database_is_refused_and_not_created(tmp_path: Path, capsys, kind):
    missing = tmp_path / "missing" / "app.sqlite"
    missing.parent.mkdir()
    line = _one_line_error(capsys, main(_naming(kind, tmp_path / "result", f"sqlite:///{missing}")))
    assert "does not exist" in line
    assert not missing.exists() and not list(missing.parent.iterdir())


def test_reading_an_hpo_lstm_storage_writes_nothing_to_it(finished: dict[str, Path], tmp_path: Path, capsys):
    folder = _copy(finished["comparison"], tmp_path)
    db = Path(json.loads((folder / "compare.json").read_text())["storage"].removeprefix("sqlite:///"))
    content, mtime = db.read_bytes(), db.stat().st_mtime_ns
    assert main(["report", str(folder), "--quiet"]) == 0
    assert main(["forecast", str(folder), "--steps", "2", "--quiet"]) == 0
    assert db.read_bytes() == content and db.stat().st_mtime_ns == mtime
    assert not list(db.parent.glob("*-journal")) and not list(db.parent.glob("*-wal"))


# Malformed manifests ----------------------------------------------------------------------------


def _manifest_without(key: str) -> dict:
    manifest = json.loads(EXAMPLE_MANIFEST.read_text())
    del manifest[key]
    return manifest


def _manifest_with(path: str, value: object) -> dict:
    manifest = json.loads(EXAMPLE_MANIFEST.read_text())
    *parents, last = path.split(".")
    target = manifest
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return manifest


MALFORMED = {
    "storage is a number": (_manifest_with("storage", 5), "storage must be a string, not 5"),
    "no data": (_manifest_without("data"), "key 'data' is missing"),
    "no cells": (_manifest_without("cells"), "key 'cells' is missing"),
    "no storage": (_manifest_without("storage"), "key 'storage' is missing"),
    "cells is not a list": (_manifest_with("cells", {"a": 1}), "cells must be a list"),
    "a cell without its seed": (
        _manifest_with("cells.0", {"study": "x", "kind": "tuned", "model": "lstm", "optimizer": "tpe"}),
        "key 'cells[0].seed' is missing",
    ),
    "a cell of an unknown kind": (_manifest_with("cells.1.kind", "other"), "cells[1].kind must be 'tuned' or"),
    "a budget as text": (_manifest_with("base.budget", "16"), 'base.budget must be an integer, not "16"'),
    "a baseline without its RMSE": (
        _manifest_with("data.baselines.naive_last", {}),
        "key 'data.baselines.naive_last.rmse' is missing",
    ),
    "a list, not an object": ([1, 2], "the file must be a JSON object"),
}


@pytest.mark.parametrize("command", ["report", "forecast"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_manifest_is_one_line_naming_the_file_and_the_key(tmp_path: Path, capsys, case, command):
    manifest, phrase = MALFORMED[case]
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "compare.json").write_text(json.dumps(manifest))
    args = ["report", str(folder)] if command == "report" else ["forecast", str(folder), "--steps", "2"]
    line = _one_line_error(capsys, main(args))
    assert str(folder / "compare.json") in line and phrase in line, line
    assert sorted(p.name for p in folder.iterdir()) == ["compare.json"]


# Symbolic links and whole files -----------------------------------------------------------------


def test_report_replaces_symbolic_links_in_a_comparison_folder_and_never_writes_through_them(
    finished: dict[str, Path], tmp_path: Path, capsys
):
    folder = _copy(finished["comparison"], tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("report.md", "trials.csv", "convergence.png"):
        (elsewhere / name).write_text(f"precious {name}\n")
        (folder / name).unlink()
        (folder / name).symlink_to(elsewhere / name)
    assert main(["report", str(folder), "--quiet"]) == 0
    for name in ("report.md", "trials.csv", "convergence.png"):
        assert (elsewhere / name).read_text() == f"precious {name}\n", name
        assert not (folder / name).is_symlink(), name
    assert (folder / "report.md").read_text().startswith("# Comparison `tiny`")
    assert (folder / "report.md").read_bytes() == (finished["comparison"] / "report.md").read_bytes()
    assert (folder / "convergence.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(folder.glob(".*.tmp*"))  # no temporary file left


def test_report_on_a_run_folder_replaces_links_and_refuses_a_linked_model_folder(
    finished: dict[str, Path], tmp_path: Path, capsys
):
    folder = _copy(finished["run"], tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "trials.csv").write_text("precious\n")
    (folder / "trials.csv").unlink()
    (folder / "trials.csv").symlink_to(elsewhere / "trials.csv")
    assert main(["report", str(folder), "--quiet"]) == 0
    assert (elsewhere / "trials.csv").read_text() == "precious\n"
    assert (folder / "trials.csv").read_bytes() == (finished["run"] / "trials.csv").read_bytes()
    # model/ -> a folder elsewhere: refused before anything is written, the target untouched.
    shutil.rmtree(folder / "model")
    (elsewhere / "model").mkdir()
    (elsewhere / "model" / "model.json").write_text("precious\n")
    (folder / "model").symlink_to(elsewhere / "model", target_is_directory=True)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.is_symlink()}
    line = _one_line_error(capsys, main(["report", str(folder)]))
    assert "is a symbolic link" in line and str(folder / "model") in line, line
    assert sorted(p.name for p in (elsewhere / "model").iterdir()) == ["model.json"]
    assert (elsewhere / "model" / "model.json").read_text() == "precious\n"
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.is_symlink()} == before


def test_a_write_stopped_half_way_leaves_the_old_file_whole(finished: dict[str, Path], tmp_path: Path, monkeypatch):
    from hpo_lstm.report import write_comparison_report

    folder = _copy(finished["comparison"], tmp_path)
    before = {name: (folder / name).read_bytes() for name in ("trials.csv", "report.md")}
    real = pd.DataFrame.to_csv

    def killed_half_way(frame, path=None, *args, **kwargs):
        if path is not None and "trials.csv" in str(path):
            Path(path).write_text("evaluation,va")  # half a file, then the process is stopped
            raise KeyboardInterrupt
        return real(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        write_comparison_report(folder)
    for name, content in before.items():
        assert (folder / name).read_bytes() == content, name  # never empty or half-written
    assert not list(folder.glob(".*.tmp*"))


# In-memory storages -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
@pytest.mark.parametrize("command", ["run", "compare"])
def test_an_in_memory_storage_is_refused_before_anything_trains(tmp_path: Path, capsys, monkeypatch, url, command):
    import hpo_lstm.jobs

    def no_training(*args, **kwargs):
        raise AssertionError("a candidate trained before the storage was refused")

    monkeypatch.setattr(hpo_lstm.jobs, "train_candidate", no_training)
    monkeypatch.chdir(tmp_path)
    args = [command, *(TINY if command == "run" else [*SMALL, *COMPARE]), "--storage", url, "--out", "out"]
    line = _one_line_error(capsys, main(args))
    assert "--storage" in line and "is an in-memory database" in line, line
    assert list(tmp_path.iterdir()) == []  # no out folder, no file named ':memory:'


def test_an_in_memory_storage_in_the_environment_variable_is_refused_too(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPO_LSTM_STORAGE", "sqlite:///:memory:")
    line = _one_line_error(capsys, main(["run", *TINY, "--out", "out"]))
    assert "HPO_LSTM_STORAGE" in line and "in-memory" in line
    assert list(tmp_path.iterdir()) == []


# Passwords -----------------------------------------------------------------------------------------


def test_a_password_never_appears_in_an_error(tmp_path: Path, capsys, monkeypatch):
    url = f"postgresql+psycopg://alice:{PASSWORD}@127.0.0.1:{free_port()}/hpo"  # nothing listens there
    monkeypatch.chdir(tmp_path)
    cases = {
        "run --storage": ["run", *TINY, "--storage", url],
        "forecast --storage": ["forecast", "--storage", url, "--study-name", "x", "--steps", "2"],
        "report of a summary naming it": ["report", str(_summary_naming(tmp_path / "r", url))],
    }
    for name, args in cases.items():
        line = _one_line_error(capsys, main(args))
        assert PASSWORD not in line and "alice:***@127.0.0.1" in line, (name, line)
    monkeypatch.setenv("HPO_LSTM_STORAGE", url)  # the URL on no command line
    line = _one_line_error(capsys, main(["run", *TINY]))
    assert PASSWORD not in line and "Cannot open storage 'postgresql+psycopg://alice:***@" in line, line


def _summary_naming(folder: Path, url: str) -> Path:
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"study_name": "x", "storage": url}))
    return folder


@pytest.fixture(scope="module")
def password_postgres():
    """A throw-away PostgreSQL server that asks for a password; its URL with the password."""
    with throwaway_postgres(password=PASSWORD) as url:
        yield url


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_password_is_written_to_no_file_and_printed_nowhere(
    password_postgres: str, tmp_path: Path, capsys, monkeypatch
):
    url = password_postgres
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at 80 columns otherwise: a split password would hide
    with pytest.raises(Exception, match="password authentication failed"):  # the server does check it
        optuna.storages.RDBStorage(url.replace(PASSWORD, "wrong"))
    # A run with the URL on the command line, a comparison with it in the environment only.
    study = write_study(tmp_path / "s.toml", 'name = "pw-run"\nbatch_size = 256\n' + TINY_SPACE)
    assert (
        main(
            ["run", str(study), *[a for a in TINY if a != "--quiet"], "--storage", url, "--out", str(tmp_path / "out")]
        )
        == 0
    )
    monkeypatch.setenv("HPO_LSTM_STORAGE", url)
    cmp = write_study(tmp_path / "c.toml", 'name = "pw-cmp"\nbatch_size = 256\n' + TINY_SPACE)
    loud = [a for a in SMALL if a != "--quiet"]
    assert main(["compare", str(cmp), *loud, *COMPARE, "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    assert "storage: postgresql+psycopg://hpo:***@127.0.0.1" in captured.out
    out = tmp_path / "out"
    assert json.loads((out / "pw-run" / "summary.json").read_text())["storage"] == mask_url(url)
    assert json.loads((out / "pw-run" / "model" / "model.json").read_text())["storage"] == mask_url(url)
    manifest = json.loads((out / "pw-cmp" / "compare.json").read_text())
    assert manifest["storage"] == manifest["base"]["storage"] == mask_url(url)
    assert mask_url(url) in (out / "pw-cmp" / "report.md").read_text()
    assert _files_holding(out, PASSWORD) == []
    # Nor in what the studies record about themselves (the dashboard shows it).
    for name in ("pw-run", "pw-cmp.lstm.random.seed0"):
        attrs = optuna.load_study(study_name=name, storage=url).user_attrs
        assert PASSWORD not in json.dumps(attrs), name

    # What report and forecast open is a read-only session: a write is refused by the server.
    from hpo_lstm.store.manifest import open_recorded

    reader = open_recorded(url, folder=tmp_path, named_in=None)
    with pytest.raises(Exception) as refused:
        reader.set_study_user_attr(reader.get_study_id_from_name("pw-run"), "written", True)
    causes, cause = [], refused.value
    while cause is not None:
        causes.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    assert any("read-only transaction" in text for text in causes), causes

    # Another process rebuilds the reports: the password comes from HPO_LSTM_STORAGE, or nowhere.
    env = {k: v for k, v in os.environ.items() if k != "HPO_LSTM_STORAGE"}
    for folder in (out / "pw-run", out / "pw-cmp"):
        code, err = wait_cli(start_cli(["report", str(folder), "--quiet"], env=env), timeout=120)
        assert code == 2 and "set HPO_LSTM_STORAGE to its full URL" in err and PASSWORD not in err, err
        code, err = wait_cli(
            start_cli(["report", str(folder), "--quiet"], env={**env, "HPO_LSTM_STORAGE": url}), timeout=120
        )
        assert code == 0, err
    assert _files_holding(out, PASSWORD) == []
    forecast = ["forecast", "--study-name", "pw-run", "--steps", "2", "--quiet", "--out", str(tmp_path / "fc")]
    code, err = wait_cli(start_cli(forecast, env={**env, "HPO_LSTM_STORAGE": url}), timeout=120)
    assert code == 0 and (tmp_path / "fc" / "forecast.csv").is_file(), err
