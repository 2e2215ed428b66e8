"""Render a QuantSeq2Seq to C: <name>.h, <name>.c (templates seq2seq.h.j2, seq2seq.c.j2, the
layer blocks of the encoder's, the decoder's and the Dense layers) and the runtime header."""

from __future__ import annotations

from typing import Any

from rnn2c import __version__
from rnn2c.export.ir import CTYPE_BYTES, ExportError
from rnn2c.export.quantize import pad4
from rnn2c.export.render import (
    LayerView,
    check_name,
    layer_view,
    runtime_files,
    scratch_layout,
    table_bytes,
    template_environment,
)
from rnn2c.export.seq2seq import QuantSeq2Seq

ATTENTION_LABELS = {
    "dot": "Attention (Luong, dot)",
    "concat": "Attention (Luong, concat)",
    "additive": "AdditiveAttention (Bahdanau)",
}


def _views(
    q: QuantSeq2Seq, upper: str
) -> tuple[list[LayerView], list[LayerView], LayerView, list[LayerView]]:
    """(the encoder's per-step views, a Bidirectional encoder's [forward, backward] cell views
    (else []), the decoder's view, the Dense layers' views)."""
    encoder: list[LayerView] = []
    cells: list[LayerView] = []
    prev = "row"
    for i, layer in enumerate(q.encoder.layers):
        p = f"enc{i}_{layer.kind}"
        if layer.kind == "bidir":  # the last layer: its cells, the forward one per step
            for key, cell in layer.cells():
                row = "inner" if key == "fw" else "bw_row"
                cells.append(
                    layer_view(i, cell, f"{p}_{key}", upper, row, 8, f"state->{p}_{key}_h")
                )
            encoder.append(layer_view(i, layer, p, upper, prev, 8, ""))
            break
        buffer = None if layer.state_fields() else f"{p}_out"
        output = f"state->{p}_h" if buffer is None else buffer
        encoder.append(layer_view(i, layer, p, upper, prev, 8, output, buffer))
        prev = output
    p = f"dec_{q.decoder.kind}"
    decoder = layer_view(0, q.decoder, p, upper, "row", 8, f"state->{p}_h")
    mid: list[LayerView] = []
    prev = "cat"
    for j, layer in enumerate(q.mid):
        p = f"mid{j}_dense"
        mid.append(layer_view(j, layer, p, upper, prev, 8, f"{p}_out", f"{p}_out"))
        prev = f"{p}_out"
    return encoder, cells, decoder, mid


def state_fields(q: QuantSeq2Seq, encoder: list[LayerView], decoder: LayerView) -> list[dict]:
    """The members of <name>_state_t, widest type first (no padding between them)."""
    fields: list[dict[str, Any]] = []
    if q.bidirectional:
        width = int(q.encoder.layers[-1].input_size)
        fields += [
            {
                "ctype": "int32_t",
                "member": "bw_length",
                "length": None,
                "comment": "steps the backward direction last ran over (decode reruns it)",
            },
            {
                "ctype": "int8_t",
                "member": "inputs",
                "length": q.max_length * width,
                "comment": f"the Bidirectional layer's input at each step [{q.max_length}]"
                f"[{width}], for the backward direction",
            },
        ]
    fields += [
        {
            "ctype": "int32_t",
            "member": "length",
            "length": None,
            "comment": "input steps encoded so far",
        },
        {
            "ctype": "int32_t",
            "member": "scores",
            "length": q.max_length,
            "comment": "decode's working row: attention scores, then weights",
        },
        {
            "ctype": "int8_t",
            "member": "values",
            "length": q.max_length * q.units,
            "comment": f"the encoder output of each step [{q.max_length}][{q.units}], Q0.7",
        },
    ]
    for v in [*encoder, decoder]:
        role = "decoder" if v is decoder else f"encoder layer {v.index}"
        for f in v.q.state_fields():
            fields.append(
                {
                    "ctype": f.ctype,
                    "member": f"{v.p}_{f.name}",
                    "length": f.length,
                    "comment": f"{role} '{v.q.name}': {f.comment}",
                }
            )
    fields.sort(key=lambda f: -CTYPE_BYTES[f["ctype"]])
    return fields


