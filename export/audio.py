"""The fixed-point log-mel front end: one definition, a NumPy integer reference, a float twin.

A :class:`LogMel` holds every parameter of the front end (sample rate, window and hop, FFT
size, mel bands and their range, the log floor and step, an optional DCT to MFCCs). From it:

* :meth:`LogMel.features_int` is the integer reference, the arithmetic the C performs step for
  step: frames of ``window`` int16 samples every ``hop`` samples (the ring starts as zeros), a
  Hann window in Q15, a block shift that brings the frame's peak to 2^14, a fixed-point real
  FFT (an ``n_fft / 2``-point complex radix-2 FFT with every stage scaled by 1/2 and rounded,
  then the split into ``n_fft / 2 + 1`` real-input bins, scaled by 1/2 too), the power
  ``re^2 + im^2`` (uint32), the mel energies through sparse Q15 triangle weights (uint64 sums),
  log2 by count-leading-zeros and a 64-entry table in Q8, the block shift and the FFT's scaling
  taken out in the log domain, then int8 features: ``(log2 - floor) * steps_per_log2 - 128``
  rounded and clamped (or, with ``n_mfcc``, a Q15 DCT-II of the Q8 log energies, rounded to
  the same step).
* :meth:`LogMel.features_float` is the same front end in float64 (``numpy.fft.rfft``, float
  triangle weights, ``log2``), in the units of the int8 features before rounding and clamping:
  what the integer features are held against.

Every problem with the parameters raises :class:`FrontEndError` with a one-line message.
"""

from __future__ import annotations

import json
import math
import wave
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError

__all__ = [
    "FrontEndError",
    "LogMel",
    "Recording",
    "label_order",
    "read_recordings",
    "read_wav",
    "wav_sequences",
    "frontend_for",
    "frames",
    "load_frontend",
    "log2_q8",
    "fft_stages_int",
    "parse_params",
]

#: log2 results are fixed point with this many fraction bits (Q8)
LOG_FRAC_BITS = 8
#: entries of the log2 mantissa table (index = the 6 bits after the leading one)
LOG_TABLE_BITS = 6
#: window and twiddle tables are Q15
Q15 = 15
#: a frame's windowed peak is shifted up to [2^14, 2^15) before the FFT
BLOCK_PEAK_BITS = 14
#: the running mean's longest horizon in hops (its table of weights: 2 bytes a hop)
MAX_MEAN_HOPS = 1024
#: the largest FFT (and so window) a front end takes
MAX_N_FFT = 4096
#: rnn2c train's running mean (mean_hops) unless --feature-params sets it: about this many
#: seconds of hops (8 at 8 kHz with a 256-sample hop, 16 with 128); on FSDD's five held-out
#: speakers it measured better than none (docs/audio.md)
MEAN_SECONDS = 0.256


class FrontEndError(ValueError):
    """The front end's parameters are unusable; the message is one line: what is wrong, what
    would be right."""


def _log_table() -> np.ndarray:
    """Q8 log2 of 1 + (i + 0.5) / 64: the middle of each mantissa interval."""
    i = np.arange(1 << LOG_TABLE_BITS, dtype=np.float64)
    frac = np.log2(1.0 + (i + 0.5) / (1 << LOG_TABLE_BITS))
    return np.round(frac * (1 << LOG_FRAC_BITS)).astype(np.int32)


LOG_TABLE = _log_table()


