"""Every kernel variant against the portable reference, one kernel at a time.

tests/kernels.c.j2 calls rnn2c_<name> (what the build selects) and rnn2c_ref_<name> (the
reference, rnn2c_ref.h) on the same buffers for every kernel an ISA header may replace, over
edge shapes: 0 to 12 groups of columns, 1 to 4 rows, vectors of 0 to 44 elements (not multiples
of 4 or 8), weights and vectors at their extremes (-128/127, -32768/32767), saturating and
random inputs, every vector shift (0..8), both table steps, both division widths; the int4
kernels (rnn2c_macR_s4) over the same shapes (odd group counts: a last word read by half),
with random nibbles and every nibble -8 or 7. Then a few
whole layers (the generated C's own blocks, with an ISA's copy of the weights where it has one:
x86 units across lanes, AVX-512 VNNI bytes; int4 GRU, LSTM and Dense layers), stepped against
the same layers in a second
translation unit built with RNN2C_PORTABLE. It also reads back which function each public name
stands for, and checks that against KERNEL_VARIANTS: the variant under test is really the one
compiled.

The paths: this host's portable C, AVX2, AVX-512 and AVX-512 VNNI (the AVX-512 builds are always
compiled; run where the CPU has those instructions, tools.cpu_has), RNN2C_PORTABLE, and Cortex-M0+
(-O2: assembly, -Os: C), M3, M4 (-O2: assembly, -O0: the ACLE intrinsics) and M7, and rv32imc
(-O2, -Os, -O0: the RV32IM assembly) in unicorn (emulator/size.py's Emulator).
"""

from __future__ import annotations

import ctypes
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import pytest

from rnn2c.emulator import size as S
from rnn2c.emulator.build import find_compiler
from rnn2c.export.ir import ActQuant, state_quant
from rnn2c.export.layers.dense import QuantDense
from rnn2c.export.layers.gru import QuantGRU
from rnn2c.export.layers.lstm import QuantLSTM
from rnn2c.export.quant_rules import QuantFC, row_kinds, vector_max, worst_case_acc
from rnn2c.export.render import LayerView, layer_arrays, runtime_files, template_environment
from tools import (
    cpu_has,
    require,
    require_arm_toolchain,
    require_riscv_toolchain,
    require_unicorn,
)

HERE = Path(__file__).parent
FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror")
SEED = 2026

