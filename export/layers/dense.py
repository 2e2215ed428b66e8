"""Dense: y = activation(W x + b), applied at every step (template layers/dense.c.j2).

linear and relu outputs are requantized to a calibrated int8 range; sigmoid, tanh and softmax go
through Q3.12 and the runtime's tables to fixed output scales (1/256 zp -128, 1/128 zp 0,
1/256 zp -128).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer
from rnn2c.export.layers.common import PackedMatrix, sigmoid
from rnn2c.export.quant_rules import (
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
#: the last five run rnn2c_dense_x_s8 (the runtime's "activation variants"): the rows are
#: requantized to an int16 pre-activation with `frac` fractional bits from calibration, f is
#: computed in that format and requantized to a calibrated int8 output range
X_ACTIVATIONS = tuple(fx.DENSE_X_CODES)
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", *X_ACTIVATIONS)
#: Keras names for the same function
ALIASES = {"swish": "silu"}
#: the slope a Keras activation string implies (keras.activations defaults)
DEFAULT_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}
#: values of the RNN2C_ACT_* enum in rnn2c_runtime.h
ACTIVATION_CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}
#: the magnitude of the requantized result from which the output saturates: Q3.12 tables
#: saturate at +-8.0; softmax sees logit differences up to 16.0; int8 outputs at +-256 units
LIMITS = {"sigmoid": LIMIT_Q12, "tanh": LIMIT_Q12, "softmax": 1 << 17, "linear": 256, "relu": 256}
LIMITS.update(dict.fromkeys(X_ACTIVATIONS, LIMIT_Q12))  # the int16 pre-activation saturates
ROWS_PER_PASS = 4
FIXED_OUTPUT = {
    "sigmoid": ActQuant(1.0 / 256.0, -128),
    "tanh": ActQuant(1.0 / 128.0, 0),
    "softmax": ActQuant(1.0 / 256.0, -128),
}


def output_rule(
    activation: str,
    alpha: float,
    obs,  # noqa: ANN001
    method: str,
    where: str,
) -> tuple[ActQuant, float, dict]:
    """The quantizer rule of a Dense-like layer's output (Dense, Conv1D): its int8 quantization,
    the real value of one unit of the requantized rows, and the activation variants' fields."""
    extra = {}
    if activation in FIXED_OUTPUT:
        out_q, fc_scale = FIXED_OUTPUT[activation], 1.0 / fx.Q12_ONE
    elif activation in X_ACTIVATIONS:
        out_q = act_quant_from_range(*choose_range(obs.get("output"), method))
        lo, hi = choose_range(obs.get("pre"), method)
        peak = max(abs(lo), abs(hi), 1e-6)  # the int16 pre-activation covers +-peak
        frac = int(min(12, max(0, 15 - math.ceil(math.log2(peak * 1.0001)))))
        fc_scale = 2.0**-frac
        try:
            m, s1, s2 = fx.rq_params(fc_scale / out_q.scale, 256)
        except ValueError as e:
            raise ExportError(f"{where}: output requantization: {e}") from None
        extra = {
            "frac": frac,
            "alpha_q15": round(alpha * fx.Q15_ONE),
            "out_rq": [m, s1, s2],
        }
    else:
        out_q = act_quant_from_range(*choose_range(obs.get("output"), method))
        fc_scale = out_q.scale
    return out_q, fc_scale, extra


def acc_rows(activation: str, rows: int) -> int:
    """The int32 scratch rows rnn2c_dense_s8 / rnn2c_dense_x_s8 use: softmax keeps every row
    for the normalisation, any other activation one group of ROWS_PER_PASS at a time."""
    return rows if activation == "softmax" else min(ROWS_PER_PASS, rows)


@dataclass
class DenseLayer(FloatLayer):
    kind: ClassVar[str] = "dense"
    units: int
    kernel: np.ndarray  # [in, out]
    bias: np.ndarray  # [out]
    activation: str
    alpha: float = 0.0  # leaky_relu / elu slope

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.units * self.input_size

    def step(self, state, x, obs=None):  # noqa: ANN001
        y = x @ self.kernel + self.bias
        if obs is not None and self.activation in X_ACTIVATIONS:
            obs.observe("pre", y)
        if self.activation in X_ACTIVATIONS:
            y = float_activation(y, self.activation, self.alpha)
        elif self.activation == "relu":
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
        out_q, fc_scale, extra = output_rule(self.activation, self.alpha, obs, method, where)
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
            **extra,
        )


def float_activation(y: np.ndarray, act: str, alpha: float) -> np.ndarray:
    """Keras' float leaky_relu, elu, silu, gelu (exact, erf) and softplus."""
    if act == "leaky_relu":
        return np.where(y >= 0, y, alpha * y)
    if act == "elu":
        return np.where(y > 0, y, alpha * np.expm1(np.minimum(y, 0.0)))
    if act == "silu":
        return y * 0.5 * (1.0 + np.tanh(0.5 * y))  # y sigmoid(y), without overflow
    if act == "gelu":
        return 0.5 * y * (1.0 + _erf(y / math.sqrt(2.0)))
    if act == "softplus":
        return np.logaddexp(0.0, y)
    raise ValueError(f"unknown activation {act}")


_erf = np.vectorize(math.erf, otypes=[np.float64])


def read(layer, input_size: int) -> DenseLayer:  # noqa: ANN001
    cfg = layer.get_config()
    act = cfg.get("activation")
    act = act if isinstance(act, str) else getattr(act, "__name__", str(act))
    act = ALIASES.get(act, act)
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
        alpha=DEFAULT_ALPHA.get(act, 0.0),
    )


@dataclass
class QuantDense(PackedMatrix, QuantLayer):
    kind: ClassVar[str] = "dense"
    template: ClassVar[str] = "dense.c.j2"
    units: int = 0
    activation: str = "linear"
    fc: QuantFC = None  # type: ignore[assignment]
    frac: int = 12  # X_ACTIVATIONS: fractional bits of the int16 pre-activation
    alpha_q15: int = 0  # X_ACTIVATIONS: leaky_relu / elu slope in Q0.15
    out_rq: list[int] | None = None  # X_ACTIVATIONS: f(x) -> output (multiplier, shifts)
    weight_bits: int = 8  # 4: int4 weights (--weights int4)

    @property
    def x_act(self) -> int | None:
        """RNN2C_DX_* for rnn2c_dense_x_s8, None for the activations of rnn2c_dense_s8."""
        return fx.DENSE_X_CODES.get(self.activation)

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.units * self.input_size

    @property
    def activation_code(self) -> int:
        return ACTIVATION_CODES.get(self.activation, 0)

    x_shift: ClassVar[int] = 0  # the input enters the vector unshifted

    @property
    def x_cols(self) -> int:
        return pad4(self.input_size)

    def scratch(self) -> tuple[int, int, int]:
        return (acc_rows(self.activation, self.units), 0, self.x_cols)

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
        if self.out_rq is not None:
            f = fx.dense_act(acc, self.activation, self.frac, self.alpha_q15)
            return fx.sat(fx.requant(f, *self.out_rq) + zp, 8)
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
