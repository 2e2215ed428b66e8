"""Declared ranges (--input-range, --output-range): parsing over random valid and invalid specs,
the declared range in the quantized model's scales with the C bit-exact against the integer
reference (wider and narrower than calibration), clipping gone on inputs past calibration but
within the declared range, bad input refused in one line with nothing written, and the ranges
train --task forecast declares in EXPORT.txt."""

from __future__ import annotations

import json
import math
import shlex
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import join_range_values, main
from rnn2c.emulator import verify
from rnn2c.emulator.bench import bench
from rnn2c.emulator.build import load_model
from rnn2c.export import ExportError, export_model
from rnn2c.export.quant_rules import act_quant_from_range
from rnn2c.export.ranges import parse_range
from rnn2c.export.reference import run_int
from rnn2c.train.data import Series
from rnn2c.train.train import forecast_ranges, range_flags

F, T, OUT = 3, 12, 2
FLAGS = ("--input-range", "--output-range")


def _num(rng: np.random.Generator) -> tuple[str, float]:
    """A random number as a user might type it, and its value."""
    v = float(rng.choice([rng.normal(0, 10), rng.integers(-100, 100), rng.normal(0, 1e-3)]))
    text = str(rng.choice([f"{v:g}", f"{v:.3f}", f"{v:e}", repr(v)]))
    return text, float(text)


def _pair(rng: np.random.Generator) -> tuple[str, str, float, float]:
    (a, x), (b, y) = _num(rng), _num(rng)
    while x == y:
        (b, y) = _num(rng)
    return (a, b, x, y) if x < y else (b, a, y, x)


def test_random_valid_specs_parse_to_their_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for trial in range(300):
        flag = FLAGS[trial % 2]
        if rng.random() < 0.3:
            lo_t, hi_t, lo, hi = _pair(rng)
            r = parse_range(f"{lo_t}:{hi_t}", flag)
            assert r is not None and r.whole == (lo, hi) and not r.per
            want: dict[int, tuple[float, float]] | tuple[float, float] = (lo, hi)
        else:
            idx = rng.choice(40, size=int(rng.integers(1, 6)), replace=False)
            pairs = {int(i): _pair(rng) for i in idx}
            form = trial % 4
            if form == 0:  # text
                spec: object = ",".join(f"{i}:{p[0]}:{p[1]}" for i, p in pairs.items())
            elif form == 1:  # a .json object
                spec = tmp_path / f"r{trial}.json"
                spec.write_text(json.dumps({str(i): [p[2], p[3]] for i, p in pairs.items()}))
            elif form == 2:  # Python values through the API
                spec = {i: (p[2], p[3]) for i, p in pairs.items()}
            else:  # a .npz of lo, hi over 0..n-1
                n = int(max(pairs)) + 1
                pairs = {i: pairs.get(i, ("0", "1", 0.0, 1.0)) for i in range(n)}
                spec = tmp_path / f"r{trial}.npz"
                lo_hi = np.array([pairs[i][2:] for i in range(n)])
                np.savez(spec, lo=lo_hi[:, 0], hi=lo_hi[:, 1])
            r = parse_range(spec, flag)
            assert r is not None and r.whole is None
            want = {i: (p[2], p[3]) for i, p in pairs.items()}
            assert r.per == want
        again = parse_range(r.describe(), flag)  # the recorded syntax reads back the same
        assert again is not None and (again.whole or again.per) == want


def _invalid(rng: np.random.Generator) -> str:
    lo_t, hi_t, _, _ = _pair(rng)
    kind = int(rng.integers(0, 9))
    return [
        f"{hi_t}:{lo_t}",  # LO >= HI
        f"{lo_t}:{lo_t}",
        f"0:{lo_t}:{hi_t},0:{lo_t}:{hi_t}",  # an index twice
        f"{lo_t}:{hi_t},1:{lo_t}:{hi_t}",  # LO:HI mixed with per-index
        f"{lo_t}:{hi_t}:1:2",  # too many fields
        f"{lo_t}:nan",
        f"-1:{lo_t}:{hi_t}",  # negative index
        f"x:{hi_t}",
        f"{lo_t}:{hi_t}:",
    ][kind]


