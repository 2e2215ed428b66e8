"""The generated C compiled as C++ (a model .c renamed .cpp, or built into C++ firmware):
warning-free under strict flags with g++ on the host and arm-none-eabi-g++ for Cortex-M4 and
Cortex-M0+, for a small model of every layer kind; the host C++ build gives the C build's
outputs bit for bit; two models linked into one C++ (or mixed C and C++) program share one copy
of the runtime's activation tables.

Flags: -std=c++11 (the oldest standard the header supports: <stdint.h>, `extern "C"`) with
-Wall -Wextra -Werror -pedantic and the C tests' extra warnings that exist in C++ (-Wshadow,
-Wcast-qual, -Wundef, -Wconversion, -Wsign-conversion; -Wmissing-declarations for C's
-Wmissing-prototypes). Not -Wold-style-cast or -Wuseless-cast: the file is C, whose casts are the
only ones both languages take.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
import seq2seq_keras as s2s

import models
from rnn2c.emulator.build import CompiledModel, harness_source, load_model, step_offsets
from rnn2c.emulator.seq2seq import HARNESS as S2S_HARNESS
from rnn2c.emulator.seq2seq import CompiledSeq2Seq
from rnn2c.export import export_model
from rnn2c.export.data import Sequences
from tools import need, require

CXX_STRICT = [
    "-std=c++11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-Wshadow",
    "-Wcast-qual",
    "-Wundef",
    "-Wconversion",
    "-Wsign-conversion",
    "-Wmissing-declarations",
]
C_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
#: cross builds: the Cortex-M4 (DSP instructions) and Cortex-M0+ (ARMv6-M assembly) kernels
CROSS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-Os"],
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb", "-Os"],
}
#: x86 builds of the models whose C has an x86-only copy of its weights (RNN2C_ISA_X86): AVX2,
#: and AVX-512 VNNI (where g++ 12's own intrinsics header needs the runtime's pragma)
X86 = {
    "avx2": ["-O2", "-mavx2"],
    "avx512vnni": ["-O2", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni"],
}
X86_MODELS = ("gru_ra", "bidir")  # a GRU; Bidirectional GRU and LSTM layers
L = keras.layers
F = 3  # features per step of the feature models
T = 10  # steps of the test sequences


def _seq(*layers: object) -> keras.Model:
    return keras.Sequential([keras.Input((None, F)), *layers])


def _models() -> dict[str, tuple[keras.Model, dict]]:
    """name -> (model, export keywords): one small model of every layer kind."""

    def chain(seed: int, cells: list[str], units: list[int], **kw: object) -> keras.Model:
        cfg = models.Config(
            seed=seed,
            features=F,
            steps=T,
            cells=cells,
            units=units,
            reset_after=kw.pop("reset_after", [True] * len(cells)),  # type: ignore[arg-type]
            use_bias=[True] * len(cells),
            last_return_sequences=bool(kw.pop("rs", False)),
            heads=kw.pop("heads", []),  # type: ignore[arg-type]
        )
        return models.build(cfg)

    keras.utils.set_random_seed(3)
    inp = keras.Input((None, F))
    a = L.GRU(4, return_sequences=True)(inp)
    b = L.Dense(4, activation="tanh")(inp)
    c = L.Concatenate()([L.Add()([a, b]), L.SimpleRNN(2, return_sequences=True)(inp)])
    graph = keras.Model(inp, L.LSTM(3)(c))
    imu, baro = keras.Input((None, 2), name="imu"), keras.Input((None, F - 2), name="baro")
    branches = [L.GRU(3)(imu), L.SimpleRNN(2)(baro)]  # several inputs: one array each per step
    ids = keras.Input((None,), dtype="int32")
    h = L.GRU(5)(L.Embedding(11, 4, mask_zero=True)(ids))
    whole = {"max_length": T}
    return {
        "gru_ra": (chain(1, ["gru"], [5], heads=[(3, "softmax")]), {}),
        "gru_rb": (chain(2, ["gru"], [5], reset_after=[False], rs=True, heads=[(2, "linear")]), {}),
        "lstm_rnn": (chain(3, ["lstm", "rnn"], [4, 3]), {}),
        "dense": (
            _seq(L.Dense(5, activation="relu"), L.SimpleRNN(3), L.Dense(2, activation="sigmoid")),
            {"input_quant": "per-feature"},
        ),
        "conv_causal": (
            _seq(L.Conv1D(4, 3, dilation_rate=2, padding="causal", activation="relu"), L.GRU(4)),
            {},
        ),
        "conv_strided": (
            _seq(
                L.Conv1D(4, 2, strides=2, padding="causal"),
                L.MaxPooling1D(2),
                L.LSTM(3, return_sequences=True),
                L.AveragePooling1D(2),
                L.GlobalMaxPooling1D(),
                L.Dense(2),
            ),
            {},
        ),
        "lnorm": (
            _seq(
                L.GRU(5, return_sequences=True, recurrent_activation="hard_sigmoid"),
                L.LayerNormalization(),
                L.Dense(3),
            ),
            {},
        ),
        "bidir": (
            _seq(
                L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="ave"),
                L.Bidirectional(L.LSTM(3)),
                L.Dense(2),
            ),
            whole,
        ),
        "conv_same": (
            _seq(L.Conv1D(4, 3, padding="same"), L.MaxPooling1D(2, padding="same"), L.GRU(3)),
            whole,
        ),
        "int16": (_seq(L.GRU(5, return_sequences=True), L.LSTM(4)), {"activations": "int16"}),
        "graph": (graph, {}),
        "tokens": (keras.Model(ids, L.Dense(3)(h)), {}),
        "inputs2": (keras.Model([imu, baro], L.Dense(3)(L.Concatenate()(branches))), {}),
    }


Export = tuple[Path, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Export]:
    """Every model exported once: name -> (its folder, its inputs: int8 rows [N, T, F], token
    ids [N, T] or a seq2seq model's encoder ids, and their lengths)."""
    root = tmp_path_factory.mktemp("cpp")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, T, F)).astype(np.float32)
    ids = rng.integers(1, 11, size=(6, T)).astype(np.int32)
    lengths = np.array([T, T - 1, T, 7, T, 8], dtype=np.int32)
    out: dict[str, Export] = {}
    for name, (model, kw) in _models().items():
        calib = ids if name == "tokens" else x
        res = export_model(model, calib, root / name, name=name, **kw)
        rows = calib if name == "tokens" else res.qmodel.quantize_input(x)
        out[name] = (root / name, rows, lengths)
    d = s2s.data(True)
    model = s2s.build(tokens=True, units=4, embed=3, vocab_in=10, vocab_out=8)
    seqs = Sequences(d["x"], d["y"], d["lengths"])
    export_model(model, seqs, root / "s2s", name="s2s", start_token=0, end_token=1)
    out["s2s"] = (root / "s2s", d["x"], d["lengths"])
    assert list(out) == MODELS
    return out


