"""Statistical baselines, scored on exactly the test points a study's model is scored on.

Seasonal naive, AutoETS and AutoARIMA (statsforecast) are fitted on the training and
validation rows only, then applied with those fitted parameters, never refitted, from every
test origin: the forecast of step k from origin t sees every observation up to t, as the
network's window does. With horizon 1 the one-step forecasts of all test points come from one
pass of the fitted model over the whole series (statsforecast's ``forward(..., fitted=True)``,
its in-sample one-step predictions). With horizon H > 1:

* AutoETS forecasts from each origin with ``forward(y[:t + 1], h=H)``: the fitted model's
  filter over the data up to t, then its own forecast (milliseconds each).
* AutoARIMA's ``forward`` costs a Kalman filter over the whole prefix per origin (0.6 s for
  the weekly CO2 series with its 52-week season: minutes for its 342 test origins). Its
  H-step forecasts are therefore made from the model's difference equation: the expanded AR
  polynomial phi(B) Phi(B^m) (1 - B)^d (1 - B^m)^D and MA polynomial theta(B) Theta(B^m)
  applied to the one-step innovations of the same pass, future innovations zero. That is the
  Kalman forecast once the filter has settled; it is checked on every run by reproducing the
  library's one-step forecasts of all test points (to 1e-6 of the series' spread; 1e-13 on
  CO2), and per-origin ``forward`` is used instead where it does not. Written by hand because
  statsforecast returns no filtered states for ARIMA.

Each model is fitted in a child process (forkserver, else spawn) under a limit of ``timeout``
seconds of CPU time, counted from when the child has imported statsforecast, so that the
verdict does not depend on what else the machine runs: a fit needs the same CPU time idle or
beside six busy processes, only its wall time grows. A child that uses up its CPU time is
stopped by the kernel (``ITIMER_PROF``) and the baseline is reported as "timeout"; one that
raises as "failed", with the reason. A wall-clock guard of ``WALL_FACTOR`` times the limit
catches a machine so busy that the fit hardly runs (on Windows, which has no such timer, the
limit is wall time). Nothing is dropped: every baseline has an entry. The child
ignores Ctrl-C (the driver, which gets it too, kills the children on its way out) and ends
itself when the driver dies.

The fork server imports :mod:`hpo_lstm._fit_env` before numpy, which pins OpenBLAS's kernels
to Haswell's (AVX2, FMA) on any x86-64 CPU that has them: which kernels OpenBLAS takes decides
which model AutoARIMA chooses when two are close (docs/baselines.md), and the same data must
give the same baselines on an Intel and an AMD CPU.

Choices (docs/baselines.md has the measurements):

* AutoARIMA runs statsforecast's stepwise search with R's rule for the CSS approximation
  (used when the series is longer than 150 points or the season longer than 12), which
  statsforecast's class turns off by default: without it the weekly CO2 fit took 355 s, with
  it 10-19 s on the 2-core machine. Seasons over ``MAX_ARIMA_SEASON`` (52) are fitted
  non-seasonal: the state space grows with the season, and a 168-hour or 336-half-hour
  season's Kalman filter is far beyond any sensible time limit.
* AutoETS takes seasons up to 24 (``MAX_ETS_SEASON``, as R's ``forecast::ets``, which
  statsforecast follows); a longer one is fitted non-seasonal, and the entry says so.
* Seasonal naive is :meth:`Dataset.seasonal_naive` (the value one season before; nothing is
  fitted, so no child process): exactly statsforecast's ``SeasonalNaive``.

Importing this module is cheap: statsforecast is imported in the child processes only.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo_lstm._errors import ConfigError
from hpo_lstm._orphans import SCRIPT_RERUN_EXIT, SCRIPT_RERUN_MESSAGE

if TYPE_CHECKING:
    from hpo_lstm.config import StudyConfig
    from hpo_lstm.data import Dataset

__all__ = [
    "BASELINES",
    "DEFAULT_TIMEOUT",
    "LABELS",
    "BackgroundFit",
    "Baseline",
    "Baselines",
    "StudyBaselines",
    "best_statistical",
    "compute_baselines",
    "statistical_verdict",
]

BASELINES = ("seasonal_naive", "auto_ets", "auto_arima")
LABELS = {
    "naive_last": "naive last value",
    "seasonal_naive": "seasonal naive",
    "auto_ets": "AutoETS",
    "auto_arima": "AutoARIMA",
}
DEFAULT_TIMEOUT = 120.0  # seconds of CPU time per model (CO2's AutoARIMA: 16 s on the 2-core machine)
# The wall-clock guard: a fit is stopped after WALL_FACTOR x its CPU-time limit of wall time.
WALL_FACTOR = 10
MAX_ETS_SEASON = 24
MAX_ARIMA_SEASON = 52
# Bump when the way a baseline is computed changes: baselines stored by an older version are refitted.
# 2: OpenBLAS's kernels pinned (AutoARIMA may choose another model than version 1 did on this CPU).
VERSION = 2
# Seconds a child may take to start and import statsforecast before the time limit starts.
_START_ALLOWANCE = 120.0
# How often a fit in the background looks whether it was cancelled.
_STOP_POLL_SECONDS = 0.1
_STATUSES = ("ok", "failed", "timeout", "skipped")
# Where the kernel can stop a process after some CPU time (Unix: not Windows); elsewhere the limit is wall time.
_CPU_LIMITED = hasattr(signal, "setitimer") and hasattr(signal, "ITIMER_PROF")


@dataclass(frozen=True)
class Baseline:
    """One baseline's outcome: its test forecasts (n_test_windows, horizon) when ``status`` is
    "ok"; otherwise why not ("failed", "timeout", "skipped")."""

    name: str
    status: str
    reason: str | None = None
    model: str | None = None  # the fitted model in words: "ARIMA(2,1,1)(2,1,0)[52]", "ETS(A,Ad,N)"
    season: int | None = None  # the season the model was given (1: non-seasonal)
    fit_seconds: float | None = None
    forecast_seconds: float | None = None
    limit_seconds: float | None = None  # the CPU-time limit it ran under (None: not fitted in a child)
    blas: str | None = None  # the BLAS kernels the fit used ("openblas Haswell"; None: not fitted in a child)
    forecast: np.ndarray | None = field(default=None, repr=False)
    # Forecasts of the validation windows (n_val_windows, horizon) by the same model fitted on the
    # training rows only (never on validation): what a combination's choice on validation may use.
    val_forecast: np.ndarray | None = field(default=None, repr=False)
    # The fitted model (on train + validation) as plain JSON values, enough for statsforecast's
    # ``forward`` to forecast past the data (hpo_lstm.baselines.forecast_from_state).
    state: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    def entry(self, actual: np.ndarray) -> dict[str, Any]:
        """summary.json's entry: test metrics (None unless "ok"), status, reason, model, times."""
        from hpo_lstm.metrics import forecast_metrics

        metrics: dict[str, Any] = {"rmse": None, "mae": None, "mape": None}
        if self.status == "ok" and self.forecast is not None:
            metrics = forecast_metrics(actual, self.forecast)
        return {
            **metrics,
            "status": self.status,
            "reason": self.reason,
            "model": self.model,
            "season": self.season,
            "fit_seconds": None if self.fit_seconds is None else round(self.fit_seconds, 3),
            "limit_seconds": self.limit_seconds,
            "blas": self.blas,
        }


