"""int4 weights (`--weights int4`, `--keep-int8`): the quantizer's rows, the nibble layout, and
exported models bit-exact with the integer reference on the host, on emulated Cortex-M0+, M3, M4
and on rv32imc; bad values refused with one line.

The kernels themselves (portable, x86, the DSP assembly) are held to the reference kernel in
tests/test_kernels.py."""

from __future__ import annotations

import platform
from pathlib import Path

import keras
import numpy as np
import pytest
from seq2seq_keras import build as build_seq2seq
from seq2seq_keras import data as seq2seq_data

from models import build, random_config
from rnn2c.cli import main
from rnn2c.emulator import load_model
from rnn2c.emulator import size as S
from rnn2c.emulator.build import DEFAULT_FLAGS
from rnn2c.export import ExportError, export_model
from rnn2c.export.quant_rules import NIBBLE_COLUMNS, pack_nibbles, quantize_rows, weight_bits
from rnn2c.export.reference import run_int
from tools import need, require_arm_toolchain, require_riscv_toolchain, require_unicorn


def unpack_nibbles(packed: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The inverse of pack_nibbles, as the kernels read it: nibble k of a row's word (two's
    complement) is column NIBBLE_COLUMNS[k] of its 8."""
    words = np.frombuffer(packed.tobytes(), dtype="<u4").reshape(-1, rows).T  # [R, pairs]
    out = np.zeros((rows, 8 * words.shape[1]), dtype=np.int64)
    for k, c in enumerate(NIBBLE_COLUMNS):
        nib = ((words >> np.uint32(4 * k)) & np.uint32(15)).astype(np.int64)
        out[:, c::8] = np.where(nib >= 8, nib - 16, nib)
    return out[:, :cols]


@pytest.mark.parametrize("seed", range(6))
def test_nibbles_round_trip(seed: int) -> None:
    """Random passes (odd group counts, 1..6 rows, the ends -8 and 7): every weight is read
    back at its column; a word per row per 8 columns (an odd last group: a word of its own)."""
    rng = np.random.default_rng(seed)
    rows, groups = int(rng.integers(1, 7)), int(rng.integers(0, 8))
    w = rng.integers(-8, 8, size=(rows, 4 * groups))
    w[rng.random(size=w.shape) < 0.2] = -8
    w[rng.random(size=w.shape) < 0.2] = 7
    packed = pack_nibbles(w)
    assert packed.dtype == np.int8 and packed.size == 4 * rows * -(-groups // 2)
    np.testing.assert_array_equal(unpack_nibbles(packed, rows, 4 * groups), w)


def test_int4_rows_are_symmetric_per_row() -> None:
    """-7..7, one scale per row: each row's largest |weight| is 7, and the row's dequantized
    weights are within half a step of the real ones."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(9, 13)) * rng.uniform(0.01, 3.0, size=(9, 1))
    with weight_bits(4):
        fc = quantize_rows(
            w, np.zeros(9), np.zeros(13, int), np.full(13, 128), 1 / 4096, 1 << 15, "t"
        )
    q = fc.weight.astype(np.int64)
    assert np.abs(q).max(axis=1).tolist() == [7] * 9
    scale = np.abs(w).max(axis=1) / 7
    assert np.all(np.abs(q * scale[:, None] - w) <= 0.5 * scale[:, None] + 1e-12)
    fc8 = quantize_rows(w, np.zeros(9), np.zeros(13, int), np.full(13, 128), 1 / 4096, 1 << 15, "t")
    assert np.abs(fc8.weight.astype(int)).max() == 127  # the default is unchanged


def _check_host(out: Path, name: str, q, xq: np.ndarray) -> None:  # noqa: ANN001
    compiled = load_model(out, name)
    ref = run_int(q, xq)
    assert np.array_equal(compiled.run(xq), ref), "C != reference"
    if platform.machine() in ("x86_64", "AMD64"):
        vec = load_model(out, name, flags=(*DEFAULT_FLAGS, "-mavx2", "-mno-avx512f"))
        assert np.array_equal(vec.run(xq), ref), "AVX2 C != reference"


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 8])
def test_random_int4_models_bit_exact_on_host(seed: int, tmp_path: Path) -> None:
    """Random GRU (both variants) / LSTM / SimpleRNN stacks with Dense heads: every such layer
    int4 (-7..7), the weight bytes about halved, the C equal to the reference."""
    cfg = random_config(seed)
    model = build(cfg)
    rng = np.random.default_rng(seed)
    calib = rng.normal(size=(32, cfg.steps, cfg.features)).astype(np.float32)
    int8 = export_model(model, calib, tmp_path / "c8", name="m").qmodel
    res = export_model(model, calib, tmp_path / "c", name="m", weights="int4")
    q = res.qmodel
    for layer in q.layers:
        assert layer.weight_bits == 4, (cfg.describe(), layer.name)
        assert np.abs(layer.fc.weight.astype(int)).max() <= 7
    assert q.weight_bytes() < int8.weight_bytes()
    xq = q.input_q.quantize(rng.normal(size=(8, cfg.steps, cfg.features)))
    _check_host(tmp_path / "c", "m", q, xq)


