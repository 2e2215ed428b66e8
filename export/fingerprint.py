"""sha256 fingerprints of a float IR: the same for a model in memory and for its saved .keras
file. The manifest records the exported model's; verify refuses a model whose own differs."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from rnn2c.export.ir import ModelIR


def model_fingerprint(ir: ModelIR) -> str:
    """sha256 over the float IR (layer kinds, settings and weights, Normalization folded in):
    the same for a model in memory and for its saved .keras file."""
    h = hashlib.sha256()
    h.update(f"input_size={ir.input_size}\0".encode())
    if ir.embedding is not None:  # a token model's table (absent: the hash of earlier releases)
        hash_layer(h, ir.embedding)
    for layer in ir.layers:
        hash_layer(h, layer)
    if ir.inputs:  # a graph's wiring (absent: a chain, hashed as before)
        h.update(f"inputs={ir.inputs!r}\0".encode())
    if ir.input_sizes:  # several inputs: their names and split (absent: one input, as before)
        split = list(zip(ir.input_names, ir.input_sizes, strict=True))
        h.update(f"input_split={split!r}\0".encode())
    return h.hexdigest()


def hash_layer(h: Any, layer: Any) -> None:
    """Add one float layer (its kind, sizes, and every field not at its default) to hash h."""
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
            hash_layer(h, v)
