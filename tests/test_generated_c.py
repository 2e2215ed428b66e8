"""The generated C: warning-free under strict flags, integer-only, no clashes between models."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.emulator.build import DEFAULT_FLAGS, compile_model, load_model
from rnn2c.export import export_model
from rnn2c.export.reference import run_int
from rnn2c.export.serialize import load
from tools import AVX512_FLAGS, has_avx512, lacks_hardware, need, require_x86

STRICT = [
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-Wshadow",
    "-Wcast-qual",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wundef",
    "-Wconversion",
    "-Wsign-conversion",
]
#: the compile matrix (each test asks for its compiler through tools.need: CI has both)
COMPILERS = ("gcc", "clang")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two models (every layer kind between them) exported side by side."""
    d = tmp_path_factory.mktemp("gen")
    keras.utils.set_random_seed(5)
    a = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.GRU(6, return_sequences=True, reset_after=False),
            keras.layers.LSTM(5, return_sequences=True),
            keras.layers.SimpleRNN(4),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    b = keras.Sequential(
        [keras.Input((None, 4)), keras.layers.GRU(7), keras.layers.Dense(2, activation="relu")]
    )
    x = np.random.default_rng(0).normal(size=(8, 10, 4)).astype(np.float32)
    export_model(a, x, d / "a", name="alpha")
    export_model(b, x, d / "b", name="beta")
    export_model(a, x, d / "g", name="gamma", activations="int16")
    export_model(b, x, d / "p", name="pf", input_quant="per-feature")
    # whole-sequence models: every merge rule in int8 and int16, go_backwards, stacked
    bi = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.Bidirectional(
                keras.layers.GRU(6, return_sequences=True, reset_after=False), merge_mode="ave"
            ),
            keras.layers.Bidirectional(keras.layers.LSTM(5), merge_mode="mul"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    bg = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.SimpleRNN(5, go_backwards=True, return_sequences=True),
            keras.layers.Bidirectional(
                keras.layers.GRU(6, return_sequences=True), merge_mode="sum"
            ),
            keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True)),
        ]
    )
    export_model(bi, x, d / "bi", name="bi", max_length=16)
    export_model(bg, x, d / "bg", name="bg", max_length=16, activations="int16")
    return d


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("std", ["-std=c99", "-std=c11"])
@pytest.mark.parametrize("opt", ["-O0", "-O2", "-Os"])
@pytest.mark.parametrize("model", ["a/alpha", "g/gamma", "p/pf", "bi/bi", "bg/bg"])
def test_compiles_warning_free(exported: Path, cc: str, std: str, opt: str, model: str) -> None:
    need(cc)
    src = exported / f"{model}.c"
    obj = exported / f"{model}-{cc}{std}{opt}.o"
    subprocess.run(
        [cc, std, opt, *STRICT, "-c", str(src), "-o", str(obj)],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("model", ["a/alpha", "g/gamma", "bg/bg"])
def test_step_path_has_no_floats(exported: Path, model: str) -> None:
    c = (exported / f"{model}.c").read_text()
    code = re.sub(r"/\*.*?\*/", "", c, flags=re.S)
    assert not re.search(r"\b(float|double)\b", code)
    assert "math.h" not in code and "malloc" not in code
    # gcc refuses any floating-point operation when only integer registers may be used
    need("gcc")
    require_x86(f"gcc -mgeneral-regs-only on {model}.c")
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O2",
            "-mgeneral-regs-only",
            *STRICT,
            "-c",
            str(exported / f"{model}.c"),
            "-o",
            str(exported / "noflt.o"),
        ],
        check=True,
    )


def test_only_reset_step_and_run_are_exported(exported: Path) -> None:
    need("nm")
    obj = exported / "alpha.o"
    subprocess.run(
        ["gcc", "-std=c99", "-O2", "-c", str(exported / "a" / "alpha.c"), "-o", str(obj)],
        check=True,
    )
    nm = subprocess.run(
        ["nm", "-g", "--defined-only", str(obj)], capture_output=True, text=True, check=True
    )
    symbols = {line.split()[-1]: line.split()[-2] for line in nm.stdout.splitlines()}
    # the activation tables are weak objects (V), so several models share one copy
    assert symbols == {
        "alpha_reset": "T",
        "alpha_step": "T",
        "alpha_run": "T",
        "rnn2c_tanh_table": "V",
        "rnn2c_exp_table": "V",
    }


