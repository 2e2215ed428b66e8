"""Models with several inputs: sensor streams [batch, time, F_k] over the same steps, one branch
each, meeting in a merge (graph.read_inputs). The model input is the inputs' rows side by side;
<name>_step takes one array per input, <name>_run the rows side by side.

The issue's model (an IMU and a pressure sensor, a GRU each, Concatenate, Dense softmax) and
random configurations (2-3 inputs, GRU/LSTM/SimpleRNN/Dense branches, Add/Concatenate, per-tensor
and per-feature input quantization): float IR == Keras, C == integer reference bit for bit
through step and run, close to Keras; data in both .npz forms; the refusals; a board run; the
header's API compiled warning-free and used from C; the single-input API as before.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from seq2seq_keras import build as build_seq2seq
from test_generated_c import COMPILERS, STRICT

from rnn2c.cli import main
from rnn2c.emulator import load_model
from rnn2c.emulator.verify import float_outputs
from rnn2c.export import ExportError, export_model, serialize
from rnn2c.export.api import model_fingerprint, read_any
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import run_int
from rnn2c.export.seq2seq import is_seq2seq
from tools import need, require_arm_toolchain, require_unicorn

L = keras.layers
CELLS = {"gru": L.GRU, "lstm": L.LSTM, "rnn": L.SimpleRNN}
MAX_ERROR_FRACTION = 0.1  # of the float output range (at least 1.0 wide), as for graphs


def sensor_model(seed: int = 0) -> keras.Model:
    """The issue's model: a 6-channel IMU and a 2-channel pressure sensor, a GRU each,
    Concatenate, Dense softmax."""
    keras.utils.set_random_seed(seed)
    imu = keras.Input((None, 6), name="imu")
    pressure = keras.Input((None, 2), name="pressure")
    x = L.Concatenate()([L.GRU(8)(imu), L.GRU(4)(pressure)])
    return keras.Model([imu, pressure], L.Dense(3, activation="softmax")(x), name="sensors")


def sensor_data(n: int, t: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """IMU readings around 0 and pressure readings of another range (each its own scale)."""
    rng = np.random.default_rng(seed)
    imu = rng.normal(size=(n, t, 6)).astype(np.float32)
    pressure = (rng.normal(size=(n, t, 2)) * 4.0 + 6.0).astype(np.float32)
    return imu, pressure


def keras_last(model: keras.Model, parts: list[np.ndarray]) -> np.ndarray:
    y = np.asarray(model(parts, training=False))
    return y[:, -1] if y.ndim == 3 else y


@pytest.fixture(scope="module")
def sensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sensor model saved, its calibration (an array per input) and test data (x side by
    side, labels, lengths), exported through the CLI."""
    d = tmp_path_factory.mktemp("sensors")
    model = sensor_model()
    model.save(d / "m.keras")
    imu, pressure = sensor_data(60)
    np.savez(d / "calib.npz", imu=imu[:30], pressure=pressure[:30])
    x = np.concatenate([imu[30:], pressure[30:]], axis=-1)
    lengths = np.random.default_rng(1).integers(4, 13, size=30)
    y = float_outputs(model, x, lengths).argmax(-1)  # the float model's own answers
    np.savez(d / "test.npz", x=x, y=y, lengths=lengths)
    argv = ["export", str(d / "m.keras"), "--calib", str(d / "calib.npz"), "--out", str(d / "c")]
    assert main([*argv, "--name", "sens"]) == 0
    return d


