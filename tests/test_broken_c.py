"""Mutation tests: C that is NOT bit-exact must make every checking command fail, naming where.

Every other test runs correct C, so a comparison that never reads the C would pass them all.
Here the C is broken on purpose and the integer reference (<name>_qmodel.npz) is left as
exported. How the broken C is injected, so that the real comparison code is what must catch it:
a copy of the export's quantized model is mutated (one bit of one weight byte flipped, or one row
kind's requantization shift changed), rnn2c's own renderer (``render.render``) writes <name>.c
from it, that file replaces the exported one, and the manifest's sha256 of it is rewritten with
rnn2c's own helper (``outdir.file_sha256``), so the integrity check passes and the commands
compile, run and compare the broken C. Where the first difference must be is computed from the
reference: ``run_int`` of the mutated model against ``run_int`` of the exported one (and the
compiled broken C is checked to equal the former, so the injection is what the test thinks).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.emulator import verify
from rnn2c.emulator.build import load_model
from rnn2c.export import export_model
from rnn2c.export.api import MANIFEST
from rnn2c.export.ir import QuantModel
from rnn2c.export.reference import run_int
from rnn2c.export.render import render
from rnn2c.export.serialize import load as load_qmodel
from rnn2c.outdir import file_sha256, read_manifest, write_file_atomically
from tools import need, require_unicorn

F, T, U, K = 3, 8, 4, 3
NAME = "m"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRU(4) -> Dense(3, softmax) model, its export, calibration and test data."""
    d = tmp_path_factory.mktemp("broken")
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((None, F)), keras.layers.GRU(U), keras.layers.Dense(K, "softmax")]
    )
    model.save(d / "model.keras")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(28, T, F)).astype(np.float32)
    export_model(model, x[:16], d / "exp", name=NAME)
    np.savez(d / "data.npz", x=x[16:])
    return d


def flip_recurrent_weight(q: QuantModel) -> None:
    """Bit 3 of one GRU weight byte on the state side (row z of unit 0, state column 1): no
    effect at a sequence's first step, where the state is zero. (Its lowest bit changes no
    int8 output on these data: the outputs' resolution hides it.)"""
    w = q.layers[0].fc.weight  # type: ignore[attr-defined]
    w[0, F + 1] = np.int8(int(w[0, F + 1]) ^ 8)


def shift_candidate_rows(q: QuantModel) -> None:
    """shift_out + 1 of the GRU's candidate-over-state row kind (one entry of the C struct's
    per-kind shifts): those rows come out halved."""
    fc = q.layers[0].fc  # type: ignore[attr-defined]
    fc.shift_out[3 * U :] += 1


def break_c(
    src: Path, dst: Path, mutate: Callable[[QuantModel], None], arm_only: bool = False
) -> QuantModel:
    """A copy of the export ``src`` at ``dst`` whose <name>.c is rendered from a mutated copy of
    its quantized model (the reference file unchanged), the manifest re-hashed so that nothing
    but the comparison can tell. ``arm_only``: the broken C under ``#if defined(__ARM_ARCH)``,
    the exported C otherwise (the board differs from the host build). Returns the mutated
    model."""
    shutil.copytree(src, dst)
    exported = load_qmodel(dst / f"{NAME}_qmodel.npz")
    c_file = dst / f"{NAME}.c"
    original = c_file.read_text()
    assert render(exported, NAME)[f"{NAME}.c"] == original  # the renderer reproduces the export
    broken = copy.deepcopy(exported)
    mutate(broken)
    text = render(broken, NAME)[f"{NAME}.c"]
    assert text != original
    if arm_only:
        text = f"#if defined(__ARM_ARCH)\n{text}#else\n{original}#endif\n"
    c_file.write_text(text)
    manifest = read_manifest(dst, MANIFEST)
    assert manifest is not None and f"{NAME}.c" in manifest["sha256"]
    manifest["sha256"][f"{NAME}.c"] = file_sha256(c_file)
    write_file_atomically(dst / MANIFEST, json.dumps(manifest).encode(), "manifest")
    return broken


def first_difference(
    a: np.ndarray, b: np.ndarray, lengths: np.ndarray | None = None
) -> tuple[tuple[int, int] | None, int]:
    """((sequence, step) of the first differing step in run order, or None; how many sequences
    differ) between two [N, T, out] outputs, over each sequence's real steps."""
    diff = (a != b).any(axis=2)
    if lengths is not None:
        diff &= np.arange(diff.shape[1])[None, :] < np.asarray(lengths)[:, None]
    bad = np.nonzero(diff.any(axis=1))[0]
    if bad.size == 0:
        return None, 0
    s = int(bad[0])
    return (s, int(np.nonzero(diff[s])[0][0])), int(bad.size)


def _expected(ws: Path, broken: QuantModel, dst: Path) -> tuple[tuple[int, int], int]:
    """Where verify must find the first C/reference difference on data.npz, from the reference;
    and the check that the compiled broken C is the mutated model, bit for bit."""
    exported = load_qmodel(ws / "exp" / f"{NAME}_qmodel.npz")
    xq = exported.quantize_input(np.load(ws / "data.npz")["x"])
    want = run_int(exported, xq)
    got = run_int(broken, xq)
    np.testing.assert_array_equal(load_model(dst, NAME).run(xq), got)  # the injection is real
    first, count = first_difference(got, want)
    assert first is not None, "the mutation changes nothing on the data: a useless test"
    return first, count


