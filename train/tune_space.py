"""The search space of `rnn2c tune`: the architectures `rnn2c train` can build, as candidates.

A :class:`Candidate` is one architecture (cell, units, layers, framing, front end, state and
weight precision, whether it is fine-tuned on the export's weight grid: ``train --qat``, and
a token model's Embedding width); it turns into the keyword arguments of
:func:`rnn2c.train.train.train_run` and into the `rnn2c train` flags that rebuild it, so
every model the search picks is one train command a user can rerun. This module knows nothing
about C: the measuring loop (export, size, verify) is rnn2c/tune.py's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Dataset
from .train import FRAME_ABOVE, FRAME_TARGET, stratified_split

__all__ = [
    "CELLS",
    "EMBEDDING_DIMS",
    "QAT",
    "UNITS",
    "Candidate",
    "auto_frame",
    "frame_choices",
    "frontend_choices",
    "probe_subset",
    "suggest",
    "tuning_split",
]

CELLS = ("gru", "lstm", "rnn")
UNITS = (4, 8, 12, 16, 24, 32, 48, 64)
LAYERS = (1, 2)
#: train --qat off or on: the fine-tuning moves the weights onto the export's grid, which pays
#: most where that grid is coarse (int4 weights) and costs a few epochs per trial
QAT = (False, True)
#: a token dataset's Embedding widths (train's default, 16, among them)
EMBEDDING_DIMS = (4, 8, 16, 32)
FRONTENDS = ("none", "conv8", "conv16", "conv8s2", "conv16s2", "conv16pool")
#: front end name -> (filters, stride, pool)
_CONV = {
    "conv8": (8, 1, "none"),
    "conv16": (16, 1, "none"),
    "conv8s2": (8, 2, "none"),
    "conv16s2": (16, 2, "none"),
    "conv16pool": (16, 1, "max"),
}


@dataclass(frozen=True)
class Candidate:
    """One architecture of the search."""

    cell: str = "gru"
    units: int = 32
    layers: int = 1
    frame: int = 1
    frontend: str = "none"  # a FRONTENDS name
    activations: str = "int8"
    weights: str = "int8"
    qat: bool = False  # train --qat: fine-tuned on the export's weight grid after training
    embedding_dim: int | None = None  # a token dataset's Embedding width (None: features)

    def train_kwargs(self) -> dict[str, Any]:
        """The architecture's keyword arguments of train_run."""
        kw: dict[str, Any] = {
            "cell": self.cell,
            "units": self.units,
            "layers": self.layers,
            "frame": self.frame,
            "activations": self.activations,
            "weights": self.weights,
            "qat": self.qat,
        }
        if self.embedding_dim is not None:
            kw["embedding_dim"] = self.embedding_dim
        if self.frontend != "none":
            filters, stride, pool = _CONV[self.frontend]
            kw.update(frontend="conv", conv_filters=filters, conv_stride=stride, pool=pool)
        return kw

    def train_flags(self) -> list[str]:
        """The `rnn2c train` flags that build this architecture (defaults left out)."""
        flags = ["--cell", self.cell, "--units", str(self.units)]
        if self.embedding_dim is not None:
            flags += ["--embedding-dim", str(self.embedding_dim)]
        if self.layers != 1:
            flags += ["--layers", str(self.layers)]
        flags += ["--frame", str(self.frame)]
        if self.frontend != "none":
            filters, stride, pool = _CONV[self.frontend]
            flags += ["--frontend", "conv", "--conv-filters", str(filters)]
            if stride != 1:
                flags += ["--conv-stride", str(stride)]
            if pool != "none":
                flags += ["--pool", pool]
        if self.activations != "int8":
            flags += ["--activations", self.activations]
        if self.weights != "int8":
            flags += ["--weights", self.weights]
        if self.qat:
            flags += ["--qat"]
        return flags

    def describe(self) -> str:
        """e.g. ``Conv1D(16,3,stride 2) > GRU(16) x2, frame 4, int16 state``."""
        parts = []
        if self.embedding_dim is not None:
            parts.append(f"Embedding({self.embedding_dim}) > ")
        if self.frontend != "none":
            filters, stride, pool = _CONV[self.frontend]
            conv = f"Conv1D({filters},3" + (f",stride {stride})" if stride > 1 else ")")
            parts.append(conv + (" > MaxPool(2)" if pool != "none" else "") + " > ")
        parts.append(f"{self.cell.upper()}({self.units})")
        if self.layers > 1:
            parts.append(f" x{self.layers}")
        if self.frame > 1:
            parts.append(f", frame {self.frame}")
        if self.activations != "int8":
            parts.append(f", {self.activations} state")
        if self.weights != "int8":
            parts.append(f", {self.weights} weights")
        if self.qat:
            parts.append(", QAT")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def auto_frame(ds: Dataset) -> int:
    """train's automatic framing for classify: 1 up to FRAME_ABOVE steps, else
    ceil(T / FRAME_TARGET); 1 for the other tasks."""
    t = int(max(ds.lengths_train.max(), ds.lengths_test.max()))
    if ds.task != "classify" or t <= FRAME_ABOVE or ds.vocab_size:
        return 1
    return math.ceil(t / FRAME_TARGET)


