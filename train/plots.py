"""Run-folder plots (matplotlib, Agg canvas; no global backend is changed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["confusion_matrix", "plot_confusion", "plot_curves"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``, int64 ``[K, K]``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def _figure(width: float, height: float):  # noqa: ANN202 - matplotlib types
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError(
            "matplotlib is not installed; install the training extra: pip install 'rnn2c[train]'"
        ) from exc
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_confusion(cm: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    k = len(class_names)
    size = max(4.0, 0.55 * k + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(cm, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = cm.max() / 2.0 if cm.size else 0.0
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                color="white" if cm[i, j] > threshold else "black",
                fontsize=9,
            )
    fig.tight_layout()
    fig.savefig(path)


def plot_curves(history: dict[str, list[float]], path: Path, title: str) -> None:
    fig = _figure(10.0, 4.0)
    for col, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, col + 1)
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
