"""Make the committed example reports (results/examples/) again, each with its own storage.

    python benchmarks/example_reports.py [--only compare-sine,compare-co2]

For each comparison file below, runs ``hpo-lstm compare FILE`` with the storage inside the
report's folder (``results/examples/NAME/hpo-lstm.db``, named relative to the folder in
compare.json), then drops the trained weights from that storage (a few MB per model, and a
report does not read them) and compacts it, so that the folder can be committed and
``hpo-lstm report results/examples/NAME`` rebuilds its files from it in any clone
(tests/test_repository.py checks that it does, byte for byte). Forecasting needs the weights:
run the comparison yourself for that (docs/comparisons.md).
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "compare-sine": "studies/compare_sine.toml",
    "compare-prices": "studies/compare_prices.toml",
    "compare-co2-models": "studies/compare_co2_models.toml",
    "compare-co2": "studies/compare_co2.toml",
}


def strip_weights(db: Path) -> None:
    """Delete the stored weights (hpo-lstm's artifact table, and Optuna's notes of them) and
    compact the file."""
    with sqlite3.connect(db) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "hpo_lstm_artifacts" in tables:
            con.execute("DELETE FROM hpo_lstm_artifacts")
        con.execute("DELETE FROM trial_system_attributes WHERE key LIKE 'artifacts:%'")
        con.execute("DELETE FROM study_system_attributes WHERE key LIKE 'artifacts:%'")
    with sqlite3.connect(db) as con:
        con.execute("VACUUM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names (default: all four)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(EXAMPLES)
    for name in names:
        folder = ROOT / "results" / "examples" / name
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        storage = f"sqlite:///results/examples/{name}/hpo-lstm.db"  # relative: no machine's path in the record
        run = [sys.executable, "-m", "hpo_lstm.cli", "compare", EXAMPLES[name], "--out", "results/examples",
               "--storage", storage, "--replace-report"]  # fmt: skip
        subprocess.run(run, cwd=ROOT, check=True)
        strip_weights(folder / "hpo-lstm.db")
        # The report again, from the stripped storage: what a clone's `hpo-lstm report` rebuilds.
        subprocess.run([sys.executable, "-m", "hpo_lstm.cli", "report", str(folder.relative_to(ROOT)), "--quiet"],
                       cwd=ROOT, check=True)  # fmt: skip
        size = (folder / "hpo-lstm.db").stat().st_size / 1e6
        print(f"{name}: {(time.monotonic() - started) / 60:.1f} min, storage {size:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
