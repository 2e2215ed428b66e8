"""A fixed set of models, one of every layer and model kind, exported into a folder: run it
before and after a change that must not change the generated files, and compare the folders.

    python benchmarks/export_set.py --out build/before            # models built and saved
    ... change the code ...
    python benchmarks/export_set.py --out build/after --models build/before/models
    python benchmarks/export_set.py --compare build/before build/after

The first run builds every model from a fixed seed and saves it (models/NAME.keras, with its
calibration set models/NAME.npz); later runs export those saved files, so the weights are the
same whatever the machine. --compare lists every generated file that differs (exit 1 if any);
where the C differs it also runs both builds on the calibration inputs and says whether the
outputs are still bit-identical.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

T, F = 12, 4  # steps and features of the calibration sequences


def _models() -> dict[str, tuple[Callable[[], Any], dict[str, Any]]]:
    """name -> (a builder of the Keras model, export keywords)."""
    import keras  # noqa: PLC0415

    L = keras.layers  # noqa: N806

    def seq(*layers: Any, features: int = F) -> Any:
        return keras.Sequential([keras.Input((None, features)), *layers])

    def graph() -> Any:
        inp = keras.Input((None, F))
        a = L.GRU(5, return_sequences=True)(inp)
        b = L.Dense(5, activation="tanh")(inp)
        return keras.Model(inp, L.LSTM(3)(L.Concatenate()([L.Add()([a, b]), inp])))

    def two_inputs() -> Any:
        imu, baro = keras.Input((None, 3), name="imu"), keras.Input((None, 1), name="baro")
        merged = L.Concatenate()([L.GRU(4)(imu), L.SimpleRNN(2)(baro)])
        return keras.Model([imu, baro], L.Dense(3, activation="softmax")(merged))

    def tokens() -> Any:
        ids = keras.Input((None,), dtype="int32")
        return keras.Model(ids, L.Dense(3)(L.GRU(6)(L.Embedding(20, 5, mask_zero=True)(ids))))

    def seq2seq() -> Any:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import seq2seq_keras  # noqa: PLC0415

        return seq2seq_keras.build(tokens=True, units=6, embed=4, vocab_in=12, vocab_out=9)

    whole = {"max_length": 16}
    return {
        "gru_after": (lambda: seq(L.GRU(8), L.Dense(3, activation="softmax")), {}),
        "gru_before": (lambda: seq(L.GRU(6, reset_after=False, return_sequences=True)), {}),
        "lstm_rnn": (lambda: seq(L.LSTM(6, return_sequences=True), L.SimpleRNN(4)), {}),
        "relu_rnn": (lambda: seq(L.SimpleRNN(5, activation="relu"), L.Dense(2)), {}),
        "dense_acts": (
            lambda: seq(L.GRU(6, return_sequences=True), L.Dense(5, activation="gelu"), L.GRU(3)),
            {"input_quant": "per-feature"},
        ),
        "int16": (
            lambda: seq(L.GRU(6, return_sequences=True), L.LSTM(4)),
            {"activations": "int16"},
        ),
        "conv_stride": (
            lambda: seq(
                L.Conv1D(6, 3, strides=2, padding="causal", activation="relu"),
                L.MaxPooling1D(2),
                L.GRU(5),
                L.Dense(3),
            ),
            {},
        ),
        "conv_valid": (
            lambda: seq(L.Conv1D(4, 3), L.BatchNormalization(), L.LSTM(4), L.Dense(2)),
            whole,
        ),
        "bidir": (
            lambda: seq(L.Bidirectional(L.GRU(4, return_sequences=True)), L.Dense(3)),
            whole,
        ),
        "backwards": (lambda: seq(L.LSTM(4, go_backwards=True), L.Dense(2)), whole),
        "lnorm": (
            lambda: seq(L.GRU(6, return_sequences=True), L.LayerNormalization(), L.Dense(3)),
            {},
        ),
        "graph": (graph, {}),
        "two_inputs": (two_inputs, {}),
        "repeat": (
            lambda: seq(L.LSTM(6), L.RepeatVector(3), L.GRU(5, return_sequences=True), L.Dense(4)),
            {},
        ),
        "framed": (lambda: seq(L.GRU(5), L.Dense(2)), {"samples_per_step": 2}),
        "tokens": (tokens, {}),
        "seq2seq": (seq2seq, {}),
    }


def _calibration(name: str, model: Any) -> Any:
    rng = np.random.default_rng(0)
    if name == "tokens":
        return rng.integers(1, 20, size=(16, T)).astype(np.int32)
    if name == "seq2seq":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import seq2seq_keras  # noqa: PLC0415

        return seq2seq_keras.data(True, vocab_in=12, vocab_out=9)
    features = sum(int(t.shape[-1]) for t in model.inputs)
    return rng.normal(size=(16, T, features)).astype(np.float32)


def build_models(folder: Path) -> None:
    import keras  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, (make, _)) in enumerate(_models().items()):
        keras.utils.set_random_seed(100 + i)
        model = make()
        for w in model.weights:  # non-trivial normalization statistics
            if "moving_variance" in w.path or "moving_mean" in w.path:
                w.assign(np.random.default_rng(i).uniform(0.5, 1.5, w.shape).astype("float32"))
        model.save(folder / f"{name}.keras")
        calib = _calibration(name, model)
        arrays = calib if isinstance(calib, dict) else {"x": calib}
        np.savez(folder / f"{name}.npz", **arrays)


def export_all(models: Path, out: Path) -> None:
    from rnn2c.export import export_model  # noqa: PLC0415
    from rnn2c.export.data import Sequences  # noqa: PLC0415

    for name, (_, options) in _models().items():
        data = dict(np.load(models / f"{name}.npz"))
        calib: Any = data["x"]
        if name == "seq2seq":
            calib = Sequences(data["x"], data["y"], data["lengths"])
            options = {**options, "start_token": 0, "end_token": 1}
        export_model(str(models / f"{name}.keras"), calib, out / name, name=name, **options)
        print(f"exported {name}")


def compare(before: Path, after: Path) -> int:
    differ = 0
    for folder in sorted(p for p in before.iterdir() if p.is_dir() and p.name != "models"):
        other = after / folder.name
        cmp = filecmp.dircmp(folder, other)
        changed = [*cmp.diff_files, *cmp.left_only, *cmp.right_only]
        if changed:
            differ += 1
            print(f"{folder.name}: differs in {', '.join(sorted(changed))}")
            if any(f.endswith((".c", ".h")) for f in changed):
                print(f"  outputs: {_outputs_equal(folder, other, folder.name)}")
        else:
            print(f"{folder.name}: identical")
    return 1 if differ else 0


def _outputs_equal(a: Path, b: Path, name: str) -> str:
    from rnn2c.emulator.build import load_model  # noqa: PLC0415
    from rnn2c.emulator.verify import read_export_dir  # noqa: PLC0415

    try:
        qm = read_export_dir(a).qmodel
        if not hasattr(qm, "quantize_input"):
            return "not compared (an encoder-decoder)"
        data = dict(np.load(a.parent / "models" / f"{name}.npz"))
        xq = qm.quantize_input(data["x"])
        ya, yb = load_model(a, name).run(xq), load_model(b, name).run(xq)
    except Exception as e:  # noqa: BLE001 - a report, not a check of its own
        return f"not compared ({type(e).__name__}: {e})"
    return "bit-identical" if np.array_equal(ya, yb) else "DIFFERENT"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="the folder to export into")
    p.add_argument("--models", type=Path, help="saved models to export (default: build them)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    if args.compare:
        return compare(*args.compare)
    if args.out is None:
        p.error("give --out DIR, or --compare BEFORE AFTER")
    models = args.models or args.out / "models"
    if args.models is None:
        build_models(models)
    export_all(models, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
