from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpo_lstm.data import load_series, make_dataset
from hpo_lstm.models import build_model
from hpo_lstm.training import TrainSettings, predict, train_candidate


@pytest.fixture(scope="module")
def sine():
    return make_dataset(load_series("sine"), lookback=10)


@pytest.mark.parametrize(("model", "directions"), [("lstm", 1), ("bilstm", 2), ("gru", 1)])
def test_models_take_their_sizes_from_the_data_and_params(model, directions):
    net = build_model(model, {"hidden_size": 6, "n_layers": 2, "dropout": 0.2}, n_features=3)
    assert net.rnn.input_size == 3 and net.rnn.hidden_size == 6 and net.rnn.num_layers == 2
    assert net.rnn.bidirectional == (directions == 2)
    assert net.rnn.dropout == pytest.approx(0.2)
    assert net.head.in_features == 6 * directions
    assert net(torch.zeros(5, 7, 3)).shape == (5, 1)
    multi = build_model(model, {"hidden_size": 6, "n_layers": 1}, n_features=3, horizon=4)
    assert multi(torch.zeros(5, 7, 3)).shape == (5, 4)  # one output per forecast step


def test_bilstm_head_sees_the_whole_window():
    # The backward direction's final state has read the first step: changing it changes the output.
    torch.manual_seed(0)
    net = build_model("bilstm", {"hidden_size": 4, "n_layers": 1}, n_features=1).eval()
    x = torch.randn(1, 12, 1)
    y = x.clone()
    y[0, 0, 0] += 5.0
    assert not torch.allclose(net(x), net(y))


def test_training_is_deterministic_for_a_seed_and_returns_the_best_epoch(sine):
    settings = TrainSettings(max_epochs=3, patience=3, batch_size=128)
    params = {"learning_rate": 1e-2, "hidden_size": 8, "n_layers": 1}
    a, model = train_candidate("lstm", params, sine, settings, seed=1, keep_model=True)
    b, _ = train_candidate("lstm", params, sine, settings, seed=1)
    c, _ = train_candidate("lstm", params, sine, settings, seed=2)
    assert a.val_rmse == b.val_rmse and a.val_curve == b.val_curve
    assert a.val_rmse != c.val_rmse
    assert a.val_rmse == min(a.val_curve) and a.val_curve[a.best_epoch - 1] == a.val_rmse
    # The kept model holds the best epoch's weights: its val RMSE is the fitness.
    pred = predict(model, sine, "val")
    actual = sine.actual[sine.split("val")]
    assert math.sqrt(float(np.mean((pred - actual) ** 2))) == pytest.approx(a.val_rmse, rel=1e-4)
    # Training does not touch torch's global generator.
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    train_candidate("lstm", params, sine, TrainSettings(max_epochs=1), seed=5)
    assert torch.equal(torch.rand(1), expected)


def test_a_multi_step_fitness_is_the_rmse_over_every_step_in_series_units():
    ds = make_dataset(load_series("sine"), lookback=10, horizon=3)
    result, model = train_candidate(
        "lstm",
        {"learning_rate": 1e-2, "hidden_size": 8, "n_layers": 1},
        ds,
        TrainSettings(max_epochs=3, batch_size=128),
        seed=1,
        keep_model=True,
    )
    pred = predict(model, ds, "val")
    actual = ds.actual[ds.split("val")]
    assert pred.shape == actual.shape == (ds.n_windows("val"), 3)
    assert math.sqrt(float(np.mean((pred - actual) ** 2))) == pytest.approx(result.val_rmse, rel=1e-4)


def test_early_stopping_stops_after_patience(sine):
    # A wild learning rate overshoots; training stops once `patience` epochs bring no new best.
    wild, _ = train_candidate(
        "lstm",
        {"learning_rate": 0.5, "hidden_size": 16, "n_layers": 1},
        sine,
        TrainSettings(max_epochs=30, patience=2, batch_size=256),
        seed=0,
    )
    assert wild.epochs < 30
    assert wild.epochs - wild.best_epoch == 2
    assert all(v >= wild.val_rmse for v in wild.val_curve[wild.best_epoch :])


def test_jobs_start_cheap_ones_first_then_largest_first_and_outcomes_keep_their_index(sine):
    from hpo_lstm.executors._local import LocalExecutor
    from hpo_lstm.jobs import TrainJob, dispatch_order

    settings = TrainSettings(max_epochs=2, patience=2)
    params = [(8, 1), (48, 2), (16, 1), (48, 1)]
    jobs = [
        TrainJob("lstm", {"learning_rate": 1e-2, "hidden_size": h, "n_layers": n}, settings, seed=0) for h, n in params
    ]
    jobs.append(TrainJob("bilstm", {"learning_rate": 1e-2, "hidden_size": 48, "n_layers": 2}, settings, seed=0))
    # Costs (hidden 8 < 16 < 48 < 48x2 < BiLSTM 48x2): the first two are under a tenth of the
    # mean, so they start first; the rest largest first. One slot: cheapest first.
    assert dispatch_order(jobs, 2) == [0, 2, 4, 1, 3]
    assert dispatch_order(jobs, 1) == [0, 2, 3, 1, 4]
    assert dispatch_order([jobs[1], jobs[3], jobs[4]], 2) == [2, 0, 1]  # no cheap job: largest first
    with LocalExecutor(dataset=sine, workers=2, device="cpu") as pool:
        parallel = dict(pool.map(jobs))
    with LocalExecutor(dataset=sine, workers=1, device="cpu") as pool:
        serial = dict(pool.map(jobs))
    assert sorted(parallel) == list(range(5))
    assert {i: r.val_rmse for i, r in parallel.items()} == {i: r.val_rmse for i, r in serial.items()}
