"""LayerNormalization over the features of each step, in exact integer arithmetic (template
layers/layer_norm.c.j2, kernel rnn2c_lnorm_* in the runtime's "LayerNormalization" section).

The layer computes z = (x - mean) / sqrt(var + epsilon); its gamma and beta are an affine map
after it, folded by the reader into the next weight layer like BatchNormalization (so a weight
layer must follow). On the int8/int16 input q with zero point zp, over n features:

* d = q - zp, e = n d - sum(d) (= n (d - mean), exact in int32 for n <= 8192);
* k: the smallest shift (right for k > 0, left for k < 0) with n ((max |e| >> k) + 1)^2 < 2^30
  and E 2^-2k <= 2^30, where E = epsilon n^3 / scale^2 (a 15-bit mantissa and a power of two):
  e' = e >> k (rounded), S = sum e'^2 < 2^30, and var + epsilon in the same units is T = S + E 2^-2k
  < 2^31 (no 64-bit arithmetic);
* r = floor(sqrt(T)) (integer square root), z = e' sqrt(n) / r, as round(e' C / r) with
  C = round(sqrt(n) 2^F): an int16 output with F fractional bits (F = 12 up to 65 features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export import fixedpoint as fx
from rnn2c.export.ir import ActQuant, ExportError, FloatLayer, QuantLayer

KERAS_CLASSES = ("LayerNormalization",)
MAX_FEATURES = 8192  # n |d| <= 2^13 2^16 keeps e in int32


@dataclass
class LayerNormLayer(FloatLayer):
    kind: ClassVar[str] = "lnorm"
    epsilon: float

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    def step(self, state, x, obs=None):  # noqa: ANN001
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.epsilon)

    def quantize(self, input_q: ActQuant, obs, method: str, state_bits: int = 8) -> QuantLayerNorm:  # noqa: ANN001
        where = f"layer '{self.name}' (LayerNormalization)"
        if input_q.per_feature:
            raise ExportError(
                f"{where}: its input is quantized per feature; export with --input-quant "
                "per-tensor (one scale for the features it normalizes together)"
            )
        n = self.input_size
        frac = output_frac(n)
        e_real = self.epsilon * n**3 / float(input_q.scale) ** 2
        eps_m, eps_e = 0, 0
        if e_real > 0:
            eps_e = math.floor(math.log2(e_real)) - 14
            eps_m = round(e_real / 2.0**eps_e)
            if eps_m >= 1 << 15:
                eps_m, eps_e = eps_m >> 1, eps_e + 1
        if eps_e > 75:  # k_min <= 30
            raise ExportError(f"{where}: epsilon {self.epsilon:g} is too large for its input")
        eps_e = max(eps_e, -64)
        if eps_e == -64:
            eps_m = 0  # far below one unit of the variance: no effect
        return QuantLayerNorm(
            name=self.name,
            input_size=n,
            output_q=ActQuant(2.0**-frac, 0, 16),
            zero_point=int(input_q.zero_point),
            frac=frac,
            c=round(math.sqrt(n) * 2**frac),
            eps_m=int(eps_m),
            eps_e=int(eps_e),
        )


def output_frac(n: int) -> int:
    """Fractional bits of the int16 output: |z| <= sqrt(n - 1) must stay below 2^(15 - F)."""
    top = math.sqrt(max(n - 1, 1))
    return min(12, 14 - math.ceil(math.log2(top))) if top > 1 else 12


def read(layer: Any, input_size: int) -> LayerNormLayer:
    cfg = layer.get_config()
    where = f"layer '{layer.name}' (LayerNormalization)"
    axis = cfg.get("axis", -1)
    if axis not in (-1, 2, [-1], [2], (-1,), (2,)):
        raise ExportError(f"{where}: axis={axis} is not supported; normalize the feature axis (-1)")
    if cfg.get("rms_scaling"):
        raise ExportError(f"{where}: rms_scaling=True is not supported; use the default (False)")
    if input_size > MAX_FEATURES:
        raise ExportError(f"{where}: {input_size} features; at most {MAX_FEATURES} are supported")
    return LayerNormLayer(
        name=layer.name, input_size=input_size, epsilon=float(cfg.get("epsilon", 1e-3))
    )


def gamma_beta(layer: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The affine map after the normalization (folded into the next weight layer)."""
    gamma = getattr(layer, "gamma", None)
    beta = getattr(layer, "beta", None)
    g = np.ones(size) if gamma is None else np.asarray(gamma, dtype=np.float64).reshape(-1)
    b = np.zeros(size) if beta is None else np.asarray(beta, dtype=np.float64).reshape(-1)
    return g, b


def isqrt(t: np.ndarray) -> np.ndarray:
    """floor(sqrt(t)) of int64 values 0..2^31-1 (rnn2c_isqrt)."""
    t = np.asarray(t, dtype=np.int64)
    r = np.floor(np.sqrt(t.astype(np.float64))).astype(np.int64)
    r -= (r * r > t).astype(np.int64)
    r += ((r + 1) * (r + 1) <= t).astype(np.int64)
    return r


@dataclass
class QuantLayerNorm(QuantLayer):
    kind: ClassVar[str] = "lnorm"
    template: ClassVar[str] = "layer_norm.c.j2"
    zero_point: int = 0  # of the input
    frac: int = 12  # fractional bits of the int16 output
    c: int = 0  # round(sqrt(n) 2^frac)
    eps_m: int = 0  # epsilon n^3 / scale^2 = eps_m 2^eps_e
    eps_e: int = 0

    @property
    def output_size(self) -> int:
        return self.input_size

    @property
    def macs(self) -> int:
        return 0

    def scratch(self) -> tuple[int, int, int]:
        return (self.input_size, 0, 0)

    def raw_parameters(self) -> int:
        return 0

    def step(self, state, x):  # noqa: ANN001
        n = self.input_size
        d = np.asarray(x, dtype=np.int64) - self.zero_point
        e = n * d - d.sum(axis=1, keepdims=True)
        m = np.abs(e).max(axis=1)
        k = np.full(m.shape, self.k_min(), dtype=np.int64)
        while True:  # the smallest k >= k_min with n ((|e|max shifted by k) + 1)^2 < 2^30
            u = np.where(k >= 0, m >> np.maximum(k, 0), m << np.maximum(-k, 0)) + 1
            bad = (u > 32768) | (u * u >= (1 << 30) // n)
            if not bad.any():
                break
            k += bad
        kk = k[:, None]
        e = np.where(kk > 0, fx.rshift_round(e, np.maximum(kk, 1)), e << np.maximum(-kk, 0))
        sh = self.eps_e - 2 * k  # <= 15 by k_min
        eps = np.where(sh >= 0, self.eps_m << np.maximum(sh, 0), self.eps_m >> np.minimum(-sh, 16))
        r = isqrt((e * e).sum(axis=1) + eps)[:, None]  # < 2^30 + 2^30
        num = e * self.c
        q = (2 * np.abs(num) + r) // np.maximum(2 * r, 1)
        return fx.sat(np.where(r > 0, np.where(num < 0, -q, q), 0), 16)

    def k_min(self) -> int:
        """The smallest shift of e: the epsilon term eps_m 2^(eps_e - 2k) stays <= 2^30."""
        return max(-15, -((15 - self.eps_e) // 2)) if self.eps_m else -15
