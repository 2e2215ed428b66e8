"""Argument parsing and entry point of `rnn2c train` (wired into the `rnn2c` command)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from .train import DEFAULTS

__all__ = ["add_arguments", "command_line", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `rnn2c train` flags to ``parser``."""
    d = DEFAULTS
    parser.add_argument(
        "--dataset",
        required=True,
        help="PATH.npz (x_train, y_train, x_test, y_test), Foo_TRAIN.ts / Foo_TEST.ts or a "
        "folder holding them, or uea:NAME for a set bundled with aeon (e.g. uea:BasicMotions)",
    )
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument(
        "--cell", choices=("gru", "lstm", "rnn"), default=d["cell"], help="recurrent cell"
    )
    parser.add_argument("--units", type=int, default=d["units"], help="units per layer")
    parser.add_argument("--layers", type=int, default=d["layers"], help="stacked recurrent layers")
    parser.add_argument(
        "--dropout",
        type=float,
        default=d["dropout"],
        help="rate of the Dropout before the output layer (0 = no Dropout layer)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=d["noise"],
        help="std of Gaussian noise added to the normalized inputs while training (robustness "
        "to sensor and int8 input-quantization noise; a no-op at inference)",
    )
    parser.add_argument(
        "--epochs", type=int, default=d["epochs"], help="most epochs (early stopping)"
    )
    parser.add_argument("--batch-size", type=int, default=d["batch_size"])
    parser.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=d["seed"], help="random seed")
    parser.add_argument(
        "--val-split",
        type=float,
        default=d["val_split"],
        help="fraction of the training set held out (stratified) to pick the best epoch",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=d["patience"],
        help="epochs without a better epoch (validation accuracy, then loss) before stopping",
    )
    parser.add_argument(
        "--bidirectional", action="store_true", help="bidirectional layers (not supported yet)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace --out if it exists and is not empty"
    )


def _error(message: str) -> int:
    print(f"rnn2c train: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def command_line(args: argparse.Namespace) -> str:
    """The full `rnn2c train` command (every flag spelled out) that reproduces ``args``."""
    parts = ["rnn2c", "train", "--dataset", str(args.dataset), "--out", str(args.out)]
    for flag in (
        "cell",
        "units",
        "layers",
        "dropout",
        "noise",
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "val_split",
        "patience",
    ):
        parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return shlex.join(parts)


def main(args: argparse.Namespace) -> int:
    """Run `rnn2c train`; return the exit status (0 ok, 2 bad input)."""
    if getattr(args, "bidirectional", False):
        return _error(
            "--bidirectional is not supported yet; train a unidirectional model "
            "(drop --bidirectional)"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from .data import DatasetError
    from .model import ConfigError
    from .train import RunError, export_commands, train_run

    try:
        metrics = train_run(
            args.dataset,
            args.out,
            cell=args.cell,
            units=args.units,
            layers=args.layers,
            dropout=args.dropout,
            noise=args.noise,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            val_split=args.val_split,
            patience=args.patience,
            force=getattr(args, "force", False),
            command=command_line(args),
        )
    except (DatasetError, ConfigError, RunError) as exc:
        return _error(str(exc))
    print(
        f"{metrics['dataset']}: {args.cell.upper()}({args.units}) x{args.layers}, "
        f"{metrics['epochs_run']} epochs (best {metrics['best_epoch']}), "
        f"{metrics['train_seconds']:.0f} s"
    )
    print(f"float test accuracy: {metrics['float_test_accuracy']:.4f}")
    print(f"run folder: {args.out}")
    print("export and verify with:")
    for cmd in export_commands(args.out):
        print(f"  {cmd}")
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m rnn2c.train.cli`
    _parser = argparse.ArgumentParser(prog="rnn2c train")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
