"""SimpleRNN: h = tanh(W x + U h + b) (template layers/simple_rnn.c.j2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, FloatLayer, QuantLayer, StateField, state_quant
from rnn2c.export.layers.common import check_recurrent_config, recurrent_weights, state_field
from rnn2c.export.quantize import QuantFC, quantize_fc

KERAS_CLASSES = ("SimpleRNN",)


@dataclass
class SimpleRNNLayer(FloatLayer):
    kind: ClassVar[str] = "rnn"
    units: int
    kernel: np.ndarray  # [F, U]
    recurrent_kernel: np.ndarray  # [U, U]
    bias: np.ndarray  # [U]

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.units * (self.input_size + self.units)

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {"h": np.zeros((batch, self.units))}

    def step(self, state, x, obs=None):  # noqa: ANN001
        state["h"] = np.tanh(x @ self.kernel + state["h"] @ self.recurrent_kernel + self.bias)
        return state["h"]

    def quantize(  # noqa: ANN001
        self, input_q: ActQuant, obs, method: str, state_bits: int = 8
    ) -> QuantSimpleRNN:
        one = 1.0 / fx.Q12_ONE
        where = f"layer '{self.name}' (SimpleRNN)"
        state_q = state_quant(state_bits)
        return QuantSimpleRNN(
            name=self.name,
            input_size=self.input_size,
            output_q=state_q,
            units=self.units,
            state_bits=state_bits,
            input=quantize_fc(self.kernel, self.bias, input_q, one, where + " input kernel"),
            recurrent=quantize_fc(
                self.recurrent_kernel, None, state_q, one, where + " recurrent kernel"
            ),
        )


def read(layer, input_size: int) -> SimpleRNNLayer:  # noqa: ANN001
    check_recurrent_config(layer, "SimpleRNN", {"activation": "tanh"})
    units = int(layer.get_config()["units"])
    kernel, rec, bias = recurrent_weights(layer, 1)
    return SimpleRNNLayer(
        name=layer.name,
        input_size=input_size,
        units=units,
        kernel=kernel,
        recurrent_kernel=rec,
        bias=np.zeros(units) if bias is None else bias,
    )


@dataclass
class QuantSimpleRNN(QuantLayer):
    kind: ClassVar[str] = "rnn"
    template: ClassVar[str] = "simple_rnn.c.j2"
    units: int = 0
    state_bits: int = 8
    input: QuantFC = None  # type: ignore[assignment]
    recurrent: QuantFC = None  # type: ignore[assignment]

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.units * (self.input_size + self.units)

    def state_fields(self) -> list[StateField]:
        return [state_field(self.state_bits, self.units)]

    def scratch(self) -> tuple[int, int, int]:
        return (2 * self.units, 0, 0)

    def step(self, state, x):  # noqa: ANN001
        h = fx.tanh_q15(self.input.matvec(x) + self.recurrent.matvec(state["h"]))
        state["h"] = fx.q15_to_state(h) if self.state_bits == 8 else h
        return state["h"]
