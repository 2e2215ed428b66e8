"""The fixed-point log-mel front end (export/audio.py): the integer reference against its float
twin on random and real audio, its pieces (log2, real FFT) against NumPy, determinism,
streaming (causal frames) and one-line errors for bad parameters."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from rnn2c.export.audio import LOG_TABLE, FrontEndError, LogMel, frames, log2_q8, parse_params

WAV_DIR = Path(__file__).parent / "data" / "wav"


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int64)


def random_params(rng: np.random.Generator) -> LogMel:
    """A random valid configuration (small FFTs and few bands keep it fast)."""
    n_fft = int(rng.choice([64, 128, 256, 512]))
    window = int(rng.integers(n_fft // 2, n_fft + 1))
    hop = int(rng.integers(window // 4, window + 1))
    rate = int(rng.choice([8000, 16000]))
    n_mels = int(rng.integers(4, max(5, min(24, n_fft // 8))))
    return LogMel(
        sample_rate=rate,
        window=window,
        hop=hop,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=float(rng.choice([0.0, 60.0, 125.0])),
        fmax=float(rng.choice([rate / 2, rate * 0.45])),
        log_floor=int(rng.integers(-24, -12)),
        steps_per_log2=int(rng.choice([2, 4, 8, 16])),
        n_mfcc=int(rng.choice([0, 0, min(8, n_mels)])),
    )


def random_audio(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise and a chirp at a random level (from -80 dB to full scale), clipped to int16."""
    t = np.arange(n) / 8000.0
    level = 10.0 ** rng.uniform(-4.0, 0.0) * 32767.0
    chirp = np.sin(2 * np.pi * (200.0 + 1500.0 * t) * t)
    x = level * (0.6 * chirp + 0.4 * rng.standard_normal(n))
    return np.clip(np.round(x), -32768, 32767).astype(np.int64)