def _every_kind() -> keras.Model:
    keras.utils.set_random_seed(13)
    return keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.SimpleRNN(6, return_sequences=True, name="rnn"),
            keras.layers.GRU(7, return_sequences=True, reset_after=False, name="gru_rb"),
            keras.layers.GRU(5, return_sequences=True, name="gru"),
            keras.layers.LSTM(9, return_sequences=True, name="lstm"),
            keras.layers.Dense(11, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="head"),
        ]
    )


def test_int4_bit_exact_on_cortex_m_and_riscv(tmp_path: Path) -> None:
    """Every int4 layer kind through the DSP assembly (M4), the ARMv6-M assembly (M0+), the C
    (M3) and the RV32IM assembly (rv32imc), -O2, bit-exact in unicorn (the other builds:
    tests/test_kernels.py); the size report gives the weight bytes against int8's."""
    require_arm_toolchain()
    require_unicorn()
    x = np.random.default_rng(4).normal(size=(8, 10, 5)).astype(np.float32)
    export_model(_every_kind(), x, tmp_path / "c", name="every", weights="int4")
    for target, opt in (("cortex-m0plus", "O2"), ("cortex-m3", "O2"), ("cortex-m4", "O2")):
        r = S.measure(tmp_path / "c", target, opt, sequences=2, steps=5)
        assert r.bit_exact, target
        assert 0 < r.weight_bytes < r.weight_bytes_int8 <= 2 * r.weight_bytes + 64
        assert "int4 saves" in r.table()
    require_riscv_toolchain()
    r = S.measure(tmp_path / "c", "rv32imc", "O2", sequences=2, steps=5)
    assert r.bit_exact


def test_keep_int8_by_name_and_kind(tmp_path: Path) -> None:
    x = np.random.default_rng(5).normal(size=(8, 10, 5)).astype(np.float32)
    model = _every_kind()
    res = export_model(model, x, tmp_path / "a", name="m", weights="int4", keep_int8="head,lstm")
    bits = {layer.name: layer.weight_bits for layer in res.qmodel.layers}
    assert bits == {"rnn": 4, "gru_rb": 4, "gru": 4, "lstm": 8, "hidden": 4, "head": 8}
    res = export_model(model, x, tmp_path / "b", name="m", weights="int4", keep_int8=["dense"])
    bits = {layer.name: layer.weight_bits for layer in res.qmodel.layers}
    assert bits == {"rnn": 4, "gru_rb": 4, "gru": 4, "lstm": 4, "hidden": 8, "head": 8}
    q = res.qmodel
    xq = q.input_q.quantize(x)
    _check_host(tmp_path / "b", "m", q, xq)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--weights", "int5"], "invalid choice: 'int5'"),
        (["--weights", "int4", "--keep-int8", "nosuch"], "'nosuch' is neither a layer"),
        (["--keep-int8", "head"], "--keep-int8 names layers to keep int8 under --weights int4"),
    ],
)
def test_bad_weight_flags_exit_2(tmp_path: Path, capsys, flags: list[str], says: str) -> None:  # noqa: ANN001
    model_path = tmp_path / "m.keras"
    _every_kind().save(model_path)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(6).normal(size=(4, 6, 5)).astype(np.float32))
    out = tmp_path / "out"
    try:
        code = main(["export", str(model_path), "--calib", str(calib), "--out", str(out), *flags])
    except SystemExit as e:  # argparse's refusal
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_api_rejects_unknown_weight_type(tmp_path: Path) -> None:
    x = np.zeros((2, 3, 5), dtype=np.float32)
    with pytest.raises(ExportError, match="unknown weight type 'int2'"):
        export_model(_every_kind(), x, tmp_path / "c", weights="int2")
    assert not (tmp_path / "c").exists()


def test_conv1d_keeps_int8_with_a_note(tmp_path: Path) -> None:
    """A Conv1D has no int4 kernel: it stays int8 (the export's note says so), the GRU and Dense
    after it are int4, and the C is the reference."""
    keras.utils.set_random_seed(14)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(4, 3, padding="causal", name="conv"),
            keras.layers.GRU(6, name="gru"),
            keras.layers.Dense(2, name="head"),
        ]
    )
    x = np.random.default_rng(7).normal(size=(8, 12, 3)).astype(np.float32)
    res = export_model(model, x, tmp_path / "c", name="m", weights="int4")
    bits = {layer.name: getattr(layer, "weight_bits", 8) for layer in res.qmodel.layers}
    assert bits == {"conv": 8, "gru": 4, "head": 4}
    assert any("'conv' (Conv1D) keep int8 weights" in n for n in res.qmodel.notes)
    q = res.qmodel
    _check_host(tmp_path / "c", "m", q, q.input_q.quantize(x))


