"""`rnn2c firmware`: a bare-metal project for a board, built with arm-none-eabi-gcc (a RISC-V
board: riscv64-unknown-elf-gcc), run on QEMU.

render: model C (from an export, or exported here) + main.c (replays a few int8 sequences through
<name>_reset/<name>_step, prints every output and the cycles per step through ARM semihosting) +
startup.c + link.ld + Makefile, from the templates in rnn2c.firmware_templates/boards/ (one JSON
file per board: memory map, cpu flags, QEMU machine).
build/run/parse/compare: make, qemu-system-arm (qemu-system-riscv32) under a timeout, the printed
outputs against the host emulator's (the same C compiled for the host), bit for bit.
What differs by model kind (emulator/kinds.py) is asked of the kind's runner: the replayed
inputs, main.c's template and buffers, how the printed lines are held against the references
and reported (a seq2seq export: boards/seq2seq_main.c.j2, encode_step per input step then
greedy decode, its tokens against the integer reference's: emulator/seq2seq_boards.py); the
board files, the build and the QEMU run are the same.

The project folder is written like every rnn2c output (rnn2c.outdir): it may hold the user's own
files, rnn2c replaces only the files its firmware.json lists, crash-safely.
"""

from __future__ import annotations

import importlib.resources
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c import __version__
from rnn2c.emulator.build import BuildError, load_model, step_offsets
from rnn2c.emulator.kinds import runner_for, runner_of
from rnn2c.export import kinds
from rnn2c.export.api import MANIFEST, export_model, output_files
from rnn2c.export.audio import FrontEndError, LogMel, read_recordings, read_wav, wav_sequences
from rnn2c.export.data import Sequences, data_inputs, load_sequences, mask_lengths
from rnn2c.export.folder import read_export_dir
from rnn2c.export.footprint import estimate, scratch_bytes, size_text
from rnn2c.export.ir import ExportError, QuantModel
from rnn2c.export.isa import RUNTIME_FILES, runtime_files_for
from rnn2c.export.modelkind import ModelKind
from rnn2c.export.render import check_name, template_environment
from rnn2c.interface import python_api
from rnn2c.outdir import OutputError, OwnedFolder

PROJECT_MANIFEST = "firmware.json"
MODEL_DIR = "model"
RESERVED_NAMES = ("main", "startup")  # main.c and startup.c sit next to <name>.c
DEFAULT_SEQUENCES = 3
DEFAULT_STEPS = 16  # pseudo-random sequences when no --data is given
DEFAULT_TIMEOUT = 60.0
MAX_SEQUENCES = 1000  # --sequences: main.c holds them all; QEMU prints a line per step
MAX_TIMEOUT = 3600.0
STACK_BYTES = 4096
#: flash of main.c, startup.c, the vectors and the libgcc helpers they pull in, beside the
#: model (measured: 1.5-1.6 KB on the Cortex-M0 and M4 boards)
FIRMWARE_CODE = 2048
MAIN_STACK = 256  # main's frame and the output formatting, above the model's stack
CLOSE = 0.9  # warn when the project fills this much of the board's flash or RAM
# Tool -> Debian package that provides it.
PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "make": "make",
    "qemu-system-arm": "qemu-system-arm",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf",
    "qemu-system-riscv32": "qemu-system-misc",
}
LINE = re.compile(r"step (\d+) (\d+) out((?: -?\d+)+) cycles (\d+|n/a)")


class FirmwareError(ExportError):
    """Bad input for `rnn2c firmware` (exit 2): one line, what is wrong and what would be right."""


