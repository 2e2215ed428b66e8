"""SimpleRNN: h = tanh(W x + U h + b) (template layers/simple_rnn.c.j2)."""

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
from rnn2c.export.quant_rules import Block

KERAS_CLASSES = ("SimpleRNN",)


@dataclass
class SimpleRNNLayer(RecurrentFloat):
    kind: ClassVar[str] = "rnn"
    label: ClassVar[str] = "SimpleRNN"

    def step(self, state, x, obs=None):  # noqa: ANN001
        state["h"] = self.cell(x @ self.kernel + state["h"] @ self.recurrent_kernel + self.bias)
        return state["h"]

    def quantize(  # noqa: ANN001
        self,
        input_q: ActQuant,
        obs,
        method: str,
        state_bits: int = 8,
        state_shift: int | None = None,
    ) -> QuantSimpleRNN:
        """state_shift: impose the relu state shift k (Bidirectional: both directions share
        one) instead of the calibrated one."""
        # relu: the rows give the state / 2^k
        k = self.state_shift(obs) if state_shift is None else state_shift
        wx, wh = self.kernel.T * 2.0**-k, self.recurrent_kernel.T * 2.0**-k
        fused = np.ones(self.units, dtype=bool)
        parts = self.quantized_parts(
            input_q, state_bits, wx, wh, self.bias * 2.0**-k, fused, state_shift=k
        )
        return QuantSimpleRNN(**parts)


def read(layer, input_size: int) -> SimpleRNNLayer:  # noqa: ANN001
    acts = check_recurrent_config(layer, "SimpleRNN", ("activation",))
    units = int(layer.get_config()["units"])
    kernel, rec, bias = recurrent_weights(layer, 1)
    return SimpleRNNLayer(
        name=layer.name,
        input_size=input_size,
        units=units,
        kernel=kernel,
        recurrent_kernel=rec,
        bias=np.zeros(units) if bias is None else bias,
        **acts,
    )


@dataclass
class QuantSimpleRNN(RecurrentQuant):
    kind: ClassVar[str] = "rnn"
    template: ClassVar[str] = "simple_rnn.c.j2"

    def blocks(self) -> list[Block]:  # groups of 4 units over the whole vector
        return unit_blocks([[j] for j in range(self.units)], 0, self.x_cols + self.h_cols, 4)

    def scratch(self) -> tuple[int, int, int]:
        words = self.units if self.acts is not None else 0  # rnn2c_rnn_x_*: Q0.15 results
        return (words, 0, self.x_cols + self.h_cols)

    def step(self, state, x):  # noqa: ANN001
        h = fx.cell_q15(self.fc.matvec(self.vector(x, state["h"])), self.cell_act)
        state["h"] = self.narrow(h)
        return state["h"]
