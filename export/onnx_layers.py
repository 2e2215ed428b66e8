"""The ONNX operators that become IR layers, except the recurrent ops (export/onnx_reader.py):
MatMul/Gemm (Dense), Conv (Conv1D), Gather on a weight (Embedding), LayerNormalization,
BatchNormalization and per-feature Mul/Add/Sub/Div by constants (an affine folded into a weight
layer), the activations after a Linear or Conv, and Add/Sub/Mul/Concat merges of two computed
tensors; and the bookkeeping of which IR layer a tensor's features come from (``consume``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, FloatLayer, fold_affine
from rnn2c.export.layers.conv1d import MAX_SPAN, Conv1DLayer
from rnn2c.export.layers.dense import DenseLayer
from rnn2c.export.layers.embedding import EmbeddingLayer
from rnn2c.export.layers.layer_norm import LayerNormLayer
from rnn2c.export.layers.merge import MergeLayer
from rnn2c.export.onnx_glue import ACTIVATION_OPS, GLUE_PASS, RECURRENT_OPS, GraphWalk, Ids
from rnn2c.export.onnx_graph import Const, Data, Fill, Part, merge_segments


class LayerWalk(GraphWalk):
    """The walk with the handlers of the non-recurrent layers."""

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
        return any(
            self.role(p) == "T" or p.startswith(("a0", "a1")) and self._maybe_time(p)
            for a in data.axes
            for p in a.split("*")
        )

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

    # ---------------------------------------------------------------- weight layers

    def _embedding(self, node: Any, table: np.ndarray, ids: Ids) -> Data:
        where = self.where(node)
        if int(self.attrs(node).get("axis", 0)) != 0 or table.ndim != 2:
            raise ExportError(
                f"{where}: it gathers from a {table.ndim}-D table on another axis; "
                "rnn2c reads an Embedding: rows of a [vocab, dim] table"
            )
        readers = [n for n in self.nodes if self.input_name in n.input and n.op_type != "Shape"]
        if self.embedding is not None or len(readers) > 1:
            raise ExportError(
                f"{where}: the token ids feed more than one Embedding or other "
                "nodes; rnn2c reads one Embedding as the model's first layer"
            )
        self.embedding = EmbeddingLayer(
            name=self.unique(node.name or "embedding"), table=np.asarray(table, dtype=np.float64)
        )
        if not np.isfinite(self.embedding.table).all():
            raise ExportError(f"{where}: the embedding table holds NaN or inf values")
        self.features = int(table.shape[1])
        return Data((*ids.axes, "F"), ((Part(-1, 0, int(table.shape[1])),),))

    def _dense(self, node: Any, d: Data, kernel: np.ndarray, bias: np.ndarray) -> Data:
        where = self.where(node)
        if d.axes[-1] != "F":
            raise ExportError(
                f"{where}: it multiplies over the {self._label(d.axes[-1])} axis; "
                "rnn2c reads a Linear layer over the features (the last axis)"
            )
        if kernel.ndim != 2 or kernel.shape[0] != d.width:
            raise ExportError(
                f"{where}: weight of shape {list(kernel.shape)} for {d.width} "
                "features; rnn2c reads a Linear layer's [in, out] weight"
            )
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
            raise ExportError(
                f"{self.where(node)}: it multiplies two computed tensors; rnn2c "
                "reads MatMul with a constant weight (a Linear layer)"
            )
        return [self._dense(node, d, ins[1].value, np.zeros(ins[1].value.shape[-1]))]

    def op_Gemm(self, node: Any, ins: list[Any]) -> list[Any]:
        a = self.attrs(node)
        d = self._data(node, ins[0])
        if a.get("transA", 0) or not isinstance(ins[1], Const):
            raise ExportError(
                f"{self.where(node)}: rnn2c reads Gemm as a Linear layer: data "
                "times a constant weight (transA=0)"
            )
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
            raise ExportError(
                f"{where}: rnn2c reads 1-D convolutions over [batch, channels, time] (nn.Conv1d)"
            )
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
            raise ExportError(
                f"{where}: a window of {extra + 1} steps or stride {stride} is over "
                f"the {MAX_SPAN} supported; use a shorter window"
            )
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
            raise ExportError(
                f"{where}: it divides by a computed tensor (or by zero); rnn2c "
                "reads division by nonzero constants only"
            )
        return self._affine(node, d, a, b, node.input[0 if first else 1])

    def _vector(self, node: Any, c: np.ndarray, d: Data) -> np.ndarray:
        """A constant broadcast against d as one value per feature."""
        rank = len(d.axes)
        if c.ndim > rank:
            raise ExportError(
                f"{self.where(node)}: a constant of rank {c.ndim} against a tensor of rank {rank}"
            )
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
            raise ExportError(
                f"{where}: it divides two computed tensors; rnn2c merges branches "
                "with Add, Sub, Mul or Concat"
            )
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
        k = self.add_layer(
            MergeLayer(name=name, input_size=2 * w, op=op, parts=[w, w]), [a, b], self.has_time(x)
        )
        return Data(x.axes, ((Part(k, 0, w),),))

    def op_BatchNormalization(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        a = self.attrs(node)
        if a.get("training_mode", 0):
            raise ExportError(f"{self.where(node)}: training_mode=1; export the model in eval()")
        if len(d.axes) < 2 or d.axes[1] != "F":
            raise ExportError(
                f"{self.where(node)}: it normalizes axis 1, which is not the "
                "features here; rnn2c reads BatchNorm1d over channels"
            )
        scale, bias, mean, var = (
            self.const(node, k, w).astype(np.float64).reshape(-1)
            for k, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var"))
        )
        g = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        return [self._affine(node, d, g, bias - mean * g, node.input[0])]

    def op_LayerNormalization(self, node: Any, ins: list[Any]) -> list[Any]:
        d = self._data(node, ins[0])
        a = self.attrs(node)
        if self.axis(node, d, int(a.get("axis", -1))) != len(d.axes) - 1 or d.axes[-1] != "F":
            raise ExportError(
                f"{self.where(node)}: it normalizes more than the feature axis; "
                "rnn2c reads LayerNorm over the features (the last axis)"
            )
        src, _ = self.consume(d, node)
        w = d.width
        layer = LayerNormLayer(
            name=self.unique(node.name or node.output[0]),
            input_size=w,
            epsilon=float(a.get("epsilon", 1e-5)),
        )
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
        alpha = (
            float(a.get(slope, {"alpha": 0.01 if op == "LeakyRelu" else 1.0}["alpha"]))
            if slope
            else 0.0
        )
        if op == "HardSigmoid":
            raise ExportError(
                f"{where}: HardSigmoid after a Linear or Conv is not supported; use "
                "sigmoid, tanh, relu, leaky_relu, elu, gelu or softplus"
            )
        if op == "Gelu" and a.get("approximate", "none") != "none":
            raise ExportError(
                f"{where}: the tanh approximation of GELU is not supported; use "
                "nn.GELU() (approximate='none')"
            )
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
            or p.lo != 0
            or p.hi != layer.output_size  # type: ignore[union-attr]
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

    op_Relu = op_Sigmoid = op_Tanh = op_Softmax = op_LeakyRelu = op_Elu = _activation
    op_Gelu = op_Softplus = op_HardSigmoid = _activation
