"""Reader conveniences: separate activation layers and TimeDistributed(Dense) are folded."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnn2c.export import ExportError, export_model
from rnn2c.export.reference import run_int


def _close_to_keras(model, tmp_path) -> float:  # noqa: ANN001
    x = np.random.default_rng(0).normal(size=(16, 9, 3)).astype(np.float32)
    res = export_model(model, x, tmp_path / "c")
    q = res.qmodel
    got = q.output_q.dequantize(run_int(q, q.input_q.quantize(x))[:, -1])
    want = np.asarray(model(x))
    want = want[:, -1] if want.ndim == 3 else want
    return float(np.abs(got - want).max())


@pytest.mark.parametrize(
    "head",
    [
        lambda: [keras.layers.Dense(4), keras.layers.Activation("softmax")],
        lambda: [keras.layers.Dense(4), keras.layers.Softmax()],
        lambda: [keras.layers.Dense(4), keras.layers.ReLU()],
        lambda: [keras.layers.Dense(4), keras.layers.Activation("sigmoid")],
    ],
)
def test_separate_activation_layers(head, tmp_path) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(6), *head()])
    assert _close_to_keras(model, tmp_path) < 0.03


def test_time_distributed_dense_per_step(tmp_path) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.TimeDistributed(keras.layers.Dense(5, activation="tanh")),
            keras.layers.LSTM(6, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(2, activation="softmax")),
        ]
    )
    assert _close_to_keras(model, tmp_path) < 0.03


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            lambda: [keras.layers.GRU(4), keras.layers.Activation("relu")],
            "only right after a linear Dense",
        ),
        (
            lambda: [keras.layers.GRU(4), keras.layers.Dense(2), keras.layers.Activation("selu")],
            "'selu' is not supported",
        ),
        (
            lambda: [keras.layers.GRU(4), keras.layers.Dense(2), keras.layers.ReLU(max_value=6.0)],
            "only the default ReLU()",
        ),
        (
            lambda: [
                keras.layers.TimeDistributed(keras.layers.Activation("relu")),
                keras.layers.GRU(2),
            ],
            "TimeDistributed(Activation) is not supported",
        ),
    ],
)
def test_refusals(layers, message: str, tmp_path) -> None:  # noqa: ANN001
    model = keras.Sequential([keras.Input((9, 3)), *layers()])
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_model(model, np.zeros((2, 9, 3), np.float32), tmp_path / "c")


def test_inference_no_op_layers_pass_through(tmp_path) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.GaussianNoise(0.1),
            keras.layers.GRU(6, return_sequences=True),
            keras.layers.SpatialDropout1D(0.2),
            keras.layers.GaussianDropout(0.1),
            keras.layers.LSTM(5),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    assert _close_to_keras(model, tmp_path) < 0.03
