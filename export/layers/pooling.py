"""Pooling over time (template layers/pooling.c.j2): ``MaxPooling1D`` / ``AveragePooling1D``
(``padding="valid"``) streaming through a ring of the last ``pool_size`` inputs, and
``GlobalMaxPooling1D`` / ``GlobalAveragePooling1D`` as running reductions in the state.

* ``padding="same"`` windows need later inputs, so such a layer makes the model whole-sequence
  (``--max-length``, ``<name>_run``), as a Conv1D with ``padding="same"``: ``ceil(n / strides)``
  output rows, TensorFlow's split of the padding (the extra step on the right); padded positions
  are no elements of the window: max over the real ones, the mean divided by their count.

* Windowed pooling emits once the ring holds ``pool_size`` inputs and then every ``strides``
  steps (Keras' output i covers input steps i*s .. i*s + pool_size - 1, so it is ready at step
  i*s + pool_size - 1); on the other steps the layers after it do not run and the model's output
  is held (``<name>_step`` returns 0).
* Global pooling emits every step: after step t, the max or the mean over steps 0..t since
  reset, which is Keras' output for the (t+1)-step sequence. After it the tensor has no time
  axis (only per-sequence layers, Dense, may follow).

Integers: the output has the input's quantization (scale, zero point, int8 or int16), so max is
exact and the mean is the integer mean rounded half up, ``floor((2 * sum + n) / (2 * n))``
(the running mean: ``q + (2 * r >= n)`` with ``q, r`` the floor quotient and remainder of
``sum / n``). The running sum and count are int32; the count stops at 2^24 - 1 steps for an
int8 input, 65535 for an int16 one (the sum then stays exact), and the mean is over those first
steps after that: reset before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer, StateField
from rnn2c.export.layers.conv1d import MAX_SPAN, out_len, pad_left, ring_due, ring_push

KERAS_CLASSES = (
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAveragePooling1D",
)
#: the running count of a global average stops here (int8 / int16 input): |sum| < 2^31
COUNT_LIMIT = {8: (1 << 24) - 1, 16: (1 << 16) - 1}


def mean_round(total: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """floor((2 * total + n) / (2 * n)): the integer mean, rounded half up."""
    total = np.asarray(total, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    q = np.floor_divide(total, n)
    r = total - q * n
    return q + (2 * r >= n)


@dataclass
class PoolLayer(FloatLayer):
    """Float MaxPooling1D / AveragePooling1D over a ring of pool_size steps."""

    kind: ClassVar[str] = "pool1d"
    op: str = "max"  # "max" or "average"
    pool: int = 2
    stride: int = 2
    padding: str = "valid"  # "same": a whole-sequence layer

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    @property
    def decimates(self) -> bool:
        return True

    def out_len(self, n: Any) -> Any:
        return pool_len(n, self.pool, self.stride, self.padding)

    def over_time(self, x: np.ndarray, lengths: np.ndarray, obs: Any = None) -> tuple:
        """Whole sequences [N, T, C] -> ([N, T, C] with each sequence's rows first, rows)."""
        g, real_in, m = pool_windows(x, lengths, self.pool, self.stride, self.padding)
        if self.op == "max":
            y = np.where(real_in[..., None], g, -np.inf).max(axis=2)
        else:
            count = np.maximum(real_in.sum(axis=2), 1)[..., None]  # 0 only past the rows
            y = np.where(real_in[..., None], g, 0.0).sum(axis=2) / count
        real = np.arange(x.shape[1])[None, :] < m[:, None]
        return np.where(real[:, :, None], y, 0.0), m

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {
            "ring": np.zeros((batch, self.pool, self.input_size)),
            "ctr": np.zeros((batch, 3), dtype=np.int64),
        }

    def step(self, state, x, obs=None):  # noqa: ANN001
        ring_push(state, state["ring"], x, self.pool)
        if not ring_due(state, self.stride, int(state["ctr"][0, 2]) == self.pool):
            return None
        ring = state["ring"]
        return ring.max(axis=1) if self.op == "max" else ring.mean(axis=1)

    def quantize(self, input_q: ActQuant, obs, method: str, state_bits: int = 8) -> QuantPool:  # noqa: ANN001
        return QuantPool(
            name=self.name,
            input_size=self.input_size,
            output_q=input_q,
            op=self.op,
            pool=self.pool,
            stride=self.stride,
            padding=self.padding,
            input_bits=int(input_q.bits),
        )


@dataclass
class GlobalPoolLayer(FloatLayer):
    """Float GlobalMaxPooling1D / GlobalAveragePooling1D as a running reduction."""

    kind: ClassVar[str] = "gpool1d"
    op: str = "max"

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {
            "acc": np.zeros((batch, self.input_size)),
            "n": np.zeros((batch, 1)),
        }

    def step(self, state, x, obs=None):  # noqa: ANN001
        if self.op == "max":
            first = state["n"] == 0
            state["acc"] = np.where(first, x, np.maximum(state["acc"], x))
            state["n"] = state["n"] + 1
            return state["acc"].copy()
        state["acc"] = state["acc"] + x
        state["n"] = state["n"] + 1
        return state["acc"] / state["n"]

    def quantize(self, input_q: ActQuant, obs, method: str, state_bits: int = 8) -> QuantGlobalPool:  # noqa: ANN001
        return QuantGlobalPool(
            name=self.name,
            input_size=self.input_size,
            output_q=input_q,
            op=self.op,
            input_bits=int(input_q.bits),
        )


def pool_len(n: Any, pool: int, stride: int, padding: str = "valid") -> Any:
    """Keras' output length of pooling over n steps ('same': ceil(n / stride))."""
    return out_len(n, padding, pool, stride)


def pool_windows(
    x: np.ndarray, lengths: np.ndarray, pool: int, stride: int, padding: str = "valid"
) -> tuple:
    """[N, T, pool, C]: the window of every output row (padded positions and rows past a
    sequence's outputs are clipped copies), [N, T, pool]: whether each position is a real input
    (not padding), and the output rows per sequence."""
    n, t = x.shape[:2]
    lens = np.asarray(lengths, dtype=np.int64)
    m = pool_len(lens, pool, stride, padding)
    left = pad_left(lens, padding, pool, stride)
    idx = np.arange(t)[None, :, None] * stride + np.arange(pool)[None, None, :]
    idx = idx - left[:, None, None]
    real = (idx >= 0) & (idx < lens[:, None, None])
    return x[np.arange(n)[:, None, None], np.clip(idx, 0, t - 1)], real, m


def read(layer: Any, input_size: int) -> FloatLayer:
    cls = type(layer).__name__
    cfg = layer.get_config()
    where = f"layer '{layer.name}' ({cls})"
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ExportError(
            f"{where}: data_format={cfg['data_format']!r} is not supported; use 'channels_last'"
        )
    op = "max" if "Max" in cls else "average"
    if cls.startswith("Global"):
        if cfg.get("keepdims"):
            raise ExportError(f"{where}: keepdims=True is not supported; use keepdims=False")
        return GlobalPoolLayer(name=layer.name, input_size=input_size, op=op)
    padding = str(cfg.get("padding", "valid")).lower()  # same: whole-sequence
    if padding not in ("valid", "same"):
        raise ExportError(f"{where}: padding={padding!r} is not supported; use 'valid' or 'same'")
    (pool,) = tuple(np.atleast_1d(cfg.get("pool_size", 2)))
    strides = cfg.get("strides")
    (stride,) = tuple(np.atleast_1d(pool if strides is None else strides))
    if not 1 <= int(pool) <= MAX_SPAN or not 1 <= int(stride) <= MAX_SPAN:
        raise ExportError(
            f"{where}: pool_size={pool}, strides={stride}: each must be 1 to {MAX_SPAN}"
        )
    return PoolLayer(
        name=layer.name,
        input_size=input_size,
        op=op,
        pool=int(pool),
        stride=int(stride),
        padding=padding,
    )


@dataclass
class QuantPool(QuantLayer):
    kind: ClassVar[str] = "pool1d"
    template: ClassVar[str] = "pooling.c.j2"
    output_buffer: ClassVar[bool] = True
    op: str = "max"
    pool: int = 2
    stride: int = 2
    padding: str = "valid"  # "same": a whole-sequence layer (run only)
    input_bits: int = 8
    whole: bool = False  # in a whole-sequence model: run over buffers, no ring in the state

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def changes_length(self) -> bool:
        return self.stride > 1 or self.padding == "valid"

    def out_len(self, n: Any) -> Any:
        return pool_len(n, self.pool, self.stride, self.padding)

    def over_time(self, x: np.ndarray, lengths: np.ndarray, obs: Any = None) -> tuple:
        """Integer whole-sequence pass (rnn2c_pool_seq_*): max over the real (unpadded)
        inputs of each window, or their mean rounded half up over their count."""
        x = np.asarray(x, dtype=np.int64)
        g, real_in, m = pool_windows(x, lengths, self.pool, self.stride, self.padding)
        if self.op == "max":
            y = np.where(real_in[..., None], g, np.iinfo(np.int64).min).max(axis=2)
        else:
            total = np.where(real_in[..., None], g, 0).sum(axis=2)
            y = mean_round(total, np.maximum(real_in.sum(axis=2), 1)[..., None])
        real = np.arange(x.shape[1])[None, :] < m[:, None]
        return np.where(real[:, :, None], y, 0), m

    @property
    def units(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    @property
    def decimates(self) -> bool:
        return True

    @property
    def ctype(self) -> str:
        return "int16_t" if self.input_bits == 16 else "int8_t"

    def emitted(self, n: int) -> int:
        """Outputs for n input steps since reset: once pool inputs are in, every stride steps
        ('same', whole-sequence: ceil(n / stride))."""
        return int(self.out_len(n))

    def state_fields(self) -> list[StateField]:
        if self.whole:
            return []
        return [
            StateField(
                "ring", self.ctype, self.pool * self.input_size, f"the last {self.pool} inputs"
            ),
            StateField("ctr", "int16_t", 3, "ring: next slot, steps mod stride, inputs held"),
        ]

    def raw_parameters(self) -> int:
        return 0

    def weight_bytes(self) -> int:
        return 0

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {
            "ring": np.zeros((batch, self.pool, self.input_size), dtype=np.int64),
            "ctr": np.zeros((batch, 3), dtype=np.int64),
        }

    def step(self, state, x):  # noqa: ANN001
        ring_push(state, state["ring"], x, self.pool)
        if not ring_due(state, self.stride, int(state["ctr"][0, 2]) == self.pool):
            return None
        ring = state["ring"]
        if self.op == "max":
            return ring.max(axis=1)
        return mean_round(ring.sum(axis=1), self.pool)


@dataclass
class QuantGlobalPool(QuantLayer):
    kind: ClassVar[str] = "gpool1d"
    template: ClassVar[str] = "pooling.c.j2"
    output_buffer: ClassVar[bool] = True
    op: str = "max"
    input_bits: int = 8

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def units(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    @property
    def ctype(self) -> str:
        return "int16_t" if self.input_bits == 16 else "int8_t"

    @property
    def count_limit(self) -> int:
        return COUNT_LIMIT[self.input_bits]

    def state_fields(self) -> list[StateField]:
        if self.op == "max":
            return [
                StateField("max", self.ctype, self.input_size, "running max since reset"),
                StateField("n", "int16_t", 1, "1 once a step was seen"),
            ]
        return [
            StateField("sum", "int32_t", self.input_size, "running sum since reset"),
            StateField("n", "int32_t", 1, f"steps summed (stops at {self.count_limit})"),
        ]

    def raw_parameters(self) -> int:
        return 0

    def weight_bytes(self) -> int:
        return 0

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        if self.op == "max":
            return {
                "max": np.zeros((batch, self.input_size), dtype=np.int64),
                "n": np.zeros((batch, 1), dtype=np.int64),
            }
        return {
            "sum": np.zeros((batch, self.input_size), dtype=np.int64),
            "n": np.zeros((batch, 1), dtype=np.int64),
        }

    def step(self, state, x):  # noqa: ANN001
        x = np.asarray(x, dtype=np.int64)
        if self.op == "max":
            state["max"] = np.where(state["n"] == 0, x, np.maximum(state["max"], x))
            state["n"] = np.ones_like(state["n"])
            return state["max"].copy()
        if int(state["n"][0, 0]) < self.count_limit:
            state["sum"] = state["sum"] + x
            state["n"] = state["n"] + 1
        return mean_round(state["sum"], state["n"])
