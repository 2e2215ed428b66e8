"""The ONNX front end (export/onnx_reader.py): PyTorch models exported with torch.onnx read into the
same float IR as Keras models.

For every readable fixture of tests/onnx_fixtures/ (made by make_fixtures.py with torch; no torch
here): the float IR equals onnxruntime on random sequences at several real lengths, and the
generated C equals the integer reference bit for bit and stays close to onnxruntime. Every
refusal is one line naming what is wrong and the way forward.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from rnn2c.emulator import load_model
from rnn2c.export.ir import ExportError
from rnn2c.export.onnx_reader import read_onnx, run_onnx
from rnn2c.export.quantize import observe_model, quantize_model
from rnn2c.export.reference import last_step, run_int
from rnn2c.export.render import render
from tools import require

FIXTURES = Path(__file__).resolve().parent / "onnx_fixtures"
#: fixtures rnn2c reads: (file, IR layer kinds)
READABLE = {
    "gru_last.dyn.onnx": ["gru", "dense"],
    "gru_last.leg.onnx": ["gru", "dense"],
    "gru_timemajor_seq.dyn.onnx": ["gru", "dense"],
    "gru_timemajor_seq.leg.onnx": ["gru", "dense"],
    "lstm2_state.dyn.onnx": ["lstm", "lstm", "dense"],
    "lstm2_state.leg.onnx": ["lstm", "lstm", "dense"],
    "gru_bidir_hn.dyn.onnx": ["bidir", "dense"],
    "gru_bidir_hn.leg.onnx": ["bidir", "dense"],
    "lstm_bidir2_seq.dyn.onnx": ["bidir", "bidir", "dense"],
    "lstm_bidir2_seq.leg.onnx": ["bidir", "bidir", "dense"],
    "rnn_tanh.dyn.onnx": ["rnn", "dense"],  # written unrolled over 5 steps
    "rnn_tanh.leg.onnx": ["rnn", "dense"],
    "rnn_relu.dyn.onnx": ["rnn", "dense"],
    "rnn_relu.leg.onnx": ["rnn", "dense"],
    "rnn_bidir_hn.dyn.onnx": ["bidir", "dense"],
    "rnn_bidir_hn.leg.onnx": ["bidir", "dense"],
    "rnn2_state.dyn.onnx": ["rnn", "rnn", "dense"],
    "rnn2_state.leg.onnx": ["rnn", "rnn", "dense"],
    "tokens_lstm.dyn.onnx": ["lstm", "dense"],
    "tokens_lstm.leg.onnx": ["lstm", "dense"],
    "conv_gru.dyn.onnx": ["conv1d", "gru", "lnorm", "dense"],
    "conv_gru.leg.onnx": ["conv1d", "gru", "lnorm", "dense"],
    "conv_same.dyn.onnx": ["conv1d", "lstm", "dense"],
    "conv_same.leg.onnx": ["conv1d", "lstm", "dense"],
    "norm_head.dyn.onnx": ["gru", "dense"],
    "norm_head.leg.onnx": ["gru", "dense"],
    "branches.dyn.onnx": ["gru", "lstm", "merge", "merge", "merge", "dense", "merge", "dense"]
    + ["merge"],
    "branches.leg.onnx": ["gru", "lstm", "merge", "merge", "merge", "dense", "merge", "dense"]
    + ["merge"],
    "gru_fixed.leg.onnx": ["gru", "dense"],
    "gru_fold_head.dyn.onnx": ["gru", "dense", "dense"],
    "gru_fold_head.leg.onnx": ["gru", "dense", "dense"],
    "gru_folded_out.dyn.onnx": ["gru", "dense", "dense"],
    "gru_folded_out.leg.onnx": ["gru", "dense", "dense"],
    "gru_reverse.onnx": ["bidir", "dense"],
    "gru_layout1.onnx": ["gru", "dense"],
    "gru_lbr0.onnx": ["gru", "dense"],
    "gru_bidir_lbr0.onnx": ["bidir", "dense"],
    "lstm_layout1_bidir.onnx": ["bidir", "dense"],
    "rnn_relu_reverse.onnx": ["bidir", "dense"],
}
#: the float IR against onnxruntime: relative to the output's magnitude
FLOAT_TOLERANCE = 1e-5
#: the dequantized int8 output against onnxruntime, as a fraction of the output range
MAX_ERROR_FRACTION = 0.1


@pytest.fixture(autouse=True)
def _onnx_installed() -> None:
    require("py:onnx", "pip install onnx==1.23.1, the extra 'onnx'")
    require("py:onnxruntime", "pip install onnxruntime==1.30.0, the extra 'onnx'")


def sequences(ir, n: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:  # noqa: ANN001
    """Random inputs [n, steps, F] (token ids [n, steps]) and ragged real lengths (None for a
    graph with a fixed time axis)."""
    rng = np.random.default_rng(seed)
    if ir.embedding is not None:
        x = rng.integers(0, ir.embedding.vocab, size=(n, steps))
    else:
        x = (rng.normal(size=(n, steps, ir.input_size)) * 1.5).astype(np.float32)
    if ir.layout.fixed_steps is not None:
        return x, None
    return x, rng.integers(1, steps + 1, size=n)


def float_ir(ir, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:  # noqa: ANN001
    """The float IR's output as run_onnx gives it: the last real step, or every real step."""
    y, _ = observe_model(ir, ir.float_input(x).astype(np.float64), lengths)
    if not ir.layout.sequences:
        return last_step(y, lengths)
    t = x.shape[1]
    lens = np.full(x.shape[0], t) if lengths is None else lengths
    return np.where((np.arange(t)[None, :] < lens[:, None])[:, :, None], y, 0.0)


