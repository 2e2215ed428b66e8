"""Fixed-point arithmetic shared by the quantizer and the integer reference.

Every function here mirrors one function of ``firmware_templates/rnn2c_runtime.h`` exactly, on
NumPy ``int64`` arrays (vectorised over a batch). The C output is checked against this module bit
for bit, so a change to one side must be made to the other.

Formats (documented in the README's quantization spec):

* gate pre-activations: Q3.12 in ``int16`` (real value = q / 4096, range [-8, 8));
* gate and activation outputs: Q0.15 in ``int16`` (real value = q / 32768);
* hidden states: Q0.7 in ``int8`` (real value = q / 128, zero point 0);
* LSTM cell state: ``int16`` with ``cell_frac_bits`` fractional bits, chosen from calibration;
* requantization: ``(acc * multiplier + 2**(shift-1)) >> shift`` in 64-bit, with a Q31
  multiplier in [2**30, 2**31) and 1 <= shift <= 62, round half up.
"""

from __future__ import annotations

import math

import numpy as np

Q12_ONE = 1 << 12  # 1.0 in Q3.12
Q15_ONE = 1 << 15  # 1.0 in Q0.15
STATE_Q7_ONE = 1 << 7  # 1.0 in the Q0.7 hidden state
INT32_MAX = (1 << 31) - 1
# Requantized values are clamped to +-2**24 (+-4096.0 in Q3.12) so that the sum of two of them
# never overflows int32; anything that large saturates every activation anyway.
REQUANT_LIMIT = 1 << 24

TABLE_SIZE = 257  # 256 intervals + the end point
TANH_STEP_BITS = 7  # tanh table step 1/32 = 128 Q3.12 units
EXP_STEP_BITS = 8  # exp(-x) table step 1/16 = 256 Q3.12 units
EXP_LIMIT_Q12 = 16 << 12  # exp(-x) is taken as 0 for x >= 16


def _tanh_table() -> np.ndarray:
    x = np.arange(TABLE_SIZE, dtype=np.float64) / 32.0
    return np.minimum(np.round(np.tanh(x) * Q15_ONE), Q15_ONE - 1).astype(np.int64)


def _exp_table() -> np.ndarray:
    x = np.arange(TABLE_SIZE, dtype=np.float64) / 16.0
    return np.round(np.exp(-x) * Q15_ONE).astype(np.int64)


#: tanh(i / 32) in Q0.15, i = 0..256 (emitted into the runtime header, checked by a test)
TANH_TABLE = _tanh_table()
#: exp(-i / 16) in Q1.15 (unsigned), i = 0..256
EXP_TABLE = _exp_table()


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Return (multiplier, shift) with real ~= multiplier * 2**-shift.

    multiplier is a Q31 value in [2**30, 2**31) and 1 <= shift <= 62; a multiplier too small to
    matter becomes (0, 1). Raises ValueError for a multiplier >= 2**30, which no sensible model
    produces.
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantization multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return 0, 1
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2**exponent, mantissa in [0.5, 1)
    q = round(mantissa * (1 << 31))
    if q == 1 << 31:
        q //= 2
        exponent += 1
    shift = 31 - exponent
    if shift < 1:
        raise ValueError(f"requantization multiplier {real:g} is too large (must be < 2**30)")
    if shift > 62:
        return 0, 1
    return int(q), int(shift)


def rshift_round(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """(x + 2**(shift-1)) >> shift, arithmetic shift (round half up); shift >= 1."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    return (x + np.left_shift(np.int64(1), shift - 1)) >> shift


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Mirror of rnn2c_requantize: 64-bit product, rounding shift, clamp to +-REQUANT_LIMIT.

    acc is [..., rows]; multiplier and shift are per row. |acc| < 2**31 and multiplier < 2**31,
    so the product and the rounding term stay below 2**63.
    """
    prod = np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    return np.clip(rshift_round(prod, shift), -REQUANT_LIMIT, REQUANT_LIMIT)


def sat(x: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(x, lo, hi)


def _interp(table: np.ndarray, a: np.ndarray, step_bits: int) -> np.ndarray:
    idx = a >> step_bits
    frac = a & ((1 << step_bits) - 1)
    nxt = np.minimum(idx + 1, TABLE_SIZE - 1)
    return table[idx] + (((table[nxt] - table[idx]) * frac + (1 << (step_bits - 1))) >> step_bits)


def tanh_q15(x_q12: np.ndarray) -> np.ndarray:
    """tanh of a Q3.12 value (saturated to int16 first), result in Q0.15."""
    x = sat(np.asarray(x_q12, dtype=np.int64), 16)
    y = _interp(TANH_TABLE, np.abs(x), TANH_STEP_BITS)
    return np.where(x < 0, -y, y)


def sigmoid_q15(x_q12: np.ndarray) -> np.ndarray:
    """sigmoid(x) = (1 + tanh(x / 2)) / 2 of a Q3.12 value, result in Q0.15, range [0, 32767]."""
    x = sat(np.asarray(x_q12, dtype=np.int64), 16)
    y = _interp(TANH_TABLE, np.abs(x), TANH_STEP_BITS + 1)
    t = np.where(x < 0, -y, y)
    return (Q15_ONE + t) >> 1


def exp_neg_q15(d_q12: np.ndarray) -> np.ndarray:
    """exp(-d) for a Q3.12 value d >= 0, result in Q1.15 (0..32768)."""
    d = np.asarray(d_q12, dtype=np.int64)
    inside = d < EXP_LIMIT_Q12
    y = _interp(EXP_TABLE, np.where(inside, d, 0), EXP_STEP_BITS)
    return np.where(inside, y, 0)


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
