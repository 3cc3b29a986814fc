"""mealpy:<ClassName>: any mealpy class by name, batched where mealpy's swarm mode allows, and
resumable by replay like the curated optimizers (and CMA-ES and GP beside them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_ARGS, CountingObjective

from hpo_lstm import ConfigError, UnknownNameError
from hpo_lstm.cli import main
from hpo_lstm.optimizers import get_optimizer, registry
from hpo_lstm.optimizers._any_mealpy import BATCHED, MIXED, ONE_AT_A_TIME, mealpy_classes, probe
from hpo_lstm.space import Param, SearchSpace, default_space

# One class of each kind (as `hpo-lstm optimizers --all` lists them), and OriginalPSO, whose own
# generate_agent makes its first population agent by agent.
KINDS = {
    "OriginalSMA": BATCHED,
    "OriginalTLO": ONE_AT_A_TIME,
    "OriginalHHO": MIXED,
    "OriginalPSO": ONE_AT_A_TIME,
}


def _unit_space(dim: int = 3) -> SearchSpace:
    return SearchSpace([Param(name=f"u{i}", low=0.0, high=1.0) for i in range(dim)])


def _rastrigin_unit(u) -> float:
    z = 10 * np.asarray(u, dtype=float) - 3
    return float(10 * len(z) + np.sum(z**2 - 10 * np.cos(2 * np.pi * z)))


def _rastrigin(batch):
    return [_rastrigin_unit(list(p.values())) for p in batch]


# Names ------------------------------------------------------------------------------------------


def test_any_mealpy_class_resolves_by_name_and_the_curated_names_stay():
    cls = registry["mealpy:OriginalHHO"]
    assert cls.name == "mealpy:OriginalHHO"
    optimizer = get_optimizer("mealpy:OriginalSMA", pop_size=6, p_t=0.05)
    assert optimizer.name == "mealpy:OriginalSMA" and optimizer.options == {"p_t": 0.05}
    assert registry["mealpy:OriginalHHO"] is cls  # made once
    assert "mealpy:OriginalHHO" in registry
    assert sorted(registry) == ["cmaes", "ga", "gp", "gwo", "pso", "random", "tpe", "woa"]


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("mealpy:OriginalHH", "did you mean mealpy:OriginalHHO"),
        ("mealpy:originalhho", "did you mean mealpy:OriginalHHO?"),
        (
            "mealpy:Nothing",
            "Unknown mealpy optimizer 'mealpy:Nothing'; `hpo-lstm optimizers --all` lists the 243 classes.",
        ),
    ],
)
def test_an_unknown_class_suggests_close_names_on_one_line(name, suggested):
    with pytest.raises(UnknownNameError) as info:
        registry[name]
    assert suggested in str(info.value)
    assert "\n" not in str(info.value)


def test_an_unknown_option_or_a_bad_value_is_refused_with_mealpys_rule():
    with pytest.raises(
        ConfigError,
        match=r"Unknown option\(s\) \['inertia'\] for optimizer 'mealpy:OriginalSMA'; allowed: pop_size, p_t",
    ):
        get_optimizer("mealpy:OriginalSMA", inertia=0.5)
    with pytest.raises(
        ConfigError, match="Option 'p_t' of optimizer 'mealpy:OriginalSMA' must be a float from 0 to 1.0"
    ):
        get_optimizer("mealpy:OriginalSMA", p_t=3.0)


def test_importing_the_optimizers_or_using_a_curated_name_does_not_import_mealpy():
    code = (
        "import sys; from hpo_lstm.optimizers import registry; registry['woa']; registry['cmaes']; "
        "print('mealpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# Batching and mealpy's own path -----------------------------------------------------------------


@pytest.mark.parametrize(("class_name", "kind"), KINDS.items())
def test_the_listed_batching_is_what_the_evaluations_show(class_name, kind):
    assert probe(class_name, pop_size=6, dim=3).batching == kind
    objective = CountingObjective(_rastrigin)
    result = registry[f"mealpy:{class_name}"](pop_size=6).optimize(objective, _unit_space(), budget=40, seed=2)
    assert result.n_evaluations == sum(objective.batches) == 40
    generations = objective.batches[1:] if class_name != "OriginalPSO" else objective.batches[6:]
    sizes = set(generations[:-1])  # the last batch may be cut by the budget
    if kind == BATCHED:
        assert objective.batches[0] == 6 and sizes == {6}
    elif kind == ONE_AT_A_TIME:
        assert sizes == {1}
    else:
        assert 1 in sizes and 6 in sizes


@pytest.mark.parametrize("class_name", [*KINDS, "OriginalDE", "OriginalGWO"])
def test_the_path_is_mealpys_own_swarm_mode_path(class_name):
    """The hooks change how evaluations are delivered, not which positions mealpy proposes."""
    from mealpy import FloatVar, Problem

    pop, dim, budget, seed = 6, 3, 40, 7
    optimizer = registry[f"mealpy:{class_name}"](pop_size=pop)
    ours = optimizer.optimize(_rastrigin, _unit_space(dim), budget=budget, seed=seed)
    epoch = optimizer.generations(optimizer.probe(dim), budget)

    seen = []

    def recording(u):
        seen.append(np.array(u, dtype=float))
        return _rastrigin_unit(u)

    problem = Problem(bounds=FloatVar(lb=[0.0] * dim, ub=[1.0] * dim), minmax="min", obj_func=recording, log_to=None)
    with np.errstate(all="ignore"):
        mealpy_classes()[class_name](epoch=epoch, pop_size=pop).solve(problem, mode="swarm", seed=seed)
    assert len(seen) >= budget  # one mealpy run spends the budget
    ours_positions = np.array([list(e.params.values()) for e in ours.evaluations])
    np.testing.assert_array_equal(ours_positions, np.array(seen[:budget]))


@pytest.mark.parametrize(("generic", "curated"), [("mealpy:OriginalGWO", "gwo"), ("mealpy:OriginalPSO", "pso")])
def test_the_generic_adapter_follows_the_curated_optimizers_path(generic, curated):
    # gwo: the same batched hooks; pso: one particle at a time versus the curated rewrite that
    # moves all, then evaluates all: the same positions either way (mealpy's own path). (woa
    # keeps mealpy 3.0.3's moves, mealpy:OriginalWOA is mealpy-lts's own: tests/test_mealpy_sequences.py.)
    runs = {}
    for name in (generic, curated):
        objective = CountingObjective(_rastrigin)
        result = registry[name](pop_size=7).optimize(objective, _unit_space(), budget=7 * 6, seed=11)
        runs[name] = ([tuple(e.params.values()) for e in result.evaluations], objective.batches)
    assert runs[generic][0] == runs[curated][0]
    if curated == "pso":
        assert set(runs[generic][1]) == {1} and set(runs[curated][1]) == {7}


def test_a_run_that_ends_with_budget_left_is_followed_by_another(monkeypatch):
    # OriginalCRO's generations take fewer evaluations on this function than on the probe's,
    # so its one run ends early; further runs from new populations spend the exact budget.
    from hpo_lstm.optimizers import _any_mealpy

    runs = []
    solve = _any_mealpy._solve
    monkeypatch.setattr(
        _any_mealpy, "_solve", lambda model, *a, **k: (runs.append(model._log is None), solve(model, *a, **k))[1]
    )
    result = registry["mealpy:OriginalCRO"](pop_size=8).optimize(_rastrigin, _unit_space(4), budget=99, seed=5)
    assert result.n_evaluations == 99
    assert sum(runs) > 1
    again = registry["mealpy:OriginalCRO"](pop_size=8).optimize(_rastrigin, _unit_space(4), budget=99, seed=5)
    assert [e.params for e in again.evaluations] == [e.params for e in result.evaluations]


# Resume by replay: the path is a function of the seed and the fitness values -------------------

_REPLAYED = [*(f"mealpy:{c}" for c in KINDS), "cmaes", "gp", "tpe"]

_PATHS = """
import json, random, sys
import numpy as np
from hpo_lstm.optimizers import registry
from hpo_lstm.space import Param, SearchSpace
np.random.seed(int(sys.argv[1])); random.seed(int(sys.argv[1]))  # global states a class must not use
space = SearchSpace([Param(name=f"u{i}", low=0.0, high=1.0) for i in range(3)])
def f(batch):
    return [float(np.sum((10 * np.array(list(p.values())) - 3) ** 2)) for p in batch]
