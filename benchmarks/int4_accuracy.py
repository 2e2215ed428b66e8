"""int4 weights without quantization-aware training: float vs int8 vs int4 accuracy of the C on
bundled classification sets (issue 25; QAT is later work).

For each set: train with `rnn2c train` defaults (seed 0; an existing run in --out is reused with
--reuse), export it twice (per-feature input quantization, as the run's EXPORT.txt says), with
the default int8 weights and with `--weights int4`, and verify each export's C on the test
split. Prints a Markdown table and writes int4_accuracy.json.

    nice -n 10 .venv/bin/python benchmarks/int4_accuracy.py --out build/int4acc \\
        --sets BasicMotions GunPoint

Never part of the test suite (each set trains a model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/int4acc", help="folder for runs, exports and JSON")
    ap.add_argument("--sets", nargs="+", required=True, help="bundled set names (uea:NAME)")
    ap.add_argument("--cell", default="gru", help="recurrent cell (default gru)")
    ap.add_argument("--reuse", action="store_true", help="keep runs that exist already")
    args = ap.parse_args()

    from rnn2c.emulator import verify
    from rnn2c.export import export_model
    from rnn2c.train.train import train_run

    out = Path(args.out)
    rows = []
    for name in args.sets:
        run = out / "runs" / name
        if not (args.reuse and (run / "metrics.json").is_file()):
            train_run(f"uea:{name}", run, cell=args.cell, verbose=0, force=True)
        row: dict = {"dataset": name}
        for weights in ("int8", "int4"):
            folder = out / "c" / f"{name}-{weights}"
            res = export_model(
                run / "model.keras",
                run / "calib.npz",
                folder,
                name="model",
                input_quant="per-feature",
                weights=weights,
            )
            rep = verify(run / "model.keras", folder, run / "test.npz")
            row["float_accuracy"] = rep.float_accuracy
            row[f"{weights}_accuracy"] = rep.int8_accuracy
            row[f"{weights}_weight_bytes"] = res.manifest["weight_bytes"]
            row[f"{weights}_bit_exact"] = rep.bit_exact
        print(f"[int4] {json.dumps(row)}", flush=True)
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    (out / "int4_accuracy.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| dataset | float acc | int8 C acc | int4 C acc | weight bytes int8 / int4 |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dataset']} | {100 * r['float_accuracy']:.2f}% | "
            f"{100 * r['int8_accuracy']:.2f}% | {100 * r['int4_accuracy']:.2f}% | "
            f"{r['int8_weight_bytes']} / {r['int4_weight_bytes']} |"
        )
    return 0 if all(r["int8_bit_exact"] and r["int4_bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
