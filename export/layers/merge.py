"""Merges of parallel branches: Keras ``Add``, ``Subtract``, ``Average``, ``Multiply`` and
``Concatenate`` over the same steps (template layers/merge.c.j2). The graph reader (graph.py)
gives a merge its inputs; its float step takes them concatenated, [x_0; x_1; ...].

Integer rule: every input part i arrives with its own quantization (scale s_i, zero point z_i,
int8 or int16); the output is int8 with one scale s and zero point z from calibration (for
``Concatenate`` the range of all parts together, so each part is requantized to the common one).
In 32-bit integers, per output element:

    t_i = (v_i + 2^(pre_i - 1)) >> pre_i    v_i = x_i - z_i (Multiply: (a - z_a)(b - z_b));
                                            pre_i = 0 (t_i = v_i) unless v_i needs > 16 bits
    y   = sat8(z + ((sum_i m_i t_i + 2^(k-1)) >> k))

with m_i = round(c_i s_i / s * 2^(k + pre_i)) (c_i = 1, -1 for Subtract's second input, 1/n for
Average; Multiply: one term with the product of the two scales), and k the largest shift up to
24 for which sum_i |m_i| max|t_i| + 2^(k-1) < 2^31 (no overflow for any input). ``>>`` is the
arithmetic shift. Concatenate applies the rule to each part alone (one term each).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer
from rnn2c.export.quant_rules import act_quant_from_range, calibrated_range

KERAS_CLASSES = ("Add", "Subtract", "Average", "Multiply", "Concatenate")
OPS = {"Add": "add", "Subtract": "subtract", "Average": "average", "Multiply": "multiply"}
MAX_K = 24
T_BITS = 15  # a term t_i is kept within +-2^15 (a shifted product) or is an int8/int16 difference


@dataclass
class MergeLayer(FloatLayer):
    """Float merge of len(parts) inputs of the given widths (concatenated in x)."""

    kind: ClassVar[str] = "merge"
    op: str = "add"  # add, subtract, average, multiply, concat
    parts: list[int] = field(default_factory=list)

    @property
    def output_size(self) -> int:
        return sum(self.parts) if self.op == "concat" else self.parts[0]

    @property
    def macs(self) -> int:
        return 0

    def split(self, x: np.ndarray) -> list[np.ndarray]:
        return np.split(x, np.cumsum(self.parts)[:-1], axis=-1)

    def step(self, state, x, obs=None):  # noqa: ANN001
        xs = self.split(np.asarray(x, dtype=np.float64))
        if self.op == "concat":
            y = np.concatenate(xs, axis=-1)
        elif self.op == "add":
            y = np.sum(xs, axis=0)
        elif self.op == "subtract":
            y = xs[0] - xs[1]
        elif self.op == "average":
            y = np.mean(xs, axis=0)
        else:
            y = np.prod(xs, axis=0)
        if obs is not None:
            obs.observe("output", y)
        return y

    def quantize(self, input_q, obs, method: str, state_bits: int = 8):  # noqa: ANN001
        raise ExportError(f"layer '{self.name}': a merge is quantized with quantize_parts")

    def quantize_parts(self, input_qs: list[ActQuant], obs: Any, method: str) -> QuantMerge:
        """The quantizer rule: one int8 output range from calibration, each input part requantized
        into it (module doc)."""
        out_q = act_quant_from_range(*calibrated_range(obs, "output", method))
        for q in input_qs:
            if q.per_feature:
                raise ExportError(
                    f"layer '{self.name}' ({self.op}): it reads the model input directly, which "
                    "--input-quant per-feature quantizes per feature; use per-tensor"
                )
        so = float(out_q.scale)
        sc = [float(q.scale) for q in input_qs]
        zps = [int(q.zero_point) for q in input_qs]
        bits = [int(q.bits) for q in input_qs]
        if self.op == "multiply":
            terms = [(sc[0] * sc[1] / so, _max_abs(bits[0], zps[0]) * _max_abs(bits[1], zps[1]))]
        elif self.op == "concat":
            terms = [(s / so, _max_abs(b, z)) for s, b, z in zip(sc, bits, zps, strict=True)]
        else:
            c = [1.0] * len(sc)
            if self.op == "subtract":
                c[1] = -1.0
            if self.op == "average":
                c = [1.0 / len(sc)] * len(sc)
            terms = [
                (ci * s / so, _max_abs(b, z)) for ci, s, b, z in zip(c, sc, bits, zps, strict=True)
            ]
        pre = [max(0, int(vmax).bit_length() - T_BITS - 1) for _, vmax in terms]
        groups = (
            [[i] for i in range(len(terms))] if self.op == "concat" else [list(range(len(terms)))]
        )
        mult = [0] * len(terms)
        shift = [1] * len(groups)
        for g, members in enumerate(groups):
            k, m = _choose_k(
                [terms[i][0] for i in members],
                [terms[i][1] for i in members],
                [pre[i] for i in members],
            )
            shift[g] = k
            for i, mi in zip(members, m, strict=True):
                mult[i] = mi
        return QuantMerge(
            name=self.name,
            input_size=sum(self.parts),
            output_q=out_q,
            op=self.op,
            parts=list(self.parts),
            part_bits=bits,
            zero_points=zps,
            multipliers=mult,
            pre_shifts=pre,
            shifts=shift,
        )


def _max_abs(bits: int, zero_point: int) -> int:
    """max |x - z| of a bits-wide input with zero point z."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return max(hi - zero_point, zero_point - lo)