class ToolMissing(FirmwareError):
    """A tool the project needs is not installed; names the Debian package."""


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    cpu_flags: tuple[str, ...]
    fpu: bool
    vtor: bool
    flash: dict[str, str]
    ram: dict[str, str]
    cycle_counter: str  # "dwt" or "none"
    qemu_machine: str | None
    debugger_check: bool
    pyocd_target: str | None
    openocd_args: str | None
    arch: str = "arm"  # or "riscv": its own startup, linker script and tools
    #: RISC-V boards whose flash the CPU reads data from at another address (the ESP32-C3's
    #: DROM bus: .rodata linked there, at the same offset into flash as it is stored)
    flash_data: dict[str, str] | None = None
    esptool_chip: str | None = None  # make flash through esptool (an Espressif chip)

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None

    @property
    def cc(self) -> str:
        return "riscv64-unknown-elf-gcc" if self.arch == "riscv" else "arm-none-eabi-gcc"

    @property
    def qemu(self) -> str:
        return "qemu-system-riscv32" if self.arch == "riscv" else "qemu-system-arm"

    def template(self, name: str) -> str:
        """A board template by its Arm name (startup.c.j2, link.ld.j2): a RISC-V board's own."""
        if self.arch == "riscv" and name in ("startup.c.j2", "link.ld.j2"):
            stem, ext = name.split(".", 1)
            return f"{stem}_riscv.{ext}"
        return name

    def qemu_args(self) -> list[str]:
        if self.qemu_machine is None:
            return []
        return [
            "-M",
            self.qemu_machine,
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
        ]

    def region(self, which: str) -> tuple[int, int]:
        """(start, end) of "flash" or "ram" in bytes."""
        r = self.flash if which == "flash" else self.ram
        length = r["length"]
        scale = {"K": 1024, "M": 1024 * 1024}.get(length[-1], 1)
        return int(r["origin"], 0), int(r["origin"], 0) + int(length.rstrip("KM")) * scale


def _templates() -> Any:
    return importlib.resources.files("rnn2c.firmware_templates") / "boards"


