"""Flash, RAM, stack and exact instructions per MAC on Cortex-M for the breadth shapes.

Builds, with random weights (Keras seed 1) and a default export on 64 pseudo-random calibration
sequences, the keyword-spotting shape `Input(T, 40) -> Conv1D(32, 3, strides=2, causal, relu) ->
GRU(32) -> Dense(12, softmax)` (and with strides=1), and the Bidirectional GRU(32) tagger
`Input(T, 6) -> Bidirectional(GRU(32, return_sequences=True), concat | sum) -> Dense(4,
softmax)` (`--max-length 16`), then runs `rnn2c size DIR --target T --json ...` on the M4, M3
and M0+ (arm-none-eabi-gcc -O2, 4 sequences x 16 steps of pseudo-random int8 input, instructions
counted in unicorn) and prints a markdown table, with the targets below checked and printed
(exit 1 if one is missed; these targets used to be asserted in tests, where a compiler upgrade
would fail them without any change to rnn2c).

    .venv/bin/python benchmarks/cortex_m_shapes.py [--out build/cortex_m_shapes]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TARGETS = ("cortex-m4", "cortex-m3", "cortex-m0plus")
SHORT = {"cortex-m4": "M4", "cortex-m3": "M3", "cortex-m0plus": "M0+"}
KWS = "keyword spotting, Conv1D stride 2"
#: instructions per MAC, at most (arm-none-eabi-gcc 12.2 -O2 meets them): the speed issue's
#: targets for the keyword-spotting shape; for the Bidirectional taggers, the ceiling
#: tests/test_bidirectional.py asserted on the M4 (a compiler-dependent figure, not a contract)
PER_MAC = {
    KWS: {"cortex-m4": 2.0, "cortex-m3": 3.05, "cortex-m0plus": 6.0},
    "Bidirectional GRU(32) tagger, concat": dict.fromkeys(TARGETS, 8.0),
    "Bidirectional GRU(32) tagger, sum": dict.fromkeys(TARGETS, 8.0),
}


def stack_target(widest: int) -> int:
    """The speed issue's stack target: 256 B + 1 B per unit of the widest layer."""
    return 256 + widest


def models(keras) -> dict:  # noqa: ANN001
    L = keras.layers

    def kws(stride: int) -> keras.Model:
        keras.utils.set_random_seed(1)
        return keras.Sequential(
            [
                keras.Input((None, 40)),
                L.Conv1D(32, 3, strides=stride, padding="causal", activation="relu"),
                L.GRU(32),
                L.Dense(12, activation="softmax"),
            ]
        )

    def tagger(merge: str) -> keras.Model:
        keras.utils.set_random_seed(1)
        return keras.Sequential(
            [
                keras.Input((None, 6)),
                L.Bidirectional(L.GRU(32, return_sequences=True), merge_mode=merge),
                L.Dense(4, activation="softmax"),
            ]
        )

    return {
        KWS: (kws(2), 40, None),
        "keyword spotting, Conv1D stride 1": (kws(1), 40, None),
        "Bidirectional GRU(32) tagger, concat": (tagger("concat"), 6, 16),
        "Bidirectional GRU(32) tagger, sum": (tagger("sum"), 6, 16),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/cortex_m_shapes")
    args = ap.parse_args()
    import keras  # noqa: PLC0415

    from rnn2c.cli import main as rnn2c  # noqa: PLC0415
    from rnn2c.export import export_model  # noqa: PLC0415

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        "| model | target | flash B | raw params B | RAM B = state + stack | stack target B "
        "| instructions/step | MACs/step | per MAC (target) | bit-exact |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    missed: list[str] = []
    for i, (label, (model, features, max_length)) in enumerate(models(keras).items()):
        rng = np.random.default_rng(0)
        calib = rng.normal(size=(64, 24, features)).astype(np.float32)
        folder = out / f"m{i}"
        export_model(model, calib, folder, name="m", max_length=max_length)
        widest = max(int(layer.output.shape[-1]) for layer in model.layers)
        widest = max(widest, features)
        for target in TARGETS:
            report = out / f"m{i}_{target}.json"
            argv = ["size", str(folder), "--target", target, "--json", str(report)]
            if rnn2c(argv) != 0:
                raise SystemExit(f"rnn2c size failed on {label} / {target}")
            r = json.loads(report.read_text())
            per_mac = PER_MAC.get(label, {}).get(target)
            where = f"{label} / {SHORT[target]}"
            if r["stack"] > stack_target(widest):
                missed.append(f"{where}: stack {r['stack']} B > {stack_target(widest)} B")
            if per_mac is not None and r["instructions_per_mac"] > per_mac:
                missed.append(f"{where}: {r['instructions_per_mac']:.2f} per MAC > {per_mac}")
            if not r["bit_exact"]:
                missed.append(f"{where}: not bit-exact")
            rows.append(
                f"| {label} | {SHORT[target]} | {r['flash']:,} | {r['raw_parameters']:,} | "
                f"{r['ram']} = {r['state']} + {r['stack']} | {stack_target(widest)} | "
                f"{r['instructions_mean']:,.0f} | {r['macs_per_step']:,} | "
                f"{r['instructions_per_mac']:.2f}"
                f"{'' if per_mac is None else f' (<= {per_mac:g})'} | "
                f"{'yes' if r['bit_exact'] else 'NO'} |"
            )
    print("\n".join(rows))
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
