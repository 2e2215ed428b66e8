"""Host emulator: compile generated C, run it through ctypes, compare with the references.

The library API mirrors `rnn2c verify`: ``rnn2c.emulator.verify(model, out_dir, data)``.
Importing the package registers every model kind's runner (emulator/kinds.py), which the
commands ask.
"""

from rnn2c.emulator import seq2seq_kind, sequence_kind
from rnn2c.emulator.build import BuildError, CompiledModel, compile_model, load_model
from rnn2c.emulator.verify import VerifyReport, verify

__all__ = [
    "BuildError",
    "CompiledModel",
    "VerifyReport",
    "compile_model",
    "load_model",
    "seq2seq_kind",
    "sequence_kind",
    "verify",
]
