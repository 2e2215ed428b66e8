"""Seq2seq exports on boards: the inputs `rnn2c firmware` replays and `rnn2c size` counts on,
the integer reference's greedy tokens for them, and what the board's main.c prints.

Both commands feed the encoder one step at a time (<name>_encode_step, or
<name>_encode_step_token for a token encoder: the streaming path a device uses), then call
<name>_decode once, and compare the tokens with QuantSeq2Seq.greedy bit for bit. int8 feature rows
are handed to the reference as the float rows that quantize back to them exactly.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.emulator.build import BuildError
from rnn2c.export.ir import ExportError
from rnn2c.export.seq2seq import QuantSeq2Seq, load_seq2seq_data

MAIN_TEMPLATE = "seq2seq_main.c.j2"
LINE = re.compile(
    r"seq (\d+) length (\d+) tokens (\d+) out((?: -?\d+)*) encode (\d+|n/a) decode (\d+|n/a)"
)
ERROR_LINE = re.compile(r"seq (\d+) (encode_step|decode) error (-?\d+)")


# ---------------------------------------------------------------------------- inputs


@dataclass
class Seq2SeqInputs:
    """The sequences the encoder is fed."""

    xq: np.ndarray  # int8 [N, T, F]: the rows encode_step reads (a token encoder: the ids' rows)
    ids: np.ndarray | None  # a token encoder: the ids [N, T] encode_step_token reads
    lengths: np.ndarray  # [N], 1..T
    source: str


def input_ids_low(q: QuantSeq2Seq) -> int:
    """The lowest id a token encoder takes: 1 with mask_zero (0 is padding, refused), else 0."""
    emb = q.encoder.embedding
    return 1 if emb is not None and emb.mask_zero and emb.vocab > 1 else 0


def seq2seq_inputs(
    q: QuantSeq2Seq,
    data: str | Path | None,
    sequences: int,
    steps: int,
    seed: int = 0,
    cut: bool = False,
) -> Seq2SeqInputs:
    """The first `sequences` sequences of --data (ids, or features quantized with the model's
    input quantization), or deterministic pseudo-random ones of min(steps, max_length) steps:
    valid ids, or int8 rows. cut: shorten --data sequences to `steps` (rnn2c size); without it a
    sequence longer than the export's --max-length is refused (ExportError)."""
    if data is None:
        steps = min(steps, q.max_length)
        rng = np.random.default_rng(seed)
        lengths = np.full(sequences, steps, dtype=np.int64)
        if q.tokens_in:
            ids = rng.integers(input_ids_low(q), q.encoder.vocab, size=(sequences, steps))
            xq = q.encoder.quantize_input(ids).astype(np.int8)
            return Seq2SeqInputs(xq, ids, lengths, f"{sequences} pseudo-random id sequences")
        xq = rng.integers(-128, 128, size=(sequences, steps, q.input_size)).astype(np.int8)
        return Seq2SeqInputs(xq, None, lengths, f"{sequences} pseudo-random int8 sequences")
    seqs = load_seq2seq_data(data, "--data", q, need_y=False)
    n = min(sequences, seqs.x.shape[0])
    lengths = np.asarray(seqs.lengths[:n], dtype=np.int64)
    if cut:
        lengths = np.minimum(lengths, min(steps, q.max_length))
    t = int(lengths.max())
    if t > q.max_length:
        raise ExportError(
            f"--data: a replayed sequence has {t} steps; the model was exported with "
            f"--max-length {q.max_length} (export again with a larger one)"
        )
    x = seqs.x[:n, :t]
    xq = q.encoder.quantize_input(x).astype(np.int8)
    ids = np.asarray(x, dtype=np.int64) if q.tokens_in else None
    source = f"the first {n} of {data}" if not cut else f"{Path(data).name} quantized"
    return Seq2SeqInputs(xq, ids, lengths, source)


# ---------------------------------------------------------------------------- the reference


def reference_tokens(
    q: QuantSeq2Seq, inputs: Seq2SeqInputs, max_tokens: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """QuantSeq2Seq.greedy on the replayed inputs: (tokens [N, limit], -1 past each count;
    counts [N], without the end token)."""
    if q.tokens_in:
        assert inputs.ids is not None
        x = inputs.ids
    else:
        x = q.input_q.dequantize(inputs.xq)  # the float rows that quantize to exactly xq
        if not np.array_equal(q.encoder.quantize_input(x), inputs.xq):
            raise RuntimeError("int8 input rows do not survive dequantize/quantize")
    return q.greedy(x, inputs.lengths, max_tokens)


def decoder_steps(counts: np.ndarray, limit: int) -> np.ndarray:
    """Decoder steps decode ran for each output: its tokens, plus the end token it computed
    (not written) unless the limit stopped it first."""
    counts = np.asarray(counts, dtype=np.int64)
    return counts + (counts < limit)


def token_lists(tokens: np.ndarray, counts: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in row[:c]] for row, c in zip(tokens, counts, strict=True)]


