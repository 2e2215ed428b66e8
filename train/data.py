"""Dataset loading for `rnn2c train`.

Three kinds of dataset spec are understood (for every ``--task``):

* a path to an ``.npz`` archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``
  (``x`` shaped ``[N, T, F]``, or ``[N, T]`` integer token ids with 0 as padding for
  ``classify`` and ``tag``: a token dataset, see :attr:`Dataset.vocab_size`), and optionally
  ``lengths_train`` / ``lengths_test``;
* a UEA/UCR ``.ts`` file (``Foo_TRAIN.ts`` or ``Foo_TEST.ts``; the sibling split is found
  automatically) or a directory holding such a pair;
* ``uea:NAME`` (or ``aeon:NAME``) for the sets that ship inside the aeon wheel (read offline,
  never downloaded).

What ``y`` holds depends on the task: a class per sequence (``classify``), a value or vector per
sequence (``regress``), a class per time step, ``y`` shaped ``[N, T]`` (``tag``). ``forecast``
reads one long series instead (:func:`load_series`): an ``.npz`` with ``series`` ``[S]`` or
``[S, F]`` (and optionally ``series_test``), or a bundled CSV series such as ``aeon:Airline``.

All sequences come back zero-padded at the END to a common length ``T``, with the real
length of each sequence in ``lengths_*``. Every problem with the input raises
:class:`DatasetError` with a single-line message.
"""

from __future__ import annotations

import importlib.util
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TASKS",
    "TOKEN_TASKS",
    "Dataset",
    "DatasetError",
    "Series",
    "available_series",
    "available_uea_datasets",
    "frame_sequences",
    "load_dataset",
    "load_series",
    "pad_sequences",
    "streams_from_classes",
]

TASKS = ("classify", "regress", "tag", "forecast")
#: the tasks that take token inputs (an Embedding in front of the recurrent layers)
TOKEN_TASKS = ("classify", "tag")

_AEON_HINT = "aeon is not installed; install the training extra: pip install 'rnn2c[train]'"


class DatasetError(ValueError):
    """A dataset spec or file is unusable. The message is one line: what is wrong and what
    would be right."""


