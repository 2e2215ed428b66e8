"""The emulator's side of a model kind (export/modelkind.py): how verify, size, firmware and
bench run a model of that kind. Each kind's runner lives in its own module
(emulator/sequence_kind.py, emulator/seq2seq_kind.py), which registers it here when the
package is imported (emulator/__init__.py imports them); the commands find it by the kind's
name (runner_for) and never ask which kind they hold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from rnn2c.export import kinds
from rnn2c.export.ir import ExportError
from rnn2c.export.modelkind import ModelKind


@dataclass
class VerifyJob:
    """One `rnn2c verify`: the model and the export (checked to match), the data, the
    thresholds and options."""

    model: Any  # as the user gave it (a .keras path: its run folder may label the plot)
    keras_model: Any
    ir: Any  # the model's float IR
    export: Any  # the export folder (export/folder.py's ExportDir)
    data: Any
    min_agreement: float
    max_mean_error: float
    cc: str | None
    stream_steps: int
    progress_prefix: str | None


class KindRunner(ABC):
    """How the emulator's commands run one model kind."""

    #: the export kind's name (ModelKind.name)
    kind: ClassVar[str]
    #: the board project's main.c template (firmware_templates/boards/)
    main_template: ClassVar[str]

    @abstractmethod
    def verify(self, job: VerifyJob) -> Any:
        """The report of `rnn2c verify` (its table(), to_json(), plot(), passed)."""

    @abstractmethod
    def measure(
        self, exp: Any, target: Any, opt: str, cc: str, data: Any, sequences: int, steps: int
    ) -> Any:
        """The report of `rnn2c size` on an export (emulator/size.py's Export), for a target
        (size.Target), its tools found."""

    @abstractmethod
    def replay(self, qmodel: Any, data: Any, sequences: int, steps: int, seed: int) -> Any:
        """The inputs a board project replays (emulator/firmware.py's Replay)."""

    @abstractmethod
    def main_buffers(self, qmodel: Any, replay: Any) -> int:
        """Bytes of RAM main.c's buffers take (beside the model's state and the stack)."""

    @abstractmethod
    def compare_run(self, project: Any, text: str, seconds: float) -> Any:
        """What a board printed (text, in seconds) held against the references: a result with
        `passed`."""

    @abstractmethod
    def print_run(self, result: Any) -> int:
        """`rnn2c firmware --run`'s lines about the result; the exit code."""

    @abstractmethod
    def bench_refusal(self, ir: Any) -> str | None:
        """Why `rnn2c bench` does not take this model (None: it does)."""


RUNNERS: dict[str, KindRunner] = {}


def register(runner: KindRunner) -> KindRunner:
    """Make a kind's runner the one the commands use for that kind."""
    RUNNERS[runner.kind] = runner
    return runner


def runner_for(kind: ModelKind) -> KindRunner:
    """The runner of a model kind."""
    runner = RUNNERS.get(kind.name)
    if runner is None:
        raise ExportError(f"the emulator cannot run {kind.title} (no runner for {kind.name!r})")
    return runner


def runner_of(obj: Any) -> KindRunner:
    """The runner of a float IR's or quantized model's kind."""
    return runner_for(kinds.of(obj))
