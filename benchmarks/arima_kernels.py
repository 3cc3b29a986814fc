"""Which models AutoARIMA and AutoETS choose on CO2 with each of OpenBLAS's x86 kernel sets.

    python benchmarks/arima_kernels.py

Each row fits both baselines (hpo-lstm's own fit functions, horizon 1, the default study's
train + validation rows) in a fresh process with ``OPENBLAS_CORETYPE`` set, so that numpy and
scipy load OpenBLAS with those kernels. A kernel set the CPU lacks cannot run; rows of kernels
above this CPU's are skipped. The last line: ``same_model_everywhere=`` (1 when every kernel set
chose the same AutoARIMA model). docs/baselines.md, "The same models on any x86 CPU".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

KERNELS = {"Haswell": {"avx2", "fma"}, "Zen": {"avx2", "fma"}, "SkylakeX": {"avx512f"}, "Sandybridge": {"avx"}}


def _child() -> None:
    import time

    import numpy as np

    from hpo_lstm.baselines import _blas_in_use, _fit_arima, _fit_ets

    task = json.loads(sys.stdin.read())
    task = {**task, "y": np.asarray(task["y"]), "origins": np.asarray(task["origins"])}
    out = {"blas": _blas_in_use()}
    for name, fit in (("arima", _fit_arima), ("ets", _fit_ets)):
        started = time.process_time()
        result = fit(task)
        forecast = result["forecast"][:, 0]
        actual = task["y"][task["origins"] + 1]
        out[name] = {
            "model": result["model"].split(" (")[0],
            "rmse": float(np.sqrt(np.mean((forecast - actual) ** 2))),
            "cpu_s": round(time.process_time() - started, 1),
        }
    print(json.dumps(out))


def main() -> None:
    from hpo_lstm import StudyConfig
    from hpo_lstm._cpu import cpu_flags
    from hpo_lstm.study import prepare_dataset

    dataset = prepare_dataset(StudyConfig(data="co2"))
    test = dataset.split("test")
    task = {
        "y": dataset.level.tolist(),
        "n_fit": int(dataset.rows["test"][0]),
        "origins": dataset.origins[test].tolist(),
        "horizon": 1,
        "season": 52,
    }
    flags = cpu_flags() or frozenset()
    chosen = set()
    for kernels, needs in KERNELS.items():
        if not needs <= flags:
            print(f"{kernels:12s} skipped: this CPU lacks {sorted(needs - flags)}")
            continue
        env = {**os.environ, "OPENBLAS_CORETYPE": kernels}
        run = subprocess.run(
            [sys.executable, __file__, "--child"],
            input=json.dumps(task),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out = json.loads(run.stdout)
        a, e = out["arima"], out["ets"]
        chosen.add(a["model"])
        print(
            f"{kernels:12s} ({out['blas']}): AutoARIMA {a['model']} test RMSE {a['rmse']:.4f} ({a['cpu_s']} s CPU); "
            f"AutoETS {e['model']} {e['rmse']:.4f}"
        )
    print(f"same_model_everywhere={int(len(chosen) == 1)} models={len(chosen)}")


if __name__ == "__main__":
    _child() if sys.argv[1:] == ["--child"] else main()
