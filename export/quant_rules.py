"""The quantization rules every layer applies: calibration ranges, activation quantization,
int8 weight rows with their requantization, and the weight layout the C kernels read.

Weights are int8, symmetric, one scale per output row (per gate row). A layer multiplies its
weights with one int16 vector per step: its input (shifted left by a per-layer power of two) and,
for a recurrent layer, its hidden state (likewise), so the input and recurrent parts of a gate row
accumulate in one int32 from one bias that already holds the input zero point. Each row is
requantized once (fixedpoint.requant: a 17-bit saturation, a 14-bit multiplier and two shifts)
into the format its consumer needs (Q3.12 for gate pre-activations, the output scale for Dense
layers).

This module imports no layer: the layer modules (layers/) build on it, and quantize.py, which
runs them over a model, builds on both.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rnn2c.export.fixedpoint import INT32_MAX, requant, shared_rq_params
from rnn2c.export.ir import ActQuant, ExportError

#: calibration range methods accepted by --calibration
CALIBRATION_METHODS = ("minmax", "percentile", "mse")
PERCENTILE = 99.99
#: the saturation limit of a requantized Q3.12 table input (+-8.0)
LIMIT_Q12 = 1 << 15
#: the width act_quant_from_range gives a range that calibration found empty (a constant 0)
EMPTY_RANGE = 1e-8
#: the largest requantization multiplier (fixedpoint.rq_params: below 2**13)
MAX_MULTIPLIER = (1 << 13) - 1
#: the largest |weight| of an int8 and of an int4 row (symmetric: -127..127, -7..7)
WEIGHT_QMAX = {8: 127, 4: 7}
_WEIGHT_BITS: contextvars.ContextVar[int] = contextvars.ContextVar("weight_bits", default=8)


@contextlib.contextmanager
def weight_bits(bits: int) -> Iterator[None]:
    """Quantize the weight rows of the layers quantized inside to ``bits`` (8 or 4) bits:
    quantize.quantize_model sets it per layer (--weights, --keep-int8)."""
    token = _WEIGHT_BITS.set(int(bits))
    try:
        yield
    finally:
        _WEIGHT_BITS.reset(token)


class ScaleError(ExportError):
    """Rows whose int8 weight scale and output scale are too far apart for the requantization
    (its multiplier would be 2**13 or more): extreme weights or inputs, or an output that never
    varies. quantize.quantize_model says which, for the layer."""

    def __init__(self, where: str, multiplier: float, out_scale: float) -> None:
        super().__init__(
            f"{where}: its requantization multiplier would be {multiplier:.3g}, at most "
            f"{MAX_MULTIPLIER} fits (extreme weights or inputs, or an output that never varies)"
        )
        self.where = where
        self.multiplier = multiplier
        self.empty_output = out_scale * 255.0 <= EMPTY_RANGE * (1 + 1e-6)


@dataclass
class QuantFC:
    """int8 weight rows over a layer's int16 vector, with per-row bias and requantization.

    ``weight`` is logical [rows, cols] (row-major, unpadded, the vector's columns in order); the
    renderer lays it out in the order the C kernels read it (see pack_blocks).
    """

    weight: np.ndarray  # int8 [rows, cols]
    bias: np.ndarray  # int32 [rows]: bias, vector zero points and the shift_in rounding folded
    multiplier: np.ndarray  # int16 [rows], in [2**13, 2**14) or 0
    shift_in: np.ndarray  # uint8 [rows], 0..31
    shift_out: np.ndarray  # uint8 [rows], 1..31

    @property
    def rows(self) -> int:
        return int(self.weight.shape[0])

    @property
    def cols(self) -> int:
        return int(self.weight.shape[1])

    def acc(self, v: np.ndarray, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """bias + W v for the given rows on a batch of int16 vectors v [B, cols] (int64)."""
        w = self.weight[rows].astype(np.int64)
        return np.asarray(v, dtype=np.int64) @ w.T + self.bias[rows].astype(np.int64)

    def requant(self, acc: np.ndarray, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        return requant(acc, self.multiplier[rows], self.shift_in[rows], self.shift_out[rows])

    def matvec(self, v: np.ndarray, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Mirror of the C: requant(bias + W v) for the given rows."""
        return self.requant(self.acc(v, rows), rows)


def worst_case_acc(weight: np.ndarray, bias: np.ndarray, vmax: np.ndarray) -> int:
    """max over rows of |bias| + sum |w| * max|v|: no partial sum of the row can exceed it, in
    whatever order the kernel adds the products."""
    w = np.abs(np.asarray(weight, dtype=np.int64)) @ np.asarray(vmax, dtype=np.int64)
    return int((np.abs(np.asarray(bias, dtype=np.int64)) + w).max(initial=0))


def quantize_rows(
    w_real: np.ndarray,
    b_real: np.ndarray,
    offset: np.ndarray,
    vmax: np.ndarray,
    out_scale: float,
    limits: np.ndarray | int,
    where: str,
    kinds: np.ndarray | None = None,
) -> QuantFC:
    """Quantize real weight rows [rows, cols] acting on an int16 vector v.

    Row r computes b_real[r] + sum_c w_real[r, c] * (v[c] - offset[c]) in real units; ``offset``
    is the vector value that stands for a real 0 (the input zero point, shifted), ``vmax`` the
    largest |v[c]|. out_scale is the real value of one unit of the requantized result, limits
    the magnitude from which its consumer saturates (per row or one for all). ``kinds`` [rows]
    numbers the row kinds (:func:`row_kinds`; None: one kind), whose rows share shift_in and
    shift_out (fixedpoint.shared_rq_params); a row with all-zero weights takes the largest
    weight scale of its kind's other rows, so that it does not widen the kind's spread.
    """
    w = np.asarray(w_real, dtype=np.float64)
    rows, cols = w.shape
    if cols > 0xFFFF or rows > 0xFFFF:
        raise ExportError(
            f"{where}: {rows}x{cols} matrix is larger than the 65535 rows/cols supported"
        )
    qmax = WEIGHT_QMAX[_WEIGHT_BITS.get()]  # int4: -7..7 (weight_bits)
    peak = np.abs(w).max(axis=1, initial=0.0)
    w_scale = peak / qmax
    kinds = np.zeros(rows, dtype=np.int64) if kinds is None else np.asarray(kinds, np.int64)
    # an all-zero kind: any scale is exact; 1/127, or where the output's scale is too fine for
    # that (a constant output), the output's own scale (multiplier 1)
    dead = 1.0 / qmax if out_scale * MAX_MULTIPLIER / 2 > 1.0 / qmax else float(out_scale)
    for k in np.unique(kinds):
        sel = kinds == k
        live = peak[sel] > 0
        w_scale[sel & (peak == 0)] = w_scale[sel][live].max() if live.any() else dead
    wq = np.clip(np.round(w / w_scale[:, None]), -qmax, qmax).astype(np.int64)
    bias_q = np.round(np.asarray(b_real, dtype=np.float64) / w_scale).astype(np.int64)
    bias_q -= wq @ np.asarray(offset, dtype=np.int64)
    limits = np.broadcast_to(np.asarray(limits, dtype=np.int64), (rows,))
    fc = QuantFC(
        weight=wq.astype(np.int8),
        bias=np.zeros(rows, dtype=np.int32),
        multiplier=np.zeros(rows, dtype=np.int16),
        shift_in=np.zeros(rows, dtype=np.uint8),
        shift_out=np.ones(rows, dtype=np.uint8),
    )
    for k in np.unique(kinds):
        sel = np.flatnonzero(kinds == k)
        try:
            m, s1, s2 = shared_rq_params(w_scale[sel] / out_scale, limits[sel])
        except ValueError:
            top = float(np.max(w_scale[sel]) / out_scale)
            raise ScaleError(where, top, float(out_scale)) from None
        fc.multiplier[sel], fc.shift_in[sel], fc.shift_out[sel] = m, s1, s2
        if s1 > 0:
            bias_q[sel] += 1 << (s1 - 1)  # acc >> shift_in then rounds half up
    # Overflow guard (see rnn2c_runtime.h): no input can push an accumulator past int32. It also
    # bounds |bias_q|, so the bias fits its int32 array.
    worst = worst_case_acc(wq, bias_q, vmax)
    if worst > INT32_MAX:
        raise ExportError(
            f"{where}: worst-case int32 accumulator {worst} exceeds 2^31-1 "
            f"({cols} inputs); reduce the layer width or the bias magnitude"
        )
    products = worst_case_acc(wq, np.zeros_like(bias_q), vmax)
    if qmax == WEIGHT_QMAX[4] and products > INT4_PRODUCTS_MAX:
        raise ExportError(
            f"{where}: with int4 weights the worst-case sum of products {products} exceeds "
            f"2^27-1 (the int4 kernels sum 16 times it; {cols} inputs); keep the layer int8 "
            "with --keep-int8"
        )
    fc.bias[:] = bias_q
    return fc


def row_kinds(rows: int, units: int) -> np.ndarray:
    """The kind of each logical row of a layer's matrix (rows gate-major: kind = gate, GRU z, r,
    candidate(s); LSTM i, f, g, o; one kind for SimpleRNN and Dense), whose rows share their
    requantization shifts (the C's per-kind rnn2c_shift_t)."""
    return np.arange(int(rows), dtype=np.int64) // max(int(units), 1)


def pad4(n: int) -> int:
    """n rounded up to a multiple of 4: the kernels read 4 columns per weight word."""
    return -(-int(n) // 4) * 4


#: a block of the packed weights: (logical rows, first vector column, end vector column)
Block = tuple[list[int], int, int]


def pack_blocks(fc: QuantFC, x_cols: int, blocks: list[Block], bits: int = 8) -> np.ndarray:
    """The int8 weight array of the C, in the order the kernels read it (bits=4:
    :func:`pack_nibbles` of the same blocks).

    The vector holds x_cols input columns padded to a multiple of 4, then the remaining (state)
    columns padded likewise; padding columns get zero weights. Each block lists the rows one
    kernel pass computes together over vector columns [begin, end): for every group of 4
    columns, one 32-bit word per row, holding columns (c0, c2, c1, c3) in its bytes 0..3, so
    that SXTB16 (bytes 0, 2) pairs with the input pair (v0, v1) and SXTB16 ROR 8 (bytes 1, 3)
    with (v2, v3).
    """
    w = np.asarray(fc.weight, dtype=np.int8)
    rows, cols = w.shape
    x4, h = pad4(x_cols), cols - x_cols
    wv = np.zeros((rows, x4 + pad4(h)), dtype=np.int8)
    wv[:, :x_cols] = w[:, :x_cols]
    wv[:, x4 : x4 + h] = w[:, x_cols:]
    order = np.array([0, 2, 1, 3])
    out = []
    for row_list, begin, end in blocks:
        sub = wv[np.asarray(row_list, dtype=np.int64), begin:end]  # [R, 4G]
        if bits == 4:
            out.append(pack_nibbles(sub))
            continue
        groups = sub.reshape(len(row_list), -1, 4)[:, :, order]  # [R, G, 4]
        out.append(groups.transpose(1, 0, 2).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int8)


#: int4: the column (of the 8 a word covers) each nibble of the word holds, nibble k at bits
#: 4k..4k+3, in two's complement: on a DSP core (word << 4) & 0xF0F0F0F0 and word & 0xF0F0F0F0
#: hold 16 times the weights of columns (0, 2, 1, 3) and (4, 6, 5, 7) in their bytes, whose
#: SXTB16 and SXTB16 ROR 8 are the halfword pairs SMLAD multiplies with the vector pairs (v0,
#: v1), (v2, v3), (v4, v5), (v6, v7) (rnn2c_ref.h, rnn2c_macR_s4). Elsewhere a nibble is two
#: shifts.
NIBBLE_COLUMNS = (0, 4, 2, 6, 1, 5, 3, 7)
#: int4: the kernels may sum 16 times a row's products in int32 (see NIBBLE_COLUMNS), so
#: sum |w| max|v| stays below 2^27
INT4_PRODUCTS_MAX = INT32_MAX >> 4


def pack_nibbles(sub: np.ndarray) -> np.ndarray:
    """One kernel pass of int4 weights [R, 4G] (values -8..7) as bytes: for every two groups of
    4 columns one little-endian 32-bit word per row (NIBBLE_COLUMNS); an odd last group takes a
    word of its own whose upper columns are zero weights (the kernel reads only its 4 columns)."""
    rows, cols = sub.shape
    pairs = -(-cols // 8)
    wide = np.zeros((rows, 8 * pairs), dtype=np.int64)
    wide[:, :cols] = sub
    if wide.size and (wide.min() < -8 or wide.max() > 7):
        raise ValueError("int4 weights must lie in -8..7")
    nib = (wide.reshape(rows, pairs, 8)[:, :, list(NIBBLE_COLUMNS)] & 15).astype(np.uint32)
    words = (nib << (4 * np.arange(8, dtype=np.uint32))).sum(axis=2, dtype=np.uint32)
    return words.T.reshape(-1).astype("<u4").view(np.int8)  # pair-major, then row


def input_columns(
    input_q: ActQuant, cols: int, shift: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real scale per vector unit, offset, max |v|) of an input vector shifted left by shift;
    a negative shift (int16 parts only, zero point 0) is a rounded right shift, see
    :func:`shift_part`."""
    scale = np.broadcast_to(np.asarray(input_q.scale, dtype=np.float64), (cols,)) * 2.0**-shift
    zp = np.broadcast_to(np.asarray(input_q.zero_point, dtype=np.int64), (cols,))
    if shift < 0 and np.any(zp):
        raise ValueError("only a part with zero point 0 can be shifted right")
    zp = zp << max(shift, 0)
    vmax = np.full(cols, vector_max(input_q.bits, shift), dtype=np.int64)
    return scale, zp, vmax


def vector_max(bits: int, shift: int) -> int:
    """max |v| of a bits-wide part entering the vector with :func:`shift_part`."""
    return (1 << (bits - 1)) << shift if shift >= 0 else (1 << (bits - 1)) >> -shift


def shift_part(x: np.ndarray, shift: int) -> np.ndarray:
    """A part of the int16 vector: x << shift, or for shift < 0 (an int16 part) x shifted right
    by -shift, rounded half up (rnn2c_vec_s16)."""
    x = np.asarray(x, dtype=np.int64)
    if shift >= 0:
        return x << shift
    return (x + ((1 << -shift) >> 1)) >> -shift


def choose_range(values: np.ndarray, method: str) -> tuple[float, float]:
    """The float range to quantize a tensor to, from its calibration values."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return 0.0, 0.0
    if not np.isfinite(v).all():
        raise ExportError(
            "the float model overflows (inf or NaN) on the calibration set; an unbounded "
            "activation (relu, linear gates) diverges: check the model in Keras first"
        )
    lo, hi = float(v.min()), float(v.max())
    if method == "minmax":
        return lo, hi
    if method == "percentile":
        return float(np.percentile(v, 100 - PERCENTILE)), float(np.percentile(v, PERCENTILE))
    if method == "mse":
        return _mse_range(v, lo, hi)
    raise ExportError(f"unknown calibration method {method!r}; use one of {CALIBRATION_METHODS}")


def _mse_range(v: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Shrink [lo, hi] by a common factor to minimise the int8 quantization MSE of v."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return lo, hi
    sample = v if v.size <= 200_000 else np.random.default_rng(0).choice(v, 200_000)
    best, best_err = (lo, hi), np.inf
    for frac in np.linspace(0.3, 1.0, 36):
        q = act_quant_from_range(lo * frac, hi * frac)
        err = float(np.mean((q.dequantize(q.quantize(sample)) - sample) ** 2))
        if err < best_err:
            best, best_err = (lo * frac, hi * frac), err
    return best


def act_quant_from_range(lo: float, hi: float) -> ActQuant:
    """Asymmetric int8 quantization covering [lo, hi] and 0 (so zero padding is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < EMPTY_RANGE:
        hi = lo + EMPTY_RANGE
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return ActQuant(scale, zero_point)