paths = {}
for name in sys.argv[2:]:
    options = {"n_startup_trials": 4} if name == "gp" else {}
    result = registry[name](pop_size=5, **options).optimize(f, space, budget=22, seed=3)
    paths[name] = [list(e.params.values()) for e in result.evaluations]
print(json.dumps(paths))
"""


def test_same_seed_same_path_in_fresh_processes_whatever_their_hash_seed_and_global_random_state():
    outputs = []
    for hash_seed, global_seed in (("0", "1"), ("123", "99")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _PATHS, global_seed, *_REPLAYED], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == set(_REPLAYED) and all(len(path) == 22 for path in outputs[0].values())


class _StopAfter:
    """A progress display that presses Ctrl-C once ``n`` evaluations are recorded."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def batch(self, trainings: int) -> None:
        pass

    def evaluated(self, *, value: float, kind: str) -> None:
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt

    def final(self, *, done: bool, stage: str = "") -> None:
        pass


def _trials(config) -> dict[int, tuple[dict, float]]:
    import optuna

    study = optuna.load_study(study_name=config.study_name, storage=config.storage_url)
    return {
        t.user_attrs["evaluation"]: (t.params, t.value)
        for t in study.trials
        if t.user_attrs.get("failure") != "interrupted"
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimizer", "pop_size", "options"),
    [
        ("mealpy:OriginalSMA", 5, {}),
        ("mealpy:OriginalTLO", 5, {}),
        ("mealpy:OriginalHHO", 5, {}),
        ("cmaes", 4, {}),
        ("gp", 4, {"n_startup_trials": 4}),
    ],
)
def test_an_interrupted_study_resumes_by_replay_exactly(tmp_path: Path, optimizer, pop_size, options):
    from hpo_lstm import StudyConfig, run_study
    from hpo_lstm.study import StudyInterrupted

    space = default_space(
        {
            "learning_rate": {"low": 1e-3, "high": 3e-2, "log": True},
            "hidden_size": {"low": 4, "high": 12},
            "n_layers": {"low": 1, "high": 2},
        }
    )
    settings = dict(
        optimizer=optimizer,
        optimizer_options=options,
        pop_size=pop_size,
        data="sine",
        lookback=8,
        max_epochs=2,
        patience=2,
        batch_size=256,
        budget=12,
        space=space,
        name="tiny",
    )
    reference = StudyConfig(**settings, out=str(tmp_path / "reference"))
    run_study(reference, workers=1)

    resumed = StudyConfig(**settings, out=str(tmp_path / "resumed"))
    with pytest.raises(StudyInterrupted):
        run_study(resumed, workers=1, progress=_StopAfter(7))
    assert len(_trials(resumed)) == 7
    result = run_study(resumed, workers=1)
    assert result.n_replayed == 7 and result.n_trained + result.n_duplicates == 5
    assert _trials(resumed) == _trials(reference)


