"""Declared ranges (--input-range, --output-range): the range a sensor's datasheet gives, which
overrides the one calibration found for the model input and for the final output.

Calibration sets a tensor's int8 range from the values it meets; a series that trends past its
training windows, or a sensor whose calibration recordings never reached its full scale, then
clips on the device. A declared range replaces the calibrated one for that tensor; everything
else is calibrated as before. The override is a separate step after calibration
(quantize.quantize_model calls :func:`declared_input` on the input's calibrated quantization and
:func:`quantize_output` for the last layer), so the calibration code does not change.

Syntax (one string, a path, or Python values through the API):

* ``LO:HI``: one range for every feature (or every output);
* ``IDX:LO:HI,IDX:LO:HI,...``: one range per feature index (features not named keep their
  calibrated range); for the input this needs ``--input-quant per-feature``;
* a ``.json`` file: ``{"0": [lo, hi], ...}``, ``[[lo, hi], ...]`` (one per feature) or
  ``[lo, hi]``; a ``.npz`` file with arrays ``lo`` and ``hi`` (scalars: one range; 1-D: one per
  feature).

The int8 range always holds 0 (zero padding stays exact), so a declared range of 400:1000 is
quantized as 0:1000.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ActQuant, ExportError
from rnn2c.export.quant_rules import act_quant_from_range, choose_range

Pair = tuple[float, float]

#: layer kinds whose output range is calibrated, so a declared output range can replace it
#: (Dense and Conv1D with an unbounded activation; merges)
CALIBRATED_OUTPUT_KINDS = ("dense", "conv1d", "merge")
#: Dense / Conv1D activations with a fixed output scale
FIXED_ACTIVATIONS = ("sigmoid", "tanh", "softmax")


@dataclass(frozen=True)
class DeclaredRange:
    """A parsed --input-range or --output-range: one range for all (``whole``) or one per index
    (``per``); ``flag`` and ``spec`` name it in messages."""

    flag: str
    spec: str
    whole: Pair | None = None
    per: dict[int, Pair] = field(default_factory=dict)

    def describe(self) -> str:
        """The range in the flag's syntax (``-16:16`` or ``0:-16:16,1:0:3.3``), exact: it
        reads back to the same values."""
        if self.whole is not None:
            return f"{_fmt(self.whole[0])}:{_fmt(self.whole[1])}"
        return ",".join(f"{i}:{_fmt(lo)}:{_fmt(hi)}" for i, (lo, hi) in sorted(self.per.items()))

    def to_json(self) -> dict[str, Any]:
        if self.whole is not None:
            return {"all": list(self.whole)}
        return {"per_index": {str(i): list(p) for i, p in sorted(self.per.items())}}

    def ranges(self, n: int, calibrated: list[Pair]) -> list[Pair]:
        """The range of each of n indices: declared, else the calibrated one."""
        if self.whole is not None:
            return [self.whole] * n
        return [self.per.get(i, calibrated[i]) for i in range(n)]


def _fmt(v: float) -> str:
    """v short (%g) where that is exact, else in full."""
    short = f"{v:g}"
    return short if float(short) == v else repr(float(v))


def _number(text: str, what: str, flag: str, spec: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise ExportError(
            f"{flag} {_q(spec)}: {what} {text!r} is not a finite number; {_SYNTAX[flag]}"
        )
    return v


def _q(spec: str) -> str:
    return "'" + spec.replace("'", "") + "'"


_SYNTAX = {
    "--input-range": "give LO:HI (e.g. -16:16), IDX:LO:HI,... per feature (e.g. "
    "0:-16:16,1:0:3.3) or a .json/.npz file",
    "--output-range": "give LO:HI (e.g. 0:1000), IDX:LO:HI,... per output or a .json/.npz file",
}


def _pair(lo: Any, hi: Any, flag: str, spec: str, where: str = "") -> Pair:
    a = _number(str(lo), "LO", flag, spec) if not isinstance(lo, int | float) else float(lo)
    b = _number(str(hi), "HI", flag, spec) if not isinstance(hi, int | float) else float(hi)
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ExportError(f"{flag} {_q(spec)}: {where}LO and HI must be finite; {_SYNTAX[flag]}")
    if a >= b:
        raise ExportError(
            f"{flag} {_q(spec)}: {where}LO {a:g} is not below HI {b:g}; give LO < HI (e.g. -16:16)"
        )
    return a, b


def _index(text: Any, flag: str, spec: str) -> int:
    s = str(text).strip()
    if not s.isdigit():
        raise ExportError(
            f"{flag} {_q(spec)}: index {s!r} is not a whole number >= 0; {_SYNTAX[flag]}"
        )
    return int(s)


def _from_text(text: str, flag: str) -> DeclaredRange:
    parts = [p.strip() for p in text.split(",")]
    fields = [p.split(":") for p in parts]
    if len(parts) == 1 and len(fields[0]) == 2:
        return DeclaredRange(flag, text, whole=_pair(*fields[0], flag, text))
    per: dict[int, Pair] = {}
    for part, f in zip(parts, fields, strict=True):
        if len(f) != 3:
            raise ExportError(
                f"{flag} {_q(text)}: cannot read {part!r} (LO:HI alone, or IDX:LO:HI per "
                f"index); {_SYNTAX[flag]}"
            )
        i = _index(f[0], flag, text)
        if i in per:
            raise ExportError(f"{flag} {_q(text)}: index {i} is given twice; give it once")
        per[i] = _pair(f[1], f[2], flag, text, f"index {i}: ")
    return DeclaredRange(flag, text, per=per)


def _from_values(value: Any, flag: str, spec: str) -> DeclaredRange:
    """A range from JSON-like values: [lo, hi], [[lo, hi], ...] or {"idx": [lo, hi]}."""

    def is_pair(v: Any) -> bool:
        return (
            isinstance(v, list | tuple)
            and len(v) == 2
            and not any(isinstance(x, list | tuple | dict) for x in v)
        )

    if isinstance(value, dict):
        per = {}
        for k, v in value.items():
            i = _index(k, flag, spec)
            if not is_pair(v):
                raise ExportError(
                    f"{flag} {_q(spec)}: index {i}: expected [lo, hi], got {v!r}; {_SYNTAX[flag]}"
                )
            per[i] = _pair(*v, flag, spec, f"index {i}: ")
        if not per:
            raise ExportError(f"{flag} {_q(spec)}: no ranges in it; {_SYNTAX[flag]}")
        return DeclaredRange(flag, spec, per=per)
    if is_pair(value):
        return DeclaredRange(flag, spec, whole=_pair(*value, flag, spec))
    if isinstance(value, list | tuple) and value and all(is_pair(v) for v in value):
        return DeclaredRange(
            flag,
            spec,
            per={i: _pair(*v, flag, spec, f"index {i}: ") for i, v in enumerate(value)},
        )
    raise ExportError(
        f'{flag} {_q(spec)}: expected [lo, hi], [[lo, hi], ...] or {{"0": [lo, hi]}}; '
        f"{_SYNTAX[flag]}"
    )


def _from_file(path: Path, flag: str) -> DeclaredRange:
    spec = str(path)
    try:
        if path.suffix == ".json":
            return _from_values(json.loads(path.read_text()), flag, spec)
        with np.load(path, allow_pickle=False) as z:
            if "lo" not in z.files or "hi" not in z.files:
                raise ExportError(
                    f"{flag} {_q(spec)}: has arrays {sorted(z.files)}; expected `lo` and `hi`"
                )
            lo, hi = np.asarray(z["lo"], np.float64), np.asarray(z["hi"], np.float64)
    except (OSError, ValueError) as e:
        if isinstance(e, ExportError):
            raise
        raise ExportError(f"{flag} {_q(spec)}: cannot read it ({e}); {_SYNTAX[flag]}") from None
    if lo.shape != hi.shape or lo.ndim > 1 or lo.size == 0:
        raise ExportError(
            f"{flag} {_q(spec)}: `lo` {lo.shape} and `hi` {hi.shape} must be two scalars or two "
            "1-D arrays of the same length"
        )
    if lo.ndim == 0:
        return DeclaredRange(flag, spec, whole=_pair(float(lo), float(hi), flag, spec))
    return _from_values([[float(a), float(b)] for a, b in zip(lo, hi, strict=True)], flag, spec)


def parse_range(value: Any, flag: str) -> DeclaredRange | None:
    """A --input-range / --output-range as given (None, a string or path, [lo, hi],
    [[lo, hi], ...], {idx: [lo, hi]} or a DeclaredRange) -> DeclaredRange; one-line
    ExportError for bad syntax, LO >= HI, a repeated index or an unreadable file."""
    if value is None or isinstance(value, DeclaredRange):
        return value
    if isinstance(value, os.PathLike) or (
        isinstance(value, str) and value.strip().lower().endswith((".json", ".npz"))
    ):
        return _from_file(Path(value), flag)
    if isinstance(value, str):
        if not value.strip():
            raise ExportError(f"{flag} '': empty; {_SYNTAX[flag]}")
        return _from_text(value.strip(), flag)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return _from_values(value, flag, repr(value))


def check_indices(r: DeclaredRange | None, n: int, what: str) -> None:
    """One line where a per-index range names an index past the n features / outputs."""
    if r is None or not r.per:
        return
    bad = max(r.per)
    if bad >= n:
        raise ExportError(
            f"{r.flag} {_q(r.spec)}: index {bad} is out of range: the model has {n} {what} "
            f"(indices 0..{n - 1})"
        )


def check_input_range(r: DeclaredRange | None, input_size: int, input_quant: str) -> None:
    """Before the long work: indices within the input, and per-feature ranges only with
    per-feature input quantization (a per-tensor input has one scale: one LO:HI)."""
    check_indices(r, input_size, "input features")
    if r is not None and r.per and input_quant != "per-feature":
        raise ExportError(
            f"--input-range {_q(r.spec)}: per-feature ranges need --input-quant per-feature (one "
            "scale per feature); with --input-quant per-tensor give one LO:HI for all features"
        )


def _outside(values: np.ndarray, lo: float, hi: float) -> int:
    v = np.asarray(values, dtype=np.float64)
    return int(np.count_nonzero((v < lo) | (v > hi)))


def _narrower_note(flag: str, spec: str, outside: int, total: int) -> list[str]:
    if outside == 0:
        return []
    return [
        f"warning: {flag} {spec} is narrower than the calibration data: {outside} of {total} "
        f"calibration values ({100 * outside / max(total, 1):.2f}%) fall outside it, where the "
        "C clips them"
    ]


def declared_input(
    input_q: ActQuant, r: DeclaredRange | None, real: np.ndarray
) -> tuple[ActQuant, list[str]]:
    """The input quantization with the declared range in place of the calibrated one (every
    feature for LO:HI; the named ones for per-feature ranges, which check_input_range allowed
    only with per-feature quantization); real: the calibration set's real steps [M, F], for the
    warning when the range is narrower than they are."""
    if r is None:
        return input_q, []
    f = real.shape[1]
    if r.whole is not None and np.ndim(input_q.scale) == 0:
        q = act_quant_from_range(*r.whole)
        lo, hi = r.whole
        return q, _narrower_note(r.flag, r.describe(), _outside(real, lo, hi), real.size)
    scale = np.broadcast_to(np.asarray(input_q.scale, np.float64), (f,)).copy()
    zp = np.broadcast_to(np.asarray(input_q.zero_point, np.int64), (f,)).copy()
    named = range(f) if r.whole is not None else sorted(r.per)
    outside = total = 0
    for i in named:
        lo, hi = r.whole if r.whole is not None else r.per[i]
        q = act_quant_from_range(lo, hi)
        scale[i], zp[i] = q.scale, q.zero_point
        outside += _outside(real[:, i], lo, hi)
        total += real.shape[0]
    notes = _narrower_note(r.flag, r.describe(), outside, total)
    return ActQuant(scale, zp, input_q.bits), notes


def output_refusal(layer: Any) -> str | None:
    """Why the model's last layer has no calibrated output range to declare (None: it has)."""
    act = getattr(layer, "activation", None)
    kind = layer.kind
    if kind in ("dense", "conv1d") and act in FIXED_ACTIVATIONS:
        return (
            f"the model's output is layer '{layer.name}' with activation {act!r}, whose int8 "
            "output scale is fixed (not calibrated); drop --output-range"
        )
    if kind not in CALIBRATED_OUTPUT_KINDS:
        return (
            f"the model's output is layer '{layer.name}' ({kind}), whose output keeps a fixed "
            "or inherited scale (a recurrent state, pooling, normalization), not a calibrated "
            "range; drop --output-range (or end the model with a linear Dense head)"
        )
    return None


