"""Open doors: a model of your own (examples/my_model.py), an optimizer of your own
(examples/my_optimizer.py, or a mealpy subclass), and a pandas DataFrame as the data. The
examples are copied into a folder of their own, outside the package, and put on PYTHONPATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from hpo_lstm import StudyConfig, run_study
from hpo_lstm.store.record import FINAL_ATTR

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = [
    "--data",
    "sine",
    "--lookback",
    "8",
    "--max-epochs",
    "2",
    "--patience",
    "2",
    "--budget",
    "6",
    "--pop-size",
    "3",
    "--quiet",
]


@pytest.fixture(scope="module")
def code(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("users-code")
    for name in ("my_model.py", "my_optimizer.py"):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / "early_stop.py").write_text(
        "import numpy as np\nfrom hpo_lstm.optimizers import Optimizer\n\n\nclass OneBatch(Optimizer):\n"
        '    name = "one-batch"\n    summary = "ends after one batch"\n\n'
        "    def _run(self, objective, space, budget, seed):\n"
        "        rng = np.random.default_rng(seed)\n"
        "        objective([rng.random(space.dim) for _ in range(self.pop_size)])\n"
    )
    (folder / "my_mealpy.py").write_text(
        "from mealpy.swarm_based.GWO import OriginalGWO\n\n\nclass MyGWO(OriginalGWO):\n"
        '    """A mealpy subclass of your own."""\n'
    )
    (folder / "bad_models.py").write_text(
        "import torch\n\n\nclass NoParams(torch.nn.Module):\n    def __init__(self, n_features, horizon):\n"
        "        super().__init__()\n\n\nclass WrongShape(torch.nn.Module):\n"
        "    def __init__(self, *, n_features, horizon, params):\n        super().__init__()\n"
        "        self.lin = torch.nn.Linear(n_features, 5)\n\n    def forward(self, x):\n        return self.lin(x[:, -1])\n"
        "\n\nclass ExtraDim(torch.nn.Module):\n"
        "    def __init__(self, *, n_features, horizon, params):\n        super().__init__()\n"
        "        self.lin = torch.nn.Linear(n_features, horizon)\n\n"
        "    def forward(self, x):\n        return self.lin(x[:, -1]).unsqueeze(-1)\n"
        "\n\nclass Shadowing(torch.nn.Module):\n    params = {'hidden_size': 3}\n\n"
        "    def __init__(self, *, n_features, horizon, params):\n        super().__init__()\n"
        "        self.lin = torch.nn.Linear(n_features, horizon)\n\n"
        "    def forward(self, x):\n        return self.lin(x[:, -1])\n"
        "\n\nclass TwoInputs(torch.nn.Module):\n"
        "    def __init__(self, *, n_features, horizon, params):\n        super().__init__()\n"
        "        self.lin = torch.nn.Linear(2, horizon)  # the smoke test's 2 inputs, not the data's\n\n"
        "    def forward(self, x):\n        return self.lin(x[:, -1])\n"
    )
    return folder


def _cli(code: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.run(
        [sys.executable, "-m", "hpo_lstm.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_model_of_your_own_tunes_on_two_workers_and_forecasts_only_when_trusted(code: Path, tmp_path: Path):
    run = _cli(code, tmp_path, "run", "--model", "my_model:TinyNet", "--workers", "2", "--optimizer", "random", *TINY)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "results" / "sine-my_model-TinyNet-random-seed0"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["model"] == "my_model:TinyNet" and 4 <= summary["best_params"]["width"] <= 64  # its own, searched
    card = json.loads((folder / "model" / "model.json").read_text())
    assert card["model"] == "my_model:TinyNet"
    refused = _cli(code, tmp_path, "forecast", str(folder), "--steps", "3", "--quiet")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "is your own code, 'my_model:TinyNet'" in refused.stderr and "--trust-model-code" in refused.stderr
    trusted = _cli(code, tmp_path, "forecast", str(folder), "--steps", "3", "--trust-model-code", "--quiet")
    assert trusted.returncode == 0, trusted.stderr
    forecast = pd.read_csv(folder / "forecast" / "forecast.csv")
    assert len(forecast) == 3 and np.isfinite(forecast["forecast"]).all()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("my_model:Missing", "module 'my_model' has no 'Missing'"),
        ("no_such_module:Net", "cannot be imported: ModuleNotFoundError"),
        ("bad_models:NoParams", "must take the keyword arguments n_features, horizon and params; it lacks ['params']"),
        ("bad_models:WrongShape", "maps windows (2, 8, 2) to (2, 5); it must give (batch, horizon) = (2, 3)"),
        # (batch, horizon, 1) would broadcast against the (batch, horizon) targets in the loss
        ("bad_models:Shadowing", "its own `params` ['hidden_size'] reuse the names of the search's parameters"),
        ("bad_models:ExtraDim", "maps windows (2, 8, 2) to (2, 3, 1); it must give (batch, horizon) = (2, 3)"),
    ],
)
def test_a_model_that_cannot_be_imported_or_does_not_fit_is_one_line(code: Path, tmp_path: Path, model, message):
    run = _cli(code, tmp_path, "run", "--model", model, *TINY)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert message in run.stderr
    assert not (tmp_path / "results").exists()  # refused before anything was written


def test_a_model_that_fails_every_training_says_why(code: Path, tmp_path: Path):
    run = _cli(code, tmp_path, "run", "--model", "bad_models:TwoInputs", "--optimizer", "random", *TINY)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "All 6 evaluations of study 'sine-bad_models-TwoInputs-random-seed0' failed" in run.stderr
    assert "the most common reason (all): " in run.stderr and "mat1 and mat2 shapes cannot be multiplied" in run.stderr
    assert "learning-rate" not in run.stderr  # not a divergence


def test_a_study_file_sets_the_bounds_of_your_models_own_parameter(code: Path, tmp_path: Path):
    study = tmp_path / "tiny.toml"
    study.write_text('model = "my_model:TinyNet"\noptimizer = "random"\n\n[space]\nwidth = { low = 5, high = 7 }\n')
    run = _cli(code, tmp_path, "run", str(study), *TINY)
    assert run.returncode == 0, run.stderr
    trials = pd.read_csv(tmp_path / "results" / "sine-my_model-TinyNet-random-seed0" / "trials.csv")
    assert trials["params_width"].between(5, 7).all() and len(trials) == 6  # its default search is 4..64


@pytest.mark.parametrize("optimizer", ["my_optimizer:MyOptimizer", "my_mealpy:MyGWO"])
def test_an_optimizer_of_your_own_runs_from_the_command_line(code: Path, tmp_path: Path, optimizer: str):
    run = _cli(code, tmp_path, "run", "--optimizer", optimizer, "--workers", "1", *TINY, "--pop-size", "6")
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "results" / f"sine-lstm-{optimizer.replace(':', '-')}-seed0"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["optimizer"] == optimizer and summary["n_evaluations"] == 6


def test_an_optimizer_that_ends_before_its_budget_says_so_and_is_complete(code: Path, tmp_path: Path):
    args = ("run", "--optimizer", "early_stop:OneBatch", "--workers", "1", *[a for a in TINY if a != "--quiet"])
    run = _cli(code, tmp_path, *args)
    assert run.returncode == 0, run.stderr
    said = " ".join(run.stdout.split())
    assert "Optimizer 'early_stop:OneBatch' ended its search by its own rule after 3 of the budget's 6" in said
    folder = tmp_path / "results" / "sine-lstm-early_stop-OneBatch-seed0"
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["n_evaluations"], summary["budget"], summary["stopped_early"]) == (3, 6, None)
    assert "**Ended by the optimizer** after 3 of the budget's 6 evaluations" in (folder / "report.md").read_text()
    again = _cli(code, tmp_path, *args)  # complete as it is: nothing trains again
    assert again.returncode == 0 and "is complete (3 evaluations)" in " ".join(again.stdout.split()), again.stderr
    # In a comparison too: its cell is finished, reported, and not run again.
    compare = ("compare", "--optimizers", "early_stop:OneBatch", "--models", "lstm", "--seeds", "1", "--workers", "1")
    assert _cli(code, tmp_path, *compare, *TINY).returncode == 0
    report = (tmp_path / "results" / "compare-sine" / "report.md").read_text()
    assert "early_stop:OneBatch" in report and "unfinished" not in report.lower()

    def recorded_result() -> str:
        storage = f"sqlite:///{tmp_path / 'results' / 'hpo-lstm.db'}"
        cell = optuna.load_study(study_name="compare-sine.lstm.early_stop-OneBatch.seed0", storage=storage)
        return cell.user_attrs[FINAL_ATTR]

    before = recorded_result()
    assert _cli(code, tmp_path, *compare, *TINY).returncode == 0
    assert recorded_result() == before  # skipped as finished, not run (and recorded) again


def test_a_dataframe_is_data_with_the_checks_notes_and_fingerprint_of_its_csv(tmp_path: Path):
    from hpo_lstm.study import prepare_dataset

    t = pd.date_range("2020-01-01", periods=300, freq="D")
    y = np.sin(np.arange(300) * 0.2) + 0.01 * np.arange(300)
    y[100] = np.nan
    pd.DataFrame({"date": t.strftime("%Y-%m-%d"), "y": y}).to_csv(tmp_path / "same.csv", index=False)
    frame = pd.read_csv(tmp_path / "same.csv")  # the very values a CSV path gives
    settings = {
        "target": "y",
        "lookback": 8,
        "max_epochs": 2,
        "budget": 4,
        "pop_size": 2,
        "optimizer": "random",
        "out": str(tmp_path / "out"),
    }
    from_frame = StudyConfig.from_file(data=frame, **settings)
    from_csv = StudyConfig.from_file(data=str(tmp_path / "same.csv"), **settings)
    a, b = prepare_dataset(from_frame), prepare_dataset(from_csv)
    assert a.fingerprint == b.fingerprint and a.notes == b.notes and "1 missing value(s) filled" in a.notes[0]
    assert from_frame.study_name == "frame-lstm-random-seed0"
    result = run_study(from_frame, workers=1)
    summary = result.summary()
    assert summary["dataset"] == "frame" and np.isfinite(summary["test"]["rmse"])
    with pytest.raises(Exception, match="Column 'nope' is not in the data"):
        run_study(StudyConfig.from_file(data=frame, **{**settings, "target": "nope"}), workers=1)


def test_the_first_network_of_a_new_model_is_drawn_as_every_later_one(tmp_path: Path, monkeypatch):
    """Registering a model runs it once on a tiny window; that check must leave torch's random
    state as it was, else the first network each worker process builds starts from other
    weights, and a study's trials differ between 1 worker and 2."""
    import torch

    from hpo_lstm.models import build_model

    (tmp_path / "drawn_model.py").write_text(
        "import torch\n\n\nclass Drawn(torch.nn.Module):\n"
        "    def __init__(self, *, n_features, horizon, params):\n        super().__init__()\n"
        "        self.lin = torch.nn.Linear(n_features, horizon)\n\n"
        "    def forward(self, x):\n        return self.lin(x[:, -1])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    params = {"hidden_size": 8, "n_layers": 1}
    weights = []
    for _ in range(2):  # the first build registers the class (and runs the check), the second does not
        torch.manual_seed(0)
        weights.append(build_model("drawn_model:Drawn", params, n_features=3).lin.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_a_model_class_edited_and_registered_again_replaces_the_old_one():
    """A notebook's cell run again defines a new class of the same name: studies build the new one."""
    import torch

    from hpo_lstm.models import register, registry

    def define(scale: float) -> type:
        class Edited(torch.nn.Module):
            def __init__(self, *, n_features, horizon, params):
                super().__init__()
                self.lin = torch.nn.Linear(n_features, horizon)

            def forward(self, x):
                return self.lin(x[:, -1]) * scale

        return Edited

    first, second = define(1.0), define(2.0)
    assert register(first) == register(second)  # the same module:Class name
    assert registry[register(second)].builder is second
    with pytest.raises(ValueError, match="Only a model named module:Class can be registered again"):
        registry.replace(registry["lstm"])


def test_a_model_defined_in_another_scripts_main_is_named_as_such():
    from hpo_lstm import ConfigError
    from hpo_lstm.models import registry

    with pytest.raises(ConfigError, match="was defined in the script or notebook that ran the study") as caught:
        registry["__main__:NotHereNet"]
    assert "register the same class here first" in str(caught.value) and "\n" not in str(caught.value)


def test_a_comparison_of_your_own_model_and_optimizer_keeps_their_names(code: Path, tmp_path: Path):
    """compare lowercased every name but mealpy's (module 'my_optimizer' has no 'myoptimizer'),
    and put the ':' of module:Class into study names, which refuse it."""
    args = ("--models", "my_model:TinyNet", "--optimizers", "my_optimizer:MyOptimizer", "--seeds", "1")
    run = _cli(code, tmp_path, "compare", *args, "--workers", "1", *TINY)
    assert run.returncode == 0, run.stderr
    manifest = json.loads((tmp_path / "results" / "compare-sine" / "compare.json").read_text())
    tuned = [c for c in manifest["cells"] if c["kind"] == "tuned"]
    assert [(c["model"], c["optimizer"]) for c in tuned] == [("my_model:TinyNet", "my_optimizer:MyOptimizer")]
    assert tuned[0]["study"] == "compare-sine.my_model-TinyNet.my_optimizer-MyOptimizer.seed0"
    cell = ("--cell", "my_model:TinyNet.my_optimizer:MyOptimizer.0", "--trust-model-code")
    forecast = _cli(code, tmp_path, "forecast", "results/compare-sine", *cell, "--steps", "2", "--quiet")
    assert forecast.returncode == 0, forecast.stderr


def test_an_optimizer_defined_in_another_scripts_main_is_named_as_such():
    from hpo_lstm import ConfigError
    from hpo_lstm.optimizers._user import resolve

    with pytest.raises(ConfigError, match="was defined in the script or notebook that ran the study") as caught:
        resolve("__main__:NotHereOptimizer")
    assert "define it in a module on PYTHONPATH" in str(caught.value) and "register" not in str(caught.value)
