"""Where one step's instructions go: an export folder built as `rnn2c size` builds it (plus `-g`,
which does not change gcc's code), one `<name>_step` counted per instruction in unicorn after a
few warm-up steps, each address attributed by the ELF's line table to its chain of inlined
functions (addr2line -i: the innermost first).

    .venv/bin/python benchmarks/step_profile.py DIR [--target rv32imc] [--opt O2] [--top 30]

Prints the step's instructions and per MAC, then the instructions by innermost function and by
inline chain (the three innermost), each with its share per MAC. docs/measurements.md's rv32imc
profile is this script's output on benchmarks/size_table.py's models.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

from rnn2c.emulator import size as S


@dataclasses.dataclass
class Profile:
    name: str
    macs: int
    total: int  # instructions of the profiled step
    per_address: dict[int, int]
    chains: dict[int, tuple[str, ...]]  # address -> inlined functions, innermost first
    lines: dict[int, str]  # address -> its source line (file name:line) in the innermost one

    def by(self, depth: int) -> collections.Counter[str]:
        """Instructions by the `depth` innermost functions of each address's inline chain
        (depth 0: by the innermost function's source line)."""
        out: collections.Counter[str] = collections.Counter()
        for addr, n in self.per_address.items():
            chain = self.chains[addr]
            key = f"{chain[0]} @ {self.lines[addr]}" if depth == 0 else " < ".join(chain[:depth])
            out[key] += n
        return out


def inline_chains(
    elf: Path, addr2line: str, addrs: list[int]
) -> tuple[dict[int, tuple[str, ...]], dict[int, str]]:
    """addr2line -f -i -a: each address's function, then the functions it is inlined into."""
    text = subprocess.run(
        [addr2line, "-e", str(elf), "-f", "-i", "-a", *map(hex, addrs)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    chains: dict[int, list[str]] = {}
    lines: dict[int, str] = {}
    cur: list[str] = []
    addr = pos = 0
    for line in text.splitlines():
        if line.startswith("0x"):
            addr, pos = int(line, 16), 0
            cur = chains.setdefault(addr, [])
        else:  # a function's name, then where it is, in turn
            if pos % 2 == 0:
                cur.append(line)
            elif pos == 1:  # the innermost function's source line
                lines[addr] = Path(line.split(" ")[0]).name
            pos += 1
    return {a: tuple(c) for a, c in chains.items()}, lines


def profile(
    folder: Path, target: str = "rv32imc", opt: str = "O2", warmup: int = 3, audio: bool = False
) -> Profile:
    """One step of the export in `folder` after `warmup` steps from reset (pseudo-random int8
    inputs, as `rnn2c size`), counted per instruction; ``audio``: one `<name>_audio_features`
    call instead (the front end alone, on a frame of `rnn2c size`'s noise bursts)."""
    exp = S.read_export(folder)
    tgt = S.TARGETS[target]
    cc = S.find_toolchain(tgt)
    b = S.build(exp, dataclasses.replace(tgt, flags=(*tgt.flags, "-g")), opt, cc)
    emu = S.Emulator(b.elf, tgt.uc_cpu, count=False)
    hits: collections.Counter[int] = collections.Counter()
    xq, _, _ = S.make_inputs(exp.qmodel, None, 1, warmup + 1)
    ins = [S.BUF_IN + o for o in S.input_offsets(exp.qmodel.input_sizes)] or [S.BUF_IN]
    # hooked from the start: unicorn does not hook code it has already translated
    emu.uc.hook_add(emu.uc_mod.UC_HOOK_CODE, lambda uc, a, s, u: hits.update((a,)))
    emu.call(b.symbols[f"{exp.name}_reset"], S.BUF_STATE)
    if audio:
        if exp.qmodel.frontend is None:
            raise SystemExit(f"{folder}: the export has no audio front end (--audio)")
        fe = S.LogMel.from_json(exp.qmodel.frontend)
        pcm = S.noise_bursts(fe, warmup + 1, 0)
        for frame in S.frames(pcm, fe.window, fe.hop):
            hits.clear()
            emu.uc.mem_write(S.WHOLE_IN, frame.astype("<i2").tobytes())
            emu.call(b.symbols[f"{exp.name}_audio_features"], S.WHOLE_IN, S.WHOLE_OUT)
    for t in range(0 if audio else warmup + 1):
        hits.clear()
        emu.uc.mem_write(S.BUF_IN, xq[0, t].tobytes())
        emu.call(b.symbols[f"{exp.name}_step"], S.BUF_STATE, *ins, S.BUF_OUT)
    addr2line = str(Path(cc).with_name(Path(cc).name.replace("gcc", "addr2line")))
    with tempfile.TemporaryDirectory(prefix="rnn2c-profile-") as work:
        elf = Path(work) / "out.elf"
        elf.write_bytes(b.elf)
        chains, lines = inline_chains(elf, addr2line, sorted(hits))
    return Profile(exp.name, exp.qmodel.macs, sum(hits.values()), dict(hits), chains, lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, help="an export folder")
    ap.add_argument("--target", default="rv32imc", choices=sorted(S.TARGETS))
    ap.add_argument("--opt", default="O2", choices=S.OPT_LEVELS)
    ap.add_argument("--top", type=int, default=30, help="rows of each table")
    ap.add_argument("--audio", action="store_true", help="one frame's front end, not a step")
    ap.add_argument("--lines", action="store_true", help="also by source line")
    args = ap.parse_args()
    p = profile(args.folder, args.target, args.opt, audio=args.audio)
    print(f"{p.name} on {args.target} -{args.opt}: {p.total} instructions, {p.macs} MACs, "
          f"{p.total / p.macs:.3f} per MAC")  # fmt: skip
    tables = [("innermost function", 1), ("inline chain (3 innermost)", 3)]
    for title, depth in tables + ([("source line", 0)] if args.lines else []):
        print(f"\nby {title}:")
        for what, n in p.by(depth).most_common(args.top):
            print(f"{n:9d} {n / p.macs:7.3f}/MAC  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