@dataclass
class Dataset:
    """A train/test split of variable-length multichannel sequences, zero-padded at the end.

    Attributes:
        x_train: float32 ``[N, T, F]``.
        y_train: ``classify``: int64 ``[N]`` class indices into ``class_names``; ``tag``: int64
            ``[N, T]`` (a class per step, 0 past the real length); ``regress``/``forecast``:
            float32 ``[N, D]`` targets.
        x_test: float32 ``[M, T, F]`` (same ``T`` and ``F`` as ``x_train``).
        y_test: int64 ``[M]``.
        lengths_train: int64 ``[N]``, real number of steps of each training sequence.
        lengths_test: int64 ``[M]``.
        class_names: name of each class, index ``i`` is class ``i``.
        name: a short name for the dataset (used in reports).
        task: ``classify``, ``regress``, ``tag`` or ``forecast``.
        target_names: ``regress``/``forecast``: a name per target column.
        vocab_size: a token dataset (an ``.npz`` whose x arrays are ``[N, T]`` integer ids):
            V, the ids are 0..V-1 with 0 the padding, and ``x_*`` are int32 ``[N, T, 1]``
            (one "feature", the id); 0: real-valued features.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lengths_train: np.ndarray
    lengths_test: np.ndarray
    class_names: list[str]
    name: str
    task: str = "classify"
    target_names: list[str] = field(default_factory=list)
    vocab_size: int = 0

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_outputs(self) -> int:
        """Outputs of the model: classes, or target columns for regress/forecast."""
        if self.task in ("regress", "forecast"):
            return int(self.y_train.shape[1])
        return self.num_classes

    @property
    def max_length(self) -> int:
        return int(self.x_train.shape[1])


# --------------------------------------------------------------------------- helpers


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def pad_sequences(seqs: list[np.ndarray], max_length: int | None = None) -> np.ndarray:
    """Stack ``[L_i, F]`` arrays into a float32 ``[N, T, F]`` array, zero-padded at the end."""
    if not seqs:
        raise DatasetError("no sequences to pad; expected at least one sequence")
    n_feat = seqs[0].shape[1]
    t = max_length if max_length is not None else max(s.shape[0] for s in seqs)
    out = np.zeros((len(seqs), t, n_feat), dtype=np.float32)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out


def check_npz_lengths(ln: np.ndarray, key: str, x: np.ndarray, source: str) -> np.ndarray:
    """A dataset file's lengths_<split>: one integer in 1..T per sequence of x [N, T, ...]
    (DatasetError in one line otherwise) -> int64."""
    if ln.shape != (x.shape[0],) or ln.dtype.kind not in "iu":
        raise DatasetError(
            f"{source}: {key} has shape {ln.shape} and dtype {ln.dtype}; expected "
            f"{x.shape[0]} integers, one real length per sequence"
        )
    if np.any(ln < 1) or np.any(ln > x.shape[1]):
        raise DatasetError(
            f"{source}: {key} ranges {int(ln.min())}..{int(ln.max())}; expected "
            f"lengths between 1 and the padded length {x.shape[1]}"
        )
    return ln.astype(np.int64)


def _lengths_from_padding(x: np.ndarray) -> np.ndarray:
    """Real length of each sequence = index of the last step that is not all-zero, plus one."""
    nonzero_step = np.any(x != 0.0, axis=2)  # [N, T]
    t = x.shape[1]
    # position of the last True per row; rows with no True get length 0
    last = t - np.argmax(nonzero_step[:, ::-1], axis=1)
    last[~nonzero_step.any(axis=1)] = 0
    return last.astype(np.int64)


def _check_finite(x: np.ndarray, what: str, source: str) -> None:
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise DatasetError(
            f"{source}: {what} contains {bad} NaN/inf values (missing data?); "
            "expected only finite numbers: impute or drop those sequences first"
        )


def _encode_labels(
    y_train: np.ndarray,
    y_test: np.ndarray,
    source: str,
    preferred_order: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Map labels (ints or strings) to indices 0..K-1. Integer labels keep their numeric order;
    string labels use ``preferred_order`` when it covers them all, else sorted order."""
    for what, y in (("y_train", y_train), ("y_test", y_test)):
        if y.ndim != 1:
            raise DatasetError(
                f"{source}: {what} has shape {y.shape}; expected one label per sequence, shape [N]"
            )
    if y_train.dtype.kind in "iub":
        if y_test.dtype.kind not in "iub":
            raise DatasetError(
                f"{source}: y_train holds integers but y_test holds {y_test.dtype}; "
                "expected the same label type in both"
            )
        keys: list[Any] = sorted({int(v) for v in y_train})
        names = [str(k) for k in keys]
        train_keys = [int(v) for v in y_train]
        test_keys = [int(v) for v in y_test]
    elif y_train.dtype.kind in "fc":
        raise DatasetError(
            f"{source}: labels are floating point ({y_train.dtype}); "
            "expected integer or string class labels (this is a classifier)"
        )
    else:
        train_keys = [_one_line(v) for v in y_train.astype(str)]
        test_keys = [_one_line(v) for v in np.asarray(y_test).astype(str)]
        uniq = set(train_keys)
        if preferred_order and uniq <= set(preferred_order):
            keys = [k for k in preferred_order if k in uniq]
        elif all(k.lstrip("-").isdigit() for k in uniq):
            keys = sorted(uniq, key=int)
        else:
            keys = sorted(uniq)
        names = list(keys)
    index = {k: i for i, k in enumerate(keys)}
    unknown = sorted({str(k) for k in test_keys if k not in index})
    if unknown:
        raise DatasetError(
            f"{source}: test labels {unknown[:5]} never occur in the training labels "
            f"{names[:10]}; expected every test class to be present in training"
        )
    if len(keys) < 2:
        raise DatasetError(
            f"{source}: the training set has only {len(keys)} class ({names}); "
            "expected at least 2 classes"
        )
    ytr = np.array([index[k] for k in train_keys], dtype=np.int64)
    yte = np.array([index[k] for k in test_keys], dtype=np.int64)
    return ytr, yte, names


def _finish(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    lengths_train: np.ndarray,
    lengths_test: np.ndarray,
    class_names: list[str],
    name: str,
    source: str,
    task: str = "classify",
    target_names: list[str] | None = None,
) -> Dataset:
    """Bring both splits to a common length and check the invariants."""
    t = max(x_train.shape[1], x_test.shape[1])

    def widen(x: np.ndarray) -> np.ndarray:
        if x.shape[1] == t:
            return x.astype(x.dtype if x.dtype.kind in "iu" else np.float32, copy=False)
        out = np.zeros((x.shape[0], t, *x.shape[2:]), dtype=x.dtype)
        out[:, : x.shape[1]] = x
        return out.astype(x.dtype if x.dtype.kind in "iu" else np.float32)

    per_step = task == "tag"
    ds = Dataset(
        x_train=widen(x_train),
        y_train=widen(y_train) if per_step else y_train,
        x_test=widen(x_test),
        y_test=widen(y_test) if per_step else y_test,
        lengths_train=lengths_train.astype(np.int64),
        lengths_test=lengths_test.astype(np.int64),
        class_names=class_names,
        name=name,
        task=task,
        target_names=list(target_names or []),
    )
    for split in ("train", "test"):
        lengths = getattr(ds, f"lengths_{split}")
        if np.any(lengths < 1):
            i = int(np.argmin(lengths))
            raise DatasetError(
                f"{source}: {split} sequence {i} is empty or all zeros; "
                "expected every sequence to have at least one non-padding step"
            )
        # Real all-zero steps are fine: the model masks by these lengths, not by value.
    return ds


