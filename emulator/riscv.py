"""The RISC-V side of `rnn2c size` (emulator/size.py): the rv32 targets, their compiler and
libraries, and what unicorn's RISCV32 model needs to call a function and count its
instructions.

The model's C is compiled with riscv64-unknown-elf-gcc (Debian's gcc-riscv64-unknown-elf) for
-march=rv32imc / rv32imac / rv32imafc and linked against picolibc (picolibc-riscv64-unknown-elf,
`--specs=picolibc.specs`; gcc picks the multilib: rv32imc reuses the rv32im libraries) with the
same linker script, harness and map parsing as the Cortex-M targets. Instructions are counted
per translation block as on Arm: a RISC-V instruction is 16 bits (the C extension) where its
two low bits are not 11, else 32 bits, so a block's count is exact. Arguments go in a0..a7
(the ilp32 / ilp32f ABIs pass every pointer and int in those), the return address in ra.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

CC = "riscv64-unknown-elf-gcc"
NM = "riscv64-unknown-elf-nm"
INSTALL_HINT = (
    "install the Debian packages gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf "
    "(apt-get install --no-install-recommends gcc-riscv64-unknown-elf "
    "picolibc-riscv64-unknown-elf)"
)
#: compile and link flags beyond the target's -march / -mabi: picolibc's headers and libraries
#: (the specs add -L for gcc's multilib of the target), no small-data section (the map's
#: .sdata / .sbss would otherwise sit outside .data / .bss)
COMPILE_FLAGS = ("--specs=picolibc.specs", "-msmall-data-limit=0")
LINK_FLAGS = ("--specs=picolibc.specs",)
CPU_PREFIX = "UC_CPU_RISCV32_"
SPECS = "picolibc.specs"

#: the rv32 targets: gcc's flags, unicorn's CPU model, a note for the report
TARGETS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "rv32imc": (
        ("-march=rv32imc", "-mabi=ilp32"),
        "UC_CPU_RISCV32_SIFIVE_E31",
        "emulated as QEMU's SiFive E31 (rv32imac; the code is rv32imc, libraries rv32im)",
    ),
    "rv32imac": (("-march=rv32imac", "-mabi=ilp32"), "UC_CPU_RISCV32_SIFIVE_E31", ""),
    "rv32imafc": (
        ("-march=rv32imafc", "-mabi=ilp32f"),
        "UC_CPU_RISCV32_SIFIVE_U34",
        "emulated as QEMU's SiFive U34 (rv32gc; the code is rv32imafc)",
    ),
}
#: `j .` (jal x0, 0): where ra points; emulation stops when the callee returns there
RETURN_STUB = (0x0000006F).to_bytes(4, "little")


def has_picolibc(cc: str) -> bool:
    """Whether the compiler finds picolibc's specs file."""
    proc = subprocess.run(
        [cc, f"-print-file-name={SPECS}"], capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and Path(proc.stdout.strip()).is_absolute()


def is_riscv(uc_cpu: str) -> bool:
    """Whether a unicorn CPU constant names a RISCV32 model."""
    return uc_cpu.startswith(CPU_PREFIX)


def instructions(code: bytes) -> int:
    """Number of RISC-V instructions in a straight run of code (16- and 32-bit encodings)."""
    n = i = 0
    while i + 1 < len(code):
        i += 4 if code[i] & 0b11 == 0b11 else 2
        n += 1
    return n


class Registers:
    """unicorn's RISCV32 registers for a call: arguments, stack pointer, return address."""

    def __init__(self, uc_mod: Any) -> None:
        from unicorn import riscv_const  # noqa: PLC0415

        self.const = riscv_const
        self.args = tuple(getattr(riscv_const, f"UC_RISCV_REG_A{i}") for i in range(8))
        self.sp = riscv_const.UC_RISCV_REG_SP
        self.link = riscv_const.UC_RISCV_REG_RA
        self.pc = riscv_const.UC_RISCV_REG_PC
        self.arch, self.mode = uc_mod.UC_ARCH_RISCV, uc_mod.UC_MODE_RISCV32

    def cpu_model(self, cpu: str) -> int:
        return int(getattr(self.const, cpu))
