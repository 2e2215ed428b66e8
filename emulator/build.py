"""Compile a generated model with the host C compiler into a shared library, cached by hash.

The emulator knows the generated C API only (<name>_reset, <name>_step, the size macros); it
knows nothing about Keras.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.resources
import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from rnn2c.outdir import OutputError

STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror")
DEFAULT_FLAGS = (*STRICT_FLAGS, "-O2")


class BuildError(RuntimeError):
    """The C compiler failed; the message carries its first lines of output."""


def cache_dir() -> Path:
    """The compile cache: $RNN2C_CACHE_DIR, else $XDG_CACHE_HOME/rnn2c or ~/.cache/rnn2c."""
    root = os.environ.get("RNN2C_CACHE_DIR")
    what = "RNN2C_CACHE_DIR" if root else "the compile cache"
    d = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    d = d / "rnn2c" if not root else d
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"{what} {str(d)!r} cannot be used as a folder ({e.strerror or e}); point "
            "RNN2C_CACHE_DIR to a writable folder"
        ) from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {str(d)!r} is not writable; point RNN2C_CACHE_DIR elsewhere")
    return d


def find_compiler(preferred: str | None = None) -> list[str]:
    """The compiler command as a list: `preferred`, else $CC (which may carry flags, e.g.
    "ccache gcc" or "gcc -m64"), else cc, gcc or clang."""
    env_cc = os.environ.get("CC")
    for source, cc in (("--cc", preferred), ("CC", env_cc)):
        if cc:
            try:
                cmd = shlex.split(cc)
            except ValueError:
                cmd = []
            if not cmd or not shutil.which(cmd[0]):
                raise BuildError(f"{source}={cc!r}: compiler {cmd[0] if cmd else cc!r} not found")
            return cmd
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return [cc]
    raise BuildError("no C compiler found; install gcc or clang (Debian: apt install gcc)")


def _host_identity(cc_cmd: list[str], flags: tuple[str, ...]) -> tuple[str, ...]:
    """For builds tuned to the host CPU (-march=native, -mcpu=native), the CPU itself belongs in
    the cache key: a cache folder shared between machines must not hand one CPU's build to
    another."""
    if not any("native" in f for f in (*cc_cmd, *flags)):
        return ()
    return (platform.machine(), _cpu_flags())


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> str:
    """The host CPU's model and feature flags (first processor in /proc/cpuinfo)."""
    keep: list[str] = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first processor's block
                if line.startswith(("flags", "Features", "model name", "CPU part")):
                    keep.append(" ".join(line.split()))
    except OSError:
        pass
    return "\n".join(keep) or platform.processor()


