"""The README's `make demo` block, regenerated from the current code.

Runs the Makefile's `demo` commands (train, export, verify; read from the Makefile, so the block
shows what `make demo` prints) through the rnn2c CLI of this Python's environment, with the
demo folder at --out (the Makefile's DEMO, build/demo, by default), then writes verify's table
into README.md between the `<!-- demo:begin -->` and `<!-- demo:end -->` markers. Training takes
a few minutes on 2 cores.

    .venv/bin/python benchmarks/readme_demo.py            # rewrite the README's block
    .venv/bin/python benchmarks/readme_demo.py --check    # exit 1 if the block differs

Exit codes: 0 the block is (now) what the code prints; 1 with --check, the README's block
differs (a diff is printed); 2 a demo command failed or the README or Makefile is not as
expected (one line saying which).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- demo:begin -->", "<!-- demo:end -->"


class DemoError(Exception):
    """A one-line reason the block cannot be produced or written."""


def demo_commands(makefile: str, rnn2c: str, demo_dir: str) -> list[list[str]]:
    """The recipe of the Makefile's `demo` target as argument lists, with $(RNN2C) and $(DEMO)
    replaced; any other make variable in it is an error (the script would not know its value)."""
    lines = makefile.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if re.match(r"demo\s*:", line))
    except StopIteration:
        raise DemoError("the Makefile has no `demo:` target") from None
    commands = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        text = line.strip().replace("$(RNN2C)", shlex.quote(rnn2c))
        text = text.replace("$(DEMO)", shlex.quote(demo_dir))
        unknown = re.search(r"\$[({][^)}]*[)}]", text)
        if unknown:
            raise DemoError(
                f"the demo recipe uses {unknown.group(0)}, which this script cannot set"
            )
        commands.append(shlex.split(text))
    if not commands:
        raise DemoError("the Makefile's `demo:` target has no commands")
    return commands


def verify_table(stdout: str) -> str:
    """verify's table: from the `rnn2c verify:` line through the PASS or FAIL line."""
    lines = stdout.splitlines()
    try:
        first = next(i for i, line in enumerate(lines) if line.startswith("rnn2c verify:"))
        last = next(i for i in range(first, len(lines)) if lines[i] in ("PASS", "FAIL"))
    except StopIteration:
        raise DemoError("the last demo command did not print a verify table") from None
    return "\n".join(lines[first : last + 1])


def replace_block(readme: str, table: str) -> str:
    """The README with the text between the markers replaced by `table` in a code fence."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise DemoError(f"README.md must hold {BEGIN} and {END} once each")
    head, rest = readme.split(BEGIN)
    if END in head:
        raise DemoError(f"README.md has {END} before {BEGIN}")
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n```\n{table}\n```\n{END}{tail}"


def find_rnn2c() -> str:
    """The rnn2c command of the environment this script runs in (the Makefile's .venv/bin/rnn2c
    when run with .venv/bin/python), else the one on the PATH."""
    beside = Path(sys.executable).with_name("rnn2c")
    if beside.is_file():
        return str(beside)
    found = shutil.which("rnn2c")
    if found is None:
        raise DemoError("no rnn2c command beside this Python or on the PATH; run `make venv`")
    return found


def run_demo(commands: list[list[str]]) -> str:
    """Run the commands in the checkout's root; verify's table from the last one's output."""
    out = ""
    for i, cmd in enumerate(commands):
        print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        last = i == len(commands) - 1
        if done.returncode != 0 and not (last and done.returncode == 1):  # 1: verify FAIL
            err = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise DemoError(f"{cmd[1] if len(cmd) > 1 else cmd[0]} exited {done.returncode}: {err}")
        out = done.stdout
    return verify_table(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the README's block differs")
    ap.add_argument("--readme", default=str(ROOT / "README.md"), help="default: README.md")
    ap.add_argument("--out", default="build/demo", help="the demo folder (default build/demo)")
    args = ap.parse_args(argv)
    readme_path = Path(args.readme)
    try:
        readme = readme_path.read_text()
        replace_block(readme, "")  # the markers, checked before minutes of training
        commands = demo_commands((ROOT / "Makefile").read_text(), find_rnn2c(), args.out)
        new = replace_block(readme, run_demo(commands))
    except (DemoError, OSError) as e:
        print(f"readme_demo: error: {e}", file=sys.stderr)
        return 2
    if new == readme:
        print(f"readme_demo: {readme_path} demo block is current")
        return 0
    if args.check:
        diff = difflib.unified_diff(
            readme.splitlines(), new.splitlines(), "README.md", "make demo now", lineterm=""
        )
        print("\n".join(diff))
        print(f"readme_demo: {readme_path} demo block differs from what the code prints")
        return 1
    tmp = readme_path.with_name(readme_path.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, readme_path)
    print(f"readme_demo: {readme_path} demo block rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
