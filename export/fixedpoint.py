"""Fixed-point arithmetic shared by the quantizer and the integer reference.

Every function here mirrors one function of ``firmware_templates/rnn2c_runtime.h`` exactly, on
NumPy ``int64`` arrays (vectorised over a batch). The C output is checked against this module bit
for bit, so a change to one side must be made to the other.

Formats (documented in the README's quantization spec):

* gate pre-activations: Q3.12 in ``int16`` (real value = q / 4096, range [-8, 8));
* gate and activation outputs: Q0.15 in ``int16`` (real value = q / 32768);
* hidden states: Q0.7 in ``int8`` (real value = q / 128, zero point 0);
* LSTM cell state: ``int16`` with ``cell_frac_bits`` fractional bits, chosen from calibration;
* requantization (:func:`requant`): ``(sat17(acc >> shift_in) * multiplier + 2**(shift_out-1))
  >> shift_out``, all in 32 bits: a 17-bit saturation, a 14-bit multiplier and two shifts per row.
  The rounding of ``acc >> shift_in`` is folded into the row's bias at export.
"""

from __future__ import annotations

import math

import numpy as np

Q12_ONE = 1 << 12  # 1.0 in Q3.12
Q15_ONE = 1 << 15  # 1.0 in Q0.15
STATE_Q7_ONE = 1 << 7  # 1.0 in the Q0.7 hidden state
INT32_MAX = (1 << 31) - 1
#: requantization: the accumulator, shifted right, is saturated to 17 bits (SSAT #17) ...
RQ_T_MIN, RQ_T_MAX = -(1 << 16), (1 << 16) - 1
#: ... and multiplied by a 14-bit multiplier in [2**13, 2**14), so that |t * m| + 2**30 < 2**31
RQ_M_BITS = 14
RQ_MAX_SHIFT = 31

TANH_STEP_BITS = 7  # tanh table step 1/32 = 128 Q3.12 units
EXP_STEP_BITS = 8  # 2^-f table step 1/16 = 256 Q12 units of f
#: tanh(i / 32) rounds to 32767 from i = 171 on: |x| is clamped to 171 steps (the same result
#: as a table running on to 8.0), and the table ends one point later, so i + 1 is always in it
TANH_CLAMP = 171
TANH_POINTS = TANH_CLAMP + 2
#: exp(-x) is taken as 0 for x >= 178 / 16 (where exp(-x) * 2**15 < 0.5)
EXP_ZERO = 178
#: exp(-d) = 2**(-d * log2(e)): log2(e) in Q14, and a table of 2**(-i / 16), i = 0..16
LOG2E_Q14 = 23638
EXP_POINTS = 17
EXP_LIMIT_Q12 = EXP_ZERO << 8  # Q3.12


def _tanh_table() -> np.ndarray:
    x = np.arange(TANH_POINTS, dtype=np.float64) / 32.0
    return np.minimum(np.round(np.tanh(x) * Q15_ONE), Q15_ONE - 1).astype(np.int64)


def _exp_table() -> np.ndarray:
    f = np.arange(EXP_POINTS, dtype=np.float64) / 16.0
    return np.round(2.0**-f * Q15_ONE).astype(np.int64)


#: tanh(i / 32) in Q0.15, i = 0..172 (written into the runtime header, checked by a test)
TANH_TABLE = _tanh_table()
#: 2**(-i / 16) in Q1.15 (unsigned), i = 0..16
EXP_TABLE = _exp_table()
assert TANH_TABLE[TANH_CLAMP - 1] < Q15_ONE - 1 and (TANH_TABLE[TANH_CLAMP:] == Q15_ONE - 1).all()
assert 32768 * math.exp(-(EXP_ZERO - 1) / 16) >= 0.5 > 32768 * math.exp(-EXP_ZERO / 16)


