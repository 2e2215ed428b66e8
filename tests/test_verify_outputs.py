"""verify tells the truth about outputs (issue 21).

1. A calibrated output range (a linear or relu head): every verify reports the share of float
   outputs outside the int8 output range and of int8 outputs at -128/127, and a failing
   mean-error check names that clipping as its cause.
2. Numeric targets per step (y [N, T, k], or [N, T] for one output) of a model that returns
   sequences: compared at every real step (MAE/RMSE float and int8, task "regress per step");
   shapes that fit neither the model's steps nor its outputs are refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.emulator import load_model, verify
from rnn2c.export import ExportError, export_model
from rnn2c.export.data import Sequences
from rnn2c.export.serialize import load as load_qmodel

F, T, N = 3, 12, 24
L = keras.layers


def _forecaster() -> keras.Model:
    """A forecaster's shape: LSTM -> Dense(1), linear (its output range is calibrated)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((None, F)), L.LSTM(6), L.Dense(1)])


def _per_step(k: int) -> keras.Model:
    """A model that returns sequences, k linear outputs at every step."""
    keras.utils.set_random_seed(k)
    return keras.Sequential([keras.Input((None, F)), L.GRU(5, return_sequences=True), L.Dense(k)])


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("outputs")
    rng = np.random.default_rng(0)
    calm = (0.05 * rng.normal(size=(N, T, F))).astype(np.float32)  # the calibration set
    storm = (3.0 * rng.normal(size=(N, T, F))).astype(np.float32)  # far beyond its range
    np.savez(d / "calm.npz", x=calm)
    np.savez(d / "storm.npz", x=storm)
    model = _forecaster()
    model.save(d / "fc.keras")
    export_model(model, calm, d / "fc")
    for k in (1, 2):
        export_model(_per_step(k), calm, d / f"step{k}")
    return d


def _range(out: Path) -> tuple[float, float]:
    """The export's int8 output range, half a step beyond -128 and 127 (its float values that
    round into it)."""
    oq = load_qmodel(out / "model_qmodel.npz").output_q
    half = float(oq.scale) / 2
    return float(oq.dequantize(np.int64(-128))) - half, float(oq.dequantize(np.int64(127))) + half


def test_clipping_is_reported_and_named_in_the_fail_line(ws: Path, capsys) -> None:  # noqa: ANN001
    argv = ["verify", str(ws / "fc.keras"), str(ws / "fc"), "--data", str(ws / "storm.npz")]
    rc = main([*argv, "--json", str(ws / "storm.json")])
    out = capsys.readouterr().out
    lo, hi = _range(ws / "fc")
    x = np.load(ws / "storm.npz")["x"]
    y = np.asarray(keras.models.load_model(ws / "fc.keras")(x, training=False))  # [N, 1]
    outside = float(((y < lo) | (y > hi)).mean())
    q = load_qmodel(ws / "fc" / "model_qmodel.npz")
    codes = load_model(ws / "fc", "model").run(q.quantize_input(x))[:, -1]
    at_limits = float(((codes == -128) | (codes == 127)).mean())
    assert outside > 0.5 and at_limits > 0  # the premise: the data leave the calibrated range
    assert rc == 1
    fail = out.rstrip().splitlines()[-1]
    assert fail.startswith("FAIL: mean error above threshold: "), fail
    assert (
        f"{100 * outside:.2f}% of float outputs lie outside the int8 output range "
        f"[{lo:.4g}, {hi:.4g}] (the calibration set does not cover the data's range" in fail
    )
    rows = {line.split("  ")[1]: line for line in out.splitlines() if line.startswith("  ")}
    assert f"{100 * outside:.2f}%" in rows["float outputs outside int8"]
    assert f"{100 * at_limits:.2f}%" in rows["int8 outputs at -128/127"]
    report = json.loads((ws / "storm.json").read_text())
    assert report["output_clipped"] == pytest.approx(outside)
    assert report["output_at_limits"] == pytest.approx(at_limits)
    assert report["output_limits"] == pytest.approx([lo, hi])
    assert not report["passed"]


