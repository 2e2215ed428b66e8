"""The library API behind `rnn2c export`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c import __version__
from rnn2c.export import serialize
from rnn2c.export.data import (
    Sequences,
    check_inputs,
    check_tokens,
    data_inputs,
    join_inputs,
    load_sequences,
    mask_lengths,
)
from rnn2c.export.ir import ExportError, ModelIR, QuantModel
from rnn2c.export.isa import RUNTIME_FILES
from rnn2c.export.keras_reader import load_keras_model, read_model
from rnn2c.export.packaging import package_files, package_paths, parse_kinds
from rnn2c.export.quantize import quantize_model
from rnn2c.export.render import c_input_names, check_name, render
from rnn2c.export.seq2seq import (
    Seq2SeqIR,
    is_seq2seq,
    load_seq2seq_data,
    quantize_seq2seq,
    read_seq2seq,
    seq2seq_settings,
)
from rnn2c.export.seq2seq import to_bytes as seq2seq_bytes
from rnn2c.export.seq2seq_render import render_seq2seq
from rnn2c.interface import python_api
from rnn2c.outdir import OutputError, OwnedFolder

MANIFEST = "rnn2c.json"


def qmodel_file(name: str) -> str:
    return f"{name}_qmodel.npz"


@dataclass
class ExportResult:
    out_dir: Path
    name: str
    files: list[str]
    qmodel: QuantModel
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # what the exporter decided, for the user


def read_any(model: Any) -> tuple[Any, Any]:
    """A path to a .keras file or an in-memory Keras model -> (keras model, float IR): a
    ModelIR, or a Seq2SeqIR for a two-input encoder-decoder."""
    if isinstance(model, str | os.PathLike):
        model = load_keras_model(model)
    if is_seq2seq(model):
        return model, read_seq2seq(model)
    return model, read_model(model)


def _calibration(calib: Any, ir: ModelIR) -> Sequences:
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


@python_api(out="out_dir")
def export_model(
    model: Any,
    calib: Any,
    out_dir: str | os.PathLike[str],
    name: str = "model",
    calibration: str = "minmax",
    activations: str = "int8",
    input_quant: str = "per-tensor",
    class_names: list[str] | None = None,
    package: str | list[str] | None = None,
    max_length: int | None = None,
    start_token: int | None = None,
    end_token: int | None = None,
    max_output_length: int | None = None,
    samples_per_step: int | None = None,
) -> ExportResult:
    """Keras model (.keras path or in memory) + calibration set -> C files in out_dir.

    calibration: "minmax", "percentile" or "mse" (how activation ranges are chosen);
    activations: "int8" or "int16" hidden states (weights are int8 either way);
    input_quant: "per-tensor" (the scalar <NAME>_INPUT_SCALE API) or "per-feature" (the header
    gives <NAME>_INPUT_SCALES / <NAME>_INPUT_ZERO_POINTS arrays instead).
    class_names: one label per output for <NAME>_NUM_CLASSES / <NAME>_CLASS_LABELS; by default
    read from the metrics.json that `rnn2c train` writes beside model.keras, when the model is
    given as a path and that file names as many classes as the model has outputs.
    package: drop-in build files to add, "cmake,arduino,platformio" or "all" (export/packaging.py).
    max_length: the longest sequence <name>_run takes (--max-length); required for a model with
    a Bidirectional or go_backwards layer, optional for a causal model; for a seq2seq model the
    most input steps <name>_encode takes (default: the calibration set's length).
    start_token, end_token, max_output_length: a seq2seq model's (export/seq2seq.py) decoder
    start and end ids and the most tokens <name>_decode writes; by default from the
    metrics.json that `rnn2c train --task seq2seq` writes beside model.keras.
    samples_per_step: k raw samples per model step (a framed model: each input row is k samples
    of F / k features, sample-major) for <NAME>_SAMPLES_PER_STEP and <name>_push_sample; by
    default the "frame" of the metrics.json that `rnn2c train --frame` writes, else 1.

    out_dir may hold other files (a firmware source folder): rnn2c replaces only the files its
    previous manifest lists, refuses to overwrite anything else or its own inputs, and swaps the
    new files in crash-safely (see rnn2c.outdir). On any error nothing is changed.
    """
    problem = check_name(name)
    if problem:
        raise ExportError(problem)
    kinds = parse_kinds(package)
    inputs = [p for p in (model, calib) if isinstance(p, str | os.PathLike)]
    names = [*output_files(name), *package_paths(name, kinds), MANIFEST]
    try:
        with OwnedFolder(out_dir, MANIFEST, "--out", inputs) as folder:
            folder.check_replaceable(names)  # before the long work
            _, ir = read_any(model)
            seq2seq = (start_token, end_token, max_output_length)
            if isinstance(ir, Seq2SeqIR):
                if samples_per_step not in (None, 1):
                    raise ExportError(
                        f"--samples-per-step {samples_per_step}: framing is for single-input "
                        "models; a seq2seq encoder reads its input rows as given: drop the flag"
                    )
                res = _export_seq2seq(
                    ir,
                    model,
                    calib,
                    name,
                    calibration,
                    activations,
                    input_quant,
                    class_names,
                    kinds,
                    max_length,
                    seq2seq,
                )
                folder.write(res[0], res[1])
                blobs, manifest, qs = res
                return ExportResult(
                    Path(out_dir), name, sorted([*blobs, MANIFEST]), qs, manifest, qs.notes
                )
            if any(v is not None for v in seq2seq):
                raise ExportError(
                    "--start-token, --end-token and --max-output-length are for seq2seq "
                    "(encoder-decoder) models; this model has one input: drop them"
                )
            c_input_names(ir.input_names, name)  # usable C names, before the long work
            k, k_note = framing(samples_per_step, model, ir)
            seqs = _calibration(calib, ir)
            what = "--calib" if isinstance(calib, str | os.PathLike) else "the calibration set"
            seqs, mask_note = mask_lengths(seqs, ir.mask_value, what)
            qmodel = quantize_model(
                ir, seqs.x, seqs.lengths, calibration, activations, input_quant, max_length
            )
            qmodel.notes[:0] = [mask_note] if mask_note else []
            qmodel.samples_per_step = k
            qmodel.notes += [k_note] if k_note else []
            if class_names is None:
                class_names = run_folder_class_names(model, qmodel.output_size)
            elif len(class_names) != qmodel.output_size:
                raise ExportError(
                    f"{len(class_names)} class names for a model with {qmodel.output_size} outputs"
                )
            files = render(qmodel, name, class_names)
            packaged = package_files(qmodel, name, files, kinds)
            blobs: dict[str, bytes] = {k: v.encode() for k, v in {**files, **packaged}.items()}
            blobs[qmodel_file(name)] = serialize.to_bytes(qmodel)
            manifest = {
                "rnn2c_version": __version__,
                "name": name,
                "source": qmodel.source,
                "input_size": qmodel.input_size,
                "output_size": qmodel.output_size,
                "input_quant": input_quant,
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
                "samples_per_step": k,
                "calibration": calibration,
                "activations": activations,
                "calibration_sequences": int(seqs.x.shape[0]),
                "layers": [
                    {"name": layer.name, "kind": layer.kind, "output_size": layer.output_size}
                    for layer in qmodel.layers
                ],
                "model_fingerprint": model_fingerprint(ir),
                "notes": qmodel.notes,
                "package": kinds,
            }
            if qmodel.input_sizes:  # several inputs (absent: one)
                manifest["inputs"] = input_manifest(qmodel)
            if class_names:
                manifest["class_names"] = list(class_names)
            folder.write(blobs, manifest)
    except OutputError as e:
        raise ExportError(str(e)) from None
    return ExportResult(
        Path(out_dir), name, sorted([*blobs, MANIFEST]), qmodel, manifest, qmodel.notes
    )


def _export_seq2seq(
    ir: Seq2SeqIR,
    model: Any,
    calib: Any,
    name: str,
    calibration: str,
    activations: str,
    input_quant: str,
    class_names: list[str] | None,
    kinds: list[str],
    max_length: int | None,
    given: tuple[int | None, int | None, int | None],
) -> tuple[dict[str, bytes], dict[str, Any], Any]:
    """The files and manifest of a seq2seq export (export/seq2seq.py)."""
    if activations != "int8":
        raise ExportError(
            "--activations int16 is not supported for seq2seq models (the attention reads "
            "int8 states); drop the flag"
        )
    if class_names:
        raise ExportError("class names are for classifiers; a seq2seq model outputs token ids")
    data = load_seq2seq_data(calib, "--calib", ir, need_y=True)
    settings = seq2seq_settings(model, data, given, max_length)
    start, end, max_len, max_out = settings.values
    qs = quantize_seq2seq(
        ir, data.x, data.lengths, data.y, start, end, max_len, max_out, calibration, input_quant
    )
    qs.notes += settings.notes
    files = render_seq2seq(qs, name)
    packaged = package_files(qs, name, files, kinds)
    blobs: dict[str, bytes] = {k: v.encode() for k, v in {**files, **packaged}.items()}
    blobs[qmodel_file(name)] = seq2seq_bytes(qs)
    manifest = {
        "rnn2c_version": __version__,
        "name": name,
        "kind": "seq2seq",
        "source": qs.source,
        "input_size": qs.input_size,
        "input_tokens": qs.tokens_in,
        "input_vocab": qs.encoder.vocab,
        "input_quant": input_quant,
        "input_scale": qs.input_q.to_json()["scale"],
        "input_zero_point": qs.input_q.to_json()["zero_point"],
        "vocab": qs.vocab,
        "start_token": qs.start_token,
        "end_token": qs.end_token,
        "max_length": qs.max_length,
        "max_output_length": qs.max_output_length,
        "attention": qs.attention.mode,
        "cell": qs.decoder.kind,
        "units": qs.units,
        "state_bytes": qs.state_bytes(),
        "weight_bytes": qs.weight_bytes(),
        "macs_per_encode_step": qs.encoder_macs(),
        "macs_per_token": qs.token_macs(),
        "calibration": calibration,
        "activations": activations,
        "calibration_sequences": int(data.x.shape[0]),
        "model_fingerprint": seq2seq_fingerprint(ir),
        "notes": qs.notes,
        "package": kinds,
    }
    return blobs, manifest, qs


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


def seq2seq_fingerprint(ir: Seq2SeqIR) -> str:
    """sha256 over a seq2seq float IR: the encoder's fingerprint, then the decoder's layers."""
    h = hashlib.sha256()
    h.update(model_fingerprint(ir.encoder).encode())
    for layer in (ir.dec_embedding, ir.decoder, ir.attention, *ir.mid, ir.out):
        _hash_layer(h, layer)
    h.update(f"context_first={ir.context_first}\0encoder_input={ir.encoder_input}".encode())
    return h.hexdigest()


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


def output_files(name: str) -> list[str]:
    """The files an export named ``name`` writes, besides the manifest (and the packaging)."""
    return [f"{name}.h", f"{name}.c", *RUNTIME_FILES, qmodel_file(name)]


def model_fingerprint(ir: ModelIR) -> str:
    """sha256 over the float IR (layer kinds, settings and weights, Normalization folded in):
    the same for a model in memory and for its saved .keras file."""
    h = hashlib.sha256()
    h.update(f"input_size={ir.input_size}\0".encode())
    if ir.embedding is not None:  # a token model's table (absent: the hash of earlier releases)
        _hash_layer(h, ir.embedding)
    for layer in ir.layers:
        _hash_layer(h, layer)
    if ir.inputs:  # a graph's wiring (absent: a chain, hashed as before)
        h.update(f"inputs={ir.inputs!r}\0".encode())
    if ir.input_sizes:  # several inputs: their names and split (absent: one input, as before)
        split = list(zip(ir.input_names, ir.input_sizes, strict=True))
        h.update(f"input_split={split!r}\0".encode())
    return h.hexdigest()


def _hash_layer(h: Any, layer: Any) -> None:
    h.update(f"{layer.kind}\0{layer.input_size}\0{layer.output_size}\0".encode())
    for f in dataclasses.fields(layer):
        v = getattr(layer, f.name)
        default = f.default is not dataclasses.MISSING and not isinstance(v, np.ndarray)
        if f.name == "name" or (default and v == f.default):
            continue  # a setting at its default hashes as before the setting existed
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v, dtype=np.float32)
            h.update(f"{f.name}{a.shape}\0".encode() + a.tobytes())
        elif isinstance(v, str | int | float | bool) or v is None:
            h.update(f"{f.name}={v!r}\0".encode())
        elif dataclasses.is_dataclass(v):  # a layer inside a layer (Bidirectional's cells)
            h.update(f"{f.name}:\0".encode())
            _hash_layer(h, v)
