"""Post-training quantization of a float IR: calibration over a model, each layer quantized by
its own rule (layers/), the model input's quantization, and the notes and refusals that concern
the whole model.

The rules the layers share (int8 weight rows, requantization, calibration ranges, the packed
weight layout) are in quant_rules.py.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import numpy as np

from rnn2c.export.ir import (
    ACTIVATION_TYPES,
    ActQuant,
    ExportError,
    ModelIR,
    Observer,
    QuantModel,
    consumers,
    fold_affine,
    gather,
    input_number,
    input_offsets,
    model_input,
    needs_whole_sequence,
    repeat_index,
    shortest_length,
)
from rnn2c.export.layers.bidirectional import run_layers
from rnn2c.export.quant_rules import (
    CALIBRATION_METHODS,
    MAX_MULTIPLIER,
    ScaleError,
    act_quant_from_range,
    choose_range,
    weight_bits,
)
from rnn2c.export.quant_rules import QuantFC as QuantFC  # re-exported: serialize.py imports it
from rnn2c.export.quant_rules import pad4 as pad4  # re-exported: seq2seq_render.py imports it
from rnn2c.export.ranges import DeclaredRange, declared_input, quantize_output
from rnn2c.export.weight_types import layer_weight_bits, set_weight_bits

#: model input quantization accepted by --input-quant
INPUT_QUANT = ("per-tensor", "per-feature")
#: the input is int8 already (an audio front end's features): scale 1, zero point 0
INPUT_INT8 = "int8"


def observe_model(
    model: ModelIR,
    x: np.ndarray,
    lengths: np.ndarray | None = None,
    obs: Observer | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, Observer]:
    """Run the float IR over [N, T, F] sequences step by step, recording every tensor.

    Returns the outputs at every step [N, T, out] (zeros past each sequence's length) and the
    observer. Steps past a sequence's real length are not recorded. progress: called with the
    steps done after each step of a streaming model.
    """
    obs = obs or Observer()
    n, t, _ = x.shape
    lengths = np.full(n, t) if lengths is None else np.asarray(lengths)
    if model.whole_sequence:  # layer by layer over whole sequences, as <name>_run does
        obs.mask = lengths > 0
        obs.observe("input", np.asarray(x, dtype=np.float64)[:, 0])
        for step in range(1, t):
            obs.mask = lengths > step
            obs.observe("input", np.asarray(x[:, step], dtype=np.float64))
        obs.mask = None
        y = run_layers(model.layers, model.sequence_out, np.asarray(x, np.float64), lengths, obs)
        return y, obs
    states = [layer.init_state(n) for layer in model.layers]
    out = np.zeros((n, t, model.output_size))
    held = np.zeros((n, model.output_size))  # a step that emits nothing holds the last output
    for step in range(t):
        running = lengths > step
        if not running.any():
            break
        obs.mask = running
        h = np.asarray(x[:, step, :], dtype=np.float64)
        obs.prefix = ""
        obs.observe("input", h)
        x_step, outs = h, []
        for i, (layer, state) in enumerate(zip(model.layers, states, strict=True)):
            obs.prefix = f"{i}."
            if model.inputs:  # a graph: each layer reads its producers (graph.py)
                h = gather(model.inputs[i], outs, x_step, model.input_sizes)
            h = layer.step(state, h, obs)
            outs.append(h)
            if h is None:  # a strided Conv1D or pooling gave no output this step
                break
            if (
                getattr(layer, "cell_act", "tanh") != "tanh"
                or getattr(layer, "gate_act", "") == "linear"
            ):
                obs.observe("state", h)  # may leave the state's range: see _saturation_notes
        if h is not None:
            held = h
        out[:, step, :] = np.where(running[:, None], held, 0.0)
        if progress is not None:
            progress(step + 1)
    obs.mask = None
    obs.prefix = ""
    return out, obs


def quantize_model(
    model: ModelIR,
    calib_x: np.ndarray,
    calib_lengths: np.ndarray | None,
    method: str = "minmax",
    activations: str = "int8",
    input_quant: str = "per-tensor",
    max_length: int | None = None,
    streaming_hint: bool = True,
    observed: Observer | None = None,
    input_range: DeclaredRange | None = None,
    output_range: DeclaredRange | None = None,
    weights: str = "int8",
    keep_int8: list[str] | None = None,
) -> QuantModel:
    """Quantize a float IR with a calibration set [N, T, F].

    weights: "int8", or "int4" (int4 weight rows for the layers with int4 kernels except those
    named or of a kind in keep_int8: export/weight_types.py).

    max_length: the longest sequence <name>_run takes (--max-length); required for a model with
    a whole-sequence layer (Bidirectional, go_backwards), whose state holds buffers that long.
    streaming_hint: say (in the refusal without max_length, else in a note) what padding='causal'
    would give a model made whole-sequence by its Conv1D padding (:func:`causal_hint`).

    activations: "int8" (int8 hidden states) or "int16" (int16 hidden states, int8 weights).
    input_quant: "per-tensor" (one input scale, the default C API) or "per-feature" (one scale
    and zero point per input feature, for features of very different ranges); "int8" (an
    audio front end's features, already int8: scale 1, zero point 0, the C API's per-tensor).
    observed: the float model's observations of calib_x from an earlier call (its ``methods``
    choose a method per tensor: export/calib_auto.py), so that the float pass runs once.
    input_range, output_range: declared ranges (--input-range, --output-range; export/ranges.py)
    that replace the calibrated ones of the model input and of the last layer's output.
    """
    if input_quant not in (*INPUT_QUANT, INPUT_INT8):
        raise ExportError(
            f"unknown input quantization {input_quant!r}; use one of {', '.join(INPUT_QUANT)}"
        )
    if method not in CALIBRATION_METHODS:
        raise ExportError(
            f"unknown calibration method {method!r}; use one of {', '.join(CALIBRATION_METHODS)}"
        )
    if activations not in ACTIVATION_TYPES:
        raise ExportError(
            f"unknown activation type {activations!r}; use one of {', '.join(ACTIVATION_TYPES)}"
        )
    state_bits = 16 if activations == "int16" else 8
    has_table = model.embedding is not None
    bits, weight_notes = layer_weight_bits(model.layers, weights, keep_int8 or [], has_table)
    hint = ""
    if max_length is None and model.whole_sequence and streaming_hint:
        hint = causal_hint(model, calib_x, calib_lengths, activations, None)
    if max_length is None:
        check_repeat_length(model)
    check_max_length(max_length, model.needs_max_length, hint)
    if model.whole_sequence:
        shortest = shortest_length(model.layers, model.sequence_out, max_length or 1)
        got = int(calib_x.shape[1] if calib_lengths is None else np.min(calib_lengths))
        if got < shortest:
            raise ExportError(
                f"calibration sequences of {got} steps are shorter than the {shortest} steps "
                "the model's Conv1D/pooling windows need for one output; give longer sequences"
            )
    obs = observed
    if obs is None:
        with np.errstate(over="ignore"):  # a sigmoid of an extreme value: exactly 0 or 1
            _, obs = observe_model(model, model.float_input(calib_x), calib_lengths)
    embedding = None
    if model.embedding is not None:  # token ids: the table's quantization is the input's
        if input_quant != "per-tensor":
            raise ExportError(
                "--input-quant per-feature does not apply to a token model: its input is the "
                "Embedding table, quantized with one scale; drop the flag"
            )
        embedding = model.embedding.quantize()
        input_q, notes = embedding.output_q, []
    else:
        input_q, model, notes = _input_quant(
            model, calib_x, calib_lengths, obs, method, input_quant
        )
        input_q, declared = declared_input(input_q, input_range, real_steps(calib_x, calib_lengths))
        notes += declared
    q = input_q
    layers = []
    for i, layer in enumerate(model.layers):
        sub = SubObserver(obs, f"{i}.")
        declared_out = output_range if i == len(model.layers) - 1 else None
        if model.inputs:  # a graph: each layer's input quantization is its producer's output's
            qs = [
                input_part(input_q, model.input_sizes, j) if j < 0 else layers[j].output_q
                for j in model.inputs[i]
            ]
            if layer.kind == "merge":
                if declared_out is not None:  # --output-range on a merge's output
                    ql, declared = quantize_output(layer, q, sub, method, 8, declared_out, qs)
                    layers.append(ql)
                    notes += declared
                    continue
                layers.append(layer.quantize_parts(qs, sub, method))  # type: ignore[attr-defined]
                continue
            q = qs[0]
        try:
            with weight_bits(bits[i]):
                if declared_out is not None:  # --output-range: the last layer's declared output
                    ql, declared = quantize_output(layer, q, sub, method, state_bits, declared_out)
                    notes += declared
                else:
                    ql = layer.quantize(q, sub, method, state_bits)  # type: ignore[arg-type]
            set_weight_bits(ql, bits[i])
        except ScaleError as e:
            declared = input_range is not None
            raise ExportError(_scale_message(e, model, i, q, layers, calib_x, declared)) from None
        if model.whole_sequence and hasattr(ql, "whole"):  # Conv1D, pooling: no ring in run
            ql.whole = True
        layers.append(ql)
        q = ql.output_q
    notes += weight_notes + _saturation_notes(model, obs)
    qmodel = QuantModel(
        layers=layers,
        input_q=input_q,
        input_size=model.input_size,
        calibration=method,
        source=model.source,
        activations=activations,
        input_quant="per-tensor" if input_quant == INPUT_INT8 else input_quant,
        notes=notes,
        sequence_out=list(model.sequence_out),
        max_length=max_length,
        embedding=embedding,
        inputs=[list(ins) for ins in model.inputs],
        input_names=list(model.input_names),
        input_sizes=list(model.input_sizes),
        mask_value=model.mask_value,
    )
    if model.whole_sequence and streaming_hint and max_length is not None:
        whole = (max_length, qmodel.state_bytes())
        hint = causal_hint(model, calib_x, calib_lengths, activations, whole)
        qmodel.notes += [hint] if hint else []
    return qmodel


def causal_variant(model: ModelIR) -> ModelIR | None:
    """The model with its Conv1D layers of padding 'valid' or 'same' made 'causal', when they
    alone make it whole-sequence (then the variant streams); else None."""
    if not any(ly.kind == "conv1d" and needs_whole_sequence(ly) for ly in model.layers):
        return None
    if any(ly.kind != "conv1d" and needs_whole_sequence(ly) for ly in model.layers):
        return None
    variant = copy.deepcopy(model)
    for layer in variant.layers:
        if layer.kind == "conv1d":
            layer.padding = "causal"  # type: ignore[attr-defined]
    return variant


def causal_hint(
    model: ModelIR,
    calib_x: np.ndarray,
    calib_lengths: np.ndarray | None,
    activations: str,
    whole: tuple[int, int] | None,
) -> str:
    """For a model made whole-sequence by its Conv1D padding ('valid', Keras' default, or
    'same'): one line giving its state at --max-length N (whole: (N, bytes); None: at the
    calibration set's longest sequence) against the state of the same model with
    padding='causal', which streams (its state bytes: quantized on a few calibration sequences,
    as they depend on the layer sizes only); '' for any other model."""
    variant = causal_variant(model)
    if variant is None:
        return ""
    x = calib_x[:16]
    lens = None if calib_lengths is None else calib_lengths[:16]
    try:
        causal = quantize_model(variant, x, lens, "minmax", activations, streaming_hint=False)
        if whole is None:
            n = int(calib_x.shape[1] if calib_lengths is None else np.max(calib_lengths))
            q = quantize_model(
                model, x, lens, "minmax", activations, max_length=n, streaming_hint=False
            )
            whole = (n, q.state_bytes())
    except ExportError:  # too short or degenerate for a figure: no hint
        return ""
    convs = [ly for ly in model.layers if ly.kind == "conv1d" and needs_whole_sequence(ly)]
    names = ", ".join(f"'{ly.name}' (padding='{ly.padding}')" for ly in convs)  # type: ignore[attr-defined]
    n, nbytes = whole
    return (
        f"Conv1D {names} make{'s' if len(convs) == 1 else ''} the model whole-sequence: its state "
        f"holds every layer's outputs over the sequence, {nbytes} bytes at --max-length {n}; "
        f"with padding='causal' (retrain) it streams through <name>_step with no --max-length "
        f"in a state of {causal.state_bytes()} bytes (each Conv1D keeps its last "
        "(kernel_size - 1) * dilation_rate + 1 input steps)"
    )


def input_part(input_q: ActQuant, sizes: list[int], producer: int) -> ActQuant:
    """The quantization of the model input a layer reads (producer < 0): all of input_q, or
    for a model with several inputs that of input k alone (one scale and zero point with
    --input-quant per-tensor, which gives each input its own; else one per feature)."""
    if not sizes:
        return input_q
    k = input_number(producer)
    lo = input_offsets(sizes)[k]
    scale = np.asarray(input_q.scale, dtype=np.float64)[lo : lo + sizes[k]]
    zp = np.asarray(input_q.zero_point, dtype=np.int64)[lo : lo + sizes[k]]
    if (scale == scale[0]).all() and (zp == zp[0]).all():  # one range for the whole input
        return ActQuant(float(scale[0]), int(zp[0]), input_q.bits)
    return ActQuant(scale, zp, input_q.bits)


def peak_weight(layer: object) -> float:
    """The largest |value| of a float layer's arrays (a Bidirectional's cells included)."""
    peak = 0.0
    for f in dataclasses.fields(layer):  # type: ignore[arg-type]
        v = getattr(layer, f.name)
        if isinstance(v, np.ndarray) and v.size and v.dtype.kind == "f":
            peak = max(peak, float(np.abs(v).max()))
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            peak = max(peak, peak_weight(v))
    return peak


def _scale_message(
    e: ScaleError,
    model: ModelIR,
    i: int,
    input_q: ActQuant,
    done: list,
    calib_x: np.ndarray,
    declared: bool = False,
) -> str:
    """One line for rows that cannot be requantized (ScaleError): what in the model or the
    calibration data is extreme, and the way forward."""
    layer = model.layers[i]
    what = e.where[: e.where.index(")") + 1] if ")" in e.where else e.where
    need = f"requantization multiplier {e.multiplier:.3g}, at most {MAX_MULTIPLIER} fits"
    weights = peak_weight(layer)
    if e.empty_output:
        return (
            f"{what}: its output is the same for every calibration sequence, so its int8 "
            f"range is empty, while its weights reach {weights:.3g} ({need}); the layers "
            "before it give it a constant input (all-zero or dead weights?): give calibration "
            "data that moves it, or check the model"
        )
    sources = model.inputs[i] if model.inputs else [i - 1]
    reads_input = any(j < 0 for j in sources)
    lo = float(np.min(input_q.dequantize(np.int64(-128))))
    hi = float(np.max(input_q.dequantize(np.int64(127))))
    reach = max(abs(lo), abs(hi))
    if reach <= weights:
        return (
            f"{what}: weights reach {weights:.3g}; int8 weights with one scale per row cannot "
            f"represent that against the layer's input and output ranges ({need}); retrain "
            "with weight regularisation (or clipped weights), or check the model"
        )
    if reads_input and model.embedding is None and declared:  # --input-range set the step
        return (
            f"--input-range: the model input's int8 step would be "
            f"{float(np.max(input_q.scale)):.3g}, far too coarse for {what} ({need}); declare "
            "the range the input really takes"
        )
    if reads_input and model.embedding is None:
        values = float(np.nanmax(np.abs(np.asarray(calib_x, dtype=np.float64))))
        return (
            f"--calib: values reach {values:.3g}; the model input's int8 step would be "
            f"{float(np.max(input_q.scale)):.3g}, far too coarse for {what} ({need}); give "
            "calibration sequences in the range the model was trained on (normalized, no "
            "corrupt or sentinel values)"
        )
    source = (
        "the Embedding table" if reads_input else f"the output of layer '{done[sources[0]].name}'"
    )
    return (
        f"{what}: its input, {source}, reaches {reach:.3g} ({need}); check the weights "
        "of the layers before it, or the model"
    )


def _input_quant(
    model: ModelIR,
    calib_x: np.ndarray,
    calib_lengths: np.ndarray | None,
    obs: Observer,
    method: str,
    input_quant: str,
) -> tuple[ActQuant, ModelIR, list[str]]:
    """The model input's quantization from calibration (constant features folded away); its
    method may be the observer's for "input" (Observer.method_for)."""
    if input_quant == INPUT_INT8:  # int8 features (an audio front end): taken as they are
        return ActQuant(1.0, 0), model, []
    method = obs.method_for("input", method)

    def choose(values: np.ndarray, part: str) -> tuple[float, float]:  # chosen once per method
        key = (f"input{part}", method)
        if key not in obs.ranges:
            obs.ranges[key] = choose_range(values, method)
        return obs.ranges[key]

    real = real_steps(calib_x, calib_lengths)
    const = real.min(axis=0) == real.max(axis=0)  # per feature: never changes
    model, notes = _fold_constant_features(model, real, const)
    if not notes:  # nothing folded (none constant, or the input enters a merge as it is)
        const = np.zeros_like(const)
    varying = real[:, ~const]
    if model.input_sizes and input_quant == "per-tensor":  # several inputs: a range each
        per = []
        for lo, size in zip(input_offsets(model.input_sizes), model.input_sizes, strict=True):
            part = real[:, lo : lo + size]
            live = part[:, ~const[lo : lo + size]]
            q = act_quant_from_range(*choose(live if live.size else part, f":{lo}"))
            per += [q] * size
        input_q = ActQuant(
            np.array([q.scale for q in per]), np.array([q.zero_point for q in per], dtype=np.int64)
        )
    elif input_quant == "per-feature":
        per = [act_quant_from_range(*choose(real[:, f], f"#{f}")) for f in range(real.shape[1])]
        input_q = ActQuant(
            np.array([q.scale for q in per]), np.array([q.zero_point for q in per], dtype=np.int64)
        )
    elif varying.shape[1] < real.shape[1]:  # the constant features need no input range
        input_q = act_quant_from_range(*choose(varying, ":varying"))
    else:
        input_q = act_quant_from_range(*choose(obs.get("input"), ""))
    return input_q, model, notes


