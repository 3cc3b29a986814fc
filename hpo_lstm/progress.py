"""Progress of studies and comparisons, on stderr.

A study tells its display three things (:class:`hpo_lstm.evaluation.ProgressSink`): a batch
starts training, an evaluation is in (each training as it ends, replays and memo hits at
once), and the final model is being made. :class:`StudyState` turns that into numbers (done,
best so far, counts by kind, trainings in flight, elapsed, ETA); two displays show them:

* on a terminal, one rich bar per study (and one for a comparison's cells), at most 80
  columns wide, redrawn in place;
* when stderr is a file or a pipe (``nohup hpo-lstm compare ... 2> log``), plain lines: one
  per finished training, one when a study ends, one per finished comparison cell, the final
  model's start and end, and, from a timer, one every ``LINE_EVERY`` seconds in which nothing
  else was printed, so a log never stays silent while long trainings run.

The ETA counts evaluations made in this run only (replays of an earlier run take no time),
from the moment the first batch started training; it is "-" until a first training has ended.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "StudyState"]


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class StudyState:
    """The numbers of one study's progress, fed by its :class:`ProgressSink` calls."""

    KINDS = ("trained", "pruned", "failed", "duplicate", "replayed")

    def __init__(self, label: str, total: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self._clock = label, total, clock
        self.counts = dict.fromkeys(self.KINDS, 0)
        self.best = float("inf")
        self.in_flight = 0
        self.final = ""  # "", "running" or "done"
        self.stage = ""  # what the final step does or waits for, in words
        self.started = clock()
        self._work_started: float | None = None  # when this run's first batch started training
        self._work_done = 0  # evaluations since then (replays excluded)

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def batch(self, trainings: int) -> None:
        self.in_flight = trainings
        if trainings and self._work_started is None:
            self._work_started = self._clock()

    def evaluated(self, *, value: float, kind: str) -> None:
        self.counts[kind] += 1
        if kind in ("trained", "pruned", "failed"):
            self.in_flight = max(0, self.in_flight - 1)
        if kind != "replayed" and self._work_started is not None:
            self._work_done += 1
        if value == value and value < self.best:  # NaN never improves
            self.best = value

    def eta(self) -> float | None:
        """Seconds left at this run's pace so far (None before a first training has ended)."""
        if self.done >= self.total:
            return 0.0
        if self._work_started is None or not (self.counts["trained"] + self.counts["pruned"] + self.counts["failed"]):
            return None
        per_evaluation = (self._clock() - self._work_started) / max(1, self._work_done)
        return per_evaluation * (self.total - self.done)

    def elapsed(self) -> float:
        return self._clock() - self.started

    def best_text(self) -> str:
        return f"best {self.best:.4g}" if self.best != float("inf") else "best -"

    def counts_text(self, sep: str = " ") -> str:
        """ "18 trained (6 pruned) 6 memo ...": *trained* counts every training that ran, the
        pruned ones among them, as summary.json's ``n_trained`` and the convergence plot do."""
        c = self.counts
        parts = [f"{c['trained'] + c['pruned']} trained" + (f" ({c['pruned']} pruned)" if c["pruned"] else "")]
        parts += [
            f"{c[k]} {name}"
            for k, name in (("duplicate", "memo"), ("failed", "failed"), ("replayed", "resumed"))
            if c[k]
        ]
        return sep.join(parts)

    def eta_text(self) -> str:
        eta = self.eta()
        return "eta -" if eta is None else f"eta {_clock_text(eta)}"

    def line(self) -> str:
        """The whole state as one log line (80 columns for a short label)."""
        text = f"{self.label}: {self.done}/{self.total}, {self.best_text()}, {self.counts_text(', ')}"
        if self.final == "running":
            return f"{text}, {self.stage or 'final forecast'}, {_clock_text(self.elapsed())}"
        if self.in_flight and self.done < self.total:
            text += f", {self.in_flight} running"
        return f"{text}, {_clock_text(self.elapsed())}, {self.eta_text()}"


class Progress:
    """Progress on stderr for a ``run`` (one study) or a ``compare`` (cells, then a study each).

    ``with Progress(enabled=True) as progress: sink = progress.study(label, budget)``; the sink
    goes to :func:`hpo_lstm.run_study`. Disabled, every sink is None and nothing is printed.
    """

    LINE_EVERY = 30.0  # seconds of silence after which the log gets a line anyway

    def __init__(self, *, enabled: bool) -> None:
        self._rich: Any = None
        self._lines = False
        self._cells_task: Any = None
        # The studies being run: one, or a comparison's cells in flight at once (their bars,
        # on a terminal, are removed when the cell ends).
        self._states: dict[str, StudyState] = {}
        self._tasks: dict[str, Any] = {}
        self._cells_total = self._cells_done = self._skipped = self._not_started = 0
        self._lock = threading.Lock()
        self._last_line = time.monotonic()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if not enabled:
            return
        # The stream itself decides, not rich's is_terminal, which FORCE_COLOR (set by many CI
        # systems) turns on: live bars redrawn with escape codes make an unreadable log.
        if not getattr(sys.stderr, "isatty", lambda: False)():
            self._lines = True
            return
        self._rich = _rich_progress()

    def __enter__(self) -> Progress:
        if self._rich is not None:
            self._rich.start()
        elif self._lines:
            self._timer = threading.Thread(target=self._tick_forever, name="hpo-lstm-progress", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)
        if self._rich is not None:
            self._rich.stop()

    # A comparison's cells ---------------------------------------------------------------------

    def cells(self, total: int, label: str) -> None:
        """Show a bar of a comparison's cells."""
        self._cells_total = total
        if self._rich is not None:
            self._cells_task = self._rich.add_task(label, total=total, text=f"0/{total} cells")

    def cell_done(self, status: str, label: str = "") -> None:
        """Cell ``label`` (its study's label) ended: "done" (ran now), "skipped" (finished
        earlier) or "timeout" (not started: the comparison's time limit had passed)."""
        with self._lock:
            self._cells_done += status != "timeout"
            self._skipped += status == "skipped"
            self._not_started += status == "timeout"
            notes = [f"{self._skipped} finished earlier"] * bool(self._skipped)
            notes += [f"{self._not_started} not started: time limit"] * bool(self._not_started)
            note = f" ({'; '.join(notes)})" if notes else ""
            count = f"{self._cells_done}/{self._cells_total}"
            self._states.pop(label, None)
            task = self._tasks.pop(label, None)
            if self._rich is not None and self._cells_task is not None:
                self._rich.update(self._cells_task, advance=1, text=f"{count} cells{note}")
                if task is not None:
                    self._rich.remove_task(task)
        if self._rich is None and self._lines and status == "done":
            self._print(f"cell {label} done; cells {count}{note}")

    # One study --------------------------------------------------------------------------------

    def study(self, label: str, total: int) -> _Sink | None:
        """A fresh display for one study of ``total`` evaluations; returns its progress sink."""
        if self._rich is None and not self._lines:
            return None
        state = StudyState(label, total)
        with self._lock:
            self._states[label] = state
            stale = self._tasks.pop(label, None)
            if self._rich is not None:
                if stale is not None:
                    self._rich.remove_task(stale)
                if self._cells_task is None:  # a single study: its bar replaces the previous one
                    for other in list(self._tasks):
                        self._rich.remove_task(self._tasks.pop(other))
                        self._states.pop(other, None)
                self._tasks[label] = self._rich.add_task(label, total=total, state=state)
        return _Sink(self, state)

    def _changed(self, state: StudyState, *, kind: str = "") -> None:
        if self._rich is not None:
            task = self._tasks.get(state.label)
            if task is not None:
                self._rich.update(task, completed=state.done)
            return
        if kind == "final":
            self._print(
                f"{state.label}: {'final forecast ready' if state.final == 'done' else state.stage or 'final forecast'}"
                f", {_clock_text(state.elapsed())}"
            )
        elif kind in ("trained", "pruned", "failed") or (kind and state.done == state.total):
            self._print(state.line())

    # Log lines --------------------------------------------------------------------------------

    def _print(self, text: str, now: float | None = None) -> None:
        with self._lock:
            print(f"hpo-lstm: {text}", file=sys.stderr, flush=True)
            self._last_line = time.monotonic() if now is None else now

    def tick(self, now: float | None = None) -> bool:
        """Print the running studies' lines if nothing was printed for ``LINE_EVERY`` seconds;
        whether it printed. The log form's timer calls this every second."""
        now = time.monotonic() if now is None else now
        with self._lock:
            running = [s for s in self._states.values() if s.done < s.total or s.final == "running"]
        if not running or now - self._last_line < self.LINE_EVERY:
            return False
        for state in running:
            self._print(state.line(), now)
        return True

    def _tick_forever(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()


class _Sink:
    """The progress sink of one study (see :class:`hpo_lstm.evaluation.ProgressSink`)."""

    def __init__(self, progress: Progress, state: StudyState) -> None:
        self._progress, self.state = progress, state

    def batch(self, trainings: int) -> None:
        self.state.batch(trainings)
        self._progress._changed(self.state)

    def evaluated(self, *, value: float, kind: str) -> None:
        self.state.evaluated(value=value, kind=kind)
        self._progress._changed(self.state, kind=kind)

    def final(self, *, done: bool, stage: str = "") -> None:
        self.state.final = "done" if done else "running"
        self.state.stage = stage
        self._progress._changed(self.state, kind="final")


def _rich_progress(console: Any = None) -> Any:
    """The terminal display: ``label  bar  done/total  best  counts  elapsed  eta``, 80 columns."""
    from rich.console import Console
    from rich.progress import BarColumn, ProgressColumn
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class StateColumn(ProgressColumn):
        """done/total, best so far, counts, elapsed and ETA; a cells bar shows its own text."""

        def render(self, task: Any) -> Text:
            state: StudyState | None = task.fields.get("state")
            if state is None:
                return Text(task.fields.get("text", ""), style="dim")
            if state.final == "running":
                tail = state.stage.split(",")[0] if state.stage else "final forecast"
            elif state.final == "done":
                tail = "done"
            else:
                tail = state.eta_text()
            text = f"{state.done}/{state.total} {state.best_text()} {state.counts_text()} {_clock_text(state.elapsed())} {tail}"
            return Text(text, no_wrap=True, overflow="ellipsis")

    return RichProgress(
        "[bold]{task.description}",
        BarColumn(bar_width=12),
        StateColumn(),
        console=console or Console(stderr=True),
        refresh_per_second=4,
    )
