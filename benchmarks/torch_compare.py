"""PyTorch models (through ONNX) beside the same models trained in Keras: float vs int8 C
accuracy, agreement, max error, flash, RAM and instructions per MAC on Cortex-M4 (issue 23).

The models: a GRU and an LSTM classifier (32 units) and a per-step GRU tagger on uea:BasicMotions,
made by benchmarks/torch_models.py (torch) and by `rnn2c train` (Keras, which this script runs
when its run folder is missing). Each goes through the CLI, exactly as a user would:

    rnn2c export MODEL --calib calib.npz --out DIR --input-quant per-feature
    rnn2c verify MODEL DIR --data test.npz --json verify.json
    rnn2c firmware DIR --board mps2-an386 --data test.npz --sequences N --out FW --run
    rnn2c size DIR --target cortex-m4 --data test.npz --json size.json

then one table (verify's float model: Keras for a .keras model, onnxruntime on the same file
for an .onnx model). The legacy exporter's file of the GRU is checked to read as the same float
IR as the dynamo exporter's.

    .venv/bin/python benchmarks/torch_data.py --out build/torch
    /work/torchenv/bin/python benchmarks/torch_models.py --data build/torch --out build/torch
    .venv/bin/python benchmarks/torch_compare.py --torch build/torch --keras build/keras \\
        --out build/compare

Never part of the test suite: the Keras training takes minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

BIN = Path(sys.executable).parent
#: model -> (row label, the `rnn2c train` arguments of its Keras twin)
MODELS = {
    "gru": ("GRU classifier", ["--cell", "gru"]),
    "lstm": ("LSTM classifier", ["--cell", "lstm"]),
    "tag_gru": ("GRU tagger (per step)", ["--cell", "gru", "--task", "tag"]),
}
DATASET = "uea:BasicMotions"
BOARD, TARGET = "mps2-an386", "cortex-m4"


def run(cmd: list[str], log: Path) -> subprocess.CompletedProcess:
    """Run an rnn2c command, echo it, keep its output in log; the process for the caller."""
    print("$ " + shlex.join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    log.write_text(f"$ {shlex.join(cmd)}\n{p.stdout}{p.stderr}")
    return p


def must(cmd: list[str], log: Path) -> subprocess.CompletedProcess:
    p = run(cmd, log)
    if p.returncode != 0:
        sys.exit(f"failed (exit {p.returncode}), see {log}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def rnn2c(*args: str | Path) -> list[str]:
    return [str(BIN / "rnn2c"), *map(str, args)]


# ---------------------------------------------------------------- one model


def measure(label: str, model: Path, folder: Path, work: Path) -> dict[str, Any]:
    """export, verify, firmware --run, size of one model whose calib.npz and test.npz sit in
    folder; the row of the table."""
    work.mkdir(parents=True, exist_ok=True)
    calib, test, cdir, fw = folder / "calib.npz", folder / "test.npz", work / "c", work / "fw"
    onnx = model.suffix == ".onnx"
    must(
        rnn2c("export", model, "--calib", calib, "--out", cdir, "--input-quant", "per-feature"),
        work / "export.log",
    )
    vjson = work / "verify.json"
    vjson.unlink(missing_ok=True)
    p = run(rnn2c("verify", model, cdir, "--data", test, "--json", vjson), work / "verify.log")
    if not vjson.is_file():
        sys.exit(f"verify failed, see {work / 'verify.log'}:\n{p.stdout}{p.stderr}")
    v = json.loads(vjson.read_text())
    with np.load(test) as z:
        n = len(z["x"])
    board_args = ["--board", BOARD, "--data", test, "--sequences", n, "--timeout", 600]
    p = run(rnn2c("firmware", cdir, *board_args, "--out", fw, "--run"), work / "firmware.log")
    board = "bit-exact" if p.returncode == 0 and "PASS" in p.stdout else "FAIL"
    sjson = work / "size.json"
    must(
        rnn2c("size", cdir, "--target", TARGET, "--data", test, "--json", sjson), work / "size.log"
    )
    s = json.loads(sjson.read_text())
    row = {"label": label, "model": str(model), "verify": v, "board": board, "size": s}
    facts = folder / "torch.json"  # torch's own float accuracy (torch_models.py)
    if onnx and facts.is_file():
        row["torch_float_accuracy"] = json.loads(facts.read_text())["torch_float_test_accuracy"]
    return row


def keras_run(name: str, runs: Path) -> Path:
    """The Keras twin's run folder, trained when missing."""
    run_dir = runs / name
    if not (run_dir / "model.keras").is_file():
        runs.mkdir(parents=True, exist_ok=True)
        args = ["train", "--dataset", DATASET, *MODELS[name][1], "--units", "32"]
        must(rnn2c(*args, "--out", run_dir, "--quiet"), runs / f"{name}.train.log")
    return run_dir


def same_model(dynamo: Path, legacy: Path) -> None:
    """The legacy exporter's file reads as the same float IR as the dynamo exporter's (so the
    same C): said, or the script stops."""
    from rnn2c.export.api import model_fingerprint
    from rnn2c.export.onnx_reader import read_onnx

    a, b = (model_fingerprint(read_onnx(p)) for p in (dynamo, legacy))
    if a != b:
        sys.exit(f"{legacy} and {dynamo} read as different models")
    print(f"{legacy}: the same float IR as {dynamo.name} (fingerprint {a[:12]})")


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | framework | float acc % | int8 C acc % | agreement % | max err | "
        "C == ref (host / board) | flash B | RAM B | instr/MAC M4 |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        v, s = r["verify"], r["size"]
        lines.append(
            f"| {r['label']} | {r['framework']} | {pct(v['float_accuracy'])} | "
            f"{pct(v['int8_accuracy'])} | {pct(v['agreement'])} | {v['max_abs_error']:.4f} | "
            f"{'bit-exact' if v['bit_exact'] else 'NO'} / {r['board']} | {s['flash']} | "
            f"{s['ram']} | {s['instructions_per_mac']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--torch", type=Path, required=True, help="torch_models.py's --out")
    ap.add_argument("--keras", type=Path, required=True, help="the Keras run folders (made here)")
    ap.add_argument("--out", type=Path, required=True, help="work folder: exports, firmware")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args()
    rows = []
    for name in args.models:
        label = MODELS[name][0]
        tdir = args.torch / name
        if not (tdir / "model.onnx").is_file():
            sys.exit(f"{tdir / 'model.onnx'} is missing; run benchmarks/torch_models.py first")
        kdir = keras_run(name, args.keras)
        variants = [("Keras", kdir / "model.keras", kdir, f"keras_{name}")]
        variants.append(("PyTorch (ONNX, dynamo)", tdir / "model.onnx", tdir, f"torch_{name}"))
        if (tdir / "model.leg.onnx").is_file():
            same_model(tdir / "model.onnx", tdir / "model.leg.onnx")
        for framework, model, folder, work in variants:
            row = measure(label, model, folder, args.out / work)
            row["framework"] = framework
            rows.append(row)
    text = table(rows)
    print(text)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
