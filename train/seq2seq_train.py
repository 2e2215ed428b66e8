"""`rnn2c train --task seq2seq`: an encoder-decoder with attention, trained with teacher
forcing and judged by greedy decoding, written to a run folder::

    model.keras    the two-input Keras model (encoder_tokens, decoder_tokens) -> softmax
    calib.npz      x [N, T_in] int32 input ids (0-padded), lengths [N], y [N, T_out] targets
                   (training split; int8 calibration)
    test.npz       x, lengths, y of the test split (rnn2c verify)
    metrics.json   task "seq2seq", dataset, architecture, greedy and teacher-forced test figures,
                   "seq2seq": the token conventions and vocabularies the exporter needs
    curves.png     loss and teacher-forced token accuracy per epoch
    attention.png  the attention weights of one test sequence under greedy decoding
    EXPORT.txt     the rnn2c export / verify commands for this run

The conventions (input id 0 = padding; target id 0 = start, 1 = end, padding = end) are those of
:mod:`rnn2c.train.seq2seq_data`; the model is :func:`rnn2c.train.seq2seq.build_seq2seq`.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c import __version__
from rnn2c import qat as qaware
from rnn2c.interface import python_api
from rnn2c.outdir import OutputError, OwnedFolder

from .model import ConfigError
from .seq2seq import (
    ATTENTIONS,
    END,
    START,
    attention_weights,
    build_seq2seq,
    decoder_inputs,
    greedy_decode,
    sequence_scores,
    target_positions,
)
from .seq2seq_data import Seq2SeqData, load_seq2seq_dataset
from .train import (
    CLIPNORM,
    QAT_CALIBRATION,
    RUN_MANIFEST,
    QatPhase,
    RunError,
    check_qat,
    check_schedule,
    epoch_history,
    fit_best,
    lr_schedule,
    qat_phase,
    run_files,
    seeded_keras,
    write_run,
)

__all__ = ["SEQ2SEQ_DEFAULTS", "export_commands", "train_seq2seq"]

#: the defaults of `rnn2c train --task seq2seq` where they differ from the other tasks'
SEQ2SEQ_DEFAULTS: dict[str, Any] = {
    "dataset": "synthetic:dates",
    "cell": "gru",
    "units": 32,
    "embedding_dim": 16,
    "attention": "luong",
    "steps": 3000,
    "batch_size": 64,
    "lr": 3e-3,
    "label_smoothing": 0.1,
    "seed": 0,
    "val_split": 0.0,
    "patience": 10,
    "calib_size": 256,
}
MAX_EPOCHS = 1000
EXAMPLES = 8  # test sequences quoted in metrics.json


def export_commands(
    run_dir: str | os.PathLike[str],
    name: str,
    max_output_length: int,
    max_length: int,
    qat: bool = False,
) -> list[str]:
    """The commands that export and verify the seq2seq run in ``run_dir`` (a --qat run's
    export pins the calibration its fine-tuning read the grid with)."""
    run = str(run_dir).rstrip("/") or "/"
    q = shlex.quote
    pin = f" --calibration {QAT_CALIBRATION}" if qat else ""
    return [
        f"rnn2c export {q(run + '/model.keras')} --calib {q(run + '/calib.npz')} "
        f"--out {q(run + '/c')} --name {q(name)} --start-token {START} --end-token {END} "
        f"--max-output-length {max_output_length} --max-length {max_length}{pin}",
        f"rnn2c verify {q(run + '/model.keras')} {q(run + '/c')} --data {q(run + '/test.npz')}",
    ]


def check_seq2seq_config(
    cell: str,
    units: int,
    embedding_dim: int,
    attention: str,
    epochs: int | None,
    steps: int,
    batch_size: int,
    lr: float,
    label_smoothing: float,
    seed: int,
    val_split: float,
    patience: int,
    calib_size: int,
) -> None:
    """Raise :class:`ConfigError` (one line) for a setting out of range."""
    if cell == "rnn":
        raise ConfigError(
            "--cell rnn: --task seq2seq takes --cell gru or lstm (the encoder hands its state "
            "to the decoder; SimpleRNN seq2seq models are not exported)"
        )
    if cell not in ("gru", "lstm"):
        raise ConfigError(f"unknown cell {cell!r}; expected gru or lstm for --task seq2seq")
    if not 1 <= units <= 1024:
        raise ConfigError(f"--units {units}; expected an integer from 1 to 1024")
    if not 1 <= embedding_dim <= 1024:
        raise ConfigError(f"--embedding-dim {embedding_dim}; expected an integer from 1 to 1024")
    if attention not in ATTENTIONS:
        raise ConfigError(f"--attention {attention!r}; expected {' or '.join(ATTENTIONS)}")
    check_schedule(epochs, steps, batch_size, lr, val_split, patience, seed)
    if not (np.isfinite(label_smoothing) and 0.0 <= label_smoothing < 1.0):
        raise ConfigError(
            f"--label-smoothing {label_smoothing}; expected a fraction in [0, 1), e.g. 0.1"
        )
    if calib_size < 1:
        raise ConfigError(f"calib_size {calib_size}; expected a positive number of sequences")


def _batches(
    x: np.ndarray, lengths: np.ndarray, y: np.ndarray, vocab: int, batch_size: int, seed: int
) -> tuple[Any, int]:
    """Teacher-forcing batches ((encoder ids, decoder ids), one-hot targets, position weights)
    as a ``tf.data.Dataset``, and the batches per epoch.

    Bucketed by input length: each batch holds sequences of about one length and is cut to its
    longest, so the encoder does not run over padding (the batches' widths differ, hence a
    dataset with a declared signature). Deterministic: the order of the e-th pass comes from
    (seed, e).
    """
    import tensorflow as tf

    dec = decoder_inputs(y)
    weights = target_positions(y).astype(np.float32)
    eye = np.eye(vocab, dtype=np.float32)
    n_batches = math.ceil(len(x) / batch_size)
    passes = [0]

    def epoch() -> Any:
        rng = np.random.default_rng([seed, passes[0]])
        passes[0] += 1
        perm = rng.permutation(len(x))
        perm = perm[np.argsort(lengths[perm], kind="stable")]
        chunks = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
        for j in rng.permutation(len(chunks)):
            idx = chunks[j]
            width = int(lengths[idx].max())
            yield (x[idx, :width], dec[idx]), eye[y[idx]], weights[idx]

    t_out = y.shape[1]
    signature = (
        (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None, t_out), tf.int32)),
        tf.TensorSpec((None, t_out, vocab), tf.float32),
        tf.TensorSpec((None, t_out), tf.float32),
    )
    ds = tf.data.Dataset.from_generator(epoch, output_signature=signature)
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2), n_batches


def _most_frequent_sequence(y: np.ndarray) -> np.ndarray:
    """The most frequent target token at each position (a baseline that ignores the input)."""
    return np.array([np.bincount(col).argmax() for col in y.T], dtype=np.int32)


def _warnings(pred: np.ndarray, y: np.ndarray, scores: dict, base: dict) -> list[str]:
    out = []
    if scores["token_accuracy"] <= base["token_accuracy"] + 0.01:
        out.append(
            f"at chance level: greedy test token accuracy {100 * scores['token_accuracy']:.1f}% "
            "is no better than answering the most frequent target token at each position "
            f"({100 * base['token_accuracy']:.1f}%)"
        )
    if len(y) > 1 and len(np.unique(y, axis=0)) > 1 and len(np.unique(pred, axis=0)) == 1:
        out.append("the model answers the same sequence for every test input")
    return out


@python_api()
def train_seq2seq(
    dataset_spec: str | Seq2SeqData | None,
    out_dir: str | os.PathLike[str],
    cell: str = SEQ2SEQ_DEFAULTS["cell"],
    units: int = SEQ2SEQ_DEFAULTS["units"],
    embedding_dim: int = SEQ2SEQ_DEFAULTS["embedding_dim"],
    attention: str = SEQ2SEQ_DEFAULTS["attention"],
    epochs: int | None = None,
    steps: int = SEQ2SEQ_DEFAULTS["steps"],
    batch_size: int = SEQ2SEQ_DEFAULTS["batch_size"],
    lr: float = SEQ2SEQ_DEFAULTS["lr"],
    label_smoothing: float = SEQ2SEQ_DEFAULTS["label_smoothing"],
    seed: int = SEQ2SEQ_DEFAULTS["seed"],
    val_split: float = SEQ2SEQ_DEFAULTS["val_split"],
    patience: int = SEQ2SEQ_DEFAULTS["patience"],
    calib_size: int = SEQ2SEQ_DEFAULTS["calib_size"],
    force: bool = False,
    command: str | None = None,
    verbose: int | None = None,
    callbacks: list[Any] | None = None,
    qat: bool = False,
    qat_epochs: int | None = None,
) -> dict[str, Any]:
    """Train an encoder-decoder with attention on ``dataset_spec`` into the run folder
    ``out_dir``.

    Args:
        dataset_spec: ``synthetic:dates`` (None: the same), ``synthetic:reverse`` (either with
            ``:TRAIN[,TEST]`` sizes), an ``.npz`` of token ids, or a loaded
            :class:`~rnn2c.train.seq2seq_data.Seq2SeqData`.
        cell, units, embedding_dim, attention: the model (:func:`build_seq2seq`).
        epochs: None: ``ceil(steps / batches per epoch)`` (at most 1000).
        steps: the optimizer steps the learning-rate schedule spans (5 % warm-up from lr/10,
            then a cosine to lr/100).
        batch_size, lr: Adam's batch size and peak rate (gradients clipped to norm 1).
        label_smoothing: the cross-entropy target is (1 - s) on the token, s spread over all.
        seed: data generation (synthetic sets), the shuffle and the initial weights; op
            determinism is on, so the same seed gives the same model.
        val_split: a fraction of the training set held out to pick the epoch of the best
            teacher-forced token accuracy and stop after ``patience`` epochs without one; 0
            (the default): keep the epoch of the lowest training loss.
        calib_size: training sequences written to ``calib.npz``.
        force: replace the run in an existing non-empty ``out_dir``.
        command: recorded in metrics.json (default: ``sys.argv``).
        verbose: 0 prints nothing; otherwise progress lines on stderr.
        qat, qat_epochs: fine-tune on the export's int8 weight grid after training
            (rnn2c.qat; as `rnn2c train --qat`).
        callbacks: extra Keras callbacks (tests).

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        DatasetError, ConfigError, RunError: one-line messages, nothing written.
    """
    check_seq2seq_config(
        cell,
        units,
        embedding_dim,
        attention,
        epochs,
        steps,
        batch_size,
        lr,
        label_smoothing,
        seed,
        val_split,
        patience,
        calib_size,
    )
    check_qat(qat, qat_epochs, "int8")
    if isinstance(dataset_spec, Seq2SeqData):
        data, spec = dataset_spec, dataset_spec.name
    else:
        spec = dataset_spec or SEQ2SEQ_DEFAULTS["dataset"]
        data = load_seq2seq_dataset(spec, seed)
    inputs = [spec] if not spec.lower().startswith("synthetic:") else []
    try:
        with OwnedFolder(out_dir, RUN_MANIFEST, "--out", inputs) as folder:
            if not folder.is_empty_of_user_files():
                if not force:
                    raise RunError(
                        f"{out_dir} exists and is not empty; choose another --out or pass "
                        "--force to replace the run in it"
                    )
                folder.check_replaceable(run_files("seq2seq"))
            settings = _Settings(
                cell=cell,
                units=units,
                embedding_dim=embedding_dim,
                attention=attention,
                epochs=epochs,
                steps=steps,
                batch_size=batch_size,
                lr=lr,
                label_smoothing=label_smoothing,
                seed=seed,
                val_split=val_split,
                patience=patience,
                calib_size=calib_size,
                command=shlex.join(sys.argv) if command is None else command,
                verbose=1 if verbose is None else verbose,
                callbacks=callbacks or [],
                qat=bool(qat),
                qat_epochs=qat_epochs,
            )
            return _train_into(folder, data, spec, settings)
    except OutputError as e:
        raise RunError(str(e)) from None


@dataclass(frozen=True)
class _Settings:
    """A seq2seq run's settings, as train_seq2seq checked them (see its arguments)."""

    cell: str
    units: int
    embedding_dim: int
    attention: str
    epochs: int | None
    steps: int
    batch_size: int
    lr: float
    label_smoothing: float
    seed: int
    val_split: float
    patience: int
    calib_size: int
    command: str
    verbose: int
    callbacks: list[Any]
    qat: bool = False
    qat_epochs: int | None = None


