"""ISA-specific data a layer carries in the generated C, beside its shared weights: the one hook
through which the renderer asks every ISA module, without knowing which ISAs there are.

An ISA module (isa_x86) has ``layer_data(layer, input_bits)`` (the arrays its kernels read for
that layer, or None) and ``TEMPLATE``, a fragment under rnn2c.firmware_templates with a macro
``data(L, d)`` that writes them under the guard of its runtime header (a build for another
target compiles none of it) and defines ``<p>_isa``, the struct a GRU or LSTM layer's
``RNN2C_ISA_INIT`` points at (rnn2c_ref.h describes the member)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn2c.export import isa_x86
from rnn2c.export.ir import ExportError, QuantLayer

#: the ISA modules, each with layer_data() and TEMPLATE
MODULES = (isa_x86,)


@dataclass
class IsaData:
    """One ISA module's data for one layer."""

    template: str  # the fragment that writes it (a macro data(L, d))
    arrays: dict[str, np.ndarray]


def layer_isa_data(layer: QuantLayer, input_bits: int) -> list[IsaData]:
    """Every ISA module's data for a layer (input_bits: 8 or 16, its input's type)."""
    out = []
    for module in MODULES:
        arrays = module.layer_data(layer, input_bits)
        if arrays is not None:
            out.append(IsaData(module.TEMPLATE, arrays))
    if len(out) > 1:  # the layer struct has one ISA member (one ISA header per build)
        raise ExportError(f"layer '{layer.name}': more than one ISA module gives it data")
    return out


#: the runtime's files: rnn2c_runtime.h (the one the generated C includes), the reference kernels
#: and one header per ISA family; an export whose target is not known carries them all
RUNTIME_HEADER = "rnn2c_runtime.h"
RUNTIME_FILES = (
    RUNTIME_HEADER,
    "rnn2c_ref.h",
    "rnn2c_x86.h",
    "rnn2c_arm_dsp.h",
    "rnn2c_arm_v7m.h",
    "rnn2c_arm_v6m.h",
    "rnn2c_riscv.h",
)
_V6M, _V7M, _DSP = (
    ("rnn2c_arm_v6m.h",),
    ("rnn2c_arm_v7m.h",),
    ("rnn2c_arm_dsp.h", "rnn2c_arm_v7m.h"),
)
#: the ISA headers a build for an Arm core (gcc's -mcpu name, the default features) includes
ARM_CORE_HEADERS = {
    "cortex-m0": _V6M,
    "cortex-m0plus": _V6M,
    "cortex-m1": _V6M,
    "cortex-m23": _V6M,
    "cortex-m3": _V7M,
    "cortex-m4": _DSP,
    "cortex-m7": _DSP,
    "cortex-m33": _DSP,
    "cortex-m35p": _DSP,
    "cortex-m55": _DSP,
}


#: the ISA headers a build for a 32-bit RISC-V core (gcc's -march name) includes
RISCV_CORE_HEADERS = {
    "rv32imc": ("rnn2c_riscv.h",),
    "rv32imac": ("rnn2c_riscv.h",),
    "rv32imafc": ("rnn2c_riscv.h",),
}


def runtime_files_for(cpu: str | None = None) -> tuple[str, ...]:
    """The runtime files a build for ``cpu`` compiles: for an Arm core of ARM_CORE_HEADERS (a
    RISC-V one of RISCV_CORE_HEADERS), rnn2c_runtime.h, the reference kernels and that core's
    headers; for any other target, or an unknown one (None), all of them."""
    headers = ARM_CORE_HEADERS.get(cpu or "") or RISCV_CORE_HEADERS.get(cpu or "")
    if headers is None:
        return RUNTIME_FILES
    return (RUNTIME_HEADER, "rnn2c_ref.h", *headers)
