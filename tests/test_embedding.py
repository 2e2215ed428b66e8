"""Token models: an Embedding input (one integer id per step), <name>_step_token/<name>_run_tokens.

Property style: random configurations (vocabulary, width, mask_zero, cell, units, a head, int8 or
int16 states, sometimes a Bidirectional layer, which makes the model whole-sequence) are exported
and compiled; the C over ids (step_token per step, or run_tokens) equals the integer reference bit
for bit with and without per-sequence lengths, the float IR equals Keras on each sequence cut to
its real length, and the int8 output stays close to Keras. Then the id error codes, the CLI on a
character-level model (export, verify with --stream, size, firmware --run on an emulated board,
bench's refusal) and bad id arrays.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import keras
import numpy as np
import pytest
from test_generated_c import COMPILERS, STRICT

from rnn2c.cli import main
from rnn2c.emulator import load_model
from rnn2c.emulator.verify import float_outputs
from rnn2c.export import ExportError, export_model, serialize
from rnn2c.export.api import read_any
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import last_step, run_int
from tools import need, require_arm_toolchain, require_unicorn

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
MAX_ERROR_FRACTION = 0.1  # of the float output range (at least 1.0 wide), as for other models
ERROR_TOKEN, ERROR_NULL, ERROR_LENGTH = -3, -2, -1


@dataclass
class TokConfig:
    seed: int
    vocab: int
    dim: int
    mask_zero: bool
    cell: str
    units: int
    return_sequences: bool
    bidirectional: bool
    head: tuple[int, str] | None
    activations: str
    steps: int

    def describe(self) -> str:
        return (
            f"s{self.seed}-V{self.vocab}-D{self.dim}-mz{int(self.mask_zero)}-{self.cell}"
            f"{self.units}-rs{int(self.return_sequences)}-bi{int(self.bidirectional)}"
            f"-head-{self.head}-{self.activations}-T{self.steps}"
        )


def random_config(seed: int) -> TokConfig:
    rng = np.random.default_rng(seed)
    head = None
    if rng.integers(0, 4):
        head = (int(rng.integers(1, 12)), str(rng.choice(["softmax", "linear", "tanh", "relu"])))
    return TokConfig(
        seed=seed,
        vocab=int(rng.choice([2, 5, 27, 64, 200])),
        dim=int(rng.integers(1, 13)),
        mask_zero=bool(rng.integers(0, 2)),
        cell=str(rng.choice(list(CELLS))),
        units=int(rng.integers(1, 20)),
        return_sequences=bool(rng.integers(0, 2)),
        bidirectional=seed % 4 == 3,
        head=head,
        activations="int16" if seed % 3 == 2 else "int8",
        steps=int(rng.integers(1, 16)),
    )


def build(cfg: TokConfig) -> keras.Model:
    keras.utils.set_random_seed(cfg.seed)
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(cfg.vocab, cfg.dim, mask_zero=cfg.mask_zero)(inp)
    cell = CELLS[cfg.cell](cfg.units, return_sequences=cfg.return_sequences)
    x = keras.layers.Bidirectional(cell)(x) if cfg.bidirectional else cell(x)
    if cfg.head:
        x = keras.layers.Dense(cfg.head[0], activation=cfg.head[1])(x)
    model = keras.Model(inp, x, name=f"tok{cfg.seed}")
    emb = model.layers[1]  # a wider table than the default +-0.05, so the rows differ
    rng = np.random.default_rng(cfg.seed)
    emb.set_weights([rng.normal(0, 0.6, size=(cfg.vocab, cfg.dim)).astype(np.float32)])
    return model


def random_ids(rng: np.random.Generator, cfg: TokConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    """ids [n, T] and real lengths; with mask_zero the ids are 1.. inside and 0 after a length."""
    low = 1 if cfg.mask_zero and cfg.vocab > 1 else 0
    ids = rng.integers(low, cfg.vocab, size=(n, cfg.steps)).astype(np.int32)
    lengths = rng.integers(1, cfg.steps + 1, size=n)
    if cfg.mask_zero:
        ids[np.arange(cfg.steps)[None, :] >= lengths[:, None]] = 0
    return ids, lengths


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_token_model_bit_exact_and_close(seed: int, tmp_path) -> None:  # noqa: ANN001
    cfg = random_config(seed)
    if cfg.mask_zero and cfg.vocab < 2:
        cfg.mask_zero = False
    model = build(cfg)
    rng = np.random.default_rng(100 + seed)
    calib, calib_len = random_ids(rng, cfg, 24)
    test, lengths = random_ids(rng, cfg, 16)
    max_length = cfg.steps if cfg.bidirectional else None
    # ids only: with mask_zero the calibration lengths come from each sequence's last nonzero id
    res = export_model(
        model, calib, tmp_path, name="tok", activations=cfg.activations, max_length=max_length
    )
    q = res.qmodel
    assert q.vocab == cfg.vocab and q.embedding.mask_zero == cfg.mask_zero
    assert q.whole_sequence == cfg.bidirectional
    assert serialize.load(tmp_path / "tok_qmodel.npz").embedding.table.tobytes() == (
        q.embedding.table.tobytes()
    )
    h = (tmp_path / "tok.h").read_text()
    assert f"#define TOK_VOCAB_SIZE {cfg.vocab} " in h and "#define TOK_INPUT_TOKENS 1" in h
    assert ("tok_step_token(" in h) == (not cfg.bidirectional)

    compiled = load_model(tmp_path, "tok")
    assert compiled.tokens and compiled.state_size == q.state_bytes()
    xq = q.quantize_input(test)
    assert np.array_equal(xq, q.embedding.table[test])
    for lens in (lengths, None):
        c_ids = compiled.run_tokens(test, lens)  # step_token per step, or run_tokens
        ref = run_int(q, xq, lens)
        rs = cfg.return_sequences
        if cfg.bidirectional and not rs:
            c_ids, ref = last_step(c_ids, lens), last_step(ref, lens)
        assert np.array_equal(c_ids, ref), f"C != reference for {cfg.describe()}"
    rows = compiled.run(xq, lengths)  # <name>_step / <name>_run on the table rows: the same
    assert np.array_equal(
        last_step(rows, lengths), last_step(compiled.run_tokens(test, lengths), lengths)
    )

    # the float IR is Keras on each sequence cut to its real length; int8 close to float
    _, ir = read_any(model)
    want = float_outputs(model, test, lengths)
    if not cfg.bidirectional:
        fl, _ = observe_model(ir, ir.float_input(test), lengths)
        np.testing.assert_allclose(last_step(fl, lengths), want, atol=1e-4, err_msg=cfg.describe())
    deq = q.output_q.dequantize(last_step(run_int(q, xq, lengths), lengths))
    span = max(1.0, float(want.max() - want.min()))
    err = float(np.abs(deq - want).max())
    assert err <= MAX_ERROR_FRACTION * span, f"{cfg.describe()}: max error {err:.4f}"


def test_id_error_codes(tmp_path) -> None:  # noqa: ANN001
    """An id outside the table: step_token returns ERROR_TOKEN and leaves state and output as
    they were (the stream goes on as if the call had not happened); run_tokens checks every id
    before it writes anything."""
    cfg = TokConfig(0, 11, 4, False, "gru", 6, True, False, (3, "softmax"), "int8", 8)
    model = build(cfg)
    rng = np.random.default_rng(0)
    ids, _ = random_ids(rng, cfg, 16)
    q = export_model(model, ids, tmp_path, name="tok").qmodel
    c = load_model(tmp_path, "tok")
    stream = np.array([3, 7, -1, 10, 11, 2**31 - 1, 0, -(2**31), 5], dtype=np.int64)
    rc, y = c.step_tokens(stream)
    bad = (stream < 0) | (stream >= cfg.vocab)
    assert list(rc) == [ERROR_TOKEN if b else 0 for b in bad]
    good = stream[~bad]
    ref = run_int(q, q.quantize_input(good[None]))[0]
    assert np.array_equal(y[~bad], ref)  # the bad calls changed nothing
    where = np.nonzero(bad)[0]
    assert np.array_equal(y[where], y[where - 1])  # and wrote no output

    for seq in ([1, 2, 11], [-5, 1], [1, 2, 3, 4, 5, 6, 7, 12]):
        code, out = c.run_tokens_api(np.array(seq), out_rows=len(seq))
        assert code == ERROR_TOKEN and not out.any()
    assert c.run_tokens_api(np.array([1, 2]), 0)[0] == ERROR_LENGTH
    code, out = c.run_tokens_api(np.array([1, 2, 3]), out_rows=3)
    assert code == 0 and np.array_equal(out, run_int(q, q.quantize_input(np.array([[1, 2, 3]])))[0])


# ---------------------------------------------------------------- the CLI on a character model

TEXT = (
    "the quick brown fox jumps over the lazy dog while the small cat sleeps by the warm fire "
    "and the wind moves through the tall grass near the old stone wall at the end of the road "
)


@pytest.fixture(scope="module")
def char_model(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A character-level next-character tagger (Embedding(mask_zero) -> GRU -> Dense softmax),
    briefly trained on a short text, with calibration and test ids [N, T] (+ lengths)."""
    ws = tmp_path_factory.mktemp("char")
    chars = sorted(set(TEXT))
    index = {ch: i + 1 for i, ch in enumerate(chars)}  # 0: padding
    vocab = len(chars) + 1
    codes = np.array([index[ch] for ch in TEXT], dtype=np.int32)
    t = 24
    starts = np.arange(0, codes.size - t - 1, 3)
    x = np.stack([codes[s : s + t] for s in starts])
    y = np.stack([codes[s + 1 : s + t + 1] for s in starts])
    keras.utils.set_random_seed(3)
    inp = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(vocab, 12, mask_zero=True)(inp)
    h = keras.layers.GRU(32, return_sequences=True)(h)
    out = keras.layers.Dense(vocab, activation="softmax")(h)
    model = keras.Model(inp, out, name="chars")
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    model.save(ws / "chars.keras")
    rng = np.random.default_rng(0)
    lengths = rng.integers(8, t + 1, size=x.shape[0])
    xp = np.where(np.arange(t)[None, :] < lengths[:, None], x, 0)
    np.savez(ws / "calib.npz", x=x[::2])
    np.savez(ws / "test.npz", x=xp, y=np.where(xp > 0, y, 0), lengths=lengths)
    return ws, vocab


