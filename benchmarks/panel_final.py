"""Score rules for the final forecast on the panel's recorded studies, without training anything.

    python benchmarks/panel_final.py --variant new [--half choose] [--out results/panel]

For each series a panel variant (benchmarks/panel.py) recorded, this loads the kept networks
(the best ``top_k`` trained candidates' weights, from the study's storage) and the statistical
models' forecasts (from the stored baselines: validation forecasts from fits on the training rows,
test forecasts from fits on training + validation), then scores each rule below: a rule sees the
validation forecasts only; the test RMSE of what it chose is what the line reports. The members
are cached in OUT/VARIANT.members/ (npz), so a second call is instant.

Rules (weights over the network mean N, AutoETS E, AutoARIMA A, seasonal naive S):

* ``best``, ``mean``: the best network; the mean of the kept networks;
* ``equal``: (N + E + A) / 3;  ``stat``: (E + A) / 2;
* ``fitted``: convex weights on N, E, A, S minimising validation MSE (the current
  ``combination_fitted``); ``shrunk``: halfway between those and equal weights on N, E, A;
* ``inverse``: weights proportional to 1 / validation MSE of N, E, A (the default);
  ``inverse+naive``: the same with the naive forecast as a fourth member; ``inverse2``: 1 / MSE²;
  ``trimmed``: ``inverse`` over the members within twice the best one's validation MSE;
  ``median``: the median of N, E, A;
* ``auto``: the lowest validation RMSE among best, mean, equal, fitted (today's ``--final auto``);
  ``auto+``: the same among mean, equal, fitted, shrunk, inverse, stat.

Each line: ``rule=... geomean_vs_best_stat=.. geomean_vs_snaive=.. beats_best_stat=K/N
beats_naive=K/N``, as benchmarks/panel.py computes them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from panel import _data, load_panel, summary_line  # benchmarks/panel.py


def load_recorded(entry: dict, out: Path, variant: str):
    """A series' recorded study of panel variant ``variant``, ready to score again: (its record,
    the config it ran with, its dataset, its training settings); None when it is not recorded
    or has no final result."""
    import optuna

    from hpo_lstm.config import StudyConfig
    from hpo_lstm.store.record import StudyRecord
    from hpo_lstm.study import _settings, prepare_dataset

    storage = f"sqlite:///{(out / f'{variant}.db').resolve()}"
    try:
        study = optuna.load_study(study_name=entry["name"], storage=storage)
    except KeyError:
        return None
    record = StudyRecord(study, study._storage, storage)
    if record.final is None:
        return None
    recorded = json.loads(study.user_attrs["config"])
    # The series' file as this checkout holds it (a study recorded in another clone names that
    # clone's absolute path).
    recorded["data"] = _data(entry)["data"]
    fields = set(StudyConfig.__dataclass_fields__) - {"storage", "out", "name", "space"}  # the panel: default spaces
    config = StudyConfig.from_mapping({k: v for k, v in recorded.items() if k in fields and v is not None})
    dataset = prepare_dataset(config)
    config = config.for_data(dataset.point_times, len(dataset.level))
    return record, config, dataset, _settings(config, "cpu")


def _members(entry: dict, out: Path, variant: str) -> dict[str, np.ndarray] | None:
    cache = out / f"{variant}.members" / f"{entry['name']}.npz"
    if cache.exists():
        return dict(np.load(cache))
    from hpo_lstm.baselines import Baselines
    from hpo_lstm.store.model_store import trial_weights
    from hpo_lstm.store.record import BASELINES_ATTR
    from hpo_lstm.training import model_from_weights, predict

    loaded = load_recorded(entry, out, variant)
    if loaded is None:
        return None
    record, config, dataset, settings = loaded
    study = record.study
    trials = record.ranked_trainings()
    val, test = dataset.split("val"), dataset.split("test")
    nets_val, nets_test = [], []
    for trial in trials:
        if len(nets_val) >= config.top_k:
            break
        weights = trial_weights(study._storage, trial, study)
        if weights is None:
            continue
        params = settings.candidate(dict(trial.params), dataset)
        model = model_from_weights(
            config.model, params, weights, n_features=dataset.n_features, device="cpu", horizon=dataset.horizon
        )
        nets_val.append(predict(model, dataset, "val", lookback=int(params["lookback"])))
        nets_test.append(predict(model, dataset, "test", lookback=int(params["lookback"])))
    baselines = Baselines.from_record(json.loads(study.user_attrs[BASELINES_ATTR]))
    members = {
        "val_actual": dataset.actual[val],
        "test_actual": dataset.actual[test],
        "nets_val": np.stack(nets_val),
        "nets_test": np.stack(nets_test),
        "naive_test": dataset.naive("test"),
        "naive_val": dataset.naive("val"),
    }
    for name, result in baselines.results.items():
        if result.status == "ok" and result.val_forecast is not None and result.forecast is not None:
            members[f"{name}_val"], members[f"{name}_test"] = result.val_forecast, result.forecast
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **members)
    return members


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2)))


def candidates(m: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """rule -> (validation RMSE, test RMSE) for every fixed rule that can be built."""
    from hpo_lstm.ensemble import _convex_weights

    forecasts = {"best": (m["nets_val"][0], m["nets_test"][0]), "mean": (m["nets_val"].mean(0), m["nets_test"].mean(0))}
    stats = [n for n in ("auto_ets", "auto_arima") if f"{n}_val" in m]
    members = [forecasts["mean"]] + [(m[f"{n}_val"], m[f"{n}_test"]) for n in stats]
    if stats:
        forecasts["equal"] = tuple(sum(f[i] for f in members) / len(members) for i in (0, 1))
        stat_only = [(m[f"{n}_val"], m[f"{n}_test"]) for n in stats]
        forecasts["stat"] = tuple(sum(f[i] for f in stat_only) / len(stat_only) for i in (0, 1))
        fitted_members = members + (
            [(m["seasonal_naive_val"], m["seasonal_naive_test"])] if "seasonal_naive_val" in m else []
        )
        w = _convex_weights([f[0] for f in fitted_members], m["val_actual"])
        forecasts["fitted"] = tuple(sum(wi * f[i] for wi, f in zip(w, fitted_members)) for i in (0, 1))
        w3 = _convex_weights([f[0] for f in members], m["val_actual"])
        shrunk = 0.5 * w3 + 0.5 / len(members)
        forecasts["shrunk"] = tuple(sum(wi * f[i] for wi, f in zip(shrunk, members)) for i in (0, 1))
        for name, pool in (("inverse", members), ("inverse+naive", members + [(m["naive_val"], m["naive_test"])])):
            inv = np.array([1.0 / max(_rmse(m["val_actual"], f[0]) ** 2, 1e-300) for f in pool])
            inv = inv / inv.sum()
            forecasts[name] = tuple(sum(wi * f[i] for wi, f in zip(inv, pool)) for i in (0, 1))
        # Inverse MSE, squared (sharper: the best member dominates more).
        inv2 = np.array([1.0 / max(_rmse(m["val_actual"], f[0]) ** 4, 1e-300) for f in members])
        inv2 = inv2 / inv2.sum()
        forecasts["inverse2"] = tuple(sum(wi * f[i] for wi, f in zip(inv2, members)) for i in (0, 1))
        # The median of the network mean, AutoETS and AutoARIMA (robust to one member gone wrong).
        if len(members) >= 3:
            forecasts["median"] = tuple(np.median(np.stack([f[i] for f in members]), axis=0) for i in (0, 1))
        # Inverse MSE over the members within twice the best member's validation MSE (trimmed).
        mse = np.array([_rmse(m["val_actual"], f[0]) ** 2 for f in members])
        keep = [f for f, e in zip(members, mse) if e <= 2.0 * mse.min()]
        inv = np.array([1.0 / max(_rmse(m["val_actual"], f[0]) ** 2, 1e-300) for f in keep])
        inv = inv / inv.sum()
        forecasts["trimmed"] = tuple(sum(wi * f[i] for wi, f in zip(inv, keep)) for i in (0, 1))
    return {k: (_rmse(m["val_actual"], v), _rmse(m["test_actual"], t)) for k, (v, t) in forecasts.items()}


RULES = (
    "best",
    "mean",
    "equal",
    "stat",
    "fitted",
    "shrunk",
    "inverse",
    "inverse+naive",
    "inverse2",
    "median",
    "trimmed",
    "auto",
    "auto+",
)
_POOLS = {
    "auto": ("best", "mean", "equal", "fitted"),
    "auto+": ("mean", "equal", "fitted", "shrunk", "inverse", "stat"),
}


def parse_args(description: str) -> argparse.Namespace:
    """The options every panel_* scoring script takes: which variant's studies, which half, where."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--variant", default="default")
    parser.add_argument("--half", choices=("choose", "confirm", "fresh", "all"), default="choose")
    parser.add_argument("--out", default="results/panel")
    return parser.parse_args()


