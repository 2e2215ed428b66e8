"""GRU: Keras reader, float step, quantizer rule, integer step (template layers/gru.c.j2).

Keras gate order in the kernels is z (update), r (reset), candidate. With reset_after=True (the
Keras default) the recurrent candidate is r * (W_h h + b_h); with reset_after=False it is
W_h (r * h).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant
from rnn2c.export.layers.common import (
    RecurrentFloat,
    RecurrentQuant,
    check_recurrent_config,
    recurrent_weights,
    unit_blocks,
)
from rnn2c.export.quant_rules import LIMIT_Q12, Block

KERAS_CLASSES = ("GRU",)
#: reset_after=True: the candidate's recurrent part is requantized to Q3.12 and saturated to
#: 17 bits (+-16.0), so that r (Q0.15) times it fits int32; the input part saturates from +-32.0
CAND_H_LIMIT = 1 << 16
CAND_X_LIMIT = 1 << 17


@dataclass
class GRULayer(RecurrentFloat):
    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    label: ClassVar[str] = "GRU"
    recurrent_bias: np.ndarray  # [3U] (zeros when reset_after=False: all bias is input-side)
    reset_after: bool

    def step(self, state, x, obs=None):  # noqa: ANN001
        u, h = self.units, state["h"]
        gx = x @ self.kernel + self.bias
        gh = h @ self.recurrent_kernel + self.recurrent_bias
        z = self.gate(gx[:, :u] + gh[:, :u])
        r = self.gate(gx[:, u : 2 * u] + gh[:, u : 2 * u])
        if self.reset_after:
            rec = r * gh[:, 2 * u :]
        else:
            rec = (r * h) @ self.recurrent_kernel[:, 2 * u :]
        cand = self.cell(gx[:, 2 * u :] + rec)
        state["h"] = z * h + (1.0 - z) * cand
        return state["h"]

    def quantize(  # noqa: ANN001
        self,
        input_q: ActQuant,
        obs,
        method: str,
        state_bits: int = 8,
        state_shift: int | None = None,
    ) -> QuantGRU:
        """state_shift: impose the relu state shift k (Bidirectional: both directions share
        one) instead of the calibrated one."""
        u = self.units
        # relu: the candidate rows give the state / 2^k
        k = self.state_shift(obs) if state_shift is None else state_shift
        cand = np.where(np.arange(3 * u) >= 2 * u, 2.0**-k, 1.0)
        wx, wh = self.kernel.T * cand[:, None], self.recurrent_kernel.T * cand[:, None]
        b = (self.bias + self.recurrent_bias) * cand
        b_in, b_rec = self.bias * cand, self.recurrent_bias * cand
        if not self.reset_after:  # rows z | r | candidate (on r * h), every row fused
            fused = np.ones(3 * u, dtype=bool)
            parts = self.quantized_parts(input_q, state_bits, wx, wh, b, fused, state_shift=k)
            return QuantGRU(reset_after=False, **parts)
        # rows z | r | candidate input part | candidate recurrent part (apart: r scales it)
        zeros_x, zeros_h = np.zeros_like(wx[2 * u :]), np.zeros_like(wh[2 * u :])
        wx = np.concatenate([wx, zeros_x])
        wh = np.concatenate([wh[: 2 * u], zeros_h, wh[2 * u :]])
        b = np.concatenate([b[: 2 * u], b_in[2 * u :], b_rec[2 * u :]])
        fused = np.arange(4 * u) < 2 * u
        limits = np.repeat([LIMIT_Q12, LIMIT_Q12, CAND_X_LIMIT, CAND_H_LIMIT], u)
        parts = self.quantized_parts(input_q, state_bits, wx, wh, b, fused, limits, k)
        return QuantGRU(reset_after=True, **parts)


def read(layer, input_size: int) -> GRULayer:  # noqa: ANN001
    acts = check_recurrent_config(layer, "GRU", ("activation", "recurrent_activation"))
    cfg = layer.get_config()
    units = int(cfg["units"])
    kernel, rec, bias = recurrent_weights(layer, 3)
    reset_after = bool(cfg.get("reset_after", True))
    b_in, b_rec = np.zeros(3 * units), np.zeros(3 * units)
    if bias is not None:
        if reset_after:
            b_in, b_rec = bias[0], bias[1]
        else:
            b_in = bias
    return GRULayer(
        name=layer.name,
        input_size=input_size,
        units=units,
        kernel=kernel,
        recurrent_kernel=rec,
        bias=b_in,
        recurrent_bias=b_rec,
        reset_after=reset_after,
        **acts,
    )


@dataclass
class QuantGRU(RecurrentQuant):
    """Rows of fc: z | r | candidate, each U long; with reset_after=True a fourth block holds
    the candidate's recurrent part (zero on the input side; the third block is zero on the
    state side)."""

    kind: ClassVar[str] = "gru"
    template: ClassVar[str] = "gru.c.j2"
    gates: ClassVar[int] = 3
    reset_after: bool = True

    def scratch(self) -> tuple[int, int, int]:
        # reset_after=False keeps z and r * h of every unit until the candidate pass (the
        # variant kernels: 3U int32 words, the states, the results, z and r)
        if self.acts is not None:
            return (0 if self.reset_after else 3 * self.units, 0, self.x_cols + self.h_cols)
        extra = 0 if self.reset_after else 2 * self.units
        return (0, 0, self.x_cols + self.h_cols + extra)

    def blocks(self) -> list[Block]:
        u, x4, end = self.units, self.x_cols, self.x_cols + self.h_cols
        if self.reset_after:  # per unit: z, r, candidate over x; then z, r, candidate over h
            out: list[Block] = []
            for j in range(u):
                out.append(([j, u + j, 2 * u + j], 0, x4))
                out.append(([j, u + j, 3 * u + j], x4, end))
            return out
        return unit_blocks([[j, u + j] for j in range(u)], 0, end, 2) + unit_blocks(
            [[2 * u + j] for j in range(u)], 0, end, 4
        )

    def c_rows(self) -> list[int]:
        u = self.units
        if self.reset_after:
            return [r for j in range(u) for r in (j, u + j, 2 * u + j, 3 * u + j)]
        return [r for j in range(u) for r in (j, u + j)] + list(range(2 * u, 3 * u))

    def step(self, state, x):  # noqa: ANN001
        u, h, fc = self.units, state["h"], self.fc
        v = self.vector(x, h)
        if self.acts is not None:
            state["h"] = self.narrow(self._step_variant(x, h, v))
            return state["h"]
        if self.reset_after:
            pre = fc.matvec(v)
            z = fx.sigmoid_q15(pre[:, :u])
            r = fx.sigmoid_q15(pre[:, u : 2 * u])
            rec = fx.rshift_round(r * fx.sat17(pre[:, 3 * u :]), 15)
            cand = fx.tanh_q15(pre[:, 2 * u : 3 * u] + rec)
        else:
            pre = fc.matvec(v, slice(0, 2 * u))
            z = fx.sigmoid_q15(pre[:, :u])
            r = fx.sigmoid_q15(pre[:, u:])
            rh = fx.sat(fx.rshift_round(r * h, 15), self.state_bits)
            cand = fx.tanh_q15(fc.matvec(self.vector(x, rh), slice(2 * u, 3 * u)))
        h_q15 = h * 256 if self.state_bits == 8 else h
        state["h"] = self.narrow(fx.rshift_round(z * h_q15 + (fx.Q15_ONE - z) * cand, 15))
        return state["h"]

    def _step_variant(self, x, h, v):  # noqa: ANN001, ANN202
        """rnn2c_gru_x_*: other activations, the blend z * (h - cand) + cand (Q0.15)."""
        u, fc, g = self.units, self.fc, self.gate_act
        if self.reset_after:
            pre = fc.matvec(v)
            z = fx.gate_q15(pre[:, :u], g)
            r = fx.gate_q15(pre[:, u : 2 * u], g)
            rec = fx.rshift_round(r * fx.sat17(pre[:, 3 * u :]), 15)
            cand = fx.cell_q15(pre[:, 2 * u : 3 * u] + rec, self.cell_act)
        else:
            pre = fc.matvec(v, slice(0, 2 * u))
            z = fx.gate_q15(pre[:, :u], g)
            r = fx.gate_q15(pre[:, u:], g)
            rh = fx.sat(fx.rshift_round(r * h, 15), self.state_bits)
            cand = fx.cell_q15(fc.matvec(self.vector(x, rh), slice(2 * u, 3 * u)), self.cell_act)
        h_q15 = h * 256 if self.state_bits == 8 else h
        return fx.blend_x_q15(z, h_q15, cand)
