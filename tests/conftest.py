"""Shared fixtures: quiet TensorFlow, a per-session compile cache, random Keras models."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402

#: the files that take longest (whole trainings, kill -9 at every rename), collected first so
#: that under `make test` (pytest -n auto --dist loadfile: one file per worker) they start at
#: once instead of ending the run on one worker while the others idle; order within a file kept
SLOW_FIRST = (
    "test_output_folders.py",
    "test_train_tasks.py",
    "test_train_seq2seq.py",
    "test_onnx_cli.py",
    "test_hostile_folders.py",
    "test_train_model.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable


@pytest.fixture(scope="session", autouse=True)
def _compile_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled test libraries go to a per-session folder, not the user's cache."""
    os.environ["RNN2C_CACHE_DIR"] = str(tmp_path_factory.mktemp("rnn2c-cache"))