@dataclass(frozen=True)
class Baselines:
    """The statistical baselines of one dataset and season: computed once, stored with the
    study (or the comparison) under ``key`` and reused while the key matches."""

    key: dict[str, Any]
    results: dict[str, Baseline]

    def entries(self, actual: np.ndarray) -> dict[str, dict[str, Any]]:
        return {name: self.results[name].entry(actual) for name in BASELINES if name in self.results}

    def columns(self) -> dict[str, np.ndarray]:
        """The forecasts of each scored baseline, one value per test window and step (window-major,
        as predictions.csv)."""
        return {
            name: result.forecast.ravel()
            for name, result in self.results.items()
            if result.status == "ok" and result.forecast is not None
        }

    def val_forecasts(self) -> dict[str, np.ndarray]:
        """Validation forecasts (n_val_windows, horizon) of each scored baseline that has them,
        from fits on the training rows only."""
        return {
            name: result.val_forecast
            for name, result in self.results.items()
            if result.status == "ok" and result.val_forecast is not None
        }

    def to_record(self) -> dict[str, Any]:
        """Plain JSON values for the storage."""
        return {
            "key": self.key,
            "results": {
                name: {
                    **{
                        k: getattr(r, k)
                        for k in (
                            "status",
                            "reason",
                            "model",
                            "season",
                            "fit_seconds",
                            "forecast_seconds",
                            "limit_seconds",
                            "blas",
                            "state",
                        )
                    },
                    "forecast": None if r.forecast is None else r.forecast.tolist(),
                    "val_forecast": None if r.val_forecast is None else r.val_forecast.tolist(),
                }
                for name, r in self.results.items()
            },
        }

    @classmethod
    def from_record(cls, record: Any) -> Baselines | None:
        """Read back what :meth:`to_record` wrote; None for anything else (then they are refitted)."""
        try:
            results = {}
            for name, r in record["results"].items():
                if name not in BASELINES or r["status"] not in _STATUSES:
                    return None
                forecast = None if r.get("forecast") is None else np.asarray(r["forecast"], dtype=float)
                val_forecast = None if r.get("val_forecast") is None else np.asarray(r["val_forecast"], dtype=float)
                results[name] = Baseline(
                    name=name,
                    status=r["status"],
                    reason=r.get("reason"),
                    model=r.get("model"),
                    season=r.get("season"),
                    fit_seconds=r.get("fit_seconds"),
                    forecast_seconds=r.get("forecast_seconds"),
                    limit_seconds=r.get("limit_seconds"),
                    blas=r.get("blas"),
                    forecast=forecast,
                    val_forecast=val_forecast,
                    state=r.get("state"),
                )
            return cls(key=dict(record["key"]), results=results)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def baselines_key(dataset: Dataset, season: int | None) -> dict[str, Any]:
    """What the baselines depend on: the data, the rows they are fitted on, the test windows
    and the season (not the network's settings)."""
    test, val = dataset.split("test"), dataset.split("val")
    return {
        "version": VERSION,
        "fingerprint": dataset.fingerprint,
        "target": dataset.target,
        "train_rows": int(dataset.rows["val"][0]),
        "val_origins": [int(dataset.origins[val][0]), int(dataset.origins[val][-1]), int(dataset.n_windows("val"))],
        "fit_rows": int(dataset.rows["test"][0]),
        "horizon": int(dataset.horizon),
        "test_origins": [int(dataset.origins[test][0]), int(dataset.origins[test][-1]), int(dataset.n_windows("test"))],
        "season": season,
    }


