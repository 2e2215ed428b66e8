"""The `rnn2c` command: train, export, verify.

Exit codes: 0 success; 1 verification below its thresholds (or not bit-exact); 2 bad input
(unsupported model, bad data, bad flag), reported as one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rnn2c.interface import command_line

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
#: --calibration's choices (export/calib_auto.py CALIBRATION_CHOICES; not imported: --help stays
#: fast without NumPy)
CALIBRATION_CHOICES = ("auto", "minmax", "percentile", "mse")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _fail(cmd: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    """The CLI's one error line: `rnn2c CMD: error: message` on stderr; returns the exit code
    (2, bad input, by default; 1 where the tools ran and the result failed)."""
    print(f"rnn2c {cmd}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _write_json(cmd: str, path: str | None, report: Any) -> int | None:
    """Write report.to_json() to --json atomically (its folder was checked before the work);
    None on success, else the error line's exit code."""
    from rnn2c.outdir import OutputError, write_file_atomically  # noqa: PLC0415

    if not path:
        return None
    try:
        write_file_atomically(path, (report.to_json() + "\n").encode(), "--json")
    except OutputError as e:
        return _fail(cmd, str(e))
    return None


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error convention: one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def cmd_export(args: argparse.Namespace) -> int:
    from rnn2c.export import ExportError, export_model  # noqa: PLC0415

    try:
        res = export_model(
            args.model,
            args.calib,
            args.out,
            name=args.name,
            calibration=args.calibration,
            activations=args.activations,
            input_quant=args.input_quant,
            package=args.package,
            max_length=args.max_length,
            start_token=args.start_token,
            end_token=args.end_token,
            max_output_length=args.max_output_length,
            samples_per_step=args.samples_per_step,
            progress_prefix="rnn2c export",
            frontend=args.frontend,
            input_range=args.input_range,
            output_range=args.output_range,
            weights=args.weights,
            keep_int8=args.keep_int8,
        )
    except ExportError as e:
        return _fail("export", str(e))
    print(f"rnn2c export: {args.model} -> {res.out_dir}/")
    for note in res.notes:
        print(f"  note: {note}")
    for line in res.kind.summary(res.qmodel, res.manifest, args.name):
        print(line)
    print(f"  files: {', '.join(res.files)}")
    _print_footprint(res)
    return EXIT_OK


