"""The Keras variants tutorials use (issue 15): BatchNormalization and Rescaling folded into
neighbouring weights, stateful=True, return_state=True with the state unused, a nested Sequential,
and the activation variants. Each exports, is bit-exact with the integer reference, and stays
close to float Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnn2c.emulator import load_model, verify
from rnn2c.emulator.verify import float_outputs
from rnn2c.export import ExportError, export_model
from rnn2c.export.api import read_any
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import run_int


def _x(seed: int, n: int = 48, t: int = 12, f: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.array([2.0, 0.5, 3.0, 1.0, 1.5, 0.7])[:f]
    offset = np.array([1.0, -1.0, 4.0, 0.0, 2.0, -0.5])[:f]
    return (rng.normal(size=(n, t, f)) * scale + offset).astype(np.float32)


def _randomize_batchnorm(model: keras.Model, seed: int) -> None:
    """Statistics far from the identity, so that a wrong fold shows."""
    rng = np.random.default_rng(seed)
    todo = list(model.layers)
    while todo:
        layer = todo.pop()
        todo.extend(getattr(layer, "layers", []))
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0, 0.5, n).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 3.0, n).astype(np.float32))


def check(model: keras.Model, calib: np.ndarray, test: np.ndarray, tmp_path, **kw) -> dict:  # noqa: ANN001
    """Export, then: the float IR is Keras, the C is the integer reference bit for bit on every
    step (also with variable lengths), and the int8 output is close to Keras. Returns the
    figures (agreement, max and mean error)."""
    _, ir = read_any(model)
    y_ir, _ = observe_model(ir, test)
    want = float_outputs(model, test, None)
    np.testing.assert_allclose(y_ir[:, -1], want, atol=2e-4)
    res = export_model(model, calib, tmp_path / "c", name="variant", **kw)
    q = res.qmodel
    xq = q.input_q.quantize(test)
    lengths = np.random.default_rng(0).integers(1, test.shape[1] + 1, size=test.shape[0])
    compiled = load_model(tmp_path / "c", "variant")
    for lens in (None, lengths):
        assert np.array_equal(compiled.run(xq, lens), run_int(q, xq, lens))
    report = verify(model, tmp_path / "c", test)
    assert report.bit_exact and report.passed, report.table()
    return {
        "max": report.max_abs_error,
        "mean": report.mean_abs_error,
        "range": float(want.max() - want.min()),
    }


# ---------------------------------------------------------------- 1. BatchNormalization, Rescaling


def test_batchnorm_and_rescaling_fold_before_between_and_after(tmp_path) -> None:  # noqa: ANN001
    """BN + Rescaling before the first GRU (into its input weights), BN between two recurrent
    layers (into the LSTM's input weights), BN after a linear Dense before a separate ReLU and at
    the end (into the Dense's own rows)."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, 4))
    h = keras.layers.BatchNormalization()(inp)
    h = keras.layers.Rescaling(0.5, offset=0.1)(h)
    h = keras.layers.GRU(12, return_sequences=True)(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.LSTM(10)(h)
    h = keras.layers.Dense(8)(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Dense(3)(h)
    out = keras.layers.BatchNormalization(center=False)(h)
    model = keras.Model(inp, out)
    _randomize_batchnorm(model, 3)
    x = _x(0, n=64)
    figures = check(model, x[:48], x[48:], tmp_path)
    assert figures["max"] < 0.02 * figures["range"] + 0.02, figures


@pytest.mark.parametrize("seed", range(6))
def test_random_affine_placements(seed: int, tmp_path) -> None:  # noqa: ANN001
    """Property-style: BN / Rescaling at random foldable places of random small models."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    f = int(rng.integers(1, 6))
    cells = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}

    def affine() -> keras.layers.Layer:
        if rng.integers(0, 2):
            return keras.layers.BatchNormalization(scale=bool(rng.integers(0, 2)))
        return keras.layers.Rescaling(float(rng.uniform(0.2, 2.0)), offset=float(rng.normal()))

    inp = keras.Input((None, f))
    h = affine()(inp) if rng.integers(0, 2) else inp
    depth = int(rng.integers(1, 3))
    for i in range(depth):
        cell = str(rng.choice(list(cells)))
        h = cells[cell](int(rng.integers(2, 12)), return_sequences=i < depth - 1)(h)
        if rng.integers(0, 2) and i < depth - 1:
            h = affine()(h)
    h = keras.layers.Dense(int(rng.integers(2, 6)))(h)
    if rng.integers(0, 2):
        h = affine()(h)
    model = keras.Model(inp, h)
    _randomize_batchnorm(model, seed)
    x = _x(seed, n=40, t=int(rng.integers(2, 12)), f=f)
    figures = check(model, x, x[28:], tmp_path)  # calibrated on the test part too: no clipping
    assert figures["max"] < 0.05 * max(1.0, figures["range"]), figures


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: [keras.layers.GRU(4), keras.layers.BatchNormalization()],
            "(BatchNormalization): no weight layer follows it to fold it into (it ends the "
            "model), and the layer before it is 'gru",
        ),
        (
            lambda: [
                keras.layers.GRU(4),
                keras.layers.Dense(3, activation="tanh"),
                keras.layers.Rescaling(2.0),
            ],
            "not a Dense without activation; move it before a GRU/LSTM/SimpleRNN/Dense layer",
        ),
        (
            lambda: [keras.layers.GRU(4), keras.layers.BatchNormalization(axis=1)],
            "axis=1 is not supported; normalize the feature axis (-1)",
        ),
    ],
)
def test_unfoldable_affine_is_refused_in_one_line(build, message: str, tmp_path) -> None:  # noqa: ANN001
    model = keras.Sequential([keras.Input((6, 3)), *build()])
    with pytest.raises(ExportError) as info:
        export_model(model, np.ones((2, 6, 3), np.float32), tmp_path / "c")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- 3. model structure


def test_nested_sequential_and_unused_return_state(tmp_path) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(2)
    inp = keras.Input((None, 4))
    inner = keras.Sequential(
        [keras.layers.Dense(6), keras.layers.GRU(8, return_sequences=True)], name="inner"
    )
    h = inner(inp)
    seq, state_h, state_c = keras.layers.LSTM(6, return_state=True)(h)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(seq))
    x = _x(4, n=48)
    check(model, x[:32], x[32:], tmp_path)


def test_used_state_output_is_refused(tmp_path) -> None:  # noqa: ANN001
    inp = keras.Input((None, 3))
    _, state = keras.layers.GRU(4, return_state=True, name="g")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(state))
    with pytest.raises(ExportError, match=r"layer 'g' \(GRU\): its state output \(return_state\)"):
        export_model(model, np.ones((2, 5, 3), np.float32), tmp_path / "c")


@pytest.mark.parametrize("batch", [1, 3])
def test_stateful_model_is_the_c_stream(batch: int, tmp_path) -> None:  # noqa: ANN001
    """stateful=True: verify resets Keras' state before each sequence, as <name>_reset does;
    without a reset, Keras fed sequences back to back equals the C run as one stream."""
    keras.utils.set_random_seed(5)
    inp = keras.Input(batch_shape=(batch, None, 4))
    h = keras.layers.GRU(8, stateful=True, return_sequences=True)(inp)
    h = keras.layers.LSTM(6, stateful=True)(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    x = _x(6, n=40, t=8)
    check(model, x[:30], x[30:], tmp_path)
    # back to back without reset: Keras' stateful stream vs the C stream
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    chunks = [np.resize(x[30 + i], (batch, 8, 4)) for i in range(4)]
    keras_stream = np.concatenate([np.asarray(model(c, training=False))[:1] for c in chunks])
    _, ir = read_any(model)
    res = export_model(model, x[:30], tmp_path / "s", name="variant")
    q = res.qmodel
    stream = np.concatenate([x[30 + i] for i in range(4)])[None]
    y = run_int(q, q.input_q.quantize(stream))[0, 7::8]
    c_out = load_model(tmp_path / "s", "variant").run(q.input_q.quantize(stream))[0, 7::8]
    assert np.array_equal(y, c_out)
    err = np.abs(q.output_q.dequantize(y) - keras_stream).max()
    assert err < 0.05, err
    # and the reset mattered: the float stream differs from sequences run from a reset state
    fresh = float_outputs(model, x[30:34], None)
    assert np.abs(fresh[1:] - keras_stream[1:]).max() > 1e-3
