"""rnn2c.export.export_torch with a real torch (issue 23): the check CI cannot run.

torch is no dependency of rnn2c and CI has none, and tests/tools.py's skips fail under CI=true,
so the torch path of export_torch is checked here instead of in the test suite (the suite tests
the path without torch: tests/test_onnx_cli.py::test_export_torch_without_torch). Run it with the
project's venv and a torch next to it, e.g. the CPU torch of /work/torchenv (same Python):

    PYTHONPATH=/work/torchenv/lib/python3.11/site-packages \\
        .venv/bin/python benchmarks/torch_export_check.py --out build/export_torch

For nn.GRU, nn.LSTM (two layers) and nn.RNN classifiers with random weights, through each
exporter choice (dynamo=None: dynamo, falling back to legacy; True; False): export_torch into
a folder, the C compiled with the strict flags against the integer reference bit for bit, and
the dequantized int8 outputs against the torch module's own outputs. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

from rnn2c.emulator import load_model
from rnn2c.export import export_torch, serialize
from rnn2c.export.reference import last_step, run_int

FEATURES, UNITS, CLASSES = 3, 8, 4


def modules() -> dict[str, object]:
    import torch  # noqa: PLC0415  (torch is optional: only this script needs it)
    from torch import nn  # noqa: PLC0415

    class Last(nn.Module):
        def __init__(self, cell: nn.Module) -> None:
            super().__init__()
            self.cell, self.fc = cell, nn.Linear(UNITS, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.cell(x)
            return self.fc(y[:, -1])

    torch.manual_seed(0)
    return {
        "gru": Last(nn.GRU(FEATURES, UNITS, batch_first=True)),
        "lstm2": Last(nn.LSTM(FEATURES, UNITS, num_layers=2, batch_first=True)),
        "rnn": Last(nn.RNN(FEATURES, UNITS, batch_first=True)),
    }


def check(name: str, module: object, dynamo: bool | None, out: Path) -> str:
    import torch  # noqa: PLC0415

    rng = np.random.default_rng(1)
    x = rng.normal(size=(24, 12, FEATURES)).astype(np.float32)
    res = export_torch(module, x[:2, :5], x, out, name="m", dynamo=dynamo)
    q = serialize.load(out / "m_qmodel.npz")
    xq = q.quantize_input(x)
    ref = run_int(q, xq)
    c = load_model(out, "m").run(xq, None)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = q.output_q.dequantize(last_step(ref, None))
    err = float(np.abs(got - want).max())
    span = float(want.max() - want.min())
    exact = np.array_equal(c, ref)
    ok = exact and err <= 0.05 * span
    how = res.notes[-1].split("(")[-1].split(")")[0]
    verdict = "ok  " if ok else "FAIL"
    return (
        f"{verdict} {name:<6} dynamo={dynamo!s:<5} {how:<18} C==ref {exact}, "
        f"max err {err:.4f} of range {span:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (one export per case)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    lines = []
    for name, module in modules().items():
        for dynamo in (None, True, False):
            out = args.out / f"{name}_{dynamo}"
            try:
                lines.append(check(name, module, dynamo, out))
            except Exception as e:  # noqa: BLE001  (a refusal is a result here)
                lines.append(f"FAIL {name:<6} dynamo={dynamo!s:<5} {type(e).__name__}: {e}")
            print(lines[-1], flush=True)
    sys.exit(1 if any(line.startswith("FAIL") for line in lines) else 0)


if __name__ == "__main__":
    main()
