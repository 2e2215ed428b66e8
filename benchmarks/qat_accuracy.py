"""Quantization-aware training on the bundled classification sets: what `rnn2c train --qat`
buys over post-training quantization, int8 and int4 (issue 25).

For each set: `rnn2c train` defaults (seed 0) with `--qat --weights W`, which trains the same
model as without --qat, then fine-tunes it on the export's W weight grid and writes the test
accuracy of the float model and of the integer model its export runs (bit-exact with the C)
before and after (metrics.json "qat"); then the run's EXPORT.txt export is made and verified in
C, whose accuracy must equal the integer model's. Prints a Markdown table and writes
qat_accuracy.json.

    nice -n 10 .venv/bin/python benchmarks/qat_accuracy.py --out build/qatacc --weights int4 \\
        --sets BasicMotions GunPoint

Never part of the test suite (each set trains a model).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def one_set(name: str, out: Path, weights: str, reuse: bool) -> dict:
    """Train (or reuse) the --qat run of one set, export it as its EXPORT.txt says, verify."""
    from rnn2c.cli import main as cli
    from rnn2c.emulator import verify
    from rnn2c.train.train import train_run

    run = out / "runs" / f"{name}-{weights}"
    t0 = time.perf_counter()
    if not (reuse and (run / "metrics.json").is_file()):
        train_run(f"uea:{name}", run, qat=True, weights=weights, verbose=0, force=True)
    seconds = time.perf_counter() - t0
    metrics = json.loads((run / "metrics.json").read_text())
    line = next(
        ln for ln in (run / "EXPORT.txt").read_text().splitlines() if ln.startswith("rnn2c export")
    )
    argv = shlex.split(line)[1:]
    if cli(argv) != 0:
        raise SystemExit(f"{name}: export failed: {line}")
    c = Path(argv[argv.index("--out") + 1])
    rep = verify(run / "model.keras", c, run / "test.npz")
    test = metrics["qat"]["test"]
    return {
        "dataset": name,
        "weights": weights,
        "float": test["float_accuracy_before"],
        "int8_ptq": test.get(
            "int8_accuracy_before", test["int_accuracy_before"] if weights == "int8" else None
        ),
        "ptq": test["int_accuracy_before"],
        "qat": test["int_accuracy_after"],
        "qat_float": test["float_accuracy_after"],
        "c_accuracy": rep.int8_accuracy,
        "bit_exact": rep.bit_exact,
        "qat_epochs": metrics["qat"]["epochs_run"],
        "best_epoch": metrics["qat"]["best_epoch"],  # 0: the post-training weights kept
        "kept": metrics["qat"].get("selection", {}).get("kept"),
        "max_error": metrics["qat"]["test"]["max_error"],
        "max_error_of_range": metrics["qat"]["test"]["max_error_of_range"],
        # the fine-tuning's forward vs the C on the test split: weights alone on the grid /
        # activations too (max and mean |output - C output|), from the saved model
        "forward_vs_c": forward(run, argv),
        "seconds": round(seconds, 1),
    }


def forward(run: Path, argv: list[str]) -> dict:
    """rnn2c.qat.forward_vs_c of a run's saved model on its test split, with the quantization
    options of its export line."""
    import keras
    import numpy as np

    from rnn2c import qat

    def flag(name: str, default: str) -> str:
        return argv[argv.index(name) + 1] if name in argv else default

    opts = {
        "method": flag("--calibration", "minmax"),
        "input_quant": flag("--input-quant", "per-tensor"),
        "activations": flag("--activations", "int8"),
    }
    weights = flag("--weights", "int8")
    model = keras.models.load_model(run / "model.keras")
    cal, test = np.load(run / "calib.npz"), np.load(run / "test.npz")
    cx, cl = cal["x"], cal["lengths"] if "lengths" in cal else None
    x, lengths = test["x"], test["lengths"] if "lengths" in test else None
    found = qat.compare(model, x, lengths, cx, cl, weights=weights, **opts)
    act = qat.activation_twin(model, cx, weights, (), cl, **opts)
    assert found is not None and act is not None
    return qat.forward_vs_c(act, found, x, lengths)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/qatacc", help="folder for runs, exports and JSON")
    ap.add_argument("--sets", nargs="+", required=True, help="bundled set names (uea:NAME)")
    ap.add_argument("--weights", default="int4", choices=("int8", "int4"))
    ap.add_argument("--reuse", action="store_true", help="keep runs that exist already")
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for name in args.sets:
        row = one_set(name, out, args.weights, args.reuse)
        print(f"[qat] {json.dumps(row)}", flush=True)
        rows.append(row)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"qat_accuracy_{args.weights}.json").write_text(json.dumps(rows, indent=2) + "\n")
    goal = 0.015 if args.weights == "int4" else 0.005
    w = args.weights
    ptq = [f"{w} C (PTQ)"] if w == "int8" else ["int8 C (PTQ)", f"{w} C (PTQ)"]
    head = ["dataset", "float", *ptq, f"{w} C (QAT)", "QAT - float", "C == integer model"]
    head += ["forward vs C, max (weights / activations)", "mean (weights / activations)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ok = True
    for r in rows:
        d = r["qat"] - r["float"]
        miss = abs(d) > goal and d < 0
        ok = ok and not miss and r["bit_exact"] and abs(r["c_accuracy"] - r["qat"]) < 1e-9
        ptqs = [r["ptq"]] if w == "int8" else [r["int8_ptq"], r["ptq"]]
        cells = [r["dataset"], *(f"{100 * v:.2f}%" for v in (r["float"], *ptqs, r["qat"]))]
        cells += [f"{100 * d:+.1f}{' **miss**' if miss else ''}", "yes" if r["bit_exact"] else "NO"]
        fw = r["forward_vs_c"]
        cells += [f"{fw['weights_only']:.3f} / {fw['activations']:.3f}"]
        cells += [f"{fw['weights_only_mean']:.4f} / {fw['activations_mean']:.4f}"]
        print("| " + " | ".join(cells) + " |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
