"""The quantized parameters and each layer's integer step against float, within bounds derived
from the scales (tests/quantcheck.py); and that those checks catch a quantizer bug the C and the
integer reference share, which no bit-exactness test can see."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import quantcheck

from rnn2c.export import quant_rules
from rnn2c.export import quantize as quantize_module
from rnn2c.export.api import read_any
from rnn2c.export.ir import ActQuant
from rnn2c.export.layers import dense as dense_module
from rnn2c.export.quantize import quantize_model

F, T, N = 3, 10, 16


def _model(seed: int) -> keras.Model:
    """Every cell the checks know, both GRU variants, a calibrated and a table head."""
    keras.utils.set_random_seed(seed)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None, F)),
            L.GRU(5, return_sequences=True),
            L.LSTM(4, return_sequences=True, unit_forget_bias=True),
            L.GRU(4, return_sequences=True, reset_after=False),
            L.SimpleRNN(3, return_sequences=True),
            L.Dense(4, activation="relu"),
            L.Dense(2, activation="tanh"),
        ]
    )


def _head_model(seed: int, head: str) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((None, F)),
            keras.layers.LSTM(6, return_sequences=True),
            keras.layers.Dense(3, activation=head),
        ]
    )


def _calib(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, T, F)) * [1.0, 3.0, 0.2] + [0.5, -1.0, 0.0]).astype(np.float32)


def _quantized(model: keras.Model, calib: np.ndarray, **options: str):  # noqa: ANN202
    _, ir = read_any(model)
    return quantize_model(ir, calib.astype(np.float64), None, "minmax", **options)


@pytest.mark.parametrize(
    "seed, options",
    [
        (1, {}),
        (2, {"activations": "int16", "input_quant": "per-feature"}),
        (3, {"input_quant": "per-feature"}),
    ],
)
def test_quantized_parameters_and_every_layer_step_are_within_bounds(
    seed: int, options: dict[str, str]
) -> None:
    calib = _calib(seed)
    model = _model(seed)
    assert quantcheck.check(model, _quantized(model, calib, **options), calib) == []


@pytest.mark.parametrize("head", ["linear", "sigmoid", "softmax"])
def test_heads_are_within_bounds(head: str) -> None:
    calib = _calib(7)
    model = _head_model(7, head)
    assert quantcheck.check(model, _quantized(model, calib), calib) == []


def _scaled_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row's requantization scale 10 % too large (what every layer's rows feed on): the
    C and the reference share it, bit-exact, and the outputs drift by about 10 %."""
    real = quant_rules.shared_rq_params
    monkeypatch.setattr(
        quant_rules, "shared_rq_params", lambda reals, limits: real(reals * 1.1, limits)
    )


def _scaled_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every calibrated activation range 10 % wider than its calibration data (the input's and
    each Dense linear/relu output's): coarser, and nothing else notices."""
    real = quantize_module.act_quant_from_range

    def wide(lo: float, hi: float) -> ActQuant:
        q = real(lo, hi)
        return ActQuant(q.scale * 1.1, q.zero_point, q.bits)

    monkeypatch.setattr(quantize_module, "act_quant_from_range", wide)
    monkeypatch.setattr(dense_module, "act_quant_from_range", wide)


@pytest.mark.parametrize(
    "mutation, caught_by",
    [
        (_scaled_rows, ("multiplier", "dequantizes to", "requantized rows", ": output:")),
        (_scaled_ranges, ("is wider than the calibration values' range needs",)),
    ],
)
def test_a_quantizer_scale_10_percent_off_is_caught(
    monkeypatch: pytest.MonkeyPatch,
    mutation,
    caught_by: tuple[str, ...],  # noqa: ANN001
) -> None:
    """The mutation applied to the quantizer through monkeypatch: the check that passes on the
    real quantizer (above) reports it, in each of the listed checks."""
    calib = _calib(1)
    model = _model(1)
    mutation(monkeypatch)
    found = quantcheck.check(model, _quantized(model, calib), calib)
    for what in caught_by:
        assert any(what in line for line in found), (what, found[:5])
