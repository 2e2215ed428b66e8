"""Sequence to sequence with attention: reader, quantizer and integer reference.

The accepted Keras pattern (one functional model with two inputs, as tutorials build it for
training with teacher forcing):

    encoder:   Input((None, F)) or Input((None,)) + Embedding -> [GRU/LSTM(return_sequences)]*
               -> GRU/LSTM(return_sequences=True, return_state=True)
    decoder:   Input((None,)) + Embedding -> GRU/LSTM(return_sequences=True,
               initial_state=<the encoder's states>)
    attention: Attention() (dot, scaled, score_mode="concat") or AdditiveAttention() over
               [decoder outputs, encoder outputs]
    head:      Concatenate([decoder outputs, context]) (either order) -> Dense* -> Dense(V)
               (softmax or linear: greedy decoding takes the argmax)

Integer form (the C in export/seq2seq_render.py mirrors :func:`encode` and :func:`decode`):
the encoder is an ordinary rnn2c chain (its QuantModel), its last layer's int8 Q0.7 state at
every step is kept as the attention values; the decoder's recurrent layer starts from the
encoder's final state; attention (layers/attention.py) gives an int8 Q0.7 context, so the
concatenation [h; context] is one int8 vector of scale 1/128 that the Dense layers read; the
output layer is an argmax head (:class:`QuantArgmax`): one weight scale for all its rows, so
that the raw int32 sums compare like the float logits and no softmax is needed.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export import codec
from rnn2c.export.data import (
    Sequences,
    check_inputs,
    check_lengths,
    check_tokens,
    load_sequences,
)
from rnn2c.export.fixedpoint import INT32_MAX
from rnn2c.export.ir import CTYPE_BYTES, ActQuant, ExportError, ModelIR, Observer, QuantModel
from rnn2c.export.keras_reader import read_model
from rnn2c.export.layers import READERS
from rnn2c.export.layers import attention as attention_layer
from rnn2c.export.layers import embedding as embedding_layer
from rnn2c.export.layers.attention import AttentionLayer, QuantAttention
from rnn2c.export.layers.embedding import EmbeddingLayer, QuantEmbedding
from rnn2c.export.quantize import SubObserver, quantize_model

#: the pattern, for error messages
PATTERN = (
    "Input -> [Embedding] -> GRU/LSTM(return_sequences=True, return_state=True) as the encoder, "
    "Input -> Embedding -> GRU/LSTM(return_sequences=True, initial_state=encoder states) as the "
    "decoder, Attention or AdditiveAttention([decoder, encoder]), Concatenate, Dense layers"
)
CELLS = ("GRU", "LSTM")
PASS = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "Masking")
FORMAT_VERSION = 1
#: --max-output-length bound (the decoder's loop; the tokens array is the caller's)
MAX_OUTPUT_LENGTH = 65535


# ------------------------------------------------------------------ float IR and the reader


@dataclass
class Seq2SeqIR:
    """The float model: encoder chain, decoder embedding and cell, attention, head."""

    source: str
    encoder: ModelIR  # its last layer's outputs are the attention values
    dec_embedding: EmbeddingLayer
    decoder: Any  # GRULayer or LSTMLayer
    attention: AttentionLayer
    context_first: bool  # Concatenate([context, decoder]) rather than ([decoder, context])
    mid: list[Any]  # DenseLayer between the concatenation and the output layer
    out: Any  # DenseLayer: softmax or linear; greedy decoding takes its argmax
    encoder_input: int  # which of the Keras model's two inputs is the encoder's

    @property
    def units(self) -> int:
        return int(self.decoder.units)

    @property
    def vocab(self) -> int:
        return int(self.out.units)

    @property
    def tokens_in(self) -> bool:
        return self.encoder.embedding is not None


def last_cells(layer: Any) -> list[Any]:
    """The recurrent cells of the encoder's last layer: its forward and backward cells for a
    Bidirectional one, else the layer itself."""
    if layer.kind == "bidir":
        return [cell for _, cell in layer.cells()]
    return [layer]


#: layers only an encoder-decoder has among two-input models (the decoder's token Embedding,
#: the attention over the encoder's outputs)
SEQ2SEQ_LAYERS = ("Embedding", *attention_layer.KERAS_CLASSES)


def is_seq2seq(model: Any) -> bool:
    """A Keras model with two inputs and one output that looks like an encoder-decoder: a
    [batch, time] integer input (token ids), an Embedding or attention layer, or a recurrent
    layer handing its state on (return_state, initial_state); read_seq2seq then reads it or
    says what rnn2c takes. Two sensor streams ([batch, time, features] each, merged) are not:
    keras_reader reads them."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 2 or len(model.outputs or []) != 1:
        return False
    if any(len(tuple(t.shape)) == 2 and "int" in str(getattr(t, "dtype", "")) for t in inputs):
        return True  # token ids
    todo = list(getattr(model, "layers", []))
    while todo:
        layer = todo.pop()
        todo.extend(getattr(layer, "layers", []) or [])
        if _cls(layer) in SEQ2SEQ_LAYERS:
            return True
        if _cls(layer) in ("GRU", "LSTM", "SimpleRNN", "Bidirectional"):
            if getattr(layer, "return_state", False) or any(
                node.arguments.kwargs.get("initial_state") is not None
                for node in getattr(layer, "_inbound_nodes", [])
            ):
                return True
    return False


