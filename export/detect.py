"""Keyword spotting on a stream: the generated ``<name>_detect`` helper's NumPy twin, a
deterministic stream of spoken words with silence and noise between them, and its scoring
as hits, misses and false accepts per hour (docs/audio.md, "Streaming use").

The detector (C: ``<name>_detector_t``, ``<name>_detect_reset``, ``<name>_detect``; integer
only) takes the model's int8 output at every hop, keeps the sum of the last ``hops`` outputs
per class, and reports the class with the largest sum when that sum reaches
``threshold * hops`` (the moving average reaches ``threshold``, in the output's int8 units),
then nothing for ``refractory`` hops. No report before ``hops`` outputs have been seen. The
classes are the model's; "no word" is the average staying under the threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

NONE = -1  # <NAME>_DETECT_NONE


class DetectError(ValueError):
    """A bad detector parameter or stream definition (one line: what, and what would do)."""


@dataclass(frozen=True)
class Detector:
    """The detector's parameters: the C macros <NAME>_DETECT_HOPS, _THRESHOLD, _REFRACTORY."""

    hops: int = 8
    threshold: int = 64
    refractory: int = 63

    def __post_init__(self) -> None:
        if not 1 <= self.hops <= 255:
            raise DetectError(f"detector hops {self.hops}: the moving average takes 1 to 255 hops")
        if not -128 <= self.threshold <= 127:
            raise DetectError(
                f"detector threshold {self.threshold}: an int8 output value, -128 to 127"
            )
        if not 0 <= self.refractory <= 1_000_000:
            raise DetectError(f"detector refractory {self.refractory}: 0 to 1000000 hops")

    def macros(self, name: str) -> list[str]:
        """``-D`` flags that compile the C helper with these parameters."""
        n = name.upper()
        return [
            f"-D{n}_DETECT_HOPS={self.hops}",
            f"-D{n}_DETECT_THRESHOLD={self.threshold}",
            f"-D{n}_DETECT_REFRACTORY={self.refractory}",
        ]


def threshold_for(probability: float, scale: float, zero_point: int) -> int:
    """The int8 output value of ``probability`` under the output's quantization (a softmax
    output exported with scale 1/256 and zero point -128: 0.75 -> 64), clipped to int8."""
    return int(np.clip(round(probability / scale) + zero_point, -128, 127))


def default_detector(output_scale: float, output_zero_point: int, hop_seconds: float) -> Detector:
    """The export's defaults: 8 hops of smoothing, probability 0.75, one second refractory."""
    return Detector(
        hops=8,
        threshold=threshold_for(0.75, output_scale, output_zero_point),
        refractory=max(0, round(1.0 / hop_seconds)),
    )


def reset_hops(hop_seconds: float) -> int:
    """<NAME>_STREAM_RESET_HOPS's default: about two seconds, even (each copy of the model
    has then heard one to two seconds when its output is used)."""
    return max(2, 2 * round(1.0 / hop_seconds))


def stream_outputs(
    run: Callable[[np.ndarray], np.ndarray],
    features: np.ndarray,
    reset: int,
    restart: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """``<name>_stream_push``'s outputs [T, C] over a stream's features [T, F] (int8), from the
    integer model ``run`` (features [N, T, F] -> outputs after every step [N, T, C], e.g.
    ``lambda x: run_int(qmodel, x)``): two copies of the model, copy 0 restarted at hops
    ``reset``, ``2 reset``, ..., copy 1 at ``reset / 2``, ``3 reset / 2``, ...; each hop's output
    is the copy restarted longer ago (copy 0 where ``t % reset >= reset / 2``). ``restart``:
    what each copy does to the features from its restart on (a front end's running mean,
    ``LogMel.subtract_mean`` over ``LogMel.frame_features_int``); none by default."""
    if reset < 2 or reset % 2:
        raise DetectError(f"stream reset {reset} hops: an even number, 2 or more")
    x = np.asarray(features, dtype=np.int8)
    n, half = len(x), reset // 2
    out: np.ndarray | None = None
    for copy, starts in ((0, range(0, n, reset)), (1, [0, *range(half, n, reset)])):
        bounds = [*starts, n]
        segs = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a]
        width = max(b - a for a, b in segs)
        batch = np.zeros((len(segs), width, x.shape[1]), dtype=np.int8)
        for i, (a, b) in enumerate(segs):
            batch[i, : b - a] = x[a:b] if restart is None else restart(x[a:b])
        y = np.asarray(run(batch))
        if out is None:
            out = np.zeros((n, y.shape[2]), dtype=y.dtype)
        for i, (a, b) in enumerate(segs):
            t = np.arange(a, b)
            use = (t % reset >= half) if copy == 0 else (t % reset < half)
            out[t[use]] = y[i, : b - a][use]
    assert out is not None
    return out


