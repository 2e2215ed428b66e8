"""The graph level of the ONNX front end (export/onnx_reader.py): loading a .onnx file (its opset,
its weights stored beside it), the values the reader tracks per tensor, the symbolic shapes torch
computes for dynamic axes, constant folding of the glue, and the axis bookkeeping of Reshape.

Values (one per tensor name):

* :class:`Const`: a known array (initializers, ``Constant``, anything folded from them);
* :class:`ShapeVal`: a 1-D int64 tensor whose entries may be symbolic (``Shape`` of a tensor with
  a dynamic batch or time axis, and the Gather/Slice/Concat/Mul glue torch builds from it);
* :class:`Fill`: a tensor of one value whose shape is symbolic (the zero initial state torch
  builds with ``ConstantOfShape``/``Expand``);
* :class:`Data`: a tensor computed from the model input, with labelled axes (the input's own
  axes ``a0``/``a1`` until an operator gives them their role, batch or time; ``F`` features;
  ``1`` a unit axis; ``D`` stacked parts: directions or layers' states; ``x*y`` two axes folded
  into one by a Reshape) and, per ``D`` entry, the feature segments it is made of, each a slice
  of an IR layer's output (:class:`Part`);
* :class:`StateIn`: a graph input that carries a recurrent op's initial state (the C keeps the
  state itself, the reference feeds zeros).

The float reference runs the file with onnxruntime (:func:`run_layout`), feeding [N, T, F]
sequences in the graph's own layout (:class:`OnnxLayout`, which the reader fills in).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError

#: the lowest opset read: Squeeze/Unsqueeze/ReduceSum take axes as inputs, Softmax works on one
#: axis (opset 13). torch writes 17 or later by default.
MIN_OPSET = 13
#: ONNX element types the reader accepts for the model input: float, token ids
FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}
INT_TYPES = {6: np.int32, 7: np.int64}
BIG = 1 << 62  # an end index at least this large means "to the end"


def load(path: str | Any) -> Any:
    """Read a .onnx file into a ModelProto with its weights; one-line ExportError when the file is
    missing, not ONNX, truncated, below MIN_OPSET or its external weights are missing."""
    onnx = optional("onnx")

    p = Path(path)
    if p.is_dir():
        raise ExportError(f"model {str(p)!r} is a folder; give the .onnx file")
    if not p.is_file():
        raise ExportError(f"model file {str(p)!r} does not exist; give a .onnx file")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # noqa: BLE001  (protobuf errors: a truncated or foreign file)
        why = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise ExportError(
            f"model file {str(p)!r} is not a readable ONNX model ({why}); it is truncated or not "
            "ONNX: export it again with torch.onnx.export"
        ) from None
    if not model.graph.node or not model.graph.input:
        raise ExportError(
            f"model file {str(p)!r} holds no ONNX graph (no nodes or no inputs); it is truncated "
            "or not ONNX: export it again with torch.onnx.export"
        )
    version = opset(model)
    if version < MIN_OPSET:
        raise ExportError(
            f"model file {str(p)!r} uses ONNX opset {version}; rnn2c reads opset {MIN_OPSET} or "
            "later: export again with torch.onnx.export(..., opset_version=17) or later"
        )
    _load_external(model, p)
    return model


def optional(module: str) -> Any:
    """Import a module of the extra 'onnx' (onnx, onnxruntime); one-line ExportError without it."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"reading ONNX models needs the Python package {module}, which is not installed; "
            "install rnn2c's extra 'onnx' (pip install 'rnn2c[onnx]')"
        ) from None


