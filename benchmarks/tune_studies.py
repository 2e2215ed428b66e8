"""`rnn2c tune` on three bundled sets under a tight and a loose budget (issue 26).

Each study runs `rnn2c tune` (a time budget per study, a small trial count) into OUT/<set>-<budget>,
then reads its tune.json: the chosen model's measured flash, RAM and instructions per step on
the target, its float and int8 C test accuracy, and the study's wall time. The train-default
figures to compare with are docs/measurements.md's (`rnn2c train` defaults, int8 C). Prints a
markdown table; figures only, no assertion.

    nice -n 10 .venv/bin/python benchmarks/tune_studies.py [--only BasicMotions-tight,...]
    (Covid3Month-tight / -loose, a regress set ranked by int8 C MAE, only when named)
        [--time-budget 10m] [--trials 12] [--steps 600] [--out build/tune]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SETS = {
    "BasicMotions": "uea:BasicMotions",  # 6-axis IMU, 100 steps
    "OSULeaf": "uea:OSULeaf",  # univariate, 427 steps
    "JapaneseVowels": "uea:JapaneseVowels",  # speech-like, 7-29 steps x 12
}
#: run only when named in --only: a regress set (ranked by int8 C MAE)
EXTRA = {"Covid3Month": ("uea:Covid3Month", "regress")}
BUDGETS = {
    "tight": ["--target", "cortex-m0plus", "--flash", "16K", "--ram", "2K"]
    + ["--instr-per-step", "100000"],
    "loose": ["--target", "cortex-m4", "--flash", "64K", "--ram", "8K"],
}


def run(name: str, spec: str, budget: str, a: argparse.Namespace, task: str = "classify") -> dict:
    out = Path(a.out) / f"{name}-{budget}"
    cmd = [sys.executable, "-m", "rnn2c", "tune", "--dataset", spec, "--task", task]
    cmd += BUDGETS[budget]
    cmd += ["--trials", str(a.trials), "--time-budget", a.time_budget, "--steps", str(a.steps)]
    cmd += ["--out", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=False)
    wall = time.perf_counter() - t0
    res = json.loads((out / "tune.json").read_text()) if (out / "tune.json").exists() else {}
    return {"study": f"{name} {budget}", "rc": done.returncode, "wall": wall, **res}


def row(r: dict) -> str:
    b = r.get("best")
    trials = r.get("trials", [])
    n = len(trials)
    verified = sum(1 for t in trials if "int8_accuracy" in t or "int8_mae" in t)
    if not b:
        verdict = r.get("verdict", "failed")
        return f"| {r['study']} | {n} ({verified}) | {verdict} |{' |' * 6} {r['wall']:.0f} |"
    if "test_int8_mae" in b:  # regress: MAE
        fl, i8 = f"MAE {b['test_float_mae']:.5g}", f"MAE {b['test_int8_mae']:.5g}"
    else:
        fl = f"{100 * (b['test_float_accuracy'] or 0):.2f}%"
        i8 = f"{100 * (b['test_int8_accuracy'] or 0):.2f}%"
    return (
        f"| {r['study']} | {n} ({verified}) | {b['describe']} | {b['flash']} | {b['ram']} | "
        f"{b['instructions_mean']:.0f} / {b['instructions_max']} | {fl} | {i8} | "
        f"{'yes' if b['fits'] else 'NO'} | {r['wall']:.0f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", default=None, help="comma-separated NAME-BUDGET studies")
    p.add_argument("--time-budget", default="10m")
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--out", default="build/tune")
    a = p.parse_args()
    wanted = set(a.only.split(",")) if a.only else None
    results = []
    for name, spec in SETS.items():
        for budget in BUDGETS:
            if wanted is None or f"{name}-{budget}" in wanted:
                results.append(run(name, spec, budget, a))
    for name, (spec, task) in EXTRA.items():
        for budget in BUDGETS:
            if wanted is not None and f"{name}-{budget}" in wanted:
                results.append(run(name, spec, budget, a, task))
    print(
        "| study | trials (verified) | chosen | flash B | RAM B | instr/step mean / max | "
        "float test | int8 C test | fits | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r))


if __name__ == "__main__":
    main()