def _producer(t: Any) -> tuple[Any, Any, int]:
    """(layer, node, tensor index) that made the Keras tensor t."""
    hist = getattr(t, "_keras_history", None)
    if hist is None:
        raise ExportError("cannot trace the model's layer graph")
    layer, node_index, tensor_index = hist[0], hist[1], hist[2]
    return layer, layer._inbound_nodes[node_index], int(tensor_index)


def _tensors(args: Any) -> list[Any]:
    if isinstance(args, list | tuple):
        return [t for a in args for t in _tensors(a)]
    if isinstance(args, dict):
        return [t for a in args.values() for t in _tensors(a)]
    return [args] if hasattr(args, "_keras_history") else []


def _inputs(node: Any) -> list[Any]:
    return _tensors(node.arguments.args)


def _skip(t: Any, seen: list[Any]) -> tuple[Any, Any, Any, int]:
    """The first layer before t that is not a pass-through (Dropout, ...): (tensor, layer, node,
    index)."""
    while True:
        layer, node, index = _producer(t)
        if type(layer).__name__ not in PASS:
            return t, layer, node, index
        seen.append(layer)
        t = _inputs(node)[0]


def _cls(layer: Any) -> str:
    return type(layer).__name__


def _refuse(what: str) -> ExportError:
    return ExportError(f"{what}; rnn2c exports two-input models of the pattern {PATTERN}")


@dataclass
class _Graph:
    """What read_seq2seq finds walking back from the output: the layers (and their call
    nodes) of the pattern, and every layer seen on the way (the pass-throughs included)."""

    seen: list[Any]
    heads: list[Any] = field(default_factory=list)  # the Dense layers, output first
    concat: Any = None
    concat_node: Any = None
    context_first: bool = False
    att: Any = None
    dec_t: Any = None  # the decoder's output tensor
    dec: Any = None
    dec_node: Any = None
    enc_t: Any = None  # the encoder's output tensor (the attention values)
    enc: Any = None  # the encoder's last layer (a Bidirectional, or the cell itself)
    enc_cell: Any = None
    bidir: bool = False
    demb: Any = None  # the decoder's Embedding
    encoder_input: int = 0


def read_seq2seq(model: Any) -> Seq2SeqIR:
    """Keras encoder-decoder (in memory) -> Seq2SeqIR, refusing other two-input graphs: the
    graph traced back from the output (head, attention, decoder and encoder, the decoder's
    initial state and input), then its layers read."""
    g = _Graph(seen=[])
    _trace_head(model, g)
    _trace_attention(g)
    _check_recurrent(g)
    _check_initial_state(g)
    _trace_decoder_input(model, g)
    encoder = _read_encoder(model, g)
    return _read_layers(model, g, encoder)


def _trace_head(model: Any, g: _Graph) -> None:
    """From the output back through the Dense layers to the Concatenate."""
    seen = g.seen
    _, layer, node, _ = _skip(model.outputs[0], seen)
    if _cls(layer) == "TimeDistributed" and _cls(layer.layer) == "Dense":
        layer_dense = layer.layer
    else:
        layer_dense = layer
    if _cls(layer_dense) != "Dense":
        raise _refuse(f"the output comes from layer '{layer.name}' ({_cls(layer)}), not a Dense")
    while _cls(layer_dense) == "Dense":
        g.heads.append(layer_dense)
        seen.append(layer)
        _, layer, node, _ = _skip(_inputs(node)[0], seen)
        layer_dense = layer.layer if _cls(layer) == "TimeDistributed" else layer
    if _cls(layer) != "Concatenate":
        raise _refuse(
            f"layer '{layer.name}' ({_cls(layer)}) feeds the output layers where a Concatenate "
            "of the decoder outputs and the attention context belongs"
        )
    g.concat, g.concat_node = layer, node
    seen.append(layer)


def _trace_attention(g: _Graph) -> None:
    """The Concatenate's two parts: the attention output and the decoder outputs; the
    attention's query (the decoder) and values (the encoder)."""
    seen, concat = g.seen, g.concat
    parts = _inputs(g.concat_node)
    if len(parts) != 2 or concat.get_config().get("axis", -1) not in (-1, 2):
        raise _refuse(f"layer '{concat.name}' (Concatenate) must join two tensors on the last axis")
    found = [_skip(p, seen) for p in parts]
    att_pos = [i for i, f in enumerate(found) if _cls(f[1]) in attention_layer.KERAS_CLASSES]
    if len(att_pos) != 1:
        raise _refuse(
            f"layer '{concat.name}' (Concatenate) must join the decoder outputs and one "
            "Attention or AdditiveAttention output"
        )
    a = att_pos[0]
    g.context_first = a == 0
    _, att, att_node, _ = found[a]
    dec_t, dec, dec_node, dec_index = found[1 - a]
    seen.append(att)
    att_in = _inputs(att_node)
    if len(att_in) == 3 and att_in[2] is not att_in[1]:
        raise _refuse(f"layer '{att.name}' ({_cls(att)}) has a key apart from its value")
    if len(att_in) not in (2, 3) or _skip(att_in[0], seen)[0] is not dec_t:
        raise _refuse(
            f"layer '{att.name}' ({_cls(att)}) must take [decoder outputs, encoder outputs], the "
            "decoder outputs being the tensor the Concatenate joins"
        )
    if _cls(dec) not in CELLS or dec_index != 0:
        raise _refuse(f"the attention query comes from '{dec.name}' ({_cls(dec)}), not a GRU/LSTM")
    enc_t, enc, _, enc_index = _skip(att_in[1], seen)
    bidir = _cls(enc) == "Bidirectional"
    enc_cell = enc.forward_layer if bidir else enc  # a Bidirectional encoder: its wrapped cell
    if _cls(enc_cell) not in CELLS or enc_index != 0:
        raise _refuse(f"the attention values come from '{enc.name}' ({_cls(enc)}), not a GRU/LSTM")
    g.att, g.dec_t, g.dec, g.dec_node = att, dec_t, dec, dec_node
    g.enc_t, g.enc, g.enc_cell, g.bidir = enc_t, enc, enc_cell, bidir


