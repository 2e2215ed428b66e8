"""Error messages speak the caller's language: --flags on the command line, keyword arguments
from the Python API (rnn2c/interface.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import build_parser, main
from rnn2c.export import ExportError, export_model
from rnn2c.interface import CHOICES, VALUELESS, as_keywords


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "--max-length 0: expected 1 to 4096 steps, e.g. 128",
            "max_length=0: expected 1 to 4096 steps, e.g. 128",
        ),
        ("export again with --max-length N.", "export again with max_length=N."),
        (
            "--input-quant per-feature does not apply to a token model",
            "input_quant='per-feature' does not apply to a token model",
        ),
        (
            "--stream does not apply; drop --stream",
            "stream_steps does not apply; drop stream_steps",
        ),
        ("--out 'x/y' is a file", "out_dir='x/y' is a file"),
        ("--samples-per-step 5 does not divide", "samples_per_step=5 does not divide"),
        ("drop --run and use make flash", "drop run and use make flash"),
        ("no flag here, 3-4 steps", "no flag here, 3-4 steps"),
    ],
)
def test_flags_become_keywords(message: str, expected: str) -> None:
    assert as_keywords(message, {"out": "out_dir", "stream": "stream_steps"}) == expected


def _parsers() -> list[argparse.ArgumentParser]:
    top = build_parser()
    subs = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    return [top, *subs[0].choices.values()]


def test_the_tables_follow_the_parsers() -> None:
    """Every store_true flag is known to take no value, and every choice of every flag is known
    as a value, so a message quoting it is translated."""
    flags_without_value = set()
    choices = set()
    for parser in _parsers():
        for action in parser._actions:  # noqa: SLF001
            if isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
                flags_without_value |= {s[2:] for s in action.option_strings}
            if action.choices and not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                choices |= {str(c) for c in action.choices}
    assert flags_without_value <= VALUELESS
    assert choices <= CHOICES


def test_api_names_keywords_and_cli_names_flags(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(3)])
    model.save(tmp_path / "m.keras")
    calib = np.random.default_rng(0).normal(size=(4, 5, 2)).astype(np.float32)
    np.save(tmp_path / "c.npy", calib)
    with pytest.raises(ExportError) as info:
        export_model(model, calib, tmp_path / "out", max_length=0)
    assert "max_length=0" in str(info.value) and "--max-length" not in str(info.value)
    code = main(
        ["export", str(tmp_path / "m.keras"), "--calib", str(tmp_path / "c.npy")]
        + ["--out", str(tmp_path / "out"), "--max-length", "0"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--max-length 0" in err and "max_length=" not in err
