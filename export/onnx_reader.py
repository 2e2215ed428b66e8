"""Read a PyTorch model exported to ONNX (``torch.onnx.export``, either exporter) into the same
float IR the Keras reader produces, so that the quantizer, the C, the boards and verify are shared.

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
* ``Add``/``Sub``/``Mul``/``Concat`` of two computed tensors as merges (a graph of branches);
* ``nn.RNN`` as the dynamo exporter writes it, unrolled over the example's steps: rewritten into
  the RNN op it computes first (export/onnx_unroll.py).

Anything else is refused in one line naming the node, its op type and the way forward. The ONNX
gate orders are converted to the IR's (Keras') orders: GRU z, r, h is already Keras' z, r, h; LSTM
i, o, f, c becomes i, f, c, o.

Data: ``--calib``/``--data`` stay [N, T, F] (token ids [N, T]) whatever the graph's layout; the
reader finds which input axis is batch and which time from the operators that read them
(:class:`OnnxLayout`) and says so in a note. :func:`run_onnx` runs the model with onnxruntime on
[N, T, F] sequences, each at its real length: the float reference.

Modules: onnx_graph.py (loading, values, shapes, the runner), onnx_glue.py (the walk over the
glue), onnx_layers.py (the non-recurrent layers), onnx_unroll.py (dynamo's unrolled nn.RNN),
this one (the recurrent ops, the end of the walk, the API).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, FloatLayer, ModelIR, fold_affine
from rnn2c.export.layers.bidirectional import SequenceLayer
from rnn2c.export.layers.gru import GRULayer
from rnn2c.export.layers.lstm import LSTMLayer
from rnn2c.export.layers.simple_rnn import SimpleRNNLayer
from rnn2c.export.onnx_glue import FLOAT_TYPES, INT_TYPES, Ids, name_of
from rnn2c.export.onnx_graph import (
    Const,
    Data,
    Feat,
    Fill,
    OnnxLayout,
    Part,
    StateIn,
    fold_node,
    load,
    run_layout,
)
from rnn2c.export.onnx_layers import LayerWalk
from rnn2c.export.onnx_unroll import fold_unrolled


@dataclass
class OnnxIR(ModelIR):
    """The float IR of an ONNX model, with what the reader decided (notes, ModelIR's) and the
    graph's layout for the float runner."""

    layout: OnnxLayout | None = None


@dataclass
class OnnxModel:
    """An .onnx file read (export/kinds.py's read): what the commands hold where they would hold
    a Keras model: the file, its float IR, and its float outputs from onnxruntime."""

    path: Path
    ir: OnnxIR

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> OnnxModel:
        return cls(Path(path), read_onnx(path))

    def outputs(
        self, x: np.ndarray, lengths: np.ndarray | None, every_step: bool = False
    ) -> np.ndarray:
        """onnxruntime's output for each sequence cut to its real length, as verify's Keras
        float_outputs gives it: [N, out] (the last real step), or with ``every_step`` [N, T, out]
        for a model that returns sequences (zeros past each real length)."""
        assert self.ir.layout is not None
        y = run_onnx(self.ir, x, lengths)
        sequences = self.ir.layout.sequences
        if every_step:
            if not sequences:
                raise ExportError(
                    "--data: y holds a label per time step ([N, T]) but the model gives one "
                    "output per sequence; per-step labels need a model that returns an output "
                    "per step"
                )
            return y
        if not sequences:
            return y
        n, t = np.asarray(x).shape[:2]
        lens = np.full(n, t) if lengths is None else np.asarray(lengths, dtype=np.int64)
        return y[np.arange(n), lens - 1]


def read_onnx(path: str | os.PathLike[str]) -> OnnxIR:
    """A .onnx file -> the float IR (an OnnxIR: a ModelIR with notes and the graph's layout).
    One-line ExportError for anything rnn2c cannot read."""
    model = load(path)
    return _Reader(model, Path(path)).read()


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
    assert ir.layout is not None
    return run_layout(ir.layout, ir.output_size, x, lengths)


class _Reader(LayerWalk):
    """The walk with every handler: the graph's inputs, the recurrent ops and the end (the
    output, which layers it needs, the notes and the layout for the runner)."""

    def read(self) -> OnnxIR:
        self._init_inputs()
        consts = {k: v.value for k, v in self.env.items() if isinstance(v, Const)}
        outputs = {o.name for o in self.graph.output}
        self.nodes, new, count = fold_unrolled(self.nodes, consts, outputs)
        self.env.update({k: Const(v) for k, v in new.items()})
        if count:
            self.notes.append(
                f"{count} nn.RNN direction(s) written unrolled over the example's steps (torch's "
                "dynamo exporter) read as RNN ops"
            )
        self._refuse_unrolled()
        self.nodes = self._simplify()
        for node in self.nodes:
            for name in node.input:
                if name and node.op_type != "Shape":  # Shape reads no values
                    self.readers_of.setdefault(name, []).append(node)
        for node in self.nodes:
            self._node(node)
        return self._finish()

    def _refuse_unrolled(self) -> None:
        """torch's dynamo exporter writes nn.RNN unrolled over the example's steps: one MatMul
        per step with the same recurrent weight, each step's result feeding the next one's
        MatMul. Refused with the way out (a weight merely shared by two Linear layers is not)."""
        users: dict[str, list[Any]] = {}
        inits = {t.name for t in self.graph.initializer}
        for node in self.nodes:
            if node.op_type == "MatMul" and len(node.input) > 1 and node.input[1] in inits:
                users.setdefault(node.input[1], []).append(node)
        readers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                readers.setdefault(name, []).append(node)
        for weight, nodes in users.items():
            if len(nodes) < 2:
                continue
            todo, seen = [nodes[0].output[0]], set()
            for _ in range(8):  # a few nodes from one step's MatMul to the next step's
                todo = [o for t in todo for r in readers.get(t, []) for o in r.output]
                hit = [n for n in nodes[1:] if n.input[0] in todo]
                if hit:
                    raise ExportError(
                        f"{self.where(nodes[0])}: its weight '{weight}' is multiplied by "
                        f"{len(nodes)} MatMul nodes, one per step: a recurrence unrolled over the "
                        "example's steps (torch's dynamo exporter writes nn.RNN so); export with "
                        "torch.onnx.export(..., dynamo=False), which writes one RNN op"
                    )
                todo = [t for t in todo if t not in seen]
                seen.update(todo)

    def _simplify(self) -> list[Any]:
        """torch's dynamo exporter writes F.softplus as Where(Greater(x, 20), x, Softplus(x))
        (x itself past the threshold): read as Softplus(x), which differs from x there by
        log1p(exp(-x)) < 2.1e-9. The other nodes as they are."""
        from onnx import helper  # noqa: PLC0415

        by_out = {o: n for n in self.nodes for o in n.output}
        readers: dict[str, int] = {}
        for n in self.nodes:
            for name in n.input:
                readers[name] = readers.get(name, 0) + 1
        swap: dict[int, Any] = {}
        for n in self.nodes:
            if n.op_type != "Where" or len(n.input) != 3:
                continue
            g, sp = by_out.get(n.input[0]), by_out.get(n.input[2])
            if g is None or sp is None or (g.op_type, sp.op_type) != ("Greater", "Softplus"):
                continue
            x = sp.input[0]
            limit = self.env.get(g.input[1]) if len(g.input) > 1 else None
            if limit is None and g.input[1] in by_out and by_out[g.input[1]].op_type == "Constant":
                limit = Const(fold_node(by_out[g.input[1]], [], self.version)[0])
            big = isinstance(limit, Const) and limit.value.size == 1 and float(limit.value) >= 15
            if g.input[0] == x and n.input[1] == x and big and readers.get(g.output[0]) == 1:
                swap[id(g)] = None
                swap[id(n)] = helper.make_node(
                    "Identity", [sp.output[0]], [n.output[0]], name=n.name
                )
        out = [swap.get(id(n), n) for n in self.nodes]
        return [n for n in out if n is not None]

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
        for i in graph_inputs[1:]:
            sdims = [
                d.dim_value if d.HasField("dim_value") else None
                for d in i.type.tensor_type.shape.dim
            ]
            self.env[i.name] = StateIn(i.name, tuple(f"{i.name}:{j}" for j in range(len(sdims))))
            self.states.append((i.name, sdims, int(i.type.tensor_type.elem_type)))

    # ---------------------------------------------------------------- recurrent ops

    def _recurrent(self, node: Any, ins: list[Any]) -> list[Any]:
        """GRU, LSTM, RNN -> an IR recurrent layer (SequenceLayer: reverse, bidirectional);
        outputs Y [T, D, B, H] (layout 1: [B, T, D, H]), Y_h and Y_c [D, B, H] ([B, D, H])."""
        op, a = node.op_type, self.attrs(node)
        x = self._check_recurrent(node, ins, a)
        layout, direction = int(a.get("layout", 0)), a.get("direction", "forward")
        units, nd = int(a["hidden_size"]), 2 if direction == "bidirectional" else 1
        w = np.asarray(self.const(node, 1, "weight W"), dtype=np.float64)
        r = np.asarray(self.const(node, 2, "weight R"), dtype=np.float64)
        b = np.zeros((nd, 2 * GATE_COUNT[op] * units))
        if len(node.input) > 3 and node.input[3]:
            b = np.asarray(self.const(node, 3, "bias B"), dtype=np.float64).reshape(nd, -1)
        rows = GATE_COUNT[op] * units
        if w.shape != (nd, rows, x.width) or r.shape != (nd, rows, units) or b.shape[1] != 2 * rows:
            raise ExportError(
                f"{self.where(node)}: weights W {list(w.shape)}, R {list(r.shape)} do not fit "
                f"{nd} direction(s) of {units} units over {x.width} features"
            )
        name = self.unique(node.name or node.output[0])
        names = [f"{name}_fw", f"{name}_bw"] if nd == 2 else [name]
        cells = [cell(node, op, a, w[d], r[d], b[d], d, names[d]) for d in range(nd)]
        src, part = self.consume(x, node, allow_affine=True)
        if part is not None and part.affine is not None:
            for c in cells:
                fold_affine(c, *part.affine)
        if direction == "forward":
            layer: FloatLayer = cells[0]
        else:  # whole-sequence: reverse (go_backwards) or both directions side by side
            fw, bw = (None, cells[0]) if direction == "reverse" else (cells[0], cells[1])
            layer = SequenceLayer(
                name=name,
                input_size=x.width,
                forward=fw,
                backward=bw,
                merge="none" if fw is None else "concat",
                return_sequences=True,  # set from what reads it (_set_sequences)
            )
        k = self.add_layer(layer, [src], True, node.output[0] if node.output else "")
        self.rec_uses[k] = set()
        dirs = {"forward": ["fw"], "reverse": ["bw"]}.get(direction, ["fw", "bw"])
        t, bt = (x.axes[0], x.axes[1]) if layout == 0 else (x.axes[1], x.axes[0])
        dl = "D" if nd == 2 else "1"

        def feats(kind: str) -> tuple[Feat, ...]:
            return tuple((Part(k, i * units, (i + 1) * units, kind, dirs[i]),) for i in range(nd))

        state_axes = (dl, bt, "F") if layout == 0 else (bt, dl, "F")
        y = Data((t, dl, bt, "F") if layout == 0 else (bt, t, dl, "F"), feats("seq"))
        outs = [y, Data(state_axes, feats("final")), Data(state_axes, feats("cell"))]
        return outs[: len(node.output)]

    def _check_recurrent(self, node: Any, ins: list[Any], a: dict[str, Any]) -> Data:
        """Refuse what the IR's cells cannot do; give the input axes their roles."""
        where, op = self.where(node), node.op_type
        x = ins[0] if ins else None
        if not isinstance(x, Data):
            raise ExportError(f"{where}: its input X is not computed from the model input")
        if "clip" in a:
            raise ExportError(
                f"{where}: clip={a['clip']:g} (cell clipping) is not supported; export "
                "without it (torch never sets it)"
            )
        if a.get("direction", "forward") not in ("forward", "reverse", "bidirectional"):
            raise ExportError(f"{where}: direction {a['direction']!r} is not an ONNX direction")
        if len(x.axes) != 3 or x.axes[2] != "F":
            raise ExportError(
                f"{where}: its input is not [time, batch, features] (layout 0) or "
                "[batch, time, features] (layout 1) after the glue"
            )
        t_ax, b_ax = (0, 1) if int(a.get("layout", 0)) == 0 else (1, 0)
        self.assign(x.axes[t_ax], "T", node)
        self.assign(x.axes[b_ax], "B", node)
        has = lambda k: len(node.input) > k and bool(node.input[k])  # noqa: E731
        if has(4):
            raise ExportError(
                f"{where}: sequence_lens is not supported; the C runs each sequence to "
                "its own length (give the lengths with the data instead)"
            )
        for k, what in ((5, "initial_h"), (6, "initial_c")):
            if has(k):
                self._initial_state(node, ins[k], what, int(a.get("layout", 0)))
        if has(7) and np.any(self.const(node, 7, "peepholes P")):
            raise ExportError(
                f"{where}: peephole connections (input P) are not supported; use an "
                "LSTM without peepholes (torch's nn.LSTM has none)"
            )
        if op == "LSTM" and int(a.get("input_forget", 0)):
            raise ExportError(
                f"{where}: input_forget=1 (coupled input and forget gates) is not "
                "supported; use an LSTM without it (torch's nn.LSTM)"
            )
        return x

    def _initial_state(self, node: Any, v: Any, what: str, layout: int) -> None:
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
                raise ExportError(
                    f"{where}: its {what} from input '{v.name}' is not [directions, batch, units]"
                )
            self.state_batch[v.name] = int(v.axes[k].rsplit(":", 1)[1])
            return
        if isinstance(v, Data):
            raise ExportError(
                f"{where}: its {what} is computed from the model input (an encoder's state handed "
                "on); rnn2c exports recurrent layers that start from a zero state"
            )
        raise ExportError(
            f"{where}: its {what} is a nonzero constant; rnn2c's C starts every sequence from a "
            "zero state (reset): export with a zero initial state, or pass the state as an input"
        )

    # ---------------------------------------------------------------- the end of the walk

    def _pure_state(self, v: Any) -> bool:
        """A value that is only a recurrent op's state (Y_h / Y_c, h_n / c_n): a returned state."""
        if not isinstance(v, Data):
            return False
        parts = [p for f in v.feats for p in f]
        return all(
            p.src >= 0
            and p.kind in ("final", "cell")
            and self.layers[p.src].kind in ("gru", "lstm", "rnn", "bidir")
            for p in parts
        )

    def _finish(self) -> OnnxIR:
        outs = [(o.name, self.env.get(o.name)) for o in self.graph.output]
        where = f"model file {str(self.path)!r}"
        computed = [(n, v) for n, v in outs if isinstance(v, Data)]
        if not computed:
            raise ExportError(f"{where}: no graph output is computed from the model input")
        main = next(((n, v) for n, v in computed if not self._pure_state(v)), computed[0])
        others = [n for n, v in computed if n != main[0]]
        extra = [n for n, v in computed if n != main[0] and not self._pure_state(v)]
        if extra:
            raise ExportError(
                f"{where}: the graph has {len(extra) + 1} outputs computed from the input "
                f"('{main[0]}', '{extra[0]}'); rnn2c exports one output (the others may only be "
                "returned recurrent states h_n / c_n)"
            )
        name, data = main
        node = next((n for n in self.nodes if name in n.output), None)
        fake = (
            node
            if node is not None
            else type("N", (), {"name": name, "op_type": "output", "output": [name]})()
        )
        if len(data.feats) != 1:
            raise ExportError(
                f"{where}: output '{name}' stacks {len(data.feats)} parts (directions or layers "
                "of a recurrent state) on an axis of its own; rnn2c exports one feature vector per "
                "step: output one layer's state (h_n[-1]), or the directions side by side"
            )
        out_src, part = self.consume(data, fake, allow_affine=True)
        if part is not None and part.affine is not None:
            raise ExportError(
                f"{where}: output '{name}' is scaled or shifted per feature (Mul/Add/BatchNorm/"
                "LayerNorm's scale and bias) after a layer rnn2c cannot fold that into; end the "
                "model with a Linear layer"
            )
        self._set_sequences()
        if out_src >= 0 and out_src not in self.rec_uses and not self.has_time(data):
            self.seq[out_src] = False  # the output is the last step of a per-step layer
        keep = self._reachable(out_src)
        layers, inputs, seq = self._renumber(keep)
        out_axes = tuple(self._out_role(lab, name) for lab in data.axes)
        if not any("B" in r for r in out_axes):
            raise ExportError(
                f"{where}: output '{name}' has no batch axis rnn2c can find; the batch "
                "must stay an axis of its own (or folded with time) to the output"
            )
        self._check_model(layers, inputs)
        chain = all(ins == [i - 1] for i, ins in enumerate(inputs))
        if not chain:
            self._check_graph(layers)
        roles = {self.roles.get("a0"), self.roles.get("a1")}
        if roles != {"B", "T"}:
            raise ExportError(
                f"{where}: rnn2c cannot tell which input axis is batch and which is "
                "time (no recurrent op or Conv reads them)"
            )
        self._add_notes(others)
        return OnnxIR(
            layers=layers,
            input_size=self.features,
            source=name_of(self.path.stem),
            sequence_out=seq,
            embedding=self.embedding,
            inputs=[] if chain else inputs,
            notes=self.notes,
            layout=self._layout(name, out_axes),
        )

    def _set_sequences(self) -> None:
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
                    f"layer '{layer.name}' (reverse direction): the graph reads its every step "
                    "(Y); rnn2c reads a reverse-direction op through its final state (Y_h / "
                    "h_n), or a bidirectional op's steps"
                )
            self.seq[k] = seq
            if layer.kind == "bidir":
                layer.return_sequences = seq  # type: ignore[attr-defined]

    def _reachable(self, out: int) -> list[int]:
        seen, todo = set(), [out]
        while todo:
            k = todo.pop()
            if k < 0 or k in seen:
                continue
            seen.add(k)
            todo.extend(self.inputs[k])
        if out < 0:
            raise ExportError(
                f"model file {str(self.path)!r}: the output is the model input itself"
            )
        return sorted(seen)

    def _renumber(self, keep: list[int]) -> tuple[list[FloatLayer], list[list[int]], list[bool]]:
        new = {old: i for i, old in enumerate(keep)}
        layers = [self.layers[k] for k in keep]
        inputs = [[new[j] if j >= 0 else j for j in self.inputs[k]] for k in keep]
        seq = [self.seq[k] for k in keep]
        return layers, inputs, seq

    def _out_role(self, label: str, name: str) -> str:
        if label in ("F", "1"):
            return label
        roles = [self.role(p) for p in label.split("*")]
        if None in roles or label == "D":
            raise ExportError(
                f"model file {str(self.path)!r}: output '{name}' has an axis rnn2c "
                f"cannot place ({label!r})"
            )
        return "*".join(r for r in roles if r is not None)

    def _check_model(self, layers: list[FloatLayer], inputs: list[list[int]]) -> None:
        kinds = {ly.kind for ly in layers}
        if not kinds & {"gru", "lstm", "rnn", "bidir", "conv1d"}:
            raise ExportError(
                f"model file {str(self.path)!r} has no recurrent layer (GRU, LSTM or RNN); rnn2c "
                "exports recurrent models"
            )
        if self.embedding is not None and "conv1d" in kinds:
            raise ExportError(
                f"layer '{self.embedding.name}' (Embedding): an Embedding before Conv1d layers is "
                "not supported; feed the Embedding to a recurrent or Linear layer"
            )
        del inputs

    def _check_graph(self, layers: list[FloatLayer]) -> None:
        names = {
            "bidir": "a bidirectional or reverse recurrent op",
            "conv1d": "a Conv",
            "lnorm": "LayerNormalization",
        }
        for ly in layers:
            if ly.kind in names:
                raise ExportError(
                    f"layer '{ly.name}': {names[ly.kind]} in a graph of branches (merges) is not "
                    "supported; use a chain"
                )
        if self.embedding is not None:
            raise ExportError(
                f"layer '{self.embedding.name}' (Embedding): an Embedding in a graph of branches "
                "is not supported; use a chain"
            )

    def _add_notes(self, returned: list[str]) -> None:
        axes = {self.roles.get(lab): k for k, lab in enumerate(("a0", "a1"))}
        dims = ["?" if d is None else str(d) for d in self.input_dims]
        self.notes.append(
            f"input '{self.input_name}' [{', '.join(dims)}]: axis {axes['B']} is batch, axis "
            f"{axes['T']} time (as {self.role_node.get(('a0', 'a1')[axes['T']], 'the graph')} "
            "reads them); --calib and --data stay [N, T, features]"
        )
        t = self.fixed.get("a0" if axes["T"] == 0 else "a1")
        if t is not None:
            self.notes.append(
                f"the graph fixes the time axis at {t} steps (exported without a dynamic time "
                "axis): rnn2c's C takes any length; the onnxruntime reference runs "
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

    def _layout(self, name: str, out_axes: tuple[str, ...]) -> OnnxLayout:
        roles = [self.roles["a0"], self.roles["a1"]]
        in_axes = tuple(roles) if self.embedding is not None else (*roles, "F")
        b = roles.index("B")
        t = roles.index("T")
        states = []
        for sname, dims, _dtype in self.states:
            k = self.state_batch.get(sname)
            states.append(
                (sname, [None if j == k or d is None else d for j, d in enumerate(dims)], "float32")
            )
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

    op_GRU = op_LSTM = op_RNN = _recurrent


# ---------------------------------------------------------------- ONNX weights -> IR cells

#: ONNX recurrent activations -> the IR's (gates, cells)
GATES = {"Sigmoid": "sigmoid"}
CELLS = {"Tanh": "tanh", "Relu": "relu"}
#: gate rows per unit
GATE_COUNT = {"GRU": 3, "LSTM": 4, "RNN": 1}
#: ONNX LSTM blocks i, o, f, c in Keras' order i, f, c, o
LSTM_ORDER = (0, 2, 3, 1)


def activations(node: Any, op: str, a: dict[str, Any], d: int) -> tuple[str, str]:
    """The (gate, cell) activations of direction d, as the IR names them."""
    defaults = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "RNN": ["Tanh"]}[
        op
    ]
    n = len(defaults)
    given = list(a.get("activations", []))
    mine = [s.decode() if isinstance(s, bytes) else str(s) for s in given[d * n : (d + 1) * n]]
    mine = mine or defaults
    where = f"node '{node.name or node.output[0]}' ({op})"
    gate = "Sigmoid" if op == "RNN" else mine[0]
    cell = mine[0] if op == "RNN" else mine[1]
    if op == "LSTM" and mine[2] != mine[1]:
        raise ExportError(
            f"{where}: activations {mine}: rnn2c needs the same function for the "
            "cell input and the output (g = h)"
        )
    if gate not in GATES or cell not in CELLS:
        raise ExportError(
            f"{where}: activations {mine} are not supported; gates: {', '.join(GATES)}, cells: "
            f"{', '.join(CELLS)} (nn.RNN nonlinearity 'tanh' or 'relu')"
        )
    return GATES[gate], CELLS[cell]