#: the checks of kernels.c.j2, in its order: the kernel's public name (its implementation in the
#: build is read back), or a layer (stepped against RNN2C_PORTABLE)
KERNELS = (
    "sat_s16",
    "sat_s8",
    "sat17",
    "udiv_small",
    "interp_s16",
    "signed",
    "vec_s8",
    "vec_s16",
    "mac4",
    "mac3",
    "mac2",
    "mac1",
    "mac_rows",
    "mac_rows_small",
    "mac4_s4",
    "mac3_s4",
    "mac2_s4",
    "mac1_s4",
    "mac_rows_s4",
    "gru_pair_acc",
    "softmax_s8",
    "dot_s8",
    "wsum4",
    "mel_u64",
    "gru_gates",
    "lstm_gates",
)
_X86 = {
    k: f"rnn2c_x86_{k}"
    for k in ("vec_s8", "vec_s16", "mac4", "mac3", "mac2", "mac1")
    + ("mac4_s4", "mac3_s4", "mac2_s4", "mac1_s4")
}
_X86["softmax_s8"] = "rnn2c_x86_softmax_s8"
_V6M = {k: f"rnn2c_v6m_{k}" for k in ("udiv_small", "mac4", "mac3", "mac2", "mac1", "mel_u64")}
_V6M["signed"] = "RNN2C_SIGNED"  # a function-like macro of its own
#: int4 weights on ARMv6-M: assembly at -O2, the reference's C at -Os
_V6M_S4 = {k: f"rnn2c_v6m_{k}" for k in ("mac4_s4", "mac3_s4", "mac2_s4", "mac1_s4")}
_SAT = {k: f"rnn2c_v7m_{k}" for k in ("sat_s16", "sat_s8", "sat17")}
_DSP = {k: f"rnn2c_dsp_{k}" for k in ("interp_s16", "mac4", "mac3", "mac2", "mac1", "dot_s8")}
_DSP["wsum4"] = "rnn2c_dsp_wsum4"
#: int4 weights: the assembly in optimized builds, the reference's shifts at -O0
_DSP_S4 = {k: f"rnn2c_dsp_{k}" for k in ("mac4_s4", "mac3_s4", "mac2_s4", "mac1_s4")}
_RV = {
    k: f"rnn2c_rv_{k}"
    for k in (
        "sat_s8",
        "vec_s8",
        "mac4",
        "mac3",
        "mac2",
        "mac1",
        "mac4_s4",
        "mac3_s4",
        "mac2_s4",
        "mac1_s4",
        "gru_pair_acc",
        "gru_gates",
        "lstm_gates",
    )
}
#: the variants each path compiles (every other kernel is its reference, rnn2c_ref_<name>)
KERNEL_VARIANTS: dict[str, dict[str, str]] = {
    "portable": {},
    "reference": {},  # RNN2C_PORTABLE on an AVX2 build
    "avx2": _X86,
    "avx512": _X86,
    "avx512vnni": _X86,
    "cortex-m0plus-O2": {**_V6M, **_V6M_S4},
    "cortex-m0plus-Os": _V6M,
    "cortex-m3-O2": {**_SAT, "gru_pair_acc": "rnn2c_v7m_gru_pair_acc"},
    "cortex-m4-O2": {**_SAT, **_DSP, **_DSP_S4, "mac_rows_small": "rnn2c_dsp_mac_rows_small"},
    "cortex-m4-O0": {**_SAT, **_DSP},
    "cortex-m7-O2": {**_SAT, **_DSP, **_DSP_S4, "mac_rows_small": "rnn2c_dsp_mac_rows_small"},
    "rv32imc-O2": _RV,
    "rv32imc-Os": _RV,
    "rv32imc-O0": _RV,
    "rv32imc-clang-O2": _RV,
}
#: host paths: compiler flags, and the CPU features a run needs
HOST = {
    "portable": (("-O2", "-mno-avx2"), ()),
    "reference": (("-O2", "-mavx2", "-DRNN2C_PORTABLE"), ("avx2",)),
    "avx2": (("-O2", "-mavx2", "-mno-avx512f"), ("avx2",)),
    "avx512": (
        ("-O3", "-march=x86-64-v4", "-mno-avx512vnni"),
        ("avx512f", "avx512bw", "avx512vl"),
    ),
    "avx512vnni": (
        ("-O3", "-march=x86-64-v4", "-mavx512vnni"),
        ("avx512f", "avx512bw", "avx512vl", "avx512_vnni"),
    ),
}
#: Cortex-M paths: (target, optimization)
ARM = {
    "cortex-m0plus-O2": ("cortex-m0plus", "-O2"),
    "cortex-m0plus-Os": ("cortex-m0plus", "-Os"),
    "cortex-m3-O2": ("cortex-m3", "-O2"),
    "cortex-m4-O2": ("cortex-m4", "-O2"),
    "cortex-m4-O0": ("cortex-m4", "-O0"),
    "cortex-m7-O2": ("cortex-m7", "-O2"),
}
#: RISC-V paths (emulator/riscv.py's targets): (target, optimization)
RISCV = {
    "rv32imc-O2": ("rv32imc", "-O2"),
    "rv32imc-Os": ("rv32imc", "-Os"),
    "rv32imc-O0": ("rv32imc", "-O0"),
    "rv32imc-clang-O2": ("rv32imc", "-O2"),
}
#: paths compiled by clang (its integrated assembler reads the inline assembly), linked by gcc
CLANG = {"rv32imc-clang-O2": ("--target=riscv32-unknown-elf", "-march=rv32imc", "-mabi=ilp32")}


# ---------------------------------------------------------------------------- the layers


