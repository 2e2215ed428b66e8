"""Which runtime headers an export carries: all of them where its target is not known (a plain
export, a package), its core's alone in a firmware project for a board; the table of cores
against what the compiler itself includes; and the generated C with no ISA #if of its own."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.emulator import firmware
from rnn2c.emulator.verify import read_export_dir
from rnn2c.export import export_model
from rnn2c.export.isa import (
    ARM_CORE_HEADERS,
    RISCV_CORE_HEADERS,
    RUNTIME_FILES,
    runtime_files_for,
)
from rnn2c.export.render import runtime_files
from tools import need, require_arm_toolchain, require_riscv_toolchain

FEATURES = 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRU (reset_after: an x86 copy of its weights) and an LSTM, exported with the Arduino
    and PlatformIO layout."""
    d = tmp_path_factory.mktemp("runtime_files")
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            keras.layers.GRU(5, return_sequences=True),
            keras.layers.LSTM(4),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    calib = np.random.default_rng(0).normal(size=(8, 10, FEATURES)).astype(np.float32)
    export_model(model, calib, d / "export", name="net", package="arduino,platformio")
    return d / "export"


def test_a_plain_export_carries_every_runtime_file_and_lists_them(exported: Path) -> None:
    manifest = json.loads((exported / "rnn2c.json").read_text())
    assert set(RUNTIME_FILES) <= set(manifest["files"])
    for f in RUNTIME_FILES:  # as shipped, and recorded
        assert (exported / f).read_text() == runtime_files()[f]
        assert f in manifest["sha256"]
    # a package does not know its target (an Arduino core, a PlatformIO platform, the host's
    # `native` included): src/ carries them all too
    assert {f"src/{f}" for f in RUNTIME_FILES} <= set(manifest["files"])
    assert read_export_dir(exported).changed_files == []


def test_the_generated_c_has_no_isa_conditional_but_the_x86_copy(exported: Path) -> None:
    """The layer blocks call one kernel each; the only target test in the C is the x86 hook's
    guard around the copies of the weights."""
    c = (exported / "net.c").read_text()
    tests = re.findall(r"^\s*#\s*(?:if|ifdef|ifndef|elif)\b(.*)$", c, re.M)
    assert tests and set(tests) <= {" defined(RNN2C_ISA_X86)", " defined(RNN2C_X86_U8)"}
    assert "__AVX2__" not in c and "__ARM" not in c
    assert "rnn2c_gru_s8(&l0_gru, " in c and "rnn2c_lstm_s8(&l1_lstm, " in c


@pytest.mark.parametrize(
    ("board", "headers"),
    [
        ("mps2-an386", {"rnn2c_arm_dsp.h", "rnn2c_arm_v7m.h"}),  # Cortex-M4
        ("mps2-an385", {"rnn2c_arm_v7m.h"}),  # Cortex-M3
        ("microbit", {"rnn2c_arm_v6m.h"}),  # Cortex-M0
    ],
)
def test_a_firmware_project_carries_its_cores_headers_only(
    exported: Path, tmp_path: Path, board: str, headers: set[str]
) -> None:
    need("make", "arm-none-eabi-gcc")
    project = firmware.make_project(exported, board, tmp_path / "fw")
    model = project.out / "model"
    runtime = {p.name for p in model.iterdir() if p.name.startswith("rnn2c_")}
    assert runtime == {"rnn2c_runtime.h", "rnn2c_ref.h", *headers}
    # model/ is an export folder of its own: its manifest lists what it holds
    exp = read_export_dir(model)
    assert exp.changed_files == [] and exp.manifest is not None
    assert set(exp.manifest["files"]) & set(RUNTIME_FILES) == runtime
    assert firmware.build(project.out).is_file()


