"""The runtime header's scalar kernels equal the NumPy mirror on every int16 input."""

from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rnn2c.emulator.build import find_compiler
from rnn2c.export import fixedpoint as fx
from rnn2c.export.render import runtime_files, runtime_header

PROBE = r"""
#include "rnn2c_runtime.h"
#define PROBE(name, fn) \
    void name(const int32_t *x, int32_t *y, int32_t n) \
    { int32_t i; for (i = 0; i < n; ++i) y[i] = fn(x[i]); }
PROBE(probe_tanh, rnn2c_tanh_q15)
PROBE(probe_sigmoid, rnn2c_sigmoid_q15)
PROBE(probe_exp, rnn2c_exp_neg_q15)
void probe_rq(const int32_t *x, const int32_t *m, const int32_t *s1, const int32_t *s2,
              int32_t *y, int32_t n) {
    int32_t i;
    for (i = 0; i < n; ++i) {
        rnn2c_rq_t q;
        q.multiplier = (int16_t)m[i]; q.shift_in = (uint8_t)s1[i]; q.shift_out = (uint8_t)s2[i];
        y[i] = rnn2c_rq(x[i], &q);
    }
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    d = tmp_path_factory.mktemp("probe")
    for f, text in runtime_files().items():  # rnn2c_runtime.h and the headers it includes
        (d / f).write_text(text)
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


def test_requant_matches_numpy(probe: ctypes.CDLL) -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    acc = rng.integers(-(2**31) + 1, 2**31 - 1, size=n)
    acc[: n // 2] //= 1 << rng.integers(0, 31, size=n // 2)
    mult = rng.integers(2**13, 2**14, size=n)
    mult[:100] = 0
    s1 = rng.integers(0, 32, size=n)
    s2 = rng.integers(1, 32, size=n)
    got = _call(probe.probe_rq, acc, mult, s1, s2)
    assert np.array_equal(got, fx.requant(acc, mult, s1, s2))
    assert np.abs(got).max() < 2**30


def test_activation_tables_accuracy() -> None:
    """Measured: tanh 1.2e-4, sigmoid 7.3e-5, exp 3.2e-4 worst-case absolute error."""
    x = np.arange(-32768, 32768)
    real = x / 4096.0
    assert np.abs(fx.tanh_q15(x) / 32768 - np.tanh(real)).max() < 1.5e-4
    assert np.abs(fx.sigmoid_q15(x) / 32768 - 1 / (1 + np.exp(-real))).max() < 1e-4
    d = np.arange(0, 16 * 4096)
    assert np.abs(fx.exp_neg_q15(d) / 32768 - np.exp(-d / 4096.0)).max() < 3.5e-4


def test_header_tables_are_the_numpy_tables() -> None:
    text = runtime_header()
    for name, table in (("rnn2c_tanh_table", fx.TANH_TABLE), ("rnn2c_exp_table", fx.EXP_TABLE)):
        body = re.search(name + r"\[[^\]]*\][^=;]* = \{(.*?)\};", text, re.S)
        assert body is not None
        values = [int(v) for v in body.group(1).replace("\n", " ").split(",")]
        assert values == table.tolist()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("limit", [256, 1 << 15, 1 << 16, 1 << 17])
def test_rq_params_precision_and_saturation(seed: int, limit: int) -> None:
    """The 32-bit requantization is within one output unit (plus 2^-13 relative) of the exact
    product wherever the consumer can tell values apart, and saturates exactly where it does."""
    rng = np.random.default_rng(seed)
    for real in 10.0 ** rng.uniform(-9, 3, size=100):
        m, s1, s2 = fx.rq_params(float(real), limit)
        assert (2**13 <= m < 2**14 and 0 <= s1 <= 31 and 1 <= s2 <= 31) or (m, s1, s2) == (0, 0, 1)
        if m == 0:
            assert real * (2**31) < limit
            continue
        bound = int(min(2**31 - 1, 4 * limit / real))
        acc = np.concatenate([rng.integers(-bound, bound, size=2000), [bound, -bound]])
        biased = acc + ((1 << s1) >> 1)  # the exporter folds this rounding into the bias
        got = fx.requant(biased, m, s1, s2)
        want = acc * real
        inside = np.abs(want) < limit
        tol = 1.0 + np.abs(want) * 2.0**-13 + 0.5 * real * 2**s1
        assert np.all(np.abs(got - want)[inside] <= tol[inside])
        assert np.all(np.sign(got[~inside]) == np.sign(want[~inside]))
        assert np.all(np.abs(got[~inside]) >= limit - tol[~inside])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit", [256, 1 << 15, 1 << 16, 1 << 17])
def test_shared_rq_params_precision_and_saturation(seed: int, limit: int) -> None:
    """Rows sharing shift_in and shift_out (one row kind): every row keeps rq_params'
    saturation guarantee, and its error stays within the kind's absolute bound: one output unit,
    2^-13 of the kind's largest real times 2^16 (the multiplier's rounding, which the smaller
    multipliers share in absolute terms) and half a step of the shifted accumulator. Kinds with
    zero rows, negligible rows and spreads up to 2^12 included."""
    rng = np.random.default_rng(100 + seed)
    spread = [0.0, 1.0, 3.0, 6.0, 9.0, 12.0][seed]
    n = 24
    reals = 10.0 ** rng.uniform(-6, 1) * 2.0 ** (-spread * rng.uniform(0, 1, size=n))
    reals[rng.integers(0, n, size=2)] = 0.0  # rows with zero weights (or multipliers)
    if seed == 5:
        reals[3] = 1e-30  # negligible: dropped as rq_params drops it
    m, s1, s2 = fx.shared_rq_params(reals, limit)
    assert m.shape == reals.shape and 0 <= s1 <= 31 and 1 <= s2 <= 31
    assert (m >= 0).all() and m.max() < 2**14
    for r, real in enumerate(reals):
        own = fx.rq_params(float(real), limit)
        if own[0] == 0:
            assert m[r] == 0
            continue
        assert s1 >= own[1]
        bound = int(min(2**31 - 1, 4 * limit / real))
        acc = np.concatenate([rng.integers(-bound, bound, size=500), [bound, -bound]])
        got = fx.requant(acc + ((1 << s1) >> 1), m[r], s1, s2)
        want = acc * real
        inside = np.abs(want) < limit
        tol = 1.0 + 2.0**16 * 2.0 ** -(s2 + 1) + 0.5 * real * 2**s1
        assert np.all(np.abs(got - want)[inside] <= tol)
        assert np.all(np.sign(got[~inside]) == np.sign(want[~inside]))
        assert np.all(np.abs(got[~inside]) >= limit - tol)
    if (m > 0).any():
        assert 2**13 <= m.max() < 2**14  # the largest row keeps a full multiplier


def test_shared_rq_params_all_zero() -> None:
    m, s1, s2 = fx.shared_rq_params(np.zeros(5), 1 << 15)
    assert (m == 0).all() and (s1, s2) == (0, 1)


def test_rq_params_rejects_huge() -> None:
    with pytest.raises(ValueError, match="too large"):
        fx.rq_params(2.0**14, 1 << 15)


def test_runtime_header_is_freestanding() -> None:
    files = runtime_files()
    text = "".join(files.values())
    includes = re.findall(r"#include <([^>]+)>", text)
    # the compiler's own intrinsics headers, only in the ISA headers that select those paths
    assert set(includes) <= {"stdint.h", "stddef.h", "arm_acle.h", "immintrin.h"}
    # the runtime's own headers: every one of them is shipped
    assert set(re.findall(r'#include "([^"]+)"', text)) <= set(files) - {"rnn2c_runtime.h"}
    assert "float" not in re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def test_runtime_header_file_is_shipped() -> None:
    import rnn2c.firmware_templates as ft

    for f in runtime_files():
        assert (Path(ft.__file__).parent / f).is_file()
