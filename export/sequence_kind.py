"""The sequence kind: a chain or graph of layers (GRU, LSTM, SimpleRNN, Conv1D, Dense, ...) read
by export/keras_reader.py into a ModelIR, quantized into a QuantModel, rendered by
export/render.py into <name>_step (streaming) or <name>_run (whole-sequence: a Bidirectional,
go_backwards or RepeatVector layer, a Conv1D or pooling over the whole sequence).

Streaming and whole-sequence models are one kind: the same IR, quantized model, file format and
references; whole_sequence is a property of the quantized model that decides which entry point
the C has (<NAME>_STREAMING), and the commands that differ by it (verify --stream, size's counts,
bench) read it there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import codec
from rnn2c.export.audio import frontend_for
from rnn2c.export.calib_auto import AUTO, quantize_auto
from rnn2c.export.data import (
    Sequences,
    check_inputs,
    check_tokens,
    data_inputs,
    join_inputs,
    load_sequences,
    mask_lengths,
)
from rnn2c.export.fingerprint import model_fingerprint
from rnn2c.export.ir import ExportError, ModelIR, QuantModel
from rnn2c.export.keras_reader import read_model
from rnn2c.export.modelkind import Exported, ExportOptions, ModelKind
from rnn2c.export.quantize import quantize_model
from rnn2c.export.ranges import check_input_range, describe_manifest, manifest_entries
from rnn2c.export.render import LABELS, c_input_names, render


class SequenceKind(ModelKind):
    name: ClassVar[str] = "sequence"
    title: ClassVar[str] = "a sequence model"

    def claims(self, keras_model: Any) -> bool:
        return True  # asked last: every model the other kinds do not claim

    def read(self, keras_model: Any) -> ModelIR:
        return read_model(keras_model)

    def holds(self, obj: Any) -> bool:
        return isinstance(obj, ModelIR | QuantModel)

    def fingerprint(self, ir: ModelIR) -> str:
        return model_fingerprint(ir)

    def tag(self) -> dict[str, str]:
        return {}  # its files predate kinds: no "kind" entry means a sequence model

    def export(self, model: Any, ir: ModelIR, calib: Any, options: ExportOptions) -> Exported:
        o = options
        if any(v is not None for v in (o.start_token, o.end_token, o.max_output_length)):
            raise ExportError(
                "--start-token, --end-token and --max-output-length are for seq2seq "
                "(encoder-decoder) models; this model has one input: drop them"
            )
        c_input_names(ir.input_names, o.name)  # usable C names, before the long work
        k, k_note = framing(o.samples_per_step, model, ir)
        frontend = None if o.frontend is None else frontend_for(o.frontend, ir.input_size, k)
        seqs = calibration_set(calib, ir)
        what = "--calib" if isinstance(calib, str | os.PathLike) else "the calibration set"
        seqs, mask_note = mask_lengths(seqs, ir.mask_value, what)
        if ir.embedding is not None and o.input_range is not None:
            raise ExportError(
                "--input-range does not apply to a token model: its input is token ids looked "
                "up in the Embedding table, whose range is the table's; drop the flag"
            )
        if frontend is not None and o.input_range is not None:
            raise ExportError(
                "--input-range does not apply with --frontend: the input is the front end's "
                "int8 features, scale 1; drop the flag"
            )
        check_input_range(o.input_range, ir.input_size, o.input_quant)
        auto = None
        input_quant = o.input_quant if frontend is None else "int8"
        common = {
            "activations": o.activations,
            "input_quant": input_quant,
            "max_length": o.max_length,
            "input_range": o.input_range,
            "output_range": o.output_range,
            "weights": o.weights,
            "keep_int8": o.keep_int8,
        }
        if o.calibration == AUTO:
            auto = quantize_auto(ir, seqs.x, seqs.lengths, say=o.say, **common)
            qmodel = auto.qmodel
        else:
            qmodel = quantize_model(ir, seqs.x, seqs.lengths, o.calibration, **common)
        if frontend is not None and (
            qmodel.whole_sequence or qmodel.decimates or qmodel.input_sizes
        ):
            raise ExportError(
                "--frontend needs a streaming model with one input that gives an output every "
                "step (no Bidirectional, whole-sequence or strided layer, one input)"
            )
        qmodel.frontend = frontend
        if frontend is not None:
            qmodel.notes.append(
                "the input is the audio front end's int8 features (scale 1, zero point 0): "
                f"{o.name}_push_audio computes them"
            )
        qmodel.notes[:0] = [*ir.notes, *([mask_note] if mask_note else [])]
        qmodel.samples_per_step = k
        qmodel.notes += [k_note] if k_note else []
        class_names = o.class_names
        if class_names is None:
            class_names = run_folder_class_names(model, qmodel.output_size)
        elif len(class_names) != qmodel.output_size:
            raise ExportError(
                f"{len(class_names)} class names for a model with {qmodel.output_size} outputs"
            )
        files = render(qmodel, o.name, class_names)
        entries = manifest(qmodel, ir, o, int(seqs.x.shape[0]), class_names)
        if auto is not None:
            entries["calibration_auto"] = auto.to_json()
        return Exported(qmodel, files, entries)

    def to_bytes(self, qmodel: QuantModel) -> bytes:
        return codec.to_bytes(qmodel)

    def from_arrays(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray], path: str
    ) -> QuantModel:
        return codec.from_arrays(header, arrays, path)

    def summary(self, qmodel: QuantModel, manifest: dict[str, Any], name: str) -> list[str]:
        return summary_lines(qmodel, manifest, name)

    def package_about(self, qmodel: QuantModel, name: str) -> dict[str, str]:
        cells = [LABELS[layer.kind] for layer in qmodel.layers if layer.state_fields()]
        return {
            "summary": ("/".join(dict.fromkeys(cells)) or "Dense") + " model",
            "api": f"{name}_reset() / {name}_step(), one time step per call",
            "figures": f"{qmodel.input_size} inputs, {qmodel.output_size} outputs per step, "
            f"{qmodel.state_bytes()} bytes of state, {qmodel.macs} MACs per step",
        }

    def code_parts(self, qmodel: QuantModel) -> tuple[list[Any], list[str]]:
        # each layer of a chain gets its own specialised kernel
        return list(qmodel.layers), [] if qmodel.embedding is None else ["embedding"]

    def check_model(self, ir: ModelIR, qmodel: QuantModel, folder: str) -> None:
        if ir.input_size != qmodel.input_size or ir.output_size != qmodel.output_size:
            raise ExportError(
                f"the model takes {ir.input_size} features and gives {ir.output_size} outputs "
                f"but the export in {folder!r} takes {qmodel.input_size} and gives "
                f"{qmodel.output_size}; pass the model that was exported"
            )


SEQUENCE = SequenceKind()


def manifest(
    qmodel: QuantModel,
    ir: ModelIR,
    o: ExportOptions,
    calibration_sequences: int,
    class_names: list[str] | None,
) -> dict[str, Any]:
    """A sequence model's entries of rnn2c.json."""
    out = {
        "source": qmodel.source,
        "input_size": qmodel.input_size,
        "output_size": qmodel.output_size,
        "input_quant": o.input_quant if qmodel.frontend is None else "int8 (audio front end)",
        "input_scale": qmodel.input_q.to_json()["scale"],
        "input_zero_point": qmodel.input_q.to_json()["zero_point"],
        "output_scale": qmodel.output_q.scale,
        "output_zero_point": qmodel.output_q.zero_point,
        "state_bytes": qmodel.state_bytes(),
        "weight_bytes": qmodel.weight_bytes(),
        "macs_per_step": qmodel.macs,
        "whole_sequence": qmodel.whole_sequence,
        "max_length": qmodel.max_length,
        "returns_sequences": qmodel.returns_sequences,
        "vocab": qmodel.vocab,
        "samples_per_step": qmodel.samples_per_step,
        "calibration": o.calibration,
        "activations": o.activations,
        "weights": o.weights,
        "calibration_sequences": calibration_sequences,
        "layers": [
            {"name": layer.name, "kind": layer.kind, "output_size": layer.output_size}
            for layer in qmodel.layers
        ],
        "model_fingerprint": model_fingerprint(ir),
        "notes": qmodel.notes,
    }
    out.update(manifest_entries(qmodel, o.input_range, o.output_range))
    if qmodel.input_sizes:  # several inputs (absent: one)
        out["inputs"] = input_manifest(qmodel)
    if qmodel.frontend is not None:  # an audio front end (absent: none)
        out["frontend"] = dict(qmodel.frontend)
    if class_names:
        out["class_names"] = list(class_names)
    return out


