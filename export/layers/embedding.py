"""Embedding: the model input is one integer id per step (token or character models); the layer
looks the id up in a table of rows (template layers/embedding.c.j2).

The Embedding is the model's front end, not one of its per-step layers: it turns an id into the
int8 row that ``<name>_step`` takes, so every layer after it, the step, run and the integer
reference are those of a model whose input is that row. The header gives ``<name>_step_token``
and ``<name>_run_tokens`` over ids, beside ``<name>_step``/``<name>_run`` over rows.

Quantization: the table is int8 with one scale and zero point for the whole table, from its
range (always containing 0, so it is act_quant_from_range on the table's own values: no
calibration needed); that quantization is the model's input quantization, so the next layer
folds it into its weights as it folds any input scale. One scale per row would need a
requantization per id inside the next layer; the table's range is what calibration would give
anyway, every row is reachable.

Ids outside 0..vocab-1 are an error (``<NAME>_ERROR_TOKEN``): ``step_token`` then leaves the state
and the output untouched, ``run_tokens`` checks every id before it starts and writes nothing.

``mask_zero=True``: id 0 is padding. It behaves like ``Masking``: the C runs each sequence up to its
real length (``lengths`` in the data, or, without them, up to its last nonzero id); a 0 before a
sequence's end, which Keras would skip and the C would not, is refused in calibration and data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnn2c.export.ir import ActQuant, ExportError
from rnn2c.export.quant_rules import act_quant_from_range

KERAS_CLASSES = ("Embedding",)
#: <NAME>_ERROR_TOKEN: step_token / run_tokens got an id < 0 or >= <NAME>_VOCAB_SIZE
ERROR_TOKEN = -3
#: the largest vocabulary the C takes (ids are int32; the table is vocab x dim bytes of flash)
MAX_VOCAB = 1 << 24


@dataclass
class EmbeddingLayer:
    """Float: the table [vocab, dim]; an id selects a row."""

    kind: ClassVar[str] = "embedding"
    name: str
    table: np.ndarray  # float64 [vocab, dim]
    mask_zero: bool = False

    @property
    def vocab(self) -> int:
        return int(self.table.shape[0])

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    @property
    def input_size(self) -> int:
        return 1

    @property
    def output_size(self) -> int:
        return self.dim

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """ids [N, T] -> float rows [N, T, dim] (ids already checked to lie in the table)."""
        return self.table[np.asarray(ids, dtype=np.int64)]

    def quantize(self) -> QuantEmbedding:
        """The quantizer rule: one int8 scale and zero point for the table, from its range."""
        q = act_quant_from_range(float(self.table.min()), float(self.table.max()))
        return QuantEmbedding(
            name=self.name,
            table=q.quantize(self.table).astype(np.int8),
            output_q=q,
            mask_zero=self.mask_zero,
        )


@dataclass
class QuantEmbedding:
    """int8 table [vocab, dim] at output_q: the model's input quantization."""

    kind: ClassVar[str] = "embedding"
    template: ClassVar[str] = "embedding.c.j2"
    name: str
    table: np.ndarray  # int8 [vocab, dim]
    output_q: ActQuant
    mask_zero: bool = False

    @property
    def vocab(self) -> int:
        return int(self.table.shape[0])

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The integer reference: ids [N, T] -> int8 rows [N, T, dim], what step_token hands to
        step (ids already checked)."""
        return self.table[np.asarray(ids, dtype=np.int64)]

    def weight_bytes(self) -> int:
        return int(self.table.size)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "output_q": self.output_q.to_json(), "mask_zero": self.mask_zero}

    @classmethod
    def from_json(cls, meta: dict[str, Any], table: np.ndarray) -> QuantEmbedding:
        return cls(
            name=str(meta["name"]),
            table=np.asarray(table, dtype=np.int8),
            output_q=ActQuant.from_json(meta["output_q"]),
            mask_zero=bool(meta.get("mask_zero", False)),
        )


def read(layer: Any) -> EmbeddingLayer:
    """Keras Embedding -> EmbeddingLayer (the model's first layer, over [batch, time] ids)."""
    where = f"layer '{layer.name}' (Embedding)"
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    if len(weights) != 1 or weights[0].ndim != 2:
        raise ExportError(f"{where}: unexpected weights {[w.shape for w in weights]}")
    table = weights[0]
    if not np.isfinite(table).all():
        raise ExportError(
            f"{where}: its weights hold NaN or inf values; retrain or repair the model "
            "(rnn2c needs finite weights)"
        )
    if table.shape[0] > MAX_VOCAB or table.shape[0] < 1:
        raise ExportError(f"{where}: a vocabulary of {table.shape[0]} ids; rnn2c takes 1 to 2^24")
    return EmbeddingLayer(
        name=layer.name, table=table, mask_zero=bool(layer.get_config().get("mask_zero"))
    )


def check_ids(
    x: np.ndarray,
    lengths: np.ndarray | None,
    what: str,
    vocab: int,
    mask_zero: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate token ids [N, T] for a model with an Embedding input -> (int64 ids, lengths).

    One-line ExportError for anything but whole numbers in 0..vocab-1; with mask_zero the
    lengths default to each sequence's last nonzero id, and a 0 before a sequence's end (which
    Keras would skip and the C would not) is refused."""
    x = np.asarray(x)
    want = f"a token model takes integer ids [N, T] in 0..{vocab - 1}"
    if x.dtype.kind not in "iu":
        raise ExportError(f"{what}: x has dtype {x.dtype}; {want} (e.g. x.astype(np.int32))")
    if x.ndim != 2:
        raise ExportError(f"{what}: x has shape {x.shape}; {want}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ExportError(f"{what}: x has shape {x.shape}; it holds no sequences")
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi >= vocab:
        raise ExportError(
            f"{what}: x holds ids from {lo} to {hi}; the Embedding has {vocab} ids (0..{vocab - 1})"
        )
    ids = x.astype(np.int64)
    if not mask_zero:
        return ids, lengths
    t = ids.shape[1]
    if lengths is None:
        nonzero = ids != 0
        last = np.where(nonzero.any(axis=1), t - np.argmax(nonzero[:, ::-1], axis=1), 0)
        if (last == 0).any():
            i = int(np.nonzero(last == 0)[0][0])
            raise ExportError(
                f"{what}: sequence {i} holds only id 0, the padding id of mask_zero=True; "
                "give every sequence at least one real id"
            )
        lengths = last.astype(np.int64)
    real = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    pad = (ids == 0) & real
    if pad.any():
        i, s = (int(v[0]) for v in np.nonzero(pad))
        raise ExportError(
            f"{what}: sequence {i} has the padding id 0 at step {s}, inside its real length "
            "(mask_zero=True: Keras skips that step, the C would not); give 0 only after a "
            "sequence's end"
        )
    return ids, lengths
