"""The walk over an ONNX graph's glue (export/onnx_reader.py builds on it): per tensor a value
(export/onnx_graph.py), the dispatch of nodes to their handlers, constant folding, the symbolic
shape arithmetic of dynamic axes, the zero initial state, a state input on its way to its
recurrent op, and the ops that only move a computed tensor's axes around (Transpose, Squeeze,
Unsqueeze, Gather/Slice of the last step or a direction, Reshape/Flatten, Concat, Expand, Pad).

Input axes start as labels ``a0``/``a1`` (the model input's first two axes); the first operator
that reads one as batch or time (a recurrent op, a Conv) gives it that role, and any later reader
must agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, FloatLayer
from rnn2c.export.layers.embedding import EmbeddingLayer
from rnn2c.export.onnx_graph import (
    FLOAT_TYPES,
    INT_TYPES,
    Const,
    Data,
    Dim,
    Fill,
    Part,
    ShapeVal,
    StateIn,
    Value,
    fold_node,
    last_only,
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


@dataclass(frozen=True)
class Ids:
    """The model's token-id input [a0, a1] (read by a Gather on an embedding table)."""

    axes: tuple[str, ...]


def name_of(text: str) -> str:
    """A layer name from an ONNX node or tensor name ('/rnn/GRU' -> 'rnn_GRU')."""
    s = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    return s or "layer"


