"""The emulator's side of the sequence kind (export/sequence_kind.py): verify
(emulator/verify.py), size (emulator/size.py), the board project (emulator/firmware.py) and
bench; registered with emulator/kinds.py."""

from __future__ import annotations

from typing import Any, ClassVar

from rnn2c.emulator.firmware import (
    Replay,
    RunResult,
    compare_outputs,
    main_buffers,
    print_run,
    sequence_replay,
)
from rnn2c.emulator.kinds import KindRunner, VerifyJob, register
from rnn2c.emulator.size import SizeReport, measure_sequence
from rnn2c.emulator.verify import VerifyReport, verify_sequence
from rnn2c.export.sequence_kind import SEQUENCE


class SequenceRunner(KindRunner):
    kind: ClassVar[str] = SEQUENCE.name
    main_template: ClassVar[str] = "main.c.j2"  # reset + step per row (or run), every output

    def verify(self, job: VerifyJob) -> VerifyReport:
        return verify_sequence(job)

    def measure(
        self, exp: Any, target: Any, opt: str, cc: str, data: Any, sequences: int, steps: int
    ) -> SizeReport:
        return measure_sequence(exp, target, opt, cc, data, sequences, steps)

    def replay(self, qmodel: Any, data: Any, sequences: int, steps: int, seed: int) -> Replay:
        return sequence_replay(qmodel, data, sequences, steps, seed)

    def main_buffers(self, qmodel: Any, replay: Any) -> int:
        return main_buffers(qmodel, replay)

    def compare_run(self, project: Any, text: str, seconds: float) -> RunResult:
        return compare_outputs(project, text, seconds)

    def print_run(self, result: Any) -> int:
        return print_run(result)

    def bench_refusal(self, ir: Any) -> str | None:
        return None  # bench refuses by the model's inputs and entry point, not its kind


SEQUENCE_RUNNER = register(SequenceRunner())