@pytest.mark.parametrize("name", sorted(READABLE))
def test_float_ir_equals_onnxruntime(name: str) -> None:
    ir = read_onnx(FIXTURES / name)
    assert [layer.kind for layer in ir.layers] == READABLE[name]
    fixed = ir.layout.fixed_steps
    for seed, steps in enumerate([fixed] if fixed else [1, 4, 11]):
        x, lengths = sequences(ir, 7, steps, seed)
        want = run_onnx(ir, x, lengths)
        got = float_ir(ir, x, lengths)
        assert got.shape == want.shape
        err = np.abs(got - want).max()
        assert err <= FLOAT_TOLERANCE * max(1.0, np.abs(want).max()), f"{name}: {err:.2e}"


@pytest.mark.parametrize("name", sorted(READABLE))
def test_c_bit_exact_and_close_to_onnxruntime(name: str, tmp_path: Path) -> None:
    ir = read_onnx(FIXTURES / name)
    steps = ir.layout.fixed_steps or 9
    x, lengths = sequences(ir, 24, steps, 200)
    calib, calib_lengths = sequences(ir, 32, steps, 100)
    calib = np.concatenate([calib, x])  # the test inputs within the calibrated ranges
    if lengths is not None:
        calib_lengths = np.concatenate([calib_lengths, lengths])
    q = quantize_model(ir, calib, calib_lengths, max_length=steps if ir.whole_sequence else None)
    for file, text in render(q, "m").items():
        (tmp_path / file).write_text(text)
    c = load_model(tmp_path, "m")  # strict flags: warnings are errors
    xq = q.quantize_input(x)
    ref = run_int(q, xq, lengths)
    got = c.run_tokens(x, lengths) if ir.embedding is not None else c.run(xq, lengths)
    assert np.array_equal(got, ref), f"{name}: C != integer reference"
    want = run_onnx(ir, x, lengths)
    deq = q.output_q.dequantize(ref if ir.layout.sequences else last_step(ref, lengths))
    if ir.layout.sequences and lengths is not None:
        deq = np.where((np.arange(steps)[None, :] < lengths[:, None])[:, :, None], deq, 0.0)
    span = max(1.0, float(want.max() - want.min()))
    assert np.abs(deq - want).max() <= MAX_ERROR_FRACTION * span


# ---------------------------------------------------------------- what the reader decides