def compute_baselines(
    dataset: Dataset,
    *,
    season: int | None,
    timeout: float = DEFAULT_TIMEOUT,
    stored: Baselines | None = None,
    stop: threading.Event | None = None,
) -> Baselines:
    """Seasonal naive, AutoETS and AutoARIMA on ``dataset``'s test windows (see the module doc).

    ``stored`` baselines of the same key are reused, except one that ran out of a shorter time
    limit than ``timeout`` (it gets the new limit). AutoETS and AutoARIMA are fitted at the
    same time, each in its own child process, each under ``timeout`` seconds. Setting ``stop``
    (from another thread) kills the fits and raises :class:`FitCancelled`.
    """
    key = baselines_key(dataset, season)
    reused: dict[str, Baseline] = {}
    if stored is not None and stored.key == key:
        reused = {
            name: r
            for name, r in stored.results.items()
            if not (r.status == "timeout" and (r.limit_seconds or 0.0) < timeout)
        }
    results: dict[str, Baseline] = dict(reused)
    if "seasonal_naive" not in results:
        results["seasonal_naive"] = _seasonal_naive(dataset, season)
    todo = [name for name in ("auto_ets", "auto_arima") if name not in results]
    if todo:
        results.update(_fit_in_children(dataset, todo, season=season, timeout=timeout, stop=stop))
    return Baselines(key=key, results={name: results[name] for name in BASELINES})


class FitCancelled(Exception):
    """The fits were stopped (:class:`BackgroundFit` cancelled) before they ended."""


class BackgroundFit:
    """:func:`compute_baselines` in a thread of its own, started at once, so that the fits
    overlap other work (``run_study`` starts one with its search's last batch, whose end leaves
    cores idle). The fits run in child processes (of the fork server, or under spawn of this
    process), which end with the driver whichever thread started them.

    ``result()`` waits for the baselines; ``cancel()`` kills the fits still running and waits
    for the thread (a no-op once it has ended; at most ``CANCEL_WAIT`` seconds, should the fork
    server still be importing). Interrupted while waiting, ``result()`` cancels.
    """

    CANCEL_WAIT = 10.0

    def __init__(self, dataset: Dataset, *, season: int | None, timeout: float, stored: Baselines | None) -> None:
        self._stop = threading.Event()
        self._outcome: tuple[Baselines | None, BaseException | None] = (None, None)
        kwargs = {"season": season, "timeout": timeout, "stored": stored, "stop": self._stop}
        self._thread = threading.Thread(
            target=self._run, args=(dataset, kwargs), name="hpo-lstm baselines", daemon=True
        )
        self._thread.start()

    def _run(self, dataset: Dataset, kwargs: dict[str, Any]) -> None:
        try:
            self._outcome = (compute_baselines(dataset, **kwargs), None)
        except BaseException as exc:  # handed to the thread that asks for the result
            self._outcome = (None, exc)

    def result(self) -> Baselines:
        try:
            self._thread.join()
        except BaseException:  # Ctrl-C while waiting: the fits must not outlive the run
            self.cancel()
            raise
        baselines, error = self._outcome
        if error is not None:
            raise error
        assert baselines is not None
        return baselines

    def cancel(self) -> None:
        self._stop.set()
        self._thread.join(self.CANCEL_WAIT)

    def running(self) -> bool:
        """Whether the fits are still going."""
        return self._thread.is_alive()


