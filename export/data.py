"""Loading sequence arrays for --calib and --data: .npy, or .npz with `x` (and `y`, `lengths`).

A model with several inputs (graph.read_inputs) also takes an .npz with one array per input,
named after its Keras Input ([N, T, F_k] each); `x` is then the inputs side by side in the
model's input order, [N, T, sum F_k].
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError
from rnn2c.export.layers.embedding import check_ids


@dataclass
class Sequences:
    x: np.ndarray  # float32 [N, T, F]
    y: np.ndarray | None  # labels [N] (class indices) or targets, if given
    lengths: np.ndarray | None  # real lengths [N] of end-padded sequences, if given


def check_inputs(x: np.ndarray, what: str, features: int | None = None) -> np.ndarray:
    """Validate sequences [N, T, F] (shape, dtype, feature count, finiteness) -> float32."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise ExportError(f"{what}: x has dtype {x.dtype}; expected float32 [N, T, F]")
    if x.ndim != 3:
        raise ExportError(f"{what}: x has shape {x.shape}; expected [N, T, F] (3-D)")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ExportError(f"{what}: x has shape {x.shape}; it holds no sequences")
    if features is not None and x.shape[2] != features:
        raise ExportError(
            f"{what}: x has {x.shape[2]} features per step but the model takes {features}"
        )
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ExportError(f"{what}: x contains NaN or inf values; give finite inputs")
    return x


def data_inputs(model: Any) -> tuple[list[str], list[int]] | None:
    """A multi-input model's (input names, feature counts), what load_sequences and join_inputs
    take; None for a model with one input. model: a ModelIR or QuantModel."""
    sizes = list(getattr(model, "input_sizes", None) or [])
    return (list(model.input_names), sizes) if sizes else None


def input_spec(names: list[str], sizes: list[int]) -> str:
    """What a model with several inputs takes, for messages: "imu [N, T, 6], pressure [N, T, 2]"."""
    return ", ".join(f"{n} [N, T, {f}]" for n, f in zip(names, sizes, strict=True))


def join_inputs(
    given: Any, names: list[str], sizes: list[int], what: str, held: str = "given"
) -> np.ndarray:
    """A multi-input model's sequences as one array [N, T, sum F_k], the inputs side by side in
    input order, from ``given``: {input name: [N, T, F_k]} (other keys ignored), a list of
    arrays in input order, or x already side by side. One-line ExportError naming the expected
    arrays and shapes for anything else."""
    total = sum(sizes)
    expect = (
        f"a model with inputs {input_spec(names, sizes)} takes one array per input, named after "
        f"it, or x [N, T, {total}] (the inputs side by side in that order)"
    )
    if isinstance(given, dict):
        if not all(n in given for n in names):
            if "x" not in given:
                raise ExportError(f"{what}: {held} arrays {sorted(given)}; {expect}")
            given = given["x"]
        else:
            given = [given[n] for n in names]
    if isinstance(given, list | tuple):
        if len(given) != len(names):
            raise ExportError(f"{what}: {len(given)} arrays; {expect}")
        parts = [np.asarray(a) for a in given]
        for name, size, a in zip(names, sizes, parts, strict=True):
            if a.ndim != 3 or a.shape[2] != size or a.shape[:2] != parts[0].shape[:2]:
                raise ExportError(
                    f"{what}: array '{name}' has shape {a.shape}; {expect} (the same N and T)"
                )
            if a.dtype.kind not in "fiu":
                raise ExportError(f"{what}: array '{name}' has dtype {a.dtype}; {expect}")
        return np.concatenate([a.astype(np.float32) for a in parts], axis=-1)
    x = np.asarray(given)
    if x.ndim != 3 or x.shape[2] != total:
        raise ExportError(f"{what}: x has shape {x.shape}; {expect}")
    return x


def load_sequences(
    path: str | Path,
    what: str = "--calib",
    features: int | None = None,
    tokens: object = None,
    inputs: tuple[list[str], list[int]] | None = None,
) -> Sequences:
    """Read and validate [N, T, F] float sequences; one-line ExportError on anything wrong.
    tokens: a token model's Embedding (its vocab and mask_zero): x is then ids [N, T].
    inputs: a model with several inputs, (their Keras names, their feature counts): an array
    per input or x side by side (:func:`join_inputs`)."""
    p = Path(path)
    if p.is_dir():
        raise ExportError(f"{what}: {str(p)!r} is a folder; give an .npy or .npz file")
    if not p.is_file():
        raise ExportError(f"{what}: file {str(p)!r} does not exist; give an .npy or .npz file")
    try:
        # np.load tells the formats apart by content, whatever the file is called
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded as z:
                arrays = {k: z[k] for k in z.files}
        else:
            arrays = {"x": np.asarray(loaded)}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        reason = " ".join(str(e).split())[:160]
        if "pickle" in reason:  # what NumPy says of any file without the .npy/.npz signature
            reason = "not an .npy or .npz file (or one holding Python objects, never loaded)"
        raise ExportError(f"{what}: cannot read {str(p)!r} as .npy/.npz: {reason}") from None
    if inputs is not None and inputs[0]:
        x = join_inputs(arrays, *inputs, what, f"{str(p)!r} has")
    elif "x" in arrays:
        x = arrays["x"]
    elif len(arrays) == 1 and next(iter(arrays)) not in ("y", "lengths"):
        x = next(iter(arrays.values()))  # one unnamed array: the inputs
    else:
        raise ExportError(
            f"{what}: {str(p)!r} has arrays {sorted(arrays)} but none named 'x'; "
            "name the input array x (shaped [N, T, F])"
        )
    if tokens is not None:
        x, lengths = check_tokens(x, arrays.get("lengths"), what, tokens)
    else:
        x = check_inputs(x, what, features)
        lengths = check_lengths(arrays.get("lengths"), x.shape, what)
    y = arrays.get("y")
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != x.shape[0]:
            raise ExportError(
                f"{what}: y has shape {y.shape} for {x.shape[0]} sequences; give one label "
                "(or target row) per sequence"
            )
        if y.dtype.kind not in "biuf":
            raise ExportError(f"{what}: y has dtype {y.dtype}; expected integer labels or numbers")
    return Sequences(x=x, y=y, lengths=lengths)


