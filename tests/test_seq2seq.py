"""Sequence to sequence with attention: the Keras encoder-decoder pattern read exactly, the C
bit-exact against the integer reference (through encode and encode_step, on every x86 path),
close to the float model, and the refusals of other two-input graphs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import seq2seq_keras as s2s

from rnn2c.cli import main
from rnn2c.emulator.build import DEFAULT_FLAGS
from rnn2c.emulator.seq2seq import CompiledSeq2Seq, compare, targets, with_end
from rnn2c.export import ExportError, export_model
from rnn2c.export.seq2seq import (
    float_teacher_forced,
    keras_greedy,
    read_seq2seq,
)
from rnn2c.export.serialize import load

L = keras.layers
ATTENTIONS = s2s.ATTENTIONS
#: this file's models: a Dense(tanh) before the output, the initial weights as Keras made
#: them, the attention scales random
DEFAULTS = {
    "attention": "dot",
    "embed": 5,
    "vocab_in": 11,
    "vocab_out": 9,
    "features": 4,
    "mid": True,
    "seed": 0,
    "gain": 1.0,
    "random_scales": True,
}


def build(**kw) -> keras.Model:  # noqa: ANN003
    return s2s.build(**{**DEFAULTS, **kw})


def data(model_ir, n: int = 24, t: int = 9, t_out: int = 6, seed: int = 0, end: int = 1):  # noqa: ANN001, ANN201
    """x (ids with 0 padding past each length, or features), lengths, y ending with `end`."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, t + 1, size=n)
    emb = model_ir.encoder.embedding
    if emb is not None:
        x = rng.integers(1, emb.vocab, size=(n, t)).astype(np.int32)
        x[np.arange(t)[None, :] >= lengths[:, None]] = 0
    else:
        x = rng.normal(size=(n, t, model_ir.encoder.input_size)).astype(np.float32)
    y = rng.integers(2, model_ir.vocab, size=(n, t_out))
    stop = rng.integers(1, t_out, size=n)
    y[np.arange(t_out)[None, :] >= stop[:, None]] = end
    return x, lengths, y


def random_config(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "cell": str(rng.choice(["gru", "lstm"])),
        "attention": str(ATTENTIONS[seed % len(ATTENTIONS)]),
        "tokens": bool(rng.integers(0, 2)),
        "units": 2 * int(rng.integers(1, 7)),
        "embed": int(rng.integers(1, 7)),
        "vocab_in": int(rng.integers(3, 20)),
        "vocab_out": int(rng.integers(3, 15)),
        "features": int(rng.integers(1, 6)),
        "mid": bool(rng.integers(0, 2)),
        "stacked": bool(rng.random() < 0.3),
        "bidirectional": seed % 3 == 1,
        "context_first": bool(rng.integers(0, 2)),
        "mask_zero": bool(rng.integers(0, 2)),
        "seed": seed,
    }


def _export(tmp_path: Path, model: keras.Model, x, lengths, y, **kw):  # noqa: ANN001, ANN003, ANN202
    return export_model(
        model,
        _seqs(x, lengths, y),
        tmp_path / "c",
        name="s2s",
        start_token=0,
        end_token=1,
        **kw,
    )


def _seqs(x, lengths, y):  # noqa: ANN001, ANN202
    from rnn2c.export.data import Sequences  # noqa: PLC0415

    return Sequences(x, y, lengths)


