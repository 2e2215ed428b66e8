"""The seq2seq kind: an encoder-decoder with attention (export/seq2seq.py reads, quantizes and
holds its integer reference; export/seq2seq_render.py renders <name>_encode / <name>_decode)."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np

from rnn2c.export.fingerprint import hash_layer, model_fingerprint
from rnn2c.export.ir import ExportError
from rnn2c.export.modelkind import Exported, ExportOptions, ModelKind
from rnn2c.export.render import LABELS
from rnn2c.export.seq2seq import (
    QuantSeq2Seq,
    Seq2SeqIR,
    from_arrays,
    is_seq2seq,
    load_seq2seq_data,
    quantize_seq2seq,
    read_seq2seq,
    seq2seq_settings,
    to_bytes,
)
from rnn2c.export.seq2seq_render import render_seq2seq


class Seq2SeqKind(ModelKind):
    name: ClassVar[str] = "seq2seq"
    title: ClassVar[str] = "a seq2seq (encoder-decoder) model"

    def claims(self, keras_model: Any) -> bool:
        return is_seq2seq(keras_model)

    def read(self, keras_model: Any) -> Seq2SeqIR:
        return read_seq2seq(keras_model)

    def holds(self, obj: Any) -> bool:
        return isinstance(obj, Seq2SeqIR | QuantSeq2Seq)

    def fingerprint(self, ir: Seq2SeqIR) -> str:
        return seq2seq_fingerprint(ir)

    def export(self, model: Any, ir: Seq2SeqIR, calib: Any, options: ExportOptions) -> Exported:
        o = options
        if o.samples_per_step not in (None, 1):
            raise ExportError(
                f"--samples-per-step {o.samples_per_step}: framing is for single-input "
                "models; a seq2seq encoder reads its input rows as given: drop the flag"
            )
        if o.weights != "int8":
            raise ExportError(
                f"--weights {o.weights} is for sequence models (GRU, LSTM, SimpleRNN, Dense); "
                "a seq2seq model's weights stay int8: drop the flag"
            )
        if o.activations != "int8":
            raise ExportError(
                "--activations int16 is not supported for seq2seq models (the attention reads "
                "int8 states); drop the flag"
            )
        if o.class_names:
            raise ExportError("class names are for classifiers; a seq2seq model outputs token ids")
        if o.input_range is not None or o.output_range is not None:
            raise ExportError(
                "--input-range and --output-range are for sequence models; a seq2seq model "
                "reads and writes token ids: drop them"
            )
        data = load_seq2seq_data(calib, "--calib", ir, need_y=True)
        given = (o.start_token, o.end_token, o.max_output_length)
        settings = seq2seq_settings(model, data, given, o.max_length)
        start, end, max_len, max_out = settings.values
        qs = quantize_seq2seq(
            ir,
            data.x,
            data.lengths,
            data.y,
            start,
            end,
            max_len,
            max_out,
            o.calibration,
            o.input_quant,
        )
        qs.notes += settings.notes
        manifest = {
            **self.tag(),
            "source": qs.source,
            "input_size": qs.input_size,
            "input_tokens": qs.tokens_in,
            "input_vocab": qs.encoder.vocab,
            "input_quant": o.input_quant,
            "input_scale": qs.input_q.to_json()["scale"],
            "input_zero_point": qs.input_q.to_json()["zero_point"],
            "vocab": qs.vocab,
            "start_token": qs.start_token,
            "end_token": qs.end_token,
            "max_length": qs.max_length,
            "max_output_length": qs.max_output_length,
            "attention": qs.attention.mode,
            "cell": qs.decoder.kind,
            "units": qs.units,
            "state_bytes": qs.state_bytes(),
            "weight_bytes": qs.weight_bytes(),
            "macs_per_encode_step": qs.encoder_macs(),
            "macs_per_token": qs.token_macs(),
            "calibration": o.calibration,
            "activations": o.activations,
            "calibration_sequences": int(data.x.shape[0]),
            "model_fingerprint": seq2seq_fingerprint(ir),
            "notes": qs.notes,
        }
        return Exported(qs, render_seq2seq(qs, o.name), manifest)

    def to_bytes(self, qmodel: QuantSeq2Seq) -> bytes:
        return to_bytes(qmodel, self.tag())

    def from_arrays(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray], path: str
    ) -> QuantSeq2Seq:
        return from_arrays(header, arrays, path)

    def summary(self, qmodel: QuantSeq2Seq, manifest: dict[str, Any], name: str) -> list[str]:
        m = manifest
        source = "token ids" if m["input_tokens"] else f"{m['input_size']} features per step"
        entry = f"{name}_encode_tokens" if m["input_tokens"] else f"{name}_encode"
        return [
            f"  seq2seq: {m['cell'].upper()} encoder over {source} (up to {m['max_length']} "
            f"steps), {m['attention']} attention, {m['vocab']} output tokens (start "
            f"{m['start_token']}, end {m['end_token']}, up to {m['max_output_length']})",
            f"  state {m['state_bytes']} bytes, weights {m['weight_bytes']} bytes, "
            f"{m['macs_per_encode_step']} MACs per input step, {m['macs_per_token']} MACs per "
            f"output token; API {entry} / {name}_decode",
        ]

    def package_about(self, qmodel: QuantSeq2Seq, name: str) -> dict[str, str]:
        return {
            "summary": f"{LABELS[qmodel.decoder.kind]} encoder-decoder with attention",
            "api": f"{name}_encode() per input, {name}_decode() for the output tokens",
            "figures": f"{qmodel.vocab} output tokens, up to {qmodel.max_length} input steps, "
            f"{qmodel.state_bytes()} bytes of state",
        }

    def code_parts(self, qmodel: QuantSeq2Seq) -> tuple[list[Any], list[str]]:
        kernels: dict[str, Any] = {}  # its encoder and decoder call the same kernels
        for layer in [*qmodel.encoder.layers, qmodel.decoder, *qmodel.mid]:
            kernels.setdefault(layer.kind, layer)
        parts = ["seq2seq", f"attention:{qmodel.attention.mode}", "dense", "embedding"]
        return list(kernels.values()), parts  # the output layer, the tables

    def check_model(self, ir: Seq2SeqIR, qmodel: QuantSeq2Seq, folder: str) -> None:
        return None  # the fingerprint says it all


SEQ2SEQ = Seq2SeqKind()


def seq2seq_fingerprint(ir: Seq2SeqIR) -> str:
    """sha256 over a seq2seq float IR: the encoder's fingerprint, then the decoder's layers."""
    h = hashlib.sha256()
    h.update(model_fingerprint(ir.encoder).encode())
    for layer in (ir.dec_embedding, ir.decoder, ir.attention, *ir.mid, ir.out):
        hash_layer(h, layer)
    h.update(f"context_first={ir.context_first}\0encoder_input={ir.encoder_input}".encode())
    return h.hexdigest()
