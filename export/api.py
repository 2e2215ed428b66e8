"""The library API behind `rnn2c export`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnn2c import __version__
from rnn2c.export import serialize
from rnn2c.export.data import Sequences, check_inputs, load_sequences
from rnn2c.export.ir import ExportError, ModelIR, QuantModel
from rnn2c.export.keras_reader import load_keras_model, read_model
from rnn2c.export.packaging import package_files, parse_kinds
from rnn2c.export.quantize import quantize_model
from rnn2c.export.render import check_name, render

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


def read_any(model: Any) -> tuple[Any, ModelIR]:
    """A path to a .keras file or an in-memory Keras model -> (keras model, float IR)."""
    if isinstance(model, str | os.PathLike):
        model = load_keras_model(model)
    return model, read_model(model)


def _calibration(calib: Any, features: int) -> Sequences:
    if isinstance(calib, Sequences):
        return calib
    if isinstance(calib, str | os.PathLike):
        return load_sequences(calib, "--calib", features)
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
    The folder is written atomically: on any error it is left as it was.
    """
    problem = check_name(name)
    if problem:
        raise ExportError(problem)
    kinds = parse_kinds(package)
    out = Path(out_dir)
    _check_out_dir(out)
    _, ir = read_any(model)
    seqs = _calibration(calib, ir.input_size)
    qmodel = quantize_model(ir, seqs.x, seqs.lengths, calibration, activations, input_quant)
    if class_names is None:
        class_names = run_folder_class_names(model, qmodel.output_size)
    elif len(class_names) != qmodel.output_size:
        raise ExportError(
            f"{len(class_names)} class names for a model with {qmodel.output_size} outputs"
        )
    files = render(qmodel, name, class_names)
    packaged = package_files(qmodel, name, files, kinds)
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
        "calibration": calibration,
        "activations": activations,
        "calibration_sequences": int(seqs.x.shape[0]),
        "layers": [
            {"name": layer.name, "kind": layer.kind, "output_size": layer.output_size}
            for layer in qmodel.layers
        ],
        "files": sorted([*files, *packaged, qmodel_file(name)]),
        "package": kinds,
    }
    if class_names:
        manifest["class_names"] = list(class_names)
    blobs: dict[str, bytes] = {k: v.encode() for k, v in {**files, **packaged}.items()}
    blobs[qmodel_file(name)] = serialize.to_bytes(qmodel)
    blobs[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    write_folder_atomically(out, blobs)
    return ExportResult(out, name, sorted(blobs), qmodel, manifest)


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


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {str(out)!r} is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ExportError(
            f"--out {str(out)!r} is a non-empty folder that rnn2c did not write; "
            "give a new or empty folder (rnn2c replaces its own export folders only)"
        )


def write_folder_atomically(out: Path, blobs: dict[str, bytes]) -> None:
    """Write files into a sibling temp folder, then swap it in with renames."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for fname, data in blobs.items():
            (tmp / fname).parent.mkdir(parents=True, exist_ok=True)  # nested: src/<name>.c
            with open(tmp / fname, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
