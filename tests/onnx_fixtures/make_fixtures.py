"""Make the ONNX fixtures of tests/test_onnx_reader.py (the .onnx files beside this script).

Run with a Python that has torch, onnx and onnxscript (never the project's venv: torch is no
dependency of rnn2c):

    python3 -m venv /work/torchenv
    /work/torchenv/bin/pip install torch==2.13.0 onnx onnxscript   # the CPU wheel
    /work/torchenv/bin/python tests/onnx_fixtures/make_fixtures.py

Two kinds of fixture:

* small real torch modules (fixed seeds, 3 features, 4 to 8 units), each exported with both
  exporters: ``NAME.dyn.onnx`` with ``torch.onnx.export(..., dynamo=True)`` and dynamic batch and
  time (``dynamic_shapes``; the dynamo exporter may write ``NAME.dyn.onnx.data`` beside it, kept
  when it holds weights), ``NAME.leg.onnx`` with ``dynamo=False`` and ``dynamic_axes``. They
  cover batch_first True and False, 1 and 2 layers, bidirectional, Embedding, a Linear head per
  step and on the last step, an initial state as input and the state returned, nn.RNN tanh and
  relu, a causal Conv1d with F.pad, BatchNorm1d, LayerNorm, branches merged;
* graphs built with onnx.helper for the operator edge cases torch does not write (reverse
  direction, layout 1, linear_before_reset 0, LSTM input_forget, peepholes, clip, an old opset,
  an unsupported operator), ``NAME.onnx``.

The files are deterministic up to the exporters' versions (made with torch 2.13.0, onnxscript
0.7.2, onnx 1.23.2); tests compare the IR with onnxruntime on the files, not with torch.
"""

from __future__ import annotations

import logging
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F  # noqa: N812
from onnx import TensorProto, helper
from torch import nn

HERE = Path(__file__).resolve().parent
FEATURES = 3