def _check_recurrent(g: _Graph) -> None:
    """The encoder's last layer and the decoder: the same cell, every step out, the encoder's
    state handed on (a Bidirectional one concatenated)."""
    enc, enc_cell, dec, bidir = g.enc, g.enc_cell, g.dec, g.bidir
    if bidir and enc.get_config().get("merge_mode") != "concat":
        raise ExportError(
            f"layer '{enc.name}' (Bidirectional, the encoder): merge_mode "
            f"{enc.get_config().get('merge_mode')!r}; a bidirectional encoder needs 'concat' "
            "(its outputs and its two final states side by side)"
        )
    g.seen += [dec, enc]
    for lay, role, want_state in ((enc_cell, "encoder", True), (dec, "decoder", False)):
        cfg = lay.get_config()
        where = f"layer '{lay.name}' ({_cls(lay)}, the {role})"
        if not cfg.get("return_sequences"):
            raise ExportError(f"{where}: needs return_sequences=True (attention reads every step)")
        if want_state and not cfg.get("return_state"):
            raise ExportError(f"{where}: needs return_state=True: its state starts the decoder")
        if (cfg.get("go_backwards") and not bidir) or cfg.get("stateful"):
            raise ExportError(f"{where}: go_backwards and stateful are not supported here")
    if _cls(enc_cell) != _cls(dec):
        raise _refuse(
            f"encoder '{enc.name}' is a {_cls(enc_cell)}, decoder '{dec.name}' a {_cls(dec)}"
        )


def _check_initial_state(g: _Graph) -> None:
    """The decoder starts from the encoder's final states, in order (a Bidirectional encoder:
    Concatenate([forward, backward]) per state)."""
    enc, dec = g.enc, g.dec
    init = _tensors(g.dec_node.arguments.kwargs.get("initial_state"))
    n_states = 2 if _cls(dec) == "LSTM" else 1
    if g.bidir:  # Concatenate([forward state, backward state]) per state, in order
        got = []
        for t in init:
            layer, node, _ = _producer(t)
            parts = _inputs(node) if _cls(layer) == "Concatenate" else []
            got.append([(_producer(x)[0], _producer(x)[2]) for x in parts])
            g.seen.append(layer)
        want = [[(enc, 1 + i), (enc, 1 + n_states + i)] for i in range(n_states)]
        ok = len(got) == n_states and all(
            len(w_got) == 2
            and all(a is b and i == j for (a, i), (b, j) in zip(w_got, w, strict=True))
            for w_got, w in zip(got, want, strict=True)
        )
        hint = "[Concatenate()([h_fw, h_bw])" + (
            ", Concatenate()([c_fw, c_bw])]" if n_states == 2 else "]"
        )
    else:
        got_plain = [(_producer(s)[0], _producer(s)[2]) for s in init]
        ok = [p[0] is enc for p in got_plain] == [True] * n_states and [
            p[1] for p in got_plain
        ] == list(range(1, n_states + 1))
        hint = "[the states it returns, in order]"
    if not ok:
        raise _refuse(
            f"decoder '{dec.name}' must start from the encoder's states: "
            f"{dec.name}(x, initial_state={hint}) with '{enc.name}''s states"
        )


def _trace_decoder_input(model: Any, g: _Graph) -> None:
    """The decoder reads its own model input through an Embedding; the other input is the
    encoder's."""
    dec = g.dec
    _, demb, demb_node, _ = _skip(_inputs(g.dec_node)[0], g.seen)
    if _cls(demb) != "Embedding":
        raise _refuse(f"decoder '{dec.name}' reads '{demb.name}' ({_cls(demb)}), not an Embedding")
    g.seen.append(demb)
    dec_input = _inputs(demb_node)[0]
    ids = [i for i, x in enumerate(model.inputs) if x is dec_input]
    if not ids:
        raise _refuse(f"decoder Embedding '{demb.name}' must read a model input directly")
    if demb.get_config().get("mask_zero"):
        raise ExportError(
            f"layer '{demb.name}' (Embedding, the decoder's): mask_zero=True is not supported; "
            "the decoder's first input is the start token, which must not be skipped"
        )
    g.demb, g.encoder_input = demb, 1 - ids[0]


def _read_encoder(model: Any, g: _Graph) -> ModelIR:
    """The encoder (its input to the attention values) as a chain, read by keras_reader; no
    layer of the model outside the pattern."""
    import keras  # noqa: PLC0415  (heavy import, only when needed)

    # named after the model (Keras numbers unnamed models per process: not reproducible)
    enc_model = keras.Model(model.inputs[g.encoder_input], g.enc_t, name=f"{model.name}_encoder")
    encoder = read_model(enc_model)
    before_last = [layer.kind for layer in encoder.layers[: -1 if g.bidir else None]]
    if any(k not in ("gru", "lstm", "rnn", "dense") for k in before_last):
        bad = next(ly for ly in encoder.layers if ly.kind not in ("gru", "lstm", "rnn", "dense"))
        raise ExportError(
            f"layer '{bad.name}' in the encoder: only GRU, LSTM, SimpleRNN and Dense layers may "
            "come before the encoder's last recurrent layer (a Bidirectional one only as that "
            "last layer)"
        )
    g.seen += list(enc_model.layers)
    names = {ly.name for ly in g.seen} | {ly.name for ly in g.heads}
    rest = [ly for ly in model.layers if ly.name not in names and _cls(ly) != "InputLayer"]
    if rest:
        raise _refuse(f"layer '{rest[0].name}' ({_cls(rest[0])}) is outside the accepted pattern")
    return encoder


