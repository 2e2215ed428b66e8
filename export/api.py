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
) -> ExportResult:
    """Keras model (.keras path or in memory) + calibration set -> C files in out_dir.

    calibration: "minmax", "percentile" or "mse" (how activation ranges are chosen);
    activations: "int8" or "int16" hidden states (weights are int8 either way);
    input_quant: "per-tensor" (the scalar <NAME>_INPUT_SCALE API) or "per-feature" (the header
    gives <NAME>_INPUT_SCALES / <NAME>_INPUT_ZERO_POINTS arrays instead).
    The folder is written atomically: on any error it is left as it was.
    """
    problem = check_name(name)
    if problem:
        raise ExportError(problem)
    out = Path(out_dir)
    _check_out_dir(out)
    _, ir = read_any(model)
    seqs = _calibration(calib, ir.input_size)
    qmodel = quantize_model(ir, seqs.x, seqs.lengths, calibration, activations, input_quant)
    files = render(qmodel, name)
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
        "files": sorted([*files, qmodel_file(name)]),
    }
    blobs: dict[str, bytes] = {k: v.encode() for k, v in files.items()}
    blobs[qmodel_file(name)] = serialize.to_bytes(qmodel)
    blobs[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    write_folder_atomically(out, blobs)
    return ExportResult(out, name, sorted(blobs), qmodel, manifest)


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
