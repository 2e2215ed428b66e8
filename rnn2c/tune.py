"""`rnn2c tune`: the most accurate model that fits a device budget, measured exactly.

A multi-objective Optuna study (int8 C accuracy up, or for regress int8 C MAE down;
instructions per step down) over the architectures `rnn2c train` builds (train/tune_space.py),
QAT (`train --qat`) and a token dataset's Embedding width included. Each trial:

1. **measure before training**: the candidate built and trained for one epoch on four
   sequences (an untrained model has the same flash, RAM and instructions), exported and counted
   by `rnn2c size`'s machinery (emulator/size.py); a candidate over the flash, RAM or
   instruction budget stops here;
2. **a short schedule** (a quarter of the steps): a candidate whose accuracy falls below the
   median of the earlier trials' at this stage is pruned (successive halving's rule);
3. **the full schedule** (then TRIAL_QAT_EPOCHS of fine-tuning for a QAT candidate), exported
   again and **verified in C** (emulator/verify.py): its int8 C accuracy (MAE) is the score.

Candidates are trained on part of the training set and scored on the rest (the tuning split),
never on the test set. The best candidate (within the budget, the fewest instructions among
those within one standard error of the most accurate: tune_report.pick_best) is trained again
by the plain `rnn2c train` command with its flags on the whole training set into ``DIR/best``
(a normal run folder), exported, counted and verified on the test set: those are the figures
reported. The study lives in SQLite under DIR (or ``--storage``) and resumes; Ctrl-C keeps the
finished trials; tune.json and pareto.png are written from the study (rnn2c/tune_report.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn2c import __version__, tune_report
from rnn2c.outdir import OutputError, OwnedFolder

__all__ = ["Budget", "TuneError", "TuneSettings", "parse_bytes", "parse_duration", "tune"]

MANIFEST = "rnn2c-tune.json"
STUDY_NAME = "rnn2c-tune"
TUNE_TASKS = ("classify", "tag", "regress")
SHORT_FRACTION = 4  # the short schedule: steps / 4
PRUNE_AFTER = 2  # trials that reached the short stage before the median rule applies
TRIAL_QAT_EPOCHS = 5  # a QAT candidate's fine-tuning epochs in its trial (full schedule only)


class TuneError(ValueError):
    """Bad input for `rnn2c tune`; the message is one line."""


@dataclass(frozen=True)
class Budget:
    """The device budget: flash and RAM in bytes, instructions per model step (None: no
    limit)."""

    flash: int
    ram: int
    instructions: int | None

    def excess(self, flash: int, ram: int, instructions: float) -> float:
        """How far over the budget, as the largest relative excess (<= 0: it fits)."""
        over = [flash / self.flash - 1.0, ram / self.ram - 1.0]
        if self.instructions is not None:
            over.append(instructions / self.instructions - 1.0)
        return max(over)

    def to_dict(self) -> dict[str, Any]:
        return {"flash": self.flash, "ram": self.ram, "instructions_per_step": self.instructions}


@dataclass
class TuneSettings:
    dataset: str
    task: str
    target: str
    budget: Budget
    out: Path
    trials: int = 20
    time_budget: float | None = None  # seconds
    storage: str | None = None
    steps: int = 1000
    final_steps: int = 3000
    val_fraction: float = 0.25
    seed: int = 0
    quiet: bool = False
    # filled in at the start
    weights: tuple[str, ...] = ("int8",)
    notes: list[str] = field(default_factory=list)

    def key(self) -> dict[str, Any]:
        """What a resumed study must share with the one stored."""
        return {
            "dataset": self.dataset,
            "task": self.task,
            "target": self.target,
            "budget": self.budget.to_dict(),
            "steps": self.steps,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }


_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2}


def parse_bytes(text: str, flag: str) -> int:
    """``32K``, ``32KB``, ``1M`` or a number of bytes."""
    t = text.strip().upper()
    num = t.rstrip("KMIB")
    unit = t[len(num) :]
    try:
        value = float(num) * _UNITS[unit]
    except (ValueError, KeyError):
        raise TuneError(f"{flag} {text!r}; expected bytes such as 32K, 4K, 1M or 2048") from None
    if value < 1:
        raise TuneError(f"{flag} {text!r}; expected a positive size such as 32K")
    return int(value)


def parse_duration(text: str) -> float:
    """``30m``, ``90s``, ``1h``, ``1h30m`` or a number of seconds."""
    t = text.strip().lower()
    total, num = 0.0, ""
    try:
        for ch in t:
            if ch.isdigit() or ch == ".":
                num += ch
            elif ch in "hms" and num:
                total += float(num) * {"h": 3600, "m": 60, "s": 1}[ch]
                num = ""
            else:
                raise ValueError
        total += float(num) if num else 0.0
    except ValueError:
        total = -1.0
    if total <= 0:
        raise TuneError(f"--time-budget {text!r}; expected a duration such as 30m, 90s or 1h")
    return total


def _say(s: TuneSettings, line: str) -> None:
    if not s.quiet:
        print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- measuring


def _export(run: Path, out: Path, cand: Any, max_length: int | None = None) -> Any:
    """Export a run folder's model as its EXPORT.txt says (per-feature input quantization, the
    candidate's state and weight precision)."""
    from rnn2c.export import export_model  # noqa: PLC0415
    from rnn2c.train.train import QAT_CALIBRATION  # noqa: PLC0415

    kw: dict[str, Any] = {}
    if cand.weights != "int8":
        kw["weights"] = cand.weights
    if cand.qat:  # the calibration the fine-tuning's grid used (EXPORT.txt's --calibration)
        kw["calibration"] = QAT_CALIBRATION
    return export_model(
        str(run / "model.keras"),
        str(run / "calib.npz"),
        out,
        name="model",
        # ids into an Embedding have no input scale
        input_quant="per-tensor" if cand.embedding_dim is not None else "per-feature",
        activations=cand.activations,
        max_length=max_length,
        **kw,
    )


