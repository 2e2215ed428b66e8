"""What the recurrent layer modules share: float/quantized base classes, Keras weight reading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer, StateField, state_quant
from rnn2c.export.quantize import QuantFC, quantize_fc


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class RecurrentFloat(FloatLayer):
    """A float recurrent layer: G gates of U units over the input and the hidden state."""

    gates: ClassVar[int] = 1
    label: ClassVar[str] = ""
    units: int
    kernel: np.ndarray  # [F, G*U]
    recurrent_kernel: np.ndarray  # [U, G*U]
    bias: np.ndarray  # [G*U], input side

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.gates * self.units * (self.input_size + self.units)

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {"h": np.zeros((batch, self.units))}

    def quantized_parts(
        self, input_q: ActQuant, state_bits: int, recurrent_bias: np.ndarray | None = None
    ) -> dict[str, Any]:
        """The keyword arguments every quantized recurrent layer takes: both weight matrices
        requantized to Q3.12 gate pre-activations, the state format and the sizes."""
        one = 1.0 / fx.Q12_ONE
        where = f"layer '{self.name}' ({self.label})"
        state_q = state_quant(state_bits)
        return {
            "name": self.name,
            "input_size": self.input_size,
            "output_q": state_q,
            "units": self.units,
            "state_bits": state_bits,
            "input": quantize_fc(self.kernel, self.bias, input_q, one, where + " input kernel"),
            "recurrent": quantize_fc(
                self.recurrent_kernel, recurrent_bias, state_q, one, where + " recurrent kernel"
            ),
        }


@dataclass
class RecurrentQuant(QuantLayer):
    """A quantized recurrent layer: int8 input and recurrent matrices, int8 or int16 state."""

    gates: ClassVar[int] = 1
    units: int = 0
    state_bits: int = 8  # 8: Q0.7 int8 hidden state; 16: Q0.15 int16
    input: QuantFC = None  # type: ignore[assignment]
    recurrent: QuantFC = None  # type: ignore[assignment]

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def macs(self) -> int:
        return self.gates * self.units * (self.input_size + self.units)

    def state_fields(self) -> list[StateField]:
        if self.state_bits == 16:
            return [StateField("h", "int16_t", self.units, "hidden state, Q0.15")]
        return [StateField("h", "int8_t", self.units, "hidden state, Q0.7")]

    def scratch(self) -> tuple[int, int, int]:
        return (2 * self.gates * self.units, 0, 0)

    def narrow(self, h_q15: np.ndarray) -> np.ndarray:
        """A Q0.15 result -> this layer's state format (rounded, saturated)."""
        return fx.q15_to_state(h_q15) if self.state_bits == 8 else fx.sat(h_q15, 16)


def check_recurrent_config(layer: Any, kind: str, activations: dict[str, str]) -> None:
    """Refuse the recurrent-layer options the integer kernels do not implement."""
    cfg = layer.get_config()
    where = f"layer '{layer.name}' ({kind})"
    for key, want in activations.items():
        got = cfg.get(key)
        got_name = got if isinstance(got, str) else getattr(got, "__name__", str(got))
        if got_name != want:
            raise ExportError(
                f"{where}: {key}={got_name!r} is not supported; only {key}={want!r} (the default)"
            )
    for key, label in (
        ("go_backwards", "go_backwards=True"),
        ("stateful", "stateful=True"),
        ("return_state", "return_state=True"),
    ):
        if cfg.get(key):
            raise ExportError(f"{where}: {label} is not supported; use the default (False)")


def recurrent_weights(layer: Any, gates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(kernel [F, G*U], recurrent_kernel [U, G*U], bias or None) as float64."""
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    units = int(layer.get_config()["units"])
    if len(weights) < 2 or weights[0].shape[1] != gates * units:
        shapes = [w.shape for w in weights]
        raise ExportError(f"layer '{layer.name}': unexpected weight shapes {shapes}")
    bias = weights[2] if len(weights) > 2 else None
    return weights[0], weights[1], bias