class StudyBaselines:
    """A study's season (:func:`hpo_lstm.data.resolve_season`) and its statistical baselines:
    ``stored`` ones, or those ``recorder``'s study holds, are reused while they belong to this
    data and season; others are fitted (under ``config.baseline_timeout`` seconds each, in a
    :class:`BackgroundFit` from ``start()`` on) and ``result()`` stores them with the study.

    ``run_study`` hands ``start`` to its evaluator, which calls it when the search's last batch
    begins, so that the fits take the cores that batch's end leaves idle; ``cancel()`` stops
    fits that were started (a no-op otherwise)."""

    def __init__(self, config: StudyConfig, dataset: Dataset, *, stored: Any = None, recorder: Any = None) -> None:
        from hpo_lstm.data import resolve_season

        self.recorder = recorder  # hpo_lstm.store.Recorder of the study, or None
        self.dataset = dataset
        self.timeout = config.baseline_timeout
        self.season = resolve_season(config.season, dataset.point_times, time_column=dataset.time_column)
        self.record = recorder.stored_baselines() if recorder is not None else None
        if stored is None and self.record is not None:
            stored = Baselines.from_record(self.record)
        self.stored = stored
        self.fit: BackgroundFit | None = None

    def start(self) -> None:
        """Start the fits (once; later calls do nothing)."""
        if self.fit is None:
            self.fit = BackgroundFit(
                self.dataset, season=self.season["season"], timeout=self.timeout, stored=self.stored
            )

    def running(self) -> bool:
        return self.fit is not None and self.fit.running()

    def cancel(self) -> None:
        if self.fit is not None:
            self.fit.cancel()

    def result(self) -> tuple[dict[str, Any], Baselines]:
        """The season and the baselines (started here if not yet), stored with the study when new."""
        import json

        from hpo_lstm._json import dumps

        self.start()
        baselines = self.fit.result()  # (CPU-time limits: beside the search as alone)
        new_record = json.loads(dumps(baselines.to_record()))
        if self.recorder is not None and self.record != new_record:
            self.recorder.record_baselines(new_record)
        return self.season, baselines


def best_statistical(entries: Mapping[str, Mapping[str, Any]]) -> tuple[str, float] | None:
    """The scored statistical baseline (not the last-value naive) with the lowest test RMSE."""
    scored = [
        (name, float(e["rmse"]))
        for name, e in entries.items()
        if name in BASELINES and e.get("rmse") is not None and math.isfinite(float(e["rmse"]))
    ]
    return min(scored, key=lambda item: item[1]) if scored else None


def statistical_verdict(test_rmse: float, entries: Mapping[str, Mapping[str, Any]], *, model: str) -> str:
    """One sentence: ``model`` (e.g. "tuned lstm") against the best scored statistical baseline,
    naming the baselines that were not scored and why ("timeout", "failed", "skipped")."""
    unscored = [
        f"{LABELS[name]} ({entries[name].get('status')})"
        for name in BASELINES
        if name in entries and entries[name].get("status") != "ok"
    ]
    tail = (
        f" Compared without {_and(unscored)}, which {'was' if len(unscored) == 1 else 'were'} not scored."
        if unscored
        else ""
    )
    best = best_statistical(entries)
    if best is None:
        return f"No statistical baseline was scored, so the {model} is judged against the naive forecast only.{tail}"
    name, rmse = best
    fitted = entries[name].get("model")
    label = f"{LABELS[name]}" + (f" [{fitted.split(' (')[0]}]" if fitted and name != "seasonal_naive" else "")
    relative = test_rmse / rmse - 1.0
    if relative < 0:
        text = (
            f"The {model} beats the best statistical baseline, {label}, by {-relative:.1%} on test RMSE "
            f"({test_rmse:.4g} vs {rmse:.4g})."
        )
    else:
        text = (
            f"The {model} is {relative:.1%} worse than {label} on test RMSE ({test_rmse:.4g} vs {rmse:.4g}): "
            "the statistical model serves better here."
        )
    return text + tail


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# Seasonal naive ----------------------------------------------------------------------------------


def _seasonal_naive(dataset: Dataset, season: int | None) -> Baseline:
    if season is None:
        return Baseline(
            "seasonal_naive",
            "skipped",
            reason="no season: the data has no time column to infer one "
            "from (or its steps have no calendar season); set one with --season N (study file: season = N)",
        )
    try:
        forecast = dataset.seasonal_naive(season, "test")
    except ValueError as exc:  # the season reaches before the first row
        return Baseline("seasonal_naive", "failed", reason=str(exc), season=season)
    try:
        val_forecast = dataset.seasonal_naive(season, "val")
    except ValueError:  # the season reaches before the first row from a validation window
        val_forecast = None
    return Baseline(
        "seasonal_naive",
        "ok",
        model=f"value {season} steps before (same point of the last season)",
        season=season,
        fit_seconds=0.0,
        forecast=forecast,
        val_forecast=val_forecast,
        state={"kind": "seasonal_naive", "season": int(season)},
    )


# Child processes ---------------------------------------------------------------------------------


