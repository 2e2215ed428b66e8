"""Argument parsing and entry point of `rnn2c train` (wired into the `rnn2c` command)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from .audio import AudioSettings
from .data import DatasetError
from .model import POOLS, ConfigError
from .seq2seq_train import SEQ2SEQ_DEFAULTS, summary_lines, train_seq2seq
from .train import (
    ACTIVATIONS,
    AUGMENT_BELOW,
    DEFAULTS,
    EMBEDDING_DIM,
    FRAME_ABOVE,
    FRAME_TARGET,
    FRONTENDS,
    LOG_SPAN,
    RunError,
    run_export_commands,
    train_run,
)

__all__ = ["add_arguments", "command_line", "main"]

EXIT_WARNED = 1  # --strict and the model looks useless


def _auto_int(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected an integer or auto"
        ) from None


def _default(flag: str) -> str:
    """'default: X' for a flag whose default depends on --task (and the seq2seq one where it
    differs)."""
    general, s2s = DEFAULTS[flag], SEQ2SEQ_DEFAULTS[flag]
    return f"default: {general}" if general == s2s else f"default: {general}; seq2seq: {s2s}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `rnn2c train` flags to ``parser``; every help line states its default."""
    _add_data_arguments(parser)
    _add_model_arguments(parser)
    _add_architecture_arguments(parser)
    _add_schedule_arguments(parser)
    _add_input_arguments(parser)
    _add_audio_arguments(parser)
    _add_quant_arguments(parser)
    _add_run_arguments(parser)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--dataset, --out, --task."""
    d = DEFAULTS
    parser.add_argument(
        "--dataset",
        help="PATH.npz (x_train, y_train, x_test, y_test [, lengths_train, lengths_test]; "
        "forecast: series [, series_test]), Foo_TRAIN.ts / Foo_TEST.ts or a folder holding "
        "them, or uea:NAME / aeon:NAME for a set bundled with aeon (e.g. uea:BasicMotions, "
        "uea:Covid3Month for regress, aeon:Airline for forecast). seq2seq: synthetic:dates "
        "(dates in many formats -> ISO yyyy-mm-dd), synthetic:reverse (reverse a digit "
        "string), either with :TRAIN[,TEST] sizes (default 20000,2000), or PATH.npz of token "
        "ids. Required, except for seq2seq (default: synthetic:dates)",
    )
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument(
        "--task",
        choices=("classify", "regress", "tag", "forecast", "seq2seq"),
        default=d["task"],
        help="classify: a class per sequence; regress: a value or vector per sequence; tag: a "
        "class per time step (a classification set becomes streams of recordings back to back); "
        "forecast: the next --horizon values of a series; seq2seq: a token sequence to a token "
        "sequence (encoder-decoder with attention, greedy decoding) (default: %(default)s)",
    )


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The architecture: --cell, --units, --embedding-dim, --attention, --layers, --dropout,
    --noise."""
    d = DEFAULTS
    s2s = SEQ2SEQ_DEFAULTS
    parser.add_argument(
        "--cell",
        choices=("gru", "lstm", "rnn"),
        default=d["cell"],
        help="recurrent cell; seq2seq: gru or lstm (default: %(default)s)",
    )
    parser.add_argument(
        "--units",
        type=int,
        default=None,
        help=f"units per layer ({_default('units')})",
    )
    parser.add_argument(
        "--embedding-dim",
        type=int,
        default=None,
        help="width of the Embedding table of a token model: seq2seq (its encoder and decoder "
        f"tables, default: {s2s['embedding_dim']}), or classify/tag on an .npz whose x arrays "
        f"are [N, T] integer token ids, 0 = padding (default: {EMBEDDING_DIM})",
    )
    parser.add_argument(
        "--attention",
        choices=("luong", "bahdanau"),
        default=None,
        help="seq2seq: luong (keras Attention, dot-product scores) or bahdanau (keras "
        f"AdditiveAttention) (default: {s2s['attention']})",
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=d["layers"],
        help="stacked recurrent layers (default: %(default)s)",
    )
    parser.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="rate of the Dropout before the output layer, 0 = none (default: "
        f"{d['dropout']}; seq2seq: none, its model has no Dropout)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=d["noise"],
        help="std of Gaussian noise added to the normalized inputs while training; a no-op at "
        "inference (default: %(default)s)",
    )


