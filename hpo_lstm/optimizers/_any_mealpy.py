"""Any mealpy optimizer by class name: ``mealpy:<ClassName>`` (``mealpy:OriginalHHO``).

mealpy's own listing (``mealpy.get_all_optimizers``) names the classes. Each runs its own
``solve()`` loop in mealpy's "swarm" mode, with three hooks replaced so that every fitness
evaluation goes through hpo-lstm's ledger:

* ``update_target_for_population`` (where swarm mode evaluates a whole new population) and
  ``generate_population`` (the first population) hand the population over as one batch;
* ``get_target`` (where a class evaluates single agents inside its ``evolve``) hands over a
  batch of one.

A class that calls ``get_target`` inside ``evolve`` is therefore evaluated one agent at a time
there, by mealpy's own design; nothing is reordered. Which it does is found by running the
class on a cheap test function (``probe``): the same run tells whether the class works at all
with these settings (some crash on small populations, or need other arguments), whether its
path is a function of the seed and the fitness values alone (a few draw from numpy's global
random state and could not be resumed by replay), and how many evaluations its first
population and each generation take, from which the number of generations is derived.
Written here because mealpy has no way to say it: its ``is_parallelizable`` flag disagrees with
what 127 of the 195 classes usable with population 8 do (docs/optimizers.md).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hpo_lstm._errors import ConfigError, UnknownNameError, first_line
from hpo_lstm.optimizers._base import MEALPY_PREFIX as PREFIX
from hpo_lstm.optimizers._base import PENALTY, _BudgetExhausted, _Ledger
from hpo_lstm.optimizers._mealpy import MAX_GENERATIONS, _MealpyOptimizer, solve_quietly
from hpo_lstm.space import SearchSpace

__all__ = [
    "BATCHED",
    "MIXED",
    "ONE_AT_A_TIME",
    "PREFIX",
    "Probe",
    "listing",
    "listing_rows",
    "mealpy_classes",
    "probe",
    "resolve",
]

BATCHED = "batched"
ONE_AT_A_TIME = "one agent at a time"
MIXED = "partly batched"

# The probe: mealpy's generations 1..PROBE_GENERATIONS on a test function, with this seed.
PROBE_GENERATIONS = 6
PROBE_SEED = 0
# Some options' ranges grow with the number of generations (CHIO's max_age <= 1 + epoch / 5),
# so mealpy refuses a short schedule with a class's defaults; such a class is probed on the
# first of these schedules it accepts, stopped after PROBE_GENERATIONS.
PROBE_SCHEDULES = (PROBE_GENERATIONS, 20, 100, 1000)
# The settings `hpo-lstm optimizers --all` probes with (the default pop_size and the default
# search space's three parameters), then these populations for a class that fails there.
LISTING_POP_SIZE = 8
LISTING_DIM = 3
LARGER_POP_SIZES = (10, 12, 16, 20, 30, 50, 100)


@functools.cache
def mealpy_classes() -> dict[str, type]:
    """mealpy's optimizer classes by class name, from mealpy's own listing (imports mealpy)."""
    import mealpy

    return dict(sorted(mealpy.get_all_optimizers(verbose=False).items()))


# mealpy Optimizer subclasses of a user's own (--optimizer my_optimizer:MyWOA), by their
# module:Class name: run as any mealpy:<ClassName> is (hpo_lstm.optimizers._user).
_USER_CLASSES: dict[str, type] = {}


def _mealpy_class(key: str) -> type:
    """A mealpy class by its listing name, or a user's mealpy subclass by its module:Class."""
    return _USER_CLASSES[key] if key in _USER_CLASSES else mealpy_classes()[key]


def user_adapter(name: str, cls: type) -> type[AnyMealpy]:
    """The adapter for a user's subclass of a mealpy optimizer, named ``name`` (module:Class)."""
    _USER_CLASSES[name] = cls
    return _adapter(name)


def resolve(name: str) -> type[AnyMealpy]:
    """The adapter class for ``mealpy:<ClassName>``; an unknown class suggests close names."""
    class_name = name[len(PREFIX) :]
    classes = mealpy_classes()
    if class_name not in classes:
        same_but_case = [c for c in classes if c.lower() == class_name.lower()]
        close = same_but_case or difflib.get_close_matches(class_name, list(classes), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(PREFIX + c for c in close)}? " if close else ""
        raise UnknownNameError(
            f"Unknown mealpy optimizer {name!r}; {hint}`hpo-lstm optimizers --all` lists the {len(classes)} classes."
        )
    return _adapter(class_name)


