"""Keras model -> full-int8 .tflite flatbuffer, for `rnn2c bench`'s peers (LiteRT, TFLite Micro).

This is the one place where rnn2c converts with TensorFlow's own converter; it is used only to
compare against other runtimes, never by `rnn2c export`. With TensorFlow 2.21 / Keras 3 a
recurrent layer converts to int8 builtin ops only when it is unrolled at a fixed batch size and
a fixed number of steps, so the model is rebuilt first: every recurrent layer with
``unroll=True``, the input fixed at ``[1, steps, features]``, the weights copied. The flatbuffer
then holds one copy of the step's ops per time step (its size grows with ``steps``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from rnn2c.export.keras_reader import single_chain

#: calibration sequences handed to the converter's representative dataset at most
MAX_CALIBRATION = 200


class ConversionError(RuntimeError):
    """The converter failed; the message is one line."""


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Keep what the block prints, from Python (sys.stdout, sys.stderr, warnings) or from native
    code (file descriptors 1 and 2), off the terminal; the list it yields holds that text
    afterwards."""
    text: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    python_side = io.StringIO()  # what Python code prints (sys.stdout may not be fd 1)
    try:
        with (
            tempfile.TemporaryFile() as sink,
            contextlib.redirect_stdout(python_side),
            contextlib.redirect_stderr(python_side),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield text
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                sink.seek(0)
                text.append(sink.read().decode(errors="replace"))
                text.append(python_side.getvalue())
    finally:
        os.close(saved[0])
        os.close(saved[1])


def one_line(error: BaseException, output: str = "", prefer_output: bool = False) -> str:
    """An exception as one line: its type and its first line that says what went wrong (for
    converter errors, the first `error:` line of the MLIR diagnostics). prefer_output: for
    runtimes that print the reason and raise a generic error, add the first printed line."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    printed = [ln.strip() for ln in output.splitlines() if ln.strip()]
    pick = next((ln for ln in lines + printed if "error:" in ln), lines[0] if lines else "")
    pick = pick.split("error:", 1)[1].strip() if "error:" in pick else pick
    if prefer_output and printed and printed[0] not in pick:
        pick = f"{pick} ({printed[0]})" if pick else printed[0]
    text = " ".join(f"{type(error).__name__}: {pick}".split())
    return text if len(text) <= 240 else text[:237] + "..."


def unrolled(model: Any, steps: int) -> Any:
    """A copy of the Keras model (a chain, as rnn2c reads it) with every recurrent layer
    unrolled, the input fixed at [1, steps, features] and the same weights.

    Masking layers are left out: the benchmark runs sequences whose `steps` steps are all real,
    so the mask is all true (a real step whose features all equal the mask value would be
    skipped by Keras and not here), and the converter's rendering of the unrolled mask gives
    wrong outputs with TensorFlow 2.21 (even in float)."""
    import keras  # noqa: PLC0415

    features = int(model.inputs[0].shape[-1])
    inputs = keras.Input(batch_shape=(1, steps, features))
    x = inputs
    for layer in single_chain(model):
        if type(layer).__name__ == "Masking":
            continue
        config = layer.get_config()
        if isinstance(layer, keras.layers.RNN):  # GRU, LSTM, SimpleRNN
            config["unroll"] = True
        clone = layer.__class__.from_config(config)
        x = clone(x)
        clone.set_weights(layer.get_weights())
        if hasattr(clone, "finalize_state"):  # an adapted Normalization: mean and variance
            clone.finalize_state()  # come from its weights, which set_weights alone leaves stale
    return keras.Model(inputs, x, name=f"{model.name}_unrolled")


def fixed_length(x: np.ndarray, steps: int) -> np.ndarray:
    """[N, T, F] cut or zero-padded (at the end) to [N, steps, F] float32."""
    x = np.asarray(x, dtype=np.float32)[:, :steps]
    if x.shape[1] < steps:
        x = np.concatenate(
            [x, np.zeros((x.shape[0], steps - x.shape[1], x.shape[2]), np.float32)], axis=1
        )
    return np.ascontiguousarray(x)


def to_int8_tflite(
    model: Any, calibration: np.ndarray, steps: int, check: np.ndarray | None = None
) -> bytes:
    """Full-int8 flatbuffer (int8 input and output, TFLITE_BUILTINS_INT8 ops only) of the
    model unrolled over `steps` steps at batch 1, calibrated on up to MAX_CALIBRATION of the
    calibration sequences (cut or zero-padded to `steps`). `check` [n, steps, F]: sequences on
    which the unrolled copy must give the model's own float outputs. ConversionError on any
    failure."""
    calib = fixed_length(calibration[:MAX_CALIBRATION], steps)
    printed: list[str] = []
    try:
        with captured_output() as printed:
            import tensorflow as tf  # noqa: PLC0415

            copy = unrolled(model, steps)
            for seq in [] if check is None else check:
                want = np.asarray(model(seq[None], training=False), np.float64)
                got = np.asarray(copy(seq[None], training=False), np.float64)
                if not np.allclose(got, want, atol=1e-4, rtol=1e-3):
                    raise ConversionError(
                        "the unrolled batch-1 copy of the model gives other float outputs "
                        f"(max difference {np.abs(got - want).max():.3g})"
                    )

            def representative() -> Iterator[list[np.ndarray]]:
                for i in range(calib.shape[0]):
                    yield [calib[i : i + 1]]

            converter = tf.lite.TFLiteConverter.from_keras_model(copy)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            flatbuffer = converter.convert()
    except ConversionError:
        raise
    except Exception as e:  # the converter raises many kinds; each becomes one line
        raise ConversionError(one_line(e, "".join(printed))) from None
    return bytes(flatbuffer)