def check_lengths(lengths: object, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    """Real lengths: one integer in 1..T per sequence, or None."""
    if lengths is None:
        return None
    n, t = shape[0], shape[1]
    want = f"lengths must be integers in 1..{t}, one per sequence ({n})"
    a = np.asarray(lengths)
    if a.dtype.kind not in "iu":
        raise ExportError(f"{what}: lengths has dtype {a.dtype}; {want}")
    if a.ndim != 1 or a.shape[0] != n:
        raise ExportError(f"{what}: lengths has shape {a.shape}; {want}")
    if a.min() < 1 or a.max() > t:
        raise ExportError(f"{what}: lengths holds values from {a.min()} to {a.max()}; {want}")
    return a.astype(np.int64)


def check_tokens(
    x: object, lengths: object, what: str, tokens: object
) -> tuple[np.ndarray, np.ndarray | None]:
    """A token model's ids [N, T] and lengths, validated (layers/embedding.check_ids)."""
    a = np.asarray(x)
    if a.ndim == 2 and a.dtype.kind in "iu":
        lens = check_lengths(lengths, a.shape, what)
    else:
        lens = None  # check_ids names what is wrong with x first
    return check_ids(a, lens, what, tokens.vocab, tokens.mask_zero)  # type: ignore[attr-defined]


def mask_lengths(seqs: Sequences, mask_value: float | None, what: str) -> tuple[Sequences, str]:
    """A model whose first layer is Masking(mask_value) (ModelIR.mask_value): Keras skips the
    steps whose every feature equals the value. Without lengths in the data, each sequence's
    real length is taken from its trailing masked steps (the C stops there, calibration never
    sees them); a masked step before a real one, which Keras skips and the C cannot, is refused.
    Lengths in the data win; masked steps within them are said in the note. Returns the
    sequences (with lengths) and a one-line note ('' when there is nothing to say)."""
    if mask_value is None or seqs.x.ndim != 3:
        return seqs, ""
    n, t = seqs.x.shape[:2]
    label = f"Masking(mask_value={mask_value:g})"
    real = np.any(seqs.x != np.float32(mask_value), axis=-1)  # Keras' mask [N, T]
    if seqs.lengths is not None:
        inside = ~real & (np.arange(t)[None, :] < seqs.lengths[:, None])
        if not inside.any():
            return seqs, ""
        i, s = (int(v) for v in np.argwhere(inside)[0])
        count = int(inside.any(axis=1).sum())
        return seqs, (
            f"{label}: the lengths in {what} win, but {count} of {n} sequences have masked "
            f"steps within their length (first: sequence {i}, step {s}), which Keras skips and "
            "the C runs: the two differ there; end those lengths before the masked steps"
        )
    lengths = np.where(real.any(axis=1), t - np.argmax(real[:, ::-1], axis=1), 0)
    if not lengths.all():
        i = int(np.argmin(lengths))
        raise ExportError(
            f"{what}: sequence {i} is all padding (every feature of every step equals the "
            f"{label} value); drop it, the C runs at least one step"
        )
    interior = ~real & (np.arange(t)[None, :] < lengths[:, None])
    if interior.any():
        i, s = (int(v) for v in np.argwhere(interior)[0])
        raise ExportError(
            f"{what}: sequence {i} has a masked step (every feature = {mask_value:g}) at step {s}, "
            f"before its last real step {int(lengths[i]) - 1}; Keras' {label} skips it, the C "
            "runs every step up to the real length: drop those steps from the data, or give "
            "lengths in the .npz (they win; the C then runs such steps as real ones)"
        )
    padded = int((lengths < t).sum())
    note = (
        f"{label}: lengths taken from the trailing masked steps of {what} ({padded} of {n} "
        "sequences padded)"
    )
    return Sequences(seqs.x, seqs.y, lengths.astype(np.int64)), note