def test_sensor_model_exports_verifies_and_runs_bit_exact(sensors: Path, capsys) -> None:  # noqa: ANN001
    """export names the inputs; verify passes (C bit-exact with the integer reference at every
    step, close to Keras); step (the harness) and run (<name>_run) equal the reference."""
    d = sensors
    argv = ["verify", str(d / "m.keras"), str(d / "c"), "--data", str(d / "test.npz")]
    rc = main([*argv, "--stream", "300"])  # also one stream of 300 steps without reset
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("bit-exact") == 2 and out.rstrip().endswith("PASS")
    q = serialize.load(d / "c" / "sens_qmodel.npz")
    assert q.input_names == ["imu", "pressure"] and q.input_sizes == [6, 2]
    test = np.load(d / "test.npz")
    xq = q.quantize_input(test["x"])
    c = load_model(d / "c", "sens")
    assert c.input_size == 8
    assert np.array_equal(c.run(xq, test["lengths"]), run_int(q, xq, test["lengths"]))
    ref = run_int(q, xq)
    for i in range(4):
        code, y = c.run_api(xq[i])
        assert code == 0 and np.array_equal(y[0], ref[i, -1])
    _, ir = read_any(d / "m.keras")
    model = keras.saving.load_model(d / "m.keras")
    fl, _ = observe_model(ir, test["x"])
    want = keras_last(model, [test["x"][..., :6], test["x"][..., 6:]])
    np.testing.assert_allclose(fl[:, -1], want, atol=1e-5)
    err = np.abs(q.output_q.dequantize(ref[:, -1]) - want).max()
    assert err < 0.05


