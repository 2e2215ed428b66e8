"""The documentation: README's commands parse with the CLI and write only under runs/, every
relative link and anchor resolves, `rnn2c --help` names the model kinds, and the README's demo
block is the one benchmarks/readme_demo.py maintains."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from rnn2c.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ROOT / "CHANGELOG.md", *DOCS]


def _load_readme_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_demo", ROOT / "benchmarks/readme_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


def _rnn2c_commands(text: str) -> list[list[str]]:
    """Every `rnn2c ...` line of the ```sh blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in _code_blocks(text, "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["rnn2c"]:
                commands.append(words[1:])
    return commands


def _parse(words: list[str]) -> object:
    try:
        return build_parser().parse_args(words)
    except SystemExit:
        pytest.fail(f"`rnn2c {shlex.join(words)}` does not parse with the CLI")


def test_readme_and_docs_commands_parse_with_the_cli() -> None:
    seen = 0
    for page in PAGES:
        for words in _rnn2c_commands(page.read_text()):
            _parse(words)
            seen += 1
    assert seen >= 15  # the tour alone has 12


def test_readme_tour_writes_only_under_runs() -> None:
    text = README.read_text()
    tour = text[text.index("## A short tour") :]
    tour = tour[: tour.index("\n## ", 3)]
    commands = _rnn2c_commands(tour)
    assert [c[0] for c in commands].count("train") == 2
    written = []
    for words in commands:
        args = _parse(words)
        for flag in ("out", "plot", "json"):
            value = getattr(args, flag, None)
            if value is not None:
                written.append(value)
    assert written and all(p.startswith("runs/") for p in written), written
    assert "/runs/" in (ROOT / ".gitignore").read_text().split()


def test_help_names_seq2seq_and_the_model_kinds() -> None:
    parser = build_parser()
    top = " ".join(parser.format_help().split())
    for word in ("seq2seq", "Bidirectional", "Embedding", "<name>_step", "<name>_decode"):
        assert word in top, word
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    text = " ".join(sub.format_help().split())
    assert "seq2seq" in text.split("options:")[0]  # the description, not only --task's choices


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    outside = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    found: set[str] = set(re.findall(r'<a id="([^"]+)"', outside))
    counts: dict[str, int] = {}
    for heading in re.findall(r"^#+ (.+)$", outside, re.M):
        slug = _slug(heading)
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and anchor not in _anchors(dest.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_readme_is_short_and_links_every_docs_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 450
    index = (ROOT / "docs/README.md").read_text()
    for page in DOCS:
        if page.name != "README.md":
            assert f"]({page.name})" in index, page.name
    assert "make demo" in text and "make test" in text


def test_readme_demo_block_is_the_scripts() -> None:
    demo = _load_readme_demo()
    text = README.read_text()
    assert text.count(demo.BEGIN) == 1 and text.count(demo.END) == 1
    block = text.split(demo.BEGIN)[1].split(demo.END)[0]
    table = demo.verify_table(block)
    assert table.startswith("rnn2c verify: ") and table.endswith(("PASS", "FAIL"))
    assert demo.replace_block(text, table) == text  # the block is in the script's own form


def test_readme_demo_runs_the_makefiles_demo_commands() -> None:
    demo = _load_readme_demo()
    commands = demo.demo_commands((ROOT / "Makefile").read_text(), "/v/rnn2c", "build/x")
    assert [c[:2] for c in commands] == [
        ["/v/rnn2c", "train"],
        ["/v/rnn2c", "export"],
        ["/v/rnn2c", "verify"],
    ]
    for words in commands:
        args = _parse(words[1:])
        for flag in ("out", "plot"):
            value = getattr(args, flag, None)
            assert value is None or value.startswith("build/x/"), value
    with pytest.raises(demo.DemoError, match=r"\$\(OTHER\)"):
        demo.demo_commands("demo: venv\n\t$(RNN2C) train --out $(OTHER)\n", "r", "d")
    with pytest.raises(demo.DemoError, match="no `demo:` target"):
        demo.demo_commands("test:\n\tmake\n", "r", "d")


def test_readme_demo_replaces_only_between_the_markers() -> None:
    demo = _load_readme_demo()
    text = f"intro\n{demo.BEGIN}\nold\n{demo.END}\nrest\n"
    new = demo.replace_block(text, "rnn2c verify: m\nPASS")
    assert new == f"intro\n{demo.BEGIN}\n```\nrnn2c verify: m\nPASS\n```\n{demo.END}\nrest\n"
    for bad in (
        "no markers\n",
        f"{demo.END}\n{demo.BEGIN}\n",
        f"{demo.BEGIN}{demo.BEGIN}{demo.END}",
    ):
        with pytest.raises(demo.DemoError):
            demo.replace_block(bad, "x")
    out = "plot written\nrnn2c verify: m\n  check  result\nFAIL\nplot written to p.png\n"
    assert demo.verify_table(out) == "rnn2c verify: m\n  check  result\nFAIL"