def _print_footprint(res: Any) -> None:
    """The export's flash and RAM on a Cortex-M4, estimated (export/footprint.py)."""
    from rnn2c.export.footprint import THUMB1_FACTOR, estimate, scratch_bytes  # noqa: PLC0415

    header = (res.out_dir / f"{res.name}.h").read_bytes()
    est = estimate(res.qmodel, scratch_bytes(header, res.name), "cortex-m4")
    print(f"  Cortex-M4 estimate: {est.describe()}")
    print(
        f"  (an estimate: rnn2c size {res.out_dir} --target cortex-m4 measures it; Cortex-M0/M0+ "
        f"code is about {THUMB1_FACTOR:g}x larger)"
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from rnn2c.emulator import BuildError, verify  # noqa: PLC0415
    from rnn2c.export import ExportError  # noqa: PLC0415
    from rnn2c.outdir import OutputError, check_output_file  # noqa: PLC0415

    try:
        check_output_file(args.plot, "--plot")  # before the work, not after PASS
        check_output_file(args.json, "--json")
        report = verify(
            args.model,
            args.dir,
            args.data,
            name=args.name,
            min_agreement=args.min_agreement,
            max_mean_error=args.max_mean_error,
            stream_steps=args.stream,
            progress_prefix="rnn2c verify",
        )
    except (ExportError, OutputError) as e:
        return _fail("verify", str(e))
    except BuildError as e:
        return _fail("verify", str(e), EXIT_FAILED)
    print(report.table())
    try:
        if args.plot:
            report.plot(args.plot)
            print(f"plot written to {args.plot}")
    except (RuntimeError, OutputError) as e:
        return _fail("verify", str(e))
    failed = _write_json("verify", args.json, report)
    if failed is not None:
        return failed
    return EXIT_OK if report.passed else EXIT_FAILED


def cmd_size(args: argparse.Namespace) -> int:
    from rnn2c.emulator.size import SizeError, measure  # noqa: PLC0415
    from rnn2c.outdir import OutputError, check_output_file  # noqa: PLC0415

    try:
        check_output_file(args.json, "--json")
        report = measure(args.dir, args.target, args.opt, args.data, args.sequences, args.steps)
    except (SizeError, OutputError) as e:
        return _fail("size", str(e))
    except RuntimeError as e:  # the cross compiler or the emulator failed on generated code
        return _fail("size", str(e), EXIT_FAILED)
    print(report.table())
    failed = _write_json("size", args.json, report)
    if failed is not None:
        return failed
    return EXIT_OK if report.bit_exact else EXIT_FAILED


def add_size_parser(sub: argparse._SubParsersAction) -> None:
    from rnn2c.emulator.size import OPT_LEVELS  # noqa: PLC0415

    p = sub.add_parser(
        "size",
        help="flash, RAM and exact instructions per step of an export on a Cortex-M or RISC-V "
        "target",
    )
    p.add_argument("dir", help="the export folder (rnn2c.json, <name>.c/.h, <name>_qmodel.npz)")
    p.add_argument(
        "--target",
        required=True,
        help="cortex-m0plus, cortex-m3, cortex-m4, cortex-m7, rv32imc, rv32imac or rv32imafc",
    )
    p.add_argument("--opt", default="O2", help=f"{' or '.join(OPT_LEVELS)} (default O2)")
    p.add_argument(
        "--data",
        default=None,
        help="count on these sequences (.npy/.npz as for verify), quantized with the model's "
        "input quantization (default: pseudo-random int8 inputs)",
    )
    p.add_argument("--sequences", type=int, default=4, help="sequences to run (default 4)")
    p.add_argument("--steps", type=int, default=16, help="steps per sequence (default 16)")
    p.add_argument("--json", default=None, help="also write the report as JSON to this file")
    p.set_defaults(func=cmd_size)


def cmd_tune(args: argparse.Namespace) -> int:
    from rnn2c import tune_report  # noqa: PLC0415
    from rnn2c.tune import (  # noqa: PLC0415
        Budget,
        TuneError,
        TuneSettings,
        parse_bytes,
        parse_duration,
        tune,
    )

    try:
        settings = _tune_settings(
            args, Budget, TuneError, TuneSettings, parse_bytes, parse_duration
        )
        result = tune(settings)
    except TuneError as e:
        return _fail("tune", str(e))
    print("\n".join(tune_report.table(result)))
    print(
        f"rnn2c tune: {args.out}/tune.json, {args.out}/pareto.png"
        + (f", {args.out}/best/" if result["best"] else "")
    )
    if result["interrupted"]:
        return 130
    return EXIT_OK if result["best"] is not None and result["best"]["fits"] else EXIT_FAILED


def _tune_settings(  # noqa: PLR0913
    args: argparse.Namespace,
    budget_cls: Any,
    error: Any,
    settings_cls: Any,
    parse_bytes: Any,
    parse_duration: Any,
) -> Any:
    """TuneSettings from the flags; the error class's one line for a bad one."""
    from pathlib import Path  # noqa: PLC0415

    if args.instr_per_step is not None and args.latency_ms is not None:
        raise error("give --instr-per-step or --latency-ms with --clock-mhz, not both")
    if (args.latency_ms is None) != (args.clock_mhz is None):
        raise error("--latency-ms and --clock-mhz go together (instructions = ms x MHz x 1000)")
    instr = args.instr_per_step
    if args.latency_ms is not None:
        if args.latency_ms <= 0 or args.clock_mhz <= 0:
            raise error("--latency-ms and --clock-mhz must be positive, e.g. 10 and 48")
        instr = int(args.latency_ms * args.clock_mhz * 1000)
    if instr is not None and instr < 1:
        raise error(f"--instr-per-step {instr}; expected a positive number of instructions")
    if args.trials < 1:
        raise error(f"--trials {args.trials}; expected a positive number of trials")
    if args.steps < 4:
        raise error(f"--steps {args.steps}; expected at least 4 optimizer steps")
    return settings_cls(
        dataset=args.dataset,
        task=args.task,
        target=args.target,
        budget=budget_cls(
            parse_bytes(args.flash, "--flash"), parse_bytes(args.ram, "--ram"), instr
        ),
        out=Path(args.out),
        trials=args.trials,
        time_budget=parse_duration(args.time_budget) if args.time_budget else None,
        storage=args.storage,
        steps=args.steps,
        final_steps=args.final_steps,
        seed=args.seed,
        quiet=args.quiet,
    )


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search the most accurate model that fits a device's flash, RAM and instructions "
        "per step, measured exactly (Optuna; resumable)",
    )
    p.add_argument("--dataset", required=True, help="as for train (e.g. uea:BasicMotions)")
    p.add_argument(
        "--task",
        choices=("classify", "tag", "regress"),
        default="classify",
        help="classify and tag rank by int8 C accuracy, regress by int8 C MAE (lower is "
        "better) (default: %(default)s)",
    )
    p.add_argument(
        "--target",
        required=True,
        choices=("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "rv32imc"),
        help="the device rnn2c size counts on",
    )
    p.add_argument("--flash", required=True, help="flash budget, e.g. 32K")
    p.add_argument("--ram", required=True, help="RAM budget, e.g. 4K")
    p.add_argument(
        "--instr-per-step",
        type=int,
        default=None,
        metavar="N",
        help="most instructions per model step (every counted step) (default: no limit)",
    )
    p.add_argument(
        "--latency-ms", type=float, default=None, help="with --clock-mhz: N = ms x MHz x 1000"
    )
    p.add_argument("--clock-mhz", type=float, default=None, help="with --latency-ms")
    p.add_argument(
        "--trials",
        type=int,
        default=20,
        help="trials in the study, resumed ones included (default: %(default)s)",
    )
    p.add_argument(
        "--time-budget",
        default=None,
        help="stop starting trials after this long, e.g. 30m (default: none)",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="an Optuna RDB URL for the study (default: sqlite under --out: study.db)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="optimizer steps of a candidate's full schedule; the short one is a quarter "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--final-steps",
        type=int,
        default=3000,
        help="optimizer steps of the chosen model's run in --out/best (default: %(default)s, "
        "train's)",
    )
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--out", required=True, help="the tune folder (resumes the study in it)")
    p.add_argument("--quiet", action="store_true", help="no progress line per trial")
    p.set_defaults(func=cmd_tune)


def cmd_bench(args: argparse.Namespace) -> int:
    from rnn2c.emulator import BuildError  # noqa: PLC0415
    from rnn2c.emulator.bench import DEFAULT_TARGETS, bench  # noqa: PLC0415
    from rnn2c.export import ExportError  # noqa: PLC0415
    from rnn2c.outdir import OutputError, check_output_file  # noqa: PLC0415

    if args.targets is None:
        targets = list(DEFAULT_TARGETS)
    elif args.targets.strip() == "none":
        targets = []
    else:
        targets = [t.strip() for t in args.targets.split(",")]
    try:
        check_output_file(args.json, "--json")
        report = bench(
            args.model,
            args.data,
            args.calib,
            steps=args.steps,
            sequences=args.sequences,
            rounds=args.rounds,
            calibration=args.calibration,
            activations=args.activations,
            input_quant=args.input_quant,
            targets=targets,
            input_range=args.input_range,
            output_range=args.output_range,
            weights=args.weights,
            keep_int8=args.keep_int8,
        )
    except (ExportError, OutputError) as e:
        return _fail("bench", str(e))
    except BuildError as e:
        return _fail("bench", str(e), EXIT_FAILED)
    print(report.table())
    failed = _write_json("bench", args.json, report)
    if failed is not None:
        return failed
    return EXIT_OK


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time rnn2c's C on this host against LiteRT and TFLite Micro (extra 'bench')",
    )
    p.add_argument("model", help="the .keras or .onnx model file")
    p.add_argument("--calib", required=True, help="calibration sequences (as for export)")
    p.add_argument(
        "--data", required=True, help="sequences to run: .npy or .npz with x, optional y, lengths"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="T, the steps every path runs per sequence (the peers take a fixed T); default "
        "the data's T, or the median real length with `lengths`; shorter sequences are left out",
    )
    p.add_argument("--sequences", type=int, default=None, help="use at most this many sequences")
    p.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    p.add_argument("--calibration", default="minmax", choices=CALIBRATION_CHOICES)
    p.add_argument("--activations", default="int8", choices=("int8", "int16"))
    add_weight_arguments(p)
    p.add_argument("--input-quant", default="per-tensor", choices=("per-tensor", "per-feature"))
    add_range_arguments(p)
    p.add_argument(
        "--targets",
        default=None,
        help="Cortex-M targets to count instructions on, comma-separated, or none (default "
        "cortex-m0plus,cortex-m3,cortex-m4)",
    )
    p.add_argument("--json", default=None, help="also write the report as JSON to this file")
    p.set_defaults(func=cmd_bench)