@dataclass
class _Fitted:
    """The model phase's outcome: the model, the fit and the schedule it ran."""

    model: Any
    stopper: Any  # train.best_checkpoint_callback: history, best epoch
    interrupted: bool
    seconds: float
    epochs: int
    steps_per_epoch: int
    lr_schedule: dict[str, Any]
    qat: dict[str, Any] | None = None  # --qat: what the fine-tuning did (metrics.json "qat")


@dataclass
class _Evaluation:
    """The test phase's outcome: greedy outputs, their scores against the baseline, the
    teacher-forced accuracy, the examples metrics.json quotes."""

    pred: np.ndarray
    scores: dict[str, float]
    base: dict[str, float]
    forced: float
    seconds: float
    warnings: list[str]
    examples: list[dict[str, str]]


def _train_into(folder: OwnedFolder, data: Seq2SeqData, spec: str, s: _Settings) -> dict[str, Any]:
    """A run into the locked ``folder``, phase by phase: data, model and fit, test, files."""
    keras, tf = seeded_keras(s.seed)
    rng = np.random.default_rng([s.seed, 1])
    n = len(data.x_train)
    if s.val_split > 0.0:
        perm = rng.permutation(n)
        n_val = min(n - 1, max(1, int(round(s.val_split * n))))
        val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    else:
        tr_idx, val_idx = np.arange(n), np.zeros(0, dtype=np.int64)
    calib_idx = np.sort(rng.permutation(len(tr_idx))[: s.calib_size])
    calib_idx = tr_idx[calib_idx]
    fitted = _fit(keras, data, tr_idx, val_idx, s, calib_idx)
    ev = _evaluate(fitted.model, data, tr_idx, s.verbose)
    metrics = _metrics(data, spec, fitted, ev, len(val_idx) > 0, s)
    metrics.update(
        {
            "num_train": int(len(tr_idx)),
            "num_val": int(len(val_idx)),
            "num_test": int(len(data.x_test)),
            "num_calib": int(len(calib_idx)),
            "train_seconds": round(fitted.seconds, 2),
            "eval_seconds": round(ev.seconds, 2),
            "command": s.command,
            "argv": list(sys.argv),
            "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
            "history": epoch_history(fitted.stopper),
        }
    )
    if fitted.qat is not None:
        metrics["qat"] = fitted.qat
    _write(folder, data, fitted.model, ev, calib_idx, metrics)
    return metrics


