"""`rnn2c verify` for seq2seq exports: the C's greedy tokens (through <name>_encode and through
<name>_encode_step) against the integer reference, bit for bit, and against greedy decoding of
the float Keras model (token agreement, exact sequences, first divergence); with targets y in
the data, the accuracy of both."""

from __future__ import annotations

import ctypes
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.emulator.build import compile_model
from rnn2c.emulator.kinds import VerifyJob
from rnn2c.emulator.report import CHANCE_FAILURE, check_table, files_status, pct, untrained
from rnn2c.export.ir import ExportError
from rnn2c.export.seq2seq import (
    QuantSeq2Seq,
    keras_greedy,
    load_seq2seq_data,
    run_folder_settings,
)

HARNESS = "seq2seq_harness.c.j2"


@dataclass
class CompiledSeq2Seq:
    """A seq2seq export compiled with its harness, loaded through ctypes."""

    lib: ctypes.CDLL
    tokens_in: bool
    state_size: int
    declared_state_size: int

    @classmethod
    def build(cls, folder: str | Path, name: str, cc: str | None = None) -> CompiledSeq2Seq:
        return cls.load(compile_model(folder, name, cc, harness_template=HARNESS))

    @classmethod
    def load(cls, path: str | Path) -> CompiledSeq2Seq:
        """A library of the export and its harness (seq2seq_harness.c.j2), built already."""
        lib = ctypes.CDLL(str(path))
        lib.rnn2c_s2s_state_size.restype = ctypes.c_size_t
        lib.rnn2c_s2s_greedy.restype = None
        return cls(
            lib,
            bool(lib.rnn2c_s2s_tokens()),
            int(lib.rnn2c_s2s_state_size()),
            int(lib.rnn2c_s2s_declared_state_size()),
        )

    def greedy(
        self, x: np.ndarray, lengths: np.ndarray, max_tokens: int, stepwise: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """x: int8 rows [N, T, F] or token ids [N, T] -> (tokens [N, max_tokens], -1 past each
        count; counts [N], the return codes of <name>_decode or of the encoder)."""
        n, t = x.shape[:2]
        xin = np.ascontiguousarray(x, dtype=np.int32 if self.tokens_in else np.int8)
        lens = np.ascontiguousarray(lengths, dtype=np.int32)
        toks = np.full((n, max(max_tokens, 1)), -1, dtype=np.int32)
        counts = np.zeros(n, dtype=np.int32)
        ptr = ctypes.c_void_p
        self.lib.rnn2c_s2s_greedy(
            xin.ctypes.data_as(ptr),
            ctypes.c_int32(n),
            ctypes.c_int32(t),
            lens.ctypes.data_as(ptr),
            ctypes.c_int32(int(stepwise)),
            ctypes.c_int32(max_tokens),
            toks.ctypes.data_as(ptr),
            counts.ctypes.data_as(ptr),
        )
        toks = toks[:, :max_tokens].astype(np.int64)
        toks[np.arange(max_tokens)[None, :] >= counts[:, None]] = -1
        return toks, counts.astype(np.int64)


def with_end(tokens: np.ndarray, counts: np.ndarray, end: int) -> list[list[int]]:
    """Each output as a list that ends with the end token (greedy stopped there or at the
    limit: the limit's output has none)."""
    return [
        [int(v) for v in row[:c]] + ([end] if c < row.size else [])
        for row, c in zip(tokens, counts, strict=True)
    ]


def targets(y: np.ndarray, end: int) -> list[list[int]]:
    """Each target up to and including its first end token."""
    out = []
    for row in y:
        ends = np.nonzero(row == end)[0]
        stop = int(ends[0]) + 1 if ends.size else row.size
        out.append([int(v) for v in row[:stop]])
    return out


def compare(pred: list[list[int]], ref: list[list[int]]) -> tuple[float, float, list[int]]:
    """(token accuracy over the reference positions, end token included; exact-sequence rate;
    the first differing position of each sequence that differs)."""
    hit = total = exact = 0
    first = []
    for p, r in zip(pred, ref, strict=True):
        same = [i < len(p) and p[i] == v for i, v in enumerate(r)]
        hit += sum(same)
        total += len(r)
        if p == r:
            exact += 1
        else:
            first.append(next((i for i, s in enumerate(same) if not s), len(r)))
    return hit / max(total, 1), exact / max(len(ref), 1), first


@dataclass
class Seq2SeqReport:
    name: str
    sequences: int
    bit_exact: bool
    mismatched_sequences: int
    first_mismatch: int | None  # the first sequence whose C tokens differ from the reference
    token_agreement: float  # C vs float greedy, over the float output's positions
    sequence_agreement: float  # C output == float output
    first_divergence: list[int]  # per differing sequence, the first differing position
    float_token_accuracy: float | None  # against the targets y
    float_exact: float | None
    int8_token_accuracy: float | None
    int8_exact: float | None
    min_agreement: float
    state_bytes: int
    max_length: int
    max_output_length: int
    files_checked: bool = False
    changed_files: list[str] = field(default_factory=list)
    chance: str | None = None  # why the float model looks untrained, if it does
    examples: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    attention: np.ndarray | None = field(default=None, repr=False)  # one example's weights
    #: its input and output tokens as text (from a run folder's vocabularies), if known
    attention_labels: tuple[list[str], list[str]] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("attention", None)
        d.pop("attention_labels", None)
        d["passed"] = self.passed
        d["kind"] = "seq2seq"
        return json.dumps(d, indent=2)

    def table(self) -> str:
        files = files_status(self.files_checked, self.changed_files)
        div = self.first_divergence
        rows = [
            ("export files", files, "sha256 as exported"),
            ("sequences", str(self.sequences), f"up to {self.max_length} input steps"),
            (
                "C == integer reference",
                "bit-exact"
                if self.bit_exact
                else f"NO: {self.mismatched_sequences} sequences differ",
                "required (encode and encode_step)",
            ),
            (
                "token agreement C / float",
                pct(self.token_agreement),
                f">= {pct(self.min_agreement)}",
            ),
            ("exact sequences C == float", pct(self.sequence_agreement), "greedy decoding"),
            (
                "first divergence",
                f"mean position {np.mean(div):.2f}, median {np.median(div):g}" if div else "-",
                f"over {len(div)} sequences" if div else "",
            ),
        ]
        if self.float_exact is not None:
            rows += [
                (
                    "token accuracy float / int8",
                    f"{pct(self.float_token_accuracy)} / {pct(self.int8_token_accuracy)}",
                    "vs y",
                ),
                (
                    "exact sequences float / int8",
                    f"{pct(self.float_exact)} / {pct(self.int8_exact)}",
                    "vs y",
                ),
            ]
        rows.append(("state", f"{self.state_bytes} bytes", ""))
        lines = check_table(f"rnn2c verify: {self.name} (seq2seq)", rows)
        for e in self.examples:
            lines.append(f"  differs: sequence {e['sequence']}: float {e['float']} / C {e['c']}")
        if self.first_mismatch is not None:
            lines.append(f"  first C/reference mismatch: sequence {self.first_mismatch}")
        if self.chance:
            lines.append(f"  float model: {self.chance}")
        lines.append("PASS" if self.passed else "FAIL: " + "; ".join(self.failures))
        return "\n".join(lines)

    def plot(self, path: str | Path) -> None:
        """PNG: the attention weights of the first sequence (integer reference), input steps
        across, output tokens down."""
        from rnn2c.emulator.plot import plot_attention  # noqa: PLC0415

        assert self.attention is not None
        plot_attention(
            path, f"rnn2c verify: {self.name}, sequence 0", self.attention, self.attention_labels
        )


def verify_seq2seq(job: VerifyJob) -> Seq2SeqReport:
    """See the module docstring; verify has checked the folder and the model. A run folder's
    metrics.json "seq2seq" entry (its input_vocab / output_vocab) labels the plot."""
    if job.stream_steps > 0:
        raise ExportError(
            "--stream is for streaming models; a seq2seq model encodes and decodes per "
            "sequence: drop --stream"
        )
    q: QuantSeq2Seq = job.export.qmodel
    export, min_agreement = job.export, job.min_agreement
    vocab = run_folder_settings(job.model)
    seqs = load_seq2seq_data(job.data, "--data", q, need_y=False)
    longest = int(seqs.lengths.max())
    if longest > q.max_length:
        raise ExportError(
            f"--data: sequences run up to {longest} steps but the export takes at most "
            f"--max-length {q.max_length}; export again with a larger --max-length, or give "
            "shorter sequences"
        )
    if seqs.y is not None and not (seqs.y == q.end_token).any(axis=1).all():
        i = int(np.nonzero(~(seqs.y == q.end_token).any(axis=1))[0][0])
        raise ExportError(
            f"--data: target {i} of y has no end token {q.end_token}; end every target with it"
        )
    compiled = CompiledSeq2Seq.build(export.path, export.name, job.cc)
    xin = seqs.x if q.tokens_in else q.encoder.quantize_input(seqs.x)
    limit = q.max_output_length
    ref, ref_n = q.greedy(seqs.x, seqs.lengths, limit)
    runs = [compiled.greedy(xin, seqs.lengths, limit, stepwise) for stepwise in (False, True)]
    bad = np.zeros(seqs.x.shape[0], dtype=bool)
    for tok, n in runs:  # through encode, then through encode_step
        bad |= (n != ref_n) | (tok != ref).any(axis=1)
    c_tok, c_n = runs[0]
    f_tok, f_n = keras_greedy(
        job.keras_model,
        job.ir.encoder_input,
        seqs.x,
        seqs.lengths,
        q.start_token,
        q.end_token,
        limit,
    )
    c_seq = with_end(c_tok, c_n, q.end_token)
    f_seq = with_end(f_tok, f_n, q.end_token)
    agree, same, first = compare(c_seq, f_seq)
    acc = {}
    chance = None
    if seqs.y is not None:
        ys = targets(seqs.y, q.end_token)
        acc["float"] = compare(f_seq, ys)[:2]
        acc["int8"] = compare(c_seq, ys)[:2]
        chance = chance_reason(ys, *acc["float"])
    examples = [
        {"sequence": i, "float": f_seq[i], "c": c_seq[i]}
        for i in range(len(c_seq))
        if c_seq[i] != f_seq[i]
    ][:3]
    values, final = q.encode(seqs.x[:1], seqs.lengths[:1])
    attention = attention_rows(q, values, final, seqs.lengths[:1], int(c_n[0]))
    labels = axis_labels(
        vocab or {},
        seqs.x[0, : int(seqs.lengths[0])] if q.tokens_in else None,
        c_seq[0][: attention.shape[0]],
    )
    report = Seq2SeqReport(
        name=export.name,
        sequences=int(seqs.x.shape[0]),
        bit_exact=not bad.any(),
        mismatched_sequences=int(bad.sum()),
        first_mismatch=int(np.nonzero(bad)[0][0]) if bad.any() else None,
        token_agreement=agree,
        sequence_agreement=same,
        first_divergence=first,
        float_token_accuracy=acc["float"][0] if acc else None,
        float_exact=acc["float"][1] if acc else None,
        int8_token_accuracy=acc["int8"][0] if acc else None,
        int8_exact=acc["int8"][1] if acc else None,
        min_agreement=min_agreement,
        state_bytes=compiled.state_size,
        max_length=q.max_length,
        max_output_length=limit,
        files_checked=export.hashed,
        changed_files=export.changed_files,
        chance=chance,
        examples=examples,
        attention=attention,
        attention_labels=labels,
    )
    if export.changed_files:
        report.failures.append(
            "export files edited after export: " + ", ".join(export.changed_files)
        )
    if not report.bit_exact:
        report.failures.append("C tokens differ from the integer reference")
    if agree < min_agreement:
        report.failures.append("token agreement with the float model below threshold")
    if chance:
        report.failures.append(CHANCE_FAILURE)
    return report


def chance_reason(ys: list[list[int]], token_accuracy: float, exact: float) -> str | None:
    """Why greedy decoding of the float model looks untrained against the targets ys (each up
    to its end token), else None: no sequence exactly right, and a token accuracy no better
    than always answering the targets' most frequent token (what verify says of a classifier
    no better than its most frequent class)."""
    flat = [v for y in ys for v in y]
    if len(ys) < 10 or not flat or exact > 0:
        return None
    majority = float(np.bincount(np.asarray(flat)).max() / len(flat))
    if token_accuracy > majority:
        return None
    return untrained(
        f"at chance level: greedy decoding gets no sequence exactly right, and its token "
        f"accuracy {pct(token_accuracy)} is no better than always answering the most frequent "
        f"token ({pct(majority)})"
    )


def axis_labels(
    vocab: dict[str, Any], ids: np.ndarray | None, out: list[int]
) -> tuple[list[str], list[str]] | None:
    """The input ids and output tokens of the plotted sequence as text, where the run folder's
    vocabularies cover them (else None: the plot numbers the steps)."""
    src, dst = vocab.get("input_vocab"), vocab.get("output_vocab")
    if ids is None or not isinstance(src, list) or not isinstance(dst, list):
        return None
    if max(ids, default=0) >= len(src) or max(out, default=0) >= len(dst):
        return None
    return [str(src[int(i)]) for i in ids], [str(dst[int(t)]) for t in out]


def attention_rows(
    q: QuantSeq2Seq, values: np.ndarray, final: dict, lengths: np.ndarray, count: int
) -> np.ndarray:
    """The integer reference's attention weights (normalised) of one sequence at each of its
    output steps (its tokens and the end token): [steps, length]."""
    state = {k: np.asarray(v, dtype=np.int64).copy() for k, v in final.items()}
    tok = np.full(1, q.start_token, dtype=np.int64)
    rows = []
    for _ in range(min(count + 1, q.max_output_length)):
        h = q.decoder.step(state, q.dec_embedding.rows(tok[:, None])[:, 0])
        e = q.attention.weights_q15(h, values, lengths)[0, : int(lengths[0])]
        rows.append(e / max(int(e.sum()), 1))
        ctx = q.attention.context(h, values, lengths)
        tok = np.argmax(q.head(h, ctx), axis=1)
    return np.array(rows)
