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
from rnn2c.export.ir import ActQuant, FloatLayer, QuantLayer, StateField, state_quant
from rnn2c.export.layers.common import (
    check_recurrent_config,
    recurrent_weights,
    sigmoid,
    state_field,
)
from rnn2c.export.quantize import QuantFC, quantize_fc

KERAS_CLASSES = ("GRU",)


@dataclass
class GRULayer(FloatLayer):
    kind: ClassVar[str] = "gru"
    units: int
    kernel: np.ndarray  # [F, 3U]
    recurrent_kernel: np.ndarray  # [U, 3U]
    bias: np.ndarray  # [3U] input-side bias (all of it when reset_after=False)
    recurrent_bias: np.ndarray  # [3U] (zeros when reset_after=False)
    reset_after: bool

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return 3 * self.units * (self.input_size + self.units)

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {"h": np.zeros((batch, self.units))}

    def step(self, state, x, obs=None):  # noqa: ANN001
        u, h = self.units, state["h"]
        gx = x @ self.kernel + self.bias
        gh = h @ self.recurrent_kernel + self.recurrent_bias
        z = sigmoid(gx[:, :u] + gh[:, :u])
        r = sigmoid(gx[:, u : 2 * u] + gh[:, u : 2 * u])
        if self.reset_after:
            rec = r * gh[:, 2 * u :]
        else:
            rec = (r * h) @ self.recurrent_kernel[:, 2 * u :]
        cand = np.tanh(gx[:, 2 * u :] + rec)
        state["h"] = z * h + (1.0 - z) * cand
        return state["h"]

    def quantize(self, input_q: ActQuant, obs, method: str, state_bits: int = 8) -> QuantGRU:  # noqa: ANN001
        one = 1.0 / fx.Q12_ONE
        where = f"layer '{self.name}' (GRU)"
        state_q = state_quant(state_bits)
        return QuantGRU(
            name=self.name,
            input_size=self.input_size,
            output_q=state_q,
            units=self.units,
            reset_after=self.reset_after,
            state_bits=state_bits,
            input=quantize_fc(self.kernel, self.bias, input_q, one, where + " input kernel"),
            recurrent=quantize_fc(
                self.recurrent_kernel,
                self.recurrent_bias if self.reset_after else None,
                state_q,
                one,
                where + " recurrent kernel",
            ),
        )


def read(layer, input_size: int) -> GRULayer:  # noqa: ANN001
    check_recurrent_config(layer, "GRU", {"activation": "tanh", "recurrent_activation": "sigmoid"})
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
    )


@dataclass
class QuantGRU(QuantLayer):
    kind: ClassVar[str] = "gru"
    template: ClassVar[str] = "gru.c.j2"
    units: int = 0
    reset_after: bool = True
    state_bits: int = 8
    input: QuantFC = None  # type: ignore[assignment]
    recurrent: QuantFC = None  # type: ignore[assignment]

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return 3 * self.units * (self.input_size + self.units)

    def state_fields(self) -> list[StateField]:
        return [state_field(self.state_bits, self.units)]

    def scratch(self) -> tuple[int, int, int]:
        rh = 0 if self.reset_after else self.units  # r * h for reset_after=False
        return (
            6 * self.units,
            rh if self.state_bits == 8 else 0,
            rh if self.state_bits == 16 else 0,
        )

    def step(self, state, x):  # noqa: ANN001
        u, h = self.units, state["h"]
        gx = self.input.matvec(x)
        gh = self.recurrent.matvec(h, 0, (3 if self.reset_after else 2) * u)
        z = fx.sigmoid_q15(gx[:, :u] + gh[:, :u])
        r = fx.sigmoid_q15(gx[:, u : 2 * u] + gh[:, u : 2 * u])
        if self.reset_after:
            rec = fx.rshift_round(r * gh[:, 2 * u :], 15)
        else:
            rh = fx.sat(fx.rshift_round(r * h, 15), self.state_bits)
            rec = self.recurrent.matvec(rh, 2 * u, 3 * u)
        cand = fx.tanh_q15(gx[:, 2 * u :] + rec)
        h_q15 = h * 256 if self.state_bits == 8 else h
        new = fx.rshift_round(z * h_q15 + (fx.Q15_ONE - z) * cand, 15)
        state["h"] = fx.q15_to_state(new) if self.state_bits == 8 else fx.sat(new, 16)
        return state["h"]
