"""RepeatVector: the classic encoder-decoder without attention (export/layers/repeat.py).

encoder (return_sequences=False) -> RepeatVector(n) -> decoder (return_sequences=True) ->
TimeDistributed(Dense), the Keras "addition" example: a whole-sequence model whose <name>_run
encodes the input's `length` steps and decodes n rows whatever the length.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest
from test_generated_c import COMPILERS, STRICT

from rnn2c.cli import main
from rnn2c.emulator import load_model
from rnn2c.export import ExportError, export_model
from rnn2c.export.api import read_any
from rnn2c.export.layers.bidirectional import run_layers
from rnn2c.export.reference import run_int
from tools import need, require_unicorn

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
MAX_ERROR_FRACTION = 0.1  # max |int8 - float| over the output's span (as test_conv_pooling)
N_CONFIGS = 12  # seeds 0..8 pair every encoder cell with every decoder cell


@dataclass
class RepeatConfig:
    seed: int
    steps: int  # T of the calibration and test sequences
    n: int  # RepeatVector(n)
    #: (cell, units, wrapper "" / "bidir" / "backwards"); the encoder's last layer returns no
    #: sequence, the others do (then the export needs --max-length)
    encoder: list[tuple[str, int, str]]
    decoder: list[tuple[str, int, str]]  # all return sequences (the last: unless vector_out)
    dense_before: int  # units of a Dense(tanh) between the encoder and the repeat; 0: none
    head: tuple[int, str] | None  # (Timedistributed) Dense(units, activation) at the end
    tokens: int  # the vocabulary of an Embedding input; 0: float rows
    features: int  # input features (the Embedding's width)
    activations: str
    vector_out: bool  # the decoder's last layer returns no sequence

    def describe(self) -> str:
        def rec(specs: list[tuple[str, int, str]]) -> str:
            return ",".join(f"{w}{c}{u}" for c, u, w in specs)

        src = f"tok{self.tokens}x{self.features}" if self.tokens else f"F{self.features}"
        return (
            f"s{self.seed}-{src}-T{self.steps}-[{rec(self.encoder)}]-d{self.dense_before}"
            f"-rep{self.n}-[{rec(self.decoder)}]-v{int(self.vector_out)}-{self.head}"
            f"-{self.activations}"
        )


def random_config(seed: int) -> RepeatConfig:
    rng = np.random.default_rng(seed)
    kinds = list(CELLS)

    def rec(cell: str) -> tuple[str, int, str]:
        wrap = str(rng.choice(["", "", "", "", "bidir", "backwards"]))
        return cell, int(rng.integers(2, 9)), wrap

    enc_cell, dec_cell = kinds[seed % 3], kinds[(seed // 3) % 3]
    encoder = [rec(str(rng.choice(kinds))) for _ in range(int(rng.integers(0, 2)))]
    decoder = [rec(str(rng.choice(kinds))) for _ in range(int(rng.integers(0, 2)))]
    tokens = int(rng.integers(5, 12)) if rng.random() < 0.3 else 0
    head = None
    if rng.random() < 0.7:
        head = (int(rng.integers(2, 7)), str(rng.choice(["softmax", "linear", "tanh"])))
    return RepeatConfig(
        seed=seed,
        steps=int(rng.integers(3, 10)),
        n=int(rng.integers(1, 9)),
        encoder=[*encoder, rec(enc_cell)],
        decoder=[rec(dec_cell), *decoder],
        dense_before=int(rng.integers(2, 7)) if rng.random() < 0.4 else 0,
        head=head,
        tokens=tokens,
        features=int(rng.integers(2, 7)),
        activations="int16" if rng.random() < 0.4 else "int8",
        vector_out=bool(rng.random() < 0.15),
    )


def _recurrent(spec: tuple[str, int, str], sequences: bool) -> keras.layers.Layer:
    cell, units, wrap = spec
    layer = CELLS[cell](units, return_sequences=sequences, go_backwards=wrap == "backwards")
    return keras.layers.Bidirectional(layer) if wrap == "bidir" else layer


def build(cfg: RepeatConfig) -> keras.Model:
    keras.utils.set_random_seed(cfg.seed)
    if cfg.tokens:
        inp = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(cfg.tokens, cfg.features)(inp)
    else:
        inp = keras.Input((None, cfg.features))
        x = inp
    for i, spec in enumerate(cfg.encoder):
        x = _recurrent(spec, i < len(cfg.encoder) - 1)(x)
    if cfg.dense_before:
        x = keras.layers.Dense(cfg.dense_before, activation="tanh")(x)
    x = keras.layers.RepeatVector(cfg.n)(x)
    for i, spec in enumerate(cfg.decoder):
        x = _recurrent(spec, not (cfg.vector_out and i == len(cfg.decoder) - 1))(x)
    if cfg.head is not None:
        dense = keras.layers.Dense(cfg.head[0], activation=cfg.head[1])
        x = dense(x) if cfg.vector_out else keras.layers.TimeDistributed(dense)(x)
    return keras.Model(inp, x, name=f"r{cfg.seed}")


def _inputs(cfg: RepeatConfig, rng: np.random.Generator, n: int, t: int) -> np.ndarray:
    if cfg.tokens:
        return rng.integers(0, cfg.tokens, size=(n, t)).astype(np.int64)
    return rng.normal(size=(n, t, cfg.features)).astype(np.float32)


def _run_c(compiled, q, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The C's outputs: <name>_run on int8 rows, or <name>_run_tokens on a token model's ids."""
    if q.embedding is not None:
        return compiled.run_tokens(x, lengths)
    return compiled.run(q.quantize_input(x), lengths)


