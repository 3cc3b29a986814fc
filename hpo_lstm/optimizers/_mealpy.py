"""mealpy metaheuristics (PSO, GWO, WOA, GA), evaluated a whole population at a time.

mealpy runs its own ``solve()`` loop and, in its "swarm" mode, hands each generation's new
positions to ``Optimizer.update_target_for_population``: overriding that method is where a
population becomes one batch for ``evaluate_batch``. The initial population goes through
``generate_population``, which is overridden the same way. OriginalPSO evaluates particle by
particle in every mode, so its ``evolve`` is rewritten here as "move every particle, evaluate
the batch, update bests": the random draws happen in the same order and no particle's move
depends on another's new fitness within a generation, so the path equals mealpy's own
(``tests/test_optimizers.py`` proves it on a cheap function).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import warnings
from typing import Any, ClassVar

import numpy as np

from hpo_lstm._errors import ConfigError
from hpo_lstm.optimizers._base import Optimizer, _Ledger
from hpo_lstm.space import SearchSpace

__all__ = ["GA", "GWO", "MAX_GENERATIONS", "PSO", "SAME_PATH_AS_MEALPY_3_0_3", "WOA", "mealpy_distribution"]

# mealpy's own bound on `epoch` (generations) in each optimizer's constructor: check_int("epoch",
# epoch, [1, 100000]). tests/test_validation.py checks it against mealpy.
MAX_GENERATIONS = 100_000


# The named optimizers that propose exactly the candidates they proposed with mealpy 3.0.3, the
# mealpy hpo-lstm used before numpy 2 (tests/test_mealpy_sequences.py checks this set against
# candidates recorded with 3.0.3): their studies recorded then still resume. No class of
# `mealpy:<Class>` was checked (mealpy-lts changed many), so those studies do not.
SAME_PATH_AS_MEALPY_3_0_3 = frozenset({"pso", "gwo", "woa", "ga"})


@functools.cache
def mealpy_distribution() -> str:
    """The installed mealpy, as "<distribution> <version>" ("mealpy-lts 3.0.4.1"), read from
    the package metadata without importing mealpy. Part of a study's identity
    (``StudyConfig.identity``): another mealpy may propose other candidates for the same seed."""
    from importlib import metadata

    for dist in ("mealpy-lts", "mealpy"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "mealpy (version unknown)"


def _no_direct_evaluation(solution: Any) -> float:
    raise RuntimeError("evaluated outside mealpy's get_target and population hooks")


def solve_quietly(model: Any, dim: int, seed: int, termination: dict[str, Any] | None = None) -> None:
    """``model.solve`` on the unit cube of ``dim`` parameters in swarm mode, printing nothing.

    hpo-lstm shows its own progress. mealpy-lts draws a tqdm bar unless the problem logs to
    "console", and then logs every generation to a handler of its own on the optimizer's
    logger (named after the class), unless that logger already has one: so the problem logs
    to "console", and the class's logger gets a handler that drops everything and does not
    pass records up. mealpy's arithmetic meets ties and the penalty (divisions by zero, logs
    of zero): numpy's warnings about it would only clutter the display too.
    """
    from mealpy import FloatVar, Problem

    logger = logging.getLogger(f"{type(model).__module__}.{type(model).__name__}")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    problem = Problem(
        bounds=FloatVar(lb=[0.0] * dim, ub=[1.0] * dim, name="unit"),
        minmax="min",
        obj_func=_no_direct_evaluation,
        obj_weights=[1.0],
        log_to="console",
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.solve(problem, mode="swarm", seed=seed, termination=termination)


@functools.cache
def _batched_classes() -> dict[str, type]:
    """Subclasses of the mealpy optimizers that evaluate populations in one batch.

    Built on first use so that importing hpo_lstm does not import mealpy (1.5 s).
    """
    from mealpy.evolutionary_based.GA import BaseGA
    from mealpy.swarm_based.GWO import OriginalGWO
    from mealpy.swarm_based.PSO import OriginalPSO
    from mealpy.swarm_based.WOA import OriginalWOA
    from mealpy.utils.target import Target

    class BatchedMixin:
        _batch_objective: _Ledger

        def _evaluate(self, solutions: list) -> list:
            values = self._batch_objective(solutions)
            return [Target(objectives=[v], weights=[1.0]) for v in values]

        def generate_population(self, pop_size: int | None = None) -> list:
            # Same draws as mealpy's agent-by-agent loop: generate_agent = empty agent + get_target,
            # and get_target draws nothing.
            pop = [self.generate_empty_agent() for _ in range(pop_size or self.pop_size)]
            return self.update_target_for_population(pop)

        def update_target_for_population(self, pop: list | None = None) -> list:
            for agent, target in zip(pop, self._evaluate([agent.solution for agent in pop])):
                agent.target = target
            self.nfe_counter += len(pop)
            return pop

    class BatchedPSO(BatchedMixin, OriginalPSO):
        def generate_population(self, pop_size: int | None = None) -> list:
            pop = super().generate_population(pop_size)
            for agent in pop:
                agent.local_target = agent.target.copy()
            return pop

        def evolve(self, epoch: int) -> None:
            # mealpy's OriginalPSO.evolve, split into move-all, evaluate-all, update-all.
            n_dims = self.problem.n_dims
            moves = []
            for idx in range(self.pop_size):
                agent = self.pop[idx]
                cognitive = self.c1 * self.generator.random(n_dims) * (agent.local_solution - agent.solution)
                social = self.c2 * self.generator.random(n_dims) * (self.g_best.solution - agent.solution)
                agent.velocity = self.w * agent.velocity + cognitive + social
                moves.append(self.correct_solution(agent.solution + agent.velocity))
            targets = self._evaluate(moves)
            for agent, pos_new, target in zip(self.pop, moves, targets):
                if self.compare_target(target, agent.target, self.problem.minmax):
                    agent.update(solution=pos_new.copy(), target=target.copy())
                if self.compare_target(target, agent.local_target, self.problem.minmax):
                    agent.update(local_solution=pos_new.copy(), local_target=target.copy())

    class BatchedGWO(BatchedMixin, OriginalGWO):
        pass

    class BatchedWOA(BatchedMixin, OriginalWOA):
        def evolve(self, epoch: int) -> None:
            # mealpy 3.0.3's OriginalWOA.evolve (MIT), kept when hpo-lstm moved to mealpy-lts:
            # mealpy-lts 3.0.4.1 rewrote it dimension by dimension, without the greedy
            # selection, and with A = a (2 r - a) where the paper has A = 2 a r - a (eq. 2.3),
            # which biases A positive once a < 1 (docs/optimizers.md#which-mealpy). Each whale
            # draws r (for A and C), l and p; with p < 0.5 it encircles the best whale when
            # |A| < 1, else a random point of the space; otherwise it spirals towards the best
            # whale. The moved whales are evaluated as one batch, and each keeps the better of
            # its old and new position.
            a = 2 - 2 * epoch / self.epoch  # from 2 down to 0 over the generations
            moved = []
            for idx in range(self.pop_size):
                r = self.generator.random()
                A, C = 2 * a * r - a, 2 * r
                spiral = self.generator.uniform(-1, 1)
                here = self.pop[idx].solution
                if self.generator.uniform() < 0.5:
                    towards = self.g_best.solution if abs(A) < 1 else self.problem.generate_solution()
                    pos = towards - A * np.abs(C * towards - here)
                else:
                    pos = self.g_best.solution + np.exp(spiral) * np.cos(2 * np.pi * spiral) * np.abs(
                        self.g_best.solution - here
                    )
                moved.append(self.generate_empty_agent(self.correct_solution(pos)))
            moved = self.update_target_for_population(moved)
            self.pop = self.greedy_selection_population(self.pop, moved, self.problem.minmax)

    class BatchedGA(BatchedMixin, BaseGA):
        def survivor_process__(self, pop: list, pop_child: list) -> list:
            # BaseGA's survivor tournament, with k_way raised from a fixed 0.1 to at least one
            # entrant: mealpy's own crashes on populations under 10. Same draws otherwise.
            k_way = max(0.1, 1 / len(pop) + 1e-9)
            pop_new = []
            for idx in range(self.pop_size):
                id_child = self.get_index_kway_tournament_selection(pop, k_way=k_way, output=1, reverse=True)[0]
                pop_new.append(self.get_better_agent(pop_child[idx], pop[id_child], self.problem.minmax))
            return pop_new

    return {"pso": BatchedPSO, "gwo": BatchedGWO, "woa": BatchedWOA, "ga": BatchedGA}


@functools.lru_cache(maxsize=256)
def _mealpy_refusal(
    mealpy_class: type, pop_size: int, options: tuple[tuple[str, type, Any], ...], epoch: int = 1
) -> str | None:
    """mealpy's constructor's ValueError for these settings, or None when it takes them."""
    try:
        mealpy_class(epoch=epoch, pop_size=pop_size, **{name: value for name, _, value in options})
    except ValueError as exc:
        return str(exc)
    return None


class _MealpyOptimizer(Optimizer):
    """Adapter for one mealpy optimizer; extra keyword options go to its constructor."""

    min_pop_size: ClassVar[int] = 5  # mealpy's own lower bound
    _key: ClassVar[str]
    _option_names: ClassVar[tuple[str, ...]] = ()
    # The `epoch` (generations) the options are checked with when the optimizer is made, before
    # the budget is known; the four named here have no option whose range depends on it.
    _check_epoch: ClassVar[int] = 1

    def __init__(self, *, pop_size: int = 8, **options: Any) -> None:
        super().__init__(pop_size=pop_size)
        unknown = sorted(set(options) - set(self._option_names))
        if unknown:
            allowed = ", ".join(("pop_size",) + self._option_names)
            raise ConfigError(f"Unknown option(s) {unknown} for optimizer '{self.name}'; allowed: {allowed}.")
        self.options = self._complete_options(dict(options))
        self._check_with_mealpy()

    @classmethod
    def implementation(cls) -> str | None:
        return mealpy_distribution()

    @classmethod
    def _mealpy_class(cls) -> type:
        """The mealpy class that ``_run`` instantiates (a subclass that evaluates in batches)."""
        return _batched_classes()[cls._key]

    def _complete_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options with this adapter's defaults added (and checked); GA has some."""
        return options

    def _check_with_mealpy(self) -> None:
        """Run mealpy's own checks of the options now (its constructor's), not when the search
        starts: a bad value is refused before any study is created, as one line."""
        # Remembered (a comparison checks the same options once per cell), by value and type:
        # 1 == True, but mealpy takes only True for a boolean.
        options = tuple((k, type(v), v) for k, v in sorted(self.options.items()))
        try:
            refusal = _mealpy_refusal(self._mealpy_class(), self.pop_size, options, self._check_epoch)
        except TypeError:  # an unhashable option value (a list): checked without the cache
            refusal = _mealpy_refusal.__wrapped__(self._mealpy_class(), self.pop_size, options, self._check_epoch)
        if refusal is not None:
            raise ConfigError(self._mealpy_message(refusal))

    def _mealpy_message(self, text: str) -> str:
        # mealpy says "'c1' is a float and value should be in range: (0, 5.0)." (a tuple is an open
        # interval, a list a closed one) or "'mutation' is a string and value should be one of this: [...]".
        match = re.match(r"'(\w+)' is an? (\w+)(?: and value should be (in range|one of this): (.+?))?\.?$", text)
        if match is None:
            return f"Invalid option for optimizer '{self.name}': {text}"
        name, kind, how, rule = match.groups()
        value = self.pop_size if name == "pop_size" else self._option_value(name)
        requirement = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
        interval = re.fullmatch(r"([(\[])\s*([^,]+),\s*([^)\]]+)([)\]])", rule or "")
        if how == "in range" and interval is not None:
            low, high = interval.group(2), interval.group(3)
            requirement += f" from {low} to {high}" + (" inclusive" if interval.group(1) == "[" else ", both excluded")
        elif rule:
            requirement += f", one of {rule}"
        return f"Option '{name}' of optimizer '{self.name}' must be {requirement} (mealpy's rule); got {value!r}."

    def _option_value(self, name: str) -> Any:
        return self.options.get(name, "(default)")

    @property
    def min_budget(self) -> int:
        return self.pop_size

    @property
    def max_budget(self) -> int:
        # _run gives mealpy ceil((budget - pop_size) / per_generation) generations.
        return self.pop_size + MAX_GENERATIONS * self.evaluations_per_generation()

    def _max_budget_reason(self) -> str:
        return f"one population, then mealpy's limit of {MAX_GENERATIONS} generations of {self.evaluations_per_generation()}"

    def evaluations_per_generation(self) -> int:
        return self.pop_size

    def _run(self, objective: _Ledger, space: SearchSpace, budget: int, seed: int) -> None:
        per_generation = self.evaluations_per_generation()
        # mealpy anneals some coefficients over `epoch` generations (WOA's and GWO's `a`), so
        # give it the true number of generations the budget allows; the ledger cuts the last.
        generations = max(1, math.ceil((budget - self.pop_size) / per_generation))
        model = self._mealpy_class()(epoch=generations, pop_size=self.pop_size, **self.options)
        model._batch_objective = objective
        solve_quietly(model, space.dim, seed)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(pop_size={self.pop_size}{extra})"