def test_random_invalid_specs_are_refused_in_one_line() -> None:
    rng = np.random.default_rng(1)
    for trial in range(200):
        spec, flag = _invalid(rng), FLAGS[trial % 2]
        with pytest.raises(ExportError) as e:
            parse_range(spec, flag)
        message = str(e.value)
        assert "\n" not in message and message.startswith(flag), message


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRU regressor with a linear head; calibration inputs in [-1, 1]."""
    ws = tmp_path_factory.mktemp("ranges")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((None, F)), keras.layers.GRU(8), keras.layers.Dense(OUT)])
    w = model.layers[-1].get_weights()
    model.layers[-1].set_weights([w[0] * 4.0, w[1]])
    model.save(ws / "reg.keras")
    soft = keras.Sequential(
        [keras.Input((None, F)), keras.layers.GRU(4), keras.layers.Dense(OUT, "softmax")]
    )
    soft.save(ws / "soft.keras")
    rng = np.random.default_rng(0)
    np.savez(ws / "calib.npz", x=rng.uniform(-1, 1, (24, T, F)).astype(np.float32))
    np.savez(ws / "wide.npz", x=rng.uniform(-3, 3, (16, T, F)).astype(np.float32))
    return ws


def _bit_exact(folder: Path, qmodel: object, x: np.ndarray) -> None:
    xq = qmodel.input_q.quantize(x).astype(np.int8)  # type: ignore[attr-defined]
    c = load_model(folder, "m").run(xq)
    assert np.array_equal(c, run_int(qmodel, xq))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lo", "hi", "out_lo", "out_hi"),
    [(-4.0, 4.0, -50.0, 50.0), (-0.5, 0.5, -0.25, 0.25)],
    ids=["wider", "narrower"],
)
def test_declared_range_sets_the_scales_and_the_c_stays_bit_exact(
    work: Path, tmp_path: Path, lo: float, hi: float, out_lo: float, out_hi: float
) -> None:
    res = export_model(
        work / "reg.keras",
        work / "calib.npz",
        tmp_path / "c",
        name="m",
        input_range=f"{lo}:{hi}",
        output_range=[out_lo, out_hi],
    )
    q = res.qmodel
    want_in, want_out = act_quant_from_range(lo, hi), act_quant_from_range(out_lo, out_hi)
    assert (q.input_q.scale, q.input_q.zero_point) == (want_in.scale, want_in.zero_point)
    assert (q.output_q.scale, q.output_q.zero_point) == (want_out.scale, want_out.zero_point)
    m = json.loads((tmp_path / "c" / "rnn2c.json").read_text())
    assert m["input_range"]["declared"] == f"{lo:g}:{hi:g}"
    assert m["output_range"]["all"] == [out_lo, out_hi]
    assert math.isclose(m["input_scale"], want_in.scale)
    narrower = [n for n in res.notes if "narrower than the calibration data" in n]
    assert len(narrower) == (2 if hi < 1.0 else 0)  # calibration reaches +-1: input and output
    _bit_exact(tmp_path / "c", q, np.load(work / "wide.npz")["x"])


def test_per_feature_ranges_replace_only_the_named_features(work: Path, tmp_path: Path) -> None:
    base = export_model(
        work / "reg.keras", work / "calib.npz", tmp_path / "a", "m", input_quant="per-feature"
    ).qmodel
    res = export_model(
        work / "reg.keras",
        work / "calib.npz",
        tmp_path / "b",
        "m",
        input_quant="per-feature",
        input_range="2:0:10,0:-16:16",
    )
    q = res.qmodel
    for f, (lo, hi) in {0: (-16, 16), 2: (0, 10)}.items():
        assert q.input_q.scale[f] == act_quant_from_range(lo, hi).scale
        assert q.input_q.zero_point[f] == act_quant_from_range(lo, hi).zero_point
    assert q.input_q.scale[1] == base.input_q.scale[1]  # not named: calibrated
    assert q.input_q.zero_point[1] == base.input_q.zero_point[1]
    _bit_exact(tmp_path / "b", q, np.load(work / "wide.npz")["x"] * 3)


def test_clipping_disappears_within_the_declared_range(work: Path, tmp_path: Path) -> None:
    """Inputs up to +-3 against calibration in +-1: the calibrated export clips inputs and
    outputs; declared ranges that cover them do not, and follow float more closely."""
    wide = work / "wide.npz"
    export_model(work / "reg.keras", work / "calib.npz", tmp_path / "cal", name="m")
    calibrated = verify(work / "reg.keras", tmp_path / "cal", wide)
    span = float(np.abs(calibrated.outputs[0]).max()) * 1.05
    res = export_model(
        work / "reg.keras",
        work / "calib.npz",
        tmp_path / "dec",
        name="m",
        input_range="-3.5:3.5",
        output_range=f"{-span}:{span}",
    )
    declared = verify(work / "reg.keras", tmp_path / "dec", wide)
    xq = res.qmodel.input_q.quantize(np.load(wide)["x"])
    assert not np.isin(xq, (-128, 127)).any()  # no input at the int8 limits
    assert calibrated.output_clipped > 0.05
    assert declared.output_clipped == 0.0
    assert declared.mean_abs_error < calibrated.mean_abs_error
    output = parse_range(f"{-span}:{span}", "--output-range").describe()  # type: ignore[union-attr]
    assert declared.bit_exact and declared.declared_ranges == f"input -3.5:3.5, output {output}"
    assert "declared ranges" in declared.table()


BAD = [
    (["--input-range", "3:1"], "LO 3 is not below HI 1"),
    (["--input-range", "a:b"], "is not a finite number"),
    (["--input-range", "7:0:1", "--input-quant", "per-feature"], "index 7 is out of range"),
    (["--input-range", "0:-1:1"], "need --input-quant per-feature"),
    (["--output-range", "5:0:1"], "index 5 is out of range"),
    (["--output-range", "0:1", "--model", "soft.keras"], "'softmax'"),
    (["--input-range", "missing.json"], "cannot read it"),
]


@pytest.mark.parametrize(("extra", "words"), BAD, ids=[w for _, w in BAD])
def test_bad_ranges_exit_2_in_one_line_and_write_nothing(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    extra = list(extra)
    model = "reg.keras"
    if "--model" in extra:
        i = extra.index("--model")
        model = extra[i + 1]
        del extra[i : i + 2]
    extra = [str(work / e) if e.endswith(".json") else e for e in extra]
    out = tmp_path / "c"
    argv = ["export", str(work / model), "--calib", str(work / "calib.npz"), "--out", str(out)]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnn2c export: error: ") and words in err
    assert not out.exists()


def test_negative_values_after_the_flags_reach_the_parser() -> None:
    argv = ["export", "m.keras", "--input-range", "-16:16", "--output-range", "-.5:2", "--x", "-1"]
    assert join_range_values(argv) == [
        "export",
        "m.keras",
        "--input-range=-16:16",
        "--output-range=-.5:2",
        "--x",
        "-1",
    ]


def _series(values: np.ndarray, start: int) -> Series:
    v = np.asarray(values, dtype=np.float32).reshape(len(values), -1)
    return Series(v, [f"c{i}" for i in range(v.shape[1])], "s", start)


def test_forecast_ranges_follow_the_trend() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(200.0)
    for _ in range(20):
        slope, level = rng.normal(0, 0.5), rng.normal(0, 20)
        noise = rng.normal(0, 1, 200)
        series = _series(level + slope * t + noise, 160)  # a line through signed values: linear
        lo, hi = forecast_ranges(series)
        line = series.values[:, 0].astype(np.float64)
        train = line[:160]
        assert lo[0] <= train.min() and hi[0] >= train.max()
        # the line's end is within the range its trend gives (up to the noise)
        assert lo[0] - 4 <= line[160:].min() and line[160:].max() <= hi[0] + 4
        growth = 100 * np.exp(abs(slope) / 20 * t) * (1 + 0.2 * np.sin(t / 2))  # positive: log
        lo, hi = forecast_ranges(_series(growth, 160))
        growth = growth.astype(np.float32).astype(np.float64)
        assert hi[0] >= growth.max() * 0.97 and lo[0] <= growth[:160].min()
    flat = np.sin(t / 3)
    lo, hi = forecast_ranges(_series(flat, 160))
    assert hi[0] - lo[0] <= 1.05 * (flat[:160].max() - flat[:160].min())


def test_train_forecast_declares_its_ranges_in_export_txt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = np.arange(160)
    series = (50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12)).astype(np.float32)  # trending
    data = tmp_path / "series.npz"
    np.savez(data, series=series)
    run = tmp_path / "run"
    argv = ["train", "--task", "forecast", "--dataset", str(data), "--out", str(run)]
    assert main([*argv, "--epochs", "1", "--units", "4", "--batch-size", "8", "--quiet"]) == 0
    flags = range_flags(*forecast_ranges(_series(series, 128)), 1, False)
    assert flags is not None
    text = (run / "EXPORT.txt").read_text()
    assert f"--input-range={flags[0]} --output-range={flags[1]}" in text
    hi = float(flags[0].split(":")[1])
    assert series[:128].max() < series.max() <= hi  # the test part is inside, not the training
    meta = json.loads((run / "metrics.json").read_text())
    assert meta["declared_ranges"] == {"input_range": flags[0], "output_range": flags[1]}
    export = next(line for line in text.splitlines() if line.startswith("rnn2c export"))
    capsys.readouterr()
    assert main(shlex.split(export)[1:]) == 0
    declared = parse_range(flags[0], "--input-range").describe()  # type: ignore[union-attr]
    assert f"declared ranges: input {declared}" in capsys.readouterr().out


def test_firmware_bench_and_size_take_and_show_the_ranges(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other commands that quantize a model file take the flags as export does; size
    shows what an export declared."""
    model, calib = str(work / "reg.keras"), str(work / "calib.npz")
    want = act_quant_from_range(-4, 4)
    out = tmp_path / "fw"
    argv = ["firmware", model, "--calib", calib, "--board", "mps2-an386", "--out", str(out)]
    assert main([*argv, "--input-range", "-4:4", "--output-range", "-9:9"]) == 0
    m = json.loads((out / "model" / "rnn2c.json").read_text())
    assert m["input_range"]["declared"] == "-4:4" and m["output_range"]["declared"] == "-9:9"
    assert math.isclose(m["input_scale"], want.scale)
    wide = work / "wide.npz"
    report = bench(model, wide, calib, rounds=1, peers=(), targets=(), input_range="-4:4")
    assert report.export["input_range"] == "-4:4"
    assert [r.path for r in report.rows] == ["float", "rnn2c"] and report.rows[1].bit_exact
    if shutil.which("arm-none-eabi-gcc") is None:
        return
    capsys.readouterr()
    assert main(["size", str(out / "model"), "--target", "cortex-m4"]) == 0
    assert "declared ranges (rnn2c.json): input -4:4, output -9:9" in capsys.readouterr().out


