"""Property-style: random model configurations, each exported, compiled and checked.

For every configuration: the compiled C equals the NumPy integer reference bit for bit at every
step (on random, extreme and alternating inputs), the float IR equals Keras, and the dequantized
int8 output stays close to Keras' float output.
"""

from __future__ import annotations

import platform

import numpy as np
import pytest

from models import build, random_config
from rnn2c.emulator import load_model
from rnn2c.emulator.build import DEFAULT_FLAGS
from rnn2c.export import export_model
from rnn2c.export.api import read_any
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import run_int

N_CONFIGS = 40
#: int8 output error bound, as a fraction of the float output range (at least 1.0 wide)
MAX_ERROR_FRACTION = 0.1


def keras_last(model, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    y = np.asarray(model(x, training=False))
    return y[:, -1] if y.ndim == 3 else y


def extreme_inputs(n_steps: int, features: int) -> np.ndarray:
    lo = np.full((n_steps, features), -128)
    hi = np.full((n_steps, features), 127)
    alt = np.where(np.arange(n_steps)[:, None] % 2 == 0, hi, lo)
    checker = np.where((np.arange(n_steps)[:, None] + np.arange(features)) % 2 == 0, hi, lo)
    return np.stack([lo, hi, alt, checker]).astype(np.int8)


@pytest.mark.parametrize("seed", range(N_CONFIGS))
def test_random_model_bit_exact_and_close(seed: int, tmp_path) -> None:  # noqa: ANN001
    check_random_model(seed, tmp_path, "int8")


@pytest.mark.parametrize("seed", range(1000, 1000 + N_CONFIGS // 2))
def test_random_model_int16_activations(seed: int, tmp_path) -> None:  # noqa: ANN001
    check_random_model(seed, tmp_path, "int16")


def check_random_model(seed: int, tmp_path, activations: str) -> None:  # noqa: ANN001
    cfg = random_config(seed)
    model = build(cfg)
    rng = np.random.default_rng(seed)
    scale = float(rng.choice([0.2, 1.0, 3.0]))
    calib = (rng.normal(size=(48, cfg.steps, cfg.features)) * scale).astype(np.float32)
    test = (rng.normal(size=(32, cfg.steps, cfg.features)) * scale).astype(np.float32)

    res = export_model(model, calib, tmp_path / "c", name=f"m{seed}", activations=activations)
    q = res.qmodel

    # the float IR is Keras' arithmetic
    _, ir = read_any(model)
    fl, _ = observe_model(ir, test)
    want = keras_last(model, test)
    np.testing.assert_allclose(fl[:, -1], want, atol=1e-4, err_msg=cfg.describe())

    # C == integer reference, every step, on random and extreme inputs
    compiled = load_model(tmp_path / "c", f"m{seed}")
    assert compiled.state_size == q.state_bytes() == compiled.declared_state_size
    xq = np.concatenate([q.input_q.quantize(test), extreme_inputs(cfg.steps, cfg.features)])
    lengths = rng.integers(1, cfg.steps + 1, size=xq.shape[0])
    for lens in (None, lengths):
        c_out = compiled.run(xq, lens)
        ref = run_int(q, xq, lens)
        assert np.array_equal(c_out, ref), f"C != reference for {cfg.describe()}"
    if platform.machine() in ("x86_64", "AMD64"):  # the x86 vector path, AVX2 or the host's own
        flags = ("-mavx2", "-mno-avx512f") if seed % 2 else ("-march=native",)
        vec = load_model(tmp_path / "c", f"m{seed}", flags=(*DEFAULT_FLAGS, *flags))
        assert np.array_equal(vec.run(xq, lengths), run_int(q, xq, lengths)), (
            f"{' '.join(flags)} C != reference for {cfg.describe()}"
        )

    # int8 close to float Keras
    deq = q.output_q.dequantize(run_int(q, q.input_q.quantize(test))[:, -1])
    span = max(1.0, float(want.max() - want.min()))
    err = np.abs(deq - want).max()
    assert err <= MAX_ERROR_FRACTION * span, f"{cfg.describe()}: max error {err:.4f}"