@pytest.mark.parametrize("seed", range(N_CONFIGS))
def test_random_repeat_model_bit_exact_and_close(seed: int, tmp_path: Path) -> None:
    """GRU/LSTM/SimpleRNN (Bidirectional, go_backwards) encoders and decoders around a
    RepeatVector, a Dense before it, token input, int8 and int16: the float IR is Keras on each
    sequence cut to its length (the n rows), the C run is the integer reference bit for bit at
    several lengths (longer than calibrated where no --max-length bounds it), int8 close to
    float, and --max-length is needed only for an encoder layer that returns sequences."""
    cfg = random_config(seed)
    model = build(cfg)
    rng = np.random.default_rng(seed)
    t, n = cfg.steps, cfg.n
    calib, test = _inputs(cfg, rng, 40, t), _inputs(cfg, rng, 10, t)
    stacked = len(cfg.encoder) > 1  # a [max_length][width] buffer before the repeat
    name = f"rv{seed}"
    q = export_model(  # calibrated on the test sequences too: the check is the arithmetic
        model,
        np.concatenate([calib, test]),
        tmp_path / "c",
        name=name,
        activations=cfg.activations,
        max_length=t if stacked else None,
    ).qmodel
    assert q.whole_sequence and q.needs_max_length == stacked, cfg.describe()
    header = (tmp_path / "c" / f"{name}.h").read_text()
    assert (f"#define {name.upper()}_MAX_LENGTH" in header) == stacked
    if not cfg.vector_out:
        assert f"#define {name.upper()}_OUTPUT_ROWS(length) {n} " in header
    if stacked:  # the encoder's first layer keeps a row per input step
        with pytest.raises(ExportError, match="give max_length=N"):
            export_model(model, calib, tmp_path / "m", name=name, activations=cfg.activations)

    lens = rng.integers(1, t + 1, size=test.shape[0])
    _, ir = read_any(model)
    fl = run_layers(ir.layers, ir.sequence_out, ir.float_input(test).astype(np.float64), lens)
    assert fl.shape[1] == max(t, n if not cfg.vector_out else 1)
    for i in range(test.shape[0]):
        want = np.asarray(model(test[i : i + 1, : lens[i]], training=False))[0]
        if cfg.vector_out:
            got = fl[i, lens[i] - 1]
        else:  # n rows whatever the length, zeros after them
            assert want.shape[0] == n
            got = fl[i, :n]
            assert not fl[i, n:].any()
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=cfg.describe())

    want = np.asarray(model(test, training=False))  # int8 close to float at full length
    deq = q.output_q.dequantize(run_int(q, q.quantize_input(test)))
    deq = deq[:, -1] if cfg.vector_out else deq[:, :n]
    err = float(np.abs(deq - want).max())
    span = max(1.0, float(want.max() - want.min()))
    assert err <= MAX_ERROR_FRACTION * span, f"{cfg.describe()}: max error {err:.4f}"

    compiled = load_model(tmp_path / "c", name)
    assert compiled.state_size == q.state_bytes() == compiled.declared_state_size
    for lengths in (lens, np.full(test.shape[0], t)):
        got = _run_c(compiled, q, test, lengths)
        assert np.array_equal(got, run_int(q, q.quantize_input(test), lengths)), cfg.describe()
    if not stacked:  # no length limit: three times the calibrated length
        long = _inputs(cfg, rng, 3, 3 * t)
        got = _run_c(compiled, q, long, None)
        assert np.array_equal(got, run_int(q, q.quantize_input(long))), cfg.describe()


