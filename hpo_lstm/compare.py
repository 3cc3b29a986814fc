"""Comparisons: every model x optimizer x seed is a study ("cell") in one shared storage.

``run_compare`` runs the cells that are not finished (resuming the interrupted ones through
the usual replay), then writes the comparison report from what the storage holds, exactly
as ``hpo-lstm report`` does later. Untuned cells train each model once with fixed textbook
settings (hidden 50, 2 layers, learning rate 1e-3) under the same epochs and early stopping:
the row that says whether tuning was worth it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo_lstm._errors import ConfigError, setting_text
from hpo_lstm._interrupts import interrupts_outside_storage
from hpo_lstm.config import StudyConfig, read_toml
from hpo_lstm.data import Dataset
from hpo_lstm.space import SearchSpace, default_space
from hpo_lstm.store.manifest import MANIFEST, absolute_sqlite, cell_study_name, read_manifest, write_manifest

__all__ = [
    "MANIFEST",
    "read_manifest",
    "Cell",
    "cell_label",
    "CompareConfig",
    "CompareResult",
    "load_compare_file",
    "parse_shard",
    "run_compare",
    "shard_cells",
]

ALL_OPTIMIZERS = ("pso", "gwo", "woa", "ga", "tpe", "random")
UNTUNED_DEFAULTS = {"learning_rate": 1e-3, "hidden_size": 50, "n_layers": 2}
UNTUNED = "untuned"
# Most studies one comparison may hold: each is a study in the storage and a row of the report.
MAX_CELLS = 10_000

# Settings of a single study that a comparison sets per cell: refused in a comparison file.
_PER_CELL = ("name", "model", "optimizer", "optimizer_impl", "seed")
# (``season`` is a study setting now; CompareConfig(season=...) still sets it on the base.)
_OWN_KEYS = ("name", "models", "optimizers", "seeds", "untuned", "optimizer_options")


@dataclass(frozen=True)
class Cell:
    """One study of a comparison: ``optimizer`` is "untuned" for the fixed-settings baseline."""

    kind: str  # "tuned" or "untuned"
    model: str
    optimizer: str
    seed: int
    config: StudyConfig

    @property
    def study_name(self) -> str:
        return self.config.study_name


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """A comparison: the shared study settings (``base``) and what varies across cells."""

    base: StudyConfig
    name: str | None = None
    models: tuple[str, ...] = ("lstm", "bilstm")
    optimizers: tuple[str, ...] = ALL_OPTIMIZERS
    seeds: tuple[int, ...] = (0, 1, 2)
    season: int | None = None
    untuned: Mapping[str, Any] = field(default_factory=lambda: dict(UNTUNED_DEFAULTS))
    optimizer_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Each name's rule is StudyConfig's: every cell's config is built (and checked) below.
        for label, names in (("model", self.models), ("optimizer", self.optimizers)):
            if not names:
                raise ConfigError(f"A comparison needs at least one {label}; got none.")
            if len(set(names)) != len(names):
                raise ConfigError(f"Each {label} may appear once in a comparison; got {list(names)}.")
        if (
            not self.seeds
            or len(set(self.seeds)) != len(self.seeds)
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds)
        ):
            raise ConfigError(f"seeds must be distinct integers >= 0; got {list(self.seeds)}.")
        if self.season is None:
            object.__setattr__(self, "season", self.base.season)
        elif self.base.season not in (None, self.season):
            raise ConfigError(f"season is set twice, {self.season!r} and {self.base.season!r}; give it once.")
        else:  # the base study's rule (an integer >= 1) applies
            object.__setattr__(self, "base", self.base.replace(season=self.season))
        unknown = sorted(set(self.untuned) - set(UNTUNED_DEFAULTS))
        if unknown:
            raise ConfigError(f"Unknown untuned setting(s) {unknown}; allowed: {', '.join(UNTUNED_DEFAULTS)}.")
        stray = sorted(set(self.optimizer_options) - set(self.optimizers))
        if stray:
            raise ConfigError(
                f"optimizer_options names optimizer(s) {stray} that are not compared; compared: {list(self.optimizers)}."
            )
        if self.name is not None:
            self.base.replace(name=self.name)  # the study-name rule applies to the comparison name too
        n_cells = len(self.seeds) * len(self.models) * (len(self.optimizers) + (1 if self.untuned else 0))
        if n_cells > MAX_CELLS:
            raise ConfigError(
                f"A comparison may hold at most {MAX_CELLS} cells (studies); {len(self.seeds)} `seeds` x "
                f"{len(self.models)} models x {len(self.optimizers)} optimizers{' (+ untuned)' if self.untuned else ''} "
                f"make {n_cells}."
            )
        self.cells()  # every cell's config is valid before anything trains

    @property
    def compare_name(self) -> str:
        if self.name:
            return self.name
        data = self.base.data_name
        data = Path(data).stem if data.lower().endswith(".csv") else data
        return f"compare-{data}"

    @property
    def folder(self) -> Path:
        return Path(self.base.out) / self.compare_name

    def untuned_space(self) -> SearchSpace:
        fixed = {**UNTUNED_DEFAULTS, **dict(self.untuned)}
        return default_space({k: {"low": v, "high": v, "log": False} for k, v in fixed.items()})

    def cells(self) -> list[Cell]:
        """Tuned cells seed by seed (a partial run has whole seeds), then the untuned ones."""
        cells = []
        for seed in self.seeds:
            for model in self.models:
                for optimizer in self.optimizers:
                    config = self.base.replace(
                        name=cell_study_name(self.compare_name, model, optimizer, seed),
                        model=model,
                        optimizer=optimizer,
                        seed=seed,
                        optimizer_options=dict(self.optimizer_options.get(optimizer, {})),
                    )
                    cells.append(Cell("tuned", model, optimizer, seed, config))
        if self.untuned:
            space = self.untuned_space()
            for seed in self.seeds:
                for model in self.models:
                    config = self.base.replace(
                        name=cell_study_name(self.compare_name, model, UNTUNED, seed),
                        model=model,
                        optimizer="random",
                        optimizer_options={},
                        seed=seed,
                        pop_size=1,
                        budget=1,
                        pruning="off",
                        space=space,
                    )
                    cells.append(Cell("untuned", model, UNTUNED, seed, config))
        return cells

    def manifest(self) -> dict[str, Any]:
        """What ``hpo-lstm report`` needs to find and label the cells again."""
        return {
            "name": self.compare_name,
            "storage": absolute_sqlite(self.base.storage_url),
            "models": list(self.models),
            "optimizers": list(self.optimizers),
            "seeds": list(self.seeds),
            "season": self.season,
            "untuned": {**UNTUNED_DEFAULTS, **dict(self.untuned)} if self.untuned else None,
            "base": self.base.to_dict(),
            "cells": [
                {"study": c.study_name, "kind": c.kind, "model": c.model, "optimizer": c.optimizer, "seed": c.seed}
                for c in self.cells()
            ],
        }

    @classmethod
    def from_file(cls, path: str | Path | None = None, **overrides: Any) -> CompareConfig:
        """A comparison file (TOML) merged with ``overrides``, which win (``models=["lstm"]``,
        ``seeds=5``, ``budget=60``, any study setting); validated like the file."""
        values: dict[str, Any] = dict(load_compare_file(path)) if path is not None else {}
        values.update(overrides)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CompareConfig:
        """Build from a comparison file's or the CLI's plain values; unknown keys are refused."""
        study_keys = {f.name for f in dataclasses.fields(StudyConfig)} - set(_PER_CELL)
        misplaced = sorted(set(values) & {"model", "optimizer", "seed"})
        if misplaced:
            raise ConfigError(
                f"A comparison sets {misplaced} per cell; use models, optimizers and seeds (lists) instead."
            )
        unknown = sorted(set(values) - study_keys - set(_OWN_KEYS))
        if unknown:
            valid = ", ".join(sorted(study_keys | set(_OWN_KEYS)))
            raise ConfigError(f"Unknown comparison setting(s) {unknown}; valid settings: {valid}.")
        own = {k: values[k] for k in _OWN_KEYS if k in values and values[k] is not None}
        shared = {k: v for k, v in values.items() if k not in _OWN_KEYS}
        options = own.pop("optimizer_options", {})
        if not isinstance(options, Mapping) or not all(isinstance(v, Mapping) for v in options.values()):
            raise ConfigError(
                "optimizer_options of a comparison must map optimizer names to tables, e.g. "
                f"[optimizer_options.pso] w = 0.5; got {options!r}."
            )
        for key in ("models", "optimizers"):
            if key in own:
                own[key] = _names(key, own[key])
        if "seeds" in own:
            own["seeds"] = _seeds(own["seeds"])
        if "untuned" in own:
            if own["untuned"] is False:
                own["untuned"] = {}
            elif not isinstance(own["untuned"], Mapping):
                raise ConfigError(
                    f"untuned must be a table like {{ hidden_size = 50 }} or false; got {own['untuned']!r}."
                )
        base = StudyConfig.from_mapping(_shared_study_values(shared, own))
        return cls(base=base, optimizer_options={k: dict(v) for k, v in options.items()}, **own)


def _shared_study_values(shared: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    # StudyConfig validates its own optimizer ("woa" by default), which a comparison never runs;
    # validate against the first compared optimizer instead (every cell is validated later).
    optimizers = own.get("optimizers", ALL_OPTIMIZERS)
    return {**shared, "optimizer": optimizers[0], "optimizer_options": {}}


def _names(key: str, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) and i.strip() for i in items):
        raise ConfigError(f"{key} must be a list of names like lstm,bilstm; got {value!r}.")
    # A name with ':' keeps its case: mealpy:<ClassName>, and code of your own (module:Class).
    return tuple(i.strip() if ":" in i else i.strip().lower() for i in items)


def _seeds(value: Any) -> tuple[int, ...]:
    """``5`` means seeds 0..4; a list names them (``"3,"``: seed 3 alone)."""
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isdigit() else [s.strip() for s in text.rstrip(",").split(",")]
        if isinstance(value, list):
            try:
                value = [int(s) for s in value]
            except ValueError:
                raise ConfigError(f"seeds must be a count like 5 or a list like 0,1,2; got {text!r}.") from None
    if isinstance(value, bool):
        raise ConfigError(f"seeds must be a count like 5 or a list like 0,1,2; got {value!r}.")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"The number of seeds must be >= 1; got {value}.")
        if value > MAX_CELLS:  # refused before a tuple of that many seeds is built
            raise ConfigError(
                f"The number of `seeds` must be at most {MAX_CELLS} (cells of one comparison); got {value}."
            )
        return tuple(range(value))
    if isinstance(value, (list, tuple)) and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        return tuple(value)
    raise ConfigError(f"seeds must be a count like 5 or a list like 0,1,2; got {value!r}.")


def load_compare_file(path: str | Path) -> dict[str, Any]:
    """Read a comparison file (TOML) into plain values for :meth:`CompareConfig.from_mapping`."""
    return read_toml(path)


ProgressFactory = Callable[[Cell, int, int], Any]


@dataclass(frozen=True)
class CompareResult:
    """What :func:`run_compare` did: the comparison's folder (its manifest is written there),
    the cells it was given (a shard's, or all), and which of them it ran now or found finished."""

    config: CompareConfig
    folder: Path
    cells: tuple[Cell, ...]
    ran: tuple[Cell, ...]
    skipped: tuple[Cell, ...]


def cell_label(cell: Cell) -> str:
    """How progress displays name a cell: "lstm/woa seed 0"."""
    return f"{cell.model}/{cell.optimizer} seed {cell.seed}"


@interrupts_outside_storage()
def run_compare(
    config: CompareConfig,
    *,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    shard: tuple[int, int] | None = None,
    replace_report: bool = False,
    progress: ProgressFactory | bool | None = None,
    on_cell_done: Callable[[Cell, str], None] | None = None,
) -> CompareResult:
    """Run every unfinished cell of a comparison; the report is the caller's next step.

    Parameters
    ----------
    config:
        The comparison (:meth:`CompareConfig.from_file`).
    executor, workers, scheduler:
        Where the tuned cells' candidates train, as for :func:`hpo_lstm.run_study`; the worker
        processes start (or the dataset reaches the cluster) once for all cells.
    shard:
        ``(k, n)`` runs only cells k, k + n, k + 2n, ... (k from 1), so that n drivers sharing
        one storage (PostgreSQL) split a comparison without running a cell twice.
    replace_report:
        A folder whose report showed cells this comparison leaves out is refused (its report
        would be replaced by a smaller one without a word) unless this is set; a comparison
        that only adds cells extends it.
    progress, on_cell_done:
        ``progress=True``: the display ``hpo-lstm compare`` draws (cells, then each cell's
        study). Or ``progress(cell, index, total)`` returns the progress sink of one cell's study
        (or None); ``on_cell_done(cell, status)`` hears "skipped" (finished earlier), "done", or
        "timeout" (not started: the comparison's ``timeout`` had passed).

    Returns
    -------
    CompareResult
        Write the report with :func:`hpo_lstm.report.write_comparison_report` on its ``folder``
        (``hpo-lstm compare`` does; it reads everything back from the storage).
    """
    from hpo_lstm._orphans import exit_if_starting_child

    exit_if_starting_child()  # a script without `if __name__ == "__main__":`, re-run in a child
    if progress is True:  # the display the command draws, around this very call
        from hpo_lstm.progress import Progress

        with Progress(enabled=True) as display:
            display.cells(len(shard_cells(config.cells(), shard)), config.compare_name)
            return run_compare(
                config,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
                shard=shard,
                replace_report=replace_report,
                progress=lambda cell, index, total: display.study(cell_label(cell), cell.config.budget),
                on_cell_done=lambda cell, status: (
                    display.cell_done(status, cell_label(cell)),
                    on_cell_done(cell, status) if on_cell_done else None,
                ),
            )
    progress = progress or None
    from hpo_lstm._files import ensure_writable
    from hpo_lstm.executors import default_workers, make_executor
    from hpo_lstm.store.record import open_storage
    from hpo_lstm.study import prepare_dataset, run_study, study_baselines
    from hpo_lstm.training import resolve_device

    folder = config.folder
    dataset = prepare_dataset(config.base)  # bad data fails here, before anything is written
    # The settings the data decides (season-aware lookback bounds, calendar features), settled
    # once for every cell, so that the manifest, the report and the cells' identities agree.
    config = dataclasses.replace(config, base=config.base.for_data(dataset.point_times, len(dataset.level)))
    cells = config.cells()
    position = {cell.study_name: index for index, cell in enumerate(cells)}
    manifest = config.manifest()
    # (before the old manifest is overwritten)
    _refuse_changed_protocol(folder, manifest, dataset.fingerprint, replace_report=replace_report)
    _refuse_changed_data(folder, dataset)
    device = resolve_device(config.base.device)
    n_workers = min(workers or default_workers(device), config.base.pop_size)
    # All tuned cells share the data, so the worker processes start (or the dataset reaches the
    # cluster) once; a cluster is reached before anything is written, local workers start only
    # if a tuned cell is left to run.
    shared = make_executor(executor, dataset=dataset, device=device, workers=n_workers, scheduler=scheduler)

    # --timeout: one wall-clock limit for the whole comparison. A cell running when it passes
    # ends after its current batch; later cells do not start (run the command again for them),
    # except that the first cell to run always gets its first batch, so the report has a row.
    deadline = time.time() + config.base.timeout if config.base.timeout is not None else None
    ran: list[Cell] = []

    def run_cell(cell: Cell, **where: Any) -> None:
        cell_config = cell.config
        if deadline is not None:
            if ran and time.time() >= deadline:
                if on_cell_done is not None:
                    on_cell_done(cell, "timeout")
                return
            cell_config = cell_config.replace(timeout=max(deadline - time.time(), 1e-3))
        ran.append(cell)
        sink = progress(cell, position[cell.study_name], len(cells)) if progress else None
        run_study(cell_config, progress=sink, baselines=baselines, **where)
        if on_cell_done is not None:
            on_cell_done(cell, "done")

    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(shared) if executor != "local" else None
        ensure_writable(folder)  # the manifest's folder, where the default SQLite storage lies too
        storage = open_storage(config.base.storage_url)
        # The statistical baselines: fitted once per comparison (or found with a cell that stored
        # them), handed to every cell, which stores them with its study.
        season, baselines = study_baselines(config.base, dataset, stored=_stored_baselines(cells, storage))
        write_manifest(
            folder,
            {**manifest, "data": data_facts(dataset, season=season["season"], baselines=baselines, season_info=season)},
        )
        mine = shard_cells(cells, shard)
        pending = [c for c in mine if not _complete(c, storage, dataset.fingerprint)]
        for cell in mine:
            if cell not in pending and on_cell_done is not None:
                on_cell_done(cell, "skipped")
        tuned = [c for c in pending if c.kind == "tuned"]
        if tuned:
            pool = pool or stack.enter_context(shared)
        at_once = cells_at_once(executor, n_workers, len(tuned))
        if at_once > 1:
            _run_at_once(tuned, at_once, lambda cell: run_cell(cell, dataset=dataset, executor=pool), pool)
        else:
            for cell in tuned:
                run_cell(cell, dataset=dataset, executor=pool)
    for cell in (c for c in pending if c.kind == "untuned"):
        # One training each, here: a searched lookback in the base space changes their windows.
        run_cell(cell, workers=1)
    return CompareResult(
        config=config,
        folder=folder,
        cells=tuple(mine),
        ran=tuple(pending),
        skipped=tuple(c for c in mine if c not in pending),
    )


def cells_at_once(executor: str, workers: int, n_cells: int) -> int:
    """How many tuned cells run at once: as many as the local workers (each cell's batches
    queue on the shared pool, so while one cell waits for its batch's last training the other
    workers train another cell's candidates instead of idling). One at a time on Dask (run
    drivers with ``shard`` there) and with one worker. Every cell records the same trials
    either way: each candidate is seeded on its own, with one torch thread, and a cell's
    pruning reads its own earlier batches only."""
    if executor != "local" or workers < 2:
        return 1
    return max(1, min(workers, n_cells))


def _run_at_once(cells: list[Cell], at_once: int, run: Callable[[Cell], None], pool: Any) -> None:
    """Run ``run(cell)`` for every cell, ``at_once`` at a time in threads, in order.

    Ctrl-C (KeyboardInterrupt in this, the main thread) or a cell that fails stops the rest:
    cells not started are not started, the running ones are interrupted through the shared
    pool (each records its finished evaluations and ends like an interrupted study), and the
    first failure, or the interrupt, is raised here once all of them have ended."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    threads = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="hpo-lstm-cell")
    futures: list[Any] = []
    first: list[BaseException] = []  # the failure that stopped the cells (not what stopping them caused)
    try:
        futures.extend(threads.submit(run, cell) for cell in cells)
        pending = set(futures)
        while pending and not first:  # a timeout, so that Ctrl-C reaches this thread promptly everywhere
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
            first = [f.exception() for f in futures if f in finished and f.exception() is not None]
    except BaseException:  # Ctrl-C here: stop every cell, then let the interrupt through
        _stop_cells(futures, pool, threads)
        raise
    _stop_cells(futures, pool, threads)
    if first:
        raise first[0]


def _stop_cells(futures: list[Any], pool: Any, threads: Any) -> None:
    """Cancel cells not started; interrupt those running (unless all have ended); wait for them."""
    for future in futures:
        future.cancel()
    if not all(f.done() for f in futures):
        pool.interrupt()
    threads.shutdown(wait=True)


def _complete(cell: Cell, storage: Any, fingerprint: str) -> bool:
    """Whether a cell's study holds its final result, recorded with its settings on this data
    with the whole budget spent (:meth:`hpo_lstm.store.StudyRecord.matches` and ``is_complete``)."""
    from hpo_lstm.store.record import StudyRecord

    record = StudyRecord.load(storage, cell.study_name, cell.config.storage_url)
    return (
        record is not None
        and record.matches(cell.config, data_fingerprint=fingerprint)
        and record.is_complete(cell.config.budget)
    )


def shard_cells(cells: list[Cell], shard: tuple[int, int] | None) -> list[Cell]:
    """The cells of shard ``(k, n)``: every n-th cell starting at the k-th (k from 1)."""
    if shard is None:
        return list(cells)
    k, n = shard
    return [cell for index, cell in enumerate(cells) if index % n == k - 1]


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``; the rule is ``1 <= k <= n``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"`shard` must look like K/N (e.g. 1/3); got {text!r}.") from None
    if not 1 <= k <= n:
        raise ConfigError(f"`shard` K/N needs 1 <= K <= N; got {text!r}.")
    return k, n


def data_facts(
    dataset: Dataset, *, season: int | None, baselines: Any = None, season_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The test windows' baselines and the split sizes, for the report's rows and header.

    ``baselines`` (:class:`hpo_lstm.baselines.Baselines`): the scored ones join the last-value
    naive forecast under ``baselines``; those not scored (failed, timed out, skipped) are listed
    under ``unscored_baselines`` with their status and reason. Without them, only a seasonal
    naive row of ``season`` is added (as before the statistical baselines)."""
    from hpo_lstm.metrics import forecast_metrics

    test, val = dataset.split("test"), dataset.split("val")
    actual = dataset.actual[test]
    scored: dict[str, Any] = {"naive_last": forecast_metrics(actual, dataset.naive("test"))}
    unscored: dict[str, Any] = {}
    if baselines is not None:
        for name, entry in baselines.entries(actual).items():
            (scored if entry["status"] == "ok" else unscored)[name] = entry
    elif season is not None:
        scored["seasonal_naive"] = {
            **forecast_metrics(actual, dataset.seasonal_naive(season, "test")),
            "season": season,
        }
    return {
        "target": dataset.target,
        "points": len(dataset.level),
        "windows": {s: dataset.n_windows(s) for s in ("train", "val", "test")},
        "transform": dataset.transform,  # the one used: setting "auto" is resolved on the data
        "baselines": scored,
        "unscored_baselines": unscored,
        "season": {k: v for k, v in (season_info or {"season": season}).items()},
        "val_baselines": {"naive_last": forecast_metrics(dataset.actual[val], dataset.naive("val"))},
        "fingerprint": dataset.fingerprint,
    }


def _stored_baselines(cells: list[Cell], storage: Any) -> Any:
    """Baselines a cell of this comparison stored with its study (the first found), or None."""
    from hpo_lstm.baselines import Baselines
    from hpo_lstm.store.record import StudyRecord

    for cell in cells:
        record = StudyRecord.load(storage, cell.study_name, cell.config.storage_url)
        stored = record.baselines if record is not None else None
        found = Baselines.from_record(stored) if stored is not None else None
        if found is not None:
            return found
    return None


def _refuse_changed_data(folder: Path, dataset: Dataset) -> None:
    """Refuse to go on with a comparison whose data changed since its manifest was written (a
    CSV edited in place): its finished cells were trained on the old values."""
    try:
        recorded = json.loads((folder / MANIFEST).read_text())["data"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):  # no manifest yet, or one without a fingerprint
        return
    if recorded != dataset.fingerprint:
        raise ConfigError(
            f"The data of comparison {str(folder)!r} changed since its cells were run (fingerprint {recorded[:12]} "
            f"then, {dataset.fingerprint[:12]} now); give `name` NAME for a comparison on the new data."
        )


# Settings a comparison may change between runs: a larger budget extends its cells; where the
# storage, output folder, device and precision are not part of what the numbers mean; the season and the
# baselines' time limit change the statistical baselines only, which are fitted again.
_MAY_CHANGE = ("budget", "device", "precision", "out", "storage", "season", "baseline_timeout")


def _refuse_changed_protocol(
    folder: Path, manifest: dict[str, Any], fingerprint: str, *, replace_report: bool = False
) -> None:
    """Refuse to reuse a comparison's folder for different data, space or training settings
    (its report would show the old cells under the new protocol header), or, unless
    ``replace_report``, for a set of cells that leaves out some of those it reported. Column
    settings that only spell out what the same data resolved to before are the same comparison
    (:func:`hpo_lstm.store.record.spelled_as_stored`, as for a study)."""
    from hpo_lstm.store.record import spelled_as_stored

    try:
        previous = json.loads((folder / MANIFEST).read_text())
        old = previous["base"]
        recorded = (previous.get("data") or {}).get("fingerprint")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    new = spelled_as_stored(
        {**old, "data_fingerprint": recorded}, {**manifest["base"], "data_fingerprint": fingerprint}
    )
    new.pop("data_fingerprint")
    ignored = set(_MAY_CHANGE) | set(_PER_CELL)  # cells set their own name, model, optimizer, seed
    changed = sorted(k for k in set(old) | set(new) if k not in ignored and old.get(k) != new.get(k))
    if changed:
        details = ", ".join(f"{k}: {setting_text(old.get(k))} -> {setting_text(new.get(k))}" for k in changed)
        raise ConfigError(
            f"Comparison {manifest['name']!r} in {str(folder)!r} was run with other settings ({details}); "
            "give `name` NAME for a new comparison, or the same settings to resume it."
        )
    if replace_report:
        return
    dropped = {
        key: sorted(set(map(str, previous.get(key) or ())) - set(map(str, manifest[key])))
        for key in ("models", "optimizers", "seeds")
    }
    dropped = {key: values for key, values in dropped.items() if values}
    if previous.get("untuned") and not manifest.get("untuned"):
        dropped["untuned rows"] = ["all"]
    if dropped:
        details = "; ".join(f"{key} {', '.join(values)}" for key, values in dropped.items())
        raise ConfigError(
            f"The report in {str(folder)!r} also shows cells this comparison leaves out ({details}); give `name` "
            "NAME for a report of its own, or `replace_report` to rewrite this one for these cells (their studies "
            "stay in the storage)."
        )
