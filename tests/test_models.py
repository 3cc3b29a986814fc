"""The model registry and the forecasters beyond LSTM/BiLSTM/GRU (cnn-lstm, attention-lstm,
seq2seq): their own searchable parameters, deterministic training, and a saved model that
round-trips through run, compare and forecast; the learning-rate schedule option."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from conftest import write_study

from hpo_lstm import ConfigError, StudyConfig, UnknownNameError, load_forecaster
from hpo_lstm.cli import main
from hpo_lstm.data import load_series, make_dataset
from hpo_lstm.models import build_model, registry
from hpo_lstm.space import MODEL_PARAMS, Param, SearchSpace, default_space
from hpo_lstm.store import StudyRecord
from hpo_lstm.training import TrainSettings, make_adam, make_lr_scheduler, predict, train_candidate

NEW = ("cnn-lstm", "attention-lstm", "seq2seq")
OWN = {"cnn-lstm": ("channels", "kernel_size"), "attention-lstm": ("heads",), "seq2seq": ()}
SMALL = {"learning_rate": 1e-2, "hidden_size": 6, "n_layers": 2, "dropout": 0.1}
LOOKBACK = 8
TINY = [
    "--data",
    "sine",
    "--lookback",
    str(LOOKBACK),
    "--max-epochs",
    "2",
    "--patience",
    "2",
    "--workers",
    "1",
    "--quiet",
    "--budget",
    "2",
    "--pop-size",
    "2",
    "--final",
    "best",
]  # (the network's own forecasts, exactly)
TINY_SPACE = """
[space]
learning_rate = { low = 1e-3, high = 3e-2, log = true }
hidden_size = { low = 4, high = 12 }
n_layers = { low = 1, high = 2 }
"""


@pytest.fixture(scope="module")
def sine():
    return make_dataset(load_series("sine"), lookback=10)


def _own_values(model: str) -> dict[str, int]:
    return {"cnn-lstm": {"channels": 5, "kernel_size": 4}, "attention-lstm": {"heads": 4}}.get(model, {})


# The registry ----------------------------------------------------------------------------------


def test_the_registry_lists_every_model_and_refuses_unknown_names():
    assert list(registry) == ["attention-lstm", "bilstm", "cnn-lstm", "gru", "lstm", "seq2seq"]
    assert {name: tuple(registry[name].params) for name in NEW} == OWN
    with pytest.raises(UnknownNameError, match=r"Unknown model 'cnn'; choose from attention-lstm, bilstm, cnn-lstm, "):
        registry["cnn"]
    with pytest.raises(UnknownNameError, match="Unknown model 'cnn'"):
        StudyConfig(model="cnn")
    for name in registry:  # every model-specific parameter has a search rule with default bounds
        for param, value in registry[name].params.items():
            low, high, _ = MODEL_PARAMS[param].default
            assert low <= value <= high


def test_the_registry_and_model_names_load_no_torch():
    code = (
        "import sys; from hpo_lstm.models import registry; from hpo_lstm.config import StudyConfig; "
        "from hpo_lstm.cli import main; StudyConfig(model='seq2seq', device='cpu'); main(['models']); "
        "print('TORCH', 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "TORCH False" in out


def test_hpo_lstm_models_lists_one_line_per_model(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per model (80 columns: tests/test_cli.py)
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(registry)
    assert "channels 8..64 (32 when not searched), kernel_size 2..7 (3 when not searched)" in lines[2]
    assert "heads 1..4 (2 when not searched)" in lines[0]


# Networks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", NEW)
@pytest.mark.parametrize("horizon", [1, 3])
def test_each_model_maps_windows_to_one_output_per_step(model, horizon):
    net = build_model(model, {**SMALL, **_own_values(model)}, n_features=2, horizon=horizon)
    assert net(torch.zeros(5, 7, 2)).shape == (5, horizon)
    # Its own params shape it; absent ones take the registry's fixed values.
    default = build_model(model, SMALL, n_features=2, horizon=horizon)
    if model == "cnn-lstm":
        assert (net.conv.out_channels, net.conv.kernel_size, net.rnn.input_size) == (5, (4,), 5)
        assert (default.conv.out_channels, default.conv.kernel_size) == (32, (3,))
    if model == "attention-lstm":
        # hidden 6 is no multiple of 4 heads: projected to width 8; 2 heads (the default) take 6 as it is.
        assert (net.attention.num_heads, net.attention.embed_dim) == (4, 8)
        assert (default.attention.num_heads, default.attention.embed_dim) == (2, 6)
    if model == "seq2seq":
        assert net.encoder.num_layers == net.decoder.num_layers == 2 and net.decoder.dropout == pytest.approx(0.1)


def test_the_cnn_lstm_convolution_is_causal():
    torch.manual_seed(0)
    net = build_model("cnn-lstm", {**SMALL, "channels": 3, "kernel_size": 4}, n_features=1).eval()
    x = torch.randn(1, 12, 1)
    conv = lambda v: net.conv(torch.nn.functional.pad(v.transpose(1, 2), (3, 0)))  # noqa: E731
    later = x.clone()
    later[0, 8:, 0] += 5.0  # changes from step 8 on leave the convolution's steps 0..7 alone
    assert torch.equal(conv(x)[..., :8], conv(later)[..., :8]) and not torch.equal(
        conv(x)[..., 8:], conv(later)[..., 8:]
    )
    assert not torch.equal(net(x), net(later))


def test_attention_reads_every_step_as_a_self_attention_layer_read_at_its_last_step():
    torch.manual_seed(0)
    net = build_model("attention-lstm", {**SMALL, "heads": 4}, n_features=1).eval()
    x = torch.randn(3, 12, 1)
    with torch.inference_mode():
        outputs, _ = net.rnn(x)
        z = net.project(outputs)
        attended, weights = net.attention(z, z, z)  # a full self-attention layer, every step's query
        assert torch.allclose(net(x), net.head((z + attended)[:, -1]), atol=1e-6)
        # The last step's attention weighs every step of the window.
        assert weights.shape == (3, 12, 12) and (weights[:, -1] > 0).all()
        assert torch.allclose(weights[:, -1].sum(dim=-1), torch.ones(3))
        # Without the attention the forecast differs: it is not the last output alone.
        assert not torch.allclose(net(x), net.head(z[:, -1]))


def test_the_seq2seq_decoder_emits_the_horizon_step_by_step():
    # The decoder's weights do not depend on the horizon: the same weights emit step 1 alike
    # for H = 1 and H = 3, and steps 2..3 follow from it.
    torch.manual_seed(0)
    three = build_model("seq2seq", SMALL, n_features=1, horizon=3).eval()
    one = build_model("seq2seq", SMALL, n_features=1, horizon=1).eval()
    one.load_state_dict(three.state_dict())
    x = torch.randn(4, 10, 1)
    with torch.inference_mode():
        assert torch.equal(three(x)[:, :1], one(x))
        assert not torch.allclose(three(x)[:, 1], three(x)[:, 0])


@pytest.mark.parametrize("model", NEW)
def test_each_model_trains_deterministically_for_a_seed(sine, model):
    settings = TrainSettings(max_epochs=2, patience=2, batch_size=256)
    params = {"learning_rate": 1e-2, "hidden_size": 8, "n_layers": 1, **_own_values(model)}
    a, kept = train_candidate(model, params, sine, settings, seed=1, keep_model=True)
    b, _ = train_candidate(model, params, sine, settings, seed=1)
    c, _ = train_candidate(model, params, sine, settings, seed=2)
    assert a.status == "ok" and a.val_curve == b.val_curve and a.val_rmse == b.val_rmse
    assert a.val_rmse != c.val_rmse
    pred, actual = predict(kept, sine, "val"), sine.actual[sine.split("val")]
    assert math.sqrt(float(np.mean((pred - actual) ** 2))) == pytest.approx(a.val_rmse, rel=1e-4)


# Search spaces ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(registry))
def test_each_models_default_space_searches_its_own_params_and_decodes_them(model):
    space = default_space(model=model)
    assert space.names == ("learning_rate", "hidden_size", "n_layers", *OWN.get(model, ()))
    assert StudyConfig(model=model, device="cpu").space == space
    rng = np.random.default_rng(0)
    for u in rng.random((50, space.dim)):
        params = space.decode(u)
        assert all(space[name].contains(value) for name, value in params.items())
    assert {space.decode(u).get("heads") for u in np.linspace(0, 1, 21)[:, None].repeat(space.dim, 1)} == (
        {1, 2, 3, 4} if model == "attention-lstm" else {None}
    )


@pytest.mark.parametrize("param", ["channels", "kernel_size", "heads"])
def test_a_param_of_another_model_is_refused(param):
    owner = registry.own_params()[param][0]
    table = {param: {"low": 2, "high": 4}}
    assert param in default_space(table, model=owner)
    for model in sorted(set(registry) - {owner}):
        message = (
            f"Search parameter '{param}' is taken by {owner} only, not by model '{model}'; remove it from the space."
        )
        with pytest.raises(ConfigError) as info:
            StudyConfig.from_mapping({"model": model, "space": table})
        assert str(info.value) == message
        with pytest.raises(ConfigError, match=message):  # a hand-built space too
            StudyConfig(model=model, space=SearchSpace([Param(name=param, low=2, high=4, integer=True)]))


def test_a_space_follows_its_model_and_one_configuration_fixes_the_models_own_params():
    cnn = StudyConfig(model="cnn-lstm", device="cpu")
    assert cnn.replace(model="lstm").space == default_space()  # built again for the new model
    assert cnn.replace(model="attention-lstm").space == default_space(model="attention-lstm")
    narrowed = StudyConfig.from_mapping({"model": "cnn-lstm", "space": {"channels": {"low": 4, "high": 6}}})
    assert (narrowed.space["channels"].low, narrowed.space["channels"].high) == (4, 6)
    assert narrowed.space["kernel_size"] == default_space(model="cnn-lstm")["kernel_size"]
    # Every shared parameter fixed (a comparison's untuned cells): the model's own ones are fixed too.
    fixed = {k: {"low": v, "high": v} for k, v in {"learning_rate": 1e-3, "hidden_size": 50, "n_layers": 2}.items()}
    space = StudyConfig(model="cnn-lstm", space=default_space(fixed), device="cpu").space
    assert {p.name: (p.low, p.high) for p in space.params if p.name in ("channels", "kernel_size")} == {
        "channels": (32, 32),
        "kernel_size": (3, 3),
    }
    # The identity of a study of the existing models is what it was.
    assert StudyConfig().identity()["space"] == {
        "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True, "integer": False},
        "hidden_size": {"low": 8, "high": 256, "log": True, "integer": True},
        "n_layers": {"low": 1, "high": 4, "log": False, "integer": True},
    }


def test_a_study_file_searching_a_foreign_param_is_one_line_and_exit_2(tmp_path: Path, capsys):
    study = write_study(tmp_path / "s.toml", 'model = "lstm"\n[space]\nkernel_size = { low = 2, high = 5 }\n')
    assert main(["run", str(study), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "hpo-lstm: error: Search parameter 'kernel_size' is taken by cnn-lstm only, not by model 'lstm'; "
        "remove it from the space.\n"
    )
    assert not (tmp_path / "hpo-lstm.db").exists()
    # The same file is fine for the model that takes it.
    assert StudyConfig.from_file(study, model="cnn-lstm").space["kernel_size"].high == 5


# Saved models: run, compare, forecast ----------------------------------------------------------


def _check_reproduces(forecaster, recorded: pd.DataFrame) -> None:
    """The reloaded model predicts the recorded test windows (row-numbered sine) bit for bit."""
    frame = pd.DataFrame({"y": load_series("sine").values[:, 0]})
    first = int(recorded["time"].iloc[0]) - 1 - forecaster.lookback
    again = forecaster.predict(frame.iloc[first:].reset_index(drop=True))
    again["time"] += first
    assert again["time"].tolist() == recorded["time"].tolist()
    assert again["step"].tolist() == recorded["step"].tolist()
    assert np.array_equal(again["predicted"].to_numpy(), np.asarray(recorded["predicted"], dtype=float))


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    """cnn-lstm, attention-lstm and seq2seq compared on the sine at horizon 3 (tuned + untuned)."""
    tmp = tmp_path_factory.mktemp("models-compare")
    study = write_study(tmp / "cmp.toml", 'name = "m"\nbatch_size = 256\n' + TINY_SPACE)
    args = [
        "compare",
        str(study),
        *TINY,
        "--horizon",
        "3",
        "--models",
        ",".join(NEW),
        "--optimizers",
        "random",
        "--seeds",
        "1",
        "--out",
        str(tmp / "out"),
    ]
    assert main(args) == 0
    return tmp / "out" / "m"


@pytest.mark.parametrize("model", NEW)
def test_a_compared_model_round_trips_and_forecasts_at_horizon_3(comparison: Path, model):
    url = json.loads((comparison / "compare.json").read_text())["storage"]
    for cell, kind in ((f"{model}.random.0", "tuned"), (f"{model}.untuned.0", "untuned")):
        forecaster = load_forecaster(comparison, cell=cell)
        card = forecaster.card
        assert card["model"] == model and forecaster.horizon == 3
        assert set(OWN[model]) <= set(card["params"])
        if kind == "untuned":
            assert {k: card["params"][k] for k in OWN[model]} == dict(registry[model].params)
        study = optuna.load_study(study_name=card["study_name"], storage=url)
        assert all(set(OWN[model]) <= set(t.params) for t in study.trials)  # searched (tuned) or fixed (untuned)
        _check_reproduces(forecaster, pd.DataFrame(StudyRecord(study, study._storage, url).final[1]))
        forecast = forecaster.forecast(steps=5)  # steps 1..3 from the model, 4..5 recursively
        assert forecast["time"].tolist() == [3000, 3001, 3002, 3003, 3004]
        assert np.isfinite(forecast.drop(columns="time").to_numpy()).all()
    report = (comparison / "report.md").read_text()
    assert model in report


@pytest.mark.parametrize("model", NEW)
def test_a_run_saves_a_model_that_forecasts_from_the_cli(tmp_path: Path, model):
    study = write_study(tmp_path / "s.toml", 'name = "one"\nbatch_size = 256\n' + TINY_SPACE)
    out = tmp_path / "out"
    assert main(["run", str(study), *TINY, "--optimizer", "random", "--model", model, "--out", str(out)]) == 0
    folder = out / "one"
    forecaster = load_forecaster(folder)
    assert forecaster.card["model"] == model and forecaster.horizon == 1
    _check_reproduces(forecaster, pd.read_csv(folder / "predictions.csv", float_precision="round_trip"))
    assert main(["forecast", str(folder), "--steps", "4", "--quiet"]) == 0
    written = pd.read_csv(folder / "forecast" / "forecast.csv", float_precision="round_trip")
    pd.testing.assert_frame_equal(written, forecaster.forecast(steps=4), check_exact=True, check_dtype=False)


def test_a_card_naming_an_unknown_model_is_refused_in_one_line(comparison: Path, tmp_path: Path):
    from hpo_lstm.store.model_store import ModelFileError, read_model_folder, write_model_folder

    forecaster = load_forecaster(comparison, cell="seq2seq.random.0")
    card, weights = (
        dict(forecaster.card),
        {k: v.detach().numpy() for k, v in forecaster._networks[0][1].state_dict().items()},
    )
    write_model_folder(tmp_path / "model", {**card, "model": "transformer"}, weights)
    with pytest.raises(ModelFileError, match=r"unknown model 'transformer' \(this hpo-lstm has attention-lstm, "):
        load_forecaster(tmp_path / "model")
    assert read_model_folder(tmp_path / "model")[0]["model"] == "transformer"


# The learning-rate schedule ---------------------------------------------------------------------


def test_plateau_halves_the_learning_rate_when_validation_stalls():
    model = torch.nn.Linear(1, 1)
    settings = TrainSettings(patience=5, lr_schedule="plateau")
    optimizer = make_adam(model, 0.01, "cpu")
    scheduler = make_lr_scheduler(optimizer, settings)
    rates = []
    for val_rmse in (1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85):
        scheduler.step(val_rmse)
        rates.append(optimizer.param_groups[0]["lr"])
    # patience 5 -> halved after the 2nd epoch without a new best, then after 2 more; a new best resets.
    assert rates == [0.01, 0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025, 0.0025]
    assert make_lr_scheduler(optimizer, TrainSettings()) is None


def test_the_plateau_option_changes_training_and_is_part_of_the_study(sine):
    params = {"learning_rate": 0.3, "hidden_size": 8, "n_layers": 1}  # a rate that stalls early
    constant, _ = train_candidate(
        "lstm", params, sine, TrainSettings(max_epochs=12, patience=4, batch_size=128), seed=0
    )
    plateau, _ = train_candidate(
        "lstm", params, sine, TrainSettings(max_epochs=12, patience=4, batch_size=128, lr_schedule="plateau"), seed=0
    )
    assert constant.final_learning_rate == 0.3
    assert plateau.final_learning_rate < 0.3
    first_cut = next(i for i, (a, b) in enumerate(zip(constant.val_curve, plateau.val_curve)) if a != b)
    assert first_cut > 0  # the same until the rate is lowered
    config = StudyConfig(lr_schedule="plateau", device="cpu")
    assert config.identity()["lr_schedule"] == "plateau" and "lr_schedule" not in StudyConfig().identity()
    assert TrainSettings.from_config(config, "cpu").lr_schedule == "plateau"
    with pytest.raises(ConfigError, match=r"Unknown `lr_schedule` 'cosine'; choose from constant, plateau\."):
        StudyConfig(lr_schedule="cosine")


def test_the_lr_schedule_flag_and_key(tmp_path: Path, capsys):
    assert main(["run", "--lr-schedule", "slow", "--out", str(tmp_path), "--quiet"]) == 2
    assert capsys.readouterr().err == "hpo-lstm: error: Unknown --lr-schedule 'slow'; choose from constant, plateau.\n"
    study = write_study(tmp_path / "s.toml", 'lr_schedule = "plateau"\n')
    assert StudyConfig.from_file(study).lr_schedule == "plateau"
