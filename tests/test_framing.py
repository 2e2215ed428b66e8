"""Framed models (`rnn2c train --frame k`: a step reads k raw samples, sample-major): the header's
<NAME>_SAMPLES_PER_STEP / <NAME>_SAMPLE_SIZE, <name>_push_sample (one raw sample per call, a step
once per k, the partial frame in the state), k from --samples-per-step or the run folder's
metrics.json, and verify's push_sample check."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from test_cplusplus import CXX_STRICT
from test_generated_c import STRICT

from rnn2c.cli import main
from rnn2c.emulator import load_model, verify
from rnn2c.emulator.verify import check_push_sample, push_sample_check
from rnn2c.export import ExportError, export_model, serialize
from rnn2c.export.reference import run_int
from tools import need

L = keras.layers
F = 6  # inputs per step: k samples of F / k features


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A GRU over 6 inputs per step and a decimating one (a stride-2 Conv1D first), saved as
    .keras files, with calibration rows."""
    d = tmp_path_factory.mktemp("frame")
    keras.utils.set_random_seed(2)
    keras.Sequential([keras.Input((None, F)), L.GRU(5), L.Dense(3)]).save(d / "gru.keras")
    keras.Sequential(
        [
            keras.Input((None, F)),
            L.Conv1D(4, 2, strides=2, padding="causal"),
            L.GRU(4, return_sequences=True),
            L.Dense(2),
        ]
    ).save(d / "dec.keras")
    x = np.random.default_rng(0).normal(size=(12, 8, F)).astype(np.float32)
    np.save(d / "calib.npy", x)
    return {"gru": d / "gru.keras", "dec": d / "dec.keras", "calib": d / "calib.npy"}


def _export(run: dict[str, Path], out: Path, model: str = "gru", **kw: object):  # noqa: ANN202
    return export_model(str(run[model]), str(run["calib"]), out, name="fr", **kw)


def _define(header: str, macro: str) -> str | None:
    m = re.search(rf"^#define {macro} (\S+)", header, re.M)
    return m.group(1) if m else None


def test_header_macros_and_state_framed_and_unframed(run: dict[str, Path], tmp_path: Path) -> None:
    """Always SAMPLES_PER_STEP (1 unframed) and SAMPLE_SIZE; only a framed model's state holds
    the partial frame (its count and k x F / k bytes); the .c is the same either way; k is in the
    manifest and the saved quantized model."""
    plain = _export(run, tmp_path / "plain")
    framed = _export(run, tmp_path / "framed", samples_per_step=3)
    h1, h3 = (tmp_path / d / "fr.h" for d in ("plain", "framed"))
    t1, t3 = h1.read_text(), h3.read_text()
    assert (_define(t1, "FR_SAMPLES_PER_STEP"), _define(t1, "FR_SAMPLE_SIZE")) == ("1", "6")
    assert (_define(t3, "FR_SAMPLES_PER_STEP"), _define(t3, "FR_SAMPLE_SIZE")) == ("3", "2")
    assert "int fr_push_sample(fr_state_t *state" in t1 and "fr_push_sample(" in t3
    assert "frame" not in t1.split("typedef struct")[1].split("fr_state_t;")[0]
    struct = t3.split("typedef struct")[1].split("fr_state_t;")[0]
    assert "int32_t frame_fill;" in struct and "int8_t frame[6];" in struct
    grown = framed.manifest["state_bytes"] - plain.manifest["state_bytes"]
    assert grown >= 3 * 2 and f"framing adds\n *        {grown} of them" in t3
    assert (plain.manifest["samples_per_step"], framed.manifest["samples_per_step"]) == (1, 3)
    assert (tmp_path / "plain" / "fr.c").read_bytes() == (tmp_path / "framed" / "fr.c").read_bytes()
    assert serialize.load(tmp_path / "framed" / "fr_qmodel.npz").samples_per_step == 3
    assert serialize.load(tmp_path / "plain" / "fr_qmodel.npz").samples_per_step == 1
    c = load_model(tmp_path / "framed", "fr")
    assert c.state_size == c.declared_state_size == framed.manifest["state_bytes"]
    assert c.samples_per_step == 3


@pytest.mark.parametrize(("model", "k"), [("gru", 1), ("gru", 2), ("gru", 3), ("dec", 2)])
def test_push_sample_bit_exact_with_step(
    run: dict[str, Path], tmp_path: Path, model: str, k: int
) -> None:
    """Random framed rows, each fed one sample at a time through push_sample: the outputs of
    step on the rows (and the integer reference) bit for bit; a call returns 1 only on a row's
    last sample, and then only where the step gives a new output (a stride-2 Conv1D: every
    other step), leaving output untouched otherwise."""
    res = _export(run, tmp_path / "c", model, samples_per_step=k)
    compiled = load_model(tmp_path / "c", "fr")
    rng = np.random.default_rng(k)
    xq = rng.integers(-128, 128, size=(9, 7, F)).astype(np.int8)
    lengths = rng.integers(1, 8, size=9).astype(np.int32)
    want = compiled.run(xq, lengths)
    np.testing.assert_array_equal(want, run_int(res.qmodel, xq, lengths))
    got, rc = compiled.push(xq, lengths)
    np.testing.assert_array_equal(got, want)
    real = np.arange(7)[None, :] < lengths[:, None]
    assert not rc[..., :-1].any()
    new = np.ones(7, bool) if model == "gru" else np.arange(7) % 2 == 0  # outputs at 0, 2, 4, ...
    np.testing.assert_array_equal(rc[..., -1], (real & new[None, :]).astype(np.int32))