#: the models of the fixture, in its order
MODELS = [
    "gru_ra",
    "gru_rb",
    "lstm_rnn",
    "dense",
    "conv_causal",
    "conv_strided",
    "lnorm",
    "bidir",
    "conv_same",
    "int16",
    "graph",
    "tokens",
    "inputs2",
    "s2s",
]


def compile_cxx(cxx: str, flags: list[str], src: Path, obj: Path) -> None:
    """src (a generated .c) compiled as C++; the compiler's first lines on failure."""
    proc = subprocess.run(
        [cxx, *flags, *CXX_STRICT, "-x", "c++", "-c", str(src), "-o", str(obj)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{cxx} {' '.join(flags)} on {src.name}:\n{proc.stderr[:3000]}"


def cxx_library(folder: Path, name: str, harness: str) -> Path:
    """The model compiled as C++ (g++), its harness as C (gcc), linked into a shared library."""
    model_o, harness_o = folder / "cxx_model.o", folder / "cxx_harness.o"
    compile_cxx("g++", ["-O2", "-fPIC"], folder / f"{name}.c", model_o)
    offsets = step_offsets((folder / f"{name}.h").read_text(), name)  # several inputs
    (folder / "cxx_harness.c").write_text(harness_source(name, harness, offsets))
    cmd = ["gcc", *C_FLAGS, "-fPIC", "-I", str(folder), "-c", str(folder / "cxx_harness.c")]
    subprocess.run([*cmd, "-o", str(harness_o)], check=True)
    lib = folder / f"libcxx_{name}.so"
    subprocess.run(["g++", "-shared", str(model_o), str(harness_o), "-o", str(lib)], check=True)
    return lib


@pytest.mark.parametrize("model", MODELS)
def test_host_cxx_build_matches_the_c_build(exported: dict, model: str) -> None:
    """g++ (-O2, strict) builds the model's C as C++ warning-free; linked with the C harness
    (the C API has C linkage from C++), its outputs equal the gcc C build's bit for bit."""
    need("gcc", "g++")
    folder, x, lengths = exported[model]
    if model == "s2s":  # greedy tokens through encode and through encode_step
        c_s2s = CompiledSeq2Seq.build(folder, model)
        cxx_s2s = CompiledSeq2Seq.load(cxx_library(folder, model, S2S_HARNESS))
        for stepwise in (False, True):
            tokens, counts = c_s2s.greedy(x, lengths, 5, stepwise)
            assert (tokens >= 0).any()
            got = cxx_s2s.greedy(x, lengths, 5, stepwise)
            np.testing.assert_array_equal(got[0], tokens)
            np.testing.assert_array_equal(got[1], counts)
        return
    c_model = load_model(folder, model)
    cxx_model = CompiledModel.load(cxx_library(folder, model, "harness.c.j2"))
    assert cxx_model.state_size == c_model.state_size == cxx_model.declared_state_size
    if model == "tokens":
        want, got = c_model.run_tokens(x, lengths), cxx_model.run_tokens(x, lengths)
    else:
        want, got = c_model.run(x, lengths), cxx_model.run(x, lengths)
    assert want.any()  # outputs to compare, not all zero
    np.testing.assert_array_equal(got, want)
    if c_model.samples_per_step:  # push_sample (inline in the header) over the C++ step
        np.testing.assert_array_equal(cxx_model.push(x, lengths)[0], want)


@pytest.mark.parametrize("target", sorted(CROSS))
@pytest.mark.parametrize("model", MODELS)
def test_cortex_m_cxx_builds_warning_free(exported: dict, model: str, target: str) -> None:
    require("arm-none-eabi-g++", "Debian package gcc-arm-none-eabi")
    folder = exported[model][0]
    obj = folder / f"{model}-{target}.o"
    compile_cxx("arm-none-eabi-g++", CROSS[target], folder / f"{model}.c", obj)
    assert obj.stat().st_size > 0


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 kernel paths")
@pytest.mark.parametrize("path", sorted(X86))
@pytest.mark.parametrize("model", X86_MODELS)
def test_x86_simd_cxx_builds_warning_free(exported: dict, model: str, path: str) -> None:
    """The x86-only weight copies and kernels (#if RNN2C_ISA_X86, RNN2C_X86_U8) as C++."""
    need("g++")
    folder = exported[model][0]
    src = folder / f"{model}.c"
    assert "#if defined(RNN2C_ISA_X86)" in src.read_text()
    compile_cxx("g++", X86[path], src, folder / f"{model}-{path}.o")


MAIN = """
#include <stdio.h>
#include "gru_ra.h"
#include "lstm_rnn.h"
int main(void) {
    gru_ra_state_t a;
    lstm_rnn_state_t b;
    int8_t x[GRU_RA_INPUT_SIZE];
    int8_t ya[GRU_RA_OUTPUT_SIZE], yb[LSTM_RNN_OUTPUT_SIZE];
    int t, i;
    gru_ra_reset(&a);
    lstm_rnn_reset(&b);
    for (t = 0; t < 40; ++t) { /* the two models interleaved on one stream */
        for (i = 0; i < GRU_RA_INPUT_SIZE; ++i) x[i] = (int8_t)((t * 37 + i * 11) % 256 - 128);
        gru_ra_step(&a, x, ya);
        (void)lstm_rnn_push_sample(&b, x, yb);
        for (i = 0; i < GRU_RA_OUTPUT_SIZE; ++i) printf("%d ", ya[i]);
        for (i = 0; i < LSTM_RNN_OUTPUT_SIZE; ++i) printf("%d ", yb[i]);
        printf("\\n");
    }
    return 0;
}
"""


def _program(exported: dict, folder: Path, langs: tuple[str, str], main_lang: str) -> str:
    """MAIN over gru_ra and lstm_rnn, each model compiled as langs[i] ("c": gcc, "c++": g++)
    and main as main_lang; the program's output. Checks that it holds one copy of each table."""
    objs = []
    for model, lang in zip(("gru_ra", "lstm_rnn"), langs, strict=True):
        src, obj = exported[model][0] / f"{model}.c", folder / f"{model}-{lang}.o"
        if lang == "c++":
            compile_cxx("g++", ["-O2"], src, obj)
        else:
            subprocess.run(["gcc", *C_FLAGS, "-c", str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    main = folder / ("main.cpp" if main_lang == "c++" else "main.c")
    main.write_text(MAIN)
    cc, flags = ("g++", CXX_STRICT) if main_lang == "c++" else ("gcc", C_FLAGS)
    includes = ["-I", str(exported["gru_ra"][0]), "-I", str(exported["lstm_rnn"][0])]
    exe = folder / f"two-{langs[0]}-{langs[1]}-{main_lang}"
    subprocess.run([cc, *flags, *includes, str(main), *objs, "-o", str(exe)], check=True)
    nm = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in nm.splitlines()]
    assert names.count("rnn2c_tanh_table") == 1 and names.count("rnn2c_exp_table") == 1
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def c_program(exported: dict, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The output of the all-C program (models and main compiled by gcc)."""
    need("gcc", "nm")
    return _program(exported, tmp_path_factory.mktemp("c-program"), ("c", "c"), "c")


@pytest.mark.parametrize(
    "langs, main_lang", [(("c++", "c++"), "c++"), (("c", "c++"), "c++"), (("c++", "c"), "c")]
)
def test_two_models_in_one_program_share_the_tables(
    exported: dict, c_program: str, tmp_path: Path, langs: tuple[str, str], main_lang: str
) -> None:
    """Two models (each with its own copy of rnn2c_runtime.h) linked into one program, both
    compiled as C++ or one as C and one as C++, main in C++ or C: one copy of each activation
    table in the program (weak, and with C linkage from C++ too), the all-C program's outputs,
    and the C++ model object defines exactly the symbols of the C API (unmangled)."""
    need("gcc", "g++", "nm")
    out = _program(exported, tmp_path, langs, main_lang)
    assert len(out.splitlines()) == 40 and len(set(out.split())) > 3
    assert out == c_program
    model = "gru_ra" if langs[0] == "c++" else "lstm_rnn"
    nm = subprocess.run(
        ["nm", "-g", "--defined-only", str(tmp_path / f"{model}-c++.o")],
        capture_output=True,
        text=True,
        check=True,
    )
    symbols = {line.split()[-1]: line.split()[-2] for line in nm.stdout.splitlines()}
    assert symbols == {
        f"{model}_reset": "T",
        f"{model}_step": "T",
        f"{model}_run": "T",
        "rnn2c_tanh_table": "V",
        "rnn2c_exp_table": "V",
    }