def _fit(
    keras: Any,
    data: Seq2SeqData,
    tr_idx: np.ndarray,
    val_idx: np.ndarray,
    s: _Settings,
    calib_idx: np.ndarray,
) -> _Fitted:
    """Model and fit: the encoder-decoder built and fitted with teacher forcing under the
    learning-rate schedule, the best epoch kept."""
    v_in, v_out = len(data.input_vocab), len(data.output_vocab)
    model = build_seq2seq(
        v_in, v_out, s.cell, s.units, s.embedding_dim, s.attention, f"{data.name}_seq2seq"
    )
    batches, steps_per_epoch = _batches(
        data.x_train[tr_idx],
        data.lengths_train[tr_idx],
        data.y_train[tr_idx],
        v_out,
        s.batch_size,
        s.seed,
    )
    epochs = s.epochs
    if epochs is None:
        epochs = int(min(MAX_EPOCHS, max(1, math.ceil(s.steps / steps_per_epoch))))
    schedule, schedule_info = lr_schedule(keras, s.lr, epochs * steps_per_epoch)

    def compile_(lr: Any) -> None:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr, clipnorm=CLIPNORM),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=s.label_smoothing),
            weighted_metrics=["accuracy"],
        )

    compile_(schedule)
    validation = _teacher_forced(data, val_idx, v_out) if len(val_idx) > 0 else None

    def fit(cbs: list[Any], n: int) -> Any:
        return model.fit(
            batches,
            shuffle=False,  # the batches are shuffled (bucketed by length) per epoch
            validation_data=validation,
            epochs=n,
            callbacks=cbs,
            verbose=0,
        )

    stopper, interrupted, seconds = fit_best(
        keras,
        lambda cbs: fit(cbs, epochs),
        epochs=epochs,
        patience=s.patience,
        has_val=len(val_idx) > 0,
        by_accuracy=True,
        verbose=s.verbose,
        callbacks=s.callbacks,
    )
    qat_info = None
    if s.qat and not interrupted:  # the grid of the export EXPORT.txt runs (START, END, lengths)
        cal = data.x_train[calib_idx], data.lengths_train[calib_idx], data.y_train[calib_idx]
        selection = validation or _teacher_forced(data, tr_idx, v_out)
        phase = QatPhase(
            lambda: qaware.grids(
                model,
                quantized=qaware.quantized_seq2seq(
                    model, *cal, (START, END), (data.max_length, data.max_output_length)
                ),
            ),
            compile_,
            fit,
            steps_per_epoch,
            len(val_idx) > 0,
            True,
            model,
            lambda cbs: np.asarray(model.predict(list(selection[0]), verbose=0, callbacks=cbs)),
            selection[2],
            "validation split" if validation else "training data",
        )
        qat_info, interrupted, more = qat_phase(
            keras, phase, epochs, s.qat_epochs, s.lr, "int8", s.patience, s.verbose, s.callbacks
        )
        seconds += more
    return _Fitted(
        model, stopper, interrupted, seconds, epochs, steps_per_epoch, schedule_info, qat_info
    )


