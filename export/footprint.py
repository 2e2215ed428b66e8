"""An estimate of an export's flash and RAM on a Cortex-M, before anything is compiled.

`rnn2c export` states it in its summary and `rnn2c firmware` checks it (with its own main.c,
replayed inputs and stack) against the board's memory before writing the project. It is an
estimate: `rnn2c size` compiles, links and runs the export and measures the real figures;
tests/test_bounds_messages.py holds the estimate within FLASH_MARGIN / RAM_MARGIN of them.

flash = parameters (QuantModel.weight_bytes: the packed int8 weights, int32 biases, int16
multipliers, an Embedding table) + the runtime's activation tables + code (a figure per layer
kind, measured with `rnn2c size` at -O2 on a Cortex-M4; ARMv6-M code, without Thumb-2 or DSP
instructions, is about a third larger). RAM = the state struct + the stack of one step: the
scratch arrays the header declares (<NAME>_SCRATCH_BYTES) and the kernels' frames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rnn2c.export import kinds
from rnn2c.export.audio import LogMel
from rnn2c.export.render import table_bytes

#: code bytes of one layer of each kind at -O2 on a Cortex-M4, fitted to rnn2c size's figures
#: (each layer of a chain gets its own specialised kernel: two GRU layers take twice a GRU's
#: code; a seq2seq export's encoder and decoder share theirs)
CODE_BYTES = {
    "gru": 900,
    "lstm": 820,
    "rnn": 450,
    "dense": 100,
    "conv1d": 600,
    "bidir": 1650,
    "lnorm": 500,
    "pool1d": 300,
    "gpool1d": 250,
    "merge": 250,
    "embedding": 230,
    "repeat": 40,  # no kernel: the decoder reads the vector at each of its rows
}
#: a seq2seq export's attention kernel, by mode
ATTENTION_CODE = {"dot": 400, "concat": 500, "additive": 1100}
UNKNOWN_CODE = 900  # a layer kind not listed
UNKNOWN_PART_CODE = 1100  # a part not listed (as the largest attention kernel)
BASE_CODE = 64  # reset, the step/run wrapper, the input quantization
SEQ2SEQ_CODE = 600  # encode/decode loops, the greedy argmax, the token checks
#: code bytes of the parts a model kind lists besides its layers (ModelKind.code_parts): a
#: token table's lookup, a seq2seq export's loops and its attention kernel by mode
PART_CODE = {
    **CODE_BYTES,
    "seq2seq": SEQ2SEQ_CODE,
    **{f"attention:{mode}": code for mode, code in ATTENTION_CODE.items()},
}
DENSE_X_CODE = 250  # a Dense with a calibrated activation (gelu, silu, elu, ...)
DENSE_X_TABLES = 256  # its erf / softplus table
THUMB1_FACTOR = 1.35  # ARMv6-M (Cortex-M0/M0+) code against Cortex-M4 code
#: the kernels' own stack frames (saved registers, locals) beyond the scratch arrays
FRAME_BYTES = {"armv7m": 96, "armv6m": 128}
#: an audio front end's code on a Cortex-M4 (push_audio, the frame, FFT, mel sums, log, the
#: running mean): what `rnn2c size` measured over the model's estimate on four FSDD exports
#: (1.8 to 2.2 KB; the streaming functions, which --gc-sections drops unless called, apart)
FRONTEND_CODE = 2048
#: how far the estimate may be from `rnn2c size` (tests/test_bounds_messages.py): a fraction of
#: the measured figure or a number of bytes, whichever is larger
FLASH_MARGIN = (0.15, 768)
RAM_MARGIN = (0.25, 96)


def is_armv6m(cpu: str) -> bool:
    """Cortex-M0 and M0+: Thumb-1 only."""
    return cpu.lower().replace("+", "plus") in ("cortex-m0", "cortex-m0plus", "cortex-m1")


@dataclass(frozen=True)
class Footprint:
    """Estimated flash and RAM of an export on a CPU (bytes)."""

    cpu: str
    parameters: int  # weights, biases, multipliers, Embedding tables
    tables: int  # the runtime's activation tables
    code: int
    state: int  # the state struct
    stack: int  # scratch arrays + kernel frames of one step
    frontend_tables: int = 0  # an audio front end's tables (window, twiddles, mel weights, ...)
    frontend_stack: int = 0  # <name>_push_audio's front-end scratch (the FFT's) + frames

    @property
    def flash(self) -> int:
        return self.parameters + self.tables + self.frontend_tables + self.code

    @property
    def ram(self) -> int:
        return self.state + max(self.stack, self.frontend_stack)

    def describe(self) -> str:
        """One line for the export summary."""
        fe = (
            f" + front end tables {size_text(self.frontend_tables)}" if self.frontend_tables else ""
        )
        stack = max(self.stack, self.frontend_stack)
        whose = " (push_audio's front end)" if self.frontend_stack > self.stack else ""
        return (
            f"flash ~{size_text(self.flash)} = parameters {size_text(self.parameters)} + "
            f"activation tables {size_text(self.tables)}{fe} + code ~{size_text(self.code)}; "
            f"RAM ~{size_text(self.ram)} = state {size_text(self.state)} + stack "
            f"~{size_text(stack)}{whose}"
        )


def size_text(n: int) -> str:
    """Bytes for people: 912 B, 2.7 KB, 2.61 MB (1 KB = 1024 B)."""
    if abs(n) < 1024:
        return f"{n} B"
    if abs(n) < 1024 * 1024:
        return f"{n / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{n / (1024 * 1024):.2f}".rstrip("0").removesuffix(".") + " MB"


def scratch_bytes(header: str | bytes, name: str) -> int:
    """<NAME>_SCRATCH_BYTES of a generated header (0 where it declares none)."""
    text = header.decode() if isinstance(header, bytes) else header
    m = re.search(rf"#define {re.escape(name.upper())}_SCRATCH_BYTES\s+(\d+)", text)
    return int(m.group(1)) if m else 0


def _code_and_tables(qmodel: Any) -> tuple[int, int]:
    """(Cortex-M4 code bytes, activation table bytes) of a quantized model of any kind: the
    kernels of the layers its kind lists, and the other parts of its C."""
    layers, parts = kinds.of(qmodel).code_parts(qmodel)
    code = BASE_CODE + sum(PART_CODE.get(p, UNKNOWN_PART_CODE) for p in parts)
    tables = table_bytes()
    for layer in layers:
        code += CODE_BYTES.get(layer.kind, UNKNOWN_CODE)
        if getattr(layer, "out_rq", None) is not None:  # a Dense with a calibrated activation
            code += DENSE_X_CODE
            tables += DENSE_X_TABLES
    return code, tables


def estimate(qmodel: Any, scratch: int, cpu: str = "cortex-m4") -> Footprint:
    """The flash and RAM estimate of a quantized model (of any kind) whose header declares
    `scratch` bytes of stack scratch (scratch_bytes), on a Cortex-M `cpu`."""
    code, tables = _code_and_tables(qmodel)
    thumb1 = is_armv6m(cpu)
    frame = FRAME_BYTES["armv6m" if thumb1 else "armv7m"]
    fe_tables = fe_stack = 0
    if getattr(qmodel, "frontend", None) is not None:  # an audio front end (push_audio)
        fe = LogMel.from_json(qmodel.frontend)
        fe_tables = int(fe.c_tables()["table_bytes"])
        code += FRONTEND_CODE
        # rnn2c_logmel_frame's re/im (n_fft/2 + 1 int32 each) and logs (n_mels int32)
        fe_stack = 8 * (fe.n_fft // 2 + 1) + 4 * fe.n_mels + frame
    return Footprint(
        cpu=cpu,
        parameters=int(qmodel.weight_bytes()),
        tables=tables,
        code=round(code * THUMB1_FACTOR) if thumb1 else code,
        state=int(qmodel.state_bytes()),
        stack=int(scratch) + frame,
        frontend_tables=fe_tables,
        frontend_stack=fe_stack,
    )
