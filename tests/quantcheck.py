"""An independent check of a quantized model against its float Keras model, layer by layer.

Bit-exactness (C == integer reference) says nothing about a quantizer bug that both share: with
every row's requantization 10 % too large, the C still equals the reference bit for bit and the
end-to-end tests' 10 %-of-span bound still passes. This module recomputes what each quantized
number must be from the Keras weights and the calibration data alone (it uses none of the
quantizer's functions; the integer arithmetic it runs is the reference's, which the C equals):

* per row of a layer's matrix: the row scale s = max |w * unit| / 127 of the float row over the
  layer's int16 vector (unit: the real value of one vector unit of each column); dequantized
  weights, q * eff with eff = out_unit * multiplier / 2**(shift_in + shift_out) the real value
  the C gives one unit of q, within half a step s / 2 of the float weights (plus what the
  multiplier's rounding adds); the row's largest weight at +-127; the dequantized bias within
  half a step; the multiplier equal to s / out_unit * 2**(shift_in + shift_out) within the 0.5
  of its rounding;
* activation ranges: the model input's and every calibrated output's int8 range covers the
  float values on the calibration data and is no wider than their min-max range (minmax
  calibration); an LSTM cell's integer bits cover its float cell values, with none to spare;
* per layer, on every calibration step: the layer's integer pre-activations (its requantized
  rows) and its integer output, from its float input and state quantized into its formats, one
  step of the integer reference against one step of the float Keras cell, within a bound
  propagated from the scales: each column's quantization error, each weight's and bias's half
  step, the requantization's roundings, then through the gates with their Lipschitz constants
  (sigmoid 1/4, tanh 1), the products, and the tables' error EPS_ACT, and the output's rounding.

``check(keras_model, qmodel, calib)`` returns the violations, one line each; [] when all hold.
Supported layers: Dense (linear, relu, sigmoid, tanh, softmax: its rows only), SimpleRNN, GRU
(both reset_after), LSTM, with the default activations, in a Sequential model whose recurrent
layers return sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn2c.export import fixedpoint as fx

#: the error of one table activation in the C (and the reference): linear interpolation of
#: tanh on a 1/32 grid (<= max|tanh''| / 8 / 32**2 = 9.4e-5), the table's and the result's
#: Q0.15 roundings (<= 2**-15), and the Q3.12 saturation at +-8 (sigmoid(8) = 1 - 3.4e-4)
EPS_ACT = 2.0**-11
#: the Q0.15 products of a cell (r * h, z * h, f * c, ...): one rounding of 2**-16 each, and a
#: few of them per output
EPS_PRODUCT = 2.0**-14
Q12 = 1.0 / 4096.0
#: where each kind of row saturates in Q3.12 units (the C's consumers saturate there too): gate
#: rows at 8.0; GRU reset_after candidate parts at 32.0 (input) and 16.0 (state); Dense rows
#: by activation (an int8 output: 256 output units; softmax: 32.0)
GATE_LIMIT, CAND_X_LIMIT, CAND_H_LIMIT = 8.0, 32.0, 16.0


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Rows:
    """A layer's matrix rows in real terms: w [rows, cols] per unit of each float input and state
    value, b [rows], and where each row saturates (real units)."""

    w: np.ndarray
    b: np.ndarray
    limit: np.ndarray
    gates: dict[str, slice] = field(default_factory=dict)


def keras_rows(layer: Any) -> Rows:
    """The rows the C's matrix holds, from the Keras weights alone, in the C's row order:
    Dense [units]; SimpleRNN [units]; LSTM i | f | g | o; GRU z | r | candidate, with
    reset_after=True the candidate split into its input part and its state part (r scales the
    latter), each zero on the other side."""
    kind = type(layer).__name__
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    if kind == "Dense":
        act = layer.get_config()["activation"]
        lim = {"linear": np.inf, "relu": np.inf, "softmax": 32.0}.get(act, GATE_LIMIT)
        k, b = weights[0], weights[1]
        return Rows(k.T, b, np.full(k.shape[1], lim), {"y": slice(0, k.shape[1])})
    k, r = weights[0], weights[1]
    u = r.shape[0]
    w = np.concatenate([k.T, r.T], axis=1)
    if kind == "SimpleRNN":
        return Rows(w, weights[2], np.full(u, GATE_LIMIT), {"n": slice(0, u)})
    if kind == "LSTM":
        names = ("i", "f", "g", "o")
        return Rows(
            w,
            weights[2],
            np.full(4 * u, GATE_LIMIT),
            {g: slice(j * u, (j + 1) * u) for j, g in enumerate(names)},
        )
    assert kind == "GRU", kind
    gates = {"z": slice(0, u), "r": slice(u, 2 * u), "n": slice(2 * u, 3 * u)}
    if not layer.reset_after:
        return Rows(w, weights[2], np.full(3 * u, GATE_LIMIT), gates)
    b_in, b_rec = weights[2]
    f = k.shape[0]
    nx = np.concatenate([k.T[2 * u :], np.zeros((u, u))], axis=1)
    nh = np.concatenate([np.zeros((u, f)), r.T[2 * u :]], axis=1)
    limit = np.repeat([GATE_LIMIT, GATE_LIMIT, CAND_X_LIMIT, CAND_H_LIMIT], u)
    return Rows(
        np.concatenate([w[: 2 * u], nx, nh]),
        np.concatenate([(b_in + b_rec)[: 2 * u], b_in[2 * u :], b_rec[2 * u :]]),
        limit,
        {**gates, "nh": slice(3 * u, 4 * u)},
    )


@dataclass
class Vector:
    """The layer's int16 vector: per column, the real value of one unit, the value that stands
    for a real 0, and the largest error of the column's value (half a step of its int format,
    plus the rounding of a right shift)."""

    unit: np.ndarray
    offset: np.ndarray
    error: np.ndarray


def _part(q: Any, n: int, shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = np.broadcast_to(np.asarray(q.scale, dtype=np.float64), (n,))
    zp = np.broadcast_to(np.asarray(q.zero_point, dtype=np.int64), (n,))
    unit = scale * 2.0**-shift
    err = scale / 2 + (unit / 2 if shift < 0 else 0.0)
    return unit, (zp << shift) if shift >= 0 else zp, err


def vector(layer: Any, in_q: Any) -> Vector:
    """The columns of a quantized layer's vector: its input (shifted by x_shift), then its state
    (by h_shift) for a recurrent layer."""
    xs = getattr(layer, "x_shift", 0)
    parts = [_part(in_q, layer.input_size, xs)]
    if hasattr(layer, "h_shift"):
        parts.append(_part(layer.output_q, layer.units, layer.h_shift))
    unit, off, err = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Vector(unit, off, err)


def out_unit(layer: Any) -> float:
    """The real value of one unit of the layer's requantized rows: Q3.12 for gate rows and the
    table activations, the output scale for a Dense linear or relu layer."""
    if layer.kind == "dense" and layer.activation in ("linear", "relu"):
        return float(layer.output_q.scale)
    return Q12


@dataclass
class RowScales:
    """Per row: the float scale s (max |w * unit| / 127), the C's eff (the real value of one
    unit of q), the bound of |eff - s| the multiplier's rounding allows, and 2**shift_in."""

    s: np.ndarray
    eff: np.ndarray
    d_eff: np.ndarray
    pow_in: np.ndarray