class PSO(_MealpyOptimizer):
    name = "pso"
    summary = "Particle swarm optimisation (mealpy OriginalPSO; population evaluated as one batch)"
    _key = "pso"
    _option_names = ("c1", "c2", "w")


class GWO(_MealpyOptimizer):
    name = "gwo"
    summary = "Grey wolf optimizer (mealpy OriginalGWO)"
    _key = "gwo"


class WOA(_MealpyOptimizer):
    name = "woa"
    summary = "Whale optimization algorithm (the moves of mealpy 3.0.3's OriginalWOA)"
    _key = "woa"


class GA(_MealpyOptimizer):
    name = "ga"
    summary = "Genetic algorithm (mealpy BaseGA: tournament selection, arithmetic crossover, pm=0.2)"
    _key = "ga"
    _option_names = ("pc", "pm", "selection", "k_way", "crossover", "mutation", "mutation_multipoints")

    def __init__(self, *, pop_size: int = 8, **options: Any) -> None:
        # BaseGA's defaults (uniform crossover, pm=0.025) only recombine the initial genes on a
        # 3-6 dimensional search and stall; a real-coded setup (blend crossover, the 1/d
        # mutation rate) finds the minimum of a test function 10x closer at equal budget.
        options = {"crossover": "arithmetic", "pm": 0.2, **options}
        super().__init__(pop_size=pop_size, **options)

    def _complete_options(self, options: dict[str, Any]) -> dict[str, Any]:
        pop_size = self.pop_size
        # BaseGA's tournament draws int(k_way * pop_size) entrants and needs two parents; its
        # default k_way=0.2 gives one entrant for populations under 10 and then crashes.
        if pop_size % 2:
            raise ConfigError(
                f"GA's 'pop_size' must be even (BaseGA breeds pairs and replaces the whole population); got {pop_size}."
            )
        k_way = options.setdefault("k_way", max(0.2, 2 / pop_size + 1e-9))
        if isinstance(k_way, bool) or not isinstance(k_way, (int, float)):
            raise ConfigError(f"GA's 'k_way' must be a number in (0, 1); got {k_way!r}.")
        if not 0 < k_way < 1 or int(k_way * pop_size) < 2:
            raise ConfigError(
                f"GA's 'k_way' must lie in (0, 1) and give at least 2 tournament entrants "
                f"(int(k_way * pop_size) >= 2); got k_way={k_way!r} with pop_size={pop_size}."
            )
        return options
