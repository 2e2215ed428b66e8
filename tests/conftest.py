"""Shared fixtures: quiet TensorFlow, a per-session compile cache, random Keras models."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _compile_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled test libraries go to a per-session folder, not the user's cache."""
    os.environ["RNN2C_CACHE_DIR"] = str(tmp_path_factory.mktemp("rnn2c-cache"))
