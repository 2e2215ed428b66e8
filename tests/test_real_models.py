"""Models as people write them (issue 21): BatchNormalization where the Keras tutorials put it,
a Masking layer over zero-padded data without lengths, Keras' default Conv1D padding, and the
layers that are refused (Lambda, ConvLSTM1D) with a way out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.emulator import verify
from rnn2c.emulator.firmware import read_export
from rnn2c.export import ExportError, export_model
from rnn2c.export.api import read_any
from rnn2c.export.data import Sequences
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import last_step
from tools import need

# ----------------------------------------------------------------------------------- helpers


def _float_ir_is_keras(model: keras.Model, x: np.ndarray) -> Any:
    """The float IR (every fold applied) gives what Keras predicts, to float32 rounding."""
    _, ir = read_any(model)
    y_ir, _ = observe_model(ir, x.astype(np.float64))
    want = np.asarray(model(x, training=False))
    if want.ndim == 3:
        want = want[:, -1]
    np.testing.assert_allclose(last_step(y_ir, None), want, rtol=1e-5, atol=1e-5)
    return ir


def _randomize_batchnorm(model: keras.Model, seed: int, negative: bool = False) -> None:
    """Statistics far from the identity, so that a wrong fold shows; negative: some gamma < 0."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            gamma = rng.uniform(0.5, 2.0, n) * (
                np.where(np.arange(n) % 2, -1, 1) if negative else 1
            )
            layer.gamma.assign(gamma.astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.5, n).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 3.0, n).astype(np.float32))


def _chain(*layers: keras.layers.Layer, features: int = 3) -> keras.Model:
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((None, features)), *layers])
    _randomize_batchnorm(model, 5)
    return model


def _x(n: int = 16, t: int = 12, f: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, t, f)).astype(np.float32)