PROGRAM = """
#include <stdio.h>
#include "fr.h"
#define N %(n)d
static const int8_t samples[N][FR_SAMPLE_SIZE] = { %(samples)s };
int main(void)
{
    fr_state_t state;
    int8_t junk[FR_SAMPLE_SIZE];
    int8_t y[FR_OUTPUT_SIZE];
    int i;
    int j;
    for (i = 0; i < FR_OUTPUT_SIZE; ++i) {
        y[i] = 55; /* output is untouched until a step runs */
    }
    fr_reset(&state);
    for (i = 0; i < FR_SAMPLES_PER_STEP - 1; ++i) { /* a partial frame, then reset */
        for (j = 0; j < FR_SAMPLE_SIZE; ++j) {
            junk[j] = (int8_t)(100 - 7 * i - j);
        }
        if (fr_push_sample(&state, junk, y) != 0) {
            return 2;
        }
    }
    fr_reset(&state);
    for (i = 0; i < N; ++i) {
        const int r = fr_push_sample(&state, samples[i], y);
        printf("%%d", r);
        for (j = 0; j < FR_OUTPUT_SIZE; ++j) {
            printf(" %%d", y[j]);
        }
        printf("\\n");
    }
    return 0;
}
"""


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_partial_frame_dropped_by_reset(run: dict[str, Path], tmp_path: Path, lang: str) -> None:
    """A C program (strict flags; also as C++): a partial frame, reset, then a stream of 3 x 4 + 2
    samples one at a time. A step at every 3rd sample only, its output the reference's for the
    frames as if the partial frame had never been; the 2 samples left over step nothing and
    leave the output as it was."""
    need("gcc", "g++")
    res = _export(run, tmp_path, samples_per_step=3)
    rng = np.random.default_rng(7)
    samples = rng.integers(-128, 128, size=(14, 2)).astype(np.int8)
    (tmp_path / "main.c").write_text(
        PROGRAM
        % {
            "n": len(samples),
            "samples": ", ".join(f"{{{int(a)}, {int(b)}}}" for a, b in samples),
        }
    )
    cc = ["gcc", "-std=c99", *STRICT] if lang == "c" else ["g++", *CXX_STRICT, "-x", "c++"]
    exe = tmp_path / "prog"
    srcs = [str(tmp_path / "main.c"), str(tmp_path / "fr.c")]
    subprocess.run([*cc, "-O2", "-I", str(tmp_path), *srcs, "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    rows = np.array([[int(v) for v in line.split()] for line in lines.splitlines()])
    rc, y = rows[:, 0], rows[:, 1:]
    np.testing.assert_array_equal(rc, [0, 0, 1] * 4 + [0, 0])
    frames = samples[:12].reshape(1, 4, 3 * 2)
    ref = run_int(res.qmodel, frames, None)[0]
    np.testing.assert_array_equal(y[2::3][:4], ref)
    np.testing.assert_array_equal(y[:2], 55)  # before the first step
    np.testing.assert_array_equal(y[12:], [ref[-1], ref[-1]])  # the leftover samples


def _cli_export(run: dict[str, Path], out: Path, *extra: str) -> int:
    """rnn2c export on the GRU; its exit status (argparse's errors exit through SystemExit)."""
    try:
        return main(
            ["export", str(run["gru"]), "--calib", str(run["calib"]), "--out", str(out), *extra]
        )
    except SystemExit as e:
        return int(e.code or 0)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("4", "--samples-per-step 4 does not divide the model's 6 inputs per step"),
        ("0", "--samples-per-step 0: expected a whole number of samples per step, 1 or more"),
        ("-2", "--samples-per-step -2: expected a whole number"),
        ("two", "argument --samples-per-step: invalid int value: 'two'"),
    ],
)
def test_bad_samples_per_step_one_line(
    run: dict[str, Path], tmp_path: Path, capsys, flag: str, message: str
) -> None:  # noqa: ANN001
    rc = _cli_export(run, tmp_path / "c", "--samples-per-step", flag)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("rnn2c export: error: ")
    assert message in err
    assert not (tmp_path / "c").exists()