@functools.cache
def _adapter(class_name: str) -> type[AnyMealpy]:
    mealpy_class = _mealpy_class(class_name)
    skipped = {"self", "epoch", "pop_size"}
    options = tuple(
        p.name
        for p in inspect.signature(mealpy_class.__init__).parameters.values()
        if p.name not in skipped and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )
    family = mealpy_class.__module__.removeprefix("mealpy.")
    user = class_name in _USER_CLASSES
    namespace = {
        "name": class_name if user else PREFIX + class_name,
        "summary": (
            f"your own mealpy optimizer {class_name}"
            if user
            else f"mealpy {class_name} ({family}); batching: `hpo-lstm optimizers --all`"
        ),
        "_key": class_name if user else PREFIX + class_name,
        "_class_name": class_name,
        "_option_names": options,
    }
    return type(f"Mealpy{class_name.replace(':', '_').replace('.', '_')}", (AnyMealpy,), namespace)


class _NonFinitePosition(Exception):
    """A mealpy class proposed a position with NaN or infinite coordinates."""


@functools.cache
def wrapped_class(class_name: str) -> type:
    """The mealpy class with its evaluation hooks routed to ``self._evaluate_units``."""
    from mealpy.optimizer import Optimizer as MealpyOptimizer
    from mealpy.utils.target import Target

    base = _mealpy_class(class_name)
    # A class with its own generate_agent sets more than the target per agent (PSO's personal
    # best, for one); its first population is made agent by agent, through get_target.
    batch_first_population = (
        base.generate_agent is MealpyOptimizer.generate_agent
        and base.generate_population is MealpyOptimizer.generate_population
    )

    class Wrapped(base):  # type: ignore[misc, valid-type]
        _evaluate_units: Callable[[list[np.ndarray]], Sequence[float]]
        _generation = 0
        _log: list[tuple[int, str, int]] | None = None  # (generation, "batch" | "single", size): the probe's
        _raised: BaseException | None = None  # what the objective raised (not mealpy's own fault)

        def _evaluate(self, solutions: list, kind: str) -> list:
            units = [np.asarray(s, dtype=float) for s in solutions]
            if not all(np.isfinite(u).all() for u in units):
                raise _NonFinitePosition
            if self._log is not None:
                self._log.append((self._generation, kind, len(units)))
            try:
                values = self._evaluate_units(units)
            except BaseException as exc:
                self._raised = exc
                raise
            return [Target(objectives=[v], weights=[1.0]) for v in values]

        def generate_population(self, pop_size: int | None = None) -> list:
            if not batch_first_population:
                return super().generate_population(pop_size)  # swarm mode: generate_agent, one by one
            # Same draws as mealpy's agent-by-agent loop: generate_agent = empty agent + get_target.
            pop = [self.generate_empty_agent() for _ in range(pop_size or self.pop_size)]
            return self.update_target_for_population(pop)

        def update_target_for_population(self, pop: list | None = None) -> list:
            if pop:
                for agent, target in zip(pop, self._evaluate([agent.solution for agent in pop], "batch")):
                    agent.target = target
                self.nfe_counter += len(pop)
            return pop

        def get_target(self, solution: np.ndarray, counted: bool = True) -> Any:
            if counted:
                self.nfe_counter += 1
            return self._evaluate([solution], "single")[0]

        def evolve(self, epoch: int) -> None:
            self._generation = epoch
            super().evolve(epoch)

    Wrapped.__name__ = Wrapped.__qualname__ = base.__name__
    return Wrapped


def _solve(model: Any, dim: int, seed: int, stop_after: int | None = None) -> None:
    termination = {"max_epoch": stop_after} if stop_after is not None else None
    solve_quietly(model, dim, seed, termination)


def _mealpy_refuses(class_name: str, epoch: int, pop_size: int, options: dict[str, Any]) -> str | None:
    """mealpy's constructor's complaint about these settings, or None."""
    try:
        _mealpy_class(class_name)(epoch=epoch, pop_size=pop_size, **options)
    except (ValueError, TypeError) as exc:
        return first_line(exc)
    return None


def fewest_generations(class_name: str, pop_size: int, options: dict[str, Any] | None = None) -> int | None:
    """The shortest schedule mealpy's constructor accepts with these settings (None: none up to
    the longest probe schedule)."""
    for epoch in range(1, PROBE_SCHEDULES[-1] + 1):
        if _mealpy_refuses(class_name, epoch, pop_size, dict(options or {})) is None:
            return epoch
    return None