def _fit_in_children(
    dataset: Dataset, names: list[str], *, season: int | None, timeout: float, stop: threading.Event | None = None
) -> dict[str, Baseline]:
    """Fit each of ``names`` in a child process of its own, all at once; kill any still running
    at its time limit, when this thread is interrupted (the main thread: Ctrl-C), or when
    ``stop`` is set (by another thread)."""
    from multiprocessing.connection import wait

    ctx = _context()
    test, val = dataset.split("test"), dataset.split("val")
    task = {
        "y": np.ascontiguousarray(dataset.level, dtype=float),
        "n_fit": int(dataset.rows["test"][0]),
        "origins": np.ascontiguousarray(dataset.origins[test]),
        "n_train": int(dataset.rows["val"][0]),
        "val_origins": np.ascontiguousarray(dataset.origins[val]),
        "horizon": int(dataset.horizon),
        "season": season,
        # PR_SET_PDEATHSIG follows the thread that forked: a fork server's, or this main thread.
        "kernel_signal": ctx.get_start_method() == "forkserver"
        or threading.current_thread() is threading.main_thread(),
        "cpu_limit": timeout,
    }
    children: dict[str, Any] = {}
    outcomes: dict[str, Baseline] = {}
    try:
        for name in names:
            if stop is not None and stop.is_set():  # (a first start waits for the fork server's imports)
                raise FitCancelled
            reader, writer = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_child_main, args=(writer, name, task), name=f"hpo-lstm {name}", daemon=True)
            process.start()
            writer.close()  # the child holds the only writing end: its death closes the pipe
            children[name] = {
                "process": process,
                "reader": reader,
                "started": time.monotonic(),
                "ready": None,
                "wall_limit": timeout * (WALL_FACTOR if _CPU_LIMITED else 1),
            }
        while len(outcomes) < len(names):
            if stop is not None and stop.is_set():
                raise FitCancelled
            now = time.monotonic()
            waiting = {name: c for name, c in children.items() if name not in outcomes}
            deadlines = {
                name: (c["ready"] + c["wall_limit"] if c["ready"] is not None else c["started"] + _START_ALLOWANCE)
                for name, c in waiting.items()
            }
            until = min(deadlines.values()) - now
            if stop is not None:
                until = min(until, _STOP_POLL_SECONDS)
            wait([c["reader"] for c in waiting.values()], timeout=max(0.0, until))
            for name, child in waiting.items():
                outcome = _poll(name, child, timeout)
                if outcome is None and time.monotonic() >= deadlines[name]:
                    outcome = _past_limit(name, child, timeout, season)
                if outcome is not None:
                    outcomes[name] = outcome
    finally:
        for child in children.values():
            process = child["process"]
            if process.is_alive():
                process.kill()
            process.join()
            child["reader"].close()
    return outcomes