def boards() -> dict[str, Board]:
    """Every board, by name, from firmware_templates/boards/*.json."""
    out = {}
    for entry in sorted(_templates().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            d = json.loads(entry.read_text())
            d["cpu_flags"] = tuple(d["cpu_flags"])
            out[entry.name[: -len(".json")]] = Board(name=entry.name[: -len(".json")], **d)
    return out


def get_board(name: str) -> Board:
    known = boards()
    if name not in known:
        raise FirmwareError(f"--board {name!r} is not a known board; use one of {', '.join(known)}")
    return known[name]


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(
            f"{tool} not found; install it (Debian/Ubuntu: sudo apt-get install {PACKAGES[tool]})"
        )
    return path


@dataclass
class Replay:
    """The int8 sequences main.c replays."""

    xq: np.ndarray  # int8 [N, T, F]
    lengths: np.ndarray  # [N], 1..T
    source: str
    ids: np.ndarray | None = None  # a token model: the ids [N, T] (xq: their table rows)
    note: str = ""  # how the lengths were found (a Masking model's padded data), for the user
    #: --data wav:DIR: the recordings' samples [N, T * hop] (int16, T hops each, zero after a
    #: recording's own hops), which main.c pushes a hop at a time through <name>_push_audio;
    #: xq holds the features the front end's reference computes from them
    pcm: np.ndarray | None = None


def replay_inputs(
    qmodel: Any,
    data: str | os.PathLike[str] | None,
    sequences: int = DEFAULT_SEQUENCES,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
) -> Replay:
    """The inputs the project replays, chosen by the model's kind: the first `sequences`
    sequences of --data quantized with the model's input quantization, or deterministic
    pseudo-random ones of `steps` steps."""
    check_sequences(sequences)
    return runner_of(qmodel).replay(qmodel, data, sequences, steps, seed)


def sequence_replay(
    qmodel: QuantModel,
    data: str | os.PathLike[str] | None,
    sequences: int = DEFAULT_SEQUENCES,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
) -> Replay:
    """A sequence model's replayed inputs: int8 rows (a token model: ids and their rows) for
    <name>_step or <name>_run."""
    if data is None:
        steps = min(steps, qmodel.max_length or steps)
        rng = np.random.default_rng(seed)
        if qmodel.vocab is not None:  # pseudo-random ids (id 0 is padding with mask_zero)
            low = 1 if qmodel.embedding.mask_zero and qmodel.vocab > 1 else 0
            ids = rng.integers(low, qmodel.vocab, size=(sequences, steps)).astype(np.int64)
            xq = qmodel.quantize_input(ids).astype(np.int8)
            source = f"{sequences} pseudo-random id sequences"
            return Replay(xq, np.full(sequences, steps), source, ids)
        xq = rng.integers(-128, 128, size=(sequences, steps, qmodel.input_size)).astype(np.int8)
        return Replay(xq, np.full(sequences, steps), f"{sequences} pseudo-random sequences")
    seqs, pcm = _audio_sequences(qmodel, data, sequences)
    if seqs is None:
        seqs = load_sequences(
            data, "--data", qmodel.input_size, qmodel.embedding, data_inputs(qmodel)
        )
    seqs, note = mask_lengths(seqs, qmodel.mask_value, "--data")
    n = min(sequences, seqs.x.shape[0])
    lengths = np.full(n, seqs.x.shape[1]) if seqs.lengths is None else np.asarray(seqs.lengths[:n])
    t = int(lengths.max())
    if qmodel.max_length is not None and t > qmodel.max_length:
        raise FirmwareError(
            f"--data: a replayed sequence has {t} steps; the model was exported with "
            f"--max-length {qmodel.max_length} (export again with a larger one)"
        )
    xq = qmodel.quantize_input(seqs.x[:n, :t])
    ids = seqs.x[:n, :t] if qmodel.vocab is not None else None
    source = f"the first {n} of {data}"
    if pcm is not None:
        source += ", their samples pushed a hop at a time through push_audio"
        hop = int(qmodel.frontend["hop"])
        pcm = pcm[:n, : t * hop].copy()
        for i, steps in enumerate(lengths):  # a last part hop makes no step: not replayed
            pcm[i, int(steps) * hop :] = 0
    return Replay(xq.astype(np.int8), lengths.astype(np.int64), source, ids, note, pcm)


def _audio_sequences(
    qmodel: QuantModel, data: Any, sequences: int
) -> tuple[Sequences | None, np.ndarray | None]:
    """--data wav:DIR (an export with --frontend): the recordings' features by the front end's
    integer reference (what the board's <name>_push_audio must step the model on) and the first
    ``sequences`` recordings' samples [N, S] (int16, zero-padded), which main.c pushes; (None,
    None) for other data."""
    if not (isinstance(data, str) and data.strip().lower().startswith("wav:")):
        return None, None
    if qmodel.frontend is None:
        raise FirmwareError(
            f"--data {data}: this export has no audio front end; export with --frontend "
            "FRONTEND.json to replay audio, or pass the run's test.npz"
        )
    try:
        x, _, lengths, _ = wav_sequences(data.strip(), qmodel.frontend, None)
        fe = LogMel.from_json(qmodel.frontend)
        recs = read_recordings(Path(data.strip().split(":", 1)[1]).expanduser())[:sequences]
        wavs = [read_wav(r.path, fe.sample_rate) for r in recs]
    except FrontEndError as exc:
        raise FirmwareError(str(exc)) from None
    pcm = np.zeros((len(wavs), max(len(w) for w in wavs)), dtype=np.int16)
    for i, w in enumerate(wavs):
        pcm[i, : len(w)] = w
    return Sequences(x, None, lengths), pcm


def check_sequences(sequences: int) -> None:
    """One-line FirmwareError for a --sequences outside 1..MAX_SEQUENCES."""
    if not 1 <= sequences <= MAX_SEQUENCES:
        raise FirmwareError(
            f"--sequences {sequences}: give at least 1 and at most {MAX_SEQUENCES} sequences "
            "to replay"
        )


@dataclass(frozen=True)
class Memory:
    """What a project needs of a board (estimates, bytes), and of what."""

    flash: int
    ram: int
    inputs: int  # the replayed inputs main.c holds (in flash)
    flash_parts: str
    ram_parts: str
    model_stack: int  # the model's estimated stack, within STACK_BYTES with main's

    def need(self, which: str) -> int:
        return self.flash if which == "flash" else self.ram

    def parts(self, which: str) -> str:
        return self.flash_parts if which == "flash" else self.ram_parts


def project_memory(
    b: Board, name: str, model_files: dict[str, bytes], qmodel: Any, replay: Replay
) -> Memory:
    """The flash and RAM a project needs on board b: the model (export/footprint.py's
    estimate for the board's CPU), the replayed inputs main.c holds, main.c's buffers, the
    firmware's own code and the stack the link reserves."""
    est = estimate(qmodel, scratch_bytes(model_files.get(f"{name}.h", b""), name), b.cpu)
    n = replay.xq.shape[0]
    held = replay.xq if replay.pcm is None else replay.pcm
    inputs = (4 * replay.ids.size if replay.ids is not None else held.nbytes) + 4 * n
    buffers = runner_of(qmodel).main_buffers(qmodel, replay) + 16
    return Memory(
        flash=est.flash + inputs + FIRMWARE_CODE,
        ram=est.state + buffers + STACK_BYTES,
        inputs=inputs,
        flash_parts=f"model ~{size_text(est.flash)}, replayed inputs {size_text(inputs)}, "
        f"main.c and startup ~{size_text(FIRMWARE_CODE)}",
        ram_parts=f"model state {size_text(est.state)}, main.c buffers {size_text(buffers)}, "
        f"stack {size_text(STACK_BYTES)}",
        model_stack=est.stack,
    )


def _room(b: Board, which: str) -> int:
    start, end = b.region(which)
    return end - start


def check_fits(
    b: Board, name: str, model_files: dict[str, bytes], qmodel: Any, replay: Replay
) -> list[str]:
    """Refuse (FirmwareError, one line) a project that cannot fit the board's flash or RAM,
    naming by how much and the boards it would fit; else the warnings of a close fit."""
    need = project_memory(b, name, model_files, qmodel, replay)
    warnings = []
    for which, label in (("flash", "flash"), ("ram", "RAM")):
        have, want = _room(b, which), need.need(which)
        if want > have:
            fits = [
                o.name
                for o in boards().values()
                if o.name != b.name
                and all(
                    project_memory(o, name, model_files, qmodel, replay).need(w) <= _room(o, w)
                    for w in ("flash", "ram")
                )
            ]
            if which == "ram":
                fix = "shrink the model's state (fewer units, a smaller --max-length)"
            elif need.inputs >= want - have:
                fix = "replay fewer --sequences or shorter --data sequences"
            else:
                fix = "shrink the model (fewer units, a smaller Embedding)"
            raise FirmwareError(
                f"--board {b.name}: the project needs about {size_text(want)} of {label} "
                f"({need.parts(which)}) but the board has {size_text(have)}: about "
                f"{size_text(want - have)} too much; "
                + (f"it would fit on {', '.join(fits)}, or " if fits else "no board rnn2c knows ")
                + (f"{fix}" if fits else f"has room for it: {fix}")
                + " (an estimate; rnn2c size measures the model)"
            )
        if want > CLOSE * have:
            warnings.append(
                f"the project fills about {100 * want // have}% of {b.name}'s {label} "
                f"({size_text(want)} of {size_text(have)}, an estimate: {need.parts(which)}); "
                "it may not link"
            )
    if need.model_stack + MAIN_STACK > STACK_BYTES:
        warnings.append(
            f"the model's stack (~{size_text(need.model_stack)}) with main's may exceed the "
            f"{size_text(STACK_BYTES)} the project reserves; raise __stack_reserve in link.ld"
        )
    return warnings


def _check_name(name: str) -> None:
    problem = check_name(name)
    if problem:
        raise FirmwareError(problem)
    if name in RESERVED_NAMES:
        raise FirmwareError(
            f"--name {name!r} would clash with the project's {name}.c; choose another name"
        )


PROJECT_FILES = ("main.c", "startup.c", "link.ld", "Makefile", "replay.npz")


def read_export(export_dir: Path) -> tuple[str, dict[str, bytes], Any]:
    """An export folder -> (name, its files, the quantized model: a QuantModel, a
    QuantSeq2Seq, ...); refuses an export whose files were edited after it was written."""
    if not (export_dir / MANIFEST).is_file():
        raise FirmwareError(
            f"{str(export_dir)!r} is not an rnn2c export folder (no {MANIFEST}); "
            "give a .keras or .onnx model with --calib, or a folder written by rnn2c export"
        )
    exp = read_export_dir(export_dir)  # refuses files changed since the export
    assert exp.manifest is not None
    files = {f: (export_dir / f).read_bytes() for f in exp.manifest["files"]}
    files[MANIFEST] = (export_dir / MANIFEST).read_bytes()
    return exp.name, files, exp.qmodel


def board_files(names: Iterable[str], board: Board) -> list[str]:
    """The export's files a project for this board carries in model/: all but the runtime
    headers of other targets (its core's alone, rnn2c.export.isa.runtime_files_for)."""
    other = set(RUNTIME_FILES) - set(runtime_files_for(board.cpu))
    return [f for f in names if f not in other]


def board_export(model_files: dict[str, bytes], board: Board, model_dir: Path) -> dict[str, bytes]:
    """The export's files (its manifest among them) as the project carries them in model_dir:
    board_files, and the manifest listing what model/ holds after the write, so that it stays
    an export folder of its own: those files, and another target's header that an export
    already wrote there with these very bytes (`rnn2c export --out <project>/model`), which stays
    as it is (rnn2c.outdir never overwrites or deletes a file the project does not own)."""
    keep = board_files(model_files, board)
    listed = [f for f in model_files if f in keep or _holds(model_dir, f, model_files[f])]
    out = {f: model_files[f] for f in keep}
    if MANIFEST in out:
        manifest = json.loads(out[MANIFEST])
        manifest["files"] = [f for f in manifest["files"] if f in listed]
        manifest["sha256"] = {f: h for f, h in manifest.get("sha256", {}).items() if f in listed}
        out[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return out


def _holds(folder: Path, name: str, data: bytes) -> bool:
    """Whether folder/name is a plain file (no symbolic link on the way) holding data."""
    path = folder / name
    try:
        if folder.is_symlink() or path.is_symlink() or not path.is_file():
            return False
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def render_project(
    name: str, model_files: dict[str, bytes], board: Board, replay: Replay, kind: ModelKind
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """({relative path: bytes} of the whole project, its manifest), in memory; main.c is the
    model kind's (its runner's main_template)."""
    n, t, _ = replay.xq.shape
    ctx = {
        "version": __version__,
        "name": name,
        "NAME": name.upper(),
        "board": board,
        "qemu_args": board.qemu_args(),
        "stack_bytes": STACK_BYTES,
        "sequences": n,
        "max_steps": t,
        "inputs": replay.xq,
        "tokens": replay.ids,
        "pcm": replay.pcm,
        "lengths": replay.lengths,
        "source": replay.source,
        "offsets": step_offsets(model_files.get(f"{name}.h", b"").decode(errors="replace"), name),
    }
    env = template_environment()
    files = {f"{MODEL_DIR}/{k}": v for k, v in model_files.items()}
    for template, target in (
        (runner_for(kind).main_template, "main.c"),
        ("startup.c.j2", "startup.c"),
        ("link.ld.j2", "link.ld"),
        ("Makefile.j2", "Makefile"),
    ):
        files[target] = env.get_template(f"boards/{board.template(template)}").render(ctx).encode()
    ids = {} if replay.ids is None else {"tokens": replay.ids}
    pcm = {} if replay.pcm is None else {"pcm": replay.pcm}
    files["replay.npz"] = _npz(x=replay.xq, lengths=replay.lengths, **ids, **pcm)
    manifest = {
        "rnn2c_version": __version__,
        "board": board.name,
        "name": name,
        **kind.tag(),
        "sequences": int(n),
        "lengths": [int(v) for v in replay.lengths],
        "inputs": replay.source,
    }
    return files, manifest


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@dataclass
class Project:
    out: Path
    name: str
    board: Board
    replay: Replay
    files: list[str]
    qmodel: Any = None  # the kind's quantized model: a QuantModel, a QuantSeq2Seq
    warnings: list[str] = field(default_factory=list)  # a close fit of the board's memory

    @property
    def kind(self) -> ModelKind:
        return kinds.of(self.qmodel)


@python_api()
def make_project(
    model: Any,
    board: str,
    out: str | os.PathLike[str],
    calib: Any = None,
    data: str | os.PathLike[str] | None = None,
    name: str | None = None,
    sequences: int = DEFAULT_SEQUENCES,
    run: bool = False,
    export_options: dict[str, Any] | None = None,
) -> Project:
    """Render and write a board project. model: a .keras or .onnx path or keras.Model (with
    calib), or an export folder (without). export_options: calibration / activations /
    input_quant for export_model (a model file only). Everything is checked before anything is
    written."""
    b = get_board(board)
    check_sequences(sequences)
    out_path = Path(out)
    if run:
        if not b.emulated:
            emulated = ", ".join(k for k, v in boards().items() if v.emulated)
            raise FirmwareError(
                f"--run needs an emulated board and {b.name} is real hardware; drop --run and "
                f"use make flash, or pick one of {emulated}"
            )
        for tool in ("make", b.cc, b.qemu):
            require_tool(tool)
    inputs = [p for p in (model, calib, data) if isinstance(p, str | os.PathLike)]
    try:
        nested = [f"{MODEL_DIR}/{MANIFEST}"]  # `rnn2c export --out <project>/model` is rnn2c's
        with OwnedFolder(out_path, PROJECT_MANIFEST, "--out", inputs, nested) as folder:
            return _make_project(
                folder, model, b, calib, data, name, sequences, export_options or {}
            )
    except OutputError as e:
        raise FirmwareError(str(e)) from None


def _make_project(
    folder: OwnedFolder,
    model: Any,
    b: Board,
    calib: Any,
    data: str | os.PathLike[str] | None,
    name: str | None,
    sequences: int,
    export_options: dict[str, Any],
) -> Project:
    is_export_dir = isinstance(model, str | os.PathLike) and Path(model).is_dir()
    if is_export_dir:
        if calib is not None:
            raise FirmwareError(
                "--calib is for a .keras or .onnx model; an export folder is already quantized "
                "(drop it)"
            )
        if export_options:
            flags = ", ".join("--" + k.replace("_", "-") for k in export_options)
            verb = "applies" if len(export_options) == 1 else "apply"
            raise FirmwareError(
                f"{flags} {verb} to a .keras or .onnx model; an export folder is already quantized "
                "(drop it, or export again with it)"
            )
        export_name, model_files, qmodel = read_export(Path(model))
        if name is not None and name != export_name:
            raise FirmwareError(
                f"--name {name!r} differs from the export's name {export_name!r}; drop --name"
            )
        name = export_name
        _check_name(name)
        model_files = board_export(model_files, b, folder.path / MODEL_DIR)
        folder.check_replaceable([*PROJECT_FILES, *(f"{MODEL_DIR}/{f}" for f in model_files)])
    else:
        if calib is None:
            raise FirmwareError(
                "a .keras or .onnx model needs --calib CALIB.npz (or give an export folder instead)"
            )
        name = name or "model"
        _check_name(name)
        model_names = board_files([*output_files(name), MANIFEST], b)
        folder.check_replaceable([*PROJECT_FILES, *(f"{MODEL_DIR}/{f}" for f in model_names)])
        with tempfile.TemporaryDirectory(prefix="rnn2c-firmware-") as tmp:
            res = export_model(model, calib, Path(tmp) / "export", name=name, **export_options)
            exported = {f: (res.out_dir / f).read_bytes() for f in res.files}
            model_files = board_export(exported, b, folder.path / MODEL_DIR)
            qmodel = res.qmodel
    replay = replay_inputs(qmodel, data, sequences)
    warnings = check_fits(b, name, model_files, qmodel, replay)  # before anything is written
    files, manifest = render_project(name, model_files, b, replay, kinds.of(qmodel))
    folder.write(files, manifest)
    files_list = sorted([*files, PROJECT_MANIFEST])
    return Project(folder.path, name, b, replay, files_list, qmodel, warnings)


@dataclass
class BoardRun:
    """What the board printed, parsed."""

    text: str
    outputs: np.ndarray  # int8 [N, T, out]; steps not printed are 0
    printed: np.ndarray  # bool [N, T]: which steps were printed
    cycles: np.ndarray | None  # [N, T] cycles per step, None when the board has no counter
    summary: str  # the cycles/step line
    seconds: float = 0.0


@dataclass
class RunResult:
    project: Project
    board_run: BoardRun
    expected: np.ndarray
    first_mismatch: tuple[int, int] | None

    @property
    def passed(self) -> bool:
        return self.first_mismatch is None


def build(out: Path, timeout: float = 120.0, cc: str = "arm-none-eabi-gcc") -> Path:
    """make in the project folder -> build/firmware.elf (cc: the board's compiler, Board.cc)."""
    require_tool("make")
    require_tool(cc)
    try:
        proc = subprocess.run(
            ["make", "-C", str(out)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"make in {out} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise BuildError(f"make in {out} failed: " + " | ".join(lines[:6]))
    return out / "build" / "firmware.elf"


def run_qemu(board: Board, elf: Path, timeout: float = DEFAULT_TIMEOUT) -> tuple[str, float]:
    """Run the ELF under the board's QEMU (qemu-system-arm or -riscv32); (what it printed,
    seconds)."""
    qemu = require_tool(board.qemu)
    cmd = [qemu, *board.qemu_args(), "-kernel", str(elf)]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"{board.name} under QEMU did not finish within {timeout:.0f} s "
            f"(command: {' '.join(cmd)})"
        ) from None
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-4:])
        raise BuildError(f"{board.name} under QEMU exited with {proc.returncode}: {tail}")
    return proc.stdout, seconds


def parse_output(text: str, n: int, t: int, output_size: int) -> BoardRun:
    outputs = np.zeros((n, t, output_size), dtype=np.int8)
    printed = np.zeros((n, t), dtype=bool)
    cycles = np.zeros((n, t), dtype=np.int64)
    has_cycles = False
    summary = ""
    done = False
    for line in text.splitlines():
        m = LINE.fullmatch(line.strip())
        if m:
            s, k = int(m.group(1)), int(m.group(2))
            values = [int(v) for v in m.group(3).split()]
            if s >= n or k >= t or len(values) != output_size:
                raise BuildError(f"the board printed an unexpected line: {line.strip()!r}")
            outputs[s, k] = values
            printed[s, k] = True
            if m.group(4) != "n/a":
                has_cycles = True
                cycles[s, k] = int(m.group(4))
        elif line.startswith("cycles/step:"):
            summary = line.strip()
        elif line.strip() == "done":
            done = True
    if not done:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise BuildError(f"the board did not print 'done'; its last lines: {tail!r}")
    return BoardRun(text, outputs, printed, cycles if has_cycles else None, summary)


def expected_outputs(project: Project) -> np.ndarray:
    """The host emulator's int8 outputs [N, T, out] for the replayed sequences."""
    compiled = load_model(project.out / MODEL_DIR, project.name)
    return compiled.run(project.replay.xq, project.replay.lengths)


def first_mismatch(
    got: np.ndarray,
    printed: np.ndarray,
    expected: np.ndarray,
    lengths: np.ndarray,
    last_only: bool = False,
) -> tuple[int, int] | None:
    """(sequence, step) of the first step, in run order, that differs or was not printed;
    last_only: only each sequence's last step (a whole-sequence model without
    return_sequences gives one output per sequence)."""
    for s, length in enumerate(lengths):
        for k in range(int(length) - 1 if last_only else 0, int(length)):
            if not printed[s, k] or not np.array_equal(got[s, k], expected[s, k]):
                return s, k
    return None


def run_project(project: Project, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Build, run under QEMU, parse, and compare with the references bit for bit, as the model's
    kind does: a RunResult (the host emulator's outputs), or for a seq2seq export a
    seq2seq_boards.Seq2SeqRunResult (its tokens against the integer reference's)."""
    elf = build(project.out, cc=project.board.cc)
    text, seconds = run_qemu(project.board, elf, timeout)
    return runner_for(project.kind).compare_run(project, text, seconds)


def compare_outputs(project: Project, text: str, seconds: float) -> RunResult:
    """A sequence model's run: the printed outputs against the host emulator's, step by step
    (a whole-sequence model without return_sequences: each sequence's last)."""
    n = project.replay.xq.shape[0]
    expected = expected_outputs(project)  # [N, rows, out]: rows >= steps (a RepeatVector's n)
    board_run = parse_output(text, n, expected.shape[1], expected.shape[2])
    board_run.seconds = seconds
    compiled = load_model(project.out / MODEL_DIR, project.name)
    last_only = not compiled.streaming and not compiled.returns_sequences
    lengths = project.replay.lengths
    if not last_only:  # the rows the board prints: a row per step, or run's rows where more
        lengths = np.array([compiled.rows(int(length)) for length in lengths])
    mismatch = first_mismatch(board_run.outputs, board_run.printed, expected, lengths, last_only)
    return RunResult(project, board_run, expected, mismatch)


def main_buffers(qmodel: QuantModel, replay: Replay) -> int:
    """Bytes of main.c's buffers for a sequence model: its output rows, the line it prints."""
    out = int(qmodel.output_size)
    rows = replay.xq.shape[1] if qmodel.whole_sequence and qmodel.returns_sequences else 1
    return rows * out + 160 + 5 * out


def print_run(result: RunResult) -> int:
    """The --run lines of `rnn2c firmware` for a sequence model; the exit code."""
    project, run = result.project, result.board_run
    steps = int(project.replay.lengths.sum())
    print(f"  ran on QEMU {project.board.qemu_machine} in {run.seconds:.2f} s, {steps} steps")
    print(f"  {result.board_run.summary}")
    if result.first_mismatch is not None:
        s, k = result.first_mismatch
        got = result.board_run.outputs[s, k].tolist() if result.board_run.printed[s, k] else None
        print(
            f"rnn2c firmware: board output differs from the host emulator first at sequence {s}, "
            f"step {k}: board {got}, host {result.expected[s, k].tolist()}",
            file=sys.stderr,
        )
        print("FAIL")
        return 1
    print("  board == host emulator: bit-exact at every step")
    print("PASS")
    return 0


def command(args: Any) -> int:
    """`rnn2c firmware` (argparse namespace from rnn2c.cli) -> exit code; bad input raises
    FirmwareError (ExportError), a failed build or QEMU run BuildError, which the CLI reports."""
    if not 1 <= args.timeout <= MAX_TIMEOUT:  # also refuses nan
        raise FirmwareError(
            f"--timeout {args.timeout:g}: expected seconds from 1 to {MAX_TIMEOUT:g}"
        )
    check_sequences(args.sequences)
    project = make_project(
        args.model,
        args.board,
        args.out,
        calib=args.calib,
        data=args.data,
        name=args.name,
        sequences=args.sequences,
        run=args.run,
        export_options={
            k: getattr(args, k)
            for k in (
                "calibration",
                "activations",
                "input_quant",
                "max_length",
                "start_token",
                "end_token",
                "max_output_length",
                "input_range",
                "output_range",
                "weights",
                "keep_int8",
            )
            if getattr(args, k, None) is not None
        },
    )
    b = project.board
    n, t, _ = project.replay.xq.shape
    print(f"rnn2c firmware: {args.model} -> {project.out}/ (board {b.name}: {b.description})")
    print(f"  model {project.name}, replaying {project.replay.source} ({n} x up to {t} steps)")
    if project.replay.note:
        print(f"  note: {project.replay.note}")
    print(f"  files: {', '.join(project.files)}")
    for warning in project.warnings:
        print(f"rnn2c firmware: warning: {warning}", file=sys.stderr)
    how = "make run" if b.emulated else "make flash; make monitor"
    print(f"  next: cd {project.out} && make && {how}")
    if not args.run:
        return 0
    result = run_project(project, timeout=args.timeout)
    return runner_for(project.kind).print_run(result)