def test_seq2seq_refuses_int4(tmp_path: Path) -> None:
    """A seq2seq model's weights stay int8: --weights int4 is one clear line, nothing written."""
    d = seq2seq_data(True, n=8)
    np.savez(tmp_path / "d.npz", x=d["x"], lengths=d["lengths"], y=d["y"])
    with pytest.raises(ExportError, match="weights='int4' is for sequence models"):
        export_model(
            build_seq2seq(seed=5),
            tmp_path / "d.npz",
            tmp_path / "c",
            weights="int4",
            start_token=0,
            end_token=1,
        )
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("activations", ["int8", "int16"])
def test_int4_bidirectional_variants_and_int16_states(tmp_path: Path, activations: str) -> None:
    """int4 through the other kernels that read weights: a Bidirectional GRU (both cells int4),
    the activation variants (hard_sigmoid GRU, relu LSTM and SimpleRNN, an elu Dense), int8 and
    int16 states; the C equals the reference."""
    keras.utils.set_random_seed(15)
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True), name="bi"),
            keras.layers.GRU(6, recurrent_activation="hard_sigmoid", return_sequences=True),
            keras.layers.LSTM(7, activation="relu", return_sequences=True),
            keras.layers.SimpleRNN(5, activation="relu"),
            keras.layers.Dense(6, activation="elu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(8).normal(size=(8, 9, 4)).astype(np.float32)
    res = export_model(
        model, x, tmp_path / "c", name="m", weights="int4", activations=activations, max_length=9
    )
    q = res.qmodel
    assert all(c.weight_bits == 4 for _, c in q.layers[0].cells())
    assert all(layer.weight_bits == 4 for layer in q.layers[1:])
    xq = q.input_q.quantize(x)
    compiled = load_model(tmp_path / "c", "m")
    assert np.array_equal(compiled.run(xq), run_int(q, xq))
    if activations == "int16":  # and through the DSP assembly
        require_arm_toolchain()
        require_unicorn()
        assert S.measure(tmp_path / "c", "cortex-m4", "O2", sequences=2, steps=5).bit_exact


@pytest.mark.parametrize("board", ["mps2-an386", "microbit"])
def test_firmware_int4_runs_bit_exact_under_qemu(board: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """`rnn2c firmware --weights int4 --run`: the Cortex-M4 (DSP assembly) and Cortex-M0
    (ARMv6-M assembly) boards equal the host emulator at every step."""
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    model_path = tmp_path / "m.keras"
    _every_kind().save(model_path)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(9).normal(size=(8, 10, 5)).astype(np.float32))
    argv = ["firmware", str(model_path), "--board", board, "--out", str(tmp_path / "fw")]
    assert main([*argv, "--calib", str(calib), "--weights", "int4", "--run"]) == 0
    assert "bit-exact at every step" in capsys.readouterr().out


def test_int4_bound_refuses_with_keep_int8_hint() -> None:
    """The int4 kernels may sum 16 times a row's products: a row whose sum |w| max|v| passes
    2^27 is refused (naming --keep-int8), though int8 takes the same row (small weights round
    up to 1 of 7, 16 times 1/7 of the peak, where int8 keeps 10 of 127)."""
    n = 5000
    w = np.full((2, n), 0.08)
    w[:, 0] = 1.0
    vmax = np.full(n, 1 << 15)  # int4: (7 + 4999) * 2^15 > 2^27; int8: (127 + 49990) * 2^15 < 2^31
    args = (np.zeros(2), np.zeros(n, int), vmax, 1 / 4096, 1 << 15, "layer 'x'")
    quantize_rows(w, *args)
    with weight_bits(4), pytest.raises(ExportError, match="--keep-int8"):
        quantize_rows(w, *args)


def test_token_model_int4_after_an_int8_table(tmp_path: Path) -> None:
    """A token model: the Embedding table stays int8 (the note says so), the GRU and Dense
    after it are int4, and <name>_step_token equals the reference."""
    keras.utils.set_random_seed(16)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(12, 5),
            keras.layers.GRU(6, return_sequences=True),
            keras.layers.Dense(3),
        ]
    )
    ids = np.random.default_rng(10).integers(0, 12, size=(6, 8)).astype(np.int32)
    res = export_model(model, ids, tmp_path, name="tok", weights="int4")
    q = res.qmodel
    assert [layer.weight_bits for layer in q.layers] == [4, 4]
    assert any("the Embedding table" in n and "keep int8" in n for n in q.notes)
    compiled = load_model(tmp_path, "tok")
    assert np.array_equal(compiled.run_tokens(ids, None), run_int(q, q.quantize_input(ids)))