@functools.lru_cache(maxsize=16)
def compiler_identity(cmd: tuple[str, ...]) -> str:
    """What the cache key holds for a compiler: the resolved executable (path, size, mtime)
    and its --version banner, so another compiler behind the same name is not mistaken."""
    exe = shutil.which(cmd[0]) or cmd[0]
    real = os.path.realpath(exe)
    try:
        st = os.stat(real)
        stamp = f"{real}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = real
    try:
        proc = subprocess.run(
            [*cmd, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        banner = proc.stdout + proc.stderr
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"compiler {' '.join(cmd)!r} cannot be run: {e}") from None
    return f"{' '.join(cmd)}\0{stamp}\0{banner}"


def step_offsets(header: str, name: str) -> list[int]:
    """Where each input of a multi-input model starts in a row of the model input, read from
    the generated header (<NAME>_INPUT_COUNT, then <NAME>_<IN>_OFFSET in input order); empty
    for a model with one input. What a harness passes to the step_call macro."""
    upper = re.escape(name.upper())
    count = re.search(rf"^#define {upper}_INPUT_COUNT (\d+)", header, re.M)
    if count is None:
        return []
    offsets = [int(v) for v in re.findall(rf"^#define {upper}_\w+_OFFSET (\d+)", header, re.M)]
    if len(offsets) != int(count.group(1)):
        raise BuildError(f"{name}.h names {count.group(1)} inputs but {len(offsets)} offsets")
    return offsets


def template_loader() -> jinja2.BaseLoader:
    """The emulator's templates, and the shared ones of rnn2c.firmware_templates (step_call)."""
    roots = [importlib.resources.files(p) for p in ("rnn2c.emulator", "rnn2c.firmware_templates")]
    return jinja2.FileSystemLoader([str(r) for r in roots])


def harness_source(
    name: str, template_name: str = "harness.c.j2", offsets: list[int] | None = None
) -> str:
    """A harness for <name>.c; offsets: its inputs' (step_offsets), for a multi-input model."""
    env = jinja2.Environment(loader=template_loader(), keep_trailing_newline=True)
    template = env.get_template(template_name)
    return template.render(name=name, NAME=name.upper(), offsets=offsets or [])


def compile_model(
    src_dir: str | Path,
    name: str,
    cc: str | None = None,
    flags: tuple[str, ...] = DEFAULT_FLAGS,
    harness_template: str = "harness.c.j2",
) -> Path:
    """Build <name>.c plus the harness into a shared library; returns its (cached) path."""
    src = Path(src_dir)
    cc_cmd = find_compiler(cc)
    sources = {p.name: p.read_bytes() for p in sorted(src.glob("*.[ch]"))}
    if f"{name}.c" not in sources:
        raise BuildError(
            f"{src}/{name}.c not found; is this an rnn2c export folder for --name {name}?"
        )
    header = sources.get(f"{name}.h", b"").decode(errors="replace")
    harness = harness_source(name, harness_template, step_offsets(header, name)).encode()
    h = hashlib.sha256()
    for key in (compiler_identity(tuple(cc_cmd)), *flags, *_host_identity(cc_cmd, flags)):
        h.update(key.encode() + b"\0")
    for fname, data in sorted(sources.items()):
        h.update(fname.encode() + b"\0" + data + b"\0")
    h.update(harness)
    lib = cache_dir() / h.hexdigest()[:24] / f"lib{name}.so"
    if lib.is_file():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rnn2c-build-") as work:
        w = Path(work)
        for fname, data in sources.items():
            (w / fname).write_bytes(data)
        (w / "rnn2c_harness.c").write_bytes(harness)
        out = w / lib.name
        cmd = [
            *cc_cmd,
            *flags,
            "-fPIC",
            "-shared",
            "-I",
            str(w),
            str(w / f"{name}.c"),
            str(w / "rnn2c_harness.c"),
            "-o",
            str(out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise BuildError(f"{cc_cmd[0]} failed on {src}/{name}.c: " + " | ".join(msg[:6]))
        tmp_lib = lib.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(out, tmp_lib)
        os.replace(tmp_lib, lib)
    return lib


@dataclass
class CompiledModel:
    """A generated model loaded through ctypes."""

    lib: ctypes.CDLL
    input_size: int
    output_size: int
    state_size: int
    declared_state_size: int
    streaming: bool = True  # False: a whole-sequence model (run only, no step)
    returns_sequences: bool = False  # run writes every step's output
    tokens: bool = False  # a token model: step_token / run_tokens over Embedding ids
    #: <NAME>_SAMPLES_PER_STEP where <name>_push_sample exists (a streaming model over feature
    #: samples), else 0
    samples_per_step: int = 0

    @classmethod
    def load(cls, path: str | Path) -> CompiledModel:
        lib = ctypes.CDLL(str(path))
        lib.rnn2c_harness_state_size.restype = ctypes.c_size_t
        lib.rnn2c_harness_run.restype = None
        lib.rnn2c_harness_run_api.restype = ctypes.c_int32
        lib.rnn2c_harness_tokens.restype = ctypes.c_int32
        lib.rnn2c_harness_rows.restype = ctypes.c_int32
        streaming = bool(lib.rnn2c_harness_streaming())
        if streaming:
            lib.rnn2c_harness_stream.restype = None
        return cls(
            lib=lib,
            input_size=lib.rnn2c_harness_input_size(),
            output_size=lib.rnn2c_harness_output_size(),
            state_size=lib.rnn2c_harness_state_size(),
            declared_state_size=lib.rnn2c_harness_declared_state_size(),
            streaming=streaming,
            returns_sequences=bool(lib.rnn2c_harness_return_sequences()),
            tokens=bool(lib.rnn2c_harness_tokens()),
            samples_per_step=int(lib.rnn2c_harness_samples_per_step()),
        )

    def run_tokens(self, ids: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """A token model: ids [N, T] through <name>_step_token (streaming) or <name>_run_tokens
        -> int8 outputs [N, rows(T), out] as run() gives them; ValueError on a nonzero return
        code."""
        x = np.ascontiguousarray(ids, dtype=np.int32)
        n, t = x.shape
        lens = np.full(n, t, dtype=np.int32) if lengths is None else np.asarray(lengths, np.int32)
        lens = np.ascontiguousarray(lens)
        y = np.zeros((n, self.rows(t), self.output_size), dtype=np.int8)
        rc = self.lib.rnn2c_harness_run_tokens(
            x.ctypes.data_as(ctypes.c_void_p),
            lens.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int32(n),
            ctypes.c_int32(t),
            y.ctypes.data_as(ctypes.c_void_p),
        )
        if rc != 0:
            raise ValueError(f"the token entry points returned {rc}")
        return y

    def run_tokens_api(
        self, ids: np.ndarray, length: int | None = None, out_rows: int = 1
    ) -> tuple:
        """<name>_run_tokens on one sequence of ids: its return code and the output buffer."""
        x = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
        y = np.zeros((max(out_rows, 1), self.output_size), dtype=np.int8)
        n = x.shape[0] if length is None else int(length)
        rc = self.lib.rnn2c_harness_run_tokens_api(
            x.ctypes.data_as(ctypes.c_void_p), ctypes.c_int32(n), y.ctypes.data_as(ctypes.c_void_p)
        )
        return int(rc), y

    def step_tokens(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A streaming token model: one stream of ids through <name>_step_token without reset
        -> (return code per call [S], the output buffer after each call [S, out])."""
        x = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
        y = np.zeros((x.size, self.output_size), dtype=np.int8)
        rc = np.zeros(x.size, dtype=np.int32)
        self.lib.rnn2c_harness_step_tokens(
            x.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int32(x.size),
            y.ctypes.data_as(ctypes.c_void_p),
            rc.ctypes.data_as(ctypes.c_void_p),
        )
        return rc, y

    def run_api(self, xq: np.ndarray, length: int | None = None, out_rows: int = 1) -> tuple:
        """<name>_run on one sequence int8 [T, F] with the given length (default T): its return
        code and the output buffer [out_rows, out] it wrote into (rows: the length for a
        model that returns sequences)."""
        x = np.ascontiguousarray(xq, dtype=np.int8).reshape(-1, self.input_size)
        y = np.zeros((max(out_rows, 1), self.output_size), dtype=np.int8)
        n = x.shape[0] if length is None else int(length)
        rc = self.lib.rnn2c_harness_run_api(
            x.ctypes.data_as(ctypes.c_void_p), ctypes.c_int32(n), y.ctypes.data_as(ctypes.c_void_p)
        )
        return int(rc), y

    def rows(self, t: int) -> int:
        """Output rows per sequence of run() for inputs of t steps: t, or a RepeatVector's n
        where that is more (the harness' rnn2c_harness_rows)."""
        return int(self.lib.rnn2c_harness_rows(ctypes.c_int32(t)))

    def run(self, xq: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """int8 [N, T, F] -> int8 outputs after every step [N, T, out] (0 past each length); a
        whole-sequence model: its output rows [N, rows(T), out] (0 past each sequence's)."""
        x = np.ascontiguousarray(xq, dtype=np.int8)
        n, t, f = x.shape
        if f != self.input_size:
            raise ValueError(f"input has {f} features; the model takes {self.input_size}")
        lens = np.full(n, t, dtype=np.int32) if lengths is None else np.asarray(lengths, np.int32)
        lens = np.ascontiguousarray(lens)
        y = np.zeros((n, self.rows(t), self.output_size), dtype=np.int8)
        self.lib.rnn2c_harness_run(
            x.ctypes.data_as(ctypes.c_void_p),
            lens.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int32(n),
            ctypes.c_int32(t),
            y.ctypes.data_as(ctypes.c_void_p),
        )
        return y

    def push(self, xq: np.ndarray, lengths: np.ndarray | None = None) -> tuple:
        """run() through <name>_push_sample, each step's row given one sample at a time: (the
        output buffer after each row [N, T, out], 0 past each length; what each call returned
        [N, T, SAMPLES_PER_STEP])."""
        k = self.samples_per_step
        if k < 1:
            raise ValueError("this model has no push_sample (whole-sequence or token input)")
        x = np.ascontiguousarray(xq, dtype=np.int8)
        n, t, f = x.shape
        if f != self.input_size:
            raise ValueError(f"input has {f} features; the model takes {self.input_size}")
        lens = np.full(n, t, dtype=np.int32) if lengths is None else np.asarray(lengths, np.int32)
        lens = np.ascontiguousarray(lens)
        y = np.zeros((n, t, self.output_size), dtype=np.int8)
        rc = np.zeros((n, t, k), dtype=np.int32)
        ptr = ctypes.c_void_p
        self.lib.rnn2c_harness_push(
            x.ctypes.data_as(ptr),
            lens.ctypes.data_as(ptr),
            ctypes.c_int32(n),
            ctypes.c_int32(t),
            y.ctypes.data_as(ptr),
            rc.ctypes.data_as(ptr),
        )
        return y, rc

    def stream(self, xq: np.ndarray) -> np.ndarray:
        """One continuous stream int8 [S, F] -> outputs [S, out], no reset in between."""
        if not self.streaming:
            raise ValueError("a whole-sequence model has no step: it cannot run as a stream")
        x = np.ascontiguousarray(xq, dtype=np.int8)
        s, f = x.shape
        if f != self.input_size:
            raise ValueError(f"input has {f} features; the model takes {self.input_size}")
        y = np.zeros((s, self.output_size), dtype=np.int8)
        self.lib.rnn2c_harness_stream(
            x.ctypes.data_as(ctypes.c_void_p), ctypes.c_int32(s), y.ctypes.data_as(ctypes.c_void_p)
        )
        return y


def load_model(
    src_dir: str | Path, name: str, cc: str | None = None, flags: tuple[str, ...] = DEFAULT_FLAGS
) -> CompiledModel:
    """Compile (or take from the cache) and load; a cached library that fails to load (a
    corrupt or truncated file) is removed and built again once. ``flags`` select the kernels,
    e.g. (*DEFAULT_FLAGS, "-mavx2") for the AVX2 path."""
    lib = compile_model(src_dir, name, cc, flags)
    try:
        return CompiledModel.load(lib)
    except (OSError, AttributeError):
        lib.unlink(missing_ok=True)
    lib = compile_model(src_dir, name, cc, flags)
    try:
        return CompiledModel.load(lib)
    except (OSError, AttributeError) as e:
        raise BuildError(f"the compiled library {str(lib)!r} cannot be loaded: {e}") from None
