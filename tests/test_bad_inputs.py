"""Every bad input: exit 2, one line on stderr, no traceback, every pre-existing file unchanged.

Each case runs the CLI in a fresh copy of one workspace (a model, data, an earlier export with a
user's file beside it, a finished run folder), after an optional setup step; the whole workspace
is snapshotted (content and mode of every file, every folder and link) before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.export import export_model

F, T, K = 3, 10, 4
V = 12  # the token model's vocabulary


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under root: files by content and mode, links by target, folders by mode."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = f"dir:{p.stat().st_mode:o}"
        else:
            out[rel] = f"{p.stat().st_mode:o}:" + hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [keras.Input((T, F)), keras.layers.GRU(8), keras.layers.Dense(K, activation="softmax")]
    )
    model.save(ws / "good.keras")
    other = keras.Sequential(
        [keras.Input((T, F + 2)), keras.layers.GRU(8), keras.layers.Dense(K, activation="softmax")]
    )
    other.save(ws / "five.keras")
    nan = keras.models.clone_model(model)
    w = [np.array(a) for a in model.get_weights()]
    w[0][0, 0] = np.nan
    nan.set_weights(w)
    nan.save(ws / "nan.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, T, F)).astype(np.float32)
    np.savez(ws / "calib.npz", x=x[:20])
    y = np.asarray(model.predict(x[20:], verbose=0)).argmax(1)
    np.savez(ws / "data.npz", x=x[20:], y=y)
    (ws / "corrupt.keras").write_bytes(b"PK\x03\x04 truncated")
    (ws / "a_folder.keras").mkdir()
    export_model(ws / "good.keras", ws / "calib.npz", ws / "exp", name="m")
    bidir = keras.Sequential(
        [
            keras.Input((None, F)),
            keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True)),
            keras.layers.Dense(K, activation="softmax"),
        ]
    )
    bidir.save(ws / "bidir.keras")
    export_model(ws / "bidir.keras", ws / "calib.npz", ws / "biexp", name="b", max_length=T)
    tok = keras.Sequential(  # a token model: ids [N, T] into an Embedding (mask_zero)
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(V, 4, mask_zero=True),
            keras.layers.GRU(6),
            keras.layers.Dense(K, activation="softmax"),
        ]
    )
    tok.save(ws / "tok.keras")
    np.savez(ws / "ids.npz", x=rng.integers(1, V, size=(N20, T)).astype(np.int32))
    export_model(ws / "tok.keras", ws / "ids.npz", ws / "tokexp", name="t")
    (ws / "exp" / "main.c").write_text("/* the user's firmware */\nint main(void) { return 0; }\n")
    (ws / "run").mkdir()
    (ws / "run" / "rnn2c-run.json").write_text('{"rnn2c_version": "0.2.0", "files": []}\n')
    (ws / "run" / "notes.txt").write_text("a finished run\n")
    (ws / "plain_file").write_text("not a folder\n")
    return ws


@dataclass
class Case:
    id: str
    argv: list[str]  # {ws} is the workspace
    message: str  # part of the one line expected on stderr
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _npz(name: str, **arrays: object) -> Callable[[Path], None]:
    def make(ws: Path) -> None:
        x = np.load(ws / "calib.npz")["x"]
        np.savez(ws / name, **{"x": x, **arrays})  # type: ignore[arg-type]

    return make


def _write(rel: str, data: bytes) -> Callable[[Path], None]:
    def make(ws: Path) -> None:
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_bytes(data)

    return make


def _edit_weight(ws: Path) -> None:
    c = ws / "exp" / "m.c"
    c.write_text(c.read_text().replace("};", "}; /* edited */", 1))


EXPORT = ["export", "{ws}/good.keras", "--calib", "{ws}/calib.npz", "--out", "{ws}/exp", "--name"]
VERIFY = ["verify", "{ws}/good.keras", "{ws}/exp", "--data", "{ws}/data.npz"]
TRAIN = ["train", "--dataset", "{ws}/nowhere.npz", "--epochs", "1"]
N20 = 20

BIDIR = ["export", "{ws}/bidir.keras", "--calib", "{ws}/calib.npz", "--out", "{ws}/new"]
BIVERIFY = ["verify", "{ws}/bidir.keras", "{ws}/biexp", "--data"]

TOKEN = ["export", "{ws}/tok.keras", "--out", "{ws}/new", "--calib"]
TOKVERIFY = ["verify", "{ws}/tok.keras", "{ws}/tokexp", "--data"]


def _ids(name: str, x: np.ndarray) -> Callable[[Path], None]:
    return lambda ws: np.savez(ws / name, x=x)


CASES = [
    # --- token models (Embedding): ids [N, T] in 0..V-1
    Case("ids-float", [*TOKEN, "{ws}/calib.npz"], "x has dtype float32; a token model takes"),
    Case(
        "ids-negative",
        [*TOKEN, "{ws}/bad.npz"],
        "x holds ids from -3 to 5; the Embedding has 12 ids (0..11)",
        _ids("bad.npz", np.tile(np.arange(-3, 6), (4, 1))),
    ),
    Case(
        "ids-past-vocab",
        [*TOKVERIFY, "{ws}/bad.npz"],
        "x holds ids from 1 to 12; the Embedding has 12 ids",
        _ids("bad.npz", np.tile(np.arange(1, 13), (4, 1))),
    ),
    Case(
        "ids-interior-padding",
        [*TOKVERIFY, "{ws}/bad.npz"],
        "sequence 0 has the padding id 0 at step 1",
        _ids("bad.npz", np.array([[3, 0, 4, 0]] * 4)),
    ),
    Case(
        "ids-per-feature",
        [*TOKEN, "{ws}/ids.npz", "--input-quant", "per-feature"],
        "--input-quant per-feature does not apply to a token model: its input is the Embedding "
        "table, quantized with one scale; drop the flag",
    ),
    Case(
        "ids-bench",
        ["bench", "{ws}/tok.keras", "--calib", "{ws}/ids.npz", "--data", "{ws}/ids.npz"],
        "does not take token models",
    ),
    Case(
        "ids-firmware-float",
        ["firmware", "{ws}/tokexp", "--board", "mps2-an386", "--out", "{ws}/fw", "--data"]
        + ["{ws}/calib.npz"],
        "a token model takes integer ids",
    ),
    # --- whole-sequence models (Bidirectional, go_backwards): --max-length
    Case("max-length-missing", BIDIR, "give --max-length N"),
    Case("max-length-zero", [*BIDIR, "--max-length", "0"], "--max-length 0: expected 1 to"),
    Case("max-length-negative", [*BIDIR, "--max-length=-5"], "--max-length -5: expected 1 to"),
    Case("max-length-huge", [*BIDIR, "--max-length", "10000000"], "expected 1 to 1000000"),
    Case("max-length-text", [*BIDIR, "--max-length", "ten"], "invalid int value: 'ten'"),
    Case("max-length-float", [*BIDIR, "--max-length", "9.5"], "invalid int value: '9.5'"),
    Case("max-length-causal-zero", [*EXPORT, "m", "--max-length", "0"], "--max-length 0"),
    Case(
        "verify-stream-whole-sequence",
        [*BIVERIFY, "{ws}/data.npz", "--stream", "100"],
        "--stream does not apply to a whole-sequence model",
    ),
    Case(
        "verify-longer-than-max-length",
        [*BIVERIFY, "{ws}/long.npz"],
        "sequences run up to 12 steps but the export takes at most --max-length 10",
        lambda ws: np.savez(ws / "long.npz", x=np.zeros((3, 12, F), np.float32)),
    ),
    # --- calibration / data files
    Case(
        "lengths-strings",
        [*EXPORT[:3], "{ws}/bad.npz", *EXPORT[4:], "m"],
        "lengths has dtype <U1",
        _npz("bad.npz", lengths=np.array(["a"] * N20)),
    ),
    Case(
        "lengths-float",
        [*EXPORT[:3], "{ws}/bad.npz", *EXPORT[4:], "m"],
        "lengths has dtype float64",
        _npz("bad.npz", lengths=np.full(N20, 5.5)),
    ),
    Case(
        "lengths-2d",
        [*EXPORT[:3], "{ws}/bad.npz", *EXPORT[4:], "m"],
        "lengths has shape (20, 2)",
        _npz("bad.npz", lengths=np.full((N20, 2), 3)),
    ),
    Case(
        "lengths-complex",
        [*EXPORT[:3], "{ws}/bad.npz", *EXPORT[4:], "m"],
        "lengths has dtype complex128",
        _npz("bad.npz", lengths=np.full(N20, 3 + 1j)),
    ),
    Case(
        "lengths-out-of-range",
        [*EXPORT[:3], "{ws}/bad.npz", *EXPORT[4:], "m"],
        "lengths holds values from 0 to 0",
        _npz("bad.npz", lengths=np.zeros(N20, dtype=np.int64)),
    ),
    Case(
        "y-0d",
        [*VERIFY[:4], "{ws}/bad.npz"],
        "y has shape ()",
        _npz("bad.npz", y=np.array(3)),
    ),
    Case(
        "labels-out-of-range",
        [*VERIFY[:4], "{ws}/bad.npz"],
        "labels run from 7 to 7; the model has 4 classes",
        _npz("bad.npz", y=np.full(N20, 7)),
    ),
    Case(
        "labels-float",
        [*VERIFY[:4], "{ws}/bad.npz"],
        "y holds floats",
        _npz("bad.npz", y=np.full(N20, 0.5)),
    ),
    Case(
        "data-lengths-complex",
        [*VERIFY[:4], "{ws}/bad.npz"],
        "lengths has dtype complex128",
        _npz("bad.npz", lengths=np.full(N20, 1j)),
    ),
    Case("calib-not-numpy", [*EXPORT[:3], "{ws}/plain_file", *EXPORT[4:], "m"], "cannot read"),
    # --- models
    Case("nan-weight", ["export", "{ws}/nan.keras", *EXPORT[2:], "m"], "NaN or inf"),
    Case("corrupt-keras", ["export", "{ws}/corrupt.keras", *EXPORT[2:], "m"], "not a valid .keras"),
    Case("folder-as-model", ["export", "{ws}/a_folder.keras", *EXPORT[2:], "m"], "is a folder"),
    # --- names and output locations
    Case("name-250", [*EXPORT, "n" * 250], "--name is 250 characters long; use at most 48"),
    Case("name-runtime-guard", [*EXPORT, "RNN2C_RUNTIME"], "clashes with the runtime"),
    Case("name-stdint", [*EXPORT, "stdint"], "clash with the standard C header"),
    Case("name-stddef", [*EXPORT, "stddef"], "clash with the standard C header"),
    Case("name-main", [*EXPORT, "main"], "clash with the standard C header or program file"),
    Case(
        "out-component-300-bytes",
        [*EXPORT[:5], "{ws}/" + "d" * 300, "--name", "m"],
        "file systems allow at most 255",
    ),
    Case("out-under-a-file", [*EXPORT[:5], "{ws}/plain_file/sub", "--name", "m"], "is a file"),
    Case("out-is-a-file", [*EXPORT[:5], "{ws}/plain_file", "--name", "m"], "is a file"),
    Case(
        "broken-manifest",
        [*EXPORT[:5], "{ws}/o", "--name", "m"],
        "not an rnn2c manifest",
        _write("o/rnn2c.json", b"{ broken"),
    ),
    Case(
        "foreign-manifest",
        [*EXPORT[:5], "{ws}/o", "--name", "m"],
        "is not an rnn2c manifest",
        _write("o/rnn2c.json", b'{"hello": "world"}'),
    ),
    Case(
        "user-file-with-an-output-name",
        [*EXPORT[:5], "{ws}/o", "--name", "m"],
        "'m.h' exists and was not written by rnn2c",
        _write("o/m.h", b"/* mine */\n"),
    ),
    Case("edited-output", [*EXPORT, "m"], "'m.c' was edited since rnn2c wrote it", _edit_weight),
    Case(
        "output-is-own-input",
        ["export", "{ws}/good.keras", "--calib", "{ws}/o/m_qmodel.npz", "--out", "{ws}/o"]
        + ["--name", "m"],
        "this command's own input",
        lambda ws: (ws / "o").mkdir() or shutil.copy(ws / "calib.npz", ws / "o" / "m_qmodel.npz"),
    ),
    # --- verify
    Case(
        "broken-qmodel",
        VERIFY,
        "m_qmodel.npz",
        _write("exp/m_qmodel.npz", b"junk"),
    ),
    Case(
        "foreign-qmodel",
        VERIFY,
        "not a readable rnn2c quantized model",
        lambda ws: np.savez(
            ws / "exp" / "m_qmodel.npz",
            header=np.frombuffer(b'{"format": 4, "layers": [{"kind": "zz"}]}', np.uint8),
        ),
    ),
    Case("model-export-shapes-differ", ["verify", "{ws}/five.keras", *VERIFY[2:]], "takes 5"),
    Case("plot-missing-folder", [*VERIFY, "--plot", "{ws}/nope/v.png"], "does not exist"),
    Case("json-missing-folder", [*VERIFY, "--json", "{ws}/nope/v.json"], "does not exist"),
    Case("min-agreement-nan", [*VERIFY, "--min-agreement", "nan"], "--min-agreement nan"),
    Case("max-mean-error-nan", [*VERIFY, "--max-mean-error", "nan"], "--max-mean-error nan"),
    Case("min-agreement-1.5", [*VERIFY, "--min-agreement", "1.5"], "from 0 to 1"),
    Case("max-mean-error-negative", [*VERIFY, "--max-mean-error", "-1"], "from 0 to 1"),
    Case("stream-negative", [*VERIFY, "--stream", "-5"], "--stream -5"),
    Case("stream-absurd", [*VERIFY, "--stream", "100000000000"], "expected 0 (off)"),
    Case("stream-not-a-number", [*VERIFY, "--stream", "lots"], "invalid int value"),
    Case(
        "cache-dir-is-a-file",
        VERIFY,
        "RNN2C_CACHE_DIR",
        env={"RNN2C_CACHE_DIR": "{ws}/plain_file"},
    ),
    Case(
        "export-folder-missing",
        ["verify", "{ws}/good.keras", "{ws}/nope", *VERIFY[3:]],
        "/nope' does not exist; run `rnn2c export` first",
    ),
    # --- train
    Case("train-seed-negative", [*TRAIN, "--out", "{ws}/r", "--seed", "-1"], "--seed -1"),
    Case("train-noise-nan", [*TRAIN, "--out", "{ws}/r", "--noise", "nan"], "--noise nan"),
    Case("train-dropout-nan", [*TRAIN, "--out", "{ws}/r", "--dropout", "nan"], "--dropout nan"),
    Case("train-out-under-a-file", [*TRAIN, "--out", "{ws}/plain_file/r"], "is a file"),
    Case("train-over-a-run", [*TRAIN, "--out", "{ws}/run"], "pass --force"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    shutil.copytree(base, ws, symlinks=True)
    if case.setup is not None:
        case.setup(ws)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v.format(ws=ws))
    before = snapshot(tmp_path)
    capsys.readouterr()
    try:
        rc = main([a.format(ws=ws) for a in case.argv])
    except SystemExit as e:  # argparse
        rc = e.code
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("rnn2c "), err
    assert "Traceback" not in err and "PASS" not in out
    assert case.message in err, err

    assert snapshot(tmp_path) == before


def test_npy_under_an_npz_name_is_read_by_content(base: Path, tmp_path: Path) -> None:
    """Not a bad input at all: the file is a valid array, only misnamed."""
    x = np.load(base / "calib.npz")["x"]
    np.save(tmp_path / "calib.npy", x)
    (tmp_path / "calib.npy").rename(tmp_path / "calib.npz")
    argv = ["export", str(base / "good.keras"), "--calib", str(tmp_path / "calib.npz")]
    assert main([*argv, "--out", str(tmp_path / "c")]) == 0
    manifest = json.loads((tmp_path / "c" / "rnn2c.json").read_text())
    assert manifest["calibration_sequences"] == x.shape[0]