def _int4(layer: Any) -> bool:
    cells = [c for _, c in layer.cells()] if hasattr(layer, "cells") else [layer]
    return any(getattr(c, "weight_bits", 8) == 4 for c in cells)


def summary_lines(qmodel: QuantModel, m: dict[str, Any], name: str) -> list[str]:
    """rnn2c export's lines about a sequence model: its layers, state, entry points."""
    lines = [
        f"  {layer.kind:<6} {layer.name:<20} -> {layer.output_size:>4}   {layer.macs:>8} MACs/step"
        + ("  int4 weights" if _int4(layer) else "")
        for layer in qmodel.layers
    ]
    lines.append(
        f"  state {m['state_bytes']} bytes, weights {m['weight_bytes']} bytes, "
        f"{m['macs_per_step']} MACs/step, input {m['input_quant']}"
    )
    declared = describe_manifest(m)
    if declared:
        lines.append(f"  declared ranges: {declared} (calibration sets the others)")
    if qmodel.whole_sequence:
        limit = qmodel.max_length
        steps = "sequences of any length" if limit is None else f"up to {limit} steps"
        rows = qmodel.fixed_rows
        lines.append(
            f"  whole-sequence model: {name}_run over {steps} (no streaming step)"
            + ("" if rows is None else f", {rows} output rows (RepeatVector)")
        )
    elif qmodel.decimates:
        lines.append(
            f"  strided Conv1D / pooling: {name}_step returns 1 when its output is new, "
            "0 when it is the held one"
        )
    if qmodel.input_sizes:
        parts = ", ".join(f"{i['name']} ({i['size']} features)" for i in m["inputs"])
        lines.append(
            f"  inputs: {parts}: {name}_step takes one array per input, {name}_run "
            "their rows side by side"
        )
    k = qmodel.samples_per_step
    if k > 1:
        push = "" if qmodel.whole_sequence else f"; {name}_push_sample takes one at a time"
        lines.append(f"  framed: {k} samples of {qmodel.sample_size} features per step{push}")
    if qmodel.vocab is not None:
        entries = ("run_tokens",) if qmodel.whole_sequence else ("step_token", "run_tokens")
        names = " / ".join(f"{name}_{e}" for e in entries)
        lines.append(f"  token model: {names} over ids 0..{qmodel.vocab - 1}")
    return lines