class GraphWalk:
    """The reader's state and its walk over the glue (the layer handlers are the subclasses')."""

    def __init__(self, model: Any, path: Path) -> None:
        self.model, self.path = model, path
        self.graph = model.graph
        self.nodes: list[Any] = list(model.graph.node)  # read() simplifies some patterns
        self.version = opset(model)
        self.env: dict[str, Value | Ids] = {}
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
        self.features = 0

    # ---------------------------------------------------------------- helpers

    def where(self, node: Any) -> str:
        return f"node '{node.name or node.output[0]}' ({node.op_type})"

    def unique(self, text: str) -> str:
        base = name_of(text)
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

    def _node(self, node: Any) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise ExportError(
                f"{self.where(node)}: operator {node.domain}.{op} is not a standard ONNX operator; "
                "export with torch.onnx.export and no custom operators"
            )
        ins = [self.value(n) for n in node.input]
        for name, v in zip(node.input, ins, strict=True):
            if name and v is None:
                raise ExportError(
                    f"{self.where(node)}: its input '{name}' is computed by no node before it (the "
                    "graph is not in topological order); export the model again"
                )
        known = [v for v in ins if v is not None]
        if (
            all(
                isinstance(v, Const) or (isinstance(v, ShapeVal) and v.const() is not None)
                for v in known
            )
            and op not in RECURRENT_OPS
        ):
            vals = [
                None if v is None else v.value if isinstance(v, Const) else v.const() for v in ins
            ]
            for name, out in zip(node.output, fold_node(node, vals, self.version), strict=False):
                self.env[name] = Const(out)
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
            step = (
                int(self.const(node, 4, "steps")[0]) if len(node.input) > 4 and node.input[4] else 1
            )
            return [ShapeVal(tuple(s.dims[start:end:step]))]  # ONNX clamps as Python does
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
            if (
                isinstance(other, Const)
                and other.value.size
                and np.all(other.value == other.value.reshape(-1)[0])
            ):
                c = float(other.value.reshape(-1)[0])
                x = fills[0].value
                first = isinstance(ins[0], Fill)
                res = {
                    "Mul": x * c,
                    "Add": x + c,
                    "Sub": x - c if first else c - x,
                    "Div": x / c if first and c else None,
                }[op]
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
            for k in sorted(
                int(k) % (len(s.axes) + len(self.const(node, 1, "axes")))
                for k in self.const(node, 1, "axes")
            ):
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
                raise ExportError(
                    f"{self.where(node)}: it casts the token ids to floats; feed "
                    "them to an Embedding (nn.Embedding) directly"
                )
            return [ins[0]]
        if to not in FLOAT_TYPES:
            raise ExportError(
                f"{self.where(node)}: it casts a computed tensor to integers; "
                "rnn2c reads float computations only"
            )
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
        if not role and label in ("a0", "a1"):
            return f"input axis {label[1]}"
        return role or named.get(label, label)

    def _data(self, node: Any, v: Any) -> Data:
        if isinstance(v, Ids):
            raise ExportError(
                f"{self.where(node)}: it computes with the token ids; rnn2c reads token ids only "
                "through an Embedding (nn.Embedding) as the model's first layer"
            )
        if not isinstance(v, Data):
            raise ExportError(
                f"{self.where(node)}: its first input is not computed from the model input"
            )
        return v

    def op_Gather(self, node: Any, ins: list[Any]) -> list[Any]:
        if isinstance(ins[1], Ids) and isinstance(ins[0], Const):
            return [self._embedding(node, ins[0].value, ins[1])]
        d = self._data(node, ins[0])
        idx = np.asarray(self.const(node, 1, "index"))
        k = self.axis(node, d, int(self.attrs(node).get("axis", 0)))
        flat = [int(i) for i in idx.reshape(-1)]
        if idx.ndim > 1 or (idx.ndim == 1 and len(flat) != 1 and d.axes[k] not in ("D",)):
            raise ExportError(
                f"{self.where(node)}: it gathers {len(flat)} entries of an axis; "
                "rnn2c reads a Gather that takes one step or one direction"
            )
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
                raise ExportError(self._step_message(node, picks[0]))
            if keep:
                axes = axes[:k] + ("1",) + axes[k + 1 :]
            return Data(axes, feats)
        if role is None and label in ("a0", "a1"):  # an input axis read before any recurrent op
            raise ExportError(self._step_message(node, picks[0]))
        raise ExportError(
            f"{self.where(node)}: it selects from the {self._label(label)} axis; rnn2c reads "
            "selections of the last step or of a direction only"
        )

    def _step_message(self, node: Any, index: int) -> str:
        return (
            f"{self.where(node)}: it takes step {index} of a sequence; rnn2c reads recurrent ops "
            "over whole sequences (nn.GRU, nn.LSTM, nn.RNN; not a Python loop of nn.GRUCell, "
            "nn.LSTMCell or nn.RNNCell over the steps) and their last step (y[:, -1]) or every step"
        )

    def _last(self, p: Part, node: Any) -> Part:
        """The part at the last step of its sequence."""
        if p.kind != "seq":
            return replace(p, kind="it takes the last step of a tensor without a time axis")
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
        axes = (
            [int(v) for v in self.const(node, 3, "axes").reshape(-1)]
            if has(3)
            else list(range(len(starts)))
        )
        steps = (
            [int(v) for v in self.const(node, 4, "steps").reshape(-1)]
            if has(4)
            else [1] * len(starts)
        )
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
            raise ExportError(
                f"{self.where(node)}: it concatenates a constant with computed "
                "tensors; rnn2c concatenates computed tensors only"
            )
        first = ds[0]
        k = self.axis(node, first, int(self.attrs(node).get("axis", 0)))
        label = first.axes[k]
        if label == "F":
            if len({len(x.feats) for x in ds}) != 1 or len({x.axes for x in ds}) != 1:
                raise ExportError(
                    f"{self.where(node)}: it concatenates tensors of different layouts"
                )
            feats = tuple(
                merge_segments(tuple(p for x in ds for p in x.feats[i]))
                for i in range(len(first.feats))
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
        target = (
            list(raw.dims)
            if isinstance(raw, ShapeVal)
            else [Dim(int(v)) for v in self.const(node, 1, "shape")]
        )
        sizes = self.shape(d)
        if len(target) <= len(sizes) and all(
            t in (Dim(1), s) for t, s in zip(target, sizes[len(sizes) - len(target) :], strict=True)
        ):
            return [d]
        raise ExportError(
            f"{self.where(node)}: it broadcasts a computed tensor to a new shape; "
            "rnn2c reads Expand only as a no-op on computed tensors"
        )

    def op_Pad(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        a = self.attrs(node)
        if a.get("mode", "constant") != "constant":
            raise ExportError(
                f"{self.where(node)}: padding mode {a['mode']!r} is not supported; "
                "pad with zeros (the causal left padding before a Conv)"
            )
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
            if self.role(d.axes[k]) == "T" or (
                d.axes[k] in ("a0", "a1") and self.roles.get(d.axes[k]) is None
            ):
                if e == 0 and b > 0:
                    left = b
                    continue
            raise ExportError(
                f"{self.where(node)}: it pads the {self._label(d.axes[k])} axis by ({b}, {e}); "
                "rnn2c reads zero padding at the start of the time axis only, right before a Conv "
                "(F.pad(x, (k - 1, 0)): causal)"
            )
        feats = tuple(tuple(replace(p, pad=p.pad + left) for p in f) for f in d.feats)
        return [Data(d.axes, feats)]
