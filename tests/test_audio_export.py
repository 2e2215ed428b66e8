"""`rnn2c export --frontend`: the audio front end generated beside the model. The compiled C's
<name>_audio_features equals the NumPy integer reference (LogMel.features_int) bit for bit on
random configurations and real speech, and <name>_push_audio, fed any chunking of the samples,
steps once per hop and equals run_int on those features; bad front ends are one-line errors."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from rnn2c.export import ExportError, export_model
from rnn2c.export.audio import LogMel, fft_stages_int
from rnn2c.export.reference import run_int
from rnn2c.export.render import runtime_files
from rnn2c.export.serialize import load

WAV_DIR = Path(__file__).parent / "data" / "wav"
STRICT = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wshadow", "-Wcast-qual")
STRICT += ("-Wstrict-prototypes", "-Wundef", "-Wconversion", "-Wsign-conversion")

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def keras_gru(features: int, classes: int = 3, seed: int = 0):
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((None, features)),
            keras.layers.Rescaling(1.0 / 64.0),
            keras.layers.GRU(8),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    return model


def export_audio(tmp: Path, fe: LogMel, seed: int = 0, model=None) -> tuple[ctypes.CDLL, Path]:
    """A small GRU over fe's features, exported with the front end and compiled to a .so."""
    rng = np.random.default_rng(seed)
    pcm = [read_wav(p) for p in sorted(WAV_DIR.glob("*.wav"))[:4]]
    feats = [fe.features_int(p) for p in pcm]
    t = max(len(f) for f in feats)
    calib = np.zeros((len(feats), t, fe.num_features), dtype=np.float32)
    for i, f in enumerate(feats):
        calib[i, : len(f)] = f
    np.savez(tmp / "calib.npz", x=calib, lengths=np.array([len(f) for f in feats]))
    model = model or keras_gru(fe.num_features, seed=int(rng.integers(1000)))
    (tmp / "frontend.json").write_text(fe.dumps())
    out = tmp / "c"
    export_model(
        model, str(tmp / "calib.npz"), out, name="kws", frontend=str(tmp / "frontend.json")
    )
    lib = tmp / "kws.so"
    cmd = ["gcc", *STRICT, "-shared", "-fPIC", str(out / "kws.c"), "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    c = ctypes.CDLL(str(lib))
    ptr = ctypes.c_void_p
    c.kws_reset.argtypes = [ptr]
    c.kws_audio_features.argtypes = [ptr, ptr]
    c.kws_push_audio.argtypes = [ptr, ptr, ctypes.c_int, ptr]
    c.kws_push_audio.restype = ctypes.c_int
    return c, out


def c_features(lib: ctypes.CDLL, fe: LogMel, pcm: np.ndarray) -> np.ndarray:
    """kws_audio_features over the frames the reference takes (the ring starts as zeros)."""
    padded = np.concatenate([np.zeros(fe.window - fe.hop, dtype=np.int16), pcm])
    out = np.zeros((len(pcm) // fe.hop, fe.num_features), dtype=np.int8)
    for t in range(len(out)):
        frame = np.ascontiguousarray(padded[t * fe.hop : t * fe.hop + fe.window])
        row = np.zeros(fe.num_features, dtype=np.int8)
        lib.kws_audio_features(frame.ctypes.data, row.ctypes.data)
        out[t] = row
    return out


@pytest.mark.parametrize(
    "fe",
    [
        LogMel(),
        LogMel(n_mels=16, n_mfcc=10, hop=80, window=200, n_fft=256, steps_per_log2=4),
        LogMel(window=512, hop=512, n_fft=512, n_mels=32, fmin=0.0, log_floor=-24),
        LogMel(window=64, hop=32, n_fft=64, n_mels=6, steps_per_log2=16, sample_rate=16000),
        LogMel(hop=256, mean_hops=16),
        LogMel(n_mels=16, n_mfcc=12, hop=100, window=200, mean_hops=5),
    ],
    ids=["default", "mfcc", "no-overlap", "tiny", "running-mean", "mfcc-running-mean"],
)
def test_c_features_and_push_audio_bit_exact(tmp_path: Path, fe: LogMel) -> None:
    lib, out = export_audio(tmp_path, fe)
    qmodel = load(out / "kws_qmodel.npz")
    assert qmodel.frontend == fe.to_json()
    header = (out / "kws.h").read_text()
    assert f"#define KWS_HOP_SAMPLES {fe.hop} " in header
    assert f"#define KWS_SAMPLE_RATE {fe.sample_rate} " in header
    rng = np.random.default_rng(fe.hop)
    noise = np.clip(rng.standard_normal(3000) * 10.0 ** rng.uniform(1, 4), -32768, 32767)
    clips = [read_wav(p) for p in sorted(WAV_DIR.glob("*.wav"))[4:6]] + [noise.astype(np.int16)]
    state = ctypes.create_string_buffer(json.loads((out / "rnn2c.json").read_text())["state_bytes"])
    for pcm in clips:
        want = fe.features_int(pcm)
        assert np.array_equal(c_features(lib, fe, pcm), fe.frame_features_int(pcm))
        ref = run_int(qmodel, want[None].astype(np.int8))[0]
        lib.kws_reset(state)
        output = np.zeros(qmodel.output_size, dtype=np.int8)
        steps, pos = 0, 0
        while pos < len(pcm):  # chunks of random sizes, 0 included
            n = int(rng.integers(0, 3 * fe.hop))
            chunk = np.ascontiguousarray(pcm[pos : pos + n])
            steps += lib.kws_push_audio(state, chunk.ctypes.data, len(chunk), output.ctypes.data)
            pos += n
        assert steps == len(want) == len(pcm) // fe.hop
        assert np.array_equal(output, ref[-1])


def test_frontend_errors_one_line(tmp_path: Path) -> None:
    fe = LogMel(n_mels=12)
    model = keras_gru(10)
    np.savez(tmp_path / "calib.npz", x=np.zeros((2, 5, 10), np.float32))
    (tmp_path / "fe.json").write_text(fe.dumps())
    (tmp_path / "bad.json").write_text('{"kind": "logmel", "n_fft": 100}')
    cases = [
        (tmp_path / "fe.json", "gives 12 features per hop but the model takes 10"),
        (tmp_path / "bad.json", "power of two"),
        (tmp_path / "none.json", "cannot read it"),
    ]
    for spec, words in cases:
        with pytest.raises(ExportError) as info:
            export_model(model, str(tmp_path / "calib.npz"), tmp_path / "c", frontend=str(spec))
        assert words in str(info.value) and "\n" not in str(info.value)
        assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_verify_replays_wav(tmp_path: Path) -> None:
    from rnn2c.emulator import verify  # noqa: PLC0415

    fe = LogMel(n_mels=10, mean_hops=4)
    model = keras_gru(fe.num_features, classes=2)
    _, out = export_audio(tmp_path, fe, model=model)
    report = verify(model, out, f"wav:{WAV_DIR}")
    assert report.passed and report.bit_exact
    assert report.sequences == 8
    (note,) = [n for n in report.notes if "front end vs float" in n]
    assert "over 8 recordings" in note
    with pytest.raises(ExportError, match="no audio front end"):
        export_model(model, str(tmp_path / "calib.npz"), tmp_path / "plain", name="plain")
        verify(model, tmp_path / "plain", f"wav:{WAV_DIR}")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_size_counts_push_audio_bit_exact(tmp_path: Path, target: str) -> None:
    from rnn2c.emulator.size import measure  # noqa: PLC0415

    fe = LogMel(n_mels=12, n_mfcc=6, mean_hops=8 if target == "cortex-m0plus" else 0)
    _, out = export_audio(tmp_path, fe)
    report = measure(out, target, sequences=1, steps=4)
    audio = report.frontend
    assert audio["bit_exact"] and audio["hops"] == 40
    assert 0 < audio["frontend_per_hop"] < audio["push_audio_per_hop"]
    assert audio["per_second"] == pytest.approx(audio["push_audio_per_hop"] * 8000 / fe.hop)
    assert "instructions / s audio" in report.table()
    # push_audio's stack holds the front end's FFT scratch (two int32 arrays of n_fft/2 + 1)
    # and more than a step's; the RAM a push_audio user needs counts it, not the step's stack
    scratch = 8 * (fe.n_fft // 2 + 1)
    assert audio["push_audio_stack_measured"] >= max(scratch, report.stack_measured)
    assert audio["push_audio_stack"] == max(
        audio["push_audio_stack_static"], audio["push_audio_stack_measured"]
    )
    assert audio["push_audio_ram"] == report.ram - report.stack + audio["push_audio_stack"]
    assert "stack of push_audio" in report.table()
    # export's estimate counts the front end: its tables and code in flash, its scratch in RAM
    from rnn2c.emulator.size import read_export  # noqa: PLC0415
    from rnn2c.export.footprint import estimate, scratch_bytes  # noqa: PLC0415

    header = (out / "kws.h").read_text()
    est = estimate(read_export(out).qmodel, scratch_bytes(header, "kws"), target)
    assert est.frontend_tables == fe.c_tables()["table_bytes"] > 0
    assert abs(est.ram - audio["push_audio_ram"]) <= 0.15 * audio["push_audio_ram"]
    assert abs(est.flash - report.flash) <= 0.2 * report.flash
    # streaming use: stream_push (two model steps, one front end) and detect, held to the twins
    # over both copies' restarts; their code is reported apart, not in the flash figure
    assert audio["stream_bit_exact"] and audio["stream_hops"] == audio["stream_reset_hops"] + 2
    assert audio["push_audio_per_hop"] < audio["stream_push_per_hop"]
    assert audio["stream_push_per_hop"] < 2 * audio["push_audio_per_hop"]
    assert 0 < audio["detect_per_hop"] <= audio["detect_max"] < 1000
    assert 0 < audio["streaming_flash"] < 2000
    assert not any("div" in s for m in report.libraries for s in m.symbols)  # no % on ARMv6-M
    assert "streaming / s audio" in report.table()


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("twin", ["stream_outputs", "detect"])
def test_size_streaming_check_catches_a_wrong_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twin: str
) -> None:
    """One value of a twin's answer off, at the last hop (after both restarts): the streaming
    check must say MISMATCH while the push_audio check still passes."""
    from rnn2c.emulator.size import measure  # noqa: PLC0415
    from rnn2c.export import detect as twins  # noqa: PLC0415

    fe = LogMel(n_mels=12)
    _, out = export_audio(tmp_path, fe)
    real = getattr(twins, twin)

    def one_off(*args: object, **kwargs: object) -> np.ndarray:
        got = np.array(real(*args, **kwargs))
        flat = got.reshape(len(got), -1)
        flat[-1, 0] = flat[-1, 0] + 1 if flat[-1, 0] < 100 else flat[-1, 0] - 1
        return got

    monkeypatch.setattr(twins, twin, one_off)
    report = measure(out, "cortex-m4", sequences=1, steps=4)
    assert report.frontend["bit_exact"] and not report.frontend["stream_bit_exact"]
    assert "MISMATCH" in report.table()


@pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm",
)
def test_firmware_replays_wav_on_a_board(tmp_path: Path) -> None:
    import sys  # noqa: PLC0415

    fe = LogMel(n_mels=8, mean_hops=6)
    _, out = export_audio(tmp_path, fe)
    cmd = [sys.executable, "-m", "rnn2c", "firmware", str(out), "--board", "mps2-an386"]
    cmd += ["--data", f"wav:{WAV_DIR}", "--out", str(tmp_path / "fw"), "--run"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wav:" in proc.stdout and "bit-exact at every step" in proc.stdout
    # the board ran the front end itself: each step one hop of the recording's samples
    # through kws_push_audio, its outputs equal to the reference on the features
    assert (
        "kws_push_audio(&fw_state, x, KWS_HOP_SAMPLES, fw_output)"
        in (tmp_path / "fw" / "main.c").read_text()
    )
    replay = np.load(tmp_path / "fw" / "replay.npz")
    wavs = [read_wav(p) for p in sorted(WAV_DIR.glob("*.wav"))][: len(replay["lengths"])]
    for i, (w, n) in enumerate(zip(wavs, replay["lengths"], strict=True)):
        assert n == len(fe.features_int(w))
        assert np.array_equal(replay["pcm"][i, : n * fe.hop], w[: n * fe.hop])
        assert not replay["pcm"][i, n * fe.hop :].any()


def test_c_fft_kernel_every_size(tmp_path: Path) -> None:
    """The runtime's rnn2c_fft_q15 (two radix-2 stages a pass, then one where the count is odd)
    against its NumPy twin, fft_stages_int (the plain radix-2 order), bit for bit at every
    size the front end takes (8- to 4096-point real FFTs), on random int16 input and on
    input at the int16 extremes."""
    for name, text in runtime_files().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "fft.c").write_text(
        '#include "rnn2c_runtime.h"\n'
        "void kt_fft(int32_t *re, int32_t *im, int m, const int16_t *cs, const int16_t *sn);\n"
        "void kt_fft(int32_t *re, int32_t *im, int m, const int16_t *cs, const int16_t *sn)\n"
        "{\n    rnn2c_fft_q15(re, im, m, cs, sn);\n}\n"
    )
    lib = tmp_path / "fft.so"
    cmd = ["gcc", *STRICT, "-shared", "-fPIC", str(tmp_path / "fft.c"), "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    c = ctypes.CDLL(str(lib))
    rng = np.random.default_rng(27)
    for n_fft in (8 << k for k in range(10)):
        m = n_fft // 2
        cos_t, sin_t = LogMel(window=n_fft, hop=n_fft, n_fft=n_fft, n_mels=1).twiddles_q15()
        cs, sn = cos_t.astype(np.int16), sin_t.astype(np.int16)
        for case in range(6):
            if case < 2:  # every component at an end of int16
                z = rng.choice(np.array([-32768, 32767]), (2, m))
            else:
                z = rng.integers(-32768, 32768, (2, m))
            want_r, want_i = fft_stages_int(z[:1], z[1:], cos_t, sin_t)
            re, im = (np.ascontiguousarray(v, dtype=np.int32) for v in z)
            c.kt_fft(*(a.ctypes.data_as(ctypes.c_void_p) for a in (re, im)), m,
                     *(a.ctypes.data_as(ctypes.c_void_p) for a in (cs, sn)))  # fmt: skip
            assert np.array_equal(re, want_r[0]) and np.array_equal(im, want_i[0]), (n_fft, case)
