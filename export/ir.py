"""The intermediate representation: small typed dataclasses for layers and models.

Data flows one way: a Keras model is read into a float :class:`ModelIR`; the quantizer turns it
into a :class:`QuantModel` (int8 tensors, fixed-point multipliers); the renderer turns that into
C. Each layer kind lives in one module of ``rnn2c.export.layers`` and brings its float layer
(reader output, float step), its quantizer rule, its integer step (the reference the C must equal
bit for bit) and the name of its template block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


class ExportError(ValueError):
    """A model, calibration set or option that rnn2c cannot export; the message is one line."""


@dataclass(frozen=True)
class ActQuant:
    """Affine quantization of an activation vector: real = scale * (q - zero_point).

    bits is 8 (int8) or 16 (int16, the hidden states with --activations int16). scale and
    zero_point are scalars, except for a model input quantized per feature
    (--input-quant per-feature), where they are arrays with one entry per feature.
    """

    scale: Any
    zero_point: Any
    bits: int = 8

    @property
    def per_feature(self) -> bool:
        return np.ndim(self.scale) > 0

    def to_json(self) -> dict[str, Any]:
        if self.per_feature:
            return {
                "scale": [float(s) for s in self.scale],
                "zero_point": [int(z) for z in self.zero_point],
                "bits": self.bits,
            }
        return {"scale": float(self.scale), "zero_point": int(self.zero_point), "bits": self.bits}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ActQuant:
        if isinstance(d["scale"], list):
            return cls(
                np.asarray(d["scale"], dtype=np.float64),
                np.asarray(d["zero_point"], dtype=np.int64),
                int(d.get("bits", 8)),
            )
        return cls(float(d["scale"]), int(d["zero_point"]), int(d.get("bits", 8)))

    @property
    def inv_scale(self) -> Any:
        """1/scale rounded to float32: the constant the C helper <name>_quantize_input uses."""
        return np.asarray(1.0 / np.asarray(self.scale, dtype=np.float64)).astype(np.float32)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """float -> int, exactly as the generated C helper does it, in float32:
        t = x * inv_scale (one float32 multiply), rounded half away from zero, plus the zero
        point, saturated. NaN maps to the zero point (real 0); +-inf saturate."""
        t = np.asarray(x, dtype=np.float32) * self.inv_scale
        nan = np.isnan(t)
        t = np.clip(np.where(nan, np.float32(0), t), np.float32(-65536), np.float32(65536))
        whole = np.trunc(t)
        frac = t - whole  # exact in float32 for |t| <= 2^16
        r = whole.astype(np.int64) + (frac >= 0.5) - (frac <= -0.5)
        q = r + np.asarray(self.zero_point, dtype=np.int64)
        q = np.where(nan, np.asarray(self.zero_point, dtype=np.int64), q)
        lo, hi = -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return np.clip(q, lo, hi).astype(np.int8 if self.bits == 8 else np.int16)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


#: the Q0.7 int8 hidden state of recurrent layers (the default)
STATE_QUANT = ActQuant(1.0 / 128.0, 0)
#: the Q0.15 int16 hidden state with --activations int16
STATE_QUANT16 = ActQuant(1.0 / 32768.0, 0, 16)
ACTIVATION_TYPES = ("int8", "int16")


def state_quant(state_bits: int) -> ActQuant:
    return STATE_QUANT16 if state_bits == 16 else STATE_QUANT


class Observer:
    """Collects the values a float forward pass produces, per (layer, tensor) key.

    Values are kept only for the batch rows whose sequence is still running (mask), and
    subsampled past ``limit`` values per key so memory stays bounded.
    """

    def __init__(self, limit: int = 2_000_000, seed: int = 0) -> None:
        self.values: dict[str, list[np.ndarray]] = {}
        self.counts: dict[str, int] = {}
        self.limit = limit
        self.rng = np.random.default_rng(seed)
        self.mask: np.ndarray | None = None
        self.prefix = ""
        #: per tensor key, the calibration method that overrides the one a layer is given
        #: (--calibration auto: export/calib_auto.py); empty: every tensor takes that one
        self.methods: dict[str, str] = {}
        #: the range-bearing keys the quantizer asked for, in the order it asked (data flow)
        self.asked: list[str] = []
        #: (key, method) -> calibrated range, so that repeated quantizations choose it once
        self.ranges: dict[tuple[str, str], tuple[float, float]] = {}

    def observe(self, key: str, x: np.ndarray) -> None:
        v = np.asarray(x, dtype=np.float32)
        if self.mask is not None:
            v = v[self.mask]
        v = v.reshape(-1)
        full = self.prefix + key
        n = self.counts.get(full, 0)
        if n >= self.limit:
            v = v[self.rng.random(v.size) < 0.1]
        self.values.setdefault(full, []).append(v)
        self.counts[full] = n + v.size

    def get(self, key: str) -> np.ndarray:
        parts = self.values.get(key)
        if not parts:
            return np.zeros(1, dtype=np.float32)
        return np.concatenate(parts)

    def method_for(self, key: str, method: str) -> str:
        """The calibration method of tensor ``key`` (full key), which the quantizer asks for:
        an override from ``methods``, else ``method``; the key is recorded in ``asked``."""
        if key not in self.asked:
            self.asked.append(key)
        return self.methods.get(key, method)


@dataclass
class FloatLayer:
    """Base of the float layers the reader produces. Subclasses set ``kind``."""

    kind: ClassVar[str] = ""
    name: str
    input_size: int

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    @property
    def macs(self) -> int:
        raise NotImplementedError

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {}

    def step(
        self, state: dict[str, np.ndarray], x: np.ndarray, obs: Observer | None = None
    ) -> np.ndarray:
        """One time step on a batch x [B, input_size] (float64); updates state in place."""
        raise NotImplementedError

    def quantize(
        self, input_q: ActQuant, obs: Observer, method: str, state_bits: int = 8
    ) -> QuantLayer:
        """The quantizer rule: input quantization in, quantized layer out."""
        raise NotImplementedError


CTYPE_BYTES = {"int8_t": 1, "int16_t": 2, "int32_t": 4}


@dataclass
class StateField:
    """One array of a layer's persistent state in the C struct."""

    name: str
    ctype: str  # "int8_t", "int16_t" or "int32_t"
    length: int
    comment: str
    scalar: bool = False  # one value, not an array (length 1)

    @property
    def nbytes(self) -> int:
        return self.length * CTYPE_BYTES[self.ctype]


