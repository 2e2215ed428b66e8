"""The whole toolchain as a user runs it: train -> the run folder's EXPORT.txt commands -> verify.

A short training on a real variable-length dataset, then the exact commands the run folder
suggests, through the CLI: the export must be bit-exact and agree with Keras on the unpadded
test sequences.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from rnn2c.cli import main
from tools import require_aeon


def test_train_export_verify_on_japanese_vowels(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    require_aeon()
    run = tmp_path / "run"
    args = ["train", "--dataset", "uea:JapaneseVowels", "--cell", "gru", "--units", "8"]
    assert main([*args, "--epochs", "4", "--out", str(run)]) == 0
    commands = [
        line.strip()
        for line in (run / "EXPORT.txt").read_text().splitlines()
        if line.strip().startswith("rnn2c ")
    ]
    assert [c.split()[1] for c in commands] == ["export", "verify"]
    capsys.readouterr()
    for command in commands:
        # the thresholds are for trained models; 4 epochs is only a smoke run
        extra = ["--min-agreement", "0.8"] if " verify " in f" {command} " else []
        assert main([*shlex.split(command)[1:], *extra]) == 0, command
    out = capsys.readouterr().out
    assert "bit-exact" in out and "stream C == reference" in out
    assert re.search(r"sequences / steps +370 /", out)  # all test sequences, real lengths only