def calibration_set(calib: Any, ir: ModelIR) -> Sequences:
    """The calibration sequences (a path, Sequences or arrays), checked against the model's
    inputs: token ids for a token model, per-input arrays joined for several inputs."""
    features, tokens, inputs = ir.input_size, ir.embedding, data_inputs(ir)
    if isinstance(calib, Sequences):
        if tokens is not None:
            x, lengths = check_tokens(calib.x, calib.lengths, "calibration", tokens)
            return Sequences(x, calib.y, lengths)
        if inputs is not None:  # a list / dict of per-input arrays, or x side by side
            x = check_inputs(join_inputs(calib.x, *inputs, "calibration"), "calibration")
            return Sequences(x, calib.y, calib.lengths)
        return calib
    if isinstance(calib, str | os.PathLike):
        return load_sequences(calib, "--calib", features, tokens, inputs)
    if tokens is not None:
        x, lengths = check_tokens(calib, None, "calibration array", tokens)
        return Sequences(x=x, y=None, lengths=lengths)
    if inputs is not None:
        calib = join_inputs(calib, *inputs, "calibration array")
    return Sequences(x=check_inputs(calib, "calibration array", features), y=None, lengths=None)


def input_manifest(qmodel: QuantModel) -> list[dict[str, Any]]:
    """A multi-input model's inputs for the manifest: Keras name, feature count, offset in a row
    of run's input, scale and zero point (lists with --input-quant per-feature)."""
    out = []
    q = qmodel.input_q.to_json()
    per_feature = qmodel.input_quant == "per-feature"
    lo = 0
    for name, size in zip(qmodel.input_names, qmodel.input_sizes, strict=True):
        out.append(
            {
                "name": name,
                "size": int(size),
                "offset": lo,
                "scale": q["scale"][lo : lo + size] if per_feature else q["scale"][lo],
                "zero_point": q["zero_point"][lo : lo + size]
                if per_feature
                else q["zero_point"][lo],
            }
        )
        lo += int(size)
    return out