def _read_layers(model: Any, g: _Graph, encoder: ModelIR) -> Seq2SeqIR:
    """The decoder's Embedding and cell, the attention and the Dense layers, checked against
    the encoder (tanh cells of one width, a softmax or linear output)."""
    enc, dec, heads = g.enc, g.dec, g.heads
    emb = embedding_layer.read(g.demb)
    decoder = READERS[_cls(dec)].read(dec, emb.dim)
    for lay, cell in [*((enc, c) for c in last_cells(encoder.layers[-1])), (dec, decoder)]:
        if cell.cell_act != "tanh":
            raise ExportError(
                f"layer '{lay.name}' ({_cls(lay)}): activation {cell.cell_act!r}; a seq2seq "
                "encoder's last layer and decoder need tanh (the attention reads their states "
                "as Q0.7 in [-1, 1])"
            )
    units = int(decoder.units)
    if int(encoder.layers[-1].output_size) != units:
        raise ExportError(
            f"encoder '{enc.name}' has {encoder.layers[-1].output_size} units, decoder "
            f"'{dec.name}' {units}; attention needs the same width"
        )
    attention = attention_layer.read(g.att, units)
    size = 2 * units
    mid = []
    for d in reversed(heads[1:]):
        mid.append(READERS["Dense"].read(d, size))
        size = mid[-1].output_size
    out = READERS["Dense"].read(heads[0], size)
    if out.activation not in ("softmax", "linear"):
        raise ExportError(
            f"layer '{heads[0].name}' (Dense, the output): activation {out.activation!r}; "
            "use softmax or linear (greedy decoding takes the argmax of its logits)"
        )
    return Seq2SeqIR(
        source=str(model.name),
        encoder=encoder,
        dec_embedding=emb,
        decoder=decoder,
        attention=attention,
        context_first=g.context_first,
        mid=mid,
        out=out,
        encoder_input=g.encoder_input,
    )


# ------------------------------------------------------------------ float forward


def _masked_steps(
    layers: list[Any],
    states: list[dict],
    x: np.ndarray,
    running: np.ndarray,
    obs: Observer | None,
    prefix: str = "",
) -> np.ndarray:
    """One step of a chain of (float or integer) layers; rows not running keep their states."""
    h = x
    for i, (layer, state) in enumerate(zip(layers, states, strict=True)):
        old = {k: v.copy() for k, v in state.items()}
        if obs is not None:
            obs.prefix = f"{prefix}{i}."
        h = layer.step(state, h, obs) if obs is not None else layer.step(state, h)
        for k in state:
            state[k] = np.where(running[:, None], state[k], old[k])
    return h


def encode_layers(
    layers: list[Any], rows: np.ndarray, lengths: np.ndarray, units: int
) -> tuple[np.ndarray, dict]:
    """The encoder (float layers on float rows, or quantized ones on int64 rows): (its last
    layer's outputs [N, T, units], zero past each length; that layer's final state). A
    Bidirectional last layer runs its forward cell over the steps, then its backward cell from
    each sequence's last real step down to step 0, as the C does; its outputs are the two side
    by side at each step, its final state the two final states side by side."""
    n, t = rows.shape[:2]
    bidir = layers[-1].kind == "bidir"
    chain = layers[:-1] if bidir else layers
    states = [layer.init_state(n) for layer in chain]
    out = np.zeros((n, t, units), dtype=rows.dtype)
    inner = np.zeros((n, t, layers[-1].input_size), dtype=rows.dtype)  # the Bidirectional's input
    for s in range(t):
        running = lengths > s
        h = _masked_steps(chain, states, rows[:, s], running, None) if chain else rows[:, s]
        if bidir:
            inner[:, s] = h
        else:
            out[:, s] = np.where(running[:, None], h, 0)
    if not bidir:
        return out, states[-1]
    fw, bw = layers[-1].forward, layers[-1].backward
    u = int(fw.units)
    fs, bs = fw.init_state(n), bw.init_state(n)
    for cell, state, steps, part in (
        (fw, fs, range(t), slice(0, u)),
        (bw, bs, range(t - 1, -1, -1), slice(u, 2 * u)),
    ):
        for s in steps:
            running = lengths > s
            h = _masked_steps([cell], [state], inner[:, s], running, None)
            out[:, s, part] = np.where(running[:, None], h, 0)
    return out, {k: np.concatenate([fs[k], bs[k]], axis=1) for k in fs}


def float_encode(ir: Seq2SeqIR, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, dict]:
    """Float encoder: (outputs [N, T, U], zero past each length; the final state)."""
    rows = np.asarray(ir.encoder.float_input(x), dtype=np.float64)
    return encode_layers(ir.encoder.layers, rows, lengths, ir.units)