def _fc(
    rng: np.random.Generator, rows: int, cols: int, kinds: np.ndarray, bits: int = 8
) -> QuantFC:
    """int8 rows (int4: -8..7; every fourth weight at an extreme), a bias, per-kind shifts over
    the whole range the quantizer uses (shift_in 0..24, shift_out 1..31, the ends included)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(lo, hi + 1, size=(rows, cols))
    ends = rng.random(size=w.shape) < 0.25
    w[ends] = rng.choice([lo, hi], size=int(ends.sum()))
    n = int(kinds.max()) + 1
    s_in = rng.integers(0, 25, size=n)
    s_out = rng.integers(1, 32, size=n)
    s_in[0], s_out[0] = 0, int(rng.choice([1, 31]))
    return QuantFC(
        weight=w.astype(np.int8),
        bias=rng.integers(-(1 << 24), 1 << 24, size=rows).astype(np.int32),
        multiplier=rng.integers(1 << 13, 1 << 14, size=rows).astype(np.int16),
        shift_in=s_in[kinds].astype(np.uint8),
        shift_out=s_out[kinds].astype(np.uint8),
    )


def recurrent(
    rng: np.random.Generator,
    kind: str,
    inputs: int,
    units: int,
    input_bits: int,
    state_bits: int,
    reset_after: bool = True,
    bits: int = 8,
) -> QuantGRU | QuantLSTM:
    """A random quantized GRU or LSTM layer (vector shifts 0..8, right for an int16 part;
    bits=4: int4 weights)."""
    gates = 4 if kind == "lstm" or reset_after else 3
    rows = gates * units
    fc = _fc(rng, rows, inputs + units, row_kinds(rows, units), bits)
    if kind == "gru" and reset_after:  # the candidate's x and h rows: one side each
        fc.weight[2 * units : 3 * units, inputs:] = 0
        fc.weight[3 * units :, :inputs] = 0
    xs = int(rng.integers(0, 9)) * (1 if input_bits == 8 else -1)
    hs = int(rng.integers(0, 9)) * (1 if state_bits == 8 else -1)
    vmax = [vector_max(input_bits, xs)] * inputs + [vector_max(state_bits, hs)] * units
    assert worst_case_acc(fc.weight, fc.bias, np.asarray(vmax)) < 2**31
    if bits == 4:  # the int4 kernels' bound on the products (quant_rules.INT4_PRODUCTS_MAX)
        assert worst_case_acc(fc.weight, 0 * fc.bias, np.asarray(vmax)) < 2**27
    common = {
        "weight_bits": bits,
        "name": f"{kind}{units}",
        "input_size": inputs,
        "output_q": state_quant(state_bits),
        "units": units,
        "state_bits": state_bits,
        "x_shift": xs,
        "h_shift": hs,
        "fc": fc,
    }
    if kind == "lstm":
        return QuantLSTM(**common, cell_frac_bits=int(rng.integers(10, 15)))
    return QuantGRU(**common, reset_after=reset_after)


def dense(
    rng: np.random.Generator, inputs: int, units: int, activation: str, bits: int = 8
) -> QuantDense:
    fc = _fc(rng, units, inputs, np.zeros(units, dtype=np.int64), bits)
    return QuantDense(
        weight_bits=bits,
        name=f"dense{units}",
        input_size=inputs,
        output_q=ActQuant(1 / 256, -128),
        units=units,
        activation=activation,
        fc=fc,
    )


def layer_set() -> list[tuple[object, int]]:
    """(quantized layer, input bits): x86 blocks of 16 full and partial (8 and 16 lanes), int8
    and int16 inputs and states, both GRU forms, a Dense head of one pass and one of three."""
    rng = np.random.default_rng(SEED)
    return [
        (recurrent(rng, "gru", 5, 9, 8, 8), 8),
        (recurrent(rng, "gru", 3, 17, 16, 16), 16),
        (recurrent(rng, "gru", 6, 33, 16, 8), 16),
        (recurrent(rng, "gru", 4, 6, 8, 8, reset_after=False), 8),
        (recurrent(rng, "lstm", 13, 16, 8, 8), 8),
        (recurrent(rng, "lstm", 2, 7, 8, 16), 8),
        (dense(rng, 10, 3, "softmax"), 8),
        (dense(rng, 7, 9, "sigmoid"), 8),
        # int4 weights: odd groups, rows not a multiple of the pass, int8 and int16 parts
        (recurrent(rng, "gru", 5, 9, 8, 8, bits=4), 8),
        (recurrent(rng, "gru", 3, 6, 8, 8, reset_after=False, bits=4), 8),
        (recurrent(rng, "lstm", 13, 7, 16, 16, bits=4), 16),
        (dense(rng, 10, 3, "softmax", bits=4), 8),
        (dense(rng, 21, 9, "tanh", bits=4), 8),
    ]


def view(i: int, q: object, input_bits: int) -> LayerView:
    p = f"l{i}_{q.kind}"  # type: ignore[attr-defined]
    return LayerView(
        index=i,
        q=q,  # type: ignore[arg-type]
        p=p,
        P=f"KT_{p.upper()}",
        input="x",
        input_bits=input_bits,
        state_type=f"s{q.output_q.bits}",  # type: ignore[attr-defined]
        output="y",
        buffer=None,
        label=q.kind,  # type: ignore[attr-defined]
        extra="",
        ctype="int16_t" if q.output_q.bits == 16 else "int8_t",  # type: ignore[attr-defined]
        **layer_arrays(q, input_bits),  # type: ignore[arg-type]
    )


@dataclass
class Check:
    name: str
    impl: str  # a C string literal: what the name stands for in the build


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The driver, the runtime beside it: one folder, compiled per path."""
    d = tmp_path_factory.mktemp("kernels")
    env = template_environment()
    views = [view(i, q, bits) for i, (q, bits) in enumerate(layer_set())]
    blocks = [env.get_template(f"layers/{v.q.template}").module.data(v) for v in views]  # type: ignore[attr-defined]
    checks = [Check(k, f"KT_STR(rnn2c_{k})") for k in KERNELS if k != "signed"]
    checks.insert(KERNELS.index("signed"), Check("signed", "KT_STR(RNN2C_SIGNED)"))
    checks += [Check(f"layer_{v.p}", f'"{v.p}"') for v in views]
    driver = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    ).get_template("kernels.c.j2")
    widest = max(v.q.input_size + v.q.output_size for v in views)  # type: ignore[attr-defined]
    text = driver.render(
        layer_data="\n\n".join(str(b) for b in blocks),
        layers=views,
        checks=checks,
        max_state=max(64, widest),
        max_vector=8
        + max(v.q.x_cols + getattr(v.q, "h_cols", 0) + 2 * v.q.output_size for v in views),  # type: ignore[attr-defined]
        max_acc=max(v.q.output_size for v in views),  # type: ignore[attr-defined]
    )
    (d / "kernels.c").write_text(text + "\n")  # clang -Wpedantic: a final newline
    for name, body in runtime_files().items():
        (d / name).write_text(body)
    return d


