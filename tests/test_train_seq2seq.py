"""`rnn2c train --task seq2seq`: the synthetic datasets (dates really map to their ISO form),
the .npz checks, greedy decoding against a step-by-step NumPy decoder (what the C computes),
and a tiny end-to-end run through the CLI whose run folder is read back, exported and
verified with the commands of its EXPORT.txt."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main  # noqa: E402
from rnn2c.train.data import DatasetError  # noqa: E402
from rnn2c.train.seq2seq import (  # noqa: E402
    END,
    START,
    build_seq2seq,
    decoder_inputs,
    greedy_decode,
    sequence_scores,
)
from rnn2c.train.seq2seq_data import (  # noqa: E402
    date_max_length,
    dates_dataset,
    load_seq2seq_dataset,
    reverse_dataset,
)
from rnn2c.train.train import run_files  # noqa: E402

MONTHS = [dt.date(2000, m, 1).strftime("%B").lower() for m in range(1, 13)]
WEEKDAYS = [dt.date(2024, 1, d).strftime("%A").lower() for d in range(1, 8)]  # Monday first


def parse_date(text: str) -> dt.date:
    """An independent reader of the generator's formats: month names, then numbers; numeric
    dates are day-first unless they start with a four-digit year; yy < 50 is 20yy."""
    t = text.lower()
    weekday = None
    for i, name in enumerate(WEEKDAYS):
        if re.search(rf"\b{name[:3]}\w*", t):
            weekday, t = i, re.sub(rf"\b{name[:3]}\w*,?", " ", t)
    month = None
    for i, name in enumerate(MONTHS):
        if re.search(rf"\b{name[:3]}", t):
            month, t = i + 1, re.sub(rf"\b{name[:3]}[a-z]*", " ", t)
    t = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", t)
    nums = re.findall(r"\d+", t)

    def year(s: str) -> int:
        return int(s) if len(s) == 4 else (2000 if int(s) < 50 else 1900) + int(s)

    if month is not None:
        assert len(nums) == 2, text
        day, yy = nums  # every format with a month name gives the day before the year
    elif len(nums) == 1:
        assert len(nums[0]) == 8, text
        yy, month, day = nums[0][:4], int(nums[0][4:6]), nums[0][6:]
    else:
        assert len(nums) == 3, text
        if len(nums[0]) == 4:
            yy, month, day = nums[0], int(nums[1]), nums[2]
        else:
            day, month, yy = nums[0], int(nums[1]), nums[2]
    date = dt.date(year(yy), month, int(day))
    if weekday is not None:
        assert date.weekday() == weekday, text  # the weekday named is the date's own
    return date


def test_dates_are_deterministic_and_their_targets_are_the_iso_form_of_the_input() -> None:
    a = dates_dataset(600, 120, seed=3)
    b = dates_dataset(600, 120, seed=3)
    c = dates_dataset(600, 120, seed=4)
    for key in ("x_train", "y_train", "lengths_train", "x_test", "y_test", "lengths_test"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert not np.array_equal(a.x_train, c.x_train)

    assert a.x_train.dtype == np.int32 and a.y_train.dtype == np.int32
    assert a.max_length == date_max_length() == a.x_test.shape[1]  # T_in whatever the seed
    assert a.max_output_length == 11 and a.output_vocab[:2] == ["<start>", "<end>"]
    assert a.input_vocab[0] == "<pad>"
    seen_formats = set()
    dates = {}
    for split in ("train", "test"):
        x, y, lengths = (getattr(a, f"{k}_{split}") for k in ("x", "y", "lengths"))
        steps = np.arange(x.shape[1])[None, :]
        assert np.all(x[steps < lengths[:, None]] >= 1)  # real ids are never the padding id
        assert np.all(x[steps >= lengths[:, None]] == 0)
        assert np.all(y[:, 10] == END) and np.all(y[:, :10] >= 2)
        dates[split] = set()
        for i in range(len(x)):
            text = a.decode_input(x[i], lengths[i])
            assert len(text) == lengths[i]
            date = parse_date(text)
            assert a.decode_output(y[i]) == date.isoformat()
            assert dt.date(1950, 1, 1) <= date <= dt.date(2049, 12, 31)
            dates[split].add(date)
            seen_formats.add(re.sub(r"[A-Za-z]+", "A", re.sub(r"\d+", "9", text)))
    assert not dates["train"] & dates["test"]  # the test dates are never seen in training
    assert len(seen_formats) >= 15  # many different shapes of input


def test_reverse_targets_are_the_reversed_digits_padded_with_the_end_token() -> None:
    r = reverse_dataset(200, 30, seed=1)
    assert r.x_train.shape == (200, 12) and r.y_train.shape == (200, 13)
    for i in range(200):
        n = int(r.lengths_train[i])
        text = r.decode_input(r.x_train[i], n)
        assert len(text) == n and text.isdigit()
        assert r.decode_output(r.y_train[i]) == text[::-1]
        assert np.all(r.y_train[i, n:] == END) and np.all(r.y_train[i, :n] >= 2)
    assert r.lengths_train.min() == 1 and r.lengths_train.max() == 12
    assert np.array_equal(reverse_dataset(200, 30, seed=1).x_test, r.x_test)


def _npz(path: Path, **overrides: object) -> Path:
    x = np.array([[3, 4, 0], [5, 0, 0], [2, 2, 2]], np.int32)
    y = np.array([[4, 3, 1, 1], [5, 1, 1, 1], [2, 2, 2, 1]], np.int32)
    arrays: dict[str, object] = {"x_train": x, "y_train": y, "x_test": x[:2], "y_test": y[:2]}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_token_data_is_read_and_its_errors_are_one_line(tmp_path: Path) -> None:
    ds = load_seq2seq_dataset(str(_npz(tmp_path / "My-Data.npz")))
    assert ds.lengths_train.tolist() == [2, 1, 3]  # up to the last nonzero id
    assert ds.input_vocab == ["<pad>", "1", "2", "3", "4", "5"]
    assert ds.output_vocab[:2] == ["<start>", "<end>"] and len(ds.output_vocab) == 6
    assert ds.name == "my_data"
    named = load_seq2seq_dataset(
        str(
            _npz(
                tmp_path / "named.npz",
                input_vocab=np.array(["", "a", "b", "c", "d", "e"]),
                lengths_train=np.array([2, 1, 3]),
                x_train=np.array([[3, 4, 9], [5, 0, 0], [2, 2, 2]], np.int32),  # 9: past length
            )
        )
    )
    assert named.x_train[0].tolist() == [3, 4, 0]  # ids past the real length become padding
    assert named.decode_input(named.x_train[0], 2) == "cd"

    cases = [
        ({"y_test": None}, "missing arrays ['y_test']"),
        ({"x_train": np.ones((3, 3, 1), np.int32)}, "expected a non-empty [N, T_in]"),
        ({"x_train": np.ones((3, 3), np.float32)}, "expected integer token ids"),
        ({"x_train": -np.ones((3, 3), np.int32)}, "expected ids from 0"),
        ({"y_train": np.ones((2, 4), np.int32)}, "one target sequence per input"),
        ({"x_train": np.array([[3, 0, 4], [5, 0, 0], [2, 2, 2]])}, "id 0 is padding"),
        ({"x_train": np.array([[3, 4, 0], [0, 0, 0], [2, 2, 2]])}, "row 1 is all padding"),
        ({"y_train": np.array([[4, 0, 1, 1]] * 3)}, "the start token"),
        ({"y_train": np.array([[4, 3, 2, 2]] * 3)}, "no end token"),
        ({"y_train": np.array([[4, 1, 3, 1]] * 3)}, "a character after its end token"),
        ({"lengths_train": np.array([2, 1])}, "one real length per sequence"),
        ({"lengths_train": np.array([2, 1, 4])}, "expected lengths between 1 and"),
        ({"input_vocab": np.array(["", "a"])}, "expected at least 6 names"),
        ({"y_train": np.ones((3, 4), np.int32), "y_test": np.ones((2, 4), np.int32)}, "only end"),
    ]
    for i, (overrides, message) in enumerate(cases):
        with pytest.raises(DatasetError) as err:
            load_seq2seq_dataset(str(_npz(tmp_path / f"bad{i}.npz", **overrides)))
        text = str(err.value)
        assert "\n" not in text and message in text, (message, text)
    for spec, message in [
        ("synthetic:nope", "unknown synthetic dataset 'nope'"),
        ("synthetic:dates:0", "bad sizes"),
        ("synthetic:dates:10,x", "bad sizes"),
        (str(tmp_path / "absent.npz"), "file not found"),
        ("uea:BasicMotions", "--task seq2seq takes synthetic:dates"),
    ]:
        with pytest.raises(DatasetError, match=re.escape(message)):
            load_seq2seq_dataset(spec)


def test_cli_refuses_what_does_not_fit_the_task_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    bad = _npz(tmp_path / "bad.npz", y_train=np.array([[4, 3, 2, 2]] * 3))
    cases = [
        (["--task", "seq2seq", "--cell", "rnn"], "--cell rnn: --task seq2seq takes --cell gru"),
        (["--task", "seq2seq", "--dropout", "0.2"], "--dropout: --task seq2seq has no Dropout"),
        (["--task", "seq2seq", "--window", "10"], "--window does not apply to --task seq2seq"),
        (["--task", "seq2seq", "--layers", "2"], "--layers 2: --task seq2seq has one encoder"),
        (["--task", "seq2seq", "--dataset", str(bad)], "no end token"),
        (["--task", "seq2seq", "--embedding-dim", "0"], "--embedding-dim 0"),
        (["--dataset", str(bad), "--attention", "luong"], "--attention applies to --task seq2seq"),
        (["--task", "classify"], "--dataset is required for --task classify"),
    ]
    for extra, message in cases:
        assert main(["train", "--out", str(out), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (message, err)
        assert not out.exists()


def _np_gru(x: np.ndarray, h: np.ndarray, layer: object) -> np.ndarray:
    w, u, b = (np.asarray(v, np.float64) for v in layer.get_weights())
    n = h.shape[-1]
    gx, gh = x @ w + b[0], h @ u + b[1]  # reset_after=True: two bias rows; gates z, r, h
    z = 1 / (1 + np.exp(-(gx[:n] + gh[:n])))
    r = 1 / (1 + np.exp(-(gx[n : 2 * n] + gh[n : 2 * n])))
    cand = np.tanh(gx[2 * n :] + r * gh[2 * n :])
    return z * h + (1 - z) * cand


def _np_lstm(x: np.ndarray, hc: tuple, layer: object) -> tuple[np.ndarray, np.ndarray]:
    w, u, b = (np.asarray(v, np.float64) for v in layer.get_weights())
    h, c = hc
    n = h.shape[-1]
    g = x @ w + h @ u + b  # gates i, f, c, o

    def sig(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    c = sig(g[n : 2 * n]) * c + sig(g[:n]) * np.tanh(g[2 * n : 3 * n])
    return sig(g[3 * n :]) * np.tanh(c), c


def _np_greedy(model: object, x: np.ndarray, length: int, max_out: int, cell: str) -> tuple:
    """One sequence, step by step as the C runs it: the encoder over its real length once,
    then one decoder step per produced token, attention over the encoder outputs."""
    get = model.get_layer
    enc_table = np.asarray(get("enc_embed").get_weights()[0], np.float64)
    dec_table = np.asarray(get("dec_embed").get_weights()[0], np.float64)
    units = get("encoder").units
    h = np.zeros(units)
    state = (np.zeros(units), np.zeros(units))
    keys = []
    for tok in x[:length]:
        if cell == "gru":
            h = _np_gru(enc_table[tok], h, get("encoder"))
        else:
            state = _np_lstm(enc_table[tok], state, get("encoder"))
            h = state[0]
        keys.append(h)
    keys = np.array(keys)
    att = get("attention")
    wd, bd = (np.asarray(v, np.float64) for v in get("attention_dense").get_weights())
    wo, bo = (np.asarray(v, np.float64) for v in get("output").get_weights())
    tokens, margins, tok = [], [], START
    for _ in range(max_out):
        if cell == "gru":
            h = _np_gru(dec_table[tok], h, get("decoder"))
        else:
            state = _np_lstm(dec_table[tok], state, get("decoder"))
            h = state[0]
        if isinstance(att, keras.layers.AdditiveAttention):
            scale = np.asarray(att.get_weights()[0], np.float64)
            scores = (scale * np.tanh(h[None, :] + keys)).sum(axis=1)
        else:  # Luong: dot products
            scores = keys @ h
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        hid = np.tanh(np.concatenate([h, weights @ keys]) @ wd + bd)
        logits = hid @ wo + bo
        top = np.sort(logits)
        margins.append(top[-1] - top[-2])
        tok = int(np.argmax(logits))
        tokens.append(tok)
        if tok == END:
            break
    return tokens + [END] * (max_out - len(tokens)), min(margins)


@pytest.mark.parametrize(("cell", "attention"), [("gru", "luong"), ("lstm", "bahdanau")])
def test_greedy_decode_matches_a_step_by_step_numpy_decoder(cell: str, attention: str) -> None:
    # a tiny model trained a little on reversing digits: outputs that follow the input
    d = reverse_dataset(1500, 24, seed=5)
    keras.utils.set_random_seed(7)
    model = build_seq2seq(len(d.input_vocab), len(d.output_vocab), cell, 8, 4, attention)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit([d.x_train, decoder_inputs(d.y_train)], d.y_train, batch_size=32, epochs=4, verbose=0)
    n, t_in, max_out = len(d.x_test), d.max_length, 8  # shorter than the longest targets
    lengths = d.lengths_test
    rng = np.random.default_rng(1)
    garbage = rng.integers(1, len(d.input_vocab), size=d.x_test.shape)  # past each length:
    x = np.where(np.arange(t_in)[None, :] < lengths[:, None], d.x_test, garbage)  # never read
    got = greedy_decode(model, x.astype(np.int32), lengths, START, END, max_out, batch_size=3)
    assert got.shape == (n, max_out) and got.dtype == np.int32
    want, margins = zip(
        *(_np_greedy(model, x[i], int(lengths[i]), max_out, cell) for i in range(n)), strict=True
    )
    assert min(margins) > 1e-4  # no near-ties: float32 Keras and float64 NumPy agree on argmax
    assert got.tolist() == [list(w) for w in want]
    ended = (got == END).any(axis=1)
    assert ended.any() and not ended.all()  # some stop early, some run to max_out
    assert len({tuple(r) for r in got.tolist()}) >= n // 2  # the outputs follow the inputs

    # lengths=None reads each row up to its last nonzero id; padding is masked in Keras
    padded = np.where(np.arange(t_in)[None, :] < lengths[:, None], x, 0).astype(np.int32)
    assert np.array_equal(greedy_decode(model, padded, None, max_out=max_out), got)
    dec = decoder_inputs(got)
    assert np.all(dec[:, 0] == START) and np.array_equal(dec[:, 1:], got[:, :-1])
    full = np.asarray(model([padded, dec]))
    i = int(np.argmin(np.where(lengths > 1, lengths, t_in + 1)))  # a padded one
    cut = np.asarray(model([padded[i : i + 1, : lengths[i]], dec[i : i + 1]]))
    assert np.abs(full[i] - cut[0]).max() < 1e-5


def test_seq2seq_model_is_the_exporters_pattern() -> None:
    model = build_seq2seq(10, 7, "lstm", units=4, embedding_dim=3, attention="luong")
    assert [i.name for i in model.inputs] == ["encoder_tokens", "decoder_tokens"]
    kinds = [type(layer).__name__ for layer in model.layers]
    assert sorted(kinds) == sorted(
        ["InputLayer"] * 2
        + ["Embedding"] * 2
        + ["LSTM"] * 2
        + ["Attention", "Concatenate", "Dense", "Dense"]
    )
    assert model.get_layer("enc_embed").mask_zero and not model.get_layer("dec_embed").mask_zero
    assert model.get_layer("encoder").return_state
    assert model.get_layer("output").activation.__name__ == "softmax"
    assert model.get_layer("attention_dense").activation.__name__ == "tanh"


def test_sequence_scores_count_up_to_the_reference_end_token() -> None:
    y = np.array([[5, 6, END, END], [7, END, END, END], [5, 6, END, END], [5, 6, 7, 8]])
    pred = np.array(
        [
            [5, 6, END, 4],  # right; what follows the end is not scored
            [7, 3, END, END],  # 1 of 2
            [5, END, END, END],  # ended early: its padding is not the reference's end, 1 of 3
            [5, 6, 7, 8],  # a reference without an end token: every position
        ]
    )
    s = sequence_scores(pred, y)
    assert s["token_accuracy"] == pytest.approx((3 + 1 + 1 + 4) / 12)
    assert s["exact_sequence_rate"] == pytest.approx(2 / 4)


def test_train_seq2seq_end_to_end_writes_the_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["train", "--task", "seq2seq", "--dataset", "synthetic:dates:256,40"]
    argv += ["--out", str(run), "--steps", "12", "--units", "8", "--embedding-dim", "4"]
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "float test, greedy decoding: exact sequences" in out and "--name dates" in out
    assert {p.name for p in run.iterdir()} == {*run_files("seq2seq"), "rnn2c-run.json"}

    calib, test = np.load(run / "calib.npz"), np.load(run / "test.npz")
    assert set(calib.files) == set(test.files) == {"x", "lengths", "y"}
    t_in = date_max_length()
    assert calib["x"].shape == (256, t_in) and test["x"].shape == (40, t_in)
    assert calib["y"].shape == (256, 11) and test["y"].shape == (40, 11)
    assert calib["x"].dtype == np.int32 and test["y"].dtype == np.int32
    assert np.all(test["y"][:, -1] == END) and np.all(test["x"][:, 0] >= 1)

    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "seq2seq" and m["dataset"] == "dates"
    assert m["dataset_spec"] == "synthetic:dates:256,40"
    assert (m["cell"], m["units"], m["embedding_dim"], m["attention"]) == ("gru", 8, 4, "luong")
    info = m["seq2seq"]
    assert (info["start_token"], info["end_token"]) == (0, 1)
    assert (info["max_output_length"], info["max_length"]) == (11, t_in)
    assert info["output_vocab"] == ["<start>", "<end>", *"0123456789-"]
    assert info["input_vocab"][0] == "<pad>" and "N" in info["input_vocab"]
    assert m["epochs_run"] == 3  # 12 steps of 4 batches
    # the greedy figures are those of the saved model on test.npz
    model = keras.saving.load_model(run / "model.keras")
    assert m["num_params"] == model.count_params()
    pred = greedy_decode(model, test["x"], test["lengths"], 0, 1, 11)
    scores = sequence_scores(pred, test["y"])
    assert m["float_test_token_accuracy"] == pytest.approx(scores["token_accuracy"])
    assert m["float_test_exact_sequence_rate"] == pytest.approx(scores["exact_sequence_rate"])
    # teacher forcing: the start token then y's own previous token, scored up to the first end
    forced_in = np.concatenate([np.zeros((len(test["y"]), 1), np.int32), test["y"][:, :-1]], 1)
    probs = np.asarray(model.predict([test["x"], forced_in], verbose=0))
    ended = np.cumsum(test["y"] == END, axis=1) - (test["y"] == END)  # ends before each position
    right = (probs.argmax(-1) == test["y"])[ended == 0]
    assert m["float_test_teacher_forced_token_accuracy"] == pytest.approx(right.mean())

    lines = [ln for ln in (run / "EXPORT.txt").read_text().splitlines() if ln.startswith("rnn2c")]
    export, verify = (shlex.split(ln) for ln in lines)
    assert export[:3] == ["rnn2c", "export", str(run / "model.keras")]
    for flag, value in [
        ("--calib", str(run / "calib.npz")),
        ("--name", "dates"),
        ("--start-token", "0"),
        ("--end-token", "1"),
        ("--max-output-length", "11"),
        ("--max-length", str(t_in)),
    ]:
        assert export[export.index(flag) + 1] == value
    assert verify == ["rnn2c", "verify", str(run / "model.keras"), str(run / "c"), "--data"] + [
        str(run / "test.npz")
    ]
    # the exporter takes the run folder as it is; its verify decodes the float model greedily
    # by its own code and finds the figures train wrote (a model of 12 steps: no thresholds;
    # where it has not learned, verify says so as its one failure, not a quantization error)
    assert main(export[1:]) == 0
    report = tmp_path / "verify.json"
    rc = main([*verify[1:], "--min-agreement", "0", "--json", str(report)])
    capsys.readouterr()
    r = json.loads(report.read_text())
    assert r["bit_exact"] and r["sequences"] == 40
    chance = ["the float model is at chance level (not a quantization error)"]
    assert (rc, r["failures"]) == ((1, chance) if r["chance"] else (0, []))
    assert r["float_token_accuracy"] == pytest.approx(m["float_test_token_accuracy"])
    assert r["float_exact"] == pytest.approx(m["float_test_exact_sequence_rate"])
    # a second run into the folder needs --force and replaces only the run's files
    (run / "notes.txt").write_text("mine\n")
    assert main([*argv, "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--quiet", "--force", "--attention", "bahdanau"]) == 0
    assert json.loads((run / "metrics.json").read_text())["attention"] == "bahdanau"
    assert (run / "notes.txt").read_text() == "mine\n"