def test_the_core_table_is_what_the_compiler_includes(tmp_path: Path) -> None:
    """rnn2c.export.isa's headers per Cortex-M core are those arm-none-eabi-gcc includes for it
    (-mcpu, its default features), no fewer and no more."""
    require_arm_toolchain()
    for name, text in runtime_files().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "probe.c").write_text('#include "rnn2c_runtime.h"\nint rnn2c_probe;\n')
    for cpu in ARM_CORE_HEADERS:
        deps = subprocess.run(
            ["arm-none-eabi-gcc", "-mthumb", f"-mcpu={cpu}", "-M", str(tmp_path / "probe.c")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        included = {Path(p).name for p in deps.replace("\\\n", " ").split()[1:]}
        assert {f for f in included if f.startswith("rnn2c_")} == set(runtime_files_for(cpu)), cpu
    assert runtime_files_for("riscv") == RUNTIME_FILES == runtime_files_for(None)


def test_the_riscv_core_table_is_what_the_compiler_includes(tmp_path: Path) -> None:
    """The same for the rv32 cores: riscv64-unknown-elf-gcc -march=<core> includes
    rnn2c_riscv.h and no Arm or x86 header; rv32i (no multiply) selects it too, its assembly
    off (the reference kernels)."""
    require_riscv_toolchain()
    for name, text in runtime_files().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "probe.c").write_text(
        '#include "rnn2c_runtime.h"\nint rnn2c_probe = RNN2C_ISA_RISCV;\n'
        "#if defined(RNN2C_RV_ASM) != defined(__riscv_mul)\n#error asm\n#endif\n"
    )
    cores = {**RISCV_CORE_HEADERS, "rv32i": ("rnn2c_riscv.h",)}
    for cpu, headers in cores.items():
        abi = "ilp32f" if "f" in cpu[4:] else "ilp32"
        deps = subprocess.run(
            ["riscv64-unknown-elf-gcc", "--specs=picolibc.specs", f"-march={cpu}",
             f"-mabi={abi}", "-MD", "-MF", str(tmp_path / "d"), "-c", str(tmp_path / "probe.c"),
             "-o", str(tmp_path / "p.o")],
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
        assert deps.returncode == 0
        text = (tmp_path / "d").read_text()
        included = {Path(p).name for p in text.replace("\\\n", " ").split()[1:]}
        want = {"rnn2c_runtime.h", "rnn2c_ref.h", *headers}
        assert {f for f in included if f.startswith("rnn2c_")} == want, cpu
        if cpu in RISCV_CORE_HEADERS:
            assert set(runtime_files_for(cpu)) == want, cpu


def test_the_switch_table_lists_every_switch() -> None:
    """Every RNN2C_ macro a runtime file or an ISA fragment tests in #if, and every path macro
    a header sets for others to read, is in the table at the top of rnn2c_runtime.h."""
    files = runtime_files()
    root = Path(firmware.__file__).parent.parent / "firmware_templates"
    fragment = (root / "layers" / "_isa_x86.c.j2").read_text()
    table = files["rnn2c_runtime.h"].split("Number formats")[0]
    tested: set[str] = set()
    for text in [*files.values(), fragment]:
        for line in text.splitlines():
            if re.match(r"\s*#\s*(if|ifdef|ifndef|elif)\b", line):
                tested |= set(re.findall(r"\bRNN2C_[A-Z0-9_]+", line))
    defined = set(
        re.findall(
            r"#define (RNN2C_(?:ISA_[A-Z0-9_]+|[A-Z0-9_]+_ASM|GRU_PAIRS|"
            r"WSUM4_COLUMNS|X86_LANES|X86_U8))\b",
            "".join(files.values()),
        )
    )
    guards = {f"RNN2C_{Path(f).stem[6:].upper()}_H" for f in files} | {"RNN2C_RUNTIME_H"}
    # rnn2c_ref.h's fallbacks and the ISA member's hooks (described there)
    bindings = {"RNN2C_SIGNED", "RNN2C_VPOS", "RNN2C_ISA_MEMBER", "RNN2C_ISA_INIT"}
    wanted = (tested | defined) - guards - bindings
    assert {"RNN2C_PORTABLE", "RNN2C_ALLOW_LIBCALLS", "RNN2C_X86_U8", "RNN2C_V7M_ASM"} <= wanted
    assert sorted(m for m in wanted if m not in table) == []