def test_gate_orders_and_forms() -> None:
    """linear_before_reset 1 is reset_after=True with a recurrent bias, 0 reset_after=False with
    the whole bias on the input side; LSTM gates i, o, f, c become i, f, c, o."""
    (gru, _) = read_onnx(FIXTURES / "gru_last.leg.onnx").layers
    assert gru.reset_after and np.any(gru.recurrent_bias)
    (lbr0, _) = read_onnx(FIXTURES / "gru_lbr0.onnx").layers
    assert not lbr0.reset_after and not np.any(lbr0.recurrent_bias)
    import onnx  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    m = onnx.load(str(FIXTURES / "lstm2_state.leg.onnx"))
    node = next(n for n in m.graph.node if n.op_type == "LSTM")
    w = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == node.input[1]))
    lstm = read_onnx(FIXTURES / "lstm2_state.leg.onnx").layers[0]
    u = lstm.units
    blocks = [w[0, k * u : (k + 1) * u] for k in range(4)]  # i, o, f, c
    assert np.array_equal(lstm.kernel.T, np.concatenate([blocks[i] for i in (0, 2, 3, 1)]))


def test_layouts_and_notes() -> None:
    """The reader finds batch and time from the graph and says so; data stays [N, T, F]."""
    tm = read_onnx(FIXTURES / "gru_timemajor_seq.leg.onnx")
    assert tm.layout.input_axes == ("T", "B", "F")
    assert tm.sequence_out == [True, True] and tm.layout.sequences
    assert "axis 1 is batch, axis 0 time" in tm.notes[0]
    bf = read_onnx(FIXTURES / "gru_last.dyn.onnx")
    assert bf.layout.input_axes == ("B", "T", "F") and not bf.layout.sequences
    assert "axis 0 is batch, axis 1 time" in bf.notes[0]
    fixed = read_onnx(FIXTURES / "gru_fixed.leg.onnx")
    assert (fixed.layout.fixed_batch, fixed.layout.fixed_steps) == (1, 6)
    assert any("fixes the time axis at 6 steps" in note for note in fixed.notes)
    folded = read_onnx(FIXTURES / "gru_folded_out.leg.onnx")  # [batch * time, out]
    assert folded.layout.output_axes == ("B*T", "F") and folded.layout.sequences
    head = read_onnx(FIXTURES / "gru_fold_head.dyn.onnx")  # folded, Linear, ReLU, unfolded
    assert head.layout.output_axes == ("B", "T", "F") and head.layers[1].activation == "relu"
    state = read_onnx(FIXTURES / "lstm2_state.dyn.onnx")
    assert [s[0] for s in state.layout.states] == ["h0", "c0"]
    assert state.layout.states[0][1] == [2, None, 6]  # [layers, batch, units], batch fed n
    assert any("initial recurrent state" in note for note in state.notes)
    assert any("the recurrent state the model returns" in note for note in state.notes)


def test_whole_sequence_and_graphs() -> None:
    """Bidirectional ops are whole-sequence (a dynamic T needs --max-length, which the quantizer
    asks for); merges make a graph of branches; token ids an Embedding front end."""
    bidir = read_onnx(FIXTURES / "lstm_bidir2_seq.dyn.onnx")
    assert bidir.whole_sequence and bidir.needs_max_length
    assert all(layer.return_sequences for layer in bidir.layers[:2])
    x, lengths = sequences(bidir, 8, 6, 0)
    with pytest.raises(ExportError, match="max-length"):
        quantize_model(bidir, x, lengths)
    hn = read_onnx(FIXTURES / "gru_bidir_hn.leg.onnx")
    assert not hn.layers[0].return_sequences and hn.layers[0].merge == "concat"
    reverse = read_onnx(FIXTURES / "gru_reverse.onnx")
    assert reverse.layers[0].forward is None and not reverse.layers[0].return_sequences
    branches = read_onnx(FIXTURES / "branches.leg.onnx")
    assert branches.inputs[:3] == [[-1], [-1], [0, 1]]
    assert [ly.op for ly in branches.layers if ly.kind == "merge"] == [
        "add",
        "multiply",
        "concat",
        "subtract",
        "subtract",
    ]
    tokens = read_onnx(FIXTURES / "tokens_lstm.dyn.onnx")
    assert tokens.embedding is not None and tokens.embedding.vocab == 12
    conv = read_onnx(FIXTURES / "conv_gru.leg.onnx").layers[0]
    assert (conv.padding, conv.dilation, conv.taps) == ("causal", 2, 3)
    same = read_onnx(FIXTURES / "conv_same.dyn.onnx")  # nn.Conv1d(padding=1): whole-sequence
    assert same.layers[0].padding == "same" and same.whole_sequence
    assert (same.layers[0].activation, same.layers[-1].activation) == ("elu", "softplus")
    assert same.layers[0].alpha == 0.5


