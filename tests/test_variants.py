"""The Keras variants tutorials use (issue 15): BatchNormalization and Rescaling folded into
neighbouring weights, stateful=True, return_state=True with the state unused, a nested Sequential,
and the activation variants. Each exports, is bit-exact with the integer reference, and stays
close to float Keras."""

from __future__ import annotations

import ctypes
import platform
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from test_generated_c import COMPILERS, STRICT

from rnn2c.emulator import load_model, verify
from rnn2c.emulator.build import DEFAULT_FLAGS, find_compiler
from rnn2c.emulator.verify import float_outputs
from rnn2c.export import ExportError, export_model
from rnn2c.export import fixedpoint as fx
from rnn2c.export.api import read_any
from rnn2c.export.ir import ActQuant
from rnn2c.export.layers.common import FLOAT_GATES
from rnn2c.export.layers.dense import DEFAULT_ALPHA, float_activation
from rnn2c.export.layers.layer_norm import LayerNormLayer
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import run_int
from rnn2c.export.render import runtime_files, runtime_header
from tools import need


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


def check(  # noqa: ANN001
    model: keras.Model, calib: np.ndarray, test: np.ndarray, tmp_path, require_pass=True, **kw
) -> dict:
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
    if platform.machine() in ("x86_64", "AMD64"):  # the AVX2 kernels under the variant code
        vec = load_model(tmp_path / "c", "variant", flags=(*DEFAULT_FLAGS, "-march=native"))
        assert np.array_equal(vec.run(xq, lengths), run_int(q, xq, lengths))
    report = verify(model, tmp_path / "c", test)
    assert report.bit_exact and (report.passed or not require_pass), report.table()
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


@pytest.mark.parametrize("seed", range(5))
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
            "not a Dense or Conv1D without activation; move it before a GRU/LSTM/SimpleRNN/Dense "
            "layer",
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


# ---------------------------------------------------------------- 2. activation variants

