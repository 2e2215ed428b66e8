"""Dataset loading for `rnn2c train`: .npz, .ts (via aeon) and the bundled uea: sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnn2c.train.data import DatasetError, load_dataset
from tools import require_aeon


@pytest.fixture
def aeon() -> None:
    """The .ts reader and the bundled sets need aeon (the extra 'train'): tools.require."""
    require_aeon()


needs_aeon = pytest.mark.usefixtures("aeon")


def _save_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _toy_arrays(n: int = 6, t: int = 5, f: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.normal(size=(n, t, f)).astype(np.float32) + 3.0,
        "y_train": np.array(["b", "a"] * (n // 2)),
        "x_test": rng.normal(size=(n, t, f)).astype(np.float32) + 3.0,
        "y_test": np.array(["a", "b"] * (n // 2)),
    }


def _assert_one_line_error(excinfo: pytest.ExceptionInfo[DatasetError]) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


def test_npz_string_labels_sorted_and_lengths_inferred(tmp_path: Path) -> None:
    arrays = _toy_arrays()
    arrays["x_train"][0, 3:] = 0.0  # sequence 0 is 3 steps long, zero-padded
    ds = load_dataset(str(_save_npz(tmp_path / "toy.npz", **arrays)))
    assert ds.class_names == ["a", "b"]
    assert ds.y_train.dtype == np.int64 and list(ds.y_train[:2]) == [1, 0]
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape == (6, 5, 2)
    assert ds.lengths_train.dtype == np.int64
    assert list(ds.lengths_train) == [3, 5, 5, 5, 5, 5]
    assert ds.name == "toy" and ds.num_features == 2 and ds.num_classes == 2


def test_npz_explicit_lengths_zero_the_padding(tmp_path: Path) -> None:
    arrays = _toy_arrays()
    arrays["y_train"] = np.array([0, 1] * 3)
    arrays["y_test"] = np.array([1, 0] * 3)
    arrays["lengths_train"] = np.array([2, 5, 5, 4, 5, 1])
    arrays["lengths_test"] = np.full(6, 5)
    ds = load_dataset(str(_save_npz(tmp_path / "ints.npz", **arrays)))
    assert ds.class_names == ["0", "1"]
    assert list(ds.lengths_train) == [2, 5, 5, 4, 5, 1]
    assert np.all(ds.x_train[0, 2:] == 0.0) and np.all(ds.x_train[5, 1:] == 0.0)


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"x_train": None}, "missing arrays"),
        ({"x_train": np.ones((6, 5), np.float32)}, "expected [N, T, F]"),
        ({"y_train": np.zeros(4, np.int64)}, "one label per sequence"),
        ({"x_test": np.full((6, 5, 2), np.nan, np.float32)}, "NaN"),
        ({"x_train": np.zeros((0, 5, 2), np.float32), "y_train": np.zeros(0)}, "non-empty"),
        ({"y_train": np.zeros(6, np.int64), "y_test": np.zeros(6, np.int64)}, "at least 2"),
    ],
)
def test_npz_bad_input_raises_one_line(
    tmp_path: Path, change: dict[str, np.ndarray | None], expect: str
) -> None:
    arrays = _toy_arrays()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    path = _save_npz(tmp_path / "bad.npz", **arrays)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(DatasetError) as excinfo:
        load_dataset(str(path))
    assert expect in _assert_one_line_error(excinfo)
    assert sorted(tmp_path.iterdir()) == before


def test_not_an_npz_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_text("this is not a zip archive\n")
    with pytest.raises(DatasetError) as excinfo:
        load_dataset(str(junk))
    _assert_one_line_error(excinfo)
    with pytest.raises(DatasetError) as excinfo:
        load_dataset(str(tmp_path / "nope.npz"))
    assert "not found" in _assert_one_line_error(excinfo)
    with pytest.raises(DatasetError):
        load_dataset(str(tmp_path / "nope.csv"))


@needs_aeon
def test_uea_basicmotions_fixed_length() -> None:
    ds = load_dataset("uea:BasicMotions")
    assert ds.x_train.shape == (40, 100, 6) and ds.x_test.shape == (40, 100, 6)
    assert ds.num_classes == 4 and set(ds.class_names) == {
        "standing",
        "running",
        "walking",
        "badminton",
    }
    assert np.all(ds.lengths_train == 100) and np.all(ds.lengths_test == 100)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64


@needs_aeon
def test_uea_japanese_vowels_variable_length() -> None:
    ds = load_dataset("uea:japanesevowels")  # the name is matched case-insensitively
    assert ds.name == "JapaneseVowels"
    assert ds.x_train.shape[0] == 270 and ds.x_test.shape[0] == 370
    assert ds.num_features == 12 and ds.num_classes == 9
    assert ds.class_names == [str(i) for i in range(1, 10)]
    assert ds.x_train.shape[1] == ds.x_test.shape[1] == int(ds.lengths_test.max())
    assert ds.lengths_train.min() >= 7 and ds.lengths_train.max() <= 29
    assert len(set(ds.lengths_train.tolist())) > 5
    # padding at the end is exactly zero, real steps are not all-zero
    for x, n in zip(ds.x_train, ds.lengths_train, strict=True):
        assert np.all(x[n:] == 0.0) and np.any(x[n - 1] != 0.0)


@needs_aeon
def test_uea_unknown_name_lists_available() -> None:
    with pytest.raises(DatasetError) as excinfo:
        load_dataset("uea:NoSuchSet")
    msg = _assert_one_line_error(excinfo)
    assert "BasicMotions" in msg and "JapaneseVowels" in msg


_TS_HEADER = """# a tiny hand-written set
@problemName Tiny
@timeStamps false
@missing false
@univariate false
@equalLength false
@classLabel true up down
@data
"""


def _write_tiny_ts(folder: Path, test_body: str | None = None) -> Path:
    train = folder / "Tiny_TRAIN.ts"
    train.write_text(
        _TS_HEADER
        + "1.0,2.0,3.0:0.5,0.5,0.5:up\n3.0,2.0:1.0,1.0:down\n1.5,2.5,3.5,4.5:0,1,0,1:up\n"
    )
    (folder / "Tiny_TEST.ts").write_text(
        _TS_HEADER + (test_body if test_body is not None else "4.0,3.0,2.0:1,1,1:down\n")
    )
    return train


@needs_aeon
def test_ts_file_pair_found_from_train_test_or_folder(tmp_path: Path) -> None:
    train = _write_tiny_ts(tmp_path)
    for spec in (train, tmp_path / "Tiny_TEST.ts", tmp_path):
        ds = load_dataset(str(spec))
        assert ds.name == "Tiny"
        assert ds.class_names == ["up", "down"]  # the header's order
        assert list(ds.y_train) == [0, 1, 0] and list(ds.y_test) == [1]
        assert ds.x_train.shape == (3, 4, 2) and ds.x_test.shape == (1, 4, 2)
        assert list(ds.lengths_train) == [3, 2, 4] and list(ds.lengths_test) == [3]
        np.testing.assert_array_equal(ds.x_train[1], [[3, 1], [2, 1], [0, 0], [0, 0]])


@needs_aeon
@pytest.mark.parametrize(
    "test_body",
    [
        "4.0,3.0,abc:1,1,1:down\n",  # not a number
        "4.0,3.0,2.0:1,1,1:1,1,1:down\n",  # 3 channels instead of 2
        "4.0,3.0,2.0:1,1:down\n",  # channels of one case differ in length
        "4.0,3.0,2.0:1,1,1:sideways\n",  # a class never seen in training
        "",  # no series at all
    ],
)
def test_malformed_ts_raises_one_line(tmp_path: Path, test_body: str) -> None:
    _write_tiny_ts(tmp_path, test_body)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(DatasetError) as excinfo:
        load_dataset(str(tmp_path / "Tiny_TRAIN.ts"))
    _assert_one_line_error(excinfo)
    assert sorted(tmp_path.iterdir()) == before


@needs_aeon
def test_ts_missing_sibling(tmp_path: Path) -> None:
    train = _write_tiny_ts(tmp_path)
    (tmp_path / "Tiny_TEST.ts").unlink()
    with pytest.raises(DatasetError) as excinfo:
        load_dataset(str(train))
    assert "Tiny_TEST.ts" in _assert_one_line_error(excinfo)
