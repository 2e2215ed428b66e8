"""Trained PyTorch models for rnn2c's ONNX front end: nn.GRU and nn.LSTM classifiers and a per-step
GRU tagger on BasicMotions, exported with torch.onnx (issue 23's measured models).

Run with a Python that has torch, onnx and onnxscript (never the project's venv: torch is no
dependency of rnn2c), after benchmarks/torch_data.py wrote the data:

    .venv/bin/python benchmarks/torch_data.py --out build/torch
    /work/torchenv/bin/python benchmarks/torch_models.py --data build/torch --out build/torch

For each model, OUT/NAME/ holds model.onnx (the dynamo exporter, dynamic batch and time; the
weights may sit beside it in model.onnx.data), calib.npz (x, lengths: the raw training
sequences) and test.npz (x, y, lengths: the raw test sequences), and the float test accuracy
torch gives is printed and written to OUT/NAME/torch.json. OUT/gru/model.leg.onnx is the same
GRU through the legacy exporter (dynamo=False, dynamic_axes).

The models mirror `rnn2c train --units 32`: raw channels normalized inside the model (the
per-feature mean and standard deviation of the training steps, as the Keras Normalization
layer; exported as Sub and Div by constants, which rnn2c folds into the recurrent layer), one
recurrent layer of 32 units (batch_first=True), a Linear head with a softmax on the last step
(classify) or on every step (tag). Training: Adam with a cosine schedule and gradient clipping;
the classifiers also as `rnn2c train` trains a small dataset (1500 steps, Dropout 0.3 before the
head, augmented batches: each channel scaled by N(1, 0.1), jitter of N(0, 0.03) standard
deviations; no window shifts, so a batch keeps one length), the tagger 400 plain steps (with
that recipe it reached 83.4 % per step against 90.3 % without). It is deterministic: fixed
seeds, deterministic algorithms, one thread.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

UNITS = 32
#: name -> (dataset file, cell, per step, optimizer steps, Dropout and augmentation)
MODELS = {
    "gru": ("basicmotions.npz", nn.GRU, False, 1500, True),
    "lstm": ("basicmotions.npz", nn.LSTM, False, 1500, True),
    "tag_gru": ("basicmotions_tag.npz", nn.GRU, True, 400, False),
}
BATCH, LR, CLIP, SEED, DROPOUT = 16, 3e-3, 1.0, 0, 0.3
#: augmentation of the training batches (train/train.py's AUGMENT, without the window shift)
SCALE, JITTER = 0.1, 0.03


class Classifier(nn.Module):
    """(x - mean) / std -> GRU or LSTM -> Linear -> softmax, on the last step or every step."""

    def __init__(
        self,
        cell: type,
        features: int,
        classes: int,
        mean: np.ndarray,
        std: np.ndarray,
        tag: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(np.maximum(std, 1e-6), dtype=torch.float32))
        self.cell = cell(features, UNITS, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(UNITS, classes)
        self.tag = tag

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.cell((x - self.mean) / self.std)
        return self.fc(self.drop(y if self.tag else y[:, -1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    for split in ("train", "test"):  # the models read every step: no padding inside a batch
        lengths, t = d[f"lengths_{split}"], d[f"x_{split}"].shape[1]
        if not np.all(lengths == t):
            raise SystemExit(f"{path}: {split} sequences of different lengths; expected equal")
    return d


def accuracy(model: Classifier, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(-1).numpy()
    return float((pred == y).mean())


def train(name: str, d: dict[str, np.ndarray]) -> Classifier:
    _, cell, tag, steps, regularized = MODELS[name]
    torch.manual_seed(SEED)
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"])
    classes = len(d["class_names"])
    dropout = DROPOUT if regularized else 0.0
    model = Classifier(cell, x.shape[2], classes, d["mean"], d["std"], tag, dropout)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=LR / 100)
    loss_fn = nn.CrossEntropyLoss()
    std = torch.from_numpy(np.maximum(d["std"], 1e-6))
    g = torch.Generator().manual_seed(SEED)
    model.train()
    order = torch.randperm(len(x), generator=g)
    pos = 0
    for step in range(steps):
        if pos + BATCH > len(x):
            order, pos = torch.randperm(len(x), generator=g), 0
        idx = order[pos : pos + BATCH]
        pos += BATCH
        xb = x[idx]
        f = xb.shape[2]
        if regularized:
            scale = 1.0 + SCALE * torch.randn(len(idx), 1, f, generator=g)
            xb = xb * scale + JITTER * std * torch.randn(xb.shape, generator=g)
        logits = model.logits(xb)
        loss = loss_fn(logits.reshape(-1, classes), y[idx].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0:
            print(f"  {name} step {step + 1}: loss {loss.item():.4f}")
    return model.eval()


def export(model: Classifier, x: np.ndarray, path: Path, dynamo: bool) -> None:
    example = (torch.from_numpy(x[:2, :10]),)
    if dynamo:
        batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
        torch.onnx.export(
            model,
            example,
            str(path),
            dynamo=True,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes={"x": {0: batch, 1: time}},
        )
        data = path.with_name(path.name + ".data")
        if data.exists() and data.stat().st_size == 0:
            data.unlink()
    else:
        axes = {
            "x": {0: "batch", 1: "time"},
            "y": {0: "batch"} | ({1: "time"} if model.tag else {}),
        }
        torch.onnx.export(
            model,
            example,
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes=axes,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of torch_data.py's .npz")
    ap.add_argument("--out", type=Path, required=True, help="one folder per model inside")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for name in args.models:
        d = load(args.data / MODELS[name][0])
        model = train(name, d)
        acc = accuracy(model, d["x_test"], d["y_test"])
        out = args.out / name
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("model*.onnx*"):
            old.unlink()
        np.savez(out / "calib.npz", x=d["x_train"], lengths=d["lengths_train"])
        np.savez(out / "test.npz", x=d["x_test"], y=d["y_test"], lengths=d["lengths_test"])
        export(model, d["x_train"], out / "model.onnx", dynamo=True)
        if name == "gru":
            export(model, d["x_train"], out / "model.leg.onnx", dynamo=False)
        what = "accuracy per step" if MODELS[name][2] else "accuracy"
        facts = {"model": name, "torch_float_test_accuracy": acc, "torch": torch.__version__}
        (out / "torch.json").write_text(json.dumps(facts, indent=2) + "\n")
        print(f"{name}: float test {what} {100 * acc:.2f}% (torch) -> {out}/model.onnx")


if __name__ == "__main__":
    main()