def _addition(vocab: int = 12, n: int = 4, units: int = 16) -> keras.Model:
    """The Keras addition example's shape at small sizes: one-hot characters in, LSTM encoder,
    RepeatVector(digits + 1), LSTM decoder, a softmax over the characters per output row. Its
    weights are scaled by 3 so that the untrained softmax is decisive (not near uniform)."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((None, vocab)),
            keras.layers.LSTM(units),
            keras.layers.RepeatVector(n),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(vocab, activation="softmax")),
        ],
        name="addition",
    )
    for layer in model.layers:
        layer.set_weights([3.0 * w for w in layer.get_weights()])
    return model


def test_addition_example_export_verify_firmware_size(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The addition example through the CLI: export without --max-length (no buffer follows the
    input's length), verify PASS with a label per output row (y [N, n], n = 4 rows for inputs
    of 3 to 7 steps), one emulated board bit-exact, and `size` on a Cortex-M4 bit-exact with
    the run's MACs (the encoder over the steps, the decoder and head over the 4 rows)."""
    vocab, t, n, units = 12, 7, 4, 16
    model = _addition(vocab, n, units)
    model.save(tmp_path / "add.keras")
    rng = np.random.default_rng(0)
    x = np.eye(vocab, dtype=np.float32)[rng.integers(0, vocab, size=(64, t))]
    lengths = rng.integers(3, t + 1, size=64)
    y = np.zeros((64, n), dtype=np.int64)  # the float model's own labels at each real length
    for length in np.unique(lengths):
        y[lengths == length] = np.asarray(model(x[lengths == length, :length])).argmax(-1)
    np.savez(tmp_path / "calib.npz", x=x)
    np.savez(tmp_path / "data.npz", x=x, y=y, lengths=lengths)
    c, data = tmp_path / "c", str(tmp_path / "data.npz")
    argv = ["export", str(tmp_path / "add.keras"), "--calib", str(tmp_path / "calib.npz")]
    assert main([*argv, "--out", str(c), "--name", "add"]) == 0
    printed = capsys.readouterr().out
    assert "add_run over sequences of any length" in printed and "4 output rows" in printed
    header = (c / "add.h").read_text()
    assert "#define ADD_OUTPUT_ROWS(length) 4 " in header and "ADD_MAX_LENGTH" not in header

    assert main(["verify", str(tmp_path / "add.keras"), str(c), "--data", data]) == 0
    printed = capsys.readouterr().out
    assert "C == integer reference          bit-exact" in printed
    assert "accuracy per step float / int8  100.00% /" in printed
    assert "run (whole sequence)  any length" in printed and printed.rstrip().endswith("PASS")

    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    fw = tmp_path / "fw"
    argv = ["firmware", str(c), "--board", "mps2-an386", "--data", data, "--out", str(fw)]
    assert main([*argv, "--run", "--sequences", "4"]) == 0
    printed = capsys.readouterr().out
    assert "board == host emulator: bit-exact at every step" in printed, printed

    require_unicorn()
    out = tmp_path / "size.json"
    argv = ["size", str(c), "--target", "cortex-m4", "--steps", str(t), "--sequences", "2"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["bit_exact"] and report["steps"] == 2 * t
    encoder, decoder, head = 4 * units * (vocab + units), 4 * units * 2 * units, units * vocab
    assert report["macs_per_step"] == round((t * encoder + n * (decoder + head)) / t)
    assert 1.0 < report["instructions_per_mac"] < 8.0


def test_run_writes_n_rows_for_any_length(tmp_path: Path) -> None:
    """<name>_run writes ADD_OUTPUT_ROWS(length) = n rows for 1 step, for n steps and for many
    more, equal to the integer reference (and nothing past them)."""
    model = _addition(vocab=5, n=6, units=4)
    rng = np.random.default_rng(3)
    x = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=(8, 6))]
    q = export_model(model, x, tmp_path / "c", name="ad").qmodel
    compiled = load_model(tmp_path / "c", "ad")
    for length in (1, 2, 6, 40):
        seq = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=length)]
        xq = q.quantize_input(seq[None])
        rc, out = compiled.run_api(xq[0], length, 7)
        assert rc == 0
        assert np.array_equal(out[:6], run_int(q, xq)[0, :6]) and not out[6:].any()
    assert compiled.run_api(np.zeros((1, 5), np.int8), 0, 6)[0] == -1  # ERROR_LENGTH