def test_export_summary_and_header(sensors: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The summary names the inputs; the header gives one array per input to step, each
    input's size, offset, scale and zero point (its own: two sensors never share a range);
    per-feature gives arrays per input instead."""
    d = sensors
    argv = ["export", str(d / "m.keras"), "--calib", str(d / "calib.npz"), "--name", "sens"]
    assert main([*argv, "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "inputs: imu (6 features), pressure (2 features)" in out
    h = (d / "c" / "sens.h").read_text()
    step = re.search(r"void sens_step\((.*?)\);", h, re.S)
    assert step is not None
    params = [" ".join(p.split()) for p in step.group(1).split(",")]
    assert params == [
        "sens_state_t *state",
        "const int8_t imu[SENS_IMU_SIZE]",
        "const int8_t pressure[SENS_PRESSURE_SIZE]",
        "int8_t output[SENS_OUTPUT_SIZE]",
    ]
    for macro in ("INPUT_COUNT 2", "IMU_SIZE 6", "IMU_OFFSET 0", "PRESSURE_SIZE 2"):
        assert f"#define SENS_{macro} " in h
    assert "#define SENS_PRESSURE_OFFSET 6 " in h and "#define SENS_INPUT_SIZE 8 " in h
    assert "SENS_INPUT_SCALE" not in h  # no one scale for two sensors
    q = serialize.load(d / "c" / "sens_qmodel.npz")
    scale = np.asarray(q.input_q.scale)
    assert (scale[:6] == scale[0]).all() and (scale[6:] == scale[6]).all()
    assert scale[0] != scale[6]
    imu_scale = float(re.search(r"#define SENS_IMU_SCALE (\S+)f", h).group(1))
    assert imu_scale == pytest.approx(scale[0], rel=1e-6)
    assert "static inline void sens_quantize_pressure(const float x[SENS_PRESSURE_SIZE]," in h
    manifest = (d / "c" / "rnn2c.json").read_text()
    assert '"name": "pressure"' in manifest
    argv = [*argv, "--input-quant", "per-feature", "--out", str(tmp_path / "pf")]
    assert main(argv) == 0
    hp = (tmp_path / "pf" / "sens.h").read_text()
    assert "#define SENS_IMU_SCALES {" in hp and "#define SENS_PRESSURE_ZERO_POINTS {" in hp
    assert "SENS_IMU_SCALE " not in hp and "#define SENS_INPUT_PER_FEATURE 1" in hp
    for cc in COMPILERS:  # both quantizations' C, strict flags
        for sub in ("c", "pf"):
            src = tmp_path / sub / "sens.c"
            cmd = [cc, "-std=c99", "-O2", *STRICT, "-c", str(src), "-o", str(src) + f".{cc}.o"]
            subprocess.run(cmd, check=True, capture_output=True, text=True)


def random_multi(seed: int) -> tuple[keras.Model, str, list[int]]:
    """2-3 inputs, a GRU/LSTM/SimpleRNN/Dense branch each, merged by Add or Concatenate, then
    a recurrent layer and/or a softmax head; (model, description, feature counts)."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    k = int(rng.integers(2, 4))
    sizes = [int(rng.integers(1, 6)) for _ in range(k)]
    names = ["accel.xyz", "Gyro", "p_3"][:k]  # made C names: accel_xyz, gyro, p_3
    ins = [keras.Input((None, f), name=n) for n, f in zip(names, sizes, strict=True)]
    op = ("add", "concat")[seed % 2]
    width = int(rng.integers(2, 8))
    desc = [f"s{seed}-{op}-F{sizes}"]
    branches = []
    for i, inp in enumerate(ins):
        kind = str(rng.choice(["gru", "lstm", "rnn", "dense"])) if i else ("gru", "lstm")[seed % 2]
        units = width if op == "add" else int(rng.integers(1, 8))
        desc.append(f"{kind}{units}")
        if kind == "dense":
            act = str(rng.choice(["linear", "tanh", "relu"]))
            branches.append(L.Dense(units, activation=act)(inp))
        else:
            branches.append(CELLS[kind](units, return_sequences=True)(inp))
    x = L.Add()(branches) if op == "add" else L.Concatenate()(branches)
    last = str(rng.choice(["gru", "lstm-dense", "dense"]))
    desc.append(last)
    if last.startswith("lstm"):
        x = L.LSTM(int(rng.integers(2, 6)))(x)
    if last == "gru":
        x = L.GRU(int(rng.integers(2, 6)), return_sequences=bool(seed % 3))(x)
    else:
        x = L.Dense(int(rng.integers(2, 5)), activation="softmax")(x)
    model = keras.Model(ins, x, name=f"m{seed}")
    for layer in model.layers:  # non-zero biases, so the bias paths are exercised
        w = layer.get_weights()
        if w and w[-1].ndim == 1:
            w[-1] = rng.normal(0, 0.3, size=w[-1].shape).astype(np.float32)
            layer.set_weights(w)
    return model, "-".join(desc), sizes


@pytest.mark.parametrize("seed", range(6))
def test_random_configurations_bit_exact_and_close(seed: int, tmp_path: Path) -> None:
    model, desc, sizes = random_multi(seed)
    rng = np.random.default_rng(seed)
    steps = int(rng.integers(3, 12))
    scales = rng.choice([0.3, 1.0, 3.0], size=len(sizes))
    parts = [
        (rng.normal(size=(48, steps, f)) * s + rng.normal()).astype(np.float32)
        for f, s in zip(sizes, scales, strict=True)
    ]
    calib, test = [p[:32] for p in parts], [p[32:] for p in parts]
    input_quant = ("per-tensor", "per-feature")[(seed // 2) % 2]
    activations = "int16" if seed == 5 else "int8"
    res = export_model(
        model, calib, tmp_path, name="mi", input_quant=input_quant, activations=activations
    )
    q = res.qmodel
    assert q.input_sizes == sizes, desc
    if input_quant == "per-tensor":  # one scale and zero point per input
        for lo, f in zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True):
            assert len(set(np.ravel(q.input_q.scale)[lo : lo + f])) == 1, desc
    h = (tmp_path / "mi.h").read_text()
    assert "const int8_t accel_xyz[MI_ACCEL_XYZ_SIZE]," in h and "MI_GYRO_OFFSET" in h

    _, ir = read_any(model)
    x = np.concatenate(test, axis=-1)
    want = keras_last(model, test)
    fl, _ = observe_model(ir, x)
    np.testing.assert_allclose(fl[:, -1], want, atol=1e-4, err_msg=desc)

    compiled = load_model(tmp_path, "mi")
    xq = q.quantize_input(x)
    extreme = np.stack([np.full(xq.shape[1:], v, np.int8) for v in (-128, 127)])
    xq = np.concatenate([xq, extreme])
    lengths = rng.integers(1, steps + 1, size=xq.shape[0])
    for lens in (None, lengths):  # through <name>_step, one array per input
        assert np.array_equal(compiled.run(xq, lens), run_int(q, xq, lens)), desc
    ref = run_int(q, xq)
    rows = steps if q.returns_sequences else 1
    for i in range(3):  # through <name>_run, the rows side by side
        code, y = compiled.run_api(xq[i], out_rows=rows)
        assert code == 0 and np.array_equal(y[-1], ref[i, -1]), desc

    deq = q.output_q.dequantize(ref[: len(want), -1])
    span = max(1.0, float(want.max() - want.min()))
    err = float(np.abs(deq - want).max())
    assert err <= MAX_ERROR_FRACTION * span, f"{desc}: max error {err:.4f}"


def test_data_in_both_npz_forms(sensors: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """--calib with x side by side gives the export an array per input gives; verify takes an
    array per input too; anything else is one line naming the expected arrays and shapes."""
    d = sensors
    calib = np.load(d / "calib.npz")
    np.savez(tmp_path / "x.npz", x=np.concatenate([calib["imu"], calib["pressure"]], axis=-1))
    argv = ["export", str(d / "m.keras"), "--name", "sens", "--out", str(tmp_path / "c")]
    assert main([*argv, "--calib", str(tmp_path / "x.npz")]) == 0
    for f in ("sens.c", "sens.h", "sens_qmodel.npz"):
        assert (tmp_path / "c" / f).read_bytes() == (d / "c" / f).read_bytes(), f
    test = np.load(d / "test.npz")
    x = test["x"]
    np.savez(tmp_path / "t.npz", imu=x[..., :6], pressure=x[..., 6:], lengths=test["lengths"])
    capsys.readouterr()
    rc = main(["verify", str(d / "m.keras"), str(d / "c"), "--data", str(tmp_path / "t.npz")])
    assert rc == 0 and "PASS" in capsys.readouterr().out
    expect = "imu [N, T, 6], pressure [N, T, 2] takes one array per input"
    bad = {
        "missing": {"imu": calib["imu"]},
        "shape": {"imu": calib["imu"], "pressure": calib["imu"]},
        "x": {"x": calib["imu"]},
    }
    for key, arrays in bad.items():
        np.savez(tmp_path / f"{key}.npz", **arrays)
        out = tmp_path / f"o{key}"
        assert main([*argv[:-1], str(out), "--calib", str(tmp_path / f"{key}.npz")]) == 2
        err = capsys.readouterr().err
        assert expect in err and "x [N, T, 8]" in err and err.count("\n") == 1, err
        assert not out.exists()


def test_refusals(tmp_path: Path) -> None:
    """Inputs of different lengths, an input no layer reads, a non-sequence input, a token
    input among three, unusable or clashing C names, and the graph reader's own refusals, each
    in one line before anything is written."""
    a, b = keras.Input((10, 3), name="a"), keras.Input((12, 2), name="b")
    cases = [
        (
            keras.Model([a, b], L.Dense(2)(L.Concatenate()([L.GRU(2)(a), L.GRU(2)(b)]))),
            "input 'a' has 10 steps and input 'b' 12; the inputs share one time axis",
        ),
    ]
    a, b, c = (keras.Input((None, 3), name=n) for n in ("a", "b", "c"))
    cases.append(
        (
            keras.Model([a, b, c], L.Add()([L.GRU(2)(a), L.GRU(2)(b)])),
            "no layer on the way to the output reads its input 'c'",
        )
    )
    flat = keras.Input((3,), name="flat")
    cases.append(
        (
            keras.Model([a, flat], L.Concatenate()([L.GRU(2)(a), L.Dense(2)(flat)])),
            "input 'flat' has shape (None, 3); each input of a model with several inputs must be a "
            "sequence [batch, time, features]",
        )
    )
    ids = keras.Input((None,), dtype="int32", name="ids")
    emb = L.GRU(2)(L.Embedding(9, 3)(ids))
    cases.append(
        (
            keras.Model([a, b, ids], L.Concatenate()([L.GRU(2)(a), L.GRU(2)(b), emb])),
            "input 'ids' is [batch, time] (token ids)",
        )
    )
    bi = L.Bidirectional(L.GRU(2, return_sequences=True))(b)
    cases.append(
        (
            keras.Model(
                [a, b], L.GRU(2)(L.Concatenate()([L.GRU(2, return_sequences=True)(a), bi]))
            ),
            "a whole-sequence layer (Bidirectional) in a graph of branches is not supported",
        )
    )
    out = keras.Input((None, 3), name="Output")
    cases.append(
        (
            keras.Model([a, out], L.Add()([L.GRU(2)(a), L.GRU(2)(out)])),
            "input 'Output' gives the C name 'output', which clashes",
        )
    )
    dash, under = keras.Input((None, 3), name="acc-x"), keras.Input((None, 3), name="acc_x")
    cases.append(
        (
            keras.Model([dash, under], L.Add()([L.GRU(2)(dash), L.GRU(2)(under)])),
            "inputs 'acc-x' and 'acc_x' both give the C name 'acc_x'",
        )
    )
    m = L.Masking(0.0)(b)
    cases.append(
        (
            keras.Model([a, b], L.Add()([L.GRU(2)(a), L.GRU(2)(m)])),
            "a Masking layer in a model with several inputs is not supported",
        )
    )
    for model, message in cases:
        steps = model.inputs[0].shape[1] or 10
        calib = [
            np.zeros((4, steps, *[v or 1 for v in t.shape[2:]]), np.float32) for t in model.inputs
        ]
        with pytest.raises(ExportError) as info:
            export_model(model, calib, tmp_path / "out", name="m")
        assert message in str(info.value) and "\n" not in str(info.value)
        assert not (tmp_path / "out").exists()


def test_seq2seq_routing_only_for_encoder_decoders() -> None:
    """Two sensor streams are not sent to the seq2seq reader; a real encoder-decoder is, and a
    malformed one (no initial_state) still gets the seq2seq pattern's message."""
    assert not is_seq2seq(sensor_model())
    assert is_seq2seq(build_seq2seq(tokens=False))
    x_in = keras.Input((None, 3))
    d_in = keras.Input((None,), dtype="int32")
    seq, _ = L.GRU(6, return_sequences=True, return_state=True)(x_in)
    dec = L.GRU(6, return_sequences=True)(L.Embedding(9, 4)(d_in))
    out = L.Dense(9)(L.Concatenate()([dec, L.Attention()([dec, seq])]))
    with pytest.raises(ExportError, match="must start from the encoder's states"):
        read_any(keras.Model([x_in, d_in], out))


def test_fingerprint_holds_the_input_split() -> None:
    """The same layers and weights over inputs of 3 + 5 or 5 + 3 features are two models."""
    keras.utils.set_random_seed(0)
    gru, head = L.GRU(4), L.Dense(2)
    irs = []
    for f in ((3, 5), (5, 3)):
        a, b = keras.Input((None, f[0]), name="a"), keras.Input((None, f[1]), name="b")
        irs.append(read_any(keras.Model([a, b], head(gru(L.Concatenate()([a, b])))))[1])
    assert irs[0].inputs == irs[1].inputs
    assert model_fingerprint(irs[0]) != model_fingerprint(irs[1])


@pytest.mark.skipif(not COMPILERS, reason="no C compiler")
@pytest.mark.parametrize("cc", COMPILERS)
def test_c_api_from_user_code(sensors: Path, tmp_path: Path, cc: str) -> None:
    """The generated C compiles warning-free with the strict flags; a C program calling
    <name>_quantize_<input> and <name>_step with one array per input, and <name>_run with the
    rows side by side, gets the integer reference's outputs (and the Python quantizer's ints)."""
    d = sensors / "c"
    test = np.load(sensors / "test.npz")["x"][:2, :5]
    prog = tmp_path / "user.c"
    rows = ",\n".join(
        "{" + ", ".join(f"{v:.9g}f" for v in step) + "}" for seq in test for step in seq
    )
    prog.write_text(
        f"""#include <stdio.h>
#include "sens.h"
static const float xs[10][SENS_INPUT_SIZE] = {{ {rows} }};
int main(void)
{{
    sens_state_t state;
    int8_t imu[SENS_IMU_SIZE], pressure[SENS_PRESSURE_SIZE], out[SENS_OUTPUT_SIZE];
    int8_t rows[5][SENS_INPUT_SIZE];
    int s, t, i;
    for (s = 0; s < 2; ++s) {{
        sens_reset(&state);
        for (t = 0; t < 5; ++t) {{
            sens_quantize_imu(xs[s * 5 + t] + SENS_IMU_OFFSET, imu);
            sens_quantize_pressure(xs[s * 5 + t] + SENS_PRESSURE_OFFSET, pressure);
            sens_quantize_input(xs[s * 5 + t], rows[t]);
            sens_step(&state, imu, pressure, out);
            for (i = 0; i < SENS_INPUT_SIZE; ++i) printf("q %d\\n", rows[t][i]);
            for (i = 0; i < SENS_OUTPUT_SIZE; ++i) printf("step %d\\n", out[i]);
        }}
        if (sens_run(&state, (const int8_t(*)[SENS_INPUT_SIZE])rows, 5, out) != 0) return 1;
        for (i = 0; i < SENS_OUTPUT_SIZE; ++i) printf("run %d\\n", out[i]);
    }}
    return 0;
}}
"""
    )
    exe = tmp_path / "user"
    flags = ["-std=c99", "-O2", *STRICT]
    subprocess.run(
        [cc, *flags, "-I", str(d), str(d / "sens.c"), str(prog), "-o", str(exe)],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    got = {
        k: [int(v) for k2, v in zip(lines[::2], lines[1::2], strict=True) if k2 == k]
        for k in ("q", "step", "run")
    }
    q = serialize.load(d / "sens_qmodel.npz")
    xq = q.quantize_input(test)
    ref = run_int(q, xq)
    assert got["q"] == xq.reshape(-1).tolist()
    assert got["step"] == ref.reshape(-1).tolist()
    assert got["run"] == ref[:, -1].reshape(-1).tolist()


def test_firmware_run_on_a_board(sensors: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """rnn2c firmware replays the test rows (side by side) through <name>_step with one array
    per input on an emulated Cortex-M4: bit-exact with the host."""
    require_arm_toolchain()
    need("qemu-system-arm", "make")
    d = sensors
    argv = ["firmware", str(d / "m.keras"), "--calib", str(d / "calib.npz")]
    argv += ["--board", "mps2-an386", "--out", str(tmp_path / "fw"), "--name", "sens"]
    rc = main([*argv, "--data", str(d / "test.npz"), "--sequences", "2", "--run"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "bit-exact at every step" in out and out.rstrip().endswith("PASS")
    main_c = (tmp_path / "fw" / "main.c").read_text()
    assert "sens_step(&fw_state, x + 0, x + 6, fw_output);" in main_c


def test_size_counts_three_inputs(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """rnn2c size calls <name>_step with three input pointers (the fifth argument on the stack)
    in the emulated Cortex-M4; its outputs equal the reference's."""
    require_arm_toolchain()
    require_unicorn()
    model, _, sizes = random_multi(2)
    assert len(sizes) == 3
    calib = [np.random.default_rng(0).normal(size=(8, 6, f)).astype(np.float32) for f in sizes]
    export_model(model, calib, tmp_path / "c", name="tri")
    rc = main(["size", str(tmp_path / "c"), "--target", "cortex-m4"])
    out = capsys.readouterr().out
    assert rc == 0, out  # exit 0 only when the ARM outputs equal the reference
    assert re.search(r"ARM output == int reference\s+bit-exact", out), out


def test_single_input_api_unchanged(tmp_path: Path) -> None:
    """One input, chain or graph: step keeps its one input array, the scalar input scale and
    quantize_input; nothing of the multi-input API appears."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 3))
    models = {
        "chain": keras.Sequential([inp, L.GRU(4), L.Dense(2)]),
        "graph": keras.Model(inp, L.Add()([L.GRU(4, return_sequences=True)(inp), L.Dense(4)(inp)])),
    }
    x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype(np.float32)
    for key, model in models.items():
        res = export_model(model, x, tmp_path / key, name="one")
        assert not res.qmodel.input_sizes and "inputs" not in res.manifest
        h = (tmp_path / key / "one.h").read_text()
        c = (tmp_path / key / "one.c").read_text()
        sig = "void one_step(one_state_t *state, const int8_t input[ONE_INPUT_SIZE],"
        assert sig in h and sig in c
        assert "#define ONE_INPUT_SCALE " in h and "one_quantize_input(const float x[" in h
        assert "INPUT_COUNT" not in h and "_OFFSET" not in h
        assert "one_step(state, input[t], output" in c


def test_bench_refuses_several_inputs(sensors: Path, capsys) -> None:  # noqa: ANN001
    """bench's peers convert one-input graphs: a multi-input model is refused in one line."""
    d = sensors
    argv = ["bench", str(d / "m.keras"), "--calib", str(d / "calib.npz")]
    assert main([*argv, "--data", str(d / "test.npz")]) == 2
    err = capsys.readouterr().err
    assert "rnn2c bench does not take models with several inputs" in err
    assert err.count("\n") == 1
