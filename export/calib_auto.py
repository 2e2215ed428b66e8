"""--calibration auto: a calibration method per tensor range, chosen by the end-to-end error.

Each range-bearing tensor (the model input, a calibrated Dense/Conv1D output or pre-activation,
an LSTM cell state, a merge's output) takes its range from one of the methods of
``CANDIDATES``. The search, deterministic:

1. quantize with each method for every tensor (the fixed methods) and keep the best;
2. then greedily, tensor by tensor in data-flow order (the order the quantizer asks for them),
   try every other method for that tensor alone and keep it where it lowers the error.

The error of a quantized model is that of its integer reference (export/reference.py, the C bit
for bit) against the float model, measured two-fold on the calibration set (:class:`Folds`: the
ranges from one half, the error on a fixed sample of the other), relative to the float output's
range: at each compared step (every real step of a per-step model, the last one of a last-step
model) the largest |int8 - float| over the outputs; the score is the worst such step plus the
99.9th percentile of them, then the worst step (``Score.key``). So the result is never worse on
that score than the best fixed method; the final ranges are computed on the whole set.

quantize.quantize_model holds the hook: Observer.methods overrides the method per tensor key, and
a fold's float pass runs once (``observed``). A caller that declares a tensor's range passes its
key in ``keep``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn2c.export.ir import ExportError, ModelIR, Observer, QuantModel
from rnn2c.export.quant_rules import CALIBRATION_METHODS, choose_range
from rnn2c.export.quantize import observe_model, quantize_model
from rnn2c.export.ranges import DeclaredRange
from rnn2c.export.reference import run_int

AUTO = "auto"
#: the --calibration choices of every command (auto the default)
CALIBRATION_CHOICES = (AUTO, *CALIBRATION_METHODS)
#: the methods auto tries per tensor, in the order it tries them (ties keep the earlier); a
#: percentile of 99.9 as a fourth made the held-out errors of benchmarks/calibration_auto.py
#: worse (docs/quantization.md)
CANDIDATES = CALIBRATION_METHODS
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
        """What auto minimises: the worst step plus the 99.9th percentile (both count in the
        targets), then the worst step."""
        return (self.worst + self.p999, self.worst)

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
        if self.choices:
            return self.choices[-1].after
        return self.fixed.get(self.start, Score(float("nan"), float("nan")))

    def lines(self) -> list[str]:
        fixed = ", ".join(f"{m} {s.describe()}" for m, s in self.fixed.items())
        head = (
            f"calibration auto: {len(self.choices)} range{'' if len(self.choices) == 1 else 's'} "
            f"over {self.sequences} calibration "
            f"sequences; every tensor alike: {fixed}; starting from {self.start}"
        )
        return [head, *(c.line() for c in self.choices)]

    def to_json(self) -> dict[str, Any]:
        """The manifest's record (rnn2c.json "calibration_auto")."""
        return {
            "sequences": self.sequences,
            "metric": "worst step + 99.9th percentile of max |int8 - float| over the outputs, "
            "relative to the float output range; two-fold over the calibration set",
            "fixed": {m: [s.worst, s.p999] for m, s in self.fixed.items()},
            "start": self.start,
            "choices": [c.to_json() for c in self.choices],
            "worst": self.score.worst,
            "p999": self.score.p999,
        }


def compared(n: int, t: int, lengths: np.ndarray, per_step: bool) -> np.ndarray:
    """[n, t] the compared steps: every real step of a model that returns sequences, else each
    sequence's last."""
    if per_step:
        return np.arange(t)[None, :] < lengths[:, None]
    mask = np.zeros((n, t), dtype=bool)
    mask[np.arange(n), np.maximum(lengths - 1, 0)] = lengths > 0
    return mask


def step_errors(
    qmodel: QuantModel,
    xq: np.ndarray,
    lengths: np.ndarray,
    y_float: np.ndarray,
    span: float | None = None,
) -> np.ndarray:
    """max |int8 - float| over the outputs at each compared step (:func:`compared`) relative
    to span, the float output range (None: that of y_float's compared steps)."""
    y_int = qmodel.output_q.dequantize(run_int(qmodel, xq, lengths).astype(np.int64))
    n, t = y_float.shape[:2]
    mask = compared(n, t, lengths, qmodel.returns_sequences)
    yf, yi = y_float[mask], y_int[mask]
    if yf.size == 0:
        return np.zeros(1)
    if span is None:
        span = float(yf.max() - yf.min())
    return np.abs(yi - yf).max(axis=-1) / (span if span > 0 else 1.0)


def score_of(errors: np.ndarray) -> Score:
    return Score(float(errors.max()), float(np.percentile(errors, 99.9)))


