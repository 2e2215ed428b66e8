"""CPU time of quantizing a trained run with --calibration minmax against auto (in-process).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/calibration_auto_time.py RUN [RUN ...]

RUN: an `rnn2c train` run folder (model.keras, calib.npz); per-feature input, as `make demo`
exports. Prints the least and median of 3 CPU times (time.process_time) per method, and auto's
scored quantizations.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from rnn2c.export import kinds  # noqa: E402
from rnn2c.export.calib_auto import quantize_auto  # noqa: E402
from rnn2c.export.data import load_sequences  # noqa: E402
from rnn2c.export.quantize import quantize_model  # noqa: E402


def main() -> int:
    for run in sys.argv[1:]:
        _, _, ir = kinds.read(f"{run}/model.keras")
        s = load_sequences(f"{run}/calib.npz", "--calib")
        trials = 0
        for name in ("minmax", "auto"):
            times = []
            for _ in range(3):
                t0 = time.process_time()
                if name == "auto":
                    trials = quantize_auto(ir, s.x, s.lengths, input_quant="per-feature").trials
                else:
                    quantize_model(ir, s.x, s.lengths, "minmax", input_quant="per-feature")
                times.append(time.process_time() - t0)
            extra = f", {trials} scored quantizations" if name == "auto" else ""
            print(
                f"{run} {tuple(s.x.shape)} {name}: least {min(times):.3f} s, median "
                f"{sorted(times)[1]:.3f} s CPU{extra}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