# The probe ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What one class does with given settings on the test function, or why it cannot run."""

    class_name: str
    pop_size: int
    dim: int
    refusal: str | None = None  # None: usable
    schedule: int = PROBE_GENERATIONS  # the `epoch` the probe gave mealpy
    initial: int = 0  # evaluations before the first generation
    initial_batched: bool = True  # the first population in one batch (else agent by agent)
    per_generation: int = 0  # fewest evaluations in one generation (at least 1)
    batched: int = 0  # evaluations in the generations handed over a population at a time
    single: int = 0  # evaluations in the generations handed over one agent at a time

    @property
    def usable(self) -> bool:
        return self.refusal is None

    @property
    def batching(self) -> str:
        if self.single == 0:
            return BATCHED
        if self.batched == 0:
            return ONE_AT_A_TIME
        return MIXED

    def describe(self) -> str:
        text = self.batching
        if self.batching == MIXED:
            share = round(100 * self.batched / (self.batched + self.single))
            text += f" ({share}% of the generations' evaluations in population batches, the rest one agent at a time)"
        if not self.initial_batched and self.batching != ONE_AT_A_TIME:
            text += "; first population one agent at a time"
        elif self.initial_batched and self.batching == ONE_AT_A_TIME:
            text += " (first population in one batch)"
        return text


def _probe_fitness(unit: np.ndarray) -> float:
    # Ties, as the memo gives integer-rounded candidates, and failures, as diverged trainings
    # give: the two things a study's fitness has that a smooth test function lacks.
    if unit[0] > 0.9:
        return PENALTY
    return round(float(np.sum((unit - 0.3) ** 2)), 2)


def _probe_run(class_name: str, pop_size: int, dim: int, options: dict[str, Any], schedule: int) -> tuple[list, list]:
    model = wrapped_class(class_name)(epoch=schedule, pop_size=pop_size, **options)
    positions: list[np.ndarray] = []

    def evaluate(units: list[np.ndarray]) -> list[float]:
        positions.extend(u.copy() for u in units)
        return [_probe_fitness(u) for u in units]

    model._evaluate_units = evaluate
    model._log = []
    _solve(model, dim, PROBE_SEED, stop_after=PROBE_GENERATIONS if schedule > PROBE_GENERATIONS else None)
    return model._log, positions


def _global_random_states() -> tuple[Any, Any]:
    return np.random.get_state(), random.getstate()


