"""The library API behind `rnn2c export`: the model read and exported by its kind
(export/kinds.py), the files written into the output folder (rnn2c.outdir)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn2c import __version__
from rnn2c.export import kinds
from rnn2c.export.fingerprint import model_fingerprint
from rnn2c.export.ir import ExportError
from rnn2c.export.isa import RUNTIME_FILES
from rnn2c.export.modelkind import ExportOptions, ModelKind
from rnn2c.export.packaging import package_files, package_paths, parse_kinds
from rnn2c.export.ranges import parse_range
from rnn2c.export.render import check_name
from rnn2c.export.weight_types import check_weight_options, parse_keep_int8
from rnn2c.interface import python_api
from rnn2c.outdir import OutputError, OwnedFolder

MANIFEST = "rnn2c.json"

#: model_fingerprint is re-exported (its home is export/fingerprint.py)
__all__ = [
    "MANIFEST",
    "ExportResult",
    "export_model",
    "model_fingerprint",
    "output_files",
    "qmodel_file",
    "read_any",
]


def qmodel_file(name: str) -> str:
    return f"{name}_qmodel.npz"


@dataclass
class ExportResult:
    out_dir: Path
    name: str
    files: list[str]
    qmodel: Any  # the kind's quantized model: a QuantModel, a QuantSeq2Seq
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # what the exporter decided, for the user

    @property
    def kind(self) -> ModelKind:
        return kinds.of(self.qmodel)


def read_any(model: Any) -> tuple[Any, Any]:
    """A path to a .keras or .onnx file or an in-memory Keras model -> (the model loaded: a Keras
    model or an OnnxModel, float IR): a ModelIR, or a Seq2SeqIR for a two-input encoder-decoder
    (its kind: kinds.of(ir))."""
    keras_model, _, ir = kinds.read(model)
    return keras_model, ir


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
    frontend: Any = None,
    input_range: Any = None,
    output_range: Any = None,
    weights: str = "int8",
    keep_int8: str | list[str] | None = None,
    progress_prefix: str | None = None,
) -> ExportResult:
    """Keras model (.keras path or in memory) or ONNX model (.onnx path: a PyTorch model exported
    with torch.onnx; docs/pytorch.md) + calibration set -> C files in out_dir.

    calibration: "minmax" (the default), "percentile", "mse" (how activation ranges are
    chosen), or "auto" (per tensor, the method that gives the smallest end-to-end error on the
    calibration set: export/calib_auto.py);
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
    frontend: an audio front end (the frontend.json of `rnn2c train --features logmel`, or its
    dict): <name>_push_audio computes the model's int8 input from int16 PCM (docs/audio.md).
    input_range, output_range: declared ranges that replace the calibrated ones of the model
    input and of its output (export/ranges.py): "LO:HI", "IDX:LO:HI,...", a .json/.npz path,
    [lo, hi], [[lo, hi], ...] or {idx: [lo, hi]}; per-feature input ranges need
    input_quant="per-feature".
    weights: "int8" (default) or "int4": int4 weight rows (-7..7, two a byte) for the GRU,
    LSTM, SimpleRNN and Dense layers, except those keep_int8 names (layer names or kinds:
    "dense", "gru", "lstm", "simplernn", "bidirectional"; a list or "a,b"); docs/quantization.md.

    progress_prefix: print the progress lines (the choices of calibration "auto") on stderr once
    the folder is written, each after this prefix ("rnn2c export"); None: none.

    out_dir may hold other files (a firmware source folder): rnn2c replaces only the files its
    previous manifest lists, refuses to overwrite anything else or its own inputs, and swaps the
    new files in crash-safely (see rnn2c.outdir). On any error nothing is changed.
    """
    problem = check_name(name)
    if problem:
        raise ExportError(problem)
    packages = parse_kinds(package)
    held: list[str] = []  # progress lines, printed once the folder is written
    declared_in = parse_range(input_range, "--input-range")  # bad syntax: before any work
    declared_out = parse_range(output_range, "--output-range")
    options = ExportOptions(
        name=name,
        calibration=calibration,
        activations=activations,
        input_quant=input_quant,
        class_names=class_names,
        max_length=max_length,
        start_token=start_token,
        end_token=end_token,
        max_output_length=max_output_length,
        samples_per_step=samples_per_step,
        say=None if progress_prefix is None else held.append,
        frontend=frontend,
        input_range=declared_in,
        output_range=declared_out,
        weights=weights,
        keep_int8=parse_keep_int8(keep_int8),
    )
    check_weight_options(weights, options.keep_int8 or [])
    inputs = [p for p in (model, calib, frontend) if isinstance(p, str | os.PathLike)]
    names = [*output_files(name), *package_paths(name, packages), MANIFEST]
    try:
        with OwnedFolder(out_dir, MANIFEST, "--out", inputs) as folder:
            folder.check_replaceable(names)  # before the long work
            _, kind, ir = kinds.read(model)
            done = kind.export(model, ir, calib, options)
            qmodel = done.qmodel
            packaged = package_files(qmodel, name, done.files, packages)
            blobs = {k: v.encode() for k, v in {**done.files, **packaged}.items()}
            blobs[qmodel_file(name)] = kind.to_bytes(qmodel)
            manifest = {
                "rnn2c_version": __version__,
                "name": name,
                **done.manifest,
                "package": packages,
            }
            folder.write(blobs, manifest)
    except OutputError as e:
        raise ExportError(str(e)) from None
    for line in held:  # after the write: a failed export stays one line on stderr
        print(f"{progress_prefix}: {line}", file=sys.stderr, flush=True)
    return ExportResult(
        Path(out_dir), name, sorted([*blobs, MANIFEST]), qmodel, manifest, qmodel.notes
    )


def output_files(name: str) -> list[str]:
    """The files an export named ``name`` writes, besides the manifest."""
    return [f"{name}.h", f"{name}.c", *RUNTIME_FILES, qmodel_file(name)]
