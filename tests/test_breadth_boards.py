"""The layers of the breadth work that no other board test covers, on emulated boards.

Each model below strings together several layer kinds (one firmware build and QEMU run per
model keeps the suite short); `rnn2c firmware --run` builds the project, replays sequences
under QEMU and compares every output with the host C, which the host checks against the
integer reference (`verify` in `check`).
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from tools import need

L = keras.layers


def _streaming() -> keras.Model:
    """Causal and streaming: Rescaling, a dilated causal Conv1D, average and max pooling over
    time, a GRU with linear gates, a relu SimpleRNN, global max pooling, Dense elu and silu."""
    inp = keras.Input((None, 5))
    h = L.Rescaling(0.5, offset=0.0)(inp)
    h = L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="tanh")(h)
    h = L.AveragePooling1D(2)(h)
    h = L.MaxPooling1D(2, strides=1)(h)
    h = L.GRU(6, recurrent_activation="linear", return_sequences=True)(h)
    h = L.SimpleRNN(8, activation="relu", return_sequences=True)(h)
    h = L.GlobalMaxPooling1D()(h)
    h = L.Dense(6, activation="elu")(h)
    out = L.Dense(3, activation="silu")(h)
    return keras.Model(inp, out, name="streaming")


def _whole() -> keras.Model:
    """Whole-sequence: a 'same' Conv1D, go_backwards, Bidirectional LSTM with merge 'mul',
    global average pooling, softmax head."""
    inp = keras.Input((None, 5))
    h = L.Conv1D(6, 3, padding="same", activation="relu")(inp)
    h = L.GRU(8, go_backwards=True, return_sequences=True)(h)
    h = L.Bidirectional(L.LSTM(6, return_sequences=True), merge_mode="mul")(h)
    h = L.GlobalAveragePooling1D()(h)
    out = L.Dense(3, activation="softmax")(h)
    return keras.Model(inp, out, name="whole")


CASES = [
    (_streaming, "microbit", []),  # Cortex-M0 (ARMv6-M loops)
    (_whole, "mps2-an386", ["--max-length", "12"]),  # Cortex-M4 (DSP loops)
]


@pytest.mark.parametrize(("build", "board", "extra"), CASES, ids=["streaming", "whole"])
def test_breadth_layers_run_bit_exact_on_an_emulated_board(
    build, board: str, extra: list[str], tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    keras.utils.set_random_seed(3)
    model = build()
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(3).normal(size=(24, 12, 5)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x[:16])
    np.savez(tmp_path / "data.npz", x=x[16:], lengths=np.array([12, 9, 12, 6, 12, 10, 7, 12]))

    # host first: the C bit-exact with the integer reference (verify exits 0 or 1 on closeness
    # to float, which random weights do not promise; bit-exactness is what this test is about)
    args = [str(tmp_path / "m.keras"), "--calib", str(tmp_path / "calib.npz"), *extra]
    assert main(["export", *args, "--out", str(tmp_path / "c"), "--name", "m"]) == 0
    main(
        [
            "verify",
            str(tmp_path / "m.keras"),
            str(tmp_path / "c"),
            "--data",
            str(tmp_path / "data.npz"),
        ]
    )
    printed = capsys.readouterr().out
    assert re.search(r"C == integer reference +bit-exact", printed), printed

    fw = ["firmware", *args, "--data", str(tmp_path / "data.npz"), "--sequences", "4"]
    rc = main([*fw, "--board", board, "--out", str(tmp_path / "fw"), "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact" in printed and printed.rstrip().endswith("PASS"), printed
