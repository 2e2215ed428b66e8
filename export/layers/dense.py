"""Dense: y = activation(W x + b), applied at every step (template layers/dense.c.j2).

linear and relu outputs are requantized to a calibrated int8 range; sigmoid, tanh and softmax go
through Q3.12 and the runtime's tables to fixed output scales (1/256 zp -128, 1/128 zp 0,
1/256 zp -128).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer
from rnn2c.export.layers.common import PackedMatrix, sigmoid
from rnn2c.export.quantize import (
    LIMIT_Q12,
    Block,
    QuantFC,
    act_quant_from_range,
    choose_range,
    input_columns,
    pad4,
    quantize_rows,
)

KERAS_CLASSES = ("Dense",)
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
#: values of the RNN2C_ACT_* enum in rnn2c_runtime.h
ACTIVATION_CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}
#: the magnitude of the requantized result from which the output saturates: Q3.12 tables
#: saturate at +-8.0; softmax sees logit differences up to 16.0; int8 outputs at +-256 units
LIMITS = {"sigmoid": LIMIT_Q12, "tanh": LIMIT_Q12, "softmax": 1 << 17, "linear": 256, "relu": 256}
ROWS_PER_PASS = 4
FIXED_OUTPUT = {
    "sigmoid": ActQuant(1.0 / 256.0, -128),
    "tanh": ActQuant(1.0 / 128.0, 0),
    "softmax": ActQuant(1.0 / 256.0, -128),
}


@dataclass
class DenseLayer(FloatLayer):
    kind: ClassVar[str] = "dense"
    units: int
    kernel: np.ndarray  # [in, out]
    bias: np.ndarray  # [out]
    activation: str

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.units * self.input_size

    def step(self, state, x, obs=None):  # noqa: ANN001
        y = x @ self.kernel + self.bias
        if self.activation == "relu":
            y = np.maximum(y, 0.0)
        elif self.activation == "sigmoid":
            y = sigmoid(y)
        elif self.activation == "tanh":
            y = np.tanh(y)
        elif self.activation == "softmax":
            e = np.exp(y - y.max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        if obs is not None:
            obs.observe("output", y)
        return y

    def quantize(self, input_q: ActQuant, obs, method: str, state_bits: int = 8) -> QuantDense:  # noqa: ANN001
        where = f"layer '{self.name}' (Dense)"
        if self.activation in FIXED_OUTPUT:
            out_q, fc_scale = FIXED_OUTPUT[self.activation], 1.0 / fx.Q12_ONE
        else:
            out_q = act_quant_from_range(*choose_range(obs.get("output"), method))
            fc_scale = out_q.scale
        scale, zp, vmax = input_columns(input_q, self.input_size, 0)
        fc = quantize_rows(
            self.kernel.T * scale[None, :],
            self.bias,
            zp,
            vmax,
            fc_scale,
            LIMITS[self.activation],
            where + " kernel",
        )
        return QuantDense(
            name=self.name,
            input_size=self.input_size,
            output_q=out_q,
            units=self.units,
            activation=self.activation,
            fc=fc,
        )


def read(layer, input_size: int) -> DenseLayer:  # noqa: ANN001
    cfg = layer.get_config()
    act = cfg.get("activation")
    act = act if isinstance(act, str) else getattr(act, "__name__", str(act))
    if act not in ACTIVATIONS:
        raise ExportError(
            f"layer '{layer.name}' (Dense): activation {act!r} is not supported; "
            f"supported: {', '.join(ACTIVATIONS)}"
        )
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    units = int(cfg["units"])
    return DenseLayer(
        name=layer.name,
        input_size=input_size,
        units=units,
        kernel=weights[0],
        bias=weights[1] if len(weights) > 1 else np.zeros(units),
        activation=act,
    )


@dataclass
class QuantDense(PackedMatrix, QuantLayer):
    kind: ClassVar[str] = "dense"
    template: ClassVar[str] = "dense.c.j2"
    units: int = 0
    activation: str = "linear"
    fc: QuantFC = None  # type: ignore[assignment]

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.units * self.input_size

    @property
    def activation_code(self) -> int:
        return ACTIVATION_CODES[self.activation]

    x_shift: ClassVar[int] = 0  # the input enters the vector unshifted

    @property
    def x_cols(self) -> int:
        return pad4(self.input_size)

    def scratch(self) -> tuple[int, int, int]:
        return (self.units, 0, self.x_cols)

    def blocks(self) -> list[Block]:
        n = self.units
        return [
            (list(range(i, min(i + ROWS_PER_PASS, n))), 0, self.x_cols)
            for i in range(0, n, ROWS_PER_PASS)
        ]

    def c_rows(self) -> list[int]:
        return list(range(self.units))

    def step(self, state, x):  # noqa: ANN001
        acc = self.fc.matvec(x)
        zp = self.output_q.zero_point
        if self.activation == "softmax":
            return fx.softmax_q8(acc)
        if self.activation == "sigmoid":
            return fx.sat(fx.rshift_round(fx.sigmoid_q15(acc), 7) - 128, 8)
        if self.activation == "tanh":
            return fx.sat(fx.rshift_round(fx.tanh_q15(acc), 8), 8)
        v = acc + zp
        if self.activation == "relu":
            v = np.maximum(v, zp)
        if self.activation not in ("linear", "relu"):
            raise ExportError(f"layer '{self.name}': unknown activation {self.activation}")
        return fx.sat(v, 8)
