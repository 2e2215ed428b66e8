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
from rnn2c.export.data import Sequences, check_inputs, check_tokens, load_sequences
from rnn2c.export.ir import ExportError, ModelIR, QuantModel
from rnn2c.export.keras_reader import load_keras_model, read_model
from rnn2c.export.packaging import package_files, package_paths, parse_kinds
from rnn2c.export.quantize import quantize_model
from rnn2c.export.render import RUNTIME_HEADER, check_name, render
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


def read_any(model: Any) -> tuple[Any, ModelIR]:
    """A path to a .keras file or an in-memory Keras model -> (keras model, float IR)."""
    if isinstance(model, str | os.PathLike):
        model = load_keras_model(model)
    return model, read_model(model)


def _calibration(calib: Any, features: int, tokens: Any = None) -> Sequences:
    if isinstance(calib, Sequences):
        if tokens is not None:
            x, lengths = check_tokens(calib.x, calib.lengths, "calibration", tokens)
            return Sequences(x, calib.y, lengths)
        return calib
    if isinstance(calib, str | os.PathLike):
        return load_sequences(calib, "--calib", features, tokens)
    if tokens is not None:
        x, lengths = check_tokens(calib, None, "calibration array", tokens)
        return Sequences(x=x, y=None, lengths=lengths)
    return Sequences(x=check_inputs(calib, "calibration array", features), y=None, lengths=None)


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
    a Bidirectional or go_backwards layer, optional for a causal model.

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
            seqs = _calibration(calib, ir.input_size, ir.embedding)
            qmodel = quantize_model(
                ir, seqs.x, seqs.lengths, calibration, activations, input_quant, max_length
            )
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
            if class_names:
                manifest["class_names"] = list(class_names)
            folder.write(blobs, manifest)
    except OutputError as e:
        raise ExportError(str(e)) from None
    return ExportResult(
        Path(out_dir), name, sorted([*blobs, MANIFEST]), qmodel, manifest, qmodel.notes
    )


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


def output_files(name: str) -> list[str]:
    """The files an export named ``name`` writes, besides the manifest."""
    return [f"{name}.h", f"{name}.c", RUNTIME_HEADER, qmodel_file(name)]


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
    return h.hexdigest()


def _hash_layer(h: Any, layer: Any) -> None:
    h.update(f"{layer.kind}\0{layer.input_size}\0{layer.output_size}\0".encode())
    for f in dataclasses.fields(layer):
        v = getattr(layer, f.name)
        if f.name == "name" or (f.default is not dataclasses.MISSING and v == f.default):
            continue  # a setting at its default hashes as before the setting existed
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v, dtype=np.float32)
            h.update(f"{f.name}{a.shape}\0".encode() + a.tobytes())
        elif isinstance(v, str | int | float | bool) or v is None:
            h.update(f"{f.name}={v!r}\0".encode())
        elif dataclasses.is_dataclass(v):  # a layer inside a layer (Bidirectional's cells)
            h.update(f"{f.name}:\0".encode())
            _hash_layer(h, v)