def _add_architecture_arguments(parser: argparse.ArgumentParser) -> None:
    """What export supports beyond a recurrent stack: --frontend and its Conv1D/pooling,
    --bidirectional; and the export precisions written into EXPORT.txt."""
    d = DEFAULTS
    parser.add_argument(
        "--frontend",
        choices=FRONTENDS,
        default=d["frontend"],
        help="conv: a causal Conv1D (ReLU) before the recurrent layers, streaming in the C; the "
        "input Normalization then only scales (default: %(default)s)",
    )
    for flag, what in (
        ("conv_filters", "Conv1D filters"),
        ("conv_kernel", "Conv1D kernel size, in steps"),
        ("conv_stride", "Conv1D stride: the layers after it run every STRIDE steps"),
    ):
        parser.add_argument(
            f"--{flag.replace('_', '-')}",
            type=int,
            default=d[flag],
            help=f"with --frontend conv: {what} (default: %(default)s)",
        )
    parser.add_argument(
        "--pool",
        choices=POOLS,
        default=d["pool"],
        help="with --frontend conv: max or average pooling after the Conv1D (valid, window and "
        "stride --pool-size) (default: %(default)s)",
    )
    parser.add_argument(
        "--pool-size", type=int, default=d["pool_size"], help="(default: %(default)s)"
    )
    parser.add_argument(
        "--bidirectional",
        action="store_true",
        help="every recurrent layer a Bidirectional one (concat): a whole-sequence model, "
        "exported with --max-length and run through <name>_run (default: off)",
    )
    parser.add_argument(
        "--activations",
        choices=ACTIVATIONS,
        default=d["activations"],
        help="the export's state precision, written into EXPORT.txt's export line (training "
        "is float) (default: %(default)s)",
    )


