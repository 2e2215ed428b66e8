"""The runtime header's scalar kernels equal the NumPy mirror on every int16 input."""

from __future__ import annotations

import ctypes
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rnn2c.emulator.build import find_compiler
from rnn2c.export import fixedpoint as fx
from rnn2c.export.render import runtime_header

PROBE = r"""
#include "rnn2c_runtime.h"
#define PROBE(name, fn) \
    void name(const int32_t *x, int32_t *y, int32_t n) \
    { int32_t i; for (i = 0; i < n; ++i) y[i] = fn(x[i]); }
PROBE(probe_tanh, rnn2c_tanh_q15)
PROBE(probe_sigmoid, rnn2c_sigmoid_q15)
PROBE(probe_exp, rnn2c_exp_neg_q15)
void probe_requant(const int32_t *x, const int32_t *m, const int32_t *s, int32_t *y, int32_t n) {
    int32_t i; for (i = 0; i < n; ++i) y[i] = rnn2c_requantize(x[i], m[i], (int)s[i]); }
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    d = tmp_path_factory.mktemp("probe")
    (d / "rnn2c_runtime.h").write_text(runtime_header())
    (d / "probe.c").write_text(PROBE)
    lib = d / "libprobe.so"
    subprocess.run(
        [
            *find_compiler(),
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fPIC",
            "-shared",
            "-I",
            str(d),
            str(d / "probe.c"),
            "-o",
            str(lib),
        ],
        check=True,
    )
    return ctypes.CDLL(str(lib))


def _call(fn, *arrays: np.ndarray) -> np.ndarray:  # noqa: ANN001
    args = [np.ascontiguousarray(a, dtype=np.int32) for a in arrays]
    out = np.zeros_like(args[0])
    fn(
        *[a.ctypes.data_as(ctypes.c_void_p) for a in args],
        out.ctypes.data_as(ctypes.c_void_p),
        ctypes.c_int32(out.size),
    )
    return out.astype(np.int64)


ALL_Q12 = np.arange(-40000, 40000)  # every int16 value, plus out-of-range ones that saturate


def test_tanh_sigmoid_exp_match_numpy_everywhere(probe: ctypes.CDLL) -> None:
    assert np.array_equal(_call(probe.probe_tanh, ALL_Q12), fx.tanh_q15(ALL_Q12))
    assert np.array_equal(_call(probe.probe_sigmoid, ALL_Q12), fx.sigmoid_q15(ALL_Q12))
    d = np.arange(0, 70000)
    assert np.array_equal(_call(probe.probe_exp, d), fx.exp_neg_q15(d))


def test_requantize_matches_numpy(probe: ctypes.CDLL) -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    acc = rng.integers(-(2**31) + 1, 2**31 - 1, size=n)
    acc[: n // 2] //= 1 << rng.integers(0, 31, size=n // 2)
    mult = rng.integers(2**30, 2**31 - 1, size=n)
    shift = rng.integers(1, 63, size=n)
    assert np.array_equal(
        _call(probe.probe_requant, acc, mult, shift), fx.requantize(acc, mult, shift)
    )


def test_activation_tables_accuracy() -> None:
    """Measured: tanh 1.2e-4, sigmoid 7.3e-5, exp 4.9e-4 worst-case absolute error."""
    x = np.arange(-32768, 32768)
    real = x / 4096.0
    assert np.abs(fx.tanh_q15(x) / 32768 - np.tanh(real)).max() < 1.5e-4
    assert np.abs(fx.sigmoid_q15(x) / 32768 - 1 / (1 + np.exp(-real))).max() < 1e-4
    d = np.arange(0, 16 * 4096)
    assert np.abs(fx.exp_neg_q15(d) / 32768 - np.exp(-d / 4096.0)).max() < 6e-4


def test_header_tables_are_the_numpy_tables() -> None:
    text = runtime_header()
    for name, table in (("rnn2c_tanh_table", fx.TANH_TABLE), ("rnn2c_exp_table", fx.EXP_TABLE)):
        body = re.search(name + r"\[[^\]]*\] = \{(.*?)\};", text, re.S)
        assert body is not None
        values = [int(v) for v in body.group(1).replace("\n", " ").split(",")]
        assert values == table.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_quantize_multiplier_precision(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for real in 10.0 ** rng.uniform(-8, 8, size=200):
        m, s = fx.quantize_multiplier(float(real))
        assert 2**30 <= m < 2**31 and 1 <= s <= 62
        assert math.isclose(m * 2.0**-s, real, rel_tol=2**-30)


def test_quantize_multiplier_rejects_huge() -> None:
    with pytest.raises(ValueError, match="too large"):
        fx.quantize_multiplier(2.0**31)


def test_runtime_header_is_freestanding() -> None:
    includes = re.findall(r"#include <([^>]+)>", runtime_header())
    assert set(includes) <= {"stdint.h", "stddef.h"}
    assert "float" not in re.sub(r"/\*.*?\*/", "", runtime_header(), flags=re.S)


def test_runtime_header_file_is_shipped() -> None:
    import rnn2c.firmware_templates as ft

    assert (Path(ft.__file__).parent / "rnn2c_runtime.h").is_file()
