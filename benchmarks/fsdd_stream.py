"""Spoken digits on a stream (FSDD): keyword spotting through the generated C, scored as hits,
misses and false accepts per hour.

For each run folder of `rnn2c train --dataset wav:DIR --features logmel --test-speaker S`
(benchmarks/fsdd.py makes them): export it with its front end, build one long stream of the
held-out speaker's recordings (rnn2c.export.detect.make_stream: shuffled by --seed, a silent
gap of --gaps seconds before each, white noise --snr dB under the words' mean RMS over the
whole stream), push it through the compiled C hop by hop (--modes: <name>_push_audio, the
model never reset, and/or <name>_stream_push, two copies restarted in turn; then
<name>_detect with the export's default parameters), check the detector against its NumPy twin
(detect) bit for bit and the C outputs against the integer reference (front end, run_int,
stream_outputs) on the stream's first --check-hops hops, and score the reports (score: a report
with the word's label from its first sample to --tolerance s after its last is a hit, any
other a false accept). The twin then sweeps the threshold. Writes stream.json and, with
--docs, the table between docs/audio.md's stream markers.

    nice -n 10 .venv/bin/python benchmarks/fsdd_stream.py --data ../shared/data/fsdd/recordings \\
        --runs build/fsdd/george build/fsdd/jackson ... --out build/fsdd_stream

Never part of the test suite (about a minute a speaker on 2 cores).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STRICT = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2")
SWEEP = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)
HIGH = 0.9  # the table's second threshold (label smoothing 0.1 caps a posterior near 0.91)
NAME = "digits"


def compile_c(export: Path) -> ctypes.CDLL:
    lib = export / f"{NAME}.so"
    src = str(export / f"{NAME}.c")
    subprocess.run(["gcc", *STRICT, "-shared", "-fPIC", src, "-o", str(lib)], check=True)
    c = ctypes.CDLL(str(lib))
    ptr = ctypes.c_void_p
    for f in ("reset", "detect_reset", "stream_reset"):
        getattr(c, f"{NAME}_{f}").argtypes = [ptr]
    for f in ("push_audio", "stream_push"):
        getattr(c, f"{NAME}_{f}").argtypes = [ptr, ptr, ctypes.c_int, ptr]
        getattr(c, f"{NAME}_{f}").restype = ctypes.c_int
    c.digits_detect.argtypes = [ptr, ptr]
    c.digits_detect.restype = ctypes.c_int
    return c


def run_stream(c: ctypes.CDLL, mode: str, pcm: np.ndarray, hop: int, classes: int):
    """The C over the stream, one hop per push (``mode``: push_audio, never reset, or
    stream_push, two copies restarted in turn): every hop's output and detect's report."""
    state = ctypes.create_string_buffer(1 << 16)
    det = ctypes.create_string_buffer(1 << 16)
    getattr(c, f"{NAME}_{'reset' if mode == 'push_audio' else 'stream_reset'}")(state)
    push = getattr(c, f"{NAME}_{mode}")
    c.digits_detect_reset(det)
    hops = len(pcm) // hop
    outputs = np.zeros((hops, classes), dtype=np.int8)
    labels = np.zeros(hops, dtype=np.int64)
    base = pcm.ctypes.data
    for t in range(hops):
        row = outputs[t].ctypes.data
        if push(state, base + 2 * t * hop, hop, row) != 1:
            raise SystemExit(f"{mode} of one hop did not step once at hop {t}")
        labels[t] = c.digits_detect(det, row)
    return outputs, labels


def one_mode(c, mode: str, qmodel, fe, stream, det, args) -> dict[str, object]:
    """One way of running the stream: the C's reports scored, checked against the twins."""
    from rnn2c.export.detect import detect, reset_hops, score, stream_outputs, threshold_for
    from rnn2c.export.reference import run_int

    outputs, c_labels = run_stream(c, mode, stream.pcm, fe.hop, outputs_size(qmodel))
    twin_exact = bool(np.array_equal(detect(outputs, det), c_labels))
    n = min(args.check_hops, len(outputs))
    feats = fe.frame_features_int(stream.pcm[: n * fe.hop])  # before any running mean
    if mode == "push_audio":
        ref = run_int(qmodel, fe.subtract_mean(feats)[None])[0]
    else:
        reset = reset_hops(fe.hop / fe.sample_rate)
        ref = stream_outputs(lambda x: run_int(qmodel, x), feats, reset, fe.subtract_mean)
    oq = qmodel.output_q
    sweep = []
    for p in SWEEP:
        d = type(det)(
            det.hops, threshold_for(p, float(oq.scale), int(oq.zero_point)), det.refractory
        )
        s = score(detect(outputs, d), stream, fe.hop, args.tolerance)
        sweep.append({"probability": p, "threshold": d.threshold, **s})
    return {
        "mode": mode,
        "default": score(c_labels, stream, fe.hop, args.tolerance),
        "sweep": sweep,
        "c_detect_equals_twin": twin_exact,
        "c_outputs_equal_reference_hops": n if np.array_equal(ref, outputs[:n]) else -n,
    }


def outputs_size(qmodel) -> int:
    return int(qmodel.output_size)


