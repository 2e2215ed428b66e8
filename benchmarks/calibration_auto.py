"""--calibration auto against the fixed methods on a battery of small trained random models.

36 configurations: SimpleRNN, GRU (reset_after True and False), LSTM and two stacks, each with a
per-step and a last-step head, for regression (linear head), classification (softmax head) and
regression through a relu Dense(16) (one more calibrated range); per-tensor and per-feature input
alternate. Each is trained for a few epochs on synthetic sequences (4 features of different
scales, AR(1) with heavy-tailed noise, Student t with 4 d.o.f., or with --noise gauss Gaussian
noise; targets from running means), then
quantized with every fixed method and with auto (calibration set: 200 sequences, as many as
`rnn2c train` writes to calib.npz; --calib-size to change it) and its
integer reference (export/reference.py, the C bit for bit) compared with float Keras on 256 held-out
sequences: at every compared step (every step of a per-step head, the last of a last-step head)
the largest |int8 - float| over the outputs relative to the float output range; the worst
step and the 99.9th percentile per model and method.

Targets (issue 25): auto's worst step and 99.9th percentile within the best fixed method's
+5 % on every model, and below minmax's on the median model.

    nice -n 10 .venv/bin/python benchmarks/calibration_auto.py --out build/calib_auto
    nice -n 10 .venv/bin/python benchmarks/calibration_auto.py --out build/calib_auto --noise gauss

Prints a Markdown table and the targets, writes <out>/calibration_auto_<noise>.json; the trained
models are kept in <out>/models-<noise>/ and reused by the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from models import Config, build  # noqa: E402
from rnn2c.export import kinds  # noqa: E402
from rnn2c.export.calib_auto import AUTO, quantize_auto, score_of, step_errors  # noqa: E402
from rnn2c.export.quant_rules import CALIBRATION_METHODS  # noqa: E402
from rnn2c.export.quantize import quantize_model  # noqa: E402

#: (label, cells, reset_after per cell)
CELLS = (
    ("rnn", ["rnn"], [True]),
    ("gru", ["gru"], [True]),
    ("gru-rb", ["gru"], [False]),
    ("lstm", ["lstm"], [True]),
    ("lstm>gru", ["lstm", "gru"], [True, True]),
    ("gru-rb>rnn", ["gru", "rnn"], [False, True]),
)
#: (task, heads)
HEADS = (
    ("regress", [(2, "linear")]),
    ("classify", [(3, "softmax")]),
    ("regress-relu", [(16, "relu"), (2, "linear")]),
)
FEATURES, STEPS = 4, 32
SCALES = np.array([1.0, 2.0, 0.5, 1.5])
TOLERANCE = 1.05


def sequences(n: int, seed: int, noise_kind: str = "t4") -> np.ndarray:
    """AR(1) features of different scales with heavy-tailed (t4: Student t, 4 d.o.f.) or
    Gaussian (gauss) noise."""
    rng = np.random.default_rng(seed)
    if noise_kind == "t4":
        noise = rng.standard_t(4, size=(n, STEPS, FEATURES)) * 0.3
    else:
        noise = rng.normal(size=(n, STEPS, FEATURES)) * 0.4
    x = np.zeros_like(noise)
    for t in range(STEPS):
        x[:, t] = (0.8 * x[:, t - 1] if t else 0.0) + noise[:, t]
    return (x * SCALES).astype(np.float32)


def targets(x: np.ndarray, task: str, per_step: bool) -> np.ndarray:
    """Running means of the (unscaled) features through fixed mixes: two regression outputs or
    one of three classes, at every step or the last."""
    z = np.cumsum(x / SCALES, axis=1) / np.arange(1, STEPS + 1)[None, :, None]
    mix = np.array([[1.0, -0.5, 0.3], [0.5, 1.0, -0.7], [-0.8, 0.2, 1.0], [0.3, 0.6, 0.4]])
    y = z @ mix  # [N, T, 3]
    if task == "classify":
        y = np.eye(3)[np.argmax(y, axis=-1)]
    else:
        y = np.tanh(y[..., :2]) + 0.2 * y[..., :2]
    return (y if per_step else y[:, -1]).astype(np.float32)


def configurations() -> list[dict]:
    out = []
    for i, (label, cells, reset_after) in enumerate(CELLS):
        for j, (task, heads) in enumerate(HEADS):
            for per_step in (True, False):
                k = len(out)
                out.append(
                    {
                        "name": f"{label}/{task}/{'step' if per_step else 'last'}",
                        "seed": 100 + k,
                        "cells": cells,
                        "reset_after": reset_after,
                        "task": task,
                        "heads": heads,
                        "per_step": per_step,
                        "units": [12 + 4 * ((i + j) % 3)] * len(cells),
                        "input_quant": ("per-tensor", "per-feature")[(k // 2 + i) % 2],
                    }
                )
    return out


def train(c: dict, epochs: int, noise_kind: str) -> object:
    import keras  # noqa: PLC0415

    cfg = Config(
        seed=c["seed"],
        features=FEATURES,
        steps=STEPS,
        cells=c["cells"],
        units=c["units"],
        reset_after=c["reset_after"],
        use_bias=[True] * len(c["cells"]),
        last_return_sequences=c["per_step"],
        heads=c["heads"],
    )
    model = build(cfg)
    x = sequences(1024, c["seed"], noise_kind)
    y = targets(x, c["task"], c["per_step"])
    loss = "categorical_crossentropy" if c["task"] == "classify" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def float_outputs(model: object, x: np.ndarray) -> np.ndarray:
    """The float model's outputs [N, STEPS, k]; a last-step head's at the last step only."""
    y = np.asarray(model.predict(x, verbose=0), dtype=np.float64)  # type: ignore[attr-defined]
    if y.ndim == 2:
        full = np.zeros((x.shape[0], STEPS, y.shape[-1]))
        full[:, -1] = y
        y = full
    return y


def evaluate(model: object, c: dict, calib: np.ndarray, test: np.ndarray) -> dict:
    """Quantize with every fixed method and auto; the test errors of each, auto's choices."""
    _, _, ir = kinds.read(model)
    y_float = float_outputs(model, test)
    lengths = np.full(test.shape[0], STEPS)
    row: dict = {"name": c["name"], "input_quant": c["input_quant"]}
    for method in (*CALIBRATION_METHODS, AUTO):
        t0 = time.perf_counter()
        if method == AUTO:
            res = quantize_auto(ir, calib, None, input_quant=c["input_quant"])
            q = res.qmodel
            row["choices"] = {ch.name: ch.method for ch in res.choices}
            row["auto_start"] = res.start
        else:
            q = quantize_model(ir, calib, None, method, input_quant=c["input_quant"])
        seconds = time.perf_counter() - t0
        s = score_of(step_errors(q, q.quantize_input(test), lengths, y_float))
        row[method] = {"worst": s.worst, "p999": s.p999, "seconds": seconds}
    return row


