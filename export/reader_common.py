"""What the chain reader (keras_reader.py) and the graph reader (graph.py) share: the Keras
layer classes they pass through, fold or refuse (with what to do instead), and the checks and
folds both apply to a layer they read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rnn2c.export.folds import AFFINE_CLASSES
from rnn2c.export.ir import ExportError, FloatLayer
from rnn2c.export.layers import READERS, RECURRENT_KINDS, TIME_KINDS
from rnn2c.export.layers.dense import ACTIVATIONS, ALIASES, DEFAULT_ALPHA

#: layers that do nothing at inference (Masking: the caller stops stepping at the real length)
PASS_THROUGH = (
    "InputLayer",
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "Masking",
)
#: folded into a neighbour: Normalization, BatchNormalization and Rescaling into the next weight
#: layer (or the linear Dense or Conv1D before them, see folds.py); a separate activation layer
#: into the linear Dense or Conv1D before it
STANDALONE_ACTIVATIONS = {
    "Softmax": "softmax",
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
}
FOLDED = (
    "Normalization",
    *AFFINE_CLASSES,
    "Activation",
    *STANDALONE_ACTIVATIONS,
    "TimeDistributed",
)
#: merges of parallel branches (graph.py, layers/merge.py)
MERGES = ("Add", "Subtract", "Average", "Multiply", "Concatenate")
#: what to do instead, for layers people put around recurrent models that rnn2c does not export
NEXT_STEP = {
    "MelSpectrogram": "compute the spectrogram (or MFCCs) in firmware and export the model "
    "from the layer after it, calibrated on its output",
    "STFTSpectrogram": "compute the spectrogram in firmware and export the model from the layer "
    "after it, calibrated on its output",
    "Conv2D": "treat the features as channels and use a Conv1D over time",
    "SeparableConv1D": "use a Conv1D (groups=1)",
    "DepthwiseConv1D": "use a Conv1D (groups=1)",
    "ConvLSTM1D": "rnn2c takes [batch, time, features]: make the extra axis features and use a "
    "Conv1D front end (padding='causal') followed by an LSTM",
    "Flatten": "rnn2c keeps one feature vector per step: end the sequence with a recurrent layer "
    "(return_sequences=False) or a global pooling layer instead",
    "Reshape": "rnn2c keeps one feature vector per step; reshape the data before the model",
    "Lambda": "its Python code cannot be exported; write it with Keras layers",
    "RNN": "use keras.layers.GRU, LSTM or SimpleRNN instead of RNN(cell)",
    "ZeroPadding1D": "pad the sequence in firmware before stepping, or use padding='causal' or "
    "'same' on the Conv1D",
    "Cropping1D": "skip those steps in firmware (do not call step for them)",
    "UpSampling1D": "repeat the steps in firmware (call step again with the same input)",
    "MultiHeadAttention": "multi-head attention is not exported; use recurrent layers, or "
    "Attention/AdditiveAttention in a two-input encoder-decoder (README: sequence to sequence)",
    "Attention": "rnn2c exports attention in two-input encoder-decoder models (the decoder "
    "attending to the encoder's outputs; README: sequence to sequence), not inside a chain",
    "AdditiveAttention": "rnn2c exports attention in two-input encoder-decoder models (the "
    "decoder attending to the encoder's outputs; README: sequence to sequence), not inside a chain",
    "Maximum": "merge the branches with Add, Subtract, Average, Multiply or Concatenate",
    "Minimum": "merge the branches with Add, Subtract, Average, Multiply or Concatenate",
}

SUPPORTED = sorted({*READERS, *PASS_THROUGH, *FOLDED, *MERGES, "Embedding"} - {"InputLayer"})


def require_sequence_layer(model: Any, layers: list[FloatLayer]) -> None:
    """Refuse a model with no layer over time (recurrent, Conv1D or pooling)."""
    if not any(layer.kind in (*RECURRENT_KINDS, *TIME_KINDS) for layer in layers):
        raise ExportError(
            f"model '{model.name}' has no recurrent layer (GRU, LSTM or SimpleRNN); "
            "rnn2c exports recurrent models"
        )


def next_step(cls: str) -> str:
    """What to do about an unsupported layer type: advice where there is some, else the list."""
    return NEXT_STEP.get(cls, f"supported: {', '.join(SUPPORTED)}")


def masking_value(layer: Any, where: str, first: bool, after_embedding: bool = False) -> float:
    """The mask_value of a Masking layer that is the model's first layer (right after the
    Input): its padding steps, which data.mask_lengths turns into lengths. A Masking anywhere
    else masks the steps where a layer's outputs happen to equal the value, which the C, running
    every step up to the real length, cannot do: refused."""
    if after_embedding:
        raise ExportError(
            f"{where}: a Masking layer after an Embedding is not supported; give the Embedding "
            "mask_zero=True instead (id 0 is then padding, and the C stops at the real length)"
        )
    if not first:
        raise ExportError(
            f"{where}: a Masking layer is supported only as the first layer, right after the "
            "Input (it then marks the padding steps at the end of each sequence, where the C "
            "stops); here the steps it masks depend on the outputs of the layers before it, "
            "which the C cannot skip: mask the model input instead"
        )
    value = float(layer.get_config().get("mask_value", 0.0))
    if not np.isfinite(value):
        raise ExportError(f"{where}: mask_value={value} is not supported; use a finite value")
    return value


def check_finite(layer: FloatLayer, where: str) -> None:
    """Refuse a read layer whose weights hold NaN or inf (where: the layer, for the message)."""
    for f in dataclasses.fields(layer):
        v = getattr(layer, f.name)
        if isinstance(v, np.ndarray) and not np.isfinite(v).all():
            raise ExportError(
                f"{where}: its weights hold NaN or inf values; retrain or repair the model "
                "(rnn2c needs finite weights)"
            )


def fold_activation(layer: Any, cls: str, where: str, layers: list[FloatLayer]) -> None:
    """Merge a standalone activation layer (Keras class cls) into the linear Dense or Conv1D
    right before it, the last of ``layers``; refused in one line where there is none."""
    cfg = layer.get_config()
    alpha = None
    if cls in ("LeakyReLU", "ELU"):  # a slope of their own
        act = STANDALONE_ACTIVATIONS[cls]
        alpha = float(cfg.get("negative_slope" if cls == "LeakyReLU" else "alpha", 0.0))
        if not 0.0 <= alpha <= 1.0:
            raise ExportError(f"{where}: a slope of {alpha:g} is not supported; use 0 to 1")
    elif cls in STANDALONE_ACTIVATIONS:
        act = STANDALONE_ACTIVATIONS[cls]
        defaults = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0, "axis": -1}
        odd = {k: cfg[k] for k in defaults if k in cfg and cfg[k] != defaults[k]}
        if odd:
            raise ExportError(f"{where}: {odd} is not supported; only the default {cls}()")
    else:
        act = cfg.get("activation")
        act = act if isinstance(act, str) else getattr(act, "__name__", str(act))
        act = ALIASES.get(act, act)
    prev = layers[-1] if layers else None
    if prev is None or prev.kind not in ("dense", "conv1d") or prev.activation != "linear":  # type: ignore[attr-defined]
        raise ExportError(
            f"{where}: a separate activation layer is supported only right after a linear Dense "
            "or Conv1D; give that layer the activation instead"
        )
    if act not in ACTIVATIONS:
        raise ExportError(
            f"{where}: activation {act!r} is not supported; supported: {', '.join(ACTIVATIONS)}"
        )
    prev.activation = act  # type: ignore[attr-defined]
    prev.alpha = DEFAULT_ALPHA.get(act, 0.0) if alpha is None else alpha  # type: ignore[attr-defined]
