"""`rnn2c train` on token datasets (issue 26): an .npz whose x arrays are [N, T] integer ids
(0 = padding) trains Embedding(V, E, mask_zero=True) -> the recurrent stack for classify and tag;
the run exports with EXPORT.txt's own lines and verifies bit-exact in C; what cannot work with
ids is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.train.data import DatasetError, load_dataset
from tools import run_printed_lines


def _token_npz(path: Path, task: str, seed: int = 0, vocab: int = 9, t: int = 12) -> Path:
    """classify: is id 1 or id 2 the more frequent; tag: the class of each step is whether the
    id is above vocab/2. Ids 1..vocab-1, real lengths 4..t, 0 after them."""
    rng = np.random.default_rng(seed)

    def split(m: int) -> tuple[np.ndarray, np.ndarray]:
        lengths = rng.integers(4, t + 1, size=m)
        x = np.zeros((m, t), dtype=np.int64)
        y = np.arange(m) % 2
        for i in range(m):
            x[i, : lengths[i]] = rng.integers(1, vocab, size=lengths[i])
            if task == "classify":
                x[i, : lengths[i] : 2] = 1 + y[i]
        if task == "tag":
            return x, np.where(x > vocab // 2, 1, 0)
        return x, y

    xtr, ytr = split(40)
    xte, yte = split(16)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


@pytest.mark.parametrize(("task", "extra"), [("classify", []), ("tag", ["--qat"])])
def test_token_run_exports_and_verifies_bit_exact(
    tmp_path: Path, task: str, extra: list[str]
) -> None:
    """The model starts at its Embedding over int ids; EXPORT.txt's export and verify lines, run
    as typed, pass bit-exact (verify streams the ids through the C's token entry point). The
    tagger is fine-tuned on its export's grid too (--qat: ids, no input scale)."""
    data = _token_npz(tmp_path / "tok.npz", task)
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--task", task, "--out", str(run), "--quiet"]
    assert main([*argv, "--units", "6", "--embedding-dim", "5", "--steps", "40", *extra]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["tokens"] == {"vocab_size": 9, "embedding_dim": 5}
    assert metrics["frame"] == 1 and metrics["input_transform"] is None
    assert metrics["augment"] is None
    assert "--embedding-dim 5" in metrics["command"]
    if "--qat" in extra:
        assert metrics["qat"]["input_quant"] == "per-tensor"
        assert 0.0 <= metrics["qat"]["test"]["int_accuracy_after"] <= 1.0
    import keras

    model = keras.models.load_model(run / "model.keras")
    first = model.layers[1]
    assert type(first).__name__ == "Embedding" and first.mask_zero
    assert (first.input_dim, first.output_dim) == (9, 5)
    with np.load(run / "test.npz") as test:
        assert test["x"].ndim == 2 and test["x"].dtype.kind == "i"
    lines = (run / "EXPORT.txt").read_text().splitlines()
    assert any("token model" in ln for ln in lines)
    export_line = next(ln for ln in lines if ln.startswith("rnn2c export"))
    verify_line = next(ln for ln in lines if ln.startswith("rnn2c verify"))
    assert "--input-quant" not in export_line
    run_printed_lines(export_line, verify_line)  # verify: PASS (bit-exact, thresholds met)


def test_token_inputs_refuse_what_cannot_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Negative ids, a 0 inside a real length, float [N, T] arrays, tokens for regress, and the
    flags that do not apply to ids (or --embedding-dim without them): one line, exit 2,
    nothing written."""
    good = _token_npz(tmp_path / "tok.npz", "classify")
    with np.load(good) as z:
        arrays = dict(z)
    bad_sets = {
        "negative": ({"x_train": arrays["x_train"] - 3}, "expected ids from 1 up"),
        "inner-zero": (
            {"x_train": np.where(np.arange(12) == 1, 0, arrays["x_train"] + 1)},
            "holds id 0 at step 1",
        ),
        "float": (
            {"x_train": arrays["x_train"].astype(np.float32)},
            "or integer token ids",
        ),
    }
    for name, (change, words) in bad_sets.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{**arrays, **change})
        with pytest.raises(DatasetError, match=words):
            load_dataset(str(path))
    with pytest.raises(DatasetError, match="taken for --task classify or tag"):
        load_dataset(str(good), task="regress")
    features = tmp_path / "features.npz"
    np.savez(features, **{k: (v[..., None] if k[0] == "x" else v) for k, v in arrays.items()})
    base = ["train", "--units", "4", "--epochs", "1", "--quiet"]
    for dataset, extra, words in (
        (good, ["--frontend", "conv"], "--frontend conv does not apply to token ids"),
        (good, ["--frame", "2"], "--frame 2 does not apply to token ids"),
        (good, ["--augment", "on"], "--augment on does not apply to token ids"),
        (good, ["--embedding-dim", "0"], "--embedding-dim 0; expected"),
        (features, ["--embedding-dim", "4"], "applies to token ids"),
    ):
        out = tmp_path / "never"
        assert main([*base, "--dataset", str(dataset), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err
        assert not out.exists() or not any(out.iterdir())