class _DeclaredOutput:
    """An observer view for the last layer, quantized with method 'minmax': "output" gives the
    declared range's ends, every other key the two ends the calibration method chose from its
    values (so the layer's other ranges are what they would have been)."""

    def __init__(self, sub: Any, method: str, lo: float, hi: float) -> None:
        self.sub, self.method, self.lo, self.hi = sub, method, lo, hi

    def get(self, key: str) -> np.ndarray:
        if key == "output":
            return np.array([self.lo, self.hi])
        return np.array(choose_range(self.sub.get(key), self.method))


def output_pair(
    r: DeclaredRange, layer: Any, sub: Any, method: str
) -> tuple[float, float, list[str]]:
    """The one int8 output range a declared --output-range gives (the union of per-index
    ranges, and of the calibrated range where some outputs are not named: the output has one
    scale) and its notes."""
    why = output_refusal(layer)
    if why is not None:
        raise ExportError(f"--output-range {_q(r.spec)}: {why}")
    n = layer.output_size
    check_indices(r, n, "outputs")
    notes = []
    if r.whole is not None:
        lo, hi = r.whole
    else:
        lo = min(p[0] for p in r.per.values())
        hi = max(p[1] for p in r.per.values())
        if len(r.per) < n:
            c_lo, c_hi = choose_range(sub.get("output"), method)
            lo, hi = min(lo, c_lo), max(hi, c_hi)
        if len(r.per) > 1 or len(r.per) < n:
            notes.append(
                f"--output-range {r.describe()}: the int8 output has one scale, so it covers "
                f"the union [{lo:g}, {hi:g}] of the declared ranges"
                + (" and the calibrated range of the outputs not named" if len(r.per) < n else "")
            )
    calib = sub.get("output")
    notes += _narrower_note(r.flag, r.describe(), _outside(calib, lo, hi), int(calib.size))
    return lo, hi, notes