def _heads() -> dict[str, keras.Model]:
    """Models whose last layer has a calibrated output: a relu Dense, a merge, a Conv1D, a
    Dense with an activation variant."""
    keras.utils.set_random_seed(11)
    inp = keras.Input((None, F))
    h = keras.layers.GRU(6, return_sequences=True)(inp)
    add = keras.layers.Add()([keras.layers.Dense(OUT)(h), keras.layers.Dense(OUT)(h)])
    conv = keras.layers.Conv1D(OUT, 3, padding="causal")(h)
    return {
        "relu": keras.Sequential([inp, keras.layers.GRU(6), keras.layers.Dense(OUT, "relu")]),
        "merge": keras.Model(inp, add),
        "conv1d": keras.Model(inp, conv),
        "gelu": keras.Model(inp, keras.layers.Dense(OUT, "gelu")(h)),
    }


def test_declared_output_on_every_calibrated_head_is_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    calib = rng.uniform(-1, 1, (16, T, F)).astype(np.float32)
    x = rng.uniform(-2, 2, (6, T, F)).astype(np.float32)
    for name, model in _heads().items():
        lo, hi = sorted(rng.uniform(-6, 6, 2))  # wider or narrower than the calibrated range
        folder = tmp_path / name
        res = export_model(model, calib, folder, name="m", output_range=(lo, hi))
        want = act_quant_from_range(lo, hi)
        got = res.qmodel.output_q
        assert (got.scale, got.zero_point) == (want.scale, want.zero_point), name
        _bit_exact(folder, res.qmodel, x)
