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
