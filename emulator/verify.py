"""`rnn2c verify`: run generated C on sequences and compare it with both references.

(a) the NumPy integer reference (must be equal bit for bit, at every step of every sequence);
(b) the float model's outputs (dequantized error, argmax agreement, accuracy against labels).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.emulator.build import load_model
from rnn2c.export import serialize
from rnn2c.export.api import MANIFEST, qmodel_file, read_any
from rnn2c.export.data import Sequences, check_inputs, load_sequences
from rnn2c.export.ir import ExportError, ModelIR, QuantModel
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import last_step, run_int

DEFAULT_MIN_AGREEMENT = 0.95
DEFAULT_MAX_MEAN_ERROR = 0.03  # mean |int8 - float| as a fraction of the float output range


@dataclass
class StreamReport:
    """int8 vs float over one long stream of concatenated sequences, never reset."""

    steps: int
    sequences: int
    bit_exact: bool
    mean_error_first: float  # mean |int8 - float| over the steps of the first sequence
    mean_error_last: float  # ... over the steps of the last sequence
    max_error_first: float
    max_error_last: float
    agreement: float | None  # argmax agreement over every step
    errors: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # per step


def stream_check(
    ir: ModelIR, qmodel: QuantModel, compiled: Any, seqs: Sequences, min_steps: int
) -> StreamReport:
    """Concatenate the real steps of the sequences (repeating them) to >= min_steps steps and
    run them as one stream through the C, the integer reference and the float IR (which the
    tests hold equal to Keras)."""
    n, t = seqs.x.shape[:2]
    lens = np.full(n, t) if seqs.lengths is None else np.asarray(seqs.lengths)
    parts: list[np.ndarray] = []
    bounds: list[int] = []
    total = 0
    i = 0
    while total < min_steps:
        parts.append(seqs.x[i % n, : lens[i % n]])
        total += int(lens[i % n])
        bounds.append(total)
        i += 1
    stream = np.concatenate(parts)[None]  # [1, S, F]
    xq = qmodel.input_q.quantize(stream)
    c_out = compiled.stream(xq[0])
    ref = run_int(qmodel, xq)[0]
    y_float, _ = observe_model(ir, stream.astype(np.float64))
    err = np.abs(qmodel.output_q.dequantize(c_out) - y_float[0])
    first = slice(0, bounds[0])
    last = slice(bounds[-2] if len(bounds) > 1 else 0, bounds[-1])
    agreement = None
    if qmodel.output_size >= 2:
        agreement = float((c_out.argmax(1) == y_float[0].argmax(1)).mean())
    return StreamReport(
        steps=int(stream.shape[1]),
        sequences=len(parts),
        bit_exact=bool(np.array_equal(c_out, ref)),
        mean_error_first=float(err[first].mean()),
        mean_error_last=float(err[last].mean()),
        max_error_first=float(err[first].max()),
        max_error_last=float(err[last].max()),
        agreement=agreement,
        errors=err.mean(axis=1),
    )


@dataclass
class VerifyReport:
    name: str
    sequences: int
    steps: int
    bit_exact: bool
    mismatched_sequences: int
    first_mismatch: tuple[int, int] | None  # (sequence, step)
    max_abs_error: float
    mean_abs_error: float
    output_range: float
    classifier: bool
    agreement: float | None
    float_accuracy: float | None
    int8_accuracy: float | None
    min_agreement: float
    max_mean_error: float
    state_bytes: int
    stream: StreamReport | None = None
    failures: list[str] = field(default_factory=list)
    outputs: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # float, int8

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("outputs", None)
        if d.get("stream"):
            d["stream"].pop("errors", None)
        d["passed"] = self.passed
        return json.dumps(d, indent=2)

    def plot(self, path: str | Path) -> None:
        """PNG: int8 against float outputs, and the error along the stream if one was run."""
        from rnn2c.emulator.plot import plot_report  # noqa: PLC0415

        assert self.outputs is not None
        stream = self.stream.errors if self.stream is not None else None
        plot_report(path, f"rnn2c verify: {self.name}", *self.outputs, stream)

    def table(self) -> str:
        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.2f}%"

        rows = [
            ("sequences / steps", f"{self.sequences} / {self.steps}", ""),
            (
                "C == integer reference",
                "bit-exact"
                if self.bit_exact
                else f"NO: {self.mismatched_sequences} sequences differ",
                "required",
            ),
            ("max |int8 - float|", f"{self.max_abs_error:.5f}", ""),
            (
                "mean |int8 - float|",
                f"{self.mean_abs_error:.5f}",
                f"<= {self.max_mean_error * self.output_range:.5f} "
                f"({100 * self.max_mean_error:g}% of range {self.output_range:.4g})",
            ),
        ]
        if self.classifier:
            rows.append(("argmax agreement", pct(self.agreement), f">= {pct(self.min_agreement)}"))
        if self.float_accuracy is not None:
            rows.append(
                (
                    "accuracy float / int8",
                    f"{pct(self.float_accuracy)} / {pct(self.int8_accuracy)}",
                    "",
                )
            )
        rows.append(("state", f"{self.state_bytes} bytes", ""))
        if self.stream is not None:
            s = self.stream
            rows += [
                (
                    "stream C == reference",
                    "bit-exact" if s.bit_exact else "NO",
                    f"{s.steps} steps, {s.sequences} sequences, no reset",
                ),
                (
                    "stream mean err first/last",
                    f"{s.mean_error_first:.5f} / {s.mean_error_last:.5f}",
                    "drift check",
                ),
                (
                    "stream max err first/last",
                    f"{s.max_error_first:.5f} / {s.max_error_last:.5f}",
                    "",
                ),
            ]
            if s.agreement is not None:
                rows.append(("stream argmax agreement", pct(s.agreement), "every step"))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [f"rnn2c verify: {self.name}", f"  {'check':<{w0}}  {'result':<{w1}}  threshold"]
        lines += [f"  {a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
        if self.first_mismatch is not None:
            s, t = self.first_mismatch
            lines.append(f"  first C/reference mismatch: sequence {s}, step {t}")
        lines.append("PASS" if self.passed else "FAIL: " + "; ".join(self.failures))
        return "\n".join(lines)


def read_export_dir(out_dir: str | Path, name: str | None = None) -> tuple[str, QuantModel]:
    d = Path(out_dir)
    if not d.is_dir():
        raise ExportError(f"export folder {str(d)!r} does not exist; run `rnn2c export` first")
    if name is None:
        manifest = d / MANIFEST
        if not manifest.is_file():
            raise ExportError(f"{str(d)!r} has no {MANIFEST}; is it an rnn2c export folder?")
        name = str(json.loads(manifest.read_text())["name"])
    qfile = d / qmodel_file(name)
    if not qfile.is_file():
        raise ExportError(f"{str(d)!r} has no {qmodel_file(name)}; re-export the model")
    return name, serialize.load(qfile)


def float_outputs(keras_model: Any, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """The Keras model's output for each sequence cut to its real length: [N, out]."""
    n, t, _ = x.shape
    lens = np.full(n, t) if lengths is None else np.asarray(lengths)
    out: np.ndarray | None = None
    for length in np.unique(lens):
        idx = np.nonzero(lens == length)[0]
        for start in range(0, idx.size, 512):
            chunk = idx[start : start + 512]
            y = np.asarray(keras_model(x[chunk, :length], training=False))
            if y.ndim == 3:  # return_sequences=True: the output at the last step
                y = y[:, -1]
            if out is None:
                out = np.zeros((n, y.shape[-1]))
            out[chunk] = y
    assert out is not None
    return out


