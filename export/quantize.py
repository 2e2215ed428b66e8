"""Post-training quantization: calibration ranges and the int8 weight-matrix rule.

Weights are int8, symmetric, one scale per output row (per gate row). Each matrix-vector product
accumulates in int32 from a bias that already holds the input zero point, and is requantized per
row with one Q31 multiplier and a shift into the format its consumer needs (Q3.12 for gate
pre-activations, the output scale for Dense layers).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from rnn2c.export.fixedpoint import INT32_MAX, quantize_multiplier, requantize
from rnn2c.export.ir import (
    ACTIVATION_TYPES,
    ActQuant,
    ExportError,
    ModelIR,
    Observer,
    QuantModel,
    fold_affine,
)

#: calibration range methods accepted by --calibration
CALIBRATION_METHODS = ("minmax", "percentile", "mse")
#: model input quantization accepted by --input-quant
INPUT_QUANT = ("per-tensor", "per-feature")
PERCENTILE = 99.99


@dataclass
class QuantFC:
    """An int8 weight matrix with per-row bias, multiplier and shift (see rnn2c_fc_s8_t)."""

    weight: np.ndarray  # int8 [rows, cols]
    bias: np.ndarray  # int32 [rows], input zero point folded in
    multiplier: np.ndarray  # int32 [rows]
    shift: np.ndarray  # int8 [rows]

    @property
    def rows(self) -> int:
        return int(self.weight.shape[0])

    @property
    def cols(self) -> int:
        return int(self.weight.shape[1])

    def worst_case_acc(self, input_bits: int = 8) -> int:
        """Largest |accumulator| any input can produce: |bias| + max|x| * sum |w|."""
        return worst_case_acc(self.weight, self.bias, input_bits)

    def matvec(self, x: np.ndarray, begin: int = 0, end: int | None = None) -> np.ndarray:
        """Mirror of rnn2c_fc_s8 for rows [begin, end) on a batch x [B, cols]."""
        rows = slice(begin, self.rows if end is None else end)
        w = self.weight[rows].astype(np.int64)
        acc = np.asarray(x, dtype=np.int64) @ w.T + self.bias[rows].astype(np.int64)
        return requantize(acc, self.multiplier[rows], self.shift[rows])


def worst_case_acc(weight: np.ndarray, bias: np.ndarray, input_bits: int) -> int:
    """max over rows of |bias| + max|x| * sum |w|: no partial sum of the row can exceed it."""
    w = np.abs(np.asarray(weight, dtype=np.int64)).sum(axis=1)
    peak = 1 << (input_bits - 1)
    return int((np.abs(np.asarray(bias, dtype=np.int64)) + peak * w).max(initial=0))


def quantize_fc(
    kernel: np.ndarray,
    bias: np.ndarray | None,
    input_q: ActQuant,
    out_scale: float,
    where: str,
) -> QuantFC:
    """Quantize a Keras kernel [in, out] (and bias [out]) acting on input_q-quantized vectors.

    out_scale is the real value of one unit of the requantized result. ``where`` names the
    layer and matrix in errors.
    """
    # A per-feature input scale is folded into the kernel's columns (for a scalar scale this gives
    # exactly the same int8 weights), so the accumulator scale is the per-row weight scale.
    w = (np.asarray(kernel, dtype=np.float64) * np.reshape(input_q.scale, (-1, 1))).T
    rows, cols = w.shape
    if cols > 0xFFFF or rows > 0xFFFF:
        raise ExportError(
            f"{where}: {rows}x{cols} matrix is larger than the 65535 rows/cols supported"
        )
    peak = np.abs(w).max(axis=1)
    w_scale = np.where(peak > 0, peak / 127.0, 1.0 / 127.0)
    wq = np.clip(np.round(w / w_scale[:, None]), -127, 127).astype(np.int64)
    acc_scale = w_scale
    b = np.zeros(rows) if bias is None else np.asarray(bias, dtype=np.float64)
    zero_points = np.broadcast_to(np.asarray(input_q.zero_point, dtype=np.int64), (cols,))
    bias_q = np.round(b / acc_scale).astype(np.int64) - wq @ zero_points
    # Overflow guard (see rnn2c_runtime.h): no input can push an accumulator past int32. It also
    # bounds |bias_q|, so the bias fits its int32 array.
    worst = worst_case_acc(wq, bias_q, input_q.bits)
    if worst > INT32_MAX:
        raise ExportError(
            f"{where}: worst-case int32 accumulator {worst} exceeds 2^31-1 "
            f"({cols} int{input_q.bits} inputs); reduce the layer width or the bias magnitude"
        )
    fc = QuantFC(
        weight=wq.astype(np.int8),
        bias=bias_q.astype(np.int32),
        multiplier=np.zeros(rows, dtype=np.int32),
        shift=np.ones(rows, dtype=np.int8),
    )
    for r in range(rows):
        try:
            m, s = quantize_multiplier(float(acc_scale[r] / out_scale))
        except ValueError as e:
            raise ExportError(f"{where}: row {r}: {e}") from None
        fc.multiplier[r] = m
        fc.shift[r] = s
    return fc


def choose_range(values: np.ndarray, method: str) -> tuple[float, float]:
    """The float range to quantize a tensor to, from its calibration values."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return 0.0, 0.0
    lo, hi = float(v.min()), float(v.max())
    if method == "minmax":
        return lo, hi
    if method == "percentile":
        return float(np.percentile(v, 100 - PERCENTILE)), float(np.percentile(v, PERCENTILE))
    if method == "mse":
        return _mse_range(v, lo, hi)
    raise ExportError(f"unknown calibration method {method!r}; use one of {CALIBRATION_METHODS}")


