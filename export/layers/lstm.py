"""LSTM: Keras reader, float step, quantizer rule, integer step (template layers/lstm.c.j2).

Keras gate order is i, f, g (cell candidate), o. The cell state is int16 with a power-of-two
scale chosen from the calibration range of c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, StateField
from rnn2c.export.layers.common import (
    RecurrentFloat,
    RecurrentQuant,
    check_recurrent_config,
    recurrent_weights,
    relu_state_shift,
    unit_blocks,
)
from rnn2c.export.quant_rules import Block, calibrated_range

KERAS_CLASSES = ("LSTM",)


@dataclass
class LSTMLayer(RecurrentFloat):
    kind: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4
    label: ClassVar[str] = "LSTM"

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {"h": np.zeros((batch, self.units)), "c": np.zeros((batch, self.units))}

    def step(self, state, x, obs=None):  # noqa: ANN001
        u = self.units
        g = x @ self.kernel + state["h"] @ self.recurrent_kernel + self.bias
        i, f = self.gate(g[:, :u]), self.gate(g[:, u : 2 * u])
        cand, o = self.cell(g[:, 2 * u : 3 * u]), self.gate(g[:, 3 * u :])
        state["c"] = f * state["c"] + i * cand
        state["h"] = o * self.cell(state["c"])
        if obs is not None:
            obs.observe("cell", state["c"])
        return state["h"]

    def state_shift(self, obs: Any) -> int:
        """relu: k covers the cell state too. The kernel computes relu(c) / 2^k clamped to
        [0, 1) and h = o * that, so with sigmoid gates (o < 1) relu(c) exceeds h: a k from h
        alone would clamp relu(c)."""
        if self.cell_act != "relu":
            return 0
        both = [np.ravel(obs.get("state")), np.ravel(obs.get("cell"))]
        return relu_state_shift(np.concatenate(both))

    def quantize(  # noqa: ANN001
        self,
        input_q: ActQuant,
        obs,
        method: str,
        state_bits: int = 8,
        state_shift: int | None = None,
    ) -> QuantLSTM:
        """state_shift: impose the relu state shift k (Bidirectional: both directions share
        one) instead of the calibrated one."""
        # relu: the candidate rows give g / 2^k, so c / 2^k, h / 2^k
        k = self.state_shift(obs) if state_shift is None else state_shift
        lo, hi = calibrated_range(obs, "cell", method)
        peak = max(abs(lo), abs(hi), 1e-6) * 2.0**-k
        # integer bits so that the int16 cell covers +-peak; at most 15 (Q15.0)
        int_bits = min(15, max(0, math.ceil(math.log2(peak * 1.0001))))
        u = self.units
        cand = np.where((np.arange(4 * u) >= 2 * u) & (np.arange(4 * u) < 3 * u), 2.0**-k, 1.0)
        wx, wh = self.kernel.T * cand[:, None], self.recurrent_kernel.T * cand[:, None]
        fused = np.ones(4 * u, dtype=bool)
        parts = self.quantized_parts(
            input_q, state_bits, wx, wh, self.bias * cand, fused, state_shift=k
        )
        return QuantLSTM(cell_frac_bits=15 - int_bits, **parts)


def read(layer, input_size: int) -> LSTMLayer:  # noqa: ANN001
    acts = check_recurrent_config(layer, "LSTM", ("activation", "recurrent_activation"))
    units = int(layer.get_config()["units"])
    kernel, rec, bias = recurrent_weights(layer, 4)
    return LSTMLayer(
        name=layer.name,
        input_size=input_size,
        units=units,
        kernel=kernel,
        recurrent_kernel=rec,
        bias=np.zeros(4 * units) if bias is None else bias,
        **acts,
    )


@dataclass
class QuantLSTM(RecurrentQuant):
    kind: ClassVar[str] = "lstm"
    template: ClassVar[str] = "lstm.c.j2"
    gates: ClassVar[int] = 4
    cell_frac_bits: int = 12

    def state_fields(self) -> list[StateField]:
        cell = StateField(
            "c", "int16_t", self.units, f"cell state, {self.cell_frac_bits} fraction bits"
        )
        return [cell, *super().state_fields()]

    def blocks(self) -> list[Block]:
        u = self.units  # per unit: i, f, g, o over the whole vector
        return unit_blocks(
            [[j, u + j, 2 * u + j, 3 * u + j] for j in range(u)], 0, self.x_cols + self.h_cols, 1
        )

    def step(self, state, x):  # noqa: ANN001
        u, h, c = self.units, state["h"], state["c"]
        g = self.fc.matvec(self.vector(x, h))
        ga, ca = self.gate_act, self.cell_act  # sigmoid, tanh: rnn2c_lstm_*; else rnn2c_lstm_x_*
        i = fx.gate_q15(g[:, :u], ga)
        f = fx.gate_q15(g[:, u : 2 * u], ga)
        cand = fx.cell_q15(g[:, 2 * u : 3 * u], ca)
        o = fx.gate_q15(g[:, 3 * u :], ga)
        cell = fx.sat(
            fx.rshift_round(f * c, 15) + fx.rshift_round(i * cand, 30 - self.cell_frac_bits), 16
        )
        tanh_c = fx.cell_of_c(cell, self.cell_frac_bits, ca)
        state["c"] = cell
        shift = 23 if self.state_bits == 8 else 15  # Q0.30 -> Q0.7 or Q0.15 in one rounding
        state["h"] = fx.sat(fx.rshift_round(o * tanh_c, shift), self.state_bits)
        return state["h"]
