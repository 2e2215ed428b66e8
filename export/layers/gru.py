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
    sigmoid,
)

KERAS_CLASSES = ("GRU",)


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
        rec_bias = self.recurrent_bias if self.reset_after else None
        parts = self.quantized_parts(input_q, state_bits, rec_bias)
        return QuantGRU(reset_after=self.reset_after, **parts)


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
class QuantGRU(RecurrentQuant):
    kind: ClassVar[str] = "gru"
    template: ClassVar[str] = "gru.c.j2"
    gates: ClassVar[int] = 3
    reset_after: bool = True

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
        state["h"] = self.narrow(fx.rshift_round(z * h_q15 + (fx.Q15_ONE - z) * cand, 15))
        return state["h"]
