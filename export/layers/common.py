"""What the recurrent layer modules share: float/quantized base classes, Keras weight reading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer, StateField, state_quant
from rnn2c.export.quant_rules import (
    LIMIT_Q12,
    Block,
    QuantFC,
    input_columns,
    pack_blocks,
    pad4,
    quantize_rows,
    row_kinds,
    shift_part,
)

#: typical |value| of an int8 / int16 vector element, for choosing the balancing shifts
_TYPICAL = {8: 64.0, 16: 64.0 * 256.0}
MAX_VECTOR_SHIFT = 8  # an int8 shifted left by 8 still fits int16; an int16 goes right by <= 8


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


#: the recurrent activations the integer kernels implement (the first is Keras' default);
#: other than the defaults, they run the runtime's "activation variants" kernels
FLOAT_GATES = {
    "sigmoid": sigmoid,
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),  # Keras 3: relu6(x + 3) / 6
    "linear": lambda x: x,
}
FLOAT_CELLS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}
MAX_STATE_SHIFT = 8  # a relu state covers at most [0, 256)


def relu_state_shift(values: np.ndarray) -> int:
    """The power of two a relu state's range needs: max |h| < 2^k, 0 <= k <= MAX_STATE_SHIFT."""
    peak = float(np.abs(np.asarray(values, dtype=np.float64)).max(initial=0.0))
    if peak < 1.0:
        return 0
    return min(MAX_STATE_SHIFT, int(np.floor(np.log2(peak))) + 1)


@dataclass
class RecurrentFloat(FloatLayer):
    """A float recurrent layer: G gates of U units over the input and the hidden state."""

    gates: ClassVar[int] = 1
    label: ClassVar[str] = ""
    units: int
    kernel: np.ndarray  # [F, G*U]
    recurrent_kernel: np.ndarray  # [U, G*U]
    bias: np.ndarray  # [G*U], input side
    gate_act: str = field(default="sigmoid", kw_only=True)  # recurrent_activation
    cell_act: str = field(default="tanh", kw_only=True)  # activation

    def gate(self, x: np.ndarray) -> np.ndarray:
        return FLOAT_GATES[self.gate_act](x)

    def state_shift(self, obs: Any) -> int:
        """k for a relu state quantized over [-2^k, 2^k): the smallest k >= 0 that covers the
        calibrated state (at most MAX_STATE_SHIFT); 0 for tanh. relu is positively homogeneous,
        so dividing the candidate rows by 2^k gives the state divided by 2^k with the same
        integer kernels: only the state's scale changes."""
        if self.cell_act != "relu":
            return 0
        return relu_state_shift(obs.get("state"))

    def cell(self, x: np.ndarray) -> np.ndarray:
        return FLOAT_CELLS[self.cell_act](x)

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.gates * self.units * (self.input_size + self.units)

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {"h": np.zeros((batch, self.units))}

    def quantized_parts(
        self,
        input_q: ActQuant,
        state_bits: int,
        wx: np.ndarray,
        wh: np.ndarray,
        bias: np.ndarray,
        fused: np.ndarray,
        limits: np.ndarray | int = LIMIT_Q12,
        state_shift: int = 0,
    ) -> dict[str, Any]:
        """The keyword arguments every quantized recurrent layer takes.

        wx [rows, F] and wh [rows, U] are the real gate rows on the input and on the state (a
        row may be zero on one side), bias [rows] in real units, ``fused`` marks the rows that
        use both sides (they share one per-row weight scale). Input and state enter one int16
        vector, each shifted left by a per-layer power of two chosen so that, on the fused
        rows, the two sides get comparable int8 resolution.
        """
        where = f"layer '{self.name}' ({self.label})"
        base = state_quant(state_bits)  # a relu state: 2^state_shift times the range
        state_q = ActQuant(base.scale * 2.0**state_shift, 0, state_bits)
        f, u = self.input_size, self.units
        last = None
        for kx, kh in balancing_shifts(
            wx[fused] * np.reshape(input_q.scale, (1, -1)),
            wh[fused] * state_q.scale,
            input_q.bits,
            state_bits,
        ):
            sx, zx, mx = input_columns(input_q, f, kx)
            sh, zh, mh = input_columns(state_q, u, kh)
            w_real = np.concatenate([wx * sx[None, :], wh * sh[None, :]], axis=1)
            try:
                fc = quantize_rows(
                    w_real,
                    bias,
                    np.concatenate([zx, zh]),
                    np.concatenate([mx, mh]),
                    1.0 / fx.Q12_ONE,
                    limits,
                    where + " gate rows",
                    row_kinds(len(bias), u),
                )
            except ExportError as e:  # overflow: try a less aggressive balance
                last = e
                continue
            return {
                "name": self.name,
                "input_size": f,
                "output_q": state_q,
                "units": u,
                "state_bits": state_bits,
                "x_shift": kx,
                "h_shift": kh,
                "fc": fc,
                "gate_act": self.gate_act,
                "cell_act": self.cell_act,
            }
        assert last is not None
        raise last