def row_scales(rows: Rows, layer: Any, vec: Vector) -> RowScales:
    fc = layer.fc
    ou = out_unit(layer)
    w_real = rows.w * vec.unit[None, :]
    s = np.abs(w_real).max(axis=1) / 127.0
    pow_sh = 2.0 ** (fc.shift_in.astype(np.float64) + fc.shift_out.astype(np.float64))
    eff = ou * fc.multiplier.astype(np.float64) / pow_sh
    return RowScales(s, eff, 0.5 * ou / pow_sh, 2.0 ** fc.shift_in.astype(np.float64))


def param_violations(name: str, rows: Rows, layer: Any, vec: Vector) -> list[str]:
    """Weights, biases and requantization multipliers of one layer against its float rows."""
    out: list[str] = []
    fc = layer.fc
    if fc.weight.shape != rows.w.shape:
        return [f"{name}: matrix {fc.weight.shape}, the float rows are {rows.w.shape}"]
    sc = row_scales(rows, layer, vec)
    live = sc.s > 0
    q = fc.weight.astype(np.float64)
    w_real = rows.w * vec.unit[None, :]
    tiny = 1e-9 * np.maximum(sc.s, 1e-30)
    # the multiplier: s / out_unit * 2**(shift_in + shift_out), rounded to the nearest integer
    want_m = sc.s / out_unit(layer) * 2.0 ** (fc.shift_in.astype(np.float64) + fc.shift_out)
    bad = live & (np.abs(fc.multiplier - want_m) > 0.5 + 1e-6 * want_m)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        out.append(
            f"{name}: row {r}: multiplier {int(fc.multiplier[r])} for a real ratio of "
            f"{want_m[r]:.2f} (scale {sc.s[r]:.4g} / out unit {out_unit(layer):.4g}, shifts "
            f"{int(fc.shift_in[r])}+{int(fc.shift_out[r])}): off by more than its rounding"
        )
    # weights: within half a step of the row's scale, plus what the multiplier's rounding adds
    err = np.abs(q * sc.eff[:, None] - w_real)
    bound = sc.s[:, None] / 2 + np.abs(q) * sc.d_eff[:, None] + tiny[:, None]
    bad = err > bound
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        out.append(
            f"{name}: weight [{r}, {c}] dequantizes to {q[r, c] * sc.eff[r] / vec.unit[c]:.6g}, "
            f"float {rows.w[r, c]:.6g}: more than half a step ({bound[r, c] / vec.unit[c]:.3g}) "
            f"apart ({int(np.sum(bad))} weights)"
        )
    peak = np.abs(q).max(axis=1)
    if (live & (peak != 127)).any():
        r = int(np.flatnonzero(live & (peak != 127))[0])
        out.append(f"{name}: row {r}: largest |weight| {int(peak[r])}, not 127 (its scale)")
    # bias: stored as round(b / s) - q . offset + 2**(shift_in - 1) (the rounding of >> shift_in)
    rnd = np.where(fc.shift_in > 0, sc.pow_in / 2, 0.0)
    b_q = fc.bias.astype(np.float64) - rnd + q @ vec.offset.astype(np.float64)
    err = np.abs(b_q * sc.eff - rows.b)
    bound = sc.eff / 2 + np.abs(rows.b) / np.maximum(sc.s, 1e-30) * sc.d_eff + 1e-9
    bad = live & (err > bound)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        out.append(
            f"{name}: bias [{r}] dequantizes to {b_q[r] * sc.eff[r]:.6g}, float "
            f"{rows.b[r]:.6g}: more than half a step ({bound[r]:.3g}) apart"
        )
    return out


