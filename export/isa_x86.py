"""The x86 side of the generated C: a GRU (reset_after) or LSTM layer's x86 copy of its
weights (rnn2c_x86.h's "units across lanes" kernels read it), which the renderer asks for through
rnn2c.export.isa and writes with this module's template fragment, layers/_isa_x86.c.j2, under
``#if defined(RNN2C_ISA_X86)``: a build for another target compiles none of it."""

from __future__ import annotations

import numpy as np

from rnn2c.export.ir import QuantLayer
from rnn2c.export.quant_rules import pad4

#: the template fragment that writes a layer's x86 copy (a macro ``data(L, d)``)
TEMPLATE = "layers/_isa_x86.c.j2"


def layer_data(layer: QuantLayer, input_bits: int) -> dict[str, np.ndarray] | None:
    """The arrays of a layer's x86 copy (x86_arrays), or None for a layer without one (int4
    weights: the shared layout's portable kernels)."""
    if getattr(layer, "weight_bits", 8) == 4:
        return None
    return x86_arrays(layer, input_bits)


#: units per block of the x86 layout (one AVX-512 register of int32 lanes, two AVX2 ones)
X86_BLOCK = 16


def x86_arrays(layer: QuantLayer, input_bits: int = 16) -> dict[str, np.ndarray] | None:
    """The x86 copy of a GRU (reset_after) or LSTM layer's weights and row parameters, which
    the generated C compiles where rnn2c_x86.h is in use only (no Cortex-M flash): units across
    vector lanes, so that one multiply-accumulate instruction serves 16 (8) units of one gate
    and no row needs a horizontal sum. None for the other layers, which keep the shared layout
    on x86 too.

    ``w`` (int16): per block of 16 units, per pair of vector elements (2k, 2k + 1) as the AVX2
    vector stores them (columns (c0, c2) and (c1, c3) of every group of 4, see RNN2C_VPOS), per
    gate of the part the pair is in (GRU: z, r, candidate over x, then z, r, recurrent candidate
    over h; LSTM: i, f, g, o), 16 x (weight of the first column, of the second); units past the
    layer's last are zero. ``p`` (int32): per block, for each of the 4 row kinds in that order,
    16 biases, then 16 multipliers, 16 shift_in, 16 shift_out and 16 rounding terms
    2^(shift_out - 1) (rnn2c_rq's fields, decoded).

    Where the layer's input and state are both int8, also ``b`` and ``q`` for AVX-512 VNNI
    (``vpdpbusd``: unsigned bytes times signed bytes, 4 per lane): the kernels multiply the int8
    input and state themselves, offset by 128 to make them unsigned, and shift each part's sums
    by its vector shift. ``b`` (int8): per block, per group of 4 columns (in column order), per
    gate of the part, 16 x (the 4 weights); ``q``: as ``p`` with each bias less
    128 * sum(w) << shift over each part (the offset's products), wrapped to 32 bits like the
    sums it is added to (the true total fits: the exporter's bound)."""
    kind = getattr(layer, "kind", "")
    if not (kind == "lstm" or (kind == "gru" and getattr(layer, "reset_after", False))):
        return None
    if getattr(layer, "acts", None) is not None:  # activation variants: their own kernels
        return None
    fc = layer.fc  # type: ignore[attr-defined]
    u = layer.units  # type: ignore[attr-defined]
    n_in = layer.input_size
    x4, h4 = pad4(n_in), pad4(u)
    w = np.asarray(fc.weight, dtype=np.int64)
    wv = np.zeros((w.shape[0], x4 + h4), dtype=np.int64)
    wv[:, :n_in] = w[:, :n_in]
    wv[:, x4 : x4 + u] = w[:, n_in:]
    # stored element p of the vector holds column p with bits 0 and 1 swapped (RNN2C_VPOS)
    pos = np.arange(x4 + h4)
    col = (pos & ~3) | ((pos & 1) << 1) | ((pos >> 1) & 1)
    gates_x, gates_h = ([0, 1, 2], [0, 1, 3]) if kind == "gru" else ([0, 1, 2, 3], [0, 1, 2, 3])
    blocks = -(-u // X86_BLOCK)
    out_w: list[np.ndarray] = []
    out_p: list[np.ndarray] = []
    fields = [
        fc.bias,
        fc.multiplier,
        fc.shift_in,
        fc.shift_out,
        np.left_shift(1, np.asarray(fc.shift_out, dtype=np.int64) - 1),
    ]
    for b in range(blocks):
        units = np.arange(b * X86_BLOCK, (b + 1) * X86_BLOCK)
        real = units < u
        for k in range((x4 + h4) // 2):
            for g in gates_x if 2 * k < x4 else gates_h:
                pair = np.zeros((X86_BLOCK, 2), dtype=np.int64)
                rows = g * u + units[real]
                pair[real] = wv[rows][:, col[2 * k : 2 * k + 2]]
                out_w.append(pair.reshape(-1))
        for i, f in enumerate(fields):
            for g in range(4):
                vals = np.full(X86_BLOCK, 1 if i >= 3 else 0, dtype=np.int64)  # unused lanes
                vals[real] = np.asarray(f, dtype=np.int64)[g * u + units[real]]
                out_p.append(vals)
    out = {
        "w": np.concatenate(out_w).astype(np.int16),
        "p": np.concatenate(out_p).astype(np.int32),
    }
    if input_bits != 8 or layer.state_bits != 8:  # type: ignore[attr-defined]
        return out
    xs, hs = layer.x_shift, layer.h_shift  # type: ignore[attr-defined]
    offset = 128 * ((wv[:, :x4].sum(axis=1) << max(xs, 0)) + (wv[:, x4:].sum(axis=1) << max(hs, 0)))
    bias = np.asarray(fc.bias, dtype=np.int64) - offset
    out_b: list[np.ndarray] = []
    out_q = np.concatenate(out_p).astype(np.int64).reshape(blocks, 5, 4, X86_BLOCK)
    for b in range(blocks):
        units = np.arange(b * X86_BLOCK, (b + 1) * X86_BLOCK)
        real = units < u
        for grp in range((x4 + h4) // 4):
            for g in gates_x if 4 * grp < x4 else gates_h:
                quad = np.zeros((X86_BLOCK, 4), dtype=np.int64)
                quad[real] = wv[g * u + units[real]][:, 4 * grp : 4 * grp + 4]
                out_b.append(quad.reshape(-1))
            # the bias part of this block's parameters
        for g in range(4):
            vals = np.zeros(X86_BLOCK, dtype=np.int64)
            vals[real] = bias[g * u + units[real]]
            out_q[b, 0, g] = vals
    out["b"] = np.concatenate(out_b).astype(np.int8)
    out["q"] = ((out_q.reshape(-1) + 2**31) % 2**32 - 2**31).astype(np.int32)
    return out