def _size(c_dir: Path, target: str, sequences: int = 2, steps: int = 16) -> dict[str, Any]:
    from rnn2c.emulator.size import measure  # noqa: PLC0415

    rep = measure(c_dir, target, "O2", None, sequences, steps)
    return {
        "flash": int(rep.flash),
        "ram": int(rep.ram),
        "instructions_mean": round(float(rep.instructions_mean), 1),
        "instructions_max": int(rep.instructions_max),
        "bit_exact_on_target": bool(rep.bit_exact),
    }


def _verify(run: Path, c_dir: Path, data: Path, task: str) -> dict[str, Any]:
    """verify's figures: float and int8 C accuracy (classify, tag) or MAE (regress)."""
    from rnn2c.emulator import verify  # noqa: PLC0415

    rep = verify(str(run / "model.keras"), c_dir, str(data))
    if tune_report.score_of(task).higher_better:
        figures = {"float_accuracy": rep.float_accuracy, "int8_accuracy": rep.int8_accuracy}
    else:
        figures = {"float_mae": rep.float_mae, "int8_mae": rep.int8_mae}
    return {
        **figures,
        "agreement": rep.agreement,
        "c_bit_exact": bool(rep.bit_exact),
        "verify_passed": bool(rep.passed),
    }


def _train(data: Any, run: Path, cand: Any, s: TuneSettings, **kw: Any) -> dict[str, Any]:
    from rnn2c.train.train import train_run  # noqa: PLC0415

    metrics = train_run(
        data,
        run,
        task=s.task,
        seed=s.seed,
        force=True,
        verbose=0,
        command="rnn2c tune (a trial)",
        **{**cand.train_kwargs(), **kw},
    )
    if metrics["interrupted"]:  # train keeps a Ctrl-C to itself; the study stops on it
        raise KeyboardInterrupt
    return metrics


# ---------------------------------------------------------------------------- one trial