PROBE = r"""
#include "rnn2c_runtime.h"
void probe_gate(const int32_t *x, const int32_t *kind, int32_t *y, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) y[i] = rnn2c_gate_q15(x[i], (uint32_t)kind[i]); }
void probe_cell(const int32_t *x, const int32_t *kind, int32_t *y, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) y[i] = rnn2c_cell_q15(x[i], (uint32_t)kind[i]); }
void probe_cell_of_c(const int32_t *c, const int32_t *frac, const int32_t *kind, int32_t *y,
                     int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) y[i] = rnn2c_cell_of_c(c[i], (int)frac[i], (uint32_t)kind[i]);
}
void probe_blend(const int32_t *z, const int32_t *h, const int32_t *c, int32_t *y, int32_t n)
{ int32_t i; for (i = 0; i < n; ++i) y[i] = rnn2c_blend_x_q15(z[i], h[i], c[i]); }
void probe_dense_act(const int32_t *x, const int32_t *kind, const int32_t *frac,
                     const int32_t *alpha, int32_t *y, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        rnn2c_dense_act_t a;
        a.out.multiplier = 0; a.out.shift_in = 0; a.out.shift_out = 1;
        a.kind = (uint8_t)kind[i]; a.frac = (uint8_t)frac[i]; a.alpha_q15 = (uint16_t)alpha[i];
        y[i] = rnn2c_dense_act(x[i], &a);
    }
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    d = tmp_path_factory.mktemp("probe_variants")
    for f, text in runtime_files().items():  # rnn2c_runtime.h and the headers it includes
        (d / f).write_text(text)
    (d / "probe.c").write_text(PROBE)
    lib = d / "libprobe.so"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
    subprocess.run(
        [*find_compiler(), *flags, "-I", str(d), str(d / "probe.c"), "-o", str(lib)], check=True
    )
    return ctypes.CDLL(str(lib))


def _call(fn, *arrays: np.ndarray) -> np.ndarray:  # noqa: ANN001
    n = max(np.size(a) for a in arrays)
    args = [np.ascontiguousarray(np.broadcast_to(a, (n,)), dtype=np.int32) for a in arrays]
    out = np.zeros(n, dtype=np.int32)
    fn(*[a.ctypes.data_as(ctypes.c_void_p) for a in args], out.ctypes.data_as(ctypes.c_void_p), n)
    return out.astype(np.int64)


ALL_Q12 = np.arange(-40000, 40000)  # every int16 value, plus out-of-range ones that saturate
INT16 = np.arange(-32768, 32768)


def test_variant_kernels_match_numpy_everywhere(probe) -> None:  # noqa: ANN001
    for name, code in fx.GATE_CODES.items():
        assert np.array_equal(_call(probe.probe_gate, ALL_Q12, code), fx.gate_q15(ALL_Q12, name))
    for name, code in fx.CELL_CODES.items():
        assert np.array_equal(_call(probe.probe_cell, ALL_Q12, code), fx.cell_q15(ALL_Q12, name))
        for frac in range(16):
            got = _call(probe.probe_cell_of_c, INT16, frac, code)
            assert np.array_equal(got, fx.cell_of_c(INT16, frac, name))
    rng = np.random.default_rng(0)
    z = rng.integers(-32767, 32768, 200_000)
    h = rng.integers(-32768, 32768, 200_000)
    c = rng.integers(-32767, 32768, 200_000)
    z[:4], h[:4], c[:4] = (
        [32767, -32767, 32767, -32767],
        [-32768, 32767, 32767, -32768],
        [
            32767,
            -32767,
            -32767,
            32767,
        ],
    )
    assert np.array_equal(_call(probe.probe_blend, z, h, c), fx.blend_x_q15(z, h, c))
    for name, code in fx.DENSE_X_CODES.items():
        for frac in (0, 4, 8, 10, 12):
            for alpha in (0, 6554, 9830, 32768):
                got = _call(probe.probe_dense_act, ALL_Q12, code, frac, alpha)
                assert np.array_equal(got, fx.dense_act(ALL_Q12, name, frac, alpha)), (name, frac)


#: measured worst-case |integer - float| over every int16 input (README, quantization spec):
#: gates and cells in Q0.15 on a Q3.12 input; Dense activations in units of the pre-activation's
#: last bit (the worst over frac = 0..12 fractional bits) and, at frac = 12, in real units
GATE_BOUNDS = {"hard_sigmoid": 3.1e-5, "linear": 3.1e-5}
CELL_BOUNDS = {"relu": 3.1e-5}
DENSE_BOUNDS = {  # (real at frac 12, LSB at any frac)
    "leaky_relu": (2.0e-4, 0.81),
    "elu": (6.1e-4, 2.5),
    "silu": (3.1e-4, 1.25),
    "gelu": (1.7e-4, 0.68),
    "softplus": (2.7e-4, 1.08),
}


def test_variant_activation_accuracy() -> None:
    real = INT16 / 4096.0
    for name, bound in GATE_BOUNDS.items():
        want = FLOAT_GATES[name](real).clip(-1, 1)
        assert np.abs(fx.gate_q15(INT16, name) / 32768 - want).max() < bound, name
    want = np.clip(real, 0, 1)
    assert np.abs(fx.cell_q15(INT16, "relu") / 32768 - want).max() < CELL_BOUNDS["relu"]
    for name, (at12, lsb) in DENSE_BOUNDS.items():
        alpha = DEFAULT_ALPHA.get(name, 0.0)
        for frac in range(13):
            got = fx.dense_act(INT16, name, frac, round(alpha * 32768))
            err = np.abs(got - float_activation(INT16 / 2.0**frac, name, alpha) * 2.0**frac)
            assert err.max() <= lsb, (name, frac, err.max())
            if frac == 12:
                assert err.max() / 4096 <= at12, (name, err.max() / 4096)


def test_variant_tables_are_the_numpy_tables() -> None:
    text = runtime_header()
    for fn, table in (
        ("rnn2c_erf_q15", fx.PHI_TABLE),
        ("rnn2c_softplus_tail_q15", fx.SOFTPLUS_TABLE),
    ):
        body = re.search(fn + r"\(.*?static const int16_t table\[[^\]]*\] = \{(.*?)\};", text, re.S)
        assert body is not None
        values = [int(v) for v in body.group(1).replace("\n", " ").split(",")]
        assert values == table.tolist()


def _small_recurrent(model: keras.Model, factor: float) -> None:
    """Scale recurrent weights so that linear gates and relu states stay in [-1, 1)."""
    for layer in model.layers:
        if hasattr(layer, "cell"):
            w = layer.get_weights()
            layer.set_weights([w[0] * factor, w[1] * factor, *w[2:]])


@pytest.mark.parametrize("seed", range(8))
def test_random_recurrent_activations(seed: int, tmp_path) -> None:  # noqa: ANN001
    """Property-style: GRU (both reset_after), LSTM and SimpleRNN with random recurrent and cell
    activations, int8 and int16 states."""
    rng = np.random.default_rng(100 + seed)
    keras.utils.set_random_seed(seed)
    f = int(rng.integers(1, 6))
    inp = keras.Input((None, f))
    h = inp
    depth = int(rng.integers(1, 3))
    linear = False
    for i in range(depth):
        kind = str(rng.choice(["gru", "lstm", "rnn"]))
        act = str(rng.choice(["tanh", "relu"]))
        kw = {
            "activation": act,
            "return_sequences": i < depth - 1,
            "use_bias": bool(rng.integers(0, 2)),
        }
        if kind != "rnn":
            gate = str(rng.choice(["hard_sigmoid", "linear", "sigmoid"]))
            if gate == "sigmoid" and act == "tanh":
                gate = "hard_sigmoid"
            kw["recurrent_activation"] = gate
            linear |= gate == "linear"
        units = int(rng.integers(2, 12))
        if kind == "gru":
            h = keras.layers.GRU(units, reset_after=bool(rng.integers(0, 2)), **kw)(h)
        elif kind == "lstm":
            h = keras.layers.LSTM(units, **kw)(h)
        else:
            kw["activation"] = "relu"
            h = keras.layers.SimpleRNN(units, **kw)(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    _small_recurrent(model, 0.25)
    x = _x(seed, n=40, t=int(rng.integers(2, 10)), f=f) * 0.5
    bits = str(rng.choice(["int8", "int16"]))
    figures = check(model, x, x[24:], tmp_path, require_pass=False, activations=bits)
    assert figures["max"] < 0.05 * max(0.5, figures["range"]), figures


@pytest.mark.parametrize("act", ["relu", "gelu", "swish", "silu", "leaky_relu", "elu", "softplus"])
def test_dense_activations(act: str, tmp_path) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.GRU(10),
            keras.layers.Dense(8, activation=act),
            keras.layers.Dense(3, activation=act),
        ]
    )
    x = _x(7, n=64)
    figures = check(model, x[:48], x[48:], tmp_path)
    assert figures["max"] < 0.03 * max(1.0, figures["range"]), figures


def test_activation_layers_fold_into_the_dense_before(tmp_path) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.LSTM(10, return_sequences=True),
            keras.layers.Dense(8),
            keras.layers.LeakyReLU(negative_slope=0.1),
            keras.layers.GRU(6),
            keras.layers.Dense(6),
            keras.layers.ELU(),
            keras.layers.Dense(5),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("gelu"),
            keras.layers.Dense(4),
            keras.layers.Activation("swish"),
        ]
    )
    _randomize_batchnorm(model, 1)
    x = _x(8, n=64)
    res_q = check(model, x[:48], x[48:], tmp_path)
    assert res_q["max"] < 0.03 * max(1.0, res_q["range"]), res_q
    _, ir = read_any(model)
    acts = [(layer.activation, layer.alpha) for layer in ir.layers if layer.kind == "dense"]
    assert acts == [("leaky_relu", pytest.approx(0.1)), ("elu", 1.0), ("gelu", 0.0), ("silu", 0.0)]


def test_relu_state_scale_covers_the_calibrated_state(tmp_path) -> None:  # noqa: ANN001
    """A relu state is quantized over [-2^k, 2^k) for the calibrated state (k <= 8); past that
    it saturates, and the export says so."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.SimpleRNN(6, activation="relu")])
    x = _x(0, n=16, f=3) * 4
    _, ir = read_any(model)
    y, _ = observe_model(ir, x)
    k = int(np.ceil(np.log2(np.abs(y).max() * 1.0001)))
    assert 1 <= k <= 8
    res = export_model(model, x, tmp_path / "c")
    assert res.qmodel.output_q.scale == 2.0**k / 128 and not res.notes
    res = export_model(model, x * 1000, tmp_path / "big")
    assert res.qmodel.output_q.scale == 2.0
    assert any("outside [-256, 256)" in note and "saturates" in note for note in res.notes)


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("opt", ["-O0", "-O2", "-Os"])
def test_variant_kernels_compile_warning_free(cc: str, opt: str, tmp_path_factory) -> None:  # noqa: ANN001
    need(cc)
    d = _variant_export(tmp_path_factory)
    for name in ("v8", "v16"):
        subprocess.run(
            [cc, "-std=c99", opt, *STRICT, "-c", str(d / name / f"{name}.c"), "-o", "/dev/null"],
            check=True,
            capture_output=True,
            text=True,
        )


