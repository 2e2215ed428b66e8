"""`rnn2c size` of a seq2seq export (emulator/size.py's machinery): the encoder counted per
input step, through <name>_encode_step (or _encode_step_token), as a device feeds it; the
decoder per output token, through one <name>_decode call per sequence; the tokens held against
QuantSeq2Seq.greedy bit for bit."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnn2c.emulator import seq2seq_boards
from rnn2c.emulator.seq2seq_boards import decoder_steps, seq2seq_inputs
from rnn2c.emulator.size import (
    LIBRARY_STACK_NOTE,
    STACK_PAINT,
    STACK_TOP,
    WHOLE_IN,
    WHOLE_OUT,
    WHOLE_STATE,
    Emulator,
    Export,
    Footprint,
    SizeError,
    Target,
    build,
    flash_figures,
    footprint_fields,
    raw_parameter_bytes,
    worst_stack_path,
)
from rnn2c.export.ir import ExportError
from rnn2c.export.seq2seq import QuantSeq2Seq

HARNESS = """\
/* rnn2c size harness of a seq2seq export: keeps <name>_reset, the encoder's entry points and
 * <name>_decode alive through --gc-sections (the state is the caller's: no .bss here). */
#include "{name}.h"
void rnn2c_size_main({name}_state_t *state, const int8_t *row, int32_t *tokens);
void rnn2c_size_main({name}_state_t *state, const int8_t *row, int32_t *tokens)
{{
    {name}_reset(state);
#if defined({NAME}_INPUT_TOKENS)
    (void)row;
    (void){name}_encode_step_token(state, tokens[0]);
    (void){name}_encode_tokens(state, tokens, 1);
#else
    (void){name}_encode_step(state, row);
    (void){name}_encode(state, (const int8_t(*)[{NAME}_INPUT_SIZE])(const void *)row, 1);
#endif
    (void){name}_decode(state, tokens, {NAME}_MAX_OUTPUT_LENGTH);
}}
"""


@dataclass
class Seq2SeqSizeReport(Footprint):
    """A seq2seq export: the encoder counted per input step (<name>_encode_step, or
    _encode_step_token), the decoder per output token (<name>_decode's instructions / the decoder
    steps it ran: the tokens it wrote and the end token it stopped at)."""

    stack_static_encode: int  # worst path from encode_step
    stack_static_decode: int  # worst path from decode
    max_length: int  # the most input steps (the attention's values in the state)
    max_output_length: int
    sequences: int
    input_source: str
    encode_steps: int  # encode_step calls counted
    macs_per_encode_step: int
    encode_instructions_mean: float  # per encode_step call
    encode_instructions_min: int
    encode_instructions_max: int
    encode_instructions_per_mac: float
    tokens: int  # tokens decode wrote
    decoder_steps: int  # tokens + the end tokens it computed (not written)
    macs_per_token: float  # mean over the decoder steps, at each sequence's encoded length
    token_instructions_mean: float  # decode's instructions / its decoder steps, all sequences
    token_instructions_min: float  # the same per sequence: the lowest
    token_instructions_max: float
    token_instructions_per_mac: float
    instructions_per_mac: float  # all counted instructions / all MACs (encode and decode)
    decode_instructions: list[int]  # per sequence
    reset_instructions: int
    bit_exact: bool
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "kind": "seq2seq"}, indent=2)

    def table(self) -> str:
        enc, dec = self.stack_static_encode, self.stack_static_decode
        ends = self.decoder_steps - self.tokens
        rows = [
            *self._flash_rows(),
            (
                "  stack of encode_step/decode",
                f"{self.stack} B (static worst path {enc} / {dec}, measured {self.stack_measured})",
            ),
            (
                "instructions / encode step",
                f"{self.encode_instructions_mean:.1f} mean, {self.encode_instructions_min} min, "
                f"{self.encode_instructions_max} max",
            ),
            ("MACs / encode step", str(self.macs_per_encode_step)),
            ("instructions / MAC (encode)", f"{self.encode_instructions_per_mac:.2f}"),
            (
                "instructions / output token",
                f"{self.token_instructions_mean:.1f} mean, {self.token_instructions_min:.1f} "
                f"min, {self.token_instructions_max:.1f} max (per sequence)",
            ),
            ("MACs / output token", f"{self.macs_per_token:.1f} (at the encoded lengths)"),
            ("instructions / MAC (decode)", f"{self.token_instructions_per_mac:.2f}"),
            ("instructions / MAC (all)", f"{self.instructions_per_mac:.2f}"),
            ("instructions / reset", str(self.reset_instructions)),
            (
                "counted",
                f"{self.encode_steps} encode steps ({self.sequences} sequences, "
                f"{self.input_source}), {self.decoder_steps} decoder steps ({self.tokens} tokens "
                f"+ {ends} end token{'' if ends == 1 else 's'})",
            ),
            ("ARM tokens == int reference", "bit-exact" if self.bit_exact else "MISMATCH"),
        ]
        return self._lines(rows, f"{self.name} (seq2seq)", self.notes)


def seq2seq_raw_parameter_bytes(q: QuantSeq2Seq) -> int:
    """1 byte per int8 weight + 4 bytes per int32 bias the C stores: the encoder's, the
    decoder's Embedding table and layers, the additive attention's weights and the output
    layer's."""
    return (
        raw_parameter_bytes(q.encoder)
        + int(q.dec_embedding.table.size)
        + sum(layer.raw_parameters() for layer in [q.decoder, *q.mid])
        + int(q.attention.weight.size)
        + int(q.out.weight.size)
        + 4 * int(q.out.bias.size)
    )