def verify(
    model: Any,
    out_dir: str | Path,
    data: str | Path | Sequences | np.ndarray,
    name: str | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    max_mean_error: float = DEFAULT_MAX_MEAN_ERROR,
    cc: str | None = None,
    stream_steps: int = 0,
) -> VerifyReport:
    """Compile the export in out_dir, run `data` through it and compare with both references.

    stream_steps > 0 also runs the sequences back to back as one stream of at least that many
    steps without reset, and reports the error at its start and end (drift).
    """
    name, qmodel = read_export_dir(out_dir, name)
    keras_model, ir = read_any(model)
    if isinstance(data, Sequences):
        seqs = data
    elif isinstance(data, np.ndarray):
        seqs = Sequences(check_inputs(data, "data array", qmodel.input_size), None, None)
    else:
        seqs = load_sequences(data, "--data", qmodel.input_size)
    if seqs.x.shape[2] != qmodel.input_size:
        raise ExportError(
            f"--data has {seqs.x.shape[2]} features; the model takes {qmodel.input_size}"
        )
    xq = qmodel.input_q.quantize(seqs.x)
    compiled = load_model(out_dir, name, cc)
    c_out = compiled.run(xq, seqs.lengths)
    ref = run_int(qmodel, xq, seqs.lengths)
    diff = (c_out != ref).any(axis=2)
    bad_seq = np.nonzero(diff.any(axis=1))[0]
    first = None
    if bad_seq.size:
        s = int(bad_seq[0])
        first = (s, int(np.nonzero(diff[s])[0][0]))
    y_int = qmodel.output_q.dequantize(last_step(c_out, seqs.lengths))
    y_float = float_outputs(keras_model, seqs.x, seqs.lengths)
    err = np.abs(y_int - y_float)
    n, t = seqs.x.shape[:2]
    total_steps = int(n * t if seqs.lengths is None else seqs.lengths.sum())
    out_range = float(y_float.max() - y_float.min()) or 1.0
    y_true = seqs.y
    if y_true is not None and y_true.ndim == 2 and y_true.shape[1] == qmodel.output_size:
        y_true = y_true.argmax(1)  # one-hot labels
    labels = y_true is not None and y_true.ndim == 1 and y_true.dtype.kind in "iu"
    last = qmodel.layers[-1]
    softmax = last.kind == "dense" and getattr(last, "activation", "") == "softmax"
    # a classifier: a softmax head, or integer labels given for a multi-output model (logits)
    classifier = qmodel.output_size >= 2 and (softmax or labels)
    agreement = float((y_int.argmax(1) == y_float.argmax(1)).mean()) if classifier else None
    acc_f = acc_i = None
    if labels and classifier:
        acc_f = float((y_float.argmax(1) == y_true).mean())
        acc_i = float((y_int.argmax(1) == y_true).mean())
    report = VerifyReport(
        name=name,
        sequences=int(seqs.x.shape[0]),
        steps=total_steps,
        bit_exact=bad_seq.size == 0,
        mismatched_sequences=int(bad_seq.size),
        first_mismatch=first,
        max_abs_error=float(err.max()),
        mean_abs_error=float(err.mean()),
        output_range=out_range,
        classifier=classifier,
        agreement=agreement,
        float_accuracy=acc_f,
        int8_accuracy=acc_i,
        min_agreement=min_agreement,
        max_mean_error=max_mean_error,
        state_bytes=int(compiled.state_size),
        outputs=(y_float, y_int),
    )
    if stream_steps > 0:
        report.stream = stream_check(ir, qmodel, compiled, seqs, stream_steps)
        if not report.stream.bit_exact:
            report.failures.append("C output differs from the integer reference on the stream")
    if not report.bit_exact:
        report.failures.append("C output differs from the integer reference")
    if report.mean_abs_error > max_mean_error * out_range:
        report.failures.append("mean error above threshold")
    if agreement is not None and agreement < min_agreement:
        report.failures.append("argmax agreement below threshold")
    return report