def cell(
    node: Any,
    op: str,
    a: dict[str, Any],
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray,
    d: int,
    name: str,
) -> FloatLayer:
    """One direction's float cell from ONNX W [G*H, I], R [G*H, H], B [2*G*H]."""
    gate, cell_act = activations(node, op, a, d)
    units = int(r.shape[1])
    g = w.shape[0] // units
    wb, rb = b[: g * units], b[g * units :]
    if op == "GRU":  # ONNX z, r, h: Keras' order
        lbr = int(a.get("linear_before_reset", 0))
        return GRULayer(
            name=name,
            input_size=int(w.shape[1]),
            units=units,
            kernel=w.T.copy(),
            recurrent_kernel=r.T.copy(),
            bias=wb.copy() if lbr else wb + rb,
            recurrent_bias=rb.copy() if lbr else np.zeros(3 * units),
            reset_after=bool(lbr),
            gate_act=gate,
            cell_act=cell_act,
        )
    if op == "LSTM":  # ONNX i, o, f, c -> Keras i, f, c, o

        def keras(m: np.ndarray) -> np.ndarray:
            return np.concatenate([m[k * units : (k + 1) * units] for k in LSTM_ORDER])

        return LSTMLayer(
            name=name,
            input_size=int(w.shape[1]),
            units=units,
            kernel=keras(w).T.copy(),
            recurrent_kernel=keras(r).T.copy(),
            bias=keras(wb + rb),
            gate_act=gate,
            cell_act=cell_act,
        )
    return SimpleRNNLayer(
        name=name,
        input_size=int(w.shape[1]),
        units=units,
        kernel=w.T.copy(),
        recurrent_kernel=r.T.copy(),
        bias=wb + rb,
        cell_act=cell_act,
    )
