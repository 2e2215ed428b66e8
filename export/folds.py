"""Per-feature affine layers folded into a neighbouring weight layer: BatchNormalization
(inference statistics) and Rescaling, beside Normalization (read in keras_reader).

Each becomes y = a * x + b per feature. The reader composes consecutive ones and folds the result
forward into the next weight layer's input weights and bias (ir.fold_affine); where no weight
layer follows (the end of the model, or a separate activation layer next), it is folded backward
into the output rows of the linear Dense right before it (:func:`fold_into_output`). Anything
else cannot be folded exactly and is refused with one line saying where to move the layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, FloatLayer

#: Keras class name -> reader of (a, b)
AFFINE_CLASSES = ("BatchNormalization", "Rescaling")
#: a pending affine: (a, b, the layers it came from as "'name' (Class)")
Affine = tuple[np.ndarray, np.ndarray, str]
_FEATURE_AXES = (-1, 2, (-1,), [-1], (2,), [2])


def read_affine(layer: Any, size: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) per feature of a BatchNormalization or Rescaling layer over `size` features."""
    cls = type(layer).__name__
    cfg = layer.get_config()
    if cls == "BatchNormalization":
        axis = cfg.get("axis", -1)
        if axis not in _FEATURE_AXES:
            raise ExportError(
                f"{where}: axis={axis} is not supported; normalize the feature axis (-1)"
            )
        if cfg.get("renorm"):
            raise ExportError(f"{where}: renorm=True is not supported; use renorm=False")
        mean = _vector(layer.moving_mean, size, where, "moving_mean")
        var = _vector(layer.moving_variance, size, where, "moving_variance")
        gamma, beta = getattr(layer, "gamma", None), getattr(layer, "beta", None)
        gamma = np.ones(size) if gamma is None else _vector(gamma, size, where, "gamma")
        beta = np.zeros(size) if beta is None else _vector(beta, size, where, "beta")
        a = gamma / np.sqrt(var + float(cfg.get("epsilon", 1e-3)))
        b = beta - mean * a
    elif cls == "Rescaling":
        a = _vector(cfg.get("scale", 1.0), size, where, "scale")
        b = _vector(cfg.get("offset", 0.0), size, where, "offset")
    else:  # pragma: no cover - the reader only calls this for AFFINE_CLASSES
        raise ExportError(f"{where}: not an affine layer")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ExportError(f"{where}: its statistics hold NaN or inf; repair or retrain the model")
    return a, b


def _vector(value: Any, size: int, where: str, what: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    if v.size == 1:
        return np.full(size, float(v[0]))
    if v.size != size:
        raise ExportError(f"{where}: {v.size} values of {what} for {size} features")
    return v


def compose(first: Affine | None, a: np.ndarray, b: np.ndarray, label: str) -> Affine:
    """first, then x -> a x + b, as one affine."""
    if first is None:
        return a, b, label
    return first[0] * a, first[1] * a + b, f"{first[2]}, {label}"


def fold_into_output(layer: FloatLayer, a: np.ndarray, b: np.ndarray) -> None:
    """Fold y -> a*y + b (per output) into a linear Dense: its kernel columns and bias."""
    layer.kernel = layer.kernel * a[None, :]  # type: ignore[attr-defined]
    layer.bias = layer.bias * a + b  # type: ignore[attr-defined]


def settle(pending: Affine | None, layers: list[FloatLayer], next_what: str) -> None:
    """Fold a pending affine backward into the linear Dense before it, where no weight layer
    follows (next_what says what follows instead); refuse when that Dense is not there."""
    if pending is None:
        return
    prev = layers[-1] if layers else None
    if prev is not None and prev.kind == "dense" and prev.activation == "linear":  # type: ignore[attr-defined]
        fold_into_output(prev, pending[0], pending[1])
        return
    if prev is not None and prev.kind == "lnorm":
        raise ExportError(
            f"{pending[2]}: no weight layer follows it ({next_what}); put a GRU/LSTM/SimpleRNN/"
            "Dense layer after it: its gamma and beta are folded into that layer's weights"
        )
    before = "the model input" if prev is None else f"'{prev.name}' ({_describe(prev)})"
    raise ExportError(
        f"{pending[2]}: no weight layer follows it to fold it into ({next_what}), and "
        f"the layer before it is {before}, not a Dense without activation; move it before a "
        "GRU/LSTM/SimpleRNN/Dense layer, or give the Dense before it no activation"
    )


def _describe(layer: FloatLayer) -> str:
    if layer.kind == "dense":
        return f"Dense, activation {layer.activation}"  # type: ignore[attr-defined]
    return {"gru": "GRU", "lstm": "LSTM", "rnn": "SimpleRNN"}.get(layer.kind, layer.kind)
