"""The peers of `rnn2c bench`: a full-int8 .tflite flatbuffer run by LiteRT and TFLite Micro.

Both come from the optional extra ``rnn2c[bench]`` (``ai-edge-litert``, ``tflite-micro``). Each
runner takes int8 sequences [N, T, F] (T fixed by the flatbuffer) and runs them one sequence per
``invoke``; the timer brackets ``invoke`` alone (the input copy before it and the output read
after it are outside), read with ``time.thread_time_ns`` (the calling thread's CPU time).
"""

from __future__ import annotations

import importlib.metadata
import re
import time
from typing import Any

import numpy as np

from rnn2c.export.tflite import captured_output, one_line

BENCH_HINT = "pip install 'rnn2c[bench]'"
TFLM_MIN_ARENA = 1 << 20


class PeerError(RuntimeError):
    """A peer cannot be loaded or run; the message is one line."""


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class Peer:
    """One runtime holding one flatbuffer with an int8 input [1, T, F] and int8 output."""

    label = ""
    dist = ""
    threads_note = ""

    def __init__(self, flatbuffer: bytes) -> None:
        self.flatbuffer = flatbuffer
        self.input_scale = 1.0
        self.input_zero_point = 0
        self.output_scale = 1.0
        self.output_zero_point = 0
        self.input_shape: tuple[int, ...] = ()
        self.arena_bytes: int | None = None

    @property
    def model_bytes(self) -> int:
        return len(self.flatbuffer)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """float [N, T, F] -> int8 with the flatbuffer's (per-tensor) input quantization."""
        q = np.round(np.asarray(x, np.float64) / self.input_scale) + self.input_zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return self.output_scale * (np.asarray(q, np.float64) - self.output_zero_point)

    def _set(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _invoke(self) -> None:
        raise NotImplementedError

    def _get(self) -> np.ndarray:
        raise NotImplementedError

    def run(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """int8 [N, T, F] -> (int8 outputs of the last step [N, out], invoke CPU ns [N])."""
        n = xq.shape[0]
        ns = np.zeros(n, dtype=np.int64)
        outs = []
        for i in range(n):
            self._set(xq[i : i + 1])
            start = time.thread_time_ns()
            self._invoke()
            ns[i] = time.thread_time_ns() - start
            y = np.asarray(self._get())
            outs.append(y[0, -1] if y.ndim == 3 else y.reshape(-1))  # [1, T, out]: the last step
        return np.stack(outs).astype(np.int8), ns

    def _check_io(self, shape: Any, dtype: Any, out_dtype: Any) -> None:
        self.input_shape = tuple(int(d) for d in shape)
        if np.dtype(dtype) != np.int8 or np.dtype(out_dtype) != np.int8:
            raise PeerError(
                f"the flatbuffer's input/output are {np.dtype(dtype)}/{np.dtype(out_dtype)}, "
                "not int8"
            )


def _scale_zero(params: Any) -> tuple[float, int]:
    """(scale, zero point) from a tensor's quantization details (one scale: per tensor)."""
    if isinstance(params, dict):
        scales = np.asarray(params.get("scales", []), np.float64).reshape(-1)
        zeros = np.asarray(params.get("zero_points", []), np.int64).reshape(-1)
        if scales.size == 1 and zeros.size == 1:
            return float(scales[0]), int(zeros[0])
    elif isinstance(params, tuple | list) and len(params) == 2 and float(params[0]) > 0:
        return float(params[0]), int(params[1])
    raise PeerError(f"the flatbuffer's input/output are not quantized per tensor ({params!r})")


class LiteRT(Peer):
    """ai-edge-litert's Interpreter, one thread, its default delegate (XNNPACK on x86-64)."""

    label = "LiteRT"
    dist = "ai-edge-litert"

    def __init__(self, flatbuffer: bytes) -> None:
        super().__init__(flatbuffer)
        try:
            from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
        except ImportError:
            raise PeerError(f"ai-edge-litert is not installed ({BENCH_HINT})") from None
        printed: list[str] = []
        try:  # quiet: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            with captured_output() as printed:
                self.interp = Interpreter(model_content=flatbuffer, num_threads=1)
                self.interp.allocate_tensors()
        except Exception as e:
            raise PeerError(one_line(e, "".join(printed))) from None
        inp = self.interp.get_input_details()[0]
        out = self.interp.get_output_details()[0]
        self._check_io(inp["shape"], inp["dtype"], out["dtype"])
        self.input_scale, self.input_zero_point = _scale_zero(inp["quantization_parameters"])
        self.output_scale, self.output_zero_point = _scale_zero(out["quantization_parameters"])
        self._in, self._out = inp["index"], out["index"]
        ops = self.interp._get_ops_details()  # noqa: SLF001 - the only way to list the ops
        self.delegated = sum(1 for op in ops if op.get("op_name") == "DELEGATE")
        self.ops = len(ops)

    def _set(self, x: np.ndarray) -> None:
        self.interp.set_tensor(self._in, x)

    def _invoke(self) -> None:
        self.interp.invoke()

    def _get(self) -> np.ndarray:
        return self.interp.get_tensor(self._out)


class TFLiteMicro(Peer):
    """tflite-micro's Python interpreter (the reference kernels, compiled for the host)."""

    label = "TFLite Micro"
    dist = "tflite-micro"

    def __init__(self, flatbuffer: bytes) -> None:
        super().__init__(flatbuffer)
        try:
            from tflite_micro.python.tflite_micro import runtime  # noqa: PLC0415
        except ImportError:
            raise PeerError(f"tflite-micro is not installed ({BENCH_HINT})") from None
        arena = max(TFLM_MIN_ARENA, 10 * len(flatbuffer))
        printed: list[str] = []
        try:
            with captured_output() as printed:
                self.interp = runtime.Interpreter.from_bytes(flatbuffer, arena_size=arena)
        except Exception as e:  # what TFLM printed says why (an op it lacks, the arena, ...)
            raise PeerError(one_line(e, "".join(printed), prefer_output=True)) from None
        inp = self.interp.get_input_details(0)
        out = self.interp.get_output_details(0)
        self._check_io(inp["shape"], inp["dtype"], out["dtype"])
        self.input_scale, self.input_zero_point = _scale_zero(inp["quantization_parameters"])
        self.output_scale, self.output_zero_point = _scale_zero(out["quantization_parameters"])

    def measure_arena(self) -> int | None:
        """Bytes of the arena in use after an invoke, as TFLM's recording allocator reports."""
        with captured_output() as printed:
            self.interp.print_allocations()
        m = re.search(r"Arena allocation total (\d+) bytes", "".join(printed))
        self.arena_bytes = int(m.group(1)) if m else None
        return self.arena_bytes

    def _set(self, x: np.ndarray) -> None:
        self.interp.set_input(x, 0)

    def _invoke(self) -> None:
        self.interp.invoke()

    def _get(self) -> np.ndarray:
        return self.interp.get_output(0)


PEERS: dict[str, type[Peer]] = {"litert": LiteRT, "tflm": TFLiteMicro}
