"""Optional tools (cross compiler, cmake, unicorn): skip when missing, but fail under CI=true.

Every skip in the suite goes through this module:

* require() / need(): a program or Python module that is not installed. Skips locally; under
  CI=true it fails (.ci/run installs everything the suite uses).
* require_capability(): something this environment does not allow (e.g. chattr +i, which needs
  root and a file system with the immutable flag). Skips locally; fails under CI=true.
* lacks_hardware(): the one skip allowed under CI=true, because no install can fix it: the
  machine's CPU lacks an instruction set (AVX-512 on an AVX2 machine; x86 kernels on an ARM
  host). It names what was not run. The honest behaviour for the AVX-512 kernel paths
  (tests/test_generated_c.py) on a CPU without AVX-512: compile them anyway (so a build error
  still fails), run every path the CPU has, and skip only the AVX-512 runs, saying so. They
  cannot be emulated here: QEMU's TCG has no AVX-512, and Intel SDE is not installed (nor
  installable from Debian/PyPI). Under CI on such a CPU the AVX-512 runs stay unrun; the skip
  reason says so in the report, and a machine with AVX-512 runs them.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
from typing import Any, NoReturn

import pytest


def _ci() -> bool:
    return os.environ.get("CI") == "true"


def require(tool: str, hint: str) -> None:
    """Skip the calling test if `tool` (a program, or 'py:module') is missing; fail under CI."""
    if tool.startswith("py:"):
        try:
            present = importlib.util.find_spec(tool[3:]) is not None
        except ModuleNotFoundError:  # a dotted name whose parent package is missing
            present = False
    else:
        present = shutil.which(tool) is not None
    if present:
        return
    message = f"{tool} is not installed ({hint})"
    if _ci():
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


def require_capability(ok: bool, message: str) -> None:
    """Skip the calling test if this environment lacks a capability it needs (``ok`` False;
    ``message`` says which and why); fail under CI=true."""
    if ok:
        return
    if _ci():
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


#: program -> the Debian package that provides it (what .ci/run installs)
DEBIAN = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "make": "make",
    "cmake": "cmake",
    "nm": "binutils",
    "chattr": "e2fsprogs",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf",
    "qemu-system-riscv32": "qemu-system-misc",
}


def need(*tools: str) -> None:
    """require() for several programs, each with its Debian package as the hint."""
    for tool in tools:
        require(tool, f"Debian package {DEBIAN.get(tool, tool)}")


def require_arm_toolchain() -> None:
    require("arm-none-eabi-gcc", "Debian package gcc-arm-none-eabi")


def require_riscv_toolchain() -> None:
    """riscv64-unknown-elf-gcc and picolibc (its headers and rv32 libraries)."""
    require("riscv64-unknown-elf-gcc", "Debian package gcc-riscv64-unknown-elf")
    specs = "/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs"
    if not os.path.isfile(specs):
        message = f"{specs} is not installed (Debian package picolibc-riscv64-unknown-elf)"
        if _ci():
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)


def require_unicorn() -> None:
    require("py:unicorn", "pip install unicorn==2.1.4, the extra 'boards'")


def require_aeon() -> None:
    require("py:aeon", "pip install aeon==1.6.0, the extra 'train'")


# ---------------------------------------------------------------- hardware


def lacks_hardware(feature: str, not_run: str) -> NoReturn:
    """Skip, under CI=true too, because this machine's CPU lacks ``feature``; ``not_run`` says
    what the test did not run (everything else it has run and asserted before calling this)."""
    pytest.skip(f"hardware: this CPU has no {feature}; not run: {not_run}")


def is_x86() -> bool:
    return platform.machine() in ("x86_64", "AMD64")


def require_x86(not_run: str) -> None:
    """The x86 kernel paths need an x86-64 CPU (a property of the hardware)."""
    if not is_x86():
        lacks_hardware(f"x86-64 instruction set ({platform.machine()})", not_run)


#: what the AVX-512 kernel paths execute
AVX512_FLAGS = ("avx512f", "avx512bw", "avx512vl")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (the first processor of /proc/cpuinfo); empty if unreadable."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_avx512() -> bool:
    return set(AVX512_FLAGS) <= cpu_flags()


def cpu_has(*features: str) -> bool:
    """Whether this machine's CPU has every one of these feature flags (the names of
    /proc/cpuinfo's flags line: avx2, avx512f, avx512_vnni, ...): the guard of a test that
    builds a path everywhere and runs it only where the CPU can. False where the flags cannot
    be read (not Linux)."""
    return set(features) <= cpu_flags()


def run_printed_lines(*lines: str) -> None:
    """Run `rnn2c ...` command lines as a user types them (EXPORT.txt's export and verify lines)
    in this process; each must exit 0 (verify: PASS, bit-exact and within its thresholds)."""
    import shlex  # noqa: PLC0415

    from rnn2c.cli import build_parser  # noqa: PLC0415

    parser = build_parser()
    for line in lines:
        args = parser.parse_args(shlex.split(line)[1:])
        assert args.func(args) == 0, line


def drift_split(
    rng: Any,
    m: int,
    t: int,
    f: int = 3,
    shortest: int = 5,
    offset: float = 5.0,
    slope: float = 1.0,
    zero_steps: bool = False,
) -> tuple[Any, Any, Any]:
    """m sequences of two classes told apart by the sign of a drift (class 1 up, class 0 down,
    alternating), shortest..t real steps of f features around ``offset``: (x [m, t, f] float32
    zero-padded, y int64, lengths int64). With zero_steps, the second and the last real step
    are all 0.0, as an idle sensor gives (real steps, not padding)."""
    import numpy as np  # noqa: PLC0415

    y = np.arange(m) % 2
    lengths = rng.integers(shortest, t + 1, size=m)
    x = np.zeros((m, t, f), dtype=np.float32)
    for i in range(m):
        drift = np.arange(lengths[i])[:, None] * (slope if y[i] else -slope)
        x[i, : lengths[i]] = offset + drift + rng.normal(scale=0.3, size=(lengths[i], f))
        if zero_steps:
            x[i, 1] = 0.0
            x[i, lengths[i] - 1] = 0.0
    return x, y.astype(np.int64), lengths.astype(np.int64)


def drift_npz(path: Any, seed: int = 0, **kw: Any) -> Any:
    """A drift_split dataset (32 training, 16 test sequences; ``kw`` as drift_split's) written
    as the .npz `rnn2c train --dataset` reads."""
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    (xtr, ytr, ltr), (xte, yte, lte) = drift_split(rng, 32, **kw), drift_split(rng, 16, **kw)
    np.savez(
        path,
        x_train=xtr,
        y_train=ytr,
        lengths_train=ltr,
        x_test=xte,
        y_test=yte,
        lengths_test=lte,
    )
    return path
