"""The project's own imports: no cycles (function-local imports included) and no private name
imported from another module.

Modules are found through pyproject's package-dir mapping (rnn2c.export is export/, ...), which
hides them from tools that follow folder names; every `import` and `from ... import` statement
in a module's source counts, wherever it stands (a function-local import that breaks a cycle at
load time still ties the two modules together).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_dirs() -> dict[str, Path]:
    """rnn2c.* package -> its folder, from pyproject.toml's one-line package-dir table (read
    with a pattern: tomllib is Python 3.11+, and the project supports 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("package-dir"))
    mapping = dict(re.findall(r'"([\w.]+)"\s*=\s*"([\w./]+)"', line))
    assert mapping.get("rnn2c.export") == "export", line
    return {pkg: ROOT / folder for pkg, folder in mapping.items()}


def modules() -> dict[str, Path]:
    """Every module of the distribution: dotted name -> file."""
    out: dict[str, Path] = {}
    for pkg, folder in package_dirs().items():
        for f in folder.glob("*.py"):
            out[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return out


def resolve(name: str, level: int, here: str, is_package: bool, known: set[str]) -> str | None:
    """The project module an import statement names, or None for a third-party one."""
    if level:
        base = here.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - (level - 1)]
        name = ".".join([*base, name] if name else base)
    while name and name not in known:
        name = name.rpartition(".")[0]  # `from rnn2c.export.ir import X`: X is a name, not a module
    return name or None


def imports() -> dict[str, list[tuple[str, list[str], int]]]:
    """module -> [(imported module, the names taken from it, line)]."""
    mods = modules()
    known = set(mods)
    graph: dict[str, list[tuple[str, list[str], int]]] = {m: [] for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.stem == "__init__"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = resolve(alias.name, 0, mod, is_package, known)
                    if target:
                        graph[mod].append((target, [], node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = resolve(node.module or "", node.level, mod, is_package, known)
                if base is None:
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in known:  # `from rnn2c.export import layers`: a module
                        graph[mod].append((sub, [], node.lineno))
                    else:
                        graph[mod].append((base, [alias.name], node.lineno))
    return graph


def cycles(graph: dict[str, list[tuple[str, list[str], int]]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), a package's
    __init__ importing its own submodules aside: that is how a package exposes its API, and
    the submodules never run it."""
    edges = {
        m: sorted({t for t, _, _ in deps if t != m and not (m + ".").startswith(t + ".")})
        for m, deps in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    found = cycles(imports())
    assert not found, "import cycles among the project's modules: " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_no_private_names_across_modules() -> None:
    graph = imports()
    crossings = [
        f"{mod} imports {name} from {target} (line {line})"
        for mod, deps in graph.items()
        for target, names, line in deps
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != mod
    ]
    assert not crossings, "; ".join(crossings)


def test_the_checker_sees_function_local_imports(tmp_path: Path) -> None:
    """The checker itself: a cycle closed only by a function-local import is found."""
    graph = {
        "rnn2c.a": [("rnn2c.b", [], 1)],
        "rnn2c.b": [("rnn2c.c", ["_x"], 3)],
        "rnn2c.c": [("rnn2c.a", [], 9)],
        "rnn2c.d": [("rnn2c.a", [], 1)],
    }
    assert cycles(graph) == [["rnn2c.a", "rnn2c.b", "rnn2c.c"]]
    source = "def f():\n    from rnn2c.export.ir import ExportError\n"
    tree = ast.parse(source)
    local = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert local and resolve(local[0].module or "", 0, "rnn2c.x", False, {"rnn2c.export.ir"}) == (
        "rnn2c.export.ir"
    )


MAX_FUNCTION_LINES = 150  # the project's rule (docs/development.md)


def long_functions(paths: list[Path]) -> list[str]:
    """'file:line name (N lines)' for every function or method longer than the rule."""
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    out.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_150_lines() -> None:
    paths = [*modules().values(), *sorted((ROOT / "benchmarks").glob("*.py"))]
    paths += sorted((ROOT / "tests").glob("*.py"))
    assert len(paths) > 100, len(paths)
    long = long_functions(paths)
    assert not long, "functions over 150 lines: " + "; ".join(long)


def test_the_length_check_counts_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    src = tmp_path / "long.py"
    src.write_text(f"def fine():\n    return 1\n\n\ndef too_long():\n{body}\n")
    assert long_functions([src]) == [f"{src}:5 too_long ({MAX_FUNCTION_LINES + 1} lines)"]