def balancing_shifts(
    ax: np.ndarray, ah: np.ndarray, x_bits: int, h_bits: int
) -> list[tuple[int, int]]:
    """(x_shift, h_shift) candidates, best first, for rows with real weights ax [R, F] per unit
    of the input and ah [R, U] per unit of the state.

    Shifting the input left by kx divides its effective weights by 2**kx; the per-row int8
    scale is set by the larger side, so the best shifts are those that minimise the rows'
    quantization noise sum_r scale_r * sqrt(F (2**kx m_x)^2 + U (2**kh m_h)^2). An int8 side
    is shifted left (0..8), an int16 side right (a negative shift, 0..8, rounded): so an int16
    state beside an int8 input with large weights can give up low bits instead of setting the
    shared row scale alone.
    """
    f, u = ax.shape[1], ah.shape[1]
    px = np.abs(ax).max(axis=1, initial=0.0)
    ph = np.abs(ah).max(axis=1, initial=0.0)

    def allowed(bits: int) -> range:
        if bits == 16:
            return range(-MAX_VECTOR_SHIFT, 1)
        return range(MAX_VECTOR_SHIFT + 1)

    found = []
    for kx in allowed(x_bits):
        for kh in allowed(h_bits):
            scale = np.maximum(px * 2.0**-kx, ph * 2.0**-kh) / 127.0
            mx, mh = _TYPICAL[x_bits] * 2.0**kx, _TYPICAL[h_bits] * 2.0**kh
            noise = float((scale * np.sqrt(f * mx * mx + u * mh * mh)).sum())
            found.append((noise, abs(kx) + abs(kh), kx, kh))
    found.sort()
    return [(kx, kh) for _, _, kx, kh in found]