def cmd_firmware(args: argparse.Namespace) -> int:
    from rnn2c.emulator import BuildError, firmware  # noqa: PLC0415
    from rnn2c.export import ExportError  # noqa: PLC0415

    try:
        return firmware.command(args)
    except ExportError as e:
        return _fail("firmware", str(e))
    except BuildError as e:  # make or QEMU failed on the project
        return _fail("firmware", str(e), EXIT_FAILED)


def cmd_train(args: argparse.Namespace) -> int:
    from rnn2c.train import cli as train_cli  # noqa: PLC0415

    return int(train_cli.main(args))


def add_range_arguments(p: argparse.ArgumentParser, suffix: str = "") -> None:
    """--input-range and --output-range (export, bench, firmware: docs/quantization.md)."""
    p.add_argument(
        "--input-range",
        default=None,
        metavar="RANGE",
        help="declared input range, replacing the calibrated one: LO:HI for every feature "
        "(e.g. -16:16), IDX:LO:HI,... per feature (with --input-quant per-feature; features not "
        "named keep their calibrated range), or a .json/.npz file" + suffix,
    )
    p.add_argument(
        "--output-range",
        default=None,
        metavar="RANGE",
        help="declared range of the model output (a linear or relu head), replacing the "
        "calibrated one: LO:HI, IDX:LO:HI,... (the one output scale covers their union) or a "
        ".json/.npz file" + suffix,
    )


