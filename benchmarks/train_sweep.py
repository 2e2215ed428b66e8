"""`rnn2c train` defaults on every classification set bundled with aeon, against 1-NN DTW.

For each set: train with `rnn2c train` defaults (seed 0), export to int8 C (per-feature input
quantization, as the run's EXPORT.txt says), verify the C on the test split, and, in the same
run, fit aeon's 1-nearest-neighbour DTW classifier on the same split (the yardstick is computed,
not remembered). Writes a Markdown table (README, "Training defaults") and sweep.json.

    .venv/bin/python benchmarks/train_sweep.py --out build/sweep
    .venv/bin/python benchmarks/train_sweep.py --sets GunPoint ArrowHead   # a subset

Never part of the test suite: the whole sweep takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

#: aeon's test fixture set; not a real problem
SKIP = ("UnitTest",)
GOAL_FLOAT_VS_DTW = 0.05  # float accuracy within 5 points of 1-NN DTW
GOAL_INT8_VS_FLOAT = 0.01  # int8 C accuracy within 1 point of float


def bundled_sets() -> list[str]:
    """The bundled classification sets (a TRAIN/TEST .ts pair with class labels)."""
    from rnn2c.train.data import DatasetError, available_uea_datasets, load_dataset

    names = []
    for name in available_uea_datasets():
        if name in SKIP:
            continue
        try:
            load_dataset(f"uea:{name}")
        except DatasetError:  # regression sets (Covid3Month, CardanoSentiment)
            continue
        names.append(name)
    return names


def dtw_1nn(name: str) -> tuple[float, float]:
    """Accuracy and seconds of aeon's 1-NN DTW on the set's own train/test split."""
    import numpy as np
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    from rnn2c.train.data import load_dataset

    ds = load_dataset(f"uea:{name}")

    def collection(x: np.ndarray, lengths: np.ndarray) -> list[np.ndarray] | np.ndarray:
        seqs = [
            np.ascontiguousarray(s[:n].T, dtype=np.float64) for s, n in zip(x, lengths, strict=True)
        ]
        if len({s.shape[1] for s in seqs}) == 1:
            return np.stack(seqs)  # [N, channels, T]
        return seqs  # unequal lengths: a list of [channels, T_i]

    t0 = time.perf_counter()
    clf = KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1)
    clf.fit(collection(ds.x_train, ds.lengths_train), ds.y_train)
    pred = clf.predict(collection(ds.x_test, ds.lengths_test))
    return float(np.mean(pred == ds.y_test)), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/sweep", help="folder for runs, exports and JSON")
    ap.add_argument("--sets", nargs="*", default=None, help="a subset (default: every set)")
    ap.add_argument("--cell", default="gru", help="recurrent cell (default gru)")
    ap.add_argument("--reuse", action="store_true", help="keep runs that exist already")
    args = ap.parse_args()

    from rnn2c.emulator import verify
    from rnn2c.export import export_model
    from rnn2c.train.train import train_run

    out = Path(args.out)
    sets = args.sets or bundled_sets()
    json_path = out / "sweep.json"
    rows: dict[str, dict] = {}
    if json_path.is_file():
        rows = {r["dataset"]: r for r in json.loads(json_path.read_text())}
    for name in sets:
        run = out / "runs" / name
        print(f"[sweep] {name}: training ...", flush=True)
        if not (args.reuse and (run / "metrics.json").is_file()):
            train_run(
                f"uea:{name}",
                run,
                cell=args.cell,
                verbose=0,
                force=True,
                command=f"rnn2c train --dataset uea:{name} --cell {args.cell}",
            )
        m = json.loads((run / "metrics.json").read_text())
        res = export_model(
            run / "model.keras",
            run / "calib.npz",
            out / "c" / name,
            name="model",
            input_quant="per-feature",
        )
        rep = verify(run / "model.keras", out / "c" / name, run / "test.npz")
        print(
            f"[sweep] {name}: float {rep.float_accuracy:.4f} int8 {rep.int8_accuracy:.4f}; "
            "1-NN DTW ...",
            flush=True,
        )
        dtw_acc, dtw_s = dtw_1nn(name)
        row = {
            "dataset": name,
            "train": m["num_train"],
            "test": m["num_test"],
            "length": int(m.get("raw_max_length", int(m["max_length"]) * int(m["frame"]))),
            "features": m["raw_features"],
            "classes": len(m["class_names"]),
            "frame": m["frame"],
            "input_transform": m.get("input_transform"),
            "float_accuracy": rep.float_accuracy,
            "int8_accuracy": rep.int8_accuracy,
            "dtw_accuracy": dtw_acc,
            "dtw_seconds": round(dtw_s, 1),
            "train_seconds": m["train_seconds"],
            "epochs": m["epochs_run"],
            "weight_bytes": res.manifest["weight_bytes"],
            "state_bytes": res.manifest["state_bytes"],
            "bit_exact": rep.bit_exact,
            "warnings": m["warnings"],
        }
        rows[name] = row
        print(f"[sweep] {name}: {json.dumps(row)}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(list(rows.values()), indent=2) + "\n")
    from rnn2c.train.data import load_dataset

    for r in rows.values():  # the raw length (runs of older versions recorded framed lengths)
        r["length"] = load_dataset(f"uea:{r['dataset']}").max_length
    json_path.write_text(json.dumps(list(rows.values()), indent=2) + "\n")
    print()
    print(table(list(rows.values())))  # every set measured so far, this run or earlier
    return 0


def _input(r: dict) -> str:
    parts = [f"frame {r['frame']}"] if r["frame"] > 1 else []
    if r.get("input_transform"):
        parts.append(str(r["input_transform"]))
    return ", ".join(parts) or "as is"


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset (train / test, steps x features, classes) | input | float acc | int8 C acc "
        "| 1-NN DTW | float - DTW | int8 - float | train s (epochs) | weight / state bytes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gap = r["float_accuracy"] - r["dtw_accuracy"]
        q = r["int8_accuracy"] - r["float_accuracy"]
        ok_gap = "" if gap >= -GOAL_FLOAT_VS_DTW else " **miss**"
        ok_q = "" if abs(q) <= GOAL_INT8_VS_FLOAT else " **miss**"
        lines.append(
            f"| {r['dataset']} ({r['train']} / {r['test']}, {r['length']} x {r['features']}, "
            f"{r['classes']}) | {_input(r)} | {100 * r['float_accuracy']:.2f}% | "
            f"{100 * r['int8_accuracy']:.2f}% | {100 * r['dtw_accuracy']:.2f}% | "
            f"{100 * gap:+.1f}{ok_gap} | {100 * q:+.1f}{ok_q} | {r['train_seconds']:.0f} "
            f"({r['epochs']}) | {r['weight_bytes']} / {r['state_bytes']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
