"""`rnn2c size`: the instruction counter is exact, the figures are plausible, bad input exits 2."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.emulator import riscv
from rnn2c.emulator import size as S
from rnn2c.export import export_model
from tools import require_arm_toolchain, require_riscv_toolchain, require_unicorn

# Thumb-2 32-bit encodings an ARMv6-M core does have; every other one would fault on an M0+.
V6M_32BIT = ("bl", "mrs", "msr", "dmb", "dsb", "isb")

HEAD = """\
    .syntax unified
    .thumb
    .text
"""
LOOP = """\
    .global loop
    .type loop, %function
    .thumb_func
loop:                 @ r0 = n >= 1: 1 + 3 n + 1 instructions
    movs r1, #0
1:  adds r1, r1, #1
    subs r0, r0, #1
    bne 1b
    bx lr
"""
COND = """\
    .global cond
    .type cond, %function
    .thumb_func
cond:                 @ 8 instructions whatever r0 (IT blocks; Thumb-2 only)
    cmp r0, #0
    ite eq
    moveq r1, #1
    movne r1, #2
    itt ne
    addne r1, r1, #3
    addne r1, r1, #4
    bx lr
"""
DSP = """\
    .global dsp
    .type dsp, %function
    .thumb_func
dsp:                  @ a DSP multiply-accumulate: Cortex-M4 yes, Cortex-M0+ no
    smlabb r0, r0, r1, r2
    bx lr
"""


def _link_asm(tmp: Path, source: str, cpu: str) -> tuple[bytes, dict[str, int]]:
    (tmp / "t.s").write_text(HEAD + source)
    elf = tmp / f"t-{cpu}.elf"
    cmd = ["arm-none-eabi-gcc", "-mthumb", f"-mcpu={cpu}", "-nostdlib", "-nostartfiles"]
    subprocess.run(
        [*cmd, "-Wl,-Ttext=0", "-Wl,-e,loop", str(tmp / "t.s"), "-o", str(elf)], check=True
    )
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True)
    syms = {
        p[2]: int(p[0], 16) for p in (line.split() for line in out.stdout.decode().splitlines())
    }
    return elf.read_bytes(), syms


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("size")
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.GRU(8, return_sequences=True),
            keras.layers.LSTM(6),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(8, 10, 3)).astype(np.float32)
    np.savez(d / "data.npz", x=x)
    export_model(model, x, d / "c", name="tiny")
    return d


def test_counter_is_exact_on_a_known_loop(tmp_path: Path) -> None:
    require_arm_toolchain()
    require_unicorn()
    for cpu, uc_cpu in (
        ("cortex-m0plus", "UC_CPU_ARM_CORTEX_M0"),
        ("cortex-m3", "UC_CPU_ARM_CORTEX_M3"),
    ):
        src = LOOP if cpu == "cortex-m0plus" else LOOP + COND
        elf, syms = _link_asm(tmp_path, src, cpu)
        for per_instruction in (False, True):
            emu = S.Emulator(elf, uc_cpu, per_instruction=per_instruction)
            for n in (1, 7, 1000):
                assert emu.call(syms["loop"], n) == 3 * n + 2
    # IT blocks: the block counter counts every instruction issued, also those whose condition
    # fails (executed as no-ops); unicorn's per-instruction hook skips the failed ones.
    elf, syms = _link_asm(tmp_path, LOOP + COND, "cortex-m4")
    emu = S.Emulator(elf, "UC_CPU_ARM_CORTEX_M4")
    assert [emu.call(syms["cond"], r0) for r0 in (0, 1)] == [8, 8]
    assert emu.uc.reg_read(emu.arm.UC_ARM_REG_R1) == 9
    emu = S.Emulator(elf, "UC_CPU_ARM_CORTEX_M4", per_instruction=True)
    assert [emu.call(syms["cond"], r0) for r0 in (0, 1)] == [5, 7]


def test_m0_model_faults_on_dsp_instructions(tmp_path: Path) -> None:
    """The CPU model is set: QEMU's default M-class core would run SMLABB on an 'M0'."""
    require_arm_toolchain()
    require_unicorn()
    elf, syms = _link_asm(tmp_path, LOOP + DSP, "cortex-m4")
    assert S.Emulator(elf, "UC_CPU_ARM_CORTEX_M4").call(syms["dsp"], 3, 4, 5) == 2
    with pytest.raises(RuntimeError, match="fault|did not return"):
        S.Emulator(elf, "UC_CPU_ARM_CORTEX_M0").call(syms["dsp"], 3, 4, 5)