_VARIANT_EXPORT: list = []


def _variant_model() -> keras.Model:
    """Every variant kernel in one model."""
    keras.utils.set_random_seed(9)
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.GRU(6, recurrent_activation="hard_sigmoid", return_sequences=True),
            keras.layers.GRU(
                5,
                activation="relu",
                reset_after=False,
                recurrent_activation="linear",
                return_sequences=True,
            ),
            keras.layers.LSTM(
                5, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True
            ),
            keras.layers.SimpleRNN(4, activation="relu"),
            keras.layers.LayerNormalization(),
            keras.layers.Dense(6, activation="gelu"),
            keras.layers.Dense(6, activation="softplus"),
            keras.layers.Dense(5),
            keras.layers.LeakyReLU(),
            keras.layers.Dense(4, activation="elu"),
            keras.layers.Dense(3, activation="swish"),
        ]
    )
    _small_recurrent(model, 0.3)
    return model


def _variant_export(factory) -> Path:  # noqa: ANN001
    if not _VARIANT_EXPORT:
        d = factory.mktemp("variants_c")
        model = _variant_model()
        x = _x(3, n=16)
        export_model(model, x, d / "v8", name="v8")
        export_model(model, x, d / "v16", name="v16", activations="int16")
        _VARIANT_EXPORT.append(d)
    return _VARIANT_EXPORT[0]


