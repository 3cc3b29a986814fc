"""The final forecast: candidates recomputed from predictions.csv, a choice made on validation
only, saved ensembles and combinations that forecast past the data and reload bit for bit, and
resume and report rebuilding them. Real trainings on tiny data, real statsforecast fits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SPACE, write_study

from hpo_lstm import DataError, load_forecaster
from hpo_lstm.cli import main
from hpo_lstm.ensemble import Candidate, choose_final

RUN = [
    "--lookback",
    "8",
    "--max-epochs",
    "3",
    "--patience",
    "2",
    "--workers",
    "1",
    "--quiet",
    "--optimizer",
    "random",
    "--budget",
    "6",
    "--pop-size",
    "3",
    "--top-k",
    "3",
]


def _run(tmp_path: Path, name: str, *extra: str, data: str = "sine", out: str = "out") -> Path:
    study = write_study(tmp_path / f"{name}.toml", f'name = "{name}"\nbatch_size = 128\n' + TINY_SPACE)
    assert main(["run", str(study), "--data", data, *RUN, "--out", str(tmp_path / out), *extra]) == 0
    return tmp_path / out / name


def _predictions(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "predictions.csv", float_precision="round_trip")


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


# The choice ----------------------------------------------------------------------------------------


def _forecasts(seed: int, n: int = 60) -> tuple[np.ndarray, list, list, dict, dict]:
    rng = np.random.default_rng(seed)
    actual = rng.normal(size=(n, 1)).cumsum(axis=0)
    nets = [actual + rng.normal(scale=s, size=actual.shape) for s in (0.5, 0.6, 0.7)]
    stats = {
        "auto_ets": actual + rng.normal(scale=0.55, size=actual.shape),
        "auto_arima": actual + rng.normal(scale=0.65, size=actual.shape),
    }
    return actual, nets, nets, stats, stats


def test_auto_takes_the_lowest_validation_rmse_and_no_choice_reads_test_values():
    val_actual, nets_val, _, stats_val, _ = _forecasts(1)
    test_actual, _, nets_test, _, stats_test = _forecasts(2)
    final = choose_final(nets_val, nets_test, stats_val, stats_test, val_actual, test_actual, rule="auto")
    kinds = {c.kind for c in final.candidates}
    assert kinds == {"best", "top_k_mean", "combination", "combination_equal", "combination_fitted"}
    assert final.chosen.val_rmse == min(c.val_rmse for c in final.candidates)
    # Only the test values change: the same candidates, weights and choice; other test RMSEs.
    other = choose_final(nets_val, nets_test, stats_val, stats_test, val_actual, test_actual + 5.0, rule="auto")
    assert [(c.kind, c.members, c.weights, c.val_rmse) for c in other.candidates] == [
        (c.kind, c.members, c.weights, c.val_rmse) for c in final.candidates
    ]
    assert other.chosen.kind == final.chosen.kind
    assert [c.test_rmse for c in other.candidates] != [c.test_rmse for c in final.candidates]
    fitted = next(c for c in final.candidates if c.kind == "combination_fitted")
    assert min(fitted.weights) >= 0 and sum(fitted.weights) == pytest.approx(1.0, abs=1e-9)
    equal = next(c for c in final.candidates if c.kind == "combination_equal")
    assert sum(w for m, w in zip(equal.members, equal.weights) if m.startswith("network")) == pytest.approx(1 / 3)


def test_the_default_weighs_the_network_mean_and_the_statistical_models_by_inverse_validation_mse():
    actual, nets, _, stats, _ = _forecasts(4)
    final = choose_final(nets, nets, stats, stats, actual, actual)  # the default rule: "combination"
    assert final.rule == "combination" and final.chosen.kind == "combination"
    mean = sum(nets) / 3
    inverse = np.array([1 / np.mean((actual - f) ** 2) for f in (mean, stats["auto_ets"], stats["auto_arima"])])
    expected = inverse / inverse.sum()
    weights = dict(zip(final.chosen.members, final.chosen.weights))
    assert sum(weights[f"network_{i}"] for i in (1, 2, 3)) == pytest.approx(expected[0], rel=1e-12)
    assert (weights["auto_ets"], weights["auto_arima"]) == pytest.approx(tuple(expected[1:]), rel=1e-12)


def test_best_builds_no_other_candidate_and_a_forced_kind_is_taken():
    actual, nets, _, stats, _ = _forecasts(3)
    best = choose_final(nets, nets, stats, stats, actual, actual, rule="best")
    assert [c.kind for c in best.candidates] == ["best"] and best.chosen.members == ("network_1",)
    forced = choose_final(nets, nets, stats, stats, actual, actual, rule="combination_equal")
    assert forced.chosen.kind == "combination_equal"
    alone = choose_final(nets[:1], nets[:1], {}, {}, actual, actual, rule="combination_equal")
    assert alone.chosen.kind == "best"  # nothing to combine with: the best network
    assert Candidate("x", ("a", "b"), (0.25, 0.75), 0.0).combine({"a": np.ones(2), "b": np.zeros(2)}).tolist() == [
        0.25,
        0.25,
    ]


# A real run -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("ensemble"), "auto")


def test_every_candidate_recomputes_from_predictions_csv(auto_run: Path):
    summary, predictions = _summary(auto_run), _predictions(auto_run)
    final = summary["final_forecast"]
    assert final["chosen_on"] == "validation" and final["kind"] in final["candidates"]
    assert {"network_1", "network_2", "network_3"} <= set(predictions.columns)  # --top-k 3
    actual = predictions["actual"].to_numpy()
    for candidate in final["candidates"].values():
        combined = sum(w * predictions[m].to_numpy() for m, w in zip(candidate["members"], candidate["weights"]))
        rmse = float(np.sqrt(np.mean((actual - combined) ** 2)))
        assert rmse == pytest.approx(candidate["test_rmse"], rel=1e-12)
    chosen = final["candidates"][final["kind"]]
    recomputed = sum(w * predictions[m].to_numpy() for m, w in zip(chosen["members"], chosen["weights"]))
    np.testing.assert_allclose(predictions["predicted"].to_numpy(), recomputed, rtol=1e-12, atol=1e-12)
    assert summary["test"]["rmse"] == pytest.approx(chosen["test_rmse"], rel=1e-12)
    assert final["candidates"]["best"]["val_rmse"] == pytest.approx(summary["best_val_rmse"], rel=1e-5)


def test_changing_only_the_test_split_changes_no_choice(tmp_path: Path, tiny_csv: Path):
    csv = ["--target", "close"]
    first = _run(tmp_path, "a", *csv, data=str(tiny_csv), out="a")
    frame = pd.read_csv(tiny_csv)
    frame.loc[len(frame) - 10 :, "close"] += 7.5  # the last 10 of 240 rows: inside the test split (the last 36)
    changed = tmp_path / "changed.csv"
    frame.to_csv(changed, index=False)
    second = _run(tmp_path, "a", *csv, data=str(changed), out="b")
    one, two = _summary(first)["final_forecast"], _summary(second)["final_forecast"]
    assert (two["kind"], two["members"], two["weights"]) == (one["kind"], one["members"], one["weights"])
    assert {k: c["val_rmse"] for k, c in two["candidates"].items()} == {
        k: c["val_rmse"] for k, c in one["candidates"].items()
    }
    assert _summary(second)["test"]["rmse"] != _summary(first)["test"]["rmse"]


# Saved ensembles and combinations ---------------------------------------------------------------


@pytest.fixture(scope="module")
def combined_run(tmp_path_factory) -> Path:
    """A combination of the 3 best networks, AutoETS and AutoARIMA, whatever validation says."""
    return _run(tmp_path_factory.mktemp("combined"), "combo", "--final", "combination_equal")


def test_a_saved_combination_forecasts_past_the_data_and_reloads_bit_for_bit(combined_run: Path):
    summary = _summary(combined_run)
    assert summary["final_forecast"]["kind"] == "combination_equal"
    forecaster = load_forecaster(combined_run)
    assert forecaster.final_kind == "combination_equal"
    assert set(forecaster.weights) == {"network_1", "network_2", "network_3", "auto_ets", "auto_arima"}
    forecast = forecaster.forecast(7)
    assert np.isfinite(forecast.drop(columns="time").to_numpy()).all()
    assert forecast["time"].tolist() == list(range(3000, 3007))  # the sine's rows continue
    again = load_forecaster(combined_run).forecast(7)
    pd.testing.assert_frame_equal(again, forecast, check_exact=True)
    url = summary["storage"]
    stored = load_forecaster(storage=url, study_name="combo").forecast(7)
    pd.testing.assert_frame_equal(stored, forecast, check_exact=True)
    # Its intervals are the combination's own: from its validation residuals.
    half = (forecast["upper_80"] - forecast["forecast"]).to_numpy()
    assert half[0] == pytest.approx(forecaster.card["intervals"]["80"][0], rel=1e-12)


def test_a_logdiff_combination_refuses_in_one_line_to_read_back_a_forecast_below_zero(tmp_path: Path, capsys):
    # A positive series falling in a straight line: the statistical members' trend goes below
    # zero after the data, where the networks' log cannot read the combination back.
    t = np.arange(240)
    values = 100_000 - 410 * t + np.random.default_rng(3).normal(0, 300, len(t))
    csv = tmp_path / "falling.csv"
    pd.DataFrame({"y": values}).to_csv(csv, index=False)
    folder = _run(tmp_path, "falling", "--final", "combination_equal", "--transform", "logdiff", data=str(csv))
    forecaster = load_forecaster(folder)
    assert forecaster.transform == "logdiff" and {"auto_ets", "auto_arima"} <= set(forecaster.weights)
    assert np.all(forecaster.forecast(1)["forecast"] > 0)
    with pytest.raises(DataError, match=r"The forecast reaches -?[\d.e+]+ at step \d+, at or below zero") as info:
        forecaster.forecast(1000)
    assert "\n" not in str(info.value)
    step, most = (int(n) for n in re.search(r"at step (\d+),.* at most (\d+) step", str(info.value)).groups())
    forecast = forecaster.forecast(most)["forecast"].to_numpy()  # as far as it goes, the same numbers
    assert forecast[step - 1] <= 0 and np.all(forecast[: step - 1] > 0)
    assert main(["forecast", str(folder), "--steps", "1000", "--quiet"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    # Data given later is checked whole (its statistical members read the whole column), its row named.
    frame = pd.read_csv(csv)
    frame.loc[100, "y"] = -3.0
    for call in (lambda: forecaster.forecast(3, frame), lambda: forecaster.predict(frame)):
        with pytest.raises(DataError, match=r"needs target values above zero; row 100 of the data holds -3 "):
            call()
    # The run's table names the transform it used.
    from hpo_lstm.cli import _print_summary

    _print_summary(_summary(folder), folder)
    assert "-> horizon 1, transform logdiff;" in " ".join(capsys.readouterr().out.split())


def test_hpo_lstm_forecast_names_the_combination_it_forecasts_with(combined_run: Path, tmp_path: Path, capsys):
    from hpo_lstm.cli import main

    assert main(["forecast", str(combined_run), "--steps", "3", "--out", str(tmp_path / "fc")]) == 0
    printed = capsys.readouterr().out
    assert "model: equal combination (3 lstm " in printed and "AutoETS" in printed and "AutoARIMA" in printed


def test_a_saved_combination_reproduces_its_test_predictions(combined_run: Path):
    forecaster = load_forecaster(combined_run)
    recorded = _predictions(combined_run)
    again = forecaster.predict("sine")
    again = again[again["time"] >= recorded["time"].iloc[0]].reset_index(drop=True)
    for network in ("network_1", "network_2", "network_3"):  # each network bit for bit
        np.testing.assert_array_equal(again[network].to_numpy(), recorded[network].to_numpy())
    for name in ("auto_ets", "auto_arima", "predicted"):  # the statistical models ran in the pinned fit processes
        np.testing.assert_allclose(again[name].to_numpy(), recorded[name].to_numpy(), rtol=1e-12, atol=1e-12)
    # From a later part of the same data too: the statistical models' filter starts at the study's first row.
    frame = pd.DataFrame({"y": np.asarray(load_forecaster(combined_run)._target_history)})
    part = forecaster.predict(frame.iloc[2000:].reset_index(drop=True))
    part["time"] += 2000
    joined = recorded.merge(part, on=["time", "step"], suffixes=("_recorded", ""))
    assert len(joined) == len(recorded)
    np.testing.assert_allclose(joined["predicted"], joined["predicted_recorded"], rtol=1e-12, atol=1e-12)


def test_the_first_forecast_step_is_the_prediction_of_the_last_window(combined_run: Path):
    forecaster = load_forecaster(combined_run)
    history = np.asarray(forecaster._target_history)
    frame = pd.DataFrame({"y": np.r_[history[-20:], history[-1]]})  # one more row: any value
    last = forecaster.predict(frame)["predicted"].iloc[-1]
    assert last == pytest.approx(forecaster.forecast(1)["forecast"].iloc[0], rel=1e-12)


def test_report_and_a_second_run_rebuild_the_same_final_forecast(combined_run: Path):
    before = {name: (combined_run / name).read_bytes() for name in ("summary.json", "predictions.csv", "report.md")}
    card = (combined_run / "model" / "model.json").read_bytes()
    assert main(["report", str(combined_run), "--quiet"]) == 0
    assert {name: (combined_run / name).read_bytes() for name in before} == before
    assert (combined_run / "model" / "model.json").read_bytes() == card
    # The same command again: the study is complete, nothing trains, the same files.
    study = combined_run.parent.parent / "combo.toml"
    assert (
        main(
            [
                "run",
                str(study),
                "--data",
                "sine",
                *RUN,
                "--out",
                str(combined_run.parent),
                "--final",
                "combination_equal",
            ]
        )
        == 0
    )
    assert {name: (combined_run / name).read_bytes() for name in before} == before


def test_final_best_keeps_the_bare_network(tmp_path: Path):
    folder = _run(tmp_path, "bare", "--final", "best")
    summary, predictions = _summary(folder), _predictions(folder)
    assert summary["final_forecast"]["kind"] == "best" and list(summary["final_forecast"]["candidates"]) == ["best"]
    np.testing.assert_array_equal(predictions["predicted"].to_numpy(), predictions["network_1"].to_numpy())
    assert "final_forecast" not in json.loads((folder / "model" / "model.json").read_text())


def test_a_statistical_model_rebuilt_from_its_state_forecasts_as_the_fitted_one():
    from statsforecast.models import AutoARIMA, AutoETS

    from hpo_lstm.baselines import _arima_forecasts, arima_state, ets_state, forecast_from_state, forecasts_from_state

    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=300)) + 10 * np.sin(np.arange(300) * 2 * np.pi / 12) + 100
    for cls, state in ((AutoARIMA, arima_state), (AutoETS, ets_state)):
        fitted = cls(season_length=12).fit(y[:250])
        plain = json.loads(json.dumps(state(fitted.model_)))  # as a model card holds it
        np.testing.assert_array_equal(forecast_from_state(plain, y, 9), fitted.forward(y=y, h=9)["mean"])
    # Constant terms beside MA and seasonal terms: a card holds the coefficients sorted by name
    # (intercept and drift before ma1); statsforecast reads them by position.
    from statsforecast.models import ARIMA

    level = 50 + np.convolve(rng.normal(size=400), [1.0, 0.6], mode="same")
    for fit, series in (
        (ARIMA(order=(1, 0, 1), include_mean=True), level),
        (ARIMA(order=(0, 1, 1), include_drift=True), np.cumsum(level - 49.5)),
        (ARIMA(order=(1, 0, 0), seasonal_order=(1, 0, 1), season_length=7, include_mean=True), level),
    ):
        fitted = fit.fit(series[:300])
        assert list(fitted.model_["coef"]) != sorted(fitted.model_["coef"])  # the case a sorted card gets wrong
        card = json.loads(json.dumps(arima_state(fitted.model_), sort_keys=True))
        np.testing.assert_array_equal(forecast_from_state(card, series, 9), fitted.forward(y=series, h=9)["mean"])
    # A trend with drift (AutoARIMA's "with drift"): the drift column is part of the state.
    trend = np.cumsum(5 + rng.normal(size=120))
    fitted = AutoARIMA().fit(trend[:100])
    assert "drift" in fitted.model_["coef"]
    plain = json.loads(json.dumps(arima_state(fitted.model_)))
    np.testing.assert_array_equal(forecast_from_state(plain, trend, 9), fitted.forward(y=trend, h=9)["mean"])
    origins = np.arange(99, 110)  # as the study forecast its test points, and as per-origin forward does
    rebuilt = forecasts_from_state(plain, trend, origins, 3)
    np.testing.assert_array_equal(rebuilt, _arima_forecasts(fitted, trend, origins, 3, 100))
    np.testing.assert_allclose(rebuilt, np.stack([fitted.forward(y=trend[: t + 1], h=3)["mean"] for t in origins]))


def test_a_seasonal_arima_forecasts_a_window_the_same_whichever_other_windows_are_asked_for():
    # A saved model's predict() asks for every window of the series; the study asked for the test
    # windows only. Early windows, where the filter has not settled, need statsforecast's own
    # forward; that must not change the later windows' forecasts.
    from statsforecast.models import ARIMA

    from hpo_lstm.baselines import _arima_forecasts

    rng = np.random.default_rng(1)
    t = np.arange(240)
    y = (100 + 0.3 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 2, len(t))
    fitted = ARIMA(order=(1, 1, 1), seasonal_order=(0, 1, 1), season_length=12).fit(y[:200])
    test = np.arange(200, 237)
    every = _arima_forecasts(fitted, y, np.arange(30, 237), 3, 200)
    np.testing.assert_array_equal(every[-len(test) :], _arima_forecasts(fitted, y, test, 3, 200))
    np.testing.assert_allclose(every[:5], np.stack([fitted.forward(y=y[: o + 1], h=3)["mean"] for o in range(30, 35)]))


def test_statistical_members_get_the_rows_they_need_or_a_one_line_refusal(tmp_path: Path, capsys):
    from statsforecast.models import ARIMA

    from hpo_lstm.baselines import arima_state, forecast_from_state, state_min_rows

    # The rule is statsforecast's own: an ARIMA filters more values than its differencing reads.
    rng = np.random.default_rng(5)
    t = np.arange(240)
    y = 100 + 0.2 * t + 8 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, len(t))
    fitted = ARIMA(order=(1, 1, 0), seasonal_order=(0, 1, 1), season_length=12).fit(y)
    state = json.loads(json.dumps(arima_state(fitted.model_)))
    need = state_min_rows(state)
    assert need == 1 + 12 + 1 and state_min_rows(state, one_pass=True) == 1
    assert np.isfinite(forecast_from_state(state, y[-need:], 3)).all()
    with pytest.raises(ValueError, match="Not enough data"):
        forecast_from_state(state, y[-need + 1 :], 3)
    assert state_min_rows({"kind": "seasonal_naive", "season": 7}) == 7

    # A saved model with a seasonal AutoARIMA: data too short for it is one line; predict() leaves
    # out the windows it cannot forecast from and still reproduces the study's test predictions.
    csv = tmp_path / "monthly.csv"
    dates = pd.date_range("2000-01-01", periods=len(t), freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame({"date": dates, "y": y}).to_csv(csv, index=False)
    folder = _run(tmp_path, "monthly", "--final", "combination_equal", "--horizon", "2", data=str(csv))
    forecaster = load_forecaster(folder)
    arima = next(m["state"] for m in forecaster.card["final_forecast"]["members"] if m["name"] == "auto_arima")
    need = state_min_rows(arima)
    assert need > 10, arima["arma"]  # a seasonal difference: more than the networks' 9 rows
    fresh = pd.DataFrame({"date": pd.date_range("2030-01-01", periods=10, freq="MS"), "y": 500 + y[:10]})
    with pytest.raises(
        DataError, match=rf"gives 10 target values to this model's AutoARIMA member, which needs at least {need};"
    ):
        forecaster.forecast(3, fresh)
    longer = pd.DataFrame({"date": pd.date_range("2030-01-01", periods=12, freq="MS"), "y": 500 + y[:12]})
    with pytest.raises(
        DataError, match=rf"gives 10 target values to this model's AutoARIMA member, which needs at least {need};"
    ):
        forecaster.predict(longer)  # two-step windows of 12 rows: the last origin reads 10 values
    assert main(["forecast", str(folder), "--steps", "3", "--data", str(_write(tmp_path / "fresh.csv", fresh))]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    predicted = forecaster.predict(str(csv))
    first = pd.Timestamp(predicted["time"].iloc[0])
    assert first == pd.Timestamp(dates[need])  # the window from row need - 1 is the first one kept
    recorded = _predictions(folder)
    predicted["time"] = pd.to_datetime(predicted["time"]).astype(str)
    recorded["time"] = pd.to_datetime(recorded["time"]).astype(str)
    again = predicted.merge(recorded, on=["time", "step"], suffixes=("", "_study"))
    assert len(again) == len(recorded)
    np.testing.assert_array_equal(again["predicted"].to_numpy(), again["predicted_study"].to_numpy())


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path
