"""Dataset loading for `rnn2c train`.

Three kinds of dataset spec are understood:

* a path to an ``.npz`` archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``
  (``x`` shaped ``[N, T, F]``), and optionally ``lengths_train`` / ``lengths_test``;
* a UEA/UCR ``.ts`` file (``Foo_TRAIN.ts`` or ``Foo_TEST.ts``; the sibling split is found
  automatically) or a directory holding such a pair;
* ``uea:NAME`` for the sets that ship inside the aeon wheel (read offline, never downloaded).

All sequences come back zero-padded at the END to a common length ``T``, with the real
length of each sequence in ``lengths_*``. Every problem with the input raises
:class:`DatasetError` with a single-line message.
"""

from __future__ import annotations

import importlib.util
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Dataset",
    "DatasetError",
    "available_uea_datasets",
    "load_dataset",
    "pad_sequences",
]

_AEON_HINT = "aeon is not installed; install the training extra: pip install 'rnn2c[train]'"


class DatasetError(ValueError):
    """A dataset spec or file is unusable. The message is one line: what is wrong and what
    would be right."""


@dataclass
class Dataset:
    """A train/test split of variable-length multichannel sequences, zero-padded at the end.

    Attributes:
        x_train: float32 ``[N, T, F]``.
        y_train: int64 ``[N]`` class indices into ``class_names``.
        x_test: float32 ``[M, T, F]`` (same ``T`` and ``F`` as ``x_train``).
        y_test: int64 ``[M]``.
        lengths_train: int64 ``[N]``, real number of steps of each training sequence.
        lengths_test: int64 ``[M]``.
        class_names: name of each class, index ``i`` is class ``i``.
        name: a short name for the dataset (used in reports).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lengths_train: np.ndarray
    lengths_test: np.ndarray
    class_names: list[str]
    name: str

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

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
) -> Dataset:
    """Bring both splits to a common length and check the invariants."""
    t = max(x_train.shape[1], x_test.shape[1])

    def widen(x: np.ndarray) -> np.ndarray:
        if x.shape[1] == t:
            return x.astype(np.float32, copy=False)
        out = np.zeros((x.shape[0], t, x.shape[2]), dtype=np.float32)
        out[:, : x.shape[1]] = x
        return out

    ds = Dataset(
        x_train=widen(x_train),
        y_train=y_train,
        x_test=widen(x_test),
        y_test=y_test,
        lengths_train=lengths_train.astype(np.int64),
        lengths_test=lengths_test.astype(np.int64),
        class_names=class_names,
        name=name,
    )
    for split in ("train", "test"):
        x = getattr(ds, f"x_{split}")
        lengths = getattr(ds, f"lengths_{split}")
        if np.any(lengths < 1):
            i = int(np.argmin(lengths))
            raise DatasetError(
                f"{source}: {split} sequence {i} is empty or all zeros; "
                "expected every sequence to have at least one non-padding step"
            )
        # A real step that is all zeros looks like padding to the Masking layer.
        steps = np.arange(x.shape[1])[None, :] < lengths[:, None]
        zero_steps = int(np.count_nonzero(steps & ~np.any(x != 0.0, axis=2)))
        if zero_steps:
            warnings.warn(
                f"{source}: {zero_steps} real {split} steps are all-zero in every feature; "
                "the model's Masking layer will skip them as if they were padding",
                stacklevel=3,
            )
    return ds


# --------------------------------------------------------------------------- .npz


def _load_npz(path: Path) -> Dataset:
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
                f"{source}: missing arrays {missing} (has {sorted(archive.files)}); expected "
                "x_train, y_train, x_test, y_test and optionally lengths_train, lengths_test"
            )
        try:
            arrays = {k: archive[k] for k in archive.files if k in required or k.startswith("len")}
        except ValueError as exc:
            raise DatasetError(
                f"{source}: cannot read arrays ({_one_line(exc)}); "
                "expected plain numeric/string arrays (no pickled objects)"
            ) from None

    xs: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        y = arrays[f"y_{split}"]
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
            ln = arrays[key]
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
            ln = ln.astype(np.int64)
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
    ytr, yte, names = _encode_labels(arrays["y_train"], arrays["y_test"], source)
    return _finish(
        xs["train"],
        ytr,
        xs["test"],
        yte,
        lengths["train"],
        lengths["test"],
        names,
        path.stem,
        source,
    )


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


def _read_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray, dict[str, Any]]:
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
    if not meta.get("classlabel", False):
        raise DatasetError(
            f"{path}: the header has no '@classLabel true ...'; expected a classification "
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


def _load_ts_pair(train: Path, test: Path, name: str) -> Dataset:
    source = str(train.parent / f"{name}_{{TRAIN,TEST}}.ts")
    seqs_tr, y_tr, meta = _read_ts(train)
    seqs_te, y_te, _ = _read_ts(test)
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
    order = [_one_line(v) for v in meta.get("class_values", [])]
    ytr, yte, names = _encode_labels(y_tr.astype(str), y_te.astype(str), source, order)
    return _finish(x_tr, ytr, x_te, yte, ln_tr, ln_te, names, name, source)


def _load_uea(name: str) -> Dataset:
    if importlib.util.find_spec("aeon") is None:
        raise DatasetError(_AEON_HINT)
    available = available_uea_datasets()
    match = [a for a in available if a.lower() == name.strip().lower()]
    if not match:
        raise DatasetError(
            f"uea:{name}: not a dataset bundled with aeon (nothing is downloaded); "
            f"available: {', '.join(available)}"
        )
    folder = _aeon_data_dir() / match[0]
    return _load_ts_pair(folder / f"{match[0]}_TRAIN.ts", folder / f"{match[0]}_TEST.ts", match[0])


# --------------------------------------------------------------------------- entry point


def load_dataset(spec: str, seed: int = 0) -> Dataset:
    """Load a dataset from a spec: ``path.npz``, ``Foo_TRAIN.ts`` / ``Foo_TEST.ts`` / a folder
    holding them, or ``uea:NAME`` (aeon's bundled sets, offline).

    ``seed`` is accepted for specs that need a random split; the current specs all carry
    their own train/test split, so it does not change the result.

    Raises:
        DatasetError: with a one-line message when the spec or the data is unusable.
    """
    del seed  # every supported spec has a fixed train/test split
    spec = str(spec).strip()
    if not spec:
        raise DatasetError(
            "empty dataset spec; expected a .npz file, a .ts file or folder, or uea:NAME"
        )
    if spec.lower().startswith("uea:"):
        return _load_uea(spec[4:])
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DatasetError(
                f"{path}: file not found; expected an .npz with x_train, y_train, x_test, y_test"
            )
        return _load_npz(path)
    if path.is_dir() or path.suffix.lower() == ".ts":
        train, test, name = _ts_pair(path)
        return _load_ts_pair(train, test, name)
    if not path.exists():
        raise DatasetError(
            f"{spec}: no such file; expected a .npz file, a Foo_TRAIN.ts file, a folder holding "
            "Foo_TRAIN.ts and Foo_TEST.ts, or uea:NAME (e.g. uea:BasicMotions)"
        )
    raise DatasetError(
        f"{spec}: unsupported file type {path.suffix!r}; expected .npz or .ts (or uea:NAME)"
    )
