"""Folders of WAV recordings as a training set: ``rnn2c train --dataset wav:DIR --features
logmel``.

A recording's label and speaker come from its name, ``{label}_{speaker}_{index}.wav`` (the
Free Spoken Digit Dataset's naming), or from a folder per label (``DIR/{label}/*.wav``, the
Speech Commands layout, the speaker the name's part before ``_nohash_`` or its first ``_``).
Every file must be mono 16-bit PCM at the front end's sample rate. The split is by speaker (one
speaker held out: the test set is a voice the model never heard) or at random. Training copies
are augmented on the waveform (gain, noise, time shift), and every feature is computed by the
front end's integer reference (:class:`rnn2c.export.audio.LogMel`), so the model trains on
exactly the int8 features the C computes. Problems raise :class:`DatasetError` (one line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.audio import FrontEndError, LogMel, Recording, label_order, parse_params
from rnn2c.export.audio import read_recordings as _read_recordings
from rnn2c.export.audio import read_wav as _read_wav

from .data import Dataset, DatasetError, pad_sequences
from .model import ConfigError

__all__ = [
    "AUDIO_AUGMENT",
    "STREAM_AUGMENT",
    "AudioSettings",
    "Recording",
    "audio_export_text",
    "augment_params",
    "check_audio",
    "is_wav_spec",
    "load_audio",
    "load_wav_dataset",
    "mask_features",
    "read_recordings",
    "read_wav",
    "resample",
]

#: waveform augmentation of each extra training copy: gain in dB (uniform), white noise at an
#: SNR in dB (uniform) against the recording's RMS, and a shift of the start in samples
#: (uniform; positive inserts silence, negative crops); ``speed``: a resampling factor
#: (uniform in the range; 1.2 plays 20 % faster and higher, the speed perturbation that varies
#: the vocal tract's length; (1, 1) is off); then on the copy's int8 features, SpecAugment-style
#: masks: ``freq_masks`` bands of up to ``freq_mask_width`` adjacent features and
#: ``time_masks`` spans of up to ``time_mask_hops`` hops set to the copy's mean feature (0 is off).
#: ±20 dB and 0.85-1.15 are the defaults since FSDD's held-out george measured them better
#: (docs/audio.md); the masks measured worse and are off
AUDIO_AUGMENT: dict[str, Any] = {
    "gain_db": 20.0,
    "snr_db": (10.0, 40.0),
    "shift_ms": 100.0,
    "speed": (0.85, 1.15),
    "freq_masks": 0,
    "freq_mask_width": 4,
    "time_masks": 0,
    "time_mask_hops": 5,
}
#: --audio-context stream: each augmented copy is a word as a stream has it (gain in dB, a
#: lead-in and a tail in seconds, noise under the word over all of it as above), or, in a
#: fraction of the copies, noise alone at a level in dBFS: the label of a noise-only copy is
#: unrelated to its audio, so the loss is least for an even posterior there (no class
#: confident on noise, which the streaming detector's threshold rejects)
STREAM_AUGMENT = {
    "gain_db": 20.0,
    "lead_s": (0.1, 1.0),
    "tail_s": (0.0, 0.25),
    "noise_only": 0.15,
    "noise_dbfs": (-80.0, -30.0),
}


def read_wav(path: Path, sample_rate: int | None = None) -> np.ndarray:
    """export/audio.py's read_wav, its errors as DatasetError."""
    try:
        return _read_wav(path, sample_rate)
    except FrontEndError as exc:
        raise DatasetError(str(exc)) from None


def read_recordings(folder: Path) -> list[Recording]:
    """export/audio.py's read_recordings, its errors as DatasetError."""
    try:
        return _read_recordings(folder)
    except FrontEndError as exc:
        raise DatasetError(str(exc)) from None