# The command line -------------------------------------------------------------------------------


def test_the_listing_of_every_class(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per class (80 columns: tests/test_cli.py)
    assert main(["optimizers", "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines if line.startswith("mealpy:") and not line.startswith("mealpy:<")}
    assert set(rows) == {f"mealpy:{c}" for c in mealpy_classes()}
    assert rows["mealpy:OriginalSMA"].split(None, 1)[1] == "batched"
    assert rows["mealpy:OriginalTLO"].split(None, 1)[1] == "one agent at a time (first population in one batch)"
    assert rows["mealpy:OriginalHHO"].split(None, 1)[1].startswith("partly batched (")
    assert "unusable: draws from numpy's or Python's global random state" in rows["mealpy:AAO"]
    assert "unusable: evaluates nothing after its first population" in rows["mealpy:OriginalGA"]
    assert "unusable: draws randomness that the seed does not fix" in rows["mealpy:OriginalPSS"]
    assert "needs pop_size >= 10" in rows["mealpy:BaseGA"]
    assert "its default options need >= 45 generations" in rows["mealpy:OriginalCHIO"]
    assert lines[-1].endswith("unusable.") and lines[-1].split()[0].isdigit()


def _refused(capsys, args: list[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_an_unusable_class_or_too_short_a_schedule_is_refused_before_the_study_exists(tmp_path, capsys):
    out = tmp_path / "out"
    common = ["run", *TINY_ARGS, "--budget", "16", "--pop-size", "8", "--out", str(out)]
    err = _refused(capsys, [*common, "--optimizer", "mealpy:AAO"])
    assert "Optimizer 'mealpy:AAO' cannot search a 3-parameter space with pop_size=8: it draws from numpy's" in err
    err = _refused(capsys, [*common, "--optimizer", "mealpy:OriginalCHIO"])
    assert (
        "Budget 16 gives optimizer 'mealpy:OriginalCHIO' 1 generation(s) of pop_size=8, too few for its options; "
        "it accepts them from 45 generations on (budget 368): Option 'max_age' of optimizer 'mealpy:OriginalCHIO' "
        "must be an integer from 1 to 1 inclusive (mealpy's rule); got 10." in err
    )
    err = _refused(capsys, [*common, "--optimizer", "mealpy:OriginalHH"])
    assert "did you mean mealpy:OriginalHHO, " in err
    assert not out.exists()


@pytest.mark.slow
def test_run_and_compare_take_a_mealpy_class(tmp_path, capsys):
    out = tmp_path / "out"
    tiny = [*TINY_ARGS, "--budget", "5", "--pop-size", "5", "--workers", "1", "--out", str(out)]
    assert main(["run", *tiny, "--optimizer", "mealpy:OriginalSMA"]) == 0
    summary = json.loads((out / "sine-lstm-mealpy-OriginalSMA-seed0" / "summary.json").read_text())
    assert summary["optimizer"] == "mealpy:OriginalSMA" and summary["n_evaluations"] == 5

    assert (
        main(
            [
                "compare",
                *tiny,
                "--models",
                "lstm",
                "--optimizers",
                "mealpy:OriginalSMA,random",
                "--seeds",
                "1",
                "--season",
                "63",
            ]
        )
        == 0
    )
    manifest = json.loads((out / "compare-sine" / "compare.json").read_text())
    assert manifest["optimizers"] == ["mealpy:OriginalSMA", "random"]
    assert "compare-sine.lstm.mealpy-OriginalSMA.seed0" in {cell["study"] for cell in manifest["cells"]}
    report = (out / "compare-sine" / "report.md").read_text()
    assert "| lstm | mealpy:OriginalSMA |" in report
