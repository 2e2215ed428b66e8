"""A verify that cannot be fooled, and the pieces it trusts (input quantizer, build cache)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.emulator import verify
from rnn2c.emulator.build import compile_model, load_model
from rnn2c.export import ExportError, export_model
from rnn2c.export.serialize import load as load_qmodel
from tools import need

F, T, K = 3, 12, 4


def _classifier(seed: int, head: tuple[int, str] = (K, "softmax"), units: int = 8) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((T, F)), keras.layers.GRU(units), keras.layers.Dense(head[0], head[1])]
    )


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("truth")
    model = _classifier(5)
    model.save(d / "model.keras")
    _classifier(6).save(d / "other.keras")  # same shapes, other weights
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, T, F)).astype(np.float32)
    np.savez(d / "calib.npz", x=x[:40])
    y = np.asarray(model.predict(x[40:], verbose=0)).argmax(1)
    np.savez(d / "data.npz", x=x[40:], y=y)
    np.savez(d / "random_labels.npz", x=x[40:], y=np.arange(40) % K)
    export_model(d / "model.keras", d / "calib.npz", d / "exp", name="m")
    return d


def _verify(ws: Path, *extra: str, model: str = "model.keras", data: str = "data.npz") -> int:
    return main(["verify", str(ws / model), str(ws / "exp"), "--data", str(ws / data), *extra])


def test_a_one_lsb_weight_edit_in_the_c_fails(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    exp = tmp_path / "exp"
    shutil.copytree(ws / "exp", exp)
    c = exp / "m.c"
    text = c.read_text()
    match = re.search(r"static const int8_t \w+_weight\[[^\]]+\][^=]* = \{\s*(-?\d+)", text)
    assert match is not None
    v = int(match.group(1))
    edited = text[: match.start(1)] + str(v + 1 if v < 127 else v - 1) + text[match.end(1) :]
    c.write_text(edited)
    capsys.readouterr()
    rc = main(["verify", str(ws / "model.keras"), str(exp), "--data", str(ws / "data.npz")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "export files edited after export: m.c" in out


def test_a_model_that_was_not_exported_is_refused(ws: Path, capsys) -> None:  # noqa: ANN001
    capsys.readouterr()
    assert _verify(ws, model="other.keras") == 2
    err = capsys.readouterr().err
    assert "is not the one" in err and err.count("\n") == 1


def test_a_float_model_at_chance_level_is_named(ws: Path, capsys) -> None:  # noqa: ANN001
    capsys.readouterr()
    assert _verify(ws) == 0
    assert "PASS" in capsys.readouterr().out
    assert _verify(ws, data="random_labels.npz") == 1
    out = capsys.readouterr().out
    assert "at chance level" in out and "not a quantization error" in out


def test_a_model_blind_to_its_input_is_named(tmp_path: Path) -> None:
    model = _classifier(8)
    w = model.get_weights()
    model.set_weights([np.zeros_like(a) for a in w[:-1]] + [w[-1] + np.arange(K)])
    x = np.random.default_rng(0).normal(size=(30, T, F)).astype(np.float32)
    export_model(model, x, tmp_path / "c")
    report = verify(model, tmp_path / "c", x)
    assert report.chance is not None and "nearly constant" in report.chance
    assert not report.passed


def test_a_one_output_sigmoid_classifier_gets_agreement_and_accuracy(tmp_path: Path) -> None:
    model = _classifier(9, head=(1, "sigmoid"))
    x = np.random.default_rng(3).normal(size=(60, T, F)).astype(np.float32)
    p = np.asarray(model.predict(x, verbose=0))[:, 0]
    w = model.get_weights()
    w[-1] = w[-1] - np.log(np.median(p) / (1 - np.median(p)))  # centre: balanced decisions
    model.set_weights(w)
    p = np.asarray(model.predict(x, verbose=0))[:, 0]
    y = (p > 0.5).astype(np.int64)
    y[:3] = 1 - y[:3]  # the labels a trained model would earn: right on 57 of 60
    from rnn2c.export.data import Sequences

    export_model(model, x[:30], tmp_path / "c")
    report = verify(model, tmp_path / "c", Sequences(x, y, None))
    table = report.table()
    assert report.classifier and report.head == "sigmoid"
    assert "agreement (p > 0.5)" in table and "accuracy float / int8" in table
    assert report.float_accuracy is not None and report.float_accuracy > 0.9
    assert report.agreement is not None and report.agreement >= 0.9


def test_stream_reports_the_worst_step_and_saturation(tmp_path: Path) -> None:
    """A forecaster calibrated on small inputs and run on larger ones saturates its int8 output:
    the stream report must show where and how often, not only the first and last sequence."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.LSTM(6), keras.layers.Dense(1, "linear")]
    )
    rng = np.random.default_rng(4)
    calib = 0.2 * rng.normal(size=(20, 16, 2)).astype(np.float32)
    export_model(model, calib, tmp_path / "c")
    test = 3.0 * rng.normal(size=(10, 16, 2)).astype(np.float32)
    report = verify(model, tmp_path / "c", test, stream_steps=400, max_mean_error=0.01)
    s = report.stream
    assert s is not None and s.bit_exact and s.steps == 400
    assert s.steps_over_threshold == int((s.errors > s.threshold).sum()) > 0
    assert s.at_limits > 0 and s.clipped > 0
    assert 0 <= s.worst_step < s.steps
    assert s.worst_step == s.worst_sequence * 16 + s.worst_step_in_sequence
    assert s.worst_error >= s.errors.max() and s.worst_error >= s.max_error_first
    table = report.table()
    assert "stream worst step" in table and "stream output at int8 limits" in table
    d = json.loads(report.to_json())
    assert {"worst_step", "steps_over_threshold", "at_limits", "clipped"} <= set(d["stream"])