def resample(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times as fast (linear interpolation; round(len / factor)
    samples, the first sample kept): speed perturbation, pitch and tempo together."""
    n = len(x)
    m = max(1, int(round(n / factor))) if n else 0
    return np.interp(np.arange(m) * factor, np.arange(n), x.astype(np.float64))


def _augment(
    pcm: np.ndarray, rng: np.random.Generator, rate: int, spec: dict[str, Any] | None = None
) -> np.ndarray:
    """One augmented copy of ``pcm``: speed, gain, white noise, time shift (int16), as
    ``spec`` (default AUDIO_AUGMENT) says. The speed draws from ``rng`` only when it is not
    (1, 1), so copies without it are the same as before it existed."""
    a = AUDIO_AUGMENT if spec is None else spec
    x = pcm.astype(np.float64)
    lo_speed, hi_speed = a["speed"]
    if (lo_speed, hi_speed) != (1.0, 1.0):
        x = resample(x, rng.uniform(lo_speed, hi_speed))
    x = x * 10.0 ** (rng.uniform(-1, 1) * a["gain_db"] / 20.0)
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    lo, hi = a["snr_db"]
    x = x + rng.standard_normal(len(x)) * rms * 10.0 ** (-rng.uniform(lo, hi) / 20.0)
    shift = int(rng.uniform(-1, 1) * a["shift_ms"] * rate / 1000.0)
    if shift > 0:
        x = np.concatenate([np.zeros(shift), x])
    elif shift < 0:
        x = x[min(-shift, max(len(x) - 1, 0)) :]
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _augment_stream(
    pcm: np.ndarray,
    rng: np.random.Generator,
    rate: int,
    longest: int,
    spec: dict[str, Any] | None = None,
) -> np.ndarray:
    """One stream-like copy of ``pcm`` (STREAM_AUGMENT; int16). The lead-in gives way where
    the copy would be longer than both the longest training recording (``longest`` samples)
    and the word plus the longest lead-in, so the padded training length barely grows."""
    a = STREAM_AUGMENT
    n = len(pcm)
    lead = int(rng.uniform(*a["lead_s"]) * rate)
    tail = int(rng.uniform(*a["tail_s"]) * rate)
    lead = min(lead, max(0, max(longest, n + int(a["lead_s"][1] * rate)) - n - tail))
    if rng.uniform() < a["noise_only"]:
        level = 32768.0 * 10.0 ** (rng.uniform(*a["noise_dbfs"]) / 20.0)
        x = rng.standard_normal(lead + n + tail) * level
    else:
        w = pcm.astype(np.float64) * 10.0 ** (rng.uniform(-a["gain_db"], a["gain_db"]) / 20.0)
        rms = float(np.sqrt(np.mean(w * w))) if n else 0.0
        x = np.concatenate([np.zeros(lead), w, np.zeros(tail)])
        lo, hi = (AUDIO_AUGMENT if spec is None else spec)["snr_db"]
        x = x + rng.standard_normal(len(x)) * rms * 10.0 ** (-rng.uniform(lo, hi) / 20.0)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def augment_params(text: str) -> dict[str, Any]:
    """``--audio-augment-params KEY=VALUE,...`` over AUDIO_AUGMENT's defaults: gain_db, shift_ms
    (numbers >= 0), snr_db and speed (LO:HI), freq_masks, freq_mask_width, time_masks,
    time_mask_hops (integers >= 0). One-line ValueError on anything else."""
    spec = dict(AUDIO_AUGMENT)
    for item in (t.strip() for t in text.split(",") if t.strip()):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in spec:
            raise ValueError(
                f"{item!r}; expected KEY=VALUE with KEY one of {', '.join(AUDIO_AUGMENT)}"
            )
        try:
            if key in ("snr_db", "speed"):
                lo, hi = (float(v) for v in value.split(":"))
                spec[key] = (lo, hi)
            elif key in ("gain_db", "shift_ms"):
                spec[key] = float(value)
            else:
                spec[key] = int(value)
        except ValueError:
            kind = "LO:HI" if key in ("snr_db", "speed") else "a number"
            raise ValueError(f"{key}={value}; expected {kind}") from None
    lo_speed, hi_speed = spec["speed"]
    if not 0.5 <= lo_speed <= hi_speed <= 2.0:
        raise ValueError(f"speed={lo_speed:g}:{hi_speed:g}; expected 0.5 <= LO <= HI <= 2")
    if spec["snr_db"][0] > spec["snr_db"][1]:
        raise ValueError("snr_db: expected LO <= HI")
    bad = [k for k, v in spec.items() if not isinstance(v, tuple) and v < 0]
    if bad:
        raise ValueError(f"{bad[0]}={spec[bad[0]]}; expected 0 or more")
    if spec["freq_mask_width"] < 1 or spec["time_mask_hops"] < 1:
        raise ValueError("freq_mask_width and time_mask_hops: expected 1 or more")
    return spec


def mask_features(
    x: np.ndarray, lengths: np.ndarray, rng: np.random.Generator, spec: dict[str, Any]
) -> np.ndarray:
    """SpecAugment-style masks on int8 features [N, T, F] (as float32), each sequence up to its
    length: ``freq_masks`` runs of 1..``freq_mask_width`` features and ``time_masks`` runs of
    1..``time_mask_hops`` hops set to that sequence's mean feature (rounded). A copy."""
    x = x.copy()
    n_feat = x.shape[2]
    for i, length in enumerate(lengths):
        length = int(length)
        if length < 1:
            continue
        seq = x[i, :length]
        fill = np.float32(np.round(seq.mean()))
        for _ in range(int(spec["freq_masks"])):
            w = int(rng.integers(1, min(int(spec["freq_mask_width"]), n_feat) + 1))
            f0 = int(rng.integers(0, n_feat - w + 1))
            seq[:, f0 : f0 + w] = fill
        for _ in range(int(spec["time_masks"])):
            w = int(rng.integers(1, min(int(spec["time_mask_hops"]), length) + 1))
            t0 = int(rng.integers(0, length - w + 1))
            seq[t0 : t0 + w, :] = fill
    return x


def _split(recs: list[Recording], split_by: str, test_speaker: str | None, seed: int) -> np.ndarray:
    """A boolean test mask over ``recs``."""
    speakers = sorted({r.speaker for r in recs})
    if split_by == "speaker":
        held = speakers[-1] if test_speaker in (None, "auto") else test_speaker
        if held not in speakers:
            raise DatasetError(
                f"--test-speaker {held}: no such speaker; the recordings' speakers are "
                f"{', '.join(speakers)}"
            )
        if len(speakers) < 2:
            raise DatasetError(
                f"--split-by speaker: all recordings are by {speakers[0]}; a speaker-"
                "independent split needs two speakers (or use --split-by random)"
            )
        return np.array([r.speaker == held for r in recs])
    if test_speaker not in (None, "auto"):
        raise DatasetError("--test-speaker applies to --split-by speaker only")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(recs), dtype=bool)
    test[rng.permutation(len(recs))[: max(1, len(recs) // 5)]] = True
    return test


def _features(pcms: list[np.ndarray], frontend: LogMel) -> tuple[np.ndarray, np.ndarray]:
    feats = [frontend.features_int(p).astype(np.float32) for p in pcms]
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    short = int(np.argmin(lengths)) if len(lengths) else 0
    if len(lengths) and lengths[short] == 0:
        raise DatasetError(
            f"a recording of {len(pcms[short])} samples is shorter than one hop "
            f"({frontend.hop} samples); remove it or use a shorter hop"
        )
    return pad_sequences(feats), lengths


def load_wav_dataset(
    spec: str,
    frontend: LogMel,
    split_by: str = "speaker",
    test_speaker: str | None = None,
    augment_copies: int = 0,
    seed: int = 0,
    context: str = "word",
    augment: dict[str, Any] | None = None,
) -> tuple[Dataset, dict[str, object]]:
    """``wav:DIR`` -> a classify Dataset of int8 features (as float32), and a description of
    the split for metrics.json (speakers, held-out speaker, files, copies). ``augment``: the
    copies' augmentation (default AUDIO_AUGMENT)."""
    aug = dict(AUDIO_AUGMENT if augment is None else augment)
    folder = Path(spec.split(":", 1)[1] if spec.lower().startswith("wav:") else spec)
    recs = read_recordings(folder.expanduser())
    test = _split(recs, split_by, test_speaker, seed)
    labels = label_order({r.label for r in recs})
    index = {name: i for i, name in enumerate(labels)}
    pcms = [read_wav(r.path, frontend.sample_rate) for r in recs]
    rng = np.random.default_rng(seed)
    train_pcm = [p for p, t in zip(pcms, test, strict=False) if not t]
    train_y = [index[r.label] for r, t in zip(recs, test, strict=False) if not t]
    longest = max((len(p) for p in train_pcm), default=0)
    rate = frontend.sample_rate
    extra = [
        _augment_stream(p, rng, rate, longest, aug)
        if context == "stream"
        else _augment(p, rng, rate, aug)
        for _ in range(augment_copies)
        for p in train_pcm
    ]
    x_train, l_train = _features(train_pcm + extra, frontend)
    if extra and (aug["freq_masks"] or aug["time_masks"]):
        n = len(train_pcm)
        x_train[n:] = mask_features(x_train[n:], l_train[n:], np.random.default_rng([seed, 2]), aug)
    x_test, l_test = _features([p for p, t in zip(pcms, test, strict=False) if t], frontend)
    if not len(x_test) or not len(x_train):
        raise DatasetError(f"wav:{folder}: the split left no training or no test recordings")
    width = max(x_train.shape[1], x_test.shape[1])
    ds = Dataset(
        x_train=_widen(x_train, width),
        y_train=np.array(train_y * (1 + augment_copies), dtype=np.int64),
        x_test=_widen(x_test, width),
        y_test=np.array(
            [index[r.label] for r, t in zip(recs, test, strict=False) if t], dtype=np.int64
        ),
        lengths_train=l_train,
        lengths_test=l_test,
        class_names=labels,
        name=f"wav:{folder.name}",
    )
    info = {
        "split_by": split_by,
        "speakers": sorted({r.speaker for r in recs}),
        "test_speakers": sorted({r.speaker for r, t in zip(recs, test, strict=False) if t}),
        "files_train": int(len(train_pcm)),
        "files_test": int(test.sum()),
        "augment_copies": augment_copies,
        "augment": aug if augment_copies else None,
        **(
            {"context": "stream", "stream_augment": dict(STREAM_AUGMENT)}
            if context == "stream"
            else {}
        ),
    }
    return ds, info


def _widen(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-pad [N, T, F] at the end of T to ``width`` steps."""
    if x.shape[1] >= width:
        return x
    pad = np.zeros((x.shape[0], width - x.shape[1], x.shape[2]), dtype=x.dtype)
    return np.concatenate([x, pad], axis=1)


@dataclass(frozen=True)
class AudioSettings:
    """`rnn2c train`'s audio flags: --features, --feature-params, --split-by, --test-speaker,
    --audio-augment, --audio-context, --audio-augment-params."""

    features: str = "none"
    feature_params: str = ""
    split_by: str = "speaker"
    test_speaker: str | None = None
    audio_augment: int = 1
    audio_context: str = "word"
    audio_augment_params: str = ""

    def augment(self) -> dict[str, Any]:
        try:
            return augment_params(self.audio_augment_params)
        except ValueError as exc:
            raise ConfigError(f"--audio-augment-params: {exc}") from None

    def frontend(self) -> LogMel:
        """The front end --feature-params gives, with train's defaults for what it leaves out
        (parse_params's ``derive``): a running mean of about a quarter second (``mean_hops=0``
        turns it off), a window of two hops and an FFT that holds it."""
        try:
            return parse_params(self.feature_params, derive=True)
        except FrontEndError as exc:
            raise ConfigError(f"--feature-params: {exc}") from None


def is_wav_spec(spec: object) -> bool:
    return isinstance(spec, str) and spec.strip().lower().startswith("wav:")


def check_audio(dataset_spec: object, task: str, a: AudioSettings) -> AudioSettings:
    """``a``, after one-line errors, before any training, for audio flags that do not fit
    together."""
    if a.features not in ("none", "logmel"):
        raise ConfigError(f"--features {a.features!r}; expected none or logmel")
    if a.split_by not in ("speaker", "random"):
        raise ConfigError(f"--split-by {a.split_by!r}; expected speaker or random")
    if not 0 <= a.audio_augment <= 20:
        raise ConfigError(f"--audio-augment {a.audio_augment}; expected 0 to 20 copies")
    if a.audio_context not in ("word", "stream"):
        raise ConfigError(f"--audio-context {a.audio_context!r}; expected word or stream")
    wav = is_wav_spec(dataset_spec)
    if a.audio_context == "stream" and (not wav or a.audio_augment < 1):
        raise ConfigError(
            "--audio-context stream makes the augmented copies of wav:DIR recordings stream-like; "
            "it needs --dataset wav:DIR and --audio-augment 1 or more"
        )
    if wav and a.features == "none":
        raise ConfigError(
            f"--dataset {dataset_spec}: audio needs a front end; add --features logmel"
        )
    if a.features != "none" and not wav:
        raise ConfigError(
            f"--features {a.features} computes features from audio; expected --dataset wav:DIR"
        )
    if wav and task != "classify":
        raise ConfigError(f"--dataset wav:DIR trains --task classify only (not {task})")
    if not wav and (a.feature_params or a.test_speaker not in (None, "auto")):
        raise ConfigError("--feature-params and --test-speaker apply to --dataset wav:DIR only")
    if not wav and a.audio_augment_params:
        raise ConfigError("--audio-augment-params applies to --dataset wav:DIR only")
    if wav:
        a.frontend()
        a.augment()
    return a


def load_audio(
    spec: str, a: AudioSettings, seed: int
) -> tuple[Dataset, dict[str, Any], dict[str, Any]]:
    """The Dataset of a ``wav:DIR`` run, its front end's definition (frontend.json) and the
    split's description (metrics.json ``"audio"``)."""
    frontend = a.frontend()
    ds, info = load_wav_dataset(
        spec,
        frontend,
        a.split_by,
        a.test_speaker,
        a.audio_augment,
        seed,
        a.audio_context,
        a.augment(),
    )
    ds.name = spec
    return ds, frontend.to_json(), info


def audio_export_text(text: str, frontend: dict[str, Any]) -> str:
    """EXPORT.txt of a ``wav:DIR`` run: what the model's input is."""
    fe = LogMel.from_json(frontend)
    lines = text.splitlines()
    lines.insert(
        1,
        f"# The model steps once per {fe.hop} samples of {fe.sample_rate} Hz int16 audio: "
        f"its input is the {fe.num_features} int8 {'MFCCs' if fe.n_mfcc else 'log-mel bands'} "
        "of frontend.json, computed by the front end's integer reference (calib.npz and "
        "test.npz hold them).",
    )
    return "\n".join(lines) + "\n"