# ---------------------------------------------------------------- refusals


def one_line(excinfo: pytest.ExceptionInfo) -> str:  # type: ignore[type-arg]
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("lstm_input_forget.onnx", ["node 'rec' (LSTM)", "input_forget=1"]),
        ("lstm_peepholes.onnx", ["node 'rec' (LSTM)", "peephole"]),
        ("gru_clip.onnx", ["node 'rec' (GRU)", "clip=3"]),
        ("gru_opset11.onnx", ["opset 11", "opset 13 or later", "opset_version"]),
        ("gru_sin.onnx", ["node 'after' (Sin)", "operator Sin is not supported"]),
        ("gru_cell_loop.dyn.onnx", ["(Gather)", "takes step 0", "nn.GRUCell"]),
        ("gru_cell_loop.leg.onnx", ["(Gather)", "takes step 0", "nn.GRUCell"]),
    ],
)
def test_refused_fixtures(name: str, facts: list[str]) -> None:
    with pytest.raises(ExportError) as e:
        read_onnx(FIXTURES / name)
    message = one_line(e)
    for fact in facts:
        assert fact in message


def test_unrolled_rnn(tmp_path: Path) -> None:
    """The dynamo exporter's nn.RNN, one MatMul/Add/Tanh per step of the example, is read as
    the RNN op it computes (the steps stay fixed in the graph: the reference runs 5 steps); a
    chain that does not match step for step is refused, naming dynamo=False."""
    import onnx  # noqa: PLC0415

    ir = read_onnx(FIXTURES / "rnn_tanh.dyn.onnx")
    assert ir.layout.fixed_steps == 5 and any("unrolled" in note for note in ir.notes)
    bidir = read_onnx(FIXTURES / "rnn_bidir_hn.dyn.onnx")
    assert bidir.layers[0].forward.kind == bidir.layers[0].backward.kind == "rnn"
    model = onnx.load(str(FIXTURES / "rnn_tanh.dyn.onnx"))
    next(n for n in model.graph.node if n.op_type == "Tanh").op_type = "Relu"  # steps differ
    onnx.save(model, str(tmp_path / "mixed.onnx"))
    with pytest.raises(ExportError) as e:
        read_onnx(tmp_path / "mixed.onnx")
    message = one_line(e)
    assert "(MatMul)" in message and "5 MatMul nodes" in message and "dynamo=False" in message


