"""Bounds and messages: every count refused out of range in one line before any work, long
verifies that say how far they are, extreme or degenerate models and data named in one line
(the layer, the value, the way forward), a forecast series too short for its windows, a seq2seq
float model at chance, and the flash/RAM estimate that export states and firmware checks
against the board before writing anything."""

from __future__ import annotations

import io
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from seq2seq_keras import build as build_seq2seq
from seq2seq_keras import data as seq2seq_data

from rnn2c.cli import main
from rnn2c.emulator import firmware, progress
from rnn2c.emulator.seq2seq import chance_reason
from rnn2c.emulator.verify import GRAPH_FROM_STEPS, MAX_STREAM_STEPS, float_outputs
from rnn2c.export import export_model, fixedpoint, footprint, serialize
from rnn2c.export.seq2seq import keras_greedy, read_seq2seq
from tools import require_arm_toolchain, require_unicorn

F, T = 3, 10


def _gru(units: int = 4, head: int = 3, activation: str = "softmax") -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((None, F)),
            keras.layers.GRU(units, name="gru"),
            keras.layers.Dense(head, activation=activation, name="head"),
        ]
    )


def _with_weights(model: keras.Model, edit) -> keras.Model:  # noqa: ANN001
    other = keras.models.clone_model(model)
    w = [np.array(a) for a in model.get_weights()]
    edit(w)
    other.set_weights(w)
    return other


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models, calibration and data, an export of a tiny GRU classifier."""
    d = tmp_path_factory.mktemp("bounds")
    keras.utils.set_random_seed(3)
    model = _gru()
    model.save(d / "gru.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, T, F)).astype(np.float32)
    np.savez(d / "calib.npz", x=x)
    np.savez(d / "data.npz", x=x[:4])
    huge = x.copy()
    huge[3, 4, 1] = 1e38
    np.savez(d / "huge_calib.npz", x=huge)
    _with_weights(model, lambda w: w[0].__setitem__((0, 0), 1e30)).save(d / "big.keras")
    linear = _gru(head=2, activation="linear")
    zero = _with_weights(linear, lambda w: [a.fill(0.0) for a in w])
    zero.save(d / "zero.keras")

    def dead_gru(w: list[np.ndarray]) -> None:  # an all-zero GRU before a live Dense
        for a in w[:3]:
            a.fill(0.0)
        w[3].fill(0.7)
        w[4].fill(0.0)

    _with_weights(linear, dead_gru).save(d / "dead.keras")
    export_model(d / "gru.keras", d / "calib.npz", d / "exp", name="m")
    return d


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], *facts: str) -> str:
    """Exit 2, one line on stderr naming every fact."""
    rc, out, err = run(argv, capsys)
    assert rc == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("rnn2c "), err
    for fact in facts:
        assert fact in err, (fact, err)
    return err


# ---------------------------------------------------------------------------- 1. counts


def test_size_counts_are_bounded_before_any_work(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    size = ["size", ws / "exp", "--target", "cortex-m4", "--json", tmp_path / "s.json"]
    refused([*size, "--steps", "100000000"], capsys, "--steps 100000000: expected 1 to 20000")
    refused([*size, "--sequences", "0"], capsys, "--sequences 0: expected 1 to 1000")
    refused(
        [*size, "--sequences", "1000", "--steps", "1000"],
        capsys,
        "= 1000000 steps: expected at most 20000 in all",
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "flags, facts",
    [
        (["--timeout", "0.001"], ["--timeout 0.001: expected seconds from 1 to 3600"]),
        (["--timeout", "nan"], ["--timeout nan"]),
        (["--sequences", "100000"], ["--sequences 100000", "at most 1000"]),
        (["--sequences", "0"], ["--sequences 0", "at least 1"]),
    ],
)
def test_firmware_counts_are_bounded(
    ws: Path,
    tmp_path: Path,
    capsys,  # noqa: ANN001
    flags: list[str],
    facts: list[str],
) -> None:
    argv = ["firmware", ws / "exp", "--board", "microbit", "--out", tmp_path / "fw", *flags]
    refused(argv, capsys, *facts)
    assert list(tmp_path.iterdir()) == []


def test_bench_counts_are_bounded_before_any_work(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bench = ["bench", ws / "gru.keras", "--calib", ws / "calib.npz", "--data", ws / "data.npz"]
    bench += ["--json", tmp_path / "b.json"]
    refused([*bench, "--rounds", "5000"], capsys, "--rounds 5000", "from 1 to 1000")
    refused([*bench, "--steps", "1000000000"], capsys, "--steps 1000000000", "from 1 to 10000")
    refused([*bench, "--sequences", "0"], capsys, "--sequences 0", "from 1 to 1000000")
    assert list(tmp_path.iterdir()) == []


def test_verify_stream_bound_is_a_million_steps(ws: Path, capsys) -> None:  # noqa: ANN001
    assert MAX_STREAM_STEPS == 1_000_000
    argv = ["verify", ws / "gru.keras", ws / "exp", "--data", ws / "data.npz"]
    refused([*argv, "--stream", "1000001"], capsys, "--stream 1000001: expected 0 (off) to 1000000")


# ---------------------------------------------------------------------------- 1. long verifies


def test_long_verify_says_how_far_it_is(ws: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    """Progress lines on stderr (steps done / total) once a phase runs past the delay; a short
    verify prints none."""
    argv = ["verify", ws / "gru.keras", ws / "exp", "--data", ws / "data.npz", "--stream", "400"]
    rc, out, err = run([*argv, "--min-agreement", "0"], capsys)
    assert rc == 0 and "PASS" in out and err == "", err
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    rc, out, err = run([*argv, "--min-agreement", "0"], capsys)
    assert rc == 0 and "PASS" in out
    assert "rnn2c verify: integer reference: 5/10 steps (50%)" in err, err
    assert "rnn2c verify: integer reference: 10/10 steps done in" in err
    assert "rnn2c verify: stream, integer reference: 200/400 steps (50%)" in err
    assert "rnn2c verify: stream, float model: 400/400 steps done in" in err
    phases = ("integer reference", "stream, integer reference", "stream, float model")
    for phase in phases:  # a line per tenth and the closing line
        lines = [ln for ln in err.splitlines() if ln.startswith(f"rnn2c verify: {phase}: ")]
        assert 10 <= len(lines) <= 12, lines
    assert err.count("\n") == sum(err.count(f"verify: {p}: ") for p in phases)


def test_progress_lines_per_tenth_and_interval(monkeypatch) -> None:  # noqa: ANN001
    out = io.StringIO()
    clock = iter([0.0, 1.0, 3.0, 5.0, 14.0, 15.0, 16.0, 17.0])  # init, 6 updates, finish
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    p = progress.Progress("rnn2c x", "work", 1000, out=out)
    for done in (10, 150, 160, 170, 260, 999):
        p.update(done)
    p.finish()
    # quiet for DELAY_S, then a line at each new tenth or after INTERVAL_S without one
    assert [ln.removeprefix("rnn2c x: work: ") for ln in out.getvalue().splitlines()] == [
        "150/1000 steps (15%), 3 s",
        "170/1000 steps (17%), 14 s",
        "260/1000 steps (26%), 15 s",
        "999/1000 steps (99%), 16 s",
        "1000/1000 steps done in 17 s",
    ]


def test_long_sequences_run_keras_as_a_graph_with_the_same_outputs(ws: Path) -> None:
    """float_outputs runs long sequences through a graph function: the same outputs as the
    eager call, bit for bit (the eager call runs a recurrent layer step by step in Python)."""
    model = keras.models.load_model(ws / "gru.keras")
    steps = GRAPH_FROM_STEPS + 44
    x = np.random.default_rng(1).normal(size=(3, steps, F)).astype(np.float32)
    lengths = np.array([steps, steps - 1, 5])
    got = float_outputs(model, x, lengths)
    for i, n in enumerate(lengths):
        want = np.asarray(model(x[i : i + 1, :n], training=False))[0]
        assert np.array_equal(got[i], want), i


def test_clamp_is_np_clip() -> None:
    rng = np.random.default_rng(0)
    for dtype in (np.int64, np.int8, np.int16):
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, size=200).astype(dtype)
        for lo, hi in ((-128, 127), (-32768, 32767), (-(1 << 16), (1 << 16) - 1)):
            got, want = fixedpoint.clamp(x, lo, hi), np.clip(x, lo, hi)
            assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(fixedpoint.rshift_round(np.arange(-9, 9), 2), (np.arange(-9, 9) + 2) >> 2)


# ---------------------------------------------------------------------------- 2. extreme values


def test_extreme_weights_name_the_layer(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    argv = ["export", ws / "big.keras", "--calib", ws / "calib.npz", "--out", tmp_path / "o"]
    refused(argv, capsys, "layer 'gru' (GRU): weights reach 1e+30", "regularisation")
    assert not (tmp_path / "o").exists()


def test_extreme_calibration_values_name_the_file(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    argv = ["export", ws / "gru.keras", "--calib", ws / "huge_calib.npz", "--out", tmp_path / "o"]
    refused(argv, capsys, "--calib: values reach 1e+38", "layer 'gru' (GRU)", "normalized")
    assert not (tmp_path / "o").exists()


def test_an_all_zero_model_exports_and_runs_bit_exact(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc, out, err = run(
        ["export", ws / "zero.keras", "--calib", ws / "calib.npz", "--out", tmp_path / "z"], capsys
    )
    auto = "rnn2c export: calibration auto: "  # --calibration auto's choices, no warning
    assert rc == 0 and all(line.startswith(auto) for line in err.splitlines()), err
    argv = ["verify", ws / "zero.keras", tmp_path / "z", "--data", ws / "data.npz"]
    rc, out, err = run([*argv, "--json", tmp_path / "v.json"], capsys)
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["bit_exact"] and report["max_abs_error"] == 0.0, out


def test_a_constant_layer_before_live_weights_says_why(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    argv = ["export", ws / "dead.keras", "--calib", ws / "calib.npz", "--out", tmp_path / "o"]
    refused(
        argv,
        capsys,
        "layer 'head' (Dense): its output is the same for every calibration sequence",
        "weights reach 0.7",
        "constant input",
    )
    assert not (tmp_path / "o").exists()


def test_a_forecast_series_too_short_is_refused_before_training(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    np.savez(tmp_path / "s.npz", series=np.sin(np.arange(10.0)).astype(np.float32))
    argv = ["train", "--task", "forecast", "--dataset", tmp_path / "s.npz", "--out"]
    refused(
        [*argv, tmp_path / "r", "--epochs", "1"],
        capsys,
        "a series of 10 values (8 for training, 2 for testing) is too short",
        "windows of 2 steps (--window auto) and --horizon 1",
        "6 training and 2 test windows",
        "give a series of at least 29 values",
    )
    refused(
        [*argv, tmp_path / "r", "--window", "5", "--horizon", "3"],
        capsys,
        "--window 5 and --horizon 3",
        "at least 29 values, or a shorter --window",
    )
    assert not (tmp_path / "r").exists()


def test_seq2seq_chance_reason() -> None:
    ys = [[3, 3, 3, 1]] * 12
    assert chance_reason(ys, 0.25, 0.0) is not None
    assert chance_reason(ys, 0.8, 0.0) is None  # better than always answering 3 (75 %)
    assert chance_reason(ys, 0.25, 0.1) is None  # some sequences exactly right
    assert chance_reason(ys[:5], 0.0, 0.0) is None  # too few to tell


def test_seq2seq_verify_fails_a_float_model_at_chance(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Targets made of a token the float model never answers: verify fails, saying the model
    did not learn (not a quantization error)."""
    model = build_seq2seq(seed=5)
    model.save(tmp_path / "m.keras")
    d = seq2seq_data(True, n=20)
    ir = read_seq2seq(model)
    toks, counts = keras_greedy(model, ir.encoder_input, d["x"], d["lengths"], 0, 1, 5)
    answered = {int(t) for row, c in zip(toks, counts, strict=True) for t in row[:c]}
    never = sorted(set(range(2, 8)) - answered)
    assert never, answered  # a token the float model never answers
    y = np.full_like(d["y"], never[0])
    y[:, -1] = 1
    np.savez(tmp_path / "d.npz", x=d["x"], lengths=d["lengths"], y=y)
    argv = ["export", tmp_path / "m.keras", "--calib", tmp_path / "d.npz", "--out", tmp_path / "c"]
    assert run([*argv, "--start-token", "0", "--end-token", "1"], capsys)[0] == 0
    argv = ["verify", tmp_path / "m.keras", tmp_path / "c", "--data", tmp_path / "d.npz"]
    rc, out, err = run([*argv, "--min-agreement", "0"], capsys)
    assert rc == 1, out
    assert "float model: at chance level: greedy decoding gets no sequence exactly right" in out
    assert "the model did not learn, so the int8 figures say nothing about quantization" in out
    assert out.splitlines()[-1].startswith("FAIL: the float model is at chance level")


