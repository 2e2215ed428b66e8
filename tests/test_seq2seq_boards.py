"""Seq2seq exports on boards: `rnn2c firmware --run` (encode_step per input step, greedy decode,
tokens bit-exact with the integer reference under QEMU) and `rnn2c size` (flash, RAM, stack and
exact instructions per encoder step and per output token in the emulated Cortex-M cores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import seq2seq_keras as s2s

from rnn2c.cli import main
from rnn2c.emulator import firmware, seq2seq_boards
from rnn2c.emulator import size as S
from rnn2c.emulator.seq2seq_size import Seq2SeqSizeReport
from rnn2c.export import export_model
from tools import need, require_arm_toolchain, require_unicorn

#: token encoder: GRU with dot attention; feature encoder: LSTM with additive attention
MODELS = {
    "tok": {"cell": "gru", "attention": "luong", "tokens": True, "seed": 2},
    "feat": {"cell": "lstm", "attention": "bahdanau", "tokens": False, "mid": True, "seed": 2},
    # a Bidirectional encoder: encode_step runs its forward direction, decode the backward one
    "bi": {"cell": "gru", "attention": "luong", "tokens": True, "bidirectional": True, "seed": 4},
}
MAX_OUT = 6  # --max-output-length


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per model: the .keras file, its calibration file, an export folder and replay data."""
    d = tmp_path_factory.mktemp("s2sboards")
    out: dict[str, Path] = {}
    for key, cfg in MODELS.items():
        model = s2s.build(**cfg)
        model.save(d / f"{key}.keras")
        calib = s2s.data(cfg["tokens"], seed=0)
        np.savez(d / f"{key}_calib.npz", **calib)
        replay = s2s.data(cfg["tokens"], n=6, seed=1)
        np.savez(d / f"{key}_data.npz", x=replay["x"], lengths=replay["lengths"])
        export_model(
            model,
            d / f"{key}_calib.npz",
            d / f"{key}-export",
            name=f"{key}_s2s",
            start_token=s2s.START,
            end_token=s2s.END,
            max_output_length=MAX_OUT,
        )
        out[key] = d / f"{key}.keras"
        out[f"{key}-calib"] = d / f"{key}_calib.npz"
        out[f"{key}-data"] = d / f"{key}_data.npz"
        out[f"{key}-export"] = d / f"{key}-export"
    return out


@pytest.mark.parametrize(
    "model, board",
    [
        ("tok", "mps2-an386"),
        ("feat", "mps2-an386"),
        ("tok", "microbit"),
        ("feat", "mps2-an385"),
        ("bi", "mps2-an386"),
    ],
)
def test_board_tokens_bit_exact(files: dict[str, Path], tmp_path: Path, model: str, board: str):  # noqa: ANN201
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    project = firmware.make_project(
        files[f"{model}-export"], board, tmp_path / "fw", data=files[f"{model}-data"], run=True
    )
    assert project.kind.name == "seq2seq"
    result = firmware.run_project(project, timeout=60)
    assert result.passed, (result.first_mismatch, result.board_run.text)
    want = np.load(files[f"{model}-data"])["lengths"][: firmware.DEFAULT_SEQUENCES]
    assert project.replay.lengths.tolist() == want.tolist()  # --data lengths are honoured
    assert result.board_run.tokens == result.expected and not result.board_run.errors
    counts = [len(t) for t in result.expected]
    assert sum(counts) > 0 and len({tuple(t) for t in result.expected}) > 1, result.expected
    # the streaming path: encode_step once per step, as a device feeds its input
    main_c = (project.out / "main.c").read_text()
    step = f"{project.name}_encode_step{'' if model == 'feat' else '_token'}("
    assert step in main_c and f"{project.name}_decode(" in main_c
    assert f"{project.name}_encode(" not in main_c and "_encode_tokens(" not in main_c
    # QEMU has no DWT counter and the Cortex-M0 none at all: no cycles claimed
    assert result.board_run.encode_cycles is None
    assert "encode n/a decode n/a" in result.board_run.text
    manifest = json.loads((project.out / "firmware.json").read_text())
    assert manifest["kind"] == "seq2seq"


