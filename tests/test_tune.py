"""`rnn2c tune` end to end on a tiny study: trials measured by rnn2c size before training,
verified in C, the chosen model trained into a normal run folder whose figures are re-measured,
and an interrupted (shorter) study resumed from its SQLite storage without redoing its trials."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnn2c.cli import main
from tools import drift_npz, require_arm_toolchain, require_unicorn

pytest.importorskip("optuna")


def _tiny_npz(path: Path, seed: int = 0) -> Path:
    """Two classes told apart by the sign of a drift: 3 features, 6-14 steps."""
    return drift_npz(path, seed, t=14, shortest=6, offset=1.0, slope=0.3)


def _tune(data: Path, out: Path, trials: int, *extra: str) -> int:
    return main(
        [
            "tune",
            "--dataset",
            str(data),
            "--target",
            "cortex-m0plus",
            "--flash",
            "16K",
            "--ram",
            "2K",
            "--instr-per-step",
            "100000",
            "--trials",
            str(trials),
            "--steps",
            "8",
            "--final-steps",
            "8",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def _qat_trial_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trial 1 drawn as a small QAT candidate (within the test's budget), and chosen, so that
    the test does not hang on what the sampler draws: QAT is a dimension of the space."""
    import dataclasses

    from rnn2c import tune_report
    from rnn2c.train import tune_space

    assert set(tune_space.QAT) == {False, True}
    drawn = tune_space.suggest

    def suggest(trial: object, *a: object) -> tune_space.Candidate:
        cand = drawn(trial, *a)
        if trial.number != 1:  # type: ignore[attr-defined]
            return cand
        return dataclasses.replace(cand, qat=True, units=8, layers=1, frontend="none", frame=1)

    monkeypatch.setattr(tune_space, "suggest", suggest)
    monkeypatch.setattr(
        tune_report, "pick_best", lambda rows, *a: next(r for r in rows if r["number"] == 1)
    )


def test_tiny_study_end_to_end_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """... and a QAT candidate: fine-tuned (a few epochs) before it is exported and verified,
    its int8 C accuracy that of the fine-tuned export; chosen, its command carries --qat, its
    run folder the fine-tuning and EXPORT.txt the calibration that grid used."""
    require_arm_toolchain()
    require_unicorn()
    from rnn2c import tune
    from rnn2c.emulator.size import measure

    _qat_trial_one(monkeypatch)
    data = _tiny_npz(tmp_path / "tiny.npz")
    out = tmp_path / "tune"
    rc = _tune(data, out, 2)  # a study stopped after 2 of its 3 trials
    first = json.loads((out / "tune.json").read_text())
    assert len(first["trials"]) == 2
    # trial 0 is train's default architecture (GRU(32)), measured like any other
    assert first["trials"][0]["architecture"]["units"] == 32
    assert not first["trials"][0]["architecture"]["qat"] and "qat" not in first["trials"][0]
    qat = first["trials"][1]
    assert qat["architecture"]["qat"] and qat["describe"].endswith(", QAT")
    assert qat["stage"] == "verified in C" and qat["c_bit_exact"]
    assert qat["qat"]["epochs"] == tune.TRIAL_QAT_EPOCHS
    assert qat["qat"]["figure"] == "accuracy" and 0.0 <= qat["qat"]["int_after"] <= 1.0
    rc = _tune(data, out, 3)
    table = capsys.readouterr().out
    assert "QAT" in table.splitlines()[0]
    result = json.loads((out / "tune.json").read_text())
    trials = result["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2]
    for before, after in zip(first["trials"], trials[:2], strict=True):  # resumed, not redone
        assert before == after
    for t in trials:  # every trial was measured before it was trained
        assert t["flash"] > 0 and t["ram"] > 0 and t["instructions_max"] > 0
        assert t["fits"] == (t["flash"] <= 16384 and t["ram"] <= 2048)
        assert t["fits"] == (t["instructions_max"] <= 100_000 and t["fits"])
        if t.get("stage") == "verified in C":
            assert 0.0 <= t["int8_accuracy"] <= 1.0 and t["c_bit_exact"]
    best = result["best"]
    assert best is not None and rc == (0 if best["fits"] else 1)
    sel = result["selection"]  # the tuning split's sequences, the rule that chose
    assert sel["scored"] > 0 and "one standard error" in sel["rule"]
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "best" / "EXPORT.txt").exists() and (out / "best" / "model.keras").exists()
    assert best["train_command"].startswith("rnn2c train --dataset")
    assert best["architecture"]["qat"] and best["train_command"].endswith(
        f"--qat --steps 8 --seed 0 --out {out / 'best'}"
    )
    assert json.loads((out / "best" / "metrics.json").read_text())["qat"]["epochs_run"] >= 1
    assert "--calibration minmax" in (out / "best" / "EXPORT.txt").read_text()
    # the chosen model's figures are the measured ones of its export: measure it again
    again = measure(out / "best" / "c", "cortex-m0plus", "O2", None, 4, 16)
    assert (again.flash, again.ram, again.instructions_max) == (
        best["flash"],
        best["ram"],
        best["instructions_max"],
    )
    # a study is resumed only with the settings it was run with
    assert _tune(data, out, 3, "--seed", "1") == 2
    assert "another seed" in capsys.readouterr().err