@pytest.mark.parametrize("mutate", [flip_recurrent_weight, shift_candidate_rows])
def test_verify_fails_on_broken_c_and_names_the_first_mismatch(
    ws: Path, tmp_path: Path, mutate: Callable[[QuantModel], None]
) -> None:
    """verify() on C rendered from a mutated model, its manifest re-hashed (see the module
    doc): FAIL, with the first differing (sequence, step) and the count the reference gives;
    the stream check, run without reset through the same C, fails too."""
    broken = break_c(ws / "exp", tmp_path / "exp", mutate)
    first, count = _expected(ws, broken, tmp_path / "exp")
    if mutate is flip_recurrent_weight:
        assert first[1] > 0  # a state-side weight: never the first step of a sequence
    data = np.load(ws / "data.npz")["x"]
    report = verify(ws / "model.keras", tmp_path / "exp", data, stream_steps=3 * T)
    assert report.changed_files == []  # the integrity check passed: the comparison caught it
    assert not report.bit_exact and not report.passed
    assert report.first_mismatch == first
    assert report.mismatched_sequences == count
    assert "C output differs from the integer reference" in report.failures
    table = report.table()
    assert f"NO: {count} sequences differ" in table
    assert f"first C/reference mismatch: sequence {first[0]}, step {first[1]}" in table
    # the stream: the first 3 sequences back to back, the state never reset
    s = report.stream
    assert s is not None and s.steps == 3 * T
    exported = load_qmodel(ws / "exp" / f"{NAME}_qmodel.npz")
    stream = exported.quantize_input(data[:3].reshape(1, 3 * T, F))
    assert not np.array_equal(run_int(broken, stream), run_int(exported, stream))
    assert not s.bit_exact
    assert "C output differs from the integer reference on the stream" in report.failures
    assert re.search(r"stream C == reference +NO ", table)
    assert table.splitlines()[-1].startswith("FAIL: ")


def test_verify_cli_exits_1_on_broken_c(ws: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """`rnn2c verify` on the broken C (injected as in the module doc): exit 1, the FAIL line
    and the first mismatch the reference gives."""
    broken = break_c(ws / "exp", tmp_path / "exp", flip_recurrent_weight)
    (s, t), count = _expected(ws, broken, tmp_path / "exp")
    capsys.readouterr()
    argv = ["verify", str(ws / "model.keras"), str(tmp_path / "exp"), "--data"]
    assert main([*argv, str(ws / "data.npz"), "--min-agreement", "0"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"export files +unchanged ", out)
    assert f"NO: {count} sequences differ" in out
    assert f"first C/reference mismatch: sequence {s}, step {t}\n" in out
    assert out.rstrip().splitlines()[-1] == "FAIL: C output differs from the integer reference"


def test_size_exits_1_when_the_arm_build_is_not_bit_exact(
    ws: Path,
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    """`rnn2c size` on C broken for ARM only (``#if defined(__ARM_ARCH)``, injected as in the
    module doc): the Cortex-M output differs from the integer reference on the data, so
    bit_exact is False, the table says MISMATCH and the exit code is 1."""
    need("arm-none-eabi-gcc")
    require_unicorn()
    broken = break_c(ws / "exp", tmp_path / "exp", shift_candidate_rows, arm_only=True)
    exported = load_qmodel(ws / "exp" / f"{NAME}_qmodel.npz")
    xq = exported.quantize_input(np.load(ws / "data.npz")["x"][:2])
    assert first_difference(run_int(broken, xq), run_int(exported, xq))[0] is not None
    out = tmp_path / "size.json"
    argv = ["size", str(tmp_path / "exp"), "--target", "cortex-m4", "--data", str(ws / "data.npz")]
    capsys.readouterr()
    assert main([*argv, "--sequences", "2", "--steps", str(T), "--json", str(out)]) == 1
    assert re.search(r"ARM output == int reference +MISMATCH", capsys.readouterr().out)
    assert json.loads(out.read_text())["bit_exact"] is False


def test_firmware_run_names_the_first_step_where_the_board_differs(
    ws: Path,
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    """`rnn2c firmware --run` on C broken for ARM only (``#if defined(__ARM_ARCH)``; the host
    build compiles the exported C), injected as in the module doc: the board's output differs
    from the host emulator's; exit 1 and the first (sequence, step) in run order, with both
    outputs, as the reference gives them."""
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    broken = break_c(ws / "exp", tmp_path / "exp", flip_recurrent_weight, arm_only=True)
    x, lengths = np.load(ws / "data.npz")["x"][:3], np.array([T, 5, 7])
    np.savez(tmp_path / "data.npz", x=x, lengths=lengths)
    exported = load_qmodel(ws / "exp" / f"{NAME}_qmodel.npz")
    xq = exported.quantize_input(x)
    board, host = run_int(broken, xq, lengths), run_int(exported, xq, lengths)
    (s, k), _ = first_difference(board, host, lengths)
    argv = ["firmware", str(tmp_path / "exp"), "--board", "mps2-an386", "--out"]
    capsys.readouterr()
    rc = main([*argv, str(tmp_path / "fw"), "--data", str(tmp_path / "data.npz"), "--run"])
    captured = capsys.readouterr()
    assert rc == 1, captured
    assert captured.err == (
        f"rnn2c firmware: board output differs from the host emulator first at sequence {s}, "
        f"step {k}: board {board[s, k].tolist()}, host {host[s, k].tolist()}\n"
    )
    assert captured.out.rstrip().splitlines()[-1] == "FAIL"