# ---------------------------------------------------------------------------- 3. flash and RAM


def test_export_states_its_footprint(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    argv = ["export", ws / "gru.keras", "--calib", ws / "calib.npz", "--out", tmp_path / "e"]
    rc, out, _ = run(argv, capsys)
    q = serialize.load(tmp_path / "e" / "model_qmodel.npz")
    est = footprint.estimate(
        q, footprint.scratch_bytes((tmp_path / "e" / "model.h").read_text(), "model")
    )
    assert rc == 0
    assert f"Cortex-M4 estimate: flash ~{footprint.size_text(est.flash)} = parameters" in out
    assert f"RAM ~{footprint.size_text(est.ram)} = state {q.state_bytes()} B" in out
    assert f"rnn2c size {tmp_path / 'e'} --target cortex-m4 measures it" in out


def _token_model(vocab: int, dim: int) -> keras.Model:
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab, dim),
            keras.layers.GRU(4),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def test_firmware_refuses_a_model_the_board_cannot_hold(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """An Embedding of 270 KB on the micro:bit (256 KB of flash): refused before anything is
    written, by how much, with the boards it would fit; a nucleo takes it."""
    ids = np.random.default_rng(0).integers(0, 2700, size=(8, T)).astype(np.int32)
    np.savez(tmp_path / "ids.npz", x=ids)
    _token_model(2700, 100).save(tmp_path / "t.keras")
    argv = ["firmware", tmp_path / "t.keras", "--calib", tmp_path / "ids.npz"]
    err = refused(
        [*argv, "--board", "microbit", "--out", tmp_path / "fw"],
        capsys,
        "--board microbit: the project needs about",
        "of flash (model ~",
        "but the board has 256 KB: about",
        "too much; it would fit on esp32c3, hifive1, mps2-an385, mps2-an386, nrf52840dk, "
        "nucleo-l476rg",
    )
    assert "shrink the model" in err
    assert not (tmp_path / "fw").exists()
    rc, out, err = run([*argv, "--board", "nucleo-l476rg", "--out", tmp_path / "fw"], capsys)
    assert rc == 0 and err == "" and (tmp_path / "fw" / "main.c").is_file()


def test_firmware_refuses_replays_the_board_cannot_hold(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """1000 sequences of 100 steps of --data (300 KB of int8 inputs in main.c) on the micro:bit:
    refused in one line that points at the replay, nothing written."""
    x = np.random.default_rng(3).normal(size=(1000, 100, F)).astype(np.float32)
    np.savez(tmp_path / "long.npz", x=x)
    argv = ["firmware", ws / "exp", "--board", "microbit", "--out", tmp_path / "fw"]
    refused(
        [*argv, "--data", tmp_path / "long.npz", "--sequences", "1000"],
        capsys,
        "replayed inputs 296.9 KB",
        "but the board has 256 KB",
        "replay fewer --sequences or shorter --data sequences",
    )
    assert not (tmp_path / "fw").exists()


def _bidir(max_length: int, out: Path, calib: Path) -> int:
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((None, F)),
            keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True)),
            keras.layers.Dense(2),
        ]
    )
    res = export_model(model, calib, out, name="b", max_length=max_length)
    return int(res.qmodel.state_bytes())


