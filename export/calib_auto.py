"""--calibration auto: a calibration method per tensor range, chosen by the end-to-end error.

Each range-bearing tensor (the model input, a calibrated Dense/Conv1D output or pre-activation,
an LSTM cell state, a merge's output) takes its range from one of the methods of
``CANDIDATES``. The search, deterministic:

1. quantize with each method for every tensor (the fixed methods) and keep the best;
2. then greedily, tensor by tensor in data-flow order (the order the quantizer asks for them),
   try every other method for that tensor alone and keep it where it lowers the error.

The error of a quantized model is that of its integer reference (export/reference.py, the C bit
for bit) against the float model on the calibration set (a fixed subsample of at most
``EVAL_SEQUENCES`` sequences and ``EVAL_STEPS`` steps in all), relative to the float output's
range: at each compared step (every real step of a per-step model, the last one of a last-step
model) the largest |int8 - float| over the outputs; the score is the worst such step, then the
99.9th percentile of them (``Score.key``). So the result is never worse on that score than the
best fixed method, and every range is still computed on the whole calibration set.

quantize.quantize_model holds the hook: Observer.methods overrides the method per tensor key, and
the float pass runs once (``observed``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, ModelIR, Observer, QuantModel
from rnn2c.export.quant_rules import CALIBRATION_METHODS, EXTRA_METHODS, choose_range
from rnn2c.export.quantize import observe_model, quantize_model
from rnn2c.export.reference import run_int

AUTO = "auto"
#: the --calibration choices of every command (auto the default)
CALIBRATION_CHOICES = (AUTO, *CALIBRATION_METHODS)
#: the methods auto tries per tensor, in the order it tries them (ties keep the earlier)
CANDIDATES = (*CALIBRATION_METHODS, *EXTRA_METHODS)
#: the calibration sequences (at most) and steps in all (at most, at least 16 sequences) the
#: integer reference runs for each tried quantization
EVAL_SEQUENCES = 256
EVAL_STEPS = 1 << 15


@dataclass(frozen=True)
class Score:
    """A quantized model's error against float, as fractions of the float output range."""

    worst: float  # the worst compared step
    p999: float  # the 99.9th percentile of the compared steps

    def key(self) -> tuple[float, float]:
        return (self.worst, self.p999)

    def describe(self) -> str:
        return f"worst step {100 * self.worst:.2f}%, p99.9 {100 * self.p999:.2f}%"


@dataclass
class Choice:
    """The method auto kept for one tensor, and the score before and after choosing it."""

    tensor: str  # the observer key: "input", "<layer>.output", "<layer>.cell", ...
    name: str  # the same in the model's layer names: "dense_1.output"
    method: str
    before: Score
    after: Score

    def line(self) -> str:
        kept = "kept" if self.after == self.before else "chose"
        return (
            f"calibration auto: {self.name}: {kept} {self.method} (worst step "
            f"{100 * self.before.worst:.2f}% -> {100 * self.after.worst:.2f}%, p99.9 "
            f"{100 * self.before.p999:.2f}% -> {100 * self.after.p999:.2f}%)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tensor": self.name,
            "method": self.method,
            "worst_before": self.before.worst,
            "worst_after": self.after.worst,
            "p999_before": self.before.p999,
            "p999_after": self.after.p999,
        }


@dataclass
class AutoResult:
    """What quantize_auto chose: the quantized model, the fixed methods' scores, the method it
    started from and the choice per tensor."""

    qmodel: QuantModel
    fixed: dict[str, Score]  # method for every tensor -> its score
    start: str
    choices: list[Choice] = field(default_factory=list)
    sequences: int = 0  # the calibration sequences the scores are measured on
    trials: int = 0  # quantizations tried

    @property
    def score(self) -> Score:
        return self.choices[-1].after if self.choices else self.fixed[self.start]

    def lines(self) -> list[str]:
        fixed = ", ".join(f"{m} {s.describe()}" for m, s in self.fixed.items())
        head = (
            f"calibration auto: {len(self.choices)} ranges over {self.sequences} calibration "
            f"sequences; every tensor alike: {fixed}; starting from {self.start}"
        )
        return [head, *(c.line() for c in self.choices)]

    def to_json(self) -> dict[str, Any]:
        """The manifest's record (rnn2c.json "calibration_auto")."""
        return {
            "sequences": self.sequences,
            "metric": "worst step, then 99.9th percentile, of max |int8 - float| over the "
            "outputs, relative to the float output range",
            "fixed": {m: [s.worst, s.p999] for m, s in self.fixed.items()},
            "start": self.start,
            "choices": [c.to_json() for c in self.choices],
            "worst": self.score.worst,
            "p999": self.score.p999,
        }


