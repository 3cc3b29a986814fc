"""An experiment on the panel's recorded studies: would refitting the kept networks on train +
validation, as AutoETS and AutoARIMA are refitted for their test forecasts, improve the default
final forecast?

    python benchmarks/panel_refit.py [--half choose] [--variant default] [--out results/panel]

The statistical models' test forecasts come from fits on train + validation; the networks' from
training on the training rows only (validation picks the candidate and stops the training). For
each series a panel variant recorded (benchmarks/panel.py), this retrains each of the kept
networks (the best ``top_k``) from scratch, with its trial's params and the study's seed, on the
training and validation windows for the number of epochs its trial's best validation RMSE came
at (constant rate, no early stopping: nothing is held out; the model kept is that of the epoch
with the lowest error on the validation windows, now trained on, nearly always the last), the
scaler unchanged (training rows).
The inverse-MSE combination keeps the weights it had (from the original networks' validation
forecasts); only the network member's test forecast changes. Nothing is written to the storage.

Each line: the series, the test RMSE of the combination as recorded and with refitted networks,
and the refitted networks' mean alone; then ``rule=...`` lines as benchmarks/panel_final.py
prints them (``inverse``: as recorded; ``inverse_refit``; ``mean``, ``mean_refit``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from panel_final import _rmse, load_recorded, parse_args, print_rules, recorded_members, scored_row


def refit_networks(entry: dict, out: Path, variant: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(test forecasts of the kept networks as trained, test forecasts retrained on train +
    validation), each (K, n_test, horizon); None when the series is not recorded."""
    from hpo_lstm.training import predict, train_candidate

    loaded = load_recorded(entry, out, variant)
    if loaded is None:
        return None
    record, config, dataset, settings = loaded
    train_start = dataset.bounds["train"][0]
    val_stop = dataset.bounds["val"][1]
    # Train + validation windows as the training split; validation stays named (train_candidate
    # scores it each epoch), but with patience past the epochs it never stops the training.
    widened = dataclasses.replace(dataset, bounds={**dataset.bounds, "train": (train_start, val_stop)})
    refitted = []
    for trial in record.ranked_trainings()[: config.top_k]:
        epochs = int(trial.user_attrs.get("best_epoch") or trial.user_attrs.get("epochs") or settings.max_epochs)
        fixed = dataclasses.replace(settings, max_epochs=max(1, epochs), patience=10**6)
        params = settings.candidate(dict(trial.params), dataset)
        _, model = train_candidate(config.model, params, widened, fixed, seed=config.seed, keep_model=True)
        refitted.append(predict(model, dataset, "test", lookback=int(params["lookback"])))
    return np.stack(refitted)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    rows: dict[str, list[dict]] = {"inverse": [], "inverse_refit": [], "mean": [], "mean_refit": []}
    for entry, m in recorded_members(args):
        refit = refit_networks(entry, Path(args.out), args.variant)
        actual = m["val_actual"]
        stats = [n for n in ("auto_ets", "auto_arima") if f"{n}_val" in m]
        mean_val, mean_test, mean_refit = m["nets_val"].mean(0), m["nets_test"].mean(0), refit.mean(0)
        vals = [mean_val] + [m[f"{n}_val"] for n in stats]
        inv = np.array([1.0 / max(_rmse(actual, v) ** 2, 1e-300) for v in vals])
        inv = inv / inv.sum()
        tests = [m[f"{n}_test"] for n in stats]
        combined = {
            "inverse": inv[0] * mean_test + sum(w * t for w, t in zip(inv[1:], tests)),
            "inverse_refit": inv[0] * mean_refit + sum(w * t for w, t in zip(inv[1:], tests)),
            "mean": mean_test,
            "mean_refit": mean_refit,
        }
        for rule, forecast in combined.items():
            rows[rule].append(scored_row(m, _rmse(m["test_actual"], forecast)))
        print(
            f"{entry['name']:22s} "
            + " ".join(f"{rule} {_rmse(m['test_actual'], f):.4g}" for rule, f in combined.items()),
            flush=True,
        )
    print_rules(rows)


if __name__ == "__main__":
    main()
