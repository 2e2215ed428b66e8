"""`rnn2c train` beyond the defaults' classifier: the chance-level warning, masking by real
lengths against the C, Ctrl-C, and each task (regress, tag, forecast) end to end through the
CLI: train -> export -> verify on a tiny synthetic set, a few epochs each."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main  # noqa: E402
from rnn2c.emulator import verify  # noqa: E402
from rnn2c.export import export_model  # noqa: E402
from rnn2c.train.data import Dataset  # noqa: E402
from rnn2c.train.train import _wants_log, run_files, train_run  # noqa: E402
from tools import drift_split  # noqa: E402

TINY = ["--units", "4", "--batch-size", "8", "--quiet"]


def _drift_set(n: int = 24, t: int = 9, f: int = 3, seed: int = 0, zero_steps: bool = False):
    """Two classes told apart by the sign of the drift; variable lengths. With zero_steps,
    some real steps (not padding) are all 0.0, as an idle sensor gives."""
    rng = np.random.default_rng(seed)
    xtr, ytr, ltr = drift_split(rng, n, t, f, zero_steps=zero_steps)
    xte, yte, lte = drift_split(rng, n // 2, t, f, zero_steps=zero_steps)
    return Dataset(xtr, ytr, xte, yte, ltr, lte, ["down", "up"], "drift")


def _commands(run: Path) -> list[list[str]]:
    lines = (run / "EXPORT.txt").read_text().splitlines()
    return [shlex.split(s)[1:] for s in lines if s.startswith("rnn2c ")]


def test_chance_level_is_warned_in_summary_and_metrics_and_strict_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    x = np.ones((40, 6, 2), np.float32)  # every sequence the same: nothing to learn
    data = tmp_path / "same.npz"
    np.savez(
        data, x_train=x, y_train=rng.integers(0, 2, 40), x_test=x, y_test=rng.integers(0, 2, 40)
    )
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--out", str(run), "--epochs", "1", *TINY]
    assert main(argv) == 0  # warned, not failed, without --strict
    out = capsys.readouterr().out
    assert "WARNING: at chance level" in out and "barely move" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["chance_level"] is True
    assert any("at chance level" in w for w in metrics["warnings"])
    assert main([*argv, "--force", "--strict"]) == 1
    assert "--strict" in capsys.readouterr().err
    assert (run / "model.keras").is_file()  # the run folder is written either way


def test_real_all_zero_steps_give_the_same_output_in_keras_and_in_c(tmp_path: Path) -> None:
    ds = _drift_set(zero_steps=True)
    metrics = train_run(ds, tmp_path / "run", units=6, epochs=4, batch_size=8, verbose=0)
    export_model(tmp_path / "run" / "model.keras", tmp_path / "run" / "calib.npz", tmp_path / "c")
    report = verify(tmp_path / "run" / "model.keras", tmp_path / "c", tmp_path / "run" / "test.npz")
    assert report.bit_exact
    y_float, y_int = report.outputs
    assert np.abs(y_float - y_int).max() < 0.05  # the C sees the zero steps as Keras does
    # train's own evaluation (length masks on padded batches) is what verify measures on the
    # sequences cut to their real lengths
    assert report.float_accuracy == pytest.approx(metrics["float_test_accuracy"])
    # and a model that skipped the zero steps (Masking(0.0), the old behaviour) differs
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    n = int(ds.lengths_test[0])
    skipped = ds.x_test[:1, :n][:, np.any(ds.x_test[0, :n] != 0.0, axis=1)]
    assert np.abs(np.asarray(model(skipped))[0] - y_float[0]).max() > 1e-4


def test_ctrl_c_keeps_the_best_epoch_and_writes_the_run_folder(tmp_path: Path) -> None:
    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 3:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    metrics = train_run(
        _drift_set(), run, units=4, epochs=50, batch_size=8, verbose=0, callbacks=[CtrlC()]
    )
    assert metrics["interrupted"] is True and metrics["epochs_run"] == 4
    losses = metrics["history"]["loss"]
    assert len(losses) == 4 and metrics["best_epoch"] == int(np.argmin(losses)) + 1
    assert {p.name for p in run.iterdir()} == {*run_files("classify"), "rnn2c-run.json"}
    # the saved model is the best epoch's: it reproduces the recorded test accuracy
    model = keras.saving.load_model(run / "model.keras")
    test = np.load(run / "test.npz")
    pred = [
        np.argmax(model(x[None, :n])[0]) for x, n in zip(test["x"], test["lengths"], strict=True)
    ]
    assert np.mean(np.array(pred) == test["y"]) == pytest.approx(metrics["float_test_accuracy"])


def _export_and_verify(run: Path, capsys: pytest.CaptureFixture[str]) -> str:
    export, check = _commands(run)
    assert main(export) == 0
    capsys.readouterr()
    # 2 epochs on a toy set: the thresholds and the chance check are for trained models
    main([*check, "--min-agreement", "0", "--max-mean-error", "1"])
    return capsys.readouterr().out


def test_regress_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 8, 2)).astype(np.float32)
    y = np.stack([x[:, :, 0].mean(1), x[:, -1, 1]], axis=1)  # a vector per sequence
    data = tmp_path / "reg.npz"
    np.savez(data, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    run = tmp_path / "run"
    argv = ["train", "--task", "regress", "--dataset", str(data), "--out", str(run)]
    assert main([*argv, "--epochs", "3", *TINY]) == 0
    assert "float test MAE" in capsys.readouterr().out
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "regress" and m["target_names"] == ["y0", "y1"]
    assert {"float_test_mae", "float_test_rmse", "baselines"} <= set(m)
    assert (run / "scatter.png").is_file() and not (run / "confusion.png").exists()
    out = _export_and_verify(run, capsys)
    assert "MAE float / int8" in out and "RMSE float / int8" in out and "bit-exact" in out


def test_tag_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    # a label per step: 1 while the signal is above zero (event detection in a stream)
    x = rng.normal(size=(30, 20, 1)).astype(np.float32).cumsum(axis=1)
    y = (x[:, :, 0] > 0).astype(np.int64)
    lengths = rng.integers(10, 21, size=30)
    data = tmp_path / "tag.npz"
    np.savez(
        data,
        x_train=x[:20],
        y_train=y[:20],
        x_test=x[20:],
        y_test=y[20:],
        lengths_train=lengths[:20],
        lengths_test=lengths[20:],
    )
    run = tmp_path / "run"
    argv = ["train", "--task", "tag", "--dataset", str(data), "--out", str(run)]
    assert main([*argv, "--epochs", "3", *TINY]) == 0
    assert "float test accuracy per step" in capsys.readouterr().out
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "tag" and m["accuracy_unit"] == "per step"
    assert (run / "timeline.png").is_file()
    test = np.load(run / "test.npz")
    assert test["y"].shape == test["x"].shape[:2]
    out = _export_and_verify(run, capsys)
    assert "accuracy per step float / int8" in out and "bit-exact" in out
    assert f"10 / {int(lengths[20:].sum())}" in out  # every real step compared


def test_forecast_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = np.arange(240)
    series = np.sin(2 * np.pi * t / 12) + 0.01 * t
    data = tmp_path / "series.npz"
    np.savez(data, series=series.astype(np.float32))
    run = tmp_path / "run"
    argv = ["train", "--task", "forecast", "--dataset", str(data), "--out", str(run)]
    assert main([*argv, "--epochs", "2", "--horizon", "2", *TINY]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "forecast" and m["season"] == 12 and m["window"] == 24
    assert set(m["baselines"]) == {"naive", "seasonal_naive", "train_mean"}
    assert m["baselines"]["seasonal_naive"]["mae"] < m["baselines"]["naive"]["mae"]
    assert (run / "forecast.png").is_file()
    test = np.load(run / "test.npz")
    assert test["x"].shape[1:] == (24, 1) and test["y"].shape[1] == 2
    out = _export_and_verify(run, capsys)
    assert "MAE float / int8" in out and "bit-exact" in out


def ds_tail(ds: Dataset) -> tuple:
    return ds.lengths_train, ds.lengths_test, ds.class_names, ds.name


def test_counts_over_decades_are_trained_as_log1p(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.poisson(3.0, size=(24, 6, 1)).astype(np.float32)  # daily counts ...
    x[::4] *= 2000.0  # ... and a few places where they run into the thousands
    ds = Dataset(
        x[:16],
        np.arange(16) % 2,
        x[16:],
        np.arange(8) % 2,
        np.full(16, 6),
        np.full(8, 6),
        ["a", "b"],
        "counts",
    )
    m = train_run(ds, tmp_path / "run", units=2, epochs=1, verbose=0)
    assert m["input_transform"] == "log1p"
    calib = np.load(tmp_path / "run" / "calib.npz")
    assert 0 < calib["x"].max() < 11.0  # log1p of at most about 30000
    assert "log1p" in (tmp_path / "run" / "EXPORT.txt").read_text()
    assert not _wants_log(ds, "off")
    signed = Dataset(-ds.x_train, ds.y_train, -ds.x_test, ds.y_test, *ds_tail(ds))
    assert not _wants_log(signed, "auto")  # negative values: not counts


def test_bad_task_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.ones((6, 5, 1), np.float32)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x, y_train=np.zeros((6, 5), np.int64), x_test=x, y_test=np.zeros(6))
    cases = [
        (["--dataset", str(data)], "--task tag"),  # [N, T] labels without --task tag
        (["--dataset", str(data), "--task", "forecast"], "`series`"),
        (["--dataset", str(data), "--frame", "0"], "--frame 0"),
    ]
    for extra, message in cases:
        assert main(["train", "--out", str(tmp_path / "r"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "r").exists()
