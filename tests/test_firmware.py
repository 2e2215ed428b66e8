"""`rnn2c firmware`: board projects built with arm-none-eabi-gcc, run under qemu-system-arm, and
compared with the host emulator bit for bit; real boards built and their memory map checked; the
RISC-V boards (HiFive1 under qemu-system-riscv32, the ESP32-C3 built) likewise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from rnn2c.cli import main
from rnn2c.emulator import firmware
from rnn2c.export import export_model
from tools import need

EMULATED = ("mps2-an386", "mps2-an385", "microbit")
REAL = ("nucleo-l476rg", "nrf52840dk")
FEATURES, STEPS = 6, 14


def _gru() -> keras.Model:
    inp = keras.Input((None, FEATURES))
    x = keras.layers.GRU(32)(inp)
    return keras.Model(inp, keras.layers.Dense(5, activation="softmax")(x), name="gru")


def _lstm() -> keras.Model:
    inp = keras.Input((None, FEATURES))
    x = keras.layers.LSTM(32)(inp)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x), name="lstm")


def _stacked() -> keras.Model:
    inp = keras.Input((None, FEATURES))
    x = keras.layers.GRU(16, return_sequences=True)(inp)
    x = keras.layers.LSTM(16, return_sequences=True)(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x), name="stacked")


MODELS = {"gru": _gru, "lstm": _lstm, "stacked": _stacked}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One .keras file and one export folder per model, calibration and replay data."""
    d = tmp_path_factory.mktemp("firmware")
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(24, STEPS, FEATURES)).astype(np.float32)
    np.savez(d / "calib.npz", x=calib)
    data = rng.normal(size=(4, STEPS, FEATURES)).astype(np.float32)
    np.savez(d / "data.npz", x=data, lengths=np.array([STEPS, 9, 12, 3]))
    out = {"calib": d / "calib.npz", "data": d / "data.npz"}
    for i, (key, build) in enumerate(MODELS.items()):
        keras.utils.set_random_seed(10 + i)
        model = build()
        model.save(d / f"{key}.keras")
        export_model(model, calib, d / f"{key}-export", name=f"{key}_net")
        out[key] = d / f"{key}.keras"
        out[f"{key}-export"] = d / f"{key}-export"
    return out


@pytest.mark.parametrize("board", EMULATED)
@pytest.mark.parametrize("model", list(MODELS))
def test_emulated_board_matches_host(
    files: dict[str, Path], tmp_path: Path, model: str, board: str
) -> None:
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    project = firmware.make_project(
        files[f"{model}-export"], board, tmp_path / "fw", data=files["data"], run=True
    )
    result = firmware.run_project(project)
    assert result.passed, result.first_mismatch
    lengths = project.replay.lengths
    assert lengths.tolist() == [STEPS, 9, 12]  # --data lengths are honoured
    assert result.board_run.printed.sum() == lengths.sum()
    np.testing.assert_array_equal(result.board_run.outputs, result.expected)
    # QEMU does not emulate the DWT cycle counter and the Cortex-M0 has none: never claim cycles
    assert result.board_run.cycles is None
    assert "n/a" in result.board_run.summary
    assert "cycles n/a" in result.board_run.text