def step_errors(
    qmodel: QuantModel, xq: np.ndarray, lengths: np.ndarray, y_float: np.ndarray
) -> np.ndarray:
    """max |int8 - float| over the outputs at each compared step (every real step of a model
    that returns sequences, else each sequence's last), relative to the float output range."""
    y_int = qmodel.output_q.dequantize(run_int(qmodel, xq, lengths).astype(np.int64))
    n, t = y_float.shape[:2]
    if qmodel.returns_sequences:
        mask = np.arange(t)[None, :] < lengths[:, None]
    else:
        mask = np.zeros((n, t), dtype=bool)
        mask[np.arange(n), np.maximum(lengths - 1, 0)] = lengths > 0
    yf, yi = y_float[mask], y_int[mask]
    if yf.size == 0:
        return np.zeros(1)
    span = float(yf.max() - yf.min())
    return np.abs(yi - yf).max(axis=-1) / (span if span > 0 else 1.0)


def score_of(errors: np.ndarray) -> Score:
    return Score(float(errors.max()), float(np.percentile(errors, 99.9)))


def subsample(n: int, t: int) -> np.ndarray:
    """The calibration sequences the scores are measured on: all of them, or a fixed sample."""
    keep = min(n, EVAL_SEQUENCES, max(16, EVAL_STEPS // max(t, 1)))
    if keep >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, keep, replace=False))


def tensor_name(model: ModelIR, key: str) -> str:
    """An observer key in the model's words: "1.output" -> "dense_1.output"."""
    head, _, rest = key.partition(".")
    if head.isdigit() and int(head) < len(model.layers):
        return f"{model.layers[int(head)].name}.{rest}"
    return key


def quantize_with(method: str, **kwargs: Any) -> QuantModel:
    """quantize_model, or with method auto quantize_auto's model (its choices left out)."""
    if method == AUTO:
        return quantize_auto(**kwargs).qmodel
    return quantize_model(method=method, **kwargs)


def quantize_auto(
    model: ModelIR,
    calib_x: np.ndarray,
    calib_lengths: np.ndarray | None,
    activations: str = "int8",
    input_quant: str = "per-tensor",
    max_length: int | None = None,
    streaming_hint: bool = True,
    keep: Collection[str] = (),
    say: Callable[[str], None] | None = None,
) -> AutoResult:
    """quantize_model with --calibration auto (the module doc). keep: tensor keys whose range is
    not to be chosen (a declared range); say: called with each line of the choices."""
    n, t = calib_x.shape[:2]
    lengths = np.full(n, t) if calib_lengths is None else np.asarray(calib_lengths)
    with np.errstate(over="ignore"):  # a sigmoid of an extreme value: exactly 0 or 1
        y_float, obs = observe_model(model, model.float_input(calib_x), calib_lengths)
    idx = subsample(n, t)
    x_sub, len_sub, y_sub = calib_x[idx], lengths[idx], y_float[idx]
    trials = 0

    def trial(plan: dict[str, str], method: str, hint: bool = False) -> tuple[QuantModel, Score]:
        nonlocal trials
        trials += 1
        obs.methods = dict(plan)
        q = quantize_model(
            model,
            calib_x,
            calib_lengths,
            method,
            activations,
            input_quant,
            max_length,
            streaming_hint=hint,
            observed=obs,
        )
        return q, score_of(step_errors(q, q.quantize_input(x_sub), len_sub, y_sub))

    fixed: dict[str, Score] = {}
    first: ExportError | None = None
    for method in CALIBRATION_METHODS:
        try:
            fixed[method] = trial({}, method)[1]
        except ExportError as e:  # e.g. a range too narrow for a requantization
            first = first or e
    if not fixed:
        assert first is not None
        raise first
    start = min(fixed, key=lambda m: fixed[m].key())  # ties: the earlier method
    tensors = [k for k in obs.asked if k not in keep]
    plan = {k: start for k in tensors}
    best = fixed[start]
    choices = []
    for key in tensors:
        before = best
        for method in CANDIDATES:
            if method == plan[key] or _same_range(obs, key, method, plan[key]):
                continue
            try:
                score = trial({**plan, key: method}, start)[1]
            except ExportError:
                continue
            if score.key() < best.key():
                plan[key], best = method, score
        choices.append(Choice(key, tensor_name(model, key), plan[key], before, best))
    qmodel, _ = trial(plan, start, hint=streaming_hint)
    qmodel.calibration = AUTO
    obs.methods = {}
    result = AutoResult(qmodel, fixed, start, choices, len(idx), trials)
    for line in result.lines() if say else []:
        say(line)  # type: ignore[misc]
    return result


def _same_range(obs: Observer, key: str, a: str, b: str) -> bool:
    """Whether methods a and b give tensor ``key`` the same range (the model input: never
    assumed, its range may be per feature or per input)."""
    if key == "input":
        return False
    for m in (a, b):
        if (key, m) not in obs.ranges:
            obs.ranges[(key, m)] = choose_range(obs.get(key), m)
    return obs.ranges[(key, a)] == obs.ranges[(key, b)]
