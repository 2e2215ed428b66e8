"""Character-level token models, int8 C against float Keras.

Trains next-character taggers `Embedding(V, 16, mask_zero=True) -> cell(64,
return_sequences=True) -> Dense(V, softmax)` (GRU, LSTM) on the source of the Python standard
library's argparse.py (a fixed text for a given Python version; the first 60,000 characters: 80 %
train, the rest test), in windows
of 32 characters, test windows cut to pseudo-random real lengths 8..32 (the rest padded with
id 0); exports each with its training windows as calibration ids and runs `rnn2c verify` on the
test windows (the C through <name>_step_token, every real step compared) and a 10,000-step
stream without reset. Prints a markdown table; figures only, no assertion.

    .venv/bin/python benchmarks/tokens.py [--epochs 8] [--out build/tokens]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--out", default="build/tokens")
    ap.add_argument("--cells", nargs="*", default=["gru", "lstm"])
    args = ap.parse_args()

    import keras  # noqa: PLC0415

    from rnn2c.emulator import verify  # noqa: PLC0415
    from rnn2c.export import export_model  # noqa: PLC0415
    from rnn2c.export.data import Sequences  # noqa: PLC0415

    text = Path(argparse.__file__).read_text()[:60_000]
    chars = sorted(set(text))
    codes = np.array([chars.index(c) + 1 for c in text], dtype=np.int32)  # 0: padding
    vocab = len(chars) + 1
    t = 32
    split = int(0.8 * codes.size)

    def windows(part: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
        starts = np.arange(0, part.size - t - 1, stride)
        return (
            np.stack([part[s : s + t] for s in starts]),
            np.stack([part[s + 1 : s + t + 1] for s in starts]),
        )

    x_train, y_train = windows(codes[:split], 4)
    x_test, y_test = windows(codes[split:], 16)
    rng = np.random.default_rng(0)
    lengths = rng.integers(8, t + 1, size=x_test.shape[0])
    pad = np.arange(t)[None, :] >= lengths[:, None]
    x_test[pad], y_test[pad] = 0, 0
    out = Path(args.out)
    rows = []
    for cell in args.cells:
        keras.utils.set_random_seed(0)
        layer = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[cell]
        inp = keras.Input((None,), dtype="int32")
        h = keras.layers.Embedding(vocab, 16, mask_zero=True)(inp)
        h = layer(args.units, return_sequences=True)(h)
        model = keras.Model(inp, keras.layers.Dense(vocab, activation="softmax")(h))
        model.compile(
            optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy"
        )
        start = time.time()
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
        secs = time.time() - start
        res = export_model(model, x_train[::4], out / cell, name=f"chars_{cell}")
        data = Sequences(x_test, y_test, lengths)
        report = verify(model, out / cell, data, stream_steps=10_000)
        s = report.stream
        assert s is not None and report.outputs is not None
        y_float, y_int = report.outputs
        top2 = np.sort(y_float, axis=1)[:, -2:]
        differ = y_float.argmax(1) != y_int.argmax(1)
        near = float((top2[differ, 1] - top2[differ, 0] < 2 / 256).mean()) if differ.any() else 0.0
        rows.append(
            f"| {cell.upper()}({args.units}) | {vocab} x 16 | {100 * report.float_accuracy:.2f}% | "
            f"{100 * report.int8_accuracy:.2f}% | {100 * report.agreement:.2f}% | "
            f"{report.max_abs_error:.4f} / {report.mean_abs_error:.5f} | "
            f"{100 * s.agreement:.2f}% | {'yes' if report.bit_exact and s.bit_exact else 'NO'} | "
            f"{res.qmodel.state_bytes()} / {res.qmodel.weight_bytes()} | {secs:.0f} | "
            f"{100 * near:.0f}% |"
        )
        print(report.table(), flush=True)
    print(
        f"\n{x_train.shape[0]} training / {x_test.shape[0]} test windows of {t} characters, "
        f"{int(lengths.sum())} test steps\n"
    )
    print(
        "| model | table | float acc/step | int8 C acc/step | agreement | max / mean abs err "
        "| 10k stream agreement | bit-exact | state / weight B | train s "
        "| disagreements with a float top-2 margin < 2/256 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