def _choose_k(ratios: list[float], vmax: list[int], pre: list[int]) -> tuple[int, list[int]]:
    """The largest k <= MAX_K (>= 1) with sum |m_i| tmax_i + 2^(k-1) < 2^31, and the m_i."""
    for k in range(MAX_K, 0, -1):
        m = [int(round(r * 2.0 ** (k + p))) for r, p in zip(ratios, pre, strict=True)]
        tmax = [-(-v // (1 << p)) + 1 for v, p in zip(vmax, pre, strict=True)]
        if sum(abs(mi) * t for mi, t in zip(m, tmax, strict=True)) + (1 << (k - 1)) < 2**31 - 1:
            return k, m
    raise ExportError("a merge's scales are too far apart to requantize in 32 bits")


@dataclass
class QuantMerge(QuantLayer):
    """Quantized merge: integer requantization of each part into one int8 output (module doc)."""

    kind: ClassVar[str] = "merge"
    template: ClassVar[str] = "merge.c.j2"
    op: str = "add"
    parts: list[int] = field(default_factory=list)
    part_bits: list[int] = field(default_factory=list)  # 8 or 16 per input part
    zero_points: list[int] = field(default_factory=list)  # per input part
    multipliers: list[int] = field(default_factory=list)  # m_i per term (Multiply: one)
    pre_shifts: list[int] = field(default_factory=list)  # pre_i per term
    shifts: list[int] = field(default_factory=list)  # k (Concatenate: one per part)

    @property
    def output_size(self) -> int:
        return sum(self.parts) if self.op == "concat" else self.parts[0]

    @property
    def macs(self) -> int:
        return 0

    def weight_bytes(self) -> int:
        return 0  # constants inside the code

    def raw_parameters(self) -> int:
        return 0

    def step(self, state, x):  # noqa: ANN001
        xs = np.split(np.asarray(x, dtype=np.int64), np.cumsum(self.parts)[:-1], axis=-1)
        zo = int(self.output_q.zero_point)
        v = [xi - z for xi, z in zip(xs, self.zero_points, strict=True)]
        if self.op == "multiply":
            v = [v[0] * v[1]]
        t = [_pre(vi, p) for vi, p in zip(v, self.pre_shifts, strict=True)]
        if self.op == "concat":
            outs = [
                _out(m * ti, k, zo)
                for m, ti, k in zip(self.multipliers, t, self.shifts, strict=True)
            ]
            return np.concatenate(outs, axis=-1)
        acc = sum(m * ti for m, ti in zip(self.multipliers, t, strict=True))
        return _out(acc, self.shifts[0], zo)


def _pre(v: np.ndarray, p: int) -> np.ndarray:
    return v if p == 0 else (v + (1 << (p - 1))) >> p


def _out(acc: np.ndarray, k: int, zo: int) -> np.ndarray:
    return fx.sat(zo + ((acc + (1 << (k - 1))) >> k), 8)


def read(layer: Any, sizes: list[int], ranks: list[int]) -> MergeLayer:
    """Keras Add/Subtract/Average/Multiply/Concatenate over inputs of the given widths."""
    cls = type(layer).__name__
    where = f"layer '{layer.name}' ({cls})"
    if cls == "Concatenate":
        axis = layer.get_config().get("axis", -1)
        if axis not in (-1, ranks[0] - 1):
            raise ExportError(f"{where}: axis={axis} is not supported; concatenate features (-1)")
        return MergeLayer(name=layer.name, input_size=sum(sizes), op="concat", parts=list(sizes))
    if len(set(sizes)) != 1:
        raise ExportError(f"{where}: inputs of widths {sizes}; rnn2c merges equal widths")
    if cls == "Multiply" and len(sizes) != 2:
        raise ExportError(f"{where}: {len(sizes)} inputs; rnn2c multiplies two")
    return MergeLayer(name=layer.name, input_size=sum(sizes), op=OPS[cls], parts=list(sizes))
