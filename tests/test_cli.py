"""The CLI: export/verify round trip, and one clear line + exit 2 on bad input, nothing written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.export.reference import last_step, run_int
from rnn2c.export.serialize import load as load_qmodel


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(3)
    good = keras.Sequential(
        [keras.Input((12, 3)), keras.layers.GRU(8), keras.layers.Dense(4, activation="softmax")]
    )
    good.save(d / "good.keras")
    conv = keras.Sequential(
        [keras.Input((12, 3)), keras.layers.Conv1D(4, 3, name="conv1d"), keras.layers.GRU(4)]
    )
    conv.save(d / "conv.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12, 3)).astype(np.float32)
    np.savez(d / "calib.npz", x=x[:30])
    # labels a trained model would earn: the float model's own answers on all but 3 sequences
    y = np.asarray(good.predict(x[30:], verbose=0)).argmax(1)
    y[:3] = (y[:3] + 1) % 4
    np.savez(d / "data.npz", x=x[30:], y=y)
    np.savez(d / "data_random_labels.npz", x=x[30:], y=rng.integers(0, 4, 30))
    np.save(d / "calib.npy", x[:30])
    np.savez(d / "wrong_shape.npz", x=x[:, :, :2])
    nan = x[:30].copy()
    nan[0, 0, 0] = np.nan
    np.savez(d / "nan.npz", x=nan)
    np.savez(d / "two.npz", a=x, b=x)
    np.savez(d / "only_y.npz", y=np.zeros((30, 4)))  # targets alone are not the inputs
    (d / "corrupt.keras").write_bytes(b"not a zip")
    return {p.stem if p.suffix != ".npy" else "calib_npy": p for p in d.iterdir()}


def test_export_then_verify_passes(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "c"
    assert (
        main(
            [
                "export",
                str(files["good"]),
                "--calib",
                str(files["calib"]),
                "--out",
                str(out),
                "--name",
                "kws",
            ]
        )
        == 0
    )
    assert {"kws.h", "kws.c", "rnn2c_runtime.h", "rnn2c.json", "kws_qmodel.npz"} <= {
        p.name for p in out.iterdir()
    }
    header = (out / "kws.h").read_text()
    for macro in (
        "KWS_INPUT_SIZE 3",
        "KWS_OUTPUT_SIZE 4",
        "KWS_INPUT_SCALE",
        "KWS_INPUT_ZERO_POINT",
        "KWS_OUTPUT_SCALE",
        "KWS_OUTPUT_ZERO_POINT",
        "kws_state_t",
        "void kws_reset(",
        "void kws_step(",
    ):
        assert macro in header
    capsys.readouterr()
    json_path = tmp_path / "report.json"
    png = tmp_path / "report.png"
    args = ["--data", str(files["data"]), "--json", str(json_path), "--stream", "300"]
    assert main(["verify", str(files["good"]), str(out), *args, "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "bit-exact" in text and "argmax agreement" in text and "PASS" in text
    assert "stream C == reference" in text
    assert "stream output at int8 limits" not in text  # a softmax head has fixed ends
    assert '"bit_exact": true' in json_path.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_npy_calibration_is_accepted(files: dict[str, Path], tmp_path: Path) -> None:
    assert (
        main(
            [
                "export",
                str(files["good"]),
                "--calib",
                str(files["calib_npy"]),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )


def test_verify_fails_on_impossible_threshold(
    files: dict[str, Path], tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    out = tmp_path / "c"
    assert (
        main(["export", str(files["good"]), "--calib", str(files["calib"]), "--out", str(out)]) == 0
    )
    rc = main(
        [
            "verify",
            str(files["good"]),
            str(out),
            "--data",
            str(files["data"]),
            "--max-mean-error",
            "0",
        ]
    )
    assert rc == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("model", "calib", "extra", "message"),
    [
        (
            "conv",
            "calib",
            [],
            "a Conv1D with padding 'valid' or 'same', so its C runs whole sequences",
        ),
        ("corrupt", "calib", [], "is not a valid .keras file"),
        ("missing", "calib", [], "does not exist"),
        ("good", "wrong_shape", [], "x has 2 features per step but the model takes 3"),
        ("good", "nan", [], "NaN or inf"),
        ("good", "two", [], "none named 'x'"),
        ("good", "only_y", [], "none named 'x'"),
        ("good", "calib", ["--name", "2fast"], "is not a C identifier"),
        ("good", "calib", ["--name", "static"], "is a C keyword"),
    ],
)
def test_bad_input_one_line_exit_2_folder_untouched(
    files: dict[str, Path],
    tmp_path: Path,
    capsys,
    model: str,
    calib: str,
    extra: list[str],
    message: str,  # noqa: ANN001
) -> None:
    out = tmp_path / "c"
    assert (
        main(["export", str(files["good"]), "--calib", str(files["calib"]), "--out", str(out)]) == 0
    )
    before = _snapshot(out)
    capsys.readouterr()
    model_path = str(files.get(model, tmp_path / "missing.keras"))
    rc = main(["export", model_path, "--calib", str(files[calib]), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("rnn2c export: error: ")
    assert message in err
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no temp folders left behind


def test_out_is_a_file(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    f = tmp_path / "file"
    f.write_text("keep me")
    assert (
        main(["export", str(files["good"]), "--calib", str(files["calib"]), "--out", str(f)]) == 2
    )
    assert "is a file" in capsys.readouterr().err
    assert f.read_text() == "keep me"


def test_verify_on_missing_folder(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc = main(["verify", str(files["good"]), str(tmp_path / "nope"), "--data", str(files["data"])])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


def test_verify_api_with_one_hot_labels(files: dict[str, Path], tmp_path: Path) -> None:
    from rnn2c.emulator import verify
    from rnn2c.export.data import load_sequences

    out = tmp_path / "c"
    assert (
        main(["export", str(files["good"]), "--calib", str(files["calib"]), "--out", str(out)]) == 0
    )
    data = load_sequences(files["data"], "--data")
    assert data.y is not None
    # the accuracies from the answers themselves, not from verify: the float model's (Keras),
    # and the int8 C's (the integer reference's, which the C equals bit for bit); and sequences
    # where the two answer differently, so that neither figure can stand in for the other
    model = keras.saving.load_model(files["good"])
    q = load_qmodel(out / "model_qmodel.npz")
    x = np.concatenate([data.x, np.random.default_rng(5).normal(size=(3000, 12, 3))])
    x = x.astype(np.float32)
    float_answers = np.asarray(model.predict(x, verbose=0)).argmax(1)
    c_answers = last_step(run_int(q, q.quantize_input(x)), None).argmax(1)
    apart = 30 + np.flatnonzero(float_answers[30:] != c_answers[30:])[:4]
    assert apart.size > 0  # int8 and float disagree somewhere among 3000 random sequences
    keep = np.concatenate([np.arange(30), apart])
    y = np.concatenate([data.y, float_answers[apart]])  # y = the float answers on those
    plain = verify(str(files["good"]), out, type(data)(x[keep], y, None))
    hot = verify(str(files["good"]), out, type(data)(x[keep], np.eye(4)[y], None))
    # the fixture's y is the float model's own answer on all but 3 of its 30 sequences
    n = keep.size
    assert plain.float_accuracy == hot.float_accuracy == pytest.approx((n - 3) / n)
    want = np.mean(c_answers[keep] == y)
    assert want != pytest.approx((n - 3) / n)  # the two figures differ on these data
    assert plain.int8_accuracy == hot.int8_accuracy == pytest.approx(want)