@pytest.mark.parametrize("method", ["auto", "percentile"])
def test_the_fail_line_names_the_way_out_for_the_method(ws: Path, method: str, capsys) -> None:  # noqa: ANN001
    """auto picks among ranges of the calibration set (minmax among them): its way out is a
    wider --calib or --output-range, as minmax's; percentile's is to export with minmax."""
    x = np.load(ws / "calm.npz")["x"]
    model = keras.models.load_model(ws / "fc.keras")
    export_model(model, x, ws / f"fc_{method}", calibration=method)
    argv = ["verify", str(ws / "fc.keras"), str(ws / f"fc_{method}"), "--data"]
    assert main([*argv, str(ws / "storm.npz")]) == 1
    fail = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert "the calibration set does not cover the data's range" in fail
    if method == "auto":
        assert "--output-range LO:HI" in fail and "keeps the bulk" not in fail
    else:
        assert "--calibration percentile keeps the bulk" in fail


def test_within_the_calibrated_range_the_row_says_none_and_verify_passes(ws: Path, capsys) -> None:  # noqa: ANN001
    rc = main(["verify", str(ws / "fc.keras"), str(ws / "fc"), "--data", str(ws / "calm.npz")])
    out = capsys.readouterr().out
    assert rc == 0, out
    lo, hi = _range(ws / "fc")
    row = next(line for line in out.splitlines() if "float outputs outside int8" in line)
    assert "0.00%" in row and f"[{lo:.4g}, {hi:.4g}]" in row
    assert out.rstrip().endswith("PASS")


def _real_step_errors(
    model: keras.Model, out: Path, x: np.ndarray, y: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(float - y, int8 C - y) at every real step, each sequence through Keras cut to its own
    length and through the compiled C."""
    q = load_qmodel(out / "model_qmodel.npz")
    c_out = load_model(out, "model").run(q.quantize_input(x), lengths)
    err_f, err_i = [], []
    for i, n in enumerate(lengths):
        target = y[i, :n].reshape(n, -1)
        err_f.append(np.asarray(model(x[i : i + 1, :n], training=False))[0] - target)
        err_i.append(q.output_q.dequantize(c_out[i, :n]) - target)
    return np.concatenate(err_f), np.concatenate(err_i)


@pytest.mark.parametrize("k", [1, 2])
def test_per_step_targets_are_compared_at_every_real_step(ws: Path, k: int) -> None:
    rng = np.random.default_rng(k)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    lengths = rng.integers(3, T + 1, size=N)
    y = rng.normal(size=(N, T, k)).astype(np.float32)
    y = y[..., 0] if k == 1 else y  # one output: y [N, T]
    model, out = _per_step(k), ws / f"step{k}"
    report = verify(model, out, Sequences(x, y, lengths))
    err_f, err_i = _real_step_errors(model, out, x, y, lengths)
    assert report.task == "regress per step"
    assert report.steps == int(lengths.sum()) and err_f.shape == (int(lengths.sum()), k)
    assert report.float_mae == pytest.approx(float(np.abs(err_f).mean()), rel=1e-5)
    assert report.int8_mae == pytest.approx(float(np.abs(err_i).mean()), rel=1e-9)
    assert report.float_rmse == pytest.approx(float(np.sqrt((err_f**2).mean())), rel=1e-5)
    assert report.int8_rmse == pytest.approx(float(np.sqrt((err_i**2).mean())), rel=1e-9)
    assert report.float_mae != report.int8_mae
    assert "MAE per step float / int8" in report.table()


def test_targets_that_fit_neither_steps_nor_outputs_are_refused(ws: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    wrong_width = rng.normal(size=(N, T, 3)).astype(np.float32)  # the model has 2 outputs
    with pytest.raises(ExportError) as info:
        verify(_per_step(2), ws / "step2", Sequences(x, wrong_width, None))
    msg = str(info.value)
    assert "\n" not in msg and "(24, 12, 3)" in msg and f"[N, {T}, 2]" in msg
    per_step = rng.normal(size=(N, T)).astype(np.float32)  # one output per sequence
    with pytest.raises(ExportError) as info:
        verify(_forecaster(), ws / "fc", Sequences(x, per_step, None))
    msg = str(info.value)
    assert "\n" not in msg and "(24, 12)" in msg and "one output per sequence" in msg