def opset(model: Any) -> int:
    """The model's opset of the default ONNX domain (0 when it imports none)."""
    return max(
        (int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0
    )


def _load_external(model: Any, path: Path) -> None:
    """Load the weights torch's dynamo exporter stores beside the file (``m.onnx.data``)."""
    import onnx  # noqa: PLC0415
    from onnx.external_data_helper import uses_external_data  # noqa: PLC0415

    base = path.resolve().parent
    wanted: dict[str, list[str]] = {}
    for t in model.graph.initializer:
        if uses_external_data(t):
            where = {e.key: e.value for e in t.external_data}.get("location", "")
            wanted.setdefault(where, []).append(t.name)
    for where, names in wanted.items():
        f = (base / where).resolve()
        if base not in f.parents:
            raise ExportError(
                f"model file {str(path)!r} keeps weights (e.g. '{names[0]}') in {where!r}, "
                "outside its folder; rnn2c reads weights only from files beside the model"
            )
        if not f.is_file():
            raise ExportError(
                f"model file {str(path)!r} keeps {len(names)} weight tensors (e.g. "
                f"'{names[0]}') in {where!r} beside it, and that file is missing; copy it next "
                "to the .onnx file (torch.onnx.export writes both)"
            )
    if not wanted:
        return
    try:
        onnx.load_external_data_for_model(model, str(base))
    except Exception as e:  # noqa: BLE001  (a truncated .data file)
        why = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise ExportError(
            f"model file {str(path)!r}: its weights stored beside it cannot be read ({why}); "
            "copy the .data file that torch.onnx.export wrote again"
        ) from None
    for t in model.graph.initializer:
        if uses_external_data(t) and not t.raw_data:
            raise ExportError(
                f"model file {str(path)!r}: weight '{t.name}' is missing from its .data file "
                "(truncated); copy the .data file that torch.onnx.export wrote again"
            )


# ---------------------------------------------------------------- symbolic dimensions


@dataclass(frozen=True)
class Dim:
    """A dimension: coef times the product of symbolic axis sizes (labels); an int when syms is
    empty."""

    coef: int
    syms: tuple[str, ...] = ()

    @staticmethod
    def of(v: int | Dim) -> Dim:
        return v if isinstance(v, Dim) else Dim(int(v))

    @property
    def value(self) -> int | None:
        return None if self.syms else self.coef

    def __mul__(self, other: Dim) -> Dim:
        return Dim(self.coef * other.coef, tuple(sorted(self.syms + other.syms)))

    def div(self, other: Dim) -> Dim | None:
        """self / other when it is a Dim (exact), else None."""
        if other.coef == 0 or self.coef % other.coef:
            return None
        rest = list(self.syms)
        for s in other.syms:
            if s not in rest:
                return None
            rest.remove(s)
        return Dim(self.coef // other.coef, tuple(rest))

    def __str__(self) -> str:
        parts = ([str(self.coef)] if self.coef != 1 or not self.syms else []) + list(self.syms)
        return "*".join(parts)


def product(dims: list[Dim]) -> Dim:
    out = Dim(1)
    for d in dims:
        out = out * d
    return out


@dataclass(frozen=True)
class ShapeVal:
    """A small int64 tensor with symbolic entries: 1-D, or a scalar (``scalar``)."""

    dims: tuple[Dim, ...]
    scalar: bool = False

    def const(self) -> np.ndarray | None:
        """The entries as an array when none is symbolic."""
        if any(d.syms for d in self.dims):
            return None
        a = np.array([d.coef for d in self.dims], dtype=np.int64)
        return a.reshape(()) if self.scalar else a


@dataclass(frozen=True)
class Const:
    value: np.ndarray


@dataclass(frozen=True)
class Fill:
    """A tensor every element of which is ``value`` (its shape symbolic: a zero state)."""

    value: float


@dataclass(frozen=True)
class Part:
    """A feature segment of a Data tensor: columns [lo, hi) of IR layer ``src``'s output (-1: the
    model input). ``kind``: "seq" (a row per step), "final" (the output after the last step: the
    state; a forward layer's last row), "cell" (an LSTM's cell state, only returned), or a refusal
    message for a step rnn2c cannot take (the backward direction's last row). ``direction`` of a
    recurrent op's output: "fw", "bw" or "" (both, or not recurrent). ``affine``: a per-feature
    a*x + b still to fold into the next weight layer; ``pad``: zero steps a Pad adds at the left
    (for a Conv)."""

    src: int
    lo: int
    hi: int
    kind: str = "seq"
    direction: str = ""
    affine: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False)
    pad: int = 0

    @property
    def width(self) -> int:
        return self.hi - self.lo


Feat = tuple[Part, ...]


@dataclass(frozen=True)
class Data:
    """A tensor computed from the model input: labelled axes and, per entry of its ``D`` axis (one
    entry without one), the segments its feature axis is made of."""

    axes: tuple[str, ...]
    feats: tuple[Feat, ...]

    @property
    def width(self) -> int:
        return sum(p.width for p in self.feats[0])

    def with_axes(self, axes: tuple[str, ...]) -> Data:
        return Data(axes, self.feats)


@dataclass(frozen=True)
class StateIn:
    """A graph input (name) that feeds a recurrent op's initial state; axes labelled
    ``name:k`` after the input's axis k."""

    name: str
    axes: tuple[str, ...]


Value = Const | ShapeVal | Fill | Data | StateIn


def merge_segments(feat: Feat) -> Feat:
    """Join adjacent segments that are contiguous columns of one producer (the two halves of a
    bidirectional op's output side by side), as one."""
    out: list[Part] = []
    for p in feat:
        q = out[-1] if out else None
        if (
            q is not None
            and q.src == p.src
            and q.hi == p.lo
            and q.affine is None
            and p.affine is None
            and q.pad == p.pad == 0
            and q.kind == p.kind
        ):
            out[-1] = replace(
                q, hi=p.hi, direction="" if q.direction != p.direction else q.direction
            )
        else:
            out.append(p)
    return tuple(out)


def slice_feat(feat: Feat, lo: int, hi: int) -> Feat:
    """Columns [lo, hi) of a feature axis made of segments."""
    out, start = [], 0
    for p in feat:
        a, b = max(lo, start), min(hi, start + p.width)
        if a < b:
            aff = p.affine
            if aff is not None:
                aff = (aff[0][a - start : b - start], aff[1][a - start : b - start])
            out.append(replace(p, lo=p.lo + a - start, hi=p.lo + b - start, affine=aff))
        start += p.width
    return tuple(out)


# ---------------------------------------------------------------- constant folding


def fold_node(node: Any, values: list[np.ndarray | None], version: int) -> list[np.ndarray]:
    """Run one node on constant inputs with ONNX's reference implementation (the glue torch
    writes around recurrent ops: shape arithmetic, pads, zero states)."""
    import onnx  # noqa: PLC0415
    from onnx import helper  # noqa: PLC0415
    from onnx.reference import ReferenceEvaluator  # noqa: PLC0415

    names = [f"i{k}" if v is not None else "" for k, v in enumerate(values)]
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for n, v in zip(names, values, strict=True)
        if v is not None
    ]
    outs = [f"o{k}" for k in range(len(node.output))]
    n = helper.make_node(node.op_type, names, outs, domain=node.domain)
    n.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [n], "fold", inputs, [helper.make_value_info(o, onnx.TypeProto()) for o in outs]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)])
    feeds = {k: v for k, v in zip(names, values, strict=True) if v is not None}
    return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]