@dataclass
class QuantLayer:
    """Base of the quantized layers. Array fields are saved to the .npz next to the C."""

    kind: ClassVar[str] = ""
    template: ClassVar[str] = ""
    name: str
    input_size: int
    output_q: ActQuant = field(repr=False)

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    @property
    def macs(self) -> int:
        raise NotImplementedError

    def state_fields(self) -> list[StateField]:
        return []

    def scratch(self) -> tuple[int, int, int]:
        """(int32 words, int8 bytes, int16 words) of stack scratch one step needs."""
        return (0, 0, 0)

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {f.name: np.zeros((batch, f.length), dtype=np.int64) for f in self.state_fields()}

    def step(self, state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """Integer reference of one step on int64 arrays [B, input_size]; mirrors the C."""
        raise NotImplementedError

    def weight_bytes(self) -> int:
        """Bytes of const data (weights, biases, multipliers, shifts) this layer puts in flash."""
        return sum(v.nbytes for v in self.arrays().values())

    def raw_parameters(self) -> int:
        """1 byte per int8 weight + 4 per int32 bias the C stores (padding not counted)."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the layer, nested weight matrices flattened as 'input.weight'."""
        out: dict[str, np.ndarray] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                out[f.name] = v
            elif dataclasses.is_dataclass(v) and not isinstance(v, type | ActQuant):
                for g in dataclasses.fields(v):
                    out[f"{f.name}.{g.name}"] = getattr(v, g.name)
        return out

    def scalars(self) -> dict[str, Any]:
        """Every non-array field as JSON-ready values (the arrays are in arrays())."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, ActQuant):
                out[f.name] = v.to_json()
            elif not isinstance(v, np.ndarray) and not dataclasses.is_dataclass(v):
                out[f.name] = v
        return out


@dataclass
class ModelIR:
    """A float model: a chain of per-step layers."""

    layers: list[FloatLayer]
    input_size: int
    source: str = ""
    #: per layer: whether its output still has a time axis (Keras return_sequences)
    sequence_out: list[bool] = field(default_factory=list)
    #: an Embedding front end (layers/embedding.py): the input is one id per step; None: rows
    embedding: Any = None
    #: a graph of parallel branches (graph.py): per layer the layers it reads, -1 the model
    #: input (-1 - k: input k of a multi-input model), in the order they run; empty: a chain
    inputs: list[list[int]] = field(default_factory=list)
    #: a Masking(mask_value) first layer: the value of padding steps (data.mask_lengths); None
    mask_value: float | None = None
    #: a multi-input model (graph.py): its Keras Input names (as C identifiers) and feature
    #: counts, in the model's input order; the model input is their rows side by side.
    #: Empty: one input
    input_names: list[str] = field(default_factory=list)
    input_sizes: list[int] = field(default_factory=list)
    #: what the reader decided, for the user (the export's notes; the ONNX reader's axes)
    notes: list[str] = field(default_factory=list)

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    def float_input(self, x: np.ndarray) -> np.ndarray:
        """The float rows the first layer reads: x itself, or a token model's ids [N, T] looked
        up in its Embedding table."""
        return x if self.embedding is None else self.embedding.rows(x)

    @property
    def whole_sequence(self) -> bool:
        """Whether a layer needs the whole sequence (Bidirectional, go_backwards, a Conv1D with
        padding 'valid' or 'same', pooling with padding 'same', RepeatVector)."""
        return any(needs_whole_sequence(layer) for layer in self.layers)

    @property
    def needs_max_length(self) -> bool:
        """Whether --max-length must be given (see :func:`needs_max_length`)."""
        return needs_max_length(self.layers, self.sequence_out)


def input_offsets(sizes: list[int]) -> list[int]:
    """Where each input of a multi-input model starts in the row of all inputs side by side."""
    return [int(v) for v in np.cumsum([0, *sizes[:-1]])] if sizes else []


# A graph of parallel branches (graph.py): ``ModelIR.inputs`` / ``QuantModel.inputs`` list, per
# layer, the producers it reads: a layer index, or a negative index for a model input.

#: the model input, as a layer index in ``inputs`` (input k of several: MODEL_INPUT - k)
MODEL_INPUT = -1


def model_input(k: int) -> int:
    """The producer index of model input k (-1 for the first, and for a one-input model)."""
    return MODEL_INPUT - k


def input_number(producer: int) -> int:
    """Which model input a negative producer index stands for (0 for -1)."""
    return MODEL_INPUT - producer


def gather(inputs: list[int], outs: list[Any], x: Any, sizes: list[int] | None = None) -> Any:
    """A layer's input at one step: its producer's output, or its producers' outputs
    concatenated (a merge), from the outputs so far and the model input x (of a model with
    several inputs of ``sizes`` features: their rows side by side, input k read as its slice)."""
    bounds = np.cumsum([0, *sizes]) if sizes else None

    def source(i: int) -> Any:
        if i >= 0:
            return outs[i]
        if bounds is None:
            return x
        k = input_number(i)
        return x[..., int(bounds[k]) : int(bounds[k + 1])]

    parts = [source(i) for i in inputs]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)


def consumers(inputs: list[list[int]], index: int) -> list[int]:
    """The layers that read layer ``index`` (-1: the model input)."""
    return [i for i, ins in enumerate(inputs) if index in ins]


def needs_whole_sequence(layer: Any) -> bool:
    """A layer whose outputs need later inputs: Bidirectional, go_backwards, a Conv1D with
    padding 'valid' or 'same', windowed pooling with padding 'same', or a RepeatVector (its rows
    follow the whole encoded input)."""
    if layer.kind == "pool1d":
        return layer.padding == "same"
    if layer.kind == "repeat":
        return True
    return layer.kind == "bidir" or getattr(layer, "padding", "causal") != "causal"


def repeat_index(layers: list[Any]) -> int | None:
    """The position of the model's RepeatVector, None without one."""
    return next((i for i, layer in enumerate(layers) if layer.kind == "repeat"), None)


def needs_max_length(layers: list[Any], sequence_out: list[bool]) -> bool:
    """Whether a whole-sequence model needs --max-length: its state holds buffers of a row per
    input step. With a RepeatVector, only when a layer before it returns sequences (the layers
    after it have n rows; a lone encoder without return_sequences keeps one row)."""
    if not any(needs_whole_sequence(layer) for layer in layers):
        return False
    r = repeat_index(layers)
    return r is None or any(sequence_out[:r])


def rows_out(layers: list[Any], sequence_out: list[bool], n: int) -> int:
    """Output rows of a whole-sequence pass over n steps (a strided or unpadded Conv1D, windowed
    pooling change the length; 1 once a layer returns no sequence; a RepeatVector's n after it;
    0 once a layer gets none)."""
    for i, layer in enumerate(layers):
        out_len = getattr(layer, "out_len", None)
        if out_len is not None and n > 0:
            n = int(out_len(n))
        if not sequence_out[i] and n > 0:
            n = 1
    return n


def shortest_length(layers: list[Any], sequence_out: list[bool], limit: int) -> int:
    """The shortest sequence (up to limit) that gives every layer at least one row."""
    seq = sequence_out or [True] * len(layers)
    for n in range(1, max(limit, 1) + 1):
        if rows_out(layers, seq, n) > 0:
            return n
    return max(limit, 1)


@dataclass
class QuantModel:
    """A quantized model: int8 input and output quantization and the quantized layers."""

    layers: list[QuantLayer]
    input_q: ActQuant
    input_size: int
    calibration: str = "minmax"
    source: str = ""
    activations: str = "int8"
    input_quant: str = "per-tensor"
    notes: list[str] = field(default_factory=list)  # what the quantizer decided, for the user
    #: per layer: whether its output still has a time axis (empty: written before 0.3)
    sequence_out: list[bool] = field(default_factory=list)
    #: --max-length: the longest sequence <name>_run takes (None: no limit, causal models only)
    max_length: int | None = None
    #: a QuantEmbedding front end (token models: <name>_step_token, <name>_run_tokens), else None
    embedding: Any = None
    #: a graph of parallel branches: per layer the layers it reads (-1: the model input, -1 - k:
    #: input k of a multi-input model); empty for a chain
    inputs: list[list[int]] = field(default_factory=list)
    #: a Masking(mask_value) first layer: padding steps hold it (data.mask_lengths); None
    mask_value: float | None = None
    #: a multi-input model: its inputs' C names and feature counts, in input order (the model
    #: input is their rows side by side; input_q holds one scale per feature); empty: one input
    input_names: list[str] = field(default_factory=list)
    input_sizes: list[int] = field(default_factory=list)
    #: k raw samples per model step (a framed model, `rnn2c train --frame`): each input row is k
    #: samples of input_size / k features, sample-major; 1: unframed
    samples_per_step: int = 1
    #: an audio front end (export/audio.py, LogMel.to_json()) computed in the C by
    #: <name>_push_audio, whose int8 features are the model input (scale 1, zero point 0); None
    frontend: dict[str, Any] | None = None

    @property
    def vocab(self) -> int | None:
        """Token models: the number of ids the Embedding takes (0..vocab-1); else None."""
        return None if self.embedding is None else int(self.embedding.vocab)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """The int8 rows <name>_step reads: float rows quantized with input_q, or a token
        model's ids [N, T] looked up in its int8 table (what <name>_step_token does)."""
        if self.embedding is not None:
            return self.embedding.rows(x)
        return self.input_q.quantize(x)

    @property
    def whole_sequence(self) -> bool:
        """Whether a layer needs the whole sequence (Bidirectional, go_backwards, a Conv1D with
        padding 'valid' or 'same', pooling with padding 'same'): such a model has <name>_run and
        no <name>_step."""
        return any(needs_whole_sequence(layer) for layer in self.layers)

    @property
    def returns_sequences(self) -> bool:
        """Whether the model's output has a time axis (then <name>_run writes every step)."""
        return bool(self.sequence_out[-1]) if self.sequence_out else False

    @property
    def output_q(self) -> ActQuant:
        """The int8 model output (an int16 last state is narrowed by 8 bits: Q0.15 -> Q0.7)."""
        q = self.layers[-1].output_q
        return ActQuant(float(q.scale) * 256.0, 0) if q.bits == 16 else q

    def sequence_buffers(self) -> list[tuple[int, StateField]]:
        """Whole-sequence models: the buffers of the state struct that hold each layer's output
        for <name>_run, [max_length x width] (one row after a layer without return_sequences;
        after a RepeatVector, n rows; the RepeatVector itself has none: the layer after it reads
        its input vector at every row)."""
        if not self.whole_sequence:
            return []
        out = []
        seq = True
        cap = self.max_length  # the rows of a sequence: the input's, then a RepeatVector's n
        for i, layer in enumerate(self.layers):
            if layer.kind == "repeat":
                seq, cap = True, int(layer.n)  # type: ignore[attr-defined]
                continue
            seq = seq and bool(self.sequence_out[i])
            rows = cap if seq else 1
            assert rows is not None, "a whole-sequence model with row buffers needs max_length"
            ctype = "int16_t" if layer.output_q.bits == 16 else "int8_t"
            what = f"[{rows}][{layer.output_size}] outputs over the sequence, for run"
            out.append((i, StateField("seq", ctype, rows * layer.output_size, what)))
        return out

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def decimates(self) -> bool:
        """Whether some steps give no new output (a strided Conv1D, windowed pooling): then
        <name>_step returns 1 for a new output, 0 for the held one (kept in the state)."""
        return any(getattr(layer, "decimates", False) for layer in self.layers)

    @property
    def changes_length(self) -> bool:
        """Whether the model's output rows differ from its input steps (a strided Conv1D,
        windowed pooling, a Conv1D with padding 'valid')."""
        return any(getattr(layer, "changes_length", False) for layer in self.layers)

    @property
    def needs_max_length(self) -> bool:
        """Whether --max-length must be given (see :func:`needs_max_length`)."""
        return needs_max_length(self.layers, self.sequence_out)

    def rows_written(self, length: int) -> int:
        """The output rows <name>_run writes for a length-step sequence: a row per step, fewer
        after a strided or unpadded Conv1D or pooling, a RepeatVector's n after one; 1 for a
        model without a time axis."""
        if not self.returns_sequences:
            return 1
        return rows_out(self.layers, self.sequence_out, int(length))

    def output_rows_of(self, lengths: np.ndarray) -> np.ndarray:
        """Per sequence, the rows of run_int's (and the harness') [N, rows, out] output up to
        its last real output: rows_written for a whole-sequence model that returns sequences,
        else the length (a one-output whole-sequence model puts it in the last real row)."""
        lens = np.asarray(lengths, dtype=np.int64)
        if not (self.whole_sequence and self.returns_sequences):
            return lens
        return np.array([self.rows_written(int(n)) for n in lens], dtype=np.int64)

    def row_slots(self, steps: int) -> int:
        """Rows per sequence of an [N, rows, out] output array for inputs of `steps` steps: the
        steps, or more where run writes more rows (a RepeatVector longer than the input)."""
        if not (self.whole_sequence and self.returns_sequences):
            return int(steps)
        return max(int(steps), self.rows_written(int(steps)))

    @property
    def repeat_n(self) -> int | None:
        """The n of the model's RepeatVector; None without one."""
        r = repeat_index(self.layers)
        return None if r is None else int(self.layers[r].n)  # type: ignore[attr-defined]

    @property
    def fixed_rows(self) -> int | None:
        """The rows <name>_run writes whatever the length (a RepeatVector's n, the model
        returning sequences); None when they follow the length."""
        return self.repeat_n if self.returns_sequences else None

    def min_length(self) -> int:
        """The shortest sequence that gives every layer at least one row (whole-sequence)."""
        return shortest_length(self.layers, self.sequence_out, self.max_length or 1)

    def macs_over(self, steps: int) -> int:
        """MACs of a sequence of `steps` steps: a layer after a strided Conv1D or a pooling layer
        runs only at the steps that give it an input (``emitted(n)``: a layer's outputs for n
        inputs), and a Conv1D's own MACs come with its outputs. In a whole-sequence model the
        layers after one without return_sequences run once (after a RepeatVector, n times)."""
        total, n = 0, int(steps)
        for i, layer in enumerate(self.layers):
            emitted = getattr(layer, "emitted", None)
            n_out = int(emitted(n)) if emitted is not None else n
            total += layer.macs * n_out
            n = n_out
            if self.whole_sequence and not self.sequence_out[i]:
                n = 1  # <name>_run runs the layers after it once (a RepeatVector: its n rows)
        return total

    def hold_field(self) -> StateField | None:
        """The model's latest output, held over the steps that give none (decimating models)."""
        if not self.decimates or self.whole_sequence:
            return None
        return StateField("hold", "int8_t", self.output_size, "the latest output, held")

    @property
    def sample_size(self) -> int:
        """Features per raw sample: input_size / samples_per_step."""
        return self.input_size // self.samples_per_step

    def frame_fields(self) -> list[StateField]:
        """A framed streaming model: the partial frame <name>_push_sample collects, and how
        many samples it holds (none for an unframed, whole-sequence or token model)."""
        if self.samples_per_step <= 1 or self.whole_sequence or self.embedding is not None:
            return []
        k = self.samples_per_step
        return [
            StateField("frame_fill", "int32_t", 1, "samples in frame so far", scalar=True),
            StateField(
                "frame", "int8_t", self.input_size, f"the frame being collected, {k} samples"
            ),
        ]

    def audio_fields(self) -> list[StateField]:
        """A model with an audio front end: the window of samples <name>_push_audio keeps (the
        last window - hop samples and the hop being filled) and how many of the hop it holds."""
        if self.frontend is None:
            return []
        window, hop = int(self.frontend["window"]), int(self.frontend["hop"])
        mean_hops = int(self.frontend.get("mean_hops", 0))
        feats = int(self.frontend.get("n_mfcc") or self.frontend["n_mels"])
        running = [
            StateField("audio_hops", "int32_t", 1, "hops in the running mean", scalar=True),
            StateField("audio_mean", "int32_t", feats, "each feature's running mean, Q8"),
        ]
        return [
            StateField("audio_fill", "int32_t", 1, "samples of the hop so far", scalar=True),
            *(running if mean_hops else []),
            StateField(
                "audio", "int16_t", window, f"the last {window - hop} samples, then the hop"
            ),
        ]

    def state_bytes(self, framed: bool = True) -> int:
        """sizeof the C state struct: the widest arrays first, padded to alignment (framed=False:
        without a framed model's frame_fields)."""
        fields = [f for layer in self.layers for f in layer.state_fields()]
        fields += [f for _, f in self.sequence_buffers()]
        hold = self.hold_field()
        fields += [hold] if hold is not None else []
        fields += self.frame_fields() if framed else []
        fields += self.audio_fields()
        align = max((CTYPE_BYTES[f.ctype] for f in fields), default=1)
        return -(-sum(f.nbytes for f in fields) // align) * align

    def weight_bytes(self) -> int:
        table = 0 if self.embedding is None else self.embedding.weight_bytes()
        return table + sum(layer.weight_bytes() for layer in self.layers)


def fold_affine(layer: FloatLayer, a: np.ndarray, b: np.ndarray) -> None:
    """Fold x -> a*x + b (per feature) into the layer's input kernel and input-side bias."""
    if hasattr(layer, "fold_input_affine"):  # a layer holding cells (Bidirectional)
        layer.fold_input_affine(a, b)
        return
    kernel = layer.kernel  # type: ignore[attr-defined]
    layer.bias = layer.bias + b @ kernel  # type: ignore[attr-defined]
    layer.kernel = a[:, None] * kernel  # type: ignore[attr-defined]
