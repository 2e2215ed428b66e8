"""The Keras models that `rnn2c train` builds.

Input(None, F) -> Normalization -> [GaussianNoise] -> [Conv1D(causal, relu) -> [pooling]]
-> {GRU|LSTM|SimpleRNN, or Bidirectional of one} x layers -> [Dropout]
-> Dense(softmax for classify/tag, linear for regress/forecast).

A token dataset (integer ids, 0 = padding) replaces the front: Input(None) int32 ->
Embedding(V, E, mask_zero=True) -> the recurrent layers and the head as above.

With the Conv1D front end the Normalization only scales (mean 0, variance the mean square per
feature): Keras pads a causal Conv1D's input with zeros, and a scale-only normalization folds
into the Conv1D's weights exactly, as the exporter requires (an offset would shift the padding).

Only layer types the exporter accepts appear. Padding is masked by each sequence's real
length, not by value: training uses a two-input view of the same layers, ``(x, mask)``, with the
mask handed to every recurrent layer; the saved model is the single-input chain without any
Masking layer, which the C runs (and `verify` compares) on each sequence up to its real length.
A real step whose features are all 0.0 (silence, an idle sensor) is therefore seen by Keras
and by the C alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import TASKS

if TYPE_CHECKING:
    import keras

__all__ = [
    "CELLS",
    "POOLS",
    "FrontEnd",
    "ALLOWED_LAYER_TYPES",
    "ConfigError",
    "Models",
    "build_model",
    "build_models",
    "length_mask",
    "real_steps",
]

CELLS = ("gru", "lstm", "rnn")
ALLOWED_LAYER_TYPES = frozenset(
    {
        "InputLayer",
        "Embedding",
        "Masking",
        "Normalization",
        "GaussianNoise",
        "GRU",
        "LSTM",
        "SimpleRNN",
        "Dense",
        "Dropout",
        "Conv1D",
        "MaxPooling1D",
        "AveragePooling1D",
        "Bidirectional",
    }
)
POOLS = ("none", "max", "avg")
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


@dataclass(frozen=True)
class FrontEnd:
    """A causal Conv1D (ReLU) before the recurrent layers, with an optional pooling after it
    (``valid``, window and stride ``pool_size``). Both stream in the C: a strided Conv1D or a
    pooling makes the later layers run at every ``stride`` (x ``pool_size``) steps only."""

    filters: int = 16
    kernel: int = 3
    stride: int = 1
    pool: str = "none"
    pool_size: int = 2

    def check(self, task: str) -> None:
        """ConfigError (one line) for a setting out of range or one the task cannot take."""
        if not 1 <= self.filters <= 1024:
            raise ConfigError(f"--conv-filters {self.filters}; expected an integer from 1 to 1024")
        if not 1 <= self.kernel <= 64:
            raise ConfigError(f"--conv-kernel {self.kernel}; expected an integer from 1 to 64")
        if not 1 <= self.stride <= 64:
            raise ConfigError(f"--conv-stride {self.stride}; expected an integer from 1 to 64")
        if self.pool not in POOLS:
            raise ConfigError(f"--pool {self.pool!r}; expected one of {', '.join(POOLS)}")
        if not 2 <= self.pool_size <= 64:
            raise ConfigError(f"--pool-size {self.pool_size}; expected an integer from 2 to 64")
        if task in ("tag", "forecast") and self.downsample > 1:
            raise ConfigError(
                f"--task {task} needs an output at every step: use --conv-stride 1 and --pool "
                "none with --frontend conv"
            )

    @property
    def downsample(self) -> int:
        """Input steps per step of the layers after the front end."""
        return self.stride * (self.pool_size if self.pool != "none" else 1)

    def describe(self) -> str:
        conv = f"Conv1D({self.filters},{self.kernel}" + (
            f",stride {self.stride})" if self.stride > 1 else ")"
        )
        pool = f" > {self.pool.capitalize()}Pool({self.pool_size})" if self.pool != "none" else ""
        return conv + pool


def frontend_mask(mask: Any, fe: FrontEnd) -> Any:
    """The length mask [B, T] of the steps the front end outputs: a causal Conv1D with stride s
    outputs at input steps 0, s, 2s, ... (real while that step is); a valid pooling of size p
    outputs once a window of p is full (real while its last step is)."""
    out = mask[:, :: fe.stride]
    if fe.pool != "none":
        p = fe.pool_size
        out = out[:, p - 1 :: p]
    return out


@dataclass
class Models:
    """The two views of one set of layers.

    ``train`` takes ``(x [B, T, F], mask [B, T] bool)``: the mask comes from each sequence's
    real length and goes to every recurrent layer, so a real step whose features are all 0.0
    is a step like any other. ``infer`` takes ``x`` alone and has no Masking layer: a single
    chain the exporter reads, run on each sequence cut to its real length (as the C does).
    """

    train: keras.Model
    infer: keras.Model


def build_models(
    num_features: int,
    num_outputs: int,
    norm_data: np.ndarray,
    cell: str = "gru",
    units: int = 32,
    layers: int = 1,
    dropout: float = 0.0,
    name: str = "rnn2c_model",
    noise: float = 0.0,
    task: str = "classify",
    frontend: FrontEnd | None = None,
    bidirectional: bool = False,
    embedding: tuple[int, int] | None = None,
) -> Models:
    """Build (uncompiled) the training and inference models; they share every layer.

    Args:
        num_features: F, features per time step.
        num_outputs: classes (``classify``, ``tag``) or target columns (``regress``,
            ``forecast``).
        norm_data: ``[M, F]`` real (unpadded) training steps; the Normalization layer is
            adapted on them (per-feature mean and variance), so normalization is part of the
            saved model and the model takes raw sequences.
        cell: ``gru`` (keras GRU, reset_after=True), ``lstm`` or ``rnn`` (SimpleRNN).
        units: hidden units of every recurrent layer.
        layers: number of stacked recurrent layers.
        dropout: rate of a Dropout before the Dense head (0 = no Dropout layer).
        noise: std of a GaussianNoise after normalization (training only).
        task: ``classify``/``regress``: one output per sequence (the last recurrent layer
            returns its last step); ``tag``: one softmax per step (every recurrent layer
            returns sequences); ``forecast``: as ``regress``. Classifier heads are softmax,
            the others linear.
        frontend: a causal Conv1D (and pooling) before the recurrent layers (:class:`FrontEnd`);
            its Normalization then only scales (see the module doc).
        bidirectional: every recurrent layer wrapped in ``Bidirectional`` (concat): a
            whole-sequence model (the C runs it through ``<name>_run`` up to ``--max-length``).
        embedding: ``(V, E)`` for token inputs: ids ``[B, T]`` into an Embedding(V, E,
            mask_zero=True) in place of the Normalization (``num_features`` and ``norm_data``
            are not used; no noise, no front end).
    """
    import keras

    check_config(cell, units, layers, dropout)
    if task not in TASKS:
        raise ConfigError(f"--task {task!r}; expected one of {', '.join(TASKS)}")
    if embedding is not None:
        if frontend is not None or noise > 0.0:
            raise ConfigError("a token model takes neither a Conv1D front end nor input noise")
        vocab, dim = embedding
        body: list[Any] = [keras.layers.Embedding(vocab, dim, mask_zero=True, name="embedding")]
        in_shape, in_dtype = (None,), "int32"
    else:
        body = _feature_front(keras, num_features, norm_data, noise, task, frontend)
        in_shape, in_dtype = (None, num_features), "float32"
    recurrent = _recurrent(keras, cell, units, layers, task == "tag", bidirectional)
    head: list[Any] = []
    if dropout > 0.0:
        head.append(keras.layers.Dropout(dropout, name="dropout"))
    classifier = task in ("classify", "tag")
    head.append(
        keras.layers.Dense(
            num_outputs,
            activation="softmax" if classifier else "linear",
            name="classifier" if classifier else "regressor",
        )
    )

    def chain(x: Any, mask: Any | None) -> Any:
        h = x
        for layer in body:
            h = layer(h)
        if mask is not None and frontend is not None and frontend.downsample > 1:
            mask = keras.layers.Lambda(lambda m: frontend_mask(m, frontend))(mask)
        for rnn in recurrent:
            h = rnn(h, mask=mask) if mask is not None else rnn(h)
        for layer in head:
            h = layer(h)
        return h

    x_in = keras.Input(shape=in_shape, dtype=in_dtype, name="input")
    m_in = keras.Input(shape=(None,), dtype="bool", name="mask")
    train = keras.Model([x_in, m_in], chain(x_in, m_in), name=f"{name}_train")
    x_inf = keras.Input(shape=in_shape, dtype=in_dtype, name="input")
    infer = keras.Model(x_inf, chain(x_inf, None), name=name)
    return Models(train, infer)


def _feature_front(
    keras: Any,
    num_features: int,
    norm_data: np.ndarray,
    noise: float,
    task: str,
    frontend: FrontEnd | None,
) -> list[Any]:
    """The layers before the recurrent ones for real-valued features: the Normalization,
    the training noise, the Conv1D front end."""
    norm_data = np.asarray(norm_data, dtype=np.float32)
    if norm_data.ndim != 2 or norm_data.shape[1] != num_features or norm_data.shape[0] == 0:
        raise ConfigError(
            f"normalization data has shape {norm_data.shape}; expected [steps, {num_features}]"
        )
    if frontend is not None:
        frontend.check(task)
    norm = _normalization(keras, norm_data, scale_only=frontend is not None)
    body: list[Any] = [norm]
    if noise > 0.0:  # training-time input noise (normalized units); a no-op at inference
        body.append(keras.layers.GaussianNoise(noise, name="input_noise"))
    if frontend is not None:
        body += _frontend_layers(keras, frontend)
    return body


def _recurrent(
    keras: Any, cell: str, units: int, layers: int, per_step: bool, bidirectional: bool
) -> list[Any]:
    """The recurrent layers: every one returns sequences but the last of a per-sequence model."""
    recurrent = []
    for i in range(layers):
        seq = per_step or i < layers - 1
        kwargs = {"return_sequences": seq, "name": f"{cell}_{i}"}
        if cell == "gru":
            rnn = keras.layers.GRU(units, reset_after=True, **kwargs)
        elif cell == "lstm":
            rnn = keras.layers.LSTM(units, **kwargs)
        else:
            rnn = keras.layers.SimpleRNN(units, **kwargs)
        if bidirectional:
            rnn = keras.layers.Bidirectional(rnn, merge_mode="concat", name=f"bi{cell}_{i}")
        recurrent.append(rnn)
    return recurrent


def _normalization(keras: Any, data: np.ndarray, scale_only: bool) -> Any:
    """The input Normalization: adapted on ``data`` (per-feature mean and variance), or, before
    a Conv1D front end, mean 0 and variance the mean square (a scale with no offset)."""
    if not scale_only:
        norm = keras.layers.Normalization(axis=-1, name="normalization")
        norm.adapt(data)
        return norm
    ms = np.maximum(np.mean(np.square(data.astype(np.float64)), axis=0), 1e-12)
    return keras.layers.Normalization(
        axis=-1, mean=[0.0] * data.shape[1], variance=ms.tolist(), name="normalization"
    )


def _frontend_layers(keras: Any, fe: FrontEnd) -> list[Any]:
    layers: list[Any] = [
        keras.layers.Conv1D(
            fe.filters,
            fe.kernel,
            strides=fe.stride,
            padding="causal",
            activation="relu",
            name="conv1d",
        )
    ]
    if fe.pool != "none":
        pool = keras.layers.MaxPooling1D if fe.pool == "max" else keras.layers.AveragePooling1D
        layers.append(pool(fe.pool_size, name=f"{fe.pool}_pool"))
    return layers


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
    """The inference classifier of :func:`build_models` (a single chain, no Masking)."""
    return build_models(
        num_features, num_classes, norm_data, cell, units, layers, dropout, name, noise
    ).infer


def length_mask(lengths: np.ndarray, t: int) -> np.ndarray:
    """``[N, T]`` bool: True at the real steps of each sequence."""
    return np.arange(t)[None, :] < np.asarray(lengths)[:, None]
