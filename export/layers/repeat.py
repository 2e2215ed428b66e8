"""RepeatVector (template layers/repeat.c.j2): the classic encoder-decoder without attention,
``encoder (return_sequences=False) -> RepeatVector(n) -> decoder (return_sequences=True) ->
TimeDistributed(Dense)`` (the Keras "addition" example).

The layer reads one vector (the output of a recurrent layer without return_sequences, or of a
Dense or global pooling after one) and gives n rows, each a copy of it. A model holding one is
whole-sequence (``<name>_run`` only): the layers before the repeat run over the input's
``length`` rows, the layers after it over n rows, whatever the length
(``<NAME>_OUTPUT_ROWS(length)`` is n).

Nothing is computed or stored: the layer after the repeat reads the one vector at each of its n
rows (no [n x width] copy in the state), and the output keeps the input's quantization (no
requantization; int8 or int16 alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer

KERAS_CLASSES = ("RepeatVector",)
#: the most rows a RepeatVector may give (the decoder's buffers in the state are n rows long)
MAX_REPEAT = 1_000_000


def repeat_rows(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One vector per sequence [N, 1, F] (a vector's row) -> ([N, n, F] copies, n rows each)."""
    return np.repeat(x[:, :1], n, axis=1), np.full(x.shape[0], n, dtype=np.int64)


@dataclass
class RepeatLayer(FloatLayer):
    """Float RepeatVector: n copies of the input vector."""

    kind: ClassVar[str] = "repeat"
    n: int = 1

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    def out_len(self, n: Any) -> int:
        return self.n

    def over_time(self, x: np.ndarray, lengths: np.ndarray, obs: Any = None) -> tuple:
        return repeat_rows(x, self.n)

    def quantize(self, input_q: ActQuant, obs, method: str, state_bits: int = 8) -> QuantRepeat:  # noqa: ANN001
        return QuantRepeat(
            name=self.name,
            input_size=self.input_size,
            output_q=input_q,
            n=self.n,
            input_bits=int(input_q.bits),
        )


def read(layer: Any, input_size: int) -> RepeatLayer:
    n = layer.get_config().get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPEAT:
        raise ExportError(
            f"layer '{layer.name}' (RepeatVector): n={n!r} is not supported; use 1 to {MAX_REPEAT}"
        )
    return RepeatLayer(name=layer.name, input_size=input_size, n=n)


@dataclass
class QuantRepeat(QuantLayer):
    kind: ClassVar[str] = "repeat"
    template: ClassVar[str] = "repeat.c.j2"
    n: int = 1
    input_bits: int = 8

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    @property
    def changes_length(self) -> bool:
        return True

    def out_len(self, n: Any) -> int:
        return self.n

    def emitted(self, n: int) -> int:
        """The rows the layers after it run over, whatever the input's length."""
        return self.n

    def over_time(self, x: np.ndarray, lengths: np.ndarray, obs: Any = None) -> tuple:
        """Integer pass: the same copies (the integers are the input's)."""
        return repeat_rows(x, self.n)

    def raw_parameters(self) -> int:
        return 0

    def weight_bytes(self) -> int:
        return 0