def _teacher_forced(data: Seq2SeqData, idx: np.ndarray, v_out: int) -> tuple[Any, ...]:
    """Training sequences idx as fit and evaluate take them: ((inputs, decoder inputs), one-hot
    targets, the scored positions' weights)."""
    y = data.y_train[idx]
    return (
        (data.x_train[idx], decoder_inputs(y)),
        np.eye(v_out, dtype=np.float32)[y],
        target_positions(y).astype(np.float32),
    )


def _evaluate(model: Any, data: Seq2SeqData, tr_idx: np.ndarray, verbose: int) -> _Evaluation:
    """Test: teacher forcing (padded batches; the encoder mask skips the padding), then greedy
    decoding (each length group cut to its real length, as the C runs), against the most
    frequent target token per position."""
    t1 = time.perf_counter()
    if verbose:
        print(f"greedy decoding {len(data.x_test)} test sequences ...", file=sys.stderr)
    probs = model.predict([data.x_test, decoder_inputs(data.y_test)], batch_size=256, verbose=0)
    scored = target_positions(data.y_test)
    forced = float((np.asarray(probs).argmax(-1) == data.y_test)[scored].mean())
    pred = greedy_decode(model, data.x_test, data.lengths_test, START, END, data.max_output_length)
    scores = sequence_scores(pred, data.y_test)
    base_seq = _most_frequent_sequence(data.y_train[tr_idx])
    base = sequence_scores(np.tile(base_seq, (len(data.y_test), 1)), data.y_test)
    seconds = time.perf_counter() - t1
    warnings = _warnings(pred, data.y_test, scores, base)

    wrong = np.flatnonzero(np.any((pred != data.y_test) & scored, axis=1))
    right = np.setdiff1d(np.arange(len(pred)), wrong)
    shown = np.concatenate([right[: EXAMPLES - min(len(wrong), EXAMPLES // 2)], wrong])
    examples = [
        {
            "input": data.decode_input(data.x_test[i], data.lengths_test[i]),
            "target": data.decode_output(data.y_test[i]),
            "output": data.decode_output(pred[i]),
        }
        for i in shown[:EXAMPLES]
    ]
    return _Evaluation(pred, scores, base, forced, seconds, warnings, examples)


def _metrics(
    data: Seq2SeqData, spec: str, fitted: _Fitted, ev: _Evaluation, has_val: bool, s: _Settings
) -> dict[str, Any]:
    """metrics.json up to the run's sizes: test figures, the token conventions, the model, the
    fit and its schedule."""
    t_in, t_out = data.max_length, data.max_output_length
    stopper = fitted.stopper
    return {
        "dataset": data.name,
        "dataset_spec": spec,
        "task": "seq2seq",
        "decoding": "greedy",
        "float_test_token_accuracy": ev.scores["token_accuracy"],
        "float_test_exact_sequence_rate": ev.scores["exact_sequence_rate"],
        "float_test_teacher_forced_token_accuracy": ev.forced,
        "most_frequent_baseline": ev.base,
        "examples": ev.examples,
        "warnings": ev.warnings,
        "chance_level": bool(ev.warnings),
        "seq2seq": {
            "start_token": START,
            "end_token": END,
            "max_output_length": t_out,
            "max_length": t_in,
            "input_vocab": list(data.input_vocab),
            "output_vocab": list(data.output_vocab),
        },
        "max_length": t_in,
        "max_output_length": t_out,
        "input_vocab_size": len(data.input_vocab),
        "output_vocab_size": len(data.output_vocab),
        "cell": s.cell,
        "units": s.units,
        "embedding_dim": s.embedding_dim,
        "attention": s.attention,
        "layers": 1,
        "num_params": int(fitted.model.count_params()),
        "epochs_run": stopper.epochs_seen,
        "best_epoch": int(stopper.best_epoch) + 1 if stopper.best_epoch >= 0 else 0,
        "interrupted": fitted.interrupted,
        "selection": "max val_accuracy (teacher-forced tokens), then min val_loss"
        if has_val
        else "min training loss (no validation split; the schedule runs to the end)",
        "epochs_max": fitted.epochs,
        "steps_per_epoch": fitted.steps_per_epoch,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "label_smoothing": s.label_smoothing,
        "clipnorm": CLIPNORM,
        "lr_schedule": fitted.lr_schedule,
        "seed": s.seed,
        "val_split": s.val_split,
        "patience": s.patience,
    }


def _write(
    folder: OwnedFolder,
    data: Seq2SeqData,
    model: Any,
    ev: _Evaluation,
    calib_idx: np.ndarray,
    metrics: dict[str, Any],
) -> None:
    """Files: model.keras, calib.npz, test.npz, metrics.json, the plots, EXPORT.txt."""

    def fill(tmp: Path) -> None:
        model.save(tmp / "model.keras")
        np.savez(
            tmp / "calib.npz",
            x=data.x_train[calib_idx].astype(np.int32),
            lengths=data.lengths_train[calib_idx].astype(np.int64),
            y=data.y_train[calib_idx].astype(np.int32),
        )
        np.savez(
            tmp / "test.npz",
            x=data.x_test.astype(np.int32),
            lengths=data.lengths_test.astype(np.int64),
            y=data.y_test.astype(np.int32),
        )
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _plots(tmp, model, data, ev.pred, metrics, metrics["history"])
        lines = [
            "# Export the seq2seq model of this run to int8 C and check it against Keras (float, "
            f"greedy decoding: test exact-sequence rate {ev.scores['exact_sequence_rate']:.4f}, "
            f"token accuracy {ev.scores['token_accuracy']:.4f}):",
            *export_commands(
                folder.path,
                data.name,
                data.max_output_length,
                data.max_length,
                "qat" in metrics,
            ),
        ]
        (tmp / "EXPORT.txt").write_text("\n".join(lines) + "\n")

    write_run(
        folder,
        run_files("seq2seq"),
        fill,
        {
            "rnn2c_version": __version__,
            "kind": "train run",
            "task": "seq2seq",
            "dataset": data.name,
            "float_test_exact_sequence_rate": ev.scores["exact_sequence_rate"],
        },
    )


def _plots(
    tmp: Path,
    model: Any,
    data: Seq2SeqData,
    pred: np.ndarray,
    metrics: dict[str, Any],
    history: dict[str, list[float]],
) -> None:
    from . import plots

    arch = (
        f"{metrics['cell'].upper()}({metrics['units']}) seq2seq, {metrics['attention']} attention"
    )
    plots.plot_curves(history, tmp / "curves.png", f"{data.name} {arch}")
    i = 0  # the first test sequence
    length = int(data.lengths_test[i])
    row = pred[i]
    ends = np.flatnonzero(row == END)
    tokens = row[: int(ends[0]) + 1] if ends.size else row
    weights = attention_weights(model, data.x_test[i], length, tokens)
    plots.plot_attention(
        weights,
        [data.input_vocab[int(t)] for t in data.x_test[i, :length]],
        [data.output_vocab[int(t)] if 0 <= t < len(data.output_vocab) else "?" for t in tokens],
        tmp / "attention.png",
        f"{data.name}: attention weights under greedy decoding (test sequence {i})",
    )


def summary_lines(metrics: dict[str, Any], out: str) -> list[str]:
    """The lines `rnn2c train --task seq2seq` prints when it is done."""
    stop = (
        f"interrupted after {metrics['epochs_run']} epochs (kept best {metrics['best_epoch']})"
        if metrics["interrupted"]
        else f"{metrics['epochs_run']} epochs (best {metrics['best_epoch']})"
    )
    base = metrics["most_frequent_baseline"]
    lines = [
        f"{metrics['dataset']} (seq2seq): {metrics['cell'].upper()}({metrics['units']}) "
        f"encoder-decoder, {metrics['attention']} attention, embedding "
        f"{metrics['embedding_dim']}, {metrics['num_params']} parameters, {stop}, "
        f"{metrics['train_seconds']:.0f} s",
        "float test, greedy decoding: exact sequences "
        f"{metrics['float_test_exact_sequence_rate']:.4f}, token accuracy "
        f"{metrics['float_test_token_accuracy']:.4f} (teacher-forced "
        f"{metrics['float_test_teacher_forced_token_accuracy']:.4f}; most frequent token per "
        f"position {base['token_accuracy']:.4f})",
    ]
    if "qat" in metrics:
        q = metrics["qat"]
        kept = "the post-training" if q.get("best_epoch") == 0 else "the fine-tuned"
        lines.append(
            f"qat: {q['epochs_run']} epochs on the int8 weight grid (the figures above are "
            f"{kept} model's)" + (f"; {q['selection']['kept']}" if "selection" in q else "")
        )
    lines += [f"WARNING: {w}" for w in metrics["warnings"]]
    info = metrics["seq2seq"]
    lines += [f"run folder: {out}", "export and verify with:"]
    lines += [
        f"  {cmd}"
        for cmd in export_commands(
            out, metrics["dataset"], info["max_output_length"], info["max_length"], "qat" in metrics
        )
    ]
    return lines
