"""Conv1D over time, causal and streaming (template layers/conv1d.c.j2).

``padding="causal"`` is a per-step layer: the state keeps a ring of the last
``(kernel_size - 1) * dilation_rate + 1`` inputs, and a step that emits multiplies the window
(``kernel_size`` taps, ``dilation_rate`` steps apart, the oldest first) as one vector with the
Dense kernel. Before the ring has filled, a missing tap reads the input's zero point (Keras pads
the left with real zeros). With ``strides=s`` the layer emits at steps 0, s, 2s, ... since reset
(Keras' causal output i ends at input step i*s); on the other steps the layers after it do not
run and the model's output is held (``<name>_step`` returns 0).

The window vector is ``taps`` parts of ``pad4(channels)`` int16 columns each (the zero columns
have zero weights), so every part starts on a group of 4. A step keeps the ring in the C state as
such int16 parts and reads the taps in place, 4 filters at a time (no window copy on the stack;
the sums are those over the window vector); a whole-sequence pass builds the window vector.
Output quantization and activations are the Dense layer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer, StateField
from rnn2c.export.layers.common import PackedMatrix, sigmoid
from rnn2c.export.layers.dense import (
    ACTIVATION_CODES,
    ACTIVATIONS,
    ALIASES,
    DEFAULT_ALPHA,
    LIMITS,
    X_ACTIVATIONS,
    acc_rows,
    float_activation,
    output_rule,
)
from rnn2c.export.quant_rules import (
    Block,
    QuantFC,
    input_columns,
    pack_blocks,
    pad4,
    quantize_rows,
    vector_max,
)

KERAS_CLASSES = ("Conv1D",)
ROWS_PER_PASS = 4
#: the ring counters are int16: position, phase and fill all stay below this
MAX_SPAN = 4096


def ring_push(state: dict[str, np.ndarray], ring: np.ndarray, x: np.ndarray, span: int) -> None:
    """Put one step [B, C] into the ring [B, span, C]; advance the counters (pos, phase, held)."""
    ctr = state["ctr"]
    pos = int(ctr[0, 0])
    ring[:, pos] = x
    ctr[:, 0] = 0 if pos + 1 == span else pos + 1
    ctr[:, 2] = min(int(ctr[0, 2]) + 1, span)


def ring_due(state: dict[str, np.ndarray], stride: int, ready: bool = True) -> bool:
    """Whether this step emits: every ``stride`` steps, counted from the first ready step."""
    if not ready:
        return False
    ctr = state["ctr"]
    phase = int(ctr[0, 1])
    ctr[:, 1] = 0 if phase + 1 == stride else phase + 1
    return phase == 0


def ring_back(state: dict[str, np.ndarray], span: int, back: int) -> int:
    """The ring slot of the input ``back`` steps before the newest."""
    newest = (int(state["ctr"][0, 0]) - 1) % span
    return (newest - back) % span


#: the Dense layer's activations, the variants (leaky_relu, elu, silu, gelu, softplus) included:
#: the rows give an int16 pre-activation with calibrated fractional bits, as rnn2c_dense_x_s8
CONV_ACTIVATIONS = ACTIVATIONS


def activate(y: np.ndarray, activation: str, alpha: float = 0.0) -> np.ndarray:
    if activation in X_ACTIVATIONS:
        return float_activation(y, activation, alpha)
    if activation == "relu":
        return np.maximum(y, 0.0)
    if activation == "sigmoid":
        return sigmoid(y)
    if activation == "tanh":
        return np.tanh(y)
    if activation == "softmax":
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return y


@dataclass
class Conv1DLayer(FloatLayer):
    kind: ClassVar[str] = "conv1d"
    filters: int
    kernel: np.ndarray  # [taps, in, filters]
    bias: np.ndarray  # [filters]
    activation: str
    dilation: int = 1
    stride: int = 1
    padding: str = "causal"
    alpha: float = 0.0  # leaky_relu / elu slope

    @property
    def taps(self) -> int:
        return int(self.kernel.shape[0])

    def out_len(self, n: Any) -> Any:
        return out_len(n, self.padding, self.span, self.stride)

    def over_time(self, x: np.ndarray, lengths: np.ndarray, obs: Any = None) -> tuple:
        """Whole sequences [N, T, C] -> ([N, T, filters] with each sequence's rows first,
        the rows per sequence): Keras' Conv1D with this padding."""
        idx, valid, m = window_index(lengths, x.shape[1], self)
        y = np.broadcast_to(self.bias, (*idx.shape[:2], self.filters)).copy()
        rows = np.arange(x.shape[0])[:, None]
        for k in range(self.taps):
            g = x[rows, idx[:, :, k]] @ self.kernel[k]
            y = y + np.where(valid[:, :, k, None], g, 0.0)
        real = np.arange(x.shape[1])[None, :] < m[:, None]
        if obs is not None and self.activation in X_ACTIVATIONS:
            obs.mask = None
            obs.observe("pre", y[real])
        y = activate(y, self.activation, self.alpha)
        y = np.where(real[:, :, None], y, 0.0)
        if obs is not None:
            obs.mask = None
            obs.observe("output", y[real])
        return y, m

    @property
    def span(self) -> int:
        return (self.taps - 1) * self.dilation + 1

    @property
    def output_size(self) -> int:
        return self.filters

    @property
    def macs(self) -> int:
        return self.filters * self.taps * self.input_size

    @property
    def decimates(self) -> bool:
        return self.stride > 1

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {
            "ring": np.zeros((batch, self.span, self.input_size)),
            "ctr": np.zeros((batch, 3), dtype=np.int64),
        }

    def step(self, state, x, obs=None):  # noqa: ANN001
        ring_push(state, state["ring"], x, self.span)
        if not ring_due(state, self.stride):
            return None
        held = int(state["ctr"][0, 2])
        y = np.broadcast_to(self.bias, (x.shape[0], self.filters)).copy()
        for k in range(self.taps):
            back = (self.taps - 1 - k) * self.dilation
            if back < held:  # an unfilled tap is a real 0 (causal zero padding)
                y = y + state["ring"][:, ring_back(state, self.span, back)] @ self.kernel[k]
        if obs is not None and self.activation in X_ACTIVATIONS:
            obs.observe("pre", y)
        y = activate(y, self.activation, self.alpha)
        if obs is not None:
            obs.observe("output", y)
        return y

    def fold_input_affine(self, a: np.ndarray, b: np.ndarray) -> None:
        """x -> a*x + b per channel: into every tap. With padding 'causal' or 'same' an unfilled
        tap stays a real 0 of the layer's own input, which is what Keras pads after a
        Normalization too, so the bias part of b only counts for the taps that hold an input:
        refused unless b is 0. With padding 'valid' every tap holds an input: b goes into the
        bias through every tap."""
        if self.padding == "valid":
            self.bias = self.bias + sum(b @ self.kernel[k] for k in range(self.taps))
        elif np.any(b != 0):
            raise ExportError(
                f"layer '{self.name}' (Conv1D): an input offset right before a Conv1D "
                "(a Normalization, or an input feature constant over the calibration set) is "
                "not supported, as Keras pads the offset input with zeros; normalize the data "
                "before the model, or give calibration data in which every feature varies"
            )
        self.kernel = a[None, :, None] * self.kernel

    def quantize(self, input_q: ActQuant, obs, method: str, state_bits: int = 8) -> QuantConv1D:  # noqa: ANN001
        where = f"layer '{self.name}' (Conv1D)"
        out_q, fc_scale, extra = output_rule(self.activation, self.alpha, obs, method, where)
        c, c4 = self.input_size, pad4(self.input_size)
        scale, zp, vmax = input_columns(input_q, c, 0)
        cols = self.taps * c4
        w_real = np.zeros((self.filters, cols))
        offset = np.zeros(cols, dtype=np.int64)
        vmaxes = np.zeros(cols, dtype=np.int64)
        for k in range(self.taps):
            w_real[:, k * c4 : k * c4 + c] = self.kernel[k].T * scale[None, :]
            offset[k * c4 : k * c4 + c] = zp
            vmaxes[k * c4 : k * c4 + c] = vmax
        fc = quantize_rows(
            w_real, self.bias, offset, vmaxes, fc_scale, LIMITS[self.activation], where + " kernel"
        )
        pad = np.broadcast_to(np.asarray(input_q.zero_point, dtype=np.int16), (c,)).copy()
        return QuantConv1D(
            name=self.name,
            input_size=c,
            output_q=out_q,
            filters=self.filters,
            taps=self.taps,
            dilation=self.dilation,
            stride=self.stride,
            activation=self.activation,
            input_bits=int(input_q.bits),
            padding=self.padding,
            pad=pad,
            fc=fc,
            **extra,
        )


