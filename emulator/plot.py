"""`rnn2c verify --plot`: int8 vs float at a glance (needs matplotlib, in the `train` extra)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rnn2c.outdir import write_file_atomically


def _pyplot():  # noqa: ANN202
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as e:
        raise RuntimeError("--plot needs matplotlib: pip install 'rnn2c[train]'") from e
    return plt


def _save(plt, fig, title: str, path: str | Path) -> None:  # noqa: ANN001
    """The figure as PNG, written atomically (the --plot file)."""
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_file_atomically(path, buf.getvalue(), "--plot")


def plot_report(
    path: str | Path,
    title: str,
    y_float: np.ndarray,
    y_int: np.ndarray,
    stream_error: np.ndarray | None,
    threshold: float | None = None,
) -> None:
    """Left: every output, int8 C against float Keras. Right: |error| along the long stream."""
    plt = _pyplot()
    panels = 2 if stream_error is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.5), squeeze=False)
    ax = axes[0, 0]
    lo, hi = float(min(y_float.min(), y_int.min())), float(max(y_float.max(), y_int.max()))
    ax.plot([lo, hi], [lo, hi], color="0.7", lw=1)
    ax.scatter(y_float.ravel(), y_int.ravel(), s=6, alpha=0.5)
    ax.set_xlabel("float Keras output")
    ax.set_ylabel("int8 C output (dequantized)")
    ax.set_title("outputs at each sequence's last step")
    if stream_error is not None:
        ax = axes[0, 1]
        steps = np.arange(stream_error.size)
        window = max(1, stream_error.size // 200)
        smooth = np.convolve(stream_error, np.ones(window) / window, mode="same")
        ax.plot(steps, stream_error, color="0.8", lw=0.5, label="|int8 - float| per step")
        ax.plot(steps, smooth, lw=1.5, label=f"mean over {window} steps")
        if threshold is not None:
            ax.axhline(threshold, color="tab:red", lw=1, ls="--", label="verify threshold")
        ax.set_xlabel("step of the stream (no reset)")
        ax.set_ylabel("mean |int8 - float| over outputs")
        ax.set_title("long-stream drift check")
        ax.legend(loc="center right", fontsize="small")
    _save(plt, fig, title, path)


def plot_attention(
    path: str | Path,
    title: str,
    weights: np.ndarray,
    labels: tuple[list[str], list[str]] | None = None,
) -> None:
    """A seq2seq model's attention weights: output steps down, input steps across; labels: the
    input and output tokens as text."""
    plt = _pyplot()
    rows, cols = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * cols + 2), max(3.0, 0.3 * rows + 1.5)))
    im = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0.0)
    ax.set_xlabel("input step")
    ax.set_ylabel("output token (the last: the end token)")
    if labels is not None:
        ax.set_xticks(range(cols), [repr(t)[1:-1] for t in labels[0]], fontsize="small")
        ax.set_yticks(range(rows), [repr(t)[1:-1] for t in labels[1][:rows]], fontsize="small")
    ax.set_title("attention weights, integer reference")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(plt, fig, title, path)