# ---------------------------------------------------------------- Reshape


@dataclass
class Group:
    """One group of a reshape: input axes (labels) that become output axes (their sizes)."""

    labels: list[str]
    outs: list[int]  # output positions


def reshape_groups(
    labels: list[str], sizes: list[Dim], target: list[Dim], where: str
) -> tuple[list[Group], list[tuple[int, str | None]]]:
    """Match the input axes (labels, sizes) to the target shape (no 0 or -1 left): groups of
    non-unit axes whose products agree, and the unit output positions (each with the label of a
    dropped unit input axis that is not a plain unit, a batch of 1 say, in order)."""
    ins = [(lab, s) for lab, s in zip(labels, sizes, strict=True) if s != Dim(1)]
    dropped = [lab for lab, s in zip(labels, sizes, strict=True) if s == Dim(1) and lab != "1"]
    outs = [j for j, s in enumerate(target) if s != Dim(1)]
    units = [j for j, s in enumerate(target) if s == Dim(1)]
    groups: list[Group] = []
    i = j = 0
    while i < len(ins) and j < len(outs):
        gi, gj = [i], [j]
        pi, pj = ins[i][1], target[outs[j]]
        while pi != pj:
            if pi.div(pj) is not None and j + 1 < len(outs):
                j += 1
                gj.append(j)
                pj = pj * target[outs[j]]
            elif pj.div(pi) is not None and i + 1 < len(ins):
                i += 1
                gi.append(i)
                pi = pi * ins[i][1]
            else:
                raise ExportError(_reshape_message(where, labels, sizes, target))
        groups.append(Group([ins[k][0] for k in gi], [outs[k] for k in gj]))
        i, j = i + 1, j + 1
    if i != len(ins) or j != len(outs):
        raise ExportError(_reshape_message(where, labels, sizes, target))
    unit_labels: list[tuple[int, str | None]] = []
    for k, pos in enumerate(units):
        unit_labels.append((pos, dropped[k] if k < len(dropped) else None))
    if len(dropped) > len(units):
        raise ExportError(_reshape_message(where, labels, sizes, target))
    return groups, unit_labels