def _same_states(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    (np_a, py_a), (np_b, py_b) = a, b
    return py_a == py_b and np_a[0] == np_b[0] and np.array_equal(np_a[1], np_b[1]) and np_a[2:] == np_b[2:]


def _probe(class_name: str, pop_size: int, dim: int, options: dict[str, Any], schedule: int | None = None) -> Probe:
    refused = functools.partial(Probe, class_name, pop_size, dim)
    schedules = PROBE_SCHEDULES if schedule is None else (schedule,)
    complaints = {epoch: _mealpy_refuses(class_name, epoch, pop_size, options) for epoch in schedules}
    schedule = next((epoch for epoch, complaint in complaints.items() if complaint is None), None)
    if schedule is None:
        return refused(f"mealpy refuses its settings: {complaints[schedules[-1]].rstrip('.')}")
    runs = []
    for _ in range(2):
        before = _global_random_states()
        try:
            runs.append(_probe_run(class_name, pop_size, dim, options, schedule))
        except _NonFinitePosition:
            return refused("proposes positions with NaN or infinite coordinates")
        except Exception as exc:  # noqa: BLE001 - any fault of the class makes it unusable here
            return refused(f"crashes ({type(exc).__name__}: {first_line(exc)})")
        finally:
            after = _global_random_states()
            if not _same_states(before, after):
                np.random.set_state(before[0])  # as the caller had them
                random.setstate(before[1])
        if not _same_states(before, after):
            return refused(
                "draws from numpy's or Python's global random state: its path is not a function of the seed, "
                "so a study could not be resumed by replay"
            )
    (log, positions), (log_again, positions_again) = runs
    if log != log_again or not all(np.array_equal(a, b) for a, b in zip(positions, positions_again)):
        return refused("draws randomness that the seed does not fix, so a study could not be resumed by replay")
    per_generation = [sum(n for g, _, n in log if g == generation) for generation in range(1, PROBE_GENERATIONS + 1)]
    if sum(per_generation) == 0:
        return refused("evaluates nothing after its first population")
    return Probe(
        class_name,
        pop_size,
        dim,
        schedule=schedule,
        initial=sum(n for g, _, n in log if g == 0),
        initial_batched=all(kind == "batch" for g, kind, _ in log if g == 0),
        per_generation=max(1, min(per_generation)),
        batched=sum(n for g, kind, n in log if g > 0 and kind == "batch"),
        single=sum(n for g, kind, n in log if g > 0 and kind == "single"),
    )


@functools.lru_cache(maxsize=1024)
def _cached_probe(
    class_name: str, pop_size: int, dim: int, options: tuple[tuple[str, type, Any], ...], schedule: int | None
) -> Probe:
    return _probe(class_name, pop_size, dim, {name: value for name, _, value in options}, schedule)


def probe(
    class_name: str, *, pop_size: int, dim: int, options: dict[str, Any] | None = None, schedule: int | None = None
) -> Probe:
    """Run ``class_name`` on the test function with these settings (remembered per settings).

    ``schedule`` is mealpy's ``epoch`` (stopped after PROBE_GENERATIONS generations); None: the
    first of PROBE_SCHEDULES that mealpy accepts.
    """
    # Keyed by value and type: 1 == True, but mealpy takes only True for a boolean.
    key = tuple((k, type(v), v) for k, v in sorted((options or {}).items()))
    try:
        return _cached_probe(class_name, pop_size, dim, key, schedule)
    except TypeError:  # an unhashable option value (a list): probed without the cache
        return _probe(class_name, pop_size, dim, dict(options or {}), schedule)


def listing() -> list[tuple[str, Probe]]:
    """Every mealpy class probed with the default pop_size and space; a class that fails there
    is probed with larger populations, and the smallest that works is reported."""
    rows = []
    for class_name in mealpy_classes():
        found = probe(class_name, pop_size=LISTING_POP_SIZE, dim=LISTING_DIM)
        if not found.usable:
            reasons = {found.refusal: LISTING_POP_SIZE}
            for pop_size in LARGER_POP_SIZES:
                larger = probe(class_name, pop_size=pop_size, dim=LISTING_DIM)
                if larger.usable:
                    found = larger
                    break
                reasons.setdefault(larger.refusal, pop_size)
            else:  # unusable at every size: each distinct reason, from the size it starts at
                found = dataclasses.replace(
                    found,
                    refusal="; ".join(
                        reason if size == LISTING_POP_SIZE else f"with pop_size >= {size}, it {reason}"
                        for reason, size in reasons.items()
                    ),
                )
        rows.append((PREFIX + class_name, found))
    return rows


def listing_rows() -> tuple[str, list[tuple[str, str]], str]:
    """``hpo-lstm optimizers --all``: a header, one (name, description) row per mealpy class,
    then the counts."""
    from hpo_lstm.optimizers._mealpy import mealpy_distribution

    rows = listing()
    header = (
        f"{mealpy_distribution()}: {len(rows)} classes as mealpy:<ClassName>, each tried on a test function with "
        f"pop_size={LISTING_POP_SIZE} and {LISTING_DIM} parameters (the defaults); 'batched': whole populations "
        "are trained as one batch, 'one agent at a time': a batch of one per evaluation."
    )
    lines = []
    for name, found in rows:
        if not found.usable:
            lines.append((name, f"unusable: {found.refusal}"))
            continue
        notes = []
        if found.pop_size != LISTING_POP_SIZE:
            notes.append(f"needs pop_size >= {found.pop_size}")
        if found.schedule > PROBE_GENERATIONS:
            fewest = fewest_generations(found.class_name, found.pop_size)
            notes.append(f"its default options need >= {fewest} generations")
        lines.append((name, found.describe() + "".join(f"; {note}" for note in notes)))
    usable = [found for _, found in rows if found.usable]
    kinds = ", ".join(f"{sum(f.batching == kind for f in usable)} {kind}" for kind in (BATCHED, MIXED, ONE_AT_A_TIME))
    return header, lines, f"{len(usable)} usable ({kinds}), {len(rows) - len(usable)} unusable."


# The optimizer --------------------------------------------------------------------------------


class AnyMealpy(_MealpyOptimizer):
    """``mealpy:<ClassName>``: one adapter class per mealpy class, made by :func:`resolve`.

    Extra keyword options go to the mealpy class's constructor (its own checks apply).
    """

    _class_name: ClassVar[str]
    # Options are checked when the optimizer is made with the longest schedule, where the ranges
    # that grow with the generations are widest; check_search checks them with the real one.
    _check_epoch: ClassVar[int] = MAX_GENERATIONS

    @classmethod
    def _mealpy_class(cls) -> type:
        return wrapped_class(cls._class_name)

    def _option_value(self, name: str) -> Any:
        if name in self.options:
            return self.options[name]
        parameter = inspect.signature(_mealpy_class(self._class_name).__init__).parameters.get(name)
        return parameter.default if parameter is not None else "(default)"

    def probe(self, dim: int, schedule: int | None = None) -> Probe:
        """This class's behaviour with this pop_size and options on a ``dim``-parameter space."""
        return probe(self._class_name, pop_size=self.pop_size, dim=dim, options=self.options, schedule=schedule)

    def generations(self, found: Probe, budget: int) -> int:
        """mealpy's `epoch` for a budget: the generations it allows after the first population,
        at the probe's (fewest) evaluations per generation, so that annealing schedules (HHO's
        escaping energy, WOA's `a`) run their course; the ledger cuts the last one."""
        return min(MAX_GENERATIONS, max(1, math.ceil((budget - found.initial) / found.per_generation)))

    def check_search(self, space: SearchSpace, budget: int) -> None:
        found = self.probe(space.dim)
        if not found.usable:
            raise ConfigError(
                f"Optimizer '{self.name}' cannot search a {space.dim}-parameter space with pop_size={self.pop_size}: "
                f"it {found.refusal} in hpo-lstm's trial run on a test function; "
                "`hpo-lstm optimizers --all` lists the usable classes."
            )
        epoch = self.generations(found, budget)
        complaint = _mealpy_refuses(self._class_name, epoch, self.pop_size, dict(self.options))
        if complaint is not None:
            fewest = fewest_generations(self._class_name, self.pop_size, self.options)
            hint = (
                f"; it accepts them from {fewest} generations on (budget {found.initial + fewest * found.per_generation})"
                if fewest is not None
                else ""
            )
            raise ConfigError(
                f"Budget {budget} gives optimizer '{self.name}' {epoch} generation(s) of pop_size={self.pop_size}, too "
                f"few for its options{hint}: {self._mealpy_message(complaint)}"
            )
        if budget > found.initial:  # generations will run: tried on this very schedule too (a short
            # one can divide by zero where a long one does not)
            on_schedule = self.probe(space.dim, schedule=epoch)
            if not on_schedule.usable:
                raise ConfigError(
                    f"Optimizer '{self.name}' cannot search a {space.dim}-parameter space with pop_size={self.pop_size} "
                    f"and budget {budget} ({epoch} generation(s)): it {on_schedule.refusal} in hpo-lstm's trial run on "
                    "a test function; a larger budget may work."
                )

    @property
    def max_budget(self) -> None:
        return None  # past mealpy's generation limit, new runs spend the rest (see _run)

    def _run(self, objective: _Ledger, space: SearchSpace, budget: int, seed: int) -> None:
        self.check_search(space, budget)
        epoch = self.generations(self.probe(space.dim), budget)
        restart = 0
        while objective.remaining > 0:
            # A class whose generations take fewer evaluations here than in the probe ends its
            # run with budget left: a new run with the same settings, from a new population and a
            # seed derived from the study's, spends it.
            model = wrapped_class(self._class_name)(epoch=epoch, pop_size=self.pop_size, **self.options)
            model._evaluate_units = objective
            run_seed = seed if restart == 0 else int(np.random.SeedSequence([seed, restart]).generate_state(1)[0])
            left = objective.remaining
            try:
                _solve(model, space.dim, run_seed)
            except _BudgetExhausted:
                raise
            except Exception as exc:
                if exc is model._raised:  # the fitness function's own error (storage, workers)
                    raise
                if objective.remaining <= 0:  # mealpy went on after the budget was spent: no matter
                    return
                what = (
                    "proposed a position with NaN or infinite coordinates"
                    if isinstance(exc, _NonFinitePosition)
                    else f"crashed ({type(exc).__name__}: {first_line(exc)})"
                )
                raise ConfigError(
                    f"Optimizer '{self.name}' {what} after {len(objective.evaluations)} evaluations, which the study "
                    "keeps; it is deterministic, so the same command stops there again: choose another optimizer, "
                    "pop_size or seed for a new study."
                ) from exc
            if objective.remaining == left:
                raise ConfigError(f"Optimizer '{self.name}' ended a run without evaluating anything.")
            restart += 1