def add_weight_arguments(p: argparse.ArgumentParser, default: str | None = "int8") -> None:
    """--weights and --keep-int8 (export, bench, firmware)."""
    p.add_argument(
        "--weights",
        default=default,
        choices=("int8", "int4"),
        help="weight type: int8 (default) or int4 (GRU, LSTM, SimpleRNN and Dense rows at -7..7, "
        "two a byte: half the weight flash)",
    )
    p.add_argument(
        "--keep-int8",
        default=None,
        metavar="LAYER[,LAYER...]",
        help="with --weights int4: layers that keep int8 weights, by name or kind (dense, gru, "
        "lstm, simplernn, bidirectional)",
    )


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of `rnn2c export`."""
    p.add_argument(
        "model", help="the model file: .keras, or .onnx (a PyTorch model exported with torch.onnx)"
    )
    p.add_argument(
        "--calib", required=True, help="calibration sequences: .npy or .npz with x [N, T, F]"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder; may hold other files: rnn2c replaces only the files its rnn2c.json "
        "lists, crash-safely, and refuses to overwrite anything else",
    )
    p.add_argument(
        "--name", default="model", help="C name prefix: <name>.h, <name>_step() (default: model)"
    )
    p.add_argument(
        "--calibration",
        default="minmax",
        choices=CALIBRATION_CHOICES,
        help="how activation ranges are chosen from the calibration set: minmax (default), "
        "percentile, mse, or auto (per range, the method with the smallest int8 error against "
        "float on a held-out half of the calibration set; docs/quantization.md)",
    )
    p.add_argument(
        "--activations",
        default="int8",
        choices=("int8", "int16"),
        help="hidden-state type: int8 (default) or int16 for models where int8 states lose "
        "accuracy; weights stay int8 and input/output stay int8 either way",
    )
    add_weight_arguments(p)
    p.add_argument(
        "--input-quant",
        default="per-tensor",
        choices=("per-tensor", "per-feature"),
        help="per-tensor (default): one <NAME>_INPUT_SCALE for all features; per-feature: one "
        "scale and zero point per feature (<NAME>_INPUT_SCALES), for raw channels of very "
        "different ranges",
    )
    p.add_argument(
        "--package",
        default=None,
        metavar="KINDS",
        help="also write drop-in build files: a comma-separated list of cmake (CMakeLists.txt, "
        "static library target <name>), arduino (library.properties + src/), platformio "
        "(library.json), or all",
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        metavar="N",
        help="the longest sequence <name>_run takes (<NAME>_MAX_LENGTH); required for models "
        "with a Bidirectional or go_backwards layer (their state holds buffers this long), "
        "optional otherwise (run then refuses longer sequences; a RepeatVector model needs it "
        "only when a layer before the RepeatVector returns sequences); seq2seq models: the most "
        "input steps <name>_encode takes (default: from metrics.json, else the calibration "
        "length)",
    )
    p.add_argument(
        "--start-token",
        type=int,
        default=None,
        metavar="ID",
        help="seq2seq models: the id the decoder starts from (default: from the run folder's "
        "metrics.json)",
    )
    p.add_argument(
        "--end-token",
        type=int,
        default=None,
        metavar="ID",
        help="seq2seq models: the id that ends the output (default: from metrics.json)",
    )
    p.add_argument(
        "--max-output-length",
        type=int,
        default=None,
        metavar="N",
        help="seq2seq models: the most tokens <name>_decode writes (default: from metrics.json, "
        "else the calibration targets' length)",
    )
    add_range_arguments(p)
    p.add_argument(
        "--samples-per-step",
        type=int,
        default=None,
        metavar="K",
        help="a framed model's raw samples per step (each input row is K samples of F/K "
        "features, sample-major): <NAME>_SAMPLES_PER_STEP and <name>_push_sample (default: "
        "the frame in the run folder's metrics.json, else 1)",
    )
    p.add_argument(
        "--frontend",
        default=None,
        metavar="FRONTEND.json",
        help="an audio front end (a train run's frontend.json, rnn2c train --features logmel): "
        "the C gets <name>_push_audio, which computes the model's int8 input from int16 PCM "
        "bit for bit as training did; the input is then taken as int8 (scale 1, zero point "
        "0) whatever --input-quant says (default: none)",
    )


def build_parser() -> argparse.ArgumentParser:
    from rnn2c import __version__  # noqa: PLC0415

    parser = _Parser(
        prog="rnn2c",
        description="Keras recurrent models (GRU, LSTM, SimpleRNN), and PyTorch ones exported "
        "to ONNX (nn.GRU, nn.LSTM, nn.RNN: give the .onnx file), to dependency-free int8 C99 "
        "for microcontrollers, checked bit for bit against an integer reference. Model kinds: "
        "streaming models (one time step per <name>_step call, with Conv1D/pooling front ends, "
        "Dense heads, branches, several sensor inputs), whole-sequence models (Bidirectional, "
        "go_backwards, RepeatVector encoder-decoders: <name>_run), token models (Embedding: "
        "<name>_step_token) and seq2seq encoder-decoders with attention (<name>_encode, then "
        "<name>_decode: greedy decoding on the device).",
    )
    parser.add_argument("--version", action="version", version=f"rnn2c {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    p = sub.add_parser(
        "train",
        help="train a GRU/LSTM/SimpleRNN model (classify, regress, tag, forecast, seq2seq) into "
        "a run folder",
        description="Train a model into a run folder (model.keras, calib.npz, test.npz, "
        "metrics.json, plots, EXPORT.txt with the export and verify commands). --task classify: "
        "a class per sequence; regress: values per sequence; tag: a class per step; forecast: "
        "the next values of a series; seq2seq: token sequences to token sequences (an "
        "encoder-decoder with attention; --dataset synthetic:dates by default).",
    )
    try:
        from rnn2c.train import cli as train_cli  # noqa: PLC0415

        train_cli.add_arguments(p)
    except ImportError:  # pragma: no cover - train is part of the distribution
        pass
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "export", help="quantize a Keras or ONNX (PyTorch) model to int8 and write C files"
    )
    add_export_arguments(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "verify",
        help="compile an export, run data through it, compare with Keras (or onnxruntime)",
    )
    p.add_argument("model", help="the .keras or .onnx model file that was exported")
    p.add_argument("dir", help="the export folder")
    p.add_argument(
        "--data",
        required=True,
        help="sequences: .npy or .npz with x [N, T, F], optional y, lengths",
    )
    p.add_argument("--name", default=None, help="C name prefix (default: read from the folder)")
    p.add_argument(
        "--min-agreement", type=float, default=0.95, help="minimum argmax agreement (default 0.95)"
    )
    p.add_argument(
        "--max-mean-error",
        type=float,
        default=0.03,
        help="maximum mean |int8 - float| as a fraction of the float output range (default 0.03)",
    )
    p.add_argument(
        "--stream",
        type=int,
        default=0,
        metavar="STEPS",
        help="also run the sequences back to back as one stream of at least STEPS steps without "
        "reset and report the int8 error at its start and end (drift check), e.g. 10000",
    )
    p.add_argument("--json", default=None, help="also write the report as JSON to this file")
    p.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="also draw int8 against float outputs (and the stream error) into this PNG",
    )
    p.set_defaults(func=cmd_verify)
    add_size_parser(sub)
    add_bench_parser(sub)
    add_tune_parser(sub)

    p = sub.add_parser(
        "firmware",
        help="bare-metal project for a board (make, make run, make flash); --run builds it and "
        "checks it under QEMU",
    )
    p.add_argument("model", help="the .keras or .onnx model (with --calib), or an export folder")
    p.add_argument("--calib", default=None, help="calibration sequences, for a model file")
    p.add_argument(
        "--board",
        required=True,
        help="mps2-an386, mps2-an385, microbit, hifive1 (QEMU), nucleo-l476rg, nrf52840dk, esp32c3",
    )
    p.add_argument(
        "--out",
        required=True,
        help="project folder; may hold your own files: rnn2c replaces only what its "
        "firmware.json lists",
    )
    p.add_argument(
        "--data",
        default=None,
        help="sequences to replay, or wav:DIR for an export with --frontend: the recordings' "
        "samples through <name>_push_audio on the board (default: pseudo-random)",
    )
    p.add_argument("--sequences", type=int, default=3, help="how many to replay (default 3)")
    p.add_argument("--name", default=None, help="C name prefix (default: model, or the export's)")
    p.add_argument("--run", action="store_true", help="build, run under QEMU, compare with host")
    p.add_argument("--timeout", type=float, default=60.0, help="QEMU time limit, s (default 60)")
    for flag, choices in (
        ("--calibration", CALIBRATION_CHOICES),
        ("--activations", ("int8", "int16")),
        ("--input-quant", ("per-tensor", "per-feature")),
    ):
        p.add_argument(
            flag, default=None, choices=choices, help="as for export (a model file only)"
        )
    add_weight_arguments(p, default=None)
    p.add_argument(
        "--max-length", type=int, default=None, metavar="N", help="as for export (a .keras model)"
    )
    add_range_arguments(p, " (as for export; a model file only)")
    for flag in ("--start-token", "--end-token", "--max-output-length"):
        p.add_argument(
            flag,
            type=int,
            default=None,
            metavar="N" if flag == "--max-output-length" else "ID",
            help="as for export (a seq2seq .keras model)",
        )
    p.set_defaults(func=cmd_firmware)
    return parser


#: flags whose value may start with '-' (a negative LO: --input-range -16:16)
RANGE_FLAGS = ("--input-range", "--output-range")


def join_range_values(argv: Sequence[str]) -> list[str]:
    """`--input-range -16:16` -> `--input-range=-16:16`: argparse would take a value that starts
    with '-' (and is not a plain negative number) for a flag."""
    out: list[str] = []
    for arg in argv:
        if (
            out
            and out[-1] in RANGE_FLAGS
            and arg[:1] == "-"
            and (arg[1:2].isdigit() or arg[1:2] == ".")
        ):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(join_range_values(sys.argv[1:] if argv is None else argv))
    try:
        with command_line():  # error messages name --flags (the Python API: keywords)
            return int(args.func(args))
    except KeyboardInterrupt:
        print(f"rnn2c {args.command}: interrupted; nothing was changed", file=sys.stderr)
        return 130
    except OSError as e:  # an input that cannot be read (permissions, I/O errors)
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        return _fail(args.command, f"cannot access{where}: {e.strerror or e}")


if __name__ == "__main__":
    raise SystemExit(main())
