"""Helpers shared by the layer modules: float activations and reading Keras weights."""

from __future__ import annotations

import numpy as np

from rnn2c.export.ir import ExportError, StateField


def state_field(state_bits: int, units: int) -> StateField:
    """The hidden state array of a recurrent layer: int8 Q0.7 or int16 Q0.15."""
    if state_bits == 16:
        return StateField("h", "int16_t", units, "hidden state, Q0.15")
    return StateField("h", "int8_t", units, "hidden state, Q0.7")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def check_recurrent_config(layer, kind: str, activations: dict[str, str]) -> None:  # noqa: ANN001
    """Refuse the recurrent-layer options the integer kernels do not implement."""
    cfg = layer.get_config()
    where = f"layer '{layer.name}' ({kind})"
    for key, want in activations.items():
        got = cfg.get(key)
        got_name = got if isinstance(got, str) else getattr(got, "__name__", str(got))
        if got_name != want:
            raise ExportError(
                f"{where}: {key}={got_name!r} is not supported; only {key}={want!r} (the default)"
            )
    for key, label in (
        ("go_backwards", "go_backwards=True"),
        ("stateful", "stateful=True"),
        ("return_state", "return_state=True"),
    ):
        if cfg.get(key):
            raise ExportError(f"{where}: {label} is not supported; use the default (False)")


def recurrent_weights(layer, gates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:  # noqa: ANN001
    """(kernel [F, G*U], recurrent_kernel [U, G*U], bias or None) as float64."""
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    units = int(layer.get_config()["units"])
    if len(weights) < 2 or weights[0].shape[1] != gates * units:
        raise ExportError(
            f"layer '{layer.name}': unexpected weight shapes {[w.shape for w in weights]}"
        )
    bias = weights[2] if len(weights) > 2 else None
    return weights[0], weights[1], bias
