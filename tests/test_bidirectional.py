"""Whole-sequence models (Bidirectional, go_backwards) and the <name>_run API.

Property style: for every cell x merge mode x return_sequences, a random configuration (sizes,
int8 or int16 states, bias on/off, sometimes a second recurrent or Bidirectional layer on top,
a Dense head or not) is exported and compiled; the C run equals the integer reference bit for
bit on random and extreme inputs, with and without per-sequence lengths; the float IR equals
Keras on each sequence cut to its real length; the int8 output stays close to Keras.
"""

from __future__ import annotations

import ctypes
import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.emulator import load_model
from rnn2c.emulator.build import STRICT_FLAGS
from rnn2c.emulator.verify import float_outputs
from rnn2c.export import export_model, serialize
from rnn2c.export.api import read_any
from rnn2c.export.quantize import observe_model
from rnn2c.export.reference import last_step, run_int
from tools import require_arm_toolchain, require_unicorn

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}
MERGES = ("concat", "sum", "ave", "mul")
MAX_ERROR_FRACTION = 0.1  # of the float output range (at least 1.0 wide), as for causal models


@dataclass
class BiConfig:
    seed: int
    cell: str
    merge: str  # "backwards": a plain go_backwards layer
    return_sequences: bool
    features: int
    steps: int
    units: int
    use_bias: bool
    reset_after: bool
    then: str | None  # a second layer: None, "bidir", or a cell name
    head: tuple[int, str] | None
    activations: str
    act: str = "tanh"  # the recurrent layers' activation

    def describe(self) -> str:
        return (
            f"s{self.seed}-{self.cell}{self.units}-{self.merge}-rs{int(self.return_sequences)}"
            f"-F{self.features}-T{self.steps}-then-{self.then}-head-{self.head}-{self.activations}-{self.act}"
        )


def random_config(seed: int, cell: str, merge: str, rs: bool) -> BiConfig:
    rng = np.random.default_rng(seed)
    head = None
    if rng.integers(0, 3):
        head = (int(rng.integers(1, 6)), str(rng.choice(["linear", "softmax", "tanh", "sigmoid"])))
    return BiConfig(
        seed=seed,
        cell=cell,
        merge=merge,
        return_sequences=rs,
        features=int(rng.integers(1, 7)),
        steps=int(rng.integers(1, 13)),
        units=int(rng.integers(1, 11)),
        use_bias=bool(rng.integers(0, 4)),
        reset_after=bool(rng.integers(0, 2)),
        then=[None, "bidir", str(rng.choice(list(CELLS)))][int(rng.integers(0, 3))],
        head=head,
        activations="int16" if seed % 3 == 0 else "int8",
    )


def _cell(cfg: BiConfig, name: str, units: int, rs: bool, **kw: object) -> keras.layers.Layer:
    extra = {"reset_after": cfg.reset_after} if name == "gru" else {}
    return CELLS[name](
        units, return_sequences=rs, use_bias=cfg.use_bias, activation=cfg.act, **extra, **kw
    )


def build(cfg: BiConfig) -> keras.Model:
    keras.utils.set_random_seed(cfg.seed)
    inp = keras.Input((None, cfg.features))
    first_rs = cfg.return_sequences or cfg.then is not None
    if cfg.merge == "backwards":
        x = _cell(cfg, cfg.cell, cfg.units, first_rs, go_backwards=True)(inp)
    else:
        x = keras.layers.Bidirectional(
            _cell(cfg, cfg.cell, cfg.units, first_rs), merge_mode=cfg.merge
        )(inp)
    if cfg.then == "bidir":
        merge = "concat" if cfg.merge == "backwards" else cfg.merge
        x = keras.layers.Bidirectional(
            _cell(cfg, cfg.cell, 3, cfg.return_sequences), merge_mode=merge
        )(x)
    elif cfg.then is not None:
        x = _cell(cfg, cfg.then, 4, cfg.return_sequences)(x)
    if cfg.head:
        x = keras.layers.Dense(cfg.head[0], activation=cfg.head[1])(x)
    model = keras.Model(inp, x, name=f"b{cfg.seed}")
    if cfg.act == "relu":  # a relu state grows with the recurrent weights: keep them small
        for layer in model.layers[1:]:
            w = layer.get_weights()
            layer.set_weights([a * 0.5 if a.ndim == 2 else a for a in w])
    if cfg.use_bias:  # non-zero biases, so the bias paths are exercised
        rng = np.random.default_rng(cfg.seed)
        for layer in model.layers[1:]:
            w = layer.get_weights()
            for i, a in enumerate(w):
                if a.ndim == 1 or (a.ndim == 2 and a.shape[0] == 2):  # GRU reset_after: [2, 3U]
                    w[i] = rng.normal(0, 0.5, size=a.shape).astype(np.float32)
            layer.set_weights(w)
    return model