def read(layer: Any, input_size: int) -> Conv1DLayer:
    cfg = layer.get_config()
    where = f"layer '{layer.name}' (Conv1D)"
    act = cfg.get("activation")
    act = act if isinstance(act, str) else getattr(act, "__name__", str(act))
    act = ALIASES.get(act, act)
    if act not in CONV_ACTIVATIONS:
        raise ExportError(
            f"{where}: activation {act!r} is not supported; supported: "
            f"{', '.join(CONV_ACTIVATIONS)}; retrain with one of these"
        )
    padding = str(cfg.get("padding", "valid")).lower()  # valid, same: whole-sequence
    if cfg.get("groups", 1) != 1:
        raise ExportError(f"{where}: groups={cfg['groups']} is not supported; use groups=1")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ExportError(
            f"{where}: data_format={cfg['data_format']!r} is not supported; use 'channels_last'"
        )
    (stride,) = tuple(cfg.get("strides", (1,)))
    (dilation,) = tuple(cfg.get("dilation_rate", (1,)))
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    kernel = weights[0]
    filters = int(cfg["filters"])
    if (kernel.shape[0] - 1) * int(dilation) + 1 > MAX_SPAN or int(stride) > MAX_SPAN:
        raise ExportError(
            f"{where}: a window of (kernel_size - 1) * dilation_rate + 1 = "
            f"{(kernel.shape[0] - 1) * int(dilation) + 1} steps or strides={stride} is over the "
            f"{MAX_SPAN} supported; use a shorter window"
        )
    return Conv1DLayer(
        name=layer.name,
        input_size=input_size,
        filters=filters,
        kernel=kernel,
        bias=weights[1] if len(weights) > 1 else np.zeros(filters),
        activation=act,
        dilation=int(dilation),
        stride=int(stride),
        padding=padding,
        alpha=DEFAULT_ALPHA.get(act, 0.0),
    )