def test_char_model_cli(char_model, tmp_path, capsys) -> None:  # noqa: ANN001
    ws, vocab = char_model
    out = tmp_path / "c"
    argv = ["export", str(ws / "chars.keras"), "--calib", str(ws / "calib.npz"), "--out", str(out)]
    assert main([*argv, "--name", "chars"]) == 0
    assert f"token model: chars_step_token / chars_run_tokens over ids 0..{vocab - 1}" in (
        capsys.readouterr().out
    )
    report = tmp_path / "v.json"
    rc = main(
        ["verify", str(ws / "chars.keras"), str(out), "--data", str(ws / "test.npz")]
        + ["--stream", "600", "--json", str(report)]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact" in printed and "accuracy per step" in printed
    h = (out / "chars.h").read_text()
    assert f"#define CHARS_VOCAB_SIZE {vocab} " in h and "chars_step_token" in h

    # bench: one line, exit 2
    capsys.readouterr()
    argv = ["bench", str(ws / "chars.keras"), "--calib", str(ws / "calib.npz")]
    assert main([*argv, "--data", str(ws / "test.npz"), "--targets", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not take token models" in err


def test_char_model_on_a_board_and_size(char_model, tmp_path, capsys) -> None:  # noqa: ANN001
    """firmware --run replays ids through chars_step_token under QEMU, bit for bit; size counts
    the step on the ids' rows with the table in flash."""
    require_arm_toolchain()
    need("qemu-system-arm", "make")
    ws, vocab = char_model
    out = tmp_path / "c"
    export_model(ws / "chars.keras", ws / "calib.npz", out, name="chars")
    argv = ["firmware", str(out), "--board", "mps2-an386", "--out", str(tmp_path / "fw")]
    rc = main([*argv, "--data", str(ws / "test.npz"), "--sequences", "2", "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    main_c = (tmp_path / "fw" / "main.c").read_text()
    assert "chars_step_token(&fw_state" in main_c and "fw_tokens" in main_c
    require_unicorn()
    rc = main(["size", str(out), "--target", "cortex-m4", "--data", str(ws / "test.npz")])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "token model" in printed


def test_whole_sequence_token_model_on_a_board(tmp_path, capsys) -> None:  # noqa: ANN001
    """An Embedding before a Bidirectional layer: main.c calls run_tokens once per sequence."""
    require_arm_toolchain()
    need("qemu-system-arm", "make")
    cfg = TokConfig(5, 30, 4, True, "gru", 5, True, True, (3, "softmax"), "int8", 9)
    ids, lengths = random_ids(np.random.default_rng(5), cfg, 12)
    np.savez(tmp_path / "ids.npz", x=ids, lengths=lengths)
    export_model(build(cfg), ids, tmp_path / "c", name="tokbi", max_length=9)
    argv = ["firmware", str(tmp_path / "c"), "--board", "mps2-an386", "--out", str(tmp_path / "fw")]
    rc = main([*argv, "--data", str(tmp_path / "ids.npz"), "--sequences", "3", "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "tokbi_run_tokens(&fw_state" in (tmp_path / "fw" / "main.c").read_text()


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (np.zeros((4, 5), np.float32), "x has dtype float32; a token model takes integer ids"),
        (np.full((4, 5), -1, np.int64), "x holds ids from -1 to -1"),
        (np.full((4, 5), 999, np.int32), "x holds ids from 999 to 999"),
        (np.ones((4, 5, 1), np.int32), "x has shape (4, 5, 1)"),
        (np.array([[1, 0, 2, 0, 0]] * 4, np.int32), "padding id 0 at step 1"),
        (np.zeros((4, 5), np.int32), "holds only id 0"),
    ],
    ids=["float", "negative", "too-large", "3-d", "interior-zero", "all-padding"],
)
def test_bad_ids_one_line(char_model, tmp_path, capsys, ids, message) -> None:  # noqa: ANN001
    ws, _ = char_model
    np.savez(tmp_path / "bad.npz", x=ids)
    argv = ["export", str(ws / "chars.keras"), "--calib", str(tmp_path / "bad.npz")]
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "c").exists()


@pytest.fixture(scope="module")
def token_exports(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A streaming token model (int8, mask_zero) and a whole-sequence one (Bidirectional,
    int16), for the strict compile matrix."""
    d = tmp_path_factory.mktemp("tokc")
    a = build(TokConfig(1, 40, 6, True, "gru", 8, True, False, (5, "softmax"), "int8", 10))
    b = build(TokConfig(2, 9, 3, False, "lstm", 4, False, True, (2, "linear"), "int16", 10))
    ids = np.random.default_rng(0).integers(1, 9, size=(8, 10))
    export_model(a, ids, d / "a", name="tok")
    export_model(b, ids, d / "b", name="tokbi", activations="int16", max_length=12)
    return d


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
@pytest.mark.parametrize("model", ["a/tok", "b/tokbi"])
def test_token_c_compiles_warning_free(token_exports, cc: str, opt: str, model: str) -> None:  # noqa: ANN001
    need(cc)
    src = token_exports / f"{model}.c"
    c = re.sub(r"/\*.*?\*/", "", src.read_text(), flags=re.S)
    assert not re.search(r"\b(float|double)\b", c)
    obj = token_exports / f"{model.replace('/', '-')}-{cc}{opt}.o"
    subprocess.run(
        [cc, "-std=c99", opt, *STRICT, "-c", str(src), "-o", str(obj)],
        check=True,
        capture_output=True,
        text=True,
    )


def test_token_model_exports_only_its_entry_points(token_exports) -> None:  # noqa: ANN001
    need("nm", "gcc")
    symbols = {}
    for model, name in (("a/tok", "tok"), ("b/tokbi", "tokbi")):
        obj = token_exports / f"{name}-nm.o"
        subprocess.run(
            ["gcc", "-std=c99", "-O2", "-c", str(token_exports / f"{model}.c"), "-o", str(obj)],
            check=True,
        )
        nm = subprocess.run(
            ["nm", "-g", "--defined-only", str(obj)], capture_output=True, text=True, check=True
        )
        symbols[name] = {line.split()[-1] for line in nm.stdout.splitlines()}
    tables = {"rnn2c_tanh_table", "rnn2c_exp_table"}
    assert symbols["tok"] == {"tok_reset", "tok_step", "tok_run", "tok_step_token"} | tables | {
        "tok_run_tokens"
    }
    assert symbols["tokbi"] == {"tokbi_reset", "tokbi_run", "tokbi_run_tokens"} | tables


def test_embedding_before_conv1d_is_refused(tmp_path) -> None:  # noqa: ANN001
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4)(inp)
    x = keras.layers.Conv1D(4, 3, padding="causal")(x)
    model = keras.Model(inp, keras.layers.GRU(3)(x))
    with pytest.raises(ExportError, match="an Embedding before Conv1D or pooling layers"):
        export_model(model, np.ones((4, 6), np.int32), tmp_path / "c")
    assert not (tmp_path / "c").exists()
