"""`rnn2c bench`: rnn2c's C on the host against LiteRT and TFLite Micro, on the same data.

One model, one data set, one process. The paths:

* **rnn2c C**: the model exported into a temporary folder (the export flags as given), compiled
  with ``-O3 -march=native`` and driven by the emulator harness; ``rnn2c_harness_time`` reads
  the thread CPU-time clock (``clock_gettime(CLOCK_THREAD_CPUTIME_ID)``) inside C around reset +
  T steps of each sequence, so no Python runs inside the measured interval.
* **LiteRT** (1 thread, its default delegate) and **TFLite Micro**: the Keras model converted to
  a full-int8 flatbuffer (rnn2c.export.tflite: unrolled, batch 1, T steps), one ``invoke`` per
  sequence, timed around ``invoke`` alone with ``time.thread_time_ns``. An .onnx model (a PyTorch
  model) has no Keras model to convert: these rows say so and are skipped.
* **Cortex-M0+/M3/M4**: rnn2c's exact instructions per step from ``rnn2c size``'s counter.

Every path runs the same sequences of exactly T steps (the peers' flatbuffers take a fixed T):
T is ``steps`` if given, else the data's T, or with ``lengths`` in the data, the (lower) median
real length; sequences with fewer real steps than T are left out, the others are cut to T.

Timing: a warm-up pass, then ``rounds`` rounds, each running every sequence once through each
path in turn (rnn2c, LiteRT, TFLM, rnn2c, ...). A round's figure for a path is its CPU time
per sequence over that round, less the clock's own cost (measured the same way, empty);
the report gives the median and the range over rounds, per sequence and per step (= / T), and
the per-round ratio to rnn2c (median and range), which cancels most of the noise that a busy
machine puts on all paths alike. Nothing here is ever asserted on: these are figures.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.emulator import size as S
from rnn2c.emulator.build import STRICT_FLAGS, CompiledModel, compile_model, find_compiler
from rnn2c.emulator.kinds import runner_of
from rnn2c.emulator.peers import BENCH_HINT, PEERS, Peer, PeerError, TFLiteMicro, version
from rnn2c.emulator.report import agreement, class_labels, comparison_head, head_activation
from rnn2c.emulator.verify import float_outputs
from rnn2c.export import kinds
from rnn2c.export.api import export_model, read_any
from rnn2c.export.data import Sequences, check_inputs, check_lengths, load_sequences
from rnn2c.export.ir import ExportError
from rnn2c.export.ranges import parse_range
from rnn2c.export.reference import run_int
from rnn2c.export.tflite import ConversionError, one_line, to_int8_tflite
from rnn2c.interface import python_api

HOST_FLAGS = (*STRICT_FLAGS, "-O3", "-march=native")
DEFAULT_TARGETS = ("cortex-m0plus", "cortex-m3", "cortex-m4")
TARGET_LABELS = {
    "cortex-m0plus": "Cortex-M0+",
    "cortex-m3": "Cortex-M3",
    "cortex-m4": "Cortex-M4",
    "cortex-m7": "Cortex-M7",
}
DEFAULT_ROUNDS = 15
#: the counts' bounds: every round runs every sequence through every path, and a step of a
#: peer's unrolled graph is a copy of the model (their flatbuffers grow with T)
MAX_ROUNDS, MAX_STEPS, MAX_SEQUENCES = 1000, 10_000, 1_000_000
CLOCK_SAMPLES = 2000
MCU_SEQUENCES, MCU_STEPS = 2, 16  # steps counted per target: the first 2 sequences x 16 steps


@dataclass
class Spread:
    """Median and range of a figure over rounds."""

    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Any) -> Spread:
        a = np.asarray(values, dtype=np.float64)
        return cls(float(np.median(a)), float(a.min()), float(a.max()))

    def scaled(self, factor: float) -> Spread:
        return Spread(self.median * factor, self.min * factor, self.max * factor)

    def text(self, fmt: str) -> str:
        return f"{self.median:{fmt}} [{self.min:{fmt}}-{self.max:{fmt}}]"


@dataclass
class BenchRow:
    path: str  # "float", "rnn2c", "litert", "tflm", or a Cortex-M target name
    label: str
    kind: str  # "float" (the reference), "host" (timed) or "mcu" (instructions counted)
    error: str | None = None  # why this path has no figures (one line)
    per_sequence_ns: Spread | None = None  # CPU ns per sequence (reset + T steps, or invoke)
    per_step_ns: Spread | None = None
    vs_rnn2c: Spread | None = None  # per-round time ratio to rnn2c's C
    instructions_per_step: Spread | None = None  # mcu: mean (as median), min, max over steps
    model_bytes: int | None = None
    model_bytes_what: str = ""
    ram_bytes: int | None = None
    ram_bytes_what: str = ""
    mean_abs_error: float | None = None  # |dequantized output - float Keras|, last step
    max_abs_error: float | None = None
    agreement: float | None = None  # argmax (or p > 0.5) agreement with float Keras
    accuracy: float | None = None  # against the labels y, if given
    bit_exact: bool | None = None  # rnn2c paths: output == the NumPy integer reference
    version: str | None = None  # the peer's distribution version
    rounds_ns: list[float] = field(default_factory=list)  # per-sequence ns of every round
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BenchReport:
    model: str
    sequences: int  # sequences benchmarked
    left_out: int  # sequences with fewer real steps than `steps`
    steps: int  # T: steps per sequence, for every path
    rounds: int
    head: str  # "argmax", "sigmoid" or "none"
    machine: str
    compiler: str
    host_flags: list[str]
    timer: str
    clock_cost_ns: dict[str, float]  # the timers' own cost, subtracted from every figure
    export: dict[str, str]  # the export flags rnn2c's C was built with
    rows: list[BenchRow]
    notes: list[str] = field(default_factory=list)

    def row(self, path: str) -> BenchRow:
        return next(r for r in self.rows if r.path == path)

    def to_json(self) -> str:
        d = asdict(self)
        for r, row in zip(d["rows"], self.rows, strict=True):
            r["ok"] = row.ok
        return json.dumps(d, indent=2)

    def table(self) -> str:
        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.2f}%"

        def num(v: int | None) -> str:
            return "-" if v is None else f"{v:,}"

        head = (
            "path",
            "per sequence us",
            "per step us",
            "x rnn2c",
            "model B",
            "RAM B",
            "mean / max |err|",
            "agreement",
            "accuracy",
        )
        rows: list[tuple[str, ...]] = []
        for r in self.rows:
            if not r.ok:
                rows.append((r.label, f"error: {r.error}"))
                continue
            if r.kind == "float":
                rows.append((r.label, "-", "-", "-", "-", "-", "reference", "-", pct(r.accuracy)))
                continue
            if r.kind == "mcu":
                ins = r.instructions_per_step
                assert ins is not None
                rows.append(
                    (
                        r.label,
                        "-",
                        f"{ins.median:,.0f} instr [{ins.min:,.0f}-{ins.max:,.0f}]",
                        "-",
                        num(r.model_bytes),
                        num(r.ram_bytes),
                        "bit-exact" if r.bit_exact else "NOT bit-exact",
                        "-",
                        "-",
                    )
                )
                continue
            seq = r.per_sequence_ns.scaled(1e-3).text(".1f") if r.per_sequence_ns else "-"
            step = r.per_step_ns.scaled(1e-3).text(".3f") if r.per_step_ns else "-"
            err = (
                "-"
                if r.mean_abs_error is None
                else f"{r.mean_abs_error:.5f} / {r.max_abs_error:.5f}"
            )
            rows.append(
                (
                    r.label,
                    seq,
                    step,
                    r.vs_rnn2c.text(".2f") if r.vs_rnn2c else "-",
                    num(r.model_bytes),
                    num(r.ram_bytes),
                    err,
                    pct(r.agreement),
                    pct(r.accuracy),
                )
            )
        full = [x for x in [head, *rows] if len(x) == len(head)]
        widths = [max(len(x[i]) for x in full) for i in range(len(head))]
        widths[0] = max(widths[0], *(len(x[0]) for x in rows))
        left = f" ({self.left_out} shorter left out)" if self.left_out else ""
        lines = [
            f"rnn2c bench: {self.model}",
            f"  {self.sequences} sequences x T={self.steps} steps{left}, {self.rounds} rounds "
            f"interleaved; {self.timer}; median [min-max] over rounds",
            f"  host: {self.machine}; {self.compiler} {' '.join(self.host_flags[-2:])}",
            "  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
        ]
        for row in rows:
            cells = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
            lines.append("  " + cells.rstrip())
        lines += [f"  - {r.label}: {n}" for r in self.rows for n in r.notes]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------- inputs


def _sequences(data: Any, what: str, features: int) -> Sequences:
    if isinstance(data, Sequences):
        x = check_inputs(data.x, what, features)
        return Sequences(x, data.y, check_lengths(data.lengths, x.shape, what))
    if isinstance(data, str | os.PathLike):
        return load_sequences(data, what, features)
    return Sequences(check_inputs(data, f"{what} array", features), None, None)


def choose_steps(seqs: Sequences, steps: int | None) -> tuple[int, np.ndarray]:
    """(T, indices of the sequences with at least T real steps)."""
    n, t_data = seqs.x.shape[:2]
    lens = np.full(n, t_data) if seqs.lengths is None else np.asarray(seqs.lengths)
    if steps is None:
        steps = t_data if seqs.lengths is None else int(np.sort(lens)[(n - 1) // 2])
    if steps > t_data:
        raise ExportError(f"--steps {steps}: the data has {t_data} steps per sequence")
    keep = np.nonzero(lens >= steps)[0]
    if keep.size == 0:  # cannot happen for steps <= t_data without lengths
        raise ExportError(
            f"--steps {steps}: no sequence has {steps} real steps (longest {lens.max()})"
        )
    return steps, keep


def _check_args(
    rounds: int, steps: int | None, sequences: int | None, targets: Any, peers: Any
) -> None:
    for flag, v, top in (
        ("--rounds", rounds, MAX_ROUNDS),
        ("--steps", steps, MAX_STEPS),
        ("--sequences", sequences, MAX_SEQUENCES),
    ):
        if v is None and flag != "--rounds":
            continue
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 1 <= v <= top:
            raise ExportError(f"{flag} {v!r}: expected a whole number from 1 to {top}")
    if any(p not in PEERS for p in peers):
        raise ExportError(f"peers {list(peers)}: choose from {', '.join(PEERS)}")
    unknown = [t for t in targets if t not in TARGET_LABELS]
    if unknown:
        raise ExportError(
            f"--targets: unknown {', '.join(unknown)}; choose from {', '.join(TARGET_LABELS)} "
            "or none"
        )


# ---------------------------------------------------------------------------- runners


class HostC:
    """rnn2c's C compiled for this machine, timed inside C."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled
        lib = compiled.lib
        lib.rnn2c_harness_time.restype = ctypes.c_int32
        lib.rnn2c_harness_clock_cost.restype = ctypes.c_int32

    def run(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(xq, dtype=np.int8)
        n, t, _ = x.shape
        y = np.zeros((n, self.compiled.output_size), dtype=np.int8)
        ns = np.zeros(n, dtype=np.int64)
        rc = self.compiled.lib.rnn2c_harness_time(
            x.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int32(n),
            ctypes.c_int32(t),
            y.ctypes.data_as(ctypes.c_void_p),
            ns.ctypes.data_as(ctypes.c_void_p),
        )
        if rc != 0:
            raise PeerError("this system has no thread CPU-time clock (CLOCK_THREAD_CPUTIME_ID)")
        return y, ns

    def clock_cost(self, samples: int = CLOCK_SAMPLES) -> float:
        ns = np.zeros(samples, dtype=np.int64)
        self.compiled.lib.rnn2c_harness_clock_cost(
            ctypes.c_int32(samples), ns.ctypes.data_as(ctypes.c_void_p)
        )
        return float(np.median(ns))


def python_clock_cost(samples: int = CLOCK_SAMPLES) -> float:
    """The cost of one empty `time.thread_time_ns` interval (median)."""
    ns = np.zeros(samples, dtype=np.int64)
    for i in range(samples):
        start = time.thread_time_ns()
        ns[i] = time.thread_time_ns() - start
    return float(np.median(ns))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"


def compiler_banner(cc: str | None) -> str:
    cmd = find_compiler(cc)
    try:
        out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, check=False)
        return (out.stdout.splitlines() or [cmd[0]])[0].strip()
    except OSError:
        return " ".join(cmd)


