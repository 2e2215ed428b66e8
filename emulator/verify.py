"""`rnn2c verify`: run generated C on sequences and compare it with both references.

(a) the NumPy integer reference (must be equal bit for bit, at every step of every sequence);
(b) the float model's outputs (dequantized error, argmax agreement, and the task's metric
    against the data's `y`, float and int8 C side by side: accuracy for a label per sequence,
    accuracy per step for a label per step (`y` shaped [N, T]: taggers, whose output at every
    step is compared), MAE/RMSE for numeric targets (regression, forecasting: per sequence, or
    per step for a model that returns sequences, `y` shaped [N, T, k] or [N, T]); for an output
    range calibrated from data (a linear or relu head), how many float outputs lie outside the
    int8 output range, named as the cause where the mean error or agreement fails).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.emulator.build import CompiledModel, load_model
from rnn2c.emulator.kinds import VerifyJob, runner_for
from rnn2c.emulator.progress import progress
from rnn2c.emulator.report import (
    CHANCE_FAILURE,
    agreement,
    check_table,
    class_labels,
    comparison_head,
    files_status,
    head_activation,
    pct,
    untrained,
)
from rnn2c.export import kinds
from rnn2c.export.audio import FrontEndError, wav_sequences
from rnn2c.export.data import (
    Sequences,
    check_inputs,
    check_lengths,
    check_tokens,
    data_inputs,
    join_inputs,
    load_sequences,
    mask_lengths,
)
from rnn2c.export.folder import read_export_dir
from rnn2c.export.ir import ExportError, ModelIR, Observer, QuantModel
from rnn2c.export.quantize import observe_model
from rnn2c.export.ranges import describe_manifest
from rnn2c.export.reference import last_step, run_int
from rnn2c.interface import python_api

#: read_export_dir is re-exported (its home is export/folder.py)
__all__ = [
    "DEFAULT_MAX_MEAN_ERROR",
    "DEFAULT_MIN_AGREEMENT",
    "GRAPH_FROM_STEPS",
    "MAX_STREAM_STEPS",
    "StreamReport",
    "VerifyReport",
    "check_push_sample",
    "float_outputs",
    "push_sample_check",
    "read_export_dir",
    "stream_check",
    "verify",
    "verify_sequence",
]

DEFAULT_MIN_AGREEMENT = 0.95
DEFAULT_MAX_MEAN_ERROR = 0.03  # mean |int8 - float| as a fraction of the float output range
#: the share of float outputs outside the int8 output range from which a failing mean-error or
#: agreement check names that clipping as its cause
MATERIAL_CLIPPING = 0.01
#: --stream bound: the integer reference runs in Python, some 0.1-0.5 ms a step, so 10^6 steps
#: take minutes (with progress lines) and a few hundred MB
MAX_STREAM_STEPS = 1_000_000


@dataclass
class StreamReport:
    """int8 vs float over one long stream of concatenated sequences, never reset."""

    steps: int
    sequences: int
    bit_exact: bool
    mean_error: float  # mean |int8 - float| over every step and output
    mean_error_first: float  # mean |int8 - float| over the steps of the first sequence
    mean_error_last: float  # ... over the steps of the last sequence
    max_error_first: float
    max_error_last: float
    worst_error: float  # the largest |int8 - float| of any output at any step
    worst_step: int  # where it happened: step of the stream,
    worst_sequence: int  # the sequence it belongs to (0-based, in stream order)
    worst_step_in_sequence: int  # and the step within that sequence
    threshold: float  # the per-step mean-error threshold (as for the sequences)
    steps_over_threshold: int  # steps whose mean |int8 - float| exceeds it
    # for an output range calibrated from data (a linear or relu head; None for fixed-scale
    # outputs such as softmax, whose ends p = 0 and p >= 0.996 are by design):
    at_limits: float | None  # fraction of steps with some int8 output at -128 or 127
    clipped: float | None  # fraction of steps with some float output outside the int8 range
    agreement: float | None  # argmax (or 0.5-threshold) agreement over every step
    errors: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # per step


class _Discard(Observer):
    """An observer that keeps nothing: the stream's float pass needs only its outputs (an
    Observer keeps every tensor of every step, gigabytes over 10^6 steps)."""

    def observe(self, key: str, x: np.ndarray) -> None:
        pass


def stream_check(
    ir: ModelIR,
    qmodel: QuantModel,
    compiled: Any,
    seqs: Sequences,
    min_steps: int,
    threshold: float,
    head: str,
    calibrated_output: bool,
    prefix: str | None = None,
) -> StreamReport:
    """Concatenate the real steps of the sequences (repeating them) to >= min_steps steps and
    run them as one stream through the C, the integer reference and the float IR (which the
    tests hold equal to Keras). prefix: progress lines on stderr for a long stream
    (emulator/progress.py), e.g. "rnn2c verify"; None: none."""
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
    stream = np.concatenate(parts)[None]  # [1, S, F] (a token model: ids [1, S])
    xq = qmodel.quantize_input(stream)
    if getattr(compiled, "tokens", False):  # through <name>_step_token
        c_out = compiled.step_tokens(stream[0])[1]
    else:
        c_out = compiled.stream(xq[0])
    total = int(stream.shape[1])
    with progress(prefix, "stream, integer reference", total) as tick:
        ref = run_int(qmodel, xq, None, tick)[0]
    with progress(prefix, "stream, float model", total) as tick:
        x_float = ir.float_input(stream).astype(np.float64)
        y_float, _ = observe_model(ir, x_float, None, _Discard(), tick)
    y_float = y_float[0]
    err = np.abs(qmodel.output_q.dequantize(c_out) - y_float)
    per_step = err.mean(axis=1)
    first = slice(0, bounds[0])
    last = slice(bounds[-2] if len(bounds) > 1 else 0, bounds[-1])
    worst = int(np.argmax(err.max(axis=1)))
    seq = int(np.searchsorted(np.asarray(bounds), worst, side="right"))
    start = bounds[seq - 1] if seq > 0 else 0
    oq = qmodel.output_q
    lo, hi = oq.dequantize(np.int64(-128)), oq.dequantize(np.int64(127))
    half = float(np.max(oq.scale)) / 2
    clipped = ((y_float < lo - half) | (y_float > hi + half)).any(axis=1)
    return StreamReport(
        steps=int(stream.shape[1]),
        sequences=len(parts),
        bit_exact=bool(np.array_equal(c_out, ref)),
        mean_error=float(err.mean()),
        mean_error_first=float(err[first].mean()),
        mean_error_last=float(err[last].mean()),
        max_error_first=float(err[first].max()),
        max_error_last=float(err[last].max()),
        worst_error=float(err.max()),
        worst_step=worst,
        worst_sequence=seq,
        worst_step_in_sequence=worst - start,
        threshold=threshold,
        steps_over_threshold=int((per_step > threshold).sum()),
        at_limits=float(((c_out == -128) | (c_out == 127)).any(axis=1).mean())
        if calibrated_output
        else None,
        clipped=float(clipped.mean()) if calibrated_output else None,
        agreement=agreement(head, qmodel.output_q.dequantize(c_out), y_float),
        errors=per_step,
    )


def push_sample_check(
    compiled: CompiledModel, xq: np.ndarray, lengths: np.ndarray | None, c_out: np.ndarray
) -> bool | None:
    """A framed streaming model: the rows fed one sample at a time through <name>_push_sample
    give step's outputs (c_out) bit for bit, and no call but a row's last one gives an output.
    None where that does not apply (unframed, whole-sequence or token models)."""
    if compiled.samples_per_step <= 1:
        return None
    y, rc = compiled.push(xq, lengths)
    n, t = xq.shape[:2]
    real = np.arange(t)[None, :] < (np.full(n, t) if lengths is None else lengths)[:, None]
    return bool(np.array_equal(y, c_out) and not rc[..., :-1][real].any())


def check_push_sample(
    report: VerifyReport,
    compiled: CompiledModel,
    xq: np.ndarray,
    lengths: np.ndarray | None,
    c_out: np.ndarray,
) -> None:
    """push_sample_check into the report (its row, and a failure where push_sample differs)."""
    report.push_sample = push_sample_check(compiled, xq, lengths, c_out)
    if report.push_sample is None:
        return
    report.samples_per_step = compiled.samples_per_step
    if not report.push_sample:
        report.failures.append("push_sample output differs from step")


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
    head: str = "none"  # "argmax" (softmax or logits), "sigmoid" (0.5 threshold) or "none"
    chance: str | None = None  # why the float model looks untrained, if it does
    #: what y says the task is: "classify" (a label per sequence), "tag" (a label per step,
    #: every step compared), "regress" (numeric targets per sequence), "regress per step"
    #: (numeric targets per step, every real step compared), "none" (no y)
    task: str = "none"
    float_mae: float | None = None  # regress: mean |output - target|, float model
    int8_mae: float | None = None  # ... and the int8 C
    float_rmse: float | None = None
    int8_rmse: float | None = None
    #: an output range calibrated from data (a linear or relu head; None for fixed-scale outputs
    #: such as softmax): the share of the compared float outputs outside the int8 output range,
    #: that range ([dequantize(-128) - half a step, dequantize(127) + half a step]), and the
    #: share of the compared int8 outputs at -128 or 127
    output_clipped: float | None = None
    output_limits: list[float] | None = None
    output_at_limits: float | None = None
    #: the ranges declared at export (--input-range, --output-range) as rnn2c.json records
    #: them, e.g. "input -16:16, output 0:1000"; None: all calibrated
    declared_ranges: str | None = None
    files_checked: bool = False  # whether the export's files were checked against its manifest
    changed_files: list[str] = field(default_factory=list)  # files edited after export
    stream: StreamReport | None = None
    whole_sequence: bool = False  # run through <name>_run (Bidirectional, go_backwards)
    max_length: int | None = None
    notes: list[str] = field(default_factory=list)  # what verify decided, for the user
    #: a framed model: whether <name>_push_sample, fed one sample at a time, gave step's outputs
    #: bit for bit, and its samples per step (None: not checked, an unframed, whole-sequence or
    #: token model)
    push_sample: bool | None = None
    samples_per_step: int | None = None
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
        threshold = self.stream.threshold if self.stream is not None else None
        plot_report(path, f"rnn2c verify: {self.name}", *self.outputs, stream, threshold)

    def table(self) -> str:
        files = files_status(self.files_checked, self.changed_files)
        rows = [
            ("export files", files, "sha256 as exported"),
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
        if self.declared_ranges:
            rows.append(("declared ranges", self.declared_ranges, "rnn2c.json"))
        if self.output_clipped is not None and self.output_limits is not None:
            lo, hi = self.output_limits
            how = "declared" if "output " in (self.declared_ranges or "") else "calibrated"
            rows += [
                (
                    "float outputs outside int8",
                    pct(self.output_clipped),
                    f"range [{lo:.4g}, {hi:.4g}], {how}",
                ),
                ("int8 outputs at -128/127", pct(self.output_at_limits), ""),
            ]
        if self.classifier:
            label = "argmax agreement" if self.head == "argmax" else "agreement (p > 0.5)"
            rows.append((label, pct(self.agreement), f">= {pct(self.min_agreement)}"))
        if self.float_accuracy is not None:
            rows.append(
                (
                    "accuracy per step float / int8"
                    if self.task == "tag"
                    else "accuracy float / int8",
                    f"{pct(self.float_accuracy)} / {pct(self.int8_accuracy)}",
                    "",
                )
            )
        if self.float_mae is not None:
            per = " per step" if self.task == "regress per step" else ""
            rows += [
                (f"MAE{per} float / int8", f"{self.float_mae:.5g} / {self.int8_mae:.5g}", "vs y"),
                (f"RMSE{per} float / int8", f"{self.float_rmse:.5g} / {self.int8_rmse:.5g}", ""),
            ]
        rows.append(("state", f"{self.state_bytes} bytes", ""))
        if self.push_sample is not None:
            rows.append(
                (
                    "push_sample == step",
                    "bit-exact" if self.push_sample else "NO",
                    f"{self.samples_per_step} samples per step, one at a time",
                )
            )
        if self.whole_sequence:
            limit = "any length" if self.max_length is None else f"--max-length {self.max_length}"
            rows.append(("C entry point", "run (whole sequence)", limit))
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
            rows += [
                (
                    "stream worst step",
                    f"{s.worst_error:.5f}",
                    f"step {s.worst_step} (sequence {s.worst_sequence}, its step "
                    f"{s.worst_step_in_sequence})",
                ),
                (
                    "stream steps over threshold",
                    f"{s.steps_over_threshold} of {s.steps}",
                    f"mean |err| per step > {s.threshold:.5f}",
                ),
            ]
            if s.at_limits is not None and s.clipped is not None:
                rows.append(
                    (
                        "stream output at int8 limits",
                        f"{100 * s.at_limits:.2f}% of steps",
                        f"float outside the int8 range: {100 * s.clipped:.2f}%",
                    )
                )
            if s.agreement is not None:
                rows.append(("stream agreement", pct(s.agreement), "every step"))
        lines = check_table(f"rnn2c verify: {self.name}", rows)
        if self.first_mismatch is not None:
            s, t = self.first_mismatch
            lines.append(f"  first C/reference mismatch: sequence {s}, step {t}")
        if self.chance:
            lines.append(f"  float model: {self.chance}")
        lines += [f"  note: {note}" for note in self.notes]
        lines.append("PASS" if self.passed else "FAIL: " + "; ".join(self.failures))
        return "\n".join(lines)


#: sequences from this long on run through the Keras model as a TensorFlow graph function:
#: called eagerly, a recurrent layer runs its loop step by step in Python (5-20 ms a step: over
#: half an hour for 2 x 200,000 steps); the graph runs the same kernels, with the same outputs
#: bit for bit, in about 15 s, after a trace of about a second
GRAPH_FROM_STEPS = 256


def graph_call(keras_model: Any) -> Any:
    """keras_model(x, training=False) as a TensorFlow graph function (one trace for every batch
    and length), or the eager call under another Keras backend."""
    import keras  # noqa: PLC0415

    if keras.backend.backend() != "tensorflow":
        return lambda x: keras_model(x, training=False)
    import tensorflow as tf  # noqa: PLC0415

    return tf.function(lambda x: keras_model(x, training=False), reduce_retracing=True)


def float_outputs(
    keras_model: Any, x: np.ndarray, lengths: np.ndarray | None, every_step: bool = False
) -> np.ndarray:
    """The float model's output for each sequence cut to its real length: [N, out] (the last
    step), or with ``every_step`` [N, T, out] for a model that returns sequences (zeros past each
    real length). keras_model: what kinds.read loaded: a Keras model, or an ONNX model (its
    outputs from onnxruntime on the same file)."""
    if not kinds.is_keras(keras_model):
        return keras_model.outputs(x, lengths, every_step)
    n, t = x.shape[:2]
    lens = np.full(n, t) if lengths is None else np.asarray(lengths)
    out: np.ndarray | None = None
    stateful = _stateful_layers(keras_model)
    rows = int(keras_model.inputs[0].shape[0] or 1) if stateful else 512
    graph = None if stateful or lens.max() < GRAPH_FROM_STEPS else graph_call(keras_model)
    for length in np.unique(lens):
        idx = np.nonzero(lens == length)[0]
        for start in range(0, idx.size, rows):
            chunk = idx[start : start + rows]
            if stateful:  # a fixed batch, each row its own stream: reset, then one sequence
                for layer in stateful:
                    layer.reset_state()
                batch = np.resize(x[chunk, :length], (rows, length, x.shape[-1]))
                y = np.asarray(keras_model(keras_inputs(keras_model, batch), training=False))
                y = y[: chunk.size]
            elif graph is not None and length >= GRAPH_FROM_STEPS:
                y = np.asarray(graph(keras_inputs(keras_model, x[chunk, :length])))
            else:
                y = np.asarray(
                    keras_model(keras_inputs(keras_model, x[chunk, :length]), training=False)
                )
            if every_step:
                if y.ndim != 3:
                    raise ExportError(
                        "--data: y holds a label per time step ([N, T]) but the model gives one "
                        "output per sequence; per-step labels need a model whose last recurrent "
                        "layer returns sequences (rnn2c train --task tag)"
                    )
                if out is None:  # a row per step, or a RepeatVector's n rows (maybe more)
                    out = np.zeros((n, max(t, y.shape[1]), y.shape[-1]))
                out[chunk, : y.shape[1]] = y
                continue
            if y.ndim == 3:  # return_sequences=True: the output at the last step
                y = y[:, -1]
            if out is None:
                out = np.zeros((n, y.shape[-1]))
            out[chunk] = y
    assert out is not None
    return out


def keras_inputs(keras_model: Any, x: np.ndarray) -> Any:
    """What the Keras model is called with for rows x: x, or for a model with several inputs
    the list of their parts of x (side by side in input order, as rnn2c's model input)."""
    inputs = getattr(keras_model, "inputs", None) or []
    if len(inputs) < 2:
        return x
    bounds = np.cumsum([0, *(int(t.shape[-1]) for t in inputs)])
    return [x[..., int(a) : int(b)] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _stateful_layers(keras_model: Any) -> list[Any]:
    """The stateful=True recurrent layers of a Keras model (nested models included): Keras
    keeps their state between calls, as the C between step calls, so verify resets them before
    each sequence, as <name>_reset before the C runs one."""
    found = []
    todo = list(getattr(keras_model, "layers", []))
    while todo:
        layer = todo.pop()
        todo.extend(getattr(layer, "layers", []))
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
            found.append(layer)
    return found


def _per_step_labels(y: np.ndarray | None, shape: tuple[int, ...], outputs: int) -> bool:
    """Whether y is a label per time step: integers shaped [N, T] like x (and not one-hot rows
    of an outputs-wide classifier)."""
    if y is None or y.ndim != 2 or y.shape != tuple(shape[:2]) or y.dtype.kind not in "iub":
        return False
    one_hot = y.shape[1] == outputs and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
    return not one_hot


def _numeric_targets(
    qmodel: QuantModel, seqs: Sequences, head: str, label_rows: int
) -> tuple[bool, np.ndarray | None]:
    """(whether y holds a target per output row, the numeric targets as floats) for a model
    without a classifier head: [N, k] or [N] (k = 1) per sequence, [N, T, k] or [N, T] (k = 1)
    per step of a model that returns sequences (T: its output rows, a RepeatVector's n);
    (False, None) where y is not floats; a one-line ExportError for a shape that fits neither."""
    y = seqs.y
    if y is None or head in ("softmax", "sigmoid") or y.dtype.kind != "f":
        return False, None
    n, k = seqs.x.shape[0], qmodel.output_size
    rows = "output rows" if qmodel.fixed_rows is not None else "steps"
    if y.ndim == 3 or (y.ndim == 2 and k == 1 and y.shape[1] == label_rows > 1):
        if not qmodel.returns_sequences:
            raise ExportError(
                f"--data: y has shape {y.shape}, a target per step, but the model gives one "
                f"output per sequence (its last layer does not return sequences): give y "
                f"[N, {k}]" + (" or [N]" if k == 1 else "")
            )
        if qmodel.changes_length and qmodel.fixed_rows is None:
            raise ExportError(
                "--data: y holds a target per time step but the model's output rows are not its "
                "steps (a strided or unpadded Conv1D, or pooling); give one target per sequence"
            )
        per_row = y.reshape(*y.shape[:2], -1) if y.ndim == 2 else y
        if per_row.shape != (n, label_rows, k):
            raise ExportError(
                f"--data: y has shape {y.shape}; per-step targets for this model are "
                f"[N, {label_rows}, {k}]: {k} output(s) at each of its {label_rows} {rows}"
                + (f" ([N, {label_rows}] also does)" if k == 1 else "")
            )
        return True, per_row.astype(np.float64)
    if (y.ndim == 1 and k == 1) or (y.ndim == 2 and y.shape[1] == k):
        return False, y.reshape(len(y), -1).astype(np.float64)
    per_step = f", or per step [N, {label_rows}, {k}]" if qmodel.returns_sequences else ""
    raise ExportError(
        f"--data: y has shape {y.shape}; this model gives {k} output(s) per sequence: give "
        f"numeric targets [N, {k}]{per_step}"
    )


def _check_thresholds(min_agreement: float, max_mean_error: float, stream_steps: int) -> None:
    if not (np.isfinite(min_agreement) and 0.0 <= min_agreement <= 1.0):
        raise ExportError(
            f"--min-agreement {min_agreement}: expected a fraction from 0 to 1, e.g. 0.95"
        )
    if not (np.isfinite(max_mean_error) and 0.0 <= max_mean_error <= 1.0):
        raise ExportError(
            f"--max-mean-error {max_mean_error}: expected a fraction of the output range from "
            "0 to 1, e.g. 0.03"
        )
    if isinstance(stream_steps, bool) or not isinstance(stream_steps, int | np.integer):
        raise ExportError(f"--stream {stream_steps!r}: expected a whole number of steps")
    if not 0 <= stream_steps <= MAX_STREAM_STEPS:
        raise ExportError(
            f"--stream {stream_steps}: expected 0 (off) to {MAX_STREAM_STEPS} steps, e.g. 10000"
        )


def _chance(
    y_float: np.ndarray, labels: np.ndarray | None, acc: float | None, head: str
) -> str | None:
    """Why the float model looks untrained (at chance level, or blind to its input), else None."""
    if labels is not None and acc is not None and labels.size >= 10:
        flat = labels.reshape(-1)
        majority = float(np.bincount(flat).max() / flat.size)
        if acc <= majority:
            return untrained(
                f"at chance level: float accuracy {100 * acc:.2f}% is no better than always "
                f"answering the most frequent class ({100 * majority:.2f}%)"
            )
    if y_float.shape[0] >= 10 and head in ("argmax", "sigmoid"):
        spread = float((y_float.max(axis=0) - y_float.min(axis=0)).max())
        if spread < 1e-3 * max(1.0, float(np.abs(y_float).max())):
            return (
                f"its outputs are nearly constant across the {y_float.shape[0]} sequences "
                f"(largest spread {spread:.2g}): it does not respond to its input"
            )
    return None


def _step_labels(
    qmodel: QuantModel, seqs: Sequences, head_act: str
) -> tuple[bool, int, np.ndarray | None]:
    """(whether y is a label per output row, the rows it labels per sequence, the labels
    validated): a label per step [N, T], or per row of a RepeatVector's n rows [N, n]; else
    y's class labels per sequence (None: no labels)."""
    label_rows = qmodel.fixed_rows or seqs.x.shape[1]
    per_step = _per_step_labels(seqs.y, (seqs.x.shape[0], label_rows), qmodel.output_size)
    if not per_step:
        return False, label_rows, class_labels(seqs.y, head_act, qmodel.output_size)
    assert seqs.y is not None
    if qmodel.changes_length and qmodel.fixed_rows is None:
        raise ExportError(
            "--data: y holds a label per time step but the model's output rows are not its "
            "steps (a strided or unpadded Conv1D, or pooling); give one label per sequence"
        )
    if qmodel.whole_sequence and not qmodel.returns_sequences:
        raise ExportError(
            "--data: y holds a label per time step but the model gives one output per "
            "sequence (its last layer does not return sequences)"
        )
    if head_act == "sigmoid" or qmodel.output_size < 2:
        raise ExportError(
            "--data: y holds a label per time step; that needs a softmax (or logit) head "
            f"with one output per class, and this model's head is {head_act} with "
            f"{qmodel.output_size} output(s)"
        )
    labels = seqs.y.astype(np.int64)
    if labels.min() < 0 or labels.max() >= qmodel.output_size:
        raise ExportError(
            f"--data: per-step labels run from {labels.min()} to {labels.max()}; the model "
            f"has {qmodel.output_size} classes (0..{qmodel.output_size - 1})"
        )
    return True, label_rows, labels


def _regression(
    targets: np.ndarray | None, y_float: np.ndarray, y_int: np.ndarray
) -> dict[str, float]:
    """MAE and RMSE of the float model and the int8 C against numeric targets ({} without)."""
    reg: dict[str, float] = {}
    if targets is not None:
        for key, y_model in (("float", y_float), ("int8", y_int)):
            e = y_model - targets
            reg[f"{key}_mae"] = float(np.abs(e).mean())
            reg[f"{key}_rmse"] = float(np.sqrt((e**2).mean()))
    return reg


def _mean_baseline(
    targets: np.ndarray | None, y_float: np.ndarray, reg: dict[str, float]
) -> str | None:
    """Why a regression model looks untrained (no better than the mean of y), else None."""
    if targets is None or targets.shape[0] < 10:
        return None
    ss_tot = float(((targets - targets.mean(axis=0)) ** 2).sum())
    ss_res = float(((y_float - targets) ** 2).sum())
    if ss_tot > 0 and ss_res >= ss_tot:
        return untrained(
            f"no better than predicting the mean of y: float RMSE "
            f"{reg['float_rmse']:.4g} >= the targets' standard deviation "
            f"{np.sqrt(ss_tot / targets.size):.4g}"
        )
    return None


def _sequences(data: Any, qmodel: QuantModel, mask_value: float | None) -> tuple[Sequences, str]:
    """verify's data, checked: a path, Sequences or an array (token ids for a token model; for a
    model with several inputs also a list of arrays or a dict by input name); a Masking model's
    lengths from the padding where the data gives none (the note says so)."""
    given = isinstance(data, Sequences | np.ndarray | list | tuple | dict)
    what = "the data" if given else "--data"
    return mask_lengths(_data(data, qmodel), mask_value, what)


def _data(data: Any, qmodel: QuantModel) -> Sequences:
    """verify's data as Sequences, checked against the model's inputs."""
    inputs = data_inputs(qmodel)
    if qmodel.embedding is not None and isinstance(data, Sequences | np.ndarray):  # token ids
        given = data if isinstance(data, Sequences) else Sequences(data, None, None)
        ids, lens = check_tokens(given.x, given.lengths, "data", qmodel.embedding)
        return Sequences(ids, given.y, lens)
    if isinstance(data, Sequences):
        x = join_inputs(data.x, *inputs, "data") if inputs else data.x
        return Sequences(
            check_inputs(x, "data", qmodel.input_size),
            data.y,
            check_lengths(data.lengths, np.shape(x), "data"),
        )
    if isinstance(data, np.ndarray | list | tuple | dict) and inputs:
        x = join_inputs(data, *inputs, "data array")
        return Sequences(check_inputs(x, "data array", qmodel.input_size), None, None)
    if isinstance(data, np.ndarray):
        return Sequences(check_inputs(data, "data array", qmodel.input_size), None, None)
    return load_sequences(data, "--data", qmodel.input_size, qmodel.embedding, inputs)


@python_api(out="out_dir", stream="stream_steps", dir="out_dir")
def verify(
    model: Any,
    out_dir: str | Path,
    data: str | Path | Sequences | np.ndarray,
    name: str | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    max_mean_error: float = DEFAULT_MAX_MEAN_ERROR,
    cc: str | None = None,
    stream_steps: int = 0,
    progress_prefix: str | None = None,
) -> Any:
    """Compile the export in out_dir, run `data` through it and compare with both references.

    Checks first that the export's files are the ones exported (sha256 in the manifest) and
    that `model` is the model they were exported from (its kind, then a fingerprint of its
    weights); then the kind's runner verifies (emulator/kinds.py): a VerifyReport for a
    sequence model, a Seq2SeqReport for an encoder-decoder (emulator/seq2seq.py).
    stream_steps > 0 also runs the sequences back to back as one stream of at least that many
    steps without reset, and reports the error along it (drift, worst step, saturation).
    progress_prefix: say how long work goes (more than a few seconds) on stderr, lines that
    start with it (the CLI: "rnn2c verify"); None: silent.
    """
    _check_thresholds(min_agreement, max_mean_error, stream_steps)
    export = read_export_dir(out_dir, name, allow_changed=True)  # a changed file: FAIL, below
    keras_model, model_kind, ir = kinds.read(model)
    kind = export.kind
    if model_kind is not kind:
        raise ExportError(
            f"the model is {model_kind.title} but the export in {str(out_dir)!r} holds "
            f"{kind.title}; pass the model that was exported"
        )
    kind.check_model(ir, export.qmodel, str(out_dir))
    want = (export.manifest or {}).get("model_fingerprint")
    if want is not None and kind.fingerprint(ir) != want:
        raise ExportError(
            f"the model is not the one {str(out_dir)!r} was exported from (its weights or "
            "layers differ); pass that model, or export this one again"
        )
    job = VerifyJob(
        model,
        keras_model,
        ir,
        export,
        data,
        min_agreement,
        max_mean_error,
        cc,
        stream_steps,
        progress_prefix,
    )
    return runner_for(kind).verify(job)


# ---------------------------------------------------------------------------- a sequence model


@dataclass
class _Targets:
    """What the data's y holds for a sequence model, validated."""

    per_step: bool  # a label (or target) per output row: every real step is compared
    label_rows: int  # the rows y labels per sequence (its steps, or a RepeatVector's n)
    labels: np.ndarray | None  # class labels (per sequence, or per step)
    targets: np.ndarray | None  # numeric regression targets
    head_act: str  # the output layer's activation
    head: str  # how outputs are compared: "argmax", "sigmoid" or "none"


@dataclass
class _Compared:
    """What verify holds side by side: a row per compared output (each sequence's last, or
    every real output row)."""

    y_float: np.ndarray  # the float model's outputs [rows, k]
    y_int: np.ndarray  # the C's, dequantized
    codes: np.ndarray  # the C's int8 outputs
    labels: np.ndarray | None
    targets: np.ndarray | None


@dataclass
class _Run:
    """The C's outputs on the data, held against the integer reference."""

    compiled: CompiledModel
    xq: np.ndarray
    c_out: np.ndarray
    mismatched: np.ndarray  # the sequences whose outputs differ from the reference
    first: tuple[int, int] | None  # (sequence, step) of the first difference


def verify_sequence(job: VerifyJob) -> VerifyReport:
    """verify of a sequence model (streaming or whole-sequence), once verify has checked the
    folder and the model: the data read and checked, the C run against the integer
    reference, its outputs compared with the float model's and y, the stream run."""
    qmodel: QuantModel = job.export.qmodel
    data, wav_note = _wav_data(job.data, qmodel, job.export.manifest or {})
    seqs, mask_note = _sequences(data, qmodel, job.ir.mask_value)
    _check_data_lengths(qmodel, seqs, job.stream_steps)
    ys = _read_targets(qmodel, seqs)
    run = _run_c(job, qmodel, seqs)
    report = _report(job, qmodel, seqs, ys, run, _outputs(job, qmodel, seqs, ys, run))
    report.notes = [n for n in (mask_note, wav_note) if n]
    _check(job, report, qmodel, seqs, ys, run)
    return report


def _wav_data(data: Any, qmodel: QuantModel, manifest: dict[str, Any]) -> tuple[Any, str | None]:
    """--data wav:DIR (a model exported with --frontend): the recordings' integer features,
    labels and lengths, and the note on the features' error against the float log-mel; any
    other data as it is."""
    if not (isinstance(data, str) and data.strip().lower().startswith("wav:")):
        return data, None
    if qmodel.frontend is None:
        raise ExportError(
            f"--data {data}: this export has no audio front end; export with --frontend "
            "FRONTEND.json to replay audio, or pass the run's test.npz"
        )
    try:
        x, y, lengths, note = wav_sequences(
            data.strip(), qmodel.frontend, manifest.get("class_names")
        )
    except FrontEndError as exc:
        raise ExportError(str(exc)) from None
    return Sequences(x, y, lengths), note


def _check_data_lengths(qmodel: QuantModel, seqs: Sequences, stream_steps: int) -> None:
    """Refuse what the export cannot run: --stream on a whole-sequence model, sequences longer
    than its --max-length or shorter than its windows."""
    if qmodel.whole_sequence and stream_steps > 0:
        raise ExportError(
            "--stream does not apply to a whole-sequence model (Bidirectional, go_backwards, "
            "RepeatVector, a Conv1D or pooling over the whole sequence): "
            "it has no step to run without reset; drop --stream"
        )
    if qmodel.max_length is not None:
        longest = int(seqs.x.shape[1] if seqs.lengths is None else np.max(seqs.lengths))
        if longest > qmodel.max_length:
            raise ExportError(
                f"--data: sequences run up to {longest} steps but the export takes at most "
                f"--max-length {qmodel.max_length}; export again with a larger --max-length, "
                "or give shorter sequences"
            )
    if qmodel.whole_sequence:
        shortest = int(seqs.x.shape[1] if seqs.lengths is None else np.min(seqs.lengths))
        if shortest < qmodel.min_length():
            raise ExportError(
                f"--data: a sequence of {shortest} steps is shorter than the "
                f"{qmodel.min_length()} steps the model's Conv1D/pooling windows need for one "
                "output (<name>_run refuses it); give longer sequences"
            )


def _read_targets(qmodel: QuantModel, seqs: Sequences) -> _Targets:
    """What y holds: labels per step or per sequence, numeric targets, or nothing."""
    head_act = head_activation(qmodel)
    per_step, label_rows, labels = _step_labels(qmodel, seqs, head_act)
    targets = None
    if not per_step:  # numeric targets, per sequence or per step
        per_step, targets = _numeric_targets(qmodel, seqs, head_act, label_rows)
    head = comparison_head(head_act, qmodel.output_size, labels)
    return _Targets(per_step, label_rows, labels, targets, head_act, head)


def _run_c(job: VerifyJob, qmodel: QuantModel, seqs: Sequences) -> _Run:
    """The C (compiled with the emulator's harness) and the integer reference on the data."""
    xq = qmodel.quantize_input(seqs.x)
    compiled = load_model(job.export.path, job.export.name, job.cc)
    if compiled.tokens:  # ids through <name>_step_token / <name>_run_tokens
        c_out = compiled.run_tokens(seqs.x, seqs.lengths)
    else:
        c_out = compiled.run(xq, seqs.lengths)
    t = seqs.x.shape[1]
    ticks = not qmodel.whole_sequence
    with progress(job.progress_prefix, "integer reference", t, ticks=ticks) as tick:
        ref = run_int(qmodel, xq, seqs.lengths, tick)
    diff = (c_out != ref).any(axis=2)
    bad_seq = np.nonzero(diff.any(axis=1))[0]
    first = None
    if bad_seq.size:
        s = int(bad_seq[0])
        first = (s, int(np.nonzero(diff[s])[0][0]))
    return _Run(compiled, xq, c_out, bad_seq, first)


def _total_steps(seqs: Sequences) -> int:
    n, t = seqs.x.shape[:2]
    return int(n * t if seqs.lengths is None else seqs.lengths.sum())


def _outputs(
    job: VerifyJob, qmodel: QuantModel, seqs: Sequences, ys: _Targets, run: _Run
) -> _Compared:
    """The outputs compared, with their labels or targets: every real output row for a label or
    target per step, else each sequence's last output."""
    n, t = seqs.x.shape[:2]
    keras_phase = progress(
        job.progress_prefix,
        f"float model ({kinds.float_framework(job.keras_model)})",
        _total_steps(seqs),
        ticks=False,
    )
    # per sequence: its output rows (its steps; a RepeatVector's n, a Conv1D's fewer)
    rows = qmodel.output_rows_of(np.full(n, t) if seqs.lengths is None else seqs.lengths)
    labels, targets = ys.labels, ys.targets
    if ys.per_step:
        real = np.arange(ys.label_rows)[None, :] < rows[:, None]
        codes = run.c_out[:, : ys.label_rows][real]  # [rows, out]
        with keras_phase:
            y_float = float_outputs(job.keras_model, seqs.x, seqs.lengths, every_step=True)
        y_float = y_float[:, : ys.label_rows][real]
        labels = labels[real] if labels is not None else None
        targets = targets[real] if targets is not None else None
    else:
        codes = last_step(run.c_out, rows)
        with keras_phase:
            y_float = float_outputs(job.keras_model, seqs.x, seqs.lengths)
    return _Compared(y_float, qmodel.output_q.dequantize(codes), codes, labels, targets)


def _report(
    job: VerifyJob,
    qmodel: QuantModel,
    seqs: Sequences,
    ys: _Targets,
    run: _Run,
    compared: _Compared,
) -> VerifyReport:
    """The figures: errors, output clipping, agreement, accuracy or MAE/RMSE against y, the
    chance check."""
    c = compared
    y_float, y_int, labels, targets = c.y_float, c.y_int, c.labels, c.targets
    head = ys.head
    err = np.abs(y_int - y_float)
    out_range = float(y_float.max() - y_float.min()) or 1.0
    acc_f = acc_i = None
    if labels is not None and head == "argmax":
        acc_f = float((y_float.argmax(1) == labels).mean())
        acc_i = float((y_int.argmax(1) == labels).mean())
    elif labels is not None and head == "sigmoid":
        acc_f = float(((y_float > 0.5) == labels).mean())
        acc_i = float(((y_int > 0.5) == labels).mean())
    if ys.per_step:
        task = "regress per step" if targets is not None else "tag"
    else:
        task = "regress" if targets is not None else "none"
    if task == "none" and acc_f is not None:
        task = "classify"
    reg = _regression(targets, y_float, y_int)
    chance = _chance(y_float, labels, acc_f, head) or _mean_baseline(targets, y_float, reg)
    export = job.export
    return VerifyReport(
        name=export.name,
        sequences=int(seqs.x.shape[0]),
        steps=_total_steps(seqs),
        bit_exact=run.mismatched.size == 0,
        mismatched_sequences=int(run.mismatched.size),
        first_mismatch=run.first,
        max_abs_error=float(err.max()),
        mean_abs_error=float(err.mean()),
        output_range=out_range,
        classifier=head != "none",
        agreement=agreement(head, y_int, y_float),
        float_accuracy=acc_f,
        int8_accuracy=acc_i,
        min_agreement=job.min_agreement,
        max_mean_error=job.max_mean_error,
        state_bytes=int(run.compiled.state_size),
        head=head,
        chance=chance,
        task=task,
        float_mae=reg.get("float_mae"),
        int8_mae=reg.get("int8_mae"),
        float_rmse=reg.get("float_rmse"),
        int8_rmse=reg.get("int8_rmse"),
        files_checked=export.hashed,
        changed_files=export.changed_files,
        declared_ranges=describe_manifest(export.manifest),
        outputs=(y_float, y_int),
        whole_sequence=qmodel.whole_sequence,
        max_length=qmodel.max_length,
        **(_clipping(qmodel, c) if ys.head_act in CALIBRATED_HEADS else {}),
    )


#: output activations whose int8 range is chosen from the calibration data (the others, such
#: as softmax and sigmoid, have fixed output scales whose ends are by design)
CALIBRATED_HEADS = ("linear", "relu")


def _clipping(qmodel: QuantModel, compared: _Compared) -> dict[str, Any]:
    """output_clipped, output_limits and output_at_limits of the report (see VerifyReport)."""
    oq = qmodel.output_q
    half = np.asarray(oq.scale, dtype=np.float64) / 2
    lo = oq.dequantize(np.int64(-128)) - half
    hi = oq.dequantize(np.int64(127)) + half
    y = compared.y_float
    return {
        "output_clipped": float(((y < lo) | (y > hi)).mean()),
        "output_limits": [float(np.min(lo)), float(np.max(hi))],
        "output_at_limits": float(((compared.codes == -128) | (compared.codes == 127)).mean()),
    }


def _clipping_cause(
    share: float | None, what: str, limits: list[float], method: str, again: bool = False
) -> str:
    """The cause a failing error or agreement check names where the float outputs left the
    int8 output range materially ('' where they did not); again: the range and the way out
    were named already in the FAIL line (the share only)."""
    if share is None or share <= MATERIAL_CLIPPING:
        return ""
    if again:
        return f": {100 * share:.2f}% of {what} outside the int8 output range"
    if method in ("minmax", "auto"):  # auto chooses among ranges the calibration set gives
        fix = (
            "export again with a --calib that does, e.g. with these sequences, or declare the "
            "range the device meets with --output-range LO:HI"
        )
    else:
        fix = (
            f"--calibration {method} keeps the bulk of the calibration set's range: export "
            "again with --calibration minmax on a --calib that covers the data's range"
        )
    return (
        f": {100 * share:.2f}% of {what} outside the int8 output range "
        f"[{limits[0]:.4g}, {limits[1]:.4g}] (the calibration set does not cover the data's "
        f"range: {fix})"
    )


def _check(
    job: VerifyJob,
    report: VerifyReport,
    qmodel: QuantModel,
    seqs: Sequences,
    ys: _Targets,
    run: _Run,
) -> None:
    """The checks against their thresholds (the stream run first, where asked), in the order
    of the FAIL line."""
    threshold = job.max_mean_error * report.output_range
    limits, method = report.output_limits or [], qmodel.calibration
    named = False  # the range and the way out, said once in the FAIL line
    if job.export.changed_files:
        report.failures.append(
            "export files edited after export: " + ", ".join(job.export.changed_files)
        )
    if job.stream_steps > 0:
        calibrated = ys.head_act in CALIBRATED_HEADS  # a range chosen from calibration data
        report.stream = stream_check(
            job.ir,
            qmodel,
            run.compiled,
            seqs,
            job.stream_steps,
            threshold,
            ys.head,
            calibrated,
            job.progress_prefix,
        )
        if not report.stream.bit_exact:
            report.failures.append("C output differs from the integer reference on the stream")
        if report.stream.mean_error > threshold:
            steps = "the stream's steps have float outputs"
            why = _clipping_cause(report.stream.clipped, steps, limits, method)
            report.failures.append("stream mean error above threshold" + why)
            named = bool(why)
    if not report.bit_exact:
        report.failures.append("C output differs from the integer reference")
    check_push_sample(report, run.compiled, run.xq, seqs.lengths, run.c_out)
    clipped, outputs = report.output_clipped, "float outputs lie"
    error_failed = report.mean_abs_error > threshold
    if error_failed:
        why = _clipping_cause(clipped, outputs, limits, method, named)
        report.failures.append("mean error above threshold" + why)
    if report.agreement is not None and report.agreement < job.min_agreement:
        why = "" if error_failed else _clipping_cause(clipped, outputs, limits, method, named)
        report.failures.append("agreement below threshold" + why)
    if report.chance:
        report.failures.append(CHANCE_FAILURE)