def _mse_range(v: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Shrink [lo, hi] by a common factor to minimise the int8 quantization MSE of v."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return lo, hi
    sample = v if v.size <= 200_000 else np.random.default_rng(0).choice(v, 200_000)
    best, best_err = (lo, hi), np.inf
    for frac in np.linspace(0.3, 1.0, 36):
        q = act_quant_from_range(lo * frac, hi * frac)
        err = float(np.mean((q.dequantize(q.quantize(sample)) - sample) ** 2))
        if err < best_err:
            best, best_err = (lo * frac, hi * frac), err
    return best


def act_quant_from_range(lo: float, hi: float) -> ActQuant:
    """Asymmetric int8 quantization covering [lo, hi] and 0 (so zero padding is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return ActQuant(scale, zero_point)


def observe_model(
    model: ModelIR, x: np.ndarray, lengths: np.ndarray | None = None, obs: Observer | None = None
) -> tuple[np.ndarray, Observer]:
    """Run the float IR over [N, T, F] sequences step by step, recording every tensor.

    Returns the outputs at every step [N, T, out] (zeros past each sequence's length) and the
    observer. Steps past a sequence's real length are not recorded.
    """
    obs = obs or Observer()
    n, t, _ = x.shape
    lengths = np.full(n, t) if lengths is None else np.asarray(lengths)
    states = [layer.init_state(n) for layer in model.layers]
    out = np.zeros((n, t, model.output_size))
    for step in range(t):
        running = lengths > step
        if not running.any():
            break
        obs.mask = running
        h = np.asarray(x[:, step, :], dtype=np.float64)
        obs.prefix = ""
        obs.observe("input", h)
        for i, (layer, state) in enumerate(zip(model.layers, states, strict=True)):
            obs.prefix = f"{i}."
            h = layer.step(state, h, obs)
        out[:, step, :] = np.where(running[:, None], h, 0.0)
    obs.mask = None
    obs.prefix = ""
    return out, obs


def quantize_model(
    model: ModelIR,
    calib_x: np.ndarray,
    calib_lengths: np.ndarray | None,
    method: str = "minmax",
    activations: str = "int8",
    input_quant: str = "per-tensor",
) -> QuantModel:
    """Quantize a float IR with a calibration set [N, T, F].

    activations: "int8" (int8 hidden states) or "int16" (int16 hidden states, int8 weights).
    input_quant: "per-tensor" (one input scale, the default C API) or "per-feature" (one scale
    and zero point per input feature, for features of very different ranges).
    """
    if input_quant not in INPUT_QUANT:
        raise ExportError(
            f"unknown input quantization {input_quant!r}; use one of {', '.join(INPUT_QUANT)}"
        )
    if method not in CALIBRATION_METHODS:
        raise ExportError(
            f"unknown calibration method {method!r}; use one of {', '.join(CALIBRATION_METHODS)}"
        )
    if activations not in ACTIVATION_TYPES:
        raise ExportError(
            f"unknown activation type {activations!r}; use one of {', '.join(ACTIVATION_TYPES)}"
        )
    state_bits = 16 if activations == "int16" else 8
    _, obs = observe_model(model, calib_x, calib_lengths)
    real = real_steps(calib_x, calib_lengths)
    model, notes = _fold_constant_features(model, real)
    varying = real[:, ~np.isin(np.arange(real.shape[1]), _constant_features(real))]
    if input_quant == "per-feature":
        per = [
            act_quant_from_range(*choose_range(real[:, f], method)) for f in range(real.shape[1])
        ]
        input_q = ActQuant(
            np.array([q.scale for q in per]), np.array([q.zero_point for q in per], dtype=np.int64)
        )
    elif varying.shape[1] < real.shape[1]:  # the constant features need no input range
        input_q = act_quant_from_range(*choose_range(varying, method))
    else:
        input_q = act_quant_from_range(*choose_range(obs.get("input"), method))
    q = input_q
    layers = []
    for i, layer in enumerate(model.layers):
        sub = _SubObserver(obs, f"{i}.")
        ql = layer.quantize(q, sub, method, state_bits)  # type: ignore[arg-type]
        layers.append(ql)
        q = ql.output_q
    return QuantModel(
        layers=layers,
        input_q=input_q,
        input_size=model.input_size,
        calibration=method,
        source=model.source,
        activations=activations,
        input_quant=input_quant,
        notes=notes,
    )


def real_steps(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """The real (unpadded) steps of [N, T, F] sequences as rows [M, F]."""
    if lengths is None:
        return x.reshape(-1, x.shape[-1])
    steps = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return x[steps]


def _constant_features(real: np.ndarray) -> np.ndarray:
    return np.nonzero(real.min(axis=0) == real.max(axis=0))[0]


def _fold_constant_features(model: ModelIR, real: np.ndarray) -> tuple[ModelIR, list[str]]:
    """A feature that never changes over the calibration set carries no information. Left in,
    its (often Normalization-amplified) weights would set the first layer's weight scales and
    its value the input range, wiping out every other feature. Its contribution, value times
    weights, is folded into the first layer's bias and its weights become zero; the C then
    ignores that input. Returns a copy of the model and a note for the user."""
    const = _constant_features(real)
    if const.size == 0:
        return model, []
    if const.size == real.shape[1]:
        raise ExportError(
            "every input feature is constant over the calibration set; give calibration "
            "sequences that vary (the model's output cannot depend on a constant input)"
        )
    model = copy.deepcopy(model)
    first = model.layers[0]
    a = np.ones(real.shape[1])
    b = np.zeros(real.shape[1])
    a[const] = 0.0
    b[const] = real[0, const]
    fold_affine(first, a, b)
    values = ", ".join(f"{int(f)} (= {real[0, f]:g})" for f in const[:8])
    more = f" and {const.size - 8} more" if const.size > 8 else ""
    plural = const.size > 1
    note = (
        f"input feature{'s' if plural else ''} {values}{more} never change{'' if plural else 's'} "
        "over the calibration set: no information, so the value is folded into the first "
        f"layer's bias and the C ignores {'these inputs' if plural else 'that input'}"
    )
    return model, [note]


class _SubObserver:
    """A view of an Observer restricted to one layer's keys."""

    def __init__(self, obs: Observer, prefix: str) -> None:
        self.obs = obs
        self.prefix = prefix

    def get(self, key: str) -> np.ndarray:
        return self.obs.get(self.prefix + key)
