"""Drop-in packaging (CMake, Arduino, PlatformIO) and the header macros for firmware builds."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.export.packaging import package_files
from rnn2c.export.render import c_string
from tools import require, require_arm_toolchain, require_riscv_toolchain

LABELS = ["walk", 'say "hi"', "back\\slash??=", "caf\u00e9\n9"]
ARM = ["-mthumb", "-mcpu=cortex-m4"]

MAIN_C = """\
#include <stdio.h>
#include "motion.h"
_Static_assert(MOTION_NUM_CLASSES == MOTION_OUTPUT_SIZE, "one label per output");
_Static_assert(MOTION_SCRATCH_BYTES > 0 && MOTION_SCRATCH_BYTES < 4096, "scratch");
static const char *const labels[MOTION_NUM_CLASSES] = MOTION_CLASS_LABELS;
int main(void)
{
    static motion_state_t state;
    int8_t x[MOTION_INPUT_SIZE] = {0}, y[MOTION_OUTPUT_SIZE];
    int i;
    motion_reset(&state);
    for (i = 0; i < 5; ++i) {
        motion_step(&state, x, y);
    }
    for (i = 0; i < MOTION_NUM_CLASSES; ++i) {
        printf("%d|%s\\036", y[i], labels[i]); /* record separator */
    }
    return 0;
}
"""

SKETCH_CPP = """\
// An Arduino-style sketch: C++ that includes the model header and calls it.
#include "motion.h"
static motion_state_t state;
static int8_t y[MOTION_OUTPUT_SIZE];
static const char *const labels[] = MOTION_CLASS_LABELS;
static_assert(sizeof(labels) / sizeof(labels[0]) == MOTION_NUM_CLASSES, "labels");
void setup() { motion_reset(&state); }
void loop()
{
    int8_t x[MOTION_INPUT_SIZE] = {0};
    float p[MOTION_OUTPUT_SIZE];
    motion_step(&state, x, y);
    motion_dequantize_output(y, p);
}
int main()
{
    setup();
    for (int i = 0; i < 5; ++i) loop();
    return y[0] == -128 && y[1] == -128 ? 1 : 0;  // softmax outputs cannot all be 0
}
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder like `rnn2c train` writes (model.keras + metrics.json) exported with
    --package all through the CLI."""
    d = tmp_path_factory.mktemp("pkg")
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [keras.Input((None, 5)), keras.layers.GRU(8), keras.layers.Dense(4, activation="softmax")]
    )
    (d / "run").mkdir()
    model.save(d / "run" / "model.keras")
    (d / "run" / "metrics.json").write_text(json.dumps({"class_names": LABELS}))
    np.save(d / "calib.npy", np.random.default_rng(1).normal(size=(6, 9, 5)).astype(np.float32))
    argv = ["export", str(d / "run" / "model.keras"), "--calib", str(d / "calib.npy")]
    assert main([*argv, "--out", str(d / "c"), "--name", "motion", "--package", "all"]) == 0
    return d / "c"


def test_files_and_manifest(exported: Path) -> None:
    files = {str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file()}
    expected = {"CMakeLists.txt", "library.properties", "library.json"}
    expected |= {f"src/{f}" for f in ("motion.c", "motion.h", "rnn2c_runtime.h")}
    assert expected <= files
    manifest = json.loads((exported / "rnn2c.json").read_text())
    assert manifest["package"] == ["cmake", "arduino", "platformio"]
    assert expected <= set(manifest["files"])
    assert manifest["class_names"] == LABELS
    for f in ("motion.c", "motion.h", "rnn2c_runtime.h"):
        assert (exported / "src" / f).read_bytes() == (exported / f).read_bytes()
    props = dict(
        line.split("=", 1) for line in (exported / "library.properties").read_text().splitlines()
    )
    assert props["name"] == "motion" and props["includes"] == "motion.h"
    for key in ("version", "author", "maintainer", "sentence", "paragraph", "category"):
        assert props[key]


def test_library_json_is_what_platformio_needs(exported: Path) -> None:
    lib = json.loads((exported / "library.json").read_text())
    assert lib["name"] == "motion" and lib["version"]
    assert (exported / lib["build"]["srcDir"] / "motion.c").is_file()
    assert (exported / lib["build"]["includeDir"] / "motion.h").is_file()


def test_no_packaging_by_default_and_bad_kind(exported: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from rnn2c.export import serialize  # noqa: PLC0415

    qmodel = serialize.load(exported / "motion_qmodel.npz")
    rendered = {f: (exported / f).read_text() for f in ("motion.c", "motion.h", "rnn2c_runtime.h")}
    assert package_files(qmodel, "motion", rendered, []) == {}
    assert set(package_files(qmodel, "motion", rendered, ["cmake"])) == {"CMakeLists.txt"}
    argv = ["export", str(exported.parent / "run" / "model.keras"), "--calib"]
    argv += [str(exported.parent / "calib.npy"), "--out", str(tmp_path / "x")]
    assert main([*argv, "--package", "cmake,zephyr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zephyr" in err
    assert not (tmp_path / "x").exists()


def test_header_macros_compile_and_labels_round_trip(exported: Path, tmp_path: Path) -> None:
    require("gcc", "a host C compiler")
    (tmp_path / "main.c").write_text(MAIN_C)
    exe = tmp_path / "app"
    cmd = ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(exported)]
    subprocess.run(
        [*cmd, str(tmp_path / "main.c"), str(exported / "motion.c"), "-o", str(exe)], check=True
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True).stdout.decode("utf-8")
    assert [rec.split("|", 1)[1] for rec in out.split("\036")[:-1]] == LABELS
    header = (exported / "motion.h").read_text()
    assert "#define MOTION_NUM_CLASSES 4" in header
    assert c_string('a"b\\c?') == '"a\\"b\\\\c\\?"'


def _cmake_build(src: Path, build: Path, *extra: str, target: str | None = None) -> None:
    cfg = ["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", *extra]
    subprocess.run(cfg, check=True, capture_output=True)
    cmd = ["cmake", "--build", str(build)] + (["--target", target] if target else [])
    subprocess.run(cmd, check=True, capture_output=True)


def test_cmake_target_host(exported: Path, tmp_path: Path) -> None:
    require("cmake", "Debian package cmake")
    require("gcc", "a host C compiler")
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.c").write_text(MAIN_C)
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app LANGUAGES C)\n"
        f'add_subdirectory("{exported.as_posix()}" model)\n'
        "add_executable(app main.c)\ntarget_link_libraries(app PRIVATE motion)\n"
    )
    _cmake_build(app, tmp_path / "build", "-DCMAKE_C_COMPILER=gcc")
    out = subprocess.run([str(tmp_path / "build" / "app")], check=True, capture_output=True)
    assert out.stdout.decode().count("|") == 4


def test_cmake_target_arm(exported: Path, tmp_path: Path) -> None:
    require("cmake", "Debian package cmake")
    require_arm_toolchain()
    toolchain = tmp_path / "arm.cmake"
    toolchain.write_text(
        "set(CMAKE_SYSTEM_NAME Generic)\nset(CMAKE_SYSTEM_PROCESSOR arm)\n"
        "set(CMAKE_C_COMPILER arm-none-eabi-gcc)\n"
        "set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\n"
        'set(CMAKE_C_FLAGS_INIT "-mthumb -mcpu=cortex-m0plus")\n'
    )
    build = tmp_path / "build"
    _cmake_build(exported, build, f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", target="motion")
    lib = build / "libmotion.a"
    assert lib.is_file()
    names = subprocess.run(["arm-none-eabi-nm", "-g", str(lib)], check=True, capture_output=True)
    defined = {line.split()[-1] for line in names.stdout.decode().splitlines() if " T " in line}
    assert defined == {"motion_reset", "motion_step", "motion_run"}


def test_cmake_target_riscv(exported: Path, tmp_path: Path) -> None:
    """The CMake package built for rv32imc with the toolchain file docs/boards.md gives: the
    library's entry points, no __mulsi3 call (-march reached the compile), and the build
    selected rnn2c_riscv.h (the GRU pair loop's second group: LH at vector byte 14)."""
    require("cmake", "Debian package cmake")
    require_riscv_toolchain()
    toolchain = tmp_path / "riscv.cmake"
    toolchain.write_text(
        "set(CMAKE_SYSTEM_NAME Generic)\nset(CMAKE_SYSTEM_PROCESSOR riscv32)\n"
        "set(CMAKE_C_COMPILER riscv64-unknown-elf-gcc)\n"
        "set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\n"
        'set(CMAKE_C_FLAGS_INIT "-march=rv32imc -mabi=ilp32 --specs=picolibc.specs")\n'
    )
    build = tmp_path / "build"
    _cmake_build(exported, build, f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", target="motion")
    lib = build / "libmotion.a"
    names = subprocess.run(["riscv64-unknown-elf-nm", str(lib)], check=True, capture_output=True)
    lines = names.stdout.decode().splitlines()
    assert {ln.split()[-1] for ln in lines if " T " in ln} == {
        "motion_reset",
        "motion_step",
        "motion_run",
    }
    assert not any("__mulsi3" in ln for ln in lines)
    dis = subprocess.run(
        ["riscv64-unknown-elf-objdump", "-d", str(lib)], check=True, capture_output=True
    ).stdout.decode()
    assert re.search(r"\blh\s+\w+,14\(", dis)


@pytest.mark.parametrize("prefix", ["", "arm-none-eabi-"])
def test_arduino_layout_compiles_as_the_ide_does(
    exported: Path, tmp_path: Path, prefix: str
) -> None:
    """Every .c and .cpp under src/ (plus a C++ sketch) compiled and linked, C and C++ mixed."""
    if prefix:
        require_arm_toolchain()
        flags = [*ARM, "-Os", "-ffunction-sections", "-fdata-sections"]
        link = [*ARM, "--specs=nosys.specs", "-Wl,--gc-sections"]
        linker = "arm-none-eabi-gcc"  # the Debian toolchain has no ARM libstdc++; none needed
    else:
        require("gcc", "a host C compiler")
        require("g++", "a host C++ compiler")
        flags, link, linker = ["-Os"], [], "g++"
    (tmp_path / "sketch.cpp").write_text(SKETCH_CPP)
    sources = sorted((exported / "src").rglob("*.c")) + sorted((exported / "src").rglob("*.cpp"))
    sources.append(tmp_path / "sketch.cpp")
    objects = []
    for src in sources:
        obj = tmp_path / f"{src.name}.o"
        if src.suffix == ".c":
            cmd = [f"{prefix}gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
        else:
            cmd = [f"{prefix}g++", "-std=gnu++17", "-Wall", "-Wextra", "-Werror"]
            cmd += ["-fno-exceptions", "-fno-rtti"]
        subprocess.run(
            [*cmd, *flags, "-I", str(exported / "src"), "-c", str(src), "-o", str(obj)], check=True
        )
        objects.append(str(obj))
    exe = tmp_path / "sketch.elf"
    subprocess.run([linker, *link, *objects, "-o", str(exe)], check=True)
    if not prefix:
        assert subprocess.run([str(exe)], check=False).returncode == 0