def test_a_constant_input_channel_is_folded_not_silently_wiping_the_others(
    tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    rng = np.random.default_rng(6)
    x = rng.normal(size=(60, T, F)).astype(np.float32)
    x[:, :, 1] = 1000.0  # a sensor channel stuck at one value
    keras.utils.set_random_seed(6)
    norm = keras.layers.Normalization()
    norm.adapt(x.reshape(-1, F))
    model = keras.Sequential(
        [keras.Input((T, F)), norm, keras.layers.GRU(8), keras.layers.Dense(K, "softmax")]
    )
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "calib.npz", x=x[:30])
    y = np.asarray(model.predict(x[30:], verbose=0)).argmax(1)
    np.savez(tmp_path / "data.npz", x=x[30:], y=y)
    capsys.readouterr()
    argv = ["export", str(tmp_path / "model.keras"), "--calib", str(tmp_path / "calib.npz")]
    assert main([*argv, "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "note: input feature 1 (= 1000) never changes" in out
    q = load_qmodel(tmp_path / "c" / "model_qmodel.npz")
    w = q.layers[0].fc.weight[:, :F]  # type: ignore[attr-defined]  # the input columns
    assert (w[:, 1] == 0).all() and np.abs(w[:, [0, 2]]).max() > 60  # the others keep resolution
    report = verify(tmp_path / "model.keras", tmp_path / "c", tmp_path / "data.npz")
    assert report.passed and report.agreement is not None and report.agreement >= 0.95


def test_every_input_constant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="every input feature is constant"):
        export_model(_classifier(1), np.ones((4, T, F), np.float32), tmp_path / "c")
    assert not (tmp_path / "c").exists()


# --- the header's quantize_input against the Python quantizer --------------------------------

PROBE = """
#include <stdio.h>
#include <string.h>
#include "{name}.h"
int main(void)
{{
    unsigned int bits[{name_upper}_INPUT_SIZE];
    float x[{name_upper}_INPUT_SIZE];
    int8_t q[{name_upper}_INPUT_SIZE];
    int i;
    for (;;) {{
        for (i = 0; i < {name_upper}_INPUT_SIZE; ++i) {{
            if (scanf("%x", &bits[i]) != 1) return 0;
            memcpy(&x[i], &bits[i], sizeof x[i]);
        }}
        {name}_quantize_input(x, q);
        for (i = 0; i < {name_upper}_INPUT_SIZE; ++i) printf("%d ", q[i]);
        printf("\\n");
    }}
}}
"""


def _near_ties(scale: np.ndarray, zp: np.ndarray) -> np.ndarray:
    """Values at and a few float32 steps around every rounding tie of the int8 grid, plus NaN,
    infinities, zeros and huge values: [M, F] float32."""
    scale = np.atleast_1d(scale).astype(np.float64)
    zp = np.atleast_1d(zp).astype(np.float64)
    rows = []
    for k in range(-140, 140):
        tie = (k + 0.5 - zp) * scale
        t = tie.astype(np.float32)
        for d in range(-3, 4):
            rows.append(t + d * np.spacing(t))
    f = scale.size
    for v in (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-30):
        rows.append(np.full(f, v, np.float32))
    return np.asarray(rows, dtype=np.float32)


@pytest.mark.parametrize("input_quant", ["per-tensor", "per-feature"])
def test_quantize_input_in_c_equals_python_bit_for_bit(tmp_path: Path, input_quant: str) -> None:
    model = _classifier(2)
    rng = np.random.default_rng(9)
    calib = (rng.normal(size=(20, T, F)) * [1.0, 7.3, 0.05] + [0.3, -2.0, 0.01]).astype(np.float32)
    res = export_model(model, calib, tmp_path / "c", name="qz", input_quant=input_quant)
    iq = res.qmodel.input_q
    values = _near_ties(np.broadcast_to(iq.scale, F), np.broadcast_to(iq.zero_point, F))
    (tmp_path / "c" / "probe.c").write_text(PROBE.format(name="qz", name_upper="QZ"))
    exe = tmp_path / "probe"
    subprocess.run(
        ["gcc", "-std=c99", "-O2", "-Wall", "-Werror", "-I", str(tmp_path / "c")]
        + [str(tmp_path / "c" / "probe.c"), "-o", str(exe)],
        check=True,
    )
    stdin = "\n".join(
        " ".join(f"{struct.unpack('<I', struct.pack('<f', v))[0]:08x}" for v in row)
        for row in values
    )
    got = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True)
    c = np.array([[int(v) for v in line.split()] for line in got.stdout.splitlines()])
    want = iq.quantize(values).astype(np.int64)
    assert c.shape == want.shape
    np.testing.assert_array_equal(c, want)
    zp = np.broadcast_to(iq.zero_point, F)
    np.testing.assert_array_equal(want[-8], zp)  # NaN -> the zero point
    assert (want[-7] == 127).all() and (want[-6] == -128).all()  # +-inf saturate