def test_two_models_link_into_one_program_and_interleave(exported: Path) -> None:
    main = exported / "main.c"
    main.write_text(
        """
#include <stdio.h>
#include <string.h>
#include "alpha.h"
#include "beta.h"
int main(void) {
    alpha_state_t s1, s2, s3; beta_state_t b;
    int8_t x[ALPHA_INPUT_SIZE], x2[ALPHA_INPUT_SIZE];
    int8_t y1[ALPHA_OUTPUT_SIZE], y2[ALPHA_OUTPUT_SIZE], y3[ALPHA_OUTPUT_SIZE];
    int8_t yb[BETA_OUTPUT_SIZE];
    int t, i, same = 1;
    alpha_reset(&s1); alpha_reset(&s2); alpha_reset(&s3); beta_reset(&b);
    for (t = 0; t < 50; ++t) { /* s1 and s2 see one stream, interleaved with s3 and b */
        for (i = 0; i < ALPHA_INPUT_SIZE; ++i) x[i] = (int8_t)((t * 37 + i * 11) % 256 - 128);
        alpha_step(&s1, x, y1);
        for (i = 0; i < ALPHA_INPUT_SIZE; ++i) x2[i] = (int8_t)(x[i] ^ 0x55);
        alpha_step(&s3, x2, y3);
        beta_step(&b, x, yb);
        alpha_step(&s2, x, y2);
        same &= memcmp(y1, y2, sizeof y1) == 0;
    }
    printf("%d %d %d\\n", same, (int)sizeof(alpha_state_t), ALPHA_STATE_SIZE);
    return same ? 0 : 1;
}
"""
    )
    exe = exported / "two"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O2",
            *STRICT[:4],
            "-I",
            str(exported / "a"),
            "-I",
            str(exported / "b"),
            str(main),
            str(exported / "a" / "alpha.c"),
            str(exported / "b" / "beta.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "1" and out[1] == out[2]
    need("nm")  # one copy of each 257-point table in the program, not one per model
    nm = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in nm.splitlines()]
    assert names.count("rnn2c_tanh_table") == 1 and names.count("rnn2c_exp_table") == 1


#: host builds of every kernel path: portable C, AVX2 (no AVX-512), AVX-512 without VNNI, and
#: whatever the machine has (AVX-512 VNNI here)
HOST_PATHS = {
    "portable": ("-mno-avx2",),
    "avx2": ("-mavx2", "-mno-avx512f"),
    "avx512": ("-march=x86-64-v4", "-mno-avx512vnni", "-O3"),
    "native": ("-march=native", "-O3"),
}


def _runs_here(path: str) -> bool:
    """Whether this CPU executes a host path (AVX-512 needs avx512f, bw and vl)."""
    return path != "avx512" or has_avx512()


def _build_or_skip(folder: Path, name: str, path: str, what: str):  # noqa: ANN202
    """The compiled model of a host path; for a path this CPU cannot execute (AVX-512 on an
    AVX2 machine), the library is still built (a compile error fails the test), then the test
    skips through tools.lacks_hardware, naming what was not run (see tests/tools.py)."""
    flags = (*DEFAULT_FLAGS, *HOST_PATHS[path])
    if _runs_here(path):
        return load_model(folder, name, flags=flags)
    compile_model(folder, name, flags=flags)  # built, never loaded: its code would not run
    lacks_hardware("+".join(AVX512_FLAGS), f"{what}: the {path} kernels (compiled, not run)")


