"""In which order a batch's trainings should start: recorded batches replayed on W slots.

    python benchmarks/batch_order.py --storage sqlite:///results/hpo-lstm.db [--workers 2,4]

Reads every study in an hpo-lstm storage (a comparison's holds dozens) and, for each batch
(generation) of each study, the candidates it trained: their recorded training seconds,
validation RMSE, and the rough cost estimate the executors order jobs by
(``TrainJob.relative_cost``). Each batch is then replayed on W slots (a free slot takes the
next job in the order; the recorded seconds are the truth, the estimate only decides the
order) under three orders:

- ``largest``: most expensive first (longest processing time first; hpo-lstm before 2026-11-30);
- ``cheapest``: cheapest first;
- ``dispatch``: hpo-lstm's order now (:func:`hpo_lstm.jobs.dispatch_order`): the jobs estimated
  under a tenth of the batch's mean cost first, then the rest largest first.

Printed per order, each as a geometric mean over batches of the ratio to ``largest``: the
batch's wall (the optimizer moves on only when a batch ends), the mean time at which a value
arrives, and the time until the batch's best value, or one within 1% of it, is known (what
a user watching the progress, or a ``--timeout``, gets). Nothing is trained: the replay is
exact arithmetic on recorded times, so the ratios do not depend on this machine's load.
Ends with one key=value line for ``dispatch``, the batch wall first.
"""

from __future__ import annotations

import argparse
import heapq
import math
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpo_lstm.jobs import TrainJob

Job = tuple["TrainJob", float, float]  # (the job as the executors see it, recorded seconds, value)


def batches(storage: str) -> list[list[Job]]:
    """Each (study, generation)'s trained candidates with at least two of them."""
    import optuna

    from hpo_lstm.jobs import TrainJob
    from hpo_lstm.training import TrainSettings

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    settings = TrainSettings()
    out = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        groups: dict[int, list[Job]] = {}
        for trial in study.get_trials(deepcopy=False):
            attrs = trial.user_attrs
            if "train_seconds" not in attrs or "duplicate_of" in attrs or "generation" not in attrs:
                continue
            job = TrainJob(str(attrs.get("model", "lstm")), dict(trial.params), settings, seed=0)
            value = trial.value if trial.value is not None and math.isfinite(trial.value) else math.inf
            groups.setdefault(int(attrs["generation"]), []).append((job, float(attrs["train_seconds"]), value))
        out.extend(group for group in groups.values() if len(group) >= 2)
    return out


def replay(jobs: Sequence[Job], order: Sequence[int], workers: int) -> dict[int, float]:
    """When each job ends, started in ``order`` on ``workers`` slots (a free slot takes the next)."""
    free = [0.0] * workers
    heapq.heapify(free)
    ends = {}
    for i in order:
        start = heapq.heappop(free)
        ends[i] = start + jobs[i][1]
        heapq.heappush(free, ends[i])
    return ends


def orders(workers: int) -> dict[str, Callable[[Sequence[Job]], list[int]]]:
    from hpo_lstm.jobs import dispatch_order

    return {
        "largest": lambda jobs: sorted(range(len(jobs)), key=lambda i: -jobs[i][0].relative_cost()),
        "cheapest": lambda jobs: sorted(range(len(jobs)), key=lambda i: jobs[i][0].relative_cost()),
        "dispatch": lambda jobs: dispatch_order([job for job, _, _ in jobs], workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--storage", required=True, help="an hpo-lstm storage URL, e.g. sqlite:///results/x/hpo-lstm.db"
    )
    parser.add_argument("--workers", default="2,4", help="slot counts to replay on, comma-separated")
    args = parser.parse_args()
    recorded = batches(args.storage)
    if not recorded:
        raise SystemExit(f"no batch with two or more trained candidates in {args.storage}")
    print(f"{len(recorded)} batches of {sum(len(b) for b in recorded)} trainings from {args.storage}")
    last = ""
    for workers in (int(w) for w in args.workers.split(",")):
        ratios: dict[str, dict[str, list[float]]] = {}
        for jobs in recorded:
            best = min(value for _, _, value in jobs)
            timings = {name: replay(jobs, order(jobs), workers) for name, order in orders(workers).items()}

            def until(
                ends: dict[int, float], tolerance: float, jobs: Sequence[Job] = jobs, best: float = best
            ) -> float:
                return min(t for i, t in ends.items() if jobs[i][2] <= best * (1 + tolerance))

            base = timings["largest"]
            for name, ends in timings.items():
                r = ratios.setdefault(name, {"wall": [], "mean": [], "best": [], "within1": []})
                r["wall"].append(max(ends.values()) / max(base.values()))
                r["mean"].append(statistics.mean(ends.values()) / statistics.mean(base.values()))
                if math.isfinite(best):
                    r["best"].append(until(ends, 0.0) / until(base, 0.0))
                    r["within1"].append(until(ends, 0.01) / until(base, 0.01))
        geo = {name: {k: statistics.geometric_mean(v) for k, v in r.items()} for name, r in ratios.items()}
        for name, g in geo.items():
            worst = max(ratios[name]["wall"])
            print(
                f"W={workers} {name:>8}: batch wall {g['wall']:.3f} (worst {worst:.2f}), mean time to a value "
                f"{g['mean']:.3f}, to the batch's best {g['best']:.3f}, to within 1% of it {g['within1']:.3f}"
            )
        d = geo["dispatch"]
        last += (
            f"w{workers}_batch_wall_ratio={d['wall']:.3f} w{workers}_mean_value_time_ratio={d['mean']:.3f} "
            f"w{workers}_best_value_time_ratio={d['best']:.3f} w{workers}_within1pct_time_ratio={d['within1']:.3f} "
        )
    print(f"{last}batches={len(recorded)}")


if __name__ == "__main__":
    main()
