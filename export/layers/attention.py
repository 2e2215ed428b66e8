"""Attention of a seq2seq decoder over the encoder outputs: Keras ``Attention`` (Luong: dot
product, optionally scaled, or ``score_mode="concat"``) and ``AdditiveAttention`` (Bahdanau).
Float step, quantizer rule and integer step; the C kernel is ``rnn2c_attn_s8`` in the runtime
header, rendered by export/seq2seq_render.py.

The query (the decoder's hidden state) and the values (the encoder's hidden states, one row per
input step) are int8 Q0.7 (the recurrent layers' state format), so nothing is calibrated:

1. scores, int32 per input step s:
   dot       raw_s = sum_k q_k v_sk                         (Q0.14 units)
   concat    raw_s = sum_k tanh(a (q_k + v_sk))              (Q0.15 units; tanh from the table,
             its Q3.12 argument (q + v) << 5, or requantized by a = |scale| when scaled)
   additive  raw_s = sum_k w_k tanh(q_k + v_sk)              (w int8, one scale)
   Any negative real factor (a scale or concat weight) becomes ``sign`` = -1: raw_s is negated.
2. softmax over s < length: d_s = requant(max raw - raw_s) in Q3.12 (>= 0, one multiplier and
   two shifts for the real factor of step 1), e_s = min(exp(-d_s), 32767) in Q0.15 from the
   runtime's table (capped so that each fits the 16-bit multiplies of the ARM DSP path), total
   = sum e_s (>= 32767: the maximum gives exp(0)).
3. context, int8 Q0.7 like the values: c_k = round(sum_s e_s v_sk / total), half away from zero
   (the magnitude in uint32: |sum| < 2^31 for up to MAX_STEPS steps).

Step 1 never overflows int32: |q|, |v| <= 128, |tanh| <= 32767 and the unit limits below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ExportError
from rnn2c.export.quant_rules import LIMIT_Q12

KERAS_CLASSES = ("Attention", "AdditiveAttention")
MODES = ("dot", "concat", "additive")
#: the C enum rnn2c_attn_mode_t
MODE_CODES = {"dot": 0, "concat": 1, "additive": 2}
#: the most input steps the context sums take: 32768 * 128 * MAX_STEPS < 2^31
MAX_STEPS = 511
#: the most units per mode: the largest score difference (2 * units * the largest term) and its
#: rounding term stay below 2^31
MAX_UNITS = {"dot": 32767, "concat": 16383, "additive": 128}
#: Q3.12 limit the score differences saturate from (exp(-8) < 2^-11: far below one Q1.15 unit
#: after the normalisation of any real distribution)
LIMIT_D = 1 << 15


def _softmax_masked(scores: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    t = scores.shape[-1]
    valid = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    s = np.where(valid, scores, -np.inf)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    e = np.where(valid, e, 0.0)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class AttentionLayer:
    """Float: Keras' scores, a softmax over the valid input steps, the weighted sum of values."""

    kind: ClassVar[str] = "attention"
    name: str
    mode: str  # "dot", "concat" (Attention) or "additive" (AdditiveAttention)
    units: int
    scale: float = 1.0  # Attention(use_scale=True): the learned scalar
    concat_weight: float = 1.0  # Attention(score_mode="concat"): its learned scalar
    weights: np.ndarray | None = None  # AdditiveAttention(use_scale=True): per unit

    @property
    def input_size(self) -> int:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def scores(self, q: np.ndarray, v: np.ndarray) -> np.ndarray:
        """q [B, U], v [B, T, U] -> scores [B, T]."""
        if self.mode == "dot":
            return np.einsum("bk,btk->bt", q, v) * self.scale
        x = q[:, None, :] + v
        if self.mode == "concat":
            return self.concat_weight * np.tanh(self.scale * x).sum(axis=-1)
        w = np.ones(self.units) if self.weights is None else self.weights
        return (np.tanh(x) * w).sum(axis=-1)

    def context(self, q: np.ndarray, v: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        a = _softmax_masked(self.scores(q, v), lengths)
        return np.einsum("bt,btk->bk", a, v)

    def quantize(self) -> QuantAttention:
        """The quantizer rule: the score's real factor as a multiplier and shifts (no
        calibration: query and values are Q0.7)."""
        cls = "AdditiveAttention" if self.mode == "additive" else "Attention"
        where = f"layer '{self.name}' ({cls})"
        if self.units > MAX_UNITS[self.mode]:
            raise ExportError(
                f"{where}: {self.units} units; the integer scores take at most "
                f"{MAX_UNITS[self.mode]} in this mode: use fewer units"
            )
        sign = 1
        t_rq = (0, 0, 1)  # (q + v) << 5 is the exact Q3.12 argument of tanh
        w = np.zeros(0, dtype=np.int8)
        if self.mode == "dot":
            sign = -1 if self.scale < 0 else 1
            factor = abs(self.scale) * 2.0**12 / 2.0**14
        elif self.mode == "concat":
            sign = (-1 if self.scale < 0 else 1) * (-1 if self.concat_weight < 0 else 1)
            factor = abs(self.concat_weight) * 2.0**12 / 2.0**15
            if abs(self.scale) != 1.0:
                t_rq = _rq(abs(self.scale) * 2.0**12 / 2.0**7, LIMIT_Q12, where)
        else:
            real = np.ones(self.units) if self.weights is None else np.asarray(self.weights)
            peak = float(np.abs(real).max(initial=0.0))
            w_scale = peak / 127.0 if peak > 0 else 1.0
            w = np.clip(np.round(real / w_scale), -127, 127).astype(np.int8)
            factor = w_scale * 2.0**12 / 2.0**15
        d_rq = _rq(factor, LIMIT_D, where)
        return QuantAttention(
            name=self.name,
            mode=self.mode,
            units=self.units,
            sign=sign,
            t_rq=tuple(int(v) for v in t_rq),  # type: ignore[arg-type]
            d_rq=tuple(int(v) for v in d_rq),  # type: ignore[arg-type]
            weight=w,
        )


def _rq(real: float, limit: int, where: str) -> tuple[int, int, int]:
    try:
        return fx.rq_params(real, limit)
    except ValueError as e:
        raise ExportError(f"{where}: score requantization: {e}") from None


@dataclass
class QuantAttention:
    """Integer: the C's rnn2c_attn_t (see the module docstring)."""

    kind: ClassVar[str] = "attention"
    name: str
    mode: str
    units: int
    sign: int  # +1, or -1: the real factor of the scores is negative
    t_rq: tuple[int, int, int]  # concat with a scale: (q + v) -> Q3.12 (multiplier 0: << 5)
    d_rq: tuple[int, int, int]  # the score difference -> Q3.12
    weight: np.ndarray  # additive: int8 per unit (else empty)

    def raw_scores(self, q: np.ndarray, v: np.ndarray) -> np.ndarray:
        """q [B, U], v [B, T, U] (int) -> int32 raw scores [B, T], sign applied."""
        q = np.asarray(q, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        if self.mode == "dot":
            raw = np.einsum("bk,btk->bt", q, v)
        else:
            x = q[:, None, :] + v  # Q0.7, |x| <= 256
            m, s1, s2 = self.t_rq
            arg = x << 5 if m == 0 else fx.requant(x + _round_in(s1), m, s1, s2)
            t = fx.tanh_q15(arg)
            if self.mode == "additive":
                t = t * self.weight.astype(np.int64)
            raw = t.sum(axis=-1)
        return raw * self.sign

    def weights_q15(self, q: np.ndarray, v: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The unnormalised weights e_s (Q1.15, 0 past each length) [B, T]."""
        raw = self.raw_scores(q, v)
        valid = np.arange(raw.shape[1])[None, :] < np.asarray(lengths)[:, None]
        top = np.where(valid, raw, np.iinfo(np.int64).min).max(axis=1, keepdims=True)
        m, s1, s2 = self.d_rq
        d = fx.requant(top - raw + _round_in(s1), m, s1, s2)
        e = np.minimum(fx.exp_neg_q15(np.where(valid, d, 0)), 32767)  # fits 16-bit multiplies
        return np.where(valid, e, 0)

    def context(self, q: np.ndarray, v: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Mirror of rnn2c_attn_s8: int8 context [B, U] (int64)."""
        e = self.weights_q15(q, v, lengths)
        total = e.sum(axis=1, keepdims=True)
        num = np.einsum("bt,btk->bk", e, np.asarray(v, dtype=np.int64))
        mag = (np.abs(num) + total // 2) // total
        return np.where(num < 0, -mag, mag)

    def weight_bytes(self) -> int:
        return int(self.weight.size) + 12

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight}

    def scalars(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "units": self.units,
            "sign": self.sign,
            "t_rq": list(self.t_rq),
            "d_rq": list(self.d_rq),
        }

    @classmethod
    def from_parts(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> QuantAttention:
        return cls(
            name=str(meta["name"]),
            mode=str(meta["mode"]),
            units=int(meta["units"]),
            sign=int(meta["sign"]),
            t_rq=tuple(int(v) for v in meta["t_rq"]),  # type: ignore[arg-type]
            d_rq=tuple(int(v) for v in meta["d_rq"]),  # type: ignore[arg-type]
            weight=np.asarray(arrays["weight"], dtype=np.int8),
        )


def _round_in(shift_in: int) -> int:
    """The rounding term of acc >> shift_in (the C adds it before rnn2c_rqs)."""
    return (1 << (shift_in - 1)) if shift_in > 0 else 0


def read(layer: Any, units: int) -> AttentionLayer:
    """A Keras Attention or AdditiveAttention layer over `units`-wide queries and values."""
    cls = type(layer).__name__
    cfg = layer.get_config()
    where = f"layer '{layer.name}' ({cls})"
    if cfg.get("use_causal_mask"):
        raise ExportError(
            f"{where}: use_causal_mask is not supported; the decoder attends to every encoder step"
        )
    if cls == "AdditiveAttention":
        w = None
        if cfg.get("use_scale", True):
            w = np.asarray(layer.scale, dtype=np.float64).reshape(-1)
        return AttentionLayer(layer.name, "additive", units, weights=w)
    mode = cfg.get("score_mode", "dot")
    if mode not in ("dot", "concat"):
        raise ExportError(f"{where}: score_mode {mode!r} is not supported; use 'dot' or 'concat'")
    scale = float(np.asarray(layer.scale)) if cfg.get("use_scale") else 1.0
    weight = float(np.asarray(layer.concat_score_weight)) if mode == "concat" else 1.0
    out = AttentionLayer(layer.name, mode, units, scale=scale, concat_weight=weight)
    for v in (out.scale, out.concat_weight):
        if not np.isfinite(v):
            raise ExportError(f"{where}: its scale is NaN or inf; retrain the model")
    return out