def log2_q8(e: np.ndarray) -> np.ndarray:
    """floor(log2(e)) in Q8 plus the table's fraction: what the C computes with a CLZ and
    ``LOG_TABLE``; ``e`` holds uint64 values >= 1 (int64 result)."""
    e = np.asarray(e, dtype=np.uint64)
    if np.any(e == 0):
        raise ValueError("log2_q8 of 0")
    msb = np.zeros(e.shape, dtype=np.int64)
    v = e.copy()
    for bit in (32, 16, 8, 4, 2, 1):  # the binary search a CLZ does in hardware
        big = v >= (np.uint64(1) << np.uint64(bit))
        msb = np.where(big, msb + bit, msb)
        v = np.where(big, v >> np.uint64(bit), v)
    # the LOG_TABLE_BITS bits below the leading one
    shift = msb - LOG_TABLE_BITS
    left = np.where(shift < 0, e << np.maximum(-shift, 0).astype(np.uint64), e)
    right = left >> np.maximum(shift, 0).astype(np.uint64)
    idx = (right & np.uint64((1 << LOG_TABLE_BITS) - 1)).astype(np.int64)
    return (msb << LOG_FRAC_BITS) + LOG_TABLE[idx]


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def frames(pcm: np.ndarray, window: int, hop: int) -> np.ndarray:
    """The frames a stream of ``pcm`` samples gives, as the C's ring gives them: the ring
    starts as ``window - hop`` zeros, and frame t ends at sample (t + 1) * hop; a last partial
    hop gives no frame. int64 [len(pcm) // hop, window]."""
    pcm = np.asarray(pcm, dtype=np.int64).reshape(-1)
    n = len(pcm) // hop
    padded = np.concatenate([np.zeros(window - hop, dtype=np.int64), pcm[: n * hop]])
    idx = np.arange(n)[:, None] * hop + np.arange(window)[None, :]
    return padded[idx] if n else np.zeros((0, window), dtype=np.int64)


def _round_shift(v: np.ndarray, s: int) -> np.ndarray:
    """(v + 2^(s-1)) >> s on int64 (arithmetic shift: rounds half up)."""
    return (v + (1 << (s - 1))) >> s if s > 0 else v


