"""Compile a generated model with the host C compiler into a shared library, cached by hash.

The emulator knows the generated C API only (<name>_reset, <name>_step, the size macros); it
knows nothing about Keras.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.resources
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror")
DEFAULT_FLAGS = (*STRICT_FLAGS, "-O2")


class BuildError(RuntimeError):
    """The C compiler failed; the message carries its first lines of output."""


def cache_dir() -> Path:
    root = os.environ.get("RNN2C_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rnn2c"


def find_compiler(preferred: str | None = None) -> str:
    for cc in [preferred, os.environ.get("CC"), "cc", "gcc", "clang"]:
        if cc and shutil.which(cc):
            return cc
    raise BuildError("no C compiler found; install gcc or clang, or set CC")


def harness_source(name: str) -> str:
    root = importlib.resources.files("rnn2c.emulator")
    template = jinja2.Template((root / "harness.c.j2").read_text(), keep_trailing_newline=True)
    return template.render(name=name, NAME=name.upper())


def compile_model(
    src_dir: str | Path, name: str, cc: str | None = None, flags: tuple[str, ...] = DEFAULT_FLAGS
) -> Path:
    """Build <name>.c plus the harness into a shared library; returns its (cached) path."""
    src = Path(src_dir)
    cc = find_compiler(cc)
    sources = {p.name: p.read_bytes() for p in sorted(src.glob("*.[ch]"))}
    if f"{name}.c" not in sources:
        raise BuildError(
            f"{src}/{name}.c not found; is this an rnn2c export folder for --name {name}?"
        )
    harness = harness_source(name).encode()
    h = hashlib.sha256()
    for key in (cc, *flags):
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
            cc,
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
            raise BuildError(f"{cc} failed on {src}/{name}.c: " + " | ".join(msg[:6]))
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

    @classmethod
    def load(cls, path: str | Path) -> CompiledModel:
        lib = ctypes.CDLL(str(path))
        lib.rnn2c_harness_state_size.restype = ctypes.c_size_t
        lib.rnn2c_harness_run.restype = None
        lib.rnn2c_harness_stream.restype = None
        return cls(
            lib=lib,
            input_size=lib.rnn2c_harness_input_size(),
            output_size=lib.rnn2c_harness_output_size(),
            state_size=lib.rnn2c_harness_state_size(),
            declared_state_size=lib.rnn2c_harness_declared_state_size(),
        )

    def run(self, xq: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """int8 [N, T, F] -> int8 outputs after every step [N, T, out] (0 past each length)."""
        x = np.ascontiguousarray(xq, dtype=np.int8)
        n, t, f = x.shape
        if f != self.input_size:
            raise ValueError(f"input has {f} features; the model takes {self.input_size}")
        lens = np.full(n, t, dtype=np.int32) if lengths is None else np.asarray(lengths, np.int32)
        lens = np.ascontiguousarray(lens)
        y = np.zeros((n, t, self.output_size), dtype=np.int8)
        self.lib.rnn2c_harness_run(
            x.ctypes.data_as(ctypes.c_void_p),
            lens.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int32(n),
            ctypes.c_int32(t),
            y.ctypes.data_as(ctypes.c_void_p),
        )
        return y

    def stream(self, xq: np.ndarray) -> np.ndarray:
        """One continuous stream int8 [S, F] -> outputs [S, out], no reset in between."""
        x = np.ascontiguousarray(xq, dtype=np.int8)
        s, f = x.shape
        if f != self.input_size:
            raise ValueError(f"input has {f} features; the model takes {self.input_size}")
        y = np.zeros((s, self.output_size), dtype=np.int8)
        self.lib.rnn2c_harness_stream(
            x.ctypes.data_as(ctypes.c_void_p), ctypes.c_int32(s), y.ctypes.data_as(ctypes.c_void_p)
        )
        return y


def load_model(src_dir: str | Path, name: str, cc: str | None = None) -> CompiledModel:
    return CompiledModel.load(compile_model(src_dir, name, cc))