def _short_median(study: Any, key: str) -> float | None:
    """The median short-schedule score (``key``: short_accuracy, short_mae) of the earlier
    trials that reached that stage."""
    vals = sorted(
        t.user_attrs[key] for t in study.get_trials(deepcopy=False) if key in t.user_attrs
    )
    if len(vals) < PRUNE_AFTER:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else 0.5 * (vals[mid - 1] + vals[mid])


def _objective(s: TuneSettings, data: Any, space: dict[str, Any]) -> Any:
    import optuna  # noqa: PLC0415

    from rnn2c.train.tune_space import probe_subset, suggest  # noqa: PLC0415

    score = tune_report.score_of(s.task)
    keras_key = f"float_test_{score.name}"  # train's metrics.json figure of the short run

    def objective(trial: Any) -> tuple[float, float]:
        try:
            return measured(trial)
        except optuna.TrialPruned:
            raise
        except Exception as e:  # the study goes on; the trial's row says why it failed
            trial.set_user_attr("stage", f"failed: {' '.join(str(e).split())[:300]}")
            raise

    def measured(trial: Any) -> tuple[float, float]:
        t0 = time.perf_counter()
        cand = suggest(trial, space["frames"], s.weights, space["frontends"], space["embeddings"])
        trial.set_user_attr("architecture", cand.to_dict())
        trial.set_user_attr("describe", cand.describe())
        with tempfile.TemporaryDirectory(prefix="rnn2c-tune-") as scratch:
            work = Path(scratch)
            # QAT moves weights, not sizes: the probe and the short schedule train without it
            _train(probe_subset(data), work / "probe", cand, s, epochs=1, qat=False)
            _export(work / "probe", work / "probe_c", cand)
            size = _size(work / "probe_c", s.target)
            for k, v in size.items():
                trial.set_user_attr(k, v)
            excess = s.budget.excess(size["flash"], size["ram"], size["instructions_max"])
            trial.set_user_attr("excess", excess)
            trial.set_constraint("budget", excess)  # the sampler learns where the budget ends
            if excess > 0:
                trial.set_user_attr("stage", "over budget (measured before training)")
                _progress(s, trial, t0)
                # never better than a candidate that fits (the constraint says why)
                return (0.0 if score.higher_better else 1e30), size["instructions_mean"]
            short = _train(
                data, work / "short", cand, s, steps=max(1, s.steps // SHORT_FRACTION), qat=False
            )
            median = _short_median(trial.study, f"short_{score.name}")
            trial.set_user_attr(f"short_{score.name}", short[keras_key])
            if median is not None and score.better(median, short[keras_key]):
                trial.set_user_attr("stage", "pruned after the short schedule")
                _progress(s, trial, t0)
                raise optuna.TrialPruned()
            full = _train(data, work / "full", cand, s, steps=s.steps, **_trial_qat(cand))
            _record_qat(trial, full, score.name)
            _export(work / "full", work / "full_c", cand)
            ver = _verify(work / "full", work / "full_c", work / "full" / "test.npz", s.task)
        for k, v in ver.items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("stage", "verified in C")
        _progress(s, trial, t0)
        if ver[f"int8_{score.name}"] is None:
            raise RuntimeError(f"verify gave no int8 C {score.name}")
        return float(ver[f"int8_{score.name}"]), size["instructions_mean"]

    return objective


def _trial_qat(cand: Any) -> dict[str, Any]:
    """A QAT candidate's trial fine-tunes TRIAL_QAT_EPOCHS epochs (the chosen model's `train
    --qat` runs train's own count)."""
    return {"qat_epochs": TRIAL_QAT_EPOCHS} if cand.qat else {}


def _record_qat(trial: Any, metrics: dict[str, Any], name: str) -> None:
    """A QAT trial's fine-tuning, as train measured it on the tuning split: the integer model's
    (bit-exact with the C) accuracy or MAE (``name``) before and after it."""
    q = metrics.get("qat")
    if not q:
        return
    test = q.get("test") or {}
    trial.set_user_attr(
        "qat",
        {
            "epochs": q["epochs"],
            "figure": name,
            "int_before": test.get(f"int_{name}_before"),
            "int_after": test.get(f"int_{name}_after"),
        },
    )


def _progress(s: TuneSettings, trial: Any, t0: float) -> None:
    a = trial.user_attrs
    trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
    sc = tune_report.score_of(s.task)
    acc = ""
    if f"int8_{sc.name}" in a:
        acc = (
            f", tuning-split {sc.name} float {a[f'float_{sc.name}']:{sc.spec}} int8 C "
            f"{a[f'int8_{sc.name}']:{sc.spec}}"
        )
    elif f"short_{sc.name}" in a:
        acc = f", short-schedule {sc.name} {a[f'short_{sc.name}']:{sc.spec}}"
    _say(
        s,
        f"rnn2c tune: trial {trial.number}: {a['describe']}: flash {a['flash']} B, RAM "
        f"{a['ram']} B, {a['instructions_mean']:.0f} instructions/step (max "
        f"{a['instructions_max']}){acc}; {a['stage']} ({time.perf_counter() - t0:.0f} s)",
    )


# ---------------------------------------------------------------------------- the study


def _study(s: TuneSettings, default: dict[str, Any]) -> Any:
    import optuna  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = s.storage or f"sqlite:///{(s.out / 'study.db').absolute()}"
    sampler = optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=5)
    try:
        study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=storage,
            directions=[
                "maximize" if tune_report.score_of(s.task).higher_better else "minimize",
                "minimize",
            ],
            sampler=sampler,
            load_if_exists=True,
        )
    except Exception as e:  # noqa: BLE001 - any storage failure is one line
        raise TuneError(
            f"--storage {storage!r}: cannot open the study ({e}); expected an SQLAlchemy "
            "database URL such as sqlite:///study.db or postgresql://user@host/db"
        ) from None
    # a resumed study draws afresh: the same seed would repeat the first run's random draws
    study.sampler = optuna.samplers.TPESampler(
        seed=s.seed + len(study.get_trials(deepcopy=False)), n_startup_trials=5
    )
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", s.key())
        study.enqueue_trial(default)  # train's default architecture is always measured
    elif stored != s.key():
        differ = ", ".join(k for k in s.key() if stored.get(k) != s.key()[k])
        raise TuneError(
            f"the study in {storage} was run with another {differ}; use another --out (or "
            "--storage), or the same settings to resume it"
        )
    return study