@dataclass(frozen=True)
class LogMel:
    """The log-mel (or MFCC) front end's parameters; see the module docstring.

    Attributes:
        sample_rate: Hz of the int16 PCM it takes.
        window: samples per frame (a Hann window of this length, periodic).
        hop: samples between frames; the model steps once per hop.
        n_fft: FFT size, a power of two >= window (the frame is zero-padded to it).
        n_mels: mel bands (triangles on the HTK mel scale, peak 1).
        fmin, fmax: the bands' range in Hz (fmax <= sample_rate / 2).
        log_floor: the log2 mel energy (of samples scaled to [-1, 1)) that maps to -128.
        steps_per_log2: int8 steps per log2 unit (a power of two, 1..128): 8 gives 32 log2
            units (96 dB) over the 256 levels.
        n_mfcc: 0 for log-mel features; else the first n_mfcc coefficients of an orthonormal
            DCT-II of the centred log energies (:meth:`dct_q15`), in the same steps.
        mean_hops: 0 for none; else each feature minus its causal running mean (per band, or
            per coefficient: cepstral mean normalisation), the mean taken over every hop since
            the reset for the first ``mean_hops`` hops, then an exponential average with weight
            1 / mean_hops (:meth:`subtract_mean`). It takes the level and the channel
            (microphone, room, voice) out of the features.
    """

    sample_rate: int = 8000
    window: int = 256
    hop: int = 128
    n_fft: int = 256
    n_mels: int = 20
    fmin: float = 60.0
    fmax: float = 4000.0
    log_floor: int = -20
    steps_per_log2: int = 8
    n_mfcc: int = 0
    mean_hops: int = 0

    def __post_init__(self) -> None:
        _check(self)

    # ------------------------------------------------------------------ derived tables
    @property
    def num_features(self) -> int:
        """int8 features per hop (the model's input width)."""
        return self.n_mfcc or self.n_mels

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def feature_scale(self) -> float:
        """log2 units per int8 step."""
        return 1.0 / self.steps_per_log2

    def window_q15(self) -> np.ndarray:
        """The periodic Hann window, Q15 (int16, peak 32767)."""
        n = np.arange(self.window, dtype=np.float64)
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.window)
        return np.round(hann * 32767.0).astype(np.int64)

    def twiddles_q15(self) -> tuple[np.ndarray, np.ndarray]:
        """cos and -sin of 2 pi k / n_fft for k < n_fft / 2, Q15 (int16; 1.0 is 32767)."""
        k = np.arange(self.n_fft // 2, dtype=np.float64)
        ang = 2.0 * np.pi * k / self.n_fft
        return (
            np.round(np.cos(ang) * 32767.0).astype(np.int64),
            np.round(-np.sin(ang) * 32767.0).astype(np.int64),
        )

    def mel_weights(self) -> np.ndarray:
        """Float triangle weights [n_mels, num_bins] (HTK mel scale, peak 1)."""
        edges = _mel_to_hz(
            np.linspace(_hz_to_mel(self.fmin), _hz_to_mel(self.fmax), self.n_mels + 2)
        )
        f = np.arange(self.num_bins, dtype=np.float64) * self.sample_rate / self.n_fft
        lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        up = (f[None, :] - lo) / (mid - lo)
        down = (hi - f[None, :]) / (hi - mid)
        return np.maximum(0.0, np.minimum(up, down))

    def mel_sparse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The Q15 weights as the C holds them: per band its first bin and bin count, and the
        nonzero weights of all bands back to back (uint16, 1.0 is 32768)."""
        q = np.round(self.mel_weights() * 32768.0).astype(np.int64)
        start, count, flat = [], [], []
        for row in q:
            nz = np.flatnonzero(row)
            first, last = (int(nz[0]), int(nz[-1])) if nz.size else (0, -1)
            start.append(first)
            count.append(last - first + 1)
            flat.extend(row[first : last + 1].tolist())
        return np.array(start), np.array(count), np.array(flat, dtype=np.int64)

    def dct_q15(self) -> np.ndarray:
        """DCT-II rows [n_mfcc, n_mels] scaled to keep int8 range, Q15 (int16): row 0 the mean
        of the bands (1 / n_mels), row c > 0 cos(pi c (m + 1/2) / n_mels) * 2 / n_mels."""
        m = np.arange(self.n_mels, dtype=np.float64)
        c = np.arange(self.n_mfcc, dtype=np.float64)[:, None]
        d = np.cos(np.pi * c * (m[None, :] + 0.5) / self.n_mels) * 2.0 / self.n_mels
        d[0] /= 2.0
        return np.round(d * 32767.0).astype(np.int64)

    def log_offset_q8(self) -> int:
        """What turns log2 of the integer mel energy into log2 of the float one (Q8, before
        the block shift): + 2 log2(n_fft) for the FFT's 1/n_fft, - 30 for int16 -> [-1, 1)
        squared, - 15 for the Q15 weights."""
        return (2 * int(math.log2(self.n_fft)) - 2 * 15 - Q15) << LOG_FRAC_BITS

    # ------------------------------------------------------------------ references
    def log_mel_q8(self, pcm: np.ndarray) -> np.ndarray:
        """The integer reference up to the log: Q8 log2 mel energies [frames, n_mels]
        (int64), floored at ``log_floor``."""
        return self.frames_log_q8(frames(pcm, self.window, self.hop))

    def frames_log_q8(self, fr: np.ndarray) -> np.ndarray:
        """:meth:`log_mel_q8` of given frames [F, window] (int16 values)."""
        fr = np.asarray(fr, dtype=np.int64).reshape(-1, self.window)
        xw = _round_shift(fr * self.window_q15()[None, :], Q15)
        peak = np.max(np.abs(xw), axis=1) if len(xw) else np.zeros(0, dtype=np.int64)
        shift = np.where(peak > 0, BLOCK_PEAK_BITS - _msb(np.maximum(peak, 1)), 0)
        shift = np.maximum(shift, 0)  # a peak of 2^14.. stays as it is
        xs = xw << shift[:, None]
        buf = np.zeros((len(fr), self.n_fft), dtype=np.int64)
        buf[:, : self.window] = xs
        re, im = self._rfft_int(buf)
        power = (re * re + im * im).astype(np.uint64)
        start, count, flat = self.mel_sparse()
        energy = np.zeros((len(fr), self.n_mels), dtype=np.uint64)
        pos = 0
        for m in range(self.n_mels):
            w = flat[pos : pos + count[m]].astype(np.uint64)
            energy[:, m] = power[:, start[m] : start[m] + count[m]] @ w
            pos += count[m]
        floor_q8 = self.log_floor << LOG_FRAC_BITS
        log = log2_q8(np.maximum(energy, np.uint64(1)))
        log = log + self.log_offset_q8() - (2 * shift[:, None] << LOG_FRAC_BITS)
        return np.where(energy == 0, floor_q8, np.maximum(log, floor_q8))

    def features_int(self, pcm: np.ndarray) -> np.ndarray:
        """The integer reference: int8 features [frames, num_features] of int16 ``pcm`` from a
        reset (:meth:`frame_features_int`, then :meth:`subtract_mean` with ``mean_hops``)."""
        return self.subtract_mean(self.frame_features_int(pcm))

    def frame_features_int(self, pcm: np.ndarray) -> np.ndarray:
        """Each frame's int8 features on their own, before the running mean (what the C's
        ``<name>_audio_features`` computes of one frame)."""
        return self.quantize_log(self.log_mel_q8(pcm))

    def mean_recip_q14(self) -> np.ndarray:
        """round(2^14 / c) for c = 1..mean_hops: the running mean's weight at its c-th hop."""
        c = np.arange(1, self.mean_hops + 1, dtype=np.int64)
        return (2 * (1 << 14) + c) // (2 * c)

    def subtract_mean(
        self, feats: np.ndarray, state: tuple[np.ndarray, int] | None = None
    ) -> np.ndarray:
        """int8 features [T, F] -> each minus its running mean (the identity without
        ``mean_hops``), from a reset or from ``state`` = (Q8 means [F], hops seen), as the C
        keeps them. Per hop: c = min(hops + 1, mean_hops); mean += round((x * 256 - mean) *
        round(2^14 / c) / 2^14); out = clamp(round((x * 256 - mean) / 256)), int32 throughout
        (|x * 256 - mean| < 2^16)."""
        feats = np.asarray(feats)
        if not self.mean_hops:
            return feats.astype(np.int8)
        out, _ = self.mean_step(feats, state)
        return out

    def mean_step(
        self, feats: np.ndarray, state: tuple[np.ndarray, int] | None = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
        """:meth:`subtract_mean` that also returns the state after the last hop."""
        x = np.asarray(feats, dtype=np.int64).reshape(-1, self.num_features) << 8
        mean, hops = (
            (np.zeros(self.num_features, dtype=np.int64), 0)
            if state is None
            else (np.array(state[0], dtype=np.int64), int(state[1]))
        )
        recip = self.mean_recip_q14()
        out = np.zeros(x.shape, dtype=np.int64)
        for t in range(len(x)):
            hops = min(hops + 1, self.mean_hops)
            mean = mean + _round_shift((x[t] - mean) * recip[hops - 1], 14)
            out[t] = _round_shift(x[t] - mean, 8)
        return np.clip(out, -128, 127).astype(np.int8), (mean, hops)

    def quantize_log(self, log_q8: np.ndarray) -> np.ndarray:
        """Q8 log2 energies [frames, n_mels] -> the int8 features (through the DCT with
        ``n_mfcc``)."""
        step_shift = LOG_FRAC_BITS - int(math.log2(self.steps_per_log2))
        # centred: the log energy 128 steps above the floor is 0
        rel = log_q8 - (self.log_floor << LOG_FRAC_BITS) - (128 << step_shift)
        if self.n_mfcc:
            rel = _round_shift(rel @ self.dct_q15().T, Q15)
        return np.clip(_round_shift(rel, step_shift), -128, 127).astype(np.int8)

    def features_float(self, pcm: np.ndarray) -> np.ndarray:
        """The same front end in float64, in int8 steps before rounding and clamping
        [frames, num_features]."""
        fr = frames(pcm, self.window, self.hop).astype(np.float64) / 32768.0
        n = np.arange(self.window, dtype=np.float64)
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.window)
        spec = np.fft.rfft(fr * hann[None, :], n=self.n_fft, axis=1)
        energy = (np.abs(spec) ** 2) @ self.mel_weights().T
        log = np.maximum(np.log2(np.maximum(energy, 1e-300)), float(self.log_floor))
        rel = (log - self.log_floor) * self.steps_per_log2 - 128.0
        if self.n_mfcc:
            rel = rel @ (self.dct_q15().T / 32767.0)
        if self.mean_hops:  # the running mean in float, of the unrounded features
            mean = np.zeros(rel.shape[1])
            out = np.zeros_like(rel)
            for t in range(len(rel)):
                mean += (rel[t] - mean) / min(t + 1, self.mean_hops)
                out[t] = rel[t] - mean
            rel = out
        return rel

    def _rfft_int(self, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fixed-point real FFT of real frames [F, n_fft] -> (re, im) [F, n_fft/2 + 1]
        of DFT / n_fft, as the C computes it."""
        half = self.n_fft // 2
        zr, zi = buf[:, 0::2].copy(), buf[:, 1::2].copy()
        cos_t, sin_t = self.twiddles_q15()  # W_N^k = cos - i sin; sin_t holds -sin
        order = _bit_reverse(half)
        zr, zi = fft_stages_int(zr[:, order], zi[:, order], cos_t, sin_t)
        # split: X[k] = (E[k] + W_N^k O[k]) / 2 with E = (Z[k] + conj Z[M-k]) / 2,
        # O = (Z[k] - conj Z[M-k]) / (2i)
        k = np.arange(half + 1)
        kr = np.where(k == half, 0, k)
        mk = np.where(k == 0, 0, half - k) % half
        ar, ai = zr[:, kr], zi[:, kr]
        br, bi = zr[:, mk], -zi[:, mk]
        er, ei = (ar + br) >> 1, (ai + bi) >> 1
        orr, oi = (ai - bi) >> 1, (br - ar) >> 1
        cw = np.where(k == half, -32767, np.concatenate([cos_t, [0]]))
        sw = np.where(k == half, 0, np.concatenate([sin_t, [0]]))
        tr = _round_shift(orr * cw[None, :] - oi * sw[None, :], Q15)
        ti = _round_shift(orr * sw[None, :] + oi * cw[None, :], Q15)
        return (er + tr) >> 1, (ei + ti) >> 1

    def c_tables(self) -> dict[str, Any]:
        """What the generated C's front end block (firmware_templates/frontend.c.j2) writes:
        the tables as integer arrays and the constants of ``rnn2c_logmel_t``."""
        cos_t, sin_t = self.twiddles_q15()
        start, count, flat = self.mel_sparse()
        step_shift = LOG_FRAC_BITS - int(math.log2(self.steps_per_log2))
        return {
            **asdict(self),
            "num_features": self.num_features,
            "half": self.n_fft // 2,
            "win": self.window_q15(),
            "cos": cos_t,
            "sin": sin_t,
            "mel_start": start,
            "mel_count": count,
            "mel_w": flat,
            "log_table": LOG_TABLE,
            "dct": self.dct_q15() if self.n_mfcc else None,
            "mean_recip": self.mean_recip_q14() if self.mean_hops else None,
            "log_offset": self.log_offset_q8(),
            "floor_q8": self.log_floor << LOG_FRAC_BITS,
            "centre": 128 << step_shift,
            "step_shift": step_shift,
            "table_bytes": 2 * (self.window + self.n_fft + 2 * self.n_mels + len(flat) + 64)
            + (2 * self.n_mfcc * self.n_mels)
            + 2 * self.mean_hops,
        }

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        """The definition as the run folder and the export carry it."""
        return {"kind": "logmel", **asdict(self)}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogMel:
        if data.get("kind") != "logmel":
            raise FrontEndError(
                f"front end kind {data.get('kind')!r}; expected 'logmel' (a train run's "
                "frontend.json)"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"kind"})
        if unknown:
            raise FrontEndError(f"front end: unknown parameter(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if k != "kind"})

    def spec(self) -> str:
        """key=value,... of the parameters that differ from the defaults ('' for none)."""
        default = LogMel()
        return ",".join(
            f"{f.name}={getattr(self, f.name):g}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        )


def _msb(v: np.ndarray) -> np.ndarray:
    """Position of the highest set bit of positive int64 values."""
    return np.floor(np.log2(v.astype(np.float64))).astype(np.int64)


def fft_stages_int(
    zr: np.ndarray, zi: np.ndarray, cos_t: np.ndarray, sin_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The stages of the complex radix-2 FFT of rows [F, m] in bit-reversed order (m a power of
    two), each stage scaled by 1/2: a butterfly gives (a + t) >> 1 and (a - t) >> 1, t = b * W
    rounded from Q15; ``cos_t``/``sin_t``: the 2m-point real FFT's Q15 twiddles
    (:meth:`LogMel.twiddles_q15`). The twin of the runtime's ``rnn2c_fft_q15``; new arrays."""
    zr, zi = np.array(zr, dtype=np.int64), np.array(zi, dtype=np.int64)
    m = zr.shape[1]
    size = 2
    while size <= m:
        step = 2 * m // size  # W_size^j = W_2m^(j * 2m / size)
        for j in range(size // 2):
            wr, wi = int(cos_t[j * step]), int(sin_t[j * step])
            a = np.arange(j, m, size)
            b = a + size // 2
            tr = _round_shift(zr[:, b] * wr - zi[:, b] * wi, Q15)
            ti = _round_shift(zr[:, b] * wi + zi[:, b] * wr, Q15)
            ar, ai = zr[:, a], zi[:, a]
            zr[:, a], zi[:, a] = (ar + tr) >> 1, (ai + ti) >> 1
            zr[:, b], zi[:, b] = (ar - tr) >> 1, (ai - ti) >> 1
        size *= 2
    return zr, zi


def _bit_reverse(n: int) -> np.ndarray:
    bits = int(math.log2(n))
    idx = np.arange(n)
    out = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        out |= ((idx >> b) & 1) << (bits - 1 - b)
    return out


def _is_pow2(v: int) -> bool:
    return v > 0 and (v & (v - 1)) == 0


def _check(p: LogMel) -> None:
    """One-line errors for unusable parameters."""
    for name in ("sample_rate", "window", "hop", "n_fft", "n_mels"):
        v = getattr(p, name)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            raise FrontEndError(f"logmel {name}={v!r}; expected a positive integer")
    if not _is_pow2(p.n_fft) or p.n_fft < 8 or p.n_fft > MAX_N_FFT:
        raise FrontEndError(
            f"logmel n_fft={p.n_fft}; expected a power of two from 8 to {MAX_N_FFT}"
        )
    if p.window > p.n_fft:
        raise FrontEndError(f"logmel window={p.window} > n_fft={p.n_fft}; expected window <= n_fft")
    if p.hop > p.window:
        raise FrontEndError(f"logmel hop={p.hop} > window={p.window}; expected hop <= window")
    if not 0.0 <= p.fmin < p.fmax <= p.sample_rate / 2:
        raise FrontEndError(
            f"logmel fmin={p.fmin:g}, fmax={p.fmax:g}; expected 0 <= fmin < fmax <= "
            f"sample_rate / 2 = {p.sample_rate / 2:g}"
        )
    if not _is_pow2(p.steps_per_log2) or p.steps_per_log2 > 128:
        raise FrontEndError(
            f"logmel steps_per_log2={p.steps_per_log2}; expected a power of two from 1 to 128"
        )
    if not -64 <= p.log_floor <= 32:
        raise FrontEndError(f"logmel log_floor={p.log_floor}; expected an integer in -64..32")
    if (
        not isinstance(p.mean_hops, (int, np.integer))
        or isinstance(p.mean_hops, bool)
        or not 0 <= p.mean_hops <= MAX_MEAN_HOPS
    ):
        raise FrontEndError(
            f"logmel mean_hops={p.mean_hops!r}; expected 0 (no running mean) or the running "
            f"mean's hops, 1 to {MAX_MEAN_HOPS}"
        )
    if not 0 <= p.n_mfcc <= p.n_mels:
        raise FrontEndError(f"logmel n_mfcc={p.n_mfcc}; expected 0 (log-mel) to n_mels={p.n_mels}")
    counts = (p.mel_weights() > 0).sum(axis=1)
    if np.any(counts == 0):
        raise FrontEndError(
            f"logmel n_mels={p.n_mels}: some bands hold no FFT bin at n_fft={p.n_fft}; use "
            "fewer bands, a wider fmin..fmax or a larger n_fft"
        )


def parse_params(text: str, derive: bool = False) -> LogMel:
    """``key=value,...`` (e.g. ``n_mels=20,hop=128``) -> a :class:`LogMel`; '' = defaults.

    ``derive`` (``rnn2c train``'s defaults, from what the text gives): a ``window`` not given is
    twice a given hop (the defaults' overlap, so a longer hop keeps half-overlapping frames; at
    most a given ``n_fft``), an ``n_fft`` not given the smallest power of two that holds the
    window (at least the default's), and a ``mean_hops`` not given about MEAN_SECONDS of hops
    (1 to MAX_MEAN_HOPS)."""
    kw = _param_values(text)
    if not derive:
        return LogMel(**kw)
    hop = kw.get("hop", 0)
    if "window" not in kw and 0 < hop <= MAX_N_FFT:
        kw["window"] = min(2 * hop, kw.get("n_fft", MAX_N_FFT))
    window = kw.get("window", 0)
    if "n_fft" not in kw and 0 < window <= MAX_N_FFT:
        kw["n_fft"] = max(LogMel.n_fft, 1 << (window - 1).bit_length())
    rate, hop = kw.get("sample_rate", LogMel.sample_rate), kw.get("hop", LogMel.hop)
    if "mean_hops" not in kw and rate > 0 and hop > 0:
        kw["mean_hops"] = min(MAX_MEAN_HOPS, max(1, round(MEAN_SECONDS * rate / hop)))
    return LogMel(**kw)


def _param_values(text: str) -> dict[str, Any]:
    kinds = {f.name: f.type for f in fields(LogMel)}
    kw: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in kinds:
            raise FrontEndError(
                f"logmel parameter {item!r}; expected key=value with key one of {', '.join(kinds)}"
            )
        try:
            kw[key] = float(value) if kinds[key] == "float" else int(value)
        except ValueError:
            raise FrontEndError(
                f"logmel {key}={value!r}; expected a number ({kinds[key]})"
            ) from None
    return kw


def load_frontend(spec: Any) -> LogMel:
    """A front end from a frontend.json path or its dict; ExportError (one line) otherwise."""
    where = "--frontend"
    if isinstance(spec, dict):
        data = spec
    else:
        where = f"--frontend {spec}"
        try:
            with open(spec, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise ExportError(
                f"{where}: cannot read it ({exc.strerror or exc}); expected the frontend.json "
                "of a run trained with --features logmel"
            ) from None
        except ValueError:
            raise ExportError(
                f"{where}: not JSON; expected the frontend.json of a run trained with "
                "--features logmel"
            ) from None
    if not isinstance(data, dict):
        raise ExportError(f"{where}: expected a JSON object with kind 'logmel'")
    try:
        return LogMel.from_json(data)
    except (FrontEndError, TypeError) as exc:
        raise ExportError(f"{where}: {exc}") from None


def frontend_for(spec: Any, input_size: int, samples_per_step: int) -> dict[str, Any]:
    """The front end of an export (``--frontend``), checked against the model: its features are
    the model's whole input, one step per hop."""
    fe = load_frontend(spec)
    if fe.num_features != input_size:
        raise ExportError(
            f"--frontend gives {fe.num_features} features per hop but the model takes "
            f"{input_size} inputs per step; pass the frontend.json of the run that trained it"
        )
    if samples_per_step != 1:
        raise ExportError(
            f"--frontend steps the model once per hop; a framed model ({samples_per_step} "
            "samples per step) cannot take it: train with --frame 1"
        )
    return fe.to_json()


@dataclass(frozen=True)
class Recording:
    path: Path
    label: str
    speaker: str


def read_wav(path: Path, sample_rate: int | None = None) -> np.ndarray:
    """A mono 16-bit PCM WAV file's samples (int16), its rate checked against
    ``sample_rate``."""
    try:
        with wave.open(str(path)) as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise FrontEndError(f"{path}: not a readable WAV file ({exc})") from None
    if channels != 1 or width != 2:
        raise FrontEndError(
            f"{path}: {channels} channel(s) of {8 * width}-bit samples; expected mono 16-bit PCM"
        )
    if sample_rate is not None and rate != sample_rate:
        raise FrontEndError(
            f"{path}: {rate} Hz; the front end takes {sample_rate} Hz (resample the files, or "
            f"pass --feature-params sample_rate={rate})"
        )
    return np.frombuffer(data, dtype="<i2").copy()


def _speaker_of(stem: str, per_folder: bool) -> str:
    if per_folder:
        return stem.split("_nohash_")[0] if "_nohash_" in stem else stem.split("_")[0]
    return stem.split("_")[1]


def read_recordings(folder: Path) -> list[Recording]:
    """The recordings of ``folder`` with their labels and speakers, sorted by path."""
    if not folder.is_dir():
        raise FrontEndError(
            f"wav:{folder}: no such folder; expected a folder of {{label}}_{{speaker}}_"
            "{index}.wav files or of one folder of .wav files per label"
        )
    flat = sorted(folder.glob("*.wav"))
    if flat:
        bad = [p.name for p in flat if len(p.stem.split("_")) < 3]
        if bad:
            raise FrontEndError(
                f"wav:{folder}: {bad[0]} is not named {{label}}_{{speaker}}_{{index}}.wav "
                "(e.g. 3_theo_12.wav); rename it, or use one folder per label"
            )
        return [Recording(p, p.stem.split("_")[0], _speaker_of(p.stem, False)) for p in flat]
    nested = sorted(p for p in folder.glob("*/*.wav") if not p.parent.name.startswith("_"))
    if not nested:
        raise FrontEndError(
            f"wav:{folder}: no .wav files; expected {{label}}_{{speaker}}_{{index}}.wav files "
            "or one folder of .wav files per label"
        )
    return [Recording(p, p.parent.name, _speaker_of(p.stem, True)) for p in nested]


def label_order(labels: set[str]) -> list[str]:
    """Class names in training's order: numbers by value, then the others by name."""
    return sorted(labels, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


def wav_sequences(
    spec: str, frontend: dict[str, Any], class_names: list[str] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``wav:DIR`` replayed for verify: the integer features of every recording [N, T, F]
    (float32 of the int8 values), its class index by ``class_names`` (else training's order),
    the lengths, and a note with the features' error against the float log-mel."""
    fe = LogMel.from_json(frontend)
    folder = Path(spec.split(":", 1)[1] if spec.lower().startswith("wav:") else spec)
    recs = read_recordings(folder.expanduser())
    names = list(class_names) if class_names else label_order({r.label for r in recs})
    unknown = sorted({r.label for r in recs} - set(names))
    if unknown:
        raise FrontEndError(
            f"wav:{folder}: label(s) {', '.join(unknown)} are not among the model's classes "
            f"({', '.join(names)})"
        )
    feats, errs = [], []
    for r in recs:
        pcm = read_wav(r.path, fe.sample_rate)
        q = fe.features_int(pcm)
        if not len(q):
            raise FrontEndError(f"{r.path}: shorter than one hop ({fe.hop} samples)")
        feats.append(q)
        errs.append(np.abs(q - np.clip(fe.features_float(pcm), -128.0, 127.0)).ravel())
    t = max(len(f) for f in feats)
    x = np.zeros((len(feats), t, fe.num_features), dtype=np.float32)
    for i, f in enumerate(feats):
        x[i, : len(f)] = f
    err = np.concatenate(errs)
    note = (
        f"integer front end vs float log-mel over {len(recs)} recordings: max "
        f"{err.max():.2f}, mean {err.mean():.3f} int8 steps ({fe.feature_scale:g} log2 units each)"
    )
    y = np.array([names.index(r.label) for r in recs], dtype=np.int64)
    return x, y, np.array([len(f) for f in feats], dtype=np.int64), note