def test_bad_files(tmp_path: Path) -> None:
    good = (FIXTURES / "gru_last.leg.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good[: len(good) // 2])
    text = tmp_path / "text.onnx"
    text.write_text("not a model\n")
    for path in (cut, text):
        with pytest.raises(ExportError) as e:
            read_onnx(path)
        assert "not a readable ONNX model" in one_line(e) or "holds no ONNX graph" in one_line(e)
    with pytest.raises(ExportError) as e:
        read_onnx(tmp_path / "absent.onnx")
    assert "does not exist" in one_line(e)
    with pytest.raises(ExportError) as e:
        read_onnx(tmp_path)
    assert "is a folder" in one_line(e)


def test_external_weights_missing_or_cut(tmp_path: Path) -> None:
    """The dynamo exporter stores weights beside the file (NAME.onnx.data)."""
    src = FIXTURES / "gru_last.dyn.onnx"
    data = src.with_name(src.name + ".data")
    assert data.stat().st_size > 0
    shutil.copy(src, tmp_path / src.name)
    with pytest.raises(ExportError) as e:
        read_onnx(tmp_path / src.name)
    message = one_line(e)
    assert "'gru_last.dyn.onnx.data'" in message and "missing" in message
    (tmp_path / data.name).write_bytes(data.read_bytes()[:100])
    with pytest.raises(ExportError) as e:
        read_onnx(tmp_path / src.name)
    assert ".data file" in one_line(e)
    shutil.copy(data, tmp_path / data.name)
    assert [ly.kind for ly in read_onnx(tmp_path / src.name).layers] == ["gru", "dense"]
    # a location outside the model's folder is refused, not followed
    import onnx  # noqa: PLC0415

    model = onnx.load(str(src), load_external_data=False)
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../" + data.name
    inner = tmp_path / "inner"
    inner.mkdir()
    onnx.save(model, str(inner / src.name))
    with pytest.raises(ExportError) as e:
        read_onnx(inner / src.name)
    assert "outside its folder" in one_line(e)


def test_fixed_steps_reference_refuses_other_lengths() -> None:
    ir = read_onnx(FIXTURES / "gru_fixed.leg.onnx")
    x = np.zeros((2, 4, 3), dtype=np.float32)
    with pytest.raises(ExportError) as e:
        run_onnx(ir, x)
    message = one_line(e)
    assert "takes 6-step sequences only" in message and "4 steps" in message


# ---------------------------------------------------------------- small graphs built here

UNITS = 4


def build(tmp_path: Path, nodes: list, inits: dict, outputs: list[str], **gru) -> Path:  # type: ignore[type-arg]
    """x [time, batch, 3] -> GRU 'rec' (Y, Y_h) -> nodes; inits: name -> array."""
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415

    rng = np.random.default_rng(0)
    nd = 2 if gru.get("direction") == "bidirectional" else 1
    weights = {
        "W": rng.normal(size=(nd, 3 * UNITS, 3)),
        "R": rng.normal(size=(nd, 3 * UNITS, UNITS)),
        "B": rng.normal(size=(nd, 6 * UNITS)),
    }
    ins = ["x", "W", "R", "B"] + (["", gru.pop("initial_h")] if "initial_h" in gru else [])
    rec = helper.make_node("GRU", ins, ["Y", "Y_h"], name="rec", hidden_size=UNITS, **gru)
    tensors = [
        numpy_helper.from_array(np.asarray(v, dtype=np.int64 if "idx" in k else np.float32), k)
        for k, v in {**weights, **inits}.items()
    ]
    graph = helper.make_graph(
        [rec, *nodes],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", 3])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        tensors,
    )
    path = tmp_path / "g.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.30 reads
    onnx.save(model, str(path))
    return path


def node(op: str, ins: list[str], out: str, **attrs) -> object:  # noqa: ANN003
    from onnx import helper  # noqa: PLC0415

    return helper.make_node(op, ins, [out], name=f"n_{out}", **attrs)


def refusal(path: Path) -> str:
    with pytest.raises(ExportError) as e:
        read_onnx(path)
    return one_line(e)


def test_graph_refusals(tmp_path: Path) -> None:
    w = np.ones((UNITS, 2))
    squeeze = node("Squeeze", ["Y_h", "idx0"], "h")
    idx0 = {"idx0": np.array([0])}
    # two outputs computed from the input: rnn2c exports one
    path = build(
        tmp_path,
        [squeeze, node("MatMul", ["h", "w"], "y1"), node("MatMul", ["h", "w"], "y2")],
        {**idx0, "w": w},
        ["y1", "y2"],
    )
    assert "2 outputs computed from the input ('y1', 'y2')" in refusal(path)
    # an activation straight on a recurrent op's output
    path = build(tmp_path, [squeeze, node("Tanh", ["h"], "y")], idx0, ["y"])
    assert "node 'n_y' (Tanh): an activation is supported only right after a Linear" in refusal(
        path
    )
    # a nonzero constant initial state
    path = build(
        tmp_path,
        [squeeze, node("MatMul", ["h", "w"], "y")],
        {**idx0, "w": w, "h0": np.ones((1, 1, UNITS))},
        ["y"],
        initial_h="h0",
    )
    assert "initial_h is a nonzero constant" in refusal(path)
    # a reshape that mixes batch and features
    path = build(
        tmp_path,
        [
            node("Squeeze", ["Y", "idx1"], "s"),
            node("Reshape", ["s", "shape"], "r"),
            node("MatMul", ["r", "wide"], "y"),
        ],
        {"idx1": np.array([1]), "shape": np.array([0, -1]), "wide": np.ones((8, 2))},
        ["y"],
    )
    assert "node 'n_r' (Reshape)" in refusal(path) and "batch, features" in refusal(path)
    # one input axis read as time by the GRU and as batch by a Conv
    path = build(
        tmp_path,
        [
            squeeze,
            node("MatMul", ["h", "w"], "y"),
            node("Transpose", ["x"], "xt", perm=[0, 2, 1]),
            node("Conv", ["xt", "kernel"], "c"),
        ],
        {**idx0, "w": w, "kernel": np.ones((2, 3, 1))},
        ["y", "c"],
    )
    message = refusal(path)
    assert "node 'n_c' (Conv): it reads axis 0 of input 'x' as batch" in message
    assert "node 'rec' (GRU) reads it as time" in message


def test_recurrent_refusals(tmp_path: Path) -> None:
    squeeze_y = node("Squeeze", ["Y", "idx1"], "s")
    per_step = {"idx1": np.array([1]), "w": np.ones((UNITS, 2))}
    # a reverse op read at every step (its Y is time-aligned; rnn2c reads it through Y_h)
    path = build(
        tmp_path,
        [squeeze_y, node("MatMul", ["s", "w"], "y")],
        per_step,
        ["y"],
        direction="reverse",
    )
    assert "(reverse direction): the graph reads its every step (Y)" in refusal(path)
    # gate activations the integer kernels do not have
    path = build(
        tmp_path,
        [squeeze_y, node("MatMul", ["s", "w"], "y")],
        per_step,
        ["y"],
        activations=["HardSigmoid", "Tanh"],
    )
    assert "activations ['HardSigmoid', 'Tanh'] are not supported" in refusal(path)
    # every step and the final state of one op, both computed with
    path = build(
        tmp_path,
        [
            squeeze_y,
            node("MatMul", ["s", "w"], "m"),
            node("Gather", ["m", "idx_last"], "last", axis=0),
            node("Squeeze", ["Y_h", "idx0"], "h"),
            node("MatMul", ["h", "w"], "n"),
            node("Add", ["last", "n"], "y"),
        ],
        {**per_step, "idx0": np.array([0]), "idx_last": np.array(-1)},
        ["y"],
    )
    assert "reads both its every step (Y) and its final state" in refusal(path)


def test_bidirectional_last_step_refused(tmp_path: Path) -> None:
    """y[:, -1] of a bidirectional op: its backward direction has seen one step there, which is
    not what rnn2c's C computes (the final states): refused, pointing at h_n."""
    path = build(
        tmp_path,
        [
            node("Transpose", ["Y"], "t", perm=[0, 2, 1, 3]),
            node("Reshape", ["t", "shape"], "r"),
            node("Gather", ["r", "idx_last"], "last", axis=0),
            node("MatMul", ["last", "w"], "y"),
        ],
        {"shape": np.array([0, 0, -1]), "idx_last": np.array(-1), "w": np.ones((8, 2))},
        ["y"],
        direction="bidirectional",
        linear_before_reset=1,
    )
    message = refusal(path)
    assert "node 'n_y' (MatMul)" in message and "h_n" in message and "torch.cat" in message


def test_last_step_of_a_per_step_layer(tmp_path: Path) -> None:
    """fc(y)[-1] (a Linear at every step, then the last step) is read as a model with one output
    per sequence, as onnxruntime gives it."""
    path = build(
        tmp_path,
        [
            node("Squeeze", ["Y", "idx1"], "s"),
            node("MatMul", ["s", "w"], "m"),
            node("Gather", ["m", "idx_last"], "y", axis=0),
        ],
        {"idx1": np.array([1]), "w": np.ones((UNITS, 2)) * 0.3, "idx_last": np.array(-1)},
        ["y"],
        linear_before_reset=1,
    )
    ir = read_onnx(path)
    assert ir.sequence_out == [True, False] and not ir.layout.sequences
    x, lengths = sequences(ir, 5, 6, 0)
    err = np.abs(float_ir(ir, x, lengths) - run_onnx(ir, x, lengths)).max()
    assert err <= FLOAT_TOLERANCE


def test_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without onnx / onnxruntime installed: one line naming the extra to install."""
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
        with pytest.raises(ExportError) as e:
            read_onnx(FIXTURES / "gru_last.leg.onnx")
    assert "package onnx" in one_line(e) and "rnn2c[onnx]" in one_line(e)
    ir = read_onnx(FIXTURES / "gru_last.leg.onnx")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnxruntime", None)
        with pytest.raises(ExportError) as e:
            run_onnx(ir, np.zeros((1, 3, 3), dtype=np.float32))
    assert "package onnxruntime" in one_line(e)
