"""Sequence-to-sequence models with attention: the Keras model `rnn2c train --task seq2seq`
builds, its greedy decoding, and the figures it is judged by.

The model is an encoder-decoder in exactly the functional pattern the exporter accepts::

    encoder_tokens [B, T_in] -> Embedding(V_in, E, mask_zero=True) -> GRU|LSTM(U,
        return_sequences=True, return_state=True)         -> enc_seq, state
    decoder_tokens [B, t]    -> Embedding(V_out, E)          (no mask: id 0 is the start token)
        -> GRU|LSTM(U, return_sequences=True)(initial_state=state)   -> dec_seq
    Attention()([dec_seq, enc_seq])  (luong: dot scores; bahdanau: AdditiveAttention) -> ctx
    Concatenate()([dec_seq, ctx]) -> Dense(U, tanh) -> Dense(V_out, softmax)

Token conventions (see :mod:`rnn2c.train.seq2seq_data`): input id 0 is padding (masked by the
encoder Embedding, as the C runs each sequence up to its real length); in the target vocabulary
id 0 is the start token and id 1 the end token; targets are followed by the end token and padded
with it. Teacher forcing feeds the start token, then the target shifted by one
(:func:`decoder_inputs`); :func:`greedy_decode` feeds the model's own argmax tokens instead.

This module imports only NumPy at import time (Keras when a model is built), so `rnn2c verify`
can reuse :func:`greedy_decode` and :func:`sequence_scores`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

__all__ = [
    "ATTENTIONS",
    "CELLS",
    "END",
    "PAD",
    "START",
    "attention_weights",
    "build_seq2seq",
    "decoder_inputs",
    "greedy_decode",
    "sequence_scores",
    "target_positions",
]

PAD = 0  # input padding id (encoder Embedding mask_zero=True)
START, END = 0, 1  # target vocabulary: the start and the end token; characters from 2
CELLS = ("gru", "lstm")
ATTENTIONS = ("luong", "bahdanau")


def build_seq2seq(
    input_vocab_size: int,
    output_vocab_size: int,
    cell: str = "gru",
    units: int = 64,
    embedding_dim: int = 16,
    attention: str = "luong",
    name: str = "rnn2c_seq2seq",
) -> keras.Model:
    """The encoder-decoder of this module's docstring, uncompiled.

    Args:
        input_vocab_size: V_in, input ids 0..V_in-1 (0 = padding).
        output_vocab_size: V_out, target ids 0..V_out-1 (0 = start, 1 = end).
        cell: ``gru`` (reset_after=True) or ``lstm`` for both encoder and decoder.
        units: U, the width of both recurrent layers and of the Dense(tanh) after attention.
        embedding_dim: E, the width of both Embedding tables.
        attention: ``luong`` (``keras.layers.Attention``, dot-product scores) or ``bahdanau``
            (``keras.layers.AdditiveAttention``).
    """
    import keras

    if cell not in CELLS:
        raise ValueError(f"cell {cell!r}; expected one of {', '.join(CELLS)}")
    if attention not in ATTENTIONS:
        raise ValueError(f"attention {attention!r}; expected one of {', '.join(ATTENTIONS)}")
    rnn = keras.layers.GRU if cell == "gru" else keras.layers.LSTM

    enc_in = keras.Input((None,), dtype="int32", name="encoder_tokens")
    e = keras.layers.Embedding(input_vocab_size, embedding_dim, mask_zero=True, name="enc_embed")(
        enc_in
    )
    enc_seq, *enc_state = rnn(units, return_sequences=True, return_state=True, name="encoder")(e)
    dec_in = keras.Input((None,), dtype="int32", name="decoder_tokens")
    d = keras.layers.Embedding(output_vocab_size, embedding_dim, name="dec_embed")(dec_in)
    dec_seq = rnn(units, return_sequences=True, name="decoder")(d, initial_state=enc_state)
    if attention == "luong":
        att = keras.layers.Attention(name="attention")
    else:
        att = keras.layers.AdditiveAttention(name="attention")
    ctx = att([dec_seq, enc_seq])
    cat = keras.layers.Concatenate(name="concat")([dec_seq, ctx])
    hid = keras.layers.Dense(units, activation="tanh", name="attention_dense")(cat)
    out = keras.layers.Dense(output_vocab_size, activation="softmax", name="output")(hid)
    return keras.Model([enc_in, dec_in], out, name=name)


def decoder_inputs(y: np.ndarray, start: int = START) -> np.ndarray:
    """Teacher forcing: the start token, then ``y[:, :-1]`` (int32 ``[N, T_out]``)."""
    y = np.asarray(y)
    first = np.full((y.shape[0], 1), start, dtype=np.int32)
    return np.concatenate([first, y[:, :-1].astype(np.int32)], axis=1)


def greedy_decode(
    model: Any,
    x: np.ndarray,
    lengths: np.ndarray | None = None,
    start: int = START,
    end: int = END,
    max_out: int = 32,
    batch_size: int = 512,
) -> np.ndarray:
    """Greedy decoding of a two-input Keras seq2seq model (encoder ids, decoder ids) -> probs.

    Sequences of one real length are decoded together, their inputs cut to that length (no
    padding reaches the model, as in the C). Step ``t`` runs the model on the decoder input
    ``[start, tok_1, ..., tok_t]`` and takes the argmax of its last position as ``tok_{t+1}``;
    a sequence is finished at its first ``end`` token, or after ``max_out`` tokens.

    Args:
        model: a ``keras.Model`` (run through ``predict_on_batch``) or any callable on
            ``[x [B, L] int32, decoder ids [B, t] int32]`` returning ``[B, t, V_out]``.
        x: int ``[N, T_in]`` input ids, 0-padded.
        lengths: ``[N]`` real lengths; None: each row up to its last nonzero id.
        start, end: the start and end token ids.
        max_out: T_out, the most tokens produced per sequence (the end token included).
        batch_size: most sequences per model call.

    Returns:
        int32 ``[N, max_out]``: each row the produced tokens, its end token and then ``end``
        as padding (the layout of the targets ``y``), or ``max_out`` tokens without an end.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x has shape {x.shape}; expected [N, T_in] token ids")
    if lengths is None:
        nz = x != PAD
        lengths = np.where(nz.any(axis=1), x.shape[1] - np.argmax(nz[:, ::-1], axis=1), 0)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (x.shape[0],) or np.any(lengths < 1) or np.any(lengths > x.shape[1]):
        raise ValueError(f"lengths must be [N] integers from 1 to {x.shape[1]}")
    if max_out < 1:
        raise ValueError(f"max_out {max_out}; expected at least 1")
    from rnn2c.export.seq2seq import keras_greedy  # noqa: PLC0415  (the one greedy decoder)

    tokens, counts = keras_greedy(model, 0, x, lengths, start, end, max_out, batch_size)
    out = np.full((x.shape[0], max_out), end, dtype=np.int32)  # the targets' layout
    keep = tokens >= 0
    out[keep] = tokens[keep]
    return out