def frame_choices(ds: Dataset) -> tuple[int, ...]:
    """Samples per step to search: around train's automatic framing (1 for sequences up to
    FRAME_ABOVE steps, else ceil(T / FRAME_TARGET)): half, it, twice and four times it."""
    if ds.vocab_size:  # one id per step
        return (1,)
    t = int(max(ds.lengths_train.max(), ds.lengths_test.max()))
    auto = auto_frame(ds)
    options = {auto, 2 * auto, 4 * auto}
    if auto >= 2:
        options.add(auto // 2)
    return tuple(sorted(k for k in options if k <= max(1, t // 2)))


def frontend_choices(task: str, tokens: bool = False) -> tuple[str, ...]:
    """The front ends a task can take: a tagger needs an output at every step (no stride,
    no pooling); a token model none (its Embedding is the front end: train builds no Conv1D
    after it)."""
    if tokens:
        return ("none",)
    if task in ("tag", "forecast"):
        return tuple(f for f in FRONTENDS if f == "none" or _CONV[f][1:] == (1, "none"))
    return FRONTENDS


def suggest(
    trial: Any,
    frames: tuple[int, ...],
    weights: tuple[str, ...],
    frontends: tuple[str, ...],
    embeddings: tuple[int, ...] = (),
) -> Candidate:
    """A candidate from an Optuna trial's suggestions (the trial object is duck-typed);
    ``embeddings``: the Embedding widths of a token dataset (empty: real-valued features)."""
    dim = trial.suggest_categorical("embedding_dim", embeddings) if embeddings else None
    return Candidate(
        cell=trial.suggest_categorical("cell", CELLS),
        units=trial.suggest_categorical("units", UNITS),
        layers=trial.suggest_categorical("layers", LAYERS),
        frame=trial.suggest_categorical("frame", frames),
        frontend=trial.suggest_categorical("frontend", frontends),
        activations=trial.suggest_categorical("activations", ("int8", "int16")),
        weights=trial.suggest_categorical("weights", weights),
        qat=trial.suggest_categorical("qat", QAT),
        embedding_dim=dim,
    )


def probe_subset(ds: Dataset, n: int = 4) -> Dataset:
    """The first ``n`` training and test sequences: enough to build, calibrate and export a
    candidate whose flash, RAM and instructions are measured before it is trained (they do not
    depend on the weights), at a fraction of an epoch's cost."""
    return dataclasses.replace(
        ds,
        x_train=ds.x_train[:n],
        y_train=ds.y_train[:n],
        lengths_train=ds.lengths_train[:n],
        x_test=ds.x_test[:n],
        y_test=ds.y_test[:n],
        lengths_test=ds.lengths_test[:n],
    )


def tuning_split(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """The training set split in two (stratified by class for classify): candidates are
    trained on the first part and scored on the second, so the search never sees the test
    set; the test set stays for the chosen model's figures."""
    rng = np.random.default_rng(seed)
    if ds.task == "classify":
        tr, va = stratified_split(ds.y_train, fraction, rng)
    else:
        perm = rng.permutation(len(ds.x_train))
        n_val = max(1, int(round(fraction * len(perm))))
        tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"{ds.name}: too few training sequences to split for the search")
    return dataclasses.replace(
        ds,
        x_train=ds.x_train[tr],
        y_train=ds.y_train[tr],
        lengths_train=ds.lengths_train[tr],
        x_test=ds.x_train[va],
        y_test=ds.y_train[va],
        lengths_test=ds.lengths_train[va],
        name=f"{ds.name} (tuning split)",
    )