#: --max-length bound: the state struct holds [max_length x width] buffers per layer
MAX_MAX_LENGTH = 1_000_000


def check_max_length(max_length: int | None, whole_sequence: bool, hint: str = "") -> None:
    """One-line ExportError for a missing (whole-sequence model) or invalid --max-length; hint:
    what padding='causal' would give (causal_hint)."""
    if max_length is None:
        if whole_sequence:
            raise ExportError(
                "the model has a whole-sequence layer (Bidirectional or go_backwards), pooling "
                "with padding 'same' or a "
                "Conv1D with padding 'valid' or 'same', so its C "
                "runs whole sequences through <name>_run with buffers in the state; give "
                "--max-length N, the longest sequence it must take (e.g. --max-length 128)"
                + (f"; {hint}" if hint else "")
            )
        return
    if isinstance(max_length, bool) or not isinstance(max_length, int | np.integer):
        raise ExportError(f"--max-length {max_length!r}: expected a whole number of steps")
    if not 1 <= max_length <= MAX_MAX_LENGTH:
        raise ExportError(
            f"--max-length {max_length}: expected 1 to {MAX_MAX_LENGTH} steps, e.g. 128"
        )


def check_repeat_length(model: ModelIR) -> None:
    """A RepeatVector model keeps a row per input step only for an encoder layer that returns
    sequences: without --max-length, name that layer (one line)."""
    r = repeat_index(model.layers)
    if r is None or not model.needs_max_length:
        return
    first = next(ly for ly, s in zip(model.layers[:r], model.sequence_out, strict=False) if s)
    raise ExportError(
        f"layer '{first.name}' returns sequences before the RepeatVector "
        f"'{model.layers[r].name}', so the C keeps its rows over the input's steps in the state; "
        "give --max-length N, the longest sequence it must take (e.g. --max-length 128)"
    )