def sequence_scores(pred: np.ndarray, y: np.ndarray, end: int = END) -> dict[str, float]:
    """Greedy outputs against targets (both ``[N, T_out]``, end-padded).

    ``token_accuracy``: over the positions up to and including each reference's end token, the
    fraction where the output holds the same token (an output that ended earlier holds nothing
    there: its padding is not a token); ``exact_sequence_rate``: the outputs equal to their
    reference up to and including the end token.
    """
    pred, y = np.asarray(pred), np.asarray(y)
    if pred.shape != y.shape:
        raise ValueError(f"predictions {pred.shape} and targets {y.shape} differ in shape")
    scored = target_positions(y, end)
    hit = (pred == y) & target_positions(pred, end)
    return {
        "token_accuracy": float(hit[scored].mean()),
        "exact_sequence_rate": float(np.all(hit | ~scored, axis=1).mean()),
    }


def target_positions(y: np.ndarray, end: int = END) -> np.ndarray:
    """``[N, T_out]`` bool: the positions up to and including each row's first end token (every
    position of a row without one)."""
    y = np.asarray(y)
    is_end = y == end
    first = np.where(is_end.any(axis=1), is_end.argmax(axis=1), y.shape[1] - 1)
    return np.arange(y.shape[1])[None, :] <= first[:, None]


def attention_weights(
    model: Any, x: np.ndarray, length: int, tokens: np.ndarray, start: int = START
) -> np.ndarray:
    """The attention weights ``[len(tokens), length]`` of one sequence: row ``t`` is how the
    decoder step that produced ``tokens[t]`` weighs the encoder steps (the decoder is fed the
    start token, then ``tokens[:-1]``)."""
    import keras

    att = model.get_layer("attention")
    query, value = att.input
    probe = keras.Model(model.inputs, [query, value])
    dec = np.concatenate([[start], np.asarray(tokens[:-1])]).astype(np.int32)[None, :]
    enc = np.asarray(x[:length], dtype=np.int32)[None, :]
    q, v = probe([enc, dec], training=False)
    _, scores = att([q, v], return_attention_scores=True)
    return np.asarray(scores)[0]
