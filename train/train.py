"""`rnn2c train`: fit a small recurrent classifier and write a run folder.

The run folder holds everything the later steps need::

    model.keras    the trained Keras model (normalization and masking inside)
    calib.npz      x: raw padded training sequences for int8 calibration, lengths
    test.npz       x: raw padded test sequences, y: int labels, lengths (for rnn2c verify)
    metrics.json   dataset, architecture, float test accuracy, per-class accuracy, ...
    confusion.png  test confusion matrix
    curves.png     train/validation loss and accuracy per epoch
    EXPORT.txt     the rnn2c export / verify commands for this run

It is built in a temporary folder beside the target and renamed into place at the end, so a
failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c import __version__
from rnn2c.outdir import OutputError, OwnedFolder

from .data import Dataset, load_dataset
from .model import ConfigError, build_model, check_config, real_steps

__all__ = [
    "DEFAULTS",
    "RunError",
    "export_commands",
    "stratified_split",
    "train_run",
]

# Defaults that train BasicMotions (40 train sequences of 100 steps) and JapaneseVowels (270
# sequences of 7..29 steps) to 96.8-100% test accuracy with GRU and LSTM cells alike, in under
# four CPU minutes each (README, "Measured"). The epoch cap is high so that early stopping, not
# the cap, ends training; the best epoch is chosen on the validation split only.
DEFAULTS: dict[str, Any] = {
    "cell": "gru",
    "units": 32,
    "layers": 1,
    "dropout": 0.3,
    "noise": 0.0,
    "epochs": 1000,
    "batch_size": 16,
    "lr": 3e-3,
    "seed": 0,
    "val_split": 0.2,
    "patience": 60,
    "calib_size": 200,
}

# Fixed optimizer settings (not command-line flags): gradient clipping by global norm, and
# the learning rate halved after ``LR_PATIENCE`` epochs without a new best validation loss,
# down to ``lr * LR_MIN_FACTOR``.
CLIPNORM = 1.0
LR_FACTOR = 0.5
LR_PATIENCE = 15
LR_MIN_FACTOR = 1.0 / 32.0


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


def _best_checkpoint_callback(keras: Any, patience: int, has_val: bool) -> Any:
    """A callback that keeps the weights of the best epoch and stops after ``patience`` epochs
    without a better one.

    "Best" is the highest validation accuracy, ties (common on small validation splits)
    broken by the lowest validation loss; without a validation split, the training accuracy
    and loss stand in. The best weights are restored when training ends.
    """
    prefix = "val_" if has_val else ""

    class BestCheckpoint(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: tuple[float, float] | None = None
            self.best_epoch = -1
            self.best_weights: list[np.ndarray] | None = None
            self.wait = 0

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            acc = float(logs.get(prefix + "accuracy", 0.0))
            loss = float(logs.get(prefix + "loss", np.inf))
            if not np.isfinite(loss):
                loss = np.inf
            # Accuracies are multiples of 1/n; round away float noise before comparing.
            key = (round(acc, 6), -loss)
            if self.best is None or key > self.best:
                self.best = key
                self.best_epoch = epoch
                self.best_weights = [np.array(w) for w in self.model.get_weights()]
                self.wait = 0
            else:
                self.wait += 1
                if self.wait > patience:
                    self.model.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return BestCheckpoint()


def export_commands(run_dir: str | os.PathLike[str]) -> list[str]:
    """The commands that export and verify the run in ``run_dir``.

    The model takes raw channels (its Normalization is folded at export), whose ranges differ
    per channel, so the export quantizes the input per feature.
    """
    run = str(run_dir).rstrip("/") or "/"

    def q(p: str) -> str:
        return shlex.quote(p)

    return [
        f"rnn2c export {q(run + '/model.keras')} --calib {q(run + '/calib.npz')} "
        f"--out {q(run + '/c')} --name model --input-quant per-feature",
        f"rnn2c verify {q(run + '/model.keras')} {q(run + '/c')} --data {q(run + '/test.npz')} "
        "--stream 10000",
    ]


def _check_training_config(
    epochs: int,
    batch_size: int,
    lr: float,
    val_split: float,
    patience: int,
    calib_size: int,
    seed: int = 0,
    noise: float = 0.0,
) -> None:
    if not 1 <= epochs <= 100_000:
        raise ConfigError(f"--epochs {epochs}; expected an integer from 1 to 100000")
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
    if not (np.isfinite(noise) and 0.0 <= noise <= 10.0):
        raise ConfigError(f"--noise {noise}; expected a standard deviation from 0 to 10, e.g. 0.1")
    if calib_size < 1:
        raise ConfigError(f"calib_size {calib_size}; expected a positive number of sequences")


#: the run folder's manifest: the files a run owns (see rnn2c.outdir)
RUN_MANIFEST = "rnn2c-run.json"
RUN_FILES = (
    "model.keras",
    "calib.npz",
    "test.npz",
    "metrics.json",
    "confusion.png",
    "curves.png",
    "EXPORT.txt",
)


def train_run(
    dataset_spec: str | Dataset,
    out_dir: str | os.PathLike[str],
    cell: str = DEFAULTS["cell"],
    units: int = DEFAULTS["units"],
    layers: int = DEFAULTS["layers"],
    dropout: float = DEFAULTS["dropout"],
    noise: float = DEFAULTS["noise"],
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    seed: int = DEFAULTS["seed"],
    val_split: float = DEFAULTS["val_split"],
    patience: int = DEFAULTS["patience"],
    bidirectional: bool = False,
    calib_size: int = DEFAULTS["calib_size"],
    force: bool = False,
    command: str | None = None,
    verbose: int | None = None,
) -> dict[str, Any]:
    """Train a classifier on ``dataset_spec`` and write the run folder ``out_dir``.

    Args:
        dataset_spec: a spec for :func:`rnn2c.train.data.load_dataset`, or a loaded Dataset.
        out_dir: the run folder to create (must not exist or be empty, unless ``force``).
        cell, units, layers, dropout: the architecture (see :func:`build_model`).
        noise: standard deviation of Gaussian noise added to the normalized inputs during
            training only (robustness to sensor and int8 input quantization noise).
        epochs: most epochs; early stopping usually ends sooner.
        batch_size, lr: Adam mini-batch size and initial learning rate (gradients are
            clipped to global norm ``CLIPNORM``; the rate is halved after ``LR_PATIENCE``
            epochs without a new best validation loss, down to ``lr * LR_MIN_FACTOR``).
        seed: seeds Python, NumPy and TensorFlow; op determinism is on, so the same seed
            gives the same weights.
        val_split: fraction of the training set (stratified by class) held out to pick the
            best epoch and to stop early; 0 disables the validation split (the training
            accuracy and loss then stand in).
        patience: epochs without a better epoch before stopping. The best epoch has the
            highest validation accuracy, ties broken by the lowest validation loss; its
            weights are restored.
        bidirectional: not supported yet (raises ConfigError).
        calib_size: most training sequences written to ``calib.npz``.
        force: replace an existing non-empty ``out_dir``.
        command: the command line recorded in metrics.json (default: ``sys.argv``).
        verbose: Keras verbosity (default: progress bar on a terminal, one line per epoch
            otherwise).

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        DatasetError, ConfigError, RunError: one-line messages, nothing written.
    """
    if bidirectional:
        raise ConfigError(
            "--bidirectional is not supported yet; train a unidirectional model "
            "(drop --bidirectional)"
        )
    check_config(cell, units, layers, dropout)
    _check_training_config(epochs, batch_size, lr, val_split, patience, calib_size, seed, noise)
    inputs = [dataset_spec] if isinstance(dataset_spec, str) else []
    try:
        # the folder is locked from here until the run is written: a second `train` into the
        # same --out is refused at its start, not after it trained
        with OwnedFolder(out_dir, RUN_MANIFEST, "--out", inputs) as folder:
            if not folder.is_empty_of_user_files():
                if not force:
                    raise RunError(
                        f"{out_dir} exists and is not empty; choose another --out or pass "
                        "--force to replace the run in it"
                    )
                folder.check_replaceable(RUN_FILES)
            return _train_into(
                folder,
                dataset_spec,
                cell=cell,
                units=units,
                layers=layers,
                dropout=dropout,
                noise=noise,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=seed,
                val_split=val_split,
                patience=patience,
                calib_size=calib_size,
                command=command,
                verbose=verbose,
            )
    except OutputError as e:
        raise RunError(str(e)) from None


def _train_into(
    folder: OwnedFolder,
    dataset_spec: str | Dataset,
    *,
    cell: str,
    units: int,
    layers: int,
    dropout: float,
    noise: float,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    val_split: float,
    patience: int,
    calib_size: int,
    command: str | None,
    verbose: int | None,
) -> dict[str, Any]:
    out = folder.path
    ds = dataset_spec if isinstance(dataset_spec, Dataset) else load_dataset(dataset_spec, seed)
    if command is None:
        command = shlex.join(sys.argv)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(seed)

    tr_idx, val_idx = stratified_split(ds.y_train, val_split, rng)
    x_tr, y_tr = ds.x_train[tr_idx], ds.y_train[tr_idx]
    model = build_model(
        ds.num_features,
        ds.num_classes,
        real_steps(x_tr, ds.lengths_train[tr_idx]),
        cell=cell,
        units=units,
        layers=layers,
        dropout=dropout,
        noise=noise,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr, clipnorm=CLIPNORM),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    has_val = len(val_idx) > 0
    stopper = _best_checkpoint_callback(keras, patience, has_val)
    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss" if has_val else "loss",
        factor=LR_FACTOR,
        patience=LR_PATIENCE,
        min_lr=lr * LR_MIN_FACTOR,
        verbose=0,
    )
    t0 = time.perf_counter()
    hist = model.fit(
        x_tr,
        y_tr,
        validation_data=(ds.x_train[val_idx], ds.y_train[val_idx]) if has_val else None,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[stopper, reduce_lr],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    epochs_run = len(history.get("loss", []))

    probs = model.predict(ds.x_test, batch_size=256, verbose=0)
    y_pred = np.argmax(probs, axis=1).astype(np.int64)
    test_acc = float(np.mean(y_pred == ds.y_test))
    per_class: dict[str, float | None] = {}
    for k, name in enumerate(ds.class_names):
        sel = ds.y_test == k
        per_class[name] = float(np.mean(y_pred[sel] == k)) if np.any(sel) else None

    calib_idx = np.sort(rng.permutation(len(ds.y_train))[:calib_size])

    from .plots import confusion_matrix, plot_confusion, plot_curves

    metrics: dict[str, Any] = {
        "dataset": ds.name,
        "dataset_spec": dataset_spec if isinstance(dataset_spec, str) else ds.name,
        "class_names": list(ds.class_names),
        "num_features": ds.num_features,
        "max_length": ds.max_length,
        "cell": cell,
        "units": units,
        "layers": layers,
        "dropout": dropout,
        "noise": noise,
        "bidirectional": False,
        "num_params": int(model.count_params()),
        "float_test_accuracy": test_acc,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion_matrix(ds.y_test, y_pred, ds.num_classes).tolist(),
        "epochs_run": epochs_run,
        "best_epoch": int(stopper.best_epoch) + 1 if epochs_run else 0,
        "selection": "max val_accuracy, then min val_loss"
        if has_val
        else "max accuracy, then min loss (no validation split)",
        "epochs_max": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "clipnorm": CLIPNORM,
        "lr_schedule": {
            "monitor": "val_loss" if has_val else "loss",
            "factor": LR_FACTOR,
            "patience": LR_PATIENCE,
            "min_lr": lr * LR_MIN_FACTOR,
        },
        "seed": seed,
        "val_split": val_split,
        "patience": patience,
        "num_train": int(len(tr_idx)),
        "num_val": int(len(val_idx)),
        "num_test": int(len(ds.y_test)),
        "num_calib": int(len(calib_idx)),
        "train_seconds": round(train_seconds, 2),
        "command": command,
        "argv": list(sys.argv),
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "history": history,
    }

    # Everything is made in a private scratch folder, then handed to the owned-folder writer,
    # which replaces the previous run's files (and only those) crash-safely.
    with tempfile.TemporaryDirectory(prefix="rnn2c-train-") as scratch:
        tmp = Path(scratch)
        model.save(tmp / "model.keras")
        np.savez(
            tmp / "calib.npz",
            x=ds.x_train[calib_idx].astype(np.float32),
            lengths=ds.lengths_train[calib_idx].astype(np.int64),
        )
        np.savez(
            tmp / "test.npz",
            x=ds.x_test.astype(np.float32),
            y=ds.y_test.astype(np.int64),
            lengths=ds.lengths_test.astype(np.int64),
        )
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        title = f"{ds.name} {cell.upper()}({units}) x{layers}: test acc {test_acc:.3f}"
        plot_confusion(
            np.asarray(metrics["confusion_matrix"]), ds.class_names, tmp / "confusion.png", title
        )
        plot_curves(history, tmp / "curves.png", f"{ds.name} {cell.upper()}({units}) x{layers}")
        lines = [
            f"# Export the model of this run to int8 C and check it against Keras "
            f"(float test accuracy {test_acc:.4f}):",
            *export_commands(out),
        ]
        (tmp / "EXPORT.txt").write_text("\n".join(lines) + "\n")
        blobs = {f: (tmp / f).read_bytes() for f in RUN_FILES}
    folder.write(
        blobs,
        {
            "rnn2c_version": __version__,
            "kind": "train run",
            "dataset": ds.name,
            "float_test_accuracy": test_acc,
        },
    )
    return metrics
