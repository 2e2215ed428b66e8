"""`rnn2c train --dataset wav:DIR --features logmel` (train/audio.py): labels and speakers from
names or folders, the speaker split, waveform augmentation, features bit for bit the front
end's integer reference, one-line errors, and a tiny run folder that carries frontend.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from rnn2c.export.audio import LogMel, parse_params
from rnn2c.train.audio import (
    AUDIO_AUGMENT,
    AudioSettings,
    _augment,
    _augment_stream,
    augment_params,
    load_wav_dataset,
    mask_features,
    read_recordings,
    read_wav,
    resample,
)
from rnn2c.train.data import DatasetError
from rnn2c.train.model import ConfigError
from rnn2c.train.train import train_run

WAV_DIR = Path(__file__).parent / "data" / "wav"
SMALL = LogMel(n_mels=12, hop=128)


def write_wav(path: Path, pcm: np.ndarray, rate: int = 8000, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def test_names_give_labels_and_speakers() -> None:
    recs = read_recordings(WAV_DIR)
    assert len(recs) == 8
    assert {(r.label, r.speaker) for r in recs} >= {("0", "george"), ("1", "theo")}


def test_folder_per_label(tmp_path: Path) -> None:
    for src in sorted(WAV_DIR.glob("*.wav")):
        digit, speaker, idx = src.stem.split("_")
        dest = tmp_path / ("yes" if digit == "0" else "no")
        dest.mkdir(exist_ok=True)
        shutil.copy(src, dest / f"{speaker}_nohash_{idx}.wav")
    recs = read_recordings(tmp_path)
    assert {r.label for r in recs} == {"yes", "no"}
    assert {r.speaker for r in recs} == {"george", "jackson", "theo"}


def test_speaker_split_features_are_the_integer_reference() -> None:
    ds, info = load_wav_dataset("wav:" + str(WAV_DIR), SMALL, test_speaker="jackson")
    assert info["test_speakers"] == ["jackson"] and info["files_test"] == 3
    assert ds.class_names == ["0", "1"] and len(ds.x_train) == 5
    test_files = [r.path for r in read_recordings(WAV_DIR) if r.speaker == "jackson"]
    for i, path in enumerate(test_files):
        want = SMALL.features_int(read_wav(path))
        assert ds.lengths_test[i] == len(want) == len(read_wav(path)) // SMALL.hop
        assert np.array_equal(ds.x_test[i, : len(want)], want.astype(np.float32))
    assert ds.num_features == 12


def test_augmented_copies_are_deterministic() -> None:
    a, info = load_wav_dataset(str(WAV_DIR), SMALL, test_speaker="theo", augment_copies=2, seed=3)
    b, _ = load_wav_dataset(str(WAV_DIR), SMALL, test_speaker="theo", augment_copies=2, seed=3)
    assert info["files_train"] == 6 and len(a.x_train) == 18
    assert np.array_equal(a.y_train, np.tile(a.y_train[:6], 3))
    assert np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train[6:12], a.x_train[:6])  # the copies differ


def test_stream_context_copies() -> None:
    """--audio-context stream: copies with a noise lead-in and tail (never longer than the
    longest recording or the word plus the longest lead-in), some of them noise alone."""
    ds, info = load_wav_dataset(
        str(WAV_DIR), SMALL, test_speaker="theo", augment_copies=4, seed=1, context="stream"
    )
    assert info["context"] == "stream" and len(ds.x_train) == 30
    pcm = [read_wav(r.path) for r in read_recordings(WAV_DIR) if r.speaker != "theo"]
    rng = np.random.default_rng(5)
    longest, rate, noise_only = max(len(p) for p in pcm), 8000, 0
    for p in pcm * 20:
        x = _augment_stream(p, rng, rate, longest)
        assert len(p) + 0.0 <= len(x) <= max(longest, len(p) + rate) + 0.25 * rate
        head = np.abs(x[: int(0.09 * rate)].astype(np.float64)).mean()
        noise_only += head > 0.5 * np.abs(x.astype(np.float64)).mean()  # as loud as the rest
    assert 0.05 < noise_only / (len(pcm) * 20) < 0.3  # STREAM_AUGMENT["noise_only"]: 0.15


def test_resample_keeps_a_tone_and_scales_its_length_and_pitch() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n, factor = int(rng.integers(400, 4000)), float(rng.uniform(0.85, 1.15))
        freq = float(rng.uniform(100, 900))
        x = np.sin(2 * np.pi * freq * np.arange(n) / 8000)
        y = resample(x, factor)
        assert len(y) == round(n / factor) and y[0] == x[0]
        want = np.sin(2 * np.pi * freq * factor * np.arange(len(y)) / 8000)
        bound = (2 * np.pi * freq / 8000) ** 2 / 8 + 1e-9  # linear interpolation's error
        assert np.max(np.abs(y[: len(y) - 2] - want[: len(y) - 2])) <= bound  # sped up
    assert np.array_equal(resample(x, 1.0), x)


def test_speed_copies_deterministic_label_kept_and_lengths_follow() -> None:
    spec = augment_params("speed=0.85:1.15,gain_db=20")
    pcm = read_wav(sorted(WAV_DIR.glob("*.wav"))[0])
    a = [_augment(pcm, np.random.default_rng([4, i]), 8000, spec) for i in range(30)]
    b = [_augment(pcm, np.random.default_rng([4, i]), 8000, spec) for i in range(30)]
    assert all(np.array_equal(u, v) and u.dtype == np.int16 for u, v in zip(a, b, strict=True))
    shift = int(0.1 * 8000)
    lengths = np.array([len(x) for x in a])
    assert np.all(lengths >= len(pcm) / 1.15 - shift - 1)
    assert np.all(lengths <= len(pcm) / 0.85 + shift + 1)
    assert lengths.std() > 0.03 * len(pcm)  # the speed changes the length, not the shift alone
    ds, info = load_wav_dataset(
        str(WAV_DIR), SMALL, test_speaker="theo", augment_copies=2, seed=3, augment=spec
    )
    assert info["augment"]["speed"] == (0.85, 1.15)
    assert np.array_equal(ds.y_train, np.tile(ds.y_train[:6], 3))
    no_speed = augment_params("speed=1:1,gain_db=20")
    off, _ = load_wav_dataset(
        str(WAV_DIR), SMALL, test_speaker="theo", augment_copies=2, seed=3, augment=no_speed
    )
    assert not np.array_equal(ds.lengths_train[6:], off.lengths_train[6:])
    w = off.x_train.shape[1]
    assert np.array_equal(ds.x_train[:6, :w], off.x_train[:6])  # the originals untouched
    assert not ds.x_train[:6, w:].any()


def test_feature_masks() -> None:
    rng = np.random.default_rng(11)
    spec = augment_params("freq_masks=2,freq_mask_width=3,time_masks=2,time_mask_hops=4")
    for _ in range(20):
        n, t, f = 5, int(rng.integers(6, 30)), int(rng.integers(8, 24))
        x = rng.integers(-128, 128, size=(n, t, f)).astype(np.float32)
        lengths = rng.integers(1, t + 1, size=n)
        y = mask_features(x, lengths, np.random.default_rng(1), spec)
        assert np.array_equal(y, mask_features(x, lengths, np.random.default_rng(1), spec))
        assert y.shape == x.shape and not np.shares_memory(x, y)
        for i, length in enumerate(lengths):
            assert np.array_equal(y[i, length:], x[i, length:])  # the padding untouched
            changed = y[i, :length] != x[i, :length]
            fill = np.round(x[i, :length].mean())
            assert np.all(y[i, :length][changed] == fill)
            cols = np.all(y[i, :length] == fill, axis=0).sum()
            rows = np.all(y[i, :length] == fill, axis=1).sum()
            assert cols >= 1 or rows >= 1  # at least one mask covers a band or a hop
            assert changed.sum() <= 2 * 3 * length + 2 * 4 * f
    masked, info = load_wav_dataset(
        str(WAV_DIR), SMALL, test_speaker="theo", augment_copies=1, seed=3, augment=spec
    )
    plain, _ = load_wav_dataset(
        str(WAV_DIR),
        SMALL,
        test_speaker="theo",
        augment_copies=1,
        seed=3,
        augment=augment_params(""),
    )
    assert np.array_equal(masked.x_train[:6], plain.x_train[:6])  # originals never masked
    assert not np.array_equal(masked.x_train[6:], plain.x_train[6:])
    assert np.array_equal(masked.lengths_train, plain.lengths_train)


@pytest.mark.parametrize(
    "text, words",
    [
        ("speed=1.2", "LO:HI"),
        ("speed=0.3:1.0", "0.5 <= LO <= HI <= 2"),
        ("pitch=2", "KEY one of gain_db"),
        ("freq_masks=-1", "0 or more"),
        ("time_mask_hops=0", "1 or more"),
        ("gain_db=loud", "a number"),
    ],
)
def test_augment_params_errors(text: str, words: str) -> None:
    assert augment_params("") == AUDIO_AUGMENT
    with pytest.raises(ValueError) as info:
        augment_params(text)
    assert words in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        AudioSettings("logmel", audio_augment_params=text).augment()
    assert str(info.value).startswith("--audio-augment-params: ")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: write_wav(d / "3_bob_0.wav", np.zeros(800), rate=16000), "16000 Hz"),
        (lambda d: write_wav(d / "3_bob_0.wav", np.zeros(1600), channels=2), "mono 16-bit"),
        (lambda d: (d / "3_bob_0.wav").write_bytes(b"RIFF0000"), "not a readable WAV"),
        (lambda d: write_wav(d / "three.wav", np.zeros(800)), "{label}_{speaker}_{index}"),
        (lambda d: write_wav(d / "3_bob_0.wav", np.zeros(50)), "shorter than one hop"),
    ],
)
def test_bad_wav_one_line(tmp_path: Path, make, words: str) -> None:
    write_wav(tmp_path / "4_ann_0.wav", np.zeros(800))
    make(tmp_path)
    with pytest.raises(DatasetError) as info:
        load_wav_dataset(str(tmp_path), SMALL, split_by="random")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_unknown_speaker_lists_speakers() -> None:
    with pytest.raises(DatasetError, match="george, jackson, theo"):
        load_wav_dataset(str(WAV_DIR), SMALL, test_speaker="ringo")


@pytest.mark.parametrize(
    "spec, audio, words",
    [
        ("wav:x", AudioSettings(), "audio needs a front end"),
        ("uea:BasicMotions", AudioSettings(features="logmel"), "wav:DIR"),
        ("wav:x", AudioSettings("logmel", "n_fft=100"), "power of two"),
        ("wav:x", AudioSettings("logmel", split_by="age"), "speaker or random"),
        ("wav:x", AudioSettings("logmel", audio_context="song"), "word or stream"),
        (
            "wav:x",
            AudioSettings("logmel", audio_augment=0, audio_context="stream"),
            "1 or more",
        ),
        ("wav:x", AudioSettings("logmel", audio_augment_params="speed=3:4"), "LO <= HI <= 2"),
        ("uea:BasicMotions", AudioSettings(audio_augment_params="gain_db=3"), "wav:DIR only"),
    ],
)
def test_flag_errors_before_training(tmp_path: Path, spec: str, audio, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_run(spec, tmp_path / "run", audio=audio)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize(
    "params, hops",
    [
        ("", 16),
        ("hop=256", 8),
        ("hop=64,window=128,n_fft=128", 32),
        ("mean_hops=0", 0),
        ("mean_hops=5,hop=256", 5),
        ("sample_rate=16000,fmax=8000,hop=160,window=400,n_fft=512", 26),
        ("sample_rate=48000,fmax=8000,hop=8,window=16,n_fft=16,n_mels=2", 1024),  # capped
    ],
)
def test_train_running_mean_default(params: str, hops: int) -> None:
    """train --features logmel subtracts a running mean of about a quarter second unless
    --feature-params sets mean_hops (0: none)."""
    assert AudioSettings("logmel", params).frontend().mean_hops == hops


def test_train_window_follows_the_hop() -> None:
    """train --features logmel: a window not given is two hops (frames overlap by half, as the
    defaults do), and an FFT size not given the smallest power of two (>= 256) that holds it;
    what --feature-params sets is kept, and export's frontend.json reading is unchanged."""
    rng = np.random.default_rng(27)
    for hop in [1, 2, 127, 128, 129, 200, 256, 1000, 2048, *rng.integers(1, 2049, 20)]:
        fe = AudioSettings("logmel", f"hop={hop}").frontend()
        assert (fe.hop, fe.window) == (hop, 2 * hop)
        assert fe.n_fft >= max(256, fe.window) and fe.n_fft < max(512, 2 * fe.window)
    assert AudioSettings("logmel", "hop=3000").frontend().window == 4096  # the largest FFT
    for params, (window, n_fft) in {
        "": (256, 256),
        "hop=256,window=256": (256, 256),
        "hop=256,n_fft=256": (256, 256),
        "hop=160,window=400": (400, 512),
        "window=400": (400, 512),
    }.items():
        fe = AudioSettings("logmel", params).frontend()
        assert (fe.window, fe.n_fft) == (window, n_fft), params
    assert parse_params("hop=256").window == LogMel().window  # the dataclass keeps its defaults
    with pytest.raises(ConfigError, match="hop=300 > window=256"):
        AudioSettings("logmel", "hop=300,n_fft=256").frontend()