def test_framing_refused_for_token_and_seq2seq_models(tmp_path: Path) -> None:
    ids = keras.Input((None,), dtype="int32")
    tok = keras.Model(ids, L.GRU(3)(L.Embedding(9, 4)(ids)))
    calib = np.random.default_rng(0).integers(0, 9, size=(5, 6)).astype(np.int32)
    with pytest.raises(ExportError, match=r"samples_per_step=2: this model reads token ids"):
        export_model(tok, calib, tmp_path / "t", samples_per_step=2)
    assert export_model(tok, calib, tmp_path / "t1", samples_per_step=1).qmodel.vocab == 9
    assert "#define MODEL_SAMPLES_PER_STEP 1 " in (tmp_path / "t1" / "model.h").read_text()
    import seq2seq_keras as s2s  # noqa: PLC0415

    from rnn2c.export.data import Sequences  # noqa: PLC0415

    d = s2s.data(True)
    with pytest.raises(ExportError, match=r"framing is for single-input models"):
        export_model(
            s2s.build(units=4, embed=3),
            Sequences(d["x"], d["y"], d["lengths"]),
            tmp_path / "s",
            start_token=0,
            end_token=1,
            samples_per_step=2,
        )
    assert not (tmp_path / "t").exists() and not (tmp_path / "s").exists()


def _run_folder(run: dict[str, Path], folder: Path, metrics: object) -> Path:
    """model.keras beside a metrics.json (as `rnn2c train` leaves them)."""
    folder.mkdir()
    (folder / "model.keras").write_bytes(run["gru"].read_bytes())
    text = metrics if isinstance(metrics, str) else json.dumps(metrics)
    (folder / "metrics.json").write_text(text)
    return folder / "model.keras"


@pytest.mark.parametrize(
    ("metrics", "flag", "k"),
    [
        ({"frame": 3, "class_names": ["a", "b"]}, None, 3),
        ({"frame": 3}, "1", 1),  # the flag wins
        ({"frame": 3}, "2", 2),
        ({"frame": 1}, None, 1),  # an unframed run
        ({"task": "classify"}, None, 1),  # no frame key
        ("not json", None, 1),
        ({"frame": 4}, "3", 3),  # a frame that does not fit, overridden
    ],
)
def test_samples_per_step_from_metrics_json(
    run: dict[str, Path], tmp_path: Path, capsys, metrics: object, flag: str | None, k: int
) -> None:  # noqa: ANN001
    model = _run_folder(run, tmp_path / "run", metrics)
    out = tmp_path / "c"
    extra = ["--samples-per-step", flag] if flag else []
    assert (
        main(["export", str(model), "--calib", str(run["calib"]), "--out", str(out), *extra]) == 0
    )
    text = capsys.readouterr().out
    header = (out / "model.h").read_text()
    assert _define(header, "MODEL_SAMPLES_PER_STEP") == str(k)
    assert json.loads((out / "rnn2c.json").read_text())["samples_per_step"] == k
    assert ("framed: " in text) == (k > 1)
    assert ('metrics.json "frame"' in text) == (flag is None and k > 1)


def test_metrics_frame_that_does_not_fit_is_refused(
    run: dict[str, Path], tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    model = _run_folder(run, tmp_path / "run", {"frame": 4})
    before = hashlib.sha256((tmp_path / "run" / "metrics.json").read_bytes()).hexdigest()
    rc = main(["export", str(model), "--calib", str(run["calib"]), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert 'metrics.json "frame" 4 does not divide the model\'s 6 inputs per step' in err
    assert "pass --samples-per-step K" in err
    assert not (tmp_path / "c").exists()
    assert hashlib.sha256((tmp_path / "run" / "metrics.json").read_bytes()).hexdigest() == before


def test_verify_checks_push_sample(run: dict[str, Path], tmp_path: Path) -> None:
    """verify feeds a framed export's rows one sample at a time and reports push_sample; an
    unframed export has no such row; a push_sample output that differs is caught."""
    x = np.random.default_rng(1).normal(size=(10, 6, F)).astype(np.float32)
    _export(run, tmp_path / "f", samples_per_step=2)
    report = verify(str(run["gru"]), tmp_path / "f", x)
    assert report.passed and report.push_sample is True and report.samples_per_step == 2
    assert re.search(r"push_sample == step\s+bit-exact\s+2 samples per step", report.table())
    _export(run, tmp_path / "p")
    plain = verify(str(run["gru"]), tmp_path / "p", x)
    assert plain.passed and plain.push_sample is None and plain.samples_per_step is None
    assert "push_sample" not in plain.table()
    compiled = load_model(tmp_path / "f", "fr")
    xq = serialize.load(tmp_path / "f" / "fr_qmodel.npz").quantize_input(x)
    y = compiled.run(xq)
    assert push_sample_check(compiled, xq, None, y) is True
    y[3, 2, 1] ^= 1
    assert push_sample_check(compiled, xq, None, y) is False
    check_push_sample(report, compiled, xq, None, y)  # as verify does with step's outputs
    assert not report.passed and report.failures == ["push_sample output differs from step"]
    assert re.search(r"push_sample == step\s+NO", report.table())