def _load(s: TuneSettings) -> tuple[Any, Any, dict[str, Any]]:
    """The dataset (its test set kept for the end), the tuning split and the search space."""
    from rnn2c.train.data import DatasetError, load_dataset  # noqa: PLC0415
    from rnn2c.train.train import EMBEDDING_DIM  # noqa: PLC0415
    from rnn2c.train.tune_space import (  # noqa: PLC0415
        EMBEDDING_DIMS,
        auto_frame,
        frame_choices,
        frontend_choices,
        tuning_split,
    )

    try:
        ds = load_dataset(s.dataset, s.seed, s.task)
        split = tuning_split(ds, s.val_fraction, s.seed)
    except (DatasetError, ValueError) as e:
        raise TuneError(str(e)) from None
    frames = frame_choices(ds)
    tokens = bool(ds.vocab_size)
    space = {
        "frames": frames,
        "frontends": frontend_choices(s.task, tokens),
        "embeddings": EMBEDDING_DIMS if tokens else (),
        "default": {
            "cell": "gru",
            "units": 32,
            "layers": 1,
            "frame": auto_frame(ds),
            "frontend": "none",
            "activations": "int8",
            "weights": "int8",
            "qat": False,
            **({"embedding_dim": EMBEDDING_DIM} if tokens else {}),
        },
    }
    return ds, split, space


def tune(s: TuneSettings) -> dict[str, Any]:
    """Run (or resume) the study and write DIR; returns tune.json's content."""
    if s.task not in TUNE_TASKS:
        raise TuneError(
            f"--task {s.task}: tune ranks candidates by int8 C accuracy or MAE on a held-out "
            f"part of the training sequences; it takes {', '.join(TUNE_TASKS)} (forecast: not "
            "yet, its windows come from one series in time order)"
        )
    try:
        import optuna  # noqa: F401, PLC0415
    except ImportError:
        raise TuneError(
            "rnn2c tune needs optuna: pip install 'rnn2c[tune]' (make venv installs it)"
        ) from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes per trial
    s.weights = ("int8", "int4")
    try:
        with OwnedFolder(s.out, MANIFEST, "--out") as folder:
            return _run(s, folder)
    except OutputError as e:
        raise TuneError(str(e)) from None


