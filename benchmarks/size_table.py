"""Flash, RAM and instructions per step on Cortex-M: the README's table, reproduced.

Builds three random-weight models (Keras seed 1; 6 input features, one recurrent layer,
`Dense(4, softmax)` head: GRU(32), LSTM(32), GRU(64)), exports them with the default flags on a
seeded normal calibration set (32 x 20 x 6), runs `rnn2c size` on each for Cortex-M0+, M3 and M4,
and prints one Markdown table.

    .venv/bin/python benchmarks/size_table.py --out build/size_table [--opt Os] [--models gru32]

Writes every report as JSON beside the exports (build/size_table/<model>-<target>-<opt>.json);
`--previous DIR` (the --out of a run on an earlier commit) adds that run's flash, flash over raw
parameters and instructions per MAC in parentheses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = {"gru32": ("GRU", 32), "lstm32": ("LSTM", 32), "gru64": ("GRU", 64)}
TARGETS = ("cortex-m0plus", "cortex-m3", "cortex-m4")
SHORT = {"cortex-m0plus": "M0+", "cortex-m3": "M3", "cortex-m4": "M4"}


def export(out: Path, name: str) -> Path:
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from rnn2c.export import export_model  # noqa: PLC0415

    cell, units = MODELS[name]
    calib = np.random.default_rng(0).normal(size=(32, 20, 6)).astype(np.float32)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((None, 6)),
            getattr(keras.layers, cell)(units),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    folder = out / name
    export_model(model, calib, folder, name=name)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/size_table", help="folder for exports and JSON")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--opt", default="O2", choices=("O2", "Os"))
    ap.add_argument("--previous", default=None, help="--out folder of an earlier run to compare")
    args = ap.parse_args()

    from rnn2c.emulator.size import measure  # noqa: PLC0415

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    before = "" if args.previous is None else " (before)"
    print(
        f"| model (MACs/step) | target | flash B{before} | raw params B | flash - raw B{before} "
        f"| RAM B = state + stack | instructions/step | per MAC{before} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for name in args.models:
        folder = export(out, name)
        for target in args.targets:
            r = measure(folder, target, args.opt)
            (out / f"{name}-{target}-{args.opt}.json").write_text(r.to_json())
            ok &= r.bit_exact
            flash, over = str(r.flash), str(r.flash_overhead)
            per_mac = f"{r.instructions_per_mac:.2f}"
            if args.previous is not None:
                old = Path(args.previous) / f"{name}-{target}-{args.opt}.json"
                if old.is_file():
                    p = json.loads(old.read_text())
                    flash += f" ({p['flash']})"
                    over += f" ({p['flash_overhead']})"
                    per_mac += f" ({p['instructions_per_mac']:.2f})"
            label = f"{MODELS[name][0]}({MODELS[name][1]}) ({r.macs_per_step})"
            opt = "" if args.opt == "O2" else f" -{args.opt}"
            print(
                f"| {label} | {SHORT[target]}{opt} | {flash} | {r.raw_parameters} | {over} "
                f"| {r.ram} = {r.state} + {r.stack} | {r.instructions_mean:,.0f} | {per_mac}"
                f"{'' if r.bit_exact else ' NOT bit-exact'} |",
                flush=True,
            )
    if not ok:
        print("some ARM outputs differ from the integer reference", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
