"""Bidirectional models, int8 C against float Keras on real recordings.

For every cell (GRU, LSTM, SimpleRNN) x merge mode (concat, sum, ave, mul) x return_sequences,
trains Masking -> Bidirectional(cell(16)) -> Dense(softmax) on JapaneseVowels (aeon's bundled
copy: 270 / 370 sequences of 7-29 steps x 12 features, 9 speakers; with return_sequences every
step is labelled with the sequence's speaker: a tagger), exports it with --max-length 29 and runs
`rnn2c verify` on the test split (C through <name>_run at each sequence's real length, against
Keras on the sequence cut to that length). Prints a markdown table; figures only, no assertion.

    .venv/bin/python benchmarks/bidirectional.py [--epochs 12] [--out build/bidir]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--out", default="build/bidir")
    ap.add_argument("--cells", nargs="*", default=["gru", "lstm", "rnn"])
    args = ap.parse_args()

    import keras  # noqa: PLC0415

    from rnn2c.emulator import verify  # noqa: PLC0415
    from rnn2c.export import export_model  # noqa: PLC0415
    from rnn2c.export.data import Sequences  # noqa: PLC0415
    from rnn2c.train.data import _load_uea  # noqa: PLC0415

    ds = _load_uea("JapaneseVowels")
    t = ds.x_train.shape[1]
    cells = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
    classes = len(ds.class_names)
    out = Path(args.out)
    rows = []
    for cell, merge, rs in itertools.product(
        args.cells, ("concat", "sum", "ave", "mul"), (False, True)
    ):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((None, ds.x_train.shape[2])),
                keras.layers.Masking(0.0),
                keras.layers.Bidirectional(
                    cells[cell](args.units, return_sequences=rs), merge_mode=merge
                ),
                keras.layers.Dense(classes, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy")
        y_train = np.repeat(ds.y_train[:, None], t, axis=1) if rs else ds.y_train
        y_test = np.repeat(ds.y_test[:, None], t, axis=1) if rs else ds.y_test
        start = time.time()
        model.fit(ds.x_train, y_train, epochs=args.epochs, batch_size=16, verbose=0)
        fit_s = time.time() - start
        folder = out / f"{cell}-{merge}-rs{int(rs)}"
        calib = Sequences(ds.x_train, None, ds.lengths_train)
        res = export_model(model, calib, folder, name="bi", max_length=t, input_quant="per-feature")
        rep = verify(model, folder, Sequences(ds.x_test, y_test, ds.lengths_test))
        row = {
            "cell": cell,
            "merge": merge,
            "return_sequences": rs,
            "float_acc": rep.float_accuracy,
            "int8_acc": rep.int8_accuracy,
            "agreement": rep.agreement,
            "max_err": rep.max_abs_error,
            "mean_err": rep.mean_abs_error,
            "bit_exact": rep.bit_exact,
            "state_bytes": res.qmodel.state_bytes(),
            "weight_bytes": res.qmodel.weight_bytes(),
            "fit_s": round(fit_s, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bidirectional.json").write_text(json.dumps(rows, indent=2))
    print()
    print(
        "| cell | merge | return_sequences | float acc | int8 C acc | agreement "
        "| max / mean abs err | bit-exact | state / weight B |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['cell']} | {r['merge']} | {'yes (per step)' if r['return_sequences'] else 'no'} "
            f"| {100 * r['float_acc']:.2f}% | {100 * r['int8_acc']:.2f}% "
            f"| {100 * r['agreement']:.2f}% | {r['max_err']:.4f} / {r['mean_err']:.5f} "
            f"| {'yes' if r['bit_exact'] else 'NO'} | {r['state_bytes']} / {r['weight_bytes']} |"
        )


if __name__ == "__main__":
    main()