def one_speaker(run: Path, args: argparse.Namespace) -> list[dict[str, object]]:
    from rnn2c.export.audio import LogMel, read_recordings, read_wav
    from rnn2c.export.detect import default_detector, make_stream
    from rnn2c.export.serialize import load

    metrics = json.loads((run / "metrics.json").read_text())
    speaker = metrics["audio"]["test_speakers"][0]
    classes = metrics["class_names"]
    export = args.out / speaker
    cmd = [sys.executable, "-m", "rnn2c", "export", str(run / "model.keras")]
    cmd += ["--calib", str(run / "calib.npz"), "--out", str(export), "--name", NAME]
    cmd += ["--frontend", str(run / "frontend.json")]
    subprocess.run(cmd, check=True, capture_output=True)
    fe = LogMel.from_json(json.loads((run / "frontend.json").read_text()))
    qmodel = load(export / f"{NAME}_qmodel.npz")
    recs = [r for r in read_recordings(args.data) if r.speaker == speaker]
    words = [(read_wav(r.path, fe.sample_rate), classes.index(r.label)) for r in recs]
    stream = make_stream(words, fe.sample_rate, args.seed, args.snr, tuple(args.gaps))
    c = compile_c(export)
    oq = qmodel.output_q
    det = default_detector(float(oq.scale), int(oq.zero_point), fe.hop / fe.sample_rate)
    head = {
        "speaker": speaker,
        "stream": stream.description,
        "detector": {"hops": det.hops, "threshold": det.threshold, "refractory": det.refractory},
        "run": str(run),
        "float_test_accuracy": metrics["float_test_accuracy"],
        "audio_context": metrics["audio"].get("context", "word"),
    }
    return [{**head, **one_mode(c, m, qmodel, fe, stream, det, args)} for m in args.modes]


def table(rows: list[dict]) -> str:
    lines = [
        "| held-out speaker | training | C | digits | stream (min) | hits | misses | false "
        "accepts (wrong label) | FA per hour | hit rate | at p = 0.9: hit rate, FA per hour |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r["default"]
        best = next(s for s in r["sweep"] if s["probability"] == HIGH)
        lines.append(
            f"| {r['speaker']} | {r['audio_context']} | {r['mode']} | {d['words']} | "
            f"{60 * d['hours']:.1f} | {d['hits']} | "
            f"{d['misses']} | {d['false_accepts']} ({d['wrong_label']}) | "
            f"{d['false_accepts_per_hour']:.0f} | {100 * d['hit_rate']:.1f} % | "
            f"{100 * best['hit_rate']:.1f} %, "
            f"{best['false_accepts_per_hour']:.0f} |"
        )
    for mode in dict.fromkeys(r["mode"] for r in rows):
        some = [r for r in rows if r["mode"] == mode]
        high = [next(s for s in r["sweep"] if s["probability"] == HIGH) for r in some]
        hits = sum(r["default"]["hits"] for r in some)
        words = sum(r["default"]["words"] for r in some)
        fa = sum(r["default"]["false_accepts"] for r in some)
        hours = sum(r["default"]["hours"] for r in some)
        lines.append(
            f"| **all** | | {mode} | {words} | {60 * hours:.1f} | {hits} | {words - hits} | "
            f"{fa} | **{fa / hours:.0f}** | **{100 * hits / words:.1f} %** | "
            f"{100 * sum(h['hits'] for h in high) / words:.1f} %, "
            f"{sum(h['false_accepts'] for h in high) / hours:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="the FSDD recordings folder")
    ap.add_argument("--runs", type=Path, nargs="+", default=[], help="train run folders")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--table-from", type=Path, help="a stream.json: the table only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, default=20.0, help="noise dB under the words' RMS")
    ap.add_argument("--gaps", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"))
    ap.add_argument("--tolerance", type=float, default=0.5, help="seconds after a word's end")
    ap.add_argument("--check-hops", type=int, default=3000, help="hops checked against run_int")
    ap.add_argument(
        "--modes",
        nargs="+",
        choices=("push_audio", "stream_push"),
        default=["push_audio", "stream_push"],
        help="how the C runs the stream: push_audio (never reset), stream_push (two copies)",
    )
    ap.add_argument("--docs", type=Path, help="write the table between docs/audio.md's markers")
    args = ap.parse_args()
    if args.table_from:
        rows = json.loads(args.table_from.read_text())
        return write_table(rows, args.docs, str(rows[0].get("command", "")))
    if args.data is None or args.out is None or not args.runs:
        ap.error("--data, --runs and --out are required (or --table-from)")
    for run in args.runs:
        if not (run / "metrics.json").is_file() or not (run / "frontend.json").is_file():
            ap.error(
                f"{run}: not a run folder of rnn2c train --features logmel (no metrics.json "
                "or frontend.json)"
            )
    if not args.data.is_dir():
        ap.error(f"--data {args.data}: no such folder; expected FSDD's recordings folder")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in args.runs:
        for row in one_speaker(run, args):
            row["command"] = " ".join(["benchmarks/fsdd_stream.py", *sys.argv[1:]])
            print(json.dumps({k: v for k, v in row.items() if k != "sweep"}), flush=True)
            rows.append(row)
        (args.out / "stream.json").write_text(json.dumps(rows, indent=2) + "\n")
    return write_table(rows, args.docs, " ".join(["benchmarks/fsdd_stream.py", *sys.argv[1:]]))


def write_table(rows: list[dict], docs: Path | None, command: str) -> int:
    """Print the table; with ``docs``, put it between the page's stream markers."""
    text = table(rows)
    print(text)
    if docs is not None:
        page = docs.read_text()
        head, rest = page.split("<!-- stream:begin -->\n", 1)
        _, tail = rest.split("<!-- stream:end -->", 1)
        block = f"{text}\n\n`{command}`; {rows[0]['speaker']}'s stream: {rows[0]['stream']}.\n"
        docs.write_text(f"{head}<!-- stream:begin -->\n{block}<!-- stream:end -->{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