@dataclass
class Result:
    cases: list[int]
    fails: list[int]
    first: list[int]
    impl: list[str]
    failed: int

    def check(self, path: str) -> None:
        names = [*KERNELS, *(f"layer {i}" for i in range(len(self.cases) - len(KERNELS)))]
        bad = [
            f"{n} ({self.impl[i]}): {self.fails[i]} of {self.cases[i]} differ "
            f"(first: case {self.first[i]})"
            for i, n in enumerate(names)
            if self.fails[i]
        ]
        assert not bad and self.failed == 0, f"{path}: " + "; ".join(bad)
        assert all(c > 0 for c in self.cases), f"{path}: a check ran no case: {self.cases}"
        expected = KERNEL_VARIANTS[path]
        impl = dict(zip(KERNELS, self.impl, strict=False))
        for k in KERNELS:
            want = expected.get(k, "RNN2C_REF_SIGNED" if k == "signed" else f"rnn2c_ref_{k}")
            assert impl[k] == want, f"{path}: {k} is {impl[k]}, expected {want}"


def _host_build(src: Path, path: str) -> tuple[Path, bool]:
    """Build the driver (its two translation units) as a shared library for a host path; and
    whether this CPU can run it."""
    flags, features = HOST[path]
    cc = find_compiler()
    lib = src / f"libkt-{path}.so"
    objs = []
    for unit, extra in (("isa", ()), ("ref", ("-DKT_REF", "-DRNN2C_PORTABLE"))):
        obj = src / f"kt-{path}-{unit}.o"
        cmd = [*cc, *FLAGS, *flags, *extra, "-DKT_REPEAT=4", "-fPIC", "-I", str(src)]
        cmd += ["-c", str(src / "kernels.c")]
        subprocess.run([*cmd, "-o", str(obj)], check=True, capture_output=True, text=True)
        objs.append(str(obj))
    subprocess.run([*cc, "-shared", *objs, "-o", str(lib)], check=True)
    return lib, cpu_has(*features)