def _reshape_message(where: str, labels: list[str], sizes: list[Dim], target: list[Dim]) -> str:
    have = ", ".join(f"{lab}={s}" for lab, s in zip(labels, sizes, strict=True))
    want = ", ".join(str(t) for t in target)
    return (
        f"{where}: reshapes [{have}] to [{want}], which mixes axes; rnn2c reads reshapes that only "
        "fold batch and time together, join or split the directions of a recurrent op's output, "
        "or add and drop unit axes: reshape the data before the model instead"
    )


def resolve_target(raw: list[Dim], sizes: list[Dim], allowzero: bool, where: str) -> list[Dim]:
    """A Reshape's target with its 0 entries (copy the input's) and its -1 entry (the rest)
    resolved."""
    out: list[Dim | None] = []
    for k, d in enumerate(raw):
        if d == Dim(0) and not allowzero:
            if k >= len(sizes):
                raise ExportError(f"{where}: a 0 in the target shape past the input's axes")
            out.append(sizes[k])
        elif d == Dim(-1):
            out.append(None)
        elif d.coef < 0:
            raise ExportError(f"{where}: target shape entry {d} is not supported")
        else:
            out.append(d)
    if out.count(None) > 1:
        raise ExportError(f"{where}: two -1 entries in the target shape")
    if None in out:
        rest = product([d for d in out if d is not None])
        total = product(sizes)
        q = total.div(rest)
        if q is None:
            raise ExportError(_reshape_message(where, [str(s) for s in sizes], sizes, raw))
        out[out.index(None)] = q
    return [d for d in out if d is not None]


def whole_range(start: int, end: int, step: int, size: int | None) -> bool:
    """Whether a Slice (start, end, step) over an axis of `size` (None: unknown) keeps it all."""
    if step != 1:
        return False
    first = start == 0 or start <= -BIG or (size is not None and start <= -size)
    return first and (end >= BIG or (size is not None and end >= size))


def last_only(start: int, end: int, step: int, size: int | None) -> bool:
    """Whether a Slice (start, end, step) keeps only the last element of an axis."""
    if step != 1:
        return False
    to_end = end >= BIG or (size is not None and end >= size)
    return to_end and (start == -1 or (size is not None and start == size - 1))


# ---------------------------------------------------------------- the float reference


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


def run_layout(
    lay: OnnxLayout, width: int, x: np.ndarray, lengths: np.ndarray | None = None
) -> np.ndarray:
    """The float reference (onnx_reader.run_onnx): the graph over [N, T, F] sequences (token ids
    [N, T]) of `width` outputs, each sequence at its real length, in groups of equal length."""
    x = np.asarray(x)
    n, t = x.shape[:2]
    lens = np.full(n, t, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
    if lay.fixed_steps is not None and np.any(lens != lay.fixed_steps):
        raise ExportError(
            f"model file {lay.path!r} takes {lay.fixed_steps}-step sequences only (exported "
            "without a dynamic time axis), and the data has sequences of "
            f"{sorted(set(lens.tolist()) - {lay.fixed_steps})[0]} steps; export it again with a "
            "dynamic time axis (dynamic_axes / dynamic_shapes) or give "
            f"{lay.fixed_steps}-step sequences"
        )
    sess = _session(lay.path)
    out = np.zeros((n, t, width) if lay.sequences else (n, width))
    chunk = lay.fixed_batch or max(1, n)
    for length in sorted(set(lens.tolist())):
        rows = np.flatnonzero(lens == length)
        for s in range(0, rows.size, chunk):
            idx = rows[s : s + chunk]
            pad = (
                np.concatenate([idx, np.repeat(idx[-1:], chunk - idx.size)])
                if lay.fixed_batch
                else idx
            )
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
    ort = optional("onnxruntime")

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
