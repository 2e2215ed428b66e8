"""Functional graphs of parallel branches (graph.py) merged by Add/Subtract/Average/Multiply/
Concatenate (layers/merge.py).

Property style: random graphs (two to four branches of GRU/LSTM/SimpleRNN/Dense over the input or
over each other, one to three merges of random kinds, a residual from the input now and then,
int8 or int16 states, a head or a recurrent last layer) are exported and compiled; the C equals
the integer reference bit for bit at every step with and without per-sequence lengths, the float
IR equals Keras, and the int8 output stays close to Keras. Then: streaming (run == step loop,
verify --stream), refusals, a graph on an emulated board.
"""

from __future__ import annotations

import re
import subprocess

import keras
import numpy as np
import pytest
from test_generated_c import COMPILERS, STRICT

from rnn2c.cli import main
from rnn2c.emulator import load_model
from rnn2c.export import ExportError, export_model, serialize
from rnn2c.export.api import read_any
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import run_int
from tools import need, require_arm_toolchain

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
MERGES = ("add", "subtract", "average", "multiply", "concat")
MAX_ERROR_FRACTION = 0.1  # of the float output range (at least 1.0 wide), as for chains


def random_graph(seed: int) -> tuple[keras.Model, str, int, int]:
    """A random functional graph of branches; (model, description, features, steps)."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    features, steps = int(rng.integers(1, 7)), int(rng.integers(1, 14))
    width = int(rng.integers(1, 12))
    inp = keras.Input((None, features))
    values = [inp]
    desc = [f"s{seed}-F{features}-T{steps}-W{width}"]

    def branch(src: keras.KerasTensor, units: int) -> keras.KerasTensor:
        kind = str(rng.choice(["gru", "lstm", "rnn", "dense"]))
        desc.append(f"{kind}{units}")
        if kind == "dense":
            act = str(rng.choice(["linear", "tanh", "relu", "sigmoid"]))
            return keras.layers.Dense(units, activation=act)(src)
        return CELLS[kind](units, return_sequences=True)(src)

    for _ in range(int(rng.integers(1, 4))):
        op = str(rng.choice(MERGES))
        n = 2 if op in ("multiply", "subtract") else int(rng.integers(2, 4))
        srcs = [values[int(rng.integers(0, len(values)))] for _ in range(n)]
        if op == "concat":
            parts = [branch(s, int(rng.integers(1, 9))) for s in srcs]
            merged = keras.layers.Concatenate()(parts)
        else:
            parts = [branch(s, width) for s in srcs]
            if rng.integers(0, 4) == 0 and features == width:  # a residual from the input
                parts[0] = inp
                desc.append("residual")
            layer = {
                "add": keras.layers.Add,
                "subtract": keras.layers.Subtract,
                "average": keras.layers.Average,
                "multiply": keras.layers.Multiply,
            }[op]
            merged = layer()(parts)
        desc.append(op)
        values.append(merged)
    x = values[-1]
    last = str(rng.choice(["dense", "gru", "lstm", "none"]))
    if last == "dense":
        x = keras.layers.Dense(int(rng.integers(1, 6)), activation="softmax")(x)
    elif last != "none":
        x = CELLS[last](int(rng.integers(1, 8)), return_sequences=bool(rng.integers(0, 2)))(x)
    desc.append(f"then-{last}")
    model = keras.Model(inp, x, name=f"g{seed}")
    for layer in model.layers:  # non-zero biases, so the bias paths are exercised
        w = layer.get_weights()
        if w and w[-1].ndim == 1:
            w[-1] = rng.normal(0, 0.3, size=w[-1].shape).astype(np.float32)
            layer.set_weights(w)
    return model, "-".join(desc), features, steps


def _has_recurrent(model: keras.Model) -> bool:
    return any(type(layer).__name__ in ("GRU", "LSTM", "SimpleRNN") for layer in model.layers)


SEEDS = range(16)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_graph_bit_exact_and_close(seed: int, tmp_path) -> None:  # noqa: ANN001
    model, desc, features, steps = random_graph(seed)
    rng = np.random.default_rng(seed)
    scale = float(rng.choice([0.3, 1.0, 2.0]))
    calib = (rng.normal(size=(32, steps, features)) * scale).astype(np.float32)
    test = (rng.normal(size=(16, steps, features)) * scale).astype(np.float32)
    activations = "int16" if seed % 3 == 1 else "int8"
    if not _has_recurrent(model):
        with pytest.raises(ExportError, match="no recurrent layer"):
            export_model(model, calib, tmp_path, name="g")
        return
    q = export_model(model, calib, tmp_path, name="g", activations=activations).qmodel
    assert q.inputs and any(layer.kind == "merge" for layer in q.layers), desc
    assert serialize.load(tmp_path / "g_qmodel.npz").inputs == q.inputs

    _, ir = read_any(model)
    fl, _ = observe_model(ir, test)
    want = np.asarray(model(test, training=False))
    want = want[:, -1] if want.ndim == 3 else want
    np.testing.assert_allclose(fl[:, -1], want, atol=1e-4, err_msg=desc)

    compiled = load_model(tmp_path, "g")
    assert compiled.streaming and compiled.state_size == q.state_bytes()
    lo, hi = np.full((steps, features), -128), np.full((steps, features), 127)
    extreme = np.stack([lo, hi, np.where(np.arange(steps)[:, None] % 2, hi, lo)]).astype(np.int8)
    xq = np.concatenate([q.input_q.quantize(test), extreme])
    lengths = rng.integers(1, steps + 1, size=xq.shape[0])
    for lens in (None, lengths):
        assert np.array_equal(compiled.run(xq, lens), run_int(q, xq, lens)), desc

    deq = q.output_q.dequantize(run_int(q, q.input_q.quantize(test))[:, -1])
    span = max(1.0, float(want.max() - want.min()))
    err = float(np.abs(deq - want).max())
    assert err <= MAX_ERROR_FRACTION * span, f"{desc}: max error {err:.4f}"


def fixed_graph(return_sequences: bool = True) -> keras.Model:
    """The issue's example: Input -> [GRU(16, return_sequences); Dense(16) per step] ->
    Concatenate -> GRU -> Dense; and a second pair of GRUs added on the way."""
    keras.utils.set_random_seed(11)
    inp = keras.Input((None, 5))
    a = keras.layers.GRU(16, return_sequences=True)(inp)
    b = keras.layers.Dense(16, activation="tanh")(inp)
    x = keras.layers.Concatenate()([a, b])
    c = keras.layers.GRU(8, return_sequences=True)(x)
    d = keras.layers.LSTM(8, return_sequences=True)(inp)
    x = keras.layers.Add()([c, d])
    x = keras.layers.GRU(8, return_sequences=return_sequences)(x)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x), name="branches")


@pytest.fixture(scope="module")
def graph_export(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    d = tmp_path_factory.mktemp("graph")
    model = fixed_graph()
    model.save(d / "g.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20, 5)).astype(np.float32)
    np.savez(d / "calib.npz", x=x[:30])
    y = np.asarray(model(x[30:])).argmax(-1)
    np.savez(d / "test.npz", x=x[30:], y=y, lengths=rng.integers(5, 21, size=30))
    export_model(d / "g.keras", d / "calib.npz", d / "c", name="branches")
    export_model(d / "g.keras", d / "calib.npz", d / "c16", name="br16", activations="int16")
    return d


def test_graph_streams_and_verifies(graph_export, capsys) -> None:  # noqa: ANN001
    """A graph of causal branches streams: verify (step per sample, a 2,000-step stream without
    reset) passes bit-exact; run equals the step loop."""
    d = graph_export
    rc = main(
        ["verify", str(d / "g.keras"), str(d / "c"), "--data", str(d / "test.npz")]
        + ["--stream", "600", "--min-agreement", "0.9"]  # untrained: outputs close together
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("bit-exact") == 2
    q = serialize.load(d / "c" / "branches_qmodel.npz")
    c = load_model(d / "c", "branches")
    x = q.input_q.quantize(np.load(d / "test.npz")["x"][:4])
    for seq in x:
        code, y = c.run_api(seq, out_rows=seq.shape[0])
        assert code == 0 and np.array_equal(y, c.run(seq[None])[0])
    h = (d / "c" / "branches.h").read_text()
    assert "#define BRANCHES_STREAMING 1" in h and "Merge" in h


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("opt", ["-O0", "-O2", "-Os"])
@pytest.mark.parametrize("model", ["c/branches", "c16/br16"])
def test_graph_c_compiles_warning_free(graph_export, cc: str, opt: str, model: str) -> None:  # noqa: ANN001
    need(cc)
    src = graph_export / f"{model}.c"
    code = re.sub(r"/\*.*?\*/", "", src.read_text(), flags=re.S)
    assert not re.search(r"\b(float|double)\b", code)
    obj = graph_export / f"{model.replace('/', '-')}-{cc}{opt}.o"
    subprocess.run(
        [cc, "-std=c99", opt, *STRICT, "-c", str(src), "-o", str(obj)],
        check=True,
        capture_output=True,
        text=True,
    )


def test_graph_on_a_board(graph_export, tmp_path, capsys) -> None:  # noqa: ANN001
    require_arm_toolchain()
    need("qemu-system-arm", "make")
    d = graph_export
    argv = ["firmware", str(d / "c16"), "--board", "mps2-an385", "--out", str(tmp_path / "fw")]
    rc = main([*argv, "--data", str(d / "test.npz"), "--sequences", "2", "--run"])
    out = capsys.readouterr().out
    assert rc == 0, out


def _refused(model: keras.Model, message: str, tmp_path) -> None:  # noqa: ANN001
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32)
    with pytest.raises(ExportError, match=message):
        export_model(model, x, tmp_path, name="g")


def test_refusals(tmp_path) -> None:  # noqa: ANN001
    inp = keras.Input((None, 3))
    a = keras.layers.GRU(4, return_sequences=True)(inp)
    b = keras.layers.GRU(4)(inp)
    _refused(keras.Model(inp, keras.layers.Add()([a, b])), "a sequence with a single", tmp_path)
    bi = keras.layers.Bidirectional(keras.layers.GRU(2, return_sequences=True))(inp)
    _refused(keras.Model(inp, keras.layers.Add()([a, bi])), "whole-sequence", tmp_path)
    shared = keras.layers.Dense(4)
    x = keras.layers.Add()([shared(a), shared(keras.layers.Dense(4)(inp))])
    _refused(keras.Model(inp, x), "called more than once", tmp_path)
    c = keras.layers.GRU(4, return_sequences=True)(inp)
    x = keras.layers.Multiply()([a, c, keras.layers.Dense(4)(inp)])
    _refused(keras.Model(inp, x), "rnn2c multiplies two", tmp_path)
    x = keras.layers.Concatenate(axis=1)([a, c])
    _refused(keras.Model(inp, x), "axis=1 is not supported", tmp_path)
    x = keras.layers.Add()([a, keras.layers.Conv1D(4, 1, padding="causal")(inp)])
    _refused(keras.Model(inp, x), "Conv1D in a graph of branches is not supported", tmp_path)
    x = keras.layers.Add()([a, keras.layers.Conv2D(4, 1)(keras.layers.Reshape((6, 3, 1))(inp))])
    _refused(
        keras.Model(inp, x),
        "layer type Reshape is not supported; rnn2c keeps one feature vector per step",
        tmp_path,
    )


@pytest.mark.parametrize("residual", [True, False])
def test_constant_input_feature(residual: bool, tmp_path) -> None:  # noqa: ANN001
    """A feature constant over the calibration set is folded into every layer that reads the
    input; where the input enters a merge as it is, nothing is folded and the input range covers
    the constant too."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, 3))
    a = keras.layers.GRU(3, return_sequences=True)(inp)
    other = inp if residual else keras.layers.Dense(3)(inp)
    x = keras.layers.Concatenate()([keras.layers.Add()([other, a]), a])
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    x = np.random.default_rng(0).normal(size=(20, 8, 3)).astype(np.float32)
    x[:, :, 1] = 5.0
    res = export_model(model, x, tmp_path, name="g")
    q = res.qmodel
    assert bool(res.notes) != residual
    c = load_model(tmp_path, "g")
    xq = q.input_q.quantize(x)
    assert np.array_equal(c.run(xq), run_int(q, xq))
    want = np.asarray(model(x))
    err = np.abs(q.output_q.dequantize(run_int(q, xq)) - want).max()
    assert err < 0.05 * (want.max() - want.min())