def test_cli_run_folder_carries_the_front_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        *(sys.executable, "-m", "rnn2c", "train", "--dataset", f"wav:{WAV_DIR}"),
        *("--features", "logmel", "--feature-params", "n_mels=12,n_mfcc=6"),
        *("--test-speaker", "theo", "--steps", "20", "--units", "4", "--quiet", "--out", str(out)),
        *("--audio-augment-params", "speed=0.9:1.1,time_masks=1"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    fe = LogMel.from_json(json.loads((out / "frontend.json").read_text()))
    assert fe == LogMel(n_mels=12, n_mfcc=6, mean_hops=16)  # train's running mean: 0.256 s
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["audio_frontend"] == fe.to_json() and metrics["frame"] == 1
    assert metrics["audio"]["test_speakers"] == ["theo"]
    assert metrics["audio"]["augment"]["speed"] == [0.9, 1.1]
    assert metrics["audio"]["augment"]["time_masks"] == 1
    assert "--audio-augment-params speed=0.9:1.1,time_masks=1" in metrics["command"]
    assert "--features logmel --feature-params n_mels=12,n_mfcc=6" in metrics["command"]
    export_line = next(
        ln for ln in (out / "EXPORT.txt").read_text().splitlines() if ln.startswith("rnn2c export")
    )
    assert export_line.endswith(f"--frontend {out}/frontend.json")
    test = np.load(out / "test.npz")
    theo = [r.path for r in read_recordings(WAV_DIR) if r.speaker == "theo"]
    for i, path in enumerate(theo):
        want = fe.features_int(read_wav(path))
        assert np.array_equal(test["x"][i, : len(want)], want)
    bad = subprocess.run(
        [*cmd[:5], f"wav:{WAV_DIR}", "--out", str(tmp_path / "r2")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--features" in bad.stderr