def range_violations(name: str, q: Any, values: np.ndarray) -> list[str]:
    """An int8 range [(-128 - zp) * scale, (127 - zp) * scale] (per feature if the scale is an
    array) against float calibration values [M, F]: it covers them (to half a step: the zero
    point is rounded), and is no wider than their min-max range with 0 (minmax calibration; the
    quantizer saw the same values through another float64 evaluation: 1e-6 for its round-off)."""
    out = []
    v = np.asarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
    scale = np.broadcast_to(np.asarray(q.scale, dtype=np.float64), v.shape[1:])
    zp = np.broadcast_to(np.asarray(q.zero_point, dtype=np.float64), v.shape[1:])
    per_feature = np.ndim(q.scale) > 0
    lo = np.minimum(v.min(axis=0), 0.0) if per_feature else np.full(scale.shape, min(v.min(), 0.0))
    hi = np.maximum(v.max(axis=0), 0.0) if per_feature else np.full(scale.shape, max(v.max(), 0.0))
    bottom, top = (-128 - zp) * scale, (127 - zp) * scale
    slack = scale / 2 * (1 + 1e-6)
    for f in range(scale.size):
        if bottom[f] > lo[f] + slack[f] or top[f] < hi[f] - slack[f]:
            out.append(
                f"{name}: range [{bottom[f]:.5g}, {top[f]:.5g}] (feature {f}) does not cover the "
                f"calibration values [{lo[f]:.5g}, {hi[f]:.5g}]"
            )
        if scale[f] > (hi[f] - lo[f]) / 255 * (1 + 1e-6) + 1e-12:  # float64 round-off
            out.append(
                f"{name}: scale {scale[f]:.6g} (feature {f}) is wider than the calibration "
                f"values' range needs ({(hi[f] - lo[f]) / 255:.6g})"
            )
    return out