@pytest.mark.parametrize("path", sorted(HOST_PATHS))
@pytest.mark.parametrize("model", ["a/alpha", "b/beta", "g/gamma", "p/pf"])
def test_every_host_kernel_path_is_bit_exact(exported: Path, path: str, model: str) -> None:
    """The portable, AVX2 and -march=native (AVX-512 VNNI where the CPU has it) kernels give the
    integer reference's outputs on every step."""
    require_x86(f"the x86 kernel paths of {model}")
    folder, name = model.split("/")
    q = load(exported / folder / f"{name}_qmodel.npz")
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(12, 25, q.input_size)).astype(np.int8)
    x[0], x[1] = -128, 127
    compiled = _build_or_skip(exported / folder, name, path, model)
    assert np.array_equal(compiled.run(x, None), run_int(q, x))


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Layers of 8 units and more (full and partial blocks of the x86 layout), int8 and
    int16 states, LSTM cells with more and fewer than 12 fraction bits, every Dense head."""
    d = tmp_path_factory.mktemp("wide")
    keras.utils.set_random_seed(11)
    a = keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.GRU(16, return_sequences=True),
            keras.layers.LSTM(21, return_sequences=True),
            keras.layers.GRU(13, return_sequences=True, reset_after=False),
            keras.layers.SimpleRNN(11, return_sequences=True),
            keras.layers.Dense(9, activation="tanh"),
            keras.layers.Dense(10, activation="sigmoid"),
            keras.layers.Dense(12, activation="relu"),
            keras.layers.Dense(7, activation="softmax"),
        ]
    )
    b = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.LSTM(32, return_sequences=True, unit_forget_bias=True),
            keras.layers.GRU(24),
            keras.layers.Dense(5),
        ]
    )
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 12, 5)).astype(np.float32)
    big = (np.abs(rng.normal(size=(8, 40, 3))) * 30).astype(np.float32)  # cells past 8.0
    export_model(a, x, d / "a", name="wa")
    export_model(a, x, d / "g", name="wg", activations="int16", input_quant="per-feature")
    export_model(b, big, d / "b", name="wb")
    export_model(b, big, d / "h", name="wh", activations="int16")
    return d


@pytest.mark.parametrize("path", sorted(HOST_PATHS))
@pytest.mark.parametrize("model", ["a/wa", "g/wg", "b/wb", "h/wh"])
def test_wide_layers_every_host_kernel_path_is_bit_exact(wide: Path, path: str, model: str) -> None:
    """As above on layers of 8 to 32 units, with long extreme inputs (saturated gates, cells)."""
    require_x86(f"the x86 kernel paths of {model}")
    folder, name = model.split("/")
    q = load(wide / folder / f"{name}_qmodel.npz")
    rng = np.random.default_rng(8)
    x = rng.integers(-128, 128, size=(10, 60, q.input_size)).astype(np.int8)
    x[0], x[1] = -128, 127
    x[2, :, 0] = 127
    x[3] = np.where(np.arange(60)[:, None] % 8 < 4, 127, -128)
    compiled = _build_or_skip(wide / folder, name, path, model)
    assert np.array_equal(compiled.run(x, None), run_int(q, x))


@pytest.mark.parametrize("seed", range(6))
def test_random_recurrent_configs_every_host_kernel_path_is_bit_exact(
    tmp_path: Path, seed: int
) -> None:
    """Property style: a random GRU or LSTM stack (1 to 40 units, so full and partial blocks of
    the x86 layout's 16 and 8 lanes, 1 to 13 inputs, int8 or int16 states, per-tensor or
    per-feature input, a random Dense head) gives the integer reference's outputs on every step
    in every host kernel path (a path this CPU cannot execute: built, then named in the skip
    after every other path has run)."""
    require_x86(f"the x86 kernel paths of random configuration {seed}")
    rng = np.random.default_rng(100 + seed)
    keras.utils.set_random_seed(100 + seed)
    features = int(rng.integers(1, 14))
    layers: list[keras.layers.Layer] = [keras.Input((None, features))]
    for depth in range(int(rng.integers(1, 3))):
        units = int(rng.integers(1, 41))
        last = depth == 1
        if rng.random() < 0.5:
            layers.append(keras.layers.GRU(units, return_sequences=not last))
        else:
            layers.append(keras.layers.LSTM(units, return_sequences=not last))
    head = str(rng.choice(["softmax", "sigmoid", "tanh", "relu", "linear"]))
    layers.append(keras.layers.Dense(int(rng.integers(1, 9)), activation=head))
    model = keras.Sequential(layers)
    scale = np.exp(rng.normal(size=features) * 2.0)
    calib = (rng.normal(size=(8, 20, features)) * scale).astype(np.float32)
    activations = str(rng.choice(["int8", "int16"]))
    input_quant = str(rng.choice(["per-tensor", "per-feature"]))
    export_model(model, calib, tmp_path, name="r", activations=activations, input_quant=input_quant)
    q = load(tmp_path / "r_qmodel.npz")
    x = rng.integers(-128, 128, size=(6, 30, q.input_size)).astype(np.int8)
    x[0], x[1] = -128, 127
    want = run_int(q, x)
    for path in sorted(HOST_PATHS, key=lambda p: not _runs_here(p)):  # the runnable ones first
        compiled = _build_or_skip(tmp_path, "r", path, f"random configuration {seed}")
        assert np.array_equal(compiled.run(x, None), want), (path, model.layers)


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("opt", ["-O0", "-O2", "-Os"])
@pytest.mark.parametrize("path", ["avx2", "avx512", "native"])
def test_x86_paths_compile_warning_free(wide: Path, cc: str, opt: str, path: str) -> None:
    need(cc)
    require_x86(f"the {path} kernels under {cc} {opt}")
    flags = [f for f in HOST_PATHS[path] if not f.startswith("-O")]
    for model in ("a/wa", "h/wh"):
        subprocess.run(
            [
                cc,
                "-std=c99",
                opt,
                *flags,
                *STRICT,
                "-c",
                str(wide / f"{model}.c"),
                "-o",
                str(wide / f"{model}-{cc}{opt}{path}.o"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )


def test_export_is_reproducible(exported: Path, tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((None, 4)), keras.layers.GRU(7), keras.layers.Dense(2)])
    x = np.random.default_rng(1).normal(size=(8, 10, 4)).astype(np.float32)
    export_model(model, x, tmp_path / "one", name="m")
    export_model(model, x, tmp_path / "two", name="m")
    for f in ("m.c", "m.h", "rnn2c_runtime.h"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()


HELPERS = r"""
#include <stdio.h>
#include <string.h>
#include "alpha.h"
#include "beta.h"
#include "pf.h"
static unsigned int bits(float f) { unsigned int u; memcpy(&u, &f, sizeof u); return u; }
int main(void) {
    float x[PF_INPUT_SIZE] = {0.5f, -1.0f, 2.0f, 0.0f};
    int8_t qa[BETA_INPUT_SIZE], qb[PF_INPUT_SIZE];
    int8_t ya[ALPHA_OUTPUT_SIZE], yb[BETA_OUTPUT_SIZE];
    float fa[ALPHA_OUTPUT_SIZE], fb[BETA_OUTPUT_SIZE];
    int k, i;
    beta_quantize_input(x, qa);
    pf_quantize_input(x, qb);
    for (i = 0; i < PF_INPUT_SIZE; ++i) printf("%d %d\n", qa[i], qb[i]);
    for (k = -128; k <= 127; ++k) { /* every int8 value through each dequantize_output */
        for (i = 0; i < ALPHA_OUTPUT_SIZE; ++i) ya[i] = (int8_t)k;
        for (i = 0; i < BETA_OUTPUT_SIZE; ++i) yb[i] = (int8_t)k;
        alpha_dequantize_output(ya, fa);
        beta_dequantize_output(yb, fb);
        for (i = 0; i < ALPHA_OUTPUT_SIZE; ++i) printf("%08x ", bits(fa[i]));
        for (i = 0; i < BETA_OUTPUT_SIZE; ++i) printf("%08x ", bits(fb[i]));
        printf("\n");
    }
    return 0;
}
"""


def test_float_helpers_equal_the_python_quantizer_bit_for_bit(exported: Path) -> None:
    """The header's static inline helpers: quantize_input (per-tensor and per-feature) gives the
    Python quantizer's int8 values, and dequantize_output gives, for every int8 value, the
    float32 of the Python dequantization, scale * (q - zero point) (the scale as the header's
    float32 constant; a softmax head's 1/256 and a calibrated relu scale)."""
    need("gcc")
    main = exported / "helpers.c"
    main.write_text(HELPERS)
    exe = exported / "helpers"
    folders = [str(a) for f in ("a", "b", "p") for a in ("-I", exported / f)]
    sources = [str(exported / f) for f in ("a/alpha.c", "b/beta.c", "p/pf.c")]
    subprocess.run(
        ["gcc", "-std=c99", "-O2", *STRICT, *folders, str(main), *sources, "-o", str(exe)],
        check=True,
    )
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    rows = lines.splitlines()
    x = np.array([0.5, -1.0, 2.0, 0.0])
    got_q = np.array([[int(v) for v in row.split()] for row in rows[:4]])
    for column, folder, name in ((0, "b", "beta"), (1, "p", "pf")):
        want_q = load(exported / folder / f"{name}_qmodel.npz").input_q.quantize(x)
        np.testing.assert_array_equal(got_q[:, column], want_q)
    got = np.array([[int(v, 16) for v in row.split()] for row in rows[4:]], dtype=np.uint32)
    assert got.shape == (256, 3 + 2)
    q = np.arange(-128, 128)
    for cols, folder, name in ((slice(0, 3), "a", "alpha"), (slice(3, 5), "b", "beta")):
        oq = load(exported / folder / f"{name}_qmodel.npz").output_q
        want = np.float32(oq.scale) * (q - oq.zero_point).astype(np.float32)  # float32 * float32
        assert (
            np.abs(want.astype(np.float64) - oq.dequantize(q)).max()
            <= 2.0**-23 * np.abs(oq.dequantize(q)).max()
        )  # the float32 of the Python (float64) dequantization, to its rounding
        wide = np.broadcast_to(want.view(np.uint32)[:, None], got[:, cols].shape)
        np.testing.assert_array_equal(got[:, cols], wide)