# ---------------------------------------------------------------------------- the benchmark


def _check_benchable(ir: Any) -> None:
    """ExportError for the models bench does not take: those its kind refuses (seq2seq), several
    inputs, tokens."""
    refusal = runner_of(ir).bench_refusal(ir)
    if refusal:
        raise ExportError(refusal)
    if ir.input_sizes:
        raise ExportError(
            "rnn2c bench does not take models with several inputs: its peers' converted graphs "
            "take one input; use rnn2c size for instructions per step, verify for fidelity"
        )
    if ir.embedding is not None:
        raise ExportError(
            "rnn2c bench does not take token models (an Embedding input): its peers' converted "
            "graphs take int8 rows; use rnn2c size for instructions per step, verify for fidelity"
        )


@dataclass
class _Setup:
    """What every path runs: the sequences cut to T steps, their labels, the calibration set."""

    label: str  # the model, for the report
    keras_model: Any
    ir: Any
    x: np.ndarray  # [N, T, F]
    y: np.ndarray | None
    steps: int  # T
    left_out: int  # sequences with fewer real steps than T
    calib: Sequences


@dataclass
class _Runner:
    """A timed path: its row, what runs it, its inputs."""

    row: BenchRow
    runner: Any  # HostC or a Peer
    xq: np.ndarray


