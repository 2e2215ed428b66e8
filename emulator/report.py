"""What the reports of verify (every model kind) and bench share: the check table, percentages,
the wording of a float model that did not learn, and how a model's outputs are read (its head,
the labels y holds for it, how often int8 and float decide alike)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError

#: the failure verify reports for a float model that did not learn
CHANCE_FAILURE = "the float model is at chance level (not a quantization error)"


def pct(v: float | None) -> str:
    """A fraction as a percentage for verify's table ("-" where there is none)."""
    return "-" if v is None else f"{100 * v:.2f}%"


def files_status(checked: bool, changed: list[str]) -> str:
    """The "export files" row of verify's table."""
    if changed:
        return "NO: " + ", ".join(changed) + " edited"
    return "unchanged" if checked else "not checked (manifest without hashes)"


def check_table(title: str, rows: list[tuple[str, str, str]]) -> list[str]:
    """verify's table: the title, then a row per check (check, result, threshold), aligned."""
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [title, f"  {'check':<{w0}}  {'result':<{w1}}  threshold"]
    return lines + [f"  {a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]


def untrained(why: str) -> str:
    """verify's reason for a float model that did not learn: why, and what that means."""
    return f"{why}; the model did not learn, so the int8 figures say nothing about quantization"


def head_activation(qmodel: Any) -> str:
    """The activation of a sequence model's output layer ("softmax", "sigmoid", "linear",
    "relu", ...), or the last layer's kind where it is not a Dense."""
    last = qmodel.layers[-1]
    return str(getattr(last, "activation", "")) if last.kind == "dense" else last.kind


def comparison_head(head_act: str, outputs: int, labels: np.ndarray | None) -> str:
    """How int8 and float outputs are compared: "sigmoid" (the 0.5 threshold of every output),
    "argmax" (a softmax head, or integer labels for a multi-output model: logits) or "none"."""
    if head_act == "sigmoid":
        return "sigmoid"
    if outputs >= 2 and (head_act == "softmax" or labels is not None):
        return "argmax"
    return "none"


def agreement(head: str, y_int: np.ndarray, y_float: np.ndarray) -> float | None:
    """How often int8 and float decide the same: argmax for softmax/logit classifiers, the 0.5
    threshold of every output for sigmoid classifiers; None for other models."""
    if head == "sigmoid":
        return float(((y_int > 0.5) == (y_float > 0.5)).mean())
    if head == "argmax":
        return float((y_int.argmax(1) == y_float.argmax(1)).mean())
    return None


def class_labels(y: np.ndarray | None, head: str, outputs: int) -> np.ndarray | None:
    """Class labels from y for a classifier head, validated; None when y is not labels."""
    if y is None:
        return None
    y = np.asarray(y)
    if head == "sigmoid":
        y = y.reshape(len(y), -1) if y.ndim >= 1 else y
        if y.ndim != 2 or y.shape[1] != outputs:
            raise ExportError(
                f"--data: y has shape {y.shape}; a {outputs}-output sigmoid classifier needs "
                f"0/1 labels shaped [N] or [N, {outputs}]"
            )
        if not np.isin(y, (0, 1)).all():
            raise ExportError(
                "--data: y holds values other than 0 and 1; a sigmoid classifier needs 0/1 labels"
            )
        return y.astype(np.int64)
    if y.ndim == 2 and y.shape[1] == outputs and outputs >= 2:  # one-hot
        if not np.isin(y, (0, 1)).all() or not (y.sum(axis=1) == 1).all():
            if head != "softmax" and y.dtype.kind == "f":
                return None  # a vector of regression targets per sequence
            raise ExportError(
                f"--data: y is [N, {outputs}] but not one-hot; give class indices [N] or "
                "one-hot rows"
            )
        return y.argmax(1).astype(np.int64)
    if y.ndim != 1:
        if head == "softmax":
            raise ExportError(
                f"--data: y has shape {y.shape}; give class indices [N] or one-hot [N, {outputs}]"
            )
        return None  # regression targets: not labels
    if y.dtype.kind == "f":
        if head == "softmax":
            raise ExportError(
                f"--data: y holds floats ({y.dtype}); a classifier needs integer class labels "
                f"0..{outputs - 1} (e.g. y.astype(int))"
            )
        return None  # regression targets
    if y.dtype.kind not in "iub":
        return None
    if outputs < 2 and head != "softmax":
        return None
    if y.min() < 0 or y.max() >= outputs:
        raise ExportError(
            f"--data: labels run from {y.min()} to {y.max()}; the model has {outputs} classes "
            f"(0..{outputs - 1})"
        )
    return y.astype(np.int64)
