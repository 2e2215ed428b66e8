"""Model building and training runs of `rnn2c train` (tiny and fast)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.train.cli import add_arguments, main  # noqa: E402
from rnn2c.train.data import Dataset  # noqa: E402
from rnn2c.train.model import (  # noqa: E402
    ALLOWED_LAYER_TYPES,
    build_model,
    build_models,
    length_mask,
    real_steps,
)
from rnn2c.train.train import best_checkpoint_callback, train_run  # noqa: E402

RUN_FILES = {
    "model.keras",
    "calib.npz",
    "test.npz",
    "metrics.json",
    "confusion.png",
    "curves.png",
    "EXPORT.txt",
    "rnn2c-run.json",
}


def _toy_dataset(n: int = 24, t: int = 9, f: int = 3, seed: int = 0) -> Dataset:
    """Two classes told apart by the sign of the drift; variable lengths, zero-padded."""
    rng = np.random.default_rng(seed)

    def split(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = np.arange(m) % 2
        lengths = rng.integers(4, t + 1, size=m)
        x = np.zeros((m, t, f), dtype=np.float32)
        for i in range(m):
            steps = np.arange(lengths[i])[:, None] * (1.0 if y[i] else -1.0)
            x[i, : lengths[i]] = 5.0 + steps + rng.normal(scale=0.3, size=(lengths[i], f))
        return x, y.astype(np.int64), lengths.astype(np.int64)

    xtr, ytr, ltr = split(n)
    xte, yte, lte = split(n // 2)
    return Dataset(xtr, ytr, xte, yte, ltr, lte, ["down", "up"], "toy")


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_length_masked_training_view_equals_saved_model_on_cut_sequences(cell: str) -> None:
    """Padding is masked by the real lengths: the training view on padded sequences gives what
    the saved single-input chain (no Masking layer) gives on each sequence cut to its length,
    and a real all-zero step is a step like any other."""
    ds = _toy_dataset()
    ds.x_test[0, 1] = 0.0  # a real step whose features are all 0.0 (an idle sensor)
    keras.utils.set_random_seed(1)
    models = build_models(
        3, 2, real_steps(ds.x_train, ds.lengths_train), cell=cell, units=6, layers=2, dropout=0.2
    )
    types = {type(layer).__name__ for layer in models.infer.layers}
    assert types <= ALLOWED_LAYER_TYPES and "Normalization" in types
    assert "Masking" not in types and len(models.infer.inputs) == 1
    if cell == "gru":
        assert all(
            layer.reset_after for layer in models.infer.layers if type(layer).__name__ == "GRU"
        )
    mask = length_mask(ds.lengths_test, ds.x_test.shape[1])
    padded = np.asarray(models.train.predict([ds.x_test, mask], verbose=0))
    for i in range(4):
        n = int(ds.lengths_test[i])
        cut = np.asarray(models.infer.predict(ds.x_test[i : i + 1, :n], verbose=0))[0]
        np.testing.assert_allclose(padded[i], cut, atol=1e-5, rtol=0)
    # the zero step counts: skipping it (what a Masking(0.0) layer did) changes the answer
    skipped = np.concatenate([ds.x_test[:1, :1], ds.x_test[:1, 2 : ds.lengths_test[0]]], axis=1)
    assert np.abs(models.infer.predict(skipped, verbose=0)[0] - padded[0]).max() > 1e-6


def test_normalization_adapted_on_real_steps_only() -> None:
    ds = _toy_dataset()
    steps = real_steps(ds.x_train, ds.lengths_train)
    assert steps.shape == (int(ds.lengths_train.sum()), 3)
    model = build_model(3, 2, steps, units=4)
    norm = model.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(norm.mean), steps.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(np.ravel(norm.variance), steps.var(axis=0), rtol=1e-3)


def _tiny_run(out: Path, seed: int = 0, **kw: object) -> dict[str, object]:
    args: dict[str, object] = dict(
        cell="gru", units=4, epochs=3, batch_size=8, seed=seed, patience=2, verbose=0
    )
    args.update(kw)
    return train_run(_toy_dataset(), out, command="pytest tiny run", **args)  # type: ignore[arg-type]


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    _tiny_run(tmp_path / "a", seed=3)
    _tiny_run(tmp_path / "b", seed=3)
    _tiny_run(tmp_path / "c", seed=4)
    wa = keras.saving.load_model(tmp_path / "a" / "model.keras").get_weights()
    wb = keras.saving.load_model(tmp_path / "b" / "model.keras").get_weights()
    wc = keras.saving.load_model(tmp_path / "c" / "model.keras").get_weights()
    assert len(wa) == len(wb)
    for a, b in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(wa, wc, strict=True))


def test_tiny_run_writes_the_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "tiny"
    metrics = _tiny_run(out, cell="lstm", dropout=0.1)
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["tiny"]  # no temp leftovers

    saved = json.loads((out / "metrics.json").read_text())
    assert saved["float_test_accuracy"] == metrics["float_test_accuracy"]
    assert saved["dataset"] == "toy" and saved["cell"] == "lstm"
    assert saved["units"] == 4 and saved["layers"] == 1 and saved["seed"] == 0
    assert saved["task"] == "classify" and saved["warnings"] == metrics["warnings"]
    assert set(saved["per_class_accuracy"]) == {"down", "up"}
    # the test split holds 6 sequences of each class: the overall accuracy is their mean
    per_class = saved["per_class_accuracy"]
    assert saved["float_test_accuracy"] == pytest.approx((per_class["down"] + per_class["up"]) / 2)
    assert 1 <= saved["epochs_run"] <= 3
    assert saved["command"] == "pytest tiny run"

    ds = _toy_dataset()
    test = np.load(out / "test.npz")
    np.testing.assert_array_equal(test["x"], ds.x_test)
    np.testing.assert_array_equal(test["y"], ds.y_test)
    np.testing.assert_array_equal(test["lengths"], ds.lengths_test)
    calib = np.load(out / "calib.npz")
    assert calib["x"].dtype == np.float32 and calib["x"].shape[1:] == ds.x_train.shape[1:]
    assert len(calib["lengths"]) == len(calib["x"]) == len(ds.x_train)

    export = (out / "EXPORT.txt").read_text()
    assert f"rnn2c export {out}/model.keras --calib {out}/calib.npz --out {out}/c" in export
    assert f"rnn2c verify {out}/model.keras {out}/c --data {out}/test.npz" in export
    for png in ("confusion.png", "curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    model = keras.saving.load_model(out / "model.keras")
    probs = np.concatenate(
        [
            model.predict(x[None, :n], verbose=0)
            for x, n in zip(test["x"], test["lengths"], strict=True)
        ]
    )
    guess = np.argmax(probs, axis=1)
    assert np.mean(guess == test["y"]) == pytest.approx(saved["float_test_accuracy"])
    for c, name in enumerate(("down", "up")):
        assert np.mean(guess[test["y"] == c] == c) == pytest.approx(per_class[name])


def test_best_checkpoint_prefers_val_accuracy_then_val_loss() -> None:
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    cb = best_checkpoint_callback(keras, patience=2, has_val=True)
    cb.set_model(model)
    model.stop_training = False  # fit() sets this; the test drives the callback by hand
    # (val_accuracy, val_loss) per epoch; the best is epoch 3: highest accuracy, and among the
    # epochs with that accuracy the lowest loss (epoch 1 has a lower loss but less accuracy).
    logs = [(0.5, 0.9), (0.75, 0.3), (1.0, 0.5), (1.0, 0.4), (1.0, 0.6), (0.75, 0.2), (1.0, 0.7)]
    saved = {}
    for epoch, (acc, loss) in enumerate(logs):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        saved[epoch] = [np.array(w) for w in model.get_weights()]
        cb.on_epoch_end(epoch, {"val_accuracy": acc, "val_loss": loss, "loss": 0.0})
        if model.stop_training:
            break
    assert cb.best_epoch == 3
    assert epoch == 6 and model.stop_training  # three epochs (> patience 2) without a better one
    cb.on_train_end()
    for got, want in zip(model.get_weights(), saved[3], strict=True):
        np.testing.assert_array_equal(got, want)


def test_tiny_run_records_the_training_schedule(tmp_path: Path) -> None:
    metrics = _tiny_run(tmp_path / "run", epochs=2)
    assert metrics["clipnorm"] == 1.0
    assert metrics["lr_schedule"]["kind"] == "warm-up then cosine"
    assert metrics["selection"].startswith("min training loss") and metrics["num_val"] == 0
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 2
    with_val = _tiny_run(tmp_path / "val", epochs=2, val_split=0.25)
    assert with_val["selection"].startswith("max val_accuracy") and with_val["num_val"] == 6
    assert any("validation split has only 6" in w for w in with_val["warnings"])


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rnn2c train")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_bad_dataset_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.ones((3, 4, 2)))
    out = tmp_path / "run"
    assert main(_parse(["--dataset", str(bad), "--out", str(out)])) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnn2c train: error: ") and err.count("\n") == 1
    assert "missing arrays" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_cli_help_shows_every_default() -> None:
    from rnn2c.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    text = sub.format_help()
    assert "--bidirectional" in text and "--frontend" in text  # issue 26: what export supports
    for action in sub._actions:
        if action.option_strings and action.dest not in ("help", "dataset", "out"):
            if action.const is None and action.nargs != 0:  # flags taking a value
                assert "default" in (action.help or ""), action.dest


def test_cli_refuses_non_empty_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    data = tmp_path / "d.npz"
    ds = _toy_dataset()
    np.savez(data, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
    assert main(_parse(["--dataset", str(data), "--out", str(out), "--epochs", "1"])) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