@python_api()
def bench(
    model: Any,
    data: Any,
    calib: Any,
    steps: int | None = None,
    sequences: int | None = None,
    rounds: int = DEFAULT_ROUNDS,
    calibration: str = "minmax",
    activations: str = "int8",
    input_quant: str = "per-tensor",
    targets: tuple[str, ...] | list[str] = DEFAULT_TARGETS,
    weights: str = "int8",
    keep_int8: str | list[str] | None = None,
    peers: tuple[str, ...] | list[str] = tuple(PEERS),
    cc: str | None = None,
    input_range: Any = None,
    output_range: Any = None,
) -> BenchReport:
    """Benchmark rnn2c's C against the peers on `data` (see the module doc).

    model: a .keras or .onnx path or an in-memory Keras model (the peers need a Keras model: for
    an .onnx model their rows say they were skipped); data, calib: .npy/.npz paths, arrays or
    Sequences (calib quantizes both rnn2c's export and the peers' flatbuffer). ExportError for
    bad input; a peer or a target that fails becomes a row with its error. weights, keep_int8:
    as for export_model (int4 weights for rnn2c's rows; the peers stay int8).
    """
    targets = tuple(targets)
    peers = tuple(peers)
    _check_args(rounds, steps, sequences, targets, peers)
    setup = _setup(model, data, calib, steps, sequences)
    export = {
        "calibration": calibration,
        "activations": activations,
        "input_quant": input_quant,
        "weights": weights,
        "keep_int8": keep_int8,
    }
    for key, value in (("input_range", input_range), ("output_range", output_range)):
        declared = parse_range(value, "--" + key.replace("_", "-"))
        if declared is not None:  # recorded in the flag's syntax, which export_model reads
            export[key] = declared.describe()
    float_row = BenchRow("float", f"float {kinds.float_framework(setup.keras_model)}", "float")
    rows: list[BenchRow] = [float_row]
    y_float = float_outputs(setup.keras_model, setup.x, None)
    with tempfile.TemporaryDirectory(prefix="rnn2c-bench-") as work:
        folder = Path(work) / "c"
        res = export_model(setup.keras_model, setup.calib, folder, name="bench", **export)
        qmodel = res.qmodel
        head_act = head_activation(qmodel)
        labels = class_labels(setup.y, head_act, qmodel.output_size)
        head = comparison_head(head_act, qmodel.output_size, labels)
        float_row.accuracy = _accuracy(head, y_float, labels)
        host = HostC(CompiledModel.load(compile_model(folder, "bench", cc, HOST_FLAGS)))
        c_row = BenchRow("rnn2c", "rnn2c C", "host", ram_bytes=host.compiled.state_size)
        c_row.ram_bytes_what = "the state struct (the step's scratch is on the stack)"
        rows.append(c_row)
        xq_c = qmodel.input_q.quantize(setup.x).astype(np.int8)
        runners = [_Runner(c_row, host, xq_c), *_peer_runners(setup, peers, rows)]
        outputs = _warm_up(runners, host)
        cost = {"c": host.clock_cost(), "python": python_clock_cost()}
        _time_rounds(runners, host, cost, rounds, setup.steps)
        for r in runners:  # each path's outputs against the float model and the labels
            if r.row.path == "rnn2c":
                y_int = qmodel.output_q.dequantize(outputs["rnn2c"])
            else:
                y_int = r.runner.dequantize(outputs[r.row.path])
            err = np.abs(y_int - y_float)
            r.row.mean_abs_error, r.row.max_abs_error = float(err.mean()), float(err.max())
            r.row.agreement = agreement(head, y_int, y_float)
            r.row.accuracy = _accuracy(head, y_int, labels)
        c_row.bit_exact = bool(np.array_equal(outputs["rnn2c"], run_int(qmodel, xq_c)[:, -1]))
        if not c_row.bit_exact:
            c_row.notes.append("NOT bit-exact with the integer reference at -O3 -march=native")
        _count_on_targets(setup, Path(work), folder, targets, rows)
        _c_model_bytes(c_row, rows, res.manifest)
    return BenchReport(
        model=setup.label,
        sequences=int(setup.x.shape[0]),
        left_out=setup.left_out,
        steps=setup.steps,
        rounds=rounds,
        head=head,
        machine=machine(),
        compiler=compiler_banner(cc),
        host_flags=list(HOST_FLAGS),
        timer="thread CPU time",
        clock_cost_ns=cost,
        export=export,
        rows=rows,
        notes=_notes(setup, rows, input_quant, cost),
    )