class Folds:
    """The two-fold split of the calibration set the scores are measured on: the ranges of
    each fold's quantization come from one half (its float observations: ``obs``), the error
    from the other half, at most EVAL_SEQUENCES sequences and about EVAL_STEPS steps of it (a
    fixed sample); a set of one sequence is its own test. So a range that clips what the other
    half holds costs what it would cost on data the calibration set did not hold."""

    def __init__(self, model: ModelIR, x: np.ndarray, lengths: np.ndarray) -> None:
        n, t = x.shape[:2]
        halves = [np.arange(0, n, 2), np.arange(1, n, 2)] if n >= 2 else [np.arange(n)] * 2
        self.model = model
        self.parts: list[tuple[np.ndarray, np.ndarray, Observer, np.ndarray, np.ndarray]] = []
        ys = []
        for fit, test in (halves, halves[::-1]):
            with np.errstate(over="ignore"):  # a sigmoid of an extreme value: exactly 0 or 1
                _, obs = observe_model(model, model.float_input(x[fit]), lengths[fit])
                keep = test[_sample(len(test), t, EVAL_SEQUENCES // 2)]
                y, _ = observe_model(model, model.float_input(x[keep]), lengths[keep])
            self.parts.append((x[fit], lengths[fit], obs, keep, y))
            ys.append(y)
        self.x, self.lengths = x, lengths
        self.sequences = len(set(np.concatenate([p[3] for p in self.parts]).tolist()))
        self.span = _output_span(ys, [self.lengths[p[3]] for p in self.parts], model)

    def score(self, plan: dict[str, str], method: str, **quantize: Any) -> Score:
        """Both folds quantized with ``method`` and ``plan`` (tensor key -> method) and scored
        together (quantize: quantize_model's other arguments)."""
        errors = []
        for x_fit, len_fit, obs, keep, y in self.parts:
            obs.methods = dict(plan)
            q = quantize_model(
                self.model, x_fit, len_fit, method, streaming_hint=False, observed=obs, **quantize
            )
            obs.methods = {}
            xq = q.quantize_input(self.x[keep])
            errors.append(step_errors(q, xq, self.lengths[keep], y, self.span))
        return score_of(np.concatenate(errors))

    def asked(self) -> list[str]:
        """The range-bearing tensor keys, in data-flow order (after a first score)."""
        return list(self.parts[0][2].asked)


def _sample(n: int, t: int, most: int) -> np.ndarray:
    """A fixed sample of n sequences of t steps: at most ``most``, about EVAL_STEPS steps."""
    keep = min(n, most, max(16, EVAL_STEPS // max(t, 1)))
    if keep >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, keep, replace=False))


def _output_span(ys: list[np.ndarray], lengths: list[np.ndarray], model: ModelIR) -> float:
    """The float output's range over the compared steps of the folds' test sequences."""
    lo, hi = np.inf, -np.inf
    for y, n in zip(ys, lengths, strict=True):
        v = y[compared(y.shape[0], y.shape[1], n, bool(model.sequence_out[-1:] == [True]))]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    return hi - lo if hi > lo else 1.0


def tensor_name(model: ModelIR, key: str) -> str:
    """An observer key in the model's words: "1.output" -> "dense_1.output"."""
    head, _, rest = key.partition(".")
    if head.isdigit() and int(head) < len(model.layers):
        return f"{model.layers[int(head)].name}.{rest}"
    return key


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
    input_range: DeclaredRange | None = None,
    output_range: DeclaredRange | None = None,
    weights: str = "int8",
    keep_int8: list[str] | None = None,
) -> AutoResult:
    """quantize_model with --calibration auto (the module doc). keep: tensor keys whose range is
    not to be chosen; a declared input_range or output_range (export/ranges.py) replaces that
    range in every quantization, and auto does not choose it; weights, keep_int8: as for
    quantize_model (int4 weight rows), in every quantization; say: called with each line of the
    choices."""
    n, t = calib_x.shape[:2]
    lengths = np.full(n, t) if calib_lengths is None else np.asarray(calib_lengths)
    args = {
        "activations": activations,
        "input_quant": input_quant,
        "max_length": max_length,
        "input_range": input_range,
        "output_range": output_range,
        "weights": weights,
        "keep_int8": keep_int8,
    }
    keep = {
        *keep,
        *(["input"] if input_range is not None else []),
        *([f"{len(model.layers) - 1}.output"] if output_range is not None else []),
    }
    # the checks of the model and data (max_length, windows longer than the sequences, ...),
    # with their messages, before the folds' float passes
    quantize_model(model, calib_x, calib_lengths, "minmax", **args, streaming_hint=streaming_hint)
    folds = Folds(model, calib_x, lengths)
    trials = 0

    def trial(plan: dict[str, str], method: str) -> Score | None:
        nonlocal trials
        trials += 1
        try:
            return folds.score(plan, method, **args)
        except ExportError:  # e.g. a range too narrow for a requantization
            return None

    fixed = {m: s for m in CALIBRATION_METHODS if (s := trial({}, m)) is not None}
    start = min(fixed, key=lambda m: fixed[m].key()) if fixed else "minmax"
    obs = folds.parts[0][2]
    plan = {k: start for k in folds.asked() if k not in keep}
    best = fixed.get(start)
    choices = []
    for key in list(plan):
        before = best
        for method in CANDIDATES:
            if method == plan[key] or _same_range(obs, key, method, plan[key]):
                continue
            score = trial({**plan, key: method}, start)
            if score is not None and (best is None or score.key() < best.key()):
                plan[key], best = method, score
        if before is not None and best is not None:
            choices.append(Choice(key, tensor_name(model, key), plan[key], before, best))
    with np.errstate(over="ignore"):
        _, full = observe_model(model, model.float_input(calib_x), calib_lengths)
    full.methods = plan
    qmodel = quantize_model(
        model, calib_x, calib_lengths, start, **args, streaming_hint=streaming_hint, observed=full
    )  # a fixed method that fails on the whole set fails here, as without auto
    qmodel.calibration = AUTO
    result = AutoResult(qmodel, fixed, start, choices, folds.sequences, trials)
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
