"""`rnn2c train` and `rnn2c tune` on a token dataset (issue 26): ids [N, T] into an Embedding.

The dataset: the source of the Python standard library's argparse.py (a fixed text for a given
Python version; the first 60,000 characters), as character ids (1..V-1, 0 = padding), in windows
of 64 characters (80 % of the text for training, stride 32; the rest for testing, stride 64,
test windows cut to pseudo-random real lengths 16..64). The task is `tag`: each character is
labelled 1 from a '#' to the end of its line (a comment, by that rule), else 0; a streaming
tagger has to remember whether it has passed a '#' since the last newline.

It runs the plain `rnn2c train` default on it (GRU(32), Embedding 16), exports and verifies it
(EXPORT.txt's lines), then `rnn2c tune` under the tight budget (Cortex-M0+, 16 KB flash, 2 KB
RAM, 100,000 instructions per step), and prints a markdown table: float and int8 C per-step
test accuracy, flash/RAM/instructions of the chosen model, wall times. Figures only.

    nice -n 10 .venv/bin/python benchmarks/tune_tokens.py [--trials 6] [--time-budget 10m]
        [--steps 600] [--out build/tune-tokens]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tune_studies import BUDGETS  # benchmarks/: the studies' tight budget

T = 64


def dataset(path: Path) -> Path:
    text = Path(argparse.__file__).read_text()[:60_000]
    chars = sorted(set(text))
    ids = np.array([chars.index(c) + 1 for c in text], dtype=np.int32)
    label = np.zeros(len(text), dtype=np.int64)
    inside = False
    for i, c in enumerate(text):
        if c == "#":
            inside = True
        elif c == "\n":
            inside = False
        label[i] = int(inside)
    split = int(0.8 * len(text))

    def windows(lo: int, hi: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
        starts = np.arange(lo, hi - T, stride)
        return np.stack([ids[s : s + T] for s in starts]), np.stack(
            [label[s : s + T] for s in starts]
        )

    x_tr, y_tr = windows(0, split, 32)
    x_te, y_te = windows(split, len(text), 64)
    rng = np.random.default_rng(0)
    lengths = rng.integers(16, T + 1, size=len(x_te))
    pad = np.arange(T)[None, :] >= lengths[:, None]
    x_te[pad], y_te[pad] = 0, 0
    np.savez(
        path,
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        lengths_train=np.full(len(x_tr), T),
        lengths_test=lengths,
    )
    return path


def rnn2c(*args: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    rc = subprocess.run([sys.executable, "-m", "rnn2c", *args], check=False).returncode
    return rc, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--time-budget", default="10m")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--out", default="build/tune-tokens")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = dataset(out / "comments.npz")
    run = out / "train-default"
    rc, train_s = rnn2c(
        "train", "--dataset", str(data), "--task", "tag", "--out", str(run), "--force", "--quiet"
    )
    metrics = json.loads((run / "metrics.json").read_text())
    lines = (run / "EXPORT.txt").read_text().splitlines()
    for line in lines:
        if line.startswith("rnn2c "):
            rnn2c(*shlex.split(line)[1:])
    tune_dir = out / "tune-tight"
    _, tune_s = rnn2c(
        "tune",
        "--dataset",
        str(data),
        "--task",
        "tag",
        *BUDGETS["tight"],
        "--trials",
        str(a.trials),
        "--time-budget",
        a.time_budget,
        "--steps",
        str(a.steps),
        "--out",
        str(tune_dir),
    )
    res = json.loads((tune_dir / "tune.json").read_text())
    b = res.get("best")
    print(
        f"\n{metrics['num_train']} training / {metrics['num_test']} test windows, "
        f"vocabulary {metrics['tokens']['vocab_size']}; train default {train_s:.0f} s "
        f"(exit {rc}), tune {tune_s:.0f} s\n"
    )
    print("| model | float test acc/step | flash B | RAM B | instr/step mean / max | int8 C |")
    print("|---|---|---|---|---|---|")
    print(
        f"| train default: {metrics['cell'].upper()}({metrics['units']}), Embedding "
        f"{metrics['tokens']['embedding_dim']} | {100 * metrics['float_test_accuracy']:.2f}% "
        "| see `rnn2c size` | | | see verify above |"
    )
    if b:
        print(
            f"| tune tight: {b['describe']} | {100 * (b['test_float_accuracy'] or 0):.2f}% | "
            f"{b['flash']} | {b['ram']} | {b['instructions_mean']:.0f} / "
            f"{b['instructions_max']} | {100 * (b['test_int8_accuracy'] or 0):.2f}% |"
        )
    else:
        print(f"| tune tight: {res.get('verdict')} | | | | | |")


if __name__ == "__main__":
    main()
