"""Optional peer timing: rnn2c's int8 C against RTNeural's float GRU, per step, interleaved.

RTNeural (https://github.com/jatinchowdhury18/RTNeural, header-only C++) is not a dependency of
rnn2c and is not fetched by anything here: give the path of a local checkout. Its Eigen backend
needs Eigen's headers (Debian: `apt-get install libeigen3-dev`, or --eigen DIR). Nothing here runs
in CI or in the test suite.

    .venv/bin/python benchmarks/rtneural_peer.py PATH/TO/RTNeural runs/bm/model.keras \\
        --calib runs/bm/calib.npz --data runs/bm/test.npz --steps 50 --rounds 21

The model must be a GRU followed by one Dense layer (a classifier head). It is exported with
--input-quant per-feature into a temporary folder; its C (gcc -O3 -march=native) and
benchmarks/rtneural_gru.cpp (g++ -O3 -march=native, RTNeural's Eigen backend) are linked into
one program, which runs every sequence through rnn2c's C, RTNeural's GRU + Dense and RTNeural's
GRU + Dense + softmax in turn, for a warm-up round and --rounds rounds, timing each with the
thread CPU-time clock (reset + T steps per sequence). RTNeural gets random weights of the same
shapes (its timing does not depend on them) and the data's float inputs, copied per step into
an aligned buffer as its Eigen backend requires. Prints the median and [min-max] per step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rtneural", type=Path, help="a local RTNeural checkout (holds RTNeural/)")
    ap.add_argument("model", help="a .keras GRU + Dense classifier")
    ap.add_argument("--calib", required=True, help=".npz calibration set for the export")
    ap.add_argument("--data", required=True, help=".npz with x [N, T, F] (float inputs)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--eigen", type=Path, default=Path("/usr/include/eigen3"))
    ap.add_argument("--cc", default="gcc")
    ap.add_argument("--cxx", default="g++")
    args = ap.parse_args()

    if not (args.rtneural / "RTNeural" / "RTNeural.h").is_file():
        sys.exit(f"error: {args.rtneural} is not an RTNeural checkout (no RTNeural/RTNeural.h)")
    if not (args.eigen / "Eigen" / "Dense").is_file():
        sys.exit(f"error: no Eigen headers in {args.eigen} (libeigen3-dev, or --eigen DIR)")

    import numpy as np  # noqa: PLC0415

    from rnn2c.export import export_model  # noqa: PLC0415
    from rnn2c.export.serialize import load  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="rnn2c-rtneural-") as tmp:
        out = Path(tmp)
        export_model(args.model, args.calib, out / "c", name="model", input_quant="per-feature")
        q = load(out / "c" / "model_qmodel.npz")
        kinds = [layer.kind for layer in q.layers]
        if kinds != ["gru", "dense"]:
            sys.exit(f"error: the model's layers are {kinds}; this harness times GRU + Dense")
        units = q.layers[0].units  # type: ignore[attr-defined]
        x = np.load(args.data)["x"].astype(np.float32)
        if x.shape[1] < args.steps:
            sys.exit(f"error: the data has {x.shape[1]} steps, fewer than --steps {args.steps}")
        x = np.ascontiguousarray(x[:, : args.steps, :])
        q.input_q.quantize(x).astype(np.int8).tofile(out / "x_int8.bin")
        x.tofile(out / "x_float.bin")
        flags = ["-O3", "-march=native"]
        subprocess.run(
            [args.cc, *flags, "-std=c99", "-c", str(out / "c" / "model.c"), "-o", str(out / "m.o")],
            check=True,
        )
        subprocess.run(
            [
                args.cxx,
                *flags,
                "-std=c++17",
                "-DRTNEURAL_USE_EIGEN=1",
                "-DRTNEURAL_DEFAULT_ALIGNMENT=32",
                f"-DUNITS={units}",
                f"-I{args.rtneural}",
                f"-I{args.eigen}",
                f"-I{out / 'c'}",
                str(HERE / "rtneural_gru.cpp"),
                str(out / "m.o"),
                "-o",
                str(out / "bench"),
            ],
            check=True,
        )
        commit = subprocess.run(
            ["git", "-C", str(args.rtneural), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        print(
            f"GRU({units}) + Dense({q.output_size}), {x.shape[2]} inputs; {x.shape[0]} sequences x "
            f"T={args.steps}, {args.rounds} rounds interleaved; RTNeural {commit or '(no git)'} "
            "Eigen backend; thread CPU time per step, median [min-max] over rounds"
        )
        run = subprocess.run(
            [
                str(out / "bench"),
                str(out / "x_int8.bin"),
                str(out / "x_float.bin"),
                str(x.shape[0]),
                str(args.steps),
                str(args.rounds),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        print(run.stdout, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