# ---------------------------------------------------------------- on an emulated board


def _combined_model() -> keras.Model:
    """Several of the variants in one model: BatchNormalization and Rescaling folds, a nested
    Sequential, a stateful GRU with hard_sigmoid gates, a relu LSTM with return_state (state
    unused), LayerNormalization, gelu / LeakyReLU / softplus Dense layers."""
    keras.utils.set_random_seed(12)
    inp = keras.Input(batch_shape=(1, None, 4))
    h = keras.layers.Rescaling(0.5, offset=-0.2)(inp)
    h = keras.layers.BatchNormalization()(h)
    front = keras.Sequential(
        [
            keras.layers.GRU(
                10, recurrent_activation="hard_sigmoid", stateful=True, return_sequences=True
            ),
            keras.layers.BatchNormalization(),
        ],
        name="front",
    )
    h = front(h)
    h, _, _ = keras.layers.LSTM(8, activation="relu", return_state=True)(h)
    h = keras.layers.LayerNormalization()(h)
    h = keras.layers.Dense(6, activation="gelu")(h)
    h = keras.layers.Dense(5)(h)
    h = keras.layers.LeakyReLU()(h)
    out = keras.layers.Dense(3, activation="softplus")(h)
    model = keras.Model(inp, out, name="combined")
    _randomize_batchnorm(model, 12)
    _small_recurrent(front, 0.5)
    _small_recurrent(model, 0.5)
    return model


