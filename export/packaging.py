"""Drop-in packaging of an export: CMake target, Arduino library, PlatformIO library.

A pure function from the quantized model, its C name and its rendered C files to the extra
files of the export folder ({relative path: text}); the templates are in
rnn2c.firmware_templates/packaging/.

  cmake       CMakeLists.txt: static library target <name> (C99) with a PUBLIC include
              directory, so `add_subdirectory(dir)` + `target_link_libraries(app PRIVATE <name>)`
              is all a firmware build needs. It compiles the folder's own <name>.c.
  arduino     library.properties + src/ holding <name>.c, <name>.h and the runtime's headers
              (the Arduino IDE compiles everything under src/ of a 1.5-format library and nothing
              else), so the export folder can be copied into libraries/ as it is.

None of these names the target (a CMake toolchain, an Arduino core or a PlatformIO platform,
the host's `native` included, may be any ISA), so src/ carries every runtime header, as a plain
export does; each build compiles the ones its target selects.
  platformio  library.json pointing PlatformIO's library builder at the same src/.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rnn2c import __version__
from rnn2c.export import kinds as model_kinds
from rnn2c.export.ir import ExportError
from rnn2c.export.isa import RUNTIME_FILES
from rnn2c.export.render import template_environment

KINDS = ("cmake", "arduino", "platformio")
PROJECT_FILES = ("CMakeLists.txt", "library.properties", "library.json")  # one per kind


def parse_kinds(spec: str | Iterable[str] | None) -> list[str]:
    """'cmake,arduino' / 'all' / a list -> the kinds, in KINDS order; unknown kinds refused."""
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [s.strip().lower() for s in items if s.strip()]
    if "all" in items:
        return list(KINDS)
    unknown = sorted(set(items) - set(KINDS))
    if unknown:
        raise ExportError(
            f"--package {','.join(unknown)} is not a package kind; use a comma-separated "
            f"list of {', '.join(KINDS)} or 'all'"
        )
    return [k for k in KINDS if k in items]


def package_paths(name: str, kinds: Iterable[str]) -> list[str]:
    """The relative paths package_files writes for these kinds (known before rendering)."""
    kinds = parse_kinds(list(kinds))
    paths = [f for k, f in zip(KINDS, PROJECT_FILES, strict=True) if k in kinds]
    if "arduino" in kinds or "platformio" in kinds:
        paths += [f"src/{f}" for f in (f"{name}.c", f"{name}.h", *RUNTIME_FILES)]
    return paths


def package_files(
    qmodel: Any, name: str, files: dict[str, str], kinds: Iterable[str]
) -> dict[str, str]:
    """{relative path: text} of the packaging files for the requested kinds.

    files: the rendered C ({"<name>.h", "<name>.c", and the runtime's files} -> text), copied
    into src/ for the Arduino and PlatformIO layouts.
    """
    kinds = parse_kinds(list(kinds))
    ctx = {"name": name, "version": __version__, "source": qmodel.source}
    ctx.update(model_kinds.of(qmodel).package_about(qmodel, name))  # summary, api, figures
    env = template_environment()
    out: dict[str, str] = {}
    if "cmake" in kinds:
        out["CMakeLists.txt"] = env.get_template("packaging/CMakeLists.txt.j2").render(ctx)
    if "arduino" in kinds:
        out["library.properties"] = env.get_template("packaging/library.properties.j2").render(ctx)
    if "platformio" in kinds:
        out["library.json"] = env.get_template("packaging/library.json.j2").render(ctx)
    if "arduino" in kinds or "platformio" in kinds:
        for fname in (f"{name}.c", f"{name}.h", *RUNTIME_FILES):
            out[f"src/{fname}"] = files[fname]
    return out