def _read_host(lib: Path, seed: int) -> Result:
    dll = ctypes.CDLL(str(lib))
    n = len(KERNELS) + len(layer_set())
    dll.rnn2c_kt_main.restype = ctypes.c_int32
    failed = int(dll.rnn2c_kt_main(ctypes.c_uint32(seed)))
    arr = ctypes.c_int32 * n
    impl = (ctypes.c_char * 48 * n).in_dll(dll, "kt_impl")
    return Result(
        cases=list(arr.in_dll(dll, "kt_cases")),
        fails=list(arr.in_dll(dll, "kt_fails")),
        first=list(arr.in_dll(dll, "kt_first")),
        impl=[bytes(s).split(b"\0")[0].decode() for s in impl],
        failed=failed,
    )


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 kernel paths")
@pytest.mark.parametrize("path", sorted(HOST))
def test_host_kernels_match_the_reference(source: Path, path: str) -> None:
    """Built on every host path; run where this CPU has the path's instructions (the AVX-512
    paths only on an AVX-512 CPU: elsewhere this is a build test of them)."""
    lib, runs = _host_build(source, path)
    if runs:
        for seed in (SEED, 7):
            _read_host(lib, seed).check(path)


def _cross_build(src: Path, path: str) -> tuple[bytes, dict[str, int]]:
    """The driver's two translation units for a Cortex-M or rv32 path, linked for unicorn."""
    target, opt = {**ARM, **RISCV}[path]
    tgt = S.TARGETS[target]
    cc = S.find_toolchain(tgt)
    cpu = [*tgt.cpu_flags, opt]
    objs = []
    compile_ = [cc, *cpu]
    if path in CLANG:
        compile_ = ["clang", *CLANG[path], "-ffreestanding", opt]
    for unit, extra in (("isa", ()), ("ref", ("-DKT_REF", "-DRNN2C_PORTABLE"))):
        obj = src / f"kt-{path}-{unit}.o"
        cmd = [*compile_, *FLAGS, *extra, "-I", str(src), "-c", str(src / "kernels.c")]
        subprocess.run([*cmd, "-o", str(obj)], check=True, capture_output=True, text=True)
        objs.append(str(obj))
    (src / "link.ld").write_text(S.LINKER_SCRIPT)
    elf = src / f"kt-{path}.elf"
    link = [cc, *cpu, "-nostartfiles", "-T", str(src / "link.ld"), "-Wl,-e,rnn2c_kt_main"]
    subprocess.run([*link, *objs, "-lgcc", "-o", str(elf)], check=True, capture_output=True)
    nm_name = "riscv64-unknown-elf-nm" if tgt.arch == "riscv" else "arm-none-eabi-nm"
    nm = subprocess.run(
        [str(Path(cc).with_name(nm_name)), str(elf)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    symbols = {
        p[2]: int(p[0], 16) for p in (line.split() for line in nm.splitlines()) if len(p) == 3
    }
    return elf.read_bytes(), symbols


def _emulated_check(source: Path, path: str, target: str) -> None:
    """Run the driver in unicorn and check its results (as rnn2c size runs a model)."""
    elf, sym = _cross_build(source, path)
    emu = S.Emulator(elf, S.TARGETS[target].uc_cpu, count=False)
    emu.call(sym["rnn2c_kt_main"], SEED)
    n = len(KERNELS) + len(layer_set())

    def words(name: str) -> list[int]:
        raw = bytes(emu.uc.mem_read(sym[name], 4 * n))
        return [int(v) for v in np.frombuffer(raw, dtype="<i4")]

    impl = bytes(emu.uc.mem_read(sym["kt_impl"], 48 * n))
    Result(
        cases=words("kt_cases"),
        fails=words("kt_fails"),
        first=words("kt_first"),
        impl=[impl[48 * i : 48 * (i + 1)].split(b"\0")[0].decode() for i in range(n)],
        failed=sum(words("kt_fails")),
    ).check(path)


@pytest.mark.parametrize("path", sorted(ARM))
def test_cortex_m_kernels_match_the_reference(source: Path, path: str) -> None:
    """The Arm kernels (ARMv6-M assembly and C, ARMv7-M SSAT and GRU pairs, DSP assembly and
    intrinsics) in unicorn, as rnn2c size runs a model."""
    require_arm_toolchain()
    require_unicorn()
    _emulated_check(source, path, ARM[path][0])


@pytest.mark.parametrize("path", sorted(RISCV))
def test_riscv_kernels_match_the_reference(source: Path, path: str) -> None:
    """The RV32IM kernels (rnn2c_riscv.h: the multiply-accumulate loops and the GRU pair in
    assembly, at -O2, -Os and -O0, and by clang) in unicorn's RISCV32 model, over the same edge
    shapes."""
    require_riscv_toolchain()
    if path in CLANG:
        require("clang", "Debian package clang")
    require_unicorn()
    _emulated_check(source, path, RISCV[path][0])
