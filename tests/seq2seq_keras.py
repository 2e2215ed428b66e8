"""Tiny Keras encoder-decoders with attention (the pattern export/seq2seq.py reads) and data
for them, for tests: a token or feature encoder, GRU or LSTM, Luong (dot) or Bahdanau
(additive) attention. Untrained; the initial weights are scaled by `gain` so that greedy
decoding gives varied tokens, some outputs stopping at the end token and some at the limit."""

from __future__ import annotations

import numpy as np

START, END = 0, 1  # the decoder's start id and the id that ends its output


#: attention forms: Luong dot (plain or scaled), concat (plain or scaled), Bahdanau additive
#: (with and without its per-unit scale); "luong" and "bahdanau" name the Keras defaults
ATTENTIONS = ("dot", "dot-scaled", "concat", "concat-scaled", "additive", "additive-noscale")
ALIASES = {"luong": "dot", "bahdanau": "additive"}


def build(
    cell: str = "gru",
    attention: str = "luong",
    tokens: bool = True,
    units: int = 8,
    embed: int = 4,
    vocab_in: int = 10,
    vocab_out: int = 8,
    features: int = 3,
    mid: bool = False,
    stacked: bool = False,
    bidirectional: bool = False,
    context_first: bool = False,
    mask_zero: bool = True,
    seed: int = 1,
    gain: float = 2.0,
    random_scales: bool = False,
):  # noqa: ANN201
    """The tutorial encoder-decoder: [Embedding ->] (stacked) GRU/LSTM encoder with
    return_state (or a Bidirectional one, units // 2 per direction, its states concatenated),
    Embedding -> GRU/LSTM decoder from the encoder's states, attention, Concatenate (either
    order), [Dense(tanh)] -> Dense(softmax). gain scales the initial weights of every layer but
    Attention; random_scales gives the attention layer's scales random values in [-2, 2] (Keras
    initialises them to 1, or glorot)."""
    import keras  # noqa: PLC0415

    layers = keras.layers
    keras.utils.set_random_seed(seed)
    if tokens:
        enc_in = keras.Input((None,), dtype="int32", name="enc")
        x = layers.Embedding(vocab_in, embed, mask_zero=mask_zero)(enc_in)
    else:
        enc_in = keras.Input((None, features), name="enc")
        x = enc_in
    rnn = layers.GRU if cell == "gru" else layers.LSTM
    if stacked:
        x = rnn(units, return_sequences=True)(x)
    if bidirectional:  # the decoder twice as wide, from the two final states side by side
        enc_seq, *both = layers.Bidirectional(
            rnn(units // 2, return_sequences=True, return_state=True)
        )(x)
        half = len(both) // 2
        states = [layers.Concatenate()([both[i], both[half + i]]) for i in range(half)]
    else:
        enc_seq, *states = rnn(units, return_sequences=True, return_state=True)(x)
    dec_in = keras.Input((None,), dtype="int32", name="dec")
    d = layers.Embedding(vocab_out, embed)(dec_in)
    dec_seq = rnn(units, return_sequences=True)(d, initial_state=states)
    form = ALIASES.get(attention, attention)
    if form.startswith("additive"):
        att = layers.AdditiveAttention(use_scale=form == "additive")
    else:
        att = layers.Attention(
            score_mode="concat" if form.startswith("concat") else "dot",
            use_scale=form.endswith("scaled"),
        )
    ctx = att([dec_seq, enc_seq])
    z = layers.Concatenate()([ctx, dec_seq] if context_first else [dec_seq, ctx])
    if mid:
        z = layers.Dense(units, activation="tanh")(z)
    out = layers.Dense(vocab_out, activation="softmax")(z)
    model = keras.Model([enc_in, dec_in], out, name=f"s2s_{cell}_{attention}")
    for layer in model.layers:
        weights = layer.get_weights()
        if weights and type(layer).__name__ != "Attention" and gain != 1.0:
            layer.set_weights([w * gain for w in weights])
    if random_scales and att.get_weights():
        rng = np.random.default_rng(seed)
        att.set_weights(
            [rng.uniform(-2, 2, size=np.shape(w)).astype(np.float32) for w in att.get_weights()]
        )
    return model


def data(
    tokens: bool,
    n: int = 24,
    steps: int = 6,
    out_steps: int = 5,
    vocab_in: int = 10,
    vocab_out: int = 8,
    features: int = 3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """x (ids 1.., 0-padded past each length, or float features), lengths 2..steps, and targets
    y ending with the end token (the calibration file of a seq2seq export)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, steps + 1, size=n)
    if tokens:
        x = rng.integers(1, vocab_in, size=(n, steps)).astype(np.int32)
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    else:
        x = rng.normal(size=(n, steps, features)).astype(np.float32)
    y = rng.integers(2, vocab_out, size=(n, out_steps))
    y[:, -1] = END
    return {"x": x, "lengths": lengths, "y": y}
