"""The public benchmark panel: the default study on 28 real series, against the statistical
models and the untuned textbook network.

    python benchmarks/panel.py [--series A,B] [--half choose|confirm|fresh|all] [--quick]
                               [--variant NAME --set KEY=VALUE ...] [--out results/panel]

For each series of benchmarks/panel/series.csv (data in benchmarks/panel/data/, sources and
licences in benchmarks/panel/README.md) it runs, or reads back when recorded:

* the default study (``hpo-lstm run --data FILE --target T --features ...``, every other
  setting hpo-lstm's default; ``--set`` overrides one, for ablations);
* the untuned textbook network: an LSTM of 50 units in 2 layers, learning rate 1e-3, lookback
  24, trained once with the same epochs and early stopping, and used alone (``final="best"``);

and prints a row per series: the test RMSE of the default run's final forecast, of the untuned
network, of the naive (last value), seasonal naive (naive where there is no season), AutoETS and
AutoARIMA forecasts, all on the same test points. Each variant keeps its studies in its own
SQLite storage (OUT/VARIANT.db), so a rerun skips finished series and an interrupted one resumes.

The last lines, one per half and then one for the series run, are key=value: geometric means of
the test RMSE ratios (fev-bench style) against seasonal naive (the naive forecast where a series
has no season), against the best of that, AutoETS and AutoARIMA for each series, and against the
untuned network; how many series
beat the best statistical model and the naive forecast; the recorded minutes of the studies.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PANEL = HERE / "panel"
UNTUNED = {"learning_rate": 1e-3, "hidden_size": 50, "n_layers": 2}
UNTUNED_LOOKBACK = 24
QUICK = {"budget": 10, "pop_size": 5, "max_epochs": 5, "patience": 2}


def load_panel() -> list[dict[str, str]]:
    with open(PANEL / "series.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _parse_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _data(entry: dict[str, str]) -> dict:
    if entry["file"].endswith(".csv"):
        features = [f for f in entry["features"].split(",") if f]
        return {
            "data": str((PANEL / "data" / entry["file"]).resolve()),
            "target": entry["target"],
            "features": tuple([entry["target"], *features]) if features else None,
        }
    return {"data": entry["file"]}  # a built-in dataset


def run_series(entry: dict[str, str], *, out: Path, variant: str, overrides: dict, workers: int | None) -> dict:
    import optuna

    from hpo_lstm import StudyConfig, run_study
    from hpo_lstm.baselines import Baselines
    from hpo_lstm.space import default_space
    from hpo_lstm.store.record import BASELINES_ATTR

    storage = f"sqlite:///{(out / f'{variant}.db').resolve()}"
    base = dict(_data(entry), out=str(out / variant), storage=storage)
    started = time.monotonic()
    tuned = run_study(StudyConfig(name=f"{entry['name']}", **base, **overrides), workers=workers).summary()
    # The untuned network: the same epochs, patience and precision as the default run.
    same = {k: v for k, v in overrides.items() if k in ("max_epochs", "patience", "precision", "calendar")}
    space = default_space({k: {"low": v, "high": v, "log": False} for k, v in UNTUNED.items()})
    # The bare network (final="best"): no ensemble, no combination with the statistical models.
    untuned_config = StudyConfig(
        name=f"{entry['name']}.textbook",
        **base,
        **same,
        optimizer="random",
        budget=1,
        pop_size=1,
        pruning="off",
        space=space,
        lookback=UNTUNED_LOOKBACK,
        final="best",
    )
    study = optuna.load_study(study_name=entry["name"], storage=storage)
    stored = Baselines.from_record(json.loads(study.user_attrs[BASELINES_ATTR]))
    untuned = run_study(untuned_config, workers=1, baselines=stored).summary()
    b = tuned["baselines"]
    # Seasonal naive falls back to naive where the series has no season (fev-bench style), in
    # its own column and as one of the statistical models the default output must beat.
    snaive = b["seasonal_naive"]["rmse"] if b["seasonal_naive"]["rmse"] is not None else b["naive_last"]["rmse"]
    stat = {"seasonal_naive": snaive} | {
        name: b[name]["rmse"] for name in ("auto_ets", "auto_arima") if b.get(name, {}).get("rmse") is not None
    }
    return {
        "name": entry["name"],
        "half": entry["half"],
        "step": entry["step"],
        "test": tuned["test"]["rmse"],
        "untuned": untuned["test"]["rmse"],
        "naive": b["naive_last"]["rmse"],
        "snaive": snaive,
        "ets": stat.get("auto_ets"),
        "arima": stat.get("auto_arima"),
        "best_stat": min(stat.values()) if stat else None,
        "final": (tuned.get("final_forecast") or {}).get("kind", "best"),
        "candidates": (tuned.get("final_forecast") or {}).get("candidates") or {},
        "minutes": (tuned["wall_seconds"] + untuned["wall_seconds"]) / 60,
        "ran_minutes": (time.monotonic() - started) / 60,
    }


def rule_rows(rows: list[dict], rule: str) -> list[dict]:
    """``rows`` as if the final forecast had been chosen by ``rule``: "auto" (as recorded),
    "best", a kind (always that candidate), or "no-best" (the lowest validation RMSE among the
    candidates other than the single best network). Uses each study's recorded candidates: no
    training, no test value in the choice."""
    out = []
    for row in rows:
        candidates = row["candidates"]
        if rule == "auto" or not candidates:
            out.append(row)
            continue
        if rule == "no-best":
            pool = {k: c for k, c in candidates.items() if k != "best"} or candidates
            kind = min(pool, key=lambda k: pool[k]["val_rmse"])
        else:
            kind = rule if rule in candidates else "best"
        out.append({**row, "test": candidates[kind]["test_rmse"], "final": kind})
    return out


def _geomean(ratios: list[float]) -> float:
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else math.nan


def summary_line(rows: list[dict]) -> str:
    n = len(rows)
    with_stat = [r for r in rows if r["best_stat"] is not None]
    return (
        f"series={n} geomean_vs_snaive={_geomean([r['test'] / r['snaive'] for r in rows]):.3f} "
        f"geomean_vs_best_stat={_geomean([r['test'] / r['best_stat'] for r in with_stat]):.3f} "
        f"geomean_vs_untuned={_geomean([r['test'] / r['untuned'] for r in rows]):.3f} "
        f"beats_best_stat={sum(r['test'] < r['best_stat'] for r in with_stat)}/{len(with_stat)} "
        f"beats_naive={sum(r['test'] < r['naive'] for r in rows)}/{n} minutes={sum(r['minutes'] for r in rows):.1f}"
    )


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", help="comma-separated names (default: every series of the half)")
    parser.add_argument("--half", choices=("choose", "confirm", "fresh", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK}")
    parser.add_argument("--variant", default="default", help="name of this set of settings (its own storage)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a study setting for the tuned run (e.g. calendar=false, folds=3)",
    )
    parser.add_argument("--out", default="results/panel")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--rules",
        action="store_true",
        help="also score other rules for the final forecast from the recorded candidates (no training)",
    )
    args = parser.parse_args()

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = _parse_value(value.strip())
    if args.quick:
        overrides = {**QUICK, **overrides}
    panel = load_panel()
    if args.series:
        wanted = args.series.split(",")
        unknown = sorted(set(wanted) - {e["name"] for e in panel})
        if unknown:
            parser.error(f"unknown series {unknown}; see benchmarks/panel/series.csv")
        panel = [e for e in panel if e["name"] in wanted]
    elif args.half != "all":
        panel = [e for e in panel if e["half"] == args.half]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    header = f"{'series':22s} {'half':7s} {'step':9s} {'tuned':>9s} {'untuned':>9s} {'naive':>9s} {'snaive':>9s} {'ETS':>9s} {'ARIMA':>9s}  final"
    print(f"variant {args.variant}: {overrides or 'the defaults'}")
    print(header)
    for entry in panel:
        row = run_series(entry, out=out, variant=args.variant, overrides=overrides, workers=args.workers)
        rows.append(row)
        print(
            f"{row['name']:22s} {row['half']:7s} {row['step']:9s} {_fmt(row['test']):>9s} {_fmt(row['untuned']):>9s} "
            f"{_fmt(row['naive']):>9s} {_fmt(row['snaive']):>9s} {_fmt(row['ets']):>9s} {_fmt(row['arima']):>9s}  "
            f"{row['final']}",
            flush=True,
        )
        with open(out / f"{args.variant}.jsonl", "a") as handle:
            handle.write(
                json.dumps(
                    {
                        **{k: v for k, v in row.items() if k != "candidates"},
                        "variant": args.variant,
                        "overrides": overrides,
                    }
                )
                + "\n"
            )
    if args.rules:
        for rule in ("best", "top_k_mean", "combination_equal", "combination_fitted", "no-best"):
            print(f"rule={rule} {summary_line(rule_rows(rows, rule))}")
    for half in ("choose", "confirm", "fresh"):
        part = [r for r in rows if r["half"] == half]
        if part and len(part) < len(rows):
            print(f"half={half} {summary_line(part)}")
    print(f"variant={args.variant} {summary_line(rows)}")


if __name__ == "__main__":
    main()