def test_cli_keras_model_to_qemu_run(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    out = tmp_path / "fw"
    args = ["firmware", str(files["gru"]), "--calib", str(files["calib"])]
    rc = main([*args, "--board", "mps2-an386", "--out", str(out), "--name", "kws", "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact" in printed and printed.rstrip().endswith("PASS")
    assert {"Makefile", "main.c", "startup.c", "link.ld", "firmware.json", "replay.npz"} <= {
        p.name for p in out.iterdir()
    }
    assert {"kws.c", "kws.h", "rnn2c_runtime.h", "rnn2c.json"} <= {
        p.name for p in (out / "model").iterdir()
    }
    # no --data: 3 deterministic pseudo-random sequences, the same on every render
    replay = np.load(out / "replay.npz")
    assert replay["x"].shape == (3, firmware.DEFAULT_STEPS, FEATURES)
    again = firmware.replay_inputs(firmware.read_export(out / "model")[2], None)
    np.testing.assert_array_equal(replay["x"], again.xq)
    # `make run` is the same command: QEMU's exit status is the program's (0)
    proc = subprocess.run(["make", "-s", "-C", str(out), "run"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("done")


@pytest.mark.parametrize("board", REAL)
def test_real_board_builds_with_its_memory_map(
    files: dict[str, Path], tmp_path: Path, board: str
) -> None:
    need("make", "arm-none-eabi-gcc", "arm-none-eabi-readelf")
    b = firmware.get_board(board)
    project = firmware.make_project(files["lstm-export"], board, tmp_path / "fw")
    elf = firmware.build(project.out)
    sections = subprocess.run(
        ["arm-none-eabi-readelf", "-S", "-W", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    flash, ram = b.region("flash"), b.region("ram")
    addr = {}
    for line in sections.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 5 and parts[1].startswith("."):
            addr[parts[1]] = (int(parts[3], 16), int(parts[5], 16))
    assert addr[".vectors"][0] == flash[0]  # the vector table at the start of flash
    for name in (".vectors", ".text"):
        start, size = addr[name]
        assert flash[0] <= start and start + size <= flash[1], (name, hex(start))
    for name in (".data", ".bss", ".stack_reserve"):
        start, size = addr[name]
        assert ram[0] <= start and start + size <= ram[1], (name, hex(start))
    # .data runs in RAM and is loaded from flash
    segments = subprocess.run(
        ["arm-none-eabi-readelf", "-l", "-W", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    for line in segments.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD" and int(parts[4], 16) > 0:  # bytes to program
            assert flash[0] <= int(parts[3], 16) < flash[1], line  # physical address
    vectors = (project.out / "startup.c").read_text()
    assert "DHCSR" in vectors  # no semihosting BKPT without a debugger attached
    makefile = (project.out / "Makefile").read_text()
    assert f"pyocd flash --target {b.pyocd_target}" in makefile and "openocd" in makefile
    assert "DWT" in (project.out / "main.c").read_text()


def test_mismatch_is_exit_1_naming_sequence_and_step(
    files: dict[str, Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    real = firmware.expected_outputs

    def corrupted(project: firmware.Project) -> np.ndarray:
        y = real(project).copy()
        y[1, 4, 0] ^= 1
        return y

    monkeypatch.setattr(firmware, "expected_outputs", corrupted)
    out = tmp_path / "fw"
    rc = main(
        ["firmware", str(files["gru-export"]), "--board", "microbit", "--out", str(out), "--run"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and "sequence 1, step 4" in err[0], err


def test_hifive1_runs_bit_exact_under_qemu_riscv32(
    files: dict[str, Path], tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    """`rnn2c firmware --board hifive1 --run`: the project built with riscv64-unknown-elf-gcc for
    rv32imac (the RISC-V kernels, no Arm header carried), run under qemu-system-riscv32 -M
    sifive_e,revb=true with semihosting, every step bit-exact with the host emulator."""
    need("make", "riscv64-unknown-elf-gcc", "qemu-system-riscv32")
    out = tmp_path / "fw"
    argv = ["firmware", str(files["stacked-export"]), "--board", "hifive1", "--out", str(out)]
    rc = main([*argv, "--data", str(files["data"]), "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "board == host emulator: bit-exact at every step" in printed
    assert printed.rstrip().endswith("PASS")
    runtime = {p.name for p in (out / "model").iterdir() if p.name.startswith("rnn2c_")}
    assert runtime == {"rnn2c_runtime.h", "rnn2c_ref.h", "rnn2c_riscv.h"}
    makefile = (out / "Makefile").read_text()
    assert "CC       := riscv64-unknown-elf-gcc" in makefile and "-march=rv32imac" in makefile
    assert 'openocd -f board/sifive-hifive1-revb.cfg -c "program' in makefile
    elf = out / "build" / "firmware.elf"
    e_flags = int.from_bytes(elf.read_bytes()[36:40], "little")
    assert elf.read_bytes()[18] == 243 and e_flags & 1  # EM_RISCV, compressed
    nm = subprocess.run(["riscv64-unknown-elf-nm", str(elf)], capture_output=True, text=True)
    symbols = {line.split()[-1]: line.split()[0] for line in nm.stdout.splitlines()}
    assert int(symbols["_start"], 16) == 0x20010000  # where the Rev B bootloader jumps
    proc = subprocess.run(["make", "-s", "-C", str(out), "run"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("done"), proc.stderr


def test_esp32c3_builds_for_direct_boot(files: dict[str, Path], tmp_path: Path) -> None:
    """`--board esp32c3` (build only): the direct-boot words at flash offset 0 and _start right
    after them (0x42000008), code in IROM, constants in DROM at the offset into flash where they
    are stored, .data/.bss/stack in SRAM, every loaded byte in flash; make flash via esptool."""
    need("make", "riscv64-unknown-elf-gcc")
    b = firmware.get_board("esp32c3")
    project = firmware.make_project(files["lstm-export"], "esp32c3", tmp_path / "fw")
    elf = firmware.build(project.out, cc=b.cc)
    sections = subprocess.run(
        ["riscv64-unknown-elf-readelf", "-S", "-W", str(elf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    addr = {}
    for line in sections.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 5 and parts[1].startswith("."):
            addr[parts[1]] = (int(parts[3], 16), int(parts[4], 16), int(parts[5], 16))
    image = elf.read_bytes()
    irom, offset = 0x42000000, addr[".init"][1]
    assert addr[".init"][0] == irom and image[offset : offset + 8] == bytes.fromhex("1d04dbae") * 2
    assert addr[".text"][0] < irom + 0x400000
    rodata, ro_file, _ = addr[".rodata"]
    text, text_file, _ = addr[".text"]
    assert rodata - 0x3C000000 == text + (ro_file - text_file) - irom  # same flash offset
    ram = b.region("ram")
    for name in (".data", ".bss", ".stack_reserve"):
        assert ram[0] <= addr[name][0] and addr[name][0] + addr[name][2] <= ram[1], name
    segments = subprocess.run(
        ["riscv64-unknown-elf-readelf", "-l", "-W", str(elf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loads = [ln.split() for ln in segments.splitlines() if ln.split()[:1] == ["LOAD"]]
    assert loads and all(irom <= int(p[3], 16) < irom + 0x400000 for p in loads)
    nm = subprocess.run(["riscv64-unknown-elf-nm", str(elf)], capture_output=True, text=True)
    assert "42000008 T _start" in nm.stdout
    makefile = (project.out / "Makefile").read_text()
    assert "esptool.py --chip esp32c3 write_flash 0x0" in makefile
    assert "WDTWPROTECT" in (project.out / "startup.c").read_text()  # the watchdogs off


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--board", "esp32"], "not a known board; use one of"),
        (["--board", "nucleo-l476rg", "--run"], "needs an emulated board"),
        (["--board", "microbit", "--calib", "x.npz"], "--calib is for a .keras or .onnx model"),
        (["--board", "microbit", "--name", "other"], "differs from the export's name"),
        (["--board", "microbit", "--data", "missing.npz"], "does not exist"),
        (["--board", "microbit", "--sequences", "0"], "at least 1"),
    ],
)
def test_bad_input_is_exit_2_one_line_nothing_written(
    files: dict[str, Path], tmp_path: Path, capsys, extra: list[str], message: str
) -> None:  # noqa: ANN001
    out = tmp_path / "fw"
    rc = main(["firmware", str(files["gru-export"]), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary folder left either


def test_model_named_main_is_refused(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "fw"
    args = ["firmware", str(files["gru"]), "--calib", str(files["calib"]), "--name", "main"]
    rc = main([*args, "--board", "mps2-an385", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "clash with the standard C header or program" in err[0]
    assert not out.exists()


def test_a_users_folder_keeps_its_files(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The project goes into a folder of the user's; their files stay, a clash is refused."""
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["firmware", str(files["gru-export"]), "--board", "microbit", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "main.c").is_file()
    assert main([*argv[:3], "mps2-an385", *argv[4:]]) == 0  # another board: replaced
    assert "mps2-an385" in (tmp_path / "Makefile").read_text()
    other = tmp_path / "other"
    other.mkdir()
    (other / "Makefile").write_text("all:\n\techo mine\n")
    capsys.readouterr()
    assert main([*argv[:5], str(other)]) == 2
    assert "'Makefile' exists and was not written by rnn2c" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["Makefile"]


def test_missing_qemu_names_the_debian_package(
    files: dict[str, Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    which = shutil.which
    monkeypatch.setattr(
        firmware.shutil, "which", lambda t: None if t == "qemu-system-arm" else which(t)
    )
    out = tmp_path / "fw"
    rc = main(
        ["firmware", str(files["gru-export"]), "--board", "microbit", "--out", str(out), "--run"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "qemu-system-arm not found" in err[0] and "apt-get install qemu-system-arm" in err[0]
    assert not out.exists()


def test_missing_riscv_tools_name_their_debian_packages(
    files: dict[str, Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    """--board hifive1 --run needs riscv64-unknown-elf-gcc and qemu-system-riscv32 (Debian's
    qemu-system-misc): a missing one is named with its package, nothing written."""
    which = shutil.which
    argv = ["firmware", str(files["gru-export"]), "--board", "hifive1", "--run"]
    for tool, package in (
        ("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf"),
        ("qemu-system-riscv32", "qemu-system-misc"),
    ):
        monkeypatch.setattr(
            firmware.shutil, "which", lambda t, tool=tool: None if t == tool else which(t)
        )
        out = tmp_path / tool
        rc = main([*argv, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, err
        assert f"{tool} not found" in err[0] and f"apt-get install {package}" in err[0]
        assert not out.exists()


def test_parse_board_output_with_cycles_and_truncation() -> None:
    """The hardware path (a running DWT counter) and a board that stopped early."""
    text = (
        "rnn2c firmware: model m on nucleo-l476rg (cortex-m4), 2 sequences\n"
        "step 0 0 out 1 -2 cycles 1200\nstep 0 1 out 3 4 cycles 1210\n"
        "step 1 0 out -128 127 cycles 1190\n"
        "cycles/step: min 1190 mean 1200 max 1210 over 3 steps\ndone\n"
    )
    run = firmware.parse_output(text, 2, 2, 2)
    assert run.cycles is not None and run.cycles[0].tolist() == [1200, 1210]
    assert run.summary.startswith("cycles/step: min 1190")
    lengths = np.array([2, 1])
    assert firmware.first_mismatch(run.outputs, run.printed, run.outputs, lengths) is None
    unprinted = firmware.first_mismatch(run.outputs, run.printed, run.outputs, np.array([2, 2]))
    assert unprinted == (1, 1)
    with pytest.raises(firmware.BuildError, match="did not print 'done'"):
        firmware.parse_output(text.replace("done\n", ""), 2, 2, 2)


def test_keras_model_with_export_options_runs_bit_exact(
    files: dict[str, Path], tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    """What EXPORT.txt recommends for raw channels (per-feature input, int16 states) also goes
    straight from a .keras file to a board."""
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    out = tmp_path / "fw"
    args = ["firmware", str(files["lstm"]), "--calib", str(files["calib"]), "--board", "microbit"]
    args += ["--input-quant", "per-feature", "--activations", "int16", "--data", str(files["data"])]
    assert main([*args, "--out", str(out), "--run"]) == 0, capsys.readouterr()
    header = (out / "model" / "model.h").read_text()
    assert "MODEL_INPUT_PER_FEATURE 1" in header and "int16_t" in header
    capsys.readouterr()
    rc = main(
        ["firmware", str(files["lstm-export"]), "--board", "microbit", "--out", str(out)]
        + ["--input-quant", "per-feature"]
    )
    err = capsys.readouterr().err
    assert (
        rc == 2
        and err.count("\n") == 1
        and "--input-quant applies to a .keras or .onnx model" in err
    )


@pytest.mark.parametrize(("rs", "board"), [(True, "mps2-an386"), (False, "microbit")])
def test_bidirectional_gru_runs_bit_exact_on_a_board(
    files: dict[str, Path],
    tmp_path: Path,
    capsys,  # noqa: ANN001
    rs: bool,
    board: str,
) -> None:
    """A whole-sequence model: main.c calls <name>_run once per sequence and prints every step's
    output (a tagger, return_sequences) or the one output of each sequence (a classifier);
    --data lengths are honoured and --max-length is an export option of `firmware`."""
    need("make", "arm-none-eabi-gcc", "qemu-system-arm")
    keras.utils.set_random_seed(21)
    inp = keras.Input((None, FEATURES))
    x = keras.layers.Bidirectional(keras.layers.GRU(12, return_sequences=rs), merge_mode="sum")
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x(inp)), name="bitag")
    model.save(tmp_path / "bitag.keras")
    out = tmp_path / "fw"
    args = ["firmware", str(tmp_path / "bitag.keras"), "--calib", str(files["calib"])]
    args += ["--data", str(files["data"]), "--board", board, "--out", str(out)]
    assert main([*args, "--name", "tg", "--run"]) == 2  # no --max-length: one line
    assert "--max-length" in capsys.readouterr().err
    rc = main([*args, "--name", "tg", "--max-length", str(STEPS), "--run"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "bit-exact" in printed and printed.rstrip().endswith("PASS")
    assert "tg_run(&fw_state" in (out / "main.c").read_text()
    steps = [line for line in printed.splitlines() if "steps" in line and "QEMU" in line]
    assert steps and f" {STEPS + 9 + 12} steps" in steps[0]
