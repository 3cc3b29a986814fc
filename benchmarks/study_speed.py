"""The same study run the tutorial way and the hpo-lstm way, side by side.

    python benchmarks/study_speed.py [--budget 16] [--pop-size 8] [--max-epochs 20] [--optimizer woa]

Same data (built-in CO2), search space (hpo-lstm's default), optimizer, budget, seed and maximum epochs.

(a) tutorial: what the seed scripts do - torch DataLoader with shuffle, torch's default thread
    count, every candidate trained for the full max epochs (no early stopping), one candidate
    after another, no memo for repeated candidates, no pruning; the model after the last epoch
    is scored.
(b) hpo-lstm defaults: run_study (early stopping, memo, median pruning, one worker per core,
    one torch thread each, sliced tensors, fused Adam).
(c) hpo-lstm defaults without pruning: how many epochs pruning saves, and whether it changes
    the best candidate's test RMSE.

Both report validation RMSE of the best candidate and the test RMSE of the best params
retrained once, in ppm, next to the naive forecast. Ends with one key=value line, the
headline (wall-time ratio) first.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hpo_lstm.config import StudyConfig
from hpo_lstm.models import build_model
from hpo_lstm.study import prepare_dataset, run_study



def tutorial_train(params, dataset, max_epochs: int, seed: int):
    torch.manual_seed(seed)
    model = build_model("lstm", params, n_features=dataset.n_features)
    optimizer = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    train = dataset.split("train")
    loader = DataLoader(
        TensorDataset(torch.from_numpy(dataset.x[train]), torch.from_numpy(dataset.y[train])),
        batch_size=64,
        shuffle=True,
    )
    loss_fn = nn.MSELoss()
    for _ in range(max_epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    return model


def tutorial_rmse(model, dataset, split: str) -> float:
    model.eval()
    with torch.no_grad():
        predicted = dataset.to_level(model(torch.from_numpy(dataset.x[dataset.split(split)])).numpy(), split)
    return math.sqrt(float(np.mean((predicted - dataset.actual[dataset.split(split)]) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--pop-size", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--optimizer", default="woa")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        config = StudyConfig(
            optimizer=args.optimizer, budget=args.budget, pop_size=args.pop_size, max_epochs=args.max_epochs,
            seed=args.seed, out=out, name="study-speed",
        )  # fmt: skip
        dataset = prepare_dataset(config)
        test = dataset.split("test")
        naive = math.sqrt(float(np.mean((dataset.last_value[test] - dataset.actual[test]) ** 2)))

        # (a) the tutorial way, torch's default threads.
        threads_default = torch.get_num_threads()
        start = time.perf_counter()

        def evaluate_batch(batch):
            return [tutorial_rmse(tutorial_train(p, dataset, args.max_epochs, args.seed), dataset, "val") for p in batch]

        search = config.make_optimizer().optimize(evaluate_batch, config.space, budget=config.budget, seed=config.seed)
        final = tutorial_train(search.best_params, dataset, args.max_epochs, args.seed)
        tutorial_test = tutorial_rmse(final, dataset, "test")
        tutorial_seconds = time.perf_counter() - start
        print(f"(a) tutorial : {tutorial_seconds:7.1f} s  best val RMSE {search.best_value:.4f}  test RMSE "
              f"{tutorial_test:.4f}  ({threads_default} torch threads, {config.budget} trainings)")  # fmt: skip

        # (b) hpo-lstm defaults; (c) the same without pruning, to show what pruning saves.
        runs = {}
        for label, pruning in (("ours", "median"), ("nopruning", "off")):
            start = time.perf_counter()
            result = run_study(config.replace(pruning=pruning, name=f"study-speed-{pruning}"))
            runs[label] = (time.perf_counter() - start, result, int(result.trials["user_attrs_epochs"].sum()))
        for tag, label in (("(b) hpo-lstm ", "ours"), ("(c) no pruning", "nopruning")):
            seconds, result, epochs = runs[label]
            print(f"{tag}: {seconds:7.1f} s  best val RMSE {result.search.best_value:.4f}  test RMSE "
                  f"{result.final.test['rmse']:.4f}  ({result.n_trained} trained, {result.n_duplicates} memo, "
                  f"{result.n_pruned} pruned, {epochs} epochs trained)")  # fmt: skip
        print(f"naive last value test RMSE {naive:.4f}")
        (ours_seconds, ours, ours_epochs), (off_seconds, off, off_epochs) = runs["ours"], runs["nopruning"]
        print(
            f"ratio={tutorial_seconds / ours_seconds:.2f} baseline_s={tutorial_seconds:.0f} ours_s={ours_seconds:.0f} "
            f"baseline_val_rmse={search.best_value:.4f} ours_val_rmse={ours.search.best_value:.4f} "
            f"baseline_test_rmse={tutorial_test:.4f} ours_test_rmse={ours.final.test['rmse']:.4f} "
            f"naive_test_rmse={naive:.4f} ours_trained={ours.n_trained} ours_pruned={ours.n_pruned} "
            f"pruning_epochs_saved={1 - ours_epochs / off_epochs:.2f} nopruning_s={off_seconds:.0f} "
            f"nopruning_test_rmse={off.final.test['rmse']:.4f}"
        )


if __name__ == "__main__":
    main()