@pytest.mark.parametrize("seed", range(12))
def test_random_seq2seq_float_exact_c_bit_exact(tmp_path: Path, seed: int) -> None:
    """Random configurations (GRU/LSTM, every attention form, token and feature encoders,
    stacked, with and without Dense(tanh), either concatenation order): the float IR equals
    Keras under teacher forcing; the C's greedy tokens equal the integer reference through
    encode and encode_step; the saved model decodes the same; the integer logits stay close to
    the float ones."""
    cfg = random_config(seed)
    model = build(**cfg)
    ir = read_seq2seq(model)
    x, lengths, y = data(ir, seed=seed)
    # float IR == Keras, teacher forced, on sequences of one length (no padding involved)
    dec_in = np.concatenate([np.zeros((x.shape[0], 1), np.int32), y[:, :-1]], axis=1)
    full = np.full(x.shape[0], x.shape[1])
    xs = np.where(x == 0, 1, x) if ir.tokens_in else x
    keras_p = np.asarray(model([xs, dec_in], training=False))
    logits = float_teacher_forced(ir, xs, full, dec_in)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(-1, keepdims=True), keras_p, atol=2e-5)

    res = _export(tmp_path, model, x, lengths, y, max_output_length=7)
    q = res.qmodel
    ref, counts = q.greedy(x, lengths)
    compiled = CompiledSeq2Seq.build(tmp_path / "c", "s2s")
    assert compiled.state_size == compiled.declared_state_size == q.state_bytes()
    xin = x if q.tokens_in else q.encoder.quantize_input(x)
    for stepwise in (False, True):
        tok, n = compiled.greedy(xin, lengths, 7, stepwise)
        np.testing.assert_array_equal(n, counts)
        np.testing.assert_array_equal(tok, ref)
    again = load(tmp_path / "c" / "s2s_qmodel.npz")
    np.testing.assert_array_equal(again.greedy(x, lengths)[0], ref)
    # close to float: the integer logits (dequantized) against the float ones, teacher forced
    li = q.teacher_forced(x, lengths, dec_in)
    lf = float_teacher_forced(ir, x, lengths, dec_in)
    spread = float(lf.std()) or 1.0
    assert float(np.abs(li - lf).mean()) < 0.1 * spread + 0.02, (cfg, np.abs(li - lf).mean())


@pytest.mark.parametrize("path", ["portable", "avx2", "native"])
def test_x86_paths_bit_exact(tmp_path: Path, path: str) -> None:
    """The runtime's x86 kernels (units across lanes, VNNI) under the seq2seq template give
    the same tokens as the reference, for GRU and LSTM."""
    flags = {
        "portable": ("-mno-avx2",),
        "avx2": ("-mavx2", "-mfma", "-mno-avx512f"),
        "native": ("-march=native", "-O3"),
    }[path]
    for i, cell in enumerate(("gru", "lstm")):
        model = build(cell=cell, units=20, embed=6, attention=ATTENTIONS[2 * i], seed=7 + i)
        ir = read_seq2seq(model)
        x, lengths, y = data(ir, seed=i)
        out = tmp_path / cell
        res = export_model(model, _seqs(x, lengths, y), out, name="s2s", start_token=0, end_token=1)
        import ctypes  # noqa: PLC0415

        from rnn2c.emulator.build import compile_model  # noqa: PLC0415

        lib = ctypes.CDLL(
            str(
                compile_model(
                    out,
                    "s2s",
                    flags=(*DEFAULT_FLAGS, *flags),
                    harness_template="seq2seq_harness.c.j2",
                )
            )
        )
        lib.rnn2c_s2s_state_size.restype = ctypes.c_size_t
        compiled = CompiledSeq2Seq(lib, True, 0, 0)
        tok, n = compiled.greedy(x, lengths, res.qmodel.max_output_length)
        ref, counts = res.qmodel.greedy(x, lengths)
        np.testing.assert_array_equal(n, counts)
        np.testing.assert_array_equal(tok, ref)


def test_keras_greedy_and_metrics() -> None:
    """keras_greedy feeds back the argmax token: the same as a hand-written loop over
    model.predict; compare() counts positions up to the reference's end token."""
    model = build(seed=3, units=6, vocab_out=6)
    ir = read_seq2seq(model)
    x, lengths, _ = data(ir, n=5)
    tok, counts = keras_greedy(model, 0, x, lengths, 0, 1, 5)
    for i in range(5):
        dec = [0]
        for _ in range(5):
            p = model.predict([x[i : i + 1, : lengths[i]], np.array([dec])], verbose=0)
            nxt = int(p[0, -1].argmax())
            if nxt == 1:
                break
            dec.append(nxt)
        assert list(tok[i, : counts[i]]) == dec[1:]
    acc, exact, first = compare([[2, 3, 1], [4, 1], [5, 1]], [[2, 3, 1], [4, 5, 1], [1]])
    assert (acc, exact, first) == (4 / 7, 1 / 3, [1, 0])  # 3 + 1 + 0 of 3 + 3 + 1 positions
    assert with_end(np.array([[2, 3, -1], [4, 5, 6]]), np.array([2, 3]), 1) == [
        [2, 3, 1],
        [4, 5, 6],
    ]
    assert targets(np.array([[2, 1, 1], [3, 4, 5]]), 1) == [[2, 1], [3, 4, 5]]