# ---------------------------------------------------------------- one step, float and integer


def float_step(layer: Any, rows: Rows, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> dict:
    """One step of the Keras cell (from its weights; checked against Keras by check()): the
    rows' pre-activations ``pre`` (a GRU with reset_after=False: its candidate rows over
    [x; r * h]), the gates, the output ``y`` and an LSTM's cell ``c``."""
    g = rows.gates
    pre = np.concatenate([x, h], axis=1) @ rows.w.T + rows.b
    kind = type(layer).__name__
    if kind == "Dense":
        act = layer.get_config()["activation"]
        y = pre
        if act == "relu":
            y = np.maximum(pre, 0.0)
        elif act == "sigmoid":
            y = sigmoid(pre)
        elif act == "tanh":
            y = np.tanh(pre)
        elif act == "softmax":
            e = np.exp(pre - pre.max(axis=1, keepdims=True))
            y = e / e.sum(axis=1, keepdims=True)
        return {"pre": pre, "y": y}
    if kind == "SimpleRNN":
        return {"pre": pre, "y": np.tanh(pre)}
    if kind == "LSTM":
        i, f, o = sigmoid(pre[:, g["i"]]), sigmoid(pre[:, g["f"]]), sigmoid(pre[:, g["o"]])
        cand = np.tanh(pre[:, g["g"]])
        c_new = f * c + i * cand
        return {"pre": pre, "i": i, "f": f, "o": o, "g": cand, "c": c_new, "y": o * np.tanh(c_new)}
    z, r = sigmoid(pre[:, g["z"]]), sigmoid(pre[:, g["r"]])
    if "nh" in g:  # reset_after=True: r scales the candidate's state part
        n = np.tanh(pre[:, g["n"]] + r * pre[:, g["nh"]])
    else:
        pre[:, g["n"]] = np.concatenate([x, r * h], axis=1) @ rows.w[g["n"]].T + rows.b[g["n"]]
        n = np.tanh(pre[:, g["n"]])
    return {"pre": pre, "z": z, "r": r, "n": n, "rh": r * h, "y": z * h + (1 - z) * n}


def quantize(q: Any, u: np.ndarray) -> np.ndarray:
    """Float values into an activation format: round to the nearest step, saturate."""
    scale = np.asarray(q.scale, dtype=np.float64)
    top = (1 << (q.bits - 1)) - 1
    return np.clip(np.round(u / scale) + q.zero_point, -top - 1, top).astype(np.int64)


def int_step(layer: Any, in_q: Any, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> dict:
    """One step of the integer reference (which the C equals bit for bit) from the float input
    and state quantized into the layer's formats: the vector ``v`` the rows read, their
    requantized results ``pre`` (out units; a GRU with reset_after=False: its candidate rows
    over [x; r * h] as the C computes r * h), and the output ``y``, dequantized."""
    xq = quantize(in_q, x)
    if layer.kind == "dense":
        y = layer.step({}, xq)
        return {"v": xq, "pre": layer.fc.matvec(xq), "y": layer.output_q.dequantize(y)}
    state = {"h": quantize(layer.output_q, h)}
    if layer.kind == "lstm":
        state["c"] = np.clip(np.round(c * 2.0**layer.cell_frac_bits), -32768, 32767)
    v = layer.vector(xq, state["h"])
    pre = layer.fc.matvec(v)
    out = {"v": v, "pre": pre, "hq": state["h"]}
    if layer.kind == "gru" and not layer.reset_after:
        u = layer.units
        r = fx.sigmoid_q15(pre[:, u : 2 * u])
        rh = fx.sat(fx.rshift_round(r * state["h"], 15), layer.state_bits)
        v_n = layer.vector(xq, rh)
        pre[:, 2 * u :] = layer.fc.matvec(v_n, slice(2 * u, 3 * u))
        out["v_n"] = v_n
    if layer.kind == "lstm":
        out["cq"] = state["c"]
    out["y"] = layer.output_q.dequantize(layer.step(state, xq))
    return out


# ---------------------------------------------------------------- the bounds


def pre_bound(
    rows: Rows, sel: slice, layer: Any, vec: Vector, u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """|requantized rows * out_unit - float pre-activation| <= this, per sample and row of
    ``sel``: u the float values of the vector's columns, v the vector the rows read."""
    sc = row_scales(rows, layer, vec)
    s, eff, d_eff = sc.s[sel], sc.eff[sel], sc.d_eff[sel]
    q = np.abs(layer.fc.weight[sel].astype(np.float64))
    dv = np.abs(v - vec.offset[None, :]).astype(np.float64)
    e_cols = np.abs(vec.unit[None, :] * (v - vec.offset[None, :]) - u)  # each column's error
    inputs = e_cols @ np.abs(rows.w[sel]).T
    weights = s[None, :] / 2 * dv.sum(axis=1, keepdims=True) + (dv @ q.T) * d_eff[None, :]
    bias = eff / 2 + np.abs(rows.b[sel]) / np.maximum(s, 1e-30) * d_eff
    shift_in = layer.fc.shift_in[sel]
    rq = np.where(shift_in > 0, sc.pow_in[sel] / 2 * eff, 0.0) + out_unit(layer) / 2
    return inputs + weights + (bias + rq)[None, :]


def _exceeds(name: str, what: str, err: np.ndarray, bound: np.ndarray) -> list[str]:
    bad = err > bound * (1 + 1e-9) + 1e-12
    if not bad.any():
        return []
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    return [
        f"{name}: {what}: |int - float| {err[worst]:.5g} > its bound {bound[worst]:.5g} "
        f"({int(bad.sum())} of {bad.size} values)"
    ]


def step_violations(
    name: str,
    rows: Rows,
    layer: Any,
    vec: Vector,
    fl: dict,
    it: dict,
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> list[str]:
    """One step of one layer: its requantized rows, then its output, against the float cell;
    state: the float input, state and (LSTM) cell the step started from."""
    x, h, c = state
    g, ou = rows.gates, out_unit(layer)
    limit = np.where(np.isinf(rows.limit), 256 * ou, rows.limit)
    u = np.concatenate([x, h], axis=1)
    delta = pre_bound(rows, slice(None), layer, vec, u, it["v"])
    if "v_n" in it:  # GRU reset_after=False: the candidate rows read [x; r * h]
        u_n = np.concatenate([x, fl["rh"]], axis=1)
        delta[:, g["n"]] = pre_bound(rows, g["n"], layer, vec, u_n, it["v_n"])
    got = np.clip(it["pre"] * ou, -limit, limit)
    out = _exceeds(name, "requantized rows", np.abs(got - np.clip(fl["pre"], -limit, limit)), delta)
    d = {k: delta[:, sl] for k, sl in g.items()}
    e_out = float(layer.output_q.scale)
    if layer.kind == "dense":
        act = layer.activation
        if act == "softmax":
            return out  # its rows only
        lip, extra = {
            "linear": (1.0, 0.0),
            "relu": (1.0, 0.0),
            "sigmoid": (0.25, EPS_ACT),
            "tanh": (1.0, EPS_ACT),
        }[act]
        bound = lip * d["y"] + extra + e_out
    elif layer.kind == "rnn":
        bound = d["n"] + EPS_ACT + e_out
    elif layer.kind == "lstm":
        bound = _lstm_bound(layer, fl, it, d, c, e_out)
    else:
        bound = _gru_bound(layer, fl, it, d, h, e_out)
    return out + _exceeds(name, "output", np.abs(it["y"] - fl["y"]), bound)


def _lstm_bound(
    layer: Any, fl: dict, it: dict, d: dict, c_prev: np.ndarray, e_out: float
) -> np.ndarray:
    ei, ef, eo = (d[k] / 4 + EPS_ACT for k in ("i", "f", "o"))
    eg = d["g"] + EPS_ACT
    frac = layer.cell_frac_bits
    e_c = np.abs(it["cq"] * 2.0**-frac - c_prev)
    e_cell = (
        np.abs(c_prev) * ef
        + fl["f"] * e_c
        + ef * e_c
        + np.abs(fl["g"]) * ei
        + fl["i"] * eg
        + ei * eg
        + 2.0**-frac  # the two products' roundings
    )
    e_tanh = e_cell + EPS_ACT + (2.0**-13 if frac > 12 else 0.0)
    t = np.abs(np.tanh(fl["c"]))
    return t * eo + fl["o"] * e_tanh + eo * e_tanh + e_out


def _gru_bound(layer: Any, fl: dict, it: dict, d: dict, h: np.ndarray, e_out: float) -> np.ndarray:
    ez, er = d["z"] / 4 + EPS_ACT, d["r"] / 4 + EPS_ACT
    if layer.reset_after:
        pnh = fl["pre"][:, 3 * layer.units :]
        over = np.maximum(np.abs(pnh) - CAND_H_LIMIT, 0.0)  # the state part saturates at 16
        e_rec = fl["r"] * d["nh"] + np.abs(pnh) * er + er * d["nh"] + fl["r"] * over + Q12 / 2
        en = d["n"] + e_rec + EPS_ACT
    else:
        en = d["n"] + EPS_ACT
    e_h = np.abs(layer.output_q.dequantize(it["hq"]) - h)
    z = fl["z"]
    return np.abs(h - fl["n"]) * ez + (1 - z) * en + z * e_h + ez * (en + e_h) + EPS_PRODUCT + e_out


# ---------------------------------------------------------------- the whole model


KINDS = ("Dense", "SimpleRNN", "LSTM", "GRU")


def check(keras_model: Any, qmodel: Any, calib: np.ndarray) -> list[str]:
    """Every check of the module doc on a Sequential Keras model and its quantized model, over
    the calibration sequences [N, T, F] (minmax calibration, no lengths); [] if all hold."""
    import keras  # noqa: PLC0415

    layers = [ly for ly in keras_model.layers if type(ly).__name__ in KINDS]
    if len(layers) != len(qmodel.layers):
        return [f"{len(qmodel.layers)} quantized layers for {len(layers)} Keras layers"]
    probe = keras.Model(keras_model.inputs, [ly.output for ly in layers])
    keras_out = [np.asarray(y) for y in probe([calib.astype(np.float32)], training=False)]
    x_seq = np.asarray(calib, dtype=np.float64)
    in_q = qmodel.input_q
    out = range_violations("input", in_q, x_seq.reshape(-1, x_seq.shape[-1]))
    for kl, ql, want in zip(layers, qmodel.layers, keras_out, strict=True):
        name = f"layer '{ql.name}'"
        rows, vec = keras_rows(kl), vector(ql, in_q)
        out += param_violations(name, rows, ql, vec)
        n, t = x_seq.shape[:2]
        units = getattr(ql, "units", 0) if ql.kind != "dense" else 0
        h, c = np.zeros((n, units)), np.zeros((n, units))
        ys, cells = [], []
        for step in range(t):
            x = x_seq[:, step]
            fl = float_step(kl, rows, x, h, c)
            it = int_step(ql, in_q, x, h, c)
            out += step_violations(f"{name} step {step}", rows, ql, vec, fl, it, (x, h, c))
            ys.append(fl["y"])
            if ql.kind != "dense":
                h = fl["y"]
            if "c" in fl:
                c = fl["c"]
                cells.append(c)
        y_seq = np.stack(ys, axis=1)
        np.testing.assert_allclose(y_seq, want, atol=2e-5, err_msg=f"{name}: the float cell")
        if ql.kind == "dense" and ql.activation in ("linear", "relu"):
            out += range_violations(f"{name} output", ql.output_q, y_seq.reshape(-1, 1))
        if cells:
            peak, int_bits = float(np.abs(np.stack(cells)).max()), 15 - ql.cell_frac_bits
            if peak >= 2.0**int_bits or (int_bits > 0 and peak < 2.0 ** (int_bits - 1)):
                out.append(
                    f"{name}: cell of {int_bits} integer bits for float cells up to {peak:.4g}"
                )
        in_q, x_seq = ql.output_q, y_seq
    return out
