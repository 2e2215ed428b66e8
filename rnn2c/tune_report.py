"""What `rnn2c tune` writes and prints, built from the study alone (so a resumed or interrupted
study gives the same files): the trial rows of tune.json, the choice of the best one, the
Pareto plot and the table."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Score",
    "json_bytes",
    "pareto_png",
    "pick_best",
    "result",
    "score_of",
    "selection",
    "standard_error",
    "table",
    "trial_rows",
]

_ROW_ATTRS = (
    "describe",
    "architecture",
    "stage",
    "flash",
    "ram",
    "instructions_mean",
    "instructions_max",
    "bit_exact_on_target",
    "short_accuracy",
    "float_accuracy",
    "int8_accuracy",
    "short_mae",
    "float_mae",
    "int8_mae",
    "agreement",
    "c_bit_exact",
    "verify_passed",
    "qat",
    "seconds",
)
_CLOSEST = 3


@dataclass(frozen=True)
class Score:
    """What ranks a task's candidates: accuracy (classify, tag; higher is better) or MAE
    (regress; lower is better). ``name`` is the suffix of the row keys (``int8_<name>``,
    ``float_<name>``, ``short_<name>``, ``test_int8_<name>``)."""

    name: str
    higher_better: bool
    label: str
    spec: str  # how the table prints it

    def better(self, a: float, b: float) -> bool:
        """Whether a is strictly better than b."""
        return a > b if self.higher_better else a < b

    def key(self, value: float) -> float:
        """A sort key: larger is better."""
        return value if self.higher_better else -value


ACCURACY = Score("accuracy", True, "accuracy", ".3f")
MAE = Score("mae", False, "MAE (lower is better)", ".4g")


def score_of(task: str) -> Score:
    return MAE if task in ("regress", "forecast") else ACCURACY


def trial_rows(study: Any, budget: Any) -> list[dict[str, Any]]:
    """One row per trial: its architecture, state, measured flash/RAM/instructions and its
    tuning-split accuracies (float and int8 C), as far as it got."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row: dict[str, Any] = {"number": t.number, "state": t.state.name.lower()}
        row.update({k: a[k] for k in _ROW_ATTRS if k in a})
        if "flash" in a:
            excess = budget.excess(a["flash"], a["ram"], a["instructions_max"])
            row["fits"] = excess <= 0
            row["excess"] = round(excess, 4)
        if t.state.name == "FAIL" and "stage" not in a:
            row["stage"] = "failed or interrupted"
        rows.append(row)
    return rows


def pick_best(
    rows: list[dict[str, Any]], score: Score = ACCURACY, scored: int | None = None
) -> dict[str, Any] | None:
    """The best verified trial within the budget (int8 C accuracy, or MAE, on the tuning
    split), then the fewest instructions per step; None when none fits.

    With ``scored`` (how many items the tuning split scores an accuracy on: sequences for
    classify, steps for tag) the one-standard-error rule applies: of the trials whose accuracy
    is within one binomial standard error of the best one's, the one with the fewest
    instructions per step. A small tuning split cannot tell such trials apart (one sequence of
    50 is 2 points), and the cheaper model is then the better buy."""
    key = f"int8_{score.name}"
    ok = _ranked(rows, key)
    top = _most_accurate(ok, score)
    if top is None:
        return None
    se = standard_error(top[key], scored) if score.higher_better else 0.0
    near = [r for r in ok if r[key] >= top[key] - se - 1e-12] if se > 0 else [top]
    return min(near, key=lambda r: (r["instructions_mean"], -r[key]))


