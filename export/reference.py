"""The NumPy integer reference: runs a QuantModel exactly as the generated C does."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import QuantModel, gather
from rnn2c.export.layers.bidirectional import run_layers


def run_int(
    qmodel: QuantModel,
    xq: np.ndarray,
    lengths: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Stream int8 sequences [N, T, F] through the integer model.

    Returns the int8 output after every step [N, T, out]; steps past a sequence's length are 0.
    Equivalent to reset() then step() once per sample for each sequence. A whole-sequence model
    (Bidirectional, go_backwards) runs as <name>_run does, layer by layer over each sequence:
    every step's output when it returns sequences, else its one output in the last real row.
    progress: called with the steps done (of T, the sequences side by side) after each step of
    a streaming model.
    """
    xq = np.asarray(xq)
    n, t, _ = xq.shape
    lengths = np.full(n, t) if lengths is None else np.asarray(lengths)
    if qmodel.whole_sequence:
        narrow = qmodel.layers[-1].output_q.bits == 16
        x64 = xq.astype(np.int64)
        y = run_layers(qmodel.layers, qmodel.sequence_out, x64, lengths, None, narrow)
        return y.astype(np.int8)
    states = [layer.init_state(n) for layer in qmodel.layers]
    out = np.zeros((n, t, qmodel.output_size), dtype=np.int8)
    held = np.zeros((n, qmodel.output_size), dtype=np.int64)  # the output of a step without one
    for step in range(t):
        running = lengths > step
        if not running.any():
            break
        h = xq[:, step, :].astype(np.int64)
        x_step, outs = h, []
        for i, (layer, state) in enumerate(zip(qmodel.layers, states, strict=True)):
            if qmodel.inputs:  # a graph: each layer reads its producers (graph.py)
                h = gather(qmodel.inputs[i], outs, x_step, qmodel.input_sizes)
            h = layer.step(state, h)
            outs.append(h)
            if h is None:  # a strided Conv1D or pooling gave no output: the last one is held
                break
        if h is not None:
            if qmodel.layers[-1].output_q.bits == 16:  # an int16 last state leaves as int8 Q0.7
                h = fx.q15_to_state(h)
            held = h
        out[:, step, :] = np.where(running[:, None], held, 0).astype(np.int8)
        if progress is not None:
            progress(step + 1)
    return out


def last_step(y: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """y [N, T, out] -> the output at each sequence's last real step [N, out]."""
    n, t = y.shape[:2]
    idx = np.full(n, t - 1) if lengths is None else np.asarray(lengths) - 1
    return y[np.arange(n), idx]