@pytest.mark.parametrize("board", ["mps2-an386", "microbit"])
def test_combined_variants_run_bit_exact_on_an_emulated_board(
    board: str, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    from rnn2c.cli import main  # noqa: PLC0415

    model = _combined_model()
    model.save(tmp_path / "combined.keras")
    x = _x(21, n=24, t=10)
    np.savez(tmp_path / "calib.npz", x=x[:16])
    np.savez(tmp_path / "data.npz", x=x[16:], lengths=np.array([10, 7, 3, 10, 9, 1, 10, 4]))
    check(model, x[:16], x[16:], tmp_path / "host")  # host: reference, float, verify
    args = ["firmware", str(tmp_path / "combined.keras"), "--calib", str(tmp_path / "calib.npz")]
    args += ["--data", str(tmp_path / "data.npz"), "--sequences", "4", "--board", board]
    rc = main([*args, "--out", str(tmp_path / "fw"), "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact" in printed and printed.rstrip().endswith("PASS")


# ---------------------------------------------------------------- 4. LayerNormalization

LNORM_PROBE = r"""
#include "rnn2c_runtime.h"
/* rows of n int32 inputs (already int8 or int16 values) -> rows of n int16 outputs */
void probe_lnorm(const int32_t *x, const int32_t *params, int32_t *y, int32_t rows)
{
    int32_t scratch[8192];
    int16_t out[8192];
    rnn2c_lnorm_t p;
    int32_t i, j;
    p.n = (uint16_t)params[0]; p.zero_point = (int16_t)params[1]; p.c = params[2];
    p.eps_m = (int16_t)params[3]; p.eps_e = (int8_t)params[4]; p.k_min = (int8_t)params[5];
    p.frac = (uint8_t)params[6];
    for (i = 0; i < rows; ++i) {
        for (j = 0; j < p.n; ++j) scratch[j] = x[i * p.n + j] - p.zero_point;
        rnn2c_lnorm_core(&p, scratch, out);
        for (j = 0; j < p.n; ++j) y[i * p.n + j] = out[j];
    }
}
"""


@pytest.fixture(scope="module")
def lnorm_probe(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    d = tmp_path_factory.mktemp("probe_lnorm")
    for f, text in runtime_files().items():  # rnn2c_runtime.h and the headers it includes
        (d / f).write_text(text)
    (d / "probe.c").write_text(LNORM_PROBE)
    lib = d / "libprobe.so"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
    subprocess.run(
        [*find_compiler(), *flags, "-I", str(d), str(d / "probe.c"), "-o", str(lib)], check=True
    )
    return ctypes.CDLL(str(lib))


@pytest.mark.parametrize("n", [1, 2, 3, 8, 33, 64, 100, 512, 8192])
def test_layer_norm_integer_core_is_exact_and_close(lnorm_probe, n: int) -> None:  # noqa: ANN001
    """C == the NumPy mirror on random, constant, extreme and one-hot rows of int8 and int16
    inputs; within 3.2 units of the output's last bit of the float normalization (n <= 512;
    4.6 at 8192 features)."""
    rng = np.random.default_rng(n)
    for bits, scale, zp in ((8, 0.05, -3), (16, 2.0**-15, 0), (8, 1 / 128, 0)):
        for eps in (1e-3, 1e-6, 1.0):
            fl = LayerNormLayer(name="l", input_size=n, epsilon=eps)
            q = fl.quantize(ActQuant(scale, zp, bits), None, "minmax")
            lo, hi = (-128, 127) if bits == 8 else (-32768, 32767)
            rows = 40 if n > 1000 else 200
            x = np.concatenate(
                [
                    rng.integers(lo, hi + 1, size=(rows, n)),
                    np.clip(rng.integers(-3, 4, size=(rows // 2, n)) + zp, lo, hi),
                    np.full((1, n), lo),
                    np.full((1, n), hi),
                    np.where(np.arange(n) % 2, lo, hi)[None],
                    np.clip(zp + np.eye(max(n, 2), dtype=np.int64)[:2, :n], lo, hi),
                ]
            )
            want = q.step({}, x)
            params = [n, zp, q.c, q.eps_m, q.eps_e, q.k_min(), q.frac]
            got = np.zeros(x.size, dtype=np.int32)
            xs = np.ascontiguousarray(x, dtype=np.int32)
            ps = np.asarray(params, dtype=np.int32)
            lnorm_probe.probe_lnorm(
                xs.ctypes.data_as(ctypes.c_void_p),
                ps.ctypes.data_as(ctypes.c_void_p),
                got.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int32(x.shape[0]),
            )
            assert np.array_equal(got.reshape(x.shape), want), (bits, eps)
            err = np.abs(want / 2.0**q.frac - fl.step({}, (x - zp) * scale)).max() * 2.0**q.frac
            assert err <= (4.6 if n > 512 else 3.2), (bits, eps, err)


@pytest.mark.parametrize("seed", range(4))
def test_layer_norm_models(seed: int, tmp_path) -> None:  # noqa: ANN001
    """LayerNormalization on the input, between recurrent layers and after a Dense; gamma and
    beta folded into the next layer; int8 and int16 states."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    f = int(rng.integers(2, 6))
    inp = keras.Input((None, f))
    h = keras.layers.LayerNormalization()(inp) if seed % 2 else inp
    h = keras.layers.GRU(int(rng.integers(4, 16)), return_sequences=True)(h)
    h = keras.layers.LayerNormalization(epsilon=float(rng.choice([1e-3, 1e-5])))(h)
    h = keras.layers.LSTM(int(rng.integers(4, 12)))(h)
    h = keras.layers.Dense(int(rng.integers(4, 40)), activation="relu")(h)
    h = keras.layers.LayerNormalization(center=bool(seed % 3), scale=bool(seed % 2))(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))  # untrained: no argmax to agree on
    for layer in model.layers:
        if isinstance(layer, keras.layers.LayerNormalization):
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.5, 2.0, layer.gamma.shape[0]))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0, 0.5, layer.beta.shape[0]))
    x = _x(seed, n=48, t=8, f=f)
    bits = "int16" if seed >= 2 else "int8"
    figures = check(model, x[:32], x[32:], tmp_path, activations=bits)
    # the normalization divides int8 rounding noise by the input's spread: looser than elsewhere
    assert figures["max"] < 0.1 * max(1.0, figures["range"]), figures


def test_layer_norm_needs_a_weight_layer_after_it(tmp_path) -> None:  # noqa: ANN001
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.GRU(4), keras.layers.LayerNormalization(name="ln")]
    )
    with pytest.raises(ExportError, match=r"layer 'ln' \(LayerNormalization\): no weight layer"):
        export_model(model, np.ones((2, 5, 3), np.float32), tmp_path / "c")
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.LayerNormalization(), keras.layers.GRU(4)]
    )
    with pytest.raises(ExportError, match="input_quant='per-tensor'"):
        x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
        export_model(model, x, tmp_path / "c", input_quant="per-feature")