def test_cli_export_verify_and_errors(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """rnn2c export and verify of a token model through the CLI; bit-exact; the seq2seq flags
    refused on other models; missing y, tokens or end tokens named in one line."""
    model = build(seed=5)
    model.save(tmp_path / "m.keras")
    ir = read_seq2seq(model)
    x, lengths, y = data(ir, n=30)
    np.savez(tmp_path / "calib.npz", x=x, lengths=lengths, y=y)
    np.savez(tmp_path / "noy.npz", x=x, lengths=lengths)
    c = tmp_path / "c"
    argv = ["export", str(tmp_path / "m.keras"), "--calib", str(tmp_path / "calib.npz")]
    argv += ["--out", str(c), "--name", "dates"]
    assert main([*argv, "--start-token", "0", "--end-token", "1"]) == 0
    printed = capsys.readouterr().out
    assert "dates_encode_tokens / dates_decode" in printed
    header = (c / "dates.h").read_text()
    for text in (
        "int dates_decode(dates_state_t *state, int32_t tokens_out[], int max_tokens);",
        "#define DATES_START_TOKEN 0",
        "#define DATES_END_TOKEN 1",
        "#define DATES_MAX_LENGTH 9",
        "#define DATES_MAX_OUTPUT_LENGTH 6",
        "int dates_encode_step_token(dates_state_t *state, int32_t token);",
    ):
        assert text in header
    manifest = json.loads((c / "rnn2c.json").read_text())
    assert manifest["kind"] == "seq2seq" and manifest["max_length"] == 9
    rc = main(
        [
            "verify",
            str(tmp_path / "m.keras"),
            str(c),
            "--data",
            str(tmp_path / "noy.npz"),  # an untrained model: its targets would be at chance
            "--min-agreement",
            "0",
            "--json",
            str(tmp_path / "v.json"),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert re.search(r"C == integer reference +bit-exact", printed), printed
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["bit_exact"] and report["sequences"] == 30

    def error(args: list[str]) -> str:
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err
        return err

    assert "needs --start-token and --end-token" in error([*argv, "--out", str(tmp_path / "d")])
    assert "needs y" in error(
        [
            "export",
            str(tmp_path / "m.keras"),
            "--calib",
            str(tmp_path / "noy.npz"),
            "--out",
            str(tmp_path / "e"),
            "--start-token",
            "0",
            "--end-token",
            "1",
        ]
    )
    assert "has no end token 7" in error(
        [*argv, "--out", str(tmp_path / "f"), "--start-token", "0", "--end-token", "7"]
    )
    assert "the model's ids are 0..8" in error(
        [*argv, "--out", str(tmp_path / "g"), "--start-token", "30", "--end-token", "1"]
    )
    assert "--max-length 4" in error(
        [
            *argv,
            "--out",
            str(tmp_path / "h"),
            "--start-token",
            "0",
            "--end-token",
            "1",
            "--max-length",
            "4",
        ]
    )
    assert "not supported for seq2seq" in error(
        [
            *argv,
            "--out",
            str(tmp_path / "i"),
            "--start-token",
            "0",
            "--end-token",
            "1",
            "--activations",
            "int16",
        ]
    )
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()
    # a one-input model refuses the seq2seq flags
    plain = keras.Sequential([keras.Input((None, 3)), L.GRU(4), L.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    np.savez(tmp_path / "px.npz", x=np.zeros((2, 4, 3), np.float32) + np.arange(3))
    assert "are for seq2seq" in error(
        [
            "export",
            str(tmp_path / "plain.keras"),
            "--calib",
            str(tmp_path / "px.npz"),
            "--out",
            str(tmp_path / "j"),
            "--end-token",
            "1",
        ]
    )
    # verify refuses data longer than the export takes
    long_x = np.where(np.concatenate([x, x], axis=1) == 0, 2, np.concatenate([x, x], axis=1))
    np.savez(tmp_path / "long.npz", x=long_x, lengths=np.full(30, 18))
    assert "--max-length 9" in error(
        ["verify", str(tmp_path / "m.keras"), str(c), "--data", str(tmp_path / "long.npz")]
    )


def test_c_api_errors(tmp_path: Path) -> None:
    """The error codes of the C API: a full encoder, a bad id, decode before encode, NULLs."""
    import ctypes  # noqa: PLC0415

    model = build(seed=2)
    ir = read_seq2seq(model)
    x, lengths, y = data(ir, n=8, t=5)
    _export(tmp_path, model, x, lengths, y, max_length=5)
    src = tmp_path / "c" / "probe.c"
    src.write_text(
        '#include "s2s.h"\n'
        "int probe(int which) {\n"
        "    static s2s_state_t s; int32_t out[8]; int32_t ids[6] = {1, 2, 3, 4, 5, 6};\n"
        "    int i; s2s_reset(&s);\n"
        "    if (which == 0) return s2s_decode(&s, out, 8);\n"
        "    if (which == 1) { for (i = 0; i < 5; ++i) s2s_encode_step_token(&s, 2);\n"
        "                      return s2s_encode_step_token(&s, 2); }\n"
        "    if (which == 2) return s2s_encode_step_token(&s, S2S_INPUT_VOCAB_SIZE);\n"
        "    if (which == 3) return s2s_encode_step_token(&s, 0); /* mask_zero: padding */\n"
        "    if (which == 4) return s2s_encode_tokens(&s, ids, 6);\n"
        "    if (which == 5) return s2s_encode_tokens(0, ids, 2);\n"
        "    if (which == 6) { s2s_encode_tokens(&s, ids, 3); return s2s_decode(&s, out, -1); }\n"
        "    if (which == 7) { s2s_encode_tokens(&s, ids, 3); return s2s_decode(&s, out, 0); }\n"
        "    return s2s_encode_tokens(&s, ids, 5);\n"
        "}\n"
    )
    import subprocess  # noqa: PLC0415

    lib = tmp_path / "probe.so"
    subprocess.run(
        [
            "gcc",
            *DEFAULT_FLAGS,
            "-fPIC",
            "-shared",
            "-I",
            str(tmp_path / "c"),
            str(src),
            str(tmp_path / "c" / "s2s.c"),
            "-o",
            str(lib),
        ],
        check=True,
    )
    probe = ctypes.CDLL(str(lib)).probe
    assert [probe(i) for i in range(9)] == [-1, -1, -3, -3, -1, -2, -1, 0, 5]


def test_refusals(tmp_path: Path) -> None:
    """Other two-input graphs get one line naming the layer and the accepted pattern."""
    x_in = keras.Input((None,), dtype="int32")
    d_in = keras.Input((None,), dtype="int32")
    e = L.Embedding(9, 4)(x_in)
    seq, h = L.GRU(6, return_sequences=True, return_state=True)(e)
    d = L.Embedding(9, 4)(d_in)
    dec = L.GRU(6, return_sequences=True)(d)  # no initial_state
    ctx = L.Attention()([dec, seq])
    out = L.Dense(9, activation="softmax")(L.Concatenate()([dec, ctx]))
    with pytest.raises(ExportError, match="must start from the encoder's states"):
        read_seq2seq(keras.Model([x_in, d_in], out))
    bi = L.Bidirectional(L.GRU(3, return_sequences=True))(e)
    seq2, h2 = L.GRU(6, return_sequences=True, return_state=True)(bi)
    dec2 = L.GRU(6, return_sequences=True)(d, initial_state=h2)
    out2 = L.Dense(9)(L.Concatenate()([dec2, L.Attention()([dec2, seq2])]))
    with pytest.raises(ExportError, match="a Bidirectional one only as that last layer"):
        read_seq2seq(keras.Model([x_in, d_in], out2))
    seq3, h_fw, h_bw = L.Bidirectional(L.GRU(3, return_sequences=True, return_state=True))(e)
    dec4 = L.GRU(6, return_sequences=True)(d, initial_state=L.Concatenate()([h_bw, h_fw]))
    out4 = L.Dense(9)(L.Concatenate()([dec4, L.Attention()([dec4, seq3])]))
    with pytest.raises(ExportError, match=r"Concatenate\(\)\(\[h_fw, h_bw\]\)"):
        read_seq2seq(keras.Model([x_in, d_in], out4))
    seq5, *st5 = L.Bidirectional(
        L.GRU(6, return_sequences=True, return_state=True), merge_mode="sum"
    )(e)
    dec5 = L.GRU(6, return_sequences=True)(d, initial_state=L.Add()(st5))
    out5 = L.Dense(9)(L.Concatenate()([dec5, L.Attention()([dec5, seq5])]))
    with pytest.raises(ExportError, match="needs 'concat'"):
        read_seq2seq(keras.Model([x_in, d_in], out5))
    no_att = L.Dense(9)(L.Concatenate()([dec2, dec2]))
    with pytest.raises(ExportError, match="one Attention or AdditiveAttention"):
        read_seq2seq(keras.Model([x_in, d_in], no_att))
    dm = L.Embedding(9, 4, mask_zero=True)(d_in)
    dec3 = L.GRU(6, return_sequences=True)(dm, initial_state=h)
    out3 = L.Dense(9)(L.Concatenate()([dec3, L.Attention()([dec3, seq])]))
    with pytest.raises(ExportError, match="mask_zero=True is not supported"):
        read_seq2seq(keras.Model([x_in, d_in], out3))
    relu = L.Dense(9, activation="relu")(L.Concatenate()([dec3, L.Attention()([dec3, seq])]))
    with pytest.raises(ExportError):
        read_seq2seq(keras.Model([x_in, d_in], relu))


def test_refusals_cells_and_bench(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """relu cells (states outside Q0.7) are refused; bench refuses a seq2seq model."""
    x_in = keras.Input((None,), dtype="int32")
    d_in = keras.Input((None,), dtype="int32")
    seq, h = L.GRU(6, return_sequences=True, return_state=True, activation="relu")(
        L.Embedding(9, 4)(x_in)
    )
    dec = L.GRU(6, return_sequences=True)(L.Embedding(9, 4)(d_in), initial_state=h)
    out = L.Dense(9)(L.Concatenate()([dec, L.Attention()([dec, seq])]))
    with pytest.raises(ExportError, match="need tanh"):
        read_seq2seq(keras.Model([x_in, d_in], out))
    model = build(seed=1)
    model.save(tmp_path / "m.keras")
    x, lengths, y = data(read_seq2seq(model), n=6)
    np.savez(tmp_path / "d.npz", x=x, lengths=lengths, y=y)
    argv = ["bench", str(tmp_path / "m.keras"), "--calib", str(tmp_path / "d.npz")]
    assert main([*argv, "--data", str(tmp_path / "d.npz")]) == 2
    assert "seq2seq encoder-decoder: use rnn2c size" in capsys.readouterr().err


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_encode_more_then_decode_again(tmp_path: Path, cell: str) -> None:
    """decode leaves the encoded input as it is: encode 3 steps, decode, encode 2 more, decode
    again gives the reference's tokens for 3 and for 5 steps (a Bidirectional encoder reruns
    its backward direction over all 5)."""
    import ctypes  # noqa: PLC0415

    model = build(cell=cell, bidirectional=True, units=8, seed=4)
    ir = read_seq2seq(model)
    x, lengths, y = data(ir, n=12, t=5)
    x[:, :] = np.where(x == 0, 3, x)  # every sequence 5 real ids
    lengths[:] = 5
    res = _export(tmp_path, model, x, lengths, y)
    q = res.qmodel
    lib = ctypes.CDLL(str(CompiledSeq2Seq.build(tmp_path / "c", "s2s").lib._name))
    state = ctypes.create_string_buffer(q.state_bytes())
    out = (ctypes.c_int32 * q.max_output_length)()
    for i in range(4):
        lib.s2s_reset(state)
        got = []
        for s in range(5):
            assert lib.s2s_encode_step_token(state, ctypes.c_int32(int(x[i, s]))) == s + 1
            if s in (2, 4):
                n = lib.s2s_decode(state, out, q.max_output_length)
                got.append(list(out[:n]))
        for steps, tokens in zip((3, 5), got, strict=True):
            ref, counts = q.greedy(x[i : i + 1, :steps], np.array([steps]))
            assert tokens == list(ref[0, : counts[0]]), (i, steps)