def _setup(model: Any, data: Any, calib: Any, steps: int | None, sequences: int | None) -> _Setup:
    """The model read and checked (bench takes streaming single-input models of rows), the
    data cut to T steps, the calibration set."""
    label = str(model) if isinstance(model, str | os.PathLike) else getattr(model, "name", "model")
    keras_model, ir = read_any(model)
    _check_benchable(ir)
    seqs = _sequences(data, "--data", ir.input_size)
    cal = _sequences(calib, "--calib", ir.input_size)
    if ir.whole_sequence:
        raise ExportError(
            "rnn2c bench times streaming models (reset + step per sequence); this model is "
            "whole-sequence (a Bidirectional, go_backwards or RepeatVector layer, or a Conv1D or "
            "pooling over the whole sequence: run only): use rnn2c size for its instructions"
        )
    t, keep = choose_steps(seqs, steps)
    left_out = int(seqs.x.shape[0] - keep.size)
    keep = keep[:sequences] if sequences else keep
    x = np.ascontiguousarray(seqs.x[keep, :t])
    y = None if seqs.y is None else np.asarray(seqs.y)[keep]
    return _Setup(label, keras_model, ir, x, y, t, left_out, cal)


def _peer_runners(setup: _Setup, peers: tuple[str, ...], rows: list[BenchRow]) -> list[_Runner]:
    """A row per peer (appended to rows); the runners of those installed that take the int8
    flatbuffer of the model (converted once), the others' rows say why not."""
    t = setup.steps
    peer_rows: list[tuple[BenchRow, type[Peer]]] = []
    for key in peers:
        cls = PEERS[key]
        ver = version(cls.dist)
        row = BenchRow(key, cls.label, "host", version=ver)
        if ver and len(ver) <= 12:
            row.label = f"{cls.label} {ver}"
        peer_rows.append((row, cls))
    flatbuffer: bytes | None = None
    conversion_error = None
    if not kinds.is_keras(setup.keras_model):
        conversion_error = (
            "skipped: the peers run the Keras model converted to int8 .tflite, and an .onnx "
            "model has none (bench its Keras twin for them)"
        )
    elif any(version(cls.dist) for _, cls in peer_rows):
        try:
            flatbuffer = to_int8_tflite(setup.keras_model, setup.calib.x, t, check=setup.x[:2])
        except ConversionError as e:
            conversion_error = f"conversion to int8 .tflite failed: {e}"
    runners = []
    for row, cls in peer_rows:
        rows.append(row)
        if version(cls.dist) is None:
            row.error = f"{cls.dist} is not installed ({BENCH_HINT})"
            continue
        if flatbuffer is None:
            row.error = conversion_error
            continue
        try:
            peer = cls(flatbuffer)
            if peer.input_shape != (1, t, setup.ir.input_size):
                raise PeerError(f"the flatbuffer takes {peer.input_shape}, not (1, {t}, F)")
        except PeerError as e:
            row.error = str(e)
            continue
        except Exception as e:  # a runtime that refuses the flatbuffer
            row.error = one_line(e)
            continue
        row.model_bytes = peer.model_bytes
        row.model_bytes_what = "the .tflite flatbuffer (the interpreter's code not counted)"
        runners.append(_Runner(row, peer, peer.quantize(setup.x)))
    return runners