def real_steps(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """The real (unpadded) steps of [N, T, F] sequences as rows [M, F]."""
    if lengths is None:
        return x.reshape(-1, x.shape[-1])
    steps = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return x[steps]


def _fold_constant_features(
    model: ModelIR, real: np.ndarray, constant: np.ndarray
) -> tuple[ModelIR, list[str]]:
    """A feature that never changes over the calibration set carries no information. Left in,
    its (often Normalization-amplified) weights would set the first layer's weight scales and
    its value the input range, wiping out every other feature. Its contribution, value times
    weights, is folded into the first layer's bias and its weights become zero; the C then
    ignores that input. constant: bool per feature. Returns a copy of the model and a note."""
    const = np.nonzero(constant)[0]
    if const.size == 0 or not hasattr(model.layers[0], "kernel"):  # LayerNormalization first
        return model, []
    if const.size == real.shape[1]:
        raise ExportError(
            "every input feature is constant over the calibration set; give calibration "
            "sequences that vary (the model's output cannot depend on a constant input)"
        )
    a = np.ones(real.shape[1])
    b = np.zeros(real.shape[1])
    a[const] = 0.0
    b[const] = real[0, const]
    # (layer, slice of the input it reads): a chain's first layer, or every layer that reads
    # the input (of a model with several inputs: every layer that reads one, its part)
    sizes = model.input_sizes or [real.shape[1]]
    readers = [
        (i, slice(lo, lo + size))
        for k, (lo, size) in enumerate(zip(input_offsets(sizes), sizes, strict=True))
        for i in ([0] if not model.inputs else consumers(model.inputs, model_input(k)))
    ]
    if any(model.layers[i].kind == "merge" for i, _ in readers):
        return model, []  # the input enters a merge as it is: nothing to fold into
    model = copy.deepcopy(model)
    for i, part in readers:
        fold_affine(model.layers[i], a[part], b[part])
    values = ", ".join(f"{_feature_name(model, int(f))} (= {real[0, f]:g})" for f in const[:8])
    more = f" and {const.size - 8} more" if const.size > 8 else ""
    plural = const.size > 1
    note = (
        f"input feature{'s' if plural else ''} {values}{more} never change{'' if plural else 's'} "
        "over the calibration set: no information, so the value is folded into the first "
        f"layer's bias and the C ignores {'these inputs' if plural else 'that input'}"
    )
    return model, [note]


def _feature_name(model: ModelIR, f: int) -> str:
    """Feature f of the model input: its number, or for several inputs input 'name' feature j."""
    for name, lo, size in zip(
        model.input_names, input_offsets(model.input_sizes), model.input_sizes, strict=True
    ):
        if lo <= f < lo + size:
            return f"{f - lo} of input '{name}'"
    return str(f)


def _saturation_notes(model: ModelIR, obs: Observer) -> list[str]:
    """A relu candidate or linear gates can take a recurrent state past the int8/int16 state's
    range [-1, 1), where the C saturates it: say how often that happened in calibration."""
    notes = []
    for i, layer in enumerate(model.layers):
        # a whole-sequence layer's cells record fw.state / bw.state; they share its shift
        keys = [f"{i}.{d}state" for d in ("", "fw.", "bw.") if f"{i}.{d}state" in obs.values]
        if not keys:
            continue
        v = np.abs(np.concatenate([np.ravel(obs.get(key)) for key in keys]))
        top = 2.0 ** layer.state_shift(SubObserver(obs, f"{i}."))  # type: ignore[attr-defined]
        over = float(np.mean(v >= top))
        if over > 0:
            notes.append(
                f"layer '{layer.name}': {100 * over:.2f}% of its float state values on the "
                f"calibration set are outside [-{top:g}, {top:g}) (up to {float(v.max()):.3g}), "
                "where the integer state saturates; keep the state smaller (smaller weights or "
                "inputs) for the C to follow the float model"
            )
    return notes


class SubObserver:
    """A view of an Observer restricted to one layer's keys: get(key) reads prefix + key (the
    observer a layer's quantize and state_shift take)."""

    def __init__(self, obs: Observer, prefix: str) -> None:
        self.obs = obs
        self.prefix = prefix

    def get(self, key: str) -> np.ndarray:
        return self.obs.get(self.prefix + key)


#: the former name, which export/seq2seq.py imports; drop once it imports SubObserver
_SubObserver = SubObserver