def test_repeat_models_compile_warning_free(tmp_path: Path) -> None:
    """Strict flags (gcc and clang, -O0 and -Os, AVX2 on x86): the addition example, and an
    int16 token model with a Dense before the repeat and a go_backwards then Bidirectional
    decoder reading the repeated vector."""
    sources = []
    model = _addition(vocab=6, n=3, units=5)
    x = np.eye(6, dtype=np.float32)[np.random.default_rng(0).integers(0, 6, size=(8, 5))]
    export_model(model, x, tmp_path / "a", name="ca")
    sources.append(tmp_path / "a" / "ca.c")
    cfg = RepeatConfig(
        seed=50,
        steps=5,
        n=3,
        encoder=[("gru", 4, "")],
        decoder=[("lstm", 3, "backwards"), ("rnn", 3, "bidir")],
        dense_before=3,
        head=(4, "softmax"),
        tokens=7,
        features=3,
        activations="int16",
        vector_out=False,
    )
    ids = np.random.default_rng(1).integers(0, 7, size=(8, 5))
    export_model(build(cfg), ids, tmp_path / "b", name="cb", activations="int16")
    sources.append(tmp_path / "b" / "cb.c")
    for cc in COMPILERS:
        for opt in ("-O0", "-Os"):
            avx = opt == "-Os" and platform.machine() == "x86_64"
            for extra in ([], ["-mavx2"]) if avx else ([],):
                for src in sources:
                    argv = [cc, "-std=c99", opt, *STRICT, *extra, "-c", str(src)]
                    subprocess.run(
                        [*argv, "-o", str(tmp_path / "x.o")],
                        check=True,
                        capture_output=True,
                        text=True,
                    )


def _seq(*layers: keras.layers.Layer, features: int = 3) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((None, features)), *layers])


def _over_a_sequence() -> keras.Model:
    """Keras builds RepeatVector on 2-D tensors only: an LSTM without return_sequences, then
    told afterwards that it returns sequences (what the reader reads)."""
    model = _seq(keras.layers.LSTM(4, name="enc"), keras.layers.RepeatVector(3, name="rv"))
    model.get_layer("enc").return_sequences = True
    return model


def _in_a_graph() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 3))
    rep = keras.layers.RepeatVector(3, name="rv")(keras.layers.LSTM(4)(inp))
    a = keras.layers.LSTM(2, return_sequences=True)(rep)
    b = keras.layers.GRU(2, return_sequences=True)(rep)
    return keras.Model(inp, keras.layers.Add()([a, b]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            _over_a_sequence,
            "layer 'rv' (RepeatVector): a RepeatVector needs a single vector, and its input is a "
            "sequence; put it after a recurrent layer with return_sequences=False",
        ),
        (
            lambda: _seq(
                keras.layers.LSTM(4),
                keras.layers.RepeatVector(3, name="rv1"),
                keras.layers.LSTM(4),
                keras.layers.RepeatVector(2, name="rv2"),
                keras.layers.LSTM(2, return_sequences=True),
            ),
            "layer 'rv2' (RepeatVector): a second RepeatVector (after 'rv1') is not supported; "
            "rnn2c exports one: encoder -> RepeatVector -> decoder",
        ),
        (
            _in_a_graph,
            "layer 'rv' (RepeatVector): a RepeatVector in a graph of branches is not supported; "
            "use a chain",
        ),
        (
            lambda: _seq(
                keras.layers.GRU(4),
                keras.layers.RepeatVector(5),
                keras.layers.Conv1D(2, 3, padding="causal", name="cv"),
            ),
            "layer 'cv' (Conv1D): Conv1D after a RepeatVector is not supported; after the "
            "RepeatVector use recurrent, Dense or LayerNormalization layers",
        ),
        (
            lambda: _seq(
                keras.layers.GRU(4, return_sequences=True, name="g1"),
                keras.layers.GRU(4),
                keras.layers.RepeatVector(3, name="rv"),
                keras.layers.GRU(2, return_sequences=True),
            ),
            "layer 'g1' returns sequences before the RepeatVector 'rv', so the C keeps its rows "
            "over the input's steps in the state; give max_length=N",
        ),
    ],
)
def test_refusals_are_one_line_and_write_nothing(make, message: str, tmp_path: Path) -> None:  # noqa: ANN001
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32)
    with pytest.raises(ExportError) as e:
        export_model(make(), x, tmp_path / "c", name="m")
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "c").exists()