# ---------------------------------------------------------------------------- rnn2c firmware


@dataclass
class Seq2SeqBoardRun:
    """What the board printed, parsed."""

    text: str
    tokens: list[list[int] | None]  # per sequence; None: no tokens line (an error, or missing)
    errors: list[str]  # the board's error lines
    encode_cycles: np.ndarray | None  # [N] cycles of all encode_step calls; None: no counter
    decode_cycles: np.ndarray | None  # [N] cycles of the decode call
    summary: list[str]  # the cycles/... lines
    seconds: float = 0.0


@dataclass
class Seq2SeqRunResult:
    project: Any  # firmware.Project
    board_run: Seq2SeqBoardRun
    expected: list[list[int]]  # the integer reference's tokens, per sequence
    first_mismatch: int | None  # the first sequence that differs or was not printed

    @property
    def passed(self) -> bool:
        return self.first_mismatch is None


def parse_output(text: str, n: int, lengths: np.ndarray) -> Seq2SeqBoardRun:
    tokens: list[list[int] | None] = [None] * n
    errors = []
    enc = np.zeros(n, dtype=np.int64)
    dec = np.zeros(n, dtype=np.int64)
    has_cycles = False
    summary = []
    done = False
    for raw in text.splitlines():
        line = raw.strip()
        m = LINE.fullmatch(line)
        if m:
            s, length, count = int(m.group(1)), int(m.group(2)), int(m.group(3))
            values = [int(v) for v in m.group(4).split()]
            if s >= n or length != int(lengths[s]) or len(values) != count:
                raise BuildError(f"the board printed an unexpected line: {line!r}")
            tokens[s] = values
            if m.group(5) != "n/a" and m.group(6) != "n/a":
                has_cycles = True
                enc[s], dec[s] = int(m.group(5)), int(m.group(6))
        elif ERROR_LINE.fullmatch(line):
            errors.append(line)
        elif line.startswith("cycles/"):
            summary.append(line)
        elif line == "done":
            done = True
    if not done:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise BuildError(f"the board did not print 'done'; its last lines: {tail!r}")
    return Seq2SeqBoardRun(
        text, tokens, errors, enc if has_cycles else None, dec if has_cycles else None, summary
    )


def first_mismatch(got: list[list[int] | None], expected: list[list[int]]) -> int | None:
    """The first sequence whose tokens differ from the reference's or were not printed."""
    for s, want in enumerate(expected):
        if got[s] != want:
            return s
    return None


def compare_run(project: Any, text: str, seconds: float) -> Seq2SeqRunResult:
    """What the board printed (firmware.run_project built and ran it), parsed, its tokens
    against the integer reference's."""
    q = project.qmodel
    r = project.replay
    inputs = Seq2SeqInputs(r.xq, r.ids, r.lengths, r.source)
    tokens, counts = reference_tokens(q, inputs, q.max_output_length)
    expected = token_lists(tokens, counts)
    board_run = parse_output(text, len(expected), r.lengths)
    board_run.seconds = seconds
    mismatch = first_mismatch(board_run.tokens, expected)
    return Seq2SeqRunResult(project, board_run, expected, mismatch)


def print_run(result: Seq2SeqRunResult) -> int:
    """The --run lines of `rnn2c firmware` for a seq2seq project; the exit code."""
    project, run = result.project, result.board_run
    q = project.qmodel
    steps = int(project.replay.lengths.sum())
    limit = q.max_output_length
    counts = np.array([len(t) for t in result.expected])
    decoded = int(decoder_steps(counts, limit).sum())
    print(
        f"  ran on QEMU {project.board.qemu_machine} in {run.seconds:.2f} s: "
        f"{len(result.expected)} sequences, {steps} encode steps, {int(counts.sum())} output "
        f"tokens ({decoded} decoder steps with the end tokens)"
    )
    for line in run.summary:
        print(f"  {line}")
    if result.first_mismatch is not None:
        s = result.first_mismatch
        got = run.tokens[s]
        said = next((e for e in run.errors if e.startswith(f"seq {s} ")), None)
        board = said if got is None and said else got
        print(
            f"rnn2c firmware: board tokens differ from the integer reference first at sequence "
            f"{s}: board {board}, reference {result.expected[s]}",
            file=sys.stderr,
        )
        print("FAIL")
        return 1
    print(
        "  board == integer reference (greedy decoding): bit-exact tokens for every sequence, "
        f"encoded through {project.name}_encode_step{'_token' if q.tokens_in else ''}"
    )
    print("PASS")
    return 0
