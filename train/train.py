"""`rnn2c train`: fit a small recurrent model and write a run folder.

The run folder holds everything the later steps need::

    model.keras    the trained Keras model (normalization inside; no Masking: the C and
                   `verify` run each sequence up to its real length)
    calib.npz      x: raw padded training sequences for int8 calibration, lengths
    test.npz       x: raw padded test sequences, y: labels or targets, lengths (rnn2c verify)
    metrics.json   dataset, task, architecture, test figures, baselines, warnings, ...
    curves.png     loss and accuracy (or MAE) per epoch
    confusion.png  classify, tag: test confusion matrix
    timeline.png   tag: true and predicted label at every step of a few test streams
    scatter.png    regress: predicted against true targets
    forecast.png   forecast: the forecast against the truth over the test part
    EXPORT.txt     the rnn2c export / verify commands for this run

Every file goes through :class:`rnn2c.outdir.OwnedFolder`, so a failed or killed run leaves the
previous run folder complete. Ctrl-C stops training, keeps the best epoch so far and writes the
run folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c import __version__
from rnn2c import qat as qaware
from rnn2c.export.ir import ExportError
from rnn2c.interface import python_api
from rnn2c.outdir import OutputError, OwnedFolder

from .audio import AudioSettings, audio_export_text, check_audio, load_audio
from .data import (
    TASKS,
    Dataset,
    DatasetError,
    Series,
    frame_labels,
    frame_sequences,
    load_dataset,
    load_series,
    seasonal_period,
)
from .model import (
    ConfigError,
    FrontEnd,
    Models,
    build_models,
    check_config,
    length_mask,
    real_steps,
)

__all__ = [
    "DEFAULTS",
    "RunError",
    "check_architecture",
    "export_commands",
    "forecast_windows",
    "run_export_commands",
    "run_files",
    "stratified_split",
    "train_run",
]

# Defaults (README, "Training defaults", and benchmarks/train_sweep.py for the figures):
#
# * no validation split: on the small sets people deploy (36..270 training sequences), a 20 %
#   split is 7..54 sequences whose accuracy is too noisy to pick an epoch or stop on (the
#   failure that issue 14 reports: validation at chance from epoch 1). Instead a fixed budget of
#   optimizer steps under a warm-up + cosine learning-rate schedule, keeping the epoch with the
#   lowest training loss (the last ones, as the rate decays). --val-split brings back
#   best-epoch selection and early stopping on a held-out split.
# * augmentation of the training batches when the training set is small (< AUGMENT_BELOW
#   sequences): per-channel scaling, jitter, and window shifts (a crop of up to 10 % at each end).
# * long sequences are framed: when the longest sequence has more than FRAME_ABOVE steps, k
#   consecutive samples become one step of k*F features (k = ceil(T / FRAME_TARGET)); the C is
#   then stepped once per k samples.
DEFAULTS: dict[str, Any] = {
    "task": "classify",
    "cell": "gru",
    "units": 32,
    "layers": 1,
    "dropout": 0.3,
    "noise": 0.0,
    "epochs": None,  # auto: from the step budget
    "steps": 3000,
    "batch_size": 16,
    "lr": 3e-3,
    "seed": 0,
    "val_split": 0.0,
    "patience": 60,
    "augment": "auto",
    "frame": None,  # auto
    "log_inputs": "auto",
    "label_smoothing": 0.1,
    "window": None,  # auto (forecast)
    "horizon": 1,
    "season": None,  # auto (forecast)
    "calib_size": 200,
    # the architecture beyond cell/units/layers (model.FrontEnd, Bidirectional)
    "frontend": "none",
    "conv_filters": 16,
    "conv_kernel": 3,
    "conv_stride": 1,
    "pool": "none",
    "pool_size": 2,
    "bidirectional": False,
    # passed through to EXPORT.txt's export line (train itself is float)
    "activations": "int8",
    # wav:DIR (train/audio.py): the front end, the split and the waveform augmentation
    "features": "none",
    "feature_params": "",
    "split_by": "speaker",
    "test_speaker": None,  # --split-by speaker: the last speaker in sorted order
    "audio_augment": 1,
    "audio_context": "word",
    "audio_augment_params": "",
    "qat": False,  # fine-tune on the export's weight grid after training (rnn2c.qat)
    "qat_epochs": None,  # auto: a fifth of the training epochs, QAT_MIN_EPOCHS..QAT_MAX_EPOCHS
    "weights": "int8",  # the weight type EXPORT.txt exports to (and --qat trains for)
    "embedding_dim": None,  # token datasets: the Embedding's width (None: EMBEDDING_DIM)
}
#: the Embedding width of a token model when --embedding-dim is not given
EMBEDDING_DIM = 16
QAT_MIN_EPOCHS, QAT_MAX_EPOCHS = 5, 40
#: the fine-tuning learning rate, as a fraction of --lr (a cosine down to a tenth of it)
QAT_LR_FACTOR = 0.1
#: the calibration method a --qat run's grid and EXPORT.txt's export line use (the input
#: scale sets the first layer's grid, so the export must choose it as the fine-tuning did)
QAT_CALIBRATION = "minmax"
FRONTENDS = ("none", "conv")
ACTIVATIONS = ("int8", "int16")

CLIPNORM = 1.0
WARMUP_FRACTION = 0.05  # of the optimizer steps: learning rate lr/10 -> lr
LR_MIN_FACTOR = 0.01  # the cosine ends at lr * LR_MIN_FACTOR
MIN_EPOCHS, MAX_EPOCHS = 20, 1000  # bounds of the automatic epoch count
AUGMENT_BELOW = 1000  # augment by default below this many training sequences
AUGMENT = {"scale": 0.1, "jitter": 0.03, "shift": 0.1}
FRAME_ABOVE, FRAME_TARGET = 128, 64
LOG_SPAN = 100.0  # auto log1p: non-negative inputs whose max exceeds this x their median nonzero
SMALL_VAL = 30  # a validation split smaller than this is warned about
TEST_FRACTION = 0.2  # forecast: the last fifth of a series is the test part


class RunError(ValueError):
    """The run folder cannot be written (e.g. it exists already). One-line message."""


def stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)``: about ``fraction`` of each class goes to validation (at least
    one sample of every class that has two or more), the rest to training."""
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    if fraction <= 0.0:
        return np.arange(len(y)), np.zeros(0, dtype=np.int64)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = int(round(fraction * len(idx)))
        n_val = min(max(n_val, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def best_checkpoint_callback(
    keras: Any,
    patience: int,
    has_val: bool,
    by_accuracy: bool = True,
    early_stop: bool | None = None,
    monitor: str | None = None,
    keys: tuple[str, str] = ("accuracy", "loss"),
) -> Any:
    """A callback that keeps the weights of the best epoch (restored when training ends, and
    readable as ``best_weights`` after an interrupt) and, with ``early_stop``, stops after
    ``patience`` epochs without a better one.

    With a validation split, "best" is the highest validation accuracy, ties broken by the
    lowest validation loss (``by_accuracy``; regression: the lowest validation loss). Without
    one, it is the lowest training loss; early stopping then defaults to off. monitor: the
    prefix of the logs to judge by instead ("sel_": a selection callback's), accuracy first
    as with a validation split; keys: the names of the figures judged (higher is better,
    lower is better). ``start(model, logs)`` before training makes the model's weights then a
    candidate judged by ``logs`` ("epoch 0", best_epoch -1).
    """
    prefix = monitor if monitor is not None else "val_" if has_val else ""
    use_acc = by_accuracy and (has_val or monitor is not None)
    acc_key, loss_key = prefix + keys[0], prefix + keys[1]
    stop = has_val if early_stop is None else early_stop

    class BestCheckpoint(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: tuple[float, float] | None = None
            self.best_epoch = -1
            self.best_weights: list[np.ndarray] | None = None
            self.best_logs: dict[str, float] = {}
            self.wait = 0
            self.epochs_seen = 0
            self.history: dict[str, list[float]] = {}
            self.start_logs: dict[str, float] | None = None

        def start(self, model: Any, logs: dict[str, float]) -> None:
            self.best = self.key(logs)
            self.best_weights = [np.array(w) for w in model.get_weights()]
            self.best_logs = self.start_logs = dict(logs)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            self.epochs_seen = epoch + 1
            for k, v in logs.items():
                self.history.setdefault(k, []).append(float(v))
            key = self.key(logs)
            if self.best is None or key > self.best:
                self.best = key
                self.best_epoch = epoch
                self.best_weights = [np.array(w) for w in self.model.get_weights()]
                self.best_logs = {k: float(v) for k, v in logs.items()}
                self.wait = 0
            else:
                self.wait += 1
                if stop and self.wait > patience:
                    self.model.stop_training = True

        def key(self, logs: dict[str, Any]) -> tuple[float, float]:
            acc = float(logs.get(acc_key, 0.0)) if use_acc else 0.0
            loss = float(logs.get(loss_key, np.inf))
            if not np.isfinite(loss):
                loss = np.inf
            # Accuracies are multiples of 1/n; round away float noise before comparing.
            return (round(acc, 6), -loss)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.restore()

        def restore(self) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return BestCheckpoint()


def progress_callback(keras: Any, epochs: int, stopper: Any, stream: Any, every: int) -> Any:
    """One line per epoch with the best epoch so far: updated in place on a terminal
    (carriage return), else printed every ``every`` epochs and at each new best."""
    tty = bool(getattr(stream, "isatty", lambda: False)())

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = time.perf_counter()
            self.width = 0
            self.last_best = -1

        def line(self, epoch: int, logs: dict[str, Any]) -> str:
            parts = [f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}"]
            for key in ("loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae"):
                if key in logs:
                    parts.append(f"{key} {float(logs[key]):.4f}")
            if stopper.best_epoch >= 0:
                parts.append(f"best {stopper.best_epoch + 1}")
            lr = getattr(self.model.optimizer, "learning_rate", None)
            try:
                parts.append(f"lr {float(np.asarray(lr)):.1e}")
            except (TypeError, ValueError):
                pass
            parts.append(f"{time.perf_counter() - self.t0:.0f} s")
            return "  ".join(parts)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            text = self.line(epoch, logs or {})
            if tty:
                pad = max(0, self.width - len(text))
                stream.write("\r" + text + " " * pad)
                self.width = len(text)
            elif (epoch + 1) % every == 0 or epoch == 0 or epoch + 1 == epochs:
                stream.write(text + "\n")
            stream.flush()

        def finish(self) -> None:
            if tty and self.width:
                stream.write("\n")
                stream.flush()
                self.width = 0

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.finish()

    return Progress()


def fit_keeping_best(fit: Any, stopper: Any, progress: Any) -> tuple[bool, float]:
    """Run fit() (a Keras fit with the best-checkpoint callback `stopper`); Ctrl-C after at
    least one finished epoch stops training and keeps its best weights. Returns (interrupted,
    seconds)."""
    t0 = time.perf_counter()
    try:
        fit()
    except KeyboardInterrupt:
        if progress is not None:
            progress.finish()
        if stopper.best_weights is None:
            raise  # not one epoch finished: nothing worth keeping
        stopper.restore()
        return True, time.perf_counter() - t0
    return False, time.perf_counter() - t0


def export_flags(metrics: dict[str, Any]) -> list[str]:
    """The export flags a run asks for beyond the defaults: a forecaster's declared ranges
    (:func:`forecast_ranges`; written --flag=VALUE, as a range may start with '-'), its
    --weights, and for a --qat run the calibration its fine-tuning used (the input scale sets
    the first layer's grid); a Bidirectional model's --max-length (the longest framed
    sequence) and the --activations a run names."""
    out = []
    declared = metrics.get("declared_ranges")
    if declared:
        out += [f"--input-range={declared['input_range']}"]
        out += [f"--output-range={declared['output_range']}"]
    if metrics.get("weights", "int8") != "int8":
        out += ["--weights", str(metrics["weights"])]
    if "qat" in metrics:
        out += ["--calibration", str(metrics["qat"]["calibration"])]
    if metrics.get("bidirectional"):
        out += ["--max-length", str(metrics["max_length"])]
    if metrics.get("activations", "int8") != "int8":
        out += ["--activations", str(metrics["activations"])]
    return out


def export_commands(
    run_dir: str | os.PathLike[str],
    extra: Sequence[str] = (),
    stream: bool = True,
    frontend: bool = False,
    tokens: bool = False,
) -> list[str]:
    """The commands that export and verify the run in ``run_dir`` (``extra``: more export
    flags, :func:`export_flags`; ``stream``: the verify line runs a 10,000-step stream, which a
    whole-sequence model cannot; ``frontend``: a ``wav:DIR`` run, whose export takes its
    frontend.json).

    The model takes raw channels (its Normalization is folded at export), whose ranges differ
    per channel, so the export quantizes the input per feature; a token model (``tokens``)
    takes ids into its Embedding, which have no input scale.
    """
    run = str(run_dir).rstrip("/") or "/"

    def q(p: str) -> str:
        return shlex.quote(p)

    return [
        f"rnn2c export {q(run + '/model.keras')} --calib {q(run + '/calib.npz')} "
        f"--out {q(run + '/c')} --name model"
        + ("" if tokens else " --input-quant per-feature")
        + "".join(f" {q(f)}" for f in extra)
        + (f" --frontend {q(run + '/frontend.json')}" if frontend else ""),
        f"rnn2c verify {q(run + '/model.keras')} {q(run + '/c')} --data {q(run + '/test.npz')}"
        + (" --stream 10000" if stream else ""),
    ]


def run_export_commands(run_dir: str | os.PathLike[str], metrics: dict[str, Any]) -> list[str]:
    """:func:`export_commands` for a run whose metrics.json is ``metrics``."""
    return export_commands(
        run_dir,
        export_flags(metrics),
        stream=not metrics.get("bidirectional"),
        frontend=metrics.get("audio_frontend") is not None,
        tokens=metrics.get("tokens") is not None,
    )


def check_architecture(task: str, frontend: str, fe: FrontEnd, activations: str) -> None:
    """ConfigError (one line) for a front end or state precision out of range."""
    if frontend not in FRONTENDS:
        raise ConfigError(f"--frontend {frontend!r}; expected one of {', '.join(FRONTENDS)}")
    if frontend == "conv":
        fe.check(task)
    if activations not in ACTIVATIONS:
        raise ConfigError(f"--activations {activations!r}; expected int8 or int16")


def forecast_ranges(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Per feature of a forecast series, the range (lo, hi) a forecaster meets past its training
    part: the training part's range, moved on the side the series trends by the trend's change
    over the test part's span (how far past its training data the model runs). The trend is a
    least-squares line through the values and, for a positive feature, also through
    log(values) (growth by a factor per step, which also widens a seasonal swing, as passenger
    counts and sales do): the wider of the two ranges. A series without a trend keeps its
    training range."""
    train = np.asarray(series.values[: series.test_start], dtype=np.float64)
    span = len(series.values) - series.test_start
    t = np.arange(len(train), dtype=np.float64)
    lo, hi = train.min(axis=0), train.max(axis=0)
    for f in range(train.shape[1]):
        col = train[:, f]
        rise = float(np.polyfit(t, col, 1)[0]) * span
        a, b = lo[f] + min(rise, 0.0), hi[f] + max(rise, 0.0)
        if (col > 0).all():
            growth = math.exp(float(np.polyfit(t, np.log(col), 1)[0]) * span)
            a, b = min(a, lo[f] * min(growth, 1.0)), max(b, hi[f] * max(growth, 1.0))
        lo[f], hi[f] = a, b
    return lo, hi


def _outward(lo: float, hi: float) -> tuple[str, str]:
    """lo and hi as short decimals, rounded outward (to a thousandth of the range)."""
    step = 10.0 ** (math.floor(math.log10(hi - lo)) - 3)
    digits = max(0, -math.floor(math.log10(step)))
    return (
        f"{math.floor(lo / step) * step:.{digits}f}",
        f"{math.ceil(hi / step) * step:.{digits}f}",
    )


def range_flags(
    lo: np.ndarray, hi: np.ndarray, frame: int, use_log: bool
) -> tuple[str, str] | None:
    """The --input-range and --output-range values for a forecaster of a series with
    per-feature ranges [lo, hi] (forecast_ranges): the input per feature (a framed step holds
    ``frame`` samples of every feature; log1p inputs in log1p units), the output one range (its
    targets are the features' next values, one int8 scale). None where a feature is constant."""
    if not (hi > lo).all():
        return None
    pairs = [_outward(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]
    if use_log:
        pairs = [
            _outward(math.log1p(max(float(a), 0.0)), math.log1p(max(float(b), 0.0)))
            for a, b in zip(lo, hi, strict=True)
        ]
    if len(pairs) == 1:
        inp = f"{pairs[0][0]}:{pairs[0][1]}"
    else:
        inp = ",".join(
            f"{s * len(pairs) + f}:{a}:{b}" for s in range(frame) for f, (a, b) in enumerate(pairs)
        )
    out = _outward(float(lo.min()), float(hi.max()))
    return inp, f"{out[0]}:{out[1]}"


def check_schedule(
    epochs: int | None,
    steps: int,
    batch_size: int,
    lr: float,
    val_split: float,
    patience: int,
    seed: int,
) -> None:
    """ConfigError (one line) for an optimizer setting out of range (every task)."""
    if epochs is not None and not 1 <= epochs <= 100_000:
        raise ConfigError(f"--epochs {epochs}; expected an integer from 1 to 100000")
    if not 1 <= steps <= 10_000_000:
        raise ConfigError(f"--steps {steps}; expected a positive number of optimizer steps")
    if not 1 <= batch_size <= 1_000_000:
        raise ConfigError(f"--batch-size {batch_size}; expected a positive integer")
    if not (lr > 0.0 and np.isfinite(lr)):
        raise ConfigError(f"--lr {lr}; expected a positive learning rate such as 0.003")
    if not 0.0 <= val_split < 1.0:
        raise ConfigError(f"--val-split {val_split}; expected a fraction in [0, 1), e.g. 0.2")
    if patience < 0:
        raise ConfigError(f"--patience {patience}; expected 0 or a positive number of epochs")
    if not 0 <= seed < 2**32:
        raise ConfigError(f"--seed {seed}; expected an integer from 0 to 4294967295")


def check_qat(qat: bool, qat_epochs: int | None, weights: str) -> None:
    """One-line ConfigErrors for the fine-tuning flags."""
    if weights not in qaware.WEIGHT_QMAX:
        raise ConfigError(f"--weights {weights}: expected one of {', '.join(qaware.WEIGHT_QMAX)}")
    if qat_epochs is not None and (not qat or qat_epochs < 1):
        raise ConfigError(
            f"--qat-epochs {qat_epochs}: expected a positive count of fine-tuning epochs, "
            "with --qat"
            if qat
            else f"--qat-epochs {qat_epochs} applies with --qat only; add --qat"
        )


def _check_training_config(
    epochs: int | None,
    batch_size: int,
    lr: float,
    val_split: float,
    patience: int,
    calib_size: int,
    seed: int = 0,
    noise: float = 0.0,
    steps: int = 1,
    frame: int | None = None,
    task: str = "classify",
    window: int | None = None,
    horizon: int = 1,
    season: int | None = None,
    augment: str | bool = "auto",
    log_inputs: str = "auto",
    label_smoothing: float = 0.0,
) -> None:
    if not (np.isfinite(label_smoothing) and 0.0 <= label_smoothing < 1.0):
        raise ConfigError(
            f"--label-smoothing {label_smoothing}; expected a fraction in [0, 1), e.g. 0.1"
        )
    if log_inputs not in ("auto", "on", "off"):
        raise ConfigError(f"--log-inputs {log_inputs!r}; expected auto, on or off")
    if task not in TASKS:
        raise ConfigError(f"--task {task!r}; expected one of {', '.join(TASKS)}")
    check_schedule(epochs, steps, batch_size, lr, val_split, patience, seed)
    if not (np.isfinite(noise) and 0.0 <= noise <= 10.0):
        raise ConfigError(f"--noise {noise}; expected a standard deviation from 0 to 10, e.g. 0.1")
    if frame is not None and not 1 <= frame <= 4096:
        raise ConfigError(f"--frame {frame}; expected samples per step from 1 to 4096")
    if window is not None and not 2 <= window <= 100_000:
        raise ConfigError(f"--window {window}; expected a window of at least 2 steps")
    if not 1 <= horizon <= 10_000:
        raise ConfigError(f"--horizon {horizon}; expected a positive number of steps ahead")
    if season is not None and not 1 <= season <= 1_000_000:
        raise ConfigError(f"--season {season}; expected a positive period in steps")
    if augment not in ("auto", "on", "off", True, False):
        raise ConfigError(f"--augment {augment!r}; expected auto, on or off")
    if calib_size < 1:
        raise ConfigError(f"calib_size {calib_size}; expected a positive number of sequences")


#: the run folder's manifest: the files a run owns (see rnn2c.outdir)
RUN_MANIFEST = "rnn2c-run.json"
_COMMON_FILES = ("model.keras", "calib.npz", "test.npz", "metrics.json")
_TASK_PLOTS = {
    "classify": ("confusion.png", "curves.png"),
    "tag": ("confusion.png", "curves.png", "timeline.png"),
    "regress": ("scatter.png", "curves.png"),
    "forecast": ("forecast.png", "curves.png"),
    "seq2seq": ("curves.png", "attention.png"),  # train/seq2seq_train.py
}


def run_files(task: str = "classify", frontend: bool = False) -> tuple[str, ...]:
    """The files a run folder of ``task`` holds (besides its manifest); ``frontend``: a
    ``wav:DIR`` run, which carries its front end's definition too."""
    return (
        *_COMMON_FILES,
        *_TASK_PLOTS[task],
        *(("frontend.json",) if frontend else ()),
        "EXPORT.txt",
    )


RUN_FILES = run_files("classify")


@dataclass
class _Data:
    """A task's arrays at sample resolution (framing happens per batch and for the files)."""

    ds: Dataset
    frame: int
    #: forecast only: the series, window, horizon, season and the baselines on the test windows
    series: Series | None = None
    window: int = 0
    horizon: int = 0
    season: int = 0
    baselines: dict[str, np.ndarray] | None = None
    #: wav:DIR only: the front end's definition (frontend.json) and the split's description
    frontend: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None


def forecast_windows(
    values: np.ndarray, test_start: int, window: int, horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows of ``window`` steps from one series and the ``horizon`` values after each.

    Training windows end (with their targets) before ``test_start``; test windows have every
    target at or after it (their inputs may reach back into the training part, as a deployed
    model's history does). Returns ``x_train, y_train, x_test, y_test, test_ends`` with ``x``
    ``[N, window, F]``, ``y`` ``[N, horizon * F]`` (step-major), and the index of each test
    window's last step.
    """
    s, f = values.shape
    ends_tr = np.arange(window - 1, test_start - horizon)
    ends_te = np.arange(max(window - 1, test_start - 1), s - horizon)
    if ends_tr.size < 2 or ends_te.size < 1:
        raise DatasetError(
            f"a series of {s} values ({test_start} for training) is too short for windows of "
            f"{window} steps and a horizon of {horizon}; use a shorter --window"
        )

    def cut(ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([values[e - window + 1 : e + 1] for e in ends])
        y = np.stack([values[e + 1 : e + 1 + horizon].reshape(-1) for e in ends])
        return x.astype(np.float32), y.astype(np.float32)

    xtr, ytr = cut(ends_tr)
    xte, yte = cut(ends_te)
    return xtr, ytr, xte, yte, ends_te


#: forecast: the fewest training and test windows a series must give (a model trained on
#: fewer learns nothing; its test figures say nothing)
MIN_TRAIN_WINDOWS, MIN_TEST_WINDOWS = 16, 4


def auto_window(test_start: int, season: int) -> int:
    """The window --window auto takes: max(24, 2 * season), at most a third of the training
    part, at least 2."""
    return max(2, min(max(24, 2 * season), test_start // 3))


def window_counts(s: int, test_start: int, window: int, horizon: int) -> tuple[int, int]:
    """(training windows, test windows) forecast_windows cuts from a series of s values."""
    train = test_start - horizon - window + 1
    test = s - horizon - max(window - 1, test_start - 1)
    return max(train, 0), max(test, 0)


def _window(window: int | None, test_start: int, season: int) -> int:
    return window if window is not None else auto_window(test_start, season)


def check_series_length(series: Series, window: int | None, horizon: int, season: int) -> int:
    """The window to use; DatasetError (one line, before any training) for a series too short
    to give MIN_TRAIN_WINDOWS training and MIN_TEST_WINDOWS test windows, with the length it
    would need."""
    s, start = len(series.values), series.test_start
    w = _window(window, start, season)
    n_train, n_test = window_counts(s, start, w, horizon)
    if n_train >= MIN_TRAIN_WINDOWS and n_test >= MIN_TEST_WINDOWS:
        return w
    asked = f"--window {w}" if window is not None else f"windows of {w} steps (--window auto)"
    if series.split_given:
        train = start  # the training windows grow with the training part (and the auto window)
        while train - horizon - _window(window, train, season) + 1 < MIN_TRAIN_WINDOWS:
            train += 1
        w_train = _window(window, train, season)
        test = MIN_TEST_WINDOWS + horizon + max(w_train - 1, train - 1) - train
        need = (
            f"give at least {train} training values (series) and "
            f"{max(test, s - start)} test values (series_test)"
        )
    else:
        longer = s + 1
        while True:  # the split and the auto window grow with the series
            t = int(round(longer * (1.0 - TEST_FRACTION)))
            a, b = window_counts(longer, t, _window(window, t, season), horizon)
            if a >= MIN_TRAIN_WINDOWS and b >= MIN_TEST_WINDOWS:
                break
            longer += 1
        need = f"give a series of at least {longer} values"
    shorter = ", or a shorter --window" if window is not None else ""
    raise DatasetError(
        f"{series.name}: a series of {s} values ({start} for training, {s - start} for "
        f"testing) is too short for {asked} and --horizon {horizon}: it gives {n_train} "
        f"training and {n_test} test windows, and training needs at least {MIN_TRAIN_WINDOWS} "
        f"and testing {MIN_TEST_WINDOWS}; {need}{shorter}"
    )


def _forecast_data(
    spec: str, window: int | None, horizon: int, season: int | None, frame: int | None
) -> _Data:
    series = load_series(spec, TEST_FRACTION)
    train_part = series.values[: series.test_start]
    m = season or seasonal_period(train_part)
    window = check_series_length(series, window, horizon, m)
    xtr, ytr, xte, yte, ends = forecast_windows(series.values, series.test_start, window, horizon)
    v = series.values
    f = v.shape[1]
    naive = np.tile(v[ends], (1, horizon))
    seasonal = np.concatenate(
        [v[ends + j - m * math.ceil(j / m)] if m >= 1 else v[ends] for j in range(1, horizon + 1)],
        axis=1,
    )
    mean = np.tile(train_part.mean(axis=0), (len(ends), horizon))
    names = [f"{n}[t+{j}]" for j in range(1, horizon + 1) for n in series.names]
    ds = Dataset(
        xtr,
        ytr,
        xte,
        yte,
        np.full(len(xtr), window, np.int64),
        np.full(len(xte), window, np.int64),
        [],
        series.name,
        "forecast",
        names,
    )
    del f
    return _Data(
        ds,
        frame or 1,
        series,
        window,
        horizon,
        m,
        {"naive": naive, "seasonal_naive": seasonal, "train_mean": mean},
    )


def _auto_frame(ds: Dataset, frame: int | None) -> int:
    if frame is not None:
        return frame
    if ds.task not in ("classify", "regress") or ds.vocab_size:
        return 1
    t = int(max(ds.lengths_train.max(), ds.lengths_test.max()))
    return 1 if t <= FRAME_ABOVE else math.ceil(t / FRAME_TARGET)


def _augment_batch(
    x: np.ndarray,
    lengths: np.ndarray,
    y: np.ndarray | None,
    rng: np.random.Generator,
    std: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per sequence: crop up to 10 % at each end (a window shift), scale each channel by
    N(1, 0.1), add N(0, 0.03 std) jitter. Per-step labels ``y`` [B, T] are cropped alike."""
    n, _, f = x.shape
    out = np.zeros_like(x)
    new_len = lengths.copy()
    y_out = np.zeros_like(y) if y is not None else None
    for j in range(n):
        length = int(lengths[j])
        m = int(AUGMENT["shift"] * length)
        s = int(rng.integers(0, m + 1)) if m else 0
        e = int(rng.integers(0, m + 1)) if m else 0
        seg = x[j, s : length - e]
        seg = seg * rng.normal(1.0, AUGMENT["scale"], size=(1, f)).astype(np.float32)
        seg = seg + rng.normal(0.0, AUGMENT["jitter"], size=seg.shape).astype(np.float32) * std
        out[j, : len(seg)] = seg
        new_len[j] = len(seg)
        if y is not None and y_out is not None:
            y_out[j, : len(seg)] = y[j, s : length - e]
    return out, new_len, y_out


def _framed(
    x: np.ndarray, lengths: np.ndarray, y: np.ndarray | None, k: int, per_step: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    xf, lf = frame_sequences(x, lengths, k)
    if per_step and y is not None:
        y = frame_labels(y, k)
    if xf.dtype.kind in "iu":  # token ids [N, T, 1] (k is 1): the Embedding's [N, T] int32
        return xf[..., 0].astype(np.int32), lf.astype(np.int64), y
    return xf.astype(np.float32), lf.astype(np.int64), y


def _batches(keras: Any, **kw: Any) -> Any:
    class Batches(keras.utils.PyDataset):
        """Shuffled, optionally augmented, framed batches ((x, mask), y[, step weights]).
        Deterministic: the shuffle and the augmentation of
        batch i of epoch e come from seed (seed, e, i)."""

        def __init__(
            self,
            x: np.ndarray,
            lengths: np.ndarray,
            y: np.ndarray,
            batch_size: int,
            frame: int,
            per_step: bool,
            augment: bool,
            std: np.ndarray,
            seed: int,
        ) -> None:
            super().__init__()
            self.x, self.lengths, self.y = x, lengths, y
            self.batch_size, self.frame, self.per_step = batch_size, frame, per_step
            self.augment, self.std, self.seed = augment, std, seed
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(len(x))

        def __len__(self) -> int:
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, i: int) -> Any:
            idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
            x, lengths = self.x[idx], self.lengths[idx]
            y = self.y[idx]
            if self.augment:
                rng = np.random.default_rng([self.seed, self.epoch, i, 1])
                x, lengths, y_step = _augment_batch(
                    x, lengths, y if self.per_step else None, rng, self.std
                )
                if self.per_step:
                    y = y_step
            xf, lf, y = _framed(x, lengths, y, self.frame, self.per_step)
            mask = length_mask(lf, xf.shape[1])  # every batch keeps the full padded length
            if self.per_step:
                return (xf, mask), y, mask.astype(np.float32)
            return (xf, mask), y

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    return Batches(**kw)


@python_api(dataset="dataset_spec", out="out_dir")
def train_run(
    dataset_spec: str | Dataset,
    out_dir: str | os.PathLike[str],
    cell: str = DEFAULTS["cell"],
    units: int = DEFAULTS["units"],
    layers: int = DEFAULTS["layers"],
    dropout: float = DEFAULTS["dropout"],
    noise: float = DEFAULTS["noise"],
    epochs: int | None = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    seed: int = DEFAULTS["seed"],
    val_split: float = DEFAULTS["val_split"],
    patience: int = DEFAULTS["patience"],
    calib_size: int = DEFAULTS["calib_size"],
    force: bool = False,
    command: str | None = None,
    verbose: int | None = None,
    task: str | None = None,
    steps: int = DEFAULTS["steps"],
    augment: str | bool = DEFAULTS["augment"],
    frame: int | None = DEFAULTS["frame"],
    window: int | None = DEFAULTS["window"],
    horizon: int = DEFAULTS["horizon"],
    season: int | None = DEFAULTS["season"],
    log_inputs: str = DEFAULTS["log_inputs"],
    label_smoothing: float = DEFAULTS["label_smoothing"],
    callbacks: list[Any] | None = None,
    frontend: str = DEFAULTS["frontend"],
    conv_filters: int = DEFAULTS["conv_filters"],
    conv_kernel: int = DEFAULTS["conv_kernel"],
    conv_stride: int = DEFAULTS["conv_stride"],
    pool: str = DEFAULTS["pool"],
    pool_size: int = DEFAULTS["pool_size"],
    bidirectional: bool = DEFAULTS["bidirectional"],
    activations: str = DEFAULTS["activations"],
    audio: AudioSettings | None = None,
    qat: bool = DEFAULTS["qat"],
    qat_epochs: int | None = DEFAULTS["qat_epochs"],
    weights: str = DEFAULTS["weights"],
    embedding_dim: int | None = DEFAULTS["embedding_dim"],
) -> dict[str, Any]:
    """Train a model on ``dataset_spec`` and write the run folder ``out_dir``.

    Args:
        dataset_spec: a spec for :func:`rnn2c.train.data.load_dataset` (or, for
            ``task="forecast"``, :func:`rnn2c.train.data.load_series`), or a loaded Dataset.
        out_dir: the run folder to create (must not exist or be empty, unless ``force``).
        task: ``classify`` (a class per sequence), ``regress`` (a value or vector per
            sequence), ``tag`` (a class per step), ``forecast`` (the next ``horizon`` values of
            a series from the ``window`` steps before). Default: the Dataset's, else classify.
        cell, units, layers, dropout: the architecture (see :func:`build_models`).
        noise: std of Gaussian noise added to the normalized inputs during training only.
        epochs: most epochs; None: enough for ``steps`` optimizer steps (20..1000 epochs).
        steps: the optimizer-step budget the learning-rate schedule spans (a 5 % warm-up from
            lr/10 to ``lr``, then a cosine down to lr/100) when ``epochs`` is None.
        batch_size, lr: Adam mini-batch size and peak learning rate (gradients clipped to
            global norm ``CLIPNORM``).
        seed: seeds Python, NumPy and TensorFlow; op determinism is on, so the same seed
            gives the same weights.
        val_split: fraction of the training set (stratified by class) held out to pick the best
            epoch (highest validation accuracy, then lowest loss) and to stop early after
            ``patience`` epochs without a better one. 0 (the default): no split; the epoch with
            the lowest training loss is kept and the whole schedule runs.
        augment: ``auto`` (on below ``AUGMENT_BELOW`` training sequences, never for forecast),
            ``on``/``off`` or a bool: scaling, jitter and window shifts of training batches.
        frame: samples per model step (None: auto, see ``FRAME_ABOVE``).
        label_smoothing: classify/tag: the cross-entropy target is (1 - s) on the class and
            s / K spread over all K classes.
        log_inputs: ``on`` trains on ``log1p(x)`` (the C then takes ``log1p`` of each raw
            sample too); ``auto`` does so when every input is >= 0 and spans more than
            ``LOG_SPAN`` x its median nonzero value (counts over several decades, which a linear
            int8 input scale cannot resolve); ``off`` never.
        window, horizon, season: forecast windows (None: auto, max(24, 2 * season)), steps
            ahead, and the seasonal-naive period (None: the series' autocorrelation peak).
        calib_size: most training sequences written to ``calib.npz``.
        force: replace an existing non-empty ``out_dir``.
        command: the command line recorded in metrics.json (default: ``sys.argv``).
        verbose: 0 prints nothing; otherwise one progress line per epoch on stderr.
        callbacks: extra Keras callbacks (tests).
        frontend: ``conv``: a causal Conv1D (``conv_filters`` filters of ``conv_kernel`` steps,
            stride ``conv_stride``, ReLU) before the recurrent layers, then a ``pool``
            (``max``/``avg``, window and stride ``pool_size``) unless ``none``.
        bidirectional: every recurrent layer a ``Bidirectional`` (concat): a whole-sequence
            model, exported with ``--max-length`` (the longest framed sequence).
        activations: written into EXPORT.txt's export line (``--activations int16``) and
            metrics.json; the training is float either way.
        audio: a ``wav:DIR`` dataset's front end, split and augmentation (classify only;
            :class:`rnn2c.train.audio.AudioSettings`, the flags --features and after).
        qat, qat_epochs, weights: fine-tune on the export's int8/int4 weight grid after
            training (:mod:`rnn2c.qat`); EXPORT.txt's export line asks for ``weights``.
        embedding_dim: a token dataset's Embedding width (None: ``EMBEDDING_DIM``); a token
            dataset (``[N, T]`` integer ids, :attr:`Dataset.vocab_size`) is trained as
            Embedding(V, E, mask_zero=True) -> the recurrent layers (classify, tag).

    Returns:
        The metrics written to ``metrics.json``; ``metrics["warnings"]`` lists why the model
        looks useless (at chance level, constant outputs), if it does.

    Raises:
        DatasetError, ConfigError, RunError: one-line messages, nothing written.
        KeyboardInterrupt: only when interrupted before the first epoch ended (nothing to keep).
    """
    if task is None:
        task = dataset_spec.task if isinstance(dataset_spec, Dataset) else "classify"
    if task == "seq2seq":
        raise ConfigError(
            "task seq2seq is trained by rnn2c.train.seq2seq_train.train_seq2seq (its own model "
            "and flags)"
        )
    fe = FrontEnd(conv_filters, conv_kernel, conv_stride, pool, pool_size)
    check_architecture(task, frontend, fe, activations)
    check_qat(qat, qat_epochs, weights)
    audio = check_audio(dataset_spec, task, audio or AudioSettings())
    settings = _Settings(
        task=task,
        cell=cell,
        units=units,
        layers=layers,
        dropout=dropout,
        noise=noise,
        epochs=epochs,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        val_split=val_split,
        patience=patience,
        augment=augment,
        frame=frame,
        window=window,
        horizon=horizon,
        season=season,
        log_inputs=log_inputs,
        label_smoothing=label_smoothing,
        calib_size=calib_size,
        command=shlex.join(sys.argv) if command is None else command,
        verbose=1 if verbose is None else verbose,
        callbacks=callbacks or [],
        frontend=fe if frontend == "conv" else None,
        bidirectional=bool(bidirectional),
        activations=activations,
        qat=bool(qat),
        qat_epochs=qat_epochs,
        weights=weights,
        audio=audio,
        embedding_dim=embedding_dim,
    )
    _check_settings(settings)
    return _train_locked(dataset_spec, out_dir, force, settings)


def _train_locked(
    dataset_spec: str | Dataset, out_dir: str | os.PathLike[str], force: bool, s: _Settings
) -> dict[str, Any]:
    """The run, in ``out_dir`` locked from the start (a second `train` into the same --out is
    refused at its start, not after it trained) until its files are written."""
    inputs = [dataset_spec] if isinstance(dataset_spec, str) else []
    try:
        with OwnedFolder(out_dir, RUN_MANIFEST, "--out", inputs) as folder:
            if not folder.is_empty_of_user_files():
                if not force:
                    raise RunError(
                        f"{out_dir} exists and is not empty; choose another --out or pass "
                        "--force to replace the run in it"
                    )
                folder.check_replaceable(run_files(s.task, s.audio.features != "none"))
            return _train_into(folder, dataset_spec, s)
    except OutputError as e:
        raise RunError(str(e)) from None


def _input_quant(s: _Settings) -> str:
    """The export's --input-quant (EXPORT.txt): per feature, except for ids into an
    Embedding, which have no input scale."""
    return "per-tensor" if s.embedding_dim is not None else "per-feature"


def _check_tokens(ds: Dataset, s: _Settings) -> _Settings:
    """A token dataset's settings, with its Embedding width resolved; ConfigError (one line)
    for a setting that does not apply to token ids, or --embedding-dim without them."""
    if not ds.vocab_size:
        if s.embedding_dim is not None:
            raise ConfigError(
                f"--embedding-dim {s.embedding_dim}: the dataset holds real-valued features; "
                "--embedding-dim applies to token ids (an .npz whose x arrays are [N, T] "
                "integers) and to --task seq2seq"
            )
        return s
    dim = EMBEDDING_DIM if s.embedding_dim is None else s.embedding_dim
    if not 1 <= dim <= 1024:
        raise ConfigError(f"--embedding-dim {dim}; expected an integer from 1 to 1024")
    not_for_ids = (
        ("--frontend conv", s.frontend is not None),
        ("--bidirectional", s.bidirectional),
        ("--noise", s.noise > 0.0),
        (f"--frame {s.frame}", s.frame is not None and s.frame != 1),
        ("--log-inputs on", s.log_inputs == "on"),
        ("--augment on", s.augment in ("on", True)),
    )
    for flag, given in not_for_ids:
        if given:
            raise ConfigError(
                f"{flag} does not apply to token ids ({ds.name}: [N, T] integers into an "
                "Embedding); drop it"
            )
    return dataclasses.replace(s, embedding_dim=dim)


def _check_settings(s: _Settings) -> None:
    """ConfigError (one line) for a setting of train_run out of range."""
    check_config(s.cell, s.units, s.layers, s.dropout)
    if s.qat and s.audio.features != "none":
        raise ConfigError(
            "--qat with --features: the fine-tuning's input grid is the calibrated one, not the "
            "front end's int8 features (scale 1) the export uses; drop --qat"
        )
    if not (np.isfinite(s.label_smoothing) and 0.0 <= s.label_smoothing < 1.0):
        raise ConfigError(
            f"--label-smoothing {s.label_smoothing}; expected a fraction in [0, 1), e.g. 0.1"
        )
    _check_training_config(
        s.epochs,
        s.batch_size,
        s.lr,
        s.val_split,
        s.patience,
        s.calib_size,
        s.seed,
        s.noise,
        s.steps,
        s.frame,
        s.task,
        s.window,
        s.horizon,
        s.season,
        s.augment,
        s.log_inputs,
    )


def _load(
    dataset_spec: str | Dataset,
    task: str,
    seed: int,
    frame: int | None,
    window: int | None,
    horizon: int,
    season: int | None,
) -> _Data:
    if isinstance(dataset_spec, Dataset):
        if dataset_spec.task != task:
            raise ConfigError(f"--task {task}: the dataset given is a {dataset_spec.task} dataset")
        return _Data(dataset_spec, _auto_frame(dataset_spec, frame))
    if task == "forecast":
        return _forecast_data(dataset_spec, window, horizon, season, frame)
    ds = load_dataset(dataset_spec, seed, task)
    return _Data(ds, _auto_frame(ds, frame))


def _one_hot(y: np.ndarray, k: int) -> np.ndarray:
    """Class indices [...] -> float32 one-hot [..., k]."""
    return np.eye(k, dtype=np.float32)[np.asarray(y, dtype=np.int64)]


def _wants_log(ds: Dataset, log_inputs: str) -> bool:
    if log_inputs == "off":
        return False
    steps = real_steps(ds.x_train, ds.lengths_train)
    if log_inputs == "on":
        if np.any(steps < 0) or np.any(real_steps(ds.x_test, ds.lengths_test) < 0):
            raise ConfigError(
                "--log-inputs on: the inputs hold negative values; log1p needs inputs >= 0"
            )
        return True
    if np.any(steps < 0):
        return False
    for col in steps.T:
        nonzero = col[col > 0]
        if nonzero.size and float(col.max()) > LOG_SPAN * float(np.median(nonzero)):
            return True
    return False


def _log1p_inputs(ds: Dataset) -> Dataset:
    """The dataset with ``log1p`` inputs (padding stays 0; negative test values are clipped)."""
    return dataclasses.replace(
        ds,
        x_train=np.log1p(np.maximum(ds.x_train, 0.0)).astype(np.float32),
        x_test=np.log1p(np.maximum(ds.x_test, 0.0)).astype(np.float32),
    )


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P[X >= k] for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return float(min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs)))


def usefulness_warnings(
    task: str,
    outputs: np.ndarray,
    truth: np.ndarray,
    predicted: np.ndarray | None = None,
    class_names: list[str] | None = None,
    baselines: dict[str, float] | None = None,
    what: str = "test",
) -> list[str]:
    """Why a trained model looks useless on a split, as one-line warnings (empty: none).

    classify/tag: accuracy not significantly above always answering the most frequent class
    (one-sided binomial test at 5 %; tag: per step, no better than that class + 1 point), or
    one class predicted for everything. regress/forecast: no better than the training mean
    (R^2 <= 0) or, for forecast, than the naive last-value forecast. All tasks: outputs that
    barely move across the split.
    """
    out: list[str] = []
    flat_out = outputs.reshape(-1, outputs.shape[-1])
    if flat_out.shape[0] >= 2:
        spread = float((flat_out.max(axis=0) - flat_out.min(axis=0)).max())
        scale = (
            max(1.0, float(np.abs(flat_out).max()))
            if task in ("classify", "tag")
            else max(1e-12, float(np.abs(truth).max()))
        )
        if spread < 1e-3 * scale:
            out.append(
                f"the model's outputs barely move on the {what} split (largest spread "
                f"{spread:.2g}): it does not respond to its input"
            )
    if task in ("classify", "tag") and predicted is not None:
        t = truth.reshape(-1)
        pr = predicted.reshape(-1)
        n = t.size
        counts = np.bincount(t)
        majority = float(counts.max() / n)
        acc = float((pr == t).mean())
        names = class_names or [str(i) for i in range(counts.size)]
        if task == "classify":
            p = _binomial_tail(int(round(acc * n)), n, majority)
            if p > 0.05:
                out.append(
                    f"at chance level: {what} accuracy {100 * acc:.1f}% over {n} sequences is "
                    f"not significantly better than always answering the most frequent class "
                    f"({100 * majority:.1f}%, p = {p:.3f})"
                )
        elif acc <= majority + 0.01:
            out.append(
                f"at chance level: {what} per-step accuracy {100 * acc:.1f}% is no better than "
                f"always answering the most frequent class ({100 * majority:.1f}%)"
            )
        if len(np.unique(t)) > 1 and len(np.unique(pr)) == 1:
            out.append(
                f"the model answers '{names[int(pr[0])]}' for every {what} "
                f"{'step' if task == 'tag' else 'sequence'}"
            )
    if task in ("regress", "forecast") and baselines:
        mae = baselines.get("model")
        for key, label in (("train_mean", "the training mean"), ("naive", "the last value")):
            ref = baselines.get(key)
            if mae is not None and ref is not None and mae >= ref:
                out.append(f"no better than predicting {label}: {what} MAE {mae:.4g} vs {ref:.4g}")
    return out


def _regression_figures(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    err = pred - truth
    ss_res = float((err**2).sum())
    ss_tot = float(((truth - truth.mean(axis=0)) ** 2).sum()) or 1e-12
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": 1.0 - ss_res / ss_tot,
    }


@dataclass(frozen=True)
class _Settings:
    """A run's settings, as train_run checked them (see its arguments)."""

    task: str
    cell: str
    units: int
    layers: int
    dropout: float
    noise: float
    epochs: int | None
    steps: int
    batch_size: int
    lr: float
    seed: int
    val_split: float
    patience: int
    augment: str | bool
    frame: int | None
    window: int | None
    horizon: int
    season: int | None
    log_inputs: str
    label_smoothing: float
    frontend: FrontEnd | None
    bidirectional: bool
    activations: str
    calib_size: int
    command: str
    verbose: int
    callbacks: list[Any]
    audio: AudioSettings = AudioSettings()
    qat: bool = False
    qat_epochs: int | None = None
    weights: str = "int8"
    embedding_dim: int | None = None  # resolved for a token dataset by _check_tokens

    @property
    def per_step(self) -> bool:
        return self.task == "tag"

    @property
    def classifier(self) -> bool:
        return self.task in ("classify", "tag")


@dataclass
class _Fitted:
    """The model phase's outcome: the models (their head un-standardized), the fit and the
    schedule it ran."""

    models: Models
    stopper: Any  # best_checkpoint_callback: history, best epoch
    interrupted: bool
    seconds: float
    epochs: int
    steps_per_epoch: int
    lr_schedule: dict[str, Any]
    augment: bool
    num_features: int
    y_mean: np.ndarray | None  # regress, forecast: the training targets' mean
    qat: dict[str, Any] | None = None  # --qat: what the fine-tuning did (metrics.json "qat")
    pre_qat: list[np.ndarray] | None = None  # --qat: the inference model's weights before it


@dataclass
class _Evaluation:
    """The test phase's outcome: outputs, the framed test set test.npz holds, the figures."""

    pred: np.ndarray
    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray  # test targets as test.npz holds them (tag: per framed step)
    figures: dict[str, Any]
    warnings: list[str]
    summary: float  # test accuracy (classify, tag) or MAE (regress, forecast)


def seeded_keras(seed: int) -> tuple[Any, Any]:
    """keras and tensorflow, imported (only when training), with a fresh session, every random
    generator seeded and op determinism on: the same seed gives the same weights."""
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras, tf


def lr_schedule(keras: Any, lr: float, total: int) -> tuple[Any, dict[str, Any]]:
    """The learning rate over ``total`` optimizer steps (a WARMUP_FRACTION warm-up from lr/10
    to ``lr``, then a cosine down to lr * LR_MIN_FACTOR) and its description for metrics.json."""
    warm = int(WARMUP_FRACTION * total)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10 if warm else lr,
        decay_steps=max(1, total - warm),
        alpha=LR_MIN_FACTOR,
        warmup_target=lr if warm else None,
        warmup_steps=warm,
    )
    return schedule, {
        "kind": "warm-up then cosine",
        "warmup_steps": warm,
        "total_steps": total,
        "peak": lr,
        "final": lr * LR_MIN_FACTOR,
    }


def fit_best(
    keras: Any,
    fit: Callable[[list[Any]], Any],
    *,
    epochs: int,
    patience: int,
    has_val: bool,
    by_accuracy: bool,
    verbose: int,
    callbacks: list[Any],
    stopper: Any = None,
    first: Sequence[Any] = (),
) -> tuple[Any, bool, float]:
    """Run fit(callbacks) (a Keras fit) with a best-checkpoint callback (``stopper``, else a
    :func:`best_checkpoint_callback` of patience, has_val, by_accuracy) and, when verbose, a
    progress line per epoch on stderr, before ``callbacks`` (after ``first``: callbacks whose
    epoch-end logs the checkpoint judges), keeping the best epoch's weights
    (:func:`fit_keeping_best`). Returns (the best-checkpoint callback, interrupted, seconds)."""
    if stopper is None:
        stopper = best_checkpoint_callback(keras, patience, has_val, by_accuracy=by_accuracy)
    cbs: list[Any] = [*first, stopper]
    progress = None
    if verbose:
        progress = progress_callback(keras, epochs, stopper, sys.stderr, max(1, epochs // 10))
        cbs.append(progress)
    interrupted, seconds = fit_keeping_best(lambda: fit(cbs + list(callbacks)), stopper, progress)
    return stopper, interrupted, seconds


def write_run(
    folder: OwnedFolder,
    files: tuple[str, ...],
    fill: Callable[[Path], None],
    manifest: dict[str, Any],
) -> None:
    """Write a run's ``files``: fill(tmp) makes them in a private scratch folder, then the
    owned-folder writer replaces the previous run's files (and only those) crash-safely."""
    with tempfile.TemporaryDirectory(prefix="rnn2c-train-") as scratch:
        tmp = Path(scratch)
        fill(tmp)
        blobs = {f: (tmp / f).read_bytes() for f in files}
    folder.write(blobs, manifest)


def _train_into(folder: OwnedFolder, dataset_spec: str | Dataset, s: _Settings) -> dict[str, Any]:
    """A run into the locked ``folder``, phase by phase: data, model and fit, test, files."""
    if s.audio.features != "none" and isinstance(dataset_spec, str):
        ds, frontend, audio = load_audio(dataset_spec, s.audio, s.seed)
        data = _Data(ds, 1 if s.frame is None else s.frame, frontend=frontend, audio=audio)
    else:
        data = _load(dataset_spec, s.task, s.seed, s.frame, s.window, s.horizon, s.season)
    s = _check_tokens(data.ds, s)
    use_log = not data.ds.vocab_size and _wants_log(data.ds, s.log_inputs)
    if use_log:
        data = dataclasses.replace(data, ds=_log1p_inputs(data.ds))
    keras, tf = seeded_keras(s.seed)
    rng = np.random.default_rng(s.seed)
    tr_idx, val_idx = _split(data.ds, s, rng)
    calib_idx = np.sort(rng.permutation(len(data.ds.x_train))[: s.calib_size])
    fitted = _fit(keras, data, tr_idx, val_idx, s, calib_idx)
    ev = _evaluate(keras, data, fitted, val_idx, s)
    metrics: dict[str, Any] = {
        "dataset": data.ds.name,
        "dataset_spec": dataset_spec if isinstance(dataset_spec, str) else data.ds.name,
        "task": s.task,
        **ev.figures,
        "warnings": ev.warnings,
        "chance_level": bool(ev.warnings),
        **_run_metrics(data, fitted, ev, use_log, len(val_idx) > 0, s),
        "num_train": int(len(tr_idx)),
        "num_val": int(len(val_idx)),
        "num_test": int(len(data.ds.x_test)),
        "num_calib": int(len(calib_idx)),
        **({"audio_frontend": data.frontend, "audio": data.audio} if data.frontend else {}),
        "train_seconds": round(fitted.seconds, 2),
        "command": s.command,
        "argv": list(sys.argv),
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "history": epoch_history(fitted.stopper),
    }
    if s.weights != "int8":
        metrics["weights"] = s.weights
    if data.ds.vocab_size:
        metrics["tokens"] = {"vocab_size": data.ds.vocab_size, "embedding_dim": s.embedding_dim}
    if fitted.qat is not None:
        metrics["qat"] = {**fitted.qat, "test": _qat_report(fitted, ev, data, calib_idx, s)}
    metrics["bidirectional"] = s.bidirectional
    if data.series is not None:  # forecast: the ranges EXPORT.txt declares
        flags = range_flags(*forecast_ranges(data.series), data.frame, use_log)
        if flags is not None:
            metrics["declared_ranges"] = {"input_range": flags[0], "output_range": flags[1]}
    _write(folder, data, fitted, ev, calib_idx, metrics, use_log, s)
    return metrics


def _qat_report(
    fitted: _Fitted, ev: _Evaluation, data: _Data, calib_idx: np.ndarray, s: _Settings
) -> dict[str, Any] | None:
    """--qat: on the test set, the float model and the integer model its export runs
    (bit-exact with the C) before and after the fine-tuning (accuracy, or MAE for a regressor),
    and how close the fine-tuned float model is to its integer model (rnn2c.qat.compare)."""
    ds, k = data.ds, data.frame
    cal_x, cal_l, _ = _framed(ds.x_train[calib_idx], ds.lengths_train[calib_idx], None, k, False)
    model = fitted.models.infer
    widths = (cal_x.shape[1], ev.x.shape[1])
    options = _qat_options(s, s.weights, *widths)

    def measure(opts: dict[str, Any] = options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found = qaware.compare(model, ev.x, ev.lengths, cal_x, cal_l, **opts)
        assert found is not None  # a sequence model
        return found

    after = measure()
    now = model.get_weights()
    model.set_weights(fitted.pre_qat)
    before = measure()
    if s.weights != "int8":  # what int8 weights give the model without fine-tuning
        int8 = measure(_qat_options(s, "int8", *widths))
    model.set_weights(now)
    err, span, same = qaware.closeness(*after, s.classifier)
    out: dict[str, Any] = {
        "max_error": err,
        "output_range": span,
        "max_error_of_range": err / span if span else 0.0,
    }
    qm = qaware.quantized_for(model, cal_x, cal_l, **options)
    if qm is not None:  # the fine-tuning's forward (its twin) against the C, on the test split
        out["forward_vs_c"] = qaware.forward_vs_c(qaware.twin(model, qm), after, ev.x, ev.lengths)
    if same is not None:
        out["same_class"] = same
    name = "accuracy" if s.classifier else "mae"
    for when, (yf, yi, rl) in (("before", before), ("after", after)):
        out[f"float_{name}_{when}"] = _test_figure(yf, rl, ev.y, s.classifier)
        out[f"int_{name}_{when}"] = _test_figure(yi, rl, ev.y, s.classifier)
    if s.weights != "int8":
        out[f"int8_{name}_before"] = _test_figure(int8[1], int8[2], ev.y, s.classifier)
    return out


def _qat_options(s: _Settings, weights: str, *widths: int) -> dict[str, Any]:
    """The quantization options of EXPORT.txt's export line with these weights (the state
    format of --activations too: it sets the state's grid and the balancing shifts). widths:
    the framed widths of the sequences these options quantize and run; a --bidirectional
    (whole-sequence) model takes the longest as its --max-length (which sizes the C's
    buffers only: the grid does not depend on it)."""
    options = qaware.export_options(weights, QAT_CALIBRATION, _input_quant(s))
    if s.bidirectional:
        options["max_length"] = int(max(widths))
    return {**options, "activations": s.activations}


def _test_figure(y: np.ndarray, real: np.ndarray, truth: np.ndarray, classifier: bool) -> float:
    """Accuracy (classify: one output per sequence; tag: every real step) or MAE of outputs
    [N, T', out] (qat.compare) against the test targets."""
    if classifier:
        pred = y.argmax(-1)
        truth = np.asarray(truth).reshape(pred.shape[0], -1)[:, : pred.shape[1]]
        return float(np.mean((pred == truth)[real]))
    return float(np.mean(np.abs(y[:, -1] - np.asarray(truth).reshape(y.shape[0], -1))))


def _split(ds: Dataset, s: _Settings, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Data: the training set's (training, validation) indices, stratified by class for
    classify."""
    if s.classifier and not s.per_step:
        return stratified_split(ds.y_train, s.val_split, rng)
    if s.val_split > 0.0:
        perm = rng.permutation(len(ds.x_train))
        n_val = max(1, int(round(s.val_split * len(perm))))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    return np.arange(len(ds.x_train)), np.zeros(0, dtype=np.int64)


def epoch_history(stopper: Any) -> dict[str, list[float]]:
    """The per-epoch logs metrics.json keeps (not the learning rate), from a
    :func:`best_checkpoint_callback`."""
    return {key: list(vals) for key, vals in stopper.history.items() if key != "learning_rate"}


def _framed_inputs(x: np.ndarray, lengths: np.ndarray, k: int) -> tuple[Any, Any, Any]:
    """Sequences framed by k, their lengths, and the training view's input (x, length mask)."""
    xf, lf, _ = _framed(x, lengths, None, k, False)
    return xf, lf, (xf, length_mask(lf, xf.shape[1]))


def _fit(
    keras: Any,
    data: _Data,
    tr_idx: np.ndarray,
    val_idx: np.ndarray,
    s: _Settings,
    calib_idx: np.ndarray,
) -> _Fitted:
    """Model and fit: the training part framed, its targets one-hot (classify, tag) or
    standardized (folded into the linear head after), the model built and fitted under the
    learning-rate schedule, the best epoch kept."""
    ds, k = data.ds, data.frame
    x_tr, y_tr, l_tr = ds.x_train[tr_idx], ds.y_train[tr_idx], ds.lengths_train[tr_idx]
    steps_raw = real_steps(x_tr, l_tr)
    raw_std = steps_raw.std(axis=0).astype(np.float32) + np.float32(1e-6)
    xf_tr, lf_tr, _ = _framed(x_tr, l_tr, None, k, False)
    tokens = (ds.vocab_size, s.embedding_dim or EMBEDDING_DIM) if ds.vocab_size else None
    num_features = 1 if tokens else int(xf_tr.shape[2])
    y_mean = y_std = None
    if not s.classifier:  # standardized targets while training; folded into the head after
        y_mean = y_tr.mean(axis=0).astype(np.float32)
        y_std = (y_tr.std(axis=0) + 1e-6).astype(np.float32)
    y_fit = _one_hot(y_tr, ds.num_classes) if s.classifier else (y_tr - y_mean) / y_std
    models = build_models(
        num_features,
        ds.num_outputs,
        np.zeros((0, 1)) if tokens else real_steps(xf_tr, lf_tr),
        cell=s.cell,
        units=s.units,
        layers=s.layers,
        dropout=s.dropout,
        noise=s.noise,
        task=s.task,
        name=f"rnn2c_{s.task}",
        frontend=s.frontend,
        bidirectional=s.bidirectional,
        embedding=tokens,
    )
    do_augment = s.augment in ("on", True) or (
        s.augment == "auto"
        and s.task != "forecast"
        and not tokens  # scaling and jitter do not apply to ids
        and len(tr_idx) < AUGMENT_BELOW
    )
    batches = _batches(
        keras,
        x=x_tr,
        lengths=l_tr,
        y=y_fit,
        batch_size=s.batch_size,
        frame=k,
        per_step=s.per_step,
        augment=do_augment,
        std=raw_std,
        seed=s.seed,
    )
    steps_per_epoch = len(batches)
    epochs = s.epochs
    if epochs is None:
        epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(s.steps / steps_per_epoch))))
    schedule, schedule_info = lr_schedule(keras, s.lr, epochs * steps_per_epoch)
    _compile(keras, models.train, schedule, s)
    validation = _validation(ds, k, val_idx, s, y_mean, y_std)
    stopper, interrupted, seconds = fit_best(
        keras,
        lambda cbs: models.train.fit(
            batches, validation_data=validation, epochs=epochs, callbacks=cbs, verbose=0
        ),
        epochs=epochs,
        patience=s.patience,
        has_val=len(val_idx) > 0,
        by_accuracy=s.classifier,
        verbose=s.verbose,
        callbacks=s.callbacks,
    )
    qat_info, pre_qat = None, None
    if s.qat and not interrupted:
        pre_qat = models.infer.get_weights()
        cal = ds.x_train[calib_idx], ds.lengths_train[calib_idx]
        calib = _framed(cal[0], cal[1], None, k, False)[:2]
        sel = val_idx if len(val_idx) > 0 else tr_idx  # else the training data, unaugmented
        selection = _framed(ds.x_train[sel], ds.lengths_train[sel], None, k, False)[:2]
        qat_info, interrupted, more = _fine_tune(
            keras, models, batches, (validation, selection), calib, epochs, len(val_idx) > 0, s
        )
        seconds += more
    if not s.classifier:  # fold the target standardization into the linear head
        dense = models.infer.layers[-1]
        w, b = dense.get_weights()
        dense.set_weights([w * y_std[None, :], b * y_std + y_mean])
        if pre_qat is not None:  # the head is the last layer: its kernel and bias come last
            pre_qat[-2:] = [pre_qat[-2] * y_std[None, :], pre_qat[-1] * y_std + y_mean]
    return _Fitted(
        models,
        stopper,
        interrupted,
        seconds,
        epochs,
        steps_per_epoch,
        schedule_info,
        do_augment,
        num_features,
        y_mean,
        qat_info,
        pre_qat,
    )


@dataclass
class QatPhase:
    """What a --qat fine-tuning runs: the grid maker (rnn2c.qat.grids of the inference model,
    read again each epoch), the compile of the training model under a learning-rate schedule,
    the fit of n epochs with callbacks, and the training model ``model``'s outputs (predict,
    with callbacks) on the selection data (the validation split, else the training data
    unaugmented; ``selection`` names it), ``weight`` their real steps (None: all)."""

    make: Callable[[], list[Any]]
    compile: Callable[[Any], None]
    fit: Callable[[list[Any], int], Any]
    batches_per_epoch: int
    has_val: bool
    by_accuracy: bool
    model: Any = None
    predict: Callable[[list[Any]], np.ndarray] | None = None
    weight: np.ndarray | None = None
    selection: str = "training data"
    #: where the export's integer model runs in NumPy (rnn2c.qat.compare of the inference
    #: model on the selection data: float outputs, integer outputs, real steps), that; the
    #: candidates are then judged by the integer model itself, not by the grid in Keras
    integer: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None


def selection_callback(keras: Any, judge: Callable[[], dict[str, float]]) -> Any:
    """A callback that adds, at each epoch's end, judge()'s figures to the epoch's logs as
    sel_agreement, sel_distance; put it before the checkpoint that judges them."""

    class Selection(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs is not None:
                logs.update({f"sel_{k}": float(v) for k, v in judge().items()})

    return Selection()


def _kept_line(stopper: Any, selection: str, classes: bool) -> str:
    """What the QAT checkpoint kept and why, in words (the weights before fine-tuning are
    "epoch 0")."""
    start, best = stopper.start_logs or {}, stopper.best_logs

    def fig(logs: dict[str, float]) -> str:  # the selection callback's sel_ figures
        keys = ("distance", "agreement") if classes else ("distance",)
        return qaware.closeness_words({k: logs[f"sel_{k}"] for k in keys})

    if stopper.best_epoch < 0:
        return (
            "kept the post-training weights: no epoch came closer to the float model on the "
            f"{selection} ({fig(start)})"
        )
    return (
        f"kept epoch {stopper.best_epoch + 1}: on the {selection} {fig(best)} "
        f"(post-training: {fig(start)})"
    )


def qat_phase(
    keras: Any,
    phase: QatPhase,
    epochs: int,
    qat_epochs: int | None,
    lr: float,
    weights: str,
    patience: int,
    verbose: int,
    callbacks: list[Any],
) -> tuple[dict[str, Any], bool, float]:
    """--qat: fine-tune on the export's weight grid (rnn2c.qat), the best epoch kept, then the
    weights put on the grid for good (settled). n epochs: qat_epochs, else a fifth of the
    training's (QAT_MIN_EPOCHS..QAT_MAX_EPOCHS), at a cosine from lr * QAT_LR_FACTOR down to a
    tenth of it.

    The epochs are judged on the selection data by the export's integer model (phase.integer;
    else phase.predict with the weights on the grid), by how close its outputs are to the
    float model's (the model before fine-tuning, which
    the quantization is to reproduce): a classifier by the share of real steps where its class
    is the float model's, then by the mean |output - float output| (a regressor by that
    alone); the weights before fine-tuning, put on the grid (what post-training quantization
    exports), are a candidate too ("epoch 0"). Returns (what metrics.json records,
    interrupted, seconds)."""
    n = qat_epochs or int(min(QAT_MAX_EPOCHS, max(QAT_MIN_EPOCHS, epochs // 5)))
    grid = phase.make()
    peak = lr * QAT_LR_FACTOR
    total = max(1, n * phase.batches_per_epoch)
    phase.compile(keras.optimizers.schedules.CosineDecay(peak, total, alpha=0.1))
    on_grid = qaware.make_callback(grid, phase.make)
    stopper, first = None, []
    refused: list[str] = []  # why the export refused an epoch's weights (skipped, not kept)
    predict, classes, integer = phase.predict, phase.by_accuracy, phase.integer
    if (predict is not None or integer is not None) and phase.model is not None:
        weight = phase.weight
        if integer is not None:  # the float model's outputs, its real steps
            ref, _, weight = integer()
        else:
            assert predict is not None
            ref = np.asarray(predict([]), dtype=np.float64)

        def judge() -> dict[str, float]:
            try:  # the grid the export of these weights uses
                grid[:] = phase.make()
                y = integer()[1] if integer is not None else predict([on_grid])
            except ExportError as e:  # weights the export refuses: never kept; the fine-tuning
                refused.append(str(e))  # goes on, on the last grid the export gave
                return {"distance": np.inf, "agreement": -1.0} if classes else {"distance": np.inf}
            return qaware.closeness_logs(np.asarray(y, np.float64), ref, weight, classes)

        stopper = best_checkpoint_callback(
            keras,
            patience,
            phase.has_val,
            by_accuracy=classes,
            monitor="sel_",
            keys=("agreement", "distance"),
        )
        stopper.start(phase.model, {f"sel_{k}": v for k, v in judge().items()})
        first = [selection_callback(keras, judge)]
    if verbose:
        print(f"qat: fine-tuning {n} epochs on the {weights} weight grid", file=sys.stderr)
    stopper, interrupted, seconds = fit_best(
        keras,
        lambda cbs: phase.fit(cbs, n),
        epochs=n,
        patience=patience,
        has_val=phase.has_val,
        by_accuracy=phase.by_accuracy,
        verbose=verbose,
        callbacks=[on_grid, *callbacks],
        stopper=stopper,
        first=first,
    )
    grid = qaware.settle(phase.make)
    info = {
        "weights": weights,
        "epochs": n,
        "epochs_run": len(stopper.history.get("loss", [])),
        "learning_rate": {"peak": peak, "final": peak * 0.1},
        "layers": {g.layer.name: {"qmax": g.qmax, "exact": g.exact} for g in grid},
        "calibration": QAT_CALIBRATION,
        "history": epoch_history(stopper),
        "best_epoch": int(stopper.best_epoch) + 1,  # 0: the post-training weights kept
    }
    if refused:
        info["refused"] = refused[0]
    if stopper.start_logs is not None:
        info["selection"] = {
            "on": phase.selection,
            "epoch_0": stopper.start_logs,
            "kept": _kept_line(stopper, phase.selection, phase.by_accuracy),
        }
    return info, interrupted, seconds


def _fine_tune(
    keras: Any,
    models: Models,
    batches: Any,
    data: tuple[Any, Any],
    calib: tuple[np.ndarray, np.ndarray],
    epochs: int,
    has_val: bool,
    s: _Settings,
) -> tuple[dict[str, Any], bool, float]:
    """--qat of a sequence model, with the quantization EXPORT.txt's export line asks for.
    data: (the validation split or None, the selection data, framed: (x, lengths) of it,
    else of the training data)."""
    validation, selection = data
    options = _qat_options(s, s.weights, calib[0].shape[1], selection[0].shape[1])
    # the training model's fake-quantized twin (rnn2c.qat_act): it shares every weight, and
    # its forward puts the input, the layers' outputs and the states on the export's grids
    qm = qaware.quantized_for(models.infer, calib[0], calib[1], **options)
    act = qaware.twin(models.train, qm) if qm is not None else None
    trainer = models.train if act is None else act.twin

    def integer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found = qaware.compare(models.infer, *selection, calib[0], calib[1], **options)
        assert found is not None  # a sequence model
        return found

    def make() -> list[qaware.LayerGrid]:
        return qaware.grids(models.infer, calib[0], lengths=calib[1], act=act, **options)

    phase = QatPhase(
        make,
        lambda lr: _compile(keras, trainer, lr, s),
        lambda cbs, n: trainer.fit(
            batches, validation_data=validation, epochs=n, callbacks=cbs, verbose=0
        ),
        len(batches),
        has_val,
        s.classifier,
        trainer,
        None,  # the integer model is judged, not the Keras forward
        None,
        "validation split" if has_val else "training data",
        integer,
    )
    info, interrupted, seconds = qat_phase(
        keras, phase, epochs, s.qat_epochs, s.lr, s.weights, s.patience, s.verbose, s.callbacks
    )
    if act is not None:
        info["activations"] = {"quantized": act.modelled, "float": act.unmodelled}
    return {**info, "input_quant": _input_quant(s)}, interrupted, seconds


def _compile(keras: Any, model: Any, schedule: Any, s: _Settings) -> None:
    """Adam under the schedule (gradients clipped to CLIPNORM), the task's loss and metric."""
    if s.classifier:
        # one-hot targets with label smoothing: the optimum has finite logits, so a model trained
        # to zero error does not push its softmax (and every step of a stream) to saturation,
        # where int8 and float flip at slightly different steps
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=s.label_smoothing)
        metric_kw = {"weighted_metrics": ["accuracy"]} if s.per_step else {"metrics": ["accuracy"]}
    else:
        loss = "mse"
        metric_kw = {"metrics": ["mae"]}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule, clipnorm=CLIPNORM),
        loss=loss,
        **metric_kw,
    )


def _validation(
    ds: Dataset,
    k: int,
    val_idx: np.ndarray,
    s: _Settings,
    y_mean: np.ndarray | None,
    y_std: np.ndarray | None,
) -> Any:
    """The validation split as fit takes it (None without one)."""
    if len(val_idx) == 0:
        return None
    _, _, val_in = _framed_inputs(ds.x_train[val_idx], ds.lengths_train[val_idx], k)
    y_val = ds.y_train[val_idx]
    if s.per_step:
        y_val = frame_labels(y_val, k)
        return (val_in, _one_hot(y_val, ds.num_classes), val_in[1].astype(np.float32))
    return (val_in, _one_hot(y_val, ds.num_classes) if s.classifier else (y_val - y_mean) / y_std)


def _evaluate(
    keras: Any, data: _Data, fitted: _Fitted, val_idx: np.ndarray, s: _Settings
) -> _Evaluation:
    """Test: the outputs of the training view with length masks (= the saved model on each
    sequence cut to its real length, which is what the C computes), the task's figures and
    the warnings."""
    ds, k = data.ds, data.frame
    xf_te, lf_te, test_in = _framed_inputs(ds.x_test, ds.lengths_test, k)
    model = keras.Model(fitted.models.train.inputs, fitted.models.train.outputs)
    pred = np.asarray(model.predict(test_in, batch_size=256, verbose=0), dtype=np.float64)
    warnings: list[str] = []
    if len(val_idx) > 0 and len(val_idx) < SMALL_VAL:
        warnings.append(
            f"the validation split has only {len(val_idx)} sequences: too few to pick an epoch "
            "reliably; consider --val-split 0 (train on everything with the fixed schedule)"
        )
    y_te_f = frame_labels(ds.y_test, k) if s.per_step else ds.y_test
    if s.classifier:
        real_te = length_mask(lf_te, xf_te.shape[1])
        figures, more, summary = _class_figures(model, data, pred, y_te_f, real_te, val_idx, s)
    else:
        figures, more, summary = _regression_results(data, pred, fitted.y_mean, s)
    return _Evaluation(pred, xf_te, lf_te, y_te_f, figures, warnings + more, summary)


def _class_figures(
    model: Any,
    data: _Data,
    pred: np.ndarray,
    y_test: np.ndarray,
    real: np.ndarray,
    val_idx: np.ndarray,
    s: _Settings,
) -> tuple[dict[str, Any], list[str], float]:
    """classify, tag: accuracy (per step for tag), per class, the confusion matrix, and the
    usefulness warnings on the test (and classify's validation) split."""
    from .plots import confusion_matrix

    ds, k = data.ds, data.frame
    if s.per_step:
        truth, guess = y_test[real], pred.argmax(-1)[real]
        out_flat = pred[real]
    else:
        truth, guess = ds.y_test, pred.argmax(1)
        out_flat = pred
    test_acc = float((guess == truth).mean())
    per_class: dict[str, float | None] = {}
    for c, cname in enumerate(ds.class_names):
        sel = truth == c
        per_class[cname] = float(np.mean(guess[sel] == c)) if np.any(sel) else None
    counts = np.bincount(truth, minlength=ds.num_classes)
    figures: dict[str, Any] = {
        "class_names": list(ds.class_names),
        "float_test_accuracy": test_acc,
        "majority_baseline": float(counts.max() / counts.sum()),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion_matrix(truth, guess, ds.num_classes).tolist(),
    }
    if s.per_step:
        figures["accuracy_unit"] = "per step"
    warnings = usefulness_warnings(s.task, out_flat, truth, guess, ds.class_names)
    if len(val_idx) > 0 and not s.per_step:
        _, _, vin = _framed_inputs(ds.x_train[val_idx], ds.lengths_train[val_idx], k)
        vpred = np.asarray(model.predict(vin, verbose=0)).argmax(1)
        warnings += usefulness_warnings(
            s.task,
            np.eye(ds.num_classes)[vpred],
            ds.y_train[val_idx],
            vpred,
            ds.class_names,
            what="validation",
        )
    return figures, warnings, test_acc


def _regression_results(
    data: _Data, pred: np.ndarray, y_mean: np.ndarray | None, s: _Settings
) -> tuple[dict[str, Any], list[str], float]:
    """regress, forecast: MAE, RMSE, R^2 against the baselines (the training mean; forecast:
    the naive and seasonal-naive forecasts too) and the usefulness warnings."""
    ds = data.ds
    fig = _regression_figures(pred, ds.y_test)
    base_mean = _regression_figures(np.tile(y_mean, (len(pred), 1)), ds.y_test)
    baselines = {"train_mean": base_mean}
    if data.baselines is not None:
        baselines = {name: _regression_figures(v, ds.y_test) for name, v in data.baselines.items()}
    figures: dict[str, Any] = {
        "target_names": list(ds.target_names),
        "float_test_mae": fig["mae"],
        "float_test_rmse": fig["rmse"],
        "float_test_r2": fig["r2"],
        "baselines": baselines,
    }
    if s.task == "forecast":
        figures.update({"window": data.window, "horizon": data.horizon, "season": data.season})
    ref = {"model": fig["mae"], "train_mean": baselines["train_mean"]["mae"]}
    if "naive" in baselines:
        ref["naive"] = baselines["naive"]["mae"]
    return figures, usefulness_warnings(s.task, pred, ds.y_test, baselines=ref), fig["mae"]


def _run_metrics(
    data: _Data, fitted: _Fitted, ev: _Evaluation, use_log: bool, has_val: bool, s: _Settings
) -> dict[str, Any]:
    """metrics.json's description of the run: its input, architecture, fit and schedule."""
    ds, stopper = data.ds, fitted.stopper
    if has_val:
        selection = "max val_accuracy, then min val_loss" if s.classifier else "min val_loss"
    else:
        selection = "min training loss (no validation split; the schedule runs to the end)"
    return {
        "num_features": fitted.num_features,
        "raw_features": ds.num_features,
        "frame": data.frame,
        "input_transform": "log1p" if use_log else None,
        "max_length": int(ev.x.shape[1]),
        "raw_max_length": int(ds.x_test.shape[1] if ds.x_test.shape[1] else 0),
        "cell": s.cell,
        "units": s.units,
        "layers": s.layers,
        "frontend": dataclasses.asdict(s.frontend) if s.frontend is not None else None,
        "activations": s.activations,
        "weights": s.weights,
        "dropout": s.dropout,
        "noise": s.noise,
        "num_params": int(fitted.models.infer.count_params()),
        "epochs_run": stopper.epochs_seen,
        "best_epoch": int(stopper.best_epoch) + 1 if stopper.best_epoch >= 0 else 0,
        "interrupted": fitted.interrupted,
        "selection": selection,
        "epochs_max": fitted.epochs,
        "steps_per_epoch": fitted.steps_per_epoch,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "label_smoothing": s.label_smoothing if s.classifier else None,
        "clipnorm": CLIPNORM,
        "lr_schedule": fitted.lr_schedule,
        "augment": dict(AUGMENT) if fitted.augment else None,
        "seed": s.seed,
        "val_split": s.val_split,
        "patience": s.patience,
    }


def _write(
    folder: OwnedFolder,
    data: _Data,
    fitted: _Fitted,
    ev: _Evaluation,
    calib_idx: np.ndarray,
    metrics: dict[str, Any],
    use_log: bool,
    s: _Settings,
) -> None:
    """Files: model.keras, calib.npz, test.npz, metrics.json, the plots, EXPORT.txt."""
    ds, k = data.ds, data.frame
    xf_cal, lf_cal, _ = _framed(ds.x_train[calib_idx], ds.lengths_train[calib_idx], None, k, False)

    def fill(tmp: Path) -> None:
        fitted.models.infer.save(tmp / "model.keras")
        np.savez(tmp / "calib.npz", x=xf_cal, lengths=lf_cal)
        np.savez(
            tmp / "test.npz",
            x=ev.x,
            y=ev.y.astype(np.int64 if s.classifier else np.float32),
            lengths=ev.lengths,
        )
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _plots(tmp, s.task, metrics, metrics["history"], ds, ev.pred, ev.y, ev.lengths, data)
        text = _export_text(
            folder.path, ev.summary, s.classifier, use_log, k, ds.num_features, metrics
        )
        if data.frontend is not None:
            (tmp / "frontend.json").write_text(json.dumps(data.frontend, indent=2) + "\n")
            text = audio_export_text(text, data.frontend)
        (tmp / "EXPORT.txt").write_text(text)

    write_run(
        folder,
        run_files(s.task, data.frontend is not None),
        fill,
        {
            "rnn2c_version": __version__,
            "kind": "train run",
            "task": s.task,
            "dataset": ds.name,
            ("float_test_accuracy" if s.classifier else "float_test_mae"): ev.summary,
        },
    )


def _export_text(
    out: Path,
    summary: float,
    classifier: bool,
    use_log: bool,
    k: int,
    raw_features: int,
    metrics: dict[str, Any],
) -> str:
    """EXPORT.txt: the export and verify commands, with what the device must do to the raw
    samples (log1p, framing)."""
    what = f"float test accuracy {summary:.4f}" if classifier else f"float test MAE {summary:.4g}"
    lines = [
        f"# Export the model of this run to int8 C and check it against Keras ({what}):",
        *run_export_commands(out, metrics),
    ]
    if metrics.get("tokens"):
        lines.insert(
            1,
            "# A token model: the input is one id per step "
            f"(1..{metrics['tokens']['vocab_size'] - 1}; 0 is padding) into its Embedding "
            "(calib.npz and test.npz hold ids [N, T]); the C takes them through "
            "model_step_token.",
        )
    if metrics.get("declared_ranges"):
        lines.insert(
            1,
            "# Declared ranges (forecast): the training part's range, moved by its trend over the "
            "test part's span, so that a trending series does not clip on the device; replace "
            "them with your sensor's range if you know it.",
        )
    if use_log:
        lines.insert(
            1,
            "# The model takes log1p(x) of every raw input value (calib.npz and test.npz "
            "hold log1p(x)): apply log1p before quantizing on the device.",
        )
    if k > 1:
        lines.insert(
            1,
            f"# The model steps once per {k} samples: each step's input is {k} consecutive "
            f"samples of {raw_features} features, sample-major (calib.npz and test.npz "
            "are framed so); the export reads k from metrics.json (MODEL_SAMPLES_PER_STEP), "
            "and model_push_sample takes one raw sample at a time.",
        )
    return "\n".join(lines) + "\n"


def _plots(
    tmp: Path,
    task: str,
    metrics: dict[str, Any],
    history: dict[str, list[float]],
    ds: Dataset,
    pred: np.ndarray,
    y_test: np.ndarray,
    lengths: np.ndarray,
    data: _Data,
) -> None:
    from . import plots

    arch = f"{metrics['cell'].upper()}({metrics['units']}) x{metrics['layers']}"
    plots.plot_curves(history, tmp / "curves.png", f"{ds.name} {arch}")
    if task in ("classify", "tag"):
        acc = metrics["float_test_accuracy"]
        unit = " per step" if task == "tag" else ""
        plots.plot_confusion(
            np.asarray(metrics["confusion_matrix"]),
            ds.class_names,
            tmp / "confusion.png",
            f"{ds.name} {arch}: test acc{unit} {acc:.3f}",
        )
    if task == "tag":
        plots.plot_timeline(
            y_test, pred.argmax(-1), lengths, ds.class_names, tmp / "timeline.png", ds.name
        )
    elif task == "regress":
        plots.plot_scatter(
            pred,
            ds.y_test,
            tmp / "scatter.png",
            f"{ds.name} {arch}: MAE {metrics['float_test_mae']:.4g}",
        )
    elif task == "forecast":
        assert data.baselines is not None and data.series is not None
        plots.plot_forecast(
            data.series.values,
            data.series.test_start,
            pred,
            data.baselines,
            data.window,
            data.horizon,
            tmp / "forecast.png",
            f"{ds.name} {arch}: test MAE {metrics['float_test_mae']:.4g}",
        )
