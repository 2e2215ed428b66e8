"""Every model kind rnn2c knows (export/modelkind.py), and the one way to find an object's.

A command finds the kind once: of a Keras model (of_keras, read), of a float IR or quantized
model (of), or of a quantized file's header or a manifest (named), and asks it from then on.

read is also the one place that picks the front end by the model file's type: a .keras (or
.h5) file is loaded by Keras and read by its kind; an .onnx file (a PyTorch model exported with
torch.onnx) by export/onnx_reader.py into a sequence model, held as an OnnxModel whose float
outputs come from onnxruntime (is_keras and float_framework tell the commands which they hold).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rnn2c.export.ir import ExportError
from rnn2c.export.keras_reader import load_keras_model
from rnn2c.export.modelkind import ModelKind
from rnn2c.export.onnx_reader import OnnxModel
from rnn2c.export.seq2seq_kind import SEQ2SEQ
from rnn2c.export.sequence_kind import SEQUENCE

#: the kinds, in the order they are asked to claim a Keras model (the catch-all last)
KINDS: tuple[ModelKind, ...] = (SEQ2SEQ, SEQUENCE)
#: the kind of a file whose header or manifest names none (written before kinds existed)
DEFAULT = SEQUENCE


def of_keras(keras_model: Any) -> ModelKind:
    """The kind that reads this Keras model."""
    return next(k for k in KINDS if k.claims(keras_model))


def of(obj: Any) -> ModelKind:
    """The kind of a float IR or quantized model."""
    for kind in KINDS:
        if kind.holds(obj):
            return kind
    raise TypeError(f"{type(obj).__name__} is not a float IR or quantized model of any kind")


def named(name: Any, where: str) -> ModelKind:
    """The kind a quantized file's header or a manifest names ("kind"; none: DEFAULT)."""
    if name is None:
        return DEFAULT
    for kind in KINDS:
        if kind.name == name:
            return kind
    known = ", ".join(k.name for k in KINDS)
    raise ExportError(
        f"{where!r}: model kind {name!r} is not one this rnn2c knows ({known}); export the "
        "model again with this rnn2c"
    )


def load(path: str | os.PathLike[str]) -> Any:
    """A model file -> the model loaded: an OnnxModel for .onnx, else the Keras model (one-line
    ExportError for a file that cannot be read)."""
    if Path(path).suffix.lower() == ".onnx":
        return OnnxModel.read(path)
    return load_keras_model(path)


def read(model: Any) -> tuple[Any, ModelKind, Any]:
    """A model file (.keras, .h5, .onnx), an in-memory Keras model or an OnnxModel -> (the model
    loaded: a Keras model or an OnnxModel, its kind, its float IR)."""
    if isinstance(model, str | os.PathLike):
        model = load(model)
    if isinstance(model, OnnxModel):
        return model, SEQUENCE, model.ir
    kind = of_keras(model)
    return model, kind, kind.read(model)


def is_keras(model: Any) -> bool:
    """Whether a model read() loaded is a Keras model (what only Keras has: the peers' .tflite
    conversion in bench, the Keras layers); False for an OnnxModel."""
    return not isinstance(model, OnnxModel)


def float_framework(model: Any) -> str:
    """What computes a loaded model's float outputs, for reports: "Keras" or "onnxruntime"."""
    return "Keras" if is_keras(model) else "onnxruntime"