def run_folder_class_names(model: Any, outputs: int) -> list[str] | None:
    """class_names from the metrics.json `rnn2c train` writes beside model.keras, if it fits."""
    if not isinstance(model, str | os.PathLike):
        return None
    metrics = Path(model).with_name("metrics.json")
    try:
        names = json.loads(metrics.read_text()).get("class_names")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(names, list) and len(names) == outputs and outputs >= 2:
        return [str(n) for n in names]
    return None


def run_folder_frame(model: Any) -> int | None:
    """The "frame" (samples per step) of the metrics.json `rnn2c train` writes beside
    model.keras, if the model is given as a path and that file has one."""
    if not isinstance(model, str | os.PathLike):
        return None
    try:
        frame = json.loads(Path(model).with_name("metrics.json").read_text()).get("frame")
    except (OSError, ValueError, AttributeError):
        return None
    return frame if isinstance(frame, int) and not isinstance(frame, bool) else None


def framing(given: int | None, model: Any, ir: ModelIR) -> tuple[int, str | None]:
    """(samples per step, a note when it came from the run folder): the given value (the
    --samples-per-step flag), else the run's metrics.json "frame", else 1; refused where it is
    not a whole number >= 1 dividing the model's inputs per step, or the model reads tokens."""
    found = run_folder_frame(model) if given is None else None
    k = given if given is not None else (found if found is not None else 1)
    what = f"--samples-per-step {k!r}" if given is not None else f'metrics.json "frame" {k!r}'
    fix = "" if given is not None else "; pass --samples-per-step K (1: unframed)"
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ExportError(f"{what}: expected a whole number of samples per step, 1 or more{fix}")
    k = int(k)
    if k > 1 and ir.embedding is not None:
        raise ExportError(
            f"{what}: this model reads token ids (an Embedding), which are not framed; "
            f"{'drop the flag' if given is not None else 'pass --samples-per-step 1'}"
        )
    if k > 1 and ir.input_sizes:
        raise ExportError(
            f"{what}: this model has several inputs, each its own array per step, which are not "
            "framed; drop the flag (give each step's rows as they are)"
        )
    if ir.input_size % k:
        raise ExportError(
            f"{what} does not divide the model's {ir.input_size} inputs per step (a frame is k "
            f"samples of {ir.input_size}/k features); give a divisor of {ir.input_size}{fix}"
        )
    if given is None and k > 1:
        return k, (
            f"framed model: {k} samples of {ir.input_size // k} features per step, from the "
            'run\'s metrics.json "frame" (--samples-per-step overrides)'
        )
    return k, None
