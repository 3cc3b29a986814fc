"""The named metaheuristics against the candidates they asked with mealpy 3.0.3 and numpy 1.26,
and the study identity that keeps a study on the mealpy that recorded it.

tests/fixtures/record_mealpy_sequences.py wrote the fixture: 4 optimizers x 2 seeds, population
8, budget 48, on a shifted Rastrigin function of 4 plain parameters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hpo_lstm import ConfigError, StudyConfig, run_study
from hpo_lstm.optimizers._mealpy import SAME_PATH_AS_MEALPY_3_0_3, mealpy_distribution
from hpo_lstm.store.record import IDENTITY_ATTR

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from record_mealpy_sequences import OPTIMIZERS, SEEDS, sequences  # noqa: E402


@pytest.fixture(scope="module")
def today() -> dict:
    return sequences()


def _recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())["sequences"]


def _same(a: list, b: list) -> bool:
    # Each step is a few multiplications and additions; rtol only absorbs the last bit that
    # numpy 2's exp and cos (WOA) round differently from numpy 1.26's, in 5 of 96 candidates.
    return len(a) == len(b) and np.allclose(np.array(a), np.array(b), rtol=1e-12, atol=0)


def test_the_four_named_metaheuristics_ask_what_they_asked_with_mealpy_3_0_3(today):
    old = _recorded("mealpy_3.0.3_sequences.json")
    same = {name for name in OPTIMIZERS if all(_same(today[name][str(s)], old[name][str(s)]) for s in SEEDS)}
    assert same == SAME_PATH_AS_MEALPY_3_0_3 == {"pso", "gwo", "woa", "ga"}


def test_mealpy_lts_own_woa_asks_other_candidates_hence_hpo_lstm_keeps_its_own(today):
    # docs/optimizers.md#which-mealpy: mealpy-lts rewrote OriginalWOA; `woa` keeps 3.0.3's moves,
    # `mealpy:OriginalWOA` is the installed mealpy's class as it is.
    from record_mealpy_sequences import BUDGET, POP_SIZE, fitness, space

    from hpo_lstm.optimizers import registry

    old = _recorded("mealpy_3.0.3_sequences.json")["woa"]["0"]
    result = registry["mealpy:OriginalWOA"](pop_size=POP_SIZE).optimize(
        lambda batch: [fitness(p) for p in batch], space(), budget=BUDGET, seed=0
    )
    lts = [[p[f"x{i}"] for i in range(4)] for p in (e.params for e in result.evaluations)]
    assert _same(lts[:POP_SIZE], old[:POP_SIZE])  # the same first population
    assert not _same(lts[POP_SIZE : 2 * POP_SIZE], old[POP_SIZE : 2 * POP_SIZE])


def _tiny(tmp_path: Path, optimizer: str, budget: int) -> StudyConfig:
    return StudyConfig(
        optimizer=optimizer,
        data="sine",
        lookback=8,
        max_epochs=1,
        patience=1,
        budget=budget,
        pop_size=6,
        out=str(tmp_path),
        name="old-" + optimizer.replace(":", "-"),
    )


def _as_if_recorded_with_mealpy_3_0_3(config: StudyConfig) -> None:
    """Drop the mealpy from the stored identity, as hpo-lstm stored it before it moved to mealpy-lts."""
    import optuna

    study = optuna.load_study(study_name=config.study_name, storage=config.storage_url)
    identity = json.loads(study.user_attrs[IDENTITY_ATTR])
    assert identity.pop("optimizer_impl") == mealpy_distribution()
    study.set_user_attr(IDENTITY_ATTR, json.dumps(identity, sort_keys=True))


@pytest.mark.parametrize("optimizer", ["mealpy:OriginalWOA", "mealpy:OriginalSMA"])
def test_a_mealpy_class_study_recorded_with_mealpy_3_0_3_is_not_resumed(tmp_path, optimizer):
    config = _tiny(tmp_path, optimizer, budget=6)
    run_study(config, workers=1)
    _as_if_recorded_with_mealpy_3_0_3(config)
    with pytest.raises(
        ConfigError, match=r"was recorded with mealpy 3\.0\.3, and optimizer .* proposes other candidates with mealpy"
    ):
        run_study(config.replace(budget=12), workers=1)


@pytest.mark.parametrize("optimizer", ["woa", "pso"])
def test_a_named_optimizers_study_recorded_with_mealpy_3_0_3_resumes_and_adopts_todays_mealpy(tmp_path, optimizer):
    import optuna

    config = _tiny(tmp_path, optimizer, budget=6)
    first = run_study(config, workers=1)
    _as_if_recorded_with_mealpy_3_0_3(config)
    again = run_study(config, workers=1)  # replayed, not retrained
    assert [e.value for e in again.search.evaluations] == [e.value for e in first.search.evaluations]
    study = optuna.load_study(study_name=config.study_name, storage=config.storage_url)
    assert json.loads(study.user_attrs[IDENTITY_ATTR])["optimizer_impl"] == mealpy_distribution()
