"""Progress lines on stderr for the long phases of a command (verify over 10^5 steps).

A phase says nothing for its first DELAY_S seconds, so a short run (every test among them)
prints nothing; after that a line per tenth of the work or per INTERVAL_S seconds, whichever
comes first, and a last line when it ends. The lines are plain (no carriage returns), the same
on a terminal and in a CI log, which is not a terminal and is where a silent 10-minute run
looks hung.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

DELAY_S = 3.0  # quiet this long into a phase
INTERVAL_S = 10.0  # at most this long between two lines
OPAQUE_FROM = 100_000  # steps from which work without progress says when it starts


class Progress:
    """One phase of `total` steps: call update(done) as it goes, finish() at its end."""

    def __init__(
        self, prefix: str, what: str, total: int, unit: str = "steps", out: TextIO | None = None
    ) -> None:
        self.prefix, self.what, self.unit = prefix, what, unit
        self.total = max(int(total), 1)
        self.out = out
        self.start = time.monotonic()
        self.last_line = self.start
        self.last_tenth = 0
        self.spoke = False

    def say(self, text: str) -> None:
        print(f"{self.prefix}: {self.what}: {text}", file=self.out or sys.stderr, flush=True)
        self.spoke = True

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.start < DELAY_S or done >= self.total:  # the end: finish() says it
            return
        tenth = 10 * int(done) // self.total
        if tenth > self.last_tenth or now - self.last_line >= INTERVAL_S or not self.spoke:
            self.last_tenth, self.last_line = tenth, now
            pct = 100 * int(done) // self.total
            self.say(f"{done}/{self.total} {self.unit} ({pct}%), {now - self.start:.0f} s")

    def finish(self) -> None:
        """The closing line, if the phase said anything."""
        if self.spoke:
            seconds = time.monotonic() - self.start
            self.say(f"{self.total}/{self.total} {self.unit} done in {seconds:.0f} s")


@contextmanager
def progress(
    prefix: str | None, what: str, total: int, unit: str = "steps", ticks: bool = True
) -> Iterator[Callable[[int], None] | None]:
    """A phase as a context: yields the update callable (None where prefix is None: no lines
    asked for). ticks=False: work that cannot report as it goes (one call into Keras) says
    that it starts when it is large (OPAQUE_FROM steps or more) and how long it took."""
    if prefix is None:
        yield None
        return
    p = Progress(prefix, what, total, unit)
    if not ticks and total >= OPAQUE_FROM:
        p.say(f"{total} {unit} ...")
    yield p.update
    p.finish()
