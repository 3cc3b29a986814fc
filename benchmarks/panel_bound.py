"""How far can any rule for the final forecast go on the panel? Bounds with hindsight on test.

    python benchmarks/panel_bound.py --half confirm [--variant default] [--out results/panel]

issue 26's targets for the confirm half are ``geomean_vs_best_stat <= 0.95`` and the naive
forecast beaten on at least 90% of the series. This script asks whether any rule that picks or
combines the forecasts a default study already has could reach them, by cheating on purpose: it
looks at the test data, which no rule of hpo-lstm may do. For each series recorded by
benchmarks/panel.py it takes every forecast of the test points there is (the 5 kept networks,
their mean, the default combination, naive, seasonal naive where there is a season, AutoETS,
AutoARIMA, and AutoTheta and AutoCES as benchmarks/panel_theta.py fits them) and scores:

* ``default``: the default final forecast (inverse validation MSE), recomputed from the members;
* ``hindsight_pick``: per series, whichever of those forecasts has the lowest *test* RMSE;
* ``hindsight_pick_not_naive``: the same among all but the naive forecast (can anything beat it?);
* ``hindsight_convex``: per series, the convex weights over all of them (including naive) that
  minimise the *test* RMSE; with up to 13 weights fitted on as few as 15 test points this
  overfits the test split, so it is far above what any honest rule can do.

A rule that sees only training and validation data cannot do better in expectation than
``hindsight_pick`` does among the forecasts it chooses from, nor better than
``hindsight_convex`` among the ones it combines. The reference of ``geomean_vs_best_stat`` is the
best of seasonal naive, AutoETS and AutoARIMA per series, as in benchmarks/panel.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from panel_final import _rmse, parse_args, print_rules, recorded_members, scored_row
from panel_theta import _fit_new, _inverse
from scipy.optimize import nnls


def _forecasts(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every test forecast a series' members give, by name, as 1-D arrays."""
    found = {f"net{i + 1}": m["nets_test"][i].ravel() for i in range(len(m["nets_test"]))}
    found["net_mean"] = m["nets_test"].mean(0).ravel()
    for name in ("naive", "seasonal_naive", "auto_ets", "auto_arima", "auto_theta", "auto_ces"):
        if f"{name}_test" in m:
            found[name] = m[f"{name}_test"].ravel()
    return found


def _convex_on_test(actual: np.ndarray, forecasts: np.ndarray) -> float:
    """The lowest test RMSE of a convex combination (weights >= 0, summing to 1) of the columns of
    ``forecasts``: non-negative least squares with the sum held to 1 by a heavily weighted row."""
    scale = float(np.std(actual)) or 1.0
    heavy = 1e4 * np.sqrt(len(actual))
    weights, _ = nnls(
        np.vstack([forecasts / scale, np.full(forecasts.shape[1], heavy)]),
        np.concatenate([actual / scale, [heavy]]),
        maxiter=100 * forecasts.shape[1],
    )
    return _rmse(actual, forecasts @ (weights / weights.sum()))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    rows: dict[str, list[dict]] = {
        rule: [] for rule in ("default", "hindsight_pick", "hindsight_pick_not_naive", "hindsight_convex")
    }
    for entry, m in recorded_members(args):
        m = m | _fit_new(entry, Path(args.out), args.variant)
        actual = m["test_actual"].ravel()
        default = _inverse(m, ["auto_ets", "auto_arima"])[1]
        forecasts = _forecasts(m)
        scores = {name: _rmse(actual, f) for name, f in forecasts.items()} | {"combination": default}
        pick = min(scores, key=scores.get)
        pick_other = min((n for n in scores if n != "naive"), key=scores.get)
        # (the combination is a convex combination of these forecasts: never below the bound)
        convex = min(_convex_on_test(actual, np.stack(list(forecasts.values()), 1)), scores[pick])
        rows["default"].append(scored_row(m, default))
        rows["hindsight_pick"].append(scored_row(m, scores[pick]))
        rows["hindsight_pick_not_naive"].append(scored_row(m, scores[pick_other]))
        rows["hindsight_convex"].append(scored_row(m, convex))
        best_stat = rows["default"][-1]["best_stat"]
        print(
            f"{entry['name']:22s} default {default / best_stat:.3f}  pick {pick} {scores[pick] / best_stat:.3f}"
            f"  not naive {pick_other} {scores[pick_other] / best_stat:.3f}  convex {convex / best_stat:.3f}"
            f"  (of the best statistical model's test RMSE, {best_stat:.4g})",
            flush=True,
        )
    print_rules(rows)


if __name__ == "__main__":
    main()
