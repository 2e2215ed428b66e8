"""Loading sequence arrays for --calib and --data: .npy, or .npz with `x` (and `y`, `lengths`)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn2c.export.ir import ExportError


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


def load_sequences(
    path: str | Path, what: str = "--calib", features: int | None = None
) -> Sequences:
    """Read and validate [N, T, F] float sequences; one-line ExportError on anything wrong."""
    p = Path(path)
    if not p.is_file():
        raise ExportError(f"{what}: file {str(p)!r} does not exist; give an .npy or .npz file")
    try:
        if p.suffix == ".npy":
            arrays = {"x": np.load(p, allow_pickle=False)}
        else:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ExportError(f"{what}: cannot read {str(p)!r} as .npy/.npz: {e}") from None
    if "x" in arrays:
        x = arrays["x"]
    elif len(arrays) == 1:
        x = next(iter(arrays.values()))
    else:
        raise ExportError(
            f"{what}: {str(p)!r} has arrays {sorted(arrays)} but none named 'x'; "
            "name the input array x (shaped [N, T, F])"
        )
    x = check_inputs(x, what, features)
    lengths = arrays.get("lengths")
    if lengths is not None:
        lengths = np.asarray(lengths).astype(np.int64).reshape(-1)
        if lengths.shape[0] != x.shape[0] or lengths.min() < 1 or lengths.max() > x.shape[1]:
            raise ExportError(
                f"{what}: lengths must hold one value in 1..{x.shape[1]} per sequence"
            )
    y = arrays.get("y")
    if y is not None and y.shape[0] != x.shape[0]:
        raise ExportError(f"{what}: y has {y.shape[0]} rows for {x.shape[0]} sequences")
    return Sequences(x=x, y=y, lengths=lengths)
