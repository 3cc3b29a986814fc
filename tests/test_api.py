"""The public Python API: the README's example runs as written, and importing the package
stays light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_api_example_runs(tmp_path: Path):
    text = README.read_text()
    example = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S).group(1)
    # As a script (workers are spawned: the example runs under a main guard), from a folder
    # holding the repository's study files.
    (tmp_path / "studies").symlink_to(README.parent / "studies")
    body = "\n".join("    " + line if line else "" for line in example.splitlines())
    (tmp_path / "example.py").write_text(f'if __name__ == "__main__":\n{body}\n')
    run = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "results" / "api"
    study = out / "woa-bilstm-co2"
    assert (study / "summary.json").is_file() and (study / "model" / "weights.safetensors").is_file()
    cells = pd.read_csv(out / "compare-sine" / "cells.csv")
    assert set(cells["model"]) == {"lstm", "gru"} and set(cells["optimizer"]) == {"random", "pso", "untuned"}
    assert "lower_95" in run.stdout and "test_rmse_mean" in run.stdout
    # The two optimizers differ at this budget (README: PSO's second batch follows the first's best).
    tuned = cells[cells["optimizer"] != "untuned"].set_index(["model", "seed", "optimizer"])["best_val_rmse"].unstack()
    assert (tuned["pso"] != tuned["random"]).any()
    assert "hpo-lstm: woa/bilstm: 8/8" in run.stderr  # the progress display, as plain lines (not a terminal)


def test_the_public_names_load_lazily():
    code = (
        "import sys, hpo_lstm; light = 'torch' not in sys.modules and 'optuna' not in sys.modules; "
        "from hpo_lstm import StudyConfig, run_study, CompareConfig, run_compare, load_forecaster; "
        "from hpo_lstm import write_run_outputs, write_comparison_report, rebuild_run_outputs; "
        "print(light, callable(run_study), StudyConfig.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "StudyConfig"]


def test_the_commands_python_entry_points_handle_interrupts_as_the_cli_does():
    # run_study and run_compare hold Ctrl-C back out of storage calls (hpo_lstm._interrupts):
    # the decorator must sit on them, not on a helper written between it and them.
    from hpo_lstm.compare import cell_label, run_compare
    from hpo_lstm.study import run_study

    assert run_study.__wrapped__.__name__ == "run_study" and run_compare.__wrapped__.__name__ == "run_compare"
    assert not hasattr(cell_label, "__wrapped__")
