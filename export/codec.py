"""The .npz file of a quantized model (arrays, and a JSON header in the array "header"; no
pickle), and the sequence kind's QuantModel in it. export/serialize.py saves and loads a
quantized model of any kind through its kind (export/kinds.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import typing
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ActQuant, ExportError, QuantModel
from rnn2c.export.layers import QUANT_CLASSES
from rnn2c.export.layers.embedding import QuantEmbedding
from rnn2c.export.quantize import QuantFC

FORMAT_VERSION = 4  # 4: the rows of a kind share shift_in and shift_out (the C stores them once)
# 3: an int16 part of the vector may be shifted right (negative shift)
# 2: one fused weight matrix per layer (fc), 32-bit requantization


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """The .npz bytes of arrays and a header (JSON, keys sorted, in the array "header")."""
    arrays = {**arrays}
    arrays["header"] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def read_npz(path: str | Path | io.BytesIO) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of a quantized model's .npz; one-line ExportError on a file that is not
    one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        zipfile.BadZipFile,
        AttributeError,
        TypeError,
    ) as e:
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        if "pickle" in reason:  # what NumPy says of any file without the .npz signature
            reason = "not an .npz file"
        raise ExportError(
            f"cannot read quantized model {str(path)!r} ({reason}); export the model again"
        ) from None
    if not isinstance(header, dict):
        raise ExportError(f"{str(path)!r} is not an rnn2c quantized model; export the model again")
    return header, arrays


def to_bytes(qmodel: QuantModel) -> bytes:
    """A sequence model's .npz (its header names no kind: the files of earlier releases)."""
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(qmodel.layers):
        arrays.update({f"{i}.{key}": v for key, v in layer.arrays().items()})
        layers.append({**layer.scalars(), "kind": layer.kind})
    header = {
        "format": FORMAT_VERSION,
        "input_q": qmodel.input_q.to_json(),
        "input_quant": qmodel.input_quant,
        "activations": qmodel.activations,
        "input_size": qmodel.input_size,
        "calibration": qmodel.calibration,
        "source": qmodel.source,
        "layers": layers,
        "sequence_out": list(qmodel.sequence_out),
        "max_length": qmodel.max_length,
    }
    if qmodel.inputs:  # a graph of branches (absent key: a chain)
        header["inputs"] = [list(ins) for ins in qmodel.inputs]
    if qmodel.mask_value is not None:  # a Masking first layer (absent key: none)
        header["mask_value"] = float(qmodel.mask_value)
    if qmodel.input_sizes:  # several model inputs (absent keys: one)
        header["input_names"] = list(qmodel.input_names)
        header["input_sizes"] = [int(v) for v in qmodel.input_sizes]
    if qmodel.samples_per_step > 1:  # a framed model (absent key: 1, unframed)
        header["samples_per_step"] = qmodel.samples_per_step
    if qmodel.frontend is not None:  # an audio front end (absent key: none)
        header["frontend"] = dict(qmodel.frontend)
    if qmodel.embedding is not None:  # a token model (absent key: no Embedding)
        header["embedding"] = qmodel.embedding.to_json()
        arrays["embedding.table"] = qmodel.embedding.table
    return pack(header, arrays)


def from_bytes(data: bytes, what: str) -> QuantModel:
    """A sequence model saved by to_bytes inside another file (a seq2seq model's encoder)."""
    header, arrays = read_npz(io.BytesIO(data))
    return from_arrays(header, arrays, what)


def from_arrays(
    header: dict[str, Any], arrays: dict[str, np.ndarray], path: str | Path
) -> QuantModel:
    """A sequence model from its .npz header and arrays (read_npz)."""
    if header.get("format") != FORMAT_VERSION:
        raise ExportError(
            f"{str(path)!r}: quantized-model format {header.get('format')} is not this rnn2c's "
            f"format {FORMAT_VERSION} (written by another version); export the model again"
        )
    layers = [layer_from(meta, arrays, f"{i}.") for i, meta in enumerate(header["layers"])]
    max_length = header.get("max_length")
    embedding = None
    if header.get("embedding") is not None:
        embedding = QuantEmbedding.from_json(header["embedding"], arrays["embedding.table"])
    return QuantModel(
        layers=layers,
        input_q=ActQuant.from_json(header["input_q"]),
        input_size=int(header["input_size"]),
        calibration=header.get("calibration", "minmax"),
        source=header.get("source", ""),
        activations=header.get("activations", "int8"),
        input_quant=header.get("input_quant", "per-tensor"),
        sequence_out=[bool(v) for v in header.get("sequence_out", [])],
        max_length=None if max_length is None else int(max_length),
        embedding=embedding,
        inputs=[[int(i) for i in ins] for ins in header.get("inputs", [])],
        mask_value=None if header.get("mask_value") is None else float(header["mask_value"]),
        input_names=[str(v) for v in header.get("input_names", [])],
        input_sizes=[int(v) for v in header.get("input_sizes", [])],
        samples_per_step=int(header.get("samples_per_step", 1)),
        frontend=header.get("frontend"),
    )


def layer_from(meta: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """One quantized layer from its header entry and its arrays (keys prefix + field); a field
    that holds a layer (Bidirectional's cells) is a nested entry with its own 'kind'."""
    cls = QUANT_CLASSES[meta["kind"]]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if hints.get(f.name) is QuantFC:
            kwargs[f.name] = QuantFC(
                **{g.name: arrays[f"{key}.{g.name}"] for g in dataclasses.fields(QuantFC)}
            )
        elif key in arrays:
            kwargs[f.name] = arrays[key]
        elif f.name == "output_q":
            kwargs[f.name] = ActQuant.from_json(meta[f.name])
        elif isinstance(meta.get(f.name), dict) and "kind" in meta[f.name]:
            kwargs[f.name] = layer_from(meta[f.name], arrays, f"{key}.")
        elif f.name in meta:
            kwargs[f.name] = meta[f.name]
        # else: a field newer than the file; its dataclass default applies
    return cls(**kwargs)