def recorded_members(args: argparse.Namespace):
    """(panel entry, its members) for each series of ``args.half`` recorded in ``args.variant``."""
    out = Path(args.out)
    for entry in load_panel():
        if args.half != "all" and entry["half"] != args.half:
            continue
        m = _members(entry, out, args.variant)
        if m is None:
            print(f"{entry['name']}: not recorded in {args.variant}")
            continue
        yield entry, m


def scored_row(m: dict[str, np.ndarray], test: float, **extra) -> dict:
    """A row of benchmarks/panel.py's summary for a forecast of test RMSE ``test``: the naive,
    seasonal naive (naive where there is none) and best statistical test RMSE beside it."""
    naive = _rmse(m["test_actual"], m["naive_test"])
    snaive = _rmse(m["test_actual"], m["seasonal_naive_test"]) if "seasonal_naive_test" in m else naive
    stat = [snaive] + [_rmse(m["test_actual"], m[f"{n}_test"]) for n in ("auto_ets", "auto_arima") if f"{n}_test" in m]
    return {
        "test": test,
        "naive": naive,
        "snaive": snaive,
        "best_stat": min(stat),
        "untuned": test,
        "minutes": 0.0,
    } | extra


def print_rules(rows_by_rule: dict[str, list[dict]]) -> None:
    for rule, rows in rows_by_rule.items():
        line = summary_line(rows).replace("geomean_vs_untuned=1.000 ", "").replace(" minutes=0.0", "")
        print(f"rule={rule} {line}")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    rows_by_rule: dict[str, list[dict]] = {rule: [] for rule in RULES}
    for entry, m in recorded_members(args):
        scores = candidates(m)
        for rule in RULES:
            if rule in _POOLS:
                pool = [k for k in _POOLS[rule] if k in scores]
                chosen = min(pool, key=lambda k: scores[k][0])
            else:
                chosen = rule if rule in scores else "best"
            rows_by_rule[rule].append(scored_row(m, scores[chosen][1], chosen=chosen))
        print(f"{entry['name']:22s} " + " ".join(f"{k} {v[0]:.4g}/{v[1]:.4g}" for k, v in scores.items()), flush=True)
    print_rules(rows_by_rule)


if __name__ == "__main__":
    main()