def _warm_up(runners: list[_Runner], host: HostC) -> dict[str, np.ndarray]:
    """Every path once over every sequence (a peer failing here leaves, its row saying why);
    their outputs, by path; the peers' RAM figures and notes."""
    outputs: dict[str, np.ndarray] = {}
    for r in list(runners):
        try:
            outputs[r.row.path] = r.runner.run(r.xq)[0]
        except Exception as e:  # a peer failing at run time: its row says so
            if r.runner is host:
                raise
            r.row.error = one_line(e)
            runners.remove(r)
    for r in runners:
        row, runner = r.row, r.runner
        if isinstance(runner, TFLiteMicro):
            row.ram_bytes = runner.measure_arena()
            row.ram_bytes_what = "the tensor arena in use (TFLM's recording allocator)"
        if row.path == "litert":
            row.ram_bytes_what = "not reported by LiteRT's Python API"
            row.notes.append(
                f"{runner.ops} ops, {runner.delegated} of them delegated (XNNPACK), 1 thread"
            )
        if row.version and row.version not in row.label:
            row.notes.append(f"{runner.dist} {row.version}")
    return outputs


def _time_rounds(
    runners: list[_Runner], host: HostC, cost: dict[str, float], rounds: int, t: int
) -> None:
    """`rounds` rounds, each path in turn over every sequence; each row's figures over them
    (the clocks' own cost subtracted) and its per-round ratio to rnn2c's C."""
    per_round: dict[str, list[float]] = {r.row.path: [] for r in runners}
    for _ in range(rounds):
        for r in runners:
            ns = r.runner.run(r.xq)[1]
            c = cost["c"] if r.runner is host else cost["python"]
            per_round[r.row.path].append(float(ns.mean()) - c)
    base = np.asarray(per_round["rnn2c"])
    for r in runners:
        times = np.asarray(per_round[r.row.path])
        r.row.rounds_ns = [float(v) for v in times]
        r.row.per_sequence_ns = Spread.of(times)
        r.row.per_step_ns = r.row.per_sequence_ns.scaled(1.0 / t)
        r.row.vs_rnn2c = Spread.of(times / base)


