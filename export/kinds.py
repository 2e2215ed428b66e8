"""Every model kind rnn2c knows (export/modelkind.py), and the one way to find an object's.

A command finds the kind once: of a Keras model (of_keras, read), of a float IR or quantized
model (of), or of a quantized file's header or a manifest (named), and asks it from then on.
"""

from __future__ import annotations

import os
from typing import Any

from rnn2c.export.ir import ExportError
from rnn2c.export.keras_reader import load_keras_model
from rnn2c.export.modelkind import ModelKind
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


def read(model: Any) -> tuple[Any, ModelKind, Any]:
    """A .keras path or an in-memory Keras model -> (the Keras model, its kind, its float IR)."""
    if isinstance(model, str | os.PathLike):
        model = load_keras_model(model)
    kind = of_keras(model)
    return model, kind, kind.read(model)