def detect(outputs: np.ndarray, det: Detector) -> np.ndarray:
    """The C helper over a stream's outputs [T, C] (int8, one row per hop, from reset): the
    label it returns at every hop (``NONE`` = -1 where it reports nothing), bit for bit."""
    out = np.asarray(outputs)
    if out.ndim != 2 or out.dtype != np.int8:
        raise DetectError(
            f"detect: outputs must be int8 [hops, classes], got {out.dtype} {out.shape}"
        )
    csum = np.cumsum(out.astype(np.int64), axis=0)
    sums = csum.copy()
    sums[det.hops :] -= csum[: -det.hops]
    labels = np.argmax(sums, axis=1)  # the first of equal sums, as the C's strict >
    ready = np.arange(len(out)) >= det.hops - 1
    candidate = ready & (sums[np.arange(len(out)), labels] >= det.threshold * det.hops)
    result = np.full(len(out), NONE, dtype=np.int64)
    free_from = 0
    for t in np.flatnonzero(candidate):
        if t >= free_from:
            result[t] = labels[t]
            free_from = t + det.refractory + 1
    return result


@dataclass(frozen=True)
class Stream:
    """A long int16 recording and where its words are: ``spans`` rows (start, end, label) in
    samples, ``label`` the class index."""

    pcm: np.ndarray
    spans: np.ndarray
    sample_rate: int
    description: str


def make_stream(
    words: list[tuple[np.ndarray, int]],
    sample_rate: int,
    seed: int = 0,
    snr_db: float = 20.0,
    gap_seconds: tuple[float, float] = (1.0, 3.0),
) -> Stream:
    """``words`` (int16 samples, class index) in an order shuffled by ``seed``, each after a
    gap drawn uniformly from ``gap_seconds`` (and one gap at the end), with white noise over
    the whole stream at ``snr_db`` below the words' mean RMS (None or inf: no noise)."""
    if not words:
        raise DetectError("make_stream: no words; give at least one (samples, label) pair")
    lo, hi = gap_seconds
    if not 0 <= lo <= hi:
        raise DetectError(f"make_stream: gaps {lo}..{hi} s; expected 0 <= shortest <= longest")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(words))
    gaps = np.round(rng.uniform(lo, hi, len(words) + 1) * sample_rate).astype(np.int64)
    pieces: list[np.ndarray] = []
    spans = []
    at = 0
    for i, k in enumerate(order):
        pcm, label = words[k]
        pieces += [np.zeros(gaps[i], dtype=np.float64), np.asarray(pcm, dtype=np.float64)]
        at += int(gaps[i])
        spans.append((at, at + len(pcm), int(label)))
        at += len(pcm)
    pieces.append(np.zeros(gaps[-1], dtype=np.float64))
    x = np.concatenate(pieces)
    rms = float(np.mean([np.sqrt(np.mean(np.asarray(p, np.float64) ** 2)) for p, _ in words]))
    noisy = snr_db is not None and np.isfinite(snr_db)
    if noisy:
        x = x + rng.normal(0.0, rms / 10 ** (snr_db / 20.0), len(x))
    pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    text = (
        f"{len(words)} words in seed-{seed} order, gaps {lo:g}-{hi:g} s, "
        + (f"white noise {snr_db:g} dB under the words' mean RMS" if noisy else "no noise")
        + f", {len(pcm) / sample_rate / 60:.1f} min at {sample_rate} Hz"
    )
    return Stream(pcm, np.array(spans, dtype=np.int64).reshape(-1, 3), sample_rate, text)


def score(
    labels: np.ndarray, stream: Stream, hop: int, tolerance_seconds: float = 0.5
) -> dict[str, Any]:
    """Score the per-hop decisions ``labels`` (``detect``'s; hop t ends at sample
    (t + 1) * hop): a report inside a word's window (its first sample to its last plus
    ``tolerance_seconds``) with the word's label is a hit (once per word); any other report
    (wrong label, outside every window, or the same word again) is a false accept; words
    with no hit are misses."""
    tol = round(tolerance_seconds * stream.sample_rate)
    spans = stream.spans
    hit = np.zeros(len(spans), dtype=bool)
    false_accepts = wrong_label = 0
    for t in np.flatnonzero(np.asarray(labels) != NONE):
        when = (t + 1) * hop
        inside = np.flatnonzero((spans[:, 0] <= when) & (when < spans[:, 1] + tol))
        match = [i for i in inside if spans[i, 2] == labels[t] and not hit[i]]
        if match:
            hit[match[0]] = True
            continue
        false_accepts += 1
        wrong_label += int(any(spans[i, 2] != labels[t] for i in inside))
    hours = len(stream.pcm) / stream.sample_rate / 3600.0
    n = len(spans)
    return {
        "words": n,
        "hits": int(hit.sum()),
        "misses": int(n - hit.sum()),
        "false_accepts": false_accepts,
        "wrong_label": wrong_label,
        "hours": hours,
        "hit_rate": float(hit.sum() / n) if n else 0.0,
        "false_accepts_per_hour": false_accepts / hours if hours else 0.0,
    }