def extreme_inputs(n_steps: int, features: int) -> np.ndarray:
    lo = np.full((n_steps, features), -128)
    hi = np.full((n_steps, features), 127)
    alt = np.where(np.arange(n_steps)[:, None] % 2 == 0, hi, lo)
    return np.stack([lo, hi, alt]).astype(np.int8)


def _real(y: np.ndarray, lengths: np.ndarray, rs: bool) -> np.ndarray:
    """The compared outputs: every real step (return_sequences) or each sequence's last."""
    if not rs:
        return last_step(y, lengths)
    return y[np.arange(y.shape[1])[None, :] < lengths[:, None]]


CONFIGS = [
    (cell, merge, rs)
    for cell, merge, rs in itertools.product(CELLS, (*MERGES, "backwards"), (False, True))
]


@pytest.mark.parametrize(("cell", "merge", "rs"), CONFIGS)
def test_bit_exact_and_close(cell: str, merge: str, rs: bool, tmp_path) -> None:  # noqa: ANN001
    seed = CONFIGS.index((cell, merge, rs))
    check_config(random_config(seed, cell, merge, rs), tmp_path)


@pytest.mark.parametrize(("cell", "merge", "rs"), CONFIGS)
def test_relu_cells_bit_exact_and_close(cell: str, merge: str, rs: bool, tmp_path) -> None:  # noqa: ANN001
    """activation='relu' cells: both directions share one state scale 2^k/128 (k the larger
    calibrated shift), the merge integers are those of tanh cells, only the output scale
    follows k (mul: 2^2k/128). Random weights, the recurrent ones scaled down so that the
    relu state stays bounded over the sequence."""
    seed = 1000 + CONFIGS.index((cell, merge, rs))
    cfg = dataclasses.replace(random_config(seed, cell, merge, rs), act="relu")
    check_config(cfg, tmp_path)


@pytest.mark.parametrize("merge", [*MERGES, "backwards"])
@pytest.mark.parametrize("activations", ["int8", "int16"])
def test_relu_directions_share_the_larger_state_shift(
    merge: str, activations: str, tmp_path: Path
) -> None:
    """Both relu cells get the larger of the two calibrated shifts k; the layer's output scale
    is s = 2^k/128 (int16: 2^k/32768) times 2 for sum, 2^k for mul; go_backwards: its cell's."""
    keras.utils.set_random_seed(4)
    cell = keras.layers.SimpleRNN(3, activation="relu", return_sequences=True)
    if merge == "backwards":
        layer = keras.layers.SimpleRNN(
            3, activation="relu", return_sequences=True, go_backwards=True
        )
    else:
        layer = keras.layers.Bidirectional(cell, merge_mode=merge)
    model = keras.Sequential([keras.Input((None, 2)), layer])
    if merge != "backwards":  # the backward direction's state 4x larger: a larger k
        bw = model.layers[0].backward_layer
        kernel, rec, bias = bw.get_weights()
        bw.set_weights([kernel * 4, rec, bias])
    x = np.random.default_rng(1).normal(size=(16, 6, 2)).astype(np.float32) * 2
    _, ir = read_any(model)
    _, obs = observe_model(ir, x.astype(np.float64))
    keys = ["0.bw.state"] if merge == "backwards" else ["0.fw.state", "0.bw.state"]
    ks = [int(np.floor(np.log2(np.abs(obs.get(key)).max()))) + 1 for key in keys]
    k = max(ks)
    assert k >= 1 and (merge == "backwards" or ks[0] < ks[1])
    res = export_model(model, x, tmp_path, activations=activations, max_length=6)
    q = res.qmodel.layers[0]
    s = 2.0**k / (128 if activations == "int8" else 32768)
    assert all(c.output_q.scale == s for _, c in q.cells())
    assert q.output_q.scale == s * {"sum": 2.0, "mul": 2.0**k}.get(merge, 1.0)
    assert not res.notes