# --- the build cache ------------------------------------------------------------------------


def test_cache_follows_the_compiler_not_its_name(ws: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    need("clang")  # a second compiler behind the same name
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cc = bin_dir / "mycc"
    cc.write_text('#!/bin/sh\nexec gcc "$@"\n')
    cc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("CC", "mycc")
    first = compile_model(ws / "exp", "m")
    assert compile_model(ws / "exp", "m") == first  # cached
    cc.write_text('#!/bin/sh\nexec clang "$@"\n')  # another compiler behind the same name
    from rnn2c.emulator.build import compiler_identity

    compiler_identity.cache_clear()
    assert compile_model(ws / "exp", "m") != first


def test_cc_with_flags_is_honoured(ws: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CC", "gcc -DRNN2C_PROBE_FLAG=1 -O1")
    with_flags = compile_model(ws / "exp", "m")
    monkeypatch.setenv("CC", "gcc")
    assert compile_model(ws / "exp", "m") != with_flags
    monkeypatch.setenv("CC", "no-such-compiler -O2")
    from rnn2c.emulator.build import BuildError

    with pytest.raises(BuildError, match="'no-such-compiler' not found"):
        compile_model(ws / "exp", "m")


def test_a_corrupt_cached_library_is_rebuilt(ws: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    shutil.copytree(ws / "exp", exp)
    (exp / "unused.h").write_text("/* a new cache entry, never loaded in this process */\n")
    lib = compile_model(exp, "m")
    lib.write_bytes(lib.read_bytes()[:100])  # truncated by a crash or a full disk
    model = load_model(exp, "m")
    assert model.input_size == F and lib.stat().st_size > 100