def _signed(value: int) -> int:
    return value - (1 << 32) if value & (1 << 31) else value


def measure_seq2seq(
    exp: Export,
    tgt: Target,
    opt: str,
    cc: str,
    data: str | Path | None,
    sequences: int,
    steps: int,
) -> Seq2SeqSizeReport:
    """A seq2seq export (measure's checks done): each sequence is fed one step at a time through
    <name>_encode_step (_token for a token encoder), as a device does, then decoded once by
    <name>_decode; the tokens are compared with QuantSeq2Seq.greedy bit for bit."""
    q: QuantSeq2Seq = exp.qmodel
    name = exp.name
    try:
        inputs = seq2seq_inputs(q, data, sequences, steps, cut=True)
    except ExportError as e:
        raise SizeError(str(e)) from None
    if data is None:
        what = "token ids" if q.tokens_in else "int8 inputs"
        inputs.source = f"pseudo-random {what}, seed 0, {int(inputs.lengths[0])} steps each"
    if q.state_bytes() > WHOLE_IN - WHOLE_STATE:
        raise SizeError(f"the state ({q.state_bytes()} bytes) is too large to count here")
    b = build(exp, tgt, opt, cc, HARNESS)
    flash = flash_figures(b.map_text)
    raw = seq2seq_raw_parameter_bytes(q)
    encode_fn = f"{name}_encode_step_token" if q.tokens_in else f"{name}_encode_step"
    stack_encode, path_encode = worst_stack_path(b.callgraph, encode_fn)
    stack_decode, path_decode = worst_stack_path(b.callgraph, f"{name}_decode")

    notes = [tgt.note] if tgt.note else []
    room = (STACK_TOP - STACK_PAINT - WHOLE_OUT) // 4  # int32 tokens below the painted stack
    limit = min(q.max_output_length, room)
    if limit < q.max_output_length:
        notes.append(f"decode counted with max_tokens {limit} (of {q.max_output_length})")
    emu = Emulator(b.elf, tgt.uc_cpu)
    reset_fn, decode_fn = b.symbols[f"{name}_reset"], b.symbols[f"{name}_decode"]
    step_fn = b.symbols[encode_fn]
    enc_counts: list[int] = []
    dec_counts: list[int] = []
    got_tokens: list[list[int]] = []
    encode_failed = False
    reset_count = 0
    emu.paint_stack()
    for i in range(inputs.xq.shape[0]):
        reset_count = emu.call(reset_fn, WHOLE_STATE)
        for t in range(int(inputs.lengths[i])):
            if inputs.ids is not None:
                enc_counts.append(emu.call(step_fn, WHOLE_STATE, int(inputs.ids[i, t])))
            else:
                emu.uc.mem_write(WHOLE_IN, inputs.xq[i, t].tobytes())
                enc_counts.append(emu.call(step_fn, WHOLE_STATE, WHOLE_IN))
            encode_failed |= _signed(emu.result()) != t + 1
        dec_counts.append(emu.call(decode_fn, WHOLE_STATE, WHOLE_OUT, limit))
        n = max(_signed(emu.result()), 0)
        out = np.frombuffer(bytes(emu.uc.mem_read(WHOLE_OUT, 4 * n)), dtype="<i4")
        got_tokens.append([int(v) for v in out] if _signed(emu.result()) >= 0 else [-1])
    stack_measured = emu.stack_high_water()

    ref, ref_n = seq2seq_boards.reference_tokens(q, inputs, limit)
    want = [[int(v) for v in row[:c]] for row, c in zip(ref, ref_n, strict=True)]
    bit_exact = not encode_failed and got_tokens == want
    counts = np.array([len(t) for t in got_tokens])
    dsteps = decoder_steps(counts, limit)
    lengths = inputs.lengths
    enc = np.asarray(enc_counts)
    dec = np.asarray(dec_counts)
    enc_macs = q.encoder_macs() * int(lengths.sum())
    tok_macs = int(sum(int(d) * q.token_macs(int(n)) for d, n in zip(dsteps, lengths, strict=True)))
    per_seq = dec / dsteps
    state = int(exp.manifest.get("state_bytes", q.state_bytes()))
    if q.tokens_in:
        notes.append(
            f"token encoder: counted over {encode_fn} (the id check and the Embedding row "
            "lookup included); flash includes the table"
        )
    notes.append(
        f"per output token: {name}_decode's instructions / its decoder steps (the tokens it "
        "wrote and the end token it computed; the hand-over of the encoder state counts once "
        "per call); MACs per token at each sequence's encoded length"
    )
    path = path_encode if stack_encode >= stack_decode else path_decode
    if any(p.endswith("(library)") for p in [*path_encode, *path_decode]):
        notes.append(LIBRARY_STACK_NOTE)
    return Seq2SeqSizeReport(
        **footprint_fields(
            name=name,
            tgt=tgt,
            opt=opt,
            cc=cc,
            emu=emu,
            flash=flash,
            raw=raw,
            state=state,
            stack_static=max(stack_encode, stack_decode),
            stack_measured=stack_measured,
            stack_path=path,
        ),
        stack_static_encode=stack_encode,
        stack_static_decode=stack_decode,
        max_length=q.max_length,
        max_output_length=q.max_output_length,
        sequences=int(inputs.xq.shape[0]),
        input_source=inputs.source,
        encode_steps=len(enc_counts),
        macs_per_encode_step=q.encoder_macs(),
        encode_instructions_mean=float(enc.mean()),
        encode_instructions_min=int(enc.min()),
        encode_instructions_max=int(enc.max()),
        encode_instructions_per_mac=float(enc.sum() / enc_macs) if enc_macs else 0.0,
        tokens=int(counts.sum()),
        decoder_steps=int(dsteps.sum()),
        macs_per_token=tok_macs / int(dsteps.sum()),
        token_instructions_mean=float(dec.sum() / dsteps.sum()),
        token_instructions_min=float(per_seq.min()),
        token_instructions_max=float(per_seq.max()),
        token_instructions_per_mac=float(dec.sum() / tok_macs) if tok_macs else 0.0,
        instructions_per_mac=float((enc.sum() + dec.sum()) / (enc_macs + tok_macs)),
        decode_instructions=[int(v) for v in dec],
        reset_instructions=reset_count,
        bit_exact=bit_exact,
        notes=notes,
    )
