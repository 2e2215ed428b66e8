"""Save and load a quantized model of any kind as one .npz (arrays, and a JSON header whose
"kind" names its model kind; no pickle): each kind writes and reads its own (export/kinds.py,
export/codec.py)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rnn2c.export import kinds
from rnn2c.export.codec import FORMAT_VERSION, read_npz
from rnn2c.export.ir import ExportError

__all__ = ["FORMAT_VERSION", "load", "to_bytes"]


def to_bytes(qmodel: Any) -> bytes:
    """The quantized model's .npz, written by its kind."""
    return kinds.of(qmodel).to_bytes(qmodel)


def load(path: str | Path | io.BytesIO) -> Any:
    """The quantized model saved at path (a QuantModel, a QuantSeq2Seq, ...), read by the kind
    its header names; one-line ExportError on a file that is not one."""
    header, arrays = read_npz(path)
    try:
        return kinds.named(header.get("kind"), str(path)).from_arrays(header, arrays, str(path))
    except ExportError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ExportError(
            f"{str(path)!r} is not a readable rnn2c quantized model ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:120]}); export the model again"
        ) from None