@dataclass
class QuantConv1D(PackedMatrix, QuantLayer):
    """Rows of fc: one per filter over the window vector [taps x pad4(channels)] (oldest tap
    first); ``pad`` the vector value of a real 0 per channel (the input zero point)."""

    kind: ClassVar[str] = "conv1d"
    template: ClassVar[str] = "conv1d.c.j2"
    output_buffer: ClassVar[bool] = True  # its output goes to a buffer, not a state member
    x_shift: ClassVar[int] = 0
    filters: int = 0
    taps: int = 1
    dilation: int = 1
    stride: int = 1
    activation: str = "linear"
    input_bits: int = 8
    padding: str = "causal"  # "valid" / "same": a whole-sequence layer (run only)
    whole: bool = False  # in a whole-sequence model: run over buffers, no ring in the state
    pad: np.ndarray = None  # type: ignore[assignment]
    fc: QuantFC = None  # type: ignore[assignment]
    frac: int = 12  # X_ACTIVATIONS: fractional bits of the int16 pre-activation
    alpha_q15: int = 0  # X_ACTIVATIONS: leaky_relu / elu slope in Q0.15
    out_rq: list[int] | None = None  # X_ACTIVATIONS: f(x) -> output (multiplier, shifts)

    @property
    def x_act(self) -> int | None:
        """RNN2C_DX_* of an activation variant, None for the Dense kernel's own activations."""
        return fx.DENSE_X_CODES.get(self.activation)

    def out(self, acc: np.ndarray) -> np.ndarray:
        """Requantized rows -> int8 outputs (rnn2c_conv_out / rnn2c_dense_x_s8)."""
        if self.out_rq is not None:
            f = fx.dense_act(acc, self.activation, self.frac, self.alpha_q15)
            return fx.sat(fx.requant(f, *self.out_rq) + self.output_q.zero_point, 8)
        return dense_activation(acc, self.activation, self.output_q.zero_point, self.name)

    @property
    def span(self) -> int:
        return (self.taps - 1) * self.dilation + 1

    @property
    def decimates(self) -> bool:
        return self.stride > 1

    @property
    def changes_length(self) -> bool:
        return self.stride > 1 or self.padding == "valid"

    def out_len(self, n: Any) -> Any:
        return out_len(n, self.padding, self.span, self.stride)

    def pad_left(self, n: Any) -> Any:
        return pad_left(n, self.padding, self.span, self.stride)

    def over_time(self, x: np.ndarray, lengths: np.ndarray, obs: Any = None) -> tuple:
        """Integer whole-sequence pass (rnn2c_conv_seq_*): as the float one."""
        idx, valid, m = window_index(lengths, x.shape[1], self)
        n, t = idx.shape[:2]
        rows = np.arange(n)[:, None]
        v = np.zeros((n, t, self.x_cols), dtype=np.int64)
        c = self.input_size
        for k in range(self.taps):
            part = slice(k * self.in4, k * self.in4 + c)
            g = np.asarray(x, dtype=np.int64)[rows, idx[:, :, k]]
            v[:, :, part] = np.where(valid[:, :, k, None], g, self.pad.astype(np.int64))
        acc = self.fc.matvec(v.reshape(n * t, -1))
        y = self.out(acc)
        y = y.reshape(n, t, -1)
        real = np.arange(t)[None, :] < m[:, None]
        return np.where(real[:, :, None], y, 0), m

    @property
    def units(self) -> int:
        return self.filters

    @property
    def output_size(self) -> int:
        return self.filters

    @property
    def macs(self) -> int:
        return self.filters * self.taps * self.input_size

    @property
    def activation_code(self) -> int:
        return ACTIVATION_CODES.get(self.activation, 0)

    @property
    def in4(self) -> int:
        return pad4(self.input_size)

    @property
    def x_cols(self) -> int:
        return self.taps * self.in4

    @property
    def ring_words(self) -> int:
        """The ring: span int16 vector parts of in4 columns, as int32 words (word aligned)."""
        return self.span * self.in4 // 2

    def emitted(self, n: int) -> int:
        """Outputs for n input steps (causal: at steps 0, stride, 2 * stride, ...)."""
        return int(self.out_len(n))

    def has_pad(self) -> bool:
        return bool(np.any(self.pad))

    def state_fields(self) -> list[StateField]:
        if self.whole:
            return []
        return [
            StateField(
                "ring",
                "int32_t",
                self.ring_words,
                f"the last {self.span} inputs as int16 vector parts (a ring)",
            ),
            StateField("ctr", "int16_t", 3, "ring: next slot, steps mod stride, inputs held"),
        ]

    def scratch(self) -> tuple[int, int, int]:
        # a step reads the taps from the ring, 4 filters at a time: softmax alone keeps all rows
        if not self.whole:
            return (self.filters if self.activation == "softmax" else 0, 0, 0)
        return (acc_rows(self.activation, self.filters), 0, self.x_cols)  # the Dense kernel

    def blocks(self) -> list[Block]:
        n = self.filters
        return [
            (list(range(i, min(i + ROWS_PER_PASS, n))), 0, self.x_cols)
            for i in range(0, n, ROWS_PER_PASS)
        ]

    def c_rows(self) -> list[int]:
        return list(range(self.filters))

    def packed_weight(self) -> np.ndarray:
        return pack_blocks(self.fc, self.x_cols, self.blocks())

    def vector_max(self, input_bits: int) -> list[int]:
        """max |v| per column of the window vector (the zero columns 0)."""
        one = [vector_max(input_bits, 0)] * self.input_size + [0] * (self.in4 - self.input_size)
        return one * self.taps

    def weight_bytes(self) -> int:
        return super().weight_bytes() + (2 * self.input_size if self.has_pad() else 0)

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {
            "ring": np.zeros((batch, self.span, self.input_size), dtype=np.int64),
            "ctr": np.zeros((batch, 3), dtype=np.int64),
        }

    def window(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """The int16 window vector [B, taps * in4] the kernels read."""
        b = state["ring"].shape[0]
        v = np.zeros((b, self.x_cols), dtype=np.int64)
        held = int(state["ctr"][0, 2])
        c = self.input_size
        for k in range(self.taps):
            back = (self.taps - 1 - k) * self.dilation
            part = slice(k * self.in4, k * self.in4 + c)
            if back < held:
                v[:, part] = state["ring"][:, ring_back(state, self.span, back)]
            else:
                v[:, part] = self.pad.astype(np.int64)[None, :]
        return v

    def step(self, state, x):  # noqa: ANN001
        ring_push(state, state["ring"], x, self.span)
        if not ring_due(state, self.stride):
            return None
        acc = self.fc.matvec(self.window(state))
        return self.out(acc)


def out_len(n: Any, padding: str, span: int, stride: int) -> Any:
    """Keras' output length for n input steps."""
    n = np.asarray(n, dtype=np.int64)
    if padding == "valid":
        return np.where(n >= span, (n - span) // stride + 1, 0)
    return -(-n // stride)


def pad_left(n: Any, padding: str, span: int, stride: int) -> Any:
    """Zero rows Keras puts before the first input: causal span - 1, valid 0, same half of
    the total (the smaller half; TensorFlow's rule)."""
    n = np.asarray(n, dtype=np.int64)
    if padding == "causal":
        return np.full_like(n, span - 1)
    if padding == "valid":
        return np.zeros_like(n)
    total = np.maximum((out_len(n, padding, span, stride) - 1) * stride + span - n, 0)
    return total // 2


def window_index(lengths: np.ndarray, t: int, layer: Any) -> tuple:
    """For output rows j < t of every sequence and tap k: the input row each reads [N, t, K]
    (clipped), whether it is a real input (else padding), and the output rows per sequence."""
    lens = np.asarray(lengths, dtype=np.int64)
    m = out_len(lens, layer.padding, layer.span, layer.stride)
    left = pad_left(lens, layer.padding, layer.span, layer.stride)
    j = np.arange(t)[None, :, None]
    k = np.arange(layer.taps)[None, None, :]
    idx = j * layer.stride + k * layer.dilation - left[:, None, None]
    valid = (idx >= 0) & (idx < lens[:, None, None])
    return np.clip(idx, 0, t - 1), valid, m


def dense_activation(acc: np.ndarray, activation: str, zp: int, name: str) -> np.ndarray:
    """The integer activation of rnn2c_dense_s8 on requantized rows (as QuantDense.step)."""
    if activation == "softmax":
        return fx.softmax_q8(acc)
    if activation == "sigmoid":
        return fx.sat(fx.rshift_round(fx.sigmoid_q15(acc), 7) - 128, 8)
    if activation == "tanh":
        return fx.sat(fx.rshift_round(fx.tanh_q15(acc), 8), 8)
    if activation not in ("linear", "relu"):
        raise ExportError(f"layer '{name}': unknown activation {activation}")
    v = acc + zp
    if activation == "relu":
        v = np.maximum(v, zp)
    return fx.sat(v, 8)
