"""ONNX models through the documented commands (issue 23): `rnn2c export MODEL.onnx`, `verify`
(onnxruntime on the same file is the float reference), `firmware --run` on an emulated board,
`size` and `bench` of the export; the library's export_model / verify with .onnx paths; the
bad inputs, each one line, exit 2, nothing written; rnn2c.export.export_torch without torch.

Every readable fixture of tests/onnx_fixtures (tests/test_onnx_reader.py's READABLE) goes
through export and verify on a few short sequences: the C bit-exact with the integer reference,
close to onnxruntime, and every model (one file of each dynamo/legacy pair) on mps2-an386
under QEMU (firmware --run of the export). A representative few (GRU, LSTM, stacked
bidirectional, a per-step head) also go through firmware --run from the .onnx file itself.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from test_onnx_reader import FIXTURES, READABLE

from rnn2c.cli import main
from rnn2c.export import export_model, export_torch
from rnn2c.export.ir import ExportError
from rnn2c.export.onnx_reader import read_onnx
from tools import need, require

#: data for every fixture: sequences and steps (a fixture with a fixed time axis: its steps)
SEQUENCES, CALIB, STEPS = 6, 10, 7
#: the longest sequence a whole-sequence export takes
MAX_LENGTH = 8


@pytest.fixture(autouse=True)
def _onnx_installed() -> None:
    require("py:onnx", "pip install onnx==1.23.1, the extra 'onnx'")
    require("py:onnxruntime", "pip install onnxruntime==1.30.0, the extra 'onnx'")


def write_data(name: str, folder: Path, seed: int = 0) -> tuple[Path, Path, list[str]]:
    """calib.npz and data.npz [N, T, F] (token ids [N, T]) for a fixture, with ragged lengths
    where its time axis is dynamic (the data within the calibrated ranges: calib holds it), and
    the export flags it needs (--max-length for a whole-sequence model)."""
    ir = read_onnx(FIXTURES / name)
    rng = np.random.default_rng(seed)
    steps = ir.layout.fixed_steps or STEPS
    n = SEQUENCES + CALIB
    if ir.embedding is not None:
        x = rng.integers(0, ir.embedding.vocab, size=(n, steps))
    else:
        x = (rng.normal(size=(n, steps, ir.input_size)) * 1.5).astype(np.float32)
    lengths = np.full(n, steps) if ir.layout.fixed_steps else rng.integers(2, steps + 1, size=n)
    folder.mkdir(parents=True, exist_ok=True)
    calib, data = folder / "calib.npz", folder / "data.npz"
    np.savez(calib, x=x, lengths=lengths)
    np.savez(data, x=x[:SEQUENCES], lengths=lengths[:SEQUENCES])
    flags = ["--max-length", str(max(MAX_LENGTH, steps))] if ir.whole_sequence else []
    return calib, data, flags


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    got = capsys.readouterr()
    return rc, got.out, got.err


def _one_per_model(names: list[str]) -> set[str]:
    """One fixture per model: the dynamo and legacy files of one torch module (x.dyn.onnx,
    x.leg.onnx) read into the same float IR (test_python_api_export_and_verify), so the same C."""
    first: dict[str, str] = {}
    for n in sorted(names):
        first.setdefault(n.split(".")[0], n)
    return set(first.values())


#: the fixtures whose export also runs on mps2-an386 (every model, one file each)
ON_BOARD = _one_per_model(list(READABLE))


@pytest.mark.parametrize("name", sorted(READABLE))
def test_export_and_verify_every_fixture(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = FIXTURES / name
    calib, data, flags = write_data(name, tmp_path)
    out = tmp_path / "c"
    rc, printed, err = run_cli(
        capsys, "export", model, "--calib", calib, "--out", out, "--name", "m", *flags
    )
    assert rc == 0, err
    # the reader's axes: one note line of the export summary
    axes = [line for line in printed.splitlines() if "is batch" in line or "batch axis" in line]
    assert len(axes) == 1 and axes[0].startswith("  note: "), printed
    report = tmp_path / "verify.json"
    rc, printed, err = run_cli(
        capsys, "verify", model, out, "--data", data, "--json", report, "--min-agreement", "0.8"
    )
    v = json.loads(report.read_text())
    assert v["bit_exact"] and v["mismatched_sequences"] == 0, printed
    assert v["mean_abs_error"] <= 0.03 * v["output_range"], printed
    assert v["max_abs_error"] <= 0.15 * max(1.0, v["output_range"]), printed
    assert rc == 0, printed + err
    if name in ON_BOARD:  # the same export on an emulated board, bit for bit
        need("make", "arm-none-eabi-gcc", "qemu-system-arm")
        fw = tmp_path / "fw"
        rc, printed, err = run_cli(
            capsys,
            *("firmware", out, "--board", "mps2-an386", "--data", data),
            *("--out", fw, "--sequences", "2", "--run"),
        )
        assert rc == 0 and "board == host emulator: bit-exact" in printed, printed + err


#: (fixture, what it stands for) through firmware --run on one emulated board, from the file
BOARD_FIXTURES = [
    "gru_last.dyn.onnx",  # GRU, dynamo exporter, weights in .onnx.data, Linear on the last step
    "lstm2_state.leg.onnx",  # two stacked LSTM layers, initial state as graph inputs
    "lstm_bidir2_seq.leg.onnx",  # stacked bidirectional, whole-sequence (<name>_run)
    "gru_fold_head.dyn.onnx",  # a Linear + ReLU head on every step
]


@pytest.mark.parametrize("name", BOARD_FIXTURES)
def test_firmware_run_from_onnx(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    calib, data, flags = write_data(name, tmp_path, seed=3)
    fw = tmp_path / "fw"
    rc, printed, err = run_cli(
        capsys,
        *("firmware", FIXTURES / name, "--calib", calib, "--board", "mps2-an386"),
        *("--out", fw, "--data", data, "--sequences", "2", "--run", *flags),
    )
    assert rc == 0, printed + err
    assert "bit-exact" in printed and printed.rstrip().endswith("PASS")
    manifest = json.loads((fw / "model" / "rnn2c.json").read_text())
    assert manifest["model_fingerprint"] and (fw / "model" / "model.c").is_file()


# ---------------------------------------------------------------- size and bench of an export


@pytest.fixture(scope="module")
def gru_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("gru_export")
    calib, data, _ = write_data("gru_last.leg.onnx", tmp)
    out = tmp / "c"
    res = export_model(FIXTURES / "gru_last.leg.onnx", calib, out, name="g")
    assert res.kind.name == "sequence"
    return {"calib": calib, "data": data, "out": out}


def test_python_api_export_and_verify(gru_export: dict[str, Path]) -> None:
    """export_model and verify take .onnx paths (the library the CLI calls)."""
    from rnn2c.emulator import verify  # noqa: PLC0415

    report = verify(FIXTURES / "gru_last.leg.onnx", gru_export["out"], gru_export["data"])
    assert report.bit_exact and report.passed
    # the same model through the other exporter (its weights in .onnx.data): the same float IR,
    # so the export's fingerprint accepts it
    again = verify(FIXTURES / "gru_last.dyn.onnx", gru_export["out"], gru_export["data"])
    assert again.bit_exact
    with pytest.raises(ExportError, match="not the one"):
        verify(FIXTURES / "gru_fixed.leg.onnx", gru_export["out"], gru_export["data"])


def test_size_of_an_onnx_export(gru_export: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """size measures the export of an .onnx model as any other (the ARM build against the
    integer reference)."""
    require("py:unicorn", "pip install unicorn==2.1.4, the extra 'boards'")
    need("arm-none-eabi-gcc")
    report = tmp_path / "size.json"
    rc, printed, err = run_cli(
        capsys,
        *("size", gru_export["out"], "--target", "cortex-m4", "--sequences", "1"),
        *("--data", gru_export["data"], "--json", report),
    )
    assert rc == 0, printed + err
    assert "ARM output == int reference  bit-exact" in printed
    s = json.loads(report.read_text())
    assert s["bit_exact"] and s["flash"] > 0 and s["instructions_per_mac"] > 0


def test_bench_skips_the_peers_of_an_onnx_model(
    gru_export: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench times rnn2c's C on an .onnx model against onnxruntime's float outputs; the peers,
    which run the Keras model converted to .tflite, are rows that say why they were skipped."""
    report = tmp_path / "bench.json"
    rc, printed, err = run_cli(
        capsys,
        *("bench", FIXTURES / "gru_last.leg.onnx", "--calib", gru_export["calib"]),
        *("--data", gru_export["data"], "--rounds", "1", "--targets", "none"),
        *("--steps", "3", "--json", report),
    )
    assert rc == 0, printed + err
    rows = {r["path"]: r for r in json.loads(report.read_text())["rows"]}
    assert rows["float"]["label"] == "float onnxruntime"
    assert rows["rnn2c"]["bit_exact"] is True
    peers = [r for path, r in rows.items() if path not in ("float", "rnn2c")]
    assert peers
    for row in peers:  # not installed, or skipped for want of a Keras model
        assert "not installed" in row["error"] or "an .onnx model has none" in row["error"]


