from __future__ import annotations

import math

import numpy as np
import pytest

from hpo_lstm import ConfigError
from hpo_lstm.space import Param, SearchSpace, default_space


def test_default_space_has_the_three_required_params_with_log_learning_rate():
    space = default_space()
    assert space.names == ("learning_rate", "hidden_size", "n_layers")
    lr = space["learning_rate"]
    assert (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 1e-1, True, False)
    assert (space["hidden_size"].low, space["hidden_size"].high, space["hidden_size"].integer) == (8, 256, True)
    assert space["hidden_size"].log
    assert (space["n_layers"].low, space["n_layers"].high) == (1, 4)


def test_log_param_is_uniform_in_log_space():
    p = Param(name="lr", low=1e-4, high=1e-1, log=True)
    assert p.decode(0.0) == pytest.approx(1e-4)
    assert p.decode(1.0) == pytest.approx(1e-1)
    assert p.decode(0.5) == pytest.approx(math.sqrt(1e-4 * 1e-1))  # geometric middle
    assert p.decode(1 / 3) == pytest.approx(1e-3)


@pytest.mark.parametrize("log", [False, True])
def test_integer_bins_are_equal_width_and_cover_both_ends(log):
    p = Param(name="n", low=1, high=4, log=log, integer=True)
    u = np.linspace(0, 1, 100001)
    values = np.array([p.decode(x) for x in u])
    assert set(values) == {1, 2, 3, 4}
    if not log:
        shares = np.bincount(values)[1:] / len(values)
        assert np.allclose(shares, 0.25, atol=1e-3)


def test_encode_decode_round_trip():
    space = SearchSpace(
        [
            Param(name="lr", low=1e-5, high=1.0, log=True),
            Param(name="h", low=8, high=256, integer=True),
            Param(name="hl", low=8, high=256, integer=True, log=True),
            Param(name="d", low=0.0, high=0.5),
        ]
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        params = space.decode(rng.random(space.dim))
        again = space.decode(space.encode(params))
        assert again["h"] == params["h"] and again["hl"] == params["hl"]
        assert again["lr"] == pytest.approx(params["lr"], rel=1e-12)
        assert again["d"] == pytest.approx(params["d"], abs=1e-12)
        assert all(space[name].contains(value) for name, value in again.items())


def test_decode_clips_outside_the_unit_cube():
    p = Param(name="h", low=8, high=16, integer=True)
    assert p.decode(-3.0) == 8 and p.decode(7.0) == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"learning_rate": {"low": 0.0, "high": 0.1}},
            "'low' bound of search parameter 'learning_rate' must be > 0; got 0.0",
        ),
        (
            {"learning_rate": {"low": 0.1, "high": 0.01}},
            "`low <= high` must hold for parameter 'learning_rate', but got (low=0.1, high=0.01)",
        ),
        ({"hidden_size": {"low": 0, "high": 8}}, "'low' bound of search parameter 'hidden_size' must be >= 1; got 0"),
        ({"n_layers": {"low": 0, "high": 2}}, "'low' bound of search parameter 'n_layers' must be >= 1; got 0"),
        ({"n_layers": {"low": 1.5, "high": 2}}, "Integer parameter 'n_layers' needs whole-number bounds"),
        (
            {"momentum": {"low": 0.1, "high": 0.9}},
            "Unknown search parameter 'momentum'; choose from batch_size, channels, dropout, heads, hidden_size, kernel_size",
        ),
        ({"dropout": {"low": 0.1}}, "Search parameter 'dropout' needs both 'low' and 'high'"),
        ({"dropout": {"low": 0.0, "high": 0.5, "step": 0.1}}, "Unknown key(s) ['step'] for search parameter 'dropout'"),
    ],
)
def test_invalid_bounds_are_refused_with_the_rule_and_the_value(overrides, message):
    with pytest.raises(ConfigError) as info:
        default_space(overrides)
    assert message in str(info.value)


def test_extra_params_join_the_default_space():
    space = default_space({"dropout": {"low": 0.0, "high": 0.5}, "hidden_size": {"low": 16, "high": 32}})
    assert space.names == ("learning_rate", "hidden_size", "n_layers", "dropout")
    assert (space["hidden_size"].low, space["hidden_size"].high) == (16, 32)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize(("low", "high"), [(8, 256), (3, 7), (1, 1), (16, 1000), (5, 6)])
def test_decoded_values_never_leave_the_bounds(low, high, log):
    p = Param(name="n", low=low, high=high, log=log, integer=True)
    assert p.decode(0.0) == low and p.decode(1.0) == high
    assert all(low <= p.decode(u) <= high for u in np.linspace(0, 1, 1001))
    f = Param(name="f", low=float(low) / 7, high=float(high) / 7, log=log)
    assert f.decode(0.0) == f.low and f.decode(1.0) == f.high


@pytest.mark.parametrize("proposal", [[float("nan"), 0.5, 0.5], np.float64(0.5), [0.5, 0.5], ["a", 0.5, 0.5]])
def test_a_proposal_that_is_not_finite_numbers_is_refused_in_one_line(proposal):

    space = default_space()
    with pytest.raises(ConfigError, match=r"a candidate must be 3 finite numbers, one for each of .* is clipped to it"):
        space.decode(proposal)
    assert set(space.decode([0.0, 0.5, 1.0])) == set(space.names)
    assert space.decode([-3.0, 0.5, 7.0]) == space.decode([0.0, 0.5, 1.0])  # outside the cube: clipped, as said