def over(rows: list[dict], method: str) -> list[str]:
    """Where method's worst step or 99.9th percentile is above the best fixed method's +5 %."""
    out = []
    for r in rows:
        for m in ("worst", "p999"):
            best = min(r[k][m] for k in CALIBRATION_METHODS)
            if r[method][m] > TOLERANCE * best + 1e-12:
                out.append(f"{r['name']} {m}: {method} {r[method][m]:.4f} > 1.05 x {best:.4f}")
    return out


def verdict(rows: list[dict]) -> dict:
    fails = over(rows, AUTO)
    ratio = {
        m: float(np.median([r[AUTO][m] / max(r["minmax"][m], 1e-12) for r in rows]))
        for m in ("worst", "p999")
    }
    median = {
        k: {m: float(np.median([r[k][m] for r in rows])) for m in ("worst", "p999")}
        for k in (*CALIBRATION_METHODS, AUTO)
    }
    return {
        "models": len(rows),
        "within_best_fixed_plus_5pct": not fails,
        "failures": fails,
        "models_over": {
            k: len({f.split(" ")[0] for f in over(rows, k)}) for k in (*CALIBRATION_METHODS, AUTO)
        },
        "median_ratio_auto_to_minmax": ratio,
        "median_error": median,
        "better_than_minmax_on_median": all(
            median[AUTO][m] < median["minmax"][m] for m in median[AUTO]
        ),
    }


def table(rows: list[dict]) -> str:
    methods = (*CALIBRATION_METHODS, AUTO)
    head = (
        "| model | input | "
        + " | ".join(f"{m} worst / p99.9 %" for m in methods)
        + " | auto's choices |"
    )
    lines = [head, "|" + "---|" * (len(methods) + 3)]
    for r in rows:
        cells = [f"{100 * r[m]['worst']:.2f} / {100 * r[m]['p999']:.2f}" for m in methods]
        choices = ", ".join(f"{k} {v}" for k, v in r["choices"].items())
        lines.append(
            f"| {r['name']} | {r['input_quant']} | " + " | ".join(cells) + f" | {choices} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/calib_auto", help="folder for the JSON")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--limit", type=int, default=None, help="the first N configurations only")
    ap.add_argument(
        "--calib-size",
        type=int,
        default=200,
        help="calibration sequences (default 200: rnn2c train's calib_size)",
    )
    ap.add_argument(
        "--noise", default="t4", choices=("t4", "gauss"), help="the sequences' noise (default t4)"
    )
    args = ap.parse_args()
    import keras  # noqa: PLC0415

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    calib_all = sequences(args.calib_size, 7, args.noise)
    test = sequences(256, 8, args.noise)
    rows = []
    for c in configurations()[: args.limit]:
        t0 = time.time()
        path = (
            out
            / f"models-{args.noise}"
            / (c["name"].replace("/", "_").replace(">", "-") + ".keras")
        )
        if path.is_file():  # trained by an earlier run
            model = keras.models.load_model(path)
        else:
            model = train(c, args.epochs, args.noise)
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)  # type: ignore[attr-defined]
        row = evaluate(model, c, calib_all, test)
        rows.append(row)
        print(
            f"[calib-auto] {c['name']:<28} {c['input_quant']:<11} "
            + " ".join(
                f"{m} {100 * row[m]['worst']:.2f}/{100 * row[m]['p999']:.2f}"
                for m in (*CALIBRATION_METHODS, AUTO)
            )
            + f"  ({time.time() - t0:.0f} s)",
            flush=True,
        )
    result = {"calib_size": args.calib_size, "rows": rows, "verdict": verdict(rows)}
    (out / f"calibration_auto_{args.noise}.json").write_text(json.dumps(result, indent=1))
    print(table(rows))
    print(json.dumps(result["verdict"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
