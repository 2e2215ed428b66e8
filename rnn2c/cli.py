"""The `rnn2c` command: train, export, verify.

Exit codes: 0 success; 1 verification below its thresholds (or not bit-exact); 2 bad input
(unsupported model, bad data, bad flag), reported as one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _fail(cmd: str, message: str) -> int:
    print(f"rnn2c {cmd}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


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
        )
    except ExportError as e:
        return _fail("export", str(e))
    m = res.manifest
    print(f"rnn2c export: {args.model} -> {res.out_dir}/")
    for layer in res.qmodel.layers:
        print(
            f"  {layer.kind:<6} {layer.name:<20} -> {layer.output_size:>4}"
            f"   {layer.macs:>8} MACs/step"
        )
    print(
        f"  state {m['state_bytes']} bytes, weights {m['weight_bytes']} bytes, "
        f"{m['macs_per_step']} MACs/step, input {m['input_quant']}"
    )
    print(f"  files: {', '.join(res.files)}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from rnn2c.emulator import BuildError, verify  # noqa: PLC0415
    from rnn2c.export import ExportError  # noqa: PLC0415

    try:
        report = verify(
            args.model,
            args.dir,
            args.data,
            name=args.name,
            min_agreement=args.min_agreement,
            max_mean_error=args.max_mean_error,
            stream_steps=args.stream,
        )
    except ExportError as e:
        return _fail("verify", str(e))
    except BuildError as e:
        print(f"rnn2c verify: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(report.table())
    if args.plot:
        try:
            report.plot(args.plot)
        except RuntimeError as e:
            return _fail("verify", str(e))
        print(f"plot written to {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            f.write(report.to_json() + "\n")
    return EXIT_OK if report.passed else EXIT_FAILED


def cmd_firmware(args: argparse.Namespace) -> int:
    from rnn2c.emulator import firmware  # noqa: PLC0415

    return firmware.command(args)


def cmd_train(args: argparse.Namespace) -> int:
    from rnn2c.train import cli as train_cli  # noqa: PLC0415

    return int(train_cli.main(args))


def build_parser() -> argparse.ArgumentParser:
    from rnn2c import __version__  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="rnn2c",
        description="Keras GRU/LSTM/SimpleRNN models to int8 C99 for microcontrollers.",
    )
    parser.add_argument("--version", action="version", version=f"rnn2c {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train a GRU/LSTM classifier on sequence data into a run folder"
    )
    try:
        from rnn2c.train import cli as train_cli  # noqa: PLC0415

        train_cli.add_arguments(p)
    except ImportError:  # pragma: no cover - train is part of the distribution
        pass
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="quantize a Keras model to int8 and write C files")
    p.add_argument("model", help="the .keras model file")
    p.add_argument(
        "--calib", required=True, help="calibration sequences: .npy or .npz with x [N, T, F]"
    )
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument(
        "--name", default="model", help="C name prefix: <name>.h, <name>_step() (default: model)"
    )
    p.add_argument(
        "--calibration",
        default="minmax",
        choices=("minmax", "percentile", "mse"),
        help="how activation ranges are chosen from the calibration set (default: minmax)",
    )
    p.add_argument(
        "--activations",
        default="int8",
        choices=("int8", "int16"),
        help="hidden-state type: int8 (default) or int16 for models where int8 states lose "
        "accuracy; weights stay int8 and input/output stay int8 either way",
    )
    p.add_argument(
        "--input-quant",
        default="per-tensor",
        choices=("per-tensor", "per-feature"),
        help="per-tensor (default): one <NAME>_INPUT_SCALE for all features; per-feature: one "
        "scale and zero point per feature (<NAME>_INPUT_SCALES), for raw channels of very "
        "different ranges",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="compile an export, run data through it, compare with Keras")
    p.add_argument("model", help="the .keras model file that was exported")
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

    p = sub.add_parser(
        "firmware", help="bare-metal project for a board (make, make run, make flash); --run checks"
    )
    p.add_argument("model", help="the .keras model (with --calib), or an export folder")
    p.add_argument("--calib", default=None, help="calibration sequences, for a .keras model")
    p.add_argument(
        "--board",
        required=True,
        help="mps2-an386, mps2-an385, microbit (QEMU), nucleo-l476rg, nrf52840dk",
    )
    p.add_argument("--out", required=True, help="project folder (replaced atomically)")
    p.add_argument("--data", default=None, help="sequences to replay (default: pseudo-random)")
    p.add_argument("--sequences", type=int, default=3, help="how many to replay (default 3)")
    p.add_argument("--name", default=None, help="C name prefix (default: model, or the export's)")
    p.add_argument("--run", action="store_true", help="build, run under QEMU, compare with host")
    p.add_argument("--timeout", type=float, default=60.0, help="QEMU time limit, s (default 60)")
    p.set_defaults(func=cmd_firmware)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
