"""Wall time of one small study on a Dask cluster of 1 worker and of 2 workers, side by side.

    python benchmarks/dask_workers.py [--budget 8] [--pop-size 4] [--max-epochs 10]

Both clusters are real ``dask scheduler`` / ``dask worker --nthreads 1`` processes on
127.0.0.1 (hpo_lstm.executors._loopback). The study (small LSTMs on the built-in CO2 data, TPE, seed 0,
pruning off so every candidate trains the same epochs in both runs) runs to the end on each,
from connecting to the final model, with its own SQLite storage; both must record identical
trials. Workers are started and warmed (torch imported) outside the clock. The machine's load
average is printed next to the figures: on a busy 2-core machine the second worker has no
core of its own. Ends with one key=value line, the headline first.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import optuna

from hpo_lstm._logging import quiet_optuna
from hpo_lstm.config import StudyConfig
from hpo_lstm.executors._loopback import LoopbackCluster
from hpo_lstm.study import run_study


def timed_study(config: StudyConfig, workdir: Path, n_workers: int) -> tuple[float, list[tuple]]:
    with LoopbackCluster(workdir=workdir / "cluster") as cluster:
        cluster.add_workers(n_workers)
        cluster.client.run(lambda: __import__("torch").zeros(1))  # import torch outside the clock
        start = time.perf_counter()
        run_study(config, executor="dask", scheduler=cluster.address)
        seconds = time.perf_counter() - start
    with quiet_optuna():
        trials = optuna.load_study(study_name=config.study_name, storage=config.storage_url).trials
    return seconds, sorted((t.number, t.params, t.value) for t in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--pop-size", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=10)
    args = parser.parse_args()
    results = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            config = StudyConfig.from_mapping(
                {
                    "name": "bench",
                    "data": "co2",
                    "model": "lstm",
                    "optimizer": "tpe",
                    "seed": 0,
                    "budget": args.budget,
                    "pop_size": args.pop_size,
                    "max_epochs": args.max_epochs,
                    "patience": args.max_epochs,
                    "pruning": "off",
                    "out": f"{tmp}/{n}",
                    "space": {
                        "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
                        "hidden_size": {"low": 16, "high": 64},
                        "n_layers": {"low": 1, "high": 2},
                    },
                }
            )
            results[n] = timed_study(config, Path(tmp) / str(n), n)
    (one, trials_one), (two, trials_two) = results[1], results[2]
    assert trials_one == trials_two, "1 and 2 Dask workers must record identical trials"
    print(f"1 Dask worker : {one:6.1f} s for the study ({args.budget} evaluations + final model)")
    print(f"2 Dask workers: {two:6.1f} s")
    print(
        f"speedup={one / two:.2f} study_s_1={one:.1f} study_s_2={two:.1f} evaluations={args.budget} "
        f"cores={os.cpu_count()} load_before={load_before:.2f} load_after={os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