def test_outputs_end_at_the_end_token_and_at_the_limit(files: dict[str, Path]) -> None:
    """The replayed data covers both ways decode stops (the fixture's models are useful)."""
    for key in MODELS:
        q = firmware.read_export(files[f"{key}-export"])[2]
        inputs = seq2seq_boards.seq2seq_inputs(q, files[f"{key}-data"], 6, 99)
        _, counts = seq2seq_boards.reference_tokens(q, inputs, MAX_OUT)
        assert (counts < MAX_OUT).any() and (counts == MAX_OUT).any(), (key, counts)


def test_cli_keras_seq2seq_model_to_qemu_run(files: dict[str, Path], tmp_path: Path, capsys):  # noqa: ANN001, ANN201
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    out = tmp_path / "fw"
    args = ["firmware", str(files["tok"]), "--calib", str(files["tok-calib"]), "--name", "tr"]
    args += ["--board", "mps2-an386", "--out", str(out), "--run"]
    # the decoder's start and end ids are export settings: without them, one line saying so
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--start-token" in err[0] and not out.exists()
    rc = main([*args, "--start-token", "0", "--end-token", "1", "--max-output-length", "4"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact" in printed and printed.rstrip().endswith("PASS")
    assert "encode steps" in printed and "output tokens" in printed
    # no --data: pseudo-random valid ids (the encoder's Embedding has mask_zero: no id 0)
    replay = np.load(out / "replay.npz")
    ids = replay["tokens"]
    assert ids.shape == (firmware.DEFAULT_SEQUENCES, 6) and 1 <= ids.min() and ids.max() < 10
    assert "#define TR_MAX_OUTPUT_LENGTH 4" in (out / "model" / "tr.h").read_text()


def test_pseudo_random_feature_rows_and_a_mismatch_is_exit_1(
    files: dict[str, Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    real = seq2seq_boards.reference_tokens

    def corrupted(q, inputs, max_tokens=None):  # noqa: ANN001, ANN202
        tokens, counts = real(q, inputs, max_tokens)
        counts = counts.copy()
        counts[1] = max(int(counts[1]) - 1, 0) if counts[1] else 1
        return tokens, counts

    monkeypatch.setattr(seq2seq_boards, "reference_tokens", corrupted)
    out = tmp_path / "fw"
    args = ["firmware", str(files["feat-export"]), "--board", "microbit", "--out", str(out)]
    assert main(args) == 0
    replay = np.load(out / "replay.npz")
    assert replay["x"].dtype == np.int8 and replay["x"].shape[0] == firmware.DEFAULT_SEQUENCES
    capsys.readouterr()
    assert main([*args, "--run"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "first at sequence 1" in err[0], err
    assert captured.out.rstrip().endswith("FAIL")


def test_parse_board_output_with_cycles_and_errors() -> None:
    """The hardware path (a running DWT counter), an encoder error, and a board that stopped."""
    text = (
        "rnn2c firmware: seq2seq model m on nucleo-l476rg (cortex-m4), 3 sequences\n"
        "seq 0 length 3 tokens 2 out 5 7 encode 9000 decode 12000\n"
        "seq 1 length 2 tokens 0 out encode 6000 decode 3000\n"
        "seq 2 encode_step error -3\n"
        "cycles/encode step: min 3000 mean 3000 max 3000 over 5 steps\n"
        "cycles/token: min 3000 mean 3750 max 4000 over 4 decoder steps\n"
        "done\n"
    )
    run = seq2seq_boards.parse_output(text, 3, np.array([3, 2, 4]))
    assert run.tokens == [[5, 7], [], None]
    assert run.encode_cycles is not None and run.encode_cycles.tolist() == [9000, 6000, 0]
    assert run.decode_cycles is not None and run.decode_cycles.tolist() == [12000, 3000, 0]
    assert run.errors == ["seq 2 encode_step error -3"] and len(run.summary) == 2
    assert seq2seq_boards.first_mismatch(run.tokens, [[5, 7], [], [1]]) == 2
    assert seq2seq_boards.first_mismatch(run.tokens[:2], [[5, 7], []]) is None
    with pytest.raises(firmware.BuildError, match="unexpected line"):
        seq2seq_boards.parse_output(text.replace("tokens 2 out", "tokens 3 out"), 3, [3, 2, 4])
    with pytest.raises(firmware.BuildError, match="did not print 'done'"):
        seq2seq_boards.parse_output(text.replace("done\n", ""), 3, np.array([3, 2, 4]))
    assert seq2seq_boards.decoder_steps(np.array([0, 2, 6]), 6).tolist() == [1, 3, 6]


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
@pytest.mark.parametrize("model", list(MODELS))
def test_size_report(files: dict[str, Path], model: str, target: str) -> None:
    require_arm_toolchain()
    require_unicorn()
    r = S.measure(files[f"{model}-export"], target, data=files[f"{model}-data"], sequences=4)
    assert isinstance(r, Seq2SeqSizeReport)
    assert r.bit_exact
    manifest = json.loads((files[f"{model}-export"] / "rnn2c.json").read_text())
    lengths = np.load(files[f"{model}-data"])["lengths"][:4]
    assert r.sequences == 4 and r.encode_steps == int(lengths.sum())
    assert r.tokens <= r.decoder_steps <= r.tokens + 4 and r.decoder_steps >= 4
    # flash: the model's code and constants, the raw parameters inside them
    assert r.flash == r.text + r.rodata + r.data + r.library_bytes
    assert r.rodata >= r.raw_parameters > 0 and r.text > 0
    assert r.state == manifest["state_bytes"] and r.ram == r.state + r.static_ram + r.stack
    # stack: at least the scratch arrays the header declares (a contract: what a user budgets
    # for); the frames beyond them depend on the compiler: benchmarks/size_table.py checks them
    header = (files[f"{model}-export"] / f"{model}_s2s.h").read_text()
    scratch = int(header.split(f"#define {model.upper()}_S2S_SCRATCH_BYTES ")[1].split()[0])
    assert scratch <= r.stack, (r.stack, scratch)
    assert r.stack == max(r.stack_static_encode, r.stack_static_decode, r.stack_measured)
    assert r.stack_path[0] in (f"{model}_s2s_decode", f"{model}_s2s_encode_step")
    # instructions (their per-MAC ceilings are benchmarks/size_table.py's to check)
    assert r.macs_per_encode_step == manifest["macs_per_encode_step"]
    q = S.read_export(files[f"{model}-export"]).qmodel
    assert 0 < r.encode_instructions_min <= r.encode_instructions_mean <= r.encode_instructions_max
    assert 0 < r.token_instructions_min <= r.token_instructions_mean <= r.token_instructions_max
    assert r.token_instructions_mean > r.encode_instructions_mean  # attention + head per token
    assert min(q.token_macs(int(n)) for n in lengths) <= r.macs_per_token
    assert r.macs_per_token <= max(q.token_macs(int(n)) for n in lengths)
    assert r.encode_instructions_per_mac == pytest.approx(
        r.encode_instructions_mean / r.macs_per_encode_step
    )
    assert r.token_instructions_per_mac == pytest.approx(
        r.token_instructions_mean / r.macs_per_token
    )
    assert sum(r.decode_instructions) == pytest.approx(r.token_instructions_mean * r.decoder_steps)


def test_size_cli_json_has_seq2seq_fields(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    require_arm_toolchain()
    require_unicorn()
    out = tmp_path / "size.json"
    export = str(files["tok-export"])
    assert main(["size", export, "--target", "cortex-m4", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "(seq2seq)" in text and "instructions / output token" in text and "bit-exact" in text
    report = json.loads(out.read_text())
    assert report["kind"] == "seq2seq" and report["bit_exact"]
    assert "instructions_mean" not in report and "macs_per_step" not in report  # no step fields
    manifest = json.loads((files["tok-export"] / "rnn2c.json").read_text())
    # no --data: pseudo-random ids of --max-length steps (16 > 6): the manifest's MACs per token
    assert report["encode_steps"] == 4 * manifest["max_length"]
    assert report["macs_per_token"] == manifest["macs_per_token"]
    # data of the wrong kind is bad input: one line, exit 2
    rc = main(["size", export, "--target", "cortex-m4", "--data", str(files["feat-data"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--data" in err[0], err