def rq_params(real: float, limit: int) -> tuple[int, int, int]:
    """(multiplier, shift_in, shift_out) for :func:`requant` approximating ``acc * real``.

    ``limit`` is the magnitude from which the consumer saturates (2**15 for a Q3.12 table
    input, 256 for an int8 output): shift_in is the smallest right shift for which every
    accumulator whose result reaches +-limit still does after the 17-bit saturation, so the
    saturation never changes a result the consumer can tell apart, and the resolution of the
    shifted accumulator is at least one output unit in 2**16 / limit. Raises ValueError for a
    multiplier of 2**13 or more, which no sensible model produces.
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantization multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return 0, 0, 1
    need = limit / (RQ_T_MAX * real)
    s1 = max(0, math.ceil(math.log2(need)) - 1) if need > 0 else 0
    while s1 <= RQ_MAX_SHIFT:
        f = real * 2.0**s1
        mantissa, exponent = math.frexp(f)  # f = mantissa * 2**exponent, mantissa in [0.5, 1)
        m = round(mantissa * (1 << RQ_M_BITS))
        s2 = RQ_M_BITS - exponent
        if m == 1 << RQ_M_BITS:
            m //= 2
            s2 -= 1
        if s2 < 1:
            raise ValueError(f"requantization multiplier {real:g} is too large (must be < 2**13)")
        if s2 > RQ_MAX_SHIFT:
            return 0, 0, 1
        hi = int(requant(np.int64(RQ_T_MAX << s1), m, s1, s2))
        lo = int(requant(np.int64(RQ_T_MIN << s1), m, s1, s2))
        if hi >= limit and lo <= -limit:
            return int(m), int(s1), int(s2)
        s1 += 1
    return 0, 0, 1


def shared_rq_params(reals: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(multipliers, shift_in, shift_out) for a kind of rows that share their two shifts.

    Every row gets the guarantee of :func:`rq_params` (the 17-bit saturation never changes a
    result its consumer can tell apart): shift_in starts at the largest any row's own
    rq_params needs, shift_out comes from the row with the largest real multiplier, which keeps
    a multiplier in [2**13, 2**14); the others are ``round(real * 2**(shift_in + shift_out))``,
    smaller. A row that its own rq_params drops (real 0, or negligible) gets multiplier 0.
    Raises ValueError like rq_params.
    """
    reals = np.asarray(reals, dtype=np.float64).reshape(-1)
    limits = np.broadcast_to(np.asarray(limits, dtype=np.int64), reals.shape)
    mult = np.zeros(reals.shape, dtype=np.int64)
    own = [rq_params(float(r), int(lim)) for r, lim in zip(reals, limits, strict=True)]
    live = np.array([m != 0 for m, _, _ in own], dtype=bool)
    if not live.any():
        return mult, 0, 1
    s1 = max(s for (_, s, _), ok in zip(own, live, strict=True) if ok)
    top = float(reals[live].max())
    while s1 <= RQ_MAX_SHIFT:
        mantissa, exponent = math.frexp(top * 2.0**s1)
        s2 = RQ_M_BITS - exponent
        if round(mantissa * (1 << RQ_M_BITS)) == 1 << RQ_M_BITS:
            s2 -= 1
        if s2 < 1:
            raise ValueError(f"requantization multiplier {top:g} is too large (must be < 2**13)")
        if s2 > RQ_MAX_SHIFT:
            return mult, 0, 1
        mult[live] = np.round(reals[live] * 2.0 ** (s1 + s2)).astype(np.int64)
        assert mult.max() < 1 << RQ_M_BITS
        hi = requant(np.int64(RQ_T_MAX << s1), mult[live], s1, s2)
        lo = requant(np.int64(RQ_T_MIN << s1), mult[live], s1, s2)
        if (hi >= limits[live]).all() and (lo <= -limits[live]).all():
            return mult, int(s1), int(s2)
        s1 += 1
    mult[:] = 0
    return mult, 0, 1


