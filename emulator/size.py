"""`rnn2c size`: flash, RAM and exact instruction counts of an export on a Cortex-M target
(or an rv32 one: emulator/riscv.py has what differs, the rest is shared).

The model's C is compiled with arm-none-eabi-gcc for the target (-ffunction-sections
-fdata-sections) and linked with --gc-sections against a tiny harness that calls reset and step,
so only what the model needs is kept. The linker map attributes every kept input section to the
model object, the harness (excluded) or a library member (libgcc's __aeabi_* helpers, libc's
memset, ...). The stack comes from -fstack-usage / -fcallgraph-info (worst call path) and is
cross-checked by a high-water mark measured in the emulator.

Instructions are counted exactly by running the linked ELF in unicorn (QEMU's Cortex-M models):
a block hook adds the number of Thumb instructions of every translation block executed between
the entry of <name>_step and its return. That counts every instruction issued, including those
of an IT block whose condition fails (the core executes them as no-ops, a cycle each on
M3/M4/M7); unicorn's per-instruction hook skips those, so it reads lower on Thumb-2 targets
(1.4% for a GRU(32) on M3; on ARMv6-M, which has no IT, the two agree exactly). The ARM outputs
are compared with the NumPy integer reference, so the counted code computes the right answer.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from rnn2c.emulator import riscv
from rnn2c.emulator.build import step_offsets, template_loader
from rnn2c.emulator.kinds import runner_for
from rnn2c.export.audio import LogMel, frames
from rnn2c.export.data import data_inputs, load_sequences
from rnn2c.export.folder import read_export_dir
from rnn2c.export.ir import ExportError, QuantModel, input_offsets
from rnn2c.export.isa import RUNTIME_FILES, RUNTIME_HEADER
from rnn2c.export.modelkind import ModelKind
from rnn2c.export.ranges import describe_manifest
from rnn2c.export.reference import run_int
from rnn2c.interface import python_api

CC = "arm-none-eabi-gcc"
UNICORN_HINT = (
    "pip install unicorn==2.1.4, or install rnn2c with the extra: pip install 'rnn2c[boards]'"
)
FLASH_BASE, RAM_BASE, RAM_SIZE = 0x0000_0000, 0x2000_0000, 0x0010_0000
STACK_TOP = RAM_BASE + 0x000F_0000  # state / input / output buffers live above it
STACK_PAINT = 0x0001_0000  # bytes below STACK_TOP painted for the high-water mark
BUF_STATE, BUF_IN, BUF_OUT = STACK_TOP + 0x100, STACK_TOP + 0x8000, STACK_TOP + 0xC000
RETURN_ADDR = 0x1000_0000  # LR points here; emulation stops when the callee returns
PAINT = 0xA5


class SizeError(ValueError):
    """Bad input or a missing tool: reported as one line, exit 2."""


@dataclass(frozen=True)
class Target:
    name: str
    flags: tuple[str, ...]
    uc_cpu: str  # unicorn.arm_const (or riscv_const) constant
    note: str = ""
    arch: str = "arm"  # or "riscv" (emulator/riscv.py)

    @property
    def cpu_flags(self) -> list[str]:
        """The flags of every compile and link step for this target."""
        if self.arch == "riscv":
            return [*self.flags, *riscv.COMPILE_FLAGS]
        return ["-mthumb", *self.flags]


TARGETS = {
    "cortex-m0plus": Target(
        "cortex-m0plus",
        ("-mcpu=cortex-m0plus", "-mfloat-abi=soft"),
        "UC_CPU_ARM_CORTEX_M0",
        "emulated as QEMU's Cortex-M0 (no M0+ model; same ARMv6-M instruction set)",
    ),
    "cortex-m3": Target(
        "cortex-m3", ("-mcpu=cortex-m3", "-mfloat-abi=soft"), "UC_CPU_ARM_CORTEX_M3"
    ),
    "cortex-m4": Target(
        "cortex-m4", ("-mcpu=cortex-m4", "-mfloat-abi=soft"), "UC_CPU_ARM_CORTEX_M4"
    ),
    "cortex-m7": Target(
        "cortex-m7", ("-mcpu=cortex-m7", "-mfloat-abi=soft"), "UC_CPU_ARM_CORTEX_M7"
    ),
    **{
        name: Target(name, flags, cpu, note, "riscv")
        for name, (flags, cpu, note) in riscv.TARGETS.items()
    },
}
OPT_LEVELS = ("O2", "Os")
#: --sequences / --steps bounds: every step is emulated with a hook per translation block
#: (1-5 ms a step on a PC: 20,000 steps take about a minute), and the inputs are held in memory
MAX_SEQUENCES, MAX_STEPS, MAX_TOTAL_STEPS = 1000, 20_000, 20_000

LINKER_SCRIPT = f"""\
ENTRY(rnn2c_size_main)
MEMORY {{
  FLASH (rx) : ORIGIN = {FLASH_BASE:#x}, LENGTH = 16M
  RAM (rwx) : ORIGIN = {RAM_BASE:#x}, LENGTH = {RAM_SIZE:#x}
}}
SECTIONS {{
  .text : {{ *(.text .text.*) *(.rodata .rodata.*) }} > FLASH
  .data : {{ *(.data .data.*) }} > RAM AT > FLASH
  .bss (NOLOAD) : {{ *(.bss .bss.* COMMON) }} > RAM
}}
"""

HARNESS = """\
/* rnn2c size harness: keeps <name>_reset and <name>_step alive through --gc-sections. */
#include "{name}.h"
static {name}_state_t rnn2c_size_state;
static int8_t rnn2c_size_in[{NAME}_INPUT_SIZE];
static int8_t rnn2c_size_out[{NAME}_OUTPUT_SIZE];
void rnn2c_size_main(void);
void rnn2c_size_main(void)
{{
    {name}_reset(&rnn2c_size_state);
#if {NAME}_STREAMING
    {step_call};
#else
    (void){name}_run(&rnn2c_size_state,
                     (const int8_t(*)[{NAME}_INPUT_SIZE])(const void *)rnn2c_size_in, 1,
                     rnn2c_size_out);
#endif
#if defined({NAME}_HOP_SAMPLES) /* an audio front end: push_audio and the features alone */
    {{
        static int16_t pcm[{NAME}_WINDOW_SAMPLES];
        static {name}_stream_t stream;
        static {name}_detector_t det;
        (void){name}_push_audio(&rnn2c_size_state, pcm, 1, rnn2c_size_out);
        {name}_audio_features(pcm, rnn2c_size_in);
        {name}_stream_reset(&stream); /* streaming use: counted, its flash reported apart */
        (void){name}_stream_push(&stream, pcm, 1, rnn2c_size_out);
        {name}_detect_reset(&det);
        (void){name}_detect(&det, rnn2c_size_out);
    }}
#endif
#if defined({NAME}_INPUT_TOKENS) /* a token model: the table and the id entry points in flash */
    {{
        static const int32_t token = 0;
        (void){name}_run_tokens(&rnn2c_size_state, &token, 1, rnn2c_size_out);
#if {NAME}_STREAMING
        (void){name}_step_token(&rnn2c_size_state, token, rnn2c_size_out);
#endif
    }}
#endif
}}
"""
#: whole-sequence models (run only): the state (with its sequence buffers), the input sequence
#: and the outputs live here, below the painted stack; seq2seq exports: the state (with the
#: encoder outputs of every step), the input row, and the tokens decode writes
WHOLE_STATE, WHOLE_IN, WHOLE_OUT = RAM_BASE + 0x10000, RAM_BASE + 0x90000, RAM_BASE + 0xB0000


@dataclass
class LibraryMember:
    archive: str  # e.g. libgcc.a
    member: str  # e.g. _muldi3.o
    symbols: list[str]
    bytes: int


@dataclass
class Footprint:
    """Flash and RAM of an export on a target: the part every report shares."""

    name: str
    target: str
    opt: str
    compiler: str
    emulated_cpu: str
    # flash
    text: int  # the model's own code
    rodata: int  # the model's constants: weights, tables
    data: int  # the model's initialized data (flash image; also in RAM)
    library_bytes: int  # flash of the library members the model pulls in
    libraries: list[LibraryMember]
    flash: int
    raw_parameters: int  # 1 byte per int8 weight + 4 per int32 bias
    flash_overhead: int
    # RAM
    state: int
    static_ram: int  # .bss + .data of the model and its library members
    stack_static: int  # worst call path from -fstack-usage (library callees not included)
    stack_measured: int  # high-water mark in the emulator during the counted calls
    stack: int
    ram: int
    stack_path: list[str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def _flash_rows(self) -> list[tuple[str, str]]:
        libs = ", ".join(f"{s} ({m.bytes} B)" for m in self.libraries for s in m.symbols[:1])
        return [
            ("target", f"{self.target} -{self.opt} ({self.emulated_cpu})"),
            ("flash", f"{self.flash} B"),
            ("  model code .text", f"{self.text} B"),
            ("  model constants .rodata", f"{self.rodata} B"),
            ("  model .data", f"{self.data} B"),
            ("  library members", f"{self.library_bytes} B: {libs or 'none'}"),
            ("  raw parameters", f"{self.raw_parameters} B (1 B/weight + 4 B/bias)"),
            ("  overhead over raw", f"{self.flash_overhead} B"),
            ("RAM", f"{self.ram} B"),
            ("  state", f"{self.state} B"),
            ("  .bss + .data", f"{self.static_ram} B"),
        ]

    def _lines(self, rows: list[tuple[str, str]], title: str, notes: list[str]) -> str:
        syms = ", ".join(s for m in self.libraries for s in m.symbols)
        if syms:
            rows.append(("library symbols", syms))
        width = max(len(k) for k, _ in rows) + 2
        lines = [f"rnn2c size: {title}"]
        lines += [f"  {k:<{width}}{v}" for k, v in rows]
        lines += [f"  note: {n}" for n in notes]
        return "\n".join(lines)


#: the note a report carries when the static stack path passes through a library member
LIBRARY_STACK_NOTE = (
    "static stack path counts library callees as 0; the measured figure covers them"
)


def footprint_fields(
    *,
    name: str,
    tgt: Target,
    opt: str,
    cc: str,
    emu: Emulator,
    flash: dict[str, Any],
    raw: int,
    state: int,
    stack_static: int,
    stack_measured: int,
    stack_path: list[str],
) -> dict[str, Any]:
    """The Footprint fields of a report (every model kind's): flash and its overhead over the
    raw parameters, RAM = state + static RAM + the larger of the static and measured stacks."""
    stack = max(stack_static, stack_measured)
    return {
        "name": name,
        "target": tgt.name,
        "opt": opt,
        "compiler": compiler_version(cc),
        "emulated_cpu": f"unicorn {emu.uc_mod.__version__} {tgt.uc_cpu}",
        **flash,
        "raw_parameters": raw,
        "flash_overhead": flash["flash"] - raw,
        "state": state,
        "stack_static": stack_static,
        "stack_measured": stack_measured,
        "stack": stack,
        "ram": state + flash["static_ram"] + stack,
        "stack_path": stack_path,
    }


@dataclass
class SizeReport(Footprint):
    # instructions
    macs_per_step: int
    sequences: int
    steps: int
    input_source: str
    instructions_mean: float
    instructions_min: int
    instructions_max: int
    instructions_per_mac: float
    reset_instructions: int
    bit_exact: bool
    notes: list[str] = field(default_factory=list)
    #: an audio front end: its instructions per hop and per second of audio (frontend_counts)
    frontend: dict[str, Any] | None = None
    #: the packed weight bytes in the C, and what they would be with int8 weights (--weights)
    weight_bytes: int = 0
    weight_bytes_int8: int = 0

    def table(self) -> str:
        saved = self.weight_bytes_int8 - self.weight_bytes
        flash_rows = self._flash_rows()
        at = next(i for i, (k, _) in enumerate(flash_rows) if k == "  raw parameters")
        flash_rows.insert(
            at,
            (
                "  weights (packed)",
                f"{self.weight_bytes} B"
                + (f" (int8: {self.weight_bytes_int8} B; int4 saves {saved} B)" if saved else ""),
            ),
        )
        if saved:
            flash_rows[at + 1] = (
                "  raw parameters",
                f"{self.raw_parameters} B (int4 0.5 B/weight)",
            )
        rows = [
            *flash_rows,
            (
                "  stack of step",
                f"{self.stack} B (static worst path {self.stack_static}, "
                f"measured {self.stack_measured})",
            ),
            (
                "instructions / step",
                f"{self.instructions_mean:.1f} mean, {self.instructions_min} min, "
                f"{self.instructions_max} max",
            ),
            ("MACs / step", str(self.macs_per_step)),
            ("instructions / MAC", f"{self.instructions_per_mac:.2f}"),
            ("instructions / reset", str(self.reset_instructions)),
            (
                "steps counted",
                f"{self.steps} ({self.sequences} sequences, {self.input_source})",
            ),
            (
                f"{'RISC-V' if self.target in riscv.TARGETS else 'ARM'} output == int reference",
                "bit-exact" if self.bit_exact else "MISMATCH",
            ),
            *frontend_rows(self.frontend),
        ]
        return self._lines(rows, self.name, self.notes)


# ---------------------------------------------------------------------------- the export folder


@dataclass
class Export:
    folder: Path
    name: str
    manifest: dict[str, Any]
    qmodel: Any  # the kind's quantized model: a QuantModel, a QuantSeq2Seq
    kind: ModelKind


def read_export(folder: str | Path) -> Export:
    """The export folder as verify reads it (interrupted export finished, manifest checked,
    every file against its sha256: a changed file is refused, exit 2)."""
    try:
        exp = read_export_dir(folder)
    except ExportError as e:
        raise SizeError(str(e)) from None
    d, name = exp.path, exp.name
    for f in (f"{name}.c", f"{name}.h", RUNTIME_HEADER):
        if not (d / f).is_file():
            raise SizeError(f"{str(d)!r} lacks {f}; re-run rnn2c export into it")
    return Export(d, name, exp.manifest or {}, exp.qmodel, exp.kind)


def weight_byte_figures(qmodel: QuantModel) -> tuple[int, int]:
    """(packed weight bytes of the C, the same with int8 weights): what --weights int4 saves."""
    now = int8 = 0
    for layer in qmodel.layers:
        cells = [c for _, c in layer.cells()] if hasattr(layer, "cells") else [layer]
        for cell in cells:
            if hasattr(cell, "int8_weight_bytes"):
                now += int(cell.packed_weight().size)
                int8 += int(cell.int8_weight_bytes())
    return now, int8


def raw_parameter_bytes(qmodel: QuantModel) -> int:
    """1 byte per int8 weight + 4 bytes per int32 bias the C stores (no zero bias arrays, no
    padding columns; a token model's Embedding table at 1 byte per entry)."""
    table = 0 if qmodel.embedding is None else int(qmodel.embedding.table.size)
    return table + sum(layer.raw_parameters() for layer in qmodel.layers)


# ---------------------------------------------------------------------------- build


def find_toolchain(target: Target | None = None) -> str:
    """The target's cross compiler (default: arm-none-eabi-gcc), or a one-line SizeError."""
    if target is not None and target.arch == "riscv":
        cc = shutil.which(riscv.CC)
        if cc is None or not riscv.has_picolibc(cc):
            missing = riscv.CC if cc is None else "picolibc"
            raise SizeError(f"{missing} not found; {riscv.INSTALL_HINT}")
        return cc
    cc = shutil.which(CC)
    if cc is None:
        raise SizeError(
            f"{CC} not found; install the Debian package gcc-arm-none-eabi "
            "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        )
    return cc


def import_unicorn() -> Any:
    try:
        import unicorn  # noqa: PLC0415
    except ImportError:
        raise SizeError(f"the unicorn emulator is not installed; {UNICORN_HINT}") from None
    return unicorn


@dataclass
class Build:
    elf: bytes
    map_text: str
    callgraph: str  # -fcallgraph-info output of the model object
    symbols: dict[str, int]


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    if proc.returncode != 0:
        msg = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[:6])
        raise RuntimeError(f"{what} failed: {msg}")
    return proc.stdout


def build(exp: Export, target: Target, opt: str, cc: str, harness: str = HARNESS) -> Build:
    """Compile the model and the harness (HARNESS, or a model kind's own) for the target and
    link them with --gc-sections."""
    cpu = target.cpu_flags
    cflags = [
        *cpu,
        f"-{opt}",
        "-std=c99",
        "-ffunction-sections",
        "-fdata-sections",
        "-fstack-usage",
        "-fcallgraph-info=su",
        "-I.",
    ]
    link = ["-nostartfiles", "-T", "link.ld", "-Wl,--gc-sections", "-Wl,-Map=out.map"]
    what = Path(cc).name
    nm = str(Path(cc).with_name(riscv.NM if target.arch == "riscv" else "arm-none-eabi-nm"))
    with tempfile.TemporaryDirectory(prefix="rnn2c-size-") as work:
        w = Path(work)
        runtime = [f for f in RUNTIME_FILES if (exp.folder / f).is_file()]  # an older export: one
        for f in (f"{exp.name}.c", f"{exp.name}.h", *runtime):
            shutil.copyfile(exp.folder / f, w / f)
        offsets = step_offsets((exp.folder / f"{exp.name}.h").read_text(), exp.name)
        step = harness_step_call(exp.name, offsets)
        (w / "harness.c").write_text(
            harness.format(name=exp.name, NAME=exp.name.upper(), step_call=step)
        )
        (w / "link.ld").write_text(LINKER_SCRIPT)
        _run([cc, *cflags, "-c", f"{exp.name}.c", "-o", "model.o"], what, w)
        _run([cc, *cflags, "-c", "harness.c", "-o", "harness.o"], what, w)
        _run([cc, *cpu, *link, "model.o", "harness.o", "-lgcc", "-lc", "-o", "out.elf"], what, w)
        symbols = {}
        for line in _run([nm, "out.elf"], Path(nm).name, w).splitlines():
            parts = line.split()
            if len(parts) == 3:
                symbols[parts[2]] = int(parts[0], 16)
        return Build(
            elf=(w / "out.elf").read_bytes(),
            map_text=(w / "out.map").read_text(),
            callgraph=(w / "model.ci").read_text(),
            symbols=symbols,
        )


def harness_step_call(name: str, offsets: list[int]) -> str:
    """HARNESS's call of <name>_step, through the templates' shared step_call macro."""
    env = jinja2.Environment(loader=template_loader())
    macro = env.get_template("step_call.j2").module.step_call  # type: ignore[attr-defined]
    return str(macro(name, offsets, "&rnn2c_size_state", "rnn2c_size_in", "rnn2c_size_out"))


# ---------------------------------------------------------------------------- the linker map

_OUT_SECTION = re.compile(r"^(\.\S+)(?:\s+0x[0-9a-f]+\s+0x[0-9a-f]+.*)?$")
_IN_SECTION = re.compile(r"^ (\.\S+|COMMON)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?$")
_CONTINUED = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_FILL = re.compile(r"^ \*fill\*\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)")
_SYMBOL = re.compile(r"^\s+0x([0-9a-f]+)\s+([A-Za-z_.$][\w.$]*)\s*$")
_MEMBER = re.compile(r"([^/()]+\.a)\(([^()]+)\)$")


@dataclass
class MapEntry:
    out_section: str  # .text, .data or .bss
    section: str  # input section name
    size: int
    origin: str  # "model", "harness", "fill" or "archive(member)"
    symbols: list[str] = field(default_factory=list)


def _origin(path: str) -> str:
    path = path.strip()
    if path.endswith("model.o"):
        return "model"
    if path.endswith("harness.o"):
        return "harness"
    m = _MEMBER.search(path)
    return f"{m.group(1)}({m.group(2)})" if m else path


def parse_map(text: str) -> list[MapEntry]:
    """Every input section that GNU ld placed into .text/.data/.bss, with its origin."""
    lines = text.split("\n")
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        raise RuntimeError("linker map has no memory map") from None
    entries: list[MapEntry] = []
    out = ""
    pending: str | None = None  # an input section whose address is on the next line
    for line in lines[start + 1 :]:
        if line.startswith("OUTPUT("):
            break
        if pending is not None:
            m = _CONTINUED.match(line)
            if m and out in (".text", ".data", ".bss"):
                entries.append(MapEntry(out, pending, int(m.group(2), 16), _origin(m.group(3))))
            pending = None
            continue
        if line and not line[0].isspace():
            m = _OUT_SECTION.match(line)
            if m:
                out = m.group(1)
            continue
        if out not in (".text", ".data", ".bss"):
            continue
        m = _FILL.match(line)
        if m:
            size = int(m.group(2), 16)
            if size and entries:  # alignment padding belongs to the section before it
                entries[-1].size += size
            continue
        m = _IN_SECTION.match(line)
        if m:
            if m.group(2) is None:
                pending = m.group(1)
            else:
                entries.append(MapEntry(out, m.group(1), int(m.group(3), 16), _origin(m.group(4))))
            continue
        m = _SYMBOL.match(line)
        if m and entries:
            entries[-1].symbols.append(m.group(2))
    return [e for e in entries if e.size > 0]


def flash_figures(map_text: str, aside: tuple[str, ...] = ()) -> dict[str, Any]:
    """text, rodata, data, library_bytes, libraries, flash and static_ram (see Footprint) from
    the linker map: the model object's sections and the library members it pulls in (the harness
    excluded). Model sections named in ``aside`` (e.g. ``.text.digits_detect``: code the
    harness keeps for counting, reported apart by model_section_bytes) are left out."""
    entries = parse_map(map_text)
    model = [e for e in entries if e.origin == "model" and e.section not in aside]
    rodata = sum(e.size for e in model if e.section.startswith(".rodata"))
    text = sum(e.size for e in model if e.out_section == ".text") - rodata
    data_bytes = sum(e.size for e in model if e.out_section == ".data")
    static_ram = sum(e.size for e in entries if e.origin != "harness" and e.out_section != ".text")
    members: dict[str, LibraryMember] = {}
    for e in entries:
        if e.origin in ("model", "harness"):
            continue
        m = _MEMBER.search(e.origin)
        archive, member = (m.group(1), m.group(2)) if m else (e.origin, "")
        lib = members.setdefault(e.origin, LibraryMember(archive, member, [], 0))
        if e.out_section != ".bss":
            lib.bytes += e.size
        lib.symbols += [s for s in e.symbols if s not in lib.symbols]
    libraries = sorted(members.values(), key=lambda m: (m.archive, m.member))
    library_bytes = sum(m.bytes for m in libraries)
    return {
        "text": text,
        "rodata": rodata,
        "data": data_bytes,
        "library_bytes": library_bytes,
        "libraries": libraries,
        "flash": text + rodata + data_bytes + library_bytes,
        "static_ram": static_ram,
    }


def model_section_bytes(map_text: str, sections: tuple[str, ...]) -> int:
    """The bytes of the model object's sections named (as flash_figures' ``aside``)."""
    return sum(e.size for e in parse_map(map_text) if e.origin == "model" and e.section in sections)


def compiler_version(cc: str) -> str:
    return f"{Path(cc).name} " + _run([cc, "-dumpfullversion"], Path(cc).name).strip()


# ---------------------------------------------------------------------------- the stack


_CI_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_CI_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_CI_BYTES = re.compile(r"(\d+) bytes \(([^)]*)\)")


def worst_stack_path(callgraph: str, root: str) -> tuple[int, list[str]]:
    """Largest sum of static frames along any call path from root (-fcallgraph-info=su).

    Callees without a frame size (library helpers such as __aeabi_lmul) count 0 here; the
    emulator's measured high-water mark covers them. Returns (bytes, path); the path names
    library callees as 'name(library)'.
    """
    frames: dict[str, int | None] = {}
    for title, label in _CI_NODE.findall(callgraph):
        m = _CI_BYTES.search(label)
        frames[title] = int(m.group(1)) if m else None
    calls: dict[str, set[str]] = {}
    for src, dst in _CI_EDGE.findall(callgraph):
        calls.setdefault(src, set()).add(dst)
    if root not in frames:
        raise RuntimeError(f"{root} not in the call graph")

    def walk(fn: str, seen: frozenset[str]) -> tuple[int, list[str]]:
        own = frames.get(fn)
        here = fn if own is not None else f"{fn}(library)"
        best: tuple[int, list[str]] = (0, [])
        for callee in sorted(calls.get(fn, ())):
            if callee in seen:  # recursion: the generated C has none
                raise RuntimeError(f"recursive call through {callee}")
            sub = walk(callee, seen | {callee})
            if sub[0] > best[0] or not best[1]:
                best = sub
        return (own or 0) + best[0], [here, *best[1]]

    return walk(root, frozenset({root}))


# ---------------------------------------------------------------------------- the emulator


def load_segments(elf: bytes) -> list[tuple[int, bytes, int]]:
    """(address, file bytes, memory size) of every PT_LOAD segment of a 32-bit LE ELF."""
    if elf[:4] != b"\x7fELF" or elf[4] != 1 or elf[5] != 1:
        raise RuntimeError("not a 32-bit little-endian ELF")
    phoff = struct.unpack_from("<I", elf, 28)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 42)
    segs = []
    for i in range(phnum):
        p_type, p_offset, p_vaddr, _, p_filesz, p_memsz = struct.unpack_from(
            "<6I", elf, phoff + i * phentsize
        )
        if p_type == 1 and p_memsz:
            segs.append((p_vaddr, elf[p_offset : p_offset + p_filesz], p_memsz))
    return segs


def thumb_instructions(code: bytes) -> int:
    """Number of Thumb instructions in a straight run of code (16- and 32-bit encodings)."""
    n = i = 0
    while i + 1 < len(code):
        hw = code[i] | (code[i + 1] << 8)
        i += 4 if (hw >> 11) in (0b11101, 0b11110, 0b11111) else 2
        n += 1
    return n


class Emulator:
    """An M-profile CPU (or a RISCV32 one: a unicorn constant UC_CPU_RISCV32_*, see
    emulator/riscv.py) running functions of one linked image; counts executed instructions."""

    def __init__(
        self, elf: bytes, cpu: str, per_instruction: bool = False, count: bool = True
    ) -> None:
        uc_mod = import_unicorn()
        from unicorn import arm_const  # noqa: PLC0415

        self.uc_mod, self.arm = uc_mod, arm_const
        self.riscv = riscv.Registers(uc_mod) if riscv.is_riscv(cpu) else None
        if self.riscv is not None:
            uc = uc_mod.Uc(self.riscv.arch, self.riscv.mode)
            model = self.riscv.cpu_model(cpu)
            self.width = riscv.instructions
        else:
            # unicorn 2.1.4 replaces the model by its Cortex-M33 whenever UC_MODE_MCLASS is
            # given (a v8-M core: it runs DSP and Thumb-2 code on an "M0"). The Cortex-M models
            # are M-profile by themselves, so plain Thumb mode plus the exact model is what runs
            # M0 code as an M0; the check below makes sure the model took.
            uc = uc_mod.Uc(uc_mod.UC_ARCH_ARM, uc_mod.UC_MODE_THUMB)
            model = getattr(arm_const, cpu)
            self.width = thumb_instructions
        uc.ctl_set_cpu_model(model)
        if uc.ctl_get_cpu_model() != model:
            raise RuntimeError(f"unicorn did not accept the CPU model {cpu}")
        segs = load_segments(elf)
        flash_end = max(
            [a + m for a, _, m in segs if a < RAM_BASE] + [FLASH_BASE + 0x1000], default=0
        )
        uc.mem_map(FLASH_BASE, (flash_end + 0xFFF) & ~0xFFF)
        uc.mem_map(RAM_BASE, RAM_SIZE)
        uc.mem_map(RETURN_ADDR, 0x1000)
        uc.mem_write(RETURN_ADDR, riscv.RETURN_STUB if self.riscv else b"\xfe\xe7")  # b .
        for addr, data, _ in segs:
            uc.mem_write(addr, data)
        self.uc = uc
        self.count = 0
        self._cache: dict[tuple[int, int], int] = {}
        if not count:  # full speed: call() returns 0 (tests/test_kernels.py)
            return
        if per_instruction:
            uc.hook_add(uc_mod.UC_HOOK_CODE, self._on_instruction)
        else:
            uc.hook_add(uc_mod.UC_HOOK_BLOCK, self._on_block)

    def _on_instruction(self, uc: Any, address: int, size: int, user: Any) -> None:
        self.count += 1

    def _on_block(self, uc: Any, address: int, size: int, user: Any) -> None:
        key = (address, size)
        n = self._cache.get(key)
        if n is None:
            n = self._cache[key] = self.width(bytes(uc.mem_read(address, size)))
        self.count += n

    def result(self) -> int:
        """The last call's return value (r0 / a0), as an unsigned word."""
        reg = self.riscv.args[0] if self.riscv else self.arm.UC_ARM_REG_R0
        return int(self.uc.reg_read(reg))

    def call(self, addr: int, *args: int, sp: int = STACK_TOP) -> int:
        """Run the function at addr with these word arguments (AAPCS: the first four in r0-r3,
        the rest on the stack; RISC-V ilp32: up to eight in a0-a7); instructions run."""
        arm, uc, rv = self.arm, self.uc, self.riscv
        regs = rv.args if rv else (arm.UC_ARM_REG_R0, arm.UC_ARM_REG_R1, arm.UC_ARM_REG_R2,
                                   arm.UC_ARM_REG_R3)  # fmt: skip
        for reg, value in zip(regs, args, strict=False):
            uc.reg_write(reg, value & 0xFFFFFFFF)
        rest = args[len(regs) :]
        if rest:  # the caller's outgoing arguments at [sp], sp kept 8-byte aligned (16: RISC-V)
            align = 16 if rv else 8
            sp -= -(-4 * len(rest) // align) * align
            uc.mem_write(sp, b"".join(struct.pack("<I", v & 0xFFFFFFFF) for v in rest))
        uc.reg_write(rv.sp if rv else arm.UC_ARM_REG_SP, sp)
        uc.reg_write(rv.link if rv else arm.UC_ARM_REG_LR, RETURN_ADDR | (0 if rv else 1))
        pc_reg = rv.pc if rv else arm.UC_ARM_REG_PC
        before = self.count
        try:
            uc.emu_start(addr | (0 if rv else 1), RETURN_ADDR, timeout=120_000_000)
        except self.uc_mod.UcError as e:
            raise RuntimeError(f"emulation faulted at {uc.reg_read(pc_reg):#x}: {e}") from None
        pc = uc.reg_read(pc_reg)
        if pc & ~1 != RETURN_ADDR:
            raise RuntimeError(f"the function at {addr:#x} did not return (pc {pc:#x})")
        return self.count - before

    def paint_stack(self) -> None:
        self.uc.mem_write(STACK_TOP - STACK_PAINT, bytes([PAINT]) * STACK_PAINT)

    def stack_high_water(self) -> int:
        """Bytes below STACK_TOP written since paint_stack (to 4-byte granularity)."""
        mem = bytes(self.uc.mem_read(STACK_TOP - STACK_PAINT, STACK_PAINT))
        for i in range(0, STACK_PAINT, 4):
            if mem[i : i + 4] != bytes([PAINT]) * 4:
                return STACK_PAINT - i
        return 0


# ---------------------------------------------------------------------------- inputs


def make_inputs(
    qmodel: QuantModel, data: str | Path | None, sequences: int, steps: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    """int8 [N, T, F], lengths [N], and a description of where they came from."""
    if data is None:
        rng = np.random.default_rng(seed)
        if qmodel.vocab is not None:  # a token model: the table rows of pseudo-random ids
            ids = rng.integers(0, qmodel.vocab, size=(sequences, steps))
            xq = qmodel.quantize_input(ids).astype(np.int8)
            return xq, np.full(sequences, steps), f"pseudo-random token ids, seed {seed}"
        xq = rng.integers(-128, 128, size=(sequences, steps, qmodel.input_size), dtype=np.int8)
        desc = f"pseudo-random int8 inputs, seed {seed}"
        return xq, np.full(sequences, steps), desc
    try:
        seqs = load_sequences(
            data, "--data", qmodel.input_size, qmodel.embedding, data_inputs(qmodel)
        )
    except ExportError as e:
        raise SizeError(str(e)) from None
    n = min(sequences, seqs.x.shape[0])
    t = min(steps, seqs.x.shape[1])
    xq = qmodel.quantize_input(seqs.x[:n, :t]).astype(np.int8)
    lengths = np.full(n, t) if seqs.lengths is None else np.minimum(seqs.lengths[:n], t)
    return xq, np.asarray(lengths, dtype=np.int64), f"{Path(data).name} quantized"


# ---------------------------------------------------------------------------- the report


def check_counts(sequences: int, steps: int) -> None:
    """One-line SizeError for --sequences / --steps out of range (before any work)."""
    for flag, v, top in (("--sequences", sequences, MAX_SEQUENCES), ("--steps", steps, MAX_STEPS)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 1 <= v <= top:
            raise SizeError(f"{flag} {v}: expected 1 to {top}")
    if sequences * steps > MAX_TOTAL_STEPS:
        raise SizeError(
            f"--sequences {sequences} x --steps {steps} = {sequences * steps} steps: expected at "
            f"most {MAX_TOTAL_STEPS} in all (each step is emulated instruction by instruction, "
            "a few ms a step)"
        )


@python_api(dir="folder")
def measure(
    folder: str | Path,
    target: str,
    opt: str = "O2",
    data: str | Path | None = None,
    sequences: int = 4,
    steps: int = 16,
) -> Any:
    """Compile an export folder for a Cortex-M or rv32 target and measure it (see the module doc),
    through its kind's runner (emulator/kinds.py): a SizeReport for a sequence model, a
    Seq2SeqSizeReport for an encoder-decoder (emulator/seq2seq_size.py)."""
    if target not in TARGETS:
        raise SizeError(f"unknown --target {target!r}; choose one of {', '.join(TARGETS)}")
    if opt not in OPT_LEVELS:
        raise SizeError(f"unknown --opt {opt!r}; choose one of {', '.join(OPT_LEVELS)}")
    check_counts(sequences, steps)
    exp = read_export(folder)
    cc = find_toolchain(TARGETS[target])
    import_unicorn()
    return runner_for(exp.kind).measure(exp, TARGETS[target], opt, cc, data, sequences, steps)


def measure_sequence(
    exp: Export,
    tgt: Target,
    opt: str,
    cc: str,
    data: str | Path | None,
    sequences: int,
    steps: int,
) -> SizeReport:
    """A sequence model (measure's checks done): each sequence through <name>_step (or once
    through <name>_run for a whole-sequence model), its instructions counted, its outputs
    against the integer reference."""
    b = build(exp, tgt, opt, cc)
    qm, name = exp.qmodel, exp.name
    offsets = input_offsets(qm.input_sizes)

    streaming = streaming_sections(name) if qm.frontend is not None else ()
    flash = flash_figures(b.map_text, streaming)
    raw = raw_parameter_bytes(qm)
    weights = weight_byte_figures(qm)

    whole = qm.whole_sequence
    stack_static, path = worst_stack_path(b.callgraph, f"{name}_{'run' if whole else 'step'}")

    if whole and qm.max_length is not None:
        steps = min(steps, qm.max_length)
    xq, lengths, source = make_inputs(qm, data, sequences, steps)
    emu = Emulator(b.elf, tgt.uc_cpu)
    reset_fn = b.symbols[f"{name}_reset"]
    out_size = qm.output_size
    counts: list[int] = []
    reset_count = 0
    y = np.zeros((xq.shape[0], qm.row_slots(xq.shape[1]), out_size), dtype=np.int8)
    emu.paint_stack()
    if whole:  # one run per sequence; its instructions spread over its steps
        if qm.state_bytes() > WHOLE_IN - WHOLE_STATE:
            raise SizeError(f"the state ({qm.state_bytes()} bytes) is too large to count here")
        run_fn = b.symbols[f"{name}_run"]
        for i in range(xq.shape[0]):
            n = int(lengths[i])
            reset_count = emu.call(reset_fn, WHOLE_STATE)
            emu.uc.mem_write(WHOLE_IN, xq[i, :n].tobytes())
            count = emu.call(run_fn, WHOLE_STATE, WHOLE_IN, n, WHOLE_OUT)
            counts += [count // n] * n
            rows = qm.rows_written(n)
            out = np.frombuffer(bytes(emu.uc.mem_read(WHOLE_OUT, rows * out_size)), np.int8)
            if qm.returns_sequences:  # a Conv1D or pooling: fewer rows; a RepeatVector: its n
                y[i, :rows] = out.reshape(rows, out_size)
            else:
                y[i, n - 1] = out
    else:
        step_fn = b.symbols[f"{name}_step"]
        for i in range(xq.shape[0]):
            reset_count = emu.call(reset_fn, BUF_STATE)
            for t in range(int(lengths[i])):
                emu.uc.mem_write(BUF_IN, xq[i, t].tobytes())
                ins = [BUF_IN + o for o in offsets] or [BUF_IN]  # one pointer per input
                counts.append(emu.call(step_fn, BUF_STATE, *ins, BUF_OUT))
                y[i, t] = np.frombuffer(bytes(emu.uc.mem_read(BUF_OUT, out_size)), dtype=np.int8)
    stack_measured = emu.stack_high_water()
    state = int(exp.manifest.get("state_bytes", qm.state_bytes()))
    audio = None
    if not whole and qm.frontend is not None:
        header = (exp.folder / f"{name}.h").read_text()
        audio = frontend_counts(emu, b.symbols, qm, name)
        audio["push_audio_stack_static"] = worst_stack_path(b.callgraph, f"{name}_push_audio")[0]
        audio["push_audio_stack"] = max(
            audio["push_audio_stack_static"], audio["push_audio_stack_measured"]
        )
        audio["push_audio_ram"] = state + flash["static_ram"] + audio["push_audio_stack"]
        audio.update(streaming_counts(emu, b.symbols, qm, name, header))
        audio["streaming_flash"] = model_section_bytes(b.map_text, streaming)
    ref = run_int(qm, xq, lengths)
    bit_exact = bool(np.array_equal(y, ref))

    macs = qm.macs
    arr = np.asarray(counts)
    per_mac = float(arr.mean() / macs) if macs else 0.0
    if qm.changes_length:  # strided Conv1D / pooling: the later layers run at some steps only
        done = sum(qm.macs_over(int(n)) for n in lengths)
        macs = round(done / max(len(counts), 1))
        per_mac = float(arr.sum() / done) if done else 0.0
    notes = [tgt.note] if tgt.note else []
    declared = describe_manifest(exp.manifest)
    if declared:
        notes.append(f"declared ranges (rnn2c.json): {declared}")
    if qm.vocab is not None:
        notes.append(
            f"token model: counted over {name}_{'run' if whole else 'step'} on the ids' Embedding "
            f"rows ({name}_{'run_tokens' if whole else 'step_token'} adds the id check); flash "
            "includes the table"
        )
    if whole:
        notes.append(
            f"whole-sequence model: counted over {name}_run, one call per sequence; per step = "
            "a run's instructions / its length (both directions' MACs count per step); the "
            "stack is run's"
        )
    if qm.repeat_n is not None:
        notes.append(
            "RepeatVector: MACs per step are a run's MACs (the layers before it over the steps, "
            "those after it over its n rows) over its steps, averaged; per MAC = all "
            "instructions / all MACs done"
        )
    elif qm.changes_length:
        notes.append(
            "Conv1D / pooling: MACs per step are the average over the counted steps "
            "(the layers after them run at some steps only); per MAC = all instructions / all "
            "MACs done"
        )
    if any(p.endswith("(library)") for p in path):
        notes.append(LIBRARY_STACK_NOTE)
    return SizeReport(
        **footprint_fields(
            name=name,
            tgt=tgt,
            opt=opt,
            cc=cc,
            emu=emu,
            flash=flash,
            raw=raw,
            state=state,
            stack_static=stack_static,
            stack_measured=stack_measured,
            stack_path=path,
        ),
        macs_per_step=macs,
        sequences=int(xq.shape[0]),
        steps=len(counts),
        input_source=source,
        instructions_mean=float(arr.mean()),
        instructions_min=int(arr.min()),
        instructions_max=int(arr.max()),
        instructions_per_mac=per_mac,
        reset_instructions=reset_count,
        bit_exact=bit_exact,
        notes=notes,
        frontend=audio,
        weight_bytes=weights[0],
        weight_bytes_int8=weights[1],
    )


# ---------------------------------------------------------------------------- audio front end


def noise_bursts(fe: LogMel, hops: int, seed: int) -> np.ndarray:
    """``hops`` hops of int16 white noise, each at its own level (-70 to -10 dB of full scale)."""
    rng = np.random.default_rng(seed)
    level = np.repeat(10.0 ** rng.uniform(1.0, 4.5, hops), fe.hop)
    pcm = np.clip(np.round(rng.standard_normal(hops * fe.hop) * level), -32768, 32767)
    return pcm.astype("<i2")


def frontend_counts(
    emu: Emulator, symbols: dict[str, int], qm: QuantModel, name: str, hops: int = 40
) -> dict[str, Any]:
    """A model with an audio front end: ``hops`` hops of noise bursts through
    <name>_push_audio, and each frame through <name>_audio_features, counted; the features and
    outputs against the NumPy reference."""
    assert qm.frontend is not None
    fe = LogMel.from_json(qm.frontend)
    pcm = noise_bursts(fe, hops, 0)
    frame_feats = fe.frame_features_int(pcm)  # <name>_audio_features: before the running mean
    ref = run_int(qm, fe.subtract_mean(frame_feats)[None].astype(np.int8))[0]
    push, feat_fn = symbols[f"{name}_push_audio"], symbols[f"{name}_audio_features"]
    emu.call(symbols[f"{name}_reset"], BUF_STATE)
    emu.paint_stack()  # push_audio's own stack: the front end's FFT scratch is on it
    push_counts, fe_counts, exact = [], [], True
    for t, frame in enumerate(frames(pcm, fe.window, fe.hop)):
        emu.uc.mem_write(WHOLE_IN, pcm[t * fe.hop : (t + 1) * fe.hop].tobytes())
        push_counts.append(emu.call(push, BUF_STATE, WHOLE_IN, fe.hop, BUF_OUT))
        out = np.frombuffer(bytes(emu.uc.mem_read(BUF_OUT, qm.output_size)), dtype=np.int8)
        emu.uc.mem_write(WHOLE_IN, frame.astype("<i2").tobytes())
        fe_counts.append(emu.call(feat_fn, WHOLE_IN, WHOLE_OUT))
        got = np.frombuffer(bytes(emu.uc.mem_read(WHOLE_OUT, fe.num_features)), dtype=np.int8)
        exact = exact and np.array_equal(out, ref[t]) and np.array_equal(got, frame_feats[t])
    per_hop = float(np.mean(push_counts))
    hops_per_s = fe.sample_rate / fe.hop
    return {
        "push_audio_stack_measured": emu.stack_high_water(),
        "hop_samples": fe.hop,
        "sample_rate": fe.sample_rate,
        "hops": hops,
        "push_audio_per_hop": per_hop,
        "frontend_per_hop": float(np.mean(fe_counts)),
        "per_second": per_hop * hops_per_s,
        "frontend_share": float(np.mean(fe_counts)) / per_hop,
        "bit_exact": bool(exact),
    }


#: where streaming_counts keeps the stream (two model states) and the detector
STREAM_AT, DETECTOR_AT = WHOLE_STATE, WHOLE_OUT + 0x8000


def streaming_sections(name: str) -> tuple[str, ...]:
    """The code of streaming use (<name>_stream_push, <name>_detect and their resets), which
    the harness keeps for counting and the flash figure leaves out (a program that calls only
    <name>_push_audio drops it under --gc-sections)."""
    fns = ("stream_reset", "stream_restart", "stream_push", "detect_reset", "detect")
    return tuple(f".text.{name}_{f}" for f in fns)


def header_macro(header: str, name: str, key: str) -> int:
    """An integer macro's default in the export's header (``#define <NAME>_<KEY> value``)."""
    m = re.search(rf"#define {name.upper()}_{key}\s+\(?(-?\d+)\)?", header)
    if m is None:
        raise SizeError(f"{name}.h has no {name.upper()}_{key}: export the model again")
    return int(m.group(1))


def streaming_counts(
    emu: Emulator, symbols: dict[str, int], qm: QuantModel, name: str, header: str
) -> dict[str, Any]:
    """Streaming use counted: <name>_stream_push over enough hops of noise bursts that both
    model copies restart once (<NAME>_STREAM_RESET_HOPS + 2), and <name>_detect on each hop's
    output (the header's defaults), both against their NumPy twins (rnn2c.export.detect)."""
    from rnn2c.export.detect import Detector, detect, stream_outputs  # noqa: PLC0415

    assert qm.frontend is not None
    fe = LogMel.from_json(qm.frontend)
    reset = header_macro(header, name, "STREAM_RESET_HOPS")
    det = Detector(
        hops=header_macro(header, name, "DETECT_HOPS"),
        threshold=header_macro(header, name, "DETECT_THRESHOLD"),
        refractory=header_macro(header, name, "DETECT_REFRACTORY"),
    )
    hops = reset + 2
    pcm = noise_bursts(fe, hops, 1)
    ref = stream_outputs(
        lambda x: run_int(qm, x), fe.frame_features_int(pcm), reset, fe.subtract_mean
    )
    labels = detect(ref, det)
    emu.call(symbols[f"{name}_stream_reset"], STREAM_AT)
    emu.call(symbols[f"{name}_detect_reset"], DETECTOR_AT)
    push, decide = symbols[f"{name}_stream_push"], symbols[f"{name}_detect"]
    push_counts, detect_counts, exact = [], [], True
    for t in range(hops):
        emu.uc.mem_write(WHOLE_IN, pcm[t * fe.hop : (t + 1) * fe.hop].tobytes())
        push_counts.append(emu.call(push, STREAM_AT, WHOLE_IN, fe.hop, BUF_OUT))
        out = np.frombuffer(bytes(emu.uc.mem_read(BUF_OUT, qm.output_size)), dtype=np.int8)
        detect_counts.append(emu.call(decide, DETECTOR_AT, BUF_OUT))
        label = emu.result() & 0xFFFFFFFF
        label = label - (1 << 32) if label >= 1 << 31 else label
        exact = exact and np.array_equal(out, ref[t]) and label == labels[t]
    per_hop = float(np.mean(push_counts)) + float(np.mean(detect_counts))
    return {
        "stream_push_per_hop": float(np.mean(push_counts)),
        "detect_per_hop": float(np.mean(detect_counts)),
        "detect_max": int(np.max(detect_counts)),
        "stream_per_second": per_hop * fe.sample_rate / fe.hop,
        "stream_hops": hops,
        "stream_reset_hops": reset,
        "detector": [det.hops, det.threshold, det.refractory],
        "stream_bit_exact": bool(exact),
    }


def frontend_rows(audio: dict[str, Any] | None) -> list[tuple[str, str]]:
    """SizeReport's rows for an audio front end (none without one)."""
    if audio is None:
        return []
    return [
        (
            "instructions / hop",
            f"{audio['push_audio_per_hop']:.0f} push_audio of {audio['hop_samples']} samples "
            f"(front end {audio['frontend_per_hop']:.0f}, {100 * audio['frontend_share']:.0f} %)",
        ),
        (
            "instructions / s audio",
            f"{audio['per_second'] / 1e6:.3f} M at {audio['sample_rate']} Hz",
        ),
        (
            "stack of push_audio",
            f"{audio['push_audio_stack']} B (static worst path "
            f"{audio['push_audio_stack_static']}, measured {audio['push_audio_stack_measured']}"
            f"); RAM with it {audio['push_audio_ram']} B",
        ),
        (
            "audio C == reference",
            f"{'bit-exact' if audio['bit_exact'] else 'MISMATCH'} ({audio['hops']} hops, "
            "features and outputs)",
        ),
        *streaming_rows(audio),
    ]


def streaming_rows(audio: dict[str, Any]) -> list[tuple[str, str]]:
    """SizeReport's rows for streaming use (stream_push + detect), when it was counted."""
    if "stream_push_per_hop" not in audio:
        return []
    hops, threshold, refractory = audio["detector"]
    return [
        (
            "streaming / hop",
            f"{audio['stream_push_per_hop']:.0f} stream_push (two model copies) + "
            f"{audio['detect_per_hop']:.0f} detect (max {audio['detect_max']}) per decision",
        ),
        (
            "streaming / s audio",
            f"{audio['stream_per_second'] / 1e6:.3f} M; +{audio['streaming_flash']} B flash "
            "(stream_push, detect and their resets)",
        ),
        (
            "streaming C == twins",
            f"{'bit-exact' if audio['stream_bit_exact'] else 'MISMATCH'} "
            f"({audio['stream_hops']} hops, both copies restarted; detector {hops} hops, "
            f"threshold {threshold}, refractory {refractory})",
        ),
    ]
