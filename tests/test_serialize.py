"""The quantized model saved beside the C (<name>_qmodel.npz) loads back exactly."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnn2c.export import export_model, serialize


@pytest.mark.parametrize(
    ("input_quant", "activations"), [("per-tensor", "int8"), ("per-feature", "int16")]
)
def test_round_trip(tmp_path, input_quant: str, activations: str) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.GRU(5, return_sequences=True, reset_after=False),
            keras.layers.LSTM(4, return_sequences=True),
            keras.layers.SimpleRNN(3),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(8, 6, 3)).astype(np.float32)
    res = export_model(model, x, tmp_path / "c", input_quant=input_quant, activations=activations)
    loaded = serialize.load(tmp_path / "c" / "model_qmodel.npz")
    assert loaded.activations == activations and loaded.input_quant == input_quant
    np.testing.assert_array_equal(loaded.input_q.scale, res.qmodel.input_q.scale)
    np.testing.assert_array_equal(loaded.input_q.zero_point, res.qmodel.input_q.zero_point)
    for saved, back in zip(res.qmodel.layers, loaded.layers, strict=True):
        assert type(back) is type(saved)
        assert back.scalars() == saved.scalars()
        assert saved.arrays().keys() == back.arrays().keys()
        for key, value in saved.arrays().items():
            assert back.arrays()[key].dtype == value.dtype
            np.testing.assert_array_equal(back.arrays()[key], value)


@pytest.mark.parametrize("content", [b"not an npz", b"PK\x03\x04truncated zip"])
def test_corrupt_file_is_one_line(tmp_path, content: bytes) -> None:  # noqa: ANN001
    bad = tmp_path / "model_qmodel.npz"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="cannot read quantized model") as info:
        serialize.load(bad)
    assert "\n" not in str(info.value)


def test_shifts_are_shared_per_row_kind_and_mixed_shifts_are_refused(tmp_path) -> None:  # noqa: ANN001
    """Every row kind (GRU z, r, candidate; LSTM i, f, g, o; SimpleRNN, Dense one) shares one
    shift_in and shift_out; a quantized model whose rows of a kind differ (an older rnn2c's)
    is refused at render with the "export the model again" message."""
    from rnn2c.export.ir import ExportError
    from rnn2c.export.quant_rules import row_kinds
    from rnn2c.export.render import layer_arrays

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.GRU(5, return_sequences=True, reset_after=False),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.LSTM(4, return_sequences=True),
            keras.layers.SimpleRNN(3),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(8, 6, 3)).astype(np.float32)
    res = export_model(model, x, tmp_path / "c")
    counts = []
    for layer in res.qmodel.layers:
        fc = layer.fc
        kinds = row_kinds(fc.rows, layer.units)
        counts.append(int(kinds.max()) + 1)
        for k in range(counts[-1]):
            assert len(set(fc.shift_in[kinds == k])) == 1
            assert len(set(fc.shift_out[kinds == k])) == 1
        assert len(layer_arrays(layer, 8)["shifts"]) == counts[-1]
    assert counts == [3, 4, 4, 1, 1]
    lstm = res.qmodel.layers[2]
    lstm.fc.shift_in[1] += 1  # row 1 (gate i) no longer matches row 0
    with pytest.raises(ExportError, match="export the model again"):
        layer_arrays(lstm, 8)
