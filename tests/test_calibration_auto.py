"""--calibration auto (export/calib_auto.py): a method per tensor range, chosen by the end-to-end
error of the integer reference against float on the calibration set.

Property over random tiny models: auto's score is never worse than that of any fixed method on
the same two-fold calibration metric, the search is deterministic, and the C is the integer
reference bit for bit after it; the CLI prints one line per range on stderr and records the
choices in rnn2c.json; a kept or declared (--input-range, --output-range) range is not chosen.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import Config, build, random_config
from rnn2c.cli import CALIBRATION_CHOICES, main
from rnn2c.emulator import load_model
from rnn2c.export import codec, export_model
from rnn2c.export.api import read_any
from rnn2c.export.calib_auto import CALIBRATION_CHOICES as AUTO_CHOICES
from rnn2c.export.calib_auto import CANDIDATES, Folds, quantize_auto
from rnn2c.export.quant_rules import CALIBRATION_METHODS, act_quant_from_range
from rnn2c.export.ranges import parse_range
from rnn2c.export.reference import run_int


def calib_set(seed: int, steps: int, features: int, n: int = 40) -> np.ndarray:
    """Features of different scales with heavy tails, where the methods' ranges differ."""
    rng = np.random.default_rng(seed)
    scales = rng.choice([0.3, 1.0, 3.0], size=features)
    return (rng.standard_t(3, size=(n, steps, features)) * scales).astype(np.float32)


def per_step_model(seed: int):  # noqa: ANN201
    """A SimpleRNN per-step regressor with a relu Dense before the linear head."""
    cfg = Config(
        seed=seed,
        features=3,
        steps=12,
        cells=["rnn"],
        units=[8],
        reset_after=[True],
        use_bias=[True],
        last_return_sequences=True,
        heads=[(6, "relu"), (2, "linear")],
    )
    return cfg, build(cfg)


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_auto_never_worse_than_a_fixed_method(seed: int) -> None:
    cfg = random_config(seed)
    cfg.steps = max(cfg.steps, 4)
    model = build(cfg)
    _, ir = read_any(model)
    x = calib_set(seed, cfg.steps, cfg.features)
    res = quantize_auto(ir, x, None)
    folds = Folds(ir, x, np.full(len(x), cfg.steps))  # the metric, measured afresh
    for method in CALIBRATION_METHODS:
        fixed = folds.score({}, method)
        assert fixed == res.fixed[method], cfg.describe()
        assert res.score.key() <= fixed.key(), f"{cfg.describe()}: auto worse than {method}"
    plan = {c.tensor: c.method for c in res.choices}
    assert folds.score(plan, res.start) == res.score, cfg.describe()
    assert {c.method for c in res.choices} <= set(CANDIDATES)
    assert res.choices and res.choices[0].tensor == "input"  # data-flow order: input first


def test_auto_is_deterministic_and_the_c_is_the_reference(tmp_path) -> None:  # noqa: ANN001
    cfg, model = per_step_model(5)
    x = calib_set(5, cfg.steps, cfg.features)
    _, ir = read_any(model)
    a, b = quantize_auto(ir, x, None), quantize_auto(ir, x, None)
    assert [(c.tensor, c.method, c.after) for c in a.choices] == [
        (c.tensor, c.method, c.after) for c in b.choices
    ]
    assert codec.to_bytes(a.qmodel) == codec.to_bytes(b.qmodel)
    assert len(a.choices) == 3  # input, the relu Dense's output, the head's output

    res = export_model(model, x, tmp_path / "c", name="ca", calibration="auto")
    assert res.manifest["calibration"] == "auto"
    assert codec.to_bytes(res.qmodel) == codec.to_bytes(a.qmodel)
    compiled = load_model(tmp_path / "c", "ca")
    xq = res.qmodel.quantize_input(calib_set(6, cfg.steps, cfg.features, 16))
    extremes = np.array([-128, 127], np.int8)[:, None, None] * np.ones((1, cfg.steps, 3), np.int8)
    xq = np.concatenate([xq, extremes])
    assert np.array_equal(compiled.run(xq), run_int(res.qmodel, xq))


def test_cli_prints_and_records_the_choices(tmp_path, capsys) -> None:  # noqa: ANN001
    assert CALIBRATION_CHOICES == AUTO_CHOICES
    cfg, model = per_step_model(7)
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "calib.npz", x=calib_set(7, cfg.steps, cfg.features))
    args = ["export", str(tmp_path / "m.keras"), "--calib", str(tmp_path / "calib.npz")]
    assert main([*args, "--out", str(tmp_path / "c"), "--calibration", "auto"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("rnn2c export: calibration auto: ")]
    record = json.loads((tmp_path / "c" / "rnn2c.json").read_text())
    assert record["calibration"] == "auto"
    choices = record["calibration_auto"]["choices"]
    assert len(lines) == 1 + len(choices) == 4
    for line, choice in zip(lines[1:], choices, strict=True):
        assert f": {choice['tensor']}: " in line and f" {choice['method']} (" in line
        assert f"{100 * choice['worst_after']:.2f}%" in line
    assert record["calibration_auto"]["worst"] == choices[-1]["worst_after"]

    assert main([*args, "--out", str(tmp_path / "d"), "--calibration", "minmax"]) == 0
    assert "calibration auto" not in capsys.readouterr().err
    record = json.loads((tmp_path / "d" / "rnn2c.json").read_text())
    assert record["calibration"] == "minmax" and "calibration_auto" not in record


def test_a_kept_range_is_not_chosen() -> None:
    cfg, model = per_step_model(9)
    _, ir = read_any(model)
    x = calib_set(9, cfg.steps, cfg.features)
    res = quantize_auto(ir, x, None, keep={"input", "2.output"})
    assert [c.tensor for c in res.choices] == ["1.output"]


def test_declared_ranges_are_kept_and_not_chosen() -> None:
    cfg, model = per_step_model(9)
    _, ir = read_any(model)
    x = calib_set(9, cfg.steps, cfg.features)
    declared_in = parse_range([-20.0, 20.0], "--input-range")
    declared_out = parse_range([-5.0, 5.0], "--output-range")
    res = quantize_auto(ir, x, None, input_range=declared_in, output_range=declared_out)
    assert [c.tensor for c in res.choices] == ["1.output"]
    assert res.qmodel.input_q.scale == act_quant_from_range(-20.0, 20.0).scale
    assert res.qmodel.output_q.scale == act_quant_from_range(-5.0, 5.0).scale
