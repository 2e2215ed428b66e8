"""Conv1D and pooling front ends, int8 C against float Keras on real recordings.

Trains each configuration below on JapaneseVowels (aeon's bundled copy: 270 / 370 sequences of
7-29 steps x 12 features, 9 speakers), each batch of sequences of one real length (no padding,
no Masking: Conv1D does not take a mask), exports it (`--input-quant per-feature`; the
whole-sequence ones with `--max-length 29`) and runs `rnn2c verify` on the test split (the C at
each sequence's real length against Keras on the sequence cut to it). Prints a markdown table;
figures only, no assertion.

    .venv/bin/python benchmarks/conv.py [--epochs 15] [--out build/conv]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def configs(keras, classes: int) -> dict:  # noqa: ANN001
    L = keras.layers
    head = lambda: L.Dense(classes, activation="softmax")  # noqa: E731
    return {
        "Conv1D(16,3,causal,relu) > GRU(16)": [
            L.Conv1D(16, 3, padding="causal", activation="relu"),
            L.GRU(16),
            head(),
        ],
        "Conv1D(16,3,stride 2,causal,relu) > GRU(16)": [
            L.Conv1D(16, 3, strides=2, padding="causal", activation="relu"),
            L.GRU(16),
            head(),
        ],
        "Conv1D(16,3,dilation 2,causal,tanh) > MaxPool(2) > GRU(16)": [
            L.Conv1D(16, 3, dilation_rate=2, padding="causal", activation="tanh"),
            L.MaxPooling1D(2),
            L.GRU(16),
            head(),
        ],
        "Conv1D(16,3,causal,relu) > AvgPool(2) > LSTM(16)": [
            L.Conv1D(16, 3, padding="causal", activation="relu"),
            L.AveragePooling1D(2),
            L.LSTM(16),
            head(),
        ],
        "Conv1D(16,3,causal,relu) x2 (dilation 1, 2) > GlobalAvgPool": [
            L.Conv1D(16, 3, padding="causal", activation="relu"),
            L.Conv1D(16, 3, dilation_rate=2, padding="causal", activation="relu"),
            L.GlobalAveragePooling1D(),
            head(),
        ],
        "GRU(16, seq) > GlobalMaxPool": [
            L.GRU(16, return_sequences=True),
            L.GlobalMaxPooling1D(),
            head(),
        ],
        "Conv1D(16,3,same,relu) > GRU(16) [run]": [
            L.Conv1D(16, 3, padding="same", activation="relu"),
            L.GRU(16),
            head(),
        ],
        "Conv1D(16,3,valid,stride 2) > Bidirectional(GRU(8)) [run]": [
            L.Conv1D(16, 3, strides=2, padding="valid"),
            L.Bidirectional(L.GRU(8)),
            head(),
        ],
    }


def fit_by_length(model, x, y, lengths, epochs: int, seed: int = 0) -> None:  # noqa: ANN001
    """Batches of up to 16 sequences of one real length, cut to it: no padding is seen."""
    rng = np.random.default_rng(seed)
    batches = []
    for length in np.unique(lengths):
        idx = np.nonzero(lengths == length)[0]
        batches += [(int(length), idx[i : i + 16]) for i in range(0, idx.size, 16)]
    for _ in range(epochs):
        for k in rng.permutation(len(batches)):
            length, idx = batches[k]
            model.train_on_batch(x[idx, :length], y[idx])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", default="build/conv")
    args = ap.parse_args()

    import keras  # noqa: PLC0415

    from rnn2c.emulator import verify  # noqa: PLC0415
    from rnn2c.export import export_model  # noqa: PLC0415
    from rnn2c.export.data import Sequences  # noqa: PLC0415
    from rnn2c.train.data import _load_uea  # noqa: PLC0415

    ds = _load_uea("JapaneseVowels")
    t = ds.x_train.shape[1]
    classes = len(ds.class_names)
    out = Path(args.out)
    rows = []
    for i, (label, layers) in enumerate(configs(keras, classes).items()):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((None, ds.x_train.shape[2])), *layers])
        model.compile(keras.optimizers.Adam(0.003), "sparse_categorical_crossentropy")
        start = time.time()
        fit_by_length(model, ds.x_train, ds.y_train, ds.lengths_train, args.epochs)
        fit_s = time.time() - start
        folder = out / f"m{i}"
        whole = "[run]" in label
        res = export_model(
            model,
            Sequences(ds.x_train, None, ds.lengths_train),
            folder,
            name="conv",
            max_length=t if whole else None,
            input_quant="per-feature",
        )
        rep = verify(
            model,
            folder,
            Sequences(ds.x_test, ds.y_test, ds.lengths_test),
            stream_steps=0 if whole else 5000,
        )
        row = {
            "model": label,
            "float_acc": rep.float_accuracy,
            "int8_acc": rep.int8_accuracy,
            "agreement": rep.agreement,
            "max_err": rep.max_abs_error,
            "mean_err": rep.mean_abs_error,
            "bit_exact": rep.bit_exact,
            "stream_bit_exact": None if rep.stream is None else rep.stream.bit_exact,
            "state_bytes": res.qmodel.state_bytes(),
            "weight_bytes": res.qmodel.weight_bytes(),
            "fit_s": round(fit_s, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "conv.json").write_text(json.dumps(rows, indent=2))
    print()
    print(
        "| model | float acc | int8 C acc | agreement | max / mean abs err | bit-exact "
        "| state / weight B |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        stream = {None: "", True: " (stream too)", False: " (stream NO)"}[r["stream_bit_exact"]]
        print(
            f"| {r['model']} | {100 * r['float_acc']:.2f}% | {100 * r['int8_acc']:.2f}% "
            f"| {100 * r['agreement']:.2f}% | {r['max_err']:.4f} / {r['mean_err']:.5f} "
            f"| {'yes' if r['bit_exact'] else 'NO'}{stream} "
            f"| {r['state_bytes']} / {r['weight_bytes']} |"
        )


if __name__ == "__main__":
    main()