def _count_on_targets(
    setup: _Setup, work: Path, folder: Path, targets: tuple[str, ...], rows: list[BenchRow]
) -> None:
    """Exact instructions per step on each Cortex-M target (rnn2c size), on the first
    sequences of the same data: a row per target."""
    counted = work / "mcu.npz"
    np.savez(counted, x=setup.x[:MCU_SEQUENCES, :MCU_STEPS])
    for target in targets:
        row = BenchRow(target, f"rnn2c {TARGET_LABELS[target]}", "mcu")
        rows.append(row)
        try:
            rep = S.measure(folder, target, "O2", counted, MCU_SEQUENCES, MCU_STEPS)
        except (S.SizeError, RuntimeError) as e:
            row.error = " ".join(str(e).split())
            continue
        row.instructions_per_step = Spread(
            rep.instructions_mean, rep.instructions_min, rep.instructions_max
        )
        row.model_bytes, row.ram_bytes = rep.flash, rep.ram
        row.model_bytes_what = f"flash -{rep.opt}: code + constants + library members"
        row.ram_bytes_what = f"state {rep.state} + static {rep.static_ram} + stack {rep.stack}"
        row.bit_exact = rep.bit_exact


def _c_model_bytes(c_row: BenchRow, rows: list[BenchRow], manifest: dict[str, Any]) -> None:
    """rnn2c C's model bytes: the Cortex-M4 flash where it was counted, else the weights."""
    m4 = next((r for r in rows if r.path == "cortex-m4" and r.ok), None)
    if m4 is not None:
        c_row.model_bytes = m4.model_bytes
        c_row.model_bytes_what = "Cortex-M4 flash (-O2): code + constants + libraries"
    else:
        c_row.model_bytes = int(manifest["weight_bytes"])
        c_row.model_bytes_what = "weights and parameters (no Cortex-M4 flash figure)"
        c_row.notes.append(f"model bytes: {c_row.model_bytes_what}")