class LastStep(nn.Module):
    """cell -> Linear on the last step (y[:, -1], or y[-1] time-major)."""

    def __init__(self, cell: nn.Module, out: int = 2, batch_first: bool = True) -> None:
        super().__init__()
        self.cell, self.batch_first = cell, batch_first
        width = cell.hidden_size * (2 if cell.bidirectional else 1)
        self.fc = nn.Linear(width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.cell(x)
        return self.fc(y[:, -1] if self.batch_first else y[-1])


class PerStep(nn.Module):
    """cell -> Linear at every step (the model returns sequences)."""

    def __init__(self, cell: nn.Module, out: int = 2) -> None:
        super().__init__()
        self.cell = cell
        self.fc = nn.Linear(cell.hidden_size * (2 if cell.bidirectional else 1), out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.cell(x)
        return torch.tanh(self.fc(y))


class WithState(nn.Module):
    """A 2-layer LSTM whose forward takes (h0, c0) and returns the output and (h, c)."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTM(FEATURES, 6, num_layers=2, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):  # noqa: ANN201
        y, (h, c) = self.cell(x, (h0, c0))
        return self.fc(y[:, -1]), h, c


class RNNState(nn.Module):
    """A 2-layer nn.RNN whose forward takes h0 and returns the output and h."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.RNN(FEATURES, 6, num_layers=2, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor, h0: torch.Tensor):  # noqa: ANN201
        y, h = self.cell(x, h0)
        return self.fc(y[:, -1]), h


class BidirState(nn.Module):
    """A bidirectional GRU (or nn.RNN) read through its final states:
    torch.cat([h_n[-2], h_n[-1]])."""

    def __init__(self, kind: type = nn.GRU) -> None:
        super().__init__()
        self.cell = kind(FEATURES, 5, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.cell(x)
        return torch.softmax(self.fc(torch.cat([h[-2], h[-1]], dim=1)), dim=-1)


class Tokens(nn.Module):
    """Embedding -> LSTM -> Linear on h_n[-1] -> leaky_relu."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(12, 4)
        self.cell = nn.LSTM(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.cell(self.emb(ids))
        return F.leaky_relu(self.fc(h[-1]), 0.1)


class ConvGRU(nn.Module):
    """Causal Conv1d (F.pad on the left) -> BatchNorm1d -> GELU -> GRU -> LayerNorm -> Linear ->
    softmax at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(FEATURES, 5, 3, dilation=2)
        self.bn = nn.BatchNorm1d(5)
        self.cell = nn.GRU(5, 6, batch_first=True)
        self.ln = nn.LayerNorm(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.pad(x.transpose(1, 2), (4, 0))
        z = F.gelu(self.bn(self.conv(z))).transpose(1, 2)
        y, _ = self.cell(z)
        return torch.softmax(self.fc(self.ln(y)), dim=-1)


class CellLoop(nn.Module):
    """A Python loop of nn.GRUCell over the steps (refused: rnn2c reads nn.GRU)."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(FEATURES, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], 4)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.fc(h)


class SameConv(nn.Module):
    """Conv1d with padding=1 (Keras' 'same': a whole-sequence layer) -> ELU -> LSTM -> Linear on
    the last step -> softplus."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(FEATURES, 4, 3, padding=1)
        self.cell = nn.LSTM(4, 5, batch_first=True)
        self.fc = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.elu(self.conv(x.transpose(1, 2)), alpha=0.5).transpose(1, 2)
        y, _ = self.cell(z)
        return F.softplus(self.fc(y[:, -1]))


class NormHead(nn.Module):
    """GRU -> last step -> BatchNorm1d -> Linear -> sigmoid (the BatchNorm folded forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRU(FEATURES, 6, batch_first=True)
        self.bn = nn.BatchNorm1d(6)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.cell(x)
        return torch.sigmoid(self.fc(self.bn(y[:, -1])))


class Branches(nn.Module):
    """Two recurrent branches over the same input, merged: added, multiplied, subtracted and
    concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.GRU(FEATURES, 4, batch_first=True)
        self.b = nn.LSTM(FEATURES, 4, batch_first=True)
        self.fc = nn.Linear(8, 2)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ya, _ = self.a(x)
        yb, _ = self.b(x)
        a, b = ya[:, -1], yb[:, -1]
        return self.fc(torch.cat([a + b, a * b], dim=1)) - self.fc2(a - b)


class FoldedHead(nn.Module):
    """GRU -> a Linear/ReLU/Dropout/Linear head over batch and time folded into one axis
    (y.reshape(-1, units)); unfolded back to [batch, time, out] or (``unfold=False``) returned
    folded [batch * time, out]."""

    def __init__(self, unfold: bool = True) -> None:
        super().__init__()
        self.cell = nn.GRU(FEATURES, 6, batch_first=True)
        self.head = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.1), nn.Linear(5, 2))
        self.unfold = unfold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        y, _ = self.cell(x)
        z = self.head(y.reshape(-1, 6))
        return z.reshape(b, t, 2) if self.unfold else z


def seeded(seed: int, make) -> nn.Module:  # noqa: ANN001
    torch.manual_seed(seed)
    m = make().eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
            if isinstance(mod, nn.LayerNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
    return m


#: name -> (module factory, batch_first, tokens, extra example inputs)
TORCH = {
    "gru_last": (lambda: LastStep(nn.GRU(FEATURES, 8, batch_first=True)), True),
    "gru_timemajor_seq": (lambda: PerStep(nn.GRU(FEATURES, 6)), False),
    "lstm2_state": (WithState, True),
    "gru_bidir_hn": (BidirState, True),
    "lstm_bidir2_seq": (
        lambda: PerStep(nn.LSTM(FEATURES, 4, num_layers=2, batch_first=True, bidirectional=True)),
        True,
    ),
    "rnn_tanh": (lambda: LastStep(nn.RNN(FEATURES, 5, batch_first=True)), True),
    "rnn_relu": (
        lambda: LastStep(nn.RNN(FEATURES, 5, nonlinearity="relu", batch_first=True)),
        True,
    ),
    "rnn_bidir_hn": (lambda: BidirState(nn.RNN), True),
    "rnn2_state": (RNNState, True),
    "gru_cell_loop": (CellLoop, True),
    "tokens_lstm": (Tokens, True),
    "conv_gru": (ConvGRU, True),
    "conv_same": (SameConv, True),
    "norm_head": (NormHead, True),
    "branches": (Branches, True),
    "gru_fold_head": (FoldedHead, True),
    "gru_folded_out": (lambda: FoldedHead(unfold=False), True),
}
#: the dynamo exporter writes nn.RNN unrolled over the example's 5 steps (one MatMul/Add/Tanh per
#: step, the steps fixed in the graph): rnn_*.dyn.onnx are the fixtures of reading that


def example(name: str, batch_first: bool) -> tuple:
    g = torch.Generator().manual_seed(1)
    if name == "tokens_lstm":
        return (torch.randint(0, 12, (2, 5), generator=g),)
    x = torch.randn(2, 5, FEATURES, generator=g)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    if name == "lstm2_state":
        return (x, torch.zeros(2, 2, 6), torch.zeros(2, 2, 6))
    if name == "rnn2_state":
        return (x, torch.zeros(2, 2, 6))
    return (x,)


def export_torch(name: str, seed: int) -> None:
    make, batch_first = TORCH[name]
    m = seeded(seed, make)
    args = example(name, batch_first)
    names = ["ids"] if name == "tokens_lstm" else ["x"]
    if name == "lstm2_state":
        names += ["h0", "c0"]
    if name == "rnn2_state":
        names += ["h0"]
    bt = {0: "batch", 1: "time"} if batch_first else {0: "time", 1: "batch"}
    axes = {names[0]: bt} | {n: {1: "batch"} for n in names[1:]}
    leg = HERE / f"{name}.leg.onnx"
    torch.onnx.export(m, args, str(leg), dynamo=False, input_names=names, dynamic_axes=axes)
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    dims = {0: batch, 1: time} if batch_first else {0: time, 1: batch}
    shapes = {names[0]: dims} | {n: {1: batch} for n in names[1:]}
    dyn = HERE / f"{name}.dyn.onnx"
    torch.onnx.export(m, args, str(dyn), dynamo=True, dynamic_shapes=shapes, input_names=names)
    data = dyn.with_name(dyn.name + ".data")
    if data.exists() and data.stat().st_size == 0:  # nothing stored beside it
        data.unlink()
    strip(dyn)


def strip(path: Path) -> None:
    """Drop the dynamo exporter's per-node metadata (stack traces with this machine's paths,
    name scopes): the graph, its weights and their external-data references stay as written."""
    model = onnx.load(str(path), load_external_data=False)
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.metadata_props[:]
    onnx.save(model, str(path))


def export_fixed() -> None:
    """A GRU exported without dynamic axes: batch 1 and 6 steps fixed in the graph."""
    m = seeded(7, lambda: LastStep(nn.GRU(FEATURES, 4, batch_first=True)))
    x = torch.randn(1, 6, FEATURES, generator=torch.Generator().manual_seed(2))
    torch.onnx.export(m, (x,), str(HERE / "gru_fixed.leg.onnx"), dynamo=False)


# ---------------------------------------------------------------- onnx.helper graphs


def _w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def recurrent_graph(
    name: str,
    op: str = "GRU",
    units: int = 4,
    direction: str = "forward",
    layout: int = 0,
    attrs: dict | None = None,
    peepholes: bool = False,
    opset_version: int = 17,
    after: str | None = None,
) -> None:
    """x -> op -> Y_h -> (Squeeze) -> Linear, x [batch, time, 3] (layout 1) or [time, batch, 3]
    (layout 0) with dynamic batch and time."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    nd = 2 if direction == "bidirectional" else 1
    g = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    inits = [
        helper.make_tensor(
            "W",
            TensorProto.FLOAT,
            [nd, g * units, FEATURES],
            _w(rng, nd, g * units, FEATURES).ravel(),
        ),
        helper.make_tensor(
            "R", TensorProto.FLOAT, [nd, g * units, units], _w(rng, nd, g * units, units).ravel()
        ),
        helper.make_tensor(
            "B", TensorProto.FLOAT, [nd, 2 * g * units], _w(rng, nd, 2 * g * units).ravel()
        ),
        helper.make_tensor(
            "fc_w", TensorProto.FLOAT, [units * nd, 2], _w(rng, units * nd, 2).ravel()
        ),
        helper.make_tensor("fc_b", TensorProto.FLOAT, [2], _w(rng, 2).ravel()),
        helper.make_tensor("axis", TensorProto.INT64, [1], [0 if layout == 0 else 1]),
    ]
    ins = ["x", "W", "R", "B"]
    if peepholes:
        inits.append(
            helper.make_tensor(
                "P", TensorProto.FLOAT, [nd, 3 * units], _w(rng, nd, 3 * units).ravel()
            )
        )
        ins += ["", "", "", "P"]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    a = {"hidden_size": units, "direction": direction, "layout": layout, **(attrs or {})}
    if nd == 1:
        glue = [helper.make_node("Squeeze", ["Y_h", "axis"], ["h"], name="squeeze")]
    elif layout == 1:  # Y_h [batch, 2, units] -> [batch, 2 units]
        glue = [helper.make_node("Flatten", ["Y_h"], ["h"], name="flatten", axis=1)]
    else:  # Y_h [2, batch, units] -> [batch, 2, units] -> [batch, 2 units]
        glue = [
            helper.make_node("Transpose", ["Y_h"], ["t"], name="transpose", perm=[1, 0, 2]),
            helper.make_node("Flatten", ["t"], ["h"], name="flatten", axis=1),
        ]
    nodes = [
        helper.make_node(op, ins, outs, name="rec", **a),
        *glue,
        helper.make_node("MatMul", ["h", "fc_w"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fc_b"], ["y" if after is None else "z"], name="fc_bias"),
    ]
    if after is not None:
        nodes.append(helper.make_node(after, ["z"], ["y"], name="after"))
    shape = ["time", "batch", FEATURES] if layout == 0 else ["batch", "time", FEATURES]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset_version)])
    model.ir_version = 8
    if opset_version >= 13:
        onnx.checker.check_model(model)
    onnx.save(model, str(HERE / f"{name}.onnx"))


def helper_graphs() -> None:
    recurrent_graph("gru_reverse", direction="reverse", attrs={"linear_before_reset": 1})
    recurrent_graph("gru_layout1", layout=1, attrs={"linear_before_reset": 1})
    recurrent_graph("gru_lbr0", attrs={"linear_before_reset": 0})
    recurrent_graph("lstm_layout1_bidir", op="LSTM", layout=1, direction="bidirectional")
    recurrent_graph("gru_bidir_lbr0", direction="bidirectional")
    recurrent_graph(
        "rnn_relu_reverse", op="RNN", direction="reverse", attrs={"activations": ["Relu"]}
    )
    recurrent_graph("lstm_input_forget", op="LSTM", attrs={"input_forget": 1})
    recurrent_graph("lstm_peepholes", op="LSTM", peepholes=True)
    recurrent_graph("gru_clip", attrs={"clip": 3.0, "linear_before_reset": 1})
    recurrent_graph("gru_opset11", opset_version=11, attrs={"linear_before_reset": 1})
    recurrent_graph("gru_sin", attrs={"linear_before_reset": 1}, after="Sin")


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    for path in HERE.glob("*.onnx*"):
        path.unlink()
    for name in TORCH:
        export_torch(name, zlib.crc32(name.encode()) % 1000)
    export_fixed()
    helper_graphs()
    for path in sorted(HERE.glob("*.onnx*")):
        print(f"{path.stat().st_size:7d}  {path.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