def _context() -> Any:
    """forkserver where the platform has it, else spawn (both safe with threads and OpenMP).

    The fork server imports statsforecast once and forks each child from there, so a child
    starts in milliseconds instead of importing it again (1-10 s), which every study of a test
    run or a comparison would pay."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # hpo_lstm._fit_env first: it pins OpenBLAS's kernels before numpy loads (module doc).
        ctx.set_forkserver_preload(
            ["hpo_lstm._fit_env", "hpo_lstm.baselines", "statsforecast.models"]
        )  # no effect once it runs
        return ctx
    return multiprocessing.get_context("spawn")


def _poll(name: str, child: dict[str, Any], timeout: float) -> Baseline | None:
    """Read what the child said so far; a Baseline once it has finished (or died)."""
    reader = child["reader"]
    while reader.poll():
        try:
            kind, payload = reader.recv()
        except (EOFError, OSError):  # it died without a word
            child["process"].join(5)
            code = child["process"].exitcode
            if code == SCRIPT_RERUN_EXIT:
                raise ConfigError(SCRIPT_RERUN_MESSAGE) from None
            if _CPU_LIMITED and child["ready"] is not None and code == -signal.SIGPROF:
                return Baseline(
                    name,
                    "timeout",
                    reason=f"not fitted and forecast within its limit of {timeout:g} s of CPU "
                    "time (--baseline-timeout, study file: baseline_timeout); it was stopped",
                    limit_seconds=timeout,
                )
            return Baseline(
                name,
                "failed",
                reason=f"the process fitting it ended with exit code {code} and no result",
                limit_seconds=timeout,
            )
        if kind == "ready":
            child["ready"] = time.monotonic()
        elif kind == "ok":
            return Baseline(name, "ok", limit_seconds=timeout, **payload)
        else:
            return Baseline(name, "failed", reason=str(payload), limit_seconds=timeout)
    return None


def _past_limit(name: str, child: dict[str, Any], timeout: float, season: int | None) -> Baseline:
    child["process"].kill()
    if child["ready"] is None:
        return Baseline(
            name, "failed", reason=f"its process did not start within {_START_ALLOWANCE:g} s", limit_seconds=timeout
        )
    if _CPU_LIMITED:
        wall = child["wall_limit"]
        reason = (
            f"not fitted and forecast within {wall:g} s of wall time ({WALL_FACTOR} x its limit of {timeout:g} s "
            "of CPU time): the machine was too busy to give it the CPU time; it was stopped"
        )
    else:
        reason = (
            f"not fitted and forecast within the time limit of {timeout:g} s (--baseline-timeout, study file: "
            "baseline_timeout); it was stopped"
        )
    return Baseline(name, "timeout", reason=reason, season=_model_season(name, season), limit_seconds=timeout)


def _child_main(writer: Any, name: str, task: dict[str, Any]) -> None:
    """A child process: fit one model, send ("ok", fields) or ("failed", reason)."""
    import os
    import signal
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and kills this process

    from hpo_lstm._orphans import exit_with_parent

    # The parent is the driver's fork server (its only thread forked us; it ends with the
    # driver) or, with spawn, the driver itself (the kernel signal only when the driver started
    # us from its main thread). Killed with it, not left to finish a fit nobody reads.
    exit_with_parent(os.getppid(), kernel_signal=task["kernel_signal"])
    # A fork server lives until every process holding the write end of its "alive" pipe has
    # gone, and it hands each child a copy: a fit kept it alive after the driver's kill -9, and
    # so itself (it watches the fork server), until the fit ended. Without the copy, the fork
    # server ends with the driver, and the kernel ends this process with it.
    _drop_fork_server_alive_fd()
    warnings.simplefilter("ignore")  # statsforecast's convergence warnings: the result is judged on test
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # one core per model: two models fit side by side
        import statsforecast.models  # noqa: F401  (the import is not part of the time limit)
    except BaseException as exc:  # noqa: BLE001  (reported, not raised: the child must answer)
        writer.send(("failed", f"statsforecast cannot be imported: {type(exc).__name__}: {exc}"))
        return
    _limit_cpu_time(task["cpu_limit"])
    writer.send(("ready", None))
    try:
        fields = {**_FITS[name](task), "blas": _blas_in_use()}
    except BaseException as exc:  # noqa: BLE001
        from hpo_lstm._errors import first_line

        writer.send(("failed", f"{type(exc).__name__}: {first_line(exc)}"))
        return
    writer.send(("ok", fields))


def _drop_fork_server_alive_fd() -> None:
    """Close this process's copy of its fork server's "alive" pipe (a forkserver child only)."""
    import os
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is None or server._forkserver_pid is not None:  # (the driver, or spawn: not a forkserver child)
        return
    try:
        os.close(fd)
    except OSError:
        pass
    server._forkserver_alive_fd = None


def _blas_in_use() -> str | None:
    """The BLAS library and kernels numpy uses in this process ("openblas Haswell"), as
    threadpoolctl reports them; None when it cannot tell."""
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("user_api") == "blas":
            return " ".join(str(v) for v in (info.get("internal_api"), info.get("architecture")) if v) or None
    return None


def _limit_cpu_time(seconds: float) -> None:
    """From now on, this process may use ``seconds`` more of CPU time: then the kernel ends it
    with SIGPROF (``ITIMER_PROF`` counts the process's CPU time; nothing here handles SIGPROF,
    so its default action, termination, applies)."""
    if _CPU_LIMITED:
        signal.setitimer(signal.ITIMER_PROF, seconds)


def _model_season(name: str, season: int | None) -> int:
    limit = MAX_ETS_SEASON if name == "auto_ets" else MAX_ARIMA_SEASON
    return season if season is not None and 1 < season <= limit else 1


def _season_note(name: str, season: int | None) -> str:
    limit = MAX_ETS_SEASON if name == "auto_ets" else MAX_ARIMA_SEASON
    if season is not None and season > limit:
        return f" (non-seasonal: season {season} is over the {limit} this model is fitted with)"
    return ""


def _fit_ets(task: dict[str, Any]) -> dict[str, Any]:
    from statsforecast.models import AutoETS

    season = _model_season("auto_ets", task["season"])
    started = time.perf_counter()
    model = AutoETS(season_length=season).fit(task["y"][: task["n_fit"]])
    fitted_at = time.perf_counter()
    forecast = _ets_forecasts(model, task["y"], task["origins"], task["horizon"])
    # The same search on the training rows alone, for forecasts of the validation windows.
    on_train = AutoETS(season_length=season).fit(task["y"][: task["n_train"]])
    val_forecast = _ets_forecasts(on_train, task["y"][: task["n_fit"]], task["val_origins"], task["horizon"])
    errortype, trend, seasontype, damped = model.model_["components"][:4]
    description = f"ETS({errortype},{trend}{'d' if damped == 'D' else ''},{seasontype})"
    return {
        "forecast": _finite(forecast),
        "val_forecast": _finite(val_forecast),
        "state": ets_state(model.model_),
        "model": description + _season_note("auto_ets", task["season"]),
        "season": season,
        "fit_seconds": fitted_at - started,
        "forecast_seconds": time.perf_counter() - fitted_at,
    }


def _ets_forecasts(model: Any, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(n_origins, horizon) forecasts of a fitted AutoETS from each origin row of ``y``."""
    if horizon == 1:
        return model.forward(y=y, h=1, fitted=True)["fitted"][origins + 1][:, None]
    return np.stack([model.forward(y=y[: t + 1], h=horizon)["mean"] for t in origins])


def _fit_arima(task: dict[str, Any]) -> dict[str, Any]:
    from statsforecast.arima import arima_string
    from statsforecast.models import AutoARIMA

    season = _model_season("auto_arima", task["season"])
    started = time.perf_counter()
    model = AutoARIMA(season_length=season, approximation=None).fit(task["y"][: task["n_fit"]])  # None: R's rule
    fitted_at = time.perf_counter()
    forecast = _arima_forecasts(model, task["y"], task["origins"], task["horizon"], task["n_fit"])
    on_train = AutoARIMA(season_length=season, approximation=None).fit(task["y"][: task["n_train"]])
    val_forecast = _arima_forecasts(
        on_train, task["y"][: task["n_fit"]], task["val_origins"], task["horizon"], task["n_train"]
    )
    description = arima_string(model.model_).strip()
    return {
        "forecast": _finite(forecast),
        "val_forecast": _finite(val_forecast),
        "state": arima_state(model.model_),
        "model": description + _season_note("auto_arima", task["season"]),
        "season": season,
        "fit_seconds": fitted_at - started,
        "forecast_seconds": time.perf_counter() - fitted_at,
    }


