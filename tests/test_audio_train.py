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

from rnn2c.export.audio import LogMel
from rnn2c.train.audio import (
    AudioSettings,
    _augment_stream,
    load_wav_dataset,
    read_recordings,
    read_wav,
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
    ],
)
def test_flag_errors_before_training(tmp_path: Path, spec: str, audio, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_run(spec, tmp_path / "run", audio=audio)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_cli_run_folder_carries_the_front_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        *(sys.executable, "-m", "rnn2c", "train", "--dataset", f"wav:{WAV_DIR}"),
        *("--features", "logmel", "--feature-params", "n_mels=12,n_mfcc=6"),
        *("--test-speaker", "theo", "--steps", "20", "--units", "4", "--quiet", "--out", str(out)),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    fe = LogMel.from_json(json.loads((out / "frontend.json").read_text()))
    assert fe == LogMel(n_mels=12, n_mfcc=6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["audio_frontend"] == fe.to_json() and metrics["frame"] == 1
    assert metrics["audio"]["test_speakers"] == ["theo"]
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