def feature_error(p: LogMel, pcm: np.ndarray) -> np.ndarray:
    """|int8 feature - float feature| in int8 steps (the float clamped to the int8 range)."""
    q = p.features_int(pcm).astype(np.float64)
    f = np.clip(p.features_float(pcm), -128.0, 127.0)
    assert q.shape == f.shape == (len(pcm) // p.hop, p.num_features)
    return np.abs(q - f)


def test_log2_q8_within_table_error() -> None:
    rng = np.random.default_rng(1)
    e = np.concatenate(
        [
            np.arange(1, 300, dtype=np.uint64),
            rng.integers(1, 2**62, 2000, dtype=np.uint64)
            >> rng.integers(0, 62, 2000).astype(np.uint64),
            np.array([2**63 - 1, 2**64 - 1], dtype=np.uint64),
        ]
    )
    e = np.maximum(e, np.uint64(1))
    exact = np.log2(e.astype(np.float64)) * 256.0
    err = np.abs(log2_q8(e) - exact)
    assert err.max() <= 3.5  # half a table interval (log2(1 + 1/128) = 2.9 Q8) plus rounding
    powers = log2_q8(np.array([1, 2, 4, 1 << 40], dtype=np.uint64))
    assert np.array_equal(powers, np.array([0, 1, 2, 40]) * 256 + LOG_TABLE[0])


@pytest.mark.parametrize("n_fft", [8, 64, 256, 1024])
def test_fixed_point_rfft_against_numpy(n_fft: int) -> None:
    rng = np.random.default_rng(n_fft)
    p = LogMel(window=n_fft, hop=n_fft, n_fft=n_fft, n_mels=2, fmin=0.0)
    buf = rng.integers(-32768, 32768, (16, n_fft))
    re, im = p._rfft_int(buf)
    spec = np.fft.rfft(buf, axis=1) / n_fft
    stages = int(np.log2(n_fft))
    # each of the log2(n_fft) halving stages rounds or truncates by at most one unit
    assert np.abs(re - spec.real).max() <= stages + 1
    assert np.abs(im - spec.imag).max() <= stages + 1
    assert (
        np.abs(re).max() < 2**15 and np.abs(im).max() < 2**15
    )  # int16 range: the C's uint32 power


def test_real_speech_default_params() -> None:
    p = LogMel()
    errs = [feature_error(p, read_wav(f)).ravel() for f in sorted(WAV_DIR.glob("*.wav"))]
    err = np.concatenate(errs)
    assert len(errs) == 8
    assert err.mean() < 0.4  # rounding alone gives 0.25
    assert err.max() <= 6.0  # 0.75 log2 unit (2.3 dB), in the weakest bands


def test_random_configurations_and_levels() -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        p = random_params(rng)
        pcm = random_audio(rng, int(rng.integers(p.window, 6000)))
        err = feature_error(p, pcm)
        steps = p.steps_per_log2
        assert err.mean() < 0.5 + 0.05 * steps, p
        assert err.max() <= 0.6 * steps + 1.0, p  # under 0.6 log2 units (1.8 dB)


def test_deterministic_and_causal() -> None:
    p = LogMel(n_mels=16)
    pcm = read_wav(WAV_DIR / "1_jackson_0.wav")
    full = p.features_int(pcm)
    assert np.array_equal(full, p.features_int(pcm.copy()))
    cut = 3 * p.hop + 17  # a stream's prefix gives the first frames of the whole, unchanged
    assert np.array_equal(p.features_int(pcm[:cut]), full[:3])
    assert frames(pcm[:cut], p.window, p.hop).shape == (3, p.window)


def test_silence_and_full_scale() -> None:
    p = LogMel()
    assert np.all(p.features_int(np.zeros(1024, dtype=np.int64)) == -128)
    square = np.where(np.arange(2048) % 16 < 8, 32767, -32768)
    q = p.features_int(square).astype(np.float64)
    f = np.clip(p.features_float(square), -128, 127)
    assert q.max() == 127  # clipped at the top: a full-scale square is louder than the range
    # bands within 20 log2 units (60 dB) of the frame's loudest match; below that (the square's
    # empty even harmonics) the integer FFT's rounding floor, 70-75 dB down, shows
    near = f >= f.max(axis=1, keepdims=True) - 20 * p.steps_per_log2
    assert np.all(np.abs(q - f)[near] < 2) and np.all(q[~near] < f.max() - 20 * 8)


def test_block_shift_keeps_quiet_audio() -> None:
    """A quiet tone (-60 dB) keeps its spectrum: the block shift, not the FFT's last bits."""
    p = LogMel()
    t = np.arange(4000)
    tone = np.round(30.0 * np.sin(2 * np.pi * 440.0 * t / 8000.0)).astype(np.int64)
    err = feature_error(p, tone)
    assert err[2:].max() <= 2.0


def test_running_mean_properties() -> None:
    """mean_hops: the first hop is 0, a constant stays 0, a level change (a constant added to
    every feature, as a gain adds to every log band) changes nothing, a stream split anywhere
    continues from the state bit for bit, and the integer mean follows the float twin's."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        p = LogMel(n_mels=8, mean_hops=int(rng.integers(1, 40)))
        x = rng.integers(-100, 80, (n, 8)).astype(np.int8)
        out = p.subtract_mean(x)
        assert np.all(out[0] == 0)
        k = int(rng.integers(-28, 48))
        assert np.array_equal(p.subtract_mean((x.astype(np.int64) + k).astype(np.int8)), out)
        assert np.all(p.subtract_mean(np.repeat(x[:1], n, axis=0)) == 0)
        cut = int(rng.integers(0, n + 1))
        first, state = p.mean_step(x[:cut])
        assert np.array_equal(np.concatenate([first, p.subtract_mean(x[cut:], state)]), out)
        f = x.astype(np.float64)  # the float recurrence: within rounding of the integer one
        mean, want = np.zeros(8), np.zeros_like(f)
        for t in range(n):
            mean += (f[t] - mean) / min(t + 1, p.mean_hops)
            want[t] = f[t] - mean
        assert np.abs(out - np.clip(want, -128, 127)).max() <= 1.0
    assert np.array_equal(LogMel().subtract_mean(x), x)  # mean_hops=0: the frames' features


def test_running_mean_real_speech_and_level() -> None:
    """With mean_hops the features of speech 20 dB quieter move under 3 steps on average (without it
    every band moves by 6.6 log2 units = 53 steps), and the integer features stay close to
    the float twin."""
    p, plain = LogMel(hop=256, mean_hops=16), LogMel(hop=256)
    for f in sorted(WAV_DIR.glob("*.wav")):
        pcm = read_wav(f)
        quiet = np.round(pcm / 10.0).astype(np.int64)
        moved = np.abs(p.features_int(pcm).astype(int) - p.features_int(quiet)).mean()
        plain_moved = np.abs(plain.features_int(pcm).astype(int) - plain.features_int(quiet))
        assert moved < 3.0 < 40.0 < plain_moved.mean(), f  # the floor clips the quietest bands
        err = feature_error(p, pcm)
        assert err.mean() < 0.6 and err.max() <= 8.0, f


def test_json_round_trip_and_spec() -> None:
    p = LogMel(n_mels=24, hop=64, n_mfcc=12, fmin=100.0, mean_hops=9)
    assert LogMel.from_json(p.to_json()) == p
    assert parse_params(p.spec()) == p
    assert parse_params("") == LogMel()
    older = {k: v for k, v in p.to_json().items() if k != "mean_hops"}  # before mean_hops
    assert LogMel.from_json(older).mean_hops == 0


@pytest.mark.parametrize(
    "text, words",
    [
        ("n_fft=100", "power of two"),
        ("window=512", "window <= n_fft"),
        ("hop=300", "hop <= window"),
        ("fmax=5000", "sample_rate / 2"),
        ("steps_per_log2=3", "power of two"),
        ("n_mfcc=30", "n_mfcc"),
        ("n_mels=120", "hold no FFT bin"),
        ("bands=3", "key=value"),
        ("n_mels=x", "expected a number"),
        ("mean_hops=-1", "running mean's hops, 1 to 1024"),
        ("mean_hops=2000", "running mean's hops, 1 to 1024"),
    ],
)
def test_bad_parameters_one_line(text: str, words: str) -> None:
    with pytest.raises(FrontEndError) as info:
        parse_params(text)
    assert words in str(info.value) and "\n" not in str(info.value)