class PackedMatrix:
    """What every layer with one packed weight matrix (``fc``, laid out by ``blocks()``) shares:
    the packed bytes, whether a bias is stored, and its flash and raw-parameter figures."""

    fc: QuantFC
    input_size: int
    weight_bits: int = 8  # 4: int4 weights (-7..7) packed two a byte (quant_rules.pack_nibbles)

    def blocks(self) -> list[Block]:
        raise NotImplementedError

    @property
    def macs(self) -> int:
        raise NotImplementedError

    def packed_weight(self) -> np.ndarray:
        return pack_blocks(self.fc, self.input_size, self.blocks(), self.weight_bits)

    def has_bias(self) -> bool:
        return bool(np.any(self.fc.bias))

    def weight_bytes(self) -> int:
        rows = self.fc.rows
        # packed weights, int32 biases, int16 requantization multipliers (the per-kind shifts
        # live in the layer's struct)
        return self.packed_weight().size + (4 * rows if self.has_bias() else 0) + 2 * rows

    def raw_parameters(self) -> int:
        weights = self.macs if self.weight_bits == 8 else -(-self.macs // 2)
        return weights + (4 * self.fc.rows if self.has_bias() else 0)

    def int8_weight_bytes(self) -> int:
        """The packed weight bytes this layer would take with int8 weights (rnn2c size's
        figure of what int4 saves)."""
        return pack_blocks(self.fc, self.input_size, self.blocks(), 8).size


@dataclass
class RecurrentQuant(PackedMatrix, QuantLayer):
    """A quantized recurrent layer: int8 gate rows over the int16 vector [x << x_shift;
    h << h_shift] (see quant_rules.quantize_rows), int8 or int16 state."""

    gates: ClassVar[int] = 1
    units: int = 0
    state_bits: int = 8  # 8: Q0.7 int8 hidden state; 16: Q0.15 int16
    x_shift: int = 0  # the input enters the vector shifted left by this (int16: right by -this)
    h_shift: int = 0  # the state likewise
    fc: QuantFC = None  # type: ignore[assignment]
    gate_act: str = "sigmoid"  # recurrent_activation (fixedpoint.GATE_CODES)
    cell_act: str = "tanh"  # activation (fixedpoint.CELL_CODES)
    weight_bits: int = 8  # 4: int4 weights (--weights int4)

    @property
    def acts(self) -> tuple[int, int] | None:
        """(RNN2C_GATE_*, RNN2C_CELL_*) for the runtime's variant kernels; None for the
        default activations (the layer's own kernels)."""
        if self.gate_act == "sigmoid" and self.cell_act == "tanh":
            return None
        return fx.GATE_CODES[self.gate_act], fx.CELL_CODES[self.cell_act]

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.gates * self.units * (self.input_size + self.units)

    @property
    def x_cols(self) -> int:
        """Vector columns of the input part (padded to a multiple of 4)."""
        return pad4(self.input_size)

    @property
    def h_cols(self) -> int:
        return pad4(self.units)

    def state_fields(self) -> list[StateField]:
        if self.state_bits == 16:
            return [StateField("h", "int16_t", self.units, "hidden state, Q0.15")]
        return [StateField("h", "int8_t", self.units, "hidden state, Q0.7")]

    def scratch(self) -> tuple[int, int, int]:
        return (0, 0, self.x_cols + self.h_cols)

    def vector(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """The int16 vector the kernels read: [x << x_shift; h << h_shift] (unpadded; a negative
        shift is a rounded right shift of an int16 part)."""
        return np.concatenate([shift_part(x, self.x_shift), shift_part(h, self.h_shift)], axis=1)

    def narrow(self, h_q15: np.ndarray) -> np.ndarray:
        """A Q0.15 result -> this layer's state format (rounded, saturated)."""
        return fx.q15_to_state(h_q15) if self.state_bits == 8 else fx.sat(h_q15, 16)

    # ---- the C layout: which rows each kernel pass computes, in which order

    def blocks(self) -> list[Block]:
        """The kernel passes in the order the C runs them (see quant_rules.pack_blocks)."""
        raise NotImplementedError

    def c_rows(self) -> list[int]:
        """The logical rows in the order the C reads their bias and requantization."""
        return [r for rows, begin, _ in self.blocks() if begin == 0 for r in rows]


def unit_blocks(rows_of_unit: list[list[int]], begin: int, end: int, per_pass: int) -> list[Block]:
    """Blocks of up to per_pass row lists (units), each pass over columns [begin, end)."""
    out = []
    for i in range(0, len(rows_of_unit), per_pass):
        out.append(([r for rows in rows_of_unit[i : i + per_pass] for r in rows], begin, end))
    return out


def check_recurrent_config(layer: Any, kind: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Refuse the recurrent-layer options the integer kernels do not implement; returns the
    activation names, {"gate_act": ..., "cell_act": ...} for the keys given."""
    cfg = layer.get_config()
    where = f"layer '{layer.name}' ({kind})"
    found = {}
    for key in keys:
        allowed = FLOAT_CELLS if key == "activation" else FLOAT_GATES
        got = cfg.get(key)
        got_name = got if isinstance(got, str) else getattr(got, "__name__", str(got))
        if got_name not in allowed:
            raise ExportError(
                f"{where}: {key}={got_name!r} is not supported; supported: {', '.join(allowed)}"
            )
        found["cell_act" if key == "activation" else "gate_act"] = got_name
    # stateful=True is the C's own form (state kept between step calls until reset), a
    # return_state=True layer is read for its main output (the reader refuses a used state), and
    # go_backwards=True is wrapped by keras_reader (layers/bidirectional.py)
    return found


def recurrent_weights(layer: Any, gates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(kernel [F, G*U], recurrent_kernel [U, G*U], bias or None) as float64."""
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    units = int(layer.get_config()["units"])
    if len(weights) < 2 or weights[0].shape[1] != gates * units:
        shapes = [w.shape for w in weights]
        raise ExportError(f"layer '{layer.name}': unexpected weight shapes {shapes}")
    bias = weights[2] if len(weights) > 2 else None
    return weights[0], weights[1], bias
