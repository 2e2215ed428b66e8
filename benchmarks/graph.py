"""Graphs of parallel branches, int8 C against float Keras on real recordings.

Trains four functional models on JapaneseVowels (aeon's bundled copy: 270 / 370 sequences of
7-29 steps x 12 features, 9 speakers; Masking on the padded steps) for 20 epochs with Keras' fit:

* concat: Input -> [GRU(16, return_sequences); Dense(16, tanh) per step] -> Concatenate -> GRU(16)
  -> Dense(softmax) (the issue's example);
* add: Input -> GRU(16) and LSTM(16) -> Add -> Dense(softmax);
* average / multiply: Input -> GRU(16, return_sequences) and Dense(16, tanh) -> Average |
  Multiply -> GRU(16) -> Dense(softmax);

exports each with --input-quant per-feature and runs `rnn2c verify` on the test split (the C
step per sample up to each sequence's real length, against Keras on the sequence cut there).
Prints a markdown table; figures only, no assertion.

    .venv/bin/python benchmarks/graph.py [--epochs 20] [--out build/graph]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def build(kind: str, features: int, classes: int):  # noqa: ANN201
    import keras  # noqa: PLC0415

    layers = keras.layers
    inp = keras.Input((None, features))
    x = layers.Masking(0.0)(inp)
    if kind == "add":
        h = layers.Add()([layers.GRU(16)(x), layers.LSTM(16)(x)])
    else:
        a = layers.GRU(16, return_sequences=True)(x)
        b = layers.Dense(16, activation="tanh")(x)
        merge = {"concat": layers.Concatenate, "average": layers.Average}.get(kind, layers.Multiply)
        h = layers.GRU(16)(merge()([a, b]))
    return keras.Model(inp, layers.Dense(classes, activation="softmax")(h), name=kind)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", default="build/graph")
    ap.add_argument("--kinds", nargs="*", default=["concat", "add", "average", "multiply"])
    args = ap.parse_args()

    import keras  # noqa: PLC0415

    from rnn2c.emulator import verify  # noqa: PLC0415
    from rnn2c.export import export_model  # noqa: PLC0415
    from rnn2c.export.data import Sequences  # noqa: PLC0415
    from rnn2c.train.data import _load_uea  # noqa: PLC0415

    ds = _load_uea("JapaneseVowels")
    classes = len(ds.class_names)
    out = Path(args.out)
    rows = []
    for kind in args.kinds:
        keras.utils.set_random_seed(0)
        model = build(kind, ds.x_train.shape[2], classes)
        model.compile("adam", "sparse_categorical_crossentropy")
        start = time.time()
        model.fit(ds.x_train, ds.y_train, epochs=args.epochs, batch_size=16, verbose=0)
        fit_s = time.time() - start
        calib = Sequences(ds.x_train, None, ds.lengths_train)
        res = export_model(model, calib, out / kind, name="g", input_quant="per-feature")
        rep = verify(model, out / kind, Sequences(ds.x_test, ds.y_test, ds.lengths_test))
        print(rep.table(), flush=True)
        q = res.qmodel
        rows.append(
            f"| {kind} | {100 * rep.float_accuracy:.2f}% | {100 * rep.int8_accuracy:.2f}% "
            f"| {100 * rep.agreement:.2f}% | {rep.max_abs_error:.4f} / {rep.mean_abs_error:.5f} "
            f"| {'yes' if rep.bit_exact else 'NO'} | {q.state_bytes()} / {q.weight_bytes()} "
            f"| {q.macs} | {fit_s:.0f} |"
        )
    print(
        "\n| graph | float acc | int8 C acc | agreement | max / mean abs err | bit-exact "
        "| state / weight B | MACs/step | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