def _run(s: TuneSettings, folder: OwnedFolder) -> dict[str, Any]:
    ds, split, space = _load(s)
    study = _study(s, space["default"])
    done = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
    left = max(0, s.trials - done)
    t0 = time.perf_counter()
    interrupted = False
    if done:
        _say(s, f"rnn2c tune: resuming the study in {s.out}: {done} trials done, {left} to go")
    if left:
        try:
            study.optimize(
                _objective(s, split, space),
                n_trials=left,
                timeout=s.time_budget,
                catch=(Exception,),
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            interrupted = True
            _say(s, "rnn2c tune: interrupted; the finished trials are kept (run again to resume)")
    trials = tune_report.trial_rows(study, s.budget)
    score = tune_report.score_of(s.task)
    scored = _scored(split, s.task)
    best_row = tune_report.pick_best(trials, score, scored)
    best = None
    if best_row is not None and not interrupted:
        best = _final(s, ds, best_row)
    chosen_by = tune_report.selection(trials, best_row, score, scored)
    result = tune_report.result(s, trials, best, interrupted, time.perf_counter() - t0, chosen_by)
    folder.write(
        {
            "tune.json": tune_report.json_bytes(result),
            "pareto.png": tune_report.pareto_png(result),
        },
        {"rnn2c_version": __version__, "kind": "tune", "dataset": s.dataset, "target": s.target},
    )
    return result


def _scored(split: Any, task: str) -> int | None:
    """How many items the tuning split scores an accuracy on: its sequences (classify) or its
    real steps (tag); None for MAE, which the one-standard-error rule does not use."""
    if task == "classify":
        return int(len(split.y_test))
    if task == "tag":
        return int(sum(int(n) for n in split.lengths_test))
    return None


def _final(s: TuneSettings, ds: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The chosen architecture trained by its plain `rnn2c train` command on the whole training
    set into DIR/best, exported, counted and verified on the test set."""
    from rnn2c.train.tune_space import Candidate  # noqa: PLC0415

    cand = Candidate(**row["architecture"])
    best = s.out / "best"
    cmd = shlex.join(
        [
            "rnn2c",
            "train",
            "--dataset",
            s.dataset,
            "--task",
            s.task,
            *cand.train_flags(),
            "--steps",
            str(s.final_steps),
            "--seed",
            str(s.seed),
            "--out",
            str(best),
        ]
    )
    _say(s, f"rnn2c tune: training the chosen model: {cmd}")
    from rnn2c.train.train import train_run  # noqa: PLC0415

    metrics = train_run(
        ds,
        best,
        task=s.task,
        seed=s.seed,
        steps=s.final_steps,
        force=True,
        verbose=0,
        command=cmd,
        **cand.train_kwargs(),
    )
    c_dir = best / "c"
    _export(best, c_dir, cand)
    size = _size(c_dir, s.target, sequences=4, steps=16)
    ver = _verify(best, c_dir, best / "test.npz", s.task)
    name = tune_report.score_of(s.task).name
    return {
        "trial": row["number"],
        "architecture": row["architecture"],
        "describe": row["describe"],
        "train_command": cmd,
        "size_command": f"rnn2c size {shlex.quote(str(c_dir))} --target {s.target}",
        f"float_test_{name}_keras": metrics[f"float_test_{name}"],
        **size,
        f"test_float_{name}": ver[f"float_{name}"],
        f"test_int8_{name}": ver[f"int8_{name}"],
        "verify_passed": ver["verify_passed"],
        "fits": s.budget.excess(size["flash"], size["ram"], size["instructions_max"]) <= 0,
    }