def _float_head(ir: Seq2SeqIR, h: np.ndarray, ctx: np.ndarray, obs: Observer | None) -> np.ndarray:
    z = np.concatenate([ctx, h] if ir.context_first else [h, ctx], axis=1)
    for j, d in enumerate(ir.mid):
        if obs is not None:
            obs.prefix = f"{j + 1}."
        z = d.step({}, z, obs)
    return z @ ir.out.kernel + ir.out.bias  # logits


def float_teacher_forced(
    ir: Seq2SeqIR,
    x: np.ndarray,
    lengths: np.ndarray,
    dec_in: np.ndarray,
    obs: Observer | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Float logits [N, T_out, V] with the decoder fed dec_in [N, T_out] (teacher forcing);
    records the decoder's and head's values in obs (keys '0.' decoder, 'j.' the Dense layers)."""
    enc_out, final = float_encode(ir, x, lengths)
    state = {k: v.copy() for k, v in final.items()}
    emb = ir.dec_embedding.rows(dec_in)
    n, t_out = dec_in.shape
    logits = np.zeros((n, t_out, ir.vocab))
    for s in range(t_out):
        if obs is not None:
            obs.mask = None if valid is None else valid[:, s]
            obs.prefix = "0."
        h = ir.decoder.step(state, emb[:, s], obs)
        ctx = ir.attention.context(h, enc_out, lengths)
        logits[:, s] = _float_head(ir, h, ctx, obs)
    if obs is not None:
        obs.mask, obs.prefix = None, ""
    return logits


# ------------------------------------------------------------------ quantized model


@dataclass
class QuantArgmax:
    """The output layer for greedy decoding: int8 weights with one scale, int32 bias (input
    zero point folded in); the token is the first row with the largest sum (no softmax)."""

    name: str
    weight: np.ndarray  # int8 [V, C]
    bias: np.ndarray  # int32 [V]
    scale: float = 1.0  # the real value of one unit of the sums (weight scale x input scale)

    @property
    def vocab(self) -> int:
        return int(self.weight.shape[0])

    @property
    def cols(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.int64) @ self.weight.astype(np.int64).T + self.bias.astype(np.int64)

    def token(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)


def quantize_argmax(out: Any, input_q: ActQuant) -> QuantArgmax:
    w = np.asarray(out.kernel, dtype=np.float64).T  # [V, C]
    peak = float(np.abs(w).max(initial=0.0))
    w_scale = peak / 127.0 if peak > 0 else 1.0
    wq = np.clip(np.round(w / w_scale), -127, 127).astype(np.int64)
    bias = np.round(np.asarray(out.bias, dtype=np.float64) / (w_scale * float(input_q.scale)))
    bias = bias.astype(np.int64) - wq.sum(axis=1) * int(input_q.zero_point)
    worst = int((np.abs(bias) + np.abs(wq).sum(axis=1) * 255).max(initial=0))
    if worst > INT32_MAX:
        raise ExportError(
            f"layer '{out.name}' (Dense, the output): its int32 sums could "
            "overflow; reduce its bias or width"
        )
    scale = w_scale * float(input_q.scale)
    return QuantArgmax(out.name, wq.astype(np.int8), bias.astype(np.int32), scale)


@dataclass
class QuantSeq2Seq:
    """What the C of a seq2seq export holds, and its integer reference."""

    source: str
    encoder: QuantModel
    dec_embedding: QuantEmbedding
    decoder: Any  # QuantGRU / QuantLSTM
    attention: QuantAttention
    context_first: bool
    mid: list[Any]  # QuantDense
    out: QuantArgmax
    start_token: int
    end_token: int
    max_length: int
    max_output_length: int
    calibration: str = "minmax"
    input_quant: str = "per-tensor"
    notes: list[str] = field(default_factory=list)

    @property
    def units(self) -> int:
        return int(self.decoder.units)

    @property
    def vocab(self) -> int:
        return self.out.vocab

    @property
    def tokens_in(self) -> bool:
        return self.encoder.embedding is not None

    @property
    def input_size(self) -> int:
        return int(self.encoder.input_size)

    @property
    def bidirectional(self) -> bool:
        """A Bidirectional encoder: encode_step runs the forward direction, decode first the
        backward one over the kept input rows."""
        return self.encoder.layers[-1].kind == "bidir"

    @property
    def input_q(self) -> ActQuant:
        return self.encoder.input_q

    def state_bytes(self) -> int:
        """sizeof(<name>_state_t): length and the attention row (int32), the encoder outputs
        [max_length][units] (int8), every recurrent state; a multiple of 4."""
        size = 4 + 4 * self.max_length + self.max_length * self.units
        if self.bidirectional:  # the Bidirectional's input rows and the backward pass's length
            size += 4 + self.max_length * int(self.encoder.layers[-1].input_size)
        for layer in [*self.encoder.layers, self.decoder]:
            size += sum(CTYPE_BYTES[f.ctype] * f.length for f in layer.state_fields())
        return -(-size // 4) * 4

    def encoder_macs(self) -> int:
        return sum(layer.macs for layer in self.encoder.layers)

    def token_macs(self, length: int | None = None) -> int:
        """MACs of one decoder step with `length` encoder steps (default: the maximum)."""
        t = self.max_length if length is None else length
        return (
            self.decoder.macs
            + 2 * t * self.units
            + sum(d.macs for d in self.mid)
            + self.out.vocab * self.out.cols
        )

    def weight_bytes(self) -> int:
        enc = self.encoder.weight_bytes()
        return int(
            enc
            + self.dec_embedding.weight_bytes()
            + self.decoder.weight_bytes()
            + self.attention.weight_bytes()
            + sum(d.weight_bytes() for d in self.mid)
            + self.out.weight.size
            + 4 * self.out.bias.size
        )

    # -------------------------------------------------------------- integer reference

    def encode(self, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, dict]:
        """Mirror of <name>_encode (and of decode's backward pass, for a Bidirectional
        encoder): int8 rows (or ids) [N, T, ...] -> (values [N, T, U] int64, zero past each
        length; the final state the decoder starts from)."""
        rows = np.asarray(self.encoder.quantize_input(x), dtype=np.int64)
        return encode_layers(self.encoder.layers, rows, lengths, self.units)

    def head(self, h: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        """The int32 logits of the argmax head for decoder state h and context ctx."""
        z = np.concatenate([ctx, h] if self.context_first else [h, ctx], axis=1)
        for d in self.mid:
            z = d.step({}, z)
        return self.out.logits(z)

    def decode(
        self, values: np.ndarray, final: dict, lengths: np.ndarray, max_tokens: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mirror of <name>_decode (greedy): (tokens [N, max] int64, -1 after each end, counts
        [N] without the end token)."""
        limit = (
            self.max_output_length
            if max_tokens is None
            else min(max_tokens, self.max_output_length)
        )
        n = values.shape[0]
        state = {k: np.asarray(v, dtype=np.int64).copy() for k, v in final.items()}
        tok = np.full(n, self.start_token, dtype=np.int64)
        out = np.full((n, limit), -1, dtype=np.int64)
        counts = np.zeros(n, dtype=np.int64)
        live = np.ones(n, dtype=bool)
        for s in range(limit):
            h = self.decoder.step(state, self.dec_embedding.rows(tok[:, None])[:, 0])
            ctx = self.attention.context(h, values, lengths)
            tok = np.argmax(self.head(h, ctx), axis=1)
            live &= tok != self.end_token
            out[live, s] = tok[live]
            counts += live
            if not live.any():
                break
        return out, counts

    def teacher_forced(self, x: np.ndarray, lengths: np.ndarray, dec_in: np.ndarray) -> np.ndarray:
        """The integer model's logits [N, T_out, V] (dequantized) with the decoder fed dec_in,
        to hold against float_teacher_forced."""
        values, final = self.encode(x, lengths)
        state = {k: np.asarray(v, dtype=np.int64).copy() for k, v in final.items()}
        out = np.zeros((*dec_in.shape, self.vocab))
        for s in range(dec_in.shape[1]):
            h = self.decoder.step(state, self.dec_embedding.rows(dec_in[:, s : s + 1])[:, 0])
            out[:, s] = self.head(h, self.attention.context(h, values, lengths)) * self.out.scale
        return out

    def greedy(self, x: np.ndarray, lengths: np.ndarray, max_tokens: int | None = None):  # noqa: ANN201
        values, final = self.encode(x, lengths)
        return self.decode(values, final, lengths, max_tokens)


def decoder_valid(y: np.ndarray, end: int) -> np.ndarray:
    """[N, T_out] bool: the target positions up to and including each first end token."""
    y = np.asarray(y)
    is_end = y == end
    first = np.where(is_end.any(axis=1), np.argmax(is_end, axis=1), y.shape[1] - 1)
    return np.arange(y.shape[1])[None, :] <= first[:, None]


def quantize_seq2seq(
    ir: Seq2SeqIR,
    x: np.ndarray,
    lengths: np.ndarray,
    y: np.ndarray,
    start_token: int,
    end_token: int,
    max_length: int,
    max_output_length: int,
    method: str = "minmax",
    input_quant: str = "per-tensor",
) -> QuantSeq2Seq:
    """Quantize the encoder as a chain (quantize_model), the decoder and the Dense layers from
    teacher-forced calibration (decoder input: start token, then y shifted right)."""
    for flag, v, top in (
        ("--start-token", start_token, ir.dec_embedding.vocab),
        ("--end-token", end_token, ir.vocab),
    ):
        if not 0 <= v < top:
            raise ExportError(f"{flag} {v}: the model's ids are 0..{top - 1}")
    missing = ~(np.asarray(y) == end_token).any(axis=1)
    if missing.any():
        i = int(np.nonzero(missing)[0][0])
        raise ExportError(
            f"--calib: target {i} of y has no end token {end_token}; end every target with it "
            "(and pad with it), or give the --end-token the targets use"
        )
    whole = ir.encoder.whole_sequence  # a Bidirectional encoder
    encoder = quantize_model(
        ir.encoder,
        x,
        lengths,
        method,
        "int8",
        input_quant,
        max_length if whole else None,
        streaming_hint=False,  # the encoder runs through <name>_encode, not <name>_step
    )
    dec_in = np.concatenate([np.full((y.shape[0], 1), start_token), y[:, :-1]], axis=1)
    obs = Observer()
    float_teacher_forced(ir, x, lengths, dec_in, obs, decoder_valid(y, end_token))
    dec_emb = ir.dec_embedding.quantize()
    decoder = ir.decoder.quantize(dec_emb.output_q, SubObserver(obs, "0."), method, 8)
    last = encoder.layers[-1]
    cells = [*last_cells(last), decoder]
    for layer in cells:  # tanh cells, int8 states: Q0.7 (read_seq2seq checked)
        assert layer.output_q.scale == 1.0 / 128.0 and layer.output_q.zero_point == 0
    if hasattr(decoder, "cell_frac_bits"):  # LSTM: the cell states are handed over as they are
        bits = min(cell.cell_frac_bits for cell in cells)
        for cell in cells:
            cell.cell_frac_bits = bits
    q = ActQuant(1.0 / 128.0, 0)  # [h; context], both Q0.7
    mid = []
    for j, d in enumerate(ir.mid):
        mid.append(d.quantize(q, SubObserver(obs, f"{j + 1}."), method, 8))
        q = mid[-1].output_q
    return QuantSeq2Seq(
        source=ir.source,
        encoder=encoder,
        dec_embedding=dec_emb,
        decoder=decoder,
        attention=ir.attention.quantize(),
        context_first=ir.context_first,
        mid=mid,
        out=quantize_argmax(ir.out, q),
        start_token=int(start_token),
        end_token=int(end_token),
        max_length=int(max_length),
        max_output_length=int(max_output_length),
        calibration=method,
        input_quant=input_quant,
        notes=list(encoder.notes),
    )


# ------------------------------------------------------------------ data and settings


@dataclass
class Seq2SeqData:
    x: np.ndarray  # float32 [N, T, F] or int64 token ids [N, T]
    lengths: np.ndarray  # [N] real input lengths
    y: np.ndarray | None  # int64 target ids [N, T_out], each ending with the end token


def load_seq2seq_data(
    data: Any, what: str, model: Any, need_y: bool, end_token: int | None = None
) -> Seq2SeqData:
    """x (features [N, T, F] or token ids [N, T]), lengths and y (target ids [N, T_out]) from an
    .npz path (or a Sequences / Seq2SeqData); one-line ExportError on anything wrong. model: the
    Seq2SeqIR or QuantSeq2Seq the data is for."""
    emb = model.encoder.embedding
    features = int(model.encoder.input_size)
    if isinstance(data, Seq2SeqData):
        data = Sequences(data.x, data.y, data.lengths)
    if isinstance(data, Sequences):
        if emb is not None:
            x, lengths = check_tokens(data.x, data.lengths, what, emb)
        else:
            x = check_inputs(data.x, what, features)
            lengths = check_lengths(data.lengths, x.shape, what)
        seqs = Sequences(x, data.y, lengths)
    else:
        seqs = load_sequences(data, what, features, emb)
    n, t = seqs.x.shape[:2]
    lengths = np.full(n, t, dtype=np.int64) if seqs.lengths is None else seqs.lengths
    y = seqs.y
    if y is None:
        if need_y:
            raise ExportError(
                f"{what}: a seq2seq model's file needs y, the target token ids [N, T_out] "
                "(each ending with the end token), for the decoder's teacher-forced calibration"
            )
        return Seq2SeqData(seqs.x, lengths, None)
    y = np.asarray(y)
    vocab = int(model.out.vocab if hasattr(model.out, "vocab") else model.out.units)
    if y.ndim != 2 or y.dtype.kind not in "iu":
        raise ExportError(
            f"{what}: y has shape {y.shape} and dtype {y.dtype}; a seq2seq model takes integer "
            "target ids [N, T_out]"
        )
    if y.size == 0 or y.min() < 0 or y.max() >= vocab:
        lo, hi = (int(y.min()), int(y.max())) if y.size else (0, -1)
        raise ExportError(
            f"{what}: y holds ids from {lo} to {hi}; the output Dense has {vocab} ids "
            f"(0..{vocab - 1})"
        )
    if end_token is not None:
        missing = ~(y == end_token).any(axis=1)
        if missing.any():
            i = int(np.nonzero(missing)[0][0])
            raise ExportError(
                f"{what}: target {i} of y has no end token {end_token}; end every target with "
                "it (and pad with it)"
            )
    return Seq2SeqData(seqs.x, lengths, y.astype(np.int64))


@dataclass
class Settings:
    values: tuple[int, int, int, int]  # start, end, max_length, max_output_length
    notes: list[str]


def run_folder_settings(model: Any) -> dict[str, Any]:
    """The "seq2seq" entry of the metrics.json `rnn2c train --task seq2seq` writes beside
    model.keras ({} if there is none)."""
    if not isinstance(model, str | os.PathLike):
        return {}
    try:
        entry = json.loads(Path(model).with_name("metrics.json").read_text()).get("seq2seq")
    except (OSError, ValueError, AttributeError):
        return {}
    return entry if isinstance(entry, dict) else {}


def seq2seq_settings(
    model: Any,
    data: Seq2SeqData,
    given: tuple[int | None, int | None, int | None],
    max_length: int | None,
) -> Settings:
    """--start-token, --end-token, --max-output-length and --max-length, from the flags, else
    the run folder's metrics.json, else (the lengths) the calibration data; checked."""
    run = run_folder_settings(model)
    notes = []
    start, end, max_out = given
    start = run.get("start_token") if start is None else start
    end = run.get("end_token") if end is None else end
    if start is None or end is None:
        raise ExportError(
            "a seq2seq model needs --start-token and --end-token: the id the decoder starts "
            "from and the id that ends its output (e.g. --start-token 0 --end-token 1)"
        )
    for flag, v in (("--start-token", start), ("--end-token", end)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ExportError(f"{flag} {v!r}: expected a token id >= 0")
    if max_out is None:
        max_out = run.get("max_output_length") or int(data.y.shape[1])
        notes.append(f"--max-output-length {max_out} (decode writes at most this many tokens)")
    if max_length is None:
        max_length = run.get("max_length") or int(data.x.shape[1])
        notes.append(f"--max-length {max_length} (encode takes at most this many input steps)")
    for flag, v, top in (
        ("--max-output-length", max_out, MAX_OUTPUT_LENGTH),
        ("--max-length", max_length, attention_layer.MAX_STEPS),
    ):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 1 <= v <= top:
            raise ExportError(f"{flag} {v!r}: expected 1 to {top}")
    if int(data.lengths.max()) > max_length:
        raise ExportError(
            f"--calib: sequences of up to {int(data.lengths.max())} steps are longer than "
            f"--max-length {max_length}; raise --max-length"
        )
    return Settings((int(start), int(end), int(max_length), int(max_out)), notes)


# ------------------------------------------------------------------ save and load


def to_bytes(q: QuantSeq2Seq, tag: dict[str, str]) -> bytes:
    """The .npz of a QuantSeq2Seq (export/codec.py): its encoder's file inside, the decoder's
    layers, the attention and the output layer; the header tagged with its kind's tag."""
    arrays: dict[str, np.ndarray] = {
        "encoder": np.frombuffer(codec.to_bytes(q.encoder), dtype=np.uint8),
        "dec_embedding.table": q.dec_embedding.table,
        "attention.weight": q.attention.weight,
        "out.weight": q.out.weight,
        "out.bias": q.out.bias,
    }
    layers = []
    for i, layer in enumerate([q.decoder, *q.mid]):
        arrays.update({f"{i}.{k}": v for k, v in layer.arrays().items()})
        layers.append({**layer.scalars(), "kind": layer.kind})
    header = {
        "format": FORMAT_VERSION,
        **tag,
        "source": q.source,
        "dec_embedding": q.dec_embedding.to_json(),
        "layers": layers,
        "attention": q.attention.scalars(),
        "context_first": q.context_first,
        "out": q.out.name,
        "out_scale": q.out.scale,
        "start_token": q.start_token,
        "end_token": q.end_token,
        "max_length": q.max_length,
        "max_output_length": q.max_output_length,
        "calibration": q.calibration,
        "input_quant": q.input_quant,
    }
    return codec.pack(header, arrays)


def from_arrays(header: dict[str, Any], arrays: dict[str, np.ndarray], path: str) -> QuantSeq2Seq:
    """A saved QuantSeq2Seq from its .npz header and arrays (export/codec.py's read_npz)."""
    if header.get("format") != FORMAT_VERSION:
        raise ExportError(
            f"{path!r}: seq2seq format {header.get('format')} is not this "
            f"rnn2c's {FORMAT_VERSION}; export the model again"
        )
    encoder = codec.from_bytes(arrays["encoder"].tobytes(), f"{path} (its encoder)")
    layers = [codec.layer_from(m, arrays, f"{i}.") for i, m in enumerate(header["layers"])]
    return QuantSeq2Seq(
        source=header["source"],
        encoder=encoder,
        dec_embedding=QuantEmbedding.from_json(
            header["dec_embedding"], arrays["dec_embedding.table"]
        ),
        decoder=layers[0],
        attention=QuantAttention.from_parts(
            header["attention"], {"weight": arrays["attention.weight"]}
        ),
        context_first=bool(header["context_first"]),
        mid=layers[1:],
        out=QuantArgmax(
            header["out"], arrays["out.weight"], arrays["out.bias"], float(header["out_scale"])
        ),
        start_token=int(header["start_token"]),
        end_token=int(header["end_token"]),
        max_length=int(header["max_length"]),
        max_output_length=int(header["max_output_length"]),
        calibration=header.get("calibration", "minmax"),
        input_quant=header.get("input_quant", "per-tensor"),
    )


# ------------------------------------------------------------------ the float model's greedy


def keras_greedy(
    model: Any,
    encoder_input: int,
    x: np.ndarray,
    lengths: np.ndarray,
    start_token: int,
    end_token: int,
    max_tokens: int,
    batch_size: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy decoding of the float Keras model: the inputs of one real length decoded together
    (at most batch_size at a time), cut to that length (no padding reaches the model, as in the
    C); the decoder fed its own argmax token after the start token until the end token or
    max_tokens. model: a keras.Model (run through predict_on_batch, which compiles once and is
    about 10x faster than eager calls on CPU) or any callable on the two inputs. Returns
    (tokens [N, max_tokens], -1 after each end; counts [N], without the end token), as
    QuantSeq2Seq.decode."""
    n = x.shape[0]
    out = np.full((n, max_tokens), -1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    run = getattr(model, "predict_on_batch", None)
    if run is None:

        def run(inputs: list[np.ndarray]) -> Any:
            return model(inputs, training=False)

    groups = []
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        groups += [idx[i : i + batch_size] for i in range(0, idx.size, batch_size)]
    with warnings.catch_warnings():  # one-step inputs: Keras warns of a softmax over one key
        warnings.filterwarnings("ignore", "You are using a softmax over axis", UserWarning)
        for idx in groups:
            xs = np.asarray(x[idx, : int(lengths[idx[0]])])
            xs = xs.astype(np.int32) if xs.dtype.kind in "iu" else xs.astype(np.float32)
            dec = np.full((idx.size, 1), start_token, dtype=np.int32)
            live = np.ones(idx.size, dtype=bool)
            for s in range(max_tokens):
                probs = np.asarray(run([xs, dec] if encoder_input == 0 else [dec, xs]))
                tok = probs[:, -1].argmax(axis=-1)
                live &= tok != end_token
                out[idx[live], s] = tok[live]
                counts[idx] += live
                if not live.any():
                    break
                dec = np.concatenate([dec, tok[:, None].astype(np.int32)], axis=1)
    return out, counts
