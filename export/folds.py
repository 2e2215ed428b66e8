"""Per-feature affine layers folded into a neighbouring weight layer: BatchNormalization
(inference statistics) and Rescaling, beside Normalization (read in keras_reader).

Each becomes y = a * x + b per feature. The reader composes consecutive ones, carries the result
through pooling that commutes with it (average pooling, global or not; max pooling when no scale
is negative; dropout is no layer at inference) and folds it forward into the next weight layer's
input weights and bias (ir.fold_affine) where that is exact: a Dense or recurrent layer always,
a Conv1D with padding 'valid' or without offset (b = 0; Keras pads a 'causal' or 'same' input
with zeros the offset must not shift). Where it cannot go forward (the end of the model, a
separate activation layer next, such a Conv1D) it is folded backward into the output columns of
the linear Dense or Conv1D before it (:func:`fold_into_output`, always exact). Anything else
cannot be folded exactly and is refused with one line saying why and where to move the layer.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, FloatLayer, fold_affine

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
    """Fold y -> a*y + b (per output) into a linear Dense or Conv1D: its kernel's output columns
    (every tap of a Conv1D) and its bias."""
    layer.kernel = layer.kernel * a  # type: ignore[attr-defined]
    layer.bias = layer.bias * a + b  # type: ignore[attr-defined]


#: layers whose input weights take x -> a*x + b exactly: W(a*x + b) = (W diag a) x + W b
FORWARD_KINDS = ("dense", "gru", "lstm", "rnn", "bidir", "conv1d")


def commutes(layer: FloatLayer, a: np.ndarray) -> bool:
    """Whether pooling gives the same with the affine before it as after it: average pooling
    always (the mean of a*x + b is a*mean + b), max pooling where no scale is negative."""
    if layer.kind not in ("pool1d", "gpool1d"):
        return False
    return layer.op == "average" or bool(np.all(a >= 0))  # type: ignore[attr-defined]


def forward_exact(layer: FloatLayer, b: np.ndarray) -> bool:
    """Whether folding into the layer's input weights is exact: always for Dense and recurrent
    layers, for a Conv1D only without padding ('valid') or with no offset (b = 0), as Keras pads
    a 'causal' or 'same' Conv1D's input with zeros the offset must not shift."""
    if layer.kind not in FORWARD_KINDS:
        return False
    return layer.kind != "conv1d" or layer.padding == "valid" or not np.any(b)  # type: ignore[attr-defined]


def place(
    pending: Affine, layer: FloatLayer, layers: list[FloatLayer], where: str
) -> Affine | None:
    """The next IR layer after a pending affine: carried through pooling it commutes with
    (returned, still pending), folded forward into the layer's input weights where exact, else
    backward into the linear Dense or Conv1D before it (settle, which refuses with the reason
    when there is none)."""
    a, b, label = pending
    if commutes(layer, a):
        return pending
    if forward_exact(layer, b):
        fold_affine(layer, a, b)
        return None
    normalization = set(re.findall(r"\((\w+)\)", label)) == {"Normalization"}
    if layer.kind == "conv1d" and normalization and not _linear(_behind(layers, a)):
        fold_affine(layer, a, b)  # the Conv1D's own refusal, which names the Normalization
    why = f"no weight layer follows it to fold it into ({where} comes next)"
    if layer.kind == "conv1d":
        why = (
            f"its offset cannot be folded into the next layer, {where} with "
            f"padding='{layer.padding}', as Keras pads that layer's input with zeros which the "  # type: ignore[attr-defined]
            "offset must not shift"
        )
    elif layer.kind in ("pool1d", "gpool1d"):
        neg = int(np.sum(a < 0))
        why = (
            f"it scales {neg} of its {a.size} channels by a negative factor (gamma or scale "
            f"< 0), which does not commute with the max pooling after it, {where}"
        )
    settle(pending, layers, f"{where} comes next", why)
    return None


def settle(
    pending: Affine | None, layers: list[FloatLayer], next_what: str, why: str | None = None
) -> None:
    """Fold a pending affine backward into the linear Dense or Conv1D before it (through the
    pooling between them that commutes with it), where it cannot go forward: `why`, by default
    that no weight layer follows (next_what says what follows instead); refuse when that layer
    is not there."""
    if pending is None:
        return
    a, b, label = pending
    prev = _behind(layers, a)
    if prev is not None and _linear(prev):
        fold_into_output(prev, a, b)
        return
    if prev is not None and prev.kind == "lnorm":
        raise ExportError(
            f"{label}: no weight layer follows it ({next_what}); put a GRU/LSTM/SimpleRNN/"
            "Dense layer after it: its gamma and beta are folded into that layer's weights"
        )
    why = why or f"no weight layer follows it to fold it into ({next_what})"
    before = "the model input" if prev is None else f"'{prev.name}' ({_describe(prev)})"
    if layers and prev is not layers[-1]:
        before = f"(past the pooling, which it commutes with) {before}"
    raise ExportError(
        f"{label}: {why}, and the layer before it is {before}, not a Dense or Conv1D without "
        "activation; move it before a GRU/LSTM/SimpleRNN/Dense layer, or right after a Dense or "
        "Conv1D without activation (a separate activation layer may follow it)"
    )


def _behind(layers: list[FloatLayer], a: np.ndarray) -> FloatLayer | None:
    """The last layer before the pooling at the end of `layers` that commutes with scale a."""
    for layer in reversed(layers):
        if not commutes(layer, a):
            return layer
    return None


def _linear(layer: FloatLayer | None) -> bool:
    """Whether the layer is a Dense or Conv1D without activation (y = W x + bias)."""
    return layer is not None and layer.kind in ("dense", "conv1d") and layer.activation == "linear"  # type: ignore[attr-defined]


def _describe(layer: FloatLayer) -> str:
    if layer.kind in ("dense", "conv1d"):
        cls = "Dense" if layer.kind == "dense" else "Conv1D"
        return f"{cls}, activation {layer.activation}"  # type: ignore[attr-defined]
    if layer.kind in ("pool1d", "gpool1d"):
        glob = "Global" if layer.kind == "gpool1d" else ""
        return f"{glob}{layer.op.capitalize()}Pooling1D"  # type: ignore[attr-defined]
    names = {"gru": "GRU", "lstm": "LSTM", "rnn": "SimpleRNN", "bidir": "Bidirectional"}
    return names.get(layer.kind, layer.kind)