def check_config(cfg: BiConfig, tmp_path: Path) -> float:
    """Export, compile and compare one configuration; returns the max error / span."""
    seed, rs = cfg.seed, cfg.return_sequences
    model = build(cfg)
    rng = np.random.default_rng(100 + seed)
    scale = float(rng.choice([0.3, 1.0, 3.0]))
    calib = (rng.normal(size=(24, cfg.steps, cfg.features)) * scale).astype(np.float32)
    test = (rng.normal(size=(12, cfg.steps, cfg.features)) * scale).astype(np.float32)
    lengths = rng.integers(1, cfg.steps + 1, size=test.shape[0])
    max_length = cfg.steps + int(rng.integers(0, 3))
    if cfg.act == "relu":  # unbounded: a test input past the calibrated input range would
        calib = np.concatenate([calib, test])  # clip it by more than a tanh output can move
    res = export_model(
        model, calib, tmp_path, name="b", activations=cfg.activations, max_length=max_length
    )
    q = res.qmodel
    assert q.whole_sequence and q.returns_sequences == rs
    assert serialize.load(tmp_path / "b_qmodel.npz").max_length == max_length

    # the float IR is Keras' arithmetic, on every sequence cut to its real length
    _, ir = read_any(model)
    fl, _ = observe_model(ir, test.astype(np.float64), lengths)
    want = float_outputs(model, test, lengths, every_step=rs)
    want = want[np.arange(cfg.steps)[None, :] < lengths[:, None]] if rs else want
    np.testing.assert_allclose(_real(fl, lengths, rs), want, atol=1e-4, err_msg=cfg.describe())

    # C run == integer reference (also after a save and load of the quantized model); -O2 on a
    # third of the configurations, -O0 (a quicker compile) on the others
    opt = "-O2" if seed % 3 == 1 else "-O0"
    compiled = load_model(tmp_path, "b", flags=(*STRICT_FLAGS, opt))
    assert compiled.state_size == q.state_bytes() == compiled.declared_state_size
    assert not compiled.streaming
    xq = np.concatenate([q.input_q.quantize(test), extreme_inputs(cfg.steps, cfg.features)])
    lens = np.concatenate([lengths, np.full(3, cfg.steps)])
    loaded = serialize.load(tmp_path / "b_qmodel.npz")
    for ls in (None, lens):
        ref = run_int(q, xq, ls)
        assert np.array_equal(compiled.run(xq, ls), ref), f"C != reference: {cfg.describe()}"
        assert np.array_equal(run_int(loaded, xq, ls), ref)

    # int8 close to float Keras
    deq = q.output_q.dequantize(_real(run_int(q, q.input_q.quantize(test), lengths), lengths, rs))
    span = max(1.0, float(want.max() - want.min()))
    err = float(np.abs(deq - want).max())
    assert err <= MAX_ERROR_FRACTION * span, f"{cfg.describe()}: max error {err:.4f}"
    return err / span


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A bidirectional GRU tagger (return_sequences, a Dense head every step), max length 8."""
    d = tmp_path_factory.mktemp("tagger")
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True)),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(8, 8, 3)).astype(np.float32)
    res = export_model(model, x, d, name="tg", max_length=8)
    return load_model(d, "tg"), res.qmodel, x


def test_run_length_errors_write_nothing(tagger) -> None:  # noqa: ANN001
    compiled, q, x = tagger
    xq = q.input_q.quantize(x[0])  # [8, 3]
    for length in (0, -1, -(2**31), 9, 1000):
        rc, y = compiled.run_api(np.zeros((16, 3), np.int8), length, 16)
        assert rc == -1, length
        assert not y.any()
    y = np.zeros((8, q.output_size), np.int8)
    rc = compiled.lib.rnn2c_harness_run_api(
        None, ctypes.c_int32(4), y.ctypes.data_as(ctypes.c_void_p)
    )
    assert rc == -2 and not y.any()
    for length in (1, 5, 8):  # run over the first `length` rows == the reference
        rc, y = compiled.run_api(xq, length, length)
        assert rc == 0
        assert np.array_equal(y, run_int(q, xq[None, :length])[0])


def test_causal_models_get_run_as_a_loop_over_step(tmp_path) -> None:  # noqa: ANN001
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 7, 2)).astype(np.float32)
    for rs, max_length in ((True, None), (False, 7)):
        lstm = keras.layers.LSTM(4, return_sequences=rs)
        model = keras.Sequential([keras.Input((None, 2)), lstm, keras.layers.Dense(3)])
        out = tmp_path / f"rs{int(rs)}"
        q = export_model(model, x, out, name="c", max_length=max_length).qmodel
        compiled = load_model(out, "c")
        assert compiled.streaming and compiled.returns_sequences == rs
        xq = q.input_q.quantize(x)
        stepped = compiled.run(xq)  # reset + step, every step
        for i in range(xq.shape[0]):
            rc, y = compiled.run_api(xq[i], 7, 7 if rs else 1)
            assert rc == 0
            assert np.array_equal(y, stepped[i] if rs else stepped[i, -1:])
        assert compiled.run_api(xq[0], 0, 7)[0] == -1
        assert compiled.run_api(np.zeros((8, 2), np.int8), 8, 8)[0] == (-1 if max_length else 0)
        header = (out / "c.h").read_text()
        assert "#define C_STREAMING 1" in header
        assert ("#define C_MAX_LENGTH 7" in header) == (max_length == 7)


def test_cli_export_verify_size_of_a_tagger(tmp_path, capsys) -> None:  # noqa: ANN001
    """Normalization folded into both directions, per-step labels with real lengths through
    `verify` (C run at each real length vs Keras on the cut sequence), and `size` counting run's
    instructions per step on a Cortex-M4, bit-exact."""
    keras.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    x = (rng.normal(size=(24, 10, 3)) * [1.0, 20.0, 0.1] + [0.0, 50.0, 0.0]).astype(np.float32)
    lengths = rng.integers(2, 11, size=24)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            norm,
            keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True), "ave"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.save(tmp_path / "m.keras")
    y = np.asarray(model(x)).argmax(-1)  # the float model's own per-step labels
    np.savez(tmp_path / "d.npz", x=x, y=y, lengths=lengths)
    d = str(tmp_path / "d.npz")
    args = ["export", str(tmp_path / "m.keras"), "--calib", d, "--out", str(tmp_path / "c")]
    assert main([*args, "--name", "tg", "--max-length", "10", "--input-quant", "per-feature"]) == 0
    assert "tg_run over up to 10 steps" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "m.keras"), str(tmp_path / "c"), "--data", d]) == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and "run (whole sequence)" in out and "accuracy per step" in out
    require_arm_toolchain()
    require_unicorn()
    from rnn2c.emulator.size import measure  # noqa: PLC0415

    r = measure(tmp_path / "c", "cortex-m4", steps=10, sequences=2)
    assert r.bit_exact and r.steps == 20 and r.stack_path[0] == "tg_run"
    # per MAC against a ceiling depends on the compiler: benchmarks/cortex_m_shapes.py checks it
    assert r.instructions_per_mac == pytest.approx(r.instructions_mean / r.macs_per_step)
