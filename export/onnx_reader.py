"""Read a PyTorch model exported to ONNX (``torch.onnx.export``, either exporter) into the same float
IR the Keras reader produces, so that the quantizer, the C, the boards and verify are shared.

The reader walks the graph once, in its (topological) node order, keeping a value per tensor
(export/onnx_graph.py): constants and the glue torch writes around recurrent ops (``Shape``-
derived sizes of dynamic axes, the zero initial state, ``Transpose`` for ``batch_first``,
``Squeeze``/``Unsqueeze``, ``Reshape`` that joins the two directions, ``Gather``/``Slice`` that take
the last step) are folded or tracked as axis bookkeeping, and the operators that compute become
IR layers:

* ``GRU`` (``linear_before_reset`` 1 is PyTorch's and Keras' ``reset_after=True``; 0 Keras'
  ``reset_after=False``), ``LSTM`` (no peepholes, no ``input_forget``), ``RNN`` (tanh, relu);
  forward, reverse (read through its final state ``Y_h``) and bidirectional (its two directions
  side by side); ``layout`` 0 and 1; ``initial_h``/``initial_c`` from graph inputs (the C keeps
  the state: a model whose forward takes and returns the state streams as it is) and ``Y_h``/
  ``Y_c`` as extra outputs (the returned state); the stacked ops of ``num_layers``;
* ``MatMul``/``Gemm`` (+ ``Add``) as Dense, ``Conv`` (1-D; the left padding of ``F.pad`` or of its
  ``pads`` makes it causal), ``Gather`` on a weight over token ids (Embedding),
  ``LayerNormalization``, ``BatchNormalization`` and per-feature ``Mul``/``Add``/``Sub``/``Div`` by
  constants (folded into the next weight layer, or the Linear before them), the activations
  after a Linear or Conv (Relu, Sigmoid, Tanh, Softmax, LeakyRelu, Elu, Gelu, Softplus);
* ``Add``/``Sub``/``Mul``/``Concat`` of two computed tensors as merges (a graph of branches).

Anything else is refused in one line naming the node, its op type and the way forward. The ONNX
gate orders are converted to the IR's (Keras') orders: GRU z, r, h is already Keras' z, r, h; LSTM
i, o, f, c becomes i, f, c, o.

Data: ``--calib``/``--data`` stay [N, T, F] (token ids [N, T]) whatever the graph's layout; the
reader finds which input axis is batch and which time from the operators that read them
(:class:`OnnxLayout`) and says so in a note. :func:`run_onnx` runs the model with onnxruntime on
[N, T, F] sequences, each at its real length: the float reference.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, FloatLayer, ModelIR, fold_affine
from rnn2c.export.layers.bidirectional import SequenceLayer
from rnn2c.export.layers.conv1d import MAX_SPAN, Conv1DLayer
from rnn2c.export.layers.dense import DenseLayer
from rnn2c.export.layers.embedding import EmbeddingLayer
from rnn2c.export.layers.gru import GRULayer
from rnn2c.export.layers.layer_norm import LayerNormLayer
from rnn2c.export.layers.lstm import LSTMLayer
from rnn2c.export.layers.merge import MergeLayer
from rnn2c.export.layers.simple_rnn import SimpleRNNLayer
from rnn2c.export.onnx_graph import (
    BIG,
    FLOAT_TYPES,
    INT_TYPES,
    Const,
    Data,
    Dim,
    Feat,
    Fill,
    Part,
    ShapeVal,
    StateIn,
    Value,
    fold_node,
    last_only,
    load,
    merge_segments,
    opset,
    product,
    reshape_groups,
    resolve_target,
    slice_feat,
    whole_range,
)

RECURRENT_OPS = ("GRU", "LSTM", "RNN")
#: activation op -> (IR activation, attribute holding its slope or None)
ACTIVATION_OPS = {
    "Relu": ("relu", None),
    "Sigmoid": ("sigmoid", None),
    "Tanh": ("tanh", None),
    "Softmax": ("softmax", None),
    "LeakyRelu": ("leaky_relu", "alpha"),
    "Elu": ("elu", "alpha"),
    "Gelu": ("gelu", None),
    "Softplus": ("softplus", None),
    "HardSigmoid": ("hard_sigmoid", None),
}
PASS_OPS = ("Identity", "Dropout", "Cast")
#: ops that pass a tensor's values on unchanged (a layer's output through them is still its own)
GLUE_PASS = (*PASS_OPS, "Transpose", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Expand")
#: ops that only move a constant-filled tensor (the zero state) around
FILL_GLUE = (*PASS_OPS, "Slice", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Expand", "Gather")
#: ONNX recurrent activations -> the IR's (gates, cells)
GATES = {"Sigmoid": "sigmoid"}
CELLS = {"Tanh": "tanh", "Relu": "relu"}
#: what to do instead, for operators people meet around recurrent models
NEXT_STEP = {
    "Loop": "export without data-dependent control flow (no Python loops over steps: use nn.GRU, "
    "nn.LSTM or nn.RNN)",
    "Scan": "export without data-dependent control flow (use nn.GRU, nn.LSTM or nn.RNN)",
    "If": "export without data-dependent control flow (no Python branches on tensor values)",
    "ReduceMean": "for a LayerNorm written out by hand use nn.LayerNorm (opset 17 or later writes "
    "one LayerNormalization op); for mean pooling over time, pool in firmware",
    "Attention": "attention is not exported from ONNX; use recurrent layers",
    "MultiHeadAttention": "attention is not exported from ONNX; use recurrent layers",
    "Conv2d": "treat the extra axis as channels and use a Conv1d over time",
    "LogSoftmax": "end the model with the Linear layer (or Softmax); take the log in firmware",
}
SUPPORTED_OPS = sorted(
    {
        *RECURRENT_OPS,
        *ACTIVATION_OPS,
        *PASS_OPS,
        "MatMul",
        "Gemm",
        "Conv",
        "Pad",
        "Gather",
        "LayerNormalization",
        "BatchNormalization",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Concat",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Slice",
        "Reshape",
        "Flatten",
        "Shape",
        "Expand",
        "ConstantOfShape",
        "Constant",
    }
    - {"HardSigmoid"}
)


@dataclass
class OnnxLayout:
    """What the float runner needs to feed the graph [N, T, F] sequences and read its output."""

    path: str
    input_name: str
    #: per axis of the graph input: "B", "T" or "F" (token ids: "B", "T")
    input_axes: tuple[str, ...]
    input_dtype: str
    fixed_batch: int | None
    fixed_steps: int | None
    #: recurrent state inputs, fed zeros: (name, dims with None for the batch axis, dtype)
    states: list[tuple[str, list[int | None], str]]
    output_name: str
    #: per axis of the output: "B", "T", "F", "1" (a unit axis) or "B*T" / "T*B" (folded)
    output_axes: tuple[str, ...]

    @property
    def sequences(self) -> bool:
        return any("T" in a for a in self.output_axes)


@dataclass
class OnnxIR(ModelIR):
    """The float IR of an ONNX model, with what the reader decided (notes) and the graph's layout
    for the float runner."""

    notes: list[str] = field(default_factory=list)
    layout: OnnxLayout | None = None


@dataclass(frozen=True)
class Ids:
    """The model's token-id input [a0, a1] (read by a Gather on an embedding table)."""

    axes: tuple[str, ...]


def read_onnx(path: str | os.PathLike[str]) -> OnnxIR:
    """A .onnx file -> the float IR (an OnnxIR: a ModelIR with notes and the graph's layout).
    One-line ExportError for anything rnn2c cannot read."""
    model = load(path)
    return _Reader(model, Path(path)).read()


def _name(text: str) -> str:
    """A layer name from an ONNX node or tensor name ('/rnn/GRU' -> 'rnn_GRU')."""
    s = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    return s or "layer"