def quantize_output(
    layer: Any,
    q: ActQuant,
    sub: Any,
    method: str,
    state_bits: int,
    r: DeclaredRange,
    parts: list[ActQuant] | None = None,
) -> tuple[Any, list[str]]:
    """The last layer quantized with the declared output range (its rule run on a view of its
    observations whose output range is the declared one); parts: a merge's input
    quantizations."""
    lo, hi, notes = output_pair(r, layer, sub, method)
    view = _DeclaredOutput(sub, method, lo, hi)
    if parts is not None:
        return layer.quantize_parts(parts, view, "minmax"), notes
    return layer.quantize(q, view, "minmax", state_bits), notes


def manifest_entries(
    qmodel: Any, input_range: DeclaredRange | None, output_range: DeclaredRange | None
) -> dict[str, Any]:
    """rnn2c.json's record of the declared ranges (absent when none was declared): as
    declared, and the int8 range each became (0 included; one scale for the output)."""
    out: dict[str, Any] = {}
    if input_range is not None:
        iq = qmodel.input_q
        lo = np.atleast_1d(iq.dequantize(np.int64(-128))).astype(float).tolist()
        hi = np.atleast_1d(iq.dequantize(np.int64(127))).astype(float).tolist()
        out["input_range"] = {
            "declared": input_range.describe(),
            **input_range.to_json(),
            "int8_lo": lo if len(lo) > 1 else lo[0],
            "int8_hi": hi if len(hi) > 1 else hi[0],
        }
    if output_range is not None:
        oq = qmodel.output_q
        out["output_range"] = {
            "declared": output_range.describe(),
            **output_range.to_json(),
            "int8_lo": float(oq.dequantize(np.int64(-128))),
            "int8_hi": float(oq.dequantize(np.int64(127))),
        }
    return out


def describe_manifest(manifest: dict[str, Any] | None) -> str | None:
    """One line for reports (verify, size): the declared ranges an export records, or None."""
    if not manifest:
        return None
    parts = [
        f"{what} {manifest[key]['declared']}"
        for key, what in (("input_range", "input"), ("output_range", "output"))
        if isinstance(manifest.get(key), dict) and "declared" in manifest[key]
    ]
    return ", ".join(parts) or None
