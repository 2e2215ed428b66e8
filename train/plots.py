"""Run-folder plots (matplotlib, Agg canvas; no global backend is changed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "confusion_matrix",
    "plot_attention",
    "plot_confusion",
    "plot_curves",
    "plot_forecast",
    "plot_scatter",
    "plot_timeline",
]


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
    second = "accuracy" if "accuracy" in history else "mae"
    for col, metric in enumerate(("loss", second)):
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


def plot_timeline(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    lengths: np.ndarray,
    class_names: list[str],
    path: Path,
    title: str,
    sequences: int = 4,
) -> None:
    """Per-step tags: the true and the predicted label along the first few test sequences."""
    n = min(sequences, len(lengths))
    fig = _figure(11.0, 1.6 * n + 1.0)
    k = len(class_names)
    for i in range(n):
        ax = fig.add_subplot(n, 1, i + 1)
        length = int(lengths[i])
        steps = np.arange(length)
        ax.step(steps, y_true[i, :length], where="post", label="true", lw=2.0, alpha=0.6)
        ax.step(steps, y_pred[i, :length], where="post", label="predicted", lw=1.0)
        ax.set_yticks(range(k), labels=class_names, fontsize=7)
        ax.set_ylim(-0.5, k - 0.5)
        ax.set_ylabel(f"seq {i}", fontsize=8)
        if i == 0:
            ax.legend(loc="upper right", fontsize=8)
    fig.axes[-1].set_xlabel("step")
    fig.suptitle(f"{title}: label at every step (test)")
    fig.tight_layout()
    fig.savefig(path)


def plot_scatter(pred: np.ndarray, truth: np.ndarray, path: Path, title: str) -> None:
    """Regression: predicted against true targets (every column), with the identity line."""
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(truth.ravel(), pred.ravel(), s=10, alpha=0.6)
    lo = float(min(truth.min(), pred.min()))
    hi = float(max(truth.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def plot_forecast(
    values: np.ndarray,
    test_start: int,
    pred: np.ndarray,
    baselines: dict[str, np.ndarray],
    window: int,
    horizon: int,
    path: Path,
    title: str,
) -> None:
    """Forecast: the series, and the one-step-ahead forecasts over the test part (the first
    of the horizon's values; first column of a multivariate series)."""
    f = values.shape[1]
    fig = _figure(11.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    t = np.arange(len(values))
    ax.plot(t, values[:, 0], color="black", lw=1.0, label="series")
    n = pred.shape[0]
    at = np.arange(len(values) - horizon - n + 1, len(values) - horizon + 1)
    ax.plot(at, pred[:, 0], lw=1.6, label="model (float)")
    for name, b in baselines.items():
        if name != "train_mean":
            ax.plot(at, b[:, 0], lw=0.9, ls="--", label=name.replace("_", " "))
    ax.axvline(test_start - 0.5, color="grey", ls=":", lw=1.0)
    ax.set_xlabel("step")
    ax.set_title(f"{title} (window {window}, horizon {horizon}, {f} feature(s))")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def plot_attention(
    weights: np.ndarray, inputs: list[str], outputs: list[str], path: Path, title: str
) -> None:
    """Seq2seq: the attention weights ``[output steps, input steps]`` of one sequence, each
    row the weights one decoder step gives the encoder steps."""
    rows, cols = weights.shape
    fig = _figure(max(5.0, 0.32 * cols + 2.5), max(3.5, 0.32 * rows + 2.0))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(cols), labels=[repr(c)[1:-1] if c != " " else "␣" for c in inputs])
    ax.set_yticks(range(rows), labels=outputs)
    ax.set_xlabel("input character (encoder step)")
    ax.set_ylabel("output token (decoder step)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
