"""Optional tools (cross compiler, cmake, unicorn): skip when missing, but fail under CI=true."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def require(tool: str, hint: str) -> None:
    """Skip the calling test if `tool` (a program, or 'py:module') is missing; fail under CI."""
    if tool.startswith("py:"):
        present = importlib.util.find_spec(tool[3:]) is not None
    else:
        present = shutil.which(tool) is not None
    if present:
        return
    message = f"{tool} is not installed ({hint})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


#: program -> the Debian package that provides it (what .ci/run installs)
DEBIAN = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "make": "make",
    "cmake": "cmake",
}


def need(*tools: str) -> None:
    """require() for several programs, each with its Debian package as the hint."""
    for tool in tools:
        require(tool, f"Debian package {DEBIAN.get(tool, tool)}")


def require_arm_toolchain() -> None:
    require("arm-none-eabi-gcc", "Debian package gcc-arm-none-eabi")


def require_unicorn() -> None:
    require("py:unicorn", "pip install unicorn==2.1.4, the extra 'boards'")


def cpu_has(*features: str) -> bool:
    """Whether this machine's CPU has every one of these feature flags (the names of
    /proc/cpuinfo's flags line: avx2, avx512f, avx512_vnni, ...): the guard of a test that
    builds a path everywhere and runs it only where the CPU can. False where the flags cannot
    be read (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(
                (line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []
            )
    except OSError:
        return False
    return all(feature in flags for feature in features)