# --------------------------------------------------------------------------- .npz


def _targets(
    y_train: np.ndarray, y_test: np.ndarray, source: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Regression targets: numbers shaped [N] or [N, D] -> float32 [N, D]."""
    out = []
    for what, y in (("y_train", y_train), ("y_test", y_test)):
        if y.dtype.kind not in "iufb" or y.ndim not in (1, 2):
            raise DatasetError(
                f"{source}: {what} has shape {y.shape} and dtype {y.dtype}; --task regress "
                "expects numeric targets shaped [N] or [N, D]"
            )
        y = y.reshape(len(y), -1).astype(np.float32)
        _check_finite(y, what, source)
        out.append(y)
    if out[0].shape[1] != out[1].shape[1]:
        raise DatasetError(
            f"{source}: y_train has {out[0].shape[1]} target columns but y_test has "
            f"{out[1].shape[1]}; expected the same"
        )
    names = [f"y{i}" for i in range(out[0].shape[1])] if out[0].shape[1] > 1 else ["y"]
    return out[0], out[1], names


def _step_labels(
    y_train: np.ndarray,
    y_test: np.ndarray,
    lengths: dict[str, np.ndarray],
    t: dict[str, int],
    source: str,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-step labels [N, T] (integers) -> indices 0..K-1 over the real steps, 0 past them."""
    ys = {"train": y_train, "test": y_test}
    for split, y in ys.items():
        if y.ndim != 2 or y.shape[1] != t[split]:
            raise DatasetError(
                f"{source}: y_{split} has shape {y.shape}; --task tag expects a label per time "
                f"step, shaped [N, {t[split]}] like x_{split}'s [N, T]"
            )
        if y.dtype.kind not in "iub":
            raise DatasetError(
                f"{source}: y_{split} has dtype {y.dtype}; --task tag expects integer labels"
            )
    real = {s: np.arange(t[s])[None, :] < lengths[s][:, None] for s in ys}
    keys = sorted({int(v) for v in ys["train"][real["train"]]})
    unknown = sorted({int(v) for v in ys["test"][real["test"]]} - set(keys))
    if unknown:
        raise DatasetError(
            f"{source}: test step labels {unknown[:5]} never occur in the training labels "
            f"{keys[:10]}; expected every test class to be present in training"
        )
    if len(keys) < 2:
        raise DatasetError(
            f"{source}: the training steps hold only {len(keys)} label ({keys}); "
            "expected at least 2 classes"
        )
    lut = {k: i for i, k in enumerate(keys)}
    out = []
    for s in ("train", "test"):
        idx = np.zeros(ys[s].shape, dtype=np.int64)
        idx[real[s]] = [lut[int(v)] for v in ys[s][real[s]]]
        out.append(idx)
    return out[0], out[1], [str(k) for k in keys]


def read_split_archive(
    path: Path, hint: str, keep: Callable[[str], bool] = lambda key: True
) -> dict[str, np.ndarray]:
    """The arrays (those `keep` selects) of a dataset .npz that must hold x_train, y_train,
    x_test and y_test; DatasetError in one line, ending with `hint`, otherwise."""
    source = str(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{source}: cannot read as .npz ({_one_line(exc)}); "
            "expected a numpy archive written by numpy.savez"
        ) from None
    with archive:
        required = ["x_train", "y_train", "x_test", "y_test"]
        missing = [k for k in required if k not in archive.files]
        if missing:
            raise DatasetError(
                f"{source}: missing arrays {missing} (has {sorted(archive.files)}); {hint}"
            )
        try:
            return {k: archive[k] for k in archive.files if k in required or keep(k)}
        except ValueError as exc:
            raise DatasetError(
                f"{source}: cannot read arrays ({_one_line(exc)}); "
                "expected plain numeric/string arrays (no pickled objects)"
            ) from None


def _load_npz(path: Path, task: str = "classify") -> Dataset:
    source = str(path)
    arrays = read_split_archive(
        path,
        "expected x_train, y_train, x_test, y_test and optionally lengths_train, lengths_test",
        lambda key: key.startswith("len"),
    )

    xs: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    tokens = _token_kind(arrays, task, source)
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        y = arrays[f"y_{split}"]
        if tokens:
            xs[split], lengths[split] = _token_split(arrays, split, source)
            continue
        if x.ndim != 3:
            raise DatasetError(
                f"{source}: x_{split} has shape {x.shape}; expected [N, T, F] "
                "(sequences, time steps, features)"
            )
        if x.dtype.kind not in "iufb":
            raise DatasetError(
                f"{source}: x_{split} has dtype {x.dtype}; expected numbers (float32)"
            )
        if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
            raise DatasetError(
                f"{source}: x_{split} has shape {x.shape}; expected a non-empty [N, T, F] array"
            )
        if y.shape[:1] != x.shape[:1]:
            raise DatasetError(
                f"{source}: x_{split} has {x.shape[0]} sequences but y_{split} has shape "
                f"{y.shape}; expected one label per sequence"
            )
        x = x.astype(np.float32)
        _check_finite(x, f"x_{split}", source)
        key = f"lengths_{split}"
        if key in arrays:
            ln = check_npz_lengths(arrays[key], key, x, source)
            # Everything past the real length is padding: make it the zeros the mask expects.
            x[np.arange(x.shape[1])[None, :] >= ln[:, None]] = 0.0
        else:
            ln = _lengths_from_padding(x)
        xs[split] = x
        lengths[split] = ln
    if xs["train"].shape[2] != xs["test"].shape[2]:
        raise DatasetError(
            f"{source}: x_train has {xs['train'].shape[2]} features but x_test has "
            f"{xs['test'].shape[2]}; expected the same number of features"
        )
    target_names: list[str] = []
    if task == "regress":
        ytr, yte, target_names = _targets(arrays["y_train"], arrays["y_test"], source)
        names: list[str] = []
    elif task == "tag":
        t = {s: xs[s].shape[1] for s in xs}
        ytr, yte, names = _step_labels(arrays["y_train"], arrays["y_test"], lengths, t, source)
    else:
        if arrays["y_train"].ndim == 2 and arrays["y_train"].shape[1] == xs["train"].shape[1]:
            raise DatasetError(
                f"{source}: y_train is shaped [N, T] like a label per time step; pass --task "
                "tag for per-step labels (the default --task classify takes one label per "
                "sequence)"
            )
        ytr, yte, names = _encode_labels(arrays["y_train"], arrays["y_test"], source)
    ds = _finish(
        xs["train"],
        ytr,
        xs["test"],
        yte,
        lengths["train"],
        lengths["test"],
        names,
        path.stem,
        source,
        task=task,
        target_names=target_names,
    )
    if tokens:
        ds.vocab_size = int(max(ds.x_train.max(), ds.x_test.max())) + 1
    return ds


def _token_kind(arrays: dict[str, np.ndarray], task: str, source: str) -> bool:
    """Whether the archive holds token ids: both x arrays [N, T] integers (DatasetError for a
    2-D array that cannot be ids, or tokens for a task that does not take them)."""
    two_d = [arrays[f"x_{s}"].ndim == 2 for s in ("train", "test")]
    if not any(two_d):
        return False
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.ndim != 2 or x.dtype.kind not in "iu":
            raise DatasetError(
                f"{source}: x_{split} has shape {x.shape} and dtype {x.dtype}; expected [N, T, F] "
                "features, or integer token ids [N, T] (0 = padding) in both x arrays"
            )
    if task not in TOKEN_TASKS:
        raise DatasetError(
            f"{source}: x arrays of token ids [N, T] are taken for --task "
            f"{' or '.join(TOKEN_TASKS)}, not {task}; expected features [N, T, F] for {task}"
        )
    return True


def _token_split(
    arrays: dict[str, np.ndarray], split: str, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """One split's token ids [N, T] -> int32 [N, T, 1] and its real lengths: ids >= 0, id 0
    only as padding after the real length (the Embedding masks it), padding set to 0."""
    x = arrays[f"x_{split}"]
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DatasetError(f"{source}: x_{split} has shape {x.shape}; expected [N, T] token ids")
    if arrays[f"y_{split}"].shape[:1] != x.shape[:1]:
        raise DatasetError(
            f"{source}: x_{split} has {x.shape[0]} sequences but y_{split} has shape "
            f"{arrays[f'y_{split}'].shape}; expected one label per sequence"
        )
    if int(x.min()) < 0 or int(x.max()) >= 2**31 - 1:
        raise DatasetError(
            f"{source}: x_{split} holds token ids {int(x.min())}..{int(x.max())}; expected ids "
            "from 1 up (0 = padding) below 2**31 - 1"
        )
    key = f"lengths_{split}"
    ids = x.astype(np.int32)
    if key in arrays:
        ln = check_npz_lengths(arrays[key], key, x, source)
        ids[np.arange(x.shape[1])[None, :] >= ln[:, None]] = 0
    else:
        ln = _lengths_from_padding(ids[..., None])
    zero = (ids == 0) & (np.arange(x.shape[1])[None, :] < ln[:, None])
    if zero.any():
        row, step = (int(v[0]) for v in np.nonzero(zero))
        raise DatasetError(
            f"{source}: x_{split} sequence {row} holds id 0 at step {step}, within its real "
            "length; id 0 is padding (the Embedding masks it): expected ids 1..V-1 there"
        )
    return ids[..., None], ln


# --------------------------------------------------------------------------- .ts (aeon)


def _aeon_data_dir() -> Path:
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(_AEON_HINT)
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def available_uea_datasets() -> list[str]:
    """Names of the classification sets bundled in the aeon wheel (usable as ``uea:NAME``)."""
    root = _aeon_data_dir()
    if not root.is_dir():
        return []
    names = []
    for d in sorted(root.iterdir()):
        if (d / f"{d.name}_TRAIN.ts").is_file() and (d / f"{d.name}_TEST.ts").is_file():
            names.append(d.name)
    return names


def _read_ts(
    path: Path, task: str = "classify"
) -> tuple[list[np.ndarray], np.ndarray, dict[str, Any]]:
    """Read one .ts file with aeon; return ``[L_i, F]`` float arrays, raw labels, metadata."""
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        raise DatasetError(_AEON_HINT) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, y, meta = load_from_ts_file(str(path), return_meta_data=True)
    except FileNotFoundError:
        raise DatasetError(
            f"{path}: file not found; expected a UEA/UCR .ts file (Foo_TRAIN.ts / Foo_TEST.ts)"
        ) from None
    except Exception as exc:  # aeon raises OSError/ValueError/IndexError on malformed files
        raise DatasetError(
            f"{path}: malformed .ts file ({type(exc).__name__}: {_one_line(exc)[:200]}); "
            "expected the UEA/UCR .ts format: @-header lines, @data, then one "
            "'v,v,...:v,v,...:label' line per series"
        ) from None
    if task == "regress":
        if not meta.get("targetlabel", False):
            raise DatasetError(
                f"{path}: the header has no '@targetLabel true'; --task regress expects a "
                "regression dataset with one numeric target per series"
            )
    elif not meta.get("classlabel", False):
        hint = (
            " (it has '@targetLabel true': a regression set, use --task regress)"
            if meta.get("targetlabel", False)
            else ""
        )
        raise DatasetError(
            f"{path}: the header has no '@classLabel true ...'{hint}; expected a classification "
            "dataset with one class label per series"
        )
    if isinstance(data, np.ndarray):
        if data.ndim != 3:
            raise DatasetError(
                f"{path}: aeon returned an array of shape {data.shape}; expected "
                "[cases, channels, time]"
            )
        seqs = [np.asarray(c, dtype=np.float64).T for c in data]
    else:
        seqs = [np.asarray(c, dtype=np.float64).T for c in data]
    if not seqs:
        raise DatasetError(f"{path}: no series after @data; expected at least one series")
    if len(y) != len(seqs):
        raise DatasetError(
            f"{path}: {len(seqs)} series but {len(y)} labels; expected one label per series"
        )
    return seqs, np.asarray(y), meta


def _ts_pair(path: Path) -> tuple[Path, Path, str]:
    """Resolve a .ts spec (TRAIN file, TEST file or folder) to (train, test, name)."""
    if path.is_dir():
        candidates = sorted(path.glob("*_TRAIN.ts"))
        preferred = path / f"{path.name}_TRAIN.ts"
        if preferred.is_file():
            train = preferred
        elif len(candidates) == 1:
            train = candidates[0]
        elif not candidates:
            raise DatasetError(
                f"{path}: folder holds no *_TRAIN.ts file; expected a Foo_TRAIN.ts / "
                "Foo_TEST.ts pair"
            )
        else:
            raise DatasetError(
                f"{path}: folder holds several training files "
                f"({', '.join(c.name for c in candidates[:6])}); pass one of them directly"
            )
    else:
        if not path.exists():
            raise DatasetError(
                f"{path}: file not found; expected a .npz file, a Foo_TRAIN.ts file, a folder "
                "holding Foo_TRAIN.ts and Foo_TEST.ts, or uea:NAME"
            )
        train = path
    stem = train.name[: -len(".ts")]
    tag = stem.rsplit("_", 1)[-1] if "_" in stem else ""
    base = stem[: -len(tag) - 1] if tag else stem
    swap = {"TRAIN": "TEST", "TEST": "TRAIN", "train": "test", "test": "train"}
    if tag.upper() not in ("TRAIN", "TEST"):
        raise DatasetError(
            f"{path}: cannot tell the split from the name; expected Foo_TRAIN.ts or Foo_TEST.ts "
            "with the other split beside it"
        )
    other = train.with_name(f"{base}_{swap.get(tag, swap[tag.upper()])}.ts")
    if tag.upper() == "TEST":
        train, test = other, train
    else:
        test = other
    for p in (train, test):
        if not p.is_file():
            raise DatasetError(
                f"{p}: file not found; expected the train and test splits side by side as "
                f"{base}_TRAIN.ts and {base}_TEST.ts"
            )
    return train, test, base


def _load_ts_pair(train: Path, test: Path, name: str, task: str = "classify") -> Dataset:
    source = str(train.parent / f"{name}_{{TRAIN,TEST}}.ts")
    seqs_tr, y_tr, meta = _read_ts(train, task)
    seqs_te, y_te, _ = _read_ts(test, task)
    n_feat = {s.shape[1] for s in seqs_tr} | {s.shape[1] for s in seqs_te}
    if len(n_feat) != 1:
        raise DatasetError(
            f"{source}: series have {sorted(n_feat)} channels; expected the same number of "
            "channels in every series of both splits"
        )
    if any(s.shape[0] == 0 for s in seqs_tr + seqs_te):
        raise DatasetError(f"{source}: a series has no time steps; expected non-empty series")
    t = max(s.shape[0] for s in seqs_tr + seqs_te)
    x_tr = pad_sequences(seqs_tr, t)
    x_te = pad_sequences(seqs_te, t)
    _check_finite(x_tr, "the training split", source)
    _check_finite(x_te, "the test split", source)
    ln_tr = np.array([s.shape[0] for s in seqs_tr], dtype=np.int64)
    ln_te = np.array([s.shape[0] for s in seqs_te], dtype=np.int64)
    if task == "regress":
        ytr, yte, target_names = _targets(y_tr.astype(np.float64), y_te.astype(np.float64), source)
        return _finish(
            x_tr, ytr, x_te, yte, ln_tr, ln_te, [], name, source, "regress", target_names
        )
    order = [_one_line(v) for v in meta.get("class_values", [])]
    ytr, yte, names = _encode_labels(y_tr.astype(str), y_te.astype(str), source, order)
    return _finish(x_tr, ytr, x_te, yte, ln_tr, ln_te, names, name, source)


def _bundled(name: str, available: list[str], kind: str) -> str:
    if importlib.util.find_spec("aeon") is None:
        raise DatasetError(_AEON_HINT)
    match = [a for a in available if a.lower() == name.strip().lower()]
    if not match:
        raise DatasetError(
            f"uea:{name}: not a {kind} bundled with aeon (nothing is downloaded); "
            f"available: {', '.join(available)}"
        )
    return match[0]


def _load_uea(name: str, task: str = "classify") -> Dataset:
    found = _bundled(name, available_uea_datasets(), "dataset")
    folder = _aeon_data_dir() / found
    return _load_ts_pair(folder / f"{found}_TRAIN.ts", folder / f"{found}_TEST.ts", found, task)


def frame_sequences(x: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``k`` consecutive samples into one step: ``[N, T, F] -> [N, ceil(T/k), k*F]``.

    Step ``j`` holds samples ``j*k .. j*k+k-1``, sample-major (``[s0 f0, s0 f1, ..., s1 f0,
    ...]``); a sequence's last step is zero-filled past its real end. Lengths become
    ``ceil(L/k)``. Long univariate recordings become short sequences of k-sample frames, which a
    recurrent cell learns far more easily (and the C steps k times less often).
    """
    if k <= 1:
        return x, lengths
    n, t, f = x.shape
    tk = -(-t // k)
    xp = np.zeros((n, tk * k, f), dtype=x.dtype)
    xp[:, :t] = x
    keep = np.arange(tk * k)[None, :] < np.asarray(lengths)[:, None]
    xp[~keep] = 0.0
    return xp.reshape(n, tk, k * f), -(-np.asarray(lengths) // k)


def frame_labels(y: np.ndarray, k: int) -> np.ndarray:
    """Per-step labels [N, T] -> one per frame of k samples (the label of its last sample)."""
    if k <= 1:
        return y
    n, t = y.shape[:2]
    tk = -(-t // k)
    yp = np.concatenate([y, np.repeat(y[:, -1:], tk * k - t, axis=1)], axis=1)
    return yp.reshape(n, tk, k, *y.shape[2:])[:, :, -1]


def streams_from_classes(ds: Dataset, per_stream: int = 4, seed: int = 0) -> Dataset:
    """A per-step-labelled set from a classification set: each sequence of the new set is
    ``per_stream`` recordings back to back (random order), labelled at every step with the
    class of the recording the step comes from. The training streams use every training
    recording twice (two shuffles), the test streams every test recording once.
    """
    rng = np.random.default_rng(seed)

    def build(x: np.ndarray, y: np.ndarray, lengths: np.ndarray, rounds: int):
        groups: list[np.ndarray] = []
        for _ in range(rounds):
            order = rng.permutation(len(y))
            groups += [order[i : i + per_stream] for i in range(0, len(order), per_stream)]
        seqs, labels = [], []
        for g in groups:
            seqs.append(np.concatenate([x[i, : lengths[i]] for i in g]))
            labels.append(np.concatenate([np.full(lengths[i], y[i]) for i in g]))
        t = max(len(a) for a in seqs)
        xs = pad_sequences(seqs, t)
        ys = np.zeros((len(seqs), t), dtype=np.int64)
        for i, lab in enumerate(labels):
            ys[i, : len(lab)] = lab
        return xs, ys, np.array([len(a) for a in seqs], dtype=np.int64)

    xtr, ytr, ltr = build(ds.x_train, ds.y_train, ds.lengths_train, 2)
    xte, yte, lte = build(ds.x_test, ds.y_test, ds.lengths_test, 1)
    return _finish(
        xtr, ytr, xte, yte, ltr, lte, list(ds.class_names), f"{ds.name}-streams", ds.name, "tag"
    )


# --------------------------------------------------------------------------- series (forecast)


@dataclass
class Series:
    """One long (multivariate) series, split in time: ``values[:test_start]`` trains."""

    values: np.ndarray  # float32 [S, F]
    names: list[str]  # a name per column
    name: str
    test_start: int
    split_given: bool = False  # the test part came as series_test (else the last fraction)


def available_series() -> list[str]:
    """Names of the single-CSV series bundled in the aeon wheel (``aeon:NAME``, forecast)."""
    root = _aeon_data_dir()
    if not root.is_dir():
        return []
    return [d.name for d in sorted(root.iterdir()) if len(list(d.glob("*.csv"))) == 1]


_LABEL_COLUMNS = {"is_anomaly", "label", "labels", "class", "target"}


def _read_csv_series(path: Path, name: str) -> tuple[np.ndarray, list[str]]:
    try:
        import pandas as pd
    except ImportError:
        raise DatasetError(_AEON_HINT) from None
    frame = pd.read_csv(path)
    cols = [
        c
        for c in frame.columns
        if str(c).lower() not in _LABEL_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])
    ]
    # a first column that counts 0, 1, 2, ... (or 1, 2, ...) is an index, not a value
    if len(cols) > 1 and np.all(np.diff(frame[cols[0]].to_numpy()) == 1):
        cols = cols[1:]
    if not cols:
        raise DatasetError(f"{path}: no numeric value column; expected a series of numbers")
    values = frame[cols].to_numpy(dtype=np.float64)
    _check_finite(values, "the series", str(path))
    return values.astype(np.float32), [str(c) for c in cols]


def load_series(spec: str, test_fraction: float = 0.2) -> Series:
    """One long series for ``--task forecast``: ``PATH.npz`` with ``series`` ``[S]`` or
    ``[S, F]`` (and optionally ``series_test``: the test part follows it in time), or
    ``aeon:NAME`` / ``uea:NAME`` for a CSV series bundled with aeon (e.g. ``aeon:Airline``).
    Without ``series_test`` the last ``test_fraction`` of the series is the test part.
    """
    spec = str(spec).strip()
    low = spec.lower()
    if low.startswith(("uea:", "aeon:")):
        found = _bundled(spec.split(":", 1)[1], available_series(), "series")
        path = next((_aeon_data_dir() / found).glob("*.csv"))
        values, names = _read_csv_series(path, found)
        name, test_values = found, None
    else:
        path = Path(spec).expanduser()
        if path.suffix.lower() != ".npz" or not path.is_file():
            raise DatasetError(
                f"{spec}: not an .npz file; --task forecast expects PATH.npz with `series` [S] or "
                "[S, F] (optionally `series_test`), or aeon:NAME (e.g. aeon:Airline)"
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                if "series" not in z.files:
                    raise DatasetError(
                        f"{spec}: has arrays {sorted(z.files)} but no `series`; --task forecast "
                        "expects `series` [S] or [S, F] and optionally `series_test`"
                    )
                values = np.asarray(z["series"])
                test_values = np.asarray(z["series_test"]) if "series_test" in z.files else None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{spec}: cannot read as .npz ({_one_line(exc)})") from None
        name = path.stem
        values = _series_array(values, spec, "series")
        names = [f"x{i}" for i in range(values.shape[1])] if values.shape[1] > 1 else ["x"]
        if test_values is not None:
            test_values = _series_array(test_values, spec, "series_test")
            if test_values.shape[1] != values.shape[1]:
                raise DatasetError(
                    f"{spec}: series has {values.shape[1]} columns but series_test has "
                    f"{test_values.shape[1]}; expected the same"
                )
    if test_values is not None:
        start = len(values)
        values = np.concatenate([values, test_values])
    else:
        start = int(round(len(values) * (1.0 - test_fraction)))
    if start < 8 or len(values) - start < 2:
        raise DatasetError(
            f"{spec}: a series of {len(values)} values is too short to split into training "
            "and test parts; expected at least 10 values"
        )
    return Series(values.astype(np.float32), names, name, start, test_values is not None)


def _series_array(a: np.ndarray, spec: str, what: str) -> np.ndarray:
    if a.dtype.kind not in "iuf" or a.ndim not in (1, 2) or a.shape[0] == 0:
        raise DatasetError(
            f"{spec}: {what} has shape {a.shape} and dtype {a.dtype}; expected numbers shaped "
            "[S] or [S, F]"
        )
    a = a.reshape(len(a), -1).astype(np.float32)
    _check_finite(a, what, spec)
    return a


def seasonal_period(values: np.ndarray, max_lag: int | None = None) -> int:
    """The seasonal period seasonal-naive forecasts use: the lag of the highest autocorrelation
    peak of the (linearly detrended) series after the autocorrelation first turns negative;
    1 when there is none."""
    v = values.astype(np.float64).reshape(len(values), -1)
    s = len(v)
    t = np.arange(s, dtype=np.float64)
    coef = np.polyfit(t, v, 1)
    d = v - (np.outer(t, coef[0]) + coef[1])
    denom = float((d * d).sum()) or 1.0
    max_lag = min(max_lag or s // 2, s - 2)
    acf = np.array([1.0] + [float((d[k:] * d[:-k]).sum()) / denom for k in range(1, max_lag + 1)])
    negative = np.flatnonzero(acf < 0)
    if negative.size == 0:
        return 1
    best, best_r = 1, 0.0
    for k in range(int(negative[0]) + 1, max_lag):
        if acf[k] >= acf[k - 1] and acf[k] >= acf[k + 1] and acf[k] > best_r:
            best, best_r = k, float(acf[k])
    return best


# --------------------------------------------------------------------------- entry point


def load_dataset(spec: str, seed: int = 0, task: str = "classify") -> Dataset:
    """Load a dataset from a spec: ``path.npz``, ``Foo_TRAIN.ts`` / ``Foo_TEST.ts`` / a folder
    holding them, or ``uea:NAME`` (aeon's bundled sets, offline).

    ``task``: ``classify`` (a label per sequence), ``regress`` (numeric targets), ``tag`` (a
    label per step: ``y`` ``[N, T]`` in an ``.npz``; a classification set given as ``uea:NAME``
    or ``.ts`` becomes streams of recordings back to back, see :func:`streams_from_classes`).
    ``forecast`` data is a series: see :func:`load_series`.

    ``seed`` picks the order of the recordings in tag streams; the specs all carry their own
    train/test split.

    Raises:
        DatasetError: with a one-line message when the spec or the data is unusable.
    """
    spec = str(spec).strip()
    if task not in TASKS or task == "forecast":
        raise DatasetError(f"task {task!r}: load_dataset takes classify, regress or tag")
    if not spec:
        raise DatasetError(
            "empty dataset spec; expected a .npz file, a .ts file or folder, or uea:NAME"
        )
    if spec.lower().startswith(("uea:", "aeon:")):
        ds = _load_uea(spec.split(":", 1)[1], "classify" if task == "tag" else task)
        return streams_from_classes(ds, seed=seed) if task == "tag" else ds
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DatasetError(
                f"{path}: file not found; expected an .npz with x_train, y_train, x_test, y_test"
            )
        return _load_npz(path, task)
    if path.is_dir() or path.suffix.lower() == ".ts":
        train, test, name = _ts_pair(path)
        ds = _load_ts_pair(train, test, name, "classify" if task == "tag" else task)
        return streams_from_classes(ds, seed=seed) if task == "tag" else ds
    if not path.exists():
        raise DatasetError(
            f"{spec}: no such file; expected a .npz file, a Foo_TRAIN.ts file, a folder holding "
            "Foo_TRAIN.ts and Foo_TEST.ts, or uea:NAME (e.g. uea:BasicMotions)"
        )
    raise DatasetError(
        f"{spec}: unsupported file type {path.suffix!r}; expected .npz or .ts (or uea:NAME)"
    )