def state_bytes(fields: list[dict]) -> int:
    size = sum(CTYPE_BYTES[f["ctype"]] * (f["length"] or 1) for f in fields)
    return -(-size // 4) * 4  # the int32 members align the struct to 4 bytes


def render_seq2seq(q: QuantSeq2Seq, name: str) -> dict[str, str]:
    """{file name: text} for <name>.h, <name>.c and the runtime header."""
    problem = check_name(name)
    if problem:
        raise ExportError(problem)
    upper = name.upper()
    encoder, cells, decoder, mid = _views(q, upper)
    fields = state_fields(q, encoder, decoder)
    assert state_bytes(fields) == q.state_bytes()
    chain = [v.q for v in encoder if v.q.kind != "bidir"]
    scratch = []
    for tag, fn, layers, buffer_bytes in (  # buffer_bytes: the int8 stack arrays beside it
        (
            "ENC",
            f"{name}_encode_row",
            chain + [c.q for c in cells[:1]],
            sum(v.q.output_size for v in encoder if v.buffer),
        ),
        (
            "DEC",
            f"{name}_decode",
            [decoder.q] + [v.q for v in mid],
            2 * q.units + sum(v.q.output_size for v in mid),
        ),
        ("BWD", f"{name}_backward", [c.q for c in cells[1:]], 0),
    ):
        if not layers:
            continue
        words, offset, halfwords = scratch_layout(layers)
        if tag == "DEC":  # the attention's query pairs and the argmax head's input pairs
            halfwords = max(halfwords, pad4(q.units), pad4(q.out.cols))
        halfwords = max(halfwords, 2)
        scratch.append(
            {
                "tag": tag,
                "fn": fn,
                "words": words,
                "offset": offset,
                "halfwords": halfwords,
                "bytes": 2 * halfwords + buffer_bytes,
            }
        )
    stack = max(part["bytes"] for part in scratch)
    sources = [c.p for c in cells] if cells else [encoder[-1].p]
    width = q.units // len(sources)
    handover = [  # (decoder member, encoder member, offset, count)
        (f"{decoder.p}_{f.name}", f"{src}_{f.name}", k * width, width)
        for f in decoder.q.state_fields()
        for k, src in enumerate(sources)
    ]
    input_json = q.input_q.to_json()
    ctx = {
        "name": name,
        "NAME": upper,
        "version": __version__,
        "source": q.source,
        "tokens_in": q.tokens_in,
        "enc_embedding": q.encoder.embedding,
        "dec_embedding": q.dec_embedding,
        "encoder": [v for v in encoder if v.q.kind != "bidir"],
        "cells": cells,
        "bidir": encoder[-1] if cells else None,
        "decoder": decoder,
        "mid": mid,
        "out": q.out,
        "attention": q.attention,
        "attention_label": ATTENTION_LABELS[q.attention.mode],
        "context_first": q.context_first,
        "input_size": q.input_size,
        "input_q": q.input_q,
        "input_json": input_json,
        "vocab": q.vocab,
        "start_token": q.start_token,
        "end_token": q.end_token,
        "max_length": q.max_length,
        "max_output_length": q.max_output_length,
        "units": q.units,
        "state_fields": fields,
        "state_bytes": state_bytes(fields),
        "stack_bytes": stack,
        "scratch": scratch,
        "handover": handover,
        "weight_bytes": q.weight_bytes(),
        "table_bytes": table_bytes(),
        "encoder_macs": q.encoder_macs(),
        "token_macs": q.token_macs(),
        "calibration": q.calibration,
    }
    env = template_environment()
    return {
        f"{name}.h": env.get_template("seq2seq.h.j2").render(**ctx),
        f"{name}.c": env.get_template("seq2seq.c.j2").render(**ctx),
        **runtime_files(),
    }