def _ranked(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The trials within the budget that have the score ``key`` (verified in C)."""
    return [r for r in rows if r.get("fits") and r.get(key) is not None]


def _most_accurate(ok: list[dict[str, Any]], score: Score) -> dict[str, Any] | None:
    """Of ``ok`` (_ranked), the best score, then the fewest instructions; None if empty."""
    key = f"int8_{score.name}"
    return max(ok, key=lambda r: (score.key(r[key]), -r["instructions_mean"]), default=None)


def selection(
    rows: list[dict[str, Any]], best: dict[str, Any] | None, score: Score, scored: int | None
) -> dict[str, Any]:
    """tune.json's account of the choice: the rule, the tuning split's size, the standard
    error and the most accurate trial (which the rule may have passed over for a cheaper one)."""
    key = f"int8_{score.name}"
    out: dict[str, Any] = {
        "rule": (
            "the fewest instructions per step among the trials within one standard error of "
            f"the best int8 C {score.name} on the tuning split"
            if score.higher_better and scored
            else f"the best int8 C {score.name} on the tuning split, then the fewest instructions"
        ),
        "scored": scored,
    }
    top = _most_accurate(_ranked(rows, key), score)
    if top is not None and best is not None:
        out["most_accurate_trial"] = top["number"]
        out[f"most_accurate_{score.name}"] = top[key]
        if score.higher_better:
            out["standard_error"] = round(standard_error(top[key], scored), 4)
    return out


def standard_error(accuracy: float, scored: int | None) -> float:
    """The binomial standard error of an accuracy measured on ``scored`` items (0 without)."""
    if not scored or scored <= 0:
        return 0.0
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / scored)


def closest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured candidates nearest to the budget (smallest relative excess)."""
    measured = sorted((r for r in rows if "excess" in r), key=lambda r: r["excess"])
    return measured[:_CLOSEST]


def result(
    s: Any,
    rows: list[dict[str, Any]],
    best: dict[str, Any] | None,
    interrupted: bool,
    secs: float,
    chosen_by: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """tune.json's content."""
    out: dict[str, Any] = {
        "dataset": s.dataset,
        "task": s.task,
        "target": s.target,
        "budget": s.budget.to_dict(),
        "budget_rule": "flash and RAM by rnn2c size; instructions: the most of any counted step",
        "score": f"int8 C {score_of(s.task).label} on the tuning split (part of the training set)",
        "storage": s.storage or str(s.out / "study.db"),
        "trials_requested": s.trials,
        "steps": s.steps,
        "final_steps": s.final_steps,
        "interrupted": interrupted,
        "seconds_this_run": round(secs, 1),
        "notes": list(s.notes),
        "trials": rows,
        "best": best,
        "selection": chosen_by or {},
    }
    if best is None:
        fits = [r for r in rows if r.get("fits")]
        if interrupted:
            out["verdict"] = "interrupted before a model was chosen; run again to resume"
        elif not fits:
            out["verdict"] = "no candidate meets the budget"
        else:
            out["verdict"] = "no candidate within the budget was verified in C"
        out["closest"] = closest(rows)
    else:
        out["verdict"] = "fits" if best["fits"] else "the chosen model's export is over budget"
    return out


def json_bytes(result: dict[str, Any]) -> bytes:
    return (json.dumps(result, indent=2) + "\n").encode()


def pareto_png(result: dict[str, Any]) -> bytes:
    """Accuracy against instructions per step, marker area by flash; the budget drawn."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = [r for r in result["trials"] if "instructions_mean" in r]
    sc = score_of(result["task"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    budget = result["budget"]
    flash_max = max([r["flash"] for r in rows] + [1])
    groups = (
        ("verified in C", "tab:blue", f"int8_{sc.name}", f"verified in C (int8 C {sc.name})"),
        ("pruned", "tab:cyan", f"short_{sc.name}", f"pruned (short-schedule float {sc.name})"),
    )
    ringed = False
    for key, color, field, label in groups:
        sel = [r for r in rows if key in r.get("stage", "") and r.get(field) is not None]
        if not sel:
            continue
        acc = [r[field] for r in sel]
        ax.scatter(
            [r["instructions_mean"] for r in sel],
            acc,
            s=[30 + 400 * r["flash"] / flash_max for r in sel],
            c=color,
            alpha=0.6,
            label=label,
        )
        qat = [(r, a) for r, a in zip(sel, acc, strict=True) if _is_qat(r)]
        if qat:  # a black ring around each QAT candidate
            ax.scatter(
                [r["instructions_mean"] for r, _ in qat],
                [a for _, a in qat],
                s=[30 + 400 * r["flash"] / flash_max for r, _ in qat],
                facecolors="none",
                edgecolors="black",
                linewidths=1.5,
                label="QAT (train --qat)" if not ringed else None,
            )
            ringed = True
    over = [r for r in rows if "over" in r.get("stage", "")]
    if over:  # no score: x marks on the plot's worse edge (the bottom, or the top for MAE)
        ax.scatter(
            [r["instructions_mean"] for r in over],
            [0.02 if sc.higher_better else 0.98] * len(over),
            transform=ax.get_xaxis_transform(),
            marker="x",
            c="0.5",
            label="over budget, not trained (no score; on the worse edge)",
        )
    if budget["instructions_per_step"]:
        ax.axvline(budget["instructions_per_step"], color="tab:red", ls="--", label="budget")
    best = result.get("best")
    if best:
        ax.scatter(
            [best["instructions_mean"]],
            [best[f"test_int8_{sc.name}"] or 0.0],
            marker="*",
            s=250,
            c="tab:red",
            label="chosen (test set)",
        )
    xs = [r["instructions_mean"] for r in rows if r["instructions_mean"] > 0]
    if xs and min(xs) == max(xs):  # one x (e.g. every trial the same size): a span for the log
        ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
    ax.set_xscale("log")
    ax.set_xlabel(f"instructions per step ({result['target']})")
    ax.set_ylabel(f"int8 C {sc.label} (tuning split)")
    ax.set_title(
        f"rnn2c tune {result['dataset']}: flash <= {budget['flash']} B, RAM <= "
        f"{budget['ram']} B (marker size: flash)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _is_qat(row: dict[str, Any]) -> bool:
    return bool(row.get("architecture", {}).get("qat"))


def _qat_cell(row: dict[str, Any]) -> str:
    """The table's QAT column: blank without QAT; with it, how much the fine-tuning moved the
    integer model's tuning-split accuracy (train's before/after figures), or ``yes`` before
    the trial got that far."""
    if not _is_qat(row):
        return ""
    q = row.get("qat") or {}
    before, after = q.get("int_before"), q.get("int_after")
    if before is None or after is None:
        return "yes"
    return f"{after - before:+.3f}"


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(result: dict[str, Any]) -> list[str]:
    """The table printed at the end, and what was chosen (or why nothing was)."""
    sc = score_of(result["task"])
    head = "" if sc.higher_better else " (float and int8 C: MAE)"
    lines = [
        f"{'#':>3}  {'architecture':<40} {'flash':>7} {'RAM':>6} {'instr/step':>10} "
        f"{'float':>6} {'int8 C':>6} {'QAT':>6}  stage{head}"
    ]
    verified = [r for r in result["trials"] if r.get(f"int8_{sc.name}") is not None]
    order = sorted(
        verified, key=lambda r: (-sc.key(r[f"int8_{sc.name}"]), r["instructions_mean"])
    ) + sorted(
        (r for r in result["trials"] if r not in verified),
        key=lambda r: r.get("instructions_mean", 1e18),
    )
    for r in order:
        lines.append(
            f"{r['number']:>3}  {r.get('describe', '?')[:40]:<40} {_fmt(r.get('flash'), 'd'):>7} "
            f"{_fmt(r.get('ram'), 'd'):>6} {_fmt(r.get('instructions_mean'), '.0f'):>10} "
            f"{_fmt(r.get(f'float_{sc.name}'), sc.spec):>6} "
            f"{_fmt(r.get(f'int8_{sc.name}'), sc.spec):>6}"
            f" {_qat_cell(r):>6}  {r.get('stage', r['state'])}"
        )
    best = result.get("best")
    b = result["budget"]
    instr = b["instructions_per_step"]
    budget = f"flash {b['flash']} B, RAM {b['ram']} B" + (
        f", {instr} instructions/step" if instr else ""
    )
    if best is None:
        lines.append(f"{result['verdict']} ({budget} on {result['target']}).")
        for r in result.get("closest", []):
            lines.append(
                f"  closest: trial {r['number']} {r.get('describe')}: flash {r['flash']} B, RAM "
                f"{r['ram']} B, {r['instructions_max']} instructions/step at most "
                f"({100 * r['excess']:.0f}% over)"
            )
        return lines
    lines += [
        f"chosen: trial {best['trial']}, {best['describe']} ({budget} on {result['target']}: "
        f"{'fits' if best['fits'] else 'OVER BUDGET'})",
        f"  measured: flash {best['flash']} B, RAM {best['ram']} B, "
        f"{best['instructions_mean']:.0f} instructions/step mean, {best['instructions_max']} max",
        f"  test set {sc.name}: float {_fmt(best[f'test_float_{sc.name}'], '.4f')}, int8 C "
        f"{_fmt(best[f'test_int8_{sc.name}'], '.4f')}",
        f"  train it again: {best['train_command']}",
        f"  measure it again: {best['size_command']}",
    ]
    sel = result.get("selection") or {}
    top = sel.get("most_accurate_trial")
    if top is not None and top != best["trial"]:
        lines.append(
            f"  chosen over trial {top} ({sel[f'most_accurate_{sc.name}']:{sc.spec}} on the tuning "
            f"split): within one standard error ({sel.get('standard_error', 0):.3f} on "
            f"{sel['scored']} scored items) and fewer instructions per step"
        )
    return lines
