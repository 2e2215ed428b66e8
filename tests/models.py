"""Random Keras model configurations for property-style tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CELLS = ("gru", "lstm", "rnn")
HEAD_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


@dataclass
class Config:
    seed: int
    features: int
    steps: int
    cells: list[str]
    units: list[int]
    reset_after: list[bool]
    use_bias: list[bool]
    last_return_sequences: bool
    heads: list[tuple[int, str]] = field(default_factory=list)
    dropout: bool = False

    def describe(self) -> str:
        rec = ",".join(
            f"{c}{u}{'' if b else '-nobias'}{'' if c != 'gru' or r else '-rb'}"
            for c, u, r, b in zip(
                self.cells, self.units, self.reset_after, self.use_bias, strict=True
            )
        )
        heads = ",".join(f"dense{n}-{a}" for n, a in self.heads)
        rs = int(self.last_return_sequences)
        return f"s{self.seed}-F{self.features}-T{self.steps}-[{rec}]-rs{rs}-[{heads}]"


def random_config(seed: int) -> Config:
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 3))
    cells = [str(rng.choice(CELLS)) for _ in range(depth)]
    heads = []
    for _ in range(int(rng.integers(0, 3))):
        heads.append((int(rng.integers(1, 9)), str(rng.choice(HEAD_ACTIVATIONS))))
    return Config(
        seed=seed,
        features=int(rng.integers(1, 9)),
        steps=int(rng.integers(1, 25)),
        cells=cells,
        units=[int(rng.integers(1, 25)) for _ in cells],
        reset_after=[bool(rng.integers(0, 2)) for _ in cells],
        use_bias=[bool(rng.integers(0, 2)) for _ in cells],
        last_return_sequences=bool(rng.integers(0, 2)),
        heads=heads,
        dropout=bool(rng.integers(0, 2)),
    )


def build(cfg: Config):  # noqa: ANN201
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(cfg.seed)
    layers = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
    inp = keras.Input((None, cfg.features))
    x = inp
    n = len(cfg.cells)
    for i, (cell, units) in enumerate(zip(cfg.cells, cfg.units, strict=True)):
        kwargs = {"use_bias": cfg.use_bias[i]}
        if cell == "gru":
            kwargs["reset_after"] = cfg.reset_after[i]
        seq = i < n - 1 or cfg.last_return_sequences
        layer = layers[cell](units, return_sequences=seq, **kwargs)
        x = layer(x)
        if cfg.use_bias[i]:  # non-zero biases so that bias paths are exercised
            w = layer.get_weights()
            rng = np.random.default_rng(cfg.seed + i)
            w[-1] = rng.normal(0, 0.5, size=w[-1].shape).astype(np.float32)
            layer.set_weights(w)
        if cfg.dropout:
            x = keras.layers.Dropout(0.3)(x)
    for units, act in cfg.heads:
        x = keras.layers.Dense(units, activation=act)(x)
    return keras.Model(inp, x, name=f"m{cfg.seed}")
