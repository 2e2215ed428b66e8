"""The emulator's side of the seq2seq kind (export/seq2seq_kind.py): verify
(emulator/seq2seq.py), size (emulator/seq2seq_size.py), the board project
(emulator/seq2seq_boards.py: boards/seq2seq_main.c.j2) and bench's refusal; registered with
emulator/kinds.py."""

from __future__ import annotations

from typing import Any, ClassVar

from rnn2c.emulator import seq2seq_boards
from rnn2c.emulator.firmware import Replay
from rnn2c.emulator.kinds import KindRunner, VerifyJob, register
from rnn2c.emulator.seq2seq import Seq2SeqReport, verify_seq2seq
from rnn2c.emulator.seq2seq_size import Seq2SeqSizeReport, measure_seq2seq
from rnn2c.export.seq2seq_kind import SEQ2SEQ


class Seq2SeqRunner(KindRunner):
    kind: ClassVar[str] = SEQ2SEQ.name
    main_template: ClassVar[str] = seq2seq_boards.MAIN_TEMPLATE  # encode_step per step, decode

    def verify(self, job: VerifyJob) -> Seq2SeqReport:
        return verify_seq2seq(job)

    def measure(
        self, exp: Any, target: Any, opt: str, cc: str, data: Any, sequences: int, steps: int
    ) -> Seq2SeqSizeReport:
        return measure_seq2seq(exp, target, opt, cc, data, sequences, steps)

    def replay(self, qmodel: Any, data: Any, sequences: int, steps: int, seed: int) -> Replay:
        # ids or int8 rows for encode_step, then decode
        inp = seq2seq_boards.seq2seq_inputs(qmodel, data, sequences, steps, seed)
        return Replay(inp.xq, inp.lengths, inp.source, inp.ids)

    def main_buffers(self, qmodel: Any, replay: Any) -> int:
        return 4 * int(qmodel.max_output_length) + 160  # the tokens decode writes, a line

    def compare_run(
        self, project: Any, text: str, seconds: float
    ) -> seq2seq_boards.Seq2SeqRunResult:
        return seq2seq_boards.compare_run(project, text, seconds)

    def print_run(self, result: Any) -> int:
        return seq2seq_boards.print_run(result)

    def bench_refusal(self, ir: Any) -> str | None:
        return (
            "rnn2c bench times streaming models (reset + step); this is a seq2seq "
            "encoder-decoder: use rnn2c size for its instructions per input step and per "
            "output token, verify for its tokens"
        )


SEQ2SEQ_RUNNER = register(Seq2SeqRunner())
