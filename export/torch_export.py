"""rnn2c.export.export_torch: a PyTorch module straight to C, in-process.

The module goes through ``torch.onnx.export`` into a temporary folder (the dynamo exporter with
a dynamic batch and time axis, or the legacy exporter with ``dynamic_axes``), then through the
same export as an .onnx file (export/onnx_reader.py, export_model). torch is imported here only,
when it is installed: rnn2c does not depend on it (without it: one line saying to install it or
to export to ONNX yourself).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rnn2c.export.api import ExportResult, export_model
from rnn2c.export.ir import ExportError

#: the exporters export_torch knows: dynamo=True (torch's default), dynamo=False (legacy)
EXPORTERS = {True: "dynamo", False: "legacy"}


def export_torch(
    module: Any,
    example_input: Any,
    calib: Any,
    out_dir: str | os.PathLike[str],
    *,
    dynamo: bool | None = None,
    batch_axis: int = 0,
    time_axis: int = 1,
    **options: Any,
) -> ExportResult:
    """A torch.nn.Module -> C files in out_dir, as `rnn2c export` of its .onnx file.

    example_input: one input as the module takes it (a tensor or array, [N, T, F] for
    batch_first, [T, N, F] with batch_axis=1, time_axis=0; token ids [N, T]), with N >= 2 and
    T >= 2 (the dynamo exporter fixes an axis of size 1). batch_axis, time_axis: the example's
    axes exported as dynamic. dynamo: True the dynamo exporter (dynamic_shapes), False the
    legacy one (dynamic_axes; needed for nn.RNN, which dynamo writes unrolled over the example's
    steps), None (default) dynamo, falling back to legacy when dynamo fails. calib: as for
    export_model, [N, T, F] (ids [N, T]) whatever the module's layout. options: export_model's
    (name, calibration, activations, input_quant, max_length, package, ...).
    """
    try:
        import torch  # noqa: PLC0415  (optional: torch is no dependency of rnn2c)
    except ImportError:
        raise ExportError(
            "export_torch needs PyTorch and torch is not installed here; install it "
            "(pip install torch), or export the module to ONNX yourself with torch.onnx.export "
            "(docs/pytorch.md) and give the .onnx file to rnn2c export / export_model"
        ) from None
    if not isinstance(module, torch.nn.Module):
        raise ExportError(
            f"export_torch: module is a {type(module).__name__}, not a torch.nn.Module"
        )
    x = example_input
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(np.ascontiguousarray(x))
        x = x.float() if x.is_floating_point() else x.long()
    if x.ndim < 2 or {batch_axis, time_axis} - set(range(x.ndim)) or batch_axis == time_axis:
        raise ExportError(
            f"export_torch: example_input of shape {tuple(x.shape)} has no batch axis "
            f"{batch_axis} and time axis {time_axis}; give [N, T, F] (or set batch_axis, "
            "time_axis)"
        )
    if x.shape[batch_axis] < 2 or x.shape[time_axis] < 2:
        raise ExportError(
            f"export_torch: example_input of shape {tuple(x.shape)} has a batch or time axis of "
            "size 1, which the exporter fixes; give at least 2 sequences of at least 2 steps"
        )
    tries = [True, False] if dynamo is None else [dynamo]
    with tempfile.TemporaryDirectory(prefix="rnn2c-torch-") as tmp:
        path = Path(tmp) / f"{type(module).__name__}.onnx"
        errors = []
        for d in tries:
            try:
                to_onnx(torch, module, x, path, d, batch_axis, time_axis)
                break
            except Exception as e:  # noqa: BLE001  (any exporter failure is reported)
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                errors.append(f"the {EXPORTERS[d]} exporter: {first[:300]}")
                for old in Path(tmp).iterdir():
                    old.unlink()
        else:
            raise ExportError(
                "export_torch: torch.onnx.export failed (" + "; ".join(errors) + "); export the "
                "module to ONNX yourself (docs/pytorch.md) and give the file to rnn2c export"
            )
        res = export_model(path, calib, out_dir, **options)
    note = f"exported from PyTorch with torch.onnx.export ({EXPORTERS[d]} exporter)"
    if errors:
        note += f"; {errors[0]}"
    res.notes.append(note)
    return res


def to_onnx(
    torch: Any, module: Any, x: Any, path: Path, dynamo: bool, batch_axis: int, time_axis: int
) -> None:
    """torch.onnx.export of module on x into path (weights inside it or beside it), the batch
    and time axes dynamic; the module in eval mode for the export, its mode restored after."""
    training = module.training
    module.eval()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
            if dynamo:
                dims = {batch_axis: torch.export.Dim("batch"), time_axis: torch.export.Dim("time")}
                torch.onnx.export(
                    module,
                    (x,),
                    str(path),
                    dynamo=True,
                    dynamic_shapes=(dims,),
                    input_names=["x"],
                    verbose=False,
                )
            else:
                torch.onnx.export(
                    module,
                    (x,),
                    str(path),
                    dynamo=False,
                    input_names=["x"],
                    dynamic_axes={"x": {batch_axis: "batch", time_axis: "time"}},
                )
    finally:
        module.train(training)