def rshift_round(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """(x + 2**(shift-1)) >> shift, arithmetic shift (round half up); shift >= 1."""
    x = np.asarray(x, dtype=np.int64)
    if isinstance(shift, int):  # the common case, without the array round trip
        return (x + (1 << (shift - 1))) >> shift
    shift = np.asarray(shift, dtype=np.int64)
    return (x + np.left_shift(np.int64(1), shift - 1)) >> shift


def clamp(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """np.clip for integer arrays, without its per-call overhead (the integer reference calls
    it several times per layer and step); other types go through np.clip."""
    if getattr(x, "dtype", None) != np.int64:
        return np.clip(x, lo, hi)
    return np.minimum(np.maximum(x, lo), hi)


def sat17(x: np.ndarray) -> np.ndarray:
    return clamp(x, RQ_T_MIN, RQ_T_MAX)


def requant(acc: np.ndarray, multiplier, shift_in, shift_out) -> np.ndarray:  # noqa: ANN001
    """Mirror of rnn2c_rq: ``(sat17(acc >> shift_in) * multiplier + 2**(shift_out-1)) >>
    shift_out``. |t * m| < 2**30 and the rounding term is <= 2**30, so everything is int32;
    |result| < 2**30."""
    t = sat17(np.asarray(acc, dtype=np.int64) >> np.asarray(shift_in, dtype=np.int64))
    return rshift_round(t * np.asarray(multiplier, dtype=np.int64), shift_out)


def sat(x: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return clamp(x, lo, hi)


def _interp(table: np.ndarray, a: np.ndarray, step_bits: int) -> np.ndarray:
    """Linear interpolation at a >= 0 (a >> step_bits + 1 must be in the table)."""
    idx = a >> step_bits
    frac = a & ((1 << step_bits) - 1)
    lo = table[idx]
    return lo + (((table[idx + 1] - lo) * frac + (1 << (step_bits - 1))) >> step_bits)


def tanh_q15(x_q12: np.ndarray) -> np.ndarray:
    """tanh of a Q3.12 value (saturated to int16 first), result in Q0.15."""
    x = sat(np.asarray(x_q12, dtype=np.int64), 16)
    y = _interp(TANH_TABLE, np.minimum(np.abs(x), TANH_CLAMP << TANH_STEP_BITS), TANH_STEP_BITS)
    return np.where(x < 0, -y, y)


def sigmoid_q15(x_q12: np.ndarray) -> np.ndarray:
    """sigmoid(x) = (1 + tanh(x / 2)) / 2 of a Q3.12 value, result in Q0.15, range [0, 32767]."""
    x = sat(np.asarray(x_q12, dtype=np.int64), 16)
    a = np.minimum(np.abs(x), TANH_CLAMP << (TANH_STEP_BITS + 1))
    y = _interp(TANH_TABLE, a, TANH_STEP_BITS + 1)
    t = np.where(x < 0, -y, y)
    return (Q15_ONE + t) >> 1


def exp_neg_q15(d_q12: np.ndarray) -> np.ndarray:
    """exp(-d) for a Q3.12 value d >= 0, result in Q1.15 (0..32768): 2**-(d * log2(e)), the
    fraction of the exponent from a 17-point table of 2**(-i/16) (interpolated), the integer
    part a rounded right shift."""
    d = np.asarray(d_q12, dtype=np.int64)
    inside = d < EXP_LIMIT_Q12
    y = (np.where(inside, d, 0) * LOG2E_Q14 + (1 << 13)) >> 14  # d * log2(e) in Q12, < 2**17
    n = y >> 12  # exp(-d) = 2**-n * 2**-f, n <= 16
    e = _interp(EXP_TABLE, y & 4095, EXP_STEP_BITS)
    return np.where(inside, (e + ((1 << n) >> 1)) >> n, 0)


def softmax_q8(logits_q12: np.ndarray) -> np.ndarray:
    """Integer softmax over the last axis; returns int8 with scale 1/256, zero point -128."""
    logits = np.asarray(logits_q12, dtype=np.int64)
    e = exp_neg_q15(logits.max(axis=-1, keepdims=True) - logits)
    total = e.sum(axis=-1, keepdims=True)  # >= 32768: the maximum contributes exp(0)
    p = (e * 256 + total // 2) // total
    return np.minimum(p, 255) - 128


def q15_to_state(x_q15: np.ndarray) -> np.ndarray:
    """Q0.15 -> Q0.7 int8 hidden state, rounded and saturated."""
    return sat(rshift_round(x_q15, 8), 8)


def q12_from_frac(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """An int16 value with frac_bits fractional bits -> Q3.12 (rounded, saturated to int16)."""
    x = np.asarray(x, dtype=np.int64)
    if frac_bits > 12:
        return rshift_round(x, frac_bits - 12)
    return sat(x << (12 - frac_bits), 16)


# ---------------------------------------------------------------- activation variants
# Mirrors the runtime header's section "activation variants": the non-default recurrent
# activations and the Dense activations with a calibrated output range.

#: recurrent_activation -> RNN2C_GATE_*; activation -> RNN2C_CELL_*
GATE_CODES = {"sigmoid": 0, "hard_sigmoid": 1, "linear": 2}
CELL_CODES = {"tanh": 0, "relu": 1}
HARD_SIGMOID_M = 21845  # 4/3 in Q14: x / 6 in Q0.15 from Q3.12 x
PHI_STEP_BITS = 7
PHI_CLAMP = 131  # erf(i / 32 / sqrt 2) rounds to 32767 from i = 131
SOFTPLUS_STEP_BITS = 8
SOFTPLUS_ZERO = 178  # log1p(exp(-i / 16)) rounds to 0 from i = 178
SOFTPLUS_LIMIT_Q12 = SOFTPLUS_ZERO << SOFTPLUS_STEP_BITS
#: Dense activations computed on a calibrated int16 pre-activation -> RNN2C_DX_*
DENSE_X_CODES = {"leaky_relu": 1, "elu": 2, "silu": 3, "gelu": 4, "softplus": 5}


def _phi_table() -> np.ndarray:
    x = np.arange(PHI_CLAMP + 2) / 32.0 / math.sqrt(2.0)
    erf = np.array([math.erf(v) for v in x])
    return np.minimum(np.round(erf * Q15_ONE), Q15_ONE - 1).astype(np.int64)


def _softplus_table() -> np.ndarray:
    x = np.arange(SOFTPLUS_ZERO + 1) / 16.0
    return np.round(np.log1p(np.exp(-x)) * Q15_ONE).astype(np.int64)


#: erf(i / 32 / sqrt 2) in Q0.15, i = 0..132 (static inside rnn2c_erf_q15)
PHI_TABLE = _phi_table()
#: log1p(exp(-i / 16)) in Q0.15, i = 0..178 (static inside rnn2c_softplus_tail_q15)
SOFTPLUS_TABLE = _softplus_table()
assert PHI_TABLE[PHI_CLAMP - 1] < Q15_ONE - 1 and (PHI_TABLE[PHI_CLAMP:] == Q15_ONE - 1).all()
assert SOFTPLUS_TABLE[SOFTPLUS_ZERO - 1] > 0 and SOFTPLUS_TABLE[SOFTPLUS_ZERO] == 0


def hard_sigmoid_q15(x_q12: np.ndarray) -> np.ndarray:
    x = sat(np.asarray(x_q12, dtype=np.int64), 16)
    return np.clip(((x * HARD_SIGMOID_M + (1 << 13)) >> 14) + 16384, 0, Q15_ONE - 1)


def q15_clip(x_q12: np.ndarray, lo: int) -> np.ndarray:
    return np.clip(sat(np.asarray(x_q12, dtype=np.int64), 16) * 8, lo, Q15_ONE - 1)


def gate_q15(x_q12: np.ndarray, kind: str) -> np.ndarray:
    if kind == "hard_sigmoid":
        return hard_sigmoid_q15(x_q12)
    if kind == "linear":
        return q15_clip(x_q12, -(Q15_ONE - 1))
    return sigmoid_q15(x_q12)


def cell_q15(x_q12: np.ndarray, kind: str) -> np.ndarray:
    return q15_clip(x_q12, 0) if kind == "relu" else tanh_q15(x_q12)


def cell_of_c(c: np.ndarray, frac_bits: int, kind: str) -> np.ndarray:
    if kind == "relu":
        return np.clip(np.asarray(c, dtype=np.int64) << (15 - frac_bits), 0, Q15_ONE - 1)
    return tanh_q15(q12_from_frac(c, frac_bits))


def blend_x_q15(z: np.ndarray, h_q15: np.ndarray, cand: np.ndarray) -> np.ndarray:
    return sat(rshift_round(z * (h_q15 - cand), 15) + cand, 16)


def erf_q15(a_q12: np.ndarray) -> np.ndarray:
    """erf(a / sqrt 2) for Q3.12 a >= 0, Q0.15."""
    a = np.minimum(np.asarray(a_q12, dtype=np.int64), PHI_CLAMP << PHI_STEP_BITS)
    return _interp(PHI_TABLE, a, PHI_STEP_BITS)


def softplus_tail_q15(a_q12: np.ndarray) -> np.ndarray:
    a = np.asarray(a_q12, dtype=np.int64)
    inside = a < SOFTPLUS_LIMIT_Q12
    return np.where(inside, _interp(SOFTPLUS_TABLE, np.where(inside, a, 0), SOFTPLUS_STEP_BITS), 0)


def dense_act(x: np.ndarray, kind: str, frac: int, alpha_q15: int) -> np.ndarray:
    """Mirror of rnn2c_dense_act: f(x) for x with frac fractional bits (saturated to int16)."""
    xs = sat(np.asarray(x, dtype=np.int64), 16)
    x12 = xs << (12 - frac)
    a12 = np.abs(x12)
    if kind == "leaky_relu":
        return np.where(xs >= 0, xs, rshift_round(xs * alpha_q15, 15))
    if kind == "elu":
        neg = rshift_round((exp_neg_q15(a12) - Q15_ONE) * alpha_q15, 30 - frac)
        return np.where(xs >= 0, xs, neg)
    if kind == "silu":  # max(x, 0) - |x| sigmoid(-|x|), sigmoid(-a) ~ exp(-a) from a = 8
        tail = np.where(a12 < Q15_ONE, sigmoid_q15(-np.minimum(a12, Q15_ONE)), exp_neg_q15(a12))
        return np.maximum(xs, 0) - rshift_round(np.abs(xs) * tail, 15)
    if kind == "gelu":  # max(x, 0) - |x| Phi(-|x|)
        tail = np.where(a12 < PHI_CLAMP << PHI_STEP_BITS, Q15_ONE - erf_q15(a12), 0)
        return np.maximum(xs, 0) - rshift_round(np.abs(xs) * tail, 16)
    if kind == "softplus":
        return np.maximum(xs, 0) + rshift_round(softplus_tail_q15(a12), 15 - frac)
    raise ValueError(f"unknown Dense activation {kind}")
