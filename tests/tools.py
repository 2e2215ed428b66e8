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


def require_arm_toolchain() -> None:
    require("arm-none-eabi-gcc", "Debian package gcc-arm-none-eabi")


def require_unicorn() -> None:
    require("py:unicorn", "pip install unicorn==2.1.4, the extra 'boards'")
