"""Would AutoTheta and AutoCES as members of the final combination help? Scored on the panel's
recorded studies, without training any network.

    python benchmarks/panel_theta.py --half choose [--variant default] [--out results/panel]

For each series benchmarks/panel.py recorded, this takes the members benchmarks/panel_final.py
caches (the kept networks' and the statistical models' validation and test forecasts) and adds
statsforecast's AutoTheta and AutoCES, fitted as AutoETS is (season up to 24, else none): on the
training rows for the validation forecasts, on training + validation rows for the test
forecasts. Each one-step forecast comes from ``forward(y[:t + 1], h=1)`` at its origin t: their
``forward`` decomposes the season of the series it is given again, so one pass over the whole
series (as hpo_lstm.baselines does for AutoETS) would let the test data into its own forecasts.
The Theta and CES forecasts are cached beside the members (``NAME.theta.npz``).

Rules, weights proportional to 1 / validation MSE:

* ``inverse``: network mean, AutoETS, AutoARIMA (hpo-lstm's default final forecast);
* ``inverse4t``: the same and AutoTheta;  ``inverse5``: the same and AutoTheta and AutoCES;
* ``theta``, ``ces``: the model alone (for reference).

The reference of ``geomean_vs_best_stat`` stays the best of seasonal naive, AutoETS and
AutoARIMA on test, as in benchmarks/panel.py. Written down before it ran: docs/panel.md.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from panel_final import _rmse, load_recorded, parse_args, print_rules, recorded_members, scored_row

from hpo_lstm.baselines import MAX_ETS_SEASON

NEW = ("auto_theta", "auto_ces")


def _one_step(model, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """(n_origins, 1) forecasts of step t + 1 from each origin t, each from the data up to t only."""
    return np.array([model.forward(y=y[: t + 1], h=1)["mean"] for t in origins]).reshape(-1, 1)


def _fit_new(entry: dict, out: Path, variant: str) -> dict[str, np.ndarray]:
    cache = out / f"{variant}.members" / f"{entry['name']}.theta.npz"
    if cache.exists():
        return dict(np.load(cache))
    from statsforecast.models import AutoCES, AutoTheta
    from threadpoolctl import threadpool_limits

    record, config, dataset, _ = load_recorded(entry, out, variant)
    assert dataset.horizon == 1, "the panel's default study forecasts one step"
    from hpo_lstm.baselines import Baselines

    season = Baselines.from_record(record.baselines).results["auto_ets"].season
    season = season if season is not None and 1 < season <= MAX_ETS_SEASON else 1
    y = np.asarray(dataset.level, dtype=float)
    n_train, n_fit = int(dataset.rows["val"][0]), int(dataset.rows["test"][0])
    val_origins, test_origins = dataset.origins[dataset.split("val")], dataset.origins[dataset.split("test")]
    found: dict[str, np.ndarray] = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in (("auto_theta", AutoTheta), ("auto_ces", AutoCES)):
            started = time.perf_counter()
            try:
                on_fit = cls(season_length=season).fit(y[:n_fit])
                on_train = cls(season_length=season).fit(y[:n_train])
                test, val = _one_step(on_fit, y, test_origins), _one_step(on_train, y, val_origins)
            except Exception as exc:  # noqa: BLE001  (reported: the series goes on without this member)
                print(f"  {entry['name']}: {name} failed: {type(exc).__name__}: {exc}")
                continue
            if np.isfinite(test).all() and np.isfinite(val).all():
                found[f"{name}_val"], found[f"{name}_test"] = val, test
            print(f"  {entry['name']}: {name} season {season}, {time.perf_counter() - started:.1f} s", flush=True)
    np.savez(cache, **found)
    return found


def _inverse(m: dict[str, np.ndarray], names: list[str]) -> tuple[float, float]:
    pool = [(m["nets_val"].mean(0), m["nets_test"].mean(0))] + [
        (m[f"{n}_val"], m[f"{n}_test"]) for n in names if f"{n}_val" in m
    ]
    inv = np.array([1.0 / max(_rmse(m["val_actual"], f[0]) ** 2, 1e-300) for f in pool])
    inv = inv / inv.sum()
    val, test = (sum(w * f[i] for w, f in zip(inv, pool)) for i in (0, 1))
    return _rmse(m["val_actual"], val), _rmse(m["test_actual"], test)


RULES = {
    "inverse": ["auto_ets", "auto_arima"],
    "inverse4t": ["auto_ets", "auto_arima", "auto_theta"],
    "inverse5": ["auto_ets", "auto_arima", "auto_theta", "auto_ces"],
}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    rows: dict[str, list[dict]] = {rule: [] for rule in (*RULES, "theta", "ces")}
    for entry, m in recorded_members(args):
        m = m | _fit_new(entry, Path(args.out), args.variant)
        scores = {rule: _inverse(m, names) for rule, names in RULES.items()}
        for rule, (_, test) in scores.items():
            rows[rule].append(scored_row(m, test))
        for rule, name in (("theta", "auto_theta"), ("ces", "auto_ces")):
            if f"{name}_test" in m:
                rows[rule].append(scored_row(m, _rmse(m["test_actual"], m[f"{name}_test"])))
        print(f"{entry['name']:22s} " + " ".join(f"{k} {v[0]:.4g}/{v[1]:.4g}" for k, v in scores.items()), flush=True)
    print_rules(rows)


if __name__ == "__main__":
    main()
