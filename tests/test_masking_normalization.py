"""Normalization is folded into the first weight layer; Masking models stream to the real length."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnn2c.emulator import verify
from rnn2c.export import ExportError, export_model
from rnn2c.export.api import read_any
from rnn2c.export.data import Sequences
from rnn2c.export.quantize import observe_model


def _data(seed: int, n: int = 40, t: int = 15, f: int = 4) -> Sequences:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, t + 1, size=n)
    # features on very different scales and offsets, as raw sensor channels are
    x = (
        rng.normal(size=(n, t, f)) * np.array([2.0, 0.5, 4.0, 1.0])[:f]
        + np.array([1.0, -1.0, 5.0, 0.0])[:f]
    )
    for i, length in enumerate(lengths):
        x[i, length:] = 0.0
    return Sequences(x.astype(np.float32), rng.integers(0, 3, size=n), lengths)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_masked_normalized_model_matches_keras_on_unpadded_sequences(cell: str, tmp_path) -> None:  # noqa: ANN001
    data = _data(1)
    real = np.concatenate([x[:n] for x, n in zip(data.x, data.lengths, strict=True)])
    norm = keras.layers.Normalization()
    norm.adapt(real)
    rec = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}[cell]
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.Masking(0.0),
            norm,
            rec(12),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    # the float IR (with Normalization folded into the kernel) is Keras on each unpadded sequence
    _, ir = read_any(model)
    y_ir, _ = observe_model(ir, data.x, data.lengths)
    for i in range(0, 40, 7):
        want = np.asarray(model(data.x[i : i + 1, : data.lengths[i]]))[0]
        np.testing.assert_allclose(y_ir[i, data.lengths[i] - 1], want, atol=1e-5)

    export_model(model, data, tmp_path / "c", name="masked")
    report = verify(model, tmp_path / "c", _data(2), stream_steps=500)
    assert report.bit_exact and report.stream is not None and report.stream.bit_exact
    assert report.stream.mean_error_last < 0.05  # no drift over the back-to-back stream
    # untrained, so the softmax outputs sit near 1/3 and argmax is not meaningful: check errors
    assert report.mean_abs_error < 0.01
    assert report.max_abs_error < 0.05


def test_normalization_without_a_following_weight_layer_is_refused(tmp_path) -> None:  # noqa: ANN001
    norm = keras.layers.Normalization(mean=0.0, variance=1.0)
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(3), norm])
    with pytest.raises(ExportError, match="no weight layer follows it"):
        export_model(model, np.zeros((2, 4, 2), np.float32), tmp_path / "c")


def test_per_feature_input_quantization_on_mixed_range_channels(tmp_path) -> None:  # noqa: ANN001
    """Raw channels whose ranges differ by 40x: one input scale starves the small channels."""
    rng = np.random.default_rng(7)
    n, t = 48, 12
    x = rng.normal(size=(n, t, 4)) * np.array([5.0, 0.5, 20.0, 1.0]) + np.array([3, -1, 50, 0])
    x = x.astype(np.float32)
    norm = keras.layers.Normalization()
    norm.adapt(x.reshape(-1, 4))
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((None, 4)), norm, keras.layers.GRU(10), keras.layers.Dense(3)]
    )
    errors = {}
    for mode in ("per-tensor", "per-feature"):
        out = tmp_path / mode
        res = export_model(model, x[:32], out, name="mixed", input_quant=mode)
        assert res.qmodel.input_q.per_feature == (mode == "per-feature")
        report = verify(model, out, x[32:])
        assert report.bit_exact
        errors[mode] = report.mean_abs_error
        header = (out / "mixed.h").read_text()
        assert ("MIXED_INPUT_SCALES" in header) == (mode == "per-feature")
        assert ("MIXED_INPUT_SCALE " in header) == (mode == "per-tensor")
    assert errors["per-feature"] < 0.5 * errors["per-tensor"], errors
