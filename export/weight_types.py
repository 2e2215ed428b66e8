"""Which layers of a model get int4 weights (`--weights int4`, `--keep-int8 LAYER,...`).

int4 weights are symmetric, one scale per row like int8's, in -7..7 (no -8, as int8 has no -128:
the largest weight of either sign is exact), packed two a byte (quant_rules.pack_nibbles); the
requantization afterwards is int8's. The layers with int4 kernels are the GRU (both variants),
LSTM, SimpleRNN (also inside Bidirectional / go_backwards) and Dense; the others (Conv1D,
Embedding, attention) keep int8 weights, and the export says so in a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rnn2c.export.ir import ExportError

WEIGHT_TYPES = ("int8", "int4")
#: --keep-int8 kind names -> the quantized layers' kinds; these have int4 kernels
INT4_KINDS = {
    "gru": "gru",
    "lstm": "lstm",
    "simplernn": "rnn",
    "dense": "dense",
    "bidirectional": "bidir",
}
#: layers with weights but no int4 kernel (they stay int8), by kind, in words
INT8_ONLY = {"conv1d": "Conv1D", "embedding": "Embedding", "attention": "attention"}


def parse_keep_int8(keep: str | Iterable[str] | None) -> list[str]:
    """--keep-int8's value (comma-separated, or a list from the Python API) as names."""
    if keep is None:
        return []
    items = keep.split(",") if isinstance(keep, str) else list(keep)
    return [str(k).strip() for k in items if str(k).strip()]


def check_weight_options(weights: str, keep: list[str]) -> None:
    if weights not in WEIGHT_TYPES:
        raise ExportError(f"unknown weight type {weights!r}; use one of {', '.join(WEIGHT_TYPES)}")
    if keep and weights != "int4":
        raise ExportError(
            "--keep-int8 names layers to keep int8 under --weights int4; add --weights int4 "
            "or drop it"
        )


def layer_weight_bits(
    layers: list[Any], weights: str, keep: list[str], embedding: bool = False
) -> tuple[list[int], list[str]]:
    """(weight bits per float layer, notes for the export summary). Every name in ``keep`` must
    be a layer's name or a kind of INT4_KINDS (one-line ExportError otherwise). embedding: the
    model has an Embedding front end (its table stays int8: the note says so)."""
    check_weight_options(weights, keep)
    if weights == "int8":
        return [8] * len(layers), []
    names = {layer.name for layer in layers}
    unknown = [k for k in keep if k not in names and k.lower() not in INT4_KINDS]
    if unknown:
        raise ExportError(
            f"--keep-int8: {', '.join(repr(k) for k in unknown)} is neither a layer of the model "
            f"({', '.join(sorted(names))}) nor a layer kind ({', '.join(INT4_KINDS)})"
        )
    kept_kinds = {INT4_KINDS[k.lower()] for k in keep if k.lower() in INT4_KINDS}
    bits, stay = [], ["the Embedding table"] if embedding else []
    for layer in layers:
        int4 = layer.kind in INT4_KINDS.values()
        int4 = int4 and layer.name not in keep and layer.kind not in kept_kinds
        bits.append(4 if int4 else 8)
        if layer.kind in INT8_ONLY:
            stay.append(f"'{layer.name}' ({INT8_ONLY[layer.kind]})")
    notes = []
    if stay:
        notes.append(f"--weights int4: {', '.join(stay)} keep int8 weights (no int4 kernel)")
    return bits, notes


def set_weight_bits(qlayer: Any, bits: int) -> None:
    """Mark a quantized layer (and a Bidirectional's cells) as holding ``bits``-bit weights."""
    if bits == 8:
        return
    for _, cell in getattr(qlayer, "cells", lambda: [])():
        cell.weight_bits = bits
    if hasattr(qlayer, "fc"):
        qlayer.weight_bits = bits