def _arima_forecasts(model: Any, y: np.ndarray, origins: np.ndarray, horizon: int, n_fit: int) -> np.ndarray:
    """(n_origins, horizon) forecasts of a fitted AutoARIMA from each origin row of ``y``: from
    its difference equation (module doc), or per-origin ``forward`` where that does not
    reproduce the library's one-step forecasts."""
    one_step = model.forward(y=y, h=1, fitted=True)["fitted"]
    if horizon == 1:
        return one_step[origins + 1][:, None]
    forecast = arima_paths(model.model_, y, one_step, origins, horizon)
    spread = float(np.std(y[:n_fit])) or 1.0
    # The filter settles with time: every origin up to the last one whose first step is off gets
    # the library's forward, the later ones keep the difference equation. So a window's forecast
    # does not depend on which earlier windows are asked for too (a saved model's predict() over
    # the whole series gives the study's test forecasts).
    off = np.flatnonzero(~(np.abs(forecast[:, 0] - one_step[origins + 1]) <= 1e-6 * spread))
    for i in range(off[-1] + 1 if len(off) else 0):
        forecast[i] = model.forward(y=y[: origins[i] + 1], h=horizon)["mean"]
    return forecast


# A fitted model as plain JSON values: the fields statsforecast's forward reads (checked in
# tests/test_ensemble.py: a model rebuilt from them forecasts bit for bit as the fitted one).
_ARIMA_STATE = ("coef", "sigma2", "arma", "xreg", "lambda")
_ETS_STATE = ("components", "m", "par", "n_params")


def _plain(value: Any) -> Any:
    """Plain JSON values: arrays as lists, NaN (an ETS parameter the model does not use) as null."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def arima_state(model: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "auto_arima", **{k: _plain(model.get(k)) for k in _ARIMA_STATE}}


def ets_state(model: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "auto_ets", **{k: _plain(model.get(k)) for k in _ETS_STATE}}


def model_from_state(state: Mapping[str, Any]) -> Any:
    """A statsforecast AutoARIMA or AutoETS holding the fitted model a baseline's ``state``
    describes, ready for ``forward`` (not refitted)."""
    kind = state.get("kind")
    if kind == "auto_arima":
        from statsforecast.models import AutoARIMA

        model = AutoARIMA()
        arma = [int(v) for v in state["arma"]]
        # A model with drift holds its drift column as a regressor; statsforecast's forward
        # extends it to new data from that column and the length of the fitted series (the
        # only thing it reads of "x").
        xreg = None if state.get("xreg") is None else np.asarray(state["xreg"], dtype=float)
        model.model_ = {
            "coef": _arima_coef_order(state["coef"], arma),
            "sigma2": float(state["sigma2"]),
            "arma": arma,
            "xreg": xreg,
            "x": np.zeros(0 if xreg is None else len(xreg)),
            "lambda": None,
        }
        return model
    if kind == "auto_ets":
        from statsforecast.models import AutoETS

        model = AutoETS()
        model.model_ = {
            "components": str(state["components"]),
            "m": int(state["m"]),
            "par": np.asarray([np.nan if v is None else v for v in state["par"]], dtype=float),
            "n_params": int(state["n_params"]),
            "fit": None,
        }
        return model
    raise ValueError(f"unknown statistical model {kind!r}")


def _arima_coef_order(coef: Mapping[str, Any], arma: Sequence[int]) -> dict[str, float]:
    """``coef`` in the order statsforecast fitted it: ar1.., ma1.., sar1.., sma1.., intercept,
    drift, then any other. Its ``forward`` reads the values by position, and a card stored as
    JSON with sorted keys holds them alphabetically (intercept before ma1, drift before ma1)."""
    p, q, P, Q = (int(v) for v in arma[:4])
    names = [
        *(f"ar{i}" for i in range(1, p + 1)),
        *(f"ma{i}" for i in range(1, q + 1)),
        *(f"sar{i}" for i in range(1, P + 1)),
        *(f"sma{i}" for i in range(1, Q + 1)),
        "intercept",
        "drift",
    ]
    ordered = [name for name in names if name in coef] + [name for name in coef if name not in names]
    return {name: coef[name] for name in ordered}


def state_min_rows(state: Mapping[str, Any], *, one_pass: bool = False) -> int:
    """Values of the target a statistical member must read, up to and including the row it
    forecasts from: seasonal naive one season; AutoETS 2; AutoARIMA more than its differencing
    (d + D x season) when it filters those values alone (statsforecast refuses fewer), as it does
    in :func:`forecast_from_state` and from each origin of :func:`forecasts_from_state` with
    horizon > 1, but 1 with ``one_pass``: the one-step forecasts of one pass over the whole
    series (:func:`forecasts_from_state` with horizon 1)."""
    kind = state.get("kind")
    if kind == "seasonal_naive":
        return int(state["season"])
    if kind == "auto_arima" and not one_pass:
        arma = [int(v) for v in state["arma"]]
        return arma[5] + arma[6] * arma[4] + 1
    return 2 if kind == "auto_ets" else 1


def forecast_from_state(state: Mapping[str, Any], y: np.ndarray, steps: int) -> np.ndarray:
    """Forecasts of steps 1..``steps`` past the end of ``y`` by the model a baseline's ``state``
    describes (fitted in the study, not refitted): statsforecast's ``forward``, which filters
    ``y`` from its first row with the fitted parameters; seasonal naive repeats the last season."""
    y = np.asarray(y, dtype=float)
    if state.get("kind") == "seasonal_naive":
        season = int(state["season"])
        k = np.arange(1, steps + 1)
        return y[len(y) - season + (k - 1) % season]
    return np.asarray(model_from_state(state).forward(y=y, h=int(steps))["mean"], dtype=float)


def forecasts_from_state(state: Mapping[str, Any], y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(n_origins, horizon) forecasts from each origin row of ``y`` by the model ``state``
    describes, computed as the study computed the test forecasts."""
    y = np.asarray(y, dtype=float)
    origins = np.asarray(origins)
    if state.get("kind") == "seasonal_naive":
        season = int(state["season"])
        k = np.arange(1, horizon + 1)
        return y[origins[:, None] + k[None, :] - season * np.ceil(k / season).astype(int)[None, :]]
    model = model_from_state(state)
    if state["kind"] == "auto_ets":
        return _ets_forecasts(model, y, origins, horizon)
    return _arima_forecasts(model, y, origins, horizon, len(y))


