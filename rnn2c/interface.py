"""Who is calling: the `rnn2c` command or Python code.

Error messages are written once, in the command line's words (``--max-length 5``). A caller of
the Python API passed keyword arguments, not flags, so the functions of the library API are
wrapped in :func:`python_api`: an error they raise outside the command line names the keyword
(``max_length=5``) instead. The command line runs inside :func:`command_line`, where messages
stay as written.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

_ON_COMMAND_LINE = contextvars.ContextVar("rnn2c_command_line", default=False)

#: flags that take no value (argparse store_true): the word after them is prose
VALUELESS = frozenset({"run", "force", "strict", "quiet", "qat", "bidirectional"})
#: the words that are values of the CLI's choice flags (tests/test_interface.py holds this to
#: the parsers)
CHOICES = frozenset(
    {
        "minmax",
        "percentile",
        "mse",
        "int8",
        "int16",
        "int4",
        "per-tensor",
        "per-feature",
        "classify",
        "regress",
        "tag",
        "forecast",
        "seq2seq",
        "gru",
        "lstm",
        "rnn",
        "luong",
        "bahdanau",
        "auto",
        "on",
        "off",
        "none",
        "all",
        "O2",
        "Os",
        "cortex-m0plus",
        "cortex-m3",
        "cortex-m4",
        "cortex-m7",
        "rv32imc",
        "conv",
        "max",
        "avg",
        "logmel",
        "speaker",
        "random",
        "word",
        "stream",
    }
)
_FLAG = re.compile(
    r"--(?P<flag>[a-z][a-z0-9]*(?:-[a-z0-9]+)*)"
    r"(?: (?P<value>-?\d[\w.+-]*|nan|inf|[A-Z][A-Z0-9_]*\b|'[^']*'|[\w.-]+))?"
)
_NUMBER = re.compile(r"-?\d[\w.+-]*|nan|inf")

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def command_line() -> Iterator[None]:
    """Run the block as the `rnn2c` command: messages keep their --flags."""
    token = _ON_COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _ON_COMMAND_LINE.reset(token)


def on_command_line() -> bool:
    return _ON_COMMAND_LINE.get()


def as_keywords(message: str, renames: dict[str, str]) -> str:
    """``--max-length 5`` -> ``max_length=5``; a flag whose keyword is named differently
    (renames: flag -> keyword, e.g. out -> out_dir) takes that name; a choice value is quoted
    (``input_quant='per-feature'``), a number or a placeholder (N, K) is not."""

    def one(m: re.Match[str]) -> str:
        flag, value = m.group("flag"), m.group("value")
        keyword = renames.get(flag, flag.replace("-", "_"))
        if value is None or flag in VALUELESS:
            return keyword + ("" if value is None else " " + value)
        trail = ""
        while value and value[-1] in ".,;:)":  # punctuation of the sentence, not the value
            value, trail = value[:-1], value[-1] + trail
        if _NUMBER.fullmatch(value) or value.startswith("'") or value.isupper():
            return f"{keyword}={value}{trail}"
        if value in CHOICES:
            return f"{keyword}={value!r}{trail}"
        return f"{keyword} {value}{trail}"  # a word of the sentence, not a value

    return _FLAG.sub(one, message)


def python_api(**renames: str) -> Callable[[F], F]:
    """Decorate a library API function: its ValueError messages (ExportError, OutputError, ...)
    name keyword arguments rather than flags when it is not called by the `rnn2c` command.
    renames: flag (without --, dashes as underscores) -> the function's keyword where they
    differ."""
    table = {k.replace("_", "-"): v for k, v in renames.items()}

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except ValueError as e:
                if on_command_line() or not e.args or not isinstance(e.args[0], str):
                    raise
                e.args = (as_keywords(e.args[0], table), *e.args[1:])
                raise

        return call  # type: ignore[return-value]

    return wrap