def _notes(
    setup: _Setup, rows: list[BenchRow], input_quant: str, cost: dict[str, float]
) -> list[str]:
    """The report's notes: what the peers' copy leaves out, how the figures were taken."""
    notes = []
    peers_ok = any(r.ok for r in rows if r.path in PEERS)
    layers = setup.keras_model.layers if kinds.is_keras(setup.keras_model) else []
    if peers_ok and any(type(layer).__name__ == "Masking" for layer in layers):
        notes.append("the peers' unrolled copy leaves Masking out: every benchmarked step is real")
    if input_quant != "per-tensor" and peers_ok:
        notes.append("the .tflite input is quantized per tensor, rnn2c's C per feature")
    notes.append(
        "model B: rnn2c C the Cortex-M4 flash (code, constants, libgcc), Cortex-M rows their "
        "flash, the peers the .tflite flatbuffer (their interpreter's code not counted); "
        "RAM B: rnn2c C the state struct, Cortex-M rows state + static + stack of step, "
        "TFLite Micro its arena in use, LiteRT none reported"
    )
    notes.append(
        "per step = per sequence / T; rnn2c's C timed inside C around reset + T steps, the "
        "peers around invoke(); the clocks' own cost "
        f"(C {cost['c']:.0f} ns, Python {cost['python']:.0f} ns) subtracted"
    )
    return notes


def _accuracy(head: str, y_out: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    if head == "argmax":
        return float((y_out.argmax(1) == labels).mean())
    if head == "sigmoid":
        return float(((y_out > 0.5) == labels).mean())
    return None
