"""Keras or ONNX model -> IR -> quantized IR -> C. The library API mirrors `rnn2c export`;
export_torch takes a PyTorch module (through torch.onnx.export, when torch is installed)."""

from rnn2c.export.api import ExportResult, export_model
from rnn2c.export.ir import ExportError
from rnn2c.export.torch_export import export_torch

__all__ = ["ExportError", "ExportResult", "export_model", "export_torch"]