def test_m0plus_code_is_armv6m_and_counters_agree(export_dir: Path) -> None:
    require_arm_toolchain()
    require_unicorn()
    exp = S.read_export(export_dir / "c")
    b = S.build(exp, S.TARGETS["cortex-m0plus"], "O2", S.find_toolchain())
    elf = export_dir / "m0.elf"
    elf.write_bytes(b.elf)
    dis = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    wide = [
        line
        for line in dis.splitlines()
        if (m := line.split("\t")) and len(m) >= 3 and len(m[1].split()) == 2
    ]  # "addr:\t<hw> <hw>\tmnemonic ...": a 32-bit encoding
    bad = [w for w in wide if w.split("\t")[2].split()[0].split(".")[0] not in V6M_32BIT]
    assert not bad, bad[:5]
    counts = []
    for per_instruction in (False, True):
        emu = S.Emulator(b.elf, "UC_CPU_ARM_CORTEX_M0", per_instruction=per_instruction)
        emu.call(b.symbols["tiny_reset"], S.BUF_STATE)
        emu.uc.mem_write(S.BUF_IN, bytes([5, 250, 17]))
        counts.append(
            [emu.call(b.symbols["tiny_step"], S.BUF_STATE, S.BUF_IN, S.BUF_OUT) for _ in range(3)]
        )
    assert counts[0] == counts[1]  # no IT blocks on ARMv6-M: both counters agree exactly


@pytest.mark.parametrize("target", ["cortex-m0plus", "cortex-m4"])
def test_report_is_plausible(export_dir: Path, target: str) -> None:
    require_arm_toolchain()
    require_unicorn()
    r = S.measure(export_dir / "c", target, sequences=2, steps=6)
    assert r.bit_exact
    assert r.steps == 12
    assert r.flash >= r.raw_parameters > 0
    assert r.flash == r.text + r.rodata + r.data + r.library_bytes
    assert r.stack > 0 and r.ram >= r.state + r.stack
    assert r.state == 8 + 6 + 2 * 6  # GRU h int8, LSTM h int8 + c int16
    # the instruction counter is checked exactly on hand-written code above; the figures'
    # plausibility range (1 to 60 per MAC) is benchmarks/size_table.py's to check
    assert r.instructions_per_mac == pytest.approx(r.instructions_mean / r.macs_per_step)
    assert 0 < r.instructions_min <= r.instructions_mean <= r.instructions_max
    assert r.stack_path[0] == "tiny_step"
    symbols = {s for m in r.libraries for s in m.symbols}
    assert "__aeabi_lmul" not in symbols  # no 64-bit arithmetic in the step
    assert all(m.archive.startswith("lib") for m in r.libraries)


@pytest.mark.parametrize("activations", ["int8", "int16"])
def test_portable_and_dsp_kernels_bit_exact_on_arm(tmp_path: Path, activations: str) -> None:
    """Every layer kind through the portable C (M0+, M3) and the DSP path (M4, M7), bit-exact
    with the integer reference in the emulated cores."""
    require_arm_toolchain()
    require_unicorn()
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.SimpleRNN(6, return_sequences=True),
            keras.layers.GRU(7, return_sequences=True, reset_after=False),
            keras.layers.GRU(5, return_sequences=True),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(1).normal(size=(8, 10, 5)).astype(np.float32)
    export_model(model, x, tmp_path / "c", name="every", activations=activations)
    for target in ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7"):
        r = S.measure(tmp_path / "c", target, sequences=2, steps=6)
        assert r.bit_exact, target


