"""The datasets of benchmarks/torch_models.py as plain .npz files (numpy only on the torch side).

Run with the project's venv (it loads the data through rnn2c's own loader, exactly as
`rnn2c train` does):

    .venv/bin/python benchmarks/torch_data.py --out build/torch

writes ``OUT/basicmotions.npz`` (uea:BasicMotions, a label per sequence) and
``OUT/basicmotions_tag.npz`` (the per-step set of `rnn2c train --task tag --seed 0`: streams of 4
recordings back to back, a label per step, train/data.py's streams_from_classes). Each holds
x_train, y_train, lengths_train, x_test, y_test, lengths_test (raw channels, zero-padded at the
end, as calib.npz and test.npz of a `rnn2c train` run hold them), class_names, and mean and std:
the per-feature normalization that the Keras model's Normalization layer adapts (mean and
standard deviation over the real training steps), which the torch models apply inside the
module so that both frameworks read the same raw calib.npz and test.npz.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rnn2c.train.data import Dataset, load_dataset
from rnn2c.train.model import real_steps

DATASET = "uea:BasicMotions"


def save(ds: Dataset, path: Path) -> None:
    steps = real_steps(ds.x_train, ds.lengths_train).astype(np.float64)
    np.savez(
        path,
        x_train=ds.x_train.astype(np.float32),
        y_train=ds.y_train.astype(np.int64),
        lengths_train=ds.lengths_train.astype(np.int64),
        x_test=ds.x_test.astype(np.float32),
        y_test=ds.y_test.astype(np.int64),
        lengths_test=ds.lengths_test.astype(np.int64),
        class_names=np.array(ds.class_names),
        mean=steps.mean(axis=0).astype(np.float32),
        std=steps.std(axis=0).astype(np.float32),
    )
    print(
        f"{path}: {ds.name} ({ds.task}), train {ds.x_train.shape}, test {ds.x_test.shape}, "
        f"{ds.num_classes} classes"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the .npz files")
    ap.add_argument("--seed", type=int, default=0, help="tag streams' order (rnn2c train --seed)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    save(load_dataset(DATASET), args.out / "basicmotions.npz")
    save(load_dataset(DATASET, seed=args.seed, task="tag"), args.out / "basicmotions_tag.npz")


if __name__ == "__main__":
    main()