class _Reader:
    def __init__(self, model: Any, path: Path) -> None:
        self.model, self.path = model, path
        self.graph = model.graph
        self.version = opset(model)
        self.env: dict[str, Value | Ids] = {}
        self.uses_of: dict[str, int] = {}
        self.layers: list[FloatLayer] = []
        self.inputs: list[list[int]] = []
        self.seq: list[bool] = []
        self.rec_uses: dict[int, set[str]] = {}  # recurrent layer -> "seq" / "final" reads
        self.roles: dict[str, str] = {}  # input axis label -> "B" / "T"
        self.role_node: dict[str, str] = {}
        self.fixed: dict[str, int | None] = {}
        self.embedding: EmbeddingLayer | None = None
        self.notes: list[str] = []
        self.state_batch: dict[str, int] = {}
        self.names: set[str] = set()
        self.input_name = ""
        self.input_dims: list[Any] = []
        self.layer_out: dict[int, str] = {}  # layer -> the tensor that holds its output
        self.readers_of: dict[str, list[Any]] = {}  # tensor -> the nodes that read its values
        self.pad_axis: str | None = None
        self.features = 0

    # ---------------------------------------------------------------- helpers

    def where(self, node: Any) -> str:
        return f"node '{node.name or node.output[0]}' ({node.op_type})"

    def unique(self, text: str) -> str:
        base = _name(text)
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def value(self, name: str) -> Value | Ids | None:
        return self.env.get(name) if name else None

    def const(self, node: Any, k: int, what: str) -> np.ndarray:
        v = self.value(node.input[k]) if k < len(node.input) else None
        if isinstance(v, Const):
            return v.value
        if isinstance(v, ShapeVal) and v.const() is not None:
            return v.const()  # type: ignore[return-value]
        raise ExportError(
            f"{self.where(node)}: its {what} (input {k}) is computed from the model input; rnn2c "
            "reads it only as a constant (a weight or a fixed size)"
        )

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper  # noqa: PLC0415

        out = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else v
        return out

    def role(self, label: str) -> str | None:
        if label in ("B", "T"):
            return label
        return self.roles.get(label)

    def assign(self, label: str, role: str, node: Any) -> None:
        """Give an input axis its role (batch or time), as the operator `node` reads it."""
        if label.startswith(("a0", "a1")) and "*" not in label:
            have = self.roles.get(label)
            if have is None:
                other = "a1" if label == "a0" else "a0"
                if self.roles.get(other) == role:
                    raise ExportError(self._axis_conflict(label, role, node))
                self.roles[label] = role
                self.role_node[label] = self.where(node)
                return
            if have == role:
                return
            raise ExportError(self._axis_conflict(label, role, node))
        if self.role(label) != role:
            what = {"B": "batch", "T": "time"}[role]
            raise ExportError(
                f"{self.where(node)}: it reads as its {what} axis an axis that is not the model "
                f"input's batch or time axis ({label!r}); rnn2c reads graphs whose batch and time "
                "axes stay separate ([batch, time, features] or [time, batch, features])"
            )

    def _axis_conflict(self, label: str, role: str, node: Any) -> str:
        what = {"B": "batch", "T": "time"}
        k = int(label[1])
        before = self.roles.get(label) or role
        return (
            f"{self.where(node)}: it reads axis {k} of input '{self.input_name}' as "
            f"{what[role]}, while {self.role_node.get(label, 'another node')} reads it as "
            f"{what[before]}; rnn2c needs one batch and one time axis throughout the graph"
        )

    def size(self, data: Data | StateIn | Ids, label: str) -> Dim:
        if label == "F":
            return Dim(data.width) if isinstance(data, Data) else Dim(1, (label,))
        if label == "1":
            return Dim(1)
        if label == "D":
            return Dim(len(data.feats)) if isinstance(data, Data) else Dim(1, (label,))
        if "*" in label:
            return product([self.size(data, p) for p in label.split("*")])
        fixed = self.fixed.get(label)
        return Dim(fixed) if fixed is not None else Dim(1, (label,))

    def shape(self, data: Data | StateIn | Ids) -> list[Dim]:
        return [self.size(data, a) for a in data.axes]

    def axis(self, node: Any, data: Any, k: int) -> int:
        rank = len(data.axes)
        if not -rank <= k < rank:
            raise ExportError(f"{self.where(node)}: axis {k} out of range for rank {rank}")
        return k % rank

    # ---------------------------------------------------------------- layers

    def _only_reader(self, k: int, node: Any) -> bool:
        """Whether `node` alone reads layer k's output (through single-reader glue): then a
        per-feature affine or an activation may go into the layer itself."""
        name = self.layer_out.get(k, "")
        outputs = {o.name for o in self.graph.output}
        while name:
            readers = self.readers_of.get(name, [])
            if len(readers) != 1 or name in outputs:
                return False
            if readers[0] is node:
                return True
            if readers[0].op_type not in GLUE_PASS:
                return False
            name = readers[0].output[0]
        return False

    def add_layer(self, layer: FloatLayer, inputs: list[int], seq: bool, out: str = "") -> int:
        for f in ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "table"):
            v = getattr(layer, f, None)
            if isinstance(v, np.ndarray) and not np.isfinite(v).all():
                raise ExportError(
                    f"layer '{layer.name}': its weights hold NaN or inf values; retrain or repair "
                    "the model (rnn2c needs finite weights)"
                )
        self.layers.append(layer)
        self.inputs.append(inputs)
        self.seq.append(seq)
        self.layer_out[len(self.layers) - 1] = out
        return len(self.layers) - 1

    def has_time(self, data: Data) -> bool:
        return any(self.role(p) == "T" or p.startswith(("a0", "a1")) and self._maybe_time(p)
                   for a in data.axes for p in a.split("*"))

    def _maybe_time(self, label: str) -> bool:
        """An input axis with no role yet: time unless the other one is known to be."""
        role = self.roles.get(label)
        if role is not None:
            return role == "T"
        other = "a1" if label == "a0" else "a0"
        return self.roles.get(other) != "T"

    def consume(self, data: Data, node: Any, allow_affine: bool = False) -> tuple[int, Part | None]:
        """The IR producer a layer reads for `data` (a merge of its segments when it is made of
        several); with allow_affine the one segment's pending affine is returned for the caller
        to fold, else it must have none."""
        if len(data.feats) != 1:
            raise ExportError(
                f"{self.where(node)}: it reads a tensor with an axis of {len(data.feats)} stacked "
                "parts (the directions or layers of a recurrent op's state); rnn2c reads the "
                "directions side by side: concatenate them on the feature axis first"
            )
        if any("*" in a for a in data.axes) and node.op_type in RECURRENT_OPS + ("Conv",):
            raise ExportError(
                f"{self.where(node)}: its input has batch and time folded into one axis; unfold "
                "them (reshape to [batch, time, features]) before a recurrent or Conv layer"
            )
        feat = merge_segments(data.feats[0])
        for p in feat:
            self._check_part(p, node)
        seq = self.has_time(data)
        if len(feat) == 1:
            p = feat[0]
            self._check_whole(p, node)
            if p.affine is not None and not allow_affine:
                raise ExportError(self._affine_message(p, node))
            self._use(p)
            return p.src, (p if p.affine is not None else None)
        srcs = []
        for p in feat:
            self._check_whole(p, node)
            if p.affine is not None:
                raise ExportError(self._affine_message(p, node))
            self._use(p)
            srcs.append(p.src)
        widths = [p.width for p in feat]
        name = self.unique(f"{node.name or node.output[0]}_concat")
        merge = MergeLayer(name=name, input_size=sum(widths), op="concat", parts=widths)
        return self.add_layer(merge, srcs, seq), None

    def _check_part(self, p: Part, node: Any) -> None:
        if p.kind == "cell":
            raise ExportError(
                f"{self.where(node)}: it reads an LSTM's cell state (Y_c / c_n); rnn2c exports "
                "models that read the hidden state (Y, Y_h / h_n); return the cell state only"
            )
        if p.kind not in ("seq", "final"):
            raise ExportError(f"{self.where(node)}: {p.kind}")
        if p.pad:
            raise ExportError(
                f"{self.where(node)}: it reads a tensor padded over time (Pad / F.pad); rnn2c "
                "reads time padding only right before a Conv (the causal left padding)"
            )

    def _check_whole(self, p: Part, node: Any) -> None:
        width = self.layers[p.src].output_size if p.src >= 0 else self.features
        if p.lo != 0 or p.hi != width:
            what = "layer '" + self.layers[p.src].name + "'" if p.src >= 0 else "the model input"
            extra = ""
            if p.src >= 0 and self.layers[p.src].kind == "bidir" and p.direction:
                extra = (
                    " (one direction of a bidirectional op alone); rnn2c reads both directions "
                    "side by side: concatenate them (torch.cat([h_n[-2], h_n[-1]], dim=1))"
                )
            else:
                extra = "; rnn2c reads whole tensors (no feature slices)"
            raise ExportError(
                f"{self.where(node)}: it reads features {p.lo}:{p.hi} of the {width} of {what}"
                + extra
            )

    def _affine_message(self, p: Part, node: Any) -> str:
        return (
            f"{self.where(node)}: it reads a tensor scaled or shifted per feature (Mul/Add/"
            "BatchNormalization/LayerNormalization's scale and bias) that rnn2c folds only into "
            "the next Linear, Conv or recurrent layer, or back into a Linear or Conv before it; "
            "move the normalization next to such a layer"
        )

    def _use(self, p: Part) -> None:
        if p.src >= 0 and p.src in self.rec_uses:
            self.rec_uses[p.src].add(p.kind)

    # ---------------------------------------------------------------- the walk

    def read(self) -> OnnxIR:
        self._init_inputs()
        self._refuse_unrolled()
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.uses_of[name] = self.uses_of.get(name, 0) + 1
                    if node.op_type != "Shape":
                        self.readers_of.setdefault(name, []).append(node)
        for o in self.graph.output:
            self.uses_of[o.name] = self.uses_of.get(o.name, 0) + 1
        for node in self.graph.node:
            self._node(node)
        return self._finish()

    def _refuse_unrolled(self) -> None:
        """torch's dynamo exporter writes nn.RNN unrolled over the example's steps: one MatMul
        per step with the same recurrent weight, the steps fixed. Refused with the way out."""
        users: dict[str, list[Any]] = {}
        inits = {t.name for t in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "MatMul" and len(node.input) > 1 and node.input[1] in inits:
                users.setdefault(node.input[1], []).append(node)
        for weight, nodes in users.items():
            if len(nodes) > 1:
                raise ExportError(
                    f"{self.where(nodes[0])}: its weight '{weight}' is multiplied by "
                    f"{len(nodes)} MatMul nodes, one per step: a recurrence unrolled over the "
                    "example's steps (torch's dynamo exporter writes nn.RNN so); export with "
                    "torch.onnx.export(..., dynamo=False), which writes one RNN op"
                )

    def _init_inputs(self) -> None:
        from onnx import numpy_helper  # noqa: PLC0415

        inits = set()
        for t in self.graph.initializer:
            self.env[t.name] = Const(numpy_helper.to_array(t))
            inits.add(t.name)
        graph_inputs = [i for i in self.graph.input if i.name not in inits]
        if not graph_inputs:
            raise ExportError(f"model file {str(self.path)!r}: the graph has no input")
        main = graph_inputs[0]
        self.input_name = main.name
        tt = main.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        self.input_dims = dims
        where = f"model file {str(self.path)!r}: input '{main.name}'"
        if tt.elem_type in INT_TYPES and len(dims) == 2:
            self.env[main.name] = Ids(("a0", "a1"))
        elif tt.elem_type in FLOAT_TYPES and len(dims) == 3 and dims[2]:
            self.env[main.name] = Data(("a0", "a1", "F"), ((Part(-1, 0, int(dims[2])),),))
        else:
            shape = [d if d else "?" for d in dims]
            raise ExportError(
                f"{where} has shape {shape}; rnn2c reads sequences [batch, time, features] (or "
                "[time, batch, features]) with a fixed feature count, or token ids [batch, time]"
            )
        self.fixed = {"a0": dims[0] or None, "a1": dims[1] or None}
        self.features = int(dims[2]) if len(dims) == 3 else 0
        self.states: list[tuple[str, list[int | None], int]] = []
        for k, i in enumerate(graph_inputs[1:]):
            sdims = [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
            self.env[i.name] = StateIn(i.name, tuple(f"{i.name}:{j}" for j in range(len(sdims))))
            self.states.append((i.name, sdims, int(i.type.tensor_type.elem_type)))
            del k

    def _node(self, node: Any) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise ExportError(
                f"{self.where(node)}: operator {node.domain}.{op} is not a standard ONNX operator; "
                "export with torch.onnx.export and no custom operators"
            )
        ins = [self.value(n) for n in node.input]
        known = [v for v in ins if v is not None]
        if all(isinstance(v, Const) or (isinstance(v, ShapeVal) and v.const() is not None) for v in known) and op not in RECURRENT_OPS:
            vals = [None if v is None else v.value if isinstance(v, Const) else v.const() for v in ins]
            for name, out in zip(node.output, fold_node(node, vals, self.version), strict=False):
                self.env[name] = Const(out)
            return
        if op == "Constant":  # pragma: no cover - folded above
            return
        if any(isinstance(v, Data | Ids) for v in known) or op in RECURRENT_OPS or op == "Conv":
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise ExportError(self._unsupported(node))
            outs = handler(node, ins)
        elif any(isinstance(v, StateIn) for v in known):
            outs = self._state_glue(node, ins)
        elif any(isinstance(v, Fill) for v in known):
            outs = self._fill_glue(node, ins)
        else:
            outs = self._shape_glue(node, ins)
        for name, out in zip(node.output, outs, strict=False):
            if name:
                self.env[name] = out

    def _unsupported(self, node: Any) -> str:
        op = node.op_type
        advice = NEXT_STEP.get(op, f"supported operators: {', '.join(SUPPORTED_OPS)}")
        return f"{self.where(node)}: operator {op} is not supported; {advice}"

    # ---------------------------------------------------------------- glue without data

    def _shape_glue(self, node: Any, ins: list[Any]) -> list[Value]:
        """Symbolic shape arithmetic (ShapeVal inputs)."""
        op, a = node.op_type, self.attrs(node)
        where = self.where(node)

        def sv(v: Any) -> ShapeVal:
            if isinstance(v, ShapeVal):
                return v
            arr = np.asarray(v.value)
            return ShapeVal(tuple(Dim(int(x)) for x in arr.reshape(-1)), arr.ndim == 0)

        if op in PASS_OPS:
            return [ins[0]]
        if op == "Concat":
            dims = tuple(d for v in ins if v is not None for d in sv(v).dims)
            return [ShapeVal(dims)]
        if op == "Gather":
            s, idx = sv(ins[0]), np.asarray(self.const(node, 1, "index"))
            picked = tuple(s.dims[int(i)] for i in idx.reshape(-1))
            return [ShapeVal(picked, idx.ndim == 0)]
        if op == "Slice":
            s = sv(ins[0])
            start, end = int(self.const(node, 1, "starts")[0]), int(self.const(node, 2, "ends")[0])
            step = int(self.const(node, 4, "steps")[0]) if len(node.input) > 4 and node.input[4] else 1
            end = min(end, len(s.dims)) if end >= 0 else end
            start = max(start, -len(s.dims) - 1) if start < 0 else start
            return [ShapeVal(tuple(s.dims[start:end:step] if end > -BIG else s.dims[start::step]))]
        if op in ("Unsqueeze", "Reshape") or op == "Squeeze":
            s = sv(ins[0])
            return [ShapeVal(s.dims, op == "Squeeze" and len(s.dims) == 1)]
        if op in ("Mul", "Add", "Sub", "Div"):
            x, y = sv(ins[0]), sv(ins[1])
            n = max(len(x.dims), len(y.dims))
            xd = x.dims * n if len(x.dims) == 1 else x.dims
            yd = y.dims * n if len(y.dims) == 1 else y.dims
            out = []
            for p, q in zip(xd, yd, strict=True):
                if op == "Mul":
                    out.append(p * q)
                elif op == "Div" and p.div(q) is not None:
                    out.append(p.div(q))
                elif p.value is not None and q.value is not None and op in ("Add", "Sub"):
                    out.append(Dim(p.value + q.value if op == "Add" else p.value - q.value))
                else:
                    raise ExportError(
                        f"{where}: shape arithmetic {op} on a dynamic axis size ({p} and {q}) is "
                        "not supported; export with a fixed size there"
                    )
            return [ShapeVal(tuple(out), x.scalar and y.scalar)]
        if op == "ConstantOfShape":
            value = a.get("value")
            from onnx import numpy_helper  # noqa: PLC0415

            v = float(numpy_helper.to_array(value).reshape(-1)[0]) if value is not None else 0.0
            return [Fill(v)]
        if op == "Expand":
            src = ins[0]
            if isinstance(src, Const) and np.all(src.value == src.value.reshape(-1)[0]):
                return [Fill(float(src.value.reshape(-1)[0]))]
        raise ExportError(
            f"{where}: {op} on a dynamic axis size is not supported; export with that axis fixed, "
            "or tell rnn2c's maintainers which torch code wrote it"
        )

    def _fill_glue(self, node: Any, ins: list[Any]) -> list[Value]:
        """A tensor of one value (the zero initial state) moved around: it stays that value."""
        op = node.op_type
        fills = [v for v in ins if isinstance(v, Fill)]
        if op in FILL_GLUE or (op == "Concat" and len({f.value for f in fills}) == 1):
            return [fills[0]] * max(1, len(node.output))
        if op in ("Mul", "Add", "Sub", "Div"):
            other = ins[1] if isinstance(ins[0], Fill) else ins[0]
            if isinstance(other, Const) and other.value.size and np.all(other.value == other.value.reshape(-1)[0]):
                c = float(other.value.reshape(-1)[0])
                x = fills[0].value
                first = isinstance(ins[0], Fill)
                res = {"Mul": x * c, "Add": x + c, "Sub": x - c if first else c - x,
                       "Div": x / c if first and c else None}[op]
                if res is not None:
                    return [Fill(res)]
        raise ExportError(
            f"{self.where(node)}: {op} on a constant-filled tensor of dynamic shape is not "
            "supported; rnn2c reads such tensors only as a recurrent op's zero initial state"
        )

    def _state_glue(self, node: Any, ins: list[Any]) -> list[Value]:
        """A state input (StateIn) on its way to a recurrent op: track its axes."""
        op = node.op_type
        s = next(v for v in ins if isinstance(v, StateIn))
        where = self.where(node)
        if op in PASS_OPS:
            return [s]
        if op == "Slice":
            return [s]
        if op == "Split":
            return [s] * len(node.output)
        if op == "Gather":
            idx = np.asarray(self.const(node, 1, "index"))
            k = self.axis(node, s, int(self.attrs(node).get("axis", 0)))
            if idx.ndim == 0:
                return [StateIn(s.name, s.axes[:k] + s.axes[k + 1 :])]
            return [s]
        if op == "Squeeze":
            axes = [self.axis(node, s, int(k)) for k in self.const(node, 1, "axes")]
            return [StateIn(s.name, tuple(a for k, a in enumerate(s.axes) if k not in axes))]
        if op == "Unsqueeze":
            axes = list(s.axes)
            for k in sorted(int(k) % (len(s.axes) + len(self.const(node, 1, "axes"))) for k in self.const(node, 1, "axes")):
                axes.insert(k, "1")
            return [StateIn(s.name, tuple(axes))]
        if op == "Transpose":
            perm = self.attrs(node).get("perm", list(reversed(range(len(s.axes)))))
            return [StateIn(s.name, tuple(s.axes[p] for p in perm))]
        if op == "Shape":
            a = self.attrs(node)
            dims = [Dim(1, (lab,)) for lab in s.axes]
            return [ShapeVal(tuple(dims[a.get("start", 0) : a.get("end", len(dims))]))]
        raise ExportError(
            f"{where}: it computes with graph input '{s.name}'; rnn2c reads inputs beyond the "
            "first only as a recurrent op's initial state (initial_h / initial_c, h0 / c0)"
        )

    # ---------------------------------------------------------------- glue on data

    def op_Identity(self, node: Any, ins: list[Any]) -> list[Any]:
        return [ins[0]]

    def op_Dropout(self, node: Any, ins: list[Any]) -> list[Any]:
        return [ins[0]]

    def op_Cast(self, node: Any, ins: list[Any]) -> list[Any]:
        to = int(self.attrs(node).get("to", 1))
        if isinstance(ins[0], Ids):
            if to not in INT_TYPES:
                raise ExportError(f"{self.where(node)}: it casts the token ids to floats; feed "
                                  "them to an Embedding (nn.Embedding) directly")
            return [ins[0]]
        if to not in FLOAT_TYPES:
            raise ExportError(f"{self.where(node)}: it casts a computed tensor to integers; "
                              "rnn2c reads float computations only")
        return [ins[0]]

    def op_Shape(self, node: Any, ins: list[Any]) -> list[Any]:
        a = self.attrs(node)
        dims = self.shape(ins[0])
        start, end = int(a.get("start", 0)), int(a.get("end", len(dims)))
        return [ShapeVal(tuple(dims[start:end]))]

    def op_Transpose(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        perm = self.attrs(node).get("perm", list(reversed(range(len(d.axes)))))
        return [d.with_axes(tuple(d.axes[p] for p in perm))]

    def op_Squeeze(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        if len(node.input) > 1 and node.input[1]:
            axes = {self.axis(node, d, int(k)) for k in self.const(node, 1, "axes").reshape(-1)}
        else:
            axes = {k for k, lab in enumerate(d.axes) if self.size(d, lab) == Dim(1)}
        for k in axes:
            if d.axes[k] != "1":
                raise ExportError(
                    f"{self.where(node)}: it squeezes axis {k} ({self._label(d.axes[k])}), which "
                    "is not a unit axis rnn2c can drop; export with a dynamic batch axis "
                    "(dynamic_axes / dynamic_shapes) so that it is not squeezed away"
                )
        return [d.with_axes(tuple(lab for k, lab in enumerate(d.axes) if k not in axes))]

    def op_Unsqueeze(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        ks = [int(k) for k in self.const(node, 1, "axes").reshape(-1)]
        rank = len(d.axes) + len(ks)
        axes = list(d.axes)
        for k in sorted(k % rank for k in ks):
            axes.insert(k, "1")
        return [d.with_axes(tuple(axes))]

    def _label(self, label: str) -> str:
        role = {"B": "batch", "T": "time"}.get(self.role(label) or "", "")
        named = {"F": "features", "1": "unit", "D": "stacked directions or layers"}
        return role or named.get(label, label)

    def _data(self, node: Any, v: Any) -> Data:
        if isinstance(v, Ids):
            raise ExportError(
                f"{self.where(node)}: it computes with the token ids; rnn2c reads token ids only "
                "through an Embedding (nn.Embedding) as the model's first layer"
            )
        if not isinstance(v, Data):
            raise ExportError(f"{self.where(node)}: its first input is not computed from the model input")
        return v

    def op_Gather(self, node: Any, ins: list[Any]) -> list[Any]:
        if isinstance(ins[1], Ids) and isinstance(ins[0], Const):
            return [self._embedding(node, ins[0].value, ins[1])]
        d = self._data(node, ins[0])
        idx = np.asarray(self.const(node, 1, "index"))
        k = self.axis(node, d, int(self.attrs(node).get("axis", 0)))
        flat = [int(i) for i in idx.reshape(-1)]
        if idx.ndim > 1 or (idx.ndim == 1 and len(flat) != 1 and d.axes[k] not in ("D",)):
            raise ExportError(f"{self.where(node)}: it gathers {len(flat)} entries of an axis; "
                              "rnn2c reads a Gather that takes one step or one direction")
        out = self._select(node, d, k, flat if idx.ndim else flat[0])
        return [out]

    def _select(self, node: Any, d: Data, k: int, pick: int | list[int]) -> Data:
        """Entries `pick` (one index: the axis goes; a list: it stays) of axis k."""
        label = d.axes[k]
        keep = isinstance(pick, list)
        axes = d.axes if keep else d.axes[:k] + d.axes[k + 1 :]
        picks = pick if isinstance(pick, list) else [pick]
        if label in ("1", "D"):
            n = len(d.feats) if label == "D" else 1
            feats = tuple(d.feats[i % n] if label == "D" else d.feats[0] for i in picks)
            if keep:
                axes = axes[:k] + ("D" if len(feats) > 1 else "1",) + axes[k + 1 :]
            return Data(axes, feats)
        role = self.role(label)
        if role == "T":
            size = self.size(d, label).value
            if len(picks) == 1 and (picks[0] == -1 or (size is not None and picks[0] == size - 1)):
                feats = tuple(tuple(self._last(p, node) for p in f) for f in d.feats)
            elif len(picks) == 1 and picks[0] == 0:
                feats = tuple(tuple(self._first(p, node) for p in f) for f in d.feats)
            else:
                raise ExportError(
                    f"{self.where(node)}: it takes step {picks} of the sequence; rnn2c reads the "
                    "last step (y[:, -1]) or every step"
                )
            if keep:
                axes = axes[:k] + ("1",) + axes[k + 1 :]
            return Data(axes, feats)
        raise ExportError(
            f"{self.where(node)}: it selects from the {self._label(label)} axis; rnn2c reads "
            "selections of the last step or of a direction only"
        )

    def _last(self, p: Part, node: Any) -> Part:
        """The part at the last step of its sequence."""
        if p.kind != "seq":
            return replace(p, kind=f"it takes the last step of a tensor without a time axis")
        layer = self.layers[p.src] if p.src >= 0 else None
        if layer is not None and layer.kind == "bidir" and p.direction != "fw":
            return replace(p, kind=self._backward_last(layer, node))
        return replace(p, kind="final", direction="")

    def _first(self, p: Part, node: Any) -> Part:
        """The part at step 0: a backward direction's final output."""
        layer = self.layers[p.src] if p.src >= 0 else None
        if p.kind == "seq" and layer is not None and layer.kind == "bidir" and p.direction == "bw":
            return replace(p, kind="final")
        return replace(p, kind="it takes step 0 of a sequence; rnn2c reads the last step")

    def _backward_last(self, layer: FloatLayer, node: Any) -> str:
        return (
            f"it takes the last step (y[:, -1]) of '{layer.name}', whose backward direction has "
            "seen only that step there; rnn2c exports the backward direction's final state: "
            "use h_n instead (torch.cat([h_n[-2], h_n[-1]], dim=1)) and retrain"
        )

    def op_Slice(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        starts = [int(v) for v in self.const(node, 1, "starts").reshape(-1)]
        ends = [int(v) for v in self.const(node, 2, "ends").reshape(-1)]
        has = lambda k: len(node.input) > k and node.input[k]  # noqa: E731
        axes = [int(v) for v in self.const(node, 3, "axes").reshape(-1)] if has(3) else list(range(len(starts)))
        steps = [int(v) for v in self.const(node, 4, "steps").reshape(-1)] if has(4) else [1] * len(starts)
        for s, e, k, st in zip(starts, ends, axes, steps, strict=True):
            k = self.axis(node, d, k)
            label = d.axes[k]
            size = self.size(d, label).value
            if whole_range(s, e, st, size):
                continue
            if label == "F" and st == 1 and size is not None:
                lo, hi, _ = slice(s, e).indices(size)
                d = Data(d.axes, tuple(slice_feat(f, lo, hi) for f in d.feats))
            elif label in ("1", "D"):
                n = len(d.feats) if label == "D" else 1
                d = self._select(node, d, k, list(range(n))[s:e:st])
            elif self.role(label) == "T" and last_only(s, e, st, size):
                d = self._select(node, d, k, [-1])
            else:
                raise ExportError(
                    f"{self.where(node)}: it slices {s}:{e} of the {self._label(label)} axis; "
                    "rnn2c reads slices that take the last step, a direction or whole axes"
                )
        return [d]

    def op_Reshape(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        raw = ins[1]
        if isinstance(raw, Const):
            target = [Dim(int(v)) for v in raw.value.reshape(-1)]
        elif isinstance(raw, ShapeVal):
            target = list(raw.dims)
        else:
            raise ExportError(f"{self.where(node)}: its target shape is computed from the data")
        allowzero = bool(self.attrs(node).get("allowzero", 0))
        sizes = self.shape(d)
        target = resolve_target(target, sizes, allowzero, self.where(node))
        return [self._reshape(node, d, sizes, target)]

    def op_Flatten(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        k = self.axis(node, d, int(self.attrs(node).get("axis", 1))) if d.axes else 0
        sizes = self.shape(d)
        return [self._reshape(node, d, sizes, [product(sizes[:k]), product(sizes[k:])])]

    def _reshape(self, node: Any, d: Data, sizes: list[Dim], target: list[Dim]) -> Data:
        where = self.where(node)
        groups, units = reshape_groups(list(d.axes), sizes, target, where)
        axes: list[str] = ["1"] * len(target)
        feats = d.feats
        for g in groups:
            labs = g.labels
            if len(labs) == 1 and len(g.outs) == 1:
                axes[g.outs[0]] = labs[0]
            elif len(g.outs) == 1 and labs[-1] == "F" and all(lab == "D" for lab in labs[:-1]):
                feats = (merge_segments(tuple(p for f in feats for p in f)),)
                axes[g.outs[0]] = "F"
            elif len(g.outs) == 1 and len(labs) == 2 and all(self._bt(lab) for lab in labs):
                axes[g.outs[0]] = "*".join(labs)
            elif len(labs) == 1 and "*" in labs[0] and len(g.outs) == 2:
                parts = labs[0].split("*")
                if [self.size(d, p) for p in parts] != [target[j] for j in g.outs]:
                    raise ExportError(f"{where}: it unfolds batch and time in another order")
                for j, p in zip(g.outs, parts, strict=True):
                    axes[j] = p
            elif labs == ["F"] and len(g.outs) == 2 and len(feats) == 1:
                n = target[g.outs[0]].value or 0
                w = d.width // n if n else 0
                feats = tuple(slice_feat(feats[0], i * w, (i + 1) * w) for i in range(n))
                axes[g.outs[0]], axes[g.outs[1]] = "D", "F"
            else:
                raise ExportError(
                    f"{where}: it joins or splits axes ({', '.join(self._label(x) for x in labs)}) "
                    "in a way rnn2c does not read; rnn2c reads reshapes that fold batch and time "
                    "or join a recurrent op's directions"
                )
        for pos, lab in units:
            axes[pos] = lab if lab is not None else "1"
        return Data(tuple(axes), feats)

    def _bt(self, label: str) -> bool:
        return label.startswith(("a0", "a1")) and "*" not in label

    def op_Concat(self, node: Any, ins: list[Any]) -> list[Any]:
        ds = [self._data(node, v) for v in ins if v is not None]
        if len(ds) != len([n for n in node.input if n]):
            raise ExportError(f"{self.where(node)}: it concatenates a constant with computed "
                              "tensors; rnn2c concatenates computed tensors only")
        first = ds[0]
        k = self.axis(node, first, int(self.attrs(node).get("axis", 0)))
        label = first.axes[k]
        if label == "F":
            if len({len(x.feats) for x in ds}) != 1 or len({x.axes for x in ds}) != 1:
                raise ExportError(f"{self.where(node)}: it concatenates tensors of different layouts")
            feats = tuple(
                merge_segments(tuple(p for x in ds for p in x.feats[i])) for i in range(len(first.feats))
            )
            return [Data(first.axes, feats)]
        if label in ("1", "D"):
            feats = tuple(f for x in ds for f in x.feats)
            axes = first.axes[:k] + ("D",) + first.axes[k + 1 :]
            return [Data(axes, feats)]
        raise ExportError(
            f"{self.where(node)}: it concatenates over the {self._label(label)} axis; rnn2c "
            "concatenates features (or the directions of a recurrent op's state)"
        )

    def op_Expand(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        raw = ins[1]
        target = list(raw.dims) if isinstance(raw, ShapeVal) else [Dim(int(v)) for v in self.const(node, 1, "shape")]
        sizes = self.shape(d)
        if len(target) <= len(sizes) and all(
            t in (Dim(1), s) for t, s in zip(target, sizes[len(sizes) - len(target) :], strict=True)
        ):
            return [d]
        raise ExportError(f"{self.where(node)}: it broadcasts a computed tensor to a new shape; "
                          "rnn2c reads Expand only as a no-op on computed tensors")

    def op_Pad(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        a = self.attrs(node)
        if a.get("mode", "constant") != "constant":
            raise ExportError(f"{self.where(node)}: padding mode {a['mode']!r} is not supported; "
                              "pad with zeros (the causal left padding before a Conv)")
        pads = [int(v) for v in self.const(node, 1, "pads").reshape(-1)]
        if len(node.input) > 2 and node.input[2] and np.any(self.const(node, 2, "constant_value")):
            raise ExportError(f"{self.where(node)}: it pads with a nonzero value; pad with zeros")
        rank = len(d.axes)
        axes = list(range(rank))
        if len(node.input) > 3 and node.input[3]:
            axes = [self.axis(node, d, int(k)) for k in self.const(node, 3, "axes").reshape(-1)]
        n = len(axes)
        begin, end = pads[:n], pads[n:]
        left = 0
        for k, b, e in zip(axes, begin, end, strict=True):
            if b == 0 and e == 0:
                continue
            if self.role(d.axes[k]) == "T" or (d.axes[k] in ("a0", "a1") and self.roles.get(d.axes[k]) is None):
                if e == 0 and b > 0:
                    left = b
                    continue
            raise ExportError(
                f"{self.where(node)}: it pads the {self._label(d.axes[k])} axis by ({b}, {e}); "
                "rnn2c reads zero padding at the start of the time axis only, right before a Conv "
                "(F.pad(x, (k - 1, 0)): causal)"
            )
        feats = tuple(tuple(replace(p, pad=p.pad + left) for p in f) for f in d.feats)
        self.pad_axis = next((d.axes[k] for k, b in zip(axes, begin, strict=True) if b), None)
        return [Data(d.axes, feats)]

    # ---------------------------------------------------------------- weight layers

    def _embedding(self, node: Any, table: np.ndarray, ids: Ids) -> Data:
        where = self.where(node)
        if int(self.attrs(node).get("axis", 0)) != 0 or table.ndim != 2:
            raise ExportError(f"{where}: it gathers from a {table.ndim}-D table on another axis; "
                              "rnn2c reads an Embedding: rows of a [vocab, dim] table")
        readers = [n for n in self.graph.node if self.input_name in n.input and n.op_type != "Shape"]
        if self.embedding is not None or len(readers) > 1:
            raise ExportError(f"{where}: the token ids feed more than one Embedding or other "
                              "nodes; rnn2c reads one Embedding as the model's first layer")
        self.embedding = EmbeddingLayer(name=self.unique(node.name or "embedding"),
                                        table=np.asarray(table, dtype=np.float64))
        if not np.isfinite(self.embedding.table).all():
            raise ExportError(f"{where}: the embedding table holds NaN or inf values")
        self.features = int(table.shape[1])
        return Data((*ids.axes, "F"), ((Part(-1, 0, int(table.shape[1])),),))

    def _dense(self, node: Any, d: Data, kernel: np.ndarray, bias: np.ndarray) -> Data:
        where = self.where(node)
        if d.axes[-1] != "F":
            raise ExportError(f"{where}: it multiplies over the {self._label(d.axes[-1])} axis; "
                              "rnn2c reads a Linear layer over the features (the last axis)")
        if kernel.ndim != 2 or kernel.shape[0] != d.width:
            raise ExportError(f"{where}: weight of shape {list(kernel.shape)} for {d.width} "
                              "features; rnn2c reads a Linear layer's [in, out] weight")
        src, part = self.consume(d, node, allow_affine=True)
        units = int(kernel.shape[1])
        layer = DenseLayer(
            name=self.unique(node.name or node.output[0]),
            input_size=int(kernel.shape[0]),
            units=units,
            kernel=np.asarray(kernel, dtype=np.float64),
            bias=np.broadcast_to(np.asarray(bias, dtype=np.float64).reshape(-1), (units,)).copy(),
            activation="linear",
        )
        if part is not None and part.affine is not None:
            fold_affine(layer, *part.affine)
        k = self.add_layer(layer, [src], self.has_time(d), node.output[0])
        return Data(d.axes, ((Part(k, 0, units),),))

    def op_MatMul(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        if not isinstance(ins[1], Const):
            raise ExportError(f"{self.where(node)}: it multiplies two computed tensors; rnn2c "
                              "reads MatMul with a constant weight (a Linear layer)")
        return [self._dense(node, d, ins[1].value, np.zeros(ins[1].value.shape[-1]))]

    def op_Gemm(self, node: Any, ins: list[Any]) -> list[Any]:
        a = self.attrs(node)
        d = self._data(node, ins[0])
        if a.get("transA", 0) or not isinstance(ins[1], Const):
            raise ExportError(f"{self.where(node)}: rnn2c reads Gemm as a Linear layer: data "
                              "times a constant weight (transA=0)")
        w = ins[1].value.T if a.get("transB", 0) else ins[1].value
        w = float(a.get("alpha", 1.0)) * np.asarray(w, dtype=np.float64)
        bias = np.zeros(w.shape[1])
        if len(node.input) > 2 and node.input[2]:
            bias = float(a.get("beta", 1.0)) * self.const(node, 2, "bias").astype(np.float64)
        return [self._dense(node, d, w, bias)]

    def op_Conv(self, node: Any, ins: list[Any]) -> list[Any]:
        where = self.where(node)
        d = self._data(node, ins[0])
        a = self.attrs(node)
        w = np.asarray(self.const(node, 1, "weight"), dtype=np.float64)
        if w.ndim != 3 or len(d.axes) != 3 or d.axes[1] != "F":
            raise ExportError(f"{where}: rnn2c reads 1-D convolutions over [batch, channels, "
                              "time] (nn.Conv1d)")
        if int(a.get("group", 1)) != 1:
            raise ExportError(f"{where}: groups={a['group']} is not supported; use groups=1")
        self.assign(d.axes[0], "B", node)
        self.assign(d.axes[2], "T", node)
        if w.shape[1] != d.width:
            raise ExportError(f"{where}: weight for {w.shape[1]} channels, input has {d.width}")
        taps = int(w.shape[2])
        (stride,) = a.get("strides", [1])
        (dil,) = a.get("dilations", [1])
        extra = (taps - 1) * int(dil)
        left, right = list(a.get("pads", [0, 0]))
        auto = a.get("auto_pad", "NOTSET")
        if auto == "SAME_UPPER" and stride == 1:
            left, right = extra // 2, extra - extra // 2
        elif auto not in ("NOTSET", "VALID"):
            raise ExportError(f"{where}: auto_pad={auto} is not supported; pad explicitly")
        feat = merge_segments(d.feats[0])
        left += feat[0].pad if len(feat) == 1 else 0
        if left == extra and right == 0:
            padding = "causal"
        elif left == 0 and right == 0:
            padding = "valid"
        elif stride == 1 and left == extra // 2 and right == extra - extra // 2:
            padding = "same"
        else:
            raise ExportError(
                f"{where}: it pads ({left}, {right}) steps around a window of {extra + 1}; rnn2c "
                f"reads causal padding ({extra}, 0) (F.pad(x, ({extra}, 0))), none, or 'same'"
            )
        if extra + 1 > MAX_SPAN or int(stride) > MAX_SPAN:
            raise ExportError(f"{where}: a window of {extra + 1} steps or stride {stride} is over "
                              f"the {MAX_SPAN} supported; use a shorter window")
        unpadded = Data(d.axes, (tuple(replace(p, pad=0) for p in feat),))
        src, part = self.consume(unpadded, node, allow_affine=True)
        filters = int(w.shape[0])
        bias = np.zeros(filters)
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node, 2, "bias").astype(np.float64).reshape(-1)
        layer = Conv1DLayer(
            name=self.unique(node.name or node.output[0]),
            input_size=int(w.shape[1]),
            filters=filters,
            kernel=w.transpose(2, 1, 0).copy(),
            bias=bias,
            activation="linear",
            dilation=int(dil),
            stride=int(stride),
            padding=padding,
        )
        if part is not None and part.affine is not None:
            layer.fold_input_affine(*part.affine)
        k = self.add_layer(layer, [src], True, node.output[0])
        return [Data(d.axes, ((Part(k, 0, filters),),))]

    # ---------------------------------------------------------------- per-feature ops

    def op_Add(self, node: Any, ins: list[Any]) -> list[Any]:
        return [self._elementwise(node, ins)]

    def op_Sub(self, node: Any, ins: list[Any]) -> list[Any]:
        return [self._elementwise(node, ins)]

    def op_Mul(self, node: Any, ins: list[Any]) -> list[Any]:
        return [self._elementwise(node, ins)]

    def op_Div(self, node: Any, ins: list[Any]) -> list[Any]:
        return [self._elementwise(node, ins)]

    def _elementwise(self, node: Any, ins: list[Any]) -> Data:
        op, where = node.op_type, self.where(node)
        x, y = ins[0], ins[1]
        if isinstance(x, Data) and isinstance(y, Data):
            return self._merge(node, x, y)
        first = isinstance(x, Data)
        d = self._data(node, x if first else y)
        other = y if first else x
        if isinstance(other, Fill):
            c = np.asarray(other.value)
        elif isinstance(other, Const):
            c = np.asarray(other.value, dtype=np.float64)
        else:
            raise ExportError(f"{where}: it combines a computed tensor with {type(other).__name__}")
        v = self._vector(node, c, d)
        ones, zeros = np.ones(d.width), np.zeros(d.width)
        if op == "Add":
            a, b = ones, v
        elif op == "Sub":
            a, b = (ones, -v) if first else (-ones, v)
        elif op == "Mul":
            a, b = v, zeros
        elif first and np.all(v != 0):
            a, b = 1.0 / v, zeros
        else:
            raise ExportError(f"{where}: it divides by a computed tensor (or by zero); rnn2c "
                              "reads division by nonzero constants only")
        return self._affine(node, d, a, b, node.input[0 if first else 1])

    def _vector(self, node: Any, c: np.ndarray, d: Data) -> np.ndarray:
        """A constant broadcast against d as one value per feature."""
        rank = len(d.axes)
        if c.ndim > rank:
            raise ExportError(f"{self.where(node)}: a constant of rank {c.ndim} against a tensor "
                              f"of rank {rank}")
        shape = (1,) * (rank - c.ndim) + tuple(c.shape)
        f = d.axes.index("F") if "F" in d.axes else -1
        for k, n in enumerate(shape):
            if n != 1 and k != f:
                raise ExportError(
                    f"{self.where(node)}: its constant varies along the {self._label(d.axes[k])} "
                    "axis; rnn2c reads per-feature constants (a scale or offset per feature)"
                )
        v = c.reshape(-1).astype(np.float64)
        return np.full(d.width, v[0]) if v.size == 1 else v

    def _affine(self, node: Any, d: Data, a: np.ndarray, b: np.ndarray, name: str) -> Data:
        """x -> a*x + b per feature: into the Linear or Conv before it when it alone reads that
        layer's output, else pending on the segments (folded into the next weight layer)."""
        if len(d.feats) != 1:
            raise ExportError(f"{self.where(node)}: a per-feature operation on stacked parts")
        feat = d.feats[0]
        if len(feat) == 1 and feat[0].src >= 0 and self._only_reader(feat[0].src, node):
            p = feat[0]
            layer = self.layers[p.src] if p.src >= 0 else None
            if (
                layer is not None
                and layer.kind in ("dense", "conv1d")
                and getattr(layer, "activation", "") == "linear"
                and p.affine is None
                and p.pad == 0
                and p.lo == 0
                and p.hi == layer.output_size
            ):
                layer.kernel = layer.kernel * a  # type: ignore[attr-defined]
                layer.bias = layer.bias * a + b  # type: ignore[attr-defined]
                self.layer_out[p.src] = node.output[0]
                return d
        parts, start = [], 0
        for p in feat:
            pa, pb = a[start : start + p.width], b[start : start + p.width]
            if p.affine is not None:
                pa, pb = p.affine[0] * pa, p.affine[1] * pa + pb
            parts.append(replace(p, affine=(pa, pb)))
            start += p.width
        return Data(d.axes, (tuple(parts),))

    def _merge(self, node: Any, x: Data, y: Data) -> Data:
        op = {"Add": "add", "Sub": "subtract", "Mul": "multiply"}.get(node.op_type)
        where = self.where(node)
        if op is None:
            raise ExportError(f"{where}: it divides two computed tensors; rnn2c merges branches "
                              "with Add, Sub, Mul or Concat")
        if x.axes != y.axes or x.width != y.width:
            raise ExportError(
                f"{where}: it merges tensors of different layouts ({', '.join(x.axes)} and "
                f"{', '.join(y.axes)}); rnn2c merges tensors of the same shape"
            )
        if self.has_time(x) != self.has_time(y):
            raise ExportError(f"{where}: it merges a sequence with a single vector")
        a, _ = self.consume(x, node)
        b, _ = self.consume(y, node)
        w = x.width
        name = self.unique(node.name or node.output[0])
        k = self.add_layer(MergeLayer(name=name, input_size=2 * w, op=op, parts=[w, w]), [a, b],
                           self.has_time(x))
        return Data(x.axes, ((Part(k, 0, w),),))

    def op_BatchNormalization(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        a = self.attrs(node)
        if a.get("training_mode", 0):
            raise ExportError(f"{self.where(node)}: training_mode=1; export the model in eval()")
        if len(d.axes) < 2 or d.axes[1] != "F":
            raise ExportError(f"{self.where(node)}: it normalizes axis 1, which is not the "
                              "features here; rnn2c reads BatchNorm1d over channels")
        scale, bias, mean, var = (self.const(node, k, w).astype(np.float64).reshape(-1)
                                  for k, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
        g = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        return [self._affine(node, d, g, bias - mean * g, node.input[0])]

    def op_LayerNormalization(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        a = self.attrs(node)
        if self.axis(node, d, int(a.get("axis", -1))) != len(d.axes) - 1 or d.axes[-1] != "F":
            raise ExportError(f"{self.where(node)}: it normalizes more than the feature axis; "
                              "rnn2c reads LayerNorm over the features (the last axis)")
        src, _ = self.consume(d, node)
        w = d.width
        layer = LayerNormLayer(name=self.unique(node.name or node.output[0]), input_size=w,
                               epsilon=float(a.get("epsilon", 1e-5)))
        k = self.add_layer(layer, [src], self.has_time(d))
        gamma = self.const(node, 1, "scale").astype(np.float64).reshape(-1)
        beta = np.zeros(w)
        if len(node.input) > 2 and node.input[2]:
            beta = self.const(node, 2, "bias").astype(np.float64).reshape(-1)
        gamma, beta = np.broadcast_to(gamma, (w,)).copy(), np.broadcast_to(beta, (w,)).copy()
        affine = None if np.all(gamma == 1) and not np.any(beta) else (gamma, beta)
        return [Data(d.axes, ((Part(k, 0, w, affine=affine),),))]

    def _activation(self, node: Any, ins: list[Any]) -> list[Any]:
        op, where = node.op_type, self.where(node)
        d = self._data(node, ins[0])
        act, slope = ACTIVATION_OPS[op]
        a = self.attrs(node)
        alpha = float(a.get(slope, {"alpha": 0.01 if op == "LeakyRelu" else 1.0}["alpha"])) if slope else 0.0
        if op == "HardSigmoid":
            raise ExportError(f"{where}: HardSigmoid after a Linear or Conv is not supported; use "
                              "sigmoid, tanh, relu, leaky_relu, elu, gelu or softplus")
        if op == "Gelu" and a.get("approximate", "none") != "none":
            raise ExportError(f"{where}: the tanh approximation of GELU is not supported; use "
                              "nn.GELU() (approximate='none')")
        if op == "Softmax" and self.axis(node, d, int(a.get("axis", -1))) != d.axes.index("F"):
            raise ExportError(f"{where}: softmax over another axis than the features")
        if slope and not 0.0 <= alpha <= 1.0:
            raise ExportError(f"{where}: a slope of {alpha:g} is not supported; use 0 to 1")
        feat = d.feats[0] if len(d.feats) == 1 else ()
        p = feat[0] if len(feat) == 1 else None
        layer = self.layers[p.src] if p is not None and p.src >= 0 else None
        if (
            layer is None
            or layer.kind not in ("dense", "conv1d")
            or getattr(layer, "activation", "") != "linear"
            or p.affine is not None  # type: ignore[union-attr]
            or p.lo != 0 or p.hi != layer.output_size  # type: ignore[union-attr]
            or not self._only_reader(p.src, node)  # type: ignore[union-attr]
        ):
            raise ExportError(
                f"{where}: an activation is supported only right after a Linear or Conv1d "
                "(MatMul/Gemm/Conv, with its bias) that nothing else reads; recurrent layers "
                "bring their own activations"
            )
        layer.activation = act  # type: ignore[attr-defined]
        layer.alpha = alpha  # type: ignore[attr-defined]
        return [d]


for _op in ACTIVATION_OPS:
    setattr(_Reader, f"op_{_op}", _Reader._activation)


# -------------------------------------------------------------------- recurrent ops


def _recurrent(self: _Reader, node: Any, ins: list[Any]) -> list[Any]:
    """GRU, LSTM, RNN -> an IR recurrent layer (a SequenceLayer for reverse and bidirectional)."""
    op, where, a = node.op_type, self.where(node), self.attrs(node)
    x = ins[0] if ins else None
    if not isinstance(x, Data):
        raise ExportError(f"{where}: its input X is not computed from the model input")
    if "clip" in a:
        raise ExportError(f"{where}: clip={a['clip']:g} (cell clipping) is not supported; export "
                          "without it (torch never sets it)")
    layout, direction, units = int(a.get("layout", 0)), a.get("direction", "forward"), int(a["hidden_size"])
    if len(x.axes) != 3 or x.axes[2] != "F":
        raise ExportError(f"{where}: its input is not [time, batch, features] (layout 0) or "
                          "[batch, time, features] (layout 1) after the glue")
    t_ax, b_ax = (0, 1) if layout == 0 else (1, 0)
    self.assign(x.axes[t_ax], "T", node)
    self.assign(x.axes[b_ax], "B", node)
    has = lambda k: len(node.input) > k and bool(node.input[k])  # noqa: E731
    if has(4):
        raise ExportError(f"{where}: sequence_lens is not supported; the C runs each sequence to "
                          "its own length (give the lengths with the data instead)")
    for k, what in ((5, "initial_h"), (6, "initial_c")):
        if has(k):
            _initial_state(self, node, ins[k], what, layout)
    if has(7) and np.any(self.const(node, 7, "peepholes P")):
        raise ExportError(f"{where}: peephole connections (input P) are not supported; use an "
                          "LSTM without peepholes (torch's nn.LSTM has none)")
    if op == "LSTM" and int(a.get("input_forget", 0)):
        raise ExportError(f"{where}: input_forget=1 (coupled input and forget gates) is not "
                          "supported; use an LSTM without it (torch's nn.LSTM)")
    w = np.asarray(self.const(node, 1, "weight W"), dtype=np.float64)
    r = np.asarray(self.const(node, 2, "weight R"), dtype=np.float64)
    nd = 2 if direction == "bidirectional" else 1
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    b = np.zeros((nd, 2 * gates * units))
    if has(3):
        b = np.asarray(self.const(node, 3, "bias B"), dtype=np.float64).reshape(nd, -1)
    if w.shape != (nd, gates * units, x.width) or r.shape != (nd, gates * units, units):
        raise ExportError(f"{where}: weights W {list(w.shape)}, R {list(r.shape)} do not fit "
                          f"{nd} direction(s) of {units} units over {x.width} features")
    name = self.unique(node.name or node.output[0])
    cells = [
        _cell(node, op, a, w[d], r[d], b[d], d, f"{name}_{'fw' if d == 0 and nd == 2 else 'bw'}"
              if nd == 2 else name)
        for d in range(nd)
    ]
    src, part = self.consume(x, node, allow_affine=True)
    if part is not None and part.affine is not None:
        for c in cells:
            fold_affine(c, *part.affine)
    if direction == "forward":
        layer: FloatLayer = cells[0]
        dirs = ["fw"]
    elif direction == "reverse":
        layer = SequenceLayer(name=name, input_size=x.width, forward=None, backward=cells[0],
                              merge="none", return_sequences=True)
        dirs = ["bw"]
    elif direction == "bidirectional":
        layer = SequenceLayer(name=name, input_size=x.width, forward=cells[0], backward=cells[1],
                              merge="concat", return_sequences=True)
        dirs = ["fw", "bw"]
    else:
        raise ExportError(f"{where}: direction {direction!r} is not an ONNX direction")
    k = self.add_layer(layer, [src], True, node.output[0] if node.output else "")
    self.rec_uses[k] = set()
    tl, bl = x.axes[t_ax], x.axes[b_ax]
    dl = "D" if nd == 2 else "1"

    def feats(kind: str) -> tuple[Feat, ...]:
        return tuple((Part(k, i * units, (i + 1) * units, kind, dirs[i]),) for i in range(nd))

    y = Data((tl, dl, bl, "F") if layout == 0 else (bl, tl, dl, "F"), feats("seq"))
    state_axes = (dl, bl, "F") if layout == 0 else (bl, dl, "F")
    if direction == "reverse":  # the reverse op's "final" is its output after step 0
        y_h = Data(state_axes, feats("final"))
    else:
        y_h = Data(state_axes, feats("final"))
    y_c = Data(state_axes, feats("cell"))
    return [y, y_h, y_c][: len(node.output)]


def _initial_state(self: _Reader, node: Any, v: Any, what: str, layout: int) -> None:
    """An initial state must be zero (the C starts from zeros at reset) or a graph input (fed
    zeros by the reference; the C's state carries it between steps)."""
    where = self.where(node)
    if isinstance(v, Fill) and v.value == 0:
        return
    if isinstance(v, Const) and not np.any(v.value):
        return
    if isinstance(v, StateIn):
        k = 1 if layout == 0 else 0
        if len(v.axes) != 3:
            raise ExportError(f"{where}: its {what} from input '{v.name}' is not [directions, "
                              "batch, units]")
        self.state_batch[v.name] = int(v.axes[k].rsplit(":", 1)[1])
        return
    if isinstance(v, Data):
        raise ExportError(
            f"{where}: its {what} is computed from the model input (an encoder's state handed "
            "on); rnn2c exports recurrent layers that start from a zero state"
        )
    raise ExportError(
        f"{where}: its {what} is a nonzero constant; rnn2c's C starts every sequence from a zero "
        "state (reset): export with a zero initial state, or pass the state as an input"
    )


def _activations(node: Any, op: str, a: dict[str, Any], d: int) -> tuple[str, str]:
    """The (gate, cell) activations of direction d, as the IR names them."""
    defaults = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "RNN": ["Tanh"]}[op]
    n = len(defaults)
    given = list(a.get("activations", []))
    mine = [s.decode() if isinstance(s, bytes) else str(s) for s in given[d * n : (d + 1) * n]]
    mine = mine or defaults
    where = f"node '{node.name or node.output[0]}' ({op})"
    gate = "Sigmoid" if op == "RNN" else mine[0]
    cell = mine[0] if op == "RNN" else mine[1]
    if op == "LSTM" and mine[2] != mine[1]:
        raise ExportError(f"{where}: activations {mine}: rnn2c needs the same function for the "
                          "cell input and the output (g = h)")
    if gate not in GATES or cell not in CELLS:
        raise ExportError(
            f"{where}: activations {mine} are not supported; gates: {', '.join(GATES)}, cells: "
            f"{', '.join(CELLS)} (nn.RNN nonlinearity 'tanh' or 'relu')"
        )
    return GATES[gate], CELLS[cell]


def _cell(
    node: Any, op: str, a: dict[str, Any], w: np.ndarray, r: np.ndarray, b: np.ndarray, d: int,
    name: str,
) -> FloatLayer:
    """One direction's float cell from ONNX W [G*H, I], R [G*H, H], B [2*G*H]."""
    gate, cell = _activations(node, op, a, d)
    units = int(r.shape[1])
    g = w.shape[0] // units
    wb, rb = b[: g * units], b[g * units :]
    if op == "GRU":  # ONNX z, r, h: Keras' order
        lbr = int(a.get("linear_before_reset", 0))
        return GRULayer(
            name=name, input_size=int(w.shape[1]), units=units, kernel=w.T.copy(),
            recurrent_kernel=r.T.copy(), bias=wb.copy() if lbr else wb + rb,
            recurrent_bias=rb.copy() if lbr else np.zeros(3 * units), reset_after=bool(lbr),
            gate_act=gate, cell_act=cell,
        )
    if op == "LSTM":  # ONNX i, o, f, c -> Keras i, f, c, o
        order = [0, 2, 3, 1]

        def keras(m: np.ndarray) -> np.ndarray:
            return np.concatenate([m[k * units : (k + 1) * units] for k in order])

        return LSTMLayer(
            name=name, input_size=int(w.shape[1]), units=units, kernel=keras(w).T.copy(),
            recurrent_kernel=keras(r).T.copy(), bias=keras(wb + rb), gate_act=gate, cell_act=cell,
        )
    return SimpleRNNLayer(
        name=name, input_size=int(w.shape[1]), units=units, kernel=w.T.copy(),
        recurrent_kernel=r.T.copy(), bias=wb + rb, cell_act=cell,
    )


for _op in RECURRENT_OPS:
    setattr(_Reader, f"op_{_op}", _recurrent)


# -------------------------------------------------------------------- the end of the walk


def _pure_state(self: _Reader, v: Any) -> bool:
    """A value that is only a recurrent op's state (Y_h / Y_c, h_n / c_n): a returned state."""
    if not isinstance(v, Data):
        return False
    parts = [p for f in v.feats for p in f]
    return all(
        p.src >= 0 and p.kind in ("final", "cell") and self.layers[p.src].kind in ("gru", "lstm", "rnn", "bidir")
        for p in parts
    )


def _finish(self: _Reader) -> OnnxIR:
    outs = [(o.name, self.env.get(o.name)) for o in self.graph.output]
    where = f"model file {str(self.path)!r}"
    computed = [(n, v) for n, v in outs if isinstance(v, Data)]
    if not computed:
        raise ExportError(f"{where}: no graph output is computed from the model input")
    main = next(((n, v) for n, v in computed if not _pure_state(self, v)), computed[0])
    others = [n for n, v in computed if n != main[0]]
    extra = [n for n, v in computed if n != main[0] and not _pure_state(self, v)]
    if extra:
        raise ExportError(
            f"{where}: the graph has {len(extra) + 1} outputs computed from the input ('{main[0]}', "
            f"'{extra[0]}'); rnn2c exports one output (the others may only be returned recurrent "
            "states h_n / c_n)"
        )
    name, data = main
    node = next((n for n in self.graph.node if name in n.output), None)
    fake = node if node is not None else type("N", (), {"name": name, "op_type": "output", "output": [name]})()
    if len(data.feats) != 1:
        raise ExportError(
            f"{where}: output '{name}' stacks {len(data.feats)} parts (directions or layers of a "
            "recurrent state) on an axis of its own; rnn2c exports one feature vector per step: "
            "output one layer's state (h_n[-1]), or the directions side by side"
        )
    out_src, part = self.consume(data, fake, allow_affine=True)
    if part is not None and part.affine is not None:
        raise ExportError(
            f"{where}: output '{name}' is scaled or shifted per feature (Mul/Add/BatchNorm/"
            "LayerNorm's scale and bias) after a layer rnn2c cannot fold that into; end the "
            "model with a Linear layer"
        )
    _set_sequences(self)
    keep = _reachable(self, out_src)
    layers, inputs, seq = _renumber(self, keep)
    out_axes = tuple(_out_role(self, lab, name) for lab in data.axes)
    if not any("B" in r for r in out_axes):
        raise ExportError(f"{where}: output '{name}' has no batch axis rnn2c can find; the batch "
                          "must stay an axis of its own (or folded with time) to the output")
    _check_model(self, layers, inputs)
    chain = all(ins == [i - 1] for i, ins in enumerate(inputs))
    if not chain:
        _check_graph(self, layers)
    roles = {self.roles.get("a0"), self.roles.get("a1")}
    if roles != {"B", "T"}:
        raise ExportError(f"{where}: rnn2c cannot tell which input axis is batch and which is "
                          "time (no recurrent op or Conv reads them)")
    _add_notes(self, others)
    return OnnxIR(
        layers=layers,
        input_size=self.features,
        source=_name(self.path.stem),
        sequence_out=seq,
        embedding=self.embedding,
        inputs=[] if chain else inputs,
        notes=self.notes,
        layout=_layout(self, name, out_axes),
    )


def _set_sequences(self: _Reader) -> None:
    """A recurrent layer returns sequences when something reads its every step (Y), else its
    final output (Y_h, the last step)."""
    for k, uses in self.rec_uses.items():
        layer = self.layers[k]
        if len(uses) > 1:
            raise ExportError(
                f"layer '{layer.name}': the graph reads both its every step (Y) and its final "
                "state (Y_h / the last step) in its computation; rnn2c reads one of them per "
                "recurrent op (return the state as an output instead)"
            )
        seq = "seq" in uses
        if layer.kind == "bidir" and layer.forward is None and seq:  # type: ignore[attr-defined]
            raise ExportError(
                f"layer '{layer.name}' (reverse direction): the graph reads its every step (Y); "
                "rnn2c reads a reverse-direction op through its final state (Y_h / h_n), or a "
                "bidirectional op's steps"
            )
        self.seq[k] = seq
        if layer.kind == "bidir":
            layer.return_sequences = seq  # type: ignore[attr-defined]


def _reachable(self: _Reader, out: int) -> list[int]:
    seen, todo = set(), [out]
    while todo:
        k = todo.pop()
        if k < 0 or k in seen:
            continue
        seen.add(k)
        todo.extend(self.inputs[k])
    if out < 0:
        raise ExportError(f"model file {str(self.path)!r}: the output is the model input itself")
    return sorted(seen)


def _renumber(self: _Reader, keep: list[int]) -> tuple[list[FloatLayer], list[list[int]], list[bool]]:
    new = {old: i for i, old in enumerate(keep)}
    layers = [self.layers[k] for k in keep]
    inputs = [[new[j] if j >= 0 else j for j in self.inputs[k]] for k in keep]
    seq = [self.seq[k] for k in keep]
    return layers, inputs, seq


def _out_role(self: _Reader, label: str, name: str) -> str:
    if label in ("F", "1"):
        return label
    roles = [self.role(p) for p in label.split("*")]
    if None in roles or label == "D":
        raise ExportError(f"model file {str(self.path)!r}: output '{name}' has an axis rnn2c "
                          f"cannot place ({label!r})")
    return "*".join(r for r in roles if r is not None)


def _check_model(self: _Reader, layers: list[FloatLayer], inputs: list[list[int]]) -> None:
    kinds = {ly.kind for ly in layers}
    if not kinds & {"gru", "lstm", "rnn", "bidir", "conv1d"}:
        raise ExportError(
            f"model file {str(self.path)!r} has no recurrent layer (GRU, LSTM or RNN); rnn2c "
            "exports recurrent models"
        )
    if self.embedding is not None and "conv1d" in kinds:
        raise ExportError(
            f"layer '{self.embedding.name}' (Embedding): an Embedding before Conv1d layers is not "
            "supported; feed the Embedding to a recurrent or Linear layer"
        )
    del inputs


def _check_graph(self: _Reader, layers: list[FloatLayer]) -> None:
    names = {"bidir": "a bidirectional or reverse recurrent op", "conv1d": "a Conv",
             "lnorm": "LayerNormalization"}
    for ly in layers:
        if ly.kind in names:
            raise ExportError(
                f"layer '{ly.name}': {names[ly.kind]} in a graph of branches (merges) is not "
                "supported; use a chain"
            )
    if self.embedding is not None:
        raise ExportError(
            f"layer '{self.embedding.name}' (Embedding): an Embedding in a graph of branches is "
            "not supported; use a chain"
        )


def _add_notes(self: _Reader, returned: list[str]) -> None:
    axes = {self.roles.get(lab): k for k, lab in enumerate(("a0", "a1"))}
    dims = ["?" if d is None else str(d) for d in self.input_dims]
    self.notes.append(
        f"input '{self.input_name}' [{', '.join(dims)}]: axis {axes['B']} is batch, axis "
        f"{axes['T']} time (as {self.role_node.get('a0' if axes['T'] == 0 else 'a1', 'the graph')} "
        "reads them); --calib and --data stay [N, T, features]"
    )
    t = self.fixed.get("a0" if axes["T"] == 0 else "a1")
    if t is not None:
        self.notes.append(
            f"the graph fixes the time axis at {t} steps (exported without a dynamic time axis): "
            "rnn2c's C takes any length; the onnxruntime reference runs "
            f"{t}-step sequences only"
        )
    if returned:
        self.notes.append(
            f"output(s) {', '.join(repr(n) for n in returned)}: the recurrent state the model "
            "returns; the C keeps it in its state struct between steps"
        )
    if self.states:
        self.notes.append(
            f"input(s) {', '.join(repr(s[0]) for s in self.states)}: the initial recurrent "
            "state; the C starts from zeros (reset) and carries the state on between steps"
        )


def _layout(self: _Reader, name: str, out_axes: tuple[str, ...]) -> OnnxLayout:
    roles = [self.roles["a0"], self.roles["a1"]]
    in_axes = tuple(roles) if self.embedding is not None else (*roles, "F")
    b = roles.index("B")
    t = roles.index("T")
    states = []
    for sname, dims, _dtype in self.states:
        k = self.state_batch.get(sname)
        states.append((sname, [None if j == k or d is None else d for j, d in enumerate(dims)], "float32"))
    main = next(i for i in self.graph.input if i.name == self.input_name)
    dtype = np.dtype((INT_TYPES | FLOAT_TYPES)[main.type.tensor_type.elem_type]).name
    return OnnxLayout(
        path=str(self.path),
        input_name=self.input_name,
        input_axes=in_axes,
        input_dtype=dtype,
        fixed_batch=self.input_dims[b],
        fixed_steps=self.input_dims[t],
        states=states,
        output_name=name,
        output_axes=out_axes,
    )


_Reader._finish = _finish  # type: ignore[attr-defined]


# -------------------------------------------------------------------- the float reference


def run_onnx(
    model: str | os.PathLike[str] | OnnxIR,
    x: np.ndarray,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """Run the ONNX model with onnxruntime on [N, T, F] sequences (token ids [N, T]), each at its
    real length (lengths, default T): [N, out] (the output after each sequence's last step), or
    [N, T, out] for a model that returns sequences (zeros past each length). The graph's own
    layout (time-major, a fixed batch, state inputs fed zeros) is handled here."""
    ir = model if isinstance(model, OnnxIR) else read_onnx(model)
    lay = ir.layout
    assert lay is not None

    x = np.asarray(x)
    n, t = x.shape[:2]
    lens = np.full(n, t, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
    if lay.fixed_steps is not None and np.any(lens != lay.fixed_steps):
        raise ExportError(
            f"model file {lay.path!r} takes {lay.fixed_steps}-step sequences only (exported without "
            "a dynamic time axis), and the data has sequences of "
            f"{sorted(set(lens.tolist()) - {lay.fixed_steps})[0]} steps; export it again with a "
            "dynamic time axis (dynamic_axes / dynamic_shapes) or give "
            f"{lay.fixed_steps}-step sequences"
        )
    sess = _session(lay.path)
    width = ir.output_size
    out = np.zeros((n, t, width) if lay.sequences else (n, width))
    chunk = lay.fixed_batch or max(1, n)
    for length in sorted(set(lens.tolist())):
        rows = np.flatnonzero(lens == length)
        for s in range(0, rows.size, chunk):
            idx = rows[s : s + chunk]
            pad = np.concatenate([idx, np.repeat(idx[-1:], chunk - idx.size)]) if lay.fixed_batch else idx
            y = _run_batch(sess, lay, x[pad, :length], width)[: idx.size]
            if lay.sequences:
                out[idx, :length] = y
            else:
                out[idx] = y
    return out


def _session(path: str) -> Any:
    """An onnxruntime session over the file; ONNX's reference implementation where onnxruntime
    lacks a kernel (a GRU/LSTM/RNN with layout 1, batch-major, which onnxruntime's CPU kernels
    refuse)."""
    import onnxruntime as ort  # noqa: PLC0415  (an optional extra)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    try:
        return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001  (onnxruntime's errors have no common base)
        if "layout == 1" not in str(e) and "layout_ == 0" not in str(e):
            why = str(e).strip().splitlines()[0][:200]
            raise ExportError(f"onnxruntime cannot run {path!r}: {why}") from None
    from onnx.reference import ReferenceEvaluator  # noqa: PLC0415

    return ReferenceEvaluator(path)


def _run_batch(sess: Any, lay: OnnxLayout, x: np.ndarray, width: int) -> np.ndarray:
    """One batch of equal-length sequences [n, L, ...] -> [n, (L,) out]."""
    n, length = x.shape[:2]
    perm = [lay.input_axes.index(r) for r in ("B", "T", "F")[: x.ndim]]
    inverse = np.argsort(perm)
    feeds = {lay.input_name: np.transpose(x, inverse).astype(lay.input_dtype)}
    for name, dims, dtype in lay.states:
        feeds[name] = np.zeros([n if d is None else d for d in dims], dtype=dtype)
    (y,) = sess.run([lay.output_name], feeds)
    y = np.asarray(y, dtype=np.float64)
    axes = list(lay.output_axes)
    keep = [k for k, a in enumerate(axes) if a != "1"]
    y = y.reshape([y.shape[k] for k in keep])
    axes = [axes[k] for k in keep]
    shape, names = [], []
    for k, a in enumerate(axes):
        if "*" in a:
            first, second = a.split("*")
            sizes = {"B": n, "T": length}
            shape += [sizes[first], sizes[second]]
            names += [first, second]
        else:
            shape.append(y.shape[k])
            names.append(a)
    y = y.reshape(shape)
    order = [names.index(r) for r in ("B", "T", "F") if r in names]
    return np.transpose(y, order).reshape((n, length, width) if "T" in names else (n, width))