def test_cli_table_and_json(
    export_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    require_arm_toolchain()
    require_unicorn()
    out = tmp_path / "size.json"
    args = ["size", str(export_dir / "c"), "--target", "cortex-m3", "--opt", "Os"]
    rc = main([*args, "--data", str(export_dir / "data.npz"), "--steps", "4", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "instructions / MAC" in text and "cortex-m3 -Os" in text
    report = json.loads(out.read_text())
    assert report["target"] == "cortex-m3" and report["opt"] == "Os"
    assert report["steps"] == 4 * 4 and report["input_source"] == "data.npz quantized"
    assert (
        report["macs_per_step"]
        == json.loads((export_dir / "c" / "rnn2c.json").read_text())["macs_per_step"]
    )


def _bad(capsys: pytest.CaptureFixture, argv: list[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_bad_input_exits_2(export_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    c = str(export_dir / "c")
    _bad(capsys, ["size", str(tmp_path / "nope"), "--target", "cortex-m4"], "does not exist")
    _bad(capsys, ["size", str(tmp_path), "--target", "cortex-m4"], "rnn2c.json")
    _bad(capsys, ["size", c, "--target", "cortex-m99"], "cortex-m0plus")
    _bad(capsys, ["size", c, "--target", "cortex-m4", "--opt", "O3"], "O2")
    _bad(capsys, ["size", c, "--target", "cortex-m4", "--data", str(tmp_path / "x.npz")], "--data")
    monkeypatch.setattr(S, "CC", "arm-none-eabi-gcc-not-installed")
    _bad(capsys, ["size", c, "--target", "cortex-m4"], "gcc-arm-none-eabi")
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "unicorn", None)  # import unicorn -> ImportError
    _bad(capsys, ["size", c, "--target", "cortex-m4"], "pip install unicorn")


def test_armv7m_gru_pair_and_dsp_head_bit_exact_on_random_configurations(tmp_path: Path) -> None:
    """The Cortex-M3 assembly (two GRU units per pass, rnn2c_v7m_gru_pair_acc) on random
    shapes: odd and even unit counts (the last odd unit takes the portable C), 1..3 input groups,
    int8 and int16 states, stacked layers; every output bit-exact with the integer reference, and
    the path is really the one compiled, warning-free under the strict flags. The same models on
    the M4 cover the DSP head loop (rnn2c_mac_rows_small) for 1..4 rows."""
    require_arm_toolchain()
    require_unicorn()
    from test_generated_c import STRICT  # noqa: PLC0415

    rng = np.random.default_rng(2026)
    for case in range(5):
        features = int(rng.integers(1, 12))
        units = [int(rng.integers(1, 11)) for _ in range(int(rng.integers(1, 3)))]
        activations = ("int8", "int16")[case % 2]
        keras.utils.set_random_seed(100 + case)
        layers = [keras.Input((None, features))]
        for i, u in enumerate(units):
            layers.append(keras.layers.GRU(u, return_sequences=i + 1 < len(units)))
        head = ("softmax", "linear", "sigmoid", "softmax", "tanh")[case]
        layers.append(keras.layers.Dense(case + 1, activation=head))  # 1..5 rows
        x = rng.normal(size=(8, 10, features)).astype(np.float32) * rng.uniform(0.2, 3.0)
        out = tmp_path / f"c{case}"
        export_model(keras.Sequential(layers), x, out, name="pair", activations=activations)
        where = f"case {case}: {features} features, units {units}, {activations}, {head}"
        for opt in ("O2", "Os"):
            r = S.measure(out, "cortex-m3", opt, sequences=2, steps=5)
            assert r.bit_exact, f"{where}, -{opt}"
        # the same shapes on the DSP core: heads of 1..5 units take the one-group loop (<= 4)
        r = S.measure(out, "cortex-m4", "O2", sequences=2, steps=5)
        assert r.bit_exact, f"{where}, cortex-m4"
        probe = out / "probe.c"
        probe.write_text(
            '#include "pair.h"\n#include "rnn2c_runtime.h"\n'
            "#if !defined(RNN2C_V7M_ASM)\n#error the ARMv7-M path is not selected\n#endif\n"
            "typedef int probe_nonempty;\n"
        )
        for src, cpu in (
            (probe, "cortex-m3"),
            (out / "pair.c", "cortex-m3"),
            (out / "pair.c", "cortex-m4"),
        ):
            for opt in ("-O2", "-Os"):
                subprocess.run(
                    [
                        "arm-none-eabi-gcc",
                        "-mthumb",
                        f"-mcpu={cpu}",
                        "-std=c99",
                        opt,
                        *STRICT,
                        "-I",
                        str(out),
                        "-c",
                        str(src),
                        "-o",
                        str(tmp_path / "p.o"),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )


# ---------------------------------------------------------------------------- RISC-V

RV_LOOP = """\
    .text
    .global loop
loop:                 # a0 = n >= 1: 1 + 3 n + 1 instructions, 16- and 32-bit encodings
    li a1, 0
1:  addi a1, a1, 1
    addi a0, a0, -1
    bnez a0, 1b
    ret
    .global wide
wide:                 # 4 instructions, none compressible: a0 = a0 * a1 + 300000
    mul a0, a0, a1
    lui t0, 73
    addi t0, t0, 992
    add a0, a0, t0
    ret
"""


def test_riscv_counter_is_exact_on_a_known_loop(tmp_path: Path) -> None:
    """The block counter reads 16-bit (C extension) and 32-bit encodings apart: it agrees with
    unicorn's per-instruction hook on a loop of both, in the rv32imc model."""
    require_riscv_toolchain()
    require_unicorn()
    (tmp_path / "t.s").write_text(RV_LOOP)
    elf = tmp_path / "t.elf"
    cc = ["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32", "-nostdlib"]
    subprocess.run([*cc, "-Wl,-Ttext=0", "-Wl,-e,loop", str(tmp_path / "t.s"), "-o", str(elf)])
    out = subprocess.run(["riscv64-unknown-elf-nm", str(elf)], check=True, capture_output=True)
    syms = {p[2]: int(p[0], 16) for p in (ln.split() for ln in out.stdout.decode().splitlines())}
    assert syms["wide"] - syms["loop"] == 2 + 2 + 2 + 2 + 2  # all five compressed
    for per_instruction in (False, True):
        emu = S.Emulator(elf.read_bytes(), "UC_CPU_RISCV32_SIFIVE_E31", per_instruction)
        for n in (1, 7, 1000):
            assert emu.call(syms["loop"], n) == 3 * n + 2
        assert emu.call(syms["wide"], 6, -7) == 5 and emu.result() == 300000 - 42


@pytest.mark.parametrize("target", ["rv32imc", "rv32imac", "rv32imafc"])
def test_riscv_report_is_plausible_and_bit_exact(export_dir: Path, target: str) -> None:
    """`rnn2c size --target rv32*`: the model built for that ISA (the ELF's flags: compressed,
    and the float ABI of rv32imafc), bit-exact in unicorn's RISCV32 model, the figures add up,
    and no library call for a multiplication (rv32im has mul)."""
    require_riscv_toolchain()
    require_unicorn()
    r = S.measure(export_dir / "c", target, sequences=2, steps=6)
    assert r.bit_exact and r.steps == 12 and r.target == target
    assert "RISCV32" in r.emulated_cpu and r.compiler.startswith("riscv64-unknown-elf-gcc")
    assert r.flash == r.text + r.rodata + r.data + r.library_bytes
    assert r.flash >= r.raw_parameters > 0
    assert r.state == 8 + 6 + 2 * 6 and r.stack > 0 and r.ram >= r.state + r.stack
    assert r.stack_path[0] == "tiny_step"
    assert r.instructions_per_mac == pytest.approx(r.instructions_mean / r.macs_per_step)
    assert not {"__mulsi3", "__muldi3"} & {s for m in r.libraries for s in m.symbols}
    assert "RISC-V output == int reference  bit-exact" in r.table()
    tgt = S.TARGETS[target]
    b = S.build(S.read_export(export_dir / "c"), tgt, "O2", S.find_toolchain(tgt))
    e_flags = int.from_bytes(b.elf[36:40], "little")
    assert b.elf[18] == 243  # EM_RISCV
    assert e_flags & 1 == 1  # EF_RISCV_RVC
    assert e_flags & 6 == (2 if target == "rv32imafc" else 0)  # float ABI: single / soft


def test_step_profile_attributes_every_instruction_of_the_step(
    export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/step_profile.py: the profiled step's instructions are the block counter's for
    the same step of the build without -g (the same code), every address is attributed to a
    chain of inlined functions ending in <name>_step, and the kernels show by name."""
    require_riscv_toolchain()
    require_unicorn()
    spec = importlib.util.spec_from_file_location(
        "step_profile", Path(__file__).parents[1] / "benchmarks" / "step_profile.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)  # the dataclass looks its module up
    spec.loader.exec_module(mod)
    p = mod.profile(export_dir / "c", "rv32imc", "O2", warmup=2)
    exp = S.read_export(export_dir / "c")
    tgt = S.TARGETS["rv32imc"]
    b = S.build(exp, tgt, "O2", S.find_toolchain(tgt))
    emu = S.Emulator(b.elf, tgt.uc_cpu)
    xq, _, _ = S.make_inputs(exp.qmodel, None, 1, 3)
    emu.call(b.symbols["tiny_reset"], S.BUF_STATE)
    for t in range(3):
        emu.uc.mem_write(S.BUF_IN, xq[0, t].tobytes())
        count = emu.call(b.symbols["tiny_step"], S.BUF_STATE, S.BUF_IN, S.BUF_OUT)
    assert p.total == count == sum(p.per_address.values()) > p.macs
    assert all(p.chains[a][-1] == "tiny_step" for a in p.per_address)
    inner = p.by(1)
    assert sum(inner.values()) == p.total
    by_line = p.by(0)  # --lines: every instruction on a source line of the function it is in
    assert sum(by_line.values()) == p.total
    assert all(" @ " in k and k.split(" @ ")[1].split(":")[0] for k in by_line)
    assert {"rnn2c_rv_gru_gates", "rnn2c_rv_lstm_gates", "rnn2c_rv_mac4"} <= set(inner)


def test_riscv_toolchain_missing_exits_2(
    export_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(riscv, "CC", "riscv64-unknown-elf-gcc-not-installed")
    _bad(
        capsys,
        ["size", str(export_dir / "c"), "--target", "rv32imc"],
        "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
    )


@pytest.mark.parametrize("activations", ["int8", "int16"])
def test_riscv_every_recurrent_kind_bit_exact(tmp_path: Path, activations: str) -> None:
    """Every recurrent kind through rnn2c_riscv.h on rv32imc at -O2 and -Os: GRU pairs with a
    unit left over (5 units), reset_after=False, LSTM, SimpleRNN, a Dense head, int8 and int16
    states; bit-exact with the integer reference in unicorn."""
    require_riscv_toolchain()
    require_unicorn()
    keras.utils.set_random_seed(12)
    model = keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.SimpleRNN(6, return_sequences=True),
            keras.layers.GRU(7, return_sequences=True, reset_after=False),
            keras.layers.GRU(5, return_sequences=True),
            keras.layers.LSTM(3, return_sequences=True),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(2).normal(size=(8, 10, 5)).astype(np.float32)
    export_model(model, x, tmp_path / "c", name="every", activations=activations)
    for opt in ("O2", "Os"):
        r = S.measure(tmp_path / "c", "rv32imc", opt, sequences=2, steps=6)
        assert r.bit_exact, opt
