"""int8 fidelity on real recorded data: float Keras vs the generated C, per quantization option.

For each dataset and cell: train with `rnn2c train` defaults (skipped when the run folder
exists), then export with every calibration method and activation type, verify on the held-out
test split, and run the test sequences back to back as one 10,000+ step stream (drift check).

    .venv/bin/python benchmarks/fidelity.py --out build/fidelity

Prints a Markdown table (the README's) and writes build/fidelity/fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATASETS = ("uea:BasicMotions", "uea:JapaneseVowels")
CELLS = ("gru", "lstm")
#: (calibration, activations, input quantization)
OPTIONS = (
    ("minmax", "int8", "per-tensor"),
    ("percentile", "int8", "per-tensor"),
    ("mse", "int8", "per-tensor"),
    ("minmax", "int16", "per-tensor"),
    ("minmax", "int8", "per-feature"),
    ("mse", "int16", "per-feature"),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/fidelity", help="folder for runs, exports and JSON")
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--cells", nargs="*", default=list(CELLS))
    ap.add_argument("--stream", type=int, default=10_000, help="steps of the drift stream")
    args = ap.parse_args()

    from rnn2c.emulator import verify
    from rnn2c.export import export_model
    from rnn2c.export.data import load_sequences
    from rnn2c.train.train import train_run

    out = Path(args.out)
    rows = []
    for spec in args.datasets:
        for cell in args.cells:
            tag = f"{spec.split(':')[-1]}_{cell}"
            run = out / "runs" / tag
            if not (run / "metrics.json").is_file():
                print(f"[fidelity] training {tag} ...", flush=True)
                t0 = time.time()
                train_run(spec, run, cell=cell, verbose=0)
                print(f"[fidelity] trained {tag} in {time.time() - t0:.0f} s", flush=True)
            metrics = json.loads((run / "metrics.json").read_text())
            test = load_sequences(run / "test.npz", "--data")
            for calibration, activations, input_quant in OPTIONS:
                c_dir = out / "c" / f"{tag}_{calibration}_{activations}_{input_quant}"
                res = export_model(
                    run / "model.keras",
                    run / "calib.npz",
                    c_dir,
                    name="model",
                    calibration=calibration,
                    activations=activations,
                    input_quant=input_quant,
                )
                rep = verify(run / "model.keras", c_dir, test, stream_steps=args.stream)
                s = rep.stream
                assert s is not None
                row = {
                    "dataset": spec,
                    "cell": cell,
                    "units": metrics.get("units"),
                    "calibration": calibration,
                    "activations": activations,
                    "input_quant": input_quant,
                    "float_accuracy": rep.float_accuracy,
                    "int8_accuracy": rep.int8_accuracy,
                    "agreement": rep.agreement,
                    "max_abs_error": rep.max_abs_error,
                    "mean_abs_error": rep.mean_abs_error,
                    "bit_exact": rep.bit_exact and s.bit_exact,
                    "stream_steps": s.steps,
                    "stream_mean_error_first": s.mean_error_first,
                    "stream_mean_error_last": s.mean_error_last,
                    "stream_agreement": s.agreement,
                    "state_bytes": res.manifest["state_bytes"],
                    "weight_bytes": res.manifest["weight_bytes"],
                    "macs_per_step": res.manifest["macs_per_step"],
                }
                rows.append(row)
                print(
                    f"[fidelity] {tag} {calibration}/{activations}/{input_quant}: C acc "
                    f"{100 * rep.int8_accuracy:.2f}% agreement {100 * rep.agreement:.2f}%",
                    flush=True,
                )
    (out / "fidelity.json").write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(
        "| dataset | cell | calibration | states | input | float acc | C acc | agreement | "
        "max err | mean err | stream mean err first / last (steps) | bit-exact |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            r["dataset"].split(":")[-1],
            f"{r['cell'].upper()}({r['units']})",
            r["calibration"],
            r["activations"],
            r["input_quant"],
            f"{100 * r['float_accuracy']:.2f}%",
            f"{100 * r['int8_accuracy']:.2f}%",
            f"{100 * r['agreement']:.2f}%",
            f"{r['max_abs_error']:.4f}",
            f"{r['mean_abs_error']:.5f}",
            f"{r['stream_mean_error_first']:.5f} / {r['stream_mean_error_last']:.5f}"
            f" ({r['stream_steps']})",
            "yes" if r["bit_exact"] else "NO",
        ]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
