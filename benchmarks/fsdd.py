"""Spoken digits (FSDD), speaker-independent: audio in, label out, through the generated C.

For each held-out speaker: `rnn2c train --dataset wav:DIR --features logmel --test-speaker S`
(the other four speakers train), `rnn2c export --frontend` as the run's EXPORT.txt says, then the
compiled C (host gcc) classifies every test recording from its raw int16 samples: reset,
<name>_push_audio of all its samples, argmax of the output. Each C output is checked against
the NumPy integer reference (front end, then run_int) bit for bit, and the integer features
against the float log-mel (largest and mean error, in int8 steps). Writes a Markdown table
(docs/audio.md) and fsdd.json.

    nice -n 10 .venv/bin/python benchmarks/fsdd.py --data ../shared/data/fsdd/recordings \\
        --out build/fsdd
    .venv/bin/python benchmarks/fsdd.py --data DIR --out build/fsdd --speakers theo --steps 500
    .venv/bin/python benchmarks/fsdd.py --table-from a/fsdd.json b/fsdd.json --docs docs/audio.md

Never part of the test suite: five trainings take tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")
STRICT = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2")


def rnn2c(*args: str) -> None:
    cmd = [sys.executable, "-m", "rnn2c", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")


def c_library(export: Path, name: str) -> ctypes.CDLL:
    lib = export / f"{name}.so"
    subprocess.run(
        ["gcc", *STRICT, "-shared", "-fPIC", str(export / f"{name}.c"), "-o", str(lib)],
        check=True,
    )
    c = ctypes.CDLL(str(lib))
    ptr = ctypes.c_void_p
    getattr(c, f"{name}_reset").argtypes = [ptr]
    push = getattr(c, f"{name}_push_audio")
    push.argtypes = [ptr, ptr, ctypes.c_int, ptr]
    push.restype = ctypes.c_int
    return c


def held_out(data: Path, speaker: str, out: Path, extra: list[str]) -> dict[str, object]:
    """Train without ``speaker``, export, classify its recordings through the C."""
    from rnn2c.export.audio import LogMel
    from rnn2c.export.reference import run_int
    from rnn2c.export.serialize import load
    from rnn2c.train.audio import read_recordings, read_wav

    run = out / speaker
    t0 = time.perf_counter()
    rnn2c(
        *("train", "--dataset", f"wav:{data}", "--features", "logmel"),
        *("--test-speaker", speaker, "--out", str(run), "--force", "--quiet", *extra),
    )
    seconds = time.perf_counter() - t0
    metrics = json.loads((run / "metrics.json").read_text())
    rnn2c(
        *("export", str(run / "model.keras"), "--calib", str(run / "calib.npz")),
        *("--out", str(run / "c"), "--name", "digits", "--frontend", str(run / "frontend.json")),
    )
    fe = LogMel.from_json(json.loads((run / "frontend.json").read_text()))
    qmodel = load(run / "c" / "digits_qmodel.npz")
    lib = c_library(run / "c", "digits")
    state = ctypes.create_string_buffer(qmodel.state_bytes())
    classes = metrics["class_names"] if "class_names" in metrics else [str(i) for i in range(10)]
    correct = exact = total = 0
    errs: list[np.ndarray] = []
    for rec in (r for r in read_recordings(data) if r.speaker == speaker):
        pcm = np.ascontiguousarray(read_wav(rec.path, fe.sample_rate))
        feats = fe.features_int(pcm)
        errs.append(np.abs(feats - np.clip(fe.features_float(pcm), -128, 127)).ravel())
        ref = run_int(qmodel, feats[None].astype(np.int8))[0, -1]
        lib.digits_reset(state)
        output = np.zeros(qmodel.output_size, dtype=np.int8)
        steps = lib.digits_push_audio(state, pcm.ctypes.data, len(pcm), output.ctypes.data)
        exact += int(steps == len(feats) and np.array_equal(output, ref))
        correct += int(classes[int(np.argmax(output))] == rec.label)
        total += 1
    err = np.concatenate(errs)
    return {
        "speaker": speaker,
        "test_recordings": total,
        "float_accuracy": metrics["float_test_accuracy"],
        "int8_c_accuracy": correct / total,
        "bit_exact": exact == total,
        "bit_exact_recordings": exact,
        "feature_error_max": float(err.max()),
        "feature_error_mean": float(err.mean()),
        "train_seconds": round(seconds, 1),
        "state_bytes": qmodel.state_bytes(),
        "weight_bytes": qmodel.weight_bytes(),
        "macs_per_step": qmodel.macs,
        "command": metrics["command"],
    }


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| held-out speaker | test recordings | float | int8 C (push_audio) | C == reference "
        "| feature error max / mean (int8 steps) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['speaker']} | {r['test_recordings']} | {100 * r['float_accuracy']:.1f} % "
            f"| {100 * r['int8_c_accuracy']:.1f} % | "
            f"{'bit-exact' if r['bit_exact'] else 'DIFFERS'} ({r['bit_exact_recordings']}) | "
            f"{r['feature_error_max']:.2f} / {r['feature_error_mean']:.3f} |"
        )
    fl = np.mean([r["float_accuracy"] for r in rows])
    c = np.mean([r["int8_c_accuracy"] for r in rows])
    lines.append(
        f"| **mean** | {sum(r['test_recordings'] for r in rows)} | **{100 * fl:.1f} %** | "
        f"**{100 * c:.1f} %** | | {max(r['feature_error_max'] for r in rows):.2f} (max) |"
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="the FSDD recordings folder")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--table-from", nargs="*", type=Path, help="fsdd.json files: table only")
    ap.add_argument("--docs", type=Path, help="write the table between docs/audio.md's markers")
    ap.add_argument("--speakers", nargs="*", default=list(SPEAKERS))
    ap.add_argument("--steps", type=int, default=None, help="rnn2c train --steps (default: its)")
    ap.add_argument("--units", type=int, default=None, help="rnn2c train --units (default: its)")
    ap.add_argument(
        "--train-args",
        default="",
        metavar="'FLAGS'",
        help='more rnn2c train flags, as one string (e.g. "--epochs 8 --audio-augment 2 '
        '--audio-augment-params speed=0.85:1.15")',
    )
    args = ap.parse_args()
    if args.table_from:
        rows = [r for f in args.table_from for r in json.loads(f.read_text())]
        return write_table(rows, args.docs)
    if args.data is None or args.out is None:
        ap.error("--data and --out are required (or --table-from)")
    args.out.mkdir(parents=True, exist_ok=True)
    extra = []
    if args.steps:
        extra += ["--steps", str(args.steps)]
    if args.units:
        extra += ["--units", str(args.units)]
    extra += shlex.split(args.train_args)
    rows = []
    for speaker in args.speakers:
        rows.append(held_out(args.data, speaker, args.out, extra))
        print(json.dumps(rows[-1]), flush=True)
        (args.out / "fsdd.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "fsdd.md").write_text(table(rows) + "\n")
    return write_table(rows, args.docs)


def write_table(rows: list[dict[str, object]], docs: Path | None) -> int:
    """Print the table (speakers in FSDD order); with ``docs``, put it between the page's
    fsdd markers with the command the rows came from."""
    rows = sorted(rows, key=lambda r: SPEAKERS.index(str(r["speaker"])))
    text = table(rows)
    print(text)
    if docs is not None:
        page = docs.read_text()
        head, rest = page.split("<!-- fsdd:begin -->\n", 1)
        _, tail = rest.split("<!-- fsdd:end -->", 1)
        cmd = str(rows[0]["command"]).replace(str(rows[0]["speaker"]), "S")  # out, test speaker
        block = f"{text}\n\nEach row's training: `{cmd}`\n"
        docs.write_text(f"{head}<!-- fsdd:begin -->\n{block}<!-- fsdd:end -->{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