# ---------------------------------------------------------------- bad input


def bad(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    """The command fails with one line on stderr and exit 2."""
    rc, printed, err = run_cli(capsys, *args)
    assert rc == 2, printed + err
    assert err.count("\n") == 1 and err.startswith(f"rnn2c {args[0]}: error: "), err
    return err


def test_bad_onnx_files_one_line_nothing_written(
    gru_export: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calib, data, _ = write_data("gru_last.leg.onnx", tmp_path / "data")
    good = (FIXTURES / "gru_last.leg.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good[: len(good) // 2])
    text = tmp_path / "text.onnx"
    text.write_text("not a model\n")
    alone = tmp_path / "alone"  # the dynamo exporter's file without its .onnx.data
    alone.mkdir()
    shutil.copy(FIXTURES / "gru_last.dyn.onnx", alone / "m.onnx")
    cases = [
        (cut, [], ["not a readable ONNX model"]),
        (text, [], ["ONNX"]),
        (tmp_path / "absent.onnx", [], ["does not exist"]),
        (alone / "m.onnx", [], ["gru_last.dyn.onnx.data", "missing"]),
        (FIXTURES / "gru_opset11.onnx", [], ["opset 11", "opset 13 or later"]),
        (FIXTURES / "gru_sin.onnx", [], ["(Sin)", "not supported"]),
        (FIXTURES / "lstm_peepholes.onnx", [], ["peephole"]),
        (FIXTURES / "lstm_bidir2_seq.dyn.onnx", [], ["--max-length"]),  # dynamic T, whole-seq.
    ]
    for model, flags, facts in cases:
        out = tmp_path / "out"
        err = bad(capsys, "export", model, "--calib", calib, "--out", out, *flags)
        for fact in facts:
            assert fact in err, (model, err)
        assert not out.exists(), model
        fw = tmp_path / "fw"
        err = bad(capsys, "firmware", model, "--calib", calib, "--board", "mps2-an386", "--out", fw)
        assert not fw.exists(), model
        if "--max-length" not in facts:  # verify has no --max-length: it reads the export's
            report = tmp_path / "v.json"
            err = bad(capsys, "verify", model, gru_export["out"], "--data", data, "--json", report)
            assert facts[0] in err and not report.exists(), (model, err)
    # the calibration set must fit the model's inputs: [N, T, F] with the graph's F
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((4, 5, 9), dtype=np.float32))
    err = bad(capsys, "export", FIXTURES / "gru_last.leg.onnx", "--calib", wrong, "--out", out)
    assert "9" in err and not out.exists()


def test_verify_refuses_what_onnxruntime_cannot_run(
    gru_export: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A graph with a fixed time axis: verify's float reference takes that many steps only."""
    calib, _, _ = write_data("gru_fixed.leg.onnx", tmp_path)  # 6 steps
    out = tmp_path / "c"
    assert main(["export", str(FIXTURES / "gru_fixed.leg.onnx"), "--calib", str(calib),
                 "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros((3, 4, 3), dtype=np.float32))
    err = bad(capsys, "verify", FIXTURES / "gru_fixed.leg.onnx", out, "--data", other)
    assert "6-step sequences only" in err and "4 steps" in err


# ---------------------------------------------------------------- export_torch without torch


def test_export_torch_without_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch is no dependency: without it, one line saying to install it or export to ONNX."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ExportError) as e:
        export_torch(object(), np.zeros((2, 5, 3)), np.zeros((4, 5, 3)), tmp_path / "o")
    message = str(e.value)
    assert "\n" not in message
    assert "torch is not installed" in message and "torch.onnx.export" in message
    assert not (tmp_path / "o").exists()


def test_run_folder_lookups_degrade(tmp_path: Path) -> None:
    """What only a Keras run folder has (metrics.json's class names and frame) is looked up
    beside an .onnx file too: used where it fits the model, ignored where it is absent,
    unreadable or does not fit."""
    calib, _, _ = write_data("gru_last.leg.onnx", tmp_path / "data")
    outputs = read_onnx(FIXTURES / "gru_last.leg.onnx").output_size
    folder = tmp_path / "run"
    folder.mkdir()
    model = folder / "m.onnx"
    shutil.copy(FIXTURES / "gru_last.leg.onnx", model)
    res = export_model(model, calib, tmp_path / "none", name="m")  # no metrics.json
    assert "class_names" not in res.manifest and res.manifest["samples_per_step"] == 1
    (folder / "metrics.json").write_text("{not json")
    res = export_model(model, calib, tmp_path / "bad", name="m")
    assert "class_names" not in res.manifest
    names = [f"c{i}" for i in range(outputs)]
    (folder / "metrics.json").write_text(json.dumps({"class_names": names, "frame": "x"}))
    res = export_model(model, calib, tmp_path / "fits", name="m")
    assert res.manifest["class_names"] == names and res.manifest["samples_per_step"] == 1
    assert '"c0"' in (tmp_path / "fits" / "m.h").read_text()
