"""The Keras model that `rnn2c train` builds.

Input(None, F) -> Masking(0.0) -> Normalization -> {GRU|LSTM|SimpleRNN} x layers
-> [Dropout] -> Dense(softmax).

Only layer types the exporter accepts appear: Input, Masking, Normalization, GRU, LSTM,
SimpleRNN, Dense, Dropout. Padded steps (all features exactly 0.0, at the end of a sequence)
are masked before normalization; in Keras 3 the Normalization layer supports masking and
passes the mask on, so the recurrent layers skip the padded steps and the prediction for a
padded sequence equals the prediction for the unpadded one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

__all__ = ["CELLS", "ALLOWED_LAYER_TYPES", "ConfigError", "build_model", "real_steps"]

CELLS = ("gru", "lstm", "rnn")
ALLOWED_LAYER_TYPES = frozenset(
    {
        "InputLayer",
        "Masking",
        "Normalization",
        "GaussianNoise",
        "GRU",
        "LSTM",
        "SimpleRNN",
        "Dense",
        "Dropout",
    }
)
MASK_VALUE = 0.0


class ConfigError(ValueError):
    """A model/training setting is out of range. The message is one line."""


def real_steps(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The unpadded steps of ``x`` ([N, T, F], lengths [N]) stacked into ``[sum(lengths), F]``."""
    keep = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return np.asarray(x[keep], dtype=np.float32)


def check_config(cell: str, units: int, layers: int, dropout: float) -> None:
    if cell not in CELLS:
        raise ConfigError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    if not 1 <= units <= 4096:
        raise ConfigError(f"--units {units}; expected an integer from 1 to 4096")
    if not 1 <= layers <= 16:
        raise ConfigError(f"--layers {layers}; expected an integer from 1 to 16")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"--dropout {dropout}; expected a value in [0, 1)")


def build_model(
    num_features: int,
    num_classes: int,
    norm_data: np.ndarray,
    cell: str = "gru",
    units: int = 32,
    layers: int = 1,
    dropout: float = 0.0,
    name: str = "rnn2c_classifier",
    noise: float = 0.0,
) -> keras.Model:
    """Build (uncompiled) the classifier.

    Args:
        num_features: F, features per time step.
        num_classes: number of softmax outputs.
        norm_data: ``[M, F]`` real (unpadded) training steps; the Normalization layer is
            adapted on them (per-feature mean and variance), so normalization is part of the
            saved model and the model takes raw, zero-padded sequences.
        cell: ``gru`` (keras GRU, reset_after=True), ``lstm`` or ``rnn`` (SimpleRNN).
        units: hidden units of every recurrent layer.
        layers: number of stacked recurrent layers (all but the last return sequences).
        dropout: rate of a Dropout before the Dense head (0 = no Dropout layer).
    """
    import keras

    check_config(cell, units, layers, dropout)
    norm_data = np.asarray(norm_data, dtype=np.float32)
    if norm_data.ndim != 2 or norm_data.shape[1] != num_features or norm_data.shape[0] == 0:
        raise ConfigError(
            f"normalization data has shape {norm_data.shape}; expected [steps, {num_features}]"
        )

    inputs = keras.Input(shape=(None, num_features), name="input")
    h = keras.layers.Masking(mask_value=MASK_VALUE, name="masking")(inputs)
    norm = keras.layers.Normalization(axis=-1, name="normalization")
    norm.adapt(norm_data)
    h = norm(h)
    if noise > 0.0:  # training-time input noise (normalized units); a no-op at inference
        h = keras.layers.GaussianNoise(noise, name="input_noise")(h)
    for i in range(layers):
        last = i == layers - 1
        kwargs = {"return_sequences": not last, "name": f"{cell}_{i}"}
        if cell == "gru":
            rnn = keras.layers.GRU(units, reset_after=True, **kwargs)
        elif cell == "lstm":
            rnn = keras.layers.LSTM(units, **kwargs)
        else:
            rnn = keras.layers.SimpleRNN(units, **kwargs)
        h = rnn(h)
    if dropout > 0.0:
        h = keras.layers.Dropout(dropout, name="dropout")(h)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(h)
    return keras.Model(inputs, outputs, name=name)