def _ram_on_microbit(folder: Path) -> int:
    _, files, q = firmware.read_export(folder)
    b = firmware.get_board("microbit")
    return firmware.project_memory(b, "b", files, q, firmware.replay_inputs(q, None)).ram


def test_firmware_checks_ram_and_warns_when_close(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """A whole-sequence model's state grows with --max-length: past the micro:bit's 16 KB of RAM
    it is refused; at about 93 % a warning comes with the project."""
    small, large = (_bidir(n, tmp_path / f"b{n}", ws / "calib.npz") for n in (100, 700))
    argv = ["firmware", tmp_path / "b700", "--board", "microbit", "--out", tmp_path / "fw"]
    refused(
        argv,
        capsys,
        f"the project needs about {footprint.size_text(_ram_on_microbit(tmp_path / 'b700'))} of "
        f"RAM (model state {footprint.size_text(large)}",
        "but the board has 16 KB",
        "it would fit on esp32c3, mps2-an385, mps2-an386, nrf52840dk, nucleo-l476rg",
    )
    assert not (tmp_path / "fw").exists()
    per_step = (large - small) / 600
    length = 100 + int((0.93 * 16 * 1024 - _ram_on_microbit(tmp_path / "b100")) / per_step)
    _bidir(length, tmp_path / "close", ws / "calib.npz")
    assert 0.9 * 16 * 1024 < _ram_on_microbit(tmp_path / "close") <= 16 * 1024
    argv = ["firmware", tmp_path / "close", "--board", "microbit", "--out", tmp_path / "fw"]
    rc, out, err = run(argv, capsys)
    assert rc == 0 and (tmp_path / "fw" / "main.c").is_file()
    assert err.startswith("rnn2c firmware: warning: the project fills about 9"), err
    assert "of microbit's RAM" in err and err.count("\n") == 1


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_the_estimate_is_close_to_what_size_measures(tmp_path: Path, target: str) -> None:
    """export/footprint.py's estimate against rnn2c size's measured flash and RAM, within the
    margins it states (a fraction of the measured figure, or a number of bytes)."""
    require_arm_toolchain()
    require_unicorn()
    from rnn2c.emulator import size as S  # noqa: PLC0415

    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, T, F)).astype(np.float32)
    ids = rng.integers(0, 60, size=(12, T)).astype(np.int32)
    keras.utils.set_random_seed(6)
    lstm = keras.Sequential([keras.Input((None, F)), keras.layers.LSTM(12), keras.layers.Dense(3)])
    models = {"gru": (_gru(8), x), "lstm": (lstm, x), "tokens": (_token_model(60, 8), ids)}
    for key, (model, calib) in models.items():
        out = tmp_path / key
        res = export_model(model, calib, out, name="m")
        est = footprint.estimate(
            res.qmodel, footprint.scratch_bytes((out / "m.h").read_text(), "m"), target
        )
        got = S.measure(out, target, sequences=1, steps=4)
        for what, margin in (("flash", footprint.FLASH_MARGIN), ("ram", footprint.RAM_MARGIN)):
            want, have = getattr(got, what), getattr(est, what)
            allowed = max(margin[0] * want, margin[1])
            assert abs(have - want) <= allowed, (key, target, what, have, want)
