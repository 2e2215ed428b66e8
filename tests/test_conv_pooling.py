"""Conv1D (causal, strided, dilated) and pooling over time (windowed and global), streaming.

Property style, as test_pipeline_random: random configurations (kernel size, dilation, strides,
channels, activation, bias, pooling, where the layers sit), each exported, compiled and checked:
the float IR equals Keras at several lengths (the held output of a decimating model is Keras'
last output), the C equals the integer reference at every step, and int8 stays close to float.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.emulator import load_model
from rnn2c.emulator.build import DEFAULT_FLAGS
from rnn2c.export import ExportError, export_model
from rnn2c.export.api import read_any
from rnn2c.export.layers.pooling import mean_round
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import run_int
from tools import need

ACTS = ("linear", "relu", "sigmoid", "tanh", "softmax")
CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
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
MAX_ERROR_FRACTION = 0.1


@dataclass
class ConvConfig:
    seed: int
    features: int
    steps: int
    layers: list[tuple] = field(default_factory=list)  # (kind, settings...)
    activations: str = "int8"
    input_quant: str = "per-tensor"

    def describe(self) -> str:
        parts = ["-".join(str(v) for v in layer) for layer in self.layers]
        return f"s{self.seed}-F{self.features}-T{self.steps}-{self.activations}-[{','.join(parts)}]"


def _conv(rng: np.random.Generator, padding: str = "causal") -> tuple:
    stride = int(rng.choice([1, 1, 2, 3]))
    dilation = 1 if stride > 1 else int(rng.choice([1, 2, 3]))
    return (
        "conv",
        int(rng.integers(1, 13)),  # filters
        int(rng.integers(1, 5)),  # kernel size
        dilation,
        stride,
        str(rng.choice(ACTS[:4])) if rng.random() < 0.9 else "softmax",
        bool(rng.integers(0, 2)),  # use_bias
        padding,
    )


def _pool(rng: np.random.Generator, padding: str = "valid") -> tuple:
    pool = int(rng.integers(1, 4))
    return ("pool", str(rng.choice(["max", "avg"])), pool, int(rng.integers(1, pool + 1)), padding)


def _pool_same(rng: np.random.Generator) -> tuple:
    """Pooling with padding 'same': any pool_size, strides up to past the window."""
    pool = int(rng.integers(1, 6))
    return ("pool", str(rng.choice(["max", "avg"])), pool, int(rng.integers(1, 5)), "same")


def random_conv_config(seed: int) -> ConvConfig:
    rng = np.random.default_rng(seed)
    layers: list[tuple] = [_conv(rng)]
    if rng.random() < 0.4:
        layers.append(_pool(rng))
    cell = str(rng.choice(list(CELLS)))
    ending = str(rng.choice(["last", "seq", "between", "global"]))
    units = int(rng.integers(1, 13))
    if ending == "between":  # recurrent -> Conv1D -> recurrent
        layers += [
            ("rec", cell, units, True),
            _conv(rng),
            ("rec", cell, int(rng.integers(1, 9)), False),
        ]
    elif ending == "global":
        layers += [("rec", cell, units, True), ("global", str(rng.choice(["max", "avg"])))]
    else:
        layers.append(("rec", cell, units, ending == "seq"))
    if rng.random() < 0.7:
        layers.append(("dense", int(rng.integers(1, 7)), str(rng.choice(ACTS))))
    return ConvConfig(
        seed=seed,
        features=int(rng.integers(1, 9)),
        steps=int(rng.integers(10, 25)),
        layers=layers,
        activations="int16" if rng.random() < 0.25 else "int8",
        input_quant="per-feature" if rng.random() < 0.25 else "per-tensor",
    )


def build(cfg: ConvConfig) -> keras.Model:
    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    inp = keras.Input((None, cfg.features))
    x = inp
    for spec in cfg.layers:
        kind = spec[0]
        if kind == "conv":
            _, filters, k, dilation, stride, act, bias, padding = spec
            layer = keras.layers.Conv1D(
                filters,
                k,
                strides=stride,
                dilation_rate=dilation,
                padding=padding,
                activation=act,
                use_bias=bias,
            )
            x = layer(x)
            if bias:  # non-zero biases, so that the bias path is exercised
                w = layer.get_weights()
                w[1] = rng.normal(0, 0.3, size=w[1].shape).astype(np.float32)
                layer.set_weights(w)
        elif kind == "pool":
            _, op, pool, stride, padding = spec
            cls = keras.layers.MaxPooling1D if op == "max" else keras.layers.AveragePooling1D
            x = cls(pool_size=pool, strides=stride, padding=padding)(x)
        elif kind == "rec":
            _, cell, units, seq = spec
            x = CELLS[cell](units, return_sequences=seq)(x)
        elif kind == "bidir":
            _, cell, units, seq, merge = spec
            x = keras.layers.Bidirectional(
                CELLS[cell](units, return_sequences=seq), merge_mode=merge
            )(x)
        elif kind == "global":
            cls = (
                keras.layers.GlobalMaxPooling1D
                if spec[1] == "max"
                else keras.layers.GlobalAveragePooling1D
            )
            x = cls()(x)
        else:
            x = keras.layers.Dense(spec[1], activation=spec[2])(x)
    return keras.Model(inp, x, name=f"c{cfg.seed}")


def keras_last(model: keras.Model, x: np.ndarray) -> np.ndarray:
    y = np.asarray(model(x, training=False))
    return y[:, -1] if y.ndim == 3 else y


N_CONFIGS = 12
N_WHOLE = 8


@pytest.mark.parametrize("seed", range(N_CONFIGS))
def test_random_conv_model_bit_exact_and_close(seed: int, tmp_path: Path) -> None:
    cfg = random_conv_config(seed)
    model = build(cfg)
    rng = np.random.default_rng(seed)
    scale = float(rng.choice([0.3, 1.0, 3.0]))
    calib = (rng.normal(size=(40, cfg.steps, cfg.features)) * scale).astype(np.float32)
    test = (rng.normal(size=(24, cfg.steps, cfg.features)) * scale).astype(np.float32)
    name = f"c{seed}"
    res = export_model(
        model,
        calib,
        tmp_path / "c",
        name=name,
        activations=cfg.activations,
        input_quant=cfg.input_quant,
    )
    q = res.qmodel

    # the float IR is Keras' arithmetic, at several lengths (the held output is Keras' last)
    _, ir = read_any(model)
    fl, _ = observe_model(ir, test)
    for length in (cfg.steps, cfg.steps - 1, cfg.steps - 3):
        want = keras_last(model, test[:, :length])
        np.testing.assert_allclose(fl[:, length - 1], want, atol=1e-4, err_msg=cfg.describe())

    # C == integer reference at every step, on random and extreme inputs, cut lengths
    compiled = load_model(tmp_path / "c", name)
    assert compiled.state_size == q.state_bytes() == compiled.declared_state_size
    lo = np.full((cfg.steps, cfg.features), -128)
    hi = np.full((cfg.steps, cfg.features), 127)
    alt = np.where(np.arange(cfg.steps)[:, None] % 2 == 0, hi, lo)
    xq = np.concatenate([q.input_q.quantize(test), np.stack([lo, hi, alt]).astype(np.int8)])
    lengths = rng.integers(1, cfg.steps + 1, size=xq.shape[0])
    for lens in (None, lengths):
        assert np.array_equal(compiled.run(xq, lens), run_int(q, xq, lens)), cfg.describe()
    # a stream without reset
    stream = xq[:4].reshape(-1, cfg.features)
    assert np.array_equal(compiled.stream(stream), run_int(q, stream[None])[0]), cfg.describe()
    if platform.machine() in ("x86_64", "AMD64") and seed % 3 == 0:
        vec = load_model(tmp_path / "c", name, flags=(*DEFAULT_FLAGS, "-mavx2", "-mno-avx512f"))
        assert np.array_equal(vec.run(xq, lengths), run_int(q, xq, lengths)), cfg.describe()

    # int8 close to float Keras
    deq = q.output_q.dequantize(run_int(q, q.input_q.quantize(test))[:, -1])
    want = keras_last(model, test)
    span = max(1.0, float(want.max() - want.min()))
    err = float(np.abs(deq - want).max())
    assert err <= MAX_ERROR_FRACTION * span, f"{cfg.describe()}: max error {err:.4f}"


def test_mean_round_is_half_up() -> None:
    total = np.array([-5, -4, -3, -1, 0, 1, 3, 4, 5, 7])
    np.testing.assert_array_equal(mean_round(total, 2), [-2, -2, -1, 0, 0, 1, 2, 2, 3, 4])
    np.testing.assert_array_equal(mean_round(np.array([-7, 7, 8]), 3), [-2, 2, 3])


def _kws(frames: int = 40) -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((None, frames)),
            keras.layers.Conv1D(32, 3, strides=2, padding="causal", activation="relu"),
            keras.layers.GRU(32),
            keras.layers.Dense(12, activation="softmax"),
        ],
        name="kws",
    )


def test_strided_step_returns_new_and_holds(tmp_path: Path) -> None:
    """step returns 1 at steps 0, 2, 4, ... (Keras' causal outputs of a stride-2 Conv1D) and 0
    between them, with the held output; run of a sequence model writes only the new rows."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(5, 2, strides=2, padding="causal"),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(1).normal(size=(16, 9, 3)).astype(np.float32)
    q = export_model(model, x, tmp_path / "c", name="st").qmodel
    h = (tmp_path / "c" / "st.h").read_text()
    assert "int st_step(" in h and "#define ST_OUTPUT_STRIDE 2" in h
    assert "#define ST_OUTPUT_ROWS(length) (((length) + 1) / 2)" in h
    src = tmp_path / "probe.c"
    src.write_text(
        '#include <stdio.h>\n#include "st.h"\n'
        "int main(void) {\n"
        "    static const int8_t x[9][ST_INPUT_SIZE] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9},"
        " {-1, -2, -3}, {0, 9, 0}, {5, 5, 5}, {-9, 0, 9}, {3, 0, -3}, {1, 1, 1}};\n"
        "    st_state_t s; int8_t y[ST_OUTPUT_SIZE]; int8_t rows[9][ST_OUTPUT_SIZE];\n"
        "    int t, i;\n    st_reset(&s);\n"
        '    for (t = 0; t < 9; ++t) { printf("%d", st_step(&s, x[t], y));'
        ' for (i = 0; i < ST_OUTPUT_SIZE; ++i) printf(" %d", y[i]); printf("\\n"); }\n'
        '    printf("rc %d rows %d\\n", st_run(&s, x, 9, &rows[0][0]), ST_OUTPUT_ROWS(9));\n'
        "    for (t = 0; t < ST_OUTPUT_ROWS(9); ++t) { for (i = 0; i < ST_OUTPUT_SIZE; ++i)"
        ' printf(" %d", rows[t][i]); printf("\\n"); }\n    return 0;\n}\n'
    )
    exe = tmp_path / "probe"
    cc = shutil.which("gcc") or shutil.which("clang") or "cc"
    subprocess.run(
        [
            cc,
            "-std=c99",
            "-O2",
            "-I",
            str(tmp_path / "c"),
            str(src),
            str(tmp_path / "c/st.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split(
        "\n"
    )
    fresh = [int(line.split()[0]) for line in lines[:9]]
    assert fresh == [1, 0, 1, 0, 1, 0, 1, 0, 1]
    xs = np.array(
        [
            [1, 2, 3],
            [4, 5, 6],
            [7, 8, 9],
            [-1, -2, -3],
            [0, 9, 0],
            [5, 5, 5],
            [-9, 0, 9],
            [3, 0, -3],
            [1, 1, 1],
        ],
        dtype=np.int8,
    )
    ref = run_int(q, xs[None])[0]
    got = np.array([[int(v) for v in line.split()[1:]] for line in lines[:9]])
    assert np.array_equal(got, ref)  # held between the new outputs
    assert lines[9] == "rc 0 rows 5"
    rows = np.array([[int(v) for v in line.split()] for line in lines[10:15]])
    assert np.array_equal(rows, ref[::2])


def test_conv_and_pooling_compile_warning_free(tmp_path: Path) -> None:
    need("gcc", "clang")
    keras.utils.set_random_seed(6)
    model = keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.Conv1D(6, 3, dilation_rate=2, padding="causal", activation="tanh"),
            keras.layers.AveragePooling1D(2),
            keras.layers.LSTM(4, return_sequences=True),
            keras.layers.Conv1D(3, 2, strides=2, padding="causal", use_bias=False),
            keras.layers.GRU(5, return_sequences=True),
            keras.layers.Conv1D(4, 2, padding="causal", activation="gelu"),
            keras.layers.Conv1D(3, 2, padding="causal", activation="softmax"),
            keras.layers.MaxPooling1D(3, strides=1),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="sigmoid"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(8, 20, 5)).astype(np.float32)
    export_model(model, x, tmp_path / "a", name="ca", input_quant="per-feature")
    export_model(model, x, tmp_path / "b", name="cb", activations="int16")
    gmax = keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.GlobalMaxPooling1D(),
        ]
    )
    export_model(gmax, x, tmp_path / "g", name="cg", activations="int16")
    same = keras.Sequential(  # whole-sequence: pooling 'same' on int8, then on int16 rows
        [
            keras.Input((None, 5)),
            keras.layers.AveragePooling1D(3, strides=2, padding="same"),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.MaxPooling1D(4, strides=3, padding="same"),
        ]
    )
    export_model(same, x, tmp_path / "s", name="cs", activations="int16", max_length=20)
    for cc in ("gcc", "clang"):
        for opt in ("-O0", "-Os"):
            for src in ("a/ca.c", "b/cb.c", "g/cg.c", "s/cs.c"):
                avx = opt == "-Os" and platform.machine() == "x86_64"
                for extra in ([], ["-mavx2"]) if avx else ([],):
                    subprocess.run(
                        [
                            cc,
                            "-std=c99",
                            opt,
                            *STRICT,
                            *extra,
                            "-c",
                            str(tmp_path / src),
                            "-o",
                            str(tmp_path / "x.o"),
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    )


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            lambda: keras.layers.Conv1D(4, 3, padding="same"),
            "or a Conv1D with padding 'valid' or 'same', so its C runs whole sequences through "
            "<name>_run with buffers in the state; give max_length=N",
        ),
        (
            lambda: keras.layers.Conv1D(4, 3, padding="causal", activation="selu"),
            "activation 'selu' is not supported",
        ),
        (
            lambda: keras.layers.MaxPooling1D(2, padding="same"),
            "pooling with padding 'same' or a Conv1D with padding 'valid' or 'same', so its C "
            "runs whole sequences through <name>_run with buffers in the state; give "
            "max_length=N",
        ),
    ],
)
def test_refusals_say_what_to_do(layer, message: str, tmp_path: Path) -> None:  # noqa: ANN001
    model = keras.Sequential([keras.Input((10, 3)), layer(), keras.layers.GRU(2)])
    x = np.zeros((4, 10, 3), dtype=np.float32) + np.arange(3, dtype=np.float32)
    x[0, 0] = 1.0
    with pytest.raises(ExportError) as e:
        export_model(model, x, tmp_path / "c", name="m")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_keyword_spotting_shape_verify_board_and_size(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Input(T, 40) -> Conv1D(32, 3, strides 2, causal, relu) -> GRU(32) -> Dense(12, softmax)
    through the CLI: export, verify (and a stream), the emulated Cortex-M4 board bit-exact
    at every step, and exact instruction counts on the M4."""
    import json  # noqa: PLC0415

    from rnn2c.cli import main  # noqa: PLC0415
    from tools import need, require_unicorn  # noqa: PLC0415

    model = _kws()
    model.save(tmp_path / "kws.keras")
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(24, 25, 40)).astype(np.float32))
    data = rng.normal(size=(3, 25, 40)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=data, lengths=np.array([25, 12, 7]))
    c = tmp_path / "c"
    assert (
        main(
            [
                "export",
                str(tmp_path / "kws.keras"),
                "--calib",
                str(tmp_path / "calib.npz"),
                "--out",
                str(c),
                "--name",
                "kws",
            ]
        )
        == 0
    )
    rc = main(
        [
            "verify",
            str(tmp_path / "kws.keras"),
            str(c),
            "--data",
            str(tmp_path / "data.npz"),
            "--stream",
            "200",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "C == integer reference       bit-exact" in printed
    assert "stream C == reference        bit-exact" in printed
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    fw = tmp_path / "fw"
    rc = main(
        [
            "firmware",
            str(c),
            "--board",
            "mps2-an386",
            "--data",
            str(tmp_path / "data.npz"),
            "--out",
            str(fw),
            "--run",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact" in printed and " 44 steps" in printed
    require_unicorn()
    out = tmp_path / "size.json"
    for target in ("cortex-m4", "cortex-m3", "cortex-m0plus"):
        argv = ["size", str(c), "--target", target, "--steps", "8", "--sequences", "2"]
        assert main([*argv, "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["bit_exact"], target
        # 2 sequences x 8 steps: the Conv1D and what follows it run at 4 steps of 8
        assert report["macs_per_step"] == (32 * 3 * 40 + 3 * 32 * 64 + 12 * 32) // 2
        # instructions per MAC and the stack against the speed issue's targets (M4 <= 2, M3
        # <= 3, M0+ <= 6; 256 B + 1 B per unit of the widest layer) depend on the compiler:
        # benchmarks/cortex_m_shapes.py checks and prints them. Here what holds whatever it is:
        # all instructions over all MACs done (the MACs per step are exact here)
        assert report["instructions_per_mac"] == pytest.approx(
            report["instructions_mean"] / report["macs_per_step"]
        )
        if target != "cortex-m0plus":  # ARMv6-M divides in the library (__aeabi_idiv)
            assert not report["libraries"], target  # no memcpy for the ring or the window
        header = (c / "kws.h").read_text()
        scratch = int(header.split("#define KWS_SCRATCH_BYTES ")[1].split()[0])
        assert report["stack"] >= scratch  # the header's scratch arrays are on the stack


def random_whole_config(seed: int) -> ConvConfig:
    """A whole-sequence model: a Conv1D with padding 'valid' or 'same' (or a causal one before a
    Bidirectional layer), pooling, recurrent or Bidirectional layers, a head."""
    rng = np.random.default_rng(seed)
    layers: list[tuple] = [_conv(rng, str(rng.choice(["valid", "same", "causal"])))]
    if rng.random() < 0.4:
        layers.append(_pool(rng, str(rng.choice(["valid", "same"]))))
    cell = str(rng.choice(list(CELLS)))
    units = int(rng.integers(1, 9))
    seq = bool(rng.integers(0, 2))
    whole = layers[0][-1] != "causal" or layers[-1][-1] == "same"
    if not whole or rng.random() < 0.4:
        merge = str(rng.choice(["concat", "sum", "ave", "mul"]))
        layers.append(("bidir", cell, units, seq, merge))
    else:
        layers.append(("rec", cell, units, seq))
    if seq and rng.random() < 0.5:
        layers.append(_conv(rng, str(rng.choice(["valid", "same"]))))
    if rng.random() < 0.7:
        layers.append(("dense", int(rng.integers(1, 6)), str(rng.choice(ACTS))))
    return ConvConfig(
        seed=seed,
        features=int(rng.integers(1, 7)),
        steps=int(rng.integers(12, 21)),
        layers=layers,
        activations="int16" if rng.random() < 0.25 else "int8",
        input_quant="per-feature" if rng.random() < 0.25 else "per-tensor",
    )


def random_pool_same_config(seed: int) -> ConvConfig:
    """A whole-sequence model made so by MaxPooling1D / AveragePooling1D with padding 'same'
    (random pool_size, strides, also past the window): an optional Conv1D before it, recurrent
    or Bidirectional layers, optionally a second 'same' pooling over their sequence, a head."""
    rng = np.random.default_rng(seed)
    layers: list[tuple] = []
    if rng.random() < 0.5:
        layers.append(_conv(rng, str(rng.choice(["causal", "valid", "same"]))))
    layers.append(_pool_same(rng))
    cell = str(rng.choice(list(CELLS)))
    units = int(rng.integers(1, 9))
    seq = bool(rng.integers(0, 2))
    if rng.random() < 0.3:
        merge = str(rng.choice(["concat", "sum", "ave", "mul"]))
        layers.append(("bidir", cell, units, seq, merge))
    else:
        layers.append(("rec", cell, units, seq))
    if seq and rng.random() < 0.6:
        layers.append(_pool_same(rng))
    if rng.random() < 0.7:
        layers.append(("dense", int(rng.integers(1, 6)), str(rng.choice(ACTS))))
    return ConvConfig(
        seed=seed,
        features=int(rng.integers(1, 7)),
        steps=int(rng.integers(8, 21)),
        layers=layers,
        activations="int16" if rng.random() < 0.25 else "int8",
        input_quant="per-feature" if rng.random() < 0.25 else "per-tensor",
    )


@pytest.mark.parametrize("seed", range(100, 100 + N_WHOLE))
def test_random_whole_sequence_conv_model(seed: int, tmp_path: Path) -> None:
    """Conv1D 'valid'/'same' (and causal, pooling) in whole-sequence models through <name>_run:
    the float IR is Keras on each sequence cut to its length (every output row), the C run is
    the integer reference bit for bit, int8 close to float."""
    check_whole_model(random_whole_config(seed), tmp_path)


@pytest.mark.parametrize("seed", range(200, 200 + N_WHOLE))
def test_random_pool_same_model(seed: int, tmp_path: Path) -> None:
    """MaxPooling1D / AveragePooling1D with padding 'same' (random pool_size, strides) in
    whole-sequence models: IR vs Keras at random lengths, C vs reference bit for bit, close."""
    cfg = random_pool_same_config(seed)
    assert any(spec[0] == "pool" and spec[-1] == "same" for spec in cfg.layers)
    err = check_whole_model(cfg, tmp_path)
    print(f"{cfg.describe()}: max error vs float {err:.4f}")


def check_whole_model(cfg: ConvConfig, tmp_path: Path) -> float:
    """Export cfg's model with --max-length, check it as the docstrings above say; the max
    error of int8 vs float."""
    from rnn2c.export.layers.bidirectional import run_layers  # noqa: PLC0415

    seed = cfg.seed
    model = build(cfg)
    rng = np.random.default_rng(seed)
    t = cfg.steps
    calib = rng.normal(size=(40, t, cfg.features)).astype(np.float32)
    test = rng.normal(size=(10, t, cfg.features)).astype(np.float32)
    name = f"w{seed}"
    q = export_model(  # calibrated on the test sequences too: the check is the arithmetic
        model,
        np.concatenate([calib, test]),
        tmp_path / "c",
        name=name,
        activations=cfg.activations,
        input_quant=cfg.input_quant,
        max_length=t,
    ).qmodel
    assert q.whole_sequence
    lens = rng.integers(max(q.min_length(), t - 6), t + 1, size=test.shape[0])
    _, ir = read_any(model)
    fl = run_layers(ir.layers, ir.sequence_out, test.astype(np.float64), lens)
    for i in range(test.shape[0]):
        want = np.asarray(model(test[i : i + 1, : lens[i]], training=False))[0]
        if want.ndim == 2:  # a sequence of rows (Keras' length after the Conv1D / pooling)
            got = fl[i, : want.shape[0]]
            assert not fl[i, want.shape[0] :].any()
        else:
            got = fl[i, lens[i] - 1]
        np.testing.assert_allclose(got, want, atol=1e-4, err_msg=cfg.describe())

    # int8 close to float at full length (the calibrated lengths)
    want = np.asarray(model(test, training=False))
    deq = q.output_q.dequantize(run_int(q, q.input_q.quantize(test)))
    deq = deq[:, : want.shape[1]] if want.ndim == 3 else deq[:, -1]
    err = float(np.abs(deq - want).max())
    span = max(1.0, float(want.max() - want.min()))
    assert err <= MAX_ERROR_FRACTION * span, f"{cfg.describe()}: max error {err:.4f}"

    compiled = load_model(tmp_path / "c", name)
    assert compiled.state_size == q.state_bytes() == compiled.declared_state_size
    xq = q.input_q.quantize(test)
    assert np.array_equal(compiled.run(xq, lens), run_int(q, xq, lens)), cfg.describe()
    if q.min_length() > 1:  # too short to give every layer a row
        rc, _ = compiled.run_api(xq[0], q.min_length() - 1)
        assert rc == -1
    return err


def test_too_short_for_the_windows_is_one_line(tmp_path: Path) -> None:
    """A whole-sequence model whose 'valid' windows need 5 steps: calibration or verify data
    shorter than that is refused in one line, and run returns <NAME>_ERROR_LENGTH."""
    from rnn2c.emulator import verify  # noqa: PLC0415

    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [
            keras.Input((None, 2)),
            keras.layers.Conv1D(3, 3, padding="valid"),
            keras.layers.MaxPooling1D(3, strides=1),
            keras.layers.GRU(3),
        ]
    )
    rng = np.random.default_rng(0)
    with pytest.raises(ExportError, match="shorter than the 5 steps") as e:
        export_model(model, rng.normal(size=(4, 4, 2)), tmp_path / "a", max_length=8)
    assert "\n" not in str(e.value)
    q = export_model(model, rng.normal(size=(8, 8, 2)), tmp_path / "b", name="sh", max_length=8)
    assert "#define SH_MIN_LENGTH 5" in (tmp_path / "b" / "sh.h").read_text()
    assert q.qmodel.min_length() == 5
    with pytest.raises(ExportError, match="shorter than the 5 steps"):
        verify(model, tmp_path / "b", rng.normal(size=(3, 4, 2)).astype(np.float32))
    compiled = load_model(tmp_path / "b", "sh")
    assert compiled.run_api(np.zeros((8, 2)), 4)[0] == -1
    assert compiled.run_api(np.zeros((8, 2)), 5)[0] == 0


def test_verify_compares_the_last_output_row_of_fewer_rows(tmp_path: Path) -> None:
    """A whole-sequence model that returns sequences with fewer rows than steps (a 'valid'
    Conv1D): verify without per-step labels compares Keras' last output row with the C's last
    row (not the row at the last step, past the rows), so a faithful export passes."""
    from rnn2c.emulator import verify  # noqa: PLC0415

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(4, 3, padding="valid"),
            keras.layers.GRU(5, return_sequences=True),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(0).normal(size=(20, 10, 3)).astype(np.float32)
    export_model(model, x, tmp_path / "c", name="cv", max_length=10)
    report = verify(model, tmp_path / "c", x)
    assert report.bit_exact and report.passed, report.table()
    assert report.mean_abs_error < 0.01 * report.output_range, report.table()


@pytest.mark.parametrize("activations", ["int8", "int16"])
def test_conv_and_pooling_bit_exact_on_arm_cores(tmp_path: Path, activations: str) -> None:
    """Conv1D (dilated, strided), both windowed poolings and the global average (the divisions)
    on the portable C (M0+, M3) and the DSP path (M4), bit-exact in the emulated cores; and a
    whole-sequence 'same' Conv1D through run."""
    from rnn2c.emulator import size as S  # noqa: PLC0415
    from tools import require_arm_toolchain, require_unicorn  # noqa: PLC0415

    require_arm_toolchain()
    require_unicorn()
    keras.utils.set_random_seed(12)
    L = keras.layers
    stream = keras.Sequential(
        [
            keras.Input((None, 5)),
            L.Conv1D(7, 3, dilation_rate=2, padding="causal", activation="tanh"),
            L.MaxPooling1D(2, strides=1),
            L.GRU(6, return_sequences=True),
            L.Conv1D(5, 2, strides=2, padding="causal", activation="relu"),
            L.AveragePooling1D(2),
            L.GlobalAveragePooling1D(),
            L.Dense(3, activation="softmax"),
        ]
    )
    whole = keras.Sequential(
        [
            keras.Input((None, 5)),
            L.Conv1D(6, 3, strides=2, padding="same"),
            L.LSTM(4, return_sequences=True),
            L.Dense(2),
        ]
    )
    x = np.random.default_rng(1).normal(size=(8, 12, 5)).astype(np.float32)
    export_model(stream, x, tmp_path / "s", name="st", activations=activations)
    export_model(whole, x, tmp_path / "w", name="wh", activations=activations, max_length=12)
    for target in ("cortex-m0plus", "cortex-m3", "cortex-m4"):
        assert S.measure(tmp_path / "s", target, sequences=2, steps=12).bit_exact, target
    assert S.measure(tmp_path / "w", "cortex-m4", sequences=2, steps=12).bit_exact


#: the Dense activation variants (Keras' swish is silu)
X_ACTS = ("leaky_relu", "elu", "silu", "swish", "gelu", "softplus")


@pytest.mark.parametrize("seed", range(6))
def test_conv_activation_variants(seed: int, tmp_path: Path) -> None:
    """Property-style: Conv1D with the Dense activation variants (causal streaming with strides
    and dilation, or 'same'/'valid' in a whole-sequence model; int8 and int16 inputs): the C is
    the integer reference bit for bit, and int8 is close to float Keras."""
    rng = np.random.default_rng(700 + seed)
    act = X_ACTS[seed % len(X_ACTS)]
    padding = "causal" if seed < 4 else ("same", "valid")[seed % 2]
    conv = list(_conv(rng, padding))
    conv[5] = act
    cfg = ConvConfig(
        seed=700 + seed,
        features=int(rng.integers(1, 9)),
        steps=int(rng.integers(10, 20)),
        layers=[tuple(conv)],
    )
    if seed % 2:  # an int16 recurrent state into a second Conv1D
        cfg.activations = "int16"
        cfg.layers = [("rec", "gru", int(rng.integers(2, 9)), True), tuple(conv)]
    cfg.layers += [("rec", "gru", int(rng.integers(2, 9)), False), ("dense", 3, "linear")]
    model = build(cfg)
    t = cfg.steps
    calib = rng.normal(size=(40, t, cfg.features)).astype(np.float32)
    test = rng.normal(size=(16, t, cfg.features)).astype(np.float32)
    whole = padding != "causal"
    q = export_model(
        model,
        np.concatenate([calib, test]),
        tmp_path / "c",
        name=f"x{seed}",
        activations=cfg.activations,
        max_length=t if whole else None,
    ).qmodel
    assert any(getattr(ql, "x_act", None) is not None for ql in q.layers), cfg.describe()
    compiled = load_model(tmp_path / "c", f"x{seed}")
    assert compiled.state_size == q.state_bytes() == compiled.declared_state_size
    xq = q.input_q.quantize(test)
    lens = rng.integers(max(q.min_length(), t - 5), t + 1, size=xq.shape[0])
    assert np.array_equal(compiled.run(xq, lens), run_int(q, xq, lens)), cfg.describe()
    if not whole:
        stream = xq[:3].reshape(-1, cfg.features)
        assert np.array_equal(compiled.stream(stream), run_int(q, stream[None])[0])
    deq = q.output_q.dequantize(run_int(q, xq)[:, -1])
    want = keras_last(model, test)
    span = max(1.0, float(want.max() - want.min()))
    err = float(np.abs(deq - want).max())
    assert err <= MAX_ERROR_FRACTION * span, f"{cfg.describe()}: max error {err:.4f}"
    print(f"{act} {padding}: max error {err:.4f} of span {span:.3f}")
