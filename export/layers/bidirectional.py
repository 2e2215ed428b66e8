"""Whole-sequence layers: Keras ``Bidirectional`` around GRU, LSTM or SimpleRNN, and a plain
recurrent layer with ``go_backwards=True`` (template layers/bidirectional.c.j2).

They need the whole sequence before their first output (the backward direction starts at the
last step), so a model holding one is exported with a maximum length and run through
``<name>_run`` layer by layer: each layer over every step of the sequence, its outputs kept in a
buffer of the state struct. The recurrent cells are the existing ones (their float steps,
quantizer rules, integer steps and C kernels); this module only orders the steps and merges the
two directions.

Integer merge of the two int8 (or int16) directions f and b, one output scale. Both directions
share one state scale s: 1/128 (int16: 1/32768) for tanh cells; for activation='relu' cells
2^k/128 (2^k/32768), k the larger of the two directions' calibrated state shifts, imposed on
both cells. The integers do not depend on k, only the scales do:

* ``concat``: [f; b] at s;
* ``sum``: (f + b + 1) >> 1 at 2 s;
* ``ave``: (f + b + 1) >> 1 at s (the same integers as ``sum``);
* ``mul``: (f * b + 2^(n-1)) >> n with n = 7 (int8) or 15 (int16), saturated, at 2^k s (the
  product of two values in [-2^k, 2^k) lies in [-2^2k, 2^2k]: only (-2^n)^2 saturates).

A go_backwards layer's output scale is its cell's (s, with the cell's own k).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import (
    ActQuant,
    ExportError,
    FloatLayer,
    QuantLayer,
    StateField,
    fold_affine,
    state_quant,
)
from rnn2c.export.layers import gru, lstm, simple_rnn

KERAS_CLASSES = ("Bidirectional",)
MERGE_MODES = ("concat", "sum", "ave", "mul")
#: the recurrent layers a Bidirectional wraps: Keras class -> the module that reads it
CELL_READERS = {"GRU": gru, "LSTM": lstm, "SimpleRNN": simple_rnn}


def _reverse_index(lengths: np.ndarray, t: int) -> np.ndarray:
    """[N, T] index s -> L_n - 1 - s inside each sequence's real length (0 past it): the gather
    that reverses every sequence in place (its own inverse)."""
    s = np.arange(t)[None, :]
    lens = np.asarray(lengths)[:, None]
    return np.where(s < lens, lens - 1 - s, 0)


def gather_steps(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    return x[np.arange(x.shape[0])[:, None], index]


def over_sequence(
    cell: Any,
    x: np.ndarray,
    lengths: np.ndarray,
    obs: Any = None,
    reverse: bool = False,
    key: str = "",
) -> np.ndarray:
    """Run a per-step layer (float or quantized) over [N, T, F] sequences of the given real
    lengths; ``reverse`` feeds each sequence from its last real step to its first. Returns the
    outputs in processing order [N, T, out] (rows past a length are not meaningful)."""
    n, t, _ = x.shape
    xs = gather_steps(x, _reverse_index(lengths, t)) if reverse else x
    state = cell.init_state(n)
    out: np.ndarray | None = None
    prefix = obs.prefix if obs is not None else ""
    for s in range(t):
        running = lengths > s
        if not running.any():
            break
        if obs is not None:
            obs.mask = running
            obs.prefix = prefix + key
            y = cell.step(state, xs[:, s], obs)
            if getattr(cell, "cell_act", "tanh") != "tanh" or getattr(cell, "gate_act", "") == (
                "linear"
            ):
                obs.observe("state", y)  # the relu state shift; see quantize._saturation_notes
        else:
            y = cell.step(state, xs[:, s])
        if out is None:
            out = np.zeros((n, t, y.shape[1]), dtype=y.dtype)
        out[:, s] = y
    if obs is not None:
        obs.prefix = prefix
    assert out is not None
    return out


def last_rows(y: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return y[np.arange(y.shape[0]), np.asarray(lengths) - 1]


class _Sequence:
    """What the float and quantized whole-sequence layers share."""

    forward: Any
    backward: Any
    merge: str
    return_sequences: bool

    def cells(self) -> list[tuple[str, Any]]:
        return [(k, c) for k, c in (("fw", self.forward), ("bw", self.backward)) if c is not None]

    @property
    def units(self) -> int:
        return int(self.cells()[0][1].units)

    @property
    def output_size(self) -> int:
        return 2 * self.units if self.merge == "concat" else self.units

    @property
    def macs(self) -> int:
        return sum(c.macs for _, c in self.cells())

    @property
    def cell_label(self) -> str:
        return str(self.cells()[0][1].kind)

    def run_sequence(self, x: np.ndarray, lengths: np.ndarray, obs: Any = None) -> np.ndarray:
        """[N, T, F] -> [N, T, out]: every step (Keras order) with return_sequences, else the
        final output in each sequence's last real row."""
        t = x.shape[1]
        if self.forward is None:  # go_backwards: outputs in processing order, as Keras gives
            y = over_sequence(self.backward, x, lengths, obs, True, "bw.")
            return y if self.return_sequences else self._final(y, lengths)
        f = over_sequence(self.forward, x, lengths, obs, False, "fw.")
        b = over_sequence(self.backward, x, lengths, obs, True, "bw.")
        if self.return_sequences:  # align the backward outputs with time
            return self.combine(f, gather_steps(b, _reverse_index(lengths, t)))
        return self._final(self.combine(f, b), lengths)

    @staticmethod
    def _final(y: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        out = np.zeros_like(y)
        idx = np.asarray(lengths) - 1
        out[np.arange(y.shape[0]), idx] = y[np.arange(y.shape[0]), idx]
        return out

    def combine(self, f: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass
class SequenceLayer(_Sequence, FloatLayer):
    """Float: a Bidirectional wrapper (forward and backward cells) or a go_backwards cell
    (forward None, merge 'none')."""

    kind: ClassVar[str] = "bidir"
    forward: FloatLayer | None = None
    backward: FloatLayer | None = None
    merge: str = "concat"
    return_sequences: bool = True

    def combine(self, f: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.merge == "concat":
            return np.concatenate([f, b], axis=-1)
        if self.merge == "sum":
            return f + b
        if self.merge == "ave":
            return (f + b) / 2.0
        return f * b

    def fold_input_affine(self, a: np.ndarray, b: np.ndarray) -> None:
        for _, cell in self.cells():
            fold_affine(cell, a, b)

    def state_shift(self, obs: Any) -> int:
        """The relu state shift k both directions share: the larger calibrated one (0 for
        tanh cells)."""
        return max(c.state_shift(_Prefixed(obs, k + ".")) for k, c in self.cells())  # type: ignore[attr-defined]

    def quantize(
        self, input_q: ActQuant, obs: Any, method: str, state_bits: int = 8
    ) -> QuantSequence:
        k = self.state_shift(obs)
        sub = {}
        for key, cell in self.cells():
            sub[key] = cell.quantize(  # type: ignore[attr-defined]
                input_q, _Prefixed(obs, key + "."), method, state_bits, state_shift=k
            )
        s = state_quant(state_bits).scale * 2.0**k  # the cells' state scale
        factor = {"sum": 2.0, "mul": 2.0**k}.get(self.merge, 1.0)
        out_q = ActQuant(s * factor, 0, state_bits)
        return QuantSequence(
            name=self.name,
            input_size=self.input_size,
            output_q=out_q,
            forward=sub.get("fw"),
            backward=sub.get("bw"),
            merge=self.merge,
            return_sequences=self.return_sequences,
        )


class _Prefixed:
    def __init__(self, obs: Any, prefix: str) -> None:
        self.obs, self.prefix = obs, prefix

    def get(self, key: str) -> np.ndarray:
        return self.obs.get(self.prefix + key)


@dataclass
class QuantSequence(_Sequence, QuantLayer):
    """Quantized whole-sequence layer: its cells are ordinary quantized recurrent layers."""

    kind: ClassVar[str] = "bidir"
    template: ClassVar[str] = "bidirectional.c.j2"
    forward: QuantLayer | None = None
    backward: QuantLayer | None = None
    merge: str = "concat"
    return_sequences: bool = True

    @property
    def state_bits(self) -> int:
        return int(self.cells()[0][1].state_bits)

    def state_fields(self) -> list[StateField]:
        return [
            StateField(f"{k}_{f.name}", f.ctype, f.length, f"{k} direction: {f.comment}")
            for k, c in self.cells()
            for f in c.state_fields()
        ]

    def scratch(self) -> tuple[int, int, int]:
        parts = [c.scratch() for _, c in self.cells()]
        return tuple(max(p[i] for p in parts) for i in range(3))  # type: ignore[return-value]

    def weight_bytes(self) -> int:
        return sum(c.weight_bytes() for _, c in self.cells())

    def raw_parameters(self) -> int:
        return sum(c.raw_parameters() for _, c in self.cells())

    def arrays(self) -> dict[str, np.ndarray]:
        cells = (("forward", self.forward), ("backward", self.backward))
        return {f"{k}.{a}": v for k, c in cells if c is not None for a, v in c.arrays().items()}

    def scalars(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "input_size": self.input_size,
            "output_q": self.output_q.to_json(),
            "merge": self.merge,
            "return_sequences": self.return_sequences,
        }
        for key, cell in (("forward", self.forward), ("backward", self.backward)):
            out[key] = None if cell is None else {**cell.scalars(), "kind": cell.kind}
        return out

    def combine(self, f: np.ndarray, b: np.ndarray) -> np.ndarray:
        return merge_int(self.merge, f, b, self.state_bits)


def merge_int(merge: str, f: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """The integer merge of the C (see the module doc)."""
    f, b = np.asarray(f, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if merge == "concat":
        return np.concatenate([f, b], axis=-1)
    if merge in ("sum", "ave"):
        return (f + b + 1) >> 1
    k = 7 if bits == 8 else 15
    return fx.sat((f * b + (1 << (k - 1))) >> k, bits)


def read(layer: Any, input_size: int) -> SequenceLayer:
    """Keras Bidirectional(GRU | LSTM | SimpleRNN) -> SequenceLayer."""
    where = f"layer '{layer.name}' (Bidirectional)"
    merge = layer.get_config().get("merge_mode")
    if merge not in MERGE_MODES:
        raise ExportError(
            f"{where}: merge_mode={merge!r} is not supported; use one of "
            f"{', '.join(repr(m) for m in MERGE_MODES)}"
        )
    cells = []
    for sub, backwards in ((layer.forward_layer, False), (layer.backward_layer, True)):
        cls = type(sub).__name__
        if bool(sub.get_config().get("go_backwards")) != backwards:
            raise ExportError(
                f"{where}: a wrapped layer with go_backwards=True (the forward direction reading "
                "backwards) is not supported; wrap the layer with go_backwards=False"
            )
        if cls not in CELL_READERS:
            raise ExportError(
                f"{where}: Bidirectional({cls}) is not supported; wrap GRU, LSTM or SimpleRNN"
            )
        cells.append(CELL_READERS[cls].read(sub, input_size))
    fw, bw = cells
    if fw.units != bw.units:
        raise ExportError(
            f"{where}: the two directions have {fw.units} and {bw.units} units; rnn2c needs "
            "the same units in both"
        )
    return SequenceLayer(
        name=layer.name,
        input_size=input_size,
        forward=fw,
        backward=bw,
        merge=merge,
        return_sequences=bool(layer.return_sequences),
    )


def wrap_go_backwards(layer: Any, ir_layer: FloatLayer) -> FloatLayer:
    """A plain recurrent layer with go_backwards=True becomes a whole-sequence layer that runs
    its cell from the last step to the first (outputs in that order, as Keras gives them)."""
    if not layer.get_config().get("go_backwards"):
        return ir_layer
    return SequenceLayer(
        name=ir_layer.name,
        input_size=ir_layer.input_size,
        forward=None,
        backward=ir_layer,
        merge="none",
        return_sequences=bool(layer.get_config().get("return_sequences", False)),
    )


def run_layers(
    layers: list[Any],
    sequence_out: list[bool],
    x: np.ndarray,
    lengths: np.ndarray | None,
    obs: Any = None,
    narrow16: bool = False,
) -> np.ndarray:
    """Layer by layer over whole sequences (how <name>_run computes a whole-sequence model):
    [N, T, F] -> [N, T, out], every real output row when the model returns sequences, else the
    final output in each sequence's last real row (zeros elsewhere). Float layers with an
    observer (calibration), or quantized layers on int64 (the integer reference). After a
    RepeatVector the rows are its n, [N, max(T, n), out]."""
    n, t, _ = x.shape
    lens = np.full(n, t) if lengths is None else np.asarray(lengths)
    h, cur = x, lens
    seq = True
    for i, layer in enumerate(layers):
        if obs is not None:
            obs.prefix = f"{i}."
        if isinstance(layer, _Sequence):
            h = layer.run_sequence(h, cur, obs)
        elif hasattr(layer, "over_time"):  # Conv1D, pooling: the rows per sequence change
            h, cur = layer.over_time(h, cur, obs)
        else:
            h = over_sequence(layer, h, cur, obs)
        if obs is not None:
            obs.prefix = ""
        if seq and not sequence_out[i]:  # from here on one vector per sequence
            h = last_rows(h, cur)[:, None]
            cur = np.ones(n, dtype=np.int64)
            seq = False
        seq = seq or bool(sequence_out[i])  # a RepeatVector: rows again
    if obs is not None:
        obs.mask = None
    if narrow16:
        h = fx.q15_to_state(h)
    if h.dtype != np.float64 and not np.issubdtype(h.dtype, np.floating):
        h = h.astype(np.int64)
    if seq:
        rows = max(t, h.shape[1])  # more than T: a RepeatVector's n rows
        h = np.concatenate([h, np.zeros((n, rows - h.shape[1], h.shape[2]), h.dtype)], axis=1)
        real = np.arange(rows)[None, :] < cur[:, None]
        return np.where(real[:, :, None], h, 0)
    out = np.zeros((n, t, h.shape[-1]), dtype=h.dtype)
    out[np.arange(n), lens - 1] = h[:, 0]
    return out