def _add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """The optimizer and the epoch selection: --steps, --epochs, --batch-size, --lr,
    --label-smoothing, --seed, --val-split, --patience."""
    d = DEFAULTS
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimizer steps the learning-rate schedule spans (5%% warm-up, then cosine to "
        f"lr/100); sets the epoch count unless --epochs is given ({_default('steps')})",
    )
    parser.add_argument(
        "--epochs",
        type=_auto_int,
        default=d["epochs"],
        help="epochs; auto = --steps / batches per epoch, from 20 to 1000 (seq2seq: from 1) "
        "(default: auto)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"({_default('batch_size')})",
    )
    parser.add_argument(
        "--lr", type=float, default=d["lr"], help="peak Adam learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=d["label_smoothing"],
        help="classify/tag/seq2seq: cross-entropy targets (1 - s) on the class, s spread over "
        "all; keeps "
        "outputs off saturation, where int8 and float part ways (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=d["seed"], help="(default: %(default)s)")
    parser.add_argument(
        "--val-split",
        type=float,
        default=d["val_split"],
        help="fraction of the training set held out (stratified) to pick the best epoch and "
        "stop early; 0 = none: train on everything, keep the epoch of lowest training loss "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=None,
        help="with --val-split: epochs without a better epoch before stopping "
        f"({_default('patience')})",
    )


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """What the training data goes through: --augment, --frame, --log-inputs; forecast's
    --window, --horizon, --season."""
    d = DEFAULTS
    parser.add_argument(
        "--augment",
        choices=("auto", "on", "off"),
        default=d["augment"],
        help="scale, jitter and window-shift the training batches; auto = on below "
        f"{AUGMENT_BELOW} training sequences, off for forecast (default: %(default)s)",
    )
    parser.add_argument(
        "--frame",
        type=_auto_int,
        default=d["frame"],
        help="samples per model step (k samples of F features -> one step of k*F); auto = 1, "
        f"or ceil(T / {FRAME_TARGET}) for classify/regress sequences longer than {FRAME_ABOVE} "
        "steps (default: auto)",
    )
    parser.add_argument(
        "--log-inputs",
        choices=("auto", "on", "off"),
        default=d["log_inputs"],
        help="train on log1p(x) (the device then applies log1p to each raw sample); auto = on "
        f"when every input is >= 0 and its max exceeds {LOG_SPAN:g} x its median nonzero value "
        "(counts over several decades, which a linear int8 input scale cannot resolve) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--window",
        type=_auto_int,
        default=d["window"],
        help="forecast: input window in steps; auto = max(24, 2 * season) (default: auto)",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        default=d["horizon"],
        help="forecast: values ahead to predict (default: %(default)s)",
    )
    parser.add_argument(
        "--season",
        type=_auto_int,
        default=d["season"],
        help="forecast: the period of the seasonal-naive baseline; auto = the autocorrelation "
        "peak of the training part (default: auto)",
    )


def _add_audio_arguments(parser: argparse.ArgumentParser) -> None:
    """--dataset wav:DIR: --features, --feature-params, --split-by, --test-speaker,
    --audio-augment."""
    d = DEFAULTS
    parser.add_argument(
        "--features",
        choices=("none", "logmel"),
        default=d["features"],
        help="wav:DIR: the front end that turns audio into the model's int8 inputs, computed "
        "by its integer reference (the C computes the same); logmel: log-mel bands or, with "
        "n_mfcc, MFCCs (default: %(default)s)",
    )
    parser.add_argument(
        "--feature-params",
        default=d["feature_params"],
        metavar="KEY=VALUE,...",
        help="the front end's parameters: sample_rate, window, hop, n_fft (samples), n_mels, "
        "fmin, fmax (Hz), log_floor (log2), steps_per_log2, n_mfcc (0 = log-mel), mean_hops "
        "(each feature minus its running mean over about that many hops; 0 = none) (default: "
        "sample_rate=8000,hop=128,n_mels=20,fmin=60,fmax=4000,log_floor=-20,steps_per_log2=8,"
        "n_mfcc=0; window: two hops; n_fft: the smallest power of two >= window, at least 256; "
        "mean_hops: a quarter second of hops, 16 at hop=128)",
    )
    parser.add_argument(
        "--split-by",
        choices=("speaker", "random"),
        default=d["split_by"],
        help="wav:DIR: speaker holds out --test-speaker's recordings (speaker-independent); "
        "random a fifth of them (default: %(default)s)",
    )
    parser.add_argument(
        "--test-speaker",
        default=d["test_speaker"],
        metavar="NAME",
        help="wav:DIR with --split-by speaker: the speaker held out as the test set (default: "
        "the last in sorted order)",
    )
    parser.add_argument(
        "--audio-augment",
        type=int,
        default=d["audio_augment"],
        metavar="COPIES",
        help="wav:DIR: augmented copies of each training recording (speed, gain, noise, time "
        "shift; --audio-augment-params), "
        "their features computed like the originals' (default: %(default)s)",
    )
    parser.add_argument(
        "--audio-context",
        choices=("word", "stream"),
        default=d["audio_context"],
        help="wav:DIR: word: the augmented copies are isolated words; stream: as a stream has "
        "them (a noise lead-in and tail, +-20 dB gain, and some copies noise alone), for "
        "keyword spotting with <name>_detect (default: %(default)s)",
    )
    parser.add_argument(
        "--audio-augment-params",
        default=d["audio_augment_params"],
        metavar="KEY=VALUE,...",
        help="wav:DIR: the augmented copies' settings over the defaults: gain_db (+-dB), "
        "snr_db (LO:HI), shift_ms, speed (LO:HI resampling factor; 1:1 off), freq_masks and "
        "freq_mask_width (bands), time_masks and time_mask_hops (SpecAugment-style masks of "
        "the copies' features; 0 off) (default: gain_db=20,snr_db=10:40,shift_ms=100,"
        "speed=0.85:1.15,freq_masks=0,freq_mask_width=4,time_masks=0,time_mask_hops=5)",
    )


def _add_quant_arguments(parser: argparse.ArgumentParser) -> None:
    """--qat, --qat-epochs, --weights: fine-tuning on the export's weight grid."""
    d = DEFAULTS
    parser.add_argument(
        "--qat",
        action="store_true",
        help="after training, fine-tune on the weight grid the export uses (quantization-aware "
        "training: every batch runs on the quantized weights, the updates go to the float "
        "ones); the weights end on that grid (default: off)",
    )
    parser.add_argument(
        "--qat-epochs",
        type=_auto_int,
        default=d["qat_epochs"],
        help="with --qat: fine-tuning epochs; auto = a fifth of the training epochs, 5 to 40 "
        "(default: auto)",
    )
    parser.add_argument(
        "--weights",
        choices=("int8", "int4"),
        default=d["weights"],
        help="the weight type EXPORT.txt exports to (and --qat fine-tunes for) "
        "(default: %(default)s)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--quiet, --strict, --force."""
    parser.add_argument("--quiet", action="store_true", help="no progress line, only the summary")
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {EXIT_WARNED} when the model looks useless (at chance level, or outputs that "
        "barely move); the run folder is written either way",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace --out if it exists and is not empty"
    )


def _error(message: str) -> int:
    print(f"rnn2c train: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


_FLAGS = (
    "task",
    "cell",
    "units",
    "layers",
    "dropout",
    "noise",
    "steps",
    "epochs",
    "batch_size",
    "lr",
    "label_smoothing",
    "seed",
    "val_split",
    "patience",
    "augment",
    "frame",
    "log_inputs",
    "window",
    "horizon",
    "season",
    "frontend",
    "conv_filters",
    "conv_kernel",
    "conv_stride",
    "pool",
    "pool_size",
    "bidirectional",
    "activations",
    "features",
    "feature_params",
    "split_by",
    "test_speaker",
    "audio_augment",
    "audio_context",
    "audio_augment_params",
    "qat",
    "qat_epochs",
    "weights",
    "embedding_dim",
)
#: the architecture flags that only apply with --frontend conv (left out of the command
#: line without it)
_CONV_FLAGS = ("conv_filters", "conv_kernel", "conv_stride", "pool", "pool_size")
#: spelled out in the recorded command only for a run with a front end
_AUDIO_FLAGS = (
    "features",
    "feature_params",
    "split_by",
    "test_speaker",
    "audio_augment",
    "audio_context",
    "audio_augment_params",
)


#: the flags of --task seq2seq (the others do not apply to its model and are refused)
_SEQ2SEQ_FLAGS = (
    "task",
    "cell",
    "units",
    "embedding_dim",
    "attention",
    "steps",
    "epochs",
    "batch_size",
    "lr",
    "label_smoothing",
    "seed",
    "val_split",
    "patience",
    "qat",
    "qat_epochs",
)
#: flags whose default depends on the task (None on the command line: not given)
_PER_TASK = ("units", "dropout", "steps", "batch_size", "patience")
_SEQ2SEQ_ONLY = ("attention",)


def command_line(args: argparse.Namespace) -> str:
    """The full `rnn2c train` command (every flag spelled out) that reproduces ``args``."""
    parts = ["rnn2c", "train", "--dataset", str(args.dataset), "--out", str(args.out)]
    seq2seq = getattr(args, "task", None) == "seq2seq"
    conv = getattr(args, "frontend", "none") == "conv"
    audio = getattr(args, "features", "none") != "none"
    for flag in _SEQ2SEQ_FLAGS if seq2seq else _FLAGS:
        if flag in _AUDIO_FLAGS and not audio:
            continue
        value = getattr(args, flag, (SEQ2SEQ_DEFAULTS if seq2seq else DEFAULTS).get(flag))
        if isinstance(value, bool):  # a switch: spelled out when on
            parts += [f"--{flag.replace('_', '-')}"] if value else []
            continue
        if flag in _CONV_FLAGS and not conv:
            continue
        if flag == "embedding_dim" and value is None:  # not a token model, or the default
            continue
        parts += [f"--{flag.replace('_', '-')}", "auto" if value is None else str(value)]
    return shlex.join(parts)


def _qat_line(info: dict[str, Any]) -> str:
    """The summary line of a --qat run: its fine-tuning and how close the model it leaves is to
    the integer model of its export."""
    line = f"qat: {info['epochs_run']} epochs on the {info['weights']} weight grid"
    if "selection" in info:
        line += f"; {info['selection']['kept']}"
    test = info.get("test")
    if not test:
        return line
    if "float_accuracy_after" in test:
        figs = [
            (k, 100 * test[f"{k}_accuracy_{w}"])
            for k in ("float", "int")
            for w in ("before", "after")
        ]
        what, fmt = "accuracy", "{:.2f} %"
    else:
        figs = [(k, test[f"{k}_mae_{w}"]) for k in ("float", "int") for w in ("before", "after")]
        what, fmt = "MAE", "{:.4g}"
    (_, fb), (_, fa), (_, ib), (_, ia) = figs
    line += (
        f"; test {what} before -> after: float {fmt.format(fb)} -> {fmt.format(fa)}, "
        f"{info['weights']} C (integer model) {fmt.format(ib)} -> {fmt.format(ia)}; after: max "
        f"|float - C| {test['max_error']:.4g} ({100 * test['max_error_of_range']:.2f} % of the "
        "range)"
    )
    if "same_class" in test:
        line += f", same class at {100 * test['same_class']:.1f} % of steps"
    if "forward_vs_c" in test:
        from rnn2c.qat import forward_words

        line += "; " + forward_words(test["forward_vs_c"])
    return line


def _task_defaults(args: argparse.Namespace) -> str | None:
    """Fill in the flags whose default depends on --task; the error line for a flag that does
    not apply to the task, else None."""
    task = getattr(args, "task", DEFAULTS["task"])
    if task == "seq2seq":
        if getattr(args, "dropout", None) is not None:
            return "--dropout: --task seq2seq has no Dropout layer (the exporter's seq2seq model)"
        if getattr(args, "layers", 1) != 1:
            return f"--layers {args.layers}: --task seq2seq has one encoder and one decoder layer"
        for flag in (
            "noise",
            "augment",
            "frame",
            "log_inputs",
            "window",
            "horizon",
            "frontend",
            *_CONV_FLAGS,
            "bidirectional",
            "activations",
            "weights",
            "features",
        ):
            if getattr(args, flag, DEFAULTS[flag]) != DEFAULTS[flag]:
                return f"--{flag.replace('_', '-')} does not apply to --task seq2seq"
        if getattr(args, "season", None) is not None:
            return "--season does not apply to --task seq2seq"
        args.dropout = 0.0
        if getattr(args, "dataset", None) is None:
            args.dataset = SEQ2SEQ_DEFAULTS["dataset"]
        for flag in (*_PER_TASK, *_SEQ2SEQ_ONLY, "embedding_dim"):
            if flag != "dropout" and getattr(args, flag, None) is None:
                setattr(args, flag, SEQ2SEQ_DEFAULTS[flag])
        return None
    for flag in _SEQ2SEQ_ONLY:
        if getattr(args, flag, None) is not None:
            return f"--{flag.replace('_', '-')} applies to --task seq2seq only"
    if getattr(args, "frontend", "none") != "conv":
        for flag in _CONV_FLAGS:
            if getattr(args, flag, DEFAULTS[flag]) != DEFAULTS[flag]:
                return f"--{flag.replace('_', '-')} applies with --frontend conv only"
    if getattr(args, "dataset", None) is None:
        return "--dataset is required for --task " + task + " (e.g. --dataset uea:BasicMotions)"
    for flag in _PER_TASK:
        if getattr(args, flag, None) is None:
            setattr(args, flag, DEFAULTS[flag])
    return None


def main(args: argparse.Namespace) -> int:
    """Run `rnn2c train`; return the exit status (0 ok, 1 useless model under --strict, 2 bad
    input). Ctrl-C during training keeps the best epoch so far and writes the run folder."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    problem = _task_defaults(args)
    if problem:
        return _error(problem)
    if args.task == "seq2seq":
        return _seq2seq(args)

    kw = {f: getattr(args, f, DEFAULTS.get(f)) for f in _FLAGS if f not in _AUDIO_FLAGS}
    audio = AudioSettings(*(getattr(args, f, DEFAULTS[f]) for f in _AUDIO_FLAGS))
    try:
        metrics = train_run(
            args.dataset,
            args.out,
            force=getattr(args, "force", False),
            command=command_line(args),
            verbose=0 if getattr(args, "quiet", False) else 1,
            audio=audio,
            **kw,
        )
    except (DatasetError, ConfigError, RunError) as exc:
        return _error(str(exc))
    task = metrics["task"]
    frame = f", {metrics['frame']} samples per step" if metrics["frame"] > 1 else ""
    if metrics.get("input_transform"):
        frame += f", inputs {metrics['input_transform']}(x)"
    stop = (
        f"interrupted after {metrics['epochs_run']} epochs (kept best {metrics['best_epoch']})"
        if metrics["interrupted"]
        else f"{metrics['epochs_run']} epochs (best {metrics['best_epoch']})"
    )
    print(
        f"{metrics['dataset']} ({task}): {metrics['cell'].upper()}({metrics['units']}) "
        f"x{metrics['layers']}{frame}, {stop}, {metrics['train_seconds']:.0f} s"
    )
    if task in ("classify", "tag"):
        unit = " per step" if task == "tag" else ""
        print(
            f"float test accuracy{unit}: {metrics['float_test_accuracy']:.4f} "
            f"(most frequent class: {metrics['majority_baseline']:.4f})"
        )
    else:
        base = ", ".join(
            f"{name.replace('_', ' ')} {b['mae']:.4g}" for name, b in metrics["baselines"].items()
        )
        print(
            f"float test MAE {metrics['float_test_mae']:.4g}, RMSE "
            f"{metrics['float_test_rmse']:.4g} (baselines MAE: {base})"
        )
    if "qat" in metrics:
        print(_qat_line(metrics["qat"]))
    for warning in metrics["warnings"]:
        print(f"WARNING: {warning}")
    print(f"run folder: {args.out}")
    print("export and verify with:")
    for cmd in run_export_commands(args.out, metrics):
        print(f"  {cmd}")
    if metrics["warnings"] and getattr(args, "strict", False):
        print("rnn2c train: --strict: the model looks useless (see WARNING above)", file=sys.stderr)
        return EXIT_WARNED
    return 0


def _seq2seq(args: argparse.Namespace) -> int:
    kw = {f: getattr(args, f) for f in _SEQ2SEQ_FLAGS if f != "task"}
    try:
        metrics = train_seq2seq(
            args.dataset,
            args.out,
            force=getattr(args, "force", False),
            command=command_line(args),
            verbose=0 if getattr(args, "quiet", False) else 1,
            **kw,
        )
    except (DatasetError, ConfigError, RunError) as exc:
        return _error(str(exc))
    print("\n".join(summary_lines(metrics, str(args.out))))
    if metrics["warnings"] and getattr(args, "strict", False):
        print("rnn2c train: --strict: the model looks useless (see WARNING above)", file=sys.stderr)
        return EXIT_WARNED
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m rnn2c.train.cli`
    _parser = argparse.ArgumentParser(prog="rnn2c train")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