_FITS = {"auto_ets": _fit_ets, "auto_arima": _fit_arima}


def _finite(forecast: np.ndarray) -> np.ndarray:
    forecast = np.asarray(forecast, dtype=float)
    if not np.all(np.isfinite(forecast)):
        raise ValueError(f"the fitted model forecast {int(np.sum(~np.isfinite(forecast)))} non-finite value(s)")
    return forecast


def arima_paths(
    model: Mapping[str, Any], y: np.ndarray, one_step: np.ndarray, origins: np.ndarray, horizon: int
) -> np.ndarray:
    """H-step forecasts (n_origins, horizon) of a fitted statsforecast ARIMA ``model`` from each
    origin row, by its difference equation (see the module doc).

    ``one_step`` holds the model's one-step forecasts of every row of ``y`` (``forward(y, h=1,
    fitted=True)["fitted"]``); their errors are the innovations. Regression terms (intercept,
    drift) are taken off first and added back at the forecast rows.
    """
    coef = dict(model["coef"])
    p, q, P, Q, m, d, D = (int(v) for v in model["arma"][:7])
    ar = [coef.get(f"ar{i}", 0.0) for i in range(1, p + 1)]
    ma = [coef.get(f"ma{i}", 0.0) for i in range(1, q + 1)]
    ar_poly = np.convolve(
        np.r_[1.0, -np.asarray(ar, dtype=float)], _seasonal(m, [-coef[f"sar{j}"] for j in range(1, P + 1)])
    )
    ma_poly = np.convolve(
        np.r_[1.0, np.asarray(ma, dtype=float)], _seasonal(m, [coef[f"sma{j}"] for j in range(1, Q + 1)])
    )
    for _ in range(d):
        ar_poly = np.convolve(ar_poly, [1.0, -1.0])
    for _ in range(D):
        ar_poly = np.convolve(ar_poly, _seasonal(m, [-1.0]))
    a, b = -ar_poly[1:], ma_poly[1:]  # x_t = sum a_i x_{t-i} + e_t + sum b_j e_{t-j}
    n = len(y)
    regression = np.full(n, float(coef.get("intercept", 0.0))) + float(coef.get("drift", 0.0)) * np.arange(1, n + 1)
    x = np.asarray(y, dtype=float) - regression
    innovations = np.asarray(y, dtype=float) - np.asarray(one_step, dtype=float)
    origins = np.asarray(origins)
    paths = np.zeros((len(origins), horizon))
    for k in range(1, horizon + 1):
        total = np.zeros(len(origins))
        for i in np.flatnonzero(a) + 1:
            total += a[i - 1] * (x[origins + k - i] if i >= k else paths[:, k - i - 1])
        for j in np.flatnonzero(b) + 1:
            if j >= k:
                total += b[j - 1] * innovations[origins + k - j]
        paths[:, k - 1] = total
    return paths + regression[origins[:, None] + np.arange(1, horizon + 1)[None, :]]


def _seasonal(m: int, coefficients: list[float]) -> np.ndarray:
    """1 + c_1 B^m + c_2 B^2m + ... as polynomial coefficients in B."""
    poly = np.zeros(len(coefficients) * m + 1)
    poly[0] = 1.0
    for j, c in enumerate(coefficients, start=1):
        poly[j * m] = c
    return poly
