"""What the repository holds: no path of the machine that wrote a file, and example reports
that their committed storages rebuild."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Folders of one machine (a home, a work tree) and absolute SQLite URLs (sqlite:////...). The
# tests of URL parsing hold such URLs on purpose, as literals; nothing else may.
MACHINE_PATH = re.compile(rb"(?<![\w.~-])/(?:work|home|root|Users|mnt/data)/|sqlite:////")
ALLOWED = {"tests/test_untrusted.py", "tests/test_repository.py", "hpo_lstm/_urls.py"}


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the committed files cannot be listed")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def test_no_committed_file_names_a_path_of_the_machine_that_wrote_it():
    found = []
    for name in _tracked():
        path = ROOT / name
        if name in ALLOWED or not path.is_file():
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{number}: {line[:120].decode(errors='replace')}")
                break
    assert not found, "absolute paths of one machine in the repository:\n" + "\n".join(found)


EXAMPLES = ("compare-sine", "compare-prices", "compare-co2-models", "compare-co2")


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_example_report_rebuilds_from_its_committed_storage_byte_for_byte(tmp_path: Path, name: str):
    from hpo_lstm.cli import main

    committed = ROOT / "results" / "examples" / name
    files = sorted(p.relative_to(committed) for p in committed.iterdir() if p.is_file())
    assert (committed / "hpo-lstm.db").is_file(), f"{name} has no committed storage"
    copy = tmp_path / name
    shutil.copytree(committed, copy)
    assert main(["report", str(copy), "--quiet"]) == 0
    changed = [str(f) for f in files if (copy / f).read_bytes() != (committed / f).read_bytes()]
    assert not changed, f"rebuilt differently: {changed}"


def test_every_panel_series_has_its_data_and_its_source_named_and_none_is_reserved():
    """benchmarks/panel/series.csv: each series' file is committed and loads with its target and
    inputs, its README names it, its half is one of the three, and no series is taken from the
    data reserved for an independent check (pmdarima, vega_datasets, AirPassengers)."""
    import csv

    import pandas as pd

    panel = ROOT / "benchmarks" / "panel"
    readme = (panel / "README.md").read_text()
    with open(panel / "series.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["name"] for r in rows}) == len(rows)
    for row in rows:
        assert row["half"] in ("choose", "confirm", "fresh"), row
        assert f"| {row['name']} |" in readme, f"{row['name']} is not in benchmarks/panel/README.md"
        if row["file"].endswith(".csv"):
            frame = pd.read_csv(panel / "data" / row["file"], nrows=5)
            wanted = [row["target"], *(f for f in row["features"].split(",") if f)]
            assert set(wanted) <= set(frame.columns), (row["name"], wanted, list(frame.columns))
    sources = " ".join(r["name"] + " " + r["file"] for r in rows).lower()
    for reserved in ("pmdarima", "vega", "airline", "airpassengers", "passengers"):
        assert reserved not in sources
    assert {"choose", "confirm"} <= {r["half"] for r in rows}
