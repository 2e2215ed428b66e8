"""The model kind: what every rnn2c command asks of a model, whatever its form.

rnn2c reads several kinds of Keras model, each with its own float IR, quantized model, C API
and checks: a *sequence* model (a chain or graph of layers run step by step or over the whole
sequence: export/sequence_kind.py) and a *seq2seq* encoder-decoder with attention
(export/seq2seq_kind.py). A command never asks which kind it holds: it finds the kind once
(export/kinds.py: from the Keras model, a float IR or quantized model, or a quantized file's
header) and calls the methods below; the emulator's side of a kind (verify, size, firmware,
bench) is emulator/kinds.py's KindRunner, registered under the same name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass
class ExportOptions:
    """The settings of one export (rnn2c export's flags; None: the kind's default)."""

    name: str
    calibration: str = "minmax"
    activations: str = "int8"
    input_quant: str = "per-tensor"
    class_names: list[str] | None = None
    max_length: int | None = None
    start_token: int | None = None
    end_token: int | None = None
    max_output_length: int | None = None
    samples_per_step: int | None = None
    #: where progress lines go (the choices of --calibration auto); None: nowhere
    say: Callable[[str], None] | None = None
    #: an audio front end: a frontend.json path or its dict (export/audio.py), else None
    frontend: Any = None
    input_range: Any = None  # a DeclaredRange (export/ranges.py): --input-range
    output_range: Any = None  # --output-range
    weights: str = "int8"  # or "int4" (export/weight_types.py)
    keep_int8: list[str] | None = None  # --keep-int8: layer names or kinds that stay int8


@dataclass
class Exported:
    """What a kind's export gives the writer of the output folder (export/api.py)."""

    qmodel: Any  # the kind's quantized model
    files: dict[str, str]  # the C: <name>.h, <name>.c and the runtime header
    manifest: dict[str, Any]  # the kind's entries of rnn2c.json


class ModelKind(ABC):
    """One kind of model (see the module doc). A kind object holds no state: one instance per
    kind, listed in export/kinds.py."""

    #: the kind's name: the "kind" of its manifest and quantized file (tag), and the key of its
    #: emulator side (emulator/kinds.py)
    name: ClassVar[str]
    #: the kind in words, for messages: "a sequence model"
    title: ClassVar[str]

    # ---------------------------------------------------------------- the front end

    @abstractmethod
    def claims(self, keras_model: Any) -> bool:
        """Whether this kind reads the Keras model (export/kinds.py asks each kind in turn)."""

    @abstractmethod
    def read(self, keras_model: Any) -> Any:
        """The Keras model -> this kind's float IR (one-line ExportError where it cannot)."""

    @abstractmethod
    def holds(self, obj: Any) -> bool:
        """Whether obj is this kind's float IR or quantized model."""

    @abstractmethod
    def fingerprint(self, ir: Any) -> str:
        """sha256 over the float IR: the manifest's model_fingerprint."""

    # ---------------------------------------------------------------- export

    @abstractmethod
    def export(self, model: Any, ir: Any, calib: Any, options: ExportOptions) -> Exported:
        """Quantize the float IR on the calibration set and render its C. model: what the user
        gave (a .keras path: its run folder's metrics.json may supply defaults)."""

    def tag(self) -> dict[str, str]:
        """The entries that name this kind in its manifest, quantized file and firmware.json."""
        return {"kind": self.name}

    @abstractmethod
    def to_bytes(self, qmodel: Any) -> bytes:
        """The quantized model's .npz (export/codec.py), its header tagged with tag()."""

    @abstractmethod
    def from_arrays(self, header: dict[str, Any], arrays: dict[str, np.ndarray], path: str) -> Any:
        """The quantized model from its .npz header and arrays (export/serialize.py's load)."""

    # ---------------------------------------------------------------- describing an export

    @abstractmethod
    def summary(self, qmodel: Any, manifest: dict[str, Any], name: str) -> list[str]:
        """rnn2c export's lines about the model (before its file list and estimate)."""

    @abstractmethod
    def package_about(self, qmodel: Any, name: str) -> dict[str, str]:
        """The build files' description (export/packaging.py): summary, api and figures."""

    @abstractmethod
    def code_parts(self, qmodel: Any) -> tuple[list[Any], list[str]]:
        """What the C's code consists of, for export/footprint.py's estimate: (the quantized
        layers whose kernels it holds, each counted; the other parts: footprint.PART_CODE
        keys)."""

    @abstractmethod
    def check_model(self, ir: Any, qmodel: Any, folder: str) -> None:
        """One-line ExportError where the float IR cannot be the model the quantized model was
        exported from (before the fingerprint is compared; verify)."""