def _board_run(export_dir: Path, data: Path, out: Path, capsys: Any) -> str:
    """`rnn2c firmware EXPORT --board mps2-an386 --data DATA --run`: bit-exact, PASS."""
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    args = ["firmware", str(export_dir), "--board", "mps2-an386", "--data", str(data)]
    rc = main([*args, "--out", str(out), "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact at every step" in printed and printed.rstrip().endswith("PASS")
    return printed


# ------------------------------------------------------- 1. BatchNormalization in the tutorials


def _tutorial_data(n: int, t: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of noisy waves, a slow and a fast one, z-normalized as FordA is."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    freq = np.where(y == 1, 0.25, 0.06)[:, None]
    steps = np.arange(t)[None, :]
    x = np.sin(2 * np.pi * freq * steps + rng.uniform(0, 6.3, (n, 1)))
    x = x + rng.normal(0, 0.3, (n, t))
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    return x[..., None].astype(np.float32), y


def _timeseries_classification_from_scratch(t: int, classes: int = 2) -> keras.Model:
    """keras.io/examples/timeseries/timeseries_classification_from_scratch (make_model), with
    8 filters instead of 64."""
    input_layer = keras.layers.Input((t, 1))
    conv1 = keras.layers.Conv1D(filters=8, kernel_size=3, padding="same")(input_layer)
    conv1 = keras.layers.BatchNormalization()(conv1)
    conv1 = keras.layers.ReLU()(conv1)
    conv2 = keras.layers.Conv1D(filters=8, kernel_size=3, padding="same")(conv1)
    conv2 = keras.layers.BatchNormalization()(conv2)
    conv2 = keras.layers.ReLU()(conv2)
    conv3 = keras.layers.Conv1D(filters=8, kernel_size=3, padding="same")(conv2)
    conv3 = keras.layers.BatchNormalization()(conv3)
    conv3 = keras.layers.ReLU()(conv3)
    gap = keras.layers.GlobalAveragePooling1D()(conv3)
    output_layer = keras.layers.Dense(classes, activation="softmax")(gap)
    return keras.models.Model(inputs=input_layer, outputs=output_layer)


def _population_statistics(model: keras.Model, x: np.ndarray) -> None:
    """Set each BatchNormalization's moving statistics to those of its input over x (what they
    converge to with training), so that the fold works on non-trivial means and variances."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            probe = keras.Model(model.inputs[0], layer.input)
            h = np.asarray(probe(x, training=False)).reshape(-1, layer.moving_mean.shape[0])
            layer.moving_mean.assign(h.mean(axis=0))
            layer.moving_variance.assign(h.var(axis=0))


def test_timeseries_classification_from_scratch_exports_verifies_and_runs(
    tmp_path: Path,
    capsys: Any,
) -> None:
    """The tutorial's Conv1D -> BatchNormalization -> ReLU blocks: each BN folds back into its
    Conv1D, each ReLU becomes that Conv1D's activation; padding='same' makes it whole-sequence
    (--max-length). Export, verify PASS bit-exact, and the same on an emulated board."""
    t = 24
    keras.utils.set_random_seed(3)
    x, y = _tutorial_data(160, t, 0)
    model = _timeseries_classification_from_scratch(t)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    _population_statistics(model, x)
    bn = [ly for ly in model.layers if isinstance(ly, keras.layers.BatchNormalization)]
    assert all(np.abs(np.asarray(ly.moving_variance) - 1).max() > 0.1 for ly in bn)  # not 1

    ir = _float_ir_is_keras(model, x[:32])
    assert [ly.kind for ly in ir.layers] == ["conv1d"] * 3 + ["gpool1d", "dense"]
    assert [ly.activation for ly in ir.layers[:3]] == ["relu"] * 3

    path = tmp_path / "fcn.keras"
    model.save(path)
    np.savez(tmp_path / "calib.npz", x=x[:96])
    test_x, test_y = _tutorial_data(64, t, 1)
    np.savez(tmp_path / "test.npz", x=test_x, y=test_y)
    out = tmp_path / "c"
    calib = ["--calib", str(tmp_path / "calib.npz"), "--out", str(out)]
    assert main(["export", str(path), *calib, "--max-length", str(t)]) == 0
    capsys.readouterr()
    report = verify(str(path), out, str(tmp_path / "test.npz"))
    assert report.bit_exact and report.passed, report.table()
    assert report.agreement is not None and report.agreement >= 0.95
    assert report.float_accuracy is not None and report.float_accuracy >= 0.9  # it learned
    _board_run(out, tmp_path / "test.npz", tmp_path / "fw", capsys)


def test_conv_relu_batchnorm_average_pooling_lstm(tmp_path: Path) -> None:
    """BN after a Conv1D with its own ReLU goes on through the average pooling (it commutes with
    a per-channel affine map) into the LSTM's input weights: the issue's traceback case."""
    model = _chain(
        keras.layers.Conv1D(6, 3, padding="causal", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.AveragePooling1D(2),
        keras.layers.LSTM(5),
        keras.layers.Dense(3, activation="softmax"),
    )
    ir = _float_ir_is_keras(model, _x())
    assert [ly.kind for ly in ir.layers] == ["conv1d", "pool1d", "lstm", "dense"]
    export_model(model, _x(48, seed=1), tmp_path / "c")
    report = verify(model, tmp_path / "c", _x(24, seed=2))
    assert report.bit_exact and report.passed, report.table()


@pytest.mark.parametrize(
    ("layers", "kinds"),
    [
        (  # backward into the linear Conv1D, then the ReLU becomes its activation
            lambda: [
                keras.layers.Conv1D(5, 3, padding="causal"),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
                keras.layers.GRU(4),
            ],
            ["conv1d", "gru"],
        ),
        (  # on through dropout and global average pooling into the Dense
            lambda: [
                keras.layers.Conv1D(5, 3, padding="causal", activation="relu"),
                keras.layers.BatchNormalization(),
                keras.layers.Dropout(0.3),
                keras.layers.GlobalAveragePooling1D(),
                keras.layers.Dense(2),
            ],
            ["conv1d", "gpool1d", "dense"],
        ),
        (  # on through max pooling (no negative scale) into the GRU
            lambda: [
                keras.layers.Conv1D(5, 3, padding="causal", activation="tanh"),
                keras.layers.BatchNormalization(),
                keras.layers.MaxPooling1D(2),
                keras.layers.GRU(4),
            ],
            ["conv1d", "pool1d", "gru"],
        ),
        (  # a Conv1D with zero padding next: backward into the linear Conv1D before it
            lambda: [
                keras.layers.Conv1D(5, 3, padding="causal"),
                keras.layers.BatchNormalization(),
                keras.layers.Conv1D(4, 2, padding="causal", activation="relu"),
                keras.layers.GRU(4),
            ],
            ["conv1d", "conv1d", "gru"],
        ),
        (  # back through average pooling into the linear Conv1D, at the end of the model
            lambda: [
                keras.layers.GRU(4, return_sequences=True),
                keras.layers.Conv1D(5, 3, padding="causal"),
                keras.layers.AveragePooling1D(2),
                keras.layers.BatchNormalization(),
            ],
            ["gru", "conv1d", "pool1d"],
        ),
        (  # padding='valid' pads nothing: the offset goes forward into that Conv1D exactly
            lambda: [
                keras.layers.Conv1D(5, 3, activation="relu"),
                keras.layers.BatchNormalization(),
                keras.layers.Conv1D(4, 2),
                keras.layers.GRU(4),
            ],
            ["conv1d", "conv1d", "gru"],
        ),
    ],
)
def test_batchnorm_folds_exactly_around_conv1d_and_pooling(layers: Any, kinds: list[str]) -> None:
    model = _chain(*layers())
    ir = _float_ir_is_keras(model, _x())
    assert [ly.kind for ly in ir.layers] == kinds


def test_batchnorm_with_negative_gamma_before_max_pooling() -> None:
    """A negative scale does not commute with max pooling: folded back into the linear Conv1D
    before it (exact), refused after a Conv1D with its own activation, saying why."""
    keras.utils.set_random_seed(7)
    linear = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(4, 3, padding="causal"),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling1D(2),
            keras.layers.GRU(3),
        ]
    )
    _randomize_batchnorm(linear, 1, negative=True)
    _float_ir_is_keras(linear, _x())
    relu = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(4, 3, padding="causal", activation="relu", name="c"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.MaxPooling1D(2, name="mp"),
            keras.layers.GRU(3),
        ]
    )
    _randomize_batchnorm(relu, 1, negative=True)
    with pytest.raises(ExportError) as info:
        read_any(relu)
    msg = str(info.value)
    assert msg.startswith("layer 'bn' (BatchNormalization): it scales 2 of its 4 channels by a ")
    assert "does not commute with the max pooling after it, layer 'mp' (MaxPooling1D)" in msg
    assert "the layer before it is 'c' (Conv1D, activation relu)" in msg


def test_batchnorm_offset_before_a_padded_conv1d_is_refused_with_the_reason() -> None:
    model = _chain(
        keras.layers.Conv1D(4, 3, padding="causal", activation="relu", name="c1"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Conv1D(4, 3, padding="causal", name="c2"),
        keras.layers.GRU(3),
    )
    with pytest.raises(ExportError) as info:
        read_any(model)
    msg = str(info.value)
    assert msg.startswith(
        "layer 'bn' (BatchNormalization): its offset cannot be folded into the next layer, "
        "layer 'c2' (Conv1D) with padding='causal', as Keras pads that layer's input with zeros"
    )
    assert "the layer before it is 'c1' (Conv1D, activation relu), not a Dense or Conv1D" in msg
    assert "\n" not in msg


# ------------------------------------------------------------ 2. Masking over padded data


def _padded(n: int, t: int, seed: int, f: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-padded sequences of 3..t steps; the label: whether feature 0 sums above 0."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, t + 1, size=n)
    lengths[0] = t  # one unpadded sequence
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    for i, length in enumerate(lengths):
        x[i, length:] = 0.0
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    return x, y, lengths


def _masked_gru(t: int) -> keras.Model:
    keras.utils.set_random_seed(2)
    x, y, _ = _padded(256, t, 0)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Masking(0.0),
            keras.layers.GRU(8),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=12, batch_size=32, verbose=0)
    return model


def test_masked_gru_on_padded_data_without_lengths(tmp_path: Path, capsys: Any) -> None:
    """No lengths in the .npz: export calibrates, verify and firmware run, each sequence up to
    its last unmasked step (the float reference is Keras with the mask): PASS, bit-exact."""
    t = 16
    model = _masked_gru(t)
    path = tmp_path / "gru.keras"
    model.save(path)
    calib_x, _, calib_len = _padded(64, t, 1)
    test_x, test_y, test_len = _padded(96, t, 2)
    np.savez(tmp_path / "calib.npz", x=calib_x)
    np.savez(tmp_path / "test.npz", x=test_x, y=test_y)
    out = tmp_path / "c"
    assert (
        main(["export", str(path), "--calib", str(tmp_path / "calib.npz"), "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    padded = int((calib_len < t).sum())
    assert (
        "note: Masking(mask_value=0): lengths taken from the trailing masked steps of --calib "
        f"({padded} of 64 sequences padded)"
    ) in printed
    # calibration saw no padding: the export is the one made with the lengths given
    with_lengths = export_model(
        model, Sequences(calib_x, None, calib_len), tmp_path / "with", name="model"
    )
    assert (out / "model.c").read_text() == (tmp_path / "with" / "model.c").read_text()

    report = verify(str(path), out, str(tmp_path / "test.npz"))
    assert report.bit_exact and report.passed, report.table()
    assert report.steps == int(test_len.sum())
    assert report.agreement is not None and report.agreement >= 0.95
    assert report.notes == [
        "Masking(mask_value=0): lengths taken from the trailing masked steps of --data "
        f"({int((test_len < t).sum())} of 96 sequences padded)"
    ]
    assert abs(report.float_accuracy - report.int8_accuracy) <= 0.05, report.table()
    assert with_lengths.qmodel.mask_value == 0.0
    assert read_export(out)[2].mask_value == 0.0  # in the quantized model: firmware knows it

    printed = _board_run(out, tmp_path / "test.npz", tmp_path / "fw", capsys)
    assert "note: Masking(mask_value=0): lengths taken from the trailing masked steps" in printed
    replay = np.load(tmp_path / "fw" / "replay.npz")
    np.testing.assert_array_equal(replay["lengths"], test_len[: len(replay["lengths"])])


def test_masking_refuses_what_the_c_cannot_skip(tmp_path: Path) -> None:
    model = _chain(keras.layers.Masking(0.0), keras.layers.GRU(3))
    x = _x(4, 8)
    x[2, 3] = 0.0  # an all-mask step before real ones
    with pytest.raises(ExportError) as info:
        export_model(model, x, tmp_path / "c")
    assert str(info.value) == (
        "the calibration set: sequence 2 has a masked step (every feature = 0) at step 3, before "
        "its last real step 7; Keras' Masking(mask_value=0) skips it, the C runs every step up "
        "to the real length: drop those steps from the data, or give lengths in the .npz (they "
        "win; the C then runs such steps as real ones)"
    )
    assert not (tmp_path / "c").exists()
    x[2] = 0.0
    with pytest.raises(ExportError, match="sequence 2 is all padding"):
        export_model(model, x, tmp_path / "c")
    # lengths win; masked steps within them are said
    x = _x(4, 8)
    x[1, 2] = 0.0
    res = export_model(model, Sequences(x, None, np.full(4, 8)), tmp_path / "c")
    assert res.notes[0].startswith(
        "Masking(mask_value=0): the lengths in the calibration set win, but 1 of 4 sequences "
        "have masked steps within their length (first: sequence 1, step 2)"
    )


def test_masking_elsewhere_than_first_is_refused() -> None:
    model = _chain(
        keras.layers.GRU(3, return_sequences=True),
        keras.layers.Masking(0.0, name="m"),
        keras.layers.GRU(2),
    )
    with pytest.raises(ExportError) as info:
        read_any(model)
    assert str(info.value).startswith(
        "layer 'm' (Masking): a Masking layer is supported only as the first layer, right after "
        "the Input"
    )
    # in a graph of branches: the Masking must be the input's only reader
    inp = keras.Input((None, 3))
    masked = keras.layers.Masking(0.5, name="m")(inp)
    for other in (masked, inp):
        a = keras.layers.GRU(4, return_sequences=True)(masked)
        b = keras.layers.Dense(4)(other)
        graph = keras.Model(inp, keras.layers.GRU(2)(keras.layers.Add()([a, b])))
        if other is masked:
            assert read_any(graph)[1].mask_value == 0.5
            continue
        with pytest.raises(ExportError, match=r"'m' \(Masking\): other layers read the model "):
            read_any(graph)


# ------------------------------------------------------------- 3. Keras' default Conv1D padding


def _cnn_lstm(padding: str) -> keras.Model:
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(8, 5, padding=padding, activation="relu", name="conv"),
            keras.layers.LSTM(6),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def test_valid_conv1d_says_what_causal_padding_would_keep(tmp_path: Path) -> None:
    """Without --max-length the refusal, with it the export's note: padding='causal' streams,
    and both state figures, each the one the export of that model really has."""
    x = _x(24, 40)
    valid = _cnn_lstm("valid")
    causal_state = export_model(_cnn_lstm("causal"), x, tmp_path / "causal").qmodel.state_bytes()
    whole_state = export_model(valid, x, tmp_path / "v", max_length=40).qmodel.state_bytes()
    assert causal_state < whole_state
    with pytest.raises(ExportError) as info:
        export_model(valid, x, tmp_path / "c")
    msg = str(info.value)
    assert "give max_length=N" in msg and "\n" not in msg
    assert (
        f"Conv1D 'conv' (padding='valid') makes the model whole-sequence: its state holds every "
        f"layer's outputs over the sequence, {whole_state} bytes at max_length=40; with "
        "padding='causal' (retrain) it streams through <name>_step with no max_length in a "
        f"state of {causal_state} bytes"
    ) in msg
    res = export_model(valid, x, tmp_path / "c", max_length=100)
    note = next(n for n in res.notes if n.startswith("Conv1D 'conv'"))
    assert f"{res.qmodel.state_bytes()} bytes at --max-length 100" in note
    assert f"in a state of {causal_state} bytes" in note


# ------------------------------------------------------------------ 4. refusals with a way out


def test_lambda_layer_is_refused_with_what_to_do(tmp_path: Path, capsys: Any) -> None:
    model = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.Lambda(lambda v: v * 2.0), keras.layers.GRU(3)]
    )
    path = tmp_path / "lam.keras"
    model.save(path)
    np.save(tmp_path / "calib.npy", _x(4, 5, 2))
    out = tmp_path / "c"
    rc = main(["export", str(path), "--calib", str(tmp_path / "calib.npy"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "it holds a Lambda layer" in err
    assert "replace the Lambda by Keras layers" in err
    assert not out.exists()


def test_conv_lstm1d_is_named_with_the_way_forward() -> None:
    model = keras.Sequential(
        [
            keras.Input((None, 5, 2)),
            keras.layers.ConvLSTM1D(4, 3, name="cl"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ExportError) as info:
        read_any(model)
    msg = str(info.value)
    assert msg.startswith("layer 'cl' (ConvLSTM1D): layer type ConvLSTM1D is not supported")
    assert re.search(r"Conv1D front end .*followed by an LSTM", msg)
