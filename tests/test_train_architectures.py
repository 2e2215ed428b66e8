"""`rnn2c train`'s architectures beyond a recurrent stack (issue 26): a causal Conv1D front end
(stride, pooling), Bidirectional layers, and the export precisions passed to EXPORT.txt. The
training view (padded, length masks) equals the saved model on each sequence cut to its length,
and what train builds exports and verifies bit-exact."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.train.data import Dataset
from rnn2c.train.model import (
    ALLOWED_LAYER_TYPES,
    ConfigError,
    FrontEnd,
    build_models,
    length_mask,
    real_steps,
)
from rnn2c.train.train import train_run
from tools import run_printed_lines


def _toy(n: int = 24, t: int = 16, f: int = 3, seed: int = 0, min_len: int = 8) -> Dataset:
    rng = np.random.default_rng(seed)

    def split(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = np.arange(m) % 2
        lengths = rng.integers(min_len, t + 1, size=m)
        x = np.zeros((m, t, f), dtype=np.float32)
        for i in range(m):
            drift = np.arange(lengths[i])[:, None] * (0.4 if y[i] else -0.4)
            x[i, : lengths[i]] = 3.0 + drift + rng.normal(scale=0.3, size=(lengths[i], f))
        return x, y.astype(np.int64), lengths.astype(np.int64)

    xtr, ytr, ltr = split(n)
    xte, yte, lte = split(n // 2)
    return Dataset(xtr, ytr, xte, yte, ltr, lte, ["down", "up"], "toy")


@pytest.mark.parametrize("seed", range(6))
def test_masked_training_view_equals_saved_model_on_cut_sequences(seed: int) -> None:
    """Random front ends (stride, pooling) and Bidirectional layers: the training view on
    padded sequences, its masks following the front end, gives what the saved chain gives on
    each sequence cut to its real length (what the C computes)."""
    rng = np.random.default_rng(seed)
    ds = _toy(seed=seed)
    fe = None
    if seed % 3 != 2:
        fe = FrontEnd(
            filters=int(rng.integers(2, 6)),
            kernel=int(rng.integers(1, 4)),
            stride=int(rng.integers(1, 3)),
            pool=str(rng.choice(["none", "max", "avg"])),
            pool_size=2,
        )
    cell = str(rng.choice(["gru", "lstm", "rnn"]))
    bidirectional = seed % 2 == 1
    keras.utils.set_random_seed(seed)
    models = build_models(
        3,
        2,
        real_steps(ds.x_train, ds.lengths_train),
        cell=cell,
        units=5,
        layers=int(rng.integers(1, 3)),
        frontend=fe,
        bidirectional=bidirectional,
    )
    types = {type(layer).__name__ for layer in models.infer.layers}
    assert types <= ALLOWED_LAYER_TYPES | {"InputLayer"}
    assert ("Bidirectional" in types) == bidirectional and ("Conv1D" in types) == (fe is not None)
    if fe is not None:  # a scale only: the exporter folds it into the causal Conv1D exactly
        assert not np.any(np.asarray(models.infer.get_layer("normalization").mean))
    mask = length_mask(ds.lengths_test, ds.x_test.shape[1])
    padded = np.asarray(models.train.predict([ds.x_test, mask], verbose=0))
    for i in range(len(ds.x_test)):
        n = int(ds.lengths_test[i])
        cut = np.asarray(models.infer.predict(ds.x_test[i : i + 1, :n], verbose=0))[0]
        np.testing.assert_allclose(padded[i], cut, atol=2e-5, rtol=0)


def test_frontend_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="--conv-stride 0"):
        FrontEnd(stride=0).check("classify")
    with pytest.raises(ConfigError, match="--task tag needs an output at every step"):
        FrontEnd(stride=2).check("tag")
    with pytest.raises(ConfigError, match="--pool 'min'"):
        FrontEnd(pool="min").check("classify")


@pytest.mark.parametrize(
    "kw",
    [
        {"frontend": "conv", "conv_filters": 4, "conv_stride": 2, "pool": "max", "cell": "gru"},
        {"bidirectional": True, "cell": "lstm", "activations": "int16"},
        {"bidirectional": True, "cell": "gru", "qat": True, "qat_epochs": 1},
    ],
    ids=["conv-stride-pool", "bidirectional-int16", "bidirectional-qat"],
)
def test_trained_architecture_exports_and_verifies_bit_exact(tmp_path: Path, kw: dict) -> None:
    """What train builds, exported with EXPORT.txt's own export line, verifies bit-exact and
    within the default thresholds against Keras."""

    run = tmp_path / "run"
    metrics = train_run(_toy(), run, units=6, steps=60, verbose=0, command="pytest", **kw)
    lines = (run / "EXPORT.txt").read_text().splitlines()
    export_line = next(ln for ln in lines if ln.startswith("rnn2c export"))
    verify_line = next(ln for ln in lines if ln.startswith("rnn2c verify"))
    if kw.get("bidirectional"):
        assert f"--max-length {metrics['max_length']}" in export_line
        assert "--stream" not in verify_line
        assert ("--activations int16" in export_line) == ("activations" in kw)
    if kw.get("qat"):  # a whole-sequence model's QAT reads its grid with a --max-length too
        assert metrics["qat"]["epochs_run"] == 1 and "forward_vs_c" in metrics["qat"]["test"]
    run_printed_lines(export_line, verify_line)  # verify: PASS (bit-exact, thresholds met)


def test_weights_passthrough_and_one_line_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = _toy()
    data = tmp_path / "d.npz"
    np.savez(
        data,
        x_train=ds.x_train,
        y_train=ds.y_train,
        x_test=ds.x_test,
        y_test=ds.y_test,
        lengths_train=ds.lengths_train,
        lengths_test=ds.lengths_test,
    )
    base = ["train", "--dataset", str(data), "--units", "4", "--epochs", "1", "--quiet"]
    out = tmp_path / "w"
    assert main([*base, "--out", str(out), "--weights", "int4"]) == 0
    text = (out / "EXPORT.txt").read_text()
    assert "--weights int4" in text and "--activations" not in text
    for extra, words in (
        (["--conv-stride", "2"], "--conv-stride applies with --frontend conv only"),
        (
            ["--frontend", "conv", "--conv-stride", "2", "--task", "tag"],
            "--task tag needs an output at every step",
        ),
        (["--task", "seq2seq", "--bidirectional"], "--bidirectional does not apply"),
    ):
        bad = tmp_path / "bad"
        code = main([*base, "--out", str(bad), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("rnn2c train: error:") and "\n" not in err
        assert words in err
        assert not bad.exists()
