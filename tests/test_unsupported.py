"""Models rnn2c cannot export are refused with one line naming the layer and what is supported."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnn2c.export import ExportError, export_model


def _seq(*layers):  # noqa: ANN001, ANN202
    return keras.Sequential([keras.Input((10, 3)), *layers])


def _two_inputs():  # noqa: ANN202  (two sensor streams are supported: test_multi_input.py)
    a, b = keras.Input((10, 3)), keras.Input((10,), dtype="int32")  # token ids: seq2seq's
    x = keras.layers.Concatenate()([a, keras.layers.Embedding(9, 3)(b)])
    return keras.Model([a, b], keras.layers.GRU(4)(x))


def _branch():  # noqa: ANN202  (branches are supported; a whole-sequence one is not)
    a = keras.Input((10, 3))
    x = keras.layers.GRU(4, return_sequences=True)(a)
    b = keras.layers.Bidirectional(keras.layers.GRU(2, return_sequences=True))(x)
    y = keras.layers.Add()([x, b])
    return keras.Model(a, keras.layers.GRU(2)(y))


CASES = [
    (
        lambda: _seq(keras.layers.GRU(4, go_backwards=True)),
        "has a whole-sequence layer (Bidirectional or go_backwards)",  # needs --max-length
    ),
    (  # relu cells are supported there (a shared state scale): only --max-length is missing
        lambda: _seq(keras.layers.Bidirectional(keras.layers.GRU(4, activation="relu"))),
        "has a whole-sequence layer (Bidirectional or go_backwards)",
    ),
    (
        lambda: _seq(keras.layers.SimpleRNN(4, activation="relu", go_backwards=True)),
        "has a whole-sequence layer (Bidirectional or go_backwards)",
    ),
    (
        lambda: _seq(keras.layers.Bidirectional(keras.layers.LSTM(4, activation="selu"))),
        "activation='selu' is not supported; supported: tanh, relu",
    ),
    (
        lambda: _seq(keras.layers.GRU(4, activation="selu")),
        "activation='selu' is not supported; supported: tanh, relu",
    ),
    (
        lambda: _seq(keras.layers.LSTM(4, recurrent_activation="softsign")),
        "recurrent_activation='softsign' is not supported; supported: sigmoid, hard_sigmoid, "
        "linear",
    ),
    (
        lambda: _seq(keras.layers.SimpleRNN(4, activation="sigmoid")),
        "(SimpleRNN): activation='sigmoid' is not supported",
    ),
    (
        lambda: _seq(keras.layers.GRU(4), keras.layers.Dense(3, activation="selu")),
        "activation 'selu' is not supported; supported: linear, relu, sigmoid, tanh, softmax, "
        "leaky_relu, elu, silu, gelu, softplus",
    ),
    (
        lambda: _seq(keras.layers.GRU(4), keras.layers.Dense(3), keras.layers.ELU(alpha=2.0)),
        "(ELU): a slope of 2 is not supported; use 0 to 1",
    ),
    (
        lambda: _seq(keras.layers.GRU(4), keras.layers.BatchNormalization()),
        "no weight layer follows it to fold it into",
    ),
    (
        lambda: _seq(keras.layers.Conv1D(4, 3), keras.layers.GRU(4)),
        "or a Conv1D with padding 'valid' or 'same', so its C runs whole sequences through "
        "<name>_run with buffers in the state; give max_length=N",
    ),
    (
        lambda: _seq(keras.layers.Bidirectional(keras.layers.GRU(4), merge_mode=None)),
        "has 1 inputs and 2 outputs",
    ),
    (
        lambda: _seq(
            keras.layers.Bidirectional(
                keras.layers.GRU(4, go_backwards=True), backward_layer=keras.layers.GRU(4)
            )
        ),
        "a wrapped layer with go_backwards=True",
    ),
    (
        lambda: _seq(keras.layers.Flatten(), keras.layers.Dense(3)),
        "layer type Flatten is not supported",
    ),
    (lambda: _seq(keras.layers.Dense(3)), "has no recurrent layer"),
    (
        lambda: _seq(keras.layers.AveragePooling1D(2, padding="same"), keras.layers.GRU(4)),
        "(Bidirectional or go_backwards), pooling with padding 'same' or a Conv1D with padding "
        "'valid' or 'same', so its C runs whole sequences through <name>_run with buffers in the "
        "state; give max_length=N",
    ),
    (
        lambda: _seq(keras.layers.Conv1D(3, 3, padding="causal", groups=3), keras.layers.GRU(4)),
        "(Conv1D): groups=3 is not supported; use groups=1",
    ),
    (
        lambda: _seq(
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.GlobalMaxPooling1D(keepdims=True),
        ),
        "keepdims=True is not supported; use keepdims=False",
    ),
    (
        lambda: _seq(
            keras.layers.Normalization(mean=1.0, variance=4.0),
            keras.layers.Conv1D(4, 3, padding="causal"),
            keras.layers.GRU(4),
        ),
        "an input offset right before a Conv1D (a Normalization, or an input feature "
        "constant over the calibration set) is not supported",
    ),
    (
        lambda: _seq(keras.layers.Flatten(), keras.layers.Dense(2)),
        "(Flatten): layer type Flatten is not supported; rnn2c keeps one feature vector per step",
    ),
    (
        lambda: _seq(keras.layers.ZeroPadding1D(2), keras.layers.GRU(4)),
        "pad the sequence in firmware before stepping",
    ),
    (
        lambda: _seq(keras.layers.SeparableConv1D(4, 3), keras.layers.GRU(4)),
        "(SeparableConv1D): layer type SeparableConv1D is not supported; use a Conv1D",
    ),
    (
        lambda: _seq(keras.layers.UnitNormalization(), keras.layers.GRU(4)),
        "layer type UnitNormalization is not supported; supported: Activation, Add, ",
    ),
    (_two_inputs, "rnn2c exports two-input models of the pattern"),  # seq2seq: README
    (_branch, "a whole-sequence layer (Bidirectional) in a graph of branches is not supported"),
]


@pytest.mark.parametrize(("make", "message"), CASES)
def test_refused_before_anything_is_written(make, message: str, tmp_path) -> None:  # noqa: ANN001
    model = make()
    calib = np.zeros((4, 10, 3), np.float32)
    with pytest.raises(ExportError) as info:
        export_model(model, calib, tmp_path / "out")
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert not (tmp_path / "out").exists()


def test_accumulator_overflow_is_refused_naming_the_layer(tmp_path) -> None:  # noqa: ANN001
    """A bias far larger than its weights could not be held in the int32 accumulator."""
    model = keras.Sequential([keras.Input((10, 3)), keras.layers.GRU(4, name="tiny_weights")])
    gru = model.layers[-1]
    kernel, rec, bias = gru.get_weights()
    gru.set_weights([kernel * 1e-7, rec * 1e-7, np.full_like(bias, 1e3)])
    with pytest.raises(ExportError, match=r"layer 'tiny_weights' \(GRU\) gate rows: worst-case"):
        calib = np.random.default_rng(0).normal(size=(4, 10, 3)).astype(np.float32)
        export_model(model, calib, tmp_path / "out")
    assert not (tmp_path / "out").exists()