def test_bad_budget_flags_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "missing.npz"
    for extra, words in (
        (["--flash", "12Q"], "--flash '12Q'"),
        (["--latency-ms", "10"], "not both"),
        (["--trials", "0"], "--trials 0"),
        (["--time-budget", "soon"], "--time-budget 'soon'"),
    ):
        out = tmp_path / "never"
        assert _tune(data, out, 1, *extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rnn2c tune: error:") and words in err and "\n" not in err
        assert not out.exists()
    out = tmp_path / "never"
    assert _tune(_tiny_npz(tmp_path / "tiny.npz"), out, 1, "--storage", "nodb://x") == 2
    err = capsys.readouterr().err.strip()
    assert "--storage 'nodb://x'" in err and "sqlite:///" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.filterwarnings("error::UserWarning")  # pareto.png with one x: no log-axis warning
def test_a_budget_no_candidate_meets_is_said_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing fits 1 KB of flash: exit 1, the verdict and the closest candidate with how far
    over it is, no best/ folder; the candidate was never trained past its measuring."""
    require_arm_toolchain()
    require_unicorn()
    data = _tiny_npz(tmp_path / "tiny.npz")
    out = tmp_path / "tune"
    assert _tune(data, out, 1, "--flash", "1K") == 1
    text = capsys.readouterr().out
    assert "no candidate meets the budget" in text and "closest: trial 0" in text
    result = json.loads((out / "tune.json").read_text())
    (trial,) = result["trials"]
    assert trial["flash"] > 1024 and not trial["fits"] and "short_accuracy" not in trial
    assert result["best"] is None and result["closest"][0]["number"] == 0
    assert not (out / "best").exists()


def test_a_token_dataset_searches_embedding_widths_without_conv_or_framing(
    tmp_path: Path,
) -> None:
    """A token dataset's space: Embedding widths, one id per step, no Conv1D front end; the
    candidate's train flags carry --embedding-dim (and --qat), and train_run's arguments match
    them."""
    from rnn2c.train.data import load_dataset
    from rnn2c.train.tune_space import (
        EMBEDDING_DIMS,
        Candidate,
        frame_choices,
        frontend_choices,
        suggest,
    )

    rng = np.random.default_rng(0)
    x = rng.integers(1, 7, size=(20, 300))  # long enough that features would be framed
    path = tmp_path / "tok.npz"
    np.savez(path, x_train=x, y_train=np.arange(20) % 2, x_test=x[:6], y_test=np.arange(6) % 2)
    ds = load_dataset(str(path))
    assert ds.vocab_size == 7 and frame_choices(ds) == (1,)
    assert frontend_choices("classify", tokens=True) == ("none",)

    class Trial:  # draws the last choice of every dimension
        def suggest_categorical(self, name: str, choices: tuple) -> object:
            return choices[-1]

    cand = suggest(Trial(), (1,), ("int8", "int4"), ("none",), EMBEDDING_DIMS)
    assert cand == Candidate(
        cell="rnn", units=64, layers=2, activations="int16", weights="int4", qat=True,
        embedding_dim=EMBEDDING_DIMS[-1],
    )  # fmt: skip
    flags = cand.train_flags()
    assert flags[flags.index("--embedding-dim") + 1] == str(EMBEDDING_DIMS[-1])
    assert "--qat" in flags and "--frontend" not in flags
    assert cand.train_kwargs()["embedding_dim"] == EMBEDDING_DIMS[-1]
    assert cand.describe().startswith(f"Embedding({EMBEDDING_DIMS[-1]}) > RNN(64) x2")
    features = suggest(Trial(), (1, 2), ("int8",), ("none", "conv8"))
    assert features.embedding_dim is None and "--embedding-dim" not in features.train_flags()


def test_one_standard_error_rule_prefers_the_cheaper_model_a_small_split_cannot_tell_apart() -> (
    None
):
    """Accuracy on a tuning split of n items: trials within one binomial standard error of the
    best are one choice, and the fewest instructions per step wins among them; with more items
    the same gap is real and the more accurate one wins; at 100 % only ties count."""
    import math
    import random

    from rnn2c import tune_report

    def row(number: int, acc: float, instr: float, fits: bool = True) -> dict:
        return {"number": number, "fits": fits, "int8_accuracy": acc,
                "instructions_mean": instr, "stage": "verified in C"}  # fmt: skip

    rng = random.Random(7)
    for _ in range(200):
        n = rng.choice([10, 49, 72, 500, 5000])
        rows = [row(i, rng.randrange(n + 1) / n, rng.uniform(1e3, 5e4), rng.random() < 0.8)
                for i in range(rng.randint(1, 8))]  # fmt: skip
        ok = [r for r in rows if r["fits"]]
        got = tune_report.pick_best(rows, tune_report.ACCURACY, n)
        if not ok:
            assert got is None
            continue
        top = max(r["int8_accuracy"] for r in ok)
        se = math.sqrt(top * (1 - top) / n)
        assert got["fits"] and got["int8_accuracy"] >= top - se - 1e-12
        cheaper = [r for r in ok if r["instructions_mean"] < got["instructions_mean"]]
        assert all(r["int8_accuracy"] < top - se - 1e-12 for r in cheaper)
    # the OSULeaf case: 33 of 49 against 30 of 49, the second 31 % cheaper
    rows = [row(0, 30 / 49, 9214), row(1, 33 / 49, 13420)]
    assert tune_report.pick_best(rows, tune_report.ACCURACY, 49)["number"] == 0
    assert tune_report.pick_best(rows, tune_report.ACCURACY, 4900)["number"] == 1
    assert tune_report.pick_best(rows)["number"] == 1  # no split size: the most accurate
    perfect = [row(0, 1.0, 9000), row(1, 0.9, 100)]
    assert tune_report.pick_best(perfect, tune_report.ACCURACY, 10)["number"] == 0


def test_regress_candidates_rank_by_int8_c_mae_lower_is_better() -> None:
    """--task regress: the chosen trial has the lowest int8 C MAE within the budget (then the
    fewest instructions), and the table prints MAE, best first."""
    from rnn2c import tune_report

    def row(number: int, mae: float | None, instr: float, fits: bool = True) -> dict:
        r = {"number": number, "state": "complete", "describe": f"cand{number}", "fits": fits}
        r.update(flash=1000, ram=100, instructions_mean=instr, instructions_max=int(instr))
        if mae is not None:
            r.update(float_mae=mae, int8_mae=mae, stage="verified in C")
        return r

    rows = [row(0, 0.30, 900), row(1, 0.10, 5000), row(2, 0.05, 100, fits=False)]
    rows += [row(3, 0.10, 2000), row(4, None, 10)]
    mae = tune_report.score_of("regress")
    assert not mae.higher_better and tune_report.score_of("tag").higher_better
    assert tune_report.pick_best(rows, mae)["number"] == 3  # 2 is over budget; 3 ties 1, fewer
    assert tune_report.pick_best(rows) is None  # no trial has an accuracy to rank by
    lines = tune_report.table(
        {"task": "regress", "trials": rows, "budget": {"flash": 1, "ram": 1,
         "instructions_per_step": None}, "target": "cortex-m4", "verdict": "x",
         "best": None, "closest": []}
    )  # fmt: skip
    assert "MAE" in lines[0]
    assert [int(ln.split()[0]) for ln in lines[1:6]] == [2, 3, 1, 0, 4]


@pytest.mark.parametrize("task", ["regress", "classify"])
def test_pareto_draws_over_budget_trials_on_the_worse_edge_not_at_zero(
    task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An over-budget trial has no score: on a regress plot, drawing it at MAE 0 made it look
    best. It is marked on the worse edge (axes coordinates): the top for MAE, the bottom for
    accuracy; a scored trial is drawn at its score."""
    import matplotlib.axes  # noqa: PLC0415

    from rnn2c import tune_report

    name = tune_report.score_of(task).name
    scored = {"stage": "verified in C", f"int8_{name}": 0.25}
    over = {"stage": "over budget (measured before training)"}
    rows = [
        {"number": i, "flash": 900, "ram": 90, "instructions_mean": 100.0 * (i + 1), **extra}
        for i, extra in enumerate((scored, over))
    ]
    drawn: list[tuple[list, list, bool]] = []
    real = matplotlib.axes.Axes.scatter

    def spy(self, x, y, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        axes_y = kwargs.get("transform") is not None
        drawn.append((list(x), list(y), axes_y))
        return real(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", spy)
    result = {"task": task, "trials": rows, "target": "cortex-m4", "dataset": "d",
              "budget": {"flash": 1000, "ram": 100, "instructions_per_step": None}}  # fmt: skip
    assert tune_report.pareto_png(result)[:4] == b"\x89PNG"
    by_x = {x[0]: (y[0], axes_y) for x, y, axes_y in drawn}
    assert by_x[100.0] == (0.25, False)
    y_over, axes_y = by_x[200.0]
    assert axes_y and y_over == (0.98 if task == "regress" else 0.02)
